/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The MBIM driver: cp-mbim (libmbim, always through mbim-proxy, so that
 * ModemManager keeps the port; docs/mbim.md). Its transport reaches the
 * card through the subscriber ready status (card status, the ICCID) and
 * the Microsoft UICC low-level access service (a logical channel,
 * APDUs); its modem operations use the basic-connect provisioned contexts
 * (the APN), the radio state (offline, then on again: the modem starts a
 * new card session and reads the new subscription), the register state
 * and its indications (registration) and the subscriber ready status
 * again (the IMSI).
 *
 * Only adapters: each entry makes one or a few requests and hands the
 * answer to the runner (cp-modem-driver.h), which owns the flow.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include "cp-mbim.h"
#include "cp-modem-driver.h"

typedef struct {
	CpModemRun *run;
	CpMbim *mbim;
	gulong removed_id;
	char *iccid;                     /* card_status: the subscriber's */
	gboolean resetting;              /* its leaving is the reset's doing */
} MbimPort;

static MbimPort *
port_of(CpModemRun *run)
{
	return run->port;
}

CpMbim *
cp_modem_mbim_of(CpModemRun *run)
{
	return port_of(run)->mbim;
}

void
cp_modem_mbim_set_resetting(CpModemRun *run, gboolean resetting)
{
	port_of(run)->resetting = resetting;
}

static void
done(CpModemRun *run, GError *error)
{
	cp_modem_run_done(run, error);
}

/* ---- port -------------------------------------------------------------- */

/* Teardown, best effort: the device may be gone already. Closing ends
 * our client of the proxy only. */
static void
mbim_close(CpModemRun *run)
{
	MbimPort *p = port_of(run);

	if (!p)
		return;
	if (p->mbim) {
		if (p->removed_id)
			g_signal_handler_disconnect(p->mbim, p->removed_id);
		if (!run->gone && cp_mbim_is_present(p->mbim))
			cp_mbim_close_async(p->mbim, NULL, NULL, NULL);
	}
	g_clear_object(&p->mbim);
	g_free(p->iccid);
	g_free(p);
	run->port = NULL;
}

/* The device left (USB unplug, a module's own reboot): what runs fails
 * with CP_ERR_MODEM_GONE. */
static void
removed_cb(CpMbim *mbim, gpointer data)
{
	CpModemRun *run = data;

	if (!port_of(run)->resetting)
		cp_modem_run_gone(run);
}

static void
open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	MbimPort *p = port_of(run);
	GError *error = NULL;

	p->mbim = cp_mbim_open_finish(res, &error);
	if (!p->mbim) {
		done(run, error);
		return;
	}
	p->removed_id = g_signal_connect(p->mbim, "removed", G_CALLBACK(removed_cb), run);
	done(run, NULL);
}

static void
mbim_open(CpModemRun *run)
{
	MbimPort *p = g_new0(MbimPort, 1);

	p->run = run;
	run->port = p;
	cp_mbim_open_async(run->device, run->modem->request_timeout, run->cancellable,
			   open_cb, run);
}

/* ---- card -------------------------------------------------------------- */

static void
subscriber_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	MbimPort *p = port_of(run);
	GError *error = NULL;
	g_autofree char *iccid = NULL;

	if (!cp_mbim_subscriber_finish(CP_MBIM(src), res, &iccid, NULL, &error)) {
		done(run, error);
		return;
	}
	g_free(p->iccid);
	p->iccid = g_steal_pointer(&iccid);
	done(run, NULL);
}

static void
mbim_card_status(CpModemRun *run)
{
	cp_mbim_subscriber_async(port_of(run)->mbim, run->cancellable, subscriber_cb, run);
}

/* The ICCID the card status brought. Not 18-20 digits: none, and the
 * runner refuses to go on (card-absent: nothing ties a backup to it). */
static void
mbim_read_iccid(CpModemRun *run)
{
	if (!cp_modem_run_set_iccid_digits(run, port_of(run)->iccid, NULL))
		cp_modem_run_set_iccid(run, NULL, 0);
	done(run, NULL);
}

static void
applications_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	g_autoptr(GError) error = NULL;
	CpMbimApplications a;

	if (!cp_mbim_applications_finish(CP_MBIM(src), res, &a, &error)) {
		/* a modem without the list: EF.DIR */
		g_debug("the card's application list: %s", error->message);
		cp_modem_run_set_applications(run, NULL, 0, NULL, 0);
		done(run, g_error_matches(error, CP_ERROR, CP_ERR_MODEM) ? NULL : g_steal_pointer(&error));
		return;
	}
	cp_modem_run_set_applications(run, a.usim, a.usim_len, a.isim, a.isim_len);
	done(run, NULL);
}

static void
mbim_list_applications(CpModemRun *run)
{
	cp_mbim_applications_async(port_of(run)->mbim, run->cancellable, applications_cb, run);
}

static void
channel_open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	guint channel = cp_mbim_open_channel_finish(CP_MBIM(src), res, &error);

	if (channel)
		cp_modem_run_set_channel(run, channel);
	done(run, error);
}

static void
mbim_open_channel(CpModemRun *run, const guint8 *aid, gsize aid_len)
{
	cp_mbim_open_channel_async(port_of(run)->mbim, aid, aid_len, run->cancellable,
				   channel_open_cb, run);
}

static void
channel_close_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_mbim_close_channel_finish(CP_MBIM(src), res, &error);
	done(data, error);
}

static void
mbim_close_channel(CpModemRun *run, guint channel)
{
	cp_mbim_close_channel_async(port_of(run)->mbim, channel, run->cancellable,
				    channel_close_cb, run);
}

static void
apdu_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	GBytes *resp = cp_mbim_apdu_finish(CP_MBIM(src), res, &error);

	cp_modem_run_apdu_done(data, resp, error);
}

static void
mbim_transmit(CpModemRun *run, guint channel, const guint8 *apdu, gsize len)
{
	g_autoptr(GBytes) b = g_bytes_new(apdu, len);

	cp_mbim_apdu_async(port_of(run)->mbim, channel, b, run->cancellable, apdu_cb, run);
}

/* ---- APN: the provisioned internet context ------------------------------ */

static void
apn_get_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *apn = cp_mbim_get_apn_finish(CP_MBIM(src), res, &error);

	if (!apn) {
		done(run, error);
		return;
	}
	/* "": no internet context yet (set_apn provisions one). cp-mbim
	 * finds the context itself: the index only says there is one. */
	cp_modem_run_set_old_apn(run, *apn != '\0', 1, apn);
	done(run, NULL);
}

static void
mbim_read_apn(CpModemRun *run)
{
	cp_mbim_get_apn_async(port_of(run)->mbim, run->cancellable, apn_get_cb, run);
}

static void
apn_set_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_mbim_set_apn_finish(CP_MBIM(src), res, &error);
	done(data, error);
}

static void
mbim_set_apn(CpModemRun *run, guint index, const char *apn)
{
	cp_mbim_set_apn_async(port_of(run)->mbim, apn, run->cancellable, apn_set_cb, run);
}

/* ---- offline and on again: the radio state ------------------------------ */

static void
radio_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_mbim_set_radio_finish(CP_MBIM(src), res, &error);
	done(data, error);
}

static void
mbim_offline(CpModemRun *run)
{
	cp_mbim_set_radio_async(port_of(run)->mbim, FALSE, run->cancellable, radio_cb, run);
}

/* The radio on again: the modem starts a new card session (MBIM 1.0
 * §10.5.6: leaving radio off re-initialises the SIM) and attaches with
 * the new subscription. The device stays; one that leaves the bus anyway
 * is reported by "removed", CP_ERR_MODEM_GONE. */
static void
mbim_reset(CpModemRun *run)
{
	cp_mbim_set_radio_async(port_of(run)->mbim, TRUE, run->cancellable, radio_cb, run);
}

/* ---- registration ------------------------------------------------------ */

static void
registered_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = cp_modem_reg_request_end(data);
	GError *error = NULL;
	g_autoptr(CpMbimRegistration) r = cp_mbim_wait_registered_finish(CP_MBIM(src), res, &error);

	if (!run) {
		g_clear_error(&error);
		return;
	}
	if (g_error_matches(error, CP_ERROR, CP_ERR_REG_DENIED)) {
		g_info("%s", error->message);
		g_error_free(error);
		cp_modem_run_registration(run, CP_MODEM_REG_DENIED, NULL, NULL);
		return;
	}
	if (!r) {
		done(run, error);
		return;
	}
	/* the runner stops the wait, or waits on for its network: then the
	 * modem is roaming elsewhere until the deadline */
	cp_modem_run_registration(run, CP_MODEM_REG_REGISTERED, r->plmn, NULL);
}

/* cp-mbim's wait, on the register state and its indications; the runner
 * owns the deadline, so the wait's own is past it. */
static void
mbim_registration_start(CpModemRun *run)
{
	guint ms = (run->modem->registration_timeout + 10) * 1000;
	CpModemRegRequest *req = cp_modem_run_reg_request(run);

	cp_mbim_wait_registered_async(port_of(run)->mbim, ms, cp_modem_reg_request_cancellable(req),
				      registered_cb, req);
}

static void
imsi_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *imsi = NULL;

	if (!cp_mbim_subscriber_finish(CP_MBIM(src), res, NULL, &imsi, &error)) {
		done(run, error);
		return;
	}
	/* none: the runner reads EF.IMSI */
	if (imsi)
		cp_modem_run_set_imsi(run, imsi);
	done(run, NULL);
}

static void
mbim_read_imsi(CpModemRun *run)
{
	cp_mbim_subscriber_async(port_of(run)->mbim, run->cancellable, imsi_cb, run);
}

static void
firmware_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *firmware = cp_mbim_firmware_finish(CP_MBIM(src), res, &error);

	if (firmware && *firmware)
		cp_modem_run_set_firmware(run, firmware);
	done(run, error);
}

static void
mbim_read_firmware(CpModemRun *run)
{
	cp_mbim_firmware_async(port_of(run)->mbim, run->cancellable, firmware_cb, run);
}

/* MS UICC low-level access ATR */
static void
atr_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autoptr(GBytes) atr = cp_mbim_atr_finish(CP_MBIM(src), res, &error);

	if (atr)
		cp_modem_run_set_atr(run, g_bytes_get_data(atr, NULL), g_bytes_get_size(atr));
	done(run, error);
}

static void
mbim_read_atr(CpModemRun *run)
{
	cp_mbim_atr_async(port_of(run)->mbim, run->cancellable, atr_cb, run);
}

/* ---- the tables -------------------------------------------------------- */

static const CpCardTransport mbim_transport = {
	.name = "mbim",
	.open = mbim_open,
	.close = mbim_close,
	.card_status = mbim_card_status,
	.list_applications = mbim_list_applications,
	.read_iccid = mbim_read_iccid,
	.open_channel = mbim_open_channel,
	.close_channel = mbim_close_channel,
	.transmit = mbim_transmit,
	.read_atr = mbim_read_atr,
};

/* The port is the transport's: opened before these run, closed after. */
static const CpModemOps mbim_ops = {
	.name = "mbim",
	.read_apn = mbim_read_apn,
	.set_apn = mbim_set_apn,
	.offline = mbim_offline,
	.reset = mbim_reset,
	.registration_start = mbim_registration_start,
	.read_imsi = mbim_read_imsi,
	.read_firmware = mbim_read_firmware,
};

const CpModemDriver cp_modem_driver_mbim = {
	.name = "mbim",
	.transport = &mbim_transport,
	.ops = &mbim_ops,
	.proxy = TRUE,
};
