/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT line parser (modem/cp-at-parser.c). Input: one byte choosing the
 * pending command, one byte the piece size, then what the module sends.
 * Invariants: the same lines of the same kinds whether the bytes come at
 * once or in pieces; no line holds CR or LF or exceeds the bound; one
 * final result code at most, and nothing of the command after it; an
 * answer line has the command's prefix (or is digits, where bare digits
 * count).
 */
#include <ctype.h>
#include <string.h>

#include "cp-at-parser.h"
#include "cp-fuzz.h"

#define MAX_LINE 64
#define LOG_MAX 65536

typedef struct {
	char log[LOG_MAX];
	size_t len;
	int finals;
	bool after_final;
	const char *prefix;
	CpAtBare bare;
} Run;

static void
on_line(const CpAtLine *l, void *data)
{
	Run *r = data;
	size_t n;

	CP_FUZZ_CHECK(l->len == strlen(l->text));
	CP_FUZZ_CHECK(!strchr(l->text, '\r') && !strchr(l->text, '\n'));
	CP_FUZZ_CHECK(l->len <= MAX_LINE);
	CP_FUZZ_CHECK(l->kind == CP_AT_LINE_OVERLONG || l->len > 0);
	if (r->after_final)
		CP_FUZZ_CHECK(l->kind == CP_AT_LINE_URC || l->kind == CP_AT_LINE_OVERLONG);
	if (l->kind == CP_AT_LINE_FINAL) {
		CP_FUZZ_CHECK(l->final != CP_AT_FINAL_NONE);
		r->finals++;
		r->after_final = true;
	}
	if (l->kind == CP_AT_LINE_RESPONSE) {
		bool digits = l->len > 0;

		for (size_t i = 0; i < l->len; i++)
			digits = digits && isdigit((unsigned char)l->text[i]);
		CP_FUZZ_CHECK((r->prefix && strncmp(l->text, r->prefix, strlen(r->prefix)) == 0) ||
			      (r->bare == CP_AT_BARE_DIGITS && digits));
	}
	n = l->len + 3;
	if (r->len + n < LOG_MAX) {
		r->log[r->len++] = (char)('0' + l->kind);
		memcpy(r->log + r->len, l->text, l->len);
		r->len += l->len;
		r->log[r->len++] = '\n';
	}
}

static void
run(const uint8_t *data, size_t size, size_t piece, const char *prefix, CpAtBare bare, Run *r)
{
	CpAtParser *p = cp_at_parser_new(MAX_LINE);

	memset(r, 0, sizeof(*r));
	r->prefix = prefix;
	r->bare = bare;
	CP_FUZZ_CHECK(cp_at_parser_set_command(p, "AT+CSIM=10,\"00A4000C00\"", prefix, bare));
	for (size_t i = 0; i < size; i += piece)
		cp_at_parser_feed(p, data + i, size - i < piece ? size - i : piece, on_line, r);
	CP_FUZZ_CHECK(r->finals <= 1);
	CP_FUZZ_CHECK(cp_at_parser_pending(p) == (r->finals == 0));
	cp_at_parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefixes[] = { "+CSIM:", "+CEREG:", "+CCHO:", NULL };
	static Run whole, pieces;
	const char *prefix;
	CpAtBare bare;
	size_t piece;

	if (size < 2)
		return 0;
	prefix = prefixes[data[0] & 3];
	bare = data[0] & 4 ? CP_AT_BARE_DIGITS : CP_AT_BARE_NONE;
	piece = data[1] % 17 + 1;
	run(data + 2, size - 2, size, prefix, bare, &whole);
	run(data + 2, size - 2, piece, prefix, bare, &pieces);
	CP_FUZZ_CHECK(whole.len == pieces.len && memcmp(whole.log, pieces.log, whole.len) == 0);
	return 0;
}
