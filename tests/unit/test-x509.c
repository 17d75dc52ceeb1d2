/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The operator chain's DER reader and path validation (protocol/cp-x509-der.c,
 * built into this test): each refusal with its own code, and a differential
 * check against OpenSSL's own parser and RFC 5280 path validation
 * (d2i_X509 and X509_verify_cert, strict, no times: the check the library
 * made before), on the certificates the tests and the published vectors
 * use and on mutated ones.
 *
 * Certificates are built here from their parts (a second, independent DER
 * encoder), so that one part at a time can be made wrong, and signed with
 * OpenSSL so that a refusal is the reader's and not the signature's.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cp-crypto-openssl.h"
#include "cp-test.h"
#include "cp-test-operator.h"
#include "cp-crypto.h"
#include "cp-tlv.h"
#include "cp-x509-der.h"

/* ---- a DER builder ---- */

typedef struct {
	uint8_t b[2048];
	size_t n;
} Buf;

static void
put(Buf *o, const void *p, size_t n)
{
	if (n > sizeof o->b - o->n)
		abort();
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void
put_len(Buf *o, size_t n)
{
	uint8_t h[3];

	if (n < 0x80) {
		h[0] = (uint8_t)n;
		put(o, h, 1);
	} else if (n < 0x100) {
		h[0] = 0x81;
		h[1] = (uint8_t)n;
		put(o, h, 2);
	} else {
		h[0] = 0x82;
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		put(o, h, 3);
	}
}

static void
tlv(Buf *o, uint8_t tag, const void *p, size_t n)
{
	put(o, &tag, 1);
	put_len(o, n);
	put(o, p, n);
}

static void
tlv_buf(Buf *o, uint8_t tag, const Buf *content)
{
	tlv(o, tag, content->b, content->n);
}

static const uint8_t OID_O[] = { 0x55, 0x04, 0x0a };
static const uint8_t OID_CN[] = { 0x55, 0x04, 0x03 };
static const uint8_t ALG_SHA256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t ALG_SHA384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 };
static const uint8_t OID_EC[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
static const uint8_t OID_RSA[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01 };
static const uint8_t OID_P256[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t OID_P384[] = { 0x2b, 0x81, 0x04, 0x00, 0x22 };

static void
name(Buf *o, const char *org, const char *cn)
{
	Buf seq = { 0 };
	const char *v[2] = { org, cn };
	const uint8_t *oid[2] = { OID_O, OID_CN };

	for (int i = 0; i < 2; i++) {
		Buf atv = { 0 }, set = { 0 };

		if (!v[i])
			continue;
		tlv(&atv, 0x06, oid[i], 3);
		tlv(&atv, 0x0c, v[i], strlen(v[i]));
		tlv_buf(&set, 0x30, &atv);
		tlv_buf(&seq, 0x31, &set);
	}
	tlv_buf(o, 0x30, &seq);
}

static void
utc_time(Buf *o, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[32];

	gmtime_r(&tt, &tm);
	strftime(s, sizeof s, "%Y%m%d%H%M%SZ", &tm);
	if (tm.tm_year + 1900 < 2050)
		tlv(o, 0x17, s + 2, strlen(s + 2));     /* UTCTime: two digits of the year */
	else
		tlv(o, 0x18, s, strlen(s));
}

static void
point_of(CpKey *key, uint8_t pub[65])
{
	size_t n = 0;

	if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, 65, &n) || n != 65)
		abort();
}

static void
spki(Buf *o, const uint8_t *alg_oid, size_t alg_len, const uint8_t *curve, size_t curve_len,
     const uint8_t *point, size_t point_len)
{
	Buf alg = { 0 }, seq = { 0 }, bits = { 0 };

	tlv(&alg, 0x06, alg_oid, alg_len);
	tlv(&alg, 0x06, curve, curve_len);
	tlv_buf(&seq, 0x30, &alg);
	put(&bits, "\0", 1);
	put(&bits, point, point_len);
	tlv_buf(&seq, 0x03, &bits);
	tlv_buf(o, 0x30, &seq);
}

static void
extension(Buf *o, const uint8_t *oid, size_t oid_len, bool critical, const Buf *value)
{
	Buf e = { 0 };

	tlv(&e, 0x06, oid, oid_len);
	if (critical)
		tlv(&e, 0x01, "\xff", 1);
	tlv_buf(&e, 0x04, value);
	tlv_buf(o, 0x30, &e);
}

static void
key_id(CpKey *key, uint8_t id[20])
{
	uint8_t pub[65], h[32];

	point_of(key, pub);
	cp_sha256(pub, sizeof pub, h);
	memcpy(id, h, 20);
}

/* The parts of a certificate, each a complete TLV (the extensions the
 * contents of the SEQUENCE inside [3]). */
enum { P_VERSION, P_SERIAL, P_ALG, P_ISSUER, P_VALIDITY, P_SUBJECT, P_SPKI, P_EXTS, P_OUTER_ALG, P_COUNT };

typedef struct {
	Buf part[P_COUNT];
	CpKey *key, *issuer_key;
} Cert;

typedef struct {
	const char *o, *cn, *issuer_o, *issuer_cn;
	bool ca;
	int pathlen;            /* -1 none */
	unsigned ku;            /* first byte of the BIT STRING; 0: no keyUsage */
	bool no_akid, no_skid;
	int64_t not_before, not_after;
	bool bc_not_critical;
} Spec;

#define NB 1700000000
#define NA (NB + 365 * 86400)

static void
cert_init(Cert *c, const Spec *s, CpKey *key, CpKey *issuer_key)
{
	static const uint8_t ce_bc[] = { 0x55, 0x1d, 0x13 }, ce_ku[] = { 0x55, 0x1d, 0x0f },
		ce_skid[] = { 0x55, 0x1d, 0x0e }, ce_akid[] = { 0x55, 0x1d, 0x23 };
	uint8_t pub[65], id[20];
	Buf v = { 0 }, b = { 0 };

	memset(c, 0, sizeof *c);
	c->key = key;
	c->issuer_key = issuer_key;
	put(&c->part[P_VERSION], "\xa0\x03\x02\x01\x02", 5);
	tlv(&c->part[P_SERIAL], 0x02, "\x05", 1);
	put(&c->part[P_ALG], ALG_SHA256, sizeof ALG_SHA256);
	name(&c->part[P_ISSUER], s->issuer_o, s->issuer_cn);
	utc_time(&v, s->not_before ? s->not_before : NB);
	utc_time(&v, s->not_after ? s->not_after : NA);
	tlv_buf(&c->part[P_VALIDITY], 0x30, &v);
	name(&c->part[P_SUBJECT], s->o, s->cn);
	point_of(key, pub);
	spki(&c->part[P_SPKI], OID_EC, sizeof OID_EC, OID_P256, sizeof OID_P256, pub, 65);
	/* basicConstraints, critical */
	memset(&v, 0, sizeof v);
	if (s->ca)
		tlv(&v, 0x01, "\xff", 1);
	if (s->pathlen >= 0) {
		uint8_t n = (uint8_t)s->pathlen;

		tlv(&v, 0x02, &n, 1);
	}
	tlv_buf(&b, 0x30, &v);
	extension(&c->part[P_EXTS], ce_bc, 3, !s->bc_not_critical, &b);
	if (s->ku) {
		uint8_t bits[2] = { 0, (uint8_t)s->ku };

		/* the unused bits after the last one set */
		while (!(bits[1] & (1u << bits[0])))
			bits[0]++;
		memset(&b, 0, sizeof b);
		tlv(&b, 0x03, bits, 2);
		extension(&c->part[P_EXTS], ce_ku, 3, true, &b);
	}
	if (!s->no_skid) {
		key_id(key, id);
		memset(&b, 0, sizeof b);
		tlv(&b, 0x04, id, 20);
		extension(&c->part[P_EXTS], ce_skid, 3, false, &b);
	}
	if (!s->no_akid) {
		key_id(issuer_key, id);
		memset(&v, 0, sizeof v);
		memset(&b, 0, sizeof b);
		tlv(&v, 0x80, id, 20);
		tlv_buf(&b, 0x30, &v);
		extension(&c->part[P_EXTS], ce_akid, 3, false, &b);
	}
	put(&c->part[P_OUTER_ALG], ALG_SHA256, sizeof ALG_SHA256);
}

/* The certificate: the TBS from the parts, signed by the issuer's key. */
static size_t
cert_der(const Cert *c, uint8_t *out)
{
	Buf tbs_in = { 0 }, tbs = { 0 }, cert_in = { 0 }, cert = { 0 }, ext = { 0 }, ext3 = { 0 }, bits = { 0 };
	uint8_t sig[80];
	size_t sig_len = 0;

	for (int i = P_VERSION; i < P_EXTS; i++)
		put(&tbs_in, c->part[i].b, c->part[i].n);
	if (c->part[P_EXTS].n) {
		tlv_buf(&ext, 0x30, &c->part[P_EXTS]);
		tlv_buf(&ext3, 0xa3, &ext);
		put(&tbs_in, ext3.b, ext3.n);
	}
	tlv_buf(&tbs, 0x30, &tbs_in);
	if (cp_ecdsa_sign(c->issuer_key, tbs.b, tbs.n, sig, &sig_len))
		abort();
	put(&cert_in, tbs.b, tbs.n);
	put(&cert_in, c->part[P_OUTER_ALG].b, c->part[P_OUTER_ALG].n);
	put(&bits, "\0", 1);
	put(&bits, sig, sig_len);
	tlv_buf(&cert_in, 0x03, &bits);
	tlv_buf(&cert, 0x30, &cert_in);
	memcpy(out, cert.b, cert.n);
	return cert.n;
}

/* ---- the operator of these tests: root, intermediate, SM ---- */

static CpKey *root_key, *inter_key, *sm_key, *other_key;

static const Spec ROOT = { "Test Operator", "root", "Test Operator", "root", true, -1, 0x06, false, false, 0, 0, false };
static const Spec INTER = { "Test Operator", "intermediate", "Test Operator", "root", true, -1, 0x06, false, false, 0, 0, false };
static const Spec SM = { "Test Operator", "subscription manager", "Test Operator", "root", false, -1, 0x80, false, false, 0, 0, false };

static size_t
make(const Spec *s, CpKey *key, CpKey *issuer_key, uint8_t *out)
{
	Cert c;

	cert_init(&c, s, key, issuer_key);
	return cert_der(&c, out);
}

/* ---- the reader's refusals ---- */

static CpCertError
parse(const uint8_t *der, size_t len)
{
	CpCert c;

	return cp_cert_parse(der, len, NULL, &c);
}

#define CHECK_CERT(e, want) do {                                                  \
		CpCertError e_ = (e);                                             \
		cp_test_checks++;                                                 \
		if (e_ != (want)) {                                               \
			cp_test_failures++;                                       \
			fprintf(stderr, "%s:%d: %s = %s, want %s\n", __FILE__, __LINE__, \
				#e, cp_cert_error_name(e_), cp_cert_error_name(want)); \
		}                                                                 \
	} while (0)

/* A part replaced, the certificate rebuilt and signed. */
static CpCertError
parse_with(const Spec *s, int part, const void *bytes, size_t n)
{
	uint8_t der[2048];
	Cert c;

	cert_init(&c, s, sm_key, root_key);
	c.part[part].n = 0;
	put(&c.part[part], bytes, n);
	return parse(der, cert_der(&c, der));
}

/* An extension added to the SM's. */
static CpCertError
parse_with_ext(const uint8_t *ext, size_t n)
{
	uint8_t der[2048];
	Cert c;

	cert_init(&c, &SM, sm_key, root_key);
	put(&c.part[P_EXTS], ext, n);
	return parse(der, cert_der(&c, der));
}

static void
test_der(void)
{
	uint8_t der[2100], bad[2100];
	size_t len = make(&SM, sm_key, root_key, der);
	CpCert c;
	size_t used = 0;

	CHECK_CERT(parse(der, len), CP_CERT_OK);
	CHECK_CERT(cp_cert_parse(der, len, &used, &c), CP_CERT_OK);
	CP_CHECK_INT(used, len);
	CP_CHECK(der[0] == 0x30 && der[1] == 0x82);

	/* lengths: one more than there is, one less than the contents */
	memcpy(bad, der, len);
	bad[3]++;
	CHECK_CERT(parse(bad, len), CP_CERT_DER);
	bad[3] -= 2;
	CHECK_CERT(parse(bad, len), CP_CERT_DER);
	CHECK_CERT(parse(der, len - 1), CP_CERT_DER);
	/* trailing bytes after the certificate */
	memcpy(bad, der, len);
	bad[len] = 0;
	CHECK_CERT(parse(bad, len + 1), CP_CERT_DER);
	/* the indefinite length (BER), end-of-contents at the end */
	bad[0] = 0x30;
	bad[1] = 0x80;
	memcpy(bad + 2, der + 4, len - 4);
	bad[len - 2] = bad[len - 1] = 0;
	CHECK_CERT(parse(bad, len), CP_CERT_DER);
	/* a length not in its shortest form: 81 05 for 05, 82 00 xx for 81 xx */
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x81\x01\x05", 4), CP_CERT_DER);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x81\x7f", 3), CP_CERT_DER);
	/* a high tag number, and a tag that is not the one due */
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x1f\x02\x01\x05", 4), CP_CERT_DER);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x04\x01\x05", 3), CP_CERT_DER);

	/* integers: minimal, the serial positive and at most 20 bytes */
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x02\x00\x05", 4), CP_CERT_INTEGER);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x02\xff\x85", 4), CP_CERT_INTEGER);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x00", 2), CP_CERT_INTEGER);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x01\x00", 3), CP_CERT_INTEGER);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x01\x85", 3), CP_CERT_INTEGER);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x02\x00\x85", 4), CP_CERT_OK);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x15\x00\x80\x01\x02\x03\x04\x05\x06\x07\x08\x09"
			      "\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13", 23), CP_CERT_OK);
	CHECK_CERT(parse_with(&SM, P_SERIAL, "\x02\x15\x01\x80\x01\x02\x03\x04\x05\x06\x07\x08\x09"
			      "\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13", 23), CP_CERT_INTEGER);
	CHECK_CERT(parse_with(&SM, P_VERSION, "\xa0\x04\x02\x02\x00\x02", 6), CP_CERT_INTEGER);
	/* v3 only */
	CHECK_CERT(parse_with(&SM, P_VERSION, "\xa0\x03\x02\x01\x01", 5), CP_CERT_VERSION);
	CHECK_CERT(parse_with(&SM, P_VERSION, "", 0), CP_CERT_VERSION);       /* v1: no [0] */

	/* the algorithm: ecdsa-with-SHA256, without parameters, both fields */
	CHECK_CERT(parse_with(&SM, P_ALG, ALG_SHA384, sizeof ALG_SHA384), CP_CERT_ALGORITHM);
	CHECK_CERT(parse_with(&SM, P_OUTER_ALG, ALG_SHA384, sizeof ALG_SHA384), CP_CERT_ALGORITHM);
	CHECK_CERT(parse_with(&SM, P_ALG, "\x30\x0c\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02\x05\x00", 14),
		   CP_CERT_ALGORITHM);

	/* the key: id-ecPublicKey on prime256v1, the uncompressed point */
	{
		uint8_t pub[65];
		Buf b = { 0 };

		point_of(sm_key, pub);
		spki(&b, OID_RSA, sizeof OID_RSA, OID_P256, sizeof OID_P256, pub, 65);
		CHECK_CERT(parse_with(&SM, P_SPKI, b.b, b.n), CP_CERT_KEY_TYPE);
		b.n = 0;
		spki(&b, OID_EC, sizeof OID_EC, OID_P384, sizeof OID_P384, pub, 65);
		CHECK_CERT(parse_with(&SM, P_SPKI, b.b, b.n), CP_CERT_CURVE);
		b.n = 0;
		pub[0] = 0x02 | (pub[64] & 1);
		spki(&b, OID_EC, sizeof OID_EC, OID_P256, sizeof OID_P256, pub, 33);
		CHECK_CERT(parse_with(&SM, P_SPKI, b.b, b.n), CP_CERT_POINT);
		/* off the curve: read, but no key comes of it */
		point_of(sm_key, pub);
		pub[64] ^= 1;
		b.n = 0;
		spki(&b, OID_EC, sizeof OID_EC, OID_P256, sizeof OID_P256, pub, 65);
		{
			Cert cc;
			uint8_t d[2048];
			size_t n;
			CpKey *k;

			cert_init(&cc, &SM, sm_key, root_key);
			cc.part[P_SPKI] = b;
			n = cert_der(&cc, d);
			CHECK_CERT(cp_cert_parse(d, n, NULL, &c), CP_CERT_OK);
			k = cp_cert_key(&c);
			CP_CHECK(k == NULL);
			cp_key_free(k);
		}
	}

	/* names: not empty */
	CHECK_CERT(parse_with(&SM, P_SUBJECT, "\x30\x00", 2), CP_CERT_NAME);
	CHECK_CERT(parse_with(&SM, P_ISSUER, "\x30\x00", 2), CP_CERT_NAME);
	CHECK_CERT(parse_with(&SM, P_SUBJECT, "\x30\x02\x31\x00", 4), CP_CERT_NAME);
	/* times: UTCTime or GeneralizedTime in their one form */
	CHECK_CERT(parse_with(&SM, P_VALIDITY, "\x30\x1e\x17\x0d" "231114221320Z" "\x17\x0d" "231314221320Z", 32),
		   CP_CERT_TIME);
	CHECK_CERT(parse_with(&SM, P_VALIDITY, "\x30\x1e\x17\x0d" "230229221320Z" "\x17\x0d" "240229221320Z", 32),
		   CP_CERT_TIME);
	CHECK_CERT(parse_with(&SM, P_VALIDITY, "\x30\x1c\x17\x0b" "2311142213Z" "\x17\x0d" "241114221320Z", 30),
		   CP_CERT_TIME);
	CHECK_CERT(parse_with(&SM, P_VALIDITY, "\x30\x22\x17\x0d" "231114221320Z" "\x18\x11" "20241114221320.5Z", 36),
		   CP_CERT_TIME);
	CHECK_CERT(parse_with(&SM, P_VALIDITY, "\x30\x20\x17\x0d" "231114221320Z" "\x18\x0f" "20501114221320Z", 34),
		   CP_CERT_OK);

	/* extensions */
	{
		static const uint8_t unknown_critical[] = {
			0x30, 0x0c, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x01, 0x01, 0xff, 0x04, 0x02, 0x05, 0x00,
		};
		static const uint8_t unknown[] = {
			0x30, 0x09, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x04, 0x02, 0x05, 0x00,
		};
		static const uint8_t critical_false[] = {
			0x30, 0x0c, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x01, 0x01, 0x00, 0x04, 0x02, 0x05, 0x00,
		};
		/* extendedKeyUsage, critical: understood by OpenSSL, not in the profile */
		static const uint8_t eku_critical[] = {
			0x30, 0x16, 0x06, 0x03, 0x55, 0x1d, 0x25, 0x01, 0x01, 0xff, 0x04, 0x0c, 0x30, 0x0a,
			0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03,
		};
		static const uint8_t second_ku[] = {
			0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x07, 0x80,
		};
		Spec s = SM;

		CHECK_CERT(parse_with_ext(unknown_critical, sizeof unknown_critical), CP_CERT_CRITICAL);
		CHECK_CERT(parse_with_ext(eku_critical, sizeof eku_critical), CP_CERT_CRITICAL);
		CHECK_CERT(parse_with_ext(unknown, sizeof unknown), CP_CERT_OK);
		CHECK_CERT(parse_with_ext(critical_false, sizeof critical_false), CP_CERT_EXTENSION);
		CHECK_CERT(parse_with_ext(second_ku, sizeof second_ku), CP_CERT_EXTENSION);
		CHECK_CERT(parse_with(&SM, P_EXTS, "", 0), CP_CERT_EXTENSION);     /* no [3] at all */
		/* a CA without keyUsage or its key identifier; keyCertSign or a
		 * path length outside a CA */
		s = ROOT;
		s.ku = 0;
		CHECK_CERT(parse_with(&s, P_SERIAL, "\x02\x01\x05", 3), CP_CERT_EXTENSION);
		s = ROOT;
		s.ku = 0x80;
		CHECK_CERT(parse_with(&s, P_SERIAL, "\x02\x01\x05", 3), CP_CERT_EXTENSION);
		s = ROOT;
		s.no_skid = true;
		CHECK_CERT(parse_with(&s, P_SERIAL, "\x02\x01\x05", 3), CP_CERT_EXTENSION);
		s = ROOT;
		s.bc_not_critical = true;      /* RFC 5280 4.2.1.9: critical in a CA */
		CHECK_CERT(parse_with(&s, P_SERIAL, "\x02\x01\x05", 3), CP_CERT_EXTENSION);
		s = SM;
		s.bc_not_critical = true;      /* an end entity's may be either */
		CHECK_CERT(parse_with(&s, P_SERIAL, "\x02\x01\x05", 3), CP_CERT_OK);
		s = SM;
		s.ku = 0x84;
		CHECK_CERT(parse_with(&s, P_SERIAL, "\x02\x01\x05", 3), CP_CERT_EXTENSION);
		s = SM;
		s.pathlen = 0;
		CHECK_CERT(parse_with(&s, P_SERIAL, "\x02\x01\x05", 3), CP_CERT_EXTENSION);
	}

	/* a chain: at most CP_CHAIN_CERTS_MAX, nothing after the last */
	{
		uint8_t chain[CP_CHAIN_MAX];
		CpCert certs[CP_CHAIN_CERTS_MAX];
		size_t n = 0, k;

		for (k = 0; k < 5 && (k + 1) * len <= sizeof chain; k++)
			memcpy(chain + k * len, der, len);
		CHECK_CERT(cp_cert_chain_parse(chain, len, certs, &n), CP_CERT_OK);
		CP_CHECK_INT(n, 1);
		if (5 * len <= sizeof chain) {
			CHECK_CERT(cp_cert_chain_parse(chain, 5 * len, certs, &n), CP_CERT_CHAIN);
		}
		CHECK_CERT(cp_cert_chain_parse(chain, len + 1, certs, &n), CP_CERT_DER);
		CHECK_CERT(cp_cert_chain_parse(chain, 0, certs, &n), CP_CERT_CHAIN);
	}
}

/* The operator's name: O, else CN, when printable ASCII of at most 64. */
static void
test_name(void)
{
	static const struct {
		const char *o_tlv;      /* the O value's TLV, or NULL for none */
		size_t o_len;
		const char *want;
	} v[] = {
		{ "\x0c\x04" "Op A", 6, "Op A" },
		{ "\x13\x04" "Op B", 6, "Op B" },
		{ "\x1e\x08\x00" "O\x00" "p\x00 \x00" "C", 10, "Op C" },     /* BMPString */
		{ "\x1e\x04\x04\x1f\x00p", 6, "cn" },                        /* not ASCII: the CN */
		{ "\x0c\x04" "Op\x01" "D", 6, "cn" },                            /* a control character */
		{ "\x0c\x03" "\xc3\xa9x", 5, "cn" },                          /* UTF-8, not ASCII */
		{ NULL, 0, "cn" },
	};
	char big[80], out[CP_OPERATOR_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		Buf seq = { 0 }, set = { 0 }, atv = { 0 }, nm = { 0 };
		uint8_t der[2048];
		size_t n;
		Cert c;
		CpCert cc;

		if (v[i].o_tlv) {
			tlv(&atv, 0x06, OID_O, 3);
			put(&atv, v[i].o_tlv, v[i].o_len);
			tlv_buf(&set, 0x30, &atv);
			tlv_buf(&seq, 0x31, &set);
		}
		memset(&atv, 0, sizeof atv);
		memset(&set, 0, sizeof set);
		tlv(&atv, 0x06, OID_CN, 3);
		tlv(&atv, 0x0c, "cn", 2);
		tlv_buf(&set, 0x30, &atv);
		tlv_buf(&seq, 0x31, &set);
		tlv_buf(&nm, 0x30, &seq);
		cert_init(&c, &SM, sm_key, root_key);
		c.part[P_SUBJECT] = nm;
		n = cert_der(&c, der);
		CHECK_CERT(cp_cert_parse(der, n, NULL, &cc), CP_CERT_OK);
		cp_cert_operator_name(&cc, out, sizeof out);
		if (strcmp(out, v[i].want) != 0)
			fprintf(stderr, "name %zu: %s, want %s\n", i, out, v[i].want);
		CP_CHECK(strcmp(out, v[i].want) == 0);
	}
	/* 64 characters are a name, 65 are not */
	memset(big, 'a', sizeof big);
	for (size_t len = 64; len <= 65; len++) {
		Spec s = SM;
		uint8_t der[2048];
		size_t n;
		CpCert cc;

		big[len] = '\0';
		s.o = big;
		n = make(&s, sm_key, root_key, der);
		CHECK_CERT(cp_cert_parse(der, n, NULL, &cc), CP_CERT_OK);
		cp_cert_operator_name(&cc, out, sizeof out);
		CP_CHECK(len == 64 ? strcmp(out, big) == 0 : strcmp(out, "subscription manager") == 0);
		big[len] = 'a';
	}
}

/* ---- path validation ---- */

typedef struct {
	uint8_t der[CP_CHAIN_CERTS_MAX][2048];
	size_t len[CP_CHAIN_CERTS_MAX];
	size_t n;
	CpCert cert[CP_CHAIN_CERTS_MAX];
} Chain;

static CpCertError
path(Chain *ch, const uint8_t *root, size_t root_len, CpKey *root_pub, int64_t now)
{
	CpCertAnchor a = { .key = root_pub };
	size_t at = 9;
	CpCertError e;

	for (size_t i = 0; i < ch->n; i++)
		if ((e = cp_cert_parse(ch->der[i], ch->len[i], NULL, &ch->cert[i])))
			return e;
	if ((e = cp_cert_parse(root, root_len, NULL, &a.cert)))
		return e;
	e = cp_cert_path_verify(ch->cert, ch->n, &a, 1, now, &at);
	if (e == CP_CERT_OK)
		CP_CHECK_INT(at, 0);
	return e;
}

static void
test_path(void)
{
	uint8_t root[2048];
	size_t root_len;
	Chain ch;
	Spec s, r;

	root_len = make(&ROOT, root_key, root_key, root);
	memset(&ch, 0, sizeof ch);
	ch.n = 1;
	ch.len[0] = make(&SM, sm_key, root_key, ch.der[0]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_OK);
	/* validity against the time given */
	CHECK_CERT(path(&ch, root, root_len, root_key, NB + 86400), CP_CERT_OK);
	CHECK_CERT(path(&ch, root, root_len, root_key, NA + 1), CP_CERT_EXPIRED);
	CHECK_CERT(path(&ch, root, root_len, root_key, NB - 1), CP_CERT_NOT_YET_VALID);
	{
		uint8_t old_root[2048];
		size_t old_len;

		r = ROOT;
		r.not_after = NB + 86400;
		old_len = make(&r, root_key, root_key, old_root);
		CHECK_CERT(path(&ch, old_root, old_len, root_key, NB + 2 * 86400), CP_CERT_EXPIRED);
		CHECK_CERT(path(&ch, old_root, old_len, root_key, -1), CP_CERT_OK);
	}
	/* the signing certificate: an end entity with digitalSignature */
	s = SM;
	s.ku = 0x20;    /* keyEncipherment */
	ch.len[0] = make(&s, sm_key, root_key, ch.der[0]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_SIGNER);
	s = SM;
	s.ca = true;
	s.ku = 0x86;
	ch.len[0] = make(&s, sm_key, root_key, ch.der[0]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_SIGNER);
	s = SM;
	s.ku = 0;       /* no keyUsage: allowed */
	ch.len[0] = make(&s, sm_key, root_key, ch.der[0]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_OK);
	s = SM;
	s.no_akid = true;
	ch.len[0] = make(&s, sm_key, root_key, ch.der[0]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_EXTENSION);
	/* the issuer by name, and by key identifier */
	s = SM;
	s.issuer_cn = "another root";
	ch.len[0] = make(&s, sm_key, root_key, ch.der[0]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_ISSUER);
	ch.len[0] = make(&SM, sm_key, other_key, ch.der[0]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_ISSUER);
	{
		/* the right key identifier, the wrong signature */
		Cert c;

		cert_init(&c, &SM, sm_key, root_key);
		c.issuer_key = other_key;
		ch.len[0] = cert_der(&c, ch.der[0]);
		CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_SIGNATURE);
	}

	/* through an intermediate */
	ch.n = 2;
	s = SM;
	s.issuer_cn = "intermediate";
	ch.len[0] = make(&s, sm_key, inter_key, ch.der[0]);
	ch.len[1] = make(&INTER, inter_key, root_key, ch.der[1]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_OK);
	/* not a CA: no cA, or no keyCertSign */
	r = INTER;
	r.ca = false;
	r.ku = 0x80;
	ch.len[1] = make(&r, inter_key, root_key, ch.der[1]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_NOT_CA);
	r = INTER;
	r.ku = 0;
	ch.len[1] = make(&r, inter_key, root_key, ch.der[1]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_EXTENSION);  /* a CA needs keyUsage */
	/* the root's path length: 0 allows no intermediate, 1 one */
	ch.len[1] = make(&INTER, inter_key, root_key, ch.der[1]);
	{
		uint8_t pl_root[2048];
		size_t pl_len;

		r = ROOT;
		r.pathlen = 0;
		pl_len = make(&r, root_key, root_key, pl_root);
		CHECK_CERT(path(&ch, pl_root, pl_len, root_key, -1), CP_CERT_PATH_LENGTH);
		r.pathlen = 1;
		pl_len = make(&r, root_key, root_key, pl_root);
		CHECK_CERT(path(&ch, pl_root, pl_len, root_key, -1), CP_CERT_OK);
	}
	/* an intermediate's own path length 0: the SM below it is fine */
	r = INTER;
	r.pathlen = 0;
	ch.len[1] = make(&r, inter_key, root_key, ch.der[1]);
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_OK);
	/* the intermediate missing: no issuer */
	ch.n = 1;
	CHECK_CERT(path(&ch, root, root_len, root_key, -1), CP_CERT_ISSUER);
}

/* ---- the differential check against OpenSSL ---- */

/* What the library did before: OpenSSL's parser and path validation. */
typedef struct {
	bool ok;
	uint8_t spki[91];
	char name[CP_OPERATOR_NAME_MAX + 1];
	uint8_t root[CP_SHA256_LEN];
} Verdict;

static void
openssl_name(X509 *leaf, char *out, size_t size)
{
	const X509_NAME *subject = X509_get_subject_name(leaf);
	static const int nids[] = { NID_organizationName, NID_commonName };

	out[0] = '\0';
	for (size_t i = 0; i < 2; i++) {
		int at = X509_NAME_get_index_by_NID(subject, nids[i], -1);
		unsigned char *utf8 = NULL;
		int n;

		if (at < 0)
			continue;
		n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
		if (n > 0 && (size_t)n < size && cp_is_printable_ascii(utf8, (size_t)n)) {
			memcpy(out, utf8, (size_t)n);
			out[n] = '\0';
		}
		OPENSSL_free(utf8);
		if (out[0])
			return;
	}
}

static bool
openssl_spki(CpKey *key, uint8_t out[91])
{
	unsigned char *d = NULL;
	int n = i2d_PUBKEY(key, &d);
	bool ok = n == 91;

	if (ok)
		memcpy(out, d, 91);
	OPENSSL_free(d);
	return ok;
}

static Verdict
openssl_verify(const uint8_t *anchor, size_t anchor_len, const uint8_t *chain, size_t len)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	const unsigned char *p = chain, *end = chain + len;
	X509 *leaf, *root, *a = NULL;
	Verdict v = { 0 };

	while (p < end) {
		X509 *x = sk_X509_num(certs) < CP_CHAIN_CERTS_MAX ? d2i_X509(NULL, &p, end - p) : NULL;

		if (!x)
			goto out;
		sk_X509_push(certs, x);
	}
	if (sk_X509_num(certs) == 0)
		goto out;
	leaf = sk_X509_value(certs, 0);
	if (!X509_get0_pubkey(leaf) || !cp_pkey_is_p256(X509_get0_pubkey(leaf)) || X509_check_ca(leaf) != 0 ||
	    ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
	     !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)))
		goto out;
	if (anchor) {
		p = anchor;
		a = d2i_X509(NULL, &p, (long)anchor_len);
		if (!a || X509_check_ca(a) == 0)
			goto out;
	} else {
		X509 *last = sk_X509_value(certs, sk_X509_num(certs) - 1);

		if (sk_X509_num(certs) < 2 || X509_check_issued(last, last) != X509_V_OK ||
		    X509_verify(last, X509_get0_pubkey(last)) != 1 || !X509_up_ref(last))
			goto out;
		a = last;
	}
	if (X509_STORE_add_cert(store, a) != 1 || X509_STORE_CTX_init(ctx, store, leaf, certs) != 1)
		goto out;
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_X509_STRICT);
	X509_STORE_CTX_set_depth(ctx, CP_CHAIN_CERTS_MAX);
	if (X509_verify_cert(ctx) != 1)
		goto out;
	root = sk_X509_value(X509_STORE_CTX_get0_chain(ctx), sk_X509_num(X509_STORE_CTX_get0_chain(ctx)) - 1);
	{
		uint8_t rs[91];

		if (!openssl_spki(X509_get0_pubkey(root), rs) || !openssl_spki(X509_get0_pubkey(leaf), v.spki))
			goto out;
		cp_sha256(rs, sizeof rs, v.root);
	}
	openssl_name(leaf, v.name, sizeof v.name);
	v.ok = true;
out:
	X509_free(a);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return v;
}

/* The library's answer, through its public entry point. */
static Verdict
ours(const CpAnchors *anchors, const uint8_t *chain, size_t len)
{
	Verdict v = { 0 };
	CpKey *signer = NULL;
	CpOperatorId id;
	uint8_t *spki;
	size_t n = 0;

	if (cp_operator_chain_verify(anchors, NULL, chain, len, &signer, &id) != CP_OK)
		return v;
	spki = cp_pubkey_spki(signer, &n);
	if (spki && n == sizeof v.spki) {
		memcpy(v.spki, spki, n);
		memcpy(v.root, id.root, sizeof v.root);
		memcpy(v.name, id.name, sizeof v.name);
		v.ok = true;
	}
	free(spki);
	cp_key_free(signer);
	return v;
}

static int differential_cases, differential_accepted, outline_compared;

/* Each certificate OpenSSL reads from bytes (a chain, an anchor) is one
 * for cp_cert_outline too when it is DER, and both call it a CA or not
 * alike (the Mbed TLS backend takes trusted operators through it). */
static void
outline_agrees(const char *what, int i, const uint8_t *der, size_t len)
{
	const unsigned char *p = der, *end = der + len;

	while (p < end) {
		const unsigned char *start = p;
		X509 *x = d2i_X509(NULL, &p, end - p);
		bool ca = false;

		if (!x)
			break;
		if (cp_cert_outline(start, (size_t)(p - start), &ca) == CP_CERT_OK) {
			outline_compared++;
			cp_test_checks++;
			if (ca != (X509_check_ca(x) != 0)) {
				cp_test_failures++;
				fprintf(stderr, "%s %d: X509_check_ca says %sCA, cp_cert_outline %sCA\n", what, i,
					X509_check_ca(x) ? "" : "not ", ca ? "" : "not ");
			}
		}
		X509_free(x);
	}
	ERR_clear_error();
}

static void
agree(const char *what, int i, const uint8_t *anchor, size_t anchor_len, const CpAnchors *anchors,
      const uint8_t *chain, size_t len)
{
	Verdict o = openssl_verify(anchor, anchor_len, chain, len);
	Verdict u = ours(anchors, chain, len);

	outline_agrees(what, i, chain, len);
	if (anchor)
		outline_agrees(what, i, anchor, anchor_len);
	differential_cases++;
	differential_accepted += o.ok;
	cp_test_checks++;
	if (o.ok != u.ok || (o.ok && (memcmp(o.spki, u.spki, sizeof o.spki) ||
				      memcmp(o.root, u.root, sizeof o.root) || strcmp(o.name, u.name)))) {
		cp_test_failures++;
		fprintf(stderr, "%s %d: OpenSSL %s (%s), the reader %s (%s)\n", what, i,
			o.ok ? "accepts" : "refuses", o.name, u.ok ? "accepts" : "refuses", u.name);
	}
}

static CpAnchors *
anchors_of(const uint8_t *der, size_t len)
{
	char *pem = cp_cert_to_pem(der, len);
	CpAnchors *a = NULL;

	if (!pem || cp_anchors_from_pem(pem, strlen(pem), &a))
		a = NULL;
	free(pem);
	return a;
}

static void
cat(uint8_t *chain, size_t *len, const uint8_t *der, size_t n)
{
	memcpy(chain + *len, der, n);
	*len += n;
}

static uint64_t rng = 0x9e3779b97f4a7c15;

static uint32_t
next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* One chain against its anchor and with trust on first use, then random
 * single-byte changes: of the signing certificate against the anchor, of
 * any byte with trust on first use (where every byte is signed or is a
 * signature, so that both must refuse them alike). */
static void
differential_chain(const char *what, const uint8_t *root, size_t root_len,
		   const uint8_t *chain, size_t len, size_t leaf_len, int flips)
{
	CpAnchors *anchors = anchors_of(root, root_len);
	uint8_t m[CP_CHAIN_MAX];

	CP_CHECK(anchors != NULL);
	agree(what, -1, root, root_len, anchors, chain, len);
	agree(what, -2, NULL, 0, NULL, chain, len);
	for (int i = 0; i < flips; i++) {
		size_t at = next_random() % leaf_len;

		memcpy(m, chain, len);
		m[at] ^= (uint8_t)(1u << (next_random() % 8));
		agree(what, i, root, root_len, anchors, m, len);
		at = next_random() % len;
		memcpy(m, chain, len);
		m[at] = (uint8_t)next_random();
		agree(what, i, NULL, 0, NULL, m, len);
	}
	cp_anchors_free(anchors);
}

/*
 * A certificate made by OpenSSL itself, with extensions in its config
 * syntax: the way the network tests make their operator chain with the
 * openssl command (tests/integration/network/netbench.py) and the tools'
 * tests make another operator's root.
 */
static size_t
openssl_make(CpKey *key, const char *cn, X509 *issuer, CpKey *issuer_key,
	     const char *const *ext, uint8_t *out, X509 **keep)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	unsigned char *q = out;
	int n = 0;

	if (!x || X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 7) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){ NB }) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, &(time_t){ NB }) ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_UTF8,
				       (const unsigned char *)"cellprov test operator", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)) != 1)
		abort();
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	for (; *ext; ext += 2) {
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, ext[0], ext[1]);

		if (!e || X509_add_ext(x, e, -1) != 1)
			abort();
		X509_EXTENSION_free(e);
	}
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0 || (n = i2d_X509(x, &q)) <= 0)
		abort();
	if (keep)
		*keep = x;
	else
		X509_free(x);
	return (size_t)n;
}

static void
differential_openssl_made(void)
{
	static const char *const netbench_root[] = {
		"basicConstraints", "critical,CA:TRUE", "keyUsage", "critical,keyCertSign,cRLSign",
		"subjectKeyIdentifier", "hash", NULL,
	};
	static const char *const netbench_sm[] = {
		"basicConstraints", "critical,CA:FALSE", "keyUsage", "critical,digitalSignature",
		"subjectKeyIdentifier", "hash", "authorityKeyIdentifier", "keyid", NULL,
	};
	/* openssl req's default v3_ca: the key identifiers with the issuer
	 * and serial in the authority's, basicConstraints not critical */
	static const char *const req_root[] = {
		"subjectKeyIdentifier", "hash", "authorityKeyIdentifier", "keyid:always,issuer",
		"basicConstraints", "CA:TRUE", "keyUsage", "keyCertSign", NULL,
	};
	static const char *const req_sm[] = {
		"basicConstraints", "CA:FALSE", "subjectKeyIdentifier", "hash",
		"authorityKeyIdentifier", "keyid,issuer:always", NULL,
	};
	/* an extended key usage, critical: OpenSSL understands it, the
	 * profile does not */
	static const char *const eku_sm[] = {
		"basicConstraints", "critical,CA:FALSE", "extendedKeyUsage", "critical,codeSigning",
		"subjectKeyIdentifier", "hash", "authorityKeyIdentifier", "keyid", NULL,
	};
	static const char *const root_no_ku[] = {
		"basicConstraints", "critical,CA:TRUE", "subjectKeyIdentifier", "hash", NULL,
	};
	struct {
		const char *what;
		const char *const *root, *const *sm;
	} v[] = {
		{ "openssl netbench", netbench_root, netbench_sm },
		{ "openssl req", req_root, req_sm },
		{ "openssl authority issuer and serial", netbench_root, req_sm },
		{ "openssl eku", netbench_root, eku_sm },
		{ "openssl root without keyUsage", root_no_ku, netbench_sm },
	};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		uint8_t root[2048], chain[CP_CHAIN_MAX];
		size_t root_len, len;
		X509 *rx = NULL;

		root_len = openssl_make(root_key, "root", NULL, root_key, v[i].root, root, &rx);
		len = openssl_make(sm_key, "sm", rx, root_key, v[i].sm, chain, NULL);
		memcpy(chain + len, root, root_len);
		if (v[i].sm == eku_sm) {
			/* The one difference, on purpose: OpenSSL knows
			 * extendedKeyUsage and, with no purpose asked, ignores
			 * what it says; the profile does not know it, and a
			 * certificate restricted to other uses by a critical
			 * one does not sign profiles. */
			CpAnchors *a = anchors_of(root, root_len);

			CP_CHECK(openssl_verify(root, root_len, chain, len + root_len).ok);
			CP_CHECK(!ours(a, chain, len + root_len).ok);
			cp_anchors_free(a);
		} else if (v[i].root == root_no_ku) {
			agree(v[i].what, -2, NULL, 0, NULL, chain, len + root_len);
		} else {
			differential_chain(v[i].what, root, root_len, chain, len + root_len, len, 20);
		}
		X509_free(rx);
	}
}

static void
test_differential(void)
{
	uint8_t root[2048], chain[CP_CHAIN_MAX], der[2048];
	size_t root_len, len, n;
	CpTestOperator op;
	Spec s, r;

	/* the chain the tests' operator uses (cp_cert_make) */
	CP_CHECK(cp_test_operator_make(&op, "Example Operator"));
	if (op.chain_len) {
		differential_chain("test operator", op.root, op.root_len, op.chain, op.chain_len,
				   op.chain_len - op.root_len, 150);
		cp_test_operator_clear(&op);
	}
	/* the published vectors' */
	{
		CpTestVectors v;

		if (cp_test_vectors_load("../cellprov-v2.txt", &v)) {
			const char *hex_chain = cp_test_block_get(&v.blocks[0], "op_chain");
			const char *hex_root = cp_test_block_get(&v.blocks[0], "op_root_cert");
			const char *hex_sm = cp_test_block_get(&v.blocks[0], "op_sm_cert");

			for (size_t b = 1; b < v.n && !hex_chain; b++) {
				hex_chain = cp_test_block_get(&v.blocks[b], "op_chain");
				hex_root = cp_test_block_get(&v.blocks[b], "op_root_cert");
				hex_sm = cp_test_block_get(&v.blocks[b], "op_sm_cert");
			}
			CP_CHECK(hex_chain && hex_root && hex_sm);
			if (hex_chain && hex_root && hex_sm) {
				len = cp_test_unhex(hex_chain, chain, sizeof chain);
				root_len = cp_test_unhex(hex_root, root, sizeof root);
				differential_chain("published", root, root_len, chain, len,
						   cp_test_unhex(hex_sm, der, sizeof der), 150);
			}
			cp_test_vectors_free(&v);
		} else {
			CP_CHECK(!"the published vectors");
		}
	}

	/* the certificates built here, and each made wrong in one way */
	root_len = make(&ROOT, root_key, root_key, root);
	{
		struct {
			const char *what;
			Spec sm, inter, root;
			bool with_inter;
		} v[] = {
			{ "plain", SM, INTER, ROOT, false },
			{ "intermediate", SM, INTER, ROOT, true },
			{ "signer a CA", SM, INTER, ROOT, false },
			{ "signer keyEncipherment", SM, INTER, ROOT, false },
			{ "signer no keyUsage", SM, INTER, ROOT, false },
			{ "signer keyCertSign", SM, INTER, ROOT, false },
			{ "signer no akid", SM, INTER, ROOT, false },
			{ "signer path length", SM, INTER, ROOT, false },
			{ "issuer name", SM, INTER, ROOT, false },
			{ "intermediate not CA", SM, INTER, ROOT, true },
			{ "intermediate no keyUsage", SM, INTER, ROOT, true },
			{ "intermediate no keyCertSign", SM, INTER, ROOT, true },
			{ "intermediate no skid", SM, INTER, ROOT, true },
			{ "intermediate no akid", SM, INTER, ROOT, true },
			{ "root path length 0", SM, INTER, ROOT, true },
			{ "root path length 1", SM, INTER, ROOT, true },
			{ "intermediate path length 0", SM, INTER, ROOT, true },
			{ "expired", SM, INTER, ROOT, true },
			{ "root without keyUsage", SM, INTER, ROOT, false },
		};

		v[2].sm.ca = true;
		v[2].sm.ku = 0x86;
		v[3].sm.ku = 0x20;
		v[4].sm.ku = 0;
		v[5].sm.ku = 0x84;
		v[6].sm.no_akid = true;
		v[7].sm.pathlen = 0;
		v[8].sm.issuer_cn = "someone else";
		v[9].inter.ca = false;
		v[9].inter.ku = 0x80;
		v[10].inter.ku = 0;
		v[11].inter.ku = 0x02;
		v[12].inter.no_skid = true;
		v[13].inter.no_akid = true;
		v[14].root.pathlen = 0;
		v[15].root.pathlen = 1;
		v[16].inter.pathlen = 0;
		v[17].sm.not_before = 1000000000;
		v[17].sm.not_after = 1000086400;
		v[17].inter.not_after = 1000086400;
		v[18].root.ku = 0;
		for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
			uint8_t rt[2048];
			size_t rt_len;

			r = v[i].root;
			rt_len = make(&r, root_key, root_key, rt);
			s = v[i].sm;
			if (v[i].with_inter && !strcmp(s.issuer_cn, "root"))
				s.issuer_cn = "intermediate";
			len = 0;
			n = make(&s, sm_key, v[i].with_inter ? inter_key : root_key, der);
			cat(chain, &len, der, n);
			if (v[i].with_inter) {
				n = make(&v[i].inter, inter_key, root_key, der);
				cat(chain, &len, der, n);
			}
			cat(chain, &len, rt, rt_len);
			if (v[i].root.ku) {
				differential_chain(v[i].what, rt, rt_len, chain, len, 0, 0);
			} else {
				/* an anchor outside the profile: loaded and counted,
				 * not usable, and it ends no path */
				CpAnchors *a = anchors_of(rt, rt_len);

				CP_CHECK(a != NULL);
				CP_CHECK(cp_anchors_count(a) == 1 && cp_anchors_usable(a) == 0);
				cp_anchors_free(a);
				agree(v[i].what, -2, NULL, 0, NULL, chain, len);
			}
		}
	}
	differential_openssl_made();
	CP_CHECK(differential_accepted > 10);
	CP_CHECK(outline_compared > 1000);
	printf("differential: %d chains, %d accepted by both; %d certificates told CA or not alike\n",
	       differential_cases, differential_accepted, outline_compared);
}

int
main(void)
{
	root_key = cp_p256_generate();
	inter_key = cp_p256_generate();
	sm_key = cp_p256_generate();
	other_key = cp_p256_generate();
	if (!root_key || !inter_key || !sm_key || !other_key)
		return cp_test_missing("no P-256 keys");
	test_der();
	test_name();
	test_path();
	test_differential();
	cp_key_free(root_key);
	cp_key_free(inter_key);
	cp_key_free(sm_key);
	cp_key_free(other_key);
	return cp_test_done("test-x509");
}
