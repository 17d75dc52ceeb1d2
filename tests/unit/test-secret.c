/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cp-crypto.h"
#include "cp-secret.h"
#include "cp-test.h"

static void
test_new(void)
{
	cp_auto_secret *z = cp_secret_new(16);
	cp_auto_secret *e = cp_secret_new(0);
	cp_auto_secret *f = cp_secret_new_from((const uint8_t *)"\x01\x02\x03", 3);
	cp_auto_secret *d = cp_secret_dup(f);

	CP_CHECK(z && z->len == 16);
	CP_CHECK_HEX(z->data, z->len, "00000000000000000000000000000000");
	CP_CHECK(e && e->len == 0);
	CP_CHECK(f && f->len == 3);
	CP_CHECK_HEX(f->data, f->len, "010203");
	CP_CHECK(d && d != f && cp_secret_equal(d, f));
	CP_CHECK(cp_secret_new_from(NULL, 4) == NULL);
	CP_CHECK(cp_secret_dup(NULL) == NULL);
	CP_CHECK(cp_secret_new(SIZE_MAX) == NULL);
}

static void
test_hex(void)
{
	cp_auto_secret *a = cp_secret_new_from_hex("000102030405060708090A0B0c0d0e0f", 16);
	cp_auto_secret *any = cp_secret_new_from_hex("abcd", 0);

	CP_CHECK(a && a->len == 16);
	if (a)
		CP_CHECK_HEX(a->data, a->len, "000102030405060708090a0b0c0d0e0f");
	CP_CHECK(any && any->len == 2);

	CP_CHECK(cp_secret_new_from_hex("0001", 16) == NULL);
	CP_CHECK(cp_secret_new_from_hex("000102030405060708090a0b0c0d0e0f00", 16) == NULL);
	CP_CHECK(cp_secret_new_from_hex("abc", 0) == NULL);
	CP_CHECK(cp_secret_new_from_hex("zz", 0) == NULL);
	CP_CHECK(cp_secret_new_from_hex("00\n", 0) == NULL);
	CP_CHECK(cp_secret_new_from_hex(NULL, 0) == NULL);
}

static void
test_equal(void)
{
	cp_auto_secret *a = cp_secret_new_from_hex("00112233", 4);
	cp_auto_secret *b = cp_secret_new_from_hex("00112233", 4);
	cp_auto_secret *c = cp_secret_new_from_hex("00112234", 4);
	cp_auto_secret *s = cp_secret_new_from_hex("001122", 3);

	CP_CHECK(cp_secret_equal(a, b));
	CP_CHECK(!cp_secret_equal(a, c));
	CP_CHECK(!cp_secret_equal(a, s));
	CP_CHECK(!cp_secret_equal(a, NULL));
	CP_CHECK(cp_secret_equal(NULL, NULL));

	CP_CHECK(cp_memeq_consttime("abcd", "abcd", 4));
	CP_CHECK(!cp_memeq_consttime("abcd", "abce", 4));
	CP_CHECK(!cp_memeq_consttime("\x80", "\x00", 1));
	CP_CHECK(cp_memeq_consttime("a", "b", 0));
}

static void
test_cleanse(void)
{
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	CpSecret *s = cp_secret_new(4);

	cp_cleanse(buf, sizeof buf);
	CP_CHECK_HEX(buf, sizeof buf, "0000000000000000");
	cp_cleanse(NULL, 4);

	cp_secret_freep(&s);
	CP_CHECK(s == NULL);
	cp_secret_freep(&s);
	cp_secret_free(NULL);
}

/* The VmFlags of the mapping that holds p (/proc/self/smaps). */
static bool
mapping_flags(const void *p, char *flags, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false, found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			size_t n = strnlen(line + 8, size - 1);

			memcpy(flags, line + 8, n);
			flags[n] = '\0';
			found = true;
		}
	}
	fclose(f);
	return found;
}

static bool
has_flag(const char *flags, const char *flag)
{
	size_t n = strlen(flag);

	for (const char *q = strstr(flags, flag); q; q = strstr(q + 1, flag))
		if ((q == flags || q[-1] == ' ') && (q[n] == ' ' || q[n] == '\n' || !q[n]))
			return true;
	return false;
}

/*
 * With the secure heap made, secrets come from it: a mapping locked in
 * memory (VmFlags "lo") and left out of core dumps ("dd"), which ordinary
 * allocations are not; freed, nothing is left in it at cleanup.
 */
static void
test_secure_heap(void)
{
	CpSecureHeap heap = cp_crypto_init(32768);
	char flags[256] = "";
	void *plain = malloc(64);
	CpSecret *s;

	if (heap == CP_SECURE_HEAP_NONE) {
		cp_test_partly("the secure heap cannot be made here");
		free(plain);
		return;
	}
	/* made once: asked again, it says what it is */
	CP_CHECK_INT(cp_crypto_init(65536), heap);
	s = cp_secret_new_from_hex("deadbeef", 4);
	CP_CHECK(s != NULL);
	if (s)
		CP_CHECK_HEX(s->data, s->len, "deadbeef");
	CP_CHECK(s && mapping_flags(s, flags, sizeof flags));
	CP_CHECK(has_flag(flags, "dd"));
	if (heap == CP_SECURE_HEAP_LOCKED)
		CP_CHECK(has_flag(flags, "lo"));
	else
		cp_test_partly("mlock is refused here (RLIMIT_MEMLOCK): the heap is not locked");
	CP_CHECK(mapping_flags(plain, flags, sizeof flags) && !has_flag(flags, "dd"));
	free(plain);
	/* Freed, nothing is left for cleanup to report as leaked. */
	cp_secret_free(s);
	CP_CHECK_INT(cp_crypto_cleanup(), 0);
}

int
main(void)
{
	test_new();
	test_hex();
	test_equal();
	test_cleanse();
	test_secure_heap();
	return cp_test_done("test-secret");
}
