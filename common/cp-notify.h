/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * systemd's service notification protocol (sd_notify(3)), without
 * libsystemd: one datagram of "KEY=VALUE" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or an abstract name written with a
 * leading '@'). systemd documents the protocol as stable
 * (systemd.io/PORTABILITY_AND_STABILITY, sd_notify(3) "Notes").
 */
#ifndef CP_NOTIFY_H
#define CP_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Send state ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1", or
 * several lines) to the service manager. As sd_notify(): 0 when
 * $NOTIFY_SOCKET is unset or empty (not run as a notify service), 1 when
 * sent, a negative errno otherwise (-EINVAL for an empty state or a
 * socket name that is neither a path nor '@'-abstract, -EAFNOSUPPORT for
 * other address families, -ENAMETOOLONG, or the socket's error).
 */
int cp_notify(const char *state);

/*
 * As sd_watchdog_enabled(0, usec): 1 with *usec set when $WATCHDOG_USEC
 * asks this process for keep-alive pings ($WATCHDOG_PID, when set, must
 * be our pid), 0 when not, -EINVAL for a value that does not parse.
 */
int cp_notify_watchdog(uint64_t *usec);

#endif
