/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device's profile check on the protocol library built on Mbed TLS
 * (cellprovd's with -Ddevice-crypto=mbedtls), beside Mbed TLS's own P-256
 * primitives measured as its benchmark program measures them (group and
 * keys prepared outside the loop; the loop one ECDH, or one ECDSA
 * verification of a 20-byte digest), and beside `openssl speed` in the
 * same run: the price of the smaller library, in time.
 *
 * The profile is the published one (docs/test-vectors/cellprov-v2.txt),
 * verified as the device verifies it: the operator chain up to the
 * vectors' root as the trusted anchor, op_signature, the ECIES of
 * enc_cred, the key schedule and the mac. Its floor is what protocol
 * version 2 obliges a device to compute asymmetrically: one ECDH and two
 * ECDSA verifications (the symmetric part, some microseconds, is left
 * out of the floor, which makes it stricter).
 *
 *   cp-bench-device-crypto [seconds per figure, default 1]
 *
 * CP_VECTORS_DIR names the vectors' directory (meson sets it); OPENSSL
 * the openssl program ("" skips it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/version.h>
#include <sys/random.h>

#include "cellprov.h"
#include "cp-test.h"

static double seconds = 1.0;

/* CPU time: on a shared machine the figure counts the work only. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef void (*BenchFn)(void *data);

/* Best of three runs of seconds / 3 each, in growing batches; ops/s. */
static double
measure(BenchFn fn, void *data)
{
	double best = 0;

	fn(data);
	for (int r = 0; r < 3; r++) {
		unsigned long total = 0, batch = 1;
		double start = now(), elapsed;

		do {
			for (unsigned long i = 0; i < batch; i++)
				fn(data);
			total += batch;
			elapsed = now() - start;
			batch *= 2;
		} while (elapsed < seconds / 3);
		if (total / elapsed > best)
			best = total / elapsed;
	}
	return best;
}

static void
fail(const char *what)
{
	fprintf(stderr, "cp-bench-device-crypto: %s failed\n", what);
	exit(1);
}

static int
rng(void *ctx, unsigned char *out, size_t len)
{
	return getrandom(out, len, 0) == (ssize_t)len ? 0 : -1;
}

typedef struct {
	/* the profile, as the device gets it */
	uint8_t profile[2048], device_id[16], info[512], suites[1];
	size_t profile_len, info_len;
	CpKey *device_key;
	CpAnchors *anchors;
	/* Mbed TLS's primitives, prepared once */
	mbedtls_ecp_group grp;
	mbedtls_mpi d, z, r, s;
	mbedtls_ecp_point peer, sm;
	uint8_t digest[20];
} Fixture;

static CpTestBlock vec;

static size_t
get(const char *name, uint8_t *out, size_t cap)
{
	const char *hex = cp_test_block_get(&vec, name);
	size_t n = hex ? cp_test_unhex(hex, out, cap) : 0;

	if (!n)
		fail(name);
	return n;
}

static void
fixture_init(Fixture *f)
{
	CpTestVectors all;
	uint8_t priv[32], root[1024];
	size_t root_len;
	char *pem;

	if (!cp_test_vectors_load("cellprov-v2.txt", &all))
		fail("reading the vectors");
	cp_test_vectors_merge(&all, &vec);
	f->profile_len = get("profile", f->profile, sizeof f->profile);
	get("device_id", f->device_id, sizeof f->device_id);
	f->info_len = get("device_info", f->info, sizeof f->info);
	f->suites[0] = CP_SUITE_B;
	get("device_privkey", priv, sizeof priv);
	if (!(f->device_key = cp_p256_from_private(priv)))
		fail("the device key");
	root_len = get("op_root_cert", root, sizeof root);
	pem = cp_test_cert_pem(root, root_len);
	if (cp_anchors_from_pem(pem, strlen(pem), &f->anchors) != CP_OK)
		fail("the anchor");
	free(pem);

	mbedtls_ecp_group_init(&f->grp);
	mbedtls_mpi_init(&f->d);
	mbedtls_mpi_init(&f->z);
	mbedtls_mpi_init(&f->r);
	mbedtls_mpi_init(&f->s);
	mbedtls_ecp_point_init(&f->peer);
	mbedtls_ecp_point_init(&f->sm);
	if (mbedtls_ecp_group_load(&f->grp, MBEDTLS_ECP_DP_SECP256R1))
		fail("P-256");
	/* ECDH: the device key and the profile's ephemeral public key. */
	get("eph_privkey", priv, sizeof priv);
	if (mbedtls_mpi_read_binary(&f->d, priv, 32) ||
	    mbedtls_ecp_mul(&f->grp, &f->peer, &f->d, &f->grp.G, rng, NULL))
		fail("the ephemeral key");
	get("device_privkey", priv, sizeof priv);
	if (mbedtls_mpi_read_binary(&f->d, priv, 32))
		fail("the device scalar");
	/* ECDSA: the SM's key, a signature over 20 random bytes. */
	{
		mbedtls_mpi sd;

		mbedtls_mpi_init(&sd);
		get("op_sm_privkey", priv, sizeof priv);
		getrandom(f->digest, sizeof f->digest, 0);
		if (mbedtls_mpi_read_binary(&sd, priv, 32) ||
		    mbedtls_ecp_mul(&f->grp, &f->sm, &sd, &f->grp.G, rng, NULL) ||
		    mbedtls_ecdsa_sign(&f->grp, &f->r, &f->s, &sd, f->digest, sizeof f->digest, rng, NULL))
			fail("the SM key");
		mbedtls_mpi_free(&sd);
	}
	cp_cleanse(priv, sizeof priv);
	free(vec.kv);
	vec.kv = NULL;
	cp_test_vectors_free(&all);     /* the merged block's pairs were these */
}

static void
run_profile_verify(void *data)
{
	Fixture *f = data;
	CpVerifyContext ctx = {
		.device_id = f->device_id, .device_key = f->device_key,
		.suites = f->suites, .n_suites = 1, .now = 1893456000 - 1,
		.device_info = f->info, .device_info_len = f->info_len,
		.anchors = f->anchors,
	};
	CpProfileKeys keys = { 0 };
	CpProfile p;

	if (cp_profile_verify(f->profile, f->profile_len, &ctx, &p, &keys) != CP_OK)
		fail("cp_profile_verify");
	cp_profile_keys_clear(&keys);
}

static void
bare_ecdh(void *data)
{
	Fixture *f = data;

	if (mbedtls_ecdh_compute_shared(&f->grp, &f->z, &f->peer, &f->d, rng, NULL))
		fail("mbedtls_ecdh_compute_shared");
}

static void
bare_ecdsa_verify(void *data)
{
	Fixture *f = data;

	if (mbedtls_ecdsa_verify(&f->grp, f->digest, sizeof f->digest, &f->sm, &f->r, &f->s))
		fail("mbedtls_ecdsa_verify");
}

/* `openssl speed -mr ecdhp256 ecdsap256`: ECDH/s and ECDSA verify/s. */
static bool
openssl_speed(double *ecdh, double *verify)
{
	const char *prog = getenv("OPENSSL");
	char cmd[512], l[512];
	bool got4 = false, got5 = false;
	FILE *pipe;

	if (prog && !*prog)
		return false;
	snprintf(cmd, sizeof cmd, "%s speed -mr -seconds 1 ecdhp256 ecdsap256 2>/dev/null",
		 prog ? prog : "openssl");
	if (!(pipe = popen(cmd, "r")))
		return false;
	while (fgets(l, sizeof l, pipe)) {
		unsigned k, bits;
		double a, b;

		if (sscanf(l, "+F5:%u:%u:%lf:%lf", &k, &bits, &a, &b) == 4 && bits == 256) {
			*ecdh = a;
			got5 = true;
		} else if (sscanf(l, "+F4:%u:%u:%lf:%lf", &k, &bits, &a, &b) == 4 && bits == 256) {
			*verify = b;
			got4 = true;
		}
	}
	return pclose(pipe) == 0 && got4 && got5;
}

int
main(int argc, char **argv)
{
	Fixture f = { 0 };
	double verify, ecdh, ecdsa, floor_us, o_ecdh = 0, o_verify = 0;

	if (argc > 2 || (argc == 2 && (seconds = atof(argv[1])) <= 0)) {
		fprintf(stderr, "usage: cp-bench-device-crypto [seconds per figure]\n");
		return 2;
	}
	fixture_init(&f);
	printf("cellprov protocol library on %s (cellprovd with -Ddevice-crypto=mbedtls), "
	       "%.1f s per figure, CPU time\n", cp_crypto_backend(), seconds);
	verify = measure(run_profile_verify, &f);
	ecdh = measure(bare_ecdh, &f);
	ecdsa = measure(bare_ecdsa_verify, &f);
	floor_us = 1e6 / ecdh + 2e6 / ecdsa;
	printf("%-44s %9.0f/s %9.1f us\n", "profile verify-and-decrypt", verify, 1e6 / verify);
	printf("%-44s %9.0f/s %9.1f us\n", "Mbed TLS ECDH P-256 (prepared)", ecdh, 1e6 / ecdh);
	printf("%-44s %9.0f/s %9.1f us\n", "Mbed TLS ECDSA P-256 verify (prepared)", ecdsa, 1e6 / ecdsa);
	printf("floor: ECDH + 2 x ECDSA verify = %.1f us; verify-and-decrypt at %.2f of it\n",
	       floor_us, floor_us / (1e6 / verify));
	if (openssl_speed(&o_ecdh, &o_verify))
		printf("openssl speed, same run: ecdhp256 %.0f/s, ecdsap256 verify %.0f/s: "
		       "its floor %.1f us, %.1fx faster than Mbed TLS's\n",
		       o_ecdh, o_verify, 1e6 / o_ecdh + 2e6 / o_verify,
		       floor_us / (1e6 / o_ecdh + 2e6 / o_verify));
	else
		printf("openssl speed: not run\n");
	cp_anchors_free(f.anchors);
	cp_key_free(f.device_key);
	mbedtls_ecp_group_free(&f.grp);
	mbedtls_mpi_free(&f.d);
	mbedtls_mpi_free(&f.z);
	mbedtls_mpi_free(&f.r);
	mbedtls_mpi_free(&f.s);
	mbedtls_ecp_point_free(&f.peer);
	mbedtls_ecp_point_free(&f.sm);
	return 0;
}
