/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the library's own parts need of a crypto backend beyond
 * cp-crypto.h. Not installed, nothing exported: each backend
 * (cp-crypto-openssl.c with cp-x509-openssl.c; cp-crypto-mbedtls.c)
 * implements all of it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp-crypto.h"

#define CP_INTERNAL __attribute__((visibility("hidden")))

/* A P-256 public key from an uncompressed point a certificate carried: the
 * backend's decoding refuses coordinates not below p and a point off the
 * curve (with 65 bytes and cofactor 1, the whole check). NULL otherwise. */
CP_INTERNAL CpKey *cp_p256_from_point(const uint8_t point[65]);

/* A P-256 public key prepared for many verifications (a trust anchor's). */
typedef struct CpVerifier CpVerifier;
CP_INTERNAL CpVerifier *cp_verifier_new(CpKey *key);
CP_INTERNAL void cp_verifier_free(CpVerifier *v);
/* ECDSA over a SHA-256 digest, sig in DER, with prepared if not NULL,
 * else with key. Only a valid signature in DER is true. */
CP_INTERNAL bool cp_verify_digest(CpVerifier *prepared, CpKey *key,
				  const uint8_t digest[CP_SHA256_LEN],
				  const uint8_t *sig, size_t sig_len);

/* Every block of a PEM buffer, each required to be a certificate: its DER
 * and whether it is a CA certificate (as RFC 5280 4.2.1.9 and 4.2.1.3 have
 * it; a version 1 self-issued certificate counts as one). CP_ERR_KEY for
 * a block that is not one certificate, or no block at all. */
typedef struct {
	uint8_t *der;
	size_t len;
	bool ca;
} CpPemCert;
CP_INTERNAL CpError cp_pem_certificates(const char *pem, size_t len, CpPemCert **certs, size_t *n);
CP_INTERNAL void cp_pem_certificates_free(CpPemCert *certs, size_t n);

/* Memory for secrets (cp-secret.c): zeroed, from the locked heap once
 * cp_crypto_init made one, else from the ordinary heap; free cleanses. */
CP_INTERNAL void *cp_secure_zalloc(size_t n);
CP_INTERNAL void cp_secure_free(void *p, size_t n);
