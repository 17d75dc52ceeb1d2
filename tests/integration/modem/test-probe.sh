#!/bin/sh
# cellprov-probe through the AT and MBIM drivers: against cp-at-sim (each
# module it imitates) or cp-mbim-sim (through a real mbim-proxy of this
# test's own, in a network namespace: its socket is the abstract
# @mbim-proxy). Each run must report the card and leave it as it was: no
# update, no ADM1 attempt spent (the simulator's dump says).
#   test-probe.sh at SIM PROBE
#   test-probe.sh mbim SIM PROBE MBIM-PROXY
set -u
. "$(dirname "$0")/../../prereq.sh"
backend=$1 sim=$2 probe=$3 proxy=${4:-}
if [ "$backend" = mbim ] && [ -z "${CP_MBIM_NETNS:-}" ]; then
	[ -n "$proxy" ] || prereq_missing "mbim-proxy (Debian package libmbim-proxy) is not installed"
	unshare -n true 2>/dev/null || prereq_missing "no network namespace (unshare -n) for a private @mbim-proxy"
	CP_MBIM_NETNS=1 exec unshare -n sh "$0" "$@"
fi
dir=$(mktemp -d)
pid= proxy_pid=
trap 'stop_sim; [ -z "$proxy_pid" ] || kill $proxy_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; tail -5 "$dir/log" "$dir/probe.log" 2>/dev/null; exit 1; }

if [ "$backend" = mbim ]; then
	"$proxy" --no-exit 2>"$dir/proxy.log" &
	proxy_pid=$!
	for i in $(seq 50); do grep -q "@mbim-proxy" /proc/net/unix && break; sleep 0.1; done
	grep -q "@mbim-proxy" /proc/net/unix || fail "mbim-proxy does not listen"
fi

stop_sim() {
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
}

# start_sim ARGS...: a simulator on $dir/pty with state in $dir/dump
start_sim() {
	stop_sim
	rm -f "$dir/ready" "$dir/dump"
	"$sim" --pty "$dir/pty" --dump "$dir/dump" --reset-delay=50 --registration-delay=50 "$@" \
		>"$dir/ready" 2>"$dir/log" &
	pid=$!
	for i in $(seq 50); do grep -q ready "$dir/ready" 2>/dev/null && return 0; sleep 0.1; done
	fail "simulator not ready ($*)"
}

dump_get() { sed -n "s/^$1=//p" "$dir/dump"; }
# p ARGS...: the probe on the simulator's port; its output in $out, its
# exit status in $rc
p() { out=$(timeout 60 "$probe" -d "$dir/pty" -b "$backend" "$@" 2>"$dir/probe.log"); rc=$?; }
has() { echo "$out" | grep -qxF -- "$1" || fail "$what: no line '$1' in: $out"; }
untouched() {
	[ "$(dump_get card-updates)" = 0 ] || fail "$what: the card was written"
	[ "$(dump_get adm1-retries)" = "$1" ] || fail "$what: ADM1 attempts $(dump_get adm1-retries), not $1"
}
card_ok() {
	has "card: ICCID 8988211000000000017"
	has "card: EF.DIR USIM a0000000871002ffffffff8907090000"
	has "card: EF.DIR ISIM a0000000871004ffffffff8907090000"
	has "card: driver sysmo-isim-sja2 (sysmocom sysmoISIM-SJA2 / SJA5)"
	has "card: EF.USIM_AUTH_KEY 67 bytes (cellprov writes 33)"
	has "card: EF.SIM_AUTH_KEY (2G) 33 bytes (cellprov writes 33)"
	has "card: ADM1 attempts left 3"
	has "verdict card: ok"
}

if [ "$backend" = at ]; then
	profiles="--model=bg96 --model=rm500q --model=sim7600 --model=sara-r4 --t0"
else
	profiles="--no-device-reset --radio-off"
fi
for profile in $profiles; do
	what="$backend $profile"
	start_sim "$profile"
	p
	[ $rc -eq 0 ] || fail "$what: exit $rc: $out"
	has "modem: $backend on $dir/pty"
	# +CGMR as each module answers it, SIMCom's "+CGMR: " prefix taken
	# off; MBIM: device caps' FirmwareInfo, and the UICC service's ATR
	# (the simulator's SJA5: docs/hardware.md)
	case $profile in
	--model=bg96|--t0) has "modem: firmware BG96MAR02A07M1G";;
	--model=rm500q) has "modem: firmware RM500QGLABR11A06M4G";;
	--model=sim7600) has "modem: firmware LE20B04SIM7600M22";;
	--model=sara-r4) has "modem: firmware L0.0.00.00.05.06 [Feb 03 2018 13:00:41]";;
	*) has "modem: firmware cp-mbim-sim 1.0";;
	esac
	if [ "$backend" = at ]; then
		has "card: ATR: not available through this modem"
	else
		has "card: ATR 3b9f96801f878031e073fe211b674a357530350265f8"
	fi
	has "modem: logical channels: yes"
	has "modem: IMSI request: answered"
	has "verdict modem: ok"
	card_ok
	untouched 3
done

what="$backend -J"
start_sim
p -J
[ $rc -eq 0 ] || fail "$what: exit $rc: $out"
echo "$out" | BACKEND=$backend python3 -c '
import json, os, sys
r = json.load(sys.stdin)
assert r["modem"]["backend"] == os.environ["BACKEND"], r
assert r["modem"]["logical-channels"] is True, r
assert r["modem"]["firmware"], r
assert ("atr" in r["card"]) == (os.environ["BACKEND"] == "mbim"), r
assert r["card"]["driver"] == "sysmo-isim-sja2", r
assert r["card"]["adm1-attempts-left"] == 3, r
assert r["card"]["verdict"] == "ok", r
' || fail "$what: $out"
untouched 3

# one attempt left: reported, refused, and still one left
what="$backend --adm1-retries 1"
start_sim --adm1-retries 1
p
[ $rc -eq 3 ] || fail "$what: exit $rc: $out"
has "card: ADM1 attempts left 1"
has "verdict card: refused: one ADM1 attempt left (cellprov never spends it; verify by hand)"
untouched 1

echo "$backend-probe: all checks passed"
