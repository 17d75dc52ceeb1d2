/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ModemManager driver (see cp-modem-mm.h): modem operations through
 * ModemManager, the card while ModemManager holds off (inhibited) through
 * the protocol of the modem's primary port (QMI over qmi-proxy, MBIM over
 * mbim-proxy, AT on the tty), and the reset in that protocol before
 * ModemManager probes the modem again.
 *
 * Waiting for ModemManager (re-probe, registration) reads the proxies'
 * cached properties on a short timer, so a missed signal or a modem object
 * replaced under us cannot hang the flow; every wait has a deadline.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <stdlib.h>
#include <string.h>

#include <libmm-glib.h>

#include "cp-mm-ports.h"
#include "cp-modem-mm.h"
#include "cp-modem-qmi.h"

#define POLL_MS 200
/* ModemManager's 3GPP registration "idle" (not registered, not searching)
 * on an enabled modem, held this long: the modem gave up, which is how
 * ModemManager 1.20 shows a reject with every domain detached. Enabling
 * asks for automatic registration, so a modem still trying shows
 * "searching" (or "registering") instead. */
#define IDLE_DENIED_MS 5000

/* The protocol of the modem's primary port: how the card is reached (the
 * transport of that protocol's driver) and reset. */
typedef struct {
	const char *name;
	MMModemPortType port_type;
	const CpModemDriver *driver;
	/* NULL: the transport's */
	void (*read_iccid)(CpModemRun *run);
	void (*offline)(CpModemRun *run);
	void (*reset)(CpModemRun *run);
} MmKind;

static const MmKind kinds[] = {
	{ "qmi", MM_MODEM_PORT_TYPE_QMI, &cp_modem_driver_qmi, NULL, cp_qmi_offline, cp_qmi_reset },
#if CP_HAVE_MBIM
	{ "mbim", MM_MODEM_PORT_TYPE_MBIM, &cp_modem_driver_mbim, NULL, cp_mm_mbim_offline, cp_mm_mbim_reset },
#endif
	{ "at", MM_MODEM_PORT_TYPE_AT, &cp_modem_driver_at, cp_mm_at_read_iccid, cp_mm_at_offline,
	  cp_mm_at_reset },
};

typedef struct _Mm Mm;
typedef gboolean (*WaitFunc)(Mm *mm, GError **error);

struct _Mm {
	CpModemRun *run;
	GDBusConnection *bus;
	MMManager *manager;
	char *uid;
	gboolean inhibited;
	const MmKind *kind;      /* the primary port's protocol */
	char *port_path;         /* the port the transport opens */
	CpMmNodeWait *node_wait; /* after a reset (cp-mm-ports.c) */

	/* a wait on ModemManager's properties, then what follows it */
	WaitFunc wait_fn;
	void (*then)(Mm *mm);
	guint poll_id;
	guint deadline_id;
	CpError deadline_code;
	char *deadline_msg;

	/* set_apn: the profile to change */
	guint apn_index;
	char *apn;
	MMBearerIpFamily ip_type;

	guint reg_poll_id;
	gint64 reg_idle_since;   /* monotonic µs; 0: not idle */
};

static Mm *
mm_of(CpModemRun *run)
{
	return run->manager;
}

/* ModemManager's error, kept in the message, as a CpError. Cancellation
 * stays G_IO_ERROR_CANCELLED. Takes error. */
static GError *
mm_error(GError *error, CpError code, const char *what)
{
	GError *out;

	if (!error || error->domain == CP_ERROR || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return error;
	g_dbus_error_strip_remote_error(error);
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
	    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY))
		out = g_error_new(CP_ERROR, CP_ERR_MODEM_TIMEOUT, "%s: ModemManager did not answer in time", what);
	else
		out = g_error_new(CP_ERROR, code, "%s: ModemManager: %s", what, error->message);
	g_error_free(error);
	return out;
}

/* ---- finding the modem ------------------------------------------------- */

/* Whether name is one of the modem's ports. */
static gboolean
modem_has_port(MMModem *modem, const char *name)
{
	const MMModemPortInfo *ports = NULL;
	guint n = 0;

	if (g_strcmp0(mm_modem_get_primary_port(modem), name) == 0)
		return TRUE;
	if (mm_modem_peek_ports(modem, &ports, &n)) {
		for (guint i = 0; i < n; i++)
			if (g_strcmp0(ports[i].name, name) == 0)
				return TRUE;
	}
	return FALSE;
}

/* The port's name as ModemManager knows it: the node's own name, or, for a
 * udev symlink (/dev/cdc-wdm-lte), the name of the node it points to. */
static char *
port_name(MMModem *modem, const char *device)
{
	g_autofree char *real = realpath(device, NULL);
	g_autofree char *name = g_path_get_basename(device);
	g_autofree char *real_name = real ? g_path_get_basename(real) : NULL;

	if (modem_has_port(modem, name))
		return g_steal_pointer(&name);
	if (real_name && modem_has_port(modem, real_name))
		return g_steal_pointer(&real_name);
	return NULL;
}

static gboolean
modem_matches(MMModem *modem, const char *device)
{
	g_autofree char *name = NULL;

	if (device[0] != '/')
		return g_strcmp0(mm_modem_get_equipment_identifier(modem), device) == 0;
	name = port_name(modem, device);
	return name != NULL;
}

/* The modem object for uid, or for device when uid is NULL; a new ref. */
static MMObject *
find_object(MMManager *manager, const char *uid, const char *device)
{
	GList *objects = g_dbus_object_manager_get_objects(G_DBUS_OBJECT_MANAGER(manager));
	MMObject *found = NULL;

	for (GList *l = objects; l; l = l->next) {
		MMModem *modem = mm_object_peek_modem(MM_OBJECT(l->data));

		if (!modem || found)
			continue;
		if (uid ? g_strcmp0(mm_modem_get_device(modem), uid) == 0 : modem_matches(modem, device))
			found = g_object_ref(MM_OBJECT(l->data));
	}
	g_list_free_full(objects, g_object_unref);
	return found;
}

static gboolean
state_usable(MMModemState s)
{
	return s >= MM_MODEM_STATE_DISABLED;
}

/* ---- the modem's kind ---------------------------------------------------- */

/* The protocol of the modem's primary port (ModemManager's PrimaryPort in
 * its Ports), and the port of that protocol the transport opens: the
 * configured one when it is such a port, else the primary port. */
static gboolean
pick_kind(Mm *mm, MMModem *modem, GError **error)
{
	const char *primary = mm_modem_get_primary_port(modem);
	const char *device = mm->run->modem->device;
	g_autofree char *configured = device[0] == '/' ? port_name(modem, device) : NULL;
	g_autofree char *drivers = NULL;
	const MMModemPortInfo *ports = NULL;
	MMModemPortType type = MM_MODEM_PORT_TYPE_UNKNOWN;
	gboolean configured_is_port = FALSE;
	guint n = 0;

	if (!mm_modem_peek_ports(modem, &ports, &n))
		n = 0;
	for (guint i = 0; i < n; i++)
		if (g_strcmp0(ports[i].name, primary) == 0)
			type = ports[i].type;
	for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++)
		if (kinds[k].port_type == type)
			mm->kind = &kinds[k];
	if (!mm->kind) {
		g_set_error(error, CP_ERROR, CP_ERR_MODEM,
			    "ModemManager's primary port %s of the modem speaks %s, not QMI, MBIM or AT",
			    primary ? primary : "(none)", mm_modem_port_type_get_string(type));
		return FALSE;
	}
	for (guint i = 0; i < n; i++)
		if (ports[i].type == type && g_strcmp0(ports[i].name, configured) == 0)
			configured_is_port = TRUE;
	g_free(mm->port_path);
	mm->port_path = configured_is_port ? g_strdup(device) : g_strconcat("/dev/", primary, NULL);
	if (mm_modem_get_drivers(modem))
		drivers = g_strjoinv(",", (char **)mm_modem_get_drivers(modem));
	g_info("ModemManager's plugin %s (drivers %s) drives the modem on %s (%s): the card through %s",
	       mm_modem_get_plugin(modem), drivers ? drivers : "?", primary, mm->kind->name, mm->port_path);
	return TRUE;
}

const char *
cp_mm_port_path(CpModemRun *run)
{
	Mm *mm = run->manager;

	return mm && mm->port_path ? mm->port_path : run->modem->device;
}

CpMmNodeWait **
cp_mm_node_wait(CpModemRun *run)
{
	return &mm_of(run)->node_wait;
}

/* ---- waiting on ModemManager's properties ------------------------------ */

static void
wait_stop(Mm *mm)
{
	if (mm->poll_id)
		g_source_remove(mm->poll_id);
	mm->poll_id = 0;
	if (mm->deadline_id)
		g_source_remove(mm->deadline_id);
	mm->deadline_id = 0;
	mm->wait_fn = NULL;
	g_clear_pointer(&mm->deadline_msg, g_free);
}

static void
wait_over(Mm *mm, GError *error)
{
	void (*then)(Mm *) = mm->then;

	wait_stop(mm);
	mm->then = NULL;
	if (error || !then)
		cp_modem_run_done(mm->run, error);
	else
		then(mm);
}

static gboolean
wait_poll_cb(gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;

	if (!mm->wait_fn(mm, &error))
		return G_SOURCE_CONTINUE;
	mm->poll_id = 0;
	wait_over(mm, error);
	return G_SOURCE_REMOVE;
}

static gboolean
wait_deadline_cb(gpointer data)
{
	Mm *mm = data;
	GError *error = g_error_new_literal(CP_ERROR, mm->deadline_code, mm->deadline_msg);

	mm->deadline_id = 0;
	wait_over(mm, error);
	return G_SOURCE_REMOVE;
}

/* fn at once, then every POLL_MS until it says done or seconds pass. */
static void
wait_for(Mm *mm, WaitFunc fn, guint seconds, CpError code, char *msg, void (*then)(Mm *))
{
	GError *error = NULL;

	mm->then = then;
	if (fn(mm, &error)) {
		g_free(msg);
		wait_over(mm, error);
		return;
	}
	mm->wait_fn = fn;
	mm->deadline_code = code;
	mm->deadline_msg = msg;
	mm->deadline_id = g_timeout_add_seconds(seconds, wait_deadline_cb, mm);
	mm->poll_id = g_timeout_add(POLL_MS, wait_poll_cb, mm);
}

static gboolean
wait_found(Mm *mm, GError **error)
{
	g_autoptr(MMObject) obj = find_object(mm->manager, mm->uid, mm->run->modem->device);
	MMModem *modem;
	MMModemState state;

	if (!obj)
		return FALSE;
	modem = mm_object_peek_modem(obj);
	state = mm_modem_get_state(modem);
	if (state == MM_MODEM_STATE_FAILED) {
		g_set_error(error, CP_ERROR, CP_ERR_MODEM, "ModemManager could not use the modem: %s",
			    mm_modem_state_failed_reason_get_string(mm_modem_get_state_failed_reason(modem)));
		return TRUE;
	}
	if (state == MM_MODEM_STATE_LOCKED) {
		g_set_error(error, CP_ERROR, CP_ERR_CARD_ABSENT, "the SIM is locked (%s)",
			    mm_modem_lock_get_string(mm_modem_get_unlock_required(modem)));
		return TRUE;
	}
	if (!state_usable(state))
		return FALSE;
	if (!mm->uid) {
		mm->uid = g_strdup(mm_modem_get_device(modem));
		g_info("ModemManager manages %s as %s (device %s, %s)", mm->run->modem->device,
		       mm_modem_get_path(modem), mm->uid, mm_modem_state_get_string(state));
	}
	if (!mm->kind)
		pick_kind(mm, modem, error);
	return TRUE;
}

static void
find(Mm *mm, void (*then)(Mm *))
{
	CpModem *m = mm->run->modem;

	wait_for(mm, wait_found, m->request_timeout * 3, CP_ERR_MODEM_GONE,
		 g_strdup_printf("ModemManager does not manage %s", m->device), then);
}

/* ---- open, close ------------------------------------------------------- */

static void
manager_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;
	g_autofree char *owner = NULL;

	mm->manager = mm_manager_new_finish(res, &error);
	if (!mm->manager) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_MODEM, "connecting to ModemManager"));
		return;
	}
	owner = g_dbus_object_manager_client_get_name_owner(G_DBUS_OBJECT_MANAGER_CLIENT(mm->manager));
	if (!owner) {
		cp_modem_run_done(mm->run, g_error_new(CP_ERROR, CP_ERR_MODEM, "ModemManager is not running"));
		return;
	}
	find(mm, NULL);
}

static void
bus_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;

	mm->bus = g_bus_get_finish(res, &error);
	if (!mm->bus) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_MODEM, "connecting to the system bus"));
		return;
	}
	mm_manager_new(mm->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START,
		       mm->run->cancellable, manager_cb, mm);
}

/* The system bus, ModemManager, and the modem in it. */
static void
mm_open(CpModemRun *run)
{
	Mm *mm = g_new0(Mm, 1);

	mm->run = run;
	mm->ip_type = MM_BEARER_IP_FAMILY_NONE;
	run->manager = mm;
	g_bus_get(G_BUS_TYPE_SYSTEM, run->cancellable, bus_cb, mm);
}

static void
uninhibit_quietly_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GError) error = NULL;

	if (!mm_manager_uninhibit_device_finish(MM_MANAGER(src), res, &error))
		g_warning("could not give the modem back to ModemManager: %s", error->message);
}

static void
mm_close(CpModemRun *run)
{
	Mm *mm = mm_of(run);

	if (!mm)
		return;
	cp_mm_node_wait_stop(run);
	wait_stop(mm);
	if (mm->reg_poll_id)
		g_source_remove(mm->reg_poll_id);
	if (mm->inhibited)
		/* Only when giving it back failed: ModemManager would end the
		 * inhibition with our bus name anyway, but not for a
		 * long-lived daemon. */
		mm_manager_uninhibit_device(mm->manager, mm->uid, NULL, uninhibit_quietly_cb, NULL);
	g_clear_object(&mm->manager);
	g_clear_object(&mm->bus);
	g_free(mm->uid);
	g_free(mm->port_path);
	g_free(mm->apn);
	g_free(mm);
	run->manager = NULL;
}

/* ---- enabling ---------------------------------------------------------- */

static void
enable_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;
	void (*then)(Mm *) = mm->then;

	mm->then = NULL;
	if (!mm_modem_enable_finish(MM_MODEM(src), res, &error)) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_MODEM, "enabling the modem"));
		return;
	}
	if (then)
		then(mm);
	else
		cp_modem_run_done(mm->run, NULL);
}

/* ModemManager's profile manager works only on an enabled modem. */
static void
enable(Mm *mm, void (*then)(Mm *))
{
	g_autoptr(MMObject) obj = find_object(mm->manager, mm->uid, NULL);
	MMModem *modem;

	if (!obj) {
		cp_modem_run_done(mm->run, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem left ModemManager"));
		return;
	}
	modem = mm_object_peek_modem(obj);
	mm->then = then;
	if (mm_modem_get_state(modem) >= MM_MODEM_STATE_ENABLED) {
		mm->then = NULL;
		if (then)
			then(mm);
		else
			cp_modem_run_done(mm->run, NULL);
		return;
	}
	mm_modem_enable(modem, mm->run->cancellable, enable_cb, mm);
}

/* ---- APN --------------------------------------------------------------- */

static MMModem3gppProfileManager *
profile_manager(Mm *mm, GError **error)
{
	g_autoptr(MMObject) obj = find_object(mm->manager, mm->uid, NULL);
	MMModem3gppProfileManager *pm = obj ? mm_object_get_modem_3gpp_profile_manager(obj) : NULL;

	if (!pm)
		g_set_error(error, CP_ERROR, CP_ERR_APN, "ModemManager has no 3GPP profile manager for this modem");
	return pm;
}

/* The first 3GPP profile, the one the modem attaches with. */
static void
profile_list_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;
	GList *profiles = NULL;
	gboolean have = FALSE;
	gint id = 0;
	g_autofree char *apn = NULL;

	if (!mm_modem_3gpp_profile_manager_list_finish(MM_MODEM_3GPP_PROFILE_MANAGER(src), res, &profiles, &error)) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_APN, "reading the 3GPP profiles"));
		return;
	}
	for (GList *l = profiles; l; l = l->next) {
		MM3gppProfile *p = l->data;
		gint pid = mm_3gpp_profile_get_profile_id(p);

		if (pid == MM_3GPP_PROFILE_ID_UNKNOWN || (have && pid >= id))
			continue;
		have = TRUE;
		id = pid;
		g_free(apn);
		apn = g_strdup(mm_3gpp_profile_get_apn(p) ? mm_3gpp_profile_get_apn(p) : "");
	}
	g_list_free_full(profiles, g_object_unref);
	if (have)
		g_info("the modem attaches with profile %d (APN '%s')", id, apn);
	/* the backup keeps a profile as one byte, 0 meaning "none" */
	if (have && (id < 1 || id > 255)) {
		cp_modem_run_done(mm->run, g_error_new(CP_ERROR, CP_ERR_APN,
						       "the modem's profile id %d cannot be kept in the backup", id));
		return;
	}
	cp_modem_run_set_old_apn(mm->run, have, (guint)id, apn);
	cp_modem_run_done(mm->run, NULL);
}

static void
read_apn_enabled(Mm *mm)
{
	GError *error = NULL;
	g_autoptr(MMModem3gppProfileManager) pm = profile_manager(mm, &error);

	if (!pm) {
		cp_modem_run_done(mm->run, error);
		return;
	}
	mm_modem_3gpp_profile_manager_list(pm, mm->run->cancellable, profile_list_cb, mm);
}

static void
mm_read_apn(CpModemRun *run)
{
	enable(mm_of(run), read_apn_enabled);
}

static void
profile_set_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;
	g_autoptr(MM3gppProfile) stored =
		mm_modem_3gpp_profile_manager_set_finish(MM_MODEM_3GPP_PROFILE_MANAGER(src), res, &error);

	if (!stored) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_APN, "setting the APN"));
		return;
	}
	g_info("profile %d now has APN '%s'", mm_3gpp_profile_get_profile_id(stored),
	       mm_3gpp_profile_get_apn(stored));
	cp_modem_run_done(mm->run, NULL);
}

/* The profile gets the APN and keeps its IP type. */
static void
profile_types_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;
	GList *profiles = NULL;
	g_autoptr(MM3gppProfile) p = mm_3gpp_profile_new();

	if (!mm_modem_3gpp_profile_manager_list_finish(MM_MODEM_3GPP_PROFILE_MANAGER(src), res, &profiles, &error)) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_APN, "reading the 3GPP profiles"));
		return;
	}
	for (GList *l = profiles; l; l = l->next)
		if (mm->apn_index && mm_3gpp_profile_get_profile_id(l->data) == (gint)mm->apn_index)
			mm->ip_type = mm_3gpp_profile_get_ip_type(l->data);
	g_list_free_full(profiles, g_object_unref);
	if (mm->apn_index)
		mm_3gpp_profile_set_profile_id(p, (gint)mm->apn_index);
	mm_3gpp_profile_set_apn(p, mm->apn);
	mm_3gpp_profile_set_ip_type(p, mm->ip_type != MM_BEARER_IP_FAMILY_NONE ? mm->ip_type
									     : MM_BEARER_IP_FAMILY_IPV4V6);
	mm_modem_3gpp_profile_manager_set(MM_MODEM_3GPP_PROFILE_MANAGER(src), p, mm->run->cancellable,
					  profile_set_cb, mm);
}

static void
mm_set_apn(CpModemRun *run, guint index, const char *apn)
{
	Mm *mm = mm_of(run);
	GError *error = NULL;
	g_autoptr(MMModem3gppProfileManager) pm = profile_manager(mm, &error);

	if (!pm) {
		cp_modem_run_done(run, error);
		return;
	}
	mm->apn_index = index;
	g_free(mm->apn);
	mm->apn = g_strdup(apn);
	mm_modem_3gpp_profile_manager_list(pm, run->cancellable, profile_types_cb, mm);
}

/* ---- inhibition -------------------------------------------------------- */

static void
inhibit_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;

	if (!mm_manager_inhibit_device_finish(MM_MANAGER(src), res, &error)) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_MODEM, "taking the modem from ModemManager"));
		return;
	}
	mm->inhibited = TRUE;
	cp_modem_run_done(mm->run, NULL);
}

static void
inhibit(Mm *mm)
{
	mm_manager_inhibit_device(mm->manager, mm->uid, mm->run->cancellable, inhibit_cb, mm);
}

/* InhibitDevice: ModemManager lets the ports go until the uninhibit (or
 * until our bus name goes away). A modem still being probed (after a
 * reset) is waited for first. */
static void
mm_take(CpModemRun *run)
{
	find(mm_of(run), inhibit);
}

static void
reprobed(Mm *mm)
{
	enable(mm, NULL);
}

static void
uninhibit_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;
	guint wait = MAX(mm->run->modem->registration_timeout, 30);

	if (!mm_manager_uninhibit_device_finish(MM_MANAGER(src), res, &error)) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_MODEM, "giving the modem back to ModemManager"));
		return;
	}
	mm->inhibited = FALSE;
	wait_for(mm, wait_found, wait, CP_ERR_MODEM_TIMEOUT,
		 g_strdup_printf("ModemManager did not bring the modem back within %u s", wait), reprobed);
}

/* Uninhibit, wait for ModemManager to probe the modem again, enable it. */
static void
mm_give_back(CpModemRun *run)
{
	Mm *mm = mm_of(run);

	if (!mm->inhibited) {
		reprobed(mm);
		return;
	}
	mm_manager_uninhibit_device(mm->manager, mm->uid, NULL, uninhibit_cb, mm);
}

/* ---- registration, IMSI ------------------------------------------------ */

static gboolean
registration_poll_cb(gpointer data)
{
	Mm *mm = data;
	CpModemRun *run = mm->run;
	g_autoptr(MMObject) obj = find_object(mm->manager, mm->uid, NULL);
	MMModem3gppRegistrationState reg;
	MMModem *modem;
	MMModem3gpp *gpp;
	MMModemState state;

	/* a poll that reports may end the wait (and free mm): the source is
	 * then gone and what it returns does not matter */
	if (g_cancellable_is_cancelled(run->cancellable)) {
		cp_modem_run_done(run, g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
		return G_SOURCE_CONTINUE;
	}
	if (!obj)
		return G_SOURCE_CONTINUE;   /* re-probing after a reset: the deadline covers it */
	modem = mm_object_peek_modem(obj);
	gpp = mm_object_peek_modem_3gpp(obj);
	state = mm_modem_get_state(modem);
	if (state == MM_MODEM_STATE_FAILED) {
		cp_modem_run_done(run, g_error_new(CP_ERROR, CP_ERR_MODEM, "ModemManager could not use the modem: %s",
						   mm_modem_state_failed_reason_get_string(
							   mm_modem_get_state_failed_reason(modem))));
		return G_SOURCE_CONTINUE;
	}
	if (!gpp)
		return G_SOURCE_CONTINUE;
	reg = mm_modem_3gpp_get_registration_state(gpp);
	if (reg != MM_MODEM_3GPP_REGISTRATION_STATE_IDLE || state < MM_MODEM_STATE_ENABLED)
		mm->reg_idle_since = 0;
	else if (!mm->reg_idle_since)
		mm->reg_idle_since = g_get_monotonic_time();
	if (reg == MM_MODEM_3GPP_REGISTRATION_STATE_DENIED) {
		g_info("ModemManager shows the 3GPP registration denied");
		cp_modem_run_registration(run, CP_MODEM_REG_DENIED, NULL, NULL);
	} else if (mm->reg_idle_since &&
		   g_get_monotonic_time() - mm->reg_idle_since >= IDLE_DENIED_MS * G_TIME_SPAN_MILLISECOND) {
		/* ModemManager 1.20 has no reject cause on the bus (nor a
		 * failed state for it): an enabled modem that stopped
		 * trying, attached nowhere, was turned away */
		g_info("ModemManager shows the modem idle for %u s (packet service %s): the network denied it",
		       IDLE_DENIED_MS / 1000,
		       mm_modem_3gpp_packet_service_state_get_string(mm_modem_3gpp_get_packet_service_state(gpp)));
		cp_modem_run_registration(run, CP_MODEM_REG_DENIED, NULL, NULL);
	} else if (state >= MM_MODEM_STATE_REGISTERED &&
		 (reg == MM_MODEM_3GPP_REGISTRATION_STATE_HOME || reg == MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING))
		cp_modem_run_registration(run, CP_MODEM_REG_REGISTERED, mm_modem_3gpp_get_operator_code(gpp),
					  mm_modem_3gpp_get_operator_name(gpp));
	return G_SOURCE_CONTINUE;
}

static void
mm_registration_start(CpModemRun *run)
{
	Mm *mm = mm_of(run);

	mm->reg_idle_since = 0;
	mm->reg_poll_id = g_timeout_add(POLL_MS, registration_poll_cb, mm);
	registration_poll_cb(mm);
}

static void
mm_registration_stop(CpModemRun *run)
{
	Mm *mm = mm_of(run);

	if (mm && mm->reg_poll_id)
		g_source_remove(mm->reg_poll_id);
	if (mm)
		mm->reg_poll_id = 0;
}

static void
sim_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Mm *mm = data;
	GError *error = NULL;
	g_autoptr(MMSim) sim = mm_modem_get_sim_finish(MM_MODEM(src), res, &error);

	if (!sim) {
		cp_modem_run_done(mm->run, mm_error(error, CP_ERR_MODEM, "reading the SIM"));
		return;
	}
	cp_modem_run_set_imsi(mm->run, mm_sim_get_imsi(sim));
	cp_modem_run_done(mm->run, NULL);
}

static void
mm_read_imsi(CpModemRun *run)
{
	Mm *mm = mm_of(run);
	g_autoptr(MMObject) obj = find_object(mm->manager, mm->uid, NULL);

	if (!obj) {
		cp_modem_run_done(run, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem left ModemManager"));
		return;
	}
	mm_modem_get_sim(mm_object_peek_modem(obj), NULL, sim_cb, mm);
}

/* ---- the card, the offline and the reset: the kind's -------------------- */

static const MmKind *
kind_of(CpModemRun *run)
{
	Mm *mm = mm_of(run);

	return mm ? mm->kind : NULL;
}

static const CpCardTransport *
transport_of(CpModemRun *run)
{
	return kind_of(run)->driver->transport;
}

/* A transport opens run->device: the QMI one the configured port, the
 * MBIM and AT ones the modem's port of their protocol (pick_kind). */
static void
mm_port_open(CpModemRun *run)
{
	char *device = run->device;

	if (kind_of(run)->driver != &cp_modem_driver_qmi)
		run->device = (char *)cp_mm_port_path(run);
	transport_of(run)->open(run);
	run->device = device;
}

static void
mm_port_close(CpModemRun *run)
{
	if (!kind_of(run))
		return;
	cp_mm_node_wait_stop(run);
	transport_of(run)->close(run);
}

static void
mm_card_status(CpModemRun *run)
{
	transport_of(run)->card_status(run);
}

static void
mm_read_iccid(CpModemRun *run)
{
	if (kind_of(run)->read_iccid)
		kind_of(run)->read_iccid(run);
	else
		transport_of(run)->read_iccid(run);
}

static void
mm_open_channel(CpModemRun *run, const guint8 *aid, gsize aid_len)
{
	transport_of(run)->open_channel(run, aid, aid_len);
}

static void
mm_close_channel(CpModemRun *run, guint channel)
{
	transport_of(run)->close_channel(run, channel);
}

static void
mm_transmit(CpModemRun *run, guint channel, const guint8 *apdu, gsize len)
{
	transport_of(run)->transmit(run, channel, apdu, len);
}

/* Each kind fills every entry (the AT ICCID is the kind's own), so this
 * one can too. */
static const CpCardTransport mm_transport = {
	.name = "mm",
	.open = mm_port_open,
	.close = mm_port_close,
	.card_status = mm_card_status,
	.read_iccid = mm_read_iccid,
	.open_channel = mm_open_channel,
	.close_channel = mm_close_channel,
	.transmit = mm_transmit,
};

static void
mm_offline(CpModemRun *run)
{
	kind_of(run)->offline(run);
}

static void
mm_reset(CpModemRun *run)
{
	kind_of(run)->reset(run);
}

/* ---- the tables -------------------------------------------------------- */

static const CpModemOps mm_ops = {
	.name = "mm",
	.open = mm_open,
	.close = mm_close,
	.read_apn = mm_read_apn,
	.take = mm_take,
	.give_back = mm_give_back,
	.set_apn = mm_set_apn,
	/* while inhibited, so that the modem has read the card before
	 * ModemManager probes it again */
	.offline = mm_offline,
	.reset = mm_reset,
	.registration_start = mm_registration_start,
	.registration_stop = mm_registration_stop,
	.read_imsi = mm_read_imsi,
};

/* ModemManager shares QMI and MBIM ports through their proxies; so does
 * the transport. An AT tty is ModemManager's to let go (the inhibition). */
const CpModemDriver cp_modem_driver_mm = {
	.name = "mm",
	.transport = &mm_transport,
	.ops = &mm_ops,
	.proxy = TRUE,
};

/* ---- is it ModemManager's modem? (backend=auto) ------------------------ */

typedef struct {
	char *device;
	guint timeout;
	GDBusConnection *bus;
	MMManager *manager;
	char *uid;
	guint poll_id;
	gint64 deadline;
} FindCtx;

static void
find_ctx_free(gpointer data)
{
	FindCtx *f = data;

	if (f->poll_id)
		g_source_remove(f->poll_id);
	g_free(f->device);
	g_clear_object(&f->manager);
	g_clear_object(&f->bus);
	g_free(f->uid);
	g_free(f);
}

/* Probing done: the modem object exposed and out of its first states
 * (a locked or failed modem is ModemManager's too). */
static gboolean
state_settled(MMModemState s)
{
	return s == MM_MODEM_STATE_FAILED || s == MM_MODEM_STATE_LOCKED || state_usable(s);
}

/* TRUE when the question is answered (*mine says how). ModemManager
 * exposes a modem only once it has probed its ports, so while it has none,
 * or one not settled yet, this one may still come. */
static gboolean
find_settled(FindCtx *f, gboolean *mine)
{
	g_autoptr(MMObject) obj = find_object(f->manager, NULL, f->device);
	GList *objects;
	gboolean pending = FALSE;
	guint n = 0;

	if (obj) {
		MMModem *modem = mm_object_peek_modem(obj);

		if (!state_settled(mm_modem_get_state(modem)))
			return FALSE;
		f->uid = g_strdup(mm_modem_get_device(modem));
		*mine = TRUE;
		return TRUE;
	}
	objects = g_dbus_object_manager_get_objects(G_DBUS_OBJECT_MANAGER(f->manager));
	for (GList *l = objects; l; l = l->next) {
		MMModem *modem = mm_object_peek_modem(MM_OBJECT(l->data));

		if (!modem)
			continue;
		n++;
		if (!state_settled(mm_modem_get_state(modem)))
			pending = TRUE;
	}
	g_list_free_full(objects, g_object_unref);
	if (n > 0 && !pending) {
		*mine = FALSE;
		return TRUE;
	}
	return FALSE;
}

/* TRUE once the task has its answer. */
static gboolean
find_step(GTask *task)
{
	FindCtx *f = g_task_get_task_data(task);
	gboolean mine = FALSE;

	if (g_task_return_error_if_cancelled(task))
		return TRUE;
	if (!find_settled(f, &mine)) {
		if (g_get_monotonic_time() < f->deadline)
			return FALSE;
		g_info("ModemManager runs but has not shown %s within %u s", f->device, f->timeout);
	} else if (mine) {
		g_info("ModemManager manages %s (device %s)", f->device, f->uid);
	} else {
		g_info("ModemManager runs but does not manage %s", f->device);
	}
	g_task_return_boolean(task, mine);
	return TRUE;
}

static gboolean
find_poll_cb(gpointer data)
{
	GTask *task = data;
	FindCtx *f = g_task_get_task_data(task);

	if (!find_step(task))
		return G_SOURCE_CONTINUE;
	f->poll_id = 0;
	return G_SOURCE_REMOVE;
}

static void
find_manager_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	FindCtx *f = g_task_get_task_data(task);
	GError *error = NULL;
	g_autofree char *owner = NULL;

	f->manager = mm_manager_new_finish(res, &error);
	if (!f->manager) {
		g_task_return_error(task, mm_error(error, CP_ERR_MODEM, "connecting to ModemManager"));
		return;
	}
	owner = g_dbus_object_manager_client_get_name_owner(G_DBUS_OBJECT_MANAGER_CLIENT(f->manager));
	if (!owner) {
		g_info("ModemManager is not running");
		g_task_return_boolean(task, FALSE);
		return;
	}
	f->deadline = g_get_monotonic_time() + (gint64)f->timeout * G_TIME_SPAN_SECOND;
	if (find_step(task))
		return;
	/* the source holds the task until the answer */
	f->poll_id = g_timeout_add_full(G_PRIORITY_DEFAULT, POLL_MS, find_poll_cb, g_object_ref(task),
					g_object_unref);
}

static void
find_bus_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	FindCtx *f = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	f->bus = g_bus_get_finish(res, &error);
	if (!f->bus) {
		/* no system bus: no ModemManager either */
		g_info("no system bus (%s)", error->message);
		g_task_return_boolean(task, FALSE);
		return;
	}
	mm_manager_new(f->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START,
		       g_task_get_cancellable(task), find_manager_cb, g_object_ref(task));
}

void
cp_mm_find_modem_async(const char *device, guint timeout, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	FindCtx *f = g_new0(FindCtx, 1);

	g_task_set_source_tag(task, cp_mm_find_modem_async);
	f->device = g_strdup(device);
	f->timeout = timeout;
	g_task_set_task_data(task, f, find_ctx_free);
	g_bus_get(G_BUS_TYPE_SYSTEM, cancellable, find_bus_cb, g_object_ref(task));
}

gboolean
cp_mm_find_modem_finish(GAsyncResult *res, char **uid, GError **error)
{
	FindCtx *f = g_task_get_task_data(G_TASK(res));
	gboolean found = g_task_propagate_boolean(G_TASK(res), error);

	if (uid)
		*uid = found ? g_strdup(f->uid) : NULL;
	return found;
}
