#!/bin/sh
# Real mbimcli against cp-mbim-sim through a real mbim-proxy, in a network
# namespace of its own (the proxy's socket is the abstract @mbim-proxy):
# device caps and services, subscriber ready status, radio state,
# registration, packet service, provisioned contexts (query and set), the
# Microsoft UICC low-level access service (ATR, open channel, APDU, close
# channel, reset) and a fault knob. mbimcli 1.28 has no MS device reset:
# the re-enumeration is tested through cp-mbim (test-mbim.c).
set -u
. "$(dirname "$0")/../../prereq.sh"
sim=$1
mbimcli=$2
proxy=$3
[ -n "$mbimcli" ] || prereq_missing "mbimcli (Debian package libmbim-utils) is not installed"
[ -n "$proxy" ] || prereq_missing "mbim-proxy (Debian package libmbim-proxy) is not installed"
if [ -z "${CP_MBIM_NETNS:-}" ]; then
	unshare -n true 2>/dev/null || prereq_missing "no network namespace (unshare -n) for a private @mbim-proxy"
	CP_MBIM_NETNS=1 exec unshare -n sh "$0" "$@"
fi
dir=$(mktemp -d)
pid=
ppid_=
trap 'kill $pid $ppid_ 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; sed 's/^/sim: /' "$dir/log" 2>/dev/null; exit 1; }

"$proxy" --no-exit 2>"$dir/proxy.log" &
ppid_=$!
# until it listens: else mbimcli would spawn a proxy of its own
for i in $(seq 50); do grep -q "@mbim-proxy" /proc/net/unix && break; sleep 0.1; done
grep -q "@mbim-proxy" /proc/net/unix || fail "mbim-proxy does not listen"

cat >"$dir/subscribers" <<EOS
001010123456789 000102030405060708090a0b0c0d0e0f 0f0e0d0c0b0a09080706050403020100 000000000020
EOS
"$sim" --pty "$dir/cdc-wdm0" --dump "$dir/dump" --subscribers "$dir/subscribers" \
	--reset-delay=100 --registration-delay=50 \
	--fail=basic-connect:10:1 >"$dir/ready" 2>"$dir/log" &
pid=$!
for i in $(seq 50); do grep -q ready "$dir/ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$dir/ready" || fail "simulator not ready"

m() { timeout 10 "$mbimcli" -p -d "$dir/cdc-wdm0" "$@" 2>&1; }

out=$(m --query-device-caps) || fail "device caps: $out"
echo "$out" | grep -q "Device ID: '490154203237518'" || fail "device ID: $out"
out=$(m --query-device-services) || fail "device services: $out"
echo "$out" | grep -q "Service: 'ms-uicc-low-level-access'" || fail "UICC service: $out"
echo "$out" | grep -q "apdu (4)" || fail "APDU CID: $out"
echo "$out" | grep -q "device-reset (10)" || fail "device reset CID: $out"
out=$(m --query-subscriber-ready-status) || fail "subscriber: $out"
echo "$out" | grep -q "Ready state: 'initialized'" || fail "ready state: $out"
echo "$out" | grep -q "Subscriber ID: '001010123456789'" || fail "IMSI: $out"
echo "$out" | grep -q "SIM ICCID: '8988211000000000017'" || fail "ICCID: $out"
out=$(m --query-radio-state) || fail "radio: $out"
echo "$out" | grep -q "Software radio state: 'on'" || fail "radio state: $out"
# the simulator's network knows the card, so it registers
for i in $(seq 30); do
	out=$(m --query-registration-state)
	echo "$out" | grep -q "Register state: 'home'" && break
	sleep 0.1
done
echo "$out" | grep -q "Register state: 'home'" || fail "registration: $out"
echo "$out" | grep -q "Provider ID: '00101'" || fail "provider: $out"
echo "$out" | grep -q "cellprov test network" || fail "network name: $out"
# fault knob: the first packet service query gets FAILURE, the second not
out=$(m --query-packet-service-state) && fail "packet service fault not seen: $out"
echo "$out" | grep -qi "failure" || fail "packet service fault: $out"
out=$(m --query-packet-service-state) || fail "packet service: $out"
echo "$out" | grep -q "Packet service state: 'attached'" || fail "attached: $out"
out=$(m --query-provisioned-contexts) || fail "contexts: $out"
echo "$out" | grep -q "Access string: 'internet'" || fail "APN: $out"
out=$(m --set-provisioned-contexts="context-id=1,context-type=internet,auth=none,compression=none,access-string=iot.example") \
	|| fail "set context: $out"
grep -q "^apn=iot.example$" "$dir/dump" || fail "APN not in the modem: $(cat "$dir/dump")"
out=$(m --query-provisioned-contexts) || fail "contexts: $out"
echo "$out" | grep -q "Access string: 'iot.example'" || fail "new APN: $out"

out=$(m --ms-query-uicc-atr) || fail "ATR: $out"
# the card's own ATR (the dump's, colon-separated as mbimcli prints it)
atr=$(sed -n 's/^atr=//p' "$dir/dump" | tr a-f A-F | sed 's/\(..\)/\1:/g; s/:$//')
[ -n "$atr" ] || fail "no ATR in the dump"
echo "$out" | grep -q "$atr" || fail "ATR bytes: $out (want $atr)"
out=$(m --ms-set-uicc-open-channel="application-id=A0000000871002,channel-group=1") || fail "open channel: $out"
echo "$out" | grep -q "status: 36864" || fail "open channel SW 9000: $out"
ch=$(echo "$out" | sed -n 's/.*channel: \([0-9]*\)$/\1/p')
[ -n "$ch" ] && [ "$ch" -ge 1 ] || fail "channel number: $out"
out=$(m --ms-set-uicc-apdu="channel=$ch,secure-message=none,classbyte-type=inter-industry,command=00A4000C026F07") \
	|| fail "select: $out"
echo "$out" | grep -q "status: 36864" || fail "select SW: $out"
out=$(m --ms-set-uicc-apdu="channel=$ch,secure-message=none,classbyte-type=inter-industry,command=00B0000009") \
	|| fail "read: $out"
echo "$out" | grep -q "08:09:10:10:10:32:54:76:98" || fail "EF.IMSI: $out"
# a wrong ADM1 counts down (SW 63C2 = 25538)
out=$(m --ms-set-uicc-apdu="channel=$ch,secure-message=none,classbyte-type=inter-industry,command=0020000A083030303030303030") \
	|| fail "verify: $out"
echo "$out" | grep -q "status: 25538" || fail "wrong ADM1 SW: $out"
grep -q "^adm1-retries=2$" "$dir/dump" || fail "ADM1 retries: $(cat "$dir/dump")"
out=$(m --ms-set-uicc-close-channel="channel=$ch,channel-group=1") || fail "close channel: $out"
out=$(m --ms-set-uicc-apdu="channel=$ch,secure-message=none,classbyte-type=inter-industry,command=00B0000009") \
	|| fail "APDU on a closed channel: $out"
echo "$out" | grep -q "status: 26753" || fail "closed channel SW 6881: $out"
out=$(m --ms-set-uicc-reset=disable) || fail "UICC reset: $out"
out=$(m --ms-query-uicc-reset) || fail "UICC reset query: $out"
echo "$out" | grep -qi "disabled" || fail "pass-through: $out"

out=$(m --set-radio-state=off) || fail "radio off: $out"
grep -q "^registration=deregistered$" "$dir/dump" || fail "deregistered: $(cat "$dir/dump")"
out=$(m --set-radio-state=on) || fail "radio on: $out"
grep -q "^radio=on$" "$dir/dump" || fail "radio on: $(cat "$dir/dump")"

echo "mbimcli: all checks passed"
