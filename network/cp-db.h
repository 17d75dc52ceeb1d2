/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SQLite as the SM and the AUSF use it: one file, mode 0600 (the AUSF's
 * holds USIM keys), WAL with synchronous=FULL so that an answer given to a
 * client is never lost to a crash, and a schema applied on open.
 */
#pragma once

#include <glib.h>
#include <sqlite3.h>

sqlite3 *cp_db_open(const char *path, const char *schema, GError **error);
void cp_db_close(sqlite3 *db);
/* Run SQL without results (BEGIN, COMMIT, ...). */
gboolean cp_db_exec(sqlite3 *db, const char *sql, GError **error);
/* Prepare or fail with a CP_ERR_STORAGE error. */
sqlite3_stmt *cp_db_prepare(sqlite3 *db, const char *sql, GError **error);
void cp_db_set_error(sqlite3 *db, GError **error, const char *what);
/* The schema version (PRAGMA user_version) of a database this program
 * may open: *version, 0..newest; a newer one is a CP_ERR_STORAGE error
 * naming path and who ("SM", "AUSF"). */
gboolean cp_db_schema_version(sqlite3 *db, const char *path, const char *who, int newest,
			      int *version, GError **error);
