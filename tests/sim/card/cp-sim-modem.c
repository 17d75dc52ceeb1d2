/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The modem shell of the QMI, MBIM and AT simulators (cp-sim-modem.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "cp-buf.h"
#include "cp-secret.h"
#include "cp-sim-modem.h"

#define DEFAULT_K "000102030405060708090a0b0c0d0e0f"
#define DEFAULT_OPC "0f0e0d0c0b0a09080706050403020100"
#define DEFAULT_ADM1 "12345678"
#define DEFAULT_ICCID "8988211000000000017"
#define DEFAULT_IMSI "001010123456789"
#define DEFAULT_PLMN "00101"
#define DEFAULT_NETWORK_NAME "cellprov test network"

/* ---- the command line -------------------------------------------------- */

static void
fault_clear(gpointer p)
{
	g_free(((CpSimFault *)p)->command);
}

static gboolean
parse_fault(CpSimModem *m, CpSimFaultKind kind, const char *value, GError **error)
{
	const CpSimFaultSyntax *syn = &m->fe->faults;
	g_auto(GStrv) f = g_strsplit(value, ":", -1);
	guint n = g_strv_length(f);
	CpSimFault fault = { .kind = kind };
	guint64 nth = 0;

	if (n < syn->n_key || n > syn->n_key + 1 || !syn->parse_key(f, &fault) ||
	    (n > syn->n_key && !g_ascii_string_to_unsigned(f[syn->n_key], 10, 0, 1000000, &nth, NULL))) {
		g_free(fault.command);
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "fault '%s': want %s", value, syn->usage);
		return FALSE;
	}
	fault.nth = (guint)nth;
	g_array_append_val(m->fault_table, fault);
	return TRUE;
}

static gboolean
opt_fault(const char *name, const char *value, gpointer data, GError **error)
{
	CpSimModem *m = data;
	const char *opt = g_str_has_prefix(name, "--") ? name + 2 : name;
	CpSimFaultKind kind = strcmp(opt, "no-response") == 0 ? CP_SIM_FAULT_NO_RESPONSE :
			      strcmp(opt, "vanish") == 0 ? CP_SIM_FAULT_VANISH :
			      strcmp(opt, "garbage") == 0 ? CP_SIM_FAULT_GARBAGE : CP_SIM_FAULT_FAIL;

	return parse_fault(m, kind, value, error);
}

/* A help text that lives as long as m. */
static char *
keep(CpSimModem *m, char *s)
{
	if (!m->strings)
		m->strings = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(m->strings, s);
	return s;
}

gboolean
cp_sim_modem_parse(CpSimModem *m, const CpSimFrontEnd *fe, const GOptionEntry *entries,
		   int *argc, char ***argv)
{
	const CpSimFaultSyntax *syn = &fe->faults;
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) ctx = NULL;
	GOptionGroup *group;
	GOptionEntry shared[] = {
		{ "pty", 0, 0, G_OPTION_ARG_FILENAME, &m->pty_path, "Serve on a pty; symlink its slave to PATH", "PATH" },
		{ "subscribers", 0, 0, G_OPTION_ARG_FILENAME, &m->opt_subscribers, "The network's subscriber file", "FILE" },
		{ "imsi", 0, 0, G_OPTION_ARG_STRING, &m->opt_imsi, "The card's initial IMSI", "DIGITS" },
		{ "mnc-length", 0, 0, G_OPTION_ARG_INT, &m->opt_mnc_length, "The card's initial MNC length (2)", "N" },
		{ "k", 0, 0, G_OPTION_ARG_STRING, &m->opt_k, "The card's initial K (32 hex)", "HEX" },
		{ "opc", 0, 0, G_OPTION_ARG_STRING, &m->opt_opc, "The card's initial OPc (32 hex)", "HEX" },
		{ "adm1", 0, 0, G_OPTION_ARG_STRING, &m->opt_adm1, "The card's ADM1 (8 characters)", "KEY" },
		{ "adm1-retries", 0, 0, G_OPTION_ARG_INT, &m->opt_adm1_retries, "Wrong ADM1 attempts before it blocks (3)", "N" },
		{ "iccid", 0, 0, G_OPTION_ARG_STRING, &m->opt_iccid, "The card's ICCID", "DIGITS" },
		{ "no-sfi", 0, 0, G_OPTION_ARG_NONE, &m->opt_no_sfi, "A card whose files have no SFI", NULL },
		{ "dir-usim-only", 0, 0, G_OPTION_ARG_NONE, &m->opt_dir_usim_only, "A card whose EF.DIR lists no ISIM", NULL },
		{ "plmn", 0, 0, G_OPTION_ARG_STRING, &m->opt_plmn, "The network's PLMN (00101)", "MCCMNC" },
		{ "apn", 0, 0, G_OPTION_ARG_STRING, &m->apn, "APN of the modem's context 1 (internet)", "APN" },
		{ "reset-delay", 0, 0, G_OPTION_ARG_INT, &m->opt_reset_delay, "Milliseconds a reset takes (200)", "MS" },
		{ "registration-delay", 0, 0, G_OPTION_ARG_INT, &m->opt_reg_delay, "Milliseconds from online to attach (100)", "MS" },
		{ "dump", 0, 0, G_OPTION_ARG_FILENAME, &m->dump_path, "Write the card and modem state to FILE after every change", "FILE" },
		{ syn->fail_option, 0, 0, G_OPTION_ARG_CALLBACK, opt_fault,
		  keep(m, g_strdup_printf("Answer the N-th %s with %s", syn->what, syn->fail_answer)), syn->arg },
		{ "no-response", 0, 0, G_OPTION_ARG_CALLBACK, opt_fault,
		  keep(m, g_strdup_printf("Never answer the N-th %s", syn->what)), syn->arg },
		{ "vanish", 0, 0, G_OPTION_ARG_CALLBACK, opt_fault,
		  keep(m, g_strdup_printf("Disappear on the N-th %s", syn->what)), syn->arg },
		G_OPTION_ENTRY_NULL,
	};
	GOptionEntry optional[] = {
		{ "network-name", 0, 0, G_OPTION_ARG_STRING, &m->opt_network_name, "The network's name", "NAME" },
		{ "reenumerate", 0, 0, G_OPTION_ARG_FILENAME, &m->reenumerate_path, "After a reset, come back under PATH", "PATH" },
		{ "garbage", 0, 0, G_OPTION_ARG_CALLBACK, opt_fault,
		  keep(m, g_strdup_printf("Answer the N-th %s with a 4096-byte line and OK", syn->what)), syn->arg },
	};

	signal(SIGPIPE, SIG_IGN);
	m->fe = fe;
	m->master = m->slave = -1;
	m->fault_table = g_array_new(FALSE, TRUE, sizeof(CpSimFault));
	g_array_set_clear_func(m->fault_table, fault_clear);
	m->opt_adm1_retries = 3;
	m->opt_mnc_length = 2;
	m->opt_reset_delay = 200;
	m->opt_reg_delay = 100;

	ctx = g_option_context_new(m->fe->summary);
	group = g_option_group_new(NULL, NULL, NULL, m, NULL);
	g_option_group_add_entries(group, shared);
	if (m->fe->flags & CP_SIM_MODEM_NETWORK_NAME)
		g_option_group_add_entries(group, (GOptionEntry[]){ optional[0], G_OPTION_ENTRY_NULL });
	if (m->fe->flags & CP_SIM_MODEM_REENUMERATE)
		g_option_group_add_entries(group, (GOptionEntry[]){ optional[1], G_OPTION_ENTRY_NULL });
	if (syn->garbage)
		g_option_group_add_entries(group, (GOptionEntry[]){ optional[2], G_OPTION_ENTRY_NULL });
	g_option_group_add_entries(group, entries);
	g_option_context_set_main_group(ctx, group);
	if (!g_option_context_parse(ctx, argc, argv, &error)) {
		fprintf(stderr, "%s: %s\n", m->fe->name, error->message);
		return FALSE;
	}
	if (!m->pty_path && !(m->fe->flags & CP_SIM_MODEM_PTY_OPTIONAL)) {
		fprintf(stderr, "%s: --pty PATH is required\n", m->fe->name);
		return FALSE;
	}
	if (m->opt_reset_delay < 0 || m->opt_reg_delay < 0 || m->opt_adm1_retries < 1 ||
	    m->opt_adm1_retries > 15 || (m->opt_mnc_length != 2 && m->opt_mnc_length != 3)) {
		fprintf(stderr, "%s: delays >= 0, --adm1-retries 1-15, --mnc-length 2 or 3\n", m->fe->name);
		return FALSE;
	}
	m->reset_delay_ms = (guint)m->opt_reset_delay;
	m->reg_delay_ms = (guint)m->opt_reg_delay;
	if (!m->apn)
		m->apn = g_strdup("internet");
	return TRUE;
}

/* ---- the card and the network ------------------------------------------ */

static gint64
file_mtime(const char *path)
{
	GStatBuf st;

	return g_stat(path, &st) == 0 ? (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000 : -1;
}

/* The AUSF adds subscribers, key generations, retires and removes them
 * while the network runs: the file's changes apply before the next attach. */
static void
subscribers_refresh(CpSimModem *m)
{
	g_autoptr(GError) error = NULL;
	gint64 mtime;
	guint added, removed;

	if (!m->subscribers_path || (mtime = file_mtime(m->subscribers_path)) == m->subscribers_mtime)
		return;
	m->subscribers_mtime = mtime;
	if (!cp_sim_network_load_new(m->net, m->subscribers_path, &added, &removed, &error))
		g_warning("subscribers: %s", error->message);
	if (added || removed)
		g_message("subscribers: %u key set(s) joined the network, %u left", added, removed);
}

gboolean
cp_sim_modem_setup(CpSimModem *m, const char *card, CpSimLe le)
{
	g_autoptr(GError) error = NULL;
	uint8_t k[16], opc[16];

	if (cp_hex_decode(m->opt_k ? m->opt_k : DEFAULT_K, k, 16) != 16 ||
	    cp_hex_decode(m->opt_opc ? m->opt_opc : DEFAULT_OPC, opc, 16) != 16) {
		fprintf(stderr, "%s: --k and --opc want 32 hex digits\n", m->fe->name);
		return FALSE;
	}
	m->usim = cp_sim_usim_new_card(card ? card : CP_SIM_CARD_DEFAULT,
				       m->opt_iccid ? m->opt_iccid : DEFAULT_ICCID,
				       m->opt_imsi ? m->opt_imsi : DEFAULT_IMSI, (guint)m->opt_mnc_length,
				       k, opc, m->opt_adm1 ? m->opt_adm1 : DEFAULT_ADM1,
				       (guint)m->opt_adm1_retries);
	cp_cleanse(k, sizeof(k));
	cp_cleanse(opc, sizeof(opc));
	if (!m->usim) {
		if (card && !g_strv_contains(cp_sim_usim_cards(), card)) {
			g_autofree char *names = g_strjoinv(", ", (char **)cp_sim_usim_cards());

			fprintf(stderr, "%s: cards: %s\n", m->fe->name, names);
		}
		return FALSE;
	}
	cp_sim_usim_set_le(m->usim, le);
	if (m->opt_no_sfi)
		cp_sim_usim_drop_sfi(m->usim);
	if (m->opt_dir_usim_only)
		cp_sim_usim_dir_usim_only(m->usim);
	m->net = cp_sim_network_new(m->opt_plmn ? m->opt_plmn : DEFAULT_PLMN,
				    m->opt_network_name ? m->opt_network_name : DEFAULT_NETWORK_NAME);
	if (m->opt_subscribers) {
		m->subscribers_mtime = file_mtime(m->opt_subscribers);
		if (!cp_sim_network_load(m->net, m->opt_subscribers, &error)) {
			fprintf(stderr, "%s: %s\n", m->fe->name, error->message);
			return FALSE;
		}
		m->subscribers_path = g_strdup(m->opt_subscribers);
	}
	m->loop = g_main_loop_new(NULL, FALSE);
	m->contexts = g_ptr_array_new();
	return TRUE;
}

void
cp_sim_modem_card_start(CpSimModem *m)
{
	cp_sim_usim_reset(m->usim);
	g_free(m->modem_imsi);
	m->modem_imsi = cp_sim_usim_get_imsi(m->usim);
}

static gboolean
attach_cb(gpointer data)
{
	CpSimModem *m = data;

	m->reg_timer = 0;
	m->fe->attach();
	return G_SOURCE_REMOVE;
}

void
cp_sim_modem_attach_later(CpSimModem *m)
{
	cp_sim_modem_attach_cancel(m);
	m->reg_timer = g_timeout_add(m->reg_delay_ms, attach_cb, m);
}

void
cp_sim_modem_attach_cancel(CpSimModem *m)
{
	if (m->reg_timer)
		g_source_remove(m->reg_timer);
	m->reg_timer = 0;
}

CpSimAttach
cp_sim_modem_attach(CpSimModem *m)
{
	CpSimAttach a;

	subscribers_refresh(m);
	a = cp_sim_network_attach(m->net, m->usim);
	g_message("attach: %s", cp_sim_attach_name(a));
	return a;
}

/* ---- data contexts ----------------------------------------------------- */

CpSimContext *
cp_sim_modem_context_find(CpSimModem *m, guint id)
{
	for (guint i = 0; m->contexts && i < m->contexts->len; i++) {
		CpSimContext *c = g_ptr_array_index(m->contexts, i);

		if (c->id == id)
			return c;
	}
	return NULL;
}

CpSimContext *
cp_sim_modem_context_add(CpSimModem *m, gsize size, guint id, const char *apn)
{
	CpSimContext *c = g_malloc0(size);

	if (!m->contexts)
		m->contexts = g_ptr_array_new();
	c->id = id;
	c->apn = g_strdup(apn);
	g_ptr_array_add(m->contexts, c);
	return c;
}

static void
context_free(CpSimModem *m, CpSimContext *c)
{
	if (m->fe->context_clear)
		m->fe->context_clear(c);
	g_free(c->apn);
	g_free(c);
}

void
cp_sim_modem_context_remove(CpSimModem *m, CpSimContext *c)
{
	if (g_ptr_array_remove(m->contexts, c))
		context_free(m, c);
}

/* ---- the port ---------------------------------------------------------- */

static gboolean
port_readable_cb(int fd, GIOCondition cond, gpointer data)
{
	CpSimModem *m = data;
	guint8 buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n <= 0)
		return G_SOURCE_CONTINUE;   /* EIO while no one holds the node */
	/* the input may take the port off the bus: its source goes with it */
	m->fe->input(buf, (gsize)n);
	return G_SOURCE_CONTINUE;
}

gboolean
cp_sim_modem_port_open(CpSimModem *m, const char *path, GError **error)
{
	struct termios t;
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	const char *slave;

	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || !(slave = ptsname(master))) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pty: %s", g_strerror(errno));
		if (master >= 0)
			close(master);
		return FALSE;
	}
	/* Hold the slave open: without it the master reads EIO between one
	 * open of the node and the next. Raw: the host's bytes as they are. */
	m->slave = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m->slave < 0 || tcgetattr(m->slave, &t) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pty %s: %s", slave, g_strerror(errno));
		goto fail;
	}
	cfmakeraw(&t);
	tcsetattr(m->slave, TCSANOW, &t);
	unlink(path);
	if (symlink(slave, path) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "symlink %s: %s",
			    path, g_strerror(errno));
		goto fail;
	}
	m->master = master;
	m->watch = g_unix_fd_add(master, G_IO_IN, port_readable_cb, m);
	g_free(m->port_path);
	m->port_path = g_strdup(path);
	m->n_enumerations++;
	return TRUE;
fail:
	close(master);
	if (m->slave >= 0)
		close(m->slave);
	m->slave = -1;
	return FALSE;
}

void
cp_sim_modem_port_close(CpSimModem *m)
{
	if (m->port_path)
		unlink(m->port_path);
	g_clear_pointer(&m->port_path, g_free);
	if (m->watch)
		g_source_remove(m->watch);
	m->watch = 0;
	if (m->master >= 0)
		close(m->master);
	if (m->slave >= 0)
		close(m->slave);
	m->master = m->slave = -1;
}

gboolean
cp_sim_modem_port_start(CpSimModem *m)
{
	g_autoptr(GError) error = NULL;

	if (!cp_sim_modem_port_open(m, m->pty_path, &error)) {
		fprintf(stderr, "%s: %s\n", m->fe->name, error->message);
		return FALSE;
	}
	return TRUE;
}

gboolean
cp_sim_modem_port_return(CpSimModem *m, const char *path)
{
	g_autoptr(GError) error = NULL;

	if (!cp_sim_modem_port_open(m, path, &error)) {
		g_warning("reset: the port cannot come back: %s", error->message);
		g_main_loop_quit(m->loop);
		return FALSE;
	}
	g_message("reset: the port is back at %s", path);
	return TRUE;
}

const char *
cp_sim_modem_reset_path(CpSimModem *m)
{
	/* back under another name, as a USB module whose index changed */
	return m->reenumerate_path ? m->reenumerate_path : m->pty_path;
}

int
cp_sim_modem_port_fd(CpSimModem *m)
{
	return m->master;
}

void
cp_sim_modem_port_write(CpSimModem *m, const guint8 *d, gsize len)
{
	gsize done = 0;

	while (done < len && m->master >= 0) {
		ssize_t n = write(m->master, d + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return;
		done += (gsize)n;
	}
}

/* ---- faults ------------------------------------------------------------ */

CpSimFault *
cp_sim_modem_fault(CpSimModem *m, guint service, guint message, const char *command)
{
	for (guint i = 0; i < m->fault_table->len; i++) {
		CpSimFault *f = &g_array_index(m->fault_table, CpSimFault, i);

		if (command ? !f->command || g_ascii_strcasecmp(f->command, command) != 0 :
			      f->command || f->service != service || f->message != message)
			continue;
		f->seen++;
		if (f->nth == 0 || f->seen == f->nth)
			return f;
	}
	return NULL;
}

void
cp_sim_modem_vanish(CpSimModem *m, const char *what)
{
	g_message("fault: vanishing at %s", what);
	/* the node goes with the function */
	if (m->port_path)
		unlink(m->port_path);
	g_clear_pointer(&m->port_path, g_free);
	m->master = -1;
	cp_sim_modem_dump(m);
	/* Everything closes with the process, as when a module drops off USB. */
	_exit(0);
}

/* ---- the dump and the main loop ---------------------------------------- */

void
cp_sim_modem_dump(CpSimModem *m)
{
	g_autoptr(GString) s = NULL;
	g_autofree char *tmp = NULL;
	CpSimContext *c;

	if (!m->dump_path)
		return;
	s = g_string_new(NULL);
	cp_sim_usim_dump(m->usim, s);
	cp_sim_network_dump(m->net, s);
	g_string_append_printf(s, "modem-imsi=%s\n", m->modem_imsi ? m->modem_imsi : "");
	c = cp_sim_modem_context_find(m, 1);
	g_string_append_printf(s, "apn=%s\n", c ? c->apn : "");
	m->fe->dump(s);
	tmp = g_strconcat(m->dump_path, ".tmp", NULL);
	if (g_file_set_contents_full(tmp, s->str, (gssize)s->len, G_FILE_SET_CONTENTS_NONE, 0600, NULL))
		rename(tmp, m->dump_path);
}

static gboolean
quit_cb(gpointer data)
{
	CpSimModem *m = data;

	g_main_loop_quit(m->loop);
	return G_SOURCE_CONTINUE;
}

void
cp_sim_modem_run(CpSimModem *m, const char *ready)
{
	guint term = g_unix_signal_add(SIGTERM, quit_cb, m);
	guint intr = g_unix_signal_add(SIGINT, quit_cb, m);

	/* readiness: the transport is up once this line is out */
	printf("ready %s\n", ready);
	fflush(stdout);
	g_main_loop_run(m->loop);
	g_source_remove(term);
	g_source_remove(intr);
	cp_sim_modem_dump(m);
}

void
cp_sim_modem_clear(CpSimModem *m)
{
	cp_sim_modem_port_close(m);
	cp_sim_modem_attach_cancel(m);
	for (guint i = 0; m->contexts && i < m->contexts->len; i++)
		context_free(m, g_ptr_array_index(m->contexts, i));
	g_clear_pointer(&m->contexts, g_ptr_array_unref);
	g_clear_pointer(&m->fault_table, g_array_unref);
	g_clear_pointer(&m->loop, g_main_loop_unref);
	g_clear_pointer(&m->strings, g_ptr_array_unref);
	g_clear_pointer(&m->usim, cp_sim_usim_free);
	g_clear_pointer(&m->net, cp_sim_network_free);
	g_free(m->modem_imsi);
	g_free(m->pty_path);
	g_free(m->reenumerate_path);
	g_free(m->dump_path);
	g_free(m->apn);
	g_free(m->subscribers_path);
	g_free(m->opt_subscribers);
	g_free(m->opt_imsi);
	g_free(m->opt_k);
	g_free(m->opt_opc);
	g_free(m->opt_adm1);
	g_free(m->opt_iccid);
	g_free(m->opt_plmn);
	g_free(m->opt_network_name);
}
