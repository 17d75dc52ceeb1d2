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

static void
put_escaped(FILE *out, const uint8_t *s, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);   /* UTF-8 passes through: decoders checked it */
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
