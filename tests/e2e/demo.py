#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The README's main job: the whole flow on the simulated bench, each step
(1-10 of docs/protocol.md) printed as it happens with the line of the log that
shows it, ending with `cellprovctl status` on a registered device.
cellprov-companion taps through the simulated RF link: two simulated
PN532s, real libnfc on both sides. Everything it starts is stopped at the
end.

Usage: demo.py BUILDDIR"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2ebench import FIRST_IMSI, E2E, Fail  # noqa: E402


def grep(path, pattern, timeout=30):
    """The first log line matching pattern, waiting for it."""
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            for line in open(path):
                if rx.search(line):
                    return line.strip()
        except OSError:
            pass
        time.sleep(0.05)
    raise Fail("no line matching %r in %s" % (pattern, path))


def show(n, text, evidence=None):
    print("step %2d: %s" % (n, text), flush=True)
    if evidence:
        print("         | %s" % re.sub(r"^\S+-(Message|INFO): [0-9:.]+: |^\*\* Message: [0-9:.]+: ", "",
                                      evidence)[:150], flush=True)


def main():
    b = E2E(sys.argv[1])
    ok = False
    try:
        print("==> the network side: manufacturer CA, certificate server (HTTPS), AUSF/UDM, SM", flush=True)
        b.setup()
        b.start_bus()
        print("==> cellprov-mfg makes the device: key, certificate, DeviceID, cellprov.conf", flush=True)
        info = b.make_gateway()
        print("    DeviceID %s\n    %s" % (info["device-id"], info["certificate-url"]), flush=True)
        print("==> the device: QMI modem simulator (programmable USIM, authenticating network), "
              "its PN532 (simulated), cellprovd", flush=True)
        b.start_modem()
        b.link_up()
        b.start_cellprovd(debug=False)
        dlog, smlog, ausflog = b.path("cellprovd.log"), b.path("sm.log"), b.path("ausf.log")

        clog = b.path("companion.log")
        print("==> cellprov-companion on its own PN532, joined to the device's by the simulated RF link",
              flush=True)
        comp = b.companion_nfc()
        show(1, "the companion reads the device's tag over NFC: certificate URL + signed device record",
             grep(clog, r"\(1/4\) read device"))
        show(2, "companion -> SM: URL and device record, over HTTPS, companion authenticated",
             grep(smlog, r"provisioning asked by companion"))
        show(3, "SM -> CA: GET the certificate chain at the URL", None)
        show(4, "SM: chain verified to its trust anchor, DeviceID matches the key, "
             "attestation signature and counter fresh", None)
        show(5, "SM -> AUSF/UDM: add the device (companion SUPI, DeviceID, device key)",
             grep(ausflog, r"device %s" % info["device-id"]))
        show(6, "AUSF/UDM: device SUPI assigned, K' derived, credentials encrypted to the device key (ECIES)",
             None)
        show(7, "SM: fresh nonce, K'' and K_prof derived",
             grep(smlog, r"provisioned: profile_seq"))
        show(8, "SM -> companion: the profile (MAC'd with K_prof), K'' and the nonce",
             grep(clog, r"\(2/4\) the SM answered"))
        show(9, "the companion writes the profile to the device over NFC",
             grep(clog, r"\(3/4\) wrote profile"))
        print("         | %s" % re.sub(r"^\S+: [0-9:.]+: ", "", grep(dlog, r"state: idle -> profile-received")),
              flush=True)
        show(10, "the device verifies and decrypts the profile", grep(dlog, r"profile \d+ verified"))
        for pat in (r"journal: backup of the old USIM values saved", r"modem: \(\d+/\d+\) writing the subscription",
                    r"modem: \(\d+/\d+\) setting the APN", r"modem: \(\d+/\d+\) resetting the modem",
                    r"modem: \(\d+/\d+\) waiting for registration", r"state: registering -> provisioned"):
            print("         | %s" % re.sub(r"^\S+: [0-9:.]+: ", "", grep(dlog, pat, timeout=60)), flush=True)
        rc, res = b.companion_result(comp)
        if rc != 0 or not res["receipt"]["verified"]:
            raise Fail("the companion did not verify the receipt: %s" % (res,))
        print("         | %s" % grep(clog, r"\(4/4\) receipt verified"), flush=True)
        print("         | the companion read the receipt over NFC: %s, registered on %s, MAC verified with K''"
              % (res["receipt"]["status"], res["receipt"].get("registration")), flush=True)
        taps = b.link_sessions()
        print("         | %d NFC sessions on the RF link, %d APDUs, %d bytes over the air"
              % (len(taps), sum(int(t["apdus"]) for t in taps), sum(int(t["rf-bytes"]) for t in taps)),
              flush=True)
        m = b.modem_state()
        print("         | the modem reports IMSI %s********** and the network says %s"
              % (m.get("modem-imsi", "")[:5], m.get("network-last")), flush=True)
        if m.get("modem-imsi") != FIRST_IMSI or m.get("network-last") != "registered":
            raise Fail("the modem is not registered on the new subscription")
        print("==> cellprovctl status", flush=True)
        sys.stdout.write(b.ctl_text("status"))
        ok = True
    except Fail as e:
        print("FAILED:", e)
        b.dump_logs()
    finally:
        b.teardown()
        print("==> stopped everything it started", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
