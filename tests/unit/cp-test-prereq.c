/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * For tests/test-prereq.py: cp-test's missing-prerequisite helpers.
 *   cp-test-prereq missing REASON   the whole test cannot run
 *   cp-test-prereq partly REASON    one part cannot run, one check passes
 */
#include <string.h>
#include "cp-test.h"

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "missing") == 0)
		return cp_test_missing(argv[2]);
	if (argc == 3 && strcmp(argv[1], "partly") == 0) {
		cp_test_partly(argv[2]);
		CP_CHECK(1);
		return cp_test_done("cp-test-prereq");
	}
	fprintf(stderr, "usage: cp-test-prereq missing|partly REASON\n");
	return 2;
}
