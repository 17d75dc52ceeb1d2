/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp_operator_chain_verify(): op_chain bytes against the fixture's operator root,
 * and with no anchor (trust on first use). Whatever the input, a success
 * gives a P-256 signing key and the root the fixture trusts (with an
 * anchor), and a failure gives nothing.
 */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-fuzz-fixture.h"
#include "cp-crypto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CpFuzzFixture *f = cp_fuzz_fixture();
	CpOperatorId id, first;
	EVP_PKEY *signer = (EVP_PKEY *)1;
	CpError err;

	err = cp_operator_chain_verify(f->anchors, NULL, data, size, &signer, &first);
	if (err == CP_OK) {
		CP_FUZZ_CHECK(signer && cp_pkey_is_p256(signer));
		EVP_PKEY_free(signer);
		/* the same root again, when pinned */
		err = cp_operator_chain_verify(f->anchors, first.root, data, size, &signer, &id);
		CP_FUZZ_CHECK(err == CP_OK && memcmp(id.root, first.root, sizeof id.root) == 0);
		EVP_PKEY_free(signer);
	} else {
		CP_FUZZ_CHECK(signer == NULL);
		CP_FUZZ_CHECK(err == CP_ERR_OPERATOR || err == CP_ERR_CRYPTO);
	}
	signer = (EVP_PKEY *)1;
	err = cp_operator_chain_verify(NULL, NULL, data, size, &signer, &id);
	CP_FUZZ_CHECK(err == CP_OK ? signer != NULL : signer == NULL);
	EVP_PKEY_free(err == CP_OK ? signer : NULL);
	return 0;
}
