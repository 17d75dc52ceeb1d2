#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The BLE framing codec over the BlueZ stand-in, through real D-Bus: a
device (ble-peripheral.py, the codec behind the cellprov GATT service on
hci0)
and this test as the phone on hci1 (the codec again, writing RX and
reading TX's indications) run a read-tag session of protocol section 18.

    test-ble-link.py mtu23|mtu185|mtu517|drop|delay
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("CP_SOURCE_DIR", os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "sim", "bluez"))
import prereq  # noqa: E402
import bluezbench  # noqa: E402

why = bluezbench.missing_prerequisite()
if why:
    prereq.missing(why)

import dbus  # noqa: E402
import dbus.mainloop.glib  # noqa: E402
from gi.repository import GLib  # noqa: E402
import cpble  # noqa: E402

DEVICE = os.path.join(HERE, "ble-peripheral.py")
DEVICE_ID = "d727a449017a34c53dd88a22afa5736d"      # the test vectors'
CHRC = "org.bluez.GattCharacteristic1"
PROPS = "org.freedesktop.DBus.Properties"

failures = 0
checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr, flush=True)


def vector(name):
    with open(os.path.join(SOURCE, "docs", "test-vectors", "cellprov-v2.txt")) as f:
        for line in f:
            if line.split("=", 1)[0].strip() == name:
                return line.split("=", 1)[1].strip()
    raise RuntimeError("no " + name)


def spin(cond, timeout):
    ctx = GLib.MainContext.default()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        while ctx.pending():
            ctx.iteration(False)
        if cond():
            return True
        time.sleep(0.002)
    return cond()


class Phone:
    def __init__(self, bus):
        self.bus = bus
        self.values = []
        self.connected = True
        bus.add_signal_receiver(self.on_changed, "PropertiesChanged", PROPS, "org.bluez",
                                path_keyword="path")

    def on_changed(self, iface, changed, invalidated, path=None):
        if iface == CHRC and path == self.tx_path and "Value" in changed:
            self.values.append(bytes(changed["Value"]))
        if iface == "org.bluez.Device1" and "Connected" in changed and not changed["Connected"]:
            self.connected = False

    def connect(self):
        hci1 = self.bus.get_object("org.bluez", "/org/bluez/hci1")
        hci1.SetDiscoveryFilter({"UUIDs": dbus.Array([cpble.SERVICE_UUID], signature="s")},
                                dbus_interface="org.bluez.Adapter1")
        try:
            hci1.StartDiscovery(dbus_interface="org.bluez.Adapter1")
        except dbus.exceptions.DBusException:
            pass   # a session from the previous connection
        om = self.bus.get_object("org.bluez", "/")
        found = []

        def find(iface, uuid=None):
            for p, i in om.GetManagedObjects(dbus_interface="org.freedesktop.DBus.ObjectManager").items():
                if iface in i and (uuid is None or str(i[iface].get("UUID")) == uuid):
                    return str(p)
            return None

        check(spin(lambda: found.append(find("org.bluez.Device1")) or found[-1], 5), "device seen")
        self.dev = found[-1]
        mdata = self.bus.get_object("org.bluez", self.dev).Get(
            "org.bluez.Device1", "ManufacturerData", dbus_interface=PROPS)
        check(bytes(mdata[0xFFFF]) == b"\x10" + bytes.fromhex(DEVICE_ID)[:5], "the DeviceID prefix advertised")
        self.bus.get_object("org.bluez", self.dev).Connect(dbus_interface="org.bluez.Device1")
        self.connected = True
        spin(lambda: find(CHRC, cpble.TX_UUID), 5)
        self.rx_path = find(CHRC, cpble.RX_UUID)
        self.tx_path = find(CHRC, cpble.TX_UUID)
        self.rx = dbus.Interface(self.bus.get_object("org.bluez", self.rx_path), CHRC)
        self.mtu = int(self.bus.get_object("org.bluez", self.rx_path).Get(CHRC, "MTU",
                                                                          dbus_interface=PROPS))
        dbus.Interface(self.bus.get_object("org.bluez", self.tx_path), CHRC).StartNotify()

    def read_tag(self, timeout=20):
        """One read-tag request; the response, or the error that ended it."""
        link = cpble.Link(self.mtu)
        link.send(b"\x01\x01")
        self.values = []
        stats = {"writes": 0, "indications": 0, "bytes": 0}
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end and self.connected:
                for seg in link.segments():
                    check(len(seg) <= self.mtu - 3, "segment within MTU - 3")
                    self.rx.WriteValue(dbus.Array(seg, signature="y"), {})
                    stats["writes"] += 1
                    stats["bytes"] += len(seg)
                spin(lambda: self.values or not self.connected, 0.05)
                while self.values:
                    v = self.values.pop(0)
                    stats["indications"] += 1
                    stats["bytes"] += len(v)
                    msg = link.receive(v)
                    if msg is not None:
                        for seg in link.segments():   # the ack of the E segment
                            self.rx.WriteValue(dbus.Array(seg, signature="y"), {})
                            stats["writes"] += 1
                            stats["bytes"] += len(seg)
                        return msg, stats
                link.check()
        except dbus.exceptions.DBusException as e:
            return e.get_dbus_name(), stats
        except cpble.BleError as e:
            return e.name, stats
        finally:
            link.close()
        return "disconnected" if not self.connected else "timeout", stats


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    mtus = {"mtu23": 23, "mtu185": 185, "mtu517": 517, "drop": 23, "delay": 23}
    if name not in mtus:
        print("usage: test-ble-link.py %s" % "|".join(mtus), file=sys.stderr)
        return 2
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    check(vector("device_id") == DEVICE_ID, "the test vectors' DeviceID")
    ndef = bytes.fromhex(vector("ndef_tag"))
    want = b"\x01\x81\x00\x00" + ndef
    bench = bluezbench.Bench(["--mtu", str(mtus[name])])
    try:
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "device.log")
            tag = os.path.join(d, "tag")
            with open(tag, "wb") as f:
                f.write(ndef)
            r, w = os.pipe()
            env = bench.env({"CP_SOURCE_DIR": SOURCE})
            dev = subprocess.Popen([bluezbench.PYTHON, DEVICE, "--device-id", DEVICE_ID, "--tag", tag,
                                    "--profile-out", os.path.join(d, "profile"),
                                    "--receipt", os.path.join(d, "receipt"), "--log", log,
                                    "--ready-fd", str(w)], env=env, pass_fds=(w,))
            bench.procs.append(dev)
            os.close(w)
            with os.fdopen(r) as f:
                check(f.readline().strip() == "ready", "device registered")
            bus = dbus.bus.BusConnection(bench.address)
            ph = Phone(bus)
            ph.connect()
            check(ph.mtu == mtus[name], "MTU %d" % ph.mtu)
            if name == "delay":
                bench.knob("SetDelay", dbus.UInt32(15))
            if name == "drop":
                # the link goes in the middle of the device's answer
                bench.knob("DropAfter", dbus.UInt32(6))
                got, stats = ph.read_tag(10)
                check(got in ("disconnected", "org.bluez.Error.Failed",
                              "org.freedesktop.DBus.Error.UnknownObject"),
                      "the session ends with the link: %s" % (got,))
                check(spin(lambda: not ph.connected, 5), "disconnected")
                ph.connect()
            t0 = time.monotonic()
            got, stats = ph.read_tag()
            elapsed = time.monotonic() - t0
            check(got == want, "the tag content arrives whole: %s" %
                  (got if not isinstance(got, bytes) else got[:8].hex()))
            with open(log) as f:
                events = [json.loads(x) for x in f]
            last = [e for e in events if e["event"] == "request"][-1]
            check((last["version"], last["op"], last["bytes"]) == (1, 1, 2),
                  "the device received read-tag: %s" % last)
            print("%s: %d writes, %d indications, %d bytes, %.3f s" %
                  (name, stats["writes"], stats["indications"], stats["bytes"], elapsed))
            if name == "mtu23":
                check(stats["indications"] == 16, "16 indications at MTU 23")
            if name == "mtu517":
                check(stats["indications"] == 1, "1 indication at MTU 517")
            if name == "delay":
                check(elapsed >= 0.015 * (stats["writes"] + stats["indications"]) * 0.9,
                      "every transfer delayed")
    finally:
        bench.stop()
    print("test-ble-link %s: %d checks, %d failed" % (name, checks, failures))
    return 1 if failures or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
