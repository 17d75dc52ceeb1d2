/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/cp-https.c against a local TLS server (sm-https.py): a POST and
 * its JSON answer, 204, a certificate from another CA refused, an
 * oversized or badly framed answer refused, a server that does not answer in
 * time.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "cp-https.h"
#include "cp-test-https.h"

typedef struct {
	char *dir;
	CpTestHttps s;
	GMainLoop *loop;
	guint status;
	GBytes *body;
	GError *error;
} Fixture;

static void
setup(Fixture *f, gconstpointer data)
{
	f->dir = g_dir_make_tmp("cp-https-XXXXXX", NULL);
	g_assert_nonnull(f->dir);
	cp_test_https_start(&f->s, f->dir);
	f->loop = g_main_loop_new(NULL, FALSE);
}

static void
teardown(Fixture *f, gconstpointer data)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

	cp_test_https_stop(&f->s);
	g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
	g_free(f->dir);
	g_main_loop_unref(f->loop);
	g_clear_pointer(&f->body, g_bytes_unref);
	g_clear_error(&f->error);
}

static void
on_done(GObject *source, GAsyncResult *res, gpointer data)
{
	Fixture *f = data;

	f->status = cp_https_post_finish(res, &f->body, &f->error);
	g_main_loop_quit(f->loop);
}

static void
post(Fixture *f, const char *ca, const char *path, guint timeout_ms)
{
	g_autoptr(GTlsDatabase) db = NULL;
	g_autoptr(GBytes) body = g_bytes_new_static("{\"device-record\": \"AAAA\"}", 26);
	g_autoptr(GError) error = NULL;

	db = cp_https_database_new(ca, &error);
	g_assert_no_error(error);
	g_clear_pointer(&f->body, g_bytes_unref);
	g_clear_error(&f->error);
	f->status = 0;
	cp_https_post_async(f->s.url, path, db, body, timeout_ms, NULL, on_done, f);
	g_main_loop_run(f->loop);
}

static void
test_ok(Fixture *f, gconstpointer data)
{
	g_auto(GStrv) requests = NULL;

	cp_test_https_answer(&f->s, "poll", "{\"status\": 200, \"body\": \"{\\\"type\\\": \\\"profile\\\"}\"}");
	post(f, f->s.ca, "/v1/device/poll", 5000);
	g_assert_no_error(f->error);
	g_assert_cmpuint(f->status, ==, 200);
	g_assert_cmpmem(g_bytes_get_data(f->body, NULL), g_bytes_get_size(f->body),
			"{\"type\": \"profile\"}", 19);
	requests = cp_test_https_requests(&f->s);
	g_assert_cmpuint(g_strv_length(requests), ==, 1);
	g_assert_nonnull(strstr(requests[0], "\"path\": \"/v1/device/poll\""));
	g_assert_nonnull(strstr(requests[0], "\"content-type\": \"application/json\""));
	g_assert_nonnull(strstr(requests[0], "device-record"));

	/* an error status comes back as such, with its body */
	post(f, f->s.ca, "/v1/other", 5000);
	g_assert_no_error(f->error);
	g_assert_cmpuint(f->status, ==, 404);
	g_assert_nonnull(g_strstr_len(g_bytes_get_data(f->body, NULL), g_bytes_get_size(f->body),
				      "not-found"));
}

static void
test_no_content(Fixture *f, gconstpointer data)
{
	post(f, f->s.ca, "/v1/device/poll", 5000);
	g_assert_no_error(f->error);
	g_assert_cmpuint(f->status, ==, 204);
	g_assert_cmpuint(g_bytes_get_size(f->body), ==, 0);
}

static void
test_bad_certificate(Fixture *f, gconstpointer data)
{
	post(f, f->s.other_ca, "/v1/device/poll", 5000);
	g_assert_error(f->error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
	g_assert_cmpuint(f->status, ==, 0);
	g_assert_null(f->body);
}

static void
test_oversized(Fixture *f, gconstpointer data)
{
	g_autofree char *big = g_strnfill(CP_HTTPS_MAX_BODY + 1, 'x');
	g_autofree char *json = g_strdup_printf("{\"status\": 200, \"body\": \"%s\"}", big);
	g_autofree char *fits = g_strnfill(CP_HTTPS_MAX_BODY, 'y');

	cp_test_https_answer(&f->s, "poll", json);
	post(f, f->s.ca, "/v1/device/poll", 5000);
	g_assert_error(f->error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);

	/* exactly the limit is fine */
	g_free(json);
	json = g_strdup_printf("{\"status\": 200, \"body\": \"%s\"}", fits);
	cp_test_https_answer(&f->s, "poll", json);
	post(f, f->s.ca, "/v1/device/poll", 5000);
	g_assert_no_error(f->error);
	g_assert_cmpuint(g_bytes_get_size(f->body), ==, CP_HTTPS_MAX_BODY);

	/* a malformed Content-Length is refused */
	cp_test_https_answer(&f->s, "poll",
			     "{\"status\": 200, \"body\": \"{}\", \"content-length\": \"\"}");
	post(f, f->s.ca, "/v1/device/poll", 5000);
	g_assert_error(f->error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_timeout(Fixture *f, gconstpointer data)
{
	gint64 t0 = g_get_monotonic_time();

	cp_test_https_answer(&f->s, "poll", "{\"status\": 204, \"delay\": 3}");
	post(f, f->s.ca, "/v1/device/poll", 500);
	g_assert_error(f->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 2 * G_USEC_PER_SEC);
}

static void
test_bad_url(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) body = g_bytes_new_static("{}", 2);

	cp_https_post_async("http://localhost:1", "/v1/device/poll", NULL, body, 1000, NULL,
			    on_done, f);
	g_main_loop_run(f->loop);
	g_assert_error(f->error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/https/ok", Fixture, NULL, setup, test_ok, teardown);
	g_test_add("/https/no-content", Fixture, NULL, setup, test_no_content, teardown);
	g_test_add("/https/bad-certificate", Fixture, NULL, setup, test_bad_certificate, teardown);
	g_test_add("/https/oversized", Fixture, NULL, setup, test_oversized, teardown);
	g_test_add("/https/timeout", Fixture, NULL, setup, test_timeout, teardown);
	g_test_add("/https/bad-url", Fixture, NULL, setup, test_bad_url, teardown);
	return g_test_run();
}
