#!/bin/sh
# cellprov-probe against cp-qmi-sim in every hardware profile
# (docs/simulators.md): both cards, every read mode, every firmware, a
# card at its last ADM1 attempt and one no driver knows; and the NFC
# controller on cp-pn532-sim. Each run must report what the profile is
# and leave the card as it was: no update, no ADM1 attempt spent.
set -u
sim=$1 qmicli=$2 probe=$3 pn532=${4:-} apdu=
. "$(dirname "$0")/sim-lib.sh"

# p ARGS...: the probe on the simulator's port; its output in $out, its
# exit status in $rc
p() { out=$(timeout 60 "$probe" -d "$dir/pty" -b qmi "$@" 2>"$dir/probe.log"); rc=$?; }
has() { echo "$out" | grep -qx -- "$1" || fail "$what: no line '$1' in: $out"; }
untouched() {
	[ "$(dump_get card-updates)" = 0 ] || fail "$what: the card was written"
	[ "$(dump_get adm1-retries)" = "$1" ] || fail "$what: ADM1 attempts $(dump_get adm1-retries), not $1"
}

# each card's ATR (docs/hardware.md), through UIM Get Slot Status
for card in "sysmoISIM-SJA2 4 33 3b9f96801f878031e073fe211b674a4c753034054ba9" \
	    "sysmoISIM-SJA5 5 67 3b9f96801f878031e073fe211b674a357530350265f8"; do
	set -- $card
	for le in lenient exact eof; do
		what="$1 --read-le $le"
		start_sim --card "$1" --read-le "$le"
		p
		[ $rc -eq 0 ] || fail "$what: exit $rc: $out"
		has "card: ATR $4"
		has "card: ICCID 8988211000000000017"
		has "card: EF.DIR USIM a0000000871002ffffffff8907090000"
		has "card: EF.DIR ISIM a0000000871004ffffffff8907090000"
		has "card: EF.AD $2 bytes (cellprov writes 4)"
		has "card: EF.USIM_AUTH_KEY $3 bytes (cellprov writes 33)"
		has "card: EF.ISIM_AUTH_KEY $3 bytes (cellprov writes 33)"
		has "card: EF.SIM_AUTH_KEY (2G) 33 bytes (cellprov writes 33)"
		has "card: ADM1 attempts left 3"
		has "verdict card: ok"
		untouched 3
	done
done

for fw in legacy dms-uim-unsupported dms-uim-not-supported no-logical-channel slow; do
	what="--firmware $fw"
	start_sim --firmware "$fw"
	p
	[ $rc -eq 0 ] || fail "$what: exit $rc: $out"
	# DMS Get Revision, as qmicli reads it
	rev=$(q --dms-get-revision | sed -n "s/^.*Revision: '\(.*\)'$/\1/p")
	[ -n "$rev" ] || fail "$what: qmicli --dms-get-revision"
	has "modem: firmware $rev"
	case $fw in
	legacy|no-logical-channel|slow) has "modem: IMSI request: answered";;
	*) has "modem: IMSI request: the modem does not report its IMSI; cellprov reads EF.IMSI through the card";;
	esac
	case $fw in
	no-logical-channel)
		echo "$out" | grep -q "^modem: logical channels: refused (.*AccessDenied.*); the basic channel is used$" ||
			fail "$what: channels: $out"
		has "verdict modem: works with the basic channel (the modem refuses logical channels)";;
	*)
		has "modem: logical channels: yes"
		has "verdict modem: ok";;
	esac
	has "card: ADM1 attempts left 3"
	untouched 3
done

# JSON: the same facts
what="-J"
start_sim
p -J
[ $rc -eq 0 ] || fail "$what: exit $rc: $out"
echo "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["modem"]["backend"] == "qmi", r
assert r["modem"]["logical-channels"] is True, r
assert r["modem"]["imsi-request"] is False, r
assert r["modem"]["firmware"], r
assert r["card"]["atr"].startswith("3b9f96801f878031e073fe211b674a"), r
assert r["card"]["driver"] == "sysmo-isim-sja2", r
assert r["card"]["adm1-attempts-left"] == 3, r
sizes = {f["name"]: f["size"] for f in r["card"]["files"]}
assert sizes["EF.USIM_AUTH_KEY"] == 67 and sizes["EF.AD"] == 5, sizes
assert r["card"]["verdict"] == "ok", r
' || fail "$what: $out"

# one attempt left: reported, refused, and still one left
what="--adm1-retries 1"
start_sim --adm1-retries 1
p
[ $rc -eq 3 ] || fail "$what: exit $rc: $out"
has "card: ADM1 attempts left 1"
has "verdict card: refused: one ADM1 attempt left (cellprov never spends it; verify by hand)"
untouched 1

# a card without the drivers' probe file (APDUs 1 and 2: the modem lists the
# applications, EF.DIR is not read; each driver's SELECT of it)
what="unknown card"
start_sim --fail-apdu=1,2
p
[ $rc -eq 3 ] || fail "$what: exit $rc: $out"
has "card: driver none"
has "verdict card: unsupported: no card driver knows it"
echo "$out" | grep -q "^error: no USIM driver knows this card" || fail "$what: error: $out"
untouched 3

# the NFC controller: a PN532 (the simulator's, firmware 1.6), and none
if [ -n "$pn532" ]; then
	what="--nfc"
	start_sim
	"$pn532" --target-pty "$dir/nfc" >"$dir/nfc.ready" 2>"$dir/nfc.log" &
	nfc_pid=$!
	for i in $(seq 50); do grep -q ready "$dir/nfc.ready" 2>/dev/null && break; sleep 0.1; done
	LIBNFC_AUTO_SCAN=false p --nfc "pn532_uart:$dir/nfc"
	kill $nfc_pid 2>/dev/null; wait $nfc_pid 2>/dev/null
	[ $rc -eq 0 ] || fail "$what: exit $rc: $out"
	has "nfc: pn532_uart:$dir/nfc"
	has "nfc: chip PN532 v1.6"
	has "nfc: ISO 14443-A target mode: yes"
	has "nfc: frame size in target mode: 64 bytes (the PN532's own ATS); longer commands are chained"
	has "verdict nfc: ok"
	LIBNFC_AUTO_SCAN=false p --nfc "pn532_uart:$dir/none"
	[ $rc -eq 3 ] || fail "$what: no controller: exit $rc: $out"
	has "nfc: no NFC controller at pn532_uart:$dir/none"
	has "verdict nfc: unusable: no controller"
	untouched 3
fi

echo "qmi-probe: all checks passed"
