/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The docs/protocol.md key schedule:
 *   K'     = KDF(K_c, 0xF0, device_id, SUPI_dev)          key generation 1
 *   K'     = KDF(K_c, 0xF0, device_id, SUPI_dev, gen)     gen >= 2, 8 bytes BE
 *   K_usim = first 16 bytes of KDF(K', 0xF4, "usim-k")
 *   OPc    = Milenage OPc(K_usim, OP)
 *   K_SM   = KDF(K', 0xF1, device_id)
 *   K''    = KDF(K_SM, 0xF2, nonce, SHA-256(device record tags 0x01-0x06))
 *   K_prof = KDF(K_SM, 0xF3, nonce)
 * Each function returns a new CpSecret, or NULL on a bad argument (a SUPI
 * that is not 6-15 ASCII digits, a key of the wrong length) or no memory.
 */
#pragma once

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include "cp-crypto.h"

#include "cp-error.h"
#include "cp-secret.h"

#define CP_DEVICE_ID_LEN 16
#define CP_NONCE_LEN 16
#define CP_K_AUSF_LEN 32

CpSecret *cp_keys_k_prime(const CpSecret *k_c, const uint8_t device_id[CP_DEVICE_ID_LEN],
			  const char *supi);
/* K' of a key generation: 0 and 1 are the first (as cp_keys_k_prime);
 * each re-provisioning of a device under the same subscription takes the
 * next, so that its keys change. Only the AUSF computes K'. */
CpSecret *cp_keys_k_prime_gen(const CpSecret *k_c, const uint8_t device_id[CP_DEVICE_ID_LEN],
			      const char *supi, uint64_t generation);
CpSecret *cp_keys_k_usim(const CpSecret *k_prime);
CpSecret *cp_keys_opc(const CpSecret *k_usim, const CpSecret *op);
CpSecret *cp_keys_k_sm(const CpSecret *k_prime, const uint8_t device_id[CP_DEVICE_ID_LEN]);
CpSecret *cp_keys_k2(const CpSecret *k_sm, const uint8_t nonce[CP_NONCE_LEN],
		     const uint8_t *device_info, size_t device_info_len);
CpSecret *cp_keys_k_prof(const CpSecret *k_sm, const uint8_t nonce[CP_NONCE_LEN]);

/* DeviceID: first 16 bytes of SHA-256 over the public key's DER SPKI. */
CpError cp_device_id(CpKey *key, uint8_t out[CP_DEVICE_ID_LEN]);

/* True for 6-15 ASCII digits. */
bool cp_supi_valid(const char *supi);
