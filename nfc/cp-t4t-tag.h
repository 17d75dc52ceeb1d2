/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The NFC Forum Type 4 Tag (T4T 2.0) command set as pure code: one C-APDU
 * in, one R-APDU out, no I/O. cp-nfc-tag.c runs it on libnfc's target
 * API; the unit tests run it directly.
 *
 * Files: the NDEF tag application (AID D2760000850101), the CC file E103
 * (read-only) and the NDEF file E104 (NLEN + up to CP_T4T_NDEF_MAX bytes).
 * Commands: SELECT (by AID, by file id), READ BINARY, UPDATE BINARY. Every
 * other command, and every wrong parameter, gets its ISO 7816-4 status word
 * and changes nothing.
 *
 * The write procedure: a reader sets NLEN to 0, writes the message in
 * chunks, then writes the final non-zero NLEN. Only then is the message
 * checked (size, strict NDEF parse) and reported, with
 * CP_T4T_EVENT_WRITTEN; a rejected message restores the content the
 * session started with, so the tag never presents half a message.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp-error.h"
#include "cp-ndef.h"

#define CP_T4T_FILE_MAX (2 + CP_T4T_NDEF_MAX)      /* NLEN + message */
#define CP_T4T_CAPDU_MAX (5 + 255 + 1)
#define CP_T4T_RAPDU_MAX (CP_T4T_MLE + 2)

/* Status words (ISO 7816-4) the tag answers with. */
#define CP_SW_OK 0x9000
#define CP_SW_EOF 0x6282               /* READ: fewer bytes than Le before the end of the file */
#define CP_SW_WRONG_LENGTH 0x6700      /* Lc/Le inconsistent with the APDU, above MLc/MLe, or 0 */
#define CP_SW_SECURITY 0x6982          /* UPDATE of the read-only CC file */
#define CP_SW_NO_EF 0x6986             /* READ/UPDATE with no file selected */
#define CP_SW_WRONG_DATA 0x6A80        /* final NLEN: malformed NDEF or NLEN beyond the file */
#define CP_SW_NOT_FOUND 0x6A82         /* unknown AID or file id, or file select before the AID */
#define CP_SW_NO_SPACE 0x6A84          /* UPDATE past the end of the NDEF file */
#define CP_SW_WRONG_P1P2 0x6A86        /* SELECT with P1/P2 other than T4T's */
#define CP_SW_WRONG_OFFSET 0x6B00      /* offset at or beyond the end of the file */
#define CP_SW_INS 0x6D00               /* instruction not supported */
#define CP_SW_CLA 0x6E00               /* class not supported */

typedef enum {
	CP_T4T_EVENT_NONE = 0,
	CP_T4T_EVENT_WRITE_STARTED,    /* NLEN was set to 0: a write is under way */
	CP_T4T_EVENT_WRITTEN,          /* final NLEN: a well-formed message, see cp_t4t_tag_message() */
	CP_T4T_EVENT_REJECTED,         /* the final NLEN or an UPDATE was refused; see the error */
} CpT4tEvent;

typedef enum {
	CP_T4T_SEL_NONE = 0,
	CP_T4T_SEL_APP,
	CP_T4T_SEL_CC,
	CP_T4T_SEL_NDEF,
} CpT4tSelection;

typedef struct {
	uint8_t cc[CP_T4T_CC_LEN];
	uint8_t file[CP_T4T_FILE_MAX];
	uint8_t loaded[CP_T4T_FILE_MAX];   /* content at the start of the session */
	size_t file_size;                  /* the CC's max NDEF file size */
	CpT4tSelection selected;
	bool writing;                      /* NLEN = 0 was written, final NLEN not yet */
	size_t written_len;                /* message length of the last WRITTEN event */
	/* Per session counters, for logs and the benchmark. */
	unsigned apdus;
	size_t bytes_in;
	size_t bytes_out;
} CpT4tTag;

/* Default CC (MLe = MLc = 246, NDEF file 2 + CP_T4T_NDEF_MAX, free read
 * and write) and an empty NDEF file. */
void cp_t4t_tag_init(CpT4tTag *t);

/*
 * Start a session presenting ndef (len 0: an empty tag, NLEN 0). Nothing
 * is selected afterwards and the counters are zero.
 * CP_ERR_NDEF_TOO_LARGE when len is above CP_T4T_NDEF_MAX (the tag keeps
 * an empty file then).
 */
CpError cp_t4t_tag_load(CpT4tTag *t, const uint8_t *ndef, size_t len);

/*
 * Process one C-APDU. rapdu must hold CP_T4T_RAPDU_MAX bytes; *rlen is
 * set to the R-APDU length (data + SW1 SW2, always >= 2). *error (may be
 * NULL) is set for CP_T4T_EVENT_REJECTED: CP_ERR_NDEF_TOO_LARGE, or the
 * NDEF parser's code for a malformed message.
 */
CpT4tEvent cp_t4t_tag_process(CpT4tTag *t, const uint8_t *capdu, size_t len,
			      uint8_t *rapdu, size_t *rlen, CpError *error);

/* A write was started (NLEN = 0) and not finished. */
bool cp_t4t_tag_write_pending(const CpT4tTag *t);

/* The NDEF message the tag holds now (after WRITTEN: the one written). */
const uint8_t *cp_t4t_tag_message(const CpT4tTag *t, size_t *len);

/* SW1 SW2 of an R-APDU. */
uint16_t cp_t4t_sw(const uint8_t *rapdu, size_t rlen);
