/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov-sm: the subscription manager of the reference network (flow
 * steps 2-8). A companion posts the certificate URL and the device record
 * it read from the tag; the SM fetches and verifies the chain, checks the
 * DeviceID, the attestation and the device's owner binding, has the AUSF
 * add the device, and answers with the profile (signed with the operator's
 * signing key), K'' and the nonce.
 *
 * POST /v1/provision, JSON in and out (docs/network.md has the fields and
 * every error code), and the device lifecycle under /v1/devices (the
 * owner's reprovision, transfer token, accept-transfer, decommission, the
 * device's signed receipts, the caller's devices).
 */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cp-crypto-openssl.h"
#include "cp-config.h"
#include "cellprov.h"
#include "cp-chain.h"
#include "cp-conf.h"
#include "cp-sm-store.h"
#include "cp-glib.h"
#include "cp-http.h"
#include "cp-workers.h"

typedef struct {
	char *name;
	char *supi;
	gboolean is_cert;               /* cert-sha256 rather than token-sha256 */
	uint8_t hash[CP_SHA256_LEN];
} Companion;

typedef struct {
	GKeyFile *kf;
	char *store;
	X509_STORE *anchors;
	GPtrArray *companions;
	GPtrArray *url_prefixes;        /* GUri, parsed once */
	gboolean allow_http;
	gboolean plain_http;
	gboolean allow_any_url;         /* no url-prefixes: fetch from anywhere */
	guint64 fetch_timeout;
	guint64 fetch_max;
	char *ausf_url;
	CpSecret *ausf_token;
	guint64 ausf_timeout;
	char plmn[7];
	char *network_name;
	char *apn;
	guint64 profile_lifetime;
	guint64 token_lifetime;
	guint64 decommission_timeout;
	guint64 max_connections;
	guint64 connection_timeout;
	guint64 body_max;
	CpSuite suites[2];
	gsize n_suites;
	CpKey *signing_key;          /* the SM's operator signing key */
	uint8_t op_chain[CP_CHAIN_MAX]; /* its chain, DER, signer first */
	size_t op_chain_len;
	CpStore *db;
	SoupSession *fetch_session;
	SoupSession *ausf_session;
	CpChainCache *chain_cache;
	guint64 cache_entries, cache_bytes, cache_max_age;
	CpHttpServer *http;
	GMainLoop *loop;
	guint in_flight;
} Sm;

static void
companion_free(gpointer p)
{
	Companion *c = p;

	g_free(c->name);
	g_free(c->supi);
	g_free(c);
}

/*
 * "<name> <companion SUPI> token-sha256:<hex>|cert-sha256:<hex>" a line.
 * Only hashes are kept: the file gives nobody a usable token.
 */
static gboolean
load_companions(Sm *sm, const char *path, GError **error)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, error))
		return FALSE;
	sm->companions = g_ptr_array_new_with_free_func(companion_free);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		g_auto(GStrv) f = NULL;
		const char *hex;
		Companion *c;

		g_strstrip(lines[i]);
		if (!*lines[i] || *lines[i] == '#')
			continue;
		f = g_strsplit_set(lines[i], " \t", -1);
		if (g_strv_length(f) != 3 || !cp_supi_valid(f[1]))
			goto bad;
		c = g_new0(Companion, 1);
		if (g_str_has_prefix(f[2], "token-sha256:")) {
			hex = f[2] + 13;
		} else if (g_str_has_prefix(f[2], "cert-sha256:")) {
			hex = f[2] + 12;
			c->is_cert = TRUE;
		} else {
			g_free(c);
			goto bad;
		}
		if (strlen(hex) != 64 || cp_hex_decode(hex, c->hash, sizeof(c->hash)) != CP_SHA256_LEN) {
			g_free(c);
			goto bad;
		}
		c->name = g_strdup(f[0]);
		c->supi = g_strdup(f[1]);
		g_ptr_array_add(sm->companions, c);
		continue;
bad:
		cp_set_error(error, CP_ERR_BAD_VALUE,
			     "%s line %u: want '<name> <SUPI> token-sha256:<64 hex>' or 'cert-sha256:<64 hex>'",
			     path, i + 1);
		return FALSE;
	}
	g_message("%u companion(s) known", sm->companions->len);
	return TRUE;
}

/* Who is asking: a bearer token, or else a TLS client certificate. */
static Companion *
authenticate(Sm *sm, SoupServerMessage *msg)
{
	g_autofree char *token = cp_http_bearer(msg);
	GTlsCertificate *peer = NULL;
	uint8_t h[CP_SHA256_LEN];
	gboolean cert = FALSE;
	Companion *found = NULL;

	if (token) {
		cp_sha256((const uint8_t *)token, strlen(token), h);
		cp_cleanse(token, strlen(token));
	} else if ((peer = cp_http_server_get_peer_certificate(sm->http, msg))) {
		g_autoptr(GByteArray) der = NULL;

		g_object_get(peer, "certificate", &der, NULL);
		if (!der)
			return NULL;
		cp_sha256(der->data, der->len, h);
		cert = TRUE;
	} else {
		return NULL;
	}
	/* Look at every entry so the time does not tell which one matched */
	for (guint i = 0; i < sm->companions->len; i++) {
		Companion *c = g_ptr_array_index(sm->companions, i);

		if (c->is_cert == cert && cp_memeq_consttime(c->hash, h, sizeof(h)) && !found)
			found = c;
	}
	if (found)
		cp_http_server_set_authenticated(sm->http, msg);
	return found;
}

/* ---- the provisioning flow ---- */

typedef enum {
	STEP_FIRST,
	STEP_FETCH_CHAIN,
	STEP_VERIFY_CHAIN,
	STEP_DEVICE_ID,
	STEP_ATTESTATION,
	STEP_BINDING,
	STEP_COUNTER,
	STEP_AUSF,
	STEP_PROFILE,
	STEP_STORE,
	STEP_LAST,
} Step;

#define N_STEPS (STEP_LAST - 1)

typedef struct {
	Sm *sm;
	SoupServerMessage *msg;
	Step step;
	Companion *companion;
	char *url;
	uint8_t url_device_id[CP_DEVICE_ID_LEN];
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	GBytes *record;
	CpDeviceRecord dr;
	CpSuite suite;
	GBytes *chain;
	CpKey *device_key;
	char *supi;
	uint8_t enc_cred[CP_ENC_CRED_MAX];
	size_t enc_cred_len;
	CpSecret *k_sm;
	CpSecret *k2;
	uint8_t nonce[CP_NONCE_LEN];
	guint64 profile_seq;
	CpOperation operation;
	guint64 binding_version;
	gboolean reserved;              /* this request made the 'claiming' binding row */
	gboolean from_release;          /* ... out of a released one (version + 1) */
	CpOperation kind;               /* asked for: claim (POST /v1/provision), reprovision, transfer */
	char *apn;                      /* reprovision: NULL = the SM's */
	char *network_name;
	GBytes *info;                   /* device record tags 0x01-0x06, input of K'' */
	guint64 generation;             /* the AUSF's key generation */
	guint64 replaces;               /* transfer: the replaced binding version */
	gboolean swapped;               /* transfer: this request swapped the binding */
	char *old_name;                 /* ... from this owner (to undo on failure) */
	char *old_supi;
	char token_hex[2 * CP_SHA256_LEN + 1];
	CpBuf profile;
	gint64 started;
	gboolean ausf_retry;            /* the AUSF call is being sent again */
} Provision;

static void release_reservation(Provision *p);
static gboolean take_token(Provision *p);
static void expire_releasing(Sm *sm, const char *id_hex);
static void undo_transfer(Provision *p);
static guint64 cp_json_int(JsonObject *o, const char *name, guint64 def);
static gboolean store_pending(Sm *sm, const char *id_hex, const char *kind, guint64 seq, const CpBuf *msg,
			      GError **error);

static void
provision_free(Provision *p)
{
	p->sm->in_flight--;
	g_object_unref(p->msg);
	g_free(p->url);
	if (p->record)
		g_bytes_unref(p->record);
	if (p->chain)
		g_bytes_unref(p->chain);
	cp_key_free(p->device_key);
	g_free(p->supi);
	g_free(p->apn);
	g_free(p->network_name);
	g_free(p->old_name);
	g_free(p->old_supi);
	if (p->info)
		g_bytes_unref(p->info);
	cp_secret_free(p->k_sm);
	cp_secret_free(p->k2);
	cp_cleanse(p->enc_cred, sizeof(p->enc_cred));
	cp_buf_clear(&p->profile);
	g_free(p);
}

static gint64
now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

/* How long a claim may be under way: the certificate fetch, the AUSF
 * call and a margin for the rest. An older 'claiming' binding was left
 * by an SM process that stopped in the middle. */
static guint64
claim_timeout(Sm *sm)
{
	return sm->fetch_timeout + sm->ausf_timeout + 60;
}

static void
provision_fail(Provision *p, guint status, const char *code, CpError number, const char *message)
{
	g_message("[%s] request=%s (%d/%d) failed: %s: %s", p->id_hex[0] ? p->id_hex : "-",
		  cp_http_request_id(p->msg), p->step, N_STEPS, code, message);
	release_reservation(p);
	cp_http_reply_error(p->msg, status, code, number, "%s", message);
	soup_server_message_unpause(p->msg);
	provision_free(p);
}

static void provision_step(Provision *p);

/*
 * Why a fetch failed (refused, unreachable, slow, an odd status, too
 * large, not PEM) goes to the log only: told to the companion, it would
 * make the SM a scanner of whatever the SM can reach.
 */
static void
chain_unavailable(Provision *p, const char *why)
{
	g_message("[%s] request=%s certificate chain from %s: %s", p->id_hex, cp_http_request_id(p->msg),
		  p->url, why);
	provision_fail(p, SOUP_STATUS_BAD_GATEWAY, "chain-fetch-failed", 0,
		       "the certificate chain could not be fetched from the certificate URL");
}

static void
chain_fetched(GObject *source, GAsyncResult *res, gpointer data)
{
	Provision *p = data;
	g_autoptr(GError) error = NULL;

	p->chain = cp_chain_fetch_finish(res, &error);
	if (!p->chain) {
		chain_unavailable(p, error->message);
		return;
	}
	p->step++;
	provision_step(p);
}

/*
 * A call to the AUSF that failed in transport may have gone out on a kept
 * connection the AUSF closed just then (idle at its request-timeout, or
 * given way at a connection limit): sent again once, on a connection of
 * its own, when sending it twice does what sending it once does. libsoup
 * 3 re-sends only GET, HEAD, OPTIONS, TRACE, PUT and DELETE itself,
 * SOUP_MESSAGE_IDEMPOTENT or not. Not after a timeout (the AUSF is slow,
 * not gone) or a TLS failure other than the peer's close.
 */
static gboolean
ausf_worth_resending(const GError *error)
{
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return FALSE;
	if (error->domain == G_TLS_ERROR)
		return g_error_matches(error, G_TLS_ERROR, G_TLS_ERROR_EOF);
	return TRUE;
}

static void call_ausf(Provision *p);

static void
ausf_answered(GObject *source, GAsyncResult *res, gpointer data)
{
	Provision *p = data;
	SoupMessage *m = soup_session_get_async_result_message(SOUP_SESSION(source), res);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GBytes) enc = NULL;
	g_autoptr(GBytes) k_sm = NULL;
	JsonNode *root;
	JsonObject *o;
	const char *supi;
	guint status;

	if (!body) {
		/* only a claim's call is idempotent (new-keys false) */
		if (p->operation == CP_OP_CLAIM && !p->ausf_retry && ausf_worth_resending(error)) {
			g_message("request=%s the AUSF call failed (%s): sending it again on a new connection",
				  cp_http_request_id(p->msg), error->message);
			p->ausf_retry = TRUE;
			call_ausf(p);
			return;
		}
		provision_fail(p, SOUP_STATUS_BAD_GATEWAY, "ausf-failed", 0, error->message);
		return;
	}
	status = soup_message_get_status(m);
	if (!json_parser_load_from_data(parser, g_bytes_get_data(body, NULL), (gssize)g_bytes_get_size(body), NULL) ||
	    !(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root)) {
		provision_fail(p, SOUP_STATUS_BAD_GATEWAY, "ausf-failed", 0, "the AUSF did not answer JSON");
		return;
	}
	o = json_node_get_object(root);
	if (status != SOUP_STATUS_OK) {
		JsonNode *en = json_object_get_member(o, "error");
		JsonObject *e = en && JSON_NODE_HOLDS_OBJECT(en) ? json_node_get_object(en) : NULL;
		const char *code = e ? cp_json_string(e, "code") : NULL;

		if (code && strcmp(code, "unknown-companion") == 0)
			provision_fail(p, SOUP_STATUS_FORBIDDEN, "unknown-companion", 0,
				       "the network holds no subscription for this companion");
		else if (code && strcmp(code, "storage") == 0)
			/* the AUSF's store: the network's storage, as the SM's is */
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE,
				       "the AUSF's store failed: try again");
		else
			provision_fail(p, SOUP_STATUS_BAD_GATEWAY, "ausf-failed", 0,
				       e && cp_json_string(e, "message") ? cp_json_string(e, "message") : "the AUSF refused");
		return;
	}
	supi = cp_json_string(o, "supi");
	enc = cp_json_base64(o, "enc-cred", CP_ENC_CRED_MAX);
	k_sm = cp_json_base64(o, "k-sm", CP_KDF_LEN);
	if (!supi || !cp_supi_valid(supi) || !g_str_has_prefix(supi, p->sm->plmn) || !enc || !k_sm ||
	    g_bytes_get_size(k_sm) != CP_KDF_LEN) {
		provision_fail(p, SOUP_STATUS_BAD_GATEWAY, "ausf-failed", 0, "the AUSF's answer is incomplete");
		return;
	}
	p->supi = g_strdup(supi);
	p->generation = cp_json_int(o, "generation", 1);
	p->enc_cred_len = g_bytes_get_size(enc);
	memcpy(p->enc_cred, g_bytes_get_data(enc, NULL), p->enc_cred_len);
	p->k_sm = cp_secret_new_from(g_bytes_get_data(k_sm, NULL), CP_KDF_LEN);
	cp_cleanse((void *)g_bytes_get_data(k_sm, NULL), CP_KDF_LEN);
	/* the answer's text holds K_SM too; the bytes are ours alone */
	cp_cleanse((void *)g_bytes_get_data(body, NULL), g_bytes_get_size(body));
	if (!p->k_sm) {
		provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", CP_ERR_CRYPTO, "out of memory");
		return;
	}
	p->step++;
	provision_step(p);
}

static void
call_ausf(Provision *p)
{
	Sm *sm = p->sm;
	g_autofree char *url = g_strconcat(sm->ausf_url, "/v1/devices", NULL);
	g_autoptr(SoupMessage) m = soup_message_new(SOUP_METHOD_POST, url);
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GBytes) body = NULL;
	g_autofree uint8_t *spki = NULL;
	g_autofree char *spki_b64 = NULL, *auth = NULL;
	size_t spki_len = 0;
	char *text;
	gsize len;

	spki = cp_pubkey_spki(p->device_key, &spki_len);
	if (!m || !spki) {
		provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", CP_ERR_CRYPTO,
			       "cannot build the AUSF request");
		return;
	}
	spki_b64 = g_base64_encode(spki, spki_len);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "companion");
	json_builder_add_string_value(b, p->companion->supi);
	json_builder_set_member_name(b, "device-id");
	json_builder_add_string_value(b, p->id_hex);
	json_builder_set_member_name(b, "public-key");
	json_builder_add_string_value(b, spki_b64);
	json_builder_set_member_name(b, "suite");
	json_builder_add_string_value(b, p->suite == CP_SUITE_A ? "A" : "B");
	/* A claim again (the device never completed its binding, or lost
	 * it) takes the keys it was given; a re-provisioning new ones. */
	json_builder_set_member_name(b, "new-keys");
	json_builder_add_boolean_value(b, p->operation != CP_OP_CLAIM);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	body = g_bytes_new_take(text, len);
	soup_message_set_request_body_from_bytes(m, "application/json", body);
	auth = g_strdup_printf("Bearer %.*s", (int)sm->ausf_token->len, (const char *)sm->ausf_token->data);
	soup_message_headers_replace(soup_message_get_request_headers(m), "Authorization", auth);
	cp_cleanse(auth, strlen(auth));
	/* the AUSF logs the same id: one provisioning, one id in both logs */
	soup_message_headers_replace(soup_message_get_request_headers(m), "X-Request-Id", cp_http_request_id(p->msg));
	/* libsoup sends a POST on a connection of its own unless it is
	 * flagged idempotent. A claim's call is (new-keys false: sent twice,
	 * it gives the same SUPI and keys twice): it goes over the kept
	 * connections, and is sent again once if a kept one fails under it
	 * (ausf_answered). A re-provisioning's or a transfer's makes a key
	 * generation each time it is sent: a connection of its own, which
	 * no idle close can race, and never sent twice. */
	soup_message_add_flags(m, SOUP_MESSAGE_NO_REDIRECT);
	if (p->operation == CP_OP_CLAIM)
		soup_message_add_flags(m, p->ausf_retry ? SOUP_MESSAGE_NEW_CONNECTION : SOUP_MESSAGE_IDEMPOTENT);
	soup_session_send_and_read_async(sm->ausf_session, m, G_PRIORITY_DEFAULT, NULL, ausf_answered, p);
}

/* A device record under the device's key: decoded, its attestation
 * signature checked, its counter in the range the database stores.
 * On failure, the HTTP status and the message to answer with. */
static CpError
record_verify(const uint8_t *rec, gsize len, CpKey *key, CpDeviceRecord *dr, guint *status, const char **why)
{
	CpError err = cp_device_record_verify(rec, len, key, dr);

	if (err == CP_OK && dr->att_counter > G_MAXINT64) {
		err = CP_ERR_BAD_VALUE;
		*why = "att_counter out of range";
	} else if (err != CP_OK) {
		*why = err == CP_ERR_SIGNATURE ? "the device record's attestation signature is wrong" : cp_error_message(err);
	}
	*status = err == CP_ERR_SIGNATURE ? SOUP_STATUS_FORBIDDEN : SOUP_STATUS_BAD_REQUEST;
	return err;
}

/* Counter strictly above the last accepted one, recorded in the same
 * statement so that two requests carrying one record cannot both pass. */
static int
accept_counter(Sm *sm, const char *id_hex, guint64 counter, GError **error)
{
	char hex[17];
	CpStmt *st;
	int rc;

	g_snprintf(hex, sizeof(hex), "%016" G_GINT64_MODIFIER "x", counter);
	st = cp_store_prepare(sm->db,
			      "INSERT INTO attestations (device_id, att_counter, updated) VALUES (?1, ?2, ?3) "
			      "ON CONFLICT(device_id) DO UPDATE SET att_counter = ?2, updated = ?3 "
			      "WHERE attestations.att_counter < ?2", error);
	if (!st)
		return -1;
	cp_stmt_bind_text(st, 1, id_hex);
	cp_stmt_bind_text(st, 2, hex);
	cp_stmt_bind_int64(st, 3, g_get_real_time() / G_USEC_PER_SEC);
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, error, "recording the attestation counter");
		return -1;
	}
	return cp_store_changes(sm->db) == 1 ? 1 : 0;
}

static gboolean
store_provisioning(Provision *p, GError **error)
{
	Sm *sm = p->sm;
	CpStmt *st;
	char nonce_hex[2 * CP_NONCE_LEN + 1], counter_hex[17], sha_hex[2 * CP_SHA256_LEN + 1];
	uint8_t sha[CP_SHA256_LEN];
	int rc;

	cp_hex_encode(p->nonce, sizeof(p->nonce), nonce_hex);
	g_snprintf(counter_hex, sizeof(counter_hex), "%016" G_GINT64_MODIFIER "x", p->dr.att_counter);
	cp_sha256(p->profile.data, p->profile.len, sha);
	cp_hex_encode(sha, sizeof(sha), sha_hex);
	st = cp_store_prepare(sm->db,
			      "INSERT INTO provisionings (device_id, profile_seq, companion, supi, suite, att_counter, "
			      "nonce, certificate_url, profile_sha256, created, operation, binding_version, generation) "
			      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
			      error);
	if (!st)
		return FALSE;
	cp_stmt_bind_text(st, 1, p->id_hex);
	cp_stmt_bind_int64(st, 2, (gint64)p->profile_seq);
	cp_stmt_bind_text(st, 3, p->companion->supi);
	cp_stmt_bind_text(st, 4, p->supi);
	cp_stmt_bind_text(st, 5, p->suite == CP_SUITE_A ? "A" : "B");
	cp_stmt_bind_text(st, 6, counter_hex);
	cp_stmt_bind_text(st, 7, nonce_hex);
	cp_stmt_bind_text(st, 8, p->url);
	cp_stmt_bind_text(st, 9, sha_hex);
	cp_stmt_bind_int64(st, 10, g_get_real_time() / G_USEC_PER_SEC);
	cp_stmt_bind_int64(st, 11, p->operation);
	cp_stmt_bind_int64(st, 12, (gint64)p->binding_version);
	cp_stmt_bind_int64(st, 13, (gint64)p->generation);
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, error, "storing the provisioning record");
		return FALSE;
	}
	return TRUE;
}

static gboolean
next_profile_seq(Provision *p, GError **error)
{
	CpStmt *st = cp_store_prepare(p->sm->db,
					    "SELECT COALESCE(MAX(s), 0) FROM (SELECT profile_seq AS s FROM provisionings "
					    "WHERE device_id = ?1 UNION ALL SELECT seq FROM commands WHERE device_id = ?1) AS seqs",
					    error);

	if (!st)
		return FALSE;
	cp_stmt_bind_text(st, 1, p->id_hex);
	if (cp_stmt_step(st) != CP_STORE_ROW) {
		cp_store_set_error(p->sm->db, error, "reading the profile sequence");
		cp_stmt_finalize(st);
		return FALSE;
	}
	p->profile_seq = (guint64)cp_stmt_column_int64(st, 0) + 1;
	cp_stmt_finalize(st);
	return TRUE;
}

/* ---- the owner binding (docs/network.md, "The owner binding") ---- */

/*
 * A device has at most one owner. A device without one is reserved for
 * this companion by the INSERT itself, so that of two companions claiming
 * it at once exactly one gets the row; the other, and anyone else while
 * the device is bound, is refused before the AUSF is asked for anything.
 * The owner again: a claim if the device says it has no working profile
 * (it lost or never completed its binding), else a reprovision, at the
 * same binding version. FALSE: replied with the failure.
 */
static gboolean
check_binding(Provision *p)
{
	Sm *sm = p->sm;
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autofree char *owner = NULL;
	guint attempt = 0;
	CpStmt *st;
	int rc;

again:
	/* a claim older than any provisioning lasts was left by an SM
	 * process that is gone: the device is claimable again */
	st = cp_store_prepare(sm->db, "DELETE FROM bindings WHERE device_id = ?1 AND state = 'claiming' AND updated < ?2",
			      &error);
	if (!st)
		goto storage;
	cp_stmt_bind_text(st, 1, p->id_hex);
	cp_stmt_bind_int64(st, 2, now - (gint64)claim_timeout(sm));
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, &error, "dropping an abandoned claim");
		goto storage;
	}
	st = cp_store_prepare(sm->db,
			      "INSERT INTO bindings (device_id, owner_name, owner_supi, binding_version, state, created, updated) "
			      "VALUES (?1, ?2, ?3, 1, 'claiming', ?4, ?4) ON CONFLICT(device_id) DO NOTHING", &error);
	if (!st)
		goto storage;
	cp_stmt_bind_text(st, 1, p->id_hex);
	cp_stmt_bind_text(st, 2, p->companion->name);
	cp_stmt_bind_text(st, 3, p->companion->supi);
	cp_stmt_bind_int64(st, 4, now);
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, &error, "reserving the owner binding");
		goto storage;
	}
	if (cp_store_changes(sm->db) == 1) {
		p->reserved = TRUE;
		p->operation = CP_OP_CLAIM;
		p->binding_version = 1;
		return TRUE;
	}
	/* a released device: anyone's, at the next binding version */
	st = cp_store_prepare(sm->db,
			      "UPDATE bindings SET owner_name = ?2, owner_supi = ?3, binding_version = binding_version + 1, "
			      "state = 'claiming', replaced_version = NULL, previous_supi = NULL, releasing_since = NULL, "
			      "updated = ?4 WHERE device_id = ?1 AND state = 'released' RETURNING binding_version", &error);
	if (!st)
		goto storage;
	cp_stmt_bind_text(st, 1, p->id_hex);
	cp_stmt_bind_text(st, 2, p->companion->name);
	cp_stmt_bind_text(st, 3, p->companion->supi);
	cp_stmt_bind_int64(st, 4, now);
	rc = cp_stmt_step(st);
	if (rc == CP_STORE_ROW) {
		p->binding_version = (guint64)cp_stmt_column_int64(st, 0);
		rc = cp_stmt_step(st);
	}
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, &error, "reserving the owner binding");
		goto storage;
	}
	if (p->binding_version) {
		p->reserved = p->from_release = TRUE;
		p->operation = CP_OP_CLAIM;
		return TRUE;
	}

	st = cp_store_prepare(sm->db, "SELECT owner_supi, binding_version FROM bindings WHERE device_id = ?1", &error);
	if (!st)
		goto storage;
	cp_stmt_bind_text(st, 1, p->id_hex);
	rc = cp_stmt_step(st);
	if (rc == CP_STORE_DONE && attempt++ < 3) {
		/* another SM process released its reservation between our
		 * statements: claim again */
		cp_stmt_finalize(st);
		goto again;
	}
	if (rc != CP_STORE_ROW) {
		cp_store_set_error(sm->db, &error, "reading the owner binding");
		cp_stmt_finalize(st);
		goto storage;
	}
	owner = g_strdup(cp_stmt_column_text(st, 0));
	p->binding_version = (guint64)cp_stmt_column_int64(st, 1);
	cp_stmt_finalize(st);
	if (g_strcmp0(owner, p->companion->supi) != 0) {
		provision_fail(p, SOUP_STATUS_CONFLICT, "already-claimed", 0,
			       "this device belongs to another owner: the current owner or the operator must release it first");
		return FALSE;
	}
	p->operation = p->dr.state == CP_DEVICE_UNPROVISIONED || p->dr.state == CP_DEVICE_FAILED
		       ? CP_OP_CLAIM : CP_OP_REPROVISION;
	return TRUE;

storage:
	provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, error->message);
	return FALSE;
}

/* A failed first claim leaves the device claimable: its reservation goes,
 * unless the owner's own concurrent request has bound it meanwhile. */
static void
release_reservation(Provision *p)
{
	CpStmt *st;

	undo_transfer(p);
	if (!p->reserved)
		return;
	p->reserved = FALSE;
	st = cp_store_prepare(p->sm->db, p->from_release ?
			      "UPDATE bindings SET state = 'released', binding_version = binding_version - 1 "
			      "WHERE device_id = ?1 AND state = 'claiming'" :
			      "DELETE FROM bindings WHERE device_id = ?1 AND state = 'claiming'", NULL);
	if (!st)
		return;
	cp_stmt_bind_text(st, 1, p->id_hex);
	if (cp_stmt_step(st) != CP_STORE_DONE)
		g_warning("[%s] cannot release the owner binding: %s", p->id_hex, cp_store_errmsg(p->sm->db));
	cp_stmt_finalize(st);
}

/* The binding holds once its profile is out: with the provisioning record,
 * in one transaction (store_provisioning's caller). */
static gboolean
bind_owner(Provision *p, GError **error)
{
	Sm *sm = p->sm;
	CpStmt *st;
	int rc;

	g_autofree uint8_t *spki = NULL;
	size_t spki_len = 0;

	spki = cp_pubkey_spki(p->device_key, &spki_len);
	if (!spki) {
		cp_set_error(error, CP_ERR_CRYPTO, "cannot encode the device key");
		return FALSE;
	}
	st = cp_store_prepare(sm->db,
			      "INSERT INTO bindings (device_id, owner_name, owner_supi, binding_version, state, created, updated, "
			      "device_spki, device_info, suite, certificate_url, device_supi) "
			      "VALUES (?1, ?2, ?3, ?4, 'bound', ?5, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(device_id) DO UPDATE SET "
			      "state = 'bound', updated = ?5, releasing_since = NULL, device_spki = ?6, device_info = ?7, "
			      "suite = ?8, certificate_url = ?9, device_supi = ?10 "
			      "WHERE bindings.owner_supi = ?3 AND bindings.binding_version = ?4", error);
	if (!st)
		return FALSE;
	cp_stmt_bind_blob(st, 6, spki, spki_len);
	cp_stmt_bind_blob(st, 7, g_bytes_get_data(p->info, NULL), g_bytes_get_size(p->info));
	cp_stmt_bind_text(st, 8, p->suite == CP_SUITE_A ? "A" : "B");
	cp_stmt_bind_text(st, 9, p->url);
	cp_stmt_bind_text(st, 10, p->supi);
	cp_stmt_bind_text(st, 1, p->id_hex);
	cp_stmt_bind_text(st, 2, p->companion->name);
	cp_stmt_bind_text(st, 3, p->companion->supi);
	cp_stmt_bind_int64(st, 4, (gint64)p->binding_version);
	cp_stmt_bind_int64(st, 5, g_get_real_time() / G_USEC_PER_SEC);
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, error, "storing the owner binding");
		return FALSE;
	}
	if (cp_store_changes(sm->db) != 1) {
		cp_set_error(error, CP_ERR_STORAGE, "the owner binding changed during the provisioning");
		return FALSE;
	}
	return TRUE;
}

static const char *
operation_name(CpOperation op)
{
	switch (op) {
	case CP_OP_CLAIM:
		return "claim";
	case CP_OP_REPROVISION:
		return "reprovision";
	case CP_OP_TRANSFER:
		return "transfer";
	}
	return "?";
}

static void
reply_ok(Provision *p)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *profile_b64 = g_base64_encode(p->profile.data, p->profile.len);
	g_autofree char *k2_b64 = g_base64_encode(p->k2->data, p->k2->len);
	g_autofree char *nonce_b64 = g_base64_encode(p->nonce, sizeof(p->nonce));

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "device-id");
	json_builder_add_string_value(b, p->id_hex);
	json_builder_set_member_name(b, "profile-seq");
	json_builder_add_int_value(b, (gint64)p->profile_seq);
	json_builder_set_member_name(b, "supi");
	json_builder_add_string_value(b, p->supi);
	json_builder_set_member_name(b, "operation");
	json_builder_add_string_value(b, operation_name(p->operation));
	json_builder_set_member_name(b, "binding-version");
	json_builder_add_int_value(b, (gint64)p->binding_version);
	if (p->operation == CP_OP_TRANSFER) {
		json_builder_set_member_name(b, "replaces");
		json_builder_add_int_value(b, (gint64)p->replaces);
	}
	json_builder_set_member_name(b, "generation");
	json_builder_add_int_value(b, (gint64)p->generation);
	json_builder_set_member_name(b, "profile");
	json_builder_add_string_value(b, profile_b64);
	json_builder_set_member_name(b, "k2");
	json_builder_add_string_value(b, k2_b64);
	json_builder_set_member_name(b, "nonce");
	json_builder_add_string_value(b, nonce_b64);
	json_builder_end_object(b);
	cp_http_reply_json(p->msg, SOUP_STATUS_OK, b);
	cp_cleanse(k2_b64, strlen(k2_b64));
	soup_server_message_unpause(p->msg);
}

static void
provision_step(Provision *p)
{
	Sm *sm = p->sm;
	g_autoptr(GError) error = NULL;
	CpError err;

	switch (p->step) {
	case STEP_FIRST:
		p->step++;
		G_GNUC_FALLTHROUGH;
	case STEP_FETCH_CHAIN:
		g_debug("[%s] (%d/%d) fetching the certificate chain", p->id_hex, p->step, N_STEPS);
		cp_chain_fetch_async(sm->fetch_session, sm->chain_cache, p->url, sm->fetch_max, sm->fetch_timeout,
				     NULL, chain_fetched, p);
		return;

	case STEP_VERIFY_CHAIN: {
		g_debug("[%s] (%d/%d) verifying the chain", p->id_hex, p->step, N_STEPS);
		/* a cached chain is parsed once, verified every time */
		p->device_key = cp_chain_verify_cached(sm->chain_cache, p->url, p->chain, sm->anchors,
						       g_get_real_time() / G_USEC_PER_SEC, &error);
		if (!p->device_key) {
			if (error->code == CP_CHAIN_ERROR_GARBAGE)
				chain_unavailable(p, error->message);
			else
				provision_fail(p, SOUP_STATUS_FORBIDDEN, cp_chain_error_code(error->code), 0,
					       error->message);
			return;
		}
		p->step++;
	}
		G_GNUC_FALLTHROUGH;
	case STEP_DEVICE_ID: {
		uint8_t id[CP_DEVICE_ID_LEN];

		g_debug("[%s] (%d/%d) checking the DeviceID", p->id_hex, p->step, N_STEPS);
		if (cp_device_id(p->device_key, id) != CP_OK) {
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", CP_ERR_CRYPTO,
				       "cannot hash the device key");
			return;
		}
		if (!cp_memeq_consttime(id, p->url_device_id, sizeof(id))) {
			provision_fail(p, SOUP_STATUS_FORBIDDEN, "device-id-mismatch", 0,
				       "the certificate's key does not hash to the DeviceID in the URL");
			return;
		}
		p->step++;
	}
		G_GNUC_FALLTHROUGH;
	case STEP_ATTESTATION: {
		gsize len;
		const uint8_t *rec = g_bytes_get_data(p->record, &len);

		guint status;
		const char *why;

		g_debug("[%s] (%d/%d) checking the attestation", p->id_hex, p->step, N_STEPS);
		err = record_verify(rec, len, p->device_key, &p->dr, &status, &why);
		if (err != CP_OK) {
			provision_fail(p, status, cp_error_name(err), err, why);
			return;
		}
		if (!cp_memeq_consttime(p->dr.device_id, p->url_device_id, CP_DEVICE_ID_LEN)) {
			provision_fail(p, SOUP_STATUS_FORBIDDEN, "device-id-mismatch", CP_ERR_WRONG_DEVICE,
				       "the device record is not from the device of the certificate URL");
			return;
		}
		if (p->info)
			g_bytes_unref(p->info);
		p->info = g_bytes_new(rec, p->dr.info_len);
		/* A suite both sides offer and that can seal to the certified
		 * key: B for the P-256 keys of docs/protocol.md; A would need an
		 * X25519 key (offering it is no reason to fail later, at the
		 * AUSF, with an error that suggests trying again) */
		p->suite = 0;
		for (gsize i = 0; i < sm->n_suites && !p->suite; i++)
			for (gsize j = 0; j < p->dr.n_suites; j++)
				if (p->dr.suites[j] == sm->suites[i] &&
				    (sm->suites[i] == CP_SUITE_B ? cp_pkey_is_p256(p->device_key)
								 : cp_pkey_is_x25519(p->device_key)))
					p->suite = sm->suites[i];
		if (!p->suite) {
			provision_fail(p, SOUP_STATUS_BAD_REQUEST, cp_error_name(CP_ERR_SUITE), CP_ERR_SUITE,
				       "the device offers no ECIES suite that this SM uses and its key can receive");
			return;
		}
		p->step++;
	}
		G_GNUC_FALLTHROUGH;
	case STEP_BINDING:
		g_debug("[%s] (%d/%d) checking the owner binding", p->id_hex, p->step, N_STEPS);
		if (p->kind == CP_OP_CLAIM ? !check_binding(p) :
		    p->kind == CP_OP_TRANSFER ? !take_token(p) : FALSE)
			return;
		p->step++;
		G_GNUC_FALLTHROUGH;
	case STEP_COUNTER: {
		int fresh;

		g_debug("[%s] (%d/%d) checking the attestation counter", p->id_hex, p->step, N_STEPS);
		if (!p->record) {
			/* no tap: the device info stored at claim time */
			p->step++;
			call_ausf(p);
			return;
		}
		fresh = accept_counter(sm, p->id_hex, p->dr.att_counter, &error);
		if (fresh < 0) {
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, error->message);
			return;
		}
		if (!fresh) {
			provision_fail(p, SOUP_STATUS_CONFLICT, "stale-attestation", 0,
				       "the device record's counter is not above the last one seen: read the tag again");
			return;
		}
		p->step++;
	}
		G_GNUC_FALLTHROUGH;
	case STEP_AUSF:
		g_debug("[%s] (%d/%d) asking the AUSF to add the device", p->id_hex, p->step, N_STEPS);
		call_ausf(p);
		return;

	case STEP_PROFILE: {
		gsize info_len;
		const uint8_t *info = g_bytes_get_data(p->info, &info_len);
		cp_auto_secret *k_prof = NULL;
		CpProfile prof;

		g_debug("[%s] (%d/%d) building the profile", p->id_hex, p->step, N_STEPS);
		if (cp_random(p->nonce, sizeof(p->nonce)) != CP_OK ||
		    !(p->k2 = cp_keys_k2(p->k_sm, p->nonce, info, info_len)) ||
		    !(k_prof = cp_keys_k_prof(p->k_sm, p->nonce))) {
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", CP_ERR_CRYPTO,
				       "key derivation failed");
			return;
		}
		/* one transaction from the sequence number to the stored
		 * record: the device's writer lock keeps another SM process
		 * from taking the same number meanwhile */
		if (!cp_store_begin(sm->db, p->id_hex, &error) || !next_profile_seq(p, &error)) {
			cp_store_rollback(sm->db);
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, error->message);
			return;
		}
		memset(&prof, 0, sizeof(prof));
		prof.version = CP_PROFILE_VERSION;
		memcpy(prof.device_id, p->url_device_id, CP_DEVICE_ID_LEN);
		prof.profile_seq = p->profile_seq;
		memcpy(prof.nonce, p->nonce, CP_NONCE_LEN);
		if (sm->profile_lifetime) {
			prof.has_not_after = TRUE;
			prof.not_after = (guint64)(g_get_real_time() / G_USEC_PER_SEC) + sm->profile_lifetime;
		}
		memcpy(prof.enc_cred, p->enc_cred, p->enc_cred_len);
		prof.enc_cred_len = p->enc_cred_len;
		g_strlcpy(prof.plmn, sm->plmn, sizeof(prof.plmn));
		g_strlcpy(prof.network_name, p->network_name ? p->network_name : sm->network_name,
			  sizeof(prof.network_name));
		g_strlcpy(prof.supi, p->supi, sizeof(prof.supi));
		g_strlcpy(prof.apn, p->apn ? p->apn : sm->apn, sizeof(prof.apn));
		prof.operation = (uint8_t)p->operation;
		prof.binding_version = p->binding_version;
		prof.has_replaces = p->operation == CP_OP_TRANSFER;
		prof.replaces = p->replaces;
		memcpy(prof.op_chain, sm->op_chain, sm->op_chain_len);
		prof.op_chain_len = sm->op_chain_len;
		err = cp_profile_encode(&prof, sm->signing_key, k_prof, &p->profile);
		cp_cleanse(&prof, sizeof(prof));
		if (err != CP_OK) {
			cp_store_rollback(sm->db);
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, cp_error_name(err), err,
				       "the profile cannot be encoded");
			return;
		}
		p->step++;
	}
		G_GNUC_FALLTHROUGH;
	case STEP_STORE:
		g_debug("[%s] (%d/%d) storing the provisioning record", p->id_hex, p->step, N_STEPS);
		if ((!cp_store_in_transaction(sm->db) && !cp_store_begin(sm->db, p->id_hex, &error)) ||
		    !store_provisioning(p, &error) || !bind_owner(p, &error) ||
		    !store_pending(sm, p->id_hex, "profile", p->profile_seq, &p->profile, &error) ||
		    !cp_store_commit(sm->db, &error)) {
			cp_store_rollback(sm->db);
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, error->message);
			return;
		}
		p->reserved = FALSE;    /* bound now: a later failure keeps it */
		p->swapped = FALSE;
		p->step++;
		G_GNUC_FALLTHROUGH;
	case STEP_LAST: {
		g_autofree char *red = cp_redact(p->supi);

		g_message("[%s] provisioned: profile_seq %" G_GUINT64_FORMAT ", %s at binding version %"
			  G_GUINT64_FORMAT ", SUPI %s, %.1f ms",
			  p->id_hex, p->profile_seq, operation_name(p->operation),
			  p->binding_version, red,
			  (double)(g_get_monotonic_time() - p->started) / 1000.0);
		reply_ok(p);
		provision_free(p);
		return;
	}
	}
	g_assert_not_reached();
}

static int
uri_port(GUri *uri)
{
	int port = g_uri_get_port(uri);

	if (port > 0)
		return port;
	return g_ascii_strcasecmp(g_uri_get_scheme(uri), "https") == 0 ? 443 : 80;
}

/*
 * url-prefixes are compared as URLs, not as strings: same scheme, host and
 * port, and a path below the prefix's. As strings, "https://certs.example.net"
 * would also admit certs.example.net.evil.example and
 * certs.example.net@evil.example.
 */
static gboolean
url_allowed(Sm *sm, GUri *uri)
{
	if (sm->allow_any_url)
		return TRUE;
	for (guint i = 0; i < sm->url_prefixes->len; i++) {
		GUri *pre = g_ptr_array_index(sm->url_prefixes, i);

		if (g_ascii_strcasecmp(g_uri_get_scheme(pre), g_uri_get_scheme(uri)) == 0 &&
		    g_ascii_strcasecmp(g_uri_get_host(pre), g_uri_get_host(uri)) == 0 &&
		    uri_port(pre) == uri_port(uri) && g_str_has_prefix(g_uri_get_path(uri), g_uri_get_path(pre)))
			return TRUE;
	}
	return FALSE;
}

/* A certificate URL as the SM fetches it: absolute, with a host, without
 * user information (which only serves to disguise the host), query or
 * fragment. Dot segments are resolved by the parser, so what is checked
 * is what is fetched. */
static GUri *
url_parse(const char *url)
{
	GUri *uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);

	if (uri && (!g_uri_get_host(uri) || !*g_uri_get_host(uri) || g_uri_get_userinfo(uri) ||
		    g_uri_get_query(uri) || g_uri_get_fragment(uri))) {
		g_uri_unref(uri);
		return NULL;
	}
	return uri;
}

static gboolean
url_device_id(GUri *uri, uint8_t id[CP_DEVICE_ID_LEN])
{
	const char *last = strrchr(g_uri_get_path(uri), '/');

	return last && strlen(last + 1) == 32 && cp_hex_decode(last + 1, id, CP_DEVICE_ID_LEN) == CP_DEVICE_ID_LEN;
}

static void
handle_provision(SoupServer *server, SoupServerMessage *msg, const char *path,
		 GHashTable *query, gpointer data)
{
	Sm *sm = data;
	g_autoptr(JsonObject) req = NULL;
	g_autoptr(GUri) uri = NULL;
	const char *url, *claimed;
	uint8_t id[CP_DEVICE_ID_LEN];
	Companion *c;
	Provision *p;

	if (strcmp(soup_server_message_get_method(msg), "POST") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed", 0, "use POST");
		return;
	}
	c = authenticate(sm, msg);
	if (!c) {
		cp_http_reply_error(msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized", 0,
				    "unknown companion: present a registered bearer token or client certificate");
		return;
	}
	if (!(req = cp_http_request_json(msg)))
		return;
	claimed = cp_json_string(req, "companion");
	if (!claimed && json_object_has_member(req, "companion")) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0, "companion must be a string");
		return;
	}
	if (claimed && strcmp(claimed, c->supi) != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_FORBIDDEN, "companion-mismatch", 0,
				    "the companion identity does not match its credential");
		return;
	}
	url = cp_json_string(req, "certificate-url");
	if (!url || strlen(url) > 2048) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
				    "certificate_url (string) is required");
		return;
	}
	if (!g_str_has_prefix(url, "https://") && !(sm->allow_http && g_str_has_prefix(url, "http://"))) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "insecure-url", 0,
				    "the certificate URL must be https://");
		return;
	}
	uri = url_parse(url);
	if (!uri || !url_device_id(uri, id)) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-url", 0,
				    "the certificate URL must be https://<host>/.../<DeviceID as 32 hex>, "
				    "without user, query or fragment");
		return;
	}
	if (!url_allowed(sm, uri)) {
		g_autofree char *shown = g_uri_to_string(uri);

		g_message("request=%s certificate URL %s is outside url-prefixes", cp_http_request_id(msg), shown);
		cp_http_reply_error(msg, SOUP_STATUS_BAD_GATEWAY, "chain-fetch-failed", 0,
				    "the certificate chain could not be fetched from the certificate URL");
		return;
	}

	p = g_new0(Provision, 1);
	p->sm = sm;
	sm->in_flight++;
	p->msg = g_object_ref(msg);
	p->companion = c;
	p->kind = CP_OP_CLAIM;
	p->started = g_get_monotonic_time();
	cp_buf_init(&p->profile);
	memcpy(p->url_device_id, id, CP_DEVICE_ID_LEN);
	cp_hex_encode(p->url_device_id, CP_DEVICE_ID_LEN, p->id_hex);
	p->url = g_uri_to_string(uri);
	p->record = cp_json_base64(req, "device-record", CP_RECORD_MAX);
	if (!p->record) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
				    "device_record (base64, at most %d bytes) is required", CP_RECORD_MAX);
		provision_free(p);
		return;
	}
	g_message("[%s] request=%s provisioning asked by companion '%s'", p->id_hex, cp_http_request_id(msg), c->name);
	expire_releasing(sm, p->id_hex);
	soup_server_message_pause(msg);
	provision_step(p);
}

/* ---- the device lifecycle (docs/network.md, "The device lifecycle") ---- */


/* A non-negative integer member, or def. */
static guint64
cp_json_int(JsonObject *o, const char *name, guint64 def)
{
	JsonNode *n = json_object_get_member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64 ||
	    json_node_get_int(n) < 0)
		return def;
	return (guint64)json_node_get_int(n);
}

/* The last message issued to the device and not yet confirmed, kept for
 * the cellular path (a device polling the SM). */
static gboolean
store_pending(Sm *sm, const char *id_hex, const char *kind, guint64 seq, const CpBuf *msg, GError **error)
{
	CpStmt *st = cp_store_prepare(sm->db,
					    "INSERT INTO pending (device_id, kind, seq, message, created) "
					    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (device_id) DO UPDATE SET "
					    "kind = ?2, seq = ?3, message = ?4, created = ?5", error);
	int rc;

	if (!st)
		return FALSE;
	cp_stmt_bind_text(st, 1, id_hex);
	cp_stmt_bind_text(st, 2, kind);
	cp_stmt_bind_int64(st, 3, (gint64)seq);
	cp_stmt_bind_blob(st, 4, msg->data, msg->len);
	cp_stmt_bind_int64(st, 5, now_s());
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, error, "storing the pending message");
		return FALSE;
	}
	return TRUE;
}

/* Run one statement with text parameters (NULL: SQL NULL); -1 on error,
 * else the rows changed. */
static int
db_run(Sm *sm, const char *sql, GError **error, ...)
{
	CpStmt *st = cp_store_prepare(sm->db, sql, error);
	va_list ap;
	const char *v;
	int i = 1, rc;

	if (!st)
		return -1;
	va_start(ap, error);
	while ((v = va_arg(ap, const char *)) != (const char *)1)
		cp_stmt_bind_text(st, i++, v);
	va_end(ap);
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, error, "updating the database");
		return -1;
	}
	return cp_store_changes(sm->db);
}
#define END_ARGS ((const char *)1)

/* ---- calls to the AUSF after the fact: retire, remove ---- */

typedef void (*AusfDone)(gboolean ok, const char *message, gpointer data);

typedef struct {
	Sm *sm;
	GPtrArray *methods;
	GPtrArray *paths;
	GPtrArray *bodies;
	guint i;
	AusfDone done;
	gpointer data;
	gboolean retry;  /* the current call is being sent again */
} AusfJob;

static AusfJob *
ausf_job_new(Sm *sm, AusfDone done, gpointer data)
{
	AusfJob *j = g_new0(AusfJob, 1);

	j->sm = sm;
	j->methods = g_ptr_array_new();
	j->paths = g_ptr_array_new_with_free_func(g_free);
	j->bodies = g_ptr_array_new_with_free_func(g_free);
	j->done = done;
	j->data = data;
	return j;
}

static void
ausf_job_remove(AusfJob *j, const char *supi)
{
	g_ptr_array_add(j->methods, (gpointer)SOUP_METHOD_DELETE);
	g_ptr_array_add(j->paths, g_strconcat("/v1/subscribers/", supi, NULL));
	g_ptr_array_add(j->bodies, NULL);
}

static void
ausf_job_retire(AusfJob *j, const char *supi, guint64 below)
{
	g_ptr_array_add(j->methods, (gpointer)SOUP_METHOD_POST);
	g_ptr_array_add(j->paths, g_strconcat("/v1/subscribers/", supi, "/retire", NULL));
	g_ptr_array_add(j->bodies, g_strdup_printf("{\"below-generation\":%" G_GUINT64_FORMAT "}", below));
}

static void
ausf_job_free(AusfJob *j)
{
	g_ptr_array_unref(j->methods);
	g_ptr_array_unref(j->paths);
	g_ptr_array_unref(j->bodies);
	g_free(j);
}

static void ausf_job_next(AusfJob *j);

static void
ausf_job_answered(GObject *source, GAsyncResult *res, gpointer data)
{
	AusfJob *j = data;
	SoupMessage *m = soup_session_get_async_result_message(SOUP_SESSION(source), res);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);

	if (!body && !j->retry && ausf_worth_resending(error)) {
		/* retire and remove may be repeated: see ausf_worth_resending */
		j->retry = TRUE;
		ausf_job_next(j);
		return;
	}
	if (!body || soup_message_get_status(m) != SOUP_STATUS_OK) {
		g_autofree char *msg = g_strdup_printf("the AUSF refused %s %s: %s",
						       (const char *)j->methods->pdata[j->i], "/v1/subscribers/...",
						       body ? soup_message_get_reason_phrase(m) : error->message);

		g_warning("%s", msg);
		if (j->done)
			j->done(FALSE, msg, j->data);
		ausf_job_free(j);
		return;
	}
	j->i++;
	j->retry = FALSE;
	ausf_job_next(j);
}

static void
ausf_job_next(AusfJob *j)
{
	Sm *sm = j->sm;
	g_autofree char *url = NULL, *auth = NULL;
	g_autoptr(SoupMessage) m = NULL;
	const char *body;

	if (j->i >= j->paths->len) {
		if (j->done)
			j->done(TRUE, NULL, j->data);
		ausf_job_free(j);
		return;
	}
	url = g_strconcat(sm->ausf_url, (const char *)j->paths->pdata[j->i], NULL);
	m = soup_message_new(j->methods->pdata[j->i], url);
	body = j->bodies->pdata[j->i];
	if (body) {
		g_autoptr(GBytes) b = g_bytes_new(body, strlen(body));

		soup_message_set_request_body_from_bytes(m, "application/json", b);
	}
	auth = g_strdup_printf("Bearer %.*s", (int)sm->ausf_token->len, (const char *)sm->ausf_token->data);
	soup_message_headers_replace(soup_message_get_request_headers(m), "Authorization", auth);
	cp_cleanse(auth, strlen(auth));
	/* POST .../retire and DELETE: idempotent, over the kept connections */
	soup_message_add_flags(m, SOUP_MESSAGE_NO_REDIRECT |
			       (j->retry ? SOUP_MESSAGE_NEW_CONNECTION : SOUP_MESSAGE_IDEMPOTENT));
	soup_session_send_and_read_async(sm->ausf_session, m, G_PRIORITY_DEFAULT, NULL, ausf_job_answered, j);
}

/* ---- the binding as stored ---- */

typedef struct {
	char *owner_name;
	char *owner_supi;
	char *state;
	char *device_supi;
	char *previous_supi;
	char *suite;
	char *url;
	guint64 version;
	gint64 releasing_since;
	GBytes *spki;
	GBytes *info;
} Binding;

static void
binding_clear(Binding *b)
{
	g_free(b->owner_name);
	g_free(b->owner_supi);
	g_free(b->state);
	g_free(b->device_supi);
	g_free(b->previous_supi);
	g_free(b->suite);
	g_free(b->url);
	if (b->spki)
		g_bytes_unref(b->spki);
	if (b->info)
		g_bytes_unref(b->info);
	memset(b, 0, sizeof(*b));
}

static char *
col_text(CpStmt *st, int i)
{
	const char *t = cp_stmt_column_text(st, i);

	return t ? g_strdup(t) : NULL;
}

static GBytes *
col_blob(CpStmt *st, int i)
{
	gsize len;
	const void *d = cp_stmt_column_blob(st, i, &len);

	return d ? g_bytes_new(d, len) : NULL;
}

/* -1: storage error; 0: the SM never knew the device; 1: b is set. */
static int
binding_load(Sm *sm, const char *id_hex, Binding *b, GError **error)
{
	CpStmt *st = cp_store_prepare(sm->db,
					    "SELECT owner_name, owner_supi, state, device_supi, previous_supi, suite, "
					    "certificate_url, binding_version, COALESCE(releasing_since, 0), device_spki, "
					    "device_info FROM bindings WHERE device_id = ?1", error);
	int rc;

	memset(b, 0, sizeof(*b));
	if (!st)
		return -1;
	cp_stmt_bind_text(st, 1, id_hex);
	rc = cp_stmt_step(st);
	if (rc == CP_STORE_ROW) {
		b->owner_name = col_text(st, 0);
		b->owner_supi = col_text(st, 1);
		b->state = col_text(st, 2);
		b->device_supi = col_text(st, 3);
		b->previous_supi = col_text(st, 4);
		b->suite = col_text(st, 5);
		b->url = col_text(st, 6);
		b->version = (guint64)cp_stmt_column_int64(st, 7);
		b->releasing_since = cp_stmt_column_int64(st, 8);
		b->spki = col_blob(st, 9);
		b->info = col_blob(st, 10);
	}
	cp_stmt_finalize(st);
	if (rc != CP_STORE_ROW && rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, error, "reading the owner binding");
		return -1;
	}
	return rc == CP_STORE_ROW;
}

/*
 * A decommission whose receipt did not come within decommission-timeout:
 * the binding is released anyway (the device is claimable again) and the
 * AUSF removes its subscriber(s). For one device (id_hex) at each request
 * that touches it, or for all at start.
 */
static void
expire_releasing(Sm *sm, const char *id_hex)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) supis = g_ptr_array_new_with_free_func(g_free);
	CpStmt *st;
	gint64 limit = now_s() - (gint64)MIN(sm->decommission_timeout, (guint64)G_MAXINT32 * 4);
	char limit_s[24];
	int rc;

	st = cp_store_prepare(sm->db,
			      "UPDATE bindings SET state = 'released', previous_supi = NULL, updated = ?2 "
			      "WHERE state = 'releasing' AND releasing_since <= ?1 AND (CAST(?3 AS TEXT) IS NULL OR device_id = ?3) "
			      "RETURNING device_id, device_supi, previous_supi", &error);
	if (!st)
		goto fail;
	cp_stmt_bind_int64(st, 1, limit);
	cp_stmt_bind_int64(st, 2, now_s());
	cp_stmt_bind_text(st, 3, id_hex);
	while ((rc = cp_stmt_step(st)) == CP_STORE_ROW) {
		g_ptr_array_add(ids, col_text(st, 0));
		for (int i = 1; i <= 2; i++)
			if (cp_stmt_column_text(st, i))
				g_ptr_array_add(supis, col_text(st, i));
	}
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, &error, "releasing timed-out decommissions");
		goto fail;
	}
	g_snprintf(limit_s, sizeof(limit_s), "%" G_GINT64_FORMAT, limit);
	for (guint i = 0; i < ids->len; i++) {
		g_message("[%s] released: no decommission receipt within %" G_GUINT64_FORMAT " s",
			  (const char *)ids->pdata[i], sm->decommission_timeout);
		db_run(sm, "DELETE FROM pending WHERE device_id = ?1", NULL, ids->pdata[i], END_ARGS);
	}
	if (supis->len) {
		AusfJob *j = ausf_job_new(sm, NULL, NULL);

		for (guint i = 0; i < supis->len; i++)
			ausf_job_remove(j, supis->pdata[i]);
		ausf_job_next(j);
	}
	return;
fail:
	g_warning("%s", error->message);
}

/* ---- transfer tokens ---- */

static void
token_hash_hex(const char *token, char hex[2 * CP_SHA256_LEN + 1])
{
	uint8_t h[CP_SHA256_LEN];

	cp_sha256((const uint8_t *)token, strlen(token), h);
	cp_hex_encode(h, sizeof(h), hex);
}

/*
 * The new owner's token, consumed (UPDATE ... WHERE used = 0: of two
 * requests with one token exactly one changes the row), and the binding
 * swapped to the new owner at version v + 1 in the same transaction. Any
 * mismatch (unknown, used, expired, another new owner or device, a binding
 * that changed since the token was issued) is bad-token and changes
 * nothing. FALSE: replied with the failure.
 */
static gboolean
take_token(Provision *p)
{
	Sm *sm = p->sm;
	g_autoptr(GError) error = NULL;
	g_autofree char *tok_owner = NULL;
	g_autofree char *version_s = NULL, *next_s = NULL;
	Binding b = { 0 };
	CpStmt *st;
	guint64 tok_version = 0;
	gboolean found = FALSE;
	int rc;

	if (!cp_store_begin(sm->db, p->id_hex, &error))
		goto storage;
	st = cp_store_prepare(sm->db,
			      "UPDATE transfer_tokens SET used = 1 WHERE token_sha256 = ?1 AND device_id = ?2 AND "
			      "new_owner = ?3 AND used = 0 AND expires >= ?4 RETURNING owner_supi, binding_version", &error);
	if (!st)
		goto rollback;
	cp_stmt_bind_text(st, 1, p->token_hex);
	cp_stmt_bind_text(st, 2, p->id_hex);
	cp_stmt_bind_text(st, 3, p->companion->name);
	cp_stmt_bind_int64(st, 4, now_s());
	rc = cp_stmt_step(st);
	if (rc == CP_STORE_ROW) {
		found = TRUE;
		tok_owner = col_text(st, 0);
		tok_version = (guint64)cp_stmt_column_int64(st, 1);
		rc = cp_stmt_step(st);
	}
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, &error, "consuming the transfer token");
		goto rollback;
	}
	if (found && binding_load(sm, p->id_hex, &b, &error) < 0)
		goto rollback;
	if (!found || g_strcmp0(b.state, "bound") != 0 || g_strcmp0(b.owner_supi, tok_owner) != 0 ||
	    b.version != tok_version) {
		cp_store_rollback(sm->db);
		binding_clear(&b);
		provision_fail(p, SOUP_STATUS_FORBIDDEN, "bad-token", 0,
			       "no valid transfer token for this device and this companion (unknown, used, expired, "
			       "or the binding changed since it was issued)");
		return FALSE;
	}
	version_s = g_strdup_printf("%" G_GUINT64_FORMAT, b.version);
	next_s = g_strdup_printf("%" G_GUINT64_FORMAT, b.version + 1);
	if (db_run(sm, "UPDATE bindings SET owner_name = ?2, owner_supi = ?3, binding_version = ?4, "
		   "replaced_version = ?5, previous_supi = device_supi, state = 'bound', releasing_since = NULL "
		   "WHERE device_id = ?1 AND binding_version = ?5", &error,
		   p->id_hex, p->companion->name, p->companion->supi, next_s, version_s, END_ARGS) != 1 ||
	    !cp_store_commit(sm->db, &error)) {
		binding_clear(&b);
		if (!error)
			cp_set_error(&error, CP_ERR_STORAGE, "the owner binding changed during the transfer");
		goto rollback;
	}
	p->swapped = TRUE;
	p->old_name = g_steal_pointer(&b.owner_name);
	p->old_supi = g_steal_pointer(&b.owner_supi);
	p->replaces = b.version;
	p->binding_version = b.version + 1;
	p->operation = CP_OP_TRANSFER;
	binding_clear(&b);
	g_message("[%s] transfer token accepted: binding version %" G_GUINT64_FORMAT " replaces %" G_GUINT64_FORMAT,
		  p->id_hex, p->binding_version, p->replaces);
	return TRUE;

rollback:
	cp_store_rollback(sm->db);
storage:
	provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, error->message);
	return FALSE;
}

/* A transfer that failed after the swap (the AUSF refused, storage): the
 * old owner gets the device back and the token is valid again. */
static void
undo_transfer(Provision *p)
{
	g_autofree char *version_s = NULL, *next_s = NULL;

	if (!p->swapped)
		return;
	p->swapped = FALSE;
	version_s = g_strdup_printf("%" G_GUINT64_FORMAT, p->replaces);
	next_s = g_strdup_printf("%" G_GUINT64_FORMAT, p->replaces + 1);
	if (db_run(p->sm, "UPDATE bindings SET owner_name = ?2, owner_supi = ?3, binding_version = ?4, "
		   "replaced_version = NULL, device_supi = previous_supi, previous_supi = NULL "
		   "WHERE device_id = ?1 AND binding_version = ?5", NULL,
		   p->id_hex, p->old_name, p->old_supi, version_s, next_s, END_ARGS) != 1 ||
	    db_run(p->sm, "UPDATE transfer_tokens SET used = 0 WHERE token_sha256 = ?1", NULL,
		   p->token_hex, END_ARGS) != 1)
		g_warning("[%s] cannot undo the transfer", p->id_hex);
}

/* ---- the lifecycle endpoints ---- */

static const char *
receipt_status_name(uint8_t s)
{
	switch (s) {
	case CP_RECEIPT_ACCEPTED:
		return "accepted";
	case CP_RECEIPT_PROVISIONED:
		return "provisioned";
	case CP_RECEIPT_REJECTED:
		return "rejected";
	case CP_RECEIPT_FAILED:
		return "failed";
	case CP_RECEIPT_DECOMMISSIONED:
		return "decommissioned";
	}
	return "unknown";
}

static void
reply_devices(Sm *sm, SoupServerMessage *msg, Companion *c)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GError) error = NULL;
	CpStmt *st;
	int rc;

	st = cp_store_prepare(sm->db,
			      "SELECT b.device_id, b.binding_version, b.state, b.device_supi, b.replaced_version, "
			      "p.kind, p.seq FROM bindings b LEFT JOIN pending p ON p.device_id = b.device_id "
			      "WHERE b.owner_supi = ?1 AND b.state IN ('bound', 'releasing') ORDER BY b.device_id", &error);
	if (!st) {
		cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, "%s", error->message);
		return;
	}
	cp_stmt_bind_text(st, 1, c->supi);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "devices");
	json_builder_begin_array(b);
	while ((rc = cp_stmt_step(st)) == CP_STORE_ROW) {
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "device-id");
		json_builder_add_string_value(b, cp_stmt_column_text(st, 0));
		json_builder_set_member_name(b, "binding-version");
		json_builder_add_int_value(b, cp_stmt_column_int64(st, 1));
		json_builder_set_member_name(b, "state");
		json_builder_add_string_value(b, cp_stmt_column_text(st, 2));
		if (cp_stmt_column_text(st, 3)) {
			json_builder_set_member_name(b, "supi");
			json_builder_add_string_value(b, cp_stmt_column_text(st, 3));
		}
		if (!cp_stmt_column_null(st, 4)) {
			json_builder_set_member_name(b, "replaces");
			json_builder_add_int_value(b, cp_stmt_column_int64(st, 4));
		}
		if (cp_stmt_column_text(st, 5)) {
			json_builder_set_member_name(b, "pending");
			json_builder_add_string_value(b, cp_stmt_column_text(st, 5));
			json_builder_set_member_name(b, "pending-seq");
			json_builder_add_int_value(b, cp_stmt_column_int64(st, 6));
		}
		json_builder_end_object(b);
	}
	cp_stmt_finalize(st);
	json_builder_end_array(b);
	json_builder_end_object(b);
	if (rc != CP_STORE_DONE) {
		cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE,
				    "reading the devices: %s", cp_store_errmsg(sm->db));
		return;
	}
	cp_http_reply_json(msg, SOUP_STATUS_OK, b);
}

static Provision *
provision_new(Sm *sm, SoupServerMessage *msg, Companion *c, const uint8_t id[CP_DEVICE_ID_LEN])
{
	Provision *p = g_new0(Provision, 1);

	p->sm = sm;
	sm->in_flight++;
	p->msg = g_object_ref(msg);
	p->companion = c;
	p->started = g_get_monotonic_time();
	cp_buf_init(&p->profile);
	memcpy(p->url_device_id, id, CP_DEVICE_ID_LEN);
	cp_hex_encode(p->url_device_id, CP_DEVICE_ID_LEN, p->id_hex);
	return p;
}

/* Without a tap: the device as the SM stored it when it verified its
 * certificate. FALSE: replied. */
static gboolean
provision_from_binding(Provision *p, Binding *b)
{
	const uint8_t *d;

	if (!b->spki || !b->info || !b->suite || !b->url ||
	    !(p->device_key = cp_pubkey_from_spki((d = g_bytes_get_data(b->spki, NULL)), g_bytes_get_size(b->spki)))) {
		cp_http_reply_error(p->msg, SOUP_STATUS_CONFLICT, "no-device-key", 0,
				    "the SM holds no verified key for this device (bound before version 3): "
				    "claim it again with a tap first, or present its tap data");
		provision_free(p);
		return FALSE;
	}
	p->info = g_bytes_ref(b->info);
	p->suite = strcmp(b->suite, "A") == 0 ? CP_SUITE_A : CP_SUITE_B;
	p->url = g_strdup(b->url);
	return TRUE;
}

static void
reply_command(Sm *sm, SoupServerMessage *msg, const char *id_hex, Binding *b)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) jb = NULL;
	g_autofree char *cmd_b64 = NULL;
	cp_auto_buf out = CP_BUF_INIT;
	char sha_hex[2 * CP_SHA256_LEN + 1], now_str[24];
	uint8_t sha[CP_SHA256_LEN];
	CpStmt *st;
	CpCommand cmd;
	guint64 seq = 0;
	CpError err;
	int rc;

	if (!cp_store_begin(sm->db, id_hex, &error))
		goto storage;
	st = cp_store_prepare(sm->db,
			      "SELECT COALESCE(MAX(s), 0) FROM (SELECT profile_seq AS s FROM provisionings WHERE device_id = ?1 "
			      "UNION ALL SELECT seq FROM commands WHERE device_id = ?1) AS seqs", &error);
	if (!st)
		goto rollback;
	cp_stmt_bind_text(st, 1, id_hex);
	rc = cp_stmt_step(st);
	if (rc == CP_STORE_ROW)
		seq = (guint64)cp_stmt_column_int64(st, 0) + 1;
	cp_stmt_finalize(st);
	if (rc != CP_STORE_ROW) {
		cp_store_set_error(sm->db, &error, "reading the sequence number");
		goto rollback;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.version = CP_COMMAND_VERSION;
	cp_hex_decode(id_hex, cmd.device_id, CP_DEVICE_ID_LEN);
	cmd.seq = seq;
	cmd.command = CP_COMMAND_DECOMMISSION;
	cmd.binding_version = b->version;
	if (sm->profile_lifetime) {
		cmd.has_not_after = TRUE;
		cmd.not_after = (guint64)now_s() + sm->profile_lifetime;
	}
	memcpy(cmd.op_chain, sm->op_chain, sm->op_chain_len);
	cmd.op_chain_len = sm->op_chain_len;
	err = cp_command_encode(&cmd, sm->signing_key, &out);
	if (err != CP_OK) {
		cp_store_rollback(sm->db);
		cp_http_reply_cp_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, err, "the command cannot be encoded");
		return;
	}
	cp_sha256(out.data, out.len, sha);
	cp_hex_encode(sha, sizeof(sha), sha_hex);
	st = cp_store_prepare(sm->db,
			      "INSERT INTO commands (device_id, seq, command, companion, binding_version, command_sha256, created) "
			      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &error);
	if (!st)
		goto rollback;
	cp_stmt_bind_text(st, 1, id_hex);
	cp_stmt_bind_int64(st, 2, (gint64)seq);
	cp_stmt_bind_int64(st, 3, CP_COMMAND_DECOMMISSION);
	cp_stmt_bind_text(st, 4, b->owner_supi);
	cp_stmt_bind_int64(st, 5, (gint64)b->version);
	cp_stmt_bind_text(st, 6, sha_hex);
	cp_stmt_bind_int64(st, 7, now_s());
	rc = cp_stmt_step(st);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, &error, "storing the command");
		goto rollback;
	}
	g_snprintf(now_str, sizeof(now_str), "%" G_GINT64_FORMAT, now_s());
	if (db_run(sm, "UPDATE bindings SET state = 'releasing', releasing_since = COALESCE(releasing_since, ?2), "
		   "updated = ?2 WHERE device_id = ?1", &error, id_hex, now_str, END_ARGS) != 1 ||
	    !store_pending(sm, id_hex, "command", seq, &out, &error) ||
	    !cp_store_commit(sm->db, &error))
		goto rollback;
	g_message("[%s] decommission issued: seq %" G_GUINT64_FORMAT ", binding version %" G_GUINT64_FORMAT,
		  id_hex, seq, b->version);
	cmd_b64 = g_base64_encode(out.data, out.len);
	jb = json_builder_new();
	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "device-id");
	json_builder_add_string_value(jb, id_hex);
	json_builder_set_member_name(jb, "command");
	json_builder_add_string_value(jb, cmd_b64);
	json_builder_set_member_name(jb, "kind");
	json_builder_add_string_value(jb, "decommission");
	json_builder_set_member_name(jb, "seq");
	json_builder_add_int_value(jb, (gint64)seq);
	json_builder_set_member_name(jb, "binding-version");
	json_builder_add_int_value(jb, (gint64)b->version);
	json_builder_set_member_name(jb, "release-after");
	json_builder_add_int_value(jb, (gint64)sm->decommission_timeout);
	json_builder_end_object(jb);
	cp_http_reply_json(msg, SOUP_STATUS_OK, jb);
	return;
rollback:
	cp_store_rollback(sm->db);
storage:
	cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, "%s", error->message);
}

static void
reply_token(Sm *sm, SoupServerMessage *msg, Companion *c, const char *id_hex, Binding *b, JsonObject *req)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) jb = NULL;
	g_autofree char *version_s = NULL, *expires_s = NULL, *now_str = NULL;
	const char *name = cp_json_string(req, "new-owner");
	Companion *to = NULL;
	uint8_t raw[24];
	char token[2 * sizeof(raw) + 1], hash[2 * CP_SHA256_LEN + 1];
	gint64 expires = now_s() + (gint64)sm->token_lifetime;

	for (guint i = 0; name && i < sm->companions->len; i++)
		if (strcmp(((Companion *)sm->companions->pdata[i])->name, name) == 0)
			to = sm->companions->pdata[i];
	if (!name) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0, "new-owner (a companion name) is required");
		return;
	}
	if (!to) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "unknown-owner", 0, "this SM knows no companion '%s'", name);
		return;
	}
	if (strcmp(to->supi, c->supi) == 0) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0, "the device is already yours");
		return;
	}
	if (cp_random(raw, sizeof(raw)) != CP_OK) {
		cp_http_reply_cp_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, CP_ERR_CRYPTO, "no randomness");
		return;
	}
	cp_hex_encode(raw, sizeof(raw), token);
	cp_cleanse(raw, sizeof(raw));
	token_hash_hex(token, hash);
	version_s = g_strdup_printf("%" G_GUINT64_FORMAT, b->version);
	expires_s = g_strdup_printf("%" G_GINT64_FORMAT, expires);
	now_str = g_strdup_printf("%" G_GINT64_FORMAT, now_s());
	if (db_run(sm, "INSERT INTO transfer_tokens (token_sha256, device_id, owner_supi, new_owner, binding_version, "
		   "expires, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &error,
		   hash, id_hex, c->supi, to->name, version_s, expires_s, now_str, END_ARGS) != 1) {
		cp_cleanse(token, sizeof(token));
		cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, "%s",
				    error ? error->message : "token not stored");
		return;
	}
	g_message("[%s] transfer token issued by '%s' for '%s', valid %" G_GUINT64_FORMAT " s",
		  id_hex, c->name, to->name, sm->token_lifetime);
	jb = json_builder_new();
	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "device-id");
	json_builder_add_string_value(jb, id_hex);
	json_builder_set_member_name(jb, "token");
	json_builder_add_string_value(jb, token);
	json_builder_set_member_name(jb, "new-owner");
	json_builder_add_string_value(jb, to->name);
	json_builder_set_member_name(jb, "expires");
	json_builder_add_int_value(jb, expires);
	json_builder_end_object(jb);
	cp_http_reply_json(msg, SOUP_STATUS_OK, jb);
	cp_cleanse(token, sizeof(token));
}

/* ---- receipts ---- */

typedef struct {
	Sm *sm;
	SoupServerMessage *msg;
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	CpReceipt r;
	gboolean command;
	const char *action;
	char *clear_previous;           /* the old owner's SUPI, gone at the AUSF */
} ReceiptJob;

static void
receipt_reply(ReceiptJob *rj, const char *result)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "device-id");
	json_builder_add_string_value(b, rj->id_hex);
	json_builder_set_member_name(b, "profile-seq");
	json_builder_add_int_value(b, (gint64)rj->r.profile_seq);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, receipt_status_name(rj->r.status));
	json_builder_set_member_name(b, "binding-version");
	json_builder_add_int_value(b, (gint64)rj->r.binding_version);
	if (rj->r.reason) {
		json_builder_set_member_name(b, "reason");
		json_builder_add_string_value(b, cp_error_name(rj->r.reason));
	}
	json_builder_set_member_name(b, "result");
	json_builder_add_string_value(b, result);
	json_builder_set_member_name(b, "action");
	json_builder_add_string_value(b, rj->action);
	json_builder_end_object(b);
	cp_http_reply_json(rj->msg, SOUP_STATUS_OK, b);
}

static void
receipt_job_free(ReceiptJob *rj)
{
	rj->sm->in_flight--;
	g_object_unref(rj->msg);
	g_free(rj->clear_previous);
	g_free(rj);
}

static void
receipt_ausf_done(gboolean ok, const char *message, gpointer data)
{
	ReceiptJob *rj = data;
	g_autofree char *seq_s = g_strdup_printf("%" G_GUINT64_FORMAT, rj->r.profile_seq);

	if (!ok) {
		/* not processed after all: the receipt may be relayed again */
		db_run(rj->sm, rj->command ?
		       "UPDATE commands SET receipt_status = NULL WHERE device_id = ?1 AND seq = ?2" :
		       "UPDATE provisionings SET receipt_status = NULL WHERE device_id = ?1 AND profile_seq = ?2",
		       NULL, rj->id_hex, seq_s, END_ARGS);
		cp_http_reply_error(rj->msg, SOUP_STATUS_BAD_GATEWAY, "ausf-failed", 0, "%s", message);
	} else {
		if (rj->clear_previous)
			db_run(rj->sm, "UPDATE bindings SET previous_supi = NULL, replaced_version = NULL "
			       "WHERE device_id = ?1 AND previous_supi = ?2", NULL, rj->id_hex, rj->clear_previous, END_ARGS);
		g_message("[%s] receipt %s for seq %" G_GUINT64_FORMAT ": %s", rj->id_hex,
			  receipt_status_name(rj->r.status), rj->r.profile_seq, rj->action);
		receipt_reply(rj, "processed");
	}
	soup_server_message_unpause(rj->msg);
	receipt_job_free(rj);
}

/*
 * POST /v1/devices/{id}/receipt: the device's receipt, whoever relays it;
 * POST /v1/device/receipt: the device's own (path_id NULL: the device is
 * the receipt's). Trusted for its signature under the key the SM
 * verified at claim time; acted on once (the first relay marks it): a
 * provisioned receipt retires the older key generations (claim,
 * reprovision) or removes the old owner's SUPI (transfer); a
 * decommissioned one releases the binding and removes the subscriber.
 */
static void
handle_receipt(Sm *sm, SoupServerMessage *msg, const char *path_id, JsonObject *req)
{
	const char *id_hex;
	g_autoptr(GBytes) raw = cp_json_base64(req, "receipt", CP_RECORD_MAX);
	g_autoptr(GError) error = NULL;
	g_autofree char *seq_s = NULL, *status_s = NULL;
	Binding b = { 0 };
	CpKey *pub = NULL;
	ReceiptJob *rj;
	AusfJob *job;
	CpStmt *st;
	guint64 row_version = 0, generation = 1;
	int row_op = 0, known, marked;
	CpError err;

	if (!raw) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0, "receipt (base64) is required");
		return;
	}
	rj = g_new0(ReceiptJob, 1);
	rj->sm = sm;
	sm->in_flight++;
	rj->msg = g_object_ref(msg);
	rj->action = "none";
	id_hex = rj->id_hex;
	err = cp_receipt_decode(g_bytes_get_data(raw, NULL), g_bytes_get_size(raw), &rj->r);
	if (err != CP_OK) {
		cp_http_reply_cp_error(msg, SOUP_STATUS_BAD_REQUEST, err, "the receipt does not decode");
		goto done;
	}
	cp_hex_encode(rj->r.device_id, CP_DEVICE_ID_LEN, rj->id_hex);
	if (path_id && strcmp(path_id, id_hex) != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "device-id-mismatch", CP_ERR_WRONG_DEVICE,
				    "the receipt is from another device");
		goto done;
	}
	if (!path_id) {
		g_message("[%s] receipt sent by the device", id_hex);
		expire_releasing(sm, id_hex);
	}
	known = binding_load(sm, id_hex, &b, &error);
	if (known < 0)
		goto storage;
	if (!known || !b.spki ||
	    !(pub = cp_pubkey_from_spki(g_bytes_get_data(b.spki, NULL), g_bytes_get_size(b.spki)))) {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "unknown-device", 0,
				    "the SM holds no verified key for this device");
		goto done;
	}
	err = cp_receipt_verify_device(g_bytes_get_data(raw, NULL), g_bytes_get_size(raw), pub, &rj->r);
	cp_key_free(pub);
	if (err != CP_OK) {
		g_message("[%s] receipt refused: %s", id_hex, cp_error_name(err));
		cp_http_reply_cp_error(msg, err == CP_ERR_SIGNATURE ? SOUP_STATUS_FORBIDDEN : SOUP_STATUS_BAD_REQUEST, err,
				       err == CP_ERR_SIGNATURE ? "the receipt is not signed by the device's certified key"
							       : "the receipt does not decode");
		goto done;
	}
	rj->command = rj->r.status == CP_RECEIPT_DECOMMISSIONED;
	seq_s = g_strdup_printf("%" G_GUINT64_FORMAT, rj->r.profile_seq);
	status_s = g_strdup_printf("%u", rj->r.status);
	st = cp_store_prepare(sm->db, rj->command ?
			      "SELECT binding_version, 0, 1 FROM commands WHERE device_id = ?1 AND seq = ?2" :
			      "SELECT binding_version, operation, generation FROM provisionings WHERE device_id = ?1 AND profile_seq = ?2",
			      &error);
	if (!st)
		goto storage;
	cp_stmt_bind_text(st, 1, id_hex);
	cp_stmt_bind_int64(st, 2, (gint64)rj->r.profile_seq);
	known = cp_stmt_step(st) == CP_STORE_ROW;
	if (known) {
		row_version = (guint64)cp_stmt_column_int64(st, 0);
		row_op = (int)cp_stmt_column_int64(st, 1);
		generation = (guint64)cp_stmt_column_int64(st, 2);
	}
	cp_stmt_finalize(st);
	if (!known) {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "unknown-message", 0,
				    "this SM issued no %s with sequence number %" G_GUINT64_FORMAT " to this device",
				    rj->command ? "command" : "profile", rj->r.profile_seq);
		goto done;
	}
	marked = db_run(sm, rj->command ?
			"UPDATE commands SET receipt_status = ?3 WHERE device_id = ?1 AND seq = ?2 AND receipt_status IS NULL" :
			"UPDATE provisionings SET receipt_status = ?3 WHERE device_id = ?1 AND profile_seq = ?2 AND receipt_status IS NULL",
			&error, id_hex, seq_s, status_s, END_ARGS);
	if (marked < 0)
		goto storage;
	if (marked == 0) {
		g_message("[%s] receipt for seq %" G_GUINT64_FORMAT " already processed", id_hex, rj->r.profile_seq);
		receipt_reply(rj, "already-processed");
		goto done;
	}

	job = ausf_job_new(sm, receipt_ausf_done, rj);
	if (rj->command) {
		if (row_version == b.version && strcmp(b.state, "released") != 0) {
			g_autofree char *now_str = g_strdup_printf("%" G_GINT64_FORMAT, now_s());

			if (!cp_store_begin(sm->db, id_hex, &error) ||
			    db_run(sm, "UPDATE bindings SET state = 'released', updated = ?2 "
				   "WHERE device_id = ?1", &error, id_hex, now_str, END_ARGS) < 0 ||
			    db_run(sm, "DELETE FROM pending WHERE device_id = ?1", &error, id_hex, END_ARGS) < 0 ||
			    !cp_store_commit(sm->db, &error)) {
				cp_store_rollback(sm->db);
				ausf_job_free(job);
				goto storage;
			}
			rj->action = "released";
			g_message("[%s] released: the device confirmed its decommission", id_hex);
		}
		if (strcmp(rj->action, "released") == 0 || strcmp(b.state, "released") == 0) {
			if (b.device_supi)
				ausf_job_remove(job, b.device_supi);
			if (b.previous_supi) {
				ausf_job_remove(job, b.previous_supi);
				rj->clear_previous = g_strdup(b.previous_supi);
			}
			rj->action = "released";
		}
	} else if (rj->r.status == CP_RECEIPT_PROVISIONED && rj->r.binding_version == row_version &&
		   row_version == b.version) {
		db_run(sm, "DELETE FROM pending WHERE device_id = ?1 AND seq = ?2", NULL, id_hex, seq_s, END_ARGS);
		if (row_op == CP_OP_TRANSFER && b.previous_supi) {
			ausf_job_remove(job, b.previous_supi);
			rj->clear_previous = g_strdup(b.previous_supi);
			rj->action = "removed-previous-owner";
		} else if (generation > 1 && b.device_supi) {
			ausf_job_retire(job, b.device_supi, generation);
			rj->action = "retired-older-keys";
		}
	}
	binding_clear(&b);
	soup_server_message_pause(msg);
	ausf_job_next(job);
	return;

storage:
	cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, "%s", error->message);
done:
	binding_clear(&b);
	receipt_job_free(rj);
}

static gboolean
parse_device_path(const char *path, uint8_t id[CP_DEVICE_ID_LEN], char id_hex[2 * CP_DEVICE_ID_LEN + 1],
		  const char **action)
{
	const char *p = path + strlen("/v1/devices/");

	char hex[2 * CP_DEVICE_ID_LEN + 1];

	if (strlen(p) < 34 || p[32] != '/')
		return FALSE;
	memcpy(hex, p, 32);
	hex[32] = '\0';
	if (cp_hex_decode(hex, id, CP_DEVICE_ID_LEN) != CP_DEVICE_ID_LEN)
		return FALSE;
	cp_hex_encode(id, CP_DEVICE_ID_LEN, id_hex);
	*action = p + 33;
	return TRUE;
}

/* POST /v1/devices/{id}/accept-transfer: the new owner, with the token
 * (and the device's tap data, or without: the stored device info). */
static void
accept_transfer(Sm *sm, SoupServerMessage *msg, Companion *c, const uint8_t id[CP_DEVICE_ID_LEN],
		JsonObject *req, Binding *b)
{
	const char *token = cp_json_string(req, "token");
	const char *url = cp_json_string(req, "certificate-url");
	g_autoptr(GUri) uri = NULL;
	uint8_t url_id[CP_DEVICE_ID_LEN];
	Provision *p;

	if (!token || strlen(token) > 256) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0, "token (string) is required");
		return;
	}
	if (url) {
		if (!g_str_has_prefix(url, "https://") && !(sm->allow_http && g_str_has_prefix(url, "http://"))) {
			cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "insecure-url", 0, "the certificate URL must be https://");
			return;
		}
		uri = url_parse(url);
		if (!uri || !url_device_id(uri, url_id)) {
			cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-url", 0,
					    "the certificate URL must be https://<host>/.../<DeviceID as 32 hex>");
			return;
		}
		if (memcmp(url_id, id, CP_DEVICE_ID_LEN) != 0) {
			cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "device-id-mismatch", 0,
					    "the certificate URL is another device's");
			return;
		}
		if (!url_allowed(sm, uri)) {
			g_autofree char *shown = g_uri_to_string(uri);

			g_message("request=%s certificate URL %s is outside url-prefixes", cp_http_request_id(msg), shown);
			cp_http_reply_error(msg, SOUP_STATUS_BAD_GATEWAY, "chain-fetch-failed", 0,
					    "the certificate chain could not be fetched from the certificate URL");
			return;
		}
	}
	p = provision_new(sm, msg, c, id);
	p->kind = CP_OP_TRANSFER;
	token_hash_hex(token, p->token_hex);
	if (url) {
		p->url = g_uri_to_string(uri);
		p->record = cp_json_base64(req, "device-record", CP_RECORD_MAX);
		if (!p->record) {
			cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
					    "device-record (base64) goes with certificate-url");
			provision_free(p);
			return;
		}
		p->step = STEP_FIRST;
	} else {
		if (!provision_from_binding(p, b))
			return;
		p->step = STEP_BINDING;
	}
	g_message("[%s] transfer asked by companion '%s'%s", p->id_hex, c->name, url ? " with tap data" : "");
	soup_server_message_pause(msg);
	provision_step(p);
}

static void
handle_devices(SoupServer *server, SoupServerMessage *msg, const char *path,
	       GHashTable *query, gpointer data)
{
	Sm *sm = data;
	const char *method = soup_server_message_get_method(msg);
	g_autoptr(JsonObject) req = NULL;
	g_autoptr(GError) error = NULL;
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	uint8_t id[CP_DEVICE_ID_LEN];
	const char *action;
	Companion *c;
	Binding b = { 0 };
	int known;

	c = authenticate(sm, msg);
	if (!c) {
		cp_http_reply_error(msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized", 0,
				    "unknown companion: present a registered bearer token or client certificate");
		return;
	}
	if (strcmp(path, "/v1/devices") == 0 || strcmp(path, "/v1/devices/") == 0) {
		if (strcmp(method, "GET") != 0) {
			cp_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed", 0, "use GET");
			return;
		}
		g_message("devices listed by companion '%s'", c->name);
		reply_devices(sm, msg, c);
		return;
	}
	if (!parse_device_path(path, id, id_hex, &action) ||
	    (strcmp(action, "reprovision") && strcmp(action, "transfer-token") && strcmp(action, "accept-transfer") &&
	     strcmp(action, "decommission") && strcmp(action, "receipt"))) {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "not-found", 0, "no such resource: %s", path);
		return;
	}
	if (strcmp(method, "POST") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed", 0, "use POST");
		return;
	}
	if (!(req = cp_http_request_json(msg)))
		return;
	g_message("[%s] %s asked by companion '%s'", id_hex, action, c->name);
	expire_releasing(sm, id_hex);
	if (strcmp(action, "receipt") == 0) {
		handle_receipt(sm, msg, id_hex, req);
		return;
	}
	known = binding_load(sm, id_hex, &b, &error);
	if (known < 0) {
		cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, "%s", error->message);
		return;
	}
	if (!known) {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "unknown-device", 0, "this SM never provisioned this device");
		return;
	}
	if (strcmp(action, "accept-transfer") == 0) {
		accept_transfer(sm, msg, c, id, req, &b);
		binding_clear(&b);
		return;
	}
	if (strcmp(b.state, "released") == 0 || strcmp(b.owner_supi, c->supi) != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_FORBIDDEN, "not-owner", 0, "this device is not yours");
	} else if (strcmp(b.state, "claiming") == 0) {
		cp_http_reply_error(msg, SOUP_STATUS_CONFLICT, "busy", 0, "a claim of this device is under way");
	} else if (strcmp(action, "decommission") == 0) {
		reply_command(sm, msg, id_hex, &b);
	} else if (strcmp(b.state, "bound") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_CONFLICT, "releasing", 0,
				    "a decommission of this device is under way");
	} else if (strcmp(action, "transfer-token") == 0) {
		reply_token(sm, msg, c, id_hex, &b, req);
	} else {
		const char *apn = cp_json_string(req, "apn"), *name = cp_json_string(req, "network-name");
		Provision *p;

		if ((json_object_has_member(req, "apn") && (!apn || !*apn || strlen(apn) > CP_APN_MAX)) ||
		    (json_object_has_member(req, "network-name") &&
		     (!name || !*name || strlen(name) > CP_NETWORK_NAME_MAX))) {
			cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
					    "apn (1-%d bytes) and network-name (1-%d bytes) are optional strings",
					    CP_APN_MAX, CP_NETWORK_NAME_MAX);
		} else {
			p = provision_new(sm, msg, c, id);
			p->kind = p->operation = CP_OP_REPROVISION;
			p->binding_version = b.version;
			p->apn = g_strdup(apn);
			p->network_name = g_strdup(name);
			if (provision_from_binding(p, &b)) {
				p->step = STEP_AUSF;
				soup_server_message_pause(msg);
				provision_step(p);
			}
		}
	}
	binding_clear(&b);
}

/*
 * POST /v1/device/poll: the device asks, with a fresh device record, for
 * the profile or command waiting for it (the last one issued whose
 * receipt was not processed). The record's signature under the key
 * stored at claim time is the authentication; its counter is recorded
 * as a claim's is, so a record answers once.
 */
static void
handle_poll(Sm *sm, SoupServerMessage *msg, JsonObject *req)
{
	g_autoptr(GBytes) raw = cp_json_base64(req, "device-record", CP_RECORD_MAX);
	g_autoptr(GError) error = NULL;
	g_autofree char *msg_b64 = NULL, *kind = NULL;
	g_autoptr(JsonBuilder) jb = NULL;
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	const uint8_t *rec;
	const char *why;
	CpDeviceRecord dr;
	Binding b = { 0 };
	CpKey *pub = NULL;
	CpStmt *st;
	guint64 seq = 0;
	GBytes *message = NULL;
	gsize len;
	guint status;
	int known, fresh, rc;
	CpError err;

	if (!raw) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0, "device-record (base64) is required");
		return;
	}
	rec = g_bytes_get_data(raw, &len);
	err = cp_device_record_decode(rec, len, &dr);
	if (err != CP_OK) {
		cp_http_reply_cp_error(msg, SOUP_STATUS_BAD_REQUEST, err, "the device record does not decode");
		return;
	}
	cp_hex_encode(dr.device_id, CP_DEVICE_ID_LEN, id_hex);
	g_message("[%s] poll by the device", id_hex);
	expire_releasing(sm, id_hex);
	known = binding_load(sm, id_hex, &b, &error);
	if (known < 0)
		goto storage;
	if (!known || !b.spki ||
	    !(pub = cp_pubkey_from_spki(g_bytes_get_data(b.spki, NULL), g_bytes_get_size(b.spki)))) {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "unknown-device", 0,
				    "the SM holds no verified key for this device");
		goto out;
	}
	err = record_verify(rec, len, pub, &dr, &status, &why);
	cp_key_free(pub);
	if (err != CP_OK) {
		g_message("[%s] poll refused: %s", id_hex, cp_error_name(err));
		cp_http_reply_error(msg, status, cp_error_name(err), err, "%s", why);
		goto out;
	}
	fresh = accept_counter(sm, id_hex, dr.att_counter, &error);
	if (fresh < 0)
		goto storage;
	if (!fresh) {
		g_message("[%s] poll refused: stale attestation", id_hex);
		cp_http_reply_error(msg, SOUP_STATUS_CONFLICT, "stale-attestation", 0,
				    "the device record's counter is not above the last one seen: make a new record");
		goto out;
	}
	st = cp_store_prepare(sm->db,
			      "SELECT p.kind, p.seq, p.message FROM pending p WHERE p.device_id = ?1 AND "
			      "(p.kind = 'profile' AND EXISTS (SELECT 1 FROM provisionings v WHERE v.device_id = p.device_id "
			      "AND v.profile_seq = p.seq AND v.receipt_status IS NULL) OR "
			      "p.kind = 'command' AND EXISTS (SELECT 1 FROM commands c WHERE c.device_id = p.device_id "
			      "AND c.seq = p.seq AND c.receipt_status IS NULL))", &error);
	if (!st)
		goto storage;
	cp_stmt_bind_text(st, 1, id_hex);
	rc = cp_stmt_step(st);
	if (rc == CP_STORE_ROW) {
		kind = col_text(st, 0);
		seq = (guint64)cp_stmt_column_int64(st, 1);
		message = col_blob(st, 2);
	}
	cp_stmt_finalize(st);
	if (rc != CP_STORE_ROW && rc != CP_STORE_DONE) {
		cp_store_set_error(sm->db, &error, "reading the pending message");
		goto storage;
	}
	if (!message) {
		g_message("[%s] poll: nothing waits", id_hex);
		soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, NULL);
		goto out;
	}
	g_message("[%s] poll: %s seq %" G_GUINT64_FORMAT " sent", id_hex, kind, seq);
	msg_b64 = g_base64_encode(g_bytes_get_data(message, NULL), g_bytes_get_size(message));
	g_bytes_unref(message);
	jb = json_builder_new();
	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "device-id");
	json_builder_add_string_value(jb, id_hex);
	json_builder_set_member_name(jb, "type");
	json_builder_add_string_value(jb, kind);
	json_builder_set_member_name(jb, "seq");
	json_builder_add_int_value(jb, (gint64)seq);
	json_builder_set_member_name(jb, "message");
	json_builder_add_string_value(jb, msg_b64);
	json_builder_end_object(jb);
	cp_http_reply_json(msg, SOUP_STATUS_OK, jb);
	goto out;

storage:
	cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, "%s", error->message);
out:
	binding_clear(&b);
}

/* /v1/device/...: the device's own requests over its data connection,
 * authenticated by its signatures rather than a companion credential. */
static void
handle_device(SoupServer *server, SoupServerMessage *msg, const char *path,
	      GHashTable *query, gpointer data)
{
	Sm *sm = data;
	g_autoptr(JsonObject) req = NULL;

	if (strcmp(path, "/v1/device/poll") != 0 && strcmp(path, "/v1/device/receipt") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "not-found", 0, "no such resource: %s", path);
		return;
	}
	if (strcmp(soup_server_message_get_method(msg), "POST") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed", 0, "use POST");
		return;
	}
	if (!(req = cp_http_request_json(msg)))
		return;
	if (strcmp(path, "/v1/device/poll") == 0)
		handle_poll(sm, msg, req);
	else
		handle_receipt(sm, msg, NULL, req);
}

static void
handle_default(SoupServer *server, SoupServerMessage *msg, const char *path,
	       GHashTable *query, gpointer data)
{
	cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "not-found", 0, "no such resource: %s", path);
}

/* ---- configuration ---- */

static char *
conf_string(GKeyFile *kf, const char *key, const char *def)
{
	return cp_conf_string(kf, "sm", key, def);
}

/* Numbers bounded so that nothing downstream overflows: guint seconds,
 * OpenSSL's int buffer lengths, not_after in 64 bits. */
static gboolean
conf_numbers(Sm *sm, GError **error)
{
	const struct {
		const char *key;
		guint64 def, min, max;
		guint64 *out;
	} keys[] = {
		{ "fetch-timeout", 10, 1, 3600, &sm->fetch_timeout },
		{ "fetch-max-size", 65536, 1, 16 * 1024 * 1024, &sm->fetch_max },
		{ "ausf-timeout", 10, 1, 3600, &sm->ausf_timeout },
		{ "profile-lifetime", 86400, 0, 10ULL * 366 * 86400, &sm->profile_lifetime },
		{ "transfer-token-lifetime", 600, 1, 86400, &sm->token_lifetime },
		{ "decommission-timeout", 604800, 1, 10ULL * 366 * 86400, &sm->decommission_timeout },
		{ "max-connections", 64, 1, 65536, &sm->max_connections },
		{ "connection-timeout", 30, 1, 86400, &sm->connection_timeout },
		{ "body-max", 16384, 1, 1024 * 1024, &sm->body_max },
		{ "chain-cache-entries", 1024, 0, 1000000, &sm->cache_entries },
		{ "chain-cache-bytes", 4 * 1024 * 1024, 0, 1024ULL * 1024 * 1024, &sm->cache_bytes },
		{ "chain-cache-max-age", 3600, 0, 30 * 86400, &sm->cache_max_age },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
		if (!cp_conf_uint(sm->kf, "sm", keys[i].key, keys[i].def, keys[i].min, keys[i].max, keys[i].out, error))
			return FALSE;
	if (sm->connection_timeout <= sm->fetch_timeout + sm->ausf_timeout)
		g_warning("connection-timeout (%" G_GUINT64_FORMAT " s) does not exceed fetch-timeout + ausf-timeout: "
			  "a slow certificate server or AUSF gets the connection cut before the answer",
			  sm->connection_timeout);
	return TRUE;
}

static gboolean
conf_bool(GKeyFile *kf, const char *key, gboolean *out, GError **error)
{
	g_autofree char *v = conf_string(kf, key, NULL);

	*out = FALSE;
	if (!v || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return TRUE;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = TRUE;
		return TRUE;
	}
	cp_set_error(error, CP_ERR_BAD_VALUE, "%s: '%s' is neither true nor false", key, v);
	return FALSE;
}

static SoupSession *
make_session(const char *ca_file, guint timeout, guint idle, guint per_host, GError **error)
{
	SoupSession *s = soup_session_new_with_options("timeout", timeout, "idle-timeout", idle,
						       "max-conns", 256, "max-conns-per-host", per_host,
						       "user-agent", "cellprov-sm/" CP_VERSION, NULL);

	if (ca_file) {
		g_autoptr(GTlsDatabase) db = g_tls_file_database_new(ca_file, error);

		if (!db) {
			g_object_unref(s);
			g_prefix_error(error, "%s: ", ca_file);
			return NULL;
		}
		soup_session_set_tls_database(s, db);
	}
	return s;
}

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* Any private key OpenSSL reads, so that the wrong kind gets its own
 * message (cp_pkey_from_pem knows only the protocol's). */
static CpKey *
private_key_from_pem(const CpSecret *pem)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	CpKey *key;

	if (!bio)
		return NULL;
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return key;
}

/*
 * The SM's operator identity: signing-key (a PEM private key, a path or a
 * systemd credential, secret like ausf-token) signs every profile under
 * signing-chain (PEM: the signing certificate, its intermediates, the
 * operator root), which every profile carries (docs/protocol.md, "The
 * operator's signature").
 */
static gboolean
load_signing(Sm *sm, const char *key_name, const char *chain_path, GError **error)
{
	g_autoptr(CpSecret) pem = NULL;
	g_autofree char *chain = NULL;
	gsize len, n_certs = 0;
	CpOperatorId id;
	CpKey *signer = NULL;
	CpError err;

	if (!(pem = cp_secret_load(key_name, FALSE, 0, error))) {
		g_prefix_error(error, "signing-key: ");
		return FALSE;
	}
	sm->signing_key = private_key_from_pem(pem);
	if (!sm->signing_key) {
		cp_set_error(error, CP_ERR_KEY, "signing-key %s: not an unencrypted PEM private key", key_name);
		return FALSE;
	}
	if (!cp_pkey_is_p256(sm->signing_key)) {
		cp_set_error(error, CP_ERR_KEY, "signing-key %s: not a P-256 key (profiles are signed with ECDSA P-256)",
			     key_name);
		return FALSE;
	}
	if (!g_file_get_contents(chain_path, &chain, &len, error)) {
		g_prefix_error(error, "signing-chain: ");
		return FALSE;
	}
	for (const char *c = chain; (c = strstr(c, "-----BEGIN CERTIFICATE-----")); c++)
		n_certs++;
	if (n_certs > CP_CHAIN_CERTS_MAX) {
		cp_set_error(error, CP_ERR_LENGTH, "signing-chain %s: %" G_GSIZE_FORMAT " certificates, at most %d",
			     chain_path, n_certs, CP_CHAIN_CERTS_MAX);
		return FALSE;
	}
	err = cp_operator_chain_from_pem(chain, len, sm->op_chain, &sm->op_chain_len);
	if (err == CP_ERR_LENGTH) {
		cp_set_error(error, err, "signing-chain %s: longer than the %d bytes of DER a profile carries",
			     chain_path, CP_CHAIN_MAX);
		return FALSE;
	}
	if (err != CP_OK) {
		cp_set_error(error, err, "signing-chain %s: not a PEM chain of 1 to %d certificates", chain_path,
			     CP_CHAIN_CERTS_MAX);
		return FALSE;
	}
	if (cp_operator_chain_signer(sm->op_chain, sm->op_chain_len, sm->signing_key) != CP_OK) {
		cp_set_error(error, CP_ERR_KEY, "signing-key %s is not the key of the first certificate of signing-chain %s",
			     key_name, chain_path);
		return FALSE;
	}
	/* What a device without trusted-operators checks; one with them may
	 * hold a root this chain leaves out, so a failure is only a warning */
	if (cp_operator_chain_verify(NULL, NULL, sm->op_chain, sm->op_chain_len, &signer, &id) == CP_OK)
		g_message("signing profiles as operator '%s'", id.name);
	else
		g_warning("signing-chain %s does not end in a self-signed root that signs down to a P-256 end-entity "
			  "certificate for digitalSignature: devices that trust on first use will refuse its profiles",
			  chain_path);
	cp_key_free(signer);
	return TRUE;
}

static gboolean
sm_load(Sm *sm, const char *path, GError **error)
{
	g_autofree char *anchors = NULL, *companions = NULL, *fetch_ca = NULL, *ausf_ca = NULL;
	g_autofree char *token = NULL, *plmn = NULL, *suites = NULL;
	g_autofree char *signing_key = NULL, *signing_chain = NULL;
	g_auto(GStrv) sl = NULL, prefixes = NULL;

	sm->kf = g_key_file_new();
	if (!g_key_file_load_from_file(sm->kf, path, G_KEY_FILE_NONE, error)) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	/* store = sqlite:PATH | postgresql:CONNINFO; the older database =
	 * PATH is the SQLite file when store is not set */
	sm->store = conf_string(sm->kf, "store", NULL);
	if (!sm->store) {
		g_autofree char *database = conf_string(sm->kf, "database", "/var/lib/cellprov-sm/sm.db");

		sm->store = g_strconcat("sqlite:", database, NULL);
	}
	if (!g_str_has_prefix(sm->store, "sqlite:") && !g_str_has_prefix(sm->store, "postgresql:")) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: store must be sqlite:PATH or postgresql:CONNINFO", path);
		return FALSE;
	}
	anchors = conf_string(sm->kf, "trust-anchors", NULL);
	companions = conf_string(sm->kf, "companions", NULL);
	fetch_ca = conf_string(sm->kf, "fetch-ca", NULL);
	ausf_ca = conf_string(sm->kf, "ausf-ca", NULL);
	token = conf_string(sm->kf, "ausf-token", NULL);
	signing_key = conf_string(sm->kf, "signing-key", NULL);
	signing_chain = conf_string(sm->kf, "signing-chain", NULL);
	sm->ausf_url = conf_string(sm->kf, "ausf-url", "http://127.0.0.1:8081");
	plmn = conf_string(sm->kf, "plmn", "00101");
	sm->network_name = conf_string(sm->kf, "network-name", "cellprov test network");
	sm->apn = conf_string(sm->kf, "apn", "internet");
	suites = conf_string(sm->kf, "suites", "B;A");
	prefixes = g_key_file_get_string_list(sm->kf, "sm", "url-prefixes", NULL, NULL);
	if (!conf_bool(sm->kf, "allow-http", &sm->allow_http, error) ||
	    !conf_bool(sm->kf, "plain-http", &sm->plain_http, error) ||
	    !conf_bool(sm->kf, "allow-any-url", &sm->allow_any_url, error) ||
	    !conf_numbers(sm, error)) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}

	if (!anchors || !companions || !token) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: trust-anchors, companions and ausf-token are required", path);
		return FALSE;
	}
	if (!signing_key || !signing_chain) {
		cp_set_error(error, CP_ERR_BAD_VALUE,
			     "%s: signing-key and signing-chain are required: the operator key and chain that sign every profile",
			     path);
		return FALSE;
	}
	if (strlen(plmn) < 5 || strlen(plmn) > 6 || !cp_is_digits((const uint8_t *)plmn, strlen(plmn))) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: plmn must be 5 or 6 digits", path);
		return FALSE;
	}
	g_strlcpy(sm->plmn, plmn, sizeof(sm->plmn));
	if (!*sm->network_name || strlen(sm->network_name) > CP_NETWORK_NAME_MAX ||
	    !*sm->apn || strlen(sm->apn) > CP_APN_MAX) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: network-name (1-64 bytes) or apn (1-100) out of range", path);
		return FALSE;
	}
	sm->url_prefixes = g_ptr_array_new_with_free_func((GDestroyNotify)g_uri_unref);
	for (char **pp = prefixes; pp && *pp; pp++) {
		GUri *pre;

		g_strstrip(*pp);
		if (!**pp)
			continue;
		pre = url_parse(*pp);
		if (!pre || (!g_str_has_prefix(*pp, "https://") && !g_str_has_prefix(*pp, "http://"))) {
			if (pre)
				g_uri_unref(pre);
			cp_set_error(error, CP_ERR_BAD_VALUE,
				     "%s: url-prefixes: '%s' is not an http(s) URL with a host and no user, query or fragment",
				     path, *pp);
			return FALSE;
		}
		g_ptr_array_add(sm->url_prefixes, pre);
	}
	if (!sm->url_prefixes->len && !sm->allow_any_url) {
		cp_set_error(error, CP_ERR_BAD_VALUE,
			     "%s: no url-prefixes: list the certificate servers the SM may fetch from, "
			     "or set allow-any-url=true to fetch from any URL a companion sends (dangerous)", path);
		return FALSE;
	}
	if (sm->url_prefixes->len && sm->allow_any_url) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: url-prefixes and allow-any-url=true contradict each other", path);
		return FALSE;
	}
	if (sm->allow_any_url)
		g_warning("allow-any-url: fetching certificate chains from any URL a companion sends");
	sl = g_strsplit(suites, ";", -1);
	for (char **s = sl; *s && sm->n_suites < 2; s++) {
		if (strcmp(*s, "A") == 0)
			sm->suites[sm->n_suites++] = CP_SUITE_A;
		else if (strcmp(*s, "B") == 0)
			sm->suites[sm->n_suites++] = CP_SUITE_B;
		else {
			cp_set_error(error, CP_ERR_SUITE, "%s: suites must list A and/or B", path);
			return FALSE;
		}
	}
	if (!load_signing(sm, signing_key, signing_chain, error) ||
	    !(sm->anchors = cp_chain_anchors_load(anchors, error)) ||
	    !load_companions(sm, companions, error) ||
	    !(sm->ausf_token = cp_secret_load(token, FALSE, 0, error)) ||
	    /* libsoup's default of 2 connections per host would queue the
	     * provisionings in flight behind each other at a certificate
	     * server; the AUSF keeps its connections alive and answers one
	     * request at a time, and counts an SM's connections against
	     * its max-connections-per-source (16): 8 an SM process. An
	     * idle one is closed here before the AUSF's request-timeout
	     * (10 s by default) would cut it under a request. */
	    !(sm->fetch_session = make_session(fetch_ca, sm->fetch_timeout, sm->fetch_timeout, 64, error)) ||
	    !(sm->ausf_session = make_session(ausf_ca, sm->ausf_timeout, MIN(sm->ausf_timeout, 5), 8, error)))
		return FALSE;
	{
		g_autofree char *base = sm->ausf_url;

		while (g_str_has_suffix(base, "/"))
			base[strlen(base) - 1] = '\0';
		sm->ausf_url = g_strdup(base);
	}
	sm->chain_cache = cp_chain_cache_new((guint)sm->cache_entries, (gsize)sm->cache_bytes, (guint)sm->cache_max_age);
	{
		g_autofree CpSmOwner *owners = g_new0(CpSmOwner, sm->companions->len + 1);

		for (guint i = 0; i < sm->companions->len; i++) {
			owners[i].name = ((Companion *)sm->companions->pdata[i])->name;
			owners[i].supi = ((Companion *)sm->companions->pdata[i])->supi;
		}
		sm->db = cp_sm_store_open(sm->store, owners, sm->companions->len, claim_timeout(sm), error);
	}
	return sm->db != NULL;
}

static void
sm_clear(Sm *sm)
{
	cp_http_server_free(sm->http);
	cp_store_free(sm->db);
	X509_STORE_free(sm->anchors);
	cp_key_free(sm->signing_key);
	if (sm->companions)
		g_ptr_array_unref(sm->companions);
	if (sm->url_prefixes)
		g_ptr_array_unref(sm->url_prefixes);
	g_free(sm->store);
	g_free(sm->ausf_url);
	g_free(sm->network_name);
	g_free(sm->apn);
	cp_secret_free(sm->ausf_token);
	g_clear_object(&sm->fetch_session);
	g_clear_object(&sm->ausf_session);
	cp_chain_cache_free(sm->chain_cache);
	if (sm->kf)
		g_key_file_unref(sm->kf);
	if (sm->loop)
		g_main_loop_unref(sm->loop);
}

static gboolean
on_signal(gpointer data)
{
	Sm *sm = data;

	g_message("stopping");
	g_main_loop_quit(sm->loop);
	return G_SOURCE_CONTINUE;
}

/*
 * OpenSSL's secure heap (locked, guarded, out of core dumps) for the AUSF
 * token and each request's K_SM, K'' and K_prof (CpSecret): under 1 KiB a
 * request, so 64 KiB holds the default 64 connections with room to spare.
 * Without it they use the ordinary heap, still cleansed on free.
 */
#define SECURE_HEAP_SIZE (64 * 1024)

static void
secure_heap_init(void)
{
	switch (CRYPTO_secure_malloc_init(SECURE_HEAP_SIZE, 32)) {
	case 1:
		break;
	case 2:
		g_warning("secure heap: %d KiB not locked in memory (no right to mlock: "
			  "LimitMEMLOCK= or CAP_IPC_LOCK); secrets could reach swap", SECURE_HEAP_SIZE / 1024);
		break;
	default:
		g_warning("secure heap: cannot set it up; secrets stay on the ordinary heap");
		break;
	}
}

int
main(int argc, char **argv)
{
	g_autofree char *config = NULL, *listen = NULL, *port_file = NULL;
	g_autofree char *cfg_listen = NULL, *tls_cert = NULL, *tls_key = NULL, *client_ca = NULL;
	g_autofree char *worker_opt = NULL;
	g_auto(GStrv) args = g_strdupv(argv);
	CpWorker worker;
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) oc = g_option_context_new("- cellprov subscription manager (reference network)");
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "Configuration file (default: " CP_SYSCONFDIR "/cellprov/sm.conf)", "FILE" },
		{ "listen", 'l', 0, G_OPTION_ARG_STRING, &listen, "Listen on host:port (overrides the file; port 0: any free port)", "ADDR" },
		{ "port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file, "Write the bound port here once listening", "FILE" },
		CP_OPTION_WORKER(&worker_opt),
		CP_OPTION_VERSION,
		G_OPTION_ENTRY_NULL
	};
	Sm sm = { 0 };
	CpHttpConfig hc = { 0 };
	int ret = 1;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cellprov-sm: %s\n", error->message);
		return 2;
	}
	if (!cp_worker_parse(worker_opt, &worker, &error)) {
		g_printerr("cellprov-sm: %s\n", error->message);
		return 2;
	}
	if (worker.fd < 0) {
		/* workers > 1: this process supervises them */
		int r = cp_workers_main("cellprov-sm", "sm", config ? config : CP_SYSCONFDIR "/cellprov/sm.conf", args,
					listen, "127.0.0.1:8443", port_file);

		if (r >= 0)
			return r;
	}
	secure_heap_init();
	if (!sm_load(&sm, config ? config : CP_SYSCONFDIR "/cellprov/sm.conf", &error))
		goto out;

	cfg_listen = conf_string(sm.kf, "listen", "127.0.0.1:8443");
	tls_cert = conf_string(sm.kf, "tls-certificate", NULL);
	tls_key = conf_string(sm.kf, "tls-key", NULL);
	client_ca = conf_string(sm.kf, "client-ca", NULL);
	hc.listen = listen ? listen : cfg_listen;
	hc.tls_certificate = tls_cert;
	hc.tls_key = tls_key;
	hc.client_ca = client_ca;
	hc.max_connections = (guint)sm.max_connections;
	hc.connection_timeout = (guint)sm.connection_timeout;
	hc.body_max = (gsize)sm.body_max;
	if (!cp_http_config_load(&hc, sm.kf, "sm", &error)) {
		g_prefix_error(&error, "%s: ", config ? config : CP_SYSCONFDIR "/cellprov/sm.conf");
		goto out;
	}
	if (!tls_cert && !sm.plain_http) {
		cp_set_error(&error, CP_ERR_BAD_VALUE,
			     "no tls-certificate: set one, or plain-http=true to serve companions without TLS");
		goto out;
	}
	cp_worker_apply(&worker, &hc);
	sm.http = cp_http_server_new(&hc, &error);
	if (!sm.http)
		goto out;
	cp_http_server_add_counter(sm.http, "cellprov_chain_cache_hits_total",
				   "Certificate chains served from the chain cache (fresh or revalidated).",
				   cp_chain_cache_hits(sm.chain_cache));
	cp_http_server_add_counter(sm.http, "cellprov_chain_cache_misses_total",
				   "Certificate chains fetched in full.", cp_chain_cache_misses(sm.chain_cache));
	cp_http_server_add_handler(sm.http, "/v1/provision", handle_provision, &sm);
	cp_http_server_add_handler(sm.http, "/v1/devices", handle_devices, &sm);
	cp_http_server_add_handler(sm.http, "/v1/device", handle_device, &sm);
	cp_http_server_add_handler(sm.http, NULL, handle_default, &sm);
	/* Stoppable before anyone learns we are ready: a SIGTERM right after
	 * the port file appears is a clean stop, not the default action. */
	sm.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_signal, &sm);
	g_unix_signal_add(SIGINT, on_signal, &sm);
	if (port_file && worker.fd < 0 && !cp_http_server_write_port(sm.http, port_file, &error))
		goto out;
	g_message("listening on port %u (%s)", cp_http_server_get_port(sm.http), tls_cert ? "HTTPS" : "HTTP");
	if (cp_http_server_get_metrics_port(sm.http))
		g_message("/metrics and /healthz on port %u", cp_http_server_get_metrics_port(sm.http));

	/* Bindings whose decommission timed out while the SM was down. */
	expire_releasing(&sm, NULL);
	cp_worker_ready(&worker);
	g_main_loop_run(sm.loop);
	cp_worker_stopping(&worker);
	ret = 0;
out:
	if (error)
		g_printerr("cellprov-sm: %s\n", error->message);
	sm_clear(&sm);
	/*
	 * OpenSSL's own cleanup frees its DRBGs, then the secure heap, which
	 * it releases only when empty. LeakSanitizer does not see into that
	 * heap: this is the leak check for secrets.
	 */
	OPENSSL_cleanup();
	if (CRYPTO_secure_malloc_initialized())
		g_warning("secure heap: %zu bytes still allocated at exit", CRYPTO_secure_used());
	return ret;
}
