/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How the tag reaches the phone: a transport presents the NDEF message the
 * daemon builds at the start of every read session and hands over what
 * the phone writes. NFC (cp-transport-nfc.c on nfc/cp-nfc-tag.h) is the
 * first; BLE GATT would be another. Everything arrives on the main
 * context.
 */
#pragma once

#include <glib.h>

typedef struct _CpTransport CpTransport;

typedef struct {
	/* A read session starts: the message to present (NULL: empty). */
	GBytes *(*content)(CpTransport *t, gpointer user_data);
	/* The phone wrote a complete NDEF message. */
	void (*written)(CpTransport *t, GBytes *ndef, gpointer user_data);
	/* A session ended; error says why when it was not a normal end
	 * (the phone left mid-write, a malformed or oversized write). */
	void (*session_ended)(CpTransport *t, const GError *error, gpointer user_data);
	/* The transport's own state ("opening", "waiting", ...). */
	void (*status)(CpTransport *t, const char *state, const GError *error,
		       gpointer user_data);
} CpTransportEvents;

typedef struct {
	const char *name;
	gboolean (*start)(CpTransport *t, GError **error);
	void (*stop)(CpTransport *t);
	void (*free)(CpTransport *t);
} CpTransportOps;

struct _CpTransport {
	const CpTransportOps *ops;
	CpTransportEvents events;
	gpointer user_data;
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

void cp_transport_free(CpTransport *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpTransport, cp_transport_free)

/* NFC Type 4 Tag on libnfc, with the session deadlines of [nfc]
 * (cp_nfc_tag_set_deadlines()); NULL with an error in a build without NFC. */
CpTransport *cp_transport_nfc_new(const char *connstring, guint command_timeout_ms,
				  guint session_timeout_ms, const CpTransportEvents *events,
				  gpointer user_data, GError **error);
