/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-test.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int cp_test_failures;
int cp_test_checks;
static int left_out;

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

size_t
cp_test_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > cap) {
		fprintf(stderr, "bad test hex '%s'\n", hex);
		abort();
	}
	for (size_t i = 0; i < n / 2; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			fprintf(stderr, "bad test hex '%s'\n", hex);
			abort();
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

char *
cp_test_cert_pem(const uint8_t *der, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(64 + 2 * len), *p = out;

	if (!out)
		abort();
	p += sprintf(p, "-----BEGIN CERTIFICATE-----\n");
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16 | (i + 1 < len ? der[i + 1] << 8 : 0) |
			     (i + 2 < len ? der[i + 2] : 0);

		*p++ = b64[v >> 18 & 63];
		*p++ = b64[v >> 12 & 63];
		*p++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*p++ = i + 2 < len ? b64[v & 63] : '=';
		if ((i / 3 + 1) % 16 == 0 && i + 3 < len)
			*p++ = '\n';
	}
	sprintf(p, "\n-----END CERTIFICATE-----\n");
	return out;
}

void
cp_test_check_hex(const char *file, int line, const char *what,
		  const uint8_t *buf, size_t len, const char *hex)
{
	uint8_t want[4096];
	size_t n = cp_test_unhex(hex, want, sizeof want);

	cp_test_checks++;
	if (n == len && memcmp(buf, want, n) == 0)
		return;
	cp_test_failures++;
	fprintf(stderr, "%s:%d: %s =\n  ", file, line, what);
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, "%02x", buf[i]);
	fprintf(stderr, "\nwant\n  %s\n", hex);
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

bool
cp_test_vectors_load(const char *file, CpTestVectors *v)
{
	const char *dir = getenv("CP_VECTORS_DIR");
	char path[4096], line[4096];
	CpTestBlock *cur = NULL;
	FILE *f;

	memset(v, 0, sizeof *v);
	snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", file);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open vector file %s\n", path);
		return false;
	}
	while (fgets(line, sizeof line, f)) {
		char *s = trim(line), *eq;

		if (*s == '#')
			continue;
		if (*s == '\0') {
			cur = NULL;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (!cur) {
			v->blocks = realloc(v->blocks, (v->n + 1) * sizeof *v->blocks);
			cur = &v->blocks[v->n++];
			memset(cur, 0, sizeof *cur);
		}
		cur->kv = realloc(cur->kv, (cur->n + 1) * sizeof *cur->kv);
		cur->kv[cur->n].name = strdup(trim(s));
		cur->kv[cur->n].value = strdup(trim(eq + 1));
		cur->n++;
	}
	fclose(f);
	return v->n > 0;
}

const char *
cp_test_block_get(const CpTestBlock *b, const char *name)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->kv[i].name, name) == 0)
			return b->kv[i].value;
	return NULL;
}

void
cp_test_vectors_free(CpTestVectors *v)
{
	for (size_t i = 0; i < v->n; i++) {
		for (size_t j = 0; j < v->blocks[i].n; j++) {
			free(v->blocks[i].kv[j].name);
			free(v->blocks[i].kv[j].value);
		}
		free(v->blocks[i].kv);
	}
	free(v->blocks);
	memset(v, 0, sizeof *v);
}

void
cp_test_vectors_merge(const CpTestVectors *v, CpTestBlock *out)
{
	out->kv = NULL;
	out->n = 0;
	for (size_t i = 0; i < v->n; i++) {
		out->kv = realloc(out->kv, (out->n + v->blocks[i].n) * sizeof *out->kv);
		if (!out->kv)
			abort();
		memcpy(out->kv + out->n, v->blocks[i].kv, v->blocks[i].n * sizeof *out->kv);
		out->n += v->blocks[i].n;
	}
}

bool
cp_test_require_all(void)
{
	const char *ci = getenv("CI"), *all = getenv("CP_REQUIRE_ALL");

	return (ci && strcmp(ci, "true") == 0) || (all && strcmp(all, "1") == 0);
}

int
cp_test_missing(const char *reason)
{
	if (cp_test_require_all()) {
		printf("FAIL: missing prerequisite (CI=true or CP_REQUIRE_ALL=1): %s\n", reason);
		return 1;
	}
	printf("SKIP: %s\n", reason);
	return 77;
}

void
cp_test_partly(const char *reason)
{
	printf("part left out: %s\n", reason);
	left_out++;
}

int
cp_test_done(const char *name)
{
	if (cp_test_checks == 0) {
		fprintf(stderr, "%s: no check ran\n", name);
		return 1;
	}
	printf("%s: %d checks, %d failed\n", name, cp_test_checks, cp_test_failures);
	if (cp_test_failures)
		return 1;
	if (left_out)
		return cp_test_missing("parts were left out (above)");
	return 0;
}
