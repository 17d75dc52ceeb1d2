/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device certificate chain, as the SM sees it (flow steps 3-4): fetched
 * from the certificate URL with a deadline and a size limit, then verified
 * to the SM's trust anchors with OpenSSL.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <openssl/x509.h>

#include "cp-crypto-openssl.h"

#define CP_CHAIN_ERROR (cp_chain_error_quark())
GQuark cp_chain_error_quark(void);

typedef enum {
	CP_CHAIN_ERROR_FETCH = 1,        /* connection, TLS or protocol failure */
	CP_CHAIN_ERROR_TIMEOUT,          /* no complete answer before the deadline */
	CP_CHAIN_ERROR_STATUS,           /* the server answered, but not 200 */
	CP_CHAIN_ERROR_TOO_LARGE,        /* more than the size limit */
	CP_CHAIN_ERROR_GARBAGE,          /* not a PEM certificate chain */
	CP_CHAIN_ERROR_UNTRUSTED,        /* no path to a trust anchor */
	CP_CHAIN_ERROR_EXPIRED,          /* a certificate is past notAfter */
	CP_CHAIN_ERROR_NOT_YET_VALID,    /* a certificate is before notBefore */
	CP_CHAIN_ERROR_KEY_USAGE,        /* device certificate not for signing and key agreement, or a CA */
	CP_CHAIN_ERROR_KEY_TYPE,         /* device key is not P-256 */
} CpChainError;

/* Stable string of a CpChainError for the SM's JSON errors. */
const char *cp_chain_error_code(CpChainError code);

#define CP_CHAIN_MAX_CERTS 8

/*
 * Chains fetched before, kept as HTTP caching allows: an answer with
 * Cache-Control max-age=N (N > 0, at most max_age seconds are believed)
 * is served again for that long; when it has an ETag, it is then
 * revalidated with If-None-Match. An answer without max-age, or with
 * no-store or no-cache, is not kept. At most max_entries chains and
 * max_bytes bytes of them, the least recently used going first.
 */
typedef struct _CpChainCache CpChainCache;

CpChainCache *cp_chain_cache_new(guint max_entries, gsize max_bytes, guint max_age);
void cp_chain_cache_free(CpChainCache *cache);
/* Counters for /metrics: answers served from the cache (fresh or
 * revalidated), and fetches that found nothing usable. */
const guint64 *cp_chain_cache_hits(CpChainCache *cache);
const guint64 *cp_chain_cache_misses(CpChainCache *cache);
guint cp_chain_cache_size(CpChainCache *cache);

/* GET url; the body, at most max_size bytes, within timeout seconds.
 * cache may be NULL. */
void cp_chain_fetch_async(SoupSession *session, CpChainCache *cache, const char *url, gsize max_size,
			  guint timeout, GCancellable *cancellable, GAsyncReadyCallback callback,
			  gpointer user_data);
GBytes *cp_chain_fetch_finish(GAsyncResult *result, GError **error);

/*
 * Verify a PEM chain (device certificate first) to anchors at time now
 * (Unix seconds). On success returns the device certificate's public key.
 */
CpKey *cp_chain_verify(X509_STORE *anchors, const void *pem, gsize len, gint64 now, GError **error);
/* Its two halves: the certificates of a PEM chain (the device
 * certificate, then the others; at most CP_CHAIN_MAX_CERTS, nothing else
 * in the text), and their verification to anchors at now. */
gboolean cp_chain_parse(const void *pem, gsize len, X509 **leaf, STACK_OF(X509) **untrusted, GError **error);
CpKey *cp_chain_check(X509_STORE *anchors, X509 *leaf, STACK_OF(X509) *untrusted, gint64 now, GError **error);

/*
 * cp_chain_verify of a chain cp_chain_fetch gave for url: when it is the
 * body the cache keeps for url, its certificates are parsed once and
 * kept beside it (counted as CP_CHAIN_PARSED_FACTOR times the PEM's
 * size against the cache's max_bytes), and every later call verifies
 * them again at now without parsing the text. cache may be NULL.
 */
#define CP_CHAIN_PARSED_FACTOR 3
CpKey *cp_chain_verify_cached(CpChainCache *cache, const char *url, GBytes *chain, X509_STORE *anchors,
				 gint64 now, GError **error);

/* A store holding the PEM certificates of path as trust anchors. */
X509_STORE *cp_chain_anchors_load(const char *path, GError **error);
