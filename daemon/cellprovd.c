/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cellprovd: the cellprov device daemon (cellprovd(8)). */
#define G_LOG_DOMAIN "cellprovd"

#include <glib.h>
#include <glib-unix.h>
#include <locale.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>


#include "cp-config.h"
#include "cp-backend.h"
#include "cp-conf.h"
#include "cp-daemon.h"
#include "cp-glib.h"
#include "cp-idle.h"
#include "cp-poll.h"
#include "cp-records.h"
#include "cp-service.h"

#if CP_HAVE_SYSTEMD
#include "cp-notify.h"
#endif

#define STOP_TIMEOUT_MS 8000
/* The device key's scalar, ADM1, K'', the USIM backup, and an attempt's
 * K', K_usim and OPc: a few KiB at most, see docs/daemon.md */
#define SECURE_HEAP_SIZE (32 * 1024)

typedef struct {
	GMainLoop *loop;
	CpDaemon *daemon;
	CpService *service;
	CpPoll *poll;
	CpIdle *idle;
	int status;
	gboolean started;
	guint watchdog_source;
	char *last_status;
} App;

static void
notify(const char *what)
{
#if CP_HAVE_SYSTEMD
	int r = cp_notify(what);

	if (r < 0)
		g_debug("sd_notify %s: %s", what, g_strerror(-r));
#else
	(void)what;
#endif
}

static void
notify_status(App *app)
{
	g_autofree char *status = NULL;
	g_autofree char *line = NULL;
	CpDaemon *d = app->daemon;
	const char *step = cp_daemon_get_step(d);

	status = g_strdup_printf("%s%s%s", cp_state_name(cp_daemon_get_state(d)),
				 step[0] ? ": " : "", step);
	if (g_strcmp0(status, app->last_status) == 0)
		return;
	g_free(app->last_status);
	app->last_status = g_strdup(status);
	line = g_strdup_printf("STATUS=%s", status);
	notify(line);
}

#if CP_HAVE_SYSTEMD
static gboolean
watchdog_cb(gpointer data)
{
	/* the main loop turning is what the watchdog checks: every blocking
	 * call runs elsewhere */
	notify("WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}
#endif

static void
watchdog_setup(App *app)
{
#if CP_HAVE_SYSTEMD
	uint64_t usec = 0;

	if (cp_notify_watchdog(&usec) > 0 && usec > 0) {
		guint ms = (guint)MAX(usec / 2000, 100);

		app->watchdog_source = g_timeout_add(ms, watchdog_cb, app);
		g_info("watchdog: pinging every %u ms", ms);
	}
#endif
}

static void
on_changed_status(CpDaemon *d, gpointer data)
{
	notify_status(data);
}

static void
stopped(gpointer data)
{
	App *app = data;

	g_main_loop_quit(app->loop);
}

static gboolean
on_signal(gpointer data)
{
	App *app = data;

	g_message("stopping");
	notify("STOPPING=1");
	cp_daemon_stop(app->daemon, STOP_TIMEOUT_MS, G_CALLBACK(stopped), app);
	return G_SOURCE_REMOVE;
}

/*
 * Nothing to do (cp-idle.h): give up the bus name first, so that a call
 * from now on starts a new daemon by bus activation, then stop as on
 * SIGTERM, with status 0 (systemd's Restart=on-failure leaves it stopped).
 */
static void
on_idle(gpointer data)
{
	App *app = data;

	notify("STOPPING=1");
	cp_service_release_name(app->service);
	cp_daemon_stop(app->daemon, STOP_TIMEOUT_MS, G_CALLBACK(stopped), app);
}

static void
on_ready(gboolean owned, gpointer data)
{
	App *app = data;
	g_autoptr(GError) error = NULL;

	if (!owned) {
		app->status = EXIT_FAILURE;
		if (app->started)
			cp_daemon_stop(app->daemon, STOP_TIMEOUT_MS, G_CALLBACK(stopped), app);
		else
			g_main_loop_quit(app->loop);
		return;
	}
	if (app->started)
		return;
	if (!cp_daemon_start(app->daemon, &error)) {
		g_printerr("cellprovd: %s\n", error->message);
		app->status = EXIT_FAILURE;
		g_main_loop_quit(app->loop);
		return;
	}
	app->started = TRUE;
	/* a daemon that exits when idle was started for work: a lifecycle
	 * check (the timer spreads a fleet's starts) polls at once */
	if (app->poll)
		cp_poll_start(app->poll, cp_daemon_get_conf(app->daemon)->exit_when_idle &&
					 cp_poll_is_ready(app->poll) ? 1 : 0);
	g_message("ready: device %s, %s (crypto: %s)", cp_daemon_get_device_id(app->daemon),
		  cp_state_name(cp_daemon_get_state(app->daemon)), cp_crypto_backend());
	notify("READY=1");
	notify_status(app);
	watchdog_setup(app);
	app->idle = cp_idle_new(app->daemon, app->poll, app->service, on_idle, app);
}

/*
 * CELLPROVD_TEST_HOLD=STATE:MS[,STATE:MS]: the tests' way to catch the
 * daemon in profile-received or verified (cellprovd(8), TESTING). A bad
 * value stops the start, so a typo never passes for a test that ran.
 */
static gboolean
setup_test_hold(CpDaemon *d, const char *spec, GError **error)
{
	g_auto(GStrv) items = g_strsplit(spec, ",", -1);

	for (char **it = items; *it; it++) {
		const char *colon = strchr(*it, ':');
		g_autofree char *name = colon ? g_strndup(*it, (gsize)(colon - *it)) : NULL;
		guint64 ms = 0;
		CpState state;

		if (!name || !cp_state_from_name(name, &state) ||
		    !g_ascii_string_to_unsigned(colon + 1, 10, 1, 60000, &ms, NULL)) {
			cp_set_error(error, CP_ERR_ARGUMENT,
				     "CELLPROVD_TEST_HOLD: '%s' is not STATE:MS (MS 1-60000)", *it);
			return FALSE;
		}
		if (!cp_daemon_set_test_hold(d, state, (guint)ms, error)) {
			g_prefix_error(error, "CELLPROVD_TEST_HOLD: ");
			return FALSE;
		}
		g_warning("test knob CELLPROVD_TEST_HOLD: every attempt waits %u ms in %s",
			  (guint)ms, cp_state_name(state));
	}
	return TRUE;
}

/*
 * OpenSSL's secure heap: CpSecret and OpenSSL's secure BIGNUMs then live
 * in an arena that is mlock'ed (never swapped), fenced by guard pages and
 * kept out of core dumps. Without it they use the ordinary heap, still
 * cleansed on free: worth a warning, not a refusal to run.
 */
/*
 * What the process needs of its allocators (docs/daemon.md, "Memory"):
 * one malloc arena for every thread (the GLib main context, GDBus, the
 * NFC worker and the GTask pool would each dirty one of their own), and
 * the crypto backend set up lean (OpenSSL without its error strings, a
 * table of some 55 KiB on the heap that cellprovd never prints) with the
 * secure heap its secrets come from (once the options are read). The
 * first before the first allocation.
 */
static void
allocators_init(void)
{
	mallopt(M_ARENA_MAX, 1);
	cp_crypto_init(0);
}

static void
secure_heap_init(void)
{
	switch (cp_crypto_init(SECURE_HEAP_SIZE)) {
	case CP_SECURE_HEAP_LOCKED:
		break;
	case CP_SECURE_HEAP_NOT_LOCKED:
		g_warning("secure heap: %d KiB not locked in memory (no right to mlock: "
			  "LimitMEMLOCK= or CAP_IPC_LOCK); secrets could reach swap", SECURE_HEAP_SIZE / 1024);
		break;
	case CP_SECURE_HEAP_NONE:
		g_warning("secure heap: cannot set it up; secrets stay on the ordinary heap");
		break;
	}
}

int
main(int argc, char **argv)
{
	g_autofree char *config_path = NULL;
	gboolean debug = FALSE;
	gboolean check = FALSE;
	g_autoptr(GOptionContext) ctx = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CpConf) conf = NULL;
	CpDaemonListener status_listener = { .changed = on_changed_status };
	struct rlimit no_core = { 0, 0 };
	App app = { 0 };
	size_t secure_left;
	const GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
		  "Configuration file (default " CP_SYSCONFDIR "/cellprov/cellprov.conf)", "FILE" },
		{ "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "Log debug messages", NULL },
		{ "check-config", 0, 0, G_OPTION_ARG_NONE, &check,
		  "Check the configuration, the key and the state directory, then exit", NULL },
		CP_OPTION_VERSION,
		G_OPTION_ENTRY_NULL,
	};

	allocators_init();
	setlocale(LC_ALL, "");
	/* the process holds the device key: no core dumps of it, and no
	 * ptrace by other processes of the same user */
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	ctx = g_option_context_new("- the cellprov device daemon");
	g_option_context_set_summary(ctx,
		"Presents the device's tag, takes the profile a companion writes, provisions the\n"
		"USIM and modem, and writes the receipt. See cellprovd(8) and cellprov.conf(5).");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		g_printerr("cellprovd: %s (try --help)\n", error->message);
		return 2;
	}
	if (argc > 1) {
		g_printerr("cellprovd: unexpected argument '%s' (try --help)\n", argv[1]);
		return 2;
	}
	if (debug)
		g_setenv("G_MESSAGES_DEBUG", "all", TRUE);

	secure_heap_init();
	conf = cp_conf_load(config_path ? config_path : CP_SYSCONFDIR "/cellprov/cellprov.conf", &error);
	if (!conf) {
		g_printerr("cellprovd: %s\n", error->message);
		return EXIT_FAILURE;
	}
	app.daemon = cp_daemon_new(g_steal_pointer(&conf), &error);
	if (!app.daemon) {
		g_printerr("cellprovd: %s\n", error->message);
		return EXIT_FAILURE;
	}
	if (g_getenv("CELLPROVD_TEST_HOLD") &&
	    !setup_test_hold(app.daemon, g_getenv("CELLPROVD_TEST_HOLD"), &error)) {
		g_printerr("cellprovd: %s\n", error->message);
		cp_daemon_free(app.daemon);
		return EXIT_FAILURE;
	}
	app.poll = cp_poll_new(app.daemon, &error);
	if (!app.poll && error) {
		g_printerr("cellprovd: %s\n", error->message);
		cp_daemon_free(app.daemon);
		return EXIT_FAILURE;
	}
	/* CELLPROVD_TEST_POLL_MS=N: the tests' way to poll the SM every N ms
	 * (the configuration's minimum is a minute). */
	if (app.poll && g_getenv("CELLPROVD_TEST_POLL_MS")) {
		guint64 ms = g_ascii_strtoull(g_getenv("CELLPROVD_TEST_POLL_MS"), NULL, 10);

		if (ms < 1 || ms > 60000) {
			g_printerr("cellprovd: CELLPROVD_TEST_POLL_MS: want 1-60000 ms\n");
			cp_poll_free(app.poll);
			cp_daemon_free(app.daemon);
			return EXIT_FAILURE;
		}
		g_warning("test knob CELLPROVD_TEST_POLL_MS: polling the SM every %" G_GUINT64_FORMAT " ms", ms);
		cp_poll_set_test_timing(app.poll, (guint)ms, (guint)ms, (guint)ms);
	}
	if (check) {
		g_autofree char *modules = NULL;

		cp_poll_free(app.poll);
		/* the modem backend's modules load (none is loaded otherwise
		 * until a provisioning needs it) */
		if (CP_DAEMON_MODEM &&
		    !cp_backend_modem_check(cp_daemon_get_conf(app.daemon), &modules, &error)) {
			g_printerr("cellprovd: %s\n", error->message);
			cp_daemon_free(app.daemon);
			return EXIT_FAILURE;
		}
		printf("configuration OK: device %s, state %s\n", cp_daemon_get_device_id(app.daemon),
		       cp_state_name(cp_daemon_get_state(app.daemon)));
		if (modules)
			printf("modem backend modules: %s\n", modules);
		printf("crypto: %s\n", cp_crypto_backend());
		cp_daemon_free(app.daemon);
		return EXIT_SUCCESS;
	}

	app.loop = g_main_loop_new(NULL, FALSE);
	app.status = EXIT_SUCCESS;
	cp_daemon_add_listener(app.daemon, &status_listener, &app);
	app.service = cp_service_new(app.daemon, on_ready, &app, &error);
	if (!app.service) {
		g_printerr("cellprovd: cannot join the bus: %s\n", error->message);
		cp_poll_free(app.poll);
		cp_daemon_free(app.daemon);
		g_main_loop_unref(app.loop);
		return EXIT_FAILURE;
	}
	cp_service_set_poll(app.service, app.poll);
	g_unix_signal_add(SIGTERM, on_signal, &app);
	g_unix_signal_add(SIGINT, on_signal, &app);

	g_main_loop_run(app.loop);

	cp_idle_free(app.idle);

	if (app.watchdog_source)
		g_source_remove(app.watchdog_source);
	cp_service_free(app.service);
	cp_poll_free(app.poll);
	cp_daemon_free(app.daemon);
	g_main_loop_unref(app.loop);
	g_free(app.last_status);
	/*
	 * The backend's cleanup releases the secure heap only when empty.
	 * LeakSanitizer does not see into that heap: this is the leak check
	 * for secrets.
	 */
	secure_left = cp_crypto_cleanup();
	if (secure_left)
		g_warning("secure heap: %zu bytes still allocated at exit", secure_left);
	g_message("stopped");
	return app.status;
}
