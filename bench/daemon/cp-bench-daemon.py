#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cp-bench-daemon: what cellprovd costs on a device, beside ModemManager
and qmicli measured the same way on the same machine in the same run.

Prints: idle and peak memory of cellprovd (RSS, VmHWM, and private dirty
memory from /proc/PID/smaps_rollup: what the daemon costs beside shared
libraries), what stays resident once the device is provisioned and its
receipt read (cellprovd's default configuration exits then: the sum over
every cellprovd process left, 0 when none), the device side's CPU time for one provisioning on the
simulated bench (the cellprovd process only), and the stripped size of
each program. ModemManager is measured idle on a private bus with no
modem; qmicli for one request against the QMI simulator (peak RSS and CPU
from getrusage, as it lives too briefly for smaps).

Usage: cp-bench-daemon.py BUILDDIR"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "e2e"))
from e2ebench import E2E, Fail  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def mem(pid):
    st = {}
    for line in open("/proc/%d/status" % pid):
        k, v = line.split(":", 1)
        st[k] = v.strip()
    pd = 0
    for line in open("/proc/%d/smaps_rollup" % pid):
        if line.startswith("Private_Dirty:"):
            pd = int(line.split()[1])
    return int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0]), pd


def by_mapping(pid):
    """Private dirty and RSS (KiB) per mapping of /proc/PID/smaps, grouped:
    each file by name (its relocated data: .data.rel.ro, GOT, .data, .bss),
    [heap], [stack], the mlocked secure heap, and the other anonymous maps
    by size (a thread's stack is 8 MiB, a glibc arena 64 MiB reserved)."""
    groups = {}
    cur = None

    def close(m):
        if not m:
            return
        name, size, pd, rss, locked = m
        if name == "":
            if locked:
                name = "[secure heap, mlocked]"
            elif size in (8192, 8188):
                name = "[thread stacks]"
            elif size >= 60000:
                name = "[malloc arenas]"
            else:
                name = "[anonymous]"
        g = groups.setdefault(name, [0, 0, 0])
        g[0] += pd
        g[1] += rss
        g[2] += 1

    for line in open("/proc/%d/smaps" % pid):
        f = line.split()
        if "-" in f[0] and not f[0].endswith(":"):
            close(cur)
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            path = f[5] if len(f) > 5 else ""
            cur = [os.path.basename(path).split(".so")[0] + (".so" if ".so" in path else "")
                   if path.startswith("/") else path, (hi - lo) // 1024, 0, 0, False]
        elif f[0] == "Private_Dirty:":
            cur[2] = int(f[1])
        elif f[0] == "Rss:":
            cur[3] = int(f[1])
        elif f[0] == "Locked:" and int(f[1]) > 0:
            cur[4] = True
    close(cur)
    return groups


GIO_MODULES = "/usr/lib/x86_64-linux-gnu/gio/modules"
GIO_QUERYMODULES = "/usr/lib/x86_64-linux-gnu/glib-2.0/gio-querymodules"


def gio_cache_stale():
    """Whether GIO would load its modules (TLS, proxy) eagerly: it does
    for a module changed (ctime) after giomodule.cache was written, and
    the libraries they bring stay mapped (libproxy, libstdc++, p11-kit).
    A system whose packages ran their triggers has a fresh cache."""
    cache = os.path.join(GIO_MODULES, "giomodule.cache")
    if not os.path.exists(cache):
        return False
    t = os.stat(cache).st_mtime
    return any(os.stat(os.path.join(GIO_MODULES, f)).st_ctime > t
               for f in os.listdir(GIO_MODULES) if f.endswith(".so"))


def fresh_gio_modules(b):
    """The system's GIO modules in the bench's directory with a cache
    written after them: what GIO_MODULE_DIR gives cellprovd when this
    machine's cache is stale."""
    d = b.path("gio-modules")
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(GIO_MODULES):
        if f.endswith(".so"):
            shutil.copy(os.path.join(GIO_MODULES, f), d)
    subprocess.run([GIO_QUERYMODULES, d], check=True)
    return d


def unit_environment(unit):
    """The Environment= of a systemd unit, as a dict."""
    env = {}
    if os.path.exists(unit):
        for line in open(unit):
            if line.startswith("Environment="):
                for kv in line.split("=", 1)[1].split():
                    k, v = kv.split("=", 1)
                    env[k] = v
    return env


def cpu(pid):
    """Seconds on a CPU: schedstat's nanoseconds (all threads), finer than
    the clock ticks of /proc/PID/stat."""
    try:
        return int(open("/proc/%d/schedstat" % pid).read().split()[0]) / 1e9
    except (OSError, ValueError):
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK


def stripped(path):
    if not path or not os.path.exists(path):
        return None
    with tempfile.NamedTemporaryFile() as t:
        subprocess.run(["strip", "-o", t.name, path], check=True, capture_output=True)
        return os.path.getsize(t.name)


def row(name, *cols):
    print("%-34s" % name + "".join("%14s" % c for c in cols))


def main():
    build = sys.argv[1]
    # a program just linked is dirty page cache until written back: its
    # pages would count as the process's private dirty memory
    os.sync()
    b = E2E(build)
    figures = {}
    try:
        b.setup()
        b.start_bus()
        b.make_gateway(resident=False)     # the default: exit when idle
        b.start_modem()
        # the environment cellprovd.service gives it
        env = unit_environment(os.path.join(build, "systemd", "cellprovd.service"))
        stale = gio_cache_stale() and os.path.exists(GIO_QUERYMODULES)
        if stale:
            env["GIO_MODULE_DIR"] = fresh_gio_modules(b)
        p = b.start_cellprovd(debug=False, env=env)
        time.sleep(1.0)
        figures["cellprovd idle"] = mem(p.pid)
        maps_idle = by_mapping(p.pid)
        c0 = cpu(p.pid)
        comp, tag, after, rc, out = b.tap()
        b.wait_state("provisioned", timeout=60)
        c1 = cpu(p.pid)
        figures["cellprovd after provisioning"] = mem(p.pid)
        maps_after = by_mapping(p.pid)
        figures["cpu"] = c1 - c0
        # the phone reads the receipt: nothing is left to do
        t0 = time.monotonic()
        b.finish_tap(comp, after)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise Fail("cellprovd still runs 60 s after its receipt was read")
        if rc != 0:
            raise Fail("cellprovd exited with %d when idle" % rc)
        b.procs.pop("cellprovd", None)
        left = [mem(pid) for pid in b.cellprovd_pids()]
        figures["cellprovd provisioned, receipt read"] = tuple(sum(m[i] for m in left) for i in range(3))
        figures["exit"] = (time.monotonic() - t0, len(left))

        # qmicli, one request against the same simulator
        # (wait4: the rusage of that one child, not of every child so far)
        q = subprocess.Popen(["qmicli", "-d", b.modem_pty, "--device-open-qmi", "--dms-get-ids"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(q.pid, 0)
        q.returncode = os.waitstatus_to_exitcode(status)
        if q.returncode == 0:
            figures["qmicli"] = (ru.ru_maxrss, ru.ru_utime + ru.ru_stime)

        # ModemManager idle, no modem, on the same private bus
        mm_bin = shutil.which("ModemManager") or "/usr/sbin/ModemManager"
        if os.path.exists(mm_bin):
            conf = b.path("mm-bus.conf")
            open(conf, "w").write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=%s</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/></policy></busconfig>
""" % b.path("mm_bus_socket"))
            bus = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            addr = bus.stdout.readline().strip()
            mm = subprocess.Popen([mm_bin, "--test-no-udev", "--no-auto-scan"],
                                  env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(3.0)
            if mm.poll() is None:
                figures["ModemManager idle"] = mem(mm.pid)
            mm.terminate()
            mm.wait(10)
            bus.terminate()
            bus.wait(10)

        print("memory (KiB)")
        row("", "RSS", "peak RSS", "private dirty")
        for name in ("cellprovd idle", "cellprovd after provisioning",
                     "cellprovd provisioned, receipt read", "ModemManager idle"):
            if name in figures:
                rss, hwm, pd = figures[name]
                row(name, rss, hwm, pd)
        if "qmicli" in figures:
            row("qmicli --dms-get-ids", "-", figures["qmicli"][0], "-")
        print("(provisioned, receipt read: cellprovd exited 0 %.1f s after the companion's last tap; "
              "%d cellprovd processes left)" % figures["exit"])
        if env:
            print("(cellprovd ran with the environment of cellprovd.service: %s)"
                  % " ".join("%s=%s" % kv for kv in sorted(env.items()) if kv[0] != "GIO_MODULE_DIR"))
        if stale:
            print("(this machine's %s/giomodule.cache is older than its modules: cellprovd ran with "
                  "GIO_MODULE_DIR, a copy of them with a fresh cache, as on a system whose package "
                  "triggers ran)" % GIO_MODULES)
        print()
        print("cellprovd private dirty by mapping (KiB; RSS in brackets)")
        row("", "idle", "provisioned")
        names = sorted(set(maps_idle) | set(maps_after),
                       key=lambda n: -max(maps_idle.get(n, [0])[0], maps_after.get(n, [0])[0]))
        for name in names:
            i, a = maps_idle.get(name), maps_after.get(name)
            if max(i[0] if i else 0, a[0] if a else 0) < 4:
                continue
            row(name[:34], "%d (%d)" % (i[0], i[1]) if i else "-", "%d (%d)" % (a[0], a[1]) if a else "-")
        small_i = sum(v[0] for n, v in maps_idle.items() if max(v[0], maps_after.get(n, [0])[0]) < 4)
        small_a = sum(v[0] for n, v in maps_after.items() if max(v[0], maps_idle.get(n, [0])[0]) < 4)
        row("(the rest, under 4 each)", small_i, small_a)
        print()
        print("CPU time (s)")
        row("cellprovd, one provisioning", "%.3f" % figures["cpu"])
        if "qmicli" in figures:
            row("qmicli --dms-get-ids", "%.3f" % figures["qmicli"][1])
        print()
        print("stripped size (bytes)")
        for name, path in (("cellprovd", os.path.join(build, "daemon", "cellprovd")),
                           ("cellprovctl", os.path.join(build, "tools", "cellprovctl")),
                           ("libcellprov-protocol.so", os.path.join(build, "protocol",
                                                                    "libcellprov-protocol.so.0.1.0")),
                           ("ModemManager", mm_bin),
                           ("mmcli", shutil.which("mmcli")),
                           ("qmicli", shutil.which("qmicli")),
                           ("libqmi-glib.so", "/usr/lib/x86_64-linux-gnu/libqmi-glib.so.5")):
            size = stripped(os.path.realpath(path) if path else None)
            if size is not None:
                row(name, size)
    except Fail as e:
        print("FAILED:", e)
        b.dump_logs()
        return 1
    finally:
        b.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
