/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT port and commands (modem/cp-at-*.c) against cp-at-sim on a pty:
 * open, ICCID, a logical channel on the USIM, select/read/verify
 * ADM1/update through +CGLA and through +CSIM, APN, reset (the port goes
 * and comes back, under the same name or another), registration, IMSI;
 * then every fault knob: echo off, answers split, URC storms in the middle
 * of answers, silence (timeout), vanish (gone), an error result,
 * registration denied and late. Card state is read back from the
 * simulator's dump, never through the code under test.
 */
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "cp-at-modem.h"
#include "cp-buf.h"
#include "cp-glib.h"
#include "cp-test.h"
#include "cp-test-sim.h"

#define OLD_IMSI "001010123456789"
#define NEW_IMSI "001010000000001"
#define OLD_K "000102030405060708090a0b0c0d0e0f"
#define OLD_OPC "0f0e0d0c0b0a09080706050403020100"
#define ICCID "8988211000000000017"
#define ADM1_HEX "3132333435363738"    /* "12345678" */

static const char *sim_path;

typedef struct {
	CpTestSim sim;
	char *pty2;        /* where --reenumerate @ttyUSB5 brings the port back */
	CpAtPort *port;
	CpAtModem *modem;
} Bench;

/* ---- the simulator ----------------------------------------------------- */

static void
bench_start(Bench *b, const char *extra, gboolean subscribed)
{
	/* the new IMSI keeps the card's K and OPc: only EF.IMSI is rewritten here */
	g_autofree char *subs = subscribed ? g_strdup_printf("%s %s %s 000000000020\n%s %s %s 000000000020\n",
							     OLD_IMSI, OLD_K, OLD_OPC, NEW_IMSI, OLD_K, OLD_OPC) :
					     g_strdup("# nobody\n");
	g_autofree char *args = g_strconcat("--reset-delay=100 --registration-delay=50 ", extra, NULL);

	memset(b, 0, sizeof(*b));
	cp_test_sim_startv(&b->sim, sim_path, "ttyUSB2", subs, args);
	b->pty2 = cp_test_sim_file(&b->sim, "ttyUSB5");
}

static void
bench_stop(Bench *b)
{
	g_clear_object(&b->modem);
	g_clear_object(&b->port);
	cp_test_sim_stop(&b->sim);
	g_free(b->pty2);
}

/* ---- synchronous wrappers over the async calls ------------------------- */

#define SYNC(call) (call, cp_test_async_wait())

static gboolean
bench_open(Bench *b, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) r = NULL;

	g_clear_object(&b->modem);
	g_clear_object(&b->port);
	/* a port just back may not be openable at once: retry while it is "gone" */
	for (guint i = 0; i < 100; i++) {
		g_clear_error(&error);
		b->port = cp_at_port_open(path, &error);
		if (b->port || !g_error_matches(error, CP_ERROR, CP_ERR_MODEM_GONE))
			break;
		g_usleep(20000);
	}
	if (!b->port) {
		fprintf(stderr, "open %s: %s\n", path, error->message);
		return FALSE;
	}
	cp_at_port_set_timeout(b->port, 2000);
	b->modem = cp_at_modem_new(b->port);
	r = SYNC(cp_at_modem_setup(b->modem, NULL, cp_test_async_done, NULL));
	if (!cp_at_modem_setup_finish(b->modem, r, &error)) {
		fprintf(stderr, "setup: %s\n", error->message);
		return FALSE;
	}
	return TRUE;
}

static GBytes *
apdu(Bench *b, guint channel, const char *hex, GError **error)
{
	guint8 buf[300];
	long n = cp_hex_decode(hex, buf, sizeof(buf));
	g_autoptr(GBytes) cmd = g_bytes_new(buf, (gsize)n);
	g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_apdu(b->modem, channel, cmd, NULL, cp_test_async_done, NULL));

	return cp_at_modem_apdu_finish(b->modem, r, error);
}

/* The response's hex (data and SW), or "error:<code>". */
static char *
apdu_hex(Bench *b, guint channel, const char *hex)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) resp = apdu(b, channel, hex, &error);
	gsize len;
	const guint8 *d;

	if (!resp)
		return g_strdup_printf("error:%s", cp_error_name(cp_error_from_gerror(error, CP_ERR_MODEM)));
	d = g_bytes_get_data(resp, &len);
	return cp_hex_strdup(d, len);
}

static char *
get_iccid(Bench *b, GError **error)
{
	g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_get_iccid(b->modem, NULL, cp_test_async_done, NULL));

	return cp_at_modem_get_iccid_finish(b->modem, r, error);
}

static char *
get_imsi(Bench *b, GError **error)
{
	g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_get_imsi(b->modem, NULL, cp_test_async_done, NULL));

	return cp_at_modem_get_imsi_finish(b->modem, r, error);
}

static guint
open_channel(Bench *b, GError **error)
{
	static const guint8 aid[] = { 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02 };
	g_autoptr(GBytes) a = g_bytes_new_static(aid, sizeof(aid));
	g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_open_channel(b->modem, a, NULL, cp_test_async_done, NULL));

	return cp_at_modem_open_channel_finish(b->modem, r, error);
}

static gboolean
wait_registered(Bench *b, guint ms, GError **error)
{
	g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_wait_registered(b->modem, ms, NULL, cp_test_async_done, NULL));

	return cp_at_modem_wait_registered_finish(b->modem, r, error);
}

static int
code_of(const GError *e)
{
	return e && e->domain == CP_ERROR ? e->code : -1;
}

/* ---- the flow ---------------------------------------------------------- */

/* The whole flow against one simulator; reset_path: where the port comes
 * back after +CFUN=1,1. */
static void
run_flow(const char *label, const char *extra, const char *reset_path_key)
{
	Bench b;
	g_autoptr(GError) error = NULL;
	g_autofree char *iccid = NULL, *imsi = NULL, *apn = NULL, *s = NULL, *ef = NULL;
	const char *reset_path;
	guint ch;

	fprintf(stderr, "# flow: %s\n", label);
	bench_start(&b, extra, TRUE);
	reset_path = reset_path_key && strcmp(reset_path_key, "pty2") == 0 ? b.pty2 : b.sim.pty;
	CP_CHECK(bench_open(&b, b.sim.pty));
	if (!b.modem) {
		bench_stop(&b);
		return;
	}

	{
		g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_get_pin_state(b.modem, NULL, cp_test_async_done, NULL));
		g_autofree char *pin = cp_at_modem_get_pin_state_finish(b.modem, r, &error);

		CP_CHECK(pin && strcmp(pin, "READY") == 0);
		g_clear_error(&error);
	}
	iccid = get_iccid(&b, &error);
	CP_CHECK(iccid && strcmp(iccid, ICCID) == 0);
	g_clear_error(&error);
	imsi = get_imsi(&b, &error);
	CP_CHECK(imsi && strcmp(imsi, OLD_IMSI) == 0);
	g_clear_error(&error);

	/* a logical channel on the USIM; select, read, verify, update by +CGLA */
	ch = open_channel(&b, &error);
	CP_CHECK(ch >= 1 && ch <= 3);
	{
		g_autofree char *sel = g_strdup_printf("%02XA4000C026F07", ch);
		g_autofree char *rd = g_strdup_printf("%02XB0000009", ch);
		g_autofree char *ver = g_strdup_printf("%02X2000" "0A08" ADM1_HEX, ch);
		g_autofree char *upd = g_strdup_printf("%02XD6000009" "080910100000000010", ch);
		/* SELECT returning the FCP (case 4), READ with Le 00 (case 2):
		 * under T=0 the module's 61xx and 6Cxx are followed */
		g_autofree char *fcp_sel = g_strdup_printf("%02XA40004026F07", ch);
		g_autofree char *rd0 = g_strdup_printf("%02XB0000000", ch);
		g_autofree char *f1 = apdu_hex(&b, ch, fcp_sel);
		g_autofree char *f2 = apdu_hex(&b, ch, rd0);
		g_autofree char *r1 = apdu_hex(&b, ch, sel);
		g_autofree char *r2 = apdu_hex(&b, ch, rd);
		g_autofree char *r3 = NULL, *r4 = NULL, *r5 = NULL;

		/* FCP template (TS 102 221 §11.1.1.3) with the file id 6F07 */
		CP_CHECK(g_str_has_prefix(f1, "62") && strstr(f1, "83026f07") && g_str_has_suffix(f1, "9000"));
		ef = cp_test_sim_dump_get(&b.sim, "ef-imsi");
		CP_CHECK(ef && g_str_has_prefix(f2, ef) && strlen(f2) == strlen(ef) + 4 && g_str_has_suffix(f2, "9000"));
		g_clear_pointer(&ef, g_free);
		CP_CHECK(strcmp(r1, "9000") == 0);
		ef = cp_test_sim_dump_get(&b.sim, "ef-imsi");
		/* what +CGLA read is what the card holds */
		CP_CHECK(ef && g_str_has_prefix(r2, ef) && g_str_has_suffix(r2, "9000"));
		r3 = apdu_hex(&b, ch, upd);
		CP_CHECK(strcmp(r3, "6982") == 0);   /* not before ADM1 */
		r4 = apdu_hex(&b, ch, ver);
		CP_CHECK(strcmp(r4, "9000") == 0);
		r5 = apdu_hex(&b, ch, upd);
		CP_CHECK(strcmp(r5, "9000") == 0);
		g_free(ef);
		ef = cp_test_sim_dump_get(&b.sim, "ef-imsi");
		CP_CHECK(g_strcmp0(ef, "080910100000000010") == 0);
	}
	/* the same by +CSIM on the basic channel: ADF.USIM by AID, EF.SPN */
	{
		g_autofree char *r1 = apdu_hex(&b, 0, "00A4040C07A0000000871002");
		g_autofree char *r2 = apdu_hex(&b, 0, "00A4000C026F46");
		g_autofree char *r3 = apdu_hex(&b, 0, "0020000A08" ADM1_HEX);
		g_autofree char *r4 = apdu_hex(&b, 0, "00D6000011" "0143504e4554ffffffffffffffffffffff");
		g_autofree char *r5 = apdu_hex(&b, 0, "00B0000011");
		g_autofree char *spn = cp_test_sim_dump_get(&b.sim, "ef-spn");

		CP_CHECK(strcmp(r1, "9000") == 0);
		CP_CHECK(strcmp(r2, "9000") == 0);
		CP_CHECK(strcmp(r3, "9000") == 0);
		CP_CHECK(strcmp(r4, "9000") == 0);
		CP_CHECK(strcmp(r5, "0143504e4554ffffffffffffffffffffff9000") == 0);
		CP_CHECK(g_strcmp0(spn, "0143504e4554ffffffffffffffffffffff") == 0);
	}
	{
		g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_close_channel(b.modem, ch, NULL, cp_test_async_done, NULL));

		CP_CHECK(cp_at_modem_close_channel_finish(b.modem, r, &error));
		g_clear_error(&error);
	}
	/* a closed channel is refused by the module */
	{
		g_autofree char *sel = g_strdup_printf("%02XA4000C026F07", ch);

		s = apdu_hex(&b, ch, sel);
		CP_CHECK(strcmp(s, "error:modem") == 0);
	}

	/* APN: read, set, read back; a bad one never leaves */
	{
		g_autoptr(GAsyncResult) r1 = SYNC(cp_at_modem_get_apn(b.modem, 1, NULL, cp_test_async_done, NULL));
		g_autoptr(GAsyncResult) r2 = NULL, r3 = NULL, r4 = NULL;
		g_autofree char *apn2 = NULL, *dumped = NULL, *count = NULL, *count2 = NULL;

		apn = cp_at_modem_get_apn_finish(b.modem, r1, &error);
		CP_CHECK(apn && strcmp(apn, "internet") == 0);
		g_clear_error(&error);
		r2 = SYNC(cp_at_modem_set_apn(b.modem, 1, "IPV4V6", "iot.cellprov-test", NULL, cp_test_async_done, NULL));
		CP_CHECK(cp_at_modem_set_apn_finish(b.modem, r2, &error));
		g_clear_error(&error);
		dumped = cp_test_sim_dump_get(&b.sim, "apn");
		CP_CHECK(g_strcmp0(dumped, "iot.cellprov-test") == 0);
		r3 = SYNC(cp_at_modem_get_apn(b.modem, 1, NULL, cp_test_async_done, NULL));
		apn2 = cp_at_modem_get_apn_finish(b.modem, r3, &error);
		CP_CHECK(apn2 && strcmp(apn2, "iot.cellprov-test") == 0);
		g_clear_error(&error);
		count = cp_test_sim_dump_get(&b.sim, "at-commands");
		r4 = SYNC(cp_at_modem_set_apn(b.modem, 1, "IP", "bad\",\"apn", NULL, cp_test_async_done, NULL));
		CP_CHECK(!cp_at_modem_set_apn_finish(b.modem, r4, &error));
		CP_CHECK_INT(code_of(error), CP_ERR_APN);
		g_clear_error(&error);
		count2 = cp_test_sim_dump_get(&b.sim, "at-commands");
		CP_CHECK(count && g_strcmp0(count, count2) == 0);
	}

	/* reset: the port goes, comes back (maybe elsewhere), the module
	 * registers with the new IMSI */
	{
		g_autoptr(GAsyncResult) r = SYNC(cp_at_modem_set_functionality(b.modem, 1, TRUE, NULL, cp_test_async_done, NULL));
		g_autofree char *resets = NULL, *new_imsi = NULL;

		CP_CHECK(cp_at_modem_set_functionality_finish(b.modem, r, &error));
		g_clear_error(&error);
		/* the tty hangs up under the port */
		for (guint i = 0; i < 300 && !cp_at_port_is_gone(b.port); i++)
			g_main_context_iteration(NULL, FALSE), g_usleep(10000);
		CP_CHECK(cp_at_port_is_gone(b.port));
		{
			g_autofree char *late = get_imsi(&b, &error);

			CP_CHECK(!late);
			CP_CHECK_INT(code_of(error), CP_ERR_MODEM_GONE);
			g_clear_error(&error);
		}
		CP_CHECK(cp_test_wait_path(reset_path, TRUE, 5000));
		if (reset_path != b.sim.pty)
			CP_CHECK(!g_file_test(b.sim.pty, G_FILE_TEST_EXISTS));
		CP_CHECK(bench_open(&b, reset_path));
		if (!b.modem) {
			bench_stop(&b);
			return;
		}
		resets = cp_test_sim_dump_get(&b.sim, "resets");
		CP_CHECK(g_strcmp0(resets, "1") == 0);
		g_free(iccid);
		iccid = get_iccid(&b, &error);
		CP_CHECK(iccid && strcmp(iccid, ICCID) == 0);   /* the same card */
		g_clear_error(&error);
		CP_CHECK(wait_registered(&b, 5000, &error));
		if (error)
			fprintf(stderr, "registration: %s\n", error->message);
		g_clear_error(&error);
		CP_CHECK(cp_at_modem_get_registration(b.modem, CP_AT_REG_CEREG) != NULL);
		new_imsi = get_imsi(&b, &error);
		CP_CHECK(new_imsi && strcmp(new_imsi, NEW_IMSI) == 0);
		g_clear_error(&error);
	}
	bench_stop(&b);
}

/* ---- faults ------------------------------------------------------------ */

/* A module that stops answering: CP_ERR_MODEM_TIMEOUT, and the port
 * works again for the next command. */
static void
test_silence(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;
	g_autofree char *s = NULL, *iccid = NULL;
	gint64 t0;

	bench_start(&b, "--no-response +CSIM:1", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	cp_at_port_set_timeout(b.port, 300);
	t0 = g_get_monotonic_time();
	s = apdu_hex(&b, 0, "00A4000C023F00");
	CP_CHECK(strcmp(s, "error:modem-timeout") == 0);
	CP_CHECK(g_get_monotonic_time() - t0 >= 290 * 1000);
	iccid = get_iccid(&b, &error);
	CP_CHECK(iccid && strcmp(iccid, ICCID) == 0);
	bench_stop(&b);
}

static gboolean
cancel_cb(gpointer data)
{
	g_cancellable_cancel(data);
	return G_SOURCE_REMOVE;
}

/* Cancelling: the call fails at once with G_IO_ERROR_CANCELLED; the
 * command already sent keeps the port until its timeout, then the next
 * one goes. A registration wait cancels the same way. */
static void
test_cancel(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;
	g_autoptr(GCancellable) c = g_cancellable_new();
	g_autoptr(GCancellable) c2 = g_cancellable_new();
	g_autoptr(GAsyncResult) r = NULL, r2 = NULL;
	g_autoptr(GBytes) resp = NULL;
	g_autofree char *iccid = NULL;
	static const guint8 sel[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00 };
	g_autoptr(GBytes) cmd = g_bytes_new_static(sel, sizeof(sel));
	gint64 t0;

	bench_start(&b, "--no-response +CSIM:1 --registration-delay=5000", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	cp_at_port_set_timeout(b.port, 1000);
	t0 = g_get_monotonic_time();
	g_timeout_add(50, cancel_cb, c);
	r = SYNC(cp_at_modem_apdu(b.modem, 0, cmd, c, cp_test_async_done, NULL));
	resp = cp_at_modem_apdu_finish(b.modem, r, &error);
	CP_CHECK(!resp);
	CP_CHECK(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
	CP_CHECK(g_get_monotonic_time() - t0 < 900 * 1000);
	g_clear_error(&error);
	iccid = get_iccid(&b, &error);
	CP_CHECK(iccid && strcmp(iccid, ICCID) == 0);
	g_clear_error(&error);

	g_timeout_add(100, cancel_cb, c2);
	r2 = SYNC(cp_at_modem_wait_registered(b.modem, 3000, c2, cp_test_async_done, NULL));
	CP_CHECK(!cp_at_modem_wait_registered_finish(b.modem, r2, &error));
	CP_CHECK(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
	bench_stop(&b);
}

/* A line longer than the parser's bound: CP_ERR_MODEM saying so, and the
 * port goes on with the next command. */
static void
test_overlong(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) resp = NULL;
	g_autofree char *iccid = NULL;

	bench_start(&b, "--garbage +CSIM:1", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	resp = apdu(&b, 0, "00A4000C023F00", &error);
	CP_CHECK(!resp);
	CP_CHECK_INT(code_of(error), CP_ERR_MODEM);
	CP_CHECK(error && strstr(error->message, "longer than"));
	g_clear_error(&error);
	iccid = get_iccid(&b, &error);
	CP_CHECK(iccid && strcmp(iccid, ICCID) == 0);
	bench_stop(&b);
}

/* A module that vanishes mid-flow: CP_ERR_MODEM_GONE for the command in
 * flight and for every one after it. */
static void
test_vanish(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;
	g_autofree char *s1 = NULL, *s2 = NULL, *imsi = NULL;
	guint ch;

	bench_start(&b, "--vanish +CGLA:2", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	ch = open_channel(&b, &error);
	CP_CHECK(ch >= 1);
	s1 = apdu_hex(&b, ch, ch == 1 ? "01A4000C026F07" : "02A4000C026F07");
	CP_CHECK(strcmp(s1, "9000") == 0);
	s2 = apdu_hex(&b, ch, ch == 1 ? "01B0000009" : "02B0000009");
	CP_CHECK(strcmp(s2, "error:modem-gone") == 0);
	imsi = get_imsi(&b, &error);
	CP_CHECK(!imsi);
	CP_CHECK_INT(code_of(error), CP_ERR_MODEM_GONE);
	bench_stop(&b);
}

/* An error result: CP_ERR_MODEM naming it; no card: CP_ERR_CARD_ABSENT
 * never comes from a plain error. */
static void
test_error(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;
	guint ch;

	bench_start(&b, "--fail +CCHO:1", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	ch = open_channel(&b, &error);
	CP_CHECK_INT(ch, 0);
	CP_CHECK_INT(code_of(error), CP_ERR_MODEM);
	CP_CHECK(error && strstr(error->message, "+CME ERROR") && strstr(error->message, "100"));
	g_clear_error(&error);
	ch = open_channel(&b, &error);   /* only the first one failed */
	CP_CHECK(ch >= 1);
	bench_stop(&b);
}

/* No card: +CME ERROR: 10 is CP_ERR_CARD_ABSENT, for the PIN state and
 * for the ICCID (not a fall through the vendors' commands). */
static void
test_no_card(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) r = NULL;
	g_autofree char *pin = NULL, *iccid = NULL;

	bench_start(&b, "--no-card", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	r = SYNC(cp_at_modem_get_pin_state(b.modem, NULL, cp_test_async_done, NULL));
	pin = cp_at_modem_get_pin_state_finish(b.modem, r, &error);
	CP_CHECK(!pin);
	CP_CHECK_INT(code_of(error), CP_ERR_CARD_ABSENT);
	g_clear_error(&error);
	iccid = get_iccid(&b, &error);
	CP_CHECK(!iccid);
	CP_CHECK_INT(code_of(error), CP_ERR_CARD_ABSENT);
	bench_stop(&b);
}

/* Registration denied: CP_ERR_REG_DENIED with the module's reject cause
 * (+CEREG n=3): #8 for a subscriber the network does not know, #3 after
 * an authentication reject. */
static void
test_denied(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;

	bench_start(&b, "", FALSE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	CP_CHECK(!wait_registered(&b, 3000, &error));
	CP_CHECK_INT(code_of(error), CP_ERR_REG_DENIED);
	if (error)
		fprintf(stderr, "denied: %s\n", error->message);
	CP_CHECK(error && strstr(error->message, "EMM cause #8"));
	g_clear_error(&error);
	bench_stop(&b);

	bench_start(&b, "--deny --model sara-r4", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	CP_CHECK(!wait_registered(&b, 3000, &error));
	CP_CHECK_INT(code_of(error), CP_ERR_REG_DENIED);
	CP_CHECK(error && strstr(error->message, "#3"));
	bench_stop(&b);
}

/* Not registered in time: CP_ERR_REG_TIMEOUT; later it registers, and a
 * URC (not a read) ends the next wait. */
static void
test_late(void)
{
	Bench b;
	g_autoptr(GError) error = NULL;

	bench_start(&b, "--registration-delay=2000", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	CP_CHECK(!wait_registered(&b, 200, &error));
	CP_CHECK_INT(code_of(error), CP_ERR_REG_TIMEOUT);
	g_clear_error(&error);
	CP_CHECK(wait_registered(&b, 10000, &error));
	g_clear_error(&error);
	CP_CHECK(cp_at_port_get_n_urcs(b.port) >= 1);
	bench_stop(&b);
}

/* A storm of 1000 URCs before an answer line and 1000 between it and
 * its OK: the answer comes through whole, every URC is seen. */
static void
test_storm(void)
{
	Bench b;
	g_autofree char *s = NULL;

	bench_start(&b, "--urc-storm 1000", TRUE);
	CP_CHECK(bench_open(&b, b.sim.pty));
	s = apdu_hex(&b, 0, "00A4000C023F00");
	CP_CHECK(strcmp(s, "9000") == 0);
	CP_CHECK(cp_at_port_get_n_urcs(b.port) >= 2000);
	bench_stop(&b);
}

int
main(int argc, char **argv)
{
	sim_path = g_getenv("CP_AT_SIM");
	if (!sim_path)
		return cp_test_missing("CP_AT_SIM is not set (run through meson test)");

	/* echo on (the V.250 default and the simulator's), each module's dialect */
	run_flow("bg96, echo on", "", NULL);
	run_flow("sara-r4", "--model sara-r4", NULL);
	run_flow("sim7600", "--model sim7600", NULL);
	run_flow("rm500q", "--model rm500q", NULL);
	run_flow("echo off", "--no-echo", NULL);
	run_flow("split in 3-byte writes", "--split 3", NULL);
	run_flow("URCs in the middle of every answer", "--urc-storm 3", NULL);
	run_flow("split and URCs", "--split 7 --urc-storm 2", NULL);
	run_flow("T=0 procedure bytes (61xx, 6Cxx)", "--t0", NULL);
	run_flow("T=0, split, URCs", "--t0 --split 5 --urc-storm 1 --model sim7600", NULL);
	run_flow("re-enumerates under a new name", "--reenumerate @ttyUSB5", "pty2");
	test_silence();
	test_vanish();
	test_overlong();
	test_cancel();
	test_error();
	test_no_card();
	test_denied();
	test_late();
	test_storm();
	return cp_test_done("test-at-modem");
}
