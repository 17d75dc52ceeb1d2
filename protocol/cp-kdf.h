/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The generic KDF of 3GPP TS 33.220 Annex B.2:
 *   KDF(Key, FC, P0..Pn) = HMAC-SHA-256(Key, FC || P0 || L0 || ... || Pn || Ln)
 * with Li the length of Pi as two bytes big-endian.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cp-error.h"

#define CP_KDF_LEN 32
#define CP_KDF_MAX_PARAMS 8

typedef struct {
	const uint8_t *data;
	size_t len;    /* at most 0xffff */
} CpKdfParam;

CpError cp_kdf(const uint8_t *key, size_t key_len, uint8_t fc,
	       const CpKdfParam *params, size_t n_params,
	       uint8_t out[CP_KDF_LEN]);

/* Project-local FC values (docs/protocol.md, provisional). */
enum {
	CP_FC_K_PRIME = 0xF0,
	CP_FC_K_SM = 0xF1,
	CP_FC_K2 = 0xF2,
	CP_FC_K_PROF = 0xF3,
	CP_FC_K_USIM = 0xF4,
};
