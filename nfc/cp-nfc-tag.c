/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libnfc glue of the device's tag: the worker thread, the reopen loop and
 * the hand-over to the main context. The command set itself is
 * cp-t4t-tag.c.
 *
 * Threads: the worker owns the nfc_device between nfc_open() and
 * nfc_close(); the main thread touches it only through
 * nfc_abort_command(), under tag->lock, which also guards tag->dev. libnfc
 * loses an abort that arrives while no receive is waiting, so stop()
 * repeats it until the worker has gone.
 *
 * What the worker posts holds a reference, taken under tag->lock only
 * while the tag is not stopping, and given back on the main context: the
 * worker never takes the count up from zero, and never drops the last
 * reference itself (which would make it join itself).
 */
#define G_LOG_DOMAIN "cellprov-nfc"

#include "cp-nfc-tag.h"

#include <string.h>
#include <nfc/nfc.h>

#include "cp-glib.h"
#include "cp-nfc-context.h"
#include "cp-t4t-tag.h"

#define ABORT_RETRY_MS 20

struct _CpNfcTag {
	guint ref;                     /* under lock */
	char *connstring;
	CpNfcTagCallbacks cb;
	gpointer user_data;
	GMainContext *context;
	guint backoff_min_ms;
	guint backoff_max_ms;
	guint command_timeout_ms;
	guint session_timeout_ms;

	/* Main thread only. */
	guint generation;
	CpNfcTagState state;

	GThread *thread;
	GMutex lock;
	GCond cond;
	nfc_context *nfc;
	nfc_device *dev;               /* under lock */
	gboolean stopping;             /* under lock */
	gboolean exited;               /* under lock */
};

typedef enum {
	EVENT_STATE,
	EVENT_WRITTEN,
	EVENT_SESSION_ENDED,
} EventKind;

typedef struct {
	CpNfcTag *tag;
	guint generation;
	EventKind kind;
	CpNfcTagState state;
	GBytes *bytes;
	GError *error;
	CpNfcSessionInfo info;
} Event;

typedef struct {
	CpNfcTag *tag;
	guint generation;
	gboolean done;                 /* under tag->lock */
	gboolean abandoned;            /* under tag->lock */
	GBytes *result;                /* under tag->lock */
	gatomicrefcount ref;
} ContentRequest;

typedef struct {
	CpNfcTag *tag;
	guint generation;
	CpNfcTagState posted;
	CpT4tTag t4t;
} Worker;

static void tag_stop(CpNfcTag *tag, gboolean notify_owner);

const char *cp_nfc_tag_state_name(CpNfcTagState state)
{
	switch (state) {
	case CP_NFC_TAG_STOPPED:
		return "stopped";
	case CP_NFC_TAG_OPENING:
		return "opening";
	case CP_NFC_TAG_WAITING:
		return "waiting";
	case CP_NFC_TAG_SESSION:
		return "session";
	}
	return "unknown";
}

/* ---- events to the main context ---- */

static void event_free(gpointer data)
{
	Event *ev = data;

	g_clear_pointer(&ev->bytes, g_bytes_unref);
	g_clear_error(&ev->error);
	cp_nfc_tag_unref(ev->tag);
	g_free(ev);
}

static gboolean event_dispatch(gpointer data)
{
	Event *ev = data;
	CpNfcTag *tag = ev->tag;

	/* Posted by a worker that has since been stopped. */
	if (ev->generation != tag->generation)
		return G_SOURCE_REMOVE;

	switch (ev->kind) {
	case EVENT_STATE:
		if (tag->state == ev->state && !ev->error)
			break;
		tag->state = ev->state;
		if (tag->cb.state_changed)
			tag->cb.state_changed(tag, ev->state, ev->error, tag->user_data);
		break;
	case EVENT_WRITTEN:
		if (tag->cb.written)
			tag->cb.written(tag, ev->bytes, tag->user_data);
		break;
	case EVENT_SESSION_ENDED:
		if (tag->cb.session_ended)
			tag->cb.session_ended(tag, &ev->info, ev->error, tag->user_data);
		break;
	}
	return G_SOURCE_REMOVE;
}

/*
 * Always through a source attached to the owner's context, never
 * g_main_context_invoke(): that runs the function right here, on the
 * worker, whenever the worker can acquire the context, which it can while
 * the owner is not iterating it (between iterations, before its loop
 * runs, after it quit).
 */
static void schedule(GMainContext *context, gint priority, GSourceFunc fn, gpointer data,
		     GDestroyNotify destroy)
{
	GSource *source = g_idle_source_new();

	g_source_set_priority(source, priority);
	g_source_set_callback(source, fn, data, destroy);
	g_source_set_name(source, "cp-nfc-tag");
	g_source_attach(source, context);
	g_source_unref(source);
}

/* A reference for something posted to the main context; FALSE once the
 * tag is stopping (or its last reference went): then nothing is posted. */
static gboolean worker_ref(CpNfcTag *tag)
{
	gboolean ok;

	g_mutex_lock(&tag->lock);
	ok = !tag->stopping;
	if (ok)
		tag->ref++;
	g_mutex_unlock(&tag->lock);
	return ok;
}

static void post(Worker *w, Event *ev)
{
	if (!worker_ref(w->tag)) {
		event_free(ev);
		return;
	}
	ev->tag = w->tag;
	ev->generation = w->generation;
	schedule(w->tag->context, G_PRIORITY_DEFAULT, event_dispatch, ev, event_free);
}

static void post_state(Worker *w, CpNfcTagState state, GError *error)
{
	Event *ev;

	if (w->posted == state && !error)
		return;
	w->posted = state;
	ev = g_new0(Event, 1);
	ev->kind = EVENT_STATE;
	ev->state = state;
	ev->error = error;
	post(w, ev);
}

/* ---- the content request: the worker waits for the main context ---- */

static void content_request_unref(gpointer data)
{
	ContentRequest *req = data;

	if (!g_atomic_ref_count_dec(&req->ref))
		return;
	g_clear_pointer(&req->result, g_bytes_unref);
	g_free(req);
}

/* The source's destroy notify: on the main context, so the tag's
 * reference is given back there. */
static void content_source_done(gpointer data)
{
	ContentRequest *req = data;
	CpNfcTag *tag = req->tag;

	content_request_unref(req);
	cp_nfc_tag_unref(tag);
}

static gboolean content_dispatch(gpointer data)
{
	ContentRequest *req = data;
	CpNfcTag *tag = req->tag;
	GBytes *bytes = NULL;

	if (req->generation == tag->generation && tag->cb.content)
		bytes = tag->cb.content(tag, tag->user_data);

	g_mutex_lock(&tag->lock);
	if (req->abandoned)
		g_clear_pointer(&bytes, g_bytes_unref);
	req->result = bytes;
	req->done = TRUE;
	g_cond_broadcast(&tag->cond);
	g_mutex_unlock(&tag->lock);
	return G_SOURCE_REMOVE;
}

/* NULL: no callback, NULL returned, or stopping. */
static GBytes *request_content(Worker *w)
{
	CpNfcTag *tag = w->tag;
	ContentRequest *req;
	GBytes *result;

	if (!tag->cb.content || !worker_ref(tag))
		return NULL;
	req = g_new0(ContentRequest, 1);
	g_atomic_ref_count_init(&req->ref);
	g_atomic_ref_count_inc(&req->ref);
	req->tag = tag;
	req->generation = w->generation;
	/* The same priority as the events: the owner learns of the last
	 * session's write and end before it is asked for the next content. */
	schedule(tag->context, G_PRIORITY_DEFAULT, content_dispatch, req, content_source_done);

	g_mutex_lock(&tag->lock);
	while (!req->done && !tag->stopping)
		g_cond_wait(&tag->cond, &tag->lock);
	req->abandoned = !req->done;
	result = g_steal_pointer(&req->result);
	g_mutex_unlock(&tag->lock);
	content_request_unref(req);
	return result;
}

/* ---- the worker ---- */

static gboolean stopping(CpNfcTag *tag)
{
	gboolean s;

	g_mutex_lock(&tag->lock);
	s = tag->stopping;
	g_mutex_unlock(&tag->lock);
	return s;
}

/* Sleep ms unless stopped meanwhile; FALSE when stopping. */
static gboolean backoff_wait(CpNfcTag *tag, guint ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * G_TIME_SPAN_MILLISECOND;
	gboolean s;

	g_mutex_lock(&tag->lock);
	while (!tag->stopping && g_cond_wait_until(&tag->cond, &tag->lock, end))
		;
	s = tag->stopping;
	g_mutex_unlock(&tag->lock);
	return !s;
}

/*
 * An ISO 14443-4 type A PICC: the PN532 answers RATS itself and hands over
 * APDUs. The UID is random per session (first byte 08 says so, ISO
 * 14443-3), so a tag cannot be tracked by its UID across taps.
 */
static void target_setup(nfc_target *nt)
{
	guint32 r = g_random_int();

	memset(nt, 0, sizeof(*nt));
	nt->nm.nmt = NMT_ISO14443A;
	nt->nm.nbr = NBR_UNDEFINED;
	nt->nti.nai.abtAtqa[0] = 0x00;
	nt->nti.nai.abtAtqa[1] = 0x04;
	nt->nti.nai.abtUid[0] = 0x08;
	nt->nti.nai.abtUid[1] = r & 0xFF;
	nt->nti.nai.abtUid[2] = (r >> 8) & 0xFF;
	nt->nti.nai.abtUid[3] = (r >> 16) & 0xFF;
	nt->nti.nai.szUidLen = 4;
	nt->nti.nai.btSak = 0x20;
	/* ATS: T0 (FSCI 5, TA TB TC present), TA, TB, TC; no historical bytes. */
	nt->nti.nai.abtAts[0] = 0x75;
	nt->nti.nai.abtAts[1] = 0x77;
	nt->nti.nai.abtAts[2] = 0x81;
	nt->nti.nai.abtAts[3] = 0x02;
	nt->nti.nai.szAtsLen = 4;
}

/*
 * The C-APDU buffer: what libnfc can hand over (PN53x_EXTENDED_FRAME__DATA_MAX_LEN,
 * 264, less the status byte), so that nothing a phone sends makes
 * nfc_target_receive_bytes() fail with NFC_EOVFLOW: a C-APDU longer than a
 * short APDU gets 6700 from the command set instead. libnfc reassembles
 * the ISO 14443-4 chained I-blocks the PN532 hands over with the MI bit
 * (pn53x.c, pn53x_transceive()), so a C-APDU arrives whole however many
 * 64-byte frames it took on the air.
 */
#define CAPDU_BUF 263

static GError *io_error(nfc_device *dev, const char *what, int res)
{
	return g_error_new(CP_NFC_ERROR, CP_NFC_ERROR_IO, "NFC controller %s: %s failed: %s (%d)",
			   nfc_device_get_connstring(dev), what, nfc_strerror(dev), res);
}

/*
 * One phone in the field, from activation to release. Returns FALSE when
 * the controller was lost (or the tag is stopping).
 */
static gboolean run_session(Worker *w, nfc_device *dev)
{
	CpNfcTag *tag = w->tag;
	g_autoptr(GBytes) content = NULL;
	g_autoptr(GError) error = NULL;
	guint8 capdu[CAPDU_BUF];
	guint8 rapdu[CP_T4T_RAPDU_MAX];
	CpNfcSessionInfo info = { 0 };
	gint64 start = g_get_monotonic_time();
	gint64 session_end = start + (gint64)tag->session_timeout_ms * G_TIME_SPAN_MILLISECOND;
	gboolean alive = TRUE;
	gboolean timed_out = FALSE;
	const guint8 *data = NULL;
	gsize len = 0;
	Event *ev;

	post_state(w, CP_NFC_TAG_SESSION, NULL);
	content = request_content(w);
	if (stopping(tag))
		return FALSE;
	if (content)
		data = g_bytes_get_data(content, &len);
	if (cp_t4t_tag_load(&w->t4t, data, len) != CP_OK)
		g_message("nfc: content of %" G_GSIZE_FORMAT " bytes exceeds the NDEF file (%d): presenting an empty tag",
			  len, CP_T4T_NDEF_MAX);
	g_debug("nfc: (1/3) session: presenting %" G_GSIZE_FORMAT " bytes", len);

	for (;;) {
		CpT4tEvent tev;
		CpError cperr = CP_OK;
		size_t rlen = 0;
		gint64 left_ms;
		int n, res, wait_ms;

		/* The deadlines: a reader that keeps its field on and goes
		 * silent, or trickles commands, must not hold the tag. */
		left_ms = (session_end - g_get_monotonic_time()) / G_TIME_SPAN_MILLISECOND;
		wait_ms = (int)MIN((gint64)tag->command_timeout_ms, left_ms);
		if (wait_ms <= 0) {
			n = NFC_ETIMEOUT;
		} else {
			n = nfc_target_receive_bytes(dev, capdu, sizeof(capdu), wait_ms);
		}
		if (n == NFC_ETGRELEASED)
			break;
		if (n == NFC_ETIMEOUT && !stopping(tag)) {
			gboolean whole = left_ms <= (gint64)tag->command_timeout_ms;

			timed_out = TRUE;
			if (!error)
				error = g_error_new(CP_NFC_ERROR, CP_NFC_ERROR_TIMEOUT,
						    whole ? "the reader's session went past %u ms; the tag was released"
							  : "no command from the reader for %u ms; the tag was released",
						    whole ? tag->session_timeout_ms : tag->command_timeout_ms);
			g_message("nfc: reader timed out (%s deadline); releasing the target",
				  whole ? "session" : "command");
			break;
		}
		if (n < 0) {
			if (stopping(tag))
				return FALSE;
			if (!error)
				error = io_error(dev, "receiving an APDU", n);
			alive = FALSE;
			break;
		}
		tev = cp_t4t_tag_process(&w->t4t, capdu, (size_t)n, rapdu, &rlen, &cperr);
		g_debug("nfc: (2/3) C-APDU %02x %02x %02x %02x, %d bytes: SW %04x",
			n > 0 ? capdu[0] : 0, n > 1 ? capdu[1] : 0, n > 2 ? capdu[2] : 0,
			n > 3 ? capdu[3] : 0, n, cp_t4t_sw(rapdu, rlen));

		switch (tev) {
		case CP_T4T_EVENT_WRITE_STARTED:
			g_debug("nfc: write started (NLEN 0)");
			break;
		case CP_T4T_EVENT_WRITTEN: {
			size_t mlen;
			const uint8_t *msg = cp_t4t_tag_message(&w->t4t, &mlen);

			g_info("nfc: an NDEF message of %zu bytes was written", mlen);
			info.writes++;
			ev = g_new0(Event, 1);
			ev->kind = EVENT_WRITTEN;
			ev->bytes = g_bytes_new(msg, mlen);
			post(w, ev);
			break;
		}
		case CP_T4T_EVENT_REJECTED:
			g_message("nfc: write refused (%s): %s", cp_error_name(cperr),
				  cp_error_message(cperr));
			if (!error)
				error = g_error_new(CP_ERROR, cperr, "the phone's write was refused: %s",
						    cp_error_message(cperr));
			break;
		case CP_T4T_EVENT_NONE:
			break;
		}

		res = nfc_target_send_bytes(dev, rapdu, rlen, 1000);
		if (res == NFC_ETGRELEASED)
			break;
		if (res < 0) {
			if (stopping(tag))
				return FALSE;
			if (!error)
				error = io_error(dev, "sending an R-APDU", res);
			alive = FALSE;
			break;
		}
	}

	/* Release the target (InRelease: the PN532 stops answering the
	 * reader, pn53x.c pn53x_idle()); the next TgInitAsTarget presents
	 * the tag afresh. */
	if (timed_out && nfc_idle(dev) < 0) {
		if (stopping(tag))
			return FALSE;
		alive = FALSE;
	}
	if (cp_t4t_tag_write_pending(&w->t4t) && !error) {
		error = g_error_new(CP_NFC_ERROR, CP_NFC_ERROR_WRITE_INCOMPLETE,
				    "the phone left during a write, before the final NLEN; the partial message was discarded");
		g_message("nfc: %s", error->message);
	}
	info.apdus = w->t4t.apdus;
	info.bytes_in = w->t4t.bytes_in;
	info.bytes_out = w->t4t.bytes_out;
	info.duration_us = g_get_monotonic_time() - start;
	g_debug("nfc: (3/3) session ended: %u APDUs, %" G_GSIZE_FORMAT " bytes in, %" G_GSIZE_FORMAT " out",
		info.apdus, info.bytes_in, info.bytes_out);
	/* Forget the session's content: the next one is built afresh. */
	cp_t4t_tag_load(&w->t4t, NULL, 0);

	ev = g_new0(Event, 1);
	ev->kind = EVENT_SESSION_ENDED;
	ev->info = info;
	ev->error = g_steal_pointer(&error);
	post(w, ev);
	return alive;
}

/* Sessions until the controller fails; FALSE: lost, TRUE: stopping. */
static gboolean run_device(Worker *w, nfc_device *dev, GError **error)
{
	while (!stopping(w->tag)) {
		guint8 rx[264];
		nfc_target nt;
		int res;

		target_setup(&nt);
		post_state(w, CP_NFC_TAG_WAITING, NULL);
		res = nfc_target_init(dev, &nt, rx, sizeof(rx), 0);
		if (stopping(w->tag))
			return TRUE;
		if (res < 0) {
			*error = io_error(dev, "arming the target", res);
			return FALSE;
		}
		if (!run_session(w, dev)) {
			if (stopping(w->tag))
				return TRUE;
			*error = g_error_new(CP_NFC_ERROR, CP_NFC_ERROR_IO,
					     "NFC controller %s lost during a session",
					     nfc_device_get_connstring(dev));
			return FALSE;
		}
	}
	return TRUE;
}

static gpointer worker_main(gpointer data)
{
	Worker *w = data;
	CpNfcTag *tag = w->tag;
	guint backoff = tag->backoff_min_ms;
	gboolean reported = FALSE;

	while (!stopping(tag)) {
		g_autoptr(GError) error = NULL;
		nfc_device *dev;

		post_state(w, CP_NFC_TAG_OPENING, NULL);
		dev = nfc_open(tag->nfc, tag->connstring);
		if (!dev) {
			/* Once per outage: the retries are routine. */
			if (!reported) {
				error = g_error_new(CP_NFC_ERROR, CP_NFC_ERROR_OPEN,
						    "cannot open the NFC controller %s; retrying",
						    tag->connstring ? tag->connstring : "(libnfc default)");
				g_message("nfc: %s", error->message);
				post_state(w, CP_NFC_TAG_OPENING, g_steal_pointer(&error));
				reported = TRUE;
			}
			if (!backoff_wait(tag, backoff))
				break;
			backoff = MIN(backoff * 2, tag->backoff_max_ms);
			continue;
		}
		g_info("nfc: opened %s (%s)", nfc_device_get_name(dev), nfc_device_get_connstring(dev));
		g_mutex_lock(&tag->lock);
		tag->dev = dev;
		g_mutex_unlock(&tag->lock);
		backoff = tag->backoff_min_ms;
		reported = FALSE;

		if (!run_device(w, dev, &error) && error) {
			g_message("nfc: %s; reopening", error->message);
			post_state(w, CP_NFC_TAG_OPENING, g_steal_pointer(&error));
			reported = TRUE;
		}

		g_mutex_lock(&tag->lock);
		tag->dev = NULL;
		g_mutex_unlock(&tag->lock);
		nfc_close(dev);
		if (!stopping(tag) && !backoff_wait(tag, backoff))
			break;
	}

	g_mutex_lock(&tag->lock);
	tag->exited = TRUE;
	g_cond_broadcast(&tag->cond);
	g_mutex_unlock(&tag->lock);
	g_free(w);
	return NULL;
}

/* ---- public ---- */

CpNfcTag *cp_nfc_tag_new(const char *connstring, const CpNfcTagCallbacks *callbacks,
			 gpointer user_data)
{
	CpNfcTag *tag = g_new0(CpNfcTag, 1);

	tag->ref = 1;
	tag->connstring = g_strdup(connstring);
	if (callbacks)
		tag->cb = *callbacks;
	tag->user_data = user_data;
	tag->context = g_main_context_ref_thread_default();
	tag->backoff_min_ms = 250;
	tag->backoff_max_ms = 10000;
	tag->command_timeout_ms = CP_NFC_TAG_COMMAND_TIMEOUT_MS;
	tag->session_timeout_ms = CP_NFC_TAG_SESSION_TIMEOUT_MS;
	g_mutex_init(&tag->lock);
	g_cond_init(&tag->cond);
	return tag;
}

CpNfcTag *cp_nfc_tag_ref(CpNfcTag *tag)
{
	g_mutex_lock(&tag->lock);
	g_assert(tag->ref > 0);
	tag->ref++;
	g_mutex_unlock(&tag->lock);
	return tag;
}

void cp_nfc_tag_unref(CpNfcTag *tag)
{
	gboolean last;

	if (!tag)
		return;
	g_mutex_lock(&tag->lock);
	g_assert(tag->ref > 0);
	last = --tag->ref == 0;
	/* From here on the worker posts nothing more. */
	if (last) {
		tag->stopping = TRUE;
		g_cond_broadcast(&tag->cond);
	}
	g_mutex_unlock(&tag->lock);
	if (!last)
		return;
	tag_stop(tag, FALSE);
	if (tag->nfc)
		cp_nfc_context_release();
	g_main_context_unref(tag->context);
	g_mutex_clear(&tag->lock);
	g_cond_clear(&tag->cond);
	g_free(tag->connstring);
	g_free(tag);
}

void cp_nfc_tag_set_backoff(CpNfcTag *tag, guint min_ms, guint max_ms)
{
	tag->backoff_min_ms = MAX(min_ms, 1);
	tag->backoff_max_ms = MAX(max_ms, tag->backoff_min_ms);
}

void cp_nfc_tag_set_deadlines(CpNfcTag *tag, guint command_ms, guint session_ms)
{
	tag->command_timeout_ms = MAX(command_ms, 1);
	tag->session_timeout_ms = MAX(session_ms, 1);
}

gboolean cp_nfc_tag_start(CpNfcTag *tag, GError **error)
{
	Worker *w;

	if (tag->thread) {
		cp_set_error(error, CP_ERR_STATE, "the NFC tag already runs");
		return FALSE;
	}
	if (!tag->nfc) {
		tag->nfc = cp_nfc_context_acquire();
		if (!tag->nfc) {
			g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_OPEN,
				    "libnfc could not be initialised");
			return FALSE;
		}
	}
	tag->stopping = FALSE;
	tag->exited = FALSE;
	/* The worker holds no reference: stop() (also run by the last
	 * unref) joins it before the tag can go. */
	w = g_new0(Worker, 1);
	w->tag = tag;
	w->generation = tag->generation;
	w->posted = CP_NFC_TAG_STOPPED;
	cp_t4t_tag_init(&w->t4t);
	tag->thread = g_thread_new("cp-nfc-tag", worker_main, w);
	return TRUE;
}

static void tag_stop(CpNfcTag *tag, gboolean notify_owner)
{
	gboolean notify;

	if (!tag->thread)
		return;
	/* Events already queued by the worker must not arrive after this. */
	tag->generation++;

	g_mutex_lock(&tag->lock);
	tag->stopping = TRUE;
	g_cond_broadcast(&tag->cond);
	while (!tag->exited) {
		gint64 end = g_get_monotonic_time() + ABORT_RETRY_MS * G_TIME_SPAN_MILLISECOND;

		if (tag->dev)
			nfc_abort_command(tag->dev);
		g_cond_wait_until(&tag->cond, &tag->lock, end);
	}
	g_mutex_unlock(&tag->lock);
	g_thread_join(g_steal_pointer(&tag->thread));

	notify = tag->state != CP_NFC_TAG_STOPPED;
	tag->state = CP_NFC_TAG_STOPPED;
	if (notify && notify_owner && tag->cb.state_changed)
		tag->cb.state_changed(tag, CP_NFC_TAG_STOPPED, NULL, tag->user_data);
}

void cp_nfc_tag_stop(CpNfcTag *tag)
{
	tag_stop(tag, TRUE);
}

CpNfcTagState cp_nfc_tag_get_state(CpNfcTag *tag)
{
	return tag->state;
}

const char *cp_nfc_tag_get_connstring(CpNfcTag *tag)
{
	return tag->connstring;
}
