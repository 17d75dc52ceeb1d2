#!/bin/sh
# cp-qmi-sim's firmware profiles against real qmicli and raw UIM messages
# (docs/simulators.md): DMS UIM commands refused as newer firmwares do,
# with the UIM read that ModemManager falls back to still working; Open
# Logical Channel refused with AccessDenied, the basic channel still
# usable; answers slowed as over a real card.
set -u
sim=$1 qmicli=$2 apdu=$3
. "$(dirname "$0")/sim-lib.sh"

USIM=A0000000871002FFFFFFFF8907090000

out=$("$sim" --pty "$dir/x" --firmware fast 2>&1) && fail "unknown firmware accepted"
echo "$out" | grep -q "unknown firmware profile 'fast'" || fail "unknown firmware: $out"

# the default firmware is a current one: DMS UIM refused
start_sim
[ "$(dump_get firmware)" = dms-uim-unsupported ] || fail "default firmware: $(dump_get firmware)"
q --dms-uim-get-imsi | grep -q "'InvalidQmiCommand'" || fail "default: DMS UIM Get IMSI answered"
start_sim --firmware default
[ "$(dump_get firmware)" = dms-uim-unsupported ] || fail "--firmware default: $(dump_get firmware)"
# an older firmware answers the DMS UIM commands
start_sim --firmware legacy
[ "$(dump_get firmware)" = "" ] || fail "legacy firmware: $(dump_get firmware)"
q --dms-uim-get-imsi | grep -q "IMSI: '001010123456789'" || fail "legacy: DMS UIM Get IMSI"
out=$(a open:$USIM)
[ "$out" = "open channel=1 sw=9000" ] || fail "legacy: open logical channel: $out"

for fw in "dms-uim-unsupported InvalidQmiCommand" "dms-uim-not-supported NotSupported"; do
	set -- $fw
	start_sim --firmware "$1"
	[ "$(dump_get firmware)" = "$1" ] || fail "$1: dump says $(dump_get firmware)"
	out=$(q --dms-uim-get-imsi)
	echo "$out" | grep -q "'$2'" || fail "$1: DMS UIM Get IMSI: $out"
	echo "$out" | grep -q "IMSI: '" && fail "$1: DMS UIM Get IMSI answered: $out"
	out=$(q --dms-uim-get-iccid)
	echo "$out" | grep -q "'$2'" || fail "$1: DMS UIM Get ICCID: $out"
	out=$(q --dms-uim-get-state)
	echo "$out" | grep -q "'$2'" || fail "$1: DMS UIM Get State: $out"
	# what ModemManager reads instead: EF.IMSI and EF.ICCID through UIM
	out=$(q --uim-read-transparent=0x3F00,0x7FFF,0x6F07)
	echo "$out" | grep -q "08:09:10:10:10:32:54:76:98" || fail "$1: UIM read of EF.IMSI: $out"
	out=$(q --uim-read-transparent=0x3F00,0x2FE2)
	echo "$out" | grep -q "98:88:12:01:00:00:00:00:10:F7" || fail "$1: UIM read of EF.ICCID: $out"
	# the rest of DMS is unchanged
	q --dms-get-ids | grep -q "IMEI: '490154203237518'" || fail "$1: DMS Get IDs"
done

start_sim --firmware no-logical-channel
out=$(a open:$USIM open:A0000000871002)
[ "$(echo "$out" | tr '\n' ' ')" = "open error=AccessDenied open error=AccessDenied " ] ||
	fail "no-logical-channel: open: $out"
out=$(a apdu:0:00A4000C027FFF apdu:0:00A4000C026F07 apdu:0:00B0000009)
[ "$(echo "$out" | tr '\n' ' ')" = "apdu 9000 apdu 9000 apdu 0809101010325476989000 " ] ||
	fail "no-logical-channel: the basic channel: $out"
q --dms-uim-get-imsi | grep -q "IMSI: '001010123456789'" || fail "no-logical-channel: DMS UIM"

# slow: each answer takes the firmware's turnaround and the card's bytes
# (at least 20 ms + 1.25 ms a byte; only lower bounds, as a loaded machine
# adds to every time)
ms() { echo $(( $(date +%s%N) / 1000000 )); }
start_sim --firmware slow,dms-uim-unsupported
[ "$(dump_get firmware)" = "dms-uim-unsupported,slow" ] || fail "slow: dump says $(dump_get firmware)"
t0=$(ms)
out=$(a apdu:0:00A4000C027FFF apdu:0:00A4000C026F07 apdu:0:00B0000009 apdu:0:00B0000009 apdu:0:00B0000009 \
	apdu:0:00B0000009 apdu:0:00B0000009 apdu:0:00B0000009 apdu:0:00B0000009 apdu:0:00B0000009)
t1=$(ms)
[ "$(echo "$out" | grep -c '^apdu ')" -eq 10 ] || fail "slow: answers: $out"
# a Send APDU request is 24-34 bytes, its answer 21-30: >= 20 + 45 * 1.25 ms each
[ $((t1 - t0)) -ge 750 ] || fail "slow: 10 APDUs in $((t1 - t0)) ms"
slow=$((t1 - t0))
out=$(q --dms-uim-get-imsi)
echo "$out" | grep -q "'InvalidQmiCommand'" || fail "slow: profiles combine: $out"
echo "qmi-sim-firmware: all checks passed ($slow ms for 10 slow APDUs)"
