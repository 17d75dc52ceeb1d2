# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the daemon tests share: a device identity made with openssl, a
private system-like dbus-daemon carrying the real bus policy file, a
NOTIFY_SOCKET listener, and cellprovd/cellprovctl runners. Standard
library only."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import prereq  # noqa: E402

BUILD = os.environ.get("CP_BUILD_DIR", "")
SOURCE = os.environ.get("CP_SOURCE_DIR", "")
CELLPROVD = os.path.join(BUILD, "daemon", "cellprovd")
CELLPROVCTL = os.path.join(BUILD, "tools", "cellprovctl")
POLICY = os.path.join(SOURCE, "daemon", "org.cellprov.Daemon1.conf")
POLKIT_POLICY = os.path.join(SOURCE, "daemon", "org.cellprov.policy")

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <!-- what polkit's own bus policy allows, for a mock polkitd -->
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def skip(msg):
    prereq.missing(msg)


class Env:
    def __init__(self):
        for prog in ("openssl", "dbus-daemon"):
            if not shutil.which(prog):
                skip(prog + " is not installed")
        if os.geteuid() != 0:
            skip("needs root: the bus policy lets only root call methods")
        self.dir = tempfile.mkdtemp(prefix="cp-daemon-test-")
        # the bus socket is in a directory others can enter, so a test
        # can call as nobody
        self.busdir = os.path.join(self.dir, "bus")
        os.mkdir(self.busdir)
        os.chmod(self.dir, 0o711)
        os.chmod(self.busdir, 0o777)
        self.state = os.path.join(self.dir, "state")
        self.procs = []
        self.bus = None
        self.daemon = None
        self.make_identity()

    # ---- identity and configuration ----

    def make_identity(self):
        self.key = os.path.join(self.dir, "device-key.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", self.key],
                       check=True, stderr=subprocess.DEVNULL)
        os.chmod(self.key, 0o600)
        spki = subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout", "-outform", "DER"],
                              check=True, capture_output=True).stdout
        self.device_id = hashlib.sha256(spki).hexdigest()[:32]
        text = subprocess.run(["openssl", "pkey", "-in", self.key, "-text", "-noout"],
                              check=True, capture_output=True, text=True).stdout
        # the private scalar as hex, to look for in logs
        priv = text.split("priv:")[1].split("pub:")[0]
        self.key_hex = "".join(c for c in priv if c in "0123456789abcdef")
        self.key_pem_lines = [l for l in open(self.key).read().splitlines()
                              if l and not l.startswith("-----")]
        self.adm1_value = "31415926"
        self.adm1 = os.path.join(self.dir, "adm1")
        with open(self.adm1, "w") as f:
            f.write(self.adm1_value + "\n")
        os.chmod(self.adm1, 0o600)
        self.url = "https://certs.example.net/devices/" + self.device_id
        self.write_config()

    def write_config(self, extra_modem="", nfc=None, extra_daemon=""):
        self.config = os.path.join(self.dir, "cellprov.conf")
        with open(self.config, "w") as f:
            f.write("[device]\nkey=%s\ncertificate-url=%s\nmanufacturer=Example Ltd\n"
                    "model=GW-1\nserial=SN0001\nsuites=B\n" % (self.key, self.url))
            if nfc:
                f.write("[nfc]\nconnstring=%s\n" % nfc)
            f.write("[modem]\ndevice=/dev/cdc-wdm-test\ncard=sysmo-isim-sja2\nadm1=%s\n%s"
                    "[daemon]\nstate-directory=%s\n%s" % (self.adm1, extra_modem, self.state,
                                                           extra_daemon))

    def built_with(self, macro):
        """A CP_HAVE_* of the build's cp-config.h."""
        with open(os.path.join(BUILD, "cp-config.h")) as f:
            return any(l.split()[1:] == [macro, "1"] for l in f if l.startswith("#define"))

    # ---- the bus ----

    def start_bus(self, with_policy=True):
        """with_policy False: a bus that lets anyone own and call anything,
        to check the daemon's own refusal."""
        sock = os.path.join(self.busdir, "system_bus_socket" + ("" if with_policy else "-open"))
        conf = os.path.join(self.dir, "bus.conf" if with_policy else "bus-open.conf")
        text = BUS_CONFIG.format(socket=sock, policy=POLICY)
        if not with_policy:
            text = text.replace("<include>%s</include>" % POLICY,
                                '<policy context="default"><allow own="*"/>'
                                '<allow send_type="method_call"/></policy>')
        with open(conf, "w") as f:
            f.write(text)
        self.bus = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork",
                                     "--print-address"], stdout=subprocess.PIPE, text=True)
        self.procs.append(self.bus)
        self.address = self.bus.stdout.readline().strip()
        check(self.address.startswith("unix:"), "dbus-daemon gave no address")
        os.environ["CELLPROV_BUS_ADDRESS"] = self.address

    # ---- polkit ----

    def start_polkit(self):
        """python-dbusmock's polkitd on the bus: it refuses every action
        until polkit_allow() names it, and logs each call."""
        if not os.path.exists("/usr/bin/python3") or subprocess.run(
                ["/usr/bin/python3", "-c", "import dbusmock"], capture_output=True).returncode:
            skip("python3-dbusmock is not installed")
        self.polkit_log = os.path.join(self.dir, "polkitd.log")
        e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.polkit = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--template", "polkitd",
                                        "-l", self.polkit_log], env=e,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(self.polkit)
        end = time.time() + 10
        while time.time() < end:
            if self.polkit_call("AllowUnknown", "boolean:false").returncode == 0:
                return
            check(self.polkit.poll() is None, "the mock polkitd exited")
            time.sleep(0.1)
        fail("the mock polkitd did not appear on the bus")

    def polkit_call(self, method, *args):
        return subprocess.run(["dbus-send", "--bus=" + self.address, "--print-reply",
                               "--dest=org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                               "org.freedesktop.DBus.Mock." + method] + list(args),
                              capture_output=True, text=True, timeout=10)

    def polkit_allow(self, *actions):
        check(self.polkit_call("SetAllowed", "array:string:" + ",".join(actions)).returncode == 0,
              "SetAllowed on the mock polkitd")

    def polkit_checks(self):
        """The CheckAuthorization calls the mock saw, one log line each."""
        try:
            return [l for l in open(self.polkit_log) if "CheckAuthorization" in l]
        except OSError:
            return []

    def stop_polkit(self):
        self.polkit.terminate()
        self.polkit.wait(5)

    # ---- the daemon ----

    def start_daemon(self, args=(), env=None, wait=True, log_name="cellprovd.log"):
        self.log_path = os.path.join(self.dir, log_name)
        e = dict(os.environ)
        e.update(env or {})
        self.log = open(self.log_path, "a")
        self.daemon = subprocess.Popen([CELLPROVD, "--config", self.config] + list(args),
                                       env=e, stdout=self.log, stderr=subprocess.STDOUT)
        self.procs.append(self.daemon)
        if wait:
            self.wait_ready()
        return self.daemon

    def wait_ready(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if self.daemon.poll() is not None:
                fail("cellprovd exited with %d:\n%s" % (self.daemon.returncode, self.read_log()))
            r = self.ctl("status", check_rc=False)
            if r.returncode == 0:
                return
            time.sleep(0.05)
        fail("cellprovd did not appear on the bus:\n" + self.read_log())

    def stop_daemon(self, sig=signal.SIGTERM, timeout=10):
        if not self.daemon or self.daemon.poll() is not None:
            return self.daemon.returncode if self.daemon else None
        self.daemon.send_signal(sig)
        try:
            return self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            fail("cellprovd did not stop within %d s of signal %d" % (timeout, sig))

    def read_log(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def ctl(self, *args, user=None, check_rc=True, json_out=False):
        cmd = [CELLPROVCTL] + (["-J"] if json_out else []) + list(args)
        if user:
            cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check_rc and r.returncode != 0:
            fail("%s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        if json_out and r.returncode == 0:
            r.json = json.loads(r.stdout)
        return r

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class NotifySocket:
    """A NOTIFY_SOCKET, as systemd gives a Type=notify service. Read all the
    time, like systemd does: a full datagram queue would block sd_notify()
    in the daemon's main loop."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.extend(data.split("\n"))

    def drain(self, until=None, timeout=5):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if until and any(until(m) for m in self.messages):
                    return True
            time.sleep(0.05)
        return until is None

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()
