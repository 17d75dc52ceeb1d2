/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-fault-run: run a program under one of the faults of cp-fault.h, for
 * the durability tests of the programs that write with cp_file_replace.
 *
 *   cp-fault-run [--kill-on-rename] [--file-size-limit N]
 *                [--tmpfs DIR --size N [--seed SRC] [--fill] [--keep OUT]]
 *                -- PROGRAM ARGS...
 *
 * --tmpfs mounts a private tmpfs of --size bytes on DIR, copies the files
 * of SRC into it, fills it up with DIR/.fill, runs the program, and then
 * copies what DIR holds (but .fill) to OUT, since the tmpfs goes when
 * this process does. Exits with the program's status, or 128 + the
 * signal that ended it.
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

/* Every regular file of from into to, with its mode; skip one name. */
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
		if (lstat(src, &st) < 0 || !S_ISREG(st.st_mode))
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
	gint64 fsize = 0, size = 0;
	char *tmpfs = NULL, *seed = NULL, *keep = NULL;
	GOptionEntry entries[] = {
		{ "kill-on-rename", 0, 0, G_OPTION_ARG_NONE, &kill_on_rename, "Kill the program at its first rename", NULL },
		{ "file-size-limit", 0, 0, G_OPTION_ARG_INT64, &fsize, "RLIMIT_FSIZE for the program (SIGXFSZ ignored)", "BYTES" },
		{ "tmpfs", 0, 0, G_OPTION_ARG_FILENAME, &tmpfs, "Mount a private tmpfs here", "DIR" },
		{ "size", 0, 0, G_OPTION_ARG_INT64, &size, "Size of the tmpfs", "BYTES" },
		{ "seed", 0, 0, G_OPTION_ARG_FILENAME, &seed, "Copy the files of this directory into the tmpfs first", "DIR" },
		{ "fill", 0, 0, G_OPTION_ARG_NONE, &fill, "Fill the tmpfs before the program runs", NULL },
		{ "keep", 0, 0, G_OPTION_ARG_FILENAME, &keep, "Copy the tmpfs's files here after the program", "DIR" },
		G_OPTION_ENTRY_NULL
	};
	g_autoptr(GOptionContext) oc = g_option_context_new("-- PROGRAM [ARGS...]");
	g_autoptr(GError) error = NULL;
	pid_t pid;
	int status;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cp-fault-run: %s\n", error->message);
		return 2;
	}
	/* GOption leaves the "--" that ends the options */
	if (argc >= 2 && strcmp(argv[1], "--") == 0) {
		argv++;
		argc--;
	}
	if (argc < 2 || (tmpfs && size <= 0) || ((seed || fill || keep) && !tmpfs)) {
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

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		g_printerr("cp-fault-run: fork: %s\n", g_strerror(errno));
		return 2;
	}
	if (pid == 0) {
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
	status = cp_fault_wait(pid);
	if (keep && !copy_files(tmpfs, keep, ".fill", &error)) {
		g_printerr("cp-fault-run: %s\n", error->message);
		return 2;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
