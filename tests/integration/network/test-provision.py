# SPDX-License-Identifier: LGPL-2.1-or-later
"""Happy path over loopback with the real programs: cellprov-mfg makes the
device, lighttpd serves its chain over HTTPS, the companion asks the SM, the
SM fetches and verifies the chain and has the AUSF add the device; the
device's checks (cp_profile_verify with its key) accept the profile, the
USIM credentials it derives are the AUSF's subscriber export, and the
receipt MAC'd with the device's K'' verifies in the companion. Then
restarting the SM and the AUSF loses nothing. K_usim and OPc are sealed
in the AUSF's store (SQLite or PostgreSQL) under the key-encryption key,
which the AUSF needs, and needs right, to start."""

import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netbench  # noqa: E402
from netbench import Fail, check, main, prereq  # noqa: E402


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_mfg(b):
    d1 = b.make_device("idem", extra=["--adm1", "12345678"])
    key = d1["key"]
    k1 = sha(key)
    d2 = b.make_device("idem", extra=["--adm1", "12345678"])
    check(d1["device-id"] == d2["device-id"] and sha(key) == k1 and not d2["new-key"],
          "cellprov-mfg run twice keeps the key and the DeviceID")
    check(not d2["new-certificate"], "... and the certificate")
    check(os.stat(key).st_mode & 0o777 == 0o600, "device key is 0600")
    adm1 = os.path.join(os.path.dirname(key), "adm1")
    check(os.stat(adm1).st_mode & 0o777 == 0o600 and open(adm1).read() == "12345678", "ADM1 file is 0600")
    chain = open(d1["chain"]).read()
    check(chain.count("BEGIN CERTIFICATE") == 2 and
          chain.startswith(open(d1["certificate"]).read()), "chain file: device certificate, then intermediate")
    spki = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                          capture_output=True, check=True).stdout
    check(hashlib.sha256(spki).hexdigest()[:32] == d1["device-id"], "DeviceID = SHA-256(SPKI)[0:16]")
    conf = open(d1["config"]).read()
    check("certificate-url=" + d1["certificate-url"] in conf and "adm1=" in conf, "config holds URL and ADM1 path")
    r = b.run([b.prog("tools/cellprov-mfg"), "device", "--ca", b.path("ca"), "--out", b.path("dev-idem"),
               "--chains", b.path("www", "devices"), "--url-base", "https://127.0.0.1:1/devices",
               "--adm1", "1234"], check_rc=False)
    check(r.returncode != 0 and "8 ASCII digits" in r.stderr and sha(key) == k1, "bad ADM1 refused, nothing changed")
    mfg = [b.prog("tools/cellprov-mfg"), "device", "--ca", b.path("ca"), "--out", b.path("dev-idem"),
           "--chains", b.path("www", "devices"), "--url-base", "https://127.0.0.1:1/devices"]
    secret = b.path("adm1-secret")
    with open(secret, "w") as f:
        f.write("87654321\n")
    os.chmod(secret, 0o640)
    r = b.run(mfg + ["--adm1-file", secret], check_rc=False)
    check(r.returncode == 1 and open(adm1).read() == "12345678", "--adm1-file readable by the group refused, ADM1 unchanged")
    os.chmod(secret, 0o600)
    r = b.run(mfg + ["--adm1-file", secret, "-J"])
    check(open(adm1).read() == "87654321" and "87654321" not in r.stdout + r.stderr,
          "--adm1-file (0600) gives the ADM1 without putting it on the command line or the output")
    for bad in (["--valid-from", "99999999999999999999"], ["--valid-from", "-5"],
                ["--valid-from", "9999-12-31T00:00:00Z", "--valid-days", "2"], ["--valid-days", "2147483647"]):
        r = b.run(mfg + bad, check_rc=False)
        check(r.returncode == 1 and "valid-" in r.stderr and sha(key) == k1, "cellprov-mfg refuses %s" % " ".join(bad))
    os.chmod(key, 0o644)
    r = b.run([b.prog("tools/cellprov-mfg"), "device", "--ca", b.path("ca"), "--out", b.path("dev-idem"),
               "--chains", b.path("www", "devices"), "--url-base", "https://127.0.0.1:1/devices"], check_rc=False)
    check(r.returncode != 0 and "0600" in r.stderr and sha(key) == k1, "world-readable key refused, not replaced")
    os.chmod(key, 0o600)
    d3 = b.make_device("idem", extra=["--force"])
    check(d3["new-key"] and d3["device-id"] != d1["device-id"], "--force makes a new key and DeviceID")


def provision(b, name, last_seq, want_seq, usim_out=None, bound=None):
    """A claim, or with bound (the device's binding version: it is
    provisioned) a re-provisioning."""
    tag = b.tag(name, extra=["--state", "2"] if bound is not None else [])
    profile = tag + ".profile"
    receipt_tag = tag + ".after"
    comp = b.companion(tag, profile=profile, receipt_tag=receipt_tag, wait=False)
    # play the device: wait for the companion's tap 2, check, answer tap 3
    deadline = 200
    while not os.path.exists(profile) and deadline and comp.poll() is None:
        import time
        time.sleep(0.05)
        deadline -= 1
    if not os.path.exists(profile):
        out, err = comp.communicate()
        raise Fail("companion wrote no profile: %s %s" % (out, err))
    subs = b.export_subscribers()
    rc, res = b.accept(name, tag, profile, out=receipt_tag, last_seq=last_seq, subscribers=subs, usim_out=usim_out,
                       extra=["--bound", str(bound)] if bound is not None else [])
    out, err = comp.communicate(timeout=30)
    import json
    cres = json.loads(out)
    check(rc == 0 and res["result"] == "ok", "device accepts profile %d (cp_profile_verify with its key)" % want_seq)
    check(res["subscriber"], "the device's K_usim and OPc are the AUSF's subscriber export")
    check(res["profile-seq"] == want_seq and res["plmn"] == "00101" and res["supi"].startswith("00101")
          and res["apn"] == "iot.test" and res["network-name"] == "cellprov test network",
          "profile fields (seq %d, PLMN, SUPI, APN, name)" % want_seq)
    check(comp.returncode == 0 and cres["result"] == "ok" and cres["receipt"]["verified"]
          and cres["receipt"]["status"] == "provisioned", "companion verified the receipt with K''")
    check(cres["device"]["device-id"] == b.devices[name]["device-id"], "companion reports the DeviceID")
    b.last_companion = cres
    return tag, profile, res


def test_happy(b):
    b.make_device("gw")
    _, profile1, res1 = provision(b, "gw", 0, 1)
    tag2, profile2, res2 = provision(b, "gw", 1, 2, bound=1)
    check(res1["supi"] == res2["supi"], "reprovisioning keeps the SUPI")
    rc, res = b.accept("gw", tag2, profile1, last_seq=2)
    check(rc != 0 and res["code"] == "replay", "an older profile is refused by the device (replay)")
    # the companion relayed the device's receipt: the SM had the AUSF
    # retire the first key generation (both stay valid until then:
    # network-lifecycle)
    check(b.last_companion["relay"] == {"result": "processed", "action": "retired-older-keys"},
          "the companion relayed the receipt; the older keys retired (%r)" % b.last_companion.get("relay"))
    lines = [l for l in open(b.export_subscribers()) if not l.startswith("#")]
    check(len(lines) == 1 and all(l.split()[0] == res1["supi"] and len(l.split()) == 4 for l in lines),
          "subscriber file: a line <imsi> <K> <OPc> <SQN> for the one valid key generation")
    # -J is UTF-8 whatever the locale, and the libraries' debug messages
    # (G_MESSAGES_DEBUG=all, main() below) stay off stdout
    b.make_device("utf8", extra=["--manufacturer", "Müller Gerätebau"])
    rc, res, _ = b.companion(b.tag("utf8"))
    check(rc == 0 and res["device"]["manufacturer"] == "Müller Gerätebau",
          "companion -J: one JSON object, UTF-8 intact (%r)" % res.get("device", {}).get("manufacturer"))
    for db in ("ausf.db", "sm.db"):
        for f in (db, db + "-wal", db + "-shm"):
            if os.path.exists(b.path(f)):
                check(os.stat(b.path(f)).st_mode & 0o777 == 0o600, "%s is 0600" % f)
    b.state = (tag2, res1["supi"])
    # one more provisioning whose K'' the test sees; the daemons log at
    # debug level (main() below), and no level may show a key
    recf = b.path("debug.rec")
    b.make_device("dbg")
    b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf("dbg"),
           "--first", "1", "--out", recf])
    st, raw = b.provision_raw(b.devices["dbg"]["certificate-url"], open(recf).read().split()[0])
    check(st == 200 and raw["k2"], "a raw provisioning answers K''")
    import base64
    k2 = base64.b64decode(raw["k2"])
    sub = [l.split() for l in open(b.export_subscribers()) if l.startswith(raw["supi"] + " ")][0]
    secrets = [raw["k2"], k2.hex(), sub[1], sub[2], b.token, b.ausf_token]
    for log in ("sm", "ausf"):
        text = open(b.path(log + ".log")).read()
        check("(1/9)" in text if log == "sm" else True, "%s log is at debug level" % log)
        check(res1["supi"] not in text, "%s log does not show the SUPI" % log)
        check(not any(x.lower() in text.lower() for x in secrets), "%s log holds no token, K'', K_usim or OPc" % log)


def test_restart(b):
    tag2, supi = b.state
    b.stop("sm")
    b.stop("ausf")
    b.start_ausf()
    b.write_sm_conf()
    b.start_sm()
    rc, res, _ = b.companion(tag2)
    check(rc == 1 and res["error"]["code"] == "stale-attestation",
          "after a restart the SM still knows the last counter")
    _, _, res3 = provision(b, "gw", 2, 3)
    check(res3["supi"] == supi, "after a restart the AUSF keeps the SUPI; profile_seq went on to 3")


def attach(b, imsi, k, opc, tag):
    """The QMI simulator's network model, loaded with the AUSF's export,
    authenticating a USIM that holds imsi/k/opc: the registration state."""
    sim = b.prog("tests/sim/qmi/cp-qmi-sim")
    dump = b.path("qmi-%s.dump" % tag)
    p = subprocess.Popen([sim, "--pty", b.path("qmi-%s" % tag), "--subscribers", b.export_subscribers(),
                          "--imsi", imsi, "--k", k, "--opc", opc, "--registration-delay", "10",
                          "--dump", dump], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import time
        deadline = time.monotonic() + 10
        state = None
        while time.monotonic() < deadline:
            if os.path.exists(dump):
                for line in open(dump):
                    if line.startswith("registration="):
                        state = line.strip().split("=", 1)[1]
                if state and state not in ("not-registered", "not-registered-searching"):
                    break
            time.sleep(0.05)
        return state
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_qmi_network(b):
    if not os.path.exists(b.prog("tests/sim/qmi/cp-qmi-sim")):
        prereq.partly("no QMI simulator in this build: the USIM is not tried on its network")
        return
    usim = b.path("usim")
    b.make_device("qmi")
    provision(b, "qmi", 0, 1, usim_out=usim)
    check(os.stat(usim).st_mode & 0o777 == 0o600, "USIM values written 0600")
    imsi, k, opc = open(usim).read().split()
    state = attach(b, imsi, k, opc, "good")
    check(state == "registered", "QMI simulator's network registers the USIM written from the profile (%s)" % state)
    wrong_k = "%032x" % (int(k, 16) ^ 1)
    state = attach(b, imsi, wrong_k, opc, "bad")
    check(state != "registered", "... and not a USIM with another K (%s)" % state)


def test_keys_at_rest(b):
    lines = [l.split() for l in open(b.export_subscribers()) if not l.startswith("#")]
    check(lines, "the export has key sets")
    rows = b.db_rows("ausf", "SELECT supi, generation, k_usim, opc FROM keysets")
    check(rows and all(k.startswith("kek1:") and o.startswith("kek1:") for _, _, k, o in rows),
          "every K_usim and OPc in the AUSF's store is sealed (kek1:)")
    clear = [x.lower() for l in lines for x in (l[1], l[2])]
    stored = " ".join(str(v) for r in rows for v in r).lower()
    if b.store == "sqlite":
        stored += open(b.path("ausf.db"), "rb").read().hex() + open(b.path("ausf.db"), "rb").read().decode(
            "latin-1").lower()
    check(not any(c in stored for c in clear), "no clear K_usim or OPc in the store")
    # the row's identity is the additional data: a sealed key moved to
    # another row does not open, and the export says so rather than
    # handing out a wrong key
    if len(rows) >= 2:
        a, c = rows[0], rows[1]
        if b.store == "sqlite":
            import sqlite3
            con = sqlite3.connect(b.path("ausf.db"))
            con.execute("UPDATE keysets SET k_usim = ? WHERE supi = ? AND generation = ?", (c[2], a[0], a[1]))
            con.commit()
            con.close()
        else:
            b.pg.psql("ausf", "UPDATE keysets SET k_usim = '%s' WHERE supi = '%s' AND generation = %d"
                      % (c[2], a[0], a[1]))
        r = b.run([b.prog("network/cellprov-ausf"), "-c", b.path("ausf.conf"), "--export"], check_rc=False)
        check(r.returncode == 1 and "does not open under the key-encryption key" in r.stderr and "cellprov subscribers" not in r.stdout,
              "a sealed key moved to another row does not open: the export fails (%s)" % r.stderr.strip())
        if b.store == "sqlite":
            con = sqlite3.connect(b.path("ausf.db"))
            con.execute("UPDATE keysets SET k_usim = ? WHERE supi = ? AND generation = ?", (a[2], a[0], a[1]))
            con.commit()
            con.close()
        else:
            b.pg.psql("ausf", "UPDATE keysets SET k_usim = '%s' WHERE supi = '%s' AND generation = %d"
                      % (a[2], a[0], a[1]))
    conf = open(b.path("ausf.conf")).read()
    for what, text, want in (
            ("no kek", conf.replace("kek=" + b.path("kek"), ""), "kek is required"),
            ("a kek file that is missing", conf.replace("kek=" + b.path("kek"), "kek=" + b.path("no-such-kek")),
             "kek: "),
            ("another kek", conf.replace("kek=" + b.path("kek"), "kek=" + b.path("kek2")),
             "is not the one this store's keys are sealed under"),
            ("a kek of the wrong length", conf.replace("kek=" + b.path("kek"), "kek=" + b.path("kek-short")),
             "kek: ")):
        netbench.write(b.path("kek2"), "a7" * 32 + "\n", 0o600)
        netbench.write(b.path("kek-short"), "a7" * 16 + "\n", 0o600)
        netbench.write(b.path("ausf-bad.conf"), text)
        r = b.run([b.prog("network/cellprov-ausf"), "-c", b.path("ausf-bad.conf"), "--export"], check_rc=False)
        check(r.returncode == 1 and want in r.stderr and "cellprov subscribers" not in r.stdout,
              "the AUSF refuses to start with %s (%s)" % (what, r.stderr.strip()))


if __name__ == "__main__":
    os.environ["G_MESSAGES_DEBUG"] = "all"
    sys.exit(main(sys.argv[1], [test_mfg, test_happy, test_restart, test_keys_at_rest, test_qmi_network]))
