/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the daemon needs from a modem backend, and nothing more: provision
 * a subscription (with a backup of the old values handed over before the
 * first write, and progress), and restore a backup after a crash. The QMI
 * and ModemManager backends of modem/ sit behind it (cp-backend-modem.c);
 * a software SIM could too.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#include "cp-secret.h"

typedef enum {
	CP_PHASE_PREPARING,             /* opening, reading the old values */
	CP_PHASE_WRITING,               /* USIM files and APN */
	CP_PHASE_RESETTING,             /* the modem re-reads the card */
	CP_PHASE_REGISTERING,           /* waiting for the network */
	CP_PHASE_RESTORING,             /* putting a backup back */
} CpBackendPhase;

typedef struct _CpBackend CpBackend;

typedef struct {
	void (*progress)(CpBackend *b, CpBackendPhase phase, guint step, guint n_steps,
			 const char *what, gpointer user_data);
	/* The old values, before the first write: make them durable, then
	 * call cp_backend_backup_saved(). */
	void (*backup)(CpBackend *b, GBytes *backup, gpointer user_data);
} CpBackendEvents;

typedef struct {
	const char *imsi;
	guint mnc_length;
	const char *plmn;
	const char *spn;                /* at most 16 bytes (EF.SPN) */
	const char *apn;
	const CpSecret *k;
	const CpSecret *opc;
} CpBackendTarget;

typedef struct {
	char *registered_plmn;
	char *operator_name;            /* may be NULL */
	char *imsi;
} CpBackendResult;

void cp_backend_result_free(CpBackendResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpBackendResult, cp_backend_result_free)

typedef struct {
	const char *(*get_name)(CpBackend *b);
	gboolean (*check)(CpBackend *b, const CpBackendTarget *t, GError **error);
	void (*provision)(CpBackend *b, const CpBackendTarget *t, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer data);
	CpBackendResult *(*provision_finish)(CpBackend *b, GAsyncResult *res, GError **error);
	void (*backup_saved)(CpBackend *b, const GError *error);
	void (*restore)(CpBackend *b, GBytes *backup, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer data);
	gboolean (*restore_finish)(CpBackend *b, GAsyncResult *res, GError **error);
	void (*free)(CpBackend *b);
} CpBackendOps;

struct _CpBackend {
	const CpBackendOps *ops;
	CpBackendEvents events;
	gpointer user_data;
};

static inline const char *
cp_backend_get_name(CpBackend *b)
{
	return b->ops->get_name(b);
}

static inline void
cp_backend_backup_saved(CpBackend *b, const GError *error)
{
	b->ops->backup_saved(b, error);
}

void cp_backend_free(CpBackend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpBackend, cp_backend_free)

const char *cp_backend_phase_name(CpBackendPhase p);

typedef struct _CpConf CpConf;

/* The modem/ backends (QMI, ModemManager); NULL with an error when this
 * build has none or the configuration does not fit. adm1 is copied. */
CpBackend *cp_backend_modem_new(const CpConf *conf, const CpSecret *adm1,
				const CpBackendEvents *events, gpointer user_data,
				GError **error);
/* Load the modules of the configured modem backend (AUTO: those of
 * ModemManager and QMI) as a provisioning would, touching no modem; their
 * names, comma-separated, in names. For --check-config. */
gboolean cp_backend_modem_check(const CpConf *conf, char **names, GError **error);
