/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-qmi-sim: a QMI modem with a programmable USIM and a network that
 * really authenticates, for tests and benchmarks. Real libqmi and real
 * qmicli talk to it on a pty or on the @qmi-proxy abstract socket.
 * See docs/man/cp-qmi-sim.1.md.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <libqmi-glib.h>

#include "cp-sim-modem.h"
#include "cp-sim-sysfs.h"

/* QMUX: marker, length (2), flags, service, client; then the service
 * header, whose first byte says request (0), response (2), indication (4). */
#define QMUX_CONTROL_OFFSET 6
#define QMUX_INDICATION 0x04

#define MSG_CTL_VERSION_INFO 0x0021
#define MSG_CTL_ALLOCATE_CID 0x0022
#define MSG_CTL_RELEASE_CID 0x0023
#define MSG_CTL_SYNC 0x0027
#define MSG_CTL_PROXY_OPEN 0xFF00

#define MSG_UIM_READ_TRANSPARENT 0x0020
#define MSG_UIM_READ_RECORD 0x0021
#define MSG_UIM_GET_FILE_ATTRIBUTES 0x0024
#define MSG_UIM_REGISTER_EVENTS 0x002E
#define MSG_UIM_CARD_STATUS 0x002F
#define MSG_UIM_SEND_APDU 0x003B
#define MSG_UIM_LOGICAL_CHANNEL 0x003F
#define MSG_UIM_OPEN_CHANNEL 0x0042
#define MSG_UIM_GET_SLOT_STATUS 0x0047

typedef struct {
	int fd;               /* a proxy client's socket, or the pty's master */
	GByteArray *in;
	guint watch;
	gboolean proxy;       /* a qmi-proxy client: expects Internal Proxy Open first */
	gint64 busy_until;    /* --firmware slow: when the last delayed answer goes */
} Conn;

/* A response held back by --firmware slow. */
typedef struct {
	Conn *conn;
	QmiMessage *msg;
	guint timer;
} Delayed;

/* Firmware profiles (--firmware), each a behaviour of real modems. */
typedef enum {
	FW_LEGACY = 0,                     /* an older firmware: DMS UIM answered */
	FW_DMS_UIM_UNSUPPORTED = 1 << 0,   /* DMS UIM messages: InvalidQmiCommand */
	FW_DMS_UIM_NOT_SUPPORTED = 1 << 1, /* ... NotSupported */
	FW_NO_LOGICAL_CHANNEL = 1 << 2,    /* UIM Open Logical Channel: AccessDenied */
	FW_SLOW = 1 << 3,                  /* answers delayed as over a real card */
} Firmware;

/* Without --firmware: what current modules do (docs/simulators.md). */
#define FW_DEFAULT FW_DMS_UIM_UNSUPPORTED

static const struct {
	const char *name;
	Firmware flag;
} firmwares[] = {
	{ "dms-uim-unsupported", FW_DMS_UIM_UNSUPPORTED },
	{ "dms-uim-not-supported", FW_DMS_UIM_NOT_SUPPORTED },
	{ "no-logical-channel", FW_NO_LOGICAL_CHANNEL },
	{ "slow", FW_SLOW },
};

typedef enum {
	RESET_KEEP_PORT,
	RESET_REENUMERATE,
} ResetMode;

typedef struct {
	guint8 service;
	guint8 cid;
	Conn *conn;
} Client;

/* A WDS profile: its index and APN, its name and PDP type. */
typedef struct {
	CpSimContext base;
	char *name;
	guint8 pdp_type;
} Profile;

typedef struct {
	CpSimModem m;              /* the card, the network, the pty, the faults */
	/* configuration */
	char *reenumerate_path;    /* where the port comes back after a reset */
	ResetMode reset_mode;
	gboolean reset_mode_set;
	char *sysfs;               /* the fake sysfs the port appears in */
	char *usb_port;            /* the module's USB device there */
	guint firmware;            /* Firmware flags */
	gboolean proxy;
	gboolean reject_detached;   /* a reject leaves the CS domain detached too */
	char *proxy_name;
	GArray *fail_apdu;         /* guint: n-th APDU answered 6F00 */
	GArray *fail_update;       /* guint: n-th UPDATE BINARY answered 6F00 */
	/* state */
	guint8 op_mode;            /* QmiDmsOperatingMode */
	guint8 reg_state;          /* QmiNasRegistrationState */
	GPtrArray *clients;        /* Client */
	GPtrArray *conns;          /* Conn */
	Conn *pty_conn;            /* the one on the pty, while it is there */
	GPtrArray *delayed;        /* Delayed */
	guint next_cid;
	guint reset_timer;
	guint drop_timer;          /* the port's drop after a reset's answer */
	guint n_requests;
	guint n_apdus;
	GString *allocations;              /* the services of the client ids given */
	guint n_updates;
	guint n_resets;
	int listen_fd;
} Sim;

static Sim sim;

static gboolean open_pty(const char *path, GError **error);
static Conn *conn_new(int fd, gboolean proxy);
static void conn_free(Conn *c);
static void conns_free(void);

static void
dump(void)
{
	cp_sim_modem_dump(&sim.m);
}

/* ---- helpers ----------------------------------------------------------- */

static void
conn_send(Conn *c, const guint8 *raw, gsize len)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = write(c->fd, raw + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return;   /* the peer went away; its HUP removes the conn */
		done += (gsize)n;
	}
}

static void
send_message(Conn *c, QmiMessage *m)
{
	gsize len;
	const guint8 *raw = qmi_message_get_raw(m, &len, NULL);

	if (raw)
		conn_send(c, raw, len);
}

static void
tlv_u8(QmiMessage *m, guint8 type, guint8 v)
{
	gsize o = qmi_message_tlv_write_init(m, type, NULL);

	qmi_message_tlv_write_guint8(m, v, NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
}

static void
tlv_string(QmiMessage *m, guint8 type, const char *s)
{
	gsize o = qmi_message_tlv_write_init(m, type, NULL);

	qmi_message_tlv_write_string(m, 0, s, -1, NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
}

static void
tlv_bytes16(QmiMessage *m, guint8 type, const guint8 *d, gsize len)
{
	gsize o = qmi_message_tlv_write_init(m, type, NULL);

	qmi_message_tlv_write_guint16(m, QMI_ENDIAN_LITTLE, (guint16)len, NULL);
	for (gsize i = 0; i < len; i++)
		qmi_message_tlv_write_guint8(m, d[i], NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
}

static void
tlv_sw(QmiMessage *m, guint8 type, guint16 sw)
{
	gsize o = qmi_message_tlv_write_init(m, type, NULL);

	qmi_message_tlv_write_guint8(m, (guint8)(sw >> 8), NULL);
	qmi_message_tlv_write_guint8(m, (guint8)sw, NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
}

static gboolean
read_u8(QmiMessage *m, guint8 type, guint8 *v)
{
	gsize off = 0, init = qmi_message_tlv_read_init(m, type, NULL, NULL);

	return init && qmi_message_tlv_read_guint8(m, init, &off, v, NULL);
}

/* A TLV's value as bytes (NULL if absent). */
static const guint8 *
raw_tlv(QmiMessage *m, guint8 type, guint16 *len)
{
	return qmi_message_get_raw_tlv(m, type, len);
}

static Client *
client_find(guint8 service, guint8 cid)
{
	for (guint i = 0; i < sim.clients->len; i++) {
		Client *cl = g_ptr_array_index(sim.clients, i);

		if (cl->service == service && cl->cid == cid)
			return cl;
	}
	return NULL;
}

/* ---- NAS: registration and its indications ----------------------------- */

static void
serving_system_tlvs(QmiMessage *m)
{
	const char *plmn = cp_sim_network_get_plmn(sim.m.net);
	gboolean reg = sim.reg_state == QMI_NAS_REGISTRATION_STATE_REGISTERED;
	gboolean denied = sim.reg_state == QMI_NAS_REGISTRATION_STATE_REGISTRATION_DENIED;
	gsize o = qmi_message_tlv_write_init(m, 0x01, NULL);

	qmi_message_tlv_write_guint8(m, sim.reg_state, NULL);
	/* After a reject the modem stays camped on the cell that rejected it
	 * (limited service): the CS domain reads attached, the PS domain not.
	 * ModemManager maps a detached domain to "idle" whatever the
	 * registration state says, so only this shows it "denied". */
	qmi_message_tlv_write_guint8(m, reg || (denied && !sim.reject_detached) ? QMI_NAS_ATTACH_STATE_ATTACHED
										 : QMI_NAS_ATTACH_STATE_DETACHED, NULL);
	qmi_message_tlv_write_guint8(m, reg ? QMI_NAS_ATTACH_STATE_ATTACHED : QMI_NAS_ATTACH_STATE_DETACHED, NULL);
	qmi_message_tlv_write_guint8(m, QMI_NAS_NETWORK_TYPE_3GPP, NULL);
	if (sim.op_mode == QMI_DMS_OPERATING_MODE_ONLINE) {
		qmi_message_tlv_write_guint8(m, 1, NULL);
		qmi_message_tlv_write_gint8(m, QMI_NAS_RADIO_INTERFACE_LTE, NULL);
	} else {
		qmi_message_tlv_write_guint8(m, 0, NULL);
	}
	qmi_message_tlv_write_complete(m, o, NULL);

	if (reg) {
		char mcc[4] = { 0 };

		memcpy(mcc, plmn, 3);
		tlv_u8(m, 0x10, 0x01);   /* roaming off */
		o = qmi_message_tlv_write_init(m, 0x12, NULL);
		qmi_message_tlv_write_guint16(m, QMI_ENDIAN_LITTLE, (guint16)atoi(mcc), NULL);
		qmi_message_tlv_write_guint16(m, QMI_ENDIAN_LITTLE, (guint16)atoi(plmn + 3), NULL);
		qmi_message_tlv_write_string(m, 1, cp_sim_network_get_name(sim.m.net), -1, NULL);
		qmi_message_tlv_write_complete(m, o, NULL);
	}
}

static void
nas_indicate(void)
{
	for (guint i = 0; i < sim.clients->len; i++) {
		Client *cl = g_ptr_array_index(sim.clients, i);
		g_autoptr(QmiMessage) m = NULL;
		g_autoptr(GByteArray) raw = NULL;
		const guint8 *r;
		gsize len;

		if (cl->service != QMI_SERVICE_NAS)
			continue;
		m = qmi_message_new(QMI_SERVICE_NAS, cl->cid, 0, 0x0024);
		serving_system_tlvs(m);
		r = qmi_message_get_raw(m, &len, NULL);
		raw = g_byte_array_new();
		g_byte_array_append(raw, r, (guint)len);
		raw->data[QMUX_CONTROL_OFFSET] = QMUX_INDICATION;
		conn_send(cl->conn, raw->data, raw->len);
	}
}

static void
set_reg_state(guint8 state)
{
	if (sim.reg_state == state)
		return;
	sim.reg_state = state;
	g_message("registration: %s", qmi_nas_registration_state_get_string(state));
	nas_indicate();
	dump();
}

static void
attach_cb(void)
{
	CpSimAttach a;

	if (sim.op_mode != QMI_DMS_OPERATING_MODE_ONLINE)
		return;
	a = cp_sim_modem_attach(&sim.m);
	set_reg_state(a == CP_SIM_ATTACH_REGISTERED ?
		      QMI_NAS_REGISTRATION_STATE_REGISTERED :
		      QMI_NAS_REGISTRATION_STATE_REGISTRATION_DENIED);
}

/* The modem (re)starts its use of the card: it reads the IMSI once and
 * keeps it, as real modems do until the next reset. */
static void
card_start(void)
{
	cp_sim_modem_card_start(&sim.m);
}

static void
go_online(void)
{
	sim.op_mode = QMI_DMS_OPERATING_MODE_ONLINE;
	set_reg_state(QMI_NAS_REGISTRATION_STATE_NOT_REGISTERED_SEARCHING);
	cp_sim_modem_attach_later(&sim.m);
}

/* The QMI interface of Quectel's EC25/EG25 (qmi_wwan binds interface 4). */
#define QMI_INTERFACE 4

/* The kernel's view of the module (--sysfs): its USB device and the
 * cdc-wdm port, named after the port's path. */
static void
sysfs_up(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *name = NULL;

	if (!sim.sysfs)
		return;
	name = g_path_get_basename(path);
	if (!cp_sim_sysfs_add(sim.sysfs, sim.usb_port, QMI_INTERFACE, "usbmisc", name, &error))
		g_warning("sysfs: %s", error->message);
}

static void
sysfs_down(const char *path)
{
	g_autofree char *name = NULL;

	if (!sim.sysfs || !path)
		return;
	name = g_path_get_basename(path);
	cp_sim_sysfs_remove(sim.sysfs, sim.usb_port, "usbmisc", name);
}

static gboolean port_drop_cb(gpointer data);

static gboolean
reset_done_cb(gpointer data)
{
	sim.reset_timer = 0;
	if (sim.reset_mode == RESET_REENUMERATE) {
		/* back under the other name when there is one, as USB may give */
		const char *path = sim.reenumerate_path && sim.n_resets % 2 ? sim.reenumerate_path : sim.m.pty_path;

		/* both due at once (a loaded machine): the port goes first */
		if (sim.drop_timer) {
			g_source_remove(sim.drop_timer);
			port_drop_cb(NULL);
		}
		/* the kernel's device_add(): the sysfs device, then its node */
		sysfs_up(path);
		if (!cp_sim_modem_port_return(&sim.m, path)) {
			sysfs_down(path);
			return G_SOURCE_REMOVE;
		}
		sim.pty_conn = conn_new(cp_sim_modem_port_fd(&sim.m), FALSE);
		printf("ready %s\n", path);
		fflush(stdout);
	}
	card_start();
	go_online();
	dump();
	return G_SOURCE_REMOVE;
}

/* ---- services ---------------------------------------------------------- */

static QmiMessage *
handle_ctl(Conn *c, QmiMessage *req)
{
	QmiMessage *resp;
	guint8 service;
	gsize o;

	switch (qmi_message_get_message_id(req)) {
	case MSG_CTL_PROXY_OPEN:
	case MSG_CTL_SYNC:
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
	case MSG_CTL_VERSION_INFO: {
		static const guint8 services[] = {
			QMI_SERVICE_CTL, QMI_SERVICE_WDS, QMI_SERVICE_DMS,
			QMI_SERVICE_NAS, QMI_SERVICE_UIM,
		};

		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x01, NULL);
		qmi_message_tlv_write_guint8(resp, G_N_ELEMENTS(services), NULL);
		for (gsize i = 0; i < G_N_ELEMENTS(services); i++) {
			qmi_message_tlv_write_guint8(resp, services[i], NULL);
			qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, 1, NULL);
			qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, 50, NULL);
		}
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	case MSG_CTL_ALLOCATE_CID: {
		Client *cl;

		if (!read_u8(req, 0x01, &service))
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		if (service != QMI_SERVICE_DMS && service != QMI_SERVICE_NAS &&
		    service != QMI_SERVICE_UIM && service != QMI_SERVICE_WDS)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_SERVICE_TYPE);
		cl = g_new0(Client, 1);
		cl->service = service;
		cl->cid = (guint8)(sim.next_cid++ % 250 + 1);
		g_string_append_printf(sim.allocations, "%s%s", sim.allocations->len ? "," : "",
				       qmi_service_get_string(service));
		cl->conn = c;
		g_ptr_array_add(sim.clients, cl);
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x01, NULL);
		qmi_message_tlv_write_guint8(resp, service, NULL);
		qmi_message_tlv_write_guint8(resp, cl->cid, NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	case MSG_CTL_RELEASE_CID: {
		guint16 len;
		const guint8 *v = raw_tlv(req, 0x01, &len);
		Client *cl;

		if (!v || len != 2)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		cl = client_find(v[0], v[1]);
		if (!cl)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_CLIENT_ID);
		g_ptr_array_remove(sim.clients, cl);
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x01, NULL);
		qmi_message_tlv_write_guint8(resp, v[0], NULL);
		qmi_message_tlv_write_guint8(resp, v[1], NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	}
	return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND);
}

/* ---- firmware timing and re-enumeration -------------------------------- */

static void
delayed_free(Delayed *d)
{
	if (d->timer)
		g_source_remove(d->timer);
	qmi_message_unref(d->msg);
	g_free(d);
}

static gboolean
delayed_cb(gpointer data)
{
	Delayed *d = data;

	d->timer = 0;
	send_message(d->conn, d->msg);
	g_ptr_array_remove(sim.delayed, d);
	return G_SOURCE_REMOVE;
}

/*
 * --firmware slow: a modem that talks to its card at the ISO 7816-3
 * default rate (Fd 372, Dd 1 at 3.57 MHz: 1 etu = 104 us, 12 etu a
 * character, so 1.25 ms a byte) and takes SLOW_TURNAROUND_MS per request.
 * UIM requests pay for their bytes both ways; the answers of one client
 * keep their order.
 */
#define SLOW_TURNAROUND_MS 20
#define SLOW_US_PER_BYTE 1250

static void
respond(Conn *c, QmiMessage *req, QmiMessage *resp)
{
	gsize qlen = 0, rlen = 0;
	gint64 now, due;
	Delayed *d;

	if (!(sim.firmware & FW_SLOW)) {
		send_message(c, resp);
		return;
	}
	if (qmi_message_get_service(req) == QMI_SERVICE_UIM) {
		qmi_message_get_raw(req, &qlen, NULL);
		qmi_message_get_raw(resp, &rlen, NULL);
	}
	now = g_get_monotonic_time();
	due = MAX(now, c->busy_until) + SLOW_TURNAROUND_MS * 1000 + (gint64)(qlen + rlen) * SLOW_US_PER_BYTE;
	c->busy_until = due;
	d = g_new0(Delayed, 1);
	d->conn = c;
	d->msg = qmi_message_ref(resp);
	d->timer = g_timeout_add((guint)((due - now + 999) / 1000), delayed_cb, d);
	g_ptr_array_add(sim.delayed, d);
}

static void
delayed_drop(Conn *c, gboolean send)
{
	for (guint i = sim.delayed->len; i > 0; i--) {
		Delayed *d = g_ptr_array_index(sim.delayed, i - 1);

		if (c && d->conn != c)
			continue;
		if (send)
			send_message(d->conn, d->msg);
		g_ptr_array_remove_index(sim.delayed, i - 1);
	}
}

#define RESET_DROP_MS 100

/* The module reboots: the answers given go out, then its port vanishes
 * (the pty closed, its path removed) and the card loses power. */
static gboolean
port_drop_cb(gpointer data)
{
	sim.drop_timer = 0;
	delayed_drop(NULL, TRUE);
	g_message("reset: the port %s disappears", sim.m.port_path);
	sysfs_down(sim.m.port_path);
	conns_free();
	cp_sim_modem_port_close(&sim.m);
	cp_sim_usim_reset(sim.m.usim);
	dump();
	return G_SOURCE_REMOVE;
}

/* The DMS messages that reach the card (UIM Set PIN Protection 0x0027 to
 * UIM Get PIN Status 0x002B, UIM Get ICCID 0x003C, UIM Get CK Status
 * 0x0040 to UIM Get State 0x0044), which newer firmwares dropped. */
static gboolean
dms_is_uim(guint id)
{
	return (id >= 0x0027 && id <= 0x002B) || id == 0x003C || (id >= 0x0040 && id <= 0x0044);
}

static QmiMessage *
handle_dms(QmiMessage *req)
{
	QmiMessage *resp;
	guint8 mode;
	guint id = qmi_message_get_message_id(req);

	if (dms_is_uim(id) && (sim.firmware & FW_DMS_UIM_UNSUPPORTED))
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND);
	if (dms_is_uim(id) && (sim.firmware & FW_DMS_UIM_NOT_SUPPORTED))
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NOT_SUPPORTED);

	switch (id) {
	case 0x0020: { /* Get Capabilities: ModemManager fails a modem without them */
		gsize o;

		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x01, NULL);
		qmi_message_tlv_write_guint32(resp, QMI_ENDIAN_LITTLE, 150000000, NULL);   /* max tx, bps */
		qmi_message_tlv_write_guint32(resp, QMI_ENDIAN_LITTLE, 50000000, NULL);    /* max rx */
		qmi_message_tlv_write_guint8(resp, QMI_DMS_DATA_SERVICE_CAPABILITY_SIMULTANEOUS_CS_PS, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_DMS_SIM_CAPABILITY_SUPPORTED, NULL);
		/* a UMTS/LTE module, as most gateways carry: ModemManager then
		 * follows the CS domain too */
		qmi_message_tlv_write_guint8(resp, 2, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_DMS_RADIO_INTERFACE_UMTS, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_DMS_RADIO_INTERFACE_LTE, NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	case 0x0021:   /* Get Manufacturer */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x01, "cellprov");
		return resp;
	case 0x0022:   /* Get Model */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x01, "cp-qmi-sim");
		return resp;
	case 0x0023:   /* Get Revision */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x01, "CPSIM.1.0");
		return resp;
	case 0x0025:   /* Get IDs */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x10, "0");
		tlv_string(resp, 0x11, "490154203237518");
		tlv_string(resp, 0x12, "");
		return resp;
	case 0x002D:   /* Get Operating Mode */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_u8(resp, 0x01, sim.op_mode);
		return resp;
	case 0x0043:   /* UIM Get IMSI: the modem's view since its last start */
		if (!sim.m.modem_imsi || sim.op_mode == QMI_DMS_OPERATING_MODE_RESET)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_DEVICE_NOT_READY);
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x01, sim.m.modem_imsi);
		return resp;
	case 0x003C:   /* UIM Get ICCID */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x01, cp_sim_usim_get_iccid(sim.m.usim));
		return resp;
	case 0x002E:   /* Set Operating Mode */
		if (!read_u8(req, 0x01, &mode))
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		if (sim.op_mode == QMI_DMS_OPERATING_MODE_RESET)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_DEVICE_NOT_READY);
		switch (mode) {
		case QMI_DMS_OPERATING_MODE_ONLINE:
			if (sim.op_mode == QMI_DMS_OPERATING_MODE_OFFLINE)
				return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_TRANSITION);
			if (sim.op_mode != QMI_DMS_OPERATING_MODE_ONLINE) {
				/* leaving low power re-initialises the card session */
				card_start();
				go_online();
			}
			break;
		case QMI_DMS_OPERATING_MODE_LOW_POWER:
		case QMI_DMS_OPERATING_MODE_PERSISTENT_LOW_POWER:
		case QMI_DMS_OPERATING_MODE_MODE_ONLY_LOW_POWER:
		case QMI_DMS_OPERATING_MODE_OFFLINE:
			if (sim.op_mode == QMI_DMS_OPERATING_MODE_OFFLINE && mode != QMI_DMS_OPERATING_MODE_OFFLINE)
				return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_TRANSITION);
			sim.op_mode = mode;
			set_reg_state(QMI_NAS_REGISTRATION_STATE_NOT_REGISTERED);
			break;
		case QMI_DMS_OPERATING_MODE_RESET:
			/* like real modems: a reset only from offline */
			if (sim.op_mode != QMI_DMS_OPERATING_MODE_OFFLINE)
				return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_TRANSITION);
			sim.op_mode = mode;
			sim.n_resets++;
			cp_sim_modem_attach_cancel(&sim.m);
			sim.reset_timer = g_timeout_add(sim.m.reset_delay_ms, reset_done_cb, NULL);
			/* A USB module reboots: its port goes once the answer is
			 * out and read (a pty's hangup discards unread input). */
			if (sim.reset_mode == RESET_REENUMERATE)
				sim.drop_timer = g_timeout_add(MIN(RESET_DROP_MS, sim.m.reset_delay_ms / 2),
							       port_drop_cb, NULL);
			break;
		default:
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_ARGUMENT);
		}
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
	}
	return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND);
}

static QmiMessage *
handle_nas(QmiMessage *req)
{
	QmiMessage *resp;

	switch (qmi_message_get_message_id(req)) {
	case 0x0003:   /* Register Indications */
	case 0x0002:   /* Set Event Report */
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
	case 0x0024:   /* Get Serving System */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		serving_system_tlvs(resp);
		return resp;
	}
	return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND);
}

static gboolean
list_has(GArray *a, guint n)
{
	for (guint i = 0; a && i < a->len; i++)
		if (g_array_index(a, guint, i) == n)
			return TRUE;
	return FALSE;
}

/* UIM File TLV: file id, then the path as little-endian 16-bit ids. */
static gboolean
parse_file(QmiMessage *req, guint16 *fid, guint16 path[8], gsize *n_path)
{
	guint16 len;
	const guint8 *f = raw_tlv(req, 0x02, &len);

	if (!f || len < 3 || f[2] % 2 || f[2] > 16 || len != 3 + f[2])
		return FALSE;
	*fid = (guint16)(f[0] | f[1] << 8);
	*n_path = f[2] / 2;
	for (gsize i = 0; i < *n_path; i++)
		path[i] = (guint16)(f[3 + 2 * i] | f[4 + 2 * i] << 8);
	return TRUE;
}

static QmiMessage *
uim_file_response(QmiMessage *req, guint16 sw)
{
	QmiMessage *resp;

	if (sw == 0x6A82)
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_SIM_FILE_NOT_FOUND);
	else if (sw != 0x9000)
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_ACCESS_DENIED);
	else
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
	tlv_sw(resp, 0x10, sw);
	return resp;
}

/* The modem learns the applications from EF.DIR, as real modems do, and
 * lists each in its card status (libqmi's UIM Get Card Status output: an
 * application type and AID per record): the USIM (1002 after the RID, TS
 * 101 220 annex E) and the ISIM (1004). */
static gsize
app_aid(guint8 code, guint8 aid[16])
{
	static const guint16 mf[] = { 0x3F00 };
	g_autoptr(GByteArray) rec = g_byte_array_new();

	for (guint r = 1; cp_sim_usim_read_record(sim.m.usim, mf, 1, 0x2F00, r, 0, rec) == 0x9000; r++) {
		const guint8 *d = rec->data;

		/* 61 L 4F n AID */
		if (rec->len >= 11 && d[0] == 0x61 && d[2] == 0x4F && d[3] >= 7 && d[3] <= 16 &&
		    4u + d[3] <= rec->len && d[9] == 0x10 && d[10] == code) {
			memcpy(aid, d + 4, d[3]);
			return d[3];
		}
		g_byte_array_set_size(rec, 0);
	}
	return 0;
}

static void
card_status_app(QmiMessage *resp, QmiUimCardApplicationType type, const guint8 *aid, gsize aid_len)
{
	qmi_message_tlv_write_guint8(resp, type, NULL);
	qmi_message_tlv_write_guint8(resp, QMI_UIM_CARD_APPLICATION_STATE_READY, NULL);
	qmi_message_tlv_write_guint8(resp, QMI_UIM_CARD_APPLICATION_PERSONALIZATION_STATE_READY, NULL);
	qmi_message_tlv_write_guint8(resp, 0, NULL);
	qmi_message_tlv_write_guint8(resp, 0, NULL);
	qmi_message_tlv_write_guint8(resp, 0, NULL);
	qmi_message_tlv_write_guint8(resp, (guint8)aid_len, NULL);
	for (gsize i = 0; i < aid_len; i++)
		qmi_message_tlv_write_guint8(resp, aid[i], NULL);
	qmi_message_tlv_write_guint8(resp, 0, NULL);
	qmi_message_tlv_write_guint8(resp, QMI_UIM_PIN_STATE_DISABLED, NULL);
	qmi_message_tlv_write_guint8(resp, 3, NULL);
	qmi_message_tlv_write_guint8(resp, 10, NULL);
	qmi_message_tlv_write_guint8(resp, QMI_UIM_PIN_STATE_DISABLED, NULL);
	qmi_message_tlv_write_guint8(resp, 3, NULL);
	qmi_message_tlv_write_guint8(resp, 10, NULL);
}

static QmiMessage *
handle_uim(QmiMessage *req)
{
	QmiMessage *resp;
	guint16 len;
	const guint8 *v;

	if (sim.op_mode == QMI_DMS_OPERATING_MODE_RESET)
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_DEVICE_NOT_READY);

	switch (qmi_message_get_message_id(req)) {
	case MSG_UIM_REGISTER_EVENTS:
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
	case MSG_UIM_CARD_STATUS: {
		guint8 aid[16], isim[16];
		gsize o, aid_len = app_aid(0x02, aid), isim_len = app_aid(0x04, isim);

		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x10, NULL);
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, 0x0000, NULL);  /* GW primary: slot 0 app 0 */
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, 0xFFFF, NULL);
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, 0xFFFF, NULL);
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, 0xFFFF, NULL);
		qmi_message_tlv_write_guint8(resp, 1, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_UIM_CARD_STATE_PRESENT, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_UIM_PIN_STATE_NOT_INITIALIZED, NULL);
		qmi_message_tlv_write_guint8(resp, 0, NULL);
		qmi_message_tlv_write_guint8(resp, 0, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_UIM_CARD_ERROR_UNKNOWN, NULL);
		qmi_message_tlv_write_guint8(resp, isim_len ? 2 : 1, NULL);
		card_status_app(resp, QMI_UIM_CARD_APPLICATION_TYPE_USIM, aid, aid_len);
		if (isim_len)
			card_status_app(resp, QMI_UIM_CARD_APPLICATION_TYPE_ISIM, isim, isim_len);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	case MSG_UIM_READ_TRANSPARENT:
	case MSG_UIM_READ_RECORD: {
		g_autoptr(GByteArray) data = g_byte_array_new();
		guint16 ilen, fid, path[8], sw;
		const guint8 *info = raw_tlv(req, 0x03, &ilen);
		gsize n_path;

		if (!parse_file(req, &fid, path, &n_path) || !info || ilen != 4)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		if (qmi_message_get_message_id(req) == MSG_UIM_READ_RECORD)
			sw = cp_sim_usim_read_record(sim.m.usim, path, n_path, fid,
						     (guint)(info[0] | info[1] << 8),
						     (guint16)(info[2] | info[3] << 8), data);
		else
			sw = cp_sim_usim_read_path(sim.m.usim, path, n_path, fid,
						   (guint16)(info[0] | info[1] << 8),
						   (guint16)(info[2] | info[3] << 8), data);
		resp = uim_file_response(req, sw);
		if (sw == 0x9000)
			tlv_bytes16(resp, 0x11, data->data, data->len);
		return resp;
	}
	case MSG_UIM_GET_FILE_ATTRIBUTES: {
		g_autoptr(GByteArray) fcp = g_byte_array_new();
		guint16 fid, path[8];
		gsize n_path, o;
		CpSimFileInfo fi;

		if (!parse_file(req, &fid, path, &n_path))
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		if (!cp_sim_usim_file_info(sim.m.usim, path, n_path, fid, &fi, fcp))
			return uim_file_response(req, 0x6A82);
		resp = uim_file_response(req, 0x9000);
		o = qmi_message_tlv_write_init(resp, 0x11, NULL);
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, (guint16)fi.size, NULL);
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, fid, NULL);
		qmi_message_tlv_write_guint8(resp, fi.record_len ? QMI_UIM_FILE_TYPE_LINEAR_FIXED :
					     QMI_UIM_FILE_TYPE_TRANSPARENT, NULL);
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, (guint16)fi.record_len, NULL);
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, (guint16)fi.n_records, NULL);
		/* read, write, increase, deactivate, activate */
		for (guint i = 0; i < 5; i++) {
			gboolean adm = i == 0 ? fi.read_adm1 : i == 1 ? fi.update_adm1 : TRUE;

			qmi_message_tlv_write_guint8(resp, adm ? QMI_UIM_SECURITY_ATTRIBUTE_LOGIC_SINGLE :
						     QMI_UIM_SECURITY_ATTRIBUTE_LOGIC_ALWAYS, NULL);
			qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE,
						      adm ? QMI_UIM_SECURITY_ATTRIBUTE_ADM : 0, NULL);
		}
		qmi_message_tlv_write_guint16(resp, QMI_ENDIAN_LITTLE, (guint16)fcp->len, NULL);
		for (guint i = 0; i < fcp->len; i++)
			qmi_message_tlv_write_guint8(resp, fcp->data[i], NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	case MSG_UIM_GET_SLOT_STATUS: {
		/* one physical slot, active, logical slot 1: its status (TLV
		 * 0x10, the ICCID as EF.ICCID holds it) and information (TLV
		 * 0x11: protocol, applications, ATR, eUICC), as libqmi's
		 * qmi-service-uim.json lays them out (since libqmi 1.26) */
		const char *iccid = cp_sim_usim_get_iccid(sim.m.usim);
		guint8 atr[33], ef[10];
		gsize o, n_atr = cp_sim_usim_get_atr(sim.m.usim, atr), n_ef = 0;

		/* BCD, nibbles swapped, an odd last digit padded with F: never
		 * reading past the string's end */
		for (gsize i = 0; iccid[i] && n_ef < sizeof ef; n_ef++) {
			gboolean pair = iccid[i + 1] != '\0';

			ef[n_ef] = (guint8)((iccid[i] - '0') | (pair ? (iccid[i + 1] - '0') << 4 : 0xF0));
			i += pair ? 2 : 1;
		}
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x10, NULL);
		qmi_message_tlv_write_guint8(resp, 1, NULL);
		qmi_message_tlv_write_guint32(resp, QMI_ENDIAN_LITTLE, QMI_UIM_PHYSICAL_CARD_STATE_PRESENT, NULL);
		qmi_message_tlv_write_guint32(resp, QMI_ENDIAN_LITTLE, QMI_UIM_SLOT_STATE_ACTIVE, NULL);
		qmi_message_tlv_write_guint8(resp, 1, NULL);
		qmi_message_tlv_write_guint8(resp, (guint8)n_ef, NULL);
		for (gsize i = 0; i < n_ef; i++)
			qmi_message_tlv_write_guint8(resp, ef[i], NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		o = qmi_message_tlv_write_init(resp, 0x11, NULL);
		qmi_message_tlv_write_guint8(resp, 1, NULL);
		qmi_message_tlv_write_guint32(resp, QMI_ENDIAN_LITTLE, QMI_UIM_CARD_PROTOCOL_UICC, NULL);
		qmi_message_tlv_write_guint8(resp, 2, NULL);   /* EF.DIR's USIM and ISIM */
		qmi_message_tlv_write_guint8(resp, (guint8)n_atr, NULL);
		for (gsize i = 0; i < n_atr; i++)
			qmi_message_tlv_write_guint8(resp, atr[i], NULL);
		qmi_message_tlv_write_guint8(resp, 0, NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	case MSG_UIM_OPEN_CHANNEL: {
		guint16 sw;
		guint ch;

		v = raw_tlv(req, 0x10, &len);
		if (!v || len < 1 || v[0] != len - 1)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		/* as a Telit LE910C4 answers lpac (docs/simulators.md) */
		if (sim.firmware & FW_NO_LOGICAL_CHANNEL)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_ACCESS_DENIED);
		ch = cp_sim_usim_open_channel(sim.m.usim, v + 1, v[0], &sw);
		resp = qmi_message_response_new(req, ch ? QMI_PROTOCOL_ERROR_NONE : QMI_PROTOCOL_ERROR_INTERNAL);
		if (ch)
			tlv_u8(resp, 0x10, (guint8)ch);
		tlv_sw(resp, 0x11, sw);
		return resp;
	}
	case MSG_UIM_LOGICAL_CHANNEL: {
		guint8 ch;

		if (!read_u8(req, 0x11, &ch))
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		return qmi_message_response_new(req, cp_sim_usim_close_channel(sim.m.usim, ch) ?
						QMI_PROTOCOL_ERROR_NONE : QMI_PROTOCOL_ERROR_INVALID_ARGUMENT);
	}
	case MSG_UIM_SEND_APDU: {
		g_autoptr(GByteArray) out = g_byte_array_new();
		guint8 ch = 0;

		v = raw_tlv(req, 0x02, &len);
		if (!v || len < 2 || (guint)(v[0] | v[1] << 8) != (guint)len - 2)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		read_u8(req, 0x10, &ch);
		sim.n_apdus++;
		if (len - 2 >= 2 && v[3] == 0xD6)
			sim.n_updates++;
		if (list_has(sim.fail_apdu, sim.n_apdus) ||
		    (len - 2 >= 2 && v[3] == 0xD6 && list_has(sim.fail_update, sim.n_updates))) {
			static const guint8 fail[] = { 0x6F, 0x00 };

			g_message("fault: APDU %u answered 6F00", sim.n_apdus);
			g_byte_array_append(out, fail, 2);
		} else {
			cp_sim_usim_apdu(sim.m.usim, ch, v + 2, len - 2, out);
		}
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_bytes16(resp, 0x10, out->data, out->len);
		return resp;
	}
	}
	return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND);
}

static Profile *
profile_find(guint8 index)
{
	return (Profile *)cp_sim_modem_context_find(&sim.m, index);
}

static void
profile_update(Profile *p, QmiMessage *req)
{
	guint16 len;
	const guint8 *v;
	guint8 pdp;

	if ((v = raw_tlv(req, 0x10, &len))) {
		g_free(p->name);
		p->name = g_strndup((const char *)v, len);
	}
	if (read_u8(req, 0x11, &pdp))
		p->pdp_type = pdp;
	if ((v = raw_tlv(req, 0x14, &len))) {
		g_free(p->base.apn);
		p->base.apn = g_strndup((const char *)v, len);
	}
}

static void
profile_clear(CpSimContext *c)
{
	g_free(((Profile *)c)->name);
}

static QmiMessage *
handle_wds(QmiMessage *req)
{
	QmiMessage *resp;
	guint16 len;
	const guint8 *v;
	Profile *p;
	gsize o;

	switch (qmi_message_get_message_id(req)) {
	case 0x002A:   /* Get Profile List */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x01, NULL);
		qmi_message_tlv_write_guint8(resp, (guint8)sim.m.contexts->len, NULL);
		for (guint i = 0; i < sim.m.contexts->len; i++) {
			p = g_ptr_array_index(sim.m.contexts, i);
			qmi_message_tlv_write_guint8(resp, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
			qmi_message_tlv_write_guint8(resp, (guint8)p->base.id, NULL);
			qmi_message_tlv_write_string(resp, 1, p->name, -1, NULL);
		}
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	case 0x002B:   /* Get Profile Settings */
		v = raw_tlv(req, 0x01, &len);
		if (!v || len != 2)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		if (!(p = profile_find(v[1])))
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_PROFILE);
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x10, p->name);
		tlv_u8(resp, 0x11, p->pdp_type);
		tlv_string(resp, 0x14, p->base.apn);
		return resp;
	case 0x0028:   /* Modify Profile */
		v = raw_tlv(req, 0x01, &len);
		if (!v || len != 2)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		if (!(p = profile_find(v[1])))
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_PROFILE);
		profile_update(p, req);
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
	case 0x0027: { /* Create Profile */
		guint8 index = 1;

		if (sim.m.contexts->len >= 16)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NO_FREE_PROFILE);
		while (profile_find(index))
			index++;
		p = (Profile *)cp_sim_modem_context_add(&sim.m, sizeof(Profile), index, "");
		p->name = g_strdup("");
		profile_update(p, req);
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x01, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
		qmi_message_tlv_write_guint8(resp, (guint8)p->base.id, NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	}
	return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND);
}

/* ---- dispatch and faults ----------------------------------------------- */

static void
handle_message(Conn *c, QmiMessage *req)
{
	g_autoptr(QmiMessage) resp = NULL;
	QmiService svc = qmi_message_get_service(req);
	guint id = qmi_message_get_message_id(req);
	CpSimFault *f;

	sim.n_requests++;
	if (svc != QMI_SERVICE_CTL && !client_find((guint8)svc, qmi_message_get_client_id(req))) {
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_CLIENT_ID);
		send_message(c, resp);
		return;
	}
	f = cp_sim_modem_fault(&sim.m, svc, id, NULL);
	if (f) {
		g_autofree char *what = g_strdup_printf("%s 0x%04x", qmi_service_get_string(svc), id);

		switch (f->kind) {
		case CP_SIM_FAULT_VANISH:
			sysfs_down(sim.m.port_path);
			cp_sim_modem_vanish(&sim.m, what);
		case CP_SIM_FAULT_NO_RESPONSE:
			g_message("fault: no response to %s", what);
			return;
		case CP_SIM_FAULT_FAIL:
		case CP_SIM_FAULT_GARBAGE:
			g_message("fault: error for %s", what);
			resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INTERNAL);
			respond(c, req, resp);
			return;
		}
	}
	switch (svc) {
	case QMI_SERVICE_CTL:
		resp = handle_ctl(c, req);
		break;
	case QMI_SERVICE_DMS:
		resp = handle_dms(req);
		break;
	case QMI_SERVICE_NAS:
		resp = handle_nas(req);
		break;
	case QMI_SERVICE_UIM:
		resp = handle_uim(req);
		break;
	case QMI_SERVICE_WDS:
		resp = handle_wds(req);
		break;
	default:
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_SERVICE_TYPE);
	}
	/* the state first: a test reads it as soon as it has the answer */
	dump();
	if (resp)
		respond(c, req, resp);
}

static void
conn_free(Conn *c)
{
	delayed_drop(c, FALSE);
	/* its clients go with it, as with qmi-proxy */
	for (guint i = sim.clients->len; i > 0; i--) {
		Client *cl = g_ptr_array_index(sim.clients, i - 1);

		if (cl->conn == c)
			g_ptr_array_remove_index(sim.clients, i - 1);
	}
	if (c->watch)
		g_source_remove(c->watch);
	if (c->proxy)
		close(c->fd);   /* the pty's is the shell's */
	if (c == sim.pty_conn)
		sim.pty_conn = NULL;
	g_byte_array_unref(c->in);
	g_free(c);
}

static void
conns_free(void)
{
	while (sim.conns->len) {
		Conn *c = g_ptr_array_index(sim.conns, 0);

		g_ptr_array_remove_index(sim.conns, 0);
		conn_free(c);
	}
}

/* Whole messages from the connection's input are handled. */
static void
conn_input(Conn *c, const guint8 *d, gsize n)
{
	g_byte_array_append(c->in, d, (guint)n);
	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QmiMessage) m = qmi_message_new_from_raw(c->in, &error);

		if (!m) {
			if (error) {
				g_warning("dropping unparsable input: %s", error->message);
				g_byte_array_set_size(c->in, 0);
			}
			break;
		}
		if (qmi_message_is_request(m))
			handle_message(c, m);
	}
}

static void
pty_input(const guint8 *d, gsize n)
{
	if (sim.pty_conn)
		conn_input(sim.pty_conn, d, n);
}

static gboolean
conn_readable_cb(int fd, GIOCondition cond, gpointer data)
{
	Conn *c = data;
	guint8 buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return G_SOURCE_CONTINUE;
		c->watch = 0;
		g_ptr_array_remove(sim.conns, c);
		conn_free(c);
		return G_SOURCE_REMOVE;
	}
	conn_input(c, buf, (gsize)n);
	return G_SOURCE_CONTINUE;
}

static Conn *
conn_new(int fd, gboolean proxy)
{
	Conn *c = g_new0(Conn, 1);

	c->fd = fd;
	c->proxy = proxy;
	c->in = g_byte_array_new();
	/* the pty's input comes through the shell (pty_input) */
	if (proxy)
		c->watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, conn_readable_cb, c);
	g_ptr_array_add(sim.conns, c);
	return c;
}

static gboolean
accept_cb(int fd, GIOCondition cond, gpointer data)
{
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

	if (c >= 0)
		conn_new(c, TRUE);
	return G_SOURCE_CONTINUE;
}

/* ---- transports -------------------------------------------------------- */

static gboolean
open_pty(const char *path, GError **error)
{
	/* the sysfs device first, then its node, as device_add() does */
	sysfs_up(path);
	if (!cp_sim_modem_port_open(&sim.m, path, error)) {
		sysfs_down(path);
		return FALSE;
	}
	sim.pty_conn = conn_new(cp_sim_modem_port_fd(&sim.m), FALSE);
	return TRUE;
}

static gboolean
open_proxy(GError **error)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	gsize n = strlen(sim.proxy_name);
	socklen_t len;

	if (n + 1 >= sizeof(sa.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "proxy name too long");
		return FALSE;
	}
	/* abstract name, not padded: what GUnixSocketAddress's ABSTRACT gives */
	memcpy(sa.sun_path + 1, sim.proxy_name, n);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	sim.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sim.listen_fd < 0 || bind(sim.listen_fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(sim.listen_fd, 8) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "@%s: %s",
			    sim.proxy_name, g_strerror(errno));
		return FALSE;
	}
	g_unix_fd_add(sim.listen_fd, G_IO_IN, accept_cb, NULL);
	return TRUE;
}

/* ---- state dump -------------------------------------------------------- */

static void
dump_keys(GString *s)
{
	const char *port = sim.proxy ? sim.proxy_name : sim.m.port_path;

	g_string_append_printf(s, "operating-mode=%s\n", qmi_dms_operating_mode_get_string(sim.op_mode));
	g_string_append_printf(s, "registration=%s\n", qmi_nas_registration_state_get_string(sim.reg_state));
	g_string_append_printf(s, "profiles=%u\n", sim.m.contexts->len);
	g_string_append_printf(s, "qmi-requests=%u\n", sim.n_requests);
	g_string_append_printf(s, "apdus=%u\n", sim.n_apdus);
	g_string_append_printf(s, "qmi-client-allocations=%s\n", sim.allocations->str);
	g_string_append_printf(s, "resets=%u\n", sim.n_resets);
	g_string_append_printf(s, "reset-mode=%s\n", sim.reset_mode == RESET_REENUMERATE ? "reenumerate" : "keep-port");
	g_string_append_printf(s, "port=%s\n", port ? port : "");
	g_string_append(s, "firmware=");
	for (gsize i = 0, n = 0; i < G_N_ELEMENTS(firmwares); i++)
		if (sim.firmware & firmwares[i].flag)
			g_string_append_printf(s, "%s%s", n++ ? "," : "", firmwares[i].name);
	g_string_append_c(s, '\n');
}

/* ---- command line ------------------------------------------------------ */

/* --fail-qmi, --no-response, --vanish: SERVICE:MESSAGE[:N] */
static gboolean
fault_key(char **key, CpSimFault *f)
{
	guint64 msg;
	int svc = g_ascii_strcasecmp(key[0], "ctl") == 0 ? QMI_SERVICE_CTL :
		  g_ascii_strcasecmp(key[0], "dms") == 0 ? QMI_SERVICE_DMS :
		  g_ascii_strcasecmp(key[0], "nas") == 0 ? QMI_SERVICE_NAS :
		  g_ascii_strcasecmp(key[0], "uim") == 0 ? QMI_SERVICE_UIM :
		  g_ascii_strcasecmp(key[0], "wds") == 0 ? QMI_SERVICE_WDS : -1;

	if (svc < 0 || !g_ascii_string_to_unsigned(key[1] + (g_str_has_prefix(key[1], "0x") ? 2 : 0), 16, 0, 0xFFFF,
						   &msg, NULL))
		return FALSE;
	f->service = (guint)svc;
	f->message = (guint)msg;
	return TRUE;
}

static const CpSimFrontEnd front_end = {
	.name = "cp-qmi-sim",
	.summary = "- QMI modem simulator with a USIM and a network",
	.flags = CP_SIM_MODEM_PTY_OPTIONAL | CP_SIM_MODEM_NETWORK_NAME,
	.faults = {
		.fail_option = "fail-qmi",
		.fail_answer = "a QMI error",
		.what = "SERVICE:MESSAGE",
		.arg = "SVC:MSG[:N]",
		.usage = "SERVICE:MESSAGE[:N], e.g. uim:0x003b:3",
		.n_key = 2,
		.parse_key = fault_key,
	},
	.input = pty_input,
	.attach = attach_cb,
	.dump = dump_keys,
	.context_clear = profile_clear,
};

static gboolean
parse_list(GArray **a, const char *value, GError **error)
{
	g_auto(GStrv) f = g_strsplit(value, ",", -1);

	if (!*a)
		*a = g_array_new(FALSE, FALSE, sizeof(guint));
	for (guint i = 0; f[i]; i++) {
		guint64 v;
		guint u;

		if (!g_ascii_string_to_unsigned(f[i], 10, 1, 1000000, &v, NULL)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "'%s': want N[,N...] (1-based)", value);
			return FALSE;
		}
		u = (guint)v;
		g_array_append_val(*a, u);
	}
	return TRUE;
}

static gboolean
opt_fail_apdu(const char *name, const char *value, gpointer data, GError **error)
{
	return parse_list(&sim.fail_apdu, value, error);
}

static gboolean
opt_fail_update(const char *name, const char *value, gpointer data, GError **error)
{
	return parse_list(&sim.fail_update, value, error);
}

/* The profiles named replace the default; repeated, they add up. */
static gboolean firmware_given;

static gboolean
opt_firmware(const char *name, const char *value, gpointer data, GError **error)
{
	g_auto(GStrv) f = g_strsplit(value, ",", -1);

	if (!firmware_given)
		sim.firmware = FW_LEGACY;
	firmware_given = TRUE;
	for (guint i = 0; f[i]; i++) {
		gsize j;

		if (g_strcmp0(f[i], "default") == 0) {
			sim.firmware |= FW_DEFAULT;
			continue;
		}
		if (g_strcmp0(f[i], "legacy") == 0)
			continue;
		for (j = 0; j < G_N_ELEMENTS(firmwares); j++)
			if (g_strcmp0(f[i], firmwares[j].name) == 0)
				break;
		if (j == G_N_ELEMENTS(firmwares)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "unknown firmware profile '%s' (default, legacy, dms-uim-unsupported, "
				    "dms-uim-not-supported, no-logical-channel, slow)", f[i]);
			return FALSE;
		}
		sim.firmware |= firmwares[j].flag;
	}
	return TRUE;
}

static gboolean
opt_reset_mode(const char *name, const char *value, gpointer data, GError **error)
{
	if (g_strcmp0(value, "keep-port") == 0)
		sim.reset_mode = RESET_KEEP_PORT;
	else if (g_strcmp0(value, "reenumerate") == 0)
		sim.reset_mode = RESET_REENUMERATE;
	else {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--reset-mode: want keep-port or reenumerate, not '%s'", value);
		return FALSE;
	}
	sim.reset_mode_set = TRUE;
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_autofree char *card = NULL, *read_le = NULL;
	CpSimLe le = CP_SIM_LE_DEFAULT;
	gboolean offline = FALSE;
	g_autoptr(GError) error = NULL;
	Profile *p;
	/* The hardware profiles (docs/simulators.md): --card, --read-le and
	 * --firmware default to what current hardware does (CP_SIM_CARD_DEFAULT,
	 * exact, dms-uim-unsupported, and --reset-mode reenumerate on a pty). */
	GOptionEntry entries[] = {
		{ "proxy", 0, 0, G_OPTION_ARG_NONE, &sim.proxy, "Serve on the abstract socket @qmi-proxy (use inside unshare -n)", NULL },
		{ "proxy-name", 0, 0, G_OPTION_ARG_STRING, &sim.proxy_name, "Abstract socket name (default qmi-proxy)", "NAME" },
		{ "card", 0, 0, G_OPTION_ARG_STRING, &card, "The card's model (" CP_SIM_CARD_DEFAULT ")", "NAME" },
		{ "read-le", 0, 0, G_OPTION_ARG_STRING, &read_le, "READ answer to an Le the file cannot fill: lenient, exact, eof (exact)", "MODE" },
		{ "firmware", 0, 0, G_OPTION_ARG_CALLBACK, opt_firmware, "Firmware profile(s), comma-separated", "NAME[,NAME]" },
		{ "reset-mode", 0, 0, G_OPTION_ARG_CALLBACK, opt_reset_mode, "On DMS reset: keep-port or reenumerate (reenumerate on a pty, keep-port on the proxy)", "MODE" },
		{ "sysfs", 0, 0, G_OPTION_ARG_FILENAME, &sim.sysfs, "Show the module and its port in a fake sysfs under DIR", "DIR" },
		{ "usb-port", 0, 0, G_OPTION_ARG_STRING, &sim.usb_port, "The module's USB device in that sysfs (1-1)", "NAME" },
		{ "reenumerate-path", 0, 0, G_OPTION_ARG_FILENAME, &sim.reenumerate_path, "After a reset the port comes back here (every other reset)", "PATH" },
		{ "offline", 0, 0, G_OPTION_ARG_NONE, &offline, "Start in low-power mode (no registration)", NULL },
		{ "reject-detached", 0, 0, G_OPTION_ARG_NONE, &sim.reject_detached, "After a reject, both domains detached (ModemManager 1.20 shows idle)", NULL },
		{ "fail-apdu", 0, 0, G_OPTION_ARG_CALLBACK, opt_fail_apdu, "Answer the N-th APDUs with 6F00", "N[,N]" },
		{ "fail-update", 0, 0, G_OPTION_ARG_CALLBACK, opt_fail_update, "Answer the N-th UPDATE BINARY APDUs with 6F00", "N[,N]" },
		G_OPTION_ENTRY_NULL,
	};

	sim.listen_fd = -1;
	sim.firmware = FW_DEFAULT;
	if (!cp_sim_modem_parse(&sim.m, &front_end, entries, &argc, &argv))
		return 2;
	if (!!sim.m.pty_path == !!sim.proxy) {
		fprintf(stderr, "cp-qmi-sim: give exactly one of --pty PATH and --proxy\n");
		return 2;
	}
	if (!sim.proxy_name)
		sim.proxy_name = g_strdup("qmi-proxy");
	/* A USB module reboots off the bus; on the proxy the simulator is
	 * the proxy itself, whose port stays (docs/simulators.md). */
	if (!sim.reset_mode_set)
		sim.reset_mode = sim.proxy ? RESET_KEEP_PORT : RESET_REENUMERATE;
	if (sim.sysfs && (sim.proxy || sim.sysfs[0] != '/')) {
		fprintf(stderr, "cp-qmi-sim: --sysfs wants an absolute DIR and --pty\n");
		return 2;
	}
	if (!sim.usb_port)
		sim.usb_port = g_strdup("1-1");
	if (sim.proxy && sim.reset_mode == RESET_REENUMERATE) {
		fprintf(stderr, "cp-qmi-sim: --reset-mode reenumerate needs --pty\n");
		return 2;
	}
	if (sim.reenumerate_path && sim.reset_mode != RESET_REENUMERATE) {
		fprintf(stderr, "cp-qmi-sim: --reenumerate-path needs --reset-mode reenumerate\n");
		return 2;
	}
	if (read_le && !cp_sim_le_from_string(read_le, &le)) {
		fprintf(stderr, "cp-qmi-sim: --read-le: want lenient, exact or eof\n");
		return 2;
	}
	if (!cp_sim_modem_setup(&sim.m, card, le))
		return 2;
	sim.clients = g_ptr_array_new_with_free_func(g_free);
	sim.conns = g_ptr_array_new();
	sim.delayed = g_ptr_array_new_with_free_func((GDestroyNotify)delayed_free);
	p = (Profile *)cp_sim_modem_context_add(&sim.m, sizeof(Profile), 1, sim.m.apn);
	p->name = g_strdup("default");
	p->pdp_type = 3;   /* IPv4v6 */
	sim.next_cid = 1;
	sim.allocations = g_string_new(NULL);

	if (sim.m.pty_path ? !open_pty(sim.m.pty_path, &error) : !open_proxy(&error)) {
		fprintf(stderr, "cp-qmi-sim: %s\n", error->message);
		return 1;
	}
	card_start();
	sim.reg_state = QMI_NAS_REGISTRATION_STATE_NOT_REGISTERED;
	if (offline)
		sim.op_mode = QMI_DMS_OPERATING_MODE_LOW_POWER;
	else
		go_online();
	dump();
	cp_sim_modem_run(&sim.m, sim.m.pty_path ? sim.m.pty_path : sim.proxy_name);
	delayed_drop(NULL, FALSE);
	conns_free();
	g_ptr_array_unref(sim.conns);
	g_ptr_array_unref(sim.clients);
	g_clear_pointer(&sim.fail_apdu, g_array_unref);
	g_clear_pointer(&sim.fail_update, g_array_unref);
	if (sim.listen_fd >= 0)
		close(sim.listen_fd);
	if (sim.reset_timer)
		g_source_remove(sim.reset_timer);
	if (sim.drop_timer)
		g_source_remove(sim.drop_timer);
	sysfs_down(sim.m.port_path);
	g_free(sim.sysfs);
	g_free(sim.usb_port);
	g_free(sim.reenumerate_path);
	g_ptr_array_unref(sim.delayed);
	g_free(sim.proxy_name);
	cp_sim_modem_clear(&sim.m);
	return 0;
}
