/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QMI driver: libqmi's async API, the port opened directly or through
 * qmi-proxy. Its transport reaches the card through UIM (card status, the
 * ICCID, a logical channel and APDUs, cp-qmi-uim-raw); its modem operations
 * use WDS (the APN), DMS (operating mode, IMSI) and NAS (registration).
 * The ModemManager driver uses the transport and the reset alone.
 *
 * Only adapters: each entry makes one or a few requests and hands the
 * answer to the runner (cp-modem-driver.h), which owns the flow.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include "cp-modem-driver.h"
#include "cp-modem-qmi.h"
#include "cp-qmi-uim-raw.h"

typedef struct {
	CpModemRun *run;
	QmiDevice *device;
	QmiClientDms *dms;
	QmiClientUim *uim;
	QmiClientNas *nas;
	QmiClientWds *wds;
	void (*then)(CpModemRun *run);   /* what waits for a client */
	gulong removed_id;
	/* set_apn, until its WDS client is there */
	guint apn_index;
	char *apn;
	/* registration */
	gboolean reg_wanted;
	gulong ss_id;
	guint poll_id;
	guint8 profile_index;            /* read_apn: the profile asked about */
} QmiPort;

static QmiPort *
port_of(CpModemRun *run)
{
	return run->port;
}

static guint
timeout_of(CpModemRun *run)
{
	return run->modem->request_timeout;
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

static void
done(CpModemRun *run, GError *error)
{
	cp_modem_run_done(run, cp_qmi_error_convert(error));
}

/* ---- port -------------------------------------------------------------- */

static void
qmi_registration_stop(CpModemRun *run)
{
	QmiPort *p = port_of(run);

	if (!p)
		return;
	p->reg_wanted = FALSE;
	if (p->poll_id)
		g_source_remove(p->poll_id);
	p->poll_id = 0;
	if (p->ss_id)
		g_signal_handler_disconnect(p->nas, p->ss_id);
	p->ss_id = 0;
}

/* Teardown, best effort: the port may be gone already. */
static void
qmi_close(CpModemRun *run)
{
	QmiPort *p = port_of(run);

	if (!p)
		return;
	qmi_registration_stop(run);
	if (p->device) {
		QmiClient *clients[] = {
			QMI_CLIENT(p->dms), QMI_CLIENT(p->uim), QMI_CLIENT(p->nas), QMI_CLIENT(p->wds),
		};

		for (gsize i = 0; i < G_N_ELEMENTS(clients); i++)
			if (clients[i] && !run->gone)
				qmi_device_release_client(p->device, clients[i],
							  QMI_DEVICE_RELEASE_CLIENT_FLAGS_RELEASE_CID,
							  1, NULL, NULL, NULL);
		if (p->removed_id)
			g_signal_handler_disconnect(p->device, p->removed_id);
		qmi_device_close_async(p->device, 1, NULL, NULL, NULL);
	}
	g_clear_object(&p->dms);
	g_clear_object(&p->uim);
	g_clear_object(&p->nas);
	g_clear_object(&p->wds);
	g_clear_object(&p->device);
	g_free(p->apn);
	g_free(p);
	run->port = NULL;
}

static void
device_removed_cb(QmiDevice *device, gpointer data)
{
	cp_modem_run_gone(data);
}

static QmiClient **
client_slot(QmiPort *p, QmiService svc)
{
	switch (svc) {
	case QMI_SERVICE_DMS: return (QmiClient **)&p->dms;
	case QMI_SERVICE_NAS: return (QmiClient **)&p->nas;
	case QMI_SERVICE_WDS: return (QmiClient **)&p->wds;
	default: return (QmiClient **)&p->uim;
	}
}

static void
client_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	QmiPort *p = port_of(run);
	GError *error = NULL;
	QmiClient *c = qmi_device_allocate_client_finish(QMI_DEVICE(src), res, &error);

	if (!c) {
		done(run, error);
		return;
	}
	*client_slot(p, qmi_client_get_service(c)) = c;
	p->then(run);
}

/*
 * then, once the port has a client of svc. A client is allocated when
 * first needed (CTL Allocate Client ID), kept while the port is open
 * (the modem's requests before its reset share it) and released when the
 * port closes: a provisioning allocates UIM, WDS, DMS before the reset
 * and, the module having re-enumerated (new client ids), UIM, DMS and NAS
 * after it; a modem that kept its port keeps its clients.
 */
static void
client_then(CpModemRun *run, QmiService svc, void (*then)(CpModemRun *run))
{
	QmiPort *p = port_of(run);

	if (*client_slot(p, svc)) {
		then(run);
		return;
	}
	p->then = then;
	qmi_device_allocate_client(p->device, svc, QMI_CID_NONE, timeout_of(run), run->cancellable,
				   client_cb, run);
}

static void
port_ready(CpModemRun *run)
{
	done(run, NULL);
}

static void
device_open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	QmiPort *p = port_of(run);
	GError *error = NULL;

	if (!qmi_device_open_finish(QMI_DEVICE(src), res, &error)) {
		done(run, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "cannot open %s: %s",
				      run->device, error->message));
		g_error_free(error);
		return;
	}
	p->removed_id = g_signal_connect(p->device, QMI_DEVICE_SIGNAL_REMOVED,
					 G_CALLBACK(device_removed_cb), run);
	/* the card's service first: the other clients when first used */
	client_then(run, QMI_SERVICE_UIM, port_ready);
}

static void
device_new_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	QmiPort *p = port_of(run);
	GError *error = NULL;
	GObject *dev = g_async_initable_new_finish(G_ASYNC_INITABLE(src), res, &error);
	QmiDeviceOpenFlags flags = QMI_DEVICE_OPEN_FLAGS_VERSION_INFO;

	if (!dev) {
		done(run, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "no modem at %s: %s",
				      run->device, error->message));
		g_error_free(error);
		return;
	}
	p->device = QMI_DEVICE(dev);
	if (run->proxy)
		flags |= QMI_DEVICE_OPEN_FLAGS_PROXY;
	qmi_device_open(p->device, flags, timeout_of(run), run->cancellable, device_open_cb, run);
}

/* The port and its UIM client (the others when first needed). */
static void
qmi_open(CpModemRun *run)
{
	g_autoptr(GFile) file = g_file_new_for_path(run->device);
	QmiPort *p = g_new0(QmiPort, 1);

	p->run = run;
	run->port = p;
	/* No file check: a pty (the bench) is not a cdc-wdm character device,
	 * and a missing port fails at open anyway. */
	if (run->modem->proxy_path)
		g_async_initable_new_async(QMI_TYPE_DEVICE, G_PRIORITY_DEFAULT, run->cancellable,
					   device_new_cb, run,
					   QMI_DEVICE_FILE, file,
					   QMI_DEVICE_NO_FILE_CHECK, TRUE,
					   QMI_DEVICE_PROXY_PATH, run->modem->proxy_path,
					   NULL);
	else
		g_async_initable_new_async(QMI_TYPE_DEVICE, G_PRIORITY_DEFAULT, run->cancellable,
					   device_new_cb, run,
					   QMI_DEVICE_FILE, file,
					   QMI_DEVICE_NO_FILE_CHECK, TRUE,
					   NULL);
}

/* ---- card -------------------------------------------------------------- */

static void
card_status_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(QmiMessageUimGetCardStatusOutput) out =
		qmi_client_uim_get_card_status_finish(QMI_CLIENT_UIM(src), res, &error);
	GArray *cards = NULL;
	guint16 gw;
	gboolean ready = FALSE;
	GArray *usim = NULL, *isim = NULL;

	if (!out || !qmi_message_uim_get_card_status_output_get_result(out, &error)) {
		if (g_error_matches(error, QMI_PROTOCOL_ERROR, QMI_PROTOCOL_ERROR_DEVICE_NOT_READY)) {
			/* the runner asks again for a while */
			done(run, g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "the card is not ready: %s",
					      error->message));
			g_error_free(error);
			return;
		}
		done(run, error);
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

				if (app->type == QMI_UIM_CARD_APPLICATION_TYPE_USIM) {
					ready = TRUE;
					usim = app->application_identifier_value;
				}
				if (app->type == QMI_UIM_CARD_APPLICATION_TYPE_ISIM)
					isim = app->application_identifier_value;
			}
		}
	}
	/* the AIDs of EF.DIR's records, as the modem read them at its start */
	cp_modem_run_set_applications(run, usim ? (const guint8 *)usim->data : NULL, usim ? usim->len : 0,
				      isim ? (const guint8 *)isim->data : NULL, isim ? isim->len : 0);
	done(run, ready ? NULL : g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "no USIM in the modem"));
}

static void
qmi_card_status(CpModemRun *run)
{
	qmi_client_uim_get_card_status(port_of(run)->uim, NULL, timeout_of(run), run->cancellable,
				       card_status_cb, run);
}

static void
iccid_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(QmiMessageUimReadTransparentOutput) out =
		qmi_client_uim_read_transparent_finish(QMI_CLIENT_UIM(src), res, &error);
	GArray *bytes = NULL;

	if (!out || !qmi_message_uim_read_transparent_output_get_result(out, &error)) {
		done(run, error);
		return;
	}
	if (qmi_message_uim_read_transparent_output_get_read_result(out, &bytes, NULL) && bytes)
		cp_modem_run_set_iccid(run, (const guint8 *)bytes->data, bytes->len);
	else
		cp_modem_run_set_iccid(run, NULL, 0);
	done(run, NULL);
}

static void
qmi_read_iccid(CpModemRun *run)
{
	g_autoptr(QmiMessageUimReadTransparentInput) in = qmi_message_uim_read_transparent_input_new();
	g_autoptr(GArray) aid = g_array_new(FALSE, FALSE, 1);
	g_autoptr(GArray) path = g_array_new(FALSE, FALSE, 1);
	static const guint8 mf[] = { 0x00, 0x3F };

	g_array_append_vals(path, mf, 2);
	qmi_message_uim_read_transparent_input_set_session(in, QMI_UIM_SESSION_TYPE_CARD_SLOT_1, aid, NULL);
	qmi_message_uim_read_transparent_input_set_file(in, 0x2FE2, path, NULL);
	qmi_message_uim_read_transparent_input_set_read_information(in, 0, 0, NULL);
	qmi_client_uim_read_transparent(port_of(run)->uim, in, timeout_of(run), run->cancellable,
					iccid_cb, run);
}

static void
channel_open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	guint channel = cp_qmi_uim_open_channel_finish(QMI_CLIENT_UIM(src), res, &error);

	if (channel)
		cp_modem_run_set_channel(run, channel);
	done(run, error);
}

static void
qmi_open_channel(CpModemRun *run, const guint8 *aid, gsize aid_len)
{
	cp_qmi_uim_open_channel(port_of(run)->uim, aid, aid_len, timeout_of(run), run->cancellable,
				channel_open_cb, run);
}

static void
channel_close_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_qmi_uim_close_channel_finish(QMI_CLIENT_UIM(src), res, &error);
	done(data, error);
}

static void
qmi_close_channel(CpModemRun *run, guint channel)
{
	cp_qmi_uim_close_channel(port_of(run)->uim, channel, timeout_of(run), run->cancellable,
				 channel_close_cb, run);
}

static void
apdu_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	GBytes *resp = cp_qmi_uim_send_apdu_finish(QMI_CLIENT_UIM(src), res, &error);

	cp_modem_run_apdu_done(data, resp, cp_qmi_error_convert(error));
}

static void
qmi_transmit(CpModemRun *run, guint channel, const guint8 *apdu, gsize len)
{
	cp_qmi_uim_send_apdu(port_of(run)->uim, channel, apdu, len, timeout_of(run), run->cancellable,
			     apdu_cb, run);
}

/* ---- WDS profile ------------------------------------------------------- */

static void
profile_settings_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(QmiMessageWdsGetProfileSettingsOutput) out =
		qmi_client_wds_get_profile_settings_finish(QMI_CLIENT_WDS(src), res, &error);
	const char *apn = NULL;

	if (!out || !qmi_message_wds_get_profile_settings_output_get_result(out, &error)) {
		done(run, error);
		return;
	}
	qmi_message_wds_get_profile_settings_output_get_apn_name(out, &apn, NULL);
	cp_modem_run_set_old_apn(run, TRUE, port_of(run)->profile_index, apn);
	done(run, NULL);
}

static void
profile_list_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(QmiMessageWdsGetProfileListOutput) out =
		qmi_client_wds_get_profile_list_finish(QMI_CLIENT_WDS(src), res, &error);
	g_autoptr(QmiMessageWdsGetProfileSettingsInput) in = NULL;
	GArray *list = NULL;
	guint8 index;

	if (!out || !qmi_message_wds_get_profile_list_output_get_result(out, &error)) {
		done(run, error);
		return;
	}
	if (!qmi_message_wds_get_profile_list_output_get_profile_list(out, &list, NULL) || !list || !list->len) {
		cp_modem_run_set_old_apn(run, FALSE, 0, NULL);
		done(run, NULL);
		return;
	}
	/* the modem's first 3GPP profile is the one it attaches with */
	index = g_array_index(list, QmiMessageWdsGetProfileListOutputProfileListProfile, 0).profile_index;
	port_of(run)->profile_index = index;
	in = qmi_message_wds_get_profile_settings_input_new();
	qmi_message_wds_get_profile_settings_input_set_profile_id(in, QMI_WDS_PROFILE_TYPE_3GPP, index, NULL);
	qmi_client_wds_get_profile_settings(QMI_CLIENT_WDS(src), in, timeout_of(run), run->cancellable,
					    profile_settings_cb, run);
}

static void
read_apn(CpModemRun *run)
{
	g_autoptr(QmiMessageWdsGetProfileListInput) in = qmi_message_wds_get_profile_list_input_new();

	qmi_message_wds_get_profile_list_input_set_profile_type(in, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
	qmi_client_wds_get_profile_list(port_of(run)->wds, in, timeout_of(run), run->cancellable,
					profile_list_cb, run);
}

static void
apn_set_done(CpModemRun *run, gboolean ok, GError *error)
{
	if (!ok) {
		error = cp_qmi_error_convert(error);
		if (g_error_matches(error, CP_ERROR, CP_ERR_MODEM)) {
			GError *e = g_error_new(CP_ERROR, CP_ERR_APN, "the APN could not be set: %s", error->message);

			g_error_free(error);
			error = e;
		}
		done(run, error);
		return;
	}
	done(run, NULL);
}

static void
profile_modify_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	g_autoptr(QmiMessageWdsModifyProfileOutput) out =
		qmi_client_wds_modify_profile_finish(QMI_CLIENT_WDS(src), res, &error);

	apn_set_done(data, out && qmi_message_wds_modify_profile_output_get_result(out, &error), error);
}

static void
profile_create_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	g_autoptr(QmiMessageWdsCreateProfileOutput) out =
		qmi_client_wds_create_profile_finish(QMI_CLIENT_WDS(src), res, &error);

	apn_set_done(data, out && qmi_message_wds_create_profile_output_get_result(out, &error), error);
}

static void
qmi_read_apn(CpModemRun *run)
{
	client_then(run, QMI_SERVICE_WDS, read_apn);
}

static void
set_apn(CpModemRun *run)
{
	QmiPort *p = port_of(run);
	guint index = p->apn_index;
	const char *apn = p->apn;

	if (index) {
		g_autoptr(QmiMessageWdsModifyProfileInput) in = qmi_message_wds_modify_profile_input_new();

		qmi_message_wds_modify_profile_input_set_profile_identifier(in, QMI_WDS_PROFILE_TYPE_3GPP,
									    (guint8)index, NULL);
		qmi_message_wds_modify_profile_input_set_apn_name(in, apn, NULL);
		qmi_client_wds_modify_profile(p->wds, in, timeout_of(run), run->cancellable,
					      profile_modify_cb, run);
	} else {
		g_autoptr(QmiMessageWdsCreateProfileInput) in = qmi_message_wds_create_profile_input_new();

		qmi_message_wds_create_profile_input_set_profile_type(in, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
		qmi_message_wds_create_profile_input_set_apn_name(in, apn, NULL);
		qmi_client_wds_create_profile(p->wds, in, timeout_of(run), run->cancellable,
					      profile_create_cb, run);
	}
}

static void
qmi_set_apn(CpModemRun *run, guint index, const char *apn)
{
	QmiPort *p = port_of(run);

	p->apn_index = index;
	g_free(p->apn);
	p->apn = g_strdup(apn);
	client_then(run, QMI_SERVICE_WDS, set_apn);
}

/* ---- operating mode ---------------------------------------------------- */

static void
mode_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	g_autoptr(QmiMessageDmsSetOperatingModeOutput) out =
		qmi_client_dms_set_operating_mode_finish(QMI_CLIENT_DMS(src), res, &error);

	if (out)
		qmi_message_dms_set_operating_mode_output_get_result(out, &error);
	done(data, error);
}

static void
set_mode(CpModemRun *run, QmiDmsOperatingMode mode)
{
	g_autoptr(QmiMessageDmsSetOperatingModeInput) in = qmi_message_dms_set_operating_mode_input_new();

	qmi_message_dms_set_operating_mode_input_set_mode(in, mode, NULL);
	qmi_client_dms_set_operating_mode(port_of(run)->dms, in, timeout_of(run), run->cancellable,
					  mode_cb, run);
}

static void
offline(CpModemRun *run)
{
	set_mode(run, QMI_DMS_OPERATING_MODE_OFFLINE);
}

static void
reset(CpModemRun *run)
{
	set_mode(run, QMI_DMS_OPERATING_MODE_RESET);
}

void
cp_qmi_offline(CpModemRun *run)
{
	client_then(run, QMI_SERVICE_DMS, offline);
}

void
cp_qmi_reset(CpModemRun *run)
{
	client_then(run, QMI_SERVICE_DMS, reset);
}

/* ---- registration ------------------------------------------------------ */

static void
registration_seen(CpModemRun *run, QmiNasRegistrationState state, gboolean have_plmn,
		  guint16 mcc, guint16 mnc, const char *name)
{
	g_autofree char *plmn = NULL;
	CpModemRegState s = CP_MODEM_REG_SEARCHING;

	if (state == QMI_NAS_REGISTRATION_STATE_REGISTRATION_DENIED)
		s = CP_MODEM_REG_DENIED;
	else if (state == QMI_NAS_REGISTRATION_STATE_REGISTERED)
		s = CP_MODEM_REG_REGISTERED;
	if (have_plmn)
		plmn = run->target->mnc_length == 3 ? g_strdup_printf("%03u%03u", mcc, mnc)
						     : g_strdup_printf("%03u%02u", mcc, mnc);
	cp_modem_run_registration(run, s, plmn, name);
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
	CpModemRun *run = cp_modem_reg_request_end(data);
	GError *error = NULL;
	g_autoptr(QmiMessageNasGetServingSystemOutput) out =
		qmi_client_nas_get_serving_system_finish(QMI_CLIENT_NAS(src), res, &error);
	QmiNasRegistrationState state;
	guint16 mcc = 0, mnc = 0;
	const char *name = NULL;
	gboolean plmn;

	if (!run) {
		g_clear_error(&error);
		return;
	}
	if (!out || !qmi_message_nas_get_serving_system_output_get_result(out, &error)) {
		/* during a reset the modem may refuse: the next poll asks again */
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || run->gone) {
			done(run, error);
			return;
		}
		g_debug("serving system: %s", error->message);
		g_error_free(error);
		return;
	}
	if (!qmi_message_nas_get_serving_system_output_get_serving_system(out, &state, NULL, NULL, NULL, NULL, NULL))
		return;
	plmn = qmi_message_nas_get_serving_system_output_get_current_plmn(out, &mcc, &mnc, &name, NULL);
	registration_seen(run, state, plmn, mcc, mnc, name);
}

/* Indications are not sent by every modem while it searches: poll too,
 * one request at a time (a modem that does not answer gets no pile). */
static gboolean
poll_cb(gpointer data)
{
	QmiPort *p = data;
	CpModemRegRequest *req = cp_modem_run_reg_request(p->run);

	if (!req)
		return G_SOURCE_CONTINUE;
	qmi_client_nas_get_serving_system(p->nas, NULL, timeout_of(p->run), p->run->cancellable,
					  serving_system_cb, req);
	return G_SOURCE_CONTINUE;
}

static void
registration_start(CpModemRun *run)
{
	QmiPort *p = port_of(run);

	if (!p->reg_wanted)
		return;
	p->ss_id = g_signal_connect(p->nas, "serving-system", G_CALLBACK(serving_system_ind_cb), run);
	p->poll_id = g_timeout_add(500, poll_cb, p);
	poll_cb(p);
}

static void
qmi_registration_start(CpModemRun *run)
{
	port_of(run)->reg_wanted = TRUE;
	client_then(run, QMI_SERVICE_NAS, registration_start);
}

static void
imsi_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(QmiMessageDmsUimGetImsiOutput) out =
		qmi_client_dms_uim_get_imsi_finish(QMI_CLIENT_DMS(src), res, &error);
	const char *imsi = NULL;

	if (out && !qmi_message_dms_uim_get_imsi_output_get_result(out, &error) &&
	    (g_error_matches(error, QMI_PROTOCOL_ERROR, QMI_PROTOCOL_ERROR_NOT_SUPPORTED) ||
	     g_error_matches(error, QMI_PROTOCOL_ERROR, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND))) {
		/* newer firmware moved it to UIM: the runner reads EF.IMSI */
		g_debug("DMS UIM Get IMSI: %s", error->message);
		g_error_free(error);
		done(run, NULL);
		return;
	}
	if (!out || error || !qmi_message_dms_uim_get_imsi_output_get_imsi(out, &imsi, &error)) {
		done(run, error);
		return;
	}
	cp_modem_run_set_imsi(run, imsi);
	done(run, NULL);
}

static void
read_imsi(CpModemRun *run)
{
	qmi_client_dms_uim_get_imsi(port_of(run)->dms, NULL, timeout_of(run), run->cancellable,
				    imsi_cb, run);
}

static void
qmi_read_imsi(CpModemRun *run)
{
	client_then(run, QMI_SERVICE_DMS, read_imsi);
}

/* UIM Get Slot Status (libqmi 1.26): the ATR of the active physical
 * slot. UIM has no other message for the ATR; modems without slot
 * management answer InvalidQmiCommand or NotSupported. */
static void
slot_status_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(QmiMessageUimGetSlotStatusOutput) out =
		qmi_client_uim_get_slot_status_finish(QMI_CLIENT_UIM(src), res, &error);
	GArray *status = NULL, *info = NULL;

	if (!out || !qmi_message_uim_get_slot_status_output_get_result(out, &error)) {
		done(run, error);
		return;
	}
	if (!qmi_message_uim_get_slot_status_output_get_physical_slot_status(out, &status, NULL) ||
	    !qmi_message_uim_get_slot_status_output_get_physical_slot_information(out, &info, NULL)) {
		done(run, g_error_new(CP_ERROR, CP_ERR_MODEM, "UIM Get Slot Status: no slot information"));
		return;
	}
	for (guint i = 0; i < status->len && i < info->len; i++) {
		QmiPhysicalSlotStatusSlot *s = &g_array_index(status, QmiPhysicalSlotStatusSlot, i);
		QmiPhysicalSlotInformationSlot *n = &g_array_index(info, QmiPhysicalSlotInformationSlot, i);

		if (s->physical_slot_status == QMI_UIM_SLOT_STATE_ACTIVE && n->atr_value && n->atr_value->len) {
			cp_modem_run_set_atr(run, (const guint8 *)n->atr_value->data, n->atr_value->len);
			break;
		}
	}
	done(run, NULL);
}

static void
qmi_read_atr(CpModemRun *run)
{
	qmi_client_uim_get_slot_status(port_of(run)->uim, NULL, timeout_of(run), run->cancellable,
				       slot_status_cb, run);
}

/* DMS Get Revision: the firmware revision, as qmicli --dms-get-revision. */
static void
revision_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(QmiMessageDmsGetRevisionOutput) out =
		qmi_client_dms_get_revision_finish(QMI_CLIENT_DMS(src), res, &error);
	const char *revision = NULL;

	if (!out || !qmi_message_dms_get_revision_output_get_result(out, &error) ||
	    !qmi_message_dms_get_revision_output_get_revision(out, &revision, &error)) {
		done(run, error);
		return;
	}
	cp_modem_run_set_firmware(run, revision);
	done(run, NULL);
}

static void
read_firmware(CpModemRun *run)
{
	qmi_client_dms_get_revision(port_of(run)->dms, NULL, timeout_of(run), run->cancellable,
				    revision_cb, run);
}

static void
qmi_read_firmware(CpModemRun *run)
{
	client_then(run, QMI_SERVICE_DMS, read_firmware);
}

/* ---- the tables -------------------------------------------------------- */

const CpCardTransport cp_qmi_transport = {
	.name = "qmi",
	.open = qmi_open,
	.close = qmi_close,
	.card_status = qmi_card_status,
	.read_iccid = qmi_read_iccid,
	.open_channel = qmi_open_channel,
	.close_channel = qmi_close_channel,
	.transmit = qmi_transmit,
	.read_atr = qmi_read_atr,
};

/* The port is the transport's: opened before these run, closed after. */
static const CpModemOps qmi_ops = {
	.name = "qmi",
	.read_apn = qmi_read_apn,
	.set_apn = qmi_set_apn,
	.offline = cp_qmi_offline,
	.reset = cp_qmi_reset,
	.registration_start = qmi_registration_start,
	.registration_stop = qmi_registration_stop,
	.read_imsi = qmi_read_imsi,
	.read_firmware = qmi_read_firmware,
};

const CpModemDriver cp_modem_driver_qmi = {
	.name = "qmi",
	.transport = &cp_qmi_transport,
	.ops = &qmi_ops,
};
