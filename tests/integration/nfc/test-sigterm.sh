#!/bin/sh
# SIGTERM while the device waits for a phone: the daemon-shaped harness
# must stop its tag (abort libnfc's nfc_target_init) and exit promptly.
set -u
dir=$(mktemp -d)
trap 'kill $sim 2>/dev/null; kill $dev 2>/dev/null; rm -rf "$dir"' EXIT
"$CP_PN532_SIM" --target-pty "$dir/pty" --run 'wait-armed 5000; sleep 30000' >"$dir/sim.out" &
sim=$!
for i in $(seq 100); do grep -q '^ready' "$dir/sim.out" && break; sleep 0.05; done
"$CP_NFC_HARNESS" "pn532_uart:$dir/pty" >"$dir/dev.out" 2>"$dir/dev.err" &
dev=$!
for i in $(seq 100); do grep -q '^state waiting' "$dir/dev.out" && break; sleep 0.05; done
grep -q '^state waiting' "$dir/dev.out" || { echo "the tag never armed"; cat "$dir/dev.out" "$dir/dev.err"; exit 1; }
sleep 0.3
t0=$(date +%s%N)
kill -TERM $dev
wait $dev
rc=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
cat "$dir/dev.out"
echo "exit status $rc after ${ms} ms"
[ "$rc" -eq 0 ] || { echo "FAIL: exit status $rc"; exit 1; }
grep -q '^stopped' "$dir/dev.out" || { echo "FAIL: no clean stop"; exit 1; }
[ "$ms" -lt 1000 ] || { echo "FAIL: took ${ms} ms"; exit 1; }
# The simulator saw the abort: its target is no longer armed, and the
# controller was put to rest (InRelease, PowerDown) by nfc_close.
grep -q 'session' "$dir/sim.out" && { echo "FAIL: a session started"; exit 1; }
exit 0
