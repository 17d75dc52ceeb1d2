/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cellprovctl: control and inspect cellprovd over D-Bus (cellprovctl(1)). */
#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellprov.h"
#include "cp-config.h"
#include "cp-dbus-generated.h"
#include "cp-glib.h"
#include "cellprovctl-output.h"

#define DBUS_NAME "org.cellprov.Daemon1"
#define DBUS_PATH "/org/cellprov/Daemon1"

static gboolean opt_json;
static gboolean opt_personal;
static int opt_timeout = 30;

static const GOptionEntry entries[] = {
	{ "json", 'J', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
	{ "personal", 'p', 0, G_OPTION_ARG_NONE, &opt_personal,
	  "Show the IMSI unredacted (root or polkit)", NULL },
	{ "timeout", 't', 0, G_OPTION_ARG_INT, &opt_timeout,
	  "Seconds to wait for 'wait' (default 30)", "SECONDS" },
	CP_OPTION_VERSION,
	G_OPTION_ENTRY_NULL,
};

static CpDbusDaemon1 *
connect_daemon(GError **error)
{
	const char *address = g_getenv("CELLPROV_BUS_ADDRESS");
	g_autoptr(GDBusConnection) bus = NULL;
	g_autofree char *owner = NULL;
	CpDbusDaemon1 *proxy;

	if (address && *address)
		bus = g_dbus_connection_new_for_address_sync(address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, error);
	else
		bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
	if (!bus)
		return NULL;
	/* cellprovd exits when it has nothing to do (cellprovd(8)): the bus
	 * starts it again (D-Bus activation), and it answers from its
	 * journal. Without an activation file nobody owns the name. */
	proxy = cp_dbus_daemon1_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_NONE,
					       DBUS_NAME, DBUS_PATH, NULL, error);
	if (!proxy)
		return NULL;
	owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(proxy));
	if (!owner) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
			    "cellprovd is not running (nobody owns %s on the bus, "
			    "and the bus cannot start it)", DBUS_NAME);
		g_object_unref(proxy);
		return NULL;
	}
	return proxy;
}

/*
 * The remote message, then the daemon's error code name when the D-Bus
 * name maps back to one (cp-error.h, e.g. "state"), and the D-Bus error
 * name, which scripts match on.
 */
static void
print_error(const char *what, GError *error)
{
	g_autofree char *remote = g_dbus_error_get_remote_error(error);
	const char *code = NULL;

	g_dbus_error_strip_remote_error(error);
	if (error->domain == CP_ERROR)
		code = cp_error_name(error->code);
	else if (g_error_matches(error, CP_DBUS_ERROR, CP_DBUS_ERROR_NOT_AUTHORIZED))
		code = "not-authorized";
	g_printerr("cellprovctl: %s: %s%s%s%s%s%s%s\n", what, error->message,
		   code ? " (" : "", code ? code : "", code ? ")" : "",
		   remote ? " [" : "", remote ? remote : "", remote ? "]" : "");
}

static const char *
or_none(const char *s)
{
	return s && *s ? s : "none";
}

/* Unix seconds: a number with -J, else UTC date and time ("never" for 0). */
static void
out_time(const char *key, const char *label, guint64 t, const char *zero)
{
	g_autoptr(GDateTime) dt = NULL;
	g_autofree char *text = NULL;

	if (opt_json || !t) {
		if (opt_json)
			cp_out_uint(key, label, t);
		else
			cp_out_str(key, label, zero);
		return;
	}
	dt = g_date_time_new_from_unix_utc((gint64)MIN(t, (guint64)G_MAXINT64));
	text = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup_printf("%" G_GUINT64_FORMAT, t);
	cp_out_str(key, label, text);
}

/* Each transport and its state: "nfc: waiting" lines, {"nfc": "waiting"} in JSON. */
static void
show_transports(CpDbusDaemon1 *d)
{
	GVariant *v = cp_dbus_daemon1_get_transports(d);
	GVariantIter it;
	const char *name, *state;

	cp_out_str("transport", "transport", or_none(cp_dbus_daemon1_get_transport(d)));
	if (!v)
		return;
	g_variant_iter_init(&it, v);
	while (g_variant_iter_next(&it, "{&s&s}", &name, &state)) {
		g_autofree char *key = g_strconcat("transport-", name, NULL);

		cp_out_str(key, name, state);
	}
}

static void
show_status(CpDbusDaemon1 *d)
{
	g_autofree char *imsi = NULL;
	g_autofree char *error_line = NULL;
	const char *last = cp_dbus_daemon1_get_last_error(d);

	if (opt_personal) {
		g_autoptr(GError) error = NULL;

		if (!cp_dbus_daemon1_call_get_imsi_sync(d, &imsi, NULL, &error)) {
			print_error("cannot read the IMSI", error);
			exit(EXIT_FAILURE);
		}
	} else {
		imsi = g_strdup(cp_dbus_daemon1_get_imsi(d));
	}

	cp_out_section("status", "Status");
	cp_out_str("state", "state", cp_dbus_daemon1_get_state(d));
	cp_out_str("step", "step", or_none(cp_dbus_daemon1_get_step(d)));
	cp_out_str("last-error", "last error", or_none(last));
	if (last && *last) {
		error_line = g_strdup_printf("0x%04x", cp_dbus_daemon1_get_last_error_code(d));
		cp_out_str("last-error-code", "error code", error_line);
		cp_out_str("last-error-message", "error message",
			   cp_dbus_daemon1_get_last_error_message(d));
	}
	cp_out_section("network", "Network");
	cp_out_str("operator", "operator", or_none(cp_dbus_daemon1_get_operator(d)));
	cp_out_str("imsi", "IMSI", or_none(imsi));
	cp_out_section("owner", "Owner");
	cp_out_bool("bound", "bound", cp_dbus_daemon1_get_bound(d));
	cp_out_uint("binding-version", "binding version", cp_dbus_daemon1_get_binding_version(d));
	cp_out_str("operator", "operator", or_none(cp_dbus_daemon1_get_operator_name(d)));
	cp_out_str("operator-root", "operator root", or_none(cp_dbus_daemon1_get_operator_root(d)));
	cp_out_str("trust-mode", "trust mode", or_none(cp_dbus_daemon1_get_trust_mode(d)));
	cp_out_section("daemon", "Daemon");
	cp_out_str("version", "version", or_none(cp_dbus_daemon1_get_version(d)));
	show_transports(d);
	cp_out_str("backend", "modem backend", or_none(cp_dbus_daemon1_get_backend(d)));
	cp_out_uint("profile-seq", "profile seq", cp_dbus_daemon1_get_profile_seq(d));
	cp_out_uint("attestation-counter", "attestation", cp_dbus_daemon1_get_attestation_counter(d));
	cp_out_section("poll", "Polling the SM");
	cp_out_bool("enabled", "enabled", cp_dbus_daemon1_get_poll_enabled(d));
	out_time("last-poll", "last poll", cp_dbus_daemon1_get_last_poll(d), "never");
	cp_out_str("last-poll-result", "last result", or_none(cp_dbus_daemon1_get_last_poll_result(d)));
	out_time("next-poll", "next poll", cp_dbus_daemon1_get_next_poll(d), "none");
}

static void
show_identity(CpDbusDaemon1 *d)
{
	cp_out_section("identity", "Identity");
	cp_out_str("device-id", "device id", cp_dbus_daemon1_get_device_id(d));
	cp_out_str("certificate-url", "certificate", cp_dbus_daemon1_get_certificate_url(d));
	cp_out_str("manufacturer", "manufacturer", cp_dbus_daemon1_get_manufacturer(d));
	cp_out_str("model", "model", cp_dbus_daemon1_get_model(d));
	cp_out_str("serial", "serial", cp_dbus_daemon1_get_serial(d));
}

static const char *
receipt_status_name(uint8_t s)
{
	switch (s) {
	case CP_RECEIPT_ACCEPTED:
		return "accepted";
	case CP_RECEIPT_PROVISIONED:
		return "provisioned";
	case CP_RECEIPT_REJECTED:
		return "rejected";
	case CP_RECEIPT_FAILED:
		return "failed";
	case CP_RECEIPT_DECOMMISSIONED:
		return "decommissioned";
	}
	return "unknown";
}

static int
show_receipt(CpDbusDaemon1 *d)
{
	GVariant *v = cp_dbus_daemon1_get_receipt(d);
	gsize len = 0;
	const uint8_t *buf = v ? g_variant_get_fixed_array(v, &len, 1) : NULL;
	g_autofree char *hex = NULL;
	g_autofree char *reason = NULL;
	CpReceipt r;
	CpError err;

	cp_out_section("receipt", "Receipt");
	if (!len) {
		cp_out_str("status", "status", "none");
		return EXIT_SUCCESS;
	}
	err = cp_receipt_decode(buf, len, &r);
	hex = cp_hex_strdup(buf, len);
	if (err != CP_OK) {
		cp_out_str("status", "status", "undecodable");
		cp_out_str("error", "error", cp_error_name(err));
		cp_out_str("raw", "raw", hex);
		return EXIT_FAILURE;
	}
	cp_out_uint("profile-seq", "profile seq", r.profile_seq);
	cp_out_str("status", "status", receipt_status_name(r.status));
	reason = r.reason ? g_strdup_printf("%s (0x%04x)", cp_error_name(r.reason), r.reason)
			  : g_strdup("none");
	cp_out_str("reason", "reason", reason);
	if (r.reason)
		cp_out_str("reason-message", "meaning", cp_error_message(r.reason));
	cp_out_str("registration", "registered on", r.has_registration ? r.registration : "none");
	cp_out_uint("binding-version", "binding version", r.binding_version);
	cp_out_str("mac", "mac", r.has_mac ? "present (K'')" : "none");
	cp_out_str("raw", "raw", hex);
	return EXIT_SUCCESS;
}

static int
show_logs(CpDbusDaemon1 *d)
{
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;

	if (!cp_dbus_daemon1_call_get_log_sync(d, &lines, NULL, &error)) {
		print_error("cannot read the log", error);
		return EXIT_FAILURE;
	}
	cp_out_section("log", "Last attempt");
	cp_out_list("lines", "log", (const char *const *)lines);
	return EXIT_SUCCESS;
}

static int
call_method(CpDbusDaemon1 *d, const char *what)
{
	g_autoptr(GError) error = NULL;
	gboolean ok;

	if (strcmp(what, "forget") == 0)
		ok = cp_dbus_daemon1_call_forget_sync(d, NULL, &error);
	else if (strcmp(what, "factory-reset") == 0)
		ok = cp_dbus_daemon1_call_factory_reset_sync(d, NULL, &error);
	else
		ok = cp_dbus_daemon1_call_rearm_sync(d, NULL, &error);
	if (!ok) {
		print_error(what, error);
		return EXIT_FAILURE;
	}
	cp_out_section("result", "Result");
	cp_out_str("state", "state", cp_dbus_daemon1_get_state(d));
	return EXIT_SUCCESS;
}

static int
open_window(CpDbusDaemon1 *d, const char *arg)
{
	g_autoptr(GError) error = NULL;
	guint64 seconds = 0;
	guint n = 0;

	if (arg && !g_ascii_string_to_unsigned(arg, 10, 1, G_MAXUINT32, &seconds, NULL)) {
		g_printerr("cellprovctl: ble-window: '%s' is not a number of seconds\n", arg);
		return 2;
	}
	if (!cp_dbus_daemon1_call_open_window_sync(d, (guint)seconds, &n, NULL, &error)) {
		print_error("ble-window", error);
		return EXIT_FAILURE;
	}
	if (n == 0) {
		g_printerr("cellprovctl: ble-window: no transport with a provisioning window "
			   "(is [ble] adapter set?)\n");
		return EXIT_FAILURE;
	}
	cp_out_section("result", "Result");
	cp_out_uint("transports", "window opened on", n);
	cp_out_str("transport", "transport", or_none(cp_dbus_daemon1_get_transport(d)));
	return EXIT_SUCCESS;
}

/* The State values of org.cellprov.Daemon1 (docs/dbus.md). */
static const char *const states[] = {
	"idle", "profile-received", "verified", "provisioning", "resetting", "registering",
	"rolling-back", "provisioned", "failed", "decommissioning", NULL,
};

typedef struct {
	GMainLoop *loop;
	const char *want;
	gboolean reached;
} Wait;

static void
on_props(GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer data)
{
	Wait *w = data;

	if (g_strcmp0(cp_dbus_daemon1_get_state(CP_DBUS_DAEMON1(proxy)), w->want) == 0) {
		w->reached = TRUE;
		g_main_loop_quit(w->loop);
	}
}

static gboolean
on_wait_timeout(gpointer data)
{
	g_main_loop_quit(((Wait *)data)->loop);
	return G_SOURCE_REMOVE;
}

static int
wait_state(CpDbusDaemon1 *d, const char *want)
{
	Wait w = { NULL, want, FALSE };
	if (!g_strv_contains(states, want)) {
		g_printerr("cellprovctl: wait: '%s' is not a state\n", want);
		return 2;
	}
	if (g_strcmp0(cp_dbus_daemon1_get_state(d), want) != 0) {
		w.loop = g_main_loop_new(NULL, FALSE);
		g_signal_connect(d, "g-properties-changed", G_CALLBACK(on_props), &w);
		g_timeout_add_seconds((guint)MAX(opt_timeout, 1), on_wait_timeout, &w);
		g_main_loop_run(w.loop);
		g_main_loop_unref(w.loop);
		if (!w.reached) {
			g_printerr("cellprovctl: wait: still %s after %d s (wanted %s)\n",
				   cp_dbus_daemon1_get_state(d), opt_timeout, want);
			return EXIT_FAILURE;
		}
	}
	cp_out_section("result", "Result");
	cp_out_str("state", "state", cp_dbus_daemon1_get_state(d));
	return EXIT_SUCCESS;
}

int
main(int argc, char **argv)
{
	g_autoptr(GOptionContext) ctx = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CpDbusDaemon1) d = NULL;
	const char *cmd;
	int status = EXIT_SUCCESS;

	setlocale(LC_ALL, "");
	ctx = g_option_context_new("[COMMAND] - control cellprovd");
	g_option_context_set_summary(ctx,
		"Commands:\n"
		"  status            state, last error, operator and IMSI (default)\n"
		"  identity          DeviceID, certificate URL, manufacturer, model, serial\n"
		"  receipt           the receipt on the tag, decoded\n"
		"  logs              the daemon's log of the last attempt\n"
		"  forget            drop the provisioning record (root or polkit)\n"
		"  re-arm            accept a new profile (root or polkit)\n"
		"  factory-reset     forget the owner, keep its operator pinned (root or polkit)\n"
		"  ble-window [SECONDS]  open the BLE provisioning window ([ble] window) (root or polkit)\n"
		"  wait STATE        wait until the daemon is in STATE");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		g_printerr("cellprovctl: %s (try --help)\n", error->message);
		return 2;
	}
	cmd = argc > 1 ? argv[1] : "status";
	if (!g_strv_contains((const char *const[]){ "status", "identity", "receipt", "logs",
						    "forget", "re-arm", "rearm", "factory-reset", "wait",
						    "ble-window", NULL }, cmd)) {
		g_printerr("cellprovctl: unknown command '%s' (try --help)\n", cmd);
		return 2;
	}
	if ((strcmp(cmd, "wait") == 0 && argc != 3) ||
	    (strcmp(cmd, "wait") != 0 && strcmp(cmd, "ble-window") != 0 && argc > 2) || argc > 3) {
		g_printerr("cellprovctl: %s: wrong number of arguments (try --help)\n", cmd);
		return 2;
	}

	d = connect_daemon(&error);
	if (!d) {
		g_printerr("cellprovctl: %s\n", error->message);
		return EXIT_FAILURE;
	}

	cp_dbus_error_register();
	cp_out_init(opt_json);
	if (strcmp(cmd, "status") == 0)
		show_status(d);
	else if (strcmp(cmd, "identity") == 0)
		show_identity(d);
	else if (strcmp(cmd, "receipt") == 0)
		status = show_receipt(d);
	else if (strcmp(cmd, "logs") == 0)
		status = show_logs(d);
	else if (strcmp(cmd, "forget") == 0)
		status = call_method(d, "forget");
	else if (strcmp(cmd, "factory-reset") == 0)
		status = call_method(d, "factory-reset");
	else if (strcmp(cmd, "wait") == 0)
		status = wait_state(d, argv[2]);
	else if (strcmp(cmd, "ble-window") == 0)
		status = open_window(d, argc > 2 ? argv[2] : NULL);
	else
		status = call_method(d, "re-arm");
	cp_out_flush();
	return status;
}
