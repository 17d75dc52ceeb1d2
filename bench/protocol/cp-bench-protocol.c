/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Operations per second of what a device does with a profile, and of its
 * parts, each beside the bare OpenSSL primitives it is built on, measured
 * in the same run the way `openssl speed` measures them (contexts and keys
 * prepared outside the loop, the loop one derive, one verify of a 20-byte
 * digest, one MAC or one cipher update). The ratio says what the protocol
 * layer costs on top. Profile verify-and-decrypt is compared with the sum
 * of every primitive protocol version 2 obliges a device to run: one ECDH,
 * two ECDSA verifications (the SM's certificate under the operator root,
 * the profile under the SM's key), the hashes, the MACs, the KDFs and the
 * AES. Then `openssl speed` itself runs, and its figures are printed
 * beside the in-process ones.
 *
 *   cp-bench-protocol [seconds per line, default 0.3] [--profile-only]
 *
 * --profile-only loops on verify-and-decrypt alone (for perf record).
 * OPENSSL names the openssl program (default "openssl"; "" skips it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "cp-crypto-openssl.h"
#include "cellprov.h"

static double line_seconds = 0.3;

typedef void (*BenchFn)(void *data);

/*
 * CPU time of the process, not wall time: on a shared machine a figure
 * then counts the work, not the time other programs held the CPU.
 * openssl speed counts wall time; on an idle machine the two agree.
 */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run in growing batches until the time given has passed; ops per second. */
static double
measure_for(BenchFn fn, void *data, double seconds)
{
	unsigned long total = 0, batch = 1;
	double start, elapsed;

	fn(data);   /* warm up: first fetches, page faults */
	start = now();
	do {
		for (unsigned long i = 0; i < batch; i++)
			fn(data);
		total += batch;
		elapsed = now() - start;
		if (batch < (1ul << 20))
			batch *= 2;
	} while (elapsed < seconds);
	return (double)total / elapsed;
}

/*
 * The machine is shared: each figure is the best of ROUNDS, and the two
 * sides of a line alternate, so that a busy moment hurts neither alone.
 */
#define ROUNDS 5

static void
measure_pair(BenchFn a_fn, void *a_data, double *a, BenchFn b_fn, void *b_data, double *b)
{
	*a = *b = 0;
	for (int r = 0; r < ROUNDS; r++) {
		double x = measure_for(a_fn, a_data, line_seconds / ROUNDS);
		double y = b_fn ? measure_for(b_fn, b_data, line_seconds / ROUNDS) : 0;

		if (x > *a)
			*a = x;
		if (y > *b)
			*b = y;
	}
}

static double
measure(BenchFn fn, void *data)
{
	double a, b;

	measure_pair(fn, data, &a, NULL, NULL, &b);
	return a;
}

static void
line(const char *ours, BenchFn fn, void *data, const char *bare, BenchFn bare_fn, void *bare_data)
{
	double a, b;

	measure_pair(fn, data, &a, bare_fn, bare_data, &b);
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
	CpKey *device_key;
	CpKey *peer;            /* an ephemeral public key, for bare ECDH */
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
	/* The bare primitives, prepared as openssl speed prepares them. */
	EVP_PKEY_CTX *ecdh;        /* device key, peer set */
	EVP_PKEY_CTX *verify;      /* SM key, verify_init done */
	uint8_t digest[20];        /* what openssl speed signs */
	uint8_t sig[CP_ECDSA_MAX];
	uint8_t op_sig[CP_ECDSA_MAX];
	size_t op_sig_len;
	size_t bare_sig_len;
	EVP_MAC_CTX *hmac;         /* keyed once */
	EVP_MD_CTX *md;
	const EVP_MD *sha256;
	EVP_CIPHER_CTX *ctr;       /* keyed once, running */
	size_t signed_len;         /* profile bytes under op_signature */
	size_t tbs_len;            /* the SM certificate's signed part */
	CpKey *op_sm;           /* the SM's key (for the ECDSA lines) */
	CpProfile decoded;
} Fixture;

/* The contexts openssl speed sets up before its timing loop. */
static void
bare_prepare(Fixture *f)
{
	OSSL_PARAM params[2];
	uint8_t key[32];
	size_t n = sizeof f->sig;

	f->ecdh = EVP_PKEY_CTX_new(f->device_key, NULL);
	if (!f->ecdh || EVP_PKEY_derive_init(f->ecdh) <= 0 ||
	    EVP_PKEY_derive_set_peer(f->ecdh, f->peer) <= 0)
		fail("ECDH setup");
	cp_random(f->digest, sizeof f->digest);
	{
		EVP_PKEY_CTX *sign = EVP_PKEY_CTX_new(f->op_sm, NULL);

		if (!sign || EVP_PKEY_sign_init(sign) <= 0 ||
		    EVP_PKEY_sign(sign, f->sig, &n, f->digest, sizeof f->digest) <= 0)
			fail("ECDSA setup");
		EVP_PKEY_CTX_free(sign);
	}
	f->bare_sig_len = n;
	f->verify = EVP_PKEY_CTX_new(f->op_sm, NULL);
	if (!f->verify || EVP_PKEY_verify_init(f->verify) <= 0)
		fail("ECDSA setup");
	{
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

		cp_random(key, sizeof key);
		f->hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!f->hmac || !EVP_MAC_init(f->hmac, key, sizeof key, params))
			fail("HMAC setup");
		EVP_MAC_free(mac);
	}
	f->md = EVP_MD_CTX_new();
	f->sha256 = EVP_sha256();
	f->ctr = EVP_CIPHER_CTX_new();
	if (!f->md || !f->ctr ||
	    !EVP_EncryptInit_ex(f->ctr, EVP_aes_128_ctr(), NULL, f->aes_key, f->icb))
		fail("AES setup");
}

static void
fixture_init(Fixture *f)
{
	cp_auto_secret *k_c = cp_secret_new(CP_K_AUSF_LEN);
	cp_auto_secret *op = cp_secret_new(16);
	cp_auto_secret *k_usim = NULL, *opc = NULL;
	cp_auto_buf buf = CP_BUF_INIT;
	CpKey *op_root, *op_sm;
	CpProfile p;
	uint8_t c[33];

	memset(f, 0, sizeof *f);
	f->device_key = cp_p256_generate();
	if (!f->device_key || cp_device_id(f->device_key, f->device_id))
		fail("device key");
	{
		CpKey *eph = cp_p256_generate();

		cp_p256_public_compressed(eph, c);
		f->peer = cp_p256_from_public(c, 33);
		cp_key_free(eph);
	}
	cp_random(f->aes_key, sizeof f->aes_key);
	cp_random(f->icb, sizeof f->icb);
	cp_random(f->kdf_s, sizeof f->kdf_s);
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
	cp_key_free(op_root);
	f->op_sm = op_sm;
	f->profile = cp_buf_steal(&buf, &f->profile_len);
	f->mac_offset = f->profile_len - CP_TLV_HDR - CP_MAC_LEN;
	{
		CpProfile q;
		size_t sig_tlv;

		if (cp_profile_decode(f->profile, f->profile_len, &q))
			fail("cp_profile_decode");
		f->decoded = q;
		sig_tlv = CP_TLV_HDR + q.op_signature_len;
		f->signed_len = f->mac_offset - sig_tlv;
		memcpy(f->op_sig, q.op_signature, q.op_signature_len);
		f->op_sig_len = q.op_signature_len;
		/* The SM certificate less its signature and algorithm, about. */
		f->tbs_len = q.op_chain_len / 2 - 90;
	}
	bare_prepare(f);

	f->aes = EVP_CIPHER_CTX_new();
}

static void
fixture_clear(Fixture *f)
{
	cp_anchors_free(f->anchors);
	cp_key_free(f->device_key);
	cp_key_free(f->peer);
	free(f->profile);
	cp_secret_free(f->k_prime);
	cp_secret_free(f->k_sm);
	cp_secret_free(f->k_prof);
	EVP_CIPHER_CTX_free(f->aes);
	EVP_PKEY_CTX_free(f->ecdh);
	EVP_PKEY_CTX_free(f->verify);
	EVP_MAC_CTX_free(f->hmac);
	EVP_MD_CTX_free(f->md);
	EVP_CIPHER_CTX_free(f->ctr);
	cp_key_free(f->op_sm);
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

static void
run_ecdsa_verify(void *data)
{
	Fixture *f = data;

	if (cp_ecdsa_verify(f->op_sm, f->profile, f->signed_len, f->op_sig, f->op_sig_len))
		fail("cp_ecdsa_verify");
}

static void
run_chain_verify(void *data)
{
	Fixture *f = data;
	CpProfile *p = &f->decoded;
	CpOperatorId id;
	CpKey *signer = NULL;

	if (cp_operator_chain_verify(f->anchors, NULL, p->op_chain, p->op_chain_len, &signer, &id))
		fail("cp_operator_chain_verify");
	cp_key_free(signer);
}

/* ---- bare OpenSSL, the way openssl speed runs it ---- */

/* openssl speed ecdhp256: the peer set once, the loop derives. */
static void
bare_ecdh(void *data)
{
	Fixture *f = data;
	uint8_t z[32];
	size_t n = sizeof z;

	if (EVP_PKEY_derive(f->ecdh, z, &n) <= 0)
		fail("EVP_PKEY_derive");
}

/* openssl speed ecdsap256: verify a 20-byte digest, context prepared. */
static void
bare_ecdsa_verify(void *data)
{
	Fixture *f = data;

	if (EVP_PKEY_verify(f->verify, f->sig, f->bare_sig_len, f->digest, sizeof f->digest) != 1)
		fail("EVP_PKEY_verify");
}

/* openssl speed -hmac sha256: keyed once, re-initialised per message. */
static void
bare_hmac(Fixture *f, const uint8_t *data, size_t len)
{
	uint8_t out[32];
	size_t n = 0;

	if (!EVP_MAC_init(f->hmac, NULL, 0, NULL) || !EVP_MAC_update(f->hmac, data, len) ||
	    !EVP_MAC_final(f->hmac, out, &n, sizeof out))
		fail("HMAC");
}

static void
bare_sha256(Fixture *f, const uint8_t *data, size_t len)
{
	uint8_t out[32];

	if (!EVP_Digest(data, len, out, NULL, f->sha256, NULL))
		fail("SHA-256");
}

/* openssl speed -evp aes-128-ctr: one running context, one update. */
static void
bare_ctr(Fixture *f, uint8_t *out, size_t len)
{
	int n = 0;

	if (!EVP_EncryptUpdate(f->ctr, out, &n, f->cred_plain, (int)len))
		fail("EVP_EncryptUpdate");
}

static void
bare_hmac_kdf(void *data)
{
	Fixture *f = data;

	bare_hmac(f, f->kdf_s, sizeof f->kdf_s);
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

	bare_hmac(f, f->profile, f->mac_offset);
}

static void
bare_aes_ctr(void *data)
{
	Fixture *f = data;
	uint8_t out[CP_ENC_CRED_PLAIN_LEN];

	bare_ctr(f, out, sizeof out);
}

static void
bare_aes_x6(void *data)
{
	Fixture *f = data;
	uint8_t out[16];

	for (int i = 0; i < 6; i++)
		bare_ctr(f, out, 16);
}

/* ECIES: ECDH, the X9.63 KDF (two SHA-256 blocks), the HMAC, the AES. */
static void
bare_ecies(void *data)
{
	Fixture *f = data;
	uint8_t out[CP_ENC_CRED_PLAIN_LEN];

	bare_ecdh(f);
	bare_sha256(f, f->kdf_s, 32 + 4 + 33);
	bare_sha256(f, f->kdf_s, 32 + 4 + 33);
	bare_hmac(f, f->enc_cred, CP_ENC_CRED_PLAIN_LEN);
	bare_ctr(f, out, sizeof out);
}

/* Chain: the SM certificate's hash and its verification under the root. */
static void
bare_chain(void *data)
{
	Fixture *f = data;

	bare_sha256(f, f->decoded.op_chain, f->tbs_len);
	bare_ecdsa_verify(f);
}

/* Signature: the hash of the signed bytes and one verification. */
static void
bare_signature(void *data)
{
	Fixture *f = data;

	bare_sha256(f, f->profile, f->signed_len);
	bare_ecdsa_verify(f);
}

/* The symmetric part of the floor alone. */
static void
bare_symmetric(void *data)
{
	Fixture *f = data;
	uint8_t out[CP_ENC_CRED_PLAIN_LEN];

	bare_sha256(f, f->decoded.op_chain, f->tbs_len);
	bare_sha256(f, f->profile, f->signed_len);
	bare_sha256(f, f->kdf_s, 32 + 4 + 33);
	bare_sha256(f, f->kdf_s, 32 + 4 + 33);
	bare_hmac(f, f->enc_cred, CP_ENC_CRED_PLAIN_LEN);
	bare_ctr(f, out, sizeof out);
	bare_hmac_x4(f);
	bare_hmac_profile(f);
}

/*
 * Everything protocol version 2 obliges a device to compute for one
 * profile: the operator chain (one ECDSA verification: the root is an
 * anchor, trusted as configured, its self-signature not checked), the
 * op_signature (one ECDSA verification), the ECIES of enc_cred (one ECDH),
 * the key schedule (four KDFs) and the profile's mac.
 */
static void
bare_profile_floor(void *data)
{
	bare_chain(data);
	bare_signature(data);
	bare_ecies(data);
	bare_hmac_x4(data);
	bare_hmac_profile(data);
}

/* ---- openssl speed itself ---- */

typedef struct {
	double ecdh, ecdsa_verify;
} Speed;

/* `openssl speed -mr`: +F5:k:bits:ecdh/s:..., +F4:k:bits:sign/s:verify/s. */
static bool
run_openssl_speed(Speed *sp)
{
	const char *prog = getenv("OPENSSL");
	char cmd[512], l[512];
	FILE *pipe;
	bool got5 = false, got4 = false;

	if (prog && !*prog)
		return false;
	snprintf(cmd, sizeof cmd, "%s speed -mr -seconds %d ecdhp256 ecdsap256 2>/dev/null",
		 prog ? prog : "openssl", line_seconds < 1 ? 1 : (int)line_seconds);
	pipe = popen(cmd, "r");
	if (!pipe)
		return false;
	while (fgets(l, sizeof l, pipe)) {
		unsigned k, bits;
		double a, b;

		if (sscanf(l, "+F5:%u:%u:%lf:%lf", &k, &bits, &a, &b) == 4 && bits == 256) {
			sp->ecdh = a;
			got5 = true;
		} else if (sscanf(l, "+F4:%u:%u:%lf:%lf", &k, &bits, &a, &b) == 4 && bits == 256) {
			sp->ecdsa_verify = b;
			got4 = true;
		}
	}
	return pclose(pipe) == 0 && got4 && got5;
}

int
main(int argc, char **argv)
{
	Fixture f;
	bool profile_only = false;
	double verify, floor, ecdh, ecdsa, sym;
	Speed sp = { 0, 0 };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--profile-only") == 0) {
			profile_only = true;
		} else {
			line_seconds = atof(argv[i]);
			if (line_seconds <= 0) {
				fprintf(stderr, "usage: cp-bench-protocol [seconds per line] [--profile-only]\n");
				return 2;
			}
		}
	}
	fixture_init(&f);
	if (profile_only) {
		printf("profile verify-and-decrypt %.0f/s\n",
		       measure_for(run_profile_verify, &f, line_seconds));
		fixture_clear(&f);
		return 0;
	}
	printf("cellprov protocol library, %s, %.1f s per figure, profile %zu bytes\n",
	       OpenSSL_version(OPENSSL_VERSION), line_seconds, f.profile_len);
	printf("bare primitives measured as openssl speed does: contexts and keys prepared once\n");
	printf("%-30s %9s   %-32s %9s   %5s\n", "operation", "ops/s", "bare OpenSSL primitives",
	       "ops/s", "ratio");
	measure_pair(run_profile_verify, &f, &verify, bare_profile_floor, &f, &floor);
	printf("%-30s %9.0f   %-32s %9.0f   %5.2f\n", "profile verify-and-decrypt", verify,
	       "ECDH + 2 ECDSA verify + sym.", floor, verify / floor);
	line("operator chain check", run_chain_verify, &f,
	     "SHA-256 + ECDSA verify", bare_chain, &f);
	line("op_signature verify", run_ecdsa_verify, &f,
	     "SHA-256 + ECDSA verify", bare_signature, &f);
	line("ECIES decrypt (B, 48 bytes)", run_ecies_decrypt, &f,
	     "ECDH + KDF + HMAC + AES", bare_ecies, &f);
	line("device key schedule (4 KDFs)", run_key_schedule, &f,
	     "HMAC x4 (53 bytes)", bare_hmac_x4, &f);
	line("KDF (K'' form)", run_kdf, &f,
	     "HMAC (53 bytes)", bare_hmac_kdf, &f);
	line("profile mac verify", run_mac_verify, &f,
	     "HMAC (profile bytes)", bare_hmac_profile, &f);
	line("AES-128-CTR (48 bytes)", run_aes_ctr, &f,
	     "AES-128-CTR update (48 bytes)", bare_aes_ctr, &f);
	line("Milenage f1-f5*", run_milenage, &f,
	     "AES-128 update x6 (16 bytes)", bare_aes_x6, &f);

	/* The floor's parts, in microseconds, and the same from openssl speed. */
	measure_pair(bare_ecdh, &f, &ecdh, bare_ecdsa_verify, &f, &ecdsa);
	sym = 1e6 / measure(bare_symmetric, &f);
	printf("\nfloor per profile: ECDH %.1f us + 2 x ECDSA verify %.1f us + symmetric %.1f us"
	       " = %.1f us; verify-and-decrypt %.1f us\n",
	       1e6 / ecdh, 1e6 / ecdsa, sym, 1e6 / ecdh + 2e6 / ecdsa + sym, 1e6 / verify);
	if (run_openssl_speed(&sp)) {
		double t = 1e6 / sp.ecdh + 2e6 / sp.ecdsa_verify + sym;

		printf("openssl speed, same run: ecdhp256 %.0f/s (in-process %.0f/s), "
		       "ecdsap256 verify %.0f/s (in-process %.0f/s)\n",
		       sp.ecdh, ecdh, sp.ecdsa_verify, ecdsa);
		printf("floor from openssl speed's figures %.1f us: verify-and-decrypt at %.2f of it\n",
		       t, t / (1e6 / verify));
	} else {
		printf("openssl speed: not run\n");
	}
	fixture_clear(&f);
	return 0;
}
