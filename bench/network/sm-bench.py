# SPDX-License-Identifier: LGPL-2.1-or-later
"""SM provisionings per second and p50/p99 latency with concurrent
companions on loopback (real lighttpd, cellprov-ausf, cellprov-sm; HTTPS
for companions and chain fetches), beside the cost of the crypto one
provisioning needs, measured in the same run by cp-bench-sm-crypto.

    python3 bench/network/sm-bench.py BUILDDIR [--clients 1,4,16] [--requests 200]

Each client is one device provisioned over and over (each request carries
a fresh device record, so every request is a full provisioning: chain
fetch and verification, attestation, AUSF, profile, two SQLite writes).
The clients run in this process (Python threads, one TLS connection per
request, as the SM serves one request per connection) and share the
machine's cores with the SM, the AUSF and lighttpd."""

import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "integration", "network"))
from netbench import Bench  # noqa: E402


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def run_load(b, n_clients, per_client, first_counter):
    lat = []
    errors = []
    lock = threading.Lock()
    records = {}
    for c in range(n_clients):
        name = "bench%d" % c
        if name not in b.devices:
            b.make_device(name)
        out = b.path("records-%s-%d" % (name, first_counter))
        b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf(name),
               "--first", str(first_counter), "--count", str(per_client), "--out", out])
        records[name] = open(out).read().split()

    ctx = b.ssl_context()

    def client(name):
        url = b.devices[name]["certificate-url"]
        for rec in records[name]:
            body = json.dumps({"certificate-url": url, "device-record": rec})
            t0 = time.perf_counter()
            conn = http.client.HTTPSConnection("127.0.0.1", b.sm_port, context=ctx, timeout=30)
            conn.request("POST", "/v1/provision", body=body,
                         headers={"Authorization": "Bearer " + b.token, "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            conn.close()
            dt = time.perf_counter() - t0
            with lock:
                if r.status == 200:
                    lat.append(dt)
                else:
                    errors.append(data[:200])

    threads = [threading.Thread(target=client, args=("bench%d" % c,)) for c in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return lat, errors, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builddir")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests", type=int, default=200, help="provisionings per concurrency level")
    ap.add_argument("--crypto-iterations", type=int, default=300)
    args = ap.parse_args()

    b = Bench(os.path.abspath(args.builddir),
              sm_options={"max-connections": "256", "connection-timeout": "60"})
    try:
        b.setup()
        d = b.make_device("crypto")
        rec = b.path("crypto.rec")
        b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf("crypto"),
               "--raw", "--out", rec])
        r = b.run([b.prog("bench/network/cp-bench-sm-crypto"), b.path("ca", "root-cert.pem"), d["chain"], rec,
                   str(args.crypto_iterations)])
        crypto = json.loads(r.stdout)

        print("crypto per provisioning (us): chain verify %.0f, ECDSA verify %.0f, AUSF KDFs %.1f, "
              "ECIES seal %.0f, SM KDFs %.1f, profile signature + MAC %.0f; total %.0f"
              % (crypto["chain-verify-us"], crypto["ecdsa-verify-us"], crypto["ausf-kdf-us"],
                 crypto["ecies-seal-us"], crypto["sm-kdf-us"], crypto["profile-sign-us"], crypto["total-us"]))
        print("%8s %10s %10s %10s %10s %8s %14s" % ("clients", "prov/s", "p50 ms", "p99 ms", "mean ms",
                                                  "errors", "crypto/p50"))
        counter = 1
        results = []
        for n in [int(x) for x in args.clients.split(",")]:
            per = max(1, args.requests // n)
            lat, errors, wall = run_load(b, n, per, counter)
            counter += per
            if not lat:
                print("%8d: every request failed: %s" % (n, errors[:1]))
                continue
            rate = len(lat) / wall
            p50 = pct(lat, 50) * 1e3
            p99 = pct(lat, 99) * 1e3
            mean = sum(lat) / len(lat) * 1e3
            ratio = crypto["total-us"] / 1e3 / p50
            results.append({"clients": n, "per-s": rate, "p50-ms": p50, "p99-ms": p99, "mean-ms": mean,
                            "errors": len(errors), "crypto-over-p50": ratio})
            print("%8d %10.1f %10.2f %10.2f %10.2f %8d %13.1f%%" % (n, rate, p50, p99, mean, len(errors),
                                                                  100 * ratio))
        import re
        inside = [float(m) for m in re.findall(r"provisioned: .*, ([0-9.]+) ms", open(b.path("sm.log")).read())]
        if inside:
            print("time inside the SM per provisioning (request parsed to answer, incl. chain fetch and AUSF): "
                  "p50 %.2f ms, p99 %.2f ms" % (pct(inside, 50), pct(inside, 99)))
        if results:
            best = max(results, key=lambda r: r["per-s"])
            print("at %.1f prov/s the protocol crypto alone needs %.0f%% of one core"
                  % (best["per-s"], best["per-s"] * crypto["total-us"] / 1e6 * 100))
        print(json.dumps({"crypto": crypto, "load": results}))
    finally:
        b.teardown()


if __name__ == "__main__":
    main()
