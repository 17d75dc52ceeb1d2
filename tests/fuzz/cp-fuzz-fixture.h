/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fixed device of the fuzz targets and their corpus generator: a
 * device key, its device record info, a verify context and the keys the
 * network side would hold for it. Fixed, so that the committed corpus
 * still reaches past the mac of cp_profile_verify().
 */
#pragma once

#include <openssl/evp.h>

#include "cp-buf.h"
#include "cp-records.h"
#include "cp-secret.h"

typedef struct {
	EVP_PKEY *device_key;
	EVP_PKEY *eph_key;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint8_t nonce[CP_NONCE_LEN];
	uint8_t suites[2];
	CpDeviceRecord dr;
	CpBuf info;                     /* device record tags 0x01-0x06 */
	CpSecret *k_prime, *opc, *k_sm, *k_prof, *k2;
	CpProfile profile;              /* valid for ctx; mac made with k_prof */
	CpVerifyContext ctx;
} CpFuzzFixture;

/* Built on first use; aborts if the library cannot build it. */
const CpFuzzFixture *cp_fuzz_fixture(void);
