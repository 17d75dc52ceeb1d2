/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The card engine's decisions, pure and unit-tested (tests/unit/test-card.c):
 * the plan of steps an operation runs, the ADM1 rule that never spends the
 * last attempt, and what a status word means. The steps themselves (over
 * the transport's APDU channel) are in cp-card.c too, run by
 * cp-modem-flow.c.
 */
#pragma once

#include <glib.h>

typedef enum {
	CP_STEP_OPEN_MODEM,       /* ops->open: reach the modem's manager */
	CP_STEP_READ_APN,         /* ops->read_apn (into the backup) */
	CP_STEP_TAKE,             /* ops->take: a lent modem becomes ours */
	CP_STEP_OPEN_PORT,        /* transport->open */
	CP_STEP_CARD_STATUS,      /* transport->card_status, asked again while not ready */
	CP_STEP_ICCID,            /* transport->read_iccid, or EF.ICCID by APDUs */
	CP_STEP_OPEN_CHANNEL,     /* transport->open_channel, or SELECT on the basic channel */
	CP_STEP_IDENTIFY,         /* which card driver (cp-usim.h) */
	CP_STEP_VERIFY_ADM1,
	CP_STEP_READ_OLD,         /* the backup's files */
	CP_STEP_BACKUP,           /* handed to the caller, who makes it durable */
	CP_STEP_WRITE,            /* the first write: from here on, a failure rolls back */
	CP_STEP_CLOSE_CHANNEL,
	CP_STEP_APN,              /* ops->set_apn */
	CP_STEP_OFFLINE,          /* ops->offline */
	CP_STEP_RESET,            /* ops->reset */
	CP_STEP_CLOSE_PORT,       /* a lent modem: the port goes before give_back */
	CP_STEP_GIVE_BACK,        /* ops->give_back */
	CP_STEP_REGISTRATION,     /* ops->registration_start .. _stop */
	CP_STEP_CHECK_IMSI,       /* ops->read_imsi, or EF.IMSI through the card */
	CP_STEP_PROBE,            /* a probe: the sizes of the driver's files, ADM1's counter */
	CP_STEP_MODEM_INFO,       /* a probe: ops->read_firmware, transport->read_atr */
	CP_N_STEPS,
} CpModemStep;

typedef enum {
	CP_PLAN_PROVISION,
	CP_PLAN_ROLLBACK,         /* after a failure past the first write, in the same run */
	CP_PLAN_RESTORE,          /* a journaled backup, after a crash */
	CP_PLAN_PROBE,            /* read-only: what the modem and the card are */
} CpPlanKind;

#define CP_STEP_BIT(s) ((guint32)1 << (s))

/*
 * The steps of an operation of kind, in order, into out; returns how many.
 * have holds CP_STEP_BIT(s) for each step the driver can run (an entry it
 * left NULL is a step it cannot; the card's own steps are always there).
 * A driver with CP_STEP_TAKE has a lent modem: the port opens after the
 * take and closes before the give-back, the APN is read before the take
 * and set after the give-back (a manager's profiles need the modem back).
 * Without it, the port opens first and stays open to the end. The way
 * back (rollback, restore) reads nothing and waits for no registration.
 * A probe has no step that writes, resets or verifies ADM1: it reaches
 * the card, identifies it, probes its files (CP_STEP_PROBE) and asks the
 * modem for the IMSI.
 */
guint cp_card_plan_build(CpPlanKind kind, guint32 have, CpModemStep out[CP_N_STEPS]);

const char *cp_card_step_name(CpModemStep step, gboolean restoring);

/* What VERIFY without data (it spends nothing) says about ADM1. */
typedef enum {
	CP_CARD_ADM1_VERIFIED,    /* 9000: verified already, nothing to present */
	CP_CARD_ADM1_PRESENT,     /* 63Cx, x >= 2: a wrong ADM1 still leaves one */
	CP_CARD_ADM1_LAST,        /* 63C1: never tried, it would block the card */
	CP_CARD_ADM1_BLOCKED,     /* 63C0, 6983 */
	CP_CARD_ADM1_NO_COUNTER,  /* anything else: no way to know a try is safe */
} CpCardAdm1;

CpCardAdm1 cp_card_adm1_decide(guint16 sw, guint *left);
/* The error for sw (the answer to VERIFY with ADM1, or to the counter
 * query when it says no); NULL for 9000. Never holds ADM1. */
GError *cp_card_adm1_error(guint16 sw, gboolean presented);

typedef enum {
	CP_CARD_SW_OK,            /* 9000 */
	CP_CARD_SW_MORE,          /* 61xx, 91xx: done, with more to fetch */
	CP_CARD_SW_WARNING,       /* 62xx, 63xx */
	CP_CARD_SW_WRONG_LE,      /* 6Cxx */
	CP_CARD_SW_ERROR,
} CpCardSw;

CpCardSw cp_card_sw_class(guint16 sw);
/* A SELECT that worked (9000, 61xx, 91xx). */
gboolean cp_card_sw_selected(guint16 sw);
/* CP_ERR_APDU: "what: the card answered SW". */
GError *cp_card_apdu_error(const char *what, guint16 sw);

/* The size of a transparent EF from the FCP template a SELECT returns
 * (TS 102 221 11.1.1.3: 62 L, then tag 80 file size, or 81 total size).
 * FALSE when the bytes are not an FCP or hold no size. */
gboolean cp_card_fcp_size(const guint8 *fcp, gsize len, gsize *size);

/* A linear fixed EF's record length and number of records from its FCP
 * (tag 82, file descriptor). FALSE when the FCP has none. */
gboolean cp_card_fcp_records(const guint8 *fcp, gsize len, gsize *record_len, guint *n_records);

/* The AID of a USIM (RID A000000087, application code 1002, TS 101 220
 * annex E) in one EF.DIR record (TS 102 221 13.1: 61 L 4F l AID ...), into
 * aid (16 bytes); FALSE for another application or an empty record. */
gboolean cp_card_dir_usim_aid(const guint8 *record, gsize len, guint8 aid[16], gsize *aid_len);
/* The same for an ISIM (application code 1004). */
gboolean cp_card_dir_isim_aid(const guint8 *record, gsize len, guint8 aid[16], gsize *aid_len);

/* Whether an error opening a logical channel is the modem (or the card)
 * refusing channels, after which the basic channel is tried: not a
 * timeout, a vanished modem or a cancellation. */
gboolean cp_card_channel_refused(const GError *error);

/* The CLA byte of a command on a logical channel (TS 102 221 10.1.1). */
guint8 cp_card_cla(guint channel);
