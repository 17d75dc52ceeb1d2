/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device's half of the flow for the network tests, on the protocol
 * library only: "tag" writes the tag content a device made by cellprov-mfg
 * would present (URI + signed device record, optionally a receipt);
 * "accept" takes the profile the companion wrote, runs the device's checks
 * (cp_profile_verify with the device key), compares the USIM credentials
 * with the AUSF's subscriber export, and writes the next tag content with
 * a receipt signed with the device key and MAC'd with K''. "accept" also
 * takes an operator command (decommission) with cp_command_verify. The
 * device's owner binding (--bound N) and K'' (--k2-in, --k2-out: hex
 * files) are kept by the caller between runs. Results are one JSON line
 * on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cp-crypto-openssl.h"
#include "cellprov.h"
#if CP_TEST_NFC
#include <glib-unix.h>
#include "cp-glib.h"
#include "cp-nfc-tag.h"
#endif

static CpKey *
load_key(GKeyFile *kf)
{
	g_autofree char *path = g_key_file_get_string(kf, "device", "key", NULL);
	g_autofree char *pem = NULL;
	gsize len;

	if (!path || !g_file_get_contents(path, &pem, &len, NULL))
		return NULL;
	return cp_pkey_from_pem(pem, len);
}

static gboolean
fill_record(GKeyFile *kf, CpKey *key, guint64 counter, int state, CpDeviceRecord *dr)
{
	g_autofree char *man = g_key_file_get_string(kf, "device", "manufacturer", NULL);
	g_autofree char *model = g_key_file_get_string(kf, "device", "model", NULL);
	g_autofree char *serial = g_key_file_get_string(kf, "device", "serial", NULL);
	g_autofree char *suites = g_key_file_get_string(kf, "device", "suites", NULL);

	memset(dr, 0, sizeof(*dr));
	if (!man || !model || !serial || !suites || cp_device_id(key, dr->device_id) != CP_OK)
		return FALSE;
	dr->version = 1;
	g_strlcpy(dr->manufacturer, man, sizeof(dr->manufacturer));
	g_strlcpy(dr->model, model, sizeof(dr->model));
	g_strlcpy(dr->serial, serial, sizeof(dr->serial));
	for (char *p = suites; *p && dr->n_suites < CP_DR_SUITES_MAX; p++) {
		if (*p == 'A')
			dr->suites[dr->n_suites++] = CP_SUITE_A;
		else if (*p == 'B')
			dr->suites[dr->n_suites++] = CP_SUITE_B;
	}
	dr->state = (uint8_t)state;
	dr->att_counter = counter;
	return cp_random(dr->att_random, sizeof(dr->att_random)) == CP_OK;
}

static int
write_tag(const char *out, const char *url, const CpBuf *rec, const CpBuf *receipt)
{
	cp_auto_buf ndef = CP_BUF_INIT;
	CpError err = cp_tag_build(url, rec->data, rec->len, receipt ? receipt->data : NULL,
				   receipt ? receipt->len : 0, &ndef);

	if (err != CP_OK) {
		fprintf(stderr, "cp_tag_build: %s\n", cp_error_name(err));
		return 1;
	}
	if (!g_file_set_contents(out, (const char *)ndef.data, (gssize)ndef.len, NULL))
		return 1;
	return 0;
}

static int
cmd_tag(int argc, char **argv)
{
	g_autofree char *config = NULL, *out = NULL, *url = NULL;
	gint64 counter = 1;
	int state = 0;
	gboolean corrupt = FALSE;
	GOptionEntry entries[] = {
		{ "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "cellprov.conf from cellprov-mfg", NULL },
		{ "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "tag file (NDEF message)", NULL },
		{ "counter", 0, 0, G_OPTION_ARG_INT64, &counter, "att_counter", NULL },
		{ "state", 0, 0, G_OPTION_ARG_INT, &state, "device state", NULL },
		{ "url", 0, 0, G_OPTION_ARG_STRING, &url, "certificate URL instead of the config's", NULL },
		{ "corrupt-signature", 0, 0, G_OPTION_ARG_NONE, &corrupt, "flip a bit of the attestation", NULL },
		G_OPTION_ENTRY_NULL
	};
	g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	cp_auto_buf rec = CP_BUF_INIT;
	CpDeviceRecord dr;
	CpKey *key;
	CpError err;
	int ret;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, NULL) || !config || !out ||
	    !g_key_file_load_from_file(kf, config, G_KEY_FILE_NONE, NULL))
		return 2;
	if (!url)
		url = g_key_file_get_string(kf, "device", "certificate-url", NULL);
	key = load_key(kf);
	if (!key || !fill_record(kf, key, (guint64)counter, state, &dr))
		return 1;
	err = cp_device_record_encode(&dr, key, &rec);
	cp_key_free(key);
	if (err != CP_OK) {
		fprintf(stderr, "cp_device_record_encode: %s\n", cp_error_name(err));
		return 1;
	}
	if (corrupt)
		rec.data[rec.len - 5] ^= 0x01;
	ret = write_tag(out, url, &rec, NULL);
	if (!ret)
		printf("{\"tag\":\"%s\",\"counter\":%" G_GINT64_FORMAT "}\n", out, counter);
	return ret;
}

/* Device records only, for load generators: "--count" records with
 * counters from "--first", one base64 line each; or one raw record. */
static int
cmd_records(int argc, char **argv)
{
	g_autofree char *config = NULL, *out = NULL;
	gint64 first = 1, count = 1;
	int state = 0;
	gboolean raw = FALSE;
	GOptionEntry entries[] = {
		{ "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "cellprov.conf from cellprov-mfg", NULL },
		{ "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "output file", NULL },
		{ "first", 0, 0, G_OPTION_ARG_INT64, &first, "first att_counter", NULL },
		{ "count", 0, 0, G_OPTION_ARG_INT64, &count, "how many records", NULL },
		{ "raw", 0, 0, G_OPTION_ARG_NONE, &raw, "one binary record instead of base64 lines", NULL },
		{ "state", 0, 0, G_OPTION_ARG_INT, &state, "device state (CpDeviceState)", NULL },
		G_OPTION_ENTRY_NULL
	};
	g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GString) text = g_string_new(NULL);
	CpKey *key;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, NULL) || !config || !out || count < 1 ||
	    !g_key_file_load_from_file(kf, config, G_KEY_FILE_NONE, NULL) || !(key = load_key(kf)))
		return 2;
	for (gint64 i = 0; i < count; i++) {
		cp_auto_buf rec = CP_BUF_INIT;
		CpDeviceRecord dr;

		if (!fill_record(kf, key, (guint64)(first + i), state, &dr) ||
		    cp_device_record_encode(&dr, key, &rec) != CP_OK) {
			cp_key_free(key);
			return 1;
		}
		if (raw) {
			g_string_append_len(text, (const char *)rec.data, (gssize)rec.len);
			break;
		}
		g_autofree char *b64 = g_base64_encode(rec.data, rec.len);
		g_string_append_printf(text, "%s\n", b64);
	}
	cp_key_free(key);
	return g_file_set_contents(out, text->str, (gssize)text->len, NULL) ? 0 : 1;
}

/* A subscriber file line for supi holds exactly these K and OPc (one of
 * its valid key generations). */
static gboolean
subscriber_matches(const char *path, const char *supi, const CpSecret *k, const CpSecret *opc)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	char khex[33], ohex[33];
	gboolean found = FALSE;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return FALSE;
	cp_hex_encode(k->data, 16, khex);
	cp_hex_encode(opc->data, 16, ohex);
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		g_auto(GStrv) f = g_strsplit(*l, " ", -1);

		if (g_strv_length(f) == 4 && strcmp(f[0], supi) == 0)
			found |= strcmp(f[1], khex) == 0 && strcmp(f[2], ohex) == 0 &&
				strlen(f[3]) == 12;
	}
	return found;
}

static CpSecret *
k2_load(const char *path)
{
	g_autofree char *hex = NULL;
	CpSecret *k2;

	if (!path || !g_file_get_contents(path, &hex, NULL, NULL))
		return NULL;
	g_strstrip(hex);
	k2 = cp_secret_new_from_hex(hex, CP_KDF_LEN);
	cp_cleanse(hex, strlen(hex));
	return k2;
}

static gboolean
k2_save(const char *path, const CpSecret *k2)
{
	char hex[2 * CP_KDF_LEN + 2];
	gboolean ok;

	cp_hex_encode(k2->data, k2->len, hex);
	strcat(hex, "\n");
	ok = g_file_set_contents_full(path, hex, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL);
	cp_cleanse(hex, sizeof(hex));
	return ok;
}

static int
cmd_accept(int argc, char **argv)
{
	g_autofree char *config = NULL, *tag = NULL, *profile_path = NULL, *out = NULL;
	g_autofree char *subscribers = NULL, *registration = NULL, *usim_out = NULL;
	g_autofree char *k2_in = NULL, *k2_out = NULL, *receipt_out = NULL;
	gint64 last_seq = 0, counter = 100, bound = -1;
	int status = CP_RECEIPT_PROVISIONED;
	GOptionEntry entries[] = {
		{ "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "cellprov.conf", NULL },
		{ "tag", 0, 0, G_OPTION_ARG_FILENAME, &tag, "the tag the companion read (device record)", NULL },
		{ "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path, "the NDEF message the companion wrote", NULL },
		{ "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "next tag content, with the receipt", NULL },
		{ "receipt-out", 0, 0, G_OPTION_ARG_FILENAME, &receipt_out, "the receipt alone (binary)", NULL },
		{ "last-seq", 0, 0, G_OPTION_ARG_INT64, &last_seq, "last committed profile_seq", NULL },
		{ "bound", 0, 0, G_OPTION_ARG_INT64, &bound, "the device is bound at this binding version (default: unbound)", NULL },
		{ "k2-in", 0, 0, G_OPTION_ARG_FILENAME, &k2_in, "K'' the device holds (hex file), to MAC a command's receipt", NULL },
		{ "k2-out", 0, 0, G_OPTION_ARG_FILENAME, &k2_out, "write the accepted profile's K'' (hex, 0600)", NULL },
		{ "counter", 0, 0, G_OPTION_ARG_INT64, &counter, "att_counter of the next tag content", NULL },
		{ "status", 0, 0, G_OPTION_ARG_INT, &status, "receipt status to report", NULL },
		{ "registration", 0, 0, G_OPTION_ARG_STRING, &registration, "PLMN registered on", NULL },
		{ "subscribers", 0, 0, G_OPTION_ARG_FILENAME, &subscribers, "AUSF subscriber export to check", NULL },
		{ "usim-out", 0, 0, G_OPTION_ARG_FILENAME, &usim_out,
		  "write '<imsi> <K> <OPc>' the device would program into its USIM (0600)", NULL },
		G_OPTION_ENTRY_NULL
	};
	g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *tag_data = NULL, *prof_data = NULL, *url = NULL;
	g_autoptr(CpSecret) held_k2 = NULL;
	gsize tag_len, prof_len;
	CpNdefMessage tmsg, pmsg;
	const CpNdefRecord *rrec, *prec, *crec = NULL;
	CpDeviceRecord dr, next;
	CpProfile p;
	CpCommand cmd;
	CpProfileKeys keys = { 0 };
	CpVerifyContext ctx;
	CpReceipt r;
	cp_auto_buf rec = CP_BUF_INIT;
	cp_auto_buf receipt = CP_BUF_INIT;
	const CpSecret *mac_key;
	gboolean sub_ok = TRUE;
	int next_state;
	CpKey *key;
	CpError err;
	int ret = 1;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, NULL) || !config || !tag || !profile_path ||
	    !g_key_file_load_from_file(kf, config, G_KEY_FILE_NONE, NULL))
		return 2;
	key = load_key(kf);
	url = g_key_file_get_string(kf, "device", "certificate-url", NULL);
	if (!key || !g_file_get_contents(tag, &tag_data, &tag_len, NULL) ||
	    !g_file_get_contents(profile_path, &prof_data, &prof_len, NULL))
		return 2;
	if (cp_ndef_parse((uint8_t *)tag_data, tag_len, &tmsg) != CP_OK ||
	    !(rrec = cp_ndef_find_mime(&tmsg, CP_MIME_DEVICE)) ||
	    cp_device_record_decode(rrec->payload, rrec->payload_len, &dr) != CP_OK)
		return 2;
	held_k2 = k2_load(k2_in);
	err = cp_ndef_parse((uint8_t *)prof_data, prof_len, &pmsg);
	prec = err == CP_OK ? cp_ndef_find_mime(&pmsg, CP_MIME_PROFILE) : NULL;
	if (!prec && err == CP_OK)
		crec = cp_ndef_find_mime(&pmsg, CP_MIME_COMMAND);
	if (!prec && !crec) {
		printf("{\"result\":\"error\",\"code\":\"%s\"}\n", cp_error_name(err ? err : CP_ERR_NDEF_NO_RECORD));
		goto out;
	}

	memset(&ctx, 0, sizeof(ctx));
	ctx.device_id = dr.device_id;
	ctx.device_key = key;
	ctx.suites = dr.suites;
	ctx.n_suites = dr.n_suites;
	ctx.last_seq = (uint64_t)last_seq;
	ctx.now = (uint64_t)time(NULL);
	ctx.device_info = rrec->payload;
	ctx.device_info_len = dr.info_len;
	ctx.bound = bound >= 0;
	ctx.binding_version = bound >= 0 ? (uint64_t)bound : 0;
	memset(&r, 0, sizeof(r));
	r.version = CP_RECEIPT_VERSION;
	memcpy(r.device_id, dr.device_id, CP_DEVICE_ID_LEN);
	r.binding_version = ctx.binding_version;
	next_state = CP_DEVICE_FAILED;
	mac_key = NULL;

	if (crec) {
		/* an operator command: the device restores its USIM, forgets
		 * its owner, and reports with the K'' it held */
		err = cp_command_verify(crec->payload, crec->payload_len, &ctx, &cmd);
		if (err != CP_OK) {
			printf("{\"result\":\"error\",\"code\":\"%s\",\"number\":%d}\n", cp_error_name(err), err);
			r.status = CP_RECEIPT_REJECTED;
			r.reason = (uint16_t)err;
			next_state = bound >= 0 ? CP_DEVICE_PROVISIONED : CP_DEVICE_UNPROVISIONED;
		} else {
			printf("{\"result\":\"ok\",\"command\":%u,\"seq\":%" G_GUINT64_FORMAT
			       ",\"binding-version\":%" G_GUINT64_FORMAT "}\n",
			       cmd.command, cmd.seq, cmd.binding_version);
			r.profile_seq = cmd.seq;
			r.status = CP_RECEIPT_DECOMMISSIONED;
			r.binding_version = 0;
			next_state = CP_DEVICE_UNPROVISIONED;
		}
		mac_key = held_k2;
		goto write;
	}

	err = cp_profile_verify(prec->payload, prec->payload_len, &ctx, &p, &keys);
	if (err != CP_OK) {
		printf("{\"result\":\"error\",\"code\":\"%s\",\"number\":%d}\n", cp_error_name(err), err);
		r.status = CP_RECEIPT_REJECTED;
		r.reason = (uint16_t)err;
		status = CP_RECEIPT_REJECTED;
	} else {
		if (subscribers)
			sub_ok = subscriber_matches(subscribers, p.supi, keys.k_usim, keys.opc);
		if (usim_out) {
			char line[16 + 1 + 32 + 1 + 32 + 2];
			char khex[33], ohex[33];

			cp_hex_encode(keys.k_usim->data, 16, khex);
			cp_hex_encode(keys.opc->data, 16, ohex);
			g_snprintf(line, sizeof(line), "%s %s %s\n", p.supi, khex, ohex);
			if (!g_file_set_contents_full(usim_out, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL))
				sub_ok = FALSE;
			cp_cleanse(line, sizeof(line));
			cp_cleanse(khex, sizeof(khex));
			cp_cleanse(ohex, sizeof(ohex));
		}
		if (k2_out && !k2_save(k2_out, keys.k2))
			sub_ok = FALSE;
		printf("{\"result\":\"ok\",\"supi\":\"%s\",\"plmn\":\"%s\",\"network-name\":\"%s\","
		       "\"apn\":\"%s\",\"profile-seq\":%" G_GUINT64_FORMAT ",\"operation\":%u,"
		       "\"binding-version\":%" G_GUINT64_FORMAT ",\"subscriber\":%s}\n",
		       p.supi, p.plmn, p.network_name, p.apn, p.profile_seq, p.operation,
		       p.binding_version, sub_ok ? "true" : "false");
		r.profile_seq = p.profile_seq;
		r.status = (uint8_t)status;
		if (status == CP_RECEIPT_PROVISIONED)
			r.binding_version = p.binding_version;
		if (registration) {
			r.has_registration = TRUE;
			g_strlcpy(r.registration, registration, sizeof(r.registration));
		}
		next_state = CP_DEVICE_PROVISIONED;
	}
	mac_key = keys.k2;
write:
	if (out || receipt_out) {
		if (cp_receipt_encode(&r, key, mac_key, &receipt) != CP_OK)
			goto out;
		if (receipt_out && !g_file_set_contents(receipt_out, (const char *)receipt.data,
							(gssize)receipt.len, NULL))
			goto out;
	}
	if (out) {
		if (!fill_record(kf, key, (guint64)counter, next_state, &next) ||
		    cp_device_record_encode(&next, key, &rec) != CP_OK ||
		    write_tag(out, url, &rec, &receipt) != 0)
			goto out;
	}
	ret = err == CP_OK && sub_ok ? 0 : 1;
out:
	cp_profile_keys_clear(&keys);
	cp_key_free(key);
	return ret;
}

#if CP_TEST_NFC
/*
 * "nfc": the device's tag on a real libnfc controller (cp-nfc-tag): every
 * session presents a freshly signed record (and the last receipt); a
 * written profile goes through cp_profile_verify and gets a receipt MAC'd
 * with K''. One JSON line per event on stdout.
 */
typedef struct {
	GKeyFile *kf;
	CpKey *key;
	char *url;
	guint64 counter;
	guint64 last_seq;
	CpBuf info;
	CpDeviceRecord dr;
	GBytes *receipt;
	guint sessions, max_sessions;
	GMainLoop *loop;
} NfcDevice;

static GBytes *
nfc_content(CpNfcTag *tag, gpointer data)
{
	NfcDevice *d = data;
	cp_auto_buf rec = CP_BUF_INIT;
	cp_auto_buf ndef = CP_BUF_INIT;
	CpDeviceRecord dr;

	if (!fill_record(d->kf, d->key, ++d->counter, d->receipt ? CP_DEVICE_PROVISIONED : 0, &dr) ||
	    cp_device_record_encode(&dr, d->key, &rec) != CP_OK ||
	    cp_tag_build(d->url, rec.data, rec.len,
			 d->receipt ? g_bytes_get_data(d->receipt, NULL) : NULL,
			 d->receipt ? g_bytes_get_size(d->receipt) : 0, &ndef) != CP_OK)
		return NULL;
	printf("{\"event\":\"presented\",\"counter\":%" G_GUINT64_FORMAT ",\"receipt\":%s}\n",
	       d->counter, d->receipt ? "true" : "false");
	fflush(stdout);
	return g_bytes_new(ndef.data, ndef.len);
}

static void
nfc_written(CpNfcTag *tag, GBytes *ndef, gpointer data)
{
	NfcDevice *d = data;
	CpNdefMessage msg;
	const CpNdefRecord *prec;
	CpProfile p;
	CpProfileKeys keys = { 0 };
	CpVerifyContext ctx = { 0 };
	cp_auto_buf receipt = CP_BUF_INIT;
	CpReceipt r = { 0 };
	CpError err;

	err = cp_ndef_parse(g_bytes_get_data(ndef, NULL), g_bytes_get_size(ndef), &msg);
	prec = err == CP_OK ? cp_ndef_find_mime(&msg, CP_MIME_PROFILE) : NULL;
	if (!prec) {
		printf("{\"event\":\"written\",\"result\":\"error\",\"code\":\"no-profile\"}\n");
		fflush(stdout);
		return;
	}
	ctx.device_id = d->dr.device_id;
	ctx.device_key = d->key;
	ctx.suites = d->dr.suites;
	ctx.n_suites = d->dr.n_suites;
	ctx.last_seq = d->last_seq;
	ctx.now = (uint64_t)time(NULL);
	ctx.device_info = d->info.data;
	ctx.device_info_len = d->info.len;
	err = cp_profile_verify(prec->payload, prec->payload_len, &ctx, &p, &keys);
	r.version = CP_RECEIPT_VERSION;
	memcpy(r.device_id, d->dr.device_id, CP_DEVICE_ID_LEN);
	if (err == CP_OK) {
		r.profile_seq = p.profile_seq;
		r.binding_version = p.binding_version;
		r.status = CP_RECEIPT_PROVISIONED;
		r.has_registration = TRUE;
		g_strlcpy(r.registration, p.plmn, sizeof(r.registration));
		d->last_seq = p.profile_seq;
		printf("{\"event\":\"written\",\"result\":\"ok\",\"profile-seq\":%" G_GUINT64_FORMAT "}\n",
		       p.profile_seq);
	} else {
		r.status = CP_RECEIPT_REJECTED;
		r.reason = (uint16_t)err;
		printf("{\"event\":\"written\",\"result\":\"error\",\"code\":\"%s\"}\n", cp_error_name(err));
	}
	fflush(stdout);
	if (cp_receipt_encode(&r, d->key, keys.k2, &receipt) == CP_OK) {
		if (d->receipt)
			g_bytes_unref(d->receipt);
		d->receipt = g_bytes_new(receipt.data, receipt.len);
	}
	cp_profile_keys_clear(&keys);
}

static void
nfc_ended(CpNfcTag *tag, const CpNfcSessionInfo *info, const GError *error, gpointer data)
{
	NfcDevice *d = data;

	printf("{\"event\":\"session-ended\",\"error\":\"%s\"}\n", error ? error->message : "");
	fflush(stdout);
	if (++d->sessions >= d->max_sessions)
		g_main_loop_quit(d->loop);
}

static void
nfc_state(CpNfcTag *tag, CpNfcTagState state, const GError *error, gpointer data)
{
	printf("{\"event\":\"state\",\"state\":\"%s\"}\n", cp_nfc_tag_state_name(state));
	fflush(stdout);
}

static gboolean
nfc_quit(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

static int
cmd_nfc(int argc, char **argv)
{
	g_autofree char *config = NULL, *connstring = NULL;
	gint sessions = 1000;
	GOptionEntry entries[] = {
		{ "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "cellprov.conf", NULL },
		{ "connstring", 0, 0, G_OPTION_ARG_STRING, &connstring, "the device's PN532", NULL },
		{ "sessions", 0, 0, G_OPTION_ARG_INT, &sessions, "exit after this many sessions", NULL },
		G_OPTION_ENTRY_NULL
	};
	g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
	static const CpNfcTagCallbacks cb = {
		.content = nfc_content, .written = nfc_written,
		.session_ended = nfc_ended, .state_changed = nfc_state,
	};
	g_autoptr(GError) error = NULL;
	NfcDevice d = { 0 };
	CpNfcTag *tag;

	g_option_context_add_main_entries(oc, entries, NULL);
	d.kf = g_key_file_new();
	if (!g_option_context_parse(oc, &argc, &argv, NULL) || !config || !connstring ||
	    !g_key_file_load_from_file(d.kf, config, G_KEY_FILE_NONE, NULL) || !(d.key = load_key(d.kf)))
		return 2;
	d.url = g_key_file_get_string(d.kf, "device", "certificate-url", NULL);
	cp_buf_init(&d.info);
	if (!fill_record(d.kf, d.key, 0, 0, &d.dr) || cp_device_record_info(&d.dr, &d.info) != CP_OK)
		return 1;
	d.max_sessions = (guint)sessions;
	d.loop = g_main_loop_new(NULL, FALSE);
	tag = cp_nfc_tag_new(connstring, &cb, &d);
	if (!cp_nfc_tag_start(tag, &error)) {
		fprintf(stderr, "cp-test-device nfc: %s\n", error->message);
		return 1;
	}
	g_unix_signal_add(SIGTERM, nfc_quit, d.loop);
	g_main_loop_run(d.loop);
	cp_nfc_tag_stop(tag);
	cp_nfc_tag_unref(tag);
	g_main_loop_unref(d.loop);
	if (d.receipt)
		g_bytes_unref(d.receipt);
	cp_buf_clear(&d.info);
	cp_key_free(d.key);
	g_key_file_unref(d.kf);
	g_free(d.url);
	return 0;
}
#endif

/* A certificate of the manufacturer's kind (cellprov-mfg device): subject
 * O=manufacturer, CN=DeviceID, serialNumber; CA:FALSE; key usage
 * digitalSignature and keyAgreement; 127-bit random serial number. */
static X509 *
device_cert(CpKey *key, const char *id_hex, const char *org, const char *serial_number,
	    X509 *issuer, CpKey *issuer_key)
{
	static const struct {
		int nid;
		const char *value;
	} exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature,keyAgreement" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	time_t now = time(NULL) - 60;
	gboolean ok = x && name && cp_random(serial, sizeof(serial)) == CP_OK;

	if (ok) {
		serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x01);
		bn = BN_bin2bn(serial, sizeof(serial), NULL);
	}
	ok = ok && bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
	     X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)id_hex, -1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_UTF8,
					(const unsigned char *)serial_number, -1, -1, 0) &&
	     X509_set_subject_name(x, name) && X509_set_issuer_name(x, X509_get_subject_name(issuer)) &&
	     ASN1_TIME_set(X509_getm_notBefore(x), now) &&
	     ASN1_TIME_set(X509_getm_notAfter(x), now + 30 * 86400) && X509_set_pubkey(x, key);
	for (gsize i = 0; ok && i < G_N_ELEMENTS(exts); i++) {
		X509V3_CTX ctx;
		X509_EXTENSION *ext;

		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
		ok = ext && X509_add_ext(x, ext, -1) == 1;
		X509_EXTENSION_free(ext);
	}
	ok = ok && X509_sign(x, issuer_key, EVP_sha256());
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static char *
cert_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (bio && PEM_write_bio_X509(bio, x)) {
		n = BIO_get_mem_data(bio, &data);
		out = g_strndup(data, (gsize)n);
	}
	BIO_free(bio);
	return out;
}

/* A campaign's devices, made in one process for a load generator: for
 * each, a P-256 key, a certificate from the CA of cellprov-mfg ca, its
 * chain file under --chains (as cellprov-mfg device publishes it) and a
 * device record with att_counter 1; "URL RECORD" (base64) a line in
 * --out. The keys stay in memory: a campaign's devices are provisioned
 * once each, and nothing else is asked of them. */
static int
cmd_campaign(int argc, char **argv)
{
	g_autofree char *ca_dir = NULL, *chains = NULL, *url_base = NULL, *out = NULL, *prefix = NULL;
	gint64 count = 0;
	GOptionEntry entries[] = {
		{ "ca", 0, 0, G_OPTION_ARG_FILENAME, &ca_dir, "directory of cellprov-mfg ca", NULL },
		{ "chains", 0, 0, G_OPTION_ARG_FILENAME, &chains, "where the chain files go", NULL },
		{ "url-base", 0, 0, G_OPTION_ARG_STRING, &url_base, "certificate URL base", NULL },
		{ "count", 0, 0, G_OPTION_ARG_INT64, &count, "how many devices", NULL },
		{ "serial-prefix", 0, 0, G_OPTION_ARG_STRING, &prefix, "serial numbers PREFIX0, PREFIX1, ...", NULL },
		{ "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "output file", NULL },
		G_OPTION_ENTRY_NULL
	};
	g_autoptr(GOptionContext) oc = g_option_context_new(NULL);
	g_autoptr(GString) text = g_string_new(NULL);
	g_autofree char *int_key_pem = NULL, *int_cert_pem = NULL, *path = NULL;
	CpKey *int_key = NULL;
	X509 *int_cert = NULL;
	BIO *bio;
	gsize len;
	int ret = 1;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, NULL) || !ca_dir || !chains || !url_base || !out ||
	    count < 1 || count > 10000000)
		return 2;
	path = g_build_filename(ca_dir, "intermediate-key.pem", NULL);
	if (!g_file_get_contents(path, &int_key_pem, &len, NULL) || !(int_key = cp_pkey_from_pem(int_key_pem, len))) {
		fprintf(stderr, "%s: not a key\n", path);
		goto out;
	}
	cp_cleanse(int_key_pem, len);
	g_free(path);
	path = g_build_filename(ca_dir, "intermediate-cert.pem", NULL);
	if (!g_file_get_contents(path, &int_cert_pem, &len, NULL) ||
	    !(bio = BIO_new_mem_buf(int_cert_pem, (int)len))) {
		fprintf(stderr, "%s: not readable\n", path);
		goto out;
	}
	int_cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!int_cert) {
		fprintf(stderr, "%s: not a certificate\n", path);
		goto out;
	}
	if (g_mkdir_with_parents(chains, 0755) < 0) {
		fprintf(stderr, "%s: %s\n", chains, g_strerror(errno));
		goto out;
	}
	for (gint64 i = 0; i < count; i++) {
		g_autofree char *serial = g_strdup_printf("%s%" G_GINT64_FORMAT, prefix ? prefix : "SN-", i);
		g_autofree char *leaf = NULL, *chain = NULL, *chain_path = NULL, *b64 = NULL;
		char id_hex[2 * CP_DEVICE_ID_LEN + 1];
		cp_auto_buf rec = CP_BUF_INIT;
		CpDeviceRecord dr = { 0 };
		CpKey *key = cp_p256_generate();
		X509 *cert = NULL;
		gboolean ok = key && cp_device_id(key, dr.device_id) == CP_OK;

		if (ok) {
			cp_hex_encode(dr.device_id, CP_DEVICE_ID_LEN, id_hex);
			cert = device_cert(key, id_hex, "Example Ltd", serial, int_cert, int_key);
			leaf = cert ? cert_pem(cert) : NULL;
		}
		if (leaf) {
			chain = g_strconcat(leaf, int_cert_pem, NULL);
			chain_path = g_build_filename(chains, id_hex, NULL);
			dr.version = 1;
			g_strlcpy(dr.manufacturer, "Example Ltd", sizeof(dr.manufacturer));
			g_strlcpy(dr.model, "GW-1", sizeof(dr.model));
			g_strlcpy(dr.serial, serial, sizeof(dr.serial));
			dr.suites[dr.n_suites++] = CP_SUITE_B;
			dr.att_counter = 1;
		}
		ok = leaf && g_file_set_contents(chain_path, chain, -1, NULL) &&
		     cp_random(dr.att_random, sizeof(dr.att_random)) == CP_OK &&
		     cp_device_record_encode(&dr, key, &rec) == CP_OK;
		X509_free(cert);
		cp_key_free(key);
		if (!ok) {
			fprintf(stderr, "device %" G_GINT64_FORMAT ": cannot make it\n", i);
			goto out;
		}
		b64 = g_base64_encode(rec.data, rec.len);
		g_string_append_printf(text, "%s/%s %s\n", url_base, id_hex, b64);
	}
	ret = g_file_set_contents(out, text->str, (gssize)text->len, NULL) ? 0 : 1;
out:
	cp_key_free(int_key);
	X509_free(int_cert);
	return ret;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "tag") == 0)
		return cmd_tag(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "accept") == 0)
		return cmd_accept(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "records") == 0)
		return cmd_records(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "campaign") == 0)
		return cmd_campaign(argc - 1, argv + 1);
#if CP_TEST_NFC
	if (argc >= 2 && strcmp(argv[1], "nfc") == 0)
		return cmd_nfc(argc - 1, argv + 1);
#endif
	fprintf(stderr, "usage: cp-test-device tag|accept|records|campaign ...\n");
	return 2;
}
