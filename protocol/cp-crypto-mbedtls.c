/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Mbed TLS 2.28 backend: the device's subset of cp-crypto.h, for a
 * cellprovd built with -Ddevice-crypto=mbedtls (docs/architecture.md,
 * "Two crypto backends"). It has no certificate or PEM writers: those
 * are the tools' and the network side's, on OpenSSL.
 *
 * Secrets: a private key's scalar lives in a CpSecret, from the locked
 * heap below; it becomes an mbedtls_mpi only for the one operation that
 * needs it, and Mbed TLS zeroes every mpi it frees. Randomness is the
 * kernel's (getrandom), with no DRBG state to keep.
 */
#include "cp-crypto.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mbedtls/aes.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "cp-crypto-internal.h"
#include "cp-secret.h"
#include "cp-x509-der.h"

#if MBEDTLS_VERSION_MAJOR != 2 || MBEDTLS_VERSION_MINOR < 28
#error "the Mbed TLS backend is written for Mbed TLS 2.28"
#endif

typedef enum { KEY_P256 = 1, KEY_X25519 } KeyType;

struct CpKey {
	KeyType type;
	mbedtls_ecp_point q;    /* P-256: the public point */
	uint8_t u[32];          /* X25519: the public u-coordinate (RFC 7748) */
	CpSecret *d;            /* the private scalar: P-256 big-endian, X25519 as RFC 7748 bytes */
};

/* ---- randomness ---- */

CpError
cp_random(uint8_t *out, size_t len)
{
	if (!out && len)
		return CP_ERR_ARGUMENT;
	while (len) {
		ssize_t n = getrandom(out, len > 256 ? 256 : len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return CP_ERR_CRYPTO;
		}
		out += n;
		len -= (size_t)n;
	}
	return CP_OK;
}

/* Mbed TLS's f_rng: scalar blinding, ECDSA nonces, key generation. */
static int
rng(void *ctx, unsigned char *out, size_t len)
{
	return cp_random(out, len) == CP_OK ? 0 : MBEDTLS_ERR_ECP_RANDOM_FAILED;
}

/* ---- hashes, MAC, AES, KDF ---- */

void
cp_sha256(const uint8_t *data, size_t len, uint8_t out[CP_SHA256_LEN])
{
	static const uint8_t empty[1];

	mbedtls_sha256_ret(data ? data : empty, len, out, 0);
}

CpError
cp_hmac_sha256(const uint8_t *key, size_t key_len,
	       const uint8_t *data, size_t len,
	       uint8_t out[CP_HMAC_SHA256_LEN])
{
	static const uint8_t empty[1];

	if ((!key && key_len) || (!data && len) || !out)
		return CP_ERR_ARGUMENT;
	return mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
			       key ? key : empty, key_len, data ? data : empty, len, out) == 0
	       ? CP_OK : CP_ERR_CRYPTO;
}

CpError
cp_aes128_ctr(const uint8_t key[16], const uint8_t icb[16],
	      const uint8_t *in, size_t len, uint8_t *out)
{
	mbedtls_aes_context aes;
	uint8_t counter[16], stream[16];
	size_t off = 0;
	int r;

	if (!key || !icb || (len && (!in || !out)))
		return CP_ERR_ARGUMENT;
	if (len == 0)
		return CP_OK;
	/* The whole block is the counter, incremented big-endian: as
	 * OpenSSL's CTR mode and TS 33.501 C.3.4 use it. */
	memcpy(counter, icb, 16);
	mbedtls_aes_init(&aes);
	r = mbedtls_aes_setkey_enc(&aes, key, 128);
	if (r == 0)
		r = mbedtls_aes_crypt_ctr(&aes, len, &off, counter, stream, in, out);
	mbedtls_aes_free(&aes);
	mbedtls_platform_zeroize(stream, sizeof stream);
	return r == 0 ? CP_OK : CP_ERR_CRYPTO;
}

struct CpAes128 {
	mbedtls_aes_context ctx;
};

CpAes128 *
cp_aes128_new(const uint8_t key[16])
{
	CpAes128 *aes;

	if (!key)
		return NULL;
	aes = cp_secure_zalloc(sizeof *aes);
	if (!aes)
		return NULL;
	mbedtls_aes_init(&aes->ctx);
	if (mbedtls_aes_setkey_enc(&aes->ctx, key, 128) != 0) {
		cp_aes128_free(aes);
		return NULL;
	}
	return aes;
}

CpError
cp_aes128_block(CpAes128 *aes, const uint8_t in[16], uint8_t out[16])
{
	if (!aes || !in || !out)
		return CP_ERR_ARGUMENT;
	return mbedtls_aes_crypt_ecb(&aes->ctx, MBEDTLS_AES_ENCRYPT, in, out) == 0
	       ? CP_OK : CP_ERR_CRYPTO;
}

void
cp_aes128_free(CpAes128 *aes)
{
	if (!aes)
		return;
	mbedtls_aes_free(&aes->ctx);        /* zeroes the key schedule */
	cp_secure_free(aes, sizeof *aes);
}

CpError
cp_aes128_ecb_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	CpAes128 *aes = cp_aes128_new(key);
	CpError err;

	if (!aes)
		return key ? CP_ERR_CRYPTO : CP_ERR_ARGUMENT;
	err = cp_aes128_block(aes, in, out);
	cp_aes128_free(aes);
	return err;
}

/* ANSI X9.63 (SEC 1 3.6.1): SHA-256(Z || counter || SharedInfo), the
 * 32-bit counter big-endian from 1. */
CpError
cp_x963_kdf_sha256(const uint8_t *z, size_t z_len,
		   const uint8_t *shared_info, size_t si_len,
		   uint8_t *out, size_t out_len)
{
	mbedtls_sha256_context sha;
	uint8_t block[CP_SHA256_LEN];
	uint32_t counter = 1;
	int r = 0;

	if (!z || !z_len || (!shared_info && si_len) || (!out && out_len))
		return CP_ERR_ARGUMENT;
	if (out_len == 0 || out_len > 255 * CP_SHA256_LEN)
		return CP_ERR_ARGUMENT;
	mbedtls_sha256_init(&sha);
	while (!r && out_len) {
		const uint8_t c[4] = { counter >> 24, counter >> 16, counter >> 8, counter };
		size_t n = out_len < CP_SHA256_LEN ? out_len : CP_SHA256_LEN;

		r = mbedtls_sha256_starts_ret(&sha, 0);
		r = r ? r : mbedtls_sha256_update_ret(&sha, z, z_len);
		r = r ? r : mbedtls_sha256_update_ret(&sha, c, sizeof c);
		if (si_len)
			r = r ? r : mbedtls_sha256_update_ret(&sha, shared_info, si_len);
		r = r ? r : mbedtls_sha256_finish_ret(&sha, block);
		if (!r) {
			memcpy(out, block, n);
			out += n;
			out_len -= n;
			counter++;
		}
	}
	mbedtls_sha256_free(&sha);
	mbedtls_platform_zeroize(block, sizeof block);
	return r ? CP_ERR_CRYPTO : CP_OK;
}

/* ---- the curves ---- */

/*
 * P-256 and Curve25519, loaded once. Loading points the group at Mbed
 * TLS's constant tables (P-256's comb table for G included), so sharing
 * it is read-only.
 */
static pthread_once_t groups_once = PTHREAD_ONCE_INIT;
static mbedtls_ecp_group p256, curve25519;
/* For decompressing a P-256 point: b and (p + 1) / 4 (p = 3 mod 4). */
static mbedtls_mpi p256_sqrt_exp;
static bool groups_ok;

static void
groups_load(void)
{
	mbedtls_ecp_group_init(&p256);
	mbedtls_ecp_group_init(&curve25519);
	mbedtls_mpi_init(&p256_sqrt_exp);
	groups_ok = mbedtls_ecp_group_load(&p256, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
		    mbedtls_ecp_group_load(&curve25519, MBEDTLS_ECP_DP_CURVE25519) == 0 &&
		    mbedtls_mpi_add_int(&p256_sqrt_exp, &p256.P, 1) == 0 &&
		    mbedtls_mpi_shift_r(&p256_sqrt_exp, 2) == 0;
}

static bool
groups(void)
{
	return pthread_once(&groups_once, groups_load) == 0 && groups_ok;
}

static CpKey *
key_new(KeyType type)
{
	CpKey *k = calloc(1, sizeof *k);

	if (!k)
		return NULL;
	k->type = type;
	mbedtls_ecp_point_init(&k->q);
	return k;
}

void
cp_key_free(CpKey *key)
{
	if (!key)
		return;
	mbedtls_ecp_point_free(&key->q);
	cp_secret_free(key->d);
	free(key);
}

bool
cp_pkey_is_p256(CpKey *key)
{
	return key && key->type == KEY_P256;
}

bool
cp_pkey_is_x25519(CpKey *key)
{
	return key && key->type == KEY_X25519;
}

bool
cp_pkey_has_private(CpKey *key)
{
	return key && key->d;
}

/* The scalar as an mpi, for one operation: the caller frees it, which
 * zeroes it. */
static int
scalar_load(const CpKey *key, mbedtls_mpi *d)
{
	if (key->type == KEY_P256)
		return mbedtls_mpi_read_binary(d, key->d->data, 32);
	else {
		/* RFC 7748 5: the bytes little-endian, clamped. */
		uint8_t k[32];
		int r;

		memcpy(k, key->d->data, 32);
		k[0] &= 248;
		k[31] &= 127;
		k[31] |= 64;
		r = mbedtls_mpi_read_binary_le(d, k, 32);
		mbedtls_platform_zeroize(k, sizeof k);
		return r;
	}
}

/* ---- P-256 ---- */

/* A key of the scalar d (32 bytes, big-endian), its point computed. */
static CpKey *
p256_from_scalar(const uint8_t priv[32])
{
	mbedtls_mpi d;
	CpKey *k;
	int r;

	if (!groups() || !(k = key_new(KEY_P256)))
		return NULL;
	k->d = cp_secret_new_from(priv, 32);
	mbedtls_mpi_init(&d);
	r = k->d ? scalar_load(k, &d) : -1;
	/* 1 <= d < n, then Q = dG. */
	r = r ? r : mbedtls_ecp_check_privkey(&p256, &d);
	r = r ? r : mbedtls_ecp_mul(&p256, &k->q, &d, &p256.G, rng, NULL);
	mbedtls_mpi_free(&d);
	if (r) {
		cp_key_free(k);
		return NULL;
	}
	return k;
}

CpKey *
cp_p256_generate(void)
{
	uint8_t priv[32];
	CpKey *k = NULL;

	/* A uniform scalar below n by rejection (FIPS 186-4 B.4.2): n is
	 * just under 2^256, so a second try is rare. */
	for (int i = 0; !k && i < 16; i++) {
		if (cp_random(priv, sizeof priv))
			break;
		k = p256_from_scalar(priv);
	}
	cp_cleanse(priv, sizeof priv);
	return k;
}

CpKey *
cp_p256_from_private(const uint8_t priv[32])
{
	return priv ? p256_from_scalar(priv) : NULL;
}

/* y from x for the point of given parity: y^2 = x^3 - 3x + b, y the
 * square root (x^3 - 3x + b)^((p + 1) / 4), checked. */
static int
p256_decompress(mbedtls_ecp_point *q, const uint8_t pub[33])
{
	mbedtls_mpi rhs, y2;
	int r;

	mbedtls_mpi_init(&rhs);
	mbedtls_mpi_init(&y2);
	r = mbedtls_mpi_read_binary(&q->X, pub + 1, 32);
	if (!r && mbedtls_mpi_cmp_mpi(&q->X, &p256.P) >= 0)
		r = MBEDTLS_ERR_ECP_INVALID_KEY;
	/* rhs = (x^2 - 3) x + b mod p */
	r = r ? r : mbedtls_mpi_mul_mpi(&rhs, &q->X, &q->X);
	r = r ? r : mbedtls_mpi_sub_int(&rhs, &rhs, 3);
	r = r ? r : mbedtls_mpi_mul_mpi(&rhs, &rhs, &q->X);
	r = r ? r : mbedtls_mpi_add_mpi(&rhs, &rhs, &p256.B);
	r = r ? r : mbedtls_mpi_mod_mpi(&rhs, &rhs, &p256.P);
	r = r ? r : mbedtls_mpi_exp_mod(&q->Y, &rhs, &p256_sqrt_exp, &p256.P, NULL);
	/* No square root: no point has this x. */
	r = r ? r : mbedtls_mpi_mul_mpi(&y2, &q->Y, &q->Y);
	r = r ? r : mbedtls_mpi_mod_mpi(&y2, &y2, &p256.P);
	if (!r && mbedtls_mpi_cmp_mpi(&y2, &rhs) != 0)
		r = MBEDTLS_ERR_ECP_INVALID_KEY;
	/* The other root where the parity differs (y = 0 has no other). */
	if (!r && (unsigned)mbedtls_mpi_get_bit(&q->Y, 0) != (pub[0] & 1u)) {
		if (mbedtls_mpi_cmp_int(&q->Y, 0) == 0)
			r = MBEDTLS_ERR_ECP_INVALID_KEY;
		else
			r = mbedtls_mpi_sub_mpi(&q->Y, &p256.P, &q->Y);
	}
	r = r ? r : mbedtls_mpi_lset(&q->Z, 1);
	mbedtls_mpi_free(&rhs);
	mbedtls_mpi_free(&y2);
	return r;
}

/* The point of a 33- or 65-byte encoding, checked to be on the curve. */
static int
p256_point_read(mbedtls_ecp_point *q, const uint8_t *pub, size_t len)
{
	int r;

	if (len == 33 && (pub[0] == 0x02 || pub[0] == 0x03))
		r = p256_decompress(q, pub);
	else if (len == 65 && pub[0] == 0x04)
		r = mbedtls_ecp_point_read_binary(&p256, q, pub, len);
	else
		return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
	/* Coordinates below p, on the curve, not the point at infinity: a
	 * point off the curve is the invalid-curve attack on the device key. */
	return r ? r : mbedtls_ecp_check_pubkey(&p256, q);
}

CpKey *
cp_p256_from_public(const uint8_t *pub, size_t len)
{
	CpKey *k;

	if (!pub || !groups() || !(k = key_new(KEY_P256)))
		return NULL;
	if (p256_point_read(&k->q, pub, len)) {
		cp_key_free(k);
		return NULL;
	}
	return k;
}

CpKey *
cp_p256_from_point(const uint8_t point[65])
{
	return cp_p256_from_public(point, 65);
}

CpError
cp_p256_public_compressed(CpKey *key, uint8_t out[33])
{
	size_t n = 0;

	if (!out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key))
		return CP_ERR_KEY;
	/* Mbed TLS 2.28 writes the compressed form itself. */
	return mbedtls_ecp_point_write_binary(&p256, &key->q, MBEDTLS_ECP_PF_COMPRESSED,
					      &n, out, 33) == 0 && n == 33 ? CP_OK : CP_ERR_CRYPTO;
}

static CpError
p256_uncompressed(const CpKey *key, uint8_t out[65])
{
	size_t n = 0;

	return mbedtls_ecp_point_write_binary(&p256, &key->q, MBEDTLS_ECP_PF_UNCOMPRESSED,
					      &n, out, 65) == 0 && n == 65 ? CP_OK : CP_ERR_CRYPTO;
}

CpError
cp_p256_private_bytes(CpKey *key, uint8_t out[32])
{
	if (!out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key) || !key->d)
		return CP_ERR_KEY;
	memcpy(out, key->d->data, 32);
	return CP_OK;
}

/* ---- X25519 ---- */

/* u = X25519(k, u_in) (RFC 7748 5): CP_ERR_POINT for a result of zero
 * (a peer point of small order), as OpenSSL refuses it. */
static CpError
x25519_mul(const CpKey *priv, const uint8_t u_in[32], uint8_t out[32])
{
	mbedtls_ecp_point p, r;
	mbedtls_mpi d;
	uint8_t zero[32] = { 0 };
	CpError err = CP_ERR_CRYPTO;
	int rc;

	mbedtls_ecp_point_init(&p);
	mbedtls_ecp_point_init(&r);
	mbedtls_mpi_init(&d);
	/* Reading masks the top bit of u (RFC 7748 5). */
	rc = mbedtls_ecp_point_read_binary(&curve25519, &p, u_in, 32);
	rc = rc ? rc : scalar_load(priv, &d);
	if (!rc) {
		rc = mbedtls_ecp_mul(&curve25519, &r, &d, &p, rng, NULL);
		if (rc == 0 && mbedtls_mpi_write_binary_le(&r.X, out, 32) == 0)
			err = cp_memeq_consttime(out, zero, 32) ? CP_ERR_POINT : CP_OK;
		else if (rc != MBEDTLS_ERR_MPI_ALLOC_FAILED && rc != MBEDTLS_ERR_ECP_ALLOC_FAILED)
			err = CP_ERR_POINT;     /* the point at infinity: small order */
	}
	mbedtls_mpi_free(&d);
	mbedtls_ecp_point_free(&p);
	mbedtls_ecp_point_free(&r);
	if (err)
		cp_cleanse(out, 32);
	return err;
}

CpKey *
cp_x25519_from_private(const uint8_t priv[32])
{
	static const uint8_t base[32] = { 9 };
	CpKey *k;

	if (!priv || !groups() || !(k = key_new(KEY_X25519)))
		return NULL;
	k->d = cp_secret_new_from(priv, 32);
	if (!k->d || x25519_mul(k, base, k->u) != CP_OK) {
		cp_key_free(k);
		return NULL;
	}
	return k;
}

CpKey *
cp_x25519_generate(void)
{
	uint8_t priv[32];
	CpKey *k = NULL;

	if (cp_random(priv, sizeof priv) == CP_OK)
		k = cp_x25519_from_private(priv);
	cp_cleanse(priv, sizeof priv);
	return k;
}

CpKey *
cp_x25519_from_public(const uint8_t pub[32])
{
	CpKey *k;

	if (!pub || !(k = key_new(KEY_X25519)))
		return NULL;
	memcpy(k->u, pub, 32);
	return k;
}

CpError
cp_x25519_public(CpKey *key, uint8_t out[32])
{
	if (!out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_x25519(key))
		return CP_ERR_KEY;
	memcpy(out, key->u, 32);
	return CP_OK;
}

/* ---- ECDH ---- */

/* The x coordinate of dQ: Mbed TLS checks the point and blinds the
 * scalar multiplication. */
static CpError
p256_ecdh(const CpKey *priv, const mbedtls_ecp_point *q, uint8_t out[32])
{
	mbedtls_mpi d, z;
	int r;

	mbedtls_mpi_init(&d);
	mbedtls_mpi_init(&z);
	r = scalar_load(priv, &d);
	r = r ? r : mbedtls_ecdh_compute_shared(&p256, &z, q, &d, rng, NULL);
	r = r ? r : mbedtls_mpi_write_binary(&z, out, 32);
	mbedtls_mpi_free(&d);
	mbedtls_mpi_free(&z);
	return r ? CP_ERR_CRYPTO : CP_OK;
}

CpError
cp_ecdh(CpKey *priv, CpKey *peer, uint8_t out[32])
{
	if (!priv || !peer || !out)
		return CP_ERR_ARGUMENT;
	if (!priv->d || priv->type != peer->type)
		return CP_ERR_KEY;
	if (priv->type == KEY_X25519)
		return x25519_mul(priv, peer->u, out);
	if (mbedtls_ecp_check_pubkey(&p256, &peer->q))
		return CP_ERR_POINT;
	return p256_ecdh(priv, &peer->q, out);
}

CpError
cp_p256_ecdh_encoded(CpKey *priv, const uint8_t *pub, size_t len, uint8_t out[32])
{
	mbedtls_ecp_point q;
	CpError err;

	if (!priv || !pub || !out)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(priv) || !priv->d)
		return CP_ERR_KEY;
	mbedtls_ecp_point_init(&q);
	err = p256_point_read(&q, pub, len) ? CP_ERR_POINT : p256_ecdh(priv, &q, out);
	mbedtls_ecp_point_free(&q);
	return err;
}

/* ---- ECDSA ---- */

/*
 * ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }, in DER and
 * nothing else: minimal lengths, minimal positive integers, no trailing
 * bytes. OpenSSL refuses any signature that does not re-encode to itself;
 * this is the same rule, read directly.
 */
static bool
der_integer(const uint8_t **p, const uint8_t *end, mbedtls_mpi *v)
{
	const uint8_t *q = *p;
	size_t len;

	if (end - q < 2 || q[0] != 0x02 || q[1] == 0 || q[1] > 33)
		return false;
	len = q[1];
	q += 2;
	if ((size_t)(end - q) < len)
		return false;
	if (q[0] & 0x80)
		return false;           /* negative */
	if (len > 1 && q[0] == 0 && !(q[1] & 0x80))
		return false;           /* not minimal */
	if (mbedtls_mpi_read_binary(v, q, len))
		return false;
	*p = q + len;
	return true;
}

static bool
der_signature(const uint8_t *sig, size_t len, mbedtls_mpi *r, mbedtls_mpi *s)
{
	const uint8_t *p = sig, *end = sig + len;

	/* At most 72 bytes: a one-byte length, which DER wants below 128. */
	if (len < 8 || len > CP_ECDSA_MAX || p[0] != 0x30 || p[1] != len - 2 || p[1] >= 0x80)
		return false;
	p += 2;
	return der_integer(&p, end, r) && der_integer(&p, end, s) && p == end;
}

static size_t
der_put_integer(uint8_t *out, const mbedtls_mpi *v)
{
	uint8_t b[33] = { 0 };
	size_t n = mbedtls_mpi_size(v), skip;

	/* Big-endian with a leading zero byte, then trimmed to the minimum. */
	mbedtls_mpi_write_binary(v, b + 1, 32);
	skip = 33 - n - 1;      /* keep one byte before the value... */
	if (!(b[skip + 1] & 0x80))
		skip++;         /* ...only when its top bit is set */
	out[0] = 0x02;
	out[1] = (uint8_t)(33 - skip);
	memcpy(out + 2, b + skip, 33 - skip);
	return 2 + 33 - skip;
}

CpError
cp_ecdsa_sign(CpKey *key, const uint8_t *msg, size_t len,
	      uint8_t *sig, size_t *sig_len)
{
	uint8_t digest[CP_SHA256_LEN], body[2 * 35];
	mbedtls_mpi d, r, s;
	size_t n;
	int rc;

	if ((!msg && len) || !sig || !sig_len)
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key) || !key->d)
		return CP_ERR_KEY;
	cp_sha256(msg, len, digest);
	mbedtls_mpi_init(&d);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	rc = scalar_load(key, &d);
	rc = rc ? rc : mbedtls_ecdsa_sign(&p256, &r, &s, &d, digest, sizeof digest, rng, NULL);
	if (!rc) {
		n = der_put_integer(body, &r);
		n += der_put_integer(body + n, &s);
		sig[0] = 0x30;
		sig[1] = (uint8_t)n;
		memcpy(sig + 2, body, n);
		*sig_len = n + 2;
	}
	mbedtls_mpi_free(&d);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return rc ? CP_ERR_CRYPTO : CP_OK;
}

static bool
verify_point(const mbedtls_ecp_point *q, const uint8_t digest[CP_SHA256_LEN],
	     const uint8_t *sig, size_t sig_len)
{
	mbedtls_mpi r, s;
	bool ok;

	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	/* mbedtls_ecdsa_verify refuses r or s outside [1, n - 1]. */
	ok = sig && der_signature(sig, sig_len, &r, &s) &&
	     mbedtls_ecdsa_verify(&p256, digest, CP_SHA256_LEN, q, &r, &s) == 0;
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return ok;
}

CpError
cp_ecdsa_verify(CpKey *key, const uint8_t *msg, size_t len,
		const uint8_t *sig, size_t sig_len)
{
	uint8_t digest[CP_SHA256_LEN];

	if ((!msg && len) || (!sig && sig_len))
		return CP_ERR_ARGUMENT;
	if (!cp_pkey_is_p256(key))
		return CP_ERR_KEY;
	if (sig_len == 0 || sig_len > CP_ECDSA_MAX)
		return CP_ERR_SIGNATURE;
	cp_sha256(msg, len, digest);
	return verify_point(&key->q, digest, sig, sig_len) ? CP_OK : CP_ERR_SIGNATURE;
}

/* A verifier is the key itself: Mbed TLS has nothing to prepare. */
CpVerifier *
cp_verifier_new(CpKey *key)
{
	return cp_pkey_is_p256(key) ? (CpVerifier *)key : NULL;
}

void
cp_verifier_free(CpVerifier *v)
{
}

bool
cp_verify_digest(CpVerifier *prepared, CpKey *key, const uint8_t digest[CP_SHA256_LEN],
		 const uint8_t *sig, size_t sig_len)
{
	CpKey *k = prepared ? (CpKey *)prepared : key;

	return cp_pkey_is_p256(k) && verify_point(&k->q, digest, sig, sig_len);
}

/* ---- encodings ---- */

/* The two SPKIs of the suites up to their key: P-256 with an
 * uncompressed point, X25519. DER has one encoding of each. */
static const uint8_t spki_p256_head[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
static const uint8_t spki_x25519_head[] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
};

uint8_t *
cp_pubkey_spki(CpKey *key, size_t *len)
{
	uint8_t *out;

	if (!key || !len)
		return NULL;
	if (key->type == KEY_P256) {
		out = malloc(sizeof spki_p256_head + 65);
		if (out && p256_uncompressed(key, out + sizeof spki_p256_head) != CP_OK) {
			free(out);
			return NULL;
		}
		if (out) {
			memcpy(out, spki_p256_head, sizeof spki_p256_head);
			*len = sizeof spki_p256_head + 65;
		}
		return out;
	}
	out = malloc(sizeof spki_x25519_head + 32);
	if (out) {
		memcpy(out, spki_x25519_head, sizeof spki_x25519_head);
		memcpy(out + sizeof spki_x25519_head, key->u, 32);
		*len = sizeof spki_x25519_head + 32;
	}
	return out;
}

CpKey *
cp_pubkey_from_spki(const uint8_t *der, size_t len)
{
	if (!der)
		return NULL;
	if (len == sizeof spki_p256_head + 65 && memcmp(der, spki_p256_head, sizeof spki_p256_head) == 0)
		return cp_p256_from_public(der + sizeof spki_p256_head, 65);
	if (len == sizeof spki_x25519_head + 32 && memcmp(der, spki_x25519_head, sizeof spki_x25519_head) == 0)
		return cp_x25519_from_public(der + sizeof spki_x25519_head);
	/* Other encodings of the same keys (a compressed point, explicit
	 * parameters) are the OpenSSL backend's: nothing a device reads. */
	return NULL;
}

/* The DER of the one PEM block of label in pem (whatever surrounds it),
 * into memory that is cleansed when freed. */
static CpError
pem_block(const char *pem, size_t len, const char *label, uint8_t **der, size_t *der_len)
{
	char begin[48], end[48];
	mbedtls_pem_context ctx;
	char *text;
	size_t used = 0;
	int r;

	if (pem && len && pem[len - 1] == '\0')
		len--;          /* a C string passed with its terminator */
	if (!pem || !len || memchr(pem, '\0', len))
		return CP_ERR_KEY;
	/* Mbed TLS reads a NUL-terminated string. */
	text = cp_secure_zalloc(len + 1);
	if (!text)
		return CP_ERR_CRYPTO;
	memcpy(text, pem, len);
	snprintf(begin, sizeof begin, "-----BEGIN %s-----", label);
	snprintf(end, sizeof end, "-----END %s-----", label);
	mbedtls_pem_init(&ctx);
	r = mbedtls_pem_read_buffer(&ctx, begin, end, (const unsigned char *)text, NULL, 0, &used);
	cp_secure_free(text, len + 1);
	if (r) {
		mbedtls_pem_free(&ctx);
		return r == MBEDTLS_ERR_PEM_ALLOC_FAILED ? CP_ERR_CRYPTO : CP_ERR_KEY;
	}
	*der = cp_secure_zalloc(ctx.buflen ? ctx.buflen : 1);
	if (*der) {
		memcpy(*der, ctx.buf, ctx.buflen);
		*der_len = ctx.buflen;
	}
	mbedtls_pem_free(&ctx);         /* zeroes its buffer */
	return *der ? CP_OK : CP_ERR_CRYPTO;
}

/* PKCS#8 of an X25519 key (RFC 8410 7), the one DER form with no
 * attributes and no public key: what OpenSSL writes. */
static const uint8_t pkcs8_x25519_head[] = {
	0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e,
	0x04, 0x22, 0x04, 0x20,
};

/* A P-256 key from DER PKCS#8 or SEC 1, through Mbed TLS's parser; the
 * point is computed from the scalar again, and must be the one the key
 * carries if it carries one. */
static CpKey *
p256_from_der(const uint8_t *der, size_t len)
{
	mbedtls_pk_context pk;
	uint8_t d[32];
	CpKey *k = NULL;

	mbedtls_pk_init(&pk);
	if (mbedtls_pk_parse_key(&pk, der, len, NULL, 0) == 0 &&
	    mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY &&
	    mbedtls_pk_ec(pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1 &&
	    mbedtls_mpi_write_binary(&mbedtls_pk_ec(pk)->d, d, sizeof d) == 0) {
		k = p256_from_scalar(d);
		if (k && mbedtls_ecp_point_cmp(&k->q, &mbedtls_pk_ec(pk)->Q) != 0) {
			cp_key_free(k);
			k = NULL;
		}
	}
	mbedtls_pk_free(&pk);           /* zeroes the scalar */
	cp_cleanse(d, sizeof d);
	return k;
}

CpKey *
cp_pkey_from_pem(const char *pem, size_t len)
{
	uint8_t *der = NULL;
	size_t n = 0;
	CpKey *k = NULL;

	/* PKCS#8 first, then SEC 1's "EC PRIVATE KEY"; an encrypted key
	 * ("ENCRYPTED PRIVATE KEY") matches neither and fails. */
	if (pem_block(pem, len, "PRIVATE KEY", &der, &n) == CP_OK) {
		if (n == sizeof pkcs8_x25519_head + 32 &&
		    memcmp(der, pkcs8_x25519_head, sizeof pkcs8_x25519_head) == 0)
			k = cp_x25519_from_private(der + sizeof pkcs8_x25519_head);
		else
			k = p256_from_der(der, n);
	} else if (pem_block(pem, len, "EC PRIVATE KEY", &der, &n) == CP_OK) {
		k = p256_from_der(der, n);
	}
	if (der)
		cp_secure_free(der, n ? n : 1);
	return k;
}

CpKey *
cp_pubkey_from_pem(const char *pem, size_t len)
{
	uint8_t *der = NULL;
	size_t n = 0;
	CpKey *k = NULL;

	if (pem_block(pem, len, "PUBLIC KEY", &der, &n) == CP_OK)
		k = cp_pubkey_from_spki(der, n);
	if (der)
		cp_secure_free(der, n ? n : 1);
	return k;
}

/* ---- certificates in PEM ---- */

static const char pem_begin[] = "-----BEGIN ";
static const char cert_begin[] = "-----BEGIN CERTIFICATE-----";
static const char cert_end[] = "-----END CERTIFICATE-----";

CpError
cp_pem_certificates(const char *pem, size_t len, CpPemCert **out, size_t *n_out)
{
	CpPemCert *certs = NULL;
	size_t n = 0, cap = 0;
	CpError err = CP_OK;
	char *text, *p;

	*out = NULL;
	*n_out = 0;
	if (pem && len && pem[len - 1] == '\0')
		len--;
	if (!pem || !len || memchr(pem, '\0', len))
		return CP_ERR_KEY;
	if (!(text = malloc(len + 1)))
		return CP_ERR_CRYPTO;
	memcpy(text, pem, len);
	text[len] = '\0';
	/* Each block, whatever lies between them, must be a certificate. */
	for (p = strstr(text, pem_begin); !err && p; p = strstr(p, pem_begin)) {
		mbedtls_pem_context ctx;
		size_t used = 0;
		bool ca;

		if (strncmp(p, cert_begin, sizeof cert_begin - 1) != 0) {
			err = CP_ERR_KEY;
			break;
		}
		mbedtls_pem_init(&ctx);
		if (mbedtls_pem_read_buffer(&ctx, cert_begin, cert_end, (const unsigned char *)p,
					    NULL, 0, &used) != 0 ||
		    cp_cert_outline(ctx.buf, ctx.buflen, &ca) != CP_CERT_OK) {
			err = CP_ERR_KEY;
		} else if (n == cap && !(certs = reallocarray(certs, cap = cap ? 2 * cap : 4, sizeof *certs))) {
			err = CP_ERR_CRYPTO;
		} else if (!(certs[n].der = malloc(ctx.buflen))) {
			err = CP_ERR_CRYPTO;
		} else {
			memcpy(certs[n].der, ctx.buf, ctx.buflen);
			certs[n].len = ctx.buflen;
			certs[n].ca = ca;
			n++;
		}
		mbedtls_pem_free(&ctx);
		p += used ? used : 1;
	}
	free(text);
	if (!err && n == 0)
		err = CP_ERR_KEY;
	if (err) {
		cp_pem_certificates_free(certs, n);
		return err;
	}
	*out = certs;
	*n_out = n;
	return CP_OK;
}

/* ---- the secure heap ---- */

/*
 * One mapping, locked in memory and left out of core dumps, between two
 * inaccessible guard pages; 32-byte blocks with a bitmap of those in use.
 * Secrets are few and small (keys of 16 to 32 bytes, a device key's PEM
 * while it is read), so first fit is enough.
 */
#define SH_BLOCK 32

static struct {
	uint8_t *base;
	size_t size, blocks, used;
	uint64_t *map;
	void *mapping;
	size_t mapping_len;
	CpSecureHeap state;     /* what making it gave, for later calls */
	pthread_mutex_t lock;
} sh = { .state = CP_SECURE_HEAP_NONE, .lock = PTHREAD_MUTEX_INITIALIZER };

static bool
sh_bit(size_t i)
{
	return sh.map[i / 64] >> (i % 64) & 1;
}

static void
sh_set(size_t first, size_t n, bool on)
{
	for (size_t i = first; i < first + n; i++) {
		if (on)
			sh.map[i / 64] |= (uint64_t)1 << (i % 64);
		else
			sh.map[i / 64] &= ~((uint64_t)1 << (i % 64));
	}
}

static bool
sh_owns(const void *p)
{
	return sh.base && (const uint8_t *)p >= sh.base && (const uint8_t *)p < sh.base + sh.size;
}

void *
cp_secure_zalloc(size_t n)
{
	size_t want, run = 0;
	void *p = NULL;

	if (!sh.base)
		return calloc(1, n ? n : 1);
	want = (n + SH_BLOCK - 1) / SH_BLOCK;
	if (!want)
		want = 1;
	pthread_mutex_lock(&sh.lock);
	for (size_t i = 0; i < sh.blocks; i++) {
		run = sh_bit(i) ? 0 : run + 1;
		if (run == want) {
			size_t first = i + 1 - want;

			sh_set(first, want, true);
			sh.used += want * SH_BLOCK;
			p = sh.base + first * SH_BLOCK;
			break;
		}
	}
	pthread_mutex_unlock(&sh.lock);
	/* The heap is full: NULL, as OpenSSL's secure heap answers, rather
	 * than a secret on the ordinary heap. The blocks are zero. */
	return p;
}

void
cp_secure_free(void *p, size_t n)
{
	size_t blocks;

	if (!p)
		return;
	cp_cleanse(p, n);
	if (!sh_owns(p)) {
		free(p);
		return;
	}
	blocks = (n + SH_BLOCK - 1) / SH_BLOCK;
	if (!blocks)
		blocks = 1;
	/* The whole blocks zero again, for the next zalloc. */
	cp_cleanse(p, blocks * SH_BLOCK);
	pthread_mutex_lock(&sh.lock);
	sh_set((size_t)((uint8_t *)p - sh.base) / SH_BLOCK, blocks, false);
	sh.used -= blocks * SH_BLOCK;
	pthread_mutex_unlock(&sh.lock);
}

/* Locked as its pages are first touched (MLOCK_ONFAULT, Linux 4.4): the
 * heap then costs only what is used, as OpenSSL's does. Through the
 * system call, which the sanitizers' mlock does not pretend to make. */
static bool
lock(void *p, size_t len)
{
#ifdef SYS_mlock2
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1         /* <linux/mman.h>; not in every libc's */
#endif
	if (syscall(SYS_mlock2, p, len, MLOCK_ONFAULT) == 0)
		return true;
	if (errno != ENOSYS && errno != EINVAL)
		return false;
#endif
	return syscall(SYS_mlock, p, len) == 0;
}

CpSecureHeap
cp_crypto_init(size_t secure_heap_size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), size, map_words;
	uint8_t *m;
	bool locked;

	if (!secure_heap_size || sh.base)
		return sh.state;
	size = (secure_heap_size + page - 1) / page * page;
	map_words = (size / SH_BLOCK + 63) / 64;
	m = mmap(NULL, size + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return CP_SECURE_HEAP_NONE;
	sh.map = calloc(map_words, sizeof *sh.map);
	if (!sh.map || mprotect(m, page, PROT_NONE) || mprotect(m + page + size, page, PROT_NONE)) {
		free(sh.map);
		sh.map = NULL;
		munmap(m, size + 2 * page);
		return CP_SECURE_HEAP_NONE;
	}
	locked = lock(m + page, size);
	madvise(m + page, size, MADV_DONTDUMP);
	sh.mapping = m;
	sh.mapping_len = size + 2 * page;
	sh.base = m + page;
	sh.size = size;
	sh.blocks = size / SH_BLOCK;
	sh.state = locked ? CP_SECURE_HEAP_LOCKED : CP_SECURE_HEAP_NOT_LOCKED;
	return sh.state;
}

size_t
cp_crypto_cleanup(void)
{
	size_t left = sh.used;

	/* Released only when empty, as OpenSSL does: a leak stays visible. */
	if (sh.base && !left) {
		munmap(sh.mapping, sh.mapping_len);
		free(sh.map);
		sh.base = NULL;
		sh.map = NULL;
		sh.state = CP_SECURE_HEAP_NONE;
	}
	return left;
}

const char *
cp_crypto_backend(void)
{
	return "Mbed TLS " MBEDTLS_VERSION_STRING;
}
