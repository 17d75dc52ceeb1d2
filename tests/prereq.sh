# SPDX-License-Identifier: LGPL-2.1-or-later
# What a shell test does when something it needs from the machine is
# missing: skip (exit 77) with the reason, or fail (exit 1) with it where
# everything must run (CI=true, or CP_REQUIRE_ALL=1 as scripts/test sets).
# Source it, then:
#   prereq_missing REASON   the whole test cannot run: exits 77 or 1
#   prereq_partly REASON    one part cannot run, the rest goes on;
#   prereq_status           ... then, at the end: exits 77 or 1 if a part
#                           was left out, returns otherwise

prereq_left_out=

prereq_required() {
	[ "${CI:-}" = true ] || [ "${CP_REQUIRE_ALL:-}" = 1 ]
}

prereq_missing() {
	if prereq_required; then
		echo "FAIL: missing prerequisite (CI=true or CP_REQUIRE_ALL=1): $*"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}

prereq_partly() {
	echo "part left out: $*"
	prereq_left_out="${prereq_left_out:+$prereq_left_out; }$*"
}

prereq_status() {
	[ -z "$prereq_left_out" ] || prereq_missing "$prereq_left_out"
}
