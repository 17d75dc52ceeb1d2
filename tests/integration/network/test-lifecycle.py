#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The device lifecycle against the real SM and AUSF: re-provisioning with
key rotation (both key generations valid until the device's signed receipt
retires the old one), transfer with a single-use token, decommission, the
decommission timeout, GET /v1/devices. The device side is cp-test-device on
the protocol library."""

import base64
import json
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netbench  # noqa: E402
from netbench import check, main  # noqa: E402

MIME_PROFILE = b"application/vnd.cellprov.profile"
MIME_COMMAND = b"application/vnd.cellprov.command"


def ndef(mime, payload):
    """One MIME record, as the companion writes it on the tag."""
    if len(payload) < 256:
        return bytes([0xD2, len(mime), len(payload)]) + mime + payload
    return bytes([0xC2, len(mime)]) + struct.pack(">I", len(payload)) + mime + payload


def dev_id(b, name):
    return b.devices[name]["device-id"]


def sub_lines(b, supi=None):
    lines = [l.split() for l in open(b.export_subscribers()) if not l.startswith("#") and l.strip()]
    return [l for l in lines if supi is None or l[0] == supi]


def device(b, name, tag, message, mime, bound=None, last_seq=0, k2_in=None):
    """The device takes a profile or command: JSON result, receipt bytes."""
    msg = b.path("msg-%s-%d" % (name, last_seq))
    with open(msg, "wb") as f:
        f.write(ndef(mime, base64.b64decode(message)))
    receipt = msg + ".receipt"
    b.counter[name] += 1
    args = [b.prog("tests/integration/network/cp-test-device"), "accept", "--config", b.conf(name),
            "--tag", tag, "--profile", msg, "--last-seq", str(last_seq), "--counter", str(b.counter[name]),
            "--registration", "00101", "--receipt-out", receipt, "--subscribers", b.export_subscribers(),
            "--k2-out", b.path("k2-" + name)]
    if bound is not None:
        args += ["--bound", str(bound)]
    if k2_in:
        args += ["--k2-in", k2_in]
    r = b.run(args, check_rc=False)
    return json.loads(r.stdout), open(receipt, "rb").read() if os.path.exists(receipt) else None


def post(b, name, action, body=None, token=None):
    return b.sm_request("POST", "/v1/devices/%s/%s" % (dev_id(b, name), action),
                        body=json.dumps(body or {}), token=token)


def relay(b, name, receipt, token=None):
    return post(b, name, "receipt", {"receipt": base64.b64encode(receipt).decode()}, token=token)


def claim(b, name):
    tag = b.tag(name)
    st, res = b.provision_raw(b.devices[name]["certificate-url"], tag_record(b, tag))
    check(st == 200 and res["operation"] == "claim", "%s claimed (%s)" % (name, st))
    dev, receipt = device(b, name, tag, res["profile"], MIME_PROFILE)
    check(dev["result"] == "ok" and dev["subscriber"], "the device takes the claim profile")
    return tag, res, receipt


def tag_record(b, tag):
    """The device record of a tag file (NDEF): its second record's payload."""
    data = open(tag, "rb").read()
    i = 0
    while i < len(data):
        h = data[i]
        tlen = data[i + 1]
        if h & 0x10:
            plen = data[i + 2]
            j = i + 3
        else:
            plen = struct.unpack(">I", data[i + 2:i + 6])[0]
            j = i + 6
        if h & 0x08:
            j += 1 + data[j - 0]  # id length (not used by cellprov tags)
        t = data[j:j + tlen]
        if t == b"application/vnd.cellprov.device":
            return base64.b64encode(data[j + tlen:j + tlen + plen]).decode()
        i = j + tlen + plen
    raise netbench.Fail("no device record on " + tag)


def test_reprovision(b):
    b.make_device("rp")
    tag, res1, receipt = claim(b, "rp")
    st, ans = relay(b, "rp", receipt)
    check(st == 200 and ans["result"] == "processed" and ans["status"] == "provisioned",
          "the claim receipt is processed (%r)" % ans)
    supi = res1["supi"]
    st, res2 = post(b, "rp", "reprovision", {"apn": "rotated.apn"})
    check(st == 200 and res2["operation"] == "reprovision" and res2["supi"] == supi and
          res2["binding-version"] == 1 and res2["generation"] == 2,
          "reprovision: same SUPI, same binding version, key generation 2 (%r)" % (res2.get("generation"),))
    both = sub_lines(b, supi)
    check(len(both) == 2 and both[0][1:3] != both[1][1:3], "the AUSF exports both key generations of the SUPI")
    dev, receipt2 = device(b, "rp", tag, res2["profile"], MIME_PROFILE, bound=1, last_seq=res1["profile-seq"])
    check(dev["result"] == "ok" and dev["apn"] == "rotated.apn" and dev["operation"] == 2 and dev["subscriber"],
          "the bound device takes the reprovision profile, new keys in the export")
    forged = bytearray(receipt2)
    forged[-40] ^= 0x01
    st, ans = relay(b, "rp", bytes(forged))
    check(st in (400, 403), "a forged receipt is refused (%d %r)" % (st, ans.get("error", {}).get("code")))
    check(len(sub_lines(b, supi)) == 2, "... and retires nothing")
    st, ans = relay(b, "rp", receipt2, token=b.neighbour_token)
    check(st == 200 and ans["action"] == "retired-older-keys",
          "the signed receipt, relayed by anyone, retires the older keys (%r)" % ans)
    left = sub_lines(b, supi)
    check(len(left) == 1 and left[0][1:3] == both[0][1:3], "only the new key generation is left")
    st, ans = relay(b, "rp", receipt2)
    check(st == 200 and ans["result"] == "already-processed", "a replayed receipt changes nothing")
    check(sub_lines(b, supi) == left, "... the export is unchanged")
    st, lst = b.sm_request("GET", "/v1/devices")
    mine = [d for d in lst["devices"] if d["device-id"] == dev_id(b, "rp")]
    check(st == 200 and len(mine) == 1 and mine[0]["binding-version"] == 1 and mine[0]["state"] == "bound" and
          mine[0]["supi"] == supi, "GET /v1/devices lists the owner's device")
    st, lst = b.sm_request("GET", "/v1/devices", token=b.neighbour_token)
    check(all(d["device-id"] != dev_id(b, "rp") for d in lst["devices"]), "... and not to another companion")
    b.lc = (tag, res2["profile-seq"], supi)


def test_transfer(b):
    tag, seq, old_supi = b.lc
    st, ans = post(b, "rp", "transfer-token", {"new-owner": "neighbour"}, token=b.neighbour_token)
    check(st == 403 and ans["error"]["code"] == "not-owner", "only the owner asks for a transfer token")
    st, ans = post(b, "rp", "transfer-token", {"new-owner": "nobody"})
    check(st == 400 and ans["error"]["code"] == "unknown-owner", "a token for an unknown companion is refused")
    st, tok = post(b, "rp", "transfer-token", {"new-owner": "neighbour"})
    check(st == 200 and len(tok["token"]) >= 32 and tok["expires"] > time.time(), "the owner gets a token")
    st, ans = post(b, "rp", "accept-transfer", {"token": tok["token"]})
    check(st == 403 and ans["error"]["code"] == "bad-token", "a token presented by another than its new owner: refused")
    st, ans = post(b, "rp", "accept-transfer", {"token": "0" * 48}, token=b.neighbour_token)
    check(st == 403 and ans["error"]["code"] == "bad-token", "an unknown token: refused")
    results = [None, None]
    start = threading.Event()

    def go(k):
        start.wait()
        results[k] = post(b, "rp", "accept-transfer", {"token": tok["token"]}, token=b.neighbour_token)

    threads = [threading.Thread(target=go, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(60)
    check(sorted(r[0] for r in results) == [200, 403], "one token used twice at once: exactly one wins")
    res = [r[1] for r in results if r[0] == 200][0]
    check(res["operation"] == "transfer" and res["binding-version"] == 2 and res["replaces"] == 1 and
          res["supi"] != old_supi, "the transfer profile: binding version 2 replaces 1, a new SUPI")
    st, ans = post(b, "rp", "accept-transfer", {"token": tok["token"]}, token=b.neighbour_token)
    check(st == 403 and ans["error"]["code"] == "bad-token", "a used token: refused")
    check(sub_lines(b, old_supi) and sub_lines(b, res["supi"]), "both SUPIs are subscribers until the device confirms")
    st, ans = post(b, "rp", "reprovision", {})
    check(st == 403 and ans["error"]["code"] == "not-owner", "the old owner can no longer reprovision")
    dev, receipt = device(b, "rp", tag, res["profile"], MIME_PROFILE, bound=1, last_seq=seq)
    check(dev["result"] == "ok" and dev["operation"] == 3 and dev["subscriber"], "the device takes the transfer")
    st, ans = relay(b, "rp", receipt, token=b.neighbour_token)
    check(st == 200 and ans["action"] == "removed-previous-owner", "its receipt removes the old owner's SUPI")
    check(not sub_lines(b, old_supi) and sub_lines(b, res["supi"]), "the old SUPI is gone, the new one stays")
    b.lc = (tag, res["profile-seq"], res["supi"])


def test_decommission(b):
    tag, seq, supi = b.lc
    st, ans = post(b, "rp", "decommission", {})
    check(st == 403 and ans["error"]["code"] == "not-owner", "only the owner decommissions")
    st, cmd = post(b, "rp", "decommission", {}, token=b.neighbour_token)
    check(st == 200 and cmd["binding-version"] == 2 and cmd["seq"] == seq + 1, "the owner gets a decommission command")
    st, lst = b.sm_request("GET", "/v1/devices", token=b.neighbour_token)
    check([d["state"] for d in lst["devices"] if d["device-id"] == dev_id(b, "rp")] == ["releasing"],
          "the binding is releasing")
    dev, receipt = device(b, "rp", tag, cmd["command"], MIME_COMMAND, bound=2, last_seq=seq,
                          k2_in=b.path("k2-rp"))
    check(dev["result"] == "ok" and dev["command"] == 1, "the device verifies the operator-signed command")
    st, ans = relay(b, "rp", receipt, token=b.neighbour_token)
    check(st == 200 and ans["status"] == "decommissioned" and ans["action"] == "released",
          "the decommissioned receipt releases the device (%r)" % ans)
    check(not sub_lines(b, supi), "the subscriber is gone")
    st, res = b.provision_raw(b.devices["rp"]["certificate-url"], tag_record(b, b.tag("rp")))
    check(st == 200 and res["operation"] == "claim" and res["binding-version"] == 3,
          "anyone may claim the released device, at binding version 3")


def test_timeout(b):
    b.make_device("to")
    tag, res, receipt = claim(b, "to")
    st, cmd = post(b, "to", "decommission", {})
    check(st == 200, "decommission issued")
    st, ans = post(b, "to", "transfer-token", {"new-owner": "neighbour"})
    check(st == 409 and ans["error"]["code"] == "releasing", "no transfer while releasing")
    b.stop("sm")
    b.sm_options = {"decommission-timeout": "1"}
    b.write_sm_conf()
    time.sleep(1.5)
    b.start_sm()
    deadline = time.time() + 10
    while sub_lines(b, res["supi"]) and time.time() < deadline:
        time.sleep(0.2)
    check(not sub_lines(b, res["supi"]), "after the timeout the SM has the subscriber removed at start")
    st, lst = b.sm_request("GET", "/v1/devices")
    check(all(d["device-id"] != dev_id(b, "to") for d in lst["devices"]), "... and the binding released")
    st, res = b.provision_raw(b.devices["to"]["certificate-url"], tag_record(b, b.tag("to")), token=b.neighbour_token)
    check(st == 200 and res["binding-version"] == 2, "another owner claims it at the next binding version")
    st, cmd = post(b, "to", "decommission", {}, token=b.neighbour_token)
    time.sleep(1.5)
    st, ans = post(b, "to", "reprovision", {}, token=b.neighbour_token)
    check(st == 403 and ans["error"]["code"] == "not-owner", "a timed-out decommission releases at the next request")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [test_reprovision, test_transfer, test_decommission, test_timeout]))
