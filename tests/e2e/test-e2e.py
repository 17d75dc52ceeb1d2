#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole flow on the simulated bench: cellprovd on a simulated PN532
and the QMI modem simulator, the real SM, AUSF and certificate server.
cellprov-companion taps through the simulated RF link (a second PN532 in
initiator mode, real libnfc on both sides) for everything a well-behaved
companion does: the happy path (ending with the modem registered on the
new IMSI and the receipt verified), registration denied, kill -9 in every
journaled state, during the rollback and while the module's port is gone
after its reset (the companion held to the device throughout). A scripted phone on the device's PN532 stands in for what a
well-behaved companion never does: a replay of the profile recorded off
the RF link, a flipped byte, a profile for another device, leaving
mid-write, writing an expired profile, and the taps around kill -9 in
profile-received and verified (held there by CELLPROVD_TEST_HOLD). Last,
no secret in the debug logs. On a second bench, the device lifecycle: claim,
re-provision with new keys, transfer to a second owner, decommission to
the original card and a new claim, each by cellprov-companion over NFC.
Last, kill -9 in every journaled state again with an AT module
(cp-at-sim, backend=at) and with an MBIM one (cp-mbim-sim through the
bench's own mbim-proxy, backend=mbim)."""

import base64
import json
import os
import resource
import shutil
import signal
import subprocess
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2ebench import ADM1, FIRST_IMSI, OLD_IMSI, Fail, check, netbench, prereq, run  # noqa: E402


def tlvs(data):
    """cellprov TLVs (protocol.md): tag, 2-byte length, value."""
    out, i = {}, 0
    while i + 3 <= len(data):
        n = data[i + 1] << 8 | data[i + 2]
        out.setdefault(data[i], data[i + 3:i + 3 + n])
        i += 3 + n
    return out


def profile_seq_of(ndef):
    """The profile_seq (tag 0x03) of the profile in an NDEF message holding
    one MIME record, read from the bytes."""
    flags, type_len = ndef[0], ndef[1]
    if flags & 0x10:
        plen, i = ndef[2], 3
    else:
        plen, i = int.from_bytes(ndef[2:6], "big"), 6
    id_len = 0
    if flags & 0x08:
        id_len, i = ndef[i], i + 1
    payload = ndef[i + type_len + id_len:i + type_len + id_len + plen]
    return int.from_bytes(tlvs(payload)[0x03], "big")


def committed_seq(b):
    """The committed profile_seq, from cellprovctl and from the journal
    (docs/daemon.md: CPJ, format 3, TLVs, tag 0x03), which must agree."""
    ctl = b.ctl("status").json["daemon"]["profile-seq"]
    data = open(os.path.join(b.state_dir, "journal"), "rb").read()
    check(data[:4] == b"CPJ\x03", "the journal is CPJ format 3")
    journal = int.from_bytes(tlvs(data[4:])[0x03], "big")
    check(ctl == journal, "cellprovctl and the journal agree on the committed profile_seq (%d, %d)"
          % (ctl, journal))
    return ctl


MODEM_LIBS = ("libqmi-glib", "libmm-glib", "libmbim-glib", "libqrtr-glib")


def mapped_libs(pid):
    """The files of the modem libraries and cellprov modules the process
    maps (/proc/PID/maps), by name prefix."""
    found = {}
    for line in open("/proc/%d/maps" % pid):
        path = line.split()[-1] if "/" in line else ""
        name = os.path.basename(path)
        for prefix in MODEM_LIBS + ("cellprov-modem-",):
            if name.startswith(prefix):
                found[name.split(".so")[0]] = path
    return found


CRYPTO_LIBS = ("libcrypto", "libmbedcrypto", "libcellprov-protocol")


def crypto_libs(pid):
    """The crypto libraries (and the OpenSSL protocol library) the process
    maps, by name."""
    names = set()
    for line in open("/proc/%d/maps" % pid):
        name = os.path.basename(line.split()[-1]) if "/" in line else ""
        names.update(p for p in CRYPTO_LIBS if name.startswith(p + ".so"))
    return names


def test_happy_path(b):
    b.start_modem()
    b.link_up()
    p = b.start_cellprovd()
    st = b.ctl("status").json
    check(st["status"]["state"] == "idle", "cellprovd is idle on the bench")
    # the modem drivers are modules: an idle daemon maps none of them,
    # nor any modem library (modem/cp-modem-module.c)
    idle = mapped_libs(p.pid)
    check(not idle, "idle cellprovd maps no modem library or module (%s)" % ", ".join(sorted(idle)))
    rc, res = b.tap_nfc()
    check(rc == 0 and res["result"] == "ok", "companion over NFC: ok (%s)" % res.get("error"))
    check(res["device"]["device-id"] == b.gw_info["device-id"], "the companion read the device's DeviceID")
    check(res["receipt"]["status"] == "provisioned" and res["receipt"]["verified"],
          "companion verified the provisioned receipt with K''")
    check(res["receipt"].get("registration") == "00101", "receipt names the PLMN registered on")
    sessions = b.link_sessions()
    check(len(sessions) >= 3 and all(int(s["host-frames-initiator"]) > 0 and int(s["host-frames-target"]) > 0
                                     for s in sessions),
          "the three taps went over the RF link, libnfc on both PN532s (%d sessions)" % len(sessions))
    written = b.written_over_link()
    check(len(written) == 1, "the companion wrote one NDEF message over the link")
    b.first_profile = b.path("link-1.profile")
    with open(b.first_profile, "wb") as f:
        f.write(written[0])
    b.wait_state("provisioned", timeout=5)
    # a QMI provisioning (backend=auto, no ModemManager on the bench) maps
    # the QMI module and libqmi, not ModemManager's module or library;
    # libmbim and libqrtr only as libqmi's own (Debian's speaks QMI over
    # MBIM and QRTR)
    after = mapped_libs(p.pid)
    check("cellprov-modem-qmi" in after and "libqmi-glib" in after,
          "the provisioning loaded the QMI module and libqmi (%s)" % ", ".join(sorted(after)))
    with open(after["libqmi-glib"], "rb") as f:
        libqmi = f.read()
    extra = [n for n in after if n not in ("cellprov-modem-qmi", "libqmi-glib") and
             not (n in ("libmbim-glib", "libqrtr-glib") and n.encode() in libqmi)]
    check(not extra, "nothing but the QMI module and libqmi mapped (%s)" % ", ".join(sorted(extra)))
    # the device's crypto is the one library it was built with: on Mbed
    # TLS, neither OpenSSL nor the OpenSSL protocol library is mapped
    # (daemon/meson.build); the whole flow above ran on it
    want = {"libmbedcrypto"} if os.environ.get("CP_DEVICE_CRYPTO") == "mbedtls" else \
        {"libcrypto", "libcellprov-protocol"}
    have = crypto_libs(p.pid)
    check(have == want, "cellprovd maps %s for its crypto (%s)" % (", ".join(sorted(want)),
                                                                  ", ".join(sorted(have)) or "none"))
    st = b.ctl("status").json
    check(st["network"]["operator"].startswith("00101"), "operator %r" % st["network"]["operator"])
    check(st["network"]["imsi"].startswith("00101") and "*" in st["network"]["imsi"],
          "the IMSI property is redacted")
    # bound to its owner, pinned to the operator the manufacturer trusted
    owner = st.get("owner", {})
    root_spki = subprocess.run("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER"
                               " | sha256sum" % b.operator_root, shell=True, capture_output=True,
                               text=True, check=True).stdout.split()[0]
    check(owner.get("bound") is True and owner.get("binding-version") == 1 and
          owner.get("trust-mode") == "anchors" and owner.get("operator-root") == root_spki and
          owner.get("operator") == "cellprov test operator",
          "bound at binding version 1 to the bench's operator (%r)" % owner)
    m = b.modem_state()
    check(m.get("imsi") == FIRST_IMSI and m.get("modem-imsi") == FIRST_IMSI,
          "the USIM and the modem hold the new IMSI (%s, %s)" % (m.get("imsi"), m.get("modem-imsi")))
    check(m.get("network-last") == "registered", "the network's AKA succeeded (%s)" % m.get("network-last"))
    rcpt = b.ctl("receipt").json["receipt"]
    check(rcpt["status"] == "provisioned" and rcpt["mac"].startswith("present"), "cellprovctl receipt")
    check(os.path.exists(os.path.join(b.state_dir, "provisioned")), "the provisioned marker is there")
    # the profile_seq the device committed is the profile's, and stays so
    seq = profile_seq_of(written[0])
    check(seq >= 1 and res["profile-seq"] == seq, "the profile written carries profile_seq %d" % seq)
    check(committed_seq(b) == seq, "the device committed the profile's profile_seq (%d)" % seq)
    check(b.kill_cellprovd(signal.SIGTERM) == 0, "cellprovd stops on SIGTERM")
    b.start_cellprovd()
    check(b.ctl("status").json["status"]["state"] == "provisioned" and committed_seq(b) == seq,
          "after a restart: provisioned, profile_seq %d committed" % seq)


def lifecycle_status(b, bound, version):
    st = b.ctl("status").json
    owner = st.get("owner", {})
    check(owner.get("bound") is bound and (not bound or owner.get("binding-version") == version),
          "cellprovctl status: %s (%r)" % ("bound at binding version %d" % version if bound else "unbound", owner))
    return st


def claim_and_reprovision(b):
    """The lifecycle's first two steps: a claim over NFC, then a
    re-provisioning with new keys, the device registered with them.
    Returns the original card, and the SUPI."""
    dev = b.gw_info["device-id"]
    b.start_modem()
    original = b.card()
    b.link_up()
    b.start_cellprovd()
    # claim: the receipt relayed, so the SM knows it provisioned
    rc, res = b.owner_step([])
    check(rc == 0 and res["receipt"]["status"] == "provisioned", "claim over NFC (%s)" % res.get("error"))
    check(res["relay"]["result"] == "processed", "the claim's receipt relayed (%r)" % res.get("relay"))
    b.wait_state("provisioned", timeout=10)
    lifecycle_status(b, True, 1)
    supi = FIRST_IMSI
    check(b.ausf_view() == {supi: (netbench.COMPANION_SUPI, [1])}, "AUSF: one subscriber, key generation 1 (%r)" % b.ausf_view())
    claimed = b.card()
    # re-provision: the next key generation, the older one retired on the receipt
    rc, res = b.owner_step(["reprovision", dev, "--apn", "iot.example"])
    check(rc == 0 and res["operation"] == "reprovision" and res["generation"] == 2 and
          res["receipt"]["status"] == "provisioned" and res["receipt"]["verified"],
          "reprovision over NFC (%s)" % res.get("error"))
    check(res["relay"]["action"] == "retired-older-keys", "the SM retired the older keys (%r)" % res["relay"])
    check(b.ausf_view() == {supi: (netbench.COMPANION_SUPI, [2])}, "AUSF: generation 2 only (%r)" % b.ausf_view())
    m = b.modem_state()
    check(m.get("network-last") == "registered" and m.get("imsi") == supi, "registered with the new keys")
    check(b.card()["ef-usim-auth-key"] != claimed["ef-usim-auth-key"], "the card holds new keys")
    lifecycle_status(b, True, 1)
    return original, supi


def test_lifecycle(b):
    """Claim, re-provision with new keys, transfer to the neighbour,
    decommission to the original card, a new claim by the first owner: each
    through cellprov-companion over the RF link, the network learning the
    AUSF's key sets from its export."""
    dev = b.gw_info["device-id"]
    original, supi = claim_and_reprovision(b)
    # transfer to the neighbour: a token, the neighbour takes it with a tap
    r = b.run([b.prog("tools/cellprov-companion"), "-J", "--sm", "https://127.0.0.1:%d" % b.sm_port,
               "--sm-ca", b.tls_ca, "--token", b.path("companion-token"), "transfer-token", dev,
               "--new-owner", "neighbour"])
    tok = json.loads(r.stdout)
    check(len(tok["token"]) == 48 and tok["expires"] > time.time(), "a transfer token for the neighbour")
    rc, res = b.owner_step(["accept-transfer", dev, "--transfer-token", tok["token"]],
                           token=b.path("neighbour-token"))
    check(rc == 0 and res["operation"] == "transfer" and res["binding-version"] == 2 and res["replaces"] == 1
          and res["receipt"]["status"] == "provisioned", "accept-transfer over NFC (%s)" % res.get("error"))
    check(res["relay"]["action"] == "removed-previous-owner", "the old owner's SUPI removed (%r)" % res["relay"])
    view = b.ausf_view()
    check(len(view) == 1 and list(view.values())[0][0] == netbench.NEIGHBOUR_SUPI and supi not in view,
          "AUSF: only the neighbour's subscriber (%r)" % view)
    supi = list(view)[0]
    check(b.modem_state().get("imsi") == supi and b.modem_state().get("network-last") == "registered",
          "registered under the neighbour's SUPI")
    lifecycle_status(b, True, 2)
    rc, res = b.owner_step(["accept-transfer", dev, "--transfer-token", tok["token"]],
                           token=b.path("neighbour-token"))
    check(rc == 1 and res["error"]["code"] == "bad-token" and "new one" in res["error"]["hint"],
          "a token used twice: bad-token with a hint (%r)" % res.get("error"))
    rc, res = b.owner_step(["decommission", dev])
    check(rc == 1 and res["error"]["code"] == "not-owner", "the old owner cannot decommission (%r)"
          % res.get("error"))
    # decommission by the neighbour: the card back to its original values
    rc, res = b.owner_step(["decommission", dev], token=b.path("neighbour-token"))
    check(rc == 0 and res["receipt"]["status"] == "decommissioned" and res["relay"]["action"] == "released",
          "decommission over NFC, released (%s %r)" % (res.get("error"), res.get("relay")))
    b.wait_state("idle", timeout=10)
    check(b.card() == original, "the card holds its original values again")
    check(b.ausf_view() == {}, "AUSF: no subscriber for the device (%r)" % b.ausf_view())
    lifecycle_status(b, False, 0)
    # a new claim by the first owner, at the next binding version
    rc, res = b.owner_step([])
    check(rc == 0 and res["receipt"]["status"] == "provisioned" and res["binding-version"] == 3,
          "the first owner claims it again (%s)" % res.get("error"))
    b.wait_state("provisioned", timeout=10)
    lifecycle_status(b, True, 3)
    view = b.ausf_view()
    check(len(view) == 1 and list(view.values())[0] == (netbench.COMPANION_SUPI, [1]), "AUSF: the first owner's (%r)" % view)
    r = b.run([b.prog("tools/cellprov-companion"), "-J", "--sm", "https://127.0.0.1:%d" % b.sm_port,
               "--sm-ca", b.tls_ca, "--token", b.path("companion-token"), "devices"])
    devs = json.loads(r.stdout)["devices"]
    check([(d["device-id"], d["binding-version"], d["state"]) for d in devs] == [(dev, 3, "bound")],
          "devices: the first owner's, bound at version 3 (%r)" % devs)


def test_store_lifecycle(b):
    """End to end on the PostgreSQL stores (b.store): the claim and the
    re-provisioning, then what the SM's and the AUSF's stores hold after
    them: one binding, bound at version 1 to the companion, its two
    provisionings at key generations 1 and 2, the device's subscriber
    with generation 2 alone."""
    dev = b.gw_info["device-id"]
    _, supi = claim_and_reprovision(b)
    check(b.db_rows("sm", "SELECT owner_supi, binding_version, state FROM bindings WHERE device_id = ?",
                    (dev,)) == [(netbench.COMPANION_SUPI, 1, "bound")],
          "the %s store: the device bound once, at version 1, to the companion" % b.store)
    rows = b.db_rows("sm", "SELECT profile_seq, operation, generation, supi FROM provisionings "
                     "WHERE device_id = ? ORDER BY profile_seq", (dev,))
    # operation: the profile's (docs/protocol.md: 1 claim, 2 reprovision)
    check([(r[1], r[2], r[3]) for r in rows] == [(1, 1, supi), (2, 2, supi)],
          "... its provisionings: the claim at generation 1, the re-provisioning at 2 (%r)" % rows)
    check(b.db_rows("ausf", "SELECT COUNT(*) FROM keysets WHERE supi = ?", (supi,)) == [(1,)],
          "the AUSF's %s store: one key set left for the SUPI" % b.store)


def wait_for(what, cond, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    check(False, "waited %d s for %s" % (timeout, what))


def test_cellular_path(b):
    """The device asks the SM itself (docs/protocol.md 12.6), over its own
    connection once registered: a re-provisioning and a decommission the
    owner asked for reach it with nobody at its side, and its receipts
    reach the SM, which retires the old keys and releases the device."""
    dev = b.gw_info["device-id"]
    check(b.kill_cellprovd(signal.SIGTERM) == 0, "cellprovd stops")
    with open(b.gw_info["config"], "a") as f:
        f.write("\n[network]\nsm-url=https://127.0.0.1:%d\nsm-ca=%s\n" % (b.sm_port, b.tls_ca))
    b.start_cellprovd(env={"CELLPROVD_TEST_POLL_MS": "1000"})
    lifecycle_status(b, True, 3)
    supi = list(b.ausf_view())[0]
    before = b.card()
    # re-provisioning asked by the owner, with no tap
    st, res = b.sm_request("POST", "/v1/devices/%s/reprovision" % dev, body=json.dumps({"apn": "iot.cellular"}))
    check(st == 200 and res["operation"] == "reprovision" and res["generation"] == 2,
          "the owner asks for a re-provisioning (%d %r)" % (st, res.get("error")))
    b.export_subscribers()          # the network learns the new key set
    wait_for("the device to take it and the SM to retire the older keys",
             lambda: b.ausf_view() == {supi: (netbench.COMPANION_SUPI, [2])})
    b.wait_state("provisioned", timeout=10)
    m = b.modem_state()
    check(m.get("network-last") == "registered" and b.card()["ef-usim-auth-key"] != before["ef-usim-auth-key"],
          "the device polled, took the profile, registered with the new keys")
    check("poll" in open(b.path("cellprovd.log")).read(), "cellprovd logged its polls")
    lifecycle_status(b, True, 3)
    # decommission asked by the owner, with no tap
    st, res = b.sm_request("POST", "/v1/devices/%s/decommission" % dev, body="{}")
    check(st == 200 and res["kind"] == "decommission", "the owner asks for a decommission (%d)" % st)
    wait_for("the device to execute it and the SM to release it", lambda: b.ausf_view() == {})
    b.wait_state("idle", timeout=10)
    lifecycle_status(b, False, 0)
    st, res = b.sm_request("GET", "/v1/devices")
    check(st == 200 and [d for d in res["devices"] if d["device-id"] == dev] == [],
          "the SM released the device (%r)" % res)



def ndef_of(mime, payload):
    """One MIME record as a whole NDEF message (MB, ME, TNF 2, 4-byte
    payload length), as the companion writes what the SM returned."""
    t = mime.encode()
    return bytes([0xC2, len(t)]) + len(payload).to_bytes(4, "big") + t + payload


def wait_registered(b, imsi, resets_before):
    """The modem reset since resets_before and registered with imsi."""
    def ok():
        m = b.modem_state()
        return (int(m.get("resets", 0)) > resets_before and m.get("modem-imsi") == imsi and
                m.get("registration") == "registered" and m.get("network-last") == "registered")
    wait_for("the modem to register with %s" % imsi, ok, timeout=20)


# resetting is left out: the QMI backend's reset is acknowledged at once
# (the wait for the modem to come back is part of registering), so it
# lasts microseconds and is journaled as provisioning, whose recovery it
# shares (docs/e2e.md)
KILL_STATES = ("profile-received", "verified", "provisioning", "registering", "rolling-back")


def kill_during(b, op, state, profile, before, hold):
    """Write the profile, kill -9 cellprovd in state, restart it, and check
    the outcome docs/daemon.md promises: killed before the backup (never
    journaled), nothing happened and the same profile, written again,
    completes the attempt; killed after it, the attempt is rolled back to
    the working subscription (the card's files as before, byte for byte,
    registered on them, the binding unchanged) and the profile stays
    consumed (written again: a replay). Returns whether it completed."""
    seq = profile_seq_of(profile)
    path = b.path("kill-%s-%s.ndef" % (op, state))
    with open(path, "wb") as f:
        f.write(profile)
    if b.hold != hold:
        b.kill_cellprovd(signal.SIGTERM)
        b.start_cellprovd(env={"CELLPROVD_TEST_HOLD": hold} if hold else None)
        b.hold = hold
    log_before = len(b.daemon_log())
    rc, out, _ = b.write_tag_settled(path)
    check(rc == 0, "the phone wrote the %s profile %d" % (op, seq))
    b.wait_state("registering" if state == "rolling-back" else state, timeout=20)
    resets = int(b.modem_state().get("resets", 0))
    b.kill_cellprovd(signal.SIGKILL)
    if state == "rolling-back":
        b.start_cellprovd()
        check(b.ctl("status").json["status"]["state"] == "rolling-back", "the restart rolls back")
        time.sleep(0.2)
        b.kill_cellprovd(signal.SIGKILL)
    b.start_cellprovd()
    b.hold = None
    tail = b.daemon_log()[log_before:]
    journaled = state not in ("profile-received", "verified")
    check(("journal: backup" in tail) == journaled,
          "%s %d killed in %s, %s the backup was journaled" % (op, seq, state, "after" if journaled else "before"))
    b.wait_state("provisioned", timeout=30)
    st = b.ctl("status").json
    check(st["owner"] == before["status"]["owner"],
          "after kill -9 in %s: the owner binding as before (%r)" % (state, st["owner"]))
    if journaled:
        check(st["status"]["last-error"] == "interrupted" and committed_seq(b) == seq,
              "... rolled back, reason interrupted, profile_seq %d committed (%s, %d)"
              % (seq, st["status"]["last-error"], committed_seq(b)))
        wait_registered(b, before["imsi"], resets)
        check(b.card() == before["card"], "... the card's files as before the attempt, byte for byte")
        rc, out, _ = b.write_tag_settled(path)
        r = receipt_on_tag(b)
        check(r["status"] == "rejected" and r["reason"].startswith("replay") and r["mac"].startswith("present"),
              "... the same profile written again is a replay (%s)" % r)
        check(b.ctl("status").json["owner"] == before["status"]["owner"] and b.card() == before["card"]
              and committed_seq(b) == seq, "... and changes nothing")
        return False
    check(st["status"]["state"] == "provisioned" and committed_seq(b) == before["seq"] and
          b.card() == before["card"] and b.modem_state().get("imsi") == before["imsi"],
          "... nothing happened: provisioned, profile_seq %d and the card as before" % before["seq"])
    rc, out, _ = b.write_tag_settled(path)
    b.wait_state("provisioned", timeout=30)
    r = receipt_on_tag(b)
    check(r["status"] == "provisioned" and committed_seq(b) == seq,
          "... the same profile written again completes the %s (%s, seq %d)" % (op, r["status"], seq))
    check(b.card()["ef-usim-auth-key"] != before["card"]["ef-usim-auth-key"], "... with new keys on the card")
    return True


def device_before(b):
    m = b.modem_state()
    return {"status": b.ctl("status").json, "card": b.card(), "seq": committed_seq(b), "imsi": m.get("imsi")}


def test_lifecycle_kills(b):
    """kill -9 of cellprovd in every state a re-provisioning and a transfer
    of a provisioned, bound device pass through (docs/e2e.md). The
    profiles come from the SM's owner API and are written by the scripted
    phone; the network learns every key set the AUSF holds (no receipt is
    relayed, so the AUSF keeps every generation and SUPI valid)."""
    t0 = time.monotonic()
    dev = b.gw_info["device-id"]
    check(b.kill_cellprovd(signal.SIGTERM) == 0, "cellprovd stops")
    conf = open(b.gw_info["config"]).read().split("\n[network]\n")[0] + "\n"
    with open(b.gw_info["config"], "w") as f:
        f.write(conf)            # no polls: only the tag delivers
    # the decommission left the factory card: a new simulator holds the
    # same, with resets and attaches long enough to be caught in
    restart_modem(b, extra=["--reset-delay", "400", "--registration-delay", "400"])
    b.export_subscribers()
    b.start_cellprovd()
    b.hold = None
    rc, res = b.owner_step([])
    check(rc == 0 and res["receipt"]["status"] == "provisioned", "claimed again (%s)" % res.get("error"))
    b.wait_state("provisioned", timeout=10)
    tokens = {"bench": b.token, "neighbour": b.neighbour_token}
    owner = "bench"
    for state in KILL_STATES:
        before = device_before(b)
        st, res = b.sm_request("POST", "/v1/devices/%s/reprovision" % dev, body="{}")
        check(st == 200 and res["operation"] == "reprovision", "a re-provisioning (%d %r)" % (st, res.get("error")))
        b.export_subscribers()
        hold = "%s:3000" % state if state in ("profile-received", "verified", "provisioning") else None
        kill_during(b, "reprovision", state, ndef_of("application/vnd.cellprov.profile",
                                                     base64.b64decode(res["profile"])), before, hold)
        check(b.ctl("status").json["owner"] == before["status"]["owner"], "a re-provisioning keeps the owner")
    for state in KILL_STATES:
        before = device_before(b)
        new = "neighbour" if owner == "bench" else "bench"
        st, tok = b.sm_request("POST", "/v1/devices/%s/transfer-token" % dev,
                               body=json.dumps({"new-owner": new}), token=tokens[owner])
        check(st == 200, "%s asks for a transfer token for %s (%d %r)" % (owner, new, st, tok))
        st, res = b.sm_request("POST", "/v1/devices/%s/accept-transfer" % dev,
                               body=json.dumps({"token": tok["token"]}), token=tokens[new])
        check(st == 200 and res["operation"] == "transfer", "%s accepts it (%d %r)" % (new, st, res.get("error")))
        owner = new
        b.export_subscribers()
        hold = "%s:3000" % state if state in ("profile-received", "verified", "provisioning") else None
        done = kill_during(b, "transfer", state, ndef_of("application/vnd.cellprov.profile",
                                                         base64.b64decode(res["profile"])), before, hold)
        now = b.ctl("status").json["owner"]
        if done:
            check(now["binding-version"] == res["binding-version"] and b.modem_state().get("imsi") == res["supi"],
                  "the transfer completed: binding version %d, the new owner's SUPI (%r)"
                  % (res["binding-version"], now))
        else:
            check(now == before["status"]["owner"] and b.modem_state().get("imsi") == before["imsi"],
                  "the transfer rolled back: the binding and the SUPI as before (%r)" % now)
    print("test_lifecycle_kills: %.1f s" % (time.monotonic() - t0))

def locked_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return 0


def test_secure_heap(b):
    # CpSecret (every key, K'', ADM1, the USIM backup) sits in OpenSSL's
    # secure heap: an mlock'ed arena, so it shows as locked memory
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and soft < 512 * 1024:
        prereq.partly("RLIMIT_MEMLOCK %d is too low to hold three secure heaps" % soft)
    else:
        for name, kib in (("cellprovd", 32), ("sm", 64), ("ausf", 64)):
            n = locked_kib(b.procs[name].pid)
            check(n >= kib, "%s holds its secrets in a locked secure heap (%d KiB locked)" % (name, n))
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("prlimit"):
        prereq.partly("without root, setpriv and prlimit the mlock refusal cannot be staged")
        return
    # no right to mlock (no CAP_IPC_LOCK, RLIMIT_MEMLOCK 0): a warning, and it runs
    r = subprocess.run(["prlimit", "--memlock=0:0", "setpriv", "--bounding-set=-ipc_lock",
                        b.prog("daemon/cellprovd"), "--config", b.gw_info["config"], "--check-config"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "configuration OK" in r.stdout and "secure heap" in r.stderr
          and "not locked" in r.stderr, "without the right to mlock cellprovd warns and still starts (%s)"
          % r.stderr.strip().splitlines()[-1:])


def receipt_on_tag(b):
    return b.ctl("receipt").json["receipt"]


def test_replay(b):
    b.ctl("re-arm")
    b.wait_state("idle", timeout=5)
    # what an eavesdropper on the RF field recorded of the first tap
    rc, out, _ = b.write_tag_settled(b.first_profile)
    check(rc == 0, "the phone wrote the old profile again")
    r = receipt_on_tag(b)
    check(r["status"] == "rejected" and r["reason"].startswith("replay") and r["mac"].startswith("present"),
          "a replayed profile is rejected as a replay, the receipt MAC'd (%s)" % r)
    st = b.ctl("status").json
    check(st["status"]["state"] == "idle" and st["daemon"]["profile-seq"] == 1, "state and seq unchanged")
    check(b.modem_state().get("imsi") == FIRST_IMSI, "the card is untouched")


def test_flipped_byte(b):
    seq_before = b.ctl("status").json["daemon"]["profile-seq"]

    def flip(path):
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0x01
        open(path, "wb").write(bytes(data))

    comp, tag, after, rc, out = b.tap(before_write=flip)
    check(rc == 0, "the phone wrote the altered profile")
    rc, res = b.finish_tap(comp, after)
    check(rc != 0 and res["receipt"]["status"] == "rejected",
          "the companion reads a rejection (%s)" % res.get("receipt"))
    r = receipt_on_tag(b)
    check(r["status"] == "rejected" and r["reason"] != "none", "the receipt says why: %s" % r["reason"])
    st = b.ctl("status").json
    check(st["status"]["state"] == "idle" and st["daemon"]["profile-seq"] == seq_before,
          "nothing changed (idle, profile_seq %d)" % seq_before)
    check(b.modem_state().get("imsi") == FIRST_IMSI, "the card is untouched")


def test_other_device(b):
    b.make_device("other")
    tag = b.tag("other")
    profile = tag + ".profile"
    comp = b.companion(tag, profile=profile, wait=False)
    end = time.monotonic() + 30
    while not os.path.exists(profile) and comp.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    comp.kill()
    comp.communicate()
    check(os.path.exists(profile), "the SM made a profile for the other device")
    rc, out, _ = b.write_tag_settled(profile)
    r = receipt_on_tag(b)
    check(r["status"] == "rejected" and r["reason"].startswith("wrong-device") and r["mac"] == "none",
          "a profile for another device is rejected, unMAC'd (%s)" % r)
    check(b.ctl("status").json["status"]["state"] == "idle", "still idle")


def test_leave_mid_write(b):
    # the session's end comes after anything a delivered write would log
    rc, out, tail = b.write_tag_settled(b.first_profile, "stop=2")
    check("session ended" in tail, "the daemon logs the cut-off session")
    check("profile-received" not in tail, "a write cut off mid-way delivers nothing")
    check(b.ctl("status").json["status"]["state"] == "idle", "still idle")


def restart_sm(b, **options):
    b.stop("sm")
    b.sm_options = dict(options)
    b.write_sm_conf()
    b.start_sm()


def test_expired(b):
    # an SM whose profiles live one second; the phone writes it after two
    restart_sm(b, **{"profile-lifetime": "1"})
    try:
        comp, tag, after, rc, out = b.tap(before_write=lambda path: time.sleep(2.5))
        rc, res = b.finish_tap(comp, after)
        check(res["receipt"]["status"] == "rejected" and res["receipt"]["reason"] == "expired"
              and res["receipt"]["verified"], "an expired profile is rejected, MAC'd (%s)" % res["receipt"])
        check(b.ctl("status").json["status"]["state"] == "idle", "still idle")
    finally:
        restart_sm(b)


def test_kill_before_commit(b):
    # profile-received and verified are never journaled and last
    # microseconds: the daemon's test hold (CELLPROVD_TEST_HOLD) keeps it
    # there long enough to be killed. Nothing was written then: the
    # restart finds the device as it was before the write, and the same
    # profile, never committed, provisions afterwards.
    for bad in ("resetting:100", "verified", "verified:0", "verified:x", "nosuchstate:10"):
        r = subprocess.run([b.prog("daemon/cellprovd"), "--config", b.gw_info["config"], "--check-config"],
                           capture_output=True, text=True, env=dict(os.environ, CELLPROVD_TEST_HOLD=bad))
        check(r.returncode == 1 and "CELLPROVD_TEST_HOLD" in r.stderr,
              "a bad test hold %r stops the start (%s)" % (bad, r.stderr.strip()))
    restart_modem(b)
    for state in ("profile-received", "verified"):
        b.kill_cellprovd(signal.SIGTERM)
        b.start_cellprovd(env={"CELLPROVD_TEST_HOLD": "%s:2000" % state})
        before = b.ctl("status").json
        card = b.modem_state()
        receipt = b.ctl("receipt", check_rc=False).json
        log_before = len(b.daemon_log())
        comp, tag, after, rc, out = b.tap()
        check(rc == 0, "the phone wrote the profile")
        b.wait_state(state, timeout=10)
        b.kill_cellprovd(signal.SIGKILL)
        tail = b.daemon_log()[log_before:]
        check("test hold: 2000 ms in %s" % state in tail and "journal: backup" not in tail,
              "killed while held in %s, before the backup" % state)
        b.start_cellprovd()
        st = b.ctl("status").json
        check(st["status"] == before["status"] and st["daemon"]["profile-seq"] == before["daemon"]["profile-seq"],
              "after kill -9 in %s: state, last error and profile_seq as before the write (%s, seq %d)"
              % (state, st["status"]["state"], st["daemon"]["profile-seq"]))
        m = b.modem_state()
        check(all(m.get(k) == card.get(k) for k in ("imsi", "card-updates", "resets", "ef-usim-auth-key")),
              "... the card and the modem untouched (%s card updates)" % m.get("card-updates"))
        check(b.ctl("receipt", check_rc=False).json == receipt,
              "... the tag shows the receipt it showed before")
        rc, out = b.write_tag(tag + ".profile")
        b.wait_state("provisioned", timeout=60)
        rc, res = b.finish_tap(comp, after)
        check(rc == 0 and res["receipt"]["status"] == "provisioned" and res["receipt"]["verified"]
              and b.ctl("status").json["daemon"]["profile-seq"] == res["profile-seq"],
              "... and the same profile, written again, provisions (%s, seq %s)"
              % (res.get("receipt"), res.get("profile-seq")))
        b.ctl("re-arm")


def restart_modem(b, subscribers=None, extra=()):
    b.stop_modem()
    b.start_modem(subscribers=subscribers, extra=extra)


def test_registration_denied(b):
    # a network that does not know the device's new subscription; the
    # companion over NFC waits past "accepted" for the outcome
    restart_modem(b, subscribers=[])
    rc, res = b.tap_nfc()
    check(rc != 0 and res["receipt"]["status"] == "failed" and res["receipt"]["verified"],
          "the companion reads a MAC'd failure (%s)" % res.get("receipt"))
    check(res["error"]["code"] == "registration-denied", "... and says why (%s)" % res["error"])
    b.wait_state("failed", timeout=5)
    r = receipt_on_tag(b)
    check(r["reason"].startswith("registration-denied"), "the receipt says registration was denied (%s)" % r["reason"])
    m = b.modem_state()
    check(m.get("imsi") == OLD_IMSI, "the USIM was rolled back to the old IMSI (%s)" % m.get("imsi"))
    st = b.ctl("status").json
    check(st["status"]["last-error"] == "registration-denied", "LastError registration-denied")


# Each journaled state of the engine's steps, made slow enough to be
# caught, per backend: provisioning (the backup is saved; the APN write
# hangs until the request timeout: QMI WDS Modify Profile, AT's second
# +CGDCONT, MBIM's provisioned-contexts set), resetting (QMI: the reset
# takes 3 s; AT: +CFUN=1 goes unanswered; MBIM: the radio-on set goes
# unanswered), registering (the attach takes 3 s). The daemon's plan
# journals nothing between these, so a kill in each covers every way a
# restart can find the card.
KILL_STATES_BY_MODEM = {
    "qmi": (("provisioning", ["--no-response", "wds:0x0028:1"]),
            ("resetting", ["--reset-delay", "3000"]),
            ("registering", ["--registration-delay", "3000"])),
    "at": (("provisioning", ["--no-response", "+CGDCONT:2"]),
           ("resetting", ["--no-response", "+CFUN:2"]),
           ("registering", ["--registration-delay", "3000"])),
    "mbim": (("provisioning", ["--no-response", "basic-connect:13:2"]),
             ("resetting", ["--no-response", "basic-connect:3:2"]),
             ("registering", ["--registration-delay", "3000"])),
}


def test_kill_at_every_state(b):
    # The companion over NFC keeps reading the tag throughout, as a phone
    # held to the device would, and reads the outcome after the restart.
    log_before = len(b.companion_log())
    for state, extra in KILL_STATES_BY_MODEM[b.modem]:
        restart_modem(b, extra=extra)
        if b.ctl("status").json["status"]["state"] != "idle":
            b.ctl("re-arm")
        comp = b.companion_nfc(tap_timeout=45)
        b.wait_state(state, timeout=60)
        if state == "provisioning":
            # the backup is saved on entry; wait for the writes themselves
            end = time.monotonic() + 15
            while b.modem_state().get("imsi") == OLD_IMSI and time.monotonic() < end:
                time.sleep(0.02)
            # the APN write hangs (request timeout, 10 s): time for the
            # phone, reading the tag every 500 ms, to see the attempt
            end = time.monotonic() + 8
            while ("accepted the profile and is provisioning" not in b.companion_log()[log_before:]
                   and time.monotonic() < end):
                time.sleep(0.05)
        b.kill_cellprovd(signal.SIGKILL)
        check(b.modem_state().get("imsi") != OLD_IMSI, "%s: killed in %s with the card written" % (b.modem, state))
        b.start_cellprovd()
        b.wait_state("failed", timeout=60)
        st = b.ctl("status").json
        check(st["status"]["last-error"] == "interrupted", "after kill -9 in %s: rolled back, "
              "reason interrupted (%s)" % (state, st["status"]["last-error"]))
        m = b.modem_state()
        check(m.get("imsi") == OLD_IMSI, "... the USIM holds the old IMSI again (%s)" % m.get("imsi"))
        rc, res = b.companion_result(comp)
        check(rc != 0 and res["receipt"]["status"] == "failed" and res["receipt"]["reason"] == "interrupted"
              and res["receipt"]["verified"],
              "... and the companion reads a failure MAC'd with its K'' (%s)" % res.get("receipt"))
        b.ctl("re-arm")
    # the companion's side does not depend on the modem: checked once
    if b.modem == "qmi":
        check("accepted the profile and is provisioning" in b.companion_log()[log_before:],
              "the companion read \"accepted\" and went on waiting for the outcome")


def test_kill_on_modem(b):
    """The kills of test_kill_at_every_state on a bench of another modem
    kind (E2E(modem=...)): its own simulator, cellprovd with backend= it."""
    b.start_modem()
    b.link_up()
    b.start_cellprovd()
    check(b.ctl("status").json["daemon"]["backend"] == b.modem, "cellprovd drives the %s modem" % b.modem)
    test_kill_at_every_state(b)


def test_kill_while_rolling_back(b):
    # killed while registering, then killed again during the rollback the
    # restart begins: the third start finishes it
    restart_modem(b, extra=["--registration-delay", "3000", "--reset-delay", "1500"])
    if b.ctl("status").json["status"]["state"] != "idle":
        b.ctl("re-arm")
    comp = b.companion_nfc(tap_timeout=45)
    b.wait_state("registering", timeout=60)
    b.kill_cellprovd(signal.SIGKILL)
    b.start_cellprovd()
    check(b.ctl("status").json["status"]["state"] == "rolling-back", "the restart rolls back")
    time.sleep(0.3)
    b.kill_cellprovd(signal.SIGKILL)
    b.start_cellprovd()
    b.wait_state("failed", timeout=60)
    check(b.modem_state().get("imsi") == OLD_IMSI, "killed during the rollback, the next start finishes it")
    rc, res = b.companion_result(comp)
    check(res["receipt"]["status"] == "failed" and res["receipt"]["reason"] == "interrupted"
          and res["receipt"]["verified"], "... and the receipt says interrupted, MAC'd (%s)" % res.get("receipt"))
    b.ctl("re-arm")


def test_kill_while_port_gone(b):
    # the module re-enumerates after its reset (the simulator's default)
    # and stays off the bus 4 s: cellprovd killed while the port is gone,
    # the restart's restore waits for the port and rolls back once it is
    # back
    restart_modem(b, extra=["--reset-delay", "4000"])
    if b.ctl("status").json["status"]["state"] != "idle":
        b.ctl("re-arm")
    comp = b.companion_nfc(tap_timeout=45)
    end = time.monotonic() + 60
    while b.modem_state().get("port") != "" and time.monotonic() < end:
        time.sleep(0.02)
    check(b.modem_state().get("port") == "", "the module's port went away after the reset")
    check(b.modem_state().get("imsi") != OLD_IMSI, "... with the card written")
    b.kill_cellprovd(signal.SIGKILL)
    log_before = len(b.daemon_log())
    b.start_cellprovd()
    check(b.ctl("status").json["status"]["state"] == "rolling-back", "the restart rolls back")
    check(b.modem_state().get("port") == "", "... while the port is still gone")
    b.wait_state("failed", timeout=60)
    tail = b.daemon_log()[log_before:]
    check("waiting up to 60 s for the modem's port" in tail, "... the restore waited for the port")
    st = b.ctl("status").json
    check(st["status"]["last-error"] == "interrupted", "... rolled back, reason interrupted (%s)"
          % st["status"]["last-error"])
    check(b.modem_state().get("imsi") == OLD_IMSI and b.modem_state().get("port") != "",
          "... the USIM holds the old IMSI again, on the module that came back")
    rc, res = b.companion_result(comp)
    check(res["receipt"]["status"] == "failed" and res["receipt"]["reason"] == "interrupted"
          and res["receipt"]["verified"], "... and the receipt says interrupted, MAC'd (%s)" % res.get("receipt"))
    b.ctl("re-arm")


def b64_forms(secret):
    """Every base64 run that must appear wherever secret is base64-encoded
    inside a longer blob: the characters that depend on its bytes only, at
    the three byte alignments, standard and URL-safe alphabets."""
    forms = set()
    for o in range(3):
        enc = base64.b64encode(bytes(o) + secret).decode()
        run = enc[-(-8 * o // 6):8 * (o + len(secret)) // 6]
        forms.update((run, run.replace("+", "-").replace("/", "_")))
    return forms


def secrets_of_the_run(b):
    """Every secret of the run, computed here from what the test knows: the
    key schedule (cellprov-tool keys) for each profile the SM made (its
    database: device, SUPI, nonce) with the companion's K_AUSF and OP, the
    device record's tags 0x01-0x06 (decoded off the tags the test read);
    ADM1, the device key, the companion's and the AUSF's tokens. The
    derived values are checked against the AUSF's store and the profiles'
    and receipts' MACs, so a wrong computation cannot pass unnoticed."""
    out = [("K_c (the companion's K_AUSF)", bytes.fromhex(netbench.COMPANION_K_AUSF)),
           ("OP", bytes.fromhex(netbench.OP)),
           ("ADM1", ADM1.encode()),
           ("the companion's token", b.token.encode()),
           ("the AUSF token", b.ausf_token.encode())]
    text = subprocess.run(["openssl", "pkey", "-in", b.gw_info["key"], "-text", "-noout"],
                          capture_output=True, text=True, check=True).stdout
    priv = "".join(c for c in text.split("priv:")[1].split("pub:")[0] if c in "0123456789abcdef")
    out.append(("the device key", bytes.fromhex(priv)))
    # the device records' tags 0x01-0x06, from every tag the test read
    info = {}
    for f in os.listdir(b.tmp):
        if f.startswith(("tap-", "tag-")) and f.count(".") == (1 if f.startswith("tap-") else 0):
            r = b.run([b.prog("tools/cellprov-tool"), "decode", b.path(f)], check_rc=False)
            for rec in json.loads(r.stdout).get("records", []) if r.returncode == 0 else []:
                p = rec.get("payload")
                if isinstance(p, dict) and p.get("type") == "device-record":
                    info[p["fields"]["device-id"]] = p["device-info"]
    # the keys are sealed in the store: their clear values are the
    # export's, newest generation first
    exported = {}
    for line in open(b.export_subscribers()):
        if not line.startswith("#"):
            f = line.split()
            exported.setdefault(f[0], (f[1], f[2]))
    ausf = dict((device_id, (supi,) + exported[supi]) for device_id, supi in b.db_rows(
        "ausf", "SELECT device_id, supi FROM subscribers"))
    rows = b.db_rows("sm", "SELECT device_id, profile_seq, supi, nonce FROM provisionings")
    check(len(rows) >= 10 and all(d in info for d, _, _, _ in rows),
          "the SM made %d profiles, for devices whose records the test read" % len(rows))
    receipts = [b.path(f) for f in os.listdir(b.tmp) if f.endswith(".tag.after")]
    seen_prof = seen_receipt = False
    for device_id, seq, supi, nonce in rows:
        r = b.run([b.prog("tools/cellprov-tool"), "keys", "--kc", netbench.COMPANION_K_AUSF,
                   "--device-id", device_id, "--supi", supi, "--op", netbench.OP, "--nonce", nonce,
                   "--device-info", info[device_id]])
        k = json.loads(r.stdout)
        check(ausf[device_id] == (supi, k["k-usim"], k["opc"]),
              "K_usim and OPc of profile %s/%d are the AUSF's" % (device_id[:8], seq))
        for name in ("k-prime", "k-usim", "opc", "k-sm", "k2", "k-prof"):
            out.append(("%s of profile %s/%d" % (name, device_id[:8], seq), bytes.fromhex(k[name])))
        # cellprov-tool decode exits 1 when a MAC fails under the key given
        if device_id == b.gw_info["device-id"] and seq == 1:
            r = b.run([b.prog("tools/cellprov-tool"), "decode", b.first_profile, "--k-prof", k["k-prof"]],
                      check_rc=False)
            seen_prof = r.returncode == 0 and "verified" in r.stdout
        for after in receipts if device_id == b.gw_info["device-id"] else ():
            r = b.run([b.prog("tools/cellprov-tool"), "decode", after, "--k2", k["k2"]], check_rc=False)
            seen_receipt = seen_receipt or (r.returncode == 0 and "verified" in r.stdout)
    check(seen_prof, "K_prof computed here verifies the first profile's MAC")
    check(seen_receipt, "K'' computed here verifies a receipt's MAC")
    return out


def program_logs(b):
    """Every program's log in the bench directory: cellprovd, the
    companion, the SM, the AUSF, lighttpd, the QMI and PN532 simulators
    (their messages and frame traces)."""
    return sorted(f for f in os.listdir(b.tmp) if f.endswith((".log", ".trace")))


def find_secret(text, value):
    """Where value shows in text: hex (either case, with or without
    separators), base64 (any alignment), or as text if it is text."""
    flat = text.lower().replace(":", "").replace(" ", "")
    if value.hex() in flat:
        return "hex"
    for form in b64_forms(value):
        if len(form) >= 8 and form in text:
            return "base64"
    try:
        plain = value.decode("ascii")
    except UnicodeDecodeError:
        plain = None
    if plain and plain.isprintable() and plain in text:
        return "text"
    return None


def test_no_secret_in_logs(b):
    secrets = secrets_of_the_run(b)
    for line in open(b.gw_info["key"]).read().splitlines():
        if line and not line.startswith("-----"):
            secrets.append(("a line of the device key's PEM", line.encode()))
    logs = program_logs(b)
    for must in ("cellprovd.log", "companion.log", "sm.log", "ausf.log", "qmi-sim.log",
                 "pn532-link.log", "pn532-link.trace", "pn532-sim.log"):
        check(must in logs, "%s is there to be searched" % must)
    # each program ran at its most verbose level
    for name in ("cellprovd", "companion", "sm", "ausf"):
        check("DEBUG" in open(b.path(name + ".log"), errors="replace").read(),
              "%s.log was taken at debug level" % name)
    check("pn532-sim initiator ->" in open(b.path("pn532-link.trace")).read()
          and "pn532-sim" in open(b.path("pn532-sim.log")).read(),
          "the PN532 simulators traced every frame (-v)")
    for f in logs:
        text = open(b.path(f), errors="replace").read()
        found = [(name, where) for name, value in secrets for where in [find_secret(text, value)] if where]
        check(not found, "no secret in %s (%d secrets searched as hex, base64, text)%s"
              % (f, len(secrets), "".join("; found %s as %s" % nw for nw in found[:5])))


def test_clean_stop(b):
    # SIGTERM: each program frees its secure heap and exits 0 (under
    # ASan, with no leak; the sanitizers' reports would show in the logs)
    rc = b.kill_cellprovd(signal.SIGTERM)
    check(rc == 0, "cellprovd stops on SIGTERM with 0 (%d)" % rc)
    for name in ("sm", "ausf"):
        b.stop(name)
    for name in ("cellprovd", "sm", "ausf", "companion"):
        check(os.path.exists(b.path(name + ".log")), "%s.log is there" % name)
        text = open(b.path(name + ".log")).read()
        check("Sanitizer" not in text and "runtime error:" not in text, "no sanitizer report in %s.log" % name)
        check("still allocated at exit" not in text, "%s freed every secret in its secure heap" % name)


def wait_exited(b, since, why, timeout=30):
    """No cellprovd of the bench runs any more; it said why it exited and
    exited with status 0 (the activation wrapper's line, or the plain
    start's return code). Returns its log from since."""
    wait_for("cellprovd to exit (%s)" % why, lambda: not b.cellprovd_pids(), timeout)
    log = b.wait_daemon_log("cellprovd exited", since, timeout=5)
    if "idle: bound and provisioned, %s: exiting" % why not in log or "cellprovd exited 0\n" not in log \
            or "stopped" not in log:
        raise Fail("cellprovd did not exit with 0 because %s:\n%s" % (why, log[-3000:]))
    check(True, "cellprovd exited with 0: %s" % why)
    return log


def test_exit_when_idle(b):
    """cellprovd's default configuration on a bus that starts it by D-Bus
    activation: armed, it waits for its owner however long; provisioned and
    its receipt read, it exits (status 0) and nothing of it is resident;
    cellprovctl status starts it again, it answers from its journal and
    exits after [daemon] linger; started as cellprovd-check.timer starts
    it, it polls the SM at once, applies the re-provisioning its owner left
    waiting, posts the receipt and exits; a re-arm brings it back armed,
    and resident."""
    linger = 3
    conf = b.gw_info["config"]
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("[daemon]\n", "[daemon]\nlinger=%d\n" % linger))
    b.start_modem()
    b.link_up()
    check(not b.cellprovd_pids(), "no cellprovd before the first call")
    st = b.ctl("status").json
    check(st["status"]["state"] == "idle", "bus activation: cellprovd answers, armed (%r)" % st["status"])
    pids = b.cellprovd_pids()
    check(len(pids) == 1, "one cellprovd, started by the bus (%r)" % pids)
    time.sleep(linger + 2)
    check(b.cellprovd_pids() == pids, "an armed device's cellprovd never exits on its own")

    # the owner's tap: provisioned, the receipt read by the companion
    since = len(b.daemon_log())
    rc, res = b.tap_nfc()
    check(rc == 0 and res["receipt"]["status"] == "provisioned" and res["receipt"]["verified"],
          "the claim over NFC (%s)" % res.get("error"))
    log = wait_exited(b, 0, "the receipt was read")
    check("tag: the receipt was read" in log, "the receipt read is logged")
    check(os.path.exists(os.path.join(b.state_dir, "provisioned")), "the provisioned marker is there")

    # cellprovctl status: the bus starts cellprovd, which answers from its
    # journal, then exits linger seconds after the last call
    since = len(b.daemon_log())
    st = b.ctl("status").json
    check(st["status"]["state"] == "provisioned" and st["owner"]["bound"] is True,
          "cellprovctl status after the exit: provisioned and bound (%r)" % st["status"])
    check(len(b.cellprovd_pids()) == 1, "the status started one cellprovd")
    start = time.monotonic()
    log = wait_exited(b, since, "nothing for %d s" % linger, timeout=linger + 15)
    check(time.monotonic() - start >= linger - 1, "it lingered %d s" % linger)

    # the lifecycle check: the owner left a re-provisioning waiting; a
    # plain start (the timer's) polls at once, applies it and exits
    dev = b.gw_info["device-id"]
    with open(conf, "a") as f:
        f.write("\n[network]\nsm-url=https://127.0.0.1:%d\nsm-ca=%s\n" % (b.sm_port, b.tls_ca))
    supi = list(b.ausf_view())[0]
    before = b.card()
    st, res = b.sm_request("POST", "/v1/devices/%s/reprovision" % dev, body="{}")
    check(st == 200 and res.get("generation") == 2,
          "the owner asks for a re-provisioning (%d %r)" % (st, res.get("error")))
    b.export_subscribers()
    since = len(b.daemon_log())
    env = b.nfc_env()
    env["CELLPROV_BUS_ADDRESS"] = b.bus_address
    start = time.monotonic()
    with open(b.path("cellprovd.log"), "a") as log:
        p = subprocess.Popen([b.prog("daemon/cellprovd"), "--config", conf, "--debug"], stdout=log,
                             stderr=subprocess.STDOUT, env=env)
        rc = p.wait(timeout=90)
        log.write("cellprovd exited %d\n" % rc)
    took = time.monotonic() - start
    log = wait_exited(b, since, "the poll is done")
    check(rc == 0, "the lifecycle check's cellprovd exited 0")
    if "waiting (" not in log or "posted (processed)" not in log:
        raise Fail("no poll, application and receipt in the log:\n" + log[-3000:])
    check(True, "it polled, applied the profile and posted the receipt")
    check(took < 30, "it polled at once and exited (%.1f s)" % took)
    check(b.ausf_view() == {supi: (netbench.COMPANION_SUPI, [2])}, "the SM took the receipt (%r)" % b.ausf_view())
    check(b.card()["ef-usim-auth-key"] != before["ef-usim-auth-key"], "the card holds the new keys")
    check(not b.cellprovd_pids(), "nothing of cellprovd is resident")

    # a re-arm: the bus starts cellprovd, which stays for its owner's tap
    since = len(b.daemon_log())
    b.ctl("rearm")
    pids = b.cellprovd_pids()
    check(len(pids) == 1 and b.ctl("status").json["status"]["state"] == "idle", "re-armed by activation")
    time.sleep(linger + 3)
    check(b.cellprovd_pids() == pids and b.ctl("status").json["status"]["state"] == "idle",
          "a re-armed cellprovd stays resident")
    os.kill(pids[0], signal.SIGTERM)
    wait_for("cellprovd to stop on SIGTERM", lambda: not b.cellprovd_pids())
    log = b.wait_daemon_log("cellprovd exited", since, timeout=5)
    if "cellprovd exited 0\n" not in log or "idle: bound" in log:
        raise Fail("the re-armed cellprovd exited otherwise than by SIGTERM:\n" + log[-2000:])
    check(True, "stopped by SIGTERM only, with 0")


def main():
    # every program of the bench logs at debug level (cellprovd: --debug)
    os.environ["G_MESSAGES_DEBUG"] = "all"
    if sys.argv[2:] == ["postgresql"]:
        # the one case on PostgreSQL of the normal run (the whole test
        # takes CP_TEST_STORE=postgresql)
        return run(sys.argv[1], [test_store_lifecycle, test_clean_stop], store="postgresql")
    return run(sys.argv[1], [test_happy_path, test_secure_heap, test_replay, test_flipped_byte, test_other_device,
                             test_leave_mid_write, test_expired, test_kill_before_commit, test_registration_denied,
                             test_kill_at_every_state, test_kill_while_rolling_back, test_kill_while_port_gone,
                             test_no_secret_in_logs, test_clean_stop]) or \
        run(sys.argv[1], [test_lifecycle, test_cellular_path, test_lifecycle_kills, test_clean_stop]) or \
        run(sys.argv[1], [test_exit_when_idle], resident=False) or \
        run(sys.argv[1], [test_kill_on_modem], modem="at") or \
        run(sys.argv[1], [test_kill_on_modem], modem="mbim")


if __name__ == "__main__":
    sys.exit(main())
