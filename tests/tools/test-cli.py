#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What every installed program shares on its command line: --version
prints one line, "PROGRAM VERSION", and exits 0."""

import os
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=30, **kw)


def check_version(prog, version):
    name = os.path.basename(prog)
    for opt in ("--version", "-V"):
        r = run([prog, opt])
        check(r.returncode == 0, "%s %s: exit %d: %s" % (name, opt, r.returncode, r.stderr))
        check(r.stdout == "%s %s\n" % (name, version),
              "%s %s: want one line '%s %s', got %r" % (name, opt, name, version, r.stdout))
        check(r.stderr == "", "%s %s wrote to stderr: %r" % (name, opt, r.stderr))


def main():
    version, progs = sys.argv[1], sys.argv[2:]
    check(progs, "no program to test")
    for prog in progs:
        check_version(prog, version)
    print("ok: %d programs" % len(progs))


if __name__ == "__main__":
    main()
