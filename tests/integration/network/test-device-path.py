#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The cellular path against the real SM and AUSF: the device asks the SM
itself (POST /v1/device/poll, no companion credential, a fresh device
record as authentication) for the profile or command waiting for it, and
sends its receipt (POST /v1/device/receipt). The device side is
cp-test-device on the protocol library."""

import base64
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netbench  # noqa: E402
from netbench import check, main  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "lifecycle", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-lifecycle.py"))
lc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lc)

STATE_PROVISIONED = 2


def record(b, name, counter=None):
    """A fresh device record (base64) of the device, as it makes one per poll."""
    if counter is None:
        b.counter[name] += 1
        counter = b.counter[name]
    out = b.path("rec-%s-%d" % (name, counter))
    b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf(name),
           "--out", out, "--first", str(counter), "--state", str(STATE_PROVISIONED)])
    return open(out).read().strip()


def poll(b, rec):
    return b.sm_request("POST", "/v1/device/poll", body=json.dumps({"device-record": rec}), token=False)


def send_receipt(b, receipt):
    return b.sm_request("POST", "/v1/device/receipt",
                        body=json.dumps({"receipt": base64.b64encode(receipt).decode()}), token=False)


def code(ans):
    return ans.get("error", {}).get("code") if isinstance(ans, dict) else None


def test_requests(b):
    st, ans = b.sm_request("GET", "/v1/device/poll", token=False)
    check(st == 405 and code(ans) == "method-not-allowed", "GET /v1/device/poll: 405 (%d)" % st)
    st, ans = b.sm_request("POST", "/v1/device/other", body="{}", token=False)
    check(st == 404 and code(ans) == "not-found", "an unknown /v1/device/ resource: 404 (%d)" % st)
    st, ans = b.sm_request("POST", "/v1/device/poll", body="{}", token=False)
    check(st == 400 and code(ans) == "bad-request", "a poll without device-record: 400 (%r)" % code(ans))
    st, ans = poll(b, base64.b64encode(b"\x01\x02garbage").decode())
    check(st == 400 and code(ans) not in (None, "bad-request"), "a record that does not decode: 400 (%r)" % code(ans))
    st, ans = b.sm_request("POST", "/v1/device/receipt", body="{}", token=False)
    check(st == 400 and code(ans) == "bad-request", "a receipt post without receipt: 400 (%r)" % code(ans))
    b.make_device("nobody")
    st, ans = poll(b, record(b, "nobody"))
    check(st == 404 and code(ans) == "unknown-device", "a device the SM never bound: 404 unknown-device (%d)" % st)


def test_reprovision(b):
    b.make_device("dp")
    tag, res1, receipt = lc.claim(b, "dp")
    supi = res1["supi"]
    st, ans = send_receipt(b, receipt)
    check(st == 200 and ans["result"] == "processed" and ans["status"] == "provisioned" and
          ans["device-id"] == lc.dev_id(b, "dp"), "the claim receipt sent by the device is processed (%r)" % ans)
    st, ans = poll(b, record(b, "dp"))
    check(st == 204 and ans == b"", "nothing waits after the claim's receipt: 204, no body (%d)" % st)

    st, res2 = lc.post(b, "dp", "reprovision", {"apn": "cellular.apn"})
    check(st == 200 and res2["generation"] == 2, "the owner asks for a reprovision")
    both = lc.sub_lines(b, supi)
    rec = record(b, "dp")
    st, ans = poll(b, rec)
    check(st == 200 and ans["type"] == "profile" and ans["seq"] == res2["profile-seq"] and
          ans["device-id"] == lc.dev_id(b, "dp"), "the poll gets the reprovision profile (%d %r)" % (st, code(ans)))
    check(base64.b64decode(ans["message"]) == base64.b64decode(res2["profile"]),
          "... the same bytes as the owner's answer")
    message = ans["message"]

    st, ans = poll(b, rec)
    check(st == 409 and code(ans) == "stale-attestation", "the same record again: 409 stale-attestation (%d)" % st)
    check(lc.sub_lines(b, supi) == both, "... and changes nothing at the AUSF")

    # another device's key, its record carrying this device's ID and a counter far ahead
    b.make_device("other")
    other = base64.b64decode(record(b, "other", counter=b.counter["dp"] + 1000))
    other_id = bytes.fromhex(lc.dev_id(b, "other"))
    check(other.count(other_id) == 1, "the other record holds its device ID once")
    forged = other.replace(other_id, bytes.fromhex(lc.dev_id(b, "dp")))
    st, ans = poll(b, base64.b64encode(forged).decode())
    check(st == 403 and code(ans) == "signature", "a record signed by another key: 403 signature (%d %r)" % (st, code(ans)))
    st, ans = poll(b, record(b, "dp"))
    check(st == 200 and ans["message"] == message,
          "... its counter was not recorded: the next fresh record gets the profile again (%d)" % st)

    dev, receipt2 = lc.device(b, "dp", tag, message, lc.MIME_PROFILE, bound=1, last_seq=res1["profile-seq"])
    check(dev["result"] == "ok" and dev["apn"] == "cellular.apn" and dev["subscriber"],
          "the device takes the polled profile, its new keys in the export")
    bad = bytearray(receipt2)
    bad[-40] ^= 0x01
    st, ans = send_receipt(b, bytes(bad))
    check(st in (400, 403), "a forged receipt is refused (%d %r)" % (st, code(ans)))
    check(lc.sub_lines(b, supi) == both, "... and retires nothing")
    st, ans = send_receipt(b, receipt2)
    check(st == 200 and ans["result"] == "processed" and ans["action"] == "retired-older-keys",
          "the device's receipt retires the older keys (%r)" % ans)
    left = lc.sub_lines(b, supi)
    check(len(left) == 1 and left[0][1:3] == both[0][1:3], "only the new key generation is left")
    st, ans = send_receipt(b, receipt2)
    check(st == 200 and ans["result"] == "already-processed", "the receipt again: already-processed")
    check(lc.sub_lines(b, supi) == left, "... the export is unchanged")
    st, ans = poll(b, record(b, "dp"))
    check(st == 204, "nothing waits once the receipt is processed: 204 (%d)" % st)
    b.dp = (tag, res2["profile-seq"], supi)


def test_decommission(b):
    tag, seq, supi = b.dp
    st, cmd = lc.post(b, "dp", "decommission", {})
    check(st == 200 and cmd["seq"] == seq + 1, "the owner asks for a decommission")
    st, ans = poll(b, record(b, "dp"))
    check(st == 200 and ans["type"] == "command" and ans["seq"] == cmd["seq"] and
          base64.b64decode(ans["message"]) == base64.b64decode(cmd["command"]),
          "the poll gets the decommission command, the owner's bytes (%d %r)" % (st, code(ans)))
    dev, receipt = lc.device(b, "dp", tag, ans["message"], lc.MIME_COMMAND, bound=1, last_seq=seq,
                             k2_in=b.path("k2-dp"))
    check(dev["result"] == "ok" and dev["command"] == 1, "the device verifies the polled command")
    st, ans = send_receipt(b, receipt)
    check(st == 200 and ans["status"] == "decommissioned" and ans["action"] == "released",
          "its receipt, sent by the device, releases it (%r)" % ans)
    check(not lc.sub_lines(b, supi), "the subscriber is gone")
    st, ans = poll(b, record(b, "dp"))
    check(st == 204, "a released device: nothing waits (%d)" % st)


def test_failed(b):
    """A receipt that says the profile failed is processed too: the message
    no longer waits (the device would only fail it again)."""
    b.make_device("fl")
    tag, res1, receipt = lc.claim(b, "fl")
    st, res2 = lc.post(b, "fl", "reprovision", {})
    check(st == 200, "the owner asks for a reprovision")
    st, ans = poll(b, record(b, "fl"))
    check(st == 200 and ans["seq"] == res2["profile-seq"], "the poll gets it (%d)" % st)
    msg = b.path("msg-fl-failed")
    with open(msg, "wb") as f:
        f.write(lc.ndef(lc.MIME_PROFILE, base64.b64decode(ans["message"])))
    b.counter["fl"] += 1
    b.run([b.prog("tests/integration/network/cp-test-device"), "accept", "--config", b.conf("fl"),
           "--tag", tag, "--profile", msg, "--last-seq", str(res1["profile-seq"]), "--bound", "1",
           "--counter", str(b.counter["fl"]), "--status", "3", "--receipt-out", msg + ".receipt"])
    st, ans = send_receipt(b, open(msg + ".receipt", "rb").read())
    check(st == 200 and ans["status"] == "failed" and ans["result"] == "processed" and ans["action"] == "none",
          "the device's failed receipt is processed, nothing retired (%r)" % ans)
    st, ans = poll(b, record(b, "fl"))
    check(st == 204, "the failed profile no longer waits: 204 (%d)" % st)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [test_requests, test_reprovision, test_decommission, test_failed]))
