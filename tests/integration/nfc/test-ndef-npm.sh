#!/bin/sh
# The NDEF the device presents, decoded by a codec the project did not
# write: the npm package "ndef", run with the machine's node.
set -u
. "$(dirname "$0")/../../prereq.sh"
command -v node >/dev/null 2>&1 || prereq_missing "no node (Debian package nodejs)"
command -v npm >/dev/null 2>&1 || prereq_missing "no npm (Debian package npm)"
cache=${CP_NPM_CACHE:?}
if [ ! -f "$cache/node_modules/ndef/package.json" ]; then
	mkdir -p "$cache"
	if ! timeout 120 npm install --no-save --no-audit --no-fund --prefix "$cache" ndef >"$cache/npm.log" 2>&1; then
		tail -5 "$cache/npm.log"
		prereq_missing "npm install ndef failed (registry unreachable?), its log above"
	fi
fi
dir=$(mktemp -d)
trap 'kill $dev 2>/dev/null; rm -rf "$dir"' EXIT
"$CP_PN532_SIM" --target-pty "$dir/pty" --scenario read >"$dir/sim.out" &
sim=$!
for i in $(seq 100); do grep -q '^ready' "$dir/sim.out" && break; sleep 0.05; done
"$CP_NFC_HARNESS" "pn532_uart:$dir/pty" >"$dir/dev.out" 2>"$dir/dev.err" &
dev=$!
wait $sim || { echo "FAIL: the phone script failed"; cat "$dir/sim.out"; exit 1; }
read_hex=$(sed -n 's/^ndef //p' "$dir/sim.out")
presented=$(sed -n 's/^content //p' "$dir/dev.out" | head -1)
[ -n "$read_hex" ] || { echo "FAIL: nothing read"; exit 1; }
[ "$read_hex" = "$presented" ] || { echo "FAIL: read differs from presented"; exit 1; }
NODE_PATH="$cache/node_modules" node - "$read_hex" <<'JS'
const ndef = require('ndef');
const bytes = Array.from(Buffer.from(process.argv[2], 'hex'));
const recs = ndef.decodeMessage(bytes);
const fail = (m) => { console.log('FAIL: ' + m); process.exit(1); };
if (recs.length !== 2) fail('want 2 records, got ' + recs.length);
if (recs[0].tnf !== ndef.TNF_WELL_KNOWN || recs[0].type !== 'U') fail('record 1 is not a URI record');
const uri = ndef.uri.decodePayload(recs[0].payload);
if (uri !== 'https://certs.example.net/devices/00112233445566778899aabbccddeeff') fail('URI ' + uri);
if (recs[1].tnf !== ndef.TNF_MIME_MEDIA || recs[1].type !== 'application/vnd.cellprov.device')
	fail('record 2 is not the device record: ' + recs[1].type);
const dr = Buffer.from(recs[1].payload);
// The device record's first TLV: version 1; tag 0x02 device_id of 16 bytes.
if (dr[0] !== 1 || dr[1] !== 0 || dr[2] !== 1 || dr[3] !== 1 || dr[4] !== 2) fail('device record TLVs');
// Re-encoding with the independent codec gives the same bytes.
const again = Buffer.from(ndef.encodeMessage(recs)).toString('hex');
if (again !== process.argv[2]) fail('re-encoded message differs');
console.log('ndef (npm) decodes: ' + uri + ', ' + recs[1].type + ' of ' + dr.length + ' bytes');
JS
