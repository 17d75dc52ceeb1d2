/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small HTTPS client on GIO for the device (no libsoup there): one
 * HTTP/1.1 POST of a JSON body per TLS connection (Connection: close),
 * the server's certificate checked against a GTlsDatabase (a PEM CA file
 * or the system's). The answer is framed by its Content-Length (required
 * for a body, at most CP_HTTPS_MAX_BODY bytes); 204 has no body.
 *
 * Errors are in G_IO_ERROR (connection, timeout, malformed or oversized
 * answer) or G_TLS_ERROR (handshake, certificate refused).
 */
#pragma once

#include <gio/gio.h>

#define CP_HTTPS_MAX_BODY (64 * 1024)
#define CP_HTTPS_MAX_HEAD (8 * 1024)

/* The CA certificates of a PEM file; NULL path: the system's database. */
GTlsDatabase *cp_https_database_new(const char *ca_file, GError **error);

/*
 * POST body (application/json) to base_url (https://host[:port][/prefix])
 * followed by path ("/v1/device/poll"). database NULL: the system's. The
 * whole exchange, connection included, is bounded by timeout_ms.
 */
void cp_https_post_async(const char *base_url, const char *path, GTlsDatabase *database,
			 GBytes *body, guint timeout_ms, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data);
/* The status code (100..599), *body_out the body (empty for none); 0 and
 * an error when the exchange failed. */
guint cp_https_post_finish(GAsyncResult *res, GBytes **body_out, GError **error);
