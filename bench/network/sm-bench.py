# SPDX-License-Identifier: LGPL-2.1-or-later
"""SM provisionings per second and p50/p99 latency with concurrent
companions on loopback (real lighttpd, cellprov-ausf, cellprov-sm; HTTPS
for companions and chain fetches), for 1 and 2 SM worker processes on one
port (reuse-port), printed beside the crypto bound measured in the same
run by cp-bench-sm-crypto and `openssl speed`.

    python3 bench/network/sm-bench.py BUILDDIR [--clients 1,16,64] [--workers 1,2]
        [--requests 320] [--store STORE] [--ausf-store STORE] [--campaign N]

Each client is one device provisioned over and over (each request carries
a fresh device record, so every request is a full provisioning: chain
verification, attestation, AUSF, profile, the SM's writes); the
certificate server answers with Cache-Control max-age, so the SM fetches
each chain once and then serves it from its chain cache. The clients run
in this process (Python threads, one TLS connection per request, session
resumption off) and share the machine's cores with the SM, the AUSF and
lighttpd.

The crypto bound: what one provisioning's crypto costs (chain and
attestation verification, the AUSF's KDFs and ECIES, the SM's KDFs and
profile signature, the server's side of one full TLS handshake), and the
provisionings per second the machine's cores could do if they did nothing
else.

--store and --ausf-store put `store = STORE` into sm.conf and ausf.conf
(e.g. postgresql:CONNINFO, where the programs support it); without them
each keeps its SQLite database.

--campaign N provisions N distinct devices (keys, certificates and device
records made in advance) once each with 16 clients, then checks that each
is bound exactly once and that every SUPI is distinct."""

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "integration", "network"))
from netbench import Bench, Fail, wait_file  # noqa: E402


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
    """n SM processes on one port (reuse-port)."""
    for name in [k for k in b.procs if k.startswith("sm")]:
        b.stop(name)
    b.sm_options["reuse-port"] = "true"
    b.write_sm_conf()
    b.start_sm()
    for i in range(1, n):
        name = "sm%d" % i
        log = open(b.path(name + ".log"), "a")
        b.procs[name] = subprocess.Popen([b.prog("network/cellprov-sm"), "-c", b.path("sm.conf"),
                                          "--listen", "127.0.0.1:%d" % b.sm_port,
                                          "--port-file", b.path(name + ".port")],
                                         stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_file(b.path(name + ".port"), proc=b.procs[name])
        except Fail:
            raise Fail("SM worker %d: %s" % (i, open(b.path(name + ".log")).read()[-800:]))


def cpu_seconds(b):
    """CPU seconds so far of each server process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, p in b.procs.items():
        try:
            f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
            out[re.sub(r"\d+$", "", name)] = out.get(re.sub(r"\d+$", "", name), 0) + (int(f[11]) + int(f[12])) / tick
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
    print("campaign: making %d devices (keys, certificates, records)..." % n, flush=True)
    t0 = time.perf_counter()
    names = ["camp%d" % i for i in range(n)]

    def make(name):
        b.make_device(name)
        return name, records_for(b, name, 1, 1)[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        recs = dict(ex.map(make, names))
    print("campaign: made in %.0f s; provisioning with %d clients" % (time.perf_counter() - t0, clients), flush=True)
    jobs = [(i % clients, b.devices[name]["certificate-url"], recs[name]) for i, name in enumerate(names)]
    out, wall, _ = load(b, clients, jobs)
    results = {}
    # cp-bench-load answers client by client, each in its order
    order = [name for k in range(clients) for i, name in enumerate(names) if i % clients == k]
    for (k, status, dt, body), name in zip(out, order):
        results.setdefault(name, []).append((dt, status, body))
    ok = {k: json.loads(v[0][2]) for k, v in results.items() if len(v) == 1 and v[0][1] == 200}
    lat = [v[0][0] for v in results.values() if v[0][1] == 200]
    supis = [o.get("supi") for o in ok.values()]
    export = b.path("campaign-subscribers")
    b.run([b.prog("network/cellprov-ausf"), "-c", b.path("ausf.conf"), "--export-file", export])
    exported = open(export).read()
    bound_once = len(ok) == n and all(re.search(r"\b%s\b" % s, exported) for s in supis[:50])
    print("campaign: %d devices, %d provisioned, %.1f prov/s, p50 %.1f ms, p99 %.1f ms"
          % (n, len(ok), len(lat) / wall, pct(lat, 50) * 1e3 if lat else 0, pct(lat, 99) * 1e3 if lat else 0))
    print("campaign: every device bound exactly once: %s; every SUPI distinct: %s (%d distinct)"
          % ("yes" if bound_once else "NO", "yes" if len(set(supis)) == len(supis) == n else "NO", len(set(supis))))
    return bound_once and len(set(supis)) == n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builddir")
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--requests", type=int, default=320, help="provisionings per point")
    ap.add_argument("--crypto-iterations", type=int, default=300)
    ap.add_argument("--store", help="store = STORE in sm.conf (default: its SQLite database)")
    ap.add_argument("--ausf-store", help="store = STORE in ausf.conf")
    ap.add_argument("--campaign", type=int, default=0, metavar="N", help="provision N distinct devices once each")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    b = Bench(os.path.abspath(args.builddir),
              sm_options={"max-connections": "512", "max-connections-per-source": "512",
                          "max-unauthenticated": "256", "connection-timeout": "60"})
    b.cert_max_age = 300
    if args.store:
        b.sm_options["store"] = args.store
    if args.ausf_store:
        b.ausf_options["store"] = args.ausf_store
    if args.campaign:
        b.imsi_last = "00101%010d" % (args.campaign + 1000)
    try:
        b.setup()
        crypto = crypto_bound(b, args.crypto_iterations)
        speed = openssl_speed()
        bound = cores * 1e6 / crypto["total-us"]
        print("crypto per provisioning (us): chain verify %.0f, ECDSA verify %.0f, AUSF KDFs %.1f, "
              "ECIES seal %.0f, SM KDFs %.1f, profile signature + MAC %.0f, TLS handshake server side %.0f "
              "(client side %.0f); total %.0f"
              % (crypto["chain-verify-us"], crypto["ecdsa-verify-us"], crypto["ausf-kdf-us"],
                 crypto["ecies-seal-us"], crypto["sm-kdf-us"], crypto["profile-sign-us"],
                 crypto["tls-server-us"], crypto["tls-client-us"], crypto["total-us"]))
        print("openssl speed (this run): " + "; ".join(" ".join(l.split()) for l in speed))
        print("crypto bound on %d cores: %.0f provisionings/s (%.0f/s with the companions' side of the "
              "handshake on the same cores)" % (cores, bound, cores * 1e6 / (crypto["total-us"] + crypto["tls-client-us"])))
        if args.campaign:
            ok = campaign(b, args.campaign, 16)
            return 0 if ok else 1
        print("%8s %8s %10s %10s %10s %8s %10s %11s %13s   %s" % ("workers", "clients", "prov/s", "p50 ms", "p99 ms",
                                                                 "errors", "of bound", "cores busy",
                                                                 "CPU-limited", "CPU ms per provisioning"))
        counter = 1
        results = []
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
                    print("%8d %8d: every request failed: %s" % (w, n, errors[:1]))
                    continue
                rate = len(lat) / wall
                r = {"workers": w, "clients": n, "per-s": rate, "p50-ms": pct(lat, 50) * 1e3,
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
                print("%8d %8d %10.1f %10.2f %10.2f %8d %9.1f%% %4.2f (%.2f) %7.0f %5.1f%%   %s"
                      % (w, n, rate, r["p50-ms"], r["p99-ms"], len(errors), 100 * r["of-bound"],
                         r["cores-busy"], r["cores-ours"], r["cpu-limited-per-s"],
                         100 * r["cpu-limited-per-s"] / bound,
                         " ".join("%s %.2f" % kv for kv in sorted(r["cpu-ms"].items()))), flush=True)
        print(json.dumps({"cores": cores, "crypto": crypto, "bound-per-s": bound, "openssl-speed": speed,
                          "load": results}))
    except Fail as e:
        print("FAIL:", e)
        return 1
    finally:
        b.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
