/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-http.h"

#include <stdarg.h>
#include <string.h>

#include "cp-glib.h"

struct _CpHttpServer {
	SoupServer *soup;
	GSocketService *service;
	GTlsCertificate *tls;
	GTlsDatabase *client_db;
	CpHttpConfig cfg;
	guint n_connections;
	GList *conns;                /* Conn */
	guint16 port;
};

typedef struct {
	CpHttpServer *server;
	GSocketConnection *conn;     /* weak */
	guint deadline_id;
	gboolean counted;            /* holds one of max_connections */
	GSocketAddress *remote;
	GTlsCertificate *peer;       /* accepted client certificate */
} Conn;

static void
conn_gone(gpointer data, GObject *where_the_object_was)
{
	Conn *c = data;

	if (c->counted)
		c->server->n_connections--;
	if (c->deadline_id)
		g_source_remove(c->deadline_id);
	c->server->conns = g_list_remove(c->server->conns, c);
	g_clear_object(&c->remote);
	g_clear_object(&c->peer);
	g_free(c);
}

/*
 * A connection that is still open at its deadline is cut, whatever it is
 * doing: this bounds what a slow or silent client can hold (one slot for
 * connection_timeout seconds) without tracking each read.
 */
static gboolean
conn_deadline(gpointer data)
{
	Conn *c = data;
	GSocket *sock = g_socket_connection_get_socket(c->conn);

	c->deadline_id = 0;
	g_debug("cutting a connection still open after %u s", c->server->cfg.connection_timeout);
	/* Shut down rather than close: libsoup's pending read then sees EOF
	 * and lets the connection go; a closed fd could leave it polling.
	 * The slot is free from now on, whenever libsoup gets there. */
	g_socket_shutdown(sock, TRUE, TRUE, NULL);
	c->counted = FALSE;
	c->server->n_connections--;
	return G_SOURCE_REMOVE;
}

/*
 * A client certificate is only a claim until the SM finds its hash in the
 * companions file; here it must at least chain to client_ca.
 */
static gboolean
accept_client_cert(GTlsConnection *conn, GTlsCertificate *peer, GTlsCertificateFlags errors, gpointer data)
{
	Conn *c = data;

	if (errors) {
		g_message("refusing a client certificate (verification flags 0x%x)", errors);
		return FALSE;
	}
	g_set_object(&c->peer, peer);
	return TRUE;
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
	CpHttpServer *s = data;
	g_autoptr(GSocketAddress) local = NULL;
	g_autoptr(GIOStream) stream = NULL;
	g_autoptr(GError) error = NULL;
	Conn *c;

	if (s->n_connections >= s->cfg.max_connections) {
		g_warning("refusing a connection: %u open, the limit", s->n_connections);
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
		return TRUE;
	}
	c = g_new0(Conn, 1);
	c->server = s;
	c->conn = conn;
	local = g_socket_connection_get_local_address(conn, NULL);
	c->remote = g_socket_connection_get_remote_address(conn, NULL);
	if (s->tls) {
		/* The database is given at construction, NULL when no client
		 * certificate is asked for: left unset, glib-networking
		 * falls back to the system's and GnuTLS loads the whole CA
		 * bundle into each new connection (most of a handshake's CPU) */
		stream = g_initable_new(g_tls_backend_get_server_connection_type(g_tls_backend_get_default()),
					NULL, &error, "base-io-stream", conn, "certificate", s->tls,
					"database", s->client_db, NULL);
		if (!stream) {
			g_warning("TLS: %s", error->message);
			goto refuse;
		}
		if (s->client_db) {
			g_object_set(stream, "authentication-mode", G_TLS_AUTHENTICATION_REQUESTED, NULL);
			g_signal_connect(stream, "accept-certificate", G_CALLBACK(accept_client_cert), c);
		}
	} else {
		stream = g_object_ref(G_IO_STREAM(conn));
	}
	if (!soup_server_accept_iostream(s->soup, stream, local, c->remote, &error)) {
		g_warning("cannot accept a connection: %s", error->message);
		goto refuse;
	}
	c->counted = TRUE;
	c->deadline_id = g_timeout_add_seconds(s->cfg.connection_timeout, conn_deadline, c);
	s->conns = g_list_prepend(s->conns, c);
	g_object_weak_ref(G_OBJECT(conn), conn_gone, c);
	s->n_connections++;
	return TRUE;

refuse:
	g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	g_clear_object(&c->remote);
	g_free(c);
	return TRUE;
}

static gboolean
same_address(GSocketAddress *a, GSocketAddress *b)
{
	GInetSocketAddress *ia = G_INET_SOCKET_ADDRESS(a), *ib = G_INET_SOCKET_ADDRESS(b);

	return g_inet_socket_address_get_port(ia) == g_inet_socket_address_get_port(ib) &&
	       g_inet_address_equal(g_inet_socket_address_get_address(ia), g_inet_socket_address_get_address(ib));
}

/* libsoup does not keep the peer certificate of a connection handed to it
 * as a stream: find the connection by its peer address (unique among the
 * open ones). */
GTlsCertificate *
cp_http_server_get_peer_certificate(CpHttpServer *s, SoupServerMessage *msg)
{
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	if (!remote || !G_IS_INET_SOCKET_ADDRESS(remote))
		return NULL;
	for (GList *l = s->conns; l; l = l->next) {
		Conn *c = l->data;

		if (c->remote && G_IS_INET_SOCKET_ADDRESS(c->remote) && same_address(c->remote, remote))
			return c->peer;
	}
	return NULL;
}

static char *
error_json(const char *code, CpError number, const char *message)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	/* json-glib writes strings as they are: a message quoting a peer
	 * (a host name, a library's error) must not make the body invalid */
	g_autofree char *valid = g_utf8_make_valid(message, -1);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "error");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "code");
	json_builder_add_string_value(b, code);
	json_builder_set_member_name(b, "number");
	json_builder_add_int_value(b, number);
	json_builder_set_member_name(b, "message");
	json_builder_add_string_value(b, valid);
	json_builder_end_object(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	return json_generator_to_data(gen, NULL);
}

typedef struct {
	GIOStream *stream;
	char *text;
} RawReply;

static void
raw_reply_closed(GObject *source, GAsyncResult *res, gpointer data)
{
	RawReply *r = data;

	g_io_stream_close_finish(G_IO_STREAM(source), res, NULL);
	g_object_unref(r->stream);
	g_free(r->text);
	g_free(r);
}

static void
raw_reply_written(GObject *source, GAsyncResult *res, gpointer data)
{
	RawReply *r = data;

	g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, NULL);
	g_io_stream_close_async(r->stream, G_PRIORITY_DEFAULT, NULL, raw_reply_closed, r);
}

/*
 * libsoup reads (and buffers) a request body whatever status a handler
 * set on the headers, so a body we refuse must not stay with libsoup:
 * take the connection from it, answer, close.
 */
static void
refuse_body(SoupServerMessage *msg, guint status, const char *code, const char *message)
{
	g_autofree char *json = error_json(code, 0, message);
	RawReply *r = g_new0(RawReply, 1);

	r->stream = soup_server_message_steal_connection(msg);
	if (!r->stream) {
		g_free(r);
		return;
	}
	r->text = g_strdup_printf("HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
				  status, soup_status_get_phrase(status), strlen(json), json);
	g_output_stream_write_all_async(g_io_stream_get_output_stream(r->stream), r->text, strlen(r->text),
					G_PRIORITY_DEFAULT, NULL, raw_reply_written, r);
}

/*
 * Runs once the headers are in, before any body byte is read: a body the
 * limit does not allow is refused without reading it, and a body without a
 * declared length is refused too, since only a declared length can be
 * checked up front.
 */
static void
early_handler(SoupServer *server, SoupServerMessage *msg, const char *path,
	      GHashTable *query, gpointer data)
{
	CpHttpServer *s = data;
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	g_autofree char *message = NULL;
	goffset len;

	if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CHUNKED) {
		refuse_body(msg, SOUP_STATUS_LENGTH_REQUIRED, "length-required",
			    "the request body needs a Content-Length");
		return;
	}
	len = soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH
	      ? soup_message_headers_get_content_length(h) : 0;
	if (len < 0 || (guint64)len > s->cfg.body_max) {
		message = g_strdup_printf("the request body is larger than %zu bytes", s->cfg.body_max);
		refuse_body(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "body-too-large", message);
	}
}

static gboolean
parse_listen(const char *listen, char **host, guint16 *port, GError **error)
{
	const char *colon = strrchr(listen, ':');
	char *end;
	guint64 p;

	if (!colon || colon == listen) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "listen address '%s' is not host:port", listen);
		return FALSE;
	}
	p = g_ascii_strtoull(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p > 65535) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "listen address '%s' has a bad port", listen);
		return FALSE;
	}
	*host = g_strndup(listen, (gsize)(colon - listen));
	if ((*host)[0] == '[' && (*host)[strlen(*host) - 1] == ']') {
		char *inner = g_strndup(*host + 1, strlen(*host) - 2);

		g_free(*host);
		*host = inner;
	}
	*port = (guint16)p;
	return TRUE;
}

CpHttpServer *
cp_http_server_new(const CpHttpConfig *cfg, GError **error)
{
	g_autoptr(CpHttpServer) s = g_new0(CpHttpServer, 1);
	g_autofree char *host = NULL;
	g_autoptr(GInetAddress) addr = NULL;
	g_autoptr(GSocketAddress) sa = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	guint16 port;

	s->cfg = *cfg;
	if (!s->cfg.max_connections)
		s->cfg.max_connections = 64;
	if (!s->cfg.connection_timeout)
		s->cfg.connection_timeout = 30;
	if (!s->cfg.body_max)
		s->cfg.body_max = 16384;

	if (!parse_listen(cfg->listen, &host, &port, error))
		return NULL;
	addr = g_inet_address_new_from_string(host);
	if (!addr) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "listen address '%s' is not a numeric IP address", host);
		return NULL;
	}
	if (cfg->tls_certificate) {
		if (cfg->tls_key)
			s->tls = g_tls_certificate_new_from_files(cfg->tls_certificate, cfg->tls_key, error);
		else
			s->tls = g_tls_certificate_new_from_file(cfg->tls_certificate, error);
		if (!s->tls) {
			g_prefix_error(error, "TLS certificate: ");
			return NULL;
		}
		if (cfg->client_ca) {
			s->client_db = g_tls_file_database_new(cfg->client_ca, error);
			if (!s->client_db) {
				g_prefix_error(error, "client CA: ");
				return NULL;
			}
		}
	}

	s->soup = soup_server_new("server-header", "cellprov ", NULL);

	s->service = g_socket_service_new();
	sa = g_inet_socket_address_new(addr, port);
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(s->service), sa, G_SOCKET_TYPE_STREAM,
					   G_SOCKET_PROTOCOL_TCP, NULL, &bound, error)) {
		g_prefix_error(error, "cannot listen on %s: ", cfg->listen);
		return NULL;
	}
	s->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	g_signal_connect(s->service, "incoming", G_CALLBACK(on_incoming), s);
	g_socket_service_start(s->service);
	return g_steal_pointer(&s);
}

void
cp_http_server_free(CpHttpServer *s)
{
	if (!s)
		return;
	if (s->service) {
		g_socket_service_stop(s->service);
		g_socket_listener_close(G_SOCKET_LISTENER(s->service));
		g_object_unref(s->service);
	}
	g_clear_object(&s->soup);
	g_clear_object(&s->tls);
	g_clear_object(&s->client_db);
	g_free(s);
}

void
cp_http_server_add_handler(CpHttpServer *s, const char *path, SoupServerCallback callback, gpointer data)
{
	/* libsoup runs only the early handler of the path that matched */
	soup_server_add_early_handler(s->soup, path, early_handler, s, NULL);
	soup_server_add_handler(s->soup, path, callback, data, NULL);
}

guint16
cp_http_server_get_port(CpHttpServer *s)
{
	return s->port;
}

gboolean
cp_http_server_write_port(CpHttpServer *s, const char *path, GError **error)
{
	g_autofree char *text = g_strdup_printf("%u\n", s->port);

	return cp_file_replace(path, text, strlen(text), 0644, error);
}

typedef struct {
	char *text;
	gsize len;
} Reply;

static void
reply_free(gpointer data)
{
	Reply *r = data;

	cp_cleanse(r->text, r->len);
	g_free(r->text);
	g_free(r);
}

/* Answers carry K'' (SM) and K_SM (AUSF): their text is cleansed when
 * libsoup lets it go, not just freed. */
void
cp_http_reply_json(SoupServerMessage *msg, guint status, JsonBuilder *b)
{
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(GBytes) bytes = NULL;
	Reply *r = g_new0(Reply, 1);

	json_generator_set_root(gen, root);
	r->text = json_generator_to_data(gen, &r->len);
	bytes = g_bytes_new_with_free_func(r->text, r->len, reply_free, r);
	soup_server_message_set_status(msg, status, NULL);
	soup_message_headers_set_content_type(soup_server_message_get_response_headers(msg), "application/json", NULL);
	soup_message_body_append_bytes(soup_server_message_get_response_body(msg), bytes);
}

void
cp_http_reply_error(SoupServerMessage *msg, guint status, const char *code,
		    CpError number, const char *fmt, ...)
{
	g_autofree char *message = NULL;
	char *json;
	va_list ap;

	va_start(ap, fmt);
	message = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	json = error_json(code, number, message);
	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, json, strlen(json));
}

void
cp_http_reply_cp_error(SoupServerMessage *msg, guint status, CpError err, const char *message)
{
	cp_http_reply_error(msg, status, cp_error_name(err), err, "%s",
			    message ? message : cp_error_message(err));
}

JsonObject *
cp_http_request_json(SoupServerMessage *msg)
{
	SoupMessageBody *body = soup_server_message_get_request_body(msg);
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	const char *ct = soup_message_headers_get_content_type(h, NULL);
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	JsonNode *root;

	if (!ct || g_ascii_strcasecmp(ct, "application/json") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", 0,
				    "the request body must be application/json");
		return NULL;
	}
	bytes = soup_message_body_flatten(body);
	if (!json_parser_load_from_data(parser, g_bytes_get_data(bytes, NULL),
					(gssize)g_bytes_get_size(bytes), &error)) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-json", 0,
				    "the request body is not JSON");
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-json", 0,
				    "the request body must be a JSON object");
		return NULL;
	}
	return json_object_ref(json_node_get_object(root));
}

char *
cp_http_bearer(SoupServerMessage *msg)
{
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	const char *auth = soup_message_headers_get_one(h, "Authorization");

	if (!auth || g_ascii_strncasecmp(auth, "Bearer ", 7) != 0)
		return NULL;
	auth += 7;
	while (*auth == ' ')
		auth++;
	return *auth ? g_strdup(auth) : NULL;
}

const char *
cp_json_string(JsonObject *o, const char *name)
{
	JsonNode *n = json_object_get_member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

GBytes *
cp_json_base64(JsonObject *o, const char *name, gsize max)
{
	const char *s = cp_json_string(o, name);
	gsize slen, len = 0;
	guchar *data;

	if (!s)
		return NULL;
	slen = strlen(s);
	/* base64 of max bytes is at most 4 * ceil(max / 3) characters */
	if (slen == 0 || slen % 4 || slen > 4 * ((max + 2) / 3))
		return NULL;
	for (gsize i = 0; i < slen; i++) {
		char ch = s[i];

		if (!g_ascii_isalnum(ch) && ch != '+' && ch != '/' && !(ch == '=' && i >= slen - 2))
			return NULL;
	}
	data = g_base64_decode(s, &len);
	if (!data || len == 0 || len > max) {
		g_free(data);
		return NULL;
	}
	return g_bytes_new_take(data, len);
}
