/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a crypto library costs a process that does a device's crypto work
 * once: a P-256 key made, one ECDSA signature (the attestation), two
 * ECDSA verifications (the operator chain and op_signature), one ECDH,
 * SHA-256, HMAC-SHA-256 and AES-128-CTR over a 32-byte K', random bytes.
 * Built three times (CP_BENCH_LIB: 0 none, 1 OpenSSL 3, 2 Mbed TLS 2.28),
 * each printing its RSS and private dirty memory (smaps_rollup) after the
 * work: the difference to "none" is the library's cost in any program
 * that does this work, cellprovd included (docs/daemon.md).
 */
#include <stdio.h>
#include <stdlib.h>

#if CP_BENCH_LIB == 1
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#define LIB "OpenSSL " OPENSSL_VERSION_STR
#elif CP_BENCH_LIB == 2
#include <mbedtls/aes.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#define LIB "Mbed TLS " MBEDTLS_VERSION_STRING
#else
#define LIB "none (libc)"
#endif

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "failed: %s\n", #x); exit(1); } } while (0)

static void
report(void)
{
	char line[256];
	long pd = -1, rss = -1, v;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	CHECK(f);
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "Private_Dirty: %ld", &v) == 1)
			pd = v;
		if (sscanf(line, "Rss: %ld", &v) == 1)
			rss = v;
	}
	fclose(f);
	printf("%-24s RSS %6ld KiB   private dirty %5ld KiB\n", LIB, rss, pd);
}

#if CP_BENCH_LIB == 1
static void
work(void)
{
	unsigned char dg[32], sig[80], key[16] = { 1 }, iv[16] = { 0 }, k2[32] = { 0 }, out[32], z[32];
	size_t sl = sizeof sig, zl = sizeof z;
	unsigned int hl;
	int ol;
	EVP_PKEY *k, *peer;
	EVP_PKEY_CTX *c, *d;
	EVP_CIPHER_CTX *x;

	CHECK(OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL));
	CHECK(RAND_bytes(iv, 8) == 1);
	CHECK((k = EVP_EC_gen("P-256")) && (peer = EVP_EC_gen("P-256")));
	CHECK(EVP_Digest("cellprov", 8, dg, NULL, EVP_sha256(), NULL));
	CHECK((c = EVP_PKEY_CTX_new(k, NULL)));
	CHECK(EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, sig, &sl, dg, 32) == 1);
	CHECK(EVP_PKEY_verify_init(c) == 1 && EVP_PKEY_verify(c, sig, sl, dg, 32) == 1);
	CHECK(EVP_PKEY_verify(c, sig, sl, dg, 32) == 1);
	CHECK((d = EVP_PKEY_CTX_new(k, NULL)));
	CHECK(EVP_PKEY_derive_init(d) == 1 && EVP_PKEY_derive_set_peer(d, peer) == 1 &&
	      EVP_PKEY_derive(d, z, &zl) == 1);
	CHECK(HMAC(EVP_sha256(), z, 32, k2, 32, out, &hl));
	CHECK((x = EVP_CIPHER_CTX_new()));
	CHECK(EVP_DecryptInit_ex(x, EVP_aes_128_ctr(), NULL, key, iv) == 1 &&
	      EVP_DecryptUpdate(x, out, &ol, k2, 32) == 1);
}
#elif CP_BENCH_LIB == 2
static void
work(void)
{
	static mbedtls_entropy_context e;
	static mbedtls_ctr_drbg_context r;
	static mbedtls_ecdsa_context k, peer;
	unsigned char dg[32], sig[80], key[16] = { 1 }, nc[16] = { 0 }, sb[16], k2[32] = { 0 }, out[32], z[32];
	size_t sl, off = 0;
	mbedtls_mpi zm;
	mbedtls_aes_context a;

	mbedtls_entropy_init(&e);
	mbedtls_ctr_drbg_init(&r);
	CHECK(mbedtls_ctr_drbg_seed(&r, mbedtls_entropy_func, &e, NULL, 0) == 0);
	mbedtls_ecdsa_init(&k);
	mbedtls_ecdsa_init(&peer);
	CHECK(mbedtls_ecdsa_genkey(&k, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &r) == 0);
	CHECK(mbedtls_ecdsa_genkey(&peer, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &r) == 0);
	CHECK(mbedtls_sha256_ret((const unsigned char *)"cellprov", 8, dg, 0) == 0);
	CHECK(mbedtls_ecdsa_write_signature(&k, MBEDTLS_MD_SHA256, dg, 32, sig, &sl,
					    mbedtls_ctr_drbg_random, &r) == 0);
	CHECK(mbedtls_ecdsa_read_signature(&k, dg, 32, sig, sl) == 0);
	CHECK(mbedtls_ecdsa_read_signature(&k, dg, 32, sig, sl) == 0);
	mbedtls_mpi_init(&zm);
	CHECK(mbedtls_ecdh_compute_shared(&k.grp, &zm, &peer.Q, &k.d, mbedtls_ctr_drbg_random, &r) == 0);
	CHECK(mbedtls_mpi_write_binary(&zm, z, 32) == 0);
	CHECK(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), z, 32, k2, 32, out) == 0);
	mbedtls_aes_init(&a);
	CHECK(mbedtls_aes_setkey_enc(&a, key, 128) == 0);
	CHECK(mbedtls_aes_crypt_ctr(&a, 32, &off, nc, sb, k2, out) == 0);
}
#else
static void
work(void)
{
}
#endif

int
main(void)
{
	work();
	report();
	return 0;
}
