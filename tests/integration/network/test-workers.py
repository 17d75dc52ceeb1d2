# SPDX-License-Identifier: LGPL-2.1-or-later
"""workers = N: the SM and the AUSF each a supervisor and two workers on one
port (SO_REUSEPORT). Both workers serve; a worker killed with SIGKILL is
replaced and the service goes on; SIGTERM to the supervisor leaves no
process; a malformed workers value, or a worker that cannot start, stops
the program with a specific error."""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netbench import Fail, check, main  # noqa: E402


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            out += [int(c) for c in f.read().split()]
    return sorted(out)


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")


def workers_of(b, name, n=2, old=(), timeout=10):
    """The n worker pids of name's supervisor, none of them in old, once
    each has logged that it listens."""
    sup = b.procs[name].pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in children(sup) if p not in old]
        if len(children(sup)) == n and len(pids) == n - len(old) and \
                all(any(a.startswith(b"--worker=") for a in cmdline(p)) for p in pids):
            return children(sup)
        time.sleep(0.05)
    raise Fail("%s: no %d workers (%r)" % (name, n, children(sup)))


def logged(b, name, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in open(b.path(name + ".log")).read():
            return
        time.sleep(0.05)
    raise Fail("%s never logged %r" % (name, text))


def metrics_ports(b, name, count, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = re.findall(r"/metrics and /healthz on port (\d+)", open(b.path(name + ".log")).read())
        if len(ports) >= count:
            return [int(p) for p in ports]
        time.sleep(0.05)
    raise Fail("%s: %d metrics ports logged" % (name, count))


def served(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    return sum(float(m) for m in re.findall(r'^cellprov_http_requests_total\{endpoint="/v1/devices",[^}]*\} (\S+)$',
                                           text, re.M))


def provision(b, name):
    b.make_device(name)
    rc, res, err = b.companion(b.tag(name))
    check(rc == 0 and res["result"] == "ok", "device %s provisions (%r %s)" % (name, res, err[-300:]))


def bad_values(b):
    for prog, conf in (("sm", "sm.conf"), ("ausf", "ausf.conf")):
        text = open(b.path(conf)).read()
        for v in ("0", "-1", "abc", "65", "99999999999999999999999"):
            if prog == "ausf" and v not in ("0", "abc"):
                continue
            path = b.path("bad-" + conf)
            with open(path, "w") as f:
                f.write(text + "workers=%s\n" % v)
            r = subprocess.run([b.prog("network/cellprov-" + prog), "-c", path, "--listen", "127.0.0.1:0"],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 1 and "workers: '%s' is not a number from 1 to 64" % v in r.stderr,
                  "%s: workers=%s refused (%d %r)" % (prog, v, r.returncode, r.stderr[-200:]))
    # a worker that fails at start stops the supervisor, its error shown
    path = b.path("bad-sm.conf")
    with open(path, "w") as f:
        f.write(open(b.path("sm.conf")).read() + "workers=2\nfetch-timeout=abc\n")
    r = subprocess.run([b.prog("network/cellprov-sm"), "-c", path, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "fetch-timeout" in r.stderr and "before it listened" in r.stderr,
          "a worker's configuration error stops the supervisor (%d %r)" % (r.returncode, r.stderr[-300:]))


def notify_and_watchdog(b):
    """Under systemd's protocol: READY=1 from the supervisor once both
    workers listen, WATCHDOG=1 pings from it, nothing from a worker; a
    worker stopped (SIGSTOP) is killed and replaced within the watchdog's
    interval, and SIGTERM gets STOPPING=1."""
    path = b.path("notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(10)
    conf = b.path("notify-sm.conf")
    with open(conf, "w") as f:
        f.write(open(b.path("sm.conf")).read() + "workers=2\n")
    log = open(b.path("notify-sm.log"), "w")
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    p = subprocess.Popen([b.prog("network/cellprov-sm"), "-c", conf, "--listen", "127.0.0.1:0"],
                         stdout=log, stderr=subprocess.STDOUT, env=env)
    got = []

    def receive(want):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = [struct.unpack("iII", d)[0] for lvl, t, d in anc
                   if lvl == socket.SOL_SOCKET and t == socket.SCM_CREDENTIALS][0]
            got.append((pid, data.decode()))
            if want in data.decode():
                return
        raise Fail("no %r from the supervisor (%r)" % (want, got))

    try:
        receive("READY=1")
        check(got[-1][1].startswith("READY=1\nSTATUS=2 workers on port "), "READY=1 with a status")
        workers = children(p.pid)
        check(len(workers) == 2, "two workers when READY=1 comes")
        receive("WATCHDOG=1")
        os.kill(workers[0], signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while workers[0] in children(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(workers[0] not in children(p.pid), "a stalled worker is killed within the watchdog interval")
        check(len([c for c in children(p.pid) if c != workers[1]]) <= 1, "and only it")
        deadline = time.monotonic() + 5
        while "listening again" not in open(b.path("notify-sm.log")).read() and time.monotonic() < deadline:
            time.sleep(0.05)
        check("sent no heartbeat" in open(b.path("notify-sm.log")).read(), "the log says why it was killed")
        receive("WATCHDOG=1")
        p.send_signal(signal.SIGTERM)
        receive("STOPPING=1")
        check(p.wait(timeout=10) == 0, "the supervisor exits 0 on SIGTERM")
        check(all(pid == p.pid for pid, _ in got), "only the supervisor talks to systemd (%r)" %
              sorted(set(pid for pid, _ in got)))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        sock.close()


def test_workers(b):
    bad_values(b)
    notify_and_watchdog(b)

    b.stop("sm")
    b.stop("ausf")
    with open(b.path("ausf.conf"), "a") as f:
        f.write("workers=2\n")
    b.start_ausf()
    b.sm_options.update({"workers": "2", "metrics-listen": "127.0.0.1:0",
                         "ausf-url": "http://127.0.0.1:%d" % b.ausf_port})
    b.write_sm_conf()
    b.start_sm()
    ausf_workers = workers_of(b, "ausf")
    sm_workers = workers_of(b, "sm")
    ports = metrics_ports(b, "sm", 2)
    check(len(set(ports)) == 2, "each SM worker its own metrics port")

    provision(b, "w1")
    # both workers take connections: the kernel spreads them
    for _ in range(24):
        st, _ = b.sm_request("GET", "/v1/devices")
        check(st == 200, "GET /v1/devices")
    counts = [served(p) for p in ports]
    check(all(c > 0 for c in counts) and sum(counts) == 24, "both SM workers served (%r)" % counts)

    # a worker killed is replaced; the other serves meanwhile
    os.kill(sm_workers[0], signal.SIGKILL)
    # reaped: all its threads gone, its listening socket closed
    logged(b, "sm", "worker 0 (pid %d) was killed by signal 9" % sm_workers[0])
    st, _ = b.sm_request("GET", "/v1/devices")
    check(st == 200, "served while a worker is replaced")
    new = workers_of(b, "sm", old=[sm_workers[1]])
    check(sm_workers[0] not in new and sm_workers[1] in new, "the killed SM worker replaced (%r)" % new)
    os.kill(ausf_workers[1], signal.SIGKILL)
    logged(b, "ausf", "worker 1 (pid %d) was killed by signal 9" % ausf_workers[1])
    new_ausf = workers_of(b, "ausf", old=[ausf_workers[0]])
    replacement = [p for p in new if p != sm_workers[1]][0]
    logged(b, "sm", "worker 0 (pid %d) listening again" % replacement)
    logged(b, "ausf", "worker 1 (pid %d) listening again" % [p for p in new_ausf if p != ausf_workers[0]][0])
    for i in range(2, 6):
        provision(b, "w%d" % i)

    # SIGTERM: the supervisors stop, and their workers with them
    everyone = new + new_ausf + [b.procs["sm"].pid, b.procs["ausf"].pid]
    b.stop("sm")
    b.stop("ausf")
    left = [p for p in everyone if os.path.exists("/proc/%d" % p)]
    check(not left, "no process left after SIGTERM (%r)" % left)

    # one process again, for the checks main() ends with
    with open(b.path("ausf.conf")) as f:
        text = f.read().replace("workers=2\n", "")
    with open(b.path("ausf.conf"), "w") as f:
        f.write(text)
    b.start_ausf()
    b.sm_options.update({"workers": None, "ausf-url": "http://127.0.0.1:%d" % b.ausf_port})
    b.write_sm_conf()
    b.start_sm()
    provision(b, "w9")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [test_workers]))
