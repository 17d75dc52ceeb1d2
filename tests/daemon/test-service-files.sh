#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The service files: the systemd units (cellprovd, and cellprov-ausf and
# cellprov-sm when the build has the network side) pass systemd-analyze
# verify and have an exposure score of 1.5 or better ("OK") under
# systemd-analyze security;
# the hardening the design asks for is there; the bus policy is well formed
# and names only root for methods; the udev rules are well formed.
set -eu
src=$1
build=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

. "$(dirname "$0")/../prereq.sh"
command -v systemd-analyze >/dev/null || prereq_missing "no systemd-analyze (Debian package systemd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A unit as installed, but with ExecStart= on the binary just built (verify
# checks that it exists); an exposure score of 1.5 or better.
check_unit() {
	unit=$1 bindir=$2
	sed -e "s|@sbindir@|$bindir|" -e "s|@sysconfdir@|/etc|" \
		"$src/systemd/$unit.service.in" > "$tmp/$unit.service"
	grep -q '@[a-z]*@' "$tmp/$unit.service" && fail "unsubstituted @...@ in $unit.service"

	systemd-analyze verify --man=no "$tmp/$unit.service" > "$tmp/verify" 2>&1 ||
		{ cat "$tmp/verify"; fail "systemd-analyze verify $unit.service"; }
	[ -s "$tmp/verify" ] && { cat "$tmp/verify"; fail "systemd-analyze verify has complaints about $unit.service"; }

	systemd-analyze security --offline=true "$tmp/$unit.service" > "$tmp/security" 2>&1 || true
	score=$(sed -n "s/.*Overall exposure level for $unit.service: \([0-9.]*\).*/\1/p" "$tmp/security")
	[ -n "$score" ] || { cat "$tmp/security"; fail "no exposure score for $unit.service"; }
	echo "$unit.service: exposure level $score"
	systemd-analyze security --offline=true --threshold=15 "$tmp/$unit.service" >/dev/null 2>&1 ||
		{ grep '✗' "$tmp/security"; fail "$unit.service: exposure $score is above 1.5"; }
}

check_unit cellprovd "$build/daemon"
for want in 'Type=notify' 'WatchdogSec=' 'StateDirectoryMode=0700' 'ProtectSystem=strict' \
	'CapabilityBoundingSet=$' 'SystemCallFilter=@system-service' \
	'LoadCredential=device-key:' 'LoadCredential=adm1:' 'NoNewPrivileges=yes' \
	'BusName=org.cellprov.Daemon1' 'DevicePolicy=closed'; do
	grep -q "^$want" "$tmp/cellprovd.service" || fail "the unit lacks $want"
done

# The lifecycle check's timer: starts cellprovd.service, spread at random,
# installed beside it; verified together with the unit it starts.
sed -e "s|@sysconfdir@|/etc|" "$src/systemd/cellprovd-check.timer.in" > "$tmp/cellprovd-check.timer"
grep -q '@[a-z]*@' "$tmp/cellprovd-check.timer" && fail "unsubstituted @...@ in cellprovd-check.timer"
systemd-analyze verify --man=no "$tmp/cellprovd-check.timer" "$tmp/cellprovd.service" > "$tmp/verify" 2>&1 ||
	{ cat "$tmp/verify"; fail "systemd-analyze verify cellprovd-check.timer"; }
[ -s "$tmp/verify" ] && { cat "$tmp/verify"; fail "systemd-analyze verify has complaints about cellprovd-check.timer"; }
for want in 'Unit=cellprovd.service' 'OnUnitActiveSec=' 'RandomizedDelaySec=' 'WantedBy=timers.target'; do
	grep -q "^$want" "$tmp/cellprovd-check.timer" || fail "the timer lacks $want"
done
# idle exits are status 0: a restart on success would undo them
grep -q '^Restart=on-failure$' "$tmp/cellprovd.service" || fail "cellprovd.service restarts other than on failure"
grep -q "cellprovd-check.timer" "$src/systemd/meson.build" || fail "the timer is not installed"
grep -qx "lib/systemd/system/cellprovd-check.timer" "$src/debian/cellprovd.install" ||
	fail "the Debian package does not ship the timer"

# The network side's units: no privilege at all. Verified against the
# binaries just built, or, in a build without the network side, against
# stand-ins of the same name (verify only checks that ExecStart= exists).
netbin="$build/network"
if ! [ -x "$netbin/cellprov-sm" ] || ! [ -x "$netbin/cellprov-ausf" ]; then
	echo "no network side in this build: its units verified against stand-ins"
	netbin="$tmp/netbin"
	mkdir -p "$netbin"
	for b in cellprov-sm cellprov-ausf; do
		printf '#!/bin/sh\nexit 0\n' > "$netbin/$b"
		chmod +x "$netbin/$b"
	done
fi
for unit in cellprov-ausf cellprov-sm; do
	check_unit $unit "$netbin"
	for want in 'DynamicUser=yes' 'StateDirectoryMode=0700' 'ProtectSystem=strict' \
		'CapabilityBoundingSet=$' 'SystemCallFilter=@system-service' 'NoNewPrivileges=yes' \
		'PrivateDevices=yes' 'LoadCredential=' 'LimitMEMLOCK=' 'UMask=0077' \
		'Type=notify' 'NotifyAccess=main' 'WatchdogSec='; do
		grep -q "^$want" "$tmp/$unit.service" || fail "$unit.service lacks $want"
	done
done
for cred in k-ausf op token; do
	grep -q "^LoadCredential=$cred:" "$tmp/cellprov-ausf.service" || fail "cellprov-ausf.service: no $cred credential"
done
grep -q "^LoadCredential=ausf-token:" "$tmp/cellprov-sm.service" || fail "cellprov-sm.service: no ausf-token credential"

# Every unit in the tree was checked above.
for f in "$src"/systemd/*.service.in; do
	u=$(basename "$f" .service.in)
	[ -f "$tmp/$u.service" ] || fail "$u.service is not checked by this test"
done

# A missing credential source stops the start with an assertion naming
# the file, not with 243/CREDENTIALS: every LoadCredential= source has its
# AssertPathExists=.
for u in "$tmp"/*.service; do
	for path in $(sed -n 's/^LoadCredential=[^:]*:\(.*\)/\1/p' "$u"); do
		grep -qx "AssertPathExists=$path" "$u" || fail "$(basename "$u"): no AssertPathExists=$path for its credential"
	done
done

# DeviceAllow= names a driver as the kernel registers it in /proc/devices;
# a name that matches nothing silently allows nothing under
# DevicePolicy=closed. The names the kernel registers for what cellprovd
# opens (docs/packaging.md cites the kernel source of each):
cat > "$tmp/proc-devices" <<'EOF'
usb
usb_device
wwan_port
ttyS
ttyUSB
ttyACM
EOF
for u in "$tmp"/*.service; do
	for dev in $(sed -n 's/^DeviceAllow=\([^ ]*\).*/\1/p' "$u"); do
		case "$dev" in
		char-*) grep -qx "${dev#char-}" "$tmp/proc-devices" ||
			fail "$(basename "$u"): DeviceAllow=$dev: the kernel registers no '${dev#char-}'" ;;
		/dev/*) ;;
		*) fail "$(basename "$u"): DeviceAllow=$dev: neither char-NAME nor a /dev path" ;;
		esac
	done
done
for dev in usb wwan_port ttyUSB ttyACM usb_device; do
	grep -q "^DeviceAllow=char-$dev rw$" "$tmp/cellprovd.service" || fail "cellprovd.service does not allow char-$dev"
done
# After= names no unit that no distribution ships: qmi-proxy has none.
if grep -q '^After=.*qmi-proxy' "$tmp/cellprovd.service"; then
	fail "cellprovd.service orders after qmi-proxy.service, which does not exist"
fi

# The D-Bus activation file: starts the unit that owns the name.
activation="$build/daemon/org.cellprov.Daemon1.service"
if [ -f "$activation" ]; then
	/usr/bin/python3 - "$activation" "$tmp/cellprovd.service" <<'PY' || fail "D-Bus activation file"
import sys
from gi.repository import GLib
kf = GLib.KeyFile()
kf.load_from_file(sys.argv[1], GLib.KeyFileFlags.NONE)
g = "D-BUS Service"
bus = [l.split("=", 1)[1].strip() for l in open(sys.argv[2]) if l.startswith("BusName=")]
assert kf.get_string(g, "Name") == bus[0] == "org.cellprov.Daemon1", bus
assert kf.get_string(g, "SystemdService") == "cellprovd.service"
assert kf.get_string(g, "User") == "root"
assert kf.get_string(g, "Exec").endswith("/cellprovd"), kf.get_string(g, "Exec")
assert "@" not in open(sys.argv[1]).read()
PY
fi

# Everything installs under the prefix; only a /usr build may use /etc,
# /lib and /var (systemd.pc and udev.pc name /lib on Debian 12). The
# D-Bus files go where dbus-1.pc says, under the prefix.
/usr/bin/python3 - "$build/meson-info" <<'PY' || fail "installed outside the prefix"
import json, os, sys
info = sys.argv[1]
opts = {o["name"]: o["value"] for o in json.load(open(os.path.join(info, "intro-buildoptions.json")))}
prefix = opts["prefix"].rstrip("/")
allowed = [prefix + "/"]
if prefix == "/usr":
    allowed += ["/etc/", "/lib/", "/var/"]
installed = json.load(open(os.path.join(info, "intro-installed.json")))
bad = sorted(d for d in installed.values() if not any(d.startswith(a) for a in allowed))
assert not bad, "prefix %s: %s" % (prefix, bad)
where = {os.path.basename(d): os.path.dirname(d) for d in installed.values()}
assert where["org.cellprov.Daemon1.conf"].endswith("/dbus-1/system.d"), where
if "org.cellprov.Daemon1.service" in where:
    assert where["org.cellprov.Daemon1.service"].endswith("/dbus-1/system-services"), where
PY

# The D-Bus policy: well-formed, root owns, anyone calls (the daemon asks polkit).
policy="$src/daemon/org.cellprov.Daemon1.conf"
if command -v xmllint >/dev/null; then
	xmllint --noout "$policy" || fail "policy is not well-formed XML"
else
	prereq_partly "no xmllint (Debian package libxml2-utils): the policy's XML not validated"
fi
/usr/bin/python3 - "$policy" <<'PY' || fail "policy content"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
pols = root.findall("policy")
own = [(p.attrib, a.attrib) for p in pols for a in p.findall("allow") if "own" in a.attrib]
assert own == [({"user": "root"}, {"own": "org.cellprov.Daemon1"})], own
# anyone may call: the daemon asks polkit (docs/dbus.md); nothing else
default = [p for p in pols if p.attrib.get("context") == "default"][0]
assert [a.attrib for a in default] == [{"send_destination": "org.cellprov.Daemon1"}], \
    [a.attrib for a in default]
assert [(p.attrib, [a.attrib for a in p]) for p in pols if p is not default] == \
    [({"user": "root"}, [{"own": "org.cellprov.Daemon1"}])]
PY

# The udev rules: every line a comment, blank, a continuation, or made of
# KEY op "value" pairs; each GOTO has its LABEL.
rules="$src/udev/80-cellprov.rules"
/usr/bin/python3 - "$rules" <<'PY' || fail "udev rules"
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
pair = re.compile(r'\s*[A-Z_]+(\{[^}]*\})?\s*(==|!=|\+=|-=|:=|=)\s*"[^"]*"\s*(,|$)')
labels, gotos = set(), set()
for n, line in enumerate(text.splitlines(), 1):
    s = line.strip()
    if not s or s.startswith("#"):
        continue
    pos = 0
    while pos < len(s):
        m = pair.match(s, pos)
        assert m, "line %d: cannot parse: %s" % (n, s[pos:])
        pos = m.end()
    labels |= set(re.findall(r'LABEL="([^"]+)"', s))
    gotos |= set(re.findall(r'GOTO="([^"]+)"', s))
assert gotos <= labels, gotos - labels
# what each device does is tests/integration/udev (udevadm test)
assert 'SYSTEMD_WANTS}+="cellprovd.service"' in text
assert '/var/lib/cellprov/provisioned' in text
PY
echo ok
