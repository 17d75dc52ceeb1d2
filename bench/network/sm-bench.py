# SPDX-License-Identifier: LGPL-2.1-or-later
"""SM provisionings per second and p50/p99 latency with concurrent
companions on loopback (real lighttpd, cellprov-ausf, cellprov-sm; HTTPS
for companions and chain fetches), for 1 and 2 SM worker processes on one
port (`workers`), on SQLite and on PostgreSQL, printed beside the crypto
bound measured in the same run by cp-bench-sm-crypto and `openssl speed`.

    python3 bench/network/sm-bench.py BUILDDIR [--clients 1,16,64] [--workers 1,2]
        [--requests 320] [--store sqlite,postgresql] [--ausf-store STORE]
        [--campaign N]

Each client is one device provisioned over and over (each request carries
a fresh device record, so every request is a full provisioning: chain
verification, attestation, AUSF, profile, the SM's writes); the
certificate server answers with Cache-Control max-age, so the SM fetches
each chain once and then serves it from its chain cache. The clients run
in cp-bench-load (C, a thread each, one TLS connection per request,
session resumption off) and share the machine's cores with the SM, the
AUSF and lighttpd.

The crypto bound: what one provisioning's crypto costs (chain and
attestation verification, the AUSF's KDFs and ECIES, the SM's KDFs and
profile signature, the server's side of one full TLS handshake), and the
provisionings per second the machine's cores could do if they did nothing
else.

--store takes a comma-separated list, each run in turn with the same
crypto bound: `sqlite` (the SQLite files, the default), `postgresql` (a
PostgreSQL server started for the run by pgserver.py, in a temporary
directory on a Unix socket, with fsync and synchronous_commit on: an
answer is on disk, as with SQLite), or a store value of the programs'
own (`postgresql:CONNINFO`, an existing server: the SM's and the AUSF's
tables in that one database, or --ausf-store for the AUSF's).

--campaign N provisions N distinct devices (keys, certificates, chain
files and device records made in advance by `cp-test-device campaign`,
in one process) once each with 16 clients, then checks in the stores
that each is bound exactly once and that every SUPI is distinct."""

import argparse
import json
import os
import re
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "integration", "network"))
from netbench import Bench, Fail  # noqa: E402


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def records_for(b, name, first, count):
    out = b.path("records-%s-%d" % (name, first))
    b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf(name),
           "--first", str(first), "--count", str(count), "--out", out])
    return open(out).read().split()


def load(b, n_clients, jobs):
    """jobs: (client, certificate URL, record) in each client's order, run
    by cp-bench-load. Returns [(client, status, seconds, body)], the wall
    time and the load generator's CPU seconds."""
    text = "".join("%d %s %s\n" % j for j in jobs)
    r = subprocess.run([b.prog("bench/network/cp-bench-load"), "127.0.0.1", str(b.sm_port), b.tls_ca,
                        b.token, str(n_clients)], input=text, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise Fail("cp-bench-load: %s" % r.stderr[-800:])
    lines = r.stdout.splitlines()
    m = re.match(r"wall-us (\d+) cpu-us (\d+)$", lines[-1])
    if not m:
        raise Fail("cp-bench-load printed no summary: %r" % lines[-1:])
    out = []
    for line in lines[:-1]:
        k, status, us, body = line.split(" ", 3)
        out.append((int(k), int(status), int(us) / 1e6, body))
    return out, int(m.group(1)) / 1e6, int(m.group(2)) / 1e6


def run_load(b, n_clients, per_client, first_counter):
    records = {}
    for c in range(n_clients):
        name = "bench%d" % c
        if name not in b.devices:
            b.make_device(name)
        records[name] = records_for(b, name, first_counter, per_client)
    jobs = [(c, b.devices["bench%d" % c]["certificate-url"], rec)
            for c in range(n_clients) for rec in records["bench%d" % c]]
    out, wall, cpu = load(b, n_clients, jobs)
    lat = [dt for _, st, dt, _ in out if st == 200]
    errors = [("%d %s" % (st, body[:200])).encode() for _, st, _, body in out if st != 200]
    return lat, errors, wall, cpu


def start_workers(b, n):
    """The SM with workers = n: a supervisor and n processes on one port."""
    b.stop("sm")
    b.sm_options["workers"] = str(n)
    b.write_sm_conf()
    b.start_sm()


def tree(pid):
    """pid and its descendants."""
    out = [pid]
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                for c in f.read().split():
                    out += tree(int(c))
    except OSError:
        pass
    return out


def cpu_seconds(b):
    """CPU seconds so far of each server, its workers included; with
    PostgreSQL, of its server processes ("postgres")."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    pids = [(name, pid) for name, p in b.procs.items() for pid in tree(p.pid)]
    if b.pg is not None:
        pm = b.pg.postmaster_pid()
        if pm:
            pids += [("postgres", pid) for pid in tree(pm)]
    for name, pid in pids:
        try:
            f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0) + (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    return out


def machine_busy():
    """(busy, total) jiffies of all cores so far (/proc/stat)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


def openssl_speed():
    """`openssl speed` for the primitives of a provisioning, this run."""
    r = subprocess.run(["openssl", "speed", "-seconds", "1", "ecdsap256", "ecdhp256"],
                       capture_output=True, text=True, timeout=120)
    lines = [l.strip() for l in r.stdout.splitlines() if re.match(r"\s*\d+ bits? ec(dsa|dh)", l)]
    return lines


def crypto_bound(b, iterations):
    d = b.make_device("crypto")
    rec = b.path("crypto.rec")
    b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf("crypto"),
           "--raw", "--out", rec])
    r = b.run([b.prog("bench/network/cp-bench-sm-crypto"), b.path("ca", "root-cert.pem"), d["chain"], rec,
               str(iterations), b.tls_cert, b.tls_key])
    return json.loads(r.stdout)


def campaign(b, n, clients):
    """n distinct devices, made in advance, provisioned once each."""
    print("campaign: making %d devices (keys, certificates, chain files, records)..." % n, flush=True)
    t0 = time.perf_counter()
    made = b.path("campaign")
    subprocess.run([b.prog("tests/integration/network/cp-test-device"), "campaign", "--ca", b.path("ca"),
                    "--chains", b.path("www", "devices"), "--url-base", "https://127.0.0.1:%d/devices" % b.ca_port,
                    "--count", str(n), "--serial-prefix", "CAMP-", "--out", made], check=True, timeout=3600)
    devices = [line.split() for line in open(made).read().splitlines()]
    print("campaign: made in %.1f s; provisioning with %d clients" % (time.perf_counter() - t0, clients), flush=True)
    jobs = [(i % clients, url, rec) for i, (url, rec) in enumerate(devices)]
    out, wall, _ = load(b, clients, jobs)
    # cp-bench-load answers client by client, each in its order
    order = [url for k in range(clients) for i, (url, _) in enumerate(devices) if i % clients == k]
    answers = {}
    for (k, status, dt, body), url in zip(out, order):
        answers.setdefault(url, []).append((dt, status, body))
    ok = {url: json.loads(v[0][2]) for url, v in answers.items() if len(v) == 1 and v[0][1] == 200}
    lat = [v[0][0] for v in answers.values() if v[0][1] == 200]
    errors = [v[0][2][:200] for v in answers.values() if v[0][1] != 200]
    print("campaign: %d devices, %d provisioned, %.1f prov/s, p50 %.1f ms, p99 %.1f ms%s"
          % (n, len(ok), len(lat) / wall, pct(lat, 50) * 1e3 if lat else 0, pct(lat, 99) * 1e3 if lat else 0,
             "; first error: " + errors[0] if errors else ""))
    # what the stores hold, not what the answers said
    ids = set(url.rsplit("/", 1)[1] for url, _ in devices)
    bindings = b.db_rows("sm", "SELECT device_id, binding_version, state FROM bindings")
    bound = [r for r in bindings if r[0] in ids]
    bound_once = (len(bound) == n and len(set(r[0] for r in bound)) == n and
                  all(r[1] == 1 and r[2] == "bound" for r in bound) and
                  all(o["device-id"] == url.rsplit("/", 1)[1] for url, o in ok.items()))
    subs = b.db_rows("ausf", "SELECT supi, device_id FROM subscribers")
    supis = [r[0] for r in subs if r[1] in ids]
    distinct = len(supis) == n and len(set(supis)) == n and \
        sorted(o["supi"] for o in ok.values()) == sorted(supis)
    print("campaign: every device bound exactly once: %s (%d bindings at version 1); every SUPI distinct: %s "
          "(%d subscribers, %d distinct SUPIs, the ones answered)"
          % ("yes" if bound_once else "NO", len(bound), "yes" if distinct else "NO", len(supis), len(set(supis))))
    return bound_once and distinct


def bench_for(args, store):
    b = Bench(os.path.abspath(args.builddir), store="postgresql" if store == "postgresql" else "sqlite",
              sm_options={"max-connections": "512", "max-connections-per-source": "512",
                          "max-unauthenticated": "256", "connection-timeout": "60"})
    b.pg_durable = True
    b.cert_max_age = 300
    if ":" in store:
        b.sm_options["store"] = store
        b.ausf_options["store"] = args.ausf_store or store
    elif args.ausf_store:
        b.ausf_options["store"] = args.ausf_store
    if args.campaign:
        b.imsi_last = "00101%010d" % (args.campaign + 1000)
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builddir")
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--requests", type=int, default=320, help="provisionings per point")
    ap.add_argument("--crypto-iterations", type=int, default=300)
    ap.add_argument("--store", default="sqlite",
                    help="comma-separated: sqlite, postgresql (a server started for the run) or a store value")
    ap.add_argument("--ausf-store", help="store = STORE in ausf.conf")
    ap.add_argument("--campaign", type=int, default=0, metavar="N", help="provision N distinct devices once each")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    crypto = bound = None
    results = []
    ok = True
    for store in args.store.split(","):
        b = bench_for(args, store)
        kind = "postgresql" if store.startswith("postgresql") else "sqlite"
        try:
            b.setup()
            if crypto is None:
                crypto = crypto_bound(b, args.crypto_iterations)
                speed = openssl_speed()
                bound = cores * 1e6 / crypto["total-us"]
                print("crypto per provisioning (us): chain verify %.0f (parsing its PEM %.0f more, once per "
                      "cached chain: not counted), ECDSA verify %.0f, AUSF KDFs %.1f, "
                      "ECIES seal %.0f, SM KDFs %.1f, profile signature + MAC %.0f, TLS handshake server side %.0f "
                      "(client side %.0f); total %.0f"
                      % (crypto["chain-verify-us"], crypto["chain-parse-us"], crypto["ecdsa-verify-us"],
                         crypto["ausf-kdf-us"], crypto["ecies-seal-us"], crypto["sm-kdf-us"], crypto["profile-sign-us"],
                         crypto["tls-server-us"], crypto["tls-client-us"], crypto["total-us"]))
                print("openssl speed (this run): " + "; ".join(" ".join(l.split()) for l in speed))
                print("crypto bound on %d cores: %.0f provisionings/s (%.0f/s with the companions' side of the "
                      "handshake on the same cores)"
                      % (cores, bound, cores * 1e6 / (crypto["total-us"] + crypto["tls-client-us"])))
                if not args.campaign:
                    print("%10s %7s %7s %9s %8s %8s %6s %8s %11s %12s   %s"
                          % ("store", "workers", "clients", "prov/s", "p50 ms", "p99 ms", "errors", "of bound",
                             "cores busy", "CPU-limited", "CPU ms per provisioning"))
            if args.campaign:
                print("campaign on %s:" % kind, flush=True)
                start_workers(b, int(args.workers.split(",")[-1]))
                ok = campaign(b, args.campaign, 16) and ok
                continue
            counter = 1
            for w in [int(x) for x in args.workers.split(",")]:
                start_workers(b, w)
                for n in [int(x) for x in args.clients.split(",")]:
                    per = max(1, args.requests // n)
                    cpu0 = cpu_seconds(b)
                    busy0 = machine_busy()
                    lat, errors, wall, load_cpu = run_load(b, n, per, counter)
                    busy1 = machine_busy()
                    cpu1 = cpu_seconds(b)
                    cpu1["load"] = cpu1.get("load", 0) + load_cpu
                    counter += per
                    if not lat:
                        print("%10s %7d %7d: every request failed: %s" % (kind, w, n, errors[:1]))
                        ok = False
                        continue
                    rate = len(lat) / wall
                    r = {"store": kind, "workers": w, "clients": n, "per-s": rate, "p50-ms": pct(lat, 50) * 1e3,
                         "p99-ms": pct(lat, 99) * 1e3, "errors": len(errors), "of-bound": rate / bound}
                    if errors:
                        r["first-error"] = errors[0].decode(errors="replace")
                    r["cpu-ms"] = {k: (cpu1[k] - cpu0.get(k, 0)) * 1e3 / len(lat) for k in cpu1}
                    # the machine's cores busy during the point (all processes,
                    # other users' included), and the share of them ours took
                    r["cores-busy"] = cores * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
                    r["cores-ours"] = sum(r["cpu-ms"].values()) * rate / 1e3
                    # what the CPU our processes spent per provisioning would
                    # allow on otherwise idle cores (the load generator's
                    # included), and that rate's share of the bound
                    r["cpu-limited-per-s"] = cores * 1e3 / sum(r["cpu-ms"].values())
                    results.append(r)
                    print("%10s %7d %7d %9.1f %8.2f %8.2f %6d %7.1f%% %4.2f (%.2f) %6.0f %4.1f%%   %s"
                          % (kind, w, n, rate, r["p50-ms"], r["p99-ms"], len(errors), 100 * r["of-bound"],
                             r["cores-busy"], r["cores-ours"], r["cpu-limited-per-s"],
                             100 * r["cpu-limited-per-s"] / bound,
                             " ".join("%s %.2f" % kv for kv in sorted(r["cpu-ms"].items()))), flush=True)
        except Fail as e:
            print("FAIL:", e)
            b.dump_logs()
            ok = False
        finally:
            b.teardown()
    if results:
        print(json.dumps({"cores": cores, "crypto": crypto, "bound-per-s": bound, "openssl-speed": speed,
                          "load": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
