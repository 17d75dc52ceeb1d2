/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The database under the SM and the AUSF: SQLite (one file, the embedded
 * default) or PostgreSQL (libpq, the operator store), chosen by one
 * configuration value, "sqlite:PATH" or "postgresql:CONNINFO".
 *
 * The abstraction is per statement: the SM and the AUSF write each
 * statement once, in the SQL both engines speak (INSERT ... ON CONFLICT
 * ... DO UPDATE ... WHERE, UPDATE ... RETURNING, "?N" parameters), and
 * this layer prepares it once per connection and runs it on either. What
 * the engines do differently is here, not in the callers:
 *
 *   - cp_store_begin(): the writer transaction. SQLite's BEGIN IMMEDIATE
 *     takes the file's one write lock; PostgreSQL's BEGIN takes a
 *     transaction-scoped advisory lock, global or per scope (a device),
 *     so that a read-then-write (the next SUPI, the next sequence number)
 *     is as serial across processes as it is in one SQLite file.
 *   - the schema: one per engine, with versioned migrations applied at
 *     start (cp_store_migrate()) under the same lock.
 *   - a lost connection: the statement fails (CP_ERR_STORAGE), the
 *     transaction is the server's to roll back, and the next call
 *     reconnects and prepares again.
 *
 * Every error is CP_ERR_STORAGE. The connection string is never logged: it
 * may hold a password.
 */
#pragma once

#include <glib.h>

typedef enum {
	CP_STORE_SQLITE,
	CP_STORE_POSTGRESQL,
} CpStoreKind;

typedef struct _CpStore CpStore;
typedef struct _CpStmt CpStmt;

/* cp_stmt_step() */
#define CP_STORE_ERROR (-1)
#define CP_STORE_DONE 0
#define CP_STORE_ROW 1

/* Whether this build has the PostgreSQL store. */
gboolean cp_store_have_postgresql(void);

/*
 * spec: "sqlite:PATH", "postgresql:CONNINFO" (a libpq connection string
 * or URI), or a bare path (SQLite). A SQLite file is made mode 0600.
 * lock_class tells this program's advisory locks from another's sharing
 * the database. who names it in errors ("SM", "AUSF").
 */
CpStore *cp_store_open(const char *spec, int lock_class, const char *who, GError **error);
void cp_store_free(CpStore *s);
CpStoreKind cp_store_kind(CpStore *s);
/* For messages: the SQLite path or "postgresql" (never the conninfo). */
const char *cp_store_name(CpStore *s);

/* The writer transaction; scope NULL: one lock for the whole store, else
 * a lock for that scope only (PostgreSQL; SQLite has one writer anyway). */
gboolean cp_store_begin(CpStore *s, const char *scope, GError **error);
gboolean cp_store_commit(CpStore *s, GError **error);
/* Roll back if a transaction is open; never fails the caller. */
void cp_store_rollback(CpStore *s);
gboolean cp_store_in_transaction(CpStore *s);
/* SQL without parameters or results, one statement or several. */
gboolean cp_store_exec(CpStore *s, const char *sql, GError **error);

/* A statement, prepared once per connection and cached: give it back with
 * cp_stmt_finalize(). Parameters are ?1..?N. */
CpStmt *cp_store_prepare(CpStore *s, const char *sql, GError **error);
/* Parameters are copied; text NULL is SQL NULL. */
void cp_stmt_bind_text(CpStmt *st, int i, const char *v);
void cp_stmt_bind_int64(CpStmt *st, int i, gint64 v);
void cp_stmt_bind_blob(CpStmt *st, int i, const void *data, gsize len);
/* CP_STORE_ROW, CP_STORE_DONE or CP_STORE_ERROR (cp_store_set_error()
 * then tells why). Parameters stay bound until finalize. */
int cp_stmt_step(CpStmt *st);
/* Columns of the current row, valid until the next step or finalize. */
const char *cp_stmt_column_text(CpStmt *st, int i);
gint64 cp_stmt_column_int64(CpStmt *st, int i);
const void *cp_stmt_column_blob(CpStmt *st, int i, gsize *len);
gboolean cp_stmt_column_null(CpStmt *st, int i);
/* Run it again with new parameters. */
void cp_stmt_reset(CpStmt *st);
void cp_stmt_finalize(CpStmt *st);

/* Rows changed by the last statement that finished. */
int cp_store_changes(CpStore *s);
const char *cp_store_errmsg(CpStore *s);
/* A CP_ERR_STORAGE error: "what: <the engine's message>". */
void cp_store_set_error(CpStore *s, GError **error, const char *what);

/*
 * Versioned schema. The version is the row of table schema_version (for
 * SQLite files made before it, PRAGMA user_version, which is kept in step
 * so that an older program refuses a newer file). A new PostgreSQL store
 * gets create_postgresql and is at the newest version; a SQLite file gets
 * base_sqlite (version 1, as the first programs made it) and then, like
 * any older store, each migration above its version in order: every
 * SQLite file takes the path an existing one takes. All in one writer
 * transaction. A migration's sql (for the store's kind; NULL: none) runs,
 * then its run hook. *from: the version found (0: a new store).
 */
typedef struct {
	int version;
	const char *sql[2];             /* by CpStoreKind */
	gboolean (*run)(CpStore *s, gpointer data, GError **error);
	const char *what;               /* logged once done */
} CpMigration;

typedef struct {
	const char *who;                /* "SM", "AUSF": in messages */
	const char *base_sqlite;        /* SQLite version 1 (CREATE ... IF NOT EXISTS) */
	const char *create_postgresql;  /* the newest schema */
	const CpMigration *migrations;  /* ascending; the last is the newest */
	gsize n_migrations;
} CpSchema;

gboolean cp_store_migrate(CpStore *s, const CpSchema *schema, gpointer data, int *from, GError **error);
