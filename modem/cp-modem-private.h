/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What cp-modem.c shares with the flow runner and the modem drivers.
 */
#pragma once

#include "cp-modem.h"
#include "cp-modem-port.h"
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

typedef struct _CpModemDriver CpModemDriver;

struct _CpModem {
	CpModemBackendType type;
	char *device;
	gboolean proxy;
	char *proxy_path;
	const CpUsimDriver *card;         /* NULL: detect */
	CpSecret *adm1;
	guint registration_timeout;
	guint request_timeout;
	CpModemReset reset;
	/* a module that re-enumerates: seconds to wait for its port, where
	 * sysfs is, and the port's physical identity once known */
	guint reenumerate_timeout;
	char *sysfs;
	CpPortId *port_id;
	/* a driver the program gives (the card engine's test); NULL: the
	 * type's (AUTO: decided per operation), from its module */
	const CpModemDriver *driver;
	const CpModemDriver *resolved;    /* what the last operation ran on */
	gboolean busy;
	/* the running operation's callbacks */
	CpModemProgressFunc progress;
	CpModemBackupFunc backup;
	gpointer user_data;
	/* set by the runner while it waits for cp_modem_backup_saved() */
	void (*backup_saved)(gpointer flow, const GError *error);
	gpointer backup_saved_data;
};

/* Log "(n/N) what" and tell the caller. */
void cp_modem_step(CpModem *modem, CpModemPhase phase, guint n, guint n_steps, const char *what);

/* Run one operation on driver (cp-modem-flow.c): provisioning to target,
 * or a restore of restore_of; completes task. */
void cp_modem_flow_start(CpModem *modem, const CpModemDriver *driver, GTask *task,
			 CpModemTargetCopy *target, const CpModemBackup *restore_of);

CpModemBackup *cp_modem_backup_new(void);
