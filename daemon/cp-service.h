/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon on D-Bus: org.cellprov.Daemon1 (introspection/), at
 * /org/cellprov/Daemon1 on the system bus (or the bus at
 * $CELLPROV_BUS_ADDRESS, for tests). Properties follow the daemon;
 * Forget, Rearm and GetImsi are for root and for whom polkit authorizes
 * (org.cellprov.policy), errors are org.cellprov.Daemon1.Error.<Name>.
 */
#pragma once

#include <gio/gio.h>

#include "cp-daemon.h"
#include "cp-poll.h"

#define CP_DBUS_NAME "org.cellprov.Daemon1"
#define CP_DBUS_PATH "/org/cellprov/Daemon1"

typedef struct _CpService CpService;

/* Connects and requests the name; ready is called once the name is
 * owned (FALSE: lost or refused, with the daemon to exit). */
CpService *cp_service_new(CpDaemon *daemon, void (*ready)(gboolean owned, gpointer data),
			  gpointer data, GError **error);
void cp_service_free(CpService *s);

/* The poller whose state PollEnabled, LastPoll, LastPollResult and
 * NextPoll show (NULL: none, no sm-url); it must outlive s or be unset. */
void cp_service_set_poll(CpService *s, CpPoll *poll);

/* Monotonic time (µs) of the last method call to the daemon's object
 * (its methods and its properties), 0: none yet. */
gint64 cp_service_get_last_call_time(CpService *s);

/* Give up the bus name (before an exit when idle): a call from then on
 * starts a new daemon by bus activation instead of reaching this one. */
void cp_service_release_name(CpService *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpService, cp_service_free)
