# SPDX-License-Identifier: LGPL-2.1-or-later
"""Companions authenticated by TLS client certificate instead of a token:
a certificate listed in the companions file (by SHA-256 of its DER) and
chaining to client-ca provisions; one that chains but is not listed is
unauthorized; one from another CA does not get through the handshake."""

import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netbench import Bench, Fail, check, write  # noqa: E402


def client_cert(b, name, ca_cert, ca_key):
    d = b.path("tls")
    b.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", "%s/%s-key.pem" % (d, name), "-out", "%s/%s.csr" % (d, name), "-subj", "/CN=" + name])
    write(d + "/client-ext.cnf", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    b.run(["openssl", "x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", ca_cert, "-CAkey", ca_key,
           "-CAcreateserial", "-days", "30", "-extfile", d + "/client-ext.cnf", "-out", "%s/%s.pem" % (d, name)])
    der = subprocess.run(["openssl", "x509", "-in", "%s/%s.pem" % (d, name), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return "%s/%s.pem" % (d, name), "%s/%s-key.pem" % (d, name), hashlib.sha256(der).hexdigest()


def main():
    b = Bench(sys.argv[1])
    failed = False
    try:
        b.make_tls()
        b.make_ca()
        b.start_lighttpd()
        b.write_ausf_conf()
        b.start_ausf()
        d = b.path("tls")
        listed = client_cert(b, "listed", d + "/ca.pem", d + "/ca-key.pem")
        unlisted = client_cert(b, "unlisted", d + "/ca.pem", d + "/ca-key.pem")
        b.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", d + "/other-ca-key.pem", "-out", d + "/other-ca.pem", "-days", "30", "-subj", "/CN=other"])
        foreign = client_cert(b, "foreign", d + "/other-ca.pem", d + "/other-ca-key.pem")
        b.extra_companions = ["certphone 001010000009001 cert-sha256:" + listed[2],
                              "foreigner 001010000009001 cert-sha256:" + foreign[2]]
        b.sm_options = {"client-ca": d + "/ca.pem"}
        b.write_sm_conf()
        b.start_sm()
        b.make_device("gw")

        rc, res, err = b.companion(b.tag("gw"), token=False, extra=["--client-cert", listed[0], "--client-key", listed[1]])
        check(rc == 0 and res["result"] == "ok" and res["profile-seq"] == 1, "listed client certificate provisions")
        rc, res, err = b.companion(b.tag("gw"), token=False,
                                   extra=["--client-cert", unlisted[0], "--client-key", unlisted[1]])
        check(rc == 1 and res["error"]["code"] == "unauthorized", "unlisted client certificate -> unauthorized")
        rc, res, err = b.companion(b.tag("gw"), token=False,
                                   extra=["--client-cert", foreign[0], "--client-key", foreign[1]])
        check(rc == 1 and res["error"]["code"] in ("sm-unreachable", "unauthorized"),
              "client certificate from another CA refused (%s)" % res["error"]["code"])
        rc, res, err = b.companion(b.tag("gw"))
        check(rc == 0 and res["profile-seq"] == 2, "tokens still work beside certificates")
        for name in ("sm", "ausf"):
            b.stop(name)
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
