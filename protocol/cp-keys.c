/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-keys.h"

#include <stdlib.h>
#include <string.h>

#include "cp-buf.h"
#include "cp-crypto.h"
#include "cp-kdf.h"
#include "cp-milenage.h"

#define CP_K_USIM_LEN 16
#define CP_OPC_LEN 16

static const char usim_k_label[] = "usim-k";

static CpSecret *
derive(const CpSecret *key, uint8_t fc, const CpKdfParam *params, size_t n, size_t out_len)
{
	uint8_t full[CP_KDF_LEN];
	CpSecret *s = NULL;

	if (cp_kdf(key->data, key->len, fc, params, n, full) == CP_OK)
		s = cp_secret_new_from(full, out_len);
	cp_cleanse(full, sizeof full);
	return s;
}

bool
cp_supi_valid(const char *supi)
{
	size_t n = 0;

	if (!supi)
		return false;
	for (; supi[n]; n++)
		if (supi[n] < '0' || supi[n] > '9' || n == 15)
			return false;
	return n >= 6;
}

CpSecret *
cp_keys_k_prime(const CpSecret *k_c, const uint8_t device_id[CP_DEVICE_ID_LEN],
		const char *supi)
{
	CpKdfParam p[2];

	if (!k_c || k_c->len != CP_K_AUSF_LEN || !device_id || !cp_supi_valid(supi))
		return NULL;
	p[0] = (CpKdfParam){ device_id, CP_DEVICE_ID_LEN };
	p[1] = (CpKdfParam){ (const uint8_t *)supi, strlen(supi) };
	return derive(k_c, CP_FC_K_PRIME, p, 2, CP_KDF_LEN);
}

CpSecret *
cp_keys_k_prime_gen(const CpSecret *k_c, const uint8_t device_id[CP_DEVICE_ID_LEN],
		    const char *supi, uint64_t generation)
{
	uint8_t gen[8];
	CpKdfParam p[3];

	if (generation <= 1)
		return cp_keys_k_prime(k_c, device_id, supi);
	if (!k_c || k_c->len != CP_K_AUSF_LEN || !device_id || !cp_supi_valid(supi))
		return NULL;
	cp_put_be64(gen, generation);
	p[0] = (CpKdfParam){ device_id, CP_DEVICE_ID_LEN };
	p[1] = (CpKdfParam){ (const uint8_t *)supi, strlen(supi) };
	p[2] = (CpKdfParam){ gen, sizeof gen };
	return derive(k_c, CP_FC_K_PRIME, p, 3, CP_KDF_LEN);
}

CpSecret *
cp_keys_k_usim(const CpSecret *k_prime)
{
	CpKdfParam p = { (const uint8_t *)usim_k_label, sizeof usim_k_label - 1 };

	if (!k_prime || k_prime->len != CP_KDF_LEN)
		return NULL;
	return derive(k_prime, CP_FC_K_USIM, &p, 1, CP_K_USIM_LEN);
}

CpSecret *
cp_keys_opc(const CpSecret *k_usim, const CpSecret *op)
{
	CpSecret *opc;

	if (!k_usim || k_usim->len != CP_K_USIM_LEN || !op || op->len != CP_OPC_LEN)
		return NULL;
	opc = cp_secret_new(CP_OPC_LEN);
	if (opc && cp_milenage_opc(k_usim->data, op->data, opc->data) != CP_OK)
		cp_secret_freep(&opc);
	return opc;
}

CpSecret *
cp_keys_k_sm(const CpSecret *k_prime, const uint8_t device_id[CP_DEVICE_ID_LEN])
{
	CpKdfParam p;

	if (!k_prime || k_prime->len != CP_KDF_LEN || !device_id)
		return NULL;
	p = (CpKdfParam){ device_id, CP_DEVICE_ID_LEN };
	return derive(k_prime, CP_FC_K_SM, &p, 1, CP_KDF_LEN);
}

CpSecret *
cp_keys_k2(const CpSecret *k_sm, const uint8_t nonce[CP_NONCE_LEN],
	   const uint8_t *device_info, size_t device_info_len)
{
	uint8_t h[CP_SHA256_LEN];
	CpKdfParam p[2];

	if (!k_sm || k_sm->len != CP_KDF_LEN || !nonce || !device_info || !device_info_len)
		return NULL;
	cp_sha256(device_info, device_info_len, h);
	p[0] = (CpKdfParam){ nonce, CP_NONCE_LEN };
	p[1] = (CpKdfParam){ h, sizeof h };
	return derive(k_sm, CP_FC_K2, p, 2, CP_KDF_LEN);
}

CpSecret *
cp_keys_k_prof(const CpSecret *k_sm, const uint8_t nonce[CP_NONCE_LEN])
{
	CpKdfParam p;

	if (!k_sm || k_sm->len != CP_KDF_LEN || !nonce)
		return NULL;
	p = (CpKdfParam){ nonce, CP_NONCE_LEN };
	return derive(k_sm, CP_FC_K_PROF, &p, 1, CP_KDF_LEN);
}

CpError
cp_device_id(CpKey *key, uint8_t out[CP_DEVICE_ID_LEN])
{
	uint8_t h[CP_SHA256_LEN];
	uint8_t *spki;
	size_t len = 0;

	if (!out)
		return CP_ERR_ARGUMENT;
	/* The device key is P-256 (docs/protocol.md); anything else is a wrong key. */
	if (!cp_pkey_is_p256(key))
		return CP_ERR_KEY;
	spki = cp_pubkey_spki(key, &len);
	if (!spki)
		return CP_ERR_CRYPTO;
	cp_sha256(spki, len, h);
	free(spki);
	memcpy(out, h, CP_DEVICE_ID_LEN);
	return CP_OK;
}
