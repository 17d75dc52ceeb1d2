#!/bin/sh
# A tap session shows in libnfc's byte traces (LIBNFC_LOG_LEVEL=3), as
# docs/nfc.md tells: the target armed, APDUs in and out, the phone leaving.
set -u
dir=$(mktemp -d)
trap 'kill $dev 2>/dev/null; rm -rf "$dir"' EXIT
"$CP_PN532_SIM" --target-pty "$dir/pty" --scenario read >"$dir/sim.out" &
sim=$!
for i in $(seq 100); do grep -q '^ready' "$dir/sim.out" && break; sleep 0.05; done
LIBNFC_LOG_LEVEL=3 "$CP_NFC_HARNESS" "pn532_uart:$dir/pty" >"$dir/dev.out" 2>"$dir/trace" &
dev=$!
wait $sim || { echo "FAIL: the phone script failed"; cat "$dir/sim.out"; exit 1; }
for i in $(seq 100); do grep -q '^session-ended' "$dir/dev.out" && break; sleep 0.05; done
kill -TERM $dev
wait $dev
status=0
check() {
	if grep -Eq "$2" "$dir/trace"; then
		echo "trace shows $1"
	else
		echo "FAIL: no $1 in the trace"
		status=1
	fi
}
check "TgInitAsTarget (waiting for a phone)" 'TX: 00 00 ff .. .. d4 8c'
check "TgGetData (a C-APDU arrives)" 'TX: 00 00 ff 02 fe d4 86'
check "the SELECT of the NDEF application" 'RX: 00 00 a4 04 00 07 d2 76 00 00 85 01 01'
check "TgSetData (an R-APDU leaves)" 'TX: 00 00 ff .. .. d4 8e'
check "target released (status 29)" 'RX: 29'
[ $status -eq 0 ] || tail -40 "$dir/trace"
exit $status
