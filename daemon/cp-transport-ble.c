/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The BLE GATT transport (ble/cp-ble-peripheral.h) behind cp-transport.h. */
#include "cp-transport.h"

#include <string.h>

#include "cp-glib.h"

#if CP_DAEMON_BLE

#include "cp-ble-peripheral.h"

typedef struct {
	CpTransport parent;
	CpBlePeripheral *p;
	guint window;                   /* [ble] window, seconds */
	uint8_t device_id[16];
} CpTransportBle;

static GBytes *
on_content(CpBlePeripheral *p, gpointer user_data)
{
	CpTransport *t = user_data;

	return t->events.content ? t->events.content(t, t->user_data) : NULL;
}

static CpError
on_written(CpBlePeripheral *p, GBytes *ndef, gpointer user_data)
{
	CpTransport *t = user_data;

	return t->events.written ? t->events.written(t, ndef, t->user_data) : CP_ERR_STATE;
}

static GBytes *
on_receipt(CpBlePeripheral *p, gpointer user_data)
{
	CpTransport *t = user_data;

	return t->events.receipt ? t->events.receipt(t, t->user_data) : NULL;
}

static void
on_session_ended(CpBlePeripheral *p, const GError *error, gpointer user_data)
{
	CpTransport *t = user_data;

	if (t->events.session_ended)
		t->events.session_ended(t, error, t->user_data);
}

static void
on_state_changed(CpBlePeripheral *p, CpBlePeripheralState state, const GError *error,
		 gpointer user_data)
{
	static const CpTransportState states[] = {
		[CP_BLE_PERIPHERAL_STOPPED] = CP_TRANSPORT_STOPPED,
		[CP_BLE_PERIPHERAL_STARTING] = CP_TRANSPORT_STARTING,
		[CP_BLE_PERIPHERAL_CLOSED] = CP_TRANSPORT_CLOSED,
		[CP_BLE_PERIPHERAL_ADVERTISING] = CP_TRANSPORT_WAITING,
		[CP_BLE_PERIPHERAL_SESSION] = CP_TRANSPORT_SESSION,
	};

	cp_transport_set_state(user_data, state < G_N_ELEMENTS(states) ? states[state]
								  : CP_TRANSPORT_STARTING, error);
}

static gboolean
ble_start(CpTransport *t, GError **error)
{
	return cp_ble_peripheral_start(((CpTransportBle *)t)->p, error);
}

static void
ble_stop(CpTransport *t)
{
	cp_ble_peripheral_stop(((CpTransportBle *)t)->p);
}

static void
ble_free(CpTransport *t)
{
	CpTransportBle *tb = (CpTransportBle *)t;

	cp_ble_peripheral_free(tb->p);
	g_free(tb);
}

static void
ble_open_window(CpTransport *t, guint seconds, uint8_t device_state)
{
	CpTransportBle *tb = (CpTransportBle *)t;
	uint8_t adv[CP_BLE_ADV_DATA_LEN];

	cp_ble_adv_data(device_state, tb->device_id, adv);
	cp_ble_peripheral_open_window(tb->p, (seconds ? seconds : tb->window) * 1000, adv);
}

static const CpTransportOps ble_ops = {
	.name = "ble",
	.start = ble_start,
	.stop = ble_stop,
	.free = ble_free,
	.open_window = ble_open_window,
};

static const CpBlePeripheralCallbacks callbacks = {
	.content = on_content,
	.written = on_written,
	.receipt = on_receipt,
	.session_ended = on_session_ended,
	.state_changed = on_state_changed,
};

CpTransport *
cp_transport_ble_new(const CpTransportBleConf *conf, const CpTransportEvents *events,
		     gpointer user_data, GError **error)
{
	CpTransportBle *tb = g_new0(CpTransportBle, 1);

	tb->parent.ops = &ble_ops;
	tb->parent.events = *events;
	tb->parent.user_data = user_data;
	tb->window = conf->window;
	memcpy(tb->device_id, conf->device_id, sizeof(tb->device_id));
	tb->p = cp_ble_peripheral_new(conf->adapter, &callbacks, &tb->parent);
	cp_ble_peripheral_set_idle_timeout(tb->p, conf->idle_timeout * 1000);
	return &tb->parent;
}

#else

CpTransport *
cp_transport_ble_new(const CpTransportBleConf *conf, const CpTransportEvents *events,
		     gpointer user_data, GError **error)
{
	cp_set_error(error, CP_ERR_STATE, "this cellprovd was built without BLE (-Dble=disabled)");
	return NULL;
}

#endif
