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
 * every error code).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cp-config.h"
#include "cellprov.h"
#include "cp-chain.h"
#include "cp-conf.h"
#include "cp-db.h"
#include "cp-glib.h"
#include "cp-http.h"

#define SM_SCHEMA \
	"CREATE TABLE IF NOT EXISTS attestations (" \
	" device_id TEXT PRIMARY KEY," \
	" att_counter TEXT NOT NULL," /* 16 hex digits: compares as the number */ \
	" updated INTEGER NOT NULL);" \
	"CREATE TABLE IF NOT EXISTS provisionings (" \
	" id INTEGER PRIMARY KEY AUTOINCREMENT," \
	" device_id TEXT NOT NULL," \
	" profile_seq INTEGER NOT NULL," \
	" companion TEXT NOT NULL," \
	" supi TEXT NOT NULL," \
	" suite TEXT NOT NULL," \
	" att_counter TEXT NOT NULL," \
	" nonce TEXT NOT NULL," \
	" certificate_url TEXT NOT NULL," \
	" profile_sha256 TEXT NOT NULL," \
	" created INTEGER NOT NULL," \
	" UNIQUE (device_id, profile_seq));"

/*
 * Schema version 2 (PRAGMA user_version), ownership: the owner binding of
 * each device, and what each provisioning did to it. A database from
 * before it gets the columns and the table at start, and each device it
 * provisioned a binding at version 0 to the companion of its last
 * provisioning.
 */
#define SM_SCHEMA_VERSION 2
#define SM_MIGRATE_2 \
	"ALTER TABLE provisionings ADD COLUMN operation INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE provisionings ADD COLUMN binding_version INTEGER NOT NULL DEFAULT 0;" \
	"CREATE TABLE bindings (" \
	" device_id TEXT PRIMARY KEY," \
	" owner_name TEXT NOT NULL," \
	" owner_supi TEXT NOT NULL," \
	" binding_version INTEGER NOT NULL," \
	" state TEXT NOT NULL," /* 'claiming' while a first claim runs, then 'bound' */ \
	" created INTEGER NOT NULL," \
	" updated INTEGER NOT NULL);" \
	"INSERT INTO bindings (device_id, owner_name, owner_supi, binding_version, state, created, updated)" \
	" SELECT device_id, companion, companion, 0, 'bound', created, created FROM provisionings p" \
	" WHERE profile_seq = (SELECT MAX(profile_seq) FROM provisionings q WHERE q.device_id = p.device_id);"

typedef struct {
	char *name;
	char *supi;
	gboolean is_cert;               /* cert-sha256 rather than token-sha256 */
	uint8_t hash[CP_SHA256_LEN];
} Companion;

typedef struct {
	GKeyFile *kf;
	char *database;
	X509_STORE *anchors;
	GPtrArray *companions;
	GPtrArray *url_prefixes;        /* GUri, parsed once */
	gboolean allow_http;
	gboolean plain_http;
	guint64 fetch_timeout;
	guint64 fetch_max;
	char *ausf_url;
	CpSecret *ausf_token;
	guint64 ausf_timeout;
	char plmn[7];
	char *network_name;
	char *apn;
	guint64 profile_lifetime;
	guint64 max_connections;
	guint64 connection_timeout;
	guint64 body_max;
	CpSuite suites[2];
	gsize n_suites;
	EVP_PKEY *signing_key;          /* the SM's operator signing key */
	uint8_t op_chain[CP_CHAIN_MAX]; /* its chain, DER, signer first */
	size_t op_chain_len;
	sqlite3 *db;
	SoupSession *fetch_session;
	SoupSession *ausf_session;
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
	EVP_PKEY *device_key;
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
	CpBuf profile;
	gint64 started;
} Provision;

static void release_reservation(Provision *p);

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
	EVP_PKEY_free(p->device_key);
	g_free(p->supi);
	cp_secret_free(p->k_sm);
	cp_secret_free(p->k2);
	cp_cleanse(p->enc_cred, sizeof(p->enc_cred));
	cp_buf_clear(&p->profile);
	g_free(p);
}

static void
provision_fail(Provision *p, guint status, const char *code, CpError number, const char *message)
{
	g_message("[%s] (%d/%d) failed: %s: %s", p->id_hex[0] ? p->id_hex : "-",
		  p->step, N_STEPS, code, message);
	release_reservation(p);
	cp_http_reply_error(p->msg, status, code, number, "%s", message);
	soup_server_message_unpause(p->msg);
	provision_free(p);
}

static void provision_step(Provision *p);

static void
chain_fetched(GObject *source, GAsyncResult *res, gpointer data)
{
	Provision *p = data;
	g_autoptr(GError) error = NULL;

	p->chain = cp_chain_fetch_finish(res, &error);
	if (!p->chain) {
		provision_fail(p, SOUP_STATUS_BAD_GATEWAY,
			       error->domain == CP_CHAIN_ERROR ? cp_chain_error_code(error->code) : "chain-fetch-failed",
			       0, error->message);
		return;
	}
	p->step++;
	provision_step(p);
}

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
	g_autoptr(SoupMessage) m = soup_message_new(SOUP_METHOD_POST, sm->ausf_url);
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
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	body = g_bytes_new_take(text, len);
	soup_message_set_request_body_from_bytes(m, "application/json", body);
	auth = g_strdup_printf("Bearer %.*s", (int)sm->ausf_token->len, (const char *)sm->ausf_token->data);
	soup_message_headers_replace(soup_message_get_request_headers(m), "Authorization", auth);
	cp_cleanse(auth, strlen(auth));
	soup_message_add_flags(m, SOUP_MESSAGE_NO_REDIRECT);
	soup_session_send_and_read_async(sm->ausf_session, m, G_PRIORITY_DEFAULT, NULL, ausf_answered, p);
}

/* Counter strictly above the last accepted one, recorded in the same
 * statement so that two requests carrying one record cannot both pass. */
static int
accept_counter(Sm *sm, const char *id_hex, guint64 counter, GError **error)
{
	char hex[17];
	sqlite3_stmt *st;
	int rc;

	g_snprintf(hex, sizeof(hex), "%016" G_GINT64_MODIFIER "x", counter);
	st = cp_db_prepare(sm->db,
			   "INSERT INTO attestations (device_id, att_counter, updated) VALUES (?1, ?2, ?3) "
			   "ON CONFLICT(device_id) DO UPDATE SET att_counter = ?2, updated = ?3 "
			   "WHERE att_counter < ?2", error);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, id_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hex, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, g_get_real_time() / G_USEC_PER_SEC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cp_db_set_error(sm->db, error, "recording the attestation counter");
		return -1;
	}
	return sqlite3_changes(sm->db) == 1 ? 1 : 0;
}

static gboolean
store_provisioning(Provision *p, GError **error)
{
	Sm *sm = p->sm;
	sqlite3_stmt *st;
	char nonce_hex[2 * CP_NONCE_LEN + 1], counter_hex[17], sha_hex[2 * CP_SHA256_LEN + 1];
	uint8_t sha[CP_SHA256_LEN];
	int rc;

	cp_hex_encode(p->nonce, sizeof(p->nonce), nonce_hex);
	g_snprintf(counter_hex, sizeof(counter_hex), "%016" G_GINT64_MODIFIER "x", p->dr.att_counter);
	cp_sha256(p->profile.data, p->profile.len, sha);
	cp_hex_encode(sha, sizeof(sha), sha_hex);
	st = cp_db_prepare(sm->db,
			   "INSERT INTO provisionings (device_id, profile_seq, companion, supi, suite, att_counter, "
			   "nonce, certificate_url, profile_sha256, created, operation, binding_version) "
			   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
			   error);
	if (!st)
		return FALSE;
	sqlite3_bind_text(st, 1, p->id_hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)p->profile_seq);
	sqlite3_bind_text(st, 3, p->companion->supi, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, p->supi, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, p->suite == CP_SUITE_A ? "A" : "B", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, counter_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, nonce_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, p->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, sha_hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, g_get_real_time() / G_USEC_PER_SEC);
	sqlite3_bind_int(st, 11, p->operation);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)p->binding_version);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cp_db_set_error(sm->db, error, "storing the provisioning record");
		return FALSE;
	}
	return TRUE;
}

static gboolean
next_profile_seq(Provision *p, GError **error)
{
	sqlite3_stmt *st = cp_db_prepare(p->sm->db,
					 "SELECT COALESCE(MAX(profile_seq), 0) FROM provisionings WHERE device_id = ?1",
					 error);

	if (!st)
		return FALSE;
	sqlite3_bind_text(st, 1, p->id_hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		cp_db_set_error(p->sm->db, error, "reading the profile sequence");
		sqlite3_finalize(st);
		return FALSE;
	}
	p->profile_seq = (guint64)sqlite3_column_int64(st, 0) + 1;
	sqlite3_finalize(st);
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
	sqlite3_stmt *st;
	int rc;

	st = cp_db_prepare(sm->db,
			   "INSERT INTO bindings (device_id, owner_name, owner_supi, binding_version, state, created, updated) "
			   "VALUES (?1, ?2, ?3, 1, 'claiming', ?4, ?4) ON CONFLICT(device_id) DO NOTHING", &error);
	if (!st)
		goto storage;
	sqlite3_bind_text(st, 1, p->id_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->companion->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->companion->supi, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cp_db_set_error(sm->db, &error, "reserving the owner binding");
		goto storage;
	}
	if (sqlite3_changes(sm->db) == 1) {
		p->reserved = TRUE;
		p->operation = CP_OP_CLAIM;
		p->binding_version = 1;
		return TRUE;
	}

	st = cp_db_prepare(sm->db, "SELECT owner_supi, binding_version FROM bindings WHERE device_id = ?1", &error);
	if (!st)
		goto storage;
	sqlite3_bind_text(st, 1, p->id_hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		/* not between two statements of one SM: they all run on its main loop */
		cp_db_set_error(sm->db, &error, "reading the owner binding");
		sqlite3_finalize(st);
		goto storage;
	}
	owner = g_strdup((const char *)sqlite3_column_text(st, 0));
	p->binding_version = (guint64)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
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
	sqlite3_stmt *st;

	if (!p->reserved)
		return;
	p->reserved = FALSE;
	st = cp_db_prepare(p->sm->db, "DELETE FROM bindings WHERE device_id = ?1 AND state = 'claiming'", NULL);
	if (!st)
		return;
	sqlite3_bind_text(st, 1, p->id_hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		g_warning("[%s] cannot release the owner binding: %s", p->id_hex, sqlite3_errmsg(p->sm->db));
	sqlite3_finalize(st);
}

/* The binding holds once its profile is out: with the provisioning record,
 * in one transaction (store_provisioning's caller). */
static gboolean
bind_owner(Provision *p, GError **error)
{
	Sm *sm = p->sm;
	sqlite3_stmt *st;
	int rc;

	st = cp_db_prepare(sm->db,
			   "INSERT INTO bindings (device_id, owner_name, owner_supi, binding_version, state, created, updated) "
			   "VALUES (?1, ?2, ?3, ?4, 'bound', ?5, ?5) ON CONFLICT(device_id) DO UPDATE SET "
			   "state = 'bound', updated = ?5 WHERE owner_supi = ?3 AND binding_version = ?4", error);
	if (!st)
		return FALSE;
	sqlite3_bind_text(st, 1, p->id_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->companion->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->companion->supi, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)p->binding_version);
	sqlite3_bind_int64(st, 5, g_get_real_time() / G_USEC_PER_SEC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cp_db_set_error(sm->db, error, "storing the owner binding");
		return FALSE;
	}
	if (sqlite3_changes(sm->db) != 1) {
		cp_set_error(error, CP_ERR_STORAGE, "the owner binding changed during the provisioning");
		return FALSE;
	}
	return TRUE;
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
	json_builder_add_string_value(b, p->operation == CP_OP_CLAIM ? "claim" : "reprovision");
	json_builder_set_member_name(b, "binding-version");
	json_builder_add_int_value(b, (gint64)p->binding_version);
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
		cp_chain_fetch_async(sm->fetch_session, p->url, sm->fetch_max, sm->fetch_timeout, NULL,
				     chain_fetched, p);
		return;

	case STEP_VERIFY_CHAIN: {
		gsize len;
		const void *pem = g_bytes_get_data(p->chain, &len);

		g_debug("[%s] (%d/%d) verifying the chain", p->id_hex, p->step, N_STEPS);
		p->device_key = cp_chain_verify(sm->anchors, pem, len, g_get_real_time() / G_USEC_PER_SEC, &error);
		if (!p->device_key) {
			provision_fail(p, error->code == CP_CHAIN_ERROR_GARBAGE ? SOUP_STATUS_BAD_GATEWAY : SOUP_STATUS_FORBIDDEN,
				       cp_chain_error_code(error->code), 0, error->message);
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

		g_debug("[%s] (%d/%d) checking the attestation", p->id_hex, p->step, N_STEPS);
		err = cp_device_record_verify(rec, len, p->device_key, &p->dr);
		if (err != CP_OK) {
			provision_fail(p, err == CP_ERR_SIGNATURE ? SOUP_STATUS_FORBIDDEN : SOUP_STATUS_BAD_REQUEST,
				       cp_error_name(err), err,
				       err == CP_ERR_SIGNATURE ? "the device record's attestation signature is wrong"
							       : cp_error_message(err));
			return;
		}
		if (!cp_memeq_consttime(p->dr.device_id, p->url_device_id, CP_DEVICE_ID_LEN)) {
			provision_fail(p, SOUP_STATUS_FORBIDDEN, "device-id-mismatch", CP_ERR_WRONG_DEVICE,
				       "the device record is not from the device of the certificate URL");
			return;
		}
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
		if (p->dr.att_counter > G_MAXINT64) {
			provision_fail(p, SOUP_STATUS_BAD_REQUEST, cp_error_name(CP_ERR_BAD_VALUE), CP_ERR_BAD_VALUE,
				       "att_counter out of range");
			return;
		}
		p->step++;
	}
		G_GNUC_FALLTHROUGH;
	case STEP_BINDING:
		g_debug("[%s] (%d/%d) checking the owner binding", p->id_hex, p->step, N_STEPS);
		if (!check_binding(p))
			return;
		p->step++;
		G_GNUC_FALLTHROUGH;
	case STEP_COUNTER: {
		int fresh;

		g_debug("[%s] (%d/%d) checking the attestation counter", p->id_hex, p->step, N_STEPS);
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
		const uint8_t *rec = g_bytes_get_data(p->record, NULL);
		cp_auto_secret *k_prof = NULL;
		CpProfile prof;

		g_debug("[%s] (%d/%d) building the profile", p->id_hex, p->step, N_STEPS);
		if (cp_random(p->nonce, sizeof(p->nonce)) != CP_OK ||
		    !(p->k2 = cp_keys_k2(p->k_sm, p->nonce, rec, p->dr.info_len)) ||
		    !(k_prof = cp_keys_k_prof(p->k_sm, p->nonce))) {
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", CP_ERR_CRYPTO,
				       "key derivation failed");
			return;
		}
		if (!next_profile_seq(p, &error)) {
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
		g_strlcpy(prof.network_name, sm->network_name, sizeof(prof.network_name));
		g_strlcpy(prof.supi, p->supi, sizeof(prof.supi));
		g_strlcpy(prof.apn, sm->apn, sizeof(prof.apn));
		prof.operation = (uint8_t)p->operation;
		prof.binding_version = p->binding_version;
		memcpy(prof.op_chain, sm->op_chain, sm->op_chain_len);
		prof.op_chain_len = sm->op_chain_len;
		err = cp_profile_encode(&prof, sm->signing_key, k_prof, &p->profile);
		cp_cleanse(&prof, sizeof(prof));
		if (err != CP_OK) {
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, cp_error_name(err), err,
				       "the profile cannot be encoded");
			return;
		}
		p->step++;
	}
		G_GNUC_FALLTHROUGH;
	case STEP_STORE:
		g_debug("[%s] (%d/%d) storing the provisioning record", p->id_hex, p->step, N_STEPS);
		if (!cp_db_exec(sm->db, "BEGIN IMMEDIATE", &error) ||
		    !store_provisioning(p, &error) || !bind_owner(p, &error) ||
		    !cp_db_exec(sm->db, "COMMIT", &error)) {
			if (!sqlite3_get_autocommit(sm->db))
				cp_db_exec(sm->db, "ROLLBACK", NULL);
			provision_fail(p, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE, error->message);
			return;
		}
		p->reserved = FALSE;    /* bound now: a later failure keeps it */
		p->step++;
		G_GNUC_FALLTHROUGH;
	case STEP_LAST: {
		g_autofree char *red = cp_redact(p->supi);

		g_message("[%s] provisioned: profile_seq %" G_GUINT64_FORMAT ", %s at binding version %"
			  G_GUINT64_FORMAT ", SUPI %s, %.1f ms",
			  p->id_hex, p->profile_seq, p->operation == CP_OP_CLAIM ? "claim" : "reprovision",
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
	if (!sm->url_prefixes || !sm->url_prefixes->len)
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
		cp_http_reply_error(msg, SOUP_STATUS_FORBIDDEN, "url-not-allowed", 0,
				    "this SM does not fetch certificates from that host");
		return;
	}

	p = g_new0(Provision, 1);
	p->sm = sm;
	sm->in_flight++;
	p->msg = g_object_ref(msg);
	p->companion = c;
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
	g_message("[%s] provisioning asked by companion '%s'", p->id_hex, c->name);
	soup_server_message_pause(msg);
	provision_step(p);
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
		{ "max-connections", 64, 1, 65536, &sm->max_connections },
		{ "connection-timeout", 30, 1, 86400, &sm->connection_timeout },
		{ "body-max", 16384, 1, 1024 * 1024, &sm->body_max },
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
make_session(const char *ca_file, guint timeout, GError **error)
{
	SoupSession *s = soup_session_new_with_options("timeout", timeout, "idle-timeout", timeout,
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
static EVP_PKEY *
private_key_from_pem(const CpSecret *pem)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	EVP_PKEY *key;

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
	EVP_PKEY *signer = NULL;
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
	EVP_PKEY_free(signer);
	return TRUE;
}

/* Bindings migrated from provisionings know the companion by its SUPI:
 * name it as the companions file does. */
static gboolean
migrate_owner_names(Sm *sm, GError **error)
{
	sqlite3_stmt *st = cp_db_prepare(sm->db,
					 "UPDATE bindings SET owner_name = ?1 WHERE owner_supi = ?2 AND owner_name = owner_supi",
					 error);

	if (!st)
		return FALSE;
	for (guint i = 0; i < sm->companions->len; i++) {
		Companion *c = g_ptr_array_index(sm->companions, i);

		sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c->supi, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			cp_db_set_error(sm->db, error, "naming the migrated owners");
			sqlite3_finalize(st);
			return FALSE;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return TRUE;
}

/* The schema at SM_SCHEMA_VERSION, in one transaction; then no claim is
 * under way (none survives the process that made it). */
static gboolean
sm_migrate(Sm *sm, GError **error)
{
	sqlite3_stmt *st = cp_db_prepare(sm->db, "PRAGMA user_version", error);
	int version;

	if (!st)
		return FALSE;
	version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0) {
		cp_db_set_error(sm->db, error, "reading the schema version");
		return FALSE;
	}
	if (version > SM_SCHEMA_VERSION) {
		cp_set_error(error, CP_ERR_STORAGE, "%s: schema version %d is newer than this SM's (%d)",
			     sm->database, version, SM_SCHEMA_VERSION);
		return FALSE;
	}
	if (version < 2) {
		if (!cp_db_exec(sm->db, "BEGIN IMMEDIATE", error))
			return FALSE;
		if (!cp_db_exec(sm->db, SM_MIGRATE_2 "PRAGMA user_version = 2;", error) ||
		    !migrate_owner_names(sm, error) ||
		    !cp_db_exec(sm->db, "COMMIT", error)) {
			cp_db_exec(sm->db, "ROLLBACK", NULL);
			g_prefix_error(error, "%s: migrating to schema version 2: ", sm->database);
			return FALSE;
		}
		g_message("database schema version 2: each device provisioned before is bound at version 0 "
			  "to the companion of its last provisioning");
	}
	return cp_db_exec(sm->db, "DELETE FROM bindings WHERE state = 'claiming'", error);
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
	sm->database = conf_string(sm->kf, "database", "/var/lib/cellprov-sm/sm.db");
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
	    !(sm->fetch_session = make_session(fetch_ca, sm->fetch_timeout, error)) ||
	    !(sm->ausf_session = make_session(ausf_ca, sm->ausf_timeout, error)))
		return FALSE;
	{
		g_autofree char *base = sm->ausf_url;

		while (g_str_has_suffix(base, "/"))
			base[strlen(base) - 1] = '\0';
		sm->ausf_url = g_strconcat(base, "/v1/devices", NULL);
	}
	sm->db = cp_db_open(sm->database, SM_SCHEMA, error);
	return sm->db && sm_migrate(sm, error);
}

static void
sm_clear(Sm *sm)
{
	cp_http_server_free(sm->http);
	if (sm->db)
		cp_db_close(sm->db);
	X509_STORE_free(sm->anchors);
	EVP_PKEY_free(sm->signing_key);
	if (sm->companions)
		g_ptr_array_unref(sm->companions);
	if (sm->url_prefixes)
		g_ptr_array_unref(sm->url_prefixes);
	g_free(sm->database);
	g_free(sm->ausf_url);
	g_free(sm->network_name);
	g_free(sm->apn);
	cp_secret_free(sm->ausf_token);
	g_clear_object(&sm->fetch_session);
	g_clear_object(&sm->ausf_session);
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
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) oc = g_option_context_new("- cellprov subscription manager (reference network)");
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "Configuration file (default: " CP_SYSCONFDIR "/cellprov/sm.conf)", "FILE" },
		{ "listen", 'l', 0, G_OPTION_ARG_STRING, &listen, "Listen on host:port (overrides the file; port 0: any free port)", "ADDR" },
		{ "port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file, "Write the bound port here once listening", "FILE" },
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
	if (!tls_cert && !sm.plain_http) {
		cp_set_error(&error, CP_ERR_BAD_VALUE,
			     "no tls-certificate: set one, or plain-http=true to serve companions without TLS");
		goto out;
	}
	sm.http = cp_http_server_new(&hc, &error);
	if (!sm.http)
		goto out;
	cp_http_server_add_handler(sm.http, "/v1/provision", handle_provision, &sm);
	cp_http_server_add_handler(sm.http, NULL, handle_default, &sm);
	/* Stoppable before anyone learns we are ready: a SIGTERM right after
	 * the port file appears is a clean stop, not the default action. */
	sm.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_signal, &sm);
	g_unix_signal_add(SIGINT, on_signal, &sm);
	if (port_file && !cp_http_server_write_port(sm.http, port_file, &error))
		goto out;
	g_message("listening on port %u (%s)", cp_http_server_get_port(sm.http), tls_cert ? "HTTPS" : "HTTP");

	g_main_loop_run(sm.loop);
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
