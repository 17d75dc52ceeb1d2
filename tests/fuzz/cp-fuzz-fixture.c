/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-fuzz-fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp-crypto.h"
#include "cp-fuzz-keys.h"
#include "cp-keys.h"

static const uint8_t eph_priv[32] = {
	0x71, 0x2c, 0x9e, 0x03, 0x58, 0xb4, 0x1d, 0xe6, 0x8f, 0x40, 0x27, 0xca, 0x95, 0x6b, 0x32, 0x0e,
	0xd1, 0x84, 0x5a, 0x1f, 0x66, 0xc3, 0x09, 0xb8, 0x2d, 0x7e, 0xf0, 0x43, 0x9a, 0x15, 0x6c, 0x21,
};
static const uint8_t k_c[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t opc[16] = {
	0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf,
};
static const uint8_t op_root_priv[32] = {
	0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
	0x76, 0x2e, 0x71, 0x60, 0xf3, 0x8b, 0x4d, 0xa5, 0x6a, 0x78, 0x4d, 0x90, 0x45, 0x19, 0x0c, 0xfe,
};
static const char supi[] = "001010000000001";

static CpFuzzFixture fixture;
static bool built;

static void
need(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz fixture: %s failed\n", what);
		abort();
	}
}

const CpFuzzFixture *
cp_fuzz_fixture(void)
{
	CpFuzzFixture *f = &fixture;
	CpSecret *kc;

	if (built)
		return f;

	f->device_key = cp_p256_from_private(cp_fuzz_device_priv);
	f->eph_key = cp_p256_from_private(eph_priv);
	need(f->device_key && f->eph_key, "keys");
	need(cp_device_id(f->device_key, f->device_id) == CP_OK, "device id");
	for (int i = 0; i < CP_NONCE_LEN; i++)
		f->nonce[i] = (uint8_t)(0x40 + i);

	memcpy(f->dr.device_id, f->device_id, CP_DEVICE_ID_LEN);
	strcpy(f->dr.manufacturer, "Example Ltd");
	strcpy(f->dr.model, "GW-1");
	strcpy(f->dr.serial, "SN0001");
	f->dr.suites[0] = CP_SUITE_B;
	f->dr.n_suites = 1;
	f->dr.att_counter = 1;
	memset(f->dr.att_random, 0x42, sizeof f->dr.att_random);
	cp_buf_init(&f->info);
	need(cp_device_record_info(&f->dr, &f->info) == CP_OK, "device info");

	kc = cp_secret_new_from(k_c, sizeof k_c);
	f->k_prime = cp_keys_k_prime(kc, f->device_id, supi);
	cp_secret_free(kc);
	f->opc = cp_secret_new_from(opc, sizeof opc);
	f->k_sm = cp_keys_k_sm(f->k_prime, f->device_id);
	f->k_prof = cp_keys_k_prof(f->k_sm, f->nonce);
	f->k2 = cp_keys_k2(f->k_sm, f->nonce, f->info.data, f->info.len);
	need(f->k_prime && f->opc && f->k_sm && f->k_prof && f->k2, "key schedule");

	memcpy(f->profile.device_id, f->device_id, CP_DEVICE_ID_LEN);
	f->profile.profile_seq = 5;
	memcpy(f->profile.nonce, f->nonce, CP_NONCE_LEN);
	f->profile.has_not_after = true;
	f->profile.not_after = 2000000000;
	need(cp_enc_cred_seal(CP_SUITE_B, f->device_key, f->eph_key, f->k_prime, f->opc,
			      f->profile.enc_cred, &f->profile.enc_cred_len) == CP_OK, "enc_cred");
	strcpy(f->profile.plmn, "00101");
	strcpy(f->profile.network_name, "cellprov test network");
	strcpy(f->profile.supi, supi);
	strcpy(f->profile.apn, "internet");
	f->profile.has_msisdn = true;
	strcpy(f->profile.msisdn, "491701234567");
	f->profile.operation = CP_OP_CLAIM;
	f->profile.binding_version = 1;

	/* The operator: root, SM certificate, chain = SM || root. */
	f->op_root_key = cp_p256_from_private(op_root_priv);
	f->op_sm_key = cp_p256_from_private(cp_fuzz_op_sm_priv);
	need(f->op_root_key && f->op_sm_key, "operator keys");
	{
		uint8_t root[CP_CHAIN_MAX], sm[CP_CHAIN_MAX];
		size_t root_len = 0, sm_len = 0;
		char *pem;

		need(cp_cert_make(f->op_root_key, "Fuzz Operator", "root", true, f->op_root_key, NULL, 0,
				  1, 1700000000, 3650, root, &root_len) == CP_OK &&
		     cp_cert_make(f->op_sm_key, "Fuzz Operator", "sm", false, f->op_root_key, root,
				  root_len, 2, 1700000000, 3650, sm, &sm_len) == CP_OK &&
		     sm_len + root_len <= CP_CHAIN_MAX, "operator certificates");
		memcpy(f->profile.op_chain, sm, sm_len);
		memcpy(f->profile.op_chain + sm_len, root, root_len);
		f->profile.op_chain_len = sm_len + root_len;
		pem = cp_cert_to_pem(root, root_len);
		need(pem && cp_anchors_from_pem(pem, strlen(pem), &f->anchors) == CP_OK, "anchors");
		free(pem);
	}

	f->suites[0] = CP_SUITE_B;
	f->suites[1] = CP_SUITE_A;
	f->ctx.device_id = f->device_id;
	f->ctx.device_key = f->device_key;
	f->ctx.suites = f->suites;
	f->ctx.n_suites = 1;
	f->ctx.last_seq = 4;
	f->ctx.now = 1700000000;
	f->ctx.device_info = f->info.data;
	f->ctx.device_info_len = f->info.len;
	f->ctx.anchors = f->anchors;
	built = true;
	return f;
}
