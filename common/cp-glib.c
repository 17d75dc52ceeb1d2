/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-glib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cp-buf.h"
#include "cp-config.h"

G_DEFINE_QUARK(cp-error-quark, cp_error)

char *
cp_dbus_error_name(CpError code)
{
	GString *s = g_string_new(CP_DBUS_ERROR_PREFIX);
	gboolean up = TRUE;

	for (const char *p = cp_error_name(code); *p; p++) {
		if (*p == '-') {
			up = TRUE;
			continue;
		}
		g_string_append_c(s, up ? g_ascii_toupper(*p) : *p);
		up = FALSE;
	}
	return g_string_free(s, FALSE);
}

void
cp_dbus_error_register(void)
{
	static gsize quark;
	/* every code cp-error.h lists: classes 0x01-0x0f, 255 codes each */
	enum { MAX_ENTRIES = 15 * 255 };
	static GDBusErrorEntry entries[MAX_ENTRIES];
	static char *names[MAX_ENTRIES];
	static gsize built;
	guint n = 0;

	if (g_once_init_enter(&built)) {
		for (int code = 0x0101; code < 0x1000; code++) {
			CpError err = (CpError)code;

			if ((code & 0xff) == 0 || strcmp(cp_error_name(err), "unknown") == 0)
				continue;
			names[n] = cp_dbus_error_name(err);
			entries[n].error_code = code;
			entries[n].dbus_error_name = names[n];
			n++;
		}
		g_once_init_leave(&built, n);
	}
	g_dbus_error_register_error_domain("cp-error-quark", &quark, entries, (guint)built);
	(void)cp_dbus_error_quark();
}

GQuark
cp_dbus_error_quark(void)
{
	static gsize quark;
	static const GDBusErrorEntry entries[] = {
		{ CP_DBUS_ERROR_NOT_AUTHORIZED, CP_DBUS_ERROR_PREFIX "NotAuthorized" },
	};

	g_dbus_error_register_error_domain("cp-dbus-error-quark", &quark, entries,
					   G_N_ELEMENTS(entries));
	return (GQuark)quark;
}

gboolean
cp_option_version(const char *option, const char *value, gpointer data, GError **error)
{
	printf("%s %s\n", g_get_prgname(), CP_VERSION);
	exit(EXIT_SUCCESS);
}

void
cp_set_error(GError **error, CpError code, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	if (!error)
		return;
	if (!fmt) {
		g_set_error_literal(error, CP_ERROR, code, cp_error_message(code));
		return;
	}
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(error, CP_ERROR, code, msg);
}

CpError
cp_error_from_gerror(const GError *error, CpError fallback)
{
	if (!error)
		return CP_OK;
	if (error->domain == CP_ERROR)
		return (CpError)error->code;
	return fallback;
}

gboolean
cp_show_personal(void)
{
	const char *v = g_getenv("CELLPROV_SHOW_PERSONAL");

	return v && strcmp(v, "1") == 0;
}

char *
cp_redact(const char *value)
{
	char *out;

	if (!value)
		return g_strdup("(none)");
	out = g_strdup(value);
	if (cp_show_personal())
		return out;
	for (size_t i = 5; out[i]; i++)
		out[i] = '*';
	return out;
}

CpSecret *
cp_secret_load(const char *name_or_path, gboolean hex, gsize want_len, GError **error)
{
	g_autofree char *path = NULL;
	gboolean credential = strchr(name_or_path, '/') == NULL;
	char *content = NULL;
	gsize len = 0;
	struct stat st;
	CpSecret *s;

	if (credential) {
		const char *dir = g_getenv("CREDENTIALS_DIRECTORY");

		if (!dir) {
			cp_set_error(error, CP_ERR_KEY,
				     "secret '%s' is a credential name but $CREDENTIALS_DIRECTORY is not set",
				     name_or_path);
			return NULL;
		}
		path = g_build_filename(dir, name_or_path, NULL);
	} else {
		path = g_strdup(name_or_path);
	}

	if (stat(path, &st) < 0) {
		cp_set_error(error, CP_ERR_KEY, "cannot read secret %s: %s", path, g_strerror(errno));
		return NULL;
	}
	if (!credential && (st.st_mode & 077)) {
		cp_set_error(error, CP_ERR_KEY,
			     "secret %s is readable by others (mode %04o); make it 0600",
			     path, (unsigned)(st.st_mode & 07777));
		return NULL;
	}
	if (!g_file_get_contents(path, &content, &len, error))
		return NULL;
	while (len > 0 && (content[len - 1] == '\n' || content[len - 1] == '\r'))
		len--;
	content[len] = '\0';

	if (hex) {
		long n;

		s = cp_secret_new(len / 2 + 1);
		n = s ? cp_hex_decode(content, s->data, s->len) : -1;
		if (!s || n < 0 || (want_len && (gsize)n != want_len)) {
			cp_secret_free(s);
			cp_cleanse(content, len);
			g_free(content);
			if (want_len)
				cp_set_error(error, CP_ERR_KEY, "secret %s is not %zu bytes of hex", path, (size_t)want_len);
			else
				cp_set_error(error, CP_ERR_KEY, "secret %s is not hex", path);
			return NULL;
		}
		s->len = (size_t)n;
	} else {
		s = cp_secret_new_from((const uint8_t *)content, len);
	}
	cp_cleanse(content, len);
	g_free(content);
	if (!s)
		cp_set_error(error, CP_ERR_CRYPTO, "out of memory");
	return s;
}

static gboolean
fsync_dir_of(const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		cp_set_error(error, CP_ERR_STORAGE, "cannot sync %s: %s", dir, g_strerror(e));
		return FALSE;
	}
	close(fd);
	return TRUE;
}

gboolean
cp_file_replace(const char *path, const void *data, gsize len, int mode, GError **error)
{
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	const uint8_t *p = data;
	gsize done = 0;
	int fd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot create %s: %s", tmp, g_strerror(errno));
		return FALSE;
	}
	/* O_CREAT's mode does not apply to an existing file, nor past umask */
	if (fchmod(fd, mode) < 0)
		goto fail;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		done += (gsize)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	return fsync_dir_of(path, error);

fail:
	cp_set_error(error, CP_ERR_STORAGE, "cannot write %s: %s", path, g_strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return FALSE;
}
