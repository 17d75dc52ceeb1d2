/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The operator's signing chain: trust anchors and the chain's verification
 * (docs/protocol.md 4.5). Certificates are read by the library's own DER
 * reader (cp-x509-der.c); the backend (cp-x509-openssl.c or
 * cp-x509-mbedtls.c) only splits PEM and says which anchors are CAs, and
 * checks the signatures.
 */
#include "cp-crypto.h"

#include <stdlib.h>
#include <string.h>

#include "cp-crypto-internal.h"
#include "cp-secret.h"
#include "cp-x509-der.h"

/*
 * Each anchor keeps its DER, its key, a verifier and its pin. An anchor
 * outside the certificate profile is counted but can end no path: usable
 * counts those that can, the first in the arrays.
 */
struct CpAnchors {
	size_t count, usable;
	CpCertAnchor *anchor;
	uint8_t **der;
	uint8_t (*pin)[CP_SHA256_LEN];
};

void
cp_pem_certificates_free(CpPemCert *certs, size_t n)
{
	if (!certs)
		return;
	for (size_t i = 0; i < n; i++)
		free(certs[i].der);
	free(certs);
}

/* An anchor as the chain's reader sees it, kept if it is in the profile;
 * takes the DER. False only for want of memory. */
static bool
anchor_keep(CpAnchors *a, uint8_t *der, size_t len)
{
	size_t i = a->usable;
	CpCertAnchor *an = &a->anchor[i];

	if (cp_cert_parse(der, len, NULL, &an->cert) != CP_CERT_OK ||
	    !(an->key = cp_cert_key(&an->cert))) {
		free(der);
		return true;
	}
	if (!(an->verify = cp_verifier_new(an->key))) {
		cp_key_free(an->key);
		an->key = NULL;
		free(der);
		return false;
	}
	a->der[i] = der;
	cp_sha256(an->cert.spki.p, an->cert.spki.len, a->pin[i]);
	a->usable++;
	return true;
}

CpError
cp_anchors_from_pem(const char *pem, size_t len, CpAnchors **out)
{
	CpPemCert *certs = NULL;
	CpAnchors *a;
	CpError err;
	size_t n = 0;

	if (!out)
		return CP_ERR_ARGUMENT;
	*out = NULL;
	err = cp_pem_certificates(pem, len, &certs, &n);
	if (err)
		return err;
	err = CP_ERR_KEY;
	a = calloc(1, sizeof *a);
	if (!a || !(a->anchor = calloc(n, sizeof *a->anchor)) ||
	    !(a->der = calloc(n, sizeof *a->der)) || !(a->pin = calloc(n, sizeof *a->pin))) {
		err = CP_ERR_CRYPTO;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		/* An anchor is a CA: an end-entity certificate here is a mistake
		 * (the SM's own certificate given as the root). */
		if (!certs[i].ca)
			goto out;
		if (!anchor_keep(a, certs[i].der, certs[i].len)) {
			certs[i].der = NULL;
			err = CP_ERR_CRYPTO;
			goto out;
		}
		certs[i].der = NULL;
		a->count++;
	}
	*out = a;
	a = NULL;
	err = CP_OK;
out:
	cp_anchors_free(a);
	cp_pem_certificates_free(certs, n);
	return err;
}

size_t
cp_anchors_count(const CpAnchors *a)
{
	return a ? a->count : 0;
}

size_t
cp_anchors_usable(const CpAnchors *a)
{
	return a ? a->usable : 0;
}

void
cp_anchors_free(CpAnchors *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->usable; i++) {
		cp_verifier_free(a->anchor[i].verify);
		cp_key_free(a->anchor[i].key);
		free(a->der[i]);
	}
	free(a->anchor);
	free(a->der);
	free(a->pin);
	free(a);
}

CpError
cp_operator_chain_from_pem(const char *pem, size_t len, uint8_t *out, size_t *out_len)
{
	CpPemCert *certs = NULL;
	size_t n = 0, total = 0;
	CpError err;

	if (!out || !out_len)
		return CP_ERR_ARGUMENT;
	err = cp_pem_certificates(pem, len, &certs, &n);
	if (err)
		return err;
	if (n > CP_CHAIN_CERTS_MAX)
		err = CP_ERR_KEY;
	for (size_t i = 0; !err && i < n; i++) {
		if (certs[i].len > CP_CHAIN_MAX - total)
			err = CP_ERR_LENGTH;
		else {
			memcpy(out + total, certs[i].der, certs[i].len);
			total += certs[i].len;
		}
	}
	cp_pem_certificates_free(certs, n);
	if (err)
		return err;
	*out_len = total;
	return CP_OK;
}

CpError
cp_operator_chain_verify(const CpAnchors *anchors, const uint8_t *pin,
		const uint8_t *chain, size_t len,
		CpKey **signer, CpOperatorId *id)
{
	CpCert certs[CP_CHAIN_CERTS_MAX];
	CpCertAnchor tofu = { 0 };
	const CpCertAnchor *set = &tofu;
	size_t n = 0, n_set = 1, root = 0;

	if (!chain || !signer || !id)
		return CP_ERR_ARGUMENT;
	*signer = NULL;
	if (len == 0 || len > CP_CHAIN_MAX)
		return CP_ERR_OPERATOR;
	if (cp_cert_chain_parse(chain, len, certs, &n) != CP_CERT_OK)
		return CP_ERR_OPERATOR;
	if (cp_anchors_count(anchors) > 0) {
		set = anchors->anchor;
		n_set = anchors->usable;
	} else {
		/* Trust on first use: the chain brings its own root. */
		if (n < 2 || cp_cert_self_signed(&certs[n - 1], &tofu.key) != CP_CERT_OK)
			return CP_ERR_OPERATOR;
		tofu.cert = certs[n - 1];
	}
	/* No validity times: a device has no trusted clock (docs/crypto.md). */
	if (cp_cert_path_verify(certs, n, set, n_set, -1, &root) != CP_CERT_OK)
		goto fail;
	if (set == &tofu)
		cp_sha256(tofu.cert.spki.p, tofu.cert.spki.len, id->root);
	else
		memcpy(id->root, anchors->pin[root], CP_SHA256_LEN);
	if (pin && !cp_memeq_consttime(pin, id->root, CP_SHA256_LEN))
		goto fail;
	cp_cert_operator_name(&certs[0], id->name, sizeof id->name);
	cp_key_free(tofu.key);
	/* A point off the curve is refused here, as a chain that fails. */
	*signer = cp_cert_key(&certs[0]);
	return *signer ? CP_OK : CP_ERR_OPERATOR;
fail:
	cp_key_free(tofu.key);
	return CP_ERR_OPERATOR;
}

/* The chain's signing certificate carries the uncompressed point, so its
 * SubjectPublicKeyInfo is byte for byte cp_pubkey_spki's of the same key. */
CpError
cp_operator_chain_signer(const uint8_t *chain, size_t len, CpKey *key)
{
	CpCert certs[CP_CHAIN_CERTS_MAX];
	size_t n = 0, spki_len = 0;
	uint8_t *spki;
	CpError err = CP_ERR_KEY;

	if (!chain || !key)
		return CP_ERR_ARGUMENT;
	if (len == 0 || len > CP_CHAIN_MAX)
		return CP_ERR_KEY;
	if (cp_cert_chain_parse(chain, len, certs, &n) != CP_CERT_OK)
		return CP_ERR_KEY;
	spki = cp_pubkey_spki(key, &spki_len);
	if (spki && spki_len == certs[0].spki.len &&
	    memcmp(spki, certs[0].spki.p, spki_len) == 0)
		err = CP_OK;
	free(spki);
	return err;
}
