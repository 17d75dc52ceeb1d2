/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the ModemManager driver does on an MBIM or AT modem besides the
 * card, which it reaches through the MBIM and AT drivers' transports
 * (cp-mm-ports.h): the offline and the reset, and the AT ICCID. They run
 * only while ModemManager has the modem inhibited, on the port the
 * transport opened.
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

/* waiting for the node to come back after a reset */
struct _CpMmNodeWait {
	guint id;
	gint64 left_by;           /* monotonic µs: it has dropped off, or we stop looking */
	gint64 deadline;
	gboolean left;
};

void
cp_mm_node_wait_stop(CpModemRun *run)
{
	CpMmNodeWait **w = cp_mm_node_wait(run);

	if (!*w)
		return;
	if ((*w)->id)
		g_source_remove((*w)->id);
	g_clear_pointer(w, g_free);
}

/* ---- after a reset: the module's node back ------------------------------ */

static gboolean
node_poll_cb(gpointer data)
{
	CpModemRun *run = data;
	CpMmNodeWait *p = *cp_mm_node_wait(run);
	gboolean here = g_file_test(cp_mm_port_path(run), G_FILE_TEST_EXISTS);
	gint64 now = g_get_monotonic_time();

	if (!here)
		p->left = TRUE;
	else if (p->left || now >= p->left_by)
		goto back;
	if (now < p->deadline)
		return G_SOURCE_CONTINUE;
	p->id = 0;
	cp_modem_run_done(run, g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "%s did not come back after the reset",
					   cp_mm_port_path(run)));
	return G_SOURCE_REMOVE;
back:
	p->id = 0;
	g_info("%s is back after the reset", cp_mm_port_path(run));
	cp_modem_run_done(run, NULL);
	return G_SOURCE_REMOVE;
}

/* Done once the port's node has left (or did not within NODE_LEAVE_MS)
 * and is there again: ModemManager probes it once given back. */
static void
wait_node_back(CpModemRun *run)
{
	CpMmNodeWait *p;
	gint64 now = g_get_monotonic_time();

	cp_mm_node_wait_stop(run);
	p = *cp_mm_node_wait(run) = g_new0(CpMmNodeWait, 1);
	p->left_by = now + NODE_LEAVE_MS * G_TIME_SPAN_MILLISECOND;
	p->deadline = now + (gint64)MAX(run->modem->registration_timeout, 30) * G_TIME_SPAN_SECOND;
	p->id = g_timeout_add(NODE_POLL_MS, node_poll_cb, run);
}

/* ---- MBIM ---------------------------------------------------------------- */

#if CP_HAVE_MBIM

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
	cp_mbim_set_radio_async(cp_modem_mbim_of(run), FALSE, run->cancellable, mbim_radio_cb, run);
}

static void
mbim_reset_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	gboolean reenumerates = FALSE;

	if (!cp_mbim_reset_finish(CP_MBIM(src), res, &reenumerates, &error)) {
		cp_modem_mbim_set_resetting(run, FALSE);
		cp_modem_run_done(run, error);
		return;
	}
	if (!reenumerates) {
		cp_modem_mbim_set_resetting(run, FALSE);
		cp_modem_run_done(run, NULL);
		return;
	}
	wait_node_back(run);
}

void
cp_mm_mbim_reset(CpModemRun *run)
{
	cp_modem_mbim_set_resetting(run, TRUE);
	cp_mbim_reset_async(cp_modem_mbim_of(run), run->cancellable, mbim_reset_cb, run);
}

#endif /* CP_HAVE_MBIM */

/* ---- AT ------------------------------------------------------------------- */

static void
at_iccid_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *iccid = cp_at_modem_get_iccid_finish(CP_AT_MODEM(src), res, &error);

	if (iccid)
		cp_modem_run_set_iccid_digits(run, iccid, &error);
	cp_modem_run_done(run, error);
}

void
cp_mm_at_read_iccid(CpModemRun *run)
{
	cp_at_modem_get_iccid(cp_modem_at_of(run), run->cancellable, at_iccid_cb, run);
}

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
	cp_at_modem_set_functionality(cp_modem_at_of(run), 4, FALSE, run->cancellable, at_cfun_cb, run);
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
	cp_at_modem_set_functionality(cp_modem_at_of(run), 1, TRUE, run->cancellable, at_reset_cb, run);
}
