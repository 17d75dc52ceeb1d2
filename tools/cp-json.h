/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small JSON writer for the programs that do not link GLib
 * (cellprov-tool). Output goes to a FILE; bytes are written as lower-case
 * hex strings, as every cellprov tool prints them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
	FILE *out;
	int depth;
	bool need_comma[16];
	bool pretty;
} CpJson;

void cp_json_init(CpJson *j, FILE *out, bool pretty);
void cp_json_begin_object(CpJson *j, const char *key);
void cp_json_end_object(CpJson *j);
void cp_json_begin_array(CpJson *j, const char *key);
void cp_json_end_array(CpJson *j);
/* key NULL inside an array. */
void cp_json_string(CpJson *j, const char *key, const char *value);
void cp_json_string_len(CpJson *j, const char *key, const uint8_t *value, size_t len);
void cp_json_hex(CpJson *j, const char *key, const uint8_t *data, size_t len);
void cp_json_uint(CpJson *j, const char *key, uint64_t value);
void cp_json_bool(CpJson *j, const char *key, bool value);
/* Ends the document with a newline. */
void cp_json_finish(CpJson *j);
