/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The flow runner's state, shared by the runner (cp-modem-flow.c) and the
 * card steps (cp-card.c); drivers see only its CpModemRun.
 */
#pragma once

#include "cp-card.h"
#include "cp-modem-driver.h"

typedef struct _CpModemFlow CpModemFlow;

/* A module that drops off the bus more than once in one operation is
 * followed this many times, each wait bounded by reenumerate-timeout. */
#define CP_MODEM_MAX_REOPENS 4

struct _CpModemFlow {
	CpModemRun run;                  /* first: what the drivers see */
	GTask *task;
	const CpModemBackup *restore_of; /* restore: the caller's backup */
	CpModemBackup *backup;           /* provisioning: what was read */
	CpModemProbe *probe;             /* a probe (no target, no backup): the report */

	/* room for the three steps a re-enumeration inserts */
	CpModemStep plan[CP_N_STEPS + 3];
	guint n_plan;
	guint pos;
	guint sub;                       /* requests answered within the step */
	guint ef;                        /* the file (or driver) a card step is at */
	void (*on_done)(CpModemFlow *f, GError *error);

	gboolean rolling_back;
	gboolean written;                /* the first write was sent */
	gboolean port_open;
	gboolean modem_open;
	gboolean taken;
	/* a module that re-enumerates after its reset (cp-modem-port.h) */
	gboolean reset_sent;             /* a port that goes now is followed */
	gboolean following;              /* reopening it: port, card, ICCID */
	CpModemPhase follow_phase;       /* ... in the phase of the step it resumes */
	char *iccid_before;
	guint follow_at;                 /* where the reopening steps are */
	guint reopens;                   /* followed or begun again: at most CP_MODEM_MAX_REOPENS */
	gboolean rollback_writing;       /* the rollback has begun to write */
	gboolean started_again;          /* gone before any write: once from the port */
	gboolean backup_handed;          /* the backup went to the caller */              /* the card the module must come back with */
	gint64 port_deadline;            /* monotonic; until the port is back */
	GError *first_error;             /* the failure that started a rollback */
	GError *end_error;               /* held while the way out closes things */
	gulong user_cancel_id;

	/* the card */
	const CpUsimDriver *card;
	char *iccid;
	guint channel;
	gboolean channel_open;
	GBytes *resp;
	guint rd;                        /* where a read of an EF is (cp-card.c) */
	gsize rd_want;
	gboolean rd_again;               /* one more GET RESPONSE or READ at most */
	gboolean apdu_soft;              /* a refused command answers SW 0000 */
	guint dir;                       /* where the read of EF.DIR is */
	guint dir_records;
	gsize dir_record_len;
	guint8 aid[16];                  /* the USIM's AID from EF.DIR (aid_len 0: none) */
	gsize aid_len;
	guint8 isim_aid[16];             /* the ISIM's, likewise */
	gsize isim_aid_len;
	gboolean dir_read;               /* EF.DIR's records were read, or the modem listed both */
	guint8 modem_aid[16];            /* the USIM's AID as the modem lists it (0: it did not) */
	gsize modem_aid_len;
	guint8 modem_isim_aid[16];       /* the ISIM's, likewise */
	gsize modem_isim_aid_len;
	gboolean basic_channel;          /* the modem refused a logical channel */
	gint at_df;                      /* the CpUsimDf the channel is at, -1: unknown */
	guint path_pos;                  /* SELECTs sent on the way to a DF */
	guint file_sub;                  /* sub when the file's DF was reached */
	gint cur_ef;                     /* the CpUsimEf selected on the channel, -1: unknown */
	guint32 sfi_refused;             /* 1 << CpUsimEf: the card refused its SFI */
	guint wr;                        /* where a write of an EF is (cp-card.c) */
	gint64 card_deadline;            /* monotonic; until the card is ready */
	guint retry_id;

	/* the APN the modem attaches with */
	gboolean have_profile;
	guint profile_index;
	char *old_apn;

	GSource *backup_wait;            /* the backup hand-over */

	/* registration and result */
	gboolean waiting;
	guint deadline_id;
	CpModemRegRequest *reg_request;  /* the driver's request in flight */
	char *reg_plmn;
	char *reg_name;
	char *modem_imsi;
	gboolean imsi_read;
	gboolean imsi_by_card;           /* the modem could not say: read EF.IMSI */
};

static inline CpModemFlow *
cp_modem_flow(CpModemRun *run)
{
	return (CpModemFlow *)run;
}

/* The runner, for the card steps. */
void cp_modem_flow_next(CpModemFlow *f);
void cp_modem_flow_fail(CpModemFlow *f, GError *error);
/* Re-enter the current step (sub and ef as the step left them). */
void cp_modem_flow_again(CpModemFlow *f);
/* Send a command on the card's channel; the answer goes to f->resp, sub
 * counts up and the step runs again. Cleanses apdu's copy. */
void cp_modem_flow_transmit(CpModemFlow *f, const guint8 *apdu, gsize len);
/* The ICCID is known (f->iccid): check it against the backup, go on. */
void cp_modem_flow_check_iccid(CpModemFlow *f);
/* The IMSI is known (f->modem_imsi): check it against the target. */
void cp_modem_flow_check_imsi(CpModemFlow *f);
/* The SW of f->resp. */
guint16 cp_modem_flow_sw(CpModemFlow *f);

/* The card steps (cp-card.c). */
void cp_card_open_usim(CpModemFlow *f);
void cp_card_read_iccid(CpModemFlow *f);
void cp_card_identify(CpModemFlow *f);
void cp_card_verify_adm1(CpModemFlow *f);
void cp_card_read_old(CpModemFlow *f);
void cp_card_write(CpModemFlow *f);
/* EF.IMSI as the modem reads it now, into f->modem_imsi. */
void cp_card_read_imsi(CpModemFlow *f);
/* A probe's look at the card: each file's size from its FCP, ADM1's
 * counter from VERIFY without data; into f->probe. */
void cp_card_probe(CpModemFlow *f);
