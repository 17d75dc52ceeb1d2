/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-mbim against cp-mbim-sim, with real libmbim and a real mbim-proxy in
 * between (in a network namespace of its own, so the @mbim-proxy socket is
 * this test's). Card and modem state are read back from the simulator's
 * dump, never through the code under test.
 */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "cp-mbim.h"
#include "cp-test.h"
#include "cp-test-sim.h"

#define OLD_IMSI "001010123456789"
#define OLD_K "000102030405060708090a0b0c0d0e0f"
#define OLD_OPC "0f0e0d0c0b0a09080706050403020100"
#define NEW_IMSI "001010000000001"
#define ICCID "8988211000000000017"
#define ADM1 "12345678"

static const guint8 usim_aid[] = { 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02 };

static const char *sim_path;
static const char *proxy_path;
static GPid proxy_pid;

typedef struct {
	CpTestSim sim;
	const char *node;   /* the cdc-wdm node */
} Bench;

/* ---- the simulator ----------------------------------------------------------- */

static void
assert_dump(Bench *b, const char *key, const char *want)
{
	g_autofree char *v = cp_test_sim_dump_get(&b->sim, key);

	g_assert_cmpstr(v, ==, want);
}

static void
bench_start(Bench *b, const char *const *extra)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();

	g_ptr_array_add(args, "--reset-delay=100");
	g_ptr_array_add(args, "--registration-delay=50");
	for (guint i = 0; extra && extra[i]; i++)
		g_ptr_array_add(args, (char *)extra[i]);
	g_ptr_array_add(args, NULL);
	memset(b, 0, sizeof(*b));
	/* the network knows the new IMSI with the card's key, not the old one */
	cp_test_sim_start(&b->sim, sim_path, "cdc-wdm0", NEW_IMSI " " OLD_K " " OLD_OPC " 000000000020\n",
			  (const char *const *)args->pdata);
	b->node = b->sim.pty;
}

static void
bench_stop(Bench *b)
{
	cp_test_sim_stop(&b->sim);
}

/* ---- running the async calls -------------------------------------------------- */

static CpMbim *
open_modem(const char *node, guint timeout, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;

	cp_mbim_open_async(node, timeout, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_open_finish(r, error);
}

static void
close_modem(CpMbim *m)
{
	g_autoptr(GAsyncResult) r = NULL;
	g_autoptr(GError) e = NULL;

	cp_mbim_close_async(m, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	g_assert_true(cp_mbim_close_finish(m, r, &e));
	g_assert_no_error(e);
	g_object_unref(m);
}

static GBytes *
apdu(CpMbim *m, guint ch, const char *hex, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;
	g_autoptr(GBytes) cmd = NULL;
	guint8 buf[300];
	size_t n = cp_test_unhex(hex, buf, sizeof(buf));

	cmd = g_bytes_new(buf, n);
	cp_mbim_apdu_async(m, ch, cmd, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_apdu_finish(m, r, error);
}

/* The response as hex, SW included. */
static char *
apdu_hex(CpMbim *m, guint ch, const char *hex)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(GBytes) resp = apdu(m, ch, hex, &e);
	gsize len;
	const guint8 *d;
	GString *s = g_string_new(NULL);

	g_assert_no_error(e);
	d = g_bytes_get_data(resp, &len);
	for (gsize i = 0; i < len; i++)
		g_string_append_printf(s, "%02X", d[i]);
	return g_string_free(s, FALSE);
}

static guint
open_channel(CpMbim *m, const guint8 *aid, gsize len, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;

	cp_mbim_open_channel_async(m, aid, len, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_open_channel_finish(m, r, error);
}

static gboolean
close_channel(CpMbim *m, guint ch, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;

	cp_mbim_close_channel_async(m, ch, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_close_channel_finish(m, r, error);
}

static gboolean
subscriber(CpMbim *m, char **iccid, char **imsi, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;

	cp_mbim_subscriber_async(m, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_subscriber_finish(m, r, iccid, imsi, error);
}

static char *
get_apn(CpMbim *m)
{
	g_autoptr(GAsyncResult) r = NULL;
	g_autoptr(GError) e = NULL;
	char *apn;

	cp_mbim_get_apn_async(m, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	apn = cp_mbim_get_apn_finish(m, r, &e);
	g_assert_no_error(e);
	return apn;
}

static gboolean
set_apn(CpMbim *m, const char *apn, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;

	cp_mbim_set_apn_async(m, apn, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_set_apn_finish(m, r, error);
}

static gboolean
reset(CpMbim *m, gboolean *reenumerates, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;

	cp_mbim_reset_async(m, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_reset_finish(m, r, reenumerates, error);
}

static CpMbimRegistration *
wait_registered(CpMbim *m, guint ms, GError **error)
{
	g_autoptr(GAsyncResult) r = NULL;

	cp_mbim_wait_registered_async(m, ms, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	return cp_mbim_wait_registered_finish(m, r, error);
}

static void
removed_cb(CpMbim *m, gpointer data)
{
	(*(guint *)data)++;
}

/* Until the path exists again (the module back on the bus), at most 5 s. */
static void
wait_node(const char *path)
{
	g_assert_true(cp_test_wait_path(path, TRUE, 5000));
}

/* ---- tests ----------------------------------------------------------------- */

/* Open, ICCID, channel on the USIM, select/read/verify ADM1/update, close,
 * APN, reset (the module reboots and comes back), registration, IMSI. */
static void
test_flow(void)
{
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autofree char *iccid = NULL, *imsi = NULL, *apn = NULL, *s = NULL;
	g_autoptr(CpMbimRegistration) reg = NULL;
	g_autoptr(GAsyncResult) r = NULL;
	g_autoptr(GBytes) atr = NULL;
	gboolean reenum = FALSE;
	guint removed = 0, ch;
	CpMbim *m;

	bench_start(&b, NULL);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	g_assert_true(cp_mbim_has_device_reset(m));
	g_signal_connect(m, "removed", G_CALLBACK(removed_cb), &removed);

	g_assert_true(subscriber(m, &iccid, &imsi, &e));
	g_assert_cmpstr(iccid, ==, ICCID);
	g_assert_cmpstr(imsi, ==, OLD_IMSI);

	cp_mbim_atr_async(m, NULL, cp_test_async_done, NULL);
	r = cp_test_async_wait();
	atr = cp_mbim_atr_finish(m, r, &e);
	g_assert_no_error(e);
	g_assert_cmpuint(g_bytes_get_size(atr), >, 2);
	g_assert_cmphex(((const guint8 *)g_bytes_get_data(atr, NULL))[0], ==, 0x3B);

	ch = open_channel(m, usim_aid, sizeof(usim_aid), &e);
	g_assert_no_error(e);
	g_assert_cmpuint(ch, >=, 1);
	/* the CLA says channel 0: the modem puts the channel in */
	s = apdu_hex(m, ch, "00A4000C026F07");
	g_assert_cmpstr(s, ==, "9000");
	g_free(s);
	s = apdu_hex(m, ch, "00B0000009");
	g_assert_cmpstr(s, ==, "0809101010325476989000");
	g_free(s);
	/* without ADM1 the update is refused */
	s = apdu_hex(m, ch, "00D6000009080910100000000010");
	g_assert_cmpstr(s, ==, "6982");
	g_free(s);
	s = apdu_hex(m, ch, "00200000083132333435363738");
	g_assert_cmpstr(s, ==, "6A88");   /* P2 00 is not ADM1 */
	g_free(s);
	s = apdu_hex(m, ch, "0020000A083132333435363738");
	g_assert_cmpstr(s, ==, "9000");
	g_free(s);
	s = apdu_hex(m, ch, "00D6000009080910100000000010");
	g_assert_cmpstr(s, ==, "9000");
	g_free(s);
	assert_dump(&b, "ef-imsi", "080910100000000010");
	g_assert_true(close_channel(m, ch, &e));
	g_assert_no_error(e);
	/* closed: the channel takes no more APDUs */
	s = apdu_hex(m, ch, "00B0000009");
	g_assert_cmpstr(s, ==, "6881");
	g_free(s);
	s = NULL;

	/* the modem still reports the IMSI it read at its start */
	g_free(imsi);
	imsi = NULL;
	g_assert_true(subscriber(m, NULL, &imsi, &e));
	g_assert_cmpstr(imsi, ==, OLD_IMSI);

	apn = get_apn(m);
	g_assert_cmpstr(apn, ==, "internet");
	g_assert_true(set_apn(m, "iot.example-1.net", &e));
	g_assert_no_error(e);
	assert_dump(&b, "apn", "iot.example-1.net");
	g_free(apn);
	apn = get_apn(m);
	g_assert_cmpstr(apn, ==, "iot.example-1.net");
	assert_dump(&b, "contexts", "1");

	g_assert_true(reset(m, &reenum, &e));
	g_assert_no_error(e);
	g_assert_true(reenum);
	while (!removed)
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(cp_mbim_is_present(m));
	/* a gone device fails at once, and says so */
	g_assert_false(subscriber(m, NULL, NULL, &e));
	g_assert_error(e, CP_ERROR, CP_ERR_MODEM_GONE);
	g_clear_error(&e);
	g_object_unref(m);

	assert_dump(&b, "resets", "1");
	g_usleep(50000);
	wait_node(b.node);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	assert_dump(&b, "enumerations", "2");
	reg = wait_registered(m, 5000, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(reg->plmn, ==, "00101");
	g_assert_false(reg->roaming);
	assert_dump(&b, "registration", "home");
	g_free(imsi);
	imsi = NULL;
	g_assert_true(subscriber(m, NULL, &imsi, &e));
	g_assert_cmpstr(imsi, ==, NEW_IMSI);
	g_free(apn);
	apn = get_apn(m);
	g_assert_cmpstr(apn, ==, "iot.example-1.net");
	close_modem(m);
	/* ADM1 never reached a log line, in either spelling */
	g_assert_null(strstr(cp_test_log_text(), ADM1));
	g_assert_null(strstr(cp_test_log_text(), "3132333435363738"));
	bench_stop(&b);
}

/* Without the MS device reset: radio off and on; the same CpMbim goes on
 * and the modem has read the card again. */
static void
test_radio_reset(void)
{
	static const char *const args[] = { "--no-device-reset", "--imsi=" NEW_IMSI, "--radio-off", NULL };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autoptr(CpMbimRegistration) reg = NULL;
	gboolean reenum = TRUE;
	CpMbim *m;

	bench_start(&b, args);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	g_assert_false(cp_mbim_has_device_reset(m));
	/* radio off: nothing to wait for but the timeout */
	reg = wait_registered(m, 300, &e);
	g_assert_error(e, CP_ERROR, CP_ERR_REG_TIMEOUT);
	g_assert_nonnull(strstr(e->message, "deregistered"));
	g_clear_error(&e);
	g_assert_true(reset(m, &reenum, &e));
	g_assert_no_error(e);
	g_assert_false(reenum);
	assert_dump(&b, "radio", "on");
	reg = wait_registered(m, 5000, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(reg->plmn, ==, "00101");
	assert_dump(&b, "enumerations", "1");
	close_modem(m);
	bench_stop(&b);
}

/* The module comes back under another node after its reset. */
static void
test_reenumerate(void)
{
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autofree char *imsi = NULL;
	g_autofree char *other = NULL;
	g_autofree char *arg = NULL;
	const char *args[2] = { NULL, NULL };
	gboolean reenum = FALSE;
	guint removed = 0;
	CpMbim *m;

	/* the new name, in a directory of its own made before the start */
	{
		g_autofree char *d = g_dir_make_tmp("cp-mbim-node-XXXXXX", NULL);

		g_assert_nonnull(d);
		other = g_build_filename(d, "cdc-wdm1", NULL);
	}
	arg = g_strconcat("--reenumerate=", other, NULL);
	args[0] = arg;
	bench_start(&b, args);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	g_signal_connect(m, "removed", G_CALLBACK(removed_cb), &removed);
	g_assert_true(reset(m, &reenum, &e));
	g_assert_true(reenum);
	while (!removed)
		g_main_context_iteration(NULL, TRUE);
	g_object_unref(m);
	wait_node(other);
	g_assert_false(g_file_test(b.node, G_FILE_TEST_EXISTS));
	/* the old name is gone for good */
	m = open_modem(b.node, 2, &e);
	g_assert_null(m);
	g_assert_error(e, CP_ERROR, CP_ERR_MODEM_GONE);
	g_clear_error(&e);
	m = open_modem(other, 5, &e);
	g_assert_no_error(e);
	g_assert_true(subscriber(m, NULL, &imsi, &e));
	g_assert_cmpstr(imsi, ==, OLD_IMSI);
	assert_dump(&b, "enumerations", "2");
	close_modem(m);
	bench_stop(&b);
	{
		g_autofree char *d = g_path_get_dirname(other);

		g_unlink(other);
		g_rmdir(d);
	}
}

/* The network rejects: the cause comes through. The card's IMSI is not a
 * subscriber (cause 2), or the network denies everyone (--deny 11). */
static void
test_denied(gconstpointer data)
{
	const char *deny = data;
	const char *args[] = { deny, NULL };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autoptr(CpMbimRegistration) reg = NULL;
	CpMbim *m;

	bench_start(&b, deny ? args : NULL);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	reg = wait_registered(m, 5000, &e);
	g_assert_null(reg);
	g_assert_error(e, CP_ERROR, CP_ERR_REG_DENIED);
	if (deny)
		g_assert_nonnull(strstr(e->message, "plmn-not-allowed (cause 11)"));
	else
		g_assert_nonnull(strstr(e->message, "imsi-unknown-in-hlr (cause 2)"));
	assert_dump(&b, "registration", "denied");
	close_modem(m);
	bench_stop(&b);
}

/* Input the module refuses before anything goes out, and a card that has
 * no such application. */
static void
test_bad_input(void)
{
	/* 1009: no application of the card (1002 is the USIM, 1004 the ISIM) */
	static const guint8 bad_aid[] = { 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x09 };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autoptr(GBytes) resp = NULL;
	CpMbim *m;

	g_assert_true(cp_mbim_apn_valid("internet"));
	g_assert_true(cp_mbim_apn_valid("a-b.c1"));
	g_assert_false(cp_mbim_apn_valid(""));
	g_assert_false(cp_mbim_apn_valid("a..b"));
	g_assert_false(cp_mbim_apn_valid(".a"));
	g_assert_false(cp_mbim_apn_valid("a."));
	g_assert_false(cp_mbim_apn_valid("bad apn"));

	bench_start(&b, NULL);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	g_assert_false(set_apn(m, "not an apn!", &e));
	g_assert_error(e, CP_ERROR, CP_ERR_APN);
	g_clear_error(&e);
	assert_dump(&b, "apn", "internet");
	g_assert_cmpuint(open_channel(m, usim_aid, 0, &e), ==, 0);
	g_assert_error(e, CP_ERROR, CP_ERR_ARGUMENT);
	g_clear_error(&e);
	g_assert_cmpuint(open_channel(m, bad_aid, sizeof(bad_aid), &e), ==, 0);
	g_assert_error(e, CP_ERROR, CP_ERR_APDU);
	g_assert_nonnull(strstr(e->message, "6A82"));
	g_clear_error(&e);
	resp = apdu(m, 1, "00B0", &e);
	g_assert_null(resp);
	g_assert_error(e, CP_ERROR, CP_ERR_ARGUMENT);
	g_clear_error(&e);
	g_assert_false(close_channel(m, 3, &e));
	g_assert_error(e, CP_ERROR, CP_ERR_APDU);
	g_clear_error(&e);
	close_modem(m);
	g_assert_null(open_modem(NULL, 5, &e));
	g_assert_error(e, CP_ERROR, CP_ERR_ARGUMENT);
	g_clear_error(&e);
	bench_stop(&b);
}

/* --fail: the modem answers FAILURE to the second APDU. */
static void
test_fault_status(void)
{
	static const char *const args[] = { "--fail=ms-uicc-low-level-access:4:2", NULL };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autoptr(GBytes) resp = NULL;
	g_autofree char *s = NULL;
	CpMbim *m;
	guint ch;

	bench_start(&b, args);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	ch = open_channel(m, usim_aid, sizeof(usim_aid), &e);
	g_assert_no_error(e);
	s = apdu_hex(m, ch, "00A4000C026F07");
	g_assert_cmpstr(s, ==, "9000");
	resp = apdu(m, ch, "00B0000009", &e);
	g_assert_null(resp);
	g_assert_error(e, CP_ERROR, CP_ERR_MODEM);
	g_assert_nonnull(strstr(e->message, "APDU"));
	g_assert_nonnull(strstr(e->message, "status Failure (2)"));
	g_clear_error(&e);
	/* only the second: the third goes through */
	g_free(s);
	s = apdu_hex(m, ch, "00B0000009");
	g_assert_cmpstr(s, ==, "0809101010325476989000");
	close_modem(m);
	bench_stop(&b);
}

/* --no-response: the request times out, the module goes on. */
static void
test_fault_no_response(void)
{
	static const char *const args[] = { "--no-response=basic-connect:2:1", NULL };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autofree char *iccid = NULL;
	gint64 t0;
	CpMbim *m;

	bench_start(&b, args);
	m = open_modem(b.node, 1, &e);
	g_assert_no_error(e);
	t0 = g_get_monotonic_time();
	g_assert_false(subscriber(m, &iccid, NULL, &e));
	g_assert_error(e, CP_ERROR, CP_ERR_MODEM_TIMEOUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, G_USEC_PER_SEC / 2);
	g_clear_error(&e);
	g_assert_true(subscriber(m, &iccid, NULL, &e));
	g_assert_cmpstr(iccid, ==, ICCID);
	close_modem(m);
	bench_stop(&b);
}

/* --vanish: the module drops off the bus at the channel opening. */
static void
test_fault_vanish(void)
{
	static const char *const args[] = { "--vanish=ms-uicc-low-level-access:2", NULL };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autoptr(CpMbimRegistration) reg = NULL;
	guint removed = 0;
	CpMbim *m;

	bench_start(&b, args);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	g_signal_connect(m, "removed", G_CALLBACK(removed_cb), &removed);
	g_assert_cmpuint(open_channel(m, usim_aid, sizeof(usim_aid), &e), ==, 0);
	g_assert_error(e, CP_ERROR, CP_ERR_MODEM_GONE);
	g_clear_error(&e);
	while (!removed)
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(cp_mbim_is_present(m));
	g_assert_false(g_file_test(b.node, G_FILE_TEST_EXISTS));
	assert_dump(&b, "node", "");
	reg = wait_registered(m, 1000, &e);
	g_assert_error(e, CP_ERROR, CP_ERR_MODEM_GONE);
	g_clear_error(&e);
	g_object_unref(m);
	waitpid(b.sim.pid, NULL, 0);
	g_spawn_close_pid(b.sim.pid);
	b.sim.pid = 0;
	bench_stop(&b);
}

/* The device vanishes while a registration wait runs. */
static void
test_vanish_during_wait(void)
{
	static const char *const args[] = { "--radio-off", NULL };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autoptr(GAsyncResult) r = NULL;
	CpMbimRegistration *reg;
	CpMbim *m;

	bench_start(&b, args);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	cp_mbim_wait_registered_async(m, 10000, NULL, cp_test_async_done, NULL);
	for (guint i = 0; i < 20; i++)
		g_main_context_iteration(NULL, FALSE);
	kill(b.sim.pid, SIGKILL);
	r = cp_test_async_wait();
	reg = cp_mbim_wait_registered_finish(m, r, &e);
	g_assert_null(reg);
	g_assert_error(e, CP_ERROR, CP_ERR_MODEM_GONE);
	g_object_unref(m);
	bench_stop(&b);
}

/* A wait cancelled ends at once with G_IO_ERROR_CANCELLED. */
static void
test_cancel_wait(void)
{
	static const char *const args[] = { "--radio-off", NULL };
	Bench b;
	g_autoptr(GError) e = NULL;
	g_autoptr(GAsyncResult) r = NULL;
	g_autoptr(GCancellable) c = g_cancellable_new();
	CpMbimRegistration *reg;
	CpMbim *m;

	bench_start(&b, args);
	m = open_modem(b.node, 5, &e);
	g_assert_no_error(e);
	cp_mbim_wait_registered_async(m, 10000, c, cp_test_async_done, NULL);
	g_cancellable_cancel(c);
	r = cp_test_async_wait();
	reg = cp_mbim_wait_registered_finish(m, r, &e);
	g_assert_null(reg);
	g_assert_error(e, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	close_modem(m);
	bench_stop(&b);
}

static void
stop_proxy(void)
{
	if (proxy_pid) {
		kill(proxy_pid, SIGTERM);
		waitpid(proxy_pid, NULL, 0);
		proxy_pid = 0;
	}
}

/* Until @mbim-proxy takes connections, at most 5 s. */
static gboolean
wait_proxy(void)
{
	for (guint i = 0; i < 500; i++) {
		g_autoptr(GSocketAddress) a = g_unix_socket_address_new_with_type("mbim-proxy", -1,
										  G_UNIX_SOCKET_ADDRESS_ABSTRACT);
		g_autoptr(GSocket) s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
						    G_SOCKET_PROTOCOL_DEFAULT, NULL);

		if (s && g_socket_connect(s, a, NULL, NULL))
			return TRUE;
		g_usleep(10000);
	}
	return FALSE;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) e = NULL;
	const char *proxy_argv[3];
	int rc;

	g_test_init(&argc, &argv, NULL);
	cp_test_log_capture();
	/* libmbim warns when the port breaks, which is a case under test */
	g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
	sim_path = g_getenv("CP_MBIM_SIM");
	proxy_path = g_getenv("CP_MBIM_PROXY");
	if (!sim_path) {
		g_printerr("CP_MBIM_SIM is not set\n");
		return 1;
	}
	if (!proxy_path || !*proxy_path)
		return cp_test_missing("mbim-proxy (Debian package libmbim-proxy) is not installed");
	/* a private network namespace gives this test its own @mbim-proxy */
	if (unshare(CLONE_NEWNET) != 0)
		return cp_test_missing("no network namespace (unshare -n) for a private @mbim-proxy");
	/* Our own proxy, ended at the end (and by PR_SET_PDEATHSIG if the
	 * test dies); libmbim would spawn one that outlives the test. It
	 * must not exit while idle between two tests. */
	proxy_argv[0] = proxy_path;
	proxy_argv[1] = "--no-exit";
	proxy_argv[2] = NULL;
	if (!g_spawn_async(NULL, (char **)proxy_argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, cp_test_child_setup, NULL,
			   &proxy_pid, &e)) {
		g_printerr("mbim-proxy: %s\n", e->message);
		return 1;
	}
	if (!wait_proxy()) {
		stop_proxy();
		g_printerr("mbim-proxy did not come up\n");
		return 1;
	}

	g_test_add_func("/mbim/flow", test_flow);
	g_test_add_func("/mbim/radio-reset", test_radio_reset);
	g_test_add_func("/mbim/reenumerate", test_reenumerate);
	g_test_add_data_func("/mbim/denied-unknown-subscriber", NULL, test_denied);
	g_test_add_data_func("/mbim/denied-plmn-not-allowed", "--deny=11", test_denied);
	g_test_add_func("/mbim/bad-input", test_bad_input);
	g_test_add_func("/mbim/fault-status", test_fault_status);
	g_test_add_func("/mbim/fault-no-response", test_fault_no_response);
	g_test_add_func("/mbim/fault-vanish", test_fault_vanish);
	g_test_add_func("/mbim/vanish-during-wait", test_vanish_during_wait);
	g_test_add_func("/mbim/cancel-wait", test_cancel_wait);
	rc = g_test_run();
	stop_proxy();
	return rc;
}
