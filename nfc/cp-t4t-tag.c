/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-t4t-tag.h"

#include <string.h>

#define INS_SELECT 0xA4
#define INS_READ_BINARY 0xB0
#define INS_UPDATE_BINARY 0xD6

static void load_file(CpT4tTag *t, const uint8_t *ndef, size_t len)
{
	memset(t->file, 0, sizeof(t->file));
	t->file[0] = len >> 8;
	t->file[1] = len & 0xFF;
	if (len)
		memcpy(t->file + 2, ndef, len);
	memcpy(t->loaded, t->file, sizeof(t->loaded));
}

void cp_t4t_tag_init(CpT4tTag *t)
{
	CpT4tCc cc;

	memset(t, 0, sizeof(*t));
	cp_t4t_cc_default(&cc);
	cp_t4t_cc_encode(&cc, t->cc);
	t->file_size = cc.ndef_file_max;
	load_file(t, NULL, 0);
}

CpError cp_t4t_tag_load(CpT4tTag *t, const uint8_t *ndef, size_t len)
{
	CpError err = CP_OK;

	if (len > t->file_size - 2) {
		len = 0;
		err = CP_ERR_NDEF_TOO_LARGE;
	}
	load_file(t, ndef, len);
	t->selected = CP_T4T_SEL_NONE;
	t->writing = false;
	t->written_len = 0;
	t->apdus = 0;
	t->bytes_in = 0;
	t->bytes_out = 0;
	return err;
}

bool cp_t4t_tag_write_pending(const CpT4tTag *t)
{
	return t->writing;
}

const uint8_t *cp_t4t_tag_message(const CpT4tTag *t, size_t *len)
{
	*len = ((size_t)t->file[0] << 8) | t->file[1];
	return t->file + 2;
}

uint16_t cp_t4t_sw(const uint8_t *rapdu, size_t rlen)
{
	if (rlen < 2)
		return 0;
	return (uint16_t)((rapdu[rlen - 2] << 8) | rapdu[rlen - 1]);
}

static void sw(uint8_t *rapdu, size_t *rlen, size_t data_len, uint16_t word)
{
	rapdu[data_len] = word >> 8;
	rapdu[data_len + 1] = word & 0xFF;
	*rlen = data_len + 2;
}

/*
 * Short APDU cases (ISO 7816-4 5.1): header only; header + Le; header +
 * Lc + data; header + Lc + data + Le. Extended length is not offered (the
 * CC's MLe/MLc fit in one byte). Returns false when the body does not
 * match any case.
 */
typedef struct {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data;
	size_t lc;
	bool has_le;
	size_t le;                     /* Ne: 0x00 means 256 */
} Apdu;

static bool apdu_parse(const uint8_t *c, size_t len, Apdu *a)
{
	memset(a, 0, sizeof(*a));
	if (len < 4)
		return false;
	a->cla = c[0];
	a->ins = c[1];
	a->p1 = c[2];
	a->p2 = c[3];
	if (len == 4)
		return true;
	if (len == 5) {
		a->has_le = true;
		a->le = c[4] ? c[4] : 256;
		return true;
	}
	if (c[4] == 0)
		return false;           /* extended length */
	a->lc = c[4];
	a->data = c + 5;
	if (len == 5 + a->lc)
		return true;
	if (len == 6 + a->lc) {
		a->has_le = true;
		a->le = c[len - 1] ? c[len - 1] : 256;
		return true;
	}
	return false;
}

/*
 * SELECT. By DF name (P1 04) the NDEF tag application, first or only
 * occurrence: P2 00 (return FCI) and 0C (no response data) both answer
 * 9000 without data, as T4T 1.0 readers send P2 00 and T4T 2.0 readers
 * 0C. By file identifier (P1 00) likewise: T4T 1.0's SELECT is P2 00 with
 * no data in the answer, T4T 2.0's is P2 0C; libnfc's
 * nfc-emulate-forum-tag4 (utils/nfc-emulate-forum-tag4.c, lines 156-158)
 * takes both the same way. A Le (asking for the FCI) is accepted; no FCI
 * is returned, which ISO 7816-4 allows (Ne is a maximum).
 */
static uint16_t do_select(CpT4tTag *t, const Apdu *a)
{
	if (a->p2 != 0x00 && a->p2 != 0x0C)
		return CP_SW_WRONG_P1P2;
	if (a->p1 == 0x04) {
		if (a->lc == 0)
			return CP_SW_WRONG_LENGTH;
		if (a->lc != CP_T4T_AID_LEN || memcmp(a->data, cp_t4t_aid, CP_T4T_AID_LEN) != 0) {
			/* Another application: whatever was selected is gone. */
			t->selected = CP_T4T_SEL_NONE;
			return CP_SW_NOT_FOUND;
		}
		t->selected = CP_T4T_SEL_APP;
		return CP_SW_OK;
	}
	if (a->p1 == 0x00) {
		uint16_t fid;

		if (a->lc != 2)
			return CP_SW_WRONG_LENGTH;
		if (t->selected == CP_T4T_SEL_NONE)
			return CP_SW_NOT_FOUND;
		fid = (uint16_t)((a->data[0] << 8) | a->data[1]);
		if (fid == CP_T4T_CC_FILE) {
			t->selected = CP_T4T_SEL_CC;
			return CP_SW_OK;
		}
		if (fid == CP_T4T_NDEF_FILE) {
			t->selected = CP_T4T_SEL_NDEF;
			return CP_SW_OK;
		}
		return CP_SW_NOT_FOUND;
	}
	return CP_SW_WRONG_P1P2;
}

static uint16_t do_read(CpT4tTag *t, const Apdu *a, uint8_t *rapdu, size_t *n)
{
	const uint8_t *src;
	size_t size, off, le;

	*n = 0;
	if (t->selected == CP_T4T_SEL_CC) {
		src = t->cc;
		size = CP_T4T_CC_LEN;
	} else if (t->selected == CP_T4T_SEL_NDEF) {
		src = t->file;
		size = t->file_size;
	} else {
		return CP_SW_NO_EF;
	}
	if (a->lc || !a->has_le)
		return CP_SW_WRONG_LENGTH;
	/* Bit 8 of P1 set would name a short EF identifier: not offered. */
	if (a->p1 & 0x80)
		return CP_SW_WRONG_OFFSET;
	off = ((size_t)a->p1 << 8) | a->p2;
	le = a->le;
	/* Le 00 (Ne 256) is the short APDU's "as much as there is": Ne is a
	 * maximum (ISO 7816-4 5.1), so the tag answers up to MLe bytes. An
	 * explicit Le above MLe breaks the CC's limit. */
	if (le == 256)
		le = CP_T4T_MLE;
	else if (le > CP_T4T_MLE)
		return CP_SW_WRONG_LENGTH;
	if (off >= size)
		return CP_SW_WRONG_OFFSET;
	if (off + le > size || (a->le == 256 && off + le == size)) {
		*n = size - off;
		memcpy(rapdu, src + off, *n);
		return CP_SW_EOF;
	}
	memcpy(rapdu, src + off, le);
	*n = le;
	return CP_SW_OK;
}

static void restore(CpT4tTag *t)
{
	memcpy(t->file, t->loaded, sizeof(t->file));
	t->writing = false;
}

static uint16_t do_update(CpT4tTag *t, const Apdu *a, CpT4tEvent *ev, CpError *error)
{
	size_t off, nlen;
	CpNdefMessage msg;
	CpError err;

	if (t->selected == CP_T4T_SEL_CC)
		return CP_SW_SECURITY;
	if (t->selected != CP_T4T_SEL_NDEF)
		return CP_SW_NO_EF;
	if (a->lc == 0 || a->has_le || a->lc > CP_T4T_MLC)
		return CP_SW_WRONG_LENGTH;
	if (a->p1 & 0x80)
		return CP_SW_WRONG_OFFSET;
	off = ((size_t)a->p1 << 8) | a->p2;
	if (off >= t->file_size)
		return CP_SW_WRONG_OFFSET;
	if (off + a->lc > t->file_size) {
		/* The message would not fit: refuse, and drop the partial
		 * write so the tag goes back to what it presented. */
		restore(t);
		*ev = CP_T4T_EVENT_REJECTED;
		*error = CP_ERR_NDEF_TOO_LARGE;
		return CP_SW_NO_SPACE;
	}
	memcpy(t->file + off, a->data, a->lc);
	if (off >= 2)
		return CP_SW_OK;

	/* The update touched NLEN. */
	nlen = ((size_t)t->file[0] << 8) | t->file[1];
	if (nlen == 0) {
		t->writing = true;
		*ev = CP_T4T_EVENT_WRITE_STARTED;
		return CP_SW_OK;
	}
	if (off + a->lc < 2)
		return CP_SW_OK;        /* only NLEN's high byte so far */
	if (nlen > t->file_size - 2) {
		restore(t);
		*ev = CP_T4T_EVENT_REJECTED;
		*error = CP_ERR_NDEF_TOO_LARGE;
		return CP_SW_WRONG_DATA;
	}
	err = cp_ndef_parse(t->file + 2, nlen, &msg);
	if (err != CP_OK) {
		restore(t);
		*ev = CP_T4T_EVENT_REJECTED;
		*error = err;
		return CP_SW_WRONG_DATA;
	}
	/* What the phone may read back in this session is what it wrote. */
	memcpy(t->loaded, t->file, sizeof(t->loaded));
	t->writing = false;
	t->written_len = nlen;
	*ev = CP_T4T_EVENT_WRITTEN;
	return CP_SW_OK;
}

CpT4tEvent cp_t4t_tag_process(CpT4tTag *t, const uint8_t *capdu, size_t len,
			      uint8_t *rapdu, size_t *rlen, CpError *error)
{
	CpT4tEvent ev = CP_T4T_EVENT_NONE;
	CpError err = CP_OK;
	size_t n = 0;
	uint16_t word;
	Apdu a;

	t->apdus++;
	t->bytes_in += len;

	if (!apdu_parse(capdu, len, &a)) {
		word = CP_SW_WRONG_LENGTH;
	} else if (a.cla != 0x00) {
		word = CP_SW_CLA;
	} else {
		switch (a.ins) {
		case INS_SELECT:
			word = do_select(t, &a);
			break;
		case INS_READ_BINARY:
			word = do_read(t, &a, rapdu, &n);
			break;
		case INS_UPDATE_BINARY:
			word = do_update(t, &a, &ev, &err);
			break;
		default:
			word = CP_SW_INS;
			break;
		}
	}
	sw(rapdu, rlen, n, word);
	t->bytes_out += *rlen;
	if (error)
		*error = err;
	return ev;
}
