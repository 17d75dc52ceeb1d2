/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cp-https.h"

typedef struct {
	char *host;
	char *request_head;
	GBytes *body;
	GTlsDatabase *database;
	GIOStream *conn;
	GCancellable *cancel;           /* ours: the caller's or the timeout cancel it */
	gulong caller_cancel_id;
	GCancellable *caller_cancel;
	guint timeout_source;
	gboolean timed_out;
	GByteArray *in;
	gsize head_len;                 /* 0 until the blank line was read */
	guint status;
	gsize content_length;
	guint8 buf[4096];
} Post;

static void
post_free(Post *p)
{
	if (p->timeout_source)
		g_source_remove(p->timeout_source);
	if (p->caller_cancel_id)
		g_cancellable_disconnect(p->caller_cancel, p->caller_cancel_id);
	g_clear_object(&p->caller_cancel);
	g_free(p->host);
	g_free(p->request_head);
	g_clear_pointer(&p->body, g_bytes_unref);
	g_clear_object(&p->database);
	g_clear_object(&p->conn);
	g_clear_object(&p->cancel);
	if (p->in)
		g_byte_array_unref(p->in);
	g_free(p);
}

GTlsDatabase *
cp_https_database_new(const char *ca_file, GError **error)
{
	GTlsBackend *backend = g_tls_backend_get_default();

	if (!ca_file) {
		GTlsDatabase *db = g_tls_backend_get_default_database(backend);

		if (!db)
			g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_UNAVAILABLE,
				    "no system TLS database");
		return db;
	}
	return g_tls_file_database_new(ca_file, error);
}

/* Fail the task; a cancellation that the timeout caused says so. */
static void
post_fail(GTask *task, GError *error)
{
	Post *p = g_task_get_task_data(task);

	if (p->timed_out && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_error_free(error);
		error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
					    "no complete answer in time");
	}
	g_task_return_error(task, error);
	g_object_unref(task);
}

static gboolean
on_timeout(gpointer data)
{
	Post *p = data;

	p->timeout_source = 0;
	p->timed_out = TRUE;
	g_cancellable_cancel(p->cancel);
	return G_SOURCE_REMOVE;
}

static void
on_caller_cancelled(GCancellable *c, gpointer data)
{
	g_cancellable_cancel(G_CANCELLABLE(data));
}

/* Parse the status line and headers of in[0..head_len). */
static gboolean
parse_head(Post *p, GError **error)
{
	g_autofree char *head = g_strndup((const char *)p->in->data, p->head_len);
	g_auto(GStrv) lines = g_strsplit(head, "\r\n", -1);
	gboolean have_length = FALSE;
	guint64 n;

	if (!lines[0] || (!g_str_has_prefix(lines[0], "HTTP/1.1 ") &&
			  !g_str_has_prefix(lines[0], "HTTP/1.0 ")) ||
	    !g_ascii_isdigit(lines[0][9]) || !g_ascii_isdigit(lines[0][10]) ||
	    !g_ascii_isdigit(lines[0][11]) || (lines[0][12] != ' ' && lines[0][12] != '\0')) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "the answer is not HTTP/1.1");
		return FALSE;
	}
	p->status = (guint)((lines[0][9] - '0') * 100 + (lines[0][10] - '0') * 10 +
			    (lines[0][11] - '0'));
	if (p->status < 100 || p->status > 599) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "HTTP status %u is out of range", p->status);
		return FALSE;
	}
	for (size_t i = 1; lines[i] && lines[i][0]; i++) {
		char *colon = strchr(lines[i], ':');

		if (!colon || colon == lines[i]) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "malformed header line in the answer");
			return FALSE;
		}
		*colon = '\0';
		if (g_ascii_strcasecmp(lines[i], "Transfer-Encoding") == 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
				    "the answer uses a transfer encoding (Content-Length required)");
			return FALSE;
		}
		if (g_ascii_strcasecmp(lines[i], "Content-Length") == 0) {
			const char *v = g_strstrip(colon + 1);

			if (have_length ||
			    !g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT32, &n, NULL)) {
				g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
					    "bad Content-Length in the answer");
				return FALSE;
			}
			if (n > CP_HTTPS_MAX_BODY) {
				g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
					    "the answer's body (%" G_GUINT64_FORMAT
					    " bytes) exceeds %d bytes", n, CP_HTTPS_MAX_BODY);
				return FALSE;
			}
			have_length = TRUE;
			p->content_length = (gsize)n;
		}
	}
	if (p->status == 204 || p->status == 304 || p->status < 200) {
		p->content_length = 0;
	} else if (!have_length) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "the answer has no Content-Length");
		return FALSE;
	}
	return TRUE;
}

static void read_more(GTask *task);

static void
on_read(GObject *source, GAsyncResult *res, gpointer data)
{
	GTask *task = data;
	Post *p = g_task_get_task_data(task);
	GError *error = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);

	if (n < 0) {
		post_fail(task, error);
		return;
	}
	if (n == 0) {
		post_fail(task, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
						    "the server closed before a complete answer"));
		return;
	}
	g_byte_array_append(p->in, p->buf, (guint)n);
	if (!p->head_len) {
		const guint8 *end = memmem(p->in->data, p->in->len, "\r\n\r\n", 4);

		if (!end) {
			if (p->in->len > CP_HTTPS_MAX_HEAD) {
				post_fail(task, g_error_new(G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
							    "the answer's header exceeds %d bytes",
							    CP_HTTPS_MAX_HEAD));
				return;
			}
			read_more(task);
			return;
		}
		p->head_len = (gsize)(end - p->in->data) + 4;
		if (!parse_head(p, &error)) {
			post_fail(task, error);
			return;
		}
	}
	if (p->in->len - p->head_len > p->content_length) {
		post_fail(task, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
						    "the answer is longer than its Content-Length"));
		return;
	}
	if (p->in->len - p->head_len < p->content_length) {
		read_more(task);
		return;
	}
	/* complete: the body is framed, the server's close is not waited for */
	g_task_return_pointer(task, g_bytes_new(p->in->data + p->head_len, p->content_length),
			      (GDestroyNotify)g_bytes_unref);
	g_object_unref(task);
}

static void
read_more(GTask *task)
{
	Post *p = g_task_get_task_data(task);

	g_input_stream_read_async(g_io_stream_get_input_stream(p->conn), p->buf, sizeof(p->buf),
				  G_PRIORITY_DEFAULT, p->cancel, on_read, task);
}

static void
on_body_written(GObject *source, GAsyncResult *res, gpointer data)
{
	GTask *task = data;
	GError *error = NULL;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
		post_fail(task, error);
		return;
	}
	read_more(task);
}

static void
on_head_written(GObject *source, GAsyncResult *res, gpointer data)
{
	GTask *task = data;
	Post *p = g_task_get_task_data(task);
	GError *error = NULL;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
		post_fail(task, error);
		return;
	}
	g_output_stream_write_all_async(G_OUTPUT_STREAM(source),
					g_bytes_get_data(p->body, NULL), g_bytes_get_size(p->body),
					G_PRIORITY_DEFAULT, p->cancel, on_body_written, task);
}

static void
on_handshake(GObject *source, GAsyncResult *res, gpointer data)
{
	GTask *task = data;
	Post *p = g_task_get_task_data(task);
	GError *error = NULL;

	if (!g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, &error)) {
		post_fail(task, error);
		return;
	}
	g_output_stream_write_all_async(g_io_stream_get_output_stream(p->conn),
					p->request_head, strlen(p->request_head),
					G_PRIORITY_DEFAULT, p->cancel, on_head_written, task);
}

static void
on_connected(GObject *source, GAsyncResult *res, gpointer data)
{
	GTask *task = data;
	Post *p = g_task_get_task_data(task);
	GError *error = NULL;
	g_autoptr(GSocketConnection) tcp = NULL;
	g_autoptr(GSocketConnectable) identity = NULL;
	GIOStream *tls;

	tcp = g_socket_client_connect_to_uri_finish(G_SOCKET_CLIENT(source), res, &error);
	if (!tcp) {
		post_fail(task, error);
		return;
	}
	identity = g_network_address_new(p->host, 443);
	tls = g_tls_client_connection_new(G_IO_STREAM(tcp), identity, &error);
	if (!tls) {
		post_fail(task, error);
		return;
	}
	p->conn = tls;
	g_tls_connection_set_database(G_TLS_CONNECTION(tls), p->database);
	/* The answer is framed by Content-Length: a close without
	 * close_notify cannot truncate it unnoticed. */
	g_tls_connection_set_require_close_notify(G_TLS_CONNECTION(tls), FALSE);
	g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT, p->cancel,
					 on_handshake, task);
}

void
cp_https_post_async(const char *base_url, const char *path, GTlsDatabase *database,
		    GBytes *body, guint timeout_ms, GCancellable *cancellable,
		    GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GSocketClient) client = NULL;
	g_autoptr(GUri) uri = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *prefix = NULL;
	g_autofree char *connect_uri = NULL;
	Post *p;
	int port;

	g_task_set_source_tag(task, cp_https_post_async);
	p = g_new0(Post, 1);
	g_task_set_task_data(task, p, (GDestroyNotify)post_free);

	uri = g_uri_parse(base_url, G_URI_FLAGS_NONE, &error);
	if (!uri || g_strcmp0(g_uri_get_scheme(uri), "https") != 0 || !g_uri_get_host(uri) ||
	    g_uri_get_query(uri) || g_uri_get_fragment(uri) || g_uri_get_userinfo(uri)) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
					"'%s' is not an https://host[:port][/path] URL", base_url);
		g_object_unref(task);
		return;
	}
	port = g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 443;
	p->host = g_strdup(g_uri_get_host(uri));
	prefix = g_strdup(g_uri_get_path(uri));
	while (*prefix && prefix[strlen(prefix) - 1] == '/')
		prefix[strlen(prefix) - 1] = '\0';
	p->body = g_bytes_ref(body);
	p->database = database ? g_object_ref(database)
			       : g_tls_backend_get_default_database(g_tls_backend_get_default());
	p->request_head = g_strdup_printf(
		"POST %s%s HTTP/1.1\r\n"
		"Host: %s%s%s:%d\r\n"
		"Content-Type: application/json\r\n"
		"Content-Length: %" G_GSIZE_FORMAT "\r\n"
		"Accept: application/json\r\n"
		"Connection: close\r\n"
		"\r\n",
		prefix, path, strchr(p->host, ':') ? "[" : "", p->host,
		strchr(p->host, ':') ? "]" : "", port, g_bytes_get_size(body));
	p->in = g_byte_array_new();
	p->cancel = g_cancellable_new();
	if (cancellable) {
		p->caller_cancel = g_object_ref(cancellable);
		p->caller_cancel_id = g_cancellable_connect(cancellable,
							    G_CALLBACK(on_caller_cancelled),
							    g_object_ref(p->cancel), g_object_unref);
	}
	p->timeout_source = g_timeout_add(timeout_ms, on_timeout, p);

	/* plain TCP first, then TLS on it with our database */
	client = g_socket_client_new();
	connect_uri = g_strdup_printf("tcp://%s%s%s:%d", strchr(p->host, ':') ? "[" : "",
				      p->host, strchr(p->host, ':') ? "]" : "", port);
	g_socket_client_connect_to_uri_async(client, connect_uri, port, p->cancel, on_connected,
					     task);
}

guint
cp_https_post_finish(GAsyncResult *res, GBytes **body_out, GError **error)
{
	GTask *task = G_TASK(res);
	Post *p = g_task_get_task_data(task);
	GBytes *body = g_task_propagate_pointer(task, error);

	if (!body)
		return 0;
	if (body_out)
		*body_out = body;
	else
		g_bytes_unref(body);
	return p->status;
}
