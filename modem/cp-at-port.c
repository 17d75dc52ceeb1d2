/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT port: see cp-at-port.h.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cp-at-port.h"
#include "cp-glib.h"

typedef struct {
	CpAtPort *port;
	GTask *task;          /* NULL once cancelled: the answer is then dropped */
	char *command;
	char *prefix;
	CpAtBare bare;
	guint timeout_ms;
	gulong cancel_id;
	CpAtResponse *resp;
} Request;

struct _CpAtPort {
	GObject parent;
	char *path;
	int fd;
	guint watch;
	guint timer;
	gboolean gone;
	CpAtParser *parser;
	GQueue queue;         /* Request: waiting to be sent */
	Request *current;     /* sent, not finished */
	CpAtUrcFunc urc_func;
	gpointer urc_data;
	GDestroyNotify urc_destroy;
	guint timeout_ms;
	guint n_commands;
	guint n_urcs;
};

G_DEFINE_TYPE(CpAtPort, cp_at_port, G_TYPE_OBJECT)

static void send_next(CpAtPort *p);

void
cp_at_response_free(CpAtResponse *r)
{
	if (!r)
		return;
	/* +CSIM/+CGLA answers may hold key material */
	for (guint i = 0; i < r->lines->len; i++) {
		char *l = g_ptr_array_index(r->lines, i);

		cp_cleanse(l, strlen(l));
	}
	g_ptr_array_unref(r->lines);
	g_free(r->error_text);
	g_free(r);
}

gboolean
cp_at_response_check(const CpAtResponse *r, const char *command, GError **error)
{
	if (r->final == CP_AT_FINAL_OK)
		return TRUE;
	if (r->error_text)
		cp_set_error(error, CP_ERR_MODEM, "AT%s: %s: %s", command,
			     cp_at_final_name(r->final), r->error_text);
	else
		cp_set_error(error, CP_ERR_MODEM, "AT%s: %s", command, cp_at_final_name(r->final));
	return FALSE;
}

const char *
cp_at_response_line(const CpAtResponse *r, const char *command, GError **error)
{
	if (r->lines->len != 1) {
		cp_set_error(error, CP_ERR_MODEM, "AT%s: %u answer lines, want one", command, r->lines->len);
		return NULL;
	}
	return g_ptr_array_index(r->lines, 0);
}

static void
request_free(Request *r)
{
	cp_cleanse(r->command, strlen(r->command));
	g_free(r->command);
	g_free(r->prefix);
	cp_at_response_free(r->resp);
	g_free(r);
}

/* The command's name for logs: "+CSIM" of "+CSIM=10,\"...\"". */
static char *
command_name(const char *command)
{
	return g_strndup(command, strcspn(command, "=?"));
}

/* Completes r's task (if still wanted) and frees r. */
static void
request_finish(Request *r, GError *error)
{
	GTask *task = r->task;

	r->task = NULL;
	if (r->cancel_id) {
		g_cancellable_disconnect(g_task_get_cancellable(task), r->cancel_id);
		r->cancel_id = 0;
	}
	if (task) {
		if (error)
			g_task_return_error(task, error);
		else
			g_task_return_pointer(task, g_steal_pointer(&r->resp), (GDestroyNotify)cp_at_response_free);
		g_object_unref(task);
	} else if (error) {
		g_error_free(error);
	}
	request_free(r);
}

/* The current command is over (answered, timed out, failed): the next goes. */
static void
current_done(CpAtPort *p, GError *error)
{
	Request *r = p->current;

	p->current = NULL;
	if (p->timer) {
		g_source_remove(p->timer);
		p->timer = 0;
	}
	cp_at_parser_set_command(p->parser, NULL, NULL, CP_AT_BARE_NONE);
	if (r)
		request_finish(r, error);
	else if (error)
		g_error_free(error);
	if (!p->gone)
		send_next(p);
}

static void
mark_gone(CpAtPort *p, const char *why)
{
	if (p->gone)
		return;
	g_debug("AT port %s gone: %s", p->path, why);
	p->gone = TRUE;
	if (p->watch) {
		g_source_remove(p->watch);
		p->watch = 0;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	if (p->current) {
		GError *e = g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "AT port %s vanished (%s)", p->path, why);

		current_done(p, e);
	}
	while (!g_queue_is_empty(&p->queue))
		request_finish(g_queue_pop_head(&p->queue),
			       g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "AT port %s vanished (%s)", p->path, why));
}

static void
on_line(const CpAtLine *l, void *user_data)
{
	CpAtPort *p = user_data;
	Request *r = p->current;

	switch (l->kind) {
	case CP_AT_LINE_ECHO:
		break;
	case CP_AT_LINE_RESPONSE:
		if (r)
			g_ptr_array_add(r->resp->lines, g_strndup(l->text, l->len));
		break;
	case CP_AT_LINE_FINAL:
		if (!r)
			break;
		r->resp->final = l->final;
		r->resp->error_code = l->error_code;
		r->resp->error_text = g_strdup(l->error_text);
		{
			g_autofree char *name = command_name(r->command);

			g_debug("AT%s: %u line(s), %s", name, r->resp->lines->len, cp_at_final_name(l->final));
		}
		current_done(p, NULL);
		break;
	case CP_AT_LINE_URC:
		p->n_urcs++;
		if (p->urc_func)
			p->urc_func(p, l->text, p->urc_data);
		break;
	case CP_AT_LINE_OVERLONG:
		/* the answer is lost: the command fails, whatever its end says */
		if (r) {
			g_autofree char *name = command_name(r->command);

			current_done(p, g_error_new(CP_ERROR, CP_ERR_MODEM,
						    "AT%s: answer line longer than %d bytes",
						    name, CP_AT_LINE_MAX_DEFAULT));
		}
		break;
	}
}

static gboolean
readable_cb(int fd, GIOCondition cond, gpointer data)
{
	CpAtPort *p = data;
	guint8 buf[1024];
	ssize_t n;

	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		/* EOF, EIO on a tty whose other side went (USB unplugged,
		 * the module reset), ENODEV/ENXIO */
		p->watch = 0;
		g_object_ref(p);
		mark_gone(p, n == 0 ? "end of file" : g_strerror(errno));
		g_object_unref(p);
		return G_SOURCE_REMOVE;
	}
	g_object_ref(p);
	cp_at_parser_feed(p->parser, buf, (size_t)n, on_line, p);
	g_object_unref(p);
	return G_SOURCE_CONTINUE;
}

static gboolean
timeout_cb(gpointer data)
{
	CpAtPort *p = data;
	g_autofree char *name = command_name(p->current->command);
	guint ms = p->current->timeout_ms;

	p->timer = 0;
	g_debug("AT%s: no answer in %u ms", name, ms);
	current_done(p, g_error_new(CP_ERROR, CP_ERR_MODEM_TIMEOUT,
				    "AT%s: no answer from the module in %u ms", name, ms));
	return G_SOURCE_REMOVE;
}

static gboolean
write_all(int fd, const char *s, gsize len)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = write(fd, s + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* a full tty buffer: wait for it to drain */
			if (tcdrain(fd) < 0 && errno != EINTR)
				return FALSE;
			continue;
		}
		if (n < 0)
			return FALSE;
		done += (gsize)n;
	}
	return TRUE;
}

static void
send_next(CpAtPort *p)
{
	g_autofree char *line = NULL, *name = NULL;
	gboolean ok;
	Request *r;

	while (!p->current && !g_queue_is_empty(&p->queue)) {
		r = g_queue_pop_head(&p->queue);
		if (!r->task) {   /* cancelled while waiting */
			request_free(r);
			continue;
		}
		line = g_strconcat("AT", r->command, NULL);
		name = command_name(r->command);
		if (!cp_at_parser_set_command(p->parser, line, r->prefix, r->bare)) {
			request_finish(r, g_error_new(CP_ERROR, CP_ERR_MODEM, "AT%s: command too long", name));
			g_clear_pointer(&line, g_free);
			g_clear_pointer(&name, g_free);
			continue;
		}
		p->current = r;
		p->n_commands++;
		g_debug("AT%s: sent (%zu bytes)", name, strlen(line));
		p->timer = g_timeout_add(r->timeout_ms, timeout_cb, p);
		line = g_realloc(line, strlen(line) + 2);
		strcat(line, "\r");
		ok = write_all(p->fd, line, strlen(line));
		cp_cleanse(line, strlen(line));
		if (!ok) {
			int e = errno;

			if (e == EIO || e == ENXIO || e == ENODEV || e == EPIPE)
				mark_gone(p, g_strerror(e));
			else
				current_done(p, g_error_new(CP_ERROR, CP_ERR_MODEM, "AT%s: write: %s",
							    name, g_strerror(e)));
		}
		return;
	}
}

static Request *
request_of_task(CpAtPort *p, GTask *task)
{
	if (p->current && p->current->task == task)
		return p->current;
	for (GList *l = p->queue.head; l; l = l->next) {
		Request *r = l->data;

		if (r->task == task)
			return r;
	}
	return NULL;
}

/* In the task's context: the call fails now; the request, if already
 * sent, stays until its answer or its timeout, then goes unheard. */
static gboolean
cancel_idle_cb(gpointer data)
{
	GTask *task = data;
	CpAtPort *p = g_task_get_source_object(task);
	Request *r = request_of_task(p, task);

	if (r) {
		r->task = NULL;
		g_cancellable_disconnect(g_task_get_cancellable(task), r->cancel_id);
		r->cancel_id = 0;
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "AT command cancelled");
		g_object_unref(task);   /* the request's reference */
	}
	return G_SOURCE_REMOVE;
}

static void
cancelled_cb(GCancellable *cancellable, gpointer data)
{
	GTask *task = data;
	GSource *idle = g_idle_source_new();

	/* may run in another thread, and must not disconnect itself: later,
	 * in the task's own context */
	g_source_set_callback(idle, cancel_idle_cb, g_object_ref(task), g_object_unref);
	g_source_attach(idle, g_task_get_context(task));
	g_source_unref(idle);
}

void
cp_at_port_command(CpAtPort *port, const char *command, const char *prefix, CpAtBare bare,
		   guint timeout_ms, GCancellable *cancellable, GAsyncReadyCallback callback,
		   gpointer user_data)
{
	GTask *task = g_task_new(port, cancellable, callback, user_data);
	Request *r;

	g_task_set_source_tag(task, cp_at_port_command);
	if (port->gone) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM_GONE, "AT port %s vanished", port->path);
		g_object_unref(task);
		return;
	}
	if (g_task_return_error_if_cancelled(task)) {
		g_object_unref(task);
		return;
	}
	r = g_new0(Request, 1);
	r->port = port;
	r->task = task;
	r->command = g_strdup(command);
	r->prefix = g_strdup(prefix);
	r->bare = bare;
	r->timeout_ms = timeout_ms ? timeout_ms : port->timeout_ms;
	r->resp = g_new0(CpAtResponse, 1);
	r->resp->lines = g_ptr_array_new_with_free_func(g_free);
	r->resp->error_code = -1;
	if (cancellable)
		r->cancel_id = g_cancellable_connect(cancellable, G_CALLBACK(cancelled_cb), task, NULL);
	g_queue_push_tail(&port->queue, r);
	send_next(port);
}

CpAtResponse *
cp_at_port_command_finish(CpAtPort *port, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, port), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

void
cp_at_port_set_urc_func(CpAtPort *port, CpAtUrcFunc func, gpointer user_data, GDestroyNotify destroy)
{
	if (port->urc_destroy)
		port->urc_destroy(port->urc_data);
	port->urc_func = func;
	port->urc_data = user_data;
	port->urc_destroy = destroy;
}

void
cp_at_port_set_timeout(CpAtPort *port, guint timeout_ms)
{
	port->timeout_ms = timeout_ms ? timeout_ms : CP_AT_TIMEOUT_DEFAULT_MS;
}

gboolean
cp_at_port_is_gone(CpAtPort *port)
{
	return port->gone;
}

const char *
cp_at_port_get_path(CpAtPort *port)
{
	return port->path;
}

guint
cp_at_port_get_n_commands(CpAtPort *port)
{
	return port->n_commands;
}

guint
cp_at_port_get_n_urcs(CpAtPort *port)
{
	return port->n_urcs;
}

CpAtPort *
cp_at_port_open(const char *path, GError **error)
{
	CpAtPort *p;
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		cp_set_error(error, e == ENOENT || e == ENODEV || e == ENXIO ? CP_ERR_MODEM_GONE : CP_ERR_MODEM,
			     "AT port %s: %s", path, g_strerror(e));
		return NULL;
	}
	if (!isatty(fd) || tcgetattr(fd, &t) < 0) {
		cp_set_error(error, CP_ERR_MODEM, "AT port %s: not a tty", path);
		close(fd);
		return NULL;
	}
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cflag &= ~(tcflag_t)CRTSCTS;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	if (tcsetattr(fd, TCSANOW, &t) < 0) {
		cp_set_error(error, CP_ERR_MODEM, "AT port %s: %s", path, g_strerror(errno));
		close(fd);
		return NULL;
	}
	/* what the module said before we came is no answer of ours */
	tcflush(fd, TCIOFLUSH);
	p = g_object_new(CP_TYPE_AT_PORT, NULL);
	p->path = g_strdup(path);
	p->fd = fd;
	p->watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, readable_cb, p);
	return p;
}

static void
cp_at_port_init(CpAtPort *p)
{
	p->fd = -1;
	p->timeout_ms = CP_AT_TIMEOUT_DEFAULT_MS;
	p->parser = cp_at_parser_new(CP_AT_LINE_MAX_DEFAULT);
	g_queue_init(&p->queue);
}

static void
cp_at_port_dispose(GObject *obj)
{
	CpAtPort *p = CP_AT_PORT(obj);

	/* Tasks hold a reference on the port: none is left by now. */
	if (p->timer) {
		g_source_remove(p->timer);
		p->timer = 0;
	}
	if (p->watch) {
		g_source_remove(p->watch);
		p->watch = 0;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	cp_at_port_set_urc_func(p, NULL, NULL, NULL);
	G_OBJECT_CLASS(cp_at_port_parent_class)->dispose(obj);
}

static void
cp_at_port_finalize(GObject *obj)
{
	CpAtPort *p = CP_AT_PORT(obj);

	cp_at_parser_free(p->parser);
	g_free(p->path);
	G_OBJECT_CLASS(cp_at_port_parent_class)->finalize(obj);
}

static void
cp_at_port_class_init(CpAtPortClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);

	oc->dispose = cp_at_port_dispose;
	oc->finalize = cp_at_port_finalize;
}
