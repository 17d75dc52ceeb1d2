/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The narrow crypto interface: every primitive cellprov needs. Two
 * backends implement it: OpenSSL 3 (cp-crypto-openssl.c, the installed
 * library, which every program but cellprovd uses) and Mbed TLS 2.28
 * (cp-crypto-mbedtls.c: the device's subset, linked into cellprovd when
 * built with -Ddevice-crypto=mbedtls; docs/architecture.md says why).
 * Nothing else in the library calls a crypto library directly.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "cp-error.h"

/*
 * A key: P-256 or X25519, public or private, opaque. The OpenSSL build's
 * keys are EVP_PKEYs: a program that uses OpenSSL beside the library
 * includes cp-crypto-openssl.h first and sees them as such.
 */
#ifdef CP_CRYPTO_OPENSSL
#include <openssl/evp.h>
typedef EVP_PKEY CpKey;
#else
#define CP_CRYPTO_KEY_OPAQUE 1
typedef struct CpKey CpKey;
#endif

/* Free a key (NULL is fine); a private key's scalar is cleansed. */
void cp_key_free(CpKey *key);

/*
 * For a program that holds secrets (cellprovd, the SM, the AUSF), before
 * its first allocation: the backend set up lean, and a heap of
 * secure_heap_size bytes that CpSecrets and private keys come from,
 * locked in memory and left out of core dumps where the platform allows.
 * Without it (or size 0) they come from the ordinary heap, cleansed when
 * freed. Called first with 0 and again with a size, it makes the heap
 * then; once made, later calls change nothing and return what it was
 * made as.
 */
typedef enum {
	CP_SECURE_HEAP_LOCKED,          /* made and locked */
	CP_SECURE_HEAP_NOT_LOCKED,      /* made, but mlock was refused (RLIMIT_MEMLOCK): secrets could reach swap */
	CP_SECURE_HEAP_NONE,            /* not made: the ordinary heap */
} CpSecureHeap;
CpSecureHeap cp_crypto_init(size_t secure_heap_size);
/* At exit: the backend's state freed. Returns the bytes of the secure
 * heap still allocated (a secret leaked), 0 when all were freed. */
size_t cp_crypto_cleanup(void);
/* The backend and its version, e.g. "OpenSSL 3.0.19 ..." or "Mbed TLS 2.28.3". */
const char *cp_crypto_backend(void);

#define CP_SHA256_LEN 32
#define CP_HMAC_SHA256_LEN 32

void cp_sha256(const uint8_t *data, size_t len, uint8_t out[CP_SHA256_LEN]);
CpError cp_hmac_sha256(const uint8_t *key, size_t key_len,
		       const uint8_t *data, size_t len,
		       uint8_t out[CP_HMAC_SHA256_LEN]);
/* AES-128-CTR with a full 16-byte initial counter block. */
CpError cp_aes128_ctr(const uint8_t key[16], const uint8_t icb[16],
		      const uint8_t *in, size_t len, uint8_t *out);
/* One AES-128 block (Milenage's kernel). */
CpError cp_aes128_ecb_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);
/* The same with the key schedule kept for several blocks; free cleanses it. */
typedef struct CpAes128 CpAes128;
CpAes128 *cp_aes128_new(const uint8_t key[16]);
CpError cp_aes128_block(CpAes128 *aes, const uint8_t in[16], uint8_t out[16]);
void cp_aes128_free(CpAes128 *aes);
/* ANSI X9.63 KDF with SHA-256. */
CpError cp_x963_kdf_sha256(const uint8_t *z, size_t z_len,
			   const uint8_t *shared_info, size_t si_len,
			   uint8_t *out, size_t out_len);
CpError cp_random(uint8_t *out, size_t len);

/* P-256 keys. */
CpKey *cp_p256_generate(void);
/* From a 32-byte private scalar. */
CpKey *cp_p256_from_private(const uint8_t priv[32]);
/* From a 33-byte compressed or 65-byte uncompressed point. */
CpKey *cp_p256_from_public(const uint8_t *pub, size_t len);
/* Compressed point (33 bytes). */
CpError cp_p256_public_compressed(CpKey *key, uint8_t out[33]);
/* The private scalar, 32 bytes big-endian (test vectors, cellprov-mfg). */
CpError cp_p256_private_bytes(CpKey *key, uint8_t out[32]);

/* X25519 keys (ECIES Profile A). */
CpKey *cp_x25519_generate(void);
CpKey *cp_x25519_from_private(const uint8_t priv[32]);
CpKey *cp_x25519_from_public(const uint8_t pub[32]);
CpError cp_x25519_public(CpKey *key, uint8_t out[32]);

/* ECDH shared secret (x coordinate for P-256, u for X25519), 32 bytes.
 * CP_ERR_KEY for mismatched key types, CP_ERR_POINT for a peer key
 * OpenSSL refuses (invalid, or small order for X25519). */
CpError cp_ecdh(CpKey *priv, CpKey *peer, uint8_t out[32]);
/* P-256 ECDH with a peer point as sent (33-byte compressed or 65-byte
 * uncompressed), without building a key object for it: CP_ERR_POINT for
 * a point that is not on the curve or not in a P-256 form, CP_ERR_KEY
 * for a priv that is not a P-256 private key. */
CpError cp_p256_ecdh_encoded(CpKey *priv, const uint8_t *pub, size_t len, uint8_t out[32]);

/* ECDSA P-256 with SHA-256, DER signature (at most CP_ECDSA_MAX bytes). */
#define CP_ECDSA_MAX 72
CpError cp_ecdsa_sign(CpKey *key, const uint8_t *msg, size_t len,
		      uint8_t *sig, size_t *sig_len);
CpError cp_ecdsa_verify(CpKey *key, const uint8_t *msg, size_t len,
			const uint8_t *sig, size_t sig_len);  /* CP_ERR_SIGNATURE */

/* DER SubjectPublicKeyInfo of a key; malloc'd, caller frees. */
uint8_t *cp_pubkey_spki(CpKey *key, size_t *len);

/* The key from a DER SubjectPublicKeyInfo (P-256 or X25519), exactly len bytes. */
CpKey *cp_pubkey_from_spki(const uint8_t *der, size_t len);

/*
 * PEM (PKCS#8 private key) in and out. Only P-256 and X25519 keys are
 * accepted; an encrypted PEM fails rather than prompting for a passphrase.
 */
CpKey *cp_pkey_from_pem(const char *pem, size_t len);
char *cp_pkey_to_pem(CpKey *key);  /* malloc'd; holds the private key: cleanse */
/* PEM "PUBLIC KEY" (SubjectPublicKeyInfo) in and out. */
CpKey *cp_pubkey_from_pem(const char *pem, size_t len);
char *cp_pubkey_to_pem(CpKey *key);  /* malloc'd */

/* Key type checks: P-256, X25519, and whether the private half is present. */
bool cp_pkey_is_p256(CpKey *key);
bool cp_pkey_is_x25519(CpKey *key);
bool cp_pkey_has_private(CpKey *key);

/*
 * X.509, for the operator's signing chain (docs/protocol.md, "The
 * operator's signature"): the backend is cp-x509-openssl.c, and op_chain
 * is read by the library's own strict DER reader (cp-x509-der.c), within
 * the certificate profile of docs/protocol.md 4.5.
 *
 * A chain on the wire (op_chain) is certificates in DER, concatenated, the
 * signing certificate first, then what issued it, at most CP_CHAIN_CERTS_MAX
 * and CP_CHAIN_MAX bytes in all.
 */
#define CP_CHAIN_MAX 2048
#define CP_CHAIN_CERTS_MAX 4
#define CP_OPERATOR_NAME_MAX 64

/* Trust anchors: the operator roots a device accepts. */
typedef struct CpAnchors CpAnchors;
/* From PEM: one or more CERTIFICATE blocks, each a CA certificate, nothing
 * else. CP_ERR_KEY otherwise (including no certificate at all). An anchor
 * outside the certificate profile is loaded and counted but ends no path. */
CpError cp_anchors_from_pem(const char *pem, size_t len, CpAnchors **out);
size_t cp_anchors_count(const CpAnchors *a);
/* Those of them inside the certificate profile: the ones that can end a
 * path (the rest accept nothing, which the caller should say). */
size_t cp_anchors_usable(const CpAnchors *a);
void cp_anchors_free(CpAnchors *a);

/* A PEM chain file (signing certificate first) as op_chain bytes: out holds
 * CP_CHAIN_MAX. CP_ERR_KEY for a block that is not a certificate, no
 * certificate, or more than CP_CHAIN_CERTS_MAX; CP_ERR_LENGTH above
 * CP_CHAIN_MAX. */
CpError cp_operator_chain_from_pem(const char *pem, size_t len, uint8_t *out, size_t *out_len);

typedef struct {
	uint8_t root[CP_SHA256_LEN];     /* SHA-256 of the root's SubjectPublicKeyInfo (DER) */
	char name[CP_OPERATOR_NAME_MAX + 1];  /* the signing certificate's O, else its CN */
} CpOperatorId;

/*
 * Verify op_chain up to a trust anchor. With anchors NULL or empty, the
 * chain must end in a self-signed certificate, which is then the only
 * anchor (trust on first use). With pin non-NULL (CP_SHA256_LEN bytes), the
 * root reached must be the one whose SubjectPublicKeyInfo hashes to it.
 * Validity times are not checked: a device has no trusted clock before it
 * registers. The signing certificate must be an end entity (not a CA) with
 * a P-256 key, and allow digitalSignature if it has a keyUsage. Every
 * failure of the chain, its form (a certificate outside the profile
 * included) or the pin is CP_ERR_OPERATOR. On success
 * *signer is the signing certificate's key (the caller frees it) and id
 * names the operator.
 */
CpError cp_operator_chain_verify(const CpAnchors *anchors, const uint8_t *pin,
			const uint8_t *chain, size_t len,
			CpKey **signer, CpOperatorId *id);

/* Whether key is the public half of op_chain's signing certificate's key
 * (CP_ERR_KEY if not, or if the chain does not read within the profile). */
CpError cp_operator_chain_signer(const uint8_t *chain, size_t len, CpKey *key);

/*
 * Make a certificate (DER into out, CP_CHAIN_MAX bytes) for subject_key,
 * named O=org, CN=cn, signed by issuer_key, whose certificate is
 * issuer_der (NULL: self-signed). ca: a CA (basicConstraints CA:TRUE,
 * keyCertSign) or an end entity (digitalSignature). Valid from not_before
 * (Unix seconds) for days. For tools and tests that need an operator's
 * chain: operators make theirs with their own PKI.
 */
CpError cp_cert_make(CpKey *subject_key, const char *org, const char *cn, bool ca,
		     CpKey *issuer_key, const uint8_t *issuer_der, size_t issuer_len,
		     uint64_t serial, int64_t not_before, int days,
		     uint8_t *out, size_t *out_len);
/* A certificate (DER) as PEM; malloc'd. */
char *cp_cert_to_pem(const uint8_t *der, size_t len);
