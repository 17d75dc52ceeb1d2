/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How the tag reaches the phone: a transport presents the NDEF message the
 * daemon builds at the start of every read session and hands over what
 * the phone writes. NFC (cp-transport-nfc.c on nfc/cp-nfc-tag.h) and BLE
 * GATT (cp-transport-ble.c on ble/cp-ble-peripheral.h); the daemon makes
 * every transport its configuration names from one table and runs them
 * side by side. Everything arrives on the main context.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "cp-error.h"

typedef struct _CpTransport CpTransport;

/* A transport's state, the same words for every transport. */
typedef enum {
	CP_TRANSPORT_STOPPED = 0,
	CP_TRANSPORT_STARTING,          /* opening the controller, registering with BlueZ, or retrying */
	CP_TRANSPORT_CLOSED,            /* ready, not offered (BLE: provisioning window closed) */
	CP_TRANSPORT_WAITING,           /* offered, waiting for a phone (BLE: advertising) */
	CP_TRANSPORT_SESSION,           /* a phone is in a session */
} CpTransportState;

/* "stopped", "starting", "closed", "waiting", "session". */
const char *cp_transport_state_name(CpTransportState state);

typedef struct {
	/* A read session starts: the message to present (NULL: empty). */
	GBytes *(*content)(CpTransport *t, gpointer user_data);
	/* The phone wrote a complete NDEF message. CP_OK: taken (it is
	 * processed, or rejected in the receipt); CP_ERR_BUSY: a provisioning
	 * is under way (the message is dropped). NFC has no way to say it;
	 * BLE answers it (docs/protocol.md 18.6). */
	CpError (*written)(CpTransport *t, GBytes *ndef, gpointer user_data);
	/* The receipt record on the tag (a reference for the caller), NULL
	 * when none (BLE read-receipt). */
	GBytes *(*receipt)(CpTransport *t, gpointer user_data);
	/* A session ended; error says why when it was not a normal end
	 * (the phone left mid-write, a malformed or oversized write). */
	void (*session_ended)(CpTransport *t, const GError *error, gpointer user_data);
	/* The transport's state changed; error says why when it is a failure
	 * (the controller or BlueZ went away). */
	void (*status)(CpTransport *t, CpTransportState state, const GError *error,
		       gpointer user_data);
} CpTransportEvents;

typedef struct {
	const char *name;
	gboolean (*start)(CpTransport *t, GError **error);
	void (*stop)(CpTransport *t);
	void (*free)(CpTransport *t);
	/* Optional: open the provisioning window for seconds (0: the
	 * configured time), with the device record's state (0-3) to show. */
	void (*open_window)(CpTransport *t, guint seconds, uint8_t device_state);
} CpTransportOps;

struct _CpTransport {
	const CpTransportOps *ops;
	CpTransportEvents events;
	gpointer user_data;
	CpTransportState state;         /* the last one reported (cp_transport_set_state) */
};

static inline gboolean
cp_transport_start(CpTransport *t, GError **error)
{
	return t->ops->start(t, error);
}

static inline void
cp_transport_stop(CpTransport *t)
{
	t->ops->stop(t);
}

static inline const char *
cp_transport_name(const CpTransport *t)
{
	return t->ops->name;
}

/* Opens the window of a transport that has one; FALSE for one that has none. */
gboolean cp_transport_open_window(CpTransport *t, guint seconds, uint8_t device_state);
/* Records the state and reports it through events.status. */
void cp_transport_set_state(CpTransport *t, CpTransportState state, const GError *error);

void cp_transport_free(CpTransport *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpTransport, cp_transport_free)

/* NFC Type 4 Tag on libnfc, with the session deadlines of [nfc]
 * (cp_nfc_tag_set_deadlines()); NULL with an error in a build without NFC. */
CpTransport *cp_transport_nfc_new(const char *connstring, guint command_timeout_ms,
				  guint session_timeout_ms, const CpTransportEvents *events,
				  gpointer user_data, GError **error);

/* BLE GATT on BlueZ ([ble] of the configuration): the adapter, the
 * provisioning window (seconds), the session's idle limit (seconds), the
 * DeviceID the advertisement shows the first bytes of. NULL with an error
 * in a build without BLE. */
typedef struct {
	const char *adapter;            /* "hci0" */
	guint window;                   /* seconds */
	guint idle_timeout;             /* seconds */
	uint8_t device_id[16];
} CpTransportBleConf;

CpTransport *cp_transport_ble_new(const CpTransportBleConf *conf, const CpTransportEvents *events,
				  gpointer user_data, GError **error);
