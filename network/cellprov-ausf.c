/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov-ausf: the AUSF/UDM role of the reference network. It holds the
 * companions' K_AUSF, gives each device a SUPI from a configured range,
 * derives K', K_usim and OPc, seals K' || OPc to the device key (ECIES) and
 * hands K_SM to the SM. The device's USIM credentials stay here, in its
 * store (SQLite or PostgreSQL, sealed under the operator's key-encryption
 * key: cp-ausf-store.h), and leave only as the subscriber file the
 * network's authentication uses. It keeps no state of its own between
 * requests: any number of AUSF processes may share one PostgreSQL store.
 *
 * Its API is internal (the SM is its only client), every call with the
 * SM's token: POST /v1/devices (add a device, or its next key generation),
 * GET /v1/subscribers (the subscriber file), POST
 * /v1/subscribers/{supi}/retire (drop key generations below one) and
 * DELETE /v1/subscribers/{supi} (remove a subscriber).
 *
 * Key generations: a subscriber (SUPI) holds one key set (K_usim, OPc,
 * SQN) per generation of K' (cp_keys_k_prime_gen). Adding the device again
 * for the same companion makes the next generation under the same SUPI and
 * keeps the older ones, all valid for the network, until the SM retires
 * them (once the device confirmed the new keys). Adding it for another
 * companion (a transfer) makes a new SUPI; the old one stays until the SM
 * removes it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <glib-unix.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "cp-crypto-openssl.h"
#include "cp-config.h"
#include "cellprov.h"
#include "cp-conf.h"
#include "cp-ausf-store.h"
#include "cp-glib.h"
#include "cp-http.h"
#include "cp-workers.h"

typedef struct {
	char *supi;
	CpSecret *k_ausf;
} Companion;

typedef struct {
	GKeyFile *kf;
	char *store;
	char *imsi_first;
	char *imsi_last;
	char *sqn;
	CpSecret *op;
	CpSecret *token;
	GHashTable *companions;     /* SUPI -> Companion */
	CpAusfStore *db;
	CpHttpServer *http;
	GMainLoop *loop;
} Ausf;

static void
companion_free(gpointer p)
{
	Companion *c = p;

	g_free(c->supi);
	cp_secret_free(c->k_ausf);
	g_free(c);
}

/*
 * OpenSSL's secure heap (locked, guarded, out of core dumps) for K_AUSF,
 * OP, the token and each request's K', K_usim and OPc (CpSecret). Its size
 * is fixed at start, so it follows the K_AUSF store: the whole file while
 * it is parsed, then a 64-byte block a companion, plus 32 KiB for the
 * requests under way; doubled, as the arena is a buddy allocator, and a
 * power of two. Without it secrets use the ordinary heap, still cleansed
 * on free.
 */
#define SECURE_HEAP_MIN (64 * 1024)
#define SECURE_HEAP_MAX (64 * 1024 * 1024)

static void
secure_heap_init(const char *k_ausf)
{
	g_autofree char *path = NULL;
	size_t need = 32 * 1024, size = SECURE_HEAP_MIN;
	const char *dir = g_getenv("CREDENTIALS_DIRECTORY");
	struct stat st;

	if (strchr(k_ausf, '/'))
		path = g_strdup(k_ausf);
	else if (dir)
		path = g_build_filename(dir, k_ausf, NULL);
	if (path && stat(path, &st) == 0 && st.st_size > 0 && (guint64)st.st_size < SECURE_HEAP_MAX)
		need += 2 * (size_t)st.st_size + 64 * ((size_t)st.st_size / 66 + 1);
	while (size < 2 * need && size < SECURE_HEAP_MAX)
		size <<= 1;
	switch (CRYPTO_secure_malloc_init(size, 32)) {
	case 1:
		g_debug("secure heap: %zu KiB", size / 1024);
		break;
	case 2:
		g_warning("secure heap: %zu KiB not locked in memory (no right to mlock: "
			  "LimitMEMLOCK= or CAP_IPC_LOCK); secrets could reach swap", size / 1024);
		break;
	default:
		g_warning("secure heap: cannot set up %zu KiB; secrets stay on the ordinary heap", size / 1024);
		break;
	}
}

/*
 * The reference network's K_AUSF store: "<companion SUPI> <K_AUSF, 64 hex>"
 * a line. A real AUSF has it from the companion's last primary
 * authentication; here it is loaded from a file as secret as a key.
 */
static gboolean
load_companions(Ausf *a, const char *path, GError **error)
{
	g_autoptr(CpSecret) text = cp_secret_load(path, FALSE, 0, error);
	g_autofree char *copy = NULL;
	char *line, *save = NULL;
	guint lineno = 0;

	if (!text)
		return FALSE;
	copy = g_strndup((const char *)text->data, text->len);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		g_auto(GStrv) f = NULL;
		Companion *c;

		lineno++;
		g_strstrip(line);
		if (!*line || *line == '#')
			continue;
		f = g_strsplit_set(line, " \t", -1);
		if (g_strv_length(f) != 2 || !cp_supi_valid(f[0]) ||
		    !(c = g_new0(Companion, 1)) ||
		    !(c->k_ausf = cp_secret_new_from_hex(f[1], CP_K_AUSF_LEN))) {
			if (f && f[1])
				cp_cleanse(f[1], strlen(f[1]));
			cp_cleanse(copy, strlen(copy));
			cp_set_error(error, CP_ERR_BAD_VALUE,
				     "%s line %u: want '<SUPI> <K_AUSF as 64 hex>'", path, lineno);
			return FALSE;
		}
		cp_cleanse(f[1], strlen(f[1]));
		c->supi = g_strdup(f[0]);
		g_hash_table_replace(a->companions, c->supi, c);
	}
	cp_cleanse(copy, strlen(copy));
	g_message("%u companion(s) loaded", g_hash_table_size(a->companions));
	return TRUE;
}

static gboolean
imsi_valid(const char *s)
{
	return s && strlen(s) == 15 && cp_supi_valid(s);
}

typedef struct {
	char *supi;
	guint64 generation;
	uint8_t enc_cred[CP_ENC_CRED_MAX];
	size_t enc_cred_len;
	CpSecret *k_sm;
} AddResult;

static void
add_result_clear(AddResult *r)
{
	g_free(r->supi);
	cp_secret_free(r->k_sm);
	memset(r, 0, sizeof(*r));
}

/*
 * Step 6 of the flow. The device's subscriber under this companion gets
 * its next key generation (same SUPI; the older generations stay valid
 * until retired); a device new to this companion gets a new SUPI at
 * generation 1, whatever SUPIs it has under other companions.
 */
static gboolean
add_device(Ausf *a, const char *companion, const uint8_t device_id[CP_DEVICE_ID_LEN],
	   CpKey *pub, CpSuite suite, gboolean new_keys, AddResult *r, guint *http_status,
	   const char **code, GError **error)
{
	Companion *c = g_hash_table_lookup(a->companions, companion);
	CpStore *db = cp_ausf_store_db(a->db);
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	g_autofree char *supi = NULL;
	g_autofree char *red = NULL;
	cp_auto_secret *k_prime = NULL;
	cp_auto_secret *k_usim = NULL;
	cp_auto_secret *opc = NULL;
	guint64 generation;
	CpError err;

	if (!c) {
		*http_status = SOUP_STATUS_NOT_FOUND;
		*code = "unknown-companion";
		cp_set_error(error, CP_ERR_STATE, "no K_AUSF for this companion");
		return FALSE;
	}
	cp_hex_encode(device_id, CP_DEVICE_ID_LEN, id_hex);

	/* one writer a device (PostgreSQL: an advisory lock on its id; one
	 * SQLite file has one writer): its subscriber is looked up, then
	 * made, by one AUSF process at a time. The SUPI a new one takes
	 * needs no lock: the row's key decides between processes. */
	if (!cp_store_begin(db, id_hex, error))
		goto storage;
	if (!cp_ausf_store_find(a->db, id_hex, companion, &supi, &generation, error))
		goto rollback;
	if (!supi && !(supi = cp_ausf_store_take_supi(a->db, a->imsi_first, a->imsi_last, id_hex, companion,
						       error))) {
		if (g_error_matches(*error, CP_ERROR, CP_ERR_STORAGE))
			goto rollback;
		cp_store_rollback(db);
		*http_status = SOUP_STATUS_SERVICE_UNAVAILABLE;
		*code = "supi-range-exhausted";
		return FALSE;
	}
	/* A retry of a claim the device never completed takes the keys it
	 * was given (new_keys false); a re-provisioning the next generation. */
	if (new_keys || generation == 0)
		generation++;

	k_prime = cp_keys_k_prime_gen(c->k_ausf, device_id, supi, generation);
	k_usim = k_prime ? cp_keys_k_usim(k_prime) : NULL;
	opc = k_usim ? cp_keys_opc(k_usim, a->op) : NULL;
	r->k_sm = k_prime ? cp_keys_k_sm(k_prime, device_id) : NULL;
	if (!opc || !r->k_sm) {
		cp_set_error(error, CP_ERR_CRYPTO, "key derivation failed");
		goto crypto;
	}
	err = cp_enc_cred_seal(suite, pub, NULL, k_prime, opc, r->enc_cred, &r->enc_cred_len);
	if (err != CP_OK) {
		cp_set_error(error, err, "sealing the credentials failed: %s", cp_error_message(err));
		goto crypto;
	}
	if (!cp_ausf_store_put_subscriber(a->db, supi, id_hex, companion, generation, error))
		goto rollback;
	if (!cp_ausf_store_put_keyset(a->db, supi, generation, k_usim, opc, a->sqn, error)) {
		if (!g_error_matches(*error, CP_ERROR, CP_ERR_STORAGE))
			goto crypto;
		goto rollback;
	}
	if (!cp_store_commit(db, error))
		goto rollback;

	red = cp_redact(supi);
	g_message("device %s: SUPI %s, key generation %" G_GUINT64_FORMAT ", suite %s", id_hex, red,
		  generation, suite == CP_SUITE_A ? "A" : "B");
	r->supi = g_steal_pointer(&supi);
	r->generation = generation;
	return TRUE;

crypto:
	cp_store_rollback(db);
	*http_status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
	*code = "crypto";
	add_result_clear(r);
	return FALSE;
rollback:
	cp_store_rollback(db);
storage:
	*http_status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
	*code = "storage";
	add_result_clear(r);
	return FALSE;
}

static gboolean
authorized(Ausf *a, SoupServerMessage *msg)
{
	g_autofree char *token = cp_http_bearer(msg);
	gboolean ok = token && strlen(token) == a->token->len &&
		      cp_memeq_consttime(token, a->token->data, a->token->len);

	if (token)
		cp_cleanse(token, strlen(token));
	if (!ok)
		cp_http_reply_error(msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized", 0,
				    "a valid bearer token is needed");
	else
		cp_http_server_set_authenticated(a->http, msg);
	return ok;
}

static void
handle_devices(SoupServer *server, SoupServerMessage *msg, const char *path,
	       GHashTable *query, gpointer data)
{
	Ausf *a = data;
	g_autoptr(JsonObject) req = NULL;
	g_autoptr(GBytes) spki = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) b = NULL;
	g_autofree char *enc_b64 = NULL, *k_sm_b64 = NULL;
	const char *companion, *id_hex, *suite_s;
	uint8_t device_id[CP_DEVICE_ID_LEN], check[CP_DEVICE_ID_LEN];
	CpKey *pub = NULL;
	AddResult r = { 0 };
	guint status = 0;
	const char *code = NULL;
	gboolean new_keys;
	CpSuite suite;

	if (strcmp(soup_server_message_get_method(msg), "POST") != 0) {
		cp_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed", 0, "use POST");
		return;
	}
	if (!authorized(a, msg) || !(req = cp_http_request_json(msg)))
		return;
	companion = cp_json_string(req, "companion");
	id_hex = cp_json_string(req, "device-id");
	suite_s = cp_json_string(req, "suite");
	spki = cp_json_base64(req, "public-key", 512);
	if (!companion || !cp_supi_valid(companion) || !id_hex || strlen(id_hex) != 32 ||
	    cp_hex_decode(id_hex, device_id, sizeof(device_id)) != CP_DEVICE_ID_LEN ||
	    !spki || !suite_s || (strcmp(suite_s, "A") && strcmp(suite_s, "B"))) {
		cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
				    "want companion (SUPI), device_id (32 hex), public_key (base64 SPKI), suite (A or B)");
		return;
	}
	suite = strcmp(suite_s, "A") == 0 ? CP_SUITE_A : CP_SUITE_B;
	pub = cp_pubkey_from_spki(g_bytes_get_data(spki, NULL), g_bytes_get_size(spki));
	/* Suite B seals to a P-256 key, suite A to an X25519 one: a key of
	 * the other kind is the request's fault, not a crypto failure */
	if (!pub || !(suite == CP_SUITE_B ? cp_pkey_is_p256(pub) : cp_pkey_is_x25519(pub))) {
		cp_key_free(pub);
		cp_http_reply_cp_error(msg, SOUP_STATUS_BAD_REQUEST, CP_ERR_KEY,
				       "public_key must be a DER SPKI of the suite's kind: P-256 for B, X25519 for A");
		return;
	}
	/* The SM checked this too; the AUSF does not take its word for it */
	if (cp_device_id(pub, check) != CP_OK || memcmp(check, device_id, sizeof(check)) != 0) {
		cp_key_free(pub);
		cp_http_reply_error(msg, SOUP_STATUS_CONFLICT, "device-id-mismatch", 0,
				    "device_id is not the hash of public_key");
		return;
	}
	g_message("request=%s POST /v1/devices: device %s, suite %s", cp_http_request_id(msg), id_hex, suite_s);
	{
		JsonNode *n = json_object_get_member(req, "new-keys");

		if (n && (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)) {
			cp_key_free(pub);
			cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
					    "new-keys must be true or false");
			return;
		}
		new_keys = n ? json_node_get_boolean(n) : TRUE;
	}
	if (!add_device(a, companion, device_id, pub, suite, new_keys, &r, &status, &code, &error)) {
		cp_key_free(pub);
		g_warning("device %s: %s", id_hex, error->message);
		cp_http_reply_error(msg, status, code, cp_error_from_gerror(error, 0), "%s", error->message);
		return;
	}
	cp_key_free(pub);

	enc_b64 = g_base64_encode(r.enc_cred, r.enc_cred_len);
	k_sm_b64 = g_base64_encode(r.k_sm->data, r.k_sm->len);
	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "supi");
	json_builder_add_string_value(b, r.supi);
	json_builder_set_member_name(b, "generation");
	json_builder_add_int_value(b, (gint64)r.generation);
	json_builder_set_member_name(b, "enc-cred");
	json_builder_add_string_value(b, enc_b64);
	json_builder_set_member_name(b, "k-sm");
	json_builder_add_string_value(b, k_sm_b64);
	json_builder_end_object(b);
	cp_http_reply_json(msg, SOUP_STATUS_OK, b);
	/* json-glib keeps its own copy (in the reply) which it frees without
	 * cleansing; ours at least does not linger */
	cp_cleanse(k_sm_b64, strlen(k_sm_b64));
	add_result_clear(&r);
}

/* A SUPI as the last segment but one (or last) of the path. */
static gboolean
path_supi(const char *path, char supi[16], const char *suffix)
{
	const char *p = path + strlen("/v1/subscribers/");
	size_t n = strcspn(p, "/");

	if (n < 6 || n > 15 || strcmp(p + n, suffix) != 0)
		return FALSE;
	memcpy(supi, p, n);
	supi[n] = '\0';
	return cp_supi_valid(supi);
}

/*
 * GET /v1/subscribers: the subscriber file. POST
 * /v1/subscribers/{supi}/retire {"below-generation": n}: drop the key
 * sets below n (never the last one). DELETE /v1/subscribers/{supi}: remove
 * the subscriber. Both answer {"supi", "retired"|"removed": count} and are
 * idempotent: the SM may repeat them.
 */
static void
handle_subscribers(SoupServer *server, SoupServerMessage *msg, const char *path,
		   GHashTable *query, gpointer data)
{
	Ausf *a = data;
	const char *method = soup_server_message_get_method(msg);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) req = NULL;
	g_autoptr(JsonBuilder) b = NULL;
	g_autofree char *red = NULL;
	char supi[16];
	const char *what;
	JsonNode *gen;
	int n;
	char *text;

	if (strcmp(path, "/v1/subscribers") == 0) {
		if (strcmp(method, "GET") != 0) {
			cp_http_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed", 0, "use GET");
			return;
		}
		if (!authorized(a, msg))
			return;
		g_message("GET /v1/subscribers");
		text = cp_ausf_store_export(a->db, &error);
		if (!text) {
			cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE,
					    "%s", error->message);
			return;
		}
		soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
		soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_TAKE, text, strlen(text));
		return;
	}
	if (!authorized(a, msg))
		return;
	if (strcmp(method, "DELETE") == 0 && path_supi(path, supi, "")) {
		red = cp_redact(supi);
		g_message("DELETE /v1/subscribers: SUPI %s", red);
		n = cp_ausf_store_remove(a->db, supi, &error);
		what = "removed";
	} else if (strcmp(method, "POST") == 0 && path_supi(path, supi, "/retire")) {
		gint64 below;

		if (!(req = cp_http_request_json(msg)))
			return;
		gen = json_object_get_member(req, "below-generation");
		if (!gen || !JSON_NODE_HOLDS_VALUE(gen) || json_node_get_value_type(gen) != G_TYPE_INT64 ||
		    (below = json_node_get_int(gen)) < 1) {
			cp_http_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", 0,
					    "want below-generation (a number, at least 1)");
			return;
		}
		red = cp_redact(supi);
		g_message("POST /v1/subscribers/retire: SUPI %s, below generation %" G_GINT64_FORMAT, red, below);
		n = cp_ausf_store_retire(a->db, supi, (guint64)below, &error);
		what = "retired";
	} else {
		cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "not-found", 0,
				    "no such resource: %s %s (want DELETE /v1/subscribers/{supi} or "
				    "POST /v1/subscribers/{supi}/retire)", method, path);
		return;
	}
	if (n < 0) {
		g_warning("SUPI %s: %s", red, error->message);
		cp_http_reply_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "storage", CP_ERR_STORAGE,
				    "%s", error->message);
		return;
	}
	g_message("SUPI %s: %d %s", red, n, strcmp(what, "removed") == 0 ? "subscriber removed" : "key set(s) retired");
	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "supi");
	json_builder_add_string_value(b, supi);
	json_builder_set_member_name(b, what);
	json_builder_add_int_value(b, n);
	json_builder_end_object(b);
	cp_http_reply_json(msg, SOUP_STATUS_OK, b);
}

static void
handle_default(SoupServer *server, SoupServerMessage *msg, const char *path,
	       GHashTable *query, gpointer data)
{
	cp_http_reply_error(msg, SOUP_STATUS_NOT_FOUND, "not-found", 0, "no such resource: %s", path);
}

static gboolean
on_signal(gpointer data)
{
	Ausf *a = data;

	g_message("stopping");
	g_main_loop_quit(a->loop);
	return G_SOURCE_CONTINUE;
}

static char *
conf_string(GKeyFile *kf, const char *key, const char *def)
{
	return cp_conf_string(kf, "ausf", key, def);
}

static gboolean
ausf_load(Ausf *a, const char *path, GError **error)
{
	g_autofree char *k_ausf = NULL, *op = NULL, *token = NULL, *kek_name = NULL, *database = NULL;
	cp_auto_secret *kek = NULL;

	a->kf = g_key_file_new();
	if (!g_key_file_load_from_file(a->kf, path, G_KEY_FILE_NONE, error)) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	/* store = sqlite:PATH | postgresql:CONNINFO; the older database =
	 * PATH is the SQLite file when store is not set */
	database = conf_string(a->kf, "database", "/var/lib/cellprov-ausf/ausf.db");
	a->store = conf_string(a->kf, "store", NULL);
	if (!a->store)
		a->store = g_strconcat("sqlite:", database, NULL);
	kek_name = conf_string(a->kf, "kek", NULL);
	a->imsi_first = conf_string(a->kf, "imsi-first", "001010000000001");
	a->imsi_last = conf_string(a->kf, "imsi-last", "001010000099999");
	a->sqn = conf_string(a->kf, "sqn", "000000000000");
	k_ausf = conf_string(a->kf, "k-ausf", NULL);
	op = conf_string(a->kf, "op", NULL);
	token = conf_string(a->kf, "token", NULL);
	if (!imsi_valid(a->imsi_first) || !imsi_valid(a->imsi_last) ||
	    strcmp(a->imsi_first, a->imsi_last) > 0) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: imsi-first and imsi-last must be 15-digit IMSIs, first <= last", path);
		return FALSE;
	}
	if (strlen(a->sqn) != 12 || cp_hex_decode(a->sqn, (uint8_t[6]){ 0 }, 6) != 6) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: sqn must be 12 hex digits", path);
		return FALSE;
	}
	if (!k_ausf || !op || !token) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: k-ausf, op and token are required", path);
		return FALSE;
	}
	if (!kek_name) {
		cp_set_error(error, CP_ERR_KEY, "%s: kek is required: the key-encryption key (64 hex digits, "
			     "a systemd credential) that seals K_usim and OPc in the store", path);
		return FALSE;
	}
	if (!g_str_has_prefix(a->store, "sqlite:") && !g_str_has_prefix(a->store, "postgresql:")) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: store must be sqlite:PATH or postgresql:CONNINFO", path);
		return FALSE;
	}
	secure_heap_init(k_ausf);
	a->companions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, companion_free);
	if (!load_companions(a, k_ausf, error))
		return FALSE;
	if (!(a->op = cp_secret_load(op, TRUE, 16, error)))
		return FALSE;
	if (!(a->token = cp_secret_load(token, FALSE, 0, error)))
		return FALSE;
	if (a->token->len < 16) {
		cp_set_error(error, CP_ERR_KEY, "%s: the token must be at least 16 characters", token);
		return FALSE;
	}
	if (!(kek = cp_secret_load(kek_name, TRUE, 32, error))) {
		g_prefix_error(error, "kek: ");
		return FALSE;
	}
	a->db = cp_ausf_store_open(a->store, kek, error);
	return a->db != NULL;
}

static void
ausf_clear(Ausf *a)
{
	cp_http_server_free(a->http);
	cp_ausf_store_free(a->db);
	if (a->companions)
		g_hash_table_unref(a->companions);
	cp_secret_free(a->op);
	cp_secret_free(a->token);
	g_free(a->store);
	g_free(a->imsi_first);
	g_free(a->imsi_last);
	g_free(a->sqn);
	if (a->kf)
		g_key_file_unref(a->kf);
	if (a->loop)
		g_main_loop_unref(a->loop);
}

int
main(int argc, char **argv)
{
	g_autofree char *config = NULL, *listen = NULL, *port_file = NULL, *export_path = NULL;
	g_autofree char *cfg_listen = NULL, *tls_cert = NULL, *tls_key = NULL;
	gboolean export = FALSE;
	g_autofree char *worker_opt = NULL;
	g_auto(GStrv) args = g_strdupv(argv);
	CpWorker worker;
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) oc = g_option_context_new("- cellprov AUSF/UDM (reference network)");
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "Configuration file (default: " CP_SYSCONFDIR "/cellprov/ausf.conf)", "FILE" },
		{ "listen", 'l', 0, G_OPTION_ARG_STRING, &listen, "Listen on host:port (overrides the file; port 0: any free port)", "ADDR" },
		{ "port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file, "Write the bound port here once listening", "FILE" },
		{ "export", 0, 0, G_OPTION_ARG_NONE, &export, "Print the subscriber file and exit", NULL },
		{ "export-file", 0, 0, G_OPTION_ARG_FILENAME, &export_path, "Write the subscriber file (0600) and exit", "FILE" },
		CP_OPTION_WORKER(&worker_opt),
		CP_OPTION_VERSION,
		G_OPTION_ENTRY_NULL
	};
	Ausf a = { 0 };
	CpHttpConfig hc = { 0 };
	guint64 max_connections, connection_timeout;
	int ret = 1;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cellprov-ausf: %s\n", error->message);
		return 2;
	}
	if (!cp_worker_parse(worker_opt, &worker, &error)) {
		g_printerr("cellprov-ausf: %s\n", error->message);
		return 2;
	}
	if (worker.fd < 0 && !export && !export_path) {
		/* workers > 1: this process supervises them */
		int r = cp_workers_main("cellprov-ausf", "ausf",
					config ? config : CP_SYSCONFDIR "/cellprov/ausf.conf", args,
					listen, "127.0.0.1:8081", port_file);

		if (r >= 0)
			return r;
	}
	if (!ausf_load(&a, config ? config : CP_SYSCONFDIR "/cellprov/ausf.conf", &error))
		goto out;

	if (export || export_path) {
		g_autofree char *text = cp_ausf_store_export(a.db, &error);

		if (!text)
			goto out;
		if (export_path) {
			if (!cp_file_replace(export_path, text, strlen(text), 0600, &error)) {
				cp_cleanse(text, strlen(text));
				goto out;
			}
		} else {
			fputs(text, stdout);
		}
		cp_cleanse(text, strlen(text));
		ret = 0;
		goto out;
	}

	cfg_listen = conf_string(a.kf, "listen", "127.0.0.1:8081");
	tls_cert = conf_string(a.kf, "tls-certificate", NULL);
	tls_key = conf_string(a.kf, "tls-key", NULL);
	hc.listen = listen ? listen : cfg_listen;
	hc.tls_certificate = tls_cert;
	hc.tls_key = tls_key;
	if (!cp_conf_uint(a.kf, "ausf", "max-connections", 64, 1, 65536, &max_connections, &error) ||
	    !cp_conf_uint(a.kf, "ausf", "connection-timeout", 30, 1, 86400, &connection_timeout, &error))
		goto out;
	hc.max_connections = (guint)max_connections;
	hc.connection_timeout = (guint)connection_timeout;
	hc.body_max = 8192;
	if (!cp_http_config_load(&hc, a.kf, "ausf", &error))
		goto out;
	cp_worker_apply(&worker, &hc);
	a.http = cp_http_server_new(&hc, &error);
	if (!a.http)
		goto out;
	cp_http_server_add_handler(a.http, "/v1/devices", handle_devices, &a);
	cp_http_server_add_handler(a.http, "/v1/subscribers", handle_subscribers, &a);
	cp_http_server_add_handler(a.http, NULL, handle_default, &a);
	/* Stoppable before anyone learns we are ready: a SIGTERM right after
	 * the port file appears is a clean stop, not the default action. */
	a.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_signal, &a);
	g_unix_signal_add(SIGINT, on_signal, &a);
	if (port_file && worker.fd < 0 && !cp_http_server_write_port(a.http, port_file, &error))
		goto out;
	g_message("listening on port %u (%s)", cp_http_server_get_port(a.http), tls_cert ? "HTTPS" : "HTTP");
	if (cp_http_server_get_metrics_port(a.http))
		g_message("/metrics and /healthz on port %u", cp_http_server_get_metrics_port(a.http));

	cp_worker_ready(&worker);
	g_main_loop_run(a.loop);
	cp_worker_stopping(&worker);
	ret = 0;
out:
	if (error)
		g_printerr("cellprov-ausf: %s\n", error->message);
	ausf_clear(&a);
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
