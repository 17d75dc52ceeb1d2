/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp_profile_verify() on the fixed device: inputs that decode reach the
 * operator's chain and signature and, from the committed corpus, ECIES
 * with the device key, the mac and the checks behind it. On failure no
 * credential comes back.
 */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-fuzz-fixture.h"
#include "cp-records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CpFuzzFixture *f = cp_fuzz_fixture();
	CpProfileKeys keys;
	CpProfile p;
	CpError err;

	memset(&p, 0xa5, sizeof p);
	err = cp_profile_verify(data, size, &f->ctx, &p, &keys);
	if (err == CP_OK) {
		CP_FUZZ_CHECK(keys.k_prime && keys.opc && keys.k_usim && keys.k_sm &&
			      keys.k_prof && keys.k2);
		CP_FUZZ_CHECK(cp_secret_equal(keys.k_prime, f->k_prime));
		CP_FUZZ_CHECK(p.profile_seq > f->ctx.last_seq);
	} else {
		CP_FUZZ_CHECK(!keys.k_prime && !keys.opc && !keys.k_usim && !keys.k_sm &&
			      !keys.k_prof);
		CP_FUZZ_CHECK(!keys.k2 || err == CP_ERR_REPLAY || err == CP_ERR_EXPIRED ||
			      err == CP_ERR_SUPI_PLMN || err == CP_ERR_BINDING);
		CP_FUZZ_CHECK(p.profile_seq == 0xa5a5a5a5a5a5a5a5ull);
	}
	cp_profile_keys_clear(&keys);
	return 0;
}
