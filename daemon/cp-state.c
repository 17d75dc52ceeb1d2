/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-state.h"

#include <stddef.h>
#include <string.h>

/*
 * Entries hold the next state plus one, so that the zero of an unlisted
 * pair means "no transition"; REST means back to the resting state the
 * attempt started from.
 */
#define T(s) ((s) + 1)
#define REST CP_STATE_N

/*
 * The whole machine. Reading a row says what can happen in a state; a
 * crash in any state is handled by cp_state_recovery() below, not here.
 * A provisioned device takes a written profile or command: the library's
 * binding check (cp_profile_verify, cp_command_verify) admits only its own
 * operator's reprovision (same binding version), transfer (higher) or
 * decommission, so an unwanted profile cannot replace a working one.
 */
static const unsigned char table[CP_STATE_N][CP_EVENT_N] = {
	[CP_STATE_IDLE] = {
		[CP_EVENT_PROFILE_WRITTEN] = T(CP_STATE_RECEIVED),
		[CP_EVENT_FORGET] = T(CP_STATE_IDLE),
		[CP_EVENT_FACTORY_RESET] = T(CP_STATE_IDLE),
	},
	[CP_STATE_RECEIVED] = {
		[CP_EVENT_VERIFIED] = T(CP_STATE_VERIFIED),
		[CP_EVENT_REJECTED] = T(REST),
	},
	[CP_STATE_VERIFIED] = {
		[CP_EVENT_BACKUP_SAVED] = T(CP_STATE_PROVISIONING),
		/* reading the old values failed: nothing was written */
		[CP_EVENT_STEP_FAILED] = T(CP_STATE_FAILED),
		[CP_EVENT_KEPT] = T(CP_STATE_PROVISIONED),
		/* a verified command */
		[CP_EVENT_DECOMMISSION] = T(CP_STATE_DECOMMISSIONING),
	},
	[CP_STATE_PROVISIONING] = {
		[CP_EVENT_WRITTEN] = T(CP_STATE_RESETTING),
		[CP_EVENT_STEP_FAILED] = T(CP_STATE_ROLLING_BACK),
	},
	[CP_STATE_RESETTING] = {
		[CP_EVENT_RESET_DONE] = T(CP_STATE_REGISTERING),
		[CP_EVENT_STEP_FAILED] = T(CP_STATE_ROLLING_BACK),
	},
	[CP_STATE_REGISTERING] = {
		[CP_EVENT_REGISTERED] = T(CP_STATE_PROVISIONED),
		[CP_EVENT_STEP_FAILED] = T(CP_STATE_ROLLING_BACK),
	},
	[CP_STATE_ROLLING_BACK] = {
		[CP_EVENT_ROLLED_BACK] = T(CP_STATE_FAILED),
		/* a re-provisioning: the working subscription is back */
		[CP_EVENT_KEPT] = T(CP_STATE_PROVISIONED),
	},
	[CP_STATE_PROVISIONED] = {
		[CP_EVENT_PROFILE_WRITTEN] = T(CP_STATE_RECEIVED),
		[CP_EVENT_REARM] = T(CP_STATE_IDLE),
		[CP_EVENT_FORGET] = T(CP_STATE_IDLE),
		[CP_EVENT_FACTORY_RESET] = T(CP_STATE_IDLE),
	},
	[CP_STATE_FAILED] = {
		[CP_EVENT_PROFILE_WRITTEN] = T(CP_STATE_RECEIVED),
		[CP_EVENT_REARM] = T(CP_STATE_IDLE),
		[CP_EVENT_FORGET] = T(CP_STATE_IDLE),
		[CP_EVENT_FACTORY_RESET] = T(CP_STATE_IDLE),
	},
	[CP_STATE_DECOMMISSIONING] = {
		[CP_EVENT_DECOMMISSIONED] = T(CP_STATE_IDLE),
	},
};

/* The next state, REST, or -1 for no transition. */
static int
lookup(const CpMachine *m, CpEvent ev)
{
	if ((unsigned)m->state >= CP_STATE_N || (unsigned)ev >= CP_EVENT_N)
		return -1;
	return (int)table[m->state][ev] - 1;
}

void
cp_machine_init(CpMachine *m, CpState state)
{
	m->state = state;
	m->rest = cp_state_is_resting(state) ? state : CP_STATE_IDLE;
}

bool
cp_machine_accepts(const CpMachine *m, CpEvent ev)
{
	return lookup(m, ev) >= 0;
}

CpError
cp_machine_feed(CpMachine *m, CpEvent ev, CpState *from, CpState *to)
{
	int next = lookup(m, ev);

	if (next < 0)
		return CP_ERR_STATE;
	if (next == REST)
		next = m->rest;
	if (from)
		*from = m->state;
	if (to)
		*to = (CpState)next;
	m->state = (CpState)next;
	if (cp_state_is_resting(m->state))
		m->rest = m->state;
	return CP_OK;
}

bool
cp_state_is_resting(CpState s)
{
	return s == CP_STATE_IDLE || s == CP_STATE_PROVISIONED || s == CP_STATE_FAILED;
}

bool
cp_state_is_busy(CpState s)
{
	return s == CP_STATE_PROVISIONING || s == CP_STATE_RESETTING ||
	       s == CP_STATE_REGISTERING || s == CP_STATE_ROLLING_BACK;
}

bool
cp_state_is_command(CpState s)
{
	return s == CP_STATE_DECOMMISSIONING;
}

bool
cp_state_is_journaled(CpState s)
{
	return cp_state_is_resting(s) || cp_state_is_busy(s) || cp_state_is_command(s);
}

CpDeviceState
cp_state_device_state(CpState s)
{
	switch (s) {
	case CP_STATE_IDLE:
		return CP_DEVICE_UNPROVISIONED;
	case CP_STATE_PROVISIONED:
		return CP_DEVICE_PROVISIONED;
	case CP_STATE_FAILED:
		return CP_DEVICE_FAILED;
	default:
		return CP_DEVICE_PROVISIONING;
	}
}

static const char *const state_names[CP_STATE_N] = {
	[CP_STATE_IDLE] = "idle",
	[CP_STATE_RECEIVED] = "profile-received",
	[CP_STATE_VERIFIED] = "verified",
	[CP_STATE_PROVISIONING] = "provisioning",
	[CP_STATE_RESETTING] = "resetting",
	[CP_STATE_REGISTERING] = "registering",
	[CP_STATE_ROLLING_BACK] = "rolling-back",
	[CP_STATE_PROVISIONED] = "provisioned",
	[CP_STATE_FAILED] = "failed",
	[CP_STATE_DECOMMISSIONING] = "decommissioning",
};

static const char *const event_names[CP_EVENT_N] = {
	[CP_EVENT_PROFILE_WRITTEN] = "profile-written",
	[CP_EVENT_VERIFIED] = "verified",
	[CP_EVENT_REJECTED] = "rejected",
	[CP_EVENT_BACKUP_SAVED] = "backup-saved",
	[CP_EVENT_WRITTEN] = "written",
	[CP_EVENT_RESET_DONE] = "reset-done",
	[CP_EVENT_REGISTERED] = "registered",
	[CP_EVENT_STEP_FAILED] = "step-failed",
	[CP_EVENT_ROLLED_BACK] = "rolled-back",
	[CP_EVENT_REARM] = "rearm",
	[CP_EVENT_FORGET] = "forget",
	[CP_EVENT_KEPT] = "kept",
	[CP_EVENT_DECOMMISSION] = "decommission",
	[CP_EVENT_DECOMMISSIONED] = "decommissioned",
	[CP_EVENT_FACTORY_RESET] = "factory-reset",
};

const char *
cp_state_name(CpState s)
{
	return (unsigned)s < CP_STATE_N ? state_names[s] : NULL;
}

const char *
cp_event_name(CpEvent ev)
{
	return (unsigned)ev < CP_EVENT_N ? event_names[ev] : NULL;
}

bool
cp_state_from_name(const char *name, CpState *s)
{
	for (unsigned i = 0; i < CP_STATE_N; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*s = (CpState)i;
			return true;
		}
	}
	return false;
}

CpRecovery
cp_state_recovery(CpState journaled)
{
	/* Part of the USIM may hold new values in any busy state, even once
	 * registered (the journal may not say so yet): the backup is the
	 * only state known to be whole. Received and verified are never
	 * durable, so a journal never names them; nothing was written. A
	 * decommission is the opposite: its seq is committed and the owner
	 * ordered it, so it is finished, never undone. */
	if (cp_state_is_command(journaled))
		return CP_RECOVER_DECOMMISSION;
	return cp_state_is_busy(journaled) ? CP_RECOVER_ROLLBACK : CP_RECOVER_NOTHING;
}

const char *
cp_recovery_name(CpRecovery r)
{
	switch (r) {
	case CP_RECOVER_NOTHING:
		return "nothing";
	case CP_RECOVER_ROLLBACK:
		return "rollback";
	case CP_RECOVER_DECOMMISSION:
		return "decommission";
	}
	return "?";
}
