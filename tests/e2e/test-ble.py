#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The device's BLE transport on the simulated bench: the real cellprovd
(NFC on a simulated PN532 and BLE on hci0 of the BlueZ stand-in, side by
side), the QMI modem simulator, the real SM, AUSF and certificate server,
cellprov-companion for the network side of the phone (its tag, profile
and receipt files), and a phone on hci1/hci2 of the stand-in that speaks
protocol section 18 through the codec of libcellprov-protocol (blephone,
cpble).

    test-ble.py BUILDDIR flow23|flow517|sessions

flow23: at ATT MTU 23, the link lost in the middle of the profile
(nothing is provisioned), the next session's profile provisions the
device to registered, the receipt read over BLE (read-receipt and the
tag) and verified by the companion; SIGTERM in the middle of a session.
flow517: BlueZ restarting under the daemon (it registers its service and
advertisement again), then the flow at MTU 517, with an NFC tap and a
second phone writing the profile while the first one is being
provisioned (both refused busy).
sessions: a segment replayed, duplicated, out of order, an oversized
message (each ends its session with its error, the next works), a second
phone during a session, a profile over BLE while one written over NFC is
under way (busy), the sessions-per-minute limit, the provisioning window
closing and opening again with cellprovctl ble-window."""

import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2ebench import E2E, FIRST_IMSI, Fail, check, prereq  # noqa: E402

SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "sim", "bluez"))
import bluezbench  # noqa: E402

why = bluezbench.missing_prerequisite()
if why:
    prereq.missing(why)

import cpble  # noqa: E402
cpble.run_under_sanitizer()

import dbus  # noqa: E402
import dbus.mainloop.glib  # noqa: E402
import blephone  # noqa: E402
from blephone import Phone, PhoneError, spin  # noqa: E402

BUSY = 0x0602


def mime_ndef(mime, payload):
    """One short MIME record (NDEF 1.0): MB, ME, SR, TNF 2."""
    t = mime.encode()
    return bytes([0xD2, len(t), len(payload)]) + t + payload


class BleBench(E2E):
    """The e2e bench with the BlueZ stand-in and cellprovd on BLE too."""

    def start_ble(self, mtu, phones=2, window=300):
        self.ble = bluezbench.Bench(["--mtu", str(mtu), "--phones", str(phones)])
        conf = open(self.gw_info["config"]).read()
        conf += "\n[ble]\nadapter=hci0\nwindow=%d\n" % window
        with open(self.gw_info["config"], "w") as f:
            f.write(conf)
        self.bus = dbus.bus.BusConnection(self.ble.address)

    def start_cellprovd(self, debug=True, env=None):
        e = {"DBUS_SYSTEM_BUS_ADDRESS": self.ble.address}
        e.update(env or {})
        return super().start_cellprovd(debug=debug, env=e)

    def ble_phone(self, adapter="hci1"):
        return Phone(self.bus, adapter)

    def transports(self):
        d = self.ctl("status").json["daemon"]
        return {k[len("transport-"):]: v for k, v in d.items() if k.startswith("transport-")}

    def wait_ble(self, state, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.transports().get("ble") == state:
                return True
            time.sleep(0.05)
        return False

    def att_counter(self):
        return self.ctl("status").json["daemon"]["attestation-counter"]

    def profile_for(self, phone, name):
        """Tap 1 over BLE (read-tag) and the companion's profile from the
        SM; returns the companion (waiting for its receipt tag), the
        profile and the path the receipt tag goes to."""
        status, tag = phone.read_tag()
        check(status == 0 and tag, "read-tag over BLE: status 0, %d bytes" % len(tag))
        path = self.path(name + ".tag")
        with open(path, "wb") as f:
            f.write(tag)
        profile = path + ".profile"
        after = path + ".after"
        comp = self.companion(path, profile=profile, receipt_tag=after, wait=False)
        end = time.monotonic() + 30
        while not os.path.exists(profile) and comp.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        if not os.path.exists(profile):
            out, err = comp.communicate(timeout=10)
            raise Fail("the companion made no profile: %s %s" % (out, err[-2000:]))
        time.sleep(0.1)         # written whole
        return comp, open(profile, "rb").read(), after

    def receipt_over_ble(self, phone, comp, after):
        """Tap 3 over BLE: read-receipt, then the tag (with its receipt)
        handed to the companion, which verifies it with K''."""
        status, body = phone.read_receipt()
        check(status == 0 and b"application/vnd.cellprov.receipt" in body,
              "read-receipt over BLE: the receipt record (%d bytes)" % len(body))
        status, tag = phone.read_tag()
        check(status == 0 and body[-40:] in tag, "the tag carries the same receipt")
        with open(after + ".part", "wb") as f:
            f.write(tag)
        os.rename(after + ".part", after)
        out, err = comp.communicate(timeout=60)
        import json
        res = json.loads(out)
        check(comp.returncode == 0 and res["result"] == "ok" and res["receipt"]["status"] == "provisioned"
              and res["receipt"]["verified"], "the companion verified the provisioned receipt (%s)" %
              res.get("error"))
        return res

    def registered(self):
        self.wait_state("provisioned", timeout=30)
        m = self.modem_state()
        check(m.get("imsi") == FIRST_IMSI and m.get("network-last") == "registered",
              "the USIM holds the new IMSI and the network registered it (%s, %s)" %
              (m.get("imsi"), m.get("network-last")))

    def teardown(self):
        if getattr(self, "ble", None):
            self.ble.stop()
        super().teardown()


def test_flow23(b):
    b.start_modem()
    b.start_ble(23)
    b.start_cellprovd()
    check(b.wait_ble("waiting"), "armed at start: ble advertising (%s)" % b.transports())
    st = b.ctl("status").json
    check(st["status"]["state"] == "idle", "idle")
    hci0 = b.bus.get_object("org.bluez", "/org/bluez/hci0")
    check(not hci0.Get("org.bluez.Adapter1", "Pairable", dbus_interface=blephone.PROPS),
          "the adapter is not pairable")
    hci0.Set("org.bluez.Adapter1", "Pairable", dbus.Boolean(True), dbus_interface=blephone.PROPS)
    ph = b.ble_phone()
    ph.connect()
    check(spin(lambda: not hci0.Get("org.bluez.Adapter1", "Pairable", dbus_interface=blephone.PROPS), 5),
          "a session makes the adapter non-pairable again")
    check(ph.mtu == 23, "MTU 23")
    adv = ph.advertised()
    check(adv == bytes([0x10]) + bytes.fromhex(b.gw_info["device-id"])[:5],
          "the advertisement: version 1, state 0, DeviceID[0..4] (%s)" % adv.hex())
    c0 = b.att_counter()
    comp, profile, after = b.profile_for(ph, "t1")
    check(b.att_counter() == c0 + 1, "one attestation counter for the session's read-tag")
    check(ph.stats["indications"] >= 14, "the tag came in %d indications" % ph.stats["indications"])

    # the link goes in the middle of the profile: nothing is provisioned
    since = len(b.daemon_log())
    b.ble.knob("DropAfter", dbus.UInt32(20))
    try:
        ph.write_profile(profile)
        raise Fail("the profile went through a dropped link")
    except PhoneError as e:
        print("ok: the write ended with the link: %s" % e)
    check(ph.wait_disconnected(), "the phone lost the link")
    log = b.wait_daemon_log("ble: session ended", since)
    check("a profile was written" not in log, "the daemon took no profile from the broken session")
    check(b.ctl("status").json["status"]["state"] == "idle", "still idle")

    # the next session works: the same profile, whole
    ph.connect()
    c1 = b.att_counter()
    status, _ = ph.write_profile(profile)
    check(status == 0, "write-profile over BLE: status 0")
    ph.disconnect()
    b.registered()
    ph.connect()
    b.receipt_over_ble(ph, comp, after)
    check(b.att_counter() == c1 + 1, "the read-receipt session consumed no counter, the read-tag one did")
    ph.disconnect()
    log = b.daemon_log()
    check("ble: a profile was written" in log, "the event names its transport")

    # a segment longer than MTU - 3 comes as a long write, in pieces at
    # their offsets (18.4.3): read-receipt with a body, 206 bytes in one
    # segment; the device answers ble-message, so it had the message whole
    b.ble.knob("SplitLongWrites", dbus.Boolean(True))
    ph.connect()
    since = len(b.daemon_log())
    msg = bytes([1, 3]) + bytes(200)
    ph.values = []
    ph.write(bytes([0x03, 0x00]) + len(msg).to_bytes(2, "big") + msg)
    spin(lambda: ph.values, 5)
    check(ph.values[:1] == [bytes.fromhex("070000000401830710")],
          "the answer to the long write: ble-message (%s)" % [v.hex() for v in ph.values])
    ph.disconnect()
    log = b.wait_daemon_log("ble: session ended after", since)
    check("after 12 writes (206 bytes)" in log, "the device got it in 12 pieces of at most 18 bytes")
    b.ble.knob("SplitLongWrites", dbus.Boolean(False))

    # SIGTERM in the middle of a session
    ph.connect()
    ph.write(bytes([0x01, 0x00, 0x00, 0x64, 0x01, 0x02]) + bytes(10))    # B of 100 bytes
    t0 = time.monotonic()
    rc = b.kill_cellprovd(signal.SIGTERM)
    check(rc == 0 and time.monotonic() - t0 < 10, "cellprovd stopped cleanly (%d)" % rc)
    check(ph.wait_disconnected(), "the phone lost the link with the daemon")
    b.start_cellprovd()
    st = b.ctl("status").json
    check(st["status"]["state"] == "provisioned", "still provisioned after the restart")


def test_flow517(b):
    b.start_modem()
    b.start_ble(517, phones=2)
    b.link_up()
    b.start_cellprovd(env={"CELLPROVD_TEST_HOLD": "provisioning:4000"})
    check(b.wait_ble("waiting"), "ble advertising")

    # BlueZ goes and comes back: the daemon registers again
    since = len(b.daemon_log())
    b.ble.restart(300)
    log = b.wait_daemon_log("BlueZ is on the bus", since)
    log = b.wait_daemon_log("advertising on hci0", since)
    check(b.wait_ble("waiting"), "advertising again after BlueZ's restart")
    check(log.count("the cellprov service is registered on hci0") == 1,
          "the service registered again once")

    ph = b.ble_phone("hci1")
    ph.connect()
    check(ph.mtu == 517, "MTU 517")
    comp, profile, after = b.profile_for(ph, "t1")
    check(ph.stats["indications"] == 1, "the tag in one indication at MTU 517")
    with open(b.path("t1.ndef"), "wb") as f:
        f.write(profile)
    status, _ = ph.write_profile(profile)
    check(status == 0, "write-profile over BLE: status 0")
    ph.disconnect()
    b.wait_daemon_log("test hold", 0)
    # the device is being provisioned: NFC and another phone are refused
    since = len(b.daemon_log())
    b.link_down()
    b.write_tag(b.path("t1.ndef"))
    b.wait_daemon_log("nfc: a profile was written while", since)
    ph2 = b.ble_phone("hci2")
    ph2.connect()
    status, _ = ph2.write_profile(profile)
    check(status == BUSY, "a second phone's profile: busy (0x%04x)" % status)
    ph2.disconnect()
    check("ble: a profile was written while" in b.daemon_log()[since:], "logged as busy, over ble")
    b.registered()
    ph.connect()
    b.receipt_over_ble(ph, comp, after)
    ph.disconnect()

    # the window closes during a session: the session goes on, then the
    # service goes
    ph.connect()
    since = len(b.daemon_log())
    b.ctl("ble-window", "1")
    b.wait_daemon_log("the provisioning window closed (the session running goes on)", since)
    check(b.transports()["ble"] == "session", "still in session")
    status, tag = ph.read_tag()
    check(status == 0 and tag, "read-tag after the window closed, in the session it let in")
    ph.disconnect()
    check(b.wait_ble("closed"), "closed once the session ended (%s)" % b.transports())
    check(b.wait_daemon_log("the cellprov service is unregistered from hci0", since),
          "the service is no longer offered")


def test_sessions(b):
    b.start_modem()
    b.start_ble(185, phones=2)
    b.start_cellprovd(env={"CELLPROVD_TEST_HOLD": "profile-received:4000"})
    check(b.wait_ble("waiting"), "ble advertising")
    ph = b.ble_phone("hci1")

    def broken(segments, code, what):
        since = len(b.daemon_log())
        ph.connect()
        try:
            for seg in segments:
                ph.write(seg)
        except dbus.exceptions.DBusException:
            pass        # the link went under the last write
        check(ph.wait_disconnected(), "%s: the device disconnected the phone" % what)
        log = b.wait_daemon_log("ble: session ended", since)
        check("(%s)" % code in log, "%s: the session ended with %s" % (what, code))

    req = bytes([0x03, 0x00, 0x00, 0x02, 0x01, 0x01])       # read-tag, seq 0
    broken([req, req], "ble-sequence", "a segment replayed")
    begin = bytes([0x01, 0x00, 0x00, 0x10, 0x01, 0x02]) + bytes(6)
    broken([begin, begin], "ble-sequence", "a segment duplicated")
    broken([begin, bytes([0x00, 0x02]) + bytes(4)], "ble-sequence", "a segment out of order")
    broken([bytes([0x01, 0x00, 0x10, 0x05, 0x01, 0x02, 0x00])], "ble-too-large",
           "an oversized message (4101 bytes)")

    # a second phone while a session runs: refused, the first goes on
    ph.connect()
    status, tag = ph.read_tag()
    check(status == 0 and len(tag) > 200, "a session after the broken ones")
    ph2 = b.ble_phone("hci2")
    ph2.connect()
    try:
        ph2.read_tag()
        raise Fail("a second phone was served during a session")
    except PhoneError as e:
        check("Failed" in str(e) or str(e) == "disconnected", "the second phone is refused (%s)" % e)
    check(ph2.wait_disconnected(), "and disconnected")
    status, tag2 = ph.read_tag()
    check(status == 0 and tag2 == tag, "the first phone's session goes on (the same tag)")
    ph.disconnect()

    # NFC first: a profile over BLE meanwhile is busy
    since = len(b.daemon_log())
    ph.connect()
    junk = b.path("junk.ndef")
    with open(junk, "wb") as f:
        f.write(mime_ndef("application/vnd.cellprov.profile", b"\x01" * 40))
    b.write_tag(junk)
    b.wait_daemon_log("test hold", since)
    status, _ = ph.write_profile(mime_ndef("application/vnd.cellprov.profile", b"\x02" * 40))
    check(status == BUSY, "NFC first: BLE's profile is busy (0x%04x)" % status)
    status, _ = ph.write_profile(b"\xd2\x01")
    check(status != 0 and status >> 8 == 0x03, "a malformed NDEF gets its ndef-* code (0x%04x)" % status)
    ph.disconnect()
    b.wait_state("idle", timeout=20)        # the junk profile was rejected

    # six sessions began in this minute: the seventh is refused
    since = len(b.daemon_log())
    ph.connect()
    try:
        ph.read_tag()
        raise Fail("a seventh session in a minute was served")
    except PhoneError as e:
        print("ok: the seventh session: %s" % e)
    b.wait_daemon_log("ble-rate", since)
    check(ph.wait_disconnected(), "the seventh phone is disconnected")

    # the window closes: no advertisement, no service
    r = b.ctl("ble-window", "2")
    check(r.json["result"]["transports"] == 1, "cellprovctl ble-window 2")
    check(b.wait_ble("closed", 10), "the window closed (%s)" % b.transports())
    check(b.ble.knob("Stats") is not None, "stand-in alive")
    check(spin(lambda: ph.find(blephone.DEVICE, ph.adapter) is None, 5) or ph.scan(1) is None,
          "the phone sees no device any more")
    r = b.ctl("ble-window")
    check(b.wait_ble("waiting", 10), "cellprovctl ble-window opens it again")
    check(ph.scan(5) is not None, "the phone sees the device again")


TESTS = {"flow23": test_flow23, "flow517": test_flow517, "sessions": test_sessions}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in TESTS:
        print("usage: test-ble.py BUILDDIR %s" % "|".join(TESTS), file=sys.stderr)
        return 2
    os.environ["G_MESSAGES_DEBUG"] = "all"
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    b = BleBench(sys.argv[1])
    b.ble = None
    failed = False
    try:
        b.setup_all()
        print("==", sys.argv[2], flush=True)
        TESTS[sys.argv[2]](b)
    except Fail as e:
        print("FAIL:", e)
        failed = True
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
    if failed:
        b.dump_logs()
    b.teardown()
    return prereq.status(1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
