/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp_operator_chain_verify(): op_chain bytes against the fixture's operator root,
 * and with no anchor (trust on first use). Whatever the input, a success
 * gives a P-256 signing key and the root the fixture trusts (with an
 * anchor), and a failure gives nothing.
 *
 * Underneath, the chain's own DER reader (protocol/cp-x509-der.c): what it
 * reads lies inside the input, the certificates it splits are contiguous
 * and each reads alone the same, a chain the library accepts is one the
 * reader reads, and the signer's key is the first certificate's.
 */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-fuzz-fixture.h"
#include "cp-crypto.h"
#include "cp-x509-der.h"

static bool
inside(CpDer v, const uint8_t *data, size_t size)
{
	return v.p >= data && v.len <= size && (size_t)(v.p - data) <= size - v.len;
}

static void
check_reader(const uint8_t *data, size_t size, bool *read, CpCert *first)
{
	CpCert certs[CP_CHAIN_CERTS_MAX], alone;
	size_t n = 0, at = 0;
	char name[CP_OPERATOR_NAME_MAX + 1];

	*read = cp_cert_chain_parse(data, size, certs, &n) == CP_CERT_OK;
	if (!*read)
		return;
	CP_FUZZ_CHECK(n >= 1 && n <= CP_CHAIN_CERTS_MAX);
	for (size_t i = 0; i < n; i++) {
		const CpCert *c = &certs[i];

		CP_FUZZ_CHECK(c->der.p == data + at);
		at += c->der.len;
		CP_FUZZ_CHECK(inside(c->tbs, data, size) && inside(c->sig, data, size) &&
			      inside(c->issuer, data, size) && inside(c->subject, data, size) &&
			      inside(c->spki, data, size));
		CP_FUZZ_CHECK(c->spki.len == 91 && c->point == c->spki.p + 26 && c->point[0] == 0x04);
		CP_FUZZ_CHECK(!c->ca || (c->has_ku && (c->ku & CP_KU_KEY_CERT_SIGN) && c->skid.len));
		CP_FUZZ_CHECK(c->ca || (c->path_len < 0 && !(c->ku & CP_KU_KEY_CERT_SIGN)));
		CP_FUZZ_CHECK(cp_cert_parse(c->der.p, c->der.len, NULL, &alone) == CP_CERT_OK);
		CP_FUZZ_CHECK(alone.tbs.p == c->tbs.p && alone.tbs.len == c->tbs.len);
		cp_cert_operator_name(c, name, sizeof name);
		CP_FUZZ_CHECK(strlen(name) < sizeof name);
	}
	CP_FUZZ_CHECK(at == size);
	*first = certs[0];
}

static void
check_signer(CpKey *signer, bool read, const CpCert *first)
{
	size_t len = 0;
	uint8_t *spki = cp_pubkey_spki(signer, &len);

	CP_FUZZ_CHECK(read);
	CP_FUZZ_CHECK(spki && len == first->spki.len && memcmp(spki, first->spki.p, len) == 0);
	free(spki);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CpFuzzFixture *f = cp_fuzz_fixture();
	CpOperatorId id, first;
	CpKey *signer = (CpKey *)1;
	CpCert leaf;
	bool read;
	CpError err;

	check_reader(data, size, &read, &leaf);
	err = cp_operator_chain_verify(f->anchors, NULL, data, size, &signer, &first);
	if (err == CP_OK) {
		CP_FUZZ_CHECK(signer && cp_pkey_is_p256(signer));
		check_signer(signer, read, &leaf);
		/* the signer's own chain, by the check the SM makes */
		CP_FUZZ_CHECK(cp_operator_chain_signer(data, size, signer) == CP_OK);
		cp_key_free(signer);
		/* the same root again, when pinned */
		err = cp_operator_chain_verify(f->anchors, first.root, data, size, &signer, &id);
		CP_FUZZ_CHECK(err == CP_OK && memcmp(id.root, first.root, sizeof id.root) == 0);
		cp_key_free(signer);
	} else {
		CP_FUZZ_CHECK(signer == NULL);
		CP_FUZZ_CHECK(err == CP_ERR_OPERATOR || err == CP_ERR_CRYPTO);
	}
	signer = (CpKey *)1;
	err = cp_operator_chain_verify(NULL, NULL, data, size, &signer, &id);
	CP_FUZZ_CHECK(err == CP_OK ? signer != NULL : signer == NULL);
	if (err == CP_OK)
		check_signer(signer, read, &leaf);
	cp_key_free(err == CP_OK ? signer : NULL);
	return 0;
}
