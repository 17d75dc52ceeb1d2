/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-db.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cp-glib.h"

void
cp_db_set_error(sqlite3 *db, GError **error, const char *what)
{
	cp_set_error(error, CP_ERR_STORAGE, "%s: %s", what, sqlite3_errmsg(db));
}

gboolean
cp_db_schema_version(sqlite3 *db, const char *path, const char *who, int newest,
		     int *version, GError **error)
{
	sqlite3_stmt *st = cp_db_prepare(db, "PRAGMA user_version", error);

	if (!st)
		return FALSE;
	*version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (*version < 0) {
		cp_db_set_error(db, error, "reading the schema version");
		return FALSE;
	}
	if (*version > newest) {
		cp_set_error(error, CP_ERR_STORAGE, "%s: schema version %d is newer than this %s's (%d)",
			     path, *version, who, newest);
		return FALSE;
	}
	return TRUE;
}

sqlite3 *
cp_db_open(const char *path, const char *schema, GError **error)
{
	sqlite3 *db = NULL;
	int fd;

	/* Create the file ourselves so it is never briefly world-readable */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot open %s: %s", path, g_strerror(errno));
		return NULL;
	}
	if (fchmod(fd, 0600) < 0) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot chmod %s: %s", path, g_strerror(errno));
		close(fd);
		return NULL;
	}
	close(fd);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot open %s: %s", path,
			     db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	if (!cp_db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", error) ||
	    !cp_db_exec(db, schema, error)) {
		g_prefix_error(error, "%s: ", path);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

void
cp_db_close(sqlite3 *db)
{
	sqlite3_close(db);
}

gboolean
cp_db_exec(sqlite3 *db, const char *sql, GError **error)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		cp_set_error(error, CP_ERR_STORAGE, "database: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return FALSE;
	}
	return TRUE;
}

sqlite3_stmt *
cp_db_prepare(sqlite3 *db, const char *sql, GError **error)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		cp_db_set_error(db, error, "database");
		return NULL;
	}
	return st;
}
