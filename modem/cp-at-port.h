/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An AT port: a module's tty opened raw, one command at a time (V.250
 * §5.7.1: a command line is answered with its final result code before the
 * next may be sent; later ones wait in a queue), each with a timeout, its
 * information lines and final result collected by cp-at-parser, and the
 * URCs handed to a callback whenever they come.
 *
 * Errors, in the CP_ERROR domain: CP_ERR_MODEM_TIMEOUT when the module
 * does not finish a command in time, CP_ERR_MODEM_GONE when the tty
 * vanishes (read error, hang-up, or no such device on open) — every
 * queued command then fails so too —, CP_ERR_MODEM for a line over the
 * parser's bound or a command that cannot be sent. A final result code
 * other than OK is not an error here: the caller reads it in the
 * CpAtResponse (cp_at_response_check() turns it into one).
 */
#pragma once

#include <gio/gio.h>

#include "cp-at-parser.h"

#define CP_AT_TIMEOUT_DEFAULT_MS 5000

typedef struct {
	GPtrArray *lines;    /* char *: the information lines, in order */
	CpAtFinal final;
	int error_code;      /* +CME/+CMS ERROR number, -1 if none or verbose */
	char *error_text;    /* the text after "ERROR: ", NULL if none */
} CpAtResponse;

void cp_at_response_free(CpAtResponse *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpAtResponse, cp_at_response_free)

/* TRUE for OK; else a CP_ERR_MODEM error naming the command and the
 * final result ("AT+CCHO: +CME ERROR: 3"). */
gboolean cp_at_response_check(const CpAtResponse *r, const char *command, GError **error);
/* The single information line, or NULL with CP_ERR_MODEM when there are
 * none or several. */
const char *cp_at_response_line(const CpAtResponse *r, const char *command, GError **error);

#define CP_TYPE_AT_PORT (cp_at_port_get_type())
G_DECLARE_FINAL_TYPE(CpAtPort, cp_at_port, CP, AT_PORT, GObject)

/* Called for every URC line, from the main context the port was opened in. */
typedef void (*CpAtUrcFunc)(CpAtPort *port, const char *line, gpointer user_data);

/* Opens path (a tty: 115200 8N1 raw, no flow control, CLOCAL) without
 * blocking. No such device: CP_ERR_MODEM_GONE; else CP_ERR_MODEM. */
CpAtPort *cp_at_port_open(const char *path, GError **error);
const char *cp_at_port_get_path(CpAtPort *port);

/* One URC handler (NULL to remove); destroy runs on replacement or dispose. */
void cp_at_port_set_urc_func(CpAtPort *port, CpAtUrcFunc func, gpointer user_data, GDestroyNotify destroy);

/* Debug logs (domain cellprov-modem) show each command's name and the
 * length of its arguments and answers, never their content: +CSIM and
 * +CGLA carry ADM1 and keys, +CIMI and +CCID personal identifiers. */

/*
 * Sends "AT<command>\r" (command without "AT": "+CIMI") once the commands
 * before it are done, and collects its answer: lines starting with
 * prefix (NULL: none), bare lines as bare says. timeout_ms 0: the
 * default. Cancelling fails the call at once; the command, if already
 * sent, still owns the port until it finishes or times out.
 */
void cp_at_port_command(CpAtPort *port, const char *command, const char *prefix, CpAtBare bare,
			guint timeout_ms, GCancellable *cancellable, GAsyncReadyCallback callback,
			gpointer user_data);
CpAtResponse *cp_at_port_command_finish(CpAtPort *port, GAsyncResult *result, GError **error);

/* The timeout of commands sent with timeout_ms 0 (CP_AT_TIMEOUT_DEFAULT_MS
 * until set); 0 restores the default. */
void cp_at_port_set_timeout(CpAtPort *port, guint timeout_ms);

/* TRUE once the tty vanished; every command then fails CP_ERR_MODEM_GONE. */
gboolean cp_at_port_is_gone(CpAtPort *port);

/* Counters for the benchmark: commands sent, URCs seen. */
guint cp_at_port_get_n_commands(CpAtPort *port);
guint cp_at_port_get_n_urcs(CpAtPort *port);
