/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-crypto-openssl.h"
#include "cp-chain.h"

#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cp-glib.h"

G_DEFINE_QUARK(cp-chain-error-quark, cp_chain_error)

const char *
cp_chain_error_code(CpChainError code)
{
	switch (code) {
	case CP_CHAIN_ERROR_FETCH: return "chain-fetch-failed";
	case CP_CHAIN_ERROR_TIMEOUT: return "chain-fetch-timeout";
	case CP_CHAIN_ERROR_STATUS: return "chain-fetch-status";
	case CP_CHAIN_ERROR_TOO_LARGE: return "chain-too-large";
	case CP_CHAIN_ERROR_GARBAGE: return "chain-garbage";
	case CP_CHAIN_ERROR_UNTRUSTED: return "untrusted-chain";
	case CP_CHAIN_ERROR_EXPIRED: return "certificate-expired";
	case CP_CHAIN_ERROR_NOT_YET_VALID: return "certificate-not-yet-valid";
	case CP_CHAIN_ERROR_KEY_USAGE: return "key-usage";
	case CP_CHAIN_ERROR_KEY_TYPE: return "key-type";
	}
	return "chain-error";
}

/* ---- cache ---- */

typedef struct {
	char *url;
	GBytes *body;
	char *etag;
	gint64 expires;              /* monotonic, microseconds */
	GList link;                  /* in lru, most recent first */
	X509 *leaf;                  /* body parsed, once it was verified */
	STACK_OF(X509) *untrusted;
	gsize parsed_size;           /* counted for them in bytes */
} Entry;

struct _CpChainCache {
	GHashTable *entries;         /* url -> Entry */
	GQueue lru;
	guint max_entries;
	gsize max_bytes;
	gsize bytes;
	guint max_age;
	guint64 hits, misses;
};

static void
entry_free(gpointer data)
{
	Entry *e = data;

	g_free(e->url);
	g_bytes_unref(e->body);
	sk_X509_pop_free(e->untrusted, X509_free);
	X509_free(e->leaf);
	g_free(e->etag);
	g_free(e);
}

CpChainCache *
cp_chain_cache_new(guint max_entries, gsize max_bytes, guint max_age)
{
	CpChainCache *c = g_new0(CpChainCache, 1);

	c->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, entry_free);
	c->max_entries = max_entries;
	c->max_bytes = max_bytes;
	c->max_age = max_age;
	return c;
}

void
cp_chain_cache_free(CpChainCache *c)
{
	if (!c)
		return;
	g_hash_table_unref(c->entries);
	g_free(c);
}

const guint64 *
cp_chain_cache_hits(CpChainCache *c)
{
	return &c->hits;
}

const guint64 *
cp_chain_cache_misses(CpChainCache *c)
{
	return &c->misses;
}

guint
cp_chain_cache_size(CpChainCache *c)
{
	return g_hash_table_size(c->entries);
}

static void
cache_remove(CpChainCache *c, Entry *e)
{
	g_queue_unlink(&c->lru, &e->link);
	c->bytes -= g_bytes_get_size(e->body) + e->parsed_size;
	g_hash_table_remove(c->entries, e->url);
}

/* Seconds the answer may be reused, 0: not at all. */
static guint
cache_lifetime(CpChainCache *c, SoupMessageHeaders *h)
{
	g_autoptr(GHashTable) cc = NULL;
	const char *v = soup_message_headers_get_list(h, "Cache-Control");
	const char *age;
	guint64 n;

	if (!v)
		return 0;
	cc = soup_header_parse_param_list(v);
	if (g_hash_table_contains(cc, "no-store") || g_hash_table_contains(cc, "no-cache") ||
	    !(age = g_hash_table_lookup(cc, "max-age")) ||
	    !g_ascii_string_to_unsigned(age, 10, 0, G_MAXUINT32, &n, NULL))
		return 0;
	return (guint)MIN(n, c->max_age);
}

static void
cache_store(CpChainCache *c, const char *url, SoupMessageHeaders *h, GBytes *body)
{
	Entry *e = g_hash_table_lookup(c->entries, url);
	guint lifetime = cache_lifetime(c, h);
	gsize size = g_bytes_get_size(body);

	if (e)
		cache_remove(c, e);
	if (!lifetime || !c->max_entries || size > c->max_bytes)
		return;
	while (c->lru.length && (c->lru.length >= c->max_entries || c->bytes + size > c->max_bytes))
		cache_remove(c, c->lru.tail->data);
	e = g_new0(Entry, 1);
	e->url = g_strdup(url);
	e->body = g_bytes_ref(body);
	e->etag = g_strdup(soup_message_headers_get_one(h, "ETag"));
	e->expires = g_get_monotonic_time() + (gint64)lifetime * G_USEC_PER_SEC;
	e->link.data = e;
	g_queue_push_head_link(&c->lru, &e->link);
	c->bytes += size;
	g_hash_table_insert(c->entries, e->url, e);
}

/* ---- fetch ---- */

typedef struct {
	SoupSession *session;
	SoupMessage *msg;
	GInputStream *stream;
	GByteArray *body;
	gsize max_size;
	GCancellable *cancellable;   /* ours: cancelled by the deadline or the caller's */
	gulong caller_handler;
	GCancellable *caller;
	guint deadline_id;
	gboolean timed_out;
	guint timeout;
	CpChainCache *cache;
	char *url;
	GBytes *cached;              /* the stale entry being revalidated */
} Fetch;

static void
fetch_free(gpointer p)
{
	Fetch *f = p;

	if (f->deadline_id)
		g_source_remove(f->deadline_id);
	if (f->caller_handler)
		g_cancellable_disconnect(f->caller, f->caller_handler);
	g_clear_object(&f->caller);
	g_clear_object(&f->stream);
	g_clear_object(&f->msg);
	g_clear_object(&f->session);
	g_clear_object(&f->cancellable);
	g_free(f->url);
	g_clear_pointer(&f->cached, g_bytes_unref);
	if (f->body)
		g_byte_array_unref(f->body);
	g_free(f);
}

static gboolean
fetch_deadline(gpointer data)
{
	Fetch *f = data;

	f->deadline_id = 0;
	f->timed_out = TRUE;
	g_cancellable_cancel(f->cancellable);
	return G_SOURCE_REMOVE;
}

static void
caller_cancelled(GCancellable *c, gpointer data)
{
	g_cancellable_cancel(data);
}

static void
fetch_fail(GTask *task, GError *error)
{
	Fetch *f = g_task_get_task_data(task);

	/* The session's own I/O timeout is the same length as the deadline:
	 * whichever fires first, a silent server is a timeout */
	if (f->timed_out || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
		g_task_return_new_error(task, CP_CHAIN_ERROR, CP_CHAIN_ERROR_TIMEOUT,
					"the certificate server did not answer within %u s", f->timeout);
		g_error_free(error);
	} else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_task_return_error(task, error);
	} else {
		g_task_return_new_error(task, CP_CHAIN_ERROR, CP_CHAIN_ERROR_FETCH,
					"fetching the certificate chain failed: %s", error->message);
		g_error_free(error);
	}
	g_object_unref(task);
}

static void fetch_read(GTask *task);

static void
fetch_read_done(GObject *source, GAsyncResult *res, gpointer data)
{
	GTask *task = data;
	Fetch *f = g_task_get_task_data(task);
	GError *error = NULL;
	g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);

	if (!chunk) {
		fetch_fail(task, error);
		return;
	}
	if (g_bytes_get_size(chunk) == 0) {
		GBytes *body = g_byte_array_free_to_bytes(g_steal_pointer(&f->body));

		if (f->cache)
			cache_store(f->cache, f->url, soup_message_get_response_headers(f->msg), body);
		g_task_return_pointer(task, body, (GDestroyNotify)g_bytes_unref);
		g_object_unref(task);
		return;
	}
	if (f->body->len + g_bytes_get_size(chunk) > f->max_size) {
		g_task_return_new_error(task, CP_CHAIN_ERROR, CP_CHAIN_ERROR_TOO_LARGE,
					"the certificate chain is larger than %zu bytes", f->max_size);
		g_object_unref(task);
		return;
	}
	g_byte_array_append(f->body, g_bytes_get_data(chunk, NULL), (guint)g_bytes_get_size(chunk));
	fetch_read(task);
}

static void
fetch_read(GTask *task)
{
	Fetch *f = g_task_get_task_data(task);

	g_input_stream_read_bytes_async(f->stream, 4096, G_PRIORITY_DEFAULT, f->cancellable,
					fetch_read_done, task);
}

static void
fetch_sent(GObject *source, GAsyncResult *res, gpointer data)
{
	GTask *task = data;
	Fetch *f = g_task_get_task_data(task);
	GError *error = NULL;
	guint status;
	goffset len;

	f->stream = soup_session_send_finish(SOUP_SESSION(source), res, &error);
	if (!f->stream) {
		fetch_fail(task, error);
		return;
	}
	status = soup_message_get_status(f->msg);
	if (status == SOUP_STATUS_NOT_MODIFIED && f->cached) {
		/* still the chain we have: fresh again for as long as this
		 * answer says (cache_store keeps it only if it may) */
		f->cache->hits++;
		cache_store(f->cache, f->url, soup_message_get_response_headers(f->msg), f->cached);
		g_task_return_pointer(task, g_steal_pointer(&f->cached), (GDestroyNotify)g_bytes_unref);
		g_object_unref(task);
		return;
	}
	if (f->cache)
		f->cache->misses++;
	if (status != SOUP_STATUS_OK) {
		/* Our own phrase for the status, not the server's: its text would
		 * reach the companion and the log unchecked */
		g_task_return_new_error(task, CP_CHAIN_ERROR, CP_CHAIN_ERROR_STATUS,
					"the certificate server answered %u %s", status,
					soup_status_get_phrase(status));
		g_object_unref(task);
		return;
	}
	len = soup_message_headers_get_content_length(soup_message_get_response_headers(f->msg));
	if (len > 0 && (guint64)len > f->max_size) {
		g_task_return_new_error(task, CP_CHAIN_ERROR, CP_CHAIN_ERROR_TOO_LARGE,
					"the certificate chain is larger than %zu bytes", f->max_size);
		g_object_unref(task);
		return;
	}
	f->body = g_byte_array_new();
	fetch_read(task);
}

void
cp_chain_fetch_async(SoupSession *session, CpChainCache *cache, const char *url, gsize max_size,
		     guint timeout, GCancellable *cancellable, GAsyncReadyCallback callback,
		     gpointer user_data)
{
	GTask *task = g_task_new(NULL, cancellable, callback, user_data);
	Fetch *f = g_new0(Fetch, 1);
	Entry *e = cache ? g_hash_table_lookup(cache->entries, url) : NULL;

	g_task_set_task_data(task, f, fetch_free);
	if (e && g_get_monotonic_time() < e->expires) {
		cache->hits++;
		g_queue_unlink(&cache->lru, &e->link);
		g_queue_push_head_link(&cache->lru, &e->link);
		g_task_return_pointer(task, g_bytes_ref(e->body), (GDestroyNotify)g_bytes_unref);
		g_object_unref(task);
		return;
	}
	f->cache = cache;
	f->url = g_strdup(url);
	f->session = g_object_ref(session);
	f->max_size = max_size;
	f->timeout = timeout;
	f->cancellable = g_cancellable_new();
	if (cancellable) {
		f->caller = g_object_ref(cancellable);
		f->caller_handler = g_cancellable_connect(cancellable, G_CALLBACK(caller_cancelled),
							  g_object_ref(f->cancellable), g_object_unref);
	}
	f->msg = soup_message_new(SOUP_METHOD_GET, url);
	if (!f->msg) {
		g_task_return_new_error(task, CP_CHAIN_ERROR, CP_CHAIN_ERROR_FETCH, "not a valid URL");
		g_object_unref(task);
		return;
	}
	/* A redirect could lead anywhere, including to plain HTTP */
	soup_message_add_flags(f->msg, SOUP_MESSAGE_NO_REDIRECT);
	soup_message_headers_replace(soup_message_get_request_headers(f->msg), "Accept",
				     "application/pem-certificate-chain, application/x-pem-file, */*");
	if (e && e->etag) {
		f->cached = g_bytes_ref(e->body);
		soup_message_headers_replace(soup_message_get_request_headers(f->msg), "If-None-Match", e->etag);
	}
	/* The deadline covers the whole exchange: a server that trickles
	 * bytes fails as surely as a silent one */
	f->deadline_id = g_timeout_add_seconds(timeout, fetch_deadline, f);
	soup_session_send_async(session, f->msg, G_PRIORITY_DEFAULT, f->cancellable, fetch_sent, task);
}

GBytes *
cp_chain_fetch_finish(GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- verify ---- */

static void
chain_error(GError **error, CpChainError code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
chain_error(GError **error, CpChainError code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (error)
		*error = g_error_new_valist(CP_CHAIN_ERROR, code, fmt, ap);
	va_end(ap);
}

static gboolean
has_pem_garbage(const char *pem, gsize len)
{
	/* Only PEM blocks and whitespace: anything else means the server
	 * sent something that is not a chain (an HTML error page, ...) */
	const char *p = pem, *end = pem + len;

	while (p < end) {
		const char *b = g_strstr_len(p, end - p, "-----BEGIN CERTIFICATE-----");
		const char *e;

		for (const char *q = p; q < (b ? b : end); q++)
			if (!g_ascii_isspace(*q))
				return TRUE;
		if (!b)
			return FALSE;
		e = g_strstr_len(b, end - b, "-----END CERTIFICATE-----");
		if (!e)
			return TRUE;
		p = e + strlen("-----END CERTIFICATE-----");
	}
	return FALSE;
}

gboolean
cp_chain_parse(const void *pem, gsize len, X509 **leaf_out, STACK_OF(X509) **untrusted_out, GError **error)
{
	BIO *bio = NULL;
	X509 *leaf = NULL;
	STACK_OF(X509) *untrusted = NULL;
	int n = 0;

	if (len == 0 || len > G_MAXINT || memchr(pem, '\0', len) || has_pem_garbage(pem, len)) {
		chain_error(error, CP_CHAIN_ERROR_GARBAGE, "the certificate URL did not return a PEM chain");
		return FALSE;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	untrusted = sk_X509_new_null();
	if (!bio || !untrusted) {
		chain_error(error, CP_CHAIN_ERROR_FETCH, "out of memory");
		goto fail;
	}
	for (;;) {
		X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

		if (!x)
			break;
		if (++n > CP_CHAIN_MAX_CERTS) {
			X509_free(x);
			chain_error(error, CP_CHAIN_ERROR_GARBAGE, "the chain has more than %d certificates",
				    CP_CHAIN_MAX_CERTS);
			goto fail;
		}
		if (!leaf) {
			leaf = x;
		} else if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			chain_error(error, CP_CHAIN_ERROR_FETCH, "out of memory");
			goto fail;
		}
	}
	ERR_clear_error();
	if (!leaf || BIO_pending(bio) > 0) {
		chain_error(error, CP_CHAIN_ERROR_GARBAGE, "the certificate chain does not parse");
		goto fail;
	}
	BIO_free(bio);
	*leaf_out = leaf;
	*untrusted_out = untrusted;
	return TRUE;

fail:
	ERR_clear_error();
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	BIO_free(bio);
	return FALSE;
}

CpKey *
cp_chain_check(X509_STORE *anchors, X509 *leaf, STACK_OF(X509) *untrusted, gint64 now, GError **error)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	EVP_PKEY *pub;
	CpKey *key = NULL;
	char group[32] = "";
	int verr;

	if (!ctx || !X509_STORE_CTX_init(ctx, anchors, leaf, untrusted)) {
		chain_error(error, CP_CHAIN_ERROR_FETCH, "out of memory");
		goto out;
	}
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)now);
	if (X509_verify_cert(ctx) != 1) {
		verr = X509_STORE_CTX_get_error(ctx);
		switch (verr) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
			chain_error(error, CP_CHAIN_ERROR_EXPIRED, "a certificate of the chain has expired");
			break;
		case X509_V_ERR_CERT_NOT_YET_VALID:
			chain_error(error, CP_CHAIN_ERROR_NOT_YET_VALID, "a certificate of the chain is not valid yet");
			break;
		case X509_V_ERR_INVALID_PURPOSE:
		case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
		case X509_V_ERR_INVALID_CA:
			chain_error(error, CP_CHAIN_ERROR_KEY_USAGE, "chain: %s", X509_verify_cert_error_string(verr));
			break;
		default:
			chain_error(error, CP_CHAIN_ERROR_UNTRUSTED, "the chain does not lead to a trusted root: %s",
				    X509_verify_cert_error_string(verr));
		}
		goto out;
	}

	/* The device certificate: an end entity whose key both signs (the
	 * attestation) and agrees keys (ECIES) */
	if (X509_check_ca(leaf) != 0 || !(X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) ||
	    (X509_get_key_usage(leaf) & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) !=
		    (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) {
		chain_error(error, CP_CHAIN_ERROR_KEY_USAGE,
			    "the device certificate must be an end entity with key usage digitalSignature and keyAgreement");
		goto out;
	}
	pub = X509_get_pubkey(leaf);
	if (pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL) && strcmp(group, "prime256v1") == 0) {
		key = pub;
	} else {
		EVP_PKEY_free(pub);
		chain_error(error, CP_CHAIN_ERROR_KEY_TYPE, "the device key is not a P-256 key");
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return key;
}

CpKey *
cp_chain_verify(X509_STORE *anchors, const void *pem, gsize len, gint64 now, GError **error)
{
	X509 *leaf = NULL;
	STACK_OF(X509) *untrusted = NULL;
	CpKey *key;

	if (!cp_chain_parse(pem, len, &leaf, &untrusted, error))
		return NULL;
	key = cp_chain_check(anchors, leaf, untrusted, now, error);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	return key;
}

CpKey *
cp_chain_verify_cached(CpChainCache *c, const char *url, GBytes *chain, X509_STORE *anchors, gint64 now,
		       GError **error)
{
	Entry *e = c ? g_hash_table_lookup(c->entries, url) : NULL;
	gsize len;
	const void *pem = g_bytes_get_data(chain, &len);

	/* the entry holds a reference to its body: the same GBytes is the
	 * same text, parsed once (a new answer for the URL is a new entry) */
	if (!e || e->body != chain)
		return cp_chain_verify(anchors, pem, len, now, error);
	if (!e->leaf) {
		if (!cp_chain_parse(pem, len, &e->leaf, &e->untrusted, error))
			return NULL;
		/* the parsed certificates count against max_bytes too */
		e->parsed_size = CP_CHAIN_PARSED_FACTOR * len;
		c->bytes += e->parsed_size;
		while (c->bytes > c->max_bytes && c->lru.tail && c->lru.tail->data != e)
			cache_remove(c, c->lru.tail->data);
	}
	return cp_chain_check(anchors, e->leaf, e->untrusted, now, error);
}

X509_STORE *
cp_chain_anchors_load(const char *path, GError **error)
{
	X509_STORE *store = X509_STORE_new();

	if (!store || X509_STORE_load_file(store, path) != 1) {
		ERR_clear_error();
		X509_STORE_free(store);
		cp_set_error(error, CP_ERR_KEY, "cannot load trust anchors from %s", path);
		return NULL;
	}
	return store;
}
