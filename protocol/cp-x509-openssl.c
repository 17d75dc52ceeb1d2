/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * X.509 on OpenSSL 3: PEM certificates split and told CA or not (for
 * cp-x509.c), and certificates made for tools and tests. Kept apart from
 * cp-crypto-openssl.c (the primitives) because only the operator's
 * signature needs certificates.
 */
#include "cp-crypto-openssl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cp-crypto-internal.h"

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

CpError
cp_pem_certificates(const char *pem, size_t len, CpPemCert **out, size_t *n_out)
{
	STACK_OF(X509) *certs;
	CpPemCert *c;
	size_t n;
	CpError err = CP_OK;

	*out = NULL;
	*n_out = 0;
	certs = pem_certificates(pem, len);
	if (!certs)
		return CP_ERR_KEY;
	n = (size_t)sk_X509_num(certs);
	c = calloc(n, sizeof *c);
	for (size_t i = 0; c && !err && i < n; i++) {
		X509 *x = sk_X509_value(certs, (int)i);
		unsigned char *der = NULL;
		int len_der = i2d_X509(x, &der);

		if (len_der <= 0 || !(c[i].der = malloc((size_t)len_der)))
			err = CP_ERR_CRYPTO;
		else {
			memcpy(c[i].der, der, (size_t)len_der);
			c[i].len = (size_t)len_der;
			c[i].ca = X509_check_ca(x) != 0;
		}
		OPENSSL_free(der);
	}
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	if (!c)
		return CP_ERR_CRYPTO;
	if (err) {
		cp_pem_certificates_free(c, n);
		return err;
	}
	*out = c;
	*n_out = n;
	return CP_OK;
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
cp_cert_make(CpKey *subject_key, const char *org, const char *cn, bool ca,
	     CpKey *issuer_key, const uint8_t *issuer_der, size_t issuer_len,
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
