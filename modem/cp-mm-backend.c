/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ModemManager backend (see cp-mm-backend.h). One flow runs a plan of
 * steps, like the QMI backend: provisioning, the rollback after a failure
 * past the first write, the restore after a crash, and the bare release
 * of an inhibition are four plans over the same steps, each step logged
 * as (n/N).
 *
 * The card itself is written by the QMI backend's card plan on a second,
 * private CpModem opened through qmi-proxy: the card logic lives in one
 * place. Waiting for ModemManager (re-probe, registration) reads the
 * proxies' cached properties on a short timer, so a missed signal or a
 * modem object replaced under us cannot hang the flow; every wait has a
 * deadline.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <stdlib.h>
#include <string.h>

#include <libmm-glib.h>

#include "cp-mm-backend.h"

#define POLL_MS 200

typedef enum {
	STEP_CONNECT,
	STEP_FIND,
	STEP_READ_APN,
	STEP_INHIBIT,
	STEP_CARD,
	STEP_CARD_RESTORE,
	STEP_UNINHIBIT,
	STEP_REPROBE,
	STEP_APN,
	STEP_ENABLE,
	STEP_REGISTRATION,
	STEP_CHECK_IMSI,
} Step;

/* ModemManager's profile manager works only on an enabled modem: enable
 * before reading or writing the APN. */
static const Step plan_provision[] = {
	STEP_CONNECT, STEP_FIND, STEP_ENABLE, STEP_READ_APN, STEP_INHIBIT, STEP_CARD,
	STEP_UNINHIBIT, STEP_REPROBE, STEP_ENABLE, STEP_APN, STEP_REGISTRATION, STEP_CHECK_IMSI,
};

/* After a failure past the first write: the old card and the old APN; no
 * wait for a registration the old subscription may never get. */
static const Step plan_rollback[] = {
	STEP_FIND, STEP_INHIBIT, STEP_CARD_RESTORE, STEP_UNINHIBIT, STEP_REPROBE,
	STEP_ENABLE, STEP_APN,
};

/* The profiles are read after the card: the APN goes back on the
 * backup's profile with the IP type that profile has. */
static const Step plan_restore[] = {
	STEP_CONNECT, STEP_FIND, STEP_INHIBIT, STEP_CARD_RESTORE, STEP_UNINHIBIT,
	STEP_REPROBE, STEP_ENABLE, STEP_READ_APN, STEP_APN,
};

/* A failure before anything was written, with the modem inhibited: give
 * it back and leave it enabled, as it was before (a wrong ADM1 must not
 * leave the gateway offline). */
static const Step plan_release[] = {
	STEP_UNINHIBIT, STEP_REPROBE, STEP_ENABLE,
};

typedef enum {
	MODE_RUN,
	MODE_ROLLBACK,
	MODE_RELEASE,
} Mode;

typedef struct _Ctx Ctx;
typedef gboolean (*WaitFunc)(Ctx *ctx, GError **error);

struct _Ctx {
	CpModem *modem;
	GTask *task;
	CpModemTargetCopy *target;       /* NULL when restoring */
	const CpModemBackup *restore_of; /* restore: the caller's backup */
	CpModemBackup *backup;           /* provisioning: the card's and the APN's old values */
	const Step *plan;
	guint n_plan;
	guint pos;
	Mode mode;
	gboolean written;                /* the card holds the target */
	GError *first_error;             /* the failure that started a rollback or release */

	GDBusConnection *bus;
	MMManager *manager;
	char *uid;
	gboolean inhibited;
	CpModem *card;                   /* private QMI modem running the card plan */

	/* the APN: the first 3GPP profile, the one the modem attaches with */
	gboolean have_profile;
	gint profile_id;
	char *old_apn;
	MMBearerIpFamily ip_type;

	/* waits */
	WaitFunc wait_fn;
	guint poll_id;
	guint deadline_id;
	CpError deadline_code;
	char *deadline_msg;

	/* result */
	char *reg_plmn;
	char *reg_name;
	char *sim_imsi;
	char *sim_iccid;
};

static void run(Ctx *ctx);

static void
wait_stop(Ctx *ctx)
{
	if (ctx->poll_id)
		g_source_remove(ctx->poll_id);
	ctx->poll_id = 0;
	if (ctx->deadline_id)
		g_source_remove(ctx->deadline_id);
	ctx->deadline_id = 0;
	ctx->wait_fn = NULL;
	g_clear_pointer(&ctx->deadline_msg, g_free);
}

static void
ctx_free(Ctx *ctx)
{
	wait_stop(ctx);
	g_clear_pointer(&ctx->card, cp_modem_free);
	g_clear_pointer(&ctx->backup, cp_modem_backup_free);
	g_clear_error(&ctx->first_error);
	g_clear_object(&ctx->manager);
	g_clear_object(&ctx->bus);
	g_free(ctx->uid);
	g_free(ctx->old_apn);
	g_free(ctx->reg_plmn);
	g_free(ctx->reg_name);
	g_free(ctx->sim_imsi);
	g_free(ctx->sim_iccid);
	g_clear_object(&ctx->task);
	g_free(ctx);
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

static GCancellable *
cancellable(Ctx *ctx)
{
	/* Once the card is written, the way back is not cancellable. */
	return ctx->written || ctx->mode != MODE_RUN ? NULL : g_task_get_cancellable(ctx->task);
}

static void
uninhibit_quietly_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GError) error = NULL;

	if (!mm_manager_uninhibit_device_finish(MM_MANAGER(src), res, &error))
		g_warning("could not give the modem back to ModemManager: %s", error->message);
}

static void
complete(Ctx *ctx, GError *error)
{
	wait_stop(ctx);
	if (ctx->inhibited) {
		/* Only on a bug or a failed uninhibit: ModemManager would end the
		 * inhibition with our bus name anyway, but not for a long-lived
		 * daemon. */
		mm_manager_uninhibit_device(ctx->manager, ctx->uid, NULL, uninhibit_quietly_cb, NULL);
		ctx->inhibited = FALSE;
	}
	if (error) {
		g_task_return_error(ctx->task, error);
	} else if (ctx->target) {
		CpModemResult *r = g_new0(CpModemResult, 1);

		r->registered_plmn = g_steal_pointer(&ctx->reg_plmn);
		r->operator_name = g_steal_pointer(&ctx->reg_name);
		r->imsi = g_steal_pointer(&ctx->sim_imsi);
		r->iccid = g_steal_pointer(&ctx->sim_iccid);
		g_task_return_pointer(ctx->task, r, (GDestroyNotify)cp_modem_result_free);
	} else {
		g_task_return_boolean(ctx->task, TRUE);
	}
	ctx_free(ctx);
}

static void
start_plan(Ctx *ctx, Mode mode, const Step *plan, guint n_plan)
{
	wait_stop(ctx);
	ctx->mode = mode;
	ctx->plan = plan;
	ctx->n_plan = n_plan;
	ctx->pos = 0;
	run(ctx);
}

static void
fail(Ctx *ctx, GError *error)
{
	wait_stop(ctx);
	if (ctx->mode == MODE_ROLLBACK) {
		GError *e = g_error_new(CP_ERROR, CP_ERR_ROLLBACK,
					"the old subscription could not be put back (%s) after: %s",
					error->message, ctx->first_error->message);

		g_error_free(error);
		complete(ctx, e);
		return;
	}
	if (ctx->mode == MODE_RELEASE) {
		g_warning("could not give the modem back to ModemManager: %s", error->message);
		g_error_free(error);
		complete(ctx, g_steal_pointer(&ctx->first_error));
		return;
	}
	if (ctx->written && ctx->target) {
		g_warning("step failed after the first write: %s; rolling back", error->message);
		ctx->first_error = error;
		start_plan(ctx, MODE_ROLLBACK, plan_rollback, G_N_ELEMENTS(plan_rollback));
		return;
	}
	if (ctx->inhibited) {
		ctx->first_error = error;
		start_plan(ctx, MODE_RELEASE, plan_release, G_N_ELEMENTS(plan_release));
		return;
	}
	complete(ctx, error);
}

static void
next(Ctx *ctx)
{
	ctx->pos++;
	run(ctx);
}

/* ---- waiting on ModemManager's properties ------------------------------ */

static gboolean
wait_poll_cb(gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	if (!ctx->wait_fn(ctx, &error))
		return G_SOURCE_CONTINUE;
	ctx->poll_id = 0;
	wait_stop(ctx);
	if (error)
		fail(ctx, error);
	else
		next(ctx);
	return G_SOURCE_REMOVE;
}

static gboolean
wait_deadline_cb(gpointer data)
{
	Ctx *ctx = data;
	GError *error = g_error_new_literal(CP_ERROR, ctx->deadline_code, ctx->deadline_msg);

	ctx->deadline_id = 0;
	wait_stop(ctx);
	fail(ctx, error);
	return G_SOURCE_REMOVE;
}

static void
wait_start(Ctx *ctx, WaitFunc fn, guint seconds, CpError code, char *msg)
{
	ctx->wait_fn = fn;
	ctx->deadline_code = code;
	ctx->deadline_msg = msg;
	ctx->deadline_id = g_timeout_add_seconds(seconds, wait_deadline_cb, ctx);
	ctx->poll_id = g_timeout_add(POLL_MS, wait_poll_cb, ctx);
}

/* ---- finding the modem ------------------------------------------------- */

static gboolean
modem_matches(MMModem *modem, const char *device)
{
	g_autofree char *real = NULL;
	g_autofree char *name = NULL;
	MMModemPortInfo *ports = NULL;
	guint n = 0;
	gboolean found = FALSE;

	if (device[0] != '/')
		return g_strcmp0(mm_modem_get_equipment_identifier(modem), device) == 0;
	/* a udev symlink (/dev/cdc-wdm-lte) names the same port */
	real = realpath(device, NULL);
	name = g_path_get_basename(real ? real : device);
	if (g_strcmp0(mm_modem_get_primary_port(modem), name) == 0)
		return TRUE;
	if (mm_modem_peek_ports(modem, (const MMModemPortInfo **)&ports, &n)) {
		for (guint i = 0; i < n; i++)
			if (g_strcmp0(ports[i].name, name) == 0)
				found = TRUE;
	}
	return found;
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

static gboolean
wait_found(Ctx *ctx, GError **error)
{
	g_autoptr(MMObject) obj = find_object(ctx->manager, ctx->uid, ctx->modem->device);
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
	if (!ctx->uid) {
		ctx->uid = g_strdup(mm_modem_get_device(modem));
		g_info("ModemManager manages %s as %s (device %s, %s)", ctx->modem->device,
		       mm_modem_get_path(modem), ctx->uid, mm_modem_state_get_string(state));
	}
	return TRUE;
}

static void
step_find(Ctx *ctx)
{
	GError *error = NULL;

	/* while inhibited the modem is not on the bus: nothing to find */
	if (ctx->inhibited) {
		next(ctx);
		return;
	}
	if (wait_found(ctx, &error)) {
		if (error)
			fail(ctx, error);
		else
			next(ctx);
		return;
	}
	wait_start(ctx, wait_found, ctx->modem->request_timeout * 3, CP_ERR_MODEM_GONE,
		   g_strdup_printf("ModemManager does not manage %s", ctx->modem->device));
}

/* ---- connecting -------------------------------------------------------- */

static void
manager_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autofree char *owner = NULL;

	ctx->manager = mm_manager_new_finish(res, &error);
	if (!ctx->manager) {
		fail(ctx, mm_error(error, CP_ERR_MODEM, "connecting to ModemManager"));
		return;
	}
	owner = g_dbus_object_manager_client_get_name_owner(G_DBUS_OBJECT_MANAGER_CLIENT(ctx->manager));
	if (!owner) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_MODEM, "ModemManager is not running"));
		return;
	}
	next(ctx);
}

static void
bus_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	ctx->bus = g_bus_get_finish(res, &error);
	if (!ctx->bus) {
		fail(ctx, mm_error(error, CP_ERR_MODEM, "connecting to the system bus"));
		return;
	}
	mm_manager_new(ctx->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START,
		       cancellable(ctx), manager_cb, ctx);
}

/* ---- APN --------------------------------------------------------------- */

static MMModem3gppProfileManager *
profile_manager(Ctx *ctx)
{
	g_autoptr(MMObject) obj = find_object(ctx->manager, ctx->uid, NULL);

	return obj ? mm_object_get_modem_3gpp_profile_manager(obj) : NULL;
}

static void
profile_list_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	GList *profiles = NULL;

	if (!mm_modem_3gpp_profile_manager_list_finish(MM_MODEM_3GPP_PROFILE_MANAGER(src), res, &profiles, &error)) {
		fail(ctx, mm_error(error, CP_ERR_APN, "reading the 3GPP profiles"));
		return;
	}
	for (GList *l = profiles; l; l = l->next) {
		MM3gppProfile *p = l->data;
		gint id = mm_3gpp_profile_get_profile_id(p);

		if (ctx->restore_of) {
			if (ctx->restore_of->have_apn && id == ctx->restore_of->profile_index)
				ctx->ip_type = mm_3gpp_profile_get_ip_type(p);
			continue;
		}
		if (id == MM_3GPP_PROFILE_ID_UNKNOWN || (ctx->have_profile && id >= ctx->profile_id))
			continue;
		ctx->have_profile = TRUE;
		ctx->profile_id = id;
		g_free(ctx->old_apn);
		ctx->old_apn = g_strdup(mm_3gpp_profile_get_apn(p) ? mm_3gpp_profile_get_apn(p) : "");
		ctx->ip_type = mm_3gpp_profile_get_ip_type(p);
	}
	g_list_free_full(profiles, g_object_unref);
	if (ctx->have_profile)
		g_info("the modem attaches with profile %d (APN '%s')", ctx->profile_id, ctx->old_apn);
	/* the backup keeps a profile as one byte, 0 meaning "none" */
	if (ctx->have_profile && (ctx->profile_id < 1 || ctx->profile_id > 255)) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_APN,
				      "the modem's profile id %d cannot be kept in the backup", ctx->profile_id));
		return;
	}
	next(ctx);
}

static void
step_read_apn(Ctx *ctx)
{
	g_autoptr(MMModem3gppProfileManager) pm = profile_manager(ctx);

	if (!pm) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_APN,
				      "ModemManager has no 3GPP profile manager for this modem"));
		return;
	}
	mm_modem_3gpp_profile_manager_list(pm, cancellable(ctx), profile_list_cb, ctx);
}

static void
profile_set_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(MM3gppProfile) stored =
		mm_modem_3gpp_profile_manager_set_finish(MM_MODEM_3GPP_PROFILE_MANAGER(src), res, &error);

	if (!stored) {
		fail(ctx, mm_error(error, CP_ERR_APN, "setting the APN"));
		return;
	}
	g_info("profile %d now has APN '%s'", mm_3gpp_profile_get_profile_id(stored),
	       mm_3gpp_profile_get_apn(stored));
	next(ctx);
}

static void
step_apn(Ctx *ctx)
{
	const CpModemBackup *b = ctx->restore_of ? ctx->restore_of : ctx->backup;
	g_autoptr(MMModem3gppProfileManager) pm = profile_manager(ctx);
	g_autoptr(MM3gppProfile) p = mm_3gpp_profile_new();

	if (ctx->target && ctx->mode == MODE_RUN) {
		if (ctx->have_profile)
			mm_3gpp_profile_set_profile_id(p, ctx->profile_id);
		mm_3gpp_profile_set_apn(p, ctx->target->apn);
	} else {
		if (!b || !b->have_apn || b->profile_index == 0) {
			/* nothing to put back (a profile we created stays, harmless) */
			next(ctx);
			return;
		}
		mm_3gpp_profile_set_profile_id(p, b->profile_index);
		mm_3gpp_profile_set_apn(p, b->apn);
	}
	mm_3gpp_profile_set_ip_type(p, ctx->ip_type != MM_BEARER_IP_FAMILY_NONE ? ctx->ip_type
									   : MM_BEARER_IP_FAMILY_IPV4V6);
	if (!pm) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_APN,
				      "ModemManager has no 3GPP profile manager for this modem"));
		return;
	}
	mm_modem_3gpp_profile_manager_set(pm, p, cancellable(ctx), profile_set_cb, ctx);
}

/* ---- inhibition -------------------------------------------------------- */

static void
inhibit_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	if (!mm_manager_inhibit_device_finish(MM_MANAGER(src), res, &error)) {
		fail(ctx, mm_error(error, CP_ERR_MODEM, "taking the modem from ModemManager"));
		return;
	}
	ctx->inhibited = TRUE;
	next(ctx);
}

static void
uninhibit_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	if (!mm_manager_uninhibit_device_finish(MM_MANAGER(src), res, &error)) {
		fail(ctx, mm_error(error, CP_ERR_MODEM, "giving the modem back to ModemManager"));
		return;
	}
	ctx->inhibited = FALSE;
	next(ctx);
}

/* ---- the card, through the QMI backend's card plan --------------------- */

static gboolean
card_modem_new(Ctx *ctx, GError **error)
{
	CpModem *m = ctx->modem;
	CpModemConfig config = {
		.backend = CP_MODEM_BACKEND_QMI,
		.device = m->device,
		/* ModemManager shares the port through qmi-proxy; so do we */
		.proxy = TRUE,
		.proxy_path = m->proxy_path,
		.card = m->driver ? m->driver->name : NULL,
		.adm1 = m->adm1,
		.registration_timeout = m->registration_timeout,
		.request_timeout = m->request_timeout,
		/* the card plan resets the modem while we hold it, so that it
		 * reads the card again before ModemManager probes it */
		.reset = m->reset,
	};

	ctx->card = cp_modem_new(&config, error);
	if (!ctx->card)
		return FALSE;
	ctx->card->ops = &cp_modem_qmi_card_ops;
	return TRUE;
}

static void
card_progress_cb(CpModem *card, guint step, guint n_steps, const char *what, gpointer data)
{
	Ctx *ctx = data;
	g_autofree char *s = g_strdup_printf("USIM (%u/%u): %s", step, n_steps, what);

	if (ctx->modem->progress)
		ctx->modem->progress(ctx->modem, ctx->pos + 1, ctx->n_plan, s, ctx->modem->user_data);
}

static void
outer_backup_saved(gpointer data, const GError *error)
{
	Ctx *ctx = data;

	cp_modem_backup_saved(ctx->card, error);
}

/* The card plan read the card: add the APN we read from ModemManager and
 * hand the whole backup to our caller before the card plan writes. */
static void
card_backup_cb(CpModem *card, const CpModemBackup *card_backup, gpointer data)
{
	Ctx *ctx = data;
	CpModem *m = ctx->modem;
	g_autoptr(GBytes) bytes = cp_modem_backup_serialize(card_backup);
	GError *error = NULL;

	g_clear_pointer(&ctx->backup, cp_modem_backup_free);
	ctx->backup = bytes ? cp_modem_backup_deserialize(bytes, &error) : NULL;
	if (!ctx->backup) {
		if (!error)
			error = g_error_new(CP_ERROR, CP_ERR_MODEM, "the card's backup could not be copied");
		cp_modem_backup_saved(card, error);
		g_error_free(error);
		return;
	}
	g_free(ctx->backup->apn);
	ctx->backup->have_apn = TRUE;
	ctx->backup->profile_index = ctx->have_profile ? (guint8)ctx->profile_id : 0;
	ctx->backup->apn = g_strdup(ctx->have_profile ? ctx->old_apn : "");
	if (!m->backup) {
		cp_modem_backup_saved(card, NULL);
		return;
	}
	m->backup_saved = outer_backup_saved;
	m->backup_saved_data = ctx;
	m->backup(m, ctx->backup, m->user_data);
}

static void
card_done_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(CpModemResult) r = cp_modem_provision_finish(ctx->card, res, &error);

	/* a hand-over the card plan no longer waits for */
	if (ctx->modem->backup_saved == outer_backup_saved && ctx->modem->backup_saved_data == ctx) {
		ctx->modem->backup_saved = NULL;
		ctx->modem->backup_saved_data = NULL;
	}
	if (!r) {
		/* The card plan rolled the card back itself, if it got as far as
		 * writing; its error says what happened. */
		fail(ctx, error);
		return;
	}
	ctx->written = TRUE;
	next(ctx);
}

static void
step_card(Ctx *ctx)
{
	CpModemTarget t = {
		.imsi = ctx->target->imsi,
		.mnc_length = ctx->target->mnc_length,
		.plmn = ctx->target->plmn,
		.network_name = ctx->target->network_name,
		.apn = ctx->target->apn,
		.k = ctx->target->k,
		.opc = ctx->target->opc,
	};
	GError *error = NULL;

	if (!card_modem_new(ctx, &error)) {
		fail(ctx, error);
		return;
	}
	cp_modem_provision_async(ctx->card, &t, card_progress_cb, card_backup_cb, ctx,
				 cancellable(ctx), card_done_cb, ctx);
}

static void
card_restore_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	if (!cp_modem_restore_finish(ctx->card, res, &error)) {
		fail(ctx, error);
		return;
	}
	ctx->written = FALSE;
	next(ctx);
}

static void
step_card_restore(Ctx *ctx)
{
	const CpModemBackup *b = ctx->restore_of ? ctx->restore_of : ctx->backup;
	GError *error = NULL;

	if (!ctx->card && !card_modem_new(ctx, &error)) {
		fail(ctx, error);
		return;
	}
	cp_modem_restore_async(ctx->card, b, card_progress_cb, ctx, NULL, card_restore_cb, ctx);
}

/* ---- enabling, registration, IMSI -------------------------------------- */

static void
enable_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	if (!mm_modem_enable_finish(MM_MODEM(src), res, &error)) {
		fail(ctx, mm_error(error, CP_ERR_MODEM, "enabling the modem"));
		return;
	}
	next(ctx);
}

static void
step_enable(Ctx *ctx)
{
	g_autoptr(MMObject) obj = find_object(ctx->manager, ctx->uid, NULL);
	MMModem *modem;

	if (!obj) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem left ModemManager"));
		return;
	}
	modem = mm_object_peek_modem(obj);
	if (mm_modem_get_state(modem) >= MM_MODEM_STATE_ENABLED) {
		next(ctx);
		return;
	}
	mm_modem_enable(modem, cancellable(ctx), enable_cb, ctx);
}

static gboolean
wait_registered(Ctx *ctx, GError **error)
{
	g_autoptr(MMObject) obj = find_object(ctx->manager, ctx->uid, NULL);
	MMModem3gppRegistrationState reg;
	MMModem *modem;
	MMModem3gpp *gpp;
	MMModemState state;

	if (!obj)
		return FALSE;   /* re-probing after a reset: the deadline covers it */
	modem = mm_object_peek_modem(obj);
	gpp = mm_object_peek_modem_3gpp(obj);
	state = mm_modem_get_state(modem);
	if (state == MM_MODEM_STATE_FAILED) {
		g_set_error(error, CP_ERROR, CP_ERR_MODEM, "ModemManager could not use the modem: %s",
			    mm_modem_state_failed_reason_get_string(mm_modem_get_state_failed_reason(modem)));
		return TRUE;
	}
	if (!gpp)
		return FALSE;
	reg = mm_modem_3gpp_get_registration_state(gpp);
	if (reg == MM_MODEM_3GPP_REGISTRATION_STATE_DENIED) {
		g_set_error(error, CP_ERROR, CP_ERR_REG_DENIED,
			    "the network denied registration (ModemManager: 3GPP registration %s)",
			    mm_modem_3gpp_registration_state_get_string(reg));
		return TRUE;
	}
	if (state < MM_MODEM_STATE_REGISTERED ||
	    (reg != MM_MODEM_3GPP_REGISTRATION_STATE_HOME && reg != MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING))
		return FALSE;
	if (g_strcmp0(mm_modem_3gpp_get_operator_code(gpp), ctx->target->plmn) != 0) {
		g_debug("registered on %s, waiting for %s", mm_modem_3gpp_get_operator_code(gpp),
			ctx->target->plmn);
		return FALSE;
	}
	g_free(ctx->reg_plmn);
	ctx->reg_plmn = g_strdup(mm_modem_3gpp_get_operator_code(gpp));
	g_free(ctx->reg_name);
	ctx->reg_name = g_strdup(mm_modem_3gpp_get_operator_name(gpp));
	g_info("registered on %s (%s)", ctx->reg_plmn, ctx->reg_name ? ctx->reg_name : "");
	return TRUE;
}

static void
step_registration(Ctx *ctx)
{
	GError *error = NULL;

	if (wait_registered(ctx, &error)) {
		if (error)
			fail(ctx, error);
		else
			next(ctx);
		return;
	}
	wait_start(ctx, wait_registered, ctx->modem->registration_timeout, CP_ERR_REG_TIMEOUT,
		   g_strdup_printf("no registration on %s within %u s", ctx->target->plmn,
				   ctx->modem->registration_timeout));
}

static void
sim_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(MMSim) sim = mm_modem_get_sim_finish(MM_MODEM(src), res, &error);
	g_autofree char *a = NULL, *b = NULL;

	if (!sim) {
		fail(ctx, mm_error(error, CP_ERR_MODEM, "reading the SIM"));
		return;
	}
	ctx->sim_imsi = g_strdup(mm_sim_get_imsi(sim));
	ctx->sim_iccid = g_strdup(mm_sim_get_identifier(sim));
	if (g_strcmp0(ctx->sim_imsi, ctx->target->imsi) != 0) {
		a = cp_redact(ctx->sim_imsi);
		b = cp_redact(ctx->target->imsi);
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_IMSI_MISMATCH,
				      "ModemManager reports IMSI %s, not %s", a, b));
		return;
	}
	next(ctx);
}

static void
step_check_imsi(Ctx *ctx)
{
	g_autoptr(MMObject) obj = find_object(ctx->manager, ctx->uid, NULL);

	if (!obj) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem left ModemManager"));
		return;
	}
	mm_modem_get_sim(mm_object_peek_modem(obj), NULL, sim_cb, ctx);
}

/* ---- the flow ---------------------------------------------------------- */

static const char *
step_name(Step s, gboolean back)
{
	switch (s) {
	case STEP_CONNECT: return "connecting to ModemManager";
	case STEP_FIND: return "finding the modem in ModemManager";
	case STEP_READ_APN: return "reading the current APN";
	case STEP_INHIBIT: return "taking the modem from ModemManager (inhibit)";
	case STEP_CARD: return "writing the subscription to the USIM";
	case STEP_CARD_RESTORE: return "writing the old subscription back to the USIM";
	case STEP_UNINHIBIT: return "giving the modem back to ModemManager";
	case STEP_REPROBE: return "waiting for ModemManager to probe the modem";
	case STEP_APN: return back ? "putting the old APN back" : "setting the APN";
	case STEP_ENABLE: return "enabling the modem";
	case STEP_REGISTRATION: return "waiting for registration";
	case STEP_CHECK_IMSI: return "checking the IMSI ModemManager reports";
	}
	return "?";
}

static void
run(Ctx *ctx)
{
	g_autofree char *what = NULL;
	Step s;

	if (ctx->pos == ctx->n_plan) {
		if (ctx->mode == MODE_ROLLBACK || ctx->mode == MODE_RELEASE) {
			if (ctx->mode == MODE_ROLLBACK)
				g_info("the old subscription is back");
			complete(ctx, g_steal_pointer(&ctx->first_error));
		} else {
			complete(ctx, NULL);
		}
		return;
	}
	if (ctx->mode == MODE_RUN && !ctx->written && g_task_get_cancellable(ctx->task) &&
	    g_cancellable_is_cancelled(g_task_get_cancellable(ctx->task))) {
		/* nothing written: fail() gives the modem back first */
		fail(ctx, g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
		return;
	}
	s = ctx->plan[ctx->pos];
	what = g_strdup_printf("%s%s", ctx->mode == MODE_ROLLBACK ? "rollback: " : "",
			       step_name(s, ctx->mode != MODE_RUN || !ctx->target));
	cp_modem_step(ctx->modem, ctx->pos + 1, ctx->n_plan, what);

	switch (s) {
	case STEP_CONNECT:
		g_bus_get(G_BUS_TYPE_SYSTEM, cancellable(ctx), bus_cb, ctx);
		return;
	case STEP_FIND:
		step_find(ctx);
		return;
	case STEP_READ_APN:
		step_read_apn(ctx);
		return;
	case STEP_INHIBIT:
		if (ctx->inhibited) {
			next(ctx);
			return;
		}
		mm_manager_inhibit_device(ctx->manager, ctx->uid, cancellable(ctx), inhibit_cb, ctx);
		return;
	case STEP_CARD:
		step_card(ctx);
		return;
	case STEP_CARD_RESTORE:
		step_card_restore(ctx);
		return;
	case STEP_UNINHIBIT:
		if (!ctx->inhibited) {
			next(ctx);
			return;
		}
		mm_manager_uninhibit_device(ctx->manager, ctx->uid, NULL, uninhibit_cb, ctx);
		return;
	case STEP_REPROBE:
		wait_start(ctx, wait_found, MAX(ctx->modem->registration_timeout, 30), CP_ERR_MODEM_TIMEOUT,
			   g_strdup_printf("ModemManager did not bring the modem back within %u s",
					   MAX(ctx->modem->registration_timeout, 30)));
		return;
	case STEP_APN:
		step_apn(ctx);
		return;
	case STEP_ENABLE:
		step_enable(ctx);
		return;
	case STEP_REGISTRATION:
		step_registration(ctx);
		return;
	case STEP_CHECK_IMSI:
		step_check_imsi(ctx);
		return;
	}
}

static Ctx *
ctx_new(CpModem *modem, GTask *task)
{
	Ctx *ctx = g_new0(Ctx, 1);

	ctx->modem = modem;
	ctx->task = task;
	ctx->ip_type = MM_BEARER_IP_FAMILY_NONE;
	return ctx;
}

static void
mm_provision(CpModem *modem, CpModemTargetCopy *target, GTask *task)
{
	Ctx *ctx = ctx_new(modem, task);

	ctx->target = target;
	start_plan(ctx, MODE_RUN, plan_provision, G_N_ELEMENTS(plan_provision));
}

static void
mm_restore(CpModem *modem, const CpModemBackup *backup, GTask *task)
{
	Ctx *ctx = ctx_new(modem, task);

	ctx->restore_of = backup;
	start_plan(ctx, MODE_RUN, plan_restore, G_N_ELEMENTS(plan_restore));
}

const CpModemBackendOps cp_modem_mm_ops = {
	.name = "mm",
	.provision = mm_provision,
	.restore = mm_restore,
};

/* ---- AUTO: ModemManager if it manages the modem, else QMI direct ------- */

typedef struct {
	char *device;
	GDBusConnection *bus;
	char *uid;
} FindCtx;

static void
find_ctx_free(gpointer data)
{
	FindCtx *f = data;

	g_free(f->device);
	g_clear_object(&f->bus);
	g_free(f->uid);
	g_free(f);
}

static void
find_manager_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	FindCtx *f = g_task_get_task_data(task);
	GError *error = NULL;
	g_autoptr(MMManager) manager = mm_manager_new_finish(res, &error);
	g_autofree char *owner = NULL;
	g_autoptr(MMObject) obj = NULL;

	if (!manager) {
		g_task_return_error(task, mm_error(error, CP_ERR_MODEM, "connecting to ModemManager"));
		return;
	}
	owner = g_dbus_object_manager_client_get_name_owner(G_DBUS_OBJECT_MANAGER_CLIENT(manager));
	if (!owner) {
		g_info("ModemManager is not running");
		g_task_return_boolean(task, FALSE);
		return;
	}
	obj = find_object(manager, NULL, f->device);
	if (!obj) {
		g_info("ModemManager runs but does not manage %s", f->device);
		g_task_return_boolean(task, FALSE);
		return;
	}
	f->uid = g_strdup(mm_modem_get_device(mm_object_peek_modem(obj)));
	g_task_return_boolean(task, TRUE);
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
cp_mm_find_modem_async(const char *device, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	FindCtx *f = g_new0(FindCtx, 1);

	g_task_set_source_tag(task, cp_mm_find_modem_async);
	f->device = g_strdup(device);
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

typedef struct {
	CpModem *modem;
	GTask *task;
	const CpModemBackup *backup;   /* restore; else provisioning */
} AutoCtx;

static void
auto_found_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	AutoCtx *a = data;
	GError *error = NULL;
	gboolean mm = cp_mm_find_modem_finish(res, NULL, &error);

	if (error) {
		g_task_return_error(a->task, error);
		g_free(a);
		return;
	}
	/* not modem->ops: the next operation asks again */
	a->modem->resolved = mm ? &cp_modem_mm_ops : &cp_modem_qmi_ops;
	g_info("modem backend: %s", a->modem->resolved->name);
	if (a->backup)
		a->modem->resolved->restore(a->modem, a->backup, a->task);
	else
		a->modem->resolved->provision(a->modem, g_task_get_task_data(a->task), a->task);
	g_free(a);
}

static void
auto_start(CpModem *modem, const CpModemBackup *backup, GTask *task)
{
	AutoCtx *a = g_new0(AutoCtx, 1);

	a->modem = modem;
	a->task = task;
	a->backup = backup;
	cp_mm_find_modem_async(modem->device, g_task_get_cancellable(task), auto_found_cb, a);
}

static void
auto_provision(CpModem *modem, CpModemTargetCopy *target, GTask *task)
{
	auto_start(modem, NULL, task);
}

static void
auto_restore(CpModem *modem, const CpModemBackup *backup, GTask *task)
{
	auto_start(modem, backup, task);
}

const CpModemBackendOps cp_modem_auto_ops = {
	.name = "auto",
	.provision = auto_provision,
	.restore = auto_restore,
};

gboolean
cp_mm_backend_select(CpModem *modem, CpModemBackendType type, GError **error)
{
	switch (type) {
	case CP_MODEM_BACKEND_MM:
		modem->ops = &cp_modem_mm_ops;
		break;
	case CP_MODEM_BACKEND_AUTO:
		modem->ops = &cp_modem_auto_ops;
		break;
	default:
		cp_set_error(error, CP_ERR_ARGUMENT, "modem: not a ModemManager backend type");
		return FALSE;
	}
	modem->type = type;
	modem->resolved = NULL;
	return TRUE;
}
