/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-kdf.h"

#include "cp-secret.h"

#include "cp-buf.h"
#include "cp-crypto.h"

CpError
cp_kdf(const uint8_t *key, size_t key_len, uint8_t fc,
       const CpKdfParam *params, size_t n_params,
       uint8_t out[CP_KDF_LEN])
{
	CpBuf s = CP_BUF_INIT;
	CpError err;

	if (!key || !key_len || !out || n_params > CP_KDF_MAX_PARAMS ||
	    (n_params && !params))
		return CP_ERR_ARGUMENT;
	for (size_t i = 0; i < n_params; i++)
		if (params[i].len > 0xffff || (params[i].len && !params[i].data))
			return CP_ERR_ARGUMENT;

	/* S = FC || P0 || L0 || ... || Pn || Ln (TS 33.220 B.2.2) */
	cp_buf_append_u8(&s, fc);
	for (size_t i = 0; i < n_params; i++) {
		cp_buf_append(&s, params[i].data, params[i].len);
		cp_buf_append_be16(&s, (uint16_t)params[i].len);
	}
	if (s.failed)
		err = CP_ERR_CRYPTO;
	else
		err = cp_hmac_sha256(key, key_len, s.data, s.len, out);
	/* The parameters may be key material (K_SM's inputs are). */
	cp_buf_clear(&s);
	return err;
}
