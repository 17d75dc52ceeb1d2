/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The key schedule of docs/protocol.md, each step against cp_kdf with its FC
 * and parameters spelled out here, and the DeviceID against an SPKI built
 * by hand from the raw point.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/evp.h>

#ifndef CP_TEST_DEVICE_CRYPTO
#include "cp-crypto-openssl.h"
#endif
#include "cp-crypto.h"
#include "cp-kdf.h"
#include "cp-keys.h"
#include "cp-milenage.h"
#include "cp-secret.h"
#include "cp-test.h"

static const uint8_t device_id[16] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t nonce[16] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
};

/* A key's uncompressed point, computed by OpenSSL from its scalar. */
static bool
reference_point(CpKey *k, uint8_t out[65])
{
	uint8_t d[32];
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *q = g ? EC_POINT_new(g) : NULL;
	BIGNUM *bn = NULL;
	bool ok = cp_p256_private_bytes(k, d) == CP_OK && q &&
		  (bn = BN_bin2bn(d, 32, NULL)) && EC_POINT_mul(g, q, bn, NULL, NULL, NULL) == 1 &&
		  EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, out, 65, NULL) == 65;

	BN_clear_free(bn);
	EC_POINT_free(q);
	EC_GROUP_free(g);
	cp_cleanse(d, sizeof d);
	return ok;
}

static void
kdf_ref(const CpSecret *key, uint8_t fc, const CpKdfParam *p, size_t n, uint8_t out[32])
{
	CP_CHECK_INT(cp_kdf(key->data, key->len, fc, p, n, out), CP_OK);
}

static void
test_schedule(void)
{
	const char *supi = "001010000000001";
	cp_auto_secret *k_c = cp_secret_new_from_hex(
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 32);
	cp_auto_secret *op = cp_secret_new_from_hex("cdc202d5123e20f62b6d676ac72cb318", 16);
	cp_auto_secret *k_prime = NULL, *k_usim = NULL, *opc = NULL, *k_sm = NULL;
	cp_auto_secret *k2 = NULL, *k_prof = NULL;
	const uint8_t info[] = { 0x01, 0x00, 0x01, 0x01, 0x02, 0x00, 0x10, 'x' };
	uint8_t want[32], h[32], e[16];
	unsigned int hn = 0;

	k_prime = cp_keys_k_prime(k_c, device_id, supi);
	CP_CHECK(k_prime && k_prime->len == 32);
	kdf_ref(k_c, 0xF0, (CpKdfParam[]){ { device_id, 16 }, { (const uint8_t *)supi, 15 } }, 2, want);
	CP_CHECK(k_prime && memcmp(k_prime->data, want, 32) == 0);
	if (!k_prime)
		return;

	k_usim = cp_keys_k_usim(k_prime);
	CP_CHECK(k_usim && k_usim->len == 16);
	kdf_ref(k_prime, 0xF4, (CpKdfParam[]){ { (const uint8_t *)"usim-k", 6 } }, 1, want);
	CP_CHECK(k_usim && memcmp(k_usim->data, want, 16) == 0);

	/* OPc = E_K(OP) xor OP, here with OpenSSL's AES directly. */
	opc = cp_keys_opc(k_usim, op);
	CP_CHECK(opc && opc->len == 16);
	{
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		int n = 0;

		EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, k_usim->data, NULL);
		EVP_CIPHER_CTX_set_padding(c, 0);
		EVP_EncryptUpdate(c, e, &n, op->data, 16);
		EVP_CIPHER_CTX_free(c);
		for (int i = 0; i < 16; i++)
			e[i] ^= op->data[i];
	}
	CP_CHECK(opc && memcmp(opc->data, e, 16) == 0);

	k_sm = cp_keys_k_sm(k_prime, device_id);
	CP_CHECK(k_sm && k_sm->len == 32);
	kdf_ref(k_prime, 0xF1, (CpKdfParam[]){ { device_id, 16 } }, 1, want);
	CP_CHECK(k_sm && memcmp(k_sm->data, want, 32) == 0);

	EVP_Digest(info, sizeof info, h, &hn, EVP_sha256(), NULL);
	k2 = cp_keys_k2(k_sm, nonce, info, sizeof info);
	CP_CHECK(k2 && k2->len == 32);
	kdf_ref(k_sm, 0xF2, (CpKdfParam[]){ { nonce, 16 }, { h, 32 } }, 2, want);
	CP_CHECK(k2 && memcmp(k2->data, want, 32) == 0);

	k_prof = cp_keys_k_prof(k_sm, nonce);
	CP_CHECK(k_prof && k_prof->len == 32);
	kdf_ref(k_sm, 0xF3, (CpKdfParam[]){ { nonce, 16 } }, 1, want);
	CP_CHECK(k_prof && memcmp(k_prof->data, want, 32) == 0);

	/* The keys are distinct from each other. */
	CP_CHECK(!cp_secret_equal(k_sm, k_prof));
	CP_CHECK(!cp_secret_equal(k_sm, k2));
	CP_CHECK(!cp_secret_equal(k2, k_prof));

	/* Another SUPI or device gives another K'. */
	{
		cp_auto_secret *a = cp_keys_k_prime(k_c, device_id, "001010000000002");
		uint8_t other[16];

		memcpy(other, device_id, 16);
		other[15] ^= 1;
		cp_auto_secret *b = cp_keys_k_prime(k_c, other, supi);
		CP_CHECK(a && b && !cp_secret_equal(a, k_prime) && !cp_secret_equal(b, k_prime));
	}

	/* Wrong lengths and bad SUPIs give NULL. */
	{
		cp_auto_secret *short_key = cp_secret_new(16);

		CP_CHECK(cp_keys_k_prime(short_key, device_id, supi) == NULL);
		CP_CHECK(cp_keys_k_prime(k_c, device_id, "00101") == NULL);
		CP_CHECK(cp_keys_k_prime(k_c, device_id, NULL) == NULL);
		CP_CHECK(cp_keys_k_prime(NULL, device_id, supi) == NULL);
		CP_CHECK(cp_keys_k_usim(short_key) == NULL);
		CP_CHECK(cp_keys_k_sm(short_key, device_id) == NULL);
		CP_CHECK(cp_keys_k_prof(short_key, nonce) == NULL);
		CP_CHECK(cp_keys_k2(short_key, nonce, info, sizeof info) == NULL);
		CP_CHECK(cp_keys_k2(k_sm, nonce, NULL, 0) == NULL);
		CP_CHECK(cp_keys_opc(k_prime, op) == NULL);   /* K_usim is 16 bytes */
		CP_CHECK(cp_keys_opc(k_usim, k_c) == NULL);
		CP_CHECK(cp_keys_opc(k_usim, NULL) == NULL);
	}
}

static void
test_supi(void)
{
	CP_CHECK(cp_supi_valid("001010000000001"));
	CP_CHECK(cp_supi_valid("001010"));
	CP_CHECK(cp_supi_valid("99999999999999"));
	CP_CHECK(!cp_supi_valid("00101"));
	CP_CHECK(!cp_supi_valid("0010100000000012"));
	CP_CHECK(!cp_supi_valid(""));
	CP_CHECK(!cp_supi_valid(NULL));
	CP_CHECK(!cp_supi_valid("00101a000000001"));
	CP_CHECK(!cp_supi_valid("001010 00000001"));
	CP_CHECK(!cp_supi_valid("imsi-001010000000001"));
	CP_CHECK(!cp_supi_valid("-01010000000001"));
	CP_CHECK(!cp_supi_valid("\xd9\xa0" "01010000"));   /* Arabic-Indic digit */
}

static void
test_device_id(void)
{
	/* SubjectPublicKeyInfo for id-ecPublicKey / prime256v1, before the point. */
	static const uint8_t prefix[] = {
		0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
	};
	uint8_t spki[sizeof prefix + 65], h[32], id[16], id2[16];
	CpKey *k = cp_p256_generate(), *pub, *x;
	unsigned int hn = 0;
	uint8_t c[33];

	memcpy(spki, prefix, sizeof prefix);
	CP_CHECK(reference_point(k, spki + sizeof prefix));
	EVP_Digest(spki, sizeof spki, h, &hn, EVP_sha256(), NULL);

	CP_CHECK_INT(cp_device_id(k, id), CP_OK);
	CP_CHECK(memcmp(id, h, 16) == 0);
	/* The public half alone gives the same DeviceID. */
	cp_p256_public_compressed(k, c);
	pub = cp_p256_from_public(c, 33);
	CP_CHECK_INT(cp_device_id(pub, id2), CP_OK);
	CP_CHECK(memcmp(id, id2, 16) == 0);

	x = cp_x25519_generate();
	CP_CHECK_INT(cp_device_id(x, id2), CP_ERR_KEY);
	CP_CHECK_INT(cp_device_id(NULL, id2), CP_ERR_KEY);
	CP_CHECK_INT(cp_device_id(k, NULL), CP_ERR_ARGUMENT);
	cp_key_free(k);
	cp_key_free(pub);
	cp_key_free(x);
}

int
main(void)
{
	test_schedule();
	test_supi();
	test_device_id();
	return cp_test_done("test-keys");
}
