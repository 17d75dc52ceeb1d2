# SPDX-License-Identifier: LGPL-2.1-or-later
"""cellprov-companion --transport ble: the companion as the phone on hci1
of the BlueZ stand-in, a device's GATT side (ble-peripheral.py, the
framing by the protocol library) on hci0, the real SM and AUSF, and
cp-test-device for the device's crypto: the tag content it signs, the
profile it verifies with the device key, the receipt it signs and MACs
with K''. One case per run:

  mtu23, mtu517  a whole claim, the receipt verified; the segments counted
  drop           the link dropped in the middle of the profile: the
                 companion says so (ble-link-lost, step 3, exit 1), nothing
                 was written; the next claim works
  refused        BlueZ refuses the write (ble-refused, exit 1)
  busy           the device answers write-profile with busy (exit 1)
  two            two devices advertise: the first taken with a message, the
                 other chosen by --ble-device; a prefix nobody has
  notfound       no device: ble-not-found after --tap-timeout; no adapter
"""

import json
import math
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "network"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sim", "bluez"))
from netbench import Bench, Fail, check, prereq  # noqa: E402
import bluezbench  # noqa: E402

PERIPHERAL = os.path.join(HERE, "ble-peripheral.py")


class Rig:
    def __init__(self, builddir, sim_args=()):
        why = bluezbench.missing_prerequisite()
        if why:
            prereq.missing(why)
        self.b = Bench(builddir)
        self.ble = None
        self.procs = {}
        self.sim_args = list(sim_args)

    def start(self):
        self.b.setup()
        self.ble = bluezbench.Bench(self.sim_args)

    def env(self):
        return self.ble.env({"CP_PROTOCOL_LIB": os.environ["CP_PROTOCOL_LIB"]})

    def device(self, name, adapter="hci0", busy=False):
        """A device made by cellprov-mfg, its tag content, and its GATT side."""
        b = self.b
        info = b.make_device(name)
        tag = b.path("tag-" + name)
        b.tag(name, out=tag)
        profile, receipt = b.path("profile-" + name), b.path("receipt-" + name)
        accept = [b.prog("tests/integration/network/cp-test-device"), "accept", "--config", b.conf(name),
                  "--tag", tag, "--profile", profile, "--last-seq", "0", "--counter", "100",
                  "--registration", "00101", "--receipt-out", receipt]
        on_profile = shlex.join(accept) + " > " + shlex.quote(b.path("accept-" + name + ".json"))
        r, w = os.pipe()
        args = ["/usr/bin/python3", PERIPHERAL, "--adapter", adapter, "--root", "/org/cellprov/test/" + name,
                "--device-id", info["device-id"], "--tag", tag, "--profile-out", profile,
                "--on-profile", on_profile, "--receipt", receipt, "--log", b.path("ble-" + name + ".log"),
                "--ready-fd", str(w)] + (["--busy"] if busy else [])
        p = subprocess.Popen(args, pass_fds=(w,), env=self.env())
        os.close(w)
        with os.fdopen(r) as f:
            if f.readline().strip() != "ready":
                raise Fail("ble-peripheral for %s did not start" % name)
        self.procs[name] = p
        return info

    def events(self, name):
        p = self.b.path("ble-" + name + ".log")
        return [json.loads(l) for l in open(p)] if os.path.exists(p) else []

    def companion(self, extra=(), tap_timeout=20, wait=True):
        b = self.b
        args = [b.prog("tools/cellprov-companion"), "--json", "--transport", "ble", "--adapter", "hci1",
                "--sm", "https://127.0.0.1:%d" % b.sm_port, "--sm-ca", b.tls_ca,
                "--token", b.path("companion-token"), "--tap-timeout", str(tap_timeout)] + list(extra)
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env())
        if not wait:
            return p
        return self.result(p)

    def result(self, p):
        out, err = p.communicate(timeout=90)
        sys.stdout.write("---- companion ----\n" + err)
        try:
            return p.returncode, json.loads(out), err
        except ValueError:
            raise Fail("companion printed no JSON: %r %r" % (out, err))

    def stats(self):
        return {str(k): int(v) for k, v in self.ble.knob("Stats").items()}

    def stop(self):
        for p in self.procs.values():
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.ble:
            self.ble.stop()
        self.b.teardown()


def claimed(rig, rc, res, name, seq=1):
    check(rc == 0 and res["result"] == "ok", "companion provisioned %s over BLE (%s)" % (name, res))
    check(res["device"]["device-id"] == rig.b.devices[name]["device-id"], "it read %s's DeviceID" % name)
    check(res["receipt"]["verified"] and res["receipt"]["status"] == "provisioned"
          and res["receipt"].get("registration") == "00101", "it verified the receipt with K''")
    check(res["relay"]["result"] == "processed", "and relayed it to the SM")
    acc = json.load(open(rig.b.path("accept-" + name + ".json")))
    check(acc["result"] == "ok" and acc["profile-seq"] == seq == res["profile-seq"],
          "the device verified profile %d, written over BLE, with its key" % seq)


def case_mtu(rig, mtu):
    rig.device("gw")
    rc, res, _ = rig.companion()
    claimed(rig, rc, res, "gw")
    st = rig.stats()
    ev = rig.events("gw")
    reqs = [e for e in ev if e["event"] == "request"]
    tag_len = os.path.getsize(rig.b.path("tag-gw"))
    profile_len = os.path.getsize(rig.b.path("profile-gw"))
    print("MTU %d: %d requests, %d writes (%d bytes), %d indications (%d bytes); tag %d B, profile %d B"
          % (mtu, len(reqs), st["writes"], st["write-bytes"], st["notifications"],
             st["notification-bytes"], tag_len, profile_len))
    check(st["mtu"] == mtu, "the link ran at MTU %d" % mtu)
    check([e["op"] for e in reqs][:2] == [1, 2] and all(e["op"] == 3 for e in reqs[2:]),
          "read-tag, write-profile, then read-receipt")
    seg = min(mtu - 3, 512)
    # the response to read-tag alone: 4 + tag bytes, the first segment
    # carrying 5 bytes of header, the others 2 (an ack may take one more)
    least = math.ceil((4 + tag_len + 3) / (seg - 2))
    check(st["notifications"] >= least, "the answers took at least %d indications" % least)
    check(st["writes"] >= math.ceil((2 + profile_len + 3) / (seg - 2)), "the profile took its segments")
    if mtu == 517:
        # every answer fits one segment: one indication per response, and
        # the device's standalone acks of the profile's segments (one for
        # each 2 the response does not acknowledge)
        acks = (math.ceil((2 + profile_len + 3) / (seg - 2)) - 1) // 2
        check(len(reqs) <= st["notifications"] <= len(reqs) + acks,
              "one indication per response at MTU 517, and %d ack(s)" % (st["notifications"] - len(reqs)))


def case_drop(rig):
    rig.device("gw")
    rig.ble.knob("SetDelay", 5)
    p = rig.companion(wait=False)
    # once the tag is read (the companion asks the SM), let a few transfers
    # pass: the profile's 75 segments at MTU 23 then find the link gone
    said = []
    for line in p.stderr:
        said.append(line)
        if line.startswith("(2/4)"):
            break
    rig.ble.knob("DropAfter", 10)
    sys.stdout.write("".join(said))
    rc, res, err = rig.result(p)
    check(rc == 1 and res["result"] == "error", "the companion failed (exit 1)")
    check(res["error"]["step"] == 3 and res["error"]["code"] == "ble-link-lost",
          "at step 3 with ble-link-lost: %s" % res["error"]["message"])
    check("hint" in res["error"], "with what to do: %s" % res["error"].get("hint"))
    check(not any(e["event"] == "profile" for e in rig.events("gw")), "the device took no profile")
    check(not os.path.exists(rig.b.path("profile-gw")), "nothing was written")
    # a fresh tag content (the next attestation counter), and again
    rig.b.tag("gw", out=rig.b.path("tag-gw"))
    rig.ble.knob("SetDelay", 0)
    rc, res, _ = rig.companion()
    # the SM issued a new profile for the new attestation
    claimed(rig, rc, res, "gw", seq=2)


def case_refused(rig):
    rig.device("gw")
    rig.ble.knob("RefuseWrites", 1, "NotPermitted")
    rc, res, _ = rig.companion()
    check(rc == 1 and res["error"]["code"] == "ble-refused" and res["error"]["step"] == 1,
          "a refused write is ble-refused at step 1: %s" % res["error"]["message"])
    check("NotPermitted" in res["error"]["message"], "naming BlueZ's error")
    check(not any(e["event"] == "request" for e in rig.events("gw")), "the device got no request")


def case_busy(rig):
    rig.device("gw", busy=True)
    rc, res, _ = rig.companion()
    check(rc == 1 and res["error"]["code"] == "busy" and res["error"]["number"] == 0x0602
          and res["error"]["step"] == 3, "write-profile answered busy: %s" % res["error"])
    check("wait" in res["error"]["hint"], "the hint says to wait")


def case_two(rig):
    a = rig.device("gw", adapter="hci0")
    b2 = rig.device("gw2", adapter="hci2")
    rc, res, err = rig.companion()
    check(rc == 0, "with no choice, the companion provisioned one: %s" % res.get("error"))
    took = res["device"]["device-id"]
    other = b2 if took == a["device-id"] else a
    check("several cellprov devices advertise: taking %s, not %s" % (took[:10], other["device-id"][:10]) in err,
          "and said which it took among several")
    rc, res, err = rig.companion(["--ble-device", other["device-id"][:10]])
    check(rc == 0 and res["device"]["device-id"] == other["device-id"],
          "--ble-device %s picked the other" % other["device-id"][:10])
    rc, res, err = rig.companion(["--ble-device", "0123456789"], tap_timeout=2)
    check(rc == 1 and res["error"]["code"] == "ble-not-found" and a["device-id"][:10] in res["error"]["message"]
          and b2["device-id"][:10] in res["error"]["message"],
          "a prefix nobody has: ble-not-found naming those seen: %s" % res["error"]["message"])


def case_notfound(rig):
    t0 = time.monotonic()
    rc, res, _ = rig.companion(tap_timeout=2)
    took = time.monotonic() - t0
    check(rc == 1 and res["error"]["code"] == "ble-not-found" and res["error"]["step"] == 1,
          "no device: ble-not-found at step 1 (%s)" % res["error"]["message"])
    check(2 <= took < 10, "after the tap timeout (%.1f s)" % took)
    rc, res, _ = rig.companion(["--adapter", "hci7"])
    check(rc == 1 and res["error"]["code"] == "ble-no-adapter" and "hci7" in res["error"]["message"],
          "no such adapter: ble-no-adapter (%s)" % res["error"]["message"])


CASES = {
    "mtu23": (["--mtu", "23"], lambda r: case_mtu(r, 23)),
    "mtu517": (["--mtu", "517"], lambda r: case_mtu(r, 517)),
    "drop": (["--mtu", "23"], case_drop),
    "refused": ([], case_refused),
    "busy": ([], case_busy),
    "two": (["--devices", "2"], case_two),
    "notfound": ([], case_notfound),
}


def main():
    builddir, case = sys.argv[1], sys.argv[2]
    sim_args, run = CASES[case]
    rig = None
    failed = False
    try:
        rig = Rig(builddir, sim_args)
        rig.start()
        run(rig)
    except Fail as e:
        print("FAIL:", e)
        failed = True
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
    if rig:
        if failed:
            rig.b.dump_logs()
        rig.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
