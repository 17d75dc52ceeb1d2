/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's side of the protocol, in-process with the real protocol
 * library: the tag it presents (signed device record, counter journaled
 * before it is shown), every kind of bad profile rejected with a receipt
 * saying why and nothing changed on disk, a good profile verified, and
 * recovery of an attempt a crash cut off. Profiles are built the way the
 * SM builds them, from the key schedule of docs/protocol.md.
 *
 * No modem backend here (the QMI simulator tests do that): a verified
 * profile then ends in "failed" with CP_ERR_MODEM and a MAC'd receipt.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cellprov.h"
#include "cp-test-operator.h"
#include "cp-daemon.h"
#include "cp-glib.h"
#include "cp-idle.h"

typedef struct {
	char *dir;
	char *state_dir;
	char *conf_text;
	CpKey *key;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint8_t *info;
	size_t info_len;
	CpDaemon *d;
	GPtrArray *transitions;
} Fixture;

static void
write_secret(const char *path, const void *data, gsize len)
{
	g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
	g_assert_cmpint(chmod(path, 0600), ==, 0);
}

static void
on_state_changed(CpDaemon *d, CpState old, CpState new_state, CpEvent ev, gpointer data)
{
	Fixture *f = data;

	g_ptr_array_add(f->transitions, g_strdup_printf("%s>%s", cp_state_name(old),
							cp_state_name(new_state)));
}

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
	cp_daemon_set_backend(d, NULL);
	cp_daemon_set_transport(d, NULL);
	cp_daemon_add_listener(d, &l, f);
	g_assert_true(cp_daemon_start(d, &error));
	g_assert_no_error(error);
	return d;
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *key_path = NULL;
	g_autofree char *adm1_path = NULL;
	g_autofree char *id_hex = NULL;
	char *pem;
	CpDeviceRecord dr;
	cp_auto_buf info = CP_BUF_INIT;

	f->dir = g_dir_make_tmp("cp-flow-XXXXXX", &error);
	g_assert_no_error(error);
	f->state_dir = g_build_filename(f->dir, "state", NULL);
	key_path = g_build_filename(f->dir, "device-key.pem", NULL);
	adm1_path = g_build_filename(f->dir, "adm1", NULL);

	f->key = cp_p256_generate();
	g_assert_nonnull(f->key);
	pem = cp_pkey_to_pem(f->key);
	write_secret(key_path, pem, strlen(pem));
	cp_cleanse(pem, strlen(pem));
	free(pem);
	write_secret(adm1_path, "12345678\n", 9);
	g_assert_cmpint(cp_device_id(f->key, f->device_id), ==, CP_OK);
	id_hex = cp_hex_strdup(f->device_id, sizeof(f->device_id));

	f->conf_text = g_strdup_printf(
		"[device]\nkey=%s\ncertificate-url=https://certs.example.net/devices/%s\n"
		"manufacturer=Example Ltd\nmodel=GW-1\nserial=SN0001\nsuites=B\n"
		"[modem]\ndevice=/dev/cdc-wdm0\ncard=sysmo-isim-sja2\nadm1=%s\n"
		"[daemon]\nstate-directory=%s\n", key_path, id_hex, adm1_path, f->state_dir);

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
	f->transitions = g_ptr_array_new_with_free_func(g_free);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

	cp_daemon_free(f->d);
	cp_key_free(f->key);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(f->dir);
	g_free(f->state_dir);
	g_free(f->conf_text);
	g_free(f->info);
	g_ptr_array_unref(f->transitions);
}

/* What the SM makes for this device, with the keys the companion keeps. */
typedef struct {
	CpProfile p;
	CpSecret *k2;
	CpSecret *k_prof;
} Made;

static void
made_clear(Made *m)
{
	cp_secret_free(m->k2);
	cp_secret_free(m->k_prof);
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

static void make_profile(Fixture *f, Made *m, uint64_t seq, const uint8_t *for_device);
static GBytes *wrap_ndef(const uint8_t *payload, size_t len, const char *mime);

/* Another operator: its own root, its own SM (made once). */
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

/* A profile as op's SM makes it: its chain, signed with its SM key. */
static GBytes *
encode_profile_by(const Made *m, const CpTestOperator *op, uint8_t operation, uint64_t binding)
{
	cp_auto_buf buf = CP_BUF_INIT;
	CpProfile p = m->p;

	memcpy(p.op_chain, op->chain, op->chain_len);
	p.op_chain_len = op->chain_len;
	p.operation = operation;
	p.binding_version = binding;
	if (operation == CP_OP_TRANSFER) {
		p.has_replaces = TRUE;
		p.replaces = binding - 1;
	}
	g_assert_cmpint(cp_profile_encode(&p, op->sm_key, m->k_prof, &buf), ==, CP_OK);
	return wrap_ndef(buf.data, buf.len, CP_MIME_PROFILE);
}

static void
make_profile(Fixture *f, Made *m, uint64_t seq, const uint8_t *for_device)
{
	g_autoptr(CpSecret) k_prime = cp_secret_new(32);
	g_autoptr(CpSecret) opc = cp_secret_new(16);
	g_autoptr(CpSecret) k_sm = NULL;

	memset(m, 0, sizeof(*m));
	g_assert_cmpint(cp_random(k_prime->data, k_prime->len), ==, CP_OK);
	g_assert_cmpint(cp_random(opc->data, opc->len), ==, CP_OK);
	m->p.version = CP_PROFILE_VERSION;
	m->p.operation = CP_OP_CLAIM;
	m->p.binding_version = 1;
	memcpy(m->p.op_chain, test_operator()->chain, test_operator()->chain_len);
	m->p.op_chain_len = test_operator()->chain_len;
	memcpy(m->p.device_id, for_device ? for_device : f->device_id, CP_DEVICE_ID_LEN);
	m->p.profile_seq = seq;
	g_assert_cmpint(cp_random(m->p.nonce, sizeof(m->p.nonce)), ==, CP_OK);
	m->p.has_not_after = TRUE;
	m->p.not_after = (uint64_t)(g_get_real_time() / G_USEC_PER_SEC) + 600;
	g_assert_cmpint(cp_enc_cred_seal(CP_SUITE_B, f->key, NULL, k_prime, opc, m->p.enc_cred,
					 &m->p.enc_cred_len), ==, CP_OK);
	strcpy(m->p.plmn, "00101");
	strcpy(m->p.network_name, "cellprov test network");
	strcpy(m->p.supi, "001010000000001");
	strcpy(m->p.apn, "internet");
	k_sm = cp_keys_k_sm(k_prime, m->p.device_id);
	m->k_prof = cp_keys_k_prof(k_sm, m->p.nonce);
	m->k2 = cp_keys_k2(k_sm, m->p.nonce, f->info, f->info_len);
	g_assert_nonnull(m->k2);
}

static GBytes *
wrap_ndef(const uint8_t *payload, size_t len, const char *mime)
{
	CpNdefMessage msg;
	cp_auto_buf out = CP_BUF_INIT;

	memset(&msg, 0, sizeof(msg));
	cp_ndef_record_mime(&msg.records[0], mime, payload, len);
	msg.n_records = 1;
	g_assert_cmpint(cp_ndef_encode(&msg, &out), ==, CP_OK);
	return g_bytes_new(out.data, out.len);
}

static GBytes *
encode_profile(const Made *m)
{
	cp_auto_buf buf = CP_BUF_INIT;

	g_assert_cmpint(cp_profile_encode(&m->p, test_operator()->sm_key, m->k_prof, &buf), ==, CP_OK);
	return wrap_ndef(buf.data, buf.len, CP_MIME_PROFILE);
}

static GBytes *
read_journal(Fixture *f)
{
	g_autofree char *path = g_build_filename(f->state_dir, CP_JOURNAL_NAME, NULL);
	char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, NULL))
		return g_bytes_new(NULL, 0);
	return g_bytes_new_take(data, len);
}

/* The receipt now on the daemon's tag, decoded; with k2 its mac must hold. */
static void
check_receipt(Fixture *f, uint64_t seq, CpReceiptStatus status, CpError reason, const CpSecret *k2)
{
	GBytes *rb = cp_daemon_get_receipt(f->d);
	gsize len = 0;
	const uint8_t *buf;
	CpReceipt r;

	g_assert_nonnull(rb);
	buf = g_bytes_get_data(rb, &len);
	if (k2)
		g_assert_cmpint(cp_receipt_verify(buf, len, k2, &r), ==, CP_OK);
	else {
		g_assert_cmpint(cp_receipt_decode(buf, len, &r), ==, CP_OK);
		g_assert_false(r.has_mac);
	}
	g_assert_cmpmem(r.device_id, sizeof(r.device_id), f->device_id, sizeof(f->device_id));
	g_assert_cmpuint(r.profile_seq, ==, seq);
	g_assert_cmpuint(r.status, ==, status);
	g_assert_cmpuint(r.reason, ==, reason);
}

/* The tag: URI, signed device record, counter strictly increasing and
 * on disk before it is shown, also across a restart. */
static void
test_tag(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	uint64_t last = 0;

	f->d = start_daemon(f);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3; i++) {
			g_autoptr(GBytes) tag = cp_daemon_build_tag(f->d, &error);
			gsize len = 0;
			const uint8_t *buf;
			CpNdefMessage msg;
			const CpNdefRecord *rec;
			CpDeviceRecord dr;
			g_autofree char *uri = NULL;
			g_autofree char *want = NULL;
			CpJournal j;
			gboolean found;

			g_assert_no_error(error);
			buf = g_bytes_get_data(tag, &len);
			g_assert_cmpint(cp_ndef_parse(buf, len, &msg), ==, CP_OK);
			g_assert_cmpint(cp_ndef_find_uri(&msg, &uri), ==, CP_OK);
			want = g_strconcat("https://certs.example.net/devices/",
					   cp_daemon_get_device_id(f->d), NULL);
			g_assert_cmpstr(uri, ==, want);
			rec = cp_ndef_find_mime(&msg, CP_MIME_DEVICE);
			g_assert_nonnull(rec);
			g_assert_cmpint(cp_device_record_verify(rec->payload, rec->payload_len, f->key, &dr),
					==, CP_OK);
			g_assert_cmpuint(dr.att_counter, >, last);
			g_assert_cmpuint(dr.state, ==, CP_DEVICE_UNPROVISIONED);
			g_assert_cmpstr(dr.serial, ==, "SN0001");
			g_assert_null(cp_ndef_find_mime(&msg, CP_MIME_RECEIPT));
			last = dr.att_counter;

			g_assert_true(cp_journal_load(f->state_dir, &j, &found, &error));
			g_assert_true(found);
			g_assert_cmpuint(j.att_counter, ==, dr.att_counter);
			cp_journal_clear(&j);
		}
		cp_daemon_free(f->d);
		f->d = start_daemon(f);
	}
}

/* Every rejection: a receipt that says why, the state and the journal
 * exactly as they were. */
static void
test_rejections(Fixture *f, gconstpointer data)
{
	static const uint8_t other[CP_DEVICE_ID_LEN] = { 1, 2, 3 };
	g_autoptr(GBytes) before = NULL;
	Made m;

	f->d = start_daemon(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	before = read_journal(f);

	/* for another device */
	make_profile(f, &m, 5, other);
	{
		g_autoptr(GBytes) ndef = encode_profile(&m);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 5, CP_RECEIPT_REJECTED, CP_ERR_WRONG_DEVICE, NULL);
	made_clear(&m);

	/* expired: the mac holds, so the receipt is MAC'd */
	make_profile(f, &m, 6, NULL);
	m.p.not_after = 1000;
	{
		g_autoptr(GBytes) ndef = encode_profile(&m);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 6, CP_RECEIPT_REJECTED, CP_ERR_EXPIRED, m.k2);
	made_clear(&m);

	/* mac made with the wrong key */
	make_profile(f, &m, 7, NULL);
	m.k_prof->data[0] ^= 1;
	{
		g_autoptr(GBytes) ndef = encode_profile(&m);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 7, CP_RECEIPT_REJECTED, CP_ERR_MAC, NULL);
	made_clear(&m);

	/* not a profile at all */
	{
		g_autoptr(GBytes) ndef = wrap_ndef((const uint8_t *)"hello", 5, "text/plain");

		cp_daemon_profile_written(f->d, ndef);
		check_receipt(f, 0, CP_RECEIPT_REJECTED, CP_ERR_NDEF_NO_RECORD, NULL);
	}
	{
		g_autoptr(GBytes) junk = g_bytes_new("\xd1\x01", 2);

		cp_daemon_profile_written(f->d, junk);
		g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL) >> 8, ==, 0x03);
	}

	/* every single byte of a good profile flipped: rejected, each time */
	make_profile(f, &m, 8, NULL);
	{
		cp_auto_buf buf = CP_BUF_INIT;

		g_assert_cmpint(cp_profile_encode(&m.p, test_operator()->sm_key, m.k_prof, &buf), ==, CP_OK);
		for (size_t i = 0; i < buf.len; i++) {
			g_autoptr(GBytes) ndef = NULL;

			buf.data[i] ^= 0x5a;
			ndef = wrap_ndef(buf.data, buf.len, CP_MIME_PROFILE);
			cp_daemon_profile_written(f->d, ndef);
			g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
			g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), !=, CP_OK);
			buf.data[i] ^= 0x5a;
		}
	}
	made_clear(&m);

	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	{
		g_autoptr(GBytes) after = read_journal(f);

		g_assert_true(g_bytes_equal(before, after));
	}
	g_assert_cmpuint(cp_daemon_get_profile_seq(f->d), ==, 0);
	/* each attempt went received -> idle and nothing else */
	for (guint i = 0; i < f->transitions->len; i++) {
		const char *t = f->transitions->pdata[i];

		g_assert_true(strcmp(t, "idle>profile-received") == 0 ||
			      strcmp(t, "profile-received>idle") == 0);
	}
}

/* A good profile passes every check; without a modem backend it fails
 * before anything is written: state failed, seq not consumed, receipt
 * MAC'd with K''. Then a replay of a committed seq is refused. */
static void
test_verified_then_replay(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *msg = NULL;
	Made m;

	f->d = start_daemon(f);
	make_profile(f, &m, 3, NULL);
	{
		g_autoptr(GBytes) ndef = encode_profile(&m);

		cp_daemon_profile_written(f->d, ndef);
	}
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_FAILED);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, &msg), ==, CP_ERR_MODEM);
	check_receipt(f, 3, CP_RECEIPT_FAILED, CP_ERR_MODEM, m.k2);
	g_assert_cmpuint(cp_daemon_get_profile_seq(f->d), ==, 0);
	g_assert_cmpuint(f->transitions->len, ==, 3);
	g_assert_cmpstr(f->transitions->pdata[1], ==, "profile-received>verified");
	g_assert_cmpstr(f->transitions->pdata[2], ==, "verified>failed");

	/* the failure survives a restart, with its receipt */
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_FAILED);
	check_receipt(f, 3, CP_RECEIPT_FAILED, CP_ERR_MODEM, m.k2);
	{
		g_autoptr(GBytes) tag = cp_daemon_build_tag(f->d, &error);
		gsize len;
		const uint8_t *buf = g_bytes_get_data(tag, &len);
		CpNdefMessage nm;
		CpDeviceRecord dr;
		const CpNdefRecord *rec;

		g_assert_cmpint(cp_ndef_parse(buf, len, &nm), ==, CP_OK);
		g_assert_nonnull(cp_ndef_find_mime(&nm, CP_MIME_RECEIPT));
		rec = cp_ndef_find_mime(&nm, CP_MIME_DEVICE);
		g_assert_cmpint(cp_device_record_decode(rec->payload, rec->payload_len, &dr), ==, CP_OK);
		g_assert_cmpuint(dr.state, ==, CP_DEVICE_FAILED);
	}
	made_clear(&m);

	/* a journal that committed seq 9: seq 9 is a replay, MAC'd */
	cp_daemon_free(f->d);
	f->d = NULL;
	{
		CpJournal j;
		gboolean found;

		g_assert_true(cp_journal_load(f->state_dir, &j, &found, &error));
		j.committed_seq = 9;
		g_assert_true(cp_journal_save(f->state_dir, &j, &error));
		cp_journal_clear(&j);
	}
	f->d = start_daemon(f);
	make_profile(f, &m, 9, NULL);
	{
		g_autoptr(GBytes) ndef = encode_profile(&m);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 9, CP_RECEIPT_REJECTED, CP_ERR_REPLAY, m.k2);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_FAILED);
	made_clear(&m);

	/* re-arm, then forget: back to idle, record gone, counters kept */
	g_assert_true(cp_daemon_rearm(f->d, &error));
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	g_assert_false(cp_daemon_rearm(f->d, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_STATE);
	g_clear_error(&error);
	g_assert_true(cp_daemon_forget(f->d, &error));
	g_assert_null(cp_daemon_get_receipt(f->d));
	g_assert_cmpuint(cp_daemon_get_profile_seq(f->d), ==, 9);
}

/* A journal left mid-attempt by a crash: the daemon rolls back at start
 * and never shows it as provisioned. Without a backend the rollback
 * cannot run: it stays rolling-back and says so, and refuses profiles. */
static void
test_recovery_needs_backend(Fixture *f, gconstpointer data)
{
	static const CpState cut[] = {
		CP_STATE_PROVISIONING, CP_STATE_RESETTING, CP_STATE_REGISTERING, CP_STATE_ROLLING_BACK,
	};
	g_autoptr(GError) error = NULL;

	for (gsize i = 0; i < G_N_ELEMENTS(cut); i++) {
		CpJournal j;
		uint8_t k2[32] = { 7 };
		Made m;

		g_assert_true(cp_journal_check_dir(f->state_dir, &error));
		cp_journal_init(&j);
		j.state = cut[i];
		j.committed_seq = j.attempt_seq = 4;
		strcpy(j.imsi, "001010000000001");
		strcpy(j.plmn, "00101");
		j.k2 = cp_secret_new_from(k2, sizeof(k2));
		j.backup = cp_secret_new_from((const uint8_t *)"backup", 6);
		g_assert_true(cp_journal_save(f->state_dir, &j, &error));
		cp_journal_clear(&j);

		f->d = start_daemon(f);
		g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_ROLLING_BACK);
		g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_ROLLBACK);
		make_profile(f, &m, 10, NULL);
		{
			g_autoptr(GBytes) ndef = encode_profile(&m);

			cp_daemon_profile_written(f->d, ndef);
		}
		g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_ROLLING_BACK);
		g_assert_false(cp_daemon_forget(f->d, &error));
		g_assert_error(error, CP_ERROR, CP_ERR_BUSY);
		g_clear_error(&error);
		made_clear(&m);
		cp_daemon_free(f->d);
		f->d = NULL;

		g_assert_true(cp_journal_load(f->state_dir, &j, &(gboolean){ 0 }, &error));
		g_assert_cmpint(j.state, ==, CP_STATE_ROLLING_BACK);
		g_assert_nonnull(j.backup);
		cp_journal_clear(&j);
	}
}

/* A conf naming a trusted-operators file (NULL: none, trust on first use). */
static void
set_trusted_operators(Fixture *f, const char *path)
{
	char *old = f->conf_text;

	f->conf_text = g_strdup_printf("%s[device]\ntrusted-operators=%s\n", old, path);
	g_free(old);
}

static void
write_anchors(Fixture *f, const CpTestOperator *op)
{
	g_autofree char *path = g_build_filename(f->dir, "trusted-operators.pem", NULL);

	g_assert_true(g_file_set_contents(path, op->root_pem, -1, NULL));
	set_trusted_operators(f, path);
}

/*
 * A device that trusts only the real operator gets a profile forged by a
 * phone: made with the protocol library under the phone's own operator
 * chain, with a K' of its own encrypted to the device's public key and
 * MAC'd with the K_prof that follows. Refused with "operator", a receipt
 * without MAC, the state and journal exactly as they were. The real
 * operator's profile then passes every check.
 */
static void
test_forged_operator(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) before = NULL;
	Made m;

	write_anchors(f, test_operator());
	f->d = start_daemon(f);
	g_assert_cmpstr(cp_daemon_get_trust_mode(f->d), ==, "anchors");
	g_assert_false(cp_daemon_get_bound(f->d));
	before = read_journal(f);

	make_profile(f, &m, 4, NULL);
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, other_operator(), CP_OP_CLAIM, 1);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 4, CP_RECEIPT_REJECTED, CP_ERR_OPERATOR, NULL);
	g_assert_cmpint(cp_daemon_get_last_error(f->d, NULL), ==, CP_ERR_OPERATOR);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	g_assert_cmpuint(cp_daemon_get_profile_seq(f->d), ==, 0);
	g_assert_false(cp_daemon_get_bound(f->d));
	{
		g_autoptr(GBytes) after = read_journal(f);

		g_assert_true(g_bytes_equal(before, after));
	}
	g_assert_cmpuint(f->transitions->len, ==, 2);
	g_assert_cmpstr(f->transitions->pdata[1], ==, "profile-received>idle");

	/* the same profile signed by the real operator's SM gets through
	 * (and fails only for want of a modem) */
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, test_operator(), CP_OP_CLAIM, 1);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 4, CP_RECEIPT_FAILED, CP_ERR_MODEM, m.k2);
	g_assert_false(cp_daemon_get_bound(f->d));
	made_clear(&m);
}

/* A journal that says the device is bound to the test operator at
 * version 3 (what a provisioning that succeeded leaves). */
static void
write_bound_journal(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	CpJournal j;

	g_assert_true(cp_journal_check_dir(f->state_dir, &error));
	cp_journal_init(&j);
	j.state = CP_STATE_PROVISIONED;
	j.committed_seq = j.attempt_seq = 5;
	strcpy(j.imsi, "001010000000001");
	strcpy(j.plmn, "00101");
	j.bound = true;
	j.binding_version = 3;
	j.has_pin = true;
	memcpy(j.operator_pin, test_operator()->pin, sizeof(j.operator_pin));
	strcpy(j.operator_name, "Test Operator");
	g_assert_true(cp_journal_save(f->state_dir, &j, &error));
	cp_journal_clear(&j);
}

static void
assert_binding(Fixture *f, gboolean bound, uint64_t version, const uint8_t *pin)
{
	g_autofree char *hex = pin ? cp_hex_strdup(pin, CP_SHA256_LEN) : g_strdup("");

	g_assert_cmpint(cp_daemon_get_bound(f->d), ==, bound);
	g_assert_cmpuint(cp_daemon_get_binding_version(f->d), ==, version);
	g_assert_cmpstr(cp_daemon_get_owner_root(f->d), ==, hex);
}

/*
 * A device bound to the test operator, trusting on first use: another
 * operator, however well its own chain verifies, is refused with
 * "operator"; its own operator's claim with "binding" and a MAC'd
 * receipt; a reprovision at its binding version passes. Failures leave
 * the binding as it was.
 */
static void
test_pinned(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) before = NULL;
	Made m;

	write_bound_journal(f);
	f->d = start_daemon(f);
	g_assert_cmpstr(cp_daemon_get_trust_mode(f->d), ==, "first-use");
	assert_binding(f, TRUE, 3, test_operator()->pin);
	g_assert_cmpstr(cp_daemon_get_owner_name(f->d), ==, "Test Operator");
	g_assert_true(cp_daemon_rearm(f->d, &error));
	before = read_journal(f);

	/* another operator, with an operation the binding would allow */
	make_profile(f, &m, 6, NULL);
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, other_operator(), CP_OP_REPROVISION, 3);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 6, CP_RECEIPT_REJECTED, CP_ERR_OPERATOR, NULL);
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, other_operator(), CP_OP_TRANSFER, 4);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 6, CP_RECEIPT_REJECTED, CP_ERR_OPERATOR, NULL);

	/* its own operator: a claim of a bound device, a reprovision at
	 * another version, a transfer not above it */
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, test_operator(), CP_OP_CLAIM, 4);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 6, CP_RECEIPT_REJECTED, CP_ERR_BINDING, m.k2);
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, test_operator(), CP_OP_REPROVISION, 2);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 6, CP_RECEIPT_REJECTED, CP_ERR_BINDING, m.k2);
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, test_operator(), CP_OP_TRANSFER, 3);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 6, CP_RECEIPT_REJECTED, CP_ERR_BINDING, m.k2);
	g_assert_cmpint(cp_daemon_get_state(f->d), ==, CP_STATE_IDLE);
	{
		g_autoptr(GBytes) after = read_journal(f);

		g_assert_true(g_bytes_equal(before, after));
	}

	/* a reprovision at its version passes every check; it fails for
	 * want of a modem, and the binding stays */
	{
		g_autoptr(GBytes) ndef = encode_profile_by(&m, test_operator(), CP_OP_REPROVISION, 3);

		cp_daemon_profile_written(f->d, ndef);
	}
	check_receipt(f, 6, CP_RECEIPT_FAILED, CP_ERR_MODEM, m.k2);
	assert_binding(f, TRUE, 3, test_operator()->pin);
	made_clear(&m);

	/* and after a restart */
	cp_daemon_free(f->d);
	f->d = start_daemon(f);
	assert_binding(f, TRUE, 3, test_operator()->pin);
	g_assert_cmpstr(cp_daemon_get_owner_name(f->d), ==, "Test Operator");
}

/* trusted-operators that cannot be used stop the daemon, naming the key. */
static void
test_anchors_errors(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *missing = g_build_filename(f->dir, "no-such.pem", NULL);
	g_autofree char *junk = g_build_filename(f->dir, "junk.pem", NULL);
	g_autofree char *keyfile = g_build_filename(f->dir, "device-key.pem", NULL);
	g_autofree char *base = g_strdup(f->conf_text);
	const char *paths[] = { missing, junk, keyfile };
	const char *expect[] = { "cannot read", "is not a PEM file of operator root", "is not a PEM file of operator root" };
	CpConf *conf;

	g_assert_true(g_file_set_contents(junk, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", -1, NULL));
	for (gsize i = 0; i < G_N_ELEMENTS(paths); i++) {
		g_free(f->conf_text);
		f->conf_text = g_strdup(base);
		set_trusted_operators(f, paths[i]);
		conf = cp_conf_load_data(f->conf_text, strlen(f->conf_text), "t.conf", &error);
		g_assert_no_error(error);
		g_assert_null(cp_daemon_new(conf, &error));
		g_assert_nonnull(error);
		g_assert_nonnull(strstr(error->message, "[device] trusted-operators"));
		if (!strstr(error->message, expect[i]))
			g_error("%s: %s", paths[i], error->message);
		g_clear_error(&error);
	}
}

/* Bad identity material is a clear error at start. */
static void
test_identity_errors(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *key_path = g_build_filename(f->dir, "device-key.pem", NULL);
	g_autofree char *adm1_path = g_build_filename(f->dir, "adm1", NULL);
	g_autofree char *text = NULL;
	CpConf *conf;

	/* a key readable by others */
	g_assert_cmpint(chmod(key_path, 0644), ==, 0);
	conf = cp_conf_load_data(f->conf_text, strlen(f->conf_text), "t.conf", NULL);
	g_assert_null(cp_daemon_new(conf, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_KEY);
	g_assert_nonnull(strstr(error->message, "0600"));
	g_clear_error(&error);
	g_assert_cmpint(chmod(key_path, 0600), ==, 0);

	/* an ADM1 of 7 digits; the message must not show it */
	write_secret(adm1_path, "1234567\n", 8);
	conf = cp_conf_load_data(f->conf_text, strlen(f->conf_text), "t.conf", NULL);
	g_assert_null(cp_daemon_new(conf, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_ADM1);
	g_assert_null(strstr(error->message, "1234567"));
	g_clear_error(&error);
	write_secret(adm1_path, "12345678\n", 9);

	/* the URL of another device */
	text = g_strdup(f->conf_text);
	*strstr(text, "/devices/") = '\0';
	{
		g_autofree char *t2 = g_strconcat(text, "/devices/00000000000000000000000000000000\n",
						  strchr(strstr(f->conf_text, "/devices/"), '\n') + 1, NULL);

		conf = cp_conf_load_data(t2, strlen(t2), "t.conf", &error);
		g_assert_no_error(error);
		g_assert_null(cp_daemon_new(conf, &error));
		g_assert_nonnull(strstr(error->message, "does not end with this device's DeviceID"));
		g_clear_error(&error);
	}

	/* a key file that is not PEM */
	write_secret(key_path, "not a key\n", 10);
	conf = cp_conf_load_data(f->conf_text, strlen(f->conf_text), "t.conf", NULL);
	g_assert_null(cp_daemon_new(conf, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_KEY);
}

/* The warning of a device that trusts on first use is expected here;
 * any other warning of the daemon still fails the test. */
/* ---- exiting when idle (cp-idle.c) ---- */

static void
idle_done(gpointer data)
{
	(*(int *)data)++;
}

static gboolean
idle_tick(gpointer data)
{
	return G_SOURCE_CONTINUE;
}

/* Run the main loop for ms, or until *done moves. */
static void
idle_run(int *done, guint ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
	guint tick = g_timeout_add(10, idle_tick, NULL);
	int before = *done;

	while (*done == before && g_get_monotonic_time() < end)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(tick);
}

/* A journal: bound and provisioned with a receipt, or none (armed). */
static void
idle_journal(Fixture *f, gboolean provisioned)
{
	g_autoptr(GError) error = NULL;
	static const uint8_t receipt[] = { 0x01, 0x02, 0x03, 0x04 };
	CpJournal j;

	if (!provisioned)
		return;
	g_assert_cmpint(g_mkdir_with_parents(f->state_dir, 0700), ==, 0);
	cp_journal_init(&j);
	j.state = CP_STATE_PROVISIONED;
	j.att_counter = 3;
	j.committed_seq = 5;
	j.bound = true;
	j.binding_version = 1;
	strcpy(j.imsi, "001010000000001");
	strcpy(j.plmn, "00101");
	cp_journal_set_receipt(&j, receipt, sizeof(receipt));
	g_assert_true(cp_journal_save(f->state_dir, &j, &error));
	g_assert_no_error(error);
	cp_journal_clear(&j);
}

static void
idle_conf(Fixture *f, const char *daemon_keys)
{
	char *text = g_strconcat(f->conf_text, daemon_keys, NULL);

	g_free(f->conf_text);
	f->conf_text = text;
}

/* A read session of the tag, as a transport reports it (one with no
 * hardware behind it: only its name is read). */
static void
idle_tag_session(Fixture *f, const GError *error)
{
	static const CpTransportOps ops = { .name = "test" };
	CpTransport t = { .ops = &ops };
	const CpTransportEvents *ev = cp_daemon_transport_events();
	g_autoptr(GBytes) content = ev->content(&t, f->d);

	g_assert_nonnull(content);
	ev->session_ended(&t, error, f->d);
}

/* Bound and provisioned: a read session that presented the receipt and
 * ended normally ends the daemon's work; one that ended in an error does
 * not; without it, the linger does. Armed: nothing, however long. */
static void
test_idle(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "left");
	g_autoptr(CpIdle) idle = NULL;
	int done = 0;
	gint64 t0;

	/* armed: never, even with a linger of 1 s */
	idle_conf(f, "linger=1\n");
	f->d = start_daemon(f);
	idle = cp_idle_new(f->d, NULL, NULL, idle_done, &done);
	g_assert_nonnull(idle);
	idle_run(&done, 2500);
	g_assert_cmpint(done, ==, 0);
	g_clear_pointer(&idle, cp_idle_free);
	g_clear_pointer(&f->d, cp_daemon_free);

	/* bound and provisioned: the linger */
	idle_journal(f, TRUE);
	f->d = start_daemon(f);
	g_assert_true(cp_idle_is_stable(f->d, NULL));
	t0 = g_get_monotonic_time();
	idle = cp_idle_new(f->d, NULL, NULL, idle_done, &done);
	idle_run(&done, 5000);
	g_assert_cmpint(done, ==, 1);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 900 * 1000);
	g_clear_pointer(&idle, cp_idle_free);
	g_clear_pointer(&f->d, cp_daemon_free);

	/* the receipt read, with a long linger */
	f->conf_text[strlen(f->conf_text) - strlen("linger=1\n")] = '\0';
	idle_conf(f, "linger=3600\n");
	f->d = start_daemon(f);
	idle = cp_idle_new(f->d, NULL, NULL, idle_done, &done);
	idle_tag_session(f, error);
	g_assert_false(cp_daemon_get_receipt_read(f->d));
	idle_run(&done, 300);
	g_assert_cmpint(done, ==, 1);
	idle_tag_session(f, NULL);
	g_assert_true(cp_daemon_get_receipt_read(f->d));
	g_assert_cmpint(done, ==, 2);
	g_clear_pointer(&idle, cp_idle_free);
	g_clear_pointer(&f->d, cp_daemon_free);

	/* exit-when-idle=false: nothing watches */
	idle_conf(f, "exit-when-idle=false\n");
	f->d = start_daemon(f);
	g_assert_null(cp_idle_new(f->d, NULL, NULL, idle_done, &done));
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
	g_test_init(&argc, &argv, NULL);
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_log_set_handler("cellprovd", G_LOG_LEVEL_WARNING, on_warning, NULL);
	g_test_add("/daemon/flow/forged-operator", Fixture, NULL, fixture_setup,
		   test_forged_operator, fixture_teardown);
	g_test_add("/daemon/flow/pinned", Fixture, NULL, fixture_setup, test_pinned, fixture_teardown);
	g_test_add("/daemon/flow/anchors-errors", Fixture, NULL, fixture_setup, test_anchors_errors,
		   fixture_teardown);
	g_test_add("/daemon/flow/tag", Fixture, NULL, fixture_setup, test_tag, fixture_teardown);
	g_test_add("/daemon/flow/rejections", Fixture, NULL, fixture_setup, test_rejections,
		   fixture_teardown);
	g_test_add("/daemon/flow/verified-then-replay", Fixture, NULL, fixture_setup,
		   test_verified_then_replay, fixture_teardown);
	g_test_add("/daemon/flow/recovery-needs-backend", Fixture, NULL, fixture_setup,
		   test_recovery_needs_backend, fixture_teardown);
	g_test_add("/daemon/flow/identity-errors", Fixture, NULL, fixture_setup,
		   test_identity_errors, fixture_teardown);
	g_test_add("/daemon/flow/idle", Fixture, NULL, fixture_setup, test_idle, fixture_teardown);
	return g_test_run();
}
