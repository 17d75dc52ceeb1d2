#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The example configurations under examples/ name only keys their
program reads, in the right group, set or commented out as "# key=value".
(test-conf parses the cellprov.conf example with the daemon's parser.)"""

import os
import re
import sys

SOURCE = os.environ["CP_SOURCE_DIR"]
EXAMPLES = {
    "cellprov.conf": (["daemon/cp-conf.c"], {"device", "nfc", "modem", "daemon", "network"}),
    # the connection keys are read by the HTTP layer the SM and the AUSF share,
    # workers by the supervisor
    "sm.conf": (["network/cellprov-sm.c", "network/cp-http.c", "network/cp-workers.c"], {"sm"}),
    "ausf.conf": (["network/cellprov-ausf.c", "network/cp-http.c", "network/cp-workers.c"], {"ausf"}),
    "sm-postgresql.conf": (["network/cellprov-sm.c", "network/cp-http.c", "network/cp-workers.c"], {"sm"}),
    "ausf-postgresql.conf": (["network/cellprov-ausf.c", "network/cp-http.c", "network/cp-workers.c"], {"ausf"}),
}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    for name, (srcs, groups) in EXAMPLES.items():
        code = "".join(open(os.path.join(SOURCE, src)).read() for src in srcs)
        src = " or ".join(srcs)
        literals = set(re.findall(r'"([a-z0-9-]+)"', code))
        group, keys = None, 0
        for n, line in enumerate(open(os.path.join(SOURCE, "examples", name)), 1):
            line = line.strip()
            m = re.fullmatch(r"\[([a-z]+)\]", line)
            if m:
                group = m.group(1)
                if group not in groups:
                    fail("%s:%d: unknown group [%s]" % (name, n, group))
                continue
            m = re.fullmatch(r"#? ?([a-z0-9-]+)=.*", line)
            if not m:
                if line and not line.startswith("#"):
                    fail("%s:%d: not a key=value line: %r" % (name, n, line))
                continue
            if group is None:
                fail("%s:%d: key outside a group" % (name, n))
            if m.group(1) not in literals:
                fail("%s:%d: %s reads no key '%s'" % (name, n, src, m.group(1)))
            keys += 1
        if keys < 5:
            fail("%s: only %d keys" % (name, keys))
    print("ok")


if __name__ == "__main__":
    main()
