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

for f in "$owrt/cellprovd.init" "$owrt/cellprov.hotplug" "$owrt/cellprov-uci2conf" "$owrt/cellprov.button" \
	"$owrt/cellprov-check"; do
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
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/op-root-key.pem" \
	-out "$tmp/etc/trusted-operators.pem" -subj "/O=Example Operator/CN=root" -days 30 2>/dev/null ||
	fail "openssl cannot make an operator root"
chmod 600 "$tmp/etc/adm1"

sed -e "s|/etc/cellprov/device-key.pem|$tmp/etc/device-key.pem|" \
    -e "s|/etc/cellprov/device-cert.pem|$tmp/etc/device-cert.pem|" \
    -e "s|/devices/00000000000000000000000000000000|/devices/$id|" \
    -e "s|/etc/cellprov/adm1|$tmp/etc/adm1|" \
    -e "s|/etc/cellprov/trusted-operators.pem|$tmp/etc/trusted-operators.pem|" \
    -e "s|/etc/cellprov/state|$tmp/state|" "$owrt/cellprov.config" > "$tmp/uci"

PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" sh "$owrt/cellprov-uci2conf" > "$tmp/cellprov.conf"
grep -q '^proxy=false$' "$tmp/cellprov.conf" || fail "UCI proxy '0' is not proxy=false"
grep -q '^suites=B$' "$tmp/cellprov.conf" || fail "UCI list suite is not suites=B"
grep -qxF "trusted-operators=$tmp/etc/trusted-operators.pem" "$tmp/cellprov.conf" ||
	fail "UCI option trusted_operators is not [device] trusted-operators"
grep -q '^\[network\]' "$tmp/cellprov.conf" && fail "[network] written without sm_url"
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
sed -i "s|option proxy 'maybe'|option proxy '0'|" "$tmp/uci"

# every backend goes through as cellprovd names it; an AT module's port is a tty
for b in at:/dev/ttyUSB2 mbim:/dev/cdc-wdm1 mm:/dev/cdc-wdm0 auto:/dev/cdc-wdm0; do
	sed -e "s|option backend 'qmi'|option backend '${b%%:*}'|" \
	    -e "s|option device '/dev/cdc-wdm0'|option device '${b#*:}'|" "$tmp/uci" > "$tmp/uci.$$"
	PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci.$$" sh "$owrt/cellprov-uci2conf" > "$tmp/b.conf"
	grep -qx "backend=${b%%:*}" "$tmp/b.conf" && grep -qx "device=${b#*:}" "$tmp/b.conf" ||
		{ cat "$tmp/b.conf"; fail "UCI backend ${b%%:*} not written out"; }
	out=$("$build/daemon/cellprovd" --check-config --config "$tmp/b.conf" 2>&1) ||
		fail "cellprovd refuses backend ${b%%:*}: $out"
done
sed -i "s|option backend 'qmi'|option backend 'ncm'|" "$tmp/uci"
PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" sh "$owrt/cellprov-uci2conf" > "$tmp/bad.conf"
if out=$("$build/daemon/cellprovd" --check-config --config "$tmp/bad.conf" 2>&1); then
	fail "UCI backend 'ncm' was accepted"
fi
echo "$out" | grep -q "\[modem\] backend: 'ncm' is not one of auto, qmi, mm, at, mbim" || fail "bad backend not named: $out"
sed -i "s|option backend 'ncm'|option backend 'qmi'|" "$tmp/uci"
rm -f "$tmp/uci.$$"

# the network section: [network], and a bad interval named by cellprovd
cp "$tmp/uci" "$tmp/uci.orig"
cp "$tmp/etc/trusted-operators.pem" "$tmp/etc/sm-ca.pem"
printf "config network 'network'\n\toption sm_url 'https://sm.example.net:8443'\n\toption sm_ca '%s'\n\toption poll_interval '3600'\n" \
	"$tmp/etc/sm-ca.pem" >> "$tmp/uci"
PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" sh "$owrt/cellprov-uci2conf" > "$tmp/net.conf"
sed -n '/^\[network\]$/,$p' "$tmp/net.conf" > "$tmp/net.section"
printf '[network]\nsm-url=https://sm.example.net:8443\nsm-ca=%s\npoll-interval=3600\n' "$tmp/etc/sm-ca.pem" |
	cmp -s - "$tmp/net.section" || { cat "$tmp/net.conf"; fail "UCI network is not [network]"; }
out=$("$build/daemon/cellprovd" --check-config --config "$tmp/net.conf" 2>&1) ||
	fail "cellprovd refuses the generated [network]: $out"
sed -i "s|option poll_interval '3600'|option poll_interval '30'|" "$tmp/uci"
PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" sh "$owrt/cellprov-uci2conf" > "$tmp/bad.conf"
if out=$("$build/daemon/cellprovd" --check-config --config "$tmp/bad.conf" 2>&1); then
	fail "a poll_interval of 30 was accepted"
fi
echo "$out" | grep -q "\[network\] poll-interval: '30'" || fail "bad interval not named: $out"
mv "$tmp/uci.orig" "$tmp/uci"

# Every key cellprovd knows (the key lists of daemon/cp-conf.c) has its UCI
# option: the example UCI config, which sets them all, gives every one.
/usr/bin/python3 - "$src/daemon/cp-conf.c" "$tmp/cellprov.conf" <<'PY' || fail "UCI does not cover cellprov.conf"
import re, sys
c = open(sys.argv[1]).read()
known = set()
for group in ("device", "nfc", "ble", "modem", "daemon"):
    m = re.search(r"%s_keys\[\]\s*=\s*\{(.*?)\};" % group, c, re.S)
    assert m, group
    known |= {(group, k) for k in re.findall(r'"([a-z0-9-]+)"', m.group(1))}
have, group = set(), None
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("["):
        group = line[1:-1]
    elif "=" in line and not line.startswith("#"):
        have.add((group, line.split("=", 1)[0]))
assert known == have, "no UCI option for %s; unknown to cellprovd: %s" % (sorted(known - have), sorted(have - known))
PY

# The procd init script, run with procd's and UCI's shell API played by
# stubs that log each call: the instance restarts on a UCI change (file),
# and its jail holds what the config names and nothing of the rest of /etc.
cat > "$tmp/procd-stubs.sh" <<'EOF'
config_load() { :; }
config_get() {
	_v=$(uci -q get "cellprov.$2.$3") || _v=$4
	eval "$1=\$_v"
}
config_get_bool() {
	config_get "$@"
	case $(eval echo "\$$1") in 1|on|true|yes|enabled) eval "$1=1" ;; *) eval "$1=0" ;; esac
}
procd_open_instance() { echo "open"; }
procd_close_instance() { echo "close"; }
procd_set_param() { echo "param $*"; }
procd_add_jail() { echo "jail $*"; }
procd_add_jail_mount() { for m in "$@"; do echo "ro $m"; done; }
procd_add_jail_mount_rw() { for m in "$@"; do echo "rw $m"; done; }
EOF
run_init() {
	PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" sh -c '
		. "$1"; . "$2"
		RUNDIR=$3/run; CONF=$RUNDIR/cellprov.conf; UCI2CONF=$4
		start_service' sh "$tmp/procd-stubs.sh" "$owrt/cellprovd.init" "$tmp" "$owrt/cellprov-uci2conf"
}
run_init > "$tmp/procd" || fail "the init script's start_service failed"
for want in "param file /etc/config/cellprov $tmp/run/cellprov.conf" \
	"param command /usr/sbin/cellprovd --config $tmp/run/cellprov.conf" \
	"param no_new_privs 1" "param capabilities /etc/capabilities/cellprovd.json" \
	"param seccomp /etc/seccomp/cellprovd.json" "jail cellprovd log procfs sysfs ronly" \
	"ro $tmp/etc/device-key.pem" "ro $tmp/etc/trusted-operators.pem" "ro $tmp/etc/adm1" "rw $tmp/state" "rw /var/run/dbus" \
	"rw /dev/cdc-wdm0" "rw /dev/ttyS1"; do
	grep -qxF "$want" "$tmp/procd" || { cat "$tmp/procd"; fail "init: no '$want'"; }
done
grep -q '^rw /dev/bus/usb' "$tmp/procd" && fail "init: /dev/bus/usb in the jail of a UART reader"
cmp -s "$tmp/run/cellprov.conf" "$tmp/cellprov.conf" || fail "init: the conf it writes is not cellprov-uci2conf's"
[ "$(stat -c %a "$tmp/run/cellprov.conf")" = 600 ] || fail "init: cellprov.conf is not 0600"
# a USB reader: libusb's /dev/bus/usb instead of a tty
sed -i "s|option connstring 'pn532_uart:/dev/ttyS1'|option connstring 'pn53x_usb'|" "$tmp/uci"
run_init > "$tmp/procd" || fail "start_service with a USB reader"
grep -qx 'rw /dev/bus/usb' "$tmp/procd" || { cat "$tmp/procd"; fail "init: a USB reader has no /dev/bus/usb"; }
grep -q '^rw /dev/tty' "$tmp/procd" && fail "init: a tty in the jail of a USB reader"
grep -q 'procd_add_reload_trigger cellprov$' "$owrt/cellprovd.init" || fail "init: no reload trigger"
# exit when idle (the default): no respawn, which procd applies whatever
# the exit status; a resident daemon keeps it
grep -q '^param respawn' "$tmp/procd" && { cat "$tmp/procd"; fail "init: respawn with exit_when_idle"; }
grep -qx 'exit-when-idle=true' "$tmp/run/cellprov.conf" || fail "init: exit_when_idle '1' is not exit-when-idle=true"
grep -qx 'linger=300' "$tmp/run/cellprov.conf" || fail "init: UCI linger is not [daemon] linger"
sed -i "s|option exit_when_idle '1'|option exit_when_idle '0'|" "$tmp/uci"
run_init > "$tmp/procd" || fail "start_service with exit_when_idle '0'"
grep -qx 'param respawn 3600 5 5' "$tmp/procd" || { cat "$tmp/procd"; fail "init: no respawn for a resident daemon"; }
grep -qx 'exit-when-idle=false' "$tmp/run/cellprov.conf" || fail "init: exit_when_idle '0' is not exit-when-idle=false"
sed -i "s|option exit_when_idle '0'|option exit_when_idle '1'|" "$tmp/uci"

# The cron check (OpenWrt's cellprovd-check.timer): starts an armed
# device's daemon at every run, a provisioned one's only with sm_url and
# once per poll_interval.
mkdir -p "$tmp/root/lib" "$tmp/root/etc/init.d"
cp "$tmp/procd-stubs.sh" "$tmp/root/lib/functions.sh"
printf '#!/bin/sh
echo "init $*" >> "%s"
' "$tmp/init.log" > "$tmp/root/etc/init.d/cellprovd"
chmod +x "$tmp/root/etc/init.d/cellprovd"
check_run() {
	rm -f "$tmp/init.log"
	PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" IPKG_INSTROOT="$tmp/root" CELLPROV_CHECK_NOW=1 \
		CELLPROV_CHECK_STAMP="$tmp/run/last-check" sh "$owrt/cellprov-check"
	cat "$tmp/init.log" 2>/dev/null | tr '\n' ' '
}
[ "$(check_run)" = "init enabled init start " ] || fail "check: an armed device's daemon not started: $(check_run)"
touch "$tmp/state/provisioned"
[ "$(check_run)" = "init enabled " ] || fail "check: started a provisioned device without sm_url"
cp "$tmp/uci" "$tmp/uci.orig"
printf "config network 'network'\n\toption sm_url 'https://sm.example.net'\n\toption poll_interval '3600'\n" >> "$tmp/uci"
rm -f "$tmp/run/last-check"
[ "$(check_run)" = "init enabled init start " ] || fail "check: no lifecycle check with sm_url"
[ "$(check_run)" = "init enabled " ] || fail "check: a second lifecycle check within poll_interval"
echo $(($(date +%s) - 3601)) > "$tmp/run/last-check"
[ "$(check_run)" = "init enabled init start " ] || fail "check: no lifecycle check after poll_interval"
mv "$tmp/uci.orig" "$tmp/uci"
rm -f "$tmp/state/provisioned"

# The button: a long press of the configured one runs cellprovctl
# factory-reset, nothing else does (cellprovctl and logger are stubs here).
mkdir -p "$tmp/root/lib"
cp "$tmp/procd-stubs.sh" "$tmp/root/lib/functions.sh"
printf '#!/bin/sh\necho "cellprovctl $*" >> "%s"\n' "$tmp/button.log" > "$tmp/bin/cellprovctl"
printf '#!/bin/sh\n:\n' > "$tmp/bin/logger"
chmod +x "$tmp/bin/cellprovctl" "$tmp/bin/logger"
press() {  # BUTTON ACTION SEEN
	PATH="$tmp/bin:$PATH" UCI_FILE="$tmp/uci" IPKG_INSTROOT="$tmp/root" BUTTON=$1 ACTION=$2 SEEN=$3 \
		sh "$owrt/cellprov.button"
}
rm -f "$tmp/button.log"
press BTN_0 released 12
[ -e "$tmp/button.log" ] && fail "button: a reset with no reset_button configured"
printf "config daemon 'daemon'\n\toption reset_button 'BTN_0'\n\toption reset_seconds '5'\n" >> "$tmp/uci"
press BTN_0 pressed 0
press wps released 9
[ -e "$tmp/button.log" ] && fail "button: a press, or another button, did something"
press BTN_0 released 3
[ "$(cat "$tmp/button.log")" = "cellprovctl ble-window" ] || fail "button: a short press did not open the BLE window"
rm -f "$tmp/button.log"
press BTN_0 released 6
[ "$(cat "$tmp/button.log")" = "cellprovctl factory-reset" ] || fail "button: a long press did not reset"
rm -f "$tmp/button.log"
sed -i "s|option adapter 'hci0'|option adapter ''|" "$tmp/uci"
press BTN_0 released 3
[ -e "$tmp/button.log" ] && fail "button: a short press without BLE did something"

# The seccomp filter is the unit's (SystemCallFilter=), as gen-seccomp makes it.
if command -v systemd-analyze >/dev/null; then
	"$src/packaging/openwrt/cellprov/gen-seccomp" "$src/systemd/cellprovd.service.in" > "$tmp/seccomp.json" ||
		fail "gen-seccomp"
	cmp -s "$tmp/seccomp.json" "$owrt/cellprovd.seccomp.json" ||
		fail "files/cellprovd.seccomp.json is not what gen-seccomp makes of the unit: run it again"
fi
/usr/bin/python3 - "$owrt/cellprovd.seccomp.json" "$owrt/cellprovd.capabilities.json" <<'PY' || fail "jail JSON"
import json, sys
s = json.load(open(sys.argv[1]))
names = s["syscalls"][0]["names"]
for n in ("openat", "ioctl", "connect", "execve", "mlock"):
    assert n in names, n
for n in ("setuid", "init_module", "mount", "reboot", "setrlimit"):
    assert n not in names, n
c = json.load(open(sys.argv[2]))
assert all(v == [] for v in c.values()) and len(c) == 5, c
PY

# OpenWrt's shell (busybox ash), checked as dash, its nearest kin shellcheck knows.
if command -v shellcheck >/dev/null; then
	shellcheck -s dash "$owrt/cellprovd.init" "$owrt/cellprov.hotplug" "$owrt/cellprov-uci2conf" "$owrt/cellprov-check" \
		"$owrt/cellprov.button" ||
		fail "shellcheck"
else
	echo "no shellcheck: the OpenWrt shell not linted"
fi

# The feed: every package names a real source and its hash (no skip).
for mk in "$src"/packaging/openwrt/*/Makefile; do
	grep -q '^PKG_SOURCE_URL:=.\+' "$mk" || fail "$mk: no PKG_SOURCE_URL"
	grep -q '^PKG_HASH:=[0-9a-f]\{64\}$' "$mk" || fail "$mk: no sha256 PKG_HASH"
	grep -q 'skip' "$mk" && fail "$mk: a hash is skipped"
	grep -q '^PKG_HASH:=0\{64\}$' "$mk" && fail "$mk: PKG_HASH is a placeholder (scripts/release writes it)"
done
grep -q '+CELLPROV_NFC:libnfc' "$src/packaging/openwrt/cellprov/Makefile" || fail "cellprov: libnfc is not the NFC variant's"
[ -f "$src/packaging/openwrt/libnfc/Makefile" ] || fail "the feed has no libnfc"

# Yocto: a layer that depends on meta-oe; the recipes' license checksum is
# COPYING's; a pinned SRCREV; a PACKAGECONFIG for every meson feature;
# systemd required; every line of the metadata a bitbake statement.
layer="$src/packaging/yocto/meta-cellprov"
rdir="$layer/recipes-connectivity/cellprov"
grep -q '^LAYERDEPENDS_cellprov = ".*openembedded-layer' "$layer/conf/layer.conf" || fail "layer.conf: no LAYERDEPENDS on openembedded-layer"
grep -q '^BBFILE_COLLECTIONS += "cellprov"' "$layer/conf/layer.conf" || fail "layer.conf: no collection"
inc="$rdir/cellprov.inc"
md5=$(md5sum "$src/COPYING" | cut -d' ' -f1)
grep -qx "LIC_FILES_CHKSUM = \"file://COPYING;md5=$md5\"" "$inc" || fail "cellprov.inc: LIC_FILES_CHKSUM is not COPYING's md5 $md5"
grep -q '^LICENSE = "LGPL-2.1-or-later"$' "$inc" || fail "cellprov.inc: LICENSE"
grep -q '^REQUIRED_DISTRO_FEATURES = "systemd"$' "$inc" || fail "cellprov.inc: systemd not required"
for want in 'inherit meson pkgconfig systemd' 'SYSTEMD_SERVICE:${PN} = "cellprovd.service"' \
	'org.cellprov.Daemon1.conf' 'org.cellprov.Daemon1.service' '80-cellprov.rules'; do
	grep -qF "$want" "$inc" || fail "cellprov.inc lacks $want"
done
for f in $(sed -n "s/^option('\([a-z]*\)', type: 'feature'.*/\1/p" "$src/meson_options.txt"); do
	case $f in ble|fuzz) grep -q -- "-D$f=disabled" "$inc" || fail "cellprov.inc: -D$f not disabled" ;;
	*) grep -q "^PACKAGECONFIG\[$f\] = \"-D$f=enabled,-D$f=disabled" "$inc" || fail "cellprov.inc: no PACKAGECONFIG[$f]" ;;
	esac
done
version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" "$src/meson.build")
[ -f "$rdir/cellprov_$version.bb" ] || fail "no Yocto recipe cellprov_$version.bb for version $version"
grep -q '^SRC_URI\[sha256sum\] = "[0-9a-f]\{64\}"$' "$rdir/cellprov_$version.bb" || fail "cellprov_$version.bb: no sha256"
grep -q '^SRCREV = "[0-9a-f]\{40\}"$' "$rdir/cellprov_git.bb" || fail "cellprov_git.bb: SRCREV is not a pinned commit"
grep -q '"0\{40\}"\|"0\{64\}"' "$rdir"/*.bb && fail "Yocto: a placeholder hash (scripts/release writes them)"
grep -rq 'AUTOREV\|example\.' "$layer" && fail "Yocto: AUTOREV or a placeholder address"
/usr/bin/python3 - "$layer/conf/layer.conf" "$rdir"/*.bb "$rdir"/*.inc <<'PY' || fail "Yocto metadata syntax"
import re, sys
assign = re.compile(r'^[A-Za-z_][A-Za-z0-9_${}:.\-+/]*(\[[A-Za-z0-9_.\-]+\])?\s*(\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*"([^"\\]|\\.)*"$')
for path in sys.argv[1:]:
    text = open(path).read().replace("\\\n", " ")
    infunc = False
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if infunc:
            infunc = s != "}"
            continue
        if not s or s.startswith("#"):
            continue
        if re.match(r"^(inherit|require|include)\s+\S", s):
            continue
        if re.match(r"^[a-z_][a-z0-9_:-]*\(\)\s*\{$", s):
            infunc = True
            continue
        assert assign.match(s), "%s:%d: not a bitbake statement: %s" % (path, n, s)
    assert not infunc, "%s: unterminated function" % path
PY

# scripts/release pins the packaging to a tarball: on a copy of the tree
# given a stand-in tarball, it writes that tarball's sha256 and version.
rel="$tmp/rel"
mkdir -p "$rel/scripts"
cp "$src/scripts/release" "$rel/scripts/"
cp -r "$src/packaging" "$rel/"
printf 'not a real release\n' > "$tmp/cellprov-9.8.7.tar.xz"
sha=$(sha256sum "$tmp/cellprov-9.8.7.tar.xz" | cut -d' ' -f1)
commit=0123456789abcdef0123456789abcdef01234567
sh "$rel/scripts/release" --update "$tmp/cellprov-9.8.7.tar.xz" $commit > /dev/null || fail "scripts/release --update"
rmk="$rel/packaging/openwrt/cellprov/Makefile"
grep -qx "PKG_HASH:=$sha" "$rmk" && grep -qx 'PKG_VERSION:=9.8.7' "$rmk" || fail "release: OpenWrt Makefile not updated"
rbb="$rel/packaging/yocto/meta-cellprov/recipes-connectivity/cellprov"
grep -qx "SRC_URI\[sha256sum\] = \"$sha\"" "$rbb/cellprov_9.8.7.bb" || fail "release: Yocto recipe not renamed and updated"
[ -e "$rbb/cellprov_$version.bb" ] && fail "release: the old Yocto recipe is left"
grep -qx "SRCREV = \"$commit\"" "$rbb/cellprov_git.bb" || fail "release: SRCREV not updated"
if sh "$rel/scripts/release" --update "$tmp/cellprov-9.8.7.tar.xz" 1234 2>/dev/null; then
	fail "release: a short commit id was accepted"
fi
echo ok
