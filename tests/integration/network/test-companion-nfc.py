# SPDX-License-Identifier: LGPL-2.1-or-later
"""The companion over NFC: cellprov-companion on one simulated PN532
(initiator, real libnfc), the device's tag (cp-nfc-tag, real libnfc) on
the other, joined by the simulator's RF link, with the real SM and AUSF.
Three taps: read, write the profile (the device verifies it with its key),
read the receipt (the companion verifies it with K'')."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netbench import Bench, Fail, check, prereq  # noqa: E402


def main():
    b = Bench(sys.argv[1])
    sim_path = b.prog("tests/sim/pn532/cp-pn532-sim")
    if not os.path.exists(sim_path):
        prereq.missing("this build has no NFC (no PN532 simulator)")
    r = subprocess.run([b.prog("tests/integration/network/cp-test-device"), "nfc"], capture_output=True)
    if r.returncode != 2:
        prereq.missing("cp-test-device was built without NFC")
    failed = False
    procs = []
    try:
        b.setup()
        b.make_device("gw")
        env = dict(os.environ, LIBNFC_AUTO_SCAN="false")
        target, initiator = b.path("pn532-device"), b.path("pn532-companion")
        sim = subprocess.Popen([sim_path, "--target-pty", target, "--initiator-pty", initiator, "--fwt-ms", "5000"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        procs.append(sim)
        check(sim.stdout.readline().strip() == "ready", "PN532 simulator ready (link mode)")
        dev_log = open(b.path("nfc-device.log"), "w")
        dev = subprocess.Popen([b.prog("tests/integration/network/cp-test-device"), "nfc",
                                "--config", b.conf("gw"), "--connstring", "pn532_uart:" + target],
                               stdout=dev_log, stderr=subprocess.STDOUT, env=env)
        procs.append(dev)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and '"waiting"' not in open(b.path("nfc-device.log")).read():
            time.sleep(0.05)
        check('"waiting"' in open(b.path("nfc-device.log")).read(), "device tag armed")

        t0 = time.monotonic()
        r = subprocess.run([b.prog("tools/cellprov-companion"), "--json",
                            "--sm", "https://127.0.0.1:%d" % b.sm_port, "--sm-ca", b.tls_ca,
                            "--token", b.path("companion-token"), "--connstring", "pn532_uart:" + initiator,
                            "--tap-timeout", "20"], capture_output=True, text=True, env=env, timeout=90)
        took = time.monotonic() - t0
        try:
            res = json.loads(r.stdout)
        except ValueError:
            raise Fail("companion printed no JSON: %r %r" % (r.stdout, r.stderr))
        check(r.returncode == 0 and res["result"] == "ok", "companion provisioned over NFC in %.1f s (%s)" % (took, res))
        check(res["device"]["device-id"] == b.devices["gw"]["device-id"], "it read the device's DeviceID")
        check(res["receipt"]["verified"] and res["receipt"]["status"] == "provisioned"
              and res["receipt"].get("registration") == "00101", "it verified the receipt with K''")
        events = [json.loads(l) for l in open(b.path("nfc-device.log")) if l.startswith("{")]
        written = [e for e in events if e["event"] == "written"]
        check(len(written) == 1 and written[0]["result"] == "ok" and written[0]["profile-seq"] == 1,
              "the device verified the profile with its key (cp_profile_verify)")
        for name in ("sm", "ausf"):
            b.stop(name)
    except Fail as e:
        print("FAIL:", e)
        failed = True
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    if failed:
        b.dump_logs()
        p = b.path("nfc-device.log")
        if os.path.exists(p):
            print("---- nfc-device.log ----\n" + open(p).read()[-4000:])
    b.teardown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
