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

# The network side's units, when this build has it: no privilege at all.
if [ -x "$build/network/cellprov-sm" ] && [ -x "$build/network/cellprov-ausf" ]; then
	for unit in cellprov-ausf cellprov-sm; do
		check_unit $unit "$build/network"
		for want in 'DynamicUser=yes' 'StateDirectoryMode=0700' 'ProtectSystem=strict' \
			'CapabilityBoundingSet=$' 'SystemCallFilter=@system-service' 'NoNewPrivileges=yes' \
			'PrivateDevices=yes' 'LoadCredential=' 'LimitMEMLOCK=' 'UMask=0077'; do
			grep -q "^$want" "$tmp/$unit.service" || fail "$unit.service lacks $want"
		done
	done
	for cred in k-ausf op token; do
		grep -q "^LoadCredential=$cred:" "$tmp/cellprov-ausf.service" || fail "cellprov-ausf.service: no $cred credential"
	done
	grep -q "^LoadCredential=ausf-token:" "$tmp/cellprov-sm.service" || fail "cellprov-sm.service: no ausf-token credential"
else
	echo "no network side in this build: its units not checked"
fi

# The D-Bus policy: well-formed, root owns and calls, others only read.
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
default = [p for p in pols if p.attrib.get("context") == "default"][0]
assert default.find("deny").attrib == {"send_destination": "org.cellprov.Daemon1"}
for a in default.findall("allow"):
    assert a.attrib.get("send_interface", "").startswith("org.freedesktop.DBus."), a.attrib
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
assert 'DRIVERS=="qmi_wwan"' in text and 'SYSTEMD_WANTS}+="cellprovd.service"' in text
assert '/var/lib/cellprov/provisioned' in text
PY
echo ok
