#!/bin/sh
# Real qmicli against cp-qmi-sim on a pty: DMS IDs, UIM card status, NAS
# serving system, WDS profile list, operating-mode reset, EF.IMSI.
set -u
. "$(dirname "$0")/../../prereq.sh"
sim=$1
qmicli=$2
[ -n "$qmicli" ] || prereq_missing "qmicli (Debian package libqmi-utils) is not installed"
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$dir/subscribers" <<EOS
001010123456789 000102030405060708090a0b0c0d0e0f 0f0e0d0c0b0a09080706050403020100 000000000020
EOS
"$sim" --pty "$dir/pty" --dump "$dir/dump" --subscribers "$dir/subscribers" \
	--reset-delay=50 --registration-delay=50 >"$dir/ready" 2>"$dir/log" &
pid=$!
for i in $(seq 50); do grep -q ready "$dir/ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$dir/ready" || fail "simulator not ready"

q() { timeout 10 "$qmicli" -d "$dir/pty" --device-open-qmi "$@" 2>&1; }

out=$(q --dms-get-ids) || fail "dms-get-ids: $out"
echo "$out" | grep -q "IMEI: '490154203237518'" || fail "IMEI: $out"
out=$(q --uim-get-card-status) || fail "card status: $out"
echo "$out" | grep -q "Card state: 'present'" || fail "card state: $out"
echo "$out" | grep -q "A0:00:00:00:87:10:02" || fail "USIM AID: $out"
# the simulator's network knows the initial card, so it registers
for i in $(seq 30); do
	out=$(q --nas-get-serving-system)
	echo "$out" | grep -q "Registration state: 'registered'" && break
	sleep 0.1
done
echo "$out" | grep -q "Registration state: 'registered'" || fail "registration: $out"
echo "$out" | grep -q "MCC: '1'" || fail "MCC: $out"
echo "$out" | grep -q "cellprov test network" || fail "network name: $out"
out=$(q --wds-get-profile-list=3gpp) || fail "profiles: $out"
echo "$out" | grep -q "APN: 'internet'" || fail "APN: $out"
out=$(q --uim-read-transparent=0x3F00,0x7FFF,0x6F07) || fail "EF.IMSI: $out"
echo "$out" | grep -q "08:09:10:10:10:32:54:76:98" || fail "EF.IMSI: $out"
# the default firmware is a current one: DMS UIM Get IMSI is gone, the
# UIM read above is how ModemManager gets the IMSI
out=$(q --dms-uim-get-imsi) && fail "DMS UIM Get IMSI answered: $out"
echo "$out" | grep -q "InvalidQmiCommand" || fail "DMS UIM Get IMSI: $out"
# reset needs offline first, as on real modems
out=$(q --dms-set-operating-mode=reset) && fail "reset from online accepted: $out"
q --dms-set-operating-mode=offline >/dev/null || fail "offline"
q --dms-set-operating-mode=reset >/dev/null || fail "reset"
grep -q "resets=1" "$dir/dump" || fail "no reset in the dump"
for i in $(seq 30); do
	out=$(q --dms-get-operating-mode)
	echo "$out" | grep -q "Mode: 'online'" && break
	sleep 0.1
done
echo "$out" | grep -q "Mode: 'online'" || fail "not online after the reset: $out"
echo "qmicli: all checks passed"
