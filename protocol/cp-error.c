/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-error.h"

#include <stddef.h>
#include <string.h>

/*
 * One table: the names are part of the interface (JSON errors, cellprovctl
 * output, logs), so they never change once released, like the numbers.
 * docs/error-codes.md is this table in prose; test-error checks that every
 * code in cp-error.h has a row here.
 */
typedef struct {
	CpError code;
	const char *name;
	const char *message;
	const char *hint;
} CpErrorInfo;

static const CpErrorInfo error_table[] = {
	{ CP_OK, "ok", "Success",
	  "Nothing to do." },

	{ CP_ERR_TRUNCATED, "truncated", "The data ends inside a field",
	  "Tap again and hold the phone still until the transfer ends." },
	{ CP_ERR_TRAILING, "trailing-bytes", "Unexpected bytes after the last field",
	  "Update the companion app or the network side: they produce malformed data." },
	{ CP_ERR_TAG_ORDER, "tag-order", "A field is out of order",
	  "Update the sender: it does not encode fields in ascending tag order." },
	{ CP_ERR_TAG_DUPLICATE, "tag-duplicate", "A field appears twice",
	  "Update the sender: it repeats a field." },
	{ CP_ERR_LENGTH, "length", "A field has a length outside its limits",
	  "Check the values entered (name, APN, serial) and update the sender." },
	{ CP_ERR_UNKNOWN_TAG, "unknown-tag", "A field of an unknown kind is present",
	  "Update the device software: the sender uses a newer protocol." },
	{ CP_ERR_MISSING_FIELD, "missing-field", "A mandatory field is missing",
	  "Update the sender: it leaves out a mandatory field." },
	{ CP_ERR_BAD_VALUE, "bad-value", "A field holds a value of the wrong form",
	  "Check the values entered (digits, text) and update the sender." },
	{ CP_ERR_TOO_LARGE, "too-large", "The data is larger than allowed",
	  "Shorten the optional values (network name, APN) and try again." },
	{ CP_ERR_MAC_NOT_LAST, "mac-not-last", "Data follows the integrity field",
	  "Update the sender: the mac must be the last field." },

	{ CP_ERR_VERSION, "version", "The protocol version is not supported",
	  "Update the device or the companion app so that both speak the same version." },
	{ CP_ERR_WRONG_DEVICE, "wrong-device", "The profile is for another device",
	  "Tap the device the profile was made for, or start again from this device's tag." },
	{ CP_ERR_SUITE, "suite", "The encryption suite is unknown or not offered by this device",
	  "Start again from this device's tag so the network uses a suite the device offers." },
	{ CP_ERR_DECRYPT, "decrypt", "The credentials are not encrypted to this device's key",
	  "Start again from this device's tag; if it persists, the device key was replaced: contact the manufacturer." },
	{ CP_ERR_MAC, "mac", "The profile failed its integrity check",
	  "Start again from this device's tag; the profile was altered or damaged." },
	{ CP_ERR_REPLAY, "replay", "The profile is older than the one already installed",
	  "Request a new profile from the operator; an old one cannot be reused." },
	{ CP_ERR_EXPIRED, "expired", "The profile has expired",
	  "Request a new profile and tap it within its validity; check the device clock." },
	{ CP_ERR_SUPI_PLMN, "supi-plmn", "The subscriber identity does not belong to the network given",
	  "Contact the operator: the profile names inconsistent network and identity." },
	{ CP_ERR_SIGNATURE, "signature", "The device record's attestation signature is wrong",
	  "Tap again; if it persists the device is not genuine or its certificate is wrong." },
	{ CP_ERR_RECEIPT_MAC, "receipt-mac", "The receipt failed its integrity check",
	  "Tap the device again to read a fresh receipt; the companion keeps the key." },
	{ CP_ERR_NO_MAC, "no-mac", "The receipt carries no integrity field",
	  "The device rejected the profile before it could check it; read its reason and start again." },
	{ CP_ERR_OPERATOR, "operator", "The profile was not made by an operator this device trusts",
	  "Only the device's operator can provision it: use a companion of that operator, or have the manufacturer's trusted operators changed." },
	{ CP_ERR_OPERATOR_SIGNATURE, "operator-signature", "The operator's signature on the profile is wrong",
	  "The profile was altered or forged; request a new one from the operator." },
	{ CP_ERR_BINDING, "binding", "The profile does not fit the device's current owner",
	  "A device that has an owner takes only that owner's profiles: the owner re-provisions, transfers or decommissions it." },

	{ CP_ERR_NDEF_EMPTY, "ndef-empty", "The NFC message holds no record",
	  "Tap again; the write did not complete." },
	{ CP_ERR_NDEF_HEADER, "ndef-header", "An NFC record header is invalid",
	  "Tap again; if it persists, update the companion app." },
	{ CP_ERR_NDEF_CHUNKED, "ndef-chunked", "Chunked NFC records are not supported",
	  "Update the companion app: it must write unchunked records." },
	{ CP_ERR_NDEF_TRUNCATED, "ndef-truncated", "An NFC record ends past the message",
	  "Tap again and hold the phone still until the transfer ends." },
	{ CP_ERR_NDEF_TRAILING, "ndef-trailing", "Unexpected bytes after the last NFC record",
	  "Tap again; if it persists, update the companion app." },
	{ CP_ERR_NDEF_TOO_MANY, "ndef-too-many", "The NFC message holds too many records",
	  "Update the companion app: it writes more records than the device accepts." },
	{ CP_ERR_NDEF_URI, "ndef-uri", "The NFC URI record is invalid",
	  "Reprovision the device identity at the factory (cellprov-mfg): its certificate URL is invalid." },
	{ CP_ERR_NDEF_NO_RECORD, "ndef-no-record", "The expected NFC record is missing",
	  "Tap with the companion app open; another app wrote to the tag." },
	{ CP_ERR_T4T_CC, "t4t-cc", "The NFC tag's capability container is invalid",
	  "Check that the tag is a cellprov device; restart the device daemon." },
	{ CP_ERR_NDEF_TOO_LARGE, "ndef-too-large", "The NFC message is larger than the tag's file",
	  "Shorten the optional values (network name, APN) and try again." },

	{ CP_ERR_CRYPTO, "crypto", "A cryptographic operation failed",
	  "Check the device's free memory and its OpenSSL installation, then try again." },
	{ CP_ERR_KEY, "key", "A key is malformed or of the wrong type",
	  "Check the key file named in the configuration (a P-256 PKCS#8 PEM, mode 0600)." },
	{ CP_ERR_POINT, "point", "An ephemeral public key is not a valid curve point",
	  "Start again from this device's tag; the profile was altered or damaged." },
	{ CP_ERR_ARGUMENT, "argument", "Invalid argument",
	  "Report a bug: a caller passed an invalid argument." },

	{ CP_ERR_CARD_UNKNOWN, "card-unknown", "No driver for this USIM",
	  "Set [modem] card= to a supported USIM driver, or fit a supported programmable USIM." },
	{ CP_ERR_CARD_ABSENT, "card-absent", "No USIM, or the USIM does not answer (its ICCID cannot be read)",
	  "Check that the USIM is inserted and seated; power-cycle the device." },
	{ CP_ERR_ADM1, "adm1", "The USIM rejected the ADM1 key",
	  "Check the ADM1 file or credential: every wrong try counts down the card's retries. cellprov never spends the last one; a card left with one must be verified by hand." },
	{ CP_ERR_ADM1_BLOCKED, "adm1-blocked", "The USIM's ADM1 key is blocked",
	  "Replace the USIM: a blocked ADM1 key cannot be recovered." },
	{ CP_ERR_APDU, "apdu", "The USIM answered a command with an error",
	  "Check that the card matches the configured driver ([modem] card=)." },
	{ CP_ERR_MODEM, "modem", "A modem request failed",
	  "Check the modem device and backend in the configuration; see the daemon log." },
	{ CP_ERR_MODEM_TIMEOUT, "modem-timeout", "The modem did not answer in time",
	  "Power-cycle the device; if it persists, check the modem firmware." },
	{ CP_ERR_MODEM_GONE, "modem-gone", "The modem disappeared",
	  "Check the modem's power and USB connection; the daemon retries when it returns." },
	{ CP_ERR_REG_DENIED, "registration-denied", "The network denied registration",
	  "Contact the operator: the subscription may not be active yet." },
	{ CP_ERR_REG_TIMEOUT, "registration-timeout", "No network registration before the timeout",
	  "Check coverage and the antenna, then reprovision; or raise registration-timeout." },
	{ CP_ERR_IMSI_MISMATCH, "imsi-mismatch", "The modem reports another IMSI than the one written",
	  "Check that only one USIM is fitted and that the card driver is right." },
	{ CP_ERR_ROLLBACK, "rollback", "The old USIM values could not be restored",
	  "Contact support: the USIM may hold a partial profile." },
	{ CP_ERR_APN, "apn", "The APN could not be set",
	  "Check the APN in the profile and the modem's profile support." },

	{ CP_ERR_INTERRUPTED, "interrupted", "A provisioning was interrupted and rolled back",
	  "Tap again to restart provisioning." },
	{ CP_ERR_BUSY, "busy", "A provisioning is already in progress",
	  "Wait for the current provisioning to finish, then tap again." },
	{ CP_ERR_STATE, "state", "The request does not fit the device's current state",
	  "Check the device state with cellprovctl status; use cellprovctl forget to reprovision." },
	{ CP_ERR_STORAGE, "storage", "The device could not write its journal",
	  "Check free space and permissions of the state directory." },

	{ CP_ERR_BLE_SEGMENT, "ble-segment", "A BLE segment is malformed",
	  "Update the companion app: it sends malformed BLE segments." },
	{ CP_ERR_BLE_FLAGS, "ble-flags", "A BLE segment's flags are wrong",
	  "Update the companion app: it frames BLE messages wrongly." },
	{ CP_ERR_BLE_SEQUENCE, "ble-sequence", "A BLE segment was lost, repeated or reordered",
	  "Move the phone closer and start again." },
	{ CP_ERR_BLE_ACK, "ble-ack", "A BLE acknowledgement names a segment not sent",
	  "Update the companion app: it acknowledges BLE segments wrongly." },
	{ CP_ERR_BLE_WINDOW, "ble-window", "The BLE peer sent more segments than the window allows",
	  "Update the companion app: it ignores the BLE window." },
	{ CP_ERR_BLE_LENGTH, "ble-length", "A BLE message's length does not match its segments",
	  "Update the companion app: it frames BLE messages wrongly." },
	{ CP_ERR_BLE_TOO_LARGE, "ble-too-large", "A BLE message is larger than allowed",
	  "Update the companion app: the message cannot be that large." },
	{ CP_ERR_BLE_OFFSET, "ble-offset", "A BLE write's offset does not continue the segment",
	  "Start again; update the companion app if it persists." },
	{ CP_ERR_BLE_MTU, "ble-mtu", "The BLE link reports an ATT MTU outside 23-517",
	  "Check the Bluetooth stack of the device and the phone." },
	{ CP_ERR_BLE_MESSAGE_TIMEOUT, "ble-message-timeout", "A BLE message did not arrive whole in time",
	  "Move the phone closer and start again." },
	{ CP_ERR_BLE_ACK_TIMEOUT, "ble-ack-timeout", "The BLE peer did not acknowledge in time",
	  "Move the phone closer and start again." },
	{ CP_ERR_BLE_IDLE, "ble-idle", "The BLE session was idle too long",
	  "Start again and keep the app in the foreground." },
	{ CP_ERR_BLE_SESSION_TIMEOUT, "ble-session-timeout", "The BLE session lasted too long",
	  "Start again; a session reads or writes once and ends." },
	{ CP_ERR_BLE_VERSION, "ble-version", "The BLE message version is not supported",
	  "Update the companion app or the device software." },
	{ CP_ERR_BLE_OPCODE, "ble-opcode", "The BLE request is unknown",
	  "Update the device software: the app uses a newer protocol." },
	{ CP_ERR_BLE_MESSAGE, "ble-message", "A BLE message header is malformed",
	  "Update the companion app: it sends malformed BLE messages." },
	{ CP_ERR_BLE_RATE, "ble-rate", "Too many BLE sessions in the last minute",
	  "Wait a minute and start again." },
};

static const CpErrorInfo *
lookup(CpError err)
{
	for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
		if (error_table[i].code == err)
			return &error_table[i];
	return NULL;
}

const char *
cp_error_name(CpError err)
{
	const CpErrorInfo *e = lookup(err);

	return e ? e->name : "unknown";
}

const char *
cp_error_message(CpError err)
{
	const CpErrorInfo *e = lookup(err);

	return e ? e->message : "Unknown error";
}

const char *
cp_error_hint(CpError err)
{
	const CpErrorInfo *e = lookup(err);

	return e ? e->hint : "Update the device software: it does not know this error code.";
}

bool
cp_error_from_name(const char *name, CpError *out)
{
	if (!name)
		return false;
	for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
		if (strcmp(error_table[i].name, name) == 0) {
			*out = error_table[i].code;
			return true;
		}
	return false;
}
