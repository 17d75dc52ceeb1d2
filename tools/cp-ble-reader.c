/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The companion's BLE reader (cp-ble-reader.h): BlueZ through GDBus, the
 * framing through the protocol library's CpBleLink.
 *
 * Everything BlueZ tells (InterfacesAdded, InterfacesRemoved,
 * PropertiesChanged) arrives on one subscription each, dispatched in the
 * reader's own main context, which the blocking calls iterate. Method
 * calls are synchronous: signals that arrive meanwhile wait in the
 * context, in order, so no indication is lost or reordered.
 */
#include <string.h>

#include <gio/gio.h>

#include "cellprov.h"
#include "cp-glib.h"
#include "cp-ble-reader.h"

#define BLUEZ "org.bluez"
#define ADAPTER_IFACE "org.bluez.Adapter1"
#define DEVICE_IFACE "org.bluez.Device1"
#define SERVICE_IFACE "org.bluez.GattService1"
#define CHRC_IFACE "org.bluez.GattCharacteristic1"
#define PROPS_IFACE "org.freedesktop.DBus.Properties"
#define OM_IFACE "org.freedesktop.DBus.ObjectManager"

#define CALL_TIMEOUT_MS 10000           /* a BlueZ method call */
#define RESOLVE_TIMEOUT_MS 10000        /* Connect to ServicesResolved */
#define SCAN_SETTLE_MS 500              /* after a first device, look for others */

struct _CpBleReader {
	GMainContext *ctx;
	GDBusConnection *bus;
	char *adapter;                  /* hci1 */
	char *adapter_path;             /* /org/bluez/hci1 */
	guint subs[3];
	/* the scan */
	gboolean scanning;
	GPtrArray *seen_paths;          /* Device1 paths, in the order seen */
	GPtrArray *seen_prefixes;       /* their DeviceID prefixes, hex */
	/* the link */
	char *dev_path;
	char *rx_path;
	char *tx_path;
	guint8 prefix[5];
	gboolean connected;
	gboolean resolved;
	gboolean notifying;
	GQueue indications;             /* GBytes, in arrival order */
	CpBleLink *link;
	CpBleReaderStats stats;
};

G_DEFINE_QUARK(cp-ble-reader-error-quark, cp_ble_reader_error)

const char *
cp_ble_reader_error_name(int code)
{
	static const char *const names[] = {
		[CP_BLE_READER_ERROR_NO_BLUEZ] = "ble-no-bluez",
		[CP_BLE_READER_ERROR_NO_ADAPTER] = "ble-no-adapter",
		[CP_BLE_READER_ERROR_ADAPTER_OFF] = "ble-adapter-off",
		[CP_BLE_READER_ERROR_NOT_FOUND] = "ble-not-found",
		[CP_BLE_READER_ERROR_CONNECT] = "ble-connect",
		[CP_BLE_READER_ERROR_NO_SERVICE] = "ble-no-service",
		[CP_BLE_READER_ERROR_LINK_LOST] = "ble-link-lost",
		[CP_BLE_READER_ERROR_REFUSED] = "ble-refused",
		[CP_BLE_READER_ERROR_BUSY] = "ble-busy",
		[CP_BLE_READER_ERROR_TIMEOUT] = "ble-timeout",
	};

	if (code < 0 || code >= (int)G_N_ELEMENTS(names))
		return "ble";
	return names[code];
}

static guint64
now_ms(void)
{
	return (guint64)(g_get_monotonic_time() / 1000);
}

/* ---- D-Bus helpers ---- */

static GVariant *
call(CpBleReader *r, const char *path, const char *iface, const char *method, GVariant *args,
     const char *reply_type, int timeout_ms, GError **error)
{
	return g_dbus_connection_call_sync(r->bus, BLUEZ, path, iface, method, args,
					   reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, error);
}

/* "org.bluez.Error.Failed: Not connected" from a remote error. */
static char *
remote_error_text(GError *e)
{
	g_autofree char *name = g_dbus_error_get_remote_error(e);
	g_autoptr(GError) copy = g_error_copy(e);

	g_dbus_error_strip_remote_error(copy);
	return name ? g_strdup_printf("%s: %s", name, copy->message) : g_strdup(copy->message);
}

static gboolean
remote_error_is(GError *e, const char *name)
{
	g_autofree char *remote = g_dbus_error_get_remote_error(e);

	return remote && strcmp(remote, name) == 0;
}

/* A call whose failure changes nothing (StopNotify, Disconnect, StopDiscovery). */
static void
call_quietly(CpBleReader *r, const char *path, const char *iface, const char *method)
{
	GVariant *ret = call(r, path, iface, method, NULL, NULL, CALL_TIMEOUT_MS, NULL);

	if (ret)
		g_variant_unref(ret);
}

static void
drain(CpBleReader *r)
{
	while (g_main_context_iteration(r->ctx, FALSE))
		;
}

static gboolean
wake(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Run the context until something happens, or until until_ms. */
static void
wait_until(CpBleReader *r, guint64 until_ms)
{
	guint64 now = now_ms();
	gboolean woke = FALSE;
	GSource *t;

	if (until_ms <= now) {
		drain(r);
		return;
	}
	t = g_timeout_source_new((guint)MIN(until_ms - now, G_MAXUINT));
	g_source_set_callback(t, wake, &woke, NULL);
	g_source_attach(t, r->ctx);
	g_main_context_iteration(r->ctx, TRUE);
	g_source_destroy(t);
	g_source_unref(t);
}

/* ---- what BlueZ tells ---- */

/* The 5 DeviceID bytes of a cellprov advertisement (section 18.3) in a
 * Device1's properties, or FALSE. */
static gboolean
adv_prefix(GVariant *props, guint8 out[5])
{
	g_autoptr(GVariant) uuids = g_variant_lookup_value(props, "UUIDs", G_VARIANT_TYPE("as"));
	g_autoptr(GVariant) mdata = g_variant_lookup_value(props, "ManufacturerData", G_VARIANT_TYPE("a{qv}"));
	g_autoptr(GVariant) bytes = NULL;
	g_autofree const char **list = NULL;
	gboolean has_uuid = FALSE;
	const guint8 *d;
	gsize n;

	if (!uuids || !mdata)
		return FALSE;
	list = g_variant_get_strv(uuids, NULL);
	for (gsize i = 0; list[i]; i++)
		if (g_ascii_strcasecmp(list[i], CP_BLE_SERVICE_UUID) == 0)
			has_uuid = TRUE;
	if (!has_uuid)
		return FALSE;
	for (gsize i = 0; i < g_variant_n_children(mdata); i++) {
		g_autoptr(GVariant) entry = g_variant_get_child_value(mdata, i);
		guint16 company;
		GVariant *value;

		g_variant_get(entry, "{qv}", &company, &value);
		if (company == CP_BLE_ADV_COMPANY && g_variant_is_of_type(value, G_VARIANT_TYPE_BYTESTRING)) {
			g_clear_pointer(&bytes, g_variant_unref);
			bytes = value;
		} else {
			g_variant_unref(value);
		}
	}
	if (!bytes)
		return FALSE;
	d = g_variant_get_fixed_array(bytes, &n, 1);
	/* version 1 in the high nibble, else ignored (18.3) */
	if (n < CP_BLE_ADV_DATA_LEN || (d[0] >> 4) != 1)
		return FALSE;
	memcpy(out, d + 1, 5);
	return TRUE;
}

static gboolean
under_adapter(CpBleReader *r, const char *path)
{
	gsize n = strlen(r->adapter_path);

	return strncmp(path, r->adapter_path, n) == 0 && path[n] == '/';
}

/* A device as the scan sees it: its properties now. */
static void
scan_consider(CpBleReader *r, const char *path)
{
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GVariant) props = NULL;
	guint8 prefix[5];
	char hex[11];

	if (!r->scanning || !under_adapter(r, path) || strchr(path + strlen(r->adapter_path) + 1, '/'))
		return;
	for (guint i = 0; i < r->seen_paths->len; i++)
		if (strcmp(g_ptr_array_index(r->seen_paths, i), path) == 0)
			return;
	ret = call(r, path, PROPS_IFACE, "GetAll", g_variant_new("(s)", DEVICE_IFACE), "(a{sv})",
		   CALL_TIMEOUT_MS, NULL);
	if (!ret)
		return;
	props = g_variant_get_child_value(ret, 0);
	/* a device BlueZ remembers from before, not seen in this scan, has
	 * no RSSI (BlueZ clears it when discovery stops) */
	if (!g_variant_lookup(props, "RSSI", "n", NULL) || !adv_prefix(props, prefix))
		return;
	cp_hex_encode(prefix, 5, hex);
	g_ptr_array_add(r->seen_paths, g_strdup(path));
	g_ptr_array_add(r->seen_prefixes, g_strdup(hex));
}

static void
on_props(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
	 const char *signal, GVariant *params, gpointer data)
{
	CpBleReader *r = data;
	g_autoptr(GVariant) changed = NULL;
	const char *which;
	gboolean b;

	(void)bus; (void)sender; (void)iface; (void)signal;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
		return;
	g_variant_get(params, "(&s@a{sv}^a&s)", &which, &changed, NULL);
	if (strcmp(which, DEVICE_IFACE) == 0) {
		if (r->dev_path && strcmp(path, r->dev_path) == 0) {
			if (g_variant_lookup(changed, "Connected", "b", &b) && !b)
				r->connected = FALSE;
			if (g_variant_lookup(changed, "ServicesResolved", "b", &b))
				r->resolved = b;
		}
		scan_consider(r, path);
	} else if (strcmp(which, CHRC_IFACE) == 0 && r->tx_path && strcmp(path, r->tx_path) == 0) {
		g_autoptr(GVariant) value = g_variant_lookup_value(changed, "Value", G_VARIANT_TYPE_BYTESTRING);
		guint16 mtu;

		if (value) {
			gsize n;
			const guint8 *d = g_variant_get_fixed_array(value, &n, 1);

			g_queue_push_tail(&r->indications, g_bytes_new(d, n));
		}
		if (g_variant_lookup(changed, "MTU", "q", &mtu) && r->link &&
		    cp_ble_link_set_mtu(r->link, mtu) == CP_OK)
			r->stats.mtu = mtu;
	} else if (strcmp(which, CHRC_IFACE) == 0 && r->rx_path && strcmp(path, r->rx_path) == 0) {
		guint16 mtu;

		if (g_variant_lookup(changed, "MTU", "q", &mtu) && r->link &&
		    cp_ble_link_set_mtu(r->link, mtu) == CP_OK)
			r->stats.mtu = mtu;
	}
}

static void
on_added(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
	 const char *signal, GVariant *params, gpointer data)
{
	CpBleReader *r = data;
	const char *obj;

	(void)bus; (void)sender; (void)path; (void)iface; (void)signal;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(oa{sa{sv}})")))
		return;
	g_variant_get(params, "(&o@a{sa{sv}})", &obj, NULL);
	scan_consider(r, obj);
}

static void
on_removed(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
	   const char *signal, GVariant *params, gpointer data)
{
	CpBleReader *r = data;
	const char *obj;

	(void)bus; (void)sender; (void)path; (void)iface; (void)signal;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)")))
		return;
	g_variant_get(params, "(&o^a&s)", &obj, NULL);
	/* the device, or its characteristics: the link is gone */
	if (r->dev_path && g_str_has_prefix(obj, r->dev_path) &&
	    (obj[strlen(r->dev_path)] == '\0' || obj[strlen(r->dev_path)] == '/'))
		r->connected = FALSE;
}

/* ---- open ---- */

static GVariant *
managed_objects(CpBleReader *r, GError **error)
{
	g_autoptr(GError) e = NULL;
	GVariant *ret = call(r, "/", OM_IFACE, "GetManagedObjects", NULL, "(a{oa{sa{sv}}})", CALL_TIMEOUT_MS, &e);

	if (!ret) {
		g_autofree char *text = remote_error_text(e);

		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NO_BLUEZ,
			    "BlueZ does not answer on the system bus (is bluetoothd running?): %s", text);
	}
	return ret;
}

CpBleReader *
cp_ble_reader_open(const char *adapter, GError **error)
{
	g_autoptr(CpBleReader) r = g_new0(CpBleReader, 1);
	g_autoptr(GVariant) objs = NULL;
	g_autoptr(GVariant) dict = NULL;
	g_autoptr(GString) have = g_string_new(NULL);
	g_autoptr(GError) e = NULL;
	GVariantIter it;
	const char *path;
	GVariant *ifaces;
	gboolean found = FALSE, powered = FALSE;

	r->ctx = g_main_context_new();
	g_queue_init(&r->indications);
	r->seen_paths = g_ptr_array_new_with_free_func(g_free);
	r->seen_prefixes = g_ptr_array_new_with_free_func(g_free);
	r->stats.mtu = CP_BLE_MTU_MIN;
	r->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &e);
	if (!r->bus) {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NO_BLUEZ,
			    "no system bus: %s", e->message);
		return NULL;
	}
	g_dbus_connection_set_exit_on_close(r->bus, FALSE);
	objs = managed_objects(r, error);
	if (!objs)
		return NULL;
	dict = g_variant_get_child_value(objs, 0);
	/* the adapters, in BlueZ's order: the named one, or the first powered */
	g_variant_iter_init(&it, dict);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, ADAPTER_IFACE, NULL);
		const char *name = strrchr(path, '/') + 1;
		gboolean on = FALSE;

		if (!props)
			continue;
		g_string_append_printf(have, "%s%s", have->len ? ", " : "", name);
		g_variant_lookup(props, "Powered", "b", &on);
		if (found || (adapter && strcmp(name, adapter) != 0) || (!adapter && !on))
			continue;
		found = TRUE;
		powered = on;
		r->adapter = g_strdup(name);
		r->adapter_path = g_strdup(path);
	}
	if (!found) {
		if (adapter)
			g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NO_ADAPTER,
				    "BlueZ has no adapter %s (it has: %s)", adapter, have->len ? have->str : "none");
		else
			g_set_error(error, CP_BLE_READER_ERROR,
				    have->len ? CP_BLE_READER_ERROR_ADAPTER_OFF : CP_BLE_READER_ERROR_NO_ADAPTER,
				    have->len ? "no Bluetooth adapter is powered (BlueZ has: %s)"
					      : "BlueZ has no Bluetooth adapter%s", have->str);
		return NULL;
	}
	if (!powered) {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_ADAPTER_OFF,
			    "the Bluetooth adapter %s is powered off", r->adapter);
		return NULL;
	}
	g_main_context_push_thread_default(r->ctx);
	r->subs[0] = g_dbus_connection_signal_subscribe(r->bus, BLUEZ, PROPS_IFACE, "PropertiesChanged", NULL,
							NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_props, r, NULL);
	r->subs[1] = g_dbus_connection_signal_subscribe(r->bus, BLUEZ, OM_IFACE, "InterfacesAdded", NULL,
							NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_added, r, NULL);
	r->subs[2] = g_dbus_connection_signal_subscribe(r->bus, BLUEZ, OM_IFACE, "InterfacesRemoved", NULL,
							NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_removed, r, NULL);
	g_main_context_pop_thread_default(r->ctx);
	return g_steal_pointer(&r);
}

const char *
cp_ble_reader_adapter(CpBleReader *r)
{
	return r->adapter;
}

static void
end_link(CpBleReader *r)
{
	g_clear_pointer(&r->link, cp_ble_link_free);
	g_queue_clear_full(&r->indications, (GDestroyNotify)g_bytes_unref);
	g_clear_pointer(&r->rx_path, g_free);
	g_clear_pointer(&r->tx_path, g_free);
	g_clear_pointer(&r->dev_path, g_free);
	r->connected = r->resolved = r->notifying = FALSE;
}

void
cp_ble_reader_disconnect(CpBleReader *r)
{
	if (!r->dev_path)
		return;
	if (r->notifying && r->connected)
		call_quietly(r, r->tx_path, CHRC_IFACE, "StopNotify");
	if (r->connected)
		call_quietly(r, r->dev_path, DEVICE_IFACE, "Disconnect");
	drain(r);
	end_link(r);
}

void
cp_ble_reader_free(CpBleReader *r)
{
	if (!r)
		return;
	if (r->bus) {
		cp_ble_reader_disconnect(r);
		for (gsize i = 0; i < G_N_ELEMENTS(r->subs); i++)
			if (r->subs[i])
				g_dbus_connection_signal_unsubscribe(r->bus, r->subs[i]);
		drain(r);
		g_object_unref(r->bus);
	}
	end_link(r);
	g_ptr_array_unref(r->seen_paths);
	g_ptr_array_unref(r->seen_prefixes);
	g_free(r->adapter);
	g_free(r->adapter_path);
	g_main_context_unref(r->ctx);
	g_free(r);
}

/* ---- connect ---- */

static void
stop_scan(CpBleReader *r)
{
	if (!r->scanning)
		return;
	r->scanning = FALSE;
	call_quietly(r, r->adapter_path, ADAPTER_IFACE, "StopDiscovery");
}

static gboolean
adapter_error(CpBleReader *r, GError *e, const char *what, GError **error)
{
	g_autofree char *text = remote_error_text(e);

	if (remote_error_is(e, "org.bluez.Error.NotReady"))
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_ADAPTER_OFF,
			    "the Bluetooth adapter %s is not ready (powered off?): %s", r->adapter, text);
	else if (e->domain == G_DBUS_ERROR && (e->code == G_DBUS_ERROR_SERVICE_UNKNOWN ||
					       e->code == G_DBUS_ERROR_UNKNOWN_OBJECT ||
					       e->code == G_DBUS_ERROR_NAME_HAS_NO_OWNER))
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NO_ADAPTER,
			    "the Bluetooth adapter %s went away: %s", r->adapter, text);
	else
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_CONNECT, "%s: %s", what, text);
	return FALSE;
}

/* Scan until a device that fits, or the deadline: its index in seen. */
static gboolean
scan(CpBleReader *r, const guint8 *prefix, gsize prefix_len, guint64 deadline, guint *which, GError **error)
{
	g_autoptr(GVariant) objs = NULL;
	g_autoptr(GVariant) dict = NULL;
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GError) e = NULL;
	GVariantBuilder filter;
	GVariantIter it;
	const char *path;
	const char *uuids[] = { CP_BLE_SERVICE_UUID, NULL };
	guint64 settle = 0;

	g_ptr_array_set_size(r->seen_paths, 0);
	g_ptr_array_set_size(r->seen_prefixes, 0);
	g_variant_builder_init(&filter, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&filter, "{sv}", "UUIDs", g_variant_new_strv(uuids, -1));
	g_variant_builder_add(&filter, "{sv}", "Transport", g_variant_new_string("le"));
	ret = call(r, r->adapter_path, ADAPTER_IFACE, "SetDiscoveryFilter", g_variant_new("(a{sv})", &filter),
		   NULL, CALL_TIMEOUT_MS, &e);
	if (!ret)
		return adapter_error(r, e, "SetDiscoveryFilter", error);
	g_clear_pointer(&ret, g_variant_unref);
	ret = call(r, r->adapter_path, ADAPTER_IFACE, "StartDiscovery", NULL, NULL, CALL_TIMEOUT_MS, &e);
	if (!ret)
		return adapter_error(r, e, "StartDiscovery", error);
	r->scanning = TRUE;
	/* the devices BlueZ already sees */
	objs = managed_objects(r, error);
	if (!objs) {
		stop_scan(r);
		return FALSE;
	}
	dict = g_variant_get_child_value(objs, 0);
	g_variant_iter_init(&it, dict);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, NULL))
		scan_consider(r, path);
	for (;;) {
		guint64 now = now_ms();

		for (guint i = 0; i < r->seen_prefixes->len; i++) {
			guint8 p[5];

			cp_hex_decode(g_ptr_array_index(r->seen_prefixes, i), p, 5);
			if (prefix_len && memcmp(p, prefix, MIN(prefix_len, 5)) == 0) {
				*which = i;
				stop_scan(r);
				return TRUE;
			}
		}
		if (!prefix_len && r->seen_prefixes->len) {
			if (!settle)
				settle = now + SCAN_SETTLE_MS;
			if (now >= settle || now >= deadline) {
				*which = 0;
				stop_scan(r);
				return TRUE;
			}
		}
		if (now >= deadline)
			break;
		wait_until(r, settle ? MIN(settle, deadline) : deadline);
	}
	stop_scan(r);
	if (prefix_len && r->seen_prefixes->len) {
		g_autofree char *want = g_malloc(2 * MIN(prefix_len, 5) + 1);
		g_autofree char *list = NULL;

		g_ptr_array_add(r->seen_prefixes, NULL);
		list = g_strjoinv(", ", (char **)r->seen_prefixes->pdata);
		g_ptr_array_remove_index(r->seen_prefixes, r->seen_prefixes->len - 1);
		cp_hex_encode(prefix, MIN(prefix_len, 5), want);
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NOT_FOUND,
			    "no cellprov device %s... advertises on %s (seen: %s)", want, r->adapter, list);
	} else {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NOT_FOUND,
			    "no cellprov device advertised on %s in time", r->adapter);
	}
	return FALSE;
}

/* The cellprov service's RX and TX under the device, and their MTU. */
static gboolean
find_characteristics(CpBleReader *r, guint16 *mtu, GError **error)
{
	g_autoptr(GVariant) objs = managed_objects(r, error);
	g_autoptr(GVariant) dict = NULL;
	g_autofree char *service = NULL;
	GVariantIter it;
	const char *path;
	GVariant *ifaces;

	if (!objs)
		return FALSE;
	dict = g_variant_get_child_value(objs, 0);
	g_variant_iter_init(&it, dict);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, SERVICE_IFACE, NULL);
		const char *uuid, *dev;

		if (props && g_variant_lookup(props, "UUID", "&s", &uuid) && g_variant_lookup(props, "Device", "&o", &dev) &&
		    strcmp(dev, r->dev_path) == 0 && g_ascii_strcasecmp(uuid, CP_BLE_SERVICE_UUID) == 0 && !service)
			service = g_strdup(path);
	}
	if (!service) {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NO_SERVICE,
			    "the device offers no cellprov service (its provisioning window may have closed)");
		return FALSE;
	}
	*mtu = CP_BLE_MTU_MIN;
	g_variant_iter_init(&it, dict);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, CHRC_IFACE, NULL);
		const char *uuid, *svc;
		guint16 m;

		if (!props || !g_variant_lookup(props, "UUID", "&s", &uuid) ||
		    !g_variant_lookup(props, "Service", "&o", &svc) || strcmp(svc, service) != 0)
			continue;
		if (g_ascii_strcasecmp(uuid, CP_BLE_RX_UUID) == 0 && !r->rx_path)
			r->rx_path = g_strdup(path);
		else if (g_ascii_strcasecmp(uuid, CP_BLE_TX_UUID) == 0 && !r->tx_path)
			r->tx_path = g_strdup(path);
		else
			continue;
		/* BlueZ 5.62 and later; without it, 23 until told more */
		if (g_variant_lookup(props, "MTU", "q", &m) && m >= CP_BLE_MTU_MIN && m <= CP_BLE_MTU_MAX)
			*mtu = m;
	}
	if (!r->rx_path || !r->tx_path) {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_NO_SERVICE,
			    "the device's cellprov service lacks its %s characteristic", r->rx_path ? "TX" : "RX");
		return FALSE;
	}
	return TRUE;
}

gboolean
cp_ble_reader_connect(CpBleReader *r, const guint8 *prefix, gsize prefix_len, guint timeout_ms,
		      GStrv *seen, GError **error)
{
	guint64 deadline = now_ms() + timeout_ms;
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GError) e = NULL;
	guint which = 0;
	guint16 mtu;

	cp_ble_reader_disconnect(r);
	drain(r);
	if (!scan(r, prefix, prefix_len, deadline, &which, error))
		return FALSE;
	r->dev_path = g_strdup(g_ptr_array_index(r->seen_paths, which));
	cp_hex_decode(g_ptr_array_index(r->seen_prefixes, which), r->prefix, 5);
	if (seen) {
		GPtrArray *a = g_ptr_array_new();

		g_ptr_array_add(a, g_strdup(g_ptr_array_index(r->seen_prefixes, which)));
		for (guint i = 0; i < r->seen_prefixes->len; i++)
			if (i != which)
				g_ptr_array_add(a, g_strdup(g_ptr_array_index(r->seen_prefixes, i)));
		g_ptr_array_add(a, NULL);
		*seen = (GStrv)g_ptr_array_free(a, FALSE);
	}
	r->resolved = FALSE;
	ret = call(r, r->dev_path, DEVICE_IFACE, "Connect", NULL, NULL,
		   (int)MAX(deadline - MIN(deadline, now_ms()), CALL_TIMEOUT_MS), &e);
	if (!ret) {
		g_autofree char *text = remote_error_text(e);

		if (remote_error_is(e, "org.bluez.Error.NotReady"))
			g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_ADAPTER_OFF,
				    "the Bluetooth adapter %s is not ready: %s", r->adapter, text);
		else
			g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_CONNECT,
				    "cannot connect to the device: %s", text);
		end_link(r);
		return FALSE;
	}
	r->connected = TRUE;
	/* ServicesResolved may have come before Connect's answer */
	g_clear_pointer(&ret, g_variant_unref);
	ret = call(r, r->dev_path, PROPS_IFACE, "Get", g_variant_new("(ss)", DEVICE_IFACE, "ServicesResolved"),
		   "(v)", CALL_TIMEOUT_MS, NULL);
	if (ret) {
		g_autoptr(GVariant) v = g_variant_get_child_value(ret, 0);
		g_autoptr(GVariant) b = g_variant_get_variant(v);

		if (g_variant_is_of_type(b, G_VARIANT_TYPE_BOOLEAN) && g_variant_get_boolean(b))
			r->resolved = TRUE;
	}
	{
		guint64 until = now_ms() + RESOLVE_TIMEOUT_MS;

		while (!r->resolved && r->connected && now_ms() < until)
			wait_until(r, until);
	}
	if (!r->connected) {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_LINK_LOST,
			    "the link dropped while connecting");
		end_link(r);
		return FALSE;
	}
	if (!r->resolved) {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_CONNECT,
			    "connected, but BlueZ did not resolve the device's services in %d s",
			    RESOLVE_TIMEOUT_MS / 1000);
		cp_ble_reader_disconnect(r);
		return FALSE;
	}
	if (!find_characteristics(r, &mtu, error)) {
		cp_ble_reader_disconnect(r);
		return FALSE;
	}
	g_clear_pointer(&ret, g_variant_unref);
	ret = call(r, r->tx_path, CHRC_IFACE, "StartNotify", NULL, NULL, CALL_TIMEOUT_MS, &e);
	if (!ret) {
		g_autofree char *text = remote_error_text(e);

		g_set_error(error, CP_BLE_READER_ERROR,
			    r->connected ? CP_BLE_READER_ERROR_REFUSED : CP_BLE_READER_ERROR_LINK_LOST,
			    "the device refused indications on TX: %s", text);
		cp_ble_reader_disconnect(r);
		return FALSE;
	}
	r->notifying = TRUE;
	r->link = cp_ble_link_new(mtu, now_ms());
	r->stats.mtu = mtu;
	return r->link != NULL;
}

gboolean
cp_ble_reader_is_connected(CpBleReader *r)
{
	drain(r);
	return r->link && r->connected && cp_ble_link_check(r->link, now_ms()) == CP_OK;
}

const guint8 *
cp_ble_reader_device_prefix(CpBleReader *r)
{
	return r->prefix;
}

/* ---- requests ---- */

/* One segment written on RX, as a Write Request. */
static gboolean
write_segment(CpBleReader *r, const CpBuf *seg, GError **error)
{
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GError) e = NULL;
	g_autofree char *text = NULL;
	GVariantBuilder opts;

	g_variant_builder_init(&opts, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&opts, "{sv}", "type", g_variant_new_string("request"));
	ret = call(r, r->rx_path, CHRC_IFACE, "WriteValue",
		   g_variant_new("(@aya{sv})", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, seg->data, seg->len, 1),
				 &opts),
		   NULL, CALL_TIMEOUT_MS, &e);
	if (ret) {
		r->stats.writes++;
		r->stats.write_bytes += seg->len;
		return TRUE;
	}
	drain(r);
	text = remote_error_text(e);
	if (!r->connected || remote_error_is(e, "org.bluez.Error.NotConnected") ||
	    (remote_error_is(e, "org.bluez.Error.Failed") && strstr(text, "Not connected")))
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_LINK_LOST,
			    "the link dropped mid-message (%s)", text);
	else if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_TIMEOUT,
			    "a write was not answered in %d s", CALL_TIMEOUT_MS / 1000);
	else if (strstr(text, "ATT error: 0x81"))
		/* section 18.7: a second phone's writes get Application Error */
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_BUSY,
			    "the device is serving another phone (%s)", text);
	else
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_REFUSED,
			    "the device refused a write (%s)", text);
	return FALSE;
}

static gboolean
link_failed(CpBleReader *r, CpError err, GError **error)
{
	g_set_error(error, CP_ERROR, err, "the BLE session broke: %s (%s)", cp_error_message(err),
		    cp_error_name(err));
	cp_ble_reader_disconnect(r);
	return FALSE;
}

GBytes *
cp_ble_reader_request(CpBleReader *r, guint8 op, const guint8 *body, gsize len, guint timeout_ms, GError **error)
{
	cp_auto_buf msg = CP_BUF_INIT;
	CpBleMessage req = { .op = op, .body = body, .body_len = body ? len : 0 };
	guint64 deadline = now_ms() + timeout_ms;
	GBytes *answer = NULL;
	CpBleMessage resp = { 0 };
	CpError err;

	drain(r);
	if (!r->link || !r->connected) {
		g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_LINK_LOST, "the link dropped");
		cp_ble_reader_disconnect(r);
		return NULL;
	}
	err = cp_ble_message_encode(&req, &msg);
	if (err == CP_OK)
		err = cp_ble_link_send(r->link, msg.data, msg.len);
	if (err != CP_OK) {
		g_set_error(error, CP_ERROR, err, "cannot send %s: %s", cp_ble_op_name(op), cp_error_message(err));
		return NULL;
	}
	r->stats.requests++;
	/* one indication at a time, as ATT delivers them (one outstanding
	 * until confirmed): the acks of 18.4.2 fall where they would */
	for (;;) {
		GBytes *ind = g_queue_pop_head(&r->indications);
		gboolean got = ind != NULL;

		if (ind) {
			gsize n;
			const guint8 *d = g_bytes_get_data(ind, &n);
			bool ready = false;

			r->stats.indications++;
			r->stats.indication_bytes += n;
			err = cp_ble_link_receive(r->link, now_ms(), 0, d, n, &ready);
			g_bytes_unref(ind);
			if (err != CP_OK)
				return link_failed(r, err, error), NULL;
			if (ready) {
				size_t mlen;
				const uint8_t *m = cp_ble_link_message(r->link, &mlen);

				err = cp_ble_message_parse(m, mlen, &resp);
				if (err == CP_OK && (!resp.response || resp.op != op))
					err = CP_ERR_BLE_MESSAGE;
				if (err != CP_OK) {
					cp_ble_link_take(r->link);
					return link_failed(r, err, error), NULL;
				}
				answer = g_bytes_new(resp.body, resp.body_len);
				cp_ble_link_take(r->link);
			}
		}
		err = cp_ble_link_check(r->link, now_ms());
		while (err == CP_OK) {
			cp_auto_buf seg = CP_BUF_INIT;

			err = cp_ble_link_next_segment(r->link, now_ms(), &seg);
			if (err != CP_OK || seg.len == 0)
				break;
			if (!write_segment(r, &seg, error)) {
				g_clear_pointer(&answer, g_bytes_unref);
				cp_ble_reader_disconnect(r);
				return NULL;
			}
		}
		if (err != CP_OK) {
			g_clear_pointer(&answer, g_bytes_unref);
			return link_failed(r, err, error), NULL;
		}
		if (answer)
			break;
		if (got)
			continue;
		drain(r);
		if (!r->connected) {
			g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_LINK_LOST,
				    "the link dropped before the device answered %s", cp_ble_op_name(op));
			cp_ble_reader_disconnect(r);
			return NULL;
		}
		if (g_queue_is_empty(&r->indications)) {
			if (now_ms() >= deadline) {
				g_set_error(error, CP_BLE_READER_ERROR, CP_BLE_READER_ERROR_TIMEOUT,
					    "the device did not answer %s in %u s", cp_ble_op_name(op), timeout_ms / 1000);
				cp_ble_reader_disconnect(r);
				return NULL;
			}
			wait_until(r, MIN(deadline, cp_ble_link_deadline(r->link)));
		}
	}
	if (resp.status != CP_OK) {
		g_set_error(error, CP_ERROR, resp.status, "the device answered %s with %s: %s", cp_ble_op_name(op),
			    cp_error_name((CpError)resp.status), cp_error_message((CpError)resp.status));
		g_bytes_unref(answer);
		return NULL;
	}
	return answer;
}

void
cp_ble_reader_get_stats(CpBleReader *r, CpBleReaderStats *stats)
{
	*stats = r->stats;
}
