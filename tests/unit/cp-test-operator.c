/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-test-operator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
cp_test_operator_make(CpTestOperator *op, const char *org)
{
	uint8_t sm[CP_CHAIN_MAX];
	uint8_t *spki;
	size_t sm_len = 0, spki_len = 0;

	memset(op, 0, sizeof *op);
	op->root_key = cp_p256_generate();
	op->sm_key = cp_p256_generate();
	if (!op->root_key || !op->sm_key ||
	    cp_cert_make(op->root_key, org, "operator root", true, op->root_key, NULL, 0,
			 1, 1700000000, 3650, op->root, &op->root_len) ||
	    cp_cert_make(op->sm_key, org, "subscription manager", false, op->root_key,
			 op->root, op->root_len, 2, 1700000000, 365, sm, &sm_len) ||
	    sm_len + op->root_len > sizeof op->chain)
		goto fail;
	memcpy(op->chain, sm, sm_len);
	memcpy(op->chain + sm_len, op->root, op->root_len);
	op->chain_len = sm_len + op->root_len;
	op->root_pem = cp_cert_to_pem(op->root, op->root_len);
	if (!op->root_pem || cp_anchors_from_pem(op->root_pem, strlen(op->root_pem), &op->anchors))
		goto fail;
	spki = cp_pubkey_spki(op->root_key, &spki_len);
	if (!spki)
		goto fail;
	cp_sha256(spki, spki_len, op->pin);
	free(spki);
	return true;
fail:
	fprintf(stderr, "cannot make the test operator %s\n", org);
	cp_test_operator_clear(op);
	return false;
}

void
cp_test_operator_clear(CpTestOperator *op)
{
	cp_key_free(op->root_key);
	cp_key_free(op->sm_key);
	free(op->root_pem);
	cp_anchors_free(op->anchors);
	memset(op, 0, sizeof *op);
}
