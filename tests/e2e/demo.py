#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The README's main job: the whole flow on the simulated bench, each step
(1-10 of docs/protocol.md) printed as it happens with the line of the log that
shows it, ending with `cellprovctl status` on a registered device.
cellprov-companion taps through the simulated RF link: two simulated
PN532s, real libnfc on both sides. Everything it starts is stopped at the
end.

With --ble: the same flow over Bluetooth LE: cellprovd serves its GATT
service on hci0 of the BlueZ stand-in ([ble] adapter=hci0; its NFC tag
stays up beside it) and cellprov-companion --transport ble scans, connects
and runs its three requests from hci1.

With --lifecycle: the device's whole life instead: a claim, a
re-provisioning with new keys, a transfer to a second owner, a
decommission (the card back to its original values) and a new claim by
the first owner, each ending with `cellprovctl status` and the AUSF's
view of the device.

With --modem at or --modem mbim: the same flow with cellprovd driving an
AT module (cp-at-sim, backend=at) or an MBIM module (cp-mbim-sim through
the bench's own mbim-proxy, backend=mbim) instead of the QMI one.

Usage: demo.py BUILDDIR [--ble | --lifecycle] [--modem qmi|at|mbim]"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2ebench import FIRST_IMSI, E2E, Fail  # noqa: E402

MODEM_NAMES = {"qmi": "QMI", "at": "AT", "mbim": "MBIM"}
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE, "tests", "sim", "bluez"))
import bluezbench  # noqa: E402


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


def ausf_view(b):
    view = b.ausf_view()
    if not view:
        print("    AUSF: no subscriber for the device", flush=True)
    for supi, (owner, gens) in sorted(view.items()):
        print("    AUSF: subscriber %s********** of companion %s**********, key generation%s %s"
              % (supi[:5], owner[:5], "s" if len(gens) > 1 else "", ", ".join(map(str, gens))), flush=True)


def status(b):
    print("    $ cellprovctl status", flush=True)
    sys.stdout.write("".join("    " + l + "\n" for l in b.ctl_text("status").splitlines()))
    ausf_view(b)


def chapter(n, text, res):
    if res[0] != 0:
        raise Fail("%s: %s" % (text, res[1].get("error")))
    r = res[1]
    print("    companion: %s" % ", ".join("%s %s" % (k, r[k]) for k in
                                          ("operation", "binding-version", "replaces", "generation")
                                          if k in r), flush=True)
    if "receipt" in r:
        print("    receipt: %s%s; the SM: %s, %s" % (r["receipt"]["status"],
                                                 ", MAC verified with K''" if r["receipt"]["verified"] else "",
                                                 r["relay"]["result"], r["relay"]["action"]), flush=True)


def lifecycle(modem):
    b = E2E(sys.argv[1], modem=modem)
    ok = False
    try:
        print("==> the network side (certificate server, AUSF, SM), a device from cellprov-mfg, "
              "the %s modem simulator, cellprovd, two companions ('bench' and 'neighbour')" % MODEM_NAMES[modem],
              flush=True)
        b.setup()
        b.start_bus()
        info = b.make_gateway()
        dev = info["device-id"]
        b.start_modem()
        original = b.card()
        b.link_up()
        b.start_cellprovd(debug=False)
        print("    DeviceID %s; the card: IMSI %s**********" % (dev, original and b.modem_state()["imsi"][:5]),
              flush=True)
        print("==> 1. claim: 'bench' taps the device (cellprov-companion)", flush=True)
        chapter(1, "claim", b.owner_step([]))
        b.wait_state("provisioned")
        status(b)
        print("==> 2. re-provision: cellprov-companion reprovision %s (new keys, same SUPI)" % dev, flush=True)
        chapter(2, "reprovision", b.owner_step(["reprovision", dev]))
        status(b)
        print("==> 3. transfer: 'bench' asks for a token for 'neighbour' (transfer-token), "
              "'neighbour' taps with it (accept-transfer)", flush=True)
        r = b.run([b.prog("tools/cellprov-companion"), "-J", "--sm", "https://127.0.0.1:%d" % b.sm_port,
                   "--sm-ca", b.tls_ca, "--token", b.path("companion-token"), "transfer-token", dev,
                   "--new-owner", "neighbour"])
        tok = json.loads(r.stdout)
        print("    a single-use token for %s, valid %d s" % (tok["new-owner"], tok["expires"] - int(time.time())),
              flush=True)
        chapter(3, "accept-transfer", b.owner_step(["accept-transfer", dev, "--transfer-token", tok["token"]],
                                                   token=b.path("neighbour-token")))
        status(b)
        print("==> 4. decommission: 'neighbour' releases the device (an operator-signed command on a tap)",
              flush=True)
        chapter(4, "decommission", b.owner_step(["decommission", dev], token=b.path("neighbour-token")))
        b.wait_state("idle")
        print("    the card is %s its original values (cp-%s-sim --dump)"
              % ("back to" if b.card() == original else "NOT at", modem), flush=True)
        if b.card() != original:
            raise Fail("the card is not back to its original values")
        status(b)
        print("==> 5. a new claim by 'bench'", flush=True)
        chapter(5, "claim", b.owner_step([]))
        b.wait_state("provisioned")
        status(b)
        ok = True
    except Fail as e:
        print("FAILED:", e)
        b.dump_logs()
    finally:
        b.teardown()
        print("==> stopped everything it started", flush=True)
    return 0 if ok else 1


def start_ble(b):
    """The BlueZ stand-in (hci0 the device's adapter, hci1 the phone's) and
    the device's [ble] group naming hci0."""
    why = bluezbench.missing_prerequisite()
    if why:
        raise Fail("the BLE demo needs the BlueZ stand-in: " + why)
    b.ble = bluezbench.Bench(["--mtu", "185"])
    with open(b.gw_info["config"], "a") as f:
        f.write("\n[ble]\nadapter=hci0\n")


def ble_stats(b):
    """The stand-in's counters (Stats), through Debian's python3, which has
    python3-dbus, whatever python3 runs this."""
    code = ("import json, sys, dbus\n"
            "o = dbus.bus.BusConnection(sys.argv[1]).get_object(%r, %r)\n"
            "print(json.dumps({str(k): int(v) for k, v in o.Stats(dbus_interface=%r).items()}))\n"
            % (bluezbench.CONTROL_NAME, bluezbench.CONTROL_PATH, bluezbench.CONTROL_IFACE))
    r = subprocess.run([bluezbench.PYTHON, "-c", code, b.ble.address], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise Fail("the stand-in's Stats: %s" % r.stderr)
    return json.loads(r.stdout)


def companion_ble(b, tap_timeout=30):
    """cellprov-companion --transport ble on the phone's adapter; progress
    to companion.log as companion_nfc's."""
    log = open(b.path("companion.log"), "a")
    args = [b.prog("tools/cellprov-companion"), "--json", "--transport", "ble", "--adapter", "hci1",
            "--sm", "https://127.0.0.1:%d" % b.sm_port, "--sm-ca", b.tls_ca,
            "--token", b.path("companion-token"), "--tap-timeout", str(tap_timeout)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=b.ble.env())


def main():
    args = sys.argv[2:]
    modem = "qmi"
    if "--modem" in args:
        i = args.index("--modem")
        modem = args[i + 1] if i + 1 < len(args) else ""
        del args[i:i + 2]
    if modem not in MODEM_NAMES or args not in ([], ["--lifecycle"], ["--ble"]):
        print(__doc__.splitlines()[-1], file=sys.stderr)
        return 2
    if args == ["--lifecycle"]:
        return lifecycle(modem)
    ble = args == ["--ble"]
    over = "BLE" if ble else "NFC"
    b = E2E(sys.argv[1], modem=modem)
    b.ble = None
    ok = False
    try:
        print("==> the network side: manufacturer CA, certificate server (HTTPS), AUSF/UDM, SM", flush=True)
        b.setup()
        b.start_bus()
        print("==> cellprov-mfg makes the device: key, certificate, DeviceID, cellprov.conf", flush=True)
        info = b.make_gateway()
        print("    DeviceID %s\n    %s" % (info["device-id"], info["certificate-url"]), flush=True)
        print("==> the device: %s modem simulator (programmable USIM, authenticating network), "
              "its PN532 (simulated), cellprovd (backend=%s)"
              % (MODEM_NAMES[modem], "auto" if modem == "qmi" else modem), flush=True)
        b.start_modem()
        b.link_up()
        if ble:
            print("==> the BlueZ stand-in: hci0 the device's adapter, hci1 the phone's (ATT MTU 185)",
                  flush=True)
            start_ble(b)
            b.start_cellprovd(debug=False, env={"DBUS_SYSTEM_BUS_ADDRESS": b.ble.address})
            transports = {k: v for k, v in b.ctl("status").json["daemon"].items() if k.startswith("transport-")}
            if "transport-ble" not in transports:
                raise Fail("this cellprovd has no BLE transport (transports: %s): build with -Dble=enabled"
                           % (", ".join(transports) or "none"))
        else:
            b.start_cellprovd(debug=False)
        dlog, smlog, ausflog = b.path("cellprovd.log"), b.path("sm.log"), b.path("ausf.log")

        clog = b.path("companion.log")
        if ble:
            print("==> cellprov-companion --transport ble on hci1: scans for the cellprov service", flush=True)
            comp = companion_ble(b)
            print("         | %s" % grep(clog, r"\(1/4\) connected to device"), flush=True)
        else:
            print("==> cellprov-companion on its own PN532, joined to the device's by the simulated RF link",
                  flush=True)
            comp = b.companion_nfc()
        show(1, "the companion reads the device's tag over %s: certificate URL + signed device record" % over,
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
        show(9, "the companion writes the profile to the device over %s" % over,
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
        print("         | the companion read the receipt over %s: %s, registered on %s, MAC verified with K''"
              % (over, res["receipt"]["status"], res["receipt"].get("registration")), flush=True)
        if ble:
            st = ble_stats(b)
            print("         | %d BLE connection(s), %d segments written (%d bytes), %d indicated (%d bytes)"
                  % (st["connections"], st["writes"], st["write-bytes"], st["notifications"],
                     st["notification-bytes"]), flush=True)
        else:
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
        if b.ble:
            b.ble.stop()
        print("==> stopped everything it started", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
