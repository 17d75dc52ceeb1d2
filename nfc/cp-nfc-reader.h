/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The companion's NFC reader: a libnfc controller in initiator mode that
 * reads and writes an NFC Forum Type 4 Tag (the device's tag). Blocking
 * calls, for the command-line companion; from a GLib program run them in a
 * thread (cp_nfc_reader_abort() may be called from any thread).
 *
 * One tap is: cp_nfc_reader_wait_target(), cp_nfc_reader_select(), any
 * number of cp_nfc_reader_read_ndef() / cp_nfc_reader_write_ndef(), then
 * cp_nfc_reader_release(), which the tag sees as the phone leaving.
 *
 * Every failure is a specific GError: CP_NFC_ERROR (cp-nfc-error.h) for
 * the controller, the link and the T4T procedure, CP_ERROR for bad bytes
 * (CP_ERR_T4T_CC, CP_ERR_NDEF_TOO_LARGE), G_IO_ERROR_CANCELLED after
 * cp_nfc_reader_abort().
 */
#pragma once

#include <glib.h>

#include "cp-ndef.h"
#include "cp-nfc-error.h"

G_BEGIN_DECLS

typedef struct _CpNfcReader CpNfcReader;

typedef struct {
	guint apdus;                   /* C-APDUs sent */
	gsize bytes_out;               /* C-APDU bytes sent */
	gsize bytes_in;                /* R-APDU bytes received */
	guint updates;                 /* UPDATE BINARY among the C-APDUs */
} CpNfcReaderStats;

/* connstring NULL: libnfc's default device. CP_NFC_ERROR_OPEN. */
CpNfcReader *cp_nfc_reader_open(const char *connstring, GError **error);
/* Releases the target if one is selected, closes the controller. */
void cp_nfc_reader_free(CpNfcReader *reader);

/*
 * Poll until an ISO 14443-4 (type A) target is in the field, at most
 * timeout_ms (0: forever, until aborted). CP_NFC_ERROR_NO_TARGET,
 * CP_NFC_ERROR_IO, G_IO_ERROR_CANCELLED.
 */
gboolean cp_nfc_reader_wait_target(CpNfcReader *reader, guint timeout_ms, GError **error);

/*
 * SELECT the NDEF application, SELECT and READ the CC, check it
 * (CP_ERROR CP_ERR_T4T_CC), SELECT the NDEF file. CP_NFC_ERROR_NOT_NDEF
 * when the application or a file is missing.
 */
gboolean cp_nfc_reader_select(CpNfcReader *reader, GError **error);
/* The CC read by cp_nfc_reader_select(). */
const CpT4tCc *cp_nfc_reader_get_cc(CpNfcReader *reader);

/* READ BINARY NLEN, then the message in chunks of at most MLe. An empty
 * tag gives an empty GBytes. */
GBytes *cp_nfc_reader_read_ndef(CpNfcReader *reader, GError **error);

/*
 * The T4T write procedure (NFC Forum T4T, NDEF update) in the fewest
 * UPDATE BINARY the tag's MLc allows: NLEN = 0 with the first MLc - 2
 * bytes of the message, the rest in chunks of MLc, then the final NLEN;
 * a message that fits one command with its NLEN goes in one, NLEN
 * included. CP_NFC_ERROR_READ_ONLY,
 * CP_ERROR CP_ERR_NDEF_TOO_LARGE (checked against the CC before anything
 * is written), CP_NFC_ERROR_STATUS when the tag refuses a chunk or the
 * final NLEN (e.g. 6A80: it found the message malformed).
 */
/* The fewest UPDATE BINARY that write a message of len bytes to a tag of
 * this MLc (short APDUs: at most 255 bytes each) by that procedure. */
guint cp_nfc_reader_write_min_updates(gsize len, guint mlc);
gboolean cp_nfc_reader_write_ndef(CpNfcReader *reader, const guint8 *ndef, gsize len,
				  GError **error);

/*
 * One raw APDU exchange (for tests and diagnostics): *sw gets SW1 SW2;
 * the R-APDU data (without SW) is returned. Fails only for link errors.
 */
GBytes *cp_nfc_reader_transceive(CpNfcReader *reader, const guint8 *capdu, gsize len,
				 guint16 *sw, GError **error);

/* End the tap: InRelease; the tag sees the phone leave. */
void cp_nfc_reader_release(CpNfcReader *reader);

/* Interrupt a blocking call from another thread or a signal handler's
 * deferred context; that call fails with G_IO_ERROR_CANCELLED, and so does
 * every later one: an abort ends the reader's use, only free it then. */
void cp_nfc_reader_abort(CpNfcReader *reader);

/* Counters since the last cp_nfc_reader_wait_target(). */
void cp_nfc_reader_get_stats(CpNfcReader *reader, CpNfcReaderStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpNfcReader, cp_nfc_reader_free)

G_END_DECLS
