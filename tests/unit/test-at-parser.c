/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT line parser (modem/cp-at-parser.c): lines cut at every CR/LF
 * variant, echo, answers, final result codes, URCs in the middle of an
 * answer, answers split at every byte, the line bound.
 */
#include <stdlib.h>
#include <string.h>

#include "cp-at-parser.h"
#include "cp-test.h"

#define MAX_LINES 32

typedef struct {
	int n;
	CpAtLineKind kind[MAX_LINES];
	char text[MAX_LINES][128];
	CpAtFinal final[MAX_LINES];
	int code[MAX_LINES];
} Seen;

static void
on_line(const CpAtLine *l, void *data)
{
	Seen *s = data;

	if (s->n == MAX_LINES)
		return;
	s->kind[s->n] = l->kind;
	snprintf(s->text[s->n], sizeof s->text[0], "%s", l->text);
	s->final[s->n] = l->final;
	s->code[s->n] = l->error_code;
	s->n++;
}

/* Feeds text in pieces of step bytes (0: all at once). */
static void
feed(CpAtParser *p, const char *text, size_t step, Seen *s)
{
	size_t len = strlen(text);

	if (step == 0)
		step = len;
	for (size_t i = 0; i < len; i += step)
		cp_at_parser_feed(p, (const uint8_t *)text + i, i + step > len ? len - i : step, on_line, s);
}

/* A +CSIM answer with echo, a URC before it, URCs between the answer
 * line and OK, and one after: the same at every split. */
static void
test_csim_with_urcs(void)
{
	static const char in[] =
		"AT+CSIM=10,\"00A4000C00\"\r"
		"\r\n+CEREG: 2\r\n"
		"\r\n+CSIM: 4,\"9000\"\r\n"
		"\r\n+QIND: \"csq\",20,99\r\n"
		"\r\n+CEREG: 1,\"00C3\",\"0000001A\",7\r\n"
		"RING\r\n"
		"\r\nOK\r\n"
		"\r\n+CEREG: 5\r\n";

	for (size_t step = 0; step <= 7; step++) {
		CpAtParser *p = cp_at_parser_new(CP_AT_LINE_MAX_DEFAULT);
		Seen s = { 0 };

		CP_CHECK(cp_at_parser_set_command(p, "AT+CSIM=10,\"00A4000C00\"", "+CSIM:", CP_AT_BARE_NONE));
		feed(p, in, step, &s);
		CP_CHECK_INT(s.n, 8);
		CP_CHECK_INT(s.kind[0], CP_AT_LINE_ECHO);
		CP_CHECK_INT(s.kind[1], CP_AT_LINE_URC);
		CP_CHECK(strcmp(s.text[1], "+CEREG: 2") == 0);
		CP_CHECK_INT(s.kind[2], CP_AT_LINE_RESPONSE);
		CP_CHECK(strcmp(s.text[2], "+CSIM: 4,\"9000\"") == 0);
		CP_CHECK_INT(s.kind[3], CP_AT_LINE_URC);
		CP_CHECK_INT(s.kind[4], CP_AT_LINE_URC);
		CP_CHECK_INT(s.kind[5], CP_AT_LINE_URC);
		CP_CHECK(strcmp(s.text[5], "RING") == 0);
		CP_CHECK_INT(s.kind[6], CP_AT_LINE_FINAL);
		CP_CHECK_INT(s.final[6], CP_AT_FINAL_OK);
		CP_CHECK_INT(s.kind[7], CP_AT_LINE_URC);
		CP_CHECK(!cp_at_parser_pending(p));
		cp_at_parser_free(p);
	}
}

/* LF only, CR only (V0 style), LF CR: the same lines. */
static void
test_terminators(void)
{
	static const char *const ins[] = {
		"\n+CIMI: 001010123456789\n\nOK\n",
		"+CIMI: 001010123456789\rOK\r",
		"\n\r+CIMI: 001010123456789\n\r\n\rOK\n\r",
	};

	for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) {
		CpAtParser *p = cp_at_parser_new(0);
		Seen s = { 0 };

		cp_at_parser_set_command(p, "AT+CIMI", "+CIMI:", CP_AT_BARE_DIGITS);
		feed(p, ins[i], 0, &s);
		CP_CHECK_INT(s.n, 2);
		CP_CHECK_INT(s.kind[0], CP_AT_LINE_RESPONSE);
		CP_CHECK_INT(s.kind[1], CP_AT_LINE_FINAL);
		cp_at_parser_free(p);
	}
}

/* Bare digits are the answer of +CIMI/+CCHO; a bare word is a URC. */
static void
test_bare(void)
{
	CpAtParser *p = cp_at_parser_new(0);
	Seen s = { 0 };

	cp_at_parser_set_command(p, "AT+CIMI", NULL, CP_AT_BARE_DIGITS);
	feed(p, "\r\nRDY\r\n\r\n001010123456789\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n", 3, &s);
	CP_CHECK_INT(s.n, 4);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[1], CP_AT_LINE_RESPONSE);
	CP_CHECK_INT(s.kind[2], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[3], CP_AT_LINE_FINAL);

	/* without BARE_DIGITS, digits are not an answer */
	s.n = 0;
	cp_at_parser_set_command(p, "AT+CSIM=4,\"0070\"", "+CSIM:", CP_AT_BARE_NONE);
	feed(p, "\r\n1\r\n\r\nOK\r\n", 0, &s);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_URC);

	/* BARE_TEXT (+CGMR): the first line that is no URC, once */
	s.n = 0;
	cp_at_parser_set_command(p, "AT+CGMR", "+CGMR:", CP_AT_BARE_TEXT);
	feed(p, "\r\nRDY\r\n\r\n+CEREG: 1\r\n\r\nBG96MAR02A07M1G\r\n\r\nRING\r\n\r\nSMS DONE\r\n\r\nOK\r\n", 0, &s);
	CP_CHECK_INT(s.n, 6);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[1], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[2], CP_AT_LINE_RESPONSE);
	CP_CHECK_INT(s.kind[3], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[4], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[5], CP_AT_LINE_FINAL);
	s.n = 0;
	cp_at_parser_set_command(p, "AT+CGMR", "+CGMR:", CP_AT_BARE_TEXT);
	feed(p, "\r\nPB DONE\r\n\r\n+CGMR: LE20B04SIM7600M22\r\n\r\nOK\r\n", 0, &s);
	CP_CHECK_INT(s.n, 3);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[1], CP_AT_LINE_RESPONSE);
	cp_at_parser_free(p);
}

static void
test_finals(void)
{
	static const struct {
		const char *line;
		CpAtFinal final;
		int code;
	} cases[] = {
		{ "OK", CP_AT_FINAL_OK, -1 },
		{ "ERROR", CP_AT_FINAL_ERROR, -1 },
		{ "+CME ERROR: 10", CP_AT_FINAL_CME_ERROR, 10 },
		{ "+CME ERROR: SIM not inserted", CP_AT_FINAL_CME_ERROR, -1 },
		{ "+CMS ERROR: 500", CP_AT_FINAL_CMS_ERROR, 500 },
		{ "NO CARRIER", CP_AT_FINAL_NO_CARRIER, -1 },
		{ "BUSY", CP_AT_FINAL_BUSY, -1 },
		{ "NO ANSWER", CP_AT_FINAL_NO_ANSWER, -1 },
		{ "NO DIALTONE", CP_AT_FINAL_NO_DIALTONE, -1 },
		{ "CONNECT 150000000", CP_AT_FINAL_CONNECT, -1 },
		{ "+CME ERROR:", CP_AT_FINAL_NONE, -1 },
		{ "OKAY", CP_AT_FINAL_NONE, -1 },
		{ "+CME ERROR: 99999999", CP_AT_FINAL_CME_ERROR, -1 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int code;
		const char *text;

		CP_CHECK_INT(cp_at_final_parse(cases[i].line, &code, &text), cases[i].final);
		CP_CHECK_INT(code, cases[i].code);
	}
	/* a final result ends the command: the next OK is unsolicited */
	{
		CpAtParser *p = cp_at_parser_new(0);
		Seen s = { 0 };

		cp_at_parser_set_command(p, "AT+CCHO=\"A0000000871002\"", "+CCHO:", CP_AT_BARE_DIGITS);
		feed(p, "\r\n+CME ERROR: 3\r\n\r\nOK\r\n", 0, &s);
		CP_CHECK_INT(s.n, 2);
		CP_CHECK_INT(s.final[0], CP_AT_FINAL_CME_ERROR);
		CP_CHECK_INT(s.code[0], 3);
		CP_CHECK_INT(s.kind[1], CP_AT_LINE_URC);
		cp_at_parser_free(p);
	}
}

/* +CEREG? answers and +CEREG URCs share the prefix. */
static void
test_registration(void)
{
	CpAtParser *p = cp_at_parser_new(0);
	Seen s = { 0 };

	CP_CHECK(!cp_at_registration_is_urc("+CEREG: 2,1,\"00C3\",\"0000001A\",7"));
	CP_CHECK(!cp_at_registration_is_urc("+CEREG: 3,3,,,,0,15"));
	CP_CHECK(cp_at_registration_is_urc("+CEREG: 1"));
	CP_CHECK(cp_at_registration_is_urc("+CEREG: 1,\"00C3\",\"0000001A\",7"));
	CP_CHECK(cp_at_registration_is_urc("+CEREG: 3,,,,0,15"));

	cp_at_parser_set_command(p, "AT+CEREG?", "+CEREG:", CP_AT_BARE_NONE);
	feed(p, "\r\n+CEREG: 2\r\n\r\n+CEREG: 3,2\r\n\r\n+CEREG: 1,\"00C3\",\"0000001A\",7\r\n\r\nOK\r\n", 5, &s);
	CP_CHECK_INT(s.n, 4);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[1], CP_AT_LINE_RESPONSE);
	CP_CHECK_INT(s.kind[2], CP_AT_LINE_URC);
	CP_CHECK_INT(s.kind[3], CP_AT_LINE_FINAL);
	cp_at_parser_free(p);
}

/* Echo on: the echo is recognised before the answer only; echo off works
 * the same; an "AT" line after the answer started is not an echo. */
static void
test_echo(void)
{
	CpAtParser *p = cp_at_parser_new(0);
	Seen s = { 0 };

	cp_at_parser_set_command(p, "AT+CFUN?", "+CFUN:", CP_AT_BARE_NONE);
	feed(p, "at+cfun?\r\r\n+CFUN: 1\r\n\r\nOK\r\n", 1, &s);
	CP_CHECK_INT(s.n, 3);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_ECHO);
	CP_CHECK_INT(s.kind[1], CP_AT_LINE_RESPONSE);

	s.n = 0;
	cp_at_parser_set_command(p, "AT+CFUN?", "+CFUN:", CP_AT_BARE_NONE);
	feed(p, "\r\n+CFUN: 1\r\nATTENTION\r\n\r\nOK\r\n", 0, &s);
	CP_CHECK_INT(s.n, 3);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_RESPONSE);
	CP_CHECK_INT(s.kind[1], CP_AT_LINE_URC);

	/* nothing pending: even an echo-looking line is unsolicited */
	s.n = 0;
	feed(p, "OK\r\n", 0, &s);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_URC);
	cp_at_parser_free(p);
}

/* A line over the bound is reported once, its rest dropped, and the
 * parser goes on with the next line. */
static void
test_overlong(void)
{
	CpAtParser *p = cp_at_parser_new(16);
	Seen s = { 0 };

	cp_at_parser_set_command(p, "AT+CSIM=4,\"0070\"", "+CSIM:", CP_AT_BARE_NONE);
	feed(p, "\r\n+CSIM: 40,\"0102030405060708090A0B0C0D0E0F1011129000\"\r\n\r\nOK\r\n", 4, &s);
	CP_CHECK_INT(s.n, 2);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_OVERLONG);
	CP_CHECK_INT(s.kind[1], CP_AT_LINE_FINAL);

	/* exactly the bound is kept */
	s.n = 0;
	cp_at_parser_set_command(p, "AT", NULL, CP_AT_BARE_NONE);
	feed(p, "+0123456789ABCDE\r\nOK\r\n", 0, &s);
	CP_CHECK_INT(s.kind[0], CP_AT_LINE_URC);
	CP_CHECK_INT(strlen(s.text[0]), 16);

	/* a NUL inside a line does not cut it */
	s.n = 0;
	cp_at_parser_set_command(p, "AT", NULL, CP_AT_BARE_NONE);
	cp_at_parser_feed(p, (const uint8_t *)"O\0K\r\nOK\r\n", 9, on_line, &s);
	CP_CHECK_INT(s.n, 2);
	CP_CHECK(strcmp(s.text[0], "O K") == 0);
	CP_CHECK_INT(s.final[1], CP_AT_FINAL_OK);

	/* a command longer than the parser keeps is refused */
	{
		char big[700];

		memset(big, 'A', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		CP_CHECK(!cp_at_parser_set_command(p, big, NULL, CP_AT_BARE_NONE));
		CP_CHECK(!cp_at_parser_pending(p));
	}
	cp_at_parser_free(p);
}

int
main(void)
{
	test_csim_with_urcs();
	test_terminators();
	test_bare();
	test_finals();
	test_registration();
	test_echo();
	test_overlong();
	return cp_test_done("test-at-parser");
}
