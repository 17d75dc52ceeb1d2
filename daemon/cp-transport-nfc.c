/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The NFC Type 4 Tag transport (nfc/cp-nfc-tag.h) behind cp-transport.h. */
#include "cp-transport.h"

#include "cp-glib.h"

#if CP_DAEMON_NFC

#include "cp-nfc-tag.h"

typedef struct {
	CpTransport parent;
	CpNfcTag *tag;
} CpTransportNfc;

static GBytes *
on_content(CpNfcTag *tag, gpointer user_data)
{
	CpTransport *t = user_data;

	return t->events.content ? t->events.content(t, t->user_data) : NULL;
}

static void
on_written(CpNfcTag *tag, GBytes *ndef, gpointer user_data)
{
	CpTransport *t = user_data;

	/* a Type 4 Tag cannot say busy: the daemon logs and drops it */
	if (t->events.written)
		(void)t->events.written(t, ndef, t->user_data);
}

static void
on_session_ended(CpNfcTag *tag, const CpNfcSessionInfo *info, const GError *error,
		 gpointer user_data)
{
	CpTransport *t = user_data;

	g_debug("nfc: session ended after %u APDUs, %" G_GINT64_FORMAT " ms",
		info ? info->apdus : 0, info ? info->duration_us / 1000 : 0);
	if (t->events.session_ended)
		t->events.session_ended(t, error, t->user_data);
}

static void
on_state_changed(CpNfcTag *tag, CpNfcTagState state, const GError *error, gpointer user_data)
{
	CpTransport *t = user_data;

	static const CpTransportState states[] = {
		[CP_NFC_TAG_STOPPED] = CP_TRANSPORT_STOPPED,
		[CP_NFC_TAG_OPENING] = CP_TRANSPORT_STARTING,
		[CP_NFC_TAG_WAITING] = CP_TRANSPORT_WAITING,
		[CP_NFC_TAG_SESSION] = CP_TRANSPORT_SESSION,
	};

	cp_transport_set_state(t, state < G_N_ELEMENTS(states) ? states[state] : CP_TRANSPORT_STARTING,
			       error);
}

static gboolean
nfc_start(CpTransport *t, GError **error)
{
	return cp_nfc_tag_start(((CpTransportNfc *)t)->tag, error);
}

static void
nfc_stop(CpTransport *t)
{
	cp_nfc_tag_stop(((CpTransportNfc *)t)->tag);
}

static void
nfc_free(CpTransport *t)
{
	CpTransportNfc *tn = (CpTransportNfc *)t;

	cp_nfc_tag_stop(tn->tag);
	cp_nfc_tag_unref(tn->tag);
	g_free(tn);
}

static const CpTransportOps nfc_ops = {
	.name = "nfc",
	.start = nfc_start,
	.stop = nfc_stop,
	.free = nfc_free,
};

static const CpNfcTagCallbacks callbacks = {
	.content = on_content,
	.written = on_written,
	.session_ended = on_session_ended,
	.state_changed = on_state_changed,
};

CpTransport *
cp_transport_nfc_new(const char *connstring, guint command_timeout_ms, guint session_timeout_ms,
		     const CpTransportEvents *events, gpointer user_data, GError **error)
{
	CpTransportNfc *tn = g_new0(CpTransportNfc, 1);

	tn->parent.ops = &nfc_ops;
	tn->parent.events = *events;
	tn->parent.user_data = user_data;
	tn->tag = cp_nfc_tag_new(connstring, &callbacks, &tn->parent);
	cp_nfc_tag_set_deadlines(tn->tag, command_timeout_ms, session_timeout_ms);
	return &tn->parent;
}

#else

CpTransport *
cp_transport_nfc_new(const char *connstring, guint command_timeout_ms, guint session_timeout_ms,
		     const CpTransportEvents *events, gpointer user_data, GError **error)
{
	cp_set_error(error, CP_ERR_STATE, "this cellprovd was built without NFC (libnfc)");
	return NULL;
}

#endif
