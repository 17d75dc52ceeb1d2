/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT driver: the module's AT port (a tty) through cp-at-port and
 * cp-at-modem (docs/at.md). Its transport reaches the card with +CPIN?
 * (card status), +CCHO/+CCHC (a logical channel) and +CSIM/+CGLA (APDUs);
 * the ICCID is left to the runner, which reads EF.ICCID with +CSIM on the
 * basic channel (the vendors' +CCID commands differ). Its modem operations
 * use +CGDCONT (the APN), +CFUN (offline, then online: the module reads
 * the card again), +CEREG/+C5GREG/+CREG and +COPS (registration) and
 * +CIMI.
 *
 * Only adapters: each entry makes one or a few commands and hands the
 * answer to the runner (cp-modem-driver.h), which owns the flow.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include "cp-at-modem.h"
#include "cp-modem-driver.h"

/* +CGDCONT <PDP_type> of a context this driver creates (TS 27.007 §10.1.1) */
#define AT_NEW_PDP_TYPE "IPV4V6"
/* registration: how often the module is asked again after an answer that
 * is not the end (registered elsewhere, or a +COPS without a network) */
#define AT_REG_RETRY_MS 500

typedef struct {
	CpModemRun *run;
	CpAtPort *port;
	CpAtModem *at;
	char *pdp_type;                  /* read_apn: the context's type */
	guint retry_id;                  /* the registration wait again */
} AtPort;

static AtPort *
port_of(CpModemRun *run)
{
	return run->port;
}

CpAtModem *
cp_modem_at_of(CpModemRun *run)
{
	return port_of(run)->at;
}

/* The port reports its going away as CP_ERR_MODEM_GONE on the command
 * that saw it (and on every one after): tell the runner. */
static void
done(CpModemRun *run, GError *error)
{
	if (g_error_matches(error, CP_ERROR, CP_ERR_MODEM_GONE))
		cp_modem_run_gone(run);
	cp_modem_run_done(run, error);
}

/* ---- port -------------------------------------------------------------- */

static void
at_registration_stop(CpModemRun *run)
{
	AtPort *p = port_of(run);

	if (!p)
		return;
	if (p->retry_id)
		g_source_remove(p->retry_id);
	p->retry_id = 0;
}

static void
at_close(CpModemRun *run)
{
	AtPort *p = port_of(run);

	if (!p)
		return;
	at_registration_stop(run);
	g_clear_object(&p->at);
	g_clear_object(&p->port);
	g_free(p->pdp_type);
	g_free(p);
	run->port = NULL;
}

static void
setup_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_at_modem_setup_finish(CP_AT_MODEM(src), res, &error);
	done(data, error);
}

/* The tty, then AT until it answers, verbose results, numeric errors. */
static void
at_open(CpModemRun *run)
{
	AtPort *p = g_new0(AtPort, 1);
	GError *error = NULL;

	p->run = run;
	run->port = p;
	p->port = cp_at_port_open(run->device, &error);
	if (!p->port) {
		done(run, error);
		return;
	}
	cp_at_port_set_timeout(p->port, run->modem->request_timeout * 1000);
	p->at = cp_at_modem_new(p->port);
	cp_at_modem_setup(p->at, run->cancellable, setup_cb, run);
}

/* ---- card -------------------------------------------------------------- */

static void
pin_state_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *state = cp_at_modem_get_pin_state_finish(CP_AT_MODEM(src), res, &error);

	if (!state) {
		/* +CME ERROR 14 "SIM busy" while a module starts: asked again */
		if (g_error_matches(error, CP_ERROR, CP_ERR_MODEM) && strstr(error->message, "ERROR: 14")) {
			GError *e = g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "the card is not ready: %s",
						error->message);

			g_error_free(error);
			error = e;
		}
		done(run, error);
		return;
	}
	if (strcmp(state, "READY") != 0) {
		/* cellprov does not enter the user's PIN */
		done(run, g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "the card is locked (+CPIN: %s)", state));
		return;
	}
	done(run, NULL);
}

static void
at_card_status(CpModemRun *run)
{
	cp_at_modem_get_pin_state(port_of(run)->at, run->cancellable, pin_state_cb, run);
}

static void
channel_open_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	guint channel = cp_at_modem_open_channel_finish(CP_AT_MODEM(src), res, &error);

	if (channel)
		cp_modem_run_set_channel(run, channel);
	done(run, error);
}

static void
at_open_channel(CpModemRun *run, const guint8 *aid, gsize aid_len)
{
	g_autoptr(GBytes) b = g_bytes_new(aid, aid_len);

	cp_at_modem_open_channel(port_of(run)->at, b, run->cancellable, channel_open_cb, run);
}

static void
channel_close_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_at_modem_close_channel_finish(CP_AT_MODEM(src), res, &error);
	done(data, error);
}

static void
at_close_channel(CpModemRun *run, guint channel)
{
	cp_at_modem_close_channel(port_of(run)->at, channel, run->cancellable, channel_close_cb, run);
}

static void
apdu_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	GBytes *resp = cp_at_modem_apdu_finish(CP_AT_MODEM(src), res, &error);

	if (g_error_matches(error, CP_ERROR, CP_ERR_MODEM_GONE))
		cp_modem_run_gone(run);
	cp_modem_run_apdu_done(run, resp, error);
}

static void
at_transmit(CpModemRun *run, guint channel, const guint8 *apdu, gsize len)
{
	g_autoptr(GBytes) b = g_bytes_new(apdu, len);

	cp_at_modem_apdu(port_of(run)->at, channel, b, run->cancellable, apdu_cb, run);
}

/* ---- APN: +CGDCONT ----------------------------------------------------- */

/* The lowest context of a +CGDCONT? answer (the one the module attaches
 * with, cid 1 on LTE), or the context want; *cid 0 when there is none. */
static gboolean
cgdcont_pick(const CpAtResponse *r, guint want, guint *cid, char **type, char **apn, GError **error)
{
	*cid = 0;
	for (guint i = 0; i < r->lines->len; i++) {
		g_autofree char *t = NULL, *a = NULL;
		guint c;

		if (!cp_at_parse_cgdcont(r->lines->pdata[i], &c, &t, &a, error))
			return FALSE;
		if (c == 0 || (want && c != want) || (*cid && c >= *cid))
			continue;
		*cid = c;
		g_free(*type);
		*type = g_steal_pointer(&t);
		g_free(*apn);
		*apn = g_steal_pointer(&a);
	}
	return TRUE;
}

static void
cgdcont_read_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	AtPort *p = port_of(run);
	GError *error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);
	g_autofree char *apn = NULL;
	guint cid;

	if (!r || !cp_at_response_check(r, "+CGDCONT?", &error) ||
	    !cgdcont_pick(r, 0, &cid, &p->pdp_type, &apn, &error)) {
		done(run, error);
		return;
	}
	cp_modem_run_set_old_apn(run, cid != 0, cid, apn);
	done(run, NULL);
}

static void
at_read_apn(CpModemRun *run)
{
	cp_at_port_command(port_of(run)->port, "+CGDCONT?", "+CGDCONT:", CP_AT_BARE_NONE, 0,
			   run->cancellable, cgdcont_read_cb, run);
}

static void
apn_set_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_at_modem_set_apn_finish(CP_AT_MODEM(src), res, &error);
	done(data, error);
}

static void
apn_write(CpModemRun *run, guint cid, const char *apn)
{
	AtPort *p = port_of(run);
	const char *type = p->pdp_type;

	if (!type || (strcmp(type, "IP") != 0 && strcmp(type, "IPV6") != 0 && strcmp(type, "IPV4V6") != 0))
		type = AT_NEW_PDP_TYPE;
	cp_at_modem_set_apn(p->at, cid, type, apn, run->cancellable, apn_set_cb, run);
}

typedef struct {
	CpModemRun *run;
	guint cid;
	char *apn;
} ApnSet;

static void
cgdcont_type_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	ApnSet *a = data;
	CpModemRun *run = a->run;
	GError *error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);
	g_autofree char *apn = NULL;
	guint cid;

	if (!r || !cp_at_response_check(r, "+CGDCONT?", &error) ||
	    !cgdcont_pick(r, a->cid, &cid, &port_of(run)->pdp_type, &apn, &error))
		done(run, error);
	else
		apn_write(run, a->cid, a->apn);
	g_free(a->apn);
	g_free(a);
}

/* index 0: no context yet, cid 1 is made. The context keeps its PDP type:
 * a restore after a restart, which read nothing, asks for it first. */
static void
at_set_apn(CpModemRun *run, guint index, const char *apn)
{
	AtPort *p = port_of(run);
	ApnSet *a;

	if (!index || p->pdp_type) {
		apn_write(run, index ? index : 1, apn);
		return;
	}
	a = g_new0(ApnSet, 1);
	a->run = run;
	a->cid = index;
	a->apn = g_strdup(apn);
	cp_at_port_command(p->port, "+CGDCONT?", "+CGDCONT:", CP_AT_BARE_NONE, 0,
			   run->cancellable, cgdcont_type_cb, a);
}

/* ---- offline and online: +CFUN ----------------------------------------- */

static void
cfun_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	GError *error = NULL;

	cp_at_modem_set_functionality_finish(CP_AT_MODEM(src), res, &error);
	done(data, error);
}

/* +CFUN=0: minimum functionality, the card powered down (TS 27.007 §8.2;
 * Quectel, SIMCom, u-blox alike). */
static void
at_offline(CpModemRun *run)
{
	cp_at_modem_set_functionality(port_of(run)->at, 0, FALSE, run->cancellable, cfun_cb, run);
}

/* +CFUN=1: full functionality; the module starts the card again and reads
 * the new subscription. The port stays: a module that drops off the bus
 * here anyway is CP_ERR_MODEM_GONE from its port. */
static void
at_reset(CpModemRun *run)
{
	cp_at_modem_set_functionality(port_of(run)->at, 1, FALSE, run->cancellable, cfun_cb, run);
}

/* ---- registration ------------------------------------------------------ */

static void wait_start(AtPort *p);

static gboolean
retry_cb(gpointer data)
{
	AtPort *p = data;

	p->retry_id = 0;
	wait_start(p);
	return G_SOURCE_REMOVE;
}

/* The answer was not the end (registered on another network, a denial
 * the runner let pass): ask again a little later. No run when the runner
 * stopped the wait meanwhile (the port may be closed). */
static void
wait_end(CpModemRegRequest *req, GError *error)
{
	CpModemRun *run = cp_modem_reg_request_end(req);

	if (!run) {
		g_clear_error(&error);
		return;
	}
	if (error) {
		done(run, error);
		return;
	}
	port_of(run)->retry_id = g_timeout_add(AT_REG_RETRY_MS, retry_cb, port_of(run));
}

/* "+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]" with format 2: the PLMN. */
static char *
parse_cops_numeric(const char *line)
{
	g_auto(GStrv) f = NULL;
	gsize n;

	if (!g_str_has_prefix(line, "+COPS:"))
		return NULL;
	f = g_strsplit(line + 6, ",", 4);
	if (g_strv_length(f) < 3 || strcmp(g_strstrip(f[1]), "2") != 0)
		return NULL;
	g_strstrip(f[2]);
	n = strlen(f[2]);
	if (n < 7 || n > 8 || f[2][0] != '"' || f[2][n - 1] != '"')
		return NULL;
	f[2][n - 1] = '\0';
	for (const char *c = f[2] + 1; *c; c++)
		if (!g_ascii_isdigit(*c))
			return NULL;
	return g_strdup(f[2] + 1);
}

static void
cops_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRegRequest *req = data;
	CpModemRun *run = cp_modem_reg_request_run(req);
	GError *error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);
	g_autofree char *plmn = NULL;
	const char *line;

	if (!run || !r || !cp_at_response_check(r, "+COPS?", &error) ||
	    !(line = cp_at_response_line(r, "+COPS?", &error))) {
		wait_end(req, error);
		return;
	}
	plmn = parse_cops_numeric(line);
	if (plmn)
		cp_modem_run_registration(run, CP_MODEM_REG_REGISTERED, plmn, NULL);
	else
		g_debug("+COPS? names no network yet");
	wait_end(req, NULL);
}

static void
cops_format_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRegRequest *req = data;
	CpModemRun *run = cp_modem_reg_request_run(req);
	GError *error = NULL;
	g_autoptr(CpAtResponse) r = cp_at_port_command_finish(CP_AT_PORT(src), res, &error);

	if (!run || !r || !cp_at_response_check(r, "+COPS=3,2", &error)) {
		wait_end(req, error);
		return;
	}
	cp_at_port_command(port_of(run)->port, "+COPS?", "+COPS:", CP_AT_BARE_NONE, 0,
			   cp_modem_reg_request_cancellable(req), cops_cb, req);
}

static void
registered_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRegRequest *req = data;
	CpModemRun *run = cp_modem_reg_request_run(req);
	GError *error = NULL;
	gboolean ok = cp_at_modem_wait_registered_finish(CP_AT_MODEM(src), res, &error);

	if (!ok && run && g_error_matches(error, CP_ERROR, CP_ERR_REG_DENIED)) {
		g_info("%s", error->message);
		g_clear_error(&error);
		cp_modem_run_registration(run, CP_MODEM_REG_DENIED, NULL, NULL);
		wait_end(req, NULL);
		return;
	}
	if (!ok || !run) {
		wait_end(req, error);
		return;
	}
	/* registered: on which network (numeric format, TS 27.007 §7.3) */
	cp_at_port_command(port_of(run)->port, "+COPS=3,2", NULL, CP_AT_BARE_NONE, 0,
			   cp_modem_reg_request_cancellable(req), cops_format_cb, req);
}

/* The module's registration URCs and reads (cp-at-modem) until a
 * registered or denied state; the runner owns the deadline, so the wait's
 * own is past it. */
static void
wait_start(AtPort *p)
{
	CpModemRun *run = p->run;
	guint ms = (run->modem->registration_timeout + 10) * 1000;
	CpModemRegRequest *req = cp_modem_run_reg_request(run);

	cp_at_modem_wait_registered(p->at, ms, cp_modem_reg_request_cancellable(req), registered_cb, req);
}

static void
at_registration_start(CpModemRun *run)
{
	wait_start(port_of(run));
}

static void
imsi_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *imsi = cp_at_modem_get_imsi_finish(CP_AT_MODEM(src), res, &error);

	if (imsi)
		cp_modem_run_set_imsi(run, imsi);
	done(run, error);
}

static void
at_read_imsi(CpModemRun *run)
{
	cp_at_modem_get_imsi(port_of(run)->at, run->cancellable, imsi_cb, run);
}

static void
revision_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemRun *run = data;
	GError *error = NULL;
	g_autofree char *revision = cp_at_modem_get_revision_finish(CP_AT_MODEM(src), res, &error);

	if (revision)
		cp_modem_run_set_firmware(run, revision);
	done(run, error);
}

static void
at_read_firmware(CpModemRun *run)
{
	cp_at_modem_get_revision(port_of(run)->at, run->cancellable, revision_cb, run);
}

/* ---- the tables -------------------------------------------------------- */

static const CpCardTransport at_transport = {
	.name = "at",
	.open = at_open,
	.close = at_close,
	.card_status = at_card_status,
	.open_channel = at_open_channel,
	.close_channel = at_close_channel,
	.transmit = at_transmit,
};

/* The port is the transport's: opened before these run, closed after. */
static const CpModemOps at_ops = {
	.name = "at",
	.read_apn = at_read_apn,
	.set_apn = at_set_apn,
	.offline = at_offline,
	.reset = at_reset,
	.registration_start = at_registration_start,
	.registration_stop = at_registration_stop,
	.read_imsi = at_read_imsi,
	.read_firmware = at_read_firmware,
};

const CpModemDriver cp_modem_driver_at = {
	.name = "at",
	.transport = &at_transport,
	.ops = &at_ops,
};
