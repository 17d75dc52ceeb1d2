/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "cellprovd"
#include "cp-idle.h"

#include "cp-transport.h"

/* A caller of the D-Bus API keeps the daemon at least this long after its
 * last call, even once its work is done: cellprovctl's next call of the
 * same command still finds it. */
#define IDLE_CALL_GRACE_US (2 * G_USEC_PER_SEC)

struct _CpIdle {
	CpDaemon *d;
	CpPoll *p;
	CpService *s;
	void (*done)(gpointer data);
	gpointer data;
	gint64 started;                 /* monotonic µs */
	gint64 last_poll;               /* the end of the last poll round, 0: none */
	gboolean polled;                /* a poll round is over since the last change of state */
	gboolean fired;
	guint timer;
};

static void evaluate(CpIdle *i);

gboolean
cp_idle_is_stable(CpDaemon *d, CpPoll *p)
{
	/* Every other resting state waits for a tap: idle (armed) for its
	 * owner's, failed for the owner's next try; a failed re-provisioning
	 * that kept the working subscription is provisioned again
	 * (CP_EVENT_KEPT). */
	if (!cp_daemon_get_bound(d) || cp_daemon_get_state(d) != CP_STATE_PROVISIONED ||
	    cp_daemon_is_busy(d) || (p && cp_poll_is_busy(p)))
		return FALSE;
	/* A phone in a session, or a provisioning window someone opened
	 * (BLE advertising: cellprovctl ble-window, the button) waits for a
	 * phone too. A tag without a window (NFC) is always offered: that
	 * alone keeps nobody waiting. */
	for (guint n = 0; n < cp_daemon_get_n_transports(d); n++) {
		CpTransport *t = cp_daemon_get_transport(d, n);

		if (t->state == CP_TRANSPORT_SESSION ||
		    (t->ops->open_window && t->state == CP_TRANSPORT_WAITING))
			return FALSE;
	}
	return TRUE;
}

static gint64
last_activity(CpIdle *i)
{
	gint64 t = MAX(i->started, i->last_poll);

	t = MAX(t, cp_daemon_get_last_tag_time(i->d));
	if (i->s)
		t = MAX(t, cp_service_get_last_call_time(i->s));
	return t;
}

/* The monotonic time to exit at: at once when the work is done (the
 * receipt read, or a poll round over), after the linger otherwise; never
 * within the grace after a D-Bus call. */
static gint64
deadline(CpIdle *i, const char **why)
{
	gint64 call = i->s ? cp_service_get_last_call_time(i->s) : 0;
	gint64 grace = call ? call + IDLE_CALL_GRACE_US : 0;

	if (cp_daemon_get_receipt_read(i->d)) {
		*why = "the receipt was read";
		return grace;
	}
	if (i->polled) {
		*why = "the poll is done";
		return grace;
	}
	*why = "nothing happened";
	return last_activity(i) + (gint64)cp_daemon_get_conf(i->d)->linger * G_USEC_PER_SEC;
}

static gboolean
on_timer(gpointer data)
{
	CpIdle *i = data;

	i->timer = 0;
	evaluate(i);
	return G_SOURCE_REMOVE;
}

static void
evaluate(CpIdle *i)
{
	const char *why = NULL;
	gint64 at, now;

	if (i->fired)
		return;
	if (!cp_idle_is_stable(i->d, i->p)) {
		if (i->timer) {
			g_source_remove(i->timer);
			i->timer = 0;
		}
		return;
	}
	at = deadline(i, &why);
	now = g_get_monotonic_time();
	if (at > now) {
		/* re-checked when it fires: activity may move it on */
		if (i->timer)
			g_source_remove(i->timer);
		i->timer = g_timeout_add((guint)MIN((at - now + 999) / 1000, G_MAXUINT), on_timer, i);
		return;
	}
	i->fired = TRUE;
	if (g_str_equal(why, "nothing happened"))
		g_message("idle: bound and provisioned, nothing for %u s: exiting",
			  cp_daemon_get_conf(i->d)->linger);
	else
		g_message("idle: bound and provisioned, %s: exiting", why);
	i->done(i->data);
}

static void
on_changed(CpDaemon *d, gpointer data)
{
	evaluate(data);
}

static void
on_state_changed(CpDaemon *d, CpState old, CpState new_state, CpEvent ev, gpointer data)
{
	CpIdle *i = data;

	/* a poll round counts for the state it found */
	i->polled = FALSE;
}

static void
on_round_done(gpointer data)
{
	CpIdle *i = data;

	i->last_poll = g_get_monotonic_time();
	i->polled = TRUE;
	evaluate(i);
}

CpIdle *
cp_idle_new(CpDaemon *d, CpPoll *p, CpService *s, void (*done)(gpointer data), gpointer data)
{
	CpDaemonListener l = { .state_changed = on_state_changed, .changed = on_changed };
	CpIdle *i;

	if (!cp_daemon_get_conf(d)->exit_when_idle)
		return NULL;
	i = g_new0(CpIdle, 1);
	i->d = d;
	i->p = p;
	i->s = s;
	i->done = done;
	i->data = data;
	i->started = g_get_monotonic_time();
	cp_daemon_add_listener(d, &l, i);
	if (p)
		cp_poll_set_round_done(p, on_round_done, i);
	evaluate(i);
	return i;
}

void
cp_idle_free(CpIdle *i)
{
	if (!i)
		return;
	cp_daemon_remove_listener(i->d, i);
	if (i->p)
		cp_poll_set_round_done(i->p, NULL, NULL);
	if (i->timer)
		g_source_remove(i->timer);
	g_free(i);
}
