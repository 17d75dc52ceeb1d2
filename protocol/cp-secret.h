/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Key material. Every key of the schedule (K_c, K', K_usim, OPc, K_SM, K'',
 * K_prof, ADM1, the raw device key) lives in a CpSecret: its memory is
 * cleansed when freed and never swapped out where the platform allows it
 * (the secure heap of cp_crypto_init, when the program made one).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct {
	size_t len;
	uint8_t data[];
} CpSecret;

/* Zero-filled secret of len bytes; NULL on allocation failure. */
CpSecret *cp_secret_new(size_t len);
CpSecret *cp_secret_new_from(const uint8_t *data, size_t len);
/* Parse hex (no separators); NULL if not hex or not of the wanted length
 * (want_len 0 accepts any even length). */
CpSecret *cp_secret_new_from_hex(const char *hex, size_t want_len);
CpSecret *cp_secret_dup(const CpSecret *s);
void cp_secret_free(CpSecret *s);
void cp_secret_freep(CpSecret **s);
bool cp_secret_equal(const CpSecret *a, const CpSecret *b);   /* constant time */

#define cp_auto_secret __attribute__((cleanup(cp_secret_freep))) CpSecret

/* Constant-time compare of n bytes: true when equal. */
bool cp_memeq_consttime(const void *a, const void *b, size_t n);

/* Cleanse a buffer that held secret bytes. */
void cp_cleanse(void *p, size_t n);
