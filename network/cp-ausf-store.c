/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-ausf-store.h"

#include <string.h>

#include <openssl/evp.h>

#include "cp-glib.h"

/* Advisory lock class of the AUSF (cp_store_open()): "cpau". */
#define AUSF_LOCK_CLASS 0x63706175

#define KEK_LEN 32
#define GCM_NONCE 12
#define GCM_TAG 16
#define KEY_LEN 16
#define SEALED_PREFIX "kek1:"
#define CHECK_AAD "cellprov-ausf/kek-check"

struct _CpAusfStore {
	CpStore *db;
	CpSecret *kek;
};

/* Version 1: the first schema; SQLite files from before versions have it. */
#define AUSF_SCHEMA_1 \
	"CREATE TABLE IF NOT EXISTS subscribers (" \
	" supi TEXT PRIMARY KEY," \
	" device_id TEXT NOT NULL UNIQUE," \
	" companion TEXT NOT NULL," \
	" k_usim TEXT NOT NULL," \
	" opc TEXT NOT NULL," \
	" sqn TEXT NOT NULL," \
	" created INTEGER NOT NULL," \
	" updated INTEGER NOT NULL);"

/*
 * Version 2: key generations. A subscriber is (SUPI, device, companion,
 * last generation); its key sets are in keysets, one a generation. A
 * device may have a subscriber under each companion it was transferred
 * to, so device_id is no longer unique: the table is rebuilt. Each
 * subscriber of a version-1 database becomes generation 1 with its key set.
 */
#define AUSF_MIGRATE_2 \
	"CREATE TABLE subscribers_2 (" \
	" supi TEXT PRIMARY KEY," \
	" device_id TEXT NOT NULL," \
	" companion TEXT NOT NULL," \
	" generation INTEGER NOT NULL," \
	" created INTEGER NOT NULL," \
	" updated INTEGER NOT NULL," \
	" UNIQUE (device_id, companion));" \
	"CREATE TABLE keysets (" \
	" supi TEXT NOT NULL REFERENCES subscribers_2(supi) ON DELETE CASCADE," \
	" generation INTEGER NOT NULL," \
	" k_usim TEXT NOT NULL," \
	" opc TEXT NOT NULL," \
	" sqn TEXT NOT NULL," \
	" created INTEGER NOT NULL," \
	" PRIMARY KEY (supi, generation));" \
	"INSERT INTO subscribers_2 (supi, device_id, companion, generation, created, updated)" \
	" SELECT supi, device_id, companion, 1, created, updated FROM subscribers;" \
	"INSERT INTO keysets (supi, generation, k_usim, opc, sqn, created)" \
	" SELECT supi, 1, k_usim, opc, sqn, updated FROM subscribers;" \
	"DROP TABLE subscribers;" \
	"ALTER TABLE subscribers_2 RENAME TO subscribers;"

/* Version 3: keys at rest. k_usim and opc hold "kek1:" and the base64 of
 * nonce || ciphertext || tag; kek_check the check value of the KEK. The
 * migration seals each key set a version-2 store holds in clear. */
#define AUSF_MIGRATE_3 \
	"CREATE TABLE kek_check (id INTEGER PRIMARY KEY, sealed TEXT NOT NULL);"

/* PostgreSQL: version 3 from the start. */
#define AUSF_CREATE_PG \
	"CREATE TABLE subscribers (" \
	" supi TEXT PRIMARY KEY," \
	" device_id TEXT NOT NULL," \
	" companion TEXT NOT NULL," \
	" generation BIGINT NOT NULL," \
	" created BIGINT NOT NULL," \
	" updated BIGINT NOT NULL," \
	" UNIQUE (device_id, companion));" \
	"CREATE TABLE keysets (" \
	" supi TEXT NOT NULL REFERENCES subscribers(supi) ON DELETE CASCADE," \
	" generation BIGINT NOT NULL," \
	" k_usim TEXT NOT NULL," \
	" opc TEXT NOT NULL," \
	" sqn TEXT NOT NULL," \
	" created BIGINT NOT NULL," \
	" PRIMARY KEY (supi, generation));" \
	"CREATE TABLE kek_check (id INTEGER PRIMARY KEY, sealed TEXT NOT NULL);"

/* ---- sealing ---- */

static char *
seal(const CpSecret *kek, const char *aad, const uint8_t *data, size_t len, GError **error)
{
	uint8_t buf[GCM_NONCE + 64 + GCM_TAG];
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0, fin = 0;
	char *out = NULL;

	g_return_val_if_fail(len <= 64, NULL);
	if (cp_random(buf, GCM_NONCE) != CP_OK || !(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek->data, buf) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(ctx, buf + GCM_NONCE, &n, data, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, buf + GCM_NONCE + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, buf + GCM_NONCE + len) != 1) {
		cp_set_error(error, CP_ERR_CRYPTO, "sealing a key under the KEK failed");
	} else {
		g_autofree char *b64 = g_base64_encode(buf, GCM_NONCE + len + GCM_TAG);

		out = g_strconcat(SEALED_PREFIX, b64, NULL);
	}
	EVP_CIPHER_CTX_free(ctx);
	cp_cleanse(buf, sizeof(buf));
	return out;
}

/* The clear value of len bytes into out; FALSE (CP_ERR_KEY): it does not
 * open under this KEK for this row. */
static gboolean
unseal(const CpSecret *kek, const char *aad, const char *sealed, uint8_t *out, size_t len, GError **error)
{
	g_autofree uint8_t *raw = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	gsize raw_len = 0;
	int n = 0, fin = 0;
	gboolean ok;

	if (sealed && g_str_has_prefix(sealed, SEALED_PREFIX))
		raw = g_base64_decode(sealed + strlen(SEALED_PREFIX), &raw_len);
	ok = raw && raw_len == GCM_NONCE + len + GCM_TAG && (ctx = EVP_CIPHER_CTX_new()) &&
	     EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek->data, raw) == 1 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
	     EVP_DecryptUpdate(ctx, out, &n, raw + GCM_NONCE, (int)len) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, raw + GCM_NONCE + len) == 1 &&
	     EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		cp_cleanse(out, len);
		cp_set_error(error, CP_ERR_KEY, "a sealed key does not open under the key-encryption key "
			     "(another kek, or a value moved to another row)");
	}
	return ok;
}

static char *
key_aad(const char *column, const char *supi, guint64 generation)
{
	return g_strdup_printf("cellprov-ausf/%s/%s/%" G_GUINT64_FORMAT, column, supi, generation);
}

static char *
seal_key(const CpSecret *kek, const char *column, const char *supi, guint64 generation,
	 const uint8_t key[KEY_LEN], GError **error)
{
	g_autofree char *aad = key_aad(column, supi, generation);

	return seal(kek, aad, key, KEY_LEN, error);
}

/* ---- schema ---- */

/* Version 3 on a version-2 store: each clear key set sealed in place. */
static gboolean
migrate_seal(CpStore *db, gpointer data, GError **error)
{
	CpAusfStore *st = data;
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(g_free);
	CpStmt *q;
	int rc;

	q = cp_store_prepare(db, "SELECT supi, generation, k_usim, opc FROM keysets", error);
	if (!q)
		return FALSE;
	while ((rc = cp_stmt_step(q)) == CP_STORE_ROW) {
		/* "supi generation k_usim opc": all text, cleansed below */
		g_ptr_array_add(rows, g_strdup_printf("%s %" G_GINT64_FORMAT " %s %s", cp_stmt_column_text(q, 0),
						      cp_stmt_column_int64(q, 1), cp_stmt_column_text(q, 2),
						      cp_stmt_column_text(q, 3)));
	}
	cp_stmt_finalize(q);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(db, error, "reading the key sets");
		return FALSE;
	}
	for (guint i = 0; i < rows->len; i++) {
		g_auto(GStrv) f = g_strsplit(rows->pdata[i], " ", 4);
		uint8_t k[KEY_LEN], o[KEY_LEN];
		g_autofree char *sk = NULL, *so = NULL;
		guint64 gen = g_ascii_strtoull(f[1], NULL, 10);
		gboolean ok;

		ok = g_strv_length(f) == 4 && cp_hex_decode(f[2], k, sizeof(k)) == KEY_LEN &&
		     cp_hex_decode(f[3], o, sizeof(o)) == KEY_LEN;
		if (ok) {
			sk = seal_key(st->kek, "k_usim", f[0], gen, k, error);
			so = sk ? seal_key(st->kek, "opc", f[0], gen, o, error) : NULL;
		} else {
			cp_set_error(error, CP_ERR_STORAGE, "a key set of SUPI %s is not 32 hex digits", f[0]);
		}
		cp_cleanse(k, sizeof(k));
		cp_cleanse(o, sizeof(o));
		for (guint j = 2; f[j]; j++)
			cp_cleanse(f[j], strlen(f[j]));
		cp_cleanse(rows->pdata[i], strlen(rows->pdata[i]));
		if (!so)
			return FALSE;
		q = cp_store_prepare(db, "UPDATE keysets SET k_usim = ?3, opc = ?4 WHERE supi = ?1 AND generation = ?2", error);
		if (!q)
			return FALSE;
		cp_stmt_bind_text(q, 1, f[0]);
		cp_stmt_bind_int64(q, 2, (gint64)gen);
		cp_stmt_bind_text(q, 3, sk);
		cp_stmt_bind_text(q, 4, so);
		rc = cp_stmt_step(q);
		cp_stmt_finalize(q);
		if (rc != CP_STORE_DONE) {
			cp_store_set_error(db, error, "sealing a key set");
			return FALSE;
		}
	}
	if (rows->len)
		g_message("AUSF store: %u key set(s) sealed under the key-encryption key", rows->len);
	return TRUE;
}

static const CpMigration ausf_migrations[] = {
	{ 2, { AUSF_MIGRATE_2, NULL }, NULL, "key generations (each subscriber's keys are generation 1)" },
	{ 3, { AUSF_MIGRATE_3, NULL }, migrate_seal, "K_usim and OPc sealed under the key-encryption key" },
};

static const CpSchema ausf_schema = {
	.who = "AUSF",
	.base_sqlite = AUSF_SCHEMA_1,
	.create_postgresql = AUSF_CREATE_PG,
	.migrations = ausf_migrations,
	.n_migrations = G_N_ELEMENTS(ausf_migrations),
};

/* The check value: made by the first start, opened by every later one. */
static gboolean
check_kek(CpAusfStore *st, GError **error)
{
	static const uint8_t zero[KEK_LEN];
	uint8_t out[KEK_LEN];
	g_autofree char *sealed = NULL, *stored = NULL;
	CpStmt *q;
	int rc;

	if (!(sealed = seal(st->kek, CHECK_AAD, zero, sizeof(zero), error)))
		return FALSE;
	/* of two processes starting at once, one inserts; both read it back */
	q = cp_store_prepare(st->db, "INSERT INTO kek_check (id, sealed) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING", error);
	if (!q)
		return FALSE;
	cp_stmt_bind_text(q, 1, sealed);
	rc = cp_stmt_step(q);
	cp_stmt_finalize(q);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(st->db, error, "storing the KEK check value");
		return FALSE;
	}
	q = cp_store_prepare(st->db, "SELECT sealed FROM kek_check WHERE id = 1", error);
	if (!q)
		return FALSE;
	rc = cp_stmt_step(q);
	if (rc == CP_STORE_ROW)
		stored = g_strdup(cp_stmt_column_text(q, 0));
	cp_stmt_finalize(q);
	if (rc != CP_STORE_ROW) {
		cp_store_set_error(st->db, error, "reading the KEK check value");
		return FALSE;
	}
	if (!unseal(st->kek, CHECK_AAD, stored, out, sizeof(out), NULL) || memcmp(out, zero, sizeof(out)) != 0) {
		cp_set_error(error, CP_ERR_KEY, "%s: the key-encryption key (kek) is not the one this store's keys "
			     "are sealed under", cp_store_name(st->db));
		return FALSE;
	}
	return TRUE;
}

CpAusfStore *
cp_ausf_store_open(const char *spec, const CpSecret *kek, GError **error)
{
	CpAusfStore *st = g_new0(CpAusfStore, 1);
	int from;

	if (!kek || kek->len != KEK_LEN) {
		cp_set_error(error, CP_ERR_KEY, "the key-encryption key must be 32 bytes (64 hex digits)");
		goto fail;
	}
	st->kek = cp_secret_dup(kek);
	if (!st->kek) {
		cp_set_error(error, CP_ERR_CRYPTO, "out of secure memory");
		goto fail;
	}
	st->db = cp_store_open(spec, AUSF_LOCK_CLASS, "AUSF", error);
	/* a store made before the KEK check (from 1 or 2) has no check value
	 * yet: the one this start makes is the KEK its keys were sealed with */
	if (!st->db || !cp_store_migrate(st->db, &ausf_schema, st, &from, error) || !check_kek(st, error))
		goto fail;
	return st;
fail:
	cp_ausf_store_free(st);
	return NULL;
}

void
cp_ausf_store_free(CpAusfStore *st)
{
	if (!st)
		return;
	cp_store_free(st->db);
	cp_secret_free(st->kek);
	g_free(st);
}

CpStore *
cp_ausf_store_db(CpAusfStore *st)
{
	return st->db;
}

/* ---- subscribers ---- */

gboolean
cp_ausf_store_find(CpAusfStore *st, const char *id_hex, const char *companion, char **supi,
		   guint64 *generation, GError **error)
{
	CpStmt *q = cp_store_prepare(st->db, "SELECT supi, generation FROM subscribers "
				     "WHERE device_id = ?1 AND companion = ?2", error);
	int rc;

	*supi = NULL;
	*generation = 0;
	if (!q)
		return FALSE;
	cp_stmt_bind_text(q, 1, id_hex);
	cp_stmt_bind_text(q, 2, companion);
	rc = cp_stmt_step(q);
	if (rc == CP_STORE_ROW) {
		*supi = g_strdup(cp_stmt_column_text(q, 0));
		*generation = (guint64)cp_stmt_column_int64(q, 1);
	}
	cp_stmt_finalize(q);
	if (rc == CP_STORE_ERROR) {
		/* not "no such device": that would give it a second SUPI */
		cp_store_set_error(st->db, error, "looking the device up");
		return FALSE;
	}
	return TRUE;
}

char *
cp_ausf_store_take_supi(CpAusfStore *st, const char *first, const char *last, const char *id_hex,
			const char *companion, GError **error)
{
	CpStmt *q;
	guint64 next, max = g_ascii_strtoull(last, NULL, 10);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	int rc;

	/* SUPIs of the range are 15 digits: text order is number order */
	q = cp_store_prepare(st->db, "SELECT supi FROM subscribers WHERE supi BETWEEN ?1 AND ?2 "
			     "ORDER BY supi DESC LIMIT 1", error);
	if (!q)
		return NULL;
	cp_stmt_bind_text(q, 1, first);
	cp_stmt_bind_text(q, 2, last);
	rc = cp_stmt_step(q);
	if (rc == CP_STORE_ROW)
		next = g_ascii_strtoull(cp_stmt_column_text(q, 0), NULL, 10) + 1;
	else
		next = g_ascii_strtoull(first, NULL, 10);
	cp_stmt_finalize(q);
	if (rc == CP_STORE_ERROR) {
		cp_store_set_error(st->db, error, "finding a free SUPI");
		return NULL;
	}
	/*
	 * The highest SUPI read is only a hint: another process may take
	 * the next one between the read and the insert. The insert decides
	 * (the primary key; on PostgreSQL it waits for the other
	 * transaction holding that SUPI, and finds it taken if that one
	 * commits): taken, the one after is tried.
	 */
	q = cp_store_prepare(st->db, "INSERT INTO subscribers (supi, device_id, companion, generation, created, updated) "
			     "VALUES (?1, ?2, ?3, 0, ?4, ?4) ON CONFLICT (supi) DO NOTHING", error);
	if (!q)
		return NULL;
	for (; next <= max; next++) {
		g_autofree char *supi = g_strdup_printf("%015" G_GUINT64_FORMAT, next);

		cp_stmt_reset(q);
		cp_stmt_bind_text(q, 1, supi);
		cp_stmt_bind_text(q, 2, id_hex);
		cp_stmt_bind_text(q, 3, companion);
		cp_stmt_bind_int64(q, 4, now);
		if (cp_stmt_step(q) != CP_STORE_DONE) {
			cp_store_set_error(st->db, error, "taking a SUPI");
			cp_stmt_finalize(q);
			return NULL;
		}
		if (cp_store_changes(st->db) == 1) {
			cp_stmt_finalize(q);
			return g_steal_pointer(&supi);
		}
	}
	cp_stmt_finalize(q);
	cp_set_error(error, CP_ERR_STATE, "the SUPI range %s-%s is used up", first, last);
	return NULL;
}

gboolean
cp_ausf_store_put_subscriber(CpAusfStore *st, const char *supi, const char *id_hex,
			     const char *companion, guint64 generation, GError **error)
{
	CpStmt *q = cp_store_prepare(st->db,
				     "INSERT INTO subscribers (supi, device_id, companion, generation, created, updated) "
				     "VALUES (?1, ?2, ?3, ?4, ?5, ?5) "
				     "ON CONFLICT (supi) DO UPDATE SET generation = ?4, updated = ?5 "
				     "WHERE subscribers.device_id = ?2 AND subscribers.companion = ?3", error);
	int rc;

	if (!q)
		return FALSE;
	cp_stmt_bind_text(q, 1, supi);
	cp_stmt_bind_text(q, 2, id_hex);
	cp_stmt_bind_text(q, 3, companion);
	cp_stmt_bind_int64(q, 4, (gint64)generation);
	cp_stmt_bind_int64(q, 5, g_get_real_time() / G_USEC_PER_SEC);
	rc = cp_stmt_step(q);
	cp_stmt_finalize(q);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(st->db, error, "storing the subscriber");
		return FALSE;
	}
	/* a SUPI is one device's under one companion, never taken over */
	if (cp_store_changes(st->db) != 1) {
		cp_set_error(error, CP_ERR_STORAGE, "SUPI already belongs to another subscriber");
		return FALSE;
	}
	return TRUE;
}

gboolean
cp_ausf_store_put_keyset(CpAusfStore *st, const char *supi, guint64 generation,
			 const CpSecret *k_usim, const CpSecret *opc, const char *sqn, GError **error)
{
	g_autofree char *sk = NULL, *so = NULL;
	CpStmt *q;
	int rc;

	if (k_usim->len != KEY_LEN || opc->len != KEY_LEN) {
		cp_set_error(error, CP_ERR_ARGUMENT, "K_usim and OPc are 16 bytes");
		return FALSE;
	}
	if (!(sk = seal_key(st->kek, "k_usim", supi, generation, k_usim->data, error)) ||
	    !(so = seal_key(st->kek, "opc", supi, generation, opc->data, error)))
		return FALSE;
	q = cp_store_prepare(st->db,
			     "INSERT INTO keysets (supi, generation, k_usim, opc, sqn, created) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (supi, generation) DO NOTHING", error);
	if (!q)
		return FALSE;
	cp_stmt_bind_text(q, 1, supi);
	cp_stmt_bind_int64(q, 2, (gint64)generation);
	cp_stmt_bind_text(q, 3, sk);
	cp_stmt_bind_text(q, 4, so);
	cp_stmt_bind_text(q, 5, sqn);
	cp_stmt_bind_int64(q, 6, g_get_real_time() / G_USEC_PER_SEC);
	rc = cp_stmt_step(q);
	cp_stmt_finalize(q);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(st->db, error, "storing the key set");
		return FALSE;
	}
	return TRUE;
}

/*
 * The subscriber file of the contracts: "<imsi> <K> <OPc> <SQN>" a line,
 * one line per valid key set. An IMSI with several key generations has
 * several lines, newest first: the network tries each in turn.
 */
char *
cp_ausf_store_export(CpAusfStore *st, GError **error)
{
	GString *out = g_string_new("# cellprov subscribers: <imsi> <K_usim> <OPc> <SQN>\n"
				    "# an IMSI with several valid key generations has a line each, newest first\n");
	CpStmt *q = cp_store_prepare(st->db, "SELECT supi, generation, k_usim, opc, sqn FROM keysets "
				     "ORDER BY supi, generation DESC", error);
	gboolean ok = q != NULL;
	int rc = CP_STORE_ERROR;

	while (ok && (rc = cp_stmt_step(q)) == CP_STORE_ROW) {
		const char *supi = cp_stmt_column_text(q, 0);
		guint64 gen = (guint64)cp_stmt_column_int64(q, 1);
		g_autofree char *ak = key_aad("k_usim", supi, gen), *ao = key_aad("opc", supi, gen);
		uint8_t k[KEY_LEN], o[KEY_LEN];
		char kh[2 * KEY_LEN + 1], oh[2 * KEY_LEN + 1];

		ok = unseal(st->kek, ak, cp_stmt_column_text(q, 2), k, sizeof(k), error) &&
		     unseal(st->kek, ao, cp_stmt_column_text(q, 3), o, sizeof(o), error);
		if (ok) {
			cp_hex_encode(k, sizeof(k), kh);
			cp_hex_encode(o, sizeof(o), oh);
			g_string_append_printf(out, "%s %s %s %s\n", supi, kh, oh, cp_stmt_column_text(q, 4));
		}
		cp_cleanse(k, sizeof(k));
		cp_cleanse(o, sizeof(o));
		cp_cleanse(kh, sizeof(kh));
		cp_cleanse(oh, sizeof(oh));
	}
	if (q)
		cp_stmt_finalize(q);
	if (ok && rc != CP_STORE_DONE) {
		cp_store_set_error(st->db, error, "reading subscribers");
		ok = FALSE;
	}
	if (!ok) {
		cp_cleanse(out->str, out->len);
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}

/* The last generation is never dropped. */
int
cp_ausf_store_retire(CpAusfStore *st, const char *supi, guint64 below, GError **error)
{
	CpStmt *q = cp_store_prepare(st->db,
				     "DELETE FROM keysets WHERE supi = ?1 AND generation < ?2 AND "
				     "generation < (SELECT generation FROM subscribers WHERE supi = ?1)", error);
	int rc;

	if (!q)
		return -1;
	cp_stmt_bind_text(q, 1, supi);
	cp_stmt_bind_int64(q, 2, (gint64)MIN(below, (guint64)G_MAXINT64));
	rc = cp_stmt_step(q);
	cp_stmt_finalize(q);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(st->db, error, "retiring key generations");
		return -1;
	}
	return cp_store_changes(st->db);
}

static gboolean
run_supi(CpAusfStore *st, const char *sql, const char *supi, const char *what, GError **error)
{
	CpStmt *q = cp_store_prepare(st->db, sql, error);
	int rc;

	if (!q)
		return FALSE;
	cp_stmt_bind_text(q, 1, supi);
	rc = cp_stmt_step(q);
	cp_stmt_finalize(q);
	if (rc != CP_STORE_DONE) {
		cp_store_set_error(st->db, error, what);
		return FALSE;
	}
	return TRUE;
}

int
cp_ausf_store_remove(CpAusfStore *st, const char *supi, GError **error)
{
	int n;

	if (!cp_store_begin(st->db, NULL, error))
		return -1;
	if (!run_supi(st, "DELETE FROM keysets WHERE supi = ?1", supi, "removing the key sets", error) ||
	    !run_supi(st, "DELETE FROM subscribers WHERE supi = ?1", supi, "removing the subscriber", error))
		goto rollback;
	n = cp_store_changes(st->db);
	if (!cp_store_commit(st->db, error))
		goto rollback;
	return n;
rollback:
	cp_store_rollback(st->db);
	return -1;
}
