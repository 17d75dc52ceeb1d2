/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device's tag (cp-nfc-tag) on real libnfc, against the PN532
 * simulator playing a scripted phone.
 */
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "cp-glib.h"
#include "cp-ndef.h"
#include "cp-nfc-reader.h"
#include "cp-nfc-tag.h"
#include "cp-nfc-test.h"

typedef struct {
	CpNfcTag *tag;
	guint64 counter;
	GPtrArray *presented;          /* GBytes, one per content call */
	GPtrArray *written;            /* GBytes */
	GPtrArray *ended;              /* GError or a NULL entry per session */
	GArray *durations;             /* gint64 us, per session */
	gboolean receipt_after_write;
	gboolean saw_io_error;
	gboolean saw_open_error;
	guint waiting;                 /* times the state became WAITING */
	CpNfcTagState state;
	GThread *main_thread;
	gint off_thread;               /* callbacks run on another thread (atomic) */
} Harness;

/* Every callback must run on the thread that iterates the main context. */
static void on_main_thread(Harness *h)
{
	if (g_thread_self() != h->main_thread)
		g_atomic_int_inc(&h->off_thread);
}

static GBytes *on_content(CpNfcTag *tag, gpointer data)
{
	Harness *h = data;
	g_autoptr(GBytes) receipt = NULL;
	GBytes *b;

	on_main_thread(h);

	if (h->receipt_after_write && h->written->len > 0)
		receipt = g_bytes_new_static("\x01\x00\x01\x01\x04\x00\x01\x01", 8);
	b = cp_test_tag_content(++h->counter, receipt);
	g_ptr_array_add(h->presented, g_bytes_ref(b));
	return b;
}

static void on_written(CpNfcTag *tag, GBytes *ndef, gpointer data)
{
	Harness *h = data;

	on_main_thread(h);
	g_ptr_array_add(h->written, g_bytes_ref(ndef));
}

static void on_session_ended(CpNfcTag *tag, const CpNfcSessionInfo *info, const GError *error,
			     gpointer data)
{
	Harness *h = data;

	on_main_thread(h);
	g_assert_cmpuint(info->apdus, >, 0);
	g_ptr_array_add(h->ended, error ? g_error_copy(error) : NULL);
	g_array_append_val(h->durations, info->duration_us);
}

static void on_state(CpNfcTag *tag, CpNfcTagState state, const GError *error, gpointer data)
{
	Harness *h = data;

	on_main_thread(h);
	h->state = state;
	if (state == CP_NFC_TAG_WAITING)
		h->waiting++;
	if (error && g_error_matches(error, CP_NFC_ERROR, CP_NFC_ERROR_IO))
		h->saw_io_error = TRUE;
	if (error && g_error_matches(error, CP_NFC_ERROR, CP_NFC_ERROR_OPEN))
		h->saw_open_error = TRUE;
}

static const CpNfcTagCallbacks callbacks = {
	.content = on_content,
	.written = on_written,
	.session_ended = on_session_ended,
	.state_changed = on_state,
};

static void ended_free(gpointer e)
{
	if (e)
		g_error_free(e);
}

/* command_ms 0: the default deadlines. */
static Harness *harness_start_deadlines(const char *connstring, guint command_ms, guint session_ms)
{
	Harness *h = g_new0(Harness, 1);
	g_autoptr(GError) error = NULL;

	h->presented = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	h->written = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	h->ended = g_ptr_array_new_with_free_func(ended_free);
	h->durations = g_array_new(FALSE, FALSE, sizeof(gint64));
	h->main_thread = g_thread_self();
	h->tag = cp_nfc_tag_new(connstring, &callbacks, h);
	cp_nfc_tag_set_backoff(h->tag, 50, 400);
	if (command_ms)
		cp_nfc_tag_set_deadlines(h->tag, command_ms, session_ms);
	g_assert_true(cp_nfc_tag_start(h->tag, &error));
	g_assert_no_error(error);
	return h;
}

static Harness *harness_start(const char *connstring)
{
	return harness_start_deadlines(connstring, 0, 0);
}

static gboolean n_ended_reached(gpointer data)
{
	Harness *h = ((gpointer *)data)[0];
	guint n = GPOINTER_TO_UINT(((gpointer *)data)[1]);

	return h->ended->len >= n;
}

/* Wait until n sessions were reported, then stop the tag. */
static void harness_stop(Harness *h, guint n)
{
	gpointer args[2] = { h, GUINT_TO_POINTER(n) };

	g_assert_true(cp_test_wait(n_ended_reached, args, 5000));
	cp_nfc_tag_stop(h->tag);
	g_assert_cmpint(h->state, ==, CP_NFC_TAG_STOPPED);
	g_assert_cmpuint(h->ended->len, ==, n);
}

static void harness_free(Harness *h)
{
	g_assert_cmpint(g_atomic_int_get(&h->off_thread), ==, 0);
	cp_nfc_tag_unref(h->tag);
	g_ptr_array_unref(h->presented);
	g_ptr_array_unref(h->written);
	g_ptr_array_unref(h->ended);
	g_array_unref(h->durations);
	g_free(h);
}

static char *write_temp(GBytes *b, char **dir)
{
	g_autoptr(GError) error = NULL;
	char *path;

	*dir = g_dir_make_tmp("cp-nfc-data-XXXXXX", &error);
	g_assert_no_error(error);
	path = g_build_filename(*dir, "data", NULL);
	g_assert_true(g_file_set_contents(path, g_bytes_get_data(b, NULL), g_bytes_get_size(b), &error));
	return path;
}

static void remove_temp(char *path, char *dir)
{
	g_remove(path);
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
}

static void assert_bytes_equal(GBytes *a, GBytes *b)
{
	g_assert_nonnull(a);
	g_assert_nonnull(b);
	g_assert_cmpmem(g_bytes_get_data(a, NULL), g_bytes_get_size(a),
			g_bytes_get_data(b, NULL), g_bytes_get_size(b));
}

static const GError *ended(Harness *h, guint i)
{
	g_assert_cmpuint(i, <, h->ended->len);
	return g_ptr_array_index(h->ended, i);
}

/* ---- cases ---- */

static void test_read(void)
{
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run",
		"tap; select-app; read-cc; read-ndef; release; "
		"tap; select-app; read-cc; read-ndef; release", NULL);
	Harness *h = harness_start(sim->connstring);
	g_autoptr(GBytes) first = NULL;
	g_autoptr(GBytes) second = NULL;
	CpNdefMessage msg;
	g_autofree char *uri = NULL;
	const CpNdefRecord *dr;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 2);
	g_assert_cmpuint(h->presented->len, ==, 2);
	g_assert_null(ended(h, 0));
	g_assert_null(ended(h, 1));

	/* What the phone read is what the daemon presented, per session. */
	first = cp_test_sim_ndef(sim, 0);
	second = cp_test_sim_ndef(sim, 1);
	assert_bytes_equal(first, g_ptr_array_index(h->presented, 0));
	assert_bytes_equal(second, g_ptr_array_index(h->presented, 1));
	g_assert_false(g_bytes_equal(first, second));

	g_assert_cmpint(cp_ndef_parse(g_bytes_get_data(first, NULL), g_bytes_get_size(first), &msg), ==, CP_OK);
	g_assert_cmpint(cp_ndef_find_uri(&msg, &uri), ==, CP_OK);
	g_assert_cmpstr(uri, ==, CP_TEST_URL);
	dr = cp_ndef_find_mime(&msg, CP_MIME_DEVICE);
	g_assert_nonnull(dr);
	/* att_counter (tag 0x08) is 1 then 2. */
	g_assert_nonnull(memmem(dr->payload, dr->payload_len, "\x08\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01", 11));

	/* The CC the phone decoded: T4T 2.0, MLe = MLc = 246, file E104 of 4098 bytes. */
	g_assert_true(g_ptr_array_find_with_equal_func(sim->lines,
		"cc 000f2000f600f60406e1041002" "0000", g_str_equal, NULL));
	g_assert_cmpint(cp_nfc_tag_get_state(h->tag), ==, CP_NFC_TAG_STOPPED);
	harness_free(h);
	cp_test_sim_free(sim);
}

static void test_write_profile(void)
{
	g_autoptr(GBytes) profile = cp_test_profile_ndef(2048, 7);
	char *dir, *path = write_temp(profile, &dir);
	g_autofree char *script = g_strdup_printf(
		"tap; select-app; read-cc; read-ndef; write-ndef %s; read-ndef; release", path);
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run", script, NULL);
	Harness *h = harness_start(sim->connstring);
	g_autoptr(GBytes) back = NULL;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 1);
	g_assert_null(ended(h, 0));
	g_assert_cmpuint(h->written->len, ==, 1);
	assert_bytes_equal(g_ptr_array_index(h->written, 0), profile);
	/* Read back in the same session: the phone sees what it wrote. */
	back = cp_test_sim_ndef(sim, 1);
	assert_bytes_equal(back, profile);
	harness_free(h);
	cp_test_sim_free(sim);
	remove_temp(path, dir);
}

static void test_receipt(void)
{
	g_autoptr(GBytes) profile = cp_test_profile_ndef(2048, 8);
	char *dir, *path = write_temp(profile, &dir);
	g_autofree char *script = g_strdup_printf(
		"tap; select-app; read-cc; write-ndef %s; release; "
		"tap; select-app; read-cc; read-ndef; release", path);
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run", script, NULL);
	Harness *h;
	g_autoptr(GBytes) next = NULL;
	CpNdefMessage msg;
	const CpNdefRecord *rec;

	h = harness_start(sim->connstring);
	h->receipt_after_write = TRUE;
	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 2);
	g_assert_cmpuint(h->written->len, ==, 1);
	next = cp_test_sim_ndef(sim, 0);
	assert_bytes_equal(next, g_ptr_array_index(h->presented, 1));
	g_assert_cmpint(cp_ndef_parse(g_bytes_get_data(next, NULL), g_bytes_get_size(next), &msg), ==, CP_OK);
	g_assert_cmpuint(msg.n_records, ==, 3);
	rec = cp_ndef_find_mime(&msg, CP_MIME_RECEIPT);
	g_assert_nonnull(rec);
	g_assert_cmpmem(rec->payload, rec->payload_len, "\x01\x00\x01\x01\x04\x00\x01\x01", 8);
	harness_free(h);
	cp_test_sim_free(sim);
	remove_temp(path, dir);
}

static void test_leave_mid_write(void)
{
	g_autoptr(GBytes) profile = cp_test_profile_ndef(2048, 9);
	char *dir, *path = write_temp(profile, &dir);
	g_autofree char *script = g_strdup_printf(
		"tap; select-app; read-cc; write-ndef %s stop=3; release; "
		"tap; select-app; read-cc; read-ndef; release", path);
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run", script, NULL);
	Harness *h = harness_start(sim->connstring);
	g_autoptr(GBytes) next = NULL;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 2);
	g_assert_cmpuint(h->written->len, ==, 0);
	g_assert_error(ended(h, 0), CP_NFC_ERROR, CP_NFC_ERROR_WRITE_INCOMPLETE);
	g_assert_null(ended(h, 1));
	/* Nothing of the partial write is left on the tag. */
	next = cp_test_sim_ndef(sim, 0);
	assert_bytes_equal(next, g_ptr_array_index(h->presented, 1));
	harness_free(h);
	cp_test_sim_free(sim);
	remove_temp(path, dir);
}

/* The value of key=N on the simulator's "session <n> end" line. */
static guint sim_session_field(CpTestSim *sim, guint session, const char *key)
{
	g_autofree char *prefix = g_strdup_printf("session %u end ", session);
	g_autofree char *k = g_strdup_printf(" %s=", key);

	for (guint i = 0; i < sim->lines->len; i++) {
		const char *l = g_ptr_array_index(sim->lines, i);
		const char *v;

		if (g_str_has_prefix(l, prefix) && (v = strstr(l, k)))
			return (guint)g_ascii_strtoull(v + strlen(k), NULL, 10);
	}
	g_assert_not_reached();
	return 0;
}

/* The chained I-blocks a write of n bytes in UPDATEs of chunk bytes takes
 * through frames of the PN532's FSC of 64 (61 bytes of INF): every
 * C-APDU of L bytes is (L - 1) / 61 chained blocks and a last one. */
static guint chained_blocks(gsize n, gsize chunk)
{
	guint blocks = 0;

	for (gsize off = 0; off < n; off += chunk)
		blocks += (5 + MIN(chunk, n - off) - 1) / 61;
	return blocks;
}

/*
 * A protocol version 2 profile (1300 bytes and more) through the PN532's
 * 64-byte frames: each 251-byte UPDATE reaches the tag as chained I-blocks
 * (MI in TgGetData's status byte) that libnfc reassembles.
 */
static void test_write_chained(void)
{
	g_autoptr(GBytes) profile = cp_test_profile_ndef(1300, 11);
	gsize n = g_bytes_get_size(profile);
	char *dir, *path = write_temp(profile, &dir);
	g_autofree char *script = g_strdup_printf(
		"tap; select-app; read-cc; write-ndef %s; read-ndef; release", path);
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run", script, NULL);
	Harness *h = harness_start(sim->connstring);
	g_autoptr(GBytes) back = NULL;

	g_assert_cmpuint(n, >=, 1300);
	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 1);
	g_assert_null(ended(h, 0));
	g_assert_cmpuint(h->written->len, ==, 1);
	assert_bytes_equal(g_ptr_array_index(h->written, 0), profile);
	back = cp_test_sim_ndef(sim, 0);
	assert_bytes_equal(back, profile);
	g_assert_cmpuint(sim_session_field(sim, 1, "chained-blocks"), ==, chained_blocks(n, CP_T4T_MLC));
	g_assert_cmpuint(chained_blocks(n, CP_T4T_MLC), >=, 20);
	harness_free(h);
	cp_test_sim_free(sim);
	remove_temp(path, dir);
}

/* A phone-like scenario (cp-pn532-sim(1)): reads the tag, writes a profile,
 * reads it back. */
static void run_phone(const char *scenario)
{
	g_autoptr(GBytes) profile = cp_test_profile_ndef(1400, 12);
	char *dir, *path = write_temp(profile, &dir);
	CpTestSim *sim = cp_test_sim_start(FALSE, "--scenario", scenario, "--data", path, NULL);
	Harness *h = harness_start(sim->connstring);
	g_autoptr(GBytes) first = NULL;
	g_autoptr(GBytes) back = NULL;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 1);
	g_assert_null(ended(h, 0));
	first = cp_test_sim_ndef(sim, 0);
	assert_bytes_equal(first, g_ptr_array_index(h->presented, 0));
	g_assert_cmpuint(h->written->len, ==, 1);
	assert_bytes_equal(g_ptr_array_index(h->written, 0), profile);
	back = cp_test_sim_ndef(sim, 1);
	assert_bytes_equal(back, profile);
	g_assert_cmpuint(sim_session_field(sim, 1, "chained-blocks"), >, 0);
	harness_free(h);
	cp_test_sim_free(sim);
	remove_temp(path, dir);
}

static void test_phone_android(void)
{
	run_phone("android");
}

static void test_phone_iphone(void)
{
	run_phone("iphone");
}

/*
 * A reader that keeps its field on and goes silent: the session ends after
 * the per-command deadline with CP_NFC_ERROR_TIMEOUT, the tag releases the
 * target (the simulator sees InRelease: "target-idle"), and the next tap is
 * a new session with fresh content.
 */
static void test_silent_reader(void)
{
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run",
		"tap; select-app; read-cc; sleep 1500; wait-armed 3000; "
		"tap; select-app; read-cc; read-ndef; release", NULL);
	Harness *h = harness_start_deadlines(sim->connstring, 500, 10000);
	g_autoptr(GBytes) read = NULL;
	gint64 d;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 2);
	g_assert_error(ended(h, 0), CP_NFC_ERROR, CP_NFC_ERROR_TIMEOUT);
	g_assert_nonnull(strstr(ended(h, 0)->message, "no command"));
	g_assert_null(ended(h, 1));
	d = g_array_index(h->durations, gint64, 0);
	g_assert_cmpint(d, >=, 500000);
	g_assert_cmpint(d, <, 1500000);
	g_assert_true(g_ptr_array_find_with_equal_func(sim->lines, "session 1 end target-idle",
		(GEqualFunc)g_str_has_prefix, NULL));
	g_assert_cmpuint(h->presented->len, ==, 2);
	read = cp_test_sim_ndef(sim, 0);
	assert_bytes_equal(read, g_ptr_array_index(h->presented, 1));
	g_assert_false(g_bytes_equal(g_ptr_array_index(h->presented, 0),
				     g_ptr_array_index(h->presented, 1)));
	harness_free(h);
	cp_test_sim_free(sim);
}

/*
 * Valid commands trickling in, each within the per-command deadline: the
 * per-session deadline ends the session.
 */
static void test_trickle(void)
{
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run",
		"tap; select-app; sleep 300; select-file E103; sleep 300; select-file E104; "
		"sleep 300; select-file E103; sleep 1200; wait-armed 3000; "
		"tap; select-app; read-cc; read-ndef; release", NULL);
	Harness *h = harness_start_deadlines(sim->connstring, 800, 1500);
	gint64 d;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 2);
	g_assert_error(ended(h, 0), CP_NFC_ERROR, CP_NFC_ERROR_TIMEOUT);
	g_assert_nonnull(strstr(ended(h, 0)->message, "session went past 1500 ms"));
	g_assert_null(ended(h, 1));
	d = g_array_index(h->durations, gint64, 0);
	g_assert_cmpint(d, >=, 1500000);
	g_assert_cmpint(d, <, 2300000);
	g_assert_cmpuint(h->presented->len, ==, 2);
	harness_free(h);
	cp_test_sim_free(sim);
}

/* A scenario whose status words the simulator checks; a normal session. */
static void run_checked_scenario(const char *name)
{
	CpTestSim *sim = cp_test_sim_start(FALSE, "--scenario", name, NULL);
	Harness *h = harness_start(sim->connstring);

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 1);
	g_assert_null(ended(h, 0));
	g_assert_cmpuint(h->written->len, ==, 0);
	harness_free(h);
	cp_test_sim_free(sim);
}

static void test_wrong_aid(void)
{
	run_checked_scenario("wrong-aid");
}

static void test_read_past_end(void)
{
	run_checked_scenario("read-past-end");
}

static void test_update_bad_offset(void)
{
	run_checked_scenario("update-bad-offset");
}

static void test_write_too_large(void)
{
	g_autoptr(GBytes) big = cp_test_long_ndef(4100);
	char *dir, *path = write_temp(big, &dir);
	g_autofree char *script = g_strdup_printf(
		"tap; select-app; read-cc; write-ndef %s sw=6A84; "
		/* A final NLEN of 4097: beyond the file. */
		"select-file E104; apdu 00D60000020000 9000; apdu 00D60000021001 6A80; "
		"read-ndef; release", path);
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run", script, NULL);
	Harness *h = harness_start(sim->connstring);
	g_autoptr(GBytes) after = NULL;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 1);
	g_assert_cmpuint(h->written->len, ==, 0);
	g_assert_error(ended(h, 0), CP_ERROR, CP_ERR_NDEF_TOO_LARGE);
	/* The refused writes left the presented content in place. */
	after = cp_test_sim_ndef(sim, 0);
	assert_bytes_equal(after, g_ptr_array_index(h->presented, 0));
	harness_free(h);
	cp_test_sim_free(sim);
	remove_temp(path, dir);
}

static void test_malformed(void)
{
	/* One record with MB but no ME, then nothing: not a message. */
	g_autoptr(GBytes) bad = g_bytes_new_static("\x92\x03\x02" "abcXY", 8);
	char *dir, *path = write_temp(bad, &dir);
	g_autofree char *script = g_strdup_printf(
		"tap; select-app; read-cc; write-ndef %s sw=6A80; read-ndef; release", path);
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run", script, NULL);
	Harness *h = harness_start(sim->connstring);
	const GError *e;

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 1);
	g_assert_cmpuint(h->written->len, ==, 0);
	e = ended(h, 0);
	g_assert_nonnull(e);
	g_assert_true(e->domain == CP_ERROR);
	g_assert_cmpint(e->code >> 8, ==, 0x03);   /* an NDEF error */
	g_assert_cmpint(e->code, !=, CP_ERR_NDEF_TOO_LARGE);
	harness_free(h);
	cp_test_sim_free(sim);
	remove_temp(path, dir);
}

static void test_vanish(void)
{
	CpTestSim *sim = cp_test_sim_start(FALSE, "--scenario", "vanish", NULL);
	Harness *h = harness_start(sim->connstring);

	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 2);
	g_assert_null(ended(h, 0));
	g_assert_null(ended(h, 1));
	g_assert_true(h->saw_io_error);
	g_assert_cmpuint(h->waiting, >=, 2);
	harness_free(h);
	cp_test_sim_free(sim);
}

static gboolean is_waiting(gpointer data)
{
	return ((Harness *)data)->state == CP_NFC_TAG_WAITING;
}

static void test_stop_prompt(void)
{
	CpTestSim *sim = cp_test_sim_start(FALSE, "--run", "wait-armed; sleep 20000", NULL);
	Harness *h = harness_start(sim->connstring);
	gint64 t0;

	g_assert_true(cp_test_wait(is_waiting, h, 5000));
	/* Let the worker sit in nfc_target_init for a moment. */
	g_usleep(200000);
	t0 = g_get_monotonic_time();
	cp_nfc_tag_stop(h->tag);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 1000000);
	g_assert_cmpint(h->state, ==, CP_NFC_TAG_STOPPED);
	g_assert_cmpuint(h->ended->len, ==, 0);
	/* And it starts again after a stop. */
	g_assert_true(cp_nfc_tag_start(h->tag, NULL));
	g_assert_true(cp_test_wait(is_waiting, h, 5000));
	cp_nfc_tag_stop(h->tag);
	harness_free(h);
	cp_test_sim_free(sim);
}

static gboolean saw_open_error(gpointer data)
{
	return ((Harness *)data)->saw_open_error;
}

static void test_missing_reader(void)
{
	g_autofree char *dir = g_dir_make_tmp("cp-nfc-none-XXXXXX", NULL);
	g_autofree char *cs = g_strdup_printf("pn532_uart:%s/no-such-pty", dir);
	Harness *h = harness_start(cs);
	GError *error = NULL;

	g_assert_true(cp_test_wait(saw_open_error, h, 5000));
	g_assert_cmpint(cp_nfc_tag_get_state(h->tag), ==, CP_NFC_TAG_OPENING);
	/* Starting twice is refused, and changes nothing. */
	g_assert_false(cp_nfc_tag_start(h->tag, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_STATE);
	g_clear_error(&error);
	cp_nfc_tag_stop(h->tag);
	harness_free(h);
	g_rmdir(dir);
}

/*
 * The owner is busy (not iterating its main context) while the worker has
 * something to report: the report waits for the main context instead of
 * running the callback on the worker thread.
 */
static void test_callbacks_main_thread(void)
{
	g_autofree char *dir = g_dir_make_tmp("cp-nfc-none-XXXXXX", NULL);
	g_autofree char *cs = g_strdup_printf("pn532_uart:%s/no-such-pty", dir);
	Harness *h = harness_start(cs);

	g_usleep(300000);
	g_assert_false(h->saw_open_error);
	g_assert_true(cp_test_wait(saw_open_error, h, 5000));
	g_assert_cmpint(g_atomic_int_get(&h->off_thread), ==, 0);
	cp_nfc_tag_stop(h->tag);
	harness_free(h);
	g_rmdir(dir);
}

/*
 * Another libnfc user of the process comes and goes (here a reader whose
 * controller is missing) while the tag waits for its controller: the tag
 * still opens it when it appears. libnfc's nfc_exit() frees the driver
 * list of every context, so each owner calling it would break the others.
 */
static void test_other_context_freed(void)
{
	g_autofree char *dir = g_dir_make_tmp("cp-nfc-late-XXXXXX", NULL);
	g_autofree char *link = g_build_filename(dir, "pty", NULL);
	g_autofree char *cs = g_strdup_printf("pn532_uart:%s", link);
	g_autofree char *missing = g_strdup_printf("pn532_uart:%s/none", dir);
	g_autoptr(GError) error = NULL;
	CpNfcReader *reader;
	CpTestSim *sim;
	Harness *h;

	h = harness_start(cs);
	g_assert_true(cp_test_wait(saw_open_error, h, 5000));
	reader = cp_nfc_reader_open(missing, &error);
	g_assert_null(reader);
	g_assert_error(error, CP_NFC_ERROR, CP_NFC_ERROR_OPEN);

	sim = cp_test_sim_start(FALSE, "--run", "tap; select-app; read-cc; read-ndef; release", NULL);
	g_assert_cmpint(symlink(sim->target_pty, link), ==, 0);
	g_assert_cmpint(cp_test_sim_finish(sim, FALSE), ==, 0);
	harness_stop(h, 1);
	g_assert_null(ended(h, 0));
	harness_free(h);
	cp_test_sim_free(sim);
	g_remove(link);
	g_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_setenv("LIBNFC_AUTO_SCAN", "false", TRUE);
	g_test_add_func("/nfc/tag/read", test_read);
	g_test_add_func("/nfc/tag/write-profile-2k", test_write_profile);
	g_test_add_func("/nfc/tag/write-chained-1300", test_write_chained);
	g_test_add_func("/nfc/tag/phone-android", test_phone_android);
	g_test_add_func("/nfc/tag/phone-iphone", test_phone_iphone);
	g_test_add_func("/nfc/tag/silent-reader", test_silent_reader);
	g_test_add_func("/nfc/tag/trickle", test_trickle);
	g_test_add_func("/nfc/tag/receipt", test_receipt);
	g_test_add_func("/nfc/tag/leave-mid-write", test_leave_mid_write);
	g_test_add_func("/nfc/tag/wrong-aid", test_wrong_aid);
	g_test_add_func("/nfc/tag/read-past-end", test_read_past_end);
	g_test_add_func("/nfc/tag/update-bad-offset", test_update_bad_offset);
	g_test_add_func("/nfc/tag/write-too-large", test_write_too_large);
	g_test_add_func("/nfc/tag/malformed", test_malformed);
	g_test_add_func("/nfc/tag/vanish", test_vanish);
	g_test_add_func("/nfc/tag/stop-prompt", test_stop_prompt);
	g_test_add_func("/nfc/tag/missing-reader", test_missing_reader);
	g_test_add_func("/nfc/tag/callbacks-main-thread", test_callbacks_main_thread);
	g_test_add_func("/nfc/tag/other-context-freed", test_other_context_freed);
	return g_test_run();
}
