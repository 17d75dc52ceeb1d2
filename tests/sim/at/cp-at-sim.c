/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-at-sim: an AT modem on a pty with the shared USIM and network model
 * (tests/sim/card), answering the commands cellprov uses as the modules
 * it imitates do, with fault knobs. See docs/man/cp-at-sim.1.md and
 * docs/simulators-at.md (each behaviour and its source).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cp-buf.h"
#include "cp-secret.h"
#include "cp-sim-modem.h"

#define LINE_MAX_IN 1200   /* V.250 §5.1 asks for at least 40; real modules take ~1.5 KiB */
#define N_REG 3            /* +CREG, +CEREG, +C5GREG */

typedef enum {
	ICCID_CCID,      /* AT+CCID -> "+CCID: <iccid>" (u-blox SARA-R4) */
	ICCID_QCCID,     /* AT+QCCID -> "+QCCID: <iccid>" (Quectel BG96/EC25) */
	ICCID_CICCID,    /* AT+CICCID -> "+ICCID: <iccid>" (SIMCom SIM7600) */
} IccidCmd;

typedef struct {
	const char *name;
	const char *manufacturer;
	const char *model;
	IccidCmd iccid;
	gboolean ccho_prefixed;   /* "+CCHO: <n>" rather than "<n>" */
	gboolean has_c5greg;
	/* +CGMR's answer: TS 27.007 §5.3 gives the revision alone; SIMCom
	 * prefixes "+CGMR: " (ModemManager strips it where it loads the
	 * revision, src/mm-broadband-modem.c). Revisions of the vendors'
	 * forms (docs/at.md). */
	const char *cgmr;
} Model;

static const Model models[] = {
	{ "bg96", "Quectel", "BG96", ICCID_QCCID, FALSE, FALSE, "BG96MAR02A07M1G" },
	{ "rm500q", "Quectel", "RM500Q-GL", ICCID_QCCID, FALSE, TRUE, "RM500QGLABR11A06M4G" },
	{ "sim7600", "SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H", ICCID_CICCID, TRUE, FALSE,
	  "+CGMR: LE20B04SIM7600M22" },
	{ "sara-r4", "u-blox", "SARA-R410M-02B", ICCID_CCID, TRUE, FALSE, "L0.0.00.00.05.06 [Feb 03 2018 13:00:41]" },
};

/* A PDP context (TS 27.007 §10.1.1): the cid and APN, and its type. */
typedef struct {
	CpSimContext base;
	char *type;
} Context;

static const char *const reg_names[N_REG] = { "+CREG", "+CEREG", "+C5GREG" };

static struct {
	CpSimModem m;            /* the card, the network, the port, the faults */
	/* configuration */
	const Model *model;
	guint split;
	guint urc_storm;
	gboolean deny;
	gboolean no_card;
	gboolean t0;
	GByteArray *t0_pending[4];   /* per channel: the response GET RESPONSE hands out */
	int reject_cause;        /* -1: from the attach result */
	/* module state */
	gboolean echo;
	gboolean verbose;
	guint cmee;
	guint fun;
	guint cops_format;       /* +COPS <format>: 0 long name, 1 short, 2 numeric */
	guint reg_n[N_REG];
	guint stat;              /* LTE registration, +CEREG and +CREG (combined attach) */
	int cause;               /* reject cause of the last denial, -1 none */
	gboolean resetting;
	gboolean in_command;     /* gathering a command's answer */
	guint sessions;          /* bit n: +CCHO session n is open */
	/* transport */
	GString *in;
	GByteArray *out;
	guint out_timer;
	/* counters */
	guint n_commands;
	guint n_apdus;
	guint n_resets;
	guint n_urcs;
} sim;

static void
dump(void)
{
	cp_sim_modem_dump(&sim.m);
}

/* ---- output ------------------------------------------------------------ */

static void
raw_write(const guint8 *d, gsize len)
{
	cp_sim_modem_port_write(&sim.m, d, len);
}

/* --split N: a piece of N bytes every millisecond, as a module behind a
 * USB serial converter hands its answer over in several reads. */
static gboolean
out_timer_cb(gpointer data)
{
	guint n = MIN(sim.split, sim.out->len);

	raw_write(sim.out->data, n);
	g_byte_array_remove_range(sim.out, 0, n);
	if (sim.out->len)
		return G_SOURCE_CONTINUE;
	sim.out_timer = 0;
	return G_SOURCE_REMOVE;
}

/* Sends what out() gathered: a command's answer goes once its effects
 * are in the dump (a test reads the dump as soon as it has the answer). */
static void
flush(void)
{
	if (cp_sim_modem_port_fd(&sim.m) < 0) {
		g_byte_array_set_size(sim.out, 0);
		return;
	}
	if (!sim.split) {
		raw_write(sim.out->data, sim.out->len);
		g_byte_array_set_size(sim.out, 0);
	} else if (!sim.out_timer && sim.out->len) {
		sim.out_timer = g_timeout_add(1, out_timer_cb, NULL);
	}
}

static void
out(const char *s)
{
	if (cp_sim_modem_port_fd(&sim.m) < 0)
		return;
	g_byte_array_append(sim.out, (const guint8 *)s, (guint)strlen(s));
	if (!sim.in_command)
		flush();
}

/* An information or unsolicited line: <CR><LF>text<CR><LF> (V.250 §5.7.1). */
static void
out_line(const char *text)
{
	g_autofree char *s = sim.verbose ? g_strdup_printf("\r\n%s\r\n", text) : g_strdup_printf("%s\r\n", text);

	out(s);
}

static void
urc(const char *text)
{
	sim.n_urcs++;
	out_line(text);
}

/* A final result code: verbose, or the V0 number and <CR> (V.250 §5.7.1,
 * table 1: OK 0, ERROR 4). */
static void
out_final(gboolean ok)
{
	out(sim.verbose ? (ok ? "\r\nOK\r\n" : "\r\nERROR\r\n") : (ok ? "0\r" : "4\r"));
}

/* +CME ERROR <err> per +CMEE (TS 27.007 §9.1): 0 plain ERROR, 1 the
 * number, 2 the text. */
static void
out_cme(guint code, const char *text)
{
	g_autofree char *s = NULL;

	if (sim.cmee == 0) {
		out_final(FALSE);
		return;
	}
	s = sim.cmee == 1 ? g_strdup_printf("+CME ERROR: %u", code) : g_strdup_printf("+CME ERROR: %s", text);
	out_line(s);
}

/* ---- registration ------------------------------------------------------ */

static guint
reg_stat(guint k)
{
	/* an LTE network: +C5GREG stays "not registered, not searching" */
	return k == 2 ? 0 : sim.stat;
}

/* "<stat>[,<tac>,<ci>,<AcT>[,<cause_type>,<reject_cause>]]" as n asks
 * (TS 27.007 §7.2, §10.1.22). */
static char *
reg_fields(guint k, guint n)
{
	GString *s = g_string_new(NULL);
	guint stat = reg_stat(k);
	gboolean cell = stat == 1 || stat == 5;

	g_string_append_printf(s, "%u", stat);
	if (n >= 2) {
		if (cell)
			g_string_append_printf(s, ",\"00C3\",\"0000001A\",7");   /* <AcT> 7: E-UTRAN */
		else if (n == 3 && stat == 3 && sim.cause >= 0)
			g_string_append(s, ",,,");
	}
	if (n == 3 && stat == 3 && sim.cause >= 0)
		g_string_append_printf(s, ",0,%d", sim.cause);
	return g_string_free(s, FALSE);
}

static void
reg_urcs(void)
{
	/* the EPS (and 5GS) state first, then the CS one, as an LTE module
	 * that attached reports it */
	static const guint order[N_REG] = { 1, 2, 0 };

	for (guint i = 0; i < N_REG; i++) {
		guint k = order[i];
		g_autofree char *f = NULL, *line = NULL;

		if (!sim.reg_n[k] || (k == 2 && !sim.model->has_c5greg))
			continue;
		f = reg_fields(k, sim.reg_n[k]);
		line = g_strdup_printf("%s: %s", reg_names[k], f);
		urc(line);
	}
}

static void
set_stat(guint stat, int cause)
{
	if (sim.stat == stat && sim.cause == cause)
		return;
	sim.stat = stat;
	sim.cause = cause;
	g_message("registration: stat %u%s", stat, cause >= 0 ? " (with a reject cause)" : "");
	reg_urcs();
	dump();
}

static void
attach_cb(void)
{
	CpSimAttach a;

	if (sim.fun != 1)
		return;
	if (sim.no_card) {
		set_stat(0, -1);
		return;
	}
	a = cp_sim_modem_attach(&sim.m);
	if (a == CP_SIM_ATTACH_NO_IMSI) {
		set_stat(0, -1);
	} else if (a == CP_SIM_ATTACH_REGISTERED && !sim.deny) {
		set_stat(1, -1);
	} else {
		/* TS 29.272 Annex A: an unknown user is EMM cause #8; after an
		 * AUTHENTICATION REJECT the UE acts as on #3 "Illegal UE"
		 * (TS 24.301 §5.4.2.5), which modules report as the cause */
		int cause = sim.reject_cause >= 0 ? sim.reject_cause :
			    a == CP_SIM_ATTACH_UNKNOWN_SUBSCRIBER ? 8 : 3;

		set_stat(3, cause);
	}
}

static void
card_start(void)
{
	cp_sim_modem_card_start(&sim.m);
	sim.sessions = 0;
	for (guint i = 0; i < G_N_ELEMENTS(sim.t0_pending); i++)
		g_clear_pointer(&sim.t0_pending[i], g_byte_array_unref);
}

static void
go_online(void)
{
	sim.fun = 1;
	set_stat(2, -1);
	cp_sim_modem_attach_later(&sim.m);
}

static void
go_offline(guint fun)
{
	sim.fun = fun;
	cp_sim_modem_attach_cancel(&sim.m);
	set_stat(0, -1);
}

/* ---- transport and reset ----------------------------------------------- */

static void
close_pty(void)
{
	cp_sim_modem_port_close(&sim.m);
	if (sim.out_timer)
		g_source_remove(sim.out_timer);
	sim.out_timer = 0;
	g_byte_array_set_size(sim.out, 0);
	g_string_truncate(sim.in, 0);
}

static gboolean
reset_done_cb(gpointer data)
{
	if (!cp_sim_modem_port_return(&sim.m, cp_sim_modem_reset_path(&sim.m)))
		return G_SOURCE_REMOVE;
	sim.resetting = FALSE;
	/* settings back to their defaults (V.250 §6.1.1 &F, as after power-on) */
	sim.echo = TRUE;
	sim.verbose = TRUE;
	sim.cmee = 0;
	sim.cops_format = 0;
	memset(sim.reg_n, 0, sizeof(sim.reg_n));
	card_start();
	/* what the module says once it is up (Quectel BG96: RDY, +CPIN: READY,
	 * +QIND: SMS DONE; no one listens yet on a fresh port, so most are lost) */
	urc("RDY");
	urc("+CPIN: READY");
	go_online();
	dump();
	return G_SOURCE_REMOVE;
}

/* +CFUN=1,1: the module restarts and drops off USB; its port comes back
 * after the reset delay (TS 27.007 §8.2 <rst>=1; Quectel BG96 AT manual
 * §2.21: "the module will be rebooted"). */
static gboolean
reset_start_cb(gpointer data)
{
	sim.n_resets++;
	g_message("reset: the port goes away");
	go_offline(0);
	close_pty();
	g_timeout_add(sim.m.reset_delay_ms, reset_done_cb, NULL);
	dump();
	return G_SOURCE_REMOVE;
}

/* ---- commands ---------------------------------------------------------- */

static gboolean
parse_uint(const char *s, guint max, guint *v)
{
	guint64 u;

	if (!*s || !g_ascii_string_to_unsigned(s, 10, 0, max, &u, NULL))
		return FALSE;
	*v = (guint)u;
	return TRUE;
}

/* "<str>" → str, or NULL. */
static char *
unquote(const char *s)
{
	gsize n = strlen(s);

	if (n < 2 || s[0] != '"' || s[n - 1] != '"' || memchr(s + 1, '"', n - 2))
		return NULL;
	return g_strndup(s + 1, n - 2);
}

static GByteArray *
hex_arg(const char *len_s, const char *quoted)
{
	g_autofree char *hex = unquote(quoted);
	GByteArray *a;
	guint len;

	/* <length> is the number of characters of <command> (§8.17, §8.43) */
	if (!hex || !parse_uint(len_s, 2 * 65544, &len) || len != strlen(hex) || len % 2 || len < 8)
		return NULL;
	a = g_byte_array_sized_new(len / 2);
	g_byte_array_set_size(a, len / 2);
	if (cp_hex_decode(hex, a->data, len / 2) != (long)(len / 2)) {
		g_byte_array_unref(a);
		return NULL;
	}
	return a;
}

/* Modules answer in upper-case hex. */
static char *
hex_upper(const guint8 *d, gsize n)
{
	g_autofree char *s = g_malloc(2 * n + 1);
	char *u;

	cp_hex_encode(d, n, s);
	u = g_ascii_strup(s, -1);
	cp_cleanse(s, 2 * n);
	return u;
}

static Context *
context_find(guint cid)
{
	return (Context *)cp_sim_modem_context_find(&sim.m, cid);
}

static void
context_clear(CpSimContext *c)
{
	g_free(((Context *)c)->type);
}

/* The answer lines go through here: --urc-storm puts URCs before and
 * after each one, in the middle of the answer (TS 27.007 §4.1 lets a
 * module send URCs at any line boundary; Quectel's URC port setting
 * +QURCCFG "usbat" sends them on the AT port in between). */
static void
storm(void)
{
	for (guint i = 0; i < sim.urc_storm; i++) {
		g_autofree char *f = NULL, *l = NULL;

		switch (i % 4) {
		case 0:
			urc("+QIND: \"csq\",20,99");
			break;
		case 1:   /* the state as it is: a URC must not lie */
			f = reg_fields(1, 1);
			l = g_strdup_printf("+CEREG: %s", f);
			urc(l);
			break;
		case 2:
			urc("RING");
			break;
		case 3:
			f = reg_fields(0, 1);
			l = g_strdup_printf("+CREG: %s", f);
			urc(l);
			break;
		}
	}
}

static void
answer(const char *line)
{
	storm();
	out_line(line);
	storm();
}

/*
 * --t0: the card's T=0 procedure bytes reach the TE, as on modules that
 * pass +CSIM/+CGLA through as TPDUs (ETSI TS 102 221 §7.3.1.1.4 and
 * §10.3.1): a case 4 command with response data answers 61xx and GET
 * RESPONSE (INS C0) hands the data out; a case 2 command with P3 = 0
 * answers 6Cxx, the length to ask for.
 */
static void
t0_apdu(GByteArray *apdu, GByteArray *out)
{
	guint ch = apdu->data[0] & 0x03;
	GByteArray **pend = &sim.t0_pending[ch];
	g_autoptr(GByteArray) resp = g_byte_array_new();

	if (apdu->len == 5 && apdu->data[1] == 0xC0) {
		guint le = apdu->data[4] ? apdu->data[4] : 256;
		guint avail, n;

		if (!*pend || (*pend)->len <= 2) {
			static const guint8 sw[] = { 0x69, 0x85 };   /* nothing to get */

			g_byte_array_append(out, sw, 2);
			return;
		}
		avail = (*pend)->len - 2;
		n = MIN(le, avail);
		g_byte_array_append(out, (*pend)->data, n);
		g_byte_array_remove_range(*pend, 0, n);
		if ((*pend)->len > 2) {
			const guint8 more[] = { 0x61, (guint8)MIN((*pend)->len - 2, 255) };

			g_byte_array_append(out, more, 2);
		} else {
			g_byte_array_append(out, (*pend)->data, 2);
			g_clear_pointer(pend, g_byte_array_unref);
		}
		return;
	}
	g_clear_pointer(pend, g_byte_array_unref);
	cp_sim_usim_apdu(sim.m.usim, ch, apdu->data, apdu->len, resp);
	if (apdu->len > 5 && resp->len > 2) {
		const guint8 sw[] = { 0x61, (guint8)MIN(resp->len - 2, 255) };

		*pend = g_steal_pointer(&resp);
		g_byte_array_append(out, sw, 2);
	} else if (apdu->len == 5 && apdu->data[4] == 0 && resp->len > 2 && resp->len - 2 < 256) {
		const guint8 sw[] = { 0x6C, (guint8)(resp->len - 2) };

		cp_cleanse(resp->data, resp->len);
		g_byte_array_append(out, sw, 2);
	} else {
		g_byte_array_append(out, resp->data, resp->len);
	}
}

/* One extended command: name ("+CSIM"), op ("=", "?", "=?", ""), args. */
static void
extended(const char *name, const char *op, char **args)
{
	guint nargs = args ? g_strv_length(args) : 0;
	g_autofree char *line = NULL;

	/* without a card every card command is +CME ERROR: 10 (TS 27.007 §9.2.1) */
	if (sim.no_card && (strcmp(name, "+CPIN") == 0 || strcmp(name, "+CIMI") == 0 ||
			    strstr(name, "CCID") || strcmp(name, "+CRSM") == 0 || strcmp(name, "+CSIM") == 0 ||
			    strcmp(name, "+CCHO") == 0 || strcmp(name, "+CGLA") == 0 || strcmp(name, "+CCHC") == 0)) {
		out_cme(10, "SIM not inserted");
		return;
	}
	if (strcmp(name, "+CMEE") == 0) {
		if (strcmp(op, "?") == 0) {
			line = g_strdup_printf("+CMEE: %u", sim.cmee);
			answer(line);
		} else if (strcmp(op, "=") != 0 || nargs != 1 || !parse_uint(args[0], 2, &sim.cmee)) {
			out_final(FALSE);
			return;
		}
		out_final(TRUE);
	} else if (strcmp(name, "+CGMI") == 0 && !*op) {
		answer(sim.model->manufacturer);
		out_final(TRUE);
	} else if (strcmp(name, "+CGMM") == 0 && !*op) {
		answer(sim.model->model);
		out_final(TRUE);
	} else if (strcmp(name, "+CGMR") == 0 && !*op) {
		answer(sim.model->cgmr);
		out_final(TRUE);
	} else if (strcmp(name, "+CPIN") == 0 && strcmp(op, "?") == 0) {
		answer("+CPIN: READY");
		out_final(TRUE);
	} else if (strcmp(name, "+CIMI") == 0 && !*op) {
		/* §7.1: the IMSI the MT read from the card at its start */
		if (!sim.m.modem_imsi) {
			out_cme(10, "SIM not inserted");
			return;
		}
		answer(sim.m.modem_imsi);
		out_final(TRUE);
	} else if ((strcmp(name, "+CCID") == 0 && sim.model->iccid == ICCID_CCID) ||
		   (strcmp(name, "+QCCID") == 0 && sim.model->iccid == ICCID_QCCID) ||
		   (strcmp(name, "+CICCID") == 0 && sim.model->iccid == ICCID_CICCID)) {
		if (*op) {
			out_final(FALSE);
			return;
		}
		line = g_strdup_printf("%s: %s", sim.model->iccid == ICCID_CICCID ? "+ICCID" : name,
				       cp_sim_usim_get_iccid(sim.m.usim));
		answer(line);
		out_final(TRUE);
	} else if (strcmp(name, "+CRSM") == 0 && strcmp(op, "=") == 0) {
		/* §8.18: only READ BINARY (176) here, the modem's own access */
		g_autoptr(GByteArray) data = g_byte_array_new();
		guint cmd, fid, p1, p2, p3;
		guint16 sw;
		g_autofree char *hex = NULL;

		if (nargs < 5 || !parse_uint(args[0], 255, &cmd) || !parse_uint(args[1], 65535, &fid) ||
		    !parse_uint(args[2], 255, &p1) || !parse_uint(args[3], 255, &p2) ||
		    !parse_uint(args[4], 255, &p3) || cmd != 176) {
			out_cme(50, "incorrect parameters");
			return;
		}
		sw = cp_sim_usim_read(sim.m.usim, (guint16)fid, (guint16)(p1 << 8 | p2), (guint16)p3, data);
		hex = hex_upper(data->data, data->len);
		line = sw == 0x9000 ? g_strdup_printf("+CRSM: %u,%u,\"%s\"", sw >> 8, sw & 0xFF, hex) :
		       g_strdup_printf("+CRSM: %u,%u", sw >> 8, sw & 0xFF);
		answer(line);
		out_final(TRUE);
	} else if ((strcmp(name, "+CSIM") == 0 && nargs == 2) || (strcmp(name, "+CGLA") == 0 && nargs == 3)) {
		gboolean cgla = name[2] == 'G';
		g_autoptr(GByteArray) apdu = strcmp(op, "=") == 0 ? hex_arg(args[cgla], args[cgla + 1]) : NULL;
		g_autoptr(GByteArray) resp = g_byte_array_new();
		g_autofree char *hex = NULL;
		guint ch = 0;

		if (!apdu || (cgla && (!parse_uint(args[0], 19, &ch) || ch == 0))) {
			out_cme(50, "incorrect parameters");
			return;
		}
		/* §8.43: a session the MT did not open is its error, and the
		 * CLA must name the channel (TS 102 221 §10.1.1) */
		if (cgla && (!(sim.sessions & (1u << ch)) || (apdu->data[0] & 0x03) != ch)) {
			out_cme(21, "invalid index");
			return;
		}
		sim.n_apdus++;
		if (sim.t0)
			t0_apdu(apdu, resp);
		else
			cp_sim_usim_apdu(sim.m.usim, apdu->data[0] & 0x03, apdu->data, apdu->len, resp);
		cp_cleanse(apdu->data, apdu->len);
		hex = hex_upper(resp->data, resp->len);
		line = g_strdup_printf("%s: %u,\"%s\"", name, resp->len * 2, hex);
		cp_cleanse(resp->data, resp->len);
		answer(line);
		cp_cleanse(line, strlen(line));
		cp_cleanse(hex, strlen(hex));
		out_final(TRUE);
	} else if (strcmp(name, "+CCHO") == 0 && strcmp(op, "=") == 0 && nargs == 1) {
		g_autofree char *hex = unquote(args[0]);
		guint8 aid[16];
		long n = hex ? cp_hex_decode(hex, aid, sizeof(aid)) : -1;
		guint16 sw;
		guint ch;

		if (n < 5 || 2 * (gsize)n != strlen(hex)) {
			out_cme(50, "incorrect parameters");
			return;
		}
		ch = cp_sim_usim_open_channel(sim.m.usim, aid, (gsize)n, &sw);
		if (!ch) {
			/* no such application, or no channel left */
			out_cme(sw == 0x6A82 ? 4 : 3, "operation not allowed");
			return;
		}
		sim.sessions |= 1u << ch;
		line = sim.model->ccho_prefixed ? g_strdup_printf("+CCHO: %u", ch) : g_strdup_printf("%u", ch);
		answer(line);
		out_final(TRUE);
	} else if (strcmp(name, "+CCHC") == 0 && strcmp(op, "=") == 0 && nargs == 1) {
		guint ch;

		if (!parse_uint(args[0], 19, &ch) || ch == 0 || !(sim.sessions & (1u << ch)) ||
		    !cp_sim_usim_close_channel(sim.m.usim, ch)) {
			out_cme(21, "invalid index");
			return;
		}
		sim.sessions &= ~(1u << ch);
		if (sim.model->ccho_prefixed && sim.model->iccid == ICCID_CICCID)
			answer("+CCHC: 0");   /* SIMCom SIM7600 */
		out_final(TRUE);
	} else if (strcmp(name, "+CGDCONT") == 0) {
		guint cid;

		if (strcmp(op, "?") == 0) {
			for (guint i = 0; i < sim.m.contexts->len; i++) {
				Context *c = g_ptr_array_index(sim.m.contexts, i);
				g_autofree char *l = g_strdup_printf("+CGDCONT: %u,\"%s\",\"%s\",\"0.0.0.0\",0,0,0,0",
								     c->base.id, c->type, c->base.apn);

				answer(l);
			}
			out_final(TRUE);
			return;
		}
		if (strcmp(op, "=?") == 0) {
			/* §10.1.1 test command: the cids and options per PDP
			 * type (a BG96's answer); ModemManager's profile
			 * manager needs it */
			static const char *const types[] = { "IP", "IPV6", "IPV4V6" };

			for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
				g_autofree char *l = g_strdup_printf("+CGDCONT: (1-15),\"%s\",,,(0-2),(0-4),(0),(0)",
								     types[i]);

				answer(l);
			}
			out_final(TRUE);
			return;
		}
		if (strcmp(op, "=") != 0 || nargs < 1 || !parse_uint(args[0], 15, &cid) || cid == 0) {
			out_cme(50, "incorrect parameters");
			return;
		}
		if (nargs == 1) {   /* §10.1.1: the context becomes undefined */
			Context *c = context_find(cid);

			if (c)
				cp_sim_modem_context_remove(&sim.m, &c->base);
		} else {
			g_autofree char *type = unquote(args[1]);
			g_autofree char *apn = nargs >= 3 ? unquote(args[2]) : g_strdup("");
			Context *c;

			if (!type || !apn || (strcmp(type, "IP") && strcmp(type, "IPV6") && strcmp(type, "IPV4V6"))) {
				out_cme(50, "incorrect parameters");
				return;
			}
			if (!(c = context_find(cid)))
				c = (Context *)cp_sim_modem_context_add(&sim.m, sizeof(Context), cid, NULL);
			g_free(c->type);
			g_free(c->base.apn);
			c->type = g_steal_pointer(&type);
			c->base.apn = g_steal_pointer(&apn);
		}
		out_final(TRUE);
	} else if (strcmp(name, "+CFUN") == 0) {
		guint fun, rst = 0;

		if (strcmp(op, "?") == 0) {
			line = g_strdup_printf("+CFUN: %u", sim.fun);
			answer(line);
			out_final(TRUE);
			return;
		}
		if (strcmp(op, "=") != 0 || nargs < 1 || nargs > 2 || !parse_uint(args[0], 4, &fun) ||
		    (fun != 0 && fun != 1 && fun != 4) || (nargs == 2 && !parse_uint(args[1], 1, &rst))) {
			out_cme(50, "incorrect parameters");
			return;
		}
		out_final(TRUE);
		if (rst) {
			/* after the OK is out (the split writer's too) */
			sim.resetting = TRUE;
			g_timeout_add(5 + (sim.split ? sim.out->len / MAX(sim.split, 1) * 2 : 0), reset_start_cb, NULL);
		} else if (fun == 1 && sim.fun != 1) {
			card_start();
			go_online();
		} else if (fun != 1) {
			go_offline(fun);
		}
	} else if (strcmp(name, "+COPS") == 0) {
		guint mode, format;

		/* §7.3: the operator in the format last set (long name after
		 * power-on), only while registered; only mode 3 (set the
		 * format) is taken here, the module always selects itself */
		if (strcmp(op, "?") == 0) {
			if (sim.stat == 1 || sim.stat == 5)
				line = g_strdup_printf("+COPS: 0,%u,\"%s\",7", sim.cops_format,
						       sim.cops_format == 2 ? cp_sim_network_get_plmn(sim.m.net) :
						       cp_sim_network_get_name(sim.m.net));
			answer(line ? line : "+COPS: 0");
			out_final(TRUE);
			return;
		}
		if (strcmp(op, "=") != 0 || nargs != 2 || !parse_uint(args[0], 4, &mode) || mode != 3 ||
		    !parse_uint(args[1], 2, &format)) {
			out_cme(50, "incorrect parameters");
			return;
		}
		sim.cops_format = format;
		out_final(TRUE);
	} else if (strcmp(name, "+CREG") == 0 || strcmp(name, "+CEREG") == 0 ||
		   (strcmp(name, "+C5GREG") == 0 && sim.model->has_c5greg)) {
		guint k = name[2] == 'R' ? 0 : name[2] == 'E' ? 1 : 2;
		guint n;

		if (strcmp(op, "?") == 0) {
			g_autofree char *f = reg_fields(k, sim.reg_n[k]);

			line = g_strdup_printf("%s: %u,%s", name, sim.reg_n[k], f);
			answer(line);
			out_final(TRUE);
			return;
		}
		/* n 0-3 (§7.2, §10.1.22); 4/5 (power saving timers) are not here */
		if (strcmp(op, "=") != 0 || nargs != 1 || !parse_uint(args[0], 3, &n)) {
			out_cme(50, "incorrect parameters");
			return;
		}
		sim.reg_n[k] = n;
		out_final(TRUE);
	} else {
		/* a command this module does not have: plain ERROR (V.250 §5.2.1) */
		out_final(FALSE);
	}
}

/* Splits "a,"b,c",d" at commas outside quotes. */
static char **
split_args(const char *s)
{
	GPtrArray *a = g_ptr_array_new();
	const char *start = s;
	gboolean q = FALSE;

	for (;; s++) {
		if (*s == '"')
			q = !q;
		if ((*s == ',' && !q) || *s == '\0') {
			g_ptr_array_add(a, g_strndup(start, (gsize)(s - start)));
			if (!*s)
				break;
			start = s + 1;
		}
	}
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

static void
command_line_run(const char *line)
{
	const char *body;
	g_autofree char *name = NULL;
	CpSimFault *f;

	/* V.250 §5.2.1: the echo, then the command line from "AT" */
	if (sim.echo) {
		g_autofree char *e = g_strdup_printf("%s\r", line);

		out(e);
	}
	if (g_ascii_strncasecmp(line, "AT", 2) != 0)
		return;
	sim.n_commands++;
	body = line + 2;
	name = *body == '+' ? g_strndup(body, strcspn(body, "=?")) : g_strdup("");
	for (char *p = name; *p; p++)
		*p = g_ascii_toupper(*p);
	if ((f = cp_sim_modem_fault(&sim.m, 0, 0, name))) {
		g_autofree char *what = g_strconcat("AT", name, NULL);

		switch (f->kind) {
		case CP_SIM_FAULT_VANISH:
			cp_sim_modem_vanish(&sim.m, what);
		case CP_SIM_FAULT_NO_RESPONSE:
			g_message("fault: no answer to AT%s", name);
			return;
		case CP_SIM_FAULT_FAIL:
			g_message("fault: error for AT%s", name);
			out_cme(100, "unknown");
			return;
		case CP_SIM_FAULT_GARBAGE: {
			/* a line no answer has: 4096 bytes of noise, then OK */
			g_autofree char *junk = g_strnfill(4096, 'Z');

			g_message("fault: garbage for AT%s", name);
			out_line(junk);
			out_final(TRUE);
			return;
		}
		}
	}
	if (*body == '+') {
		const char *rest = body + strlen(name);
		g_auto(GStrv) args = NULL;
		const char *op = "";

		if (g_str_has_prefix(rest, "=?")) {
			op = "=?";
		} else if (*rest == '?') {
			op = "?";
		} else if (*rest == '=') {
			op = "=";
			args = split_args(rest + 1);
		}
		extended(name, op, args);
	} else {
		/* basic commands: E<n>, V<n>, Z; "AT" alone is OK */
		const char *p = body;

		while (*p) {
			char c = g_ascii_toupper(*p++);
			guint v = 0;

			if (g_ascii_isdigit(*p))
				v = (guint)(*p++ - '0');
			if (c == 'E' && v <= 1)
				sim.echo = v;
			else if (c == 'V' && v <= 1)
				sim.verbose = v;
			else if (c == 'Z' && v == 0)
				sim.echo = sim.verbose = TRUE, sim.cmee = 0;
			else if (c == ' ')
				continue;
			else {
				out_final(FALSE);
				return;
			}
		}
		out_final(TRUE);
	}
}

static void
command_line(const char *line)
{
	sim.in_command = TRUE;
	command_line_run(line);
	sim.in_command = FALSE;
	dump();
	flush();
}

/* What the host typed: S3 (<CR>) ends a command line. */
static void
input(const guint8 *buf, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		char c = (char)buf[i];

		if (sim.resetting)
			break;
		if (c == '\r') {
			g_autofree char *line = g_strdup(sim.in->str);

			g_string_truncate(sim.in, 0);
			if (*line)
				command_line(line);
			cp_cleanse(line, strlen(line));
		} else if (c != '\n' && sim.in->len < LINE_MAX_IN) {
			g_string_append_c(sim.in, c);
		}
	}
}

static void
dump_keys(GString *s)
{
	g_string_append_printf(s, "model=%s\n", sim.model->name);
	g_string_append_printf(s, "port=%s\n", sim.m.port_path ? sim.m.port_path : "");
	g_string_append_printf(s, "cfun=%u\n", sim.fun);
	g_string_append_printf(s, "stat=%u\n", sim.stat);
	g_string_append_printf(s, "echo=%d\n", sim.echo);
	g_string_append_printf(s, "at-commands=%u\n", sim.n_commands);
	g_string_append_printf(s, "apdus=%u\n", sim.n_apdus);
	g_string_append_printf(s, "urcs=%u\n", sim.n_urcs);
	g_string_append_printf(s, "resets=%u\n", sim.n_resets);
}

/* ---- command line ------------------------------------------------------ */

/* --fail, --no-response, --vanish, --garbage: +COMMAND[:N] ("" a bare AT) */
static gboolean
fault_key(char **key, CpSimFault *f)
{
	if (key[0][0] && key[0][0] != '+')
		return FALSE;
	f->command = g_ascii_strup(key[0], -1);
	return TRUE;
}

static const CpSimFrontEnd front_end = {
	.name = "cp-at-sim",
	.summary = "- AT modem simulator with a USIM and a network",
	.flags = CP_SIM_MODEM_REENUMERATE,
	.faults = {
		.fail_option = "fail",
		.fail_answer = "+CME ERROR: 100",
		.what = "+COMMAND",
		.arg = "+CMD[:N]",
		.usage = "+COMMAND[:N], e.g. +CSIM:3 (or :N alone for a bare AT)",
		.n_key = 1,
		.garbage = TRUE,
		.parse_key = fault_key,
	},
	.input = input,
	.attach = attach_cb,
	.dump = dump_keys,
	.context_clear = context_clear,
};

int
main(int argc, char **argv)
{
	g_autofree char *model = NULL;
	int split = 0, storm = 0, reject_cause = -1;
	gboolean no_echo = FALSE, offline = FALSE;
	Context *c;
	GOptionEntry entries[] = {
		{ "model", 0, 0, G_OPTION_ARG_STRING, &model, "Module imitated: bg96 (default), rm500q, sim7600, sara-r4", "NAME" },
		{ "offline", 0, 0, G_OPTION_ARG_NONE, &offline, "Start with +CFUN: 0", NULL },
		{ "no-echo", 0, 0, G_OPTION_ARG_NONE, &no_echo, "Start with ATE0 (modules start with ATE1)", NULL },
		{ "split", 0, 0, G_OPTION_ARG_INT, &split, "Write everything in pieces of N bytes, 1 ms apart", "N" },
		{ "urc-storm", 0, 0, G_OPTION_ARG_INT, &storm, "N URCs before and after every answer line", "N" },
		{ "deny", 0, 0, G_OPTION_ARG_NONE, &sim.deny, "The network rejects every attach", NULL },
		{ "no-card", 0, 0, G_OPTION_ARG_NONE, &sim.no_card, "No USIM in the slot", NULL },
		{ "t0", 0, 0, G_OPTION_ARG_NONE, &sim.t0, "Pass the card's T=0 procedure bytes (61xx, 6Cxx) through", NULL },
		{ "reject-cause", 0, 0, G_OPTION_ARG_INT, &reject_cause, "EMM cause of a rejection (default 8 or 3)", "N" },
		G_OPTION_ENTRY_NULL,
	};

	if (!cp_sim_modem_parse(&sim.m, &front_end, entries, &argc, &argv))
		return 2;
	sim.model = &models[0];
	for (gsize i = 0; model && i < G_N_ELEMENTS(models); i++)
		if (strcmp(model, models[i].name) == 0)
			sim.model = &models[i];
	if (model && strcmp(model, sim.model->name) != 0) {
		fprintf(stderr, "cp-at-sim: --model: bg96, rm500q, sim7600 or sara-r4\n");
		return 2;
	}
	if (split < 0 || storm < 0 || storm > 1000 || reject_cause < -1 || reject_cause > 255) {
		fprintf(stderr, "cp-at-sim: --split, --urc-storm (up to 1000) >= 0, --reject-cause 0-255\n");
		return 2;
	}
	sim.split = (guint)split;
	sim.urc_storm = (guint)storm;
	sim.reject_cause = reject_cause;
	if (!cp_sim_modem_setup(&sim.m, NULL, CP_SIM_LE_LENIENT))
		return 2;
	c = (Context *)cp_sim_modem_context_add(&sim.m, sizeof(Context), 1, sim.m.apn);
	c->type = g_strdup("IPV4V6");
	sim.in = g_string_new(NULL);
	sim.out = g_byte_array_new();
	sim.echo = !no_echo;    /* V.250 §6.2.4: E1 is the default */
	sim.verbose = TRUE;
	sim.cause = -1;

	if (!cp_sim_modem_port_start(&sim.m))
		return 1;
	card_start();
	if (offline)
		sim.fun = 0;
	else
		go_online();
	dump();
	cp_sim_modem_run(&sim.m, sim.m.pty_path);
	close_pty();
	g_string_free(sim.in, TRUE);
	g_byte_array_unref(sim.out);
	for (guint i = 0; i < G_N_ELEMENTS(sim.t0_pending); i++)
		g_clear_pointer(&sim.t0_pending[i], g_byte_array_unref);
	cp_sim_modem_clear(&sim.m);
	return 0;
}
