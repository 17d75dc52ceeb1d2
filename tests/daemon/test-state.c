/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The session state machine: every pair of state and event, and the
 * recovery decision for every state a crash can leave in the journal. */
#include <glib.h>

#include "cp-state.h"

typedef struct {
	CpState from;
	CpEvent ev;
	CpState to;                     /* CP_STATE_N: back to rest */
} Edge;

/* The table as the documentation (docs/daemon.md) states it. */
static const Edge edges[] = {
	{ CP_STATE_IDLE, CP_EVENT_PROFILE_WRITTEN, CP_STATE_RECEIVED },
	{ CP_STATE_IDLE, CP_EVENT_FORGET, CP_STATE_IDLE },
	{ CP_STATE_IDLE, CP_EVENT_FACTORY_RESET, CP_STATE_IDLE },
	{ CP_STATE_RECEIVED, CP_EVENT_VERIFIED, CP_STATE_VERIFIED },
	{ CP_STATE_RECEIVED, CP_EVENT_REJECTED, CP_STATE_N },
	{ CP_STATE_VERIFIED, CP_EVENT_BACKUP_SAVED, CP_STATE_PROVISIONING },
	{ CP_STATE_VERIFIED, CP_EVENT_STEP_FAILED, CP_STATE_FAILED },
	{ CP_STATE_VERIFIED, CP_EVENT_KEPT, CP_STATE_PROVISIONED },
	{ CP_STATE_VERIFIED, CP_EVENT_DECOMMISSION, CP_STATE_DECOMMISSIONING },
	{ CP_STATE_PROVISIONING, CP_EVENT_WRITTEN, CP_STATE_RESETTING },
	{ CP_STATE_PROVISIONING, CP_EVENT_STEP_FAILED, CP_STATE_ROLLING_BACK },
	{ CP_STATE_RESETTING, CP_EVENT_RESET_DONE, CP_STATE_REGISTERING },
	{ CP_STATE_RESETTING, CP_EVENT_STEP_FAILED, CP_STATE_ROLLING_BACK },
	{ CP_STATE_REGISTERING, CP_EVENT_REGISTERED, CP_STATE_PROVISIONED },
	{ CP_STATE_REGISTERING, CP_EVENT_STEP_FAILED, CP_STATE_ROLLING_BACK },
	{ CP_STATE_ROLLING_BACK, CP_EVENT_ROLLED_BACK, CP_STATE_FAILED },
	{ CP_STATE_ROLLING_BACK, CP_EVENT_KEPT, CP_STATE_PROVISIONED },
	{ CP_STATE_PROVISIONED, CP_EVENT_PROFILE_WRITTEN, CP_STATE_RECEIVED },
	{ CP_STATE_PROVISIONED, CP_EVENT_REARM, CP_STATE_IDLE },
	{ CP_STATE_PROVISIONED, CP_EVENT_FORGET, CP_STATE_IDLE },
	{ CP_STATE_PROVISIONED, CP_EVENT_FACTORY_RESET, CP_STATE_IDLE },
	{ CP_STATE_FAILED, CP_EVENT_PROFILE_WRITTEN, CP_STATE_RECEIVED },
	{ CP_STATE_FAILED, CP_EVENT_REARM, CP_STATE_IDLE },
	{ CP_STATE_FAILED, CP_EVENT_FORGET, CP_STATE_IDLE },
	{ CP_STATE_FAILED, CP_EVENT_FACTORY_RESET, CP_STATE_IDLE },
	{ CP_STATE_DECOMMISSIONING, CP_EVENT_DECOMMISSIONED, CP_STATE_IDLE },
};

static const Edge *
find_edge(CpState s, CpEvent ev)
{
	for (gsize i = 0; i < G_N_ELEMENTS(edges); i++)
		if (edges[i].from == s && edges[i].ev == ev)
			return &edges[i];
	return NULL;
}

/* Every (state, event): listed pairs move as listed, all others are
 * CP_ERR_STATE and leave the machine exactly as it was. */
static void
test_every_pair(void)
{
	for (int s = 0; s < CP_STATE_N; s++) {
		for (int ev = 0; ev < CP_EVENT_N; ev++) {
			const Edge *e = find_edge(s, ev);
			CpMachine m;
			CpState from = CP_STATE_N, to = CP_STATE_N;
			CpError err;

			cp_machine_init(&m, s);
			/* a rest other than the init default, to see it used */
			if (!cp_state_is_resting(s))
				m.rest = CP_STATE_FAILED;
			err = cp_machine_feed(&m, ev, &from, &to);
			if (!e) {
				g_assert_cmpint(err, ==, CP_ERR_STATE);
				g_assert_cmpint(m.state, ==, s);
				g_assert_cmpint(from, ==, CP_STATE_N);
				g_assert_false(cp_machine_accepts(&m, ev));
				continue;
			}
			g_assert_cmpint(err, ==, CP_OK);
			g_assert_cmpint(from, ==, s);
			g_assert_cmpint(to, ==, e->to == CP_STATE_N ? CP_STATE_FAILED : e->to);
			g_assert_cmpint(m.state, ==, to);
		}
	}
}

/* A rejected profile returns to where the attempt started. */
static void
test_rejection_returns_to_rest(void)
{
	CpMachine m;

	cp_machine_init(&m, CP_STATE_IDLE);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_PROFILE_WRITTEN, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_REJECTED, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_IDLE);

	cp_machine_init(&m, CP_STATE_FAILED);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_PROFILE_WRITTEN, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_REJECTED, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_FAILED);

	/* a provisioned device takes a profile without a re-arm, and a
	 * rejection leaves it provisioned */
	cp_machine_init(&m, CP_STATE_PROVISIONED);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_PROFILE_WRITTEN, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_REJECTED, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_PROVISIONED);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_REARM, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_PROFILE_WRITTEN, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_REJECTED, NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_IDLE);
}

/* Re-provisioning that fails keeps the device provisioned; a decommission
 * ends in idle. */
static void
test_lifecycle_paths(void)
{
	static const CpEvent kept[] = {
		CP_EVENT_PROFILE_WRITTEN, CP_EVENT_VERIFIED, CP_EVENT_BACKUP_SAVED,
		CP_EVENT_WRITTEN, CP_EVENT_RESET_DONE, CP_EVENT_STEP_FAILED, CP_EVENT_KEPT,
	};
	static const CpEvent decommission[] = {
		CP_EVENT_PROFILE_WRITTEN, CP_EVENT_VERIFIED, CP_EVENT_DECOMMISSION,
		CP_EVENT_DECOMMISSIONED,
	};
	CpMachine m;

	cp_machine_init(&m, CP_STATE_PROVISIONED);
	for (gsize i = 0; i < G_N_ELEMENTS(kept); i++)
		g_assert_cmpint(cp_machine_feed(&m, kept[i], NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_PROVISIONED);

	cp_machine_init(&m, CP_STATE_PROVISIONED);
	for (gsize i = 0; i < G_N_ELEMENTS(decommission); i++)
		g_assert_cmpint(cp_machine_feed(&m, decommission[i], NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_IDLE);
	/* a decommission cut off resumes: nothing else leaves the state */
	cp_machine_init(&m, CP_STATE_DECOMMISSIONING);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_PROFILE_WRITTEN, NULL, NULL), ==, CP_ERR_STATE);
	g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_FACTORY_RESET, NULL, NULL), ==, CP_ERR_STATE);
}

/* The happy path and the failure path, end to end. */
static void
test_paths(void)
{
	static const CpEvent happy[] = {
		CP_EVENT_PROFILE_WRITTEN, CP_EVENT_VERIFIED, CP_EVENT_BACKUP_SAVED,
		CP_EVENT_WRITTEN, CP_EVENT_RESET_DONE, CP_EVENT_REGISTERED,
	};
	static const CpEvent denied[] = {
		CP_EVENT_PROFILE_WRITTEN, CP_EVENT_VERIFIED, CP_EVENT_BACKUP_SAVED,
		CP_EVENT_WRITTEN, CP_EVENT_RESET_DONE, CP_EVENT_STEP_FAILED, CP_EVENT_ROLLED_BACK,
	};
	CpMachine m;

	cp_machine_init(&m, CP_STATE_IDLE);
	for (gsize i = 0; i < G_N_ELEMENTS(happy); i++)
		g_assert_cmpint(cp_machine_feed(&m, happy[i], NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_PROVISIONED);
	g_assert_cmpint(m.rest, ==, CP_STATE_PROVISIONED);

	cp_machine_init(&m, CP_STATE_IDLE);
	for (gsize i = 0; i < G_N_ELEMENTS(denied); i++)
		g_assert_cmpint(cp_machine_feed(&m, denied[i], NULL, NULL), ==, CP_OK);
	g_assert_cmpint(m.state, ==, CP_STATE_FAILED);
}

static void
test_recovery(void)
{
	static const struct {
		CpState s;
		CpRecovery r;
		gboolean journaled;
	} cases[] = {
		{ CP_STATE_IDLE, CP_RECOVER_NOTHING, TRUE },
		{ CP_STATE_RECEIVED, CP_RECOVER_NOTHING, FALSE },
		{ CP_STATE_VERIFIED, CP_RECOVER_NOTHING, FALSE },
		{ CP_STATE_PROVISIONING, CP_RECOVER_ROLLBACK, TRUE },
		{ CP_STATE_RESETTING, CP_RECOVER_ROLLBACK, TRUE },
		{ CP_STATE_REGISTERING, CP_RECOVER_ROLLBACK, TRUE },
		{ CP_STATE_ROLLING_BACK, CP_RECOVER_ROLLBACK, TRUE },
		{ CP_STATE_PROVISIONED, CP_RECOVER_NOTHING, TRUE },
		{ CP_STATE_FAILED, CP_RECOVER_NOTHING, TRUE },
		{ CP_STATE_DECOMMISSIONING, CP_RECOVER_DECOMMISSION, TRUE },
	};

	G_STATIC_ASSERT(G_N_ELEMENTS(cases) == CP_STATE_N);
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_assert_cmpint(cases[i].s, ==, i);
		g_assert_cmpint(cp_state_recovery(cases[i].s), ==, cases[i].r);
		g_assert_cmpint(cp_state_is_journaled(cases[i].s), ==, cases[i].journaled);
		/* every state a rollback starts from can reach failed */
		if (cases[i].r == CP_RECOVER_ROLLBACK) {
			CpMachine m;

			cp_machine_init(&m, CP_STATE_ROLLING_BACK);
			g_assert_cmpint(cp_machine_feed(&m, CP_EVENT_ROLLED_BACK, NULL, NULL), ==, CP_OK);
			g_assert_cmpint(m.state, ==, CP_STATE_FAILED);
		}
	}
	g_assert_cmpstr(cp_recovery_name(CP_RECOVER_ROLLBACK), ==, "rollback");
	g_assert_cmpstr(cp_recovery_name(CP_RECOVER_DECOMMISSION), ==, "decommission");
}

static void
test_names(void)
{
	for (int s = 0; s < CP_STATE_N; s++) {
		CpState back;

		g_assert_nonnull(cp_state_name(s));
		g_assert_true(cp_state_from_name(cp_state_name(s), &back));
		g_assert_cmpint(back, ==, s);
	}
	for (int ev = 0; ev < CP_EVENT_N; ev++)
		g_assert_nonnull(cp_event_name(ev));
	g_assert_null(cp_state_name(CP_STATE_N));
	g_assert_false(cp_state_from_name("Idle", &(CpState){ 0 }));
	g_assert_cmpint(cp_state_device_state(CP_STATE_IDLE), ==, CP_DEVICE_UNPROVISIONED);
	g_assert_cmpint(cp_state_device_state(CP_STATE_REGISTERING), ==, CP_DEVICE_PROVISIONING);
	g_assert_cmpint(cp_state_device_state(CP_STATE_PROVISIONED), ==, CP_DEVICE_PROVISIONED);
	g_assert_cmpint(cp_state_device_state(CP_STATE_FAILED), ==, CP_DEVICE_FAILED);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/daemon/state/every-pair", test_every_pair);
	g_test_add_func("/daemon/state/rejection-returns-to-rest", test_rejection_returns_to_rest);
	g_test_add_func("/daemon/state/paths", test_paths);
	g_test_add_func("/daemon/state/lifecycle-paths", test_lifecycle_paths);
	g_test_add_func("/daemon/state/recovery", test_recovery);
	g_test_add_func("/daemon/state/names", test_names);
	return g_test_run();
}
