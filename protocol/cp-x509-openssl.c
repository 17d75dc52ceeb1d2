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

#define ANCHORS_MAX 16

/*
 * Each anchor is kept parsed, with its DER and its pin: a chain that
 * carries an anchor's very bytes (the operator root at its end) reuses
 * the parsed certificate, and the pin of an anchor is computed once.
 * Parsing a certificate is the dearest part of a chain check on OpenSSL
 * 3.0: its public key goes through a decoder context built per key.
 */
typedef struct {
	X509 *x;
	unsigned char *der;
	size_t der_len;
	uint8_t pin[CP_SHA256_LEN];
} Anchor;

struct CpAnchors {
	X509_STORE *store;
	size_t count;
	Anchor anchor[ANCHORS_MAX];
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

/* SHA-256 of a certificate's SubjectPublicKeyInfo, the uncompressed
 * form for P-256 (cp_pubkey_spki). */
static bool
spki_pin(X509 *x, uint8_t pin[CP_SHA256_LEN])
{
	size_t len = 0;
	uint8_t *spki = cp_pubkey_spki(X509_get0_pubkey(x), &len);

	if (!spki)
		return false;
	cp_sha256(spki, len, pin);
	free(spki);
	return true;
}

static void
anchor_keep(Anchor *an, X509 *x)
{
	int n = i2d_X509(x, &an->der);

	if (n <= 0 || !spki_pin(x, an->pin) || !X509_up_ref(x)) {
		OPENSSL_free(an->der);
		an->der = NULL;
		return;
	}
	an->der_len = (size_t)n;
	an->x = x;
}

CpError
cp_anchors_from_pem(const char *pem, size_t len, CpAnchors **out)
{
	STACK_OF(X509) *certs;
	CpAnchors *a;
	CpError err = CP_ERR_KEY;

	if (!out)
		return CP_ERR_ARGUMENT;
	*out = NULL;
	certs = pem_certificates(pem, len);
	if (!certs)
		return CP_ERR_KEY;
	a = calloc(1, sizeof *a);
	if (!a || !(a->store = X509_STORE_new())) {
		err = CP_ERR_CRYPTO;
		goto out;
	}
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		/* An anchor is a CA: an end-entity certificate here is a mistake
		 * (the SM's own certificate given as the root). */
		if (X509_check_ca(x) == 0 || X509_STORE_add_cert(a->store, x) != 1)
			goto out;
		/* Kept parsed only to save work: an anchor that cannot be is
		 * still in the store, and its pin computed when reached. */
		if (a->count < ANCHORS_MAX)
			anchor_keep(&a->anchor[a->count], x);
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

void
cp_anchors_free(CpAnchors *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->count && i < ANCHORS_MAX; i++) {
		X509_free(a->anchor[i].x);
		OPENSSL_free(a->anchor[i].der);
	}
	X509_STORE_free(a->store);
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

/* The length of the DER SEQUENCE at p (header included), 0 if p does not
 * start with one that fits in len. */
static size_t
der_sequence_len(const uint8_t *p, size_t len)
{
	size_t n, hdr;

	if (len < 2 || p[0] != 0x30)
		return 0;
	if (p[1] < 0x80) {
		hdr = 2;
		n = p[1];
	} else if (p[1] == 0x81 && len >= 3) {
		hdr = 3;
		n = p[2];
	} else if (p[1] == 0x82 && len >= 4) {
		hdr = 4;
		n = (size_t)p[2] << 8 | p[3];
	} else {
		return 0;
	}
	return n <= len - hdr ? hdr + n : 0;
}

/* The anchor whose DER is exactly the certificate at p, if any. */
static X509 *
anchor_same(const CpAnchors *anchors, const uint8_t *p, size_t len)
{
	size_t n = der_sequence_len(p, len);

	for (size_t i = 0; n && anchors && i < anchors->count && i < ANCHORS_MAX; i++)
		if (anchors->anchor[i].x && anchors->anchor[i].der_len == n &&
		    memcmp(anchors->anchor[i].der, p, n) == 0)
			return anchors->anchor[i].x;
	return NULL;
}

/* Split concatenated DER: each certificate must end exactly where the next
 * begins, the last exactly at the end. A certificate byte for byte equal
 * to an anchor is that anchor's parsed certificate. */
static STACK_OF(X509) *
der_certificates(const CpAnchors *anchors, const uint8_t *chain, size_t len)
{
	const unsigned char *p = chain, *end = chain + len;
	STACK_OF(X509) *certs = sk_X509_new_null();

	if (!certs)
		return NULL;
	while (p < end) {
		X509 *x = anchor_same(anchors, p, (size_t)(end - p));

		if (sk_X509_num(certs) == CP_CHAIN_CERTS_MAX)
			goto fail;
		if (x && X509_up_ref(x))
			p += der_sequence_len(p, (size_t)(end - p));
		else
			x = d2i_X509(NULL, &p, end - p);
		if (!x)
			goto fail;
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			goto fail;
		}
	}
	if (sk_X509_num(certs) == 0)
		goto fail;
	return certs;
fail:
	sk_X509_pop_free(certs, X509_free);
	return NULL;
}

static bool
self_signed(X509 *x)
{
	EVP_PKEY *key = X509_get0_pubkey(x);

	return key && X509_check_issued(x, x) == X509_V_OK && X509_verify(x, key) == 1;
}

static bool
signing_certificate_ok(X509 *leaf)
{
	EVP_PKEY *key = X509_get0_pubkey(leaf);

	if (!key || !cp_pkey_is_p256(key))
		return false;
	/* An end entity: a CA certificate does not sign profiles. */
	if (X509_check_ca(leaf) != 0)
		return false;
	if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
		return false;
	return true;
}

/* The signing certificate's O, else its CN, as printable ASCII. */
static void
operator_name(X509 *leaf, char *out, size_t size)
{
	const X509_NAME *subject = X509_get_subject_name(leaf);
	static const int nids[] = { NID_organizationName, NID_commonName };

	out[0] = '\0';
	for (size_t i = 0; i < sizeof nids / sizeof nids[0]; i++) {
		int at = X509_NAME_get_index_by_NID(subject, nids[i], -1);
		const ASN1_STRING *s;
		unsigned char *utf8 = NULL;
		int n;

		if (at < 0)
			continue;
		s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
		n = ASN1_STRING_to_UTF8(&utf8, s);
		if (n > 0 && (size_t)n < size && cp_is_printable_ascii(utf8, (size_t)n)) {
			memcpy(out, utf8, (size_t)n);
			out[n] = '\0';
		}
		OPENSSL_free(utf8);
		if (out[0])
			return;
	}
}

/* The pin of the root a path ended in: an anchor's is kept. */
static bool
root_pin(const CpAnchors *anchors, X509 *root, uint8_t pin[CP_SHA256_LEN])
{
	for (size_t i = 0; anchors && i < anchors->count && i < ANCHORS_MAX; i++)
		if (anchors->anchor[i].x && X509_cmp(anchors->anchor[i].x, root) == 0) {
			memcpy(pin, anchors->anchor[i].pin, CP_SHA256_LEN);
			return true;
		}
	return spki_pin(root, pin);
}

CpError
cp_operator_chain_verify(const CpAnchors *anchors, const uint8_t *pin,
		const uint8_t *chain, size_t len,
		EVP_PKEY **signer, CpOperatorId *id)
{
	STACK_OF(X509) *certs = NULL, *verified;
	X509_STORE *tofu = NULL, *store;
	X509_STORE_CTX *ctx = NULL;
	X509 *leaf, *root;
	CpError err = CP_ERR_OPERATOR;

	if (!chain || !signer || !id)
		return CP_ERR_ARGUMENT;
	*signer = NULL;
	if (len == 0 || len > CP_CHAIN_MAX)
		return CP_ERR_OPERATOR;
	certs = der_certificates(anchors, chain, len);
	if (!certs)
		goto out;
	leaf = sk_X509_value(certs, 0);
	if (!signing_certificate_ok(leaf))
		goto out;

	if (cp_anchors_count(anchors) > 0) {
		store = anchors->store;
	} else {
		/* Trust on first use: the chain brings its own root. */
		X509 *last = sk_X509_value(certs, sk_X509_num(certs) - 1);

		if (sk_X509_num(certs) < 2 || !self_signed(last))
			goto out;
		tofu = X509_STORE_new();
		if (!tofu || X509_STORE_add_cert(tofu, last) != 1)
			goto out;
		store = tofu;
	}
	ctx = X509_STORE_CTX_new();
	if (!ctx || X509_STORE_CTX_init(ctx, store, leaf, certs) != 1)
		goto out;
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_X509_STRICT);
	X509_STORE_CTX_set_depth(ctx, CP_CHAIN_CERTS_MAX);
	if (X509_verify_cert(ctx) != 1)
		goto out;
	verified = X509_STORE_CTX_get0_chain(ctx);
	root = sk_X509_value(verified, sk_X509_num(verified) - 1);
	if (!root_pin(anchors, root, id->root))
		goto out;
	if (pin && CRYPTO_memcmp(pin, id->root, CP_SHA256_LEN) != 0)
		goto out;
	operator_name(leaf, id->name, sizeof id->name);
	*signer = X509_get_pubkey(leaf);
	err = *signer ? CP_OK : CP_ERR_CRYPTO;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(tofu);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return err;
}

/*
 * The last chain and key found to match, per thread: a signer (the SM)
 * encodes every profile with one chain and one key, and parsing the
 * chain again for each (OpenSSL 3 looks up a decoder for each key it
 * parses) cost more than the profile's signature. What is kept is a
 * public copy of the key (the private one stays its owner's, to free
 * with its secure memory), compared by value.
 */
static __thread EVP_PKEY *signer_public;
static __thread uint8_t signer_chain_hash[CP_SHA256_LEN];

static void
remember_signer(EVP_PKEY *key, const uint8_t hash[CP_SHA256_LEN])
{
	size_t len = 0;
	uint8_t *spki = cp_pubkey_spki(key, &len);
	EVP_PKEY *pub = spki ? cp_pubkey_from_spki(spki, len) : NULL;

	free(spki);
	if (!pub)
		return;
	EVP_PKEY_free(signer_public);
	signer_public = pub;
	memcpy(signer_chain_hash, hash, CP_SHA256_LEN);
}

CpError
cp_operator_chain_signer(const uint8_t *chain, size_t len, EVP_PKEY *key)
{
	STACK_OF(X509) *certs;
	uint8_t hash[CP_SHA256_LEN];
	CpError err = CP_ERR_KEY;

	if (!chain || !key)
		return CP_ERR_ARGUMENT;
	if (len == 0 || len > CP_CHAIN_MAX)
		return CP_ERR_KEY;
	cp_sha256(chain, len, hash);
	if (signer_public && CRYPTO_memcmp(hash, signer_chain_hash, sizeof(hash)) == 0 &&
	    EVP_PKEY_eq(signer_public, key) == 1)
		return CP_OK;
	certs = der_certificates(NULL, chain, len);
	if (certs && EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, 0)), key) == 1)
		err = CP_OK;
	sk_X509_pop_free(certs, X509_free);
	if (err == CP_OK)
		remember_signer(key, hash);
	ERR_clear_error();
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
