/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An MBIM modem on libmbim, through mbim-proxy. See cp-mbim.h.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include <libmbim-glib.h>

#include "cp-mbim.h"

#define DEFAULT_TIMEOUT 10
/* The group our logical channels belong to (MS UICC low-level access):
 * closing the group would close only ours. */
#define CHANNEL_GROUP 1
/* P2 of the SELECT the modem sends to open a channel: return the FCP
 * template (ETSI TS 102 221 11.1.1.2). */
#define SELECT_P2_FCP 0x04

struct _CpMbim {
	GObject parent;
	MbimDevice *device;
	char *path;
	guint timeout;            /* seconds per request */
	gboolean present;
	gboolean has_uicc;
	gboolean has_device_reset;
	gulong removed_id;
};

enum {
	SIGNAL_REMOVED,
	N_SIGNALS,
};
static guint signals[N_SIGNALS];

G_DEFINE_TYPE(CpMbim, cp_mbim, G_TYPE_OBJECT)

static void
cp_mbim_dispose(GObject *object)
{
	CpMbim *self = CP_MBIM(object);

	if (self->device) {
		if (self->removed_id)
			g_signal_handler_disconnect(self->device, self->removed_id);
		self->removed_id = 0;
		/* a client that goes without closing: the proxy drops it */
		g_clear_object(&self->device);
	}
	G_OBJECT_CLASS(cp_mbim_parent_class)->dispose(object);
}

static void
cp_mbim_finalize(GObject *object)
{
	CpMbim *self = CP_MBIM(object);

	g_free(self->path);
	G_OBJECT_CLASS(cp_mbim_parent_class)->finalize(object);
}

static void
cp_mbim_class_init(CpMbimClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);

	oc->dispose = cp_mbim_dispose;
	oc->finalize = cp_mbim_finalize;
	/* The device went away: unplugged, rebooting, or the proxy lost it. */
	signals[SIGNAL_REMOVED] = g_signal_new("removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
					       0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
cp_mbim_init(CpMbim *self)
{
}

void
cp_mbim_registration_free(CpMbimRegistration *r)
{
	if (!r)
		return;
	g_free(r->plmn);
	g_free(r);
}

const char *
cp_mbim_get_path(CpMbim *self)
{
	return self->path;
}

gboolean
cp_mbim_is_present(CpMbim *self)
{
	return self->present;
}

gboolean
cp_mbim_has_device_reset(CpMbim *self)
{
	return self->has_device_reset;
}

/* ---- errors -------------------------------------------------------------- */

/*
 * One libmbim failure as a CP_ERROR: what was asked, and how it failed.
 * Status errors are the modem's own answer (the Status of MBIM 1.0 9.4.3
 * MBIM_COMMAND_DONE); core errors
 * are libmbim's (no answer, device closed); a device that went away makes
 * everything CP_ERR_MODEM_GONE.
 */
static GError *
map_error(CpMbim *self, const GError *e, const char *what)
{
	if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return g_error_copy(e);
	if (!self->present)
		return g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "%s: the modem went away", what);
	if (e->domain == MBIM_STATUS_ERROR) {
		switch (e->code) {
		case MBIM_STATUS_ERROR_SIM_NOT_INSERTED:
			return g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "%s: no card in the modem", what);
		case MBIM_STATUS_ERROR_BAD_SIM:
			return g_error_new(CP_ERROR, CP_ERR_CARD_ABSENT, "%s: the modem finds the card unusable", what);
		case MBIM_STATUS_ERROR_NO_DEVICE_SUPPORT:
			return g_error_new(CP_ERROR, CP_ERR_MODEM, "%s: not supported by the modem", what);
		case MBIM_STATUS_ERROR_BUSY:
			return g_error_new(CP_ERROR, CP_ERR_MODEM, "%s: the modem is busy", what);
		case MBIM_STATUS_ERROR_RADIO_POWER_OFF:
			return g_error_new(CP_ERROR, CP_ERR_MODEM, "%s: the radio is off", what);
		default:
			return g_error_new(CP_ERROR, CP_ERR_MODEM, "%s: the modem answered status %s (%d)",
					   what, mbim_status_error_get_string(e->code) ?
					   mbim_status_error_get_string(e->code) : "unknown", e->code);
		}
	}
	if (e->domain == MBIM_CORE_ERROR) {
		switch (e->code) {
		case MBIM_CORE_ERROR_TIMEOUT:
			return g_error_new(CP_ERROR, CP_ERR_MODEM_TIMEOUT, "%s: no answer from the modem in %u s",
					   what, self->timeout);
		case MBIM_CORE_ERROR_WRONG_STATE:
		case MBIM_CORE_ERROR_ABORTED:
			return g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "%s: the modem is not open (%s)",
					   what, e->message);
		default:
			break;
		}
	}
	if (e->domain == MBIM_PROTOCOL_ERROR)
		return g_error_new(CP_ERROR, CP_ERR_MODEM, "%s: MBIM protocol error %s", what,
				   mbim_protocol_error_get_string(e->code) ?
				   mbim_protocol_error_get_string(e->code) : "unknown");
	return g_error_new(CP_ERROR, CP_ERR_MODEM, "%s: %s", what, e->message);
}

/* ---- one request ------------------------------------------------------------ */

/* The task's data while a single command runs: what it was, for errors. */
typedef MbimMessage *(*ParseFunc)(CpMbim *self, GTask *task, MbimMessage *resp);

typedef struct {
	const char *what;
	gpointer data;                /* per operation */
	GDestroyNotify data_free;
	void (*done)(CpMbim *self, GTask *task, MbimMessage *resp);
} Request;

static void
request_free(gpointer p)
{
	Request *r = p;

	if (r->data_free)
		r->data_free(r->data);
	g_free(r);
}

static void
command_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	CpMbim *self = g_task_get_source_object(task);
	Request *r = g_task_get_task_data(task);
	g_autoptr(GError) e = NULL;
	g_autoptr(MbimMessage) resp = mbim_device_command_finish(MBIM_DEVICE(source), res, &e);

	if (g_task_return_error_if_cancelled(task))
		return;
	if (!resp || !mbim_message_response_get_result(resp, MBIM_MESSAGE_TYPE_COMMAND_DONE, &e)) {
		g_task_return_error(task, map_error(self, e, r->what));
		return;
	}
	r->done(self, g_steal_pointer(&task), resp);
}

/* Sends msg; r->done gets the task (its reference) and a good answer. */
static void
request_send(CpMbim *self, GTask *task, MbimMessage *msg)
{
	Request *r = g_task_get_task_data(task);

	if (!self->present || !self->device) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM_GONE, "%s: the modem went away", r->what);
		g_object_unref(task);
		return;
	}
	if (!msg) {
		/* only for arguments the callers have already checked */
		g_task_return_new_error(task, CP_ERROR, CP_ERR_ARGUMENT, "%s: the request cannot be built", r->what);
		g_object_unref(task);
		return;
	}
	mbim_device_command(self->device, msg, self->timeout, g_task_get_cancellable(task),
			    command_ready, task);
}

static GTask *
request_new(CpMbim *self, const char *what, GCancellable *cancellable,
	    GAsyncReadyCallback callback, gpointer user_data,
	    void (*done)(CpMbim *, GTask *, MbimMessage *), gpointer source_tag)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	Request *r = g_new0(Request, 1);

	r->what = what;
	r->done = done;
	g_task_set_source_tag(task, source_tag);
	g_task_set_task_data(task, r, request_free);
	return task;
}

/* A response that does not parse. */
static void
return_parse_error(GTask *task, const GError *e)
{
	Request *r = g_task_get_task_data(task);

	g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM, "%s: malformed answer from the modem: %s",
				r->what, e->message);
	g_object_unref(task);
}

/* ---- open and close ----------------------------------------------------------- */

static void
device_removed_cb(MbimDevice *device, gpointer user_data)
{
	CpMbim *self = user_data;

	if (!self->present)
		return;
	g_message("MBIM device %s went away", self->path);
	self->present = FALSE;
	g_signal_emit(self, signals[SIGNAL_REMOVED], 0);
}

static void
services_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(MbimDeviceServiceElementArray) services = NULL;
	g_autoptr(GError) e = NULL;
	guint32 n;

	if (!mbim_message_device_services_response_parse(resp, &n, NULL, &services, &e)) {
		return_parse_error(task, e);
		return;
	}
	for (guint32 i = 0; i < n; i++) {
		MbimService s = mbim_uuid_to_service(&services[i]->device_service_id);

		if (s == MBIM_SERVICE_MS_UICC_LOW_LEVEL_ACCESS) {
			self->has_uicc = TRUE;
		} else if (s == MBIM_SERVICE_MS_BASIC_CONNECT_EXTENSIONS) {
			for (guint32 c = 0; c < services[i]->cids_count; c++)
				if (services[i]->cids[c] == MBIM_CID_MS_BASIC_CONNECT_EXTENSIONS_DEVICE_RESET)
					self->has_device_reset = TRUE;
		}
	}
	if (!self->has_uicc) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM,
					"%s has no Microsoft UICC low-level access service: "
					"the card cannot be reached through this modem", self->path);
		g_object_unref(task);
		return;
	}
	g_debug("MBIM %s open: UICC low-level access, device reset %s", self->path,
		self->has_device_reset ? "yes" : "no (radio off/on instead)");
	g_task_return_pointer(task, g_object_ref(self), g_object_unref);
	g_object_unref(task);
}

static void
open_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	CpMbim *self = g_task_get_source_object(task);
	g_autoptr(GError) e = NULL;
	g_autoptr(MbimMessage) msg = NULL;

	if (!mbim_device_open_full_finish(MBIM_DEVICE(source), res, &e)) {
		if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_task_return_error(task, g_steal_pointer(&e));
		else if (g_error_matches(e, MBIM_CORE_ERROR, MBIM_CORE_ERROR_TIMEOUT))
			g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM_TIMEOUT,
						"opening %s through mbim-proxy: no answer in %u s",
						self->path, self->timeout);
		else
			g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM_GONE,
						"opening %s through mbim-proxy: %s", self->path, e->message);
		g_object_unref(task);
		return;
	}
	self->present = TRUE;
	self->removed_id = g_signal_connect(self->device, MBIM_DEVICE_SIGNAL_REMOVED,
					    G_CALLBACK(device_removed_cb), self);
	msg = mbim_message_device_services_query_new(NULL);
	request_send(self, task, msg);
}

static void
device_new_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	CpMbim *self = g_task_get_source_object(task);
	g_autoptr(GError) e = NULL;

	self->device = mbim_device_new_finish(res, &e);
	if (!self->device) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM_GONE, "%s: %s", self->path, e->message);
		g_object_unref(task);
		return;
	}
	mbim_device_open_full(self->device, MBIM_DEVICE_OPEN_FLAGS_PROXY, self->timeout,
			      g_task_get_cancellable(task), open_ready, task);
}

void
cp_mbim_open_async(const char *path, guint request_timeout, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(CpMbim) self = g_object_new(CP_TYPE_MBIM, NULL);
	g_autoptr(GFile) file = NULL;
	GTask *task;

	self->timeout = request_timeout ? request_timeout : DEFAULT_TIMEOUT;
	self->path = g_strdup(path ? path : "");
	task = request_new(self, "device services", cancellable, callback, user_data,
			   services_done, cp_mbim_open_async);
	if (!path || !*path) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_ARGUMENT, "no MBIM device path");
		g_object_unref(task);
		return;
	}
	file = g_file_new_for_path(path);
	mbim_device_new(file, cancellable, device_new_ready, task);
}

CpMbim *
cp_mbim_open_finish(GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

static void
close_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	CpMbim *self = g_task_get_source_object(task);
	g_autoptr(GError) e = NULL;

	if (!mbim_device_close_finish(MBIM_DEVICE(source), res, &e) && self->present) {
		g_task_return_error(task, map_error(self, e, "closing the MBIM device"));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
cp_mbim_close_async(CpMbim *self, GCancellable *cancellable,
		    GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, cp_mbim_close_async);
	if (!self->device || !self->present) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	/* Through the proxy this ends our client only; the proxy keeps the
	 * function open for ModemManager. */
	mbim_device_close(self->device, self->timeout, cancellable, close_ready, task);
}

gboolean
cp_mbim_close_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* ---- subscriber ------------------------------------------------------------- */

typedef struct {
	char *iccid;
	char *imsi;
} Subscriber;

static void
subscriber_free(gpointer p)
{
	Subscriber *s = p;

	g_free(s->iccid);
	g_free(s->imsi);
	g_free(s);
}

static void
subscriber_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	g_autofree char *imsi = NULL, *iccid = NULL;
	MbimSubscriberReadyState state;
	Subscriber *s;

	if (!mbim_message_subscriber_ready_status_response_parse(resp, &state, &imsi, &iccid,
								 NULL, NULL, NULL, &e)) {
		return_parse_error(task, e);
		return;
	}
	switch (state) {
	case MBIM_SUBSCRIBER_READY_STATE_INITIALIZED:
	case MBIM_SUBSCRIBER_READY_STATE_NOT_ACTIVATED:
		break;
	case MBIM_SUBSCRIBER_READY_STATE_NOT_INITIALIZED:
		g_task_return_new_error(task, CP_ERROR, CP_ERR_CARD_ABSENT, "the modem has not initialised the card yet");
		g_object_unref(task);
		return;
	case MBIM_SUBSCRIBER_READY_STATE_SIM_NOT_INSERTED:
		g_task_return_new_error(task, CP_ERROR, CP_ERR_CARD_ABSENT, "no card in the modem");
		g_object_unref(task);
		return;
	case MBIM_SUBSCRIBER_READY_STATE_DEVICE_LOCKED:
		g_task_return_new_error(task, CP_ERROR, CP_ERR_CARD_ABSENT, "the card is locked (PIN)");
		g_object_unref(task);
		return;
	case MBIM_SUBSCRIBER_READY_STATE_BAD_SIM:
	case MBIM_SUBSCRIBER_READY_STATE_FAILURE:
	default:
		/* the ICCID may still be there: the card answers, its
		 * subscription does not (e.g. EF.IMSI empty) */
		if (iccid && *iccid)
			break;
		g_task_return_new_error(task, CP_ERROR, CP_ERR_CARD_ABSENT,
					"the modem reports the card unusable (%s)",
					mbim_subscriber_ready_state_get_string(state));
		g_object_unref(task);
		return;
	}
	if (!iccid || !*iccid) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_CARD_ABSENT, "the modem reports no ICCID");
		g_object_unref(task);
		return;
	}
	s = g_new0(Subscriber, 1);
	s->iccid = g_steal_pointer(&iccid);
	s->imsi = imsi && *imsi ? g_steal_pointer(&imsi) : NULL;
	g_task_return_pointer(task, s, subscriber_free);
	g_object_unref(task);
}

void
cp_mbim_subscriber_async(CpMbim *self, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "subscriber ready status", cancellable, callback, user_data,
				  subscriber_done, cp_mbim_subscriber_async);
	g_autoptr(MbimMessage) msg = mbim_message_subscriber_ready_status_query_new(NULL);

	request_send(self, task, msg);
}

gboolean
cp_mbim_subscriber_finish(CpMbim *self, GAsyncResult *res, char **iccid, char **imsi, GError **error)
{
	Subscriber *s = g_task_propagate_pointer(G_TASK(res), error);

	if (!s)
		return FALSE;
	if (iccid)
		*iccid = g_steal_pointer(&s->iccid);
	if (imsi)
		*imsi = g_steal_pointer(&s->imsi);
	subscriber_free(s);
	return TRUE;
}

/* ---- the card: ATR, channels, APDUs, reset ------------------------------------- */

static void
return_bytes(GTask *task, GBytes *b)
{
	g_task_return_pointer(task, b, (GDestroyNotify)g_bytes_unref);
	g_object_unref(task);
}

static void
firmware_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	char *firmware = NULL;

	if (!mbim_message_device_caps_response_parse(resp, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
						     NULL, NULL, &firmware, NULL, &e)) {
		return_parse_error(task, e);
		return;
	}
	g_task_return_pointer(task, firmware, g_free);
	g_object_unref(task);
}

void
cp_mbim_firmware_async(CpMbim *self, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "device caps", cancellable, callback, user_data,
				  firmware_done, cp_mbim_firmware_async);
	g_autoptr(MbimMessage) msg = mbim_message_device_caps_query_new(NULL);

	request_send(self, task, msg);
}

char *
cp_mbim_firmware_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

static void
atr_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	const guint8 *atr;
	guint32 len;

	if (!mbim_message_ms_uicc_low_level_access_atr_response_parse(resp, &len, &atr, &e)) {
		return_parse_error(task, e);
		return;
	}
	if (len < 2) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_CARD_ABSENT, "the card gave no ATR");
		g_object_unref(task);
		return;
	}
	return_bytes(task, g_bytes_new(atr, len));
}

void
cp_mbim_atr_async(CpMbim *self, GCancellable *cancellable,
		  GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "UICC ATR", cancellable, callback, user_data,
				  atr_done, cp_mbim_atr_async);
	g_autoptr(MbimMessage) msg = mbim_message_ms_uicc_low_level_access_atr_query_new(NULL);

	request_send(self, task, msg);
}

GBytes *
cp_mbim_atr_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* SW1 SW2 in the low 16 bits of the UICC service's Status. */
static gboolean
sw_ok(guint32 status)
{
	return status == 0x9000 || (status >> 8) == 0x61 || (status >> 8) == 0x91;
}

static void
open_channel_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	guint32 status, channel;

	if (!mbim_message_ms_uicc_low_level_access_open_channel_response_parse(resp, &status, &channel,
									      NULL, NULL, &e)) {
		return_parse_error(task, e);
		return;
	}
	if (!sw_ok(status)) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_APDU,
					"opening a logical channel on the application: SW %04X%s",
					status & 0xFFFF, status == 0x6A82 ? " (no such application)" :
					status == 0x6A81 ? " (no channel free)" : "");
		g_object_unref(task);
		return;
	}
	if (channel < 1 || channel > 19) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM,
					"opening a logical channel: the modem gave channel %u", channel);
		g_object_unref(task);
		return;
	}
	g_task_return_int(task, channel);
	g_object_unref(task);
}

static void
applications_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	MbimUiccApplicationArray *list = NULL;
	CpMbimApplications *apps;

	if (!mbim_message_ms_uicc_low_level_access_application_list_response_parse(resp, NULL, NULL, NULL,
										   NULL, &list, &e)) {
		return_parse_error(task, e);
		return;
	}
	apps = g_new0(CpMbimApplications, 1);
	for (guint k = 0; list && list[k]; k++) {
		MbimUiccApplication *a = list[k];

		if (a->application_id_size < 1 || a->application_id_size > 16)
			continue;
		if (a->application_type == MBIM_UICC_APPLICATION_TYPE_USIM && !apps->usim_len) {
			memcpy(apps->usim, a->application_id, a->application_id_size);
			apps->usim_len = a->application_id_size;
		} else if (a->application_type == MBIM_UICC_APPLICATION_TYPE_ISIM && !apps->isim_len) {
			memcpy(apps->isim, a->application_id, a->application_id_size);
			apps->isim_len = a->application_id_size;
		}
	}
	mbim_uicc_application_array_free(list);
	g_task_return_pointer(task, apps, g_free);
	g_object_unref(task);
}

void
cp_mbim_applications_async(CpMbim *self, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "the card's application list", cancellable, callback, user_data,
				  applications_done, cp_mbim_applications_async);
	g_autoptr(MbimMessage) msg = mbim_message_ms_uicc_low_level_access_application_list_query_new(NULL);

	request_send(self, task, msg);
}

gboolean
cp_mbim_applications_finish(CpMbim *self, GAsyncResult *res, CpMbimApplications *apps, GError **error)
{
	g_autofree CpMbimApplications *a = g_task_propagate_pointer(G_TASK(res), error);

	if (!a)
		return FALSE;
	*apps = *a;
	return TRUE;
}

void
cp_mbim_open_channel_async(CpMbim *self, const guint8 *aid, gsize aid_len,
			   GCancellable *cancellable, GAsyncReadyCallback callback,
			   gpointer user_data)
{
	GTask *task = request_new(self, "opening a logical channel", cancellable, callback, user_data,
				  open_channel_done, cp_mbim_open_channel_async);
	g_autoptr(MbimMessage) msg = NULL;
	g_autoptr(GError) e = NULL;

	if (!aid || aid_len < 1 || aid_len > 16) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_ARGUMENT, "an AID is 1 to 16 bytes, not %zu", aid_len);
		g_object_unref(task);
		return;
	}
	msg = mbim_message_ms_uicc_low_level_access_open_channel_set_new((guint32)aid_len, aid, SELECT_P2_FCP,
									 CHANNEL_GROUP, &e);
	request_send(self, task, msg);
}

guint
cp_mbim_open_channel_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	gssize ch = g_task_propagate_int(G_TASK(res), error);

	return ch > 0 ? (guint)ch : 0;
}

static void
apdu_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	const guint8 *data;
	guint32 status, len;
	GByteArray *out;
	guint8 sw[2];

	if (!mbim_message_ms_uicc_low_level_access_apdu_response_parse(resp, &status, &len, &data, &e)) {
		return_parse_error(task, e);
		return;
	}
	if (status > 0xFFFF || status < 0x6100) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM,
					"APDU: the modem gave status %08X, not a status word", status);
		g_object_unref(task);
		return;
	}
	out = g_byte_array_sized_new(len + 2);
	if (len)
		g_byte_array_append(out, data, len);
	sw[0] = (guint8)(status >> 8);
	sw[1] = (guint8)status;
	g_byte_array_append(out, sw, 2);
	return_bytes(task, g_byte_array_free_to_bytes(out));
}

void
cp_mbim_apdu_async(CpMbim *self, guint channel, GBytes *apdu, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "APDU", cancellable, callback, user_data,
				  apdu_done, cp_mbim_apdu_async);
	g_autoptr(MbimMessage) msg = NULL;
	g_autoptr(GError) e = NULL;
	gsize len = 0;
	const guint8 *d = apdu ? g_bytes_get_data(apdu, &len) : NULL;

	if (!d || len < 4 || len > 261) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_ARGUMENT, "an APDU is 4 to 261 bytes, not %zu", len);
		g_object_unref(task);
		return;
	}
	msg = mbim_message_ms_uicc_low_level_access_apdu_set_new(channel, MBIM_UICC_SECURE_MESSAGING_NONE,
								 MBIM_UICC_CLASS_BYTE_TYPE_INTER_INDUSTRY,
								 (guint32)len, d, &e);
	request_send(self, task, msg);
}

GBytes *
cp_mbim_apdu_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

static void
close_channel_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	guint32 status;

	if (!mbim_message_ms_uicc_low_level_access_close_channel_response_parse(resp, &status, &e)) {
		return_parse_error(task, e);
		return;
	}
	if (!sw_ok(status)) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_APDU, "closing the logical channel: SW %04X",
					status & 0xFFFF);
		g_object_unref(task);
		return;
	}
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

void
cp_mbim_close_channel_async(CpMbim *self, guint channel, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "closing the logical channel", cancellable, callback, user_data,
				  close_channel_done, cp_mbim_close_channel_async);
	g_autoptr(MbimMessage) msg = NULL;
	g_autoptr(GError) e = NULL;

	msg = mbim_message_ms_uicc_low_level_access_close_channel_set_new(channel, CHANNEL_GROUP, &e);
	request_send(self, task, msg);
}

gboolean
cp_mbim_close_channel_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
card_reset_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(GError) e = NULL;
	MbimUiccPassThroughStatus st;

	if (!mbim_message_ms_uicc_low_level_access_reset_response_parse(resp, &st, &e)) {
		return_parse_error(task, e);
		return;
	}
	if (st != MBIM_UICC_PASS_THROUGH_STATUS_DISABLED) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM,
					"card reset: the modem left the card in pass-through mode");
		g_object_unref(task);
		return;
	}
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

void
cp_mbim_card_reset_async(CpMbim *self, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "card reset", cancellable, callback, user_data,
				  card_reset_done, cp_mbim_card_reset_async);
	g_autoptr(MbimMessage) msg = NULL;
	g_autoptr(GError) e = NULL;

	msg = mbim_message_ms_uicc_low_level_access_reset_set_new(MBIM_UICC_PASS_THROUGH_ACTION_DISABLE, &e);
	request_send(self, task, msg);
}

gboolean
cp_mbim_card_reset_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* ---- APN: basic-connect provisioned contexts ---------------------------------- */

gboolean
cp_mbim_apn_valid(const char *apn)
{
	gsize n;
	gboolean label_start = TRUE;

	if (!apn || !(n = strlen(apn)) || n > 100 || apn[n - 1] == '.')
		return FALSE;
	for (const char *p = apn; *p; p++) {
		if (*p == '.') {
			if (label_start)
				return FALSE;   /* empty label */
			label_start = TRUE;
			continue;
		}
		if (!g_ascii_isalnum(*p) && *p != '-')
			return FALSE;
		label_start = FALSE;
	}
	return TRUE;
}

typedef struct {
	char *apn;
	gboolean set;             /* the set was sent: check its answer */
} ApnOp;

static void
apn_op_free(gpointer p)
{
	ApnOp *op = p;

	g_free(op->apn);
	g_free(op);
}

/* The first internet context, NULL if none. */
static MbimProvisionedContextElement *
internet_context(MbimProvisionedContextElement **list, guint32 n)
{
	for (guint32 i = 0; i < n; i++)
		if (mbim_uuid_to_context_type(&list[i]->context_type) == MBIM_CONTEXT_TYPE_INTERNET)
			return list[i];
	return NULL;
}

static void
get_apn_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_autoptr(MbimProvisionedContextElementArray) list = NULL;
	g_autoptr(GError) e = NULL;
	MbimProvisionedContextElement *c;
	guint32 n;

	if (!mbim_message_provisioned_contexts_response_parse(resp, &n, &list, &e)) {
		return_parse_error(task, e);
		return;
	}
	c = internet_context(list, n);
	g_task_return_pointer(task, g_strdup(c && c->access_string ? c->access_string : ""), g_free);
	g_object_unref(task);
}

void
cp_mbim_get_apn_async(CpMbim *self, GCancellable *cancellable,
		      GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "provisioned contexts", cancellable, callback, user_data,
				  get_apn_done, cp_mbim_get_apn_async);
	g_autoptr(MbimMessage) msg = mbim_message_provisioned_contexts_query_new(NULL);

	request_send(self, task, msg);
}

char *
cp_mbim_get_apn_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

static void
set_apn_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	Request *r = g_task_get_task_data(task);
	ApnOp *op = r->data;
	g_autoptr(MbimProvisionedContextElementArray) list = NULL;
	g_autoptr(GError) e = NULL;
	g_autoptr(MbimMessage) msg = NULL;
	MbimProvisionedContextElement *c;
	guint32 n;

	if (!mbim_message_provisioned_contexts_response_parse(resp, &n, &list, &e)) {
		return_parse_error(task, e);
		return;
	}
	c = internet_context(list, n);
	if (op->set) {
		/* the answer to the set lists the contexts as they are now */
		if (!c || g_strcmp0(c->access_string, op->apn) != 0) {
			g_task_return_new_error(task, CP_ERROR, CP_ERR_APN,
						"the modem accepted APN '%s' but keeps '%s'", op->apn,
						c && c->access_string ? c->access_string : "");
			g_object_unref(task);
			return;
		}
		g_debug("APN of context %u set to '%s'", c->context_id, op->apn);
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	/* Keep what the context has besides its APN (as ModemManager's
	 * profile manager does when it stores a profile by ID). */
	op->set = TRUE;
	r->what = "setting the APN";
	msg = mbim_message_provisioned_contexts_set_new(c ? c->context_id : 1,
							mbim_uuid_from_context_type(MBIM_CONTEXT_TYPE_INTERNET),
							op->apn,
							c && c->user_name ? c->user_name : "",
							c && c->password ? c->password : "",
							c ? c->compression : MBIM_COMPRESSION_NONE,
							c ? c->auth_protocol : MBIM_AUTH_PROTOCOL_NONE,
							"", &e);
	request_send(self, task, msg);
}

void
cp_mbim_set_apn_async(CpMbim *self, const char *apn, GCancellable *cancellable,
		      GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, "provisioned contexts", cancellable, callback, user_data,
				  set_apn_done, cp_mbim_set_apn_async);
	Request *r = g_task_get_task_data(task);
	g_autoptr(MbimMessage) msg = NULL;
	ApnOp *op;

	if (!cp_mbim_apn_valid(apn)) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_APN,
					"'%s' is not an APN (TS 23.003 9.1: labels of letters, digits "
					"and hyphens separated by dots, at most 100 characters)", apn ? apn : "");
		g_object_unref(task);
		return;
	}
	op = g_new0(ApnOp, 1);
	op->apn = g_strdup(apn);
	r->data = op;
	r->data_free = apn_op_free;
	msg = mbim_message_provisioned_contexts_query_new(NULL);
	request_send(self, task, msg);
}

gboolean
cp_mbim_set_apn_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* ---- radio and reset ------------------------------------------------------------ */

static void
radio_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	Request *r = g_task_get_task_data(task);
	MbimRadioSwitchState want = GPOINTER_TO_UINT(r->data);
	g_autoptr(GError) e = NULL;
	MbimRadioSwitchState hw, sw;

	if (!mbim_message_radio_state_response_parse(resp, &hw, &sw, &e)) {
		return_parse_error(task, e);
		return;
	}
	if (want == MBIM_RADIO_SWITCH_STATE_ON && hw != MBIM_RADIO_SWITCH_STATE_ON) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM,
					"radio on: the modem's hardware radio switch is off");
		g_object_unref(task);
		return;
	}
	if (sw != want) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM, "radio %s: the modem stays %s",
					want ? "on" : "off", sw ? "on" : "off");
		g_object_unref(task);
		return;
	}
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

void
cp_mbim_set_radio_async(CpMbim *self, gboolean on, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = request_new(self, on ? "radio on" : "radio off", cancellable, callback, user_data,
				  radio_done, cp_mbim_set_radio_async);
	Request *r = g_task_get_task_data(task);
	MbimRadioSwitchState want = on ? MBIM_RADIO_SWITCH_STATE_ON : MBIM_RADIO_SWITCH_STATE_OFF;
	g_autoptr(MbimMessage) msg = NULL;
	g_autoptr(GError) e = NULL;

	r->data = GUINT_TO_POINTER(want);
	msg = mbim_message_radio_state_set_new(want, &e);
	request_send(self, task, msg);
}

gboolean
cp_mbim_set_radio_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
reset_radio_on_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *e = NULL;

	if (!cp_mbim_set_radio_finish(CP_MBIM(source), res, &e))
		g_task_return_error(task, e);
	else
		g_task_return_int(task, FALSE);
}

static void
reset_radio_off_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	GError *e = NULL;

	if (!cp_mbim_set_radio_finish(CP_MBIM(source), res, &e)) {
		g_task_return_error(task, e);
		g_object_unref(task);
		return;
	}
	cp_mbim_set_radio_async(CP_MBIM(source), TRUE, g_task_get_cancellable(task), reset_radio_on_ready, task);
}

static void
device_reset_done(CpMbim *self, GTask *task, MbimMessage *resp)
{
	g_message("MBIM device reset sent: %s reboots", self->path);
	g_task_return_int(task, TRUE);
	g_object_unref(task);
}

void
cp_mbim_reset_async(CpMbim *self, GCancellable *cancellable,
		    GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task;
	g_autoptr(MbimMessage) msg = NULL;

	if (!self->has_device_reset) {
		task = g_task_new(self, cancellable, callback, user_data);
		g_task_set_source_tag(task, cp_mbim_reset_async);
		cp_mbim_set_radio_async(self, FALSE, cancellable, reset_radio_off_ready, task);
		return;
	}
	/* ModemManager's modem_reset() (mm-broadband-modem-mbim.c) tries this
	 * first; libmbim 1.28 has the CID but no builder for it, and the
	 * request carries no data. */
	task = request_new(self, "device reset", cancellable, callback, user_data,
			   device_reset_done, cp_mbim_reset_async);
	msg = mbim_message_command_new(0, MBIM_SERVICE_MS_BASIC_CONNECT_EXTENSIONS,
				       MBIM_CID_MS_BASIC_CONNECT_EXTENSIONS_DEVICE_RESET,
				       MBIM_MESSAGE_COMMAND_TYPE_SET);
	request_send(self, task, msg);
}

gboolean
cp_mbim_reset_finish(CpMbim *self, GAsyncResult *res, gboolean *reenumerates, GError **error)
{
	GError *e = NULL;
	gssize v = g_task_propagate_int(G_TASK(res), &e);

	if (e) {
		g_propagate_error(error, e);
		return FALSE;
	}
	if (reenumerates)
		*reenumerates = v != 0;
	return TRUE;
}

/* ---- registration -------------------------------------------------------------- */

typedef struct {
	CpMbim *self;
	GTask *task;
	gulong indication_id;
	gulong removed_id;
	GSource *timeout;
	GSource *cancel;
	guint timeout_ms;
	MbimRegisterState last;
} Wait;

static void
wait_free(gpointer p)
{
	Wait *w = p;

	if (w->indication_id)
		g_signal_handler_disconnect(w->self->device, w->indication_id);
	if (w->removed_id)
		g_signal_handler_disconnect(w->self, w->removed_id);
	if (w->timeout) {
		g_source_destroy(w->timeout);
		g_source_unref(w->timeout);
	}
	if (w->cancel) {
		g_source_destroy(w->cancel);
		g_source_unref(w->cancel);
	}
	g_free(w);
}

/* Ends the wait once; later events find the task gone. */
static GTask *
wait_take(Wait *w)
{
	GTask *task = g_steal_pointer(&w->task);

	if (w->indication_id)
		g_signal_handler_disconnect(w->self->device, w->indication_id);
	if (w->removed_id)
		g_signal_handler_disconnect(w->self, w->removed_id);
	w->indication_id = w->removed_id = 0;
	if (w->timeout)
		g_source_destroy(w->timeout);
	if (w->cancel)
		g_source_destroy(w->cancel);
	return task;
}

static void
wait_state(Wait *w, MbimNwError nw_error, MbimRegisterState state, const char *provider_id)
{
	g_autoptr(GTask) task = NULL;
	CpMbimRegistration *r;

	if (!w->task)
		return;
	w->last = state;
	g_debug("register state %s", mbim_register_state_get_string(state));
	switch (state) {
	case MBIM_REGISTER_STATE_HOME:
	case MBIM_REGISTER_STATE_ROAMING:
	case MBIM_REGISTER_STATE_PARTNER:
		task = wait_take(w);
		r = g_new0(CpMbimRegistration, 1);
		r->plmn = g_strdup(provider_id ? provider_id : "");
		r->roaming = state != MBIM_REGISTER_STATE_HOME;
		g_task_return_pointer(task, r, (GDestroyNotify)cp_mbim_registration_free);
		return;
	case MBIM_REGISTER_STATE_DENIED:
		task = wait_take(w);
		g_task_return_new_error(task, CP_ERROR, CP_ERR_REG_DENIED,
					"the network denied the registration: %s (cause %u)",
					mbim_nw_error_get_string(nw_error) ? mbim_nw_error_get_string(nw_error) :
					"unknown cause", (guint)nw_error);
		return;
	default:
		return;
	}
}

static void
indication_cb(MbimDevice *device, MbimMessage *msg, gpointer user_data)
{
	Wait *w = user_data;
	g_autofree char *provider = NULL;
	MbimNwError nw_error;
	MbimRegisterState state;

	if (mbim_message_indicate_status_get_service(msg) != MBIM_SERVICE_BASIC_CONNECT ||
	    mbim_message_indicate_status_get_cid(msg) != MBIM_CID_BASIC_CONNECT_REGISTER_STATE)
		return;
	if (!mbim_message_register_state_notification_parse(msg, &nw_error, &state, NULL, NULL, NULL,
							    &provider, NULL, NULL, NULL, NULL))
		return;
	wait_state(w, nw_error, state, provider);
}

static void
wait_removed_cb(CpMbim *self, gpointer user_data)
{
	Wait *w = user_data;
	g_autoptr(GTask) task = wait_take(w);

	if (task)
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM_GONE,
					"waiting for registration: the modem went away");
}

static gboolean
wait_timeout_cb(gpointer user_data)
{
	Wait *w = user_data;
	g_autoptr(GTask) task = wait_take(w);

	if (task)
		g_task_return_new_error(task, CP_ERROR, CP_ERR_REG_TIMEOUT,
					"no registration within %u ms (last state: %s)", w->timeout_ms,
					mbim_register_state_get_string(w->last));
	return G_SOURCE_REMOVE;
}

static gboolean
wait_cancelled_cb(GCancellable *c, gpointer user_data)
{
	Wait *w = user_data;
	g_autoptr(GTask) task = wait_take(w);

	if (task)
		g_task_return_error_if_cancelled(task);
	return G_SOURCE_REMOVE;
}

static void
wait_query_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	/* the wait's own reference keeps the task data (w) alive */
	g_autoptr(GTask) ref = user_data;
	Wait *w = g_task_get_task_data(ref);
	g_autoptr(GError) e = NULL;
	g_autoptr(MbimMessage) resp = mbim_device_command_finish(MBIM_DEVICE(source), res, &e);
	g_autofree char *provider = NULL;
	MbimNwError nw_error;
	MbimRegisterState state;

	if (!w->task)
		return;
	if (!resp || !mbim_message_response_get_result(resp, MBIM_MESSAGE_TYPE_COMMAND_DONE, &e) ||
	    !mbim_message_register_state_response_parse(resp, &nw_error, &state, NULL, NULL, NULL,
							&provider, NULL, NULL, NULL, &e)) {
		g_autoptr(GTask) task = NULL;

		if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			return;   /* the cancel source answers */
		task = wait_take(w);
		g_task_return_error(task, map_error(w->self, e, "register state"));
		return;
	}
	wait_state(w, nw_error, state, provider);
}

void
cp_mbim_wait_registered_async(CpMbim *self, guint timeout_ms, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(MbimMessage) msg = NULL;
	Wait *w;

	g_task_set_source_tag(task, cp_mbim_wait_registered_async);
	if (!self->present || !self->device) {
		g_task_return_new_error(task, CP_ERROR, CP_ERR_MODEM_GONE,
					"waiting for registration: the modem went away");
		g_object_unref(task);
		return;
	}
	w = g_new0(Wait, 1);
	w->self = self;
	w->task = task;              /* the wait's reference */
	w->timeout_ms = timeout_ms;
	w->last = MBIM_REGISTER_STATE_UNKNOWN;
	g_task_set_task_data(task, w, wait_free);
	/* indications first, so that no change falls between query and answer */
	w->indication_id = g_signal_connect(self->device, MBIM_DEVICE_SIGNAL_INDICATE_STATUS,
					    G_CALLBACK(indication_cb), w);
	w->removed_id = g_signal_connect(self, "removed", G_CALLBACK(wait_removed_cb), w);
	w->timeout = g_timeout_source_new(timeout_ms);
	g_source_set_callback(w->timeout, wait_timeout_cb, w, NULL);
	g_source_attach(w->timeout, g_main_context_get_thread_default());
	if (cancellable) {
		w->cancel = g_cancellable_source_new(cancellable);
		g_source_set_callback(w->cancel, G_SOURCE_FUNC(wait_cancelled_cb), w, NULL);
		g_source_attach(w->cancel, g_main_context_get_thread_default());
	}
	msg = mbim_message_register_state_query_new(NULL);
	mbim_device_command(self->device, msg, self->timeout, cancellable, wait_query_ready,
			    g_object_ref(task));
}

CpMbimRegistration *
cp_mbim_wait_registered_finish(CpMbim *self, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}
