# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every way the issue lists for a provisioning to be refused, each with
its stable error code, through the real companion or raw HTTPS: unknown
root, expired and not-yet-valid certificates, a missing intermediate,
DeviceID mismatch, bad and replayed attestations, unknown companions,
oversized and unsized bodies, certificate servers that time out or send
garbage, plain-HTTP URLs; and that none of them leaves state behind (the
device still provisions afterwards with a fresh record)."""

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netbench import Fail, check, main  # noqa: E402


def refused(b, tag, code, what, token=None):
    rc, res, err = b.companion(tag, token=token)
    got = res.get("error", {}).get("code")
    check(rc == 1 and res["result"] == "error" and got == code,
          "%s -> %s%s" % (what, code, "" if got == code else " (got %s: %s)" % (got, res)))
    check(res["error"]["message"] and not os.path.exists(tag + ".profile"), "... with a message, nothing written")
    return res


def reissue(b, dev, ext, key=None, chain_name=None):
    """Replace the device's published chain with one whose device
    certificate the CA's intermediate issued with other extensions."""
    key = key or dev["key"]
    ca = b.path("ca")
    csr, cert, extf = b.path("re.csr"), b.path("re.pem"), b.path("re.ext")
    with open(extf, "w") as f:
        f.write(ext)
    b.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=reissued", "-out", csr])
    b.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca + "/intermediate-cert.pem",
           "-CAkey", ca + "/intermediate-key.pem", "-CAcreateserial", "-days", "30", "-extfile", extf, "-out", cert])
    path = dev["chain"] if not chain_name else os.path.join(os.path.dirname(dev["chain"]), chain_name)
    with open(path, "w") as f:
        f.write(open(cert).read() + open(ca + "/intermediate-cert.pem").read())


def test_chain_refusals(b):
    b.make_ca("other-ca", org="Other Ltd")
    b.make_device("foreign", ca="other-ca")
    refused(b, b.tag("foreign"), "untrusted-chain", "unknown root")

    b.make_device("expired", extra=["--valid-from", "2000-01-01T00:00:00Z", "--valid-days", "1"])
    refused(b, b.tag("expired"), "certificate-expired", "expired certificate")

    b.make_device("future", extra=["--valid-from", "2100-01-01T00:00:00Z"])
    refused(b, b.tag("future"), "certificate-not-yet-valid", "not-yet-valid certificate")

    d = b.make_device("noint")
    leaf = open(d["certificate"]).read()
    open(d["chain"], "w").write(leaf)
    refused(b, b.tag("noint"), "untrusted-chain", "chain without its intermediate")

    # the server publishes A's chain under B's DeviceID
    a = b.make_device("a")
    bb = b.make_device("b")
    shutil.copy(a["chain"], bb["chain"])
    refused(b, b.tag("b"), "device-id-mismatch", "certificate key does not hash to the URL's DeviceID")

    d = b.make_device("c")
    rec_tag = b.tag("a", extra=["--url", d["certificate-url"]])
    res = refused(b, rec_tag, "signature", "another device's record under this device's URL")
    check(res["error"]["number"] == 0x0209, "... number is CP_ERR_SIGNATURE")

    # certificates the CA should not have issued: the SM checks the leaf itself
    for name, ext, code in (("ku", "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n",
                             "key-usage"),
                            ("ca", "keyUsage=critical,digitalSignature,keyAgreement,keyCertSign\n"
                             "basicConstraints=critical,CA:TRUE\n", "key-usage")):
        dd = b.make_device(name)
        reissue(b, dd, ext)
        refused(b, b.tag(name), code, "device certificate with %s" % ext.splitlines()[0 if name == "ku" else 1])
    dd = b.make_device("p384")
    key384 = b.path("p384.pem")
    b.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", key384])
    spki = subprocess.run(["openssl", "pkey", "-in", key384, "-pubout", "-outform", "DER"],
                          capture_output=True, check=True).stdout
    id384 = hashlib.sha256(spki).hexdigest()[:32]
    reissue(b, dd, "keyUsage=critical,digitalSignature,keyAgreement\nbasicConstraints=critical,CA:FALSE\n",
            key=key384, chain_name=id384)
    refused(b, b.tag("p384", extra=["--url", dd["certificate-url"][:-32] + id384]), "key-type",
            "device key that is not P-256")

    gone = d["certificate-url"][:-32] + "0" * 32
    refused(b, b.tag("c", extra=["--url", gone]), "chain-fetch-failed", "certificate URL the CA does not know")

    refused(b, b.tag("c", extra=["--url", d["certificate-url"].replace("https://", "http://")]),
            "insecure-url", "plain http:// certificate URL")


def test_attestation(b):
    b.make_device("att")
    res = refused(b, b.tag("att", extra=["--corrupt-signature"]), "signature", "bad attestation signature")
    tag = b.tag("att")
    rc, res, _ = b.companion(tag)
    check(rc == 0 and res["result"] == "ok", "fresh record accepted")
    os.unlink(tag + ".profile")
    refused(b, tag, "stale-attestation", "the same record again (replay)")
    refused(b, b.tag("att", counter=1), "stale-attestation", "a lower counter")
    rc, res, _ = b.companion(b.tag("att"))
    check(rc == 0 and res["profile-seq"] == 2, "refusals left no state: next record gives profile_seq 2")

    # one record sent twice at once: the counter check and its update are
    # one statement, so exactly one of them gets a profile
    rec = b.path("race.rec")
    b.counter["att"] += 1
    b.run([b.prog("tests/integration/network/cp-test-device"), "records", "--config", b.conf("att"),
           "--first", str(b.counter["att"]), "--out", rec])
    record = open(rec).read().strip()
    url = b.devices["att"]["certificate-url"]
    results = []
    threads = [threading.Thread(target=lambda: results.append(b.provision_raw(url, record)[0])) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(sorted(results) == [200, 409, 409], "the same record 3 times at once: one profile (%s)" % results)


def test_suites(b):
    r = b.run([b.prog("tools/cellprov-mfg"), "device", "--ca", b.path("ca"), "--out", b.path("dev-sa"),
               "--chains", b.path("www", "devices"), "--url-base", "https://127.0.0.1:1/devices",
               "--suites", "A"], check_rc=False)
    check(r.returncode == 1 and "must include B" in r.stderr, "cellprov-mfg refuses a P-256 device offering only suite A")
    # a device that offers only suite A anyway: no suite fits its P-256 key,
    # which is the device's fault, not the network's (no "try again later")
    d = b.make_device("sa")
    conf = open(d["config"]).read().replace("suites=B", "suites=A")
    open(d["config"], "w").write(conf)
    res = refused(b, b.tag("sa"), "suite", "a P-256 device offering only suite A")
    check(res["error"]["number"] == 0x0203, "... number is CP_ERR_SUITE")


def test_companions(b):
    b.make_device("cmp")
    tag = b.tag("cmp")
    bad = b.path("bad-token")
    with open(bad, "w") as f:
        f.write("not-a-registered-token")
    os.chmod(bad, 0o600)
    res = refused(b, tag, "unauthorized", "unknown companion token", token=bad)
    check("check --token" in res["error"].get("hint", ""), "... with a hint")
    stranger = b.path("stranger-token")
    with open(stranger, "w") as f:
        f.write("token-of-a-stranger-companion")
    os.chmod(stranger, 0o600)
    refused(b, b.tag("cmp"), "unknown-companion", "companion the SM knows but the AUSF holds no K_AUSF for",
            token=stranger)
    rc, res, _ = b.companion(b.tag("cmp"), extra=["--companion", "001010000009002"])
    check(rc == 1 and res["error"]["code"] == "companion-mismatch", "companion claiming another SUPI")


def raw_headers(b, headers):
    ctx = b.ssl_context()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", b.sm_port)), server_hostname="127.0.0.1")
    s.settimeout(10)
    s.sendall(b"POST /v1/provision HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b.token.encode() +
              b"\r\nContent-Type: application/json\r\n" + headers + b"\r\n")
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError):
        pass
    s.close()
    return data


def test_http_limits(b):
    # the SM answers on the headers alone: it never waits for (or buffers)
    # a body it is not going to accept
    data = raw_headers(b, b"Content-Length: 100000000\r\n")
    check(data.startswith(b"HTTP/1.1 413 ") and b'"body-too-large"' in data, "oversized body -> 413 body-too-large")
    data = raw_headers(b, b"Transfer-Encoding: chunked\r\n")
    check(data.startswith(b"HTTP/1.1 411 ") and b'"length-required"' in data, "chunked body -> 411 length-required")
    data = raw_headers(b, b"Content-Length: 16385\r\n")
    check(data.startswith(b"HTTP/1.1 413 "), "a body one byte over body-max -> 413")
    st, res = b.sm_request("POST", "/v1/provision", body=" " * 16384)
    check(st == 400 and res["error"]["code"] == "bad-json", "a body of exactly body-max is read (-> bad-json)")

    st, res = b.sm_request("POST", "/v1/provision", body="{not json")
    check(st == 400 and res["error"]["code"] == "bad-json", "malformed JSON -> bad-json")
    st, res = b.sm_request("POST", "/v1/provision", body='{"certificate-url": 5}')
    check(st == 400 and res["error"]["code"] == "bad-request", "wrong member type -> bad-request")
    d = b.make_device("lim")
    url = json.dumps(d["certificate-url"])
    for body, what in (('{"certificate-url": %s, "device-record": "AAAA", "certificate-url": %s}' % (url, url),
                        "a member twice"),
                       ('{"certificate-url": %s, "device-record": "AAAA", "x": {"a": 1, "\\u0061": 2}}' % url,
                        "a member twice in a nested object, once escaped")):
        st, res = b.sm_request("POST", "/v1/provision", body=body)
        check(st == 400 and res["error"]["code"] == "bad-request" and "twice" in res["error"]["message"],
              "%s -> bad-request (%s)" % (what, res["error"]["message"]))
    st, res = b.sm_request("POST", "/v1/provision", body='{"certificate-url": %s, "x": {"certificate-url": 1}, '
                           '"device-record": "AAAA"}' % url)
    check(res["error"]["code"] != "bad-request" or "twice" not in res["error"]["message"],
          "one name in two different objects is no repetition (%s)" % res["error"]["code"])
    st, res = b.sm_request("POST", "/v1/provision", body=json.dumps(
        {"certificate-url": d["certificate-url"], "device-record": "AAAA", "companion": 1}))
    check(st == 400 and res["error"]["code"] == "bad-request", "a companion that is not a string -> bad-request, not ignored")
    st, res = b.provision_raw(d["certificate-url"], base64.b64encode(b"\x01\x00\x01").decode())
    check(st in (400, 403) and res["error"]["number"] != 0, "truncated device record -> %s" % res["error"]["code"])
    st, res = b.sm_request("GET", "/v1/provision")
    check(st == 405, "GET -> 405")
    st, res = b.sm_request("GET", "/nothing")
    check(st == 404 and res["error"]["code"] == "not-found", "unknown path -> not-found")


def test_slow_clients(b):
    # hold every slot with silent connections: the next one is turned away,
    # and after connection-timeout the SM has cut them all and serves again
    idle = [socket.create_connection(("127.0.0.1", b.sm_port)) for _ in range(4)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", b.sm_port))
    extra.settimeout(2)
    try:
        data = extra.recv(1)
    except (ConnectionResetError, socket.timeout):
        data = None
    check(data == b"", "a connection beyond max-connections is closed at once")
    t0 = time.monotonic()
    for s in idle:
        s.settimeout(10)
        try:
            data = s.recv(1)
        except ConnectionResetError:
            data = b""
        check(data == b"", "a silent client is cut after request-timeout")
    check(time.monotonic() - t0 < 7, "... within the timeout (%.1f s)" % (time.monotonic() - t0))
    st, res = b.sm_request("GET", "/nothing")
    check(st == 404, "the SM serves again")
    # a client that trickles its body is cut the same way
    ctx = b.ssl_context()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", b.sm_port)), server_hostname="127.0.0.1")
    s.sendall(b"POST /v1/provision HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n{")
    t0 = time.monotonic()
    s.settimeout(10)
    cut = False
    try:
        while time.monotonic() - t0 < 8:
            s.sendall(b" ")
            time.sleep(0.2)
    except (OSError, ssl.SSLError):
        cut = True
    check(cut and time.monotonic() - t0 < 7, "a client trickling its body is cut (%.1f s)" % (time.monotonic() - t0))


class BadCa:
    """An HTTPS certificate server that misbehaves on purpose."""

    def __init__(self, b):
        bench = b

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if "/garbage/" in self.path:
                    body = b"<html><body>Service temporarily unavailable</body></html>\n"
                elif "/huge/" in self.path:
                    body = open(bench.devices["bad"]["chain"], "rb").read() * 100
                elif "/slow/" in self.path:
                    # headers at once, then one byte a second: never done in time
                    self.send_response(200)
                    self.send_header("Content-Length", "2000")
                    self.end_headers()
                    try:
                        for _ in range(20):
                            self.wfile.write(b"-")
                            self.wfile.flush()
                            time.sleep(1)
                    except OSError:
                        pass
                    return
                elif "/reason/" in self.path:
                    # a status line whose phrase is not UTF-8 and ends in a quote
                    self.wfile.write(b"HTTP/1.1 404 \xff\xfe\x1b[31m\"gone\r\nContent-Length: 0\r\n\r\n")
                    return
                else:
                    body = b""
                self.send_response(200)
                self.send_header("Content-Type", "application/pem-certificate-chain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # the SM hanging up on a huge or slow answer is the point

        self.httpd = Server(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(b.tls_cert, b.tls_key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        # and one that accepts and never says a word
        self.mute = socket.socket()
        self.mute.bind(("127.0.0.1", 0))
        self.mute.listen(8)
        self.mute_port = self.mute.getsockname()[1]


GENERIC_FETCH = "the certificate chain could not be fetched from the certificate URL"


def in_sm_log(b, text):
    return text in open(b.path("sm.log"), errors="replace").read()


def test_bad_ca(b):
    # every way a fetch fails gets one code and one sentence: the companion
    # learns nothing of what the SM can reach; the SM's log has the detail
    restart_sm(b, **{"url-prefixes": "", "allow-any-url": "true"})
    d = b.make_device("bad")
    ca = BadCa(b)
    base = "https://127.0.0.1:%d" % ca.port
    for kind, detail in (("garbage", "did not return a PEM chain"), ("huge", "larger than"),
                         ("empty", "did not return a PEM chain"), ("reason", "answered 404 Not Found"),
                         ("slow", "did not answer within")):
        t0 = time.monotonic()
        res = refused(b, b.tag("bad", extra=["--url", "%s/%s/%s" % (base, kind, d["device-id"])]),
                      "chain-fetch-failed", "certificate server sending %s" % kind)
        check(res["error"]["message"].endswith(GENERIC_FETCH), "... with the one generic message (%s)" % res["error"]["message"])
        check(in_sm_log(b, "%s/%s/%s: " % (base, kind, d["device-id"])) and in_sm_log(b, detail),
              "... and the SM's log says why (%s)" % detail)
        check(time.monotonic() - t0 < 8, "... in %.1f s" % (time.monotonic() - t0))
    t0 = time.monotonic()
    res = refused(b, b.tag("bad", extra=["--url", "https://127.0.0.1:%d/devices/%s" % (ca.mute_port, d["device-id"])]),
                  "chain-fetch-failed", "certificate server that never answers")
    check(res["error"]["message"].endswith(GENERIC_FETCH), "... with the one generic message")
    check(time.monotonic() - t0 < 8, "... in %.1f s (fetch-timeout 2 s)" % (time.monotonic() - t0))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = refused(b, b.tag("bad", extra=["--url", "https://127.0.0.1:%d/devices/%s" % (port, d["device-id"])]),
                  "chain-fetch-failed", "certificate server not listening")
    check(res["error"]["message"].endswith(GENERIC_FETCH), "... the same answer as a slow server: no port-scan oracle")
    rc, res, _ = b.companion(b.tag("bad"))
    check(rc == 0 and res["profile-seq"] == 1, "the same device then provisions from its real CA")
    ca.httpd.shutdown()
    restart_sm(b, **{"url-prefixes": None, "allow-any-url": None})


def restart_sm(b, **options):
    b.stop("sm")
    b.sm_options.update(options)
    b.sm_options = {k: v for k, v in b.sm_options.items() if v is not None}
    b.write_sm_conf()
    b.start_sm()


def test_url_prefixes(b):
    # prefixes are compared as URLs (scheme, host, port, path below), so a
    # host that only starts like the allowed one, user information that
    # disguises the host, or dot segments out of the allowed path get nowhere
    d = b.make_device("pre")
    origin = "https://127.0.0.1:%d" % b.ca_port
    restart_sm(b, **{"url-prefixes": "%s/devices/;https://127.0.0.1" % origin})
    rc, res, _ = b.companion(b.tag("pre"))
    check(rc == 0 and res["result"] == "ok", "a URL below an allowed prefix provisions")
    ident = d["device-id"]
    for url, code, what in (
            ("https://127.0.0.1.example.invalid/devices/" + ident, "chain-fetch-failed",
             "a host that only begins with an allowed one"),
            ("https://localhost:%d/devices/%s" % (b.ca_port, ident), "chain-fetch-failed", "another host name"),
            ("https://127.0.0.1:%d/devices/%s" % (b.ca_port + 1, ident), "chain-fetch-failed", "another port"),
            ("%s/other/%s" % (origin, ident), "chain-fetch-failed", "a path outside the prefix"),
            ("%s/devices/../other/%s" % (origin, ident), "chain-fetch-failed", "dot segments out of the prefix"),
            ("https://127.0.0.1:%d@localhost:%d/devices/%s" % (b.ca_port, b.ca_port, ident), "bad-url",
             "user information before the host"),
            ("%s/devices/%s?x=1" % (origin, ident), "bad-url", "a query")):
        res = refused(b, b.tag("pre", extra=["--url", url]), code, what)
        check(res["error"].get("hint"), "... and the companion says what to do")
    rc, res, _ = b.companion(b.tag("pre"))
    check(rc == 0 and res["profile-seq"] == 2, "refusals left no state: the device provisions again")
    b.stop("sm")
    b.sm_options["url-prefixes"] = "https://user@127.0.0.1/devices/"
    b.write_sm_conf()
    r = b.run([b.prog("network/cellprov-sm"), "-c", b.path("sm.conf"), "--listen", "127.0.0.1:0"], check_rc=False)
    check(r.returncode == 1 and "url-prefixes" in r.stderr, "a prefix with user information is a config error")
    b.sm_options["url-prefixes"] = ""
    b.write_sm_conf()
    r = b.run([b.prog("network/cellprov-sm"), "-c", b.path("sm.conf"), "--listen", "127.0.0.1:0"], check_rc=False)
    check(r.returncode == 1 and "allow-any-url" in r.stderr,
          "no url-prefixes and no allow-any-url=true: the SM refuses to start")
    b.sm_options["allow-any-url"] = "true"
    b.sm_options["url-prefixes"] = "https://127.0.0.1:%d/devices/" % b.ca_port
    b.write_sm_conf()
    r = b.run([b.prog("network/cellprov-sm"), "-c", b.path("sm.conf"), "--listen", "127.0.0.1:0"], check_rc=False)
    check(r.returncode == 1 and "contradict" in r.stderr, "url-prefixes with allow-any-url=true is a config error")
    restart_sm(b, **{"url-prefixes": None, "allow-any-url": None})


def refuses_to_start(b, prog, conf, what):
    try:
        r = subprocess.run([b.prog(prog), "-c", conf, "--listen", "127.0.0.1:0"], capture_output=True,
                           text=True, timeout=5)
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, "it started"
    check(rc == 1 and what in err, "%s refuses to start: %s (%s)" % (os.path.basename(prog), what, err.strip()))


def test_bad_config(b):
    # a value that is set but malformed stops the program, naming the key,
    # instead of silently becoming the default (or, negative, a huge number)
    sm_conf = open(b.path("sm.conf")).read()
    for line in ("fetch-timeout=abc", "fetch-timeout=-1", "fetch-timeout=0", "body-max=0",
                 "max-connections=99999999999999999999", "fetch-max-size=4294967296",
                 "profile-lifetime=18446744073709551615", "allow-http=yes", "plain-http=maybe",
                 "request-timeout=0", "max-connections-per-source=x", "max-unauthenticated=0",
                 "reuse-port=2", "metrics-listen=localhost:1", "allow-any-url=perhaps"):
        conf = b.path("bad-sm.conf")
        open(conf, "w").write(sm_conf + line + "\n")
        refuses_to_start(b, "network/cellprov-sm", conf, line.split("=")[0])
    ausf_conf = open(b.path("ausf.conf")).read()
    for line in ("max-connections=-5", "connection-timeout=ten"):
        conf = b.path("bad-ausf.conf")
        open(conf, "w").write(ausf_conf + line + "\n")
        refuses_to_start(b, "network/cellprov-ausf", conf, line.split("=")[0])


def test_ausf_api(b):
    import http.client
    import json
    # A wrong token of the right length reaches the comparison itself; one
    # of another length, and none at all, are refused before it.
    near = b.ausf_token[:-1] + ("x" if b.ausf_token[-1] != "x" else "y")
    for wrong in (near, "wrong-token-xxxxxxxx", None):
        conn = http.client.HTTPConnection("127.0.0.1", b.ausf_port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if wrong:
            headers["Authorization"] = "Bearer " + wrong
        conn.request("POST", "/v1/devices", body="{}", headers=headers)
        r = conn.getresponse()
        res = json.loads(r.read())
        check(r.status == 401 and res["error"]["code"] == "unauthorized",
              "AUSF refuses a %s SM token" % ("missing" if wrong is None else "wrong"))
        conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", b.ausf_port, timeout=10)
    conn.request("GET", "/v1/subscribers")
    r = conn.getresponse()
    r.read()
    check(r.status == 401, "AUSF subscriber export needs the token")
    conn.close()

    def ausf_post(req):
        c = http.client.HTTPConnection("127.0.0.1", b.ausf_port, timeout=10)
        c.request("POST", "/v1/devices", body=json.dumps(req),
                  headers={"Content-Type": "application/json", "Authorization": "Bearer " + b.ausf_token})
        resp = c.getresponse()
        out = json.loads(resp.read())
        c.close()
        return resp.status, out

    def new_key(name):
        key = b.path(name + ".pem")
        b.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
        return subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                              capture_output=True, check=True).stdout

    spki = new_key("ausf-k1")
    ident = hashlib.sha256(spki).hexdigest()[:32]
    good = {"companion": "001010000009001", "device-id": ident,
            "public-key": base64.b64encode(spki).decode(), "suite": "B"}
    for change, status, code, what in (
            ({"device-id": "0" * 32}, 409, "device-id-mismatch", "a device_id that is not the key's hash"),
            ({"public-key": base64.b64encode(b"\x30\x03\x02\x01\x01").decode()}, 400, "key", "a public_key that is no key"),
            ({"public-key": base64.b64encode(spki + b"\x00").decode()}, 400, "key", "a public_key with a trailing byte"),
            ({"suite": "A"}, 400, "key", "suite A for a P-256 key"),
            ({"suite": "C"}, 400, "bad-request", "an unknown suite"),
            ({"companion": "001010000009777"}, 404, "unknown-companion", "a companion without K_AUSF"),
            ({"companion": 1}, 400, "bad-request", "a companion that is not a string")):
        req = dict(good, **change)
        st, res = ausf_post(req)
        check(st == status and res["error"]["code"] == code, "AUSF: %s -> %d %s (%s)" % (what, status, code, res))
    lines = [l for l in open(b.export_subscribers()) if not l.startswith("#")]
    st, res = ausf_post(good)
    check(st == 200 and res["supi"] and len(base64.b64decode(res["k-sm"])) == 32, "AUSF: the same request, valid, adds it")
    after = [l for l in open(b.export_subscribers()) if not l.startswith("#")]
    check(len(after) == len(lines) + 1, "... and the refused ones added nobody")

    # a range with no SUPI left: 503 supi-range-exhausted, the known device still served
    b.stop("ausf")
    conf = open(b.path("ausf.conf")).read().replace("imsi-last=001010000000100", "imsi-last=" + res["supi"])
    open(b.path("ausf.conf"), "w").write(conf)
    b.start_ausf()
    spki2 = new_key("ausf-k2")
    st, res2 = ausf_post(dict(good, **{"device-id": hashlib.sha256(spki2).hexdigest()[:32],
                                       "public-key": base64.b64encode(spki2).decode()}))
    check(st == 503 and res2["error"]["code"] == "supi-range-exhausted", "AUSF: range used up -> 503 supi-range-exhausted")
    st, res3 = ausf_post(good)
    check(st == 200 and res3["supi"] == res["supi"], "... a known device keeps its SUPI")
    b.stop("ausf")
    open(b.path("ausf.conf"), "w").write(conf.replace("imsi-last=" + res["supi"], "imsi-last=001010000000100"))
    b.start_ausf()
    restart_sm(b)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [test_chain_refusals, test_attestation, test_suites, test_companions, test_http_limits,
                                test_bad_ca, test_url_prefixes, test_bad_config, test_ausf_api, test_slow_clients],
                  sm_options={"max-connections": "4", "connection-timeout": "4", "request-timeout": "4",
                              "fetch-timeout": "2"}))
