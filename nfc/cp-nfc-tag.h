/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device's NFC tag: an NFC Forum Type 4 Tag emulated on a libnfc
 * controller (a PN532 on the gateway) in target mode.
 *
 * A CpNfcTag owns one libnfc context and the device of one connstring. A
 * worker thread runs libnfc's blocking calls (nfc_target_init,
 * nfc_target_receive_bytes, ...) and the T4T state machine (cp-t4t-tag.h);
 * everything the owner sees arrives as callbacks on the main context that
 * was the thread-default one when the tag was created, in the order the
 * worker raised them, and only on the thread iterating that context.
 *
 * One read session is one phone in the field: it starts when the phone
 * activates the target and ends when the phone releases it (libnfc's
 * NFC_ETGRELEASED, the normal end of a tap). At the start of each session
 * the tag asks the owner for the NDEF message to present (so the device
 * record carries a fresh attestation counter and random on every tap).
 * A message written by the phone is delivered only once the final
 * non-zero NLEN arrives and the message parses; a phone that leaves
 * mid-write, an oversized write or a malformed message end the session
 * with a specific error and deliver nothing.
 *
 * A controller that cannot be opened, or disappears, is reopened with
 * exponential backoff until cp_nfc_tag_stop(); the owner learns of it
 * through state_changed. cp_nfc_tag_stop() interrupts libnfc with
 * nfc_abort_command() and returns promptly (well under a second).
 */
#pragma once

#include <glib.h>

#include "cp-nfc-error.h"

G_BEGIN_DECLS

typedef struct _CpNfcTag CpNfcTag;

/* The deadlines of a session (cp_nfc_tag_set_deadlines()). A phone
 * writing a 1.3 KB profile needs well under a second in all. */
#define CP_NFC_TAG_COMMAND_TIMEOUT_MS 5000
#define CP_NFC_TAG_SESSION_TIMEOUT_MS 30000

typedef enum {
	CP_NFC_TAG_STOPPED = 0,
	CP_NFC_TAG_OPENING,            /* opening the controller, or waiting to retry */
	CP_NFC_TAG_WAITING,            /* controller open, target armed: waiting for a phone */
	CP_NFC_TAG_SESSION,            /* a phone is in the field */
} CpNfcTagState;

typedef struct {
	guint apdus;                   /* C-APDUs answered */
	gsize bytes_in;                /* C-APDU bytes received */
	gsize bytes_out;               /* R-APDU bytes sent */
	guint writes;                  /* messages delivered through written() */
	gint64 duration_us;            /* activation to release */
} CpNfcSessionInfo;

typedef struct {
	/*
	 * A phone activated the tag: return the NDEF message to present
	 * during this session (at most CP_T4T_NDEF_MAX bytes; transfer
	 * full). NULL presents an empty tag (NLEN 0). Called on the main
	 * context; the phone waits for it, so it must not block. Optional.
	 */
	GBytes *(*content)(CpNfcTag *tag, gpointer user_data);

	/*
	 * The phone wrote a complete, well-formed NDEF message (final
	 * non-zero NLEN). The phone may still be in the field, and may read
	 * it back. Which records it holds is for the owner to check.
	 */
	void (*written)(CpNfcTag *tag, GBytes *ndef, gpointer user_data);

	/*
	 * A session ended. error is NULL for a normal end (the phone left
	 * with no write in progress), otherwise:
	 *  CP_NFC_ERROR_WRITE_INCOMPLETE  the phone left mid-write;
	 *  CP_ERROR CP_ERR_NDEF_TOO_LARGE a write beyond the NDEF file;
	 *  CP_ERROR CP_ERR_NDEF_*         the written message is malformed;
	 *  CP_NFC_ERROR_TIMEOUT           the reader sent no command within the
 *                                 per-command deadline, or the session
 *                                 outlasted the per-session deadline:
 *                                 the tag released the target;
 *  CP_NFC_ERROR_IO                the controller was lost mid-session.
	 * A rejected write is reported once, here, even if the phone went on
	 * to read or write again in the same session (the first error wins).
	 */
	void (*session_ended)(CpNfcTag *tag, const CpNfcSessionInfo *info,
			      const GError *error, gpointer user_data);

	/*
	 * The controller's state changed. error is set on the way to
	 * CP_NFC_TAG_OPENING when the controller could not be opened or was
	 * lost (CP_NFC_ERROR_OPEN, CP_NFC_ERROR_IO); the tag retries by
	 * itself. Optional.
	 */
	void (*state_changed)(CpNfcTag *tag, CpNfcTagState state,
			      const GError *error, gpointer user_data);
} CpNfcTagCallbacks;

/*
 * connstring: a libnfc connstring (e.g. "pn532_uart:/dev/ttyS1"), or NULL
 * for libnfc's default device (LIBNFC_DEVICE, libnfc.conf). callbacks is
 * copied; user_data is passed to each callback.
 */
CpNfcTag *cp_nfc_tag_new(const char *connstring, const CpNfcTagCallbacks *callbacks,
			 gpointer user_data);
CpNfcTag *cp_nfc_tag_ref(CpNfcTag *tag);
/* The last unref stops the tag if it still runs; call cp_nfc_tag_stop()
 * first if callbacks may still be queued. */
void cp_nfc_tag_unref(CpNfcTag *tag);

/* Backoff between attempts to open the controller (default 250 ms,
 * doubling up to 10 s). Before cp_nfc_tag_start(). */
void cp_nfc_tag_set_backoff(CpNfcTag *tag, guint min_ms, guint max_ms);

/*
 * Deadlines within a session (default CP_NFC_TAG_COMMAND_TIMEOUT_MS and
 * CP_NFC_TAG_SESSION_TIMEOUT_MS): no C-APDU for command_ms, or a session
 * longer than session_ms, ends the session with CP_NFC_ERROR_TIMEOUT; the
 * tag releases the target (InRelease) and arms it afresh, so the next tap
 * is a new session with fresh content. Before cp_nfc_tag_start().
 */
void cp_nfc_tag_set_deadlines(CpNfcTag *tag, guint command_ms, guint session_ms);

/*
 * Start the worker. Fails only when libnfc cannot be initialised
 * (CP_NFC_ERROR_OPEN) or the tag already runs (CP_ERROR CP_ERR_STATE); a
 * missing controller is retried in the background.
 */
gboolean cp_nfc_tag_start(CpNfcTag *tag, GError **error);

/*
 * Stop the worker: abort the blocking libnfc call, close the controller,
 * join the thread, then call state_changed (CP_NFC_TAG_STOPPED) if the
 * state was another. No callback is called after this returns, and none
 * queued before it is delivered. Main context only; safe to call when not
 * running, and from a callback.
 */
void cp_nfc_tag_stop(CpNfcTag *tag);

CpNfcTagState cp_nfc_tag_get_state(CpNfcTag *tag);
const char *cp_nfc_tag_get_connstring(CpNfcTag *tag);
const char *cp_nfc_tag_state_name(CpNfcTagState state);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpNfcTag, cp_nfc_tag_unref)

G_END_DECLS
