#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cp-bench-registered: time to registered. The device-side path from the
profile's last byte on the tag to the receipt (cellprovd's log: the written
message delivered, then the journal write that makes the device
provisioned), on the simulated bench, with the QMI simulator's reset and
registration delays set to what real modules take (docs/daemon.md, "Time
to registered", cites them). Prints each phase, the hardware's share (the
simulator's configured delays) and the device's own share (the rest: the
daemon's verification, key schedule, QMI requests, its polling of the
modem, and its journal writes).

Usage: cp-bench-registered.py BUILDDIR [RESET_MS REGISTRATION_MS]"""

import datetime
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "e2e"))
from e2ebench import E2E, Fail  # noqa: E402

# A module's reboot: Quectel EG25-G, RDY (AT commands accepted) 12 s or
# more after power-on (EG25-G Hardware Design V1.3, figure 12, as Quectel
# states it at forums.quectel.com/t/eg25g-timeout-for-status-pin-to-go-low
# -and-uart-to-become-ready/8081).
RESET_MS = 12000
# Attach: Microsoft's mobile broadband driver requirements give a packet
# attach 1 s at best and 5 s at worst (learn.microsoft.com, Windows
# hardware, "MB miniport driver performance requirements"); the worst.
REGISTRATION_MS = 5000

STAMP = re.compile(r"^cellprovd-[A-Za-z]+: (\d\d:\d\d:\d\d\.\d\d\d): (.*)$")


def events(log):
    """(seconds since midnight, message) of every stamped line."""
    out = []
    for line in log.splitlines():
        m = STAMP.match(line)
        if m:
            t = datetime.datetime.strptime(m.group(1), "%H:%M:%S.%f")
            out.append((t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6, m.group(2)))
    return out


def first(evs, text, after=0.0):
    for t, msg in evs:
        if t >= after and text in msg:
            return t
    raise Fail("no %r in cellprovd's log" % text)


def main():
    build = sys.argv[1]
    reset_ms, reg_ms = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (RESET_MS, REGISTRATION_MS)
    b = E2E(build)
    try:
        b.setup()
        b.start_bus()
        info = b.make_gateway()
        with open(info["config"]) as f:
            conf = f.read()
        # the registration wait starts after the reset: room for both
        conf = re.sub(r"registration-timeout=\d+", "registration-timeout=120", conf)
        with open(info["config"], "w") as f:
            f.write(conf)
        b.start_modem(extra=["--reset-delay", str(reset_ms), "--registration-delay", str(reg_ms)])
        b.start_cellprovd(debug=True)
        since = len(b.daemon_log())
        comp, tag, after, rc, out = b.tap()
        if rc != 0:
            raise Fail("the phone could not write the profile: %s" % out)
        b.wait_state("provisioned", timeout=(reset_ms + reg_ms) // 1000 + 120)
        b.finish_tap(comp, after)
        evs = events(b.daemon_log()[since:])
        t0 = first(evs, "reading the written message")
        if os.environ.get("CP_BENCH_VERBOSE"):
            for t, msg in evs:
                if t >= t0 and ("state:" in msg or "modem:" in msg):
                    print("%8.3f  %s" % (t - t0, msg))
        t_verified = first(evs, "-> verified", t0)
        t_writing = first(evs, "-> provisioning", t0)
        t_reset = first(evs, "-> resetting", t0)
        t_end = first(evs, "-> provisioned", t_reset)
        # the modem's last step (the IMSI it reports), once registered
        t_check = max(t for t, msg in evs if t0 <= t <= t_end and msg.startswith("modem: ("))
        total = t_end - t0
        hardware = (reset_ms + reg_ms) / 1000
        print("time to registered: the profile's last byte to the receipt (s)")
        print("%-58s%10.3f" % ("verify and decrypt the profile", t_verified - t0))
        print("%-58s%10.3f" % ("open the modem, read and journal the backup", t_writing - t_verified))
        print("%-58s%10.3f" % ("write the USIM and the APN, take the modem offline", t_reset - t_writing))
        print("%-58s%10.3f" % ("reset and registration (simulator: %.1f + %.1f s)" % (reset_ms / 1000, reg_ms / 1000),
                               t_check - t_reset))
        print("%-58s%10.3f" % ("check the IMSI, journal the receipt", t_end - t_check))
        print("%-58s%10.3f" % ("total", total))
        print("%-58s%10.3f" % ("the hardware's share (reset + registration)", hardware))
        print("%-58s%10.3f  (%.1f%%)" % ("the device's own share", total - hardware,
                                         100.0 * (total - hardware) / total))
    except Fail as e:
        print("FAILED:", e)
        b.dump_logs()
        return 1
    finally:
        b.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
