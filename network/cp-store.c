/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-config.h"
#include "cp-store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#if CP_HAVE_POSTGRESQL
#include <libpq-fe.h>
#endif

#include "cp-glib.h"

#define MAX_PARAMS 16

struct _CpStore {
	CpStoreKind kind;
	char *name;
	char *who;
	int lock_class;
	GHashTable *stmts;              /* SQL text -> CpStmt (idle) */
	char *errmsg;
	int changes;
	sqlite3 *db;
#if CP_HAVE_POSTGRESQL
	PGconn *pg;
	guint generation;               /* bumped at each (re)connection */
	guint next_name;
	gboolean in_tx;                 /* between begin and commit/rollback */
#endif
};

struct _CpStmt {
	CpStore *s;
	char *sql;
	gboolean busy;
	gboolean cached;
	sqlite3_stmt *lite;
#if CP_HAVE_POSTGRESQL
	char *pg_sql;                   /* ?N -> $N */
	char name[16];
	guint prepared_in;              /* generation it was prepared in, 0: not */
	int n_params;
	char *values[MAX_PARAMS];
	int lengths[MAX_PARAMS];
	int formats[MAX_PARAMS];
	PGresult *res;
	int row, n_rows;
	unsigned char *blob;            /* the last column_blob, unescaped */
#endif
};

gboolean
cp_store_have_postgresql(void)
{
#if CP_HAVE_POSTGRESQL
	return TRUE;
#else
	return FALSE;
#endif
}

static void
set_errmsg(CpStore *s, const char *msg)
{
	g_free(s->errmsg);
	s->errmsg = g_strdup(msg && *msg ? msg : "unknown error");
	g_strchomp(s->errmsg);
}

void
cp_store_set_error(CpStore *s, GError **error, const char *what)
{
	cp_set_error(error, CP_ERR_STORAGE, "%s: %s", what, s->errmsg ? s->errmsg : "unknown error");
}

const char *
cp_store_errmsg(CpStore *s)
{
	return s->errmsg ? s->errmsg : "no error";
}

int
cp_store_changes(CpStore *s)
{
	return s->changes;
}

CpStoreKind
cp_store_kind(CpStore *s)
{
	return s->kind;
}

const char *
cp_store_name(CpStore *s)
{
	return s->name;
}

static void
stmt_free(gpointer p)
{
	CpStmt *st = p;

	if (!st)
		return;
	if (st->lite)
		sqlite3_finalize(st->lite);
#if CP_HAVE_POSTGRESQL
	for (int i = 0; i < MAX_PARAMS; i++)
		g_free(st->values[i]);
	if (st->res)
		PQclear(st->res);
	if (st->blob)
		PQfreemem(st->blob);
	g_free(st->pg_sql);
#endif
	g_free(st->sql);
	g_free(st);
}

/* ---- SQLite ---- */

static gboolean
lite_exec(CpStore *s, const char *sql, GError **error)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_errmsg(s, msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		cp_store_set_error(s, error, s->name);
		return FALSE;
	}
	return TRUE;
}

/*
 * Another process writing the same file: SQLite's own busy handler
 * sleeps 1, 2, 5, 10 ... 100 ms between tries, where a writer's turn
 * (one provisioning's transaction) takes well under a millisecond, so
 * two SM processes on one file waited on each other for tens of
 * milliseconds. Short sleeps instead, about 5 s in all, as before.
 */
static int
lite_busy(void *data, int count)
{
	if (count >= 2600)
		return 0;
	g_usleep(count < 10 ? 100 : count < 100 ? 500 : 2000);
	return 1;
}

static gboolean
lite_open(CpStore *s, const char *path, GError **error)
{
	int fd;

	/* Create the file ourselves so it is never briefly world-readable */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot open %s: %s", path, g_strerror(errno));
		return FALSE;
	}
	if (fchmod(fd, 0600) < 0) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot chmod %s: %s", path, g_strerror(errno));
		close(fd);
		return FALSE;
	}
	close(fd);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot open %s: %s", path,
			     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		return FALSE;
	}
	sqlite3_busy_handler(s->db, lite_busy, NULL);
	/* WAL with synchronous=FULL: an answer given to a client is never
	 * lost to a crash; secure_delete: what a row held before (a key in
	 * clear, before it was sealed) does not stay in a free page */
	return lite_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;", error);
}

/* ---- PostgreSQL ---- */

#if CP_HAVE_POSTGRESQL
static void
pg_notice(void *data, const char *message)
{
	g_debug("postgresql: %s", message);
}

/* A usable connection: the one we have, or a new one if it was lost. */
static gboolean
pg_ready(CpStore *s, GError **error)
{
	/* A server that stopped or restarted, or a pooler that closed an
	 * idle connection, has told us so (or closed the socket) while we
	 * were idle: read that now, before a statement goes to a dead
	 * connection and fails a request that could have been served: an
	 * idle connection with something to read has its last message (a
	 * FATAL) and then the end of the stream waiting. */
	for (int i = 0; i < 4 && PQstatus(s->pg) == CONNECTION_OK; i++) {
		struct pollfd pfd = { .fd = PQsocket(s->pg), .events = POLLIN };

		if (poll(&pfd, 1, 0) <= 0 || !PQconsumeInput(s->pg))
			break;
	}
	if (PQstatus(s->pg) == CONNECTION_OK)
		return TRUE;
	PQreset(s->pg);
	if (PQstatus(s->pg) != CONNECTION_OK) {
		set_errmsg(s, PQerrorMessage(s->pg));
		cp_store_set_error(s, error, "cannot connect to postgresql");
		return FALSE;
	}
	s->generation++;
	g_message("%s: reconnected to postgresql", s->who);
	return TRUE;
}

static gboolean
pg_result_ok(CpStore *s, PGresult *res)
{
	ExecStatusType t = PQresultStatus(res);

	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK)
		return TRUE;
	set_errmsg(s, res ? PQresultErrorMessage(res) : PQerrorMessage(s->pg));
	if (!res || !*PQresultErrorMessage(res))
		set_errmsg(s, PQerrorMessage(s->pg));
	return FALSE;
}

static gboolean
pg_exec(CpStore *s, const char *sql, GError **error)
{
	PGresult *res;
	gboolean ok;

	if (!s->in_tx && !pg_ready(s, error))
		return FALSE;
	res = PQexec(s->pg, sql);
	ok = pg_result_ok(s, res);
	PQclear(res);
	if (!ok)
		cp_store_set_error(s, error, "postgresql");
	return ok;
}

static gboolean
pg_open(CpStore *s, const char *conninfo, GError **error)
{
	s->pg = PQconnectdb(conninfo);
	if (!s->pg) {
		cp_set_error(error, CP_ERR_STORAGE, "postgresql: out of memory");
		return FALSE;
	}
	if (PQstatus(s->pg) != CONNECTION_OK) {
		set_errmsg(s, PQerrorMessage(s->pg));
		cp_store_set_error(s, error, "cannot connect to postgresql");
		return FALSE;
	}
	PQsetNoticeProcessor(s->pg, pg_notice, NULL);
	s->generation = 1;
	/* text in UTF-8 whatever the server's default (a parameter poolers
	 * keep per client) */
	if (PQsetClientEncoding(s->pg, "UTF8") != 0) {
		set_errmsg(s, PQerrorMessage(s->pg));
		cp_store_set_error(s, error, "postgresql: client_encoding");
		return FALSE;
	}
	return TRUE;
}

/* "?N" -> "$N" outside quoted strings and identifiers; the highest N. */
static char *
pg_translate(const char *sql, int *n_params)
{
	GString *out = g_string_sized_new(strlen(sql) + 8);
	char quote = 0;

	*n_params = 0;
	for (const char *p = sql; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '?' && g_ascii_isdigit(p[1])) {
			int n = atoi(p + 1);

			*n_params = MAX(*n_params, n);
			g_string_append_c(out, '$');
			continue;
		}
		g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

static void
pg_stmt_clear_result(CpStmt *st)
{
	if (st->res)
		PQclear(st->res);
	st->res = NULL;
	st->row = st->n_rows = 0;
	if (st->blob)
		PQfreemem(st->blob);
	st->blob = NULL;
}

static int
pg_step(CpStmt *st)
{
	CpStore *s = st->s;
	const char *values[MAX_PARAMS];
	PGresult *res;

	if (st->res) {
		if (st->blob)
			PQfreemem(st->blob);
		st->blob = NULL;
		if (++st->row < st->n_rows)
			return CP_STORE_ROW;
		return CP_STORE_DONE;
	}
	/* outside a transaction a lost connection is taken up again; inside
	 * one it stays an error: the transaction is gone, and what follows
	 * must not run outside it */
	if (!s->in_tx && !pg_ready(s, NULL))
		return CP_STORE_ERROR;
	/* The cached statement of an SQL text is prepared once a connection
	 * (protocol-level, named: what a pooler such as PgBouncer 1.21 with
	 * max_prepared_statements follows); a second user of the text at
	 * once runs it unnamed (parsed for this execution only), so that no
	 * statement is ever deallocated by name. */
	if (st->cached && st->prepared_in != s->generation) {
		res = PQprepare(s->pg, st->name, st->pg_sql, st->n_params, NULL);
		if (!pg_result_ok(s, res)) {
			PQclear(res);
			return CP_STORE_ERROR;
		}
		PQclear(res);
		st->prepared_in = s->generation;
	}
	for (int i = 0; i < st->n_params; i++)
		values[i] = st->values[i];
	if (st->cached)
		res = PQexecPrepared(s->pg, st->name, st->n_params, values, st->lengths, st->formats, 0);
	else
		res = PQexecParams(s->pg, st->pg_sql, st->n_params, NULL, values, st->lengths, st->formats, 0);
	if (!pg_result_ok(s, res)) {
		PQclear(res);
		return CP_STORE_ERROR;
	}
	st->res = res;
	st->n_rows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
	st->row = 0;
	s->changes = atoi(PQcmdTuples(res));
	return st->n_rows > 0 ? CP_STORE_ROW : CP_STORE_DONE;
}
#endif

/* ---- the store ---- */

CpStore *
cp_store_open(const char *spec, int lock_class, const char *who, GError **error)
{
	CpStore *s = g_new0(CpStore, 1);
	gboolean ok;

	s->who = g_strdup(who);
	s->lock_class = lock_class;
	s->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, stmt_free);
	if (g_str_has_prefix(spec, "postgresql:")) {
		s->kind = CP_STORE_POSTGRESQL;
		s->name = g_strdup("postgresql");
#if CP_HAVE_POSTGRESQL
		ok = pg_open(s, spec + strlen("postgresql:"), error);
#else
		cp_set_error(error, CP_ERR_BAD_VALUE, "store: this %s was built without PostgreSQL (libpq)", who);
		ok = FALSE;
#endif
	} else {
		const char *path = g_str_has_prefix(spec, "sqlite:") ? spec + strlen("sqlite:") : spec;

		s->kind = CP_STORE_SQLITE;
		s->name = g_strdup(path);
		if (!*path) {
			cp_set_error(error, CP_ERR_BAD_VALUE, "store: sqlite: needs a file path");
			ok = FALSE;
		} else {
			ok = lite_open(s, path, error);
		}
	}
	if (!ok) {
		cp_store_free(s);
		return NULL;
	}
	return s;
}

void
cp_store_free(CpStore *s)
{
	if (!s)
		return;
	g_hash_table_destroy(s->stmts);
	if (s->db)
		sqlite3_close(s->db);
#if CP_HAVE_POSTGRESQL
	if (s->pg)
		PQfinish(s->pg);
#endif
	g_free(s->errmsg);
	g_free(s->name);
	g_free(s->who);
	g_free(s);
}

gboolean
cp_store_exec(CpStore *s, const char *sql, GError **error)
{
#if CP_HAVE_POSTGRESQL
	if (s->kind == CP_STORE_POSTGRESQL)
		return pg_exec(s, sql, error);
#endif
	return lite_exec(s, sql, error);
}

gboolean
cp_store_begin(CpStore *s, const char *scope, GError **error)
{
#if CP_HAVE_POSTGRESQL
	if (s->kind == CP_STORE_POSTGRESQL) {
		g_autofree char *sql = NULL;

		/* read committed, with every read-then-write of a scope
		 * serialised by the advisory lock: one writer a scope, as one
		 * SQLite file has one writer */
		if (!pg_exec(s, "BEGIN", error))
			return FALSE;
		s->in_tx = TRUE;
		sql = g_strdup_printf("SELECT pg_advisory_xact_lock(%d, %d)", s->lock_class,
				      scope ? (int)g_str_hash(scope) : 0);
		if (!pg_exec(s, sql, error)) {
			cp_store_rollback(s);
			return FALSE;
		}
		return TRUE;
	}
#endif
	return lite_exec(s, "BEGIN IMMEDIATE", error);
}

gboolean
cp_store_commit(CpStore *s, GError **error)
{
#if CP_HAVE_POSTGRESQL
	if (s->kind == CP_STORE_POSTGRESQL) {
		gboolean ok = pg_exec(s, "COMMIT", error);

		/* committed, or rolled back by the server: either way over */
		s->in_tx = FALSE;
		return ok;
	}
#endif
	return lite_exec(s, "COMMIT", error);
}

gboolean
cp_store_in_transaction(CpStore *s)
{
#if CP_HAVE_POSTGRESQL
	if (s->kind == CP_STORE_POSTGRESQL)
		return s->in_tx;
#endif
	return !sqlite3_get_autocommit(s->db);
}

void
cp_store_rollback(CpStore *s)
{
	if (!cp_store_in_transaction(s))
		return;
#if CP_HAVE_POSTGRESQL
	if (s->kind == CP_STORE_POSTGRESQL) {
		/* on a lost connection this fails: the server rolled back */
		PQclear(PQexec(s->pg, "ROLLBACK"));
		s->in_tx = FALSE;
		return;
	}
#endif
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

CpStmt *
cp_store_prepare(CpStore *s, const char *sql, GError **error)
{
	CpStmt *st = g_hash_table_lookup(s->stmts, sql);

	if (st && !st->busy) {
		st->busy = TRUE;
		return st;
	}
	st = g_new0(CpStmt, 1);
	st->s = s;
	st->sql = g_strdup(sql);
	st->busy = TRUE;
#if CP_HAVE_POSTGRESQL
	if (s->kind == CP_STORE_POSTGRESQL) {
		st->pg_sql = pg_translate(sql, &st->n_params);
		if (st->n_params > MAX_PARAMS) {
			set_errmsg(s, "too many parameters");
			cp_store_set_error(s, error, "database");
			stmt_free(st);
			return NULL;
		}
		g_snprintf(st->name, sizeof(st->name), "cp%u", ++s->next_name);
	} else
#endif
	if (sqlite3_prepare_v2(s->db, sql, -1, &st->lite, NULL) != SQLITE_OK) {
		set_errmsg(s, sqlite3_errmsg(s->db));
		cp_store_set_error(s, error, "database");
		stmt_free(st);
		return NULL;
	}
	/* one cached statement per SQL text; a second user of the same text
	 * at once gets its own, freed after use */
	if (!g_hash_table_contains(s->stmts, st->sql)) {
		st->cached = TRUE;
		g_hash_table_insert(s->stmts, st->sql, st);
	}
	return st;
}

#if CP_HAVE_POSTGRESQL
static void
pg_bind(CpStmt *st, int i, char *value, int len, int format)
{
	if (i < 1 || i > MAX_PARAMS) {
		g_free(value);
		return;
	}
	g_free(st->values[i - 1]);
	st->values[i - 1] = value;
	st->lengths[i - 1] = len;
	st->formats[i - 1] = format;
}
#endif

void
cp_stmt_bind_text(CpStmt *st, int i, const char *v)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL) {
		pg_bind(st, i, g_strdup(v), 0, 0);
		return;
	}
#endif
	sqlite3_bind_text(st->lite, i, v, -1, SQLITE_TRANSIENT);
}

void
cp_stmt_bind_int64(CpStmt *st, int i, gint64 v)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL) {
		pg_bind(st, i, g_strdup_printf("%" G_GINT64_FORMAT, v), 0, 0);
		return;
	}
#endif
	sqlite3_bind_int64(st->lite, i, v);
}

void
cp_stmt_bind_blob(CpStmt *st, int i, const void *data, gsize len)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL) {
		/* binary format: bytea as it is */
		pg_bind(st, i, data ? (len ? g_memdup2(data, len) : g_malloc0(1)) : NULL, (int)len, 1);
		return;
	}
#endif
	if (data)
		sqlite3_bind_blob(st->lite, i, data, (int)len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st->lite, i);
}

int
cp_stmt_step(CpStmt *st)
{
	CpStore *s = st->s;
	int rc;

#if CP_HAVE_POSTGRESQL
	if (s->kind == CP_STORE_POSTGRESQL)
		return pg_step(st);
#endif
	rc = sqlite3_step(st->lite);
	if (rc == SQLITE_ROW)
		return CP_STORE_ROW;
	if (rc == SQLITE_DONE) {
		s->changes = sqlite3_changes(s->db);
		return CP_STORE_DONE;
	}
	set_errmsg(s, sqlite3_errmsg(s->db));
	return CP_STORE_ERROR;
}

#if CP_HAVE_POSTGRESQL
static gboolean
pg_column_valid(CpStmt *st, int i)
{
	return st->res && st->row < st->n_rows && i >= 0 && i < PQnfields(st->res) &&
	       !PQgetisnull(st->res, st->row, i);
}
#endif

gboolean
cp_stmt_column_null(CpStmt *st, int i)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL)
		return !pg_column_valid(st, i);
#endif
	return sqlite3_column_type(st->lite, i) == SQLITE_NULL;
}

const char *
cp_stmt_column_text(CpStmt *st, int i)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL)
		return pg_column_valid(st, i) ? PQgetvalue(st->res, st->row, i) : NULL;
#endif
	return (const char *)sqlite3_column_text(st->lite, i);
}

gint64
cp_stmt_column_int64(CpStmt *st, int i)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL)
		return pg_column_valid(st, i) ? g_ascii_strtoll(PQgetvalue(st->res, st->row, i), NULL, 10) : 0;
#endif
	return sqlite3_column_int64(st->lite, i);
}

const void *
cp_stmt_column_blob(CpStmt *st, int i, gsize *len)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL) {
		size_t n = 0;

		*len = 0;
		if (!pg_column_valid(st, i))
			return NULL;
		if (st->blob)
			PQfreemem(st->blob);
		st->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, i), &n);
		*len = n;
		return st->blob;
	}
#endif
	{
		const void *d = sqlite3_column_blob(st->lite, i);

		*len = d ? (gsize)sqlite3_column_bytes(st->lite, i) : 0;
		return d;
	}
}

void
cp_stmt_reset(CpStmt *st)
{
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL) {
		pg_stmt_clear_result(st);
		return;
	}
#endif
	sqlite3_reset(st->lite);
}

void
cp_stmt_finalize(CpStmt *st)
{
	if (!st)
		return;
	cp_stmt_reset(st);
#if CP_HAVE_POSTGRESQL
	if (st->s->kind == CP_STORE_POSTGRESQL) {
		/* parameters may be secret: nothing lingers */
		for (int i = 0; i < MAX_PARAMS; i++) {
			if (st->values[i])
				cp_cleanse(st->values[i], st->formats[i] ? (size_t)st->lengths[i] : strlen(st->values[i]));
			g_clear_pointer(&st->values[i], g_free);
		}
	} else
#endif
		sqlite3_clear_bindings(st->lite);
	st->busy = FALSE;
	if (!st->cached)
		stmt_free(st);
}

/* ---- the schema ---- */

static int
read_version(CpStore *s, GError **error)
{
	CpStmt *st;
	int version = -1, rc;

	if (!cp_store_exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", error))
		return -1;
	st = cp_store_prepare(s, "SELECT MAX(version) FROM schema_version", error);
	if (!st)
		return -1;
	rc = cp_stmt_step(st);
	if (rc == CP_STORE_ROW)
		version = cp_stmt_column_null(st, 0) ? 0 : (int)cp_stmt_column_int64(st, 0);
	cp_stmt_finalize(st);
	if (rc != CP_STORE_ROW) {
		cp_store_set_error(s, error, "reading the schema version");
		return -1;
	}
	if (version == 0 && s->kind == CP_STORE_SQLITE) {
		/* a file from before the table: its PRAGMA user_version */
		st = cp_store_prepare(s, "PRAGMA user_version", error);
		if (!st)
			return -1;
		rc = cp_stmt_step(st);
		version = rc == CP_STORE_ROW ? (int)cp_stmt_column_int64(st, 0) : -1;
		cp_stmt_finalize(st);
		if (version < 0)
			cp_store_set_error(s, error, "reading the schema version");
	}
	return version;
}

static gboolean
write_version(CpStore *s, int version, GError **error)
{
	g_autofree char *sql = g_strdup_printf("DELETE FROM schema_version; "
					       "INSERT INTO schema_version (version) VALUES (%d)", version);
	g_autofree char *pragma = g_strdup_printf("PRAGMA user_version = %d", version);

	return cp_store_exec(s, sql, error) &&
	       (s->kind != CP_STORE_SQLITE || cp_store_exec(s, pragma, error));
}

gboolean
cp_store_migrate(CpStore *s, const CpSchema *schema, gpointer data, int *from, GError **error)
{
	int newest = schema->migrations[schema->n_migrations - 1].version;
	int version;

	*from = -1;
	/* one lock of its own: two processes starting on a new store at once
	 * do not both make it */
	if (!cp_store_begin(s, "schema", error))
		goto fail;
	version = read_version(s, error);
	if (version < 0)
		goto fail;
	*from = version;
	if (version > newest) {
		cp_set_error(error, CP_ERR_STORAGE, "%s: schema version %d is newer than this %s's (%d)",
			     s->name, version, schema->who, newest);
		goto fail;
	}
	if (version == 0 && s->kind == CP_STORE_POSTGRESQL) {
		if (!cp_store_exec(s, schema->create_postgresql, error) || !write_version(s, newest, error))
			goto fail;
		g_message("%s store: made at schema version %d", schema->who, newest);
		version = newest;
	}
	if (version == 0 && !cp_store_exec(s, schema->base_sqlite, error))
		goto fail;
	for (gsize i = 0; i < schema->n_migrations; i++) {
		const CpMigration *m = &schema->migrations[i];

		if (m->version <= MAX(version, 1))
			continue;
		if ((m->sql[s->kind] && !cp_store_exec(s, m->sql[s->kind], error)) ||
		    (m->run && !m->run(s, data, error)) || !write_version(s, m->version, error)) {
			g_prefix_error(error, "migrating to schema version %d: ", m->version);
			goto fail;
		}
		if (version)
			g_message("%s store: schema version %d: %s", schema->who, m->version, m->what);
	}
	/* also for a file whose version was only its user_version */
	if (!write_version(s, newest, error))
		goto fail;
	return cp_store_commit(s, error);
fail:
	cp_store_rollback(s);
	g_prefix_error(error, "%s: ", s->name);
	return FALSE;
}
