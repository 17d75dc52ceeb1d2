/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The crypto backend against published vectors (FIPS 180-2, RFC 4231,
 * FIPS 197, SP 800-38A), and its key handling against OpenSSL's own
 * encoders and independent computations. Built once on the OpenSSL
 * library and, when cellprovd's is on Mbed TLS, once on that
 * (CP_TEST_DEVICE_CRYPTO), OpenSSL then only the reference.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/buffer.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#ifndef CP_TEST_DEVICE_CRYPTO
#include "cp-crypto-openssl.h"
#endif
#include "cp-crypto.h"
#include "cp-secret.h"
#include "cp-test.h"

/* The P-256 base point, uncompressed. */
static const char p256_g[] =
	"046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
	"4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

/* A P-256 key's uncompressed point, from its SubjectPublicKeyInfo. */
static bool
point65(CpKey *key, uint8_t out[65])
{
	size_t len = 0;
	uint8_t *spki = cp_pubkey_spki(key, &len);
	bool ok = spki && len == 91;

	if (ok)
		memcpy(out, spki + 26, 65);
	free(spki);
	return ok;
}

/* The SPKI as OpenSSL reads and writes it again: the same bytes. */
static bool
spki_canonical(const uint8_t *spki, size_t len)
{
	const unsigned char *p = spki;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
	unsigned char *der = NULL;
	int n = k ? i2d_PUBKEY(k, &der) : -1;
	bool ok = n == (int)len && p == spki + len && memcmp(der, spki, len) == 0;

	OPENSSL_free(der);
	EVP_PKEY_free(k);
	return ok;
}

/* A private key OpenSSL made, as PEM of the given writer. */
static char *
reference_pem(EVP_PKEY *k, bool sec1)
{
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *m = NULL;
	char *out = NULL;
	int ok = sec1 ? PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL)
		      : PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);

	if (ok && BIO_get_mem_ptr(bio, &m) == 1)
		out = strndup(m->data, m->length);
	BIO_free(bio);
	return out;
}

/* Keys OpenSSL wrote (PKCS#8 and SEC 1 for P-256, PKCS#8 for X25519) read
 * back by the library: the same public key as OpenSSL's encoder says. */
static void
test_reference_pem(void)
{
	const char *types[] = { "P-256", "P-256", "X25519" };

	for (int i = 0; i < 3; i++) {
		EVP_PKEY *ref = i < 2 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
				      : EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
		char *pem = ref ? reference_pem(ref, i == 1) : NULL;
		unsigned char *der = NULL;
		int n = ref ? i2d_PUBKEY(ref, &der) : -1;
		CpKey *k = pem ? cp_pkey_from_pem(pem, strlen(pem)) : NULL;
		uint8_t *spki = NULL;
		size_t len = 0;

		if (!k)
			fprintf(stderr, "%s key as %s not read\n", types[i], i == 1 ? "SEC 1" : "PKCS#8");
		CP_CHECK(k && cp_pkey_has_private(k));
		CP_CHECK(k && (i < 2 ? cp_pkey_is_p256(k) : cp_pkey_is_x25519(k)));
		spki = k ? cp_pubkey_spki(k, &len) : NULL;
		CP_CHECK(spki && n == (int)len && memcmp(spki, der, len) == 0);
		if (pem) {
			/* cut short, the key is refused */
			CP_CHECK(cp_pkey_from_pem(pem, strlen(pem) - 40) == NULL);
			cp_cleanse(pem, strlen(pem));
		}
		free(spki);
		free(pem);
		OPENSSL_free(der);
		cp_key_free(k);
		EVP_PKEY_free(ref);
	}
}

static void
test_sha256(void)
{
	uint8_t out[32];

	cp_sha256((const uint8_t *)"abc", 3, out);
	CP_CHECK_HEX(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	cp_sha256(NULL, 0, out);
	CP_CHECK_HEX(out, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_hmac(void)
{
	uint8_t key[20], out[32];

	memset(key, 0x0b, sizeof key);
	CP_CHECK_INT(cp_hmac_sha256(key, sizeof key, (const uint8_t *)"Hi There", 8, out), CP_OK);
	CP_CHECK_HEX(out, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	CP_CHECK_INT(cp_hmac_sha256((const uint8_t *)"Jefe", 4,
				    (const uint8_t *)"what do ya want for nothing?", 28, out), CP_OK);
	CP_CHECK_HEX(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	CP_CHECK_INT(cp_hmac_sha256(NULL, 4, key, 1, out), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_hmac_sha256(key, 4, NULL, 1, out), CP_ERR_ARGUMENT);
}

static void
test_aes(void)
{
	uint8_t key[16], icb[16], pt[64], ct[64], out[64];

	cp_test_unhex("000102030405060708090a0b0c0d0e0f", key, 16);
	cp_test_unhex("00112233445566778899aabbccddeeff", pt, 16);
	CP_CHECK_INT(cp_aes128_ecb_block(key, pt, out), CP_OK);
	CP_CHECK_HEX(out, 16, "69c4e0d86a7b0430d8cdb78070b4c55a");
	/* The keyed form: same block, and no state carried between blocks. */
	{
		CpAes128 *aes = cp_aes128_new(key);

		CP_CHECK(aes != NULL);
		for (int i = 0; i < 3; i++) {
			memset(out, 0, 16);
			CP_CHECK_INT(cp_aes128_block(aes, pt, out), CP_OK);
			CP_CHECK_HEX(out, 16, "69c4e0d86a7b0430d8cdb78070b4c55a");
		}
		CP_CHECK_INT(cp_aes128_block(NULL, pt, out), CP_ERR_ARGUMENT);
		cp_aes128_free(aes);
		cp_aes128_free(NULL);
		CP_CHECK(cp_aes128_new(NULL) == NULL);
	}

	cp_test_unhex("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
	cp_test_unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", icb, 16);
	cp_test_unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
		      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", pt, 64);
	CP_CHECK_INT(cp_aes128_ctr(key, icb, pt, 64, ct), CP_OK);
	CP_CHECK_HEX(ct, 64, "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
		     "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee");
	/* CTR is its own inverse, and a partial block is the keystream prefix. */
	CP_CHECK_INT(cp_aes128_ctr(key, icb, ct, 64, out), CP_OK);
	CP_CHECK(memcmp(out, pt, 64) == 0);
	CP_CHECK_INT(cp_aes128_ctr(key, icb, pt, 5, out), CP_OK);
	CP_CHECK_HEX(out, 5, "874d6191b6");
	/* The whole 128-bit block counts: ...ffff wraps into the next byte. */
	memset(icb, 0, 16);
	icb[15] = 0xff;
	icb[14] = 0xff;
	CP_CHECK_INT(cp_aes128_ctr(key, icb, pt, 32, ct), CP_OK);
	icb[13] = 0x01;
	icb[14] = 0x00;
	icb[15] = 0x00;
	CP_CHECK_INT(cp_aes128_ecb_block(key, icb, out), CP_OK);
	for (int i = 0; i < 16; i++)
		out[i] ^= pt[16 + i];
	CP_CHECK(memcmp(out, ct + 16, 16) == 0);
	CP_CHECK_INT(cp_aes128_ctr(key, icb, NULL, 0, NULL), CP_OK);
	CP_CHECK_INT(cp_aes128_ctr(NULL, icb, pt, 1, out), CP_ERR_ARGUMENT);
}

static void
test_x963(void)
{
	uint8_t z[32], si[33], out[64], want[64], block[32 + 4 + 33];

	for (int i = 0; i < 32; i++)
		z[i] = (uint8_t)(i * 7);
	for (int i = 0; i < 33; i++)
		si[i] = (uint8_t)(0xa0 + i);
	CP_CHECK_INT(cp_x963_kdf_sha256(z, 32, si, 33, out, 64), CP_OK);

	/* ANSI X9.63: K_i = SHA-256(Z || counter (4 bytes BE, from 1) || SharedInfo). */
	memcpy(block, z, 32);
	memcpy(block + 36, si, 33);
	for (uint32_t c = 1; c <= 2; c++) {
		block[32] = 0;
		block[33] = 0;
		block[34] = 0;
		block[35] = (uint8_t)c;
		EVP_Digest(block, sizeof block, want + 32 * (c - 1), NULL, EVP_sha256(), NULL);
	}
	CP_CHECK(memcmp(out, want, 64) == 0);
	CP_CHECK_INT(cp_x963_kdf_sha256(z, 32, si, 33, out, 20), CP_OK);
	CP_CHECK(memcmp(out, want, 20) == 0);
	CP_CHECK_INT(cp_x963_kdf_sha256(NULL, 0, si, 33, out, 64), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_x963_kdf_sha256(z, 32, si, 33, out, 0), CP_ERR_ARGUMENT);
}

static void
test_random(void)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 };

	CP_CHECK_INT(cp_random(a, sizeof a), CP_OK);
	CP_CHECK_INT(cp_random(b, sizeof b), CP_OK);
	CP_CHECK(memcmp(a, b, sizeof a) != 0);
	CP_CHECK_INT(cp_random(NULL, 0), CP_OK);
	CP_CHECK_INT(cp_random(NULL, 1), CP_ERR_ARGUMENT);
}

static void
test_p256(void)
{
	uint8_t priv[32] = { 0 }, pub[65], c[33], c2[33], back[32];
	CpKey *k, *p;
	int rejected = 0;

	/* d = 1 gives the base point. */
	priv[31] = 1;
	k = cp_p256_from_private(priv);
	CP_CHECK(k != NULL);
	CP_CHECK(cp_pkey_is_p256(k) && cp_pkey_has_private(k) && !cp_pkey_is_x25519(k));
	CP_CHECK_INT(cp_p256_public_compressed(k, c), CP_OK);
	CP_CHECK_HEX(c, 33, "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
	CP_CHECK_INT(cp_p256_private_bytes(k, back), CP_OK);
	CP_CHECK(memcmp(back, priv, 32) == 0);
	cp_key_free(k);

	/* 0 and n are no private keys. */
	memset(priv, 0, 32);
	CP_CHECK(cp_p256_from_private(priv) == NULL);
	cp_test_unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", priv, 32);
	CP_CHECK(cp_p256_from_private(priv) == NULL);
	priv[31] = 0x50;   /* n - 1 */
	k = cp_p256_from_private(priv);
	CP_CHECK(k != NULL);
	CP_CHECK_INT(cp_p256_public_compressed(k, c), CP_OK);
	/* -G has G's x and the other y parity. */
	CP_CHECK_HEX(c, 33, "026b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
	cp_key_free(k);

	/* Public keys: both encodings, and nothing off the curve. */
	cp_test_unhex(p256_g, pub, 65);
	p = cp_p256_from_public(pub, 65);
	CP_CHECK(p != NULL && !cp_pkey_has_private(p));
	CP_CHECK_INT(cp_p256_public_compressed(p, c), CP_OK);
	CP_CHECK_HEX(c, 33, "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
	cp_key_free(p);
	p = cp_p256_from_public(c, 33);
	CP_CHECK(p != NULL);
	cp_key_free(p);
	pub[64] ^= 1;
	CP_CHECK(cp_p256_from_public(pub, 65) == NULL);
	pub[64] ^= 1;
	pub[0] = 0x06;   /* hybrid encoding: refused */
	CP_CHECK(cp_p256_from_public(pub, 65) == NULL);
	CP_CHECK(cp_p256_from_public(c, 32) == NULL);
	CP_CHECK(cp_p256_from_public((const uint8_t *)"\x00", 1) == NULL);
	c[0] = 0x04;
	CP_CHECK(cp_p256_from_public(c, 33) == NULL);

	/* About half of all x have no point; those that have one round-trip. */
	for (int x = 1; x <= 32; x++) {
		memset(c, 0, 33);
		c[0] = 0x02;
		c[32] = (uint8_t)x;
		p = cp_p256_from_public(c, 33);
		if (!p) {
			rejected++;
			continue;
		}
		CP_CHECK_INT(cp_p256_public_compressed(p, c2), CP_OK);
		CP_CHECK(memcmp(c, c2, 33) == 0);
		cp_key_free(p);
	}
	CP_CHECK(rejected > 4 && rejected < 28);

	k = cp_p256_generate();
	CP_CHECK(k && cp_pkey_is_p256(k) && cp_pkey_has_private(k));
	cp_key_free(k);
	CP_CHECK_INT(cp_p256_public_compressed(NULL, c), CP_ERR_KEY);
}

static void
test_x25519(void)
{
	uint8_t priv[32], pub[32];
	CpKey *k, *p, *q;

	/* RFC 7748 6.1, Alice. */
	cp_test_unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", priv, 32);
	k = cp_x25519_from_private(priv);
	CP_CHECK(k && cp_pkey_is_x25519(k) && cp_pkey_has_private(k));
	CP_CHECK_INT(cp_x25519_public(k, pub), CP_OK);
	CP_CHECK_HEX(pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	p = cp_x25519_from_public(pub);
	CP_CHECK(p && !cp_pkey_has_private(p));
	CP_CHECK_INT(cp_x25519_public(p, priv), CP_OK);
	CP_CHECK(memcmp(priv, pub, 32) == 0);
	q = cp_x25519_generate();
	CP_CHECK(q && cp_pkey_is_x25519(q));
	CP_CHECK_INT(cp_p256_public_compressed(k, (uint8_t[33]){ 0 }), CP_ERR_KEY);
	cp_key_free(k);
	cp_key_free(p);
	cp_key_free(q);
}

static void
test_ecdh(void)
{
	uint8_t a[32], b[32], pub[32], z1[32], z2[32];
	CpKey *ka, *kb, *pa, *pb, *low, *p256, *ka_x25519;

	/* RFC 7748 6.1: Alice, Bob and their shared secret. */
	cp_test_unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, 32);
	cp_test_unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b, 32);
	ka = cp_x25519_from_private(a);
	ka_x25519 = cp_x25519_from_private(a);
	kb = cp_x25519_from_private(b);
	cp_x25519_public(ka, pub);
	pa = cp_x25519_from_public(pub);
	cp_x25519_public(kb, pub);
	pb = cp_x25519_from_public(pub);
	CP_CHECK_INT(cp_ecdh(ka, pb, z1), CP_OK);
	CP_CHECK_INT(cp_ecdh(kb, pa, z2), CP_OK);
	CP_CHECK_HEX(z1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	CP_CHECK(memcmp(z1, z2, 32) == 0);

	/* A small-order peer (u = 0) gives the all-zero secret: refused. */
	memset(pub, 0, 32);
	low = cp_x25519_from_public(pub);
	CP_CHECK(low != NULL);
	CP_CHECK_INT(cp_ecdh(ka, low, z1), CP_ERR_POINT);

	/* Mixed key types. */
	p256 = cp_p256_generate();
	CP_CHECK_INT(cp_ecdh(ka, p256, z1), CP_ERR_KEY);
	CP_CHECK_INT(cp_ecdh(p256, pa, z1), CP_ERR_KEY);
	CP_CHECK_INT(cp_ecdh(NULL, pa, z1), CP_ERR_ARGUMENT);
	cp_key_free(ka);
	cp_key_free(kb);
	cp_key_free(pa);
	cp_key_free(pb);
	cp_key_free(low);

	/* P-256: both sides agree. */
	{
		CpKey *k2 = cp_p256_generate();
		uint8_t c[33];
		CpKey *pub1, *pub2;

		cp_p256_public_compressed(p256, c);
		pub1 = cp_p256_from_public(c, 33);
		cp_p256_public_compressed(k2, c);
		pub2 = cp_p256_from_public(c, 33);
		CP_CHECK_INT(cp_ecdh(p256, pub2, z1), CP_OK);
		CP_CHECK_INT(cp_ecdh(k2, pub1, z2), CP_OK);
		CP_CHECK(memcmp(z1, z2, 32) == 0);

		/* From the encoded point, both forms, the same secret. */
		{
			uint8_t z3[32], u[65];

			memset(z3, 0, sizeof z3);
			CP_CHECK_INT(cp_p256_ecdh_encoded(p256, c, 33, z3), CP_OK);
			CP_CHECK(memcmp(z1, z3, 32) == 0);
			CP_CHECK(point65(pub2, u));
			memset(z3, 0, sizeof z3);
			CP_CHECK_INT(cp_p256_ecdh_encoded(p256, u, 65, z3), CP_OK);
			CP_CHECK(memcmp(z1, z3, 32) == 0);
			/* The decompression: over many points, of both
			 * parities of y, the uncompressed form's secret. */
			for (int i = 0, odd = 0; i < 64; i++) {
				CpKey *e = cp_p256_generate();
				uint8_t ec[33], eu[65], za[32], zb[32];

				CP_CHECK(e && cp_p256_public_compressed(e, ec) == CP_OK &&
					 point65(e, eu));
				odd += ec[0] == 0x03;
				CP_CHECK_INT(cp_p256_ecdh_encoded(p256, ec, 33, za), CP_OK);
				CP_CHECK_INT(cp_p256_ecdh_encoded(p256, eu, 65, zb), CP_OK);
				CP_CHECK(memcmp(za, zb, 32) == 0);
				/* the other root is -Q: d(-Q) has the same x */
				ec[0] ^= 1;
				CP_CHECK_INT(cp_p256_ecdh_encoded(p256, ec, 33, za), CP_OK);
				CP_CHECK(memcmp(za, zb, 32) == 0);
				cp_key_free(e);
				if (i == 63)
					CP_CHECK(odd > 8 && odd < 56);
			}
			/* Off the curve, the hybrid form, a wrong length, no
			 * private half, an X25519 key. */
			u[64] ^= 1;
			CP_CHECK_INT(cp_p256_ecdh_encoded(p256, u, 65, z3), CP_ERR_POINT);
			u[64] ^= 1;
			u[0] = 0x06;
			CP_CHECK_INT(cp_p256_ecdh_encoded(p256, u, 65, z3), CP_ERR_POINT);
			CP_CHECK_INT(cp_p256_ecdh_encoded(p256, c, 32, z3), CP_ERR_POINT);
			CP_CHECK_INT(cp_p256_ecdh_encoded(pub1, c, 33, z3), CP_ERR_KEY);
			CP_CHECK_INT(cp_p256_ecdh_encoded(ka_x25519, c, 33, z3), CP_ERR_KEY);
			CP_CHECK_INT(cp_p256_ecdh_encoded(NULL, c, 33, z3), CP_ERR_ARGUMENT);
		}
		cp_key_free(k2);
		cp_key_free(pub1);
		cp_key_free(pub2);
	}
	cp_key_free(ka_x25519);
	cp_key_free(p256);
}

static void
test_ecdsa(void)
{
	const uint8_t msg[] = "device record bytes";
	uint8_t sig[CP_ECDSA_MAX], c[33];
	size_t sig_len = 0;
	CpKey *k = cp_p256_generate(), *other = cp_p256_generate(), *pub, *x;

	CP_CHECK_INT(cp_ecdsa_sign(k, msg, sizeof msg, sig, &sig_len), CP_OK);
	CP_CHECK(sig_len >= 8 && sig_len <= CP_ECDSA_MAX);
	CP_CHECK(sig[0] == 0x30);   /* DER SEQUENCE */
	cp_p256_public_compressed(k, c);
	pub = cp_p256_from_public(c, 33);
	CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, sig, sig_len), CP_OK);
	CP_CHECK_INT(cp_ecdsa_verify(k, msg, sizeof msg, sig, sig_len), CP_OK);
	CP_CHECK_INT(cp_ecdsa_verify(other, msg, sizeof msg, sig, sig_len), CP_ERR_SIGNATURE);
	CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg - 1, sig, sig_len), CP_ERR_SIGNATURE);
	for (size_t i = 0; i < sig_len; i++) {
		sig[i] ^= 0x01;
		CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, sig, sig_len), CP_ERR_SIGNATURE);
		sig[i] ^= 0x01;
	}
	CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, sig, sig_len - 1), CP_ERR_SIGNATURE);
	CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, sig, 0), CP_ERR_SIGNATURE);
	CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, (const uint8_t *)"\x30\x00", 2),
		     CP_ERR_SIGNATURE);
	/* The same r and s in encodings that are not DER: refused, as
	 * OpenSSL refuses what does not re-encode to itself. */
	{
		uint8_t bad[CP_ECDSA_MAX + 8];
		size_t rl, n;

		/* a leading zero before an r of 32 bytes or fewer (one with its
		 * top bit set has its zero already: sign again until it has not) */
		for (int i = 0; i < 64 && sig[3] > 32; i++)
			CP_CHECK_INT(cp_ecdsa_sign(k, msg, sizeof msg, sig, &sig_len), CP_OK);
		rl = sig[3];
		CP_CHECK(rl <= 32);
		n = 0;
		bad[n++] = 0x30;
		bad[n++] = (uint8_t)(sig[1] + 1);
		bad[n++] = 0x02;
		bad[n++] = (uint8_t)(rl + 1);
		bad[n++] = 0x00;
		memcpy(bad + n, sig + 4, sig_len - 4);
		n += sig_len - 4;
		CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, bad, n), CP_ERR_SIGNATURE);
		/* the SEQUENCE's length in the long form */
		bad[0] = 0x30;
		bad[1] = 0x81;
		bad[2] = sig[1];
		memcpy(bad + 3, sig + 2, sig_len - 2);
		CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, bad, sig_len + 1), CP_ERR_SIGNATURE);
		/* a byte after the SEQUENCE */
		memcpy(bad, sig, sig_len);
		bad[sig_len] = 0;
		CP_CHECK_INT(cp_ecdsa_verify(pub, msg, sizeof msg, bad, sig_len + 1), CP_ERR_SIGNATURE);
		/* and the signature itself, checked by OpenSSL */
		{
			size_t len = 0;
			uint8_t *spki = cp_pubkey_spki(pub, &len);
			const unsigned char *q = spki;
			EVP_PKEY *ref = spki ? d2i_PUBKEY(NULL, &q, (long)len) : NULL;
			EVP_MD_CTX *md = EVP_MD_CTX_new();

			CP_CHECK(ref && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, ref) == 1 &&
				 EVP_DigestVerify(md, sig, sig_len, msg, sizeof msg) == 1);
			EVP_MD_CTX_free(md);
			EVP_PKEY_free(ref);
			free(spki);
		}
	}
	/* A public key cannot sign; an X25519 key can do neither. */
	CP_CHECK_INT(cp_ecdsa_sign(pub, msg, sizeof msg, sig, &sig_len), CP_ERR_KEY);
	x = cp_x25519_generate();
	CP_CHECK_INT(cp_ecdsa_sign(x, msg, sizeof msg, sig, &sig_len), CP_ERR_KEY);
	CP_CHECK_INT(cp_ecdsa_verify(x, msg, sizeof msg, sig, sig_len), CP_ERR_KEY);
	/* An empty message is a message. */
	CP_CHECK_INT(cp_ecdsa_sign(k, NULL, 0, sig, &sig_len), CP_OK);
	CP_CHECK_INT(cp_ecdsa_verify(pub, NULL, 0, sig, sig_len), CP_OK);
	cp_key_free(k);
	cp_key_free(other);
	cp_key_free(pub);
	cp_key_free(x);
}

static void
test_encodings(void)
{
	CpKey *k = cp_p256_generate(), *back, *pub;
	uint8_t *spki, *spki2, c1[33], c2[33];
	size_t len = 0, len2 = 0;
	char *pem, *pubpem;

	spki = cp_pubkey_spki(k, &len);
	CP_CHECK(spki != NULL);
	/* id-ecPublicKey + prime256v1 + 65-byte point: always 91 bytes. */
	CP_CHECK_INT(len, 91);
	pub = cp_pubkey_from_spki(spki, len);
	CP_CHECK(pub != NULL && !cp_pkey_has_private(pub));
	cp_p256_public_compressed(k, c1);
	cp_p256_public_compressed(pub, c2);
	CP_CHECK(memcmp(c1, c2, 33) == 0);
	spki2 = cp_pubkey_spki(pub, &len2);
	CP_CHECK(spki2 && len2 == len && memcmp(spki, spki2, len) == 0);
	CP_CHECK(cp_pubkey_from_spki(spki, len - 1) == NULL);
	cp_key_free(pub);
	free(spki2);
	/* A point off the curve (y changed) and a compressed point in an
	 * uncompressed one's place are refused */
	spki[len - 1] ^= 0x01;
	CP_CHECK(cp_pubkey_from_spki(spki, len) == NULL);
	spki[len - 1] ^= 0x01;
	spki[26] = 0x02;
	CP_CHECK(cp_pubkey_from_spki(spki, len) == NULL);
	spki[26] = 0x04;
	/* X25519's SPKI gives the same key back */
	{
		CpKey *x = cp_x25519_generate(), *xp;
		uint8_t *xs = cp_pubkey_spki(x, &len2), a[32], b[32];

		CP_CHECK(xs != NULL && len2 == 44);
		xp = cp_pubkey_from_spki(xs, len2);
		CP_CHECK(xp && cp_pkey_is_x25519(xp) && !cp_pkey_has_private(xp));
		CP_CHECK_INT(cp_x25519_public(x, a), CP_OK);
		CP_CHECK_INT(cp_x25519_public(xp, b), CP_OK);
		CP_CHECK(memcmp(a, b, 32) == 0);
		CP_CHECK(cp_pubkey_from_spki(xs, len2 - 1) == NULL);
		cp_key_free(x);
		cp_key_free(xp);
		free(xs);
	}

	/* The same bytes as OpenSSL's own encoder ... */
	CP_CHECK(spki_canonical(spki, len));
	/* ... and the same for a key read from its compressed point. */
	pub = cp_p256_from_public(c1, 33);
	spki2 = cp_pubkey_spki(pub, &len2);
	CP_CHECK(spki2 && len2 == len && memcmp(spki, spki2, len) == 0);
	free(spki2);
	cp_key_free(pub);
	/* Garbage, truncation. */
	CP_CHECK(cp_pkey_from_pem("garbage", 7) == NULL);

#ifdef CP_CRYPTO_OPENSSL
	/* The writers are the OpenSSL library's (tools, the network side). */
	pem = cp_pkey_to_pem(k);
	CP_CHECK(pem && strstr(pem, "-----BEGIN PRIVATE KEY-----"));
	back = cp_pkey_from_pem(pem, strlen(pem));
	CP_CHECK(back && cp_pkey_has_private(back));
	spki2 = cp_pubkey_spki(back, &len2);
	CP_CHECK(spki2 && len2 == len && memcmp(spki, spki2, len) == 0);
	free(spki2);
	cp_key_free(back);
	/* Garbage, truncation, and a public key where a private one is wanted. */
	CP_CHECK(cp_pkey_from_pem("garbage", 7) == NULL);
	CP_CHECK(cp_pkey_from_pem(pem, strlen(pem) / 2) == NULL);
	pubpem = cp_pubkey_to_pem(k);
	CP_CHECK(pubpem && strstr(pubpem, "-----BEGIN PUBLIC KEY-----"));
	CP_CHECK(cp_pkey_from_pem(pubpem, strlen(pubpem)) == NULL);
	pub = cp_pubkey_from_pem(pubpem, strlen(pubpem));
	CP_CHECK(pub && !cp_pkey_has_private(pub));
	cp_key_free(pub);
	CP_CHECK(cp_pkey_to_pem(pub = cp_pubkey_from_spki(spki, len)) == NULL);
	cp_key_free(pub);
	cp_cleanse(pem, strlen(pem));
	free(pem);
	free(pubpem);
#else
	(void)back;
	(void)pem;
	(void)pubpem;
#endif
	free(spki);

	/* An encrypted key fails at once instead of prompting. */
	{
		const char *enc =
			"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
			"MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhTeZ0SgO9ClQICCAAw\n"
			"DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEHk3k3c3SGjuS2zcCRyUbnIEgZA=\n"
			"-----END ENCRYPTED PRIVATE KEY-----\n";

		CP_CHECK(cp_pkey_from_pem(enc, strlen(enc)) == NULL);
	}

	/* Other key types are refused. */
	{
		EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		char *p2 = NULL;
		BIO *bio = BIO_new(BIO_s_mem());
		BUF_MEM *m = NULL;

		PEM_write_bio_PrivateKey(bio, rsa, NULL, NULL, 0, NULL, NULL);
		BIO_get_mem_ptr(bio, &m);
		p2 = strndup(m->data, m->length);
		CP_CHECK(p2 && strstr(p2, "PRIVATE KEY"));
		CP_CHECK(cp_pkey_from_pem(p2, strlen(p2)) == NULL);
		free(p2);
		BIO_free(bio);
		EVP_PKEY_free(rsa);
	}
	cp_key_free(k);
}

int
main(void)
{
	test_sha256();
	test_hmac();
	test_aes();
	test_x963();
	test_random();
	test_p256();
	test_x25519();
	test_reference_pem();
	test_ecdh();
	test_ecdsa();
	test_encodings();
	return cp_test_done("test-crypto");
}
