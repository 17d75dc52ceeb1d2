/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The T4T command set (cp-t4t-tag.c) without libnfc: APDU in, APDU out,
 * every status word, and the write procedure's rules.
 */
#include <string.h>
#include <glib.h>

#include "cp-buf.h"
#include "cp-t4t-tag.h"

static CpT4tTag tag;
static guint8 rapdu[CP_T4T_RAPDU_MAX];
static size_t rlen;

/* Send hex; return SW; the event and error land in the pointers. */
static guint16 apdu_ev(const char *hex, CpT4tEvent *ev, CpError *err)
{
	guint8 c[CP_T4T_CAPDU_MAX];
	long n = cp_hex_decode(hex, c, sizeof(c));
	CpT4tEvent e;
	CpError x = CP_OK;

	g_assert_cmpint(n, >=, 0);
	e = cp_t4t_tag_process(&tag, c, (size_t)n, rapdu, &rlen, &x);
	g_assert_cmpuint(rlen, >=, 2);
	if (ev)
		*ev = e;
	if (err)
		*err = x;
	return cp_t4t_sw(rapdu, rlen);
}

static guint16 apdu(const char *hex)
{
	return apdu_ev(hex, NULL, NULL);
}

static void select_ndef(void)
{
	g_assert_cmphex(apdu("00A4040007D276000085010100"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00A4000C02E104"), ==, CP_SW_OK);
}

/* UPDATE BINARY of n bytes of data at off. */
static guint16 update(guint off, const guint8 *d, gsize n, CpT4tEvent *ev, CpError *err)
{
	guint8 c[5 + 255];
	CpT4tEvent e;
	CpError x = CP_OK;

	c[0] = 0x00;
	c[1] = 0xD6;
	c[2] = off >> 8;
	c[3] = off & 0xFF;
	c[4] = n;
	memcpy(c + 5, d, n);
	e = cp_t4t_tag_process(&tag, c, 5 + n, rapdu, &rlen, &x);
	if (ev)
		*ev = e;
	if (err)
		*err = x;
	return cp_t4t_sw(rapdu, rlen);
}

static const guint8 msg_ok[] = { 0xD1, 0x01, 0x04, 'T', 0x02, 'e', 'n', 'A' };

static void test_select(void)
{
	cp_t4t_tag_init(&tag);
	/* Files before the application: not found. */
	g_assert_cmphex(apdu("00A4000C02E103"), ==, CP_SW_NOT_FOUND);
	g_assert_cmphex(apdu("00B000000F"), ==, CP_SW_NO_EF);
	/* Another AID; wrong P2s; an AID with Lc lying about its length. */
	g_assert_cmphex(apdu("00A4040007D276000085010200"), ==, CP_SW_NOT_FOUND);
	g_assert_cmphex(apdu("00A4040207D276000085010100"), ==, CP_SW_WRONG_P1P2);
	g_assert_cmphex(apdu("00A4000402E103"), ==, CP_SW_WRONG_P1P2);
	g_assert_cmphex(apdu("00A4040009D276000085010100"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00A4020C02E103"), ==, CP_SW_WRONG_P1P2);
	/* Without Le, and with. */
	g_assert_cmphex(apdu("00A4040007D2760000850101"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00A4000C02E105"), ==, CP_SW_NOT_FOUND);
	g_assert_cmphex(apdu("00A4000C03E10300"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00A4000C01E1"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00A4000C02E103"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00B000000F"), ==, CP_SW_OK);
	g_assert_cmpuint(rlen, ==, 17);
	g_assert_cmpmem(rapdu, 15, "\x00\x0f\x20\x00\xf6\x00\xf6\x04\x06\xe1\x04\x10\x02\x00\x00", 15);
	/* Selecting another application drops the file selection. */
	g_assert_cmphex(apdu("00A4040007A000000003101000"), ==, CP_SW_NOT_FOUND);
	g_assert_cmphex(apdu("00B000000F"), ==, CP_SW_NO_EF);
	/* P2 00 (T4T 1.0, ISO 7816-4 "return FCI") as 0C: 9000, no data,
	 * with or without Le; by name as by file id. */
	g_assert_cmphex(apdu("00A4040007D276000085010100"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00A4000002E104"), ==, CP_SW_OK);
	g_assert_cmpuint(rlen, ==, 2);
	g_assert_cmphex(apdu("00B0000002"), ==, CP_SW_OK);
	g_assert_cmpmem(rapdu, 2, "\x00\x00", 2);
	g_assert_cmphex(apdu("00A4000002E10300"), ==, CP_SW_OK);
	g_assert_cmpuint(rlen, ==, 2);
	g_assert_cmphex(apdu("00B000000F"), ==, CP_SW_OK);
	g_assert_cmpuint(rlen, ==, 17);
	g_assert_cmphex(apdu("00A4000C02E10400"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00B0000002"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00A4040C07D2760000850101"), ==, CP_SW_OK);
	g_assert_cmpuint(rlen, ==, 2);
	g_assert_cmphex(apdu("00B0000002"), ==, CP_SW_NO_EF);
	g_assert_cmphex(apdu("00A4000002E105"), ==, CP_SW_NOT_FOUND);
	/* Class and instruction. */
	g_assert_cmphex(apdu("80A4040007D276000085010100"), ==, CP_SW_CLA);
	g_assert_cmphex(apdu("00CA000000"), ==, CP_SW_INS);
	g_assert_cmphex(apdu("00A4"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00A40400"), ==, CP_SW_WRONG_LENGTH);
}

static void test_read(void)
{
	cp_t4t_tag_init(&tag);
	g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
	select_ndef();
	g_assert_cmphex(apdu("00B0000002"), ==, CP_SW_OK);
	g_assert_cmpmem(rapdu, 2, "\x00\x08", 2);
	g_assert_cmphex(apdu("00B0000208"), ==, CP_SW_OK);
	g_assert_cmpmem(rapdu, 8, msg_ok, 8);
	/* Le above MLe, an Lc on READ, an SFI offset. */
	g_assert_cmphex(apdu("00B00000F7"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00B00000FF"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00B0000001AA"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00B0000000" "00"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00B0810002"), ==, CP_SW_WRONG_OFFSET);
	/* Past the end: the file is 4098 bytes (0x1002). */
	g_assert_cmphex(apdu("00B0100210"), ==, CP_SW_WRONG_OFFSET);
	g_assert_cmphex(apdu("00B01000F6"), ==, CP_SW_EOF);
	g_assert_cmpuint(rlen, ==, 4);
	g_assert_cmphex(apdu("00B0100102"), ==, CP_SW_EOF);
	g_assert_cmpuint(rlen, ==, 3);
	/* Le 00 (Ne 256, a maximum): up to MLe bytes, 6282 once the end
	 * of the file comes first. */
	g_assert_cmphex(apdu("00B0000000"), ==, CP_SW_OK);
	g_assert_cmpuint(rlen, ==, CP_T4T_MLE + 2);
	g_assert_cmpmem(rapdu, 10, "\x00\x08" "\xD1\x01\x04T\x02" "enA", 10);
	g_assert_cmphex(apdu("00B00F0C00"), ==, CP_SW_EOF);
	g_assert_cmpuint(rlen, ==, CP_T4T_MLE + 2);
	g_assert_cmphex(apdu("00B00F0B00"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00B0100000"), ==, CP_SW_EOF);
	g_assert_cmpuint(rlen, ==, 4);
	g_assert_cmphex(apdu("00B0100200"), ==, CP_SW_WRONG_OFFSET);
	/* Oversized content: an empty tag instead. */
	{
		g_autofree guint8 *big = g_malloc0(CP_T4T_NDEF_MAX + 1);
		size_t n;

		g_assert_cmpint(cp_t4t_tag_load(&tag, big, CP_T4T_NDEF_MAX + 1), ==, CP_ERR_NDEF_TOO_LARGE);
		cp_t4t_tag_message(&tag, &n);
		g_assert_cmpuint(n, ==, 0);
		g_assert_cmpint(cp_t4t_tag_load(&tag, big, CP_T4T_NDEF_MAX), ==, CP_OK);
	}
}

static void test_write(void)
{
	static const guint8 zero[2] = { 0, 0 }, nlen[2] = { 0, sizeof(msg_ok) };
	CpT4tEvent ev;
	CpError err;
	const guint8 *m;
	size_t n;

	cp_t4t_tag_init(&tag);
	g_assert_cmpint(cp_t4t_tag_load(&tag, (const guint8 *)"\xD1\x01\x01T\x00", 5), ==, CP_OK);
	select_ndef();
	g_assert_cmphex(update(0, zero, 2, &ev, NULL), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITE_STARTED);
	g_assert_true(cp_t4t_tag_write_pending(&tag));
	g_assert_cmphex(update(2, msg_ok, 4, &ev, NULL), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_NONE);
	g_assert_cmphex(update(6, msg_ok + 4, 4, &ev, NULL), ==, CP_SW_OK);
	g_assert_cmphex(update(0, nlen, 2, &ev, &err), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITTEN);
	g_assert_cmpint(err, ==, CP_OK);
	g_assert_false(cp_t4t_tag_write_pending(&tag));
	m = cp_t4t_tag_message(&tag, &n);
	g_assert_cmpmem(m, n, msg_ok, sizeof(msg_ok));

	/* Bad UPDATEs: offset beyond, SFI, no data, Le present, too long. */
	g_assert_cmphex(apdu("00D6100201AA"), ==, CP_SW_WRONG_OFFSET);
	g_assert_cmphex(apdu("00D6800001AA"), ==, CP_SW_WRONG_OFFSET);
	g_assert_cmphex(apdu("00D60002"), ==, CP_SW_WRONG_LENGTH);
	g_assert_cmphex(apdu("00D6000201AA00"), ==, CP_SW_WRONG_LENGTH);
	/* The CC is read-only. */
	g_assert_cmphex(apdu("00A4000C02E103"), ==, CP_SW_OK);
	g_assert_cmphex(apdu("00D6000001AA"), ==, CP_SW_SECURITY);
	m = cp_t4t_tag_message(&tag, &n);
	g_assert_cmpmem(m, n, msg_ok, sizeof(msg_ok));
}

static void test_write_rejected(void)
{
	static const guint8 zero[2] = { 0, 0 };
	static const guint8 bad[] = { 0x91, 0x01, 0x01, 'T', 0x00 };   /* MB without ME */
	guint8 chunk[CP_T4T_MLC];
	guint8 nlen[2];
	CpT4tEvent ev;
	CpError err;
	const guint8 *m;
	size_t n;

	memset(chunk, 0x41, sizeof(chunk));
	cp_t4t_tag_init(&tag);
	g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
	select_ndef();

	/* Malformed: refused at the final NLEN, content restored. */
	g_assert_cmphex(update(0, zero, 2, NULL, NULL), ==, CP_SW_OK);
	g_assert_cmphex(update(2, bad, sizeof(bad), NULL, NULL), ==, CP_SW_OK);
	nlen[0] = 0;
	nlen[1] = sizeof(bad);
	g_assert_cmphex(update(0, nlen, 2, &ev, &err), ==, CP_SW_WRONG_DATA);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_REJECTED);
	g_assert_cmphex(err >> 8, ==, 0x03);
	m = cp_t4t_tag_message(&tag, &n);
	g_assert_cmpmem(m, n, msg_ok, sizeof(msg_ok));
	g_assert_false(cp_t4t_tag_write_pending(&tag));

	/* NLEN beyond the file. */
	nlen[0] = 0x10;
	nlen[1] = 0x01;
	g_assert_cmphex(update(0, nlen, 2, &ev, &err), ==, CP_SW_WRONG_DATA);
	g_assert_cmpint(err, ==, CP_ERR_NDEF_TOO_LARGE);
	m = cp_t4t_tag_message(&tag, &n);
	g_assert_cmpmem(m, n, msg_ok, sizeof(msg_ok));

	/* Chunks running past the end of the file. */
	g_assert_cmphex(update(0, zero, 2, NULL, NULL), ==, CP_SW_OK);
	for (guint off = 2; off + sizeof(chunk) <= CP_T4T_FILE_MAX; off += sizeof(chunk))
		g_assert_cmphex(update(off, chunk, sizeof(chunk), NULL, NULL), ==, CP_SW_OK);
	g_assert_cmphex(update(2 + 16 * sizeof(chunk), chunk, sizeof(chunk), &ev, &err), ==, CP_SW_NO_SPACE);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_REJECTED);
	g_assert_cmpint(err, ==, CP_ERR_NDEF_TOO_LARGE);
	m = cp_t4t_tag_message(&tag, &n);
	g_assert_cmpmem(m, n, msg_ok, sizeof(msg_ok));

	/* A write left pending is visible as such; a new session clears it. */
	g_assert_cmphex(update(0, zero, 2, NULL, NULL), ==, CP_SW_OK);
	g_assert_true(cp_t4t_tag_write_pending(&tag));
	g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
	g_assert_false(cp_t4t_tag_write_pending(&tag));
	g_assert_cmphex(apdu("00B0000002"), ==, CP_SW_NO_EF);
}

static void test_single_update(void)
{
	guint8 all[2 + sizeof(msg_ok)] = { 0x00, sizeof(msg_ok) };
	CpT4tEvent ev;

	/* NLEN and message in one UPDATE also counts as the final NLEN. */
	memcpy(all + 2, msg_ok, sizeof(msg_ok));
	cp_t4t_tag_init(&tag);
	select_ndef();
	g_assert_cmphex(update(0, all, sizeof(all), &ev, NULL), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITTEN);
	g_assert_cmpuint(tag.apdus, ==, 3);
}

/*
 * NLEN = 0 in the same UPDATE as the message's first bytes (the reader's
 * shortest write): the write starts, the chunks deliver nothing, only the
 * final NLEN delivers the message; a session that ends before it
 * leaves the write pending, and the tag presents what it had.
 */
static void test_merged_first_chunk(void)
{
	guint8 first[2 + 4] = { 0x00, 0x00 };
	const guint8 *m;
	size_t mlen;
	CpT4tEvent ev;
	CpError err;
	const guint8 nlen[2] = { 0x00, sizeof(msg_ok) };

	memcpy(first + 2, msg_ok, 4);
	for (int finish = 0; finish < 2; finish++) {
		cp_t4t_tag_init(&tag);
		g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
		select_ndef();
		g_assert_cmphex(update(0, first, sizeof(first), &ev, &err), ==, CP_SW_OK);
		g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITE_STARTED);
		g_assert_true(cp_t4t_tag_write_pending(&tag));
		g_assert_cmphex(update(6, msg_ok + 4, sizeof(msg_ok) - 4, &ev, &err), ==, CP_SW_OK);
		g_assert_cmpint(ev, ==, CP_T4T_EVENT_NONE);
		g_assert_true(cp_t4t_tag_write_pending(&tag));
		if (!finish) {
			/* The phone leaves: a new session drops the partial write. */
			g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
			g_assert_false(cp_t4t_tag_write_pending(&tag));
			continue;
		}
		g_assert_cmphex(update(0, nlen, 2, &ev, &err), ==, CP_SW_OK);
		g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITTEN);
		g_assert_false(cp_t4t_tag_write_pending(&tag));
		m = cp_t4t_tag_message(&tag, &mlen);
		g_assert_cmpmem(m, mlen, msg_ok, sizeof(msg_ok));
	}
}

/*
 * NLEN one byte at a time: the high byte alone ends nothing; data written
 * without the NLEN = 0 step is presented for that session only.
 */
static void test_nlen_bytes(void)
{
	static const guint8 hi = 0x00, lo0 = 0x00, lo = sizeof(msg_ok);
	static const guint8 other[] = { 0xD1, 0x01, 0x04, 'T', 0x02, 'd', 'e', 'B' };
	const guint8 *m;
	size_t mlen;
	CpT4tEvent ev;
	CpError err;

	cp_t4t_tag_init(&tag);
	g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
	select_ndef();
	/* NLEN 00 08 -> high byte 00 written: still 00 08, nothing happens. */
	g_assert_cmphex(update(0, &hi, 1, &ev, &err), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_NONE);
	g_assert_false(cp_t4t_tag_write_pending(&tag));
	/* The low byte 00 makes NLEN 0: a write starts. */
	g_assert_cmphex(update(1, &lo0, 1, &ev, &err), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITE_STARTED);
	g_assert_cmphex(update(2, msg_ok, sizeof(msg_ok), &ev, &err), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_NONE);
	g_assert_cmphex(update(0, &hi, 1, &ev, &err), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITE_STARTED);   /* 00 00 again */
	g_assert_cmphex(update(1, &lo, 1, &ev, &err), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_WRITTEN);
	g_assert_cmpuint(tag.written_len, ==, sizeof(msg_ok));

	/* Data without NLEN = 0: no event, shown in this session only. */
	g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
	select_ndef();
	g_assert_cmphex(update(2, other, sizeof(other), &ev, &err), ==, CP_SW_OK);
	g_assert_cmpint(ev, ==, CP_T4T_EVENT_NONE);
	g_assert_false(cp_t4t_tag_write_pending(&tag));
	m = cp_t4t_tag_message(&tag, &mlen);
	g_assert_cmpmem(m, mlen, other, sizeof(other));
	g_assert_cmpint(cp_t4t_tag_load(&tag, msg_ok, sizeof(msg_ok)), ==, CP_OK);
	m = cp_t4t_tag_message(&tag, &mlen);
	g_assert_cmpmem(m, mlen, msg_ok, sizeof(msg_ok));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/nfc/t4t/select", test_select);
	g_test_add_func("/nfc/t4t/read", test_read);
	g_test_add_func("/nfc/t4t/write", test_write);
	g_test_add_func("/nfc/t4t/write-rejected", test_write_rejected);
	g_test_add_func("/nfc/t4t/single-update", test_single_update);
	g_test_add_func("/nfc/t4t/merged-first-chunk", test_merged_first_chunk);
	g_test_add_func("/nfc/t4t/nlen-bytes", test_nlen_bytes);
	return g_test_run();
}
