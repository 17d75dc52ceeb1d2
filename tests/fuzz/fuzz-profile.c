/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cp_profile_decode(): a decoded profile re-encodes, and decodes back to
 * the same fields. */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-fuzz-fixture.h"
#include "cp-records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CpFuzzFixture *f = cp_fuzz_fixture();
	cp_auto_buf b = CP_BUF_INIT;
	CpProfile p, again;
	CpError err;

	if (cp_profile_decode(data, size, &p) != CP_OK)
		return 0;
	CP_FUZZ_CHECK(p.version == CP_PROFILE_VERSION);
	CP_FUZZ_CHECK(strlen(p.plmn) >= 5 && strlen(p.supi) >= 6 && strlen(p.apn) >= 1);
	CP_FUZZ_CHECK(p.enc_cred_len == 89 || p.enc_cred_len == 90);

	err = cp_profile_encode(&p, f->op_sm_key, f->k_prof, &b);
	/* A chain not signed by the fixture's SM key: the encoder refuses. */
	if (cp_operator_chain_signer(p.op_chain, p.op_chain_len, f->op_sm_key) != CP_OK) {
		CP_FUZZ_CHECK(err == CP_ERR_KEY && b.len == 0);
		return 0;
	}
	if (strncmp(p.supi, p.plmn, strlen(p.plmn)) != 0) {
		CP_FUZZ_CHECK(err == CP_ERR_SUPI_PLMN && b.len == 0);
		return 0;
	}
	CP_FUZZ_CHECK(err == CP_OK);
	/* Extensions are dropped, nothing else: never longer but for the
	 * signature made anew (DER: 70 to 72 bytes). */
	CP_FUZZ_CHECK(b.len <= size + CP_ECDSA_MAX);
	CP_FUZZ_CHECK(cp_profile_decode(b.data, b.len, &again) == CP_OK);
	memcpy(again.mac, p.mac, CP_MAC_LEN);
	memcpy(again.op_signature, p.op_signature, sizeof p.op_signature);
	again.op_signature_len = p.op_signature_len;
	CP_FUZZ_CHECK(memcmp(&p, &again, sizeof p) == 0);
	return 0;
}
