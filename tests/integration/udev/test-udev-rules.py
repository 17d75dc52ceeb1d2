#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
udev/80-cellprov.rules through udev's own rule engine: `udevadm test`
against a fake sysfs tree of each kind of device the rules know (QMI and
MBIM cdc-wdm ports, AT ttys of option, qcserial and CDC ACM, USB and
serial NFC readers) and of devices they must leave alone, on an
unprovisioned and on a provisioned device, for add and for remove.

Runs itself again in a private mount namespace: a tmpfs over /sys/class
holds the fake devices (sd-device accepts them outside sysfs with
SYSTEMD_DEVICE_VERIFY_SYSFS=0, the knob systemd's own tests use), tmpfs
over the rule directories holds only the rules under test, and /dev, /run
and /var/lib are private, so nothing udevadm writes reaches the machine.

The OpenWrt hotplug.d script (packaging/openwrt) is run against the same
devices, with the environment procd gives it, and must agree with udev.

    test-udev-rules.py RULES HOTPLUG
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from prereq import missing  # noqa: E402

ROOT = "/sys/class/.cp-udev"
BUS = ROOT + "/bus"
DRIVERS = ROOT + "/drivers"
STATE = "/var/lib/cellprov"
RULE_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d",
             "/lib/udev/rules.d", "/usr/local/lib/udev/rules.d")


def sh(*argv):
    subprocess.run(argv, check=True)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def link(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def driver(name):
    os.makedirs(DRIVERS + "/" + name, exist_ok=True)
    return DRIVERS + "/" + name


def subsystem(name, cls=False):
    path = ("/sys/class/" if cls else BUS + "/") + name
    os.makedirs(path, exist_ok=True)
    return path


def usb_device(busdev, vid, pid, drv="usb"):
    path = ROOT + "/devices/pci0000:00/0000:00:14.0/usb1/" + busdev
    write(path + "/uevent", "DEVTYPE=usb_device\nDRIVER=%s\nPRODUCT=%x/%x/100\n"
          % (drv, int(vid, 16), int(pid, 16)))
    write(path + "/idVendor", vid + "\n")
    write(path + "/idProduct", pid + "\n")
    link(subsystem("usb"), path + "/subsystem")
    link(driver(drv), path + "/driver")
    return path


def usb_interface(dev, num, drv, cls, sub, proto):
    path = "%s/%s:1.%d" % (dev, os.path.basename(dev), num)
    write(path + "/uevent", "DEVTYPE=usb_interface\nDRIVER=%s\n" % drv)
    for k, v in (("bInterfaceClass", cls), ("bInterfaceSubClass", sub),
                 ("bInterfaceProtocol", proto), ("bInterfaceNumber", "%02x" % num)):
        write(path + "/" + k, v + "\n")
    link(subsystem("usb"), path + "/subsystem")
    link(driver(drv), path + "/driver")
    return path


def char_device(parent, cls, name, major, minor, sub_dir=None):
    """A class device (usbmisc, tty) under parent; returns its /sys/class path."""
    path = "%s/%s/%s" % (parent, sub_dir or cls, name)
    write(path + "/uevent", "MAJOR=%d\nMINOR=%d\nDEVNAME=%s\n" % (major, minor, name))
    write(path + "/dev", "%d:%d\n" % (major, minor))
    link(subsystem(cls, cls=True), path + "/subsystem")
    link(parent, path + "/device")
    link(path, "/sys/class/%s/%s" % (cls, name))
    return "/sys/class/%s/%s" % (cls, name)


def usb_serial_port(intf, drv, name, minor):
    """option/qcserial: interface -> ttyUSBn (bus usb-serial) -> tty/ttyUSBn."""
    port = intf + "/" + name
    write(port + "/uevent", "DRIVER=%s1\n" % drv)
    link(subsystem("usb-serial"), port + "/subsystem")
    link(driver(drv + "1"), port + "/driver")
    return char_device(port, "tty", name, 188, minor)


def build():
    """The fake devices: name -> (syspath, expected to start cellprovd)."""
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "cp-udev-sysclass", "/sys/class")
    devs = {}

    qmi = usb_device("1-1", "2c7c", "0125")
    devs["qmi cdc-wdm"] = (char_device(usb_interface(qmi, 4, "qmi_wwan", "ff", "ff", "ff"),
                                       "usbmisc", "cdc-wdm0", 180, 0), True)
    mbim = usb_device("1-2", "1199", "9091")
    devs["mbim cdc-wdm"] = (char_device(usb_interface(mbim, 12, "cdc_mbim", "02", "0e", "00"),
                                        "usbmisc", "cdc-wdm1", 180, 1), True)
    # a cdc-wdm port of another driver (a plain CDC WDM function)
    other = usb_device("1-3", "1234", "5678")
    devs["cdc-wdm of cdc_wdm"] = (char_device(usb_interface(other, 0, "cdc_wdm", "02", "09", "00"),
                                              "usbmisc", "cdc-wdm2", 180, 2), False)

    opt = usb_device("1-4", "2c7c", "0296")
    devs["option ttyUSB"] = (usb_serial_port(usb_interface(opt, 2, "option", "ff", "00", "00"),
                                             "option", "ttyUSB2", 2), True)
    qcs = usb_device("1-5", "1199", "68c0")
    devs["qcserial ttyUSB"] = (usb_serial_port(usb_interface(qcs, 3, "qcserial", "ff", "ff", "ff"),
                                               "qcserial", "ttyUSB3", 3), True)
    # a USB serial adapter (ftdi_sio) is not a modem
    ftdi = usb_device("1-6", "0403", "6001")
    devs["ftdi ttyUSB"] = (usb_serial_port(usb_interface(ftdi, 0, "ftdi_sio", "ff", "ff", "ff"),
                                           "ftdi_sio", "ttyUSB0", 0), False)

    acm = usb_device("1-7", "1546", "1141")
    devs["acm V.250"] = (char_device(usb_interface(acm, 0, "cdc_acm", "02", "02", "01"),
                                     "tty", "ttyACM0", 166, 0), True)
    acm3g = usb_device("1-8", "1bc7", "1201")
    devs["acm 27.007"] = (char_device(usb_interface(acm3g, 0, "cdc_acm", "02", "02", "05"),
                                      "tty", "ttyACM1", 166, 1), True)
    # a microcontroller board: CDC ACM with no AT command set
    board = usb_device("1-9", "2341", "0043")
    devs["acm plain serial"] = (char_device(usb_interface(board, 0, "cdc_acm", "02", "02", "00"),
                                            "tty", "ttyACM2", 166, 2), False)

    reader = usb_device("1-10", "072f", "2200")
    devs["nfc usb reader"] = (reader, True)
    mouse = usb_device("1-11", "046d", "c077")
    devs["usb mouse"] = (mouse, False)

    # serial ports on the SoC: one the board's rule marks as the reader
    soc = ROOT + "/devices/platform/serial8250"
    write(soc + "/uevent", "DRIVER=serial8250\n")
    link(subsystem("platform"), soc + "/subsystem")
    devs["marked serial reader"] = (char_device(soc, "tty", "ttyS1", 4, 65), True)
    devs["other serial port"] = (char_device(soc, "tty", "ttyS2", 4, 66), False)
    return devs


def private_dirs(rules):
    for d in RULE_DIRS + ("/run", "/var/lib"):
        if os.path.isdir(d):
            sh("mount", "-t", "tmpfs", "-o", "mode=0755", "cp-udev", d)
    os.makedirs("/etc/udev/rules.d", exist_ok=True)
    shutil.copy(rules, "/etc/udev/rules.d/80-cellprov.rules")
    # what a board's own rule does for a reader on its UART
    write("/etc/udev/rules.d/70-board.rules",
          'SUBSYSTEM=="tty", KERNEL=="ttyS1", ENV{CELLPROV_NFC_READER}="1"\n')
    # a private /dev: udevadm test makes /dev/char links
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "cp-udev-dev", "/dev")
    open("/dev/null", "w").close()


def udev_properties(syspath, action):
    # each event on its own: no properties kept from an earlier run's
    # database (a remove would show what the add stored)
    shutil.rmtree("/run/udev/data", ignore_errors=True)
    env = dict(os.environ, SYSTEMD_DEVICE_VERIFY_SYSFS="0", SYSTEMD_LOG_LEVEL="info")
    r = subprocess.run(["udevadm", "test", "--action=" + action, syspath],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, text=True, env=env)
    props = {}
    for line in r.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.isupper() and " " not in k:
            props[k] = v
    if "DEVPATH" not in props:
        sys.exit("FAIL: udevadm test %s gave no device:\n%s" % (syspath, r.stdout))
    return props


HOTPLUG_STUBS = """
config_load() { :; }
config_get() {
	case "$2.$3" in
	daemon.state_directory) eval "$1=%(state)s" ;;
	nfc.connstring) eval "$1=pn532_uart:/dev/ttyS1" ;;
	*) eval "$1=\\$4" ;;
	esac
}
"""


def hotplug_script(hotplug, workdir):
    """The hotplug script with OpenWrt's shell library and init script
    replaced by stubs: config_get answers as /etc/config/cellprov would,
    and the init script records that it was asked to start."""
    stubs = workdir + "/functions.sh"
    write(stubs, HOTPLUG_STUBS % {"state": STATE})
    init = workdir + "/cellprovd.init"
    write(init, "#!/bin/sh\n[ \"$1\" = enabled ] && exit 0\necho \"$1\" >> %s/started\n" % workdir)
    os.chmod(init, 0o755)
    text = open(hotplug).read()
    for old, new in (("/lib/functions.sh", stubs), ("/etc/init.d/cellprovd", init)):
        assert old in text, old
        text = text.replace(old, new)
    script = workdir + "/30-cellprov"
    write(script, text)
    return script


def hotplug_starts(script, workdir, syspath, action):
    real = os.path.realpath(syspath)
    dev = os.path.basename(real)
    env = {"PATH": os.environ["PATH"], "ACTION": action, "DEVPATH": real[len("/sys"):]}
    uevent = dict(line.split("=", 1) for line in open(real + "/uevent").read().split())
    if os.path.exists(real + "/dev"):
        env["SUBSYSTEM"] = os.path.basename(os.readlink(real + "/subsystem"))
        env["DEVNAME"] = dev
    else:
        env["SUBSYSTEM"] = "usb"
        env["DEVNAME"] = "bus/usb/001/%03d" % (int(dev.split("-")[1]) + 1)
        env["DEVTYPE"] = uevent["DEVTYPE"]
        env["PRODUCT"] = uevent["PRODUCT"]
    started = workdir + "/started"
    if os.path.exists(started):
        os.unlink(started)
    r = subprocess.run(["sh", script], env=env)
    if r.returncode != 0:
        sys.exit("FAIL: the hotplug script exited %d for %s" % (r.returncode, syspath))
    return os.path.exists(started)


def inside(rules, hotplug):
    private_dirs(rules)
    devs = build()
    workdir = "/run/cp-hotplug"
    script = hotplug_script(hotplug, workdir)
    failures = 0
    for provisioned in (False, True):
        if provisioned:
            write(STATE + "/provisioned", "")
        for action in ("add", "remove"):
            for name, (syspath, starts) in devs.items():
                props = udev_properties(syspath, action)
                want = starts and action == "add" and not provisioned
                got = "cellprovd.service" in props.get("SYSTEMD_WANTS", "").split()
                tagged = "systemd" in props.get("TAGS", "").strip(":").split(":")
                ok = got == want and (tagged or not want)
                what = "%-22s %-6s %s" % (name, action,
                                          "provisioned" if provisioned else "unprovisioned")
                print("%s %s: %s" % ("ok  " if ok else "FAIL", what,
                                     "starts cellprovd" if got else "starts nothing"))
                failures += not ok
                if hotplug_starts(script, workdir, syspath, action) != want:
                    print("FAIL %s: the OpenWrt hotplug script %s" % (
                        what, "does not start cellprovd" if want else "starts cellprovd"))
                    failures += 1
    if failures:
        sys.exit("FAIL: %d case(s)" % failures)
    print("ok: %d devices, each kind started only when unprovisioned, by udev and by "
          "the OpenWrt hotplug script" % len(devs))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--inside":
        inside(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rules, hotplug = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    why = None
    if os.geteuid() != 0:
        why = "needs root (a private mount namespace with tmpfs over /sys/class)"
    elif not shutil.which("udevadm") or not shutil.which("unshare"):
        why = "needs udevadm (Debian package udev) and unshare"
    if why:
        missing(why)
    r = subprocess.run(["unshare", "-m", "--propagation", "private",
                        sys.executable, os.path.abspath(__file__), "--inside", rules, hotplug])
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
