/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every GLib part of cellprov (daemon, NFC, modem, network side,
 * tools) shares: the GError domain whose codes are CpError, redaction of
 * personal identifiers in logs, secrets read from files or systemd
 * credentials, and crash-safe file replacement.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#include "cp-error.h"
#include "cp-secret.h"

/* GError domain: codes are CpError values, messages are for humans. */
#define CP_ERROR (cp_error_quark())
GQuark cp_error_quark(void);

/*
 * The --version of every GLib program: prints "PROGRAM VERSION" (the
 * program name g_option_context_parse() or g_set_prgname() set, meson's
 * project version) and exits 0. CP_OPTION_VERSION is its GOptionEntry.
 */
gboolean cp_option_version(const char *option, const char *value, gpointer data, GError **error);
#define CP_OPTION_VERSION \
	{ "version", 'V', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, (gpointer)cp_option_version, \
	  "Print the version and exit", NULL }

/*
 * The daemon's D-Bus errors (docs/dbus.md): cp_dbus_error_register() maps
 * every CP_ERROR code to org.cellprov.Daemon1.Error.<CamelName> ("busy" ->
 * Busy, "wrong-device" -> WrongDevice) with g_dbus_error_register_error_domain,
 * so that g_dbus_method_invocation_return_gerror() sends the name and a
 * client's GError comes back in CP_ERROR with its code. CP_DBUS_ERROR is
 * the domain of the errors of the D-Bus service itself.
 */
#define CP_DBUS_ERROR_PREFIX "org.cellprov.Daemon1.Error."
void cp_dbus_error_register(void);

typedef enum {
	CP_DBUS_ERROR_NOT_AUTHORIZED = 1, /* polkit (or the root check) refused the caller */
} CpDbusError;
#define CP_DBUS_ERROR (cp_dbus_error_quark())
GQuark cp_dbus_error_quark(void);

/* D-Bus error name of a CpError: org.cellprov.Daemon1.Error.<CamelName>. */
char *cp_dbus_error_name(CpError code);

/* g_set_error with the code's own message when fmt is NULL. */
void cp_set_error(GError **error, CpError code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* CpError from a GError of any domain (CP_ERR_MODEM when not CP_ERROR). */
CpError cp_error_from_gerror(const GError *error, CpError fallback);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpSecret, cp_secret_free)

/*
 * Personal identifiers (IMSI, ICCID, MSISDN) are shown in logs only when
 * CELLPROV_SHOW_PERSONAL=1 (like ModemManager's --log-personal-info);
 * otherwise all but the first 5 characters become '*'. Returns a
 * newly allocated string.
 */
char *cp_redact(const char *value);
gboolean cp_show_personal(void);

/*
 * Read a secret: if name_or_path has no '/', it is a systemd credential
 * looked up in $CREDENTIALS_DIRECTORY; otherwise a file path. The file
 * must not be readable by group or others (unless it is a credential).
 * Trailing newlines are stripped. hex TRUE: the content is hex, decoded
 * and checked to be want_len bytes (0: any).
 */
CpSecret *cp_secret_load(const char *name_or_path, gboolean hex, gsize want_len, GError **error);

/*
 * Replace path atomically and durably: write path.tmp with mode, fsync
 * it, rename over path, fsync the directory. After a crash or power cut
 * the file holds either the old or the new content, never a mix.
 */
gboolean cp_file_replace(const char *path, const void *data, gsize len, int mode, GError **error);
