/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTP(S) server layer the SM and the AUSF share: libsoup 3 behind our
 * own listening socket, so that we decide how many connections a client
 * may hold and for how long (SoupServer alone has neither limit), plus the
 * JSON reply and error helpers that keep the error format the same on both.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "cp-error.h"

typedef struct {
	const char *listen;          /* "host:port"; port 0 picks a free one */
	const char *tls_certificate; /* PEM file; NULL: plain HTTP */
	const char *tls_key;         /* PEM file; NULL: in tls_certificate */
	const char *client_ca;       /* PEM roots for client certificates; NULL: none asked */
	guint max_connections;       /* connections beyond this are closed at once */
	guint connection_timeout;    /* seconds a handler may take to answer */
	gsize body_max;              /* request body limit in bytes */
	guint request_timeout;       /* seconds from accept (or the last answer) to a complete request */
	guint max_per_source;        /* open connections from one IP address */
	guint max_unauthenticated;   /* connections no request authenticated yet */
	gboolean reuse_port;         /* SO_REUSEPORT: several processes on one port */
	const char *metrics_listen;  /* "host:port" of /metrics and /healthz (plain HTTP); NULL: none */
	guint worker;                /* this process's worker number (0: the first or only one): its
				      * metrics on metrics_listen's port + worker */
} CpHttpConfig;

/* request-timeout, max-connections-per-source, max-unauthenticated,
 * reuse-port and metrics-listen of group; cfg keeps its other members. */
gboolean cp_http_config_load(CpHttpConfig *cfg, GKeyFile *kf, const char *group, GError **error);

typedef struct _CpHttpServer CpHttpServer;

CpHttpServer *cp_http_server_new(const CpHttpConfig *cfg, GError **error);
void cp_http_server_free(CpHttpServer *s);
/* path NULL: every path without its own handler. The body limit applies
 * to every handler added this way. */
void cp_http_server_add_handler(CpHttpServer *s, const char *path, SoupServerCallback callback, gpointer data);
guint16 cp_http_server_get_port(CpHttpServer *s);
/* The client certificate the connection of msg presented and that chains
 * to client_ca, or NULL. */
GTlsCertificate *cp_http_server_get_peer_certificate(CpHttpServer *s, SoupServerMessage *msg);
/* A socket bound to listen (host:port, port 0 any) with SO_REUSEPORT and
 * not listening: it holds the port for processes that listen on it with
 * SO_REUSEPORT, and takes none of their connections. *bound is
 * "host:port" with the port chosen. */
GSocket *cp_http_reserve_port(const char *listen, char **bound, guint16 *port, GError **error);
/* Write the bound port (decimal + newline) to path, atomically. */
gboolean cp_http_server_write_port(CpHttpServer *s, const char *path, GError **error);
/* The port of metrics_listen, 0 without one. */
guint16 cp_http_server_get_metrics_port(CpHttpServer *s);

/* A request on msg's connection proved who sends it: the connection no
 * longer counts against max_unauthenticated. */
void cp_http_server_set_authenticated(CpHttpServer *s, SoupServerMessage *msg);

/* The request's id: its X-Request-Id when that is 1-64 characters of
 * [A-Za-z0-9._-], else one made up; logged with the request's outcome. */
const char *cp_http_request_id(SoupServerMessage *msg);

/* A counter of the program's own for /metrics (value read when scraped). */
void cp_http_server_add_counter(CpHttpServer *s, const char *name, const char *help, const guint64 *value);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpHttpServer, cp_http_server_free)

/*
 * Error body: {"error": {"code": "<stable string>", "number": <CpError or 0>,
 * "message": "<human sentence>"}}. code strings never change meaning.
 */
void cp_http_reply_error(SoupServerMessage *msg, guint status, const char *code,
			 CpError number, const char *fmt, ...) G_GNUC_PRINTF(5, 6);
/* A CpError: code is cp_error_name(), number the value. */
void cp_http_reply_cp_error(SoupServerMessage *msg, guint status, CpError err, const char *message);
void cp_http_reply_json(SoupServerMessage *msg, guint status, JsonBuilder *b);

/* Parse the request body as a JSON object; replies with an error and
 * returns NULL when it is not one (or not application/json), or when an
 * object repeats a member name (bad-request). */
JsonObject *cp_http_request_json(SoupServerMessage *msg);

/* The token of "Authorization: Bearer <token>", or NULL. */
char *cp_http_bearer(SoupServerMessage *msg);

/* Member accessors that do not abort on a wrong type: NULL when absent
 * or not a string. */
const char *cp_json_string(JsonObject *o, const char *name);
/* base64 member decoded, at most max bytes; NULL when absent or invalid. */
GBytes *cp_json_base64(JsonObject *o, const char *name, gsize max);
