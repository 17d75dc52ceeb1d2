#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The main job with ModemManager in the middle: the whole flow of
tests/e2e/demo.py (the e2e bench: manufacturer CA, certificate server, AUSF,
SM, cellprov-mfg, cellprovd on the PN532 link, the companion) but with
cellprovd configured `backend=mm`, inside cp-mm-bench: the real
ModemManager owns the modem simulator (QMI, or with --modem an MBIM or AT
one), cellprovd takes the modem from it only to write the USIM and leaves
it registered. Ends with what the gateway's user sees: `mmcli -m any` and
`mmcli -i any`.

    demo-mm.py [--modem qmi|mbim|at] BUILDDIR
                                  the demo (meson compile -C BUILDDIR
                                  e2e-demo-mm, e2e-demo-mm-mbim, e2e-demo-mm-at)
    demo-mm.py --check [--modem K] BUILDDIR
                                  the same flow with assertions (tests mm-e2e*)

Exit status: 0 done, 1 failed, 77 where cp-mm-bench cannot run (not root,
no namespaces; 1 under CI=true or CP_REQUIRE_ALL=1)."""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(SOURCE, "tests", "e2e"))
from e2ebench import ADM1, FIRST_IMSI, E2E, Fail  # noqa: E402

PLMN = "00101"
OPERATOR = "cellprov test network"


def say(text):
    print(text, flush=True)


def mmcli(*args):
    return subprocess.run(["mmcli"] + list(args), capture_output=True, text=True, timeout=60)


def mm_keyvals(*args):
    r = mmcli(*(list(args) + ["-K"]))
    props = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\w.\-]+)\s*:\s*(.*)$", line)
        if m:
            props[m.group(1)] = m.group(2).strip()
    return props


def log_line(path, pattern, timeout=60):
    """The first line of a log matching pattern, waiting for it."""
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    if rx.search(line):
                        return re.sub(r"^\S+: [0-9:.]+: ", "", line.strip())
        except OSError:
            pass
        time.sleep(0.05)
    raise Fail("no line matching %r in %s" % (pattern, path))


class Checker:
    def __init__(self, strict):
        self.strict = strict

    def __call__(self, cond, what):
        if not cond:
            raise Fail(what)
        if self.strict:
            say("ok: " + what)


def configure_mm(config):
    """cellprov-mfg's config, with the modem that ModemManager manages in
    the bench: backend=mm, its port (a QMI or MBIM control port, reached
    through the proxy ModemManager uses too; or the AT tty)."""
    want = {
        "backend": "mm",
        "device": os.environ["CP_MM_BENCH_DEVICE"],
        "proxy": "true",
        "registration-timeout": "30",
    }
    out, section, seen = [], None, set()
    for line in open(config).read().splitlines():
        m = re.match(r"\[(.+)\]", line)
        if m:
            if section == "modem":
                out += ["%s=%s" % (k, v) for k, v in want.items() if k not in seen]
            section = m.group(1)
        elif section == "modem" and "=" in line and line.split("=", 1)[0].strip() in want:
            key = line.split("=", 1)[0].strip()
            seen.add(key)
            line = "%s=%s" % (key, want[key])
        out.append(line)
    if section == "modem":
        out += ["%s=%s" % (k, v) for k, v in want.items() if k not in seen]
    with open(config, "w") as f:
        f.write("\n".join(out) + "\n")


def inside(builddir, strict):
    check = Checker(strict)
    # the bench's network namespace starts with loopback down; the network
    # side (lighttpd, AUSF, SM) lives on it
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    if os.environ["CP_MM_BENCH_ADM1"] != ADM1:
        raise Fail("the bench's card has another ADM1 than the e2e bench's device config")
    b = E2E(builddir, say_steps=True)
    ok = False
    try:
        say("==> the network side: manufacturer CA, certificate server (HTTPS), AUSF/UDM, SM")
        b.setup()
        b.start_bus()
        say("==> cellprov-mfg makes the device; its cellprov.conf gets backend=mm")
        info = b.make_gateway()
        configure_mm(info["config"])
        say("    DeviceID %s" % info["device-id"])
        # The AUSF will give the device FIRST_IMSI with these credentials:
        # the simulated network learns them, as from the AUSF's export.
        k, opc = b.usim_credentials()
        with open(os.environ["CP_MM_BENCH_SUBSCRIBERS"], "a") as f:
            f.write("%s %s %s 000000000000\n" % (FIRST_IMSI, k, opc))
        b.qmi_dump = os.environ["CP_MM_BENCH_SIM_DUMP"]
        before = mm_keyvals("-i", "any")
        old_imsi = before.get("sim.properties.imsi")
        m = mm_keyvals("-m", "any")
        say("==> ModemManager manages the %s modem on %s: %s, SIM IMSI %s*****"
            % (os.environ["CP_MM_BENCH_KIND"].upper(), m.get("modem.generic.primary-port"),
               m.get("modem.generic.state"), (old_imsi or "")[:10]))
        check(old_imsi == os.environ["CP_MM_BENCH_OLD_IMSI"], "ModemManager shows the old card")

        say("==> cellprovd (backend=mm) on the PN532 simulator")
        b.start_cellprovd(debug=False)
        dlog = b.path("cellprovd.log")
        comp, tag, after, rc, out = b.tap()
        check(rc == 0, "the phone wrote the profile")
        say("step 10: the device verifies the profile and provisions through ModemManager")
        for pat in (r"profile \d+ verified",
                    r"modem: \(\d+/\d+\) taking the modem from its manager",
                    r"journal: backup of the old USIM values saved",
                    r"modem: \(\d+/\d+\) writing the subscription",
                    r"modem: \(\d+/\d+\) resetting the modem",
                    r"modem: \(\d+/\d+\) giving the modem back to its manager",
                    r"modem: \(\d+/\d+\) setting the APN",
                    r"modem: \(\d+/\d+\) waiting for registration",
                    r"state: registering -> provisioned"):
            say("         | %s" % log_line(dlog, pat)[:150])
        b.wait_state("provisioned", timeout=60)
        rc, res = b.finish_tap(comp, after)
        receipt = res.get("receipt") or {}
        check(rc == 0 and receipt.get("verified") and receipt.get("status") == "provisioned",
              "the companion verified the provisioned receipt with K'' (%s)" % res.get("error"))
        say("         | the companion read the receipt: %s, registered on %s, MAC verified with K''"
            % (receipt.get("status"), receipt.get("registration")))
        check(receipt.get("registration") == PLMN, "the receipt names %s" % PLMN)

        st = b.ctl("status").json
        check(st["network"]["operator"].startswith(PLMN), "cellprovctl: operator %s" % PLMN)
        with open(os.environ["CP_MM_BENCH_MM_LOG"], errors="replace") as f:
            mmlog = f.read()
        check("device inhibition setup" in mmlog and "device inhibition teardown" in mmlog,
              "ModemManager saw the inhibition taken and released")
        m = mm_keyvals("-m", "any")
        s = mm_keyvals("-i", "any")
        check(m.get("modem.generic.state") in ("registered", "connected"),
              "mmcli -m any: registered (%s)" % m.get("modem.generic.state"))
        check(m.get("modem.3gpp.operator-code") == PLMN, "mmcli -m any: operator id %s" % PLMN)
        check(m.get("modem.3gpp.operator-name") == OPERATOR, "mmcli -m any: operator '%s'" % OPERATOR)
        check(s.get("sim.properties.imsi") == FIRST_IMSI, "mmcli -i any: the new IMSI")
        d = b.modem_state()
        check(d.get("imsi") == FIRST_IMSI and d.get("network-last") == "registered",
              "the network accepted the AKA of the card's new K (simulator's view)")
        check(d.get("apn") not in (None, "", "internet"),
              "the modem's profile holds the profile's APN, set through ModemManager (%s)"
              % d.get("apn"))

        say("==> cellprovctl status")
        sys.stdout.write(b.ctl_text("status"))
        for args in (("-m", "any"), ("-i", "any")):
            say("==> mmcli %s" % " ".join(args))
            r = mmcli(*args)
            sys.stdout.write(r.stdout + r.stderr)
        ok = True
    except Fail as e:
        say("FAILED: %s" % e)
        b.dump_logs()
    finally:
        b.teardown()
        say("==> stopped everything it started")
    return 0 if ok else 1


SIMS = {"qmi": "tests/sim/qmi/cp-qmi-sim", "mbim": "tests/sim/mbim/cp-mbim-sim",
        "at": "tests/sim/at/cp-at-sim"}


def outside(builddir, strict, modem):
    sim = os.path.join(builddir, SIMS[modem])
    argv = ["/usr/bin/python3", os.path.join(HERE, "cp-mm-bench"), "--kind", modem, "--sim", sim,
            "--", "/usr/bin/python3", os.path.abspath(__file__), "--inside"]
    if strict:
        argv.append("--check")
    return subprocess.run(argv + [os.path.abspath(builddir)]).returncode


def main():
    args = sys.argv[1:]
    inner = "--inside" in args
    strict = "--check" in args
    rest = [a for a in args if a not in ("--inside", "--check")]
    modem = "qmi"
    if len(rest) == 3 and rest[0] == "--modem" and rest[1] in SIMS:
        modem, rest = rest[1], rest[2:]
    if len(rest) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    return inside(rest[0], strict) if inner else outside(rest[0], strict, modem)


if __name__ == "__main__":
    sys.exit(main())
