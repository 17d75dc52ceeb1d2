/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The operator chain's certificates, read by a small strict DER reader
 * restricted to the certificate profile of docs/protocol.md (section 4.5):
 * X.509 v3, ECDSA P-256 with SHA-256, the four extensions it names. Path
 * validation runs over the fields read here; OpenSSL only verifies the
 * signatures (cp-crypto-internal.h). Internal to libcellprov-protocol
 * (not installed, nothing exported): cp-x509.c uses it, and the unit test
 * test-x509 links the library's static build to reach it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cp-crypto-internal.h"

#define CP_X509_INTERNAL CP_INTERNAL

/* Why a certificate or a path is refused: every rule has its own. */
typedef enum {
	CP_CERT_OK = 0,
	CP_CERT_DER,            /* not DER: tag, length (indefinite, non-minimal, past its end), trailing bytes */
	CP_CERT_INTEGER,        /* an INTEGER not minimal, or a serial number not positive or over 20 bytes */
	CP_CERT_VERSION,        /* not v3, or unique identifiers */
	CP_CERT_ALGORITHM,      /* a signature algorithm other than ecdsa-with-SHA256, or the two fields differ */
	CP_CERT_KEY_TYPE,       /* a public key other than id-ecPublicKey */
	CP_CERT_CURVE,          /* a curve other than prime256v1 by name */
	CP_CERT_POINT,          /* not an uncompressed point on the curve */
	CP_CERT_NAME,           /* an issuer or subject empty or malformed */
	CP_CERT_TIME,           /* a validity time malformed */
	CP_CERT_EXTENSION,      /* an extension malformed, repeated, or missing where required */
	CP_CERT_CRITICAL,       /* a critical extension not understood */
	CP_CERT_EXPIRED,        /* after notAfter */
	CP_CERT_NOT_YET_VALID,  /* before notBefore */
	CP_CERT_NOT_CA,         /* an issuer that is not a CA with keyCertSign */
	CP_CERT_PATH_LENGTH,    /* more CAs below an issuer than its pathLenConstraint allows */
	CP_CERT_ISSUER,         /* no certificate or anchor is the issuer (name or key id mismatch) */
	CP_CERT_SIGNATURE,      /* a certificate's signature does not verify under its issuer's key */
	CP_CERT_SIGNER,         /* the signing certificate is a CA, or lacks digitalSignature */
	CP_CERT_CHAIN,          /* op_chain empty, over CP_CHAIN_CERTS_MAX certificates */
	CP_CERT_ROOT,           /* trust on first use: the chain does not end in a self-signed root */
	CP_CERT_CRYPTO,         /* the crypto backend failed (memory) */
} CpCertError;

typedef struct {
	const uint8_t *p;
	size_t len;
} CpDer;

/* keyUsage bits, as in the first two bytes of the BIT STRING. */
#define CP_KU_DIGITAL_SIGNATURE 0x0080
#define CP_KU_KEY_CERT_SIGN     0x0004
#define CP_KU_CRL_SIGN          0x0002

/* One certificate: views into its DER, which must outlive it. */
typedef struct {
	CpDer der;              /* the whole certificate */
	CpDer tbs;              /* the signed part (TBSCertificate, header included) */
	CpDer sig;              /* the ECDSA-Sig-Value (DER) in signatureValue */
	CpDer issuer, subject;  /* the Name TLVs, compared byte for byte */
	CpDer spki;             /* the SubjectPublicKeyInfo TLV: 91 bytes */
	const uint8_t *point;   /* its uncompressed point, 65 bytes */
	int64_t not_before, not_after;  /* Unix seconds */
	bool has_bc, ca;        /* basicConstraints, its cA */
	int path_len;           /* pathLenConstraint, -1 if none */
	bool has_ku;
	uint16_t ku;            /* CP_KU_* */
	CpDer skid, akid;       /* subject / authority key identifier, len 0 if absent */
} CpCert;

/* An anchor: its certificate, its key and a verification context,
 * prepared once (verify may be NULL: one is made per use). */
typedef struct {
	CpCert cert;
	CpKey *key;
	CpVerifier *verify;
} CpCertAnchor;

/* Read the certificate that starts at der; *used is its length. Without
 * used, the certificate must be all of der (trailing bytes: CP_CERT_DER). */
CP_X509_INTERNAL CpCertError cp_cert_parse(const uint8_t *der, size_t len, size_t *used, CpCert *c);

/* Split op_chain: each certificate ends exactly where the next begins,
 * the last at the end, at most CP_CHAIN_CERTS_MAX of them. */
CP_X509_INTERNAL CpCertError cp_cert_chain_parse(const uint8_t *chain, size_t len,
						 CpCert *certs, size_t *n);

/* Any X.509 certificate (a trust anchor outside the profile too), read
 * only for its outline in DER and for whether it is a CA, decided as
 * OpenSSL's X509_check_ca decides. CP_CERT_OK with *ca, else why the bytes
 * are not a certificate. */
CP_X509_INTERNAL CpCertError cp_cert_outline(const uint8_t *der, size_t len, bool *ca);

/* The certificate's public key (P-256), from its point: no decoder. */
CP_X509_INTERNAL CpKey *cp_cert_key(const CpCert *c);

/* Whether c's signature verifies under key. */
CP_X509_INTERNAL bool cp_cert_signature_ok(const CpCert *c, CpKey *key);

/* Whether c is self-signed: its issuer is its subject, its key identifiers
 * agree, and its signature verifies under its own key (returned in *key,
 * which the caller frees). */
CP_X509_INTERNAL CpCertError cp_cert_self_signed(const CpCert *c, CpKey **key);

/*
 * RFC 5280 path validation from certs[0], the signing certificate,
 * through the other certificates of the chain, to one of the anchors
 * (tried first at each step). With now < 0 validity times are not
 * checked (a device has no trusted clock). On success *root is the index
 * of the anchor the path ended in.
 */
CP_X509_INTERNAL CpCertError cp_cert_path_verify(const CpCert *certs, size_t n,
						 const CpCertAnchor *anchors, size_t n_anchors,
						 int64_t now, size_t *root);

/* The signing certificate's subject O, else its CN, as printable ASCII of
 * at most size - 1 characters (else empty). */
CP_X509_INTERNAL void cp_cert_operator_name(const CpCert *c, char *out, size_t size);

/* A stable name for a refusal (tests, messages). */
CP_X509_INTERNAL const char *cp_cert_error_name(CpCertError e);
