#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The files the network side writes with cp_file_replace: the port file
of cellprov-ausf and cellprov-sm (--port-file) and the AUSF's subscriber
export (--export-file). Made to fail for real with cp-fault-run around the
real programs: killed exactly at the rename of the file, and on a full
tmpfs, each leaves the previous file byte for byte (the export still
loadable by the QMI simulator's subscriber loader), the new one whole
beside it when killed, and says why when refused. Under the same tracer,
with no fault reached, each program writes its file and serves."""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "network"))
import prereq  # noqa: E402
import netbench  # noqa: E402
from netbench import Fail, check  # noqa: E402

BUILD = os.environ["CP_BUILD_DIR"]
FAULT = os.path.join(BUILD, "tests", "fault", "cp-fault-run")
SUB_LINE = re.compile(r"^[0-9]{6,15} [0-9a-fA-F]{32} [0-9a-fA-F]{32} [0-9a-fA-F]{12}$")


def can(what):
    r = subprocess.run([FAULT, "--check", what], capture_output=True, text=True)
    if r.returncode != 0:
        prereq.partly("%s: %s" % (what, r.stdout.strip()))
    return r.returncode == 0


def expect(cond, what, detail=""):
    """check(), with what the program said only when it failed."""
    if not cond:
        raise Fail(what + (": " + detail.strip()[-2000:] if detail else ""))
    print("ok:", what)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def subscribers(data, what):
    """The subscriber lines, as cp_sim_network_load reads them: '#' and
    blank lines aside, <imsi> <K> <OPc> <SQN> separated by single spaces."""
    if not data.endswith(b"\n"):
        raise Fail("%s does not end with a whole line" % what)
    lines = [l.strip() for l in data.decode("ascii").split("\n")]
    subs = [l for l in lines if l and not l.startswith("#")]
    for i, l in enumerate(subs):
        if SUB_LINE.match(l) is None:
            raise Fail("%s: subscriber %d is not <imsi> <K> <OPc> <SQN>" % (what, i + 1))
    return [l.split(" ")[0] for l in subs]


def port_of(data, what):
    check(re.fullmatch(rb"[1-9][0-9]{0,4}\n", data) is not None, "%s is a whole port line: %r" % (what, data))
    return int(data)


def serves(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def port_file(b, name, argv, ptrace, tmpfs):
    """A previous port file, a run killed at its rename, a run under the
    tracer that gets past it, a run with the disk full."""
    d = b.path(name + "-port")
    os.mkdir(d)
    path = os.path.join(d, "port")
    old = b"1\n"
    netbench.write(path, old.decode())
    args = argv + ["--listen", "127.0.0.1:0", "--port-file", path]
    if ptrace:
        r = subprocess.run([FAULT, "--kill-at-rename", "1", "--"] + args,
                           capture_output=True, text=True, timeout=30)
        expect(r.returncode == 128 + signal.SIGKILL, "%s killed at its first rename" % name,
               "exit %d %s" % (r.returncode, r.stderr))
        check(read(path) == old, "%s killed at the rename: the previous port file byte for byte" % name)
        check(sorted(os.listdir(d)) == ["port", "port.tmp"], "%s: the new port file beside it: %r"
              % (name, os.listdir(d)))
        port_of(read(path + ".tmp"), name + "'s port.tmp")
        os.unlink(path + ".tmp")

        # one rename only: under the same tracer, the second is never reached
        log = open(b.path(name + "-traced.log"), "w")
        p = subprocess.Popen([FAULT, "--kill-at-rename", "2", "--"] + args, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while read(path) == old and time.monotonic() < deadline and p.poll() is None:
                time.sleep(0.02)
            port = port_of(read(path), name + "'s new port file")
            check(serves(port), "%s traced serves on the port of its new port file" % name)
            check(os.listdir(d) == ["port"], "%s: nothing left beside the port file" % name)
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=20)
        check(rc == 0, "%s under the tracer stops cleanly on SIGTERM (exit %d)" % (name, rc))

    if tmpfs:
        seed, kept = b.path(name + "-seed"), b.path(name + "-kept")
        os.mkdir(seed)
        os.mkdir(kept)
        netbench.write(os.path.join(seed, "port"), old.decode())
        r = subprocess.run([FAULT, "--tmpfs", d, "--size", "16384", "--seed", seed, "--fill",
                            "--keep", kept, "--"] + args, capture_output=True, text=True, timeout=30)
        expect(r.returncode == 1, "%s with the disk full fails" % name, "exit %d %s" % (r.returncode, r.stderr))
        expect("cannot write %s: No space left on device" % path in r.stderr,
               "%s says what and why" % name, r.stderr)
        check(os.listdir(kept) == ["port"] and read(os.path.join(kept, "port")) == old,
              "%s with the disk full: the previous port file byte for byte, nothing beside" % name)


def add_subscriber(b, n):
    key = b.path("sub-%d.pem" % n)
    b.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
    spki = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                          capture_output=True, check=True).stdout
    req = {"companion": netbench.COMPANION_SUPI, "device-id": hashlib.sha256(spki).hexdigest()[:32],
           "public-key": base64.b64encode(spki).decode(), "suite": "B"}
    c = http.client.HTTPConnection("127.0.0.1", b.ausf_port, timeout=10)
    c.request("POST", "/v1/devices", body=json.dumps(req),
              headers={"Content-Type": "application/json", "Authorization": "Bearer " + b.ausf_token})
    resp = c.getresponse()
    out = json.loads(resp.read())
    c.close()
    check(resp.status == 200 and "supi" in out, "AUSF adds subscriber %d (%d)" % (n, resp.status))
    return out["supi"]


def export_file(b, ptrace, tmpfs):
    d = b.path("export")
    os.mkdir(d)
    path = os.path.join(d, "subscribers")
    export = [b.prog("network/cellprov-ausf"), "-c", b.path("ausf.conf"), "--export-file", path]
    first = add_subscriber(b, 1)
    b.run(export)
    old = read(path)
    check(subscribers(old, "the export") == [first], "the export holds the first subscriber")
    second = add_subscriber(b, 2)

    if ptrace:
        r = subprocess.run([FAULT, "--kill-at-rename", "1", "--"] + export,
                           capture_output=True, text=True, timeout=30)
        expect(r.returncode == 128 + signal.SIGKILL, "export killed at its rename",
               "exit %d %s" % (r.returncode, r.stderr))
        check(read(path) == old, "export killed at the rename: the previous export byte for byte")
        subscribers(read(path), "the previous export")
        check(sorted(os.listdir(d)) == ["subscribers", "subscribers.tmp"],
              "the new export whole beside it: %r" % os.listdir(d))
        check(sorted(subscribers(read(path + ".tmp"), "subscribers.tmp")) == sorted([first, second]),
              "the new export holds both subscribers")
        check(os.stat(path + ".tmp").st_mode & 0o777 == 0o600, "the new export is 0600 from the start")
        os.unlink(path + ".tmp")

    if tmpfs:
        seed, kept = b.path("export-seed"), b.path("export-kept")
        os.mkdir(seed)
        os.mkdir(kept)
        shutil.copy2(path, seed)
        r = subprocess.run([FAULT, "--tmpfs", d, "--size", "16384", "--seed", seed, "--fill",
                            "--keep", kept, "--"] + export, capture_output=True, text=True, timeout=30)
        expect(r.returncode == 1, "export with the disk full fails", "exit %d %s" % (r.returncode, r.stderr))
        expect("cannot write %s: No space left on device" % path in r.stderr,
               "the AUSF reports the storage error", r.stderr)
        check(os.listdir(kept) == ["subscribers"] and read(os.path.join(kept, "subscribers")) == old,
              "export with the disk full: the previous export byte for byte, nothing beside")

    b.run(export)
    check(sorted(subscribers(read(path), "the new export")) == sorted([first, second]),
          "a whole run replaces the export with both subscribers")


def main():
    if not shutil.which("openssl"):
        prereq.missing("openssl is not installed (Debian package openssl)")
    ptrace, tmpfs = can("ptrace"), can("tmpfs")
    b = netbench.Bench(BUILD)
    failed = False
    try:
        b.make_tls()
        b.make_ca()
        b.write_ausf_conf()
        port_file(b, "ausf", [b.prog("network/cellprov-ausf"), "-c", b.path("ausf.conf")], ptrace, tmpfs)
        b.start_ausf()
        b.write_sm_conf()
        port_file(b, "sm", [b.prog("network/cellprov-sm"), "-c", b.path("sm.conf")], ptrace, tmpfs)
        export_file(b, ptrace, tmpfs)
        b.stop("ausf")
    except Fail as e:
        print("FAIL:", e)
        failed = True
    if failed:
        b.dump_logs()
    b.teardown()
    sys.exit(prereq.status(1 if failed else 0))


if __name__ == "__main__":
    main()
