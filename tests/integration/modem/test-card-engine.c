/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The card engine through the smallest driver a protocol could give: a
 * transport with the basic channel only (as AT+CSIM), no ICCID request, no
 * IMSI request, no APN, no registration, and a reset that power-cycles the
 * card. The transport is the simulators' USIM model (tests/sim/card), in
 * process. What the engine must then do itself: SELECT ADF.USIM by AID on
 * channel 0, read EF.ICCID with APDUs, read EF.IMSI through the card for
 * the final check, and roll back and restore as with every driver.
 */
#include <string.h>

#include "cp-modem-driver.h"
#include "cp-sim-usim.h"

#define ADM1 "12345678"
#define ICCID "8988211000000000017"
#define OLD_IMSI "001010000000001"
#define NEW_IMSI "001010000000123"

static const guint8 old_k[16] = { 0x01 };
static const guint8 old_opc[16] = { 0x02 };

typedef struct {
	CpSimUsim *usim;
	GMainLoop *loop;
	guint apdus;
	guint updates;
	guint fail_update;               /* answer this UPDATE (1-based) with 6F00 */
	guint resets;
	gboolean other_channel;          /* a command went elsewhere than channel 0 */
	guint phases;
	CpModemPhase last_phase;
	GBytes *backup;
	CpModemResult *result;
	GError *error;
} Bench;

static Bench *bench;

/* ---- the driver -------------------------------------------------------- */

typedef struct {
	CpModemRun *run;
	GBytes *resp;
} Answer;

static gboolean
answer_cb(gpointer data)
{
	Answer *a = data;

	cp_modem_run_apdu_done(a->run, a->resp, NULL);
	g_free(a);
	return G_SOURCE_REMOVE;
}

static gboolean
done_cb(gpointer data)
{
	cp_modem_run_done(data, NULL);
	return G_SOURCE_REMOVE;
}

static void
t_open(CpModemRun *run)
{
	run->port = bench->usim;
	g_idle_add(done_cb, run);
}

static void
t_close(CpModemRun *run)
{
	run->port = NULL;
}

static void
t_card_status(CpModemRun *run)
{
	g_idle_add(done_cb, run);
}

static void
t_transmit(CpModemRun *run, guint channel, const guint8 *apdu, gsize len)
{
	GByteArray *out = g_byte_array_new();
	Answer *a = g_new0(Answer, 1);

	bench->apdus++;
	if (channel != 0 || (apdu[0] & 0x03) != 0)
		bench->other_channel = TRUE;
	if (len >= 2 && apdu[1] == 0xD6 && ++bench->updates == bench->fail_update) {
		static const guint8 fail[] = { 0x6F, 0x00 };

		g_byte_array_append(out, fail, 2);
	} else {
		cp_sim_usim_apdu(run->port, channel, apdu, len, out);
	}
	a->run = run;
	a->resp = g_byte_array_free_to_bytes(out);
	g_idle_add(answer_cb, a);
}

static void
t_reset(CpModemRun *run)
{
	bench->resets++;
	cp_sim_usim_reset(run->port);
	g_idle_add(done_cb, run);
}

static const CpCardTransport basic_transport = {
	.name = "basic",
	.open = t_open,
	.close = t_close,
	.card_status = t_card_status,
	.transmit = t_transmit,
};

static const CpModemOps reset_only = {
	.name = "reset-only",
	.reset = t_reset,
};

static const CpModemDriver basic_driver = {
	.name = "basic",
	.transport = &basic_transport,
	.ops = &reset_only,
};

/* ---- the bench --------------------------------------------------------- */

static CpModem *
bench_new(Bench *b, const char *adm1)
{
	g_autoptr(CpSecret) a = cp_secret_new_from((const uint8_t *)adm1, strlen(adm1));
	g_autoptr(GError) error = NULL;
	CpModemConfig cfg = {
		.backend = CP_MODEM_BACKEND_QMI,
		.device = "basic",
		.card = "auto",
		.adm1 = a,
	};
	CpModem *m = cp_modem_new(&cfg, &error);

	g_assert_no_error(error);
	memset(b, 0, sizeof(*b));
	bench = b;
	b->usim = cp_sim_usim_new(ICCID, OLD_IMSI, 2, old_k, old_opc, ADM1, 3);
	b->loop = g_main_loop_new(NULL, FALSE);
	/* the driver a protocol module would fill */
	m->driver = &basic_driver;
	return m;
}

static void
bench_free(Bench *b)
{
	cp_sim_usim_free(b->usim);
	g_main_loop_unref(b->loop);
	g_clear_pointer(&b->backup, g_bytes_unref);
	g_clear_pointer(&b->result, cp_modem_result_free);
	g_clear_error(&b->error);
}

static char *
card_state(Bench *b)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;
	GString *efs = g_string_new(NULL);

	cp_sim_usim_dump(b->usim, s);
	lines = g_strsplit(s->str, "\n", -1);
	for (guint i = 0; lines[i]; i++)
		if (g_str_has_prefix(lines[i], "ef-"))
			g_string_append_printf(efs, "%s\n", lines[i]);
	return g_string_free(efs, FALSE);
}

static void
progress_cb(CpModem *m, CpModemPhase phase, guint n, guint total, const char *what, gpointer data)
{
	Bench *b = data;

	b->phases |= 1u << phase;
	b->last_phase = phase;
}

static void
backup_cb(CpModem *m, const CpModemBackup *backup, gpointer data)
{
	Bench *b = data;

	/* nothing written before the hand-over */
	g_assert_cmpuint(b->updates, ==, 0);
	g_assert_cmpstr(cp_modem_backup_get_imsi(backup), ==, OLD_IMSI);
	g_assert_cmpstr(cp_modem_backup_get_iccid(backup), ==, ICCID);
	b->backup = cp_modem_backup_serialize(backup);
	cp_modem_backup_saved(m, NULL);
}

static void
provision_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Bench *b = data;

	b->result = cp_modem_provision_finish(NULL, res, &b->error);
	g_main_loop_quit(b->loop);
}

static void
restore_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Bench *b = data;

	cp_modem_restore_finish(NULL, res, &b->error);
	g_main_loop_quit(b->loop);
}

static void
provision(Bench *b, CpModem *m)
{
	static const guint8 k[16] = { 0x11, 0x22 }, opc[16] = { 0x33, 0x44 };
	g_autoptr(CpSecret) ks = cp_secret_new_from(k, 16);
	g_autoptr(CpSecret) os = cp_secret_new_from(opc, 16);
	CpModemTarget t = {
		.imsi = NEW_IMSI,
		.mnc_length = 2,
		.plmn = "00101",
		.network_name = "cellprov",
		.apn = "internet",
		.k = ks,
		.opc = os,
	};

	cp_modem_provision_async(m, &t, progress_cb, backup_cb, b, NULL, provision_cb, b);
	g_main_loop_run(b->loop);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_basic_channel(void)
{
	Bench b;
	g_autoptr(CpModem) m = bench_new(&b, ADM1);
	g_autofree char *imsi = NULL;

	provision(&b, m);
	g_assert_no_error(b.error);
	g_assert_nonnull(b.result);
	/* the IMSI check read EF.IMSI through the card, after the reset */
	g_assert_cmpstr(b.result->imsi, ==, NEW_IMSI);
	g_assert_cmpstr(b.result->iccid, ==, ICCID);
	g_assert_null(b.result->registered_plmn);
	imsi = cp_sim_usim_get_imsi(b.usim);
	g_assert_cmpstr(imsi, ==, NEW_IMSI);
	/* every file, every copy of the key */
	g_assert_cmpuint(b.updates, ==, 6);
	g_assert_cmpuint(b.resets, ==, 1);
	g_assert_false(b.other_channel);
	/* no registration step: the last phase is the IMSI check's */
	g_assert_cmpuint(b.last_phase, ==, CP_MODEM_PHASE_REGISTERING);
	g_assert_false(b.phases & (1u << CP_MODEM_PHASE_RESTORING));
	g_assert_cmpstr(cp_modem_get_backend_name(m), ==, "basic");
	bench_free(&b);
}

static void
test_wrong_adm1(void)
{
	Bench b;
	g_autoptr(CpModem) m = bench_new(&b, "87654321");
	g_autofree char *before = card_state(&b);
	g_autofree char *after = NULL;

	provision(&b, m);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
	g_assert_cmpuint(cp_sim_usim_get_adm1_retries(b.usim), ==, 2);
	g_assert_cmpuint(b.updates, ==, 0);
	g_assert_null(b.backup);
	after = card_state(&b);
	g_assert_cmpstr(after, ==, before);
	bench_free(&b);
}

static void
test_rollback(void)
{
	for (guint n = 1; n <= 6; n++) {
		Bench b;
		g_autoptr(CpModem) m = bench_new(&b, ADM1);
		g_autofree char *before = card_state(&b);
		g_autofree char *after = NULL;

		/* the n-th file write fails: what was written goes back */
		b.fail_update = n;
		provision(&b, m);
		g_assert_error(b.error, CP_ERROR, CP_ERR_APDU);
		after = card_state(&b);
		g_assert_cmpstr(after, ==, before);
		g_assert_true(b.phases & (1u << CP_MODEM_PHASE_RESTORING));
		g_assert_false(b.other_channel);
		bench_free(&b);
	}
}

static void
test_restore(void)
{
	Bench b;
	g_autoptr(CpModem) m = bench_new(&b, ADM1);
	g_autofree char *before = card_state(&b);
	g_autofree char *after = NULL;
	g_autofree char *imsi = NULL;
	g_autoptr(CpModemBackup) backup = NULL;

	provision(&b, m);
	g_assert_no_error(b.error);
	imsi = cp_sim_usim_get_imsi(b.usim);
	g_assert_cmpstr(imsi, ==, NEW_IMSI);
	backup = cp_modem_backup_deserialize(b.backup, &b.error);
	g_assert_no_error(b.error);

	/* after a crash: the journal's backup goes back, byte for byte */
	cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_no_error(b.error);
	after = card_state(&b);
	g_assert_cmpstr(after, ==, before);
	g_assert_cmpuint(b.resets, ==, 2);
	bench_free(&b);
}

/*
 * A card whose files have no SFI: the engine tries EF.IMSI's and EF.AD's
 * once each, then SELECTs them. The card ends exactly as a card with
 * SFIs does after the same provisioning (every file where it belongs,
 * none written through another's SFI or selection), a restore (which
 * reads nothing, so learns each refusal from its UPDATE) puts it back
 * byte for byte, and so does a rollback from each write.
 */
static void
test_no_sfi(void)
{
	Bench a, b;
	g_autoptr(CpModem) ma = bench_new(&a, ADM1);
	g_autofree char *with_sfi = NULL;
	guint apdus_sfi;

	provision(&a, ma);
	g_assert_no_error(a.error);
	with_sfi = card_state(&a);
	apdus_sfi = a.apdus;
	bench_free(&a);

	{
		g_autoptr(CpModem) m = bench_new(&b, ADM1);
		g_autofree char *before = NULL, *after = NULL, *restored = NULL;
		g_autoptr(CpModemBackup) backup = NULL;

		cp_sim_usim_drop_sfi(b.usim);
		before = card_state(&b);
		provision(&b, m);
		g_assert_no_error(b.error);
		after = card_state(&b);
		g_assert_cmpstr(after, ==, with_sfi);
		/* each refused once, then SELECTed for the read and the write */
		g_assert_cmpuint(b.apdus, >, apdus_sfi);
		backup = cp_modem_backup_deserialize(b.backup, &b.error);
		g_assert_no_error(b.error);
		cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
		g_main_loop_run(b.loop);
		g_assert_no_error(b.error);
		restored = card_state(&b);
		g_assert_cmpstr(restored, ==, before);
		bench_free(&b);
	}
	for (guint n = 1; n <= 6; n++) {
		g_autoptr(CpModem) m = bench_new(&b, ADM1);
		g_autofree char *before = NULL, *after = NULL;

		cp_sim_usim_drop_sfi(b.usim);
		before = card_state(&b);
		b.fail_update = n;
		provision(&b, m);
		g_assert_error(b.error, CP_ERROR, CP_ERR_APDU);
		after = card_state(&b);
		g_assert_cmpstr(after, ==, before);
		bench_free(&b);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/card-engine/basic-channel", test_basic_channel);
	g_test_add_func("/card-engine/wrong-adm1", test_wrong_adm1);
	g_test_add_func("/card-engine/rollback", test_rollback);
	g_test_add_func("/card-engine/restore", test_restore);
	g_test_add_func("/card-engine/no-sfi", test_no_sfi);
	return g_test_run();
}
