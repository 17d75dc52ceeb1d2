/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-qmi-uim-raw.h"

#include <string.h>

#include "cp-glib.h"
#include "cp-modem-qmi.h"

#define MSG_SEND_APDU 0x003B
#define MSG_LOGICAL_CHANNEL 0x003F
#define MSG_OPEN_CHANNEL 0x0042

#define TLV_SLOT 0x01
#define TLV_RESULT 0x02
#define SLOT_1 1

static guint raw_count;

/* A QmiMessage unreffed through message_free_cleansed(). */
typedef QmiMessage CpCleansedMessage;

guint
cp_qmi_uim_raw_count(void)
{
	return raw_count;
}

static QmiMessage *
message_new(QmiClientUim *uim, guint16 id)
{
	QmiClient *c = QMI_CLIENT(uim);
	QmiMessage *m = qmi_message_new(QMI_SERVICE_UIM, qmi_client_get_cid(c),
					qmi_client_get_next_transaction_id(c), id);
	gsize o = qmi_message_tlv_write_init(m, TLV_SLOT, NULL);

	qmi_message_tlv_write_guint8(m, SLOT_1, NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
	return m;
}

/*
 * An APDU message carries ADM1 (VERIFY), new keys (UPDATE) or old ones (the
 * READ of EF.USIM_AUTH_KEY answers K and OPc): its bytes are wiped once
 * libqmi is done with it. libqmi's own read buffer is beyond reach.
 */
static void
message_cleanse(QmiMessage *m)
{
	gsize len = 0;
	guint8 *raw = (guint8 *)qmi_message_get_raw(m, &len, NULL);

	if (raw)
		cp_cleanse(raw, len);
}

static void
message_free_cleansed(gpointer m)
{
	message_cleanse(m);
	qmi_message_unref(m);
}

static void
command_cb(GObject *source, GAsyncResult *res, gpointer data)
{
	g_autoptr(GTask) task = data;
	GError *error = NULL;
	QmiMessage *resp = qmi_device_command_full_finish(QMI_DEVICE(source), res, &error);

	/* the request, held until now */
	g_task_set_task_data(task, NULL, NULL);
	if (!resp) {
		g_task_return_error(task, cp_qmi_error_convert(error));
		return;
	}
	g_task_return_pointer(task, resp, message_free_cleansed);
}

static void
send(QmiClientUim *uim, QmiMessage *m, guint timeout, GCancellable *cancellable, GTask *task)
{
	g_autoptr(QmiMessageContext) ctx = qmi_message_context_new();

	raw_count++;
	g_task_set_task_data(task, qmi_message_ref(m), message_free_cleansed);
	qmi_device_command_full(QMI_DEVICE(qmi_client_peek_device(QMI_CLIENT(uim))), m, ctx, timeout,
				cancellable, command_cb, task);
}

/* Result TLV 0x02: result (u16), error (u16). */
static gboolean
check_result(QmiMessage *resp, const char *what, GError **error)
{
	guint16 len;
	const guint8 *v = qmi_message_get_raw_tlv(resp, TLV_RESULT, &len);
	guint16 result, qerr;

	if (!v || len != 4) {
		cp_set_error(error, CP_ERR_MODEM, "%s: response without a result", what);
		return FALSE;
	}
	result = (guint16)(v[0] | v[1] << 8);
	qerr = (guint16)(v[2] | v[3] << 8);
	if (result != 0) {
		cp_set_error(error, CP_ERR_MODEM, "%s failed: %s", what,
			     qmi_protocol_error_get_string((QmiProtocolError)qerr) ?: "unknown QMI error");
		return FALSE;
	}
	return TRUE;
}

static QmiMessage *
finish_message(GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpCleansedMessage, message_free_cleansed)

void
cp_qmi_uim_open_channel(QmiClientUim *uim, const guint8 *aid, gsize aid_len, guint timeout,
			GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(uim, cancellable, callback, user_data);
	g_autoptr(QmiMessage) m = message_new(uim, MSG_OPEN_CHANNEL);
	gsize o = qmi_message_tlv_write_init(m, 0x10, NULL);

	qmi_message_tlv_write_guint8(m, (guint8)aid_len, NULL);
	for (gsize i = 0; i < aid_len; i++)
		qmi_message_tlv_write_guint8(m, aid[i], NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
	send(uim, m, timeout, cancellable, task);
}

guint
cp_qmi_uim_open_channel_finish(QmiClientUim *uim, GAsyncResult *res, GError **error)
{
	g_autoptr(QmiMessage) resp = finish_message(res, error);
	guint16 len = 0;
	const guint8 *ch, *sw;

	if (!resp)
		return 0;
	sw = qmi_message_get_raw_tlv(resp, 0x11, &len);
	if (sw && len == 2 && !(sw[0] == 0x90 && sw[1] == 0x00)) {
		cp_set_error(error, CP_ERR_APDU, "the card refused a logical channel to the USIM application (SW %02X%02X)",
			     sw[0], sw[1]);
		return 0;
	}
	if (!check_result(resp, "opening a logical channel", error))
		return 0;
	ch = qmi_message_get_raw_tlv(resp, 0x10, &len);
	if (!ch || len != 1 || ch[0] == 0) {
		cp_set_error(error, CP_ERR_MODEM, "opening a logical channel: no channel in the response");
		return 0;
	}
	return ch[0];
}

void
cp_qmi_uim_close_channel(QmiClientUim *uim, guint channel, guint timeout,
			 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(uim, cancellable, callback, user_data);
	g_autoptr(QmiMessage) m = message_new(uim, MSG_LOGICAL_CHANNEL);
	gsize o = qmi_message_tlv_write_init(m, 0x11, NULL);

	qmi_message_tlv_write_guint8(m, (guint8)channel, NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
	o = qmi_message_tlv_write_init(m, 0x13, NULL);
	qmi_message_tlv_write_guint8(m, 1, NULL);   /* terminate the application session */
	qmi_message_tlv_write_complete(m, o, NULL);
	send(uim, m, timeout, cancellable, task);
}

gboolean
cp_qmi_uim_close_channel_finish(QmiClientUim *uim, GAsyncResult *res, GError **error)
{
	g_autoptr(QmiMessage) resp = finish_message(res, error);

	return resp && check_result(resp, "closing the logical channel", error);
}

void
cp_qmi_uim_send_apdu(QmiClientUim *uim, guint channel, const guint8 *apdu, gsize len,
		     guint timeout, GCancellable *cancellable,
		     GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(uim, cancellable, callback, user_data);
	g_autoptr(QmiMessage) m = message_new(uim, MSG_SEND_APDU);
	gsize o = qmi_message_tlv_write_init(m, 0x02, NULL);

	qmi_message_tlv_write_guint16(m, QMI_ENDIAN_LITTLE, (guint16)len, NULL);
	for (gsize i = 0; i < len; i++)
		qmi_message_tlv_write_guint8(m, apdu[i], NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
	o = qmi_message_tlv_write_init(m, 0x10, NULL);
	qmi_message_tlv_write_guint8(m, (guint8)channel, NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
	send(uim, m, timeout, cancellable, task);
}

typedef struct {
	gsize len;
	guint8 data[];
} CleansedBlock;

static void
cleansed_block_free(gpointer p)
{
	CleansedBlock *b = p;

	cp_cleanse(b->data, b->len);
	g_free(b);
}

GBytes *
cp_qmi_uim_send_apdu_finish(QmiClientUim *uim, GAsyncResult *res, GError **error)
{
	g_autoptr(CpCleansedMessage) resp = finish_message(res, error);
	CleansedBlock *block;
	guint16 len = 0;
	const guint8 *v;

	if (!resp || !check_result(resp, "sending an APDU", error))
		return NULL;
	v = qmi_message_get_raw_tlv(resp, 0x10, &len);
	if (!v || len < 4 || (guint)(v[0] | v[1] << 8) != (guint)len - 2u) {
		cp_set_error(error, CP_ERR_MODEM, "sending an APDU: no response APDU");
		return NULL;
	}
	block = g_malloc(sizeof(*block) + len - 2u);
	block->len = len - 2u;
	memcpy(block->data, v + 2, block->len);
	return g_bytes_new_with_free_func(block->data, block->len, cleansed_block_free, block);
}
