/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The line layer of an AT port (ITU-T V.250 §5.2, 3GPP TS 27.007 §4.1,
 * §9.1): fed the bytes a module sends, in whatever pieces the reads give,
 * it cuts lines and tells each one's kind against the command pending:
 * its echo, a line of its answer, its final result code, or an
 * unsolicited result code (URC) that a module may send at any line
 * boundary, in the middle of a multi-line answer too. Pure C, no I/O,
 * no allocation after cp_at_parser_new(); libFuzzer target fuzz-at-parser.
 *
 * Lines end at CR or LF, whichever S3/S4 the module uses, so "\r\n",
 * "\n", a lone "\r" (V0, and the echo, which ends with S3 alone) and
 * "\n\r" all cut the same; empty lines are skipped. Final result codes
 * are the verbose ones (ATV1, which cp-at-modem sets): a V0 digit is not
 * told from a +CIMI answer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line kept: a +CSIM/+CGLA answer of a 256-byte R-APDU is 530. */
#define CP_AT_LINE_MAX_DEFAULT 2048

typedef enum {
	CP_AT_LINE_ECHO,      /* the command echoed back (ATE1, the V.250 default) */
	CP_AT_LINE_RESPONSE,  /* an information line of the pending command's answer */
	CP_AT_LINE_FINAL,     /* the pending command's final result code: it is done */
	CP_AT_LINE_URC,       /* unsolicited: not part of any answer */
	CP_AT_LINE_OVERLONG,  /* longer than the bound: its bytes up to the next CR/LF were dropped */
} CpAtLineKind;

typedef enum {
	CP_AT_FINAL_NONE,          /* not a final result code */
	CP_AT_FINAL_OK,
	CP_AT_FINAL_CONNECT,
	CP_AT_FINAL_ERROR,
	CP_AT_FINAL_CME_ERROR,     /* +CME ERROR: <err> (TS 27.007 §9.2) */
	CP_AT_FINAL_CMS_ERROR,     /* +CMS ERROR: <err> (TS 27.005 §3.2.5) */
	CP_AT_FINAL_NO_CARRIER,
	CP_AT_FINAL_BUSY,
	CP_AT_FINAL_NO_ANSWER,
	CP_AT_FINAL_NO_DIALTONE,
} CpAtFinal;

/* How lines without the command's prefix are taken while it is pending. */
typedef enum {
	CP_AT_BARE_NONE,     /* only prefixed lines are the answer; others are URCs */
	CP_AT_BARE_DIGITS,   /* lines of digits only are the answer too (+CIMI, +CGSN, +CCHO) */
	CP_AT_BARE_TEXT,     /* the first line that is no URC ('+', '^', RING, RDY) is the answer too (+CGMR) */
} CpAtBare;

typedef struct {
	CpAtLineKind kind;
	const char *text;    /* NUL-terminated, without CR/LF; valid during the callback */
	size_t len;
	CpAtFinal final;     /* kind FINAL */
	int error_code;      /* +CME/+CMS ERROR: the number, -1 for a verbose text (CMEE=2) */
	const char *error_text;  /* +CME/+CMS ERROR: what follows "ERROR: " */
} CpAtLine;

typedef struct _CpAtParser CpAtParser;

typedef void (*CpAtLineFunc)(const CpAtLine *line, void *user_data);

/* max_line: longest line (bytes without CR/LF) kept, at least 16;
 * 0 for CP_AT_LINE_MAX_DEFAULT. NULL when out of memory. */
CpAtParser *cp_at_parser_new(size_t max_line);
void cp_at_parser_free(CpAtParser *p);

/*
 * The command now pending: its text as sent without the S3 (for the
 * echo), the prefix of its information lines ("+CSIM:"; NULL for
 * none), how bare lines count. Lines of another "+..." prefix are URCs.
 * The parser forgets the command by itself once its final result code
 * went through; cp_at_parser_set_command(p, NULL, NULL, 0) forgets it
 * sooner (timeout). The strings are copied; false if they do not fit.
 */
bool cp_at_parser_set_command(CpAtParser *p, const char *command, const char *prefix, CpAtBare bare);
bool cp_at_parser_pending(const CpAtParser *p);

/* Feeds bytes; calls func once per complete line, in order. A line
 * split across feeds is held until its end arrives. */
void cp_at_parser_feed(CpAtParser *p, const uint8_t *data, size_t len, CpAtLineFunc func, void *user_data);

/* Drops a partial line (the port was reopened). */
void cp_at_parser_reset(CpAtParser *p);

/* The final result code a line is, with the error number or text. */
CpAtFinal cp_at_final_parse(const char *line, int *error_code, const char **error_text);
const char *cp_at_final_name(CpAtFinal f);

/*
 * Registration lines (+CREG, TS 27.007 §7.2; +CEREG, §10.1.22; +C5GREG,
 * the 5GS one of §10.1, Rel-15 on) have one prefix for the read answer and for the URC; the read
 * answer starts with <n>,<stat> (two unquoted numbers), the URC with
 * <stat> alone or followed by a quoted <lac>/<tac>. True for the URC form.
 */
bool cp_at_registration_is_urc(const char *line);
