#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cellprov-mfg's factory outputs (device key, certificate, config, ADM1,
chain file, and the CA's keys and certificates) are written with
cp_file_replace. Made to fail for real with cp-fault-run: killed exactly
at its rename, and on a full tmpfs, a run leaves every file it had made
before byte for byte as it was; a run that succeeds puts new files in
place (new inodes).

Then every file of a run, one after the other: from a directory holding a
complete earlier set, a run that replaces each file is killed at its Nth
rename, for every N, and the directory is filled up right after its Nth
rename, for every N. Each time the files the run had renamed before are
the new ones, whole and consistent with each other; the file it was at
and every one after it are the old ones, byte for byte; a killed run
leaves its Nth file whole beside the old one (name.tmp), a refused one
leaves nothing; and one more N than the run has renames lets it finish."""

import base64
import configparser
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import prereq  # noqa: E402

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


def can(what):
    r = subprocess.run([FAULT, "--check", what], capture_output=True, text=True)
    if r.returncode != 0:
        prereq.partly("%s: %s" % (what, r.stdout.strip()))
    return r.returncode == 0


def main():
    d = tempfile.mkdtemp(prefix="cp-mfg-fault-")
    try:
        seccomp, ptrace, tmpfs = can("seccomp"), can("ptrace"), can("tmpfs")
        run(d, seccomp, tmpfs)
        each_rename(d, ptrace, tmpfs)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("ok")
    sys.exit(prereq.status(0))


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


def run(d, seccomp, tmpfs):
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
    if seccomp:
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
    if tmpfs:
        kept, seed = os.path.join(d, "kept"), os.path.join(d, "seed")
        os.mkdir(kept)
        shutil.copytree(out, seed)
        r = subprocess.run([FAULT, "--tmpfs", out, "--size", "65536", "--seed", seed, "--fill",
                            "--keep", kept, "--"] + device + ["--force"],
                           capture_output=True, text=True)
        check(r.returncode == 1, "mfg on a full disk: exit %d\n%s" % (r.returncode, r.stderr))
        check("No space left" in r.stderr, "mfg did not say why: " + r.stderr)
        old = {os.path.basename(p): v[0] for p, v in before.items() if p.startswith(out + "/")}
        new = {n: open(os.path.join(kept, n), "rb").read() for n in os.listdir(kept)}
        check(old == new, "full disk: %s, were %s" % (sorted(new), sorted(old)))


# ---- every file of a run ----

PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\n([A-Za-z0-9+/=\n]+)-----END \1-----\n")


def pem_blocks(data, what):
    """The (label, DER) blocks of a whole PEM file; fails on anything else."""
    text = data.decode("ascii", "replace")
    blocks, pos = [], 0
    for m in PEM.finditer(text):
        check(m.start() == pos, "%s: not PEM at byte %d" % (what, pos))
        blocks.append((m.group(1), base64.b64decode(m.group(2), validate=False)))
        pos = m.end()
    check(blocks and pos == len(text), "%s: a cut PEM file (%d of %d bytes)" % (what, pos, len(text)))
    return blocks


def check_whole(name, data, new, what):
    """The new file name is whole and fits the run's arguments."""
    if name in ("device-key.pem", "root-key.pem", "intermediate-key.pem"):
        check([b[0] for b in pem_blocks(data, what)] == ["PRIVATE KEY"], "%s: one private key" % what)
    elif name in ("device-cert.pem", "root-cert.pem", "intermediate-cert.pem"):
        check([b[0] for b in pem_blocks(data, what)] == ["CERTIFICATE"], "%s: one certificate" % what)
    elif name == "adm1":
        check(data == new["adm1"].encode(), "%s: the new ADM1" % what)
    elif name == "cellprov.conf":
        cp = configparser.ConfigParser(interpolation=None)
        cp.read_string(data.decode())
        check(cp["device"]["model"] == new["model"], "%s: the new model" % what)
        check(cp["daemon"]["state-directory"] == "/var/lib/cellprov", "%s: cut" % what)
        new["url"] = cp["device"]["certificate-url"]
    else:  # a chain: the device certificate, then the intermediate
        check([b[0] for b in pem_blocks(data, what)] == ["CERTIFICATE"] * 2, "%s: two certificates" % what)


def tree(top):
    """relative path -> bytes of every file under top."""
    out = {}
    for dirpath, _, files in os.walk(top):
        for n in files:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, top)] = open(p, "rb").read()
    return out


def check_state(got, old, order, n, new, what, tmp_left):
    """Files order[:n-1] are new and whole, order[n-1:] the old ones;
    the file at n is whole beside its old one when tmp_left."""
    new.pop("url", None)
    for i, rel in enumerate(order):
        name = os.path.basename(rel)
        w = "%s: %s" % (what, rel)
        if i < n - 1:
            check(rel in got, w + " is missing")
            check(got[rel] != old.get(rel), w + " is still the old one")
            check_whole(name, got[rel], new, w)
        elif rel in old:
            check(got.get(rel) == old[rel], w + " is not the old one byte for byte")
        else:
            check(rel not in got, w + " was made")
    tmps = sorted(r for r in got if r.endswith(".tmp"))
    if tmp_left:
        rel = order[n - 1]
        check(tmps == [rel + ".tmp"], "%s: left %r, want %s.tmp" % (what, tmps, rel))
        check_whole(os.path.basename(rel), got[rel + ".tmp"], new, what + ": " + rel + ".tmp")
    else:
        check(tmps == [], "%s: left %r" % (what, tmps))
    others = set(got) - set(old) - set(order) - set(tmps)
    check(not others, "%s: unexpected %r" % (what, sorted(others)))
    # what the run wrote fits together
    if "cert" in new and n - 1 > order.index(new["chain"]):
        chain = pem_blocks(got[new["chain"]], what)
        cert = pem_blocks(got[new["cert"]], what)
        check(chain[0] == cert[0], "%s: the chain does not start with the new certificate" % what)
    if "url" in new and new["chain"] in got:
        check(new["url"].endswith("/" + os.path.basename(new["chain"])),
              "%s: the config's URL is not the chain's DeviceID" % what)


def each_rename(d, ptrace, tmpfs):
    top = os.path.join(d, "each")
    ca, w, pristine = os.path.join(top, "ca"), os.path.join(top, "w"), os.path.join(top, "pristine")
    out, chains = os.path.join(w, "out"), os.path.join(w, "chains")
    os.makedirs(w)
    base = [MFG, "device", "--ca", ca, "--out", out, "--chains", chains,
            "--url-base", "https://certs.example.net/devices", "--serial", "SN-2"]
    subprocess.run([MFG, "ca", "--dir", ca], check=True, capture_output=True)
    subprocess.run(base + ["--adm1", "11111111", "--valid-from", "2024-01-01T00:00:00Z"],
                   check=True, capture_output=True)
    shutil.copytree(w, pristine)
    old = tree(pristine)
    old_id = [r for r in old if r.startswith("chains/")][0][len("chains/"):]

    # a new key: key, certificate, a new chain file (the new DeviceID's),
    # ADM1, config; the same key and a new certificate: all but the key
    runs = [
        ("new key", ["--force"], ["out/device-key.pem", "out/device-cert.pem", None,
                                  "out/adm1", "out/cellprov.conf"]),
        ("new certificate", ["--valid-from", "2025-01-01T00:00:00Z"],
         ["out/device-cert.pem", "chains/" + old_id, "out/adm1", "out/cellprov.conf"]),
    ]

    def restore():
        shutil.rmtree(w)
        shutil.copytree(pristine, w)

    def order_of(order, got):
        """The new chain file's name, once the run made it (or its .tmp)."""
        if None not in order:
            return order
        made = [r[:-4] if r.endswith(".tmp") else r for r in got
                if r.startswith("chains/") and r not in old]
        check(len(set(made)) <= 1, "more than one new chain file: %r" % made)
        chain = made[0] if made else "chains/(new)"
        return [chain if r is None else r for r in order]

    for label, extra, order in runs:
        new = {"adm1": "22222222", "model": "GW-2"}
        args = base + ["--adm1", new["adm1"], "--model", new["model"]] + extra
        if ptrace:
            for n in range(1, len(order) + 2):
                restore()
                r = subprocess.run([FAULT, "--kill-at-rename", str(n), "--"] + args,
                                   capture_output=True, text=True)
                what = "%s, killed at rename %d" % (label, n)
                if n <= len(order):
                    check(r.returncode == 128 + signal.SIGKILL, "%s: exit %d\n%s" % (what, r.returncode, r.stderr))
                else:
                    check(r.returncode == 0, "%s renames more than %d times: exit %d\n%s"
                          % (label, len(order), r.returncode, r.stderr))
                got = tree(w)
                o = order_of(order, got)
                new.update(cert="out/device-cert.pem", chain=o[o.index("out/device-cert.pem") + 1])
                check_state(got, old, o, n, new, what, n <= len(order))
                print("ok: %s" % what)
        if tmpfs:
            # filled before the run (0), then right after each rename
            for n in range(0, len(order) + 1):
                kept = os.path.join(top, "kept")
                restore()
                shutil.rmtree(kept, ignore_errors=True)
                os.mkdir(kept)
                fill = ["--fill"] if n == 0 else ["--fill-after-rename", str(n)]
                if n > 0 and not ptrace:
                    continue
                r = subprocess.run([FAULT, "--tmpfs", w, "--size", "65536", "--seed", pristine,
                                    "--keep", kept] + fill + ["--"] + args, capture_output=True, text=True)
                what = "%s, full after rename %d" % (label, n)
                got = tree(kept)
                o = order_of(order, got)
                new.update(cert="out/device-cert.pem", chain=o[o.index("out/device-cert.pem") + 1])
                if n < len(order):
                    check(r.returncode == 1, "%s: exit %d\n%s" % (what, r.returncode, r.stderr))
                    at = o[n].replace("(new)", "")
                    check("No space left on device" in r.stderr and "/" + at in r.stderr,
                          "%s: mfg did not say what and why: %s" % (what, r.stderr))
                else:
                    check(r.returncode == 0, "%s: exit %d\n%s" % (what, r.returncode, r.stderr))
                check_state(got, old, o, n + 1, new, what, False)
                print("ok: %s" % what)

    # the CA: made once, never replaced; killed at each rename, the files
    # renamed before are whole and the rest are not there
    if ptrace:
        order = ["root-key.pem", "root-cert.pem", "intermediate-key.pem", "intermediate-cert.pem"]
        ca2 = os.path.join(top, "ca2")
        for n in range(1, len(order) + 2):
            shutil.rmtree(ca2, ignore_errors=True)
            r = subprocess.run([FAULT, "--kill-at-rename", str(n), "--", MFG, "ca", "--dir", ca2],
                               capture_output=True, text=True)
            what = "ca, killed at rename %d" % n
            check(r.returncode == (128 + signal.SIGKILL if n <= len(order) else 0),
                  "%s: exit %d\n%s" % (what, r.returncode, r.stderr))
            check_state(tree(ca2), {}, order, n, {}, what, n <= len(order))
            print("ok: %s" % what)


if __name__ == "__main__":
    main()
