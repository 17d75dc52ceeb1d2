/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "cellprovd"

#include "cp-daemon.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "cellprov.h"
#include "cp-glib.h"

#define LOG_MAX_LINES 200
#define RESTORE_RETRY_MIN_S 2
#define RESTORE_RETRY_MAX_S 300

typedef enum {
	ATTEMPT_STEP_FIRST,
	ATTEMPT_STEP_PARSE,
	ATTEMPT_STEP_VERIFY,
	ATTEMPT_STEP_TARGET,
	ATTEMPT_STEP_PROVISION,
	ATTEMPT_STEP_COMMIT,
	ATTEMPT_STEP_LAST,
} AttemptStep;

#define ATTEMPT_N_STEPS (ATTEMPT_STEP_LAST - 1)

typedef struct {
	CpDaemon *d;
	AttemptStep step;
	GBytes *ndef;
	CpProfile profile;
	gboolean have_profile;          /* profile decoded (for the seq of a rejection) */
	gboolean is_command;            /* the written record is a command, not a profile */
	CpCommand command;
	gboolean have_command;          /* command decoded (for the seq of a rejection) */
	CpProfileKeys keys;
	char spn[17];
	CpBackendTarget target;
	CpBackendResult *result;
	guint hold_source;              /* a test hold (cp_daemon_set_test_hold) */
} Attempt;

struct _CpDaemon {
	CpConf *conf;
	CpKey *key;
	CpSecret *adm1;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	char device_id_hex[2 * CP_DEVICE_ID_LEN + 1];
	uint8_t *device_info;
	size_t device_info_len;

	CpAnchors *anchors;             /* [device] trusted-operators; NULL: trust on first use */
	char pin_hex[2 * CP_SHA256_LEN + 1];  /* the journal's pin, "" when none */

	CpMachine m;
	CpJournal j;                    /* what is on disk */

	GPtrArray *transports;          /* CpTransport: NFC, BLE, side by side */
	char *transport_state;          /* "nfc waiting, ble closed", "none" */
	CpBackend *backend;
	gboolean own_transport_set;
	gboolean own_backend_set;

	GCancellable *cancellable;
	Attempt *attempt;
	gboolean restoring;
	guint restore_source;
	guint restore_delay;
	CpError restore_reason;

	CpError last_error;
	char *last_error_msg;
	char *operator_str;
	char *step;
	GBytes *receipt;                /* on the tag: the journal's, or a rejection's */
	GBytes *receipt_presented;      /* the receipt of the read session under way */
	GBytes *receipt_read;           /* the last receipt a read session presented and ended */
	gint64 last_tag_time;           /* monotonic µs of the last tag session event, 0: none */
	GPtrArray *log;

	GArray *listeners;              /* Listener */

	guint hold_received_ms;         /* tests only */
	guint hold_verified_ms;
	guint hold_provisioning_ms;
	guint hold_decommissioning_ms;
	guint hold_source;

	gboolean stopping;
	GCallback stop_done;
	gpointer stop_data;
	guint stop_source;
};

/* ---- logging: every line of an attempt is kept for GetLog ---- */

static void dlog(CpDaemon *d, GLogLevelFlags level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
dlog(CpDaemon *d, GLogLevelFlags level, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *stamp = g_date_time_format(now, "%H:%M:%S");
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_log(G_LOG_DOMAIN, level, "%s", msg);
	if (level & G_LOG_LEVEL_DEBUG)
		return;
	if (d->log->len >= LOG_MAX_LINES + 1)
		g_ptr_array_remove_index(d->log, 0);
	/* keep the NULL terminator last */
	g_ptr_array_insert(d->log, (gint)d->log->len - 1, g_strdup_printf("%s %s", stamp, msg));
}

static void
log_reset(CpDaemon *d)
{
	g_ptr_array_set_size(d->log, 0);
	g_ptr_array_add(d->log, NULL);
}

typedef struct {
	CpDaemonListener l;
	gpointer data;
} Listener;

static void
notify_changed(CpDaemon *d)
{
	for (guint i = 0; i < d->listeners->len; i++) {
		Listener *x = &g_array_index(d->listeners, Listener, i);

		if (x->l.changed)
			x->l.changed(d, x->data);
	}
}

static void
set_last_error(CpDaemon *d, CpError code, const char *message)
{
	d->last_error = code;
	g_free(d->last_error_msg);
	d->last_error_msg = g_strdup(code ? (message ? message : cp_error_message(code)) : "");
}

static void
set_step(CpDaemon *d, const char *step)
{
	g_free(d->step);
	d->step = g_strdup(step ? step : "");
}

static void
update_operator(CpDaemon *d)
{
	g_free(d->operator_str);
	if (!d->j.plmn[0])
		d->operator_str = g_strdup("");
	else if (d->j.network_name[0])
		d->operator_str = g_strdup_printf("%s %s", d->j.plmn, d->j.network_name);
	else
		d->operator_str = g_strdup(d->j.plmn);
}

static void
update_owner(CpDaemon *d)
{
	if (d->j.has_pin)
		cp_hex_encode(d->j.operator_pin, sizeof(d->j.operator_pin), d->pin_hex);
	else
		d->pin_hex[0] = '\0';
}

static const char *
operation_name(uint8_t op)
{
	switch (op) {
	case CP_OP_CLAIM:
		return "claim";
	case CP_OP_REPROVISION:
		return "reprovision";
	case CP_OP_TRANSFER:
		return "transfer";
	default:
		return "unknown operation";
	}
}

static void
set_receipt(CpDaemon *d, const uint8_t *buf, size_t len)
{
	g_clear_pointer(&d->receipt, g_bytes_unref);
	if (buf && len)
		d->receipt = g_bytes_new(buf, len);
}

/* ---- the machine ---- */

static gboolean
transition(CpDaemon *d, CpEvent ev)
{
	CpState from, to;

	if (cp_machine_feed(&d->m, ev, &from, &to) != CP_OK) {
		g_warning("state: event %s does not fit state %s (ignored)",
			  cp_event_name(ev), cp_state_name(d->m.state));
		return FALSE;
	}
	dlog(d, G_LOG_LEVEL_MESSAGE, "state: %s -> %s (%s)", cp_state_name(from),
	     cp_state_name(to), cp_event_name(ev));
	for (guint i = 0; i < d->listeners->len; i++) {
		Listener *x = &g_array_index(d->listeners, Listener, i);

		if (x->l.state_changed)
			x->l.state_changed(d, from, to, ev, x->data);
	}
	notify_changed(d);
	return TRUE;
}

/*
 * udev starts the daemon only on an unprovisioned device (udev/): a marker
 * beside the journal says it is provisioned. It follows the journal and
 * is only a hint, so a failure to update it is logged, not fatal.
 */
static void
sync_marker(CpDaemon *d, CpState state)
{
	g_autofree char *path = g_build_filename(d->conf->state_directory, "provisioned", NULL);
	g_autoptr(GError) error = NULL;

	if (state == CP_STATE_PROVISIONED) {
		if (!g_file_test(path, G_FILE_TEST_EXISTS) && !cp_file_replace(path, "", 0, 0600, &error))
			g_warning("journal: %s", error->message);
	} else if (g_unlink(path) < 0 && errno != ENOENT) {
		g_warning("journal: cannot remove %s: %s", path, g_strerror(errno));
	}
}

/* Make next the journal: on disk first, then in memory. */
static gboolean
journal_commit(CpDaemon *d, CpJournal *next, GError **error)
{
	if (!cp_journal_save(d->conf->state_directory, next, error)) {
		cp_journal_clear(next);
		return FALSE;
	}
	if (next->state != d->j.state)
		sync_marker(d, next->state);
	cp_journal_clear(&d->j);
	d->j = *next;
	cp_journal_init(next);
	return TRUE;
}

/* The device's binding version as the receipt states it: 0, no owner. */
static uint64_t
binding_now(CpDaemon *d)
{
	return d->j.bound ? d->j.binding_version : 0;
}

/* Every receipt is signed with the device key (the SM checks that, whoever
 * carries it) and MAC'd with k2 when there is one (the companion checks
 * that); binding is the device's binding version after the event. */
static GBytes *
make_receipt(CpDaemon *d, uint64_t seq, CpReceiptStatus status, CpError reason,
	     const char *registration, const CpSecret *k2, uint64_t binding)
{
	CpReceipt r;
	cp_auto_buf buf = CP_BUF_INIT;
	CpError err;

	memset(&r, 0, sizeof(r));
	r.version = CP_RECEIPT_VERSION;
	memcpy(r.device_id, d->device_id, sizeof(r.device_id));
	r.profile_seq = seq;
	r.binding_version = binding;
	r.status = (uint8_t)status;
	r.reason = (uint16_t)reason;
	if (registration && *registration) {
		r.has_registration = TRUE;
		g_strlcpy(r.registration, registration, sizeof(r.registration));
	}
	err = cp_receipt_encode(&r, d->key, k2, &buf);
	if (err != CP_OK) {
		g_warning("receipt: cannot encode (%s)", cp_error_name(err));
		return NULL;
	}
	return g_bytes_new(buf.data, buf.len);
}

/* A failed re-provisioning returns to the working subscription: the
 * journal's status fields go back to it. */
static void
journal_keep_working(CpJournal *next)
{
	g_strlcpy(next->imsi, next->kept_imsi, sizeof(next->imsi));
	g_strlcpy(next->plmn, next->kept_plmn, sizeof(next->plmn));
	g_strlcpy(next->network_name, next->kept_network_name, sizeof(next->network_name));
	g_strlcpy(next->apn, next->kept_apn, sizeof(next->apn));
	next->state = CP_STATE_PROVISIONED;
}

/* ---- restore: after a crash, or when the backend's own rollback failed ---- */

static void start_restore(CpDaemon *d);
static void maybe_stop_done(CpDaemon *d);
static void decommission_commit(CpDaemon *d);

static gboolean
restore_retry_cb(gpointer data)
{
	CpDaemon *d = data;

	d->restore_source = 0;
	start_restore(d);
	return G_SOURCE_REMOVE;
}

static void
restore_schedule_retry(CpDaemon *d)
{
	if (d->stopping)
		return;
	d->restore_delay = d->restore_delay ? MIN(d->restore_delay * 2, RESTORE_RETRY_MAX_S)
					    : RESTORE_RETRY_MIN_S;
	dlog(d, G_LOG_LEVEL_MESSAGE, "rollback: retrying in %u s", d->restore_delay);
	d->restore_source = g_timeout_add_seconds(d->restore_delay, restore_retry_cb, d);
}

static void
restore_done(GObject *source, GAsyncResult *res, gpointer data)
{
	CpDaemon *d = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) receipt = NULL;
	CpJournal next;

	gboolean kept;

	d->restoring = FALSE;
	if (!d->backend->ops->restore_finish(d->backend, res, &error)) {
		dlog(d, G_LOG_LEVEL_MESSAGE, "%s: failed: %s",
		     cp_state_is_command(d->m.state) ? "decommission" : "rollback", error->message);
		set_last_error(d, CP_ERR_ROLLBACK, error->message);
		set_step(d, NULL);
		notify_changed(d);
		restore_schedule_retry(d);
		maybe_stop_done(d);
		return;
	}
	d->restore_delay = 0;
	if (cp_state_is_command(d->m.state)) {
		dlog(d, G_LOG_LEVEL_MESSAGE, "decommission: the original USIM values are back");
		decommission_commit(d);
		maybe_stop_done(d);
		return;
	}
	kept = d->j.kept;
	dlog(d, G_LOG_LEVEL_MESSAGE, kept ? "rollback: the working subscription is back"
					  : "rollback: the old USIM values are back");

	receipt = make_receipt(d, d->j.attempt_seq, CP_RECEIPT_FAILED, d->restore_reason, NULL,
			       d->j.k2, binding_now(d));
	cp_journal_copy(&next, &d->j);
	next.state = CP_STATE_FAILED;
	if (kept)
		journal_keep_working(&next);
	next.last_error = (uint16_t)d->restore_reason;
	cp_journal_end_attempt(&next);
	if (receipt)
		cp_journal_set_receipt(&next, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	if (!journal_commit(d, &next, &error)) {
		/* the journal still says busy: the next start restores again,
		 * which is harmless (restore is idempotent) */
		dlog(d, G_LOG_LEVEL_WARNING, "journal: %s", error->message);
	}
	set_last_error(d, d->restore_reason, NULL);
	if (receipt)
		set_receipt(d, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	set_step(d, NULL);
	update_operator(d);
	transition(d, kept ? CP_EVENT_KEPT : CP_EVENT_ROLLED_BACK);
	maybe_stop_done(d);
}

static void
start_restore(CpDaemon *d)
{
	g_autoptr(GBytes) backup = NULL;

	if (d->restoring || d->stopping)
		return;
	if (!d->backend) {
		dlog(d, G_LOG_LEVEL_MESSAGE,
		     "%s: no modem backend to put the old USIM values back with",
		     cp_state_is_command(d->m.state) ? "decommission" : "rollback");
		set_last_error(d, CP_ERR_ROLLBACK, "no modem backend to roll back with");
		restore_schedule_retry(d);
		return;
	}
	if (cp_state_is_command(d->m.state)) {
		/* a decommission: the values from before the first provisioning */
		if (!d->j.original) {
			dlog(d, G_LOG_LEVEL_WARNING, "decommission: no backup of the USIM values is kept "
			     "(provisioned under a journal of format 1 or 2 and not re-provisioned "
			     "since): the USIM is left as it is");
			decommission_commit(d);
			return;
		}
		backup = g_bytes_new(d->j.original->data, d->j.original->len);
		if (d->j.original_inexact)
			dlog(d, G_LOG_LEVEL_MESSAGE, "decommission: the values from before the first "
			     "provisioning are unknown (provisioned under a journal of format 1 or 2): "
			     "restoring the oldest backup kept since, the last one taken under it");
		else
			dlog(d, G_LOG_LEVEL_MESSAGE, "decommission: restoring the USIM values from "
			     "before the first provisioning");
	} else {
		g_assert(d->j.backup);
		backup = g_bytes_new(d->j.backup->data, d->j.backup->len);
		dlog(d, G_LOG_LEVEL_MESSAGE, "rollback: restoring the USIM values saved before profile %"
		     G_GUINT64_FORMAT, d->j.attempt_seq);
	}
	d->restoring = TRUE;
	d->backend->ops->restore(d->backend, backup, NULL, restore_done, d);
}

/* ---- one attempt: a written profile, through to the receipt ---- */

static void attempt_step(Attempt *a);
static void attempt_command(Attempt *a);

static void
attempt_free(Attempt *a)
{
	if (!a)
		return;
	if (a->hold_source)
		g_source_remove(a->hold_source);
	g_clear_pointer(&a->ndef, g_bytes_unref);
	cp_profile_keys_clear(&a->keys);
	cp_backend_result_free(a->result);
	cp_cleanse(&a->profile, sizeof(a->profile));
	g_free(a);
}

static void
attempt_end(Attempt *a)
{
	CpDaemon *d = a->d;

	g_assert(d->attempt == a);
	d->attempt = NULL;
	set_step(d, NULL);
	attempt_free(a);
	notify_changed(d);
	maybe_stop_done(d);
}

/* Checks failed: nothing was written, the journal is as it was. */
static void
attempt_reject(Attempt *a, CpError err, const char *detail)
{
	CpDaemon *d = a->d;
	g_autoptr(GBytes) receipt = NULL;
	uint64_t seq = a->is_command ? (a->have_command ? a->command.seq : 0)
				     : (a->have_profile ? a->profile.profile_seq : 0);
	/* A profile's K'' is known only once its mac checked out (replay,
	 * expiry). A command has no mac: its rejection is MAC'd with the
	 * owner's K'' the device holds (none when unbound), so that the
	 * owner's companion can check the receipt; the signature lets anyone
	 * check it came from the device. */
	const CpSecret *k2 = a->is_command ? d->j.owner_k2 : a->keys.k2;

	dlog(d, G_LOG_LEVEL_MESSAGE, "%s %" G_GUINT64_FORMAT " rejected: %s (%s)%s%s",
	     a->is_command ? "command" : "profile", seq,
	     cp_error_message(err), cp_error_name(err), detail ? ": " : "", detail ? detail : "");
	receipt = make_receipt(d, seq, CP_RECEIPT_REJECTED, err, NULL, k2, binding_now(d));
	if (receipt)
		set_receipt(d, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	set_last_error(d, err, detail);
	transition(d, CP_EVENT_REJECTED);
	attempt_end(a);
}

/*
 * The backend failed. Before the backup was saved nothing was written;
 * after, the backend has rolled back itself, unless it says
 * CP_ERR_ROLLBACK: then the daemon keeps retrying from the journal.
 */
static void
attempt_fail(Attempt *a, CpError err, const char *message)
{
	CpDaemon *d = a->d;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) receipt = NULL;
	CpJournal next;
	gboolean written = cp_state_is_busy(d->m.state);
	/* a re-provisioning of a provisioned device keeps its working
	 * subscription: nothing was written, or it was rolled back to it */
	gboolean kept = written ? d->j.kept : d->m.rest == CP_STATE_PROVISIONED;

	dlog(d, G_LOG_LEVEL_MESSAGE, "provisioning failed: %s (%s)", message, cp_error_name(err));
	set_last_error(d, err, message);
	if (!written && kept)
		transition(d, CP_EVENT_KEPT);
	else if (d->m.state != CP_STATE_ROLLING_BACK)
		transition(d, CP_EVENT_STEP_FAILED);

	if (written && (err == CP_ERR_ROLLBACK || err == CP_ERR_STORAGE)) {
		/* the card may hold the new values: restore from the journal's
		 * backup (CP_ERR_STORAGE: the commit could not be saved, so
		 * the next start would roll back anyway; do it now) */
		cp_journal_copy(&next, &d->j);
		next.state = CP_STATE_ROLLING_BACK;
		next.last_error = (uint16_t)err;
		if (!journal_commit(d, &next, &error))
			dlog(d, G_LOG_LEVEL_WARNING, "journal: %s", error->message);
		d->restore_reason = err;
		attempt_end(a);
		start_restore(d);
		return;
	}
	if (written)
		dlog(d, G_LOG_LEVEL_MESSAGE, "rollback: done by the modem backend");

	receipt = make_receipt(d, a->profile.profile_seq, CP_RECEIPT_FAILED, err, NULL, a->keys.k2,
			       binding_now(d));
	cp_journal_copy(&next, &d->j);
	next.state = CP_STATE_FAILED;
	if (written && kept)
		journal_keep_working(&next);
	else if (kept)
		next.state = CP_STATE_PROVISIONED;
	next.last_error = (uint16_t)err;
	cp_journal_end_attempt(&next);
	if (receipt)
		cp_journal_set_receipt(&next, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	if (!journal_commit(d, &next, &error)) {
		dlog(d, G_LOG_LEVEL_WARNING, "journal: %s", error->message);
		set_last_error(d, CP_ERR_STORAGE, error->message);
	}
	if (receipt)
		set_receipt(d, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	update_operator(d);
	if (written)
		transition(d, kept ? CP_EVENT_KEPT : CP_EVENT_ROLLED_BACK);
	attempt_end(a);
}

static void
on_backend_progress(CpBackend *b, CpBackendPhase phase, guint step, guint n_steps,
		    const char *what, gpointer user_data)
{
	CpDaemon *d = user_data;
	g_autofree char *line = g_strdup_printf("(%u/%u) %s", step, n_steps, what);

	dlog(d, G_LOG_LEVEL_MESSAGE, "modem: %s", line);
	set_step(d, line);
	if (!d->attempt) {
		notify_changed(d);
		return;
	}
	/* the backend's own rollback has begun */
	if (phase == CP_PHASE_RESTORING && cp_state_is_busy(d->m.state) &&
	    d->m.state != CP_STATE_ROLLING_BACK) {
		dlog(d, G_LOG_LEVEL_MESSAGE, "modem: rolling back what it wrote");
		transition(d, CP_EVENT_STEP_FAILED);
	}
	if (phase == CP_PHASE_RESETTING && d->m.state == CP_STATE_PROVISIONING)
		transition(d, CP_EVENT_WRITTEN);
	if (phase == CP_PHASE_REGISTERING) {
		if (d->m.state == CP_STATE_PROVISIONING)
			transition(d, CP_EVENT_WRITTEN);
		if (d->m.state == CP_STATE_RESETTING)
			transition(d, CP_EVENT_RESET_DONE);
	}
	notify_changed(d);
}

static gboolean
provisioning_hold_done(gpointer data)
{
	Attempt *a = data;

	a->hold_source = 0;
	cp_backend_backup_saved(a->d->backend, NULL);
	return G_SOURCE_REMOVE;
}

/* Before the first write: the backup and the consumed profile_seq go to
 * disk, or nothing is written at all. */
static void
on_backend_backup(CpBackend *b, GBytes *backup, gpointer user_data)
{
	CpDaemon *d = user_data;
	Attempt *a = d->attempt;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) receipt = NULL;
	CpJournal next;
	gsize len = 0;
	const uint8_t *data = g_bytes_get_data(backup, &len);

	if (!a || d->m.state != CP_STATE_VERIFIED) {
		cp_set_error(&error, CP_ERR_STATE, "no attempt waits for a backup");
		cp_backend_backup_saved(b, error);
		return;
	}
	if (len == 0 || len > CP_JOURNAL_BACKUP_MAX) {
		cp_set_error(&error, CP_ERR_STORAGE, "the modem backup (%zu bytes) does not fit the journal",
			     (size_t)len);
		cp_backend_backup_saved(b, error);
		return;
	}
	receipt = make_receipt(d, a->profile.profile_seq, CP_RECEIPT_ACCEPTED, CP_OK, NULL, a->keys.k2,
			       binding_now(d));

	cp_journal_copy(&next, &d->j);
	/* a provisioned device: a rollback returns to its working subscription */
	if (d->m.rest == CP_STATE_PROVISIONED && d->j.imsi[0] && d->j.plmn[0]) {
		next.kept = true;
		g_strlcpy(next.kept_imsi, d->j.imsi, sizeof(next.kept_imsi));
		g_strlcpy(next.kept_plmn, d->j.plmn, sizeof(next.kept_plmn));
		g_strlcpy(next.kept_network_name, d->j.network_name, sizeof(next.kept_network_name));
		g_strlcpy(next.kept_apn, d->j.apn, sizeof(next.kept_apn));
	}
	next.state = CP_STATE_PROVISIONING;
	next.committed_seq = a->profile.profile_seq;
	next.attempt_seq = a->profile.profile_seq;
	next.last_error = 0;
	g_strlcpy(next.imsi, a->profile.supi, sizeof(next.imsi));
	g_strlcpy(next.plmn, a->profile.plmn, sizeof(next.plmn));
	g_strlcpy(next.network_name, a->profile.network_name, sizeof(next.network_name));
	g_strlcpy(next.apn, a->profile.apn, sizeof(next.apn));
	next.k2 = cp_secret_dup(a->keys.k2);
	next.backup = cp_secret_new_from(data, len);
	/* the first backup is the original, kept until a decommission */
	if (!next.original)
		next.original = cp_secret_new_from(data, len);
	if (receipt)
		cp_journal_set_receipt(&next, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	if (!next.k2 || !next.backup || !next.original) {
		cp_journal_clear(&next);
		cp_set_error(&error, CP_ERR_CRYPTO, "out of memory");
		cp_backend_backup_saved(b, error);
		return;
	}
	if (!journal_commit(d, &next, &error)) {
		dlog(d, G_LOG_LEVEL_WARNING, "journal: %s; nothing is written", error->message);
		cp_backend_backup_saved(b, error);
		return;
	}
	dlog(d, G_LOG_LEVEL_MESSAGE, "journal: backup of the old USIM values saved, profile_seq %"
	     G_GUINT64_FORMAT " committed", a->profile.profile_seq);
	if (d->j.kept)
		dlog(d, G_LOG_LEVEL_MESSAGE, "journal: a failure returns to the working subscription");
	update_operator(d);
	if (receipt)
		set_receipt(d, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	transition(d, CP_EVENT_BACKUP_SAVED);
	if (d->hold_provisioning_ms) {
		/* journaled, nothing on the card yet: the backend waits */
		dlog(d, G_LOG_LEVEL_MESSAGE, "test hold: %u ms in %s", d->hold_provisioning_ms,
		     cp_state_name(d->m.state));
		a->hold_source = g_timeout_add(d->hold_provisioning_ms, provisioning_hold_done, a);
		return;
	}
	cp_backend_backup_saved(b, NULL);
}

static void
provision_done(GObject *source, GAsyncResult *res, gpointer data)
{
	Attempt *a = data;
	CpDaemon *d = a->d;
	g_autoptr(GError) error = NULL;

	a->result = d->backend->ops->provision_finish(d->backend, res, &error);
	if (!a->result) {
		CpError code = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
				       ? CP_ERR_INTERRUPTED
				       : cp_error_from_gerror(error, CP_ERR_MODEM);

		attempt_fail(a, code, error->message);
		return;
	}
	/* a backend may skip the steps that drive these transitions */
	if (d->m.state == CP_STATE_PROVISIONING)
		transition(d, CP_EVENT_WRITTEN);
	if (d->m.state == CP_STATE_RESETTING)
		transition(d, CP_EVENT_RESET_DONE);
	a->step++;
	attempt_step(a);
}

static void
truncate_utf8(char *dst, size_t cap, const char *src)
{
	const char *end;

	g_strlcpy(dst, src, cap);
	/* cut at a character boundary, not inside one */
	if (!g_utf8_validate(dst, -1, &end))
		*(char *)end = '\0';
}

static gboolean
hold_done(gpointer data)
{
	Attempt *a = data;

	a->hold_source = 0;
	attempt_step(a);
	return G_SOURCE_REMOVE;
}

/* A test hold in the current state: the flow goes on from a->step later. */
static gboolean
attempt_hold(Attempt *a, guint ms)
{
	if (ms == 0)
		return FALSE;
	dlog(a->d, G_LOG_LEVEL_MESSAGE, "test hold: %u ms in %s", ms, cp_state_name(a->d->m.state));
	a->hold_source = g_timeout_add(ms, hold_done, a);
	return TRUE;
}

/* ---- a command: decommission ---- */

static const char *
command_name(uint8_t command)
{
	return command == CP_COMMAND_DECOMMISSION ? "decommission" : "unknown command";
}

/*
 * The original values are back on the card (or there were none to put
 * back): the device forgets its owner, K'' and pin, and re-arms. The
 * receipt is MAC'd with the K'' it held, so that the owner's companion
 * can check it, and signed, so that the SM can whoever carries it.
 */
static void
decommission_commit(CpDaemon *d)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) receipt = NULL;
	CpJournal next;

	receipt = make_receipt(d, d->j.attempt_seq, CP_RECEIPT_DECOMMISSIONED, CP_OK, NULL,
			       d->j.owner_k2, 0);
	if (!receipt) {
		set_last_error(d, CP_ERR_CRYPTO, "the receipt could not be built");
		restore_schedule_retry(d);
		return;
	}
	cp_journal_copy(&next, &d->j);
	next.state = CP_STATE_IDLE;
	next.last_error = 0;
	next.imsi[0] = next.plmn[0] = next.network_name[0] = next.apn[0] = '\0';
	next.bound = false;
	next.binding_version = 0;
	next.has_pin = false;
	memset(next.operator_pin, 0, sizeof(next.operator_pin));
	next.operator_name[0] = '\0';
	cp_secret_free(next.owner_k2);
	next.owner_k2 = NULL;
	cp_secret_free(next.original);
	next.original = NULL;
	next.original_inexact = false;
	cp_journal_set_receipt(&next, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	if (!journal_commit(d, &next, &error)) {
		/* the journal still says decommissioning: retry (the restore
		 * is idempotent), as the next start would */
		dlog(d, G_LOG_LEVEL_WARNING, "journal: %s", error->message);
		set_last_error(d, CP_ERR_STORAGE, error->message);
		restore_schedule_retry(d);
		return;
	}
	dlog(d, G_LOG_LEVEL_MESSAGE, "decommission: command %" G_GUINT64_FORMAT " done: no owner, "
	     "no pinned operator, K'' forgotten; the tag presents the device for a new claim",
	     d->j.attempt_seq);
	set_last_error(d, CP_OK, NULL);
	set_receipt(d, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
	set_step(d, NULL);
	update_operator(d);
	update_owner(d);
	transition(d, CP_EVENT_DECOMMISSIONED);
}

static gboolean
decommission_hold_done(gpointer data)
{
	CpDaemon *d = data;

	d->hold_source = 0;
	start_restore(d);
	return G_SOURCE_REMOVE;
}

/* Verify a written command and carry it out. The seq is committed with
 * the step (like a profile's at the backup), before the card is touched. */
static void
attempt_command(Attempt *a)
{
	CpDaemon *d = a->d;
	g_autoptr(GError) error = NULL;
	CpVerifyContext ctx;
	CpNdefMessage msg;
	const CpNdefRecord *rec;
	gsize len = 0;
	const uint8_t *buf = g_bytes_get_data(a->ndef, &len);
	CpJournal next;
	CpError err;

	dlog(d, G_LOG_LEVEL_MESSAGE, "(%d/%d) verifying command %" G_GUINT64_FORMAT,
	     ATTEMPT_STEP_VERIFY, ATTEMPT_N_STEPS, a->have_command ? a->command.seq : 0);
	cp_ndef_parse(buf, len, &msg);
	rec = cp_ndef_find_mime(&msg, CP_MIME_COMMAND);
	memset(&ctx, 0, sizeof(ctx));
	ctx.device_id = d->device_id;
	ctx.device_key = d->key;
	ctx.last_seq = d->j.committed_seq;
	ctx.now = (uint64_t)(g_get_real_time() / G_USEC_PER_SEC);
	ctx.anchors = d->anchors;
	if (d->j.has_pin)
		ctx.operator_pin = d->j.operator_pin;
	ctx.bound = d->j.bound;
	ctx.binding_version = d->j.bound ? d->j.binding_version : 0;
	err = cp_command_verify(rec->payload, rec->payload_len, &ctx, &a->command);
	if (err == CP_OK && a->command.command != CP_COMMAND_DECOMMISSION)
		err = CP_ERR_BAD_VALUE;
	if (err != CP_OK) {
		g_autofree char *detail = NULL;

		if (err == CP_ERR_OPERATOR && d->j.has_pin)
			detail = g_strdup_printf("the device is pinned to %s",
						 d->j.operator_name[0] ? d->j.operator_name
								     : "another operator");
		else if (err == CP_ERR_BINDING && d->j.bound)
			detail = g_strdup_printf("a %s at binding version %" G_GUINT64_FORMAT
						 " on a device bound at version %" G_GUINT64_FORMAT,
						 command_name(a->command.command),
						 a->command.binding_version, d->j.binding_version);
		else if (err == CP_ERR_BINDING)
			detail = g_strdup("a command to a device with no owner");
		else if (err == CP_ERR_BAD_VALUE && a->have_command)
			detail = g_strdup_printf("command %u is unknown", a->command.command);
		attempt_reject(a, err, detail);
		return;
	}
	a->have_command = TRUE;
	dlog(d, G_LOG_LEVEL_MESSAGE, "command %" G_GUINT64_FORMAT " verified: %s at binding version %"
	     G_GUINT64_FORMAT ", signed by %s", a->command.seq, command_name(a->command.command),
	     a->command.binding_version, a->command.op.name);

	cp_journal_copy(&next, &d->j);
	next.state = CP_STATE_DECOMMISSIONING;
	next.committed_seq = a->command.seq;
	next.attempt_seq = a->command.seq;
	next.last_error = 0;
	if (!journal_commit(d, &next, &error)) {
		/* nothing changed: the same command can be written again */
		attempt_reject(a, CP_ERR_STORAGE, error->message);
		return;
	}
	dlog(d, G_LOG_LEVEL_MESSAGE, "journal: decommission under way, seq %" G_GUINT64_FORMAT
	     " committed", a->command.seq);
	transition(d, CP_EVENT_VERIFIED);
	transition(d, CP_EVENT_DECOMMISSION);
	attempt_end(a);
	if (d->hold_decommissioning_ms) {
		dlog(d, G_LOG_LEVEL_MESSAGE, "test hold: %u ms in %s", d->hold_decommissioning_ms,
		     cp_state_name(d->m.state));
		d->hold_source = g_timeout_add(d->hold_decommissioning_ms, decommission_hold_done, d);
		return;
	}
	start_restore(d);
}

static void
attempt_step(Attempt *a)
{
	CpDaemon *d = a->d;
	g_autoptr(GError) error = NULL;
	CpError err;

	switch (a->step) {
	case ATTEMPT_STEP_FIRST:
		a->step++;
		if (attempt_hold(a, d->hold_received_ms))
			return;
		G_GNUC_FALLTHROUGH;

	case ATTEMPT_STEP_PARSE: {
		gsize len = 0;
		const uint8_t *buf = g_bytes_get_data(a->ndef, &len);
		CpNdefMessage msg;
		const CpNdefRecord *rec;

		dlog(d, G_LOG_LEVEL_MESSAGE, "(%d/%d) reading the written message (%zu bytes)",
		     ATTEMPT_STEP_PARSE, ATTEMPT_N_STEPS, (size_t)len);
		err = cp_ndef_parse(buf, len, &msg);
		if (err != CP_OK) {
			attempt_reject(a, err, "the written NDEF message is malformed");
			return;
		}
		rec = cp_ndef_find_mime(&msg, CP_MIME_PROFILE);
		if (!rec && (rec = cp_ndef_find_mime(&msg, CP_MIME_COMMAND))) {
			a->is_command = TRUE;
			if (cp_command_decode(rec->payload, rec->payload_len, &a->command) == CP_OK)
				a->have_command = TRUE;
			a->step++;
			attempt_command(a);
			return;
		}
		if (!rec) {
			attempt_reject(a, CP_ERR_NDEF_NO_RECORD, "no " CP_MIME_PROFILE " or "
				       CP_MIME_COMMAND " record");
			return;
		}
		/* decode alone first, so that a rejection names the profile_seq */
		if (cp_profile_decode(rec->payload, rec->payload_len, &a->profile) == CP_OK)
			a->have_profile = TRUE;
		a->step++;
		G_GNUC_FALLTHROUGH;
	}

	case ATTEMPT_STEP_VERIFY: {
		CpNdefMessage msg;
		const CpNdefRecord *rec;
		CpVerifyContext ctx;
		gsize len = 0;
		const uint8_t *buf = g_bytes_get_data(a->ndef, &len);

		dlog(d, G_LOG_LEVEL_MESSAGE, "(%d/%d) verifying profile %" G_GUINT64_FORMAT,
		     ATTEMPT_STEP_VERIFY, ATTEMPT_N_STEPS, a->have_profile ? a->profile.profile_seq : 0);
		cp_ndef_parse(buf, len, &msg);
		rec = cp_ndef_find_mime(&msg, CP_MIME_PROFILE);
		memset(&ctx, 0, sizeof(ctx));
		ctx.device_id = d->device_id;
		ctx.device_key = d->key;
		ctx.suites = d->conf->suites;
		ctx.n_suites = d->conf->n_suites;
		ctx.last_seq = d->j.committed_seq;
		ctx.now = (uint64_t)(g_get_real_time() / G_USEC_PER_SEC);
		ctx.device_info = d->device_info;
		ctx.device_info_len = d->device_info_len;
		ctx.anchors = d->anchors;
		ctx.bound = d->j.bound;
		if (d->j.bound)
			ctx.binding_version = d->j.binding_version;
		/* the pin holds bound or not: a factory reset keeps it */
		ctx.operator_pin = d->j.has_pin ? d->j.operator_pin : NULL;
		err = cp_profile_verify(rec->payload, rec->payload_len, &ctx, &a->profile, &a->keys);
		if (err != CP_OK) {
			g_autofree char *detail = NULL;

			if (err == CP_ERR_OPERATOR && d->j.has_pin)
				detail = g_strdup_printf("the device is pinned to %s",
							 d->j.operator_name[0] ? d->j.operator_name
									     : "an operator it did not pin");
			else if (err == CP_ERR_OPERATOR)
				detail = g_strdup(d->anchors ? "not signed under a trusted operator root"
							     : "not signed under a self-signed operator root");
			else if (err == CP_ERR_BINDING && d->j.bound)
				detail = g_strdup_printf("a %s at binding version %" G_GUINT64_FORMAT
							 " on a device bound at version %" G_GUINT64_FORMAT,
							 operation_name(a->profile.operation),
							 a->profile.binding_version, d->j.binding_version);
			else if (err == CP_ERR_BINDING)
				detail = g_strdup_printf("a %s on a device with no owner",
							 operation_name(a->profile.operation));
			attempt_reject(a, err, detail);
			return;
		}
		a->have_profile = TRUE;
		{
			g_autofree char *imsi = cp_redact(a->profile.supi);

			dlog(d, G_LOG_LEVEL_MESSAGE, "profile %" G_GUINT64_FORMAT " verified: IMSI %s on %s (%s), APN %s",
			     a->profile.profile_seq, imsi, a->profile.plmn, a->profile.network_name,
			     a->profile.apn);
			dlog(d, G_LOG_LEVEL_MESSAGE, "profile %" G_GUINT64_FORMAT ": %s at binding version %"
			     G_GUINT64_FORMAT ", signed by %s", a->profile.profile_seq,
			     operation_name(a->profile.operation), a->profile.binding_version,
			     a->profile.op.name);
		}
		transition(d, CP_EVENT_VERIFIED);
		a->step++;
		if (attempt_hold(a, d->hold_verified_ms))
			return;
		G_GNUC_FALLTHROUGH;
	}

	case ATTEMPT_STEP_TARGET:
		dlog(d, G_LOG_LEVEL_MESSAGE, "(%d/%d) preparing the USIM values",
		     ATTEMPT_STEP_TARGET, ATTEMPT_N_STEPS);
		truncate_utf8(a->spn, sizeof(a->spn), a->profile.network_name);
		a->target.imsi = a->profile.supi;
		a->target.plmn = a->profile.plmn;
		a->target.mnc_length = (guint)strlen(a->profile.plmn) - 3;
		a->target.spn = a->spn;
		a->target.apn = a->profile.apn;
		a->target.k = a->keys.k_usim;
		a->target.opc = a->keys.opc;
		if (!d->backend) {
			attempt_fail(a, CP_ERR_MODEM, "no modem backend in this cellprovd");
			return;
		}
		if (!d->backend->ops->check(d->backend, &a->target, &error)) {
			attempt_fail(a, cp_error_from_gerror(error, CP_ERR_MODEM), error->message);
			return;
		}
		a->step++;
		G_GNUC_FALLTHROUGH;

	case ATTEMPT_STEP_PROVISION:
		dlog(d, G_LOG_LEVEL_MESSAGE, "(%d/%d) provisioning through the %s backend",
		     ATTEMPT_STEP_PROVISION, ATTEMPT_N_STEPS, cp_backend_get_name(d->backend));
		d->backend->ops->provision(d->backend, &a->target, d->cancellable, provision_done, a);
		return;

	case ATTEMPT_STEP_COMMIT: {
		g_autoptr(GBytes) receipt = NULL;
		g_autofree char *imsi = cp_redact(a->result->imsi);
		CpJournal next;

		dlog(d, G_LOG_LEVEL_MESSAGE, "(%d/%d) registered on %s as %s: committing",
		     ATTEMPT_STEP_COMMIT, ATTEMPT_N_STEPS, a->result->registered_plmn, imsi);
		receipt = make_receipt(d, a->profile.profile_seq, CP_RECEIPT_PROVISIONED, CP_OK,
				       a->result->registered_plmn, a->keys.k2,
				       a->profile.binding_version);
		cp_journal_copy(&next, &d->j);
		next.state = CP_STATE_PROVISIONED;
		next.last_error = 0;
		cp_journal_end_attempt(&next);
		if (a->result->imsi)
			g_strlcpy(next.imsi, a->result->imsi, sizeof(next.imsi));
		if (a->result->registered_plmn)
			g_strlcpy(next.plmn, a->result->registered_plmn, sizeof(next.plmn));
		if (a->result->operator_name && *a->result->operator_name)
			truncate_utf8(next.network_name, sizeof(next.network_name),
				      a->result->operator_name);
		/* the owner binding moves with this commit, and only with it */
		next.bound = true;
		next.binding_version = a->profile.binding_version;
		next.has_pin = true;
		memcpy(next.operator_pin, a->profile.op.root, sizeof(next.operator_pin));
		cp_secret_free(next.owner_k2);
		next.owner_k2 = cp_secret_dup(a->keys.k2);
		truncate_utf8(next.operator_name, sizeof(next.operator_name), a->profile.op.name);
		if (receipt)
			cp_journal_set_receipt(&next, g_bytes_get_data(receipt, NULL),
					       g_bytes_get_size(receipt));
		if (!receipt || !journal_commit(d, &next, &error)) {
			cp_journal_clear(&next);
			attempt_fail(a, CP_ERR_STORAGE,
				     error ? error->message : "the receipt could not be built");
			return;
		}
		update_operator(d);
		update_owner(d);
		dlog(d, G_LOG_LEVEL_MESSAGE, "owner: bound to %s at binding version %" G_GUINT64_FORMAT,
		     d->j.operator_name[0] ? d->j.operator_name : "an unnamed operator",
		     d->j.binding_version);
		set_last_error(d, CP_OK, NULL);
		set_receipt(d, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
		transition(d, CP_EVENT_REGISTERED);
		a->step++;
		G_GNUC_FALLTHROUGH;
	}

	case ATTEMPT_STEP_LAST:
		dlog(d, G_LOG_LEVEL_MESSAGE, "provisioned: profile %" G_GUINT64_FORMAT " on %s",
		     a->profile.profile_seq, d->operator_str);
		attempt_end(a);
		return;
	}
	g_assert_not_reached();
}

void
cp_daemon_profile_written(CpDaemon *d, GBytes *ndef)
{
	Attempt *a;

	if (d->stopping)
		return;
	if (d->attempt || d->restoring || cp_state_is_busy(d->m.state) ||
	    cp_state_is_command(d->m.state)) {
		/* the receipt on the tag stays that of the attempt under way */
		dlog(d, G_LOG_LEVEL_MESSAGE, "a profile was written while %s: ignored (%s)",
		     cp_state_name(d->m.state), cp_error_name(CP_ERR_BUSY));
		return;
	}
	if (!cp_machine_accepts(&d->m, CP_EVENT_PROFILE_WRITTEN)) {
		g_autoptr(GBytes) receipt = NULL;

		dlog(d, G_LOG_LEVEL_MESSAGE, "a profile was written while %s: rejected (%s); "
		     "re-arm the device to provision it again", cp_state_name(d->m.state),
		     cp_error_name(CP_ERR_STATE));
		receipt = make_receipt(d, 0, CP_RECEIPT_REJECTED, CP_ERR_STATE, NULL, NULL,
				       binding_now(d));
		if (receipt)
			set_receipt(d, g_bytes_get_data(receipt, NULL), g_bytes_get_size(receipt));
		notify_changed(d);
		return;
	}

	log_reset(d);
	a = g_new0(Attempt, 1);
	a->d = d;
	a->ndef = g_bytes_ref(ndef);
	a->step = ATTEMPT_STEP_FIRST;
	d->attempt = a;
	transition(d, CP_EVENT_PROFILE_WRITTEN);
	attempt_step(a);
}

/* ---- the tag ---- */

/* A fresh signed device record: bumps and journals the attestation
 * counter first. */
static gboolean
build_record(CpDaemon *d, CpBuf *rec, CpDeviceRecord *dr, GError **error)
{
	CpJournal next;
	CpError err;

	/* The counter is on disk before any record carries it, so a crash
	 * can never make the device show the same value twice. */
	cp_journal_copy(&next, &d->j);
	next.att_counter++;
	if (!journal_commit(d, &next, error))
		return FALSE;

	memset(dr, 0, sizeof(*dr));
	dr->version = CP_DEVICE_RECORD_VERSION;
	memcpy(dr->device_id, d->device_id, sizeof(dr->device_id));
	g_strlcpy(dr->manufacturer, d->conf->manufacturer, sizeof(dr->manufacturer));
	g_strlcpy(dr->model, d->conf->model, sizeof(dr->model));
	g_strlcpy(dr->serial, d->conf->serial, sizeof(dr->serial));
	memcpy(dr->suites, d->conf->suites, d->conf->n_suites);
	dr->n_suites = d->conf->n_suites;
	dr->state = (uint8_t)cp_state_device_state(d->m.state);
	dr->att_counter = d->j.att_counter;
	err = cp_random(dr->att_random, sizeof(dr->att_random));
	if (err == CP_OK)
		err = cp_device_record_encode(dr, d->key, rec);
	if (err != CP_OK) {
		cp_set_error(error, err, "cannot build the device record: %s",
			     cp_error_message(err));
		return FALSE;
	}
	return TRUE;
}

GBytes *
cp_daemon_build_tag(CpDaemon *d, GError **error)
{
	CpDeviceRecord dr;
	cp_auto_buf rec = CP_BUF_INIT;
	cp_auto_buf ndef = CP_BUF_INIT;
	CpError err;
	const uint8_t *receipt = NULL;
	gsize receipt_len = 0;

	if (!build_record(d, &rec, &dr, error))
		return NULL;
	if (d->receipt)
		receipt = g_bytes_get_data(d->receipt, &receipt_len);
	err = cp_tag_build(d->conf->certificate_url, rec.data, rec.len, receipt, receipt_len,
			   &ndef);
	if (err != CP_OK) {
		cp_set_error(error, err, "cannot build the tag content: %s", cp_error_message(err));
		return NULL;
	}
	g_debug("tag: device record with attestation counter %" G_GUINT64_FORMAT ", state %u%s",
		dr.att_counter, dr.state, receipt ? ", receipt" : "");
	notify_changed(d);
	return g_bytes_new(ndef.data, ndef.len);
}

GBytes *
cp_daemon_build_record(CpDaemon *d, GError **error)
{
	CpDeviceRecord dr;
	cp_auto_buf rec = CP_BUF_INIT;

	if (!build_record(d, &rec, &dr, error))
		return NULL;
	g_debug("poll: device record with attestation counter %" G_GUINT64_FORMAT ", state %u",
		dr.att_counter, dr.state);
	notify_changed(d);
	return g_bytes_new(rec.data, rec.len);
}

gboolean
cp_daemon_is_busy(CpDaemon *d)
{
	return d->attempt || d->restoring || cp_state_is_busy(d->m.state) ||
	       cp_state_is_command(d->m.state);
}

/*
 * Whether the phone has read the receipt (cp_daemon_get_receipt_read): a
 * read session that presented it ended normally. The receipt is compared
 * by its GBytes, which set_receipt() replaces with every new receipt.
 */
static void
tag_session_started(CpDaemon *d, gboolean presented)
{
	d->last_tag_time = g_get_monotonic_time();
	g_clear_pointer(&d->receipt_presented, g_bytes_unref);
	if (presented && d->receipt)
		d->receipt_presented = g_bytes_ref(d->receipt);
}

static void
tag_session_ended(CpDaemon *d, gboolean normal)
{
	d->last_tag_time = g_get_monotonic_time();
	if (normal && d->receipt_presented && d->receipt_presented == d->receipt &&
	    d->receipt_read != d->receipt) {
		g_clear_pointer(&d->receipt_read, g_bytes_unref);
		d->receipt_read = g_steal_pointer(&d->receipt_presented);
		g_message("tag: the receipt was read");
	}
	g_clear_pointer(&d->receipt_presented, g_bytes_unref);
	notify_changed(d);
}

static GBytes *
on_transport_content(CpTransport *t, gpointer user_data)
{
	CpDaemon *d = user_data;
	g_autoptr(GError) error = NULL;
	GBytes *content = cp_daemon_build_tag(d, &error);

	if (!content)
		g_warning("%s: presenting an empty tag: %s", cp_transport_name(t), error->message);
	tag_session_started(d, content != NULL);
	return content;
}

/* Whichever transport the phone uses first wins: while its profile is
 * being provisioned, a profile over any other is refused busy. */
static CpError
on_transport_written(CpTransport *t, GBytes *ndef, gpointer user_data)
{
	CpDaemon *d = user_data;

	if (cp_daemon_is_busy(d)) {
		dlog(d, G_LOG_LEVEL_MESSAGE, "%s: a profile was written while %s: ignored (%s)",
		     cp_transport_name(t), cp_state_name(d->m.state), cp_error_name(CP_ERR_BUSY));
		return CP_ERR_BUSY;
	}
	g_message("%s: a profile was written (%zu bytes)", cp_transport_name(t),
		  g_bytes_get_size(ndef));
	cp_daemon_profile_written(d, ndef);
	return CP_OK;
}

static GBytes *
on_transport_receipt(CpTransport *t, gpointer user_data)
{
	CpDaemon *d = user_data;
	GBytes *receipt = cp_daemon_get_receipt(d);

	/* asked for alone (BLE read-receipt): presented in this session */
	d->last_tag_time = g_get_monotonic_time();
	if (receipt && d->receipt_presented != receipt) {
		g_clear_pointer(&d->receipt_presented, g_bytes_unref);
		d->receipt_presented = g_bytes_ref(receipt);
	}
	return receipt ? g_bytes_ref(receipt) : NULL;
}

static void
on_transport_session_ended(CpTransport *t, const GError *error, gpointer user_data)
{
	CpDaemon *d = user_data;

	if (error)
		dlog(d, G_LOG_LEVEL_MESSAGE, "%s: session ended: %s", cp_transport_name(t),
		     error->message);
	else
		g_debug("%s: session ended", cp_transport_name(t));
	tag_session_ended(d, error == NULL);
}

static void
update_transport_state(CpDaemon *d)
{
	GString *str = g_string_new(NULL);

	for (guint i = 0; d->transports && i < d->transports->len; i++) {
		CpTransport *t = g_ptr_array_index(d->transports, i);

		g_string_append_printf(str, "%s%s %s", i ? ", " : "", cp_transport_name(t),
				       cp_transport_state_name(t->state));
	}
	if (!str->len)
		g_string_append(str, "none");
	g_free(d->transport_state);
	d->transport_state = g_string_free(str, FALSE);
}

static void
on_transport_status(CpTransport *t, CpTransportState state, const GError *error,
		    gpointer user_data)
{
	CpDaemon *d = user_data;

	update_transport_state(d);
	if (error)
		g_message("%s: %s: %s", cp_transport_name(t), cp_transport_state_name(state),
			  error->message);
	else
		g_info("%s: %s", cp_transport_name(t), cp_transport_state_name(state));
	notify_changed(d);
}

static const CpTransportEvents transport_events = {
	.content = on_transport_content,
	.written = on_transport_written,
	.receipt = on_transport_receipt,
	.session_ended = on_transport_session_ended,
	.status = on_transport_status,
};

static const CpBackendEvents backend_events = {
	.progress = on_backend_progress,
	.backup = on_backend_backup,
};

const CpTransportEvents *
cp_daemon_transport_events(void)
{
	return &transport_events;
}

const CpBackendEvents *
cp_daemon_backend_events(void)
{
	return &backend_events;
}

/* ---- life cycle ---- */

static CpKey *
load_key(const char *source, GError **error)
{
	g_autoptr(CpSecret) pem = cp_secret_load(source, FALSE, 0, error);
	CpKey *key;

	if (!pem)
		return NULL;
	key = cp_pkey_from_pem((const char *)pem->data, pem->len);
	if (!key) {
		cp_set_error(error, CP_ERR_KEY, "the device key %s is not a PKCS#8 PEM P-256 private key",
			     source);
		return NULL;
	}
	return key;
}

/* [device] trusted-operators: public roots, read once, any mode. */
static gboolean
load_anchors(CpDaemon *d, const char *path, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autofree char *pem = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &pem, &len, &local)) {
		cp_set_error(error, CP_ERR_KEY, "[device] trusted-operators: cannot read %s: %s",
			     path, local->message);
		return FALSE;
	}
	if (cp_anchors_from_pem(pem, len, &d->anchors) != CP_OK || !d->anchors ||
	    cp_anchors_count(d->anchors) == 0) {
		cp_set_error(error, CP_ERR_KEY, "[device] trusted-operators: %s is not a PEM file "
			     "of operator root (CA) certificates", path);
		return FALSE;
	}
	return TRUE;
}

CpDaemon *
cp_daemon_new(CpConf *conf, GError **error)
{
	g_autoptr(CpDaemon) d = g_new0(CpDaemon, 1);
	g_autofree char *suffix = NULL;
	cp_auto_buf info = CP_BUF_INIT;
	CpDeviceRecord dr;
	gboolean found;
	CpError err;

	d->conf = conf;
	d->log = g_ptr_array_new_with_free_func(g_free);
	d->listeners = g_array_new(FALSE, TRUE, sizeof(Listener));
	g_ptr_array_add(d->log, NULL);
	d->cancellable = g_cancellable_new();
	d->step = g_strdup("");
	d->last_error_msg = g_strdup("");
	d->transport_state = g_strdup("none");
	d->transports = g_ptr_array_new_with_free_func((GDestroyNotify)cp_transport_free);
	cp_journal_init(&d->j);

	d->key = load_key(conf->key, error);
	if (!d->key)
		return NULL;
	err = cp_device_id(d->key, d->device_id);
	if (err != CP_OK) {
		cp_set_error(error, err, "cannot derive the DeviceID from the device key (%s)",
			     cp_error_name(err));
		return NULL;
	}
	cp_hex_encode(d->device_id, sizeof(d->device_id), d->device_id_hex);
	suffix = g_strconcat("/", d->device_id_hex, NULL);
	if (!g_str_has_suffix(conf->certificate_url, suffix)) {
		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			    "%s: [device] certificate-url: '%s' does not end with this device's "
			    "DeviceID %s (is the key the one it was made for?)",
			    conf->path, conf->certificate_url, d->device_id_hex);
		return NULL;
	}

	d->adm1 = cp_secret_load(conf->adm1, FALSE, 0, error);
	if (!d->adm1)
		return NULL;
	if (d->adm1->len != 8 || !cp_is_digits(d->adm1->data, d->adm1->len)) {
		cp_set_error(error, CP_ERR_ADM1, "the ADM1 in %s is not 8 ASCII digits", conf->adm1);
		return NULL;
	}

	memset(&dr, 0, sizeof(dr));
	dr.version = CP_DEVICE_RECORD_VERSION;
	memcpy(dr.device_id, d->device_id, sizeof(dr.device_id));
	g_strlcpy(dr.manufacturer, conf->manufacturer, sizeof(dr.manufacturer));
	g_strlcpy(dr.model, conf->model, sizeof(dr.model));
	g_strlcpy(dr.serial, conf->serial, sizeof(dr.serial));
	memcpy(dr.suites, conf->suites, conf->n_suites);
	dr.n_suites = conf->n_suites;
	err = cp_device_record_info(&dr, &info);
	if (err != CP_OK) {
		cp_set_error(error, err, "cannot encode the device record (%s)", cp_error_name(err));
		return NULL;
	}
	d->device_info = g_memdup2(info.data, info.len);
	d->device_info_len = info.len;

	if (conf->trusted_operators && !load_anchors(d, conf->trusted_operators, error))
		return NULL;

	if (!cp_journal_check_dir(conf->state_directory, error) ||
	    !cp_journal_load(conf->state_directory, &d->j, &found, error))
		return NULL;
	cp_machine_init(&d->m, d->j.state);
	d->last_error = d->j.last_error;
	g_free(d->last_error_msg);
	d->last_error_msg = g_strdup(d->last_error ? cp_error_message(d->last_error) : "");
	if (d->j.receipt)
		set_receipt(d, d->j.receipt, d->j.receipt_len);
	update_operator(d);
	update_owner(d);
	if (d->anchors) {
		size_t n = cp_anchors_count(d->anchors), unusable = n - cp_anchors_usable(d->anchors);

		g_message("owner: %zu trusted operator root%s from %s", n, n == 1 ? "" : "s",
			  conf->trusted_operators);
		if (unusable)
			g_warning("owner: %zu of the trusted operator roots in %s %s outside the certificate "
				  "profile (docs/protocol.md 4.5) and will accept no operator", unusable, conf->trusted_operators,
				  unusable == 1 ? "is" : "are");
	} else
		g_warning("owner: no [device] trusted-operators: this device will trust the first "
			  "operator that provisions it (trust on first use)");
	if (d->j.bound)
		g_message("owner: bound to %s at binding version %" G_GUINT64_FORMAT,
			  d->j.has_pin ? (d->j.operator_name[0] ? d->j.operator_name : "an unnamed operator")
				       : "an operator not pinned yet (journal from before owner binding)",
			  d->j.binding_version);
	if (found)
		g_message("journal: %s, profile_seq %" G_GUINT64_FORMAT ", attestation counter %"
			  G_GUINT64_FORMAT, cp_state_name(d->j.state), d->j.committed_seq,
			  d->j.att_counter);
	else
		g_message("journal: none yet in %s: a new device", conf->state_directory);
	return g_steal_pointer(&d);
}

void
cp_daemon_set_transport(CpDaemon *d, CpTransport *t)
{
	g_ptr_array_set_size(d->transports, 0);
	if (t)
		g_ptr_array_add(d->transports, t);
	d->own_transport_set = TRUE;
}

/* ---- the transports: one table, as many as the configuration names ---- */

static CpTransport *
make_nfc(CpDaemon *d, GError **error)
{
	if (!d->conf->nfc_connstring)
		return NULL;
#if CP_DAEMON_NFC
	return cp_transport_nfc_new(d->conf->nfc_connstring, d->conf->nfc_command_timeout * 1000,
				    d->conf->nfc_session_timeout * 1000, &transport_events, d,
				    error);
#else
	g_warning("nfc: this cellprovd was built without NFC: the tag is not presented");
	return NULL;
#endif
}

static CpTransport *
make_ble(CpDaemon *d, GError **error)
{
	if (!d->conf->ble_adapter)
		return NULL;
#if CP_DAEMON_BLE
	CpTransportBleConf bc = {
		.adapter = d->conf->ble_adapter,
		.window = d->conf->ble_window,
		.idle_timeout = d->conf->ble_idle_timeout,
	};

	memcpy(bc.device_id, d->device_id, sizeof(bc.device_id));
	return cp_transport_ble_new(&bc, &transport_events, d, error);
#else
	g_warning("ble: this cellprovd was built without BLE: [ble] is ignored");
	return NULL;
#endif
}

/* NULL without an error: not configured (or not built). */
static CpTransport *(*const transport_table[])(CpDaemon *d, GError **error) = {
	make_nfc,
	make_ble,
};

/* The device waits for a first provisioning (or a new one after a re-arm). */
static gboolean
is_armed(CpDaemon *d)
{
	return d->m.state == CP_STATE_IDLE || d->m.state == CP_STATE_FAILED;
}

guint
cp_daemon_open_window(CpDaemon *d, guint seconds)
{
	guint n = 0;

	for (guint i = 0; i < d->transports->len; i++)
		n += cp_transport_open_window(g_ptr_array_index(d->transports, i), seconds,
					      (uint8_t)cp_state_device_state(d->m.state));
	return n;
}

void
cp_daemon_set_backend(CpDaemon *d, CpBackend *b)
{
	g_clear_pointer(&d->backend, cp_backend_free);
	d->backend = b;
	d->own_backend_set = TRUE;
}

void
cp_daemon_add_listener(CpDaemon *d, const CpDaemonListener *l, gpointer user_data)
{
	Listener x = { *l, user_data };

	g_array_append_val(d->listeners, x);
}

void
cp_daemon_remove_listener(CpDaemon *d, gpointer user_data)
{
	for (guint i = d->listeners->len; i-- > 0;)
		if (g_array_index(d->listeners, Listener, i).data == user_data)
			g_array_remove_index(d->listeners, i);
}

gboolean
cp_daemon_start(CpDaemon *d, GError **error)
{
	if (!d->own_backend_set) {
#if CP_DAEMON_MODEM
		d->backend = cp_backend_modem_new(d->conf, d->adm1, &backend_events, d, error);
		if (!d->backend)
			return FALSE;
#else
		g_warning("modem: this cellprovd was built without a modem backend: "
			  "profiles cannot be provisioned");
#endif
	}
	/* the backend holds its own copy */
	g_clear_pointer(&d->adm1, cp_secret_free);

	if (!d->own_transport_set) {
		for (gsize i = 0; i < G_N_ELEMENTS(transport_table); i++) {
			g_autoptr(GError) local = NULL;
			CpTransport *t = transport_table[i](d, &local);

			if (local) {
				g_propagate_error(error, g_steal_pointer(&local));
				return FALSE;
			}
			if (t)
				g_ptr_array_add(d->transports, t);
		}
	}

	if (cp_state_recovery(d->j.state) == CP_RECOVER_DECOMMISSION) {
		dlog(d, G_LOG_LEVEL_MESSAGE,
		     "journal: the decommission of command %" G_GUINT64_FORMAT " was cut off: "
		     "finishing it", d->j.attempt_seq);
		start_restore(d);
	} else if (cp_state_recovery(d->j.state) == CP_RECOVER_ROLLBACK) {
		dlog(d, G_LOG_LEVEL_MESSAGE,
		     "journal: the attempt of profile %" G_GUINT64_FORMAT " was cut off in state %s: "
		     "rolling it back", d->j.attempt_seq, cp_state_name(d->j.state));
		if (d->j.state != CP_STATE_ROLLING_BACK) {
			CpJournal next;

			cp_journal_copy(&next, &d->j);
			next.state = CP_STATE_ROLLING_BACK;
			next.last_error = CP_ERR_INTERRUPTED;
			if (!journal_commit(d, &next, error))
				return FALSE;
			cp_machine_init(&d->m, CP_STATE_ROLLING_BACK);
			dlog(d, G_LOG_LEVEL_MESSAGE, "state: %s -> rolling-back (recovery)",
			     cp_state_name(d->m.state));
		}
		d->restore_reason = CP_ERR_INTERRUPTED;
		set_last_error(d, CP_ERR_INTERRUPTED, NULL);
		start_restore(d);
	}

	for (guint i = 0; i < d->transports->len; i++) {
		CpTransport *t = g_ptr_array_index(d->transports, i);

		t->state = CP_TRANSPORT_STARTING;
		if (!cp_transport_start(t, error))
			return FALSE;
	}
	update_transport_state(d);
	/* the hotplug trigger or a button started the daemon: a device
	 * waiting for its profile offers the transports that wait for a window */
	if (is_armed(d))
		cp_daemon_open_window(d, 0);
	notify_changed(d);
	return TRUE;
}

static void
stop_finish(CpDaemon *d)
{
	GCallback done = d->stop_done;

	if (!done)
		return;
	d->stop_done = NULL;
	if (d->stop_source) {
		g_source_remove(d->stop_source);
		d->stop_source = 0;
	}
	((void (*)(gpointer))done)(d->stop_data);
}

static void
maybe_stop_done(CpDaemon *d)
{
	if (d->stopping && !d->attempt && !d->restoring)
		stop_finish(d);
}

static gboolean
stop_timeout_cb(gpointer data)
{
	CpDaemon *d = data;

	d->stop_source = 0;
	g_warning("stop: the modem did not finish in time; the journal says what the next start undoes");
	stop_finish(d);
	return G_SOURCE_REMOVE;
}

void
cp_daemon_stop(CpDaemon *d, guint timeout_ms, GCallback done, gpointer user_data)
{
	d->stopping = TRUE;
	d->stop_done = done;
	d->stop_data = user_data;
	if (d->restore_source) {
		g_source_remove(d->restore_source);
		d->restore_source = 0;
	}
	for (guint i = 0; i < d->transports->len; i++)
		cp_transport_stop(g_ptr_array_index(d->transports, i));
	g_cancellable_cancel(d->cancellable);
	if (d->attempt || d->restoring) {
		dlog(d, G_LOG_LEVEL_MESSAGE, "stop: waiting for the modem backend (at most %u ms)",
		     timeout_ms);
		d->stop_source = g_timeout_add(timeout_ms, stop_timeout_cb, d);
		return;
	}
	stop_finish(d);
}

gboolean
cp_daemon_set_test_hold(CpDaemon *d, CpState state, guint ms, GError **error)
{
	switch (state) {
	case CP_STATE_RECEIVED:
		d->hold_received_ms = ms;
		return TRUE;
	case CP_STATE_VERIFIED:
		d->hold_verified_ms = ms;
		return TRUE;
	case CP_STATE_PROVISIONING:
		d->hold_provisioning_ms = ms;
		return TRUE;
	case CP_STATE_DECOMMISSIONING:
		d->hold_decommissioning_ms = ms;
		return TRUE;
	default:
		cp_set_error(error, CP_ERR_ARGUMENT, "a test hold is possible in profile-received, verified, provisioning and decommissioning only, not %s",
			     cp_state_name(state));
		return FALSE;
	}
}

void
cp_daemon_free(CpDaemon *d)
{
	if (!d)
		return;
	if (d->stop_source)
		g_source_remove(d->stop_source);
	if (d->restore_source)
		g_source_remove(d->restore_source);
	if (d->hold_source)
		g_source_remove(d->hold_source);
	/* an attempt still running belongs to the backend's callback: the
	 * backend goes first, which cancels it */
	g_clear_pointer(&d->transports, g_ptr_array_unref);
	g_clear_pointer(&d->backend, cp_backend_free);
	g_clear_pointer(&d->attempt, attempt_free);
	g_clear_object(&d->cancellable);
	cp_key_free(d->key);
	cp_anchors_free(d->anchors);
	cp_secret_free(d->adm1);
	cp_journal_clear(&d->j);
	cp_conf_free(d->conf);
	g_free(d->device_info);
	g_free(d->transport_state);
	g_free(d->last_error_msg);
	g_free(d->operator_str);
	g_free(d->step);
	g_clear_pointer(&d->receipt, g_bytes_unref);
	g_clear_pointer(&d->receipt_presented, g_bytes_unref);
	g_clear_pointer(&d->receipt_read, g_bytes_unref);
	if (d->log)
		g_ptr_array_unref(d->log);
	if (d->listeners)
		g_array_unref(d->listeners);
	g_free(d);
}

/* ---- D-Bus methods ---- */

gboolean
cp_daemon_forget(CpDaemon *d, GError **error)
{
	CpJournal next;

	if (d->attempt || d->restoring || !cp_machine_accepts(&d->m, CP_EVENT_FORGET)) {
		cp_set_error(error, cp_state_is_resting(d->m.state) ? CP_ERR_STATE : CP_ERR_BUSY,
			     "cannot forget while %s", cp_state_name(d->m.state));
		return FALSE;
	}
	cp_journal_copy(&next, &d->j);
	next.state = CP_STATE_IDLE;
	next.last_error = 0;
	next.attempt_seq = 0;
	next.imsi[0] = next.plmn[0] = next.network_name[0] = next.apn[0] = '\0';
	cp_journal_set_receipt(&next, NULL, 0);
	if (!journal_commit(d, &next, error))
		return FALSE;
	log_reset(d);
	dlog(d, G_LOG_LEVEL_MESSAGE, "forget: the provisioning record is dropped "
	     "(profile_seq %" G_GUINT64_FORMAT " and the attestation counter are kept)",
	     d->j.committed_seq);
	set_last_error(d, CP_OK, NULL);
	set_receipt(d, NULL, 0);
	update_operator(d);
	transition(d, CP_EVENT_FORGET);
	return TRUE;
}

gboolean
cp_daemon_rearm(CpDaemon *d, GError **error)
{
	CpJournal next;

	if (d->attempt || d->restoring || !cp_machine_accepts(&d->m, CP_EVENT_REARM)) {
		cp_set_error(error, cp_state_is_busy(d->m.state) || d->attempt ? CP_ERR_BUSY : CP_ERR_STATE,
			     "cannot re-arm while %s", cp_state_name(d->m.state));
		return FALSE;
	}
	cp_journal_copy(&next, &d->j);
	next.state = CP_STATE_IDLE;
	if (!journal_commit(d, &next, error))
		return FALSE;
	dlog(d, G_LOG_LEVEL_MESSAGE, "rearm: a new profile will be accepted");
	transition(d, CP_EVENT_REARM);
	cp_daemon_open_window(d, 0);
	return TRUE;
}

/*
 * A local factory reset: the owner binding and K'' are forgotten, the pin
 * and the committed profile_seq are kept (only the pinned operator can
 * claim the device again, never with an old profile), the USIM is left as
 * it is (and the original backup with it, for a later decommission), and
 * the tag presents the device for a claim.
 */
gboolean
cp_daemon_factory_reset(CpDaemon *d, GError **error)
{
	CpJournal next;

	if (d->attempt || d->restoring || !cp_machine_accepts(&d->m, CP_EVENT_FACTORY_RESET)) {
		cp_set_error(error, cp_state_is_resting(d->m.state) ? CP_ERR_STATE : CP_ERR_BUSY,
			     "cannot factory-reset while %s", cp_state_name(d->m.state));
		return FALSE;
	}
	cp_journal_copy(&next, &d->j);
	next.state = CP_STATE_IDLE;
	next.last_error = 0;
	next.attempt_seq = 0;
	next.imsi[0] = next.plmn[0] = next.network_name[0] = next.apn[0] = '\0';
	next.bound = false;
	next.binding_version = 0;
	cp_secret_free(next.owner_k2);
	next.owner_k2 = NULL;
	cp_journal_set_receipt(&next, NULL, 0);
	if (!journal_commit(d, &next, error))
		return FALSE;
	log_reset(d);
	dlog(d, G_LOG_LEVEL_MESSAGE, "factory reset: the owner binding and K'' are forgotten; "
	     "%s, profile_seq %" G_GUINT64_FORMAT " and the USIM are kept",
	     d->j.has_pin ? "the pinned operator" : "no operator was pinned",
	     d->j.committed_seq);
	set_last_error(d, CP_OK, NULL);
	set_receipt(d, NULL, 0);
	update_operator(d);
	update_owner(d);
	transition(d, CP_EVENT_FACTORY_RESET);
	cp_daemon_open_window(d, 0);
	return TRUE;
}

/* ---- getters ---- */

CpState
cp_daemon_get_state(CpDaemon *d)
{
	return d->m.state;
}

const char *
cp_daemon_get_step(CpDaemon *d)
{
	return d->step;
}

const CpConf *
cp_daemon_get_conf(CpDaemon *d)
{
	return d->conf;
}

const char *
cp_daemon_get_device_id(CpDaemon *d)
{
	return d->device_id_hex;
}

const char *
cp_daemon_get_backend_name(CpDaemon *d)
{
	return d->backend ? cp_backend_get_name(d->backend) : "none";
}

const char *
cp_daemon_get_transport_state(CpDaemon *d)
{
	return d->transport_state;
}

guint
cp_daemon_get_n_transports(CpDaemon *d)
{
	return d->transports->len;
}

CpTransport *
cp_daemon_get_transport(CpDaemon *d, guint i)
{
	return i < d->transports->len ? g_ptr_array_index(d->transports, i) : NULL;
}

CpError
cp_daemon_get_last_error(CpDaemon *d, const char **message)
{
	if (message)
		*message = d->last_error_msg;
	return d->last_error;
}

const char *
cp_daemon_get_operator(CpDaemon *d)
{
	return d->operator_str;
}

const char *
cp_daemon_get_imsi(CpDaemon *d)
{
	return d->j.imsi;
}

guint64
cp_daemon_get_profile_seq(CpDaemon *d)
{
	return d->j.committed_seq;
}

guint64
cp_daemon_get_att_counter(CpDaemon *d)
{
	return d->j.att_counter;
}

GBytes *
cp_daemon_get_receipt(CpDaemon *d)
{
	return d->receipt;
}

const char *const *
cp_daemon_get_log(CpDaemon *d)
{
	return (const char *const *)d->log->pdata;
}

gboolean
cp_daemon_get_bound(CpDaemon *d)
{
	return d->j.bound;
}

guint64
cp_daemon_get_binding_version(CpDaemon *d)
{
	return d->j.binding_version;
}

const char *
cp_daemon_get_owner_name(CpDaemon *d)
{
	return d->j.operator_name;
}

const char *
cp_daemon_get_owner_root(CpDaemon *d)
{
	return d->pin_hex;
}

const char *
cp_daemon_get_trust_mode(CpDaemon *d)
{
	return d->anchors ? "anchors" : "first-use";
}

gboolean
cp_daemon_get_receipt_read(CpDaemon *d)
{
	return d->receipt && d->receipt_read == d->receipt;
}

gint64
cp_daemon_get_last_tag_time(CpDaemon *d)
{
	return d->last_tag_time;
}
