#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The BlueZ stand-in (tests/sim/bluez/cp-bluez-sim) against what BlueZ
5.66's doc/*-api.txt say, through real D-Bus: a Python GATT application
(cp-gatt-echo) on hci0, this test as the phone on hci1.

    test-bluez-sim.py CASE      (adapter, advertising, gatt, faults, restart)
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
from blephone import spin  # noqa: E402

ECHO = os.path.join(SOURCE, "tests", "sim", "bluez", "cp-gatt-echo")
SERVICE_UUID = "5e1c33a9-1d3a-4c4e-9d5b-2a6f0c7e8b01"
RX_UUID = "5e1c33a9-1d3a-4c4e-9d5b-2a6f0c7e8b02"
TX_UUID = "5e1c33a9-1d3a-4c4e-9d5b-2a6f0c7e8b03"
RO_UUID = "5e1c33a9-1d3a-4c4e-9d5b-2a6f0c7e8b04"
NO_UUID = "5e1c33a9-1d3a-4c4e-9d5b-2a6f0c7e8b05"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
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


def expect_error(name, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except dbus.exceptions.DBusException as e:
        check(e.get_dbus_name() == name, "%s: got %s (%s), want %s" %
              (getattr(fn, "_method_name", fn), e.get_dbus_name(), e.get_dbus_message(), name))
        return e
    check(False, "%s: no error, want %s" % (getattr(fn, "_method_name", fn), name))
    return None


class Phone:
    """The test as a phone on hci1: a GDBus-like view of org.bluez."""

    def __init__(self, bus, adapter="/org/bluez/hci1"):
        self.bus = bus
        self.path = adapter
        self.changes = []
        self.added = []
        self.removed = []
        bus.add_signal_receiver(self.on_changed, "PropertiesChanged", PROPS, "org.bluez",
                                path_keyword="path")
        bus.add_signal_receiver(lambda p, i: self.added.append((str(p), i)), "InterfacesAdded",
                                "org.freedesktop.DBus.ObjectManager", "org.bluez", "/")
        bus.add_signal_receiver(lambda p, i: self.removed.append((str(p), list(i))),
                                "InterfacesRemoved", "org.freedesktop.DBus.ObjectManager",
                                "org.bluez", "/")

    def on_changed(self, iface, changed, invalidated, path=None):
        self.changes.append((str(path), str(iface), dict(changed)))

    def obj(self, path):
        return self.bus.get_object("org.bluez", path)

    def adapter(self, path=None):
        return dbus.Interface(self.obj(path or self.path), ADAPTER)

    def prop(self, path, iface, name):
        return self.obj(path).Get(iface, name, dbus_interface=PROPS)

    def objects(self):
        om = dbus.Interface(self.obj("/"), "org.freedesktop.DBus.ObjectManager")
        return {str(k): v for k, v in om.GetManagedObjects().items()}

    def find(self, iface, under=None, **match):
        for path, ifaces in sorted(self.objects().items()):
            if iface in ifaces and (under is None or path.startswith(under)):
                if all(str(ifaces[iface].get(k, "")).lower() == v.lower() if isinstance(v, str)
                       else ifaces[iface].get(k) == v for k, v in match.items()):
                    return path
        return None

    def discover(self, uuids=None):
        a = self.adapter()
        if uuids is not None:
            a.SetDiscoveryFilter({"UUIDs": dbus.Array(uuids, signature="s"),
                                  "Transport": "le"})
        a.StartDiscovery()

    def device(self, timeout=5.0):
        found = []
        spin(lambda: found.append(self.find(DEVICE, under=self.path + "/")) or found[-1],
             timeout)
        return found[-1]

    def connect(self, dev):
        self.obj(dev).Connect(dbus_interface=DEVICE)
        ok = spin(lambda: bool(self.prop(dev, DEVICE, "ServicesResolved")))
        check(ok, "ServicesResolved after Connect")
        return {u: self.find(CHRC, under=dev + "/", UUID=u)
                for u in (RX_UUID, TX_UUID, RO_UUID, NO_UUID)}


def start_echo(bench, logpath, *extra):
    r, w = os.pipe()
    p = subprocess.Popen([bluezbench.PYTHON, ECHO, "--log", logpath, "--ready-fd", str(w)] +
                         list(extra), env=bench.env(), pass_fds=(w,))
    os.close(w)
    with os.fdopen(r) as f:
        line = f.readline().strip()
    check(line == "ready", "cp-gatt-echo registered")
    bench.procs.append(p)
    return p


def calls(logpath, name=None):
    with open(logpath) as f:
        out = [json.loads(x) for x in f if x.strip()]
    return [c for c in out if name is None or c["call"] == name]


# ---------------------------------------------------------------- cases


def case_adapter(bench, bus, d):
    ph = Phone(bus)
    hci1 = ph.adapter()
    props = ph.obj(ph.path).GetAll(ADAPTER, dbus_interface=PROPS)
    for name in ("Address", "AddressType", "Name", "Alias", "Class", "Powered", "Discoverable",
                 "Pairable", "PairableTimeout", "DiscoverableTimeout", "Discovering", "UUIDs",
                 "Roles"):
        check(name in props, "Adapter1.%s present" % name)
    check(props["Powered"] is not None and bool(props["Powered"]), "powered at start")
    # StopDiscovery without a session: Failed
    expect_error("org.bluez.Error.Failed", hci1.StopDiscovery)
    expect_error("org.bluez.Error.InvalidArguments", hci1.SetDiscoveryFilter,
                 {"Transport": "radio"})
    expect_error("org.bluez.Error.InvalidArguments", hci1.SetDiscoveryFilter,
                 {"UUIDs": dbus.Array(["not-a-uuid"], signature="s")})
    expect_error("org.bluez.Error.InvalidArguments", hci1.SetDiscoveryFilter,
                 {"RSSI": dbus.Int32(-60)})
    check("UUIDs" in hci1.GetDiscoveryFilters(), "GetDiscoveryFilters")
    hci1.StartDiscovery()
    check(spin(lambda: bool(ph.prop(ph.path, ADAPTER, "Discovering"))), "Discovering")
    expect_error("org.bluez.Error.InProgress", hci1.StartDiscovery)
    hci1.StopDiscovery()
    check(spin(lambda: not ph.prop(ph.path, ADAPTER, "Discovering")), "not Discovering")
    # Properties: read-only and read-write
    o = ph.obj(ph.path)
    expect_error("org.freedesktop.DBus.Error.PropertyReadOnly", o.Set, ADAPTER, "Address",
                 "00:11:22:33:44:55", dbus_interface=PROPS)
    o.Set(ADAPTER, "Pairable", dbus.Boolean(False), dbus_interface=PROPS)
    o.Set(ADAPTER, "Powered", dbus.Boolean(False), dbus_interface=PROPS)
    check(spin(lambda: any(c[0] == ph.path and c[2].get("Powered") == 0 for c in ph.changes)),
          "PropertiesChanged Powered false")
    expect_error("org.bluez.Error.NotReady", hci1.StartDiscovery)
    expect_error("org.bluez.Error.NotReady", o.Set, ADAPTER, "Discoverable", dbus.Boolean(True),
                 dbus_interface=PROPS)
    o.Set(ADAPTER, "Powered", dbus.Boolean(True), dbus_interface=PROPS)
    check(bool(ph.prop(ph.path, ADAPTER, "Powered")), "powered again")


def case_advertising(bench, bus, d):
    ph = Phone(bus)
    log = os.path.join(d, "echo.log")
    ph.discover([SERVICE_UUID])
    check(ph.device(0.5) is None, "no device before the advertisement")
    echo = start_echo(bench, log, "--ad-timeout", "2")
    dev = ph.device()
    check(dev == "/org/bluez/hci1/dev_00_00_5E_00_53_10", "device path: %s" % dev)
    if dev:
        p = ph.obj(dev).GetAll(DEVICE, dbus_interface=PROPS)
        check([str(u) for u in p["UUIDs"]] == [SERVICE_UUID], "UUIDs from the advertisement")
        check(bytes(p["ManufacturerData"][0xFFFF]) == b"\x10\x01\x02\x03\x04\x05",
              "ManufacturerData")
        check(int(p["RSSI"]) == -55 and not p["Connected"] and not p["ServicesResolved"],
              "RSSI, not connected")
        check(str(p["Adapter"]) == "/org/bluez/hci1", "Adapter")
        expect_error("org.bluez.Error.NotConnected", ph.obj(dev).Disconnect,
                     dbus_interface=DEVICE)
    hci0 = ph.obj("/org/bluez/hci0")
    check(int(hci0.Get("org.bluez.LEAdvertisingManager1", "ActiveInstances",
                       dbus_interface=PROPS)) == 1, "ActiveInstances 1")
    # a filter for another UUID on a second client's discovery hides nothing
    # already seen; the advertisement's Timeout releases it and the device goes
    check(spin(lambda: calls(log, "Release"), 4), "Release after the advertisement's Timeout")
    check(spin(lambda: ph.find(DEVICE, under="/org/bluez/hci1/") is None),
          "device gone with its advertisement")
    check(int(hci0.Get("org.bluez.LEAdvertisingManager1", "ActiveInstances",
                       dbus_interface=PROPS)) == 0, "ActiveInstances 0")
    echo.terminate()
    echo.wait()
    # the registration rules, with advertisements of this process
    ad_errors(bus)


def ad_errors(bus):
    import dbus.service

    class Ad(dbus.service.Object):
        def __init__(self, path, props):
            self.p = props
            dbus.service.Object.__init__(self, bus, path)

        @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
        def GetAll(self, iface):
            return self.p

    mgr = dbus.Interface(bus.get_object("org.bluez", "/org/bluez/hci0"),
                         "org.bluez.LEAdvertisingManager1")

    def register(path):
        done = []
        mgr.RegisterAdvertisement(path, {}, reply_handler=lambda: done.append(None),
                                  error_handler=lambda e: done.append(e))
        spin(lambda: done)
        return done[0] if done else "no reply"

    uuid = "584971d3-8619-438a-8a65-74a2e1c8bb34"
    Ad("/t/ok", {"Type": "peripheral", "ServiceUUIDs": dbus.Array([uuid], signature="s"),
                 "ManufacturerData": dbus.Dictionary({dbus.UInt16(0xFFFF): dbus.Array(
                     b"\x12abcde", signature="y")}, signature="qv")})
    Ad("/t/long", {"Type": "peripheral", "ServiceUUIDs": dbus.Array([uuid], signature="s"),
                   "ManufacturerData": dbus.Dictionary({dbus.UInt16(0xFFFF): dbus.Array(
                       b"\x12abcdef", signature="y")}, signature="qv")})
    Ad("/t/type", {"Type": "scan"})
    check(register("/t/ok") is None, "the cellprov advertisement fits 31 bytes exactly")
    e = register("/t/ok")
    check(e and e.get_dbus_name() == "org.bluez.Error.AlreadyExists", "AlreadyExists: %s" % e)
    e = register("/t/long")
    check(e and e.get_dbus_name() == "org.bluez.Error.InvalidLength", "InvalidLength: %s" % e)
    e = register("/t/type")
    check(e and e.get_dbus_name() == "org.bluez.Error.InvalidArguments", "Type: %s" % e)
    mgr.UnregisterAdvertisement("/t/ok")
    expect_error("org.bluez.Error.DoesNotExist", mgr.UnregisterAdvertisement, "/t/ok")
    gm = dbus.Interface(bus.get_object("org.bluez", "/org/bluez/hci0"), "org.bluez.GattManager1")
    expect_error("org.bluez.Error.DoesNotExist", gm.UnregisterApplication, "/t/none")


def case_gatt(bench, bus, d):
    ph = Phone(bus)
    log = os.path.join(d, "echo.log")
    start_echo(bench, log)
    hci0 = ph.obj("/org/bluez/hci0")
    check(SERVICE_UUID in [str(u) for u in hci0.Get(ADAPTER, "UUIDs", dbus_interface=PROPS)],
          "the service in hci0's UUIDs")
    ph.discover([SERVICE_UUID])
    dev = ph.device()
    c = ph.connect(dev)
    check(all(c.values()), "four characteristics: %s" % c)
    check(bool(ph.prop(dev, DEVICE, "Connected")), "Connected")
    expect_error("org.bluez.Error.AlreadyConnected", ph.obj(dev).Connect, dbus_interface=DEVICE)
    svc = ph.find("org.bluez.GattService1", under=dev + "/", UUID=SERVICE_UUID)
    check(svc and str(ph.prop(svc, "org.bluez.GattService1", "Device")) == dev, "service Device")
    rx, tx, ro, no = (dbus.Interface(ph.obj(c[u]), CHRC) for u in (RX_UUID, TX_UUID, RO_UUID,
                                                                  NO_UUID))
    check(int(ph.prop(c[RX_UUID], CHRC, "MTU")) == 23, "MTU 23")
    check(sorted(ph.prop(c[RX_UUID], CHRC, "Flags")) == ["write", "write-without-response"],
          "Flags")
    # the device side sees the phone as a connected Device1
    side = "/org/bluez/hci0/dev_00_00_5E_00_53_11"
    check(bool(ph.prop(side, DEVICE, "Connected")), "hci0 sees the phone connected")

    # write request: options device, link, mtu; no offset
    rx.WriteValue(dbus.Array(b"hello", signature="y"), {})
    w = calls(log, "WriteValue")[-1]
    check(w["value"] == b"hello".hex() and w["options"] == {"device": side, "link": "LE", "mtu": 23},
          "server WriteValue options: %s" % w)
    # write command
    rx.WriteValue(dbus.Array(b"cmd", signature="y"), {"type": "command"})
    check(spin(lambda: calls(log, "WriteValue")[-1]["value"] == b"cmd".hex()), "write command")
    expect_error("org.bluez.Error.Failed", rx.WriteValue, dbus.Array(bytes(21), signature="y"),
                 {"type": "command"})
    expect_error("org.bluez.Error.InvalidArguments", rx.WriteValue,
                 dbus.Array(b"x", signature="y"), {"offset": dbus.UInt32(1)})
    # a long write (value > MTU - 3) reaches the application merged at offset 0 ...
    long_value = bytes(range(200))
    rx.WriteValue(dbus.Array(long_value, signature="y"), {})
    w = calls(log, "WriteValue")[-1]
    check(w["value"] == long_value.hex() and "offset" not in w["options"],
          "long write merged: %s" % w["options"])
    # ... or in its prepared pieces with offsets
    bench.knob("SplitLongWrites", True)
    n = len(calls(log, "WriteValue"))
    rx.WriteValue(dbus.Array(long_value, signature="y"), {})
    pieces = calls(log, "WriteValue")[n:]
    check(len(pieces) == 12 and [p["options"].get("offset", 0) for p in pieces] ==
          list(range(0, 200, 18)), "long write in pieces of MTU - 5: %s" %
          [p["options"].get("offset", 0) for p in pieces])
    check(bytes.fromhex("".join(p["value"] for p in pieces)) == long_value, "pieces join")
    bench.knob("SplitLongWrites", False)
    # a write at an offset, a write past 512 bytes
    rx.WriteValue(dbus.Array(b"tail", signature="y"), {"offset": dbus.UInt16(7)})
    check(calls(log, "WriteValue")[-1]["options"].get("offset") == 7, "offset option")
    expect_error("org.bluez.Error.InvalidArguments", rx.WriteValue,
                 dbus.Array(bytes(513), signature="y"), {})
    # the application's error, mapped through ATT
    expect_error("org.bluez.Error.NotAuthorized", no.WriteValue,
                     dbus.Array(b"x", signature="y"), {})
    # not readable; read long from offsets
    expect_error("org.bluez.Error.NotPermitted", rx.ReadValue, {})
    n = len(calls(log, "ReadValue"))
    v = bytes(ro.ReadValue({}))
    reads = calls(log, "ReadValue")[n:]
    check(v == bytes(i % 251 for i in range(600)), "read long: %d bytes" % len(v))
    check([r["options"].get("offset", 0) for r in reads] == list(range(0, 600, 22)),
          "Read Blob offsets: %s" % [r["options"].get("offset", 0) for r in reads])
    check(reads[0]["options"] == {"device": side, "link": "LE", "mtu": 23}, "read options")
    v = bytes(ro.ReadValue({"offset": dbus.UInt16(590)}))
    check(v == bytes(i % 251 for i in range(590, 600)), "read at an offset")
    # notifications: StartNotify, indications, Confirm
    expect_error("org.bluez.Error.NotSupported", rx.StartNotify)
    expect_error("org.bluez.Error.Failed", tx.StopNotify)
    tx.StartNotify()
    check(spin(lambda: calls(log, "StartNotify")), "StartNotify reached the application")
    check(bool(ph.prop(c[TX_UUID], CHRC, "Notifying")), "Notifying")
    tx.StartNotify()   # a second call of the same client: success
    ph.changes.clear()
    rx.WriteValue(dbus.Array(b"echo me", signature="y"), {})
    got = []
    spin(lambda: [got.append(bytes(ch[2]["Value"])) for ch in ph.changes
                  if ch[0] == c[TX_UUID] and "Value" in ch[2]] and got)
    check(got and got[0] == b"echo me", "indication as PropertiesChanged Value: %s" % got)
    check(spin(lambda: calls(log, "Confirm")), "Confirm after the indication")
    check(bytes(ph.prop(c[TX_UUID], CHRC, "Value")) == b"echo me", "cached Value")
    # an indication longer than MTU - 3 arrives cut
    ph.changes.clear()
    rx.WriteValue(dbus.Array(bytes(range(40)), signature="y"), {})
    check(spin(lambda: any(ch[0] == c[TX_UUID] and "Value" in ch[2] for ch in ph.changes)),
          "long indication")
    vals = [bytes(ch[2]["Value"]) for ch in ph.changes if ch[0] == c[TX_UUID] and "Value" in ch[2]]
    check(vals and vals[-1] == bytes(range(20)), "indication cut to MTU - 3: %s" % vals)
    expect_error("org.bluez.Error.NotSupported", tx.AcquireNotify, {})
    expect_error("org.bluez.Error.NotSupported", rx.AcquireWrite, {})
    tx.StopNotify()
    check(spin(lambda: calls(log, "StopNotify")), "StopNotify reached the application")
    # disconnect: proxies go, both sides see it
    ph.obj(dev).Disconnect(dbus_interface=DEVICE)
    check(spin(lambda: ph.find(CHRC, under=dev + "/") is None), "proxies removed")
    check(not ph.prop(dev, DEVICE, "Connected") and not ph.prop(dev, DEVICE, "ServicesResolved"),
          "disconnected")
    check(spin(lambda: side in [p for p, _ in ph.removed]), "hci0's Device1 of the phone removed")
    expect_error("org.freedesktop.DBus.Error.UnknownObject", rx.WriteValue,
                 dbus.Array(b"x", signature="y"), {})


def case_faults(bench, bus, d):
    ph = Phone(bus)
    log = os.path.join(d, "echo.log")
    start_echo(bench, log)
    ph.discover([SERVICE_UUID])
    dev = ph.device()
    # MTU 517: segments of 514 bytes, values of 512 at most
    bench.knob("SetMtu", dbus.UInt16(517))
    expect_error("org.freedesktop.DBus.Error.InvalidArgs", bench.knob, "SetMtu", dbus.UInt16(22))
    c = ph.connect(dev)
    rx = dbus.Interface(ph.obj(c[RX_UUID]), CHRC)
    tx = dbus.Interface(ph.obj(c[TX_UUID]), CHRC)
    check(int(ph.prop(c[RX_UUID], CHRC, "MTU")) == 517, "MTU 517")
    rx.WriteValue(dbus.Array(bytes(300), signature="y"), {})
    check(calls(log, "WriteValue")[-1]["options"]["mtu"] == 517, "mtu option 517")
    # refuse a write: the application never sees it
    n = len(calls(log, "WriteValue"))
    bench.knob("RefuseWrites", dbus.UInt32(1), "Failed")
    expect_error("org.bluez.Error.Failed", rx.WriteValue, dbus.Array(b"no", signature="y"), {})
    check(len(calls(log, "WriteValue")) == n, "refused write not delivered")
    rx.WriteValue(dbus.Array(b"yes", signature="y"), {})
    # delay: each transfer waits, in order
    bench.knob("SetDelay", dbus.UInt32(100))
    tx.StartNotify()
    t0 = time.monotonic()
    done = []
    for i in range(3):
        rx.WriteValue(dbus.Array(bytes([i]), signature="y"), {"type": "command"},
                      reply_handler=lambda: done.append(1), error_handler=lambda e: done.append(e))
    ph.changes.clear()
    spin(lambda: len([ch for ch in ph.changes if ch[0] == c[TX_UUID] and "Value" in ch[2]]) >= 3,
         5)
    vals = [bytes(ch[2]["Value"]) for ch in ph.changes if ch[0] == c[TX_UUID] and "Value" in ch[2]]
    check(vals == [b"\x00", b"\x01", b"\x02"], "in order under delay: %s" % vals)
    check(time.monotonic() - t0 >= 0.5, "delayed: %.3f s" % (time.monotonic() - t0))
    bench.knob("SetDelay", dbus.UInt32(0))
    # drop the link mid-message: two transfers pass (a write and its
    # indication), the third (the next write) finds the link gone
    check(spin(lambda: len(done) == 3), "the delayed writes answered")
    bench.knob("DropAfter", dbus.UInt32(2))
    n = len(calls(log, "WriteValue"))
    rx.WriteValue(dbus.Array(b"1", signature="y"), {})
    e = None
    try:
        rx.WriteValue(dbus.Array(b"2", signature="y"), {})
    except dbus.exceptions.DBusException as x:
        e = x.get_dbus_name()
    check(e in ("org.bluez.Error.Failed", "org.freedesktop.DBus.Error.UnknownObject"),
          "the write after the drop fails: %s" % e)
    check([w["value"] for w in calls(log, "WriteValue")[n:]] == [b"1".hex()],
          "only the write before the drop arrived")
    check(spin(lambda: not ph.prop(dev, DEVICE, "Connected")), "dropped: Connected false")
    check(spin(lambda: calls(log, "StopNotify")), "the drop ends the subscription (StopNotify)")
    stats = bench.knob("Stats")
    check(int(stats["drops"]) >= 1 and int(stats["links"]) == 0, "Stats: %s" % dict(stats))
    # the next connection works
    c = ph.connect(dev)
    rx = dbus.Interface(ph.obj(c[RX_UUID]), CHRC)
    rx.WriteValue(dbus.Array(b"again", signature="y"), {})
    check(calls(log, "WriteValue")[-1]["value"] == b"again".hex(), "works after the drop")
    bench.knob("DropLink")
    check(spin(lambda: not ph.prop(dev, DEVICE, "Connected")), "DropLink")


def case_restart(bench, bus, d):
    ph = Phone(bus)
    log = os.path.join(d, "echo.log")
    start_echo(bench, log, "--ad-timeout", "0")
    ph.discover([SERVICE_UUID])
    dev = ph.device()
    ph.connect(dev)
    owners = []
    bus.watch_name_owner("org.bluez", lambda n: owners.append(n))
    spin(lambda: owners)
    bench.restart(300)
    check(spin(lambda: len(owners) >= 3 and owners[-1] != ""), "org.bluez left and came back: %s"
          % owners)
    check("" in owners, "org.bluez had no owner for a while")
    check(spin(lambda: calls(log, "Release")), "the advertisement released on shutdown")
    # the application registers again by itself; the phone starts over
    check(spin(lambda: len(calls(log, "Registered")) >= 4), "application registered again")
    check(ph.find(DEVICE, under="/org/bluez/hci1/") is None, "no device before discovery")
    ph.discover([SERVICE_UUID])
    dev = ph.device()
    c = ph.connect(dev)
    dbus.Interface(ph.obj(c[RX_UUID]), CHRC).WriteValue(dbus.Array(b"after", signature="y"), {})
    check(calls(log, "WriteValue")[-1]["value"] == b"after".hex(), "works after the restart")
    # an application that goes away is unregistered; a phone's link drops
    for p in bench.procs[2:]:
        p.terminate()
        p.wait()
    check(spin(lambda: ph.find(DEVICE, under="/org/bluez/hci1/", Connected=True) is None),
          "link dropped with the application")
    hci0 = ph.obj("/org/bluez/hci0")
    check(spin(lambda: list(hci0.Get(ADAPTER, "UUIDs", dbus_interface=PROPS)) == []),
          "hci0's UUIDs empty once the application is gone")


CASES = {"adapter": case_adapter, "advertising": case_advertising, "gatt": case_gatt,
         "faults": case_faults, "restart": case_restart}


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in CASES:
        print("usage: test-bluez-sim.py %s" % "|".join(CASES), file=sys.stderr)
        return 2
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bench = bluezbench.Bench(verbose=bool(os.environ.get("CP_BLE_VERBOSE")))
    try:
        bus = dbus.bus.BusConnection(bench.address)
        with tempfile.TemporaryDirectory() as d:
            CASES[name](bench, bus, d)
    finally:
        bench.stop()
    print("test-bluez-sim %s: %d checks, %d failed" % (name, checks, failures))
    return 1 if failures or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
