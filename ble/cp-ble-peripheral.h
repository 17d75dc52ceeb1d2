/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device's side of BLE (docs/protocol.md section 18) on BlueZ: the
 * cellprov GATT service (RX written by the phone, TX indicated by the
 * device) registered with org.bluez.GattManager1 on one adapter, its
 * advertisement with org.bluez.LEAdvertisingManager1, both only while the
 * provisioning window is open (or a session it let in still runs); the
 * framing by the protocol library's codec (cp-ble.h), the MTU and offsets
 * as BlueZ gives them in each WriteValue, the codec's timeouts from a
 * GLib timer. One session at a time, at most six a minute, the adapter
 * kept non-pairable. It follows org.bluez on the system bus: when BlueZ
 * restarts, it registers again. Everything runs on the main context.
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

#include "cp-ble.h"
#include "cp-error.h"

typedef struct _CpBlePeripheral CpBlePeripheral;

typedef enum {
	CP_BLE_PERIPHERAL_STOPPED = 0,
	CP_BLE_PERIPHERAL_STARTING,     /* BlueZ not on the bus, or registering */
	CP_BLE_PERIPHERAL_CLOSED,       /* registered nothing: the window is closed */
	CP_BLE_PERIPHERAL_ADVERTISING,  /* the window is open: service and advertisement up */
	CP_BLE_PERIPHERAL_SESSION,      /* a phone enabled indications */
} CpBlePeripheralState;

const char *cp_ble_peripheral_state_name(CpBlePeripheralState state);

typedef struct {
	/* The first read-tag of a session: the tag's NDEF message (transfer
	 * full; NULL: the device cannot build it, the phone gets state). */
	GBytes *(*content)(CpBlePeripheral *p, gpointer user_data);
	/* write-profile with a well-formed NDEF message holding a profile or
	 * a command record: CP_OK when taken, CP_ERR_BUSY. */
	CpError (*written)(CpBlePeripheral *p, GBytes *ndef, gpointer user_data);
	/* read-receipt: the receipt record (transfer full), NULL when none. */
	GBytes *(*receipt)(CpBlePeripheral *p, gpointer user_data);
	/* A session ended: NULL when the phone ended it, else why. */
	void (*session_ended)(CpBlePeripheral *p, const GError *error, gpointer user_data);
	void (*state_changed)(CpBlePeripheral *p, CpBlePeripheralState state,
			      const GError *error, gpointer user_data);
} CpBlePeripheralCallbacks;

/* adapter: "hci0". Nothing happens before cp_ble_peripheral_start(). */
CpBlePeripheral *cp_ble_peripheral_new(const char *adapter, const CpBlePeripheralCallbacks *cb,
				       gpointer user_data);
void cp_ble_peripheral_free(CpBlePeripheral *p);

/* A session without a segment for this long ends (CP_ERR_BLE_IDLE); at
 * most the protocol's IDLE_TIMEOUT, which applies anyway. */
void cp_ble_peripheral_set_idle_timeout(CpBlePeripheral *p, guint ms);

/* Connect to the system bus and follow org.bluez. */
gboolean cp_ble_peripheral_start(CpBlePeripheral *p, GError **error);
/* End any session, unregister, stop following BlueZ. */
void cp_ble_peripheral_stop(CpBlePeripheral *p);

/* Open (or extend) the provisioning window for ms, advertising the
 * manufacturer data of cp_ble_adv_data(). */
void cp_ble_peripheral_open_window(CpBlePeripheral *p, guint ms,
				   const uint8_t adv_data[CP_BLE_ADV_DATA_LEN]);
gboolean cp_ble_peripheral_window_open(CpBlePeripheral *p);
CpBlePeripheralState cp_ble_peripheral_get_state(CpBlePeripheral *p);
