/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device side of the flow, steps 1, 9 and 10 of docs/protocol.md: present
 * the tag, take the profile the companion writes, verify and decrypt it,
 * provision the modem through a backend, write the receipt; journal every
 * durable step, and at start finish (roll back) what a crash cut off.
 *
 * Transport and backend are handed in, so that the same core runs on NFC
 * and the QMI or ModemManager backends. Everything runs on the main
 * context.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#include "cp-backend.h"
#include "cp-conf.h"
#include "cp-error.h"
#include "cp-journal.h"
#include "cp-state.h"
#include "cp-transport.h"

typedef struct _CpDaemon CpDaemon;

typedef struct {
	/* After every transition (already journaled where durable). */
	void (*state_changed)(CpDaemon *d, CpState old, CpState new_state, CpEvent ev,
			      gpointer user_data);
	/* Any property shown on D-Bus may have changed. */
	void (*changed)(CpDaemon *d, gpointer user_data);
} CpDaemonListener;

/*
 * Load the device key and ADM1 (files or $CREDENTIALS_DIRECTORY), check
 * the certificate URL names this device, check the state directory and
 * load the journal. Nothing is started. Takes conf.
 */
CpDaemon *cp_daemon_new(CpConf *conf, GError **error);
void cp_daemon_free(CpDaemon *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpDaemon, cp_daemon_free)

/* Transport and backend, before cp_daemon_start (taken; either NULL:
 * none; the daemon then presents nothing / refuses profiles). A transport
 * set here replaces the ones the configuration names (see the table of
 * cp-daemon.c). The
 * events of each must route to cp_daemon_transport_events() and
 * cp_daemon_backend_events() with the daemon as user_data. */
void cp_daemon_set_transport(CpDaemon *d, CpTransport *t);
void cp_daemon_set_backend(CpDaemon *d, CpBackend *b);
const CpTransportEvents *cp_daemon_transport_events(void);
const CpBackendEvents *cp_daemon_backend_events(void);

/* Listeners are called in the order added; remove with the same user_data. */
void cp_daemon_add_listener(CpDaemon *d, const CpDaemonListener *l, gpointer user_data);
void cp_daemon_remove_listener(CpDaemon *d, gpointer user_data);

/*
 * Tests only (CELLPROVD_TEST_HOLD, cellprovd(8)): after entering
 * profile-received, verified, provisioning or decommissioning (the last
 * two journaled, before the card is touched), wait ms before going on, so that a test can kill the daemon in
 * those states, which otherwise last microseconds.
 * Any other state is CP_ERR_ARGUMENT.
 */
gboolean cp_daemon_set_test_hold(CpDaemon *d, CpState state, guint ms, GError **error);

/* Recover an interrupted attempt (if the journal holds one), start the
 * transport. */
gboolean cp_daemon_start(CpDaemon *d, GError **error);
/*
 * Stop: cancel an attempt (the backend rolls back what it wrote), stop
 * the transport. done is called once nothing runs any more, or after
 * timeout_ms whatever the backend does; the journal then still says what
 * the next start must undo.
 */
void cp_daemon_stop(CpDaemon *d, guint timeout_ms, GCallback done, gpointer user_data);

gboolean cp_daemon_forget(CpDaemon *d, GError **error);
/* Open the provisioning window of every transport that has one (BLE) for
 * seconds (0: its configured time); the number of transports that did.
 * cp_daemon_start() opens it on a device waiting for its profile,
 * cp_daemon_rearm() and cp_daemon_factory_reset() too. */
guint cp_daemon_open_window(CpDaemon *d, guint seconds);
gboolean cp_daemon_rearm(CpDaemon *d, GError **error);
/* Forget the owner binding and K'', keep the pin, the committed
 * profile_seq and the USIM, re-arm (docs/daemon.md). */
gboolean cp_daemon_factory_reset(CpDaemon *d, GError **error);

/* The NDEF message of the tag for a new read session: bumps and
 * journals the attestation counter first (NULL when it cannot). */
GBytes *cp_daemon_build_tag(CpDaemon *d, GError **error);
/* A fresh signed device record alone (the poll's, docs/daemon.md): bumps
 * and journals the attestation counter first. */
GBytes *cp_daemon_build_record(CpDaemon *d, GError **error);
/* An attempt, a command or a roll-back is under way. */
gboolean cp_daemon_is_busy(CpDaemon *d);
/* A written NDEF message (what the transport delivers): a profile or a
 * command. */
void cp_daemon_profile_written(CpDaemon *d, GBytes *ndef);

CpState cp_daemon_get_state(CpDaemon *d);
const char *cp_daemon_get_step(CpDaemon *d);
const CpConf *cp_daemon_get_conf(CpDaemon *d);
const char *cp_daemon_get_device_id(CpDaemon *d);
const char *cp_daemon_get_backend_name(CpDaemon *d);
/* Every transport and its state, "nfc waiting, ble closed"; "none". */
const char *cp_daemon_get_transport_state(CpDaemon *d);
/* The transports, in the order of the table (owned by the daemon). */
guint cp_daemon_get_n_transports(CpDaemon *d);
CpTransport *cp_daemon_get_transport(CpDaemon *d, guint i);
CpError cp_daemon_get_last_error(CpDaemon *d, const char **message);
/* "00101 cellprov test network", "" when none */
const char *cp_daemon_get_operator(CpDaemon *d);
const char *cp_daemon_get_imsi(CpDaemon *d);
guint64 cp_daemon_get_profile_seq(CpDaemon *d);
guint64 cp_daemon_get_att_counter(CpDaemon *d);
/* The owner binding (docs/daemon.md): bound, at which binding version, to
 * which operator (its name, "" when none or unknown; the pinned root as
 * lower-case hex SHA-256, "" when none); the trust mode, "anchors" or
 * "first-use". */
gboolean cp_daemon_get_bound(CpDaemon *d);
guint64 cp_daemon_get_binding_version(CpDaemon *d);
const char *cp_daemon_get_owner_name(CpDaemon *d);
const char *cp_daemon_get_owner_root(CpDaemon *d);
const char *cp_daemon_get_trust_mode(CpDaemon *d);
/* The receipt on the tag, NULL when none. */
GBytes *cp_daemon_get_receipt(CpDaemon *d);
/* The receipt on the tag has been read: a read session that presented
 * it ended normally (docs/daemon.md, "Exiting when idle"). */
gboolean cp_daemon_get_receipt_read(CpDaemon *d);
/* Monotonic time (µs) of the last start or end of a tag session, 0: none. */
gint64 cp_daemon_get_last_tag_time(CpDaemon *d);
/* Log lines of the last attempt (NULL-terminated, owned by the daemon). */
const char *const *cp_daemon_get_log(CpDaemon *d);
