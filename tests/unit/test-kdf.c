/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The TS 33.220 B.2 KDF: S = FC || P0 || L0 || ... built by hand here and
 * run through OpenSSL's HMAC() one-shot, independently of cp_kdf.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cp-kdf.h"
#include "cp-test.h"

static void
hmac_ref(const uint8_t *key, size_t key_len, const uint8_t *s, size_t len, uint8_t out[32])
{
	unsigned int n = 0;

	HMAC(EVP_sha256(), key, (int)key_len, s, len, out, &n);
	CP_CHECK_INT(n, 32);
}

static void
test_hand_computed(void)
{
	uint8_t key[32], out[32], want[32];
	const uint8_t dev[4] = { 0xde, 0xad, 0xbe, 0xef };
	const char *supi = "001010000000001";
	/* FC 0xF0 || dev || 00 04 || "001010000000001" || 00 0f */
	const uint8_t s[] = {
		0xf0,
		0xde, 0xad, 0xbe, 0xef, 0x00, 0x04,
		'0', '0', '1', '0', '1', '0', '0', '0', '0', '0', '0', '0', '0', '0', '1',
		0x00, 0x0f,
	};
	CpKdfParam p[2] = {
		{ dev, sizeof dev },
		{ (const uint8_t *)supi, strlen(supi) },
	};

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x40 + i);
	CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf0, p, 2, out), CP_OK);
	hmac_ref(key, sizeof key, s, sizeof s, want);
	CP_CHECK(memcmp(out, want, 32) == 0);

	/* FC alone (no parameters) is S = FC. */
	CP_CHECK_INT(cp_kdf(key, sizeof key, 0x6a, NULL, 0, out), CP_OK);
	hmac_ref(key, sizeof key, (const uint8_t *)"\x6a", 1, want);
	CP_CHECK(memcmp(out, want, 32) == 0);

	/* Any change of FC, key or a parameter changes the output. */
	CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf1, p, 2, out), CP_OK);
	hmac_ref(key, sizeof key, s, sizeof s, want);
	CP_CHECK(memcmp(out, want, 32) != 0);
	key[0] ^= 1;
	CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf0, p, 2, out), CP_OK);
	CP_CHECK(memcmp(out, want, 32) != 0);
}

static void
test_lengths(void)
{
	static uint8_t big[0x10000];
	static uint8_t s[1 + 0x102 + 2 + 0 + 2 + 1 + 2];
	uint8_t key[16] = { 1 }, out[32], want[32];
	CpKdfParam p[3];
	size_t o = 0;

	/* Two-byte big-endian lengths, including zero and above 255. */
	for (size_t i = 0; i < 0x102; i++)
		big[i] = (uint8_t)(i * 3);
	p[0] = (CpKdfParam){ big, 0x102 };
	p[1] = (CpKdfParam){ NULL, 0 };
	p[2] = (CpKdfParam){ (const uint8_t *)"x", 1 };
	s[o++] = 0xf4;
	memcpy(s + o, big, 0x102);
	o += 0x102;
	s[o++] = 0x01;
	s[o++] = 0x02;
	s[o++] = 0x00;
	s[o++] = 0x00;
	s[o++] = 'x';
	s[o++] = 0x00;
	s[o++] = 0x01;
	CP_CHECK_INT(o, sizeof s);
	CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf4, p, 3, out), CP_OK);
	hmac_ref(key, sizeof key, s, sizeof s, want);
	CP_CHECK(memcmp(out, want, 32) == 0);

	/* The lengths keep parameter boundaries apart: ("ab","c") != ("a","bc"). */
	{
		uint8_t o1[32], o2[32];
		CpKdfParam a[2] = { { (const uint8_t *)"ab", 2 }, { (const uint8_t *)"c", 1 } };
		CpKdfParam b[2] = { { (const uint8_t *)"a", 1 }, { (const uint8_t *)"bc", 2 } };

		CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf0, a, 2, o1), CP_OK);
		CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf0, b, 2, o2), CP_OK);
		CP_CHECK(memcmp(o1, o2, 32) != 0);
	}

	/* 0xffff is the longest parameter; one more byte does not fit L. */
	p[0] = (CpKdfParam){ big, 0xffff };
	CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf0, p, 1, out), CP_OK);
	memset(out, 0x77, sizeof out);
	p[0] = (CpKdfParam){ big, 0x10000 };
	CP_CHECK_INT(cp_kdf(key, sizeof key, 0xf0, p, 1, out), CP_ERR_ARGUMENT);
	CP_CHECK(out[0] == 0x77 && out[31] == 0x77);
}

static void
test_bad_arguments(void)
{
	uint8_t key[32] = { 0 }, out[32];
	CpKdfParam p[CP_KDF_MAX_PARAMS + 1];

	for (size_t i = 0; i < CP_KDF_MAX_PARAMS + 1; i++)
		p[i] = (CpKdfParam){ key, 1 };
	CP_CHECK_INT(cp_kdf(key, 32, 0xf0, p, CP_KDF_MAX_PARAMS, out), CP_OK);
	CP_CHECK_INT(cp_kdf(key, 32, 0xf0, p, CP_KDF_MAX_PARAMS + 1, out), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_kdf(NULL, 32, 0xf0, p, 1, out), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_kdf(key, 0, 0xf0, p, 1, out), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_kdf(key, 32, 0xf0, NULL, 1, out), CP_ERR_ARGUMENT);
	p[0] = (CpKdfParam){ NULL, 4 };
	CP_CHECK_INT(cp_kdf(key, 32, 0xf0, p, 1, out), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_kdf(key, 32, 0xf0, p, 0, NULL), CP_ERR_ARGUMENT);
}

int
main(void)
{
	test_hand_computed();
	test_lengths();
	test_bad_arguments();
	return cp_test_done("test-kdf");
}
