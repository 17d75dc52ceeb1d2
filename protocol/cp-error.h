/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Error codes of the cellprov protocol.
 *
 * These numbers travel on the wire (the receipt's reason field, tag 0x05) and
 * in the SM's JSON errors, so they are stable: never renumber one, only add.
 * The high byte says which part of the flow failed; docs/error-codes.md lists
 * them all with what the user should do.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum {
	CP_OK = 0x0000,

	/* 0x01xx: TLV structure (any cellprov structure) */
	CP_ERR_TRUNCATED = 0x0101,       /* ends inside a tag, length or value */
	CP_ERR_TRAILING = 0x0102,        /* bytes after the last TLV (or after mac) */
	CP_ERR_TAG_ORDER = 0x0103,       /* tag not above the previous one */
	CP_ERR_TAG_DUPLICATE = 0x0104,   /* same tag twice */
	CP_ERR_LENGTH = 0x0105,          /* length outside the field's limits */
	CP_ERR_UNKNOWN_TAG = 0x0106,     /* unknown tag below 0x40 */
	CP_ERR_MISSING_FIELD = 0x0107,   /* a mandatory tag is absent */
	CP_ERR_BAD_VALUE = 0x0108,       /* value not of the field's form (digits, UTF-8, enum) */
	CP_ERR_TOO_LARGE = 0x0109,       /* whole structure above its size limit */
	CP_ERR_MAC_NOT_LAST = 0x010A,    /* something after the mac tag */

	/* 0x02xx: profile verification, in the order the device checks */
	CP_ERR_VERSION = 0x0201,         /* a structure version this implementation does not take */
	CP_ERR_WRONG_DEVICE = 0x0202,    /* device_id is not this device's */
	CP_ERR_SUITE = 0x0203,           /* ECIES suite unknown or not offered by the device */
	CP_ERR_DECRYPT = 0x0204,         /* ECIES MAC wrong: not encrypted to this device key */
	CP_ERR_MAC = 0x0205,             /* profile mac wrong (K_prof) */
	CP_ERR_REPLAY = 0x0206,          /* profile_seq not above the last committed one */
	CP_ERR_EXPIRED = 0x0207,         /* not_after in the past */
	CP_ERR_SUPI_PLMN = 0x0208,       /* supi does not start with plmn */
	CP_ERR_SIGNATURE = 0x0209,       /* device record attestation signature wrong */
	CP_ERR_RECEIPT_MAC = 0x020A,     /* receipt mac wrong (K'') */
	CP_ERR_NO_MAC = 0x020B,          /* receipt carries no mac where one is needed */
	CP_ERR_OPERATOR = 0x020C,        /* op_chain does not reach a trusted (or the pinned) operator */
	CP_ERR_OPERATOR_SIGNATURE = 0x020D, /* op_signature wrong under the operator's certificate */
	CP_ERR_BINDING = 0x020E,         /* the operation does not fit the device's owner binding */

	/* 0x03xx: NDEF and Type 4 Tag */
	CP_ERR_NDEF_EMPTY = 0x0301,      /* no record */
	CP_ERR_NDEF_HEADER = 0x0302,     /* MB/ME flags wrong, or TNF reserved */
	CP_ERR_NDEF_CHUNKED = 0x0303,    /* chunked records are not supported */
	CP_ERR_NDEF_TRUNCATED = 0x0304,  /* a record ends past the message */
	CP_ERR_NDEF_TRAILING = 0x0305,   /* bytes after the ME record */
	CP_ERR_NDEF_TOO_MANY = 0x0306,   /* more records than CP_NDEF_MAX_RECORDS */
	CP_ERR_NDEF_URI = 0x0307,        /* URI record prefix code or text invalid */
	CP_ERR_NDEF_NO_RECORD = 0x0308,  /* the expected record (e.g. the profile) is missing */
	CP_ERR_T4T_CC = 0x0309,          /* capability container invalid */
	CP_ERR_NDEF_TOO_LARGE = 0x030A,  /* message above the NDEF file size */

	/* 0x04xx: local crypto and keys */
	CP_ERR_CRYPTO = 0x0401,          /* OpenSSL failed (out of memory, ...) */
	CP_ERR_KEY = 0x0402,             /* a key is malformed or of the wrong type */
	CP_ERR_POINT = 0x0403,           /* an ECIES ephemeral public key is not on the curve */
	CP_ERR_ARGUMENT = 0x0404,        /* programming error: bad argument */

	/* 0x05xx: USIM and modem (device side) */
	CP_ERR_CARD_UNKNOWN = 0x0501,    /* no driver for this USIM */
	CP_ERR_CARD_ABSENT = 0x0502,     /* no USIM, or card error */
	CP_ERR_ADM1 = 0x0503,            /* ADM1 rejected; the card counts down */
	CP_ERR_ADM1_BLOCKED = 0x0504,    /* ADM1 blocked: the card cannot be written */
	CP_ERR_APDU = 0x0505,            /* an APDU got an error status word */
	CP_ERR_MODEM = 0x0506,           /* a QMI or ModemManager request failed */
	CP_ERR_MODEM_TIMEOUT = 0x0507,   /* the modem did not answer in time */
	CP_ERR_MODEM_GONE = 0x0508,      /* the modem disappeared */
	CP_ERR_REG_DENIED = 0x0509,      /* the network denied registration */
	CP_ERR_REG_TIMEOUT = 0x050A,     /* no registration before the timeout */
	CP_ERR_IMSI_MISMATCH = 0x050B,   /* the modem reports another IMSI than written */
	CP_ERR_ROLLBACK = 0x050C,        /* rollback of the old USIM values failed */
	CP_ERR_APN = 0x050D,             /* the APN could not be set */

	/* 0x06xx: device daemon */
	CP_ERR_INTERRUPTED = 0x0601,     /* a provisioning was cut off (power, crash) and rolled back */
	CP_ERR_BUSY = 0x0602,            /* a provisioning is already in progress */
	CP_ERR_STATE = 0x0603,           /* the request does not fit the current state */
	CP_ERR_STORAGE = 0x0604,         /* the journal could not be written */

	/* 0x07xx: BLE framing (docs/protocol.md section 18) */
	CP_ERR_BLE_SEGMENT = 0x0701,     /* empty, over 512 bytes, header cut, no data */
	CP_ERR_BLE_FLAGS = 0x0702,       /* reserved bit, B/E not where they belong */
	CP_ERR_BLE_SEQUENCE = 0x0703,    /* segment lost, repeated or reordered */
	CP_ERR_BLE_ACK = 0x0704,         /* ack of a segment not sent */
	CP_ERR_BLE_WINDOW = 0x0705,      /* more unacknowledged segments than W */
	CP_ERR_BLE_LENGTH = 0x0706,      /* msg_len 0, data past it, data after E */
	CP_ERR_BLE_TOO_LARGE = 0x0707,   /* above 4100 bytes */
	CP_ERR_BLE_OFFSET = 0x0708,      /* a long write out of order */
	CP_ERR_BLE_MTU = 0x0709,         /* MTU outside the ATT range */
	CP_ERR_BLE_MESSAGE_TIMEOUT = 0x070A, /* the message timeout expired */
	CP_ERR_BLE_ACK_TIMEOUT = 0x070B, /* the acknowledgement timeout expired */
	CP_ERR_BLE_IDLE = 0x070C,        /* the idle timeout expired */
	CP_ERR_BLE_SESSION_TIMEOUT = 0x070D, /* the session timeout expired */
	CP_ERR_BLE_VERSION = 0x070E,     /* version byte not 1 */
	CP_ERR_BLE_OPCODE = 0x070F,      /* opcode not defined */
	CP_ERR_BLE_MESSAGE = 0x0710,     /* header short, body where none belongs */
	CP_ERR_BLE_RATE = 0x0711,        /* too many sessions in a minute */
} CpError;

/* Short stable name, e.g. "wrong-device"; "unknown" for a code not listed. */
const char *cp_error_name(CpError err);

/* One human sentence saying what went wrong. */
const char *cp_error_message(CpError err);

/* One sentence saying what the user does about it (docs/error-codes.md). */
const char *cp_error_hint(CpError err);

/* The code of a cp_error_name() into *out; false for a name not listed. */
bool cp_error_from_name(const char *name, CpError *out);
