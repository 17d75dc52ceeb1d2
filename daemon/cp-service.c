/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "cellprovd"

#include "cp-service.h"

#include <stdarg.h>
#include <string.h>

#include "cp-config.h"
#include "cp-dbus-generated.h"
#include "cp-glib.h"

/* The time of the last method call, written by the filter in GDBus's
 * worker thread: shared with it, freed when the filter is gone. */
typedef struct {
	GMutex lock;
	gint64 last_call;               /* monotonic µs, 0: none */
} Activity;

struct _CpService {
	CpDaemon *daemon;
	GDBusConnection *bus;
	CpDbusDaemon1 *skeleton;
	CpPoll *poll;
	guint owner_id;
	Activity *activity;
	guint filter_id;
	void (*ready)(gboolean owned, gpointer data);
	gpointer ready_data;
};

static GVariant *
transports_variant(CpDaemon *d)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
	for (guint i = 0; i < cp_daemon_get_n_transports(d); i++) {
		CpTransport *t = cp_daemon_get_transport(d, i);

		g_variant_builder_add(&b, "{ss}", cp_transport_name(t),
				      cp_transport_state_name(t->state));
	}
	return g_variant_builder_end(&b);
}

static void
sync_properties(CpService *s)
{
	CpDaemon *d = s->daemon;
	CpDbusDaemon1 *o = s->skeleton;
	const CpConf *c = cp_daemon_get_conf(d);
	const char *message;
	CpError err = cp_daemon_get_last_error(d, &message);
	g_autofree char *imsi = cp_daemon_get_imsi(d)[0] ? cp_redact(cp_daemon_get_imsi(d))
							  : g_strdup("");
	GBytes *receipt = cp_daemon_get_receipt(d);
	GVariant *rv;

	cp_dbus_daemon1_set_version(o, CP_VERSION);
	cp_dbus_daemon1_set_state(o, cp_state_name(cp_daemon_get_state(d)));
	cp_dbus_daemon1_set_step(o, cp_daemon_get_step(d));
	cp_dbus_daemon1_set_device_id(o, cp_daemon_get_device_id(d));
	cp_dbus_daemon1_set_certificate_url(o, c->certificate_url);
	cp_dbus_daemon1_set_manufacturer(o, c->manufacturer);
	cp_dbus_daemon1_set_model(o, c->model);
	cp_dbus_daemon1_set_serial(o, c->serial);
	cp_dbus_daemon1_set_backend(o, cp_daemon_get_backend_name(d));
	cp_dbus_daemon1_set_transport(o, cp_daemon_get_transport_state(d));
	cp_dbus_daemon1_set_transports(o, transports_variant(d));
	cp_dbus_daemon1_set_last_error(o, err ? cp_error_name(err) : "");
	cp_dbus_daemon1_set_last_error_code(o, (guint16)err);
	cp_dbus_daemon1_set_last_error_message(o, message ? message : "");
	cp_dbus_daemon1_set_operator(o, cp_daemon_get_operator(d));
	cp_dbus_daemon1_set_imsi(o, imsi);
	cp_dbus_daemon1_set_bound(o, cp_daemon_get_bound(d));
	cp_dbus_daemon1_set_binding_version(o, cp_daemon_get_binding_version(d));
	cp_dbus_daemon1_set_operator_name(o, cp_daemon_get_owner_name(d));
	cp_dbus_daemon1_set_operator_root(o, cp_daemon_get_owner_root(d));
	cp_dbus_daemon1_set_trust_mode(o, cp_daemon_get_trust_mode(d));
	cp_dbus_daemon1_set_profile_seq(o, cp_daemon_get_profile_seq(d));
	cp_dbus_daemon1_set_attestation_counter(o, cp_daemon_get_att_counter(d));
	rv = receipt ? g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, receipt, TRUE)
		     : g_variant_new_from_data(G_VARIANT_TYPE_BYTESTRING, "", 0, TRUE, NULL, NULL);
	cp_dbus_daemon1_set_receipt(o, rv);
	cp_dbus_daemon1_set_poll_enabled(o, s->poll != NULL);
	cp_dbus_daemon1_set_last_poll(o, s->poll ? (guint64)(cp_poll_get_last_time(s->poll) / G_USEC_PER_SEC) : 0);
	cp_dbus_daemon1_set_last_poll_result(o, s->poll ? cp_poll_get_outcome(s->poll) : "");
	cp_dbus_daemon1_set_next_poll(o, s->poll ? (guint64)((cp_poll_get_next_time(s->poll) + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC) : 0);
}

static void
on_poll_changed(gpointer data)
{
	sync_properties(data);
}

void
cp_service_set_poll(CpService *s, CpPoll *poll)
{
	if (s->poll)
		cp_poll_set_notify(s->poll, NULL, NULL);
	s->poll = poll;
	if (poll)
		cp_poll_set_notify(poll, on_poll_changed, s);
	sync_properties(s);
}

static void
on_changed(CpDaemon *d, gpointer data)
{
	sync_properties(data);
}

static void
on_state_changed(CpDaemon *d, CpState old, CpState new_state, CpEvent ev, gpointer data)
{
	CpService *s = data;

	sync_properties(s);
	cp_dbus_daemon1_emit_state_changed(s->skeleton, cp_state_name(old),
					   cp_state_name(new_state), cp_event_name(ev));
}

/* Every method error goes out as org.cellprov.Daemon1.Error.<Name>. */
static void
return_cp_error(GDBusMethodInvocation *inv, const GError *error)
{
	if (error->domain == CP_ERROR || error->domain == CP_DBUS_ERROR)
		g_dbus_method_invocation_return_gerror(inv, error);
	else
		g_dbus_method_invocation_return_error_literal(inv, CP_ERROR,
			cp_error_from_gerror(error, CP_ERR_STATE), error->message);
}

static void
run_forget(CpService *s, GDBusMethodInvocation *inv)
{
	g_autoptr(GError) error = NULL;

	if (!cp_daemon_forget(s->daemon, &error))
		return_cp_error(inv, error);
	else
		cp_dbus_daemon1_complete_forget(s->skeleton, inv);
}

static void
run_factory_reset(CpService *s, GDBusMethodInvocation *inv)
{
	g_autoptr(GError) error = NULL;

	if (!cp_daemon_factory_reset(s->daemon, &error))
		return_cp_error(inv, error);
	else
		cp_dbus_daemon1_complete_factory_reset(s->skeleton, inv);
}

static void
run_rearm(CpService *s, GDBusMethodInvocation *inv)
{
	g_autoptr(GError) error = NULL;

	if (!cp_daemon_rearm(s->daemon, &error))
		return_cp_error(inv, error);
	else
		cp_dbus_daemon1_complete_rearm(s->skeleton, inv);
}

static void
run_get_imsi(CpService *s, GDBusMethodInvocation *inv)
{
	cp_dbus_daemon1_complete_get_imsi(s->skeleton, inv, cp_daemon_get_imsi(s->daemon));
}

static void
run_get_log(CpService *s, GDBusMethodInvocation *inv)
{
	cp_dbus_daemon1_complete_get_log(s->skeleton, inv, cp_daemon_get_log(s->daemon));
}

/* The polkit actions of org.cellprov.policy (docs/dbus.md). */
#define ACTION_CONTROL "org.cellprov.control"
#define ACTION_READ_PERSONAL "org.cellprov.read-personal"

typedef struct {
	CpService *s;
	GDBusMethodInvocation *inv;
	const char *action;
	void (*run)(CpService *s, GDBusMethodInvocation *inv);
} Call;

static void
refuse(Call *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
refuse(Call *c, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_info("dbus: %s refused to %s: %s", g_dbus_method_invocation_get_method_name(c->inv),
	       g_dbus_method_invocation_get_sender(c->inv), msg);
	g_dbus_method_invocation_return_error(c->inv, CP_DBUS_ERROR, CP_DBUS_ERROR_NOT_AUTHORIZED,
					      "%s: %s", g_dbus_method_invocation_get_method_name(c->inv), msg);
	g_free(c);
}

static void
polkit_checked(GObject *source, GAsyncResult *res, gpointer data)
{
	Call *c = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	gboolean authorized = FALSE, challenge = FALSE;

	if (!reply) {
		g_dbus_error_strip_remote_error(error);
		refuse(c, "cannot check authorization %s with polkit: %s", c->action, error->message);
		return;
	}
	g_variant_get(reply, "((bb@a{ss}))", &authorized, &challenge, NULL);
	if (!authorized) {
		refuse(c, challenge ? "authentication is required for %s" : "not authorized for %s",
		       c->action);
		return;
	}
	c->run(c->s, c->inv);
	g_free(c);
}

/*
 * polkit decides for anyone but root: CheckAuthorization with the
 * caller's bus name as the subject, interactive only when the caller
 * allowed it (an agent may then ask for a password).
 */
static void
check_polkit(Call *c)
{
	GVariantBuilder subject;
	GDBusMessage *msg = g_dbus_method_invocation_get_message(c->inv);
	guint32 flags = (g_dbus_message_get_flags(msg) &
			 G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) ? 1 : 0;

	g_variant_builder_init(&subject, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&subject, "{sv}", "name",
			      g_variant_new_string(g_dbus_method_invocation_get_sender(c->inv)));
	g_dbus_connection_call(c->s->bus, "org.freedesktop.PolicyKit1",
			       "/org/freedesktop/PolicyKit1/Authority",
			       "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization",
			       g_variant_new("((sa{sv})sa{ss}us)", "system-bus-name", &subject,
					     c->action, NULL, flags, ""),
			       G_VARIANT_TYPE("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE,
			       flags ? G_MAXINT : 25000, NULL, polkit_checked, c);
}

static void
caller_checked(GObject *source, GAsyncResult *res, gpointer data)
{
	Call *c = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	guint32 uid = G_MAXUINT32;

	if (!reply) {
		g_dbus_error_strip_remote_error(error);
		refuse(c, "cannot tell who is calling: %s", error->message);
		return;
	}
	g_variant_get(reply, "(u)", &uid);
	if (uid == 0) {
		c->run(c->s, c->inv);
		g_free(c);
	} else if (!cp_daemon_get_conf(c->s->daemon)->polkit) {
		refuse(c, "only root may call it ([daemon] polkit=false)");
	} else {
		check_polkit(c);
	}
}

/*
 * Root may do anything; others need the polkit action (or, with polkit
 * off in cellprov.conf, are refused). Asked of the bus and of polkit
 * asynchronously, so that the main loop never waits on them.
 */
static gboolean
authorize(CpService *s, GDBusMethodInvocation *inv, const char *action,
	  void (*run)(CpService *s, GDBusMethodInvocation *inv))
{
	Call *c = g_new0(Call, 1);

	c->s = s;
	c->inv = inv;
	c->action = action;
	c->run = run;
	g_dbus_connection_call(s->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "GetConnectionUnixUser",
			       g_variant_new("(s)", g_dbus_method_invocation_get_sender(inv)),
			       G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL,
			       caller_checked, c);
	return TRUE;
}

static gboolean
handle_forget(CpDbusDaemon1 *o, GDBusMethodInvocation *inv, gpointer data)
{
	return authorize(data, inv, ACTION_CONTROL, run_forget);
}

static gboolean
handle_factory_reset(CpDbusDaemon1 *o, GDBusMethodInvocation *inv, gpointer data)
{
	return authorize(data, inv, ACTION_CONTROL, run_factory_reset);
}

static gboolean
handle_rearm(CpDbusDaemon1 *o, GDBusMethodInvocation *inv, gpointer data)
{
	return authorize(data, inv, ACTION_CONTROL, run_rearm);
}

static void
run_open_window(CpService *s, GDBusMethodInvocation *inv)
{
	guint seconds;
	guint n;

	g_variant_get(g_dbus_method_invocation_get_parameters(inv), "(u)", &seconds);
	if (seconds > CP_CONF_MAX_BLE_WINDOW) {
		g_dbus_method_invocation_return_error(inv, CP_ERROR, CP_ERR_ARGUMENT,
			"a window of %u s is longer than %u s", seconds, CP_CONF_MAX_BLE_WINDOW);
		return;
	}
	n = cp_daemon_open_window(s->daemon, seconds);
	g_info("dbus: OpenWindow(%u): %u transport%s", seconds, n, n == 1 ? "" : "s");
	cp_dbus_daemon1_complete_open_window(s->skeleton, inv, n);
}

static gboolean
handle_open_window(CpDbusDaemon1 *o, GDBusMethodInvocation *inv, guint seconds, gpointer data)
{
	return authorize(data, inv, ACTION_CONTROL, run_open_window);
}

static gboolean
handle_get_imsi(CpDbusDaemon1 *o, GDBusMethodInvocation *inv, gpointer data)
{
	return authorize(data, inv, ACTION_READ_PERSONAL, run_get_imsi);
}

/* the log lines are the ones logged, personal identifiers redacted: anyone */
static gboolean
handle_get_log(CpDbusDaemon1 *o, GDBusMethodInvocation *inv, gpointer data)
{
	run_get_log(data, inv);
	return TRUE;
}

static void
on_name_acquired(GDBusConnection *bus, const char *name, gpointer data)
{
	CpService *s = data;

	g_info("dbus: owns %s", name);
	if (s->ready)
		s->ready(TRUE, s->ready_data);
	s->ready = NULL;
}

static void
on_name_lost(GDBusConnection *bus, const char *name, gpointer data)
{
	CpService *s = data;

	g_warning("dbus: cannot own %s (another cellprovd, or the bus policy refuses it)", name);
	if (s->ready)
		s->ready(FALSE, s->ready_data);
	s->ready = NULL;
}

static void
activity_free(gpointer data)
{
	Activity *a = data;

	g_mutex_clear(&a->lock);
	g_free(a);
}

/* Every method call to the daemon (its own methods, and the properties
 * cellprovctl reads) is activity for the idle exit (cp-idle.h). */
static GDBusMessage *
activity_filter(GDBusConnection *bus, GDBusMessage *message, gboolean incoming, gpointer data)
{
	Activity *a = data;

	if (incoming && g_dbus_message_get_message_type(message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL &&
	    g_strcmp0(g_dbus_message_get_path(message), CP_DBUS_PATH) == 0) {
		g_mutex_lock(&a->lock);
		a->last_call = g_get_monotonic_time();
		g_mutex_unlock(&a->lock);
	}
	return message;
}

gint64
cp_service_get_last_call_time(CpService *s)
{
	gint64 t;

	g_mutex_lock(&s->activity->lock);
	t = s->activity->last_call;
	g_mutex_unlock(&s->activity->lock);
	return t;
}

void
cp_service_release_name(CpService *s)
{
	if (!s->owner_id)
		return;
	g_bus_unown_name(s->owner_id);
	s->owner_id = 0;
	g_dbus_connection_flush_sync(s->bus, NULL, NULL);
}

static GDBusConnection *
connect_bus(GError **error)
{
	const char *address = g_getenv("CELLPROV_BUS_ADDRESS");

	if (address && *address)
		return g_dbus_connection_new_for_address_sync(address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, error);
	return g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
}

CpService *
cp_service_new(CpDaemon *daemon, void (*ready)(gboolean owned, gpointer data), gpointer data,
	       GError **error)
{
	g_autoptr(CpService) s = g_new0(CpService, 1);
	CpDaemonListener l = { .state_changed = on_state_changed, .changed = on_changed };

	s->daemon = daemon;
	s->ready = ready;
	s->ready_data = data;
	s->bus = connect_bus(error);
	if (!s->bus)
		return NULL;
	cp_dbus_error_register();
	s->activity = g_new0(Activity, 1);
	g_mutex_init(&s->activity->lock);
	s->filter_id = g_dbus_connection_add_filter(s->bus, activity_filter, s->activity,
						    activity_free);
	s->skeleton = cp_dbus_daemon1_skeleton_new();
	sync_properties(s);
	g_signal_connect(s->skeleton, "handle-forget", G_CALLBACK(handle_forget), s);
	g_signal_connect(s->skeleton, "handle-rearm", G_CALLBACK(handle_rearm), s);
	g_signal_connect(s->skeleton, "handle-factory-reset", G_CALLBACK(handle_factory_reset), s);
	g_signal_connect(s->skeleton, "handle-open-window", G_CALLBACK(handle_open_window), s);
	g_signal_connect(s->skeleton, "handle-get-imsi", G_CALLBACK(handle_get_imsi), s);
	g_signal_connect(s->skeleton, "handle-get-log", G_CALLBACK(handle_get_log), s);
	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(s->skeleton), s->bus,
					      CP_DBUS_PATH, error))
		return NULL;
	cp_daemon_add_listener(daemon, &l, s);
	s->owner_id = g_bus_own_name_on_connection(s->bus, CP_DBUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
						   on_name_acquired, on_name_lost, s, NULL);
	return g_steal_pointer(&s);
}

void
cp_service_free(CpService *s)
{
	if (!s)
		return;
	if (s->poll)
		cp_poll_set_notify(s->poll, NULL, NULL);
	if (s->owner_id)
		g_bus_unown_name(s->owner_id);
	if (s->skeleton) {
		cp_daemon_remove_listener(s->daemon, s);
		if (g_dbus_interface_skeleton_get_connection(G_DBUS_INTERFACE_SKELETON(s->skeleton)))
			g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(s->skeleton));
		g_object_unref(s->skeleton);
	}
	if (s->bus)
		g_dbus_connection_flush_sync(s->bus, NULL, NULL);
	if (s->filter_id)
		g_dbus_connection_remove_filter(s->bus, s->filter_id);
	else if (s->activity)
		activity_free(s->activity);
	g_clear_object(&s->bus);
	g_free(s);
}
