# SPDX-License-Identifier: LGPL-2.1-or-later
"""The BLE bench for Python tests (docs/ble.md): a private bus with a
session-like policy, cp-bluez-sim owning org.bluez on it, and helpers to
reach its fault knobs. Standard library plus python3-dbus.

    bench = Bench(["--mtu", "185"])     # bus + stand-in, ready
    env = bench.env()                   # DBUS_SYSTEM_BUS_ADDRESS for children
    bench.knob("SetDelay", 20)          # org.cellprov.test.BlueZSim1
    bench.restart(200)                  # org.bluez gone for 200 ms
    bench.stop()
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "cp-bluez-sim")
PYTHON = "/usr/bin/python3"   # Debian's, with python3-dbus and python3-gi

CONTROL_NAME = "org.cellprov.test.BlueZSim"
CONTROL_PATH = "/org/cellprov/test/BlueZSim"
CONTROL_IFACE = "org.cellprov.test.BlueZSim1"

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def missing_prerequisite():
    """What the bench needs that the machine lacks, or None."""
    if not shutil.which("dbus-daemon"):
        return "dbus-daemon is not installed"
    r = subprocess.run([PYTHON, "-c", "import dbus, gi; from gi.repository import GLib"],
                       capture_output=True)
    if r.returncode != 0:
        return "python3-dbus and python3-gi are not installed"
    return None


class Bench:
    def __init__(self, sim_args=(), verbose=False):
        self.dir = tempfile.mkdtemp(prefix="cp-ble-bench-")
        self.procs = []
        sock = os.path.join(self.dir, "bus")
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(socket=sock))
        self.bus = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork",
                                     "--print-address"], stdout=subprocess.PIPE, text=True)
        self.procs.append(self.bus)
        self.address = self.bus.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start")
        self.sim = None
        self.start_sim(sim_args, verbose)

    def env(self, extra=None):
        e = dict(os.environ)
        e["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        e.pop("DBUS_SESSION_BUS_ADDRESS", None)
        if extra:
            e.update(extra)
        return e

    def start_sim(self, sim_args=(), verbose=False):
        r, w = os.pipe()
        args = [PYTHON, SIM, "--bus", self.address, "--ready-fd", str(w)] + list(sim_args)
        if verbose:
            args.append("-v")
        self.sim = subprocess.Popen(args, pass_fds=(w,))
        self.procs.append(self.sim)
        os.close(w)
        with os.fdopen(r) as f:
            if f.readline().strip() != "ready":
                raise RuntimeError("cp-bluez-sim did not start")

    def knob(self, method, *args):
        """Call a method of org.cellprov.test.BlueZSim1 with gdbus-like
        typing from the arguments (see docs/ble.md)."""
        import dbus
        bus = dbus.bus.BusConnection(self.address)
        try:
            obj = bus.get_object(CONTROL_NAME, CONTROL_PATH)
            return obj.get_dbus_method(method, CONTROL_IFACE)(*args)
        finally:
            bus.close()

    def restart(self, down_ms):
        self.knob("Restart", down_ms)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.bus.stdout:
            self.bus.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(cond, timeout=5.0, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


if __name__ == "__main__":
    # A bench by hand: prints the address, runs until interrupted.
    b = Bench(sys.argv[1:], verbose=True)
    print("DBUS_SYSTEM_BUS_ADDRESS=" + b.address, flush=True)
    try:
        b.sim.wait()
    except KeyboardInterrupt:
        pass
    b.stop()
