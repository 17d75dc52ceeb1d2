/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon in-process with a real modem backend on its simulator:
 * QMI on cp-qmi-sim (real libqmi in between), AT on cp-at-sim, MBIM on
 * cp-mbim-sim (real libmbim and a real mbim-proxy, in a network namespace
 * of this test's own); CP_FLOW_BACKEND chooses (qmi when unset), each
 * backend is one meson test. A profile accepted and provisioned commits its
 * profile_seq, the commit survives a restart, and the same profile
 * written again after a re-arm is refused as a replay with a receipt MAC'd
 * with K''. The simulated network knows the subscription the profile
 * carries (K_usim from K', the profile's OPc), so the registration is
 * real AKA against the card the backend wrote.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cellprov.h"
#include "cp-test-operator.h"
#include "cp-daemon.h"
#include "cp-glib.h"
#include "cp-poll.h"
#include "cp-test-https.h"
#include "cp-test-sim.h"

#define OLD_IMSI "001010123456789"
#define NEW_IMSI "001010000000001"
#define ADM1 "12345678"

static const char *sim_path;
static const char *backend = "qmi";

typedef struct {
	char *dir;
	char *state_dir;
	char *pty;
	char *conf_text;
	CpKey *key;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint8_t *info;
	size_t info_len;
	GPid sim;
	CpDaemon *d;
	GMainLoop *loop;
	/* the profile, as the SM makes it, and the keys the companion keeps */
	CpProfile p;
	CpSecret *k_prime;
	CpSecret *opc;
	CpSecret *k2;
	CpSecret *k_prof;
	gboolean stop_at_decommissioning;
	const char *const *sim_args;     /* more simulator options */
	CpTestHttps https;
	CpPoll *poll;
} Fixture;

static void
write_secret(const char *path, const void *data, gsize len)
{
	g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
	g_assert_cmpint(chmod(path, 0600), ==, 0);
}

/* The operator whose SM signs the test profiles (made once). */
static const CpTestOperator *
test_operator(void)
{
	static CpTestOperator op;
	static gboolean made;

	if (!made) {
		g_assert_true(cp_test_operator_make(&op, "Test Operator"));
		made = TRUE;
	}
	return &op;
}

/* Another operator (made once). */
static const CpTestOperator *
other_operator(void)
{
	static CpTestOperator op;
	static gboolean made;

	if (!made) {
		g_assert_true(cp_test_operator_make(&op, "Other Operator"));
		made = TRUE;
	}
	return &op;
}

static const CpTestOperator *signer;

static void
make_profile(Fixture *f, uint64_t seq)
{
	g_autoptr(CpSecret) k_sm = NULL;

	cp_secret_free(f->k_prime);
	cp_secret_free(f->opc);
	cp_secret_free(f->k2);
	cp_secret_free(f->k_prof);
	signer = test_operator();
	f->k_prime = cp_secret_new(32);
	f->opc = cp_secret_new(16);
	g_assert_cmpint(cp_random(f->k_prime->data, f->k_prime->len), ==, CP_OK);
	g_assert_cmpint(cp_random(f->opc->data, f->opc->len), ==, CP_OK);
	memset(&f->p, 0, sizeof(f->p));
	f->p.version = CP_PROFILE_VERSION;
	f->p.operation = CP_OP_CLAIM;
	f->p.binding_version = 1;
	memcpy(f->p.op_chain, test_operator()->chain, test_operator()->chain_len);
	f->p.op_chain_len = test_operator()->chain_len;
	memcpy(f->p.device_id, f->device_id, CP_DEVICE_ID_LEN);
	f->p.profile_seq = seq;
	g_assert_cmpint(cp_random(f->p.nonce, sizeof(f->p.nonce)), ==, CP_OK);
	f->p.has_not_after = TRUE;
	f->p.not_after = (uint64_t)(g_get_real_time() / G_USEC_PER_SEC) + 600;
	g_assert_cmpint(cp_enc_cred_seal(CP_SUITE_B, f->key, NULL, f->k_prime, f->opc, f->p.enc_cred,
					 &f->p.enc_cred_len), ==, CP_OK);
	strcpy(f->p.plmn, "00101");
	strcpy(f->p.network_name, "cellprov test network");
	strcpy(f->p.supi, NEW_IMSI);
	strcpy(f->p.apn, "internet");
	k_sm = cp_keys_k_sm(f->k_prime, f->p.device_id);
	f->k_prof = cp_keys_k_prof(k_sm, f->p.nonce);
	f->k2 = cp_keys_k2(k_sm, f->p.nonce, f->info, f->info_len);
	g_assert_nonnull(f->k2);
}

static GBytes *
profile_ndef(Fixture *f)
{
	cp_auto_buf buf = CP_BUF_INIT;
	cp_auto_buf out = CP_BUF_INIT;
	CpNdefMessage msg;

	g_assert_cmpint(cp_profile_encode(&f->p, signer->sm_key, f->k_prof, &buf), ==, CP_OK);
	memset(&msg, 0, sizeof(msg));
	cp_ndef_record_mime(&msg.records[0], CP_MIME_PROFILE, buf.data, buf.len);
	msg.n_records = 1;
	g_assert_cmpint(cp_ndef_encode(&msg, &out), ==, CP_OK);
	return g_bytes_new(out.data, out.len);
}

/* The backend's simulator on a pty; its network knows the profile's
 * subscription. */
static void
start_sim(Fixture *f)
{
	g_autoptr(CpSecret) k_usim = cp_keys_k_usim(f->k_prime);
	g_autofree char *k_hex = cp_hex_strdup(k_usim->data, k_usim->len);
	g_autofree char *opc_hex = cp_hex_strdup(f->opc->data, f->opc->len);
	g_autofree char *subs = g_build_filename(f->dir, "subscribers", NULL);
	g_autofree char *dump = g_build_filename(f->dir, "dump", NULL);
	g_autofree char *text = g_strdup_printf("# test network\n%s %s %s 000000000020\n",
						NEW_IMSI, k_hex, opc_hex);
	const char *base[] = {
		sim_path, "--pty", f->pty, "--dump", dump, "--subscribers", subs,
		"--adm1", ADM1, "--imsi", OLD_IMSI, "--reset-delay=20", "--registration-delay=20",
	};
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	for (gsize i = 0; i < G_N_ELEMENTS(base); i++)
		g_ptr_array_add(argv, (gpointer)base[i]);
	for (const char *const *a = f->sim_args; a && *a; a++)
		g_ptr_array_add(argv, (gpointer)*a);
	g_ptr_array_add(argv, NULL);

	write_secret(subs, text, strlen(text));
	cp_cleanse(text, strlen(text));
	f->sim = cp_test_spawn_ready((const char *const *)argv->pdata);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *key_path = NULL, *adm1_path = NULL, *id_hex = NULL;
	cp_auto_buf info = CP_BUF_INIT;
	CpDeviceRecord dr;
	char *pem;

	f->dir = g_dir_make_tmp("cp-flow-XXXXXX", &error);
	g_assert_no_error(error);
	f->state_dir = g_build_filename(f->dir, "state", NULL);
	f->pty = g_build_filename(f->dir, "pty", NULL);
	key_path = g_build_filename(f->dir, "device-key.pem", NULL);
	adm1_path = g_build_filename(f->dir, "adm1", NULL);
	f->key = cp_p256_generate();
	g_assert_nonnull(f->key);
	pem = cp_pkey_to_pem(f->key);
	write_secret(key_path, pem, strlen(pem));
	cp_cleanse(pem, strlen(pem));
	free(pem);
	write_secret(adm1_path, ADM1 "\n", strlen(ADM1) + 1);
	g_assert_cmpint(cp_device_id(f->key, f->device_id), ==, CP_OK);
	id_hex = cp_hex_strdup(f->device_id, sizeof(f->device_id));
	f->conf_text = g_strdup_printf(
		"[device]\nkey=%s\ncertificate-url=https://certs.example.net/devices/%s\n"
		"manufacturer=Example Ltd\nmodel=GW-1\nserial=SN0001\nsuites=B\n"
		"[modem]\nbackend=%s\ndevice=%s\nproxy=false\ncard=sysmo-isim-sja2\nadm1=%s\n"
		"registration-timeout=15\n"
		"[daemon]\nstate-directory=%s\n", key_path, id_hex, backend, f->pty, adm1_path,
		f->state_dir);

	memset(&dr, 0, sizeof(dr));
	dr.version = 1;
	memcpy(dr.device_id, f->device_id, sizeof(dr.device_id));
	strcpy(dr.manufacturer, "Example Ltd");
	strcpy(dr.model, "GW-1");
	strcpy(dr.serial, "SN0001");
	dr.suites[0] = CP_SUITE_B;
	dr.n_suites = 1;
	g_assert_cmpint(cp_device_record_info(&dr, &info), ==, CP_OK);
	f->info = g_memdup2(info.data, info.len);
	f->info_len = info.len;
	f->loop = g_main_loop_new(NULL, FALSE);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

	cp_poll_free(f->poll);
	cp_test_https_stop(&f->https);
	cp_daemon_free(f->d);
	if (f->sim) {
		kill(f->sim, SIGTERM);
		waitpid(f->sim, NULL, 0);
		g_spawn_close_pid(f->sim);
	}
	cp_key_free(f->key);
	cp_secret_free(f->k_prime);
	cp_secret_free(f->opc);
	cp_secret_free(f->k2);
	cp_secret_free(f->k_prof);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(f->dir);
	g_free(f->state_dir);
	g_free(f->pty);
	g_free(f->conf_text);
	g_free(f->info);
	g_main_loop_unref(f->loop);
}

static void
on_state_changed(CpDaemon *d, CpState old, CpState new_state, CpEvent ev, gpointer data)
{
	Fixture *f = data;

	if (!cp_state_is_busy(new_state) && new_state != CP_STATE_RECEIVED &&
	    new_state != CP_STATE_VERIFIED &&
	    (new_state != CP_STATE_DECOMMISSIONING || f->stop_at_decommissioning))
		g_main_loop_quit(f->loop);
}

static gboolean
on_timeout(gpointer data)
{
	g_error("the attempt did not end within 60 s");
	return G_SOURCE_REMOVE;
}

/* The daemon as cellprovd runs it: the backend it makes from [modem]. */
static CpDaemon *
start_daemon(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	CpConf *conf = cp_conf_load_data(f->conf_text, strlen(f->conf_text), "test.conf", &error);
	CpDaemonListener l = { .state_changed = on_state_changed };
	CpDaemon *d;

	g_assert_no_error(error);
	d = cp_daemon_new(conf, &error);
	g_assert_no_error(error);
	cp_daemon_set_transport(d, NULL);
	cp_daemon_add_listener(d, &l, f);
	g_assert_true(cp_daemon_start(d, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(cp_daemon_get_backend_name(d), ==, backend);
	return d;
}

static void
write_and_wait(Fixture *f)
{
	g_autoptr(GBytes) ndef = profile_ndef(f);
	guint id = g_timeout_add_seconds(60, on_timeout, NULL);

	cp_daemon_profile_written(f->d, ndef);
	if (cp_state_is_busy(cp_daemon_get_state(f->d)) ||
	    cp_daemon_get_state(f->d) == CP_STATE_VERIFIED)
		g_main_loop_run(f->loop);
	g_source_remove(id);
}

static void
check_receipt(Fixture *f, CpReceiptStatus status, CpError reason)
{
	GBytes *rb = cp_daemon_get_receipt(f->d);
	const uint8_t *buf;
	gsize len = 0;
	CpReceipt r;

	g_assert_nonnull(rb);
	buf = g_bytes_get_data(rb, &len);
	/* the MAC verifies with K'' (what the companion checks) */
	g_assert_cmpint(cp_receipt_verify(buf, len, f->k2, &r), ==, CP_OK);
	g_assert_true(r.has_mac);
	g_assert_cmpmem(r.device_id, sizeof(r.device_id), f->device_id, sizeof(f->device_id));
	g_assert_cmpuint(r.profile_seq, ==, f->p.profile_seq);
	g_assert_cmpuint(r.status, ==, status);
	g_assert_cmpuint(r.reason, ==, reason);
}

static void
check_committed(Fixture *f, uint64_t seq)
{
	g_autoptr(GError) error = NULL;
	CpJournal j;
	gboolean found = FALSE;

	g_assert_cmpuint(cp_daemon_get_profile_seq(f->d), ==, seq);
	g_assert_true(cp_journal_load(f->state_dir, &j, &found, &error));
	g_assert_no_error(error);
	g_assert_true(found);
	g_assert_cmpuint(j.committed_seq, ==, seq);
	cp_journal_clear(&j);
}

static void
test_accept_restart_replay(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	make_profile(f, 17);
	start_sim(f);
	f->d = start_daemon(f);
	g_assert_cmpuint(cp_daemon_get_profile_seq(f->d), ==, 0);

	/* accepted, written to the card, registered: profile_seq committed */
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	g_assert_cmpstr(cp_daemon_get_imsi(f->d), ==, NEW_IMSI);
	check_receipt(f, CP_RECEIPT_PROVISIONED, CP_OK);
	check_committed(f, 17);

	/* a restart finds it committed */
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	check_committed(f, 17);

	/* re-armed, the same profile again: a replay, and the receipt says
	 * so under K'' */
	g_assert_true(cp_daemon_rearm(f->d, &error));
	g_assert_no_error(error);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_REPLAY);
	check_receipt(f, CP_RECEIPT_REJECTED, CP_ERR_REPLAY);
	check_committed(f, 17);
}

/* The profile made by another SM: its chain, its key. */
static void
sign_with(Fixture *f, const CpTestOperator *op, uint8_t operation, uint64_t binding)
{
	signer = op;
	memcpy(f->p.op_chain, op->chain, op->chain_len);
	f->p.op_chain_len = op->chain_len;
	f->p.operation = operation;
	f->p.binding_version = binding;
	f->p.has_replaces = operation == CP_OP_TRANSFER;
	f->p.replaces = operation == CP_OP_TRANSFER ? binding - 1 : 0;
}

/* The network learns the profile's subscription (what the AUSF does). */
static void
add_subscriber(Fixture *f)
{
	g_autofree char *subs = g_build_filename(f->dir, "subscribers", NULL);
	g_autoptr(CpSecret) k_usim = cp_keys_k_usim(f->k_prime);
	g_autofree char *k_hex = cp_hex_strdup(k_usim->data, k_usim->len);
	g_autofree char *opc_hex = cp_hex_strdup(f->opc->data, f->opc->len);
	g_autofree char *old = NULL;
	g_autofree char *text = NULL;

	g_assert_true(g_file_get_contents(subs, &old, NULL, NULL));
	text = g_strdup_printf("%s%s %s %s 000000000020\n", old, f->p.supi, k_hex, opc_hex);
	write_secret(subs, text, strlen(text));
	cp_cleanse(text, strlen(text));
}

/* The binding in memory and in the journal. */
static void
check_binding(Fixture *f, uint64_t version, const CpTestOperator *op)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *hex = cp_hex_strdup(op->pin, sizeof(op->pin));
	CpJournal j;
	gboolean found = FALSE;

	g_assert_true(cp_daemon_get_bound(f->d));
	g_assert_cmpuint(cp_daemon_get_binding_version(f->d), ==, version);
	g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, hex);
	g_assert_cmpstr(cp_daemon_get_owner_name(f->d), ==, "Test Operator");
	g_assert_true(cp_journal_load(f->state_dir, &j, &found, &error));
	g_assert_no_error(error);
	g_assert_true(j.bound);
	g_assert_cmpuint(j.binding_version, ==, version);
	g_assert_true(j.has_pin);
	g_assert_cmpmem(j.operator_pin, sizeof(j.operator_pin), op->pin, sizeof(op->pin));
	g_assert_cmpstr(j.operator_name, ==, "Test Operator");
	cp_journal_clear(&j);
}

static GBytes *
read_dump(Fixture *f)
{
	g_autofree char *path = g_build_filename(f->dir, "dump", NULL);
	char *data = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	return g_bytes_new_take(data, len);
}

/*
 * Trust on first use, for real on cp-qmi-sim: the first provisioning pins
 * its operator (journal, restart); another operator is then refused with
 * "operator" and nothing reaches the card; the owner's claim is refused
 * with "binding" under K''; a transfer that fails at registration and is
 * rolled back leaves the binding as it was; a reprovision at the binding
 * version, and then a transfer, succeed and move it.
 */
static void
test_binding(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) card = NULL;

	make_profile(f, 17);
	start_sim(f);
	f->d = start_daemon(f);
	g_assert_cmpstr(cp_daemon_get_trust_mode(f->d), ==, "first-use");
	g_assert_false(cp_daemon_get_bound(f->d));
	g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, "");

	/* the claim succeeds: bound at version 1, pinned */
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	check_binding(f, 1, test_operator());
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	check_binding(f, 1, test_operator());
	g_assert_true(cp_daemon_rearm(f->d, &error));

	/* another operator, whose own chain is fine: refused before any
	 * key work, no MAC, the card untouched */
	card = read_dump(f);
	make_profile(f, 18);
	sign_with(f, other_operator(), CP_OP_REPROVISION, 1);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_OPERATOR);
	{
		gsize len = 0;
		const uint8_t *buf = g_bytes_get_data(cp_daemon_get_receipt(f->d), &len);
		CpReceipt r;

		g_assert_cmpint(cp_receipt_decode(buf, len, &r), ==, CP_OK);
		g_assert_false(r.has_mac);
		g_assert_cmpuint(r.status, ==, CP_RECEIPT_REJECTED);
		g_assert_cmpuint(r.reason, ==, CP_ERR_OPERATOR);
	}
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	{
		g_autoptr(GBytes) now = read_dump(f);

		g_assert_true(g_bytes_equal(card, now));
	}
	check_committed(f, 17);
	check_binding(f, 1, test_operator());

	/* a claim at another binding version (another owner's, for a bound
	 * device) */
	make_profile(f, 19);
	sign_with(f, test_operator(), CP_OP_CLAIM, 2);
	write_and_wait(f);
	check_receipt(f, CP_RECEIPT_REJECTED, CP_ERR_BINDING);
	check_committed(f, 17);
	check_binding(f, 1, test_operator());

	/* a transfer the network does not know: registration is denied,
	 * the card rolled back, the binding as it was */
	make_profile(f, 20);
	sign_with(f, test_operator(), CP_OP_TRANSFER, 2);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_FAILED);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), !=, CP_OK);
	check_receipt(f, CP_RECEIPT_FAILED, cp_daemon_get_last_error(f->d, NULL));
	check_committed(f, 20);
	check_binding(f, 1, test_operator());
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	check_binding(f, 1, test_operator());

	/* a reprovision at the binding version, known to the network */
	g_assert_true(cp_daemon_rearm(f->d, &error));
	make_profile(f, 21);
	sign_with(f, test_operator(), CP_OP_REPROVISION, 1);
	strcpy(f->p.supi, "001010000000002");
	add_subscriber(f);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	check_receipt(f, CP_RECEIPT_PROVISIONED, CP_OK);
	check_binding(f, 1, test_operator());

	/* and a transfer that succeeds moves it */
	g_assert_true(cp_daemon_rearm(f->d, &error));
	make_profile(f, 22);
	sign_with(f, test_operator(), CP_OP_TRANSFER, 2);
	strcpy(f->p.supi, "001010000000003");
	add_subscriber(f);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	check_binding(f, 2, test_operator());
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	check_binding(f, 2, test_operator());
}

/* The card's files (IMSI, AD, SPN, K and OPc), as the simulator dumps
 * them, without its counters. */
static char *
card_files(Fixture *f)
{
	g_autoptr(GBytes) dump = read_dump(f);
	g_autofree char *text = g_strndup(g_bytes_get_data(dump, NULL), g_bytes_get_size(dump));
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	GString *out = g_string_new(NULL);

	for (char **l = lines; *l; l++)
		if (g_str_has_prefix(*l, "ef-") || g_str_has_prefix(*l, "imsi="))
			g_string_append_printf(out, "%s\n", *l);
	return g_string_free(out, FALSE);
}

/* One line of the simulator's dump ("modem-imsi", "registration"). */
static char *
dump_value(Fixture *f, const char *key)
{
	g_autoptr(GBytes) dump = read_dump(f);
	g_autofree char *text = g_strndup(g_bytes_get_data(dump, NULL), g_bytes_get_size(dump));
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	g_autofree char *prefix = g_strconcat(key, "=", NULL);

	for (char **l = lines; *l; l++)
		if (g_str_has_prefix(*l, prefix))
			return g_strdup(*l + strlen(prefix));
	return NULL;
}

/* Registered, as the simulator says: QMI's serving system, MBIM's
 * register state, AT's +CEREG <stat> (home or roaming). */
static gboolean
modem_registered(Fixture *f)
{
	g_autofree char *reg = dump_value(f, strcmp(backend, "at") == 0 ? "stat" : "registration");

	if (strcmp(backend, "at") == 0)
		return g_strcmp0(reg, "1") == 0 || g_strcmp0(reg, "5") == 0;
	if (strcmp(backend, "mbim") == 0)
		return g_strcmp0(reg, "home") == 0 || g_strcmp0(reg, "roaming") == 0;
	return g_strcmp0(reg, "registered") == 0;
}

/* The receipt on the tag: signed by this device, MAC'd with k2 (NULL: no
 * mac), at binding version binding. */
static void
check_receipt_v2(Fixture *f, uint64_t seq, CpReceiptStatus status, CpError reason,
		 const CpSecret *k2, uint64_t binding)
{
	GBytes *rb = cp_daemon_get_receipt(f->d);
	const uint8_t *buf;
	gsize len = 0;
	CpReceipt r;

	g_assert_nonnull(rb);
	buf = g_bytes_get_data(rb, &len);
	g_assert_cmpint(cp_receipt_verify_device(buf, len, f->key, &r), ==, CP_OK);
	if (k2) {
		g_assert_cmpint(cp_receipt_verify(buf, len, k2, &r), ==, CP_OK);
	} else {
		g_assert_false(r.has_mac);
	}
	g_assert_cmpuint(r.version, ==, CP_RECEIPT_VERSION);
	g_assert_cmpuint(r.profile_seq, ==, seq);
	g_assert_cmpuint(r.status, ==, status);
	g_assert_cmpuint(r.reason, ==, reason);
	g_assert_cmpuint(r.binding_version, ==, binding);
}

/* A command as the SM makes it. */
static GBytes *
command_ndef(Fixture *f, const CpTestOperator *op, const uint8_t *device_id, uint64_t seq,
	     uint64_t binding, int64_t not_after_in)
{
	cp_auto_buf buf = CP_BUF_INIT;
	cp_auto_buf out = CP_BUF_INIT;
	CpNdefMessage msg;
	CpCommand c;

	memset(&c, 0, sizeof(c));
	c.version = CP_COMMAND_VERSION;
	memcpy(c.device_id, device_id, CP_DEVICE_ID_LEN);
	c.seq = seq;
	c.has_not_after = TRUE;
	c.not_after = (uint64_t)(g_get_real_time() / G_USEC_PER_SEC + not_after_in);
	c.command = CP_COMMAND_DECOMMISSION;
	c.binding_version = binding;
	memcpy(c.op_chain, op->chain, op->chain_len);
	c.op_chain_len = op->chain_len;
	g_assert_cmpint(cp_command_encode(&c, op->sm_key, &buf), ==, CP_OK);
	memset(&msg, 0, sizeof(msg));
	cp_ndef_record_mime(&msg.records[0], CP_MIME_COMMAND, buf.data, buf.len);
	msg.n_records = 1;
	g_assert_cmpint(cp_ndef_encode(&msg, &out), ==, CP_OK);
	return g_bytes_new(out.data, out.len);
}

static void
write_ndef_and_wait(Fixture *f, GBytes *ndef)
{
	guint id = g_timeout_add_seconds(60, on_timeout, NULL);

	cp_daemon_profile_written(f->d, ndef);
	if (cp_state_is_busy(cp_daemon_get_state(f->d)) ||
	    cp_daemon_get_state(f->d) == CP_STATE_VERIFIED ||
	    (cp_state_is_command(cp_daemon_get_state(f->d)) && !f->stop_at_decommissioning))
		g_main_loop_run(f->loop);
	g_source_remove(id);
}

static void
provision_as(Fixture *f, uint64_t seq, const CpTestOperator *op, uint8_t operation,
	     uint64_t binding, const char *supi, gboolean known)
{
	make_profile(f, seq);
	sign_with(f, op, operation, binding);
	strcpy(f->p.supi, supi);
	if (known)
		add_subscriber(f);
	write_and_wait(f);
}

static void
check_journal_lifecycle(Fixture *f, gboolean original, gboolean owner_k2)
{
	g_autoptr(GError) error = NULL;
	CpJournal j;
	gboolean found = FALSE;

	g_assert_true(cp_journal_load(f->state_dir, &j, &found, &error));
	g_assert_no_error(error);
	g_assert_cmpint(!!j.original, ==, original);
	g_assert_cmpint(!!j.owner_k2, ==, owner_k2);
	g_assert_false(j.original_inexact);
	cp_journal_clear(&j);
}

/*
 * The lifecycle on cp-qmi-sim: a provisioned device re-provisioned
 * without a re-arm (new keys, registered); a re-provisioning the network
 * refuses rolls back to the working subscription and the device stays
 * provisioned and registered with it; a transfer to a higher binding
 * version; every bad command refused with nothing changed; a
 * decommission puts the card's files back byte for byte as they were
 * before the first provisioning, drops the binding and the pin, and the
 * device is claimable again by another operator.
 */
static void
test_lifecycle(Fixture *f, gconstpointer data)
{
	g_autofree char *card0 = NULL;
	g_autofree char *card = NULL;
	g_autoptr(CpSecret) owner_k2 = NULL;
	uint8_t other_device[CP_DEVICE_ID_LEN];

	make_profile(f, 17);
	start_sim(f);
	card0 = card_files(f);
	f->d = start_daemon(f);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	check_receipt_v2(f, 17, CP_RECEIPT_PROVISIONED, CP_OK, f->k2, 1);
	check_binding(f, 1, test_operator());
	check_journal_lifecycle(f, TRUE, TRUE);

	/* re-provisioned in place: no re-arm, new keys, registered */
	provision_as(f, 18, test_operator(), CP_OP_REPROVISION, 1, "001010000000002", TRUE);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	g_assert_cmpstr(cp_daemon_get_imsi(f->d), ==, "001010000000002");
	check_receipt_v2(f, 18, CP_RECEIPT_PROVISIONED, CP_OK, f->k2, 1);
	check_binding(f, 1, test_operator());
	card = card_files(f);
	g_assert_cmpstr(card, !=, card0);

	/* one the network does not know: rolled back to the working values,
	 * still provisioned and registered with them */
	provision_as(f, 19, test_operator(), CP_OP_REPROVISION, 1, "001010000000003", FALSE);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), !=, CP_OK);
	check_receipt_v2(f, 19, CP_RECEIPT_FAILED, cp_daemon_get_last_error(f->d, NULL), f->k2, 1);
	g_assert_cmpstr(cp_daemon_get_imsi(f->d), ==, "001010000000002");
	{
		g_autofree char *now = card_files(f);

		g_assert_cmpstr(now, ==, card);
		/* the rollback's reset does not wait for the modem: it comes
		 * back with the working subscription and registers */
		for (int i = 0; i < 100; i++) {
			g_autofree char *modem_imsi = dump_value(f, "modem-imsi");

			if (g_strcmp0(modem_imsi, "001010000000002") == 0 && modem_registered(f))
				break;
			g_assert_cmpint(i, <, 99);
			g_usleep(50000);
		}
	}
	check_committed(f, 19);
	check_binding(f, 1, test_operator());
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	g_assert_cmpstr(cp_daemon_get_imsi(f->d), ==, "001010000000002");

	/* a transfer to a higher binding version */
	provision_as(f, 20, test_operator(), CP_OP_TRANSFER, 2, "001010000000004", TRUE);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	check_receipt_v2(f, 20, CP_RECEIPT_PROVISIONED, CP_OK, f->k2, 2);
	check_binding(f, 2, test_operator());
	owner_k2 = cp_secret_dup(f->k2);
	g_free(card);
	card = card_files(f);

	/* bad commands: refused, nothing changes; the rejection is signed
	 * and MAC'd with the owner's K'' */
	memcpy(other_device, f->device_id, sizeof(other_device));
	other_device[0] ^= 1;
	{
		static const struct {
			const char *name;
			int op;                 /* 0: the owner's operator, 1: another */
			gboolean other_device;
			uint64_t seq, binding;
			int64_t not_after_in;
			CpError want;
		} bad[] = {
			{ "replayed", 0, FALSE, 20, 2, 600, CP_ERR_REPLAY },
			{ "another operator", 1, FALSE, 21, 2, 600, CP_ERR_OPERATOR },
			{ "another device", 0, TRUE, 21, 2, 600, CP_ERR_WRONG_DEVICE },
			{ "expired", 0, FALSE, 21, 2, -10, CP_ERR_EXPIRED },
			{ "an old binding version", 0, FALSE, 21, 1, 600, CP_ERR_BINDING },
		};

		for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_autoptr(GBytes) ndef = command_ndef(f, bad[i].op ? other_operator() : test_operator(),
							      bad[i].other_device ? other_device : f->device_id,
							      bad[i].seq, bad[i].binding, bad[i].not_after_in);
			g_autofree char *now = NULL;

			g_test_message("command: %s", bad[i].name);
			write_ndef_and_wait(f, ndef);
			g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
			g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, bad[i].want);
			check_receipt_v2(f, bad[i].want == CP_ERR_WRONG_DEVICE ? bad[i].seq : bad[i].seq,
					 CP_RECEIPT_REJECTED, bad[i].want, owner_k2, 2);
			check_committed(f, 20);
			check_binding(f, 2, test_operator());
			now = card_files(f);
			g_assert_cmpstr(now, ==, card);
		}
	}

	/* the decommission: the original card back, no owner, no pin */
	{
		g_autoptr(GBytes) ndef = command_ndef(f, test_operator(), f->device_id, 21, 2, 600);
		g_autofree char *now = NULL;

		write_ndef_and_wait(f, ndef);
		g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
		g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
		check_receipt_v2(f, 21, CP_RECEIPT_DECOMMISSIONED, CP_OK, owner_k2, 0);
		now = card_files(f);
		g_assert_cmpstr(now, ==, card0);
		g_assert_false(cp_daemon_get_bound(f->d));
		g_assert_cmpuint(cp_daemon_get_binding_version(f->d), ==, 0);
		g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, "");
		g_assert_cmpstr(cp_daemon_get_owner_name(f->d), ==, "");
		check_committed(f, 21);
		check_journal_lifecycle(f, FALSE, FALSE);

		/* the same command again: a replay, with no owner any more */
		write_ndef_and_wait(f, ndef);
		g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_REPLAY);
		check_receipt_v2(f, 21, CP_RECEIPT_REJECTED, CP_ERR_REPLAY, NULL, 0);
		g_free(now);
		now = card_files(f);
		g_assert_cmpstr(now, ==, card0);
	}

	/* claimable again, by another operator */
	provision_as(f, 22, other_operator(), CP_OP_CLAIM, 3, "001010000000005", TRUE);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	g_assert_true(cp_daemon_get_bound(f->d));
	g_assert_cmpuint(cp_daemon_get_binding_version(f->d), ==, 3);
	g_assert_cmpstr(cp_daemon_get_owner_name(f->d), ==, "Other Operator");
	/* and the original is the factory card again, not the last one */
	check_journal_lifecycle(f, TRUE, TRUE);
}

/* Factory reset: the binding and K'' go, the pin stays: another operator's
 * claim is refused, the pinned operator's taken. */
static void
test_factory_reset(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *pin = cp_hex_strdup(test_operator()->pin, sizeof(test_operator()->pin));
	g_autofree char *card = NULL;

	make_profile(f, 17);
	start_sim(f);
	f->d = start_daemon(f);
	write_and_wait(f);
	check_binding(f, 1, test_operator());
	card = card_files(f);

	g_assert_true(cp_daemon_factory_reset(f->d, &error));
	g_assert_no_error(error);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	g_assert_false(cp_daemon_get_bound(f->d));
	g_assert_cmpuint(cp_daemon_get_binding_version(f->d), ==, 0);
	g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, pin);
	check_committed(f, 17);
	check_journal_lifecycle(f, TRUE, FALSE);
	{
		g_autofree char *now = card_files(f);

		g_assert_cmpstr(now, ==, card);
	}
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	g_assert_false(cp_daemon_get_bound(f->d));
	g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, pin);

	/* another operator: refused, nothing written */
	provision_as(f, 18, other_operator(), CP_OP_CLAIM, 2, "001010000000002", TRUE);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_OPERATOR);
	check_committed(f, 17);
	{
		g_autofree char *now = card_files(f);

		g_assert_cmpstr(now, ==, card);
	}

	/* its own operator: taken */
	provision_as(f, 19, test_operator(), CP_OP_CLAIM, 1, "001010000000003", TRUE);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	check_binding(f, 1, test_operator());
	check_committed(f, 19);

	/* twice in a row is harmless */
	g_assert_true(cp_daemon_factory_reset(f->d, &error));
	g_assert_true(cp_daemon_factory_reset(f->d, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, pin);
}

/*
 * A decommission cut off at each journaled step: after the journal says
 * decommissioning and before the card is touched (a test hold, then the
 * daemon freed without running on: what kill -9 leaves), and after the
 * card is restored but before the commit (the journal of that step put
 * back). The next start finishes it either way.
 */
static void
test_decommission_crash(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *card0 = NULL;
	g_autofree char *journal_path = g_build_filename(f->state_dir, CP_JOURNAL_NAME, NULL);
	g_autoptr(CpSecret) owner_k2 = NULL;
	g_autoptr(GBytes) ndef = NULL;
	char *step = NULL;
	gsize step_len = 0;

	make_profile(f, 17);
	start_sim(f);
	card0 = card_files(f);
	f->d = start_daemon(f);
	write_and_wait(f);
	check_binding(f, 1, test_operator());
	owner_k2 = cp_secret_dup(f->k2);

	/* cut off before the card is touched */
	g_assert_true(cp_daemon_set_test_hold(f->d, CP_STATE_DECOMMISSIONING, 60000, &error));
	f->stop_at_decommissioning = TRUE;
	ndef = command_ndef(f, test_operator(), f->device_id, 18, 1, 600);
	write_ndef_and_wait(f, ndef);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_DECOMMISSIONING);
	f->stop_at_decommissioning = FALSE;
	g_assert_true(g_file_get_contents(journal_path, &step, &step_len, NULL));
	{
		g_autofree char *now = card_files(f);

		g_assert_cmpstr(now, !=, card0);
	}
	cp_daemon_free(f->d);

	/* the next start finishes it */
	f->d = start_daemon(f);
	if (cp_daemon_get_state(f->d) == CP_STATE_DECOMMISSIONING)
		g_main_loop_run(f->loop);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	check_receipt_v2(f, 18, CP_RECEIPT_DECOMMISSIONED, CP_OK, owner_k2, 0);
	{
		g_autofree char *now = card_files(f);

		g_assert_cmpstr(now, ==, card0);
	}
	g_assert_false(cp_daemon_get_bound(f->d));
	g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, "");
	cp_daemon_free(f->d);
	f->d = NULL;

	/* cut off after the card was restored, before the commit: the
	 * journal of the step is what is left */
	write_secret(journal_path, step, step_len);
	g_free(step);
	f->d = start_daemon(f);
	if (cp_daemon_get_state(f->d) == CP_STATE_DECOMMISSIONING)
		g_main_loop_run(f->loop);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	check_receipt_v2(f, 18, CP_RECEIPT_DECOMMISSIONED, CP_OK, owner_k2, 0);
	{
		g_autofree char *now = card_files(f);

		g_assert_cmpstr(now, ==, card0);
	}
	check_committed(f, 18);
	check_journal_lifecycle(f, FALSE, FALSE);
}

/* The module re-enumerates after the reset and stays off the bus longer
 * than the follow's and the rollback's waits (reenumerate-timeout 1 s,
 * back after 3.5 s): the backend reports CP_ERR_ROLLBACK, the journal
 * keeps the backup in rolling-back, and the daemon's restore from it
 * (which waits for the port, and is retried while it fails) puts the old
 * values back once the module is there again. */
static void
test_module_not_back(Fixture *f, gconstpointer data)
{
	static const char *const slow_back[] = { "--reset-delay=3500", NULL };
	g_autofree char *card0 = NULL, *now = NULL, *conf = f->conf_text;
	g_auto(GStrv) parts = g_strsplit(conf, "registration-timeout=15\n", 2);
	g_autoptr(GError) error = NULL;
	CpJournal j;
	gboolean found = FALSE;

	f->conf_text = g_strjoinv("registration-timeout=15\nreenumerate-timeout=1\n", parts);
	f->sim_args = slow_back;
	make_profile(f, 17);
	start_sim(f);
	card0 = card_files(f);
	f->d = start_daemon(f);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_FAILED);
	/* the engine could not roll back (the module was not there); the
	 * daemon did, from its journal */
	check_receipt(f, CP_RECEIPT_FAILED, CP_ERR_ROLLBACK);
	now = card_files(f);
	g_assert_cmpstr(now, ==, card0);
	check_committed(f, 17);
	g_assert_true(cp_journal_load(f->state_dir, &j, &found, &error));
	g_assert_no_error(error);
	g_assert_cmpint(j.state, ==, CP_STATE_FAILED);
	cp_journal_clear(&j);
}

/* ---- the cellular path: the device polls a local SM stand-in ---- */

/* The structure inside a one-record NDEF message, base64. */
static char *
ndef_payload_b64(GBytes *ndef)
{
	CpNdefMessage msg;

	g_assert_cmpint(cp_ndef_parse(g_bytes_get_data(ndef, NULL), g_bytes_get_size(ndef), &msg),
			==, CP_OK);
	return g_base64_encode(msg.records[0].payload, msg.records[0].payload_len);
}

static void
serve_once(Fixture *f, const char *type, uint64_t seq, GBytes *ndef)
{
	g_autofree char *b64 = ndef_payload_b64(ndef);
	g_autofree char *body = g_strdup_printf(
		"{\\\"device-id\\\": \\\"x\\\", \\\"type\\\": \\\"%s\\\", "
		"\\\"seq\\\": %" G_GUINT64_FORMAT ", \\\"message\\\": \\\"%s\\\"}",
		type, seq, b64);
	g_autofree char *json = g_strdup_printf("{\"status\": 200, \"once\": true, \"body\": \"%s\"}",
						body);

	cp_test_https_answer(&f->https, "poll", json);
}

static guint
n_requests(Fixture *f, const char *path)
{
	g_auto(GStrv) r = cp_test_https_requests(&f->https);
	g_autofree char *want = g_strdup_printf("\"path\": \"%s\"", path);
	guint n = 0;

	for (guint i = 0; r[i]; i++)
		n += strstr(r[i], want) != NULL;
	return n;
}

/* Run the main loop for ms, or until path has n requests (path NULL: the
 * whole time). */
static void
run_until(Fixture *f, const char *path, guint n, guint ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_get_monotonic_time() < end) {
		g_main_context_iteration(NULL, FALSE);
		if (path && n_requests(f, path) >= n && !cp_daemon_is_busy(f->d))
			return;
		g_usleep(5000);
	}
	if (path)
		g_error("%s: %u requests, not %u, within %u ms", path, n_requests(f, path), n, ms);
}

/* Run the main loop until the poller's last result is want (its receipt
 * post may still be on its way when the SM has seen it). */
static void
wait_outcome(Fixture *f, const char *want, guint ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_strcmp0(cp_poll_get_outcome(f->poll), want) != 0 &&
	       g_get_monotonic_time() < end) {
		g_main_context_iteration(NULL, FALSE);
		g_usleep(5000);
	}
	g_assert_cmpstr(cp_poll_get_outcome(f->poll), ==, want);
}

/* The receipt the device posted last: its bytes are the tag's. */
static void
check_posted_receipt(Fixture *f)
{
	g_auto(GStrv) r = cp_test_https_requests(&f->https);
	g_autofree char *b64 = NULL;
	g_autofree guint8 *raw = NULL;
	GBytes *tag = cp_daemon_get_receipt(f->d);
	const char *last = NULL, *p, *q;
	gsize len;

	for (guint i = 0; r[i]; i++)
		if (strstr(r[i], "/v1/device/receipt"))
			last = r[i];
	g_assert_nonnull(last);
	p = strstr(last, "receipt\\\": \\\"");
	g_assert_nonnull(p);
	p += strlen("receipt\\\": \\\"");
	q = strstr(p, "\\\"");
	g_assert_nonnull(q);
	b64 = g_strndup(p, (gsize)(q - p));
	raw = g_base64_decode(b64, &len);
	g_assert_nonnull(tag);
	g_assert_cmpmem(raw, len, g_bytes_get_data(tag, NULL), g_bytes_get_size(tag));
}

/* first_ms 0: the poller's own choice, with an early first poll of
 * early_ms to 3 * early_ms */
static void
start_poll_early(Fixture *f, guint interval_ms, guint backoff_ms, guint early_ms, guint first_ms)
{
	g_autoptr(GError) error = NULL;

	cp_poll_free(f->poll);
	f->poll = cp_poll_new(f->d, &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->poll);
	cp_poll_set_test_timing(f->poll, interval_ms, backoff_ms, early_ms);
	cp_poll_start(f->poll, first_ms);
}

static void
start_poll(Fixture *f, guint interval_ms, guint backoff_ms)
{
	start_poll_early(f, interval_ms, backoff_ms, 20, 20);
}

/* A local TCP port nobody listens on. */
static guint16
closed_port(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
					       G_SOCKET_PROTOCOL_TCP, &error);
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
	g_autoptr(GSocketAddress) bound = NULL;

	g_assert_no_error(error);
	g_assert_true(g_socket_bind(sock, any, TRUE, &error));
	bound = g_socket_get_local_address(sock, &error);
	g_assert_no_error(error);
	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

/*
 * [network] sm-url: an unbound device does not poll; bound, provisioned
 * and registered it does: 204 changes nothing; a re-provisioning served is
 * applied and its receipt posted; a server failing is retried with growing
 * spacing; a server whose certificate is not from sm-ca is refused and
 * nothing is applied; a decommission served is executed and its receipt
 * posted, after which the (unbound) device polls no more.
 */
static void
test_poll(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) ndef = NULL;
	g_autofree char *base_conf = NULL;
	g_auto(GStrv) reqs = NULL;
	guint64 counter;
	gint64 before;
	double t[5];
	guint n = 0;

	cp_test_https_start(&f->https, f->dir);
	base_conf = f->conf_text;
	f->conf_text = g_strdup_printf("%s[network]\nsm-url=%s\nsm-ca=%s\npoll-interval=60\n",
				       base_conf, f->https.url, f->https.ca);
	make_profile(f, 17);
	start_sim(f);
	f->d = start_daemon(f);

	/* not bound: no poll, none yet */
	start_poll_early(f, 60000, 50, 200, 0);
	g_assert_cmpstr(cp_poll_get_outcome(f->poll), ==, "");
	g_assert_cmpint(cp_poll_get_last_time(f->poll), ==, 0);
	run_until(f, NULL, 0, 600);
	g_assert_cmpuint(n_requests(f, "/v1/device/poll"), ==, 0);

	/* just bound and registered: the first poll comes early (200-600 ms),
	 * not after the interval (48-72 s); 204 changes nothing */
	before = g_get_real_time();
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	counter = cp_daemon_get_att_counter(f->d);
	run_until(f, "/v1/device/poll", 1, 5000);
	wait_outcome(f, "nothing", 5000);
	g_assert_cmpstr(cp_poll_get_outcome(f->poll), ==, "nothing");
	g_assert_cmpint(cp_poll_get_last_time(f->poll), >=, before);
	g_assert_cmpint(cp_poll_get_last_time(f->poll), <=, g_get_real_time());
	g_assert_cmpint(cp_poll_get_next_time(f->poll), >=,
			cp_poll_get_last_time(f->poll) + 48000 * 1000);
	g_assert_cmpint(cp_poll_get_next_time(f->poll), <=, g_get_real_time() + 72000 * 1000);

	/* a start already bound: early too */
	start_poll_early(f, 60000, 50, 200, 0);
	g_assert_cmpint(cp_poll_get_next_time(f->poll), <=, g_get_real_time() + 600 * 1000);
	run_until(f, "/v1/device/poll", 2, 5000);

	start_poll(f, 100, 50);
	run_until(f, "/v1/device/poll", 3, 3000);
	/* the request has reached the SM; its answer may not be handled yet */
	wait_outcome(f, "nothing", 5000);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	g_assert_cmpstr(cp_daemon_get_imsi(f->d), ==, NEW_IMSI);
	g_assert_cmpuint(cp_daemon_get_att_counter(f->d), >=, counter + 2);
	g_assert_cmpuint(n_requests(f, "/v1/device/receipt"), ==, 0);
	/* the server counts the request before the device has its answer */
	wait_outcome(f, "nothing", 3000);
	g_assert_cmpstr(cp_poll_get_last_result(f->poll), ==, "nothing waiting");

	/* a re-provisioning: applied, its receipt posted */
	make_profile(f, 18);
	sign_with(f, test_operator(), CP_OP_REPROVISION, 1);
	strcpy(f->p.supi, "001010000000002");
	add_subscriber(f);
	ndef = profile_ndef(f);
	serve_once(f, "profile", 18, ndef);
	run_until(f, "/v1/device/receipt", 1, 30000);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	g_assert_cmpstr(cp_daemon_get_imsi(f->d), ==, "001010000000002");
	check_receipt_v2(f, 18, CP_RECEIPT_PROVISIONED, CP_OK, f->k2, 1);
	check_posted_receipt(f);
	wait_outcome(f, "applied-profile", 2000);
	g_clear_pointer(&ndef, g_bytes_unref);

	/* the SM failing: retries at growing spacing */
	cp_test_https_answer(&f->https, "poll", "{\"status\": 503, \"body\": \"{}\"}");
	start_poll(f, 5000, 150);
	n = n_requests(f, "/v1/device/poll");
	run_until(f, "/v1/device/poll", n + 5, 8000);
	reqs = cp_test_https_requests(&f->https);
	for (guint i = g_strv_length(reqs) - 5, k = 0; k < 5; i++, k++)
		t[k] = g_ascii_strtod(strstr(reqs[i], "\"time\": ") + 8, NULL);
	/* Each wait at least the backoff, doubling from 150 ms: lower bounds
	 * only, as a loaded machine adds its latency to every gap. */
	for (guint k = 1; k < 5; k++)
		g_assert_cmpfloat(t[k] - t[k - 1], >=, 0.9 * 0.150 * (1u << (k - 1)));
	g_assert_true(g_str_has_prefix(cp_poll_get_last_result(f->poll), "failed: HTTP 503"));
	g_assert_cmpstr(cp_poll_get_outcome(f->poll), ==, "http-error");
	cp_test_https_answer(&f->https, "poll", NULL);

	/* a certificate not from sm-ca: refused before any request, nothing applied */
	cp_poll_free(f->poll);
	f->poll = NULL;
	cp_daemon_free(f->d);
	g_free(f->conf_text);
	f->conf_text = g_strdup_printf("%s[network]\nsm-url=%s\nsm-ca=%s\n",
				       base_conf, f->https.url, f->https.other_ca);
	f->d = start_daemon(f);
	ndef = command_ndef(f, test_operator(), f->device_id, 30, 1, 600);
	serve_once(f, "command", 30, ndef);
	n = g_strv_length(reqs);
	start_poll(f, 200, 100);
	/* the refusal comes with the handshake, before any request */
	wait_outcome(f, "tls", 5000);
	g_strfreev(reqs);
	reqs = cp_test_https_requests(&f->https);
	g_assert_cmpuint(g_strv_length(reqs), ==, n);
	g_assert_true(g_str_has_prefix(cp_poll_get_last_result(f->poll), "failed: "));
	g_assert_cmpstr(cp_poll_get_outcome(f->poll), ==, "tls");
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	g_assert_true(cp_daemon_get_bound(f->d));

	/* nobody listening: unreachable */
	cp_poll_free(f->poll);
	f->poll = NULL;
	cp_daemon_free(f->d);
	g_free(f->conf_text);
	f->conf_text = g_strdup_printf("%s[network]\nsm-url=https://127.0.0.1:%u\nsm-ca=%s\n",
				       base_conf, closed_port(), f->https.ca);
	f->d = start_daemon(f);
	start_poll(f, 200, 100);
	wait_outcome(f, "unreachable", 5000);
	g_assert_true(g_str_has_prefix(cp_poll_get_last_result(f->poll), "failed: "));

	/* with the right CA: the decommission is executed, its receipt posted */
	cp_poll_free(f->poll);
	f->poll = NULL;
	cp_daemon_free(f->d);
	g_free(f->conf_text);
	f->conf_text = g_strdup_printf("%s[network]\nsm-url=%s\nsm-ca=%s\n",
				       base_conf, f->https.url, f->https.ca);
	f->d = start_daemon(f);
	start_poll(f, 200, 100);
	run_until(f, "/v1/device/receipt", 2, 30000);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	g_assert_false(cp_daemon_get_bound(f->d));
	check_posted_receipt(f);
	wait_outcome(f, "applied-command", 2000);
	{
		CpReceipt r;
		GBytes *rb = cp_daemon_get_receipt(f->d);

		g_assert_cmpint(cp_receipt_verify_device(g_bytes_get_data(rb, NULL),
							 g_bytes_get_size(rb), f->key, &r), ==, CP_OK);
		g_assert_cmpuint(r.status, ==, CP_RECEIPT_DECOMMISSIONED);
		g_assert_cmpuint(r.profile_seq, ==, 30);
	}

	/* no longer bound: no more polls */
	n = n_requests(f, "/v1/device/poll");
	run_until(f, NULL, 0, 1000);
	g_assert_cmpuint(n_requests(f, "/v1/device/poll"), ==, n);
}

/* The warning of a device that trusts on first use is expected here;
 * any other warning of the daemon still fails the test. */
/*
 * The whole flow on the backend, ending registered with the new IMSI: the
 * modem reports it (the simulator's modem-imsi) and is registered; the
 * card holds the new subscription and the APN is set.
 */
/* An MBIM modem that answers the MS UICC application list with FAILURE. */
#define NO_APP_LIST "--fail=ms-uicc-low-level-access:7"

static void
test_provision(Fixture *f, gconstpointer data)
{
	g_autofree char *imsi = NULL, *apn = NULL, *card_imsi = NULL, *log = NULL;

	f->sim_args = data;
	make_profile(f, 5);
	start_sim(f);
	f->d = start_daemon(f);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_OK);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_PROVISIONED);
	check_receipt(f, CP_RECEIPT_PROVISIONED, CP_OK);
	g_assert_cmpstr(cp_daemon_get_imsi(f->d), ==, NEW_IMSI);
	imsi = dump_value(f, "modem-imsi");
	card_imsi = dump_value(f, "imsi");
	apn = dump_value(f, "apn");
	g_assert_cmpstr(imsi, ==, NEW_IMSI);
	g_assert_cmpstr(card_imsi, ==, NEW_IMSI);
	g_assert_cmpstr(apn, ==, "internet");
	g_assert_true(modem_registered(f));
	/* the USIM's and ISIM's AIDs from the modem's list (QMI's card
	 * status, MBIM's application list); AT has none, nor an MBIM modem
	 * that refuses the list: EF.DIR */
	log = dump_value(f, "card-apdu-log");
	g_assert_cmpint(strstr(log, ":2f00") != NULL, ==,
			strcmp(backend, "at") == 0 ||
			(f->sim_args && g_strv_contains(f->sim_args, NO_APP_LIST)));
}

/*
 * Registration denied (the network does not know the new subscription):
 * the daemon rolls back, and the card's files are the old ones byte for
 * byte, as the simulator dumps them.
 */
static void
test_denied(Fixture *f, gconstpointer data)
{
	g_autofree char *before = NULL, *after = NULL, *imsi = NULL;

	f->sim_args = data;
	make_profile(f, 6);
	strcpy(f->p.supi, "001010000000099");
	start_sim(f);
	before = card_files(f);
	f->d = start_daemon(f);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_FAILED);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_REG_DENIED);
	check_receipt(f, CP_RECEIPT_FAILED, CP_ERR_REG_DENIED);
	after = card_files(f);
	g_assert_cmpstr(after, ==, before);
	imsi = dump_value(f, "imsi");
	g_assert_cmpstr(imsi, ==, OLD_IMSI);
}

/*
 * A wrong ADM1 in the device's config. With attempts left the card
 * counts one down and nothing is written; with one attempt left the
 * engine does not try at all (a wrong key would block the card for good).
 */
static void
test_adm1_wrong(Fixture *f, gconstpointer data)
{
	const char *left = data;
	g_autofree char *path = g_build_filename(f->dir, "adm1", NULL);
	g_autofree char *before = NULL, *after = NULL, *retries = NULL;
	g_autofree char *arg = g_strdup_printf("--adm1-retries=%s", left);
	const char *args[] = { arg, NULL };

	write_secret(path, "87654321\n", 9);
	f->sim_args = args;
	make_profile(f, 7);
	start_sim(f);
	before = card_files(f);
	f->d = start_daemon(f);
	write_and_wait(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_FAILED);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_ADM1);
	after = card_files(f);
	g_assert_cmpstr(after, ==, before);
	retries = dump_value(f, "adm1-retries");
	if (strcmp(left, "1") == 0)
		g_assert_cmpstr(retries, ==, "1");
	else
		g_assert_cmpuint(g_ascii_strtoull(retries, NULL, 10), ==, g_ascii_strtoull(left, NULL, 10) - 1);
}

static GPid proxy_pid;

static void
stop_proxy(void)
{
	if (proxy_pid) {
		kill(proxy_pid, SIGTERM);
		waitpid(proxy_pid, NULL, 0);
		proxy_pid = 0;
	}
}

/* The loopback of a new network namespace starts down (the SM's HTTPS
 * server of the poll test listens there). */
static gboolean
loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	gboolean ok;

	if (fd < 0)
		return FALSE;
	g_strlcpy(ifr.ifr_name, "lo", sizeof(ifr.ifr_name));
	ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
	ifr.ifr_flags |= IFF_UP;
	ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
	close(fd);
	return ok;
}

/* MBIM goes through mbim-proxy: this test's own, in a network namespace
 * of its own (its @mbim-proxy socket is then ours), up within 5 s. */
static gboolean
start_proxy(void)
{
	const char *path = g_getenv("CP_MBIM_PROXY");
	const char *argv[] = { path, "--no-exit", NULL };

	if (!path || !*path || unshare(CLONE_NEWNET) != 0 || !loopback_up())
		return FALSE;
	if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, cp_test_child_setup, NULL,
			   &proxy_pid, NULL))
		return FALSE;
	for (guint i = 0; i < 500; i++) {
		g_autoptr(GSocketAddress) a = g_unix_socket_address_new_with_type("mbim-proxy", -1,
										  G_UNIX_SOCKET_ADDRESS_ABSTRACT);
		g_autoptr(GSocket) sk = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
						     G_SOCKET_PROTOCOL_DEFAULT, NULL);

		if (sk && g_socket_connect(sk, a, NULL, NULL))
			return TRUE;
		g_usleep(10000);
	}
	stop_proxy();
	return FALSE;
}

static void
add(const char *name, gconstpointer data, void (*func)(Fixture *, gconstpointer))
{
	g_autofree char *path = g_strdup_printf("/daemon/flow-%s/%s", backend, name);

	g_test_add(path, Fixture, data, fixture_setup, func, fixture_teardown);
}

static void
on_warning(const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
	g_printerr("%s-WARNING: %s\n", domain, message);
	if (!strstr(message, "trust on first use"))
		g_test_fail();
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_log_set_handler("cellprovd", G_LOG_LEVEL_WARNING, on_warning, NULL);
	if (g_getenv("CP_FLOW_BACKEND"))
		backend = g_getenv("CP_FLOW_BACKEND");
	sim_path = g_getenv("CP_FLOW_SIM");
	if (!sim_path) {
		g_printerr("CP_FLOW_SIM is not set\n");
		return 1;
	}
	if (strcmp(backend, "mbim") == 0 && !start_proxy()) {
		g_printerr("no mbim-proxy of this test's own (CP_MBIM_PROXY, unshare -n)\n");
		return 1;
	}
	add("accept-restart-replay", NULL, test_accept_restart_replay);
	add("binding", NULL, test_binding);
	add("lifecycle", NULL, test_lifecycle);
	add("factory-reset", NULL, test_factory_reset);
	add("decommission-crash", NULL, test_decommission_crash);
	if (strcmp(backend, "qmi") == 0)
		add("module-not-back", NULL, test_module_not_back);
	add("poll", NULL, test_poll);
	add("provision", NULL, test_provision);
	add("denied-rollback", NULL, test_denied);
	{
		/* a card whose files have no SFI: each file SELECTed instead,
		 * written and rolled back byte for byte */
		static const char *const no_sfi[] = { "--no-sfi", NULL };

		add("provision-no-sfi", no_sfi, test_provision);
		add("denied-rollback-no-sfi", no_sfi, test_denied);
	}
	add("adm1-wrong", "3", test_adm1_wrong);
	add("adm1-last-attempt", "1", test_adm1_wrong);
	if (strcmp(backend, "mbim") == 0) {
		static const char *const no_list[] = { NO_APP_LIST, NULL };

		add("provision-no-application-list", no_list, test_provision);
	}
	if (strcmp(backend, "at") == 0) {
		/* every answer in 3-byte pieces, two URCs around every answer
		 * line (inside the +CSIM answers), echo on (the default) */
		static const char *const rough[] = { "--split=3", "--urc-storm=2", NULL };

		add("provision-split-urcs-echo", rough, test_provision);
	}
	rc = g_test_run();
	stop_proxy();
	return rc;
}
