/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The MBIM and AT transports of the ModemManager driver (cp-mm-ports.h):
 * adapters from the card engine's CpCardTransport to the MBIM module
 * (cp-mbim.c) and the AT module (cp-at-modem.c). They run only while
 * ModemManager has the modem inhibited: the MBIM port through mbim-proxy
 * (which ModemManager also uses), the AT tty directly (ModemManager has
 * closed it).
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include "cp-config.h"
#include "cp-at-modem.h"
#if CP_HAVE_MBIM
#include "cp-mbim.h"
#endif
#include "cp-mm-ports.h"

#define NODE_POLL_MS 100
/* how long a resetting module may take to drop off the bus */
#define NODE_LEAVE_MS 3000

typedef struct {
#if CP_HAVE_MBIM
	CpMbim *mbim;
	gulong removed_id;
#endif
	CpAtPort *at_port;
	CpAtModem *at;
	gboolean resetting;       /* the port going away is the reset's doing */
	/* waiting for the node to come back after a reset */
	guint node_id;
	gint64 node_left_by;      /* monotonic µs: it has dropped off, or we stop looking */
	gint64 node_deadline;
	gboolean node_left;
} Port;

static Port *
port_of(CpModemRun *run)
{
	return run->port;
}

static void
port_free(CpModemRun *run)
{
	Port *p = port_of(run);

	if (!p)
		return;
	if (p->node_id)
		g_source_remove(p->node_id);
#if CP_HAVE_MBIM
	if (p->mbim) {
		if (p->removed_id)
			g_signal_handler_disconnect(p->mbim, p->removed_id);
		/* the proxy's client only: the device stays with the proxy */
		if (cp_mbim_is_present(p->mbim))
			cp_mbim_close_async(p->mbim, NULL, NULL, NULL);
		g_object_unref(p->mbim);
	}
#endif
	g_clear_object(&p->at);
	g_clear_object(&p->at_port);
	g_free(p);
	run->port = NULL;
}

/* EF.ICCID (TS 102 221 13.2) from its digits: BCD, nibbles swapped, F padded. */
static gboolean
iccid_to_ef(CpModemRun *run, const char *iccid, GError **error)
{
	guint8 ef[10];
	gsize n = iccid ? strlen(iccid) : 0;

	if (n < 18 || n > 20) {
		g_set_error(error, CP_ERROR, CP_ERR_MODEM, "the modem reported an ICCID of %zu digits", n);
		return FALSE;
	}
	memset(ef, 0xFF, sizeof(ef));
	for (gsize i = 0; i < n; i++) {
		guint8 d;

		if (!g_ascii_isdigit(iccid[i])) {
			g_set_error_literal(error, CP_ERROR, CP_ERR_MODEM, "the modem reported an ICCID that is not digits");
			return FALSE;
		}
		d = (guint8)(iccid[i] - '0');
		if (i % 2 == 0)
			ef[i / 2] = (guint8)(0xF0 | d);
		else
			ef[i / 2] = (guint8)((ef[i / 2] & 0x0F) | (d << 4));
	}
	cp_modem_run_set_iccid(run, ef, sizeof(ef));
	return TRUE;
}

/* ---- after a reset: the module's node back ------------------------------ */

static gboolean
node_poll_cb(gpointer data)
{
	CpModemRun *run = data;
	Port *p = port_of(run);
	gboolean here = g_file_test(cp_mm_port_path(run), G_FILE_TEST_EXISTS);
	gint64 now = g_get_monotonic_time();

	if (!here)
		p->node_left = TRUE;
	else if (p->node_left || now >= p->node_left_by)
		goto back;
	if (now < p->node_deadline)
		return G_SOURCE_CONTINUE;
	p->node_id = 0;
	cp_modem_run_done(run, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "%s did not come back after the reset",
					   cp_mm_port_path(run)));
	return G_SOURCE_REMOVE;
back:
	p->node_id = 0;
	g_info("%s is back after the reset", cp_mm_port_path(run));
	cp_modem_run_done(run, NULL);
	return G_SOURCE_REMOVE;
}

/* Done once the port's node has left (or did not within NODE_LEAVE_MS)
 * and is there again: ModemManager probes it once given back. */
static void
wait_node_back(CpModemRun *run)
{
	Port *p = port_of(run);
	gint64 now = g_get_monotonic_time();

	p->node_left = FALSE;
	p->node_left_by = now + NODE_LEAVE_MS * G_TIME_SPAN_MILLISECOND;
	p->node_deadline = now + (gint64)MAX(run->modem->registration_timeout, 30) * G_TIME_SPAN_SECOND;
	p->node_id = g_timeout_add(NODE_POLL_MS, node_poll_cb, run);
}

/* ---- MBIM ---------------------------------------------------------------- */

#if CP_HAVE_MBIM

static void
mbim_removed_cb(CpMbim *mbim, gpointer data)
{
	CpModemRun *run = data;

	if (!port_of(run)->resetting)
		cp_modem_run_gone(run);
}

static void
mbim_open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	CpMbim *mbim = cp_mbim_open_finish(res, &error);
	Port *p;

	if (!mbim) {
		cp_modem_run_done(run, error);
		return;
	}
	p = g_new0(Port, 1);
	p->mbim = mbim;
	p->removed_id = g_signal_connect(mbim, "removed", G_CALLBACK(mbim_removed_cb), run);
	run->port = p;
	cp_modem_run_done(run, NULL);
}

static void
mbim_open(CpModemRun *run)
{
	cp_mbim_open_async(cp_mm_port_path(run), run->modem->request_timeout, run->cancellable,
			   mbim_open_cb, run);
}

static void
mbim_card_status_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *iccid = NULL;
	g_autofree char *imsi = NULL;

	cp_mbim_subscriber_finish(CP_MBIM(src), res, &iccid, &imsi, &error);
	cp_modem_run_done(run, error);
}

static void
mbim_card_status(CpModemRun *run)
{
	cp_mbim_subscriber_async(port_of(run)->mbim, run->cancellable, mbim_card_status_cb, run);
}

static void
mbim_iccid_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *iccid = NULL;
	g_autofree char *imsi = NULL;

	if (cp_mbim_subscriber_finish(CP_MBIM(src), res, &iccid, &imsi, &error))
		iccid_to_ef(run, iccid, &error);
	cp_modem_run_done(run, error);
}

static void
mbim_read_iccid(CpModemRun *run)
{
	cp_mbim_subscriber_async(port_of(run)->mbim, run->cancellable, mbim_iccid_cb, run);
}

static void
mbim_channel_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	guint channel = cp_mbim_open_channel_finish(CP_MBIM(src), res, &error);

	if (!error)
		cp_modem_run_set_channel(run, channel);
	cp_modem_run_done(run, error);
}

static void
mbim_open_channel(CpModemRun *run, const guint8 *aid, gsize aid_len)
{
	cp_mbim_open_channel_async(port_of(run)->mbim, aid, aid_len, run->cancellable, mbim_channel_cb, run);
}

static void
mbim_channel_closed_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_mbim_close_channel_finish(CP_MBIM(src), res, &error);
	cp_modem_run_done(data, error);
}

static void
mbim_close_channel(CpModemRun *run, guint channel)
{
	cp_mbim_close_channel_async(port_of(run)->mbim, channel, run->cancellable, mbim_channel_closed_cb, run);
}

static void
mbim_apdu_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	GBytes *resp = cp_mbim_apdu_finish(CP_MBIM(src), res, &error);

	cp_modem_run_apdu_done(data, resp, error);
}

static void
mbim_transmit(CpModemRun *run, guint channel, const guint8 *apdu, gsize len)
{
	g_autoptr(GBytes) b = g_bytes_new(apdu, len);

	cp_mbim_apdu_async(port_of(run)->mbim, channel, b, run->cancellable, mbim_apdu_cb, run);
}

const CpCardTransport cp_mm_mbim_transport = {
	.name = "mbim",
	.open = mbim_open,
	.close = port_free,
	.card_status = mbim_card_status,
	.read_iccid = mbim_read_iccid,
	.open_channel = mbim_open_channel,
	.close_channel = mbim_close_channel,
	.transmit = mbim_transmit,
};

static void
mbim_radio_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_mbim_set_radio_finish(CP_MBIM(src), res, &error);
	cp_modem_run_done(data, error);
}

void
cp_mm_mbim_offline(CpModemRun *run)
{
	cp_mbim_set_radio_async(port_of(run)->mbim, FALSE, run->cancellable, mbim_radio_cb, run);
}

static void
mbim_reset_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	gboolean reenumerates = FALSE;

	if (!cp_mbim_reset_finish(CP_MBIM(src), res, &reenumerates, &error)) {
		port_of(run)->resetting = FALSE;
		cp_modem_run_done(run, error);
		return;
	}
	if (!reenumerates) {
		port_of(run)->resetting = FALSE;
		cp_modem_run_done(run, NULL);
		return;
	}
	wait_node_back(run);
}

void
cp_mm_mbim_reset(CpModemRun *run)
{
	port_of(run)->resetting = TRUE;
	cp_mbim_reset_async(port_of(run)->mbim, run->cancellable, mbim_reset_cb, run);
}

#endif /* CP_HAVE_MBIM */

/* ---- AT ------------------------------------------------------------------- */

static void
at_setup_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_at_modem_setup_finish(CP_AT_MODEM(src), res, &error);
	cp_modem_run_done(data, error);
}

static void
at_open(CpModemRun *run)
{
	GError *error = NULL;
	CpAtPort *port = cp_at_port_open(cp_mm_port_path(run), &error);
	Port *p;

	if (!port) {
		cp_modem_run_done(run, error);
		return;
	}
	cp_at_port_set_timeout(port, run->modem->request_timeout * 1000);
	p = g_new0(Port, 1);
	p->at_port = port;
	p->at = cp_at_modem_new(port);
	run->port = p;
	cp_at_modem_setup(p->at, run->cancellable, at_setup_cb, run);
}

static void
at_pin_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	g_autofree char *state = cp_at_modem_get_pin_state_finish(CP_AT_MODEM(src), res, &error);

	if (state && strcmp(state, "READY") != 0)
		error = g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "the SIM is locked (+CPIN: %s)", state);
	cp_modem_run_done(data, error);
}

static void
at_card_status(CpModemRun *run)
{
	cp_at_modem_get_pin_state(port_of(run)->at, run->cancellable, at_pin_cb, run);
}

static void
at_iccid_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *iccid = cp_at_modem_get_iccid_finish(CP_AT_MODEM(src), res, &error);

	if (iccid)
		iccid_to_ef(run, iccid, &error);
	cp_modem_run_done(run, error);
}

static void
at_read_iccid(CpModemRun *run)
{
	cp_at_modem_get_iccid(port_of(run)->at, run->cancellable, at_iccid_cb, run);
}

static void
at_channel_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	guint channel = cp_at_modem_open_channel_finish(CP_AT_MODEM(src), res, &error);

	if (!error)
		cp_modem_run_set_channel(run, channel);
	cp_modem_run_done(run, error);
}

static void
at_open_channel(CpModemRun *run, const guint8 *aid, gsize aid_len)
{
	g_autoptr(GBytes) b = g_bytes_new(aid, aid_len);

	cp_at_modem_open_channel(port_of(run)->at, b, run->cancellable, at_channel_cb, run);
}

static void
at_channel_closed_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_at_modem_close_channel_finish(CP_AT_MODEM(src), res, &error);
	cp_modem_run_done(data, error);
}

static void
at_close_channel(CpModemRun *run, guint channel)
{
	cp_at_modem_close_channel(port_of(run)->at, channel, run->cancellable, at_channel_closed_cb, run);
}

static void
at_apdu_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;
	GBytes *resp = cp_at_modem_apdu_finish(CP_AT_MODEM(src), res, &error);

	cp_modem_run_apdu_done(data, resp, error);
}

static void
at_transmit(CpModemRun *run, guint channel, const guint8 *apdu, gsize len)
{
	g_autoptr(GBytes) b = g_bytes_new(apdu, len);

	cp_at_modem_apdu(port_of(run)->at, channel, b, run->cancellable, at_apdu_cb, run);
}

const CpCardTransport cp_mm_at_transport = {
	.name = "at",
	.open = at_open,
	.close = port_free,
	.card_status = at_card_status,
	.read_iccid = at_read_iccid,
	.open_channel = at_open_channel,
	.close_channel = at_close_channel,
	.transmit = at_transmit,
};

static void
at_cfun_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_at_modem_set_functionality_finish(CP_AT_MODEM(src), res, &error);
	cp_modem_run_done(data, error);
}

void
cp_mm_at_offline(CpModemRun *run)
{
	cp_at_modem_set_functionality(port_of(run)->at, 4, FALSE, run->cancellable, at_cfun_cb, run);
}

static void
at_reset_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;

	if (!cp_at_modem_set_functionality_finish(CP_AT_MODEM(src), res, &error)) {
		cp_modem_run_done(run, error);
		return;
	}
	wait_node_back(run);
}

void
cp_mm_at_reset(CpModemRun *run)
{
	port_of(run)->resetting = TRUE;
	cp_at_modem_set_functionality(port_of(run)->at, 1, TRUE, run->cancellable, at_reset_cb, run);
}
