/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The generic TLV decoder and the value checks, on a small field table. */
#include <string.h>

#include "cp-test.h"
#include "cp-tlv.h"

enum { F_VERSION, F_ID, F_OPT, F_MAC, F_N };

static const CpTlvField fields[F_N] = {
	[F_VERSION] = { 0x01, 1, 1, true, false },
	[F_ID] = { 0x02, 2, 4, true, false },
	[F_OPT] = { 0x03, 0, 10, false, false },
	[F_MAC] = { 0x7F, 4, 4, true, true },
};

/* The same without a mac: a last field that is a signature. */
static const CpTlvField sig_fields[] = {
	{ 0x01, 1, 1, true, false },
	{ 0x0A, 1, 8, true, true },
};

static CpError
decode_hex(const char *hex, CpTlvValue *v, size_t *off, uint8_t *tag)
{
	static uint8_t buf[512];
	size_t n = cp_test_unhex(hex, buf, sizeof buf);

	return cp_tlv_decode(buf, n, fields, F_N, v, off, tag);
}

#define CHECK_DECODE(hex, want) do {                                      \
		CpTlvValue _v[F_N];                                       \
		CP_CHECK_INT(decode_hex((hex), _v, NULL, NULL), (want));  \
	} while (0)

static void
test_valid(void)
{
	uint8_t buf[64];
	size_t n = cp_test_unhex("010001" "01" "020003aabbcc" "030000" "7f000411223344", buf, sizeof buf);
	CpTlvValue v[F_N];

	CP_CHECK_INT(cp_tlv_decode(buf, n, fields, F_N, v, NULL, NULL), CP_OK);
	CP_CHECK_INT(v[F_VERSION].len, 1);
	CP_CHECK_INT(v[F_VERSION].value[0], 1);
	CP_CHECK_INT(v[F_VERSION].offset, 0);
	CP_CHECK_INT(v[F_VERSION].end, 4);
	CP_CHECK_INT(v[F_ID].len, 3);
	CP_CHECK_HEX(v[F_ID].value, v[F_ID].len, "aabbcc");
	CP_CHECK_INT(v[F_ID].offset, 4);
	/* Present with length 0: value points into the input, not NULL. */
	CP_CHECK(v[F_OPT].value != NULL);
	CP_CHECK_INT(v[F_OPT].len, 0);
	CP_CHECK_INT(v[F_MAC].offset, 13);
	CP_CHECK_INT(v[F_MAC].end, n);

	/* Optional field absent. */
	n = cp_test_unhex("010001" "01" "020002aabb" "7f000411223344", buf, sizeof buf);
	CP_CHECK_INT(cp_tlv_decode(buf, n, fields, F_N, v, NULL, NULL), CP_OK);
	CP_CHECK(v[F_OPT].value == NULL);
	CP_CHECK_INT(v[F_MAC].offset, 9);
}

static void
test_extensions(void)
{
	CpTlvValue v[F_N];

	/* 0x40-0x5F are skipped, with any length, in order. */
	CHECK_DECODE("01000101" "020002aabb" "400000" "4f0003010203" "5f0001ff" "7f000411223344", CP_OK);
	CP_CHECK_INT(decode_hex("01000101" "020002aabb" "41000100" "7f000411223344", v, NULL, NULL), CP_OK);
	CP_CHECK_INT(v[F_MAC].offset, 13);
	/* ... but are still ordered and unique. */
	CHECK_DECODE("01000101" "020002aabb" "450000" "410000" "7f000411223344", CP_ERR_TAG_ORDER);
	CHECK_DECODE("01000101" "020002aabb" "450000" "450000" "7f000411223344", CP_ERR_TAG_DUPLICATE);
	/* An extension below a known tag is out of order. */
	CHECK_DECODE("01000101" "400000" "020002aabb" "7f000411223344", CP_ERR_TAG_ORDER);
}

static void
test_truncated(void)
{
	size_t off = 99;
	uint8_t tag = 0;
	CpTlvValue v[F_N];

	/* Only the tag byte, then tag + half the length. */
	CHECK_DECODE("01", CP_ERR_TRUNCATED);
	CHECK_DECODE("0100", CP_ERR_TRUNCATED);
	CHECK_DECODE("01000101" "02", CP_ERR_TRUNCATED);
	CHECK_DECODE("01000101" "0200", CP_ERR_TRUNCATED);
	/* In the value. */
	CHECK_DECODE("010001", CP_ERR_TRUNCATED);
	CHECK_DECODE("01000101" "020003aabb", CP_ERR_TRUNCATED);
	CP_CHECK_INT(decode_hex("01000101" "020002aabb" "7f0004112233", v, &off, &tag), CP_ERR_TRUNCATED);
	CP_CHECK_INT(off, 9);
	CP_CHECK_INT(tag, 0x7f);
	/* Cut exactly at a TLV boundary: a field is missing instead. */
	CP_CHECK_INT(decode_hex("01000101" "020002aabb", v, &off, &tag), CP_ERR_MISSING_FIELD);
	CP_CHECK_INT(tag, 0x7f);
}

static void
test_after_last(void)
{
	uint8_t buf[64];
	size_t n, off = 0;
	uint8_t tag = 0;
	CpTlvValue v[2];

	/* Anything at all after the mac, even one byte or an extension. */
	CHECK_DECODE("01000101" "020002aabb" "7f000411223344" "00", CP_ERR_MAC_NOT_LAST);
	CHECK_DECODE("01000101" "020002aabb" "7f000411223344" "400000", CP_ERR_MAC_NOT_LAST);
	CHECK_DECODE("01000101" "020002aabb" "7f000411223344" "7f000411223344", CP_ERR_MAC_NOT_LAST);
	CHECK_DECODE("01000101" "020002aabb" "7f000411223344" "800000", CP_ERR_MAC_NOT_LAST);

	n = cp_test_unhex("01000101" "0a000101" "ff", buf, sizeof buf);
	CP_CHECK_INT(cp_tlv_decode(buf, n, sig_fields, 2, v, &off, &tag), CP_ERR_TRAILING);
	CP_CHECK_INT(off, 8);
	n = cp_test_unhex("01000101" "0a000101" "400000", buf, sizeof buf);
	CP_CHECK_INT(cp_tlv_decode(buf, n, sig_fields, 2, v, NULL, NULL), CP_ERR_TRAILING);
	n = cp_test_unhex("01000101" "0a000101", buf, sizeof buf);
	CP_CHECK_INT(cp_tlv_decode(buf, n, sig_fields, 2, v, NULL, NULL), CP_OK);
}

static void
test_order_duplicate(void)
{
	size_t off = 0;
	uint8_t tag = 0;
	CpTlvValue v[F_N];

	CHECK_DECODE("020002aabb" "01000101" "7f000411223344", CP_ERR_TAG_ORDER);
	CHECK_DECODE("01000101" "030000" "020002aabb" "7f000411223344", CP_ERR_TAG_ORDER);
	CHECK_DECODE("01000101" "01000101" "020002aabb" "7f000411223344", CP_ERR_TAG_DUPLICATE);
	/* A repeat further back is a duplicate, not only out of order. */
	CP_CHECK_INT(decode_hex("01000101" "020002aabb" "030000" "020002aabb" "7f000411223344",
				v, &off, &tag), CP_ERR_TAG_DUPLICATE);
	CP_CHECK_INT(off, 12);
	CP_CHECK_INT(tag, 0x02);
}

static void
test_length_unknown_missing(void)
{
	size_t off = 0;
	uint8_t tag = 0;
	CpTlvValue v[F_N];

	CHECK_DECODE("010000" "020002aabb" "7f000411223344", CP_ERR_LENGTH);
	CHECK_DECODE("0100020101" "020002aabb" "7f000411223344", CP_ERR_LENGTH);
	CHECK_DECODE("01000101" "020001aa" "7f000411223344", CP_ERR_LENGTH);
	CHECK_DECODE("01000101" "020005aabbccddee" "7f000411223344", CP_ERR_LENGTH);
	CHECK_DECODE("01000101" "020002aabb" "03000b0102030405060708090a0b" "7f000411223344", CP_ERR_LENGTH);
	CHECK_DECODE("01000101" "020002aabb" "7f00031122334455", CP_ERR_LENGTH);
	/* A length beyond the limit is a length error even when the input
	 * also ends early. */
	CHECK_DECODE("01000101" "02ffff", CP_ERR_LENGTH);

	CP_CHECK_INT(decode_hex("01000101" "020002aabb" "040000" "7f000411223344", v, &off, &tag),
		     CP_ERR_UNKNOWN_TAG);
	CP_CHECK_INT(off, 9);
	CP_CHECK_INT(tag, 0x04);
	CHECK_DECODE("01000101" "020002aabb" "3f0000" "7f000411223344", CP_ERR_UNKNOWN_TAG);
	CHECK_DECODE("00000100" "01000101" "020002aabb" "7f000411223344", CP_ERR_UNKNOWN_TAG);
	/* Above the extension range nothing is skipped either. */
	CHECK_DECODE("01000101" "020002aabb" "600000" "7f000411223344", CP_ERR_UNKNOWN_TAG);

	CP_CHECK_INT(decode_hex("", v, &off, &tag), CP_ERR_MISSING_FIELD);
	CP_CHECK_INT(tag, 0x01);
	CP_CHECK_INT(decode_hex("01000101" "7f000411223344", v, &off, &tag), CP_ERR_MISSING_FIELD);
	CP_CHECK_INT(tag, 0x02);
	CP_CHECK_INT(decode_hex("01000101" "020002aabb", v, &off, &tag), CP_ERR_MISSING_FIELD);
	CP_CHECK_INT(tag, 0x7f);
	CP_CHECK_INT(cp_tlv_decode(NULL, 3, fields, F_N, v, NULL, NULL), CP_ERR_ARGUMENT);
}

static void
test_put(void)
{
	static uint8_t big[0x10000];
	cp_auto_buf b = CP_BUF_INIT;
	CpBuf big_buf = CP_BUF_INIT;

	cp_tlv_put_u8(&b, 0x01, 1);
	cp_tlv_put_be16(&b, 0x02, 0xabcd);
	cp_tlv_put_be64(&b, 0x03, 0x0102030405060708ull);
	cp_tlv_put_str(&b, 0x04, "hi");
	cp_tlv_put(&b, 0x05, NULL, 0);
	CP_CHECK(!b.failed);
	CP_CHECK_HEX(b.data, b.len, "01000101" "020002abcd" "0300080102030405060708" "0400026869" "050000");

	cp_tlv_put(&big_buf, 0x01, big, 0xffff);
	CP_CHECK(!big_buf.failed);
	CP_CHECK_INT(big_buf.len, 0xffff + 3);
	cp_tlv_put(&big_buf, 0x02, big, 0x10000);
	CP_CHECK(big_buf.failed);
	cp_buf_clear(&big_buf);
}

static bool
utf8_hex(const char *hex)
{
	uint8_t buf[64];
	size_t n = cp_test_unhex(hex, buf, sizeof buf);

	return cp_is_utf8(buf, n);
}

static void
test_values(void)
{
	CP_CHECK(cp_is_digits((const uint8_t *)"0123456789", 10));
	CP_CHECK(!cp_is_digits((const uint8_t *)"12a4", 4));
	CP_CHECK(!cp_is_digits((const uint8_t *)"12 4", 4));
	CP_CHECK(!cp_is_digits((const uint8_t *)"", 0));
	CP_CHECK(!cp_is_digits((const uint8_t *)"1/", 2));
	CP_CHECK(!cp_is_digits((const uint8_t *)"1:", 2));

	CP_CHECK(cp_is_printable_ascii((const uint8_t *)"internet.example ~", 18));
	CP_CHECK(!cp_is_printable_ascii((const uint8_t *)"a\tb", 3));
	CP_CHECK(!cp_is_printable_ascii((const uint8_t *)"a\x7f", 2));
	CP_CHECK(!cp_is_printable_ascii((const uint8_t *)"\xc3\xa9", 2));
	CP_CHECK(!cp_is_printable_ascii((const uint8_t *)"", 0));

	CP_CHECK(utf8_hex("4578616d706c65204c7464"));     /* ASCII */
	CP_CHECK(utf8_hex("c3a9"));                       /* U+00E9 */
	CP_CHECK(utf8_hex("c2a0"));                       /* U+00A0, first after C1 */
	CP_CHECK(utf8_hex("e282ac"));                     /* U+20AC */
	CP_CHECK(utf8_hex("ed9fbf"));                     /* U+D7FF */
	CP_CHECK(utf8_hex("ee8080"));                     /* U+E000 */
	CP_CHECK(utf8_hex("f09f93b6"));                   /* U+1F4F6 */
	CP_CHECK(utf8_hex("f48fbfbf"));                   /* U+10FFFF */
	CP_CHECK(!utf8_hex(""));
	CP_CHECK(!utf8_hex("00"));
	CP_CHECK(!utf8_hex("410a"));
	CP_CHECK(!utf8_hex("1b5b326a"));                  /* ESC [2j */
	CP_CHECK(!utf8_hex("7f"));
	CP_CHECK(!utf8_hex("c285"));                      /* U+0085, C1 */
	CP_CHECK(!utf8_hex("c080"));                      /* overlong NUL */
	CP_CHECK(!utf8_hex("c1bf"));                      /* overlong */
	CP_CHECK(!utf8_hex("e08080"));
	CP_CHECK(!utf8_hex("e09fbf"));                    /* overlong U+07FF */
	CP_CHECK(!utf8_hex("f08fbfbf"));                  /* overlong U+FFFF */
	CP_CHECK(!utf8_hex("eda080"));                    /* U+D800 */
	CP_CHECK(!utf8_hex("edbfbf"));                    /* U+DFFF */
	CP_CHECK(!utf8_hex("f4908080"));                  /* U+110000 */
	CP_CHECK(!utf8_hex("f5808080"));
	CP_CHECK(!utf8_hex("ff"));
	CP_CHECK(!utf8_hex("80"));                        /* lone continuation */
	CP_CHECK(!utf8_hex("41e282"));                    /* cut sequence */
	CP_CHECK(!utf8_hex("e241ac"));                    /* not a continuation */
	CP_CHECK(!utf8_hex("f09f93"));
}

int
main(void)
{
	test_valid();
	test_extensions();
	test_truncated();
	test_after_last();
	test_order_duplicate();
	test_length_unknown_missing();
	test_put();
	test_values();
	return cp_test_done("test-tlv");
}
