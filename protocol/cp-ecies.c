/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ECIES of TS 33.501 C.3 (SUCI protection schemes), reused for enc_cred.
 * Key data from the X9.63 KDF: AES-128 key (16) | ICB (16) | MAC key (32).
 */
#include "cp-ecies.h"

#include <stdlib.h>
#include <string.h>

#include "cp-crypto.h"
#include "cp-secret.h"

#define ENC_KEY_LEN 16
#define ICB_LEN 16
#define MAC_KEY_LEN 32
#define KEY_DATA_LEN (ENC_KEY_LEN + ICB_LEN + MAC_KEY_LEN)

size_t
cp_ecies_eph_len(CpSuite suite)
{
	switch (suite) {
	case CP_SUITE_A:
		return 32;
	case CP_SUITE_B:
		return 33;
	}
	return 0;
}

static bool
key_fits(CpSuite suite, CpKey *key)
{
	return suite == CP_SUITE_A ? cp_pkey_is_x25519(key) : cp_pkey_is_p256(key);
}

static CpError
eph_public(CpSuite suite, CpKey *eph, uint8_t out[CP_ECIES_EPH_MAX])
{
	return suite == CP_SUITE_A ? cp_x25519_public(eph, out)
				   : cp_p256_public_compressed(eph, out);
}

/* Z -> key data, with the ephemeral key as sent as SharedInfo. */
static CpError
key_data(const uint8_t z[32], const uint8_t *eph_pub, size_t eph_len,
	 uint8_t kd[KEY_DATA_LEN])
{
	return cp_x963_kdf_sha256(z, 32, eph_pub, eph_len, kd, KEY_DATA_LEN);
}

static CpError
compute_mac(const uint8_t kd[KEY_DATA_LEN], const uint8_t *cipher, size_t len,
	    uint8_t mac[CP_HMAC_SHA256_LEN])
{
	return cp_hmac_sha256(kd + ENC_KEY_LEN + ICB_LEN, MAC_KEY_LEN, cipher, len, mac);
}

CpError
cp_ecies_encrypt(CpSuite suite, CpKey *recipient,
		 CpKey *eph_priv,
		 const uint8_t *plain, size_t len,
		 uint8_t eph_pub[CP_ECIES_EPH_MAX],
		 uint8_t *cipher,
		 uint8_t mac[CP_ECIES_MAC_LEN],
		 uint8_t shared_out[32])
{
	uint8_t z[32], kd[KEY_DATA_LEN], full_mac[CP_HMAC_SHA256_LEN];
	uint8_t eph[CP_ECIES_EPH_MAX];
	CpKey *fresh = NULL;
	size_t eph_len = cp_ecies_eph_len(suite);
	CpError err;

	if (!eph_len)
		return CP_ERR_SUITE;
	if ((!plain && len) || (!cipher && len) || !eph_pub || !mac)
		return CP_ERR_ARGUMENT;
	if (!key_fits(suite, recipient))
		return CP_ERR_KEY;
	if (eph_priv) {
		if (!key_fits(suite, eph_priv) || !cp_pkey_has_private(eph_priv))
			return CP_ERR_KEY;
	} else {
		fresh = suite == CP_SUITE_A ? cp_x25519_generate() : cp_p256_generate();
		if (!fresh)
			return CP_ERR_CRYPTO;
		eph_priv = fresh;
	}

	if ((err = eph_public(suite, eph_priv, eph)) != CP_OK ||
	    (err = cp_ecdh(eph_priv, recipient, z)) != CP_OK ||
	    (err = key_data(z, eph, eph_len, kd)) != CP_OK ||
	    (err = cp_aes128_ctr(kd, kd + ENC_KEY_LEN, plain, len, cipher)) != CP_OK ||
	    (err = compute_mac(kd, cipher, len, full_mac)) != CP_OK)
		goto out;

	memcpy(eph_pub, eph, eph_len);
	memcpy(mac, full_mac, CP_ECIES_MAC_LEN);
	if (shared_out)
		memcpy(shared_out, z, sizeof z);
out:
	if (err != CP_OK && len && cipher)
		cp_cleanse(cipher, len);
	cp_cleanse(z, sizeof z);
	cp_cleanse(kd, sizeof kd);
	cp_key_free(fresh);
	return err;
}

CpError
cp_ecies_decrypt(CpSuite suite, CpKey *recipient_priv,
		 const uint8_t *eph_pub, size_t eph_len,
		 const uint8_t *cipher, size_t len,
		 const uint8_t mac[CP_ECIES_MAC_LEN],
		 uint8_t *plain,
		 uint8_t shared_out[32])
{
	uint8_t z[32], kd[KEY_DATA_LEN], full_mac[CP_HMAC_SHA256_LEN];
	uint8_t *tmp = NULL;
	CpKey *eph = NULL;
	CpError err;

	if (!cp_ecies_eph_len(suite))
		return CP_ERR_SUITE;
	if (!eph_pub || (!cipher && len) || (!plain && len) || !mac)
		return CP_ERR_ARGUMENT;
	/* The caller splits enc_cred by suite, so a mismatch is its bug. */
	if (eph_len != cp_ecies_eph_len(suite))
		return CP_ERR_ARGUMENT;
	if (!key_fits(suite, recipient_priv))
		return CP_ERR_KEY;

	if (suite == CP_SUITE_B) {
		/* No key object for the ephemeral point; a recipient without
		 * its private scalar is CP_ERR_KEY from there. */
		err = cp_p256_ecdh_encoded(recipient_priv, eph_pub, eph_len, z);
	} else if (!cp_pkey_has_private(recipient_priv)) {
		return CP_ERR_KEY;
	} else {
		eph = cp_x25519_from_public(eph_pub);
		if (!eph)
			return CP_ERR_POINT;
		err = cp_ecdh(recipient_priv, eph, z);
	}
	if (err != CP_OK)
		goto out;
	if ((err = key_data(z, eph_pub, eph_len, kd)) != CP_OK ||
	    (err = compute_mac(kd, cipher, len, full_mac)) != CP_OK)
		goto out;
	/* Encrypt-then-MAC: nothing is decrypted under a wrong MAC. */
	if (!cp_memeq_consttime(full_mac, mac, CP_ECIES_MAC_LEN)) {
		err = CP_ERR_DECRYPT;
		goto out;
	}
	if (len) {
		/* Decrypt aside so that plain stays untouched if AES fails. */
		tmp = malloc(len);
		if (!tmp) {
			err = CP_ERR_CRYPTO;
			goto out;
		}
		if ((err = cp_aes128_ctr(kd, kd + ENC_KEY_LEN, cipher, len, tmp)) != CP_OK)
			goto out;
		memcpy(plain, tmp, len);
	}
	if (shared_out)
		memcpy(shared_out, z, sizeof z);
	err = CP_OK;
out:
	if (tmp) {
		cp_cleanse(tmp, len);
		free(tmp);
	}
	cp_cleanse(z, sizeof z);
	cp_cleanse(kd, sizeof kd);
	cp_key_free(eph);
	return err;
}
