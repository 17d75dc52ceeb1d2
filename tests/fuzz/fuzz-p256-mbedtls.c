/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Mbed TLS backend against OpenSSL on what a stranger controls in a
 * profile: the ephemeral public key (ECDH with the device key, from its
 * 33- or 65-byte form, which the backend decompresses itself) and an ECDSA
 * signature (which the backend reads as DER itself). The first byte picks
 * which (even: a point, odd: a signature over a fixed message); the rest
 * is the input. Both must accept and refuse alike, and agree on the
 * shared secret. OpenSSL is only the reference here: the library under
 * test is the one built on Mbed TLS.
 */
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include "cp-crypto.h"
#include "cp-fuzz.h"
#include "cp-fuzz-p256.h"

static CpKey *device, *signer;
static EC_GROUP *group;
static BIGNUM *device_d;
static EVP_PKEY *signer_ref;

static void
setup(void)
{
	uint8_t *spki;
	size_t len = 0;
	const unsigned char *p;

	device = cp_p256_from_private(cp_fuzz_device_priv);
	signer = cp_p256_from_private(cp_fuzz_op_sm_priv);
	group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	device_d = BN_bin2bn(cp_fuzz_device_priv, 32, NULL);
	spki = signer ? cp_pubkey_spki(signer, &len) : NULL;
	p = spki;
	signer_ref = spki ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;
	free(spki);
	CP_FUZZ_CHECK(device && signer && group && device_d && signer_ref);
}

/* OpenSSL's ECDH with the point as the library takes it: compressed or
 * uncompressed (not hybrid, not the point at infinity). */
static bool
reference_ecdh(const uint8_t *pub, size_t len, uint8_t z[32])
{
	EC_POINT *q = EC_POINT_new(group), *r = EC_POINT_new(group);
	BIGNUM *x = BN_new();
	bool ok = q && r && x &&
		  ((len == 33 && (pub[0] == 2 || pub[0] == 3)) || (len == 65 && pub[0] == 4)) &&
		  EC_POINT_oct2point(group, q, pub, len, NULL) == 1 &&
		  EC_POINT_mul(group, r, NULL, q, device_d, NULL) == 1 &&
		  EC_POINT_get_affine_coordinates(group, r, x, NULL, NULL) == 1 &&
		  BN_bn2binpad(x, z, 32) == 32;

	BN_free(x);
	EC_POINT_free(q);
	EC_POINT_free(r);
	return ok;
}

static bool
reference_verify(const uint8_t *sig, size_t len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, signer_ref) == 1 &&
		  EVP_DigestVerify(md, sig, len, (const uint8_t *)cp_fuzz_p256_message,
				   sizeof cp_fuzz_p256_message - 1) == 1;

	EVP_MD_CTX_free(md);
	return ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!device)
		setup();
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		uint8_t z[32], zr[32];
		CpError err = cp_p256_ecdh_encoded(device, data + 1, size - 1, z);
		bool ref = reference_ecdh(data + 1, size - 1, zr);

		CP_FUZZ_CHECK(ref == (err == CP_OK));
		CP_FUZZ_CHECK(err == CP_OK || err == CP_ERR_POINT);
		if (ref)
			CP_FUZZ_CHECK(memcmp(z, zr, 32) == 0);
	} else {
		CpError err = cp_ecdsa_verify(signer, (const uint8_t *)cp_fuzz_p256_message,
					      sizeof cp_fuzz_p256_message - 1, data + 1, size - 1);

		CP_FUZZ_CHECK(reference_verify(data + 1, size - 1) == (err == CP_OK));
		CP_FUZZ_CHECK(err == CP_OK || err == CP_ERR_SIGNATURE);
	}
	return 0;
}
