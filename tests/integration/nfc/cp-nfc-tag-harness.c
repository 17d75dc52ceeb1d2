/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A daemon-shaped user of cp-nfc-tag for the tests and the benchmark: a
 * main loop, the tag, SIGTERM/SIGINT handling like cellprovd's. Prints one
 * line per event on stdout:
 *   state NAME [ERROR-DOMAIN CODE]
 *   content HEX          the NDEF presented at the start of a session
 *   written HEX          a message the phone wrote
 *   session-ended apdus=N in=N out=N writes=N us=N [error DOMAIN CODE]
 *   stopped MS           after SIGTERM: how long cp_nfc_tag_stop() took
 */
#include <stdio.h>
#include <stdlib.h>
#include <glib-unix.h>

#include "cp-glib.h"
#include "cp-nfc-tag.h"
#include "cp-nfc-test.h"

static GMainLoop *loop;
static guint64 counter;
static gboolean wrote;

static void out(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static GBytes *on_content(CpNfcTag *tag, gpointer data)
{
	g_autoptr(GBytes) receipt = wrote ? g_bytes_new_static("\x01\x00\x01\x01", 4) : NULL;
	GBytes *b = cp_test_tag_content(++counter, receipt);
	g_autofree char *h = cp_test_hex(b);

	out("content %s", h);
	return b;
}

static void on_written(CpNfcTag *tag, GBytes *ndef, gpointer data)
{
	g_autofree char *h = cp_test_hex(ndef);

	wrote = TRUE;
	out("written %s", h);
}

static void on_ended(CpNfcTag *tag, const CpNfcSessionInfo *i, const GError *error, gpointer data)
{
	if (error)
		out("session-ended apdus=%u in=%" G_GSIZE_FORMAT " out=%" G_GSIZE_FORMAT " writes=%u us=%" G_GINT64_FORMAT " error %s %d",
		    i->apdus, i->bytes_in, i->bytes_out, i->writes, i->duration_us,
		    g_quark_to_string(error->domain), error->code);
	else
		out("session-ended apdus=%u in=%" G_GSIZE_FORMAT " out=%" G_GSIZE_FORMAT " writes=%u us=%" G_GINT64_FORMAT,
		    i->apdus, i->bytes_in, i->bytes_out, i->writes, i->duration_us);
}

static void on_state(CpNfcTag *tag, CpNfcTagState state, const GError *error, gpointer data)
{
	if (error)
		out("state %s %s %d", cp_nfc_tag_state_name(state), g_quark_to_string(error->domain), error->code);
	else
		out("state %s", cp_nfc_tag_state_name(state));
}

static gboolean on_signal(gpointer data)
{
	CpNfcTag *tag = data;
	gint64 t0 = g_get_monotonic_time();

	cp_nfc_tag_stop(tag);
	out("stopped %" G_GINT64_FORMAT, (g_get_monotonic_time() - t0) / 1000);
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	static const CpNfcTagCallbacks cb = {
		.content = on_content,
		.written = on_written,
		.session_ended = on_ended,
		.state_changed = on_state,
	};
	g_autoptr(CpNfcTag) tag = NULL;
	g_autoptr(GError) error = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CONNSTRING\n", argv[0]);
		return 2;
	}
	loop = g_main_loop_new(NULL, FALSE);
	tag = cp_nfc_tag_new(argv[1], &cb, NULL);
	cp_nfc_tag_set_backoff(tag, 50, 500);
	g_unix_signal_add(SIGTERM, on_signal, tag);
	g_unix_signal_add(SIGINT, on_signal, tag);
	if (!cp_nfc_tag_start(tag, &error)) {
		fprintf(stderr, "%s\n", error->message);
		return 1;
	}
	g_main_loop_run(loop);
	g_main_loop_unref(loop);
	return 0;
}
