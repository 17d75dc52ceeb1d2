/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-tlv.h"

#include <string.h>

static const CpTlvField *
find_field(const CpTlvField *fields, size_t n_fields, uint8_t tag, size_t *index)
{
	for (size_t i = 0; i < n_fields; i++) {
		if (fields[i].tag == tag) {
			*index = i;
			return &fields[i];
		}
	}
	return NULL;
}

static CpError
fail(CpError err, size_t offset, uint8_t tag, size_t *err_offset, uint8_t *err_tag)
{
	if (err_offset)
		*err_offset = offset;
	if (err_tag)
		*err_tag = tag;
	return err;
}

CpError
cp_tlv_decode(const uint8_t *buf, size_t len,
	      const CpTlvField *fields, size_t n_fields,
	      CpTlvValue *values,
	      size_t *err_offset, uint8_t *err_tag)
{
	/* Every tag seen so far, also extensions: a repeat is a duplicate
	 * whatever its place, which says more than "out of order". */
	uint8_t seen[256 / 8] = { 0 };
	const CpTlvField *last = NULL;
	size_t pos = 0;
	int prev = -1;

	if (!buf && len)
		return fail(CP_ERR_ARGUMENT, 0, 0, err_offset, err_tag);
	for (size_t i = 0; i < n_fields; i++)
		memset(&values[i], 0, sizeof values[i]);

	while (pos < len) {
		const CpTlvField *f;
		size_t index = 0;
		uint8_t tag = buf[pos];
		uint16_t vlen;

		if (last)
			return fail(last->tag == CP_TLV_MAC ? CP_ERR_MAC_NOT_LAST : CP_ERR_TRAILING,
				    pos, tag, err_offset, err_tag);
		if (len - pos < CP_TLV_HDR)
			return fail(CP_ERR_TRUNCATED, pos, tag, err_offset, err_tag);
		vlen = cp_be16(buf + pos + 1);

		if (seen[tag / 8] & (1u << (tag % 8)))
			return fail(CP_ERR_TAG_DUPLICATE, pos, tag, err_offset, err_tag);
		if ((int)tag < prev)
			return fail(CP_ERR_TAG_ORDER, pos, tag, err_offset, err_tag);

		f = find_field(fields, n_fields, tag, &index);
		if (!f && (tag < CP_TLV_EXT_FIRST || tag > CP_TLV_EXT_LAST))
			return fail(CP_ERR_UNKNOWN_TAG, pos, tag, err_offset, err_tag);
		if (f && (vlen < f->min_len || vlen > f->max_len))
			return fail(CP_ERR_LENGTH, pos, tag, err_offset, err_tag);
		if (vlen > len - pos - CP_TLV_HDR)
			return fail(CP_ERR_TRUNCATED, pos, tag, err_offset, err_tag);

		if (f) {
			values[index].value = buf + pos + CP_TLV_HDR;
			values[index].len = vlen;
			values[index].offset = pos;
			values[index].end = pos + CP_TLV_HDR + vlen;
			if (f->last)
				last = f;
		}
		seen[tag / 8] |= (uint8_t)(1u << (tag % 8));
		prev = tag;
		pos += CP_TLV_HDR + (size_t)vlen;
	}

	for (size_t i = 0; i < n_fields; i++)
		if (fields[i].required && !values[i].value)
			return fail(CP_ERR_MISSING_FIELD, len, fields[i].tag, err_offset, err_tag);
	return CP_OK;
}

/*
 * Values above 0xffff cannot be encoded: the buffer is marked failed so
 * that the encoder's single check catches it, as for no memory.
 */
void
cp_tlv_put(CpBuf *b, uint8_t tag, const void *value, size_t len)
{
	if (len > 0xffff) {
		b->failed = true;
		return;
	}
	if (!cp_buf_reserve(b, CP_TLV_HDR + len))
		return;
	cp_buf_append_u8(b, tag);
	cp_buf_append_be16(b, (uint16_t)len);
	cp_buf_append(b, value, len);
}

void
cp_tlv_put_u8(CpBuf *b, uint8_t tag, uint8_t v)
{
	cp_tlv_put(b, tag, &v, 1);
}

void
cp_tlv_put_be16(CpBuf *b, uint8_t tag, uint16_t v)
{
	uint8_t p[2];

	cp_put_be16(p, v);
	cp_tlv_put(b, tag, p, sizeof p);
}

void
cp_tlv_put_be64(CpBuf *b, uint8_t tag, uint64_t v)
{
	uint8_t p[8];

	cp_put_be64(p, v);
	cp_tlv_put(b, tag, p, sizeof p);
}

void
cp_tlv_put_str(CpBuf *b, uint8_t tag, const char *s)
{
	cp_tlv_put(b, tag, s, strlen(s));
}

bool
cp_is_digits(const uint8_t *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

bool
cp_is_printable_ascii(const uint8_t *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

bool
cp_is_utf8(const uint8_t *p, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return false;
	while (i < len) {
		uint8_t c = p[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			/* 0x80-0xc1: continuation or overlong two-byte lead;
			 * 0xf5-0xff: above U+10FFFF or never valid. */
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		/* C1 controls are as dangerous on a terminal as C0. */
		if (cp >= 0x80 && cp <= 0x9f)
			return false;
		i += n + 1;
	}
	return true;
}
