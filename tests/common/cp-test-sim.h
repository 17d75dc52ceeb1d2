/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The modem tests' fixtures (QMI, MBIM, AT, the daemon's flow over QMI):
 * a modem simulator started in a directory of its own, its dump read back,
 * the test's log captured, an async call waited for.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

typedef struct {
	char *dir;      /* everything below is in here */
	char *pty;      /* --pty, NULL if none */
	char *dump;     /* --dump */
	GPid pid;       /* 0 once reaped */
} CpTestSim;

/* Spawns argv, which dies with the test, and returns once it printed its
 * "ready" line on stdout. */
GPid cp_test_spawn_ready(const char *const *argv);
/* Starts prog in a new directory: --pty DIR/node (node NULL: no --pty),
 * --dump, --subscribers DIR/subscribers holding subscribers (mode 0600),
 * then args, in which "@NAME" stands for DIR/NAME. Returns once the
 * simulator said "ready"; it dies with the test. */
void cp_test_sim_start(CpTestSim *s, const char *prog, const char *node, const char *subscribers,
		       const char *const *args);
/* As cp_test_sim_start, the args one string split at spaces. */
void cp_test_sim_startv(CpTestSim *s, const char *prog, const char *node, const char *subscribers,
			const char *args);
/* SIGTERM, reaped; the directory removed with all in it. */
void cp_test_sim_stop(CpTestSim *s);
/* DIR/name. */
char *cp_test_sim_file(CpTestSim *s, const char *name);
/* One key of the dump; NULL if the dump or the key is not there. */
char *cp_test_sim_dump_get(CpTestSim *s, const char *key);
/* The whole dump, key to value. */
GHashTable *cp_test_sim_dump_read(CpTestSim *s);

/* Children die with the test (PR_SET_PDEATHSIG), even when it aborts. */
void cp_test_child_setup(gpointer data);
/* Until path exists (present) or is gone, at most ms; whether it came. */
gboolean cp_test_wait_path(const char *path, gboolean present, guint ms);

/* Everything logged, at every level, whatever G_MESSAGES_DEBUG says; the
 * default writer still prints it. */
void cp_test_log_capture(void);
const char *cp_test_log_text(void);
void cp_test_log_clear(void);

/* An async call made synchronous: pass cp_test_async_done as its
 * callback, then cp_test_async_wait() iterates the default context until
 * it ran and hands over the result. */
void cp_test_async_done(GObject *src, GAsyncResult *res, gpointer data);
GAsyncResult *cp_test_async_wait(void);
