/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-secret.h"

#include <string.h>
#include <openssl/crypto.h>

#include "cp-buf.h"

/*
 * OPENSSL_secure_zalloc falls back to the ordinary heap when the program
 * has not called CRYPTO_secure_malloc_init(), and
 * OPENSSL_secure_clear_free tells the two apart, so one pair serves both.
 */
CpSecret *
cp_secret_new(size_t len)
{
	CpSecret *s;

	if (len > SIZE_MAX - sizeof(CpSecret))
		return NULL;
	s = OPENSSL_secure_zalloc(sizeof(CpSecret) + len);
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
	OPENSSL_cleanse(s->data, s->len);
	OPENSSL_secure_clear_free(s, sizeof(CpSecret) + s->len);
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
	if (n == 0)
		return true;
	return CRYPTO_memcmp(a, b, n) == 0;
}

void
cp_cleanse(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}
