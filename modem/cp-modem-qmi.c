/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QMI backend: libqmi's async API, the port opened directly or through
 * qmi-proxy, the card reached on a logical channel (cp-qmi-uim-raw), the
 * card's layout from its driver (cp-usim).
 *
 * One flow runs a plan (a list of steps); provisioning, the rollback after
 * a failed provisioning and the restore after a crash are three plans over
 * the same steps. Each step is logged as (n/N).
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include "cp-modem-private.h"
#include "cp-modem-qmi.h"
#include "cp-qmi-uim-raw.h"

typedef enum {
	STEP_OPEN,
	STEP_CLIENTS,
	STEP_CARD_STATUS,
	STEP_ICCID,
	STEP_OPEN_CHANNEL,
	STEP_IDENTIFY,
	STEP_VERIFY_ADM1,
	STEP_READ_OLD,
	STEP_READ_APN,
	STEP_BACKUP,
	STEP_WRITE,
	STEP_CLOSE_CHANNEL,
	STEP_APN,
	STEP_OFFLINE,
	STEP_RESET,
	STEP_REGISTRATION,
	STEP_CHECK_IMSI,
} Step;

static const Step plan_provision[] = {
	STEP_OPEN, STEP_CLIENTS, STEP_CARD_STATUS, STEP_ICCID, STEP_OPEN_CHANNEL,
	STEP_IDENTIFY, STEP_VERIFY_ADM1, STEP_READ_OLD, STEP_READ_APN, STEP_BACKUP,
	STEP_WRITE, STEP_CLOSE_CHANNEL, STEP_APN, STEP_OFFLINE, STEP_RESET,
	STEP_REGISTRATION, STEP_CHECK_IMSI,
};

/* Rollback and restore: put the backup back, reset, do not wait for a
 * registration the old subscription may never get. */
static const Step plan_restore[] = {
	STEP_OPEN, STEP_CLIENTS, STEP_CARD_STATUS, STEP_ICCID, STEP_OPEN_CHANNEL,
	STEP_IDENTIFY, STEP_VERIFY_ADM1, STEP_WRITE, STEP_CLOSE_CHANNEL, STEP_APN,
	STEP_OFFLINE, STEP_RESET,
};

/* The ModemManager backend writes the card while ModemManager holds off
 * (inhibited) and does the APN and the registration through ModemManager:
 * it runs only the card and the reset that makes the modem read it again. */
static const Step plan_card[] = {
	STEP_OPEN, STEP_CLIENTS, STEP_CARD_STATUS, STEP_ICCID, STEP_OPEN_CHANNEL,
	STEP_IDENTIFY, STEP_VERIFY_ADM1, STEP_READ_OLD, STEP_BACKUP, STEP_WRITE,
	STEP_CLOSE_CHANNEL, STEP_OFFLINE, STEP_RESET,
};

static const Step plan_card_restore[] = {
	STEP_OPEN, STEP_CLIENTS, STEP_CARD_STATUS, STEP_ICCID, STEP_OPEN_CHANNEL,
	STEP_IDENTIFY, STEP_VERIFY_ADM1, STEP_WRITE, STEP_CLOSE_CHANNEL, STEP_OFFLINE,
	STEP_RESET,
};

static const char *
step_name(Step s, gboolean restoring)
{
	switch (s) {
	case STEP_OPEN: return "opening the QMI port";
	case STEP_CLIENTS: return "allocating QMI clients";
	case STEP_CARD_STATUS: return "checking the card";
	case STEP_ICCID: return "reading the ICCID";
	case STEP_OPEN_CHANNEL: return "opening a logical channel to the USIM application";
	case STEP_IDENTIFY: return "identifying the card";
	case STEP_VERIFY_ADM1: return "verifying ADM1";
	case STEP_READ_OLD: return "reading the current subscription";
	case STEP_READ_APN: return "reading the current APN";
	case STEP_BACKUP: return "saving the backup";
	case STEP_WRITE: return restoring ? "writing the old subscription back" : "writing the subscription";
	case STEP_CLOSE_CHANNEL: return "closing the logical channel";
	case STEP_APN: return restoring ? "putting the old APN back" : "setting the APN";
	case STEP_OFFLINE: return "taking the modem offline";
	case STEP_RESET: return "resetting the modem";
	case STEP_REGISTRATION: return "waiting for registration";
	case STEP_CHECK_IMSI: return "checking the IMSI the modem reports";
	}
	return "?";
}

typedef struct _Ctx {
	CpModem *modem;
	GTask *task;
	CpModemTargetCopy *target;       /* NULL when restoring */
	const CpModemBackup *restore_of; /* restore: the caller's backup */
	CpModemBackup *backup;           /* provisioning: what we read */
	const Step *plan;
	guint n_plan;
	guint pos;
	guint sub;
	guint ef;
	gboolean rolling_back;
	gboolean card_only;              /* plan_card, plan_card_restore */
	gboolean written;                /* the first write was sent */
	GError *first_error;             /* the failure that started a rollback */
	GError *end_error;               /* held while the channel closes at the end */
	void (*after_close)(struct _Ctx *ctx);

	QmiDevice *device;
	QmiClientDms *dms;
	QmiClientUim *uim;
	QmiClientNas *nas;
	QmiClientWds *wds;
	guint channel;
	gulong removed_id;
	gboolean gone;
	GCancellable *cancellable;       /* ours: cancelled when the device goes */
	gulong user_cancel_id;
	const CpUsimDriver *driver;
	char *iccid;
	GBytes *resp;
	guint8 profile_index;
	char *old_apn;
	gboolean have_profile;
	gint64 card_deadline;            /* monotonic; until the card is ready */
	guint retry_id;
	/* the backup hand-over: ends when ctx->cancellable is cancelled */
	GSource *backup_wait;
	/* registration */
	gulong ss_id;
	guint poll_id;
	struct _Poll *poll;              /* the Get Serving System in flight */
	guint deadline_id;
	gboolean waiting;
	char *reg_plmn;
	char *reg_name;
	char *modem_imsi;
} Ctx;

/* A registration poll outlives the flow that sent it when the flow moves
 * on (registered, denied, deadline) before the answer: the answer then
 * finds ctx NULL. */
typedef struct _Poll {
	Ctx *ctx;
} Poll;

static void run(Ctx *ctx);

static void
poll_abandon(Ctx *ctx)
{
	if (ctx->poll)
		ctx->poll->ctx = NULL;
	ctx->poll = NULL;
}

static void
backup_wait_stop(Ctx *ctx)
{
	if (!ctx->backup_wait)
		return;
	g_source_destroy(ctx->backup_wait);
	g_clear_pointer(&ctx->backup_wait, g_source_unref);
}

static void
ctx_free(Ctx *ctx)
{
	poll_abandon(ctx);
	backup_wait_stop(ctx);
	if (ctx->retry_id)
		g_source_remove(ctx->retry_id);
	if (ctx->poll_id)
		g_source_remove(ctx->poll_id);
	if (ctx->deadline_id)
		g_source_remove(ctx->deadline_id);
	if (ctx->ss_id)
		g_signal_handler_disconnect(ctx->nas, ctx->ss_id);
	if (ctx->removed_id)
		g_signal_handler_disconnect(ctx->device, ctx->removed_id);
	if (ctx->user_cancel_id)
		g_cancellable_disconnect(g_task_get_cancellable(ctx->task), ctx->user_cancel_id);
	g_clear_object(&ctx->dms);
	g_clear_object(&ctx->uim);
	g_clear_object(&ctx->nas);
	g_clear_object(&ctx->wds);
	g_clear_object(&ctx->device);
	g_clear_object(&ctx->cancellable);
	g_clear_pointer(&ctx->resp, g_bytes_unref);
	g_clear_pointer(&ctx->backup, cp_modem_backup_free);
	g_clear_error(&ctx->first_error);
	g_free(ctx->iccid);
	g_free(ctx->old_apn);
	g_free(ctx->reg_plmn);
	g_free(ctx->reg_name);
	g_free(ctx->modem_imsi);
	g_clear_object(&ctx->task);
	g_free(ctx);
}

GError *
cp_qmi_error_convert(GError *error)
{
	GError *out;

	if (!error || error->domain == CP_ERROR || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return error;
	if (g_error_matches(error, QMI_CORE_ERROR, QMI_CORE_ERROR_TIMEOUT))
		out = g_error_new(CP_ERROR, CP_ERR_MODEM_TIMEOUT, "the modem did not answer in time");
	else if (g_error_matches(error, QMI_CORE_ERROR, QMI_CORE_ERROR_WRONG_STATE))
		out = g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem went away: %s", error->message);
	else
		out = g_error_new(CP_ERROR, CP_ERR_MODEM, "%s", error->message);
	g_error_free(error);
	return out;
}

/* Teardown of the port, best effort: it may be gone already. */
static void
session_drop(Ctx *ctx)
{
	poll_abandon(ctx);
	if (ctx->retry_id)
		g_source_remove(ctx->retry_id);
	ctx->retry_id = 0;
	if (ctx->poll_id)
		g_source_remove(ctx->poll_id);
	ctx->poll_id = 0;
	if (ctx->ss_id)
		g_signal_handler_disconnect(ctx->nas, ctx->ss_id);
	ctx->ss_id = 0;
	if (ctx->device) {
		QmiClient *clients[] = {
			QMI_CLIENT(ctx->dms), QMI_CLIENT(ctx->uim), QMI_CLIENT(ctx->nas), QMI_CLIENT(ctx->wds),
		};

		for (gsize i = 0; i < G_N_ELEMENTS(clients); i++)
			if (clients[i] && !ctx->gone)
				qmi_device_release_client(ctx->device, clients[i],
							  QMI_DEVICE_RELEASE_CLIENT_FLAGS_RELEASE_CID,
							  1, NULL, NULL, NULL);
		if (ctx->removed_id)
			g_signal_handler_disconnect(ctx->device, ctx->removed_id);
		ctx->removed_id = 0;
		qmi_device_close_async(ctx->device, 1, NULL, NULL, NULL);
	}
	g_clear_object(&ctx->dms);
	g_clear_object(&ctx->uim);
	g_clear_object(&ctx->nas);
	g_clear_object(&ctx->wds);
	g_clear_object(&ctx->device);
	ctx->channel = 0;
	ctx->gone = FALSE;
	g_clear_object(&ctx->cancellable);
	ctx->cancellable = g_cancellable_new();
}

static void complete(Ctx *ctx, GError *error);

static void
channel_closed_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	g_autoptr(GError) e = NULL;
	void (*then)(Ctx *) = ctx->after_close;

	if (!cp_qmi_uim_close_channel_finish(QMI_CLIENT_UIM(src), res, &e))
		g_debug("closing the logical channel: %s", e->message);
	ctx->channel = 0;
	ctx->after_close = NULL;
	then(ctx);
}

/* A flow that stops or rolls back with the channel open closes it first:
 * the card has only three, and a modem need not close them when our
 * client goes. Best effort. */
static gboolean
close_channel_then(Ctx *ctx, void (*then)(Ctx *))
{
	if (!ctx->channel || !ctx->uim || ctx->gone)
		return FALSE;
	ctx->after_close = then;
	cp_qmi_uim_close_channel(ctx->uim, ctx->channel, ctx->modem->request_timeout, NULL,
				 channel_closed_cb, ctx);
	return TRUE;
}

static void
complete_after_close(Ctx *ctx)
{
	complete(ctx, g_steal_pointer(&ctx->end_error));
}

static void
complete(Ctx *ctx, GError *error)
{
	ctx->end_error = error;
	if (close_channel_then(ctx, complete_after_close))
		return;
	error = g_steal_pointer(&ctx->end_error);
	session_drop(ctx);
	if (error) {
		g_task_return_error(ctx->task, error);
	} else if (ctx->target) {
		CpModemResult *r = g_new0(CpModemResult, 1);

		r->registered_plmn = g_steal_pointer(&ctx->reg_plmn);
		r->operator_name = g_steal_pointer(&ctx->reg_name);
		r->imsi = g_steal_pointer(&ctx->modem_imsi);
		r->iccid = g_strdup(ctx->iccid);
		g_task_return_pointer(ctx->task, r, (GDestroyNotify)cp_modem_result_free);
	} else {
		g_task_return_boolean(ctx->task, TRUE);
	}
	ctx_free(ctx);
}

static const CpModemBackup *
values_backup(Ctx *ctx)
{
	return ctx->restore_of ? ctx->restore_of : ctx->backup;
}

static void
rollback_begin(Ctx *ctx)
{
	session_drop(ctx);
	ctx->plan = ctx->card_only ? plan_card_restore : plan_restore;
	ctx->n_plan = ctx->card_only ? G_N_ELEMENTS(plan_card_restore) : G_N_ELEMENTS(plan_restore);
	ctx->pos = 0;
	ctx->sub = 0;
	ctx->ef = 0;
	run(ctx);
}

static void
start_rollback(Ctx *ctx, GError *error)
{
	g_message("step failed after the first write: %s; rolling back", error->message);
	ctx->first_error = error;
	ctx->rolling_back = TRUE;
	if (!close_channel_then(ctx, rollback_begin))
		rollback_begin(ctx);
}

static void
fail(Ctx *ctx, GError *error)
{
	error = cp_qmi_error_convert(error);
	if (ctx->gone && !g_error_matches(error, CP_ERROR, CP_ERR_MODEM_GONE)) {
		g_clear_error(&error);
		error = g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem went away");
	}
	if (ctx->rolling_back) {
		GError *e = g_error_new(CP_ERROR, CP_ERR_ROLLBACK,
					"the old subscription could not be put back (%s) after: %s",
					error->message, ctx->first_error->message);

		g_error_free(error);
		complete(ctx, e);
		return;
	}
	if (ctx->written && ctx->target) {
		start_rollback(ctx, error);
		return;
	}
	complete(ctx, error);
}

static void
next(Ctx *ctx)
{
	ctx->pos++;
	ctx->sub = 0;
	ctx->ef = 0;
	run(ctx);
}

/* ---- port and clients -------------------------------------------------- */

static void
device_removed_cb(QmiDevice *device, gpointer data)
{
	Ctx *ctx = data;

	g_message("the modem's QMI port went away");
	ctx->gone = TRUE;
	g_cancellable_cancel(ctx->cancellable);
}

static void
user_cancelled_cb(GCancellable *c, gpointer data)
{
	Ctx *ctx = data;

	/* The way back is not cancellable: a rollback or a restore stopped
	 * half-way would leave a card that neither subscription works with. */
	if (ctx->rolling_back || (!ctx->target && ctx->written))
		return;
	g_cancellable_cancel(ctx->cancellable);
}

static void
device_open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	if (!qmi_device_open_finish(QMI_DEVICE(src), res, &error)) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "cannot open %s: %s",
				      ctx->modem->device, error->message));
		g_error_free(error);
		return;
	}
	ctx->removed_id = g_signal_connect(ctx->device, QMI_DEVICE_SIGNAL_REMOVED,
					   G_CALLBACK(device_removed_cb), ctx);
	next(ctx);
}

static void
device_new_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	GObject *dev = g_async_initable_new_finish(G_ASYNC_INITABLE(src), res, &error);
	QmiDeviceOpenFlags flags = QMI_DEVICE_OPEN_FLAGS_VERSION_INFO;

	if (!dev) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "no modem at %s: %s",
				      ctx->modem->device, error->message));
		g_error_free(error);
		return;
	}
	ctx->device = QMI_DEVICE(dev);
	if (ctx->modem->proxy)
		flags |= QMI_DEVICE_OPEN_FLAGS_PROXY;
	qmi_device_open(ctx->device, flags, ctx->modem->request_timeout, ctx->cancellable,
			device_open_cb, ctx);
}

static void
step_open(Ctx *ctx)
{
	g_autoptr(GFile) file = g_file_new_for_path(ctx->modem->device);

	/* No file check: a pty (the bench) is not a cdc-wdm character device,
	 * and a missing port fails at open anyway. */
	if (ctx->modem->proxy_path)
		g_async_initable_new_async(QMI_TYPE_DEVICE, G_PRIORITY_DEFAULT, ctx->cancellable,
					   device_new_cb, ctx,
					   QMI_DEVICE_FILE, file,
					   QMI_DEVICE_NO_FILE_CHECK, TRUE,
					   QMI_DEVICE_PROXY_PATH, ctx->modem->proxy_path,
					   NULL);
	else
		g_async_initable_new_async(QMI_TYPE_DEVICE, G_PRIORITY_DEFAULT, ctx->cancellable,
					   device_new_cb, ctx,
					   QMI_DEVICE_FILE, file,
					   QMI_DEVICE_NO_FILE_CHECK, TRUE,
					   NULL);
}

static void
client_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	QmiClient *c = qmi_device_allocate_client_finish(QMI_DEVICE(src), res, &error);

	if (!c) {
		fail(ctx, error);
		return;
	}
	switch (ctx->sub) {
	case 0: ctx->dms = QMI_CLIENT_DMS(c); break;
	case 1: ctx->uim = QMI_CLIENT_UIM(c); break;
	case 2: ctx->nas = QMI_CLIENT_NAS(c); break;
	default: ctx->wds = QMI_CLIENT_WDS(c); break;
	}
	ctx->sub++;
	run(ctx);
}

static void
step_clients(Ctx *ctx)
{
	static const QmiService services[] = { QMI_SERVICE_DMS, QMI_SERVICE_UIM, QMI_SERVICE_NAS, QMI_SERVICE_WDS };

	if (ctx->sub == G_N_ELEMENTS(services)) {
		next(ctx);
		return;
	}
	qmi_device_allocate_client(ctx->device, services[ctx->sub], QMI_CID_NONE,
				   ctx->modem->request_timeout, ctx->cancellable, client_cb, ctx);
}

/* ---- card -------------------------------------------------------------- */

static gboolean
card_retry_cb(gpointer data)
{
	Ctx *ctx = data;

	ctx->retry_id = 0;
	run(ctx);
	return G_SOURCE_REMOVE;
}

/* A modem that has just started (after our own reset, or a rollback's)
 * answers "not ready", or shows the card before its USIM application,
 * for a while: ask again until the request timeout has passed. */
static gboolean
card_retry(Ctx *ctx)
{
	if (g_get_monotonic_time() >= ctx->card_deadline)
		return FALSE;
	ctx->sub++;
	ctx->retry_id = g_timeout_add(200, card_retry_cb, ctx);
	return TRUE;
}

static void
card_status_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(QmiMessageUimGetCardStatusOutput) out =
		qmi_client_uim_get_card_status_finish(QMI_CLIENT_UIM(src), res, &error);
	GArray *cards = NULL;
	guint16 gw;
	gboolean ready = FALSE;

	if (!out || !qmi_message_uim_get_card_status_output_get_result(out, &error)) {
		if (g_error_matches(error, QMI_PROTOCOL_ERROR, QMI_PROTOCOL_ERROR_DEVICE_NOT_READY) &&
		    card_retry(ctx)) {
			g_error_free(error);
			return;
		}
		fail(ctx, error);
		return;
	}
	if (qmi_message_uim_get_card_status_output_get_card_status(out, &gw, NULL, NULL, NULL, &cards, NULL) &&
	    cards && cards->len > 0) {
		QmiMessageUimGetCardStatusOutputCardStatusCardsElement *card =
			&g_array_index(cards, QmiMessageUimGetCardStatusOutputCardStatusCardsElement, 0);

		if (card->card_state == QMI_UIM_CARD_STATE_PRESENT) {
			for (guint i = 0; card->applications && i < card->applications->len; i++) {
				QmiMessageUimGetCardStatusOutputCardStatusCardsElementApplicationsElement *app =
					&g_array_index(card->applications,
						       QmiMessageUimGetCardStatusOutputCardStatusCardsElementApplicationsElement, i);

				if (app->type == QMI_UIM_CARD_APPLICATION_TYPE_USIM)
					ready = TRUE;
			}
		}
	}
	if (!ready) {
		if (card_retry(ctx))
			return;
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "no USIM in the modem"));
		return;
	}
	next(ctx);
}

static void
iccid_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(QmiMessageUimReadTransparentOutput) out =
		qmi_client_uim_read_transparent_finish(QMI_CLIENT_UIM(src), res, &error);
	GArray *bytes = NULL;

	if (!out || !qmi_message_uim_read_transparent_output_get_result(out, &error)) {
		fail(ctx, error);
		return;
	}
	/* read again by a rollback */
	g_clear_pointer(&ctx->iccid, g_free);
	if (qmi_message_uim_read_transparent_output_get_read_result(out, &bytes, NULL) && bytes)
		ctx->iccid = cp_usim_iccid_decode((const guint8 *)bytes->data, bytes->len);
	/* the ICCID is what ties a backup to its card */
	if (!ctx->iccid) {
		fail(ctx, g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "the card's ICCID cannot be read"));
		return;
	}
	if ((ctx->restore_of || ctx->rolling_back) &&
	    g_strcmp0(ctx->iccid, values_backup(ctx)->iccid) != 0) {
		g_autofree char *a = cp_redact(ctx->iccid), *b = cp_redact(values_backup(ctx)->iccid);

		fail(ctx, g_error_new(CP_ERROR, CP_ERR_ROLLBACK,
				      "the card (ICCID %s) is not the one the backup was taken from (%s)", a, b));
		return;
	}
	next(ctx);
}

static void
step_iccid(Ctx *ctx)
{
	g_autoptr(QmiMessageUimReadTransparentInput) in = qmi_message_uim_read_transparent_input_new();
	g_autoptr(GArray) aid = g_array_new(FALSE, FALSE, 1);
	g_autoptr(GArray) path = g_array_new(FALSE, FALSE, 1);
	static const guint8 mf[] = { 0x00, 0x3F };

	g_array_append_vals(path, mf, 2);
	qmi_message_uim_read_transparent_input_set_session(in, QMI_UIM_SESSION_TYPE_CARD_SLOT_1, aid, NULL);
	qmi_message_uim_read_transparent_input_set_file(in, 0x2FE2, path, NULL);
	qmi_message_uim_read_transparent_input_set_read_information(in, 0, 0, NULL);
	qmi_client_uim_read_transparent(ctx->uim, in, ctx->modem->request_timeout, ctx->cancellable,
					iccid_cb, ctx);
}

static void
channel_open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	ctx->channel = cp_qmi_uim_open_channel_finish(QMI_CLIENT_UIM(src), res, &error);
	if (!ctx->channel) {
		fail(ctx, error);
		return;
	}
	next(ctx);
}

static void
channel_close_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	if (!cp_qmi_uim_close_channel_finish(QMI_CLIENT_UIM(src), res, &error)) {
		fail(ctx, error);
		return;
	}
	ctx->channel = 0;
	next(ctx);
}

static void
apdu_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;

	g_clear_pointer(&ctx->resp, g_bytes_unref);
	ctx->resp = cp_qmi_uim_send_apdu_finish(QMI_CLIENT_UIM(src), res, &error);
	if (!ctx->resp) {
		fail(ctx, error);
		return;
	}
	ctx->sub++;
	run(ctx);
}

static guint8
cla(Ctx *ctx)
{
	return ctx->channel < 4 ? (guint8)ctx->channel : (guint8)(0x40 | (ctx->channel - 4));
}

static void
apdu(Ctx *ctx, guint8 ins, guint8 p1, guint8 p2, const guint8 *data, gsize lc, gboolean le)
{
	guint8 buf[5 + 255 + 1];
	gsize n = 0;

	buf[n++] = cla(ctx);
	buf[n++] = ins;
	buf[n++] = p1;
	buf[n++] = p2;
	if (lc) {
		buf[n++] = (guint8)lc;
		memcpy(buf + n, data, lc);
		n += lc;
	}
	if (le)
		buf[n++] = 0x00;
	cp_qmi_uim_send_apdu(ctx->uim, ctx->channel, buf, n, ctx->modem->request_timeout,
			     ctx->cancellable, apdu_cb, ctx);
	/* a VERIFY carries ADM1, an UPDATE the keys */
	cp_cleanse(buf, sizeof(buf));
}

static guint16
resp_sw(Ctx *ctx)
{
	gsize len;
	const guint8 *d = g_bytes_get_data(ctx->resp, &len);

	return cp_usim_sw(d, len);
}

static gboolean
sw_ok(guint16 sw)
{
	return sw == 0x9000 || (sw >> 8) == 0x61 || (sw >> 8) == 0x91;
}

static void
select_fid(Ctx *ctx, guint16 fid)
{
	guint8 f[2] = { (guint8)(fid >> 8), (guint8)fid };

	apdu(ctx, 0xA4, 0x00, 0x0C, f, 2, FALSE);
}

static GError *
apdu_error(const char *what, guint16 sw)
{
	return g_error_new(CP_ERROR, CP_ERR_APDU, "%s: the card answered %04X", what, sw);
}

static void
step_identify(Ctx *ctx)
{
	const CpUsimDriver *const *drivers = cp_usim_drivers();
	const CpUsimDriver *want = ctx->modem->driver;

	/* sub counts APDUs answered; ef walks the driver list when detecting */
	if (!want && (ctx->restore_of || ctx->rolling_back))
		want = cp_usim_driver_find(values_backup(ctx)->card);
	if (ctx->sub == 0) {
		ctx->driver = want ? want : drivers[ctx->ef];
		select_fid(ctx, ctx->driver->probe_fid);
		return;
	}
	if (sw_ok(resp_sw(ctx))) {
		g_info("card: %s", ctx->driver->description);
		next(ctx);
		return;
	}
	if (!want && drivers[ctx->ef + 1]) {
		ctx->ef++;
		ctx->sub = 0;
		run(ctx);
		return;
	}
	fail(ctx, g_error_new(CP_ERROR, CP_ERR_CARD_UNKNOWN,
			      want ? "the card is not a %s (no file %04X in its USIM application)"
				   : "no USIM driver knows this card%s",
			      want ? want->description : "", want ? want->probe_fid : 0));
}

/*
 * VERIFY without data spends nothing and tells how many attempts are left
 * (63Cx), or that ADM1 is verified already (9000). A wrong ADM1 never gets
 * the last attempt: a misconfigured device, or a journaled retry after a
 * crash, must not block the card, which only its issuer could unblock.
 */
static void
step_verify(Ctx *ctx)
{
	guint16 sw;
	guint left;

	switch (ctx->sub) {
	case 0:
		apdu(ctx, 0x20, 0x00, ctx->driver->adm1_p2, NULL, 0, FALSE);
		return;
	case 1:
		sw = resp_sw(ctx);
		if (sw == 0x9000) {
			g_info("ADM1 is verified already");
			next(ctx);
			return;
		}
		if (sw == 0x6983 || sw == 0x63C0) {
			fail(ctx, g_error_new(CP_ERROR, CP_ERR_ADM1_BLOCKED, "ADM1 is blocked on this card"));
			return;
		}
		if ((sw & 0xFFF0) != 0x63C0) {
			/* without the counter there is no way to know the try is safe */
			fail(ctx, apdu_error("VERIFY ADM1 (attempts left)", sw));
			return;
		}
		left = sw & 0x0F;
		if (left < 2) {
			fail(ctx, g_error_new(CP_ERROR, CP_ERR_ADM1,
					      "the card has one ADM1 attempt left: not trying, as a wrong ADM1 "
					      "would block the card; check the configured ADM1"));
			return;
		}
		g_info("ADM1: %u attempts left", left);
		apdu(ctx, 0x20, 0x00, ctx->driver->adm1_p2, ctx->modem->adm1->data, 8, FALSE);
		return;
	default:
		sw = resp_sw(ctx);
		if (sw == 0x9000) {
			next(ctx);
			return;
		}
		if ((sw & 0xFFF0) == 0x63C0 && (sw & 0x0F) > 0)
			fail(ctx, g_error_new(CP_ERROR, CP_ERR_ADM1,
					      "the card rejected ADM1; %u attempts left before it blocks", sw & 0x0F));
		else if (sw == 0x6983 || sw == 0x63C0)
			fail(ctx, g_error_new(CP_ERROR, CP_ERR_ADM1_BLOCKED, "ADM1 is blocked on this card"));
		else
			fail(ctx, apdu_error("VERIFY ADM1", sw));
	}
}

static void
step_read_old(Ctx *ctx)
{
	gsize len;
	const guint8 *d;
	guint16 sw;

	if (ctx->ef == CP_USIM_N_EF) {
		g_autofree char *imsi = NULL;

		ctx->backup->card = g_strdup(ctx->driver->name);
		ctx->backup->iccid = g_strdup(ctx->iccid);
		ctx->backup->imsi = cp_usim_imsi_decode(ctx->backup->ef[CP_USIM_EF_IMSI],
							ctx->backup->ef_len[CP_USIM_EF_IMSI]);
		imsi = cp_redact(ctx->backup->imsi);
		g_info("current IMSI %s", imsi);
		next(ctx);
		return;
	}
	switch (ctx->sub) {
	case 0:
		select_fid(ctx, ctx->driver->fid[ctx->ef]);
		return;
	case 1:
		if (!sw_ok(sw = resp_sw(ctx))) {
			fail(ctx, apdu_error(cp_usim_ef_name(ctx->ef), sw));
			return;
		}
		apdu(ctx, 0xB0, 0x00, 0x00, NULL, 0, TRUE);
		return;
	default:
		d = g_bytes_get_data(ctx->resp, &len);
		sw = cp_usim_sw(d, len);
		if (sw != 0x9000 || len - 2 != ctx->driver->size[ctx->ef]) {
			fail(ctx, apdu_error(cp_usim_ef_name(ctx->ef), sw));
			return;
		}
		memcpy(ctx->backup->ef[ctx->ef], d, len - 2);
		ctx->backup->ef_len[ctx->ef] = len - 2;
		ctx->ef++;
		ctx->sub = 0;
		run(ctx);
	}
}

static void
step_write(Ctx *ctx)
{
	const CpModemBackup *b = values_backup(ctx);
	guint8 out[CP_USIM_EF_MAX];
	GError *error = NULL;
	guint16 sw;

	if (ctx->ef == CP_USIM_N_EF) {
		next(ctx);
		return;
	}
	switch (ctx->sub) {
	case 0:
		select_fid(ctx, ctx->driver->fid[ctx->ef]);
		return;
	case 1:
		if (!sw_ok(sw = resp_sw(ctx))) {
			fail(ctx, apdu_error(cp_usim_ef_name(ctx->ef), sw));
			return;
		}
		if (ctx->target && !ctx->rolling_back) {
			CpUsimValues v = {
				.imsi = ctx->target->imsi,
				.mnc_length = ctx->target->mnc_length,
				.spn = ctx->target->network_name,
				.k = ctx->target->k,
				.opc = ctx->target->opc,
			};

			if (!ctx->driver->encode(ctx->ef, &v, b->ef[ctx->ef], out, &error)) {
				fail(ctx, error);
				return;
			}
		} else {
			if (b->ef_len[ctx->ef] != ctx->driver->size[ctx->ef]) {
				fail(ctx, g_error_new(CP_ERROR, CP_ERR_ROLLBACK, "the backup's %s has the wrong size",
						      cp_usim_ef_name(ctx->ef)));
				return;
			}
			memcpy(out, b->ef[ctx->ef], b->ef_len[ctx->ef]);
		}
		g_info("writing %s", cp_usim_ef_name(ctx->ef));
		ctx->written = TRUE;
		apdu(ctx, 0xD6, 0x00, 0x00, out, ctx->driver->size[ctx->ef], FALSE);
		cp_cleanse(out, sizeof(out));
		return;
	default:
		if ((sw = resp_sw(ctx)) != 0x9000) {
			fail(ctx, apdu_error(cp_usim_ef_name(ctx->ef), sw));
			return;
		}
		ctx->ef++;
		ctx->sub = 0;
		run(ctx);
	}
}

/* ---- WDS profile ------------------------------------------------------- */

static void
profile_list_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(QmiMessageWdsGetProfileListOutput) out =
		qmi_client_wds_get_profile_list_finish(QMI_CLIENT_WDS(src), res, &error);
	GArray *list = NULL;

	if (!out || !qmi_message_wds_get_profile_list_output_get_result(out, &error)) {
		fail(ctx, error);
		return;
	}
	ctx->have_profile = FALSE;
	if (qmi_message_wds_get_profile_list_output_get_profile_list(out, &list, NULL) && list && list->len) {
		/* the modem's first 3GPP profile is the one it attaches with */
		ctx->profile_index = g_array_index(list, QmiMessageWdsGetProfileListOutputProfileListProfile, 0).profile_index;
		ctx->have_profile = TRUE;
	}
	ctx->sub++;
	run(ctx);
}

static void
profile_settings_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(QmiMessageWdsGetProfileSettingsOutput) out =
		qmi_client_wds_get_profile_settings_finish(QMI_CLIENT_WDS(src), res, &error);
	const char *apn = NULL;

	if (!out || !qmi_message_wds_get_profile_settings_output_get_result(out, &error)) {
		fail(ctx, error);
		return;
	}
	qmi_message_wds_get_profile_settings_output_get_apn_name(out, &apn, NULL);
	ctx->backup->have_apn = TRUE;
	ctx->backup->profile_index = ctx->profile_index;
	ctx->backup->apn = g_strdup(apn ? apn : "");
	next(ctx);
}

static void
step_read_apn(Ctx *ctx)
{
	g_autoptr(QmiMessageWdsGetProfileListInput) lin = NULL;
	g_autoptr(QmiMessageWdsGetProfileSettingsInput) sin = NULL;

	switch (ctx->sub) {
	case 0:
		lin = qmi_message_wds_get_profile_list_input_new();
		qmi_message_wds_get_profile_list_input_set_profile_type(lin, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
		qmi_client_wds_get_profile_list(ctx->wds, lin, ctx->modem->request_timeout, ctx->cancellable,
						profile_list_cb, ctx);
		return;
	default:
		if (!ctx->have_profile) {
			ctx->backup->have_apn = TRUE;
			ctx->backup->profile_index = 0;
			ctx->backup->apn = g_strdup("");
			next(ctx);
			return;
		}
		sin = qmi_message_wds_get_profile_settings_input_new();
		qmi_message_wds_get_profile_settings_input_set_profile_id(sin, QMI_WDS_PROFILE_TYPE_3GPP,
									 ctx->profile_index, NULL);
		qmi_client_wds_get_profile_settings(ctx->wds, sin, ctx->modem->request_timeout,
						    ctx->cancellable, profile_settings_cb, ctx);
	}
}

static void
profile_set_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	gboolean ok;

	if (ctx->sub == 0) {
		g_autoptr(QmiMessageWdsModifyProfileOutput) out =
			qmi_client_wds_modify_profile_finish(QMI_CLIENT_WDS(src), res, &error);

		ok = out && qmi_message_wds_modify_profile_output_get_result(out, &error);
	} else {
		g_autoptr(QmiMessageWdsCreateProfileOutput) out =
			qmi_client_wds_create_profile_finish(QMI_CLIENT_WDS(src), res, &error);

		ok = out && qmi_message_wds_create_profile_output_get_result(out, &error);
	}
	if (!ok) {
		error = cp_qmi_error_convert(error);
		if (g_error_matches(error, CP_ERROR, CP_ERR_MODEM)) {
			GError *e = g_error_new(CP_ERROR, CP_ERR_APN, "the APN could not be set: %s", error->message);

			g_error_free(error);
			error = e;
		}
		fail(ctx, error);
		return;
	}
	next(ctx);
}

static void
step_apn(Ctx *ctx)
{
	const CpModemBackup *b = values_backup(ctx);
	const char *apn;
	guint8 index;

	if (ctx->target && !ctx->rolling_back) {
		apn = ctx->target->apn;
		index = b->profile_index;
	} else {
		if (!b->have_apn || b->profile_index == 0) {
			/* nothing to put back (a profile we created stays, harmless) */
			next(ctx);
			return;
		}
		apn = b->apn;
		index = b->profile_index;
	}
	ctx->written = TRUE;
	if (index) {
		g_autoptr(QmiMessageWdsModifyProfileInput) in = qmi_message_wds_modify_profile_input_new();

		ctx->sub = 0;
		qmi_message_wds_modify_profile_input_set_profile_identifier(in, QMI_WDS_PROFILE_TYPE_3GPP, index, NULL);
		qmi_message_wds_modify_profile_input_set_apn_name(in, apn, NULL);
		qmi_client_wds_modify_profile(ctx->wds, in, ctx->modem->request_timeout, ctx->cancellable,
					      profile_set_cb, ctx);
	} else {
		g_autoptr(QmiMessageWdsCreateProfileInput) in = qmi_message_wds_create_profile_input_new();

		ctx->sub = 1;
		qmi_message_wds_create_profile_input_set_profile_type(in, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
		qmi_message_wds_create_profile_input_set_apn_name(in, apn, NULL);
		qmi_client_wds_create_profile(ctx->wds, in, ctx->modem->request_timeout, ctx->cancellable,
					      profile_set_cb, ctx);
	}
}

/* ---- operating mode ---------------------------------------------------- */

static void
mode_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(QmiMessageDmsSetOperatingModeOutput) out =
		qmi_client_dms_set_operating_mode_finish(QMI_CLIENT_DMS(src), res, &error);

	if (!out || !qmi_message_dms_set_operating_mode_output_get_result(out, &error)) {
		fail(ctx, error);
		return;
	}
	next(ctx);
}

static void
set_mode(Ctx *ctx, QmiDmsOperatingMode mode)
{
	g_autoptr(QmiMessageDmsSetOperatingModeInput) in = qmi_message_dms_set_operating_mode_input_new();

	qmi_message_dms_set_operating_mode_input_set_mode(in, mode, NULL);
	qmi_client_dms_set_operating_mode(ctx->dms, in, ctx->modem->request_timeout, ctx->cancellable,
					  mode_cb, ctx);
}

/* ---- registration ------------------------------------------------------ */

static void
registration_end(Ctx *ctx, GError *error)
{
	ctx->waiting = FALSE;
	poll_abandon(ctx);
	if (ctx->poll_id)
		g_source_remove(ctx->poll_id);
	ctx->poll_id = 0;
	if (ctx->deadline_id)
		g_source_remove(ctx->deadline_id);
	ctx->deadline_id = 0;
	if (ctx->ss_id)
		g_signal_handler_disconnect(ctx->nas, ctx->ss_id);
	ctx->ss_id = 0;
	if (error)
		fail(ctx, error);
	else
		next(ctx);
}

static void
registration_seen(Ctx *ctx, QmiNasRegistrationState state, gboolean have_plmn,
		  guint16 mcc, guint16 mnc, const char *name)
{
	g_autofree char *plmn = NULL;

	if (!ctx->waiting)
		return;
	if (state == QMI_NAS_REGISTRATION_STATE_REGISTRATION_DENIED) {
		registration_end(ctx, g_error_new(CP_ERROR, CP_ERR_REG_DENIED,
						  "the network denied registration"));
		return;
	}
	if (state != QMI_NAS_REGISTRATION_STATE_REGISTERED || !have_plmn)
		return;
	plmn = ctx->target->mnc_length == 3 ? g_strdup_printf("%03u%03u", mcc, mnc)
					     : g_strdup_printf("%03u%02u", mcc, mnc);
	if (g_strcmp0(plmn, ctx->target->plmn) != 0) {
		g_info("registered on %s, waiting for %s", plmn, ctx->target->plmn);
		return;
	}
	g_free(ctx->reg_plmn);
	ctx->reg_plmn = g_steal_pointer(&plmn);
	g_free(ctx->reg_name);
	ctx->reg_name = g_strdup(name);
	g_info("registered on %s (%s)", ctx->reg_plmn, name ? name : "");
	registration_end(ctx, NULL);
}

static void
serving_system_ind_cb(QmiClientNas *nas, QmiIndicationNasServingSystemOutput *out, gpointer data)
{
	QmiNasRegistrationState state;
	guint16 mcc = 0, mnc = 0;
	const char *name = NULL;
	gboolean plmn;

	if (!qmi_indication_nas_serving_system_output_get_serving_system(out, &state, NULL, NULL, NULL, NULL, NULL))
		return;
	plmn = qmi_indication_nas_serving_system_output_get_current_plmn(out, &mcc, &mnc, &name, NULL);
	registration_seen(data, state, plmn, mcc, mnc, name);
}

static void
serving_system_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Poll *poll = data;
	Ctx *ctx = poll->ctx;
	GError *error = NULL;
	g_autoptr(QmiMessageNasGetServingSystemOutput) out =
		qmi_client_nas_get_serving_system_finish(QMI_CLIENT_NAS(src), res, &error);
	QmiNasRegistrationState state;
	guint16 mcc = 0, mnc = 0;
	const char *name = NULL;
	gboolean plmn;

	g_free(poll);
	if (!ctx) {
		g_clear_error(&error);
		return;
	}
	ctx->poll = NULL;
	if (!out || !qmi_message_nas_get_serving_system_output_get_result(out, &error)) {
		/* during a reset the modem may refuse: the next poll asks again */
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || ctx->gone) {
			if (ctx->waiting)
				registration_end(ctx, error);
			else
				g_error_free(error);
			return;
		}
		g_debug("serving system: %s", error->message);
		g_error_free(error);
		return;
	}
	if (!qmi_message_nas_get_serving_system_output_get_serving_system(out, &state, NULL, NULL, NULL, NULL, NULL))
		return;
	plmn = qmi_message_nas_get_serving_system_output_get_current_plmn(out, &mcc, &mnc, &name, NULL);
	registration_seen(ctx, state, plmn, mcc, mnc, name);
}

/* Indications are not sent by every modem while it searches: poll too,
 * one request at a time (a modem that does not answer gets no pile). */
static gboolean
poll_cb(gpointer data)
{
	Ctx *ctx = data;

	if (ctx->poll)
		return G_SOURCE_CONTINUE;
	ctx->poll = g_new0(Poll, 1);
	ctx->poll->ctx = ctx;
	qmi_client_nas_get_serving_system(ctx->nas, NULL, ctx->modem->request_timeout, ctx->cancellable,
					  serving_system_cb, ctx->poll);
	return G_SOURCE_CONTINUE;
}

static gboolean
deadline_cb(gpointer data)
{
	Ctx *ctx = data;

	ctx->deadline_id = 0;
	registration_end(ctx, g_error_new(CP_ERROR, CP_ERR_REG_TIMEOUT,
					  "no registration on %s within %u s", ctx->target->plmn,
					  ctx->modem->registration_timeout));
	return G_SOURCE_REMOVE;
}

static void
step_registration(Ctx *ctx)
{
	ctx->waiting = TRUE;
	ctx->ss_id = g_signal_connect(ctx->nas, "serving-system", G_CALLBACK(serving_system_ind_cb), ctx);
	ctx->deadline_id = g_timeout_add_seconds(ctx->modem->registration_timeout, deadline_cb, ctx);
	ctx->poll_id = g_timeout_add(500, poll_cb, ctx);
	poll_cb(ctx);
}

static void
imsi_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Ctx *ctx = data;
	GError *error = NULL;
	g_autoptr(QmiMessageDmsUimGetImsiOutput) out =
		qmi_client_dms_uim_get_imsi_finish(QMI_CLIENT_DMS(src), res, &error);
	const char *imsi = NULL;

	if (!out || !qmi_message_dms_uim_get_imsi_output_get_result(out, &error) ||
	    !qmi_message_dms_uim_get_imsi_output_get_imsi(out, &imsi, &error)) {
		fail(ctx, error);
		return;
	}
	ctx->modem_imsi = g_strdup(imsi);
	if (g_strcmp0(imsi, ctx->target->imsi) != 0) {
		g_autofree char *a = cp_redact(imsi), *b = cp_redact(ctx->target->imsi);

		fail(ctx, g_error_new(CP_ERROR, CP_ERR_IMSI_MISMATCH,
				      "the modem reports IMSI %s, not %s", a, b));
		return;
	}
	next(ctx);
}

/* ---- backup hand-over -------------------------------------------------- */

static void
backup_saved(gpointer data, const GError *error)
{
	Ctx *ctx = data;

	backup_wait_stop(ctx);
	if (error) {
		fail(ctx, g_error_copy(error));
		return;
	}
	if (g_cancellable_is_cancelled(ctx->cancellable)) {
		fail(ctx, g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
		return;
	}
	next(ctx);
}

/* Cancelled, or the modem went away, while the caller saves the backup:
 * nothing is written yet, so the flow stops without waiting for it. */
static gboolean
backup_wait_cancelled_cb(GCancellable *c, gpointer data)
{
	Ctx *ctx = data;
	CpModem *m = ctx->modem;

	g_clear_pointer(&ctx->backup_wait, g_source_unref);
	if (m->backup_saved == backup_saved && m->backup_saved_data == ctx) {
		m->backup_saved = NULL;
		m->backup_saved_data = NULL;
	}
	fail(ctx, ctx->gone ? g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem went away")
			    : g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
	return G_SOURCE_REMOVE;
}

static void
step_backup(Ctx *ctx)
{
	CpModem *m = ctx->modem;

	if (!m->backup) {
		next(ctx);
		return;
	}
	ctx->backup_wait = g_cancellable_source_new(ctx->cancellable);
	g_source_set_callback(ctx->backup_wait, G_SOURCE_FUNC(backup_wait_cancelled_cb), ctx, NULL);
	g_source_attach(ctx->backup_wait, g_task_get_context(ctx->task));
	m->backup_saved = backup_saved;
	m->backup_saved_data = ctx;
	m->backup(m, ctx->backup, m->user_data);
}

/* ---- the flow ---------------------------------------------------------- */

static void
run(Ctx *ctx)
{
	Step s;

	if (ctx->pos == ctx->n_plan) {
		if (ctx->rolling_back) {
			GError *e = g_steal_pointer(&ctx->first_error);

			g_info("the old subscription is back");
			complete(ctx, e);
		} else {
			complete(ctx, NULL);
		}
		return;
	}
	if (g_cancellable_is_cancelled(ctx->cancellable) && !ctx->rolling_back) {
		fail(ctx, ctx->gone ? g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "the modem went away")
				    : g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
		return;
	}
	s = ctx->plan[ctx->pos];
	if (ctx->sub == 0 && ctx->ef == 0) {
		g_autofree char *what = g_strdup_printf("%s%s", ctx->rolling_back ? "rollback: " : "",
							step_name(s, ctx->rolling_back || !ctx->target));

		cp_modem_step(ctx->modem, ctx->pos + 1, ctx->n_plan, what);
	}

	switch (s) {
	case STEP_OPEN:
		step_open(ctx);
		return;
	case STEP_CLIENTS:
		step_clients(ctx);
		return;
	case STEP_CARD_STATUS:
		if (ctx->sub == 0)
			ctx->card_deadline = g_get_monotonic_time() +
					     (gint64)ctx->modem->request_timeout * G_USEC_PER_SEC;
		qmi_client_uim_get_card_status(ctx->uim, NULL, ctx->modem->request_timeout, ctx->cancellable,
					       card_status_cb, ctx);
		return;
	case STEP_ICCID:
		step_iccid(ctx);
		return;
	case STEP_OPEN_CHANNEL:
		cp_qmi_uim_open_channel(ctx->uim, (ctx->modem->driver ? ctx->modem->driver : cp_usim_drivers()[0])->aid,
					(ctx->modem->driver ? ctx->modem->driver : cp_usim_drivers()[0])->aid_len,
					ctx->modem->request_timeout, ctx->cancellable, channel_open_cb, ctx);
		return;
	case STEP_IDENTIFY:
		step_identify(ctx);
		return;
	case STEP_VERIFY_ADM1:
		step_verify(ctx);
		return;
	case STEP_READ_OLD:
		step_read_old(ctx);
		return;
	case STEP_READ_APN:
		step_read_apn(ctx);
		return;
	case STEP_BACKUP:
		step_backup(ctx);
		return;
	case STEP_WRITE:
		step_write(ctx);
		return;
	case STEP_CLOSE_CHANNEL:
		cp_qmi_uim_close_channel(ctx->uim, ctx->channel, ctx->modem->request_timeout, ctx->cancellable,
					 channel_close_cb, ctx);
		return;
	case STEP_APN:
		step_apn(ctx);
		return;
	case STEP_OFFLINE:
		if (ctx->modem->reset == CP_MODEM_RESET_USER) {
			next(ctx);
			return;
		}
		set_mode(ctx, QMI_DMS_OPERATING_MODE_OFFLINE);
		return;
	case STEP_RESET:
		if (ctx->modem->reset == CP_MODEM_RESET_USER) {
			g_info("waiting for the modem to be reset by someone else");
			next(ctx);
			return;
		}
		set_mode(ctx, QMI_DMS_OPERATING_MODE_RESET);
		return;
	case STEP_REGISTRATION:
		step_registration(ctx);
		return;
	case STEP_CHECK_IMSI:
		qmi_client_dms_uim_get_imsi(ctx->dms, NULL, ctx->modem->request_timeout, ctx->cancellable,
					    imsi_cb, ctx);
		return;
	}
}

static Ctx *
ctx_new(CpModem *modem, GTask *task)
{
	Ctx *ctx = g_new0(Ctx, 1);
	GCancellable *user = g_task_get_cancellable(task);

	ctx->modem = modem;
	ctx->task = task;
	ctx->cancellable = g_cancellable_new();
	if (user)
		ctx->user_cancel_id = g_cancellable_connect(user, G_CALLBACK(user_cancelled_cb), ctx, NULL);
	return ctx;
}

static void
start(CpModem *modem, GTask *task, gboolean card_only, CpModemTargetCopy *target,
      const CpModemBackup *restore_of)
{
	Ctx *ctx = ctx_new(modem, task);

	ctx->card_only = card_only;
	ctx->target = target;
	ctx->restore_of = restore_of;
	if (target) {
		ctx->backup = cp_modem_backup_new();
		ctx->plan = card_only ? plan_card : plan_provision;
		ctx->n_plan = card_only ? G_N_ELEMENTS(plan_card) : G_N_ELEMENTS(plan_provision);
	} else {
		ctx->plan = card_only ? plan_card_restore : plan_restore;
		ctx->n_plan = card_only ? G_N_ELEMENTS(plan_card_restore) : G_N_ELEMENTS(plan_restore);
	}
	run(ctx);
}

static void
qmi_provision(CpModem *modem, CpModemTargetCopy *target, GTask *task)
{
	start(modem, task, FALSE, target, NULL);
}

static void
qmi_restore(CpModem *modem, const CpModemBackup *backup, GTask *task)
{
	start(modem, task, FALSE, NULL, backup);
}

const CpModemBackendOps cp_modem_qmi_ops = {
	.name = "qmi",
	.provision = qmi_provision,
	.restore = qmi_restore,
};

static void
qmi_card_provision(CpModem *modem, CpModemTargetCopy *target, GTask *task)
{
	start(modem, task, TRUE, target, NULL);
}

static void
qmi_card_restore(CpModem *modem, const CpModemBackup *backup, GTask *task)
{
	start(modem, task, TRUE, NULL, backup);
}

const CpModemBackendOps cp_modem_qmi_card_ops = {
	.name = "qmi-card",
	.provision = qmi_card_provision,
	.restore = qmi_card_restore,
};
