/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-secret.h"

#include <string.h>

#include "cp-buf.h"
#include "cp-crypto-internal.h"

/* The backend's secure heap once cp_crypto_init made one, else the
 * ordinary heap; cp_secure_free tells the two apart. */
CpSecret *
cp_secret_new(size_t len)
{
	CpSecret *s;

	if (len > SIZE_MAX - sizeof(CpSecret))
		return NULL;
	s = cp_secure_zalloc(sizeof(CpSecret) + len);
	if (s)
		s->len = len;
	return s;
}

CpSecret *
cp_secret_new_from(const uint8_t *data, size_t len)
{
	CpSecret *s;

	if (!data && len)
		return NULL;
	s = cp_secret_new(len);
	if (s && len)
		memcpy(s->data, data, len);
	return s;
}

CpSecret *
cp_secret_new_from_hex(const char *hex, size_t want_len)
{
	CpSecret *s;
	size_t n;
	long got;

	if (!hex)
		return NULL;
	n = strlen(hex);
	if (n % 2 || (want_len && n != 2 * want_len))
		return NULL;
	s = cp_secret_new(n / 2);
	if (!s)
		return NULL;
	got = cp_hex_decode(hex, s->data, s->len);
	if (got < 0 || (size_t)got != s->len) {
		cp_secret_free(s);
		return NULL;
	}
	return s;
}

CpSecret *
cp_secret_dup(const CpSecret *s)
{
	if (!s)
		return NULL;
	return cp_secret_new_from(s->data, s->len);
}

void
cp_secret_free(CpSecret *s)
{
	if (!s)
		return;
	cp_cleanse(s->data, s->len);
	cp_secure_free(s, sizeof(CpSecret) + s->len);
}

void
cp_secret_freep(CpSecret **s)
{
	cp_secret_free(*s);
	*s = NULL;
}

bool
cp_secret_equal(const CpSecret *a, const CpSecret *b)
{
	if (!a || !b)
		return a == b;
	/* Lengths are not secret; the bytes are. */
	if (a->len != b->len)
		return false;
	return cp_memeq_consttime(a->data, b->data, a->len);
}

bool
cp_memeq_consttime(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	/* Every byte read, whatever the first difference: the time says
	 * nothing of where it is. */
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

void
cp_cleanse(void *p, size_t n)
{
	/* glibc and musl both have it; the compiler may not elide it. */
	if (p && n)
		explicit_bzero(p, n);
}
