/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every code declared in cp-error.h has a name, a message and a hint, the
 * names are unique kebab-case, and docs/error-codes.md documents each one.
 * The header is scanned as text so that a code added without a table row
 * fails here.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cp-error.h"
#include "cp-test.h"

#define MAX_CODES 256

typedef struct {
	char ident[64];
	unsigned long code;
} HeaderCode;

static char *
slurp(const char *rel)
{
	const char *dir = getenv("CP_SOURCE_DIR");
	char path[4096];
	char *buf;
	long n;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", rel);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static size_t
scan_header(const char *text, HeaderCode *codes)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, "CP_")) != NULL; ) {
		const char *s = p;
		size_t len = 0;
		char *end;
		unsigned long v;

		while (isalnum((unsigned char)s[len]) || s[len] == '_')
			len++;
		p += len;
		if (len >= sizeof codes[0].ident)
			continue;
		s += len;
		while (*s == ' ')
			s++;
		if (*s != '=')
			continue;
		s++;
		while (*s == ' ')
			s++;
		v = strtoul(s, &end, 0);
		if (end == s || *end != ',')
			continue;
		if (n == MAX_CODES)
			break;
		memcpy(codes[n].ident, p - len, len);
		codes[n].ident[len] = '\0';
		codes[n].code = v;
		n++;
	}
	return n;
}

static bool
kebab(const char *s)
{
	if (!*s || *s == '-')
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
		      (*s == '-' && s[1] != '-' && s[1] != '\0')))
			return false;
	return true;
}

int
main(void)
{
	static HeaderCode codes[MAX_CODES];
	char *header = slurp("protocol/cp-error.h");
	char *doc = slurp("docs/error-codes.md");
	size_t n, known = 0;
	CpError back;

	CP_CHECK(header != NULL);
	CP_CHECK(doc != NULL);
	if (!header || !doc)
		return cp_test_done("test-error");

	n = scan_header(header, codes);
	/* A broken scanner must not pass silently. */
	CP_CHECK(n > 40);
	for (size_t i = 0; i < n; i++) {
		CpError c = (CpError)codes[i].code;
		const char *name = cp_error_name(c);
		char hexnum[16];

		if (strcmp(name, "unknown") == 0 || !kebab(name)) {
			fprintf(stderr, "%s (0x%04lx): name '%s'\n", codes[i].ident, codes[i].code, name);
			CP_CHECK(false);
		}
		CP_CHECK(strcmp(cp_error_message(c), "Unknown error") != 0);
		CP_CHECK(strlen(cp_error_hint(c)) > 10);
		CP_CHECK(cp_error_from_name(name, &back) && back == c);
		for (size_t j = 0; j < i; j++)
			if (strcmp(name, cp_error_name((CpError)codes[j].code)) == 0) {
				fprintf(stderr, "name '%s' used twice\n", name);
				CP_CHECK(false);
			}

		/* The doc has a row with the number, the identifier and the name. */
		snprintf(hexnum, sizeof hexnum, "0x%04lX", codes[i].code);
		if (!strstr(doc, hexnum) || !strstr(doc, codes[i].ident) || !strstr(doc, name)) {
			fprintf(stderr, "docs/error-codes.md lacks %s %s %s\n", hexnum, codes[i].ident, name);
			CP_CHECK(false);
		}
	}

	/* Nothing in the table that the header does not declare. */
	for (unsigned long c = 0; c <= 0xffff; c++)
		if (strcmp(cp_error_name((CpError)c), "unknown") != 0)
			known++;
	CP_CHECK_INT(known, n);

	CP_CHECK(strcmp(cp_error_name((CpError)0x7777), "unknown") == 0);
	CP_CHECK(strcmp(cp_error_message((CpError)0x7777), "Unknown error") == 0);
	CP_CHECK(strcmp(cp_error_name(CP_ERR_WRONG_DEVICE), "wrong-device") == 0);
	CP_CHECK(!cp_error_from_name("no-such-error", &back));
	CP_CHECK(!cp_error_from_name(NULL, &back));

	free(header);
	free(doc);
	return cp_test_done("test-error");
}
