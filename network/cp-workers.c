/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-workers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gio.h>

#include "cp-conf.h"
#include "cp-glib.h"
#include "cp-notify.h"

#define WORKERS_MAX 64
/* a worker that ran this long before it exited is started again at once */
#define STABLE_MS 10000
#define BACKOFF_MAX_MS 30000
/* after SIGTERM, the workers still there are killed */
#define STOP_GRACE_MS 30000

/* What a worker sends its supervisor: one byte a datagram. */
#define MSG_READY 'R'
#define MSG_BEAT 'W'

typedef struct _Supervisor Supervisor;

typedef struct {
	Supervisor *sup;
	guint index;
	GPid pid;          /* 0: not running */
	int fd;            /* our end of the worker's socket; -1 */
	guint fd_source, child_source, restart_source;
	gboolean ready;
	gint64 started, last_beat; /* monotonic, us */
	guint backoff_ms;
} Slot;

struct _Supervisor {
	const char *prog;
	const char *port_file;
	char **argv;
	char **envp;
	char *bound;       /* host:port the workers listen on */
	guint16 port;
	guint n;
	Slot *slots;
	gboolean all_ready, stopping;
	int status;
	guint64 watchdog_usec;
	guint beat_ms;
	guint watchdog_source, kill_source;
	GMainLoop *loop;
};

gboolean
cp_worker_parse(const char *value, CpWorker *w, GError **error)
{
	g_auto(GStrv) parts = NULL;
	guint64 fd, index, ms;

	w->fd = -1;
	w->index = 0;
	w->beat_ms = 1000;
	if (!value)
		return TRUE;
	parts = g_strsplit(value, ":", -1);
	if (g_strv_length(parts) != 3 ||
	    !g_ascii_string_to_unsigned(parts[0], 10, 3, 1024, &fd, NULL) ||
	    !g_ascii_string_to_unsigned(parts[1], 10, 0, WORKERS_MAX - 1, &index, NULL) ||
	    !g_ascii_string_to_unsigned(parts[2], 10, 10, 60000, &ms, NULL)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "--worker: '%s' is not FD:INDEX:MS", value);
		return FALSE;
	}
	w->fd = (int)fd;
	w->index = (guint)index;
	w->beat_ms = (guint)ms;
	return TRUE;
}

void
cp_worker_apply(const CpWorker *w, CpHttpConfig *hc)
{
	if (w->fd < 0)
		return;
	hc->reuse_port = TRUE;
	hc->worker = w->index;
}

static void
notify(const char *state)
{
	int r = cp_notify(state);

	if (r < 0)
		g_debug("sd_notify %s: %s", state, g_strerror(-r));
}

static gboolean
watchdog_ping(gpointer data)
{
	/* the main loop turning is what the watchdog checks */
	notify("WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

static gboolean
worker_beat(gpointer data)
{
	const CpWorker *w = data;
	char b = MSG_BEAT;

	if (send(w->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
		/* the supervisor is gone; its death signal stops us */
		g_warning("supervisor: %s", g_strerror(errno));
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

void
cp_worker_ready(const CpWorker *w)
{
	guint64 usec;

	if (w->fd >= 0) {
		char b = MSG_READY;

		if (send(w->fd, &b, 1, MSG_NOSIGNAL) < 0)
			g_warning("supervisor: %s", g_strerror(errno));
		g_timeout_add(w->beat_ms, worker_beat, (gpointer)w);
		return;
	}
	notify("READY=1");
	if (cp_notify_watchdog(&usec) > 0 && usec >= 2000)
		g_timeout_add((guint)MIN(usec / 2000, G_MAXUINT), watchdog_ping, NULL);
}

void
cp_worker_stopping(const CpWorker *w)
{
	if (w->fd < 0)
		notify("STOPPING=1");
}

/* The supervisor. */

static void slot_start(Slot *s);

static char *
describe_status(int status)
{
	if (WIFEXITED(status))
		return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return g_strdup_printf("was killed by signal %d (%s)", WTERMSIG(status), g_strsignal(WTERMSIG(status)));
	return g_strdup_printf("ended (wait status 0x%x)", (unsigned)status);
}

static void
slot_close(Slot *s)
{
	g_clear_handle_id(&s->fd_source, g_source_remove);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static gboolean
any_running(Supervisor *sup)
{
	for (guint i = 0; i < sup->n; i++)
		if (sup->slots[i].pid)
			return TRUE;
	return FALSE;
}

static gboolean
stop_kill(gpointer data)
{
	Supervisor *sup = data;

	sup->kill_source = 0;
	for (guint i = 0; i < sup->n; i++)
		if (sup->slots[i].pid) {
			g_warning("worker %u (pid %d) still there %u s after SIGTERM: killing it",
				  i, sup->slots[i].pid, STOP_GRACE_MS / 1000);
			kill(sup->slots[i].pid, SIGKILL);
		}
	return G_SOURCE_REMOVE;
}

static void
stop_all(Supervisor *sup)
{
	if (!sup->stopping) {
		sup->stopping = TRUE;
		for (guint i = 0; i < sup->n; i++) {
			g_clear_handle_id(&sup->slots[i].restart_source, g_source_remove);
			if (sup->slots[i].pid)
				kill(sup->slots[i].pid, SIGTERM);
		}
		sup->kill_source = g_timeout_add(STOP_GRACE_MS, stop_kill, sup);
	}
	if (!any_running(sup))
		g_main_loop_quit(sup->loop);
}

static gboolean
on_signal(gpointer data)
{
	Supervisor *sup = data;

	if (!sup->stopping) {
		g_message("stopping %u workers", sup->n);
		notify("STOPPING=1");
	}
	stop_all(sup);
	return G_SOURCE_CONTINUE;
}

static void
all_ready(Supervisor *sup)
{
	g_autofree char *status = NULL;
	g_autoptr(GError) error = NULL;

	sup->all_ready = TRUE;
	if (sup->port_file) {
		g_autofree char *text = g_strdup_printf("%u\n", sup->port);

		if (!cp_file_replace(sup->port_file, text, strlen(text), 0644, &error)) {
			g_printerr("%s: %s\n", sup->prog, error->message);
			sup->status = 1;
			stop_all(sup);
			return;
		}
	}
	g_message("%u workers listening on port %u", sup->n, sup->port);
	status = g_strdup_printf("READY=1\nSTATUS=%u workers on port %u", sup->n, sup->port);
	notify(status);
}

static gboolean
on_worker_message(int fd, GIOCondition cond, gpointer data)
{
	Slot *s = data;
	Supervisor *sup = s->sup;
	char buf[64];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		/* the worker is going: its exit is the child watch's */
		s->fd_source = 0;
		slot_close(s);
		return G_SOURCE_REMOVE;
	}
	s->last_beat = g_get_monotonic_time();
	if (memchr(buf, MSG_READY, (size_t)n) && !s->ready) {
		s->ready = TRUE;
		if (sup->all_ready) {
			g_message("worker %u (pid %d) listening again", s->index, s->pid);
		} else {
			guint i;

			for (i = 0; i < sup->n && sup->slots[i].ready; i++)
				;
			if (i == sup->n && !sup->stopping)
				all_ready(sup);
		}
	}
	return G_SOURCE_CONTINUE;
}

static gboolean
slot_restart(gpointer data)
{
	Slot *s = data;

	s->restart_source = 0;
	slot_start(s);
	return G_SOURCE_REMOVE;
}

static void
on_worker_exit(GPid pid, int status, gpointer data)
{
	Slot *s = data;
	Supervisor *sup = s->sup;
	g_autofree char *how = describe_status(status);
	gint64 ran_ms = (g_get_monotonic_time() - s->started) / 1000;

	g_spawn_close_pid(pid);
	s->child_source = 0;
	s->pid = 0;
	s->ready = FALSE;
	slot_close(s);
	if (sup->stopping) {
		if (!any_running(sup))
			g_main_loop_quit(sup->loop);
		return;
	}
	if (!sup->all_ready) {
		/* at start: the configuration or the store; the worker said why */
		g_printerr("%s: worker %u %s before it listened; stopping\n", sup->prog, s->index, how);
		sup->status = 1;
		stop_all(sup);
		return;
	}
	if (ran_ms >= STABLE_MS)
		s->backoff_ms = 0;
	else
		s->backoff_ms = s->backoff_ms ? MIN(s->backoff_ms * 2, BACKOFF_MAX_MS) : 1000;
	g_warning("worker %u (pid %d) %s; starting it again%s", s->index, pid, how,
		  s->backoff_ms ? " after a pause" : "");
	if (s->backoff_ms)
		s->restart_source = g_timeout_add(s->backoff_ms, slot_restart, s);
	else
		slot_start(s);
}

static void
child_setup(gpointer data)
{
	pid_t parent = (pid_t)GPOINTER_TO_INT(data);

	/* the supervisor killed (SIGKILL included): its workers stop too */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
}

static void
slot_start(Slot *s)
{
	Supervisor *sup = s->sup;
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	int sv[2], target = 3;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		g_warning("worker %u: socketpair: %s", s->index, g_strerror(errno));
		s->restart_source = g_timeout_add(1000, slot_restart, s);
		return;
	}
	/* the program itself, whatever became of its file since */
	g_ptr_array_add(args, g_strdup("/proc/self/exe"));
	for (char **a = sup->argv; *a; a++)
		g_ptr_array_add(args, g_strdup(*a));
	g_ptr_array_add(args, g_strdup("--listen"));
	g_ptr_array_add(args, g_strdup(sup->bound));
	g_ptr_array_add(args, g_strdup_printf("--worker=%d:%u:%u", target, s->index, sup->beat_ms));
	g_ptr_array_add(args, NULL);
	s->started = g_get_monotonic_time();
	if (!g_spawn_async_with_pipes_and_fds(NULL, (const char * const *)args->pdata,
					      (const char * const *)sup->envp,
					      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_FILE_AND_ARGV_ZERO,
					      child_setup, GINT_TO_POINTER(getpid()),
					      -1, -1, -1, &sv[1], &target, 1,
					      &s->pid, NULL, NULL, NULL, &error)) {
		g_warning("worker %u: %s", s->index, error->message);
		close(sv[0]);
		close(sv[1]);
		s->pid = 0;
		s->backoff_ms = s->backoff_ms ? MIN(s->backoff_ms * 2, BACKOFF_MAX_MS) : 1000;
		s->restart_source = g_timeout_add(s->backoff_ms, slot_restart, s);
		return;
	}
	close(sv[1]);
	s->fd = sv[0];
	s->last_beat = s->started;
	s->fd_source = g_unix_fd_add(s->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_worker_message, s);
	s->child_source = g_child_watch_add(s->pid, on_worker_exit, s);
}

static gboolean
supervise_watchdog(gpointer data)
{
	Supervisor *sup = data;
	gint64 now = g_get_monotonic_time();

	/* a worker whose main loop stopped turning is replaced, not waited
	 * for: the others serve on */
	for (guint i = 0; i < sup->n; i++) {
		Slot *s = &sup->slots[i];

		if (s->pid && s->ready && (guint64)(now - s->last_beat) > sup->watchdog_usec) {
			g_warning("worker %u (pid %d) sent no heartbeat for %" G_GINT64_FORMAT " ms: killing it",
				  i, s->pid, (now - s->last_beat) / 1000);
			kill(s->pid, SIGKILL);
			s->ready = FALSE;
		}
	}
	notify("WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

int
cp_workers_main(const char *prog, const char *group, const char *path, char **argv,
		const char *listen, const char *def_listen, const char *port_file)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) reserve = NULL;
	g_autofree char *cfg_listen = NULL;
	Supervisor sup = { .prog = prog, .port_file = port_file, .argv = argv, .status = 0, .beat_ms = 1000 };
	guint64 workers;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL))
		return -1;
	if (!cp_conf_uint(kf, group, "workers", 1, 1, WORKERS_MAX, &workers, &error)) {
		g_printerr("%s: %s: %s\n", prog, path, error->message);
		return 1;
	}
	if (workers == 1)
		return -1;
	cfg_listen = cp_conf_string(kf, group, "listen", def_listen);
	reserve = cp_http_reserve_port(listen ? listen : cfg_listen, &sup.bound, &sup.port, &error);
	if (!reserve) {
		g_printerr("%s: %s\n", prog, error->message);
		return 1;
	}
	sup.n = (guint)workers;
	sup.slots = g_new0(Slot, sup.n);
	sup.envp = g_get_environ();
	/* systemd hears from the supervisor only */
	sup.envp = g_environ_unsetenv(sup.envp, "NOTIFY_SOCKET");
	sup.envp = g_environ_unsetenv(sup.envp, "WATCHDOG_USEC");
	sup.envp = g_environ_unsetenv(sup.envp, "WATCHDOG_PID");
	if (cp_notify_watchdog(&sup.watchdog_usec) > 0 && sup.watchdog_usec >= 2000) {
		sup.beat_ms = (guint)CLAMP(sup.watchdog_usec / 4000, 10, 1000);
		sup.watchdog_source = g_timeout_add((guint)MIN(sup.watchdog_usec / 2000, G_MAXUINT),
						    supervise_watchdog, &sup);
	} else {
		sup.watchdog_usec = 0;
	}
	sup.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_signal, &sup);
	g_unix_signal_add(SIGINT, on_signal, &sup);
	g_message("starting %u workers on %s", sup.n, sup.bound);
	for (guint i = 0; i < sup.n; i++) {
		sup.slots[i].sup = &sup;
		sup.slots[i].index = i;
		sup.slots[i].fd = -1;
		slot_start(&sup.slots[i]);
	}
	g_main_loop_run(sup.loop);

	for (guint i = 0; i < sup.n; i++) {
		g_clear_handle_id(&sup.slots[i].restart_source, g_source_remove);
		g_clear_handle_id(&sup.slots[i].child_source, g_source_remove);
		slot_close(&sup.slots[i]);
	}
	g_clear_handle_id(&sup.watchdog_source, g_source_remove);
	g_clear_handle_id(&sup.kill_source, g_source_remove);
	g_main_loop_unref(sup.loop);
	g_strfreev(sup.envp);
	g_free(sup.slots);
	g_free(sup.bound);
	return sup.status;
}
