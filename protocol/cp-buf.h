/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A growable byte buffer for encoders, and hex helpers. An encoder that
 * runs out of memory marks the buffer failed; the caller checks once.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
} CpBuf;

#define CP_BUF_INIT { NULL, 0, 0, false }

void cp_buf_init(CpBuf *b);
/* Cleanses before freeing: buffers may hold key material. */
void cp_buf_clear(CpBuf *b);
bool cp_buf_reserve(CpBuf *b, size_t extra);
void cp_buf_append(CpBuf *b, const void *data, size_t len);
void cp_buf_append_u8(CpBuf *b, uint8_t v);
void cp_buf_append_be16(CpBuf *b, uint16_t v);
void cp_buf_append_be64(CpBuf *b, uint64_t v);
/* Detach the bytes; the caller frees them with free(). */
uint8_t *cp_buf_steal(CpBuf *b, size_t *len);

#define cp_auto_buf __attribute__((cleanup(cp_buf_clear))) CpBuf

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void cp_hex_encode(const uint8_t *in, size_t n, char *out);
/* Malloc'd lower-case hex string; NULL on allocation failure. */
char *cp_hex_strdup(const uint8_t *in, size_t n);
/* Decode hex (upper or lower case, no separators) into out (at most cap
 * bytes); returns the byte count, or -1 when not hex, odd or too long. */
long cp_hex_decode(const char *hex, uint8_t *out, size_t cap);

uint16_t cp_be16(const uint8_t *p);
uint64_t cp_be64(const uint8_t *p);
void cp_put_be16(uint8_t *p, uint16_t v);
void cp_put_be64(uint8_t *p, uint64_t v);
