/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov-companion: the reference companion (a Linux box with an NFC
 * reader; the model for phone apps). Three taps:
 *   tap 1  read the tag: certificate URL + device record
 *          -> POST /v1/provision to the SM: profile, K'', nonce
 *   tap 2  write the profile
 *   tap 3  read the receipt, verify its mac with K''
 * K'' lives only in this process. With --tag-file the tag is a file holding
 * the NDEF message (tests, and tags read by other means).
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
#if CP_COMPANION_NFC
#include "cp-nfc-reader.h"
#endif

#define N_STEPS 4

static gboolean opt_json;

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
	gint tap_timeout;
	gint http_timeout;
	/* what we learnt, for the report */
	char *cert_url;
	CpDeviceRecord dr;
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	GBytes *record;
	GBytes *profile;
	CpSecret *k2;
	guint64 profile_seq;
	char *supi;
	gboolean have_receipt;
	CpReceipt receipt;
	/* failure */
	int failed_step;
	char *error_code;
	int error_number;
	char *error_message;
	char *error_hint;
#if CP_COMPANION_NFC
	CpNfcReader *reader;
#endif
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
		g_printerr("(%d/%d) %s\n", step, N_STEPS, text);
	else
		g_print("(%d/%d) %s\n", step, N_STEPS, text);
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
		{ "chain-fetch-failed", "the manufacturer's certificate server cannot be reached: try again later" },
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

/* ---- the tag: a file or the NFC reader ---- */

static GBytes *
tag_read(Companion *c, int step, const char *file, gboolean wait)
{
	g_autoptr(GError) error = NULL;

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
			return fail(c, step, "tag-write", 0, NULL, "cannot write the profile: %s", error->message);
		return TRUE;
	}
#if CP_COMPANION_NFC
	say(step, "hold the phone to the device again to write the profile (waiting %d s)", c->tap_timeout);
	if (!cp_nfc_reader_wait_target(c->reader, (guint)c->tap_timeout * 1000, &error) ||
	    !cp_nfc_reader_select(c->reader, &error) ||
	    !cp_nfc_reader_write_ndef(c->reader, ndef, len, &error)) {
		cp_nfc_reader_release(c->reader);
		return fail(c, step, error->domain == CP_NFC_ERROR ? cp_nfc_error_name(error->code) : "tag-write",
			    error->domain == CP_ERROR ? error->code : 0,
			    "tap again: the profile is still valid and can be written again",
			    "writing the profile failed: %s", error->message);
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

	tag = tag_read(c, 1, c->tag_file, FALSE);
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
	say(1, "read device %s (%s %s, serial %s)", c->id_hex, c->dr.manufacturer, c->dr.model, c->dr.serial);
	return TRUE;
}

/* ---- step 2: the SM ---- */

static gboolean
step_call_sm(Companion *c)
{
	g_autoptr(SoupSession) session = NULL;
	g_autoptr(SoupMessage) m = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GBytes) body = NULL;
	g_autoptr(GBytes) answer = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CpSecret) token = NULL;
	g_autofree char *url = NULL, *rec_b64 = NULL, *auth = NULL;
	JsonObject *o;
	JsonNode *n;
	const char *supi;
	GBytes *k2;
	guint status;
	char *text;
	gsize len;

	if (c->token_path) {
		token = cp_secret_load(c->token_path, FALSE, 0, &error);
		if (!token)
			return fail(c, 2, "token", 0, "--token names the file holding this companion's SM token",
				    "%s", error->message);
	}
	session = soup_session_new_with_options("timeout", c->http_timeout,
						"user-agent", "cellprov-companion/" CP_VERSION, NULL);
	if (c->sm_ca) {
		g_autoptr(GTlsDatabase) db = g_tls_file_database_new(c->sm_ca, &error);

		if (!db)
			return fail(c, 2, "sm-ca", 0, NULL, "--sm-ca %s: %s", c->sm_ca, error->message);
		soup_session_set_tls_database(session, db);
	}
	url = g_strconcat(c->sm_url, g_str_has_suffix(c->sm_url, "/") ? "" : "/", "v1/provision", NULL);
	m = soup_message_new(SOUP_METHOD_POST, url);
	if (!m)
		return fail(c, 2, "sm-url", 0, NULL, "--sm '%s' is not a URL", c->sm_url);

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
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	body = g_bytes_new_take(text, len);
	soup_message_set_request_body_from_bytes(m, "application/json", body);
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
		if (!cert)
			return fail(c, 2, "client-cert", 0, "--client-cert wants a PEM certificate and its key",
				    "%s", error->message);
		soup_message_set_tls_client_certificate(m, cert);
	}

	say(2, "asking the subscription manager at %s", c->sm_url);
	answer = soup_session_send_and_read(session, m, NULL, &error);
	if (!answer)
		return fail(c, 2, "sm-unreachable", 0, "check the network and --sm",
			    "the subscription manager cannot be reached: %s", error->message);
	status = soup_message_get_status(m);
	if (!json_parser_load_from_data(parser, g_bytes_get_data(answer, NULL), (gssize)g_bytes_get_size(answer), NULL) ||
	    !(n = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(n))
		return fail(c, 2, "sm-protocol", 0, NULL, "the SM answered %u without JSON", status);
	o = json_node_get_object(n);
	if (status != SOUP_STATUS_OK) {
		JsonObject *e = json_object_has_member(o, "error") && JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "error"))
				? json_object_get_object_member(o, "error") : NULL;
		const char *code = e ? json_str(e, "code") : NULL;
		const char *message = e ? json_str(e, "message") : NULL;
		JsonNode *nn = e ? json_object_get_member(e, "number") : NULL;
		int number = nn && JSON_NODE_HOLDS_VALUE(nn) && json_node_get_value_type(nn) == G_TYPE_INT64
			     ? (int)json_node_get_int(nn) : 0;

		return fail(c, 2, code ? code : "sm-protocol", number, code ? sm_hint(code) : NULL,
			    "the subscription manager refused (%u): %s", status, message ? message : "no reason given");
	}
	c->profile = json_b64(o, "profile", CP_RECORD_MAX);
	k2 = json_b64(o, "k2", CP_KDF_LEN);
	supi = json_str(o, "supi");
	if (!c->profile || !k2 || g_bytes_get_size(k2) != CP_KDF_LEN) {
		if (k2)
			g_bytes_unref(k2);
		return fail(c, 2, "sm-protocol", 0, NULL, "the SM's answer lacks the profile or K''");
	}
	c->k2 = cp_secret_new_from(g_bytes_get_data(k2, NULL), CP_KDF_LEN);
	cp_cleanse((void *)g_bytes_get_data(k2, NULL), CP_KDF_LEN);
	g_bytes_unref(k2);
	/* the answer's text holds K'' too; the bytes are ours alone */
	cp_cleanse((void *)g_bytes_get_data(answer, NULL), g_bytes_get_size(answer));
	c->supi = g_strdup(supi);
	if (!c->k2)
		return FALSE;
	say(2, "the SM answered: a profile (%zu bytes) and K'', kept in memory only",
	    g_bytes_get_size(c->profile));
	return TRUE;
}

/* ---- step 3: write the profile ---- */

static gboolean
step_write_profile(Companion *c)
{
	cp_auto_buf ndef = CP_BUF_INIT;
	CpNdefMessage msg = { 0 };
	CpProfile p;
	gsize len;
	const uint8_t *data = g_bytes_get_data(c->profile, &len);
	CpError err;

	/* The companion cannot check the mac (no K_prof), but it does not
	 * carry a profile for another device to the tag */
	err = cp_profile_decode(data, len, &p);
	if (err != CP_OK)
		return fail(c, 3, cp_error_name(err), err, NULL, "the SM's profile is malformed: %s", cp_error_message(err));
	if (memcmp(p.device_id, c->dr.device_id, CP_DEVICE_ID_LEN) != 0)
		return fail(c, 3, cp_error_name(CP_ERR_WRONG_DEVICE), CP_ERR_WRONG_DEVICE, NULL,
			    "the SM's profile is for another device");
	c->profile_seq = p.profile_seq;
	cp_cleanse(&p, sizeof(p));
	msg.n_records = 1;
	cp_ndef_record_mime(&msg.records[0], CP_MIME_PROFILE, data, len);
	err = cp_ndef_encode(&msg, &ndef);
	if (err != CP_OK)
		return fail(c, 3, cp_error_name(err), err, NULL, "cannot encode the profile: %s", cp_error_message(err));
	if (!tag_write(c, 3, ndef.data, ndef.len))
		return FALSE;
	say(3, "wrote profile %" G_GUINT64_FORMAT " (%zu bytes)", c->profile_seq, len);
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

/* An "accepted" receipt MAC'd with our K'': the device is still at work. */
static gboolean
receipt_is_accepted(Companion *c, const CpNdefRecord *rec)
{
	CpReceipt r;

	return cp_receipt_verify(rec->payload, rec->payload_len, c->k2, &r) == CP_OK &&
	       r.status == CP_RECEIPT_ACCEPTED;
}

static gboolean
step_read_receipt(Companion *c)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)c->tap_timeout * G_USEC_PER_SEC;
	g_autoptr(GBytes) tag = NULL;
	CpNdefMessage msg;
	const CpNdefRecord *rec;
	const uint8_t *data;
	gsize len;
	CpError err;
	gboolean said_accepted = FALSE;

	if (c->tag_file && !c->receipt_tag_file) {
		say(4, "no --receipt-tag-file: not waiting for the receipt");
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
		tag = tag_read(c, 4, c->receipt_tag_file, TRUE);
		if (!tag) {
			if (last)
				return FALSE;
			say(4, "%s: tapping again", c->error_message);
			g_usleep(500 * 1000);
			continue;
		}
		data = g_bytes_get_data(tag, &len);
		err = cp_ndef_parse(data, len, &msg);
		if (err != CP_OK) {
			fail(c, 4, cp_error_name(err), err, "tap the device again",
			     "the tag holds no valid NDEF message: %s", cp_error_message(err));
			if (last)
				return FALSE;
			say(4, "%s: tapping again", c->error_message);
			g_usleep(500 * 1000);
			continue;
		}
		rec = receipt_for_us(c, &msg);
		if (rec && (last || !receipt_is_accepted(c, rec)))
			break;
		if (last)
			return fail(c, 4, "no-receipt", CP_ERR_NDEF_NO_RECORD, "wait a moment and tap the device again",
				    "the device has not written a receipt for this profile yet");
		if (rec && !said_accepted) {
			say(4, "the device accepted the profile and is provisioning: waiting for the result");
			said_accepted = TRUE;
		} else if (!rec) {
			say(4, "no receipt yet: tap the device again");
		}
		g_usleep(500 * 1000);
	}
	err = cp_receipt_verify(rec->payload, rec->payload_len, c->k2, &c->receipt);
	if (err == CP_ERR_NO_MAC) {
		cp_receipt_decode(rec->payload, rec->payload_len, &c->receipt);
		c->have_receipt = TRUE;
		return fail(c, 4, cp_error_name(c->receipt.reason), c->receipt.reason,
			    "the device could not authenticate the profile; ask the SM for a new one",
			    "the device rejected the profile: %s", cp_error_message(c->receipt.reason));
	}
	if (err != CP_OK)
		return fail(c, 4, cp_error_name(err), err, "the receipt is not from this provisioning: tap again",
			    "the receipt does not verify: %s", cp_error_message(err));
	c->have_receipt = TRUE;
	if (c->receipt.status == CP_RECEIPT_REJECTED || c->receipt.status == CP_RECEIPT_FAILED)
		return fail(c, 4, cp_error_name(c->receipt.reason), c->receipt.reason, NULL,
			    "the device %s the profile: %s",
			    c->receipt.status == CP_RECEIPT_REJECTED ? "rejected" : "could not apply",
			    cp_error_message(c->receipt.reason));
	say(4, "receipt verified: %s%s%s", receipt_status_name(c->receipt.status),
	    c->receipt.has_registration ? ", registered on " : "",
	    c->receipt.has_registration ? c->receipt.registration : "");
	return TRUE;
}

/* ---- output ---- */

static void
report(Companion *c, gboolean ok)
{
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonGenerator) gen = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *text = NULL;

	if (!opt_json) {
		if (ok) {
			g_autofree char *red = cp_redact(c->supi);

			g_print("device %s provisioned%s%s\n", c->id_hex, c->supi ? " with SUPI " : "",
				c->supi ? red : "");
		} else {
			g_printerr("cellprov-companion: step %d/%d: %s\n", c->failed_step, N_STEPS, c->error_message);
			if (c->error_hint)
				g_printerr("  what to do: %s\n", c->error_hint);
		}
		return;
	}
	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "result");
	json_builder_add_string_value(b, ok ? "ok" : "error");
	if (c->id_hex[0]) {
		json_builder_set_member_name(b, "device");
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "device-id");
		json_builder_add_string_value(b, c->id_hex);
		json_builder_set_member_name(b, "certificate-url");
		json_builder_add_string_value(b, c->cert_url);
		json_builder_set_member_name(b, "manufacturer");
		json_builder_add_string_value(b, c->dr.manufacturer);
		json_builder_set_member_name(b, "model");
		json_builder_add_string_value(b, c->dr.model);
		json_builder_set_member_name(b, "serial");
		json_builder_add_string_value(b, c->dr.serial);
		json_builder_end_object(b);
	}
	if (c->profile) {
		json_builder_set_member_name(b, "profile-seq");
		json_builder_add_int_value(b, (gint64)c->profile_seq);
		if (c->supi) {
			g_autofree char *red = cp_redact(c->supi);

			json_builder_set_member_name(b, "supi");
			json_builder_add_string_value(b, red);
		}
	}
	if (c->have_receipt) {
		json_builder_set_member_name(b, "receipt");
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "status");
		json_builder_add_string_value(b, receipt_status_name(c->receipt.status));
		json_builder_set_member_name(b, "reason");
		json_builder_add_string_value(b, c->receipt.reason ? cp_error_name(c->receipt.reason) : "none");
		json_builder_set_member_name(b, "verified");
		json_builder_add_boolean_value(b, c->receipt.has_mac);
		if (c->receipt.has_registration) {
			json_builder_set_member_name(b, "registration");
			json_builder_add_string_value(b, c->receipt.registration);
		}
		json_builder_end_object(b);
	}
	if (!ok) {
		json_builder_set_member_name(b, "error");
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "step");
		json_builder_add_int_value(b, c->failed_step);
		json_builder_set_member_name(b, "code");
		json_builder_add_string_value(b, c->error_code);
		json_builder_set_member_name(b, "number");
		json_builder_add_int_value(b, c->error_number);
		json_builder_set_member_name(b, "message");
		json_builder_add_string_value(b, c->error_message);
		if (c->error_hint) {
			json_builder_set_member_name(b, "hint");
			json_builder_add_string_value(b, c->error_hint);
		}
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
	g_free(c->cert_url);
	if (c->record)
		g_bytes_unref(c->record);
	if (c->profile)
		g_bytes_unref(c->profile);
	cp_secret_free(c->k2);
	g_free(c->supi);
	g_free(c->error_code);
	g_free(c->error_message);
	g_free(c->error_hint);
#if CP_COMPANION_NFC
	cp_nfc_reader_free(c->reader);
#endif
}

int
main(int argc, char **argv)
{
	Companion c = { .tap_timeout = 60, .http_timeout = 30 };
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) oc = g_option_context_new("- provision a cellprov device (reference companion)");
	GOptionEntry entries[] = {
		{ "sm", 's', 0, G_OPTION_ARG_STRING, &c.sm_url, "Subscription manager base URL", "URL" },
		{ "token", 't', 0, G_OPTION_ARG_FILENAME, &c.token_path, "File (0600) or credential name holding the SM token", "FILE" },
		{ "companion", 0, 0, G_OPTION_ARG_STRING, &c.companion, "This companion's SUPI (checked by the SM)", "IMSI" },
		{ "sm-ca", 0, 0, G_OPTION_ARG_FILENAME, &c.sm_ca, "CA certificates for the SM's TLS (default: system)", "FILE" },
		{ "client-cert", 0, 0, G_OPTION_ARG_FILENAME, &c.client_cert, "Authenticate with this TLS client certificate (PEM)", "FILE" },
		{ "client-key", 0, 0, G_OPTION_ARG_FILENAME, &c.client_key, "Its private key (default: in --client-cert)", "FILE" },
		{ "connstring", 'd', 0, G_OPTION_ARG_STRING, &c.connstring, "libnfc connstring of the reader", "CONN" },
		{ "tag-file", 0, 0, G_OPTION_ARG_FILENAME, &c.tag_file, "Tap 1 from a file holding the tag's NDEF message", "FILE" },
		{ "profile-file", 0, 0, G_OPTION_ARG_FILENAME, &c.profile_file, "Tap 2 to a file (the NDEF message to write)", "FILE" },
		{ "receipt-tag-file", 0, 0, G_OPTION_ARG_FILENAME, &c.receipt_tag_file, "Tap 3 from a file (waited for)", "FILE" },
		{ "tap-timeout", 0, 0, G_OPTION_ARG_INT, &c.tap_timeout, "Seconds to wait for each tap (default: 60)", "S" },
		{ "http-timeout", 0, 0, G_OPTION_ARG_INT, &c.http_timeout, "Seconds to wait for the SM (default: 30)", "S" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &opt_json, "JSON output", NULL },
		CP_OPTION_VERSION,
		G_OPTION_ENTRY_NULL,
	};
	gboolean ok;

	setlocale(LC_ALL, "");
	/* stdout is for the result (one JSON object with -J): the libraries'
	 * own messages, debug ones included, belong with the progress lines */
	g_log_writer_default_set_use_stderr(TRUE);
	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cellprov-companion: %s\n", error->message);
		return 2;
	}
	if (!c.sm_url || (!c.token_path && !c.client_cert)) {
		g_printerr("cellprov-companion: --sm and --token or --client-cert are required\n");
		return 2;
	}
	if (c.tap_timeout < 1 || c.http_timeout < 1) {
		g_printerr("cellprov-companion: timeouts must be at least 1 s\n");
		return 2;
	}
	if (!!c.tag_file != !!c.profile_file) {
		g_printerr("cellprov-companion: --tag-file and --profile-file go together\n");
		return 2;
	}
#if CP_COMPANION_NFC
	if (!c.tag_file) {
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
	ok = step_read_tag(&c) && step_call_sm(&c) && step_write_profile(&c) && step_read_receipt(&c);
	report(&c, ok);
	companion_clear(&c);
	return ok ? 0 : 1;
}
