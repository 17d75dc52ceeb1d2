/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The device's GATT peripheral on BlueZ (cp-ble-peripheral.h). */
#include "cp-ble-peripheral.h"

#include <string.h>

#include "cp-glib.h"
#include "cp-ndef.h"

#define BLUEZ "org.bluez"
#define GATT_MANAGER "org.bluez.GattManager1"
#define ADV_MANAGER "org.bluez.LEAdvertisingManager1"
#define GATT_SERVICE "org.bluez.GattService1"
#define GATT_CHRC "org.bluez.GattCharacteristic1"
#define ADVERTISEMENT "org.bluez.LEAdvertisement1"
#define ADAPTER "org.bluez.Adapter1"
#define DEVICE "org.bluez.Device1"

#define APP_PATH "/org/cellprov/ble"
#define SERVICE_PATH APP_PATH "/service0"
#define RX_PATH SERVICE_PATH "/rx"
#define TX_PATH SERVICE_PATH "/tx"
#define ADV_PATH APP_PATH "/advertisement0"

/* A registration BlueZ refused (adapter missing, powered off) is tried again. */
#define RETRY_MS 2000
/* BlueZ's own D-Bus calls back into us while it registers: not long. */
#define CALL_TIMEOUT_MS 10000

static const char introspection_xml[] =
	"<node>"
	" <interface name='org.freedesktop.DBus.ObjectManager'>"
	"  <method name='GetManagedObjects'>"
	"   <arg name='objects' type='a{oa{sa{sv}}}' direction='out'/>"
	"  </method>"
	" </interface>"
	" <interface name='org.bluez.GattService1'>"
	"  <property name='UUID' type='s' access='read'/>"
	"  <property name='Primary' type='b' access='read'/>"
	" </interface>"
	" <interface name='org.bluez.GattCharacteristic1'>"
	"  <method name='ReadValue'>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"   <arg name='value' type='ay' direction='out'/>"
	"  </method>"
	"  <method name='WriteValue'>"
	"   <arg name='value' type='ay' direction='in'/>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"  </method>"
	"  <method name='StartNotify'/>"
	"  <method name='StopNotify'/>"
	"  <method name='Confirm'/>"
	"  <property name='UUID' type='s' access='read'/>"
	"  <property name='Service' type='o' access='read'/>"
	"  <property name='Flags' type='as' access='read'/>"
	" </interface>"
	" <interface name='org.bluez.LEAdvertisement1'>"
	"  <method name='Release'/>"
	"  <property name='Type' type='s' access='read'/>"
	"  <property name='ServiceUUIDs' type='as' access='read'/>"
	"  <property name='ManufacturerData' type='a{qv}' access='read'/>"
	"  <property name='Discoverable' type='b' access='read'/>"
	" </interface>"
	"</node>";

typedef struct {
	CpBleLink *link;
	char *peer;                     /* the phone's Device1 on our adapter, from its first write */
	guint peer_watch;               /* its PropertiesChanged: Connected false ends the session */
	GBytes *content;                /* the tag of this session, built at its first read-tag */
	gint64 last_ms;                 /* the last segment, for [ble] idle-timeout */
	guint writes;
	guint indications;
	gsize bytes_in;
	gsize bytes_out;
	gint64 start_ms;
} Session;

struct _CpBlePeripheral {
	char *adapter;
	char *adapter_path;
	CpBlePeripheralCallbacks cb;
	gpointer user_data;
	guint idle_ms;

	GDBusConnection *bus;
	GDBusNodeInfo *node;
	guint reg_ids[5];
	guint watch_id;
	gboolean running;

	/* the BlueZ now on the bus; cancelled when it goes */
	gboolean bluez_up;
	GCancellable *cancellable;
	gboolean app_registered;
	gboolean adv_registered;
	gboolean pending;               /* one registration call at a time */
	guint retry_source;

	gboolean window_open;
	guint window_source;
	uint8_t adv_data[CP_BLE_ADV_DATA_LEN];

	Session *session;
	guint timer;
	CpBleRate rate;

	CpBlePeripheralState state;
};

static void sync_registration(CpBlePeripheral *p);

const char *
cp_ble_peripheral_state_name(CpBlePeripheralState state)
{
	switch (state) {
	case CP_BLE_PERIPHERAL_STOPPED:
		return "stopped";
	case CP_BLE_PERIPHERAL_STARTING:
		return "starting";
	case CP_BLE_PERIPHERAL_CLOSED:
		return "closed";
	case CP_BLE_PERIPHERAL_ADVERTISING:
		return "advertising";
	case CP_BLE_PERIPHERAL_SESSION:
		return "session";
	}
	return "unknown";
}

static gint64
now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

static void
set_state(CpBlePeripheral *p, CpBlePeripheralState state, const GError *error)
{
	if (p->state == state && !error)
		return;
	p->state = state;
	if (p->cb.state_changed)
		p->cb.state_changed(p, state, error, p->user_data);
}

/* The state that follows from what is registered and running. */
static void
update_state(CpBlePeripheral *p)
{
	if (!p->running)
		set_state(p, CP_BLE_PERIPHERAL_STOPPED, NULL);
	else if (p->session)
		set_state(p, CP_BLE_PERIPHERAL_SESSION, NULL);
	else if (!p->bluez_up || p->pending || p->window_open != p->adv_registered ||
		 p->window_open != p->app_registered)
		set_state(p, CP_BLE_PERIPHERAL_STARTING, NULL);
	else
		set_state(p, p->window_open ? CP_BLE_PERIPHERAL_ADVERTISING : CP_BLE_PERIPHERAL_CLOSED,
			  NULL);
}

/* ---- calls to BlueZ ---- */

static void
call_bluez(CpBlePeripheral *p, const char *path, const char *iface, const char *method,
	   GVariant *args, GAsyncReadyCallback done)
{
	g_dbus_connection_call(p->bus, BLUEZ, path, iface, method, args, NULL,
			       G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, p->cancellable,
			       done, p);
}

/* Fire and forget: the answer does not matter (a disconnect, an
 * unregistration on the way out). */
static void
tell_bluez(CpBlePeripheral *p, const char *path, const char *iface, const char *method,
	   GVariant *args)
{
	g_dbus_connection_call(p->bus, BLUEZ, path, iface, method, args, NULL,
			       G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, NULL, NULL);
}

static void
disconnect_peer(CpBlePeripheral *p, const char *peer)
{
	if (p->bus && p->bluez_up && peer && g_variant_is_object_path(peer))
		tell_bluez(p, peer, DEVICE, "Disconnect", NULL);
}

static void
on_pairable_set(GObject *source, GAsyncResult *res, gpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

	if (!ret && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		g_message("ble: cannot make %s non-pairable: %s", ((CpBlePeripheral *)data)->adapter,
			  error->message);
}

/* Section 18.2: never pairable (nor bondable: BlueZ bonds only when it pairs). */
static void
make_non_pairable(CpBlePeripheral *p)
{
	call_bluez(p, p->adapter_path, "org.freedesktop.DBus.Properties", "Set",
		   g_variant_new("(ssv)", ADAPTER, "Pairable", g_variant_new_boolean(FALSE)),
		   on_pairable_set);
}

/* ---- sessions ---- */

static void
session_free(CpBlePeripheral *p, Session *s)
{
	if (s->peer_watch)
		g_dbus_connection_signal_unsubscribe(p->bus, s->peer_watch);
	cp_ble_link_free(s->link);
	g_free(s->peer);
	g_clear_pointer(&s->content, g_bytes_unref);
	g_free(s);
}

/* The session is over: code says why (CP_OK: the phone ended it). */
static void
end_session(CpBlePeripheral *p, CpError code, const char *why)
{
	Session *s = p->session;
	g_autoptr(GError) error = NULL;

	if (!s)
		return;
	p->session = NULL;
	if (p->timer) {
		g_source_remove(p->timer);
		p->timer = 0;
	}
	g_debug("ble: session ended after %u writes (%zu bytes) and %u indications (%zu bytes), "
		"%" G_GINT64_FORMAT " ms", s->writes, s->bytes_in, s->indications, s->bytes_out,
		now_ms() - s->start_ms);
	if (code != CP_OK) {
		cp_set_error(&error, code, "%s (%s)", why ? why : cp_error_message(code),
			     cp_error_name(code));
		disconnect_peer(p, s->peer);
	}
	session_free(p, s);
	if (p->cb.session_ended)
		p->cb.session_ended(p, error, p->user_data);
	sync_registration(p);
	update_state(p);
}

static void pump(CpBlePeripheral *p);

static gboolean
on_timer(gpointer data)
{
	CpBlePeripheral *p = data;

	p->timer = 0;
	pump(p);
	return G_SOURCE_REMOVE;
}

/* Indicate every segment the codec has for now, then sleep until its
 * next deadline. */
static void
pump(CpBlePeripheral *p)
{
	Session *s = p->session;
	gint64 now = now_ms();
	uint64_t deadline;
	CpError err;

	if (!s)
		return;
	if (now - s->last_ms >= (gint64)p->idle_ms) {
		end_session(p, CP_ERR_BLE_IDLE, "no segment for the idle timeout");
		return;
	}
	err = cp_ble_link_check(s->link, (uint64_t)now);
	while (err == CP_OK) {
		cp_auto_buf seg = CP_BUF_INIT;

		err = cp_ble_link_next_segment(s->link, (uint64_t)now, &seg);
		if (err != CP_OK || seg.len == 0)
			break;
		g_dbus_connection_emit_signal(p->bus, NULL, TX_PATH, "org.freedesktop.DBus.Properties",
			"PropertiesChanged",
			g_variant_new("(s@a{sv}@as)", GATT_CHRC,
				g_variant_new_parsed("{'Value': <%@ay>}",
					g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, seg.data,
								  seg.len, 1)),
				g_variant_new_strv(NULL, 0)),
			NULL);
		s->indications++;
		s->bytes_out += seg.len;
		s->last_ms = now;
	}
	if (err != CP_OK) {
		end_session(p, err, NULL);
		return;
	}
	if (p->timer)
		g_source_remove(p->timer);
	deadline = cp_ble_link_deadline(s->link);
	deadline = MIN(deadline, (uint64_t)(s->last_ms + p->idle_ms));
	/* at least 1 ms: a deadline reached is acted on at the next turn */
	p->timer = g_timeout_add(deadline > (uint64_t)now ? (guint)MIN(deadline - (uint64_t)now,
								       G_MAXUINT) : 1,
				 on_timer, p);
}

/* Queue the response to op: its status, and the body when there is one. */
static void
respond(CpBlePeripheral *p, uint8_t op, CpError status, GBytes *body)
{
	cp_auto_buf msg = CP_BUF_INIT;
	CpBleMessage m = { .op = op, .response = true, .status = (uint16_t)status };
	CpError err;

	if (body)
		m.body = g_bytes_get_data(body, &m.body_len);
	if (op == 0 || op > 0x7F) {
		/* no op to name (a message shorter than its header) */
		uint8_t raw[4] = { CP_BLE_VERSION, 0x01 | CP_BLE_RESPONSE, (uint8_t)(status >> 8),
				   (uint8_t)status };

		cp_buf_append(&msg, raw, sizeof(raw));
		err = msg.failed ? CP_ERR_CRYPTO : CP_OK;
	} else {
		err = cp_ble_message_encode(&m, &msg);
	}
	if (err == CP_OK)
		err = cp_ble_link_send(p->session->link, msg.data, msg.len);
	if (err != CP_OK)
		end_session(p, err, "cannot answer the request");
}

static CpError
check_profile(GBytes *ndef)
{
	CpNdefMessage msg;
	gsize len;
	const uint8_t *buf = g_bytes_get_data(ndef, &len);
	CpError err = cp_ndef_parse(buf, len, &msg);

	if (err != CP_OK)
		return err;
	if (!cp_ndef_find_mime(&msg, CP_MIME_PROFILE) && !cp_ndef_find_mime(&msg, CP_MIME_COMMAND))
		return CP_ERR_NDEF_NO_RECORD;
	return CP_OK;
}

static GBytes *
receipt_message(GBytes *receipt)
{
	CpNdefMessage msg = { .n_records = 1 };
	cp_auto_buf out = CP_BUF_INIT;
	gsize len;
	const uint8_t *buf = g_bytes_get_data(receipt, &len);

	cp_ndef_record_mime(&msg.records[0], CP_MIME_RECEIPT, buf, len);
	if (cp_ndef_encode(&msg, &out) != CP_OK)
		return NULL;
	return g_bytes_new(out.data, out.len);
}

/* One request received whole (section 18.6). */
static void
handle_request(CpBlePeripheral *p, const uint8_t *buf, size_t len)
{
	Session *s = p->session;
	CpBleMessage m;
	CpError err = cp_ble_message_parse(buf, len, &m);
	uint8_t op = len >= 2 ? buf[1] : 0;

	if (err == CP_OK && m.response)
		err = CP_ERR_BLE_MESSAGE;
	if (err != CP_OK) {
		g_message("ble: a request the device cannot take: %s", cp_error_name(err));
		respond(p, op & 0x7F, err, NULL);
		return;
	}
	g_debug("ble: request %s", cp_ble_op_name(m.op));
	switch (m.op) {
	case CP_BLE_OP_READ_TAG:
		/* the attestation counter is consumed once a session */
		if (!s->content && p->cb.content)
			s->content = p->cb.content(p, p->user_data);
		if (!s->content) {
			respond(p, m.op, CP_ERR_STATE, NULL);
			return;
		}
		respond(p, m.op, CP_OK, s->content);
		return;
	case CP_BLE_OP_WRITE_PROFILE: {
		g_autoptr(GBytes) ndef = g_bytes_new(m.body, m.body_len);

		err = check_profile(ndef);
		if (err == CP_OK)
			err = p->cb.written ? p->cb.written(p, ndef, p->user_data) : CP_ERR_STATE;
		if (err != CP_OK)
			g_message("ble: write-profile refused: %s", cp_error_name(err));
		/* the callback may have stopped everything */
		if (p->session == s)
			respond(p, m.op, err, NULL);
		return;
	}
	case CP_BLE_OP_READ_RECEIPT: {
		g_autoptr(GBytes) receipt = p->cb.receipt ? p->cb.receipt(p, p->user_data) : NULL;
		g_autoptr(GBytes) body = receipt ? receipt_message(receipt) : NULL;

		if (receipt && !body)
			respond(p, m.op, CP_ERR_NDEF_TOO_LARGE, NULL);
		else
			respond(p, m.op, CP_OK, body);
		return;
	}
	}
}

static const char *
option_object(GVariant *options, const char *key)
{
	const char *v = NULL;

	if (!g_variant_lookup(options, key, "&o", &v))
		v = NULL;
	return v;
}

static guint
option_u16(GVariant *options, const char *key, guint fallback)
{
	guint16 v;

	return g_variant_lookup(options, key, "q", &v) ? v : fallback;
}

/* BlueZ tells the application of the last subscriber's going only
 * (StopNotify); the session's phone may go while another one is
 * subscribed, refused. */
static void
on_peer_changed(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
		const char *signal, GVariant *params, gpointer data)
{
	CpBlePeripheral *p = data;
	g_autoptr(GVariant) changed = NULL;
	gboolean connected = TRUE;

	g_variant_get(params, "(&s@a{sv}@as)", NULL, &changed, NULL);
	if (!g_variant_lookup(changed, "Connected", "b", &connected) || connected)
		return;
	if (p->session && g_strcmp0(p->session->peer, path) == 0) {
		g_debug("ble: the session's phone disconnected");
		end_session(p, CP_OK, NULL);
	}
}

static void
write_value(CpBlePeripheral *p, GVariant *params, GDBusMethodInvocation *inv)
{
	g_autoptr(GVariant) value = NULL;
	g_autoptr(GVariant) options = NULL;
	Session *s = p->session;
	const uint8_t *data;
	gsize len;
	const char *device;
	guint mtu, offset;
	bool ready = false;
	CpError err;

	g_variant_get(params, "(@ay@a{sv})", &value, &options);
	data = g_variant_get_fixed_array(value, &len, 1);
	device = option_object(options, "device");
	if (!s || (s->peer && g_strcmp0(device, s->peer) != 0)) {
		/* Section 18.7: not this session's phone (a second one, or one
		 * beyond the rate): ATT Application Error, and it goes. */
		g_message("ble: a write from %s outside the session: refused", device ? device : "a phone");
		g_dbus_method_invocation_return_dbus_error(inv, "org.bluez.Error.Failed", "0x81");
		disconnect_peer(p, device);
		return;
	}
	if (!s->peer && device) {
		s->peer = g_strdup(device);
		s->peer_watch = g_dbus_connection_signal_subscribe(p->bus, BLUEZ,
			"org.freedesktop.DBus.Properties", "PropertiesChanged", device, DEVICE,
			G_DBUS_SIGNAL_FLAGS_NONE, on_peer_changed, p, NULL);
	}
	mtu = option_u16(options, "mtu", cp_ble_link_mtu(s->link));
	offset = option_u16(options, "offset", 0);
	s->writes++;
	s->bytes_in += len;
	s->last_ms = now_ms();
	err = cp_ble_link_set_mtu(s->link, (uint16_t)MIN(mtu, G_MAXUINT16));
	if (err == CP_OK)
		err = cp_ble_link_receive(s->link, (uint64_t)s->last_ms, offset, data, len, &ready);
	/* the write itself arrived: the framing decides the session's fate */
	g_dbus_method_invocation_return_value(inv, NULL);
	if (err != CP_OK) {
		end_session(p, err, NULL);
		return;
	}
	if (ready) {
		size_t n;
		const uint8_t *msg = cp_ble_link_message(s->link, &n);
		g_autofree uint8_t *copy = g_memdup2(msg, n);

		cp_ble_link_take(s->link);
		handle_request(p, copy, n);
	}
	pump(p);
}

static void
start_notify(CpBlePeripheral *p)
{
	gint64 now = now_ms();
	CpError err;

	if (p->session)
		return;         /* BlueZ tells the first subscriber only */
	if (!p->window_open) {
		/* registered for a session that ended as the window closed */
		g_message("ble: a phone subscribed outside the provisioning window: refused");
		return;
	}
	err = cp_ble_rate_admit(&p->rate, (uint64_t)now);
	if (err != CP_OK) {
		g_autoptr(GError) error = NULL;

		cp_set_error(&error, err, "more than %d sessions in a minute: refused (%s)",
			     CP_BLE_SESSIONS_PER_MINUTE, cp_error_name(err));
		if (p->cb.session_ended)
			p->cb.session_ended(p, error, p->user_data);
		return;
	}
	p->session = g_new0(Session, 1);
	p->session->link = cp_ble_link_new(CP_BLE_MTU_MIN, (uint64_t)now);
	p->session->start_ms = now;
	p->session->last_ms = now;
	make_non_pairable(p);
	g_debug("ble: a phone enabled indications: session");
	update_state(p);
	pump(p);
}

/* ---- the exported objects ---- */

static GVariant *
chrc_props(const char *uuid, const char *flag)
{
	const char *flags[] = { flag, NULL };
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "UUID", g_variant_new_string(uuid));
	g_variant_builder_add(&b, "{sv}", "Service", g_variant_new_object_path(SERVICE_PATH));
	g_variant_builder_add(&b, "{sv}", "Flags", g_variant_new_strv(flags, -1));
	return g_variant_builder_end(&b);
}

static GVariant *
service_props(void)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "UUID", g_variant_new_string(CP_BLE_SERVICE_UUID));
	g_variant_builder_add(&b, "{sv}", "Primary", g_variant_new_boolean(TRUE));
	return g_variant_builder_end(&b);
}

static GVariant *
managed_objects(void)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{oa{sa{sv}}}"));
	g_variant_builder_add_parsed(&b, "{%o, {%s: %@a{sv}}}", SERVICE_PATH, GATT_SERVICE,
				     service_props());
	g_variant_builder_add_parsed(&b, "{%o, {%s: %@a{sv}}}", RX_PATH, GATT_CHRC,
				     chrc_props(CP_BLE_RX_UUID, "write"));
	g_variant_builder_add_parsed(&b, "{%o, {%s: %@a{sv}}}", TX_PATH, GATT_CHRC,
				     chrc_props(CP_BLE_TX_UUID, "indicate"));
	return g_variant_new("(@a{oa{sa{sv}}})", g_variant_builder_end(&b));
}

static void
method_call(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
	    const char *method, GVariant *params, GDBusMethodInvocation *inv, gpointer data)
{
	CpBlePeripheral *p = data;

	if (g_strcmp0(iface, "org.freedesktop.DBus.ObjectManager") == 0) {
		g_dbus_method_invocation_return_value(inv, managed_objects());
		return;
	}
	if (g_strcmp0(iface, ADVERTISEMENT) == 0) {
		/* BlueZ dropped it (it restarts, or the adapter went) */
		g_debug("ble: BlueZ released the advertisement");
		p->adv_registered = FALSE;
		g_dbus_method_invocation_return_value(inv, NULL);
		sync_registration(p);           /* again while the window is open */
		return;
	}
	if (strcmp(path, RX_PATH) == 0 && strcmp(method, "WriteValue") == 0) {
		write_value(p, params, inv);
	} else if (strcmp(path, TX_PATH) == 0 && strcmp(method, "StartNotify") == 0) {
		g_dbus_method_invocation_return_value(inv, NULL);
		start_notify(p);
	} else if (strcmp(path, TX_PATH) == 0 && strcmp(method, "StopNotify") == 0) {
		g_dbus_method_invocation_return_value(inv, NULL);
		end_session(p, CP_OK, NULL);
	} else if (strcmp(path, TX_PATH) == 0 && strcmp(method, "Confirm") == 0) {
		g_dbus_method_invocation_return_value(inv, NULL);
	} else {
		/* RX is write-only, TX indicate-only (section 18.2) */
		g_dbus_method_invocation_return_dbus_error(inv, "org.bluez.Error.NotSupported",
							   "Operation is not supported");
	}
}

static GVariant *
get_property(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
	     const char *name, GError **error, gpointer data)
{
	CpBlePeripheral *p = data;
	g_autoptr(GVariant) props = NULL;

	if (strcmp(path, ADV_PATH) == 0) {
		const char *uuids[] = { CP_BLE_SERVICE_UUID, NULL };

		if (strcmp(name, "Type") == 0)
			return g_variant_new_string("peripheral");
		if (strcmp(name, "ServiceUUIDs") == 0)
			return g_variant_new_strv(uuids, -1);
		if (strcmp(name, "Discoverable") == 0)
			return g_variant_new_boolean(TRUE);
		if (strcmp(name, "ManufacturerData") == 0)
			return g_variant_new_parsed("{%q: <%@ay>}", (guint16)CP_BLE_ADV_COMPANY,
				g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, p->adv_data,
							  sizeof(p->adv_data), 1));
		return NULL;
	}
	if (strcmp(path, SERVICE_PATH) == 0)
		props = g_variant_ref_sink(service_props());
	else if (strcmp(path, RX_PATH) == 0)
		props = g_variant_ref_sink(chrc_props(CP_BLE_RX_UUID, "write"));
	else if (strcmp(path, TX_PATH) == 0)
		props = g_variant_ref_sink(chrc_props(CP_BLE_TX_UUID, "indicate"));
	return props ? g_variant_lookup_value(props, name, NULL) : NULL;
}

static const GDBusInterfaceVTable vtable = { method_call, get_property, NULL, { 0 } };

static gboolean
export_objects(CpBlePeripheral *p, GError **error)
{
	static const struct {
		const char *path;
		const char *iface;
	} objects[] = {
		{ APP_PATH, "org.freedesktop.DBus.ObjectManager" },
		{ SERVICE_PATH, GATT_SERVICE },
		{ RX_PATH, GATT_CHRC },
		{ TX_PATH, GATT_CHRC },
		{ ADV_PATH, ADVERTISEMENT },
	};

	p->node = g_dbus_node_info_new_for_xml(introspection_xml, error);
	if (!p->node)
		return FALSE;
	for (size_t i = 0; i < G_N_ELEMENTS(objects); i++) {
		GDBusInterfaceInfo *info = g_dbus_node_info_lookup_interface(p->node, objects[i].iface);

		p->reg_ids[i] = g_dbus_connection_register_object(p->bus, objects[i].path, info,
								  &vtable, p, NULL, error);
		if (!p->reg_ids[i])
			return FALSE;
	}
	return TRUE;
}

static void
unexport_objects(CpBlePeripheral *p)
{
	for (size_t i = 0; i < G_N_ELEMENTS(p->reg_ids); i++) {
		if (p->reg_ids[i])
			g_dbus_connection_unregister_object(p->bus, p->reg_ids[i]);
		p->reg_ids[i] = 0;
	}
	g_clear_pointer(&p->node, g_dbus_node_info_unref);
}

/* ---- registration with BlueZ ---- */

static gboolean
on_retry(gpointer data)
{
	CpBlePeripheral *p = data;

	p->retry_source = 0;
	sync_registration(p);
	return G_SOURCE_REMOVE;
}

/* The answer to a registration call: p when it came from the BlueZ now on
 * the bus (NULL: cancelled, p may be gone); a refusal is tried again. */
static CpBlePeripheral *
registration_answer(GObject *source, GAsyncResult *res, gpointer data, gboolean *ok)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	CpBlePeripheral *p;
	g_autofree char *remote = NULL;

	if (!ret && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return NULL;
	p = data;
	p->pending = FALSE;
	*ok = ret != NULL;
	if (ret)
		return p;
	remote = g_dbus_error_get_remote_error(error);
	g_dbus_error_strip_remote_error(error);
	g_prefix_error(&error, "BlueZ on %s (%s): ", p->adapter, remote ? remote : "no answer");
	set_state(p, CP_BLE_PERIPHERAL_STARTING, error);
	if (!p->retry_source)
		p->retry_source = g_timeout_add(RETRY_MS, on_retry, p);
	return p;
}

static void
on_app_registered(GObject *source, GAsyncResult *res, gpointer data)
{
	gboolean ok = FALSE;
	CpBlePeripheral *p = registration_answer(source, res, data, &ok);

	if (!p || !ok)
		return;
	p->app_registered = TRUE;
	g_info("ble: the cellprov service is registered on %s", p->adapter);
	sync_registration(p);
}

static void
on_adv_registered(GObject *source, GAsyncResult *res, gpointer data)
{
	gboolean ok = FALSE;
	CpBlePeripheral *p = registration_answer(source, res, data, &ok);

	if (!p || !ok)
		return;
	p->adv_registered = TRUE;
	g_info("ble: advertising on %s", p->adapter);
	sync_registration(p);
}

/* Unregistrations: what is registered is already forgotten. */
static void
on_unregistered(GObject *source, GAsyncResult *res, gpointer data)
{
	gboolean ok = FALSE;
	CpBlePeripheral *p = registration_answer(source, res, data, &ok);

	if (p && ok)
		sync_registration(p);
}

static void
sync_registration(CpBlePeripheral *p)
{
	gboolean want_app = p->running && (p->window_open || p->session);
	gboolean want_adv = p->running && p->window_open;

	if (!p->bluez_up || p->pending || p->retry_source) {
		update_state(p);
		return;
	}
	if (want_app && !p->app_registered) {
		p->pending = TRUE;
		call_bluez(p, p->adapter_path, GATT_MANAGER, "RegisterApplication",
			   g_variant_new("(oa{sv})", APP_PATH, NULL), on_app_registered);
	} else if (!want_adv && p->adv_registered) {
		p->pending = TRUE;
		p->adv_registered = FALSE;
		g_info("ble: advertising stopped on %s", p->adapter);
		call_bluez(p, p->adapter_path, ADV_MANAGER, "UnregisterAdvertisement",
			   g_variant_new("(o)", ADV_PATH), on_unregistered);
	} else if (want_adv && !p->adv_registered) {
		p->pending = TRUE;
		call_bluez(p, p->adapter_path, ADV_MANAGER, "RegisterAdvertisement",
			   g_variant_new("(oa{sv})", ADV_PATH, NULL), on_adv_registered);
	} else if (!want_app && p->app_registered) {
		p->pending = TRUE;
		p->app_registered = FALSE;
		g_info("ble: the cellprov service is unregistered from %s", p->adapter);
		call_bluez(p, p->adapter_path, GATT_MANAGER, "UnregisterApplication",
			   g_variant_new("(o)", APP_PATH), on_unregistered);
	}
	update_state(p);
}

static void
on_bluez_appeared(GDBusConnection *bus, const char *name, const char *owner, gpointer data)
{
	CpBlePeripheral *p = data;

	g_info("ble: BlueZ is on the bus (%s)", owner);
	p->bluez_up = TRUE;
	p->app_registered = FALSE;
	p->adv_registered = FALSE;
	p->pending = FALSE;
	g_clear_object(&p->cancellable);
	p->cancellable = g_cancellable_new();
	make_non_pairable(p);
	sync_registration(p);
}

static void
on_bluez_vanished(GDBusConnection *bus, const char *name, gpointer data)
{
	CpBlePeripheral *p = data;
	g_autoptr(GError) error = NULL;
	gboolean was_up = p->bluez_up;

	p->bluez_up = FALSE;
	if (p->cancellable)
		g_cancellable_cancel(p->cancellable);
	p->app_registered = FALSE;
	p->adv_registered = FALSE;
	p->pending = FALSE;
	if (p->retry_source) {
		g_source_remove(p->retry_source);
		p->retry_source = 0;
	}
	end_session(p, CP_ERR_BLE_IDLE, "BlueZ left the bus");
	g_set_error(&error, CP_ERROR, CP_ERR_STATE, "BlueZ (org.bluez) is not on the %s",
		    was_up ? "bus any more: waiting for it to come back" : "bus: waiting for it");
	if (p->running)
		set_state(p, CP_BLE_PERIPHERAL_STARTING, error);
}

/* ---- the provisioning window ---- */

static gboolean
on_window_closed(gpointer data)
{
	CpBlePeripheral *p = data;

	p->window_source = 0;
	p->window_open = FALSE;
	g_message("ble: the provisioning window closed%s",
		  p->session ? " (the session running goes on)" : "");
	sync_registration(p);
	return G_SOURCE_REMOVE;
}

void
cp_ble_peripheral_open_window(CpBlePeripheral *p, guint ms,
			      const uint8_t adv_data[CP_BLE_ADV_DATA_LEN])
{
	if (!p->running)
		return;
	if (p->window_source)
		g_source_remove(p->window_source);
	/* a new state nibble needs the advertisement registered again */
	if (p->adv_registered && memcmp(p->adv_data, adv_data, CP_BLE_ADV_DATA_LEN) != 0) {
		p->window_open = FALSE;
		sync_registration(p);
	}
	memcpy(p->adv_data, adv_data, CP_BLE_ADV_DATA_LEN);
	p->window_open = TRUE;
	p->window_source = g_timeout_add(ms, on_window_closed, p);
	g_message("ble: the provisioning window is open for %u s", ms / 1000);
	sync_registration(p);
}

gboolean
cp_ble_peripheral_window_open(CpBlePeripheral *p)
{
	return p->window_open;
}

/* ---- life cycle ---- */

CpBlePeripheral *
cp_ble_peripheral_new(const char *adapter, const CpBlePeripheralCallbacks *cb, gpointer user_data)
{
	CpBlePeripheral *p = g_new0(CpBlePeripheral, 1);

	p->adapter = g_strdup(adapter);
	p->adapter_path = g_strconcat("/org/bluez/", adapter, NULL);
	p->cb = *cb;
	p->user_data = user_data;
	p->idle_ms = CP_BLE_IDLE_TIMEOUT_MS;
	return p;
}

void
cp_ble_peripheral_set_idle_timeout(CpBlePeripheral *p, guint ms)
{
	p->idle_ms = MIN(ms, CP_BLE_IDLE_TIMEOUT_MS);
}

gboolean
cp_ble_peripheral_start(CpBlePeripheral *p, GError **error)
{
	if (p->running)
		return TRUE;
	if (!g_variant_is_object_path(p->adapter_path) || strchr(p->adapter, '/')) {
		cp_set_error(error, CP_ERR_ARGUMENT, "'%s' is not an adapter name such as hci0",
			     p->adapter);
		return FALSE;
	}
	if (!p->bus) {
		p->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
		if (!p->bus) {
			g_prefix_error(error, "ble: cannot reach the system bus: ");
			return FALSE;
		}
	}
	if (!export_objects(p, error)) {
		unexport_objects(p);
		return FALSE;
	}
	p->running = TRUE;
	set_state(p, CP_BLE_PERIPHERAL_STARTING, NULL);
	p->watch_id = g_bus_watch_name_on_connection(p->bus, BLUEZ, G_BUS_NAME_WATCHER_FLAGS_NONE,
						     on_bluez_appeared, on_bluez_vanished, p, NULL);
	return TRUE;
}

void
cp_ble_peripheral_stop(CpBlePeripheral *p)
{
	if (!p->running)
		return;
	p->running = FALSE;
	p->window_open = FALSE;
	if (p->window_source) {
		g_source_remove(p->window_source);
		p->window_source = 0;
	}
	if (p->retry_source) {
		g_source_remove(p->retry_source);
		p->retry_source = 0;
	}
	end_session(p, CP_ERR_BLE_IDLE, "the daemon stops");
	if (p->bluez_up) {
		/* BlueZ forgets an application whose owner leaves the bus
		 * anyway; this is for a bus connection that stays */
		if (p->adv_registered)
			tell_bluez(p, p->adapter_path, ADV_MANAGER, "UnregisterAdvertisement",
				   g_variant_new("(o)", ADV_PATH));
		if (p->app_registered)
			tell_bluez(p, p->adapter_path, GATT_MANAGER, "UnregisterApplication",
				   g_variant_new("(o)", APP_PATH));
	}
	if (p->cancellable)
		g_cancellable_cancel(p->cancellable);
	g_clear_object(&p->cancellable);
	p->bluez_up = p->app_registered = p->adv_registered = p->pending = FALSE;
	if (p->watch_id)
		g_bus_unwatch_name(p->watch_id);
	p->watch_id = 0;
	unexport_objects(p);
	set_state(p, CP_BLE_PERIPHERAL_STOPPED, NULL);
}

void
cp_ble_peripheral_free(CpBlePeripheral *p)
{
	if (!p)
		return;
	cp_ble_peripheral_stop(p);
	if (p->bus)
		g_dbus_connection_flush_sync(p->bus, NULL, NULL);
	g_clear_object(&p->bus);
	g_free(p->adapter);
	g_free(p->adapter_path);
	g_free(p);
}

CpBlePeripheralState
cp_ble_peripheral_get_state(CpBlePeripheral *p)
{
	return p->state;
}
