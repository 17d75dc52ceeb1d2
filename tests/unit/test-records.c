/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Device record, profile and receipt: round trips, every malformed form
 * with its code, the device's profile checks in their order, and every
 * single-byte change of a valid profile rejected. Real keys and the real
 * key schedule throughout; last, the published vectors of
 * docs/test-vectors decoded and verified.
 */
#include <stdlib.h>
#include <string.h>

#include "cp-crypto-openssl.h"
#include "cp-crypto.h"
#include "cp-kdf.h"
#include "cp-keys.h"
#include "cp-ndef.h"
#include "cp-records.h"
#include "cp-test.h"
#include "cp-test-operator.h"
#include "cp-tlv.h"

/* ---- fixture ---- */

static const char device_priv_hex[] =
	"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
static const char other_priv_hex[] =
	"0f56db78ca460b055c500064824bed999a25aaf48ebb519ac201537b85479813";
static const char eph_priv_hex[] =
	"99798858a1dd2b2c3a5b8e0d1f6d7e5a44a1f7fd1cfa1d0c5a6e8c9d0b1e2f31";
static const char k_c_hex[] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char opc_hex[] = "cd63cb71954a9f4e48a5994e37a02baf";
static const char supi[] = "001010000000001";

static struct {
	CpKey *key, *other, *eph;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint8_t nonce[CP_NONCE_LEN];
	CpSecret *k_prime, *opc, *k_usim, *k_sm, *k_prof, *k2;
	CpDeviceRecord dr;
	CpBuf info;
	CpProfile p;
	uint8_t suites[1];
	CpVerifyContext ctx;
	CpTestOperator op, other_op;    /* the device's operator, and another */
} fx;

static CpKey *
p256_hex(const char *hex)
{
	uint8_t d[32];

	cp_test_unhex(hex, d, sizeof d);
	return cp_p256_from_private(d);
}

static void
fixture_setup(void)
{
	cp_auto_secret *k_c = cp_secret_new_from_hex(k_c_hex, 32);

	fx.key = p256_hex(device_priv_hex);
	fx.other = p256_hex(other_priv_hex);
	fx.eph = p256_hex(eph_priv_hex);
	if (!fx.key || !fx.other || !fx.eph || !k_c) {
		fprintf(stderr, "fixture keys failed\n");
		exit(1);
	}
	CP_CHECK_INT(cp_device_id(fx.key, fx.device_id), CP_OK);
	for (int i = 0; i < CP_NONCE_LEN; i++)
		fx.nonce[i] = (uint8_t)(0xa0 + i);

	memset(&fx.dr, 0, sizeof fx.dr);
	memcpy(fx.dr.device_id, fx.device_id, CP_DEVICE_ID_LEN);
	strcpy(fx.dr.manufacturer, "Example Ltd");
	strcpy(fx.dr.model, "GW-1");
	strcpy(fx.dr.serial, "SN0001");
	fx.dr.suites[0] = CP_SUITE_B;
	fx.dr.n_suites = 1;
	fx.dr.state = CP_DEVICE_UNPROVISIONED;
	fx.dr.att_counter = 7;
	memset(fx.dr.att_random, 0x5a, sizeof fx.dr.att_random);
	cp_buf_init(&fx.info);
	CP_CHECK_INT(cp_device_record_info(&fx.dr, &fx.info), CP_OK);

	fx.k_prime = cp_keys_k_prime(k_c, fx.device_id, supi);
	fx.opc = cp_secret_new_from_hex(opc_hex, 16);
	fx.k_usim = cp_keys_k_usim(fx.k_prime);
	fx.k_sm = cp_keys_k_sm(fx.k_prime, fx.device_id);
	fx.k_prof = cp_keys_k_prof(fx.k_sm, fx.nonce);
	fx.k2 = cp_keys_k2(fx.k_sm, fx.nonce, fx.info.data, fx.info.len);
	if (!fx.k_prime || !fx.opc || !fx.k_usim || !fx.k_sm || !fx.k_prof || !fx.k2) {
		fprintf(stderr, "fixture key schedule failed\n");
		exit(1);
	}

	memset(&fx.p, 0, sizeof fx.p);
	memcpy(fx.p.device_id, fx.device_id, CP_DEVICE_ID_LEN);
	fx.p.profile_seq = 5;
	memcpy(fx.p.nonce, fx.nonce, CP_NONCE_LEN);
	fx.p.has_not_after = true;
	fx.p.not_after = 2000000000;
	CP_CHECK_INT(cp_enc_cred_seal(CP_SUITE_B, fx.key, fx.eph, fx.k_prime, fx.opc,
				      fx.p.enc_cred, &fx.p.enc_cred_len), CP_OK);
	strcpy(fx.p.plmn, "00101");
	strcpy(fx.p.network_name, "cellprov test network");
	strcpy(fx.p.supi, supi);
	strcpy(fx.p.apn, "internet");
	fx.p.has_msisdn = true;
	strcpy(fx.p.msisdn, "491701234567");
	if (!cp_test_operator_make(&fx.op, "Example Operator") ||
	    !cp_test_operator_make(&fx.other_op, "Other Operator"))
		exit(1);
	fx.p.operation = CP_OP_CLAIM;
	fx.p.binding_version = 1;
	memcpy(fx.p.op_chain, fx.op.chain, fx.op.chain_len);
	fx.p.op_chain_len = fx.op.chain_len;

	fx.suites[0] = CP_SUITE_B;
	fx.ctx.device_id = fx.device_id;
	fx.ctx.device_key = fx.key;
	fx.ctx.suites = fx.suites;
	fx.ctx.n_suites = 1;
	fx.ctx.last_seq = 4;
	fx.ctx.now = 1700000000;
	fx.ctx.device_info = fx.info.data;
	fx.ctx.device_info_len = fx.info.len;
	fx.ctx.anchors = fx.op.anchors;         /* an unbound device */
}

static void
fixture_teardown(void)
{
	cp_key_free(fx.key);
	cp_key_free(fx.other);
	cp_key_free(fx.eph);
	cp_secret_free(fx.k_prime);
	cp_secret_free(fx.opc);
	cp_secret_free(fx.k_usim);
	cp_secret_free(fx.k_sm);
	cp_secret_free(fx.k_prof);
	cp_secret_free(fx.k2);
	cp_buf_clear(&fx.info);
	cp_test_operator_clear(&fx.op);
	cp_test_operator_clear(&fx.other_op);
}

/* ---- a TLV list to build malformed structures from valid ones ---- */

#define TL_MAX 24
#define TL_VAL_MAX 4200

typedef struct {
	uint8_t tag;
	size_t len;
	uint8_t *val;
} TlItem;

typedef struct {
	TlItem it[TL_MAX];
	size_t n;
} Tl;

static void
tl_from(Tl *t, const uint8_t *buf, size_t len)
{
	size_t pos = 0;

	memset(t, 0, sizeof *t);
	while (pos + 3 <= len && t->n < TL_MAX) {
		TlItem *i = &t->it[t->n++];

		i->tag = buf[pos];
		i->len = cp_be16(buf + pos + 1);
		i->val = malloc(TL_VAL_MAX);
		memcpy(i->val, buf + pos + 3, i->len);
		pos += 3 + i->len;
	}
}

static void
tl_free(Tl *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->it[i].val);
	t->n = 0;
}

static size_t
tl_bytes(const Tl *t, uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++) {
		out[n] = t->it[i].tag;
		cp_put_be16(out + n + 1, (uint16_t)t->it[i].len);
		memcpy(out + n + 3, t->it[i].val, t->it[i].len);
		n += 3 + t->it[i].len;
	}
	return n;
}

static ssize_t
tl_index(const Tl *t, uint8_t tag)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->it[i].tag == tag)
			return (ssize_t)i;
	fprintf(stderr, "test bug: no tag 0x%02x\n", tag);
	abort();
}

static void
tl_set(Tl *t, uint8_t tag, const void *val, size_t len)
{
	TlItem *i = &t->it[tl_index(t, tag)];

	memcpy(i->val, val, len);
	i->len = len;
}

static void
tl_set_hex(Tl *t, uint8_t tag, const char *hex)
{
	uint8_t v[TL_VAL_MAX];

	tl_set(t, tag, v, cp_test_unhex(hex, v, sizeof v));
}

static void
tl_set_str(Tl *t, uint8_t tag, const char *s)
{
	tl_set(t, tag, s, strlen(s));
}

static void
tl_set_fill(Tl *t, uint8_t tag, uint8_t byte, size_t len)
{
	TlItem *i = &t->it[tl_index(t, tag)];

	memset(i->val, byte, len);
	i->len = len;
}

static void
tl_del(Tl *t, uint8_t tag)
{
	size_t i = (size_t)tl_index(t, tag);

	free(t->it[i].val);
	memmove(&t->it[i], &t->it[i + 1], (t->n - i - 1) * sizeof t->it[0]);
	t->n--;
}

static void
tl_insert(Tl *t, size_t at, uint8_t tag, uint8_t fill, size_t len)
{
	memmove(&t->it[at + 1], &t->it[at], (t->n - at) * sizeof t->it[0]);
	t->it[at].tag = tag;
	t->it[at].len = len;
	t->it[at].val = malloc(TL_VAL_MAX);
	memset(t->it[at].val, fill, len);
	t->n++;
}

/* Insert before the first item with a higher tag (or at the end). */
static void
tl_add(Tl *t, uint8_t tag, uint8_t fill, size_t len)
{
	size_t at = 0;

	while (at < t->n && t->it[at].tag < tag)
		at++;
	tl_insert(t, at, tag, fill, len);
}

static void
tl_swap(Tl *t, uint8_t a, uint8_t b)
{
	size_t i = (size_t)tl_index(t, a), j = (size_t)tl_index(t, b);
	TlItem tmp = t->it[i];

	t->it[i] = t->it[j];
	t->it[j] = tmp;
}

static ssize_t
tl_find(const Tl *t, uint8_t tag)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->it[i].tag == tag)
			return (ssize_t)i;
	return -1;
}

/* A profile's op_signature (tag 0x7E) made again with key over what
 * precedes it. */
static void
tl_resign(Tl *t, CpKey *key)
{
	static uint8_t buf[8192];
	size_t sig = (size_t)tl_index(t, 0x7E), n;
	Tl head = *t;

	head.n = sig;
	n = tl_bytes(&head, buf);
	CP_CHECK_INT(cp_ecdsa_sign(key, buf, n, t->it[sig].val, &t->it[sig].len), CP_OK);
}

/* Recompute the trailing mac (tag 0x7F) with key over what precedes it;
 * a profile is signed again first by its operator, so that a changed
 * field reaches the check after the signature. */
static void
tl_remac(Tl *t, const CpSecret *key)
{
	static uint8_t buf[8192];
	size_t mac = (size_t)tl_index(t, CP_TLV_MAC), n;
	Tl head = *t;

	if (tl_find(t, 0x7E) >= 0 && tl_find(t, 0x70) >= 0)
		tl_resign(t, fx.op.sm_key);
	head = *t;
	head.n = mac;
	n = tl_bytes(&head, buf);
	CP_CHECK_INT(cp_hmac_sha256(key->data, key->len, buf, n, t->it[mac].val), CP_OK);
	t->it[mac].len = CP_MAC_LEN;
}

/* ---- decode expectations: code, and output untouched on failure ---- */

typedef CpError (*DecodeFn)(const uint8_t *buf, size_t len, void *out);

static CpError
dec_dr(const uint8_t *buf, size_t len, void *out)
{
	return cp_device_record_decode(buf, len, out);
}

static CpError
dec_profile(const uint8_t *buf, size_t len, void *out)
{
	return cp_profile_decode(buf, len, out);
}

static CpError
dec_receipt(const uint8_t *buf, size_t len, void *out)
{
	return cp_receipt_decode(buf, len, out);
}

static CpError
cp_command_decode_fn(const uint8_t *buf, size_t len, void *out)
{
	return cp_command_decode(buf, len, out);
}

static uint8_t scratch[8192];

static CpError
expect_bytes(int line, DecodeFn fn, const uint8_t *buf, size_t len, CpError want)
{
	union {
		CpDeviceRecord dr;
		CpProfile p;
		CpReceipt r;
		CpCommand c;
	} out, sentinel;
	CpError err;

	memset(&sentinel, 0xa5, sizeof sentinel);
	out = sentinel;
	err = fn(buf, len, &out);
	cp_test_checks++;
	if (err != want) {
		cp_test_failures++;
		fprintf(stderr, "%s:%d: decode = 0x%04x (%s), want 0x%04x (%s)\n", __FILE__, line,
			err, cp_error_name(err), want, cp_error_name(want));
	}
	if (err) {
		cp_test_checks++;
		if (memcmp(&out, &sentinel, sizeof out) != 0) {
			cp_test_failures++;
			fprintf(stderr, "%s:%d: output changed on failure\n", __FILE__, line);
		}
	}
	return err;
}

static CpError
expect_tl(int line, DecodeFn fn, const Tl *t, CpError want)
{
	size_t n = tl_bytes(t, scratch);

	return expect_bytes(line, fn, scratch, n, want);
}

#define EXPECT(fn, t, want) expect_tl(__LINE__, (fn), (t), (want))

/*
 * Checks every structure shares. valid: a valid encoding; after_last: the
 * code for bytes after its final field; mac_optional: a receipt,
 * valid when cut before its optional mac (0x7F).
 */
static void
common_cases(const char *name, DecodeFn fn, const uint8_t *valid, size_t len,
	     CpError after_last, bool mac_optional, uint8_t version)
{
	char vhex[8], other[8], other2[8];
	static uint8_t buf[8192];
	size_t boundary[TL_MAX + 1], n_boundaries = 0;
	Tl t;

	fprintf(stderr, "common cases: %s\n", name);
	CP_CHECK_INT(expect_bytes(__LINE__, fn, valid, len, CP_OK), CP_OK);

	/* Every cut: inside a TLV it is truncated, at a boundary a field
	 * is missing (or, for a receipt cut before its optional fields,
	 * still valid). */
	tl_from(&t, valid, len);
	for (size_t i = 0, pos = 0; i < t.n; i++) {
		boundary[n_boundaries++] = pos;
		pos += 3 + t.it[i].len;
	}
	for (size_t cut = 0; cut < len; cut++) {
		bool at_boundary = false;
		CpError want = CP_ERR_TRUNCATED;

		for (size_t b = 0; b < n_boundaries; b++)
			at_boundary |= boundary[b] == cut;
		if (at_boundary)
			want = CP_ERR_MISSING_FIELD;
		/* a receipt without its (optional) mac is whole */
		if (at_boundary && mac_optional && cut == boundary[n_boundaries - 1])
			want = CP_OK;
		expect_bytes(__LINE__, fn, valid, cut, want);
	}

	/* One byte, or a whole extension TLV, after the last field. */
	memcpy(buf, valid, len);
	buf[len] = 0x00;
	expect_bytes(__LINE__, fn, buf, len + 1, after_last);
	memcpy(buf + len, "\x40\x00\x00", 3);
	expect_bytes(__LINE__, fn, buf, len + 3, after_last);

	/* Order, duplicates, an unknown tag before the version. */
	tl_swap(&t, 0x01, 0x02);
	EXPECT(fn, &t, CP_ERR_TAG_ORDER);
	tl_swap(&t, 0x01, 0x02);
	tl_insert(&t, 2, 0x02, 0x11, CP_DEVICE_ID_LEN);
	EXPECT(fn, &t, CP_ERR_TAG_DUPLICATE);
	tl_del(&t, 0x02);
	tl_insert(&t, 3, 0x01, 0x01, 1);
	EXPECT(fn, &t, CP_ERR_TAG_DUPLICATE);
	tl_free(&t);
	tl_from(&t, valid, len);
	tl_insert(&t, 0, 0x00, 0x00, 1);
	EXPECT(fn, &t, CP_ERR_UNKNOWN_TAG);
	tl_del(&t, 0x00);

	/* Version: other values, also with a body this decoder cannot read. */
	snprintf(vhex, sizeof vhex, "%02x", version);
	snprintf(other, sizeof other, "%02x", version + 1);
	snprintf(other2, sizeof other2, "%02x", version - 1);
	tl_set_hex(&t, 0x01, other);
	EXPECT(fn, &t, CP_ERR_VERSION);
	tl_set_hex(&t, 0x01, other2);
	EXPECT(fn, &t, CP_ERR_VERSION);
	expect_bytes(__LINE__, fn, (const uint8_t []){ 0x01, 0x00, 0x01, (uint8_t)(version + 1), 0xff },
		     5, CP_ERR_VERSION);
	tl_set_hex(&t, 0x01, version == 1 ? "0101" : "0202");
	EXPECT(fn, &t, CP_ERR_LENGTH);
	tl_set_hex(&t, 0x01, "");
	EXPECT(fn, &t, CP_ERR_LENGTH);
	tl_set_hex(&t, 0x01, vhex);

	/* device_id: 16 bytes exactly. */
	tl_set_fill(&t, 0x02, 0x11, 15);
	EXPECT(fn, &t, CP_ERR_LENGTH);
	tl_set_fill(&t, 0x02, 0x11, 17);
	EXPECT(fn, &t, CP_ERR_LENGTH);
	tl_free(&t);

	/* Above CP_RECORD_MAX, padded with an extension where one may be. */
	expect_bytes(__LINE__, fn, scratch, CP_RECORD_MAX + 1, CP_ERR_TOO_LARGE);

	/* Empty input. */
	expect_bytes(__LINE__, fn, valid, 0, CP_ERR_MISSING_FIELD);
}

/* ---- device record ---- */

static void
encode_dr(const CpDeviceRecord *dr, CpBuf *out)
{
	cp_buf_init(out);
	CP_CHECK_INT(cp_device_record_encode(dr, fx.key, out), CP_OK);
}

static void
test_device_record(void)
{
	cp_auto_buf b = CP_BUF_INIT;
	CpDeviceRecord dr, bad;
	Tl t;

	encode_dr(&fx.dr, &b);
	CP_CHECK_INT(cp_device_record_decode(b.data, b.len, &dr), CP_OK);
	CP_CHECK_INT(dr.version, 1);
	CP_CHECK(memcmp(dr.device_id, fx.device_id, CP_DEVICE_ID_LEN) == 0);
	CP_CHECK(strcmp(dr.manufacturer, "Example Ltd") == 0);
	CP_CHECK(strcmp(dr.model, "GW-1") == 0);
	CP_CHECK(strcmp(dr.serial, "SN0001") == 0);
	CP_CHECK_INT(dr.n_suites, 1);
	CP_CHECK_INT(dr.suites[0], CP_SUITE_B);
	CP_CHECK_INT(dr.state, 0);
	CP_CHECK_INT(dr.att_counter, 7);
	CP_CHECK(memcmp(dr.att_random, fx.dr.att_random, 16) == 0);
	/* info = tags 0x01-0x06 as encoded, the same bytes as _info(). */
	CP_CHECK_INT(dr.info_len, fx.info.len);
	CP_CHECK(memcmp(b.data, fx.info.data, fx.info.len) == 0);
	CP_CHECK_INT(dr.signed_len, fx.info.len + 3 + 1 + 3 + 8 + 3 + 16);
	CP_CHECK_INT(b.data[dr.signed_len], 0x0a);
	CP_CHECK_INT(dr.signed_len + 3 + dr.att_signature_len, b.len);

	CP_CHECK_INT(cp_device_record_verify(b.data, b.len, fx.key, &dr), CP_OK);
	memset(&bad, 0xa5, sizeof bad);
	CP_CHECK_INT(cp_device_record_verify(b.data, b.len, fx.other, &bad), CP_ERR_SIGNATURE);
	CP_CHECK_INT(bad.att_counter, 0xa5a5a5a5a5a5a5a5ull);

	/* Every change to a signed byte fails: as structure or signature. */
	for (size_t i = 0; i < b.len; i++) {
		uint8_t save = b.data[i];

		b.data[i] ^= 0x01;
		CP_CHECK(cp_device_record_verify(b.data, b.len, fx.key, &dr) != CP_OK);
		b.data[i] = save;
	}
	/* A counter and a serial changed within their form. */
	tl_from(&t, b.data, b.len);
	tl_set_hex(&t, 0x08, "0000000000000008");
	CP_CHECK_INT(cp_device_record_verify(scratch, tl_bytes(&t, scratch), fx.key, &dr),
		     CP_ERR_SIGNATURE);
	tl_free(&t);

	common_cases("device record", dec_dr, b.data, b.len, CP_ERR_TRAILING, false, CP_DEVICE_RECORD_VERSION);

	tl_from(&t, b.data, b.len);
	/* Strings: 1-64 bytes of UTF-8 text. */
	for (uint8_t tag = 0x03; tag <= 0x05; tag++) {
		Tl u;

		tl_from(&u, b.data, b.len);
		tl_set_str(&u, tag, "");
		EXPECT(dec_dr, &u, CP_ERR_LENGTH);
		tl_set_fill(&u, tag, 'x', 65);
		EXPECT(dec_dr, &u, CP_ERR_LENGTH);
		tl_set_fill(&u, tag, 'x', 64);
		EXPECT(dec_dr, &u, CP_OK);
		tl_set_str(&u, tag, "Caf\xc3\xa9 \xe2\x82\xac");
		EXPECT(dec_dr, &u, CP_OK);
		tl_set_str(&u, tag, "bad\xff");
		EXPECT(dec_dr, &u, CP_ERR_BAD_VALUE);
		tl_set_str(&u, tag, "over\xc0\xaflong");
		EXPECT(dec_dr, &u, CP_ERR_BAD_VALUE);
		tl_set_str(&u, tag, "esc\x1b[2J");
		EXPECT(dec_dr, &u, CP_ERR_BAD_VALUE);
		tl_set_hex(&u, tag, "41004142");
		EXPECT(dec_dr, &u, CP_ERR_BAD_VALUE);
		tl_del(&u, tag);
		EXPECT(dec_dr, &u, CP_ERR_MISSING_FIELD);
		tl_free(&u);
	}
	/* Suites: 1-8 known, distinct ids. */
	tl_set_hex(&t, 0x06, "0102");
	EXPECT(dec_dr, &t, CP_OK);
	tl_set_hex(&t, 0x06, "");
	EXPECT(dec_dr, &t, CP_ERR_LENGTH);
	tl_set_hex(&t, 0x06, "010201020102010201");
	EXPECT(dec_dr, &t, CP_ERR_LENGTH);
	tl_set_hex(&t, 0x06, "03");
	EXPECT(dec_dr, &t, CP_ERR_BAD_VALUE);
	tl_set_hex(&t, 0x06, "00");
	EXPECT(dec_dr, &t, CP_ERR_BAD_VALUE);
	tl_set_hex(&t, 0x06, "0202");
	EXPECT(dec_dr, &t, CP_ERR_BAD_VALUE);
	tl_set_hex(&t, 0x06, "02");
	/* State 0-3. */
	tl_set_hex(&t, 0x07, "03");
	EXPECT(dec_dr, &t, CP_OK);
	tl_set_hex(&t, 0x07, "04");
	EXPECT(dec_dr, &t, CP_ERR_BAD_VALUE);
	tl_set_hex(&t, 0x07, "ff");
	EXPECT(dec_dr, &t, CP_ERR_BAD_VALUE);
	tl_set_hex(&t, 0x07, "0000");
	EXPECT(dec_dr, &t, CP_ERR_LENGTH);
	tl_set_hex(&t, 0x07, "00");
	/* Fixed lengths. */
	tl_set_hex(&t, 0x08, "00000000000007");
	EXPECT(dec_dr, &t, CP_ERR_LENGTH);
	tl_set_hex(&t, 0x08, "0000000000000007");
	tl_set_fill(&t, 0x09, 0x5a, 17);
	EXPECT(dec_dr, &t, CP_ERR_LENGTH);
	tl_set_fill(&t, 0x09, 0x5a, 16);
	tl_set_fill(&t, 0x0a, 0x30, 7);
	EXPECT(dec_dr, &t, CP_ERR_LENGTH);
	tl_set_fill(&t, 0x0a, 0x30, CP_ECDSA_MAX + 1);
	EXPECT(dec_dr, &t, CP_ERR_LENGTH);
	/* An unsigned extension may not hide before the signature either:
	 * it is out of order there. */
	tl_free(&t);
	tl_from(&t, b.data, b.len);
	tl_insert(&t, t.n - 1, 0x40, 0, 2);
	EXPECT(dec_dr, &t, CP_ERR_TAG_ORDER);
	tl_del(&t, 0x40);
	for (uint8_t tag = 0x01; tag <= 0x0a; tag++) {
		Tl u;

		tl_from(&u, b.data, b.len);
		tl_del(&u, tag);
		EXPECT(dec_dr, &u, CP_ERR_MISSING_FIELD);
		tl_free(&u);
	}
	tl_free(&t);

	/* Encoders refuse what the decoder would. */
	{
		cp_auto_buf e = CP_BUF_INIT;
		CpDeviceRecord x = fx.dr;

		cp_buf_append(&e, "keep", 4);
		x.state = 4;
		CP_CHECK_INT(cp_device_record_encode(&x, fx.key, &e), CP_ERR_BAD_VALUE);
		x = fx.dr;
		x.n_suites = 0;
		CP_CHECK_INT(cp_device_record_encode(&x, fx.key, &e), CP_ERR_LENGTH);
		CP_CHECK_INT(cp_device_record_info(&x, &e), CP_ERR_LENGTH);
		x = fx.dr;
		x.suites[0] = 7;
		CP_CHECK_INT(cp_device_record_encode(&x, fx.key, &e), CP_ERR_BAD_VALUE);
		CP_CHECK_INT(cp_device_record_info(&x, &e), CP_ERR_BAD_VALUE);
		x = fx.dr;
		x.model[0] = '\0';
		CP_CHECK_INT(cp_device_record_encode(&x, fx.key, &e), CP_ERR_LENGTH);
		x = fx.dr;
		memset(x.serial, 'a', sizeof x.serial);    /* no terminator */
		CP_CHECK_INT(cp_device_record_encode(&x, fx.key, &e), CP_ERR_LENGTH);
		x = fx.dr;
		strcpy(x.manufacturer, "a\tb");
		CP_CHECK_INT(cp_device_record_encode(&x, fx.key, &e), CP_ERR_BAD_VALUE);
		CP_CHECK_INT(cp_device_record_encode(&fx.dr, NULL, &e), CP_ERR_ARGUMENT);
		CP_CHECK_HEX(e.data, e.len, "6b656570");
		/* Appends after what the buffer holds. */
		CP_CHECK_INT(cp_device_record_encode(&fx.dr, fx.key, &e), CP_OK);
		CP_CHECK_INT(cp_device_record_decode(e.data + 4, e.len - 4, &dr), CP_OK);
		CP_CHECK_INT(cp_device_record_verify(e.data + 4, e.len - 4, fx.key, &dr), CP_OK);
	}
}

/* ---- profile ---- */

static void
encode_profile(const CpProfile *p, CpBuf *out)
{
	cp_buf_init(out);
	CP_CHECK_INT(cp_profile_encode(p, fx.op.sm_key, fx.k_prof, out), CP_OK);
}

static bool
secret_is(const CpSecret *s, const CpSecret *want)
{
	return s && want && cp_secret_equal(s, want);
}

static void
test_enc_cred(void)
{
	static const uint8_t x_priv[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	uint8_t enc[CP_ENC_CRED_MAX];
	size_t len = 0;
	CpSecret *kp = NULL, *opc = NULL;
	CpKey *xkey = cp_x25519_from_private(x_priv);

	CP_CHECK_INT(cp_enc_cred_seal(CP_SUITE_B, fx.key, NULL, fx.k_prime, fx.opc, enc, &len), CP_OK);
	CP_CHECK_INT(len, 1 + 33 + 48 + 8);
	CP_CHECK_INT(enc[0], CP_SUITE_B);
	CP_CHECK_INT(cp_enc_cred_open(enc, len, fx.key, &kp, &opc), CP_OK);
	CP_CHECK(secret_is(kp, fx.k_prime) && secret_is(opc, fx.opc));
	cp_secret_freep(&kp);
	cp_secret_freep(&opc);
	CP_CHECK_INT(cp_enc_cred_open(enc, len, fx.other, &kp, &opc), CP_ERR_DECRYPT);
	CP_CHECK(!kp && !opc);
	CP_CHECK_INT(cp_enc_cred_open(enc, len - 1, fx.key, &kp, &opc), CP_ERR_LENGTH);
	enc[len - 1] ^= 1;
	CP_CHECK_INT(cp_enc_cred_open(enc, len, fx.key, &kp, &opc), CP_ERR_DECRYPT);
	enc[0] = 0x03;
	CP_CHECK_INT(cp_enc_cred_open(enc, len, fx.key, &kp, &opc), CP_ERR_SUITE);
	CP_CHECK(!kp && !opc);

	CP_CHECK(xkey != NULL);
	CP_CHECK_INT(cp_enc_cred_seal(CP_SUITE_A, xkey, NULL, fx.k_prime, fx.opc, enc, &len), CP_OK);
	CP_CHECK_INT(len, 1 + 32 + 48 + 8);
	CP_CHECK_INT(cp_enc_cred_open(enc, len, xkey, &kp, &opc), CP_OK);
	CP_CHECK(secret_is(kp, fx.k_prime) && secret_is(opc, fx.opc));
	cp_secret_freep(&kp);
	cp_secret_freep(&opc);
	CP_CHECK_INT(cp_enc_cred_seal((CpSuite)9, xkey, NULL, fx.k_prime, fx.opc, enc, &len), CP_ERR_SUITE);
	CP_CHECK_INT(cp_enc_cred_seal(CP_SUITE_B, fx.key, NULL, fx.opc, fx.opc, enc, &len), CP_ERR_ARGUMENT);
	cp_key_free(xkey);
}

static void
test_profile_codec(void)
{
	cp_auto_buf b = CP_BUF_INIT;
	CpProfile p;
	Tl t;

	encode_profile(&fx.p, &b);
	CP_CHECK_INT(cp_profile_decode(b.data, b.len, &p), CP_OK);
	CP_CHECK_INT(p.version, 2);
	CP_CHECK(memcmp(p.device_id, fx.device_id, 16) == 0);
	CP_CHECK_INT(p.operation, CP_OP_CLAIM);
	CP_CHECK_INT(p.binding_version, 1);
	CP_CHECK(!p.has_replaces);
	CP_CHECK_INT(p.op_chain_len, fx.op.chain_len);
	CP_CHECK(memcmp(p.op_chain, fx.op.chain, fx.op.chain_len) == 0);
	CP_CHECK(p.op_signature_len >= 8 && p.op_signature_len <= CP_ECDSA_MAX);
	CP_CHECK_INT(p.profile_seq, 5);
	CP_CHECK(memcmp(p.nonce, fx.nonce, 16) == 0);
	CP_CHECK(p.has_not_after);
	CP_CHECK_INT(p.not_after, 2000000000);
	CP_CHECK_INT(p.enc_cred_len, 90);
	CP_CHECK(memcmp(p.enc_cred, fx.p.enc_cred, 90) == 0);
	CP_CHECK(strcmp(p.plmn, "00101") == 0);
	CP_CHECK(strcmp(p.network_name, "cellprov test network") == 0);
	CP_CHECK(strcmp(p.supi, supi) == 0);
	CP_CHECK(strcmp(p.apn, "internet") == 0);
	CP_CHECK(p.has_msisdn);
	CP_CHECK(strcmp(p.msisdn, "491701234567") == 0);
	CP_CHECK_INT(b.data[b.len - 35], CP_TLV_MAC);

	common_cases("profile", dec_profile, b.data, b.len, CP_ERR_MAC_NOT_LAST, false, CP_PROFILE_VERSION);

	/* Optional fields. */
	{
		cp_auto_buf c = CP_BUF_INIT;
		CpProfile q = fx.p;

		q.has_not_after = false;
		q.has_msisdn = false;
		encode_profile(&q, &c);
		CP_CHECK_INT(cp_profile_decode(c.data, c.len, &p), CP_OK);
		CP_CHECK(!p.has_not_after && !p.has_msisdn);
		/* the signatures may differ in length by a byte or two */
		CP_CHECK(c.len + 11 + (3 + 12) + 2 >= b.len && c.len + 11 + (3 + 12) <= b.len + 2);
	}

	tl_from(&t, b.data, b.len);
	/* Unknown tags in every gap; extensions skipped before the mac. */
	static const uint8_t unknown[] = { 0x09, 0x0f, 0x11, 0x1f, 0x25, 0x3f, 0x60, 0x6f, 0x71, 0x7d };
	for (size_t i = 0; i < sizeof unknown; i++) {
		tl_add(&t, unknown[i], 0, 1);
		EXPECT(dec_profile, &t, CP_ERR_UNKNOWN_TAG);
		tl_del(&t, unknown[i]);
	}
	tl_add(&t, 0x40, 0xee, 5);
	tl_add(&t, 0x5f, 0xee, 0);
	EXPECT(dec_profile, &t, CP_OK);
	/* Padded to exactly the limit, then one more. */
	tl_set_fill(&t, 0x40, 0xee, t.it[tl_index(&t, 0x40)].len + CP_RECORD_MAX - tl_bytes(&t, scratch));
	CP_CHECK_INT(tl_bytes(&t, scratch), CP_RECORD_MAX);
	EXPECT(dec_profile, &t, CP_OK);
	tl_set_fill(&t, 0x40, 0xee, t.it[tl_index(&t, 0x40)].len + 1);
	EXPECT(dec_profile, &t, CP_ERR_TOO_LARGE);
	tl_del(&t, 0x40);
	tl_del(&t, 0x5f);
	/* A tag between the fields and the mac, out of order. */
	tl_swap(&t, 0x23, 0x24);
	EXPECT(dec_profile, &t, CP_ERR_TAG_ORDER);
	tl_swap(&t, 0x23, 0x24);
	tl_swap(&t, 0x24, CP_TLV_MAC);
	EXPECT(dec_profile, &t, CP_ERR_MAC_NOT_LAST);
	tl_swap(&t, 0x24, CP_TLV_MAC);
	tl_swap(&t, 0x70, 0x7E);
	EXPECT(dec_profile, &t, CP_ERR_TAG_ORDER);
	tl_swap(&t, 0x70, 0x7E);
	/* The operation and the binding it replaces. */
	{
		static const struct {
			const char *operation;
			const char *replaces;     /* NULL: absent */
			const char *binding;
			CpError want;
		} ops[] = {
			{ "00", NULL, "0000000000000001", CP_ERR_BAD_VALUE },
			{ "04", NULL, "0000000000000001", CP_ERR_BAD_VALUE },
			{ "01", NULL, "0000000000000001", CP_OK },
			{ "02", NULL, "0000000000000001", CP_OK },
			{ "02", NULL, "0000000000000000", CP_OK },      /* a device bound before version 2 */
			{ "03", NULL, "0000000000000002", CP_ERR_MISSING_FIELD },
			{ "03", "0000000000000001", "0000000000000002", CP_OK },
			{ "03", "0000000000000002", "0000000000000002", CP_ERR_BAD_VALUE },
			{ "03", "0000000000000003", "0000000000000002", CP_ERR_BAD_VALUE },
			{ "01", "0000000000000001", "0000000000000002", CP_ERR_BAD_VALUE },
			{ "02", "0000000000000001", "0000000000000002", CP_ERR_BAD_VALUE },
		};

		for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
			Tl u;

			tl_from(&u, b.data, b.len);
			tl_set_hex(&u, 0x06, ops[i].operation);
			tl_set_hex(&u, 0x07, ops[i].binding);
			if (ops[i].replaces) {
				tl_add(&u, 0x08, 0, 8);
				tl_set_hex(&u, 0x08, ops[i].replaces);
			}
			if (expect_tl(__LINE__, dec_profile, &u, ops[i].want) != ops[i].want)
				fprintf(stderr, "  operation case %zu\n", i);
			tl_free(&u);
		}
	}

	struct {
		uint8_t tag;
		const char *value;      /* NULL: a run of fill bytes */
		uint8_t fill;
		size_t len;
		CpError want;
	} cases[] = {
		{ 0x03, NULL, 0, 7, CP_ERR_LENGTH },
		{ 0x03, NULL, 0, 9, CP_ERR_LENGTH },
		{ 0x04, NULL, 0xa0, 15, CP_ERR_LENGTH },
		{ 0x04, NULL, 0xa0, 17, CP_ERR_LENGTH },
		{ 0x05, NULL, 0, 9, CP_ERR_LENGTH },
		{ 0x05, NULL, 0, 0, CP_ERR_LENGTH },
		{ 0x10, NULL, 0x02, 89, CP_ERR_LENGTH },     /* B with A's length */
		{ 0x10, NULL, 0x02, 91, CP_ERR_LENGTH },
		{ 0x10, NULL, 0x01, 90, CP_ERR_LENGTH },     /* A with B's length */
		{ 0x10, NULL, 0x01, 88, CP_ERR_LENGTH },
		{ 0x10, NULL, 0x03, 90, CP_ERR_BAD_VALUE },  /* unknown suite */
		{ 0x10, NULL, 0x00, 89, CP_ERR_BAD_VALUE },
		{ 0x10, NULL, 0x01, 89, CP_OK },             /* A, structurally */
		{ 0x20, "0010", 0, 0, CP_ERR_LENGTH },
		{ 0x20, "0010100", 0, 0, CP_ERR_LENGTH },
		{ 0x20, "001010", 0, 0, CP_OK },
		{ 0x20, "0010a", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x20, "00 01", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x21, "", 0, 0, CP_ERR_LENGTH },
		{ 0x21, NULL, 'n', 65, CP_ERR_LENGTH },
		{ 0x21, NULL, 'n', 64, CP_OK },
		{ 0x21, "R\xc3\xa9seau d'essai", 0, 0, CP_OK },
		{ 0x21, "net\xed\xa0\x80", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x21, "net\n", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x21, "\xe2\x82", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x22, "00101", 0, 0, CP_ERR_LENGTH },
		{ 0x22, "0010100000000012", 0, 0, CP_ERR_LENGTH },
		{ 0x22, "001010", 0, 0, CP_OK },
		{ 0x22, "00101000000000x", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x22, "+01010000000001", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x23, "", 0, 0, CP_ERR_LENGTH },
		{ 0x23, NULL, 'a', 101, CP_ERR_LENGTH },
		{ 0x23, NULL, 'a', 100, CP_OK },
		{ 0x23, "inter net.example ~", 0, 0, CP_OK },
		{ 0x23, "inter\tnet", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x23, "caf\xc3\xa9", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x23, "apn\x7f", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x24, "", 0, 0, CP_ERR_LENGTH },
		{ 0x24, "4917012345678901", 0, 0, CP_ERR_LENGTH },
		{ 0x24, "491701234567890", 0, 0, CP_OK },
		{ 0x24, "1", 0, 0, CP_OK },
		{ 0x24, "+491701234567", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x24, "4917-0123", 0, 0, CP_ERR_BAD_VALUE },
		{ 0x06, NULL, 0x01, 2, CP_ERR_LENGTH },
		{ 0x06, NULL, 0x01, 0, CP_ERR_LENGTH },
		{ 0x07, NULL, 0x00, 7, CP_ERR_LENGTH },
		{ 0x07, NULL, 0x00, 9, CP_ERR_LENGTH },
		{ 0x70, NULL, 0x30, 0, CP_ERR_LENGTH },
		{ 0x70, NULL, 0x30, CP_CHAIN_MAX + 1, CP_ERR_LENGTH },
		{ 0x70, NULL, 0x30, 1, CP_OK },     /* a chain is judged by the operator check */
		{ 0x7e, NULL, 0x30, 7, CP_ERR_LENGTH },
		{ 0x7e, NULL, 0x30, CP_ECDSA_MAX + 1, CP_ERR_LENGTH },
		{ 0x7f, NULL, 0x00, 31, CP_ERR_LENGTH },
		{ 0x7f, NULL, 0x00, 33, CP_ERR_LENGTH },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Tl u;

		tl_from(&u, b.data, b.len);
		if (cases[i].value) {
			tl_set_str(&u, cases[i].tag, cases[i].value);
		} else {
			tl_set_fill(&u, cases[i].tag, cases[i].fill, cases[i].len);
			if (cases[i].tag == 0x10)
				u.it[tl_index(&u, 0x10)].val[0] = cases[i].fill;
		}
		if (expect_tl(__LINE__, dec_profile, &u, cases[i].want) != cases[i].want)
			fprintf(stderr, "  case %zu (tag 0x%02x)\n", i, cases[i].tag);
		tl_free(&u);
	}
	/* Mandatory fields; the optional ones may go. */
	static const uint8_t mandatory[] = { 0x01, 0x02, 0x03, 0x04, 0x06, 0x07, 0x10, 0x20, 0x21, 0x22,
					     0x23, 0x70, 0x7e, 0x7f };
	for (size_t i = 0; i < sizeof mandatory; i++) {
		Tl u;

		tl_from(&u, b.data, b.len);
		tl_del(&u, mandatory[i]);
		EXPECT(dec_profile, &u, CP_ERR_MISSING_FIELD);
		tl_free(&u);
	}
	tl_del(&t, 0x05);
	tl_del(&t, 0x24);
	EXPECT(dec_profile, &t, CP_OK);
	tl_free(&t);

	/* The encoder refuses what a device would reject, and leaves the
	 * buffer as it was. */
	{
		cp_auto_buf e = CP_BUF_INIT;
		CpProfile q = fx.p;

		cp_buf_append(&e, "keep", 4);
		strcpy(q.supi, "262010000000001");
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_SUPI_PLMN);
		q = fx.p;
		strcpy(q.plmn, "0010x");
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_BAD_VALUE);
		q = fx.p;
		memset(q.apn, 'a', sizeof q.apn);
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_LENGTH);
		q = fx.p;
		q.enc_cred_len = 10;
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_LENGTH);
		q = fx.p;
		q.enc_cred_len = CP_ENC_CRED_MAX + 1;
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_LENGTH);
		q = fx.p;
		strcpy(q.msisdn, "");
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_LENGTH);
		q = fx.p;
		q.operation = CP_OP_TRANSFER;       /* without the binding it replaces */
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_MISSING_FIELD);
		q = fx.p;
		q.op_chain_len = CP_CHAIN_MAX + 1;
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_LENGTH);
		/* A key that is not the chain's signer's, or no chain at all. */
		CP_CHECK_INT(cp_profile_encode(&fx.p, fx.other_op.sm_key, fx.k_prof, &e), CP_ERR_KEY);
		CP_CHECK_INT(cp_profile_encode(&fx.p, fx.op.root_key, fx.k_prof, &e), CP_ERR_KEY);
		q = fx.p;
		q.op_chain_len = 0;
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.sm_key, fx.k_prof, &e), CP_ERR_KEY);
		CP_CHECK_INT(cp_profile_encode(&fx.p, fx.op.sm_key, NULL, &e), CP_ERR_ARGUMENT);
		CP_CHECK_INT(cp_profile_encode(&fx.p, NULL, fx.k_prof, &e), CP_ERR_ARGUMENT);
		CP_CHECK_INT(cp_profile_encode(&fx.p, fx.op.sm_key, fx.opc, &e), CP_ERR_ARGUMENT);
		CP_CHECK_HEX(e.data, e.len, "6b656570");
		CP_CHECK(!e.failed);
	}
}

typedef struct {
	CpProfile p;
	CpProfileKeys keys;
} VerifyOut;

/* Verify; on failure check that nothing but (maybe) K'' came back. */
static CpError
verify_line(int line, const uint8_t *buf, size_t len, const CpVerifyContext *ctx,
	    CpError want, bool want_k2)
{
	VerifyOut out, sentinel;
	CpError err;

	memset(&sentinel.p, 0xa5, sizeof sentinel.p);
	out.p = sentinel.p;
	memset(&out.keys, 0, sizeof out.keys);
	err = cp_profile_verify(buf, len, ctx, &out.p, &out.keys);
	cp_test_checks++;
	if (err != want) {
		cp_test_failures++;
		fprintf(stderr, "%s:%d: verify = 0x%04x (%s), want 0x%04x (%s)\n", __FILE__, line,
			err, cp_error_name(err), want, cp_error_name(want));
	}
	if (err) {
		cp_test_checks++;
		if (memcmp(&out.p, &sentinel.p, sizeof out.p) != 0 || out.keys.k_prime ||
		    out.keys.opc || out.keys.k_usim || out.keys.k_sm || out.keys.k_prof ||
		    (!want_k2 && out.keys.k2) || (want_k2 && !secret_is(out.keys.k2, fx.k2))) {
			cp_test_failures++;
			fprintf(stderr, "%s:%d: verify returned data on failure\n", __FILE__, line);
		}
	}
	cp_profile_keys_clear(&out.keys);
	return err;
}

#define VERIFY(buf, len, ctx, want, k2) verify_line(__LINE__, (buf), (len), (ctx), (want), (k2))

static CpError
verify_tl(int line, const Tl *t, const CpVerifyContext *ctx, CpError want, bool want_k2)
{
	size_t n = tl_bytes(t, scratch);

	return verify_line(line, scratch, n, ctx, want, want_k2);
}

#define VERIFY_TL(t, ctx, want, k2) verify_tl(__LINE__, (t), (ctx), (want), (k2))

static void
test_profile_verify(void)
{
	cp_auto_buf b = CP_BUF_INIT;
	CpVerifyContext ctx = fx.ctx;
	CpProfileKeys keys = { 0 };
	CpProfile p;
	Tl t, u;

	encode_profile(&fx.p, &b);
	CP_CHECK_INT(cp_profile_verify(b.data, b.len, &ctx, &p, &keys), CP_OK);
	CP_CHECK(secret_is(keys.k_prime, fx.k_prime));
	CP_CHECK(secret_is(keys.opc, fx.opc));
	CP_CHECK(secret_is(keys.k_usim, fx.k_usim));
	CP_CHECK(secret_is(keys.k_sm, fx.k_sm));
	CP_CHECK(secret_is(keys.k_prof, fx.k_prof));
	CP_CHECK(secret_is(keys.k2, fx.k2));
	CP_CHECK(keys.k_usim && keys.k_usim->len == 16);
	CP_CHECK_INT(p.profile_seq, 5);
	CP_CHECK(strcmp(p.supi, supi) == 0);
	cp_profile_keys_clear(&keys);
	CP_CHECK(!keys.k_prime && !keys.k2);

	/* not_after is the last valid second; without it, no expiry. */
	ctx.now = fx.p.not_after;
	VERIFY(b.data, b.len, &ctx, CP_OK, true);
	ctx.now = fx.p.not_after + 1;
	VERIFY(b.data, b.len, &ctx, CP_ERR_EXPIRED, true);
	ctx = fx.ctx;
	ctx.last_seq = 5;
	VERIFY(b.data, b.len, &ctx, CP_ERR_REPLAY, true);
	ctx.last_seq = UINT64_MAX;
	VERIFY(b.data, b.len, &ctx, CP_ERR_REPLAY, true);
	ctx = fx.ctx;
	{
		cp_auto_buf c = CP_BUF_INIT;
		CpProfile q = fx.p;

		q.has_not_after = false;
		encode_profile(&q, &c);
		ctx.now = UINT64_MAX;
		VERIFY(c.data, c.len, &ctx, CP_OK, true);
		ctx = fx.ctx;
	}

	/* The device info is part of K'': another one gives another K''
	 * (the mac still verifies: K_prof does not depend on it). */
	{
		VerifyOut out;
		uint8_t other_info[64];

		memcpy(other_info, fx.info.data, fx.info.len);
		other_info[fx.info.len - 1] ^= 0x03;    /* suites 02 -> 01 */
		ctx.device_info = other_info;
		memset(&out.keys, 0, sizeof out.keys);
		CP_CHECK_INT(cp_profile_verify(b.data, b.len, &ctx, &out.p, &out.keys), CP_OK);
		CP_CHECK(out.keys.k2 && !cp_secret_equal(out.keys.k2, fx.k2));
		cp_profile_keys_clear(&out.keys);
		ctx = fx.ctx;
	}

	/* Each failure alone, then with every later one: the earliest wins. */
	tl_from(&t, b.data, b.len);

	/* 1 decode before everything. */
	tl_from(&u, b.data, b.len);
	tl_set_hex(&u, 0x03, "0005");
	tl_set_fill(&u, 0x02, 0x77, 16);
	VERIFY_TL(&u, &ctx, CP_ERR_LENGTH, false);
	tl_free(&u);

	/* 2 version (any later failure too: device, mac). */
	tl_from(&u, b.data, b.len);
	tl_set_hex(&u, 0x01, "03");
	VERIFY_TL(&u, &ctx, CP_ERR_VERSION, false);
	tl_set_fill(&u, 0x02, 0x77, 16);
	VERIFY_TL(&u, &ctx, CP_ERR_VERSION, false);
	/* version 1: unsigned, refused whatever else it holds */
	tl_set_hex(&u, 0x01, "01");
	VERIFY_TL(&u, &ctx, CP_ERR_VERSION, false);
	tl_free(&u);

	/* 3 device_id: a well-made profile for another device, and one
	 * that also fails its mac, decryption and freshness. */
	{
		cp_auto_buf c = CP_BUF_INIT;
		CpProfile q = fx.p;

		q.device_id[0] ^= 0x80;
		encode_profile(&q, &c);
		VERIFY(c.data, c.len, &ctx, CP_ERR_WRONG_DEVICE, false);
		c.data[c.len - 1] ^= 1;
		VERIFY(c.data, c.len, &ctx, CP_ERR_WRONG_DEVICE, false);
		ctx.device_key = fx.other;
		ctx.last_seq = 9;
		VERIFY(c.data, c.len, &ctx, CP_ERR_WRONG_DEVICE, false);
		ctx = fx.ctx;
	}

	/* 4 suite: known but not offered, also with a bad mac. */
	{
		uint8_t only_a[] = { CP_SUITE_A };

		ctx.suites = only_a;
		VERIFY(b.data, b.len, &ctx, CP_ERR_SUITE, false);
		tl_from(&u, b.data, b.len);
		tl_set_fill(&u, CP_TLV_MAC, 0, 32);
		VERIFY_TL(&u, &ctx, CP_ERR_SUITE, false);
		tl_free(&u);
		ctx.n_suites = 0;
		VERIFY(b.data, b.len, &ctx, CP_ERR_SUITE, false);
		ctx = fx.ctx;
	}

	/* 5 decrypt: encrypted to another key, or altered; with a bad mac. */
	{
		cp_auto_buf c = CP_BUF_INIT;
		CpProfile q = fx.p;

		CP_CHECK_INT(cp_enc_cred_seal(CP_SUITE_B, fx.other, NULL, fx.k_prime, fx.opc,
					      q.enc_cred, &q.enc_cred_len), CP_OK);
		encode_profile(&q, &c);
		VERIFY(c.data, c.len, &ctx, CP_ERR_DECRYPT, false);
		c.data[c.len - 1] ^= 1;
		VERIFY(c.data, c.len, &ctx, CP_ERR_DECRYPT, false);

		tl_from(&u, b.data, b.len);
		u.it[tl_index(&u, 0x10)].val[1 + 33 + 10] ^= 0x40;   /* ciphertext */
		tl_remac(&u, fx.k_prof);
		VERIFY_TL(&u, &ctx, CP_ERR_DECRYPT, false);
		u.it[tl_index(&u, 0x10)].val[1 + 33 + 10] ^= 0x40;
		u.it[tl_index(&u, 0x10)].val[89] ^= 0x01;            /* ECIES MAC */
		tl_remac(&u, fx.k_prof);
		VERIFY_TL(&u, &ctx, CP_ERR_DECRYPT, false);
		tl_free(&u);
	}

	/* 6 mac, with a replayed and expired profile too; no K'' back. */
	tl_from(&u, b.data, b.len);
	u.it[tl_index(&u, CP_TLV_MAC)].val[31] ^= 0x01;
	VERIFY_TL(&u, &ctx, CP_ERR_MAC, false);
	ctx.last_seq = 100;
	ctx.now = UINT64_MAX;
	VERIFY_TL(&u, &ctx, CP_ERR_MAC, false);
	ctx = fx.ctx;
	/* A field changed within its form after the mac was made. */
	tl_set_hex(&u, 0x03, "0000000000000006");
	tl_remac(&u, fx.k_prof);
	VERIFY_TL(&u, &ctx, CP_OK, true);
	tl_set_hex(&u, 0x03, "0000000000000007");
	VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR_SIGNATURE, false);
	tl_resign(&u, fx.op.sm_key);
	VERIFY_TL(&u, &ctx, CP_ERR_MAC, false);
	/* An extension is covered by the signature and the mac too. */
	tl_set_hex(&u, 0x03, "0000000000000006");
	tl_add(&u, 0x41, 0x01, 4);
	VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR_SIGNATURE, false);
	tl_resign(&u, fx.op.sm_key);
	VERIFY_TL(&u, &ctx, CP_ERR_MAC, false);
	tl_remac(&u, fx.k_prof);
	VERIFY_TL(&u, &ctx, CP_OK, true);
	/* A mac made with K'' or K_SM instead of K_prof. */
	tl_remac(&u, fx.k2);
	VERIFY_TL(&u, &ctx, CP_ERR_MAC, false);
	tl_remac(&u, fx.k_prof);
	VERIFY_TL(&u, &ctx, CP_OK, true);
	u.it[tl_index(&u, CP_TLV_MAC)].val[0] ^= 0x01;
	VERIFY_TL(&u, &ctx, CP_ERR_MAC, false);
	tl_remac(&u, fx.k_sm);
	VERIFY_TL(&u, &ctx, CP_ERR_MAC, false);
	tl_free(&u);

	/* 7 profile_seq before not_after and supi/plmn. */
	tl_from(&u, b.data, b.len);
	tl_set_str(&u, 0x22, "262010000000001");
	tl_remac(&u, fx.k_prof);
	VERIFY_TL(&u, &ctx, CP_ERR_SUPI_PLMN, true);
	ctx.now = fx.p.not_after + 1;
	VERIFY_TL(&u, &ctx, CP_ERR_EXPIRED, true);
	ctx.last_seq = 5;
	VERIFY_TL(&u, &ctx, CP_ERR_REPLAY, true);
	ctx = fx.ctx;
	/* supi starting with the plmn's digits but a 6-digit plmn. */
	tl_set_str(&u, 0x20, "001011");
	tl_set_str(&u, 0x22, "001010000000001");
	tl_remac(&u, fx.k_prof);
	VERIFY_TL(&u, &ctx, CP_ERR_SUPI_PLMN, true);
	tl_set_str(&u, 0x20, "001010");
	tl_remac(&u, fx.k_prof);
	VERIFY_TL(&u, &ctx, CP_OK, true);
	tl_free(&u);
	tl_free(&t);

	/* Bad arguments. */
	CP_CHECK_INT(cp_profile_verify(b.data, b.len, NULL, &p, &keys), CP_ERR_ARGUMENT);
	ctx.device_info = NULL;
	CP_CHECK_INT(cp_profile_verify(b.data, b.len, &ctx, &p, &keys), CP_ERR_ARGUMENT);
	ctx = fx.ctx;
	ctx.device_key = NULL;
	CP_CHECK_INT(cp_profile_verify(b.data, b.len, &ctx, &p, &keys), CP_ERR_ARGUMENT);
	ctx = fx.ctx;

	/* Every byte changed, two ways: each one rejected, nothing back. */
	{
		size_t rejected = 0;

		for (size_t i = 0; i < b.len; i++) {
			static const uint8_t flips[] = { 0x01, 0xff };

			for (size_t f = 0; f < sizeof flips; f++) {
				VerifyOut out;
				CpError err;

				b.data[i] ^= flips[f];
				memset(&out.p, 0xa5, sizeof out.p);
				memset(&out.keys, 0, sizeof out.keys);
				err = cp_profile_verify(b.data, b.len, &ctx, &out.p, &out.keys);
				b.data[i] ^= flips[f];
				CP_CHECK(err != CP_OK);
				CP_CHECK(!out.keys.k_prime && !out.keys.opc && !out.keys.k_usim &&
					 !out.keys.k_sm && !out.keys.k_prof && !out.keys.k2);
				CP_CHECK_INT(out.p.profile_seq, 0xa5a5a5a5a5a5a5a5ull);
				if (err != CP_OK)
					rejected++;
				cp_profile_keys_clear(&out.keys);
			}
		}
		CP_CHECK_INT(rejected, 2 * b.len);
		fprintf(stderr, "byte flips: %zu of %zu rejected\n", rejected, 2 * b.len);
	}
	VERIFY(b.data, b.len, &ctx, CP_OK, true);
}

/* ---- the operator's signature and the owner binding ---- */

/* A profile as fx.p, with changes, signed by op's SM and MAC'd with K_prof. */
static void
encode_signed(const CpProfile *p, const CpTestOperator *op, const uint8_t *chain,
	      size_t chain_len, CpBuf *out)
{
	CpProfile q = *p;

	memcpy(q.op_chain, chain, chain_len);
	q.op_chain_len = chain_len;
	cp_buf_init(out);
	CP_CHECK_INT(cp_profile_encode(&q, op->sm_key, fx.k_prof, out), CP_OK);
}

static void
test_profile_operator(void)
{
	cp_auto_buf good = CP_BUF_INIT, forged = CP_BUF_INIT;
	CpVerifyContext ctx = fx.ctx;
	size_t sm_len = fx.op.chain_len - fx.op.root_len;
	CpAnchors *both = NULL;
	char *both_pem;

	encode_profile(&fx.p, &good);
	VERIFY(good.data, good.len, &ctx, CP_OK, true);

	/* A stranger's phone: its own operator (any CA it likes), a K' of
	 * its own encrypted to the device's public key, a profile MAC'd with
	 * the K_prof that follows. Everything checks but who signed it. */
	encode_signed(&fx.p, &fx.other_op, fx.other_op.chain, fx.other_op.chain_len, &forged);
	VERIFY(forged.data, forged.len, &ctx, CP_ERR_OPERATOR, false);
	/* ... also when it borrows the real operator's chain, or signs with
	 * the real chain's root key as if it were the SM. */
	{
		cp_auto_buf c = CP_BUF_INIT;
		Tl u;

		tl_from(&u, good.data, good.len);
		tl_resign(&u, fx.other_op.sm_key);
		tl_remac(&u, fx.k_prof);       /* re-signs with the real key: undo */
		tl_resign(&u, fx.other_op.sm_key);
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR_SIGNATURE, false);
		tl_resign(&u, fx.op.root_key);
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR_SIGNATURE, false);
		/* a signature that does not parse */
		tl_set_fill(&u, 0x7E, 0x30, 70);
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR_SIGNATURE, false);
		tl_free(&u);
		(void)c;
	}

	/* The chain: without its root when the device has anchors; a root
	 * that signs profiles itself; bytes after the last certificate; one
	 * certificate too many; garbage. */
	{
		cp_auto_buf c = CP_BUF_INIT;
		uint8_t chain[2 * CP_CHAIN_MAX];
		CpProfile q = fx.p;
		Tl u;

		encode_signed(&fx.p, &fx.op, fx.op.chain, sm_len, &c);
		VERIFY(c.data, c.len, &ctx, CP_OK, true);
		cp_buf_clear(&c);
		q.op_chain_len = 0;
		memcpy(q.op_chain, fx.op.root, fx.op.root_len);
		q.op_chain_len = fx.op.root_len;
		cp_buf_init(&c);
		CP_CHECK_INT(cp_profile_encode(&q, fx.op.root_key, fx.k_prof, &c), CP_OK);
		VERIFY(c.data, c.len, &ctx, CP_ERR_OPERATOR, false);
		cp_buf_clear(&c);

		tl_from(&u, good.data, good.len);
		memcpy(chain, fx.op.chain, fx.op.chain_len);
		chain[fx.op.chain_len] = 0x00;
		tl_set(&u, 0x70, chain, fx.op.chain_len + 1);
		tl_remac(&u, fx.k_prof);
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR, false);
		/* SM, root, root, root, root: five certificates */
		memcpy(chain, fx.op.chain, sm_len);
		for (int i = 0; i < 4; i++)
			memcpy(chain + sm_len + i * fx.op.root_len, fx.op.root, fx.op.root_len);
		if (sm_len + 4 * fx.op.root_len <= CP_CHAIN_MAX) {
			tl_set(&u, 0x70, chain, sm_len + 4 * fx.op.root_len);
			tl_remac(&u, fx.k_prof);
			VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR, false);
		}
		tl_set_fill(&u, 0x70, 0x30, 300);
		tl_remac(&u, fx.k_prof);
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR, false);
		/* The SM's certificate alone, altered by a bit. */
		tl_set(&u, 0x70, fx.op.chain, sm_len);
		u.it[tl_index(&u, 0x70)].val[sm_len - 5] ^= 0x01;
		tl_remac(&u, fx.k_prof);
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR, false);
		tl_free(&u);
	}

	/* The operator check comes before the work with the device key and
	 * before the mac: a forged profile with a bad mac, for another suite,
	 * or replayed, is still "operator". */
	{
		Tl u;

		tl_from(&u, forged.data, forged.len);
		u.it[tl_index(&u, CP_TLV_MAC)].val[0] ^= 0x01;
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR, false);
		ctx.last_seq = 100;
		ctx.n_suites = 0;
		VERIFY_TL(&u, &ctx, CP_ERR_OPERATOR, false);
		ctx = fx.ctx;
		tl_free(&u);
	}

	/* Trust on first use: no anchors. Any operator may bind an unbound
	 * device, if its chain ends in its self-signed root; once bound, only
	 * the pinned root. */
	ctx.anchors = NULL;
	VERIFY(good.data, good.len, &ctx, CP_OK, true);
	VERIFY(forged.data, forged.len, &ctx, CP_OK, true);
	{
		cp_auto_buf c = CP_BUF_INIT;
		VerifyOut out;

		encode_signed(&fx.p, &fx.op, fx.op.chain, sm_len, &c);
		VERIFY(c.data, c.len, &ctx, CP_ERR_OPERATOR, false);  /* no root to trust */
		memset(&out.keys, 0, sizeof out.keys);
		CP_CHECK_INT(cp_profile_verify(good.data, good.len, &ctx, &out.p, &out.keys), CP_OK);
		CP_CHECK(memcmp(out.p.op.root, fx.op.pin, CP_SHA256_LEN) == 0);
		CP_CHECK(strcmp(out.p.op.name, "Example Operator") == 0);
		cp_profile_keys_clear(&out.keys);
	}
	ctx.bound = true;
	ctx.operator_pin = fx.op.pin;
	ctx.binding_version = 1;
	{
		cp_auto_buf c = CP_BUF_INIT;
		CpProfile q = fx.p;

		q.operation = CP_OP_REPROVISION;
		q.profile_seq = 6;
		encode_signed(&q, &fx.op, fx.op.chain, fx.op.chain_len, &c);
		VERIFY(c.data, c.len, &ctx, CP_OK, true);
		cp_buf_clear(&c);
		encode_signed(&q, &fx.other_op, fx.other_op.chain, fx.other_op.chain_len, &c);
		VERIFY(c.data, c.len, &ctx, CP_ERR_OPERATOR, false);
	}
	/* The pin holds with anchors too: a device bound by one of several
	 * trusted operators hears only that one. */
	both_pem = malloc(strlen(fx.op.root_pem) + strlen(fx.other_op.root_pem) + 1);
	strcpy(both_pem, fx.op.root_pem);
	strcat(both_pem, fx.other_op.root_pem);
	CP_CHECK_INT(cp_anchors_from_pem(both_pem, strlen(both_pem), &both), CP_OK);
	CP_CHECK_INT(cp_anchors_count(both), 2);
	ctx = fx.ctx;
	ctx.anchors = both;
	VERIFY(forged.data, forged.len, &ctx, CP_OK, true);      /* unbound: either */
	ctx.bound = true;
	ctx.operator_pin = fx.op.pin;
	ctx.binding_version = 1;
	{
		cp_auto_buf c = CP_BUF_INIT;
		CpProfile q = fx.p;

		q.operation = CP_OP_REPROVISION;
		encode_signed(&q, &fx.other_op, fx.other_op.chain, fx.other_op.chain_len, &c);
		VERIFY(c.data, c.len, &ctx, CP_ERR_OPERATOR, false);
		cp_buf_clear(&c);
		encode_signed(&q, &fx.op, fx.op.chain, fx.op.chain_len, &c);
		VERIFY(c.data, c.len, &ctx, CP_OK, true);
	}
	cp_anchors_free(both);
	free(both_pem);

	/* Anchors: PEM that is no certificate, an end entity, nothing. */
	{
		char *sm_pem = cp_cert_to_pem(fx.op.chain, sm_len);
		CpAnchors *a = (CpAnchors *)1;

		CP_CHECK(sm_pem != NULL);
		CP_CHECK_INT(cp_anchors_from_pem(sm_pem, strlen(sm_pem), &a), CP_ERR_KEY);
		CP_CHECK(a == NULL);
		CP_CHECK_INT(cp_anchors_from_pem("", 0, &a), CP_ERR_KEY);
		CP_CHECK_INT(cp_anchors_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
						 57, &a), CP_ERR_KEY);
		free(sm_pem);
	}

	/* The binding: each operation against each state of the device. The
	 * check is last, behind the mac: a refusal carries K''. */
	{
		static const struct {
			CpOperation op;
			uint64_t version, replaces;
			bool bound;
			uint64_t device_version;
			CpError want;
		} cases[] = {
			{ CP_OP_CLAIM, 1, 0, false, 0, CP_OK },
			{ CP_OP_CLAIM, 7, 0, false, 0, CP_OK },
			{ CP_OP_CLAIM, 1, 0, true, 1, CP_OK },           /* its owner again */
			{ CP_OP_CLAIM, 2, 0, true, 1, CP_ERR_BINDING },  /* another binding */
			{ CP_OP_CLAIM, 1, 0, true, 2, CP_ERR_BINDING },
			{ CP_OP_CLAIM, 0, 0, true, 0, CP_OK },           /* bound before version 2 */
			{ CP_OP_REPROVISION, 1, 0, true, 1, CP_OK },
			{ CP_OP_REPROVISION, 0, 0, true, 0, CP_OK },      /* bound before version 2 */
			{ CP_OP_REPROVISION, 2, 0, true, 1, CP_ERR_BINDING },
			{ CP_OP_REPROVISION, 1, 0, true, 2, CP_ERR_BINDING },
			{ CP_OP_REPROVISION, 1, 0, false, 0, CP_ERR_BINDING },
			{ CP_OP_TRANSFER, 2, 1, true, 1, CP_OK },
			{ CP_OP_TRANSFER, 5, 4, true, 1, CP_OK },         /* transfers missed meanwhile */
			{ CP_OP_TRANSFER, 2, 1, true, 2, CP_ERR_BINDING },
			{ CP_OP_TRANSFER, 2, 1, true, 3, CP_ERR_BINDING },
			{ CP_OP_TRANSFER, 2, 1, false, 0, CP_ERR_BINDING },
		};

		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			cp_auto_buf c = CP_BUF_INIT;
			CpProfile q = fx.p;

			q.operation = cases[i].op;
			q.binding_version = cases[i].version;
			q.has_replaces = cases[i].op == CP_OP_TRANSFER;
			q.replaces = cases[i].replaces;
			encode_signed(&q, &fx.op, fx.op.chain, fx.op.chain_len, &c);
			ctx = fx.ctx;
			ctx.bound = cases[i].bound;
			ctx.binding_version = cases[i].device_version;
			ctx.operator_pin = cases[i].bound ? fx.op.pin : NULL;
			if (VERIFY(c.data, c.len, &ctx, cases[i].want, true) != cases[i].want)
				fprintf(stderr, "  binding case %zu\n", i);
		}
	}
}

/* ---- receipt ---- */

static void
test_receipt(void)
{
	cp_auto_buf b = CP_BUF_INIT, nomac = CP_BUF_INIT;
	CpReceipt r = { 0 }, back;
	CpKey *pub;
	size_t sig_len;
	Tl t;

	memcpy(r.device_id, fx.device_id, 16);
	r.profile_seq = 5;
	r.status = CP_RECEIPT_PROVISIONED;
	r.reason = 0;
	r.has_registration = true;
	strcpy(r.registration, "00101");
	r.binding_version = 3;
	CP_CHECK_INT(cp_receipt_encode(&r, fx.key, fx.k2, &b), CP_OK);
	CP_CHECK_INT(cp_receipt_verify(b.data, b.len, fx.k2, &back), CP_OK);
	CP_CHECK_INT(back.version, 2);
	CP_CHECK(memcmp(back.device_id, fx.device_id, 16) == 0);
	CP_CHECK_INT(back.profile_seq, 5);
	CP_CHECK_INT(back.status, 1);
	CP_CHECK_INT(back.reason, 0);
	CP_CHECK(back.has_registration && strcmp(back.registration, "00101") == 0);
	CP_CHECK_INT(back.binding_version, 3);
	CP_CHECK(back.has_mac);
	sig_len = back.device_signature_len;
	CP_CHECK(sig_len >= 8 && sig_len <= CP_ECDSA_MAX);
	CP_CHECK_INT(b.len, 4 + 19 + 11 + 4 + 5 + 8 + 11 + 3 + sig_len + 35);
	CP_CHECK_INT(back.signed_len, b.len - 35 - 3 - sig_len);

	/* The SM's check: the device's signature under its certified key,
	 * whatever the mac. */
	{
		uint8_t pubc[33];

		CP_CHECK_INT(cp_p256_public_compressed(fx.key, pubc), CP_OK);
		pub = cp_p256_from_public(pubc, sizeof pubc);
	}
	memset(&back, 0xa5, sizeof back);
	CP_CHECK_INT(cp_receipt_verify_device(b.data, b.len, pub, &back), CP_OK);
	CP_CHECK_INT(back.binding_version, 3);
	memset(&back, 0xa5, sizeof back);
	CP_CHECK_INT(cp_receipt_verify_device(b.data, b.len, fx.other, &back), CP_ERR_SIGNATURE);
	CP_CHECK_INT(back.profile_seq, 0xa5a5a5a5a5a5a5a5ull);
	CP_CHECK_INT(cp_receipt_verify_device(b.data, b.len, NULL, &back), CP_ERR_ARGUMENT);

	memset(&back, 0xa5, sizeof back);
	CP_CHECK_INT(cp_receipt_verify(b.data, b.len, fx.k_prof, &back), CP_ERR_RECEIPT_MAC);
	CP_CHECK_INT(back.profile_seq, 0xa5a5a5a5a5a5a5a5ull);
	/* Every byte changed: the mac fails, and the signature fails for
	 * every byte it covers. */
	for (size_t i = 0; i < b.len; i++) {
		CpError dev;

		b.data[i] ^= 0x20;
		CP_CHECK(cp_receipt_verify(b.data, b.len, fx.k2, &back) != CP_OK);
		dev = cp_receipt_verify_device(b.data, b.len, pub, &back);
		if (i < b.len - 35)
			CP_CHECK(dev != CP_OK);
		b.data[i] ^= 0x20;
	}

	/* A rejection without mac: still signed. */
	r.status = CP_RECEIPT_REJECTED;
	r.reason = CP_ERR_DECRYPT;
	r.has_registration = false;
	r.binding_version = 0;
	CP_CHECK_INT(cp_receipt_encode(&r, fx.key, NULL, &nomac), CP_OK);
	CP_CHECK_INT(cp_receipt_decode(nomac.data, nomac.len, &back), CP_OK);
	CP_CHECK(!back.has_mac && !back.has_registration);
	CP_CHECK_INT(back.reason, CP_ERR_DECRYPT);
	CP_CHECK_INT(back.status, CP_RECEIPT_REJECTED);
	CP_CHECK_INT(cp_receipt_verify(nomac.data, nomac.len, fx.k2, &back), CP_ERR_NO_MAC);
	CP_CHECK_INT(cp_receipt_verify_device(nomac.data, nomac.len, pub, &back), CP_OK);
	CP_CHECK_INT(nomac.len, 4 + 19 + 11 + 4 + 5 + 11 + 3 + back.device_signature_len);
	/* A receipt MAC'd with an empty key, which anyone can make, is not
	 * verified with an empty K''. */
	{
		cp_auto_secret *empty = cp_secret_new(0);
		cp_auto_buf forged = CP_BUF_INIT;
		uint8_t mac[CP_MAC_LEN];

		CP_CHECK(empty != NULL);
		cp_buf_append(&forged, nomac.data, nomac.len);
		CP_CHECK_INT(cp_hmac_sha256(NULL, 0, nomac.data, nomac.len, mac), CP_OK);
		cp_tlv_put(&forged, CP_TLV_MAC, mac, sizeof mac);
		memset(&back, 0xa5, sizeof back);
		CP_CHECK_INT(cp_receipt_verify(forged.data, forged.len, empty, &back), CP_ERR_ARGUMENT);
		CP_CHECK_INT(back.profile_seq, 0xa5a5a5a5a5a5a5a5ull);
	}
	CP_CHECK_HEX(nomac.data, 7, "010001" "02" "020010");

	/* Decommissioned: status 4. */
	{
		cp_auto_buf d = CP_BUF_INIT;
		CpReceipt x = r;

		x.status = CP_RECEIPT_DECOMMISSIONED;
		x.reason = 0;
		CP_CHECK_INT(cp_receipt_encode(&x, fx.key, fx.k2, &d), CP_OK);
		CP_CHECK_INT(cp_receipt_verify(d.data, d.len, fx.k2, &back), CP_OK);
		CP_CHECK_INT(back.status, CP_RECEIPT_DECOMMISSIONED);
	}

	common_cases("receipt", dec_receipt, b.data, b.len, CP_ERR_MAC_NOT_LAST, true, CP_RECEIPT_VERSION);
	/* Without a mac, an extension after the signature is out of order; a
	 * byte after it, truncated. */
	{
		uint8_t buf[256];

		memcpy(buf, nomac.data, nomac.len);
		memcpy(buf + nomac.len, "\x40\x00\x00", 3);
		expect_bytes(__LINE__, dec_receipt, buf, nomac.len + 3, CP_ERR_TAG_ORDER);
		expect_bytes(__LINE__, dec_receipt, buf, nomac.len + 1, CP_ERR_TRUNCATED);
	}

	tl_from(&t, b.data, b.len);
	struct {
		uint8_t tag;
		const char *hex;
		CpError want;
	} cases[] = {
		{ 0x03, "05", CP_ERR_LENGTH },
		{ 0x04, "03", CP_OK },
		{ 0x04, "04", CP_OK },
		{ 0x04, "05", CP_ERR_BAD_VALUE },
		{ 0x04, "0101", CP_ERR_LENGTH },
		{ 0x04, "", CP_ERR_LENGTH },
		{ 0x05, "ffff", CP_OK },           /* a code from a newer version */
		{ 0x05, "02", CP_ERR_LENGTH },
		{ 0x05, "000000", CP_ERR_LENGTH },
		{ 0x06, "303031303130", CP_OK },   /* 6 digits */
		{ 0x06, "30303130", CP_ERR_LENGTH },
		{ 0x06, "30303130313031", CP_ERR_LENGTH },
		{ 0x06, "3030313041", CP_ERR_BAD_VALUE },
		{ 0x07, "00000000000001", CP_ERR_LENGTH },
		{ 0x07, "000000000000000001", CP_ERR_LENGTH },
		{ 0x7e, "30303030303030", CP_ERR_LENGTH },
		{ 0x7f, "00", CP_ERR_LENGTH },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Tl u;

		tl_from(&u, b.data, b.len);
		tl_set_hex(&u, cases[i].tag, cases[i].hex);
		if (expect_tl(__LINE__, dec_receipt, &u, cases[i].want) != cases[i].want)
			fprintf(stderr, "  case %zu (tag 0x%02x)\n", i, cases[i].tag);
		tl_free(&u);
	}
	static const uint8_t mandatory[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x7e };
	for (size_t i = 0; i < sizeof mandatory; i++) {
		Tl u;

		tl_from(&u, b.data, b.len);
		tl_del(&u, mandatory[i]);
		EXPECT(dec_receipt, &u, CP_ERR_MISSING_FIELD);
		tl_free(&u);
	}
	tl_add(&t, 0x08, 0, 1);
	EXPECT(dec_receipt, &t, CP_ERR_UNKNOWN_TAG);
	tl_del(&t, 0x08);
	/* An extension sits before the signature, which covers it. */
	tl_add(&t, 0x50, 0, 3);
	EXPECT(dec_receipt, &t, CP_OK);
	CP_CHECK_INT(cp_receipt_verify(scratch, tl_bytes(&t, scratch), fx.k2, &back), CP_ERR_RECEIPT_MAC);
	CP_CHECK_INT(cp_receipt_verify_device(scratch, tl_bytes(&t, scratch), pub, &back), CP_ERR_SIGNATURE);
	tl_free(&t);

	/* Encoder checks. */
	{
		cp_auto_buf e = CP_BUF_INIT;
		CpReceipt x = r;

		x.status = 9;
		CP_CHECK_INT(cp_receipt_encode(&x, fx.key, fx.k2, &e), CP_ERR_BAD_VALUE);
		x = r;
		x.has_registration = true;
		strcpy(x.registration, "0010");
		CP_CHECK_INT(cp_receipt_encode(&x, fx.key, fx.k2, &e), CP_ERR_LENGTH);
		CP_CHECK_INT(cp_receipt_encode(&r, fx.key, fx.opc, &e), CP_ERR_ARGUMENT);
		CP_CHECK_INT(cp_receipt_encode(&r, NULL, fx.k2, &e), CP_ERR_ARGUMENT);
		CP_CHECK_INT(e.len, 0);
	}
	cp_key_free(pub);
}

/* ---- command ---- */

static void
test_command(void)
{
	cp_auto_buf b = CP_BUF_INIT;
	CpVerifyContext ctx = fx.ctx;
	CpCommand c = { 0 }, back;
	Tl t;

	memcpy(c.device_id, fx.device_id, 16);
	c.seq = 9;
	c.has_not_after = true;
	c.not_after = 2000000000;
	c.command = CP_COMMAND_DECOMMISSION;
	c.binding_version = 3;
	memcpy(c.op_chain, fx.op.chain, fx.op.chain_len);
	c.op_chain_len = fx.op.chain_len;
	CP_CHECK_INT(cp_command_encode(&c, fx.op.sm_key, &b), CP_OK);
	CP_CHECK_INT(cp_command_decode(b.data, b.len, &back), CP_OK);
	CP_CHECK_INT(back.version, 1);
	CP_CHECK_INT(back.seq, 9);
	CP_CHECK_INT(back.command, CP_COMMAND_DECOMMISSION);
	CP_CHECK_INT(back.binding_version, 3);
	CP_CHECK(back.has_not_after && back.not_after == 2000000000);
	CP_CHECK_INT(b.data[b.len - 3 - back.op_signature_len], 0x7E);

	/* A device bound at version 3 to this operator, last seq 4. */
	ctx.bound = true;
	ctx.binding_version = 3;
	ctx.operator_pin = fx.op.pin;
	memset(&back, 0xa5, sizeof back);
	CP_CHECK_INT(cp_command_verify(b.data, b.len, &ctx, &back), CP_OK);
	CP_CHECK(memcmp(back.op.root, fx.op.pin, 32) == 0);

	/* Each refusal, nothing back. */
	{
		struct {
			const char *what;
			CpVerifyContext ctx;
			CpError want;
		} cases[] = {
			{ "replayed", ctx, CP_ERR_REPLAY },
			{ "expired", ctx, CP_ERR_EXPIRED },
			{ "other binding", ctx, CP_ERR_BINDING },
			{ "unbound", ctx, CP_ERR_BINDING },
			{ "other device", ctx, CP_ERR_WRONG_DEVICE },
			{ "pinned elsewhere", ctx, CP_ERR_OPERATOR },
		};
		static uint8_t other_id[16] = { 1 };

		cases[0].ctx.last_seq = 9;
		cases[1].ctx.now = 2000000001;
		cases[2].ctx.binding_version = 4;
		cases[3].ctx.bound = false;
		cases[4].ctx.device_id = other_id;
		cases[5].ctx.operator_pin = fx.other_op.pin;
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			memset(&back, 0xa5, sizeof back);
			if (cp_command_verify(b.data, b.len, &cases[i].ctx, &back) != cases[i].want)
				fprintf(stderr, "command case '%s'\n", cases[i].what);
			CP_CHECK_INT(cp_command_verify(b.data, b.len, &cases[i].ctx, &back), cases[i].want);
			CP_CHECK_INT(back.seq, 0xa5a5a5a5a5a5a5a5ull);
		}
	}
	/* Another operator's SM: refused with anchors, and with the pin. */
	{
		cp_auto_buf o = CP_BUF_INIT;
		CpCommand x = c;

		memcpy(x.op_chain, fx.other_op.chain, fx.other_op.chain_len);
		x.op_chain_len = fx.other_op.chain_len;
		CP_CHECK_INT(cp_command_encode(&x, fx.other_op.sm_key, &o), CP_OK);
		CP_CHECK_INT(cp_command_verify(o.data, o.len, &ctx, &back), CP_ERR_OPERATOR);
		ctx.anchors = NULL;
		CP_CHECK_INT(cp_command_verify(o.data, o.len, &ctx, &back), CP_ERR_OPERATOR);
		ctx.anchors = fx.op.anchors;
		/* signed by another key under the real chain */
		CP_CHECK_INT(cp_command_encode(&x, fx.op.sm_key, &o), CP_ERR_KEY);
	}
	/* Every byte changed: refused. */
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x01;
		CP_CHECK(cp_command_verify(b.data, b.len, &ctx, &back) != CP_OK);
		b.data[i] ^= 0x01;
	}
	/* The signature is last: nothing may follow it. */
	tl_from(&t, b.data, b.len);
	tl_add(&t, 0x7F, 0, 32);
	EXPECT(cp_command_decode_fn, &t, CP_ERR_TRAILING);
	tl_del(&t, 0x7F);
	tl_set_hex(&t, 0x06, "02");
	EXPECT(cp_command_decode_fn, &t, CP_ERR_BAD_VALUE);
	tl_set_hex(&t, 0x06, "01");
	tl_set_hex(&t, 0x01, "02");
	EXPECT(cp_command_decode_fn, &t, CP_ERR_VERSION);
	tl_set_hex(&t, 0x01, "01");
	tl_del(&t, 0x07);
	EXPECT(cp_command_decode_fn, &t, CP_ERR_MISSING_FIELD);
	tl_free(&t);
	CP_CHECK_INT(cp_command_verify(b.data, b.len, NULL, &back), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_command_encode(&c, NULL, &b), CP_ERR_ARGUMENT);
}

/* ---- key generations ---- */

static void
test_key_generations(void)
{
	cp_auto_secret *k_c = cp_secret_new_from_hex(k_c_hex, 32);
	cp_auto_secret *g0 = cp_keys_k_prime_gen(k_c, fx.device_id, supi, 0);
	cp_auto_secret *g1 = cp_keys_k_prime_gen(k_c, fx.device_id, supi, 1);
	cp_auto_secret *g2 = cp_keys_k_prime_gen(k_c, fx.device_id, supi, 2);
	cp_auto_secret *g3 = cp_keys_k_prime_gen(k_c, fx.device_id, supi, 3);
	uint8_t s[1 + 16 + 2 + 15 + 2 + 8 + 2], mac[32];
	size_t n = 0;

	CP_CHECK(g0 && g1 && g2 && g3);
	/* generation 1 is the first K', as before */
	CP_CHECK(cp_secret_equal(g0, fx.k_prime) && cp_secret_equal(g1, fx.k_prime));
	CP_CHECK(!cp_secret_equal(g2, g1) && !cp_secret_equal(g3, g2));
	/* generation 2 spelled out: FC || device_id || 0010 || supi || 000f || gen || 0008 */
	s[n++] = 0xF0;
	memcpy(s + n, fx.device_id, 16);
	n += 16;
	s[n++] = 0x00;
	s[n++] = 0x10;
	memcpy(s + n, supi, 15);
	n += 15;
	s[n++] = 0x00;
	s[n++] = 0x0f;
	memcpy(s + n, "\x00\x00\x00\x00\x00\x00\x00\x02", 8);
	n += 8;
	s[n++] = 0x00;
	s[n++] = 0x08;
	CP_CHECK_INT(cp_hmac_sha256(k_c->data, k_c->len, s, n, mac), CP_OK);
	CP_CHECK(g2 && g2->len == 32 && memcmp(g2->data, mac, 32) == 0);
	CP_CHECK(cp_keys_k_prime_gen(k_c, fx.device_id, "12345", 2) == NULL);
}

/* ---- the published vectors (docs/test-vectors), decoded independently ---- */

static const char *
vec(const CpTestVectors *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		const char *s = cp_test_block_get(&v->blocks[i], name);

		if (s)
			return s;
	}
	fprintf(stderr, "published vectors lack '%s'\n", name);
	CP_CHECK(false);
	return "";
}

static size_t
vec_bytes(const CpTestVectors *v, const char *name, uint8_t *out, size_t cap)
{
	return cp_test_unhex(vec(v, name), out, cap);
}

static void
test_published_vectors(void)
{
	static uint8_t profile[CP_RECORD_MAX], receipt[CP_RECORD_MAX], record[CP_RECORD_MAX];
	static uint8_t info[256], ndef[CP_T4T_NDEF_MAX], cc_bytes[64];
	const char *src = getenv("CP_SOURCE_DIR");
	uint8_t priv[32], device_id[CP_DEVICE_ID_LEN], suites[] = { CP_SUITE_B };
	size_t profile_len, receipt_len, record_len, info_len, ndef_len;
	CpProfileKeys keys = { 0 };
	CpVerifyContext ctx = { 0 };
	const CpNdefRecord *r;
	CpTestVectors v;
	CpDeviceRecord dr;
	CpNdefMessage m;
	CpReceipt rc;
	CpProfile p;
	CpT4tCc cc;
	CpKey *key;
	char dir[4096], *uri = NULL;

	if (!src) {
		fprintf(stderr, "CP_SOURCE_DIR not set: cannot check the published vectors\n");
		cp_test_failures++;
		return;
	}
	snprintf(dir, sizeof dir, "%s/docs/test-vectors", src);
	setenv("CP_VECTORS_DIR", dir, 1);
	if (!cp_test_vectors_load("cellprov-v2.txt", &v)) {
		fprintf(stderr, "docs/test-vectors/cellprov-v2.txt missing\n");
		cp_test_failures++;
		return;
	}

	vec_bytes(&v, "device_privkey", priv, sizeof priv);
	vec_bytes(&v, "device_id", device_id, sizeof device_id);
	key = cp_p256_from_private(priv);
	CP_CHECK(key != NULL);
	record_len = vec_bytes(&v, "device_record", record, sizeof record);
	CP_CHECK_INT(cp_device_record_verify(record, record_len, key, &dr), CP_OK);
	CP_CHECK(memcmp(dr.device_id, device_id, CP_DEVICE_ID_LEN) == 0);
	info_len = vec_bytes(&v, "device_info", info, sizeof info);
	CP_CHECK_INT(dr.info_len, info_len);
	CP_CHECK(memcmp(record, info, info_len) == 0);

	ctx.device_id = device_id;
	ctx.device_key = key;
	ctx.suites = suites;
	ctx.n_suites = 1;
	ctx.now = 1700000000;
	ctx.device_info = info;
	ctx.device_info_len = info_len;
	profile_len = vec_bytes(&v, "profile", profile, sizeof profile);
	CP_CHECK_INT(cp_profile_verify(profile, profile_len, &ctx, &p, &keys), CP_OK);
	if (keys.k_prime) {
		CP_CHECK_HEX(keys.k_prime->data, keys.k_prime->len, vec(&v, "k_prime"));
		CP_CHECK_HEX(keys.opc->data, keys.opc->len, vec(&v, "opc"));
		CP_CHECK_HEX(keys.k_usim->data, keys.k_usim->len, vec(&v, "k_usim"));
		CP_CHECK_HEX(keys.k_sm->data, keys.k_sm->len, vec(&v, "k_sm"));
		CP_CHECK_HEX(keys.k_prof->data, keys.k_prof->len, vec(&v, "k_prof"));
		CP_CHECK_HEX(keys.k2->data, keys.k2->len, vec(&v, "k2"));
		CP_CHECK_HEX(p.enc_cred, p.enc_cred_len, vec(&v, "enc_cred"));
		CP_CHECK(strcmp(p.supi, vec(&v, "supi_text")) == 0);

		receipt_len = vec_bytes(&v, "receipt", receipt, sizeof receipt);
		CP_CHECK_INT(cp_receipt_verify(receipt, receipt_len, keys.k2, &rc), CP_OK);
		CP_CHECK_INT(rc.profile_seq, p.profile_seq);
	}
	cp_profile_keys_clear(&keys);

	ndef_len = vec_bytes(&v, "ndef_tag", ndef, sizeof ndef);
	CP_CHECK_INT(cp_ndef_parse(ndef, ndef_len, &m), CP_OK);
	CP_CHECK_INT(cp_ndef_find_uri(&m, &uri), CP_OK);
	CP_CHECK(uri && strcmp(uri, vec(&v, "certificate_url_text")) == 0);
	free(uri);
	r = cp_ndef_find_mime(&m, CP_MIME_DEVICE);
	CP_CHECK(r && r->payload_len == record_len && memcmp(r->payload, record, record_len) == 0);
	ndef_len = vec_bytes(&v, "ndef_profile", ndef, sizeof ndef);
	CP_CHECK_INT(cp_ndef_parse(ndef, ndef_len, &m), CP_OK);
	r = cp_ndef_find_mime(&m, CP_MIME_PROFILE);
	CP_CHECK(r && r->payload_len == profile_len && memcmp(r->payload, profile, profile_len) == 0);
	CP_CHECK_INT(cp_t4t_cc_decode(cc_bytes, vec_bytes(&v, "t4t_cc", cc_bytes, sizeof cc_bytes), &cc),
		     CP_OK);

	cp_key_free(key);
	cp_test_vectors_free(&v);
}

/*
 * A chain that carries an anchor's own bytes (the root at its end) reuses
 * the parsed anchor and its pin: the same outcome and the same pin as a
 * chain whose root is parsed (trust on first use), and a root copy that
 * differs from the anchor by one byte is parsed like any certificate.
 */
static void
test_chain_anchor_reuse(void)
{
	CpTestOperator *op = &fx.op;
	uint8_t chain[CP_CHAIN_MAX];
	CpOperatorId id;
	CpKey *signer = NULL;

	for (int round = 0; round < 2; round++) {
		memset(&id, 0, sizeof id);
		CP_CHECK_INT(cp_operator_chain_verify(round ? NULL : op->anchors, op->pin,
						      op->chain, op->chain_len, &signer, &id), CP_OK);
		CP_CHECK(memcmp(id.root, op->pin, CP_SHA256_LEN) == 0);
		CP_CHECK(signer && EVP_PKEY_eq(signer, op->sm_key) == 1);
		cp_key_free(signer);
		signer = NULL;
	}
	/* The root's copy with its last signature byte changed: the anchor
	 * still decides with anchors; without, the copy is no root. */
	memcpy(chain, op->chain, op->chain_len);
	chain[op->chain_len - 1] ^= 0x01;
	memset(&id, 0, sizeof id);
	CP_CHECK_INT(cp_operator_chain_verify(op->anchors, NULL, chain, op->chain_len, &signer, &id),
		     CP_OK);
	CP_CHECK(memcmp(id.root, op->pin, CP_SHA256_LEN) == 0);
	cp_key_free(signer);
	signer = NULL;
	CP_CHECK_INT(cp_operator_chain_verify(NULL, NULL, chain, op->chain_len, &signer, &id),
		     CP_ERR_OPERATOR);
	CP_CHECK(signer == NULL);
	/* The anchor's bytes cut short at the end of the chain: refused. */
	CP_CHECK_INT(cp_operator_chain_verify(op->anchors, NULL, op->chain, op->chain_len - 1,
					      &signer, &id), CP_ERR_OPERATOR);
}

int
main(void)
{
	fixture_setup();
	test_device_record();
	test_enc_cred();
	test_profile_codec();
	test_profile_verify();
	test_profile_operator();
	test_chain_anchor_reuse();
	test_receipt();
	test_command();
	test_key_generations();
	test_published_vectors();
	fixture_teardown();
	return cp_test_done("test-records");
}
