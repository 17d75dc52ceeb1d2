/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ECIES of 3GPP TS 33.501 Annex C: Profile A (X25519) and Profile B (P-256,
 * compressed ephemeral point). X9.63 KDF (SHA-256) over the shared secret
 * with the ephemeral public key as SharedInfo gives 64 bytes: AES-128 key,
 * initial counter block, HMAC-SHA-256 key; AES-128-CTR; MAC is the first 8
 * bytes of HMAC-SHA-256 over the ciphertext.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include "cp-crypto.h"

#include "cp-error.h"

typedef enum {
	CP_SUITE_A = 0x01,   /* X25519 */
	CP_SUITE_B = 0x02,   /* P-256, mandatory */
} CpSuite;

#define CP_ECIES_MAC_LEN 8
#define CP_ECIES_EPH_MAX 33

/* 32 for A, 33 for B, 0 for an unknown suite. */
size_t cp_ecies_eph_len(CpSuite suite);

/*
 * Encrypt len bytes to the recipient's public key. eph_priv is NULL for a
 * fresh ephemeral key, or a fixed one (test vectors). shared_out, if not
 * NULL, receives the ECDH secret (for test vectors only).
 */
CpError cp_ecies_encrypt(CpSuite suite, CpKey *recipient,
			 CpKey *eph_priv,
			 const uint8_t *plain, size_t len,
			 uint8_t eph_pub[CP_ECIES_EPH_MAX],
			 uint8_t *cipher,
			 uint8_t mac[CP_ECIES_MAC_LEN],
			 uint8_t shared_out[32]);

/*
 * Check the MAC (constant time) and decrypt. CP_ERR_POINT for an ephemeral
 * key not on the curve, CP_ERR_DECRYPT for a wrong MAC; plain is untouched
 * on error.
 */
CpError cp_ecies_decrypt(CpSuite suite, CpKey *recipient_priv,
			 const uint8_t *eph_pub, size_t eph_len,
			 const uint8_t *cipher, size_t len,
			 const uint8_t mac[CP_ECIES_MAC_LEN],
			 uint8_t *plain,
			 uint8_t shared_out[32]);
