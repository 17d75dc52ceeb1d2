/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-nfc-test.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>

#include "cp-buf.h"
#include "cp-ndef.h"

static void tlv(CpBuf *b, guint8 tag, const void *v, gsize n)
{
	cp_buf_append_u8(b, tag);
	cp_buf_append_be16(b, n);
	cp_buf_append(b, v, n);
}

GBytes *cp_test_tag_content(guint64 counter, GBytes *receipt)
{
	static const guint8 id[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				       0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	cp_auto_buf dr = CP_BUF_INIT;
	cp_auto_buf ndef = CP_BUF_INIT;
	guint8 v = 1, st = 0, suites[] = { 0x02 }, ctr[8], rnd[16], sig[71];
	const guint8 *r = NULL;
	gsize rl = 0;

	cp_put_be64(ctr, counter);
	for (guint i = 0; i < sizeof(rnd); i++)
		rnd[i] = g_random_int() & 0xFF;
	memset(sig, 0x5A, sizeof(sig));
	sig[0] = 0x30;
	tlv(&dr, 0x01, &v, 1);
	tlv(&dr, 0x02, id, sizeof(id));
	tlv(&dr, 0x03, "Example Ltd", 11);
	tlv(&dr, 0x04, "GW-1", 4);
	tlv(&dr, 0x05, "SN0001", 6);
	tlv(&dr, 0x06, suites, sizeof(suites));
	tlv(&dr, 0x07, &st, 1);
	tlv(&dr, 0x08, ctr, sizeof(ctr));
	tlv(&dr, 0x09, rnd, sizeof(rnd));
	tlv(&dr, 0x0A, sig, sizeof(sig));
	g_assert_false(dr.failed);
	if (receipt)
		r = g_bytes_get_data(receipt, &rl);
	g_assert_cmpint(cp_tag_build(CP_TEST_URL, dr.data, dr.len, r, rl, &ndef), ==, CP_OK);
	return g_bytes_new(ndef.data, ndef.len);
}

GBytes *cp_test_profile_ndef(gsize n, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
	g_autofree guint8 *payload = g_malloc(n);
	cp_auto_buf out = CP_BUF_INIT;
	CpNdefMessage msg = { 0 };

	for (gsize i = 0; i < n; i++)
		payload[i] = g_rand_int(rand) & 0xFF;
	cp_ndef_record_mime(&msg.records[0], CP_MIME_PROFILE, payload, n);
	msg.n_records = 1;
	g_assert_cmpint(cp_ndef_encode(&msg, &out), ==, CP_OK);
	return g_bytes_new(out.data, out.len);
}

GBytes *cp_test_long_ndef(gsize n)
{
	static const char type[] = CP_MIME_PROFILE;
	GByteArray *a = g_byte_array_new();
	guint8 hdr[6] = { 0xC2, sizeof(type) - 1, n >> 24, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF };

	g_byte_array_append(a, hdr, sizeof(hdr));
	g_byte_array_append(a, (const guint8 *)type, sizeof(type) - 1);
	for (gsize i = 0; i < n; i++) {
		guint8 v = i & 0xFF;

		g_byte_array_append(a, &v, 1);
	}
	return g_byte_array_free_to_bytes(a);
}

char *cp_test_hex(GBytes *b)
{
	gsize n;
	const guint8 *d = g_bytes_get_data(b, &n);
	char *s = g_malloc(2 * n + 1);

	cp_hex_encode(d, n, s);
	return s;
}

CpTestSim *cp_test_sim_start(gboolean link, const char *first_arg, ...)
{
	const char *sim_path = g_getenv("CP_PN532_SIM");
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	CpTestSim *sim = g_new0(CpTestSim, 1);
	va_list ap;

	g_assert_nonnull(sim_path);
	sim->dir = g_dir_make_tmp("cp-nfc-XXXXXX", &error);
	g_assert_no_error(error);
	sim->target_pty = g_build_filename(sim->dir, "target-pty", NULL);
	sim->initiator_pty = g_build_filename(sim->dir, "initiator-pty", NULL);
	sim->connstring = g_strdup_printf("pn532_uart:%s", sim->target_pty);
	sim->initiator_connstring = g_strdup_printf("pn532_uart:%s", sim->initiator_pty);
	sim->lines = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(argv, (char *)sim_path);
	g_ptr_array_add(argv, "--target-pty");
	g_ptr_array_add(argv, sim->target_pty);
	if (link) {
		g_ptr_array_add(argv, "--initiator-pty");
		g_ptr_array_add(argv, sim->initiator_pty);
	}
	va_start(ap, first_arg);
	for (const char *a = first_arg; a; a = va_arg(ap, const char *))
		g_ptr_array_add(argv, (char *)a);
	va_end(ap);
	g_ptr_array_add(argv, NULL);

	sim->proc = g_subprocess_newv((const char *const *)argv->pdata,
				      G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
	g_assert_no_error(error);
	sim->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(sim->proc));
	g_assert_nonnull(cp_test_sim_wait_line(sim, "ready"));
	return sim;
}

const char *cp_test_sim_wait_line(CpTestSim *sim, const char *prefix)
{
	for (;;) {
		g_autoptr(GError) error = NULL;
		char *line = g_data_input_stream_read_line(sim->out, NULL, NULL, &error);

		if (!line)
			return NULL;
		g_ptr_array_add(sim->lines, line);
		if (prefix && g_str_has_prefix(line, prefix))
			return line;
	}
}

static void exited_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	gboolean *done = data;

	g_subprocess_wait_finish(G_SUBPROCESS(src), res, NULL);
	*done = TRUE;
}

static gboolean flag_set(gpointer data)
{
	return *(gboolean *)data;
}

int cp_test_sim_finish(CpTestSim *sim, gboolean kill)
{
	gboolean done = FALSE;

	if (kill && g_subprocess_get_identifier(sim->proc))
		g_subprocess_send_signal(sim->proc, SIGTERM);
	/* The main context runs meanwhile: the tag under test needs it. */
	g_subprocess_wait_async(sim->proc, NULL, exited_cb, &done);
	if (!cp_test_wait(flag_set, &done, 30000)) {
		g_subprocess_force_exit(sim->proc);
		cp_test_wait(flag_set, &done, 5000);
		g_test_message("the simulator did not finish in time");
	}
	cp_test_sim_wait_line(sim, NULL);
	if (g_test_verbose() || !g_subprocess_get_if_exited(sim->proc) ||
	    g_subprocess_get_exit_status(sim->proc) != 0)
		for (guint i = 0; i < sim->lines->len; i++)
			g_test_message("sim: %s", (char *)g_ptr_array_index(sim->lines, i));
	return g_subprocess_get_if_exited(sim->proc) ? g_subprocess_get_exit_status(sim->proc) : -1;
}

GBytes *cp_test_sim_ndef(CpTestSim *sim, guint n)
{
	for (guint i = 0; i < sim->lines->len; i++) {
		const char *l = g_ptr_array_index(sim->lines, i);

		if (g_str_has_prefix(l, "ndef ") && n-- == 0) {
			gsize len = strlen(l + 5) / 2;
			guint8 *buf = g_malloc(len + 1);

			g_assert_cmpint(cp_hex_decode(l + 5, buf, len), ==, (long)len);
			return g_bytes_new_take(buf, len);
		}
	}
	return NULL;
}

void cp_test_sim_free(CpTestSim *sim)
{
	if (!sim)
		return;
	if (g_subprocess_get_identifier(sim->proc))
		cp_test_sim_finish(sim, TRUE);
	g_object_unref(sim->out);
	g_object_unref(sim->proc);
	g_ptr_array_unref(sim->lines);
	g_remove(sim->target_pty);
	g_remove(sim->initiator_pty);
	g_rmdir(sim->dir);
	g_free(sim->dir);
	g_free(sim->target_pty);
	g_free(sim->initiator_pty);
	g_free(sim->connstring);
	g_free(sim->initiator_connstring);
	g_free(sim);
}

gboolean cp_test_wait(gboolean (*cond)(gpointer), gpointer data, guint timeout_ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (!cond(data)) {
		if (g_get_monotonic_time() > end)
			return FALSE;
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	return TRUE;
}
