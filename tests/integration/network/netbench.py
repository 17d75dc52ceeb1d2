# SPDX-License-Identifier: LGPL-2.1-or-later
"""The network side on loopback for the tests and the benchmark: a TLS test
CA, a manufacturer CA and devices made by cellprov-mfg, lighttpd serving the
chains over HTTPS, cellprov-ausf and cellprov-sm on ports the kernel picks,
all in one temporary directory."""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import prereq  # noqa: E402
import pgserver  # noqa: E402

COMPANION_SUPI = "001010000009001"
COMPANION_K_AUSF = "11" * 32
# a second subscriber with its own token and K_AUSF: another owner
NEIGHBOUR_SUPI = "001010000009002"
NEIGHBOUR_K_AUSF = "22" * 32
OP = "cdc202d5123e20f62b6d676ac72cb318"
# the AUSF's key-encryption key (K_usim and OPc at rest)
KEK = "5e" * 32


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok:", what)


def free_port():
    # lighttpd cannot report a kernel-chosen port; take one and hand it over
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_file(path, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc is not None and proc.poll() is not None:
            raise Fail("%s exited with %d before writing %s" % (proc.args[0], proc.returncode, path))
        time.sleep(0.02)
    raise Fail("timed out waiting for %s" % path)


def write(path, text, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def store_kind():
    """The store the tests run against: CP_TEST_STORE=postgresql (a real
    server, pgserver.py) or sqlite (the default)."""
    kind = os.environ.get("CP_TEST_STORE", "sqlite")
    if kind not in ("sqlite", "postgresql"):
        raise Fail("CP_TEST_STORE must be sqlite or postgresql, not %r" % kind)
    return kind


class Bench:
    def __init__(self, builddir, sm_options=None, keep=False, store=None):
        self.build = builddir
        self.store = store or store_kind()
        self.pg = None
        self.pg_durable = False  # fsync and synchronous_commit on (the benchmark)
        self.stores = {}
        self.tmp = tempfile.mkdtemp(prefix="cp-net-")
        self.keep = keep or os.environ.get("CP_KEEP_TMP") == "1"
        self.procs = {}
        self.logs = {}
        self.sm_options = sm_options or {}
        self.cert_max_age = 0  # Cache-Control max-age of the certificate server's answers
        self.imsi_last = "001010000000100"
        self.ausf_options = {}
        self.token = "companion-token-" + os.urandom(8).hex()
        self.neighbour_token = "neighbour-token-" + os.urandom(8).hex()
        self.ausf_token = "ausf-token-" + os.urandom(8).hex()
        self.devices = {}
        self.counter = {}
        self.extra_companions = []
        self.operator_root = None

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def prog(self, rel):
        return os.path.join(self.build, rel)

    def run(self, args, check_rc=True, **kw):
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)
        if check_rc and r.returncode != 0:
            raise Fail("%s failed (%d): %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    # ---- setup ----

    def make_tls(self):
        d = self.path("tls")
        os.mkdir(d)
        ossl = ["openssl"]
        self.run(ossl + ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                         "-nodes", "-keyout", d + "/ca-key.pem", "-out", d + "/ca.pem", "-days", "30",
                         "-subj", "/CN=cellprov test TLS CA"])
        self.run(ossl + ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", d + "/server-key.pem", "-out", d + "/server.csr",
                         "-subj", "/CN=127.0.0.1"])
        write(d + "/ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
              "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        self.run(ossl + ["x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem",
                         "-CAkey", d + "/ca-key.pem", "-CAcreateserial", "-days", "30",
                         "-extfile", d + "/ext.cnf", "-out", d + "/server.pem"])
        with open(d + "/server-both.pem", "w") as f:
            f.write(open(d + "/server.pem").read() + open(d + "/server-key.pem").read())
        self.tls_ca = d + "/ca.pem"
        self.tls_cert = d + "/server.pem"
        self.tls_key = d + "/server-key.pem"

    def make_operator(self):
        """The operator's PKI, as an operator makes it with openssl: a root
        CA and the SM's signing certificate (P-256, an end entity for
        digitalSignature) under it; the SM signs every profile with that
        key and sends the chain (its certificate, then the root). The root
        is what devices may hold as trusted-operators."""
        d = self.path("operator")
        os.mkdir(d)
        ossl = ["openssl"]
        write(d + "/root.cnf", "[req]\ndistinguished_name=dn\n[dn]\n[v3_root]\n"
              "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
              "subjectKeyIdentifier=hash\n")
        self.run(ossl + ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", d + "/root-key.pem", "-out", d + "/root.pem", "-days", "3650",
                         "-subj", "/O=cellprov test operator/CN=cellprov test operator root",
                         "-config", d + "/root.cnf", "-extensions", "v3_root"])
        self.run(ossl + ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", d + "/sm-key.pem", "-out", d + "/sm.csr",
                         "-subj", "/O=cellprov test operator/CN=cellprov test SM"])
        write(d + "/sm.ext", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        self.run(ossl + ["x509", "-req", "-in", d + "/sm.csr", "-CA", d + "/root.pem",
                         "-CAkey", d + "/root-key.pem", "-set_serial", "2", "-days", "3650",
                         "-extfile", d + "/sm.ext", "-out", d + "/sm.pem"])
        os.chmod(d + "/sm-key.pem", 0o600)
        with open(d + "/chain.pem", "w") as f:
            f.write(open(d + "/sm.pem").read() + open(d + "/root.pem").read())
        self.operator_root = d + "/root.pem"
        self.signing_key = d + "/sm-key.pem"
        self.signing_chain = d + "/chain.pem"

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.tls_ca)
        return ctx

    def make_ca(self, name="ca", org="Example Ltd"):
        r = self.run([self.prog("tools/cellprov-mfg"), "ca", "--dir", self.path(name),
                      "--organization", org, "-J"])
        return json.loads(r.stdout)

    def make_device(self, name, ca="ca", extra=(), publish=True):
        chains = self.path("www", "devices") if publish else self.path("unpublished")
        r = self.run([self.prog("tools/cellprov-mfg"), "device", "--ca", self.path(ca),
                      "--out", self.path("dev-" + name), "--chains", chains,
                      "--url-base", "https://127.0.0.1:%d/devices" % self.ca_port,
                      "--serial", "SN-" + name, "-J"] + list(extra))
        info = json.loads(r.stdout)
        self.devices[name] = info
        self.counter[name] = 0
        return info

    def start_lighttpd(self):
        os.makedirs(self.path("www", "devices"), exist_ok=True)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                              "network", "cellprov-cert-server")
        for attempt in range(5):
            self.ca_port = free_port()
            log = open(self.path("lighttpd.log"), "w")
            p = subprocess.Popen(["sh", script, "--root", self.path("www"), "--port", str(self.ca_port),
                                  "--tls-pem", self.tls_dir_file("server-both.pem"),
                                  "--state-dir", self.path("cert-server")]
                                 + (["--max-age", str(self.cert_max_age)] if self.cert_max_age else []),
                                 stdout=log, stderr=subprocess.STDOUT)
            if self.wait_port(self.ca_port, p):
                self.procs["lighttpd"] = p
                return
            p.kill()
            p.wait()
        raise Fail("lighttpd did not start: " + open(self.path("lighttpd.log")).read())

    def tls_dir_file(self, f):
        return self.path("tls", f)

    def wait_port(self, port, proc, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def write_ausf_conf(self):
        write(self.path("k_ausf"), "# companion SUPI, K_AUSF\n%s %s\n%s %s\n"
              % (COMPANION_SUPI, COMPANION_K_AUSF, NEIGHBOUR_SUPI, NEIGHBOUR_K_AUSF), 0o600)
        write(self.path("op"), OP + "\n", 0o600)
        write(self.path("ausf-token"), self.ausf_token + "\n", 0o600)
        write(self.path("kek"), KEK + "\n", 0o600)
        write(self.path("ausf.conf"), """[ausf]
%s
k-ausf=%s
op=%s
token=%s
kek=%s
imsi-first=001010000000001
imsi-last=%s
""" % (self.store_line("ausf"), self.path("k_ausf"), self.path("op"), self.path("ausf-token"),
       self.path("kek"), self.imsi_last)
              + "".join("%s=%s\n" % kv for kv in self.ausf_options.items()))

    # ---- the stores ----

    def start_postgresql(self):
        if self.pg is None:
            self.pg = pgserver.PgServer(durable=self.pg_durable).start()

    def store_spec(self, name):
        """The store value of the SM ("sm") or the AUSF ("ausf")."""
        if self.store == "sqlite":
            return "sqlite:" + self.path(name + ".db")
        if name not in self.stores:
            self.start_postgresql()
            self.stores[name] = self.pg.create_database(name)
        return self.stores[name]

    def store_line(self, name):
        # SQLite keeps the older key, database=PATH, which must go on working
        if self.store == "sqlite":
            return "database=" + self.path(name + ".db")
        return "store=" + self.store_spec(name)

    def db_rows(self, name, sql, args=()):
        """Rows of a query on the SM's ("sm") or the AUSF's ("ausf") store,
        each a tuple, whichever the store ("?" parameters)."""
        if self.store == "sqlite":
            import sqlite3
            con = sqlite3.connect("file:%s?mode=ro" % self.path(name + ".db"), uri=True)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        for a in args:
            sql = sql.replace("?", "'%s'" % str(a).replace("'", "''"), 1)
        # through JSON, numbers stay numbers and text text, as sqlite3 gives them
        return [tuple(json.loads(r[0]).values())
                for r in self.pg.rows(name, "SELECT row_to_json(q) FROM (%s) AS q" % sql)]

    def ausf_snapshot(self):
        """Everything the AUSF stores, to tell that a request wrote nothing."""
        if self.store == "sqlite":
            h = hashlib.sha256()
            for f in ("ausf.db", "ausf.db-wal"):
                p = self.path(f)
                h.update(open(p, "rb").read() if os.path.exists(p) else b"-")
            return h.hexdigest()
        return (self.db_rows("ausf", "SELECT * FROM subscribers ORDER BY supi"),
                self.db_rows("ausf", "SELECT * FROM keysets ORDER BY supi, generation"))

    def write_sm_conf(self):
        if not self.operator_root:
            self.make_operator()
        h = hashlib.sha256(self.token.encode()).hexdigest()
        other = hashlib.sha256(b"token-of-a-stranger-companion").hexdigest()
        neighbour = hashlib.sha256(self.neighbour_token.encode()).hexdigest()
        write(self.path("companions"),
              "# name SUPI credential\nbench %s token-sha256:%s\nstranger 001010000009777 token-sha256:%s\n"
              "neighbour %s token-sha256:%s\n"
              % (COMPANION_SUPI, h, other, NEIGHBOUR_SUPI, neighbour)
              + "".join(l + "\n" for l in self.extra_companions))
        write(self.path("companion-token"), self.token + "\n", 0o600)
        write(self.path("neighbour-token"), self.neighbour_token + "\n", 0o600)
        opts = {
            self.store_line("sm").split("=", 1)[0]: self.store_line("sm").split("=", 1)[1],
            "tls-certificate": self.tls_cert,
            "tls-key": self.tls_key,
            "trust-anchors": self.path("ca", "root-cert.pem"),
            "companions": self.path("companions"),
            "fetch-ca": self.tls_ca,
            "fetch-timeout": "3",
            "ausf-url": "http://127.0.0.1:%d" % self.ausf_port,
            "ausf-token": self.path("ausf-token"),
            "plmn": "00101",
            "network-name": "cellprov test network",
            "apn": "iot.test",
            "connection-timeout": "10",
            "signing-key": self.signing_key,
            "signing-chain": self.signing_chain,
        }
        if hasattr(self, "ca_port"):
            opts["url-prefixes"] = "https://127.0.0.1:%d/devices/" % self.ca_port
        else:
            opts["allow-any-url"] = "true"  # no certificate server: nothing to fetch
        opts.update(self.sm_options)
        # None or "" unsets a key the defaults above set
        write(self.path("sm.conf"), "[sm]\n" + "".join("%s=%s\n" % kv for kv in opts.items()
                                                      if kv[1] is not None and kv[1] != ""))

    def start_daemon(self, name, args, port_file):
        if os.path.exists(port_file):
            os.unlink(port_file)
        log = open(self.path(name + ".log"), "a")
        env = dict(os.environ, G_MESSAGES_DEBUG=os.environ.get("G_MESSAGES_DEBUG", ""))
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_file(port_file, proc=p)
        self.procs[name] = p
        return int(open(port_file).read())

    def start_ausf(self):
        self.ausf_port = self.start_daemon(
            "ausf", [self.prog("network/cellprov-ausf"), "-c", self.path("ausf.conf"),
                     "--listen", "127.0.0.1:0", "--port-file", self.path("ausf.port")],
            self.path("ausf.port"))

    def start_sm(self):
        self.sm_port = self.start_daemon(
            "sm", [self.prog("network/cellprov-sm"), "-c", self.path("sm.conf"),
                   "--listen", "127.0.0.1:0", "--port-file", self.path("sm.port")],
            self.path("sm.port"))

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Fail("%s did not stop on SIGTERM" % name)
        if name != "lighttpd" and rc != 0:
            raise Fail("%s exited with %d" % (name, rc))

    def setup(self):
        for prog, package in (("openssl", "openssl"), ("lighttpd", "lighttpd")):
            if not shutil.which(prog):
                prereq.missing("%s is not installed (Debian package %s)" % (prog, package))
        if self.store == "postgresql":
            self.start_postgresql()
        self.make_tls()
        self.make_operator()
        self.make_ca()
        self.start_lighttpd()
        self.write_ausf_conf()
        self.start_ausf()
        self.write_sm_conf()
        self.start_sm()
        return self

    def teardown(self):
        for name in list(self.procs):
            try:
                self.procs[name].kill()
                self.procs[name].wait()
            except OSError:
                pass
        self.procs.clear()
        if self.pg is not None:
            self.pg.cleanup()
            self.pg = None
        if self.keep:
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def dump_logs(self):
        for name in ("sm", "ausf", "lighttpd"):
            p = self.path(name + ".log")
            if os.path.exists(p):
                sys.stdout.write("---- %s.log ----\n%s" % (name, open(p).read()[-6000:]))
        if self.pg is not None:
            sys.stdout.write("---- postgresql ----\n%s" % self.pg.server_log()[-3000:])

    # ---- device and companion ----

    def conf(self, name):
        return self.devices[name]["config"]

    def tag(self, name, out=None, counter=None, extra=()):
        if counter is None:
            self.counter[name] += 1
            counter = self.counter[name]
        out = out or self.path("tag-%s-%d" % (name, counter))
        self.run([self.prog("tests/integration/network/cp-test-device"), "tag", "--config", self.conf(name),
                  "--out", out, "--counter", str(counter)] + list(extra))
        return out

    def companion(self, tag, profile=None, receipt_tag=None, token=None, extra=(), wait=True):
        profile = profile or tag + ".profile"
        args = [self.prog("tools/cellprov-companion"), "--json",
                "--sm", "https://127.0.0.1:%d" % self.sm_port, "--sm-ca", self.tls_ca,
                "--token", token if token else self.path("companion-token"),
                "--tag-file", tag, "--profile-file", profile, "--tap-timeout", "20"]
        if receipt_tag:
            args += ["--receipt-tag-file", receipt_tag]
        args += list(extra)
        if token is False:
            args.remove("--token")
            args.remove(self.path("companion-token"))
        if not wait:
            return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        r = self.run(args, check_rc=False)
        try:
            return r.returncode, json.loads(r.stdout), r.stderr
        except ValueError:
            raise Fail("companion printed no JSON: %r %r" % (r.stdout, r.stderr))

    def accept(self, name, tag, profile, out=None, last_seq=0, subscribers=None, counter=None, usim_out=None,
               extra=()):
        if counter is None:
            self.counter[name] += 1
            counter = self.counter[name]
        args = [self.prog("tests/integration/network/cp-test-device"), "accept", "--config", self.conf(name),
                "--tag", tag, "--profile", profile, "--last-seq", str(last_seq),
                "--counter", str(counter), "--registration", "00101"]
        if out:
            args += ["--out", out]
        if subscribers:
            args += ["--subscribers", subscribers]
        if usim_out:
            args += ["--usim-out", usim_out]
        args += list(extra)
        r = self.run(args, check_rc=False)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            raise Fail("cp-test-device printed no JSON: %r %r" % (r.stdout, r.stderr))

    def export_subscribers(self):
        out = self.path("subscribers.txt")
        self.run([self.prog("network/cellprov-ausf"), "-c", self.path("ausf.conf"), "--export-file", out])
        return out

    # ---- raw HTTP ----

    def sm_request(self, method, path, body=None, headers=None, token=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.sm_port, context=self.ssl_context(), timeout=20)
        # token False: no credential (the device's own requests)
        h = {} if token is False else {"Authorization": "Bearer " + (token or self.token)}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def provision_raw(self, url, record_b64, token=None):
        body = json.dumps({"certificate-url": url, "device-record": record_b64})
        return self.sm_request("POST", "/v1/provision", body=body, token=token)


def main(builddir, tests, sm_options=None):
    bench = Bench(builddir, sm_options=sm_options)
    failed = False
    try:
        bench.setup()
        for t in tests:
            print("==", t.__name__)
            t(bench)
        # a clean exit on SIGTERM, which is also where sanitizers report
        for name in ("sm", "ausf"):
            bench.stop(name)
            print("ok: %s stopped cleanly" % name)
    except Fail as e:
        print("FAIL:", e)
        failed = True
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
    if failed:
        bench.dump_logs()
    bench.teardown()
    return prereq.status(1 if failed else 0)


def serve(argv):
    """netbench.py BUILDDIR [DEVICE...]: bring the network side up for a
    demo or an end-to-end test, make the devices, print one JSON line with
    everything a companion and a device need, run until SIGTERM/SIGINT."""
    import argparse
    ap = argparse.ArgumentParser(prog="netbench.py")
    ap.add_argument("builddir")
    ap.add_argument("devices", nargs="*", default=["gw"])
    ap.add_argument("--adm1", default="12345678")
    args = ap.parse_args(argv)
    b = Bench(os.path.abspath(args.builddir))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    try:
        b.setup()
        for name in args.devices:
            b.make_device(name, extra=["--adm1", args.adm1])
        print(json.dumps({
            "dir": b.tmp,
            "sm-url": "https://127.0.0.1:%d" % b.sm_port,
            "sm-ca": b.tls_ca,
            "token": b.path("companion-token"),
            "companion": COMPANION_SUPI,
            "operator-root": b.operator_root,
            "ausf-config": b.path("ausf.conf"),
            "devices": b.devices,
        }), flush=True)
        while not stop:
            time.sleep(0.2)
            for name, p in b.procs.items():
                if p.poll() is not None:
                    time.sleep(0.5)  # a signal to the whole process group
                    if not stop:
                        raise Fail("%s exited with %d" % (name, p.returncode))
    finally:
        b.teardown()


if __name__ == "__main__":
    serve(sys.argv[1:])
