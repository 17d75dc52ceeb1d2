/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One provisioning against cp-qmi-sim with its delays at zero: QMI
 * messages and APDUs (counted by the simulator), and this process's CPU
 * time (the backend and libqmi), averaged over N runs.
 *   bench-qmi-provision SIM [N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "cp-modem.h"

static GMainLoop *loop;
static GError *failure;

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
done_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	CpModemResult *r = cp_modem_provision_finish(NULL, res, &failure);

	cp_modem_result_free(r);
	g_main_loop_quit(loop);
}

static guint
dump_value(const char *path, const char *key)
{
	g_autofree char *text = NULL;
	g_autofree char *needle = g_strdup_printf("\n%s=", key);
	char *p;

	if (!g_file_get_contents(path, &text, NULL, NULL) || !(p = strstr(text, needle)))
		return 0;
	return (guint)atoi(p + strlen(needle));
}

int
main(int argc, char **argv)
{
	const char *sim = argc > 1 ? argv[1] : "tests/sim/qmi/cp-qmi-sim";
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	double cpu = 0, wall = 0;
	guint msgs = 0, apdus = 0;

	if (runs < 1) {
		fprintf(stderr, "usage: bench-qmi-provision SIM [RUNS >= 1]\n");
		return 2;
	}
	loop = g_main_loop_new(NULL, FALSE);
	for (int i = 0; i < runs; i++) {
		g_autofree char *dir = g_dir_make_tmp("cp-bench-qmi-XXXXXX", NULL);
		g_autofree char *pty = g_build_filename(dir, "pty", NULL);
		g_autofree char *dump = g_build_filename(dir, "dump", NULL);
		g_autofree char *subs = g_build_filename(dir, "subs", NULL);
		char *sim_argv[] = { (char *)sim, "--pty", pty, "--dump", dump, "--subscribers", subs,
				     "--reset-delay=0", "--registration-delay=0", NULL };
		g_autoptr(CpSecret) adm1 = cp_secret_new_from((const uint8_t *)"12345678", 8);
		g_autoptr(CpSecret) k = cp_secret_new_from_hex("465b5ce8b199b49faa5f0a2ee238a6bc", 16);
		g_autoptr(CpSecret) opc = cp_secret_new_from_hex("cd63cb71954a9f4e48a5994e37a02baf", 16);
		CpModemConfig cfg = { .backend = CP_MODEM_BACKEND_QMI, .device = pty, .card = "sysmo-isim-sja2",
				      .adm1 = adm1, .registration_timeout = 10 };
		CpModemTarget t = { .imsi = "001010000000001", .mnc_length = 2, .plmn = "00101",
				    .network_name = "cellprov test network", .apn = "iot.cellprov",
				    .k = k, .opc = opc };
		g_autoptr(CpModem) m = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree char *line = NULL;
		GIOChannel *ch;
		GPid pid;
		int out;
		double c0, c1;
		gint64 w0, w1;

		g_file_set_contents(subs, "001010000000001 465b5ce8b199b49faa5f0a2ee238a6bc "
				    "cd63cb71954a9f4e48a5994e37a02baf 000000000020\n", -1, NULL);
		if (!g_spawn_async_with_pipes(NULL, sim_argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
					      G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid, NULL, &out, NULL, &error)) {
			fprintf(stderr, "bench-qmi-provision: %s\n", error->message);
			return 1;
		}
		ch = g_io_channel_unix_new(out);
		g_io_channel_read_line(ch, &line, NULL, NULL, NULL);
		g_io_channel_unref(ch);
		close(out);
		m = cp_modem_new(&cfg, &error);
		g_assert_no_error(error);

		c0 = cpu_seconds();
		w0 = g_get_monotonic_time();
		cp_modem_provision_async(m, &t, NULL, NULL, NULL, NULL, done_cb, NULL);
		g_main_loop_run(loop);
		w1 = g_get_monotonic_time();
		c1 = cpu_seconds();
		if (failure) {
			fprintf(stderr, "bench-qmi-provision: %s\n", failure->message);
			return 1;
		}
		cpu += c1 - c0;
		wall += (double)(w1 - w0) / 1e6;
		msgs += dump_value(dump, "qmi-requests");
		apdus += dump_value(dump, "apdus");
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		g_unlink(dump);
		g_unlink(subs);
		g_rmdir(dir);
	}
	printf("qmi provisioning over %d runs (simulator delays 0):\n", runs);
	printf("  QMI requests per provisioning: %.1f\n", (double)msgs / runs);
	printf("  APDUs per provisioning:        %.1f\n", (double)apdus / runs);
	printf("  host CPU per provisioning:     %.2f ms (backend + libqmi)\n", cpu / runs * 1e3);
	printf("  wall time per provisioning:    %.2f ms\n", wall / runs * 1e3);
	return 0;
}
