/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Operations per second of what a device does with a profile, and of its
 * parts, each beside the bare OpenSSL primitive it is built on, measured
 * in the same run. The ratio says what the protocol layer costs on top.
 *
 *   cp-bench-protocol [seconds per line, default 0.3]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cellprov.h"

static double line_seconds = 0.3;

typedef void (*BenchFn)(void *data);

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run in growing batches until line_seconds have passed; ops per second. */
static double
measure(BenchFn fn, void *data)
{
	unsigned long total = 0, batch = 1;
	double start = now(), elapsed;

	fn(data);   /* warm up: first fetches, page faults */
	start = now();
	do {
		for (unsigned long i = 0; i < batch; i++)
			fn(data);
		total += batch;
		elapsed = now() - start;
		if (batch < (1ul << 20))
			batch *= 2;
	} while (elapsed < line_seconds);
	return (double)total / elapsed;
}

static void
line(const char *ours, BenchFn fn, void *data, const char *bare, BenchFn bare_fn, void *bare_data)
{
	double a = measure(fn, data);
	double b = measure(bare_fn, bare_data);

	printf("%-30s %9.0f   %-32s %9.0f   %5.2f\n", ours, a, bare, b, a / b);
	fflush(stdout);
}

static void
fail(const char *what)
{
	fprintf(stderr, "cp-bench-protocol: %s failed\n", what);
	exit(1);
}

/* ---- fixture: one valid profile for one device ---- */

typedef struct {
	EVP_PKEY *device_key;
	EVP_PKEY *peer;            /* an ephemeral public key, for bare ECDH */
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint8_t device_info[64];
	size_t device_info_len;
	uint8_t suites[1];
	uint8_t *profile;
	size_t profile_len;
	size_t mac_offset;
	CpSecret *k_prime;
	CpSecret *k_sm;
	CpSecret *k_prof;
	uint8_t nonce[CP_NONCE_LEN];
	uint8_t enc_cred[CP_ENC_CRED_MAX];
	size_t enc_cred_len;
	uint8_t cred_plain[CP_ENC_CRED_PLAIN_LEN];
	EVP_CIPHER_CTX *aes;
	uint8_t aes_key[16];
	uint8_t icb[16];
	uint8_t kdf_s[1 + 16 + 2 + 32 + 2];
	CpAnchors *anchors;        /* the operator's root */
} Fixture;

static void
fixture_init(Fixture *f)
{
	cp_auto_secret *k_c = cp_secret_new(CP_K_AUSF_LEN);
	cp_auto_secret *op = cp_secret_new(16);
	cp_auto_secret *k_usim = NULL, *opc = NULL;
	cp_auto_buf buf = CP_BUF_INIT;
	EVP_PKEY *op_root, *op_sm;
	CpProfile p;
	uint8_t c[33];

	memset(f, 0, sizeof *f);
	f->device_key = cp_p256_generate();
	if (!f->device_key || cp_device_id(f->device_key, f->device_id))
		fail("device key");
	{
		EVP_PKEY *eph = cp_p256_generate();

		cp_p256_public_compressed(eph, c);
		f->peer = cp_p256_from_public(c, 33);
		EVP_PKEY_free(eph);
	}
	f->device_info_len = sizeof f->device_info;
	cp_random(f->device_info, f->device_info_len);
	f->suites[0] = CP_SUITE_B;
	cp_random(k_c->data, k_c->len);
	cp_random(op->data, op->len);
	cp_random(f->nonce, sizeof f->nonce);

	f->k_prime = cp_keys_k_prime(k_c, f->device_id, "001010000000001");
	k_usim = cp_keys_k_usim(f->k_prime);
	opc = cp_keys_opc(k_usim, op);
	f->k_sm = cp_keys_k_sm(f->k_prime, f->device_id);
	f->k_prof = cp_keys_k_prof(f->k_sm, f->nonce);
	if (!f->k_prime || !k_usim || !opc || !f->k_sm || !f->k_prof)
		fail("key schedule");

	memset(&p, 0, sizeof p);
	p.version = CP_PROFILE_VERSION;
	memcpy(p.device_id, f->device_id, sizeof p.device_id);
	p.profile_seq = 7;
	p.operation = CP_OP_CLAIM;
	p.binding_version = 1;
	/* The operator: a root and the SM's certificate, as a real chain. */
	op_root = cp_p256_generate();
	op_sm = cp_p256_generate();
	{
		uint8_t root[CP_CHAIN_MAX], sm[CP_CHAIN_MAX];
		size_t root_len = 0, sm_len = 0;
		char *pem;

		if (!op_root || !op_sm ||
		    cp_cert_make(op_root, "Bench Operator", "root", true, op_root, NULL, 0, 1,
				 1700000000, 3650, root, &root_len) ||
		    cp_cert_make(op_sm, "Bench Operator", "sm", false, op_root, root, root_len, 2,
				 1700000000, 3650, sm, &sm_len))
			fail("operator certificates");
		memcpy(p.op_chain, sm, sm_len);
		memcpy(p.op_chain + sm_len, root, root_len);
		p.op_chain_len = sm_len + root_len;
		pem = cp_cert_to_pem(root, root_len);
		if (!pem || cp_anchors_from_pem(pem, strlen(pem), &f->anchors))
			fail("anchors");
		free(pem);
	}
	memcpy(p.nonce, f->nonce, sizeof p.nonce);
	if (cp_enc_cred_seal(CP_SUITE_B, f->device_key, NULL, f->k_prime, opc,
			     p.enc_cred, &p.enc_cred_len))
		fail("cp_enc_cred_seal");
	memcpy(f->enc_cred, p.enc_cred, p.enc_cred_len);
	f->enc_cred_len = p.enc_cred_len;
	strcpy(p.plmn, "00101");
	strcpy(p.network_name, "cellprov test network");
	strcpy(p.supi, "001010000000001");
	strcpy(p.apn, "internet");
	if (cp_profile_encode(&p, op_sm, f->k_prof, &buf) || buf.failed)
		fail("cp_profile_encode");
	EVP_PKEY_free(op_root);
	EVP_PKEY_free(op_sm);
	f->profile = cp_buf_steal(&buf, &f->profile_len);
	f->mac_offset = f->profile_len - CP_TLV_HDR - CP_MAC_LEN;

	f->aes = EVP_CIPHER_CTX_new();
	cp_random(f->aes_key, sizeof f->aes_key);
	cp_random(f->icb, sizeof f->icb);
	cp_random(f->kdf_s, sizeof f->kdf_s);
}

static void
fixture_clear(Fixture *f)
{
	cp_anchors_free(f->anchors);
	EVP_PKEY_free(f->device_key);
	EVP_PKEY_free(f->peer);
	free(f->profile);
	cp_secret_free(f->k_prime);
	cp_secret_free(f->k_sm);
	cp_secret_free(f->k_prof);
	EVP_CIPHER_CTX_free(f->aes);
}

/* ---- ours ---- */

static void
run_profile_verify(void *data)
{
	Fixture *f = data;
	CpVerifyContext ctx = {
		.device_id = f->device_id,
		.device_key = f->device_key,
		.suites = f->suites,
		.n_suites = 1,
		.last_seq = 1,
		.now = 0,
		.device_info = f->device_info,
		.device_info_len = f->device_info_len,
		.anchors = f->anchors,
	};
	CpProfileKeys keys;
	CpProfile p;

	if (cp_profile_verify(f->profile, f->profile_len, &ctx, &p, &keys))
		fail("cp_profile_verify");
	cp_profile_keys_clear(&keys);
}

static void
run_ecies_decrypt(void *data)
{
	Fixture *f = data;
	const uint8_t *e = f->enc_cred;

	if (cp_ecies_decrypt(CP_SUITE_B, f->device_key, e + 1, 33, e + 34,
			     CP_ENC_CRED_PLAIN_LEN, e + 34 + CP_ENC_CRED_PLAIN_LEN,
			     f->cred_plain, NULL))
		fail("cp_ecies_decrypt");
}

static void
run_key_schedule(void *data)
{
	Fixture *f = data;
	CpSecret *a = cp_keys_k_usim(f->k_prime);
	CpSecret *b = cp_keys_k_sm(f->k_prime, f->device_id);
	CpSecret *c = b ? cp_keys_k_prof(b, f->nonce) : NULL;
	CpSecret *d = b ? cp_keys_k2(b, f->nonce, f->device_info, f->device_info_len) : NULL;

	if (!a || !b || !c || !d)
		fail("key schedule");
	cp_secret_free(a);
	cp_secret_free(b);
	cp_secret_free(c);
	cp_secret_free(d);
}

static void
run_kdf(void *data)
{
	Fixture *f = data;
	uint8_t h[32], out[32];
	CpKdfParam p[2] = { { f->nonce, 16 }, { h, 32 } };

	memset(h, 0x5a, sizeof h);
	if (cp_kdf(f->k_sm->data, f->k_sm->len, CP_FC_K2, p, 2, out))
		fail("cp_kdf");
}

static void
run_mac_verify(void *data)
{
	Fixture *f = data;
	uint8_t mac[32];

	if (cp_hmac_sha256(f->k_prof->data, f->k_prof->len, f->profile, f->mac_offset, mac) ||
	    !cp_memeq_consttime(mac, f->profile + f->profile_len - CP_MAC_LEN, CP_MAC_LEN))
		fail("profile mac");
}

static void
run_aes_ctr(void *data)
{
	Fixture *f = data;
	uint8_t out[CP_ENC_CRED_PLAIN_LEN];

	if (cp_aes128_ctr(f->aes_key, f->icb, f->cred_plain, sizeof out, out))
		fail("cp_aes128_ctr");
}

static void
run_milenage(void *data)
{
	Fixture *f = data;
	CpMilenage m;

	if (cp_milenage(f->aes_key, f->icb, f->nonce, f->nonce, f->nonce, &m))
		fail("cp_milenage");
}

/* ---- bare OpenSSL ---- */

/* EVP_PKEY_derive_set_peer's default: the full public key check. */
static void
bare_ecdh(void *data)
{
	Fixture *f = data;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->device_key, NULL);
	uint8_t z[32];
	size_t n = sizeof z;

	if (!ctx || EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer(ctx, f->peer) <= 0 ||
	    EVP_PKEY_derive(ctx, z, &n) <= 0)
		fail("EVP_PKEY_derive");
	EVP_PKEY_CTX_free(ctx);
}

static void
bare_hmac_kdf(void *data)
{
	Fixture *f = data;
	uint8_t out[32];

	if (!HMAC(EVP_sha256(), f->k_sm->data, (int)f->k_sm->len, f->kdf_s, sizeof f->kdf_s, out, NULL))
		fail("HMAC");
}

static void
bare_hmac_x4(void *data)
{
	for (int i = 0; i < 4; i++)
		bare_hmac_kdf(data);
}

static void
bare_hmac_profile(void *data)
{
	Fixture *f = data;
	uint8_t out[32];

	if (!HMAC(EVP_sha256(), f->k_prof->data, (int)f->k_prof->len, f->profile, f->mac_offset,
		  out, NULL))
		fail("HMAC");
}

static void
bare_aes_ctr(void *data)
{
	Fixture *f = data;
	uint8_t out[CP_ENC_CRED_PLAIN_LEN];
	int n = 0;

	/* The cheapest honest use: one long-lived context, re-keyed per message. */
	if (!EVP_EncryptInit_ex(f->aes, EVP_aes_128_ctr(), NULL, f->aes_key, f->icb) ||
	    !EVP_EncryptUpdate(f->aes, out, &n, f->cred_plain, sizeof out))
		fail("EVP_EncryptUpdate");
}

static void
bare_aes_ecb_x6(void *data)
{
	Fixture *f = data;
	uint8_t out[16];
	int n = 0;

	if (!EVP_EncryptInit_ex(f->aes, EVP_aes_128_ecb(), NULL, f->aes_key, NULL))
		fail("EVP_EncryptInit_ex");
	for (int i = 0; i < 6; i++)
		if (!EVP_EncryptUpdate(f->aes, out, &n, f->icb, 16))
			fail("EVP_EncryptUpdate");
}

int
main(int argc, char **argv)
{
	Fixture f;

	if (argc > 1) {
		line_seconds = atof(argv[1]);
		if (line_seconds <= 0) {
			fprintf(stderr, "usage: cp-bench-protocol [seconds per line]\n");
			return 2;
		}
	}
	fixture_init(&f);
	printf("cellprov protocol library, %s, %.1f s per figure, profile %zu bytes\n",
	       OpenSSL_version(OPENSSL_VERSION), line_seconds, f.profile_len);
	printf("%-30s %9s   %-32s %9s   %5s\n", "operation", "ops/s", "bare OpenSSL primitive",
	       "ops/s", "ratio");
	line("profile verify-and-decrypt", run_profile_verify, &f,
	     "P-256 ECDH (EVP, checked peer)", bare_ecdh, &f);
	line("ECIES decrypt (B, 48 bytes)", run_ecies_decrypt, &f,
	     "P-256 ECDH (EVP, checked peer)", bare_ecdh, &f);
	line("device key schedule (4 KDFs)", run_key_schedule, &f,
	     "HMAC() x4 (53 bytes)", bare_hmac_x4, &f);
	line("KDF (K'' form)", run_kdf, &f,
	     "HMAC() (53 bytes)", bare_hmac_kdf, &f);
	line("profile mac verify", run_mac_verify, &f,
	     "HMAC() (profile bytes)", bare_hmac_profile, &f);
	line("AES-128-CTR (48 bytes)", run_aes_ctr, &f,
	     "EVP AES-128-CTR (48 bytes)", bare_aes_ctr, &f);
	line("Milenage f1-f5*", run_milenage, &f,
	     "EVP AES-128 block x6", bare_aes_ecb_x6, &f);
	fixture_clear(&f);
	return 0;
}
