/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session state machine of cellprovd: an explicit state enum and one
 * transition table, as pure code (no I/O) so that every transition can be
 * unit-tested. The daemon feeds it events; a pair not in the table is a
 * programming error or a request that does not fit (CP_ERR_STATE), and
 * leaves the state unchanged.
 *
 * Resting states (IDLE, PROVISIONED, FAILED) are where the device waits
 * for a tap. A rejected profile returns to the resting state it came from,
 * so the machine remembers it. A provisioned device takes a written
 * profile (its library checks admit only a reprovision or a transfer to
 * a bound device) or command; a failed re-provisioning that kept the
 * working subscription returns to PROVISIONED (CP_EVENT_KEPT).
 */
#pragma once

#include <stdbool.h>

#include "cp-error.h"
#include "cp-records.h"

typedef enum {
	CP_STATE_IDLE,                  /* advertising, unprovisioned */
	CP_STATE_RECEIVED,              /* a profile was written to the tag */
	CP_STATE_VERIFIED,              /* it passed every check */
	CP_STATE_PROVISIONING,          /* old USIM values saved; writing */
	CP_STATE_RESETTING,             /* written; the modem re-reads the USIM */
	CP_STATE_REGISTERING,           /* waiting for the network */
	CP_STATE_ROLLING_BACK,          /* restoring the saved USIM values */
	CP_STATE_PROVISIONED,
	CP_STATE_FAILED,                /* the last attempt failed and was rolled back */
	CP_STATE_DECOMMISSIONING,       /* a decommission: restoring the original USIM values */
	CP_STATE_N,
} CpState;

typedef enum {
	CP_EVENT_PROFILE_WRITTEN,       /* the companion wrote a profile */
	CP_EVENT_VERIFIED,              /* it passed cp_profile_verify */
	CP_EVENT_REJECTED,              /* it did not: back to rest, nothing written */
	CP_EVENT_BACKUP_SAVED,          /* old values journaled: writing may begin */
	CP_EVENT_WRITTEN,               /* USIM and APN written */
	CP_EVENT_RESET_DONE,            /* the modem came back */
	CP_EVENT_REGISTERED,            /* registered with the expected IMSI */
	CP_EVENT_STEP_FAILED,           /* a modem step failed */
	CP_EVENT_ROLLED_BACK,           /* the old values are back (or rollback gave up) */
	CP_EVENT_REARM,                 /* D-Bus Rearm: accept a new profile */
	CP_EVENT_FORGET,                /* D-Bus Forget: drop the record */
	/* A failure that left the working subscription of a provisioned
	 * device in place (nothing written, or rolled back to it). */
	CP_EVENT_KEPT,
	CP_EVENT_DECOMMISSION,          /* a written command passed cp_command_verify */
	CP_EVENT_DECOMMISSIONED,        /* the original values are back: no owner, re-armed */
	CP_EVENT_FACTORY_RESET,         /* D-Bus FactoryReset: forget the owner, re-arm */
	CP_EVENT_N,
} CpEvent;

typedef struct {
	CpState state;
	CpState rest;                   /* resting state the attempt started from */
} CpMachine;

/* Start in state (a journaled one after a restart); rest is where a
 * rejection returns to (IDLE when state is not resting). */
void cp_machine_init(CpMachine *m, CpState state);

/*
 * Apply an event. On success *from and *to (if not NULL) say what changed;
 * CP_ERR_STATE when the event does not fit the state (nothing changes).
 */
CpError cp_machine_feed(CpMachine *m, CpEvent ev, CpState *from, CpState *to);

/* Whether the table has an entry (for callers that only ask). */
bool cp_machine_accepts(const CpMachine *m, CpEvent ev);

bool cp_state_is_resting(CpState s);
/* An attempt is under way: the journal holds it from PROVISIONING on. */
bool cp_state_is_busy(CpState s);
/* A journaled step of a command (DECOMMISSIONING): not an attempt (no
 * backup of its own), but the next start must finish it. */
bool cp_state_is_command(CpState s);
/* States the journal ever records (the others are never durable). */
bool cp_state_is_journaled(CpState s);
/* The device record's state byte for a machine state. */
CpDeviceState cp_state_device_state(CpState s);

/* Stable lower-case names ("idle", "profile-received", ...), used on
 * D-Bus, in logs and by cellprovctl; NULL for a value out of range. */
const char *cp_state_name(CpState s);
const char *cp_event_name(CpEvent ev);
/* Parse a state name; false when unknown. */
bool cp_state_from_name(const char *name, CpState *s);

/*
 * What the next start does with a journal left in state s by a crash or
 * power cut. Pure decision; the daemon carries it out. An attempt cut off
 * anywhere after the backup was saved is rolled back, never resumed:
 * resuming would need K_usim and OPc on flash, and the backup alone is
 * always enough to return to a known whole state.
 */
typedef enum {
	CP_RECOVER_NOTHING,             /* a resting state: nothing was under way */
	CP_RECOVER_ROLLBACK,            /* writes may be half done: restore the backup */
	CP_RECOVER_DECOMMISSION,        /* a decommission was cut off: finish it */
} CpRecovery;

CpRecovery cp_state_recovery(CpState journaled);
const char *cp_recovery_name(CpRecovery r);
