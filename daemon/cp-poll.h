/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cellular path (docs/daemon.md "Polling the SM"): a bound,
 * provisioned and registered device asks [network] sm-url itself for a
 * waiting profile or command (POST /v1/device/poll with a fresh device
 * record), applies it as if written to its tag, and posts the receipt of
 * that attempt (POST /v1/device/receipt). Runs on the main context.
 */
#pragma once

#include "cp-daemon.h"

typedef struct _CpPoll CpPoll;

/* NULL and no error when the configuration has no sm-url. */
CpPoll *cp_poll_new(CpDaemon *d, GError **error);
void cp_poll_free(CpPoll *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpPoll, cp_poll_free)

/* First poll after a jittered interval (first_ms when not 0). */
void cp_poll_start(CpPoll *p, guint first_ms);

/* Tests only: the interval and the first retry delay in ms instead of
 * poll-interval and 60 s. */
void cp_poll_set_test_timing(CpPoll *p, guint interval_ms, guint backoff_ms);

/* The last poll or receipt post: wall-clock time (µs since the epoch, 0:
 * none yet) and outcome ("nothing waiting", "profile 7 applied", "failed:
 * ..."); and the delay to the next one. */
gint64 cp_poll_get_last_time(CpPoll *p);
const char *cp_poll_get_last_result(CpPoll *p);
guint cp_poll_get_next_delay_ms(CpPoll *p);
