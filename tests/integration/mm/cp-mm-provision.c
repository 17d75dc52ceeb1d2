/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-mm-provision: one provisioning (or restore) through the modem API,
 * with the backend of the command line, as the daemon would run it. The
 * ModemManager tests drive the backend through it; it prints each step
 * and the result as key=value lines.
 *
 *   cp-mm-provision --device /dev/cdc-wdm0 --backend mm --adm1 FILE \
 *       --imsi DIGITS --plmn MCCMNC --network-name NAME --apn APN \
 *       --k HEX --opc HEX [--backup-out FILE] [--hang-at-backup]
 *   cp-mm-provision --device /dev/cdc-wdm0 --backend mm --adm1 FILE --restore FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <gio/gio.h>

#include "cp-glib.h"
#include "cp-modem.h"
#include "cp-modem.h"

static struct {
	char *device, *backend, *adm1_path, *card;
	char *imsi, *plmn, *network_name, *apn, *k_hex, *opc_hex;
	char *backup_out, *restore;
	int mnc_length, registration_timeout;
	gboolean hang_at_backup;
} opt = { .mnc_length = 2, .registration_timeout = 30 };

static GMainLoop *loop;
static int status = 1;

static void
progress_cb(CpModem *modem, CpModemPhase phase, guint step, guint n_steps, const char *what, gpointer data)
{
	printf("step %u/%u: %s\n", step, n_steps, what);
	fflush(stdout);
}

static void
backup_cb(CpModem *modem, const CpModemBackup *backup, gpointer data)
{
	g_autoptr(GBytes) bytes = cp_modem_backup_serialize(backup);
	g_autoptr(GError) error = NULL;

	if (opt.backup_out && !cp_file_replace(opt.backup_out, g_bytes_get_data(bytes, NULL),
					       g_bytes_get_size(bytes), 0600, &error)) {
		cp_modem_backup_saved(modem, error);
		return;
	}
	printf("backup saved\n");
	fflush(stdout);
	/* the daemon's journal write that never finishes: the test kills us here */
	if (opt.hang_at_backup)
		return;
	cp_modem_backup_saved(modem, NULL);
}

static void
report_error(const GError *error)
{
	if (error->domain == CP_ERROR)
		printf("error=%s\n", cp_error_name((CpError)error->code));
	else
		printf("error=%s:%d\n", g_quark_to_string(error->domain), error->code);
	printf("message=%s\n", error->message);
}

static void
provision_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModem *modem = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(CpModemResult) r = cp_modem_provision_finish(modem, res, &error);

	printf("backend=%s\n", cp_modem_get_backend_name(modem));
	if (!r) {
		report_error(error);
	} else {
		printf("registered-plmn=%s\n", r->registered_plmn ? r->registered_plmn : "");
		printf("operator-name=%s\n", r->operator_name ? r->operator_name : "");
		printf("imsi=%s\n", r->imsi ? r->imsi : "");
		printf("iccid=%s\n", r->iccid ? r->iccid : "");
		status = 0;
	}
	g_main_loop_quit(loop);
}

static void
restore_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModem *modem = data;
	g_autoptr(GError) error = NULL;

	printf("backend=%s\n", cp_modem_get_backend_name(modem));
	if (!cp_modem_restore_finish(modem, res, &error)) {
		report_error(error);
	} else {
		printf("restored=yes\n");
		status = 0;
	}
	g_main_loop_quit(loop);
}

static CpModemBackendType
backend_type(const char *name)
{
	if (!name || g_str_equal(name, "auto"))
		return CP_MODEM_BACKEND_AUTO;
	if (g_str_equal(name, "mm"))
		return CP_MODEM_BACKEND_MM;
	if (g_str_equal(name, "qmi"))
		return CP_MODEM_BACKEND_QMI;
	fprintf(stderr, "cp-mm-provision: --backend auto, qmi or mm\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	GOptionEntry entries[] = {
		{ "device", 0, 0, G_OPTION_ARG_FILENAME, &opt.device, "Control port (or IMEI)", "PATH" },
		{ "backend", 0, 0, G_OPTION_ARG_STRING, &opt.backend, "auto, qmi or mm", "NAME" },
		{ "adm1", 0, 0, G_OPTION_ARG_FILENAME, &opt.adm1_path, "ADM1 file (0600)", "FILE" },
		{ "card", 0, 0, G_OPTION_ARG_STRING, &opt.card, "USIM driver", "NAME" },
		{ "imsi", 0, 0, G_OPTION_ARG_STRING, &opt.imsi, "New IMSI", "DIGITS" },
		{ "mnc-length", 0, 0, G_OPTION_ARG_INT, &opt.mnc_length, "MNC length (2)", "N" },
		{ "plmn", 0, 0, G_OPTION_ARG_STRING, &opt.plmn, "Expected PLMN", "MCCMNC" },
		{ "network-name", 0, 0, G_OPTION_ARG_STRING, &opt.network_name, "SPN", "NAME" },
		{ "apn", 0, 0, G_OPTION_ARG_STRING, &opt.apn, "APN", "APN" },
		{ "k", 0, 0, G_OPTION_ARG_STRING, &opt.k_hex, "K_usim (32 hex)", "HEX" },
		{ "opc", 0, 0, G_OPTION_ARG_STRING, &opt.opc_hex, "OPc (32 hex)", "HEX" },
		{ "registration-timeout", 0, 0, G_OPTION_ARG_INT, &opt.registration_timeout, "Seconds (30)", "S" },
		{ "backup-out", 0, 0, G_OPTION_ARG_FILENAME, &opt.backup_out, "Write the backup here", "FILE" },
		{ "hang-at-backup", 0, 0, G_OPTION_ARG_NONE, &opt.hang_at_backup, "Never confirm the backup", NULL },
		{ "restore", 0, 0, G_OPTION_ARG_FILENAME, &opt.restore, "Restore this backup instead", "FILE" },
		G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- provision a modem through the modem API");
	g_autoptr(GError) error = NULL;
	g_autoptr(CpSecret) adm1 = NULL, k = NULL, opc = NULL;
	g_autoptr(CpModem) modem = NULL;
	CpModemBackendType type;
	CpModemConfig config = { 0 };

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		fprintf(stderr, "cp-mm-provision: %s\n", error->message);
		return 2;
	}
	if (!opt.device || !opt.adm1_path) {
		fprintf(stderr, "cp-mm-provision: --device and --adm1 are needed\n");
		return 2;
	}
	adm1 = cp_secret_load(opt.adm1_path, FALSE, 8, &error);
	if (!adm1) {
		fprintf(stderr, "cp-mm-provision: %s\n", error->message);
		return 2;
	}
	type = backend_type(opt.backend);
	config.backend = CP_MODEM_BACKEND_QMI;
	config.device = opt.device;
	config.proxy = TRUE;
	config.card = opt.card;
	config.adm1 = adm1;
	config.registration_timeout = (guint)opt.registration_timeout;
	config.reset = CP_MODEM_RESET_AUTO;
	modem = cp_modem_new(&config, &error);
	/* cp-modem.c may not dispatch to the ModemManager backends yet */
	if (modem && type != CP_MODEM_BACKEND_QMI && !cp_modem_set_backend(modem, type, &error))
		g_clear_pointer(&modem, cp_modem_free);
	if (!modem) {
		report_error(error);
		return 1;
	}
	loop = g_main_loop_new(NULL, FALSE);
	if (opt.restore) {
		g_autofree char *data = NULL;
		gsize len = 0;
		g_autoptr(GBytes) bytes = NULL;
		g_autoptr(CpModemBackup) backup = NULL;

		if (!g_file_get_contents(opt.restore, &data, &len, &error)) {
			fprintf(stderr, "cp-mm-provision: %s\n", error->message);
			return 2;
		}
		bytes = g_bytes_new(data, len);
		backup = cp_modem_backup_deserialize(bytes, &error);
		if (!backup) {
			report_error(error);
			return 1;
		}
		cp_modem_restore_async(modem, backup, progress_cb, NULL, NULL, restore_cb, modem);
	} else {
		CpModemTarget target = {
			.imsi = opt.imsi,
			.mnc_length = (guint)opt.mnc_length,
			.plmn = opt.plmn,
			.network_name = opt.network_name,
			.apn = opt.apn,
		};

		k = opt.k_hex ? cp_secret_new_from_hex(opt.k_hex, 16) : NULL;
		opc = opt.opc_hex ? cp_secret_new_from_hex(opt.opc_hex, 16) : NULL;
		target.k = k;
		target.opc = opc;
		cp_modem_provision_async(modem, &target, progress_cb, backup_cb, NULL, NULL,
					 provision_cb, modem);
	}
	g_main_loop_run(loop);
	g_main_loop_unref(loop);
	return status;
}
