/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * X.509 for the operator's signing chain, on OpenSSL 3. Kept apart from
 * cp-crypto-openssl.c (the primitives) because only the operator's
 * signature needs certificates.
 */
#include "cp-crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cp-tlv.h"
#include "cp-x509-der.h"

/*
 * The anchors are parsed by OpenSSL once, when loaded, and then read
 * again by the chain's own reader (cp-x509-der.c), which path validation
 * runs on; each keeps its DER, its key and its pin. An anchor outside the
 * certificate profile (docs/protocol.md 4.5) is counted but can end no
 * path: usable counts those that can, the first in the arrays.
 */
struct CpAnchors {
	size_t count, usable;
	CpCertAnchor *anchor;
	uint8_t **der;
	uint8_t (*pin)[CP_SHA256_LEN];
};

/* Every PEM block of a buffer, each required to be a certificate. */
static STACK_OF(X509) *
pem_certificates(const char *pem, size_t len)
{
	STACK_OF(X509) *certs;
	BIO *bio;

	if (!pem || !len || len > INT_MAX)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	certs = sk_X509_new_null();
	if (!bio || !certs)
		goto fail;
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		const unsigned char *p;
		long n;
		X509 *x;

		if (PEM_read_bio(bio, &name, &header, &data, &n) != 1)
			break;          /* end of input (or garbage: no block at all) */
		p = data;
		x = strcmp(name, PEM_STRING_X509) == 0 ? d2i_X509(NULL, &p, n) : NULL;
		if (x && p != data + n) {
			X509_free(x);
			x = NULL;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (!x || !sk_X509_push(certs, x)) {
			X509_free(x);
			goto fail;
		}
	}
	BIO_free(bio);
	ERR_clear_error();
	if (sk_X509_num(certs) == 0) {
		sk_X509_free(certs);
		return NULL;
	}
	return certs;
fail:
	BIO_free(bio);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return NULL;
}

/* An anchor as the chain's reader sees it, kept if it is in the profile. */
static bool
anchor_keep(CpAnchors *a, X509 *x)
{
	size_t i = a->usable;
	CpCertAnchor *an = &a->anchor[i];
	uint8_t *der = NULL;
	int n = i2d_X509(x, &der);

	if (n <= 0)
		return false;
	a->der[i] = malloc((size_t)n);
	if (a->der[i])
		memcpy(a->der[i], der, (size_t)n);
	OPENSSL_free(der);
	if (!a->der[i])
		return false;
	if (cp_cert_parse(a->der[i], (size_t)n, NULL, &an->cert) != CP_CERT_OK ||
	    !(an->key = cp_cert_key(&an->cert)) || !(an->verify = cp_cert_verifier(an->key))) {
		EVP_PKEY_free(an->key);
		an->key = NULL;
		free(a->der[i]);
		a->der[i] = NULL;
		return true;
	}
	cp_sha256(an->cert.spki.p, an->cert.spki.len, a->pin[i]);
	a->usable++;
	return true;
}

CpError
cp_anchors_from_pem(const char *pem, size_t len, CpAnchors **out)
{
	STACK_OF(X509) *certs;
	CpAnchors *a;
	CpError err = CP_ERR_KEY;
	size_t n;

	if (!out)
		return CP_ERR_ARGUMENT;
	*out = NULL;
	certs = pem_certificates(pem, len);
	if (!certs)
		return CP_ERR_KEY;
	n = (size_t)sk_X509_num(certs);
	a = calloc(1, sizeof *a);
	if (!a || !(a->anchor = calloc(n, sizeof *a->anchor)) ||
	    !(a->der = calloc(n, sizeof *a->der)) || !(a->pin = calloc(n, sizeof *a->pin))) {
		err = CP_ERR_CRYPTO;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		X509 *x = sk_X509_value(certs, (int)i);

		/* An anchor is a CA: an end-entity certificate here is a mistake
		 * (the SM's own certificate given as the root). */
		if (X509_check_ca(x) == 0)
			goto out;
		if (!anchor_keep(a, x)) {
			err = CP_ERR_CRYPTO;
			goto out;
		}
		a->count++;
	}
	*out = a;
	a = NULL;
	err = CP_OK;
out:
	cp_anchors_free(a);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
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
		EVP_PKEY_CTX_free(a->anchor[i].verify);
		EVP_PKEY_free(a->anchor[i].key);
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
	STACK_OF(X509) *certs;
	CpError err = CP_OK;
	size_t total = 0;

	if (!out || !out_len)
		return CP_ERR_ARGUMENT;
	certs = pem_certificates(pem, len);
	if (!certs)
		return CP_ERR_KEY;
	if (sk_X509_num(certs) > CP_CHAIN_CERTS_MAX)
		err = CP_ERR_KEY;
	for (int i = 0; !err && i < sk_X509_num(certs); i++) {
		int n = i2d_X509(sk_X509_value(certs, i), NULL);
		unsigned char *p = out + total;

		if (n <= 0)
			err = CP_ERR_CRYPTO;
		else if ((size_t)n > CP_CHAIN_MAX - total)
			err = CP_ERR_LENGTH;
		else if (i2d_X509(sk_X509_value(certs, i), &p) != n)
			err = CP_ERR_CRYPTO;
		else
			total += (size_t)n;
	}
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	if (err)
		return err;
	*out_len = total;
	return CP_OK;
}

CpError
cp_operator_chain_verify(const CpAnchors *anchors, const uint8_t *pin,
		const uint8_t *chain, size_t len,
		EVP_PKEY **signer, CpOperatorId *id)
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
	if (pin && CRYPTO_memcmp(pin, id->root, CP_SHA256_LEN) != 0)
		goto fail;
	cp_cert_operator_name(&certs[0], id->name, sizeof id->name);
	EVP_PKEY_free(tofu.key);
	/* A point off the curve is refused here, as a chain that fails. */
	*signer = cp_cert_key(&certs[0]);
	return *signer ? CP_OK : CP_ERR_OPERATOR;
fail:
	EVP_PKEY_free(tofu.key);
	return CP_ERR_OPERATOR;
}

/* The chain's signing certificate carries the uncompressed point, so its
 * SubjectPublicKeyInfo is byte for byte cp_pubkey_spki's of the same key. */
CpError
cp_operator_chain_signer(const uint8_t *chain, size_t len, EVP_PKEY *key)
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

static bool
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

CpError
cp_cert_make(EVP_PKEY *subject_key, const char *org, const char *cn, bool ca,
	     EVP_PKEY *issuer_key, const uint8_t *issuer_der, size_t issuer_len,
	     uint64_t serial, int64_t not_before, int days,
	     uint8_t *out, size_t *out_len)
{
	const unsigned char *p = issuer_der;
	X509 *x = NULL, *issuer = NULL;
	X509_NAME *name;
	unsigned char *q = out;
	CpError err = CP_ERR_CRYPTO;
	int n;

	if (!subject_key || !org || !cn || !issuer_key || !out || !out_len || days <= 0 ||
	    (issuer_der && !issuer_len))
		return CP_ERR_ARGUMENT;
	if (issuer_der && (!(issuer = d2i_X509(NULL, &p, (long)issuer_len)) ||
			   p != issuer_der + issuer_len)) {
		err = CP_ERR_KEY;
		goto out;
	}
	x = X509_new();
	if (!x || X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){ (time_t)not_before }) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, &(time_t){ (time_t)not_before }) ||
	    X509_set_pubkey(x, subject_key) != 1)
		goto out;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1)
		goto out;
	if (!add_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
	    !add_ext(x, issuer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
	    !add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, issuer, NID_authority_key_identifier, "keyid:always"))
		goto out;
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		goto out;
	n = i2d_X509(x, NULL);
	if (n <= 0 || n > CP_CHAIN_MAX) {
		err = n <= 0 ? CP_ERR_CRYPTO : CP_ERR_LENGTH;
		goto out;
	}
	if (i2d_X509(x, &q) != n)
		goto out;
	*out_len = (size_t)n;
	err = CP_OK;
out:
	X509_free(x);
	X509_free(issuer);
	ERR_clear_error();
	return err;
}

char *
cp_cert_to_pem(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	BUF_MEM *mem = NULL;
	char *out = NULL;
	X509 *x;
	BIO *bio;

	if (!der || !len || len > INT_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	bio = BIO_new(BIO_s_mem());
	if (x && bio && p == der + len && PEM_write_bio_X509(bio, x) == 1 &&
	    BIO_get_mem_ptr(bio, &mem) == 1 && mem && (out = malloc(mem->length + 1))) {
		memcpy(out, mem->data, mem->length);
		out[mem->length] = '\0';
	}
	BIO_free(bio);
	X509_free(x);
	ERR_clear_error();
	return out;
}
