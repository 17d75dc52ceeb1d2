#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A missing prerequisite skips (77) on a developer's machine and fails (1)
where everything must run (CI=true or CP_REQUIRE_ALL=1), with the reason
printed either way: the helpers of each language (tests/prereq.py,
tests/prereq.sh, tests/unit/cp-test.h), then two real tests with a program
taken off PATH (nfc-ndef-npm without node, the ModemManager bench without
unshare).

    test-prereq.py CP_TEST_PREREQ_EXE"""

import os
import subprocess
import sys
import tempfile

TESTS = os.path.dirname(os.path.abspath(__file__))
failed = []


def expect(what, argv, reason, env_extra=None, cwd=None):
    for extra, want in (({}, 77), ({"CP_REQUIRE_ALL": "1"}, 1), ({"CI": "true"}, 1)):
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "CP_REQUIRE_ALL")}
        env.update(env_extra or {})
        env.update(extra)
        r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
        out = r.stdout + r.stderr
        ok = r.returncode == want and reason in out and ("SKIP" if want == 77 else "FAIL") in out
        print("%s: %s with %s: exit %d%s" % ("ok" if ok else "FAIL", what, extra or "nothing set",
                                            r.returncode, "" if ok else "\n" + out))
        if not ok:
            failed.append(what)


def main():
    exe = sys.argv[1]
    py = sys.executable
    pyenv = {"PYTHONPATH": TESTS}
    expect("prereq.missing", [py, "-c", "import prereq; prereq.missing('no frobnicator')"],
           "no frobnicator", pyenv)
    expect("prereq.partly + status", [py, "-c", "import sys, prereq; prereq.partly('half of it');"
                                      " sys.exit(prereq.status(0))"], "half of it", pyenv)
    sh = os.path.join(TESTS, "prereq.sh")
    expect("prereq_missing", ["sh", "-c", ". %s; prereq_missing no frobnicator" % sh], "no frobnicator")
    expect("prereq_partly + prereq_status",
           ["sh", "-c", ". %s; prereq_partly half of it; prereq_status; exit 0" % sh], "half of it")
    expect("cp_test_missing", [exe, "missing", "no frobnicator"], "no frobnicator")
    expect("cp_test_partly + cp_test_done", [exe, "partly", "half of it"], "half of it")
    # a partly-run test that failed fails, whatever the environment
    r = subprocess.run([py, "-c", "import sys, prereq; prereq.partly('x'); sys.exit(prereq.status(1))"],
                       env=dict(os.environ, PYTHONPATH=TESTS), capture_output=True)
    if r.returncode != 1:
        failed.append("a failure stays a failure")

    # Real tests with a program missing: PATH holds only what they need
    # to get that far.
    with tempfile.TemporaryDirectory() as d:
        for prog in ("dirname", "mount", "dbus-daemon", "mmcli"):
            os.symlink("/usr/bin/" + prog if os.path.exists("/usr/bin/" + prog) else "/bin/" + prog,
                       os.path.join(d, prog))
        expect("nfc-ndef-npm without node", ["/bin/sh", os.path.join(TESTS, "integration", "nfc",
                                                                     "test-ndef-npm.sh")],
               "no node", {"PATH": d, "CP_NPM_CACHE": d})
        if os.geteuid() == 0:
            expect("cp-mm-bench without unshare",
                   [py, os.path.join(TESTS, "integration", "mm", "cp-mm-bench"), "--sim", "/bin/true", "--", "true"],
                   "unshare not found", {"PATH": d})
    if failed:
        print("FAIL: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
