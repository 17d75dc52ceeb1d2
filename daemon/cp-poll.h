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

/* First poll after first_ms when not 0; else 30-90 s when the device is
 * bound, provisioned and registered, a jittered interval when not. When it
 * becomes so later, its first poll comes 30-90 s later too. */
void cp_poll_start(CpPoll *p, guint first_ms);

/* Tests only: the interval, the first retry delay and the early first
 * poll (early_ms to 3 * early_ms) in ms instead of poll-interval, 60 s and
 * 30 s. */
void cp_poll_set_test_timing(CpPoll *p, guint interval_ms, guint backoff_ms, guint early_ms);

/* Called whenever what the getters below return changes. */
void cp_poll_set_notify(CpPoll *p, void (*cb)(gpointer data), gpointer data);

/*
 * Called when a poll round is over: the poll answered (or failed), what
 * it brought was applied and its receipt posted (or dropped). A receipt
 * still to post keeps the round open (cp_poll_is_busy).
 */
void cp_poll_set_round_done(CpPoll *p, void (*cb)(gpointer data), gpointer data);
/* A POST is under way, a polled message is being applied, or its receipt
 * waits to be posted. */
gboolean cp_poll_is_busy(CpPoll *p);
/* The device is bound, provisioned and registered: a poll would ask. */
gboolean cp_poll_is_ready(CpPoll *p);

/* The last poll or receipt post: wall-clock time (µs since the epoch, 0:
 * none yet) and outcome ("nothing waiting", "profile 7 applied", "failed:
 * ..."); and the delay to the next one. */
gint64 cp_poll_get_last_time(CpPoll *p);
const char *cp_poll_get_last_result(CpPoll *p);
guint cp_poll_get_next_delay_ms(CpPoll *p);

/* The last result as a stable word (docs/dbus.md, LastPollResult): "" none
 * yet, "nothing", "applying", "applied-profile", "applied-command",
 * "refused", "receipt-refused", "unreachable", "tls", "timeout",
 * "http-error", "error". */
const char *cp_poll_get_outcome(CpPoll *p);

/* Wall-clock time (µs since the epoch) the next poll is due; 0 while one
 * is under way. */
gint64 cp_poll_get_next_time(CpPoll *p);
