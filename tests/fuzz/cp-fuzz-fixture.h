/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fixed device of the fuzz targets and their corpus generator: a
 * device key, its device record info, a verify context, the keys the
 * network side would hold for it, and an operator. Fixed keys, so that the
 * committed corpus still reaches past the operator's signature and the
 * mac of cp_profile_verify(): the certificates are made anew each run (an
 * ECDSA signature is random) but certify the same keys under the same
 * names, which is all the chain check looks at.
 */
#pragma once

#include <openssl/evp.h>

#include "cp-crypto-openssl.h"
#include "cp-buf.h"
#include "cp-records.h"
#include "cp-secret.h"

typedef struct {
	CpKey *device_key;
	CpKey *eph_key;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint8_t nonce[CP_NONCE_LEN];
	uint8_t suites[2];
	CpDeviceRecord dr;
	CpBuf info;                     /* device record tags 0x01-0x06 */
	CpSecret *k_prime, *opc, *k_sm, *k_prof, *k2;
	CpKey *op_root_key, *op_sm_key;  /* the operator: fixed keys */
	CpAnchors *anchors;             /* its root, the device's trust anchor */
	CpProfile profile;              /* valid for ctx; op_chain set; mac made with k_prof */
	CpVerifyContext ctx;
} CpFuzzFixture;

/* Built on first use; aborts if the library cannot build it. */
const CpFuzzFixture *cp_fuzz_fixture(void);
