#!/bin/sh
# cp-qmi-sim --reset-mode reenumerate against real qmicli: DMS Set
# Operating Mode RESET is answered, then the port vanishes (its path
# removed, qmicli cannot open it), comes back after --reset-delay under
# --reenumerate-path with the card power-cycled (ADM1 no longer
# verified), and qmicli works again; the next reset brings it back under
# the first path (docs/simulators.md).
set -u
sim=$1 qmicli=$2 apdu=$3
. "$(dirname "$0")/sim-lib.sh"

ADM1=3132333435363738

out=$("$sim" --proxy --reset-mode reenumerate 2>&1) && fail "reenumerate on the proxy accepted"
out=$("$sim" --pty "$dir/x" --sysfs relative 2>&1) && fail "a relative --sysfs accepted"
out=$("$sim" --pty "$dir/x" --reset-mode reboot 2>&1) && fail "unknown reset mode accepted"
echo "$out" | grep -q "keep-port or reenumerate" || fail "unknown reset mode: $out"

# wait_path PATH: the port is there again
wait_path() {
	for i in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done
	return 1
}

# a reset long enough to see the port gone
"$sim" --pty "$dir/pty" --dump "$dir/dump" --reset-delay=800 --registration-delay=50 \
	--reenumerate-path "$dir/pty2" --sysfs "$dir/sys" --usb-port 3-1.2 >"$dir/ready" 2>"$dir/log" &
pid=$!
wait_path "$dir/pty" || fail "no port"
wait_path "$dir/dump" || fail "no dump"
[ "$(dump_get reset-mode)" = reenumerate ] || fail "reset-mode: $(dump_get reset-mode)"
[ "$(dump_get port)" = "$dir/pty" ] || fail "port: $(dump_get port)"
usbif=$dir/sys/devices/cp-sim/usb1/3-1.2/3-1.2:1.4
[ "$(readlink -f "$dir/sys/class/usbmisc/pty/device")" = "$usbif" ] || fail "sysfs: no usbmisc/pty on $usbif"
[ "$(cat "$usbif/bInterfaceNumber")" = 04 ] || fail "sysfs: bInterfaceNumber"
# ADM1 verified on the basic channel: the card's security state
out=$(a apdu:0:0020000A08$ADM1 apdu:0:0020000A00)
[ "$(echo "$out" | tr '\n' ' ')" = "apdu 9000 apdu 9000 " ] || fail "ADM1: $out"
q --dms-set-operating-mode=offline | grep -q "successfully" || fail "offline"
out=$(q --dms-set-operating-mode=reset)
echo "$out" | grep -q "Operating mode set successfully" || fail "reset not answered: $out"
# gone: no path, nothing to open
# (-L too: a symlink left to the closed pty would not be "gone")
gone() { ! [ -e "$1" ] && ! [ -L "$1" ]; }
for i in $(seq 40); do gone "$dir/pty" && break; sleep 0.01; done
gone "$dir/pty" || fail "the port is still there after the reset"
gone "$dir/pty2" || fail "the port is back too early"
[ "$(dump_get port)" = "" ] || fail "dump port while gone: $(dump_get port)"
! [ -e "$dir/sys/class/usbmisc/pty" ] && ! [ -e "$dir/sys/devices/cp-sim/usb1/3-1.2" ] ||
	fail "sysfs: the module is still on the bus while gone"
out=$(q --dms-get-operating-mode)
echo "$out" | grep -q "Mode:" && fail "qmicli reached a vanished port: $out"
# back, under the other path
wait_path "$dir/pty2" || fail "the port did not come back at pty2"
gone "$dir/pty" || fail "the old path came back too"
[ "$(readlink -f "$dir/sys/class/usbmisc/pty2/device")" = "$usbif" ] || fail "sysfs: no usbmisc/pty2 on $usbif"
! [ -e "$dir/sys/class/usbmisc/pty" ] || fail "sysfs: usbmisc/pty came back too"
[ "$(dump_get port)" = "$dir/pty2" ] || fail "dump port: $(dump_get port)"
grep -q "ready $dir/pty2" "$dir/ready" || fail "no ready line for pty2"
for i in $(seq 30); do
	out=$(q -d "$dir/pty2" --dms-get-operating-mode)
	echo "$out" | grep -q "Mode: 'online'" && break
	sleep 0.1
done
echo "$out" | grep -q "Mode: 'online'" || fail "not online after the reset: $out"
q -d "$dir/pty2" --uim-read-transparent=0x3F00,0x7FFF,0x6F07 | grep -q "08:09:10:10:10:32:54:76:98" ||
	fail "UIM read after the reset"
# the card was power-cycled: ADM1 must be verified again
out=$(timeout 10 "$apdu" "$dir/pty2" apdu:0:0020000A00 2>>"$dir/apdu.log")
[ "$out" = "apdu 63C3" ] || fail "ADM1 still verified after the reset: $out"
# the next reset brings it back under the first path
q -d "$dir/pty2" --dms-set-operating-mode=offline | grep -q "successfully" || fail "offline 2"
q -d "$dir/pty2" --dms-set-operating-mode=reset | grep -q "successfully" || fail "reset 2"
wait_path "$dir/pty" || fail "the port did not come back at pty"
gone "$dir/pty2" || fail "pty2 is still there"
[ "$(dump_get resets)" = 2 ] || fail "resets: $(dump_get resets)"

# reenumerate is the default on a pty; keep-port keeps the path through a reset
start_sim
[ "$(dump_get reset-mode)" = reenumerate ] || fail "default reset-mode: $(dump_get reset-mode)"
start_sim --reset-mode keep-port
q --dms-set-operating-mode=offline >/dev/null
q --dms-set-operating-mode=reset | grep -q "successfully" || fail "keep-port: reset"
[ -e "$dir/pty" ] || fail "keep-port: the port vanished"
[ "$(dump_get reset-mode)" = keep-port ] || fail "keep-port: $(dump_get reset-mode)"
echo "qmi-sim-reenumerate: all checks passed"
