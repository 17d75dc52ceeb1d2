# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole simulated bench: the network side of tests/integration/network
(TLS and manufacturer CAs, lighttpd, cellprov-ausf, cellprov-sm), a device
made by cellprov-mfg, a modem simulator (QMI by default; AT or MBIM, the
latter through a mbim-proxy of the bench's own) with its authenticating
network, two PN532 simulators joined by an RF link, cellprovd on one and
cellprov-companion on the other (companion_nfc, tap_nfc), or a scripted
phone in place of the companion for what a well-behaved companion never
does (phone, write_tag, tap). Standard library only."""

import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration", "network"))
import netbench  # noqa: E402
from netbench import Fail, check, prereq  # noqa: E402

ADM1 = "12345678"          # the simulators' card
FIRST_IMSI = "001010000000001"
OLD_IMSI = "001010123456789"
# the modem simulators, by the backend= that drives them
MODEM_SIMS = {"qmi": "tests/sim/qmi/cp-qmi-sim", "at": "tests/sim/at/cp-at-sim",
              "mbim": "tests/sim/mbim/cp-mbim-sim"}


def private_network():
    """A network namespace of this process's own (root), its loopback up:
    MBIM goes through mbim-proxy, whose socket is the abstract @mbim-proxy,
    shared by everything in a namespace; the bench's own proxy must be the
    one cellprovd reaches. Everything the bench starts afterwards is in it."""
    if ctypes.CDLL(None, use_errno=True).unshare(0x40000000) != 0:   # CLONE_NEWNET
        prereq.missing("no network namespace of the bench's own for @mbim-proxy (root, unshare -n)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, struct.pack("16sH14x", b"lo", 0)))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))   # SIOCSIFFLAGS IFF_UP


class E2E(netbench.Bench):
    def __init__(self, builddir, say_steps=False, modem="qmi", **kw):
        if modem not in MODEM_SIMS:
            raise ValueError("modem %r: one of %s" % (modem, ", ".join(MODEM_SIMS)))
        if modem == "mbim":
            private_network()
        super().__init__(builddir, **kw)
        self.say_steps = say_steps
        self.daemon_debug = False
        self.modem = modem
        self.modem_dump = None

    # the QMI bench's name for the simulator's dump (tests/integration/mm)
    @property
    def qmi_dump(self):
        return self.modem_dump

    @qmi_dump.setter
    def qmi_dump(self, path):
        self.modem_dump = path

    def step(self, n, text):
        if self.say_steps:
            print("step %2d: %s" % (n, text), flush=True)

    # ---- the device ----

    def make_gateway(self, name="gw", resident=True):
        """resident: [daemon] exit-when-idle=false, for the tests that
        inspect and kill one cellprovd process across a provisioning; the
        default configuration (exit when idle) has tests of its own."""
        self.gw = name
        self.pn532_target = self.path("pn532-device")
        self.modem_pty = self.path(self.modem)
        self.state_dir = self.path("state-" + name)
        # As a manufacturer ships it: trusting the bench's operator only.
        if not self.operator_root:
            self.make_operator()
        info = self.make_device(name, extra=[
            "--trusted-operators", self.operator_root,
            "--adm1", ADM1, "--connstring", "pn532_uart:" + self.pn532_target,
            "--modem-device", self.modem_pty, "--card", "sysmo-isim-sja2",
            "--state-directory", self.state_dir])
        # the simulator is on a pty, not behind qmi-proxy; backend=auto
        # finds QMI (no ModemManager on the bench), the others are named
        conf = open(info["config"]).read()
        if self.modem != "qmi":
            conf = conf.replace("\nbackend=auto\n", "\nbackend=%s\n" % self.modem)
        if "proxy=" in conf:
            conf = "\n".join("proxy=false" if l.startswith("proxy=") else l for l in conf.splitlines()) + "\n"
        else:
            conf = conf.replace("[modem]\n", "[modem]\nproxy=false\nregistration-timeout=15\n")
        if resident:
            conf = conf.replace("[daemon]\n", "[daemon]\nexit-when-idle=false\n")
        with open(info["config"], "w") as f:
            f.write(conf)
        self.gw_info = info
        return info

    def usim_credentials(self, imsi=FIRST_IMSI):
        """K_usim and OPc the AUSF will give the device for that IMSI (the
        key schedule with the bench's companion K_AUSF and OP)."""
        r = self.run([self.prog("tools/cellprov-tool"), "keys", "--kc", netbench.COMPANION_K_AUSF,
                      "--device-id", self.gw_info["device-id"], "--supi", imsi, "--op", netbench.OP,
                      "--nonce", "00" * 16, "--device-info", "00"])
        k = json.loads(r.stdout)
        return k["k-usim"], k["opc"]

    def start_mbim_proxy(self):
        """The bench's own mbim-proxy (in its own network namespace), up
        once @mbim-proxy takes connections; it stays across modem restarts."""
        if "mbim-proxy" in self.procs:
            return
        proxy = os.environ.get("CP_MBIM_PROXY") or "/usr/libexec/mbim-proxy"
        if not os.path.exists(proxy):
            prereq.missing("mbim-proxy (Debian package libmbim-proxy) is not installed")
        self.procs["mbim-proxy"] = subprocess.Popen([proxy, "--no-exit"], stdout=subprocess.DEVNULL,
                                                    stderr=open(self.path("mbim-proxy.log"), "a"))
        end = time.monotonic() + 5
        while time.monotonic() < end:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect("\0mbim-proxy")
                    return
                except OSError:
                    time.sleep(0.02)
        raise Fail("mbim-proxy did not come up")

    def start_modem(self, subscribers=None, extra=()):
        """The modem simulator; by default its network knows the device's
        future subscription (so AKA succeeds once the USIM holds it)."""
        subs = self.path("subscribers.txt")
        if subscribers is None:
            k, opc = self.usim_credentials()
            subscribers = ["%s %s %s 000000000000" % (FIRST_IMSI, k, opc)]
        netbench.write(subs, "# bench network\n" + "".join(s + "\n" for s in subscribers))
        if self.modem == "mbim":
            self.start_mbim_proxy()
        name = self.modem + "-sim"
        self.modem_dump = self.path(self.modem + ".state")
        log = open(self.path(name + ".log"), "a")
        p = subprocess.Popen([self.prog(MODEM_SIMS[self.modem]), "--pty", self.modem_pty,
                              "--subscribers", subs, "--dump", self.modem_dump, "--adm1", ADM1,
                              "--imsi", OLD_IMSI] + list(extra),
                             stdout=subprocess.PIPE, stderr=log, text=True)
        line = p.stdout.readline()
        if not line.startswith("ready"):
            raise Fail("cp-%s did not start: %r" % (name, line))
        self.procs[name] = p

    def stop_modem(self):
        p = self.procs.pop(self.modem + "-sim", None)
        if p:
            p.terminate()
            p.wait(10)

    def modem_state(self):
        state = {}
        for line in open(self.modem_dump).read().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                state[k] = v
        return state

    def nfc_env(self):
        # cellprovd's modem drivers from the build tree (CP_MODULE_DIR is
        # where they are installed)
        return dict(os.environ, LIBNFC_AUTO_SCAN="false", LIBNFC_INTRUSIVE_SCAN="false",
                    LIBNFC_LOG_LEVEL="0",
                    CELLPROV_MODULE_DIR=os.environ.get("CELLPROV_MODULE_DIR") or self.prog("modem"))

    def start_cellprovd(self, debug=True, env=None):
        """cellprovd on the bench, once it answers on the bus; env adds to
        its environment (e.g. CELLPROVD_TEST_HOLD)."""
        log = open(self.path("cellprovd.log"), "a")
        args = [self.prog("daemon/cellprovd"), "--config", self.gw_info["config"]]
        self.daemon_debug = debug
        if debug:
            args.append("--debug")
        extra_env = env
        env = self.nfc_env()
        env.update(extra_env or {})
        env["CELLPROV_BUS_ADDRESS"] = self.bus_address
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs["cellprovd"] = p
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise Fail("cellprovd exited with %d:\n%s" % (p.returncode, self.daemon_log()[-3000:]))
            r = self.ctl("status", check_rc=False)
            if r.returncode == 0:
                return p
            time.sleep(0.05)
        raise Fail("cellprovd did not come up:\n" + self.daemon_log()[-3000:])

    def kill_cellprovd(self, sig=signal.SIGKILL):
        p = self.procs.pop("cellprovd")
        p.send_signal(sig)
        return p.wait(timeout=15)

    def daemon_log(self):
        try:
            return open(self.path("cellprovd.log")).read()
        except OSError:
            return ""

    def wait_daemon_log(self, text, since=0, timeout=20):
        """cellprovd's log from offset since, once it holds text. What a
        check that something did NOT happen waits for: an event that must
        come after it (never a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while True:
            tail = self.daemon_log()[since:]
            if text in tail:
                return tail
            if time.monotonic() > deadline:
                raise Fail("no %r in cellprovd's log:\n%s" % (text, tail[-3000:]))
            time.sleep(0.02)

    def write_tag_settled(self, path, extra=""):
        """The phone writes path; returns once cellprovd has ended that
        session (debug line "nfc: session ended"): the tag delivers a
        written profile before it reports the session's end, in order on
        the daemon's main loop, so whatever the write caused has been
        decided by then (a clean end is logged at debug level only: this
        needs cellprovd with --debug). Returns the phone's status, output
        and the daemon's log of the session."""
        if not self.daemon_debug:
            raise Fail("write_tag_settled needs cellprovd's debug log")
        since = len(self.daemon_log())
        rc, out = self.write_tag(path, extra)
        return rc, out, self.wait_daemon_log("nfc: session ended", since)

    def start_bus(self):
        sock = self.path("system_bus_socket")
        policy = os.path.join(SOURCE, "daemon", "org.cellprov.Daemon1.conf")
        conf = self.path("bus.conf")
        netbench.write(conf, """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=%s</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><deny own="*"/><deny send_type="method_call"/>
<allow send_type="signal"/><allow send_requested_reply="true" send_type="method_return"/>
<allow send_requested_reply="true" send_type="error"/><allow receive_type="method_call"/>
<allow receive_type="method_return"/><allow receive_type="error"/><allow receive_type="signal"/>
<allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
<allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
</policy><include>%s</include></busconfig>
""" % (sock, policy))
        p = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.bus_address = p.stdout.readline().strip()
        self.procs["dbus-daemon"] = p

    def start_activating_bus(self, env=None):
        """A bus that starts cellprovd by D-Bus activation, as the system
        bus does on a device (org.cellprov.Daemon1.service). Activation on
        a system-type bus goes through the setuid dbus-daemon-launch-helper,
        so this is a session-type bus, whose dbus-daemon execs the service
        itself: its Exec runs the built cellprovd with the bench's
        configuration, appending its output and then its exit status
        ("cellprovd exited N") to cellprovd.log."""
        sock = self.path("activating_bus_socket")
        services = self.path("dbus-services")
        os.makedirs(services, exist_ok=True)
        wrapper = self.path("cellprovd-activated.sh")
        netbench.write(wrapper, "#!/bin/sh\n%s --config %s --debug >> %s 2>&1\n"
                       "echo \"cellprovd exited $?\" >> %s\n" % (
                           self.prog("daemon/cellprovd"), self.gw_info["config"],
                           self.path("cellprovd.log"), self.path("cellprovd.log")))
        os.chmod(wrapper, 0o755)
        netbench.write(os.path.join(services, "org.cellprov.Daemon1.service"),
                       "[D-BUS Service]\nName=org.cellprov.Daemon1\nExec=%s\n" % wrapper)
        conf = self.path("activating-bus.conf")
        netbench.write(conf, """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=%s</listen><auth>EXTERNAL</auth>
<servicedir>%s</servicedir>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
""" % (sock, services))
        self.bus_address = "unix:path=" + sock
        benv = self.nfc_env()
        benv.update(env or {})
        benv["CELLPROV_BUS_ADDRESS"] = self.bus_address
        benv["G_MESSAGES_DEBUG"] = "all"
        p = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=benv)
        check(p.stdout.readline().startswith("unix:path=" + sock), "the activating bus is up")
        self.procs["dbus-daemon"] = p

    def cellprovd_pids(self):
        """The cellprovd processes of this bench (its configuration on their
        command line), however they were started."""
        exe = os.path.realpath(self.prog("daemon/cellprovd"))
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
                if os.path.realpath("/proc/%s/exe" % pid) == exe and \
                        self.gw_info["config"].encode() in cmd:
                    pids.append(int(pid))
            except OSError:
                pass
        return pids

    def ctl(self, *args, check_rc=True):
        env = dict(os.environ, CELLPROV_BUS_ADDRESS=self.bus_address)
        r = subprocess.run([self.prog("tools/cellprovctl"), "-J"] + list(args), capture_output=True,
                           text=True, timeout=120, env=env)
        if check_rc and r.returncode != 0:
            raise Fail("cellprovctl %s: %d %s" % (" ".join(args), r.returncode, r.stderr))
        r.json = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
        return r

    def ctl_text(self, *args):
        env = dict(os.environ, CELLPROV_BUS_ADDRESS=self.bus_address)
        return subprocess.run([self.prog("tools/cellprovctl")] + list(args), capture_output=True,
                              text=True, timeout=60, env=env).stdout

    def wait_state(self, state, timeout=60):
        r = self.ctl("--timeout", str(timeout), "wait", state, check_rc=False)
        if r.returncode != 0:
            bus = self.procs.get("dbus-daemon")
            raise Fail("cellprovd never reached %s: %s (dbus-daemon %s, cellprovd %s)\n%s" % (
                state, r.stderr, "exited %s" % bus.poll() if bus and bus.poll() is not None else "running",
                self.procs["cellprovd"].poll() if "cellprovd" in self.procs else "not started",
                self.daemon_log()[-4000:]))

    # ---- the companion's reader: a second PN532 on the RF link ----

    def link_up(self):
        """cp-pn532-sim in link mode: the device's PN532 (target mode) and
        the companion's (initiator mode) joined by the simulated RF field,
        real libnfc on both. It takes the device's pty from a scripted
        phone; the device's tag reopens its controller by itself."""
        if "pn532-link" in self.procs:
            return
        self.pn532_companion = self.path("pn532-companion")
        log = open(self.path("pn532-link.log"), "a")
        trace = open(self.path("pn532-link.trace"), "a")
        p = subprocess.Popen([self.prog("tests/sim/pn532/cp-pn532-sim"), "--target-pty", self.pn532_target,
                              "--initiator-pty", self.pn532_companion, "--fwt-ms", "5000", "-v"],
                             stdout=subprocess.PIPE, stderr=trace, text=True)
        line = p.stdout.readline()
        if line.strip() != "ready":
            p.kill()
            p.wait()
            raise Fail("cp-pn532-sim (link mode) did not start: %r" % line)
        self.procs["pn532-link"] = p

        def copy():
            for line in p.stdout:
                log.write(line)
                log.flush()

        threading.Thread(target=copy, daemon=True).start()

    def link_down(self):
        p = self.procs.pop("pn532-link", None)
        if p:
            p.terminate()
            p.wait(timeout=10)

    def link_sessions(self):
        """The RF link's finished sessions (cp-pn532-sim's `session N end`
        lines), as dicts."""
        out = []
        try:
            lines = open(self.path("pn532-link.log")).read().splitlines()
        except OSError:
            return out
        for line in lines:
            w = line.split()
            if len(w) > 4 and w[0] == "session" and w[2] == "end":
                d = dict(kv.split("=", 1) for kv in w[4:] if "=" in kv)
                d["reason"] = w[3]
                out.append(d)
        return out

    def written_over_link(self):
        """Every NDEF message the companion wrote over the RF link, as an
        eavesdropper on the field would record them: the UPDATE BINARY
        APDUs of the companion PN532's InDataExchange commands in the
        simulator's frame trace, put together as the T4T write procedure
        lays them out (NLEN 0 with the first bytes, chunks, final NLEN)."""
        msgs = []
        buf = bytearray()
        try:
            lines = open(self.path("pn532-link.trace")).read().splitlines()
        except OSError:
            return msgs
        for line in lines:
            w = line.split()
            # pn532-sim initiator -> d4 40 <Tg> <C-APDU>
            if w[:3] != ["pn532-sim", "initiator", "->"] or w[3:5] != ["d4", "40"] or len(w) < 11:
                continue
            apdu = bytes(int(x, 16) for x in w[6:])
            if apdu[:2] != b"\x00\xd6" or len(apdu) < 5:
                continue
            off, n = apdu[2] << 8 | apdu[3], apdu[4]
            data = apdu[5:5 + n]
            if len(buf) < off + n:
                buf.extend(bytes(off + n - len(buf)))
            buf[off:off + n] = data
            if off == 0 and n >= 2:
                # NLEN 0 opens a write (with or without the first bytes);
                # a non-zero NLEN ends one (alone, or with the message).
                nlen = data[0] << 8 | data[1]
                if nlen:
                    msgs.append(bytes(buf[2:2 + nlen]))
        return msgs

    def companion_nfc(self, extra=(), tap_timeout=30):
        """cellprov-companion on the companion's PN532: its three taps go
        over the RF link to the device's tag. Progress (stderr) goes to
        companion.log; finish with companion_result()."""
        self.link_up()
        log = open(self.path("companion.log"), "a")
        args = [self.prog("tools/cellprov-companion"), "--json",
                "--sm", "https://127.0.0.1:%d" % self.sm_port, "--sm-ca", self.tls_ca,
                "--token", self.path("companion-token"),
                "--connstring", "pn532_uart:" + self.pn532_companion,
                "--tap-timeout", str(tap_timeout)] + list(extra)
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=self.nfc_env())

    def companion_result(self, comp, timeout=90):
        """The companion's exit status and JSON report."""
        try:
            out, _ = comp.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            comp.kill()
            comp.communicate()
            raise Fail("the companion did not finish in %d s:\n%s" % (timeout, self.companion_log()[-3000:]))
        try:
            return comp.returncode, json.loads(out)
        except ValueError:
            raise Fail("companion printed no JSON (%d): %r\n%s" % (comp.returncode, out,
                                                                   self.companion_log()[-3000:]))

    def companion_log(self):
        try:
            return open(self.path("companion.log")).read()
        except OSError:
            return ""

    def tap_nfc(self, timeout=90):
        """The companion's three taps over the RF link, to the end: read
        the tag, the SM's profile written, the receipt read and verified."""
        self.step(1, "the companion reads the device's tag over NFC (URL, signed device record)")
        comp = self.companion_nfc()
        return self.companion_result(comp, timeout=timeout)

    # ---- the owner's lifecycle commands ----

    def card(self):
        """The card's files as the modem simulator dumps them (ef-*)."""
        return {k: v for k, v in self.modem_state().items() if k.startswith("ef-")}

    def ausf_view(self):
        """The AUSF's database: {supi: (companion SUPI, [key generations])} of
        this device's subscribers."""
        subs = self.db_rows("ausf", "SELECT supi, companion FROM subscribers WHERE device_id = ?",
                            (self.gw_info["device-id"],))
        return {supi: (comp, sorted(g for (g,) in self.db_rows(
            "ausf", "SELECT generation FROM keysets WHERE supi = ?", (supi,))))
            for supi, comp in subs}

    def owner_step(self, args, token=None, timeout=90):
        """cellprov-companion COMMAND over NFC as the owner (token: another
        companion's); once the SM has answered (new key sets at the AUSF),
        the simulated network learns them from the AUSF's export before the
        device registers with them. Returns the companion's status and
        JSON report."""
        since = len(self.companion_log())
        extra = (["--token", token] if token else []) + list(args)
        comp = self.companion_nfc(extra=extra)
        deadline = time.monotonic() + 30
        while "the SM answered" not in self.companion_log()[since:] and comp.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.export_subscribers()
        return self.companion_result(comp, timeout=timeout)


    def phone(self, script, timeout=60):
        """One tap of a scripted phone: a PN532 simulator on the device's
        pty whose initiator runs script (cp-pn532-sim's phone language).
        The device's tag reopens the controller by itself."""
        self.link_down()
        log = open(self.path("pn532-sim.log"), "a")
        r = subprocess.run([self.prog("tests/sim/pn532/cp-pn532-sim"), "--target-pty", self.pn532_target,
                            "-v", "--run", script], capture_output=True, text=True, timeout=timeout)
        log.write(r.stdout + r.stderr)
        return r.returncode, r.stdout

    def read_tag(self, path):
        tmp = path + ".part"
        rc, out = self.phone("tap 20000; select-app; read-cc; read-ndef %s; release" % tmp)
        if rc != 0:
            raise Fail("phone: reading the tag failed: %s\n%s" % (out, self.daemon_log()[-3000:]))
        os.rename(tmp, path)       # the companion polls for it: whole or absent

    def write_tag(self, path, extra=""):
        return self.phone("tap 20000; select-app; read-cc; write-ndef %s %s; release" % (path, extra))

    def companion(self, tag, profile=None, receipt_tag=None, token=None, extra=(), wait=True):
        return super().companion(tag, profile=profile, receipt_tag=receipt_tag, token=token,
                                 extra=extra, wait=wait)

    def tap(self, before_write=None, timeout=90):
        """The companion's three taps (its NFC is the scripted phone above):
        read the tag, the companion asks the SM and hands over the profile,
        the phone writes it (after before_write(path) may alter it), the
        device provisions, the phone reads the receipt for the companion."""
        n = len([f for f in os.listdir(self.tmp) if f.startswith("tap-")]) + 1
        tag = self.path("tap-%d.tag" % n)
        profile = tag + ".profile"
        after = tag + ".after"
        self.step(1, "the companion reads the device's tag (URL, signed device record)")
        self.read_tag(tag)
        comp = self.companion(tag, profile=profile, receipt_tag=after, wait=False)
        deadline = time.monotonic() + 30
        while not os.path.exists(profile) and comp.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(profile):
            out, err = comp.communicate(timeout=10)
            raise Fail("the companion made no profile: %s %s" % (out, err[-2000:]))
        self.step(8, "the SM returned the profile, K'' and the nonce; the companion keeps K''")
        if before_write:
            before_write(profile)
        self.step(9, "the companion writes the profile to the device")
        if self.daemon_debug:
            rc, out, _ = self.write_tag_settled(profile)
        else:
            rc, out = self.write_tag(profile)       # the demos: finish_tap waits
        return comp, tag, after, rc, out

    def finish_tap(self, comp, after, timeout=60):
        """Tap 3: the phone reads the receipt; the companion verifies it."""
        self.read_tag(after)
        out, err = comp.communicate(timeout=timeout)
        try:
            res = json.loads(out)
        except ValueError:
            raise Fail("companion printed no JSON (%d): %r %r" % (comp.returncode, out, err[-2000:]))
        return comp.returncode, res

    def setup_all(self, resident=True):
        """resident False: cellprovd's default configuration (it exits when
        idle) on a bus that starts it by D-Bus activation."""
        self.setup()
        if resident:
            self.start_bus()
            self.make_gateway()
        else:
            self.make_gateway(resident=False)
            self.start_activating_bus()
        return self

    def teardown(self):
        # cellprovd started by D-Bus activation is no child of the bench
        if getattr(self, "gw_info", None):
            for pid in self.cellprovd_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        super().teardown()

    def dump_logs(self):
        super().dump_logs()
        for name in ("cellprovd", self.modem + "-sim", "mbim-proxy", "pn532-sim", "pn532-link", "companion"):
            p = self.path(name + ".log")
            if os.path.exists(p):
                sys.stdout.write("---- %s.log ----\n%s" % (name, open(p).read()[-8000:]))


def run(builddir, tests, resident=True, **kw):
    b = E2E(builddir, **kw)
    failed = False
    try:
        b.setup_all(resident=resident)
        for t in tests:
            print("==", t.__name__, flush=True)
            t(b)
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
