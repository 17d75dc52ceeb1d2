/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cp-test-https.h"

static void
openssl(const char *dir, const char *cmdline)
{
	g_autofree char *full = g_strdup_printf("openssl %s", cmdline);
	g_auto(GStrv) argv = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status;

	g_assert_true(g_shell_parse_argv(full, NULL, &argv, NULL));
	if (!g_spawn_sync(dir, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
			  NULL, NULL, &err, &status, &error) ||
	    !g_spawn_check_wait_status(status, NULL))
		g_error("%s: %s", full, error ? error->message : err);
}

static void
make_ca(const char *dir, const char *name)
{
	g_autofree char *cmd = g_strdup_printf(
		"req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		"-subj /CN=%s -keyout %s.key -out %s.pem "
		"-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign",
		name, name, name);

	openssl(dir, cmd);
}

static void
child_setup(gpointer data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

void
cp_test_https_start(CpTestHttps *s, const char *dir)
{
	const char *script = g_getenv("CP_SM_HTTPS");
	g_autofree char *ext = g_build_filename(dir, "server.ext", NULL);
	g_autofree char *cert = g_build_filename(dir, "server.pem", NULL);
	g_autofree char *key = g_build_filename(dir, "server.key", NULL);
	const char *argv[] = { "python3", script, cert, key, dir, NULL };
	g_autoptr(GError) error = NULL;
	char line[32] = "";
	FILE *out;
	int fd;

	g_assert_nonnull(script);
	s->dir = g_strdup(dir);
	make_ca(dir, "ca");
	make_ca(dir, "other-ca");
	g_assert_true(g_file_set_contents(ext,
		"subjectAltName=DNS:localhost,IP:127.0.0.1\n"
		"basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n", -1, NULL));
	openssl(dir, "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		     "-subj /CN=localhost -keyout server.key -out server.csr");
	openssl(dir, "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		     "-days 2 -extfile server.ext -out server.pem");
	s->ca = g_build_filename(dir, "ca.pem", NULL);
	s->other_ca = g_build_filename(dir, "other-ca.pem", NULL);

	if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
				      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
				      NULL, &s->pid, NULL, &fd, NULL, &error))
		g_error("sm-https.py: %s", error->message);
	out = fdopen(fd, "r");
	g_assert_nonnull(fgets(line, sizeof(line), out));
	fclose(out);
	g_strchomp(line);
	s->url = g_strdup_printf("https://localhost:%s", line);
}

void
cp_test_https_stop(CpTestHttps *s)
{
	if (s->pid) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		g_spawn_close_pid(s->pid);
		s->pid = 0;
	}
	g_clear_pointer(&s->dir, g_free);
	g_clear_pointer(&s->ca, g_free);
	g_clear_pointer(&s->other_ca, g_free);
	g_clear_pointer(&s->url, g_free);
}

void
cp_test_https_answer(CpTestHttps *s, const char *name, const char *json)
{
	g_autofree char *file = g_strdup_printf("%s.json", name);
	g_autofree char *path = g_build_filename(s->dir, file, NULL);
	g_autofree char *tmp = g_strdup_printf("%s.tmp", path);

	if (!json) {
		g_unlink(path);
		return;
	}
	g_assert_true(g_file_set_contents(tmp, json, -1, NULL));
	g_assert_cmpint(g_rename(tmp, path), ==, 0);
}

char **
cp_test_https_requests(CpTestHttps *s)
{
	g_autofree char *path = g_build_filename(s->dir, "requests.log", NULL);
	g_autofree char *text = NULL;

	char *end;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_new0(char *, 1);
	/* only whole lines: the server may be appending one as we read */
	end = strrchr(text, '\n');
	if (!end)
		return g_new0(char *, 1);
	*end = '\0';
	if (!*text)
		return g_new0(char *, 1);
	return g_strsplit(text, "\n", -1);
}
