# SPDX-License-Identifier: LGPL-2.1-or-later
"""One owner at a time, with the real SM and AUSF: the SM signs every
profile under its operator chain (the device's verification with the
operator root accepts it, another root does not); a claim binds the device
at version 1, the owner again reprovisions at the same version; another
owner's claim is refused with already-claimed before the AUSF is asked
(its database byte-identical, the binding unchanged); of two companions
claiming one device at the same instant exactly one wins; a database from
before the bindings migrates at version 0; the SM refuses a signing key
or chain that cannot sign."""

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netbench  # noqa: E402
from netbench import Fail, check, main  # noqa: E402


def db_rows(b, sql, args=(), db="sm.db"):
    """A query on the SM's or the AUSF's store (SQLite or PostgreSQL), or
    on another SQLite file of the test."""
    if db in ("sm.db", "ausf.db"):
        return b.db_rows(db[:-3], sql, args)
    con = sqlite3.connect("file:%s?mode=ro" % b.path(db), uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def binding(b, name):
    rows = db_rows(b, "SELECT owner_name, owner_supi, binding_version, state, created, updated "
                   "FROM bindings WHERE device_id = ?", (b.devices[name]["device-id"],))
    return rows[0] if rows else None


def record(b, name, state=0):
    """A fresh device record (next att_counter), base64, and its device info."""
    b.counter[name] += 1
    out = b.path("rec-%s-%d" % (name, b.counter[name]))
    b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf(name),
           "--first", str(b.counter[name]), "--state", str(state), "--raw", "--out", out])
    raw = open(out, "rb").read()
    info = json.loads(b.run([b.prog("tools/cellprov-tool"), "decode", out]).stdout)["device-info"]
    return base64.b64encode(raw).decode(), info


def claim(b, name, token, state=0):
    rec, info = record(b, name, state)
    st, res = b.provision_raw(b.devices[name]["certificate-url"], rec, token=token)
    return st, res, info


def decode(b, name, res, info, *extra):
    path = b.path("profile-%s-%d" % (name, res["profile-seq"]))
    with open(path, "wb") as f:
        f.write(base64.b64decode(res["profile"]))
    r = b.run([b.prog("tools/cellprov-tool"), "decode", path, "--device-key", b.devices[name]["key"],
               "--device-info", info] + list(extra), check_rc=False)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}, r.stderr


def test_claim_and_reprovision(b):
    b.make_device("own")
    st, res, info = claim(b, "own", b.token)
    check(st == 200 and res["operation"] == "claim" and res["binding-version"] == 1,
          "a first claim binds the device at version 1 (%s)" % st)
    rc, out, err = decode(b, "own", res, info, "--operator-roots", b.operator_root)
    f = out.get("fields", {})
    check(rc == 0 and f["version"] == 2 and f["operation"] == "claim" and f["binding-version"] == 1,
          "the profile decodes as version 2, operation claim, binding-version 1")
    check(out.get("verified") and out["operator"]["name"] == "cellprov test operator",
          "the device's verification with the operator root as trusted-operators accepts it (%s)" % err.strip())
    b.first_pin = out["operator"]["root-spki-sha256"]
    other = b.path("other-root")
    b.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", other + "-key.pem", "-out", other + ".pem", "-days", "30", "-subj", "/CN=another operator",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
    rc, out, err = decode(b, "own", res, info, "--operator-roots", other + ".pem")
    check(rc == 1 and "operator" in err, "... and a device trusting another operator refuses it (%s)" % err.strip())
    row = binding(b, "own")
    check(row[:4] == ("bench", netbench.COMPANION_SUPI, 1, "bound"),
          "the SM's binding: owner bench with its SUPI, version 1, bound (%r)" % (row,))

    st, res, info = claim(b, "own", b.token, state=2)
    check(st == 200 and res["operation"] == "reprovision" and res["binding-version"] == 1,
          "the owner again, device provisioned: reprovision at the same version")
    rc, out, err = decode(b, "own", res, info, "--operator-roots", b.operator_root,
                          "--pin", b.first_pin, "--binding", "1", "--last-seq", "1")
    check(rc == 0 and out["fields"]["operation"] == "reprovision" and out["fields"]["binding-version"] == 1
          and out["verified"], "... which the bound device accepts (pinned root, binding 1) (%s)" % err.strip())
    for state, what in ((0, "unprovisioned"), (3, "failed")):
        st, res, info = claim(b, "own", b.token, state=state)
        check(st == 200 and res["operation"] == "claim" and res["binding-version"] == 1,
              "the owner again, device %s: a claim at the same version" % what)
    check(binding(b, "own")[:4] == ("bench", netbench.COMPANION_SUPI, 1, "bound"), "binding still version 1")


def test_other_owner(b):
    before_ausf = b.ausf_snapshot()
    before_row = binding(b, "own")
    counters = db_rows(b, "SELECT * FROM attestations ORDER BY device_id")
    for token, who in ((b.neighbour_token, "another subscriber"), ("token-of-a-stranger-companion", "a stranger")):
        st, res, _ = claim(b, "own", token)
        err = res.get("error", {}) if isinstance(res, dict) else {}
        check(st == 409 and err.get("code") == "already-claimed" and "release" in err.get("message", ""),
              "%s claiming the device: 409 already-claimed, told to have it released (%s)" % (who, err))
    check(b.ausf_snapshot() == before_ausf, "the AUSF's store is unchanged (no AUSF call)")
    check(binding(b, "own") == before_row, "the SM's binding row is unchanged")
    check(db_rows(b, "SELECT * FROM attestations ORDER BY device_id") == counters,
          "nor is the attestation counter recorded")
    # the reference companion names the code and what to do
    tag = b.tag("own")
    rc, res, _ = b.companion(tag, token=b.path("neighbour-token"))
    check(rc == 1 and res["error"]["code"] == "already-claimed" and "release" in res["error"].get("hint", ""),
          "cellprov-companion: already-claimed with the hint to have it released")


def test_concurrent(b):
    for i in range(10):
        name = "race%d" % i
        b.make_device(name)
        recs = [record(b, name)[0] for _ in range(2)]
        url = b.devices[name]["certificate-url"]
        start = threading.Barrier(2)
        results = [None, None]

        def go(k, token):
            start.wait()
            results[k] = b.provision_raw(url, recs[k], token=token)

        threads = [threading.Thread(target=go, args=(0, b.token)),
                   threading.Thread(target=go, args=(1, b.neighbour_token))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(r[0] for r in results)
        codes = [r[1].get("error", {}).get("code") for r in results if r[0] != 200]
        check(statuses == [200, 409] and codes == ["already-claimed"],
              "round %d: two claims at once, one 200 and one already-claimed (%r)" % (i, results and statuses))
        winner = netbench.COMPANION_SUPI if results[0][0] == 200 else netbench.NEIGHBOUR_SUPI
        subs = db_rows(b, "SELECT companion FROM subscribers WHERE device_id = ?",
                       (b.devices[name]["device-id"],), db="ausf.db")
        check(subs == [(winner,)], "round %d: the AUSF holds one subscriber, the winner's" % i)
        check(binding(b, name)[1:4] == (winner, 1, "bound"), "round %d: the SM binds the winner" % i)


def test_ausf_failure_releases(b):
    """A claim the AUSF refuses leaves the device claimable."""
    b.make_device("free")
    st, res, _ = claim(b, "free", "token-of-a-stranger-companion")
    check(st == 403 and res["error"]["code"] == "unknown-companion", "the AUSF refuses a claim")
    check(binding(b, "free") is None, "... and the reservation is gone")
    st, res, _ = claim(b, "free", b.neighbour_token)
    check(st == 200 and res["operation"] == "claim" and res["binding-version"] == 1,
          "another companion claims the device afterwards")


V1_SCHEMA = """
CREATE TABLE attestations (device_id TEXT PRIMARY KEY, att_counter TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE provisionings (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL,
 profile_seq INTEGER NOT NULL, companion TEXT NOT NULL, supi TEXT NOT NULL, suite TEXT NOT NULL,
 att_counter TEXT NOT NULL, nonce TEXT NOT NULL, certificate_url TEXT NOT NULL,
 profile_sha256 TEXT NOT NULL, created INTEGER NOT NULL, UNIQUE (device_id, profile_seq));
"""


def test_migration(b):
    """An SM database from before the bindings: each provisioned device is
    bound at version 0 to the companion of its last provisioning."""
    b.stop("sm")
    b.make_device("old")
    dev = b.devices["old"]["device-id"]
    con = sqlite3.connect(b.path("old.db"))
    con.executescript(V1_SCHEMA)
    for seq, comp in ((1, netbench.NEIGHBOUR_SUPI), (2, netbench.COMPANION_SUPI)):
        con.execute("INSERT INTO provisionings (device_id, profile_seq, companion, supi, suite, att_counter, nonce,"
                    " certificate_url, profile_sha256, created) VALUES (?, ?, ?, '001010000000099', 'B', '1', '00',"
                    " 'u', '00', 1700000000)", (dev, seq, comp))
    con.commit()
    con.close()
    os.chmod(b.path("old.db"), 0o600)
    # a SQLite file, whichever store the other tests run on
    b.sm_options = {"store": None, "database": b.path("old.db")}
    b.write_sm_conf()
    b.start_sm()
    rows = db_rows(b, "SELECT owner_name, owner_supi, binding_version, state FROM bindings", db="old.db")
    check(rows == [("bench", netbench.COMPANION_SUPI, 0, "bound")],
          "migrated: the device bound at version 0 to its last companion, named from the companions file")
    check(db_rows(b, "PRAGMA user_version", db="old.db") == [(3,)], "schema version 3")
    st, res, _ = claim(b, "old", b.neighbour_token)
    check(st == 409 and res["error"]["code"] == "already-claimed", "another owner is refused")
    st, res, _ = claim(b, "old", b.token, state=2)
    check(st == 200 and res["operation"] == "reprovision" and res["binding-version"] == 0 and res["profile-seq"] == 3,
          "the owner reprovisions at version 0, profile_seq 3")
    b.stop("sm")
    b.start_sm()
    check(db_rows(b, "SELECT binding_version, state FROM bindings", db="old.db") == [(0, "bound")],
          "a restart migrates nothing twice")


def refused(b, opts, want, what):
    conf = b.path("sm-bad.conf")
    text = open(b.path("sm.conf")).read()
    lines = [l for l in text.splitlines() if l.split("=")[0] not in opts]
    lines += ["%s=%s" % kv for kv in opts.items() if kv[1] is not None]
    netbench.write(conf, "\n".join(lines) + "\n")
    r = subprocess.run([b.prog("network/cellprov-sm"), "-c", conf, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and want in r.stderr,
          "SM refuses to start: %s (%s)" % (what, [l for l in r.stderr.splitlines() if l.startswith("cellprov-sm:")]))


def test_signing_refusals(b):
    d = b.path("operator")
    ossl = ["openssl"]
    b.run(ossl + ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", d + "/other-key.pem"])
    b.run(ossl + ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", d + "/p384-key.pem"])
    for k in ("other-key.pem", "p384-key.pem"):
        os.chmod(os.path.join(d, k), 0o600)
    chain = open(b.signing_chain).read()
    root = open(b.operator_root).read()
    netbench.write(d + "/long-chain.pem", chain + root * 3)
    # three certificates, one with a large extension: above 2048 bytes of DER
    b.run(ossl + ["req", "-x509", "-key", d + "/root-key.pem", "-out", d + "/fat.pem", "-days", "30",
                  "-subj", "/CN=fat", "-addext", "nsComment=" + "x" * 1500])
    netbench.write(d + "/fat-chain.pem", chain + open(d + "/fat.pem").read())
    netbench.write(d + "/garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    refused(b, {"signing-key": None}, "signing-key and signing-chain are required", "no signing-key")
    refused(b, {"signing-chain": None}, "signing-key and signing-chain are required", "no signing-chain")
    refused(b, {"signing-key": d + "/missing-key.pem"}, "signing-key", "a signing-key file that does not exist")
    refused(b, {"signing-key": d + "/other-key.pem"}, "signing-key %s/other-key.pem is not the key of the first "
            "certificate of signing-chain" % d, "a key that is not the chain's")
    refused(b, {"signing-key": d + "/p384-key.pem"}, "signing-key %s/p384-key.pem: not a P-256 key" % d,
            "a P-384 key")
    refused(b, {"signing-chain": d + "/long-chain.pem"}, "signing-chain %s/long-chain.pem: 5 certificates, at most 4"
            % d, "a chain of 5 certificates")
    refused(b, {"signing-chain": d + "/fat-chain.pem"}, "signing-chain %s/fat-chain.pem: longer than the 2048 bytes"
            % d, "a chain above 2048 bytes of DER")
    refused(b, {"signing-chain": d + "/garbage.pem"}, "signing-chain %s/garbage.pem: not a PEM chain" % d,
            "a chain that does not parse")
    os.chmod(b.signing_key, 0o644)
    refused(b, {}, "signing-key", "a signing key readable by others")
    os.chmod(b.signing_key, 0o600)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [test_claim_and_reprovision, test_other_owner, test_concurrent,
                                test_ausf_failure_releases, test_signing_refusals, test_migration]))
