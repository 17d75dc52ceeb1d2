/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Errors of the NFC transport, shared by the device's tag (cp-nfc-tag.h)
 * and the companion's reader (cp-nfc-reader.h).
 *
 * What is wrong with the bytes themselves uses CP_ERROR with the protocol
 * codes (CP_ERR_NDEF_* for a malformed message, CP_ERR_NDEF_TOO_LARGE for
 * one above the NDEF file, CP_ERR_T4T_CC for a bad capability container);
 * CP_NFC_ERROR says what went wrong with the controller, the RF link or the
 * Type 4 Tag procedure. A cancelled operation is G_IO_ERROR_CANCELLED.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CP_NFC_ERROR (cp_nfc_error_quark())
GQuark cp_nfc_error_quark(void);

typedef enum {
	/* The controller could not be opened: no such device, bad
	 * connstring, claimed by another process, or not a PN53x. */
	CP_NFC_ERROR_OPEN = 1,
	/* The controller stopped answering or disappeared (unplugged,
	 * serial port gone). The tag reopens it with backoff. */
	CP_NFC_ERROR_IO,
	/* No tag came into the reader's field before the timeout. */
	CP_NFC_ERROR_NO_TARGET,
	/* The tag (or the phone) left the field during an exchange. */
	CP_NFC_ERROR_TARGET_LOST,
	/* The tag has no NFC Forum Type 4 NDEF application, or its CC or
	 * NDEF file cannot be selected. */
	CP_NFC_ERROR_NOT_NDEF,
	/* The tag answered an APDU with an error status word (in the
	 * message, e.g. "6A82"). */
	CP_NFC_ERROR_STATUS,
	/* A response of the wrong form (length, NLEN beyond the file). */
	CP_NFC_ERROR_PROTOCOL,
	/* The reader left after NLEN = 0 and before the final NLEN: the
	 * partial message was discarded, nothing was delivered. */
	CP_NFC_ERROR_WRITE_INCOMPLETE,
	/* The capability container says the NDEF file is read-only. */
	CP_NFC_ERROR_READ_ONLY,
	/* The controller cannot do what was asked (libnfc: not supported). */
	CP_NFC_ERROR_NOT_SUPPORTED,
	/* The reader kept the tag past a deadline: no command for the
	 * per-command time, or a session longer than the per-session time.
	 * The tag released the target and is presented afresh. */
	CP_NFC_ERROR_TIMEOUT,
} CpNfcError;

/* Stable short name, e.g. "write-incomplete". */
const char *cp_nfc_error_name(CpNfcError code);

G_END_DECLS
