# SPDX-License-Identifier: LGPL-2.1-or-later
"""Operations: /metrics (Prometheus text format 0.0.4) and /healthz on the
listener metrics-listen names, and nowhere else; counters that move with
the requests served; one request id in the SM's and the AUSF's logs for
one provisioning; an AUSF that logs each request without a key."""

import os
import re
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netbench import COMPANION_K_AUSF, OP, Fail, check, main  # noqa: E402


def metrics_port(b, name):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = re.search(r"/metrics and /healthz on port (\d+)", open(b.path(name + ".log")).read())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise Fail("%s logged no metrics port" % name)


def scrape(port):
    r = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5)
    check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), "... text format 0.0.4")
    return r.read().decode()


def value(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-z_]+)(?:\{(.*)\})? ([0-9.e+-]+)$", line)
        if not m:
            raise Fail("not an exposition line: %r" % line)
        if m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return 0.0


def test_ops(b):
    b.stop("sm")
    b.stop("ausf")
    b.stop("lighttpd")
    b.cert_max_age = 60
    b.start_lighttpd()
    with open(b.path("ausf.conf"), "a") as f:
        f.write("metrics-listen=127.0.0.1:0\n")
    b.start_ausf()
    b.sm_options["metrics-listen"] = "127.0.0.1:0"
    b.write_sm_conf()
    b.start_sm()
    sm_m, ausf_m = metrics_port(b, "sm"), metrics_port(b, "ausf")

    r = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % sm_m, timeout=5)
    check(r.status == 200 and r.read() == b"ok\n", "SM /healthz answers ok")
    r = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % ausf_m, timeout=5)
    check(r.status == 200, "AUSF /healthz answers ok")
    st, _ = b.sm_request("GET", "/metrics")
    check(st == 404, "no /metrics on the companions' port")
    try:
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/metrics" % sm_m, method="POST",
                                                      data=b""), timeout=5)
        check(False, "POST /metrics refused")
    except urllib.error.HTTPError as e:
        check(e.code == 405, "POST /metrics -> 405")

    before, abefore = scrape(sm_m), scrape(ausf_m)
    b.make_device("m")
    rc, res, _ = b.companion(b.tag("m"))
    check(rc == 0 and res["result"] == "ok", "a device provisions")
    st, _ = b.sm_request("POST", "/v1/provision", body="{not json")
    check(st == 400, "a malformed request")
    after, aafter = scrape(sm_m), scrape(ausf_m)

    def moved(text0, text1, name, by, **labels):
        d = value(text1, name, **labels) - value(text0, name, **labels)
        check(d == by, "%s%s moved by %g (%g)" % (name, labels, by, d))

    moved(before, after, "cellprov_http_requests_total", 1, endpoint="/v1/provision", outcome="ok")
    moved(before, after, "cellprov_http_requests_total", 1, endpoint="/v1/provision", outcome="bad-json")
    moved(before, after, "cellprov_http_request_duration_seconds_count", 2, endpoint="/v1/provision")
    moved(before, after, "cellprov_http_request_duration_seconds_bucket", 2, endpoint="/v1/provision", le="+Inf")
    moved(before, after, "cellprov_chain_cache_misses_total", 1)
    moved(before, after, "cellprov_database_errors_total", 0)
    moved(abefore, aafter, "cellprov_http_requests_total", 1, endpoint="/v1/devices", outcome="ok")
    check(value(after, "cellprov_http_request_duration_seconds_sum", endpoint="/v1/provision") > 0,
          "the latency sum grows")

    # the same device again within the chain's max-age: served from the cache
    rc, res, _ = b.companion(b.tag("m"))
    again = scrape(sm_m)
    check(rc == 0, "the device provisions again")
    moved(after, again, "cellprov_chain_cache_hits_total", 1)

    sm_log, ausf_log = open(b.path("sm.log")).read(), open(b.path("ausf.log")).read()
    ids = re.findall(r"request=([0-9a-f]{16}) provisioning asked", sm_log)
    check(ids, "the SM logs a request id for each provisioning")
    check(re.search(r"request=%s .*POST /v1/devices" % ids[0], ausf_log),
          "the AUSF logs the SM's request id (X-Request-Id)")
    check(re.search(r"request=%s peer=127\.0\.0\.1 method=POST endpoint=/v1/devices status=200 outcome=ok" % ids[0],
                    ausf_log), "the AUSF logs each request it serves, with its outcome")
    for secret in (COMPANION_K_AUSF, OP, b.ausf_token, b.token):
        check(secret not in ausf_log and secret not in sm_log, "no key or token in the logs")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [test_ops]))
