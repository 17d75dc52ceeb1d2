# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real PostgreSQL server for the network tests: initdb and pg_ctl in a
temporary directory, listening on a Unix socket only (no TCP port), run as
a user other than root (postgres refuses root: as root the server runs as
nobody), stopped and removed at the end. One server a test file: each
store (sm, ausf) is a database of its own on it.

    pg = PgServer(); pg.start()
    pg.create_database("sm")  ->  "postgresql:host=/tmp/... dbname=sm user=cellprov"
    pg.rows("sm", "SELECT ...") -> [tuple of str or None, ...]
    pg.restart(); pg.stop()
"""

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import prereq  # noqa: E402

SUPERUSER = "cellprov"
# no durability needed for a test server that is thrown away; the
# restart tests stop it cleanly (fast mode) or not at all (immediate)
SETTINGS = """
listen_addresses = ''
unix_socket_directories = '%s'
max_connections = 60
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
"""
# a benchmark measures the server as an operator runs it: every commit on
# disk before its answer, as the SQLite store's synchronous=FULL
DURABLE = """
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 128MB
max_connections = 200
"""


def bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    return None


class PgServer:
    def __init__(self, durable=False):
        self.durable = durable
        self.bin = bindir()
        if not self.bin or not shutil.which("psql"):
            prereq.missing("PostgreSQL is not installed (Debian package postgresql)")
        self.dir = tempfile.mkdtemp(prefix="cp-pg-")
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "run")
        self.log = os.path.join(self.dir, "server.log")
        self.running = False
        self.as_user = None
        if os.geteuid() == 0:
            try:
                self.as_user = pwd.getpwnam("nobody")
            except KeyError:
                prereq.missing("running as root and there is no user 'nobody' to run PostgreSQL as")

    def _run(self, args, timeout=60, check=True):
        cmd = list(args)
        kw = {}
        if self.as_user:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.as_user.pw_name, "--"] + cmd
            else:
                uid, gid = self.as_user.pw_uid, self.as_user.pw_gid

                def demote():
                    os.setgroups([])
                    os.setgid(gid)
                    os.setuid(uid)
                kw["preexec_fn"] = demote
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir, **kw)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def start(self):
        os.makedirs(self.socket)
        if self.as_user:
            for d in (self.dir, self.socket):
                os.chown(d, self.as_user.pw_uid, self.as_user.pw_gid)
        os.chmod(self.dir, 0o755)
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", SUPERUSER, "--auth=trust",
                   "--no-sync", "--encoding=UTF8", "--locale=C"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(SETTINGS % self.socket + (DURABLE if self.durable else ""))
        self._start()
        return self

    def _start(self):
        self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "30",
                   "start"])
        self.running = True

    def stop(self, mode="fast"):
        if self.running:
            self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"],
                      check=False)
            self.running = False

    def restart(self, pause=0.0):
        self.stop()
        time.sleep(pause)
        self._start()

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def conninfo(self, db):
        return "host=%s dbname=%s user=%s" % (self.socket, db, SUPERUSER)

    def psql(self, db, sql):
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-P", "null=\\N",
                            "-d", self.conninfo(db), "-c", sql],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("psql %s: %s" % (sql, r.stderr))
        return r.stdout

    def create_database(self, db):
        self.psql("postgres", "CREATE DATABASE %s" % db)
        return "postgresql:" + self.conninfo(db)

    def rows(self, db, sql):
        out = []
        for line in self.psql(db, sql).splitlines():
            out.append(tuple(None if v == "\\N" else v for v in line.split("\t")))
        return out

    def server_log(self):
        try:
            return open(self.log).read()
        except OSError:
            return ""
