#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The ModemManager tests (suite 'mm'): real ModemManager, real mmcli,
the QMI simulator, our MM backend in between.

    test-mm.py CASE            run CASE in a fresh bench (cp-mm-bench)
    test-mm.py --inside CASE   what runs inside the bench

A case named KIND-CASE (mbim-provision, at-denied) runs CASE on that kind
of modem: the bench's cdc_mbim port in front of cp-mbim-sim, or its
option ttyUSB0 in front of cp-at-sim; the others run on the QMI modem.

Environment (set by meson): CP_MM_BENCH (the harness), CP_QMI_SIM,
CP_MBIM_SIM, CP_AT_SIM (the simulators; CP_MM_TEST_SIM overrides them),
CP_MM_PROVISION (the provisioning helper).
"""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import prereq  # noqa: E402

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
        m = re.match(r"\s*([\w.\-\[\]]+)\s*:\s*(.*)$", line)
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
    m = modem() or {}
    raise Fail("timed out waiting for %s (ModemManager: %s %s)"
               % (what, m.get("modem.generic.state", "no modem"),
                  m.get("modem.generic.state-failed-reason", "")))


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


def provision_argv(k=NEW_K, extra=(), adm1_value=None):
    d = os.environ["CP_MM_BENCH_DIR"]
    adm1 = os.path.join(d, "adm1")
    with open(os.open(adm1, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write((adm1_value or os.environ["CP_MM_BENCH_ADM1"]) + "\n")
    return [os.environ["CP_MM_PROVISION"], "--device", os.environ["CP_MM_BENCH_DEVICE"],
            "--backend", "mm", "--adm1", adm1, "--imsi", NEW_IMSI, "--plmn", PLMN,
            "--network-name", "cellprov", "--apn", APN, "--k", k, "--opc", NEW_OPC,
            "--registration-timeout", "20"] + list(extra)


# ---- cases ----------------------------------------------------------------

# What ModemManager shows for each kind of modem: its primary port, the
# port's type, the interface's driver, and the plugin (cp-at-sim says it
# is a Quectel BG96, which ModemManager's quectel plugin takes).
KIND_PORT = {"qmi": ("cdc-wdm0", "qmi", "qmi_wwan", "generic"),
             "mbim": ("cdc-wdm0", "mbim", "cdc_mbim", "generic"),
             "at": ("ttyUSB0", "at", "option", "quectel")}


def kind():
    return os.environ.get("CP_MM_BENCH_KIND", "qmi")


def listed(m, key):
    """The values of a list property of `mmcli -K` (KEY.value[N])."""
    return [v for k, v in m.items() if k.startswith(key + ".value[")]


def check_kind(m):
    port, ptype, driver, plugin = KIND_PORT[kind()]
    check(m.get("modem.generic.plugin") == plugin, "driven by the %s plugin" % plugin)
    check(m.get("modem.generic.primary-port") == port, "primary port %s" % port)
    check("%s (%s)" % (port, ptype) in listed(m, "modem.generic.ports"),
          "ModemManager probed it as %s" % ptype)
    check(driver in listed(m, "modem.generic.drivers"), "behind the %s driver" % driver)


def mm_resets():
    """ModemManager 1.20 resets QMI modems (DMS); for MBIM (without QMI over
    MBIM) and the generic AT modem its Reset() answers Unsupported."""
    if kind() == "qmi":
        return True
    r = mmcli("-m", "any", "--reset", check_rc=False)
    check(r.returncode != 0 and "Unsupported" in r.stderr,
          "mmcli --reset: ModemManager 1.20 does not reset this kind (%s)" % r.stderr.strip())
    return False


def check_card_restored(before):
    """Every elementary file of the card byte for byte as before."""
    d = sim_dump()
    efs = sorted(k for k in before if k.startswith("ef-"))
    check(len(efs) >= 5, "the simulator dumps the card's files (%s)" % ", ".join(efs))
    for ef in efs:
        check(d.get(ef) == before.get(ef), "%s is back to its old value, byte for byte" % ef)


def case_bench():
    """The bench itself: MM shows the old card registered; --reset works."""
    m = modem()
    check(m is not None, "mmcli -m any shows a modem")
    check(m.get("modem.generic.state") == "registered", "the modem is registered")
    check(m.get("modem.3gpp.operator-code") == PLMN, "on operator %s" % PLMN)
    check_kind(m)
    s = sim_card()
    check(s and s.get("sim.properties.imsi") == os.environ["CP_MM_BENCH_OLD_IMSI"],
          "mmcli -i any shows the card's IMSI")
    if not mm_resets():
        return
    mmcli("-m", "any", "--reset")
    wait("re-registration after --reset", registered_with(os.environ["CP_MM_BENCH_OLD_IMSI"]))
    check(int(sim_dump().get("resets", "0")) >= 1, "the simulator saw the reset")


def run_provision(*extra, k=NEW_K, adm1=None, timeout=90):
    r = subprocess.run(provision_argv(k=k, extra=extra, adm1_value=adm1), capture_output=True,
                       text=True, timeout=timeout)
    print(r.stdout, end="")
    if r.stderr.strip():
        print(r.stderr, end="", file=sys.stderr)
    return r.returncode, keyvals_eq(r.stdout)


def keyvals_eq(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and
                not line.startswith("step "))


def mm_log():
    with open(os.environ["CP_MM_BENCH_MM_LOG"], errors="replace") as f:
        return f.read()


def first_apn():
    r = mmcli("-m", "any", "--3gpp-profile-manager-list", "-K")
    apns = [v for k, v in keyvals(r.stdout).items() if k.endswith(".apn")]
    # -K lists the profiles as modem.3gpp.profile-manager.list.value[N]: the apn lines
    m = re.findall(r"apn: ([^,\s]+)", r.stdout)
    return (apns or m or [None])[0]


def case_provision():
    """Provision through ModemManager; mmcli shows the result; --reset works."""
    old = os.environ["CP_MM_BENCH_OLD_IMSI"]
    rc, out = run_provision()
    check(rc == 0, "cp-mm-provision succeeds (%s)" % out.get("message", ""))
    check(out.get("backend") == "mm", "through the ModemManager backend")
    check(out.get("registered-plmn") == PLMN, "registered on %s" % PLMN)
    check(out.get("imsi") == NEW_IMSI, "ModemManager reports the new IMSI to the backend")
    log = mm_log()
    check("device inhibition setup" in log and "device inhibition teardown" in log,
          "the backend inhibited the modem in ModemManager and released it")
    m = modem()
    check_kind(m)
    check(m and m.get("modem.generic.state") == "registered", "mmcli -m any: registered")
    check(m.get("modem.3gpp.operator-code") == PLMN, "mmcli -m any: operator id %s" % PLMN)
    check(m.get("modem.3gpp.operator-name") == OPERATOR, "mmcli -m any: operator '%s'" % OPERATOR)
    s = sim_card()
    check(s and s.get("sim.properties.imsi") == NEW_IMSI, "mmcli -i any: the new IMSI")
    check(s.get("sim.properties.imsi") != old, "no longer the old IMSI")
    d = sim_dump()
    check(d.get("imsi") == NEW_IMSI, "the card holds the new IMSI (simulator's own view)")
    check(d.get("network-last") == "registered", "the network accepted the card's AKA")
    check(int(d.get("network-attaches", "0")) >= 2 and int(d.get("resets", "0")) >= 1,
          "the modem was reset and attached again with the new card")
    check(d.get("apn") == APN, "the modem's profile holds the APN set through ModemManager")
    if not mm_resets():
        return
    mmcli("-m", "any", "--reset")
    m2 = wait("registration after mmcli --reset", registered_with(NEW_IMSI))[0]
    check(m2.get("modem.3gpp.operator-code") == PLMN, "mmcli --reset: registered again on %s" % PLMN)


def case_denied():
    """A wrong K: the network denies; the old card is back and ModemManager registers it."""
    old = os.environ["CP_MM_BENCH_OLD_IMSI"]
    before = sim_dump()
    rc, out = run_provision("--registration-timeout", "6", k="00112233445566778899aabbccddeeff")
    check(rc == 1, "cp-mm-provision fails")
    # The simulator reports the reject as QMI modems in limited service do,
    # which ModemManager shows as 3GPP registration "denied": the backend
    # says so instead of waiting for the timeout.
    check(out.get("error") == "registration-denied",
          "with registration-denied (got %s: %s)" % (out.get("error"), out.get("message")))
    check("denied" in out.get("message", ""), "the message says the network denied it")
    check(int(sim_dump().get("network-rejects", "0")) >= 1, "the network rejected the card's AKA")
    check_card_restored(before)
    m, s = wait("ModemManager registered with the old card", registered_with(old))
    check(s.get("sim.properties.imsi") == old, "mmcli -i any: the old IMSI")
    check(first_apn() == "internet", "the old APN is back")


def case_denied_idle():
    """A reject with every domain detached: ModemManager 1.20 shows "idle", not
    "denied"; the backend still ends with registration-denied, well before the
    registration timeout, and rolls back."""
    old = os.environ["CP_MM_BENCH_OLD_IMSI"]
    before = sim_dump()
    start = time.monotonic()
    rc, out = run_provision("--registration-timeout", "40", k="00112233445566778899aabbccddeeff")
    took = time.monotonic() - start
    check(rc == 1, "cp-mm-provision fails")
    check(out.get("error") == "registration-denied",
          "with registration-denied, not a timeout (got %s: %s)" % (out.get("error"), out.get("message")))
    check(took < 40, "before the registration timeout (%.1f s)" % took)
    check(re.search(r"3GPP registration state changed \(\w+ -> idle\)", mm_log()) is not None and
          "-> denied)" not in mm_log(), "while ModemManager showed the registration idle, never denied")
    check(int(sim_dump().get("network-rejects", "0")) >= 1, "the network rejected the card's AKA")
    check_card_restored(before)
    m, s = wait("ModemManager registered with the old card", registered_with(old))
    check(s.get("sim.properties.imsi") == old, "mmcli -i any: the old IMSI")


def case_killed():
    """Killing the provisioning process while the modem is inhibited gives it back."""
    old = os.environ["CP_MM_BENCH_OLD_IMSI"]
    before = sim_dump()
    proc = subprocess.Popen(provision_argv(extra=["--hang-at-backup"]), stdout=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip())
        if line.startswith("backup saved"):
            break
    check(any("taking the modem from its manager" in l for l in seen), "the process reached the inhibition")
    check(seen and seen[-1] == "backup saved", "and holds the modem at the backup hand-over")
    r = mmcli("-L")
    check("/Modem/" not in r.stdout, "ModemManager does not expose the inhibited modem")
    proc.kill()
    proc.wait()
    wait("the modem back in ModemManager", lambda: (modem() or {}).get("modem.generic.state")
         in ("disabled", "enabled", "searching", "registered"))
    check("owner disappeared from bus" in mm_log(),
          "ModemManager dropped the inhibition with our bus name")
    # ModemManager leaves a modem it gets back disabled: its user (here
    # the test, on a gateway NetworkManager) enables it.
    if modem().get("modem.generic.state") == "disabled":
        mmcli("-m", "any", "--enable")
    m, s = wait("the modem registered again", registered_with(old))
    check(s.get("sim.properties.imsi") == old, "with the old card")
    check(sim_dump().get("ef-imsi") == before.get("ef-imsi"), "nothing was written")


def case_crashed():
    """Killed (SIGKILL) while it holds the modem, after writing the card:
    ModemManager gets the modem back with the new files on the card; the
    journaled backup then puts every file back byte for byte (the daemon's
    crash recovery), and ModemManager registers the old card again."""
    old = os.environ["CP_MM_BENCH_OLD_IMSI"]
    before = sim_dump()
    backup = os.path.join(os.environ["CP_MM_BENCH_DIR"], "backup.bin")
    proc = subprocess.Popen(provision_argv(extra=["--backup-out", backup]), stdout=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip())
        if "closing the logical channel" in line:
            break
    proc.kill()
    proc.wait()
    check(any("writing the subscription" in l for l in seen) and "backup saved" in seen,
          "killed after the backup and the writes, while holding the modem")
    check(sim_dump().get("ef-imsi") != before.get("ef-imsi"), "the card holds the new IMSI file")
    wait("the modem back in ModemManager", lambda: (modem() or {}).get("modem.generic.state")
         in ("disabled", "enabled", "searching", "registered", "locked"))
    check("owner disappeared from bus" in mm_log(),
          "ModemManager dropped the inhibition with our bus name")
    argv = provision_argv()
    argv = argv[:argv.index("--imsi")] + ["--restore", backup]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    print(r.stdout, end="")
    out = keyvals_eq(r.stdout)
    check(r.returncode == 0 and out.get("restored") == "yes",
          "restore from the backup succeeds (%s)" % out.get("message", ""))
    check_card_restored(before)
    m, s = wait("ModemManager registered with the old card", registered_with(old))
    check(s.get("sim.properties.imsi") == old, "mmcli -i any: the old IMSI")


def case_restore():
    """A backup taken during provisioning puts the old card and APN back (crash recovery)."""
    old = os.environ["CP_MM_BENCH_OLD_IMSI"]
    before = sim_dump()
    backup = os.path.join(os.environ["CP_MM_BENCH_DIR"], "backup.bin")
    rc, out = run_provision("--backup-out", backup)
    check(rc == 0, "provisioning succeeds (%s)" % out.get("message", ""))
    check(os.stat(backup).st_mode & 0o077 == 0, "the backup file is private (0600)")
    wait("the new IMSI", registered_with(NEW_IMSI))
    argv = provision_argv()
    argv = argv[:argv.index("--imsi")] + ["--restore", backup]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    print(r.stdout, end="")
    out = keyvals_eq(r.stdout)
    check(r.returncode == 0 and out.get("restored") == "yes",
          "restore succeeds (%s)" % out.get("message", ""))
    check_card_restored(before)
    m, s = wait("ModemManager registered with the old card", registered_with(old))
    check(first_apn() == "internet", "the old APN is back")


def case_adm1():
    """A wrong ADM1 twice (2 retries): the second run does not spend the last attempt."""
    old = os.environ["CP_MM_BENCH_OLD_IMSI"]
    check(sim_dump().get("adm1-retries") == "2", "the card allows 2 wrong ADM1")
    rc, out = run_provision(adm1="87654321")
    check(rc == 1 and out.get("error") == "adm1", "a wrong ADM1 fails with adm1 (%s)"
          % out.get("message"))
    check(sim_dump().get("adm1-retries") == "1", "and spends one attempt")
    m, s = wait("the modem back in ModemManager, registered", registered_with(old))
    rc, out = run_provision(adm1="87654321")
    check(rc == 1 and out.get("error") == "adm1", "the second run fails with adm1 too")
    check("one ADM1 attempt left" in out.get("message", ""), "refusing to try (%s)"
          % out.get("message"))
    d = sim_dump()
    check(d.get("adm1-retries") == "1", "the last attempt is not spent")
    check(d.get("card-updates") == "0", "nothing was written")
    m, s = wait("the modem back in ModemManager, registered", registered_with(old))
    check(s.get("sim.properties.imsi") == old, "mmcli -i any: the old IMSI")


def case_auto():
    """AUTO picks ModemManager when it manages the modem, QMI direct otherwise."""
    rc, out = run_provision("--backend", "auto")
    check(out.get("backend") == "mm", "AUTO with ModemManager managing the modem: mm")
    check(rc == 0, "and provisions (%s)" % out.get("message", ""))
    argv = provision_argv(extra=["--backend", "auto"])
    argv[argv.index("--device") + 1] = "/dev/cp-not-a-modem"
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    out = keyvals_eq(r.stdout)
    print(r.stdout, end="")
    # The port name only reaches the simulator through qmi-proxy, which
    # serves any path: what matters here is the choice.
    check(out.get("backend") == "qmi", "AUTO for a port ModemManager does not manage: qmi")


def case_auto_probing():
    """AUTO started while ModemManager still probes the modem (the bench
    reports the ports and goes on at once): it waits for the probing to end
    and picks ModemManager, instead of QMI beside a probing ModemManager."""
    check(modem() is None or modem().get("modem.generic.state") in ("unknown", "initializing"),
          "ModemManager has not finished probing the modem yet")
    rc, out = run_provision("--backend", "auto")
    check(out.get("backend") == "mm", "AUTO waited for ModemManager and chose it (got %s)"
          % out.get("backend"))
    check(rc == 0, "and provisions (%s)" % out.get("message", ""))
    m, s = wait("the new IMSI registered", registered_with(NEW_IMSI))
    check(m.get("modem.3gpp.operator-code") == PLMN, "mmcli -m any: registered on %s" % PLMN)


NEW_SUB = ["--subscriber", " ".join((NEW_IMSI, NEW_K, NEW_OPC, NEW_SQN))]

CASES = {
    "bench": (case_bench, []),
    "provision": (case_provision, NEW_SUB),
    "denied": (case_denied, NEW_SUB),
    "denied-idle": (case_denied_idle, NEW_SUB + ["--sim-arg=--reject-detached"]),
    "killed": (case_killed, NEW_SUB),
    "crashed": (case_crashed, NEW_SUB),
    "restore": (case_restore, NEW_SUB),
    "auto": (case_auto, NEW_SUB),
    "auto-probing": (case_auto_probing, NEW_SUB + ["--wait", "none"]),
    "adm1": (case_adm1, NEW_SUB + ["--sim-arg=--adm1-retries=2"]),
}


KIND_CASES = ("bench", "provision", "denied", "killed", "crashed", "restore")
for _kind in ("mbim", "at"):
    for _case in KIND_CASES:
        CASES[_kind + "-" + _case] = CASES[_case]


def case_kind(name):
    k, _, rest = name.partition("-")
    return (k, rest) if k in ("mbim", "at") and rest in KIND_CASES else ("qmi", name)


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
    k, _ = case_kind(name)
    sim = os.environ.get("CP_MM_TEST_SIM") or os.environ.get("CP_%s_SIM" % k.upper())
    if not sim:
        prereq.missing("test-mm: the %s simulator is not built" % k)
    argv = ["/usr/bin/python3", os.environ["CP_MM_BENCH"], "--kind", k, "--sim", sim] + bench_args
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
