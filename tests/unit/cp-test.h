/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A minimal test harness for the pure unit tests (no GLib: the protocol
 * library and its tests build without it). CP_CHECK records a failure and
 * goes on, so one run shows every broken case.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int cp_test_failures;
extern int cp_test_checks;

#define CP_CHECK(cond) do {                                                  \
		cp_test_checks++;                                            \
		if (!(cond)) {                                               \
			cp_test_failures++;                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n",         \
				__FILE__, __LINE__, #cond);                  \
		}                                                            \
	} while (0)

#define CP_CHECK_INT(a, b) do {                                              \
		long long _a = (long long)(a), _b = (long long)(b);          \
		cp_test_checks++;                                            \
		if (_a != _b) {                                              \
			cp_test_failures++;                                  \
			fprintf(stderr, "%s:%d: %s = %lld (0x%llx), want %lld (0x%llx)\n", \
				__FILE__, __LINE__, #a, _a, _a, _b, _b);     \
		}                                                            \
	} while (0)

/* Compare bytes against expected hex; prints both on a mismatch. */
#define CP_CHECK_HEX(buf, len, hex) \
	cp_test_check_hex(__FILE__, __LINE__, #buf, (buf), (len), (hex))

void cp_test_check_hex(const char *file, int line, const char *what,
		       const uint8_t *buf, size_t len, const char *hex);

/* Hex to bytes; aborts the test on malformed hex (a broken test file). */
size_t cp_test_unhex(const char *hex, uint8_t *out, size_t cap);

/* A DER certificate as PEM (RFC 7468: base64 in lines of 64), malloc'd:
 * what cellprov.conf's trusted operators hold. No crypto library. */
char *cp_test_cert_pem(const uint8_t *der, size_t len);

/*
 * Vector files of the form "name = hex", blank-line separated blocks.
 * cp_test_vectors_load() reads $CP_VECTORS_DIR/<file>; blocks are NULL
 * terminated arrays of key/value pairs.
 */
typedef struct {
	char *name;
	char *value;
} CpTestKv;

typedef struct {
	CpTestKv *kv;
	size_t n;
} CpTestBlock;

typedef struct {
	CpTestBlock *blocks;
	size_t n;
} CpTestVectors;

bool cp_test_vectors_load(const char *file, CpTestVectors *v);
const char *cp_test_block_get(const CpTestBlock *b, const char *name);  /* NULL if absent */
void cp_test_vectors_free(CpTestVectors *v);
/* Every block of v as one (the published vectors' sections): the pairs
 * stay v's; free out->kv alone. */
void cp_test_vectors_merge(const CpTestVectors *v, CpTestBlock *out);

/*
 * Something the test needs from the machine is missing. On a developer's
 * machine that is a skip (77); where everything must run (CI=true, or
 * CP_REQUIRE_ALL=1 as scripts/test sets) a failure (1). Both print the
 * reason.
 *   cp_test_missing(reason)  the whole test: returns the exit status
 *   cp_test_partly(reason)   one part: the rest runs, cp_test_done() then
 *                            returns 77 or 1 unless a check failed
 */
bool cp_test_require_all(void);
int cp_test_missing(const char *reason);
void cp_test_partly(const char *reason);

/* Prints the count and returns the process exit status. */
int cp_test_done(const char *name);
