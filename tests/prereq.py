# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a Python test does when something it needs from the machine is
missing (a program, root, namespaces, npm's registry): on a developer's
machine it skips, exit 77 with the reason; where everything must run (CI=true
in the environment, or CP_REQUIRE_ALL=1, which scripts/test sets) it fails,
exit 1 with the reason. Nothing else in the tests decides to skip.

    prereq.missing(reason)   the whole test cannot run: exits 77 or 1
    prereq.partly(reason)    one part cannot run, the rest goes on;
    prereq.status(rc)        ... then the exit status: rc if the test failed,
                             else 77 or 1 if a part was left out, else 0
"""

import os
import sys

SKIP = 77
_left_out = []


def required():
    """True where a missing prerequisite is a failure, not a skip."""
    return os.environ.get("CI") == "true" or os.environ.get("CP_REQUIRE_ALL") == "1"


def _verdict(reason):
    if required():
        print("FAIL: missing prerequisite (CI=true or CP_REQUIRE_ALL=1): " + reason, flush=True)
        return 1
    print("SKIP: " + reason, flush=True)
    return SKIP


def missing(reason):
    sys.stdout.flush()
    sys.exit(_verdict(reason))


def partly(reason):
    print("part left out: " + reason, flush=True)
    _left_out.append(reason)


def status(rc):
    if rc != 0 or not _left_out:
        return rc
    return _verdict("; ".join(_left_out))
