#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The ModemManager tests (suite 'mm'): real ModemManager, real mmcli,
the QMI simulator, our MM backend in between.

    test-mm.py CASE            run CASE in a fresh bench (cp-mm-bench)
    test-mm.py --inside CASE   what runs inside the bench

Environment (set by meson): CP_MM_BENCH (the harness), CP_QMI_SIM (the
simulator; CP_MM_TEST_SIM overrides it), CP_MM_PROVISION (the provisioning
helper).
"""

import os
import re
import signal
import subprocess
import sys
import time

SKIP = 77

# The subscription the tests provision: a subscriber of the simulated
# network, as the AUSF exports it.
NEW_IMSI = "001010000000001"
NEW_K = "465b5ce8b199b49faa5f0a2ee238a6bc"
NEW_OPC = "cd63cb71954a9f4e48a5994e37a02baf"
NEW_SQN = "000000000020"
APN = "iot.cellprov"
PLMN = "00101"
OPERATOR = "cellprov test network"


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok: " + what, flush=True)


def mmcli(*args, check_rc=True):
    r = subprocess.run(["mmcli"] + list(args), capture_output=True, text=True, timeout=60)
    if check_rc and r.returncode != 0:
        raise Fail("mmcli %s failed: %s" % (" ".join(args), r.stderr.strip()))
    return r


def keyvals(text):
    props = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\w.\-]+)\s*:\s*(.*)$", line)
        if m:
            props[m.group(1)] = m.group(2).strip()
    return props


def modem():
    r = mmcli("-m", "any", "-K", check_rc=False)
    return keyvals(r.stdout) if r.returncode == 0 else None


def sim_card():
    r = mmcli("-i", "any", "-K", check_rc=False)
    return keyvals(r.stdout) if r.returncode == 0 else None


def wait(what, pred, timeout=30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise Fail("timed out waiting for " + what)


def registered_with(imsi):
    def pred():
        m = modem()
        s = sim_card()
        if not m or not s:
            return None
        if m.get("modem.generic.state") not in ("registered", "connected"):
            return None
        return (m, s) if s.get("sim.properties.imsi") == imsi else None
    return pred


def sim_dump():
    with open(os.environ["CP_MM_BENCH_SIM_DUMP"]) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def provision_argv(k=NEW_K, extra=()):
    d = os.environ["CP_MM_BENCH_DIR"]
    adm1 = os.path.join(d, "adm1")
    with open(os.open(adm1, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(os.environ["CP_MM_BENCH_ADM1"] + "\n")
    return [os.environ["CP_MM_PROVISION"], "--device", os.environ["CP_MM_BENCH_DEVICE"],
            "--backend", "mm", "--adm1", adm1, "--imsi", NEW_IMSI, "--plmn", PLMN,
            "--network-name", "cellprov", "--apn", APN, "--k", k, "--opc", NEW_OPC,
            "--registration-timeout", "20"] + list(extra)


# ---- cases ----------------------------------------------------------------

def case_bench():
    """The bench itself: MM shows the old card registered; --reset works."""
    m = modem()
    check(m is not None, "mmcli -m any shows a modem")
    check(m.get("modem.generic.state") == "registered", "the modem is registered")
    check(m.get("modem.3gpp.operator-code") == PLMN, "on operator %s" % PLMN)
    check(m.get("modem.generic.plugin") == "generic", "driven by the generic QMI plugin")
    s = sim_card()
    check(s and s.get("sim.properties.imsi") == os.environ["CP_MM_BENCH_OLD_IMSI"],
          "mmcli -i any shows the card's IMSI")
    mmcli("-m", "any", "--reset")
    wait("re-registration after --reset", registered_with(os.environ["CP_MM_BENCH_OLD_IMSI"]))
    check(int(sim_dump().get("resets", "0")) >= 1, "the simulator saw the reset")


CASES = {
    "bench": (case_bench, []),
}


def inside(name):
    fn, _ = CASES[name]
    try:
        fn()
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        log = os.environ.get("CP_MM_BENCH_MM_LOG")
        if log and os.path.exists(log):
            print("---- last ModemManager log lines ----")
            with open(log, errors="replace") as f:
                for line in f.readlines()[-40:]:
                    if "<<<<<<" not in line and ">>>>>>" not in line:
                        print(line.rstrip())
        return 1
    return 0


def outside(name):
    _, bench_args = CASES[name]
    sim = os.environ.get("CP_MM_TEST_SIM") or os.environ.get("CP_QMI_SIM")
    argv = ["/usr/bin/python3", os.environ["CP_MM_BENCH"], "--sim", sim] + bench_args
    argv += ["--", "/usr/bin/python3", os.path.abspath(__file__), "--inside", name]
    return subprocess.run(argv).returncode


def main():
    args = sys.argv[1:]
    if args and args[0] == "--inside":
        return inside(args[1])
    if len(args) != 1 or args[0] not in CASES:
        print("usage: test-mm.py CASE   (%s)" % ", ".join(sorted(CASES)), file=sys.stderr)
        return 2
    return outside(args[0])


if __name__ == "__main__":
    sys.exit(main())
