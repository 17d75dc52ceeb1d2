/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A strict DER reader for the operator chain's certificates and the path
 * validation over what it reads (docs/protocol.md 4.5, docs/crypto.md).
 * Like hostap's x509v3.c and ell's cert.c, it reads only what the
 * certificate profile allows and refuses the rest; the crypto backend only
 * checks the ECDSA signatures, with keys built from the points read here.
 */
#include "cp-x509-der.h"

#include <string.h>

#include "cp-crypto.h"
#include "cp-tlv.h"

/* ---- DER ---- */

typedef struct {
	const uint8_t *p, *end;
} Reader;

/*
 * The next TLV, which must have tag: a one-byte tag (no high tag
 * numbers), a definite length in its shortest form, contents within
 * the reader. On success *v holds the contents, *tlv (if asked) the whole.
 */
static CpCertError
der_next(Reader *r, uint8_t tag, CpDer *v, CpDer *tlv)
{
	const uint8_t *start = r->p;
	size_t left = (size_t)(r->end - r->p), n, hdr;

	if (left < 2 || r->p[0] != tag)
		return CP_CERT_DER;
	if (r->p[1] < 0x80) {
		n = r->p[1];
		hdr = 2;
	} else if (r->p[1] == 0x81 && left >= 3 && r->p[2] >= 0x80) {
		n = r->p[2];
		hdr = 3;
	} else if (r->p[1] == 0x82 && left >= 4 && r->p[2] != 0) {
		n = (size_t)r->p[2] << 8 | r->p[3];
		hdr = 4;
	} else {
		/* 0x80 is the indefinite length; 0x81 0x00-0x7f and 0x82 0x00
		 * are not the shortest form; longer ones exceed op_chain. */
		return CP_CERT_DER;
	}
	if (n > left - hdr)
		return CP_CERT_DER;
	v->p = r->p + hdr;
	v->len = n;
	r->p += hdr + n;
	if (tlv) {
		tlv->p = start;
		tlv->len = hdr + n;
	}
	return CP_CERT_OK;
}

static bool
der_peek(const Reader *r, uint8_t tag)
{
	return r->p < r->end && r->p[0] == tag;
}

static Reader
der_reader(CpDer v)
{
	return (Reader){ v.p, v.p + v.len };
}

static bool
der_done(const Reader *r)
{
	return r->p == r->end;
}

#define TRY(e) do { CpCertError e_ = (e); if (e_) return e_; } while (0)

/* A DER INTEGER's contents: not empty, no superfluous leading byte. */
static bool
integer_minimal(CpDer v)
{
	if (v.len == 0)
		return false;
	if (v.len > 1 && ((v.p[0] == 0x00 && !(v.p[1] & 0x80)) ||
			  (v.p[0] == 0xff && (v.p[1] & 0x80))))
		return false;
	return true;
}

/* An OBJECT IDENTIFIER's contents: each arc in its shortest base-128 form. */
static bool
oid_ok(CpDer v)
{
	if (v.len == 0 || (v.p[v.len - 1] & 0x80))
		return false;
	for (size_t i = 0; i < v.len; i++)
		if (v.p[i] == 0x80 && (i == 0 || !(v.p[i - 1] & 0x80)))
			return false;
	return true;
}

static bool
der_eq(CpDer a, const uint8_t *b, size_t len)
{
	return a.len == len && memcmp(a.p, b, len) == 0;
}

static bool
der_same(CpDer a, CpDer b)
{
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static CpCertError
der_oid(Reader *r, CpDer *v)
{
	TRY(der_next(r, 0x06, v, NULL));
	return oid_ok(*v) ? CP_CERT_OK : CP_CERT_DER;
}

/* ---- the certificate profile ---- */

/* AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters. */
static const uint8_t alg_ecdsa_sha256[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
};
static const uint8_t oid_ec_public_key[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
static const uint8_t oid_prime256v1[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_organization[] = { 0x55, 0x04, 0x0a };
static const uint8_t oid_common_name[] = { 0x55, 0x04, 0x03 };

/* id-ce 2.5.29.x */
enum {
	CE_SKID = 14,
	CE_KEY_USAGE = 15,
	CE_BASIC_CONSTRAINTS = 19,
	CE_AKID = 35,
};

static CpCertError
algorithm(Reader *r, CpDer *tlv)
{
	CpDer v;

	TRY(der_next(r, 0x30, &v, tlv));
	return der_eq(*tlv, alg_ecdsa_sha256, sizeof alg_ecdsa_sha256) ? CP_CERT_OK : CP_CERT_ALGORITHM;
}

/* Name ::= SEQUENCE OF SET SIZE (1..MAX) OF SEQUENCE { OID, value }:
 * the structure only; names are compared as bytes. Not empty. */
static CpCertError
name(Reader *r, CpDer *tlv)
{
	CpDer v, set, atv, oid, value;
	Reader rdns, atvs, fields;

	TRY(der_next(r, 0x30, &v, tlv));
	if (v.len == 0)
		return CP_CERT_NAME;
	rdns = der_reader(v);
	while (!der_done(&rdns)) {
		TRY(der_next(&rdns, 0x31, &set, NULL));
		if (set.len == 0)
			return CP_CERT_NAME;
		atvs = der_reader(set);
		while (!der_done(&atvs)) {
			TRY(der_next(&atvs, 0x30, &atv, NULL));
			fields = der_reader(atv);
			TRY(der_oid(&fields, &oid));
			/* any one primitive, universal value (the string types) */
			if (der_done(&fields) || (fields.p[0] & 0xe0) != 0 || (fields.p[0] & 0x1f) == 0x1f)
				return CP_CERT_NAME;
			TRY(der_next(&fields, fields.p[0], &value, NULL));
			if (!der_done(&fields))
				return CP_CERT_DER;
		}
	}
	return CP_CERT_OK;
}

static int
digits(const uint8_t *p, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* UTCTime YYMMDDHHMMSSZ (1950-2049) or GeneralizedTime YYYYMMDDHHMMSSZ. */
static CpCertError
time_value(Reader *r, int64_t *out)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	CpDer v;
	int y, mo, d, h, mi, s;
	size_t yl;

	if (der_peek(r, 0x17)) {
		TRY(der_next(r, 0x17, &v, NULL));
		yl = 2;
	} else {
		if (!der_peek(r, 0x18))
			return CP_CERT_TIME;
		TRY(der_next(r, 0x18, &v, NULL));
		yl = 4;
	}
	if (v.len != yl + 11 || v.p[v.len - 1] != 'Z')
		return CP_CERT_TIME;
	y = digits(v.p, yl);
	mo = digits(v.p + yl, 2);
	d = digits(v.p + yl + 2, 2);
	h = digits(v.p + yl + 4, 2);
	mi = digits(v.p + yl + 6, 2);
	s = digits(v.p + yl + 8, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || s < 0 || s > 59)
		return CP_CERT_TIME;
	if (yl == 2)
		y += y < 50 ? 2000 : 1900;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return CP_CERT_TIME;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return CP_CERT_OK;
}

/* SubjectPublicKeyInfo: id-ecPublicKey, prime256v1, an uncompressed point. */
static CpCertError
public_key(Reader *r, CpCert *c)
{
	CpDer v, alg, oid, bits;
	Reader f, a;

	TRY(der_next(r, 0x30, &v, &c->spki));
	f = der_reader(v);
	TRY(der_next(&f, 0x30, &alg, NULL));
	a = der_reader(alg);
	TRY(der_oid(&a, &oid));
	if (!der_eq(oid, oid_ec_public_key, sizeof oid_ec_public_key))
		return CP_CERT_KEY_TYPE;
	/* a named curve: explicit parameters are a SEQUENCE here */
	if (!der_peek(&a, 0x06))
		return CP_CERT_CURVE;
	TRY(der_oid(&a, &oid));
	if (!der_eq(oid, oid_prime256v1, sizeof oid_prime256v1))
		return CP_CERT_CURVE;
	if (!der_done(&a))
		return CP_CERT_DER;
	TRY(der_next(&f, 0x03, &bits, NULL));
	if (!der_done(&f))
		return CP_CERT_DER;
	if (bits.len != 66 || bits.p[0] != 0x00 || bits.p[1] != 0x04)
		return CP_CERT_POINT;
	c->point = bits.p + 1;
	return CP_CERT_OK;
}

static CpCertError
basic_constraints(CpDer ext, CpCert *c)
{
	Reader r = der_reader(ext), f;
	CpDer v, b, n;

	TRY(der_next(&r, 0x30, &v, NULL));
	if (!der_done(&r))
		return CP_CERT_DER;
	f = der_reader(v);
	c->has_bc = true;
	if (der_peek(&f, 0x01)) {
		/* DER: a cA of FALSE, the default, is left out */
		TRY(der_next(&f, 0x01, &b, NULL));
		if (b.len != 1 || b.p[0] != 0xff)
			return CP_CERT_EXTENSION;
		c->ca = true;
	}
	if (der_peek(&f, 0x02)) {
		TRY(der_next(&f, 0x02, &n, NULL));
		if (!integer_minimal(n))
			return CP_CERT_INTEGER;
		if ((n.p[0] & 0x80) || n.len > 1)
			return CP_CERT_EXTENSION;   /* negative, or beyond any chain's length */
		c->path_len = n.p[0];
	}
	return der_done(&f) ? CP_CERT_OK : CP_CERT_DER;
}

static CpCertError
key_usage(CpDer ext, CpCert *c)
{
	Reader r = der_reader(ext);
	CpDer b;

	TRY(der_next(&r, 0x03, &b, NULL));
	if (!der_done(&r))
		return CP_CERT_DER;
	/* 1-9 named bits, unused bits zero, at least one bit set */
	if (b.len < 2 || b.len > 3 || b.p[0] > 7 || (b.p[b.len - 1] & ((1u << b.p[0]) - 1)))
		return CP_CERT_EXTENSION;
	c->has_ku = true;
	c->ku = (uint16_t)(b.p[1] | (b.len == 3 ? b.p[2] << 8 : 0));
	return c->ku ? CP_CERT_OK : CP_CERT_EXTENSION;
}

static CpCertError
subject_key_id(CpDer ext, CpCert *c)
{
	Reader r = der_reader(ext);

	TRY(der_next(&r, 0x04, &c->skid, NULL));
	if (!der_done(&r))
		return CP_CERT_DER;
	return c->skid.len ? CP_CERT_OK : CP_CERT_EXTENSION;
}

/* AuthorityKeyIdentifier: the keyIdentifier [0] is required; an
 * authorityCertIssuer [1] and authorityCertSerialNumber [2] may follow,
 * both or neither, and are not used. */
static CpCertError
authority_key_id(CpDer ext, CpCert *c)
{
	Reader r = der_reader(ext), f;
	CpDer v, issuer, serial;

	TRY(der_next(&r, 0x30, &v, NULL));
	if (!der_done(&r))
		return CP_CERT_DER;
	f = der_reader(v);
	if (!der_peek(&f, 0x80))
		return CP_CERT_EXTENSION;
	TRY(der_next(&f, 0x80, &c->akid, NULL));
	if (c->akid.len == 0)
		return CP_CERT_EXTENSION;
	if (der_peek(&f, 0xa1)) {
		TRY(der_next(&f, 0xa1, &issuer, NULL));
		if (!der_peek(&f, 0x82))
			return CP_CERT_EXTENSION;
		TRY(der_next(&f, 0x82, &serial, NULL));
	}
	return der_done(&f) ? CP_CERT_OK : CP_CERT_EXTENSION;
}

/* Extensions ::= SEQUENCE SIZE (1..MAX) OF SEQUENCE { OID, critical
 * BOOLEAN DEFAULT FALSE, OCTET STRING }. */
static CpCertError
extensions(CpDer v, CpCert *c)
{
	Reader r = der_reader(v), f;
	unsigned seen = 0;
	bool bc_critical = false;
	CpDer seq, ext_list, oid, b, value;

	TRY(der_next(&r, 0x30, &ext_list, NULL));
	if (!der_done(&r) || ext_list.len == 0)
		return ext_list.len == 0 ? CP_CERT_EXTENSION : CP_CERT_DER;
	r = der_reader(ext_list);
	while (!der_done(&r)) {
		bool critical = false;
		int ce = -1;

		TRY(der_next(&r, 0x30, &seq, NULL));
		f = der_reader(seq);
		TRY(der_oid(&f, &oid));
		if (der_peek(&f, 0x01)) {
			/* DER: FALSE, the default, is left out */
			TRY(der_next(&f, 0x01, &b, NULL));
			if (b.len != 1 || b.p[0] != 0xff)
				return CP_CERT_EXTENSION;
			critical = true;
		}
		TRY(der_next(&f, 0x04, &value, NULL));
		if (!der_done(&f))
			return CP_CERT_DER;
		if (oid.len == 3 && oid.p[0] == 0x55 && oid.p[1] == 0x1d)
			ce = oid.p[2];
		switch (ce) {
		case CE_SKID:
		case CE_KEY_USAGE:
		case CE_BASIC_CONSTRAINTS:
		case CE_AKID:
			if (seen & (1u << (ce & 31)))
				return CP_CERT_EXTENSION;   /* RFC 5280 4.2: at most once */
			seen |= 1u << (ce & 31);
			break;
		default:
			if (critical)
				return CP_CERT_CRITICAL;
			continue;                      /* not understood, not critical: ignored */
		}
		switch (ce) {
		case CE_SKID:
			if (critical)
				return CP_CERT_EXTENSION;   /* RFC 5280 4.2.1.2: MUST NOT be critical */
			TRY(subject_key_id(value, c));
			break;
		case CE_AKID:
			if (critical)
				return CP_CERT_EXTENSION;   /* RFC 5280 4.2.1.1 */
			TRY(authority_key_id(value, c));
			break;
		case CE_KEY_USAGE:
			TRY(key_usage(value, c));
			break;
		case CE_BASIC_CONSTRAINTS:
			TRY(basic_constraints(value, c));
			bc_critical = critical;
			break;
		}
	}
	/*
	 * RFC 5280 as OpenSSL's strict mode checks it: a CA has a critical
	 * basicConstraints, keyUsage with keyCertSign and a subject key
	 * identifier; a pathLenConstraint belongs to a CA; keyCertSign to a
	 * CA only.
	 */
	if (c->ca && (!bc_critical || !c->has_ku || !(c->ku & CP_KU_KEY_CERT_SIGN) || !c->skid.len))
		return CP_CERT_EXTENSION;
	if (!c->ca && (c->path_len >= 0 || (c->ku & CP_KU_KEY_CERT_SIGN)))
		return CP_CERT_EXTENSION;
	return CP_CERT_OK;
}

static CpCertError
tbs_certificate(CpDer tbs, CpCert *c, CpDer *alg)
{
	Reader r = der_reader(tbs), f;
	CpDer v, n, validity, ext;

	/* version [0] EXPLICIT INTEGER v3 (2): no v1 or v2 certificate */
	if (!der_peek(&r, 0xa0))
		return CP_CERT_VERSION;
	TRY(der_next(&r, 0xa0, &v, NULL));
	f = der_reader(v);
	TRY(der_next(&f, 0x02, &n, NULL));
	if (!der_done(&f))
		return CP_CERT_DER;
	if (!integer_minimal(n))
		return CP_CERT_INTEGER;
	if (n.len != 1 || n.p[0] != 2)
		return CP_CERT_VERSION;
	/* serialNumber: positive, at most 20 bytes (RFC 5280 4.1.2.2) */
	TRY(der_next(&r, 0x02, &n, NULL));
	if (!integer_minimal(n) || (n.p[0] & 0x80) || n.len > 21 ||
	    (n.len == 21 && n.p[0] != 0) || (n.len == 1 && n.p[0] == 0))
		return CP_CERT_INTEGER;
	TRY(algorithm(&r, alg));
	TRY(name(&r, &c->issuer));
	TRY(der_next(&r, 0x30, &validity, NULL));
	f = der_reader(validity);
	TRY(time_value(&f, &c->not_before));
	TRY(time_value(&f, &c->not_after));
	if (!der_done(&f))
		return CP_CERT_DER;
	TRY(name(&r, &c->subject));
	TRY(public_key(&r, c));
	/* no issuerUniqueID [1] or subjectUniqueID [2]; extensions [3] required */
	if (der_peek(&r, 0x81) || der_peek(&r, 0x82))
		return CP_CERT_VERSION;
	if (!der_peek(&r, 0xa3))
		return CP_CERT_EXTENSION;
	TRY(der_next(&r, 0xa3, &ext, NULL));
	if (!der_done(&r))
		return CP_CERT_DER;
	return extensions(ext, c);
}

CpCertError
cp_cert_parse(const uint8_t *der, size_t len, size_t *used, CpCert *c)
{
	Reader r = { der, der + len }, f;
	CpDer v, alg, tbs_alg, bits;

	memset(c, 0, sizeof *c);
	c->path_len = -1;
	if (!der)
		return CP_CERT_DER;
	TRY(der_next(&r, 0x30, &v, &c->der));
	if (!used && !der_done(&r))
		return CP_CERT_DER;
	f = der_reader(v);
	TRY(der_next(&f, 0x30, &v, &c->tbs));
	TRY(tbs_certificate(v, c, &tbs_alg));
	/* both are ecdsa-with-SHA256 with no parameters: the same bytes */
	TRY(algorithm(&f, &alg));
	/* signatureValue: a BIT STRING with no unused bits holding one SEQUENCE */
	TRY(der_next(&f, 0x03, &bits, NULL));
	if (!der_done(&f))
		return CP_CERT_DER;
	if (bits.len < 1 || bits.p[0] != 0)
		return CP_CERT_DER;
	{
		Reader s = { bits.p + 1, bits.p + bits.len };

		TRY(der_next(&s, 0x30, &v, &c->sig));
		if (!der_done(&s))
			return CP_CERT_DER;
	}
	if (used)
		*used = c->der.len;
	return CP_CERT_OK;
}

CpCertError
cp_cert_chain_parse(const uint8_t *chain, size_t len, CpCert *certs, size_t *n)
{
	size_t at = 0, used;

	*n = 0;
	if (!chain || len == 0 || len > CP_CHAIN_MAX)
		return CP_CERT_CHAIN;
	while (at < len) {
		if (*n == CP_CHAIN_CERTS_MAX)
			return CP_CERT_CHAIN;
		TRY(cp_cert_parse(chain + at, len - at, &used, &certs[*n]));
		at += used;
		(*n)++;
	}
	return CP_CERT_OK;
}

/* ---- any certificate's outline ---- */

/* Netscape certificate type (2.16.840.1.113730.1.1): its CA bits. */
static const uint8_t oid_ns_cert_type[] = { 0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01 };
#define NS_ANY_CA 0x07  /* SSL, S/MIME and object-signing CA */

/* A BIT STRING's first two bytes of named bits (bit 0 the top bit of the first). */
static CpCertError
outline_bits(CpDer ext, uint16_t *bits)
{
	Reader r = der_reader(ext);
	CpDer b;

	TRY(der_next(&r, 0x03, &b, NULL));     /* what follows it is ignored */
	if (b.len < 1 || b.p[0] > 7)
		return CP_CERT_EXTENSION;
	*bits = (uint16_t)((b.len > 1 ? b.p[1] : 0) | (b.len > 2 ? b.p[2] << 8 : 0));
	return CP_CERT_OK;
}

/* The TLV of tag an extension's OCTET STRING starts with: OpenSSL's
 * decoder (X509V3_EXT_d2i) reads it and ignores what follows. */
static bool
outline_one(CpDer ext, uint8_t tag, CpDer *v)
{
	Reader r = der_reader(ext);

	return der_next(&r, tag, v, NULL) == CP_CERT_OK;
}

CpCertError
cp_cert_outline(const uint8_t *der, size_t len, bool *ca)
{
	Reader r = { der, der + len }, c, t, exts;
	CpDer cert, tbs, v, issuer, subject, list;
	bool has_bc = false, bc_ca = false, has_ku = false, has_ns = false, invalid = false;
	uint16_t ku = 0, ns = 0;
	unsigned seen = 0;
	long version = 0;

	*ca = false;
	TRY(der_next(&r, 0x30, &cert, NULL));
	if (!der_done(&r))
		return CP_CERT_DER;
	c = der_reader(cert);
	TRY(der_next(&c, 0x30, &tbs, NULL));
	TRY(der_next(&c, 0x30, &v, NULL));          /* signatureAlgorithm */
	TRY(der_next(&c, 0x03, &v, NULL));          /* signatureValue */
	if (!der_done(&c))
		return CP_CERT_DER;
	t = der_reader(tbs);
	if (der_peek(&t, 0xa0)) {
		Reader vr;

		TRY(der_next(&t, 0xa0, &v, NULL));
		vr = der_reader(v);
		TRY(der_next(&vr, 0x02, &v, NULL));
		if (!der_done(&vr) || v.len != 1 || v.p[0] > 2)
			return CP_CERT_VERSION;
		version = v.p[0];
	}
	TRY(der_next(&t, 0x02, &v, NULL));          /* serialNumber */
	TRY(der_next(&t, 0x30, &v, NULL));          /* signature */
	TRY(der_next(&t, 0x30, &v, &issuer));
	TRY(der_next(&t, 0x30, &v, NULL));          /* validity */
	TRY(der_next(&t, 0x30, &v, &subject));
	TRY(der_next(&t, 0x30, &v, NULL));          /* subjectPublicKeyInfo */
	if (der_peek(&t, 0x81))
		TRY(der_next(&t, 0x81, &v, NULL));
	if (der_peek(&t, 0x82))
		TRY(der_next(&t, 0x82, &v, NULL));
	if (der_peek(&t, 0xa3)) {
		TRY(der_next(&t, 0xa3, &v, NULL));
		exts = der_reader(v);
		TRY(der_next(&exts, 0x30, &list, NULL));
		if (!der_done(&exts))
			return CP_CERT_DER;
		exts = der_reader(list);
		while (!der_done(&exts)) {
			CpDer seq, oid, b, value, in;
			Reader f;
			int ce = -1;

			TRY(der_next(&exts, 0x30, &seq, NULL));
			f = der_reader(seq);
			TRY(der_oid(&f, &oid));
			if (der_peek(&f, 0x01))
				TRY(der_next(&f, 0x01, &b, NULL));
			TRY(der_next(&f, 0x04, &value, NULL));
			if (!der_done(&f))
				return CP_CERT_DER;
			if (oid.len == 3 && oid.p[0] == 0x55 && oid.p[1] == 0x1d)
				ce = oid.p[2];
			else if (der_eq(oid, oid_ns_cert_type, sizeof oid_ns_cert_type))
				ce = 0;
			switch (ce) {
			case 0:
			case CE_SKID:
			case CE_KEY_USAGE:
			case CE_BASIC_CONSTRAINTS:
			case CE_AKID:
				/* twice: OpenSSL decodes neither, and calls it invalid */
				if (seen & (1u << (ce & 31)))
					invalid = true;
				seen |= 1u << (ce & 31);
				break;
			default:
				continue;
			}
			switch (ce) {
			case CE_BASIC_CONSTRAINTS: {
				Reader bf;

				if (!outline_one(value, 0x30, &in)) {
					invalid = true;
					break;
				}
				bf = der_reader(in);
				has_bc = true;
				if (der_peek(&bf, 0x01) && der_next(&bf, 0x01, &b, NULL) == CP_CERT_OK)
					bc_ca = b.len == 1 && b.p[0] != 0;
				/* a pathLenConstraint without cA, or negative */
				if (der_peek(&bf, 0x02) &&
				    (der_next(&bf, 0x02, &b, NULL) || !bc_ca || !b.len || (b.p[0] & 0x80)))
					invalid = true;
				if (!der_done(&bf))
					invalid = true;
				break;
			}
			case CE_KEY_USAGE:
				if (outline_bits(value, &ku))
					invalid = true;
				has_ku = true;
				break;
			case 0:
				if (outline_bits(value, &ns))
					invalid = true;
				has_ns = true;
				break;
			case CE_SKID:
				invalid |= !outline_one(value, 0x04, &in);
				break;
			case CE_AKID: {
				/* SEQUENCE { [0] keyid, [1] issuer, [2] serial }, each optional */
				static const uint8_t tags[] = { 0x80, 0xa1, 0x82 };
				Reader af;

				if (!outline_one(value, 0x30, &in)) {
					invalid = true;
					break;
				}
				af = der_reader(in);
				for (size_t k = 0; k < sizeof tags; k++)
					if (der_peek(&af, tags[k]) && der_next(&af, tags[k], &b, NULL))
						invalid = true;
				invalid |= !der_done(&af);
				break;
			}
			}
		}
	}
	if (!der_done(&t))
		return CP_CERT_DER;
	/*
	 * X509_check_ca's decision (OpenSSL 3.0, crypto/x509/v3_purp.c): a
	 * certificate with an extension OpenSSL cannot decode is none; a
	 * keyUsage without keyCertSign is none; else basicConstraints
	 * decides where there is one; else a version 1 self-issued
	 * certificate, a keyUsage, or a Netscape CA type makes one.
	 */
	if (invalid || (has_ku && !(ku & CP_KU_KEY_CERT_SIGN)))
		*ca = false;
	else if (has_bc)
		*ca = bc_ca;
	else
		*ca = (version == 0 && der_same(issuer, subject)) || has_ku ||
		      (has_ns && (ns & NS_ANY_CA));
	return CP_CERT_OK;
}

/* ---- keys and signatures ---- */

CpKey *
cp_cert_key(const CpCert *c)
{
	/* The point is the uncompressed form (the reader took no other). */
	return cp_p256_from_point(c->point);
}

/* SHA-256 of the TBS, then ECDSA on the digest: one hash, and the
 * anchor's prepared verifier where there is one. */
static bool
signature_ok(const CpCert *c, CpKey *key, CpVerifier *prepared)
{
	uint8_t digest[CP_SHA256_LEN];

	cp_sha256(c->tbs.p, c->tbs.len, digest);
	return cp_verify_digest(prepared, key, digest, c->sig.p, c->sig.len);
}

bool
cp_cert_signature_ok(const CpCert *c, CpKey *key)
{
	return signature_ok(c, key, NULL);
}

/* Whether issuer is a candidate for c's issuer: its subject is c's issuer,
 * byte for byte, and the key identifiers, when both are there, agree. */
static bool
issued_by(const CpCert *c, const CpCert *issuer)
{
	return der_same(c->issuer, issuer->subject) &&
	       (!c->akid.len || !issuer->skid.len || der_same(c->akid, issuer->skid));
}

static bool
self_issued(const CpCert *c)
{
	return der_same(c->issuer, c->subject);
}

CpCertError
cp_cert_self_signed(const CpCert *c, CpKey **key)
{
	*key = NULL;
	if (!issued_by(c, c))
		return CP_CERT_ROOT;
	*key = cp_cert_key(c);
	if (!*key)
		return CP_CERT_POINT;
	if (!cp_cert_signature_ok(c, *key)) {
		cp_key_free(*key);
		*key = NULL;
		return CP_CERT_ROOT;
	}
	return CP_CERT_OK;
}

/* ---- path validation ---- */

static CpCertError
time_ok(const CpCert *c, int64_t now)
{
	if (now < 0)
		return CP_CERT_OK;
	if (now < c->not_before)
		return CP_CERT_NOT_YET_VALID;
	if (now > c->not_after)
		return CP_CERT_EXPIRED;
	return CP_CERT_OK;
}

CpCertError
cp_cert_path_verify(const CpCert *certs, size_t n, const CpCertAnchor *anchors, size_t n_anchors,
		    int64_t now, size_t *root)
{
	const CpCert *path[CP_CHAIN_CERTS_MAX];
	bool used[CP_CHAIN_CERTS_MAX] = { true };
	const CpCertAnchor *anchor = NULL;
	size_t depth = 1, plen;

	if (n == 0 || n > CP_CHAIN_CERTS_MAX)
		return CP_CERT_CHAIN;
	/* The signing certificate: an end entity that may sign. */
	if (certs[0].ca || (certs[0].has_ku && !(certs[0].ku & CP_KU_DIGITAL_SIGNATURE)))
		return CP_CERT_SIGNER;
	/* Build the path: at each step an anchor first, else the chain. */
	path[0] = &certs[0];
	while (!anchor) {
		const CpCert *cur = path[depth - 1], *next = NULL;

		for (size_t i = 0; !anchor && i < n_anchors; i++)
			if (issued_by(cur, &anchors[i].cert))
				anchor = &anchors[i];
		if (anchor)
			break;
		for (size_t i = 1; !next && i < n; i++)
			if (!used[i] && issued_by(cur, &certs[i])) {
				used[i] = true;
				next = &certs[i];
			}
		if (!next)
			return CP_CERT_ISSUER;
		path[depth++] = next;
	}
	/* Every issuer a CA allowed to sign certificates, within its path
	 * length (self-issued CAs below it not counted); every certificate
	 * below the anchor names its issuer's key. */
	plen = 0;
	for (size_t i = 0; i <= depth; i++) {
		const CpCert *c = i < depth ? path[i] : &anchor->cert;

		if (i > 0 && (!c->ca || !(c->ku & CP_KU_KEY_CERT_SIGN)))
			return CP_CERT_NOT_CA;
		if (i > 1 && c->path_len >= 0 && plen > (size_t)c->path_len)
			return CP_CERT_PATH_LENGTH;
		if (i > 0 && !self_issued(c))
			plen++;
		if (i < depth && !c->akid.len)
			return CP_CERT_EXTENSION;
		TRY(time_ok(c, now));
	}
	/* The signatures last: they are the dear part. */
	for (size_t i = 0; i < depth; i++) {
		CpKey *key = i + 1 < depth ? cp_cert_key(path[i + 1]) : anchor->key;
		bool ok;

		if (!key)
			return CP_CERT_POINT;
		ok = signature_ok(path[i], key, i + 1 < depth ? NULL : anchor->verify);
		if (i + 1 < depth)
			cp_key_free(key);
		if (!ok)
			return CP_CERT_SIGNATURE;
	}
	*root = (size_t)(anchor - anchors);
	return CP_CERT_OK;
}

/* ---- the operator's name ---- */

/* A directory string as ASCII into out, if it is printable ASCII: the
 * string types OpenSSL's ASN1_STRING_to_UTF8 converts, the wide ones
 * only where every character is ASCII. */
static bool
string_ascii(uint8_t tag, CpDer v, char *out, size_t size)
{
	size_t w, n;

	switch (tag) {
	case 0x0c:      /* UTF8String */
	case 0x12:      /* NumericString */
	case 0x13:      /* PrintableString */
	case 0x14:      /* TeletexString */
	case 0x16:      /* IA5String */
	case 0x1a:      /* VisibleString */
		w = 1;
		break;
	case 0x1e:      /* BMPString */
		w = 2;
		break;
	case 0x1c:      /* UniversalString */
		w = 4;
		break;
	default:
		return false;
	}
	if (v.len % w || v.len == 0 || v.len / w >= size)
		return false;
	n = v.len / w;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *ch = v.p + i * w;

		for (size_t k = 0; k + 1 < w; k++)
			if (ch[k])
				return false;
		if (!cp_is_printable_ascii(&ch[w - 1], 1))
			return false;
		out[i] = (char)ch[w - 1];
	}
	out[n] = '\0';
	return true;
}

/* The first attribute of type oid in a name, as its tag and value. */
static bool
name_find(CpDer name_tlv, const uint8_t *oid, size_t oid_len, uint8_t *tag, CpDer *value)
{
	Reader r = der_reader(name_tlv), rdns, atvs, f;
	CpDer v, set, atv, o;

	if (der_next(&r, 0x30, &v, NULL))
		return false;
	rdns = der_reader(v);
	while (!der_done(&rdns) && !der_next(&rdns, 0x31, &set, NULL)) {
		atvs = der_reader(set);
		while (!der_done(&atvs) && !der_next(&atvs, 0x30, &atv, NULL)) {
			f = der_reader(atv);
			if (der_next(&f, 0x06, &o, NULL) || der_done(&f))
				return false;
			if (der_eq(o, oid, oid_len)) {
				*tag = f.p[0];
				return der_next(&f, *tag, value, NULL) == CP_CERT_OK;
			}
		}
	}
	return false;
}

void
cp_cert_operator_name(const CpCert *c, char *out, size_t size)
{
	uint8_t tag;
	CpDer v;

	out[0] = '\0';
	if (name_find(c->subject, oid_organization, sizeof oid_organization, &tag, &v) &&
	    string_ascii(tag, v, out, size))
		return;
	if (name_find(c->subject, oid_common_name, sizeof oid_common_name, &tag, &v) &&
	    string_ascii(tag, v, out, size))
		return;
	out[0] = '\0';
}

const char *
cp_cert_error_name(CpCertError e)
{
	static const char *const names[] = {
		[CP_CERT_OK] = "ok",
		[CP_CERT_DER] = "der",
		[CP_CERT_INTEGER] = "integer",
		[CP_CERT_VERSION] = "version",
		[CP_CERT_ALGORITHM] = "algorithm",
		[CP_CERT_KEY_TYPE] = "key-type",
		[CP_CERT_CURVE] = "curve",
		[CP_CERT_POINT] = "point",
		[CP_CERT_NAME] = "name",
		[CP_CERT_TIME] = "time",
		[CP_CERT_EXTENSION] = "extension",
		[CP_CERT_CRITICAL] = "critical",
		[CP_CERT_EXPIRED] = "expired",
		[CP_CERT_NOT_YET_VALID] = "not-yet-valid",
		[CP_CERT_NOT_CA] = "not-ca",
		[CP_CERT_PATH_LENGTH] = "path-length",
		[CP_CERT_ISSUER] = "issuer",
		[CP_CERT_SIGNATURE] = "signature",
		[CP_CERT_SIGNER] = "signer",
		[CP_CERT_CHAIN] = "chain",
		[CP_CERT_ROOT] = "root",
		[CP_CERT_CRYPTO] = "crypto",
	};

	return (size_t)e < sizeof names / sizeof names[0] && names[e] ? names[e] : "?";
}
