/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NDEF messages, RTD URI records, the T4T capability container and the
 * tag content. */
#include <stdlib.h>
#include <string.h>

#include "cp-ndef.h"
#include "cp-test.h"

static CpError
parse_hex(const char *hex, CpNdefMessage *msg)
{
	static uint8_t buf[4096];
	size_t n = cp_test_unhex(hex, buf, sizeof buf);

	return cp_ndef_parse(buf, n, msg);
}

#define CHECK_PARSE(hex, want) do {                                       \
		CpNdefMessage _m;                                         \
		CP_CHECK_INT(parse_hex((hex), &_m), (want));              \
	} while (0)

static void
test_parse_records(void)
{
	CpNdefMessage m;

	/* The empty NDEF message: one Empty record. */
	CP_CHECK_INT(parse_hex("d00000", &m), CP_OK);
	CP_CHECK_INT(m.n_records, 1);
	CP_CHECK_INT(m.records[0].tnf, CP_TNF_EMPTY);

	/* Well-known "U", short, with an ID. */
	CP_CHECK_INT(parse_hex("d9010302" "55" "6964" "046162", &m), CP_OK);
	CP_CHECK_INT(m.n_records, 1);
	CP_CHECK_INT(m.records[0].tnf, CP_TNF_WELL_KNOWN);
	CP_CHECK_HEX(m.records[0].type, m.records[0].type_len, "55");
	CP_CHECK_HEX(m.records[0].id, m.records[0].id_len, "6964");
	CP_CHECK_HEX(m.records[0].payload, m.records[0].payload_len, "046162");

	/* IL with a zero-length ID. */
	CP_CHECK_INT(parse_hex("d901010055" "00", &m), CP_OK);
	CP_CHECK_INT(m.records[0].id_len, 0);
	CP_CHECK_INT(m.records[0].payload_len, 1);

	/* A long record holding a short payload is still valid NDEF. */
	CP_CHECK_INT(parse_hex("c2" "01" "00000002" "78" "abcd", &m), CP_OK);
	CP_CHECK_INT(m.records[0].tnf, CP_TNF_MIME);
	CP_CHECK_HEX(m.records[0].payload, m.records[0].payload_len, "abcd");

	/* Three records; Unknown without a type; an empty payload. */
	CP_CHECK_INT(parse_hex("910101" "55" "00" "150002" "1122" "520100" "78", &m), CP_OK);
	CP_CHECK_INT(m.n_records, 3);
	CP_CHECK_INT(m.records[1].tnf, CP_TNF_UNKNOWN);
	CP_CHECK_INT(m.records[1].type_len, 0);
	CP_CHECK_INT(m.records[2].payload_len, 0);
	CP_CHECK(m.records[2].payload == NULL);
}

static void
test_parse_errors(void)
{
	static uint8_t big[CP_T4T_NDEF_MAX + 1];
	CpNdefMessage m;
	char hex[64 * 9 + 1];

	CHECK_PARSE("", CP_ERR_NDEF_EMPTY);
	CP_CHECK_INT(cp_ndef_parse(big, sizeof big, &m), CP_ERR_NDEF_TOO_LARGE);

	/* MB/ME. */
	CHECK_PARSE("510101" "55" "00", CP_ERR_NDEF_HEADER);            /* no MB */
	CHECK_PARSE("910101" "55" "00" "d10101" "55" "00", CP_ERR_NDEF_HEADER);  /* MB twice */
	CHECK_PARSE("d10101" "55" "00" "510101" "55" "00", CP_ERR_NDEF_TRAILING); /* after ME */
	CHECK_PARSE("d10101" "55" "00" "00", CP_ERR_NDEF_TRAILING);
	CHECK_PARSE("910101" "55" "00", CP_ERR_NDEF_TRUNCATED);         /* no ME */
	CHECK_PARSE("910101" "55" "00" "110101" "55" "00", CP_ERR_NDEF_TRUNCATED);

	/* Chunks: first chunk (CF), and a middle chunk of Unchanged. */
	CHECK_PARSE("b20101" "78" "00" "560001" "00", CP_ERR_NDEF_CHUNKED);
	CHECK_PARSE("f20101" "78" "00", CP_ERR_NDEF_CHUNKED);
	/* Unchanged outside a chunk and the reserved TNF. */
	CHECK_PARSE("d60001" "00", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d70000", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d70101" "78" "00", CP_ERR_NDEF_HEADER);

	/* Empty must be empty, Unknown has no type, the others have one. */
	CHECK_PARSE("d00100" "78", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d00001" "00", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d8000001" "00", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d50101" "78" "00", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d10001" "00", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d20001" "00", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d30001" "00", CP_ERR_NDEF_HEADER);
	CHECK_PARSE("d40001" "00", CP_ERR_NDEF_HEADER);

	/* Truncation in every part of a record. */
	CHECK_PARSE("d1", CP_ERR_NDEF_TRUNCATED);
	CHECK_PARSE("d101", CP_ERR_NDEF_TRUNCATED);
	CHECK_PARSE("d90101", CP_ERR_NDEF_TRUNCATED);                   /* IL: no ID length */
	CHECK_PARSE("d9010101", CP_ERR_NDEF_TRUNCATED);                 /* no type */
	CHECK_PARSE("c1010000", CP_ERR_NDEF_TRUNCATED);                 /* long: cut length */
	CHECK_PARSE("d10201" "55", CP_ERR_NDEF_TRUNCATED);              /* type */
	CHECK_PARSE("d9010102" "55" "69", CP_ERR_NDEF_TRUNCATED);       /* ID */
	CHECK_PARSE("d10102" "55" "00", CP_ERR_NDEF_TRUNCATED);         /* payload */
	CHECK_PARSE("c101ffffffff" "55" "00", CP_ERR_NDEF_TRUNCATED);   /* huge payload */
	CHECK_PARSE("c9ff" "ffffffff" "ff", CP_ERR_NDEF_TRUNCATED);

	/* Eight records are fine, nine are too many (Unknown, empty). */
	strcpy(hex, "950000");
	for (int i = 1; i < 7; i++)
		strcat(hex, "150000");
	strcat(hex, "550000");
	CHECK_PARSE(hex, CP_OK);
	hex[strlen(hex) - 6] = '1';
	strcat(hex, "550000");
	CHECK_PARSE(hex, CP_ERR_NDEF_TOO_MANY);
}

static void
test_encode(void)
{
	static uint8_t payload[1000];
	cp_auto_buf b = CP_BUF_INIT;
	CpNdefMessage m, back;

	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)i;
	memset(&m, 0, sizeof m);
	cp_ndef_record_mime(&m.records[0], "application/x-a", payload, 3);
	cp_ndef_record_mime(&m.records[1], "application/x-b", payload, sizeof payload);
	m.records[1].id = (const uint8_t *)"id";
	m.records[1].id_len = 2;
	m.records[2].tnf = CP_TNF_EMPTY;
	m.n_records = 3;
	CP_CHECK_INT(cp_ndef_encode(&m, &b), CP_OK);
	/* MB + SR + MIME; a long record with IL; ME + SR + Empty. */
	CP_CHECK_INT(b.data[0], 0x92);
	CP_CHECK_INT(b.data[3 + 15 + 3], 0x0a);
	CP_CHECK_INT(b.data[b.len - 3], 0x50);
	CP_CHECK_INT(b.len, 3 + 15 + 3 + (1 + 1 + 4 + 1 + 15 + 2 + sizeof payload) + 3);

	CP_CHECK_INT(cp_ndef_parse(b.data, b.len, &back), CP_OK);
	CP_CHECK_INT(back.n_records, 3);
	CP_CHECK_INT(back.records[1].payload_len, sizeof payload);
	CP_CHECK(memcmp(back.records[1].payload, payload, sizeof payload) == 0);
	CP_CHECK_HEX(back.records[1].id, back.records[1].id_len, "6964");
	CP_CHECK(cp_ndef_find_mime(&back, "application/x-b") == &back.records[1]);
	CP_CHECK(cp_ndef_find_mime(&back, "Application/X-A") == &back.records[0]);
	CP_CHECK(cp_ndef_find_mime(&back, "application/x-") == NULL);
	CP_CHECK(cp_ndef_find_mime(&back, CP_MIME_PROFILE) == NULL);

	/* Invalid messages leave the buffer as it was. */
	size_t len = b.len;
	m.n_records = 0;
	CP_CHECK_INT(cp_ndef_encode(&m, &b), CP_ERR_NDEF_EMPTY);
	m.n_records = CP_NDEF_MAX_RECORDS + 1;
	CP_CHECK_INT(cp_ndef_encode(&m, &b), CP_ERR_NDEF_TOO_MANY);
	m.n_records = 3;
	m.records[2].tnf = 0x07;
	CP_CHECK_INT(cp_ndef_encode(&m, &b), CP_ERR_NDEF_HEADER);
	m.records[2].tnf = CP_TNF_UNCHANGED;
	CP_CHECK_INT(cp_ndef_encode(&m, &b), CP_ERR_NDEF_HEADER);
	m.records[2].tnf = CP_TNF_EMPTY;
	m.records[2].payload = payload;
	m.records[2].payload_len = 1;
	CP_CHECK_INT(cp_ndef_encode(&m, &b), CP_ERR_NDEF_HEADER);
	m.records[2].payload_len = 0;
	m.records[2].payload = NULL;
	for (int i = 3; i < CP_NDEF_MAX_RECORDS; i++)
		cp_ndef_record_mime(&m.records[i], "a/b", payload, sizeof payload);
	m.n_records = CP_NDEF_MAX_RECORDS;
	CP_CHECK_INT(cp_ndef_encode(&m, &b), CP_ERR_NDEF_TOO_LARGE);
	CP_CHECK_INT(b.len, len);
	CP_CHECK(!b.failed);
}

static void
test_uri(void)
{
	static const char *const prefixes[] = {
		"", "http://www.", "https://www.", "http://", "https://", "tel:",
		"mailto:", "ftp://anonymous:anonymous@", "ftp://ftp.", "ftps://",
		"sftp://", "smb://", "nfs://", "ftp://", "dav://", "news:",
		"telnet://", "imap:", "rtsp://", "urn:", "pop:", "sip:", "sips:",
		"tftp:", "btspp://", "btl2cap://", "btgoep://", "tcpobex://",
		"irdaobex://", "file://", "urn:epc:id:", "urn:epc:tag:",
		"urn:epc:pat:", "urn:epc:raw:", "urn:epc:", "urn:nfc:",
	};
	uint8_t p[64];
	char *uri = NULL;

	CP_CHECK_INT(sizeof prefixes / sizeof prefixes[0], 0x24);
	for (size_t code = 0; code < 0x24; code++) {
		cp_auto_buf b = CP_BUF_INIT;
		char want[64];

		p[0] = (uint8_t)code;
		memcpy(p + 1, "x1", 2);
		CP_CHECK_INT(cp_ndef_uri_decode(p, 3, &uri), CP_OK);
		snprintf(want, sizeof want, "%sx1", prefixes[code]);
		CP_CHECK(uri && strcmp(uri, want) == 0);
		free(uri);
		uri = NULL;

		/* Encoding picks that code back: no longer prefix matches. */
		CP_CHECK_INT(cp_ndef_uri_encode(want, &b), CP_OK);
		CP_CHECK_INT(b.len, 3);
		CP_CHECK_INT(b.data[0], code);
	}
	for (unsigned code = 0x24; code <= 0xff; code++) {
		p[0] = (uint8_t)code;
		CP_CHECK_INT(cp_ndef_uri_decode(p, 3, &uri), CP_ERR_NDEF_URI);
	}
	CP_CHECK(uri == NULL);

	{
		cp_auto_buf b = CP_BUF_INIT;

		CP_CHECK_INT(cp_ndef_uri_encode("https://certs.example.net/devices/0123", &b), CP_OK);
		CP_CHECK_INT(b.data[0], 0x04);
		CP_CHECK(b.len == 1 + strlen("certs.example.net/devices/0123"));
		CP_CHECK(memcmp(b.data + 1, "certs.example.net/devices/0123", b.len - 1) == 0);
	}
	{
		cp_auto_buf b = CP_BUF_INIT;

		CP_CHECK_INT(cp_ndef_uri_encode("https://www.example.net/", &b), CP_OK);
		CP_CHECK_INT(b.data[0], 0x02);
		CP_CHECK_INT(cp_ndef_uri_encode("urn:epc:idx", &b), CP_OK);
		CP_CHECK_INT(b.data[b.len - 4], 0x22);   /* "urn:epc:" + "idx" */
		CP_CHECK_INT(cp_ndef_uri_encode("HTTPS://x", &b), CP_OK);
		CP_CHECK_INT(b.data[b.len - 10], 0x00);  /* prefixes match exactly */
		size_t len = b.len;
		CP_CHECK_INT(cp_ndef_uri_encode("", &b), CP_ERR_NDEF_URI);
		CP_CHECK_INT(cp_ndef_uri_encode("https://a\nb", &b), CP_ERR_NDEF_URI);
		CP_CHECK_INT(cp_ndef_uri_encode("https://a\x7f", &b), CP_ERR_NDEF_URI);
		CP_CHECK_INT(cp_ndef_uri_encode("https://\xc3", &b), CP_ERR_NDEF_URI);
		CP_CHECK_INT(b.len, len);
	}
	/* A URI that is only a prefix: code 0 and the whole text, which
	 * decodes back (a bare code 0x04 would not). */
	for (size_t i = 0; i < 2; i++) {
		static const char *const bare[] = { "https://", "tel:" };
		cp_auto_buf b = CP_BUF_INIT;

		CP_CHECK_INT(cp_ndef_uri_encode(bare[i], &b), CP_OK);
		CP_CHECK(b.len == 1 + strlen(bare[i]) && b.data[0] == 0x00);
		CP_CHECK_INT(cp_ndef_uri_decode(b.data, b.len, &uri), CP_OK);
		CP_CHECK(uri && strcmp(uri, bare[i]) == 0);
		free(uri);
		uri = NULL;
	}
	{
		cp_auto_buf b = CP_BUF_INIT;

		/* "https://w" is not "https://www." but still "https://". */
		CP_CHECK_INT(cp_ndef_uri_encode("https://w", &b), CP_OK);
		CP_CHECK(b.len == 2 && b.data[0] == 0x04 && b.data[1] == 'w');
	}

	/* Text after the code: non-empty, no NUL or controls, UTF-8. */
	CP_CHECK_INT(cp_ndef_uri_decode((const uint8_t *)"\x04", 1, &uri), CP_ERR_NDEF_URI);
	CP_CHECK_INT(cp_ndef_uri_decode((const uint8_t *)"", 0, &uri), CP_ERR_NDEF_URI);
	CP_CHECK_INT(cp_ndef_uri_decode((const uint8_t *)"\x04" "a\0b", 4, &uri), CP_ERR_NDEF_URI);
	CP_CHECK_INT(cp_ndef_uri_decode((const uint8_t *)"\x04" "a\rb", 4, &uri), CP_ERR_NDEF_URI);
	CP_CHECK_INT(cp_ndef_uri_decode((const uint8_t *)"\x04" "a\xff", 3, &uri), CP_ERR_NDEF_URI);
	CP_CHECK(uri == NULL);
	CP_CHECK_INT(cp_ndef_uri_decode((const uint8_t *)"\x04" "\xc3\xa9t\xc3\xa9", 6, &uri), CP_OK);
	CP_CHECK(uri && strcmp(uri, "https://\xc3\xa9t\xc3\xa9") == 0);
	free(uri);
}

static void
test_cc(void)
{
	uint8_t cc_bytes[CP_T4T_CC_LEN + 4], bad[CP_T4T_CC_LEN];
	CpT4tCc cc, back;

	cp_t4t_cc_default(&cc);
	cp_t4t_cc_encode(&cc, cc_bytes);
	CP_CHECK_HEX(cc_bytes, CP_T4T_CC_LEN, "000f" "20" "00f6" "00f6" "0406" "e104" "1002" "00" "00");
	CP_CHECK_INT(cp_t4t_cc_decode(cc_bytes, CP_T4T_CC_LEN, &back), CP_OK);
	CP_CHECK(back.cc_len == cc.cc_len && back.version == cc.version &&
		 back.mle == cc.mle && back.mlc == cc.mlc &&
		 back.ndef_file_id == cc.ndef_file_id && back.ndef_file_max == cc.ndef_file_max &&
		 back.read_access == cc.read_access && back.write_access == cc.write_access);
	CP_CHECK_INT(back.ndef_file_max, 4098);
	CP_CHECK_INT(back.mle, 246);
	CP_CHECK_HEX(cp_t4t_aid, CP_T4T_AID_LEN, "d2760000850101");

	/* Further TLVs after the NDEF file control TLV are ignored. */
	memcpy(cc_bytes + CP_T4T_CC_LEN, "\x05\x02\xe1\x05", 4);
	cp_put_be16(cc_bytes, 19);
	CP_CHECK_INT(cp_t4t_cc_decode(cc_bytes, sizeof cc_bytes, &back), CP_OK);
	CP_CHECK_INT(back.cc_len, 19);
	cp_put_be16(cc_bytes, 15);

	/* Accepted variants: read-only, minor version 2.1, proprietary access. */
	struct { size_t off; uint8_t v; } ok[] = {
		{ 14, 0xff }, { 2, 0x21 }, { 13, 0x80 }, { 14, 0xfe },
		{ 4, 0x0f }, { 6, 0x01 }, { 12, 0x05 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		memcpy(bad, cc_bytes, sizeof bad);
		bad[ok[i].off] = ok[i].v;
		if (ok[i].off == 4 || ok[i].off == 6 || ok[i].off == 12)
			bad[ok[i].off - 1] = 0;
		CP_CHECK_INT(cp_t4t_cc_decode(bad, sizeof bad, &back), CP_OK);
	}

	/* Each field out of its range. */
	struct { size_t off; uint8_t hi, lo; } ko[] = {
		{ 0, 0x00, 0x0e },      /* CCLEN */
		{ 0, 0xff, 0xff },
		{ 2, 0x10, 0 },         /* version 1.0 */
		{ 2, 0x30, 0 },         /* version 3.0 */
		{ 3, 0x00, 0x0e },      /* MLe */
		{ 5, 0x00, 0x00 },      /* MLc */
		{ 7, 0x05, 0x06 },      /* TLV tag */
		{ 7, 0x04, 0x08 },      /* TLV length */
		{ 9, 0x00, 0x00 },      /* file id */
		{ 9, 0xe1, 0x02 },
		{ 9, 0xe1, 0x03 },
		{ 9, 0x3f, 0x00 },
		{ 9, 0x3f, 0xff },
		{ 9, 0xff, 0xff },
		{ 11, 0x00, 0x04 },     /* max size */
		{ 11, 0xff, 0xff },
		{ 13, 0x01, 0x00 },     /* read access RFU */
		{ 13, 0xff, 0x00 },
		{ 13, 0x00, 0x7f },     /* write access RFU */
	};
	for (size_t i = 0; i < sizeof ko / sizeof ko[0]; i++) {
		memcpy(bad, cc_bytes, sizeof bad);
		bad[ko[i].off] = ko[i].hi;
		if (ko[i].off != 2)
			bad[ko[i].off + 1] = ko[i].lo;
		memset(&back, 0xaa, sizeof back);
		CP_CHECK_INT(cp_t4t_cc_decode(bad, sizeof bad, &back), CP_ERR_T4T_CC);
		CP_CHECK_INT(back.cc_len, 0xaaaa);
	}
	CP_CHECK_INT(cp_t4t_cc_decode(cc_bytes, CP_T4T_CC_LEN - 1, &back), CP_ERR_T4T_CC);
	CP_CHECK_INT(cp_t4t_cc_decode(cc_bytes, 0, &back), CP_ERR_T4T_CC);
}

static void
test_tag_build(void)
{
	static const uint8_t dr[] = { 0x01, 0x00, 0x01, 0x01 };
	static const uint8_t rc[] = { 0x01, 0x00, 0x01, 0x01, 0x02 };
	static uint8_t huge[CP_T4T_NDEF_MAX];
	const char *url = "https://certs.example.net/devices/00112233445566778899aabbccddeeff";
	cp_auto_buf b = CP_BUF_INIT;
	const CpNdefRecord *r;
	CpNdefMessage m;
	char *uri = NULL;

	CP_CHECK_INT(cp_tag_build(url, dr, sizeof dr, NULL, 0, &b), CP_OK);
	CP_CHECK_INT(cp_ndef_parse(b.data, b.len, &m), CP_OK);
	CP_CHECK_INT(m.n_records, 2);
	CP_CHECK_INT(b.data[0], 0x91);          /* MB SR well-known */
	CP_CHECK_INT(m.records[0].payload[0], 0x04);
	CP_CHECK_INT(cp_ndef_find_uri(&m, &uri), CP_OK);
	CP_CHECK(uri && strcmp(uri, url) == 0);
	free(uri);
	r = cp_ndef_find_mime(&m, CP_MIME_DEVICE);
	CP_CHECK(r == &m.records[1]);
	CP_CHECK(r && r->payload_len == sizeof dr && memcmp(r->payload, dr, sizeof dr) == 0);
	CP_CHECK(cp_ndef_find_mime(&m, CP_MIME_RECEIPT) == NULL);

	cp_buf_clear(&b);
	CP_CHECK_INT(cp_tag_build(url, dr, sizeof dr, rc, sizeof rc, &b), CP_OK);
	CP_CHECK_INT(cp_ndef_parse(b.data, b.len, &m), CP_OK);
	CP_CHECK_INT(m.n_records, 3);
	r = cp_ndef_find_mime(&m, CP_MIME_RECEIPT);
	CP_CHECK(r == &m.records[2]);
	CP_CHECK(r && r->payload_len == sizeof rc && memcmp(r->payload, rc, sizeof rc) == 0);

	size_t len = b.len;
	CP_CHECK_INT(cp_tag_build(url, huge, sizeof huge, NULL, 0, &b), CP_ERR_NDEF_TOO_LARGE);
	CP_CHECK_INT(cp_tag_build("https://a\tb", dr, sizeof dr, NULL, 0, &b), CP_ERR_NDEF_URI);
	CP_CHECK_INT(cp_tag_build(url, dr, 0, NULL, 0, &b), CP_ERR_ARGUMENT);
	CP_CHECK_INT(b.len, len);

	/* No URI record. */
	CP_CHECK_INT(parse_hex("d20101" "78" "00", &m), CP_OK);
	CP_CHECK_INT(cp_ndef_find_uri(&m, &uri), CP_ERR_NDEF_NO_RECORD);
	/* A "U" record with a reserved code. */
	CP_CHECK_INT(parse_hex("d10102" "55" "2461", &m), CP_OK);
	CP_CHECK_INT(cp_ndef_find_uri(&m, &uri), CP_ERR_NDEF_URI);
}

int
main(void)
{
	test_parse_records();
	test_parse_errors();
	test_encode();
	test_uri();
	test_cc();
	test_tag_build();
	return cp_test_done("test-ndef");
}
