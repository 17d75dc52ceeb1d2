/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The modem tests' fixtures (cp-test-sim.h).
 */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cp-test-sim.h"

void
cp_test_child_setup(gpointer data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

char *
cp_test_sim_file(CpTestSim *s, const char *name)
{
	return g_build_filename(s->dir, name, NULL);
}

GPid
cp_test_spawn_ready(const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GIOChannel) ch = NULL;
	g_autofree char *line = NULL;
	GPid pid;
	int out_fd;

	g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
					       cp_test_child_setup, NULL, &pid, NULL, &out_fd, NULL, &error));
	g_assert_no_error(error);
	/* "ready PATH" once the port is there */
	ch = g_io_channel_unix_new(out_fd);
	g_io_channel_set_close_on_unref(ch, TRUE);
	g_io_channel_read_line(ch, &line, NULL, NULL, NULL);
	g_assert_nonnull(line);
	g_assert_true(g_str_has_prefix(line, "ready "));
	return pid;
}

void
cp_test_sim_start(CpTestSim *s, const char *prog, const char *node, const char *subscribers,
		  const char *const *args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *base = g_path_get_basename(prog);
	g_autofree char *tmpl = g_strconcat(base, "-XXXXXX", NULL);
	g_autofree char *subs = NULL;

	memset(s, 0, sizeof(*s));
	s->dir = g_dir_make_tmp(tmpl, &error);
	g_assert_no_error(error);
	s->dump = cp_test_sim_file(s, "dump");
	subs = cp_test_sim_file(s, "subscribers");
	g_assert_true(g_file_set_contents_full(subs, subscribers, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error));
	g_assert_no_error(error);

	g_ptr_array_add(argv, g_strdup(prog));
	if (node) {
		s->pty = cp_test_sim_file(s, node);
		g_ptr_array_add(argv, g_strdup("--pty"));
		g_ptr_array_add(argv, g_strdup(s->pty));
	}
	g_ptr_array_add(argv, g_strdup("--dump"));
	g_ptr_array_add(argv, g_strdup(s->dump));
	g_ptr_array_add(argv, g_strdup("--subscribers"));
	g_ptr_array_add(argv, g_strdup(subs));
	for (guint i = 0; args && args[i]; i++)
		g_ptr_array_add(argv, args[i][0] == '@' ? cp_test_sim_file(s, args[i] + 1) : g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	s->pid = cp_test_spawn_ready((const char *const *)argv->pdata);
}

void
cp_test_sim_startv(CpTestSim *s, const char *prog, const char *node, const char *subscribers,
		   const char *args)
{
	g_auto(GStrv) split = g_strsplit(args ? args : "", " ", -1);
	g_autoptr(GPtrArray) a = g_ptr_array_new();

	for (guint i = 0; split[i]; i++)
		if (*split[i])
			g_ptr_array_add(a, split[i]);
	g_ptr_array_add(a, NULL);
	cp_test_sim_start(s, prog, node, subscribers, (const char *const *)a->pdata);
}

void
cp_test_sim_stop(CpTestSim *s)
{
	g_autoptr(GDir) d = NULL;
	const char *name;

	if (s->pid) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		g_spawn_close_pid(s->pid);
		s->pid = 0;
	}
	/* the dump, the subscribers, the port under whatever name it has now */
	d = g_dir_open(s->dir, 0, NULL);
	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = cp_test_sim_file(s, name);

		g_unlink(p);
	}
	g_rmdir(s->dir);
	g_clear_pointer(&s->dir, g_free);
	g_clear_pointer(&s->pty, g_free);
	g_clear_pointer(&s->dump, g_free);
}

GHashTable *
cp_test_sim_dump_read(CpTestSim *s)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

	if (!g_file_get_contents(s->dump, &text, NULL, NULL))
		return h;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		char *eq = strchr(lines[i], '=');

		if (eq)
			g_hash_table_insert(h, g_strndup(lines[i], (gsize)(eq - lines[i])), g_strdup(eq + 1));
	}
	return h;
}

char *
cp_test_sim_dump_get(CpTestSim *s, const char *key)
{
	g_autoptr(GHashTable) h = cp_test_sim_dump_read(s);

	return g_strdup(g_hash_table_lookup(h, key));
}

gboolean
cp_test_wait_path(const char *path, gboolean present, guint ms)
{
	for (guint i = 0; i < ms / 10 && g_file_test(path, G_FILE_TEST_EXISTS) != present; i++)
		g_usleep(10000);
	return g_file_test(path, G_FILE_TEST_EXISTS) == present;
}

/* ---- the log ----------------------------------------------------------- */

static GString *log_text;

static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && fields[i].value) {
			if (fields[i].length < 0)
				g_string_append(log_text, fields[i].value);
			else
				g_string_append_len(log_text, fields[i].value, fields[i].length);
			g_string_append_c(log_text, '\n');
		}
	}
	return g_log_writer_default(level, fields, n_fields, data);
}

void
cp_test_log_capture(void)
{
	log_text = g_string_new(NULL);
	g_log_set_writer_func(log_writer, NULL, NULL);
}

const char *
cp_test_log_text(void)
{
	return log_text->str;
}

void
cp_test_log_clear(void)
{
	g_string_truncate(log_text, 0);
}

/* ---- async calls ------------------------------------------------------- */

static GAsyncResult *result;

void
cp_test_async_done(GObject *src, GAsyncResult *res, gpointer data)
{
	g_assert_null(result);
	result = g_object_ref(res);
}

GAsyncResult *
cp_test_async_wait(void)
{
	GAsyncResult *r;

	while (!result)
		g_main_context_iteration(NULL, TRUE);
	r = result;
	result = NULL;
	return r;
}
