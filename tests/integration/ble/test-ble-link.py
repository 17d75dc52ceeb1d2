#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The BLE framing codec over the BlueZ stand-in, through real D-Bus: a
device (ble-peripheral.py, the codec behind the cellprov GATT service on
hci0) and this test as the phone on hci1 (tests/sim/bluez/blephone.py: the
codec again, writing RX and reading TX's indications) run a read-tag
session of protocol section 18.

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
import blephone  # noqa: E402
from blephone import spin  # noqa: E402

DEVICE = os.path.join(HERE, "ble-peripheral.py")
DEVICE_ID = "d727a449017a34c53dd88a22afa5736d"      # the test vectors'

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


def read_tag(ph, timeout=20):
    """One read-tag request in a session of its own; the response, or the
    name of the error that ended it, and the transfers it took."""
    before = dict(ph.stats)
    try:
        got = ph.request(b"\x01\x01", timeout)
    except blephone.PhoneError as e:
        got = str(e)
    return got, {k: ph.stats[k] - before[k] for k in before}


def connect(ph):
    """Scan, connect and subscribe: a session starts."""
    ph.connect()
    check(ph.advertised() == b"\x10" + bytes.fromhex(DEVICE_ID)[:5], "the DeviceID prefix advertised")


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
            ph = blephone.Phone(bus, "hci1")
            connect(ph)
            check(ph.mtu == mtus[name], "MTU %d" % ph.mtu)
            if name == "delay":
                bench.knob("SetDelay", dbus.UInt32(15))
            if name == "drop":
                # the link goes in the middle of the device's answer
                bench.knob("DropAfter", dbus.UInt32(6))
                got, stats = read_tag(ph, 10)
                check(got in ("disconnected", "org.bluez.Error.Failed",
                              "org.freedesktop.DBus.Error.UnknownObject"),
                      "the session ends with the link: %s" % (got,))
                check(spin(lambda: not ph.connected, 5), "disconnected")
                ph.disconnect()
                connect(ph)
            t0 = time.monotonic()
            got, stats = read_tag(ph)
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
