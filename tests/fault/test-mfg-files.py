#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cellprov-mfg's factory outputs (device key, certificate, config, ADM1,
chain file) are written with cp_file_replace. Made to fail for real with
cp-fault-run: killed exactly at its rename, and on a full tmpfs, a run
leaves every file it had made before byte for byte as it was; a run that
succeeds puts new files in place (new inodes)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

BUILD = os.environ["CP_BUILD_DIR"]
MFG = os.path.join(BUILD, "tools", "cellprov-mfg")
FAULT = os.path.join(BUILD, "tests", "fault", "cp-fault-run")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def snapshot(*dirs):
    """name -> (bytes, inode) of every regular file, .tmp files aside."""
    out = {}
    for d in dirs:
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p) and not name.endswith(".tmp"):
                out[p] = (open(p, "rb").read(), os.stat(p).st_ino)
    return out


def same_bytes(a, b, what):
    check(a.keys() == b.keys(), "%s: files %s, were %s" % (what, sorted(b), sorted(a)))
    for p in a:
        check(a[p][0] == b[p][0], "%s: %s changed" % (what, p))


def main():
    d = tempfile.mkdtemp(prefix="cp-mfg-fault-")
    try:
        run(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("ok")


def trusted_operators(d, device, out):
    """--trusted-operators: checked first, copied beside the config (0644),
    named in it; a file of no CA certificate is refused, nothing written."""
    roots = os.path.join(d, "roots.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", os.path.join(d, "root-key.pem"), "-out", roots,
                    "-subj", "/O=Example Operator/CN=root", "-days", "30"],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(device + ["--trusted-operators", roots, "--etc-dir", "/etc/cellprov"],
                   check=True, capture_output=True)
    copy = os.path.join(out, "trusted-operators.pem")
    check(open(copy, "rb").read() == open(roots, "rb").read(), "the roots copied as they are")
    check(os.stat(copy).st_mode & 0o777 == 0o644, "trusted-operators.pem mode %o" % os.stat(copy).st_mode)
    conf = open(os.path.join(out, "cellprov.conf")).read()
    check("trusted-operators=/etc/cellprov/trusted-operators.pem\n" in conf, "conf:\n" + conf)

    os.unlink(copy)
    before = snapshot(out)
    for bad in (os.path.join(d, "root-key.pem"), os.path.join(d, "nothing.pem")):
        r = subprocess.run(device + ["--trusted-operators", bad], capture_output=True, text=True)
        check(r.returncode == 1 and "--trusted-operators" in r.stderr, "bad roots %s: %s" % (bad, r.stderr))
        same_bytes(before, snapshot(out), "refused roots")
    subprocess.run(device, check=True, capture_output=True)


def run(d):
    ca, out, chains = (os.path.join(d, n) for n in ("ca", "out", "chains"))
    subprocess.run([MFG, "ca", "--dir", ca], check=True, capture_output=True)
    device = [MFG, "device", "--ca", ca, "--out", out, "--chains", chains,
              "--url-base", "https://certs.example.net/devices", "--serial", "SN-1",
              "--adm1", "12345678"]
    subprocess.run(device, check=True, capture_output=True)
    trusted_operators(d, device, out)
    subprocess.run(device, check=True, capture_output=True)
    before = snapshot(out, chains)
    check(len(before) >= 4, "mfg made %s" % sorted(before))

    # a run that succeeds (new key): every file a new inode, all whole
    subprocess.run(device + ["--force"], check=True, capture_output=True)
    after = snapshot(out, chains)
    # (the old chain file stays: it is another DeviceID's)
    for p in before:
        if p.startswith(out + "/"):
            check(after[p][1] != before[p][1], "%s was written in place" % p)
            check(after[p][0] == open(p, "rb").read(), "%s" % p)
    check(len(after) == len(before) + 1, "no new chain file: %s" % sorted(after))
    before = after

    # killed at the first rename: with --force that is the new key; without,
    # with key and certificate kept, the chain file
    crash = (os.environ.get("CP_FAULT_NO_SECCOMP") is None)
    if crash:
        for extra in (["--force"], []):
            r = subprocess.run([FAULT, "--kill-on-rename", "--"] + device + extra,
                               capture_output=True, text=True)
            check(r.returncode == 128 + signal.SIGSYS,
                  "mfg %s not killed at its rename: exit %d\n%s" % (extra, r.returncode, r.stderr))
            same_bytes(before, snapshot(out, chains), "killed at rename %s" % extra)
            tmps = [n for n in os.listdir(out) + os.listdir(chains) if n.endswith(".tmp")]
            check(len(tmps) == 1, "the new file beside the old: %r" % tmps)
            for dd in (out, chains):
                for n in os.listdir(dd):
                    if n.endswith(".tmp"):
                        os.unlink(os.path.join(dd, n))

    # a full filesystem: the output directory on a tmpfs, filled; a new key
    # is refused and every old file is kept
    if os.geteuid() == 0:
        kept, seed = os.path.join(d, "kept"), os.path.join(d, "seed")
        os.mkdir(kept)
        shutil.copytree(out, seed)
        r = subprocess.run([FAULT, "--tmpfs", out, "--size", "65536", "--seed", seed, "--fill",
                            "--keep", kept, "--"] + device + ["--force"],
                           capture_output=True, text=True)
        if r.returncode == 2 and "unshare" in r.stderr:
            print("no private mount namespace here: full-filesystem case skipped")
        else:
            check(r.returncode == 1, "mfg on a full disk: exit %d\n%s" % (r.returncode, r.stderr))
            check("No space left" in r.stderr, "mfg did not say why: " + r.stderr)
            old = {os.path.basename(p): v[0] for p, v in before.items() if p.startswith(out + "/")}
            new = {n: open(os.path.join(kept, n), "rb").read() for n in os.listdir(kept)}
            check(old == new, "full disk: %s, were %s" % (sorted(new), sorted(old)))


if __name__ == "__main__":
    main()
