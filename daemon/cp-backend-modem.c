/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The modem (modem/cp-modem.h, on its QMI or ModemManager driver) behind
 * cp-backend.h. */
#include "cp-backend.h"

#include <string.h>

#include "cp-conf.h"
#include "cp-glib.h"

#if CP_DAEMON_MODEM

#include "cp-modem.h"
#include "cp-modem-driver.h"

typedef struct {
	CpBackend parent;
	CpModem *modem;
} CpBackendModem;

static CpBackendPhase
phase_of(CpModemPhase phase)
{
	switch (phase) {
	case CP_MODEM_PHASE_PREPARING:
		return CP_PHASE_PREPARING;
	case CP_MODEM_PHASE_WRITING:
		return CP_PHASE_WRITING;
	case CP_MODEM_PHASE_RESETTING:
		return CP_PHASE_RESETTING;
	case CP_MODEM_PHASE_REGISTERING:
		return CP_PHASE_REGISTERING;
	case CP_MODEM_PHASE_RESTORING:
		break;
	}
	return CP_PHASE_RESTORING;
}

static void
on_progress(CpModem *modem, CpModemPhase phase, guint step, guint n_steps, const char *description,
	    gpointer user_data)
{
	CpBackendModem *bm = user_data;

	if (bm->parent.events.progress)
		bm->parent.events.progress(&bm->parent, phase_of(phase), step, n_steps,
					   description, bm->parent.user_data);
}

static void
on_backup(CpModem *modem, const CpModemBackup *backup, gpointer user_data)
{
	CpBackendModem *bm = user_data;
	g_autoptr(GBytes) bytes = cp_modem_backup_serialize(backup);

	if (bm->parent.events.backup)
		bm->parent.events.backup(&bm->parent, bytes, bm->parent.user_data);
	else
		cp_modem_backup_saved(modem, NULL);
}

static const char *
get_name(CpBackend *b)
{
	return cp_modem_get_backend_name(((CpBackendModem *)b)->modem);
}

static void
fill_target(const CpBackendTarget *t, CpModemTarget *mt)
{
	memset(mt, 0, sizeof(*mt));
	mt->imsi = t->imsi;
	mt->mnc_length = t->mnc_length;
	mt->plmn = t->plmn;
	mt->network_name = t->spn;
	mt->apn = t->apn;
	mt->k = t->k;
	mt->opc = t->opc;
}

static gboolean
check(CpBackend *b, const CpBackendTarget *t, GError **error)
{
	CpModemTarget mt;

	fill_target(t, &mt);
	return cp_modem_target_check(&mt, error);
}

static void
provision(CpBackend *b, const CpBackendTarget *t, GCancellable *cancellable,
	  GAsyncReadyCallback callback, gpointer data)
{
	CpBackendModem *bm = (CpBackendModem *)b;
	CpModemTarget mt;

	fill_target(t, &mt);
	cp_modem_provision_async(bm->modem, &mt, on_progress, on_backup, bm, cancellable,
				 callback, data);
}

static CpBackendResult *
provision_finish(CpBackend *b, GAsyncResult *res, GError **error)
{
	g_autoptr(CpModemResult) mr = cp_modem_provision_finish(((CpBackendModem *)b)->modem,
								res, error);
	CpBackendResult *r;

	if (!mr)
		return NULL;
	r = g_new0(CpBackendResult, 1);
	r->registered_plmn = g_strdup(mr->registered_plmn);
	r->operator_name = g_strdup(mr->operator_name);
	r->imsi = g_strdup(mr->imsi);
	return r;
}

static void
backup_saved(CpBackend *b, const GError *error)
{
	cp_modem_backup_saved(((CpBackendModem *)b)->modem, error);
}

static void
restore(CpBackend *b, GBytes *backup, GCancellable *cancellable,
	GAsyncReadyCallback callback, gpointer data)
{
	CpBackendModem *bm = (CpBackendModem *)b;
	g_autoptr(GError) error = NULL;
	g_autoptr(CpModemBackup) mb = cp_modem_backup_deserialize(backup, &error);

	if (!mb) {
		g_autoptr(GTask) task = g_task_new(b, cancellable, callback, data);

		g_task_return_new_error(task, CP_ERROR, CP_ERR_ROLLBACK,
					"the journaled backup is unusable: %s", error->message);
		return;
	}
	cp_modem_restore_async(bm->modem, mb, on_progress, bm, cancellable, callback, data);
}

static gboolean
restore_finish(CpBackend *b, GAsyncResult *res, GError **error)
{
	if (G_IS_TASK(res))
		return g_task_propagate_boolean(G_TASK(res), error);
	return cp_modem_restore_finish(((CpBackendModem *)b)->modem, res, error);
}

static void
free_modem(CpBackend *b)
{
	CpBackendModem *bm = (CpBackendModem *)b;

	cp_modem_free(bm->modem);
	g_free(bm);
}

static const CpBackendOps modem_ops = {
	.get_name = get_name,
	.check = check,
	.provision = provision,
	.provision_finish = provision_finish,
	.backup_saved = backup_saved,
	.restore = restore,
	.restore_finish = restore_finish,
	.free = free_modem,
};

CpBackend *
cp_backend_modem_new(const CpConf *conf, const CpSecret *adm1, const CpBackendEvents *events,
		     gpointer user_data, GError **error)
{
	CpModemConfig mc = { 0 };
	CpBackendModem *bm;
	CpModem *modem;

	switch (conf->backend) {
	case CP_BACKEND_QMI: mc.backend = CP_MODEM_BACKEND_QMI; break;
	case CP_BACKEND_MM: mc.backend = CP_MODEM_BACKEND_MM; break;
	case CP_BACKEND_AT: mc.backend = CP_MODEM_BACKEND_AT; break;
	case CP_BACKEND_MBIM: mc.backend = CP_MODEM_BACKEND_MBIM; break;
	default: mc.backend = CP_MODEM_BACKEND_AUTO; break;
	}
	mc.device = conf->modem_device;
	mc.proxy = conf->proxy;
	/* the bench puts its simulator behind another abstract socket */
	mc.proxy_path = g_getenv("CELLPROV_QMI_PROXY_PATH");
	mc.card = conf->card;
	mc.adm1 = adm1;
	mc.registration_timeout = conf->registration_timeout;
	mc.reset = conf->reset == CP_RESET_USER ? CP_MODEM_RESET_USER : CP_MODEM_RESET_AUTO;
	mc.reenumerate_timeout = conf->reenumerate_timeout;
	mc.sysfs = conf->sysfs;

	modem = cp_modem_new(&mc, error);
	if (!modem)
		return NULL;
	bm = g_new0(CpBackendModem, 1);
	bm->parent.ops = &modem_ops;
	bm->parent.events = *events;
	bm->parent.user_data = user_data;
	bm->modem = modem;
	return &bm->parent;
}

gboolean
cp_backend_modem_check(const CpConf *conf, char **names, GError **error)
{
	const char *want[5] = { NULL };
	guint n = 0;

	switch (conf->backend) {
	case CP_BACKEND_QMI: want[n++] = "qmi"; break;
	case CP_BACKEND_MM: want[n++] = "mm"; break;
	case CP_BACKEND_AT: want[n++] = "at"; break;
	case CP_BACKEND_MBIM: want[n++] = "mbim"; break;
	default:
		/* auto: whichever the port turns out to need */
		want[n++] = "qmi";
		want[n++] = "at";
		if (CP_HAVE_MBIM)
			want[n++] = "mbim";
		if (CP_HAVE_MM)
			want[n++] = "mm";
		break;
	}
	for (guint i = 0; i < n; i++)
		if (!cp_modem_module_get(want[i], error))
			return FALSE;
	*names = g_strjoinv(", ", (char **)want);
	return TRUE;
}

#else

gboolean
cp_backend_modem_check(const CpConf *conf, char **names, GError **error)
{
	cp_set_error(error, CP_ERR_MODEM, "this cellprovd was built without a modem backend (QMI)");
	return FALSE;
}

CpBackend *
cp_backend_modem_new(const CpConf *conf, const CpSecret *adm1, const CpBackendEvents *events,
		     gpointer user_data, GError **error)
{
	cp_set_error(error, CP_ERR_MODEM, "this cellprovd was built without a modem backend (QMI)");
	return NULL;
}

#endif
