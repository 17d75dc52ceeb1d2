/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-qmi-apdu: the raw UIM messages qmicli 1.32 lacks (Open Logical
 * Channel 0x0042, Send APDU 0x003B, Logical Channel 0x003F to close), sent
 * through libqmi, one command line each, for the qmi tests:
 *
 *   cp-qmi-apdu PATH open:AIDHEX apdu:CH:HEX close:CH ...
 *
 * prints per command `open channel=N sw=XXXX`, `open error=NICK`,
 * `apdu RESPONSEHEX` (data and status word), `close ok` or `close
 * error=NICK`. Exit 1 if the port cannot be used.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <gio/gio.h>
#include <libqmi-glib.h>

typedef struct {
	GMainLoop *loop;
	GObject *object;
	GAsyncResult *res;
} Wait;

static void
wait_cb(GObject *object, GAsyncResult *res, gpointer data)
{
	Wait *w = data;

	w->res = g_object_ref(res);
	g_main_loop_quit(w->loop);
}

static GAsyncResult *
wait_run(Wait *w)
{
	g_main_loop_run(w->loop);
	return w->res;
}

static gboolean
hex_to_bytes(const char *hex, GByteArray *out)
{
	gsize n = strlen(hex);

	if (n % 2)
		return FALSE;
	for (gsize i = 0; i < n; i += 2) {
		int hi = g_ascii_xdigit_value(hex[i]), lo = g_ascii_xdigit_value(hex[i + 1]);
		guint8 b;

		if (hi < 0 || lo < 0)
			return FALSE;
		b = (guint8)(hi << 4 | lo);
		g_byte_array_append(out, &b, 1);
	}
	return TRUE;
}

static void
tlv_u8(QmiMessage *m, guint8 type, guint8 v)
{
	gsize o = qmi_message_tlv_write_init(m, type, NULL);

	qmi_message_tlv_write_guint8(m, v, NULL);
	qmi_message_tlv_write_complete(m, o, NULL);
}

static QmiMessage *
command(QmiDevice *dev, QmiMessage *req, GError **error)
{
	Wait w = { .loop = g_main_loop_new(NULL, FALSE) };
	QmiMessage *resp;

	qmi_device_command_full(dev, req, NULL, 10, NULL, wait_cb, &w);
	resp = qmi_device_command_full_finish(dev, wait_run(&w), error);
	g_object_unref(w.res);
	g_main_loop_unref(w.loop);
	return resp;
}

/* The Result TLV (0x02): status, then the QMI error; NULL on success. */
static const char *
result_nick(QmiMessage *resp)
{
	guint16 len;
	const guint8 *v = qmi_message_get_raw_tlv(resp, 0x02, &len);
	const char *nick;

	if (!v || len != 4)
		return "no-result";
	if ((v[0] | v[1] << 8) == 0)
		return NULL;
	nick = qmi_protocol_error_get_string((QmiProtocolError)(v[2] | v[3] << 8));
	return nick ? nick : "unknown";
}

static gboolean
run(QmiDevice *dev, QmiClient *client, const char *cmd)
{
	g_auto(GStrv) f = g_strsplit(cmd, ":", 3);
	g_autoptr(GByteArray) bytes = g_byte_array_new();
	g_autoptr(QmiMessage) req = NULL;
	g_autoptr(QmiMessage) resp = NULL;
	g_autoptr(GError) error = NULL;
	guint8 cid = qmi_client_get_cid(client);
	guint16 txid = qmi_client_get_next_transaction_id(client);
	const char *nick;
	guint16 len;
	const guint8 *v;
	gsize o;
	guint64 ch = 0;

	if (g_strcmp0(f[0], "open") == 0 && f[1] && hex_to_bytes(f[1], bytes) && bytes->len <= 255) {
		req = qmi_message_new(QMI_SERVICE_UIM, cid, txid, 0x0042);
		tlv_u8(req, 0x01, 1);
		o = qmi_message_tlv_write_init(req, 0x10, NULL);
		qmi_message_tlv_write_guint8(req, (guint8)bytes->len, NULL);
		for (guint i = 0; i < bytes->len; i++)
			qmi_message_tlv_write_guint8(req, bytes->data[i], NULL);
		qmi_message_tlv_write_complete(req, o, NULL);
	} else if (g_strcmp0(f[0], "apdu") == 0 && f[1] && f[2] &&
		   g_ascii_string_to_unsigned(f[1], 10, 0, 19, &ch, NULL) && hex_to_bytes(f[2], bytes)) {
		req = qmi_message_new(QMI_SERVICE_UIM, cid, txid, 0x003B);
		tlv_u8(req, 0x01, 1);
		o = qmi_message_tlv_write_init(req, 0x02, NULL);
		qmi_message_tlv_write_guint16(req, QMI_ENDIAN_LITTLE, (guint16)bytes->len, NULL);
		for (guint i = 0; i < bytes->len; i++)
			qmi_message_tlv_write_guint8(req, bytes->data[i], NULL);
		qmi_message_tlv_write_complete(req, o, NULL);
		tlv_u8(req, 0x10, (guint8)ch);
	} else if (g_strcmp0(f[0], "close") == 0 && f[1] &&
		   g_ascii_string_to_unsigned(f[1], 10, 1, 19, &ch, NULL)) {
		req = qmi_message_new(QMI_SERVICE_UIM, cid, txid, 0x003F);
		tlv_u8(req, 0x01, 1);
		tlv_u8(req, 0x11, (guint8)ch);
	} else {
		fprintf(stderr, "cp-qmi-apdu: bad command '%s' (open:AID, apdu:CH:HEX, close:CH)\n", cmd);
		return FALSE;
	}
	resp = command(dev, req, &error);
	if (!resp) {
		fprintf(stderr, "cp-qmi-apdu: %s: %s\n", f[0], error->message);
		return FALSE;
	}
	nick = result_nick(resp);
	if (g_strcmp0(f[0], "open") == 0) {
		guint8 channel = 0;

		v = qmi_message_get_raw_tlv(resp, 0x10, &len);
		if (v && len == 1)
			channel = v[0];
		v = qmi_message_get_raw_tlv(resp, 0x11, &len);
		if (nick)
			printf("open error=%s", nick);
		else
			printf("open channel=%u", channel);
		if (v && len == 2)
			printf(" sw=%02X%02X", v[0], v[1]);
		printf("\n");
	} else if (g_strcmp0(f[0], "apdu") == 0) {
		v = qmi_message_get_raw_tlv(resp, 0x10, &len);
		if (nick || !v || len < 2) {
			printf("apdu error=%s\n", nick ? nick : "no-response-apdu");
		} else {
			printf("apdu ");
			for (guint i = 2; i < len; i++)
				printf("%02X", v[i]);
			printf("\n");
		}
	} else {
		printf(nick ? "close error=%s\n" : "close ok\n", nick);
	}
	fflush(stdout);
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_autoptr(GFile) file = NULL;
	g_autoptr(QmiDevice) dev = NULL;
	g_autoptr(QmiClient) client = NULL;
	g_autoptr(GError) error = NULL;
	Wait w = { 0 };
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: cp-qmi-apdu PATH open:AIDHEX|apdu:CH:HEX|close:CH ...\n");
		return 2;
	}
	w.loop = g_main_loop_new(NULL, FALSE);
	file = g_file_new_for_path(argv[1]);
	qmi_device_new(file, NULL, wait_cb, &w);
	dev = qmi_device_new_finish(wait_run(&w), &error);
	g_clear_object(&w.res);
	if (dev) {
		qmi_device_open(dev, QMI_DEVICE_OPEN_FLAGS_NONE, 10, NULL, wait_cb, &w);
		if (!qmi_device_open_finish(dev, wait_run(&w), &error))
			g_clear_object(&dev);
		g_clear_object(&w.res);
	}
	if (dev) {
		qmi_device_allocate_client(dev, QMI_SERVICE_UIM, QMI_CID_NONE, 10, NULL, wait_cb, &w);
		client = qmi_device_allocate_client_finish(dev, wait_run(&w), &error);
		g_clear_object(&w.res);
	}
	if (!client) {
		fprintf(stderr, "cp-qmi-apdu: %s: %s\n", argv[1], error->message);
		g_main_loop_unref(w.loop);
		return 1;
	}
	for (int i = 2; i < argc && rc == 0; i++)
		if (!run(dev, client, argv[i]))
			rc = 1;
	qmi_device_release_client(dev, client, QMI_DEVICE_RELEASE_CLIENT_FLAGS_RELEASE_CID, 10, NULL, wait_cb, &w);
	qmi_device_release_client_finish(dev, wait_run(&w), NULL);
	g_clear_object(&w.res);
	qmi_device_close_async(dev, 10, NULL, wait_cb, &w);
	qmi_device_close_finish(dev, wait_run(&w), NULL);
	g_clear_object(&w.res);
	g_main_loop_unref(w.loop);
	return rc;
}
