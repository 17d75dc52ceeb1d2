/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cp_t4t_cc_decode(): an accepted CC re-encodes to its first 15 bytes. */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-ndef.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[CP_T4T_CC_LEN];
	CpT4tCc cc, again;

	if (cp_t4t_cc_decode(data, size, &cc) != CP_OK)
		return 0;
	CP_FUZZ_CHECK(size >= CP_T4T_CC_LEN && cc.cc_len >= CP_T4T_CC_LEN);
	cp_t4t_cc_encode(&cc, out);
	CP_FUZZ_CHECK(memcmp(out, data, CP_T4T_CC_LEN) == 0);
	CP_FUZZ_CHECK(cp_t4t_cc_decode(out, sizeof out, &again) == CP_OK);
	return 0;
}
