/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-fault-run: run a program under one of the faults of cp-fault.h, for
 * the durability tests of the programs that write with cp_file_replace.
 *
 *   cp-fault-run [--kill-on-rename | --kill-at-rename N] [--file-size-limit N]
 *                [--tmpfs DIR --size N [--seed SRC] [--fill | --fill-after-rename N]
 *                 [--keep OUT]]
 *                -- PROGRAM ARGS...
 *   cp-fault-run --check seccomp|ptrace|tmpfs
 *
 * --kill-on-rename kills the program (SIGSYS) at its first rename with a
 * seccomp filter; --kill-at-rename N (SIGKILL) at the Nth, counted over
 * all its threads and child processes, with ptrace: both before the
 * kernel runs the call. --tmpfs mounts a private tmpfs of --size bytes on
 * DIR, copies the files of SRC into it (subdirectories too), fills it up
 * with DIR/.fill before the program runs (--fill) or once its Nth rename
 * has returned (--fill-after-rename N), and then copies what DIR holds
 * (but .fill) to OUT, since the tmpfs goes when this process does.
 * SIGTERM and SIGINT are passed on to the program. Exits with the
 * program's status, or 128 + the signal that ended it. --check exits 0
 * when this machine allows that fault, else 1 with the reason.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "cp-fault.h"

static pid_t child;

static void
pass_on(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* Every regular file and directory of from into to, with its mode; skip one name. */
static gboolean
copy_files(const char *from, const char *to, const char *skip, GError **error)
{
	g_autoptr(GDir) d = g_dir_open(from, 0, error);
	const char *name;

	if (!d)
		return FALSE;
	while ((name = g_dir_read_name(d))) {
		g_autofree char *src = g_build_filename(from, name, NULL);
		g_autofree char *dst = g_build_filename(to, name, NULL);
		g_autofree char *data = NULL;
		gsize len = 0;
		struct stat st;

		if (skip && strcmp(name, skip) == 0)
			continue;
		if (lstat(src, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (g_mkdir(dst, (int)(st.st_mode & 07777)) < 0 && errno != EEXIST) {
				g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
					    "cannot make %s: %s", dst, g_strerror(errno));
				return FALSE;
			}
			if (!copy_files(src, dst, NULL, error))
				return FALSE;
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (!g_file_get_contents(src, &data, &len, error) ||
		    !g_file_set_contents_full(dst, data, (gssize)len, G_FILE_SET_CONTENTS_NONE,
					      (int)(st.st_mode & 07777), error))
			return FALSE;
	}
	return TRUE;
}

int
main(int argc, char **argv)
{
	gboolean kill_on_rename = FALSE, fill = FALSE;
	gint64 fsize = 0, size = 0, kill_at = 0, fill_after = 0;
	g_autofree char *tmpfs = NULL, *seed = NULL, *keep = NULL, *check = NULL;
	GOptionEntry entries[] = {
		{ "kill-on-rename", 0, 0, G_OPTION_ARG_NONE, &kill_on_rename, "Kill the program at its first rename (seccomp, SIGSYS)", NULL },
		{ "kill-at-rename", 0, 0, G_OPTION_ARG_INT64, &kill_at, "Kill the program at its Nth rename (ptrace, SIGKILL)", "N" },
		{ "file-size-limit", 0, 0, G_OPTION_ARG_INT64, &fsize, "RLIMIT_FSIZE for the program (SIGXFSZ ignored)", "BYTES" },
		{ "tmpfs", 0, 0, G_OPTION_ARG_FILENAME, &tmpfs, "Mount a private tmpfs here", "DIR" },
		{ "size", 0, 0, G_OPTION_ARG_INT64, &size, "Size of the tmpfs", "BYTES" },
		{ "seed", 0, 0, G_OPTION_ARG_FILENAME, &seed, "Copy the files of this directory into the tmpfs first", "DIR" },
		{ "fill", 0, 0, G_OPTION_ARG_NONE, &fill, "Fill the tmpfs before the program runs", NULL },
		{ "fill-after-rename", 0, 0, G_OPTION_ARG_INT64, &fill_after, "Fill the tmpfs once the program's Nth rename returned", "N" },
		{ "check", 0, 0, G_OPTION_ARG_STRING, &check, "Whether this machine allows a fault: seccomp, ptrace or tmpfs", "WHAT" },
		{ "keep", 0, 0, G_OPTION_ARG_FILENAME, &keep, "Copy the tmpfs's files here after the program", "DIR" },
		G_OPTION_ENTRY_NULL
	};
	g_autoptr(GOptionContext) oc = g_option_context_new("-- PROGRAM [ARGS...]");
	g_autoptr(GError) error = NULL;
	CpFaultRenames renames = { 0 };
	gboolean trace;
	pid_t pid;
	int status;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cp-fault-run: %s\n", error->message);
		return 2;
	}
	if (check) {
		const char *why = strcmp(check, "seccomp") == 0 ? cp_fault_cannot_seccomp() :
				  strcmp(check, "ptrace") == 0 ? cp_fault_cannot_ptrace() :
				  strcmp(check, "tmpfs") == 0 ? cp_fault_cannot_tmpfs() :
				  "--check takes seccomp, ptrace or tmpfs";

		if (why)
			g_print("%s\n", why);
		return why ? 1 : 0;
	}
	/* GOption leaves the "--" that ends the options */
	if (argc >= 2 && strcmp(argv[1], "--") == 0) {
		argv++;
		argc--;
	}
	if (argc < 2 || (tmpfs && size <= 0) || ((seed || fill || keep || fill_after) && !tmpfs) ||
	    kill_at < 0 || fill_after < 0 || kill_at > G_MAXUINT || fill_after > G_MAXUINT ||
	    (kill_on_rename && kill_at) || (fill && fill_after)) {
		g_printerr("cp-fault-run: usage: see --help\n");
		return 2;
	}
	if (tmpfs) {
		if (!cp_fault_private_tmpfs(tmpfs, (gsize)size, &error) ||
		    (seed && !copy_files(seed, tmpfs, NULL, &error)) ||
		    (fill && !cp_fault_fill(tmpfs, ".fill", &error))) {
			g_printerr("cp-fault-run: %s\n", error->message);
			return 2;
		}
	}

	renames.kill_at = (guint)kill_at;
	renames.fill_after = (guint)fill_after;
	renames.fill_dir = tmpfs;
	renames.fill_name = ".fill";
	trace = kill_at > 0 || fill_after > 0;

	fflush(NULL);
	signal(SIGTERM, pass_on);
	signal(SIGINT, pass_on);
	child = pid = fork();
	if (pid < 0) {
		g_printerr("cp-fault-run: fork: %s\n", g_strerror(errno));
		return 2;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		if (trace && !cp_fault_trace_renames_child()) {
			g_printerr("cp-fault-run: ptrace and seccomp: %s\n", g_strerror(errno));
			_exit(2);
		}
		if (trace) {
			/* LeakSanitizer cannot run in a traced process (it fails the
			 * program at exit): a sanitized build checks leaks in its
			 * untraced runs. */
			const char *asan = g_getenv("ASAN_OPTIONS");
			g_autofree char *opts = g_strdup_printf("%s%sdetect_leaks=0", asan ? asan : "",
								asan && *asan ? ":" : "");

			g_setenv("ASAN_OPTIONS", opts, TRUE);
		}
		if (fsize > 0)
			cp_fault_file_size_limit((gsize)fsize);
		if (kill_on_rename && !cp_fault_kill_on_rename()) {
			g_printerr("cp-fault-run: seccomp: %s\n", g_strerror(errno));
			_exit(2);
		}
		execvp(argv[1], argv + 1);
		g_printerr("cp-fault-run: %s: %s\n", argv[1], g_strerror(errno));
		_exit(127);
	}
	status = trace ? cp_fault_trace_renames(pid, &renames, NULL) : cp_fault_wait(pid);
	if (keep && !copy_files(tmpfs, keep, ".fill", &error)) {
		g_printerr("cp-fault-run: %s\n", error->message);
		return 2;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
