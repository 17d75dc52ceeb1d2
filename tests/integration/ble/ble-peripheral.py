#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A cellprov device's BLE side (docs/protocol.md section 18) for tests of
the phone's side: the cellprov GATT service (RX write, TX indicate) and
advertisement (service UUID, manufacturer data with the DeviceID prefix)
on one adapter of the BlueZ stand-in, the framing by the protocol
library's codec (tests/sim/bluez/cpble.py). It answers

  read-tag       with the NDEF message of --tag (read at the session's
                 first read-tag, so a test may give a fresh one per session)
  write-profile  status 0, the NDEF message saved to --profile-out, then
                 --on-profile run (a shell command, $CP_PROFILE names the
                 file): the device's processing; busy while it runs, and
                 always with --busy
  read-receipt   the receipt of --receipt (the record alone, as
                 cp-test-device --receipt-out writes it) in an NDEF
                 message, or no body while there is none

one session at a time. Not the device's daemon: the device the
companion's tests (test-companion-ble.py, cp-ble-bench) and the codec's
link tests (test-ble-link.py) talk to, and a reference for cellprovd.
Logs JSON lines (--log): session, request (version, op, bytes), profile,
processed, refused, error, stop."""

import argparse
import json
import os
import subprocess
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sim", "bluez"))
import cpble  # noqa: E402

PROPS = "org.freedesktop.DBus.Properties"
CHRC = "org.bluez.GattCharacteristic1"
MIME_RECEIPT = b"application/vnd.cellprov.receipt"
BUSY = 0x0602
logf = None


def log(**kw):
    if logf:
        logf.write(json.dumps(kw) + "\n")
        logf.flush()


def ndef_mime(mime, payload):
    """One NDEF record of TNF 2 (media type), MB and ME set."""
    if len(payload) < 256:
        return bytes([0xD2, len(mime), len(payload)]) + mime + payload
    return bytes([0xC2, len(mime)]) + len(payload).to_bytes(4, "big") + mime + payload


def response(op, status=0, body=b""):
    return bytes([1, op | 0x80]) + status.to_bytes(2, "big") + body


class Obj(dbus.service.Object):
    def __init__(self, bus, path, props):
        self.path = path
        self.p = props
        dbus.service.Object.__init__(self, bus, path)

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return self.p[iface]

    @dbus.service.signal(PROPS, signature="sa{sv}as")
    def PropertiesChanged(self, iface, changed, invalidated):
        pass


class Device:
    def __init__(self, bus, args):
        self.bus = bus
        self.args = args
        self.link = None
        self.peer = None
        self.timer = 0
        self.tag = None
        self.working = None             # the --on-profile process
        svc = args.root + "/service0"
        self.objs = [Obj(bus, svc, {"org.bluez.GattService1": {"UUID": cpble.SERVICE_UUID,
                                                                "Primary": True}})]
        self.rx = Chrc(bus, svc + "/rx", svc, cpble.RX_UUID, ["write"], self)
        self.tx = Chrc(bus, svc + "/tx", svc, cpble.TX_UUID, ["indicate"], self)
        self.objs += [self.rx, self.tx]
        self.root = Root(bus, args.root, self)

    # ---- requests ----

    def answer(self, msg):
        if len(msg) < 2:
            return response(1, 0x0710)
        op = msg[1]
        log(event="request", version=msg[0], op=op, bytes=len(msg))
        if msg[0] != 1:
            return response(op & 0x7F, 0x070E)
        if op == 0x01 and len(msg) == 2:
            if self.tag is None:
                with open(self.args.tag, "rb") as f:
                    self.tag = f.read()
            return response(op, 0, self.tag)
        if op == 0x02 and len(msg) > 2:
            if self.args.busy or self.working is not None:
                return response(op, BUSY)
            if not msg[2] & 0x80:
                return response(op, 0x0302)      # ndef-header: no MB on the first record
            fd = os.open(self.args.profile_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, msg[2:])
            os.close(fd)
            log(event="profile", bytes=len(msg) - 2)
            if self.args.on_profile:
                GLib.idle_add(self.process)
            return response(op)
        if op == 0x03 and len(msg) == 2:
            if self.working is None and os.path.exists(self.args.receipt):
                with open(self.args.receipt, "rb") as f:
                    return response(op, 0, ndef_mime(MIME_RECEIPT, f.read()))
            return response(op)
        if op in (1, 2, 3):
            return response(op, 0x0710)
        return response(op & 0x7F, 0x070F)

    def process(self):
        env = dict(os.environ, CP_PROFILE=self.args.profile_out)
        self.working = subprocess.Popen(["/bin/sh", "-c", self.args.on_profile], env=env)
        GLib.child_watch_add(self.working.pid, self.processed)
        return False

    def processed(self, pid, status):
        log(event="processed", status=status)
        self.working.wait()
        self.working = None

    # ---- the link ----

    def write(self, value, options):
        if not self.link:
            log(event="refused", reason="no session")
            # no session: ATT Application Error, as for a second phone
            raise dbus.exceptions.DBusException("0x81", name="org.bluez.Error.Failed")
        self.peer = str(options.get("device", ""))
        try:
            self.link.set_mtu(int(options.get("mtu", 23)))
            msg = self.link.receive(bytes(value), int(options.get("offset", 0)))
            if msg is not None:
                self.link.send(self.answer(msg))
            GLib.idle_add(self.pump)
        except cpble.BleError as e:
            self.end(e)

    def pump(self):
        if not self.link:
            return False
        try:
            self.link.check()
            for seg in self.link.segments():
                self.tx.PropertiesChanged(CHRC, {"Value": dbus.Array(seg, signature="y")}, [])
        except cpble.BleError as e:
            self.end(e)
            return False
        if self.timer:
            GLib.source_remove(self.timer)
        self.timer = GLib.timeout_add(max(1, self.link.deadline_in_ms()), self.tick)
        return False

    def tick(self):
        self.timer = 0
        self.pump()
        return False

    def end(self, e):
        log(event="error", name=e.name)
        self.link = None
        if self.peer:
            self.bus.call_async("org.bluez", self.peer, "org.bluez.Device1", "Disconnect", "",
                                (), None, None)

    def start(self):
        if self.link:
            log(event="refused", reason="a session runs")
            raise dbus.exceptions.DBusException("0x81", name="org.bluez.Error.Failed")
        try:
            self.link = cpble.Link(23)
        except Exception as e:
            # BlueZ ignores StartNotify's answer: say it here
            print("ble-peripheral: cannot start a session: %s" % e, file=sys.stderr)
            raise
        log(event="session")
        self.tag = None

    def stop(self):
        log(event="stop")
        self.link = None


class Chrc(Obj):
    def __init__(self, bus, path, svc, uuid, flags, dev):
        Obj.__init__(self, bus, path, {CHRC: {"UUID": uuid, "Service": dbus.ObjectPath(svc),
                                              "Flags": dbus.Array(flags, signature="s")}})
        self.dev = dev

    @dbus.service.method(CHRC, in_signature="aya{sv}")
    def WriteValue(self, value, options):
        self.dev.write(value, options)

    @dbus.service.method(CHRC)
    def StartNotify(self):
        self.dev.start()

    @dbus.service.method(CHRC)
    def StopNotify(self):
        self.dev.stop()

    @dbus.service.method(CHRC)
    def Confirm(self):
        pass


class Root(dbus.service.Object):
    def __init__(self, bus, path, dev):
        self.dev = dev
        dbus.service.Object.__init__(self, bus, path)

    @dbus.service.method("org.freedesktop.DBus.ObjectManager", out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        return {dbus.ObjectPath(o.path): o.p for o in self.dev.objs}


class Ad(dbus.service.Object):
    def __init__(self, bus, path, data):
        self.data = data
        dbus.service.Object.__init__(self, bus, path)

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return {"Type": "peripheral",
                "ServiceUUIDs": dbus.Array([cpble.SERVICE_UUID], signature="s"),
                "ManufacturerData": dbus.Dictionary({dbus.UInt16(0xFFFF): dbus.Array(
                    self.data, signature="y")}, signature="qv")}

    @dbus.service.method("org.bluez.LEAdvertisement1")
    def Release(self):
        pass


def main():
    global logf
    p = argparse.ArgumentParser()
    p.add_argument("--adapter", default="hci0")
    p.add_argument("--root", default="/org/cellprov/test/device")
    p.add_argument("--device-id", required=True, help="32 hex digits")
    p.add_argument("--state", type=int, default=0)
    p.add_argument("--tag", required=True)
    p.add_argument("--profile-out", required=True)
    p.add_argument("--on-profile")
    p.add_argument("--receipt", required=True)
    p.add_argument("--busy", action="store_true")
    p.add_argument("--log")
    p.add_argument("--ready-fd", type=int, required=True)
    args = p.parse_args()
    if args.log:
        logf = open(args.log, "a")
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    dev = Device(bus, args)
    ad = Ad(bus, args.root + "/ad", bytes([0x10 | args.state]) + bytes.fromhex(args.device_id)[:5])
    hci = bus.get_object("org.bluez", "/org/bluez/" + args.adapter)
    loop = GLib.MainLoop()

    def ready():
        os.write(args.ready_fd, b"ready\n")
        os.close(args.ready_fd)

    def failed(e):
        print("ble-peripheral: %s" % e, file=sys.stderr)
        os.close(args.ready_fd)
        loop.quit()

    def advertise():
        hci.RegisterAdvertisement(args.root + "/ad", {},
                                  dbus_interface="org.bluez.LEAdvertisingManager1",
                                  reply_handler=ready, error_handler=failed)

    # asynchronous: BlueZ reads the application's objects before it answers
    hci.RegisterApplication(args.root, {}, dbus_interface="org.bluez.GattManager1",
                            reply_handler=advertise, error_handler=failed)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    loop.run()
    del ad, dev


if __name__ == "__main__":
    main()
