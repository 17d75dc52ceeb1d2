/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "cellprov-modem"

#include "cp-config.h"
#include "cp-modem-driver.h"
#include "cp-modem-port.h"

#include <string.h>

#include "cp-buf.h"
#include "cp-tlv.h"

static const char *const driver_names[] = { "sysmo-isim-sja2", "sysmo-isim-sja5", NULL };

const char *const *
cp_modem_card_drivers(void)
{
	return driver_names;
}

static gboolean
all_digits(const char *s, gsize min, gsize max)
{
	gsize n = s ? strlen(s) : 0;

	if (n < min || n > max)
		return FALSE;
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isdigit(s[i]))
			return FALSE;
	return TRUE;
}

CpModem *
cp_modem_new(const CpModemConfig *config, GError **error)
{
	g_autoptr(CpModem) m = NULL;

	if (!config || !config->device || !*config->device) {
		cp_set_error(error, CP_ERR_ARGUMENT, "modem: no device configured");
		return NULL;
	}
	if (config->adm1 && config->adm1->len != 8) {
		cp_set_error(error, CP_ERR_ADM1, "modem: ADM1 must be 8 digits");
		return NULL;
	}
	for (gsize i = 0; config->adm1 && i < 8; i++) {
		if (!g_ascii_isdigit(config->adm1->data[i])) {
			cp_set_error(error, CP_ERR_ADM1, "modem: ADM1 must be 8 digits");
			return NULL;
		}
	}
	m = g_new0(CpModem, 1);
	if (config->card && *config->card && g_strcmp0(config->card, "auto") != 0) {
		m->card = cp_usim_driver_find(config->card);
		if (!m->card) {
			g_autofree char *known = g_strjoinv(", ", (char **)driver_names);

			cp_set_error(error, CP_ERR_CARD_UNKNOWN,
				     "modem: no USIM driver '%s' (known: %s)", config->card, known);
			return NULL;
		}
	}
	if (!cp_modem_set_backend(m, config->backend, error))
		return NULL;
	m->device = g_strdup(config->device);
	m->proxy = config->proxy;
	m->proxy_path = g_strdup(config->proxy_path);
	m->adm1 = config->adm1 ? cp_secret_dup(config->adm1) : NULL;
	m->registration_timeout = config->registration_timeout ? config->registration_timeout : 120;
	m->request_timeout = config->request_timeout ? config->request_timeout : 10;
	m->reset = config->reset;
	m->reenumerate_timeout = config->reenumerate_timeout ? config->reenumerate_timeout : 60;
	m->sysfs = g_strdup(config->sysfs ? config->sysfs : "/sys");
	return g_steal_pointer(&m);
}

void
cp_modem_free(CpModem *modem)
{
	if (!modem)
		return;
	g_free(modem->device);
	g_free(modem->proxy_path);
	g_free(modem->sysfs);
	cp_port_id_free(modem->port_id);
	cp_secret_free(modem->adm1);
	g_free(modem);
}

gboolean
cp_modem_set_backend(CpModem *modem, CpModemBackendType type, GError **error)
{
	if (modem->busy) {
		cp_set_error(error, CP_ERR_BUSY, "modem: an operation runs");
		return FALSE;
	}
	switch (type) {
	case CP_MODEM_BACKEND_AUTO:
	case CP_MODEM_BACKEND_QMI:
	case CP_MODEM_BACKEND_AT:
		break;
	case CP_MODEM_BACKEND_MM:
		if (!CP_HAVE_MM) {
			cp_set_error(error, CP_ERR_MODEM, "modem: the ModemManager backend is not in this build");
			return FALSE;
		}
		break;
	case CP_MODEM_BACKEND_MBIM:
		if (!CP_HAVE_MBIM) {
			cp_set_error(error, CP_ERR_MODEM, "modem: the MBIM backend is not in this build");
			return FALSE;
		}
		break;
	default:
		cp_set_error(error, CP_ERR_MODEM, "modem: unknown backend %d", (int)type);
		return FALSE;
	}
	/* the driver itself is loaded by the first operation (op_run) */
	modem->driver = NULL;
	modem->type = type;
	modem->resolved = NULL;
	return TRUE;
}

/* The driver of a backend type; NULL for AUTO (decided per operation). */
static const char *
type_name(CpModemBackendType type)
{
	switch (type) {
	case CP_MODEM_BACKEND_QMI: return "qmi";
	case CP_MODEM_BACKEND_MM: return "mm";
	case CP_MODEM_BACKEND_AT: return "at";
	case CP_MODEM_BACKEND_MBIM: return "mbim";
	case CP_MODEM_BACKEND_AUTO: break;
	}
	return NULL;
}

const char *
cp_modem_get_backend_name(CpModem *modem)
{
	if (modem->resolved)
		return modem->resolved->name;
	if (modem->driver)
		return modem->driver->name;
	return type_name(modem->type) ? type_name(modem->type) : "auto";
}

static const char *const phase_names[] = {
	"preparing", "writing", "resetting", "registering", "restoring",
};

void
cp_modem_step(CpModem *modem, CpModemPhase phase, guint n, guint n_steps, const char *what)
{
	g_info("(%u/%u) %s", n, n_steps, what);
	g_debug("phase: %s", phase_names[phase]);
	if (modem->progress)
		modem->progress(modem, phase, n, n_steps, what, modem->user_data);
}

/* ---- target ------------------------------------------------------------ */

gboolean
cp_modem_target_check(const CpModemTarget *t, GError **error)
{
	if (!t) {
		cp_set_error(error, CP_ERR_ARGUMENT, "no target");
		return FALSE;
	}
	if (!all_digits(t->plmn, 5, 6)) {
		cp_set_error(error, CP_ERR_ARGUMENT, "the PLMN must be 5 or 6 digits");
		return FALSE;
	}
	if (!all_digits(t->imsi, 6, 15) || !g_str_has_prefix(t->imsi, t->plmn)) {
		cp_set_error(error, CP_ERR_ARGUMENT, "the IMSI must be 6-15 digits starting with the PLMN");
		return FALSE;
	}
	if (t->mnc_length != 2 && t->mnc_length != 3) {
		cp_set_error(error, CP_ERR_ARGUMENT, "the MNC length must be 2 or 3");
		return FALSE;
	}
	if (strlen(t->plmn) != 3 + t->mnc_length) {
		cp_set_error(error, CP_ERR_ARGUMENT, "the PLMN does not have 3 + MNC length digits");
		return FALSE;
	}
	if (!t->network_name || !*t->network_name || strlen(t->network_name) > 64 ||
	    !g_utf8_validate(t->network_name, -1, NULL)) {
		cp_set_error(error, CP_ERR_ARGUMENT, "the network name must be 1-64 bytes of UTF-8");
		return FALSE;
	}
	if (!t->apn || !*t->apn || strlen(t->apn) > 100) {
		cp_set_error(error, CP_ERR_ARGUMENT, "the APN must be 1-100 characters");
		return FALSE;
	}
	for (const char *p = t->apn; *p; p++) {
		if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-') {
			cp_set_error(error, CP_ERR_ARGUMENT, "the APN may hold only letters, digits, '.' and '-'");
			return FALSE;
		}
	}
	if (!t->k || t->k->len != 16 || !t->opc || t->opc->len != 16) {
		cp_set_error(error, CP_ERR_ARGUMENT, "K and OPc must be 16 bytes each");
		return FALSE;
	}
	return TRUE;
}

static void
target_copy_free(gpointer data)
{
	CpModemTargetCopy *t = data;

	g_free(t->imsi);
	g_free(t->plmn);
	g_free(t->network_name);
	g_free(t->apn);
	cp_secret_free(t->k);
	cp_secret_free(t->opc);
	g_free(t);
}

void
cp_modem_result_free(CpModemResult *r)
{
	if (!r)
		return;
	g_free(r->registered_plmn);
	g_free(r->operator_name);
	g_free(r->imsi);
	g_free(r->iccid);
	g_free(r);
}

/* ---- operations -------------------------------------------------------- */

/*
 * A running operation's task completes through op_finished(), which ends
 * the operation before the caller's callback runs: the callback may start
 * the next one (a restore after CP_ERR_ROLLBACK) or free the modem.
 */
typedef struct {
	CpModem *modem;
	GAsyncReadyCallback callback;
	gpointer callback_data;
} OpCall;

static void
op_finished(GObject *source, GAsyncResult *res, gpointer data)
{
	OpCall *call = data;
	CpModem *modem = call->modem;

	modem->busy = FALSE;
	modem->progress = NULL;
	modem->backup = NULL;
	modem->user_data = NULL;
	/* a backup hand-over the operation did not live to see */
	modem->backup_saved = NULL;
	modem->backup_saved_data = NULL;
	if (call->callback)
		call->callback(NULL, res, call->callback_data);
	g_free(call);
}

/* The task of an operation that runs; NULL (after returning CP_ERR_BUSY on
 * a task of its own) while another one does. */
static GTask *
op_begin(CpModem *modem, gpointer source_tag, GCancellable *cancellable,
	 GAsyncReadyCallback callback, gpointer callback_data)
{
	OpCall *call;
	GTask *task;

	if (modem->busy) {
		g_autoptr(GTask) refused = g_task_new(NULL, cancellable, callback, callback_data);

		g_task_set_source_tag(refused, source_tag);
		g_task_return_new_error(refused, CP_ERROR, CP_ERR_BUSY,
					"the modem is busy with another operation");
		return NULL;
	}
	modem->busy = TRUE;
	call = g_new0(OpCall, 1);
	call->modem = modem;
	call->callback = callback;
	call->callback_data = callback_data;
	task = g_task_new(NULL, cancellable, op_finished, call);
	g_task_set_source_tag(task, source_tag);
	/* What the backend returns is the truth about the card: a cancelled
	 * operation that could not roll back must say CP_ERR_ROLLBACK, one
	 * that went on past the point of no return must say it succeeded. */
	g_task_set_check_cancellable(task, FALSE);
	return task;
}

static void
op_fail(GTask *task, GError *error)
{
	g_task_return_error(task, error);
	g_object_unref(task);
}

/* Run on the driver called name, loading its module first. */
static void
op_run_on(CpModem *modem, const char *name, GTask *task, CpModemTargetCopy *target,
	  const CpModemBackup *restore_of)
{
	GError *error = NULL;
	const CpModemModule *m = cp_modem_module_get(name, &error);

	if (!m) {
		op_fail(task, error);
		return;
	}
	modem->resolved = m->driver;
	cp_modem_flow_start(modem, m->driver, task, target, restore_of);
}

/*
 * AUTO without ModemManager (not running, or not managing this port):
 * the protocol the port's kernel view says (cp_port_id_protocol: the
 * driver of a cdc-wdm port, a wwan port's type, a tty), QMI when it says
 * nothing (a pty, a driver not known here).
 */
static const char *
direct_backend(CpModem *modem, const char *why)
{
	const char *protocol = modem->device ? cp_port_protocol(modem->sysfs, modem->device) : NULL;

	if (protocol)
		g_info("%s: modem backend %s, as the kernel presents %s", why, protocol, modem->device);
	else
		g_info("%s: modem backend qmi", why);
	return protocol ? protocol : "qmi";
}

typedef struct {
	CpModem *modem;
	GTask *task;
	CpModemTargetCopy *target;
	const CpModemBackup *restore_of;
	const CpModemModule *mm;
} AutoCall;

static void
auto_found_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	AutoCall *a = data;
	GError *error = NULL;
	gboolean mm = a->mm->find_modem_finish(res, NULL, &error);

	if (error) {
		op_fail(a->task, error);
	} else {
		/* not modem->driver: the next operation asks again */
		if (mm)
			g_info("modem backend: mm");
		op_run_on(a->modem, mm ? "mm" : direct_backend(a->modem, "ModemManager does not manage the modem"),
			  a->task, a->target, a->restore_of);
	}
	g_free(a);
}

static void
auto_ask_mm(AutoCall *a)
{
	GError *error = NULL;

	a->mm = cp_modem_module_get("mm", &error);
	if (!a->mm) {
		op_fail(a->task, error);
		g_free(a);
		return;
	}
	a->mm->find_modem_async(a->modem->device, a->modem->request_timeout * 3,
				g_task_get_cancellable(a->task), auto_found_cb, a);
}

/* Whether ModemManager runs, asked of the bus itself: the ModemManager
 * module (and its libraries) loads only when it does. */
static void
auto_owner_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	AutoCall *a = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &error);
	gboolean runs = FALSE;

	if (g_task_return_error_if_cancelled(a->task)) {
		g_object_unref(a->task);
		g_free(a);
		return;
	}
	if (!reply) {
		op_fail(a->task, g_error_new(CP_ERROR, CP_ERR_MODEM,
					     "modem: asking the bus whether ModemManager runs: %s",
					     error->message));
		g_free(a);
		return;
	}
	g_variant_get(reply, "(b)", &runs);
	if (runs) {
		auto_ask_mm(a);
		return;
	}
	op_run_on(a->modem, direct_backend(a->modem, "ModemManager is not running"), a->task, a->target,
		  a->restore_of);
	g_free(a);
}

static void
auto_bus_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	AutoCall *a = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) bus = g_bus_get_finish(res, &error);

	if (!bus && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		op_fail(a->task, g_steal_pointer(&error));
		g_free(a);
		return;
	}
	if (!bus) {
		/* no system bus: no ModemManager either */
		g_info("no system bus (%s)", error->message);
		op_run_on(a->modem, direct_backend(a->modem, "no ModemManager without a bus"), a->task,
			  a->target, a->restore_of);
		g_free(a);
		return;
	}
	g_dbus_connection_call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "NameHasOwner",
			       g_variant_new("(s)", "org.freedesktop.ModemManager1"), G_VARIANT_TYPE("(b)"),
			       G_DBUS_CALL_FLAGS_NONE, -1, g_task_get_cancellable(a->task),
			       auto_owner_cb, a);
}

/* AUTO: ModemManager when it runs and manages the device (the
 * ModemManager module asks it), the port's own protocol otherwise
 * (direct_backend). */
static void
op_run(CpModem *modem, GTask *task, CpModemTargetCopy *target, const CpModemBackup *restore_of)
{
	const char *name = type_name(modem->type);
	AutoCall *a;

	if (modem->driver) {
		/* a driver given by the program (tests) */
		modem->resolved = modem->driver;
		cp_modem_flow_start(modem, modem->driver, task, target, restore_of);
		return;
	}
	if (name) {
		op_run_on(modem, name, task, target, restore_of);
		return;
	}
	if (!CP_HAVE_MM) {
		op_run_on(modem, direct_backend(modem, "no ModemManager in this build"), task, target,
			  restore_of);
		return;
	}
	a = g_new0(AutoCall, 1);
	a->modem = modem;
	a->task = task;
	a->target = target;
	a->restore_of = restore_of;
	g_bus_get(G_BUS_TYPE_SYSTEM, g_task_get_cancellable(task), auto_bus_cb, a);
}

static void
return_early(gpointer source_tag, GCancellable *cancellable, GAsyncReadyCallback callback,
	     gpointer callback_data, GError *error)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, callback_data);

	g_task_set_source_tag(task, source_tag);
	g_task_return_error(task, error);
}

void
cp_modem_provision_async(CpModem *modem, const CpModemTarget *target,
			 CpModemProgressFunc progress, CpModemBackupFunc backup,
			 gpointer user_data, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer callback_data)
{
	GError *error = NULL;
	CpModemTargetCopy *t;
	GTask *task;

	if (!cp_modem_target_check(target, &error)) {
		return_early(cp_modem_provision_async, cancellable, callback, callback_data, error);
		return;
	}
	if (!modem->adm1) {
		return_early(cp_modem_provision_async, cancellable, callback, callback_data,
			     g_error_new(CP_ERROR, CP_ERR_ADM1, "no ADM1 configured: the modem can only be probed"));
		return;
	}
	task = op_begin(modem, cp_modem_provision_async, cancellable, callback, callback_data);
	if (!task)
		return;
	modem->progress = progress;
	modem->backup = backup;
	modem->user_data = user_data;
	t = g_new0(CpModemTargetCopy, 1);
	t->imsi = g_strdup(target->imsi);
	t->mnc_length = target->mnc_length;
	t->plmn = g_strdup(target->plmn);
	t->network_name = g_strdup(target->network_name);
	t->apn = g_strdup(target->apn);
	t->k = cp_secret_dup(target->k);
	t->opc = cp_secret_dup(target->opc);
	g_task_set_task_data(task, t, target_copy_free);
	op_run(modem, task, t, NULL);
}

CpModemResult *
cp_modem_provision_finish(CpModem *modem, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

void
cp_modem_restore_async(CpModem *modem, const CpModemBackup *backup,
		       CpModemProgressFunc progress, gpointer user_data,
		       GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer callback_data)
{
	g_autoptr(GBytes) bytes = NULL;
	CpModemBackup *copy;
	GError *error = NULL;
	GTask *task;

	if (!backup) {
		return_early(cp_modem_restore_async, cancellable, callback, callback_data,
			     g_error_new(CP_ERROR, CP_ERR_ARGUMENT, "no backup"));
		return;
	}
	if (!modem->adm1) {
		return_early(cp_modem_restore_async, cancellable, callback, callback_data,
			     g_error_new(CP_ERROR, CP_ERR_ADM1, "no ADM1 configured: the modem can only be probed"));
		return;
	}
	/* our own copy: the caller may free theirs once the call returns */
	bytes = cp_modem_backup_serialize(backup);
	copy = bytes ? cp_modem_backup_deserialize(bytes, &error) : NULL;
	if (!copy) {
		if (!error)
			error = g_error_new(CP_ERROR, CP_ERR_ARGUMENT, "invalid backup");
		return_early(cp_modem_restore_async, cancellable, callback, callback_data, error);
		return;
	}
	task = op_begin(modem, cp_modem_restore_async, cancellable, callback, callback_data);
	if (!task) {
		cp_modem_backup_free(copy);
		return;
	}
	modem->progress = progress;
	modem->user_data = user_data;
	g_task_set_task_data(task, copy, (GDestroyNotify)cp_modem_backup_free);
	op_run(modem, task, NULL, copy);
}

gboolean
cp_modem_restore_finish(CpModem *modem, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
cp_modem_probe_free(CpModemProbe *p)
{
	if (!p)
		return;
	g_free(p->backend);
	g_free(p->error);
	g_free(p->channel_error);
	g_free(p->imsi_error);
	g_free(p->firmware);
	g_free(p->firmware_error);
	g_free(p->atr);
	g_free(p->atr_error);
	g_free(p->iccid);
	g_free(p->usim_aid);
	g_free(p->isim_aid);
	g_free(p->card);
	g_free(p->card_description);
	g_free(p);
}

void
cp_modem_probe_async(CpModem *modem, CpModemProgressFunc progress, gpointer user_data,
		     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer callback_data)
{
	GTask *task = op_begin(modem, cp_modem_probe_async, cancellable, callback, callback_data);

	if (!task)
		return;
	modem->progress = progress;
	modem->user_data = user_data;
	/* no target, no backup: the runner takes it for a probe */
	op_run(modem, task, NULL, NULL);
}

CpModemProbe *
cp_modem_probe_finish(CpModem *modem, GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}

void
cp_modem_backup_saved(CpModem *modem, const GError *error)
{
	void (*cb)(gpointer, const GError *) = modem->backup_saved;

	/* Late (the operation was cancelled or the modem went away while the
	 * journal was written): nothing waits any more. */
	if (!cb) {
		g_debug("backup saved, but no operation waits for it");
		return;
	}
	modem->backup_saved = NULL;
	cb(modem->backup_saved_data, error);
}

/* ---- backup ------------------------------------------------------------ */

enum {
	TAG_VERSION = 0x01,
	TAG_CARD = 0x02,
	TAG_ICCID = 0x03,
	TAG_EF_FIRST = 0x10,   /* 0x10 + CpUsimEf; the key copies (0x14, 0x15) from version 2 */
	TAG_PROFILE = 0x20,
	TAG_APN = 0x21,
};

CpModemBackup *
cp_modem_backup_new(void)
{
	return g_new0(CpModemBackup, 1);
}

void
cp_modem_backup_free(CpModemBackup *b)
{
	if (!b)
		return;
	g_free(b->card);
	g_free(b->iccid);
	g_free(b->imsi);
	g_free(b->apn);
	cp_cleanse(b, sizeof(*b));
	g_free(b);
}

const char *
cp_modem_backup_get_card(const CpModemBackup *b)
{
	return b->card;
}

const char *
cp_modem_backup_get_iccid(const CpModemBackup *b)
{
	return b->iccid;
}

const char *
cp_modem_backup_get_imsi(const CpModemBackup *b)
{
	return b->imsi;
}

typedef struct {
	gsize len;
	guint8 data[];
} SecretBlock;

static void
secret_block_free(gpointer p)
{
	SecretBlock *s = p;

	cp_cleanse(s->data, s->len);
	g_free(s);
}

GBytes *
cp_modem_backup_serialize(const CpModemBackup *b)
{
	cp_auto_buf buf = CP_BUF_INIT;
	SecretBlock *s;
	guint8 version = 2;

	cp_tlv_put(&buf, TAG_VERSION, &version, 1);
	cp_tlv_put(&buf, TAG_CARD, b->card, strlen(b->card));
	if (b->iccid)
		cp_tlv_put(&buf, TAG_ICCID, b->iccid, strlen(b->iccid));
	for (guint i = 0; i < CP_USIM_N_EF; i++)
		if (b->ef_len[i])
			cp_tlv_put(&buf, (guint8)(TAG_EF_FIRST + i), b->ef[i], b->ef_len[i]);
	if (b->have_apn) {
		cp_tlv_put(&buf, TAG_PROFILE, &b->profile_index, 1);
		cp_tlv_put(&buf, TAG_APN, b->apn, strlen(b->apn));
	}
	if (buf.failed)
		return NULL;
	s = g_malloc(sizeof(*s) + buf.len);
	s->len = buf.len;
	memcpy(s->data, buf.data, buf.len);
	return g_bytes_new_with_free_func(s->data, s->len, secret_block_free, s);
}

static char *
text_field(const CpTlvValue *v)
{
	if (!v->value)
		return NULL;
	return g_strndup((const char *)v->value, v->len);
}

/*
 * Version 1 (the releases before the key copies) holds ADF.USIM's four
 * files; version 2 adds the other copies of the key (the 2G key file and
 * ADF.ISIM's), each present when the card had it. A journal of either
 * version restores: a version 1 backup leaves the copies it never held
 * (and its provisioning never wrote) as they are.
 */
CpModemBackup *
cp_modem_backup_deserialize(GBytes *bytes, GError **error)
{
	enum {
		F_VERSION,
		F_CARD,
		F_ICCID,
		F_EF,                                  /* + CpUsimEf */
		F_PROFILE = F_EF + CP_USIM_N_EF,
		F_APN,
	};
	static const CpTlvField fields[] = {
		{ TAG_VERSION, 1, 1, true, false },
		{ TAG_CARD, 1, 64, true, false },
		/* a restore checks the card against it: no backup without one */
		{ TAG_ICCID, 1, 22, true, false },
		{ TAG_EF_FIRST + CP_USIM_EF_IMSI, 1, CP_USIM_EF_MAX, true, false },
		{ TAG_EF_FIRST + CP_USIM_EF_AD, 1, CP_USIM_EF_MAX, true, false },
		{ TAG_EF_FIRST + CP_USIM_EF_SPN, 1, CP_USIM_EF_MAX, true, false },
		{ TAG_EF_FIRST + CP_USIM_EF_AUTH_KEY, 1, CP_USIM_EF_MAX, true, false },
		{ TAG_EF_FIRST + CP_USIM_EF_AUTH_KEY_2G, 1, CP_USIM_EF_MAX, false, false },
		{ TAG_EF_FIRST + CP_USIM_EF_ISIM_AUTH_KEY, 1, CP_USIM_EF_MAX, false, false },
		{ TAG_PROFILE, 1, 1, false, false },
		{ TAG_APN, 0, 100, false, false },
	};
	CpTlvValue v[G_N_ELEMENTS(fields)] = { 0 };
	g_autoptr(CpModemBackup) b = NULL;
	const CpUsimDriver *driver;
	gsize len = 0;
	const guint8 *data = bytes ? g_bytes_get_data(bytes, &len) : NULL;
	guint version;
	CpError e;

	G_STATIC_ASSERT(G_N_ELEMENTS(fields) == F_APN + 1);
	if (!data || !len) {
		cp_set_error(error, CP_ERR_TRUNCATED, "modem backup: empty");
		return NULL;
	}
	e = cp_tlv_decode(data, len, fields, G_N_ELEMENTS(fields), v, NULL, NULL);
	if (e != CP_OK) {
		cp_set_error(error, e, "modem backup: %s", cp_error_message(e));
		return NULL;
	}
	version = v[F_VERSION].value[0];
	if (version != 1 && version != 2) {
		cp_set_error(error, CP_ERR_VERSION, "modem backup: version %u is neither 1 nor 2", version);
		return NULL;
	}
	if (version == 1 && (v[F_EF + CP_USIM_EF_AUTH_KEY_2G].value || v[F_EF + CP_USIM_EF_ISIM_AUTH_KEY].value)) {
		cp_set_error(error, CP_ERR_UNKNOWN_TAG, "modem backup: version 1 holds no other key copies");
		return NULL;
	}
	if (!!v[F_PROFILE].value != !!v[F_APN].value) {
		cp_set_error(error, CP_ERR_MISSING_FIELD, "modem backup: profile and APN go together");
		return NULL;
	}
	if (!cp_is_printable_ascii(v[F_CARD].value, v[F_CARD].len)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "modem backup: the card driver name is not text");
		return NULL;
	}
	if (!cp_is_digits(v[F_ICCID].value, v[F_ICCID].len)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "modem backup: the ICCID is not digits");
		return NULL;
	}
	if (v[F_APN].value && v[F_APN].len && !cp_is_printable_ascii(v[F_APN].value, v[F_APN].len)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "modem backup: the APN is not printable ASCII");
		return NULL;
	}
	b = cp_modem_backup_new();
	b->card = text_field(&v[F_CARD]);
	driver = cp_usim_driver_find(b->card);
	if (!driver) {
		cp_set_error(error, CP_ERR_CARD_UNKNOWN, "modem backup: no USIM driver '%s'", b->card);
		return NULL;
	}
	/* A restore writes every file whole: a size the card's files do not
	 * have would fail half-way, after the files before it were written.
	 * A copy the backup does not hold is not written. */
	for (guint i = 0; i < CP_USIM_N_EF; i++) {
		const CpTlvValue *ef = &v[F_EF + i];

		if (!ef->value)
			continue;
		if (ef->len != driver->size[i]) {
			cp_set_error(error, CP_ERR_LENGTH, "modem backup: %s is %u bytes, %s has %" G_GSIZE_FORMAT,
				     cp_usim_ef_name(i), (guint)ef->len, driver->name, driver->size[i]);
			return NULL;
		}
		memcpy(b->ef[i], ef->value, ef->len);
		b->ef_len[i] = ef->len;
	}
	b->iccid = text_field(&v[F_ICCID]);
	b->imsi = cp_usim_imsi_decode(b->ef[CP_USIM_EF_IMSI], b->ef_len[CP_USIM_EF_IMSI]);
	if (v[F_PROFILE].value) {
		b->have_apn = TRUE;
		b->profile_index = v[F_PROFILE].value[0];
		b->apn = v[F_APN].len ? text_field(&v[F_APN]) : g_strdup("");
	}
	return g_steal_pointer(&b);
}
