# SPDX-License-Identifier: LGPL-2.1-or-later
"""A phone on the BlueZ stand-in (docs/ble.md), for tests of the device's
BLE transport: it scans on its adapter (hci1..N) for the cellprov
service, connects, enables indications on TX and runs protocol section
18 on the codec of libcellprov-protocol (cpble). Besides the well-behaved
requests (read_tag, write_profile, read_receipt) it writes raw segments,
for what a well-behaved phone never does.

    phone = Phone(bus, "hci1")
    phone.connect()
    status, body = phone.read_tag()
"""

import time

import dbus
from gi.repository import GLib

import cpble

CHRC = "org.bluez.GattCharacteristic1"
DEVICE = "org.bluez.Device1"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"

READ_TAG, WRITE_PROFILE, READ_RECEIPT = 1, 2, 3


def spin(cond, timeout=5.0):
    """Run the main context until cond() or timeout seconds."""
    ctx = GLib.MainContext.default()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        while ctx.pending():
            ctx.iteration(False)
        if cond():
            return True
        time.sleep(0.002)
    while ctx.pending():
        ctx.iteration(False)
    return cond()


class PhoneError(Exception):
    pass


class Phone:
    def __init__(self, bus, adapter="hci1"):
        self.bus = bus
        self.adapter = "/org/bluez/" + adapter
        self.values = []
        self.connected = False
        self.dev = None
        self.tx_path = None
        self.link = None
        self.stats = {"writes": 0, "indications": 0, "bytes": 0}
        bus.add_signal_receiver(self.on_changed, "PropertiesChanged", PROPS, "org.bluez",
                                path_keyword="path")

    def on_changed(self, iface, changed, invalidated, path=None):
        if iface == CHRC and path == self.tx_path and "Value" in changed:
            self.values.append(bytes(changed["Value"]))
        if iface == DEVICE and path == self.dev and "Connected" in changed:
            self.connected = bool(changed["Connected"])

    def objects(self):
        om = self.bus.get_object("org.bluez", "/")
        return om.GetManagedObjects(dbus_interface=OM)

    def find(self, iface, under, uuid=None):
        for p, i in self.objects().items():
            if str(p).startswith(under + "/") and iface in i and \
                    (uuid is None or str(i[iface].get("UUID")) == uuid):
                return str(p)
        return None

    def scan(self, timeout=5):
        """The device's Device1 as this adapter sees it advertising, or None."""
        hci = self.bus.get_object("org.bluez", self.adapter)
        hci.SetDiscoveryFilter({"UUIDs": dbus.Array([cpble.SERVICE_UUID], signature="s")},
                               dbus_interface="org.bluez.Adapter1")
        try:
            hci.StartDiscovery(dbus_interface="org.bluez.Adapter1")
        except dbus.exceptions.DBusException:
            pass        # already discovering
        found = []
        spin(lambda: found.append(self.find(DEVICE, self.adapter)) or found[-1], timeout)
        return found[-1] if found else None

    def advertised(self):
        """The manufacturer data the device advertises (section 18.3)."""
        md = self.bus.get_object("org.bluez", self.dev).Get(DEVICE, "ManufacturerData",
                                                            dbus_interface=PROPS)
        return bytes(md[0xFFFF])

    def connect(self, timeout=5, subscribe=True):
        self.dev = self.scan(timeout)
        if not self.dev:
            raise PhoneError("no cellprov device advertising on %s" % self.adapter)
        self.bus.get_object("org.bluez", self.dev).Connect(dbus_interface=DEVICE)
        self.connected = True
        if not spin(lambda: self.find(CHRC, self.dev, cpble.TX_UUID), timeout):
            raise PhoneError("the cellprov service is not on the device")
        self.rx_path = self.find(CHRC, self.dev, cpble.RX_UUID)
        self.tx_path = self.find(CHRC, self.dev, cpble.TX_UUID)
        self.rx = dbus.Interface(self.bus.get_object("org.bluez", self.rx_path), CHRC)
        self.mtu = int(self.bus.get_object("org.bluez", self.rx_path).Get(
            CHRC, "MTU", dbus_interface=PROPS))
        if subscribe:
            self.subscribe()

    def subscribe(self):
        """Enable indications on TX: a session starts (section 18.7)."""
        self.values = []
        dbus.Interface(self.bus.get_object("org.bluez", self.tx_path), CHRC).StartNotify()
        self.link = cpble.Link(self.mtu)

    def disconnect(self):
        if self.link:
            self.link.close()
            self.link = None
        try:
            self.bus.get_object("org.bluez", self.dev).Disconnect(dbus_interface=DEVICE)
        except dbus.exceptions.DBusException:
            pass
        spin(lambda: not self.connected, 5)

    def write(self, seg, offset=0):
        """One raw write on RX (with its offset option when not 0)."""
        opts = {"offset": dbus.UInt16(offset)} if offset else {}
        self.rx.WriteValue(dbus.Array(seg, signature="y"), opts)
        self.stats["writes"] += 1
        self.stats["bytes"] += len(seg)

    def wait_disconnected(self, timeout=10):
        return spin(lambda: not self.connected, timeout)

    def request(self, msg, timeout=40):
        """Send one request through the codec; the response message. A
        broken session raises PhoneError with the error's name (a D-Bus
        error, a codec error, "disconnected" or "timeout")."""
        link = self.link
        link.send(msg)
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end and self.connected:
                for seg in link.segments():
                    if len(seg) > self.mtu - 3:
                        raise PhoneError("a segment of %d bytes at MTU %d" % (len(seg), self.mtu))
                    self.write(seg)
                spin(lambda: self.values or not self.connected, 0.05)
                while self.values:
                    v = self.values.pop(0)
                    self.stats["indications"] += 1
                    self.stats["bytes"] += len(v)
                    got = link.receive(v)
                    if got is not None:
                        for seg in link.segments():     # the ack of the E segment
                            self.write(seg)
                        return got
                link.check()
        except dbus.exceptions.DBusException as e:
            raise PhoneError(e.get_dbus_name())
        except cpble.BleError as e:
            raise PhoneError(e.name)
        raise PhoneError("disconnected" if not self.connected else "timeout")

    def call(self, op, body=b""):
        """A request of op; (status, body) of its response."""
        r = self.request(bytes([1, op]) + body)
        if len(r) < 4 or r[0] != 1 or r[1] != op | 0x80:
            raise PhoneError("not a response to op %d: %s" % (op, r[:8].hex()))
        return r[2] << 8 | r[3], r[4:]

    def read_tag(self):
        return self.call(READ_TAG)

    def write_profile(self, ndef):
        return self.call(WRITE_PROFILE, ndef)

    def read_receipt(self):
        return self.call(READ_RECEIPT)
