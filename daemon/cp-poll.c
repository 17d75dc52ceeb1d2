/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "cellprovd"
#include "cp-poll.h"

#include <string.h>

#include "cellprov.h"
#include "cp-glib.h"
#include "cp-https.h"

#define POLL_TIMEOUT_MS (60 * 1000)
#define POLL_FIRST_BACKOFF_MS (60 * 1000)
/* The first poll once bound and registered: 30-90 s later. */
#define POLL_EARLY_MS (30 * 1000)

struct _CpPoll {
	CpDaemon *d;
	GTlsDatabase *database;
	GCancellable *cancel;
	guint interval_ms;
	guint backoff_min_ms;
	guint backoff_ms;               /* the next retry's delay */
	guint early_ms;                 /* the first poll: early_ms to 3 * early_ms */
	guint timer;
	guint next_delay_ms;
	gint64 next_time;               /* wall clock of the timer, 0: none */
	gboolean started;
	gboolean was_ready;             /* bound, provisioned and registered */
	gboolean in_flight;             /* a POST is under way */
	gboolean applying;              /* a polled message is being applied */
	GBytes *receipt_before;         /* the daemon's receipt before it */
	GBytes *receipt;                /* to post; NULL: none */
	gint64 last_time;
	char *last_result;
	const char *outcome;            /* the stable word of last_result */
	void (*notify)(gpointer data);
	gpointer notify_data;
	void (*round_done)(gpointer data);
	gpointer round_done_data;
	guint64 seq;                    /* of the message being applied */
	gboolean attempt_ok;            /* its attempt succeeded */
	char type[16];
};

static void poll_tick(CpPoll *p);

static void
notify(CpPoll *p)
{
	if (p->notify)
		p->notify(p->notify_data);
}

static gboolean
on_timer(gpointer data)
{
	CpPoll *p = data;

	p->timer = 0;
	p->next_time = 0;
	poll_tick(p);
	if (!p->timer)
		notify(p);
	return G_SOURCE_REMOVE;
}

static void
schedule(CpPoll *p, guint ms)
{
	if (p->timer)
		g_source_remove(p->timer);
	p->next_delay_ms = ms;
	p->next_time = g_get_real_time() + (gint64)ms * 1000;
	p->timer = g_timeout_add(ms, on_timer, p);
	notify(p);
}

/* The first poll of a device just bound and registered (or found so at
 * start): early_ms to 3 * early_ms, not a whole interval. */
static guint
early(CpPoll *p)
{
	return (guint)g_random_double_range(p->early_ms, 3.0 * p->early_ms);
}

/* The interval, +-20%. */
static guint
jittered(CpPoll *p)
{
	return (guint)g_random_double_range(0.8 * p->interval_ms, 1.2 * p->interval_ms);
}

static void
set_result(CpPoll *p, const char *outcome, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* outcome: the word of docs/dbus.md, LastPollResult */
static void
set_result(CpPoll *p, const char *outcome, const char *fmt, ...)
{
	va_list ap;

	p->outcome = outcome;
	g_free(p->last_result);
	va_start(ap, fmt);
	p->last_result = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	p->last_time = g_get_real_time();
	notify(p);
}

/* A poll, and whatever it applied and posted, is over: nothing is left
 * for this round but a receipt that could not be posted yet. */
static void
round_over(CpPoll *p)
{
	if (p->round_done && !cp_poll_is_busy(p))
		p->round_done(p->round_done_data);
}

static void
succeeded(CpPoll *p)
{
	p->backoff_ms = p->backoff_min_ms;
	schedule(p, jittered(p));
	round_over(p);
}

static void
failed(CpPoll *p)
{
	guint ms = p->backoff_ms;

	g_message("poll: %s; next try in %u s", p->last_result, (ms + 999) / 1000);
	p->backoff_ms = MIN((guint64)p->backoff_ms * 2, p->interval_ms);
	schedule(p, ms);
	round_over(p);
}

/*
 * The SM's answers are flat JSON objects of strings and numbers: find the
 * value of key. Strings without escapes other than \" \\ \/; a number
 * comes back as its digits. NULL when absent or not understood.
 */
static char *
json_get(GBytes *body, const char *key)
{
	gsize len;
	const char *s = g_bytes_get_data(body, &len);
	const char *end = s + len;
	g_autofree char *want = g_strdup_printf("\"%s\"", key);
	const char *k;
	GString *out;

	if (!s || !g_utf8_validate(s, (gssize)len, NULL))
		return NULL;
	for (k = s; k < end; k++) {
		if (*k == '"' && (gsize)(end - k) >= strlen(want) &&
		    memcmp(k, want, strlen(want)) == 0)
			break;
		if (*k == '"') {          /* skip any other string */
			for (k++; k < end && *k != '"'; k++)
				if (*k == '\\')
					k++;
		}
	}
	if (k >= end)
		return NULL;
	for (k += strlen(want); k < end && g_ascii_isspace(*k); k++)
		;
	if (k >= end || *k != ':')
		return NULL;
	for (k++; k < end && g_ascii_isspace(*k); k++)
		;
	if (k < end && g_ascii_isdigit(*k)) {
		const char *v = k;

		while (k < end && g_ascii_isdigit(*k))
			k++;
		return g_strndup(v, (gsize)(k - v));
	}
	if (k >= end || *k != '"')
		return NULL;
	out = g_string_new(NULL);
	for (k++; k < end && *k != '"'; k++) {
		if (*k == '\\') {
			if (++k >= end || (*k != '"' && *k != '\\' && *k != '/')) {
				g_string_free(out, TRUE);
				return NULL;
			}
		}
		g_string_append_c(out, *k);
	}
	if (k >= end) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}

/* The word of a failed request: no answer, or an answer not understood. */
static const char *
failure_word(const GError *error)
{
	if (!error)
		return "error";
	if (error->domain == G_TLS_ERROR)
		return "tls";
	if (error->domain == G_RESOLVER_ERROR ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND))
		return "unreachable";
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
		return "timeout";
	return "error";
}

/* "HTTP 409 stale-attestation" from an error answer. */
static char *
http_error(guint status, GBytes *body)
{
	g_autofree char *code = body ? json_get(body, "error") : NULL;

	return g_strdup_printf("HTTP %u%s%s", status, code ? " " : "", code ? code : "");
}

static void
post(CpPoll *p, const char *path, const char *member, GBytes *data, GAsyncReadyCallback cb)
{
	g_autofree char *b64 = g_base64_encode(g_bytes_get_data(data, NULL), g_bytes_get_size(data));
	char *json = g_strdup_printf("{\"%s\": \"%s\"}", member, b64);
	g_autoptr(GBytes) body = g_bytes_new_take(json, strlen(json));

	p->in_flight = TRUE;
	cp_https_post_async(cp_daemon_get_conf(p->d)->sm_url, path, p->database, body,
			    POLL_TIMEOUT_MS, p->cancel, cb, p);
}

/* ---- the receipt ---- */

static void
on_receipt_done(GObject *source, GAsyncResult *res, gpointer data)
{
	CpPoll *p = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body = NULL;
	g_autofree char *result = NULL;
	g_autofree char *what = NULL;
	guint status = cp_https_post_finish(res, &body, &error);

	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	p->in_flight = FALSE;
	if (status == 200)
		result = json_get(body, "result");
	if (status == 200 && (g_strcmp0(result, "processed") == 0 ||
			      g_strcmp0(result, "already-processed") == 0)) {
		set_result(p, !p->attempt_ok ? "refused"
			      : strcmp(p->type, "profile") == 0 ? "applied-profile" : "applied-command",
			   "receipt of %s %" G_GUINT64_FORMAT " posted (%s)", p->type, p->seq,
			   result);
		g_message("poll: %s", p->last_result);
		g_clear_pointer(&p->receipt, g_bytes_unref);
		succeeded(p);
		return;
	}
	if (status >= 400 && status < 500 && status != 408 && status != 429) {
		/* the SM will never take it: the tag still shows it */
		what = http_error(status, body);
		set_result(p, "receipt-refused", "receipt of %s %" G_GUINT64_FORMAT " refused: %s", p->type, p->seq,
			   what);
		g_message("poll: %s; dropped", p->last_result);
		g_clear_pointer(&p->receipt, g_bytes_unref);
		succeeded(p);
		return;
	}
	what = error ? g_strdup(error->message)
		     : status == 200 ? g_strdup("unexpected answer") : http_error(status, body);
	set_result(p, error || status == 200 ? failure_word(error) : "http-error",
		   "failed: receipt: %s", what);
	failed(p);
}

static void
post_receipt(CpPoll *p)
{
	post(p, "/v1/device/receipt", "receipt", p->receipt, on_receipt_done);
}

/* The polled message's attempt is over when the daemon is idle again; its
 * receipt is a new one on the tag. */
static void
check_applied(CpPoll *p)
{
	GBytes *now;

	if (!p->applying || cp_daemon_is_busy(p->d))
		return;
	p->applying = FALSE;
	p->attempt_ok = cp_daemon_get_last_error(p->d, NULL) == CP_OK;
	now = cp_daemon_get_receipt(p->d);
	if (now && now != p->receipt_before) {
		g_clear_pointer(&p->receipt_before, g_bytes_unref);
		p->receipt = g_bytes_ref(now);
		post_receipt(p);
		return;
	}
	g_clear_pointer(&p->receipt_before, g_bytes_unref);
	set_result(p, "refused", "%s %" G_GUINT64_FORMAT " not applied (no receipt)", p->type, p->seq);
	g_message("poll: %s", p->last_result);
	succeeded(p);
}

/* Bound, provisioned and registered (an operator in the journal). */
static gboolean
ready(CpPoll *p)
{
	return cp_daemon_get_bound(p->d) &&
	       cp_daemon_get_state(p->d) == CP_STATE_PROVISIONED &&
	       cp_daemon_get_operator(p->d)[0] != '\0';
}

/* The first poll of a device that just became ready comes early. */
static void
check_ready(CpPoll *p)
{
	gboolean was = p->was_ready;
	guint ms;

	p->was_ready = ready(p);
	if (!p->started || was || !p->was_ready || p->in_flight || p->applying || p->receipt)
		return;
	ms = early(p);
	g_message("poll: bound and registered: first poll in %u s", (ms + 999) / 1000);
	schedule(p, ms);
}

static void
on_changed(CpDaemon *d, gpointer data)
{
	check_applied(data);
	check_ready(data);
}

static const CpDaemonListener listener = { .changed = on_changed };

/* ---- the poll ---- */

static void
apply(CpPoll *p, GBytes *body)
{
	g_autofree char *type = json_get(body, "type");
	g_autofree char *seq = json_get(body, "seq");
	g_autofree char *message = json_get(body, "message");
	g_autofree guint8 *raw = NULL;
	gsize raw_len = 0;
	const char *mime;
	cp_auto_buf ndef = CP_BUF_INIT;
	CpNdefMessage msg;
	g_autoptr(GBytes) bytes = NULL;

	if (g_strcmp0(type, "profile") == 0)
		mime = CP_MIME_PROFILE;
	else if (g_strcmp0(type, "command") == 0)
		mime = CP_MIME_COMMAND;
	else
		mime = NULL;
	if (message && *message)
		raw = g_base64_decode(message, &raw_len);
	memset(&msg, 0, sizeof(msg));
	if (raw_len) {
		cp_ndef_record_mime(&msg.records[0], mime ? mime : "", raw, raw_len);
		msg.n_records = 1;
	}
	if (!mime || !seq || !raw_len || cp_ndef_encode(&msg, &ndef) != CP_OK) {
		set_result(p, "error", "failed: the SM's answer is not a profile or command");
		failed(p);
		return;
	}
	g_strlcpy(p->type, type, sizeof(p->type));
	p->seq = g_ascii_strtoull(seq, NULL, 10);
	g_message("poll: %s %" G_GUINT64_FORMAT " waiting (%" G_GSIZE_FORMAT " bytes): applying",
		  p->type, p->seq, raw_len);
	set_result(p, "applying", "%s %" G_GUINT64_FORMAT " applying", p->type, p->seq);
	bytes = g_bytes_new(ndef.data, ndef.len);
	g_clear_pointer(&p->receipt_before, g_bytes_unref);
	if (cp_daemon_get_receipt(p->d))
		p->receipt_before = g_bytes_ref(cp_daemon_get_receipt(p->d));
	p->applying = TRUE;
	cp_daemon_profile_written(p->d, bytes);
	check_applied(p);
}

static void
on_poll_done(GObject *source, GAsyncResult *res, gpointer data)
{
	CpPoll *p = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body = NULL;
	g_autofree char *what = NULL;
	guint status = cp_https_post_finish(res, &body, &error);

	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	p->in_flight = FALSE;
	if (status == 204) {
		set_result(p, "nothing", "nothing waiting");
		g_message("poll: %s", p->last_result);
		succeeded(p);
		return;
	}
	if (status == 200) {
		apply(p, body);
		return;
	}
	what = error ? g_strdup(error->message) : http_error(status, body);
	set_result(p, error ? failure_word(error) : "http-error", "failed: %s", what);
	failed(p);
}

static gboolean
eligible(CpPoll *p)
{
	return ready(p) && !cp_daemon_is_busy(p->d);
}

static void
poll_tick(CpPoll *p)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) record = NULL;

	if (p->in_flight || p->applying)
		return;
	if (p->receipt) {
		post_receipt(p);
		return;
	}
	if (!eligible(p)) {
		g_debug("poll: not bound, provisioned and registered: not polling");
		schedule(p, jittered(p));
		return;
	}
	record = cp_daemon_build_record(p->d, &error);
	if (!record) {
		set_result(p, "error", "failed: %s", error->message);
		failed(p);
		return;
	}
	post(p, "/v1/device/poll", "device-record", record, on_poll_done);
}

CpPoll *
cp_poll_new(CpDaemon *d, GError **error)
{
	const CpConf *conf = cp_daemon_get_conf(d);
	g_autoptr(GTlsDatabase) db = NULL;
	CpPoll *p;

	if (!conf->sm_url)
		return NULL;
	db = cp_https_database_new(conf->sm_ca, error);
	if (!db) {
		g_prefix_error(error, "[network] sm-ca: ");
		return NULL;
	}
	p = g_new0(CpPoll, 1);
	p->d = d;
	p->database = g_steal_pointer(&db);
	p->cancel = g_cancellable_new();
	p->interval_ms = conf->poll_interval * 1000;
	p->backoff_min_ms = p->backoff_ms = MIN(POLL_FIRST_BACKOFF_MS, p->interval_ms);
	p->early_ms = POLL_EARLY_MS;
	p->last_result = g_strdup("");
	p->outcome = "";
	cp_daemon_add_listener(d, &listener, p);
	return p;
}

void
cp_poll_set_test_timing(CpPoll *p, guint interval_ms, guint backoff_ms, guint early_ms)
{
	p->interval_ms = interval_ms;
	p->backoff_min_ms = p->backoff_ms = backoff_ms;
	p->early_ms = early_ms;
}

void
cp_poll_set_notify(CpPoll *p, void (*cb)(gpointer data), gpointer data)
{
	p->notify = cb;
	p->notify_data = data;
}

void
cp_poll_set_round_done(CpPoll *p, void (*cb)(gpointer data), gpointer data)
{
	p->round_done = cb;
	p->round_done_data = data;
}

gboolean
cp_poll_is_busy(CpPoll *p)
{
	return p->in_flight || p->applying || p->receipt;
}

gboolean
cp_poll_is_ready(CpPoll *p)
{
	return ready(p);
}

void
cp_poll_start(CpPoll *p, guint first_ms)
{
	guint ms;

	p->started = TRUE;
	p->was_ready = ready(p);
	ms = first_ms ? first_ms : p->was_ready ? early(p) : jittered(p);
	g_message("poll: asking %s every %u s (+-20%%), first in %u s",
		  cp_daemon_get_conf(p->d)->sm_url, p->interval_ms / 1000, (ms + 999) / 1000);
	schedule(p, ms);
}

void
cp_poll_free(CpPoll *p)
{
	if (!p)
		return;
	g_cancellable_cancel(p->cancel);
	cp_daemon_remove_listener(p->d, p);
	if (p->timer)
		g_source_remove(p->timer);
	g_clear_object(&p->cancel);
	g_clear_object(&p->database);
	g_clear_pointer(&p->receipt_before, g_bytes_unref);
	g_clear_pointer(&p->receipt, g_bytes_unref);
	g_free(p->last_result);
	g_free(p);
}

gint64
cp_poll_get_last_time(CpPoll *p)
{
	return p->last_time;
}

const char *
cp_poll_get_last_result(CpPoll *p)
{
	return p->last_result;
}

const char *
cp_poll_get_outcome(CpPoll *p)
{
	return p->outcome;
}

gint64
cp_poll_get_next_time(CpPoll *p)
{
	return p->next_time;
}

guint
cp_poll_get_next_delay_ms(CpPoll *p)
{
	return p->next_delay_ms;
}
