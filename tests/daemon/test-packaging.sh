#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# OpenWrt: the UCI config, written out by cellprov-uci2conf, is a
# cellprov.conf that cellprovd itself accepts (--check-config), and a bad
# UCI value is refused by cellprovd naming the key. The procd init script
# and the hotplug entry parse. `uci` is played by a small reader of the
# UCI file format (OpenWrt's own tool is not on this machine).
set -eu
src=$1
build=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
owrt="$src/packaging/openwrt/cellprov/files"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in "$owrt/cellprovd.init" "$owrt/cellprov.hotplug" "$owrt/cellprov-uci2conf"; do
	sh -n "$f" || fail "$f does not parse"
done

mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/state"
chmod 700 "$tmp/state"
cat > "$tmp/bin/uci" <<'PY'
#!/usr/bin/python3
# uci -q get cellprov.SECTION.OPTION, from $UCI_FILE
import shlex, sys, os
args = [a for a in sys.argv[1:] if a != "-q"]
if len(args) != 2 or args[0] != "get":
    sys.exit(1)
pkg, sec, opt = args[1].split(".")
vals, cur = {}, None
for line in open(os.environ["UCI_FILE"]):
    w = shlex.split(line, comments=True)
    if not w:
        continue
    if w[0] == "config":
        cur = w[2] if len(w) > 2 else None
    elif w[0] == "option" and cur:
        vals[(cur, w[1])] = w[2]
    elif w[0] == "list" and cur:
        vals[(cur, w[1])] = (vals.get((cur, w[1])) + " " if (cur, w[1]) in vals else "") + w[2]
if (sec, opt) not in vals:
    sys.exit(1)
print(vals[(sec, opt)])
PY
chmod +x "$tmp/bin/uci"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/etc/device-key.pem" 2>/dev/null
chmod 600 "$tmp/etc/device-key.pem"
id=$(openssl pkey -in "$tmp/etc/device-key.pem" -pubout -outform DER 2>/dev/null | sha256sum | cut -c1-32)
printf '12345678\n' > "$tmp/etc/adm1"
chmod 600 "$tmp/etc/adm1"

sed -e "s|/etc/cellprov/device-key.pem|$tmp/etc/device-key.pem|" \
    -e "s|/etc/cellprov/device-cert.pem|$tmp/etc/device-cert.pem|" \
    -e "s|/devices/00000000000000000000000000000000|/devices/$id|" \
    -e "s|/etc/cellprov/adm1|$tmp/etc/adm1|" \
    -e "s|/etc/cellprov/state|$tmp/state|" "$owrt/cellprov.config" > "$tmp/uci"

PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" sh "$owrt/cellprov-uci2conf" > "$tmp/cellprov.conf"
grep -q '^proxy=false$' "$tmp/cellprov.conf" || fail "UCI proxy '0' is not proxy=false"
grep -q '^suites=B$' "$tmp/cellprov.conf" || fail "UCI list suite is not suites=B"
out=$("$build/daemon/cellprovd" --check-config --config "$tmp/cellprov.conf" 2>&1) ||
	{ cat "$tmp/cellprov.conf"; fail "cellprovd refuses the generated config: $out"; }
echo "$out" | grep -q "device $id" || fail "check-config: $out"

# a bad UCI value reaches cellprovd, which names it
sed -i "s|option proxy '0'|option proxy 'maybe'|" "$tmp/uci"
PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" sh "$owrt/cellprov-uci2conf" > "$tmp/bad.conf"
if out=$("$build/daemon/cellprovd" --check-config --config "$tmp/bad.conf" 2>&1); then
	fail "a bad UCI value was accepted"
fi
echo "$out" | grep -q "\[modem\] proxy: 'maybe'" || fail "bad value not named: $out"

# Yocto: the recipe names the unit and installs the policy and rules
recipe="$src/packaging/yocto/cellprov_0.1.0.bb"
for want in 'inherit meson pkgconfig systemd' 'SYSTEMD_SERVICE:${PN} = "cellprovd.service"' \
	'org.cellprov.Daemon1.conf' '80-cellprov.rules'; do
	grep -qF "$want" "$recipe" || fail "the Yocto recipe lacks $want"
done
echo ok
