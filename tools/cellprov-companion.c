/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov-companion: the reference companion (a Linux box with an NFC
 * reader; the model for phone apps). A claim is three taps:
 *   tap 1  read the tag: certificate URL + device record
 *          -> POST /v1/provision to the SM: profile, K'', nonce
 *   tap 2  write the profile
 *   tap 3  read the receipt, verify its mac with K'', relay it to the SM
 * The owner's other commands (reprovision, transfer-token,
 * accept-transfer, decommission, devices, relay) use the SM's
 * /v1/devices endpoints and, where the device must act, the same taps.
 * K'' lives only in this process. With --tag-file the tag is a file holding
 * the NDEF message (tests, and tags read by other means). With --transport
 * ble a tap is a BLE session (docs/protocol.md section 18, cp-ble-reader.h):
 * read-tag, write-profile and read-receipt requests over one connection.
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "cp-config.h"
#include "cellprov.h"
#include "cp-glib.h"
#include "cp-ble-reader.h"
#if CP_COMPANION_NFC
#include "cp-nfc-reader.h"
#endif

static gboolean opt_json;
static int n_steps = 4;

/* How long the companion waits for the device's answer to a request over
 * BLE: at least 30 s (section 18.5: the device may be checking a profile) */
#define BLE_ANSWER_TIMEOUT_MS 30000

typedef enum {
	CMD_CLAIM,
	CMD_REPROVISION,
	CMD_TRANSFER_TOKEN,
	CMD_ACCEPT_TRANSFER,
	CMD_DECOMMISSION,
	CMD_DEVICES,
	CMD_RELAY,
} Command;

static const char *const command_names[] = {
	"claim", "reprovision", "transfer-token", "accept-transfer", "decommission", "devices", "relay",
};

typedef struct {
	/* options */
	char *sm_url;
	char *token_path;
	char *companion;
	char *sm_ca;
	char *client_cert;
	char *client_key;
	char *tag_file;
	char *profile_file;
	char *receipt_tag_file;
	char *connstring;
	char *transport;
	char *adapter;
	char *ble_device;
	guint8 ble_want[CP_DEVICE_ID_LEN];  /* --ble-device or DEVICE-ID */
	gsize ble_want_len;
	gint tap_timeout;
	gint http_timeout;
	char *apn;
	char *network_name;
	char *new_owner;
	char *transfer_token;
	Command command;
	/* what we learnt, for the report */
	char *cert_url;
	CpDeviceRecord dr;
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	char want_id_hex[2 * CP_DEVICE_ID_LEN + 1];
	GBytes *record;
	GBytes *profile;
	CpSecret *k2;
	guint64 profile_seq;
	char *supi;
	char *operation;
	gint64 binding_version;         /* -1: not known */
	gint64 replaces;                /* -1: none */
	gint64 generation;              /* -1: not known */
	gboolean is_command;            /* c->profile holds a command */
	gboolean have_receipt;
	CpReceipt receipt;
	GBytes *receipt_bytes;
	/* the SM's answers to the other commands */
	char *token;
	gint64 expires;
	char *new_owner_name;
	JsonNode *devices;
	gboolean relayed;
	char *relay_result;
	char *relay_action;
	char *relay_error;
	/* failure */
	int failed_step;
	char *error_code;
	int error_number;
	char *error_message;
	char *error_hint;
#if CP_COMPANION_NFC
	CpNfcReader *reader;
#endif
	CpBleReader *ble;
} Companion;

static void
say(int step, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
say(int step, const char *fmt, ...)
{
	g_autofree char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* with -J stdout holds the one JSON object; progress is still worth
	 * having in a log */
	if (opt_json)
		g_printerr("(%d/%d) %s\n", step, n_steps, text);
	else
		g_print("(%d/%d) %s\n", step, n_steps, text);
}

static gboolean
fail(Companion *c, int step, const char *code, int number, const char *hint, const char *fmt, ...) G_GNUC_PRINTF(6, 7);

static gboolean
fail(Companion *c, int step, const char *code, int number, const char *hint, const char *fmt, ...)
{
	va_list ap;

	/* a retried step may have failed before */
	g_free(c->error_code);
	g_free(c->error_hint);
	g_free(c->error_message);
	c->failed_step = step;
	c->error_code = g_strdup(code);
	c->error_number = number;
	c->error_hint = g_strdup(hint);
	va_start(ap, fmt);
	c->error_message = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return FALSE;
}

/* What the user should do about each error the SM can give. */
static const char *
sm_hint(const char *code)
{
	static const struct { const char *code, *hint; } hints[] = {
		{ "unauthorized", "the SM does not know this companion: check --token" },
		{ "companion-mismatch", "--companion does not match the token's subscription" },
		{ "unknown-companion", "the operator holds no subscription for this companion that can add devices" },
		{ "stale-attestation", "tap the device again: the SM needs a freshly read device record" },
		{ "already-claimed", "the device belongs to another owner: its current owner or the operator must release it first" },
		{ "signature", "the device record is not signed by the certified key: the tag may be forged" },
		{ "device-id-mismatch", "the tag's certificate URL does not belong to this device" },
		{ "untrusted-chain", "the operator does not trust this device's manufacturer" },
		{ "certificate-expired", "the device certificate has expired: contact the manufacturer" },
		{ "certificate-not-yet-valid", "the device certificate is not valid yet: check the SM's clock" },
		{ "key-usage", "the device certificate is not fit for provisioning: contact the manufacturer" },
		{ "key-type", "the device certificate is not fit for provisioning: contact the manufacturer" },
		{ "chain-fetch-timeout", "the manufacturer's certificate server did not answer: try again later" },
		{ "chain-fetch-failed", "the SM could not fetch the device's certificate chain (the SM's log says why): try again later or tell the operator" },
		{ "chain-fetch-status", "the manufacturer's certificate server does not know this device" },
		{ "chain-too-large", "the manufacturer's certificate server sent too much" },
		{ "chain-garbage", "the manufacturer's certificate server did not send a certificate chain" },
		{ "insecure-url", "the tag's certificate URL is not https://" },
		{ "bad-url", "the tag's certificate URL is not one a device presents: the tag may be forged" },
		{ "url-not-allowed", "the operator does not accept this manufacturer's certificate server" },
		{ "suite", "the device offers no encryption suite the operator supports" },
		{ "ausf-failed", "the operator's network side failed: try again later" },
		{ "supi-range-exhausted", "the operator has no subscriber identity left to give" },
		{ "body-too-large", "the tag's content is larger than the SM accepts" },
		{ "not-owner", "this companion does not own the device: only its owner (or the operator) can do this" },
		{ "unknown-device", "the SM has never bound this device: check DEVICE-ID (32 hex, see `devices`) or claim it first" },
		{ "bad-token", "the transfer token is unknown, used, expired, for another companion, or the binding changed: "
			       "ask the owner for a new one" },
		{ "releasing", "a decommission of this device is under way: finish it (tap the device and relay its receipt) "
			       "or wait for the operator's decommission-timeout" },
		{ "busy", "a claim of this device is under way: try again in a moment" },
		{ "no-device-key", "the device was bound before the SM kept device keys: claim it again with a tap" },
		{ "unknown-owner", "--new-owner must be a companion name the operator knows" },
		{ "bad-request", "check the command's arguments (see --help)" },
		{ "unknown-message", "the SM issued no profile or command with the receipt's sequence number: "
				     "the tag holds an older receipt" },
		{ "storage", "the SM's database failed: try again later or tell the operator" },
		{ "internal", "the SM failed: try again later or tell the operator" },
		{ "not-found", "--sm names a server that does not offer this request: check the URL" },
		{ "method-not-allowed", "--sm names a server that does not offer this request: check the URL" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(hints); i++)
		if (strcmp(hints[i].code, code) == 0)
			return hints[i].hint;
	return NULL;
}

/* ---- JSON members that do not abort on a wrong type ---- */

static const char *
json_str(JsonObject *o, const char *name)
{
	JsonNode *n = json_object_get_member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

static GBytes *
json_b64(JsonObject *o, const char *name, gsize max)
{
	const char *s = json_str(o, name);
	gsize len = 0;
	guchar *data;

	if (!s || !*s || strlen(s) % 4 || strlen(s) > 4 * ((max + 2) / 3))
		return NULL;
	data = g_base64_decode(s, &len);
	if (!data || len == 0 || len > max) {
		g_free(data);
		return NULL;
	}
	return g_bytes_new_take(data, len);
}

/* ---- BLE: a tap is a request in a session ---- */

static const char *
ble_hint(const GError *e)
{
	if (e->domain == CP_ERROR) {
		if (e->code == CP_ERR_BUSY)
			return "the device is being provisioned (perhaps over its other transport): wait and try again";
		if ((e->code & 0xff00) == 0x0700)
			return "move closer and try again";
		return NULL;
	}
	if (e->domain != CP_BLE_READER_ERROR)
		return NULL;
	switch ((CpBleReaderError)e->code) {
	case CP_BLE_READER_ERROR_NO_BLUEZ:
		return "start bluetoothd (systemctl start bluetooth)";
	case CP_BLE_READER_ERROR_NO_ADAPTER:
		return "check --adapter: `bluetoothctl list` shows the adapters";
	case CP_BLE_READER_ERROR_ADAPTER_OFF:
		return "power the adapter on: bluetoothctl power on";
	case CP_BLE_READER_ERROR_NOT_FOUND:
		return "open the device's provisioning window (its button, or cellprovctl) and come within a few metres";
	case CP_BLE_READER_ERROR_CONNECT:
	case CP_BLE_READER_ERROR_TIMEOUT:
		return "move closer and try again";
	case CP_BLE_READER_ERROR_NO_SERVICE:
		return "this is not a cellprov device, or its provisioning window has closed";
	case CP_BLE_READER_ERROR_LINK_LOST:
		return "the link dropped: move closer and try again; what was being sent can be sent again";
	case CP_BLE_READER_ERROR_REFUSED:
		return "try again; if it repeats, restart the device's provisioning window";
	case CP_BLE_READER_ERROR_BUSY:
		return "the device is serving another phone: try again when it is done";
	}
	return NULL;
}

static gboolean
ble_fail(Companion *c, int step, const GError *e, const char *what)
{
	const char *code = e->domain == CP_BLE_READER_ERROR ? cp_ble_reader_error_name(e->code)
			   : e->domain == CP_ERROR ? cp_error_name((CpError)e->code) : "ble";

	return fail(c, step, code, e->domain == CP_ERROR ? e->code : 0, ble_hint(e), "%s: %s", what, e->message);
}

/* The session: the one running, or a new one with the device. */
static gboolean
ble_session(Companion *c, int step, GError **error)
{
	g_auto(GStrv) seen = NULL;
	CpBleReaderStats st;
	char want[2 * CP_DEVICE_ID_LEN + 1];
	gsize scan_len = MIN(c->ble_want_len, 5);

	if (cp_ble_reader_is_connected(c->ble))
		return TRUE;
	cp_hex_encode(c->ble_want, c->ble_want_len, want);
	say(step, "looking for %s%s over Bluetooth LE on %s (waiting %d s)", c->ble_want_len ? "device " : "a cellprov device",
	    c->ble_want_len ? want : "", cp_ble_reader_adapter(c->ble), c->tap_timeout);
	if (!cp_ble_reader_connect(c->ble, c->ble_want, scan_len, (guint)c->tap_timeout * 1000, &seen, error))
		return FALSE;
	if (!c->ble_want_len && g_strv_length(seen) > 1) {
		g_autofree char *others = g_strjoinv(", ", seen + 1);

		say(step, "several cellprov devices advertise: taking %s, not %s (choose with --ble-device)", seen[0], others);
	}
	cp_ble_reader_get_stats(c->ble, &st);
	say(step, "connected to device %s... (ATT MTU %u)", seen[0], st.mtu);
	return TRUE;
}

/* read-tag or read-receipt: the response's NDEF message (empty: none) */
static GBytes *
ble_read(Companion *c, int step, guint8 op)
{
	g_autoptr(GError) error = NULL;
	GBytes *b;

	if (!ble_session(c, step, &error) ||
	    !(b = cp_ble_reader_request(c->ble, op, NULL, 0, BLE_ANSWER_TIMEOUT_MS, &error))) {
		ble_fail(c, step, error, op == CP_BLE_OP_READ_TAG ? "reading the tag over BLE failed"
								  : "reading the receipt over BLE failed");
		return NULL;
	}
	return b;
}

/* ---- the tag: a file, the NFC reader or BLE ---- */

static GBytes *
tag_read(Companion *c, int step, const char *file, gboolean wait, gboolean receipt)
{
	g_autoptr(GError) error = NULL;

	if (!file && c->ble)
		return ble_read(c, step, receipt ? CP_BLE_OP_READ_RECEIPT : CP_BLE_OP_READ_TAG);

	if (file) {
		gint64 deadline = g_get_monotonic_time() + (gint64)c->tap_timeout * G_USEC_PER_SEC;
		char *data;
		gsize len;

		/* A file that is not there yet is a tag not yet in the field */
		while (wait && !g_file_test(file, G_FILE_TEST_EXISTS) && g_get_monotonic_time() < deadline)
			g_usleep(50 * 1000);
		if (!g_file_get_contents(file, &data, &len, &error)) {
			fail(c, step, "tag-read", 0, wait ? "no tag was presented in time: tap the device again" : NULL,
			     "cannot read the tag: %s", error->message);
			return NULL;
		}
		return g_bytes_new_take(data, len);
	}
#if CP_COMPANION_NFC
	{
		GBytes *b;

		say(step, "hold the phone to the device (waiting %d s)", c->tap_timeout);
		if (!cp_nfc_reader_wait_target(c->reader, (guint)c->tap_timeout * 1000, &error) ||
		    !cp_nfc_reader_select(c->reader, &error) ||
		    !(b = cp_nfc_reader_read_ndef(c->reader, &error))) {
			cp_nfc_reader_release(c->reader);
			fail(c, step, error->domain == CP_NFC_ERROR ? cp_nfc_error_name(error->code) : "tag-read",
			     error->domain == CP_ERROR ? error->code : 0,
			     "tap the device again and hold still until it is done",
			     "reading the tag failed: %s", error->message);
			return NULL;
		}
		cp_nfc_reader_release(c->reader);
		return b;
	}
#else
	fail(c, step, "no-nfc", 0, "use --tag-file", "this build has no NFC support");
	return NULL;
#endif
}

static gboolean
tag_write(Companion *c, int step, const uint8_t *ndef, gsize len)
{
	g_autoptr(GError) error = NULL;

	if (c->profile_file) {
		if (!cp_file_replace(c->profile_file, ndef, len, 0600, &error))
			return fail(c, step, "tag-write", 0, NULL, "cannot write the %s: %s",
				    c->is_command ? "command" : "profile", error->message);
		return TRUE;
	}
	if (c->ble) {
		g_autoptr(GBytes) answer = NULL;

		if (!ble_session(c, step, &error) ||
		    !(answer = cp_ble_reader_request(c->ble, CP_BLE_OP_WRITE_PROFILE, ndef, len,
						     BLE_ANSWER_TIMEOUT_MS, &error)))
			return ble_fail(c, step, error, c->is_command ? "writing the command over BLE failed"
								     : "writing the profile over BLE failed");
		return TRUE;
	}
#if CP_COMPANION_NFC
	say(step, "hold the phone to the device%s to write the %s (waiting %d s)", c->record ? " again" : "",
	    c->is_command ? "command" : "profile", c->tap_timeout);
	if (!cp_nfc_reader_wait_target(c->reader, (guint)c->tap_timeout * 1000, &error) ||
	    !cp_nfc_reader_select(c->reader, &error) ||
	    !cp_nfc_reader_write_ndef(c->reader, ndef, len, &error)) {
		cp_nfc_reader_release(c->reader);
		return fail(c, step, error->domain == CP_NFC_ERROR ? cp_nfc_error_name(error->code) : "tag-write",
			    error->domain == CP_ERROR ? error->code : 0,
			    "tap again: the message is still valid and can be written again",
			    "writing the %s failed: %s", c->is_command ? "command" : "profile", error->message);
	}
	cp_nfc_reader_release(c->reader);
	return TRUE;
#else
	return fail(c, step, "no-nfc", 0, "use --profile-file", "this build has no NFC support");
#endif
}

/* ---- step 1: read the tag ---- */

static gboolean
step_read_tag(Companion *c)
{
	g_autoptr(GBytes) tag = NULL;
	CpNdefMessage msg;
	const CpNdefRecord *rec;
	char *uri = NULL;
	gsize len;
	const uint8_t *data;
	CpError err;

	tag = tag_read(c, 1, c->tag_file, FALSE, FALSE);
	if (!tag)
		return FALSE;
	data = g_bytes_get_data(tag, &len);
	err = cp_ndef_parse(data, len, &msg);
	if (err != CP_OK)
		return fail(c, 1, cp_error_name(err), err, "this is not a cellprov device's tag",
			    "the tag holds no valid NDEF message: %s", cp_error_message(err));
	err = cp_ndef_find_uri(&msg, &uri);
	if (err != CP_OK)
		return fail(c, 1, cp_error_name(err), err, "this is not a cellprov device's tag",
			    "the tag has no certificate URL: %s", cp_error_message(err));
	c->cert_url = g_strdup(uri);
	free(uri);
	rec = cp_ndef_find_mime(&msg, CP_MIME_DEVICE);
	if (!rec)
		return fail(c, 1, cp_error_name(CP_ERR_NDEF_NO_RECORD), CP_ERR_NDEF_NO_RECORD,
			    "this is not a cellprov device's tag", "the tag has no device record");
	err = cp_device_record_decode(rec->payload, rec->payload_len, &c->dr);
	if (err != CP_OK)
		return fail(c, 1, cp_error_name(err), err, "the device's tag content is broken",
			    "the device record is malformed: %s", cp_error_message(err));
	c->record = g_bytes_new(rec->payload, rec->payload_len);
	cp_hex_encode(c->dr.device_id, CP_DEVICE_ID_LEN, c->id_hex);
	/* over BLE, the device chosen by its advertisement must be the one
	 * whose tag content this is */
	if (c->ble && !c->tag_file &&
	    (memcmp(c->dr.device_id, cp_ble_reader_device_prefix(c->ble), 5) != 0 ||
	     memcmp(c->dr.device_id, c->ble_want, c->ble_want_len) != 0))
		return fail(c, 1, cp_error_name(CP_ERR_WRONG_DEVICE), CP_ERR_WRONG_DEVICE,
			    "check --ble-device against the device's label",
			    "the device that answered is %s, not the one advertised or asked for", c->id_hex);
	say(1, "read device %s (%s %s, serial %s)", c->id_hex, c->dr.manufacturer, c->dr.model, c->dr.serial);
	return TRUE;
}

/* ---- the SM ---- */

/*
 * One request to the SM with this companion's credential: the answer's JSON
 * object (owned by *parser), or NULL with c's error set for step. body NULL:
 * no body (GET). Bytes of the answer (it may hold K'') are cleansed.
 */
static JsonObject *
sm_call(Companion *c, int step, const char *method, const char *path, JsonNode *body, JsonParser **parser)
{
	g_autoptr(SoupSession) session = NULL;
	g_autoptr(SoupMessage) m = NULL;
	g_autoptr(GBytes) answer = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CpSecret) token = NULL;
	g_autofree char *url = NULL, *auth = NULL;
	JsonObject *o;
	JsonNode *n;
	guint status;
	gboolean parsed;

	if (c->token_path) {
		token = cp_secret_load(c->token_path, FALSE, 0, &error);
		if (!token) {
			fail(c, step, "token", 0, "--token names the file holding this companion's SM token",
			     "%s", error->message);
			return NULL;
		}
	}
	session = soup_session_new_with_options("timeout", c->http_timeout,
						"user-agent", "cellprov-companion/" CP_VERSION, NULL);
	if (c->sm_ca) {
		g_autoptr(GTlsDatabase) db = g_tls_file_database_new(c->sm_ca, &error);

		if (!db) {
			fail(c, step, "sm-ca", 0, NULL, "--sm-ca %s: %s", c->sm_ca, error->message);
			return NULL;
		}
		soup_session_set_tls_database(session, db);
	}
	url = g_strconcat(c->sm_url, g_str_has_suffix(c->sm_url, "/") ? "" : "/", path, NULL);
	m = soup_message_new(method, url);
	if (!m) {
		fail(c, step, "sm-url", 0, NULL, "--sm '%s' is not a URL", c->sm_url);
		return NULL;
	}
	if (body) {
		g_autoptr(JsonGenerator) gen = json_generator_new();
		g_autoptr(GBytes) bytes = NULL;
		char *text;
		gsize len;

		json_generator_set_root(gen, body);
		text = json_generator_to_data(gen, &len);
		bytes = g_bytes_new_take(text, len);
		soup_message_set_request_body_from_bytes(m, "application/json", bytes);
	}
	if (token) {
		auth = g_strdup_printf("Bearer %.*s", (int)token->len, (const char *)token->data);
		soup_message_headers_replace(soup_message_get_request_headers(m), "Authorization", auth);
		cp_cleanse(auth, strlen(auth));
	}
	if (c->client_cert) {
		g_autoptr(GTlsCertificate) cert = NULL;

		if (c->client_key)
			cert = g_tls_certificate_new_from_files(c->client_cert, c->client_key, &error);
		else
			cert = g_tls_certificate_new_from_file(c->client_cert, &error);
		if (!cert) {
			fail(c, step, "client-cert", 0, "--client-cert wants a PEM certificate and its key",
			     "%s", error->message);
			return NULL;
		}
		soup_message_set_tls_client_certificate(m, cert);
	}

	answer = soup_session_send_and_read(session, m, NULL, &error);
	if (!answer) {
		fail(c, step, "sm-unreachable", 0, "check the network and --sm",
		     "the subscription manager cannot be reached: %s", error->message);
		return NULL;
	}
	status = soup_message_get_status(m);
	*parser = json_parser_new_immutable();
	parsed = json_parser_load_from_data(*parser, g_bytes_get_data(answer, NULL),
					    (gssize)g_bytes_get_size(answer), NULL);
	/* the answer's text may hold K'': the parsed copy is ours alone */
	cp_cleanse((void *)g_bytes_get_data(answer, NULL), g_bytes_get_size(answer));
	if (!parsed || !(n = json_parser_get_root(*parser)) || !JSON_NODE_HOLDS_OBJECT(n)) {
		fail(c, step, "sm-protocol", 0, NULL, "the SM answered %u without JSON", status);
		return NULL;
	}
	o = json_node_get_object(n);
	if (status != SOUP_STATUS_OK) {
		JsonObject *e = json_object_has_member(o, "error") && JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "error"))
				? json_object_get_object_member(o, "error") : NULL;
		const char *code = e ? json_str(e, "code") : NULL;
		const char *message = e ? json_str(e, "message") : NULL;
		JsonNode *nn = e ? json_object_get_member(e, "number") : NULL;
		int number = nn && JSON_NODE_HOLDS_VALUE(nn) && json_node_get_value_type(nn) == G_TYPE_INT64
			     ? (int)json_node_get_int(nn) : 0;

		fail(c, step, code ? code : "sm-protocol", number, code ? sm_hint(code) : NULL,
		     "the subscription manager refused (%u): %s", status, message ? message : "no reason given");
		return NULL;
	}
	return o;
}

static gint64
json_int(JsonObject *o, const char *name, gint64 none)
{
	JsonNode *n = json_object_get_member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
		return none;
	return json_node_get_int(n);
}

/* "devices/<id>/<action>" */
static char *
device_path(Companion *c, const char *action)
{
	return g_strconcat("v1/devices/", c->id_hex, "/", action, NULL);
}

/* An answer as /v1/provision's: the profile and K''. */
static gboolean
take_profile(Companion *c, int step, JsonObject *o)
{
	GBytes *k2;

	c->profile = json_b64(o, "profile", CP_RECORD_MAX);
	k2 = json_b64(o, "k2", CP_KDF_LEN);
	if (!c->profile || !k2 || g_bytes_get_size(k2) != CP_KDF_LEN) {
		if (k2)
			g_bytes_unref(k2);
		return fail(c, step, "sm-protocol", 0, NULL, "the SM's answer lacks the profile or K''");
	}
	c->k2 = cp_secret_new_from(g_bytes_get_data(k2, NULL), CP_KDF_LEN);
	cp_cleanse((void *)g_bytes_get_data(k2, NULL), CP_KDF_LEN);
	g_bytes_unref(k2);
	c->supi = g_strdup(json_str(o, "supi"));
	c->operation = g_strdup(json_str(o, "operation"));
	c->binding_version = json_int(o, "binding-version", -1);
	c->replaces = json_int(o, "replaces", -1);
	c->generation = json_int(o, "generation", -1);
	if (!c->k2)
		return FALSE;
	say(step, "the SM answered: a %s profile (%zu bytes) and K'', kept in memory only",
	    c->operation ? c->operation : "claim", g_bytes_get_size(c->profile));
	return TRUE;
}

/* claim, step 2: POST /v1/provision with the tag's content */
static gboolean
step_call_sm(Companion *c)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *rec_b64 = NULL;
	JsonObject *o;

	rec_b64 = g_base64_encode(g_bytes_get_data(c->record, NULL), g_bytes_get_size(c->record));
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "certificate-url");
	json_builder_add_string_value(b, c->cert_url);
	json_builder_set_member_name(b, "device-record");
	json_builder_add_string_value(b, rec_b64);
	if (c->companion) {
		json_builder_set_member_name(b, "companion");
		json_builder_add_string_value(b, c->companion);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	say(2, "asking the subscription manager at %s", c->sm_url);
	o = sm_call(c, 2, SOUP_METHOD_POST, "v1/provision", root, &parser);
	return o && take_profile(c, 2, o);
}

/* reprovision, step 1: a profile without a tap */
static gboolean
step_reprovision(Companion *c)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *path = device_path(c, "reprovision");
	JsonObject *o;

	json_builder_begin_object(b);
	if (c->apn) {
		json_builder_set_member_name(b, "apn");
		json_builder_add_string_value(b, c->apn);
	}
	if (c->network_name) {
		json_builder_set_member_name(b, "network-name");
		json_builder_add_string_value(b, c->network_name);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	say(1, "asking the subscription manager at %s to re-provision %s", c->sm_url, c->id_hex);
	o = sm_call(c, 1, SOUP_METHOD_POST, path, root, &parser);
	return o && take_profile(c, 1, o);
}

/* accept-transfer: the token, with the tag's content when it was read */
static gboolean
step_accept_transfer(Companion *c, int step)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *path = device_path(c, "accept-transfer");
	JsonObject *o;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "token");
	json_builder_add_string_value(b, c->transfer_token);
	if (c->record) {
		g_autofree char *rec_b64 = g_base64_encode(g_bytes_get_data(c->record, NULL),
							   g_bytes_get_size(c->record));

		json_builder_set_member_name(b, "certificate-url");
		json_builder_add_string_value(b, c->cert_url);
		json_builder_set_member_name(b, "device-record");
		json_builder_add_string_value(b, rec_b64);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	say(step, "presenting the transfer token to the subscription manager at %s%s", c->sm_url,
	    c->record ? " with the device's tag" : "");
	o = sm_call(c, step, SOUP_METHOD_POST, path, root, &parser);
	return o && take_profile(c, step, o);
}

/* decommission, step 1: the operator-signed command */
static gboolean
step_decommission(Companion *c)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *path = device_path(c, "decommission");
	JsonObject *o;

	json_builder_begin_object(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	say(1, "asking the subscription manager at %s to decommission %s", c->sm_url, c->id_hex);
	o = sm_call(c, 1, SOUP_METHOD_POST, path, root, &parser);
	if (!o)
		return FALSE;
	c->profile = json_b64(o, "command", CP_RECORD_MAX);
	if (!c->profile)
		return fail(c, 1, "sm-protocol", 0, NULL, "the SM's answer lacks the command");
	c->is_command = TRUE;
	c->operation = g_strdup("decommission");
	c->binding_version = json_int(o, "binding-version", -1);
	say(1, "the SM answered: a signed decommission command (%zu bytes); the device is releasing",
	    g_bytes_get_size(c->profile));
	return TRUE;
}

/* transfer-token: one step */
static gboolean
step_transfer_token(Companion *c)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *path = device_path(c, "transfer-token");
	JsonObject *o;
	const char *token;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "new-owner");
	json_builder_add_string_value(b, c->new_owner);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	say(1, "asking the subscription manager at %s for a transfer token", c->sm_url);
	o = sm_call(c, 1, SOUP_METHOD_POST, path, root, &parser);
	if (!o)
		return FALSE;
	token = json_str(o, "token");
	c->expires = json_int(o, "expires", -1);
	if (!token || c->expires < 0)
		return fail(c, 1, "sm-protocol", 0, NULL, "the SM's answer lacks the token or its expiry");
	c->token = g_strdup(token);
	c->new_owner_name = g_strdup(json_str(o, "new-owner") ? json_str(o, "new-owner") : c->new_owner);
	return TRUE;
}

/* devices: one step */
static gboolean
step_devices(Companion *c)
{
	g_autoptr(JsonParser) parser = NULL;
	JsonObject *o;
	JsonNode *n;

	say(1, "asking the subscription manager at %s for this companion's devices", c->sm_url);
	o = sm_call(c, 1, SOUP_METHOD_GET, "v1/devices", NULL, &parser);
	if (!o)
		return FALSE;
	n = json_object_get_member(o, "devices");
	if (!n || !JSON_NODE_HOLDS_ARRAY(n))
		return fail(c, 1, "sm-protocol", 0, NULL, "the SM's answer lacks the device list");
	c->devices = json_node_copy(n);
	return TRUE;
}

/* ---- write the profile (or the command) ---- */

static gboolean
step_write_profile(Companion *c, int step)
{
	cp_auto_buf ndef = CP_BUF_INIT;
	CpNdefMessage msg = { 0 };
	const char *what = c->is_command ? "command" : "profile";
	gsize len;
	const uint8_t *data = g_bytes_get_data(c->profile, &len);
	CpError err;

	/* The companion cannot check the mac (no K_prof) nor need it check the
	 * operator's signature (the device does), but it does not carry a
	 * message for another device to the tag */
	if (c->is_command) {
		CpCommand cmd;

		err = cp_command_decode(data, len, &cmd);
		if (err == CP_OK) {
			c->profile_seq = cmd.seq;
			err = memcmp(cmd.device_id, c->dr.device_id, CP_DEVICE_ID_LEN) ? CP_ERR_WRONG_DEVICE : CP_OK;
		}
	} else {
		CpProfile p;

		err = cp_profile_decode(data, len, &p);
		if (err == CP_OK) {
			c->profile_seq = p.profile_seq;
			err = memcmp(p.device_id, c->dr.device_id, CP_DEVICE_ID_LEN) ? CP_ERR_WRONG_DEVICE : CP_OK;
		}
		cp_cleanse(&p, sizeof(p));
	}
	if (err == CP_ERR_WRONG_DEVICE)
		return fail(c, step, cp_error_name(err), err, NULL, "the SM's %s is for another device", what);
	if (err != CP_OK)
		return fail(c, step, cp_error_name(err), err, NULL, "the SM's %s is malformed: %s", what, cp_error_message(err));
	msg.n_records = 1;
	cp_ndef_record_mime(&msg.records[0], c->is_command ? CP_MIME_COMMAND : CP_MIME_PROFILE, data, len);
	err = cp_ndef_encode(&msg, &ndef);
	if (err != CP_OK)
		return fail(c, step, cp_error_name(err), err, NULL, "cannot encode the %s: %s", what, cp_error_message(err));
	if (!tag_write(c, step, ndef.data, ndef.len))
		return FALSE;
	say(step, "wrote %s %" G_GUINT64_FORMAT " (%zu bytes)", what, c->profile_seq, len);
	return TRUE;
}

/* ---- step 4: the receipt ---- */

static const char *
receipt_status_name(uint8_t s)
{
	switch (s) {
	case CP_RECEIPT_ACCEPTED: return "accepted";
	case CP_RECEIPT_PROVISIONED: return "provisioned";
	case CP_RECEIPT_REJECTED: return "rejected";
	case CP_RECEIPT_FAILED: return "failed";
	case CP_RECEIPT_DECOMMISSIONED: return "decommissioned";
	}
	return "unknown";
}

/*
 * The receipt record on the tag when it is for the profile just written.
 * A MAC'd receipt names its profile_seq; an unMAC'd one (the device could
 * not authenticate what it got) names the seq it decoded, or 0 when it
 * could not tell: anything else is an older attempt's.
 */
static const CpNdefRecord *
receipt_for_us(Companion *c, const CpNdefMessage *msg)
{
	const CpNdefRecord *rec = cp_ndef_find_mime(msg, CP_MIME_RECEIPT);
	CpReceipt r;

	if (!rec || cp_receipt_decode(rec->payload, rec->payload_len, &r) != CP_OK)
		return rec;
	if (memcmp(r.device_id, c->dr.device_id, CP_DEVICE_ID_LEN) != 0 ||
	    (r.has_mac && r.profile_seq != c->profile_seq) ||
	    (!r.has_mac && r.profile_seq != 0 && r.profile_seq != c->profile_seq))
		return NULL;
	return rec;
}

/* An "accepted" receipt MAC'd with our K'': the device is still at work.
 * Without K'' (a command) the SM checks the receipt: its status suffices. */
static gboolean
receipt_is_accepted(Companion *c, const CpNdefRecord *rec)
{
	CpReceipt r;

	if (!c->k2)
		return cp_receipt_decode(rec->payload, rec->payload_len, &r) == CP_OK &&
		       r.status == CP_RECEIPT_ACCEPTED;
	return cp_receipt_verify(rec->payload, rec->payload_len, c->k2, &r) == CP_OK &&
	       r.status == CP_RECEIPT_ACCEPTED;
}

static gboolean
step_read_receipt(Companion *c, int step)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)c->tap_timeout * G_USEC_PER_SEC;
	g_autoptr(GBytes) tag = NULL;
	CpNdefMessage msg;
	const CpNdefRecord *rec;
	const uint8_t *data;
	gsize len;
	CpError err;
	gboolean said_accepted = FALSE;

	if (c->profile_file && !c->receipt_tag_file) {
		say(step, "no --receipt-tag-file: not waiting for the receipt");
		return TRUE;
	}
	/*
	 * The device writes its receipt once it has provisioned the modem
	 * and registered, which takes a while: a tag without it yet, or
	 * with "accepted" only, is read again on the next tap, until the
	 * tap timeout. Over NFC a read that fails (the phone moved, the
	 * device restarted) is retried the same way.
	 */
	for (;;) {
		gboolean last = c->receipt_tag_file || g_get_monotonic_time() >= deadline;

		g_clear_pointer(&tag, g_bytes_unref);
		tag = tag_read(c, step, c->receipt_tag_file, TRUE, TRUE);
		if (!tag) {
			if (last)
				return FALSE;
			say(step, "%s: %s again", c->error_message, c->ble ? "asking" : "tapping");
			g_usleep(c->ble ? G_USEC_PER_SEC : 500 * 1000);
			continue;
		}
		data = g_bytes_get_data(tag, &len);
		/* over BLE, read-receipt answers without a body when the device
		 * has no receipt yet */
		if (len == 0 && c->ble) {
			msg.n_records = 0;
			err = CP_OK;
		} else {
			err = cp_ndef_parse(data, len, &msg);
		}
		if (err != CP_OK) {
			fail(c, step, cp_error_name(err), err, "tap the device again",
			     "the tag holds no valid NDEF message: %s", cp_error_message(err));
			if (last)
				return FALSE;
			say(step, "%s: tapping again", c->error_message);
			g_usleep(500 * 1000);
			continue;
		}
		rec = receipt_for_us(c, &msg);
		if (rec && (last || !receipt_is_accepted(c, rec)))
			break;
		if (last)
			return fail(c, step, "no-receipt", CP_ERR_NDEF_NO_RECORD, "wait a moment and tap the device again",
				    "the device has not written a receipt for this profile yet");
		if (rec && !said_accepted) {
			say(step, "the device accepted the profile and is provisioning: waiting for the result");
			said_accepted = TRUE;
		} else if (!rec) {
			say(step, c->ble ? "no receipt yet: asking again" : "no receipt yet: tap the device again");
		}
		/* over BLE no more often than once a second (section 18.6) */
		g_usleep(c->ble ? G_USEC_PER_SEC : 500 * 1000);
	}
	c->receipt_bytes = g_bytes_new(rec->payload, rec->payload_len);
	if (!c->k2) {
		/* a command's receipt: MAC'd with the K'' of the owner's claim,
		 * which this process never had; the SM checks the device's
		 * signature when it is relayed */
		err = cp_receipt_decode(rec->payload, rec->payload_len, &c->receipt);
		if (err != CP_OK)
			return fail(c, step, cp_error_name(err), err, "tap the device again",
				    "the receipt is malformed: %s", cp_error_message(err));
		c->have_receipt = TRUE;
		if (c->receipt.status != CP_RECEIPT_DECOMMISSIONED)
			return fail(c, step, cp_error_name(c->receipt.reason), c->receipt.reason, NULL,
				    "the device refused the command (%s): %s", receipt_status_name(c->receipt.status),
				    cp_error_message(c->receipt.reason));
		say(step, "receipt read: %s (the SM checks the device's signature)",
		    receipt_status_name(c->receipt.status));
		return TRUE;
	}
	err = cp_receipt_verify(rec->payload, rec->payload_len, c->k2, &c->receipt);
	if (err == CP_ERR_NO_MAC) {
		cp_receipt_decode(rec->payload, rec->payload_len, &c->receipt);
		c->have_receipt = TRUE;
		return fail(c, step, cp_error_name(c->receipt.reason), c->receipt.reason,
			    "the device could not authenticate the profile; ask the SM for a new one",
			    "the device rejected the profile: %s", cp_error_message(c->receipt.reason));
	}
	if (err != CP_OK)
		return fail(c, step, cp_error_name(err), err, "the receipt is not from this provisioning: tap again",
			    "the receipt does not verify: %s", cp_error_message(err));
	c->have_receipt = TRUE;
	if (c->receipt.status == CP_RECEIPT_REJECTED || c->receipt.status == CP_RECEIPT_FAILED)
		return fail(c, step, cp_error_name(c->receipt.reason), c->receipt.reason, NULL,
			    "the device %s the profile: %s",
			    c->receipt.status == CP_RECEIPT_REJECTED ? "rejected" : "could not apply",
			    cp_error_message(c->receipt.reason));
	say(step, "receipt verified: %s%s%s", receipt_status_name(c->receipt.status),
	    c->receipt.has_registration ? ", registered on " : "",
	    c->receipt.has_registration ? c->receipt.registration : "");
	return TRUE;
}

/* ---- relay the receipt to the SM ---- */

static const char *
relay_action_text(const char *action)
{
	if (!g_strcmp0(action, "retired-older-keys"))
		return "the network retired the device's older keys";
	if (!g_strcmp0(action, "removed-previous-owner"))
		return "the network removed the previous owner's subscription";
	if (!g_strcmp0(action, "released"))
		return "the device is released: anyone may claim it again";
	return NULL;
}

/*
 * The device's signed receipt to the SM (POST /v1/devices/{id}/receipt): the
 * SM learns the outcome only from it. The error stays in c->relay_error as
 * well, for a claim, which does not fail on it.
 */
static gboolean
step_relay(Companion *c, int step)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *path = device_path(c, "receipt");
	g_autofree char *b64 = NULL;
	const char *text;
	JsonObject *o;

	if (!c->receipt_bytes)
		return TRUE;
	b64 = g_base64_encode(g_bytes_get_data(c->receipt_bytes, NULL), g_bytes_get_size(c->receipt_bytes));
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "receipt");
	json_builder_add_string_value(b, b64);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	o = sm_call(c, step, SOUP_METHOD_POST, path, root, &parser);
	if (!o) {
		c->relay_error = g_strdup(c->error_message);
		return FALSE;
	}
	c->relayed = TRUE;
	c->relay_result = g_strdup(json_str(o, "result"));
	c->relay_action = g_strdup(json_str(o, "action"));
	text = relay_action_text(c->relay_action);
	say(step, "receipt relayed to the SM: %s%s%s",
	    c->relay_result ? c->relay_result : "processed", text ? "; " : "", text ? text : "");
	return TRUE;
}

/* relay: the receipt on the tag, whatever it is for */
static gboolean
step_read_any_receipt(Companion *c)
{
	g_autoptr(GBytes) tag = NULL;
	CpNdefMessage msg;
	const CpNdefRecord *rec;
	const uint8_t *data;
	gsize len;
	CpError err;

	tag = tag_read(c, 1, c->tag_file, FALSE, TRUE);
	if (!tag)
		return FALSE;
	data = g_bytes_get_data(tag, &len);
	if (len == 0 && c->ble)
		return fail(c, 1, "no-receipt", CP_ERR_NDEF_NO_RECORD, "the device has nothing to report",
			    "the device holds no receipt");
	err = cp_ndef_parse(data, len, &msg);
	if (err != CP_OK)
		return fail(c, 1, cp_error_name(err), err, "this is not a cellprov device's tag",
			    "the tag holds no valid NDEF message: %s", cp_error_message(err));
	rec = cp_ndef_find_mime(&msg, CP_MIME_RECEIPT);
	if (!rec)
		return fail(c, 1, "no-receipt", CP_ERR_NDEF_NO_RECORD, "the device has nothing to report",
			    "the tag holds no receipt");
	err = cp_receipt_decode(rec->payload, rec->payload_len, &c->receipt);
	if (err != CP_OK)
		return fail(c, 1, cp_error_name(err), err, "tap the device again",
			    "the receipt is malformed: %s", cp_error_message(err));
	if (memcmp(c->receipt.device_id, c->dr.device_id, CP_DEVICE_ID_LEN) != 0)
		return fail(c, 1, cp_error_name(CP_ERR_WRONG_DEVICE), CP_ERR_WRONG_DEVICE,
			    "tap the device named by DEVICE-ID", "the tag is another device's");
	c->have_receipt = TRUE;
	c->profile_seq = c->receipt.profile_seq;
	c->receipt_bytes = g_bytes_new(rec->payload, rec->payload_len);
	say(1, "read the receipt of message %" G_GUINT64_FORMAT ": %s", c->receipt.profile_seq,
	    receipt_status_name(c->receipt.status));
	return TRUE;
}

/* ---- output ---- */

static void
report_text(Companion *c, gboolean ok)
{
	g_autofree char *red = cp_redact(c->supi);

	if (!ok) {
		g_printerr("cellprov-companion: %s: step %d/%d: %s\n", command_names[c->command], c->failed_step,
			   n_steps, c->error_message);
		if (c->error_hint)
			g_printerr("  what to do: %s\n", c->error_hint);
		return;
	}
	switch (c->command) {
	case CMD_CLAIM:
		g_print("device %s provisioned%s%s\n", c->id_hex, c->supi ? " with SUPI " : "", c->supi ? red : "");
		break;
	case CMD_REPROVISION:
		g_print("device %s re-provisioned%s%s, key generation %" G_GINT64_FORMAT "\n", c->id_hex,
			c->supi ? " with SUPI " : "", c->supi ? red : "", c->generation);
		break;
	case CMD_ACCEPT_TRANSFER:
		g_print("device %s transferred to this companion at binding version %" G_GINT64_FORMAT
			"%s%s\n", c->id_hex, c->binding_version, c->supi ? ", SUPI " : "", c->supi ? red : "");
		break;
	case CMD_DECOMMISSION:
		g_print("device %s decommissioned: %s\n", c->id_hex,
			!g_strcmp0(c->relay_action, "released") ? "the SM released it; anyone may claim it again"
								 : "the SM has not released it yet");
		break;
	case CMD_RELAY:
		g_print("receipt of device %s (message %" G_GUINT64_FORMAT ", %s) relayed: %s, action %s\n", c->id_hex,
			c->receipt.profile_seq, receipt_status_name(c->receipt.status),
			c->relay_result ? c->relay_result : "?", c->relay_action ? c->relay_action : "none");
		break;
	case CMD_TRANSFER_TOKEN: {
		g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(c->expires);
		g_autofree char *when = t ? g_date_time_format_iso8601(t) : g_strdup("?");

		g_print("transfer token for '%s': %s\nvalid until %s, once; the new owner runs:\n"
			"  cellprov-companion accept-transfer %s --transfer-token TOKEN\n",
			c->new_owner_name, c->token, when, c->id_hex);
		break;
	}
	case CMD_DEVICES:
		g_print("%-32s %-8s %-9s %-17s %s\n", "DEVICE-ID", "VERSION", "STATE", "SUPI", "PENDING");
		for (guint i = 0; i < json_array_get_length(json_node_get_array(c->devices)); i++) {
			JsonNode *n = json_array_get_element(json_node_get_array(c->devices), i);
			JsonObject *d = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
			g_autofree char *supi = NULL, *pending = NULL;
			const char *kind;

			if (!d)
				continue;
			supi = cp_redact(json_str(d, "supi"));
			kind = json_str(d, "pending");
			pending = kind ? g_strdup_printf("%s %" G_GINT64_FORMAT, kind, json_int(d, "pending-seq", 0))
				       : g_strdup("-");
			g_print("%-32s %-8" G_GINT64_FORMAT " %-9s %-17s %s\n", json_str(d, "device-id") ? json_str(d, "device-id") : "?",
				json_int(d, "binding-version", 0), json_str(d, "state") ? json_str(d, "state") : "?",
				supi ? supi : "-", pending);
		}
		break;
	}
	if (c->relay_error)
		g_printerr("cellprov-companion: warning: the SM was not told the outcome: %s\n"
			   "  what to do: tap the device and run `cellprov-companion relay %s`\n",
			   c->relay_error, c->id_hex);
}

static void
add_int(JsonBuilder *b, const char *name, gint64 v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

static void
add_str(JsonBuilder *b, const char *name, const char *v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_string_value(b, v);
}

static void
report(Companion *c, gboolean ok)
{
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonGenerator) gen = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *text = NULL;

	if (!opt_json) {
		report_text(c, ok);
		return;
	}
	b = json_builder_new();
	json_builder_begin_object(b);
	add_str(b, "result", ok ? "ok" : "error");
	add_str(b, "command", command_names[c->command]);
	if (c->id_hex[0] && c->cert_url) {
		json_builder_set_member_name(b, "device");
		json_builder_begin_object(b);
		add_str(b, "device-id", c->id_hex);
		add_str(b, "certificate-url", c->cert_url);
		add_str(b, "manufacturer", c->dr.manufacturer);
		add_str(b, "model", c->dr.model);
		add_str(b, "serial", c->dr.serial);
		json_builder_end_object(b);
	} else if (c->id_hex[0]) {
		add_str(b, "device-id", c->id_hex);
	}
	if (c->profile) {
		add_int(b, c->is_command ? "seq" : "profile-seq", (gint64)c->profile_seq);
		if (c->operation)
			add_str(b, "operation", c->operation);
		if (c->binding_version >= 0)
			add_int(b, "binding-version", c->binding_version);
		if (c->replaces >= 0)
			add_int(b, "replaces", c->replaces);
		if (c->generation >= 0)
			add_int(b, "generation", c->generation);
		if (c->supi) {
			g_autofree char *red = cp_redact(c->supi);

			add_str(b, "supi", red);
		}
	}
	if (c->token) {
		/* asked for: the one place a token is printed */
		add_str(b, "token", c->token);
		add_str(b, "new-owner", c->new_owner_name);
		add_int(b, "expires", c->expires);
	}
	if (c->devices) {
		JsonArray *a = json_node_get_array(c->devices);

		/* SUPIs redacted as everywhere (CELLPROV_SHOW_PERSONAL=1 shows them) */
		for (guint i = 0; i < json_array_get_length(a); i++) {
			JsonNode *n = json_array_get_element(a, i);
			JsonObject *d = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;

			if (d && json_str(d, "supi")) {
				g_autofree char *red = cp_redact(json_str(d, "supi"));

				json_object_set_string_member(d, "supi", red);
			}
		}
		json_builder_set_member_name(b, "devices");
		json_builder_add_value(b, json_node_copy(c->devices));
	}
	if (c->have_receipt) {
		json_builder_set_member_name(b, "receipt");
		json_builder_begin_object(b);
		add_str(b, "status", receipt_status_name(c->receipt.status));
		add_str(b, "reason", c->receipt.reason ? cp_error_name(c->receipt.reason) : "none");
		json_builder_set_member_name(b, "verified");
		json_builder_add_boolean_value(b, c->receipt.has_mac && c->k2);
		add_int(b, "binding-version", (gint64)c->receipt.binding_version);
		if (c->receipt.has_registration)
			add_str(b, "registration", c->receipt.registration);
		json_builder_end_object(b);
	}
	if (c->relayed || c->relay_error) {
		json_builder_set_member_name(b, "relay");
		json_builder_begin_object(b);
		if (c->relayed) {
			add_str(b, "result", c->relay_result ? c->relay_result : "processed");
			add_str(b, "action", c->relay_action ? c->relay_action : "none");
		} else {
			add_str(b, "error", c->relay_error);
		}
		json_builder_end_object(b);
	}
	if (!ok) {
		json_builder_set_member_name(b, "error");
		json_builder_begin_object(b);
		add_int(b, "step", c->failed_step);
		add_str(b, "code", c->error_code);
		add_int(b, "number", c->error_number);
		add_str(b, "message", c->error_message);
		if (c->error_hint)
			add_str(b, "hint", c->error_hint);
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	gen = json_generator_new();
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	/* JSON is UTF-8 whatever the locale: not g_print, which converts */
	fputs(text, stdout);
	fputc('\n', stdout);
	if (c->token)
		cp_cleanse(text, strlen(text));
}

static void
companion_clear(Companion *c)
{
	g_free(c->sm_url);
	g_free(c->token_path);
	g_free(c->companion);
	g_free(c->sm_ca);
	g_free(c->client_cert);
	g_free(c->client_key);
	g_free(c->tag_file);
	g_free(c->profile_file);
	g_free(c->receipt_tag_file);
	g_free(c->connstring);
	g_free(c->transport);
	g_free(c->adapter);
	g_free(c->ble_device);
	g_free(c->cert_url);
	if (c->record)
		g_bytes_unref(c->record);
	if (c->profile)
		g_bytes_unref(c->profile);
	cp_secret_free(c->k2);
	g_free(c->supi);
	g_free(c->operation);
	if (c->receipt_bytes)
		g_bytes_unref(c->receipt_bytes);
	g_free(c->apn);
	g_free(c->network_name);
	g_free(c->new_owner);
	if (c->transfer_token)
		cp_cleanse(c->transfer_token, strlen(c->transfer_token));
	g_free(c->transfer_token);
	if (c->token)
		cp_cleanse(c->token, strlen(c->token));
	g_free(c->token);
	g_free(c->new_owner_name);
	if (c->devices)
		json_node_unref(c->devices);
	g_free(c->relay_result);
	g_free(c->relay_action);
	g_free(c->relay_error);
	g_free(c->error_code);
	g_free(c->error_message);
	g_free(c->error_hint);
#if CP_COMPANION_NFC
	cp_nfc_reader_free(c->reader);
#endif
	cp_ble_reader_free(c->ble);
}

static gboolean
run(Companion *c)
{
	switch (c->command) {
	case CMD_CLAIM:
		if (!(step_read_tag(c) && step_call_sm(c) && step_write_profile(c, 3) && step_read_receipt(c, 4)))
			return FALSE;
		/* the device is provisioned whatever the SM says: a failed
		 * relay is a warning (report_text) */
		step_relay(c, 4);
		return TRUE;
	case CMD_REPROVISION:
		return step_reprovision(c) && step_write_profile(c, 2) && step_read_receipt(c, 3) && step_relay(c, 3);
	case CMD_ACCEPT_TRANSFER:
		if (c->tag_file || !c->profile_file) {
			if (!step_read_tag(c))
				return FALSE;
			if (strcmp(c->id_hex, c->want_id_hex) != 0)
				return fail(c, 1, cp_error_name(CP_ERR_WRONG_DEVICE), CP_ERR_WRONG_DEVICE,
					    "tap the device named by DEVICE-ID", "the tag is device %s's", c->id_hex);
		}
		return step_accept_transfer(c, n_steps - 2) && step_write_profile(c, n_steps - 1) &&
		       step_read_receipt(c, n_steps) && step_relay(c, n_steps);
	case CMD_DECOMMISSION:
		return step_decommission(c) && step_write_profile(c, 2) && step_read_receipt(c, 3) && step_relay(c, 3);
	case CMD_TRANSFER_TOKEN:
		return step_transfer_token(c);
	case CMD_DEVICES:
		return step_devices(c);
	case CMD_RELAY:
		return step_read_any_receipt(c) && step_relay(c, 2);
	}
	return FALSE;
}

int
main(int argc, char **argv)
{
	Companion c = { .tap_timeout = 60, .http_timeout = 30, .binding_version = -1, .replaces = -1, .generation = -1 };
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) oc = g_option_context_new("[COMMAND [DEVICE-ID]] - the owner's companion for cellprov devices");
	GOptionEntry entries[] = {
		{ "sm", 's', 0, G_OPTION_ARG_STRING, &c.sm_url, "Subscription manager base URL", "URL" },
		{ "token", 't', 0, G_OPTION_ARG_FILENAME, &c.token_path, "File (0600) or credential name holding the SM token", "FILE" },
		{ "companion", 0, 0, G_OPTION_ARG_STRING, &c.companion, "This companion's SUPI (checked by the SM)", "IMSI" },
		{ "sm-ca", 0, 0, G_OPTION_ARG_FILENAME, &c.sm_ca, "CA certificates for the SM's TLS (default: system)", "FILE" },
		{ "client-cert", 0, 0, G_OPTION_ARG_FILENAME, &c.client_cert, "Authenticate with this TLS client certificate (PEM)", "FILE" },
		{ "client-key", 0, 0, G_OPTION_ARG_FILENAME, &c.client_key, "Its private key (default: in --client-cert)", "FILE" },
		{ "transport", 0, 0, G_OPTION_ARG_STRING, &c.transport, "How to reach the device: nfc (default) or ble", "T" },
		{ "connstring", 'd', 0, G_OPTION_ARG_STRING, &c.connstring, "libnfc connstring of the reader", "CONN" },
		{ "adapter", 0, 0, G_OPTION_ARG_STRING, &c.adapter, "BLE: the Bluetooth adapter (default: the first powered)", "HCI" },
		{ "ble-device", 0, 0, G_OPTION_ARG_STRING, &c.ble_device, "BLE: the device's DeviceID or its first 10 hex digits",
		  "HEX" },
		{ "tag-file", 0, 0, G_OPTION_ARG_FILENAME, &c.tag_file, "Tap 1 from a file holding the tag's NDEF message", "FILE" },
		{ "profile-file", 0, 0, G_OPTION_ARG_FILENAME, &c.profile_file, "Tap 2 to a file (the NDEF message to write)", "FILE" },
		{ "receipt-tag-file", 0, 0, G_OPTION_ARG_FILENAME, &c.receipt_tag_file, "Tap 3 from a file (waited for)", "FILE" },
		{ "tap-timeout", 0, 0, G_OPTION_ARG_INT, &c.tap_timeout, "Seconds to wait for each tap (default: 60)", "S" },
		{ "http-timeout", 0, 0, G_OPTION_ARG_INT, &c.http_timeout, "Seconds to wait for the SM (default: 30)", "S" },
		{ "apn", 0, 0, G_OPTION_ARG_STRING, &c.apn, "reprovision: a new APN", "APN" },
		{ "network-name", 0, 0, G_OPTION_ARG_STRING, &c.network_name, "reprovision: a new network name", "NAME" },
		{ "new-owner", 0, 0, G_OPTION_ARG_STRING, &c.new_owner, "transfer-token: the new owner's companion name", "NAME" },
		{ "transfer-token", 0, 0, G_OPTION_ARG_STRING, &c.transfer_token, "accept-transfer: the token (- reads it from stdin)", "TOKEN" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &opt_json, "JSON output", NULL },
		CP_OPTION_VERSION,
		G_OPTION_ENTRY_NULL,
	};
	const char *cmd = "claim";
	gboolean ok, use_ble;

	setlocale(LC_ALL, "");
	/* stdout is for the result (one JSON object with -J): the libraries'
	 * own messages, debug ones included, belong with the progress lines */
	g_log_writer_default_set_use_stderr(TRUE);
	g_option_context_add_main_entries(oc, entries, NULL);
	g_option_context_set_description(oc,
		"Commands (default: claim):\n"
		"  claim                       read the tag, get a profile, write it, read and relay the receipt\n"
		"  reprovision DEVICE-ID       new keys (and --apn, --network-name) for an owned device\n"
		"  transfer-token DEVICE-ID    a single-use token for --new-owner\n"
		"  accept-transfer DEVICE-ID   take the device with --transfer-token\n"
		"  decommission DEVICE-ID      release the device: its card back to its original values\n"
		"  devices                     this companion's devices\n"
		"  relay DEVICE-ID             relay the receipt on the device's tag to the SM\n");
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cellprov-companion: %s\n", error->message);
		return 2;
	}
	if (argc > 1)
		cmd = argv[1];
	for (c.command = 0; c.command < G_N_ELEMENTS(command_names); c.command++)
		if (strcmp(cmd, command_names[c.command]) == 0)
			break;
	if (c.command == G_N_ELEMENTS(command_names)) {
		g_printerr("cellprov-companion: unknown command '%s' (see --help)\n", cmd);
		return 2;
	}
	if (c.command == CMD_CLAIM || c.command == CMD_DEVICES ? argc > 2 : argc != 3) {
		g_printerr("cellprov-companion: %s %s\n", cmd,
			   c.command == CMD_CLAIM || c.command == CMD_DEVICES ? "takes no argument" : "takes one DEVICE-ID");
		return 2;
	}
	if (argc == 3) {
		if (strlen(argv[2]) != 2 * CP_DEVICE_ID_LEN ||
		    cp_hex_decode(argv[2], c.dr.device_id, CP_DEVICE_ID_LEN) != CP_DEVICE_ID_LEN) {
			g_printerr("cellprov-companion: DEVICE-ID is 32 hex digits: '%s'\n", argv[2]);
			return 2;
		}
		cp_hex_encode(c.dr.device_id, CP_DEVICE_ID_LEN, c.want_id_hex);
		memcpy(c.id_hex, c.want_id_hex, sizeof(c.id_hex));
		memcpy(c.ble_want, c.dr.device_id, CP_DEVICE_ID_LEN);
		c.ble_want_len = CP_DEVICE_ID_LEN;
	}
	if (c.transport && strcmp(c.transport, "nfc") != 0 && strcmp(c.transport, "ble") != 0) {
		g_printerr("cellprov-companion: --transport is nfc or ble, not '%s'\n", c.transport);
		return 2;
	}
	use_ble = !g_strcmp0(c.transport, "ble");
	if (!use_ble && (c.adapter || c.ble_device)) {
		g_printerr("cellprov-companion: --adapter and --ble-device go with --transport ble\n");
		return 2;
	}
	if (use_ble && (c.connstring || c.tag_file || c.profile_file || c.receipt_tag_file)) {
		g_printerr("cellprov-companion: --transport ble reaches the device over the air: "
			   "--connstring and the tag files do not apply\n");
		return 2;
	}
	if (c.ble_device) {
		gsize n = strlen(c.ble_device);
		guint8 id[CP_DEVICE_ID_LEN];

		if (n < 10 || n > 2 * CP_DEVICE_ID_LEN || n % 2 ||
		    cp_hex_decode(c.ble_device, id, sizeof(id)) != (long)(n / 2)) {
			g_printerr("cellprov-companion: --ble-device is 10 to 32 hex digits: '%s'\n", c.ble_device);
			return 2;
		}
		if (c.ble_want_len && memcmp(id, c.ble_want, n / 2) != 0) {
			g_printerr("cellprov-companion: --ble-device and DEVICE-ID name different devices\n");
			return 2;
		}
		if (!c.ble_want_len) {
			memcpy(c.ble_want, id, n / 2);
			c.ble_want_len = n / 2;
		}
	}
	if (!c.sm_url || (!c.token_path && !c.client_cert)) {
		g_printerr("cellprov-companion: --sm and --token or --client-cert are required\n");
		return 2;
	}
	if (c.tap_timeout < 1 || c.http_timeout < 1) {
		g_printerr("cellprov-companion: timeouts must be at least 1 s\n");
		return 2;
	}
	if ((c.apn || c.network_name) && c.command != CMD_REPROVISION) {
		g_printerr("cellprov-companion: --apn and --network-name go with reprovision\n");
		return 2;
	}
	if (!!c.new_owner != (c.command == CMD_TRANSFER_TOKEN)) {
		g_printerr("cellprov-companion: transfer-token needs --new-owner, and only it takes one\n");
		return 2;
	}
	if (!!c.transfer_token != (c.command == CMD_ACCEPT_TRANSFER)) {
		g_printerr("cellprov-companion: accept-transfer needs --transfer-token, and only it takes one\n");
		return 2;
	}
	if (c.transfer_token && strcmp(c.transfer_token, "-") == 0) {
		char line[300];

		g_free(c.transfer_token);
		c.transfer_token = fgets(line, sizeof(line), stdin) ? g_strdup(g_strstrip(line)) : NULL;
		cp_cleanse(line, sizeof(line));
		if (!c.transfer_token || !*c.transfer_token) {
			g_printerr("cellprov-companion: no transfer token on stdin\n");
			return 2;
		}
	}
	switch (c.command) {
	case CMD_CLAIM:
		if (!!c.tag_file != !!c.profile_file) {
			g_printerr("cellprov-companion: --tag-file and --profile-file go together\n");
			return 2;
		}
		break;
	case CMD_ACCEPT_TRANSFER:
		/* tap 1 reads the tag for a fresh attestation; in file mode
		 * only with --tag-file (else the SM uses what it stored) */
		n_steps = c.tag_file || !c.profile_file ? 4 : 3;
		break;
	case CMD_REPROVISION:
	case CMD_DECOMMISSION:
		n_steps = 3;
		break;
	case CMD_RELAY:
		n_steps = 2;
		break;
	case CMD_TRANSFER_TOKEN:
	case CMD_DEVICES:
		n_steps = 1;
		break;
	}
	if (c.tag_file && c.command != CMD_CLAIM && c.command != CMD_ACCEPT_TRANSFER && c.command != CMD_RELAY) {
		g_printerr("cellprov-companion: %s reads no tag: --tag-file does not apply\n", cmd);
		return 2;
	}
	if ((c.profile_file || c.receipt_tag_file) &&
	    (c.command == CMD_TRANSFER_TOKEN || c.command == CMD_DEVICES || c.command == CMD_RELAY)) {
		g_printerr("cellprov-companion: %s writes nothing to a tag: --profile-file and --receipt-tag-file do not apply\n", cmd);
		return 2;
	}
	if (c.command == CMD_RELAY && !c.tag_file)
		;       /* the tap over NFC */
	else if (c.command != CMD_CLAIM && !c.profile_file && c.receipt_tag_file) {
		g_printerr("cellprov-companion: --receipt-tag-file goes with --profile-file\n");
		return 2;
	}
	if (use_ble && c.command != CMD_TRANSFER_TOKEN && c.command != CMD_DEVICES) {
		c.ble = cp_ble_reader_open(c.adapter, &error);
		if (!c.ble) {
			ble_fail(&c, 1, error, "cannot use Bluetooth");
			report(&c, FALSE);
			companion_clear(&c);
			return 1;
		}
	}
#if CP_COMPANION_NFC
	if (!use_ble && (c.command == CMD_RELAY ? !c.tag_file : !c.profile_file) &&
	    c.command != CMD_TRANSFER_TOKEN && c.command != CMD_DEVICES) {
		c.reader = cp_nfc_reader_open(c.connstring, &error);
		if (!c.reader) {
			fail(&c, 1, "nfc-open", 0, "check --connstring and that no other program holds the reader",
			     "cannot open the NFC reader: %s", error->message);
			report(&c, FALSE);
			companion_clear(&c);
			return 1;
		}
	}
#endif
	ok = run(&c);
	report(&c, ok);
	companion_clear(&c);
	return ok ? 0 : 1;
}
