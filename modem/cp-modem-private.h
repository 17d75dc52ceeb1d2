/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What cp-modem.c shares with its backends (QMI, ModemManager).
 * A backend gets one operation at a time and completes its GTask.
 */
#pragma once

#include "cp-modem.h"
#include "cp-usim.h"

#define CP_MODEM_LOG_DOMAIN "cellprov-modem"

struct _CpModemBackup {
	char *card;
	char *iccid;
	char *imsi;                       /* decoded from ef[CP_USIM_EF_IMSI] */
	guint8 ef[CP_USIM_N_EF][CP_USIM_EF_MAX];
	gsize ef_len[CP_USIM_N_EF];
	gboolean have_apn;
	guint8 profile_index;             /* 0: the profile did not exist (created by us) */
	char *apn;
};

/* An owned copy of a CpModemTarget. */
typedef struct {
	char *imsi;
	guint mnc_length;
	char *plmn;
	char *network_name;
	char *apn;
	CpSecret *k;
	CpSecret *opc;
} CpModemTargetCopy;

typedef struct {
	const char *name;
	void (*provision)(CpModem *modem, CpModemTargetCopy *target, GTask *task);
	void (*restore)(CpModem *modem, const CpModemBackup *backup, GTask *task);
} CpModemBackendOps;

struct _CpModem {
	CpModemBackendType type;
	char *device;
	gboolean proxy;
	char *proxy_path;
	const CpUsimDriver *driver;       /* NULL: detect */
	CpSecret *adm1;
	guint registration_timeout;
	guint request_timeout;
	CpModemReset reset;
	const CpModemBackendOps *ops;
	const CpModemBackendOps *resolved; /* AUTO: what the last operation ran on */
	gboolean busy;
	/* the running operation's callbacks */
	CpModemProgressFunc progress;
	CpModemBackupFunc backup;
	gpointer user_data;
	/* set by the backend while it waits for cp_modem_backup_saved() */
	void (*backup_saved)(gpointer backend_data, const GError *error);
	gpointer backup_saved_data;
};

extern const CpModemBackendOps cp_modem_qmi_ops;
/* The card part of the QMI plans and the reset that makes the modem read
 * the card again (no APN, no registration): for the ModemManager backend,
 * which does the rest through ModemManager. */
extern const CpModemBackendOps cp_modem_qmi_card_ops;

/* Log "(n/N) what" and tell the caller. */
void cp_modem_step(CpModem *modem, guint n, guint n_steps, const char *what);

CpModemBackup *cp_modem_backup_new(void);
