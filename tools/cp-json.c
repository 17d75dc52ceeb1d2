/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-json.h"

#include <inttypes.h>
#include <string.h>

void
cp_json_init(CpJson *j, FILE *out, bool pretty)
{
	memset(j, 0, sizeof *j);
	j->out = out;
	j->pretty = pretty;
}

/* Length of the well-formed UTF-8 sequence at s (2-4), 0 if there is none. */
static size_t
utf8_seq(const uint8_t *s, size_t len)
{
	uint32_t cp;
	size_t n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * Not every string is checked text: an NDEF record type is any bytes. A
 * byte that starts no well-formed UTF-8 sequence becomes U+FFFD, so the
 * output is always valid JSON in UTF-8.
 */
static void
put_escaped(FILE *out, const uint8_t *s, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		size_t n;

		if (c == '"' || c == '\\') {
			fprintf(out, "\\%c", c);
		} else if (c == '\n') {
			fputs("\\n", out);
		} else if (c == '\t') {
			fputs("\\t", out);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
		} else if (c < 0x80) {
			fputc(c, out);
		} else if ((n = utf8_seq(s + i, len - i)) != 0) {
			fwrite(s + i, 1, n, out);
			i += n - 1;
		} else {
			fputs("\\ufffd", out);
		}
	}
	fputc('"', out);
}

static void
indent(CpJson *j)
{
	if (!j->pretty)
		return;
	fputc('\n', j->out);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->out);
}

static void
begin_value(CpJson *j, const char *key)
{
	if (j->depth > 0 && j->need_comma[j->depth])
		fputc(',', j->out);
	if (j->depth > 0)
		indent(j);
	j->need_comma[j->depth] = true;
	if (key) {
		put_escaped(j->out, (const uint8_t *)key, strlen(key));
		fputs(j->pretty ? ": " : ":", j->out);
	}
}

static void
open_container(CpJson *j, const char *key, char c)
{
	begin_value(j, key);
	fputc(c, j->out);
	if (j->depth < 15)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void
close_container(CpJson *j, char c)
{
	bool had = j->need_comma[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (had)
		indent(j);
	fputc(c, j->out);
}

void cp_json_begin_object(CpJson *j, const char *key) { open_container(j, key, '{'); }
void cp_json_end_object(CpJson *j) { close_container(j, '}'); }
void cp_json_begin_array(CpJson *j, const char *key) { open_container(j, key, '['); }
void cp_json_end_array(CpJson *j) { close_container(j, ']'); }

void
cp_json_string(CpJson *j, const char *key, const char *value)
{
	cp_json_string_len(j, key, (const uint8_t *)value, strlen(value));
}

void
cp_json_string_len(CpJson *j, const char *key, const uint8_t *value, size_t len)
{
	begin_value(j, key);
	put_escaped(j->out, value, len);
}

void
cp_json_hex(CpJson *j, const char *key, const uint8_t *data, size_t len)
{
	begin_value(j, key);
	fputc('"', j->out);
	for (size_t i = 0; i < len; i++)
		fprintf(j->out, "%02x", data[i]);
	fputc('"', j->out);
}

void
cp_json_uint(CpJson *j, const char *key, uint64_t value)
{
	begin_value(j, key);
	fprintf(j->out, "%" PRIu64, value);
}

void
cp_json_bool(CpJson *j, const char *key, bool value)
{
	begin_value(j, key);
	fputs(value ? "true" : "false", j->out);
}

void
cp_json_finish(CpJson *j)
{
	fputc('\n', j->out);
	fflush(j->out);
}
