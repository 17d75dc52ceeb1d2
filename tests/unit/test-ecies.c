/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ECIES against TS 33.501 C.4 (both profiles, every intermediate value),
 * then the ways a tampered enc_cred must fail.
 */
#include <string.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#ifndef CP_TEST_DEVICE_CRYPTO
#include "cp-crypto-openssl.h"
#endif
#include "cp-crypto.h"
#include "cp-ecies.h"
#include "cp-secret.h"
#include "cp-test.h"

static const char *
get(const CpTestBlock *b, const char *name)
{
	const char *v = cp_test_block_get(b, name);

	if (!v) {
		fprintf(stderr, "vector lacks '%s'\n", name);
		CP_CHECK(false);
		return "";
	}
	return v;
}

static void
check_profile(const CpTestBlock *b)
{
	const char *profile = get(b, "profile");
	CpSuite suite = strcmp(profile, "A") == 0 ? CP_SUITE_A : CP_SUITE_B;
	size_t eph_len = cp_ecies_eph_len(suite);
	uint8_t hn_priv[32], eph_priv[32], pub[CP_ECIES_EPH_MAX], eph_pub[CP_ECIES_EPH_MAX];
	uint8_t plain[64], cipher[64], back[64], mac[CP_ECIES_MAC_LEN], z[32], z2[32];
	CpKey *hn, *hn_pub, *eph;
	size_t n;

	fprintf(stderr, "profile %s\n", profile);
	cp_test_unhex(get(b, "hn_privkey"), hn_priv, 32);
	cp_test_unhex(get(b, "eph_privkey"), eph_priv, 32);
	n = cp_test_unhex(get(b, "plaintext"), plain, sizeof plain);

	if (suite == CP_SUITE_A) {
		hn = cp_x25519_from_private(hn_priv);
		eph = cp_x25519_from_private(eph_priv);
		CP_CHECK_INT(cp_x25519_public(hn, pub), CP_OK);
		CP_CHECK_HEX(pub, 32, get(b, "hn_pubkey"));
		hn_pub = cp_x25519_from_public(pub);
		CP_CHECK_INT(cp_x25519_public(eph, pub), CP_OK);
		CP_CHECK_HEX(pub, 32, get(b, "eph_pubkey"));
	} else {
		hn = cp_p256_from_private(hn_priv);
		eph = cp_p256_from_private(eph_priv);
		CP_CHECK_INT(cp_p256_public_compressed(hn, pub), CP_OK);
		CP_CHECK_HEX(pub, 33, get(b, "hn_pubkey"));
		hn_pub = cp_p256_from_public(pub, 33);
		CP_CHECK_INT(cp_p256_public_compressed(eph, pub), CP_OK);
		CP_CHECK_HEX(pub, 33, get(b, "eph_pubkey"));
	}
	CP_CHECK(hn && eph && hn_pub);
	if (!hn || !eph || !hn_pub)
		goto out;

	/* The network side encrypts to the public key only. */
	CP_CHECK_INT(cp_ecies_encrypt(suite, hn_pub, eph, plain, n, eph_pub, cipher, mac, z), CP_OK);
	CP_CHECK_HEX(eph_pub, eph_len, get(b, "eph_pubkey"));
	CP_CHECK_HEX(z, 32, get(b, "shared_key"));
	CP_CHECK_HEX(cipher, n, get(b, "ciphertext"));
	CP_CHECK_HEX(mac, CP_ECIES_MAC_LEN, get(b, "mac"));

	memset(back, 0, sizeof back);
	CP_CHECK_INT(cp_ecies_decrypt(suite, hn, eph_pub, eph_len, cipher, n, mac, back, z2), CP_OK);
	CP_CHECK(memcmp(back, plain, n) == 0);
	CP_CHECK_HEX(z2, 32, get(b, "shared_key"));
	/* shared_out is optional. */
	CP_CHECK_INT(cp_ecies_decrypt(suite, hn, eph_pub, eph_len, cipher, n, mac, back, NULL), CP_OK);

	/* Every single-bit change of MAC or ciphertext: CP_ERR_DECRYPT, plain untouched. */
	memset(back, 0xee, sizeof back);
	for (size_t bit = 0; bit < 8 * CP_ECIES_MAC_LEN; bit++) {
		mac[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		CP_CHECK_INT(cp_ecies_decrypt(suite, hn, eph_pub, eph_len, cipher, n, mac, back, NULL),
			     CP_ERR_DECRYPT);
		mac[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	for (size_t bit = 0; bit < 8 * n; bit++) {
		cipher[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		CP_CHECK_INT(cp_ecies_decrypt(suite, hn, eph_pub, eph_len, cipher, n, mac, back, NULL),
			     CP_ERR_DECRYPT);
		cipher[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	/*
	 * Every single-bit change of the ephemeral key: either another valid
	 * key (so another shared secret and SharedInfo, and the MAC fails) or
	 * no key at all. Which one is decided here with OpenSSL's own point
	 * decoder. For X25519 every 32 bytes are a key; even bit 255, which
	 * X25519 ignores, changes SharedInfo.
	 */
	for (size_t bit = 0; bit < 8 * eph_len; bit++) {
		CpError want = CP_ERR_DECRYPT, e;

		eph_pub[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		if (suite == CP_SUITE_B) {
			EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
			EC_POINT *q = EC_POINT_new(g);

			if ((eph_pub[0] != 0x02 && eph_pub[0] != 0x03) ||
			    !EC_POINT_oct2point(g, q, eph_pub, eph_len, NULL))
				want = CP_ERR_POINT;
			EC_POINT_free(q);
			EC_GROUP_free(g);
		}
		e = cp_ecies_decrypt(suite, hn, eph_pub, eph_len, cipher, n, mac, back, NULL);
		if (e != want)
			fprintf(stderr, "eph bit %zu: %s, want %s\n", bit, cp_error_name(e),
				cp_error_name(want));
		CP_CHECK_INT(e, want);
		eph_pub[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	for (size_t i = 0; i < n; i++)
		CP_CHECK(back[i] == 0xee);

	/* Decrypting needs the private key; a public one is the wrong key. */
	CP_CHECK_INT(cp_ecies_decrypt(suite, hn_pub, eph_pub, eph_len, cipher, n, mac, back, NULL),
		     CP_ERR_KEY);
	CP_CHECK_INT(cp_ecies_decrypt(suite, hn, eph_pub, eph_len - 1, cipher, n, mac, back, NULL),
		     CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_ecies_decrypt((CpSuite)0x03, hn, eph_pub, eph_len, cipher, n, mac, back, NULL),
		     CP_ERR_SUITE);
	/* The other profile's key. */
	CP_CHECK_INT(cp_ecies_decrypt(suite == CP_SUITE_A ? CP_SUITE_B : CP_SUITE_A, hn, eph_pub,
				      cp_ecies_eph_len(suite == CP_SUITE_A ? CP_SUITE_B : CP_SUITE_A),
				      cipher, n, mac, back, NULL),
		     suite == CP_SUITE_A ? CP_ERR_KEY : CP_ERR_KEY);

	/* A fresh ephemeral key each time: different eph_pub, same plaintext back. */
	{
		uint8_t e1[CP_ECIES_EPH_MAX], e2[CP_ECIES_EPH_MAX], c1[64], c2[64], m1[8], m2[8];

		CP_CHECK_INT(cp_ecies_encrypt(suite, hn_pub, NULL, plain, n, e1, c1, m1, NULL), CP_OK);
		CP_CHECK_INT(cp_ecies_encrypt(suite, hn_pub, NULL, plain, n, e2, c2, m2, NULL), CP_OK);
		CP_CHECK(memcmp(e1, e2, eph_len) != 0);
		CP_CHECK_INT(cp_ecies_decrypt(suite, hn, e2, eph_len, c2, n, m2, back, NULL), CP_OK);
		CP_CHECK(memcmp(back, plain, n) == 0);
		/* Mixing one message's ephemeral key with another's ciphertext fails. */
		CP_CHECK_INT(cp_ecies_decrypt(suite, hn, e1, eph_len, c2, n, m2, back, NULL),
			     CP_ERR_DECRYPT);
	}
out:
	cp_key_free(hn);
	cp_key_free(hn_pub);
	cp_key_free(eph);
}

/* The enc_cred shape: 48 bytes of K' || OPc, fresh keys. */
static void
test_credential_block(void)
{
	CpKey *dev = cp_p256_generate();
	uint8_t plain[48], cipher[48], back[48], eph[CP_ECIES_EPH_MAX], mac[8];

	for (int i = 0; i < 48; i++)
		plain[i] = (uint8_t)i;
	CP_CHECK_INT(cp_ecies_encrypt(CP_SUITE_B, dev, NULL, plain, 48, eph, cipher, mac, NULL), CP_OK);
	CP_CHECK(eph[0] == 0x02 || eph[0] == 0x03);
	CP_CHECK(memcmp(cipher, plain, 48) != 0);
	CP_CHECK_INT(cp_ecies_decrypt(CP_SUITE_B, dev, eph, 33, cipher, 48, mac, back, NULL), CP_OK);
	CP_CHECK(memcmp(back, plain, 48) == 0);
	/* Wrong recipient: the MAC check catches it. */
	{
		CpKey *other = cp_p256_generate();

		CP_CHECK_INT(cp_ecies_decrypt(CP_SUITE_B, other, eph, 33, cipher, 48, mac, back, NULL),
			     CP_ERR_DECRYPT);
		cp_key_free(other);
	}
	/* Encrypting to an X25519 key under suite B is a key error. */
	{
		CpKey *x = cp_x25519_generate();

		CP_CHECK_INT(cp_ecies_encrypt(CP_SUITE_B, x, NULL, plain, 48, eph, cipher, mac, NULL),
			     CP_ERR_KEY);
		CP_CHECK_INT(cp_ecies_encrypt(CP_SUITE_A, dev, NULL, plain, 48, eph, cipher, mac, NULL),
			     CP_ERR_KEY);
		cp_key_free(x);
	}
	CP_CHECK_INT(cp_ecies_encrypt((CpSuite)0, dev, NULL, plain, 48, eph, cipher, mac, NULL),
		     CP_ERR_SUITE);
	cp_key_free(dev);
}

/* Points that are not on P-256, and X25519 points of small order. */
static void
test_bad_points(void)
{
	CpKey *dev = cp_p256_generate(), *xdev = cp_x25519_generate();
	uint8_t eph[33], cipher[48] = { 0 }, mac[8] = { 0 }, back[48];
	int off = 0;

	/* Compressed x with no y on the curve: about half of all x. */
	for (int x = 1; x <= 32; x++) {
		memset(eph, 0, sizeof eph);
		eph[0] = 0x03;
		eph[32] = (uint8_t)x;
		switch (cp_ecies_decrypt(CP_SUITE_B, dev, eph, 33, cipher, 48, mac, back, NULL)) {
		case CP_ERR_POINT:
			off++;
			break;
		case CP_ERR_DECRYPT:
			break;
		default:
			CP_CHECK(false);
		}
	}
	CP_CHECK(off > 4 && off < 28);
	/* x = p: not a field element. */
	cp_test_unhex("03ffffffff00000001000000000000000000000000ffffffffffffffffffffffff", eph, 33);
	CP_CHECK_INT(cp_ecies_decrypt(CP_SUITE_B, dev, eph, 33, cipher, 48, mac, back, NULL), CP_ERR_POINT);
	/* The uncompressed prefix is not Profile B's form. */
	eph[0] = 0x04;
	CP_CHECK_INT(cp_ecies_decrypt(CP_SUITE_B, dev, eph, 33, cipher, 48, mac, back, NULL), CP_ERR_POINT);
	eph[0] = 0x00;
	CP_CHECK_INT(cp_ecies_decrypt(CP_SUITE_B, dev, eph, 33, cipher, 48, mac, back, NULL), CP_ERR_POINT);

	/* X25519: u = 0 and u = 1 have small order; the shared secret is zero. */
	memset(eph, 0, sizeof eph);
	CP_CHECK_INT(cp_ecies_decrypt(CP_SUITE_A, xdev, eph, 32, cipher, 48, mac, back, NULL), CP_ERR_POINT);
	eph[0] = 1;
	CP_CHECK_INT(cp_ecies_decrypt(CP_SUITE_A, xdev, eph, 32, cipher, 48, mac, back, NULL), CP_ERR_POINT);

	cp_key_free(dev);
	cp_key_free(xdev);
}

int
main(void)
{
	CpTestVectors v;
	int profiles = 0;

	CP_CHECK_INT(cp_ecies_eph_len(CP_SUITE_A), 32);
	CP_CHECK_INT(cp_ecies_eph_len(CP_SUITE_B), 33);
	CP_CHECK_INT(cp_ecies_eph_len((CpSuite)7), 0);

	CP_CHECK(cp_test_vectors_load("ecies-ts33501.txt", &v));
	for (size_t i = 0; i < v.n; i++) {
		check_profile(&v.blocks[i]);
		profiles++;
	}
	CP_CHECK_INT(profiles, 2);
	cp_test_vectors_free(&v);

	test_credential_block();
	test_bad_points();
	return cp_test_done("test-ecies");
}
