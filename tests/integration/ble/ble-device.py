#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A device's side of protocol section 18 for test-ble-link.py: the
cellprov GATT service (RX write, TX indicate) and advertisement on hci0,
the framing by libcellprov-protocol's codec (through cpble), answering
read-tag with the NDEF message given. Not the device: only what the test
needs to run the codec over the BlueZ stand-in. Logs JSON lines."""

import argparse
import json
import os
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

sys.path.insert(0, os.path.join(os.environ["CP_SOURCE_DIR"], "tests", "sim", "bluez"))
import cpble  # noqa: E402

PROPS = "org.freedesktop.DBus.Properties"
CHRC = "org.bluez.GattCharacteristic1"
ROOT = "/org/cellprov/test/device"
logf = None


def log(**kw):
    logf.write(json.dumps(kw) + "\n")
    logf.flush()


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
    def __init__(self, bus, ndef):
        self.bus = bus
        self.ndef = ndef
        self.link = None
        self.peer = None
        self.timer = 0
        svc = ROOT + "/service0"
        self.objs = [Obj(bus, svc, {"org.bluez.GattService1": {"UUID": cpble.SERVICE_UUID,
                                                                "Primary": True}})]
        self.rx = Chrc(bus, svc + "/rx", svc, cpble.RX_UUID, ["write"], self)
        self.tx = Chrc(bus, svc + "/tx", svc, cpble.TX_UUID, ["indicate"], self)
        self.objs += [self.rx, self.tx]
        self.root = Root(bus, self)

    def write(self, value, options):
        if not self.link:
            raise dbus.exceptions.DBusException("0x81", name="org.bluez.Error.Failed")
        self.peer = str(options.get("device", ""))
        try:
            self.link.set_mtu(int(options.get("mtu", 23)))
            msg = self.link.receive(bytes(value), int(options.get("offset", 0)))
            if msg is not None:
                log(event="request", hex=msg.hex())
                if msg == b"\x01\x01":
                    self.link.send(b"\x01\x81\x00\x00" + self.ndef)
                elif len(msg) >= 2 and msg[0] == 1:
                    self.link.send(bytes([1, msg[1] | 0x80, 0x07, 0x0F]))
                else:
                    self.link.send(b"\x01\x81\x07\x0e")
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
        log(event="session")
        self.link = cpble.Link(23)

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
    def __init__(self, bus, dev):
        self.dev = dev
        dbus.service.Object.__init__(self, bus, ROOT)

    @dbus.service.method("org.freedesktop.DBus.ObjectManager", out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        return {dbus.ObjectPath(o.path): o.p for o in self.dev.objs}


class Ad(dbus.service.Object):
    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return {"Type": "peripheral",
                "ServiceUUIDs": dbus.Array([cpble.SERVICE_UUID], signature="s"),
                "ManufacturerData": dbus.Dictionary({dbus.UInt16(0xFFFF): dbus.Array(
                    b"\x10\xd7\x27\xa4\x49\x01", signature="y")}, signature="qv")}

    @dbus.service.method("org.bluez.LEAdvertisement1")
    def Release(self):
        pass


def main():
    global logf
    p = argparse.ArgumentParser()
    p.add_argument("--ndef", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--ready-fd", type=int, required=True)
    args = p.parse_args()
    logf = open(args.log, "a")
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    dev = Device(bus, bytes.fromhex(args.ndef))
    ad = Ad(bus, ROOT + "/ad")
    hci0 = bus.get_object("org.bluez", "/org/bluez/hci0")

    def ready():
        os.write(args.ready_fd, b"ready\n")
        os.close(args.ready_fd)

    def failed(e):
        print("ble-device: %s" % e, file=sys.stderr)
        os.close(args.ready_fd)
        loop.quit()

    def advertise():
        hci0.RegisterAdvertisement(ROOT + "/ad", {},
                                   dbus_interface="org.bluez.LEAdvertisingManager1",
                                   reply_handler=ready, error_handler=failed)

    # asynchronous: BlueZ reads the application's objects before it answers
    hci0.RegisterApplication(ROOT, {}, dbus_interface="org.bluez.GattManager1",
                             reply_handler=advertise, error_handler=failed)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    loop.run()
    del ad, dev


if __name__ == "__main__":
    main()
