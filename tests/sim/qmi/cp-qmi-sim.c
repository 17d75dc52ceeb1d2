/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-qmi-sim: a QMI modem with a programmable USIM and a network that
 * really authenticates, for tests and benchmarks. Real libqmi and real
 * qmicli talk to it on a pty or on the @qmi-proxy abstract socket.
 * See docs/man/cp-qmi-sim.1.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <glib.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <libqmi-glib.h>

#include "cp-buf.h"
#include "cp-sim-network.h"
#include "cp-sim-sysfs.h"
#include "cp-sim-usim.h"

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

typedef enum {
	FAULT_QMI_ERROR,
	FAULT_NO_RESPONSE,
	FAULT_VANISH,
} FaultKind;

typedef struct {
	FaultKind kind;
	guint service;
	guint message;
	guint nth;            /* 1-based occurrence; 0: every one */
	guint seen;
} Fault;

typedef struct {
	int fd;
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
	FW_DMS_UIM_UNSUPPORTED = 1 << 0,   /* DMS UIM messages: InvalidQmiCommand */
	FW_DMS_UIM_NOT_SUPPORTED = 1 << 1, /* ... NotSupported */
	FW_NO_LOGICAL_CHANNEL = 1 << 2,    /* UIM Open Logical Channel: AccessDenied */
	FW_SLOW = 1 << 3,                  /* answers delayed as over a real card */
} Firmware;

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

typedef struct {
	guint8 index;
	char *name;
	char *apn;
	guint8 pdp_type;
} Profile;

typedef struct {
	/* configuration */
	char *pty_path;
	char *reenumerate_path;    /* where the port comes back after a reset */
	char *port_path;           /* where it is now; NULL while gone */
	ResetMode reset_mode;
	gboolean reset_mode_set;
	char *sysfs;               /* the fake sysfs the port appears in */
	char *usb_port;            /* the module's USB device there */
	guint firmware;            /* Firmware flags */
	gboolean proxy;
	char *proxy_name;
	char *dump_path;
	char *subscribers_path;
	gint64 subscribers_mtime;
	guint reset_delay_ms;
	guint reg_delay_ms;
	GArray *faults;            /* Fault */
	GArray *fail_apdu;         /* guint: n-th APDU answered 6F00 */
	GArray *fail_update;       /* guint: n-th UPDATE BINARY answered 6F00 */
	/* state */
	CpSimUsim *usim;
	CpSimNetwork *net;
	guint8 op_mode;            /* QmiDmsOperatingMode */
	guint8 reg_state;          /* QmiNasRegistrationState */
	char *modem_imsi;          /* what the modem read from the card at its last start */
	GPtrArray *profiles;       /* Profile */
	GPtrArray *clients;        /* Client */
	GPtrArray *conns;          /* Conn */
	GPtrArray *delayed;        /* Delayed */
	guint next_cid;
	guint reg_timer;
	guint reset_timer;
	guint drop_timer;          /* the port's drop after a reset's answer */
	guint n_requests;
	guint n_apdus;
	guint n_updates;
	guint n_resets;
	int pty_slave;
	int listen_fd;
	GMainLoop *loop;
} Sim;

static Sim sim;

static void dump(void);
static gboolean open_pty(const char *path, GError **error);
static gboolean port_drop_cb(gpointer data);
static void conn_free(Conn *c);

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
	const char *plmn = cp_sim_network_get_plmn(sim.net);
	gboolean reg = sim.reg_state == QMI_NAS_REGISTRATION_STATE_REGISTERED;
	gboolean denied = sim.reg_state == QMI_NAS_REGISTRATION_STATE_REGISTRATION_DENIED;
	gsize o = qmi_message_tlv_write_init(m, 0x01, NULL);

	qmi_message_tlv_write_guint8(m, sim.reg_state, NULL);
	/* After a reject the modem stays camped on the cell that rejected it
	 * (limited service): the CS domain reads attached, the PS domain not.
	 * ModemManager maps a detached domain to "idle" whatever the
	 * registration state says, so only this shows it "denied". */
	qmi_message_tlv_write_guint8(m, reg || denied ? QMI_NAS_ATTACH_STATE_ATTACHED : QMI_NAS_ATTACH_STATE_DETACHED, NULL);
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
		qmi_message_tlv_write_string(m, 1, cp_sim_network_get_name(sim.net), -1, NULL);
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

static gint64
file_mtime(const char *path)
{
	GStatBuf st;

	return g_stat(path, &st) == 0 ? (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000 : -1;
}

/* The AUSF adds subscribers, key generations, retires and removes them
 * while the network runs: the file's changes apply before the next attach. */
static void
subscribers_refresh(void)
{
	g_autoptr(GError) error = NULL;
	gint64 mtime;
	guint added, removed;

	if (!sim.subscribers_path || (mtime = file_mtime(sim.subscribers_path)) == sim.subscribers_mtime)
		return;
	sim.subscribers_mtime = mtime;
	if (!cp_sim_network_load_new(sim.net, sim.subscribers_path, &added, &removed, &error))
		g_warning("subscribers: %s", error->message);
	if (added || removed)
		g_message("subscribers: %u key set(s) joined the network, %u left", added, removed);
}

static gboolean
attach_cb(gpointer data)
{
	CpSimAttach a;

	sim.reg_timer = 0;
	if (sim.op_mode != QMI_DMS_OPERATING_MODE_ONLINE)
		return G_SOURCE_REMOVE;
	subscribers_refresh();
	a = cp_sim_network_attach(sim.net, sim.usim);
	g_message("attach: %s", cp_sim_attach_name(a));
	set_reg_state(a == CP_SIM_ATTACH_REGISTERED ?
		      QMI_NAS_REGISTRATION_STATE_REGISTERED :
		      QMI_NAS_REGISTRATION_STATE_REGISTRATION_DENIED);
	return G_SOURCE_REMOVE;
}

/* The modem (re)starts its use of the card: it reads the IMSI once and
 * keeps it, as real modems do until the next reset. */
static void
card_start(void)
{
	cp_sim_usim_reset(sim.usim);
	g_free(sim.modem_imsi);
	sim.modem_imsi = cp_sim_usim_get_imsi(sim.usim);
}

static void
go_online(void)
{
	sim.op_mode = QMI_DMS_OPERATING_MODE_ONLINE;
	set_reg_state(QMI_NAS_REGISTRATION_STATE_NOT_REGISTERED_SEARCHING);
	if (sim.reg_timer)
		g_source_remove(sim.reg_timer);
	sim.reg_timer = g_timeout_add(sim.reg_delay_ms, attach_cb, NULL);
}

static gboolean
reset_done_cb(gpointer data)
{
	sim.reset_timer = 0;
	if (sim.reset_mode == RESET_REENUMERATE) {
		g_autoptr(GError) error = NULL;
		/* back under the other name when there is one, as USB may give */
		const char *path = sim.reenumerate_path && sim.n_resets % 2 ? sim.reenumerate_path : sim.pty_path;

		/* both due at once (a loaded machine): the port goes first */
		if (sim.drop_timer) {
			g_source_remove(sim.drop_timer);
			port_drop_cb(NULL);
		}
		if (!open_pty(path, &error)) {
			g_warning("reset: the port cannot come back: %s", error->message);
			g_main_loop_quit(sim.loop);
			return G_SOURCE_REMOVE;
		}
		g_message("reset: the port is back at %s", path);
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
	g_message("reset: the port %s disappears", sim.port_path);
	sysfs_down(sim.port_path);
	if (sim.port_path)
		unlink(sim.port_path);
	g_clear_pointer(&sim.port_path, g_free);
	while (sim.conns->len) {
		Conn *c = g_ptr_array_index(sim.conns, 0);

		g_ptr_array_remove_index(sim.conns, 0);
		conn_free(c);
	}
	if (sim.pty_slave >= 0)
		close(sim.pty_slave);
	sim.pty_slave = -1;
	cp_sim_usim_reset(sim.usim);
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
		if (!sim.modem_imsi || sim.op_mode == QMI_DMS_OPERATING_MODE_RESET)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_DEVICE_NOT_READY);
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x01, sim.modem_imsi);
		return resp;
	case 0x003C:   /* UIM Get ICCID */
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		tlv_string(resp, 0x01, cp_sim_usim_get_iccid(sim.usim));
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
			if (sim.reg_timer)
				g_source_remove(sim.reg_timer);
			sim.reg_timer = 0;
			sim.reset_timer = g_timeout_add(sim.reset_delay_ms, reset_done_cb, NULL);
			/* A USB module reboots: its port goes once the answer is
			 * out and read (a pty's hangup discards unread input). */
			if (sim.reset_mode == RESET_REENUMERATE)
				sim.drop_timer = g_timeout_add(MIN(RESET_DROP_MS, sim.reset_delay_ms / 2),
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

/* The modem learns the USIM's AID from EF.DIR, as real modems do. */
static gsize
usim_aid(guint8 aid[16])
{
	static const guint16 mf[] = { 0x3F00 };
	g_autoptr(GByteArray) rec = g_byte_array_new();

	for (guint r = 1; cp_sim_usim_read_record(sim.usim, mf, 1, 0x2F00, r, 0, rec) == 0x9000; r++) {
		const guint8 *d = rec->data;

		/* 61 L 4F n AID: a USIM has 1002 after the RID (TS 101 220) */
		if (rec->len >= 11 && d[0] == 0x61 && d[2] == 0x4F && d[3] >= 7 && d[3] <= 16 &&
		    4u + d[3] <= rec->len && d[9] == 0x10 && d[10] == 0x02) {
			memcpy(aid, d + 4, d[3]);
			return d[3];
		}
		g_byte_array_set_size(rec, 0);
	}
	return 0;
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
		guint8 aid[16];
		gsize o, aid_len = usim_aid(aid);

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
		qmi_message_tlv_write_guint8(resp, 1, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_UIM_CARD_APPLICATION_TYPE_USIM, NULL);
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
			sw = cp_sim_usim_read_record(sim.usim, path, n_path, fid,
						     (guint)(info[0] | info[1] << 8),
						     (guint16)(info[2] | info[3] << 8), data);
		else
			sw = cp_sim_usim_read_path(sim.usim, path, n_path, fid,
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
		if (!cp_sim_usim_file_info(sim.usim, path, n_path, fid, &fi, fcp))
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
	case MSG_UIM_OPEN_CHANNEL: {
		guint16 sw;
		guint ch;

		v = raw_tlv(req, 0x10, &len);
		if (!v || len < 1 || v[0] != len - 1)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		/* as a Telit LE910C4 answers lpac (docs/simulators.md) */
		if (sim.firmware & FW_NO_LOGICAL_CHANNEL)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_ACCESS_DENIED);
		ch = cp_sim_usim_open_channel(sim.usim, v + 1, v[0], &sw);
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
		return qmi_message_response_new(req, cp_sim_usim_close_channel(sim.usim, ch) ?
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
			cp_sim_usim_apdu(sim.usim, ch, v + 2, len - 2, out);
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
	for (guint i = 0; i < sim.profiles->len; i++) {
		Profile *p = g_ptr_array_index(sim.profiles, i);

		if (p->index == index)
			return p;
	}
	return NULL;
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
		g_free(p->apn);
		p->apn = g_strndup((const char *)v, len);
	}
}

static void
profile_free(gpointer data)
{
	Profile *p = data;

	g_free(p->name);
	g_free(p->apn);
	g_free(p);
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
		qmi_message_tlv_write_guint8(resp, (guint8)sim.profiles->len, NULL);
		for (guint i = 0; i < sim.profiles->len; i++) {
			p = g_ptr_array_index(sim.profiles, i);
			qmi_message_tlv_write_guint8(resp, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
			qmi_message_tlv_write_guint8(resp, p->index, NULL);
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
		tlv_string(resp, 0x14, p->apn);
		return resp;
	case 0x0028:   /* Modify Profile */
		v = raw_tlv(req, 0x01, &len);
		if (!v || len != 2)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_MISSING_ARGUMENT);
		if (!(p = profile_find(v[1])))
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_PROFILE);
		profile_update(p, req);
		return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
	case 0x0027:   /* Create Profile */
		if (sim.profiles->len >= 16)
			return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NO_FREE_PROFILE);
		p = g_new0(Profile, 1);
		p->index = 1;
		while (profile_find(p->index))
			p->index++;
		p->name = g_strdup("");
		p->apn = g_strdup("");
		profile_update(p, req);
		g_ptr_array_add(sim.profiles, p);
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_NONE);
		o = qmi_message_tlv_write_init(resp, 0x01, NULL);
		qmi_message_tlv_write_guint8(resp, QMI_WDS_PROFILE_TYPE_3GPP, NULL);
		qmi_message_tlv_write_guint8(resp, p->index, NULL);
		qmi_message_tlv_write_complete(resp, o, NULL);
		return resp;
	}
	return qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_QMI_COMMAND);
}

/* ---- dispatch and faults ----------------------------------------------- */

static Fault *
fault_match(QmiMessage *req)
{
	guint svc = qmi_message_get_service(req);
	guint id = qmi_message_get_message_id(req);

	for (guint i = 0; i < sim.faults->len; i++) {
		Fault *f = &g_array_index(sim.faults, Fault, i);

		if (f->service != svc || f->message != id)
			continue;
		f->seen++;
		if (f->nth == 0 || f->seen == f->nth)
			return f;
	}
	return NULL;
}

static void
vanish(void)
{
	g_message("fault: vanishing");
	/* off the bus: the node goes with the module (a pty's number is
	 * reused by the next one opened, another program's) */
	sysfs_down(sim.port_path);
	if (sim.port_path)
		unlink(sim.port_path);
	dump();
	/* Everything closes with the process, as when a module drops off USB. */
	_exit(0);
}

static void
handle_message(Conn *c, QmiMessage *req)
{
	g_autoptr(QmiMessage) resp = NULL;
	QmiService svc = qmi_message_get_service(req);
	Fault *f;

	sim.n_requests++;
	if (svc != QMI_SERVICE_CTL && !client_find((guint8)svc, qmi_message_get_client_id(req))) {
		resp = qmi_message_response_new(req, QMI_PROTOCOL_ERROR_INVALID_CLIENT_ID);
		send_message(c, resp);
		return;
	}
	f = fault_match(req);
	if (f) {
		switch (f->kind) {
		case FAULT_VANISH:
			vanish();
			return;
		case FAULT_NO_RESPONSE:
			g_message("fault: no response to %s 0x%04x", qmi_service_get_string(svc),
				  qmi_message_get_message_id(req));
			return;
		case FAULT_QMI_ERROR:
			g_message("fault: error for %s 0x%04x", qmi_service_get_string(svc),
				  qmi_message_get_message_id(req));
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
	close(c->fd);
	g_byte_array_unref(c->in);
	g_free(c);
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
		if (!c->proxy)
			return G_SOURCE_CONTINUE;   /* pty: EIO while no one holds the slave */
		c->watch = 0;
		g_ptr_array_remove(sim.conns, c);
		conn_free(c);
		return G_SOURCE_REMOVE;
	}
	g_byte_array_append(c->in, buf, (guint)n);
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
	return G_SOURCE_CONTINUE;
}

static Conn *
conn_new(int fd, gboolean proxy)
{
	Conn *c = g_new0(Conn, 1);

	c->fd = fd;
	c->proxy = proxy;
	c->in = g_byte_array_new();
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
	struct termios t;
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	const char *slave;

	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || !(slave = ptsname(master))) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pty: %s", g_strerror(errno));
		return FALSE;
	}
	/* Hold the slave open: without it the master reads EIO between the
	 * client's close and its next open. */
	sim.pty_slave = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sim.pty_slave < 0 || tcgetattr(sim.pty_slave, &t) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pty %s: %s", slave, g_strerror(errno));
		return FALSE;
	}
	cfmakeraw(&t);
	tcsetattr(sim.pty_slave, TCSANOW, &t);
	unlink(path);
	if (symlink(slave, path) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "symlink %s: %s",
			    path, g_strerror(errno));
		return FALSE;
	}
	conn_new(master, FALSE);
	g_free(sim.port_path);
	sim.port_path = g_strdup(path);
	sysfs_up(path);
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
dump(void)
{
	g_autoptr(GString) s = NULL;
	g_autofree char *tmp = NULL;
	Profile *p;

	if (!sim.dump_path)
		return;
	s = g_string_new(NULL);
	cp_sim_usim_dump(sim.usim, s);
	cp_sim_network_dump(sim.net, s);
	g_string_append_printf(s, "operating-mode=%s\n", qmi_dms_operating_mode_get_string(sim.op_mode));
	g_string_append_printf(s, "registration=%s\n", qmi_nas_registration_state_get_string(sim.reg_state));
	g_string_append_printf(s, "modem-imsi=%s\n", sim.modem_imsi ? sim.modem_imsi : "");
	p = profile_find(1);
	g_string_append_printf(s, "apn=%s\n", p ? p->apn : "");
	g_string_append_printf(s, "profiles=%u\n", sim.profiles->len);
	g_string_append_printf(s, "qmi-requests=%u\n", sim.n_requests);
	g_string_append_printf(s, "apdus=%u\n", sim.n_apdus);
	g_string_append_printf(s, "resets=%u\n", sim.n_resets);
	g_string_append_printf(s, "reset-mode=%s\n", sim.reset_mode == RESET_REENUMERATE ? "reenumerate" : "keep-port");
	g_string_append_printf(s, "port=%s\n", sim.proxy ? sim.proxy_name : sim.port_path ? sim.port_path : "");
	g_string_append(s, "firmware=");
	for (gsize i = 0, n = 0; i < G_N_ELEMENTS(firmwares); i++)
		if (sim.firmware & firmwares[i].flag)
			g_string_append_printf(s, "%s%s", n++ ? "," : "", firmwares[i].name);
	g_string_append_c(s, '\n');
	tmp = g_strconcat(sim.dump_path, ".tmp", NULL);
	if (g_file_set_contents_full(tmp, s->str, (gssize)s->len, G_FILE_SET_CONTENTS_NONE, 0600, NULL))
		rename(tmp, sim.dump_path);
}

/* ---- command line ------------------------------------------------------ */

static gboolean
parse_fault(FaultKind kind, const char *value, GError **error)
{
	g_auto(GStrv) f = g_strsplit(value, ":", -1);
	Fault fault = { .kind = kind };
	guint n = g_strv_length(f);
	guint64 msg = 0, nth = 0;
	int svc;

	if (n < 2 || n > 3)
		goto bad;
	svc = g_ascii_strcasecmp(f[0], "ctl") == 0 ? QMI_SERVICE_CTL :
	      g_ascii_strcasecmp(f[0], "dms") == 0 ? QMI_SERVICE_DMS :
	      g_ascii_strcasecmp(f[0], "nas") == 0 ? QMI_SERVICE_NAS :
	      g_ascii_strcasecmp(f[0], "uim") == 0 ? QMI_SERVICE_UIM :
	      g_ascii_strcasecmp(f[0], "wds") == 0 ? QMI_SERVICE_WDS : -1;
	if (svc < 0 || !g_ascii_string_to_unsigned(f[1] + (g_str_has_prefix(f[1], "0x") ? 2 : 0), 16, 0, 0xFFFF, &msg, NULL))
		goto bad;
	if (n == 3 && !g_ascii_string_to_unsigned(f[2], 10, 0, 1000000, &nth, NULL))
		goto bad;
	fault.service = (guint)svc;
	fault.message = (guint)msg;
	fault.nth = (guint)nth;
	g_array_append_val(sim.faults, fault);
	return TRUE;
bad:
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "fault '%s': want SERVICE:MESSAGE[:N], e.g. uim:0x003b:3", value);
	return FALSE;
}

static gboolean
opt_fail_qmi(const char *name, const char *value, gpointer data, GError **error)
{
	return parse_fault(FAULT_QMI_ERROR, value, error);
}

static gboolean
opt_no_response(const char *name, const char *value, gpointer data, GError **error)
{
	return parse_fault(FAULT_NO_RESPONSE, value, error);
}

static gboolean
opt_vanish(const char *name, const char *value, gpointer data, GError **error)
{
	return parse_fault(FAULT_VANISH, value, error);
}

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

static gboolean
opt_firmware(const char *name, const char *value, gpointer data, GError **error)
{
	g_auto(GStrv) f = g_strsplit(value, ",", -1);

	for (guint i = 0; f[i]; i++) {
		gsize j;

		if (g_strcmp0(f[i], "default") == 0)
			continue;
		for (j = 0; j < G_N_ELEMENTS(firmwares); j++)
			if (g_strcmp0(f[i], firmwares[j].name) == 0)
				break;
		if (j == G_N_ELEMENTS(firmwares)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "unknown firmware profile '%s' (default, dms-uim-unsupported, "
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
	sim.reset_mode_set = TRUE;
	if (g_strcmp0(value, "keep-port") == 0)
		sim.reset_mode = RESET_KEEP_PORT;
	else if (g_strcmp0(value, "reenumerate") == 0)
		sim.reset_mode = RESET_REENUMERATE;
	else {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--reset-mode: want keep-port or reenumerate, not '%s'", value);
		return FALSE;
	}
	return TRUE;
}

static gboolean
quit_cb(gpointer data)
{
	g_main_loop_quit(sim.loop);
	return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
	g_autofree char *subscribers = NULL, *imsi = NULL, *k_hex = NULL, *opc_hex = NULL;
	g_autofree char *adm1 = NULL, *iccid = NULL, *plmn = NULL, *network_name = NULL, *apn = NULL;
	g_autofree char *card = NULL, *read_le = NULL;
	CpSimLe le = CP_SIM_LE_LENIENT;
	int adm1_retries = 3, mnc_length = 2, reset_delay = 200, reg_delay = 100;
	gboolean offline = FALSE;
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) ctx = NULL;
	uint8_t k[16], opc[16];
	Profile *p;
	GOptionEntry entries[] = {
		{ "pty", 0, 0, G_OPTION_ARG_FILENAME, &sim.pty_path, "Serve on a pty; symlink its slave to PATH", "PATH" },
		{ "proxy", 0, 0, G_OPTION_ARG_NONE, &sim.proxy, "Serve on the abstract socket @qmi-proxy (use inside unshare -n)", NULL },
		{ "proxy-name", 0, 0, G_OPTION_ARG_STRING, &sim.proxy_name, "Abstract socket name (default qmi-proxy)", "NAME" },
		{ "subscribers", 0, 0, G_OPTION_ARG_FILENAME, &subscribers, "The network's subscriber file", "FILE" },
		{ "imsi", 0, 0, G_OPTION_ARG_STRING, &imsi, "The card's initial IMSI", "DIGITS" },
		{ "mnc-length", 0, 0, G_OPTION_ARG_INT, &mnc_length, "The card's initial MNC length (2)", "N" },
		{ "k", 0, 0, G_OPTION_ARG_STRING, &k_hex, "The card's initial K (32 hex)", "HEX" },
		{ "opc", 0, 0, G_OPTION_ARG_STRING, &opc_hex, "The card's initial OPc (32 hex)", "HEX" },
		{ "adm1", 0, 0, G_OPTION_ARG_STRING, &adm1, "The card's ADM1 (8 characters)", "KEY" },
		{ "adm1-retries", 0, 0, G_OPTION_ARG_INT, &adm1_retries, "Wrong ADM1 attempts before it blocks (3)", "N" },
		{ "iccid", 0, 0, G_OPTION_ARG_STRING, &iccid, "The card's ICCID", "DIGITS" },
		{ "card", 0, 0, G_OPTION_ARG_STRING, &card, "The card's model (" CP_SIM_CARD_DEFAULT ")", "NAME" },
		{ "read-le", 0, 0, G_OPTION_ARG_STRING, &read_le, "READ answer to an Le the file cannot fill: lenient, exact, eof (lenient)", "MODE" },
		{ "firmware", 0, 0, G_OPTION_ARG_CALLBACK, opt_firmware, "Firmware profile(s), comma-separated", "NAME[,NAME]" },
		{ "reset-mode", 0, 0, G_OPTION_ARG_CALLBACK, opt_reset_mode, "On DMS reset: keep-port or reenumerate (reenumerate on a pty, keep-port on the proxy)", "MODE" },
		{ "sysfs", 0, 0, G_OPTION_ARG_FILENAME, &sim.sysfs, "Show the module and its port in a fake sysfs under DIR", "DIR" },
		{ "usb-port", 0, 0, G_OPTION_ARG_STRING, &sim.usb_port, "The module's USB device in that sysfs (1-1)", "NAME" },
		{ "reenumerate-path", 0, 0, G_OPTION_ARG_FILENAME, &sim.reenumerate_path, "After a reset the port comes back here (every other reset)", "PATH" },
		{ "plmn", 0, 0, G_OPTION_ARG_STRING, &plmn, "The network's PLMN (00101)", "MCCMNC" },
		{ "network-name", 0, 0, G_OPTION_ARG_STRING, &network_name, "The network's name", "NAME" },
		{ "apn", 0, 0, G_OPTION_ARG_STRING, &apn, "APN of the modem's profile 1 (internet)", "APN" },
		{ "offline", 0, 0, G_OPTION_ARG_NONE, &offline, "Start in low-power mode (no registration)", NULL },
		{ "reset-delay", 0, 0, G_OPTION_ARG_INT, &reset_delay, "Milliseconds a reset takes (200)", "MS" },
		{ "registration-delay", 0, 0, G_OPTION_ARG_INT, &reg_delay, "Milliseconds from online to attach (100)", "MS" },
		{ "dump", 0, 0, G_OPTION_ARG_FILENAME, &sim.dump_path, "Write the card and modem state to FILE after every change", "FILE" },
		{ "fail-qmi", 0, 0, G_OPTION_ARG_CALLBACK, opt_fail_qmi, "Answer the N-th SERVICE:MESSAGE with a QMI error", "SVC:MSG[:N]" },
		{ "no-response", 0, 0, G_OPTION_ARG_CALLBACK, opt_no_response, "Never answer the N-th SERVICE:MESSAGE", "SVC:MSG[:N]" },
		{ "vanish", 0, 0, G_OPTION_ARG_CALLBACK, opt_vanish, "Disappear on the N-th SERVICE:MESSAGE", "SVC:MSG[:N]" },
		{ "fail-apdu", 0, 0, G_OPTION_ARG_CALLBACK, opt_fail_apdu, "Answer the N-th APDUs with 6F00", "N[,N]" },
		{ "fail-update", 0, 0, G_OPTION_ARG_CALLBACK, opt_fail_update, "Answer the N-th UPDATE BINARY APDUs with 6F00", "N[,N]" },
		G_OPTION_ENTRY_NULL,
	};

	signal(SIGPIPE, SIG_IGN);
	sim.faults = g_array_new(FALSE, FALSE, sizeof(Fault));
	sim.pty_slave = -1;
	sim.listen_fd = -1;
	ctx = g_option_context_new("- QMI modem simulator with a USIM and a network");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		fprintf(stderr, "cp-qmi-sim: %s\n", error->message);
		return 2;
	}
	if (!!sim.pty_path == !!sim.proxy) {
		fprintf(stderr, "cp-qmi-sim: give exactly one of --pty PATH and --proxy\n");
		return 2;
	}
	if (!sim.proxy_name)
		sim.proxy_name = g_strdup("qmi-proxy");
	if (reset_delay < 0 || reg_delay < 0 || adm1_retries < 1 || adm1_retries > 15 ||
	    (mnc_length != 2 && mnc_length != 3)) {
		fprintf(stderr, "cp-qmi-sim: delays >= 0, --adm1-retries 1-15, --mnc-length 2 or 3\n");
		return 2;
	}
	/* A USB module reboots off the bus; on the proxy the simulator is
	 * the proxy itself, whose port stays (docs/simulators.md). */
	if (!sim.reset_mode_set)
		sim.reset_mode = sim.proxy ? RESET_KEEP_PORT : RESET_REENUMERATE;
	if (sim.proxy && sim.reset_mode == RESET_REENUMERATE) {
		fprintf(stderr, "cp-qmi-sim: --reset-mode reenumerate needs --pty\n");
		return 2;
	}
	if (sim.sysfs && (sim.proxy || sim.sysfs[0] != '/')) {
		fprintf(stderr, "cp-qmi-sim: --sysfs wants an absolute DIR and --pty\n");
		return 2;
	}
	if (!sim.usb_port)
		sim.usb_port = g_strdup("1-1");
	if (sim.reenumerate_path && sim.reset_mode != RESET_REENUMERATE) {
		fprintf(stderr, "cp-qmi-sim: --reenumerate-path needs --reset-mode reenumerate\n");
		return 2;
	}
	if (read_le && !cp_sim_le_from_string(read_le, &le)) {
		fprintf(stderr, "cp-qmi-sim: --read-le: want lenient, exact or eof\n");
		return 2;
	}
	sim.reset_delay_ms = (guint)reset_delay;
	sim.reg_delay_ms = (guint)reg_delay;
	if (cp_hex_decode(k_hex ? k_hex : "000102030405060708090a0b0c0d0e0f", k, 16) != 16 ||
	    cp_hex_decode(opc_hex ? opc_hex : "0f0e0d0c0b0a09080706050403020100", opc, 16) != 16) {
		fprintf(stderr, "cp-qmi-sim: --k and --opc want 32 hex digits\n");
		return 2;
	}
	sim.usim = cp_sim_usim_new_card(card ? card : CP_SIM_CARD_DEFAULT,
				   iccid ? iccid : "8988211000000000017",
				   imsi ? imsi : "001010123456789", (guint)mnc_length, k, opc,
				   adm1 ? adm1 : "12345678", (guint)adm1_retries);
	if (!sim.usim) {
		g_autofree char *names = g_strjoinv(", ", (char **)cp_sim_usim_cards());

		fprintf(stderr, "cp-qmi-sim: cards: %s\n", names);
		return 2;
	}
	cp_sim_usim_set_le(sim.usim, le);
	sim.net = cp_sim_network_new(plmn ? plmn : "00101",
				     network_name ? network_name : "cellprov test network");
	if (subscribers) {
		sim.subscribers_mtime = file_mtime(subscribers);
		if (!cp_sim_network_load(sim.net, subscribers, &error)) {
			fprintf(stderr, "cp-qmi-sim: %s\n", error->message);
			return 2;
		}
		sim.subscribers_path = g_strdup(subscribers);
	}
	sim.clients = g_ptr_array_new_with_free_func(g_free);
	sim.conns = g_ptr_array_new();
	sim.delayed = g_ptr_array_new_with_free_func((GDestroyNotify)delayed_free);
	sim.profiles = g_ptr_array_new_with_free_func(profile_free);
	p = g_new0(Profile, 1);
	p->index = 1;
	p->name = g_strdup("default");
	p->apn = g_strdup(apn ? apn : "internet");
	p->pdp_type = 3;   /* IPv4v6 */
	g_ptr_array_add(sim.profiles, p);
	sim.next_cid = 1;
	sim.loop = g_main_loop_new(NULL, FALSE);

	if (sim.pty_path ? !open_pty(sim.pty_path, &error) : !open_proxy(&error)) {
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
	g_unix_signal_add(SIGTERM, quit_cb, NULL);
	g_unix_signal_add(SIGINT, quit_cb, NULL);
	/* readiness: the transport is up once this line is out */
	printf("ready %s\n", sim.pty_path ? sim.pty_path : sim.proxy_name);
	fflush(stdout);
	g_main_loop_run(sim.loop);
	dump();
	sysfs_down(sim.port_path);
	if (sim.port_path)
		unlink(sim.port_path);
	delayed_drop(NULL, FALSE);
	while (sim.conns->len) {
		Conn *c = g_ptr_array_index(sim.conns, 0);

		g_ptr_array_remove_index(sim.conns, 0);
		conn_free(c);
	}
	g_ptr_array_unref(sim.conns);
	g_ptr_array_unref(sim.clients);
	g_ptr_array_unref(sim.profiles);
	g_array_unref(sim.faults);
	g_clear_pointer(&sim.fail_apdu, g_array_unref);
	g_clear_pointer(&sim.fail_update, g_array_unref);
	g_main_loop_unref(sim.loop);
	if (sim.pty_slave >= 0)
		close(sim.pty_slave);
	if (sim.listen_fd >= 0)
		close(sim.listen_fd);
	g_free(sim.modem_imsi);
	g_free(sim.pty_path);
	g_free(sim.port_path);
	g_free(sim.reenumerate_path);
	g_free(sim.sysfs);
	g_free(sim.usb_port);
	g_ptr_array_unref(sim.delayed);
	g_free(sim.proxy_name);
	g_free(sim.dump_path);
	g_free(sim.subscribers_path);
	cp_sim_usim_free(sim.usim);
	cp_sim_network_free(sim.net);
	return 0;
}
