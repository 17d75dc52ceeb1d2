/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The OpenSSL 3 backend, through EVP: the installed library's, and
 * cellprovd's unless built with -Ddevice-crypto=mbedtls. Algorithms are fetched
 * once per process (an explicit fetch per call costs more than hashing a
 * short message), each kind when first used: a fetch fills OpenSSL's store
 * with every algorithm of its kind the provider has (the ciphers, some
 * 150 KiB of heap), which a daemon waiting for a profile need not hold.
 * A CpKey is an EVP_PKEY (cp-crypto-openssl.h).
 */
#include "cp-crypto-openssl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "cp-crypto-internal.h"
#include "cp-secret.h"

static CRYPTO_ONCE fetch_once = CRYPTO_ONCE_STATIC_INIT;
static CRYPTO_ONCE mac_once = CRYPTO_ONCE_STATIC_INIT;
static CRYPTO_ONCE aes_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *md_sha256;
static EVP_MAC *mac_hmac;
static EVP_MAC_CTX *hmac_sha256;     /* HMAC with SHA-256 set: each use copies it */
static EVP_CIPHER *cipher_ctr;
static EVP_CIPHER *cipher_ecb;
static EVP_KDF *kdf_x963;
static EC_GROUP *group_p256;
/* For decompressing a P-256 point: p, a, b, (p + 1) / 4, and p's
 * Montgomery context (which BN_mod_sqrt would build for every point). */
static BIGNUM *p256_p, *p256_a, *p256_b, *p256_sqrt_exp;
static BN_MONT_CTX *p256_mont;

static void
prepare_decompression(void)
{
	BN_CTX *bnctx = BN_CTX_new();

	p256_p = BN_new();
	p256_a = BN_new();
	p256_b = BN_new();
	p256_sqrt_exp = BN_new();
	p256_mont = BN_MONT_CTX_new();
	if (!bnctx || !p256_p || !p256_a || !p256_b || !p256_sqrt_exp || !p256_mont ||
	    EC_GROUP_get_curve(group_p256, p256_p, p256_a, p256_b, bnctx) != 1 ||
	    !BN_copy(p256_sqrt_exp, p256_p) || !BN_add_word(p256_sqrt_exp, 1) ||
	    !BN_rshift(p256_sqrt_exp, p256_sqrt_exp, 2) ||
	    !BN_MONT_CTX_set(p256_mont, p256_p, bnctx)) {
		BN_MONT_CTX_free(p256_mont);
		p256_mont = NULL;
	}
	BN_CTX_free(bnctx);
}

static void
fetch_digest(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	group_p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	if (group_p256)
		prepare_decompression();
}

static void
fetch_mac(void)
{
	mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac_hmac && (hmac_sha256 = EVP_MAC_CTX_new(mac_hmac))) {
		OSSL_PARAM params[2];

		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA2-256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (EVP_MAC_CTX_set_params(hmac_sha256, params) != 1) {
			EVP_MAC_CTX_free(hmac_sha256);
			hmac_sha256 = NULL;
		}
	}
	kdf_x963 = EVP_KDF_fetch(NULL, "X963KDF", NULL);
}

static void
fetch_aes(void)
{
	cipher_ctr = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
	cipher_ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
}

/* SHA-256 and the P-256 group */
static bool
fetched(void)
{
	return CRYPTO_THREAD_run_once(&fetch_once, fetch_digest) && md_sha256 && group_p256 && p256_mont;
}

/* HMAC (with SHA-256 set) and the X9.63 KDF */
static bool
fetched_mac(void)
{
	return CRYPTO_THREAD_run_once(&mac_once, fetch_mac) && mac_hmac && hmac_sha256 && kdf_x963;
}

/* AES-128, CTR and ECB */
static bool
fetched_aes(void)
{
	return CRYPTO_THREAD_run_once(&aes_once, fetch_aes) && cipher_ctr && cipher_ecb;
}

void
cp_sha256(const uint8_t *data, size_t len, uint8_t out[CP_SHA256_LEN])
{
	unsigned int n = 0;

	/* Only out of memory makes this fail; never return a plausible hash. */
	if (!fetched() || !EVP_Digest(data, len, out, &n, md_sha256, NULL) ||
	    n != CP_SHA256_LEN)
		memset(out, 0, CP_SHA256_LEN);
}

CpError
cp_hmac_sha256(const uint8_t *key, size_t key_len,
	       const uint8_t *data, size_t len,
	       uint8_t out[CP_HMAC_SHA256_LEN])
{
	static const uint8_t empty[1];
	EVP_MAC_CTX *ctx;
	size_t n = 0;
	CpError err = CP_ERR_CRYPTO;

	if ((!key && key_len) || (!data && len) || !out)
		return CP_ERR_ARGUMENT;
	if (!fetched_mac())
		return CP_ERR_CRYPTO;
	/* A copy of the prepared context: naming the digest at each init
	 * made HMAC fetch SHA-256 for every MAC. */
	ctx = EVP_MAC_CTX_dup(hmac_sha256);
	if (!ctx)
		return CP_ERR_CRYPTO;
	if (EVP_MAC_init(ctx, key_len ? key : empty, key_len, NULL) &&
	    EVP_MAC_update(ctx, len ? data : empty, len) &&
	    EVP_MAC_final(ctx, out, &n, CP_HMAC_SHA256_LEN) &&
	    n == CP_HMAC_SHA256_LEN)
		err = CP_OK;
	EVP_MAC_CTX_free(ctx);
	return err;
}

static CpError
aes_run(const EVP_CIPHER *cipher, const uint8_t key[16], const uint8_t *iv,
	const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	int n = 0, fin = 0;
	CpError err = CP_ERR_CRYPTO;

	if (len > INT_MAX)
		return CP_ERR_ARGUMENT;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return CP_ERR_CRYPTO;
	if (EVP_EncryptInit_ex2(ctx, cipher, key, iv, NULL) &&
	    EVP_CIPHER_CTX_set_padding(ctx, 0) &&
	    EVP_EncryptUpdate(ctx, out, &n, in, (int)len) &&
	    EVP_EncryptFinal_ex(ctx, out + n, &fin) &&
	    (size_t)(n + fin) == len)
		err = CP_OK;
	EVP_CIPHER_CTX_free(ctx);
	return err;
}

CpError
cp_aes128_ctr(const uint8_t key[16], const uint8_t icb[16],
	      const uint8_t *in, size_t len, uint8_t *out)
{
	if (!key || !icb || (len && (!in || !out)))
		return CP_ERR_ARGUMENT;
	if (!fetched_aes())
		return CP_ERR_CRYPTO;
	if (len == 0)
		return CP_OK;
	return aes_run(cipher_ctr, key, icb, in, len, out);
}

CpError
cp_aes128_ecb_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	if (!key || !in || !out)
		return CP_ERR_ARGUMENT;
	if (!fetched_aes())
		return CP_ERR_CRYPTO;
	return aes_run(cipher_ecb, key, NULL, in, 16, out);
}

struct CpAes128 {
	EVP_CIPHER_CTX *ctx;
};

CpAes128 *
cp_aes128_new(const uint8_t key[16])
{
	CpAes128 *aes;

	if (!key || !fetched_aes())
		return NULL;
	aes = calloc(1, sizeof *aes);
	if (!aes)
		return NULL;
	aes->ctx = EVP_CIPHER_CTX_new();
	if (!aes->ctx || !EVP_EncryptInit_ex2(aes->ctx, cipher_ecb, key, NULL, NULL) ||
	    !EVP_CIPHER_CTX_set_padding(aes->ctx, 0)) {
		cp_aes128_free(aes);
		return NULL;
	}
	return aes;
}

CpError
cp_aes128_block(CpAes128 *aes, const uint8_t in[16], uint8_t out[16])
{
	int n = 0;

	if (!aes || !in || !out)
		return CP_ERR_ARGUMENT;
	/* ECB without padding keeps no state between whole blocks. */
	if (!EVP_EncryptUpdate(aes->ctx, out, &n, in, 16) || n != 16)
		return CP_ERR_CRYPTO;
	return CP_OK;
}

void
cp_aes128_free(CpAes128 *aes)
{
	if (!aes)
		return;
	/* The provider's context free cleanses the key schedule. */
	EVP_CIPHER_CTX_free(aes->ctx);
	free(aes);
}

CpError
cp_x963_kdf_sha256(const uint8_t *z, size_t z_len,
		   const uint8_t *shared_info, size_t si_len,
		   uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[4], *p = params;
	EVP_KDF_CTX *ctx;
	CpError err;

	if (!z || !z_len || (!shared_info && si_len) || !out || !out_len)
		return CP_ERR_ARGUMENT;
	if (!fetched_mac())
		return CP_ERR_CRYPTO;
	ctx = EVP_KDF_CTX_new(kdf_x963);
	if (!ctx)
		return CP_ERR_CRYPTO;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA2-256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, z_len);
	if (si_len)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
							 (void *)shared_info, si_len);
	*p = OSSL_PARAM_construct_end();
	err = EVP_KDF_derive(ctx, out, out_len, params) > 0 ? CP_OK : CP_ERR_CRYPTO;
	EVP_KDF_CTX_free(ctx);
	return err;
}

CpError
cp_random(uint8_t *out, size_t len)
{
	if (!out && len)
		return CP_ERR_ARGUMENT;
	if (len == 0)
		return CP_OK;
	if (len > INT_MAX)
		return CP_ERR_ARGUMENT;
	return RAND_bytes(out, (int)len) == 1 ? CP_OK : CP_ERR_CRYPTO;
}

/* ---- P-256 ---- */

bool
cp_pkey_is_p256(EVP_PKEY *key)
{
	char name[32];
	size_t n = 0;

	if (!key || !EVP_PKEY_is_a(key, "EC"))
		return false;
	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
					    name, sizeof name, &n))
		return false;
	return strcmp(name, SN_X9_62_prime256v1) == 0 || strcmp(name, "P-256") == 0;
}

bool
cp_pkey_is_x25519(EVP_PKEY *key)
{
	return key && EVP_PKEY_is_a(key, "X25519");
}

bool
cp_pkey_has_private(EVP_PKEY *key)
{
	BIGNUM *bn = NULL;
	uint8_t raw[32];
	size_t n = sizeof raw;
	bool ok;

	if (cp_pkey_is_x25519(key)) {
		ok = EVP_PKEY_get_raw_private_key(key, raw, &n) == 1;
		OPENSSL_cleanse(raw, sizeof raw);
		return ok;
	}
	if (!cp_pkey_is_p256(key))
		return false;
	ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
	BN_clear_free(bn);
	return ok;
}

EVP_PKEY *
cp_p256_generate(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* Build an EVP_PKEY from an uncompressed public point and maybe a scalar. */
static EVP_PKEY *
p256_from_parts(const uint8_t pub[65], const BIGNUM *priv)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     SN_X9_62_prime256v1, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65) ||
	    (priv && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0)
		goto out;
	if (EVP_PKEY_fromdata(ctx, &key, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
			      params) <= 0)
		key = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	/*
	 * The scalar is a secure BIGNUM, so the builder put its copy in the
	 * secure block, which OSSL_PARAM_free cleanses.
	 */
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return key;
}

EVP_PKEY *
cp_p256_from_private(const uint8_t priv[32])
{
	BN_CTX *bnctx = NULL;
	BIGNUM *d = NULL;
	EC_POINT *q = NULL;
	EVP_PKEY *key = NULL;
	uint8_t pub[65];

	if (!priv || !fetched())
		return NULL;
	bnctx = BN_CTX_new();
	d = BN_secure_new();
	if (!bnctx || !d || !BN_bin2bn(priv, 32, d))
		goto out;
	/* 0 < d < n, or it is no private key. */
	if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(group_p256)) >= 0)
		goto out;
	q = EC_POINT_new(group_p256);
	if (!q || !EC_POINT_mul(group_p256, q, d, NULL, NULL, bnctx) ||
	    EC_POINT_point2oct(group_p256, q, POINT_CONVERSION_UNCOMPRESSED,
			       pub, sizeof pub, bnctx) != sizeof pub)
		goto out;
	key = p256_from_parts(pub, d);
out:
	EC_POINT_free(q);
	BN_clear_free(d);
	BN_CTX_free(bnctx);
	return key;
}

/*
 * A public key with P-256's parameters, copied into every new public key:
 * building the group from its name for each key costs more than
 * decompressing the point.
 */
static CRYPTO_ONCE template_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_PKEY *p256_template;

static void
make_template(void)
{
	static const uint8_t g[65] = {
		0x04,
		0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
		0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
		0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
		0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
	};

	p256_template = p256_from_parts(g, NULL);
}

static bool
p256_encoding_ok(const uint8_t *pub, size_t len)
{
	return pub && ((len == 33 && (pub[0] == 0x02 || pub[0] == 0x03)) ||
		       (len == 65 && pub[0] == 0x04));
}

/* On the curve and not the point at infinity (EVP's "quick" check). */
static bool
point_valid(EVP_PKEY *key)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	bool ok = ctx && EVP_PKEY_public_check_quick(ctx) == 1;

	EVP_PKEY_CTX_free(ctx);
	return ok;
}

EVP_PKEY *
cp_p256_from_public(const uint8_t *pub, size_t len)
{
	EVP_PKEY *key;

	if (!p256_encoding_ok(pub, len))
		return NULL;
	if (!CRYPTO_THREAD_run_once(&template_once, make_template) || !p256_template)
		return NULL;
	key = EVP_PKEY_new();
	/*
	 * Decoding refuses an x with no point and an (x, y) off the curve;
	 * the explicit check after it does not depend on that. A point off
	 * the curve is the invalid-curve attack on the device key.
	 */
	if (!key || EVP_PKEY_copy_parameters(key, p256_template) != 1 ||
	    EVP_PKEY_set1_encoded_public_key(key, pub, len) != 1 ||
	    !point_valid(key) ||
	    /* Decoding a compressed point made that the key's output form;
	     * certificates and SPKIs use the uncompressed one. */
	    EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
					   "uncompressed") != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	ERR_clear_error();
	return key;
}

CpKey *
cp_p256_from_point(const uint8_t point[65])
{
	EVP_PKEY *key;

	if (!CRYPTO_THREAD_run_once(&template_once, make_template) || !p256_template)
		return NULL;
	key = EVP_PKEY_new();
	/* OpenSSL decodes the uncompressed form through
	 * EC_POINT_set_affine_coordinates: it refuses coordinates not below p
	 * and a point off the curve. */
	if (!key || EVP_PKEY_copy_parameters(key, p256_template) != 1 ||
	    EVP_PKEY_set1_encoded_public_key(key, point, 65) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	ERR_clear_error();
	return key;
}

CpError
cp_p256_public_compressed(EVP_PKEY *key, uint8_t out[33])
{
	uint8_t pub[65];
	size_t n = 0;

	if (!out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key))
		return CP_ERR_KEY;
	if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY,
					     pub, sizeof pub, &n))
		return CP_ERR_KEY;
	if (n == 33 && (pub[0] == 0x02 || pub[0] == 0x03)) {
		memcpy(out, pub, 33);
		return CP_OK;
	}
	if (n != 65 || pub[0] != 0x04)
		return CP_ERR_KEY;
	out[0] = 0x02 | (pub[64] & 1);
	memcpy(out + 1, pub + 1, 32);
	return CP_OK;
}

CpError
cp_p256_private_bytes(EVP_PKEY *key, uint8_t out[32])
{
	BIGNUM *d = NULL;
	CpError err = CP_ERR_KEY;

	if (!out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key))
		return CP_ERR_KEY;
	if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1 &&
	    BN_bn2binpad(d, out, 32) == 32)
		err = CP_OK;
	BN_clear_free(d);
	return err;
}

/* ---- X25519 ---- */

EVP_PKEY *
cp_x25519_generate(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
}

EVP_PKEY *
cp_x25519_from_private(const uint8_t priv[32])
{
	if (!priv)
		return NULL;
	return EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, priv, 32);
}

EVP_PKEY *
cp_x25519_from_public(const uint8_t pub[32])
{
	if (!pub)
		return NULL;
	return EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, pub, 32);
}

CpError
cp_x25519_public(EVP_PKEY *key, uint8_t out[32])
{
	size_t n = 32;

	if (!out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_x25519(key))
		return CP_ERR_KEY;
	if (EVP_PKEY_get_raw_public_key(key, out, &n) != 1 || n != 32)
		return CP_ERR_KEY;
	return CP_OK;
}

/* ---- ECDH, ECDSA ---- */

/*
 * A compressed point (SEC 1 2.3.4) into q. p = 3 (mod 4), so a square root
 * of rhs = x^3 + ax + b is rhs^((p + 1) / 4), computed with p's Montgomery
 * context made once; if rhs has none, that is no root and
 * EC_POINT_set_affine_coordinates, which checks that (x, y) is on the
 * curve, refuses the point. x must be below p, and y = 0 has no odd root.
 */
static bool
p256_decompress(EC_POINT *q, const uint8_t pub[33], BN_CTX *bnctx)
{
	BIGNUM *x, *y, *rhs;
	bool ok = false;

	BN_CTX_start(bnctx);
	x = BN_CTX_get(bnctx);
	y = BN_CTX_get(bnctx);
	rhs = BN_CTX_get(bnctx);
	if (!rhs || !BN_bin2bn(pub + 1, 32, x) || BN_ucmp(x, p256_p) >= 0)
		goto out;
	if (!BN_mod_sqr(rhs, x, p256_p, bnctx) ||
	    !BN_mod_add_quick(rhs, rhs, p256_a, p256_p) ||
	    !BN_mod_mul(rhs, rhs, x, p256_p, bnctx) ||
	    !BN_mod_add_quick(rhs, rhs, p256_b, p256_p) ||
	    !BN_mod_exp_mont(y, rhs, p256_sqrt_exp, p256_p, bnctx, p256_mont))
		goto out;
	if (BN_is_odd(y) != (pub[0] & 1)) {
		if (BN_is_zero(y) || !BN_usub(y, p256_p, y))
			goto out;
	}
	ok = EC_POINT_set_affine_coordinates(group_p256, q, x, y, bnctx) == 1;
out:
	BN_CTX_end(bnctx);
	return ok;
}

/*
 * The device's side of ECIES: the ephemeral point goes straight from its
 * encoding to an EC_POINT of the one P-256 group, with no key object, no
 * parameter copy and one point check, and is multiplied by the device's
 * scalar the way OpenSSL's ECDH does (ecdh_simple_compute_key: the
 * group's constant-time multiplication, then the affine x).
 */
CpError
cp_p256_ecdh_encoded(EVP_PKEY *priv, const uint8_t *pub, size_t len, uint8_t out[32])
{
	BN_CTX *bnctx = NULL;
	BIGNUM *d = NULL, *x;
	EC_POINT *q = NULL, *r = NULL;
	CpError err = CP_ERR_CRYPTO;

	if (!priv || !out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(priv))
		return CP_ERR_KEY;
	if (!p256_encoding_ok(pub, len))
		return CP_ERR_POINT;
	if (!fetched())
		return CP_ERR_CRYPTO;
	bnctx = BN_CTX_secure_new();
	d = BN_secure_new();
	q = EC_POINT_new(group_p256);
	r = EC_POINT_new(group_p256);
	if (!bnctx || !d || !q || !r)
		goto out;
	if (EVP_PKEY_get_bn_param(priv, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1) {
		err = CP_ERR_KEY;
		goto out;
	}
	/*
	 * Decoding is the point check: a compressed x with no square root
	 * fails, and EC_POINT_set_affine_coordinates, which both forms end
	 * in, refuses a point off the curve (the invalid-curve attack on the
	 * device key). P-256 has cofactor 1, so on the curve and not infinity
	 * is the whole check; the encodings above cannot name infinity.
	 */
	if ((len == 33 ? !p256_decompress(q, pub, bnctx) :
			 EC_POINT_oct2point(group_p256, q, pub, len, bnctx) != 1) ||
	    EC_POINT_is_at_infinity(group_p256, q)) {
		err = CP_ERR_POINT;
		goto out;
	}
	BN_CTX_start(bnctx);
	x = BN_CTX_get(bnctx);
	if (x && EC_POINT_mul(group_p256, r, NULL, q, d, bnctx) == 1 &&
	    !EC_POINT_is_at_infinity(group_p256, r) &&
	    EC_POINT_get_affine_coordinates(group_p256, r, x, NULL, bnctx) == 1 &&
	    BN_bn2binpad(x, out, 32) == 32)
		err = CP_OK;
	BN_CTX_end(bnctx);
out:
	EC_POINT_clear_free(r);
	EC_POINT_free(q);
	BN_clear_free(d);
	BN_CTX_free(bnctx);
	ERR_clear_error();
	return err;
}

CpError
cp_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t out[32])
{
	EVP_PKEY_CTX *ctx;
	uint8_t z[32];
	size_t n = sizeof z;
	CpError err = CP_ERR_CRYPTO;

	if (!priv || !peer || !out)
		return CP_ERR_ARGUMENT;
	if (!((cp_pkey_is_p256(priv) && cp_pkey_is_p256(peer)) ||
	      (cp_pkey_is_x25519(priv) && cp_pkey_is_x25519(peer))))
		return CP_ERR_KEY;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	if (!ctx)
		return CP_ERR_CRYPTO;
	if (EVP_PKEY_derive_init(ctx) <= 0)
		goto out;
	/*
	 * P-256 has cofactor 1: a point on the curve other than infinity is
	 * in the prime-order group, so the quick check is the whole check
	 * and OpenSSL's full one (a second scalar multiplication) adds
	 * nothing. For X25519 a small-order peer makes the derive itself
	 * fail (all-zero secret). Both are a bad peer key.
	 */
	if (cp_pkey_is_p256(peer) && !point_valid(peer)) {
		err = CP_ERR_POINT;
		goto out;
	}
	if (EVP_PKEY_derive_set_peer_ex(ctx, peer, cp_pkey_is_x25519(peer)) <= 0 ||
	    EVP_PKEY_derive(ctx, z, &n) <= 0 || n != sizeof z) {
		err = CP_ERR_POINT;
		goto out;
	}
	memcpy(out, z, sizeof z);
	err = CP_OK;
out:
	OPENSSL_cleanse(z, sizeof z);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return err;
}

CpError
cp_ecdsa_sign(EVP_PKEY *key, const uint8_t *msg, size_t len,
	      uint8_t *sig, size_t *sig_len)
{
	EVP_MD_CTX *ctx;
	uint8_t buf[CP_ECDSA_MAX + 8];
	size_t n = sizeof buf;
	CpError err = CP_ERR_CRYPTO;

	if ((!msg && len) || !sig || !sig_len)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key) || !cp_pkey_has_private(key))
		return CP_ERR_KEY;
	if (!fetched())
		return CP_ERR_CRYPTO;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return CP_ERR_CRYPTO;
	if (EVP_DigestSignInit_ex(ctx, NULL, "SHA2-256", NULL, NULL, key, NULL) == 1 &&
	    EVP_DigestSign(ctx, buf, &n, msg ? msg : buf, len) == 1 &&
	    n <= CP_ECDSA_MAX) {
		memcpy(sig, buf, n);
		*sig_len = n;
		err = CP_OK;
	}
	EVP_MD_CTX_free(ctx);
	return err;
}

CpError
cp_ecdsa_verify(EVP_PKEY *key, const uint8_t *msg, size_t len,
		const uint8_t *sig, size_t sig_len)
{
	static const uint8_t empty[1];
	uint8_t digest[CP_SHA256_LEN];
	EVP_PKEY_CTX *ctx;
	CpError err = CP_ERR_CRYPTO;
	int r;

	if ((!msg && len) || (!sig && sig_len))
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key))
		return CP_ERR_KEY;
	if (sig_len == 0 || sig_len > CP_ECDSA_MAX)
		return CP_ERR_SIGNATURE;
	if (!fetched())
		return CP_ERR_CRYPTO;
	/* The message hashed with the digest fetched once, then ECDSA on the
	 * digest: what EVP_DigestVerify does, without fetching SHA-256 again
	 * for each call. */
	cp_sha256(msg ? msg : empty, len, digest);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (ctx && EVP_PKEY_verify_init(ctx) == 1) {
		r = EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest);
		/* 0 is a wrong signature, <0 one that does not even parse. */
		err = r == 1 ? CP_OK : CP_ERR_SIGNATURE;
	}
	EVP_PKEY_CTX_free(ctx);
	/* A failed parse leaves errors queued; they belong to nobody. */
	ERR_clear_error();
	return err;
}

/* ---- encodings ---- */

/* SubjectPublicKeyInfo header for id-ecPublicKey / prime256v1, BIT STRING of 66. */
static const uint8_t p256_spki_prefix[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};

/*
 * P-256: always the uncompressed point, whatever form the key was read
 * in, so that the DeviceID of a key does not depend on how it was loaded.
 */
static uint8_t *
p256_spki(EVP_PKEY *key, size_t *len)
{
	BIGNUM *x = NULL, *y = NULL;
	uint8_t *out = NULL;
	size_t n = sizeof p256_spki_prefix;

	if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
	    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
		goto out;
	out = malloc(n + 65);
	if (!out)
		goto out;
	memcpy(out, p256_spki_prefix, n);
	out[n] = 0x04;
	if (BN_bn2binpad(x, out + n + 1, 32) != 32 || BN_bn2binpad(y, out + n + 33, 32) != 32) {
		free(out);
		out = NULL;
		goto out;
	}
	*len = n + 65;
out:
	BN_free(x);
	BN_free(y);
	return out;
}

uint8_t *
cp_pubkey_spki(EVP_PKEY *key, size_t *len)
{
	unsigned char *der = NULL;
	uint8_t *out;
	int n;

	if (!key || !len)
		return NULL;
	if (cp_pkey_is_p256(key))
		return p256_spki(key, len);
	n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return NULL;
	/* The header promises free(); OpenSSL's allocator may differ. */
	out = malloc((size_t)n);
	if (out) {
		memcpy(out, der, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(der);
	return out;
}

/* The two SPKIs of the suites up to their key: P-256 with an
 * uncompressed point, X25519. DER has one encoding of each. */
static const uint8_t spki_p256_head[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
static const uint8_t spki_x25519_head[] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
};

EVP_PKEY *
cp_pubkey_from_spki(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *key;

	if (!der || !len || len > LONG_MAX)
		return NULL;
	/*
	 * The usual two straight from their bytes: d2i_PUBKEY looks its
	 * decoder up among every provider's on each call, most of the
	 * AUSF's CPU for a request. The point is checked the same way.
	 */
	if (len == sizeof(spki_p256_head) + 65 && memcmp(der, spki_p256_head, sizeof(spki_p256_head)) == 0 &&
	    der[sizeof(spki_p256_head)] == 0x04)
		return cp_p256_from_public(der + sizeof(spki_p256_head), 65);
	if (len == sizeof(spki_x25519_head) + 32 && memcmp(der, spki_x25519_head, sizeof(spki_x25519_head)) == 0)
		return cp_x25519_from_public(der + sizeof(spki_x25519_head));
	key = d2i_PUBKEY(NULL, &p, (long)len);
	if (key && (p != der + len || !(cp_pkey_is_p256(key) || cp_pkey_is_x25519(key)))) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	ERR_clear_error();
	return key;
}

/* Never prompt: the daemon has no terminal, and a tool must not hang. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* P-256 or X25519 key from PEM, private (PKCS#8) or public (SPKI). */
static EVP_PKEY *
pem_read(const char *pem, size_t len, bool private)
{
	EVP_PKEY *key;
	BIO *bio;

	if (!pem || !len || len > INT_MAX)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return NULL;
	key = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
		      : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (key && !(cp_pkey_is_p256(key) || cp_pkey_is_x25519(key))) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	ERR_clear_error();
	return key;
}

/* What a memory BIO holds, as a malloc'd string (the header promises free()). */
static char *
bio_strdup(BIO *bio)
{
	BUF_MEM *mem = NULL;
	char *out = NULL;

	if (BIO_get_mem_ptr(bio, &mem) == 1 && mem) {
		out = malloc(mem->length + 1);
		if (out) {
			memcpy(out, mem->data, mem->length);
			out[mem->length] = '\0';
		}
	}
	return out;
}

EVP_PKEY *
cp_pkey_from_pem(const char *pem, size_t len)
{
	return pem_read(pem, len, true);
}

char *
cp_pkey_to_pem(EVP_PKEY *key)
{
	char *out = NULL;
	BIO *bio;

	if (!cp_pkey_has_private(key))
		return NULL;
	/* A secure-memory BIO: its buffer is cleansed on free. */
	bio = BIO_new(BIO_s_secmem());
	if (!bio)
		return NULL;
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
		out = bio_strdup(bio);
	BIO_free(bio);
	return out;
}

char *
cp_pubkey_to_pem(EVP_PKEY *key)
{
	char *out = NULL;
	BIO *bio;

	if (!key)
		return NULL;
	bio = BIO_new(BIO_s_mem());
	if (!bio)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, key) == 1)
		out = bio_strdup(bio);
	BIO_free(bio);
	return out;
}

EVP_PKEY *
cp_pubkey_from_pem(const char *pem, size_t len)
{
	return pem_read(pem, len, false);
}

/* ---- keys, verifiers, the secure heap ---- */

void
cp_key_free(CpKey *key)
{
	/* OpenSSL keeps a P-256 scalar in secure memory and clears it. */
	EVP_PKEY_free(key);
}

/* A verifier is an EVP_PKEY_CTX with verify_init done; each use copies it. */
CpVerifier *
cp_verifier_new(CpKey *key)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);

	if (ctx && EVP_PKEY_verify_init(ctx) == 1)
		return (CpVerifier *)ctx;
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

void
cp_verifier_free(CpVerifier *v)
{
	EVP_PKEY_CTX_free((EVP_PKEY_CTX *)v);
}

bool
cp_verify_digest(CpVerifier *prepared, CpKey *key, const uint8_t digest[CP_SHA256_LEN],
		 const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *ctx;
	bool ok;

	ctx = prepared ? EVP_PKEY_CTX_dup((EVP_PKEY_CTX *)prepared)
		       : (EVP_PKEY_CTX *)cp_verifier_new(key);
	/* OpenSSL refuses a signature whose DER does not re-encode to itself. */
	ok = ctx && EVP_PKEY_verify(ctx, sig, sig_len, digest, CP_SHA256_LEN) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/*
 * OPENSSL_secure_zalloc falls back to the ordinary heap when the program
 * has not called CRYPTO_secure_malloc_init(), and
 * OPENSSL_secure_clear_free tells the two apart, so one pair serves both.
 */
void *
cp_secure_zalloc(size_t n)
{
	return OPENSSL_secure_zalloc(n);
}

void
cp_secure_free(void *p, size_t n)
{
	OPENSSL_secure_clear_free(p, n);
}

static CpSecureHeap secure_heap = CP_SECURE_HEAP_NONE;

CpSecureHeap
cp_crypto_init(size_t secure_heap_size)
{
	/* No error strings: some 55 KiB of heap that nothing prints. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
	if (!secure_heap_size || CRYPTO_secure_malloc_initialized())
		return secure_heap;
	switch (CRYPTO_secure_malloc_init(secure_heap_size, 32)) {
	case 1:
		secure_heap = CP_SECURE_HEAP_LOCKED;
		break;
	case 2:
		secure_heap = CP_SECURE_HEAP_NOT_LOCKED;
		break;
	default:
		secure_heap = CP_SECURE_HEAP_NONE;
		break;
	}
	return secure_heap;
}

size_t
cp_crypto_cleanup(void)
{
	/* OpenSSL's own cleanup frees its DRBGs, then the secure heap, which
	 * it releases only when empty. */
	OPENSSL_cleanup();
	return CRYPTO_secure_malloc_initialized() ? CRYPTO_secure_used() : 0;
}

const char *
cp_crypto_backend(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
