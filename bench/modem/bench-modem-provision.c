/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One provisioning per modem backend against its simulator, delays at
 * zero: the messages the backend sent to the modem (QMI requests, AT
 * command lines, MBIM requests) and the APDUs that reached the card, both
 * counted by the simulator, printed beside the fewest APDUs the card
 * needs through that modem (card_minimum below); and this process's CPU
 * time (the engine, the driver, libqmi or libmbim), averaged over RUNS
 * runs.
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
	/* what the simulator's default modem does not tell, so that the
	 * card is asked (docs/modem.md, "The message floor") */
	gboolean no_applications;        /* no list of the card's applications: EF.DIR */
	gboolean no_iccid;               /* no ICCID request: EF.ICCID */
	gboolean no_imsi;                /* no IMSI request after the reset: EF.IMSI */
} Kind;

static const Kind kinds[] = {
	/* UIM Get Card Status lists the applications, UIM Read Transparent
	 * reads EF.ICCID; current firmware answers DMS UIM Get IMSI with
	 * InvalidQmiCommand (docs/simulators.md) */
	{ "qmi", CP_MODEM_BACKEND_QMI, "qmi-requests", "QMI requests", FALSE, FALSE, TRUE },
	/* 27.007 has no application list; the simulator's modem answers
	 * +CCID and +QCCID with ERROR; +CIMI tells the IMSI */
	{ "at", CP_MODEM_BACKEND_AT, "at-commands", "AT command lines", TRUE, TRUE, FALSE },
	/* MS UICC Application List, Subscriber Ready Status (ICCID, IMSI) */
	{ "mbim", CP_MODEM_BACKEND_MBIM, "mbim-requests", "MBIM requests", FALSE, FALSE, FALSE },
};

/* EF.DIR's records on this card: the USIM's, then the ISIM's */
#define DIR_RECORDS 2

/*
 * The fewest APDUs one provisioning of card d needs, under the rules no
 * provisioning may break: every file backed up (READ BINARY) before the
 * first UPDATE BINARY; ADM1's counter asked (VERIFY without data) before
 * ADM1 is presented; the card identified before anything is read (a
 * SELECT of its driver's probe file). Files are reached as TS 102 221
 * allows on every UICC: an SFI (8.3) in the current DF, else a SELECT by
 * file id (the MF, a DF, an EF of the current DF) or by AID. Counted:
 *   - per file a READ BINARY and an UPDATE BINARY;
 *   - per file without an SFI two SELECTs (for the read, for the write),
 *     but one for the file read last and written first, and none for the
 *     probe file when it is read first (the identification selected it);
 *   - the DFs: the backup goes from ADF.USIM (where the channel opens) to
 *     each other DF once, the writes from the last of them to each other
 *     DF and back to ADF.USIM for its files; a DF costs the SELECTs to
 *     reach it (an ADF 1 by AID, DF.SYSTEM 2: the MF, then A515); the DF
 *     visited last by the backup and first by the writes is the dearest.
 * Selection by path (P1 08) would save the MF's SELECTs where a card has
 * it; TS 102 221 does not ask every card to, and it is not counted.
 */
static guint
card_minimum(const CpUsimDriver *d, guint *files, guint *ef_selects, guint *df_selects)
{
	guint df_cost[CP_USIM_N_DF] = { [CP_USIM_DF_USIM] = 1, [CP_USIM_DF_SYSTEM] = 2, [CP_USIM_DF_ISIM] = 1 };
	gboolean df_used[CP_USIM_N_DF] = { FALSE };
	guint no_sfi = 0, sum = 0, max = 0;

	*files = 0;
	for (guint i = 0; i < CP_USIM_N_EF; i++) {
		if (!d->size[i] || (d->df[i] == CP_USIM_DF_ISIM && !d->isim_aid))
			continue;
		(*files)++;
		df_used[d->df[i]] = TRUE;
		if (!d->sfi[i])
			no_sfi++;
	}
	/* two each, but one for the pivot and none more for the probe file
	 * (the identification's SELECT, counted apart) */
	*ef_selects = no_sfi >= 2 ? 2 * no_sfi - 2 : 0;
	for (guint df = 0; df < CP_USIM_N_DF; df++)
		if (df != CP_USIM_DF_USIM && df_used[df]) {
			sum += df_cost[df];
			max = MAX(max, df_cost[df]);
		}
	*df_selects = sum ? 2 * sum - max + df_cost[CP_USIM_DF_USIM] : 0;
	/* the identification's SELECT, VERIFY twice, a READ and an UPDATE
	 * per file */
	return 1 + 2 + 2 * *files + *ef_selects + *df_selects;
}

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
	const CpUsimDriver *card = cp_usim_driver_find("sysmo-isim-sja2");
	guint files, ef_selects, df_selects;
	const guint minimum = card_minimum(card, &files, &ef_selects, &df_selects);

	if (argc > 1 && g_ascii_isdigit(argv[1][0])) {
		runs = atoi(argv[1]);
		first = 2;
	}
	if (runs < 1 || first >= argc) {
		fprintf(stderr, "usage: bench-modem-provision [RUNS >= 1] KIND=SIM... (KIND: qmi, at, mbim)\n");
		return 2;
	}
	loop = g_main_loop_new(NULL, FALSE);
	printf("provisioning over %d runs per backend (simulator delays 0); the card (%s) needs at least %u APDUs:\n"
	       "  1 SELECT (identification; it selects the file the backup reads first), 2 VERIFY (attempts left, ADM1),\n"
	       "  %u READ BINARY, %u UPDATE BINARY, %u SELECT of a file without an SFI, %u SELECT of a DF;\n"
	       "  and where the modem does not tell: %u (EF.DIR: SELECT MF, SELECT EF.DIR, READ RECORD x %u) for the\n"
	       "  applications, 2 (SELECT MF, READ BINARY by SFI) for the ICCID, 1 (READ BINARY by SFI) for the IMSI\n",
	       runs, card->name, minimum, files, files, ef_selects, df_selects, 2 + DIR_RECORDS, DIR_RECORDS);
	for (int a = first; a < argc; a++) {
		const char *eq = strchr(argv[a], '=');
		const Kind *k = NULL;
		double cpu = 0, wall = 0;
		guint msgs = 0, apdus = 0, floor;

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
		floor = minimum + (k->no_applications ? 2 + DIR_RECORDS : 0) + (k->no_iccid ? 2 : 0) +
			(k->no_imsi ? 1 : 0);
		printf("  APDUs             per provisioning: %.1f (the minimum through this modem %u, %.2fx)\n",
		       (double)apdus / runs, floor, (double)apdus / runs / floor);
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
