/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-http.h"

#include <stdarg.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "cp-conf.h"
#include "cp-glib.h"

/* Latency buckets of /metrics, seconds */
static const double latency_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BUCKETS G_N_ELEMENTS(latency_buckets)

typedef struct {
	char *path;                  /* as registered; "other" for the default handler */
	GHashTable *outcomes;        /* outcome string -> guint64 * */
	guint64 buckets[N_BUCKETS + 1];
	double sum;
	guint64 count;
} Endpoint;

typedef struct {
	char *name;
	char *help;
	const guint64 *value;
} Counter;

struct _CpHttpServer {
	SoupServer *soup;
	GSocketService *service;
	GTlsCertificate *tls;
	GTlsDatabase *client_db;
	CpHttpConfig cfg;
	guint n_connections;
	guint n_unauthenticated;
	GHashTable *per_source;      /* IP string -> count (GUINT_TO_POINTER) */
	GQueue conns;                /* Conn, oldest first */
	guint16 port;
	GPtrArray *endpoints;        /* Endpoint */
	GPtrArray *counters;         /* Counter */
	guint64 refused_limit, refused_source, evicted, deadline_cuts;
	CpHttpServer *ops;           /* metrics_listen */
	CpHttpServer *main;          /* the server an ops server reports on */
};

typedef struct {
	CpHttpServer *server;
	GSocketConnection *conn;     /* weak */
	GList link;                  /* in server->conns */
	guint deadline_id;
	gboolean counted;            /* holds one of max_connections */
	gboolean authenticated;
	gboolean idle;               /* kept alive between two requests */
	GIOStream *stream;           /* what libsoup was handed (TLS or conn); libsoup's */
	GSocketAddress *remote;
	char *source;                /* the remote IP address */
	GTlsCertificate *peer;       /* accepted client certificate */
	GSource *hello;              /* waiting for the whole ClientHello */
	GSocketConnection *held;     /* ... with a reference of ours */
	guint hello_waits;
} Conn;

static void
source_add(CpHttpServer *s, const char *source, int delta)
{
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(s->per_source, source));

	n = (guint)((int)n + delta);
	if (n)
		g_hash_table_insert(s->per_source, g_strdup(source), GUINT_TO_POINTER(n));
	else
		g_hash_table_remove(s->per_source, source);
}

/* Give back the slots a connection holds (once). */
static void
conn_release(Conn *c)
{
	CpHttpServer *s = c->server;

	if (!c->counted)
		return;
	c->counted = FALSE;
	s->n_connections--;
	if (!c->authenticated)
		s->n_unauthenticated--;
	source_add(s, c->source, -1);
}

static void hello_done(Conn *c);

static void
conn_gone(gpointer data, GObject *where_the_object_was)
{
	Conn *c = data;

	conn_release(c);
	if (c->deadline_id)
		g_source_remove(c->deadline_id);
	if (c->hello)
		hello_done(c);
	g_queue_unlink(&c->server->conns, &c->link);
	g_clear_object(&c->remote);
	g_clear_object(&c->peer);
	g_free(c->source);
	g_free(c);
}

/* Shut down rather than close: libsoup's pending read then sees EOF and
 * lets the connection go; a closed fd could leave it polling. The slots
 * are free from now on, whenever libsoup gets there. */
static void
conn_cut(Conn *c)
{
	g_socket_shutdown(g_socket_connection_get_socket(c->conn), TRUE, TRUE, NULL);
	conn_release(c);
	if (c->deadline_id) {
		g_source_remove(c->deadline_id);
		c->deadline_id = 0;
	}
}

/*
 * Each connection has one deadline at a time: from the accept (TLS
 * handshake included) or from its last answer, request_timeout seconds
 * to deliver a complete request; while a handler works on it,
 * connection_timeout seconds to answer. A client that trickles bytes is
 * cut as surely as a silent one.
 */
static gboolean
conn_deadline(gpointer data)
{
	Conn *c = data;

	c->deadline_id = 0;
	g_debug("cutting a connection from %s at its deadline", c->source);
	c->server->deadline_cuts++;
	conn_cut(c);
	return G_SOURCE_REMOVE;
}

static void
conn_arm(Conn *c, guint seconds)
{
	if (!c->counted)
		return;
	if (c->deadline_id)
		g_source_remove(c->deadline_id);
	c->deadline_id = g_timeout_add_seconds(seconds, conn_deadline, c);
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

static char *
address_string(GSocketAddress *a)
{
	if (!a || !G_IS_INET_SOCKET_ADDRESS(a))
		return g_strdup("unknown");
	return g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(a)));
}

/* The oldest connection that no request authenticated yet. */
static Conn *
oldest_unauthenticated(CpHttpServer *s)
{
	for (GList *l = s->conns.head; l; l = l->next) {
		Conn *c = l->data;

		if (c->counted && !c->authenticated)
			return c;
	}
	return NULL;
}

/* Hand the connection to libsoup (through TLS when configured). */
static void
hand_over(Conn *c)
{
	CpHttpServer *s = c->server;
	GSocketConnection *conn = c->conn;
	g_autoptr(GSocketAddress) local = g_socket_connection_get_local_address(conn, NULL);
	g_autoptr(GIOStream) stream = NULL;
	g_autoptr(GError) error = NULL;

	if (s->tls) {
		/* The database is given at construction, NULL when no client
		 * certificate is asked for: left unset, glib-networking
		 * falls back to the system's and GnuTLS loads the whole CA
		 * bundle into each new connection (most of a handshake's CPU) */
		stream = g_initable_new(g_tls_backend_get_server_connection_type(g_tls_backend_get_default()),
					NULL, &error, "base-io-stream", conn, "certificate", s->tls,
					"database", s->client_db, NULL);
		if (stream && s->client_db) {
			g_object_set(stream, "authentication-mode", G_TLS_AUTHENTICATION_REQUESTED, NULL);
			g_signal_connect(stream, "accept-certificate", G_CALLBACK(accept_client_cert), c);
		}
	} else {
		stream = g_object_ref(G_IO_STREAM(conn));
	}
	/* set first: with the request already in, libsoup may serve it
	 * (and keep the connection) before it returns */
	c->stream = stream;
	if (!stream || !soup_server_accept_iostream(s->soup, stream, local, c->remote, &error)) {
		g_warning("cannot accept a connection: %s", error->message);
		c->stream = NULL;
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	}
}

static void
hello_done(Conn *c)
{
	g_source_destroy(c->hello);
	g_clear_pointer(&c->hello, g_source_unref);
}

/*
 * glib-networking runs each TLS handshake in a thread of GLib's shared
 * pool, blocking there on every read: a handful of clients that trickle
 * their ClientHello would hold the pool (which the SM's own fetches and
 * AUSF calls need too). So the handshake starts only once the whole
 * first TLS record is in the socket's buffer; until then the main loop
 * waits for it, with SO_RCVLOWAT so that a partial record wakes nobody.
 */
static gboolean
on_hello(GSocket *sock, GIOCondition cond, gpointer data)
{
	Conn *c = data;
	guint8 head[5];
	g_autofree guint8 *all = NULL;
	gssize n;
	int want;

	n = recv(g_socket_get_fd(sock), head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
	if (n < (gssize)sizeof(head))
		goto gone;           /* woken without the bytes asked for: closed */
	want = (int)sizeof(head) + (head[3] << 8 | head[4]);
	if (head[0] != 0x16) {
		/* not a TLS handshake record: TLS refuses it at once */
		want = 1;
	} else {
		all = g_malloc(want);
		n = recv(g_socket_get_fd(sock), all, want, MSG_PEEK | MSG_DONTWAIT);
		if (n < want) {
			if (setsockopt(g_socket_get_fd(sock), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want)) < 0 ||
			    (cond & (G_IO_HUP | G_IO_ERR)))
				goto gone;
			if (c->hello_waits++ > 2)
				goto gone;   /* woken with less than asked for: closed */
			return G_SOURCE_CONTINUE;
		}
	}
	want = 1;
	setsockopt(g_socket_get_fd(sock), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want));
	hello_done(c);
	hand_over(c);
	g_clear_object(&c->held);
	return G_SOURCE_REMOVE;

gone:
	hello_done(c);
	g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
	g_clear_object(&c->held);
	return G_SOURCE_REMOVE;
}

static void
wait_hello(Conn *c)
{
	GSocket *sock = g_socket_connection_get_socket(c->conn);
	int want = 5;

	setsockopt(g_socket_get_fd(sock), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want));
	c->held = g_object_ref(c->conn);
	c->hello = g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
	g_source_set_callback(c->hello, G_SOURCE_FUNC(on_hello), c, NULL);
	g_source_attach(c->hello, NULL);
}

/* The oldest connection kept alive between requests (from source, or
 * from anywhere when NULL). */
static Conn *
oldest_idle(CpHttpServer *s, const char *source)
{
	for (GList *l = s->conns.head; l; l = l->next) {
		Conn *c = l->data;

		if (c->counted && c->idle && (!source || strcmp(c->source, source) == 0))
			return c;
	}
	return NULL;
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
	CpHttpServer *s = data;
	g_autoptr(GSocketAddress) remote = NULL;
	g_autofree char *from = NULL;
	Conn *c;

	remote = g_socket_connection_get_remote_address(conn, NULL);
	from = address_string(remote);
	/* A connection kept alive with no request on it gives way to a new
	 * one (HTTP lets a server close an idle connection at any time):
	 * idle connections never make a limit refuse anybody, so many
	 * clients behind one address (a carrier-grade NAT) are limited by
	 * their requests in flight, not by the connections they keep. */
	if (GPOINTER_TO_UINT(g_hash_table_lookup(s->per_source, from)) >= s->cfg.max_per_source &&
	    (c = oldest_idle(s, from)))
		conn_cut(c);
	if (s->n_connections >= s->cfg.max_connections && (c = oldest_idle(s, NULL)))
		conn_cut(c);
	if (GPOINTER_TO_UINT(g_hash_table_lookup(s->per_source, from)) >= s->cfg.max_per_source) {
		g_warning("refusing a connection from %s: %u open from there, the limit", from,
			  s->cfg.max_per_source);
		s->refused_source++;
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
		return TRUE;
	}
	if (s->n_connections >= s->cfg.max_connections) {
		g_warning("refusing a connection: %u open, the limit", s->n_connections);
		s->refused_limit++;
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
		return TRUE;
	}
	/* Full of connections nobody has authenticated on: the oldest one
	 * makes room. A client that holds connections open without a
	 * request loses them to newcomers, while an honest client's
	 * connection authenticates long before a slot is needed again. */
	if (s->n_unauthenticated >= s->cfg.max_unauthenticated) {
		Conn *old = oldest_unauthenticated(s);

		if (old) {
			g_message("%u unauthenticated connections: dropping the oldest (from %s)",
				  s->n_unauthenticated, old->source);
			s->evicted++;
			conn_cut(old);
		}
	}
	/* an answer is written in pieces (headers, body): on a kept
	 * connection Nagle would hold the body for the client's delayed ACK */
	g_socket_set_option(g_socket_connection_get_socket(conn), IPPROTO_TCP, TCP_NODELAY, 1, NULL);
	c = g_new0(Conn, 1);
	c->server = s;
	c->conn = conn;
	c->link.data = c;
	c->remote = g_steal_pointer(&remote);
	c->source = g_steal_pointer(&from);
	c->counted = TRUE;
	s->n_connections++;
	s->n_unauthenticated++;
	source_add(s, c->source, 1);
	g_queue_push_tail_link(&s->conns, &c->link);
	g_object_weak_ref(G_OBJECT(conn), conn_gone, c);
	conn_arm(c, s->cfg.request_timeout);
	if (s->tls)
		wait_hello(c);
	else
		hand_over(c);
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
static Conn *
conn_of(CpHttpServer *s, SoupServerMessage *msg)
{
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	if (!remote || !G_IS_INET_SOCKET_ADDRESS(remote))
		return NULL;
	for (GList *l = s->conns.head; l; l = l->next) {
		Conn *c = l->data;

		if (c->remote && G_IS_INET_SOCKET_ADDRESS(c->remote) && same_address(c->remote, remote))
			return c;
	}
	return NULL;
}

GTlsCertificate *
cp_http_server_get_peer_certificate(CpHttpServer *s, SoupServerMessage *msg)
{
	Conn *c = conn_of(s, msg);

	return c ? c->peer : NULL;
}

void
cp_http_server_set_authenticated(CpHttpServer *s, SoupServerMessage *msg)
{
	Conn *c = conn_of(s, msg);

	if (!c || c->authenticated)
		return;
	c->authenticated = TRUE;
	if (c->counted)
		s->n_unauthenticated--;
}

/* ---- request ids, logs and metrics ---- */

#define REQUEST_ID "cp-request-id"
#define REQUEST_START "cp-request-start"
#define REQUEST_CODE "cp-request-code"

static gboolean
request_id_valid(const char *id)
{
	gsize n = 0;

	for (; id[n]; n++)
		if (!g_ascii_isalnum(id[n]) && id[n] != '-' && id[n] != '_' && id[n] != '.')
			return FALSE;
	return n > 0 && n <= 64;
}

const char *
cp_http_request_id(SoupServerMessage *msg)
{
	const char *id = g_object_get_data(G_OBJECT(msg), REQUEST_ID);
	const char *asked;
	uint8_t r[8];

	if (id)
		return id;
	asked = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "X-Request-Id");
	if (asked && request_id_valid(asked)) {
		g_object_set_data_full(G_OBJECT(msg), REQUEST_ID, g_strdup(asked), g_free);
	} else {
		char hex[2 * sizeof(r) + 1];

		/* an id, not a secret */
		for (gsize i = 0; i < sizeof(r); i++)
			r[i] = (uint8_t)g_random_int_range(0, 256);
		for (gsize i = 0; i < sizeof(r); i++)
			g_snprintf(hex + 2 * i, 3, "%02x", r[i]);
		g_object_set_data_full(G_OBJECT(msg), REQUEST_ID, g_strdup(hex), g_free);
	}
	return g_object_get_data(G_OBJECT(msg), REQUEST_ID);
}

static Endpoint *
endpoint_of(CpHttpServer *s, const char *path)
{
	Endpoint *other = NULL;

	for (guint i = 0; i < s->endpoints->len; i++) {
		Endpoint *e = g_ptr_array_index(s->endpoints, i);
		gsize n = strlen(e->path);

		if (strcmp(e->path, "other") == 0)
			other = e;
		else if (path && strncmp(path, e->path, n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return e;
	}
	return other;
}

static Endpoint *
endpoint_add(CpHttpServer *s, const char *path)
{
	Endpoint *e = g_new0(Endpoint, 1);

	e->path = g_strdup(path ? path : "other");
	e->outcomes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_ptr_array_add(s->endpoints, e);
	return e;
}

static void
endpoint_free(gpointer data)
{
	Endpoint *e = data;

	g_hash_table_unref(e->outcomes);
	g_free(e->path);
	g_free(e);
}

static void
counter_free(gpointer data)
{
	Counter *c = data;

	g_free(c->name);
	g_free(c->help);
	g_free(c);
}

/* One request done: counted by endpoint and outcome (the error code it
 * got, "ok" for a 2xx/3xx), its time in the histogram, one log line. */
static void
record(CpHttpServer *s, SoupServerMessage *msg, guint status, const char *code)
{
	const char *path = g_uri_get_path(soup_server_message_get_uri(msg));
	Endpoint *e = endpoint_of(s, path);
	gint64 *start = g_object_get_data(G_OBJECT(msg), REQUEST_START);
	double secs = start ? (double)(g_get_monotonic_time() - *start) / G_USEC_PER_SEC : 0;
	g_autofree char *fallback = NULL;
	g_autofree char *from = address_string(soup_server_message_get_remote_address(msg));
	guint64 *n;

	if (!code) {
		if (status >= 200 && status < 400)
			code = "ok";
		else
			code = fallback = g_strdup_printf("http-%u", status);
	}
	if (s->main)
		return;          /* a scrape of /metrics: neither logged nor counted */
	/* the endpoint, not the path: a path may hold a SUPI */
	g_message("request=%s peer=%s method=%s endpoint=%s status=%u outcome=%s ms=%.2f",
		  cp_http_request_id(msg), from, soup_server_message_get_method(msg), e ? e->path : "other",
		  status, code, secs * 1e3);
	if (!e)
		return;
	n = g_hash_table_lookup(e->outcomes, code);
	if (!n) {
		n = g_new0(guint64, 1);
		g_hash_table_insert(e->outcomes, g_strdup(code), n);
	}
	(*n)++;
	for (guint i = 0; i <= N_BUCKETS; i++)
		if (i == N_BUCKETS || secs <= latency_buckets[i])
			e->buckets[i]++;
	e->sum += secs;
	e->count++;
}

/* The headers are in: the request's clock and id start. */
static void
request_headers(SoupServerMessage *msg)
{
	gint64 *start = g_new(gint64, 1);

	*start = g_get_monotonic_time();
	g_object_set_data_full(G_OBJECT(msg), REQUEST_START, start, g_free);
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "X-Request-Id",
				     cp_http_request_id(msg));
}

/* The body is in too: the handler's time starts. */
static void
on_request_read(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
	CpHttpServer *s = data;
	Conn *c = conn_of(s, msg);

	if (c)
		conn_arm(c, s->cfg.connection_timeout);
}

static void
request_done(CpHttpServer *s, SoupServerMessage *msg, Conn *c)
{
	if (c)
		conn_arm(c, s->cfg.request_timeout);
	if (!g_object_get_data(G_OBJECT(msg), REQUEST_START))
		return;          /* never read, or not ours to count (/metrics) */
	record(s, msg, soup_server_message_get_status(msg), g_object_get_data(G_OBJECT(msg), REQUEST_CODE));
}

static void
on_request_finished(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
	CpHttpServer *s = data;

	request_done(s, msg, conn_of(s, msg));
}

/*
 * Keep-alive. libsoup 3.2 keeps a connection it was handed as a stream
 * only while the server has a listener of its own (we have none), and a
 * connection it keeps that the client then closes is never let go of
 * (its next request's reader has no one to tell of the EOF: the socket
 * stays in CLOSE_WAIT). So a connection worth keeping is taken back once
 * the whole answer is written (its wrote-body, where libsoup allows
 * that) and handed over again as a new one, whose first read an EOF
 * ends cleanly. Only a connection a request authenticated on is kept;
 * any other is told "Connection: close" before its answer is written.
 */
static void
on_got_body(SoupServerMessage *msg, gpointer data)
{
	CpHttpServer *s = data;
	Conn *c = conn_of(s, msg);

	/* after the handler: it has authenticated the connection or not */
	if (!c || !c->counted || !c->authenticated || s->main)
		soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
	/* At a limit, the next newcomer would close an idle kept connection,
	 * maybe just as its client sends a request on it (which the client
	 * cannot tell from a failure after its request was served). The
	 * answer that would leave a connection idle at a limit says
	 * "Connection: close" instead: the client knows before it sends. */
	else if (s->n_connections >= s->cfg.max_connections ||
		 GPOINTER_TO_UINT(g_hash_table_lookup(s->per_source, c->source)) >= s->cfg.max_per_source)
		soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
}

static void
on_wrote_body(SoupServerMessage *msg, gpointer data)
{
	CpHttpServer *s = data;
	Conn *c = conn_of(s, msg);
	g_autoptr(GSocketAddress) local = NULL;
	g_autoptr(GIOStream) stream = NULL;
	g_autoptr(GIOStream) base = NULL;
	g_autoptr(GError) error = NULL;
	GInputStream *in;

	if (!c || !c->counted || !c->authenticated || !c->stream ||
	    soup_server_message_get_http_version(msg) != SOUP_HTTP_1_1 ||
	    soup_message_headers_header_contains(soup_server_message_get_request_headers(msg), "Connection", "close") ||
	    soup_message_headers_header_contains(soup_server_message_get_response_headers(msg), "Connection", "close"))
		return;          /* libsoup closes it once finished */
	request_done(s, msg, c);
	local = g_socket_connection_get_local_address(c->conn, NULL);
	/* What libsoup gives back wraps what it was handed: the stream of
	 * our own goes to it again, or each request would add a layer */
	base = g_object_ref(c->stream);
	g_object_ref(msg);
	stream = soup_server_message_steal_connection(msg);
	g_object_unref(msg);
	if (!stream)
		return;
	/* ... and the wrapper, once gone, must not close our input stream
	 * under the next request (its buffered reader closes what it reads
	 * from when finalized) */
	in = g_io_stream_get_input_stream(stream);
	if (G_IS_FILTER_INPUT_STREAM(in))
		g_filter_input_stream_set_close_base_stream(G_FILTER_INPUT_STREAM(in), FALSE);
	if (!soup_server_accept_iostream(s->soup, base, local, c->remote, &error)) {
		g_warning("cannot keep a connection: %s", error->message);
		g_io_stream_close(base, NULL, NULL);
		return;
	}
	c->idle = TRUE;
}

static void
text_metric(GString *out, const char *name, const char *type, const char *help)
{
	g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Prometheus text exposition format 0.0.4. */
static char *
metrics_text(CpHttpServer *s)
{
	GString *out = g_string_new(NULL);
	guint64 storage = 0;

	text_metric(out, "cellprov_http_requests_total", "counter", "Requests answered, by endpoint and outcome.");
	for (guint i = 0; i < s->endpoints->len; i++) {
		Endpoint *e = g_ptr_array_index(s->endpoints, i);
		GHashTableIter it;
		gpointer k, v;

		g_hash_table_iter_init(&it, e->outcomes);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			g_string_append_printf(out, "cellprov_http_requests_total{endpoint=\"%s\",outcome=\"%s\"} %"
					       G_GUINT64_FORMAT "\n", e->path, (char *)k, *(guint64 *)v);
			if (strcmp(k, "storage") == 0)
				storage += *(guint64 *)v;
		}
	}
	text_metric(out, "cellprov_http_request_duration_seconds", "histogram",
		    "Time from a complete request to its answer.");
	for (guint i = 0; i < s->endpoints->len; i++) {
		Endpoint *e = g_ptr_array_index(s->endpoints, i);

		for (guint b = 0; b <= N_BUCKETS; b++) {
			char le[G_ASCII_DTOSTR_BUF_SIZE];

			if (b < N_BUCKETS)
				g_ascii_formatd(le, sizeof(le), "%g", latency_buckets[b]);
			else
				g_strlcpy(le, "+Inf", sizeof(le));
			g_string_append_printf(out, "cellprov_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%s\"} %"
					       G_GUINT64_FORMAT "\n", e->path, le, e->buckets[b]);
		}
		g_string_append_printf(out, "cellprov_http_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n",
				       e->path, e->sum);
		g_string_append_printf(out, "cellprov_http_request_duration_seconds_count{endpoint=\"%s\"} %"
				       G_GUINT64_FORMAT "\n", e->path, e->count);
	}
	text_metric(out, "cellprov_database_errors_total", "counter", "Requests that failed on the database (outcome storage).");
	g_string_append_printf(out, "cellprov_database_errors_total %" G_GUINT64_FORMAT "\n", storage);
	text_metric(out, "cellprov_http_connections", "gauge", "Open connections.");
	g_string_append_printf(out, "cellprov_http_connections %u\n", s->n_connections);
	text_metric(out, "cellprov_http_connections_unauthenticated", "gauge",
		    "Open connections no request authenticated yet.");
	g_string_append_printf(out, "cellprov_http_connections_unauthenticated %u\n", s->n_unauthenticated);
	text_metric(out, "cellprov_http_connections_dropped_total", "counter",
		    "Connections refused or cut, by reason.");
	g_string_append_printf(out, "cellprov_http_connections_dropped_total{reason=\"max-connections\"} %" G_GUINT64_FORMAT "\n"
			       "cellprov_http_connections_dropped_total{reason=\"per-source\"} %" G_GUINT64_FORMAT "\n"
			       "cellprov_http_connections_dropped_total{reason=\"unauthenticated\"} %" G_GUINT64_FORMAT "\n"
			       "cellprov_http_connections_dropped_total{reason=\"deadline\"} %" G_GUINT64_FORMAT "\n",
			       s->refused_limit, s->refused_source, s->evicted, s->deadline_cuts);
	for (guint i = 0; i < s->counters->len; i++) {
		Counter *c = g_ptr_array_index(s->counters, i);

		text_metric(out, c->name, "counter", c->help);
		g_string_append_printf(out, "%s %" G_GUINT64_FORMAT "\n", c->name, *c->value);
	}
	return g_string_free(out, FALSE);
}

void
cp_http_server_add_counter(CpHttpServer *s, const char *name, const char *help, const guint64 *value)
{
	Counter *c = g_new0(Counter, 1);

	c->name = g_strdup(name);
	c->help = g_strdup(help);
	c->value = value;
	g_ptr_array_add(s->counters, c);
}

static void
handle_ops(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
	CpHttpServer *ops = data;
	const char *method = soup_server_message_get_method(msg);
	char *text;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed", 0, "use GET");
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
		soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, "ok\n", 3);
	} else if (strcmp(path, "/metrics") == 0) {
		text = metrics_text(ops->main);
		soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
		soup_server_message_set_response(msg, "text/plain; version=0.0.4", SOUP_MEMORY_TAKE, text, strlen(text));
	} else {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "not-found", 0, "only /metrics and /healthz here");
	}
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
refuse_body(CpHttpServer *s, SoupServerMessage *msg, guint status, const char *code, const char *message)
{
	g_autofree char *json = error_json(code, 0, message);
	RawReply *r = g_new0(RawReply, 1);

	/* libsoup reports no end for a stolen connection: count it here */
	record(s, msg, status, code);

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
	Conn *c;

	request_headers(msg);
	if ((c = conn_of(s, msg)))
		c->idle = FALSE;
	g_signal_connect_after(msg, "got-body", G_CALLBACK(on_got_body), s);
	g_signal_connect(msg, "wrote-body", G_CALLBACK(on_wrote_body), s);
	if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CHUNKED) {
		refuse_body(s, msg, SOUP_STATUS_LENGTH_REQUIRED, "length-required",
			    "the request body needs a Content-Length");
		return;
	}
	len = soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH
	      ? soup_message_headers_get_content_length(h) : 0;
	if (len < 0 || (guint64)len > s->cfg.body_max) {
		message = g_strdup_printf("the request body is larger than %zu bytes", s->cfg.body_max);
		refuse_body(s, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "body-too-large", message);
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

gboolean
cp_http_config_load(CpHttpConfig *cfg, GKeyFile *kf, const char *group, GError **error)
{
	guint64 request_timeout, per_source, unauthenticated;
	g_autoptr(GError) local = NULL;
	g_autofree char *metrics = NULL;

	if (!cp_conf_uint(kf, group, "request-timeout", 10, 1, 3600, &request_timeout, error) ||
	    !cp_conf_uint(kf, group, "max-connections-per-source", 16, 1, 65536, &per_source, error) ||
	    !cp_conf_uint(kf, group, "max-unauthenticated", 32, 1, 65536, &unauthenticated, error))
		return FALSE;
	cfg->request_timeout = (guint)request_timeout;
	cfg->max_per_source = (guint)per_source;
	cfg->max_unauthenticated = (guint)unauthenticated;
	cfg->reuse_port = g_key_file_get_boolean(kf, group, "reuse-port", &local);
	if (local && !g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND) &&
	    !g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "reuse-port: want true or false");
		return FALSE;
	}
	/* kept by the key file: cfg points into it */
	metrics = cp_conf_string(kf, group, "metrics-listen", NULL);
	if (metrics)
		cfg->metrics_listen = g_intern_string(metrics);
	return TRUE;
}

/* A TCP socket bound to listen (not yet listening); *port the bound port. */
static GSocket *
bind_socket(const char *listen, gboolean reuse_port, char **host_out, guint16 *port_out, GError **error)
{
	g_autofree char *host = NULL;
	g_autoptr(GInetAddress) addr = NULL;
	g_autoptr(GSocketAddress) sa = NULL;
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	struct sockaddr_storage native;
	guint16 port;

	if (!parse_listen(listen, &host, &port, error))
		return NULL;
	addr = g_inet_address_new_from_string(host);
	if (!addr) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "listen address '%s' is not a numeric IP address", host);
		return NULL;
	}
	sa = g_inet_socket_address_new(addr, port);
	sock = g_socket_new(g_inet_address_get_family(addr), G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
	if (!sock)
		return NULL;
	/* Several processes on one port: the kernel spreads the connections.
	 * bind(2) itself, as g_socket_bind() turns SO_REUSEPORT off for TCP. */
	g_socket_set_listen_backlog(sock, 256);
	if (!g_socket_set_option(sock, SOL_SOCKET, SO_REUSEADDR, 1, error) ||
	    (reuse_port && !g_socket_set_option(sock, SOL_SOCKET, SO_REUSEPORT, 1, error)) ||
	    !g_socket_address_to_native(sa, &native, sizeof(native), error))
		return NULL;
	if (bind(g_socket_get_fd(sock), (struct sockaddr *)&native, g_socket_address_get_native_size(sa)) < 0) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "cannot listen on %s: %s", listen, g_strerror(errno));
		return NULL;
	}
	bound = g_socket_get_local_address(sock, error);
	if (!bound)
		return NULL;
	*port_out = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	if (host_out)
		*host_out = g_steal_pointer(&host);
	return g_steal_pointer(&sock);
}

static gboolean
listen_on(CpHttpServer *s, const char *listen, gboolean reuse_port, GError **error)
{
	g_autoptr(GSocket) sock = bind_socket(listen, reuse_port, NULL, &s->port, error);

	if (!sock)
		return FALSE;
	if (!g_socket_listen(sock, error) ||
	    !g_socket_listener_add_socket(G_SOCKET_LISTENER(s->service), sock, NULL, error)) {
		g_prefix_error(error, "cannot listen on %s: ", listen);
		return FALSE;
	}
	return TRUE;
}

GSocket *
cp_http_reserve_port(const char *listen, char **bound, guint16 *port, GError **error)
{
	g_autofree char *host = NULL;
	GSocket *sock = bind_socket(listen, TRUE, &host, port, error);

	if (sock && bound)
		*bound = g_strdup_printf(strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, *port);
	return sock;
}

static CpHttpServer *
server_new(const CpHttpConfig *cfg, GError **error)
{
	g_autoptr(CpHttpServer) s = g_new0(CpHttpServer, 1);
	s->cfg = *cfg;
	if (!s->cfg.max_connections)
		s->cfg.max_connections = 64;
	if (!s->cfg.connection_timeout)
		s->cfg.connection_timeout = 30;
	if (!s->cfg.body_max)
		s->cfg.body_max = 16384;
	if (!s->cfg.request_timeout)
		s->cfg.request_timeout = 10;
	if (!s->cfg.max_per_source)
		s->cfg.max_per_source = 16;
	if (!s->cfg.max_unauthenticated)
		s->cfg.max_unauthenticated = 32;
	s->per_source = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	s->endpoints = g_ptr_array_new_with_free_func(endpoint_free);
	s->counters = g_ptr_array_new_with_free_func(counter_free);
	s->soup = soup_server_new("server-header", "cellprov ", NULL);
	g_signal_connect(s->soup, "request-read", G_CALLBACK(on_request_read), s);
	g_signal_connect(s->soup, "request-finished", G_CALLBACK(on_request_finished), s);
	g_signal_connect(s->soup, "request-aborted", G_CALLBACK(on_request_finished), s);
	s->service = g_socket_service_new();
	return g_steal_pointer(&s);
}

CpHttpServer *
cp_http_server_new(const CpHttpConfig *cfg, GError **error)
{
	g_autoptr(CpHttpServer) s = server_new(cfg, error);

	if (!s)
		return NULL;
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
	if (!listen_on(s, cfg->listen, cfg->reuse_port, error))
		return NULL;
	g_signal_connect(s->service, "incoming", G_CALLBACK(on_incoming), s);
	g_socket_service_start(s->service);

	if (cfg->metrics_listen) {
		CpHttpConfig oc = { .listen = cfg->metrics_listen, .max_connections = 8, .max_per_source = 8,
				    .max_unauthenticated = 8, .body_max = 1, .reuse_port = cfg->reuse_port };
		g_autofree char *host = NULL, *own = NULL;
		guint16 port;

		/* Worker k of a process's workers answers for itself on the
		 * k-th port after metrics-listen's (any free one for port 0):
		 * one port for all would answer a scrape with any one of them. */
		if (cfg->worker && parse_listen(cfg->metrics_listen, &host, &port, NULL) && port) {
			if (port + cfg->worker > 65535) {
				cp_set_error(error, CP_ERR_BAD_VALUE, "metrics-listen: no port %u + %u for worker %u",
					     port, cfg->worker, cfg->worker);
				return NULL;
			}
			own = g_strdup_printf(strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port + cfg->worker);
			oc.listen = own;
			oc.reuse_port = FALSE;
		}

		s->ops = server_new(&oc, error);
		if (!s->ops)
			return NULL;
		s->ops->main = s;
		if (!listen_on(s->ops, oc.listen, oc.reuse_port, error)) {
			g_prefix_error(error, "metrics-listen: ");
			return NULL;
		}
		/* no body is read there: body_max 1 refuses any */
		soup_server_add_early_handler(s->ops->soup, NULL, early_handler, s->ops, NULL);
		soup_server_add_handler(s->ops->soup, NULL, handle_ops, s->ops, NULL);
		g_signal_connect(s->ops->service, "incoming", G_CALLBACK(on_incoming), s->ops);
		g_socket_service_start(s->ops->service);
	}
	return g_steal_pointer(&s);
}

guint16
cp_http_server_get_metrics_port(CpHttpServer *s)
{
	return s->ops ? s->ops->port : 0;
}

void
cp_http_server_free(CpHttpServer *s)
{
	if (!s)
		return;
	g_clear_pointer(&s->ops, cp_http_server_free);
	if (s->service) {
		g_socket_service_stop(s->service);
		g_socket_listener_close(G_SOCKET_LISTENER(s->service));
		g_object_unref(s->service);
	}
	if (s->soup)
		g_signal_handlers_disconnect_by_data(s->soup, s);
	/* connections libsoup still holds must not reach a freed server */
	while (s->conns.head) {
		Conn *c = s->conns.head->data;

		g_object_weak_unref(G_OBJECT(c->conn), conn_gone, c);
		c->counted = FALSE;
		conn_gone(c, NULL);
	}
	g_clear_object(&s->soup);
	g_clear_object(&s->tls);
	g_clear_object(&s->client_db);
	g_clear_pointer(&s->per_source, g_hash_table_unref);
	g_clear_pointer(&s->endpoints, g_ptr_array_unref);
	g_clear_pointer(&s->counters, g_ptr_array_unref);
	g_free(s);
}

void
cp_http_server_add_handler(CpHttpServer *s, const char *path, SoupServerCallback callback, gpointer data)
{
	/* libsoup runs only the early handler of the path that matched */
	endpoint_add(s, path);
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
	/* A database's error text names its host, socket or file: the log
	 * has it, the client one sentence */
	if (strcmp(code, "storage") == 0) {
		g_warning("request=%s storage: %s", cp_http_request_id(msg), message);
		g_free(message);
		message = g_strdup("the network's database failed: try again later");
	}
	json = error_json(code, number, message);
	g_object_set_data_full(G_OBJECT(msg), REQUEST_CODE, g_strdup(code), g_free);
	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, json, strlen(json));
}

void
cp_http_reply_cp_error(SoupServerMessage *msg, guint status, CpError err, const char *message)
{
	cp_http_reply_error(msg, status, cp_error_name(err), err, "%s",
			    message ? message : cp_error_message(err));
}

/*
 * json-glib keeps the last of two members with one name without a word:
 * count the members it parses into each object and compare with what the
 * object holds at its end.
 */
typedef struct {
	GHashTable *members;         /* JsonObject -> members parsed */
	char *name;                  /* the first repeated member name */
} Dup;

static void
on_object_member(JsonParser *parser, JsonObject *object, const char *name, gpointer data)
{
	Dup *d = data;
	guint n;

	if (!d->members)
		d->members = g_hash_table_new(NULL, NULL);
	n = GPOINTER_TO_UINT(g_hash_table_lookup(d->members, object)) + 1;
	g_hash_table_insert(d->members, object, GUINT_TO_POINTER(n));
	if (!d->name && json_object_get_size(object) < n)
		d->name = g_utf8_make_valid(name, -1);
}

static void
on_object_end(JsonParser *parser, JsonObject *object, gpointer data)
{
	Dup *d = data;

	if (d->members)
		g_hash_table_remove(d->members, object);
}

JsonObject *
cp_http_request_json(SoupServerMessage *msg)
{
	Dup dup = { 0 };
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
	g_signal_connect(parser, "object-member", G_CALLBACK(on_object_member), &dup);
	g_signal_connect(parser, "object-end", G_CALLBACK(on_object_end), &dup);
	if (!json_parser_load_from_data(parser, g_bytes_get_data(bytes, NULL),
					(gssize)g_bytes_get_size(bytes), &error)) {
		g_clear_pointer(&dup.members, g_hash_table_unref);
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-json", 0,
				    "the request body is not JSON");
		return NULL;
	}
	g_clear_pointer(&dup.members, g_hash_table_unref);
	if (dup.name) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
				    "the member '%s' appears twice in one object", dup.name);
		g_free(dup.name);
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
