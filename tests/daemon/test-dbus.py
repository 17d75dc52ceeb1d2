#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cellprovd on a private bus with the real policy file, driven with
cellprovctl: properties (Version among them), methods and their
registered errors, who may call what (root, polkit allowing, denying or
absent, polkit=false), the polkit action file, StateChanged, sd_notify READY/STATUS/WATCHDOG, a second instance refused,
clean SIGTERM, no secret in a debug log, and the poll properties."""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonenv import POLKIT_POLICY, Env, NotifySocket, check, fail  # noqa: E402

NOBODY = 65534


def main():
    env = Env()
    try:
        run(env)
    finally:
        env.close()
    print("ok")


def dbus_prop(env, name):
    r = subprocess.run(["dbus-send", "--bus=" + env.address, "--print-reply",
                        "--dest=org.cellprov.Daemon1", "/org/cellprov/Daemon1",
                        "org.freedesktop.DBus.Properties.Get", "string:org.cellprov.Daemon1",
                        "string:" + name], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0, "Get %s: %s%s" % (name, r.stdout, r.stderr))
    return r.stdout.split("variant", 1)[1].strip()


def tlv(tag, value):
    return bytes([tag]) + len(value).to_bytes(2, "big") + value


def check_owner(env):
    """A journal (format 2, docs/daemon.md) bound at version 7 to a pinned
    operator, and [device] trusted-operators set: the properties and
    cellprovctl say so."""
    pin = hashlib.sha256(b"an operator root").digest()
    body = b"CPJ\x02" + tlv(0x01, bytes([7])) + tlv(0x02, (3).to_bytes(8, "big")) + \
        tlv(0x03, (5).to_bytes(8, "big")) + tlv(0x04, b"\0\0") + tlv(0x0A, b"\x01") + \
        tlv(0x0B, (7).to_bytes(8, "big")) + tlv(0x0C, pin) + tlv(0x0D, "Opérateur".encode())
    with open(os.path.join(env.state, "journal"), "wb") as f:
        f.write(body + tlv(0x7F, hashlib.sha256(body).digest()))
    roots = os.path.join(env.dir, "roots.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", os.path.join(env.dir, "root-key.pem"), "-out", roots,
                    "-subj", "/O=Example Operator/CN=root", "-days", "30"],
                   check=True, capture_output=True, timeout=30)
    with open(env.config) as f:
        conf = f.read()
    with open(env.config, "w") as f:
        f.write(conf.replace("suites=B\n", "suites=B\ntrusted-operators=%s\n" % roots))
    env.start_daemon(log_name="cellprovd-owner.log")
    check(dbus_prop(env, "Bound") == "boolean true", "Bound: " + dbus_prop(env, "Bound"))
    check(dbus_prop(env, "BindingVersion") == "uint64 7", "BindingVersion")
    check(dbus_prop(env, "OperatorName") == 'string "Opérateur"', "OperatorName: " + dbus_prop(env, "OperatorName"))
    check(dbus_prop(env, "OperatorRoot") == 'string "%s"' % pin.hex(), "OperatorRoot")
    check(dbus_prop(env, "TrustMode") == 'string "anchors"', "TrustMode")
    own = env.ctl("status", json_out=True).json["owner"]
    check(own == {"bound": True, "binding-version": 7, "operator": "Opérateur",
                  "operator-root": pin.hex(), "trust-mode": "anchors"}, "owner: %r" % own)
    text = env.ctl("status").stdout
    check("bound: yes" in text and "operator root: " + pin.hex() in text, "text owner:\n" + text)
    check("first operator" not in env.read_log(), "first-use warning with anchors")

    # factory-reset: the binding goes (PropertiesChanged says so), the pin
    # and the committed profile_seq stay
    mon = subprocess.Popen(["dbus-monitor", "--address", env.address,
                            "type='signal',interface='org.freedesktop.DBus.Properties',"
                            "member='PropertiesChanged'"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    check(env.ctl("factory-reset").returncode == 0, "factory-reset")
    time.sleep(0.5)
    mon.terminate()
    seen = mon.communicate(timeout=10)[0]
    check('"Bound"' in seen and "boolean false" in seen and '"BindingVersion"' in seen,
          "no PropertiesChanged for the binding:\n" + seen)
    own = env.ctl("status", json_out=True).json
    check(own["status"]["state"] == "idle", "state after factory-reset: %r" % own)
    check(own["owner"] == {"bound": False, "binding-version": 0, "operator": "Opérateur",
                           "operator-root": pin.hex(), "trust-mode": "anchors"},
          "owner after factory-reset: %r" % own["owner"])
    check(own["daemon"]["profile-seq"] == 5, "profile seq after factory-reset: %r" % own)
    check("factory reset: the owner binding" in env.ctl("logs").stdout, "factory reset not logged")
    check(env.stop_daemon() == 0, "clean stop")
    os.unlink(os.path.join(env.state, "journal"))
    env.write_config()


def closed_port():
    """A local TCP port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_poll(env):
    """[network] sm-url at a closed local port, and a journal bound,
    provisioned and registered (an operator): the daemon polls early after
    its start, and PollEnabled, LastPoll, LastPollResult ("unreachable")
    and NextPoll, and cellprovctl status, say so (a resident daemon:
    [daemon] exit-when-idle=false)."""
    body = b"CPJ\x02" + tlv(0x01, bytes([7])) + tlv(0x02, (3).to_bytes(8, "big")) + \
        tlv(0x03, (5).to_bytes(8, "big")) + tlv(0x04, b"\0\0") + tlv(0x07, b"00101") + \
        tlv(0x0A, b"\x01") + tlv(0x0B, (2).to_bytes(8, "big"))
    with open(os.path.join(env.state, "journal"), "wb") as f:
        f.write(body + tlv(0x7F, hashlib.sha256(body).digest()))
    # resident: a daemon that exits when idle would stop after its first poll
    env.write_config(extra_daemon="exit-when-idle=false\n")
    with open(env.config, "a") as f:
        f.write("[network]\nsm-url=https://127.0.0.1:%d\n" % closed_port())
    start = int(time.time())
    env.start_daemon(env={"CELLPROVD_TEST_POLL_MS": "300"}, log_name="cellprovd-poll.log")
    check(dbus_prop(env, "PollEnabled") == "boolean true", "PollEnabled: " + dbus_prop(env, "PollEnabled"))
    deadline = time.time() + 10
    while dbus_prop(env, "LastPollResult") != 'string "unreachable"' and time.time() < deadline:
        time.sleep(0.1)
    check(dbus_prop(env, "LastPollResult") == 'string "unreachable"',
          "LastPollResult: " + dbus_prop(env, "LastPollResult"))
    last = int(dbus_prop(env, "LastPoll").split()[1])
    check(start <= last <= time.time(), "LastPoll %d, started at %d" % (last, start))
    st = env.ctl("status", json_out=True).json["poll"]
    check(st["enabled"] is True and st["last-poll-result"] == "unreachable" and
          st["last-poll"] >= start and st["next-poll"] >= st["last-poll"], "poll: %r" % st)
    text = env.ctl("status").stdout
    check("last result: unreachable" in text and " UTC" in text, "text poll:\n" + text)
    check("poll: failed: " in env.read_log(), "no failed poll logged")
    check(env.stop_daemon() == 0, "clean stop")
    os.unlink(os.path.join(env.state, "journal"))
    env.write_config()


def run(env):
    env.start_bus()
    notify = NotifySocket(env.dir)
    env.start_daemon(["--debug"], env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})

    # sd_notify: READY, a STATUS line with the state, and watchdog pings
    with_systemd = env.built_with("CP_HAVE_SYSTEMD")
    if with_systemd:
        check(notify.drain(lambda m: m == "READY=1"), "no READY=1: %r" % notify.messages)
        check(notify.drain(lambda m: m.startswith("STATUS=idle")), "no STATUS=idle: %r" % notify.messages)
        check(notify.drain(lambda m: m == "WATCHDOG=1", timeout=3), "no WATCHDOG=1: %r" % notify.messages)
    else:
        print("built without systemd: no sd_notify to check")

    # status, identity, receipt: text and JSON say the same
    st = env.ctl("status", json_out=True).json
    check(st["status"]["state"] == "idle", "state: %r" % st)
    check(st["status"]["last-error"] == "none", "last error: %r" % st)
    check(st["network"]["imsi"] == "none", "imsi: %r" % st)
    check(st["daemon"]["profile-seq"] == 0, "profile seq: %r" % st)
    # no [network] sm-url: no polling
    check(st["poll"] == {"enabled": False, "last-poll": 0, "last-poll-result": "none",
                         "next-poll": 0}, "poll: %r" % st["poll"])
    check(dbus_prop(env, "PollEnabled") == "boolean false", "PollEnabled: " + dbus_prop(env, "PollEnabled"))
    # Version: the version cellprovd --version prints
    version = subprocess.run([env.daemon.args[0], "--version"], capture_output=True,
                             text=True).stdout.split()[1]
    check(st["daemon"]["version"] == version, "Version %r, want %s" % (st["daemon"], version))
    r = subprocess.run(["dbus-send", "--bus=" + env.address, "--print-reply",
                        "--dest=org.cellprov.Daemon1", "/org/cellprov/Daemon1",
                        "org.freedesktop.DBus.Properties.Get", "string:org.cellprov.Daemon1",
                        "string:Version"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and 'string "%s"' % version in r.stdout, "Version property: " + r.stdout + r.stderr)
    text = env.ctl("status").stdout
    check("state: idle" in text and "Status" in text, "text status:\n" + text)
    # a new device with no trusted-operators: no owner, trust on first use
    own = st["owner"]
    check(own == {"bound": False, "binding-version": 0, "operator": "none", "operator-root": "none",
                  "trust-mode": "first-use"}, "owner: %r" % own)
    check("trust mode: first-use" in text and "bound: no" in text, "text owner:\n" + text)
    check("will trust the first operator that provisions it" in env.read_log(),
          "no first-use warning at start:\n" + env.read_log())

    ident = env.ctl("identity", json_out=True).json["identity"]
    check(ident["device-id"] == env.device_id, "device id %r, want %s" % (ident, env.device_id))
    check(ident["certificate-url"] == env.url, "url: %r" % ident)
    check(ident["manufacturer"] == "Example Ltd" and ident["serial"] == "SN0001", "%r" % ident)
    text = env.ctl("identity").stdout
    check(env.device_id in text and env.url in text, "text identity:\n" + text)

    rc = env.ctl("receipt", json_out=True).json["receipt"]
    check(rc["status"] == "none", "receipt: %r" % rc)

    # StateChanged on a transition (forget in idle is one: idle -> idle)
    mon = subprocess.Popen(["dbus-monitor", "--address", env.address,
                            "type='signal',interface='org.cellprov.Daemon1'"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.3)
    out = env.ctl("forget", json_out=True).json
    check(out["result"]["state"] == "idle", "forget: %r" % out)
    time.sleep(0.3)
    mon.terminate()
    signals = mon.communicate(timeout=5)[0]
    check("member=StateChanged" in signals and '"forget"' in signals,
          "no StateChanged for forget:\n" + signals)

    # a method that does not fit the state: the registered D-Bus error,
    # mapped back to the daemon's error code by cellprovctl
    r = env.ctl("re-arm", check_rc=False)
    check(r.returncode == 1, "re-arm in idle succeeded")
    check("[org.cellprov.Daemon1.Error.State]" in r.stderr and "(state)" in r.stderr
          and "idle" in r.stderr, "re-arm: " + r.stderr)

    # anyone may read the properties and the log of the last attempt
    logs = env.ctl("logs", json_out=True).json["log"]["lines"]
    check(any("forget" in l for l in logs), "log: %r" % logs)
    st = env.ctl("status", user=NOBODY, json_out=True).json
    check(st["status"]["state"] == "idle", "nobody cannot read status: %r" % st)
    logs = env.ctl("logs", user=NOBODY, json_out=True).json["log"]["lines"]
    check(any("forget" in l for l in logs), "nobody cannot read the log: %r" % logs)

    # no transport configured here: Transports empty, no window to open
    check(dbus_prop(env, "Transports").startswith("array [") and "dict entry" not in dbus_prop(env, "Transports"),
          "Transports: " + dbus_prop(env, "Transports"))
    check(st["daemon"]["transport"] == "none", "transport: %r" % st["daemon"])
    r = env.ctl("ble-window", check_rc=False)
    check(r.returncode == 1 and "no transport with a provisioning window" in r.stderr,
          "ble-window without [ble]: %d %s" % (r.returncode, r.stderr))
    r = env.ctl("ble-window", "ten", check_rc=False)
    check(r.returncode == 2 and "'ten' is not a number of seconds" in r.stderr, "ble-window ten: " + r.stderr)
    r = env.ctl("ble-window", "86401", check_rc=False)
    check(r.returncode == 1 and "[org.cellprov.Daemon1.Error.Argument]" in r.stderr,
          "ble-window 86401: " + r.stderr)

    # polkit absent: root still may, others are refused, saying why
    check(env.ctl("forget").returncode == 0, "root without polkit")
    for cmd in (("forget",), ("re-arm",), ("ble-window",), ("status", "--personal")):
        r = env.ctl(*cmd, user=NOBODY, check_rc=False)
        check(r.returncode == 1 and "[org.cellprov.Daemon1.Error.NotAuthorized]" in r.stderr
              and "(not-authorized)" in r.stderr and "polkit" in r.stderr,
              "%s as nobody without polkit: %s" % (" ".join(cmd), r.stderr))

    # polkit denies: refused, naming the action
    env.start_polkit()
    env.polkit_allow("org.example.nothing")
    r = env.ctl("forget", user=NOBODY, check_rc=False)
    check(r.returncode == 1 and "NotAuthorized" in r.stderr
          and "not authorized for org.cellprov.control" in r.stderr, "polkit denies: " + r.stderr)
    r = env.ctl("status", "--personal", user=NOBODY, check_rc=False)
    check(r.returncode == 1 and "not authorized for org.cellprov.read-personal" in r.stderr,
          "polkit denies the IMSI: " + r.stderr)
    checks = env.polkit_checks()
    check(len(checks) == 2 and all("system-bus-name" in l for l in checks),
          "CheckAuthorization calls: %r" % checks)
    check("org.cellprov.control" in checks[0] and "org.cellprov.read-personal" in checks[1],
          "actions asked: %r" % checks)
    # root is not asked about
    check(env.ctl("forget").returncode == 0 and len(env.polkit_checks()) == 2,
          "root's call went to polkit: %r" % env.polkit_checks())

    # polkit allows org.cellprov.control: forget and re-arm (its state error
    # comes through), but not the IMSI
    env.polkit_allow("org.cellprov.control")
    out = env.ctl("forget", user=NOBODY, json_out=True).json
    check(out["result"]["state"] == "idle", "forget allowed by polkit: %r" % out)
    r = env.ctl("re-arm", user=NOBODY, check_rc=False)
    check(r.returncode == 1 and "org.cellprov.Daemon1.Error.State" in r.stderr,
          "re-arm allowed by polkit: " + r.stderr)
    r = env.ctl("status", "--personal", user=NOBODY, check_rc=False)
    check(r.returncode == 1 and "NotAuthorized" in r.stderr, "IMSI with control only: " + r.stderr)
    env.polkit_allow("org.cellprov.control", "org.cellprov.read-personal")
    st = env.ctl("status", "--personal", user=NOBODY, json_out=True).json
    check(st["network"]["imsi"] == "none", "IMSI allowed by polkit: %r" % st)

    # the action file names exactly the actions the daemon asks about
    import xml.etree.ElementTree as ET
    actions = {a.get("id"): a for a in ET.parse(POLKIT_POLICY).getroot().iter("action")}
    check(set(actions) == {"org.cellprov.control", "org.cellprov.read-personal"},
          "actions in org.cellprov.policy: %r" % sorted(actions))
    for a in actions.values():
        check(a.find("defaults/allow_active").text == "auth_admin_keep"
              and a.find("defaults/allow_any").text == "no", "defaults of %s" % a.get("id"))

    # the wait command
    r = env.ctl("wait", "idle", json_out=True)
    check(r.json["result"]["state"] == "idle", "wait: %r" % r.json)
    r = env.ctl("--timeout", "1", "wait", "provisioned", check_rc=False)
    check(r.returncode == 1 and "still idle" in r.stderr, "wait timeout: " + r.stderr)
    r = env.ctl("wait", "nonsense", check_rc=False)
    check(r.returncode == 2, "wait with a bad state: %d" % r.returncode)
    r = env.ctl("frobnicate", check_rc=False)
    check(r.returncode == 2 and "unknown command" in r.stderr, "bad command: " + r.stderr)

    # a second daemon cannot take the name and says why
    second = subprocess.run([env.daemon.args[0], "--config", env.config],
                            capture_output=True, text=True, timeout=20,
                            env=dict(os.environ, NOTIFY_SOCKET=""))
    check(second.returncode != 0, "a second cellprovd kept running")
    check("cannot own org.cellprov.Daemon1" in second.stderr, "second: " + second.stderr)

    # clean SIGTERM: exit 0, STOPPING=1, quickly
    t0 = time.time()
    rc = env.stop_daemon(signal.SIGTERM)
    check(rc == 0, "SIGTERM: exit %s\n%s" % (rc, env.read_log()))
    check(time.time() - t0 < 3, "SIGTERM took %.1f s" % (time.time() - t0))
    if with_systemd:
        check(notify.drain(lambda m: m == "STOPPING=1", timeout=2), "no STOPPING=1")
    notify.close()

    # nothing secret in the debug log
    log = env.read_log()
    check("ready: device " + env.device_id in log, "log has no ready line:\n" + log)
    check(env.key_hex not in log.replace(":", ""), "the device key is in the log")
    for line in env.key_pem_lines:
        check(line not in log, "a line of the key PEM is in the log")
    check(env.adm1_value not in log, "ADM1 is in the log")

    # [daemon] polkit=false: only root, whatever polkit says
    env.write_config(extra_daemon="polkit=false\n")
    env.start_daemon()
    r = env.ctl("forget", user=NOBODY, check_rc=False)
    check(r.returncode == 1 and "only root may call it" in r.stderr and "NotAuthorized" in r.stderr,
          "polkit=false: " + r.stderr)
    check(env.ctl("forget").returncode == 0, "root may call Forget there")
    check(env.stop_daemon() == 0, "clean stop")
    env.stop_polkit()
    env.write_config()

    # the owner binding: a journal bound to an operator, with trusted roots
    check_owner(env)

    # polling the SM: its properties
    check_poll(env)

    # cellprovctl without a daemon: a clear error
    r = env.ctl("status", check_rc=False)
    check(r.returncode == 1 and "cellprovd is not running" in r.stderr, "no daemon: " + r.stderr)

    # a bad configuration is an error at start, naming the key
    bad = os.path.join(env.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write(open(env.config).read().replace("card=sysmo-isim-sja2", "card=sysmo isim"))
    r = subprocess.run([env.daemon.args[0], "--config", bad], capture_output=True, text=True,
                       timeout=20)
    check(r.returncode == 1 and "[modem] card" in r.stderr, "bad config: %s" % r.stderr)
    r = subprocess.run([env.daemon.args[0], "--bogus"], capture_output=True, text=True, timeout=20)
    check(r.returncode == 2, "unknown option: exit %d" % r.returncode)


if __name__ == "__main__":
    main()
