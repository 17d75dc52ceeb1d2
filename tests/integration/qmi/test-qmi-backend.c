/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QMI backend against cp-qmi-sim, with real libqmi in between. Card
 * state is always read back from the simulator's dump, never through the
 * backend.
 */
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>

#include <glib.h>

#include "cp-buf.h"
#include "cp-modem.h"
#include "cp-test.h"
#include "cp-test-sim.h"
#include "cp-tlv.h"

#define OLD_IMSI "001010123456789"
#define OLD_K "000102030405060708090a0b0c0d0e0f"
#define OLD_OPC "0f0e0d0c0b0a09080706050403020100"
#define NEW_IMSI "001010000000001"
#define NEW_K "465b5ce8b199b49faa5f0a2ee238a6bc"
#define NEW_OPC "cd63cb71954a9f4e48a5994e37a02baf"
#define ADM1 "12345678"

static const char *sim_path;
static gboolean have_netns;

typedef struct _Bench {
	CpTestSim sim;
	gboolean proxy;
	/* results */
	GMainLoop *loop;
	CpModemResult *result;
	GError *error;
	guint backups;
	guint updates_at_backup;
	GBytes *backup_bytes;
	guint steps;
	/* the phases the steps carried: seen (bits), and whether one went back */
	guint phases;
	CpModemPhase last_phase;
	gboolean phase_went_back;
	/* cancellation: at the step whose description holds cancel_at, or
	 * while the backup is being saved (hold_backup) */
	GCancellable *cancellable;
	const char *cancel_at;
	gboolean hold_backup;
	/* run after the provisioning's callback, from inside it */
	void (*then)(struct _Bench *b, CpModem *m);
	CpModem *modem;
	/* the module's fake sysfs (NULL: none) and how long its port may be
	 * gone after a reset (0: 2 s) */
	char *sysfs;
	guint reenumerate_timeout;
	/* a second module (another card) that appears once the first is gone */
	const char *other_card;
	GPid other_pid;
	char *other_dump;
	guint other_id;
} Bench;

/* No secret reached a log line, in any case the test ran. */
static void
assert_no_secret_logged(const char *const *secrets)
{
	g_autofree char *lower = g_ascii_strdown(cp_test_log_text(), -1);

	for (guint i = 0; secrets[i]; i++) {
		g_autofree char *s = g_ascii_strdown(secrets[i], -1);

		if (strstr(lower, s))
			g_error("a secret reached the log: %s", secrets[i]);
	}
}

static gboolean
log_has(const char *what)
{
	return strstr(cp_test_log_text(), what) != NULL;
}

static GHashTable *
dump_read(Bench *b)
{
	return cp_test_sim_dump_read(&b->sim);
}

static const char *
dump_get(GHashTable *h, const char *key)
{
	const char *v = g_hash_table_lookup(h, key);

	g_assert_nonnull(v);
	return v;
}

static void
bench_start(Bench *b, gboolean proxy, const char *extra)
{
	g_autofree char *subs = g_strdup_printf("# test network\n%s %s %s 000000000020\n%s %s %s 000000000020\n",
						OLD_IMSI, OLD_K, OLD_OPC, NEW_IMSI, NEW_K, NEW_OPC);
	g_autofree char *args = g_strconcat(proxy ? "--proxy " : "", "--reset-delay=20 --registration-delay=20 ",
					    extra, NULL);

	memset(b, 0, sizeof(*b));
	b->proxy = proxy;
	cp_test_sim_startv(&b->sim, sim_path, proxy ? NULL : "pty", subs, args);
	b->loop = g_main_loop_new(NULL, FALSE);
}

static void
bench_stop(Bench *b)
{
	if (b->other_pid) {
		kill(b->other_pid, SIGTERM);
		waitpid(b->other_pid, NULL, 0);
		g_spawn_close_pid(b->other_pid);
	}
	if (b->other_id)
		g_source_remove(b->other_id);
	g_free(b->other_dump);
	g_free(b->sysfs);
	/* the dump, the subscribers, the ports, the fake sysfs */
	cp_test_sim_stop(&b->sim);
	g_main_loop_unref(b->loop);
	cp_modem_result_free(b->result);
	g_clear_error(&b->error);
	g_clear_pointer(&b->backup_bytes, g_bytes_unref);
	g_clear_object(&b->cancellable);
}

static CpModem *
modem_new(Bench *b, const char *adm1)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpSecret) a = cp_secret_new_from((const uint8_t *)adm1, strlen(adm1));
	CpModemConfig cfg = {
		.backend = CP_MODEM_BACKEND_QMI,
		.device = b->proxy ? "/dev/cdc-wdm0" : b->sim.pty,
		.proxy = b->proxy,
		.card = "sysmo-isim-sja2",
		.adm1 = a,
		.registration_timeout = 5,
		.request_timeout = 2,
		.reenumerate_timeout = b->reenumerate_timeout ? b->reenumerate_timeout : 2,
		.sysfs = b->sysfs,
	};
	CpModem *m = cp_modem_new(&cfg, &error);

	g_assert_no_error(error);
	return m;
}

static void
progress_cb(CpModem *m, CpModemPhase phase, guint n, guint total, const char *what, gpointer data)
{
	Bench *b = data;

	g_assert_cmpuint(n, >=, 1);
	g_assert_cmpuint(n, <=, total);
	b->steps++;
	if (b->phases && phase < b->last_phase)
		b->phase_went_back = TRUE;
	b->phases |= 1u << phase;
	b->last_phase = phase;
	if (b->cancel_at && strstr(what, b->cancel_at)) {
		b->cancel_at = NULL;
		g_cancellable_cancel(b->cancellable);
	}
}

static gboolean
cancel_idle_cb(gpointer data)
{
	Bench *b = data;

	g_cancellable_cancel(b->cancellable);
	return G_SOURCE_REMOVE;
}

static void
backup_cb(CpModem *m, const CpModemBackup *backup, gpointer data)
{
	Bench *b = data;
	g_autoptr(GHashTable) d = dump_read(b);

	b->backups++;
	/* before the first write */
	b->updates_at_backup = (guint)atoi(dump_get(d, "card-updates"));
	g_assert_cmpstr(cp_modem_backup_get_imsi(backup), ==, OLD_IMSI);
	g_assert_cmpstr(cp_modem_backup_get_card(backup), ==, "sysmo-isim-sja2");
	g_clear_pointer(&b->backup_bytes, g_bytes_unref);
	b->backup_bytes = cp_modem_backup_serialize(backup);
	/* a journal write that takes long: the cancellation must not wait */
	if (b->hold_backup) {
		g_timeout_add(50, cancel_idle_cb, b);
		return;
	}
	cp_modem_backup_saved(m, NULL);
}

static void
provision_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Bench *b = data;

	b->result = cp_modem_provision_finish(NULL, res, &b->error);
	if (b->then)
		b->then(b, b->modem);
	else
		g_main_loop_quit(b->loop);
}

static void
provision(Bench *b, CpModem *m, const char *k_hex)
{
	g_autoptr(CpSecret) k = cp_secret_new_from_hex(k_hex, 16);
	g_autoptr(CpSecret) opc = cp_secret_new_from_hex(NEW_OPC, 16);
	CpModemTarget t = {
		.imsi = NEW_IMSI,
		.mnc_length = 2,
		.plmn = "00101",
		.network_name = "cellprov test network",
		.apn = "iot.cellprov",
		.k = k,
		.opc = opc,
	};

	/* a test may provision more than once */
	g_clear_pointer(&b->result, cp_modem_result_free);
	b->modem = m;
	cp_modem_provision_async(m, &t, progress_cb, backup_cb, b, b->cancellable, provision_cb, b);
	g_main_loop_run(b->loop);
}

/* Every copy of the key the card holds, each read from the dump: ADF.USIM's,
 * the 2G key file under both its names, ADF.ISIM's. */
static gboolean
is_sja5(GHashTable *d)
{
	return g_str_equal(dump_get(d, "card"), "sysmoISIM-SJA5");
}

static void
assert_key_copies(GHashTable *d, const char *value)
{
	/* an SJA5's USIM and ISIM key files are 67 bytes (TUAK): the 33 of
	 * a Milenage key, the rest FF and never touched */
	g_autofree char *tuak = g_strconcat(value, is_sja5(d) ? "ffffffffffffffffffffffffffffffffff"
							      "ffffffffffffffffffffffffffffffffff" : "", NULL);

	g_assert_cmpstr(dump_get(d, "ef-usim-auth-key"), ==, tuak);
	g_assert_cmpstr(dump_get(d, "ef-sim-auth-key"), ==, value);
	g_assert_cmpstr(dump_get(d, "ef-usim-auth-key-2g"), ==, value);
	g_assert_cmpstr(dump_get(d, "ef-isim-auth-key"), ==, tuak);
}

/* EF.AD with MNC length 2: 4 bytes on an SJA2, 5 (the last FF) on an SJA5 */
static const char *
ef_ad(GHashTable *d)
{
	return is_sja5(d) ? "00000002ff" : "00000002";
}

/* The old card, as cp-qmi-sim starts it. */
static void
assert_old_values(Bench *b)
{
	g_autoptr(GHashTable) d = dump_read(b);

	g_assert_cmpstr(dump_get(d, "imsi"), ==, OLD_IMSI);
	g_assert_cmpstr(dump_get(d, "ef-imsi"), ==, "080910101032547698");
	g_assert_cmpstr(dump_get(d, "ef-ad"), ==, ef_ad(d));
	g_assert_cmpstr(dump_get(d, "ef-spn"), ==, "017379736d6f636f6dffffffffffffffff");
	assert_key_copies(d, "14" OLD_K OLD_OPC);
	g_assert_cmpstr(dump_get(d, "apn"), ==, "internet");
}

static void
run_success(gboolean proxy, const char *extra)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	if (proxy && !have_netns) {
		g_test_skip("no network namespace (unshare -n) for a private @qmi-proxy");
		return;		/* main() reports it (cp_test_missing) */
	}
	bench_start(&b, proxy, extra);
	m = modem_new(&b, ADM1);
	cp_test_log_clear();
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	/* the log says what happened, never with what */
	g_assert_nonnull(strstr(cp_test_log_text(), "writing EF.USIM_AUTH_KEY"));
	assert_no_secret_logged((const char *const[]){ ADM1, NEW_K, NEW_OPC, OLD_K, OLD_OPC, NULL });
	g_assert_nonnull(b.result);
	g_assert_cmpstr(b.result->registered_plmn, ==, "00101");
	g_assert_cmpstr(b.result->imsi, ==, NEW_IMSI);
	g_assert_cmpstr(b.result->operator_name, ==, "cellprov test network");
	g_assert_cmpstr(b.result->iccid, ==, "8988211000000000017");
	g_assert_cmpuint(b.backups, ==, 1);
	g_assert_cmpuint(b.updates_at_backup, ==, 0);
	/* on the pty the module re-enumerates after its reset (the
	 * simulator's default): the port, the card and the ICCID again, and
	 * registration from the start */
	if (proxy)
		g_assert_cmpuint(b.steps, ==, 16);
	else
		g_assert_cmpuint(b.steps, >=, 19);
	g_assert_true(proxy != log_has("following it"));
	/* every phase of a provisioning, in order, and no rollback */
	g_assert_false(b.phase_went_back);
	g_assert_cmpuint(b.phases, ==, (1u << CP_MODEM_PHASE_PREPARING) | (1u << CP_MODEM_PHASE_WRITING) |
					(1u << CP_MODEM_PHASE_RESETTING) | (1u << CP_MODEM_PHASE_REGISTERING));
	g_assert_cmpuint(b.last_phase, ==, CP_MODEM_PHASE_REGISTERING);

	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "imsi"), ==, NEW_IMSI);
	/* TS 31.102 4.2.2, worked by hand: 8 bytes, parity 9 (odd), digits */
	g_assert_cmpstr(dump_get(d, "ef-imsi"), ==, "080910100000000010");
	g_assert_cmpstr(dump_get(d, "modem-imsi"), ==, NEW_IMSI);
	g_assert_cmpstr(dump_get(d, "ef-ad"), ==, ef_ad(d));
	/* "cellprov test network" cut to EF.SPN's 16 characters */
	g_assert_cmpstr(dump_get(d, "ef-spn"), ==, "0163656c6c70726f762074657374206e65");
	assert_key_copies(d, "14" NEW_K NEW_OPC);
	/* the network authenticated the card with the K it holds for the new IMSI */
	g_assert_cmpstr(dump_get(d, "registration"), ==, "registered");
	g_assert_cmpstr(dump_get(d, "network-last"), ==, "registered");
	g_assert_cmpstr(dump_get(d, "apn"), ==, "iot.cellprov");
	g_assert_cmpstr(dump_get(d, "adm1-retries"), ==, "3");
	bench_stop(&b);
}

/* On the simulator's defaults (an SJA5, a current firmware, a T=0 card). */
static void
test_success(gconstpointer data)
{
	run_success(GPOINTER_TO_INT(data), NULL);
}

/* The SJA2 (33-byte key files, 4-byte EF.AD) on an older firmware that
 * still answers DMS UIM Get IMSI, and a lenient card. */
static void
test_success_sja2(void)
{
	run_success(FALSE, "--card sysmoISIM-SJA2 --firmware legacy --read-le lenient");
}

static void
test_wrong_adm1(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, "87654321");
	cp_test_log_clear();
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
	g_assert_nonnull(strstr(b.error->message, "2 attempts left"));
	g_assert_null(strstr(b.error->message, "8765"));
	g_assert_nonnull(strstr(cp_test_log_text(), "verifying ADM1"));
	assert_no_secret_logged((const char *const[]){ "87654321", ADM1, NEW_K, NEW_OPC, OLD_K, OLD_OPC, NULL });
	g_assert_cmpuint(b.backups, ==, 0);
	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "card-updates"), ==, "0");
	g_assert_cmpstr(dump_get(d, "adm1-retries"), ==, "2");
	assert_old_values(&b);
	bench_stop(&b);
}

static void
restore_cb(GObject *src, GAsyncResult *res, gpointer data);

static guint
dump_uint(Bench *b, const char *key)
{
	g_autoptr(GHashTable) d = dump_read(b);

	return (guint)atoi(dump_get(d, key));
}

/* A wrong ADM1 on every run, over provisionings and a restore: the card
 * is never blocked. */
static void
test_adm1_last_attempt(void)
{
	Bench b;
	g_autoptr(CpModem) wrong = NULL;
	g_autoptr(CpModem) right = NULL;
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GError) error = NULL;
	guint before, apdus, updates;

	bench_start(&b, FALSE, "--adm1-retries=3");
	/* a backup to restore, as a journal would hold it */
	right = modem_new(&b, ADM1);
	provision(&b, right, NEW_K);
	g_assert_no_error(b.error);
	backup = cp_modem_backup_deserialize(b.backup_bytes, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(dump_uint(&b, "adm1-retries"), ==, 3);

	wrong = modem_new(&b, "87654321");
	provision(&b, wrong, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
	g_assert_nonnull(strstr(b.error->message, "2 attempts left"));
	g_clear_error(&b.error);
	g_assert_cmpuint(dump_uint(&b, "adm1-retries"), ==, 2);
	before = dump_uint(&b, "apdus");
	provision(&b, wrong, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
	g_assert_nonnull(strstr(b.error->message, "1 attempts left"));
	g_clear_error(&b.error);
	g_assert_cmpuint(dump_uint(&b, "adm1-retries"), ==, 1);
	apdus = dump_uint(&b, "apdus");
	updates = dump_uint(&b, "card-updates");

	/* the third run asks for the counter and stops there */
	provision(&b, wrong, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
	g_assert_nonnull(strstr(b.error->message, "one ADM1 attempt left"));
	g_assert_null(strstr(b.error->message, "8765"));
	g_clear_error(&b.error);
	g_assert_cmpuint(dump_uint(&b, "adm1-retries"), ==, 1);
	/* what the run before sent up to the VERIFY without data, and not
	 * the VERIFY with ADM1 that followed it there */
	g_assert_cmpuint(dump_uint(&b, "apdus") - apdus, ==, apdus - before - 1);

	/* a journaled restore after a crash does not spend it either */
	cp_modem_restore_async(wrong, backup, NULL, NULL, NULL, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
	g_clear_error(&b.error);
	g_assert_cmpuint(dump_uint(&b, "adm1-retries"), ==, 1);

	/* nor the right ADM1: with one attempt left, only a person who knows
	 * the card may try (docs/modem.md) */
	provision(&b, right, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
	g_clear_error(&b.error);
	g_assert_cmpuint(dump_uint(&b, "adm1-retries"), ==, 1);
	g_assert_cmpuint(dump_uint(&b, "card-updates"), ==, updates);
	bench_stop(&b);
}

static void
test_unknown_card(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	/* a card without the drivers' key file: APDUs 1 and 2, each
	 * driver's SELECT of it (the modem lists the applications: EF.DIR
	 * is not read) */
	bench_start(&b, FALSE, "--fail-apdu=1,2");
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_CARD_UNKNOWN);
	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "card-updates"), ==, "0");
	assert_old_values(&b);
	bench_stop(&b);
}

static void
test_write_failure(gconstpointer data)
{
	guint n = GPOINTER_TO_UINT(data);
	g_autofree char *arg = g_strdup_printf("--fail-update=%u", n);
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	bench_start(&b, FALSE, arg);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_APDU);
	g_assert_cmpuint(b.backups, ==, 1);
	assert_old_values(&b);
	d = dump_read(&b);
	/* the rollback reset the modem so that it uses the old card again */
	g_assert_cmpstr(dump_get(d, "modem-imsi"), ==, OLD_IMSI);
	bench_stop(&b);
}

static void
test_reg_denied(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	/* a K the network does not hold for the new IMSI */
	provision(&b, m, "00112233445566778899aabbccddeeff");
	g_assert_error(b.error, CP_ERROR, CP_ERR_REG_DENIED);
	/* the rollback's steps say so by their phase, the last one too */
	g_assert_true(b.phases & (1u << CP_MODEM_PHASE_REGISTERING));
	g_assert_cmpuint(b.last_phase, ==, CP_MODEM_PHASE_RESTORING);
	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "network-last"), ==, "auth-reject");
	assert_old_values(&b);
	bench_stop(&b);
}

static void
test_no_response(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	gint64 t0 = g_get_monotonic_time();

	/* the first offline request (after the writes) is never answered */
	bench_start(&b, FALSE, "--no-response=dms:0x002e:1");
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_MODEM_TIMEOUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
	assert_old_values(&b);
	bench_stop(&b);
}

static void
test_vanish(gconstpointer data)
{
	gboolean after_writes = GPOINTER_TO_INT(data);
	Bench b;
	g_autoptr(CpModem) m = NULL;
	gint64 t0 = g_get_monotonic_time();
	g_autoptr(GHashTable) d = NULL;

	/* APDU 27 is EF.AD's UPDATE, EF.IMSI is written by then: EF.DIR
	 * (SELECT MF, SELECT, 2 records), probe, VERIFY (counter), VERIFY,
	 * 3 x (SELECT, READ), the 2G key (SELECT
	 * MF, DF.SYSTEM, 6F20, READ), ADF.ISIM's (SELECT ADF, EF, READ),
	 * ADF.USIM's (likewise), SELECT, UPDATE, SELECT, UPDATE */
	bench_start(&b, FALSE, after_writes ? "--vanish=uim:0x003b:27" : "--vanish=uim:0x002f:1");
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
	if (after_writes) {
		/* nothing to roll back to: the daemon keeps the backup */
		g_assert_error(b.error, CP_ERROR, CP_ERR_ROLLBACK);
		g_assert_nonnull(b.backup_bytes);
	} else {
		g_assert_error(b.error, CP_ERROR, CP_ERR_MODEM_GONE);
		d = dump_read(&b);
		g_assert_cmpstr(dump_get(d, "card-updates"), ==, "0");
	}
	bench_stop(&b);
}

static void
restore_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Bench *b = data;

	cp_modem_restore_finish(NULL, res, &b->error);
	g_main_loop_quit(b->loop);
}

static void
test_restore(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GBytes) again = NULL;
	g_autoptr(GError) error = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);

	/* what the daemon reads back from its journal after a crash */
	backup = cp_modem_backup_deserialize(b.backup_bytes, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(cp_modem_backup_get_imsi(backup), ==, OLD_IMSI);
	g_assert_cmpstr(cp_modem_backup_get_iccid(backup), ==, "8988211000000000017");
	again = cp_modem_backup_serialize(backup);
	g_assert_true(g_bytes_equal(again, b.backup_bytes));

	cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_no_error(b.error);
	assert_old_values(&b);
	bench_stop(&b);
}

/*
 * A firmware that refuses UIM Open Logical Channel (AccessDenied, as a
 * Telit LE910C4): the USIM is selected on the basic channel and the
 * provisioning goes through there, every copy of the key written; a
 * failure after the writes rolls each copy back there too. If the basic
 * channel's SELECT fails as well, the error says what was refused.
 */
static void
test_no_logical_channel(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	bench_start(&b, FALSE, "--firmware=no-logical-channel");
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "firmware"), ==, "no-logical-channel");
	g_assert_cmpstr(dump_get(d, "imsi"), ==, NEW_IMSI);
	assert_key_copies(d, "14" NEW_K NEW_OPC);
	bench_stop(&b);

	/* the last UPDATE (ADF.USIM's key) fails: all back on the basic channel */
	bench_start(&b, FALSE, "--firmware=no-logical-channel --fail-update=6");
	g_clear_pointer(&m, cp_modem_free);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_APDU);
	g_clear_error(&b.error);
	assert_old_values(&b);
	bench_stop(&b);

	/* APDU 1 (the modem lists the applications: EF.DIR is not read):
	 * the SELECT of the USIM on channel 0 */
	bench_start(&b, FALSE, "--firmware=no-logical-channel --fail-apdu=1");
	g_clear_pointer(&m, cp_modem_free);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_APDU);
	g_assert_nonnull(strstr(b.error->message, "after the modem refused a logical channel"));
	g_assert_nonnull(strstr(b.error->message, "6F00"));
	assert_old_values(&b);
	bench_stop(&b);
}

/*
 * A card whose EF.DIR lists no ISIM: the modem lists the USIM alone, so
 * the engine reads EF.DIR itself and finds none there either; no ISIM
 * copy is read, backed up or written; the USIM and the 2G key get the
 * new key, ADF.ISIM keeps the old one.
 */
static void
test_no_isim(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	bench_start(&b, FALSE, "--dir-usim-only");
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	d = dump_read(&b);
	/* EF.DIR read by the engine: SELECT, then its records */
	g_assert_nonnull(strstr(dump_get(d, "card-apdu-log"), "0:A40004:2f00,0:B20104"));
	g_assert_true(g_str_has_prefix(dump_get(d, "ef-usim-auth-key"), "14" NEW_K NEW_OPC));
	g_assert_cmpstr(dump_get(d, "ef-sim-auth-key"), ==, "14" NEW_K NEW_OPC);
	g_assert_true(g_str_has_prefix(dump_get(d, "ef-isim-auth-key"), "14" OLD_K OLD_OPC));
	/* five files, not six */
	g_assert_cmpuint(dump_uint(&b, "card-updates"), ==, 5);
	bench_stop(&b);
}

static GBytes *backup_with(guint8 tag, const void *value, gsize len, gboolean drop);

/* The card's commands (channel:INS P1 P2[:SELECT data]) holding what. */
static gboolean
apdus_have(GHashTable *d, const char *what)
{
	return strstr(dump_get(d, "card-apdu-log"), what) != NULL;
}

/*
 * The modem lists the USIM and the ISIM (UIM Get Card Status): EF.DIR is
 * not read (no SELECT of 2F00, no READ RECORD), ADF.ISIM is selected by
 * the modem's full AID (not the driver's prefix); EF.IMSI and EF.AD go by
 * their SFIs (READ and UPDATE BINARY with P1 87 and 83), never SELECTed.
 * QMI clients are allocated when first used: UIM, WDS and DMS before the
 * reset (NAS too when the registration starts before the module drops
 * off), then on the port the module came back on UIM first, no WDS.
 */
static void
test_aid_from_modem(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	d = dump_read(&b);
	g_assert_false(apdus_have(d, ":2f00"));
	g_assert_false(apdus_have(d, ":B2"));
	g_assert_true(apdus_have(d, ":A4040C:a0000000871004ffffffff8907090000"));
	g_assert_true(apdus_have(d, ":B08700") && apdus_have(d, ":D68700"));
	g_assert_true(apdus_have(d, ":B08300") && apdus_have(d, ":D68300"));
	g_assert_false(apdus_have(d, ":6f07") || apdus_have(d, ":6fad"));
	g_assert_cmpstr(dump_get(d, "ef-imsi"), ==, "080910100000000010");
	g_assert_cmpstr(dump_get(d, "ef-ad"), ==, ef_ad(d));
	g_assert_cmpstr(dump_get(d, "resets"), ==, "1");
	{
		const char *a = dump_get(d, "qmi-client-allocations");
		const char *again = strstr(a, ",uim");

		g_assert_true(g_str_has_prefix(a, "uim,wds,dms,"));
		g_assert_nonnull(again);
		g_assert_null(strstr(again, "wds"));
		g_assert_null(strstr(again + 4, "uim"));
	}
	bench_stop(&b);
}

/*
 * A card whose files have no SFI refuses READ and UPDATE BINARY by one
 * (6A82): the engine SELECTs the file instead. Every file lands where it
 * belongs, byte for byte: a write or read sent to the file still
 * selected instead would put EF.AD's bytes into EF.IMSI or the like. A
 * restore, whose flow has not seen the refusal (it reads nothing), learns
 * it from its first UPDATE; a rollback goes back byte for byte too.
 */
static void
test_sfi_refused(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GError) error = NULL;

	bench_start(&b, FALSE, "--no-sfi");
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	d = dump_read(&b);
	/* tried once each, then SELECTed for the backup's read */
	g_assert_true(apdus_have(d, ":B08700,1:A40004:6f07,1:B00000"));
	g_assert_true(apdus_have(d, ":B08300,1:A40004:6fad,1:B00000"));
	g_assert_false(apdus_have(d, ":D687") || apdus_have(d, ":D683"));
	g_assert_cmpstr(dump_get(d, "imsi"), ==, NEW_IMSI);
	g_assert_cmpstr(dump_get(d, "ef-imsi"), ==, "080910100000000010");
	g_assert_cmpstr(dump_get(d, "ef-ad"), ==, ef_ad(d));
	g_assert_cmpstr(dump_get(d, "ef-spn"), ==, "0163656c6c70726f762074657374206e65");
	assert_key_copies(d, "14" NEW_K NEW_OPC);
	g_clear_pointer(&d, g_hash_table_unref);

	backup = cp_modem_backup_deserialize(b.backup_bytes, &error);
	g_assert_no_error(error);
	cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_no_error(b.error);
	assert_old_values(&b);
	d = dump_read(&b);
	g_assert_true(apdus_have(d, ":D68700,1:A4000C:6f07,1:D60000"));
	g_clear_pointer(&d, g_hash_table_unref);
	bench_stop(&b);

	/* the last UPDATE (ADF.USIM's key) fails: each file back, exactly */
	bench_start(&b, FALSE, "--no-sfi --fail-update=6");
	g_clear_pointer(&m, cp_modem_free);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_APDU);
	g_clear_error(&b.error);
	assert_old_values(&b);
	bench_stop(&b);
}

/* A journal the previous release wrote (version 1: ADF.USIM's four files,
 * no other key copy) still restores: those four files come back, the
 * copies it never held stay as they are. A version 1 backup that holds
 * a copy is not one the previous release wrote. */
static void
test_restore_version1(void)
{
	static const guint8 key_2g[33] = { 0x14 };
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GBytes) v1 = backup_with(0, NULL, 0, FALSE);
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GHashTable) d = NULL;
	g_autoptr(GError) error = NULL;
	gsize n;
	const guint8 *data = g_bytes_get_data(v1, &n);

	/* tag, 16-bit length, value */
	g_assert_cmphex(data[3], ==, 1);
	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	backup = cp_modem_backup_deserialize(v1, &error);
	g_assert_no_error(error);
	cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_no_error(b.error);
	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "imsi"), ==, OLD_IMSI);
	/* the template's key (33 bytes of 11), the new copies untouched */
	g_assert_true(g_str_has_prefix(dump_get(d, "ef-usim-auth-key"),
				       "111111111111111111111111111111111111111111111111111111111111111111"));
	g_assert_cmpstr(dump_get(d, "ef-sim-auth-key"), ==, "14" NEW_K NEW_OPC);
	g_assert_true(g_str_has_prefix(dump_get(d, "ef-isim-auth-key"), "14" NEW_K NEW_OPC));
	g_assert_cmpstr(dump_get(d, "apn"), ==, "internet");
	bench_stop(&b);

	/* version 1 with a tag only version 2 has */
	{
		g_autoptr(GBytes) bytes = NULL;
		g_autoptr(CpModemBackup) bad = NULL;
		CpBuf b2 = CP_BUF_INIT;
		guint8 *d2;
		gsize n2, cut = 0;

		/* the copy goes after tag 0x13, before the APN pair */
		for (gsize i = 0; i < n; i += 3 + (gsize)(data[i + 1] << 8 | data[i + 2]))
			if (data[i] == 0x20) {
				cut = i;
				break;
			}
		g_assert_cmpuint(cut, >, 0);
		cp_buf_append(&b2, data, cut);
		cp_tlv_put(&b2, 0x14, key_2g, sizeof(key_2g));
		cp_buf_append(&b2, data + cut, n - cut);
		g_assert_false(b2.failed);
		d2 = cp_buf_steal(&b2, &n2);
		bytes = g_bytes_new_take(d2, n2);
		bad = cp_modem_backup_deserialize(bytes, &error);
		g_assert_null(bad);
		g_assert_error(error, CP_ERROR, CP_ERR_UNKNOWN_TAG);
	}
}

static void
test_backup_garbage(void)
{
	static const guint8 junk[] = { 0x01, 0x00, 0x01, 0x01, 0x02, 0x00 };
	g_autoptr(GBytes) bytes = g_bytes_new_static(junk, sizeof(junk));
	g_autoptr(GError) error = NULL;
	CpModemBackup *b = cp_modem_backup_deserialize(bytes, &error);

	g_assert_null(b);
	g_assert_nonnull(error);
	g_assert_true(error->domain == CP_ERROR);
}

static void
test_bad_config(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpSecret) a = cp_secret_new_from((const uint8_t *)"1234", 4);
	g_autoptr(CpSecret) good = cp_secret_new_from((const uint8_t *)ADM1, 8);
	CpModemConfig cfg = { .device = "/dev/cdc-wdm0", .adm1 = a, .card = "sysmo-isim-sja2" };

	g_assert_null(cp_modem_new(&cfg, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_ADM1);
	g_clear_error(&error);
	cfg.adm1 = good;
	cfg.card = "no-such-card";
	g_assert_null(cp_modem_new(&cfg, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_CARD_UNKNOWN);
	g_clear_error(&error);

	/* without ADM1 a modem can only be probed: a provisioning is refused
	 * before anything is sent */
	cfg.adm1 = NULL;
	cfg.card = NULL;
	{
		g_autoptr(CpModem) m = cp_modem_new(&cfg, &error);
		g_autoptr(CpSecret) k = cp_secret_new_from_hex(NEW_K, 16);
		g_autoptr(CpSecret) opc = cp_secret_new_from_hex(NEW_OPC, 16);
		CpModemTarget t = {
			.imsi = NEW_IMSI, .mnc_length = 2, .plmn = "00101", .network_name = "n",
			.apn = "a", .k = k, .opc = opc,
		};
		Bench b = { 0 };

		g_assert_no_error(error);
		b.loop = g_main_loop_new(NULL, FALSE);
		cp_modem_provision_async(m, &t, NULL, NULL, NULL, NULL, provision_cb, &b);
		g_main_loop_run(b.loop);
		g_assert_error(b.error, CP_ERROR, CP_ERR_ADM1);
		g_assert_null(b.result);
		g_clear_error(&b.error);
		g_main_loop_unref(b.loop);
	}
}

/* A reset takes the simulator --reset-delay: wait until it is back. */
static void
wait_online(Bench *b)
{
	for (guint i = 0; i < 200; i++) {
		g_autoptr(GHashTable) d = dump_read(b);

		if (g_str_equal(dump_get(d, "operating-mode"), "online"))
			return;
		g_usleep(10000);
	}
	g_error("the simulator did not come back online");
}

/* A restore cancelled once it has written goes on to the end; one
 * cancelled before writes nothing. */
static void
test_restore_cancelled(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GError) error = NULL;
	guint updates, resets;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	backup = cp_modem_backup_deserialize(b.backup_bytes, &error);
	g_assert_no_error(error);

	b.cancellable = g_cancellable_new();
	b.cancel_at = "verifying ADM1";
	wait_online(&b);
	updates = dump_uint(&b, "card-updates");
	cp_modem_restore_async(m, backup, progress_cb, &b, b.cancellable, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_error(b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_clear_error(&b.error);
	g_assert_cmpuint(dump_uint(&b, "card-updates"), ==, updates);

	g_clear_object(&b.cancellable);
	b.cancellable = g_cancellable_new();
	b.cancel_at = "putting the old APN back";
	resets = dump_uint(&b, "resets");
	cp_modem_restore_async(m, backup, progress_cb, &b, b.cancellable, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_no_error(b.error);
	assert_old_values(&b);
	/* and it reset the modem onto the old card */
	g_assert_cmpuint(dump_uint(&b, "resets"), ==, resets + 1);
	bench_stop(&b);
}

/* A journaled backup on another card: refused before anything is written. */
static void
test_restore_other_card(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GError) error = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	backup = cp_modem_backup_deserialize(b.backup_bytes, &error);
	g_assert_no_error(error);
	bench_stop(&b);

	bench_start(&b, FALSE, "--iccid=8988211000000000025");
	g_clear_pointer(&m, cp_modem_free);
	m = modem_new(&b, ADM1);
	cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
	g_main_loop_run(b.loop);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ROLLBACK);
	g_assert_nonnull(strstr(b.error->message, "not the one the backup was taken from"));
	g_assert_cmpuint(dump_uint(&b, "card-updates"), ==, 0);
	g_assert_cmpuint(dump_uint(&b, "resets"), ==, 0);
	assert_old_values(&b);
	bench_stop(&b);
}

/* Restoring twice, the second time on a card that holds the backup's
 * values already, changes nothing (the daemon retries after a crash). */
static void
test_restore_twice(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GError) error = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	backup = cp_modem_backup_deserialize(b.backup_bytes, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < 2; i++) {
		wait_online(&b);
		cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
		g_main_loop_run(b.loop);
		g_assert_no_error(b.error);
		assert_old_values(&b);
	}
	bench_stop(&b);
}

/* A backup TLV set with one field replaced (tag 0: none). */
static GBytes *
backup_with(guint8 tag, const void *value, gsize len, gboolean drop)
{
	static const guint8 ef_ad[4] = { 0, 0, 0, 2 };
	guint8 ef_imsi[9] = { 0x08, 0x09, 0x10, 0x10, 0x10, 0x32, 0x54, 0x76, 0x98 };
	guint8 ef_spn[17], ef_key[33];
	struct {
		guint8 tag;
		const void *value;
		gsize len;
	} f[] = {
		{ 0x01, "\x01", 1 },
		{ 0x02, "sysmo-isim-sja2", 15 },
		{ 0x03, "8988211000000000017", 19 },
		{ 0x10, ef_imsi, sizeof(ef_imsi) },
		{ 0x11, ef_ad, sizeof(ef_ad) },
		{ 0x12, ef_spn, sizeof(ef_spn) },
		{ 0x13, ef_key, sizeof(ef_key) },
		{ 0x20, "\x01", 1 },
		{ 0x21, "internet", 8 },
	};
	CpBuf buf = CP_BUF_INIT;
	guint8 *data;
	gsize n;

	memset(ef_spn, 0xFF, sizeof(ef_spn));
	memset(ef_key, 0x11, sizeof(ef_key));
	for (gsize i = 0; i < G_N_ELEMENTS(f); i++) {
		if (f[i].tag == tag && drop)
			continue;
		if (f[i].tag == tag)
			cp_tlv_put(&buf, tag, value, len);
		else
			cp_tlv_put(&buf, f[i].tag, f[i].value, f[i].len);
	}
	g_assert_false(buf.failed);
	data = cp_buf_steal(&buf, &n);
	return g_bytes_new_take(data, n);
}

static void
test_backup_bad(void)
{
	static const guint8 short_spn[16] = { 0x01 };
	static const struct {
		guint8 tag;
		const char *value;
		gsize len;
		gboolean drop;
		CpError code;
	} cases[] = {
		{ 0x01, "\x03", 1, FALSE, CP_ERR_VERSION },
		{ 0x02, "sysmo-isim-sja9", 15, FALSE, CP_ERR_CARD_UNKNOWN },
		{ 0x02, "sysmo-isim-sja2\0", 16, FALSE, CP_ERR_BAD_VALUE },
		{ 0x03, NULL, 0, TRUE, CP_ERR_MISSING_FIELD },
		{ 0x03, "89882110000000000F7", 19, FALSE, CP_ERR_BAD_VALUE },
		{ 0x12, (const char *)short_spn, sizeof(short_spn), FALSE, CP_ERR_LENGTH },
		{ 0x13, NULL, 0, TRUE, CP_ERR_MISSING_FIELD },
		{ 0x20, NULL, 0, TRUE, CP_ERR_MISSING_FIELD },
		{ 0x21, "inter\nnet", 9, FALSE, CP_ERR_BAD_VALUE },
	};
	g_autoptr(GBytes) good = backup_with(0, NULL, 0, FALSE);
	g_autoptr(CpModemBackup) ok = NULL;
	g_autoptr(GError) error = NULL;

	/* the template itself is a valid backup */
	ok = cp_modem_backup_deserialize(good, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(cp_modem_backup_get_imsi(ok), ==, OLD_IMSI);
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GBytes) bytes = backup_with(cases[i].tag, cases[i].value, cases[i].len, cases[i].drop);
		g_autoptr(CpModemBackup) b = cp_modem_backup_deserialize(bytes, &error);

		if (b)
			g_error("bad backup %" G_GSIZE_FORMAT " accepted", i);
		g_assert_error(error, CP_ERROR, (gint)cases[i].code);
		g_clear_error(&error);
	}
	/* cut anywhere: refused, but where only the optional APN pair is cut
	 * off whole (a backup taken where the APN was not read) */
	for (gsize n = 0; n < g_bytes_get_size(good); n++) {
		g_autoptr(GBytes) cut = g_bytes_new_from_bytes(good, 0, n);
		g_autoptr(CpModemBackup) b = cp_modem_backup_deserialize(cut, &error);

		if (n == g_bytes_get_size(good) - (3 + 1) - (3 + 8)) {
			g_assert_no_error(error);
			g_assert_nonnull(b);
			continue;
		}
		g_assert_null(b);
		g_assert_nonnull(error);
		g_clear_error(&error);
	}
}

static void
provision_cancelled(Bench *b, CpModem *m)
{
	b->cancellable = g_cancellable_new();
	provision(b, m, NEW_K);
}

/* Cancelled before the first write: nothing written, the card left alone. */
static void
test_cancel_before_write(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	b.cancel_at = "reading the current subscription";
	provision_cancelled(&b, m);
	g_assert_error(b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_cmpuint(b.backups, ==, 0);
	g_assert_cmpuint(dump_uint(&b, "card-updates"), ==, 0);
	g_assert_cmpuint(dump_uint(&b, "resets"), ==, 0);
	assert_old_values(&b);
	bench_stop(&b);
}

/* Cancelled while the caller saves the backup (which it never confirms):
 * the flow ends at once, and a late confirmation is harmless. */
static void
test_cancel_at_backup(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	gint64 t0 = g_get_monotonic_time();

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	b.hold_backup = TRUE;
	provision_cancelled(&b, m);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
	g_assert_error(b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_cmpuint(b.backups, ==, 1);
	cp_modem_backup_saved(m, NULL);
	g_assert_cmpuint(dump_uint(&b, "card-updates"), ==, 0);
	assert_old_values(&b);
	/* the modem is free again */
	b.hold_backup = FALSE;
	g_clear_object(&b.cancellable);
	g_clear_error(&b.error);
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	bench_stop(&b);
}

/* Cancelled after the writes: the old card is put back, the cancellation
 * does not cut the rollback short; if the rollback fails, the error says
 * so (CP_ERR_ROLLBACK, not "cancelled": the daemon must restore). */
static void
test_cancel_after_write(gconstpointer data)
{
	gboolean rollback_fails = GPOINTER_TO_INT(data);
	Bench b;
	g_autoptr(CpModem) m = NULL;

	/* UPDATE 7 is the rollback's first (six files written) */
	bench_start(&b, FALSE, rollback_fails ? "--fail-update=7" : NULL);
	m = modem_new(&b, ADM1);
	b.cancel_at = "setting the APN";
	provision_cancelled(&b, m);
	g_assert_cmpuint(b.backups, ==, 1);
	if (rollback_fails) {
		g_assert_error(b.error, CP_ERROR, CP_ERR_ROLLBACK);
		g_assert_nonnull(b.backup_bytes);
	} else {
		g_assert_error(b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
		assert_old_values(&b);
		/* and the modem was reset onto it */
		g_assert_cmpuint(dump_uint(&b, "resets"), ==, 1);
	}
	bench_stop(&b);
}

/* The daemon restores from inside the callback of a failed provisioning. */
static void
restore_from_callback(Bench *b, CpModem *m)
{
	g_autoptr(CpModemBackup) backup = NULL;
	g_autoptr(GError) error = NULL;

	b->then = NULL;
	g_assert_error(b->error, CP_ERROR, CP_ERR_APDU);
	g_clear_error(&b->error);
	backup = cp_modem_backup_deserialize(b->backup_bytes, &error);
	g_assert_no_error(error);
	cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, b);
}

static void
test_restore_in_callback(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;

	bench_start(&b, FALSE, "--fail-update=2");
	m = modem_new(&b, ADM1);
	b.then = restore_from_callback;
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	assert_old_values(&b);
	bench_stop(&b);
}

static void
busy_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError **error = data;

	g_assert_null(cp_modem_provision_finish(NULL, res, error));
}

/* One operation at a time: a second one is refused, the first goes on. */
static void
test_busy(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(CpSecret) k = cp_secret_new_from_hex(NEW_K, 16);
	g_autoptr(CpSecret) opc = cp_secret_new_from_hex(NEW_OPC, 16);
	CpModemTarget t = {
		.imsi = NEW_IMSI, .mnc_length = 2, .plmn = "00101",
		.network_name = "x", .apn = "x", .k = k, .opc = opc,
	};
	GError *busy = NULL;

	bench_start(&b, FALSE, NULL);
	m = modem_new(&b, ADM1);
	b.modem = m;
	cp_modem_provision_async(m, &t, progress_cb, backup_cb, &b, NULL, provision_cb, &b);
	cp_modem_provision_async(m, &t, NULL, NULL, NULL, NULL, busy_cb, &busy);
	g_main_loop_run(b.loop);
	g_assert_error(busy, CP_ERROR, CP_ERR_BUSY);
	g_clear_error(&busy);
	g_assert_no_error(b.error);
	g_assert_cmpuint(b.backups, ==, 1);
	bench_stop(&b);
}

/* The network never answers within the registration timeout. */
static void
test_reg_timeout(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(CpSecret) a = cp_secret_new_from((const uint8_t *)ADM1, 8);
	g_autoptr(GError) error = NULL;
	gint64 t0 = g_get_monotonic_time();

	/* attach takes 3 s; the backend waits 1 s */
	bench_start(&b, FALSE, "--registration-delay=3000");
	{
		CpModemConfig cfg = {
			.backend = CP_MODEM_BACKEND_QMI, .device = b.sim.pty, .card = "sysmo-isim-sja2",
			.adm1 = a, .registration_timeout = 1, .request_timeout = 2,
		};

		m = cp_modem_new(&cfg, &error);
		g_assert_no_error(error);
	}
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_REG_TIMEOUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 6 * G_USEC_PER_SEC);
	assert_old_values(&b);
	bench_stop(&b);
}

/* ---- a module that re-enumerates after its reset ------------------------ */

static void
bench_sysfs(Bench *b, guint timeout)
{
	b->sysfs = cp_test_sim_file(&b->sim, "sys");
	b->reenumerate_timeout = timeout;
}

/* The default module: the port goes after the reset and comes back under
 * another name on the same USB device and interface; the provisioning
 * follows it there and ends registered. */
static void
test_reenumerate_new_name(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;
	g_autofree char *pty2 = NULL, *moved = NULL;

	bench_start(&b, FALSE, "--reenumerate-path @pty2 --sysfs @sys --usb-port=2-1.4 --reset-delay=400");
	bench_sysfs(&b, 5);
	pty2 = cp_test_sim_file(&b.sim, "pty2");
	moved = g_strdup_printf("the modem's port is now %s", pty2);
	m = modem_new(&b, ADM1);
		cp_test_log_clear();
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	g_assert_nonnull(b.result);
	g_assert_cmpstr(b.result->imsi, ==, NEW_IMSI);
	g_assert_cmpstr(b.result->registered_plmn, ==, "00101");
	g_assert_true(log_has("following it"));
	g_assert_true(log_has(moved));
	g_assert_true(log_has("the modem is back, with the same card"));
	/* the reopening is part of the reset, and no phase went back */
	g_assert_false(b.phase_went_back);
	g_assert_cmpuint(b.last_phase, ==, CP_MODEM_PHASE_REGISTERING);
	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "port"), ==, pty2);
	g_assert_cmpstr(dump_get(d, "resets"), ==, "1");
	g_assert_cmpstr(dump_get(d, "modem-imsi"), ==, NEW_IMSI);
	g_assert_cmpstr(dump_get(d, "registration"), ==, "registered");
	/* the SJA5's key file: the rest of its 67 bytes kept */
	g_assert_true(g_str_has_prefix(dump_get(d, "ef-usim-auth-key"), "14" NEW_K NEW_OPC));

	/* the next operation finds the module under its new name too: a
	 * restore puts the old values back (its own reset sends the port
	 * back to the first name) */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(CpModemBackup) backup = cp_modem_backup_deserialize(b.backup_bytes, &error);

		g_assert_no_error(error);
		g_clear_error(&b.error);
		cp_modem_restore_async(m, backup, NULL, NULL, NULL, restore_cb, &b);
		g_main_loop_run(b.loop);
		g_assert_no_error(b.error);
		assert_old_values(&b);
	}
	bench_stop(&b);
}

/* Without sysfs the port is awaited at its configured path: a module that
 * comes back there is followed; the same code path. */
static void
test_reenumerate_same_path(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;

	bench_start(&b, FALSE, "--reset-delay=300");
	b.reenumerate_timeout = 5;
	m = modem_new(&b, ADM1);
		cp_test_log_clear();
	provision(&b, m, NEW_K);
	g_assert_no_error(b.error);
	g_assert_cmpstr(b.result->imsi, ==, NEW_IMSI);
	g_assert_true(log_has("following it"));
	g_assert_false(log_has("the modem's port is now"));
	bench_stop(&b);
}

/* Back after the reenumerate-timeout: the provisioning fails, and its
 * rollback (which waits for the port again) puts the old values back. */
static void
test_reenumerate_late(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;

	bench_start(&b, FALSE, "--reenumerate-path @pty2 --sysfs @sys --reset-delay=1800");
	bench_sysfs(&b, 1);
	m = modem_new(&b, ADM1);
		cp_test_log_clear();
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_MODEM_GONE);
	g_assert_nonnull(strstr(b.error->message, "did not come back within 1 s"));
	g_assert_true(log_has("the old subscription is back"));
	assert_old_values(&b);
	bench_stop(&b);
}

/* Never back: reported as CP_ERR_ROLLBACK (the daemon keeps the backup
 * and restores when the module is back), the card still new. */
static void
test_reenumerate_never(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;
	gint64 t0 = g_get_monotonic_time();

	bench_start(&b, FALSE, "--sysfs @sys --reset-delay=600000");
	bench_sysfs(&b, 1);
	m = modem_new(&b, ADM1);
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ROLLBACK);
	g_assert_nonnull(strstr(b.error->message, "did not come back"));
	g_assert_nonnull(b.backup_bytes);
	/* two bounded waits, the follow's and the rollback's */
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 2 * G_USEC_PER_SEC);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
	d = dump_read(&b);
	g_assert_cmpstr(dump_get(d, "port"), ==, "");
	g_assert_cmpstr(dump_get(d, "imsi"), ==, NEW_IMSI);
	bench_stop(&b);
}

/* Another module, with another card, where the first one was. */
static gboolean
other_module_cb(gpointer data)
{
	Bench *b = data;
	g_autoptr(GError) error = NULL;
	g_autofree char *pty2 = NULL, *sys = NULL, *iccid = NULL;
	int out_fd;
	char buf[64];

	if (!b->backups || g_file_test(b->sim.pty, G_FILE_TEST_EXISTS) ||
	    g_file_test(b->sim.pty, G_FILE_TEST_IS_SYMLINK))
		return G_SOURCE_CONTINUE;
	b->other_id = 0;
	pty2 = cp_test_sim_file(&b->sim, "pty2");
	sys = cp_test_sim_file(&b->sim, "sys");
	b->other_dump = cp_test_sim_file(&b->sim, "dump2");
	iccid = g_strdup_printf("--iccid=%s", b->other_card);
	{
		const char *argv[] = {
			sim_path, "--pty", pty2, "--sysfs", sys, "--dump", b->other_dump, iccid,
			"--reset-delay=20", "--registration-delay=20", NULL,
		};

		g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
						       cp_test_child_setup, NULL, &b->other_pid, NULL, &out_fd, NULL,
						       &error));
	}
	g_assert_no_error(error);
	/* ready once it has said so */
	g_assert_cmpint(read(out_fd, buf, sizeof(buf)), >, 0);
	close(out_fd);
	return G_SOURCE_REMOVE;
}

/* The module comes back with another card: refused before anything is
 * written to it; the rollback refuses it too, so the error is
 * CP_ERR_ROLLBACK and the backup stays with the daemon. */
static void
test_reenumerate_other_card(void)
{
	Bench b;
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GHashTable) d = NULL;

	bench_start(&b, FALSE, "--sysfs @sys --reset-delay=600000");
	bench_sysfs(&b, 3);
	b.other_card = "8988211000000000025";
	b.other_id = g_timeout_add(20, other_module_cb, &b);
	m = modem_new(&b, ADM1);
		cp_test_log_clear();
	provision(&b, m, NEW_K);
	g_assert_error(b.error, CP_ERROR, CP_ERR_ROLLBACK);
	g_assert_nonnull(strstr(b.error->message, "came back with another card"));
	g_assert_nonnull(strstr(b.error->message, "not the one the backup was taken from"));
	g_assert_nonnull(b.backup_bytes);
	g_assert_true(b.other_pid != 0);
	/* nothing written to the other card */
	d = cp_test_sim_dump_read(&(CpTestSim){ .dump = b.other_dump });
	g_assert_cmpstr(dump_get(d, "card-updates"), ==, "0");
	g_assert_cmpstr(dump_get(d, "imsi"), ==, OLD_IMSI);
	bench_stop(&b);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	cp_test_log_capture();
	/* libqmi warns when the port breaks, which is a case under test */
	g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
	sim_path = g_getenv("CP_QMI_SIM");
	if (!sim_path) {
		g_printerr("CP_QMI_SIM is not set\n");
		return 1;
	}
	/* a private network namespace gives this test its own @qmi-proxy */
	have_netns = unshare(CLONE_NEWNET) == 0;

	g_test_add_data_func("/qmi/backend/success-pty", GINT_TO_POINTER(FALSE), test_success);
	g_test_add_data_func("/qmi/backend/success-proxy", GINT_TO_POINTER(TRUE), test_success);
	g_test_add_func("/qmi/backend/success-sja2", test_success_sja2);
	g_test_add_func("/qmi/backend/wrong-adm1", test_wrong_adm1);
	g_test_add_func("/qmi/backend/adm1-last-attempt", test_adm1_last_attempt);
	g_test_add_func("/qmi/backend/unknown-card", test_unknown_card);
	/* each of the six files written */
	for (guint n = 1; n <= 6; n++) {
		g_autofree char *name = g_strdup_printf("/qmi/backend/write-failure-%u", n);

		g_test_add_data_func(name, GUINT_TO_POINTER(n), test_write_failure);
	}
	g_test_add_func("/qmi/backend/registration-denied", test_reg_denied);
	g_test_add_func("/qmi/backend/no-response", test_no_response);
	g_test_add_data_func("/qmi/backend/vanish-before-writes", GINT_TO_POINTER(FALSE), test_vanish);
	g_test_add_data_func("/qmi/backend/vanish-during-writes", GINT_TO_POINTER(TRUE), test_vanish);
	g_test_add_func("/qmi/backend/restore", test_restore);
	g_test_add_func("/qmi/backend/restore-twice", test_restore_twice);
	g_test_add_func("/qmi/backend/restore-version1", test_restore_version1);
	g_test_add_func("/qmi/backend/no-logical-channel", test_no_logical_channel);
	g_test_add_func("/qmi/backend/no-isim", test_no_isim);
	g_test_add_func("/qmi/backend/aid-from-modem", test_aid_from_modem);
	g_test_add_func("/qmi/backend/sfi-refused", test_sfi_refused);
	g_test_add_func("/qmi/backend/restore-cancelled", test_restore_cancelled);
	g_test_add_func("/qmi/backend/restore-other-card", test_restore_other_card);
	g_test_add_func("/qmi/backend/restore-in-callback", test_restore_in_callback);
	g_test_add_func("/qmi/backend/busy", test_busy);
	g_test_add_func("/qmi/backend/registration-timeout", test_reg_timeout);
	g_test_add_func("/qmi/backend/cancel-before-write", test_cancel_before_write);
	g_test_add_func("/qmi/backend/cancel-at-backup", test_cancel_at_backup);
	g_test_add_data_func("/qmi/backend/cancel-after-write", GINT_TO_POINTER(FALSE), test_cancel_after_write);
	g_test_add_data_func("/qmi/backend/cancel-after-write-rollback-fails", GINT_TO_POINTER(TRUE),
			     test_cancel_after_write);
	g_test_add_func("/qmi/backend/backup-garbage", test_backup_garbage);
	g_test_add_func("/qmi/backend/backup-bad", test_backup_bad);
	g_test_add_func("/qmi/backend/bad-config", test_bad_config);
	g_test_add_func("/qmi/backend/reenumerate-new-name", test_reenumerate_new_name);
	g_test_add_func("/qmi/backend/reenumerate-same-path", test_reenumerate_same_path);
	g_test_add_func("/qmi/backend/reenumerate-late", test_reenumerate_late);
	g_test_add_func("/qmi/backend/reenumerate-never", test_reenumerate_never);
	g_test_add_func("/qmi/backend/reenumerate-other-card", test_reenumerate_other_card);
	rc = g_test_run();
	if (rc == 0 && !have_netns)
		return cp_test_missing("no network namespace (unshare -n) for a private @qmi-proxy");
	return rc;
}
