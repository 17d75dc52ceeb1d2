/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One provisioning per modem backend against its simulator, delays at
 * zero: the messages the backend sent to the modem (QMI requests, AT
 * command lines, MBIM requests) and the APDUs that reached the card, both
 * counted by the simulator, printed beside the fewest APDUs the card
 * needs; and this process's CPU time (the engine, the driver, libqmi or
 * libmbim), averaged over RUNS runs.
 *   bench-modem-provision [RUNS] KIND=SIM...   (KIND: qmi, at, mbim)
 * MBIM goes through a mbim-proxy of the bench's own, in a network
 * namespace of its own (root): CP_MBIM_PROXY, else /usr/libexec/mbim-proxy.
 */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

#include "cp-modem.h"
#include "cp-usim.h"

typedef struct {
	const char *kind;
	CpModemBackendType backend;
	const char *messages_key;        /* the simulator's dump */
	const char *messages_name;
} Kind;

static const Kind kinds[] = {
	{ "qmi", CP_MODEM_BACKEND_QMI, "qmi-requests", "QMI requests" },
	{ "at", CP_MODEM_BACKEND_AT, "at-commands", "AT command lines" },
	{ "mbim", CP_MODEM_BACKEND_MBIM, "mbim-requests", "MBIM requests" },
};

static GMainLoop *loop;
static GError *failure;
static GPid proxy_pid;

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

/* The bench's own @mbim-proxy, up within 5 s. */
static gboolean
start_proxy(void)
{
	const char *path = g_getenv("CP_MBIM_PROXY") ? g_getenv("CP_MBIM_PROXY") : "/usr/libexec/mbim-proxy";
	const char *argv[] = { path, "--no-exit", NULL };

	if (proxy_pid)
		return TRUE;
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "bench-modem-provision: mbim needs a network namespace of its own (root)\n");
		return FALSE;
	}
	if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL,
			   NULL, NULL, &proxy_pid, NULL)) {
		fprintf(stderr, "bench-modem-provision: cannot start %s\n", path);
		return FALSE;
	}
	for (guint i = 0; i < 500; i++) {
		g_autoptr(GSocketAddress) a = g_unix_socket_address_new_with_type("mbim-proxy", -1,
										  G_UNIX_SOCKET_ADDRESS_ABSTRACT);
		g_autoptr(GSocket) s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
						    G_SOCKET_PROTOCOL_DEFAULT, NULL);

		if (s && g_socket_connect(s, a, NULL, NULL))
			return TRUE;
		g_usleep(10000);
	}
	fprintf(stderr, "bench-modem-provision: mbim-proxy did not come up\n");
	return FALSE;
}

/* One provisioning; FALSE on failure. */
static gboolean
provision_once(const Kind *k, const char *sim, double *cpu, double *wall, guint *msgs, guint *apdus)
{
	g_autofree char *dir = g_dir_make_tmp("cp-bench-modem-XXXXXX", NULL);
	g_autofree char *pty = g_build_filename(dir, "pty", NULL);
	g_autofree char *dump = g_build_filename(dir, "dump", NULL);
	g_autofree char *subs = g_build_filename(dir, "subs", NULL);
	char *sim_argv[] = { (char *)sim, "--pty", pty, "--dump", dump, "--subscribers", subs,
			     "--reset-delay=0", "--registration-delay=0", NULL };
	g_autoptr(CpSecret) adm1 = cp_secret_new_from((const uint8_t *)"12345678", 8);
	g_autoptr(CpSecret) key = cp_secret_new_from_hex("465b5ce8b199b49faa5f0a2ee238a6bc", 16);
	g_autoptr(CpSecret) opc = cp_secret_new_from_hex("cd63cb71954a9f4e48a5994e37a02baf", 16);
	CpModemConfig cfg = { .backend = k->backend, .device = pty, .card = "sysmo-isim-sja2",
			      .adm1 = adm1, .registration_timeout = 10 };
	CpModemTarget t = { .imsi = "001010000000001", .mnc_length = 2, .plmn = "00101",
			    .network_name = "cellprov test network", .apn = "iot.cellprov",
			    .k = key, .opc = opc };
	g_autoptr(CpModem) m = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *line = NULL;
	GIOChannel *ch;
	GPid pid;
	int out;
	double c0;
	gint64 w0;

	g_file_set_contents(subs, "001010000000001 465b5ce8b199b49faa5f0a2ee238a6bc "
			    "cd63cb71954a9f4e48a5994e37a02baf 000000000020\n", -1, NULL);
	if (!g_spawn_async_with_pipes(NULL, sim_argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
				      G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid, NULL, &out, NULL, &error)) {
		fprintf(stderr, "bench-modem-provision: %s\n", error->message);
		return FALSE;
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
	*wall += (double)(g_get_monotonic_time() - w0) / 1e6;
	*cpu += cpu_seconds() - c0;
	*msgs += dump_value(dump, k->messages_key);
	*apdus += dump_value(dump, "apdus");
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	g_unlink(dump);
	g_unlink(subs);
	g_rmdir(dir);
	if (failure) {
		fprintf(stderr, "bench-modem-provision: %s: %s\n", k->kind, failure->message);
		g_clear_error(&failure);
		return FALSE;
	}
	return TRUE;
}

int
main(int argc, char **argv)
{
	int runs = 5, first = 1, rc = 0;
	/* What the card needs at least: SELECT ADF.USIM; VERIFY twice (the
	 * attempts left, which costs nothing, then ADM1: the last attempt is
	 * never spent); per file SELECT, READ BINARY (the backup), UPDATE
	 * BINARY. The ICCID (SELECT EF.ICCID, READ BINARY) only where the
	 * modem does not report it. */
	const guint selects = 1 + CP_USIM_N_EF, verifies = 2, reads = CP_USIM_N_EF, updates = CP_USIM_N_EF;
	const guint minimum = selects + verifies + reads + updates;

	if (argc > 1 && g_ascii_isdigit(argv[1][0])) {
		runs = atoi(argv[1]);
		first = 2;
	}
	if (runs < 1 || first >= argc) {
		fprintf(stderr, "usage: bench-modem-provision [RUNS >= 1] KIND=SIM... (KIND: qmi, at, mbim)\n");
		return 2;
	}
	loop = g_main_loop_new(NULL, FALSE);
	printf("provisioning over %d runs per backend (simulator delays 0); the card needs at least %u APDUs:\n"
	       "  %u SELECT (ADF.USIM, %u files), %u VERIFY (attempts left, ADM1), %u READ BINARY, %u UPDATE BINARY;\n"
	       "  2 more (SELECT EF.ICCID, READ BINARY) where the modem does not report the ICCID\n",
	       runs, minimum, selects, CP_USIM_N_EF, verifies, reads, updates);
	for (int a = first; a < argc; a++) {
		const char *eq = strchr(argv[a], '=');
		const Kind *k = NULL;
		double cpu = 0, wall = 0;
		guint msgs = 0, apdus = 0;

		for (gsize i = 0; eq && i < G_N_ELEMENTS(kinds); i++)
			if (strncmp(argv[a], kinds[i].kind, (gsize)(eq - argv[a])) == 0 &&
			    strlen(kinds[i].kind) == (gsize)(eq - argv[a]))
				k = &kinds[i];
		if (!k) {
			fprintf(stderr, "bench-modem-provision: '%s' is not KIND=SIM (qmi, at, mbim)\n", argv[a]);
			return 2;
		}
		if (k->backend == CP_MODEM_BACKEND_MBIM && !start_proxy()) {
			rc = 1;
			continue;
		}
		for (int i = 0; i < runs; i++)
			if (!provision_once(k, eq + 1, &cpu, &wall, &msgs, &apdus)) {
				rc = 1;
				break;
			}
		if (rc)
			break;
		printf("%s:\n", k->kind);
		printf("  %-17s per provisioning: %.1f\n", k->messages_name, (double)msgs / runs);
		printf("  APDUs             per provisioning: %.1f (the card's minimum %u, +%.1f)\n",
		       (double)apdus / runs, minimum, (double)apdus / runs - minimum);
		printf("  host CPU          per provisioning: %.2f ms\n", cpu / runs * 1e3);
		printf("  wall time         per provisioning: %.2f ms\n", wall / runs * 1e3);
		fflush(stdout);
	}
	if (proxy_pid) {
		kill(proxy_pid, SIGTERM);
		waitpid(proxy_pid, NULL, 0);
	}
	return rc;
}
