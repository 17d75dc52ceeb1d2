/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-mbim-sim: an MBIM modem with a programmable USIM and a network that
 * really authenticates, for tests and benchmarks. It serves a pty the way
 * a cdc_mbim function serves /dev/cdc-wdmN: real mbim-proxy opens it, and
 * real mbimcli and libmbim talk to it through the proxy.
 * The message layouts are in docs/mbim.md; the program is
 * described in docs/man/cp-mbim-sim.1.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <libmbim-glib.h>

#include "cp-sim-modem.h"

/* MBIM 1.0 section 9: message types */
#define MSG_OPEN 0x00000001
#define MSG_CLOSE 0x00000002
#define MSG_COMMAND 0x00000003
#define MSG_HOST_ERROR 0x00000004
#define MSG_COMMAND_DONE 0x80000003
#define MSG_INDICATE_STATUS 0x80000007

/* 9.1 header (12) + 9.2 fragment header (8) */
#define HDR_LEN 12
#define FRAG_LEN 20
/* 9.3.3 command: service (16), CID, type, buffer length */
#define CMD_INFO_OFFSET (FRAG_LEN + 16 + 4 + 4 + 4)

#define NW_ERROR_NONE 0

/* A provisioned context (MBIM 1.0 10.5.13): its id and access string,
 * and what the host sets with them. */
typedef struct {
	CpSimContext base;
	char *user;
	char *password;
	guint32 compression;
	guint32 auth;
} Context;

typedef struct {
	CpSimModem m;              /* the card, the network, the node, the faults */
	/* configuration */
	guint deny_cause;          /* 0: the network decides */
	gboolean no_device_reset;
	/* state */
	gboolean opened;           /* MBIM OPEN received, no CLOSE since */
	gboolean radio_on;
	gboolean rebooting;
	guint32 reg_state;         /* MbimRegisterState */
	guint32 nw_error;          /* MbimNwError of the last reject */
	gboolean pass_through;
	GByteArray *in;
	guint reset_timer;
	guint n_requests;
	guint n_apdus;
	guint n_resets;
} Sim;

static Sim sim;

static void
dump(void)
{
	cp_sim_modem_dump(&sim.m);
}

/* ---- the information buffer: fixed part, then the data it refers to ------- */

/*
 * MBIM 1.0 (chapter 10, data structures): variable-size fields are an
 * OL pair (offset, size) in the fixed part, offsets counted from the start of the buffer (or of the
 * structure, for ref-struct-array elements), data 4-byte aligned after
 * it. The MS UICC service writes its byte arrays as (size, offset).
 */
typedef struct {
	guint pos;
	GBytes *data;
	gboolean size_first;
} Ref;

typedef struct {
	GByteArray *fixed;
	GArray *refs;
} Info;

static void
ref_clear(gpointer p)
{
	g_bytes_unref(((Ref *)p)->data);
}

static Info *
info_new(void)
{
	Info *i = g_new0(Info, 1);

	i->fixed = g_byte_array_new();
	i->refs = g_array_new(FALSE, TRUE, sizeof(Ref));
	g_array_set_clear_func(i->refs, ref_clear);
	return i;
}

static void
put_u32(GByteArray *a, guint32 v)
{
	guint8 b[4] = { v, v >> 8, v >> 16, v >> 24 };

	g_byte_array_append(a, b, 4);
}

static void
set_u32(GByteArray *a, guint pos, guint32 v)
{
	a->data[pos] = (guint8)v;
	a->data[pos + 1] = (guint8)(v >> 8);
	a->data[pos + 2] = (guint8)(v >> 16);
	a->data[pos + 3] = (guint8)(v >> 24);
}

static void
info_u32(Info *i, guint32 v)
{
	put_u32(i->fixed, v);
}

static void
info_u64(Info *i, guint64 v)
{
	put_u32(i->fixed, (guint32)v);
	put_u32(i->fixed, (guint32)(v >> 32));
}

static void
info_raw(Info *i, const guint8 *d, gsize len)
{
	g_byte_array_append(i->fixed, d, (guint)len);
}

static void
info_ref(Info *i, GBytes *data, gboolean size_first)
{
	Ref r = { i->fixed->len, data, size_first };

	put_u32(i->fixed, 0);
	put_u32(i->fixed, 0);
	g_array_append_val(i->refs, r);
}

static void
info_bytes(Info *i, const guint8 *d, gsize len, gboolean size_first)
{
	info_ref(i, g_bytes_new(d, len), size_first);
}

/* MBIM strings are UTF-16LE, their size in bytes, no terminator. */
static void
info_string(Info *i, const char *s)
{
	g_autofree gunichar2 *u = g_utf8_to_utf16(s ? s : "", -1, NULL, NULL, NULL);
	GByteArray *b = g_byte_array_new();

	for (gsize k = 0; u && u[k]; k++) {
		guint8 le[2] = { (guint8)u[k], (guint8)(u[k] >> 8) };

		g_byte_array_append(b, le, 2);
	}
	info_ref(i, g_byte_array_free_to_bytes(b), FALSE);
}

static GByteArray *
info_finish(Info *i)
{
	static const guint8 pad[4];
	GByteArray *out = i->fixed;

	for (guint k = 0; k < i->refs->len; k++) {
		Ref *r = &g_array_index(i->refs, Ref, k);
		gsize len;
		const guint8 *d = g_bytes_get_data(r->data, &len);

		if (len == 0)
			continue;   /* offset 0, size 0: an empty field */
		set_u32(out, r->pos + (r->size_first ? 4 : 0), out->len);
		set_u32(out, r->pos + (r->size_first ? 0 : 4), (guint32)len);
		g_byte_array_append(out, d, (guint)len);
		if (len % 4)
			g_byte_array_append(out, pad, 4 - len % 4);
	}
	g_array_unref(i->refs);
	g_free(i);
	return out;
}

/* A ref-struct-array element: the structure's own buffer, by reference. */
static void
info_struct(Info *i, Info *element)
{
	GByteArray *b = info_finish(element);

	info_ref(i, g_byte_array_free_to_bytes(b), FALSE);
}

/* ---- reading a request's information buffer ---------------------------- */

typedef struct {
	const guint8 *d;
	guint32 len;
} Req;

static gboolean
req_u32(const Req *r, guint32 off, guint32 *v)
{
	if ((guint64)off + 4 > r->len)
		return FALSE;
	*v = (guint32)r->d[off] | (guint32)r->d[off + 1] << 8 |
	     (guint32)r->d[off + 2] << 16 | (guint32)r->d[off + 3] << 24;
	return TRUE;
}

/* An OL pair at off; the data must lie inside the buffer. */
static gboolean
req_ref(const Req *r, guint32 off, gboolean size_first, const guint8 **d, guint32 *len)
{
	guint32 a, b;

	if (!req_u32(r, off, &a) || !req_u32(r, off + 4, &b))
		return FALSE;
	if (size_first) {
		guint32 t = a;

		a = b;
		b = t;
	}
	if ((guint64)a + b > r->len)
		return FALSE;
	*d = r->d + a;
	*len = b;
	return TRUE;
}

static char *
req_string(const Req *r, guint32 off)
{
	const guint8 *d;
	guint32 len;
	g_autofree gunichar2 *u = NULL;

	if (!req_ref(r, off, FALSE, &d, &len) || len % 2)
		return NULL;
	u = g_new0(gunichar2, len / 2 + 1);
	for (guint32 k = 0; k < len / 2; k++)
		u[k] = (gunichar2)(d[2 * k] | d[2 * k + 1] << 8);
	return g_utf16_to_utf8(u, len / 2, NULL, NULL, NULL);
}

/* ---- the wire ------------------------------------------------------------ */

static void
send_raw(const guint8 *d, gsize len)
{
	cp_sim_modem_port_write(&sim.m, d, len);
}

static void
send_message(MbimMessage *m)
{
	guint32 len;
	const guint8 *raw = mbim_message_get_raw(m, &len, NULL);

	if (raw)
		send_raw(raw, len);
}

/* 9.4.3 MBIM_COMMAND_DONE and 9.4.5 MBIM_INDICATE_STATUS_MSG, one fragment. */
static void
send_command_done(guint32 type, guint32 tid, MbimService service, guint32 cid,
		  gboolean done, guint32 status, GByteArray *buf)
{
	g_autoptr(GByteArray) m = g_byte_array_new();
	guint len = buf ? buf->len : 0;

	put_u32(m, type);
	put_u32(m, 0);            /* length, set below */
	put_u32(m, tid);
	put_u32(m, 1);            /* total fragments */
	put_u32(m, 0);            /* this fragment */
	g_byte_array_append(m, (const guint8 *)mbim_uuid_from_service(service), 16);
	put_u32(m, cid);
	if (done)
		put_u32(m, status);
	put_u32(m, len);
	if (len)
		g_byte_array_append(m, buf->data, len);
	set_u32(m, 4, m->len);
	send_raw(m->data, m->len);
}

static void
indicate(MbimService service, guint32 cid, GByteArray *buf)
{
	if (!sim.opened)
		return;
	send_command_done(MSG_INDICATE_STATUS, 0, service, cid, FALSE, 0, buf);
}

/* ---- the modem's state and what it indicates --------------------------- */

static GByteArray *
register_state_info(void)
{
	Info *i = info_new();
	gboolean reg = sim.reg_state == MBIM_REGISTER_STATE_HOME;

	info_u32(i, sim.nw_error);
	info_u32(i, sim.reg_state);
	info_u32(i, MBIM_REGISTER_MODE_AUTOMATIC);
	info_u32(i, sim.radio_on ? MBIM_DATA_CLASS_LTE : 0);
	info_u32(i, MBIM_CELLULAR_CLASS_GSM);
	info_string(i, reg ? cp_sim_network_get_plmn(sim.m.net) : "");
	info_string(i, reg ? cp_sim_network_get_name(sim.m.net) : "");
	info_string(i, "");
	info_u32(i, reg ? MBIM_REGISTRATION_FLAG_PACKET_SERVICE_AUTOMATIC_ATTACH : 0);
	return info_finish(i);
}

static GByteArray *
packet_service_info(void)
{
	Info *i = info_new();
	gboolean reg = sim.reg_state == MBIM_REGISTER_STATE_HOME;

	info_u32(i, NW_ERROR_NONE);
	info_u32(i, reg ? MBIM_PACKET_SERVICE_STATE_ATTACHED : MBIM_PACKET_SERVICE_STATE_DETACHED);
	info_u32(i, reg ? MBIM_DATA_CLASS_LTE : 0);
	info_u64(i, reg ? 50000000 : 0);
	info_u64(i, reg ? 150000000 : 0);
	return info_finish(i);
}

static void
set_reg_state(guint32 state, guint32 nw_error)
{
	g_autoptr(GByteArray) b = NULL;
	gboolean was_reg = sim.reg_state == MBIM_REGISTER_STATE_HOME;

	if (sim.reg_state == state && sim.nw_error == nw_error)
		return;
	sim.reg_state = state;
	sim.nw_error = nw_error;
	g_message("registration: %s%s%s", mbim_register_state_get_string(state),
		  nw_error ? ", cause " : "", nw_error ? mbim_nw_error_get_string(nw_error) : "");
	/* the state first: a test reads it as soon as it has the indication */
	dump();
	b = register_state_info();
	indicate(MBIM_SERVICE_BASIC_CONNECT, MBIM_CID_BASIC_CONNECT_REGISTER_STATE, b);
	if (was_reg != (state == MBIM_REGISTER_STATE_HOME)) {
		g_autoptr(GByteArray) p = packet_service_info();

		indicate(MBIM_SERVICE_BASIC_CONNECT, MBIM_CID_BASIC_CONNECT_PACKET_SERVICE, p);
	}
}

/* TS 24.008 10.5.3.6 / 24.301 9.9.3.9 causes, as MbimNwError carries them. */
static guint32
attach_cause(CpSimAttach a)
{
	switch (a) {
	case CP_SIM_ATTACH_UNKNOWN_SUBSCRIBER:
		return MBIM_NW_ERROR_IMSI_UNKNOWN_IN_HLR;
	case CP_SIM_ATTACH_AUTH_REJECT:
	case CP_SIM_ATTACH_NO_IMSI:
		return MBIM_NW_ERROR_ILLEGAL_MS;
	case CP_SIM_ATTACH_REGISTERED:
		break;
	}
	return NW_ERROR_NONE;
}

static void
attach_cb(void)
{
	CpSimAttach a;

	if (!sim.radio_on)
		return;
	if (sim.deny_cause) {
		/* the network rejects before it authenticates */
		g_message("fault: registration denied, cause %u", sim.deny_cause);
		set_reg_state(MBIM_REGISTER_STATE_DENIED, sim.deny_cause);
		return;
	}
	a = cp_sim_modem_attach(&sim.m);
	if (a == CP_SIM_ATTACH_REGISTERED)
		set_reg_state(MBIM_REGISTER_STATE_HOME, NW_ERROR_NONE);
	else
		set_reg_state(MBIM_REGISTER_STATE_DENIED, attach_cause(a));
}

/* The modem (re)starts its use of the card: it reads the IMSI once and
 * keeps it until its next start, as real modems do. */
static GByteArray *subscriber_ready_info(void);

static void
card_start(void)
{
	g_autoptr(GByteArray) b = NULL;

	cp_sim_modem_card_start(&sim.m);
	b = subscriber_ready_info();
	indicate(MBIM_SERVICE_BASIC_CONNECT, MBIM_CID_BASIC_CONNECT_SUBSCRIBER_READY_STATUS, b);
}

static void
radio_on(void)
{
	sim.radio_on = TRUE;
	set_reg_state(MBIM_REGISTER_STATE_SEARCHING, NW_ERROR_NONE);
	cp_sim_modem_attach_later(&sim.m);
}

static void
radio_off(void)
{
	sim.radio_on = FALSE;
	cp_sim_modem_attach_cancel(&sim.m);
	set_reg_state(MBIM_REGISTER_STATE_DEREGISTERED, NW_ERROR_NONE);
}

static GByteArray *
radio_state_info(void)
{
	Info *i = info_new();

	info_u32(i, MBIM_RADIO_SWITCH_STATE_ON);   /* no hardware switch */
	info_u32(i, sim.radio_on ? MBIM_RADIO_SWITCH_STATE_ON : MBIM_RADIO_SWITCH_STATE_OFF);
	return info_finish(i);
}

/* ---- basic connect (MBIM 1.0 section 10.5) -------------------------------- */

static Context *
context_find(guint32 id)
{
	return (Context *)cp_sim_modem_context_find(&sim.m, id);
}

static void
context_clear(CpSimContext *c)
{
	g_free(((Context *)c)->user);
	g_free(((Context *)c)->password);
}

static GByteArray *
contexts_info(void)
{
	Info *i = info_new();

	info_u32(i, sim.m.contexts->len);
	for (guint k = 0; k < sim.m.contexts->len; k++) {
		Context *c = g_ptr_array_index(sim.m.contexts, k);
		Info *e = info_new();

		info_u32(e, c->base.id);
		info_raw(e, (const guint8 *)mbim_uuid_from_context_type(MBIM_CONTEXT_TYPE_INTERNET), 16);
		info_string(e, c->base.apn);
		info_string(e, c->user);
		info_string(e, c->password);
		info_u32(e, c->compression);
		info_u32(e, c->auth);
		info_struct(i, e);
	}
	return info_finish(i);
}

static GByteArray *
device_services_info(void)
{
	static const guint32 bc[] = {
		MBIM_CID_BASIC_CONNECT_DEVICE_CAPS,
		MBIM_CID_BASIC_CONNECT_SUBSCRIBER_READY_STATUS,
		MBIM_CID_BASIC_CONNECT_RADIO_STATE,
		MBIM_CID_BASIC_CONNECT_PIN,
		MBIM_CID_BASIC_CONNECT_REGISTER_STATE,
		MBIM_CID_BASIC_CONNECT_PACKET_SERVICE,
		MBIM_CID_BASIC_CONNECT_PROVISIONED_CONTEXTS,
		MBIM_CID_BASIC_CONNECT_DEVICE_SERVICES,
		MBIM_CID_BASIC_CONNECT_DEVICE_SERVICE_SUBSCRIBE_LIST,
	};
	static const guint32 uicc[] = {
		MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_ATR,
		MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_OPEN_CHANNEL,
		MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_CLOSE_CHANNEL,
		MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_APDU,
		MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_RESET,
		MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_APPLICATION_LIST,
	};
	static const guint32 bcx[] = {
		MBIM_CID_MS_BASIC_CONNECT_EXTENSIONS_DEVICE_RESET,
	};
	struct {
		MbimService service;
		const guint32 *cids;
		guint n;
	} list[] = {
		{ MBIM_SERVICE_BASIC_CONNECT, bc, G_N_ELEMENTS(bc) },
		{ MBIM_SERVICE_MS_UICC_LOW_LEVEL_ACCESS, uicc, G_N_ELEMENTS(uicc) },
		{ MBIM_SERVICE_MS_BASIC_CONNECT_EXTENSIONS, bcx, G_N_ELEMENTS(bcx) },
	};
	guint n = sim.no_device_reset ? 2 : 3;
	Info *i = info_new();

	info_u32(i, n);
	info_u32(i, 0);     /* MaxDssSessions */
	for (guint k = 0; k < n; k++) {
		Info *e = info_new();

		info_raw(e, (const guint8 *)mbim_uuid_from_service(list[k].service), 16);
		info_u32(e, 0);   /* DssPayload */
		info_u32(e, 0);   /* MaxDssInstances */
		info_u32(e, list[k].n);
		for (guint c = 0; c < list[k].n; c++)
			info_u32(e, list[k].cids[c]);
		info_struct(i, e);
	}
	return info_finish(i);
}

static GByteArray *
subscriber_ready_info(void)
{
	Info *i = info_new();

	info_u32(i, sim.m.modem_imsi ? MBIM_SUBSCRIBER_READY_STATE_INITIALIZED : MBIM_SUBSCRIBER_READY_STATE_BAD_SIM);
	info_string(i, sim.m.modem_imsi ? sim.m.modem_imsi : "");
	info_string(i, cp_sim_usim_get_iccid(sim.m.usim));
	info_u32(i, 0);     /* ReadyInfo */
	info_u32(i, 0);     /* no telephone numbers */
	return info_finish(i);
}

static guint32
handle_basic_connect(guint32 cid, guint32 type, const Req *r, GByteArray **out)
{
	gboolean set = type == MBIM_MESSAGE_COMMAND_TYPE_SET;
	guint32 v;

	switch (cid) {
	case MBIM_CID_BASIC_CONNECT_DEVICE_CAPS: {
		Info *i;

		if (set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		i = info_new();
		info_u32(i, MBIM_DEVICE_TYPE_EMBEDDED);
		info_u32(i, MBIM_CELLULAR_CLASS_GSM);
		info_u32(i, MBIM_VOICE_CLASS_NO_VOICE);
		info_u32(i, MBIM_SIM_CLASS_REMOVABLE);
		info_u32(i, MBIM_DATA_CLASS_LTE);
		info_u32(i, 0);
		info_u32(i, MBIM_CTRL_CAPS_REG_MANUAL);
		info_u32(i, 1);
		info_string(i, "");
		info_string(i, "490154203237518");
		info_string(i, "cp-mbim-sim " "1.0");
		info_string(i, "cellprov MBIM simulator");
		*out = info_finish(i);
		return MBIM_STATUS_ERROR_NONE;
	}
	case MBIM_CID_BASIC_CONNECT_SUBSCRIBER_READY_STATUS:
		if (set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		*out = subscriber_ready_info();
		return MBIM_STATUS_ERROR_NONE;
	case MBIM_CID_BASIC_CONNECT_RADIO_STATE:
		if (set) {
			if (!req_u32(r, 0, &v) || v > MBIM_RADIO_SWITCH_STATE_ON)
				return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
			if (v == MBIM_RADIO_SWITCH_STATE_OFF && sim.radio_on) {
				radio_off();
			} else if (v == MBIM_RADIO_SWITCH_STATE_ON && !sim.radio_on) {
				/* leaving radio off re-initialises the card session */
				card_start();
				radio_on();
			}
			g_autoptr(GByteArray) b = radio_state_info();
			indicate(MBIM_SERVICE_BASIC_CONNECT, MBIM_CID_BASIC_CONNECT_RADIO_STATE, b);
		}
		*out = radio_state_info();
		return MBIM_STATUS_ERROR_NONE;
	case MBIM_CID_BASIC_CONNECT_PIN: {
		Info *i;

		/* 10.5.7: the card has no PIN enabled; what ModemManager asks
		 * before it calls the modem unlocked */
		if (set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		if (!sim.m.modem_imsi)
			return MBIM_STATUS_ERROR_SIM_NOT_INSERTED;
		i = info_new();
		info_u32(i, MBIM_PIN_TYPE_UNKNOWN);
		info_u32(i, MBIM_PIN_STATE_UNLOCKED);
		info_u32(i, 0xFFFFFFFF);   /* RemainingAttempts: not applicable */
		*out = info_finish(i);
		return MBIM_STATUS_ERROR_NONE;
	}
	case MBIM_CID_BASIC_CONNECT_REGISTER_STATE:
		if (set) {
			/* automatic registration only: what the modem already does */
			if (!req_u32(r, 8, &v) || v > MBIM_REGISTER_ACTION_MANUAL)
				return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
			if (v != MBIM_REGISTER_ACTION_AUTOMATIC)
				return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		}
		*out = register_state_info();
		return MBIM_STATUS_ERROR_NONE;
	case MBIM_CID_BASIC_CONNECT_PACKET_SERVICE:
		if (set && (!req_u32(r, 0, &v) || v > MBIM_PACKET_SERVICE_ACTION_DETACH))
			return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
		if (!sim.radio_on)
			return MBIM_STATUS_ERROR_RADIO_POWER_OFF;
		*out = packet_service_info();
		return MBIM_STATUS_ERROR_NONE;
	case MBIM_CID_BASIC_CONNECT_PROVISIONED_CONTEXTS:
		if (set) {
			g_autofree char *apn = req_string(r, 20);
			g_autofree char *user = req_string(r, 28);
			g_autofree char *password = req_string(r, 36);
			guint32 compression, auth;
			Context *c;

			if (!req_u32(r, 0, &v) || !apn || !user || !password ||
			    !req_u32(r, 44, &compression) || !req_u32(r, 48, &auth) ||
			    r->len < 20 || memcmp(r->d + 4, mbim_uuid_from_context_type(MBIM_CONTEXT_TYPE_INTERNET), 16) != 0)
				return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
			if (strlen(apn) > 100)   /* 10.5.13: AccessString up to 100 characters */
				return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
			if (!(c = context_find(v))) {
				if (sim.m.contexts->len >= 8)
					return MBIM_STATUS_ERROR_MAX_ACTIVATED_CONTEXTS;
				c = (Context *)cp_sim_modem_context_add(&sim.m, sizeof(Context), v, NULL);
			}
			g_free(c->base.apn);
			g_free(c->user);
			g_free(c->password);
			c->base.apn = g_steal_pointer(&apn);
			c->user = g_steal_pointer(&user);
			c->password = g_steal_pointer(&password);
			c->compression = compression;
			c->auth = auth;
			g_message("context %u: APN '%s'", c->base.id, c->base.apn);
		}
		*out = contexts_info();
		return MBIM_STATUS_ERROR_NONE;
	case MBIM_CID_BASIC_CONNECT_DEVICE_SERVICES:
		if (set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		*out = device_services_info();
		return MBIM_STATUS_ERROR_NONE;
	case MBIM_CID_BASIC_CONNECT_DEVICE_SERVICE_SUBSCRIBE_LIST:
		if (!set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		/* The function indicates every state change; mbim-proxy
		 * forwards each to the clients that asked for it. The
		 * answer echoes the list (MBIM 1.0, CID 19). */
		*out = g_byte_array_new();
		g_byte_array_append(*out, r->d, r->len);
		return MBIM_STATUS_ERROR_NONE;
	}
	return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
}

/* ---- MS UICC low level access ---------------------------------------------- */

static guint32
handle_uicc(guint32 cid, guint32 type, const Req *r, GByteArray **out)
{
	gboolean set = type == MBIM_MESSAGE_COMMAND_TYPE_SET;
	const guint8 *d;
	guint32 len, v, ch;
	Info *i;

	switch (cid) {
	case MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_APPLICATION_LIST: {
		/* EF.DIR's applications as the modem read them: per record
		 * (61 L 4F n AID 50 m label) its type, AID and label, no PIN
		 * references (MS UICC low-level access, libmbim's
		 * MbimUiccApplication) */
		static const guint16 mf[] = { 0x3F00 };
		g_autoptr(GByteArray) rec = g_byte_array_new();
		guint n = 0;

		if (set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		i = info_new();
		info_u32(i, 1);          /* version */
		info_u32(i, 0);          /* count, below */
		info_u32(i, 0);          /* the active one: the USIM, first */
		info_u32(i, 0);          /* the list's size, below */
		for (guint k = 1; cp_sim_usim_read_record(sim.m.usim, mf, 1, 0x2F00, k, 0, rec) == 0x9000; k++) {
			const guint8 *e = rec->data;
			gsize l = rec->len;

			if (l >= 11 && e[0] == 0x61 && e[2] == 0x4F && e[3] >= 7 && e[3] <= 16 &&
			    4u + e[3] <= l && e[9] == 0x10 && (e[10] == 0x02 || e[10] == 0x04)) {
				Info *app = info_new();
				gsize at = 4u + e[3];
				gsize name = at + 2 <= l && e[at] == 0x50 && at + 2 + e[at + 1] <= l ? e[at + 1] : 0;

				info_u32(app, e[10] == 0x02 ? MBIM_UICC_APPLICATION_TYPE_USIM :
							      MBIM_UICC_APPLICATION_TYPE_ISIM);
				info_bytes(app, e + 4, e[3], FALSE);
				info_bytes(app, e + at + 2, name, FALSE);
				info_u32(app, 0);
				info_bytes(app, NULL, 0, FALSE);
				info_struct(i, app);
				n++;
			}
			g_byte_array_set_size(rec, 0);
		}
		*out = info_finish(i);
		set_u32(*out, 4, n);
		set_u32(*out, 12, (*out)->len - 16);
		return MBIM_STATUS_ERROR_NONE;
	}
	case MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_ATR: {
		/* the card's own ATR (its profile's) */
		guint8 atr[33];
		gsize n = cp_sim_usim_get_atr(sim.m.usim, atr);

		if (set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		i = info_new();
		info_bytes(i, atr, n, TRUE);
		*out = info_finish(i);
		return MBIM_STATUS_ERROR_NONE;
	}
	case MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_OPEN_CHANNEL: {
		guint16 sw = 0;

		if (!set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		if (!req_ref(r, 0, TRUE, &d, &len) || len == 0 || len > 16 || !req_u32(r, 8, &v))
			return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
		ch = cp_sim_usim_open_channel(sim.m.usim, d, len, &sw);
		g_message("open channel: %u (SW %04X)", ch, sw);
		i = info_new();
		info_u32(i, sw);
		info_u32(i, ch);
		info_bytes(i, NULL, 0, TRUE);
		*out = info_finish(i);
		return MBIM_STATUS_ERROR_NONE;
	}
	case MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_CLOSE_CHANNEL:
		if (!set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		if (!req_u32(r, 0, &ch) || !req_u32(r, 4, &v))
			return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
		i = info_new();
		info_u32(i, ch > 0 && ch < 4 && cp_sim_usim_close_channel(sim.m.usim, ch) ? 0x9000 : 0x6881);
		*out = info_finish(i);
		return MBIM_STATUS_ERROR_NONE;
	case MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_APDU: {
		g_autoptr(GByteArray) resp = g_byte_array_new();
		g_autofree guint8 *apdu = NULL;
		guint16 sw;

		if (!set)
			return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
		if (!req_u32(r, 0, &ch) || !req_ref(r, 12, TRUE, &d, &len) || len < 4 || len > 261 || ch > 3)
			return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
		/* The function puts the channel into the CLA byte itself. */
		apdu = g_memdup2(d, len);
		apdu[0] = (guint8)((apdu[0] & ~0x03) | ch);
		sim.n_apdus++;
		cp_sim_usim_apdu(sim.m.usim, ch, apdu, len, resp);
		sw = (guint16)(resp->data[resp->len - 2] << 8 | resp->data[resp->len - 1]);
		i = info_new();
		info_u32(i, sw);
		info_bytes(i, resp->data, resp->len - 2, TRUE);
		*out = info_finish(i);
		return MBIM_STATUS_ERROR_NONE;
	}
	case MBIM_CID_MS_UICC_LOW_LEVEL_ACCESS_RESET:
		if (set) {
			if (!req_u32(r, 0, &v) || v > MBIM_UICC_PASS_THROUGH_ACTION_ENABLE)
				return MBIM_STATUS_ERROR_INVALID_PARAMETERS;
			sim.pass_through = v == MBIM_UICC_PASS_THROUGH_ACTION_ENABLE;
			g_message("UICC reset, pass-through %s", sim.pass_through ? "on" : "off");
			/* a card power cycle: the modem reads the card again */
			card_start();
			if (sim.radio_on)
				radio_on();
		}
		i = info_new();
		info_u32(i, sim.pass_through ? MBIM_UICC_PASS_THROUGH_STATUS_ENABLED :
				MBIM_UICC_PASS_THROUGH_STATUS_DISABLED);
		*out = info_finish(i);
		return MBIM_STATUS_ERROR_NONE;
	}
	return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
}

/* ---- the device: its node, a reset, vanishing -------------------------- */

/* The function drops off the bus: its node goes, every open file of it
 * hangs up. */
static void
close_pty(void)
{
	cp_sim_modem_port_close(&sim.m);
	g_byte_array_set_size(sim.in, 0);
	sim.opened = FALSE;
}

static gboolean
reboot_done_cb(gpointer data)
{
	sim.reset_timer = 0;
	sim.rebooting = FALSE;
	if (!cp_sim_modem_port_return(&sim.m, cp_sim_modem_reset_path(&sim.m)))
		return G_SOURCE_REMOVE;
	card_start();
	radio_on();
	dump();
	return G_SOURCE_REMOVE;
}

/* MS basic connect extensions DEVICE_RESET: the answer goes out, then the
 * module reboots and comes back on the bus after reset_delay. */
static gboolean
reboot_cb(gpointer data)
{
	g_message("device reset: off the bus for %u ms", sim.m.reset_delay_ms);
	close_pty();
	radio_off();
	sim.reset_timer = g_timeout_add(sim.m.reset_delay_ms, reboot_done_cb, NULL);
	dump();
	return G_SOURCE_REMOVE;
}

static guint32
handle_bcx(guint32 cid, guint32 type, const Req *r, GByteArray **out)
{
	if (cid != MBIM_CID_MS_BASIC_CONNECT_EXTENSIONS_DEVICE_RESET || sim.no_device_reset)
		return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
	if (type != MBIM_MESSAGE_COMMAND_TYPE_SET)
		return MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
	sim.n_resets++;
	sim.rebooting = TRUE;
	g_timeout_add(20, reboot_cb, NULL);
	return MBIM_STATUS_ERROR_NONE;
}

/* ---- dispatch -------------------------------------------------------------- */

static void
handle_command(MbimMessage *m)
{
	g_autoptr(GByteArray) out = NULL;
	MbimService service = mbim_message_command_get_service(m);
	guint32 cid = mbim_message_command_get_cid(m);
	guint32 type = mbim_message_command_get_command_type(m);
	guint32 tid = mbim_message_get_transaction_id(m);
	guint32 status;
	Req r;
	CpSimFault *f;

	r.d = mbim_message_command_get_raw_information_buffer(m, &r.len);
	sim.n_requests++;
	f = cp_sim_modem_fault(&sim.m, service, cid, NULL);
	if (f) {
		g_autofree char *what = g_strdup_printf("%s %u", mbim_service_get_string(service), cid);

		switch (f->kind) {
		case CP_SIM_FAULT_VANISH:
			cp_sim_modem_vanish(&sim.m, what);
		case CP_SIM_FAULT_NO_RESPONSE:
			g_message("fault: no answer to %s", what);
			return;
		case CP_SIM_FAULT_FAIL:
		case CP_SIM_FAULT_GARBAGE:
			g_message("fault: failure for %s", what);
			send_command_done(MSG_COMMAND_DONE, tid, service, cid, TRUE, MBIM_STATUS_ERROR_FAILURE, NULL);
			return;
		}
	}
	switch (service) {
	case MBIM_SERVICE_BASIC_CONNECT:
		status = handle_basic_connect(cid, type, &r, &out);
		break;
	case MBIM_SERVICE_MS_UICC_LOW_LEVEL_ACCESS:
		status = handle_uicc(cid, type, &r, &out);
		break;
	case MBIM_SERVICE_MS_BASIC_CONNECT_EXTENSIONS:
		status = handle_bcx(cid, type, &r, &out);
		break;
	default:
		status = MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT;
	}
	/* the state first: a test reads it as soon as it has the answer */
	dump();
	send_command_done(MSG_COMMAND_DONE, tid, service, cid, TRUE, status,
			  status == MBIM_STATUS_ERROR_NONE ? out : NULL);
}

static void
handle_message(MbimMessage *m)
{
	g_autoptr(MbimMessage) resp = NULL;
	guint32 tid = mbim_message_get_transaction_id(m);

	switch ((guint32)mbim_message_get_message_type(m)) {
	case MSG_OPEN:
		/* 9.3.1: a second OPEN re-initialises the function */
		sim.opened = TRUE;
		resp = mbim_message_open_done_new(tid, MBIM_STATUS_ERROR_NONE);
		break;
	case MSG_CLOSE:
		sim.opened = FALSE;
		resp = mbim_message_close_done_new(tid, MBIM_STATUS_ERROR_NONE);
		break;
	case MSG_COMMAND:
		if (!sim.opened) {
			resp = mbim_message_error_new(tid, MBIM_PROTOCOL_ERROR_NOT_OPENED);
			break;
		}
		handle_command(m);
		return;
	case MSG_HOST_ERROR:
		g_message("host error %u", (guint)mbim_message_error_get_error_status_code(m));
		return;
	default:
		resp = mbim_message_error_new(tid, MBIM_PROTOCOL_ERROR_UNKNOWN);
	}
	send_message(resp);
}

/* What the host wrote to the node: whole messages are handled. */
static void
input(const guint8 *d, gsize n)
{
	g_byte_array_append(sim.in, d, (guint)n);
	while (cp_sim_modem_port_fd(&sim.m) >= 0 && sim.in->len >= HDR_LEN) {
		guint32 len = (guint32)sim.in->data[4] | (guint32)sim.in->data[5] << 8 |
			      (guint32)sim.in->data[6] << 16 | (guint32)sim.in->data[7] << 24;
		g_autoptr(MbimMessage) m = NULL;

		if (len < HDR_LEN || len > 4096) {
			g_warning("dropping unparsable input (length %u)", len);
			g_byte_array_set_size(sim.in, 0);
			break;
		}
		if (sim.in->len < len)
			break;
		m = mbim_message_new(sim.in->data, len);
		g_byte_array_remove_range(sim.in, 0, len);
		if (mbim_message_get_message_type(m) == MSG_COMMAND &&
		    (len < CMD_INFO_OFFSET || !mbim_message_validate(m, NULL))) {
			g_warning("dropping a malformed command");
			continue;
		}
		handle_message(m);
	}
}

/* ---- state dump and command line ----------------------------------------- */

static void
dump_keys(GString *s)
{
	g_string_append_printf(s, "radio=%s\n", sim.radio_on ? "on" : "off");
	g_string_append_printf(s, "registration=%s\n", mbim_register_state_get_string(sim.reg_state));
	g_string_append_printf(s, "nw-error=%u\n", sim.nw_error);
	g_string_append_printf(s, "contexts=%u\n", sim.m.contexts->len);
	g_string_append_printf(s, "node=%s\n", sim.m.port_path ? sim.m.port_path : "");
	g_string_append_printf(s, "enumerations=%u\n", sim.m.n_enumerations);
	g_string_append_printf(s, "mbim-requests=%u\n", sim.n_requests);
	g_string_append_printf(s, "apdus=%u\n", sim.n_apdus);
	g_string_append_printf(s, "resets=%u\n", sim.n_resets);
}

/* --fail, --no-response, --vanish: SERVICE:CID[:N] */
static gboolean
fault_key(char **key, CpSimFault *f)
{
	static const struct {
		const char *name;
		MbimService service;
	} names[] = {
		{ "basic-connect", MBIM_SERVICE_BASIC_CONNECT },
		{ "ms-uicc-low-level-access", MBIM_SERVICE_MS_UICC_LOW_LEVEL_ACCESS },
		{ "ms-basic-connect-extensions", MBIM_SERVICE_MS_BASIC_CONNECT_EXTENSIONS },
	};
	guint64 cid;

	f->service = MBIM_SERVICE_INVALID;
	for (guint k = 0; k < G_N_ELEMENTS(names); k++)
		if (g_ascii_strcasecmp(key[0], names[k].name) == 0)
			f->service = names[k].service;
	if (f->service == MBIM_SERVICE_INVALID || !g_ascii_string_to_unsigned(key[1], 10, 1, 1000, &cid, NULL))
		return FALSE;
	f->message = (guint)cid;
	return TRUE;
}

static const CpSimFrontEnd front_end = {
	.name = "cp-mbim-sim",
	.summary = "- MBIM modem simulator with a USIM and a network",
	.flags = CP_SIM_MODEM_NETWORK_NAME | CP_SIM_MODEM_REENUMERATE,
	.faults = {
		.fail_option = "fail",
		.fail_answer = "status FAILURE",
		.what = "SERVICE:CID",
		.arg = "SVC:CID[:N]",
		.usage = "SERVICE:CID[:N], e.g. ms-uicc-low-level-access:4:3 "
			 "(services: basic-connect, ms-uicc-low-level-access, ms-basic-connect-extensions)",
		.n_key = 2,
		.parse_key = fault_key,
	},
	.input = input,
	.attach = attach_cb,
	.dump = dump_keys,
	.context_clear = context_clear,
};

int
main(int argc, char **argv)
{
	int deny = 0;
	gboolean radio_off_at_start = FALSE;
	Context *c;
	GOptionEntry entries[] = {
		{ "radio-off", 0, 0, G_OPTION_ARG_NONE, &radio_off_at_start, "Start with the radio off (no registration)", NULL },
		{ "no-device-reset", 0, 0, G_OPTION_ARG_NONE, &sim.no_device_reset, "Offer no MS device reset (as older modules)", NULL },
		{ "deny", 0, 0, G_OPTION_ARG_INT, &deny, "The network denies every attach with this cause (MbimNwError)", "CAUSE" },
		G_OPTION_ENTRY_NULL,
	};

	if (!cp_sim_modem_parse(&sim.m, &front_end, entries, &argc, &argv))
		return 2;
	if (deny < 0 || deny > 255) {
		fprintf(stderr, "cp-mbim-sim: --deny 1-255\n");
		return 2;
	}
	sim.deny_cause = (guint)deny;
	if (!cp_sim_modem_setup(&sim.m, NULL, CP_SIM_LE_LENIENT))
		return 2;
	c = (Context *)cp_sim_modem_context_add(&sim.m, sizeof(Context), 1, sim.m.apn);
	c->user = g_strdup("");
	c->password = g_strdup("");
	sim.in = g_byte_array_new();

	if (!cp_sim_modem_port_start(&sim.m))
		return 1;
	card_start();
	sim.reg_state = MBIM_REGISTER_STATE_DEREGISTERED;
	if (!radio_off_at_start)
		radio_on();
	dump();
	/* readiness: the node is there once the line is out */
	cp_sim_modem_run(&sim.m, sim.m.pty_path);
	close_pty();
	if (sim.reset_timer)
		g_source_remove(sim.reset_timer);
	g_byte_array_unref(sim.in);
	cp_sim_modem_clear(&sim.m);
	return 0;
}
