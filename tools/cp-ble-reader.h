/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The companion's BLE reader: the phone's (GATT client's) side of
 * docs/protocol.md section 18 on BlueZ's D-Bus API (adapter-api.txt,
 * device-api.txt, gatt-api.txt), through GDBus. Blocking calls, for the
 * command-line companion: each runs a private main context until it is
 * done.
 *
 * One "tap" is cp_ble_reader_connect() (scan for the cellprov service,
 * pick the device by the DeviceID prefix of its advertisement, connect,
 * wait for ServicesResolved, find RX and TX, StartNotify on TX), any
 * number of cp_ble_reader_request() (one request, its response, over the
 * framing of the protocol library's cp-ble.h), then
 * cp_ble_reader_disconnect(), which the device sees as the session's end.
 *
 * Every failure is a specific GError: CP_BLE_READER_ERROR for BlueZ and
 * the link, CP_ERROR for the framing (CP_ERR_BLE_*, the session is then
 * over) and for a response's status other than 0 (CP_ERR_BUSY,
 * CP_ERR_NDEF_*, ...; the session goes on).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CP_BLE_READER_ERROR (cp_ble_reader_error_quark())
GQuark cp_ble_reader_error_quark(void);

typedef enum {
	CP_BLE_READER_ERROR_NO_BLUEZ,   /* org.bluez is not on the system bus */
	CP_BLE_READER_ERROR_NO_ADAPTER, /* no such adapter (or none at all) */
	CP_BLE_READER_ERROR_ADAPTER_OFF, /* the adapter is not powered */
	CP_BLE_READER_ERROR_NOT_FOUND,  /* no device advertised the service in time */
	CP_BLE_READER_ERROR_CONNECT,    /* Connect failed or services not resolved */
	CP_BLE_READER_ERROR_NO_SERVICE, /* connected: no cellprov service, RX or TX */
	CP_BLE_READER_ERROR_LINK_LOST,  /* the link dropped */
	CP_BLE_READER_ERROR_REFUSED,    /* the device refused a write */
	CP_BLE_READER_ERROR_BUSY,       /* ATT 0x81: the device serves another phone */
	CP_BLE_READER_ERROR_TIMEOUT,    /* no response in time */
} CpBleReaderError;

/* "ble-no-bluez", "ble-no-adapter", ... "ble-timeout". */
const char *cp_ble_reader_error_name(int code);

typedef struct _CpBleReader CpBleReader;

typedef struct {
	guint writes;                   /* ATT writes of segments */
	gsize write_bytes;
	guint indications;              /* indications received */
	gsize indication_bytes;
	guint requests;                 /* request/response round trips */
	guint16 mtu;                    /* the ATT MTU of the last link */
} CpBleReaderStats;

/* adapter: "hci1" or NULL (the first powered adapter BlueZ has).
 * CP_BLE_READER_ERROR_NO_BLUEZ, _NO_ADAPTER, _ADAPTER_OFF. */
CpBleReader *cp_ble_reader_open(const char *adapter, GError **error);
void cp_ble_reader_free(CpBleReader *reader);
/* "hci1" */
const char *cp_ble_reader_adapter(CpBleReader *reader);

/*
 * Scan for the cellprov service (Transport "le"), take the first device
 * whose advertisement's DeviceID prefix begins with the prefix_len bytes
 * of prefix (0: any; when several advertise, the one seen first after a
 * short look for others), connect and subscribe, all within timeout_ms.
 * *seen (may be NULL): the DeviceID prefixes (10 hex digits) of every
 * cellprov device seen, the chosen one first. _NOT_FOUND, _CONNECT,
 * _NO_SERVICE, _LINK_LOST, _ADAPTER_OFF.
 */
gboolean cp_ble_reader_connect(CpBleReader *reader, const guint8 *prefix, gsize prefix_len,
			       guint timeout_ms, GStrv *seen, GError **error);
/* The link is up and its session usable. */
gboolean cp_ble_reader_is_connected(CpBleReader *reader);
/* The 5 bytes of DeviceID the connected device advertised. */
const guint8 *cp_ble_reader_device_prefix(CpBleReader *reader);

/*
 * One request (op of section 18.6, body an NDEF message or NULL) and its
 * response, within timeout_ms: the response's body (empty when it has
 * none) when its status is 0, else CP_ERROR with the status. A framing
 * error, a lost link, a refused write or a timeout end the session
 * (cp_ble_reader_connect() again).
 */
GBytes *cp_ble_reader_request(CpBleReader *reader, guint8 op, const guint8 *body, gsize len,
			      guint timeout_ms, GError **error);

/* End the session: StopNotify, Disconnect. */
void cp_ble_reader_disconnect(CpBleReader *reader);

/* Counters since cp_ble_reader_open(). */
void cp_ble_reader_get_stats(CpBleReader *reader, CpBleReaderStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpBleReader, cp_ble_reader_free)

G_END_DECLS
