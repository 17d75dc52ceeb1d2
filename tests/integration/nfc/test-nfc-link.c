/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The companion's reader (cp-nfc-reader) against the device's tag
 * (cp-nfc-tag), both on real libnfc, through two simulated PN532s joined
 * by a simulated RF link.
 */
#include <string.h>

#include "cp-glib.h"
#include "cp-ndef.h"
#include "cp-nfc-reader.h"
#include "cp-nfc-tag.h"
#include "cp-nfc-test.h"

typedef struct {
	guint64 counter;
	GPtrArray *presented;
	GPtrArray *written;
	GPtrArray *ended;
	gboolean waiting;
} Device;

static GBytes *on_content(CpNfcTag *tag, gpointer data)
{
	Device *d = data;
	g_autoptr(GBytes) receipt = NULL;
	GBytes *b;

	if (d->written->len)
		receipt = g_bytes_new_static("\x01\x00\x01\x01", 4);
	b = cp_test_tag_content(++d->counter, receipt);
	g_ptr_array_add(d->presented, g_bytes_ref(b));
	return b;
}

static void on_written(CpNfcTag *tag, GBytes *ndef, gpointer data)
{
	g_ptr_array_add(((Device *)data)->written, g_bytes_ref(ndef));
}

static void on_ended(CpNfcTag *tag, const CpNfcSessionInfo *info, const GError *error, gpointer data)
{
	g_ptr_array_add(((Device *)data)->ended, error ? g_error_copy(error) : NULL);
}

static void on_state(CpNfcTag *tag, CpNfcTagState state, const GError *error, gpointer data)
{
	((Device *)data)->waiting = state == CP_NFC_TAG_WAITING;
}

static const CpNfcTagCallbacks callbacks = {
	.content = on_content,
	.written = on_written,
	.session_ended = on_ended,
	.state_changed = on_state,
};

static void ended_free(gpointer e)
{
	if (e)
		g_error_free(e);
}

typedef struct {
	const char *connstring;
	GBytes *profile;
	GBytes *read1;
	GBytes *read2;
	GBytes *read3;
	GError *error;
	CpNfcReaderStats stats;
	gboolean done;
} Companion;

/* Tap 1: read, write, read back. Tap 2: read (fresh content + receipt). */
static gpointer companion_main(gpointer data)
{
	Companion *c = data;
	g_autoptr(CpNfcReader) r = cp_nfc_reader_open(c->connstring, &c->error);

	if (!r)
		goto out;
	if (!cp_nfc_reader_wait_target(r, 5000, &c->error) || !cp_nfc_reader_select(r, &c->error))
		goto out;
	g_assert_cmpuint(cp_nfc_reader_get_cc(r)->ndef_file_max, ==, 2 + CP_T4T_NDEF_MAX);
	if (!(c->read1 = cp_nfc_reader_read_ndef(r, &c->error)))
		goto out;
	if (!cp_nfc_reader_write_ndef(r, g_bytes_get_data(c->profile, NULL),
				      g_bytes_get_size(c->profile), &c->error))
		goto out;
	if (!(c->read2 = cp_nfc_reader_read_ndef(r, &c->error)))
		goto out;
	cp_nfc_reader_get_stats(r, &c->stats);
	cp_nfc_reader_release(r);

	if (!cp_nfc_reader_wait_target(r, 5000, &c->error) || !cp_nfc_reader_select(r, &c->error))
		goto out;
	c->read3 = cp_nfc_reader_read_ndef(r, &c->error);
	cp_nfc_reader_release(r);
out:
	g_atomic_int_set(&c->done, TRUE);
	return NULL;
}

static gboolean companion_done(gpointer data)
{
	return g_atomic_int_get(&((Companion *)data)->done);
}

static gboolean two_ended(gpointer data)
{
	return ((Device *)data)->ended->len >= 2;
}

static void test_read_write(void)
{
	CpTestSim *sim = cp_test_sim_start(TRUE, "--fwt-ms", "5000", NULL);
	Device d = { 0 };
	g_autoptr(CpNfcTag) tag = NULL;
	g_autoptr(GBytes) profile = cp_test_profile_ndef(2048, 42);
	Companion c = { .connstring = sim->initiator_connstring, .profile = profile };
	GThread *t;
	CpNdefMessage msg;

	d.presented = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	d.written = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	d.ended = g_ptr_array_new_with_free_func(ended_free);
	tag = cp_nfc_tag_new(sim->connstring, &callbacks, &d);
	g_assert_true(cp_nfc_tag_start(tag, NULL));

	t = g_thread_new("companion", companion_main, &c);
	g_assert_true(cp_test_wait(companion_done, &c, 30000));
	g_thread_join(t);
	g_assert_no_error(c.error);
	g_assert_true(cp_test_wait(two_ended, &d, 5000));
	cp_nfc_tag_stop(tag);

	/* Byte-exact in both directions. */
	g_assert_cmpuint(d.presented->len, ==, 2);
	g_assert_true(g_bytes_equal(c.read1, g_ptr_array_index(d.presented, 0)));
	g_assert_cmpuint(d.written->len, ==, 1);
	g_assert_true(g_bytes_equal(g_ptr_array_index(d.written, 0), profile));
	g_assert_true(g_bytes_equal(c.read2, profile));
	g_assert_true(g_bytes_equal(c.read3, g_ptr_array_index(d.presented, 1)));
	g_assert_null(g_ptr_array_index(d.ended, 0));
	g_assert_null(g_ptr_array_index(d.ended, 1));
	g_assert_cmpint(cp_ndef_parse(g_bytes_get_data(c.read3, NULL), g_bytes_get_size(c.read3), &msg), ==, CP_OK);
	g_assert_nonnull(cp_ndef_find_mime(&msg, CP_MIME_RECEIPT));
	/* 2 selects + CC read + NLEN + reads, then NLEN 0 with the first 244
	 * bytes, 8 chunks of at most 246 (MLc), the final NLEN: the T4T
	 * minimum of ceil((2 + n) / MLc) + 1 UPDATEs, 10 for this profile. */
	g_assert_cmpuint(g_bytes_get_size(profile), >, 9 * 246 - 2 - 246);
	g_assert_cmpuint(g_bytes_get_size(profile), <=, 9 * 246 - 2);
	g_assert_cmpuint(c.stats.updates, ==, 10);
	g_assert_cmpuint(cp_nfc_reader_write_min_updates(g_bytes_get_size(profile), 246), ==, 10);
	g_assert_cmpuint(c.stats.apdus, >, 20);
	g_assert_cmpuint(c.stats.bytes_out, >, 2048);

	/* The simulator saw two taps, each ended by the reader's release. */
	g_assert_cmpint(cp_test_sim_finish(sim, TRUE), ==, 0);
	g_assert_true(g_ptr_array_find_with_equal_func(sim->lines, "session 2 start", g_str_equal, NULL));

	g_clear_pointer(&c.read1, g_bytes_unref);
	g_clear_pointer(&c.read2, g_bytes_unref);
	g_clear_pointer(&c.read3, g_bytes_unref);
	g_ptr_array_unref(d.presented);
	g_ptr_array_unref(d.written);
	g_ptr_array_unref(d.ended);
	cp_test_sim_free(sim);
}

static void test_reader_errors(void)
{
	CpTestSim *sim = cp_test_sim_start(TRUE, "--fwt-ms", "5000", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(CpNfcReader) r = NULL;
	g_autofree char *missing = g_strdup_printf("pn532_uart:%s/none", sim->dir);
	gint64 t0;

	/* No such controller. */
	g_assert_null(cp_nfc_reader_open(missing, &error));
	g_assert_error(error, CP_NFC_ERROR, CP_NFC_ERROR_OPEN);
	g_clear_error(&error);

	/* No tag (the device side is not running): a timeout, on time. */
	r = cp_nfc_reader_open(sim->initiator_connstring, &error);
	g_assert_no_error(error);
	t0 = g_get_monotonic_time();
	g_assert_false(cp_nfc_reader_wait_target(r, 400, &error));
	g_assert_error(error, CP_NFC_ERROR, CP_NFC_ERROR_NO_TARGET);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 2000000);
	g_clear_error(&error);

	/* Before a tap, nothing to read or write. */
	g_assert_null(cp_nfc_reader_read_ndef(r, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_STATE);
	g_clear_error(&error);

	/* Aborted: cancelled, and a later wait is cancelled too. */
	cp_nfc_reader_abort(r);
	g_assert_false(cp_nfc_reader_wait_target(r, 400, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_clear_error(&error);
	g_assert_cmpint(cp_test_sim_finish(sim, TRUE), ==, 0);
	cp_test_sim_free(sim);
}

typedef struct {
	const char *connstring;
	GError *first;                 /* the write of a too large message */
	GError *lost;                  /* reading while the device's PN532 is gone */
	GBytes *after;                 /* read after it came back */
	gboolean done;
} Vanishing;

static gpointer vanishing_main(gpointer data)
{
	Vanishing *v = data;
	g_autoptr(CpNfcReader) r = cp_nfc_reader_open(v->connstring, NULL);
	g_autoptr(GBytes) big = cp_test_long_ndef(CP_T4T_NDEF_MAX);
	g_autoptr(GBytes) first = NULL;
	GError *error = NULL;

	g_assert_nonnull(r);
	g_assert_true(cp_nfc_reader_wait_target(r, 5000, &error));
	g_assert_true(cp_nfc_reader_select(r, &error));
	first = cp_nfc_reader_read_ndef(r, &error);
	g_assert_nonnull(first);
	/* Refused before anything is sent. */
	g_assert_false(cp_nfc_reader_write_ndef(r, g_bytes_get_data(big, NULL), g_bytes_get_size(big),
						&v->first));
	/* Wait for the device's controller to go away (the script). */
	for (int i = 0; i < 100 && !v->lost; i++) {
		GBytes *b = cp_nfc_reader_read_ndef(r, &v->lost);

		if (b)
			g_bytes_unref(b);
		g_usleep(20000);
	}
	cp_nfc_reader_release(r);
	/* The tag reopens its controller with backoff; tap again. */
	if (cp_nfc_reader_wait_target(r, 10000, &error) && cp_nfc_reader_select(r, &error))
		v->after = cp_nfc_reader_read_ndef(r, &error);
	g_assert_no_error(error);
	cp_nfc_reader_release(r);
	g_atomic_int_set(&v->done, TRUE);
	return NULL;
}

static gboolean vanishing_done(gpointer data)
{
	return g_atomic_int_get(&((Vanishing *)data)->done);
}

static void test_target_vanishes(void)
{
	CpTestSim *sim = cp_test_sim_start(TRUE, "--run", "sleep 1500; vanish target 300", "--linger", NULL);
	Device d = { 0 };
	g_autoptr(CpNfcTag) tag = NULL;
	Vanishing v = { .connstring = sim->initiator_connstring };
	GThread *t;

	d.presented = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	d.written = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	d.ended = g_ptr_array_new_with_free_func(ended_free);
	tag = cp_nfc_tag_new(sim->connstring, &callbacks, &d);
	cp_nfc_tag_set_backoff(tag, 50, 200);
	g_assert_true(cp_nfc_tag_start(tag, NULL));
	t = g_thread_new("companion", vanishing_main, &v);
	g_assert_true(cp_test_wait(vanishing_done, &v, 30000));
	g_thread_join(t);
	cp_nfc_tag_stop(tag);

	g_assert_error(v.first, CP_ERROR, CP_ERR_NDEF_TOO_LARGE);
	g_assert_error(v.lost, CP_NFC_ERROR, CP_NFC_ERROR_TARGET_LOST);
	g_assert_nonnull(v.after);
	g_assert_true(g_bytes_equal(v.after, g_ptr_array_index(d.presented, d.presented->len - 1)));
	g_assert_cmpuint(d.written->len, ==, 0);
	g_clear_error(&v.first);
	g_clear_error(&v.lost);
	g_clear_pointer(&v.after, g_bytes_unref);
	g_assert_cmpint(cp_test_sim_finish(sim, TRUE), ==, 0);
	g_ptr_array_unref(d.presented);
	g_ptr_array_unref(d.written);
	g_ptr_array_unref(d.ended);
	cp_test_sim_free(sim);
}

typedef struct {
	const char *connstring;
	GError *lost;                  /* the reader's own controller went away */
	GBytes *after;                 /* read through the reopened controller */
	guint reopen_attempts;
	gboolean done;
} ReaderVanishing;

static gpointer reader_vanishing_main(gpointer data)
{
	ReaderVanishing *v = data;
	CpNfcReader *r = cp_nfc_reader_open(v->connstring, NULL);
	GError *error = NULL;

	g_assert_nonnull(r);
	g_assert_true(cp_nfc_reader_wait_target(r, 5000, &error));
	g_assert_true(cp_nfc_reader_select(r, &error));
	for (int i = 0; i < 200 && !v->lost; i++) {
		GBytes *b = cp_nfc_reader_read_ndef(r, &v->lost);

		if (b)
			g_bytes_unref(b);
		g_usleep(10000);
	}
	cp_nfc_reader_free(r);
	/* As a companion would: reopen until the reader is back. */
	for (r = NULL; !r && v->reopen_attempts < 100; v->reopen_attempts++) {
		r = cp_nfc_reader_open(v->connstring, NULL);
		if (!r)
			g_usleep(50000);
	}
	g_assert_nonnull(r);
	if (cp_nfc_reader_wait_target(r, 5000, &error) && cp_nfc_reader_select(r, &error))
		v->after = cp_nfc_reader_read_ndef(r, &error);
	g_assert_no_error(error);
	cp_nfc_reader_free(r);
	g_atomic_int_set(&v->done, TRUE);
	return NULL;
}

static gboolean reader_vanishing_done(gpointer data)
{
	return g_atomic_int_get(&((ReaderVanishing *)data)->done);
}

static void test_reader_vanishes(void)
{
	CpTestSim *sim = cp_test_sim_start(TRUE, "--run", "sleep 800; vanish initiator 400", "--linger", NULL);
	Device d = { 0 };
	g_autoptr(CpNfcTag) tag = NULL;
	ReaderVanishing v = { .connstring = sim->initiator_connstring };
	GThread *t;

	d.presented = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	d.written = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	d.ended = g_ptr_array_new_with_free_func(ended_free);
	tag = cp_nfc_tag_new(sim->connstring, &callbacks, &d);
	g_assert_true(cp_nfc_tag_start(tag, NULL));
	t = g_thread_new("companion", reader_vanishing_main, &v);
	g_assert_true(cp_test_wait(reader_vanishing_done, &v, 30000));
	g_thread_join(t);
	g_assert_true(cp_test_wait(two_ended, &d, 5000));
	cp_nfc_tag_stop(tag);

	g_assert_error(v.lost, CP_NFC_ERROR, CP_NFC_ERROR_IO);
	g_assert_cmpuint(v.reopen_attempts, >, 1);
	g_assert_nonnull(v.after);
	g_assert_true(g_bytes_equal(v.after, g_ptr_array_index(d.presented, d.presented->len - 1)));
	/* The device saw the first tap end as a phone leaving: no error. */
	g_assert_null(g_ptr_array_index(d.ended, 0));
	g_clear_error(&v.lost);
	g_clear_pointer(&v.after, g_bytes_unref);
	g_assert_cmpint(cp_test_sim_finish(sim, TRUE), ==, 0);
	g_ptr_array_unref(d.presented);
	g_ptr_array_unref(d.written);
	g_ptr_array_unref(d.ended);
	cp_test_sim_free(sim);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_setenv("LIBNFC_AUTO_SCAN", "false", TRUE);
	g_test_add_func("/nfc/link/read-write", test_read_write);
	g_test_add_func("/nfc/link/reader-errors", test_reader_errors);
	g_test_add_func("/nfc/link/target-vanishes", test_target_vanishes);
	g_test_add_func("/nfc/link/reader-vanishes", test_reader_vanishes);
	return g_test_run();
}
