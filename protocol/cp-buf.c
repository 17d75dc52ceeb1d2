/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-buf.h"

#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include "cp-secret.h"

void
cp_buf_init(CpBuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void
cp_buf_clear(CpBuf *b)
{
	if (b->data) {
		cp_cleanse(b->data, b->cap);
		free(b->data);
	}
	cp_buf_init(b);
}

bool
cp_buf_reserve(CpBuf *b, size_t extra)
{
	size_t want, cap;
	uint8_t *p;

	if (b->failed)
		return false;
	if (extra > SIZE_MAX - b->len)
		goto fail;
	want = b->len + extra;
	if (want <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;

	/*
	 * Not realloc: the old block may hold key material, and realloc
	 * would leave it behind uncleansed when it moves.
	 */
	p = malloc(cap);
	if (!p)
		goto fail;
	if (b->data) {
		memcpy(p, b->data, b->len);
		cp_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return true;
fail:
	b->failed = true;
	return false;
}

void
cp_buf_append(CpBuf *b, const void *data, size_t len)
{
	if (!cp_buf_reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
}

void
cp_buf_append_u8(CpBuf *b, uint8_t v)
{
	cp_buf_append(b, &v, 1);
}

void
cp_buf_append_be16(CpBuf *b, uint16_t v)
{
	uint8_t p[2];

	cp_put_be16(p, v);
	cp_buf_append(b, p, sizeof p);
}

void
cp_buf_append_be64(CpBuf *b, uint64_t v)
{
	uint8_t p[8];

	cp_put_be64(p, v);
	cp_buf_append(b, p, sizeof p);
}

uint8_t *
cp_buf_steal(CpBuf *b, size_t *len)
{
	uint8_t *p;

	if (b->failed) {
		cp_buf_clear(b);
		if (len)
			*len = 0;
		return NULL;
	}
	/* An empty buffer still gives a pointer the caller can free. */
	p = b->data ? b->data : malloc(1);
	if (len)
		*len = p ? b->len : 0;
	cp_buf_init(b);
	return p;
}

static const char hexdigits[] = "0123456789abcdef";

void
cp_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

char *
cp_hex_strdup(const uint8_t *in, size_t n)
{
	char *s;

	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	s = malloc(2 * n + 1);
	if (s)
		cp_hex_encode(in, n, s);
	return s;
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
cp_hex_decode(const char *hex, uint8_t *out, size_t cap)
{
	size_t n;

	if (!hex)
		return -1;
	n = strlen(hex);
	if (n % 2 || n / 2 > cap || n / 2 > (size_t)LONG_MAX)
		return -1;
	/* Validate first so that out is untouched on bad input. */
	for (size_t i = 0; i < n; i++)
		if (nibble(hex[i]) < 0)
			return -1;
	for (size_t i = 0; i < n / 2; i++)
		out[i] = (uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
	return (long)(n / 2);
}

uint16_t
cp_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint64_t
cp_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void
cp_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void
cp_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}
