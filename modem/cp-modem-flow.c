/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one flow runner. An operation is a plan of steps (cp_card_plan_build):
 * provisioning, the rollback after a failure past the first write and the
 * restore after a crash are three plans over the same steps, each step
 * logged as (n/N) and reported with its phase. The runner calls the
 * driver's two tables (cp-modem-driver.h) for the port and the modem, and
 * the card steps (cp-card.c) for the USIM; it owns the backup hand-over,
 * the cancellation, the registration deadline and the way out (the
 * channel closed, the port closed, a lent modem given back).
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include "cp-buf.h"
#include "cp-modem-flow.h"

static void flow_run(CpModemFlow *f);
static void complete(CpModemFlow *f, GError *error);

/* ---- the plan ---------------------------------------------------------- */

static guint32
driver_steps(const CpModemDriver *d)
{
	const CpModemOps *o = d->ops;
	guint32 have = CP_STEP_BIT(CP_STEP_OPEN_PORT);

#define HAVE(entry, step) \
	if (entry) \
		have |= CP_STEP_BIT(step)
	HAVE(o->open, CP_STEP_OPEN_MODEM);
	HAVE(o->read_apn, CP_STEP_READ_APN);
	HAVE(o->take, CP_STEP_TAKE);
	HAVE(o->give_back, CP_STEP_GIVE_BACK);
	HAVE(o->set_apn, CP_STEP_APN);
	HAVE(o->offline, CP_STEP_OFFLINE);
	HAVE(o->reset, CP_STEP_RESET);
	HAVE(o->registration_start, CP_STEP_REGISTRATION);
#undef HAVE
	return have;
}

static CpModemPhase
step_phase(CpModemFlow *f, CpModemStep s)
{
	if (f->rolling_back)
		return CP_MODEM_PHASE_RESTORING;
	if (f->following)
		return f->follow_phase;
	switch (s) {
	case CP_STEP_WRITE:
	case CP_STEP_CLOSE_CHANNEL:
	case CP_STEP_APN:
		return CP_MODEM_PHASE_WRITING;
	case CP_STEP_OFFLINE:
	case CP_STEP_RESET:
	case CP_STEP_CLOSE_PORT:
	case CP_STEP_GIVE_BACK:
		return CP_MODEM_PHASE_RESETTING;
	case CP_STEP_REGISTRATION:
	case CP_STEP_CHECK_IMSI:
		return CP_MODEM_PHASE_REGISTERING;
	default:
		return CP_MODEM_PHASE_PREPARING;
	}
}

static void
plan_set(CpModemFlow *f, CpPlanKind kind)
{
	f->n_plan = cp_card_plan_build(kind, driver_steps(f->run.driver), f->plan);
	f->pos = 0;
	f->sub = 0;
	f->ef = 0;
}

/* ---- driver results ---------------------------------------------------- */

static void
step_done(CpModemFlow *f, GError *error)
{
	if (error)
		cp_modem_flow_fail(f, error);
	else
		cp_modem_flow_next(f);
}

void
cp_modem_run_done(CpModemRun *run, GError *error)
{
	CpModemFlow *f = cp_modem_flow(run);
	void (*cb)(CpModemFlow *, GError *) = f->on_done ? f->on_done : step_done;

	f->on_done = NULL;
	cb(f, error);
}

void
cp_modem_run_apdu_done(CpModemRun *run, GBytes *response, GError *error)
{
	CpModemFlow *f = cp_modem_flow(run);

	/* a command the modem refused where the card engine can do without
	 * (EF.DIR): an answer without data or SW */
	if (!response && f->apdu_soft && g_error_matches(error, CP_ERROR, CP_ERR_MODEM)) {
		g_info("the modem refused a command: %s", error->message);
		g_error_free(error);
		response = g_bytes_new(NULL, 0);
	}
	if (!response) {
		cp_modem_flow_fail(f, error);
		return;
	}
	g_clear_pointer(&f->resp, g_bytes_unref);
	f->resp = response;
	f->sub++;
	flow_run(f);
}

void
cp_modem_run_set_iccid(CpModemRun *run, const guint8 *ef, gsize len)
{
	CpModemFlow *f = cp_modem_flow(run);

	/* read again by a rollback */
	g_free(f->iccid);
	f->iccid = ef ? cp_usim_iccid_decode(ef, len) : NULL;
}

gboolean
cp_modem_run_set_iccid_digits(CpModemRun *run, const char *digits, GError **error)
{
	CpModemFlow *f = cp_modem_flow(run);
	gsize n = digits ? strlen(digits) : 0;

	/* 18 to 20 digits: TS 102 221 13.2 keeps them in 10 bytes, F padded */
	if (n < 18 || n > 20) {
		g_set_error(error, CP_ERROR, CP_ERR_MODEM, "the modem reported an ICCID of %zu digits", n);
		return FALSE;
	}
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isdigit(digits[i])) {
			g_set_error_literal(error, CP_ERROR, CP_ERR_MODEM,
					    "the modem reported an ICCID that is not digits");
			return FALSE;
		}
	g_free(f->iccid);
	f->iccid = g_strdup(digits);
	return TRUE;
}

void
cp_modem_run_set_applications(CpModemRun *run, const guint8 *usim, gsize usim_len,
			      const guint8 *isim, gsize isim_len)
{
	CpModemFlow *f = cp_modem_flow(run);

	/* asked again after a reset: the list of the card there is now */
	f->modem_aid_len = usim && usim_len <= sizeof(f->modem_aid) ? usim_len : 0;
	if (f->modem_aid_len)
		memcpy(f->modem_aid, usim, usim_len);
	f->modem_isim_aid_len = isim && isim_len <= sizeof(f->modem_isim_aid) ? isim_len : 0;
	if (f->modem_isim_aid_len)
		memcpy(f->modem_isim_aid, isim, isim_len);
}

void
cp_modem_run_set_channel(CpModemRun *run, guint channel)
{
	CpModemFlow *f = cp_modem_flow(run);

	f->channel = channel;
	f->channel_open = TRUE;
}

void
cp_modem_run_set_old_apn(CpModemRun *run, gboolean have, guint index, const char *apn)
{
	CpModemFlow *f = cp_modem_flow(run);

	f->have_profile = have;
	f->profile_index = have ? index : 0;
	g_free(f->old_apn);
	f->old_apn = g_strdup(have && apn ? apn : "");
}

void
cp_modem_run_set_imsi(CpModemRun *run, const char *imsi)
{
	CpModemFlow *f = cp_modem_flow(run);

	g_free(f->modem_imsi);
	f->modem_imsi = g_strdup(imsi);
	f->imsi_read = TRUE;
}

void
cp_modem_run_set_firmware(CpModemRun *run, const char *revision)
{
	CpModemFlow *f = cp_modem_flow(run);

	if (f->probe) {
		g_free(f->probe->firmware);
		f->probe->firmware = g_strdup(revision);
	}
}

void
cp_modem_run_set_atr(CpModemRun *run, const guint8 *atr, gsize len)
{
	CpModemFlow *f = cp_modem_flow(run);

	if (f->probe) {
		g_free(f->probe->atr);
		f->probe->atr = cp_hex_strdup(atr, len);
	}
}

void
cp_modem_run_gone(CpModemRun *run)
{
	g_message("the modem's port went away");
	run->gone = TRUE;
	g_cancellable_cancel(run->cancellable);
}

gboolean
cp_modem_run_restoring(CpModemRun *run)
{
	CpModemFlow *f = cp_modem_flow(run);

	return f->rolling_back || f->restore_of;
}

const CpModemBackup *
cp_modem_run_values(CpModemRun *run)
{
	CpModemFlow *f = cp_modem_flow(run);

	return f->restore_of ? f->restore_of : f->backup;
}

guint16
cp_modem_flow_sw(CpModemFlow *f)
{
	gsize len = 0;
	const guint8 *d = f->resp ? g_bytes_get_data(f->resp, &len) : NULL;

	return d ? cp_usim_sw(d, len) : 0;
}

void
cp_modem_flow_transmit(CpModemFlow *f, const guint8 *apdu, gsize len)
{
	f->run.driver->transport->transmit(&f->run, f->channel, apdu, len);
}

/* ---- the way out ------------------------------------------------------- */

static void
backup_wait_stop(CpModemFlow *f)
{
	if (!f->backup_wait)
		return;
	g_source_destroy(f->backup_wait);
	g_clear_pointer(&f->backup_wait, g_source_unref);
}

/* ---- the drivers' registration requests -------------------------------- */

struct _CpModemRegRequest {
	CpModemRun *run;                 /* NULL: abandoned */
	GCancellable *cancellable;
};

CpModemRegRequest *
cp_modem_run_reg_request(CpModemRun *run)
{
	CpModemFlow *f = cp_modem_flow(run);

	if (f->reg_request)
		return NULL;
	f->reg_request = g_new0(CpModemRegRequest, 1);
	f->reg_request->run = run;
	f->reg_request->cancellable = g_cancellable_new();
	return f->reg_request;
}

GCancellable *
cp_modem_reg_request_cancellable(CpModemRegRequest *req)
{
	return req->cancellable;
}

CpModemRun *
cp_modem_reg_request_run(CpModemRegRequest *req)
{
	return req->run;
}

CpModemRun *
cp_modem_reg_request_end(CpModemRegRequest *req)
{
	CpModemRun *run = req->run;

	if (run)
		cp_modem_flow(run)->reg_request = NULL;
	g_object_unref(req->cancellable);
	g_free(req);
	return run;
}

/* The request's callback frees it. */
static void
reg_request_abandon(CpModemFlow *f)
{
	CpModemRegRequest *req = f->reg_request;

	if (!req)
		return;
	f->reg_request = NULL;
	req->run = NULL;
	g_cancellable_cancel(req->cancellable);
}

static void
registration_stop(CpModemFlow *f)
{
	if (!f->waiting)
		return;
	f->waiting = FALSE;
	if (f->deadline_id)
		g_source_remove(f->deadline_id);
	f->deadline_id = 0;
	if (f->run.driver->ops->registration_stop)
		f->run.driver->ops->registration_stop(&f->run);
	reg_request_abandon(f);
}

static void
port_close(CpModemFlow *f)
{
	if (f->port_open)
		f->run.driver->transport->close(&f->run);
	reg_request_abandon(f);
	f->port_open = FALSE;
	f->channel = 0;
	f->channel_open = FALSE;
}

static void
flow_free(CpModemFlow *f)
{
	backup_wait_stop(f);
	reg_request_abandon(f);
	if (f->retry_id)
		g_source_remove(f->retry_id);
	if (f->user_cancel_id)
		g_cancellable_disconnect(g_task_get_cancellable(f->task), f->user_cancel_id);
	g_clear_object(&f->run.cancellable);
	g_clear_pointer(&f->resp, g_bytes_unref);
	g_clear_pointer(&f->backup, cp_modem_backup_free);
	g_clear_pointer(&f->probe, cp_modem_probe_free);
	g_clear_error(&f->first_error);
	g_free(f->iccid);
	g_free(f->iccid_before);
	g_free(f->run.device);
	g_free(f->old_apn);
	g_free(f->reg_plmn);
	g_free(f->reg_name);
	g_free(f->modem_imsi);
	g_clear_object(&f->task);
	g_free(f);
}

/* Teardown, synchronous and best effort: the port may be gone already. */
static void
stop_all(CpModemFlow *f)
{
	registration_stop(f);
	backup_wait_stop(f);
	if (f->retry_id)
		g_source_remove(f->retry_id);
	f->retry_id = 0;
	f->on_done = NULL;
}

/* The way out is not cut short by a cancellation that stopped the way in. */
static void
uncancel(CpModemFlow *f)
{
	if (!g_cancellable_is_cancelled(f->run.cancellable))
		return;
	g_clear_object(&f->run.cancellable);
	f->run.cancellable = g_cancellable_new();
}

static void
given_back(CpModemFlow *f, GError *error)
{
	if (error) {
		g_warning("could not give the modem back to its manager: %s", error->message);
		g_error_free(error);
	}
	f->taken = FALSE;
	complete(f, g_steal_pointer(&f->end_error));
}

static void
closed_at_end(CpModemFlow *f, GError *error)
{
	if (error)
		g_debug("closing the logical channel: %s", error->message);
	g_clear_error(&error);
	f->channel_open = FALSE;
	f->channel = 0;
	complete(f, g_steal_pointer(&f->end_error));
}

/*
 * The end of the operation. A channel left open is closed first (the card
 * has only three, and a modem need not close them when our client goes);
 * a lent modem is given back (a wrong ADM1 must not leave a gateway without
 * its modem); then the result.
 */
static void
complete(CpModemFlow *f, GError *error)
{
	const CpModemDriver *d = f->run.driver;

	stop_all(f);
	f->end_error = error;
	if (f->channel_open && f->port_open && !f->run.gone && d->transport->close_channel) {
		uncancel(f);
		f->on_done = closed_at_end;
		d->transport->close_channel(&f->run, f->channel);
		return;
	}
	port_close(f);
	if (f->taken) {
		uncancel(f);
		f->on_done = given_back;
		d->ops->give_back(&f->run);
		return;
	}
	error = g_steal_pointer(&f->end_error);
	if (f->modem_open && d->ops->close)
		d->ops->close(&f->run);
	f->modem_open = FALSE;
	if (f->probe) {
		/* a probe reports what it saw, and where it stopped */
		CpModemProbe *p = g_steal_pointer(&f->probe);

		if (error)
			p->error = g_strdup(error->message);
		g_clear_error(&error);
		p->iccid = g_strdup(f->iccid);
		if (f->aid_len)
			p->usim_aid = cp_hex_strdup(f->aid, f->aid_len);
		if (f->isim_aid_len)
			p->isim_aid = cp_hex_strdup(f->isim_aid, f->isim_aid_len);
		g_task_return_pointer(f->task, p, (GDestroyNotify)cp_modem_probe_free);
	} else if (error) {
		g_task_return_error(f->task, error);
	} else if (f->run.target) {
		CpModemResult *r = g_new0(CpModemResult, 1);

		r->registered_plmn = g_steal_pointer(&f->reg_plmn);
		r->operator_name = g_steal_pointer(&f->reg_name);
		r->imsi = g_steal_pointer(&f->modem_imsi);
		r->iccid = g_strdup(f->iccid);
		g_task_return_pointer(f->task, r, (GDestroyNotify)cp_modem_result_free);
	} else {
		g_task_return_boolean(f->task, TRUE);
	}
	flow_free(f);
}

static void
rollback_begin(CpModemFlow *f)
{
	/* a fresh port, as after a restart: the old one may be half gone */
	port_close(f);
	f->run.gone = FALSE;
	g_clear_object(&f->run.cancellable);
	f->run.cancellable = g_cancellable_new();
	plan_set(f, CP_PLAN_ROLLBACK);
	flow_run(f);
}

static void
closed_for_rollback(CpModemFlow *f, GError *error)
{
	if (error)
		g_debug("closing the logical channel: %s", error->message);
	g_clear_error(&error);
	f->channel_open = FALSE;
	rollback_begin(f);
}

static void
start_rollback(CpModemFlow *f, GError *error)
{
	const CpModemDriver *d = f->run.driver;

	g_message("step failed after the first write: %s; rolling back", error->message);
	stop_all(f);
	f->first_error = error;
	f->rolling_back = TRUE;
	if (f->channel_open && f->port_open && !f->run.gone && d->transport->close_channel) {
		uncancel(f);
		f->on_done = closed_for_rollback;
		d->transport->close_channel(&f->run, f->channel);
		return;
	}
	rollback_begin(f);
}

static void follow_begin(CpModemFlow *f, GError *error);
static gboolean start_again(CpModemFlow *f, GError *error);

void
cp_modem_flow_fail(CpModemFlow *f, GError *error)
{
	gboolean gone = f->run.gone || g_error_matches(error, CP_ERROR, CP_ERR_MODEM_GONE);
	/* the wait for the port itself ran out: that is final */
	gboolean waited = f->pos < f->n_plan && f->plan[f->pos] == CP_STEP_OPEN_PORT;

	if (gone && !waited && (f->reset_sent || f->following) && f->reopens < CP_MODEM_MAX_REOPENS) {
		follow_begin(f, error);
		return;
	}
	if (gone && start_again(f, error))
		return;
	if (f->run.gone && !g_error_matches(error, CP_ERROR, CP_ERR_MODEM_GONE)) {
		g_clear_error(&error);
		error = g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem went away");
	}
	if (gone && !waited && f->rolling_back && !f->rollback_writing && f->reopens < CP_MODEM_MAX_REOPENS) {
		/* the way back opened the port of a module about to drop off
		 * the bus: nothing written yet, wait for it and begin again */
		g_message("the modem went away before the rollback wrote (%s): waiting for it", error->message);
		g_error_free(error);
		f->reopens++;
		stop_all(f);
		rollback_begin(f);
		return;
	}
	if (f->rolling_back) {
		GError *e = g_error_new(CP_ERROR, CP_ERR_ROLLBACK,
					"the old subscription could not be put back (%s) after: %s",
					error->message, f->first_error->message);

		g_error_free(error);
		complete(f, e);
		return;
	}
	if (f->written && f->run.target) {
		start_rollback(f, error);
		return;
	}
	complete(f, error);
}

void
cp_modem_flow_next(CpModemFlow *f)
{
	f->pos++;
	f->sub = 0;
	f->ef = 0;
	flow_run(f);
}

void
cp_modem_flow_again(CpModemFlow *f)
{
	flow_run(f);
}

/* ---- steps the runner does itself --------------------------------------- */

static void
user_cancelled_cb(GCancellable *c, gpointer data)
{
	CpModemFlow *f = data;

	/* The way back is not cancellable: a rollback or a restore stopped
	 * half-way would leave a card that neither subscription works with. */
	if (f->rolling_back || (!f->run.target && f->written))
		return;
	g_cancellable_cancel(f->run.cancellable);
}

static gboolean
card_retry_cb(gpointer data)
{
	CpModemFlow *f = data;

	f->retry_id = 0;
	flow_run(f);
	return G_SOURCE_REMOVE;
}

/* A modem that has just started (after our own reset, or a rollback's)
 * answers "not ready", or shows the card before its USIM application,
 * for a while: ask again until the request timeout has passed. */
static void
card_status_done(CpModemFlow *f, GError *error)
{
	if (g_error_matches(error, CP_ERROR, CP_ERR_CARD_ABSENT) && !f->run.gone &&
	    g_get_monotonic_time() < f->card_deadline) {
		g_error_free(error);
		f->sub++;
		f->retry_id = g_timeout_add(200, card_retry_cb, f);
		return;
	}
	step_done(f, error);
}

void
cp_modem_flow_check_iccid(CpModemFlow *f)
{
	const CpModemBackup *b = cp_modem_run_values(&f->run);

	/* the ICCID is what ties a backup to its card */
	if (!f->iccid) {
		cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT,
						  "the card's ICCID cannot be read"));
		return;
	}
	if (f->following) {
		f->following = FALSE;
		if (g_strcmp0(f->iccid, f->iccid_before) != 0) {
			g_autofree char *x = cp_redact(f->iccid), *y = cp_redact(f->iccid_before);

			cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT,
							  "the modem came back with another card (ICCID %s, not %s)",
							  x, y));
			return;
		}
		g_message("the modem is back, with the same card");
	}
	if (cp_modem_run_restoring(&f->run) && g_strcmp0(f->iccid, b->iccid) != 0) {
		g_autofree char *x = cp_redact(f->iccid), *y = cp_redact(b->iccid);

		cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_ROLLBACK,
						  "the card (ICCID %s) is not the one the backup was taken from (%s)",
						  x, y));
		return;
	}
	cp_modem_flow_next(f);
}

static void
iccid_done(CpModemFlow *f, GError *error)
{
	if (error)
		cp_modem_flow_fail(f, error);
	else
		cp_modem_flow_check_iccid(f);
}

static void
channel_closed(CpModemFlow *f, GError *error)
{
	if (!error) {
		f->channel = 0;
		f->channel_open = FALSE;
	}
	step_done(f, error);
}

static void
backup_saved(gpointer data, const GError *error)
{
	CpModemFlow *f = data;

	backup_wait_stop(f);
	if (error) {
		cp_modem_flow_fail(f, g_error_copy(error));
		return;
	}
	if (g_cancellable_is_cancelled(f->run.cancellable)) {
		cp_modem_flow_fail(f, g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
		return;
	}
	cp_modem_flow_next(f);
}

/* Cancelled, or the modem went away, while the caller saves the backup:
 * nothing is written yet, so the flow stops without waiting for it. */
static gboolean
backup_wait_cancelled_cb(GCancellable *c, gpointer data)
{
	CpModemFlow *f = data;
	CpModem *m = f->run.modem;

	g_clear_pointer(&f->backup_wait, g_source_unref);
	if (m->backup_saved == backup_saved && m->backup_saved_data == f) {
		m->backup_saved = NULL;
		m->backup_saved_data = NULL;
	}
	cp_modem_flow_fail(f, f->run.gone ? g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem went away")
					  : g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
	return G_SOURCE_REMOVE;
}

static void
step_backup(CpModemFlow *f)
{
	CpModem *m = f->run.modem;

	if (f->run.driver->ops->read_apn) {
		f->backup->have_apn = TRUE;
		f->backup->profile_index = (guint8)f->profile_index;
		f->backup->apn = g_strdup(f->old_apn ? f->old_apn : "");
	}
	f->backup_handed = TRUE;
	if (!m->backup) {
		cp_modem_flow_next(f);
		return;
	}
	f->backup_wait = g_cancellable_source_new(f->run.cancellable);
	g_source_set_callback(f->backup_wait, G_SOURCE_FUNC(backup_wait_cancelled_cb), f, NULL);
	g_source_attach(f->backup_wait, g_task_get_context(f->task));
	m->backup_saved = backup_saved;
	m->backup_saved_data = f;
	m->backup(m, f->backup, m->user_data);
}

static void
step_apn(CpModemFlow *f)
{
	const CpModemBackup *b = cp_modem_run_values(&f->run);

	f->written = TRUE;
	if (!cp_modem_run_restoring(&f->run)) {
		f->run.driver->ops->set_apn(&f->run, f->have_profile ? f->profile_index : 0,
					    f->run.target->apn);
		return;
	}
	if (!b->have_apn || b->profile_index == 0) {
		/* nothing to put back (a profile we created stays, harmless) */
		cp_modem_flow_next(f);
		return;
	}
	f->run.driver->ops->set_apn(&f->run, b->profile_index, b->apn);
}

static void
taken(CpModemFlow *f, GError *error)
{
	if (!error)
		f->taken = TRUE;
	step_done(f, error);
}

static void
returned(CpModemFlow *f, GError *error)
{
	if (!error)
		f->taken = FALSE;
	step_done(f, error);
}

/* Registration: the modem reports, the runner decides. */
static void
registration_end(CpModemFlow *f, GError *error)
{
	registration_stop(f);
	f->on_done = NULL;
	step_done(f, error);
}

static void
registration_failed(CpModemFlow *f, GError *error)
{
	if (!f->waiting) {
		g_clear_error(&error);
		return;
	}
	registration_end(f, error ? error : g_error_new(CP_ERROR, CP_ERR_MODEM, "registration ended"));
}

void
cp_modem_run_registration(CpModemRun *run, CpModemRegState state, const char *plmn,
			  const char *operator_name)
{
	CpModemFlow *f = cp_modem_flow(run);

	if (!f->waiting)
		return;
	if (state == CP_MODEM_REG_DENIED) {
		registration_end(f, g_error_new(CP_ERROR, CP_ERR_REG_DENIED, "the network denied registration"));
		return;
	}
	if (state != CP_MODEM_REG_REGISTERED || !plmn)
		return;
	if (g_strcmp0(plmn, run->target->plmn) != 0) {
		g_info("registered on %s, waiting for %s", plmn, run->target->plmn);
		return;
	}
	g_free(f->reg_plmn);
	f->reg_plmn = g_strdup(plmn);
	g_free(f->reg_name);
	f->reg_name = g_strdup(operator_name);
	g_info("registered on %s (%s)", f->reg_plmn, operator_name ? operator_name : "");
	registration_end(f, NULL);
}

static gboolean
deadline_cb(gpointer data)
{
	CpModemFlow *f = data;

	f->deadline_id = 0;
	registration_end(f, g_error_new(CP_ERROR, CP_ERR_REG_TIMEOUT, "no registration on %s within %u s",
					f->run.target->plmn, f->run.modem->registration_timeout));
	return G_SOURCE_REMOVE;
}

static void
step_registration(CpModemFlow *f)
{
	f->waiting = TRUE;
	f->deadline_id = g_timeout_add_seconds(f->run.modem->registration_timeout, deadline_cb, f);
	f->on_done = registration_failed;
	f->run.driver->ops->registration_start(&f->run);
}

void
cp_modem_flow_check_imsi(CpModemFlow *f)
{
	const char *want;

	if (f->probe) {
		cp_modem_flow_next(f);
		return;
	}
	want = f->run.target->imsi;

	if (g_strcmp0(f->modem_imsi, want) != 0) {
		g_autofree char *a = cp_redact(f->modem_imsi), *b = cp_redact(want);

		cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_IMSI_MISMATCH,
						  "the modem reports IMSI %s, not %s", a, b));
		return;
	}
	cp_modem_flow_next(f);
}

static void
imsi_done(CpModemFlow *f, GError *error)
{
	if (f->probe) {
		/* whether the modem says, not what */
		f->probe->imsi_by_modem = !error && f->imsi_read;
		f->probe->imsi_error = error ? g_strdup(error->message) :
				       f->imsi_read ? NULL : g_strdup("the modem does not report its IMSI");
		g_clear_error(&error);
		cp_modem_flow_next(f);
		return;
	}
	if (error) {
		cp_modem_flow_fail(f, error);
		return;
	}
	if (f->imsi_read) {
		cp_modem_flow_check_imsi(f);
		return;
	}
	if (!f->port_open) {
		cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_MODEM, "the modem does not report its IMSI"));
		return;
	}
	g_info("the modem does not report its IMSI: reading EF.IMSI");
	f->imsi_by_card = TRUE;
	f->sub = 0;
	cp_card_read_imsi(f);
}

static void
step_check_imsi(CpModemFlow *f)
{
	const CpModemOps *o = f->run.driver->ops;

	if (f->probe && !o->read_imsi) {
		f->probe->imsi_error = g_strdup("the modem has no IMSI request");
		cp_modem_flow_next(f);
		return;
	}
	if (f->imsi_by_card || !o->read_imsi) {
		f->imsi_by_card = TRUE;
		cp_card_read_imsi(f);
		return;
	}
	f->on_done = imsi_done;
	o->read_imsi(&f->run);
}

/* ---- a probe's questions to the modem ------------------------------------ */

#define NOT_AVAILABLE "not available through this modem"

/* A refusal is a fact to report; a port gone or a cancel ends the probe. */
static gboolean
info_failed(CpModemFlow *f, GError *error, char **out)
{
	if (!error)
		return FALSE;
	if (f->run.gone || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		cp_modem_flow_fail(f, error);
		return TRUE;
	}
	*out = g_strdup(error->message);
	g_error_free(error);
	return FALSE;
}

static void
firmware_done(CpModemFlow *f, GError *error)
{
	if (info_failed(f, error, &f->probe->firmware_error))
		return;
	if (!f->probe->firmware && !f->probe->firmware_error)
		f->probe->firmware_error = g_strdup("the modem gave none");
	f->sub = 1;
	cp_modem_flow_again(f);
}

static void
atr_done(CpModemFlow *f, GError *error)
{
	if (info_failed(f, error, &f->probe->atr_error))
		return;
	if (!f->probe->atr && !f->probe->atr_error)
		f->probe->atr_error = g_strdup("the modem gave none");
	cp_modem_flow_next(f);
}

/* The firmware revision (sub 0), then the ATR (sub 1): an entry the
 * driver left NULL is reported as not available. */
static void
step_modem_info(CpModemFlow *f)
{
	const CpModemDriver *d = f->run.driver;

	if (f->sub == 0) {
		if (!d->ops->read_firmware) {
			f->probe->firmware_error = g_strdup(NOT_AVAILABLE);
			f->sub = 1;
		} else {
			f->on_done = firmware_done;
			d->ops->read_firmware(&f->run);
			return;
		}
	}
	if (!d->transport->read_atr) {
		f->probe->atr_error = g_strdup(NOT_AVAILABLE);
		cp_modem_flow_next(f);
		return;
	}
	f->on_done = atr_done;
	d->transport->read_atr(&f->run);
}

/* ---- a module that re-enumerates ---------------------------------------- */

/*
 * A USB module's reset reboots it: the port goes away once the reset is
 * answered and returns seconds later, often under another name. The
 * port is found again by its USB device and interface (cp-modem-port.h),
 * or, where sysfs does not know it (a pty), at the configured path.
 */
static char *
port_locate(CpModemFlow *f)
{
	CpModem *m = f->run.modem;

	if (m->port_id)
		return cp_port_id_find(m->port_id, m->sysfs);
	return g_strdup(m->device);
}

static gboolean
port_waited_enough(CpModemFlow *f)
{
	GCancellable *user = g_task_get_cancellable(f->task);

	if (g_get_monotonic_time() >= f->port_deadline)
		return TRUE;
	/* a provisioning cancelled while the module reboots rolls back */
	return !f->rolling_back && f->run.target && user && g_cancellable_is_cancelled(user);
}

static gboolean
port_retry_cb(gpointer data)
{
	CpModemFlow *f = data;

	f->retry_id = 0;
	flow_run(f);
	return G_SOURCE_REMOVE;
}

static void
port_retry(CpModemFlow *f)
{
	f->sub++;
	f->retry_id = g_timeout_add(200, port_retry_cb, f);
}

static void
port_opened(CpModemFlow *f, GError *error)
{
	if (error && (f->run.gone || !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) &&
	    !port_waited_enough(f)) {
		/* not there, or there but not answering yet (a module still
		 * starting, or one that drops off the bus as it is opened) */
		if (f->sub == 0)
			g_message("waiting up to %u s for the modem's port at %s (%s)",
				  f->run.modem->reenumerate_timeout, f->run.device, error->message);
		else
			g_debug("the port does not open yet: %s", error->message);
		g_error_free(error);
		port_close(f);
		f->run.gone = FALSE;
		uncancel(f);
		port_retry(f);
		return;
	}
	if (error && f->sub > 0 && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		/* awaited, and not back: say so, whatever the last try met */
		GError *e = g_error_new(CP_ERROR, CP_ERR_MODEM_GONE,
					"the modem's port did not come back within %u s (%s)",
					f->run.modem->reenumerate_timeout, error->message);

		g_error_free(error);
		error = e;
	}
	step_done(f, error);
}

static void
step_open_port(CpModemFlow *f)
{
	CpModem *m = f->run.modem;
	g_autofree char *path = port_locate(f);

	if (f->sub == 0)
		f->port_deadline = g_get_monotonic_time() + (gint64)m->reenumerate_timeout * G_USEC_PER_SEC;
	/* The port may be gone a while, at any open: after our reset, and at
	 * the start of an operation, which may begin while the module
	 * reboots (a rollback's reset a moment ago, a restore after a crash,
	 * a power cycle). Before the first write the wait costs only time. */
	if (!path) {
		if (!port_waited_enough(f)) {
			if (f->sub == 0)
				g_message("waiting up to %u s for the modem's port (%s)", m->reenumerate_timeout,
					  cp_port_id_describe(m->port_id));
			port_retry(f);
			return;
		}
		cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE,
						  "the modem's port (%s) did not come back within %u s",
						  cp_port_id_describe(m->port_id), m->reenumerate_timeout));
		return;
	}
	if (g_strcmp0(path, f->run.device) != 0) {
		g_message("the modem's port is now %s", path);
		g_free(f->run.device);
		f->run.device = g_steal_pointer(&path);
	}
	f->port_open = TRUE;
	f->on_done = port_opened;
	f->run.driver->transport->open(&f->run);
}

/* The port went away after the reset: open it again where it comes back,
 * check the card is the one written, and go on where the flow was. */
static void
follow_begin(CpModemFlow *f, GError *error)
{
	static const CpModemStep reopen[] = { CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_ICCID };
	guint at = f->pos;

	g_message("the modem went away after its reset (%s): following it", error->message);
	g_error_free(error);
	stop_all(f);
	f->reset_sent = FALSE;
	f->reopens++;
	port_close(f);
	f->run.gone = FALSE;
	g_clear_object(&f->run.cancellable);
	f->run.cancellable = g_cancellable_new();
	if (f->following) {
		/* gone again while reopening (it answered once more before it
		 * dropped off the bus): from the port again */
		f->pos = f->follow_at;
		f->sub = 0;
		f->ef = 0;
		flow_run(f);
		return;
	}
	/* the reset's own answer may be what was lost */
	if (f->plan[at] == CP_STEP_RESET)
		at++;
	memmove(&f->plan[at + G_N_ELEMENTS(reopen)], &f->plan[at], (f->n_plan - at) * sizeof(f->plan[0]));
	memcpy(&f->plan[at], reopen, sizeof(reopen));
	f->n_plan += G_N_ELEMENTS(reopen);
	g_free(f->iccid_before);
	f->iccid_before = g_strdup(f->iccid);
	/* the reopening carries the phase of what it resumes (the phases
	 * the daemon journals never go back) */
	f->follow_phase = at + G_N_ELEMENTS(reopen) < f->n_plan ?
			  step_phase(f, f->plan[at + G_N_ELEMENTS(reopen)]) : CP_MODEM_PHASE_RESETTING;
	f->following = TRUE;
	f->follow_at = at;
	f->pos = at;
	f->sub = 0;
	f->ef = 0;
	flow_run(f);
}

/*
 * The port went away before anything was written or handed over: a
 * module that was reset a moment ago (the rollback of the operation
 * before, another program) and answered once more before it dropped off
 * the bus. Start again once, from the port, when it is back; nothing
 * has changed on the card. Not for a lent modem (its manager follows).
 */
static gboolean
start_again(CpModemFlow *f, GError *error)
{
	CpModemStep s = f->plan[f->pos];

	if (f->started_again || f->written || f->rolling_back || f->backup_handed ||
	    f->run.driver->ops->take || g_cancellable_is_cancelled(g_task_get_cancellable(f->task)) ||
	    s == CP_STEP_OPEN_PORT)
		return FALSE;
	g_message("the modem went away before anything was written (%s): starting again when it is back",
		  error->message);
	g_error_free(error);
	stop_all(f);
	port_close(f);
	f->run.gone = FALSE;
	g_clear_object(&f->run.cancellable);
	f->run.cancellable = g_cancellable_new();
	f->started_again = TRUE;
	plan_set(f, f->run.target ? CP_PLAN_PROVISION : CP_PLAN_RESTORE);
	flow_run(f);
	return TRUE;
}

/* A reset that re-enumerates is followed only while the port is the
 * flow's own to the end: a lent modem's port closes after the reset and
 * its manager sees the module come back. */
static void
step_reset(CpModemFlow *f)
{
	gboolean owned = f->port_open && !f->rolling_back && f->run.target;

	for (guint i = f->pos + 1; owned && i < f->n_plan; i++)
		if (f->plan[i] == CP_STEP_CLOSE_PORT)
			owned = FALSE;
	f->reset_sent = owned;
	f->run.driver->ops->reset(&f->run);
}

/* ---- the flow ---------------------------------------------------------- */

static void
flow_run(CpModemFlow *f)
{
	CpModem *m = f->run.modem;
	const CpCardTransport *t = f->run.driver->transport;
	const CpModemOps *o = f->run.driver->ops;
	CpModemStep s;

	if (f->pos == f->n_plan) {
		if (f->rolling_back) {
			g_info("the old subscription is back");
			complete(f, g_steal_pointer(&f->first_error));
		} else {
			complete(f, NULL);
		}
		return;
	}
	if (g_cancellable_is_cancelled(f->run.cancellable) && !f->rolling_back) {
		cp_modem_flow_fail(f, f->run.gone ? g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem went away")
						  : g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
		return;
	}
	s = f->plan[f->pos];
	if (f->sub == 0 && f->ef == 0 && !f->imsi_by_card) {
		g_autofree char *what = g_strdup_printf("%s%s", f->rolling_back ? "rollback: " : "",
							cp_card_step_name(s, cp_modem_run_restoring(&f->run)));

		cp_modem_step(m, step_phase(f, s), f->pos + 1, f->n_plan, what);
	}

	switch (s) {
	case CP_STEP_OPEN_MODEM:
		f->modem_open = TRUE;
		o->open(&f->run);
		return;
	case CP_STEP_READ_APN:
		o->read_apn(&f->run);
		return;
	case CP_STEP_TAKE:
		if (f->taken) {
			cp_modem_flow_next(f);
			return;
		}
		f->on_done = taken;
		o->take(&f->run);
		return;
	case CP_STEP_OPEN_PORT:
		step_open_port(f);
		return;
	case CP_STEP_CARD_STATUS:
		if (f->sub == 0)
			f->card_deadline = g_get_monotonic_time() + (gint64)m->request_timeout * G_USEC_PER_SEC;
		f->on_done = card_status_done;
		t->card_status(&f->run);
		return;
	case CP_STEP_ICCID:
		if (t->read_iccid) {
			f->on_done = iccid_done;
			t->read_iccid(&f->run);
		} else {
			cp_card_read_iccid(f);
		}
		return;
	case CP_STEP_OPEN_CHANNEL:
		cp_card_open_usim(f);
		return;
	case CP_STEP_IDENTIFY:
		cp_card_identify(f);
		return;
	case CP_STEP_VERIFY_ADM1:
		cp_card_verify_adm1(f);
		return;
	case CP_STEP_READ_OLD:
		cp_card_read_old(f);
		return;
	case CP_STEP_BACKUP:
		step_backup(f);
		return;
	case CP_STEP_WRITE:
		f->rollback_writing = f->rolling_back;
		cp_card_write(f);
		return;
	case CP_STEP_CLOSE_CHANNEL:
		if (!f->channel_open || !t->close_channel) {
			f->channel = 0;
			cp_modem_flow_next(f);
			return;
		}
		f->on_done = channel_closed;
		t->close_channel(&f->run, f->channel);
		return;
	case CP_STEP_APN:
		step_apn(f);
		return;
	case CP_STEP_OFFLINE:
		if (m->reset == CP_MODEM_RESET_USER) {
			cp_modem_flow_next(f);
			return;
		}
		o->offline(&f->run);
		return;
	case CP_STEP_RESET:
		if (m->reset == CP_MODEM_RESET_USER) {
			g_info("waiting for the modem to be reset by someone else");
			cp_modem_flow_next(f);
			return;
		}
		step_reset(f);
		return;
	case CP_STEP_CLOSE_PORT:
		port_close(f);
		cp_modem_flow_next(f);
		return;
	case CP_STEP_GIVE_BACK:
		f->on_done = returned;
		o->give_back(&f->run);
		return;
	case CP_STEP_REGISTRATION:
		step_registration(f);
		return;
	case CP_STEP_CHECK_IMSI:
		step_check_imsi(f);
		return;
	case CP_STEP_PROBE:
		cp_card_probe(f);
		return;
	case CP_STEP_MODEM_INFO:
		step_modem_info(f);
		return;
	case CP_N_STEPS:
		break;
	}
	g_assert_not_reached();
}

void
cp_modem_flow_start(CpModem *modem, const CpModemDriver *driver, GTask *task,
		    CpModemTargetCopy *target, const CpModemBackup *restore_of)
{
	CpModemFlow *f = g_new0(CpModemFlow, 1);
	GCancellable *user = g_task_get_cancellable(task);

	f->cur_ef = -1;
	f->run.modem = modem;
	f->run.driver = driver;
	f->run.target = target;
	f->run.proxy = modem->proxy || driver->proxy;
	/* the module's physical place, kept for the operations after it (a
	 * restore from a failed provisioning's callback finds the module
	 * under its new name) */
	if (!modem->port_id || g_file_test(modem->device, G_FILE_TEST_EXISTS)) {
		CpPortId *id = cp_port_id_resolve(modem->sysfs, modem->device);

		if (id) {
			cp_port_id_free(modem->port_id);
			modem->port_id = id;
		}
	}
	f->run.device = g_strdup(modem->device);
	f->run.cancellable = g_cancellable_new();
	f->task = task;
	f->restore_of = restore_of;
	if (user)
		f->user_cancel_id = g_cancellable_connect(user, G_CALLBACK(user_cancelled_cb), f, NULL);
	if (target)
		f->backup = cp_modem_backup_new();
	if (!target && !restore_of) {
		f->probe = g_new0(CpModemProbe, 1);
		f->probe->backend = g_strdup(driver->name);
		f->probe->adm1_left = -1;
		f->probe->can_reset = driver->ops->reset != NULL;
	}
	plan_set(f, target ? CP_PLAN_PROVISION : restore_of ? CP_PLAN_RESTORE : CP_PLAN_PROBE);
	flow_run(f);
}
