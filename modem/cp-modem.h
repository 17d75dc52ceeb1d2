/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The modem as the daemon sees it: put a subscription on the USIM, set the
 * APN, make the modem re-read the card, wait for registration; and put the
 * old subscription back after a failure or a crash.
 *
 * One CpModem runs one operation (provision or restore) at a time; it has
 * ended when its callback runs, so the callback may start the next one
 * (or free the modem). Every operation is a GIO-style async call with a
 * GCancellable; errors are CP_ERROR with the 0x05xx codes of cp-error.h,
 * or G_IO_ERROR_CANCELLED when the card holds its old values after a
 * cancellation (before the first write, or after it once the rollback put
 * them back). The way back is never cut short by the cancellable: an
 * operation cancelled past its first write ends with what happened
 * (CP_ERR_ROLLBACK when the old values could not be put back).
 *
 * Crash safety. Provisioning first reads the card's current values (IMSI,
 * AD, SPN, USIM_AUTH_KEY) into a CpModemBackup and hands it to the
 * caller's backup callback *before anything is written*. The flow then
 * waits until the caller says the backup is durable, with
 * cp_modem_backup_saved(). A daemon that crashes after that point finds the
 * backup in its journal at the next start and calls cp_modem_restore_async().
 * A failure after the first write within the same run is rolled back by the
 * operation itself; the error then says what failed (the code of the
 * original failure), or CP_ERR_ROLLBACK if the rollback failed too.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#include "cp-glib.h"

G_BEGIN_DECLS

typedef enum {
	CP_MODEM_BACKEND_AUTO,   /* ModemManager if it runs and manages the device, else QMI */
	CP_MODEM_BACKEND_QMI,
	CP_MODEM_BACKEND_MM,
	CP_MODEM_BACKEND_AT,     /* the module's AT port (a tty), directly */
	CP_MODEM_BACKEND_MBIM,   /* MBIM through mbim-proxy */
} CpModemBackendType;

typedef enum {
	/* The backend resets the modem itself (DMS operating mode reset,
	 * or low-power then online) so that it re-reads the card. */
	CP_MODEM_RESET_AUTO,
	/* The backend does not reset: something else (the user, a power
	 * cycle, a watchdog) does, within the registration timeout. */
	CP_MODEM_RESET_USER,
} CpModemReset;

typedef struct {
	CpModemBackendType backend;
	const char *device;           /* control port, e.g. /dev/cdc-wdm0 */
	gboolean proxy;               /* open QMI through qmi-proxy */
	const char *proxy_path;       /* abstract socket name; NULL: libqmi's "qmi-proxy" */
	const char *card;             /* USIM driver name ("sysmo-isim-sja2", ...); NULL or "auto": detect */
	const CpSecret *adm1;         /* 8 ASCII digits; copied, never logged; NULL: probe only */
	guint registration_timeout;   /* seconds; 0: 120 */
	guint request_timeout;        /* seconds per modem request; 0: 10 */
	CpModemReset reset;
	/* A USB module re-enumerates after its reset (often under another
	 * cdc-wdm/ttyUSB name): seconds to wait for its port to come back on
	 * the same USB device and interface (0: 60), and where sysfs is
	 * (NULL: /sys; tests give a fake tree). */
	guint reenumerate_timeout;
	const char *sysfs;
} CpModemConfig;

typedef struct _CpModem CpModem;

/*
 * Checks the config (device set, ADM1 8 digits, known card driver) and
 * opens nothing yet: the port is opened by each operation and closed at
 * its end, so the daemon holds no port while idle.
 * CP_ERR_ARGUMENT, CP_ERR_ADM1 (not 8 digits), CP_ERR_CARD_UNKNOWN.
 */
CpModem *cp_modem_new(const CpModemConfig *config, GError **error);
void cp_modem_free(CpModem *modem);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpModem, cp_modem_free)

/* "qmi" or "mm": the modem driver of the last operation. AUTO decides at
 * the start of each operation; "auto" before the first. */
const char *cp_modem_get_backend_name(CpModem *modem);

/* Another backend type for the next operations (not while one runs).
 * CP_ERR_MODEM when this build does not have it. */
gboolean cp_modem_set_backend(CpModem *modem, CpModemBackendType type, GError **error);

/* USIM driver names this build knows, NULL-terminated. */
const char *const *cp_modem_card_drivers(void);

/*
 * What to put on the card and the modem. The strings and secrets are
 * copied by cp_modem_provision_async().
 */
typedef struct {
	const char *imsi;             /* 6-15 ASCII digits, starts with plmn */
	guint mnc_length;             /* 2 or 3 */
	const char *plmn;             /* expected registration: MCC+MNC, 5-6 digits */
	const char *network_name;     /* EF.SPN, UTF-8, 1-16 bytes (longer: CP_ERR_ARGUMENT) */
	const char *apn;              /* 1-100 ASCII bytes */
	const CpSecret *k;            /* K_usim, 16 bytes */
	const CpSecret *opc;          /* OPc, 16 bytes */
} CpModemTarget;

/* Checks a target without touching the modem: CP_ERR_ARGUMENT with a message. */
gboolean cp_modem_target_check(const CpModemTarget *target, GError **error);

typedef struct {
	char *registered_plmn;        /* MCC+MNC the modem registered on */
	char *operator_name;          /* as the network reports it; may be NULL */
	char *imsi;                   /* what the modem reports after the reset */
	char *iccid;                  /* card ICCID */
} CpModemResult;

void cp_modem_result_free(CpModemResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpModemResult, cp_modem_result_free)

/*
 * The old card values, as read before the first write. Holds old key
 * material (K, OPc): its memory is cleansed on free, and the GBytes from
 * cp_modem_backup_serialize() cleanse theirs when their last reference goes.
 * Persist the bytes only where the device key lives (mode 0600).
 */
typedef struct _CpModemBackup CpModemBackup;

void cp_modem_backup_free(CpModemBackup *backup);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpModemBackup, cp_modem_backup_free)

/* Stable binary form (versioned TLVs); parse checks everything. */
GBytes *cp_modem_backup_serialize(const CpModemBackup *backup);
/* CP_ERR_* of the TLV codec; CP_ERR_BAD_VALUE (ICCID not digits, text not
 * text), CP_ERR_LENGTH (a file of another size than the driver's),
 * CP_ERR_CARD_UNKNOWN */
CpModemBackup *cp_modem_backup_deserialize(GBytes *bytes, GError **error);

/* For the journal and logs (redact the IMSI and ICCID with cp_redact). */
const char *cp_modem_backup_get_card(const CpModemBackup *backup);     /* driver name */
const char *cp_modem_backup_get_iccid(const CpModemBackup *backup);    /* NULL if unknown */
const char *cp_modem_backup_get_imsi(const CpModemBackup *backup);     /* decoded old IMSI; NULL if EF.IMSI was empty */

/* Where an operation is: what a caller's state machine may act on. */
typedef enum {
	CP_MODEM_PHASE_PREPARING,     /* opening, reading the old values */
	CP_MODEM_PHASE_WRITING,       /* the USIM files and the APN */
	CP_MODEM_PHASE_RESETTING,     /* the modem re-reads the card */
	CP_MODEM_PHASE_REGISTERING,   /* waiting for the network, checking the IMSI */
	CP_MODEM_PHASE_RESTORING,     /* the rollback after a failure past the first write */
} CpModemPhase;

/* Progress of an operation: step n of n_steps (1-based), its phase, a
 * short description (for people: match on the phase, not the text). */
typedef void (*CpModemProgressFunc)(CpModem *modem, CpModemPhase phase, guint step, guint n_steps,
				    const char *description, gpointer user_data);

/*
 * Called once during provisioning, after the old values are read and
 * before the first write. The backup stays owned by the modem: take a
 * serialised copy. The flow waits until cp_modem_backup_saved() is called
 * (at once or later, from the main context): with NULL to go on, or with an
 * error (copied) to stop before anything is written; the operation then
 * fails with that error. The operation's cancellable (and the modem going
 * away) also ends the wait; a cp_modem_backup_saved() after that is ignored.
 */
typedef void (*CpModemBackupFunc)(CpModem *modem, const CpModemBackup *backup,
				  gpointer user_data);

void cp_modem_backup_saved(CpModem *modem, const GError *error);

/*
 * Provision target. progress and backup may be NULL (no backup callback:
 * the flow goes straight on). On success the card holds the target, the
 * APN is set, the modem is registered on target->plmn and reports
 * target->imsi.
 *
 * Errors: CP_ERR_ARGUMENT (target), CP_ERR_MODEM, CP_ERR_MODEM_TIMEOUT,
 * CP_ERR_MODEM_GONE, CP_ERR_CARD_ABSENT (also: no readable ICCID),
 * CP_ERR_CARD_UNKNOWN (before any
 * write), CP_ERR_ADM1 / CP_ERR_ADM1_BLOCKED (nothing written),
 * CP_ERR_APDU, CP_ERR_APN, CP_ERR_REG_DENIED, CP_ERR_REG_TIMEOUT,
 * CP_ERR_IMSI_MISMATCH (after those the old values are back), CP_ERR_ROLLBACK
 * (the old values could not be put back: the message says which step
 * failed first; the daemon keeps the backup and retries the restore).
 */
void cp_modem_provision_async(CpModem *modem, const CpModemTarget *target,
			      CpModemProgressFunc progress, CpModemBackupFunc backup,
			      gpointer user_data, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer callback_data);
CpModemResult *cp_modem_provision_finish(CpModem *modem, GAsyncResult *res, GError **error);

/*
 * Put the values of backup back on the card (after a crash), then reset
 * the modem so it uses them. Refuses a card whose ICCID differs from the
 * backup's (CP_ERR_ROLLBACK, nothing written). Restoring a card that
 * already holds the backup's values succeeds (idempotent).
 * cp_modem_backup_deserialize() accepts only what can be restored whole:
 * an ICCID, and each file of the size the card driver writes.
 */
void cp_modem_restore_async(CpModem *modem, const CpModemBackup *backup,
			    CpModemProgressFunc progress, gpointer user_data,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer callback_data);
gboolean cp_modem_restore_finish(CpModem *modem, GAsyncResult *res, GError **error);

/*
 * A probe: read-only, on the same driver table and card steps as a
 * provisioning, with no step that writes, resets or verifies ADM1 (the
 * counter comes from VERIFY without data, which spends nothing). A modem
 * without ADM1 configured (cp_modem_new with adm1 NULL) can only probe.
 */
#define CP_MODEM_PROBE_MAX_FILES 8

typedef struct {
	char *backend;                /* the driver that ran ("qmi", "mbim", "at", "mm") */
	char *error;                  /* what stopped the probe early; NULL: it ran to the end */
	gboolean logical_channel;     /* the modem opened one */
	char *channel_error;          /* why it did not (then the basic channel was tried) */
	gboolean imsi_by_modem;       /* the modem reported the IMSI itself */
	char *imsi_error;             /* why it did not */
	gboolean can_reset;           /* the driver resets the modem (not tried) */
	char *firmware;               /* the modem's firmware revision */
	char *firmware_error;         /* why there is none */
	char *atr;                    /* the card's ATR, hex */
	char *atr_error;              /* why there is none */
	char *iccid;
	char *usim_aid;               /* hex, from EF.DIR; NULL: none there */
	char *isim_aid;
	char *card;                   /* the card driver that knows the card; NULL: none */
	char *card_description;
	struct {
		const char *name;     /* EF.IMSI, ... */
		gsize size;           /* from the FCP: the whole file */
		gsize written;        /* what cellprov writes of it */
	} files[CP_MODEM_PROBE_MAX_FILES];
	guint n_files;
	gint adm1_left;               /* attempts left; -1: the card gives no counter */
	gboolean adm1_verified;       /* verified already (9000) */
} CpModemProbe;

void cp_modem_probe_free(CpModemProbe *probe);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpModemProbe, cp_modem_probe_free)

void cp_modem_probe_async(CpModem *modem, CpModemProgressFunc progress, gpointer user_data,
			  GCancellable *cancellable, GAsyncReadyCallback callback, gpointer callback_data);
/* The report, also when a step failed (then probe->error says which);
 * NULL with an error only when the probe could not start. */
CpModemProbe *cp_modem_probe_finish(CpModem *modem, GAsyncResult *res, GError **error);

G_END_DECLS
