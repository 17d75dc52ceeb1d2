/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "cp-buf.h"
#include "cp-test.h"

static void
test_append(void)
{
	cp_auto_buf b = CP_BUF_INIT;
	uint8_t big[1000];

	cp_buf_append_u8(&b, 0x01);
	cp_buf_append_be16(&b, 0x0203);
	cp_buf_append_be64(&b, 0x0405060708090a0bULL);
	cp_buf_append(&b, "\x0c", 1);
	cp_buf_append(&b, NULL, 0);
	CP_CHECK(!b.failed);
	CP_CHECK_HEX(b.data, b.len, "0102030405060708090a0b0c");

	/* Growth across several reallocations keeps the earlier bytes. */
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		cp_buf_append(&b, big, sizeof big);
	CP_CHECK_INT(b.len, 12 + 10 * sizeof big);
	CP_CHECK(memcmp(b.data + 12 + 9 * sizeof big, big, sizeof big) == 0);
	CP_CHECK_HEX(b.data, 4, "01020304");
}

static void
test_failed(void)
{
	CpBuf b = CP_BUF_INIT;
	size_t len = 99;

	cp_buf_append_u8(&b, 1);
	/* An impossible size marks the buffer failed; later appends are no-ops. */
	CP_CHECK(!cp_buf_reserve(&b, SIZE_MAX));
	CP_CHECK(b.failed);
	cp_buf_append_u8(&b, 2);
	CP_CHECK_INT(b.len, 1);
	CP_CHECK(cp_buf_steal(&b, &len) == NULL);
	CP_CHECK_INT(len, 0);
	CP_CHECK(b.data == NULL && !b.failed);
}

static void
test_steal(void)
{
	CpBuf b = CP_BUF_INIT;
	uint8_t *p;
	size_t len;

	p = cp_buf_steal(&b, &len);
	CP_CHECK(p != NULL);
	CP_CHECK_INT(len, 0);
	free(p);

	cp_buf_append(&b, "abc", 3);
	p = cp_buf_steal(&b, &len);
	CP_CHECK_INT(len, 3);
	CP_CHECK(p && memcmp(p, "abc", 3) == 0);
	CP_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
	free(p);
}

static void
test_hex(void)
{
	const uint8_t in[] = { 0x00, 0x7f, 0x80, 0xff, 0xa5 };
	uint8_t out[8];
	char s[11];
	char *d;

	cp_hex_encode(in, sizeof in, s);
	CP_CHECK(strcmp(s, "007f80ffa5") == 0);
	d = cp_hex_strdup(in, sizeof in);
	CP_CHECK(d && strcmp(d, "007f80ffa5") == 0);
	free(d);
	cp_hex_encode(in, 0, s);
	CP_CHECK(s[0] == '\0');

	CP_CHECK_INT(cp_hex_decode("007F80ffA5", out, sizeof out), 5);
	CP_CHECK_HEX(out, 5, "007f80ffa5");
	CP_CHECK_INT(cp_hex_decode("", out, sizeof out), 0);

	/* Bad input leaves out untouched. */
	memset(out, 0xee, sizeof out);
	CP_CHECK_INT(cp_hex_decode("abc", out, sizeof out), -1);
	CP_CHECK_INT(cp_hex_decode("0g", out, sizeof out), -1);
	CP_CHECK_INT(cp_hex_decode("00 11", out, sizeof out), -1);
	CP_CHECK_INT(cp_hex_decode("0x00", out, sizeof out), -1);
	CP_CHECK_INT(cp_hex_decode("001122334455667788", out, sizeof out), -1);
	CP_CHECK_INT(cp_hex_decode("0011", out, 1), -1);
	CP_CHECK_INT(cp_hex_decode(NULL, out, sizeof out), -1);
	CP_CHECK_HEX(out, sizeof out, "eeeeeeeeeeeeeeee");
}

static void
test_endian(void)
{
	uint8_t p[8];

	cp_put_be16(p, 0xbeef);
	CP_CHECK_HEX(p, 2, "beef");
	CP_CHECK_INT(cp_be16(p), 0xbeef);
	cp_put_be64(p, 0x8000000000000001ULL);
	CP_CHECK_HEX(p, 8, "8000000000000001");
	CP_CHECK(cp_be64(p) == 0x8000000000000001ULL);
	cp_put_be64(p, UINT64_MAX);
	CP_CHECK(cp_be64(p) == UINT64_MAX);
}

int
main(void)
{
	test_append();
	test_failed();
	test_steal();
	test_hex();
	test_endian();
	return cp_test_done("test-buf");
}
