/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT line parser: see cp-at-parser.h.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cp-at-parser.h"

#define COMMAND_MAX 600
#define PREFIX_MAX 32

struct _CpAtParser {
	size_t max;
	size_t len;
	bool overlong;       /* dropping the rest of a line past max */
	bool pending;
	bool answered;       /* a line of the answer came: a later "AT..." is not its echo */
	CpAtBare bare;
	char command[COMMAND_MAX + 1];
	char prefix[PREFIX_MAX + 1];
	char line[];         /* max + 1 */
};

CpAtParser *
cp_at_parser_new(size_t max_line)
{
	CpAtParser *p;

	if (max_line == 0)
		max_line = CP_AT_LINE_MAX_DEFAULT;
	if (max_line < 16)
		max_line = 16;
	p = calloc(1, sizeof(*p) + max_line + 1);
	if (p)
		p->max = max_line;
	return p;
}

void
cp_at_parser_free(CpAtParser *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof(*p) + p->max + 1);
	free(p);
}

bool
cp_at_parser_set_command(CpAtParser *p, const char *command, const char *prefix, CpAtBare bare)
{
	p->pending = false;
	p->answered = false;
	/* an APDU may carry ADM1 or a key: nothing of it stays */
	memset(p->command, 0, sizeof(p->command));
	p->prefix[0] = '\0';
	if (!command)
		return true;
	if (strlen(command) > COMMAND_MAX || (prefix && strlen(prefix) > PREFIX_MAX))
		return false;
	strcpy(p->command, command);
	strcpy(p->prefix, prefix ? prefix : "");
	p->bare = bare;
	p->pending = true;
	return true;
}

bool
cp_at_parser_pending(const CpAtParser *p)
{
	return p->pending;
}

void
cp_at_parser_reset(CpAtParser *p)
{
	p->len = 0;
	p->overlong = false;
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "+CME ERROR: <err>": a number, or the verbose text (AT+CMEE=2). */
static CpAtFinal
error_code(const char *rest, CpAtFinal kind, int *code, const char **text)
{
	char *end;
	long n;

	while (*rest == ' ')
		rest++;
	if (text)
		*text = rest;
	if (!*rest)
		return CP_AT_FINAL_NONE;
	n = strtol(rest, &end, 10);
	if (code)
		*code = end != rest && *end == '\0' && isdigit((unsigned char)rest[0]) && n <= 65535 ? (int)n : -1;
	return kind;
}

CpAtFinal
cp_at_final_parse(const char *line, int *code, const char **text)
{
	static const struct {
		const char *text;
		CpAtFinal final;
	} plain[] = {
		{ "OK", CP_AT_FINAL_OK },
		{ "CONNECT", CP_AT_FINAL_CONNECT },
		{ "ERROR", CP_AT_FINAL_ERROR },
		{ "NO CARRIER", CP_AT_FINAL_NO_CARRIER },
		{ "BUSY", CP_AT_FINAL_BUSY },
		{ "NO ANSWER", CP_AT_FINAL_NO_ANSWER },
		{ "NO DIALTONE", CP_AT_FINAL_NO_DIALTONE },
		{ "NO DIAL TONE", CP_AT_FINAL_NO_DIALTONE },
	};

	if (code)
		*code = -1;
	if (text)
		*text = NULL;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (strcmp(line, plain[i].text) == 0)
			return plain[i].final;
	/* CONNECT <text> (V.250 §6.3.x: the rate) is a final code too */
	if (has_prefix(line, "CONNECT "))
		return CP_AT_FINAL_CONNECT;
	if (has_prefix(line, "+CME ERROR:"))
		return error_code(line + 11, CP_AT_FINAL_CME_ERROR, code, text);
	if (has_prefix(line, "+CMS ERROR:"))
		return error_code(line + 11, CP_AT_FINAL_CMS_ERROR, code, text);
	return CP_AT_FINAL_NONE;
}

const char *
cp_at_final_name(CpAtFinal f)
{
	switch (f) {
	case CP_AT_FINAL_NONE: return "none";
	case CP_AT_FINAL_OK: return "OK";
	case CP_AT_FINAL_CONNECT: return "CONNECT";
	case CP_AT_FINAL_ERROR: return "ERROR";
	case CP_AT_FINAL_CME_ERROR: return "+CME ERROR";
	case CP_AT_FINAL_CMS_ERROR: return "+CMS ERROR";
	case CP_AT_FINAL_NO_CARRIER: return "NO CARRIER";
	case CP_AT_FINAL_BUSY: return "BUSY";
	case CP_AT_FINAL_NO_ANSWER: return "NO ANSWER";
	case CP_AT_FINAL_NO_DIALTONE: return "NO DIALTONE";
	}
	return "?";
}

static bool
is_number(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool
cp_at_registration_is_urc(const char *line)
{
	const char *colon = strchr(line, ':');
	const char *a, *comma;

	if (!colon)
		return true;
	a = colon + 1;
	while (*a == ' ')
		a++;
	comma = strchr(a, ',');
	/* "<stat>" alone, or "<stat>,"<tac>"...": the URC; "<n>,<stat>...": the read answer */
	if (!comma)
		return true;
	if (!is_number(a, (size_t)(comma - a)))
		return true;
	a = comma + 1;
	comma = strchr(a, ',');
	return !is_number(a, comma ? (size_t)(comma - a) : strlen(a));
}

static bool
is_registration(const char *line)
{
	return has_prefix(line, "+CREG:") || has_prefix(line, "+CGREG:") ||
	       has_prefix(line, "+CEREG:") || has_prefix(line, "+C5GREG:");
}

/* A URC without a '+' or '^' prefix: a call, and what Quectel ("RDY")
 * and SIMCom ("SMS DONE", "PB DONE") send when they have started. */
static bool
bare_urc(const char *s)
{
	static const char *const words[] = { "RING", "RDY", "SMS DONE", "PB DONE" };

	if (s[0] == '+' || s[0] == '^')
		return true;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

static void
classify(CpAtParser *p, CpAtLine *l)
{
	const char *s = l->text;

	l->final = CP_AT_FINAL_NONE;
	l->error_code = -1;
	l->error_text = NULL;
	if (!p->pending) {
		/* nothing pending: everything is unsolicited, a stale "OK" too */
		l->kind = CP_AT_LINE_URC;
		return;
	}
	/* The echo is the command as the module received it, before any
	 * line of the answer; no result code or URC starts with "AT". */
	if (!p->answered && (strcasecmp(s, p->command) == 0 || strncasecmp(s, "AT", 2) == 0)) {
		l->kind = CP_AT_LINE_ECHO;
		return;
	}
	l->final = cp_at_final_parse(s, &l->error_code, &l->error_text);
	if (l->final != CP_AT_FINAL_NONE) {
		l->kind = CP_AT_LINE_FINAL;
		p->pending = false;
		return;
	}
	if (p->prefix[0] && has_prefix(s, p->prefix) &&
	    !(is_registration(s) && cp_at_registration_is_urc(s))) {
		l->kind = CP_AT_LINE_RESPONSE;
		p->answered = true;
		return;
	}
	if (p->bare == CP_AT_BARE_DIGITS && is_number(s, l->len)) {
		l->kind = CP_AT_LINE_RESPONSE;
		p->answered = true;
		return;
	}
	if (p->bare == CP_AT_BARE_TEXT && !p->answered && !bare_urc(s)) {
		l->kind = CP_AT_LINE_RESPONSE;
		p->answered = true;
		return;
	}
	l->kind = CP_AT_LINE_URC;
}

static void
emit(CpAtParser *p, CpAtLineFunc func, void *user_data)
{
	CpAtLine l = { 0 };

	p->line[p->len] = '\0';
	l.text = p->line;
	l.len = p->len;
	if (p->overlong) {
		l.kind = CP_AT_LINE_OVERLONG;
		l.final = CP_AT_FINAL_NONE;
		l.error_code = -1;
	} else {
		classify(p, &l);
	}
	p->len = 0;
	p->overlong = false;
	func(&l, user_data);
}

void
cp_at_parser_feed(CpAtParser *p, const uint8_t *data, size_t len, CpAtLineFunc func, void *user_data)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];

		if (c == '\r' || c == '\n') {
			if (p->len > 0 || p->overlong)
				emit(p, func, user_data);
			continue;
		}
		if (p->overlong)
			continue;
		if (p->len == p->max) {
			p->overlong = true;
			continue;
		}
		/* a NUL would cut the line short for the string functions */
		p->line[p->len++] = c ? (char)c : ' ';
	}
}
