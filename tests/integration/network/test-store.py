# SPDX-License-Identifier: LGPL-2.1-or-later
"""The stores under load, with the real programs: two SM processes, each
with an AUSF process of its own, on one store, no state in any process.
test-store.py BUILDDIR [postgresql|sqlite]: a real PostgreSQL server
(pgserver.py), or the SQLite files the processes share.

- 200 claims at once of 100 devices, each device by two companions, spread
  over both SMs: each device is bound exactly once, to the one companion
  that got 200 (the other 409 already-claimed), and no SUPI is given twice.
- (PostgreSQL) the server stopped and started again under load: the requests that fail
  fail with storage, the SM's records of a provisioning are all there or
  none is, and the same SM and AUSF processes serve again once it is back.
- The SQLite stores the programs made before versioned schemas and sealed
  keys (ausf-v2.sql, sm-v3.sql) move to the current schema keeping every
  subscriber, its keys and every binding."""

import http.client
import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netbench  # noqa: E402
from netbench import Fail, check  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def request(b, port, path, body=None, token=None, method="POST"):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=b.ssl_context(), timeout=60)
    h = {"Authorization": "Bearer " + (token or b.token)}
    if body is not None:
        h["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def claim(b, port, name, record, token):
    body = json.dumps({"certificate-url": b.devices[name]["certificate-url"], "device-record": record})
    return request(b, port, "/v1/provision", body=body, token=token)


def records(b, name, first, count):
    out = b.path("records-%s" % name)
    b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf(name),
           "--first", str(first), "--count", str(count), "--out", out])
    return open(out).read().split()


def run_all(jobs, workers):
    """Run each job (a callable) on a pool of threads; their results in order."""
    results = [None] * len(jobs)
    q = queue.Queue()
    for i, j in enumerate(jobs):
        q.put((i, j))

    def worker():
        while True:
            try:
                i, j = q.get_nowait()
            except queue.Empty:
                return
            try:
                results[i] = j()
            except Exception as e:  # a refused connection is a result too
                results[i] = (0, repr(e))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def setup(b):
    """lighttpd, two AUSF and two SM processes on one store."""
    if b.store == "postgresql":
        b.start_postgresql()
    b.make_tls()
    b.make_operator()
    b.make_ca()
    b.start_lighttpd()
    # every companion of the test connects from 127.0.0.1: the per-source
    # limit is for an address among many, not for the whole load
    b.sm_options["max-connections-per-source"] = "64"
    # the test is about the store: a loaded machine must not turn a slow
    # chain fetch into another failure than the store's
    b.sm_options["fetch-timeout"] = "15"
    b.write_ausf_conf()
    conf = open(b.path("ausf.conf")).read().replace("imsi-last=001010000000100", "imsi-last=001010000004999")
    netbench.write(b.path("ausf.conf"), conf)
    b.start_ausf()
    ausf1 = b.ausf_port
    b.ausf_port = b.start_daemon("ausf2", [b.prog("network/cellprov-ausf"), "-c", b.path("ausf.conf"),
                                           "--listen", "127.0.0.1:0", "--port-file", b.path("ausf2.port")],
                                 b.path("ausf2.port"))
    b.write_sm_conf()
    os.rename(b.path("sm.conf"), b.path("sm2.conf"))
    b.sm2_port = b.start_daemon("sm2", [b.prog("network/cellprov-sm"), "-c", b.path("sm2.conf"),
                                        "--listen", "127.0.0.1:0", "--port-file", b.path("sm2.port")],
                                b.path("sm2.port"))
    b.ausf_port = ausf1
    b.write_sm_conf()
    b.start_sm()
    return b


def consistent(b, what):
    """The SM's records of one provisioning are written together: a bound
    binding has its provisioning record and its pending profile, and there
    is no record or pending profile without a binding bound to it."""
    bound = set(d for (d,) in b.db_rows("sm", "SELECT device_id FROM bindings WHERE state = 'bound'"))
    prov = set(d for (d,) in b.db_rows("sm", "SELECT device_id FROM provisionings"))
    pend = set(d for (d,) in b.db_rows("sm", "SELECT device_id FROM pending"))
    check(bound == prov == pend, "%s: %d bound bindings, each with its provisioning record and pending "
          "profile, and none without (%d, %d)" % (what, len(bound), len(prov), len(pend)))
    rows = b.db_rows("sm", "SELECT p.device_id, p.supi, b.owner_supi FROM provisionings p "
                     "JOIN bindings b ON b.device_id = p.device_id")
    ausf = dict((d, (s, c)) for d, s, c in b.db_rows("ausf", "SELECT device_id, supi, companion FROM subscribers"))
    check(all(ausf.get(d) == (s, o) for d, s, o in rows),
          "%s: each provisioning's SUPI is the AUSF's subscriber of that device and owner" % what)
    supis = [s for (s,) in b.db_rows("ausf", "SELECT supi FROM subscribers")]
    devices = [d for (d,) in b.db_rows("ausf", "SELECT device_id FROM subscribers")]
    check(len(set(supis)) == len(supis) and len(set(devices)) == len(devices),
          "%s: %d subscribers, no SUPI twice, no device twice" % (what, len(supis)))
    return bound


def test_concurrent_claims(b):
    names = ["c%03d" % i for i in range(100)]
    t0 = time.monotonic()
    for n in names:
        b.make_device(n)
    recs = {n: records(b, n, 1, 2) for n in names}
    print("100 devices made in %.1f s" % (time.monotonic() - t0))
    jobs, who = [], []
    for i, n in enumerate(names):
        # each device claimed by two companions at once, through either SM
        ports = (b.sm_port, b.sm2_port) if i % 2 else (b.sm2_port, b.sm_port)
        jobs.append(lambda n=n, p=ports[0]: claim(b, p, n, recs[n][0], b.token))
        jobs.append(lambda n=n, p=ports[1]: claim(b, p, n, recs[n][1], b.neighbour_token))
        who += [(n, netbench.COMPANION_SUPI, ports[0]), (n, netbench.NEIGHBOUR_SUPI, ports[1])]
    # interleaved, so that both claims of a device run at the same time
    t0 = time.monotonic()
    results = run_all(jobs, 24)
    dt = time.monotonic() - t0
    print("200 claims in %.1f s" % dt)
    winners = {}
    bad = []
    answered = {b.sm_port: 0, b.sm2_port: 0}
    for (n, supi, port), (st, res) in zip(who, results):
        if st in (200, 409):
            answered[port] += 1
        if st == 200:
            if n in winners:
                bad.append("%s: two 200s" % n)
            winners[n] = (supi, res["supi"])
        elif not (st == 409 and isinstance(res, dict) and res.get("error", {}).get("code") == "already-claimed"):
            bad.append("%s: %s %r" % (n, st, res))
    check(not bad, "every claim is 200 or 409 already-claimed, no device claimed twice (%s)" % bad[:3])
    check(sorted(winners) == names, "each of the 100 devices has one winner (%d)" % len(winners))
    rows = dict((d, (o, v, s)) for d, o, v, s in b.db_rows(
        "sm", "SELECT device_id, owner_supi, binding_version, state FROM bindings"))
    check(all(rows.get(b.devices[n]["device-id"]) == (winners[n][0], 1, "bound") for n in names),
          "each device bound once, at version 1, to the companion that got 200")
    given = [s for _, s in winners.values()]
    check(len(set(given)) == 100, "100 distinct SUPIs given")
    consistent(b, "after 200 concurrent claims")
    # Which process wins a device's race is timing (one often wins them
    # all): what must hold is that both decided claims, and that the
    # winners add up, one provisioning and one key set per device.
    check(all(answered.values()) and sum(answered.values()) == 200,
          "both SM processes decided claims (%r)" % list(answered.values()))
    served = [open(b.path(n + ".log")).read().count("] provisioned:") for n in ("sm", "sm2")]
    check(sum(served) == 100, "100 provisionings between the two SM processes (%r)" % served)
    added = [open(b.path(n + ".log")).read().count("key generation") for n in ("ausf", "ausf2")]
    check(sum(added) == 100, "100 key sets between the two AUSF processes (%r)" % added)


def test_restart_under_load(b):
    names = ["r%03d" % i for i in range(40)]
    for n in names:
        b.make_device(n)
    recs = {n: records(b, n, 1, 2) for n in names}
    done = []
    jobs = []
    for i, n in enumerate(names):
        def job(n=n, p=(b.sm_port, b.sm2_port)[i % 2]):
            r = claim(b, p, n, recs[n][0], b.token)
            done.append(1)
            time.sleep(0.05)        # a steady load, not a burst
            return r
        jobs.append(job)
    out = []
    loader = threading.Thread(target=lambda: out.append(run_all(jobs, 4)))
    loader.start()
    deadline = time.monotonic() + 60
    while len(done) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    b.pg.stop("fast")               # every connection of the SMs and AUSFs goes
    time.sleep(1.0)
    b.pg.restart()
    loader.join(300)
    results = out[0]
    ok = [n for n, (st, _) in zip(names, results) if st == 200]
    failed = [(n, st, res) for n, (st, res) in zip(names, results) if st != 200]
    codes = set((st, res.get("error", {}).get("code") if isinstance(res, dict) else res) for _, st, res in failed)
    check(failed and codes == {(500, "storage")},
          "with PostgreSQL down, %d of %d claims fail, all with 500 storage (%r)" % (len(failed), len(names), codes))
    check(ok, "%d claims before or after the outage succeed" % len(ok))
    # the database's error text (its socket path, host, port) is the log's
    # only: every failed claim carries the one generic sentence
    messages = set(res["error"].get("message") for _, _, res in failed)
    check(len(messages) == 1 and not any(w in m for m in messages for w in (b.pg.dir, "socket", "5432", "PGRES")),
          "one generic storage message, no database detail (%r)" % messages)
    logs = "".join(open(b.path(n + ".log")).read() for n in ("sm", "sm2", "ausf", "ausf2"))
    check("storage: " in logs, "the database's error text is in the log")
    bound = consistent(b, "after the outage")
    check(all(b.devices[n]["device-id"] in bound for n in ok), "every claim answered 200 is bound")
    # the same processes take the connection up again
    again = run_all([lambda n=n, p=(b.sm_port, b.sm2_port)[i % 2]: claim(b, p, n, recs[n][1], b.token)
                     for i, (n, _, _) in enumerate(failed)], 4)
    check(all(st == 200 for st, _ in again), "the failed claims, made again, succeed on both SMs (%r)"
          % [(st, res) for st, res in again if st != 200][:2])
    bound = consistent(b, "after the retries")
    check(all(b.devices[n]["device-id"] in bound for n in names), "all 40 devices bound")
    for name in ("sm", "sm2", "ausf", "ausf2"):
        check(b.procs[name].poll() is None, "%s still runs" % name)


def test_sqlite_migration(b):
    """The SQLite stores of before: the AUSF's at version 2 (clear keys, no
    schema_version), the SM's at 3."""
    for name, dump in (("old-ausf.db", "ausf-v2.sql"), ("old-sm.db", "sm-v3.sql")):
        con = sqlite3.connect(b.path(name))
        con.executescript(open(os.path.join(HERE, dump)).read())
        con.close()
        os.chmod(b.path(name), 0o600)
    con = sqlite3.connect(b.path("old-ausf.db"))
    before = con.execute("SELECT s.supi, s.device_id, s.companion, s.generation, k.generation, k.k_usim, k.opc, "
                         "k.sqn FROM subscribers s JOIN keysets k ON k.supi = s.supi ORDER BY 1, 5").fetchall()
    con.close()
    check(len(before) >= 3, "the version-2 store holds %d key sets" % len(before))
    conf = open(b.path("ausf.conf")).read().splitlines()
    conf = [l for l in conf if not l.startswith(("store=", "database="))] + ["database=" + b.path("old-ausf.db")]
    netbench.write(b.path("ausf-old.conf"), "\n".join(conf) + "\n")
    r = b.run([b.prog("network/cellprov-ausf"), "-c", b.path("ausf-old.conf"), "--export-file",
               b.path("old-export.txt")])
    check("schema version 3" in r.stdout + r.stderr, "the AUSF migrates the store to version 3")
    exported = [l.split() for l in open(b.path("old-export.txt")) if not l.startswith("#")]
    check(sorted((s, k, o, q) for s, _, _, _, _, k, o, q in before) == sorted(map(tuple, exported)),
          "every subscriber and its keys are in the export, as before")
    con = sqlite3.connect(b.path("old-ausf.db"))
    after = con.execute("SELECT s.supi, s.device_id, s.companion, s.generation, k.generation, k.k_usim, k.opc "
                        "FROM subscribers s JOIN keysets k ON k.supi = s.supi ORDER BY 1, 5").fetchall()
    version = con.execute("SELECT version FROM schema_version").fetchall()
    user_version = con.execute("PRAGMA user_version").fetchall()
    con.close()
    check([r[:5] for r in after] == [r[:5] for r in before], "the subscribers and generations are unchanged")
    check(all(k.startswith("kek1:") and o.startswith("kek1:") for *_, k, o in after),
          "their K_usim and OPc are now sealed")
    check(version == [(3,)] and user_version == [(3,)], "schema_version 3, and user_version with it")
    raw = open(b.path("old-ausf.db"), "rb").read().decode("latin-1")
    check(not any(k in raw or o in raw for *_, k, o, _ in before), "no clear key left in the file")
    r = b.run([b.prog("network/cellprov-ausf"), "-c", b.path("ausf-old.conf"), "--export"])
    check("schema version" not in r.stdout + r.stderr, "a second start migrates nothing")

    # the migrated stores serve: a new device gets a SUPI none of the old
    # subscribers has, and the old bindings are the companion's
    old_ausf = b.start_daemon("ausf-old", [b.prog("network/cellprov-ausf"), "-c", b.path("ausf-old.conf"),
                                           "--listen", "127.0.0.1:0", "--port-file", b.path("ausf-old.port")],
                              b.path("ausf-old.port"))
    sm_conf = open(b.path("sm.conf")).read().splitlines()
    sm_conf = [l for l in sm_conf if not l.startswith(("store=", "database=", "ausf-url="))]
    sm_conf += ["database=" + b.path("old-sm.db"), "ausf-url=http://127.0.0.1:%d" % old_ausf]
    netbench.write(b.path("sm-old.conf"), "\n".join(sm_conf) + "\n")
    port = b.start_daemon("sm-old", [b.prog("network/cellprov-sm"), "-c", b.path("sm-old.conf"),
                                     "--listen", "127.0.0.1:0", "--port-file", b.path("sm-old.port")],
                          b.path("sm-old.port"))
    st, res = request(b, port, "/v1/devices", method="GET")
    con = sqlite3.connect(b.path("old-sm.db"))
    old_bound = sorted(d for (d,) in con.execute("SELECT device_id FROM bindings WHERE state = 'bound'"))
    con.close()
    check(st == 200 and sorted(d["device-id"] for d in res["devices"]) == old_bound and old_bound,
          "the migrated SM lists the %d devices bound before" % len(old_bound))
    b.make_device("after-migration")
    st, res = claim(b, port, "after-migration", records(b, "after-migration", 1, 1)[0], b.token)
    check(st == 200 and res["supi"] not in [s for s, *_ in before],
          "a new device gets a SUPI none of the migrated subscribers has (%s)" % res.get("supi"))


def main(builddir, store):
    b = netbench.Bench(builddir, store=store)
    failed = False
    tests = [test_concurrent_claims, test_sqlite_migration]
    if store == "postgresql":
        tests.insert(1, test_restart_under_load)
    try:
        setup(b)
        for t in tests:
            print("==", t.__name__)
            t(b)
        for name in ("sm", "sm2", "sm-old", "ausf", "ausf2", "ausf-old"):
            b.stop(name)
        print("ok: every SM and AUSF stopped cleanly")
    except Fail as e:
        print("FAIL:", e)
        failed = True
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
    if failed:
        b.dump_logs()
        for name in ("sm2", "ausf2"):
            p = b.path(name + ".log")
            if os.path.exists(p):
                sys.stdout.write("---- %s.log ----\n%s" % (name, open(p).read()[-4000:]))
    b.teardown()
    return netbench.prereq.status(1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "postgresql"))
