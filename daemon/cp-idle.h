/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Exiting when there is nothing to do (docs/daemon.md, "Exiting when
 * idle"): once the device is bound and provisioned, nothing runs (no
 * attempt, restore, command or poll round), and either the phone read the
 * receipt, or a poll round is over, or [daemon] linger seconds passed
 * since the last activity (a D-Bus call, a tag session, a poll), the
 * daemon is told to exit. What starts it again is outside: udev, bus
 * activation, the lifecycle timer. Runs on the main context.
 */
#pragma once

#include "cp-daemon.h"
#include "cp-poll.h"
#include "cp-service.h"

typedef struct _CpIdle CpIdle;

/* Watches d (and p and s, either may be NULL); calls done once, when the
 * daemon should exit. Nothing is watched when [daemon] exit-when-idle is
 * false: NULL is returned then. */
CpIdle *cp_idle_new(CpDaemon *d, CpPoll *p, CpService *s, void (*done)(gpointer data),
		    gpointer data);
void cp_idle_free(CpIdle *i);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpIdle, cp_idle_free)

/* The device waits for nobody: bound and provisioned, nothing under way. */
gboolean cp_idle_is_stable(CpDaemon *d, CpPoll *p);
