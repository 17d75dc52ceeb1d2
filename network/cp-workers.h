/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Several worker processes of the SM or the AUSF on one port (the key
 * `workers`). With workers = N > 1 the process started is a small
 * supervisor: it holds the port (a socket bound with SO_REUSEPORT and not
 * listening), starts N workers, each the same program run again with the
 * same arguments plus the hidden --worker, listening on that port with
 * SO_REUSEPORT, writes the port file and tells systemd READY=1 once all
 * of them listen, restarts a worker that exits unexpectedly, kills and
 * replaces one that stops sending its heartbeats while systemd's watchdog
 * is on (and pings the watchdog itself), and on SIGTERM or SIGINT stops
 * them all and waits for them. The supervisor opens no store, loads no
 * key and serves nothing: everything a request needs is a worker's.
 */
#pragma once

#include <glib.h>

#include "cp-http.h"

/* A worker: the --worker value its supervisor gave it. */
typedef struct {
	int fd;        /* to the supervisor; -1: not a worker (the only process) */
	guint index;   /* 0 .. workers - 1 */
	guint beat_ms; /* heartbeat interval */
} CpWorker;

#define CP_OPTION_WORKER(var) \
	{ "worker", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, (var), "Run as a worker of a supervisor (internal)", "FD:INDEX:MS" }

/* Parse --worker's value into w (w->fd -1 for NULL). */
gboolean cp_worker_parse(const char *value, CpWorker *w, GError **error);

/*
 * Before the program loads anything else, when it is not a worker: reads
 * `workers` from group of the configuration file at path (1-64, default 1).
 * Returns -1 when this process is to serve alone (workers = 1, or a file
 * that does not load: the program's own loading reports that), else the
 * exit status of the supervisor, which ran until stopped: 0 after SIGTERM
 * or SIGINT, 1 when it could not start or a worker failed at start (its
 * error on stderr). argv is the program's arguments as given (before
 * option parsing); listen its --listen, NULL for the file's or def_listen.
 */
int cp_workers_main(const char *prog, const char *group, const char *path, char **argv,
		    const char *listen, const char *def_listen, const char *port_file);

/* The HTTP configuration of a worker: SO_REUSEPORT, its metrics port. */
void cp_worker_apply(const CpWorker *w, CpHttpConfig *hc);

/*
 * The process listens and serves from now on: a worker tells its
 * supervisor and sends it heartbeats from the main loop; the only process
 * tells systemd READY=1 and pings systemd's watchdog when asked to.
 */
void cp_worker_ready(const CpWorker *w);

/* The process stops (SIGTERM): STOPPING=1 to systemd when alone. */
void cp_worker_stopping(const CpWorker *w);
