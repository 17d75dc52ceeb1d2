# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the qmi-sim-* tests: start cp-qmi-sim, talk to it with qmicli
# and cp-qmi-apdu, read its state dump. Source after setting sim, qmicli,
# apdu (the test's arguments).
. "$(dirname "$0")/../../prereq.sh"
[ -n "$qmicli" ] || prereq_missing "qmicli (Debian package libqmi-utils) is not installed"
dir=$(mktemp -d)
pid=
trap 'stop_sim; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; for f in log apdu.log; do [ -f "$dir/$f" ] && grep -v Qmi-WARNING "$dir/$f" | tail -5; done; exit 1; }

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

stop_sim() {
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
}

# q [-d PATH] ARGS...: qmicli on the port
q() {
	port=$dir/pty
	if [ "$1" = -d ]; then port=$2; shift 2; fi
	timeout 10 "$qmicli" -d "$port" --device-open-qmi "$@" 2>&1 | grep -v -- '-Warning \*\*'
}

# a ARGS...: raw UIM messages on $dir/pty (see cp-qmi-apdu.c)
a() { timeout 10 "$apdu" "$dir/pty" "$@" 2>>"$dir/apdu.log"; }

dump_get() { sed -n "s/^$1=//p" "$dir/dump"; }
