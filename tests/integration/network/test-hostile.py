# SPDX-License-Identifier: LGPL-2.1-or-later
"""A slowloris against the SM: 70 connections, each trickling a byte every
2 s and reopened as soon as the SM cuts it, held while a real companion
provisions a device again and again. First all from one address (the
per-source limit turns most away), then from 70 addresses (the bound on
unauthenticated connections drops the oldest of them for each newcomer).
Every provisioning must succeed in good time, and /metrics must show
which defence acted. Before it, keep-alive: kept connections serve again,
give way to newcomers at the per-source limit, and leave no descriptor
behind; and the SM's calls to the AUSF over a kept connection the AUSF
closes just as the SM sends: a claim's sent again, a re-provisioning's
never on a kept connection."""

import http.client
import json
import os
import re
import select
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netbench import Fail, check, main  # noqa: E402

SLOW = 70


class Slowloris:
    def __init__(self, port, sources):
        self.port = port
        self.sources = sources
        self.stop = threading.Event()
        self.opened = 0
        self.held = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def connect(self, i):
        s = socket.socket()
        s.bind((self.sources[i % len(self.sources)], 0))
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", self.port))
        except OSError:
            s.close()
            return None
        self.opened += 1
        return s

    def run(self):
        conns = [None] * SLOW
        while not self.stop.is_set():
            for i in range(SLOW):
                if conns[i] is None:
                    conns[i] = self.connect(i)
                    continue
                try:
                    # the first bytes of a TLS ClientHello, one at a time
                    conns[i].send(b"\x16")
                except OSError:
                    conns[i].close()
                    conns[i] = self.connect(i)
            self.held = sum(1 for c in conns if c is not None)
            self.stop.wait(2)
        for c in conns:
            if c:
                c.close()


def metrics(b):
    # the SM's latest start
    port = int(re.findall(r"/metrics and /healthz on port (\d+)", open(b.path("sm.log")).read())[-1])
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^cellprov_http_connections_dropped_total\{reason="([a-z-]+)"\} (\d+)', text, re.M)}


class DroppingProxy:
    """Between the SM and the AUSF: forwards a connection's first request
    and its answer, then, when the next request comes on it, closes the
    connection without forwarding it: what a client sees when a server
    closes a kept connection (idle timeout, a limit) just as it sends."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.connections = 0
        self.dropped = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.relay, args=(c,), daemon=True).start()

    def relay(self, client):
        up = socket.create_connection(("127.0.0.1", self.upstream))
        answered = False
        try:
            while True:
                ready, _, _ = select.select([client, up], [], [], 30)
                if not ready:
                    return
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    if answered:
                        self.dropped += 1
                        return
                    up.sendall(data)
                if up in ready:
                    data = up.recv(65536)
                    if not data:
                        return
                    answered = True
                    client.sendall(data)
        finally:
            client.close()
            up.close()

    def close(self):
        self.lsock.close()


def test_ausf_race(b):
    """The SM's calls to the AUSF on a kept connection closed under them:
    a claim's call (idempotent: the same SUPI and keys again) is sent
    again on a new connection and the claim succeeds; a re-provisioning's
    (a key generation a call) goes on a connection of its own, never on
    a kept one, and is never sent twice."""
    proxy = DroppingProxy(b.ausf_port)
    ausf_url = b.sm_options.get("ausf-url")
    b.sm_options["ausf-url"] = "http://127.0.0.1:%d" % proxy.port
    b.stop("sm")
    b.write_sm_conf()
    b.start_sm()
    try:
        ids = []
        for name in ("race1", "race2", "race3"):
            ids.append(b.make_device(name)["device-id"])
            rc, res, err = b.companion(b.tag(name))
            check(rc == 0 and res["result"] == "ok",
                  "a claim through a kept connection closed under it (%s)" % (res.get("error") if rc else "ok"))
        check(proxy.dropped >= 2, "... the kept connection was closed under the call (%d times)" % proxy.dropped)
        check(open(b.path("sm.log")).read().count("sending it again on a new connection") == proxy.dropped,
              "... and the SM sent the call again each time")
        dropped, conns = proxy.dropped, proxy.connections
        for i in range(2):
            st, res = b.sm_request("POST", "/v1/devices/%s/reprovision" % ids[0], body="{}")
            check(st == 200 and res["generation"] == 2 + i,
                  "a re-provisioning through the same AUSF path (%d %r)" % (st, res))
        check(proxy.dropped == dropped and proxy.connections == conns + 2,
              "... each on a connection of its own, none closed under it")
    finally:
        proxy.close()
        if ausf_url is None:
            del b.sm_options["ausf-url"]
        else:
            b.sm_options["ausf-url"] = ausf_url
        b.stop("sm")
        b.write_sm_conf()
        b.start_sm()


def provision_under_attack(b, name, what):
    loris = Slowloris(b.sm_port, what[1])
    try:
        time.sleep(4)  # let the slow connections take what they can
        check(loris.opened >= SLOW, "%s: %d slow connections opened" % (what[0], loris.opened))
        for i in range(5):
            t0 = time.monotonic()
            rc, res, err = b.companion(b.tag(name))
            dt = time.monotonic() - t0
            check(rc == 0 and res["result"] == "ok",
                  "%s: a companion provisions while %d slow connections are held (%.2f s) %s"
                  % (what[0], loris.held, dt, "" if rc == 0 else res.get("error")))
            check(dt < 5, "... in good time")
            time.sleep(1)
    finally:
        loris.stop.set()
        loris.thread.join()


def test_slowloris(b):
    b.make_device("h")
    before = metrics(b)
    provision_under_attack(b, "h", ("one source", ["127.0.0.2"]))
    mid = metrics(b)
    check(mid["per-source"] - before["per-source"] > 0,
          "the per-source limit turned connections away (%d)" % (mid["per-source"] - before["per-source"]))
    provision_under_attack(b, "h", ("70 sources", ["127.0.0.%d" % (i + 2) for i in range(SLOW)]))
    after = metrics(b)
    check(after["unauthenticated"] - mid["unauthenticated"] > 0,
          "unauthenticated connections were dropped for newcomers (%d)" % (after["unauthenticated"] - mid["unauthenticated"]))
    check(after["deadline"] - before["deadline"] > 0,
          "slow connections were cut at request-timeout (%d)" % (after["deadline"] - before["deadline"]))


def test_keepalive(b):
    """Keep-alive: an authenticated connection serves request after request;
    one nobody authenticated on is told Connection: close; an answer that
    would leave a connection idle at the per-source limit (16) says
    Connection: close; connections kept idle never make the limit refuse
    a newcomer (the oldest idle one gives way), and a kept connection the
    client closes leaves no descriptor behind."""
    def fds():
        return len(os.listdir("/proc/%d/fd" % b.procs["sm"].pid))

    def get(conn, token=None):
        conn.request("GET", "/v1/devices", headers={"Authorization": "Bearer " + token} if token else {})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Connection")

    base = fds()
    c = http.client.HTTPSConnection("127.0.0.1", b.sm_port, context=b.ssl_context(), timeout=10)
    answers = [get(c, b.token) for _ in range(3)]
    check(answers == [(200, None)] * 3, "three requests on one authenticated connection (%r)" % answers)
    # many requests on one connection: each as quick as the first ones
    # (a connection handed back to libsoup in a new wrapper each time
    # would grow a layer a request), answered at once (no Nagle delay)
    times = []
    for i in range(600):
        t0 = time.monotonic()
        a = get(c, b.token)
        times.append(time.monotonic() - t0)
        if a != (200, None):
            break
    first, last = sorted(times[:100])[50], sorted(times[-100:])[50]
    check(len(times) == 600 and a == (200, None), "600 requests on one kept connection (%d, %r)" % (len(times), a))
    check(last < 4 * first + 0.002 and first < 0.035,
          "... the last as quick as the first (median %.2f ms, then %.2f ms)" % (first * 1e3, last * 1e3))
    c.close()
    c = http.client.HTTPSConnection("127.0.0.1", b.sm_port, context=b.ssl_context(), timeout=10)
    check(get(c) == (401, "close"), "an unauthenticated request is answered with Connection: close")
    c.close()
    # the connections above gone at the SM too, so that it counts these alone
    deadline = time.monotonic() + 5
    while fds() > base and time.monotonic() < deadline:
        time.sleep(0.05)
    kept = []
    for i in range(20):
        c = http.client.HTTPSConnection("127.0.0.1", b.sm_port, context=b.ssl_context(), timeout=10)
        kept.append((c, get(c, b.token)))
    answers = [a for _, a in kept]
    # (after the 16th, whether the SM has closed the one before when the
    # next comes, or made an idle one give way to it, is a matter of timing)
    check(answers[:15] == [(200, None)] * 15 and answers[15] == (200, "close") and
          all(a in ((200, None), (200, "close")) for a in answers[16:]),
          "20 connections from one address: the first 15 kept alive, the answer that would leave a 16th "
          "idle (the limit) says Connection: close (%r)" % answers)
    # again from none: 15 kept, then two newcomers
    for c, _ in kept:
        c.close()
    deadline = time.monotonic() + 5
    while fds() > base and time.monotonic() < deadline:
        time.sleep(0.05)
    kept = []
    for i in range(15):
        c = http.client.HTTPSConnection("127.0.0.1", b.sm_port, context=b.ssl_context(), timeout=10)
        kept.append((c, get(c, b.token)))
    check([a for _, a in kept] == [(200, None)] * 15, "15 connections kept again")
    # a newcomer at the limit still gets in: the oldest idle one gives way
    extra = []
    for i in range(2):
        c = http.client.HTTPSConnection("127.0.0.1", b.sm_port, context=b.ssl_context(), timeout=10)
        c.connect()
        extra.append((c, None))
    answers = [get(c, b.token) for c, _ in extra]
    check(answers[0] == (200, "close") and answers[1][0] == 200,
          "two newcomers, the second at the limit: both served, the first (at the limit when it is "
          "answered) told Connection: close (%r)" % answers)
    fresh = 0
    for c, _ in kept:
        try:
            fresh += get(c, b.token)[0] == 200
        except (OSError, http.client.HTTPException):
            pass
    check(fresh == 14, "the oldest idle connection gave way to the second newcomer (%d of 15 still open)" % fresh)
    kept += extra
    for c, _ in kept:
        c.close()
    deadline = time.monotonic() + 5
    while fds() > base and time.monotonic() < deadline:
        time.sleep(0.1)
    check(fds() <= base, "every kept connection the clients closed is closed by the SM too (%d fds, %d before)"
          % (fds(), base))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [test_ausf_race, test_keepalive, test_slowloris],
                  sm_options={"metrics-listen": "127.0.0.1:0", "request-timeout": "5"}))
