#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cellprov-tool from the command line: its outputs against the 3GPP vector
files (every value), its errors and exit statuses, and decode on the
published vectors."""

import json
import os
import subprocess
import sys
import tempfile

TOOL = sys.argv[1]
VECTORS = os.environ["CP_VECTORS_DIR"]
SOURCE = os.environ["CP_SOURCE_DIR"]
failures = 0
checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def run(*args, stdin=None):
    p = subprocess.run([TOOL, *args], capture_output=True, text=True, input=stdin)
    return p.returncode, p.stdout, p.stderr


def load(path):
    blocks, cur = [], None
    for line in open(path):
        line = line.strip()
        if line.startswith("#"):
            continue
        if not line:
            cur = None
            continue
        if "=" not in line:
            continue
        k, v = (s.strip() for s in line.split("=", 1))
        if cur is None:
            cur = {}
            blocks.append(cur)
        cur[k] = v
    return blocks


def flip(hexstr, bit=0):
    b = bytearray(bytes.fromhex(hexstr))
    b[-1] ^= 1 << bit
    return b.hex()


# Milenage: every value of every test set, with --op and with --opc.
for s in load(os.path.join(VECTORS, "milenage-ts35207.txt")):
    for key_opt in (("--op", s["OP"]), ("--opc", s["OPc"])):
        rc, out, err = run("milenage", "--k", s["K"], *key_opt, "--rand", s["RAND"],
                           "--sqn", s["SQN"], "--amf", s["AMF"])
        check(rc == 0, f"milenage set {s['set']} {key_opt[0]}: rc {rc} {err}")
        if rc:
            continue
        o = json.loads(out)
        check(o["opc"] == s["OPc"].lower(), f"set {s['set']} opc")
        for f in ("f1", "f1star", "f2", "f3", "f4", "f5", "f5star"):
            check(o[f] == s[f].lower(), f"set {s['set']} {f}: {o[f]} != {s[f]}")

# ECIES: both profiles, encrypt with the fixed ephemeral key, decrypt back,
# and a wrong MAC is exit 1 with the error.
for s in load(os.path.join(VECTORS, "ecies-ts33501.txt")):
    prof = s["profile"]
    rc, out, err = run("ecies-encrypt", "--profile", prof, "--pubkey", s["hn_pubkey"],
                       "--eph-privkey", s["eph_privkey"], "--plaintext", s["plaintext"])
    check(rc == 0, f"ecies-encrypt {prof}: {err}")
    if rc == 0:
        o = json.loads(out)
        check(o["eph-pubkey"] == s["eph_pubkey"], f"ecies {prof} eph_pubkey")
        check(o["ciphertext"] == s["ciphertext"], f"ecies {prof} ciphertext")
        check(o["mac"] == s["mac"], f"ecies {prof} mac")
    rc, out, err = run("ecies-decrypt", "--profile", prof, "--privkey", s["hn_privkey"],
                       "--eph-pubkey", s["eph_pubkey"], "--ciphertext", s["ciphertext"],
                       "--mac", s["mac"])
    check(rc == 0 and json.loads(out)["plaintext"] == s["plaintext"], f"ecies-decrypt {prof}: {err}")
    rc, out, err = run("ecies-decrypt", "--profile", prof, "--privkey", s["hn_privkey"],
                       "--eph-pubkey", s["eph_pubkey"], "--ciphertext", s["ciphertext"],
                       "--mac", flip(s["mac"]))
    check(rc == 1 and "decrypt" in err, f"ecies-decrypt {prof} wrong mac: rc {rc} {err}")
    # A fresh ephemeral key round-trips.
    rc, out, err = run("ecies-encrypt", "--profile", prof, "--pubkey", s["hn_pubkey"],
                       "--plaintext", "00112233")
    o = json.loads(out) if rc == 0 else {}
    rc, out, err = run("ecies-decrypt", "--profile", prof, "--privkey", s["hn_privkey"],
                       "--eph-pubkey", o.get("eph-pubkey", "00"), "--ciphertext",
                       o.get("ciphertext", "00"), "--mac", o.get("mac", "00" * 8))
    check(rc == 0 and json.loads(out)["plaintext"] == "00112233", f"ecies {prof} fresh key round trip")

# KDF: FC || P0 || L0, computed here with Python's hmac.
import hashlib
import hmac
key = bytes(range(32))
p0, p1 = b"\x01\x02\x03", b"usim-k"
want = hmac.new(key, b"\xf4" + p0 + len(p0).to_bytes(2, "big") + p1 + len(p1).to_bytes(2, "big"),
                hashlib.sha256).hexdigest()
rc, out, err = run("kdf", "--key", key.hex(), "--fc", "F4", "--param", p0.hex(), "--param", p1.hex())
check(rc == 0 and json.loads(out)["out"] == want, f"kdf: {out} {err}")

# keys: against the published vectors.
pub = {}
for b in load(os.path.join(SOURCE, "docs", "test-vectors", "cellprov-v2.txt")):
    pub.update(b)
rc, out, err = run("keys", "--kc", pub["k_c"], "--device-id", pub["device_id"], "--supi",
                   pub["supi_text"], "--op", pub["op"], "--nonce", pub["nonce"],
                   "--device-info", pub["device_info"])
check(rc == 0, f"keys: {err}")
if rc == 0:
    o = json.loads(out)
    for k in ("k_prime", "k_usim", "opc", "k_sm", "k2", "k_prof"):
        check(o[k.replace("_", "-")] == pub[k], f"keys {k}")

# decode: each published structure, with and without keys.
with tempfile.TemporaryDirectory() as d:
    def write(name, hexstr):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(bytes.fromhex(hexstr))
        return path

    keypem = os.path.join(d, "device-key.pem")
    der = subprocess.run(["openssl", "ec", "-inform", "DER", "-outform", "PEM"], capture_output=True,
                         input=bytes.fromhex("30310201010420" + pub["device_privkey"] +
                                             "a00a06082a8648ce3d030107"))
    pk8 = subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt"], capture_output=True, input=der.stdout)
    with open(keypem, "wb") as f:
        f.write(pk8.stdout)
    pubpem = os.path.join(d, "device-pub.pem")
    with open(pubpem, "wb") as f:
        f.write(subprocess.run(["openssl", "pkey", "-pubout"], capture_output=True, input=pk8.stdout).stdout)

    rc, out, err = run("decode", write("profile", pub["profile"]), "--k-prof", pub["k_prof"])
    o = json.loads(out) if rc == 0 else {}
    check(o.get("type") == "profile" and o.get("mac-verified") is True, f"decode profile: {err}")
    check(o.get("fields", {}).get("supi") == pub["supi_text"], "decode profile supi")
    rc, out, err = run("decode", write("profile", pub["profile"]), "--device-key", keypem,
                       "--device-info", pub["device_info"], "--now", "1800000000")
    o = json.loads(out) if rc == 0 else {}
    check(o.get("verified") is True and o.get("keys", {}).get("k2") == pub["k2"], f"decode --device-key: {err}")
    check(o.get("operator", {}).get("root-spki-sha256") == pub["op_root_spki_sha256"] and
          o.get("operator", {}).get("name") == pub["op_name_text"], f"decode names the operator: {out}")
    # The device's trust: the published operator's root as its anchor;
    # another root; bound to the operator (pin) at binding version 1.
    root_pem = write("root.pem", "")
    with open(root_pem, "wb") as f:
        f.write(subprocess.run(["openssl", "x509", "-inform", "DER", "-outform", "PEM"], capture_output=True,
                               input=bytes.fromhex(pub["op_root_cert"])).stdout)
    other_key = write("other-root.key", "")
    other_pem = write("other-root.pem", "")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", other_key, "-out", other_pem, "-subj", "/O=Other Operator/CN=root",
                    "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True)
    base = ["decode", write("profile", pub["profile"]), "--device-key", keypem,
            "--device-info", pub["device_info"], "--now", "1800000000"]
    rc, out, err = run(*base, "--operator-roots", root_pem)
    check(rc == 0 and json.loads(out).get("verified") is True, f"decode with the operator's root: {err}")
    rc, out, err = run(*base, "--operator-roots", other_pem)
    check(rc == 1 and "operator" in err, f"decode with another operator's root: rc {rc} {err}")
    rc, out, err = run(*base, "--pin", pub["op_root_spki_sha256"], "--binding", "2")
    check(rc == 1 and "binding" in err, f"a device bound at another version refuses the claim: rc {rc} {err}")
    rc, out, err = run(*base, "--pin", pub["op_root_spki_sha256"], "--binding", "1")
    check(rc == 0, f"a device bound at the claim's version takes it (its owner again): rc {rc} {err}")
    rc, out, err = run(*base, "--pin", "00" * 32, "--binding", "1")
    check(rc == 1 and "operator" in err, f"a device pinned to another root: rc {rc} {err}")
    rc, out, err = run(*base, "--pin", pub["op_root_spki_sha256"])
    check(rc == 2, f"--pin without --binding is a usage error: rc {rc}")
    rc, out, err = run(*base, "--operator-roots", keypem)
    check(rc == 2, f"--operator-roots that holds no certificate is a usage error: rc {rc}")
    rc, out, err = run("decode", write("profile", pub["profile"]), "--k-prof", flip(pub["k_prof"]))
    check(rc == 1 and "mac" in err, f"decode profile wrong k-prof: rc {rc}")
    rc, out, err = run("decode", write("rc", pub["receipt"]), "--k2", pub["k2"])
    o = json.loads(out) if rc == 0 else {}
    check(o.get("type") == "receipt" and o.get("mac-verified") is True, f"decode receipt: {err}")
    rc, out, err = run("decode", write("rc", pub["receipt"]), "--k2", flip(pub["k2"]))
    check(rc == 1 and "receipt-mac" in err, f"decode receipt wrong k2: rc {rc} {err}")
    rc, out, err = run("decode", write("dr", pub["device_record"]), "--pubkey", pubpem)
    o = json.loads(out) if rc == 0 else {}
    check(o.get("type") == "device-record" and o.get("signature-verified") is True, f"decode dr: {err}")
    rc, out, err = run("decode", write("tag", pub["ndef_tag"]))
    o = json.loads(out) if rc == 0 else {}
    recs = o.get("records", [])
    check(len(recs) == 2 and recs[0].get("uri") == pub["certificate_url_text"], f"decode ndef: {out} {err}")
    check(len(recs) == 2 and recs[1].get("payload", {}).get("type") == "device-record", "decode ndef dr")
    # The T4T NDEF file form, NLEN first.
    nlen = (len(pub["ndef_tag"]) // 2).to_bytes(2, "big").hex()
    rc, out, err = run("decode", write("file", nlen + pub["ndef_tag"]))
    check(rc == 0 and json.loads(out).get("nlen") == len(pub["ndef_tag"]) // 2, f"decode nlen: {err}")

    # An NDEF record is decoded as its MIME type says: a structure of
    # another kind in it is a type mismatch, not a guess.
    def ndef_mime(mime, payload_hex):
        t, p = mime.encode(), bytes.fromhex(payload_hex)
        return (bytes([0xC2, len(t)]) + len(p).to_bytes(4, "big") + t + p).hex()
    mime = "application/vnd.cellprov."
    for rtype, payload, kind in (("profile", "profile", "profile"), ("receipt", "receipt", "receipt"),
                                 ("device", "device_record", "device-record")):
        rc, out, err = run("decode", write("m-" + rtype, ndef_mime(mime + rtype, pub[payload])))
        o = json.loads(out) if rc == 0 else {}
        got = o.get("records", [{}])[0].get("payload", {}).get("type")
        check(rc == 0 and got == kind, f"decode a {rtype} record: {out} {err}")
    for rtype, payload, found in (("receipt", "profile", "profile"), ("profile", "receipt", "receipt"),
                                  ("device", "profile", "profile"), ("receipt", "device_record", "device record")):
        rc, out, err = run("decode", write("x-" + rtype, ndef_mime(mime + rtype, pub[payload])))
        e = json.loads(out).get("error", {}) if out else {}
        check(rc == 1 and e.get("name") == "bad-value" and "type mismatch" in e.get("where", "")
              and ("a %s where" % found) in e.get("where", "") and mime + rtype in e.get("where", ""),
              f"decode a {payload} in a {rtype} record: rc {rc} {out}")
    rc, out, err = run("decode", write("t-profile", ndef_mime(mime + "profile", pub["profile"][:-2])))
    e = json.loads(out).get("error", {}) if out else {}
    check(rc == 1 and e.get("name") == "truncated" and "type mismatch" not in e.get("where", ""),
          f"decode a truncated profile record: {out}")

    # Decode failures: code and name, exit 1, nothing on stdout but the error.
    prof = pub["profile"]
    rc, out, err = run("decode", write("trunc", prof[:-2]))
    check(rc == 1 and json.loads(out)["error"]["name"] == "truncated", f"decode truncated: {out}")
    rc, out, err = run("decode", write("trail", prof + "00"))
    check(rc == 1 and json.loads(out)["error"]["code"] in (0x0102, 0x010A), f"decode trailing: {out}")
    rc, out, err = run("decode", write("empty", ""))
    check(rc == 1 and "error" in json.loads(out), f"decode empty: {out}")

    # An NDEF record type is any bytes: the output stays valid UTF-8 JSON,
    # well-formed sequences kept, the rest U+FFFD, controls escaped.
    path = os.path.join(d, "type.ndef")
    with open(path, "wb") as f:
        f.write(bytes.fromhex("d20801") + b"\xc3\xa9\xff\xe2\x82\xac\x01\xc0" + b"\x00")
    p = subprocess.run([TOOL, "decode", path], capture_output=True)
    try:
        o = json.loads(p.stdout.decode("utf-8"))
    except ValueError as e:
        o = {"invalid": str(e)}
    check(p.returncode == 0 and o.get("records", [{}])[0].get("record-type") ==
          "\u00e9\ufffd\u20ac\u0001\ufffd", f"decode non-UTF-8 record type: {o}")

# Bad arguments: one line on stderr, exit 2.
# decode --ble on the published BLE stream, and the stream read here by
# the rules of docs/protocol.md 18.4 (independently of the codec).
ble_path = os.path.join(SOURCE, "docs", "test-vectors", "ble-read-tag.txt")
rc, out, err = run("decode", "--ble", ble_path)
check(rc == 0, f"decode --ble: {err}")
if rc == 0:
    d = json.loads(out)
    msgs = d["messages"]
    check(d["type"] == "ble-stream" and len(msgs) == 2, "decode --ble: two messages")
    check(msgs[0]["op"] == "read-tag" and not msgs[0]["response"] and msgs[0]["length"] == 2,
          "decode --ble: the request")
    check(msgs[1]["response"] and msgs[1]["status-name"] == "ok" and msgs[1]["segments"] == 16
          and msgs[1]["length"] == 277, "decode --ble: the answer")
    recs = msgs[1].get("body", {}).get("records", [])
    check(len(recs) == 2 and recs[1]["payload"]["fields"]["device-id"] == pub["device_id"],
          "decode --ble: the device record inside")
lines = [l.split() for l in open(ble_path) if l[:1] in "<>"]
rx = {">": bytearray(), "<": bytearray()}
want_len = {}
seqs = {">": 0, "<": 0}
for direction, hexseg in lines:
    seg = bytes.fromhex(hexseg)
    check(len(seg) <= 20, f"ble stream: {hexseg} longer than MTU 23 allows")
    flags, p = seg[0], 1
    if flags & 4:
        p += 1
    if flags == 4 and len(seg) == 2:
        continue
    check(seg[p] == seqs[direction] % 256, f"ble stream: seq of {hexseg}")
    seqs[direction] += 1
    p += 1
    if flags & 1:
        want_len[direction] = int.from_bytes(seg[p:p + 2], "big")
        p += 2
    rx[direction] += seg[p:]
check(bytes(rx[">"]) == bytes.fromhex("0101"), "ble stream: the request bytes")
check(bytes(rx["<"]) == bytes.fromhex("01810000" + pub["ndef_tag"]) and want_len["<"] == len(rx["<"]),
      "ble stream: the answer is 01 81 00 00 and ndef_tag")

with tempfile.TemporaryDirectory() as d:
    def ble_stream(text):
        path = os.path.join(d, "stream.txt")
        with open(path, "w") as f:
            f.write(text)
        return run("decode", "--ble", path)

    # a long write: the request's data in a second piece at offset 4
    rc, out, err = ble_stream("# long write\n> 03000002 01\n> @4 01\n")
    check(rc == 1, "decode --ble: hex with a space is refused")
    rc, out, err = ble_stream("# long write\n> 0300000201\n> @5 01\n< 0400\n")
    check(rc == 0 and json.loads(out)["messages"][0]["op"] == "read-tag", f"decode --ble long write: {out} {err}")
    for text, name in (("> 0300000201\n> @6 01\n", "ble-offset"),
                       ("> 0100000301\n> 000122\n> 000122\n", "ble-sequence"),
                       ("> 0100000301\n> 000222\n", "ble-sequence"),
                       ("> 030000020101\n< 0401\n", "ble-ack"),
                       ("> 03000002010a\n", "ble-opcode"),
                       ("> 030000010205\n", "ble-length"),
                       ("> 0300000101\n", "ble-message"),
                       ("> 01001005aa\n", "ble-too-large"),
                       ("> 0100000a01\n> 000101\n> 000201\n> 000301\n> 000401\n", "ble-window"),
                       ("= 0300000101\n", "ble-segment"),
                       ("", "ble-segment"),
                       ("# only a comment\n\n", "ble-segment"),
                       # cut inside a message, after a whole one
                       ("> 030000020101\n< 0400\n> 0101000301\n", "ble-length"),
                       ("< 0100000401\n", "ble-length")):
        rc, out, err = ble_stream(text)
        got = json.loads(out).get("error", {}).get("name") if out.strip() else None
        check(rc == 1 and got == name, f"decode --ble {text!r}: {rc} {got}, want {name}")

for args in (["milenage", "--k", "00"], ["milenage"], ["kdf", "--key", "zz", "--fc", "f0"],
             ["kdf", "--key", "00", "--fc", "f0f1"], ["ecies-encrypt", "--profile", "C"],
             ["keys", "--kc", "00" * 32, "--device-id", "00" * 16, "--supi", "12ab",
              "--op", "00" * 16, "--nonce", "00" * 16, "--device-info", "00"],
             ["nosuchcommand"], [], ["decode"], ["decode", "/nonexistent/file"],
             ["milenage", "--k", "00" * 16, "--op", "00" * 16, "--opc", "00" * 16,
              "--rand", "00" * 16, "--sqn", "00" * 6, "--amf", "0000"]):
    rc, out, err = run(*args)
    check(rc == 2 and err.count("\n") == 1 and out == "", f"bad args {args}: rc {rc} err {err!r}")

rc, out, err = run("--help")
check(rc == 0 and "milenage" in out and "decode" in out, "--help")

print(f"test-cellprov-tool: {checks} checks, {failures} failed")
sys.exit(1 if failures or not checks else 0)
