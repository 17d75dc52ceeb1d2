/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprovd's modem drivers as modules (modem/cp-modem-module.c), through
 * the engine as the daemon links it: an operation on a backend whose
 * module is missing, not loadable or not the backend's ends with a
 * CP_ERR_MODEM that says so (and the next operation tries again); the
 * QMI module, once loaded, brings libqmi and no other modem library; a
 * program of the engine maps no modem library before.
 *
 * CP_MODULE_BUILD_DIR: the build tree's modules.
 */
#include "cp-config.h"
#include "cp-modem.h"
#include "cp-modem-driver.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const modem_libs[] = { "libqmi-glib", "libmm-glib", "libmbim-glib", "libqrtr-glib", NULL };

/* The file of the library this process maps whose name starts with lib;
 * NULL when none. */
static char *
mapped(const char *lib)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_true(g_file_get_contents("/proc/self/maps", &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		const char *slash = strrchr(lines[i], '/');

		if (slash && g_str_has_prefix(slash + 1, lib))
			return g_strdup(strchr(lines[i], '/'));
	}
	return NULL;
}

static gboolean
maps(const char *lib)
{
	g_autofree char *path = mapped(lib);

	return path != NULL;
}

/* Whether the shared object at path names lib among its libraries (its
 * dynamic string table holds the names it needs). */
static gboolean
needs(const char *path, const char *lib)
{
	g_autofree char *bytes = NULL;
	gsize len;

	g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
	return memmem(bytes, len, lib, strlen(lib)) != NULL;
}

typedef struct {
	GMainLoop *loop;
	GError *error;
	CpModemProbe *probe;
} Wait;

static void
probe_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Wait *w = data;

	w->probe = cp_modem_probe_finish(NULL, res, &w->error);
	g_main_loop_quit(w->loop);
}

/* A probe of the modem cfg with the modules in dir: the error it starts
 * with. */
static GError *
probe_error_of(const CpModemConfig *cfg, const char *dir)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpModem) m = cp_modem_new(cfg, &error);
	Wait w = { g_main_loop_new(NULL, FALSE), NULL, NULL };

	g_assert_no_error(error);
	g_setenv("CELLPROV_MODULE_DIR", dir, TRUE);
	cp_modem_probe_async(m, NULL, NULL, NULL, probe_cb, &w);
	g_main_loop_run(w.loop);
	g_main_loop_unref(w.loop);
	g_assert_null(w.probe);
	g_assert_nonnull(w.error);
	return w.error;
}

static GError *
probe_error(CpModemBackendType backend, const char *dir)
{
	CpModemConfig cfg = { .backend = backend, .device = "/dev/null", .request_timeout = 1 };

	return probe_error_of(&cfg, dir);
}

static void
test_idle_maps_none(void)
{
	/* nothing has loaded a module yet */
	for (guint i = 0; modem_libs[i]; i++)
		if (maps(modem_libs[i]))
			g_error("the engine maps %s before any module is loaded", modem_libs[i]);
}

static void
test_missing(void)
{
	g_autofree char *dir = g_dir_make_tmp("cp-modules-XXXXXX", NULL);
	g_autoptr(GError) error = probe_error(CP_MODEM_BACKEND_QMI, dir);

	g_assert_error(error, CP_ERROR, CP_ERR_MODEM);
	g_assert_nonnull(strstr(error->message, "the qmi backend is not installed"));
	g_clear_error(&error);
	error = probe_error(CP_MODEM_BACKEND_AT, dir);
	g_assert_error(error, CP_ERROR, CP_ERR_MODEM);
	g_assert_nonnull(strstr(error->message, "the at backend is not installed"));
	g_rmdir(dir);
	test_idle_maps_none();
}

static void
test_broken(void)
{
	g_autofree char *dir = g_dir_make_tmp("cp-modules-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "cellprov-modem-qmi.so", NULL);
	g_autofree char *at = g_build_filename(g_getenv("CP_MODULE_BUILD_DIR"), "cellprov-modem-at.so", NULL);
	g_autofree char *bytes = NULL;
	gsize len;
	g_autoptr(GError) error = NULL;

	/* not a shared object */
	g_assert_true(g_file_set_contents(path, "not an ELF file\n", -1, NULL));
	error = probe_error(CP_MODEM_BACKEND_QMI, dir);
	g_assert_error(error, CP_ERROR, CP_ERR_MODEM);
	g_assert_nonnull(strstr(error->message, "the qmi backend's module does not load"));
	g_clear_error(&error);

	/* another backend's module under the QMI name */
	g_assert_true(g_file_get_contents(at, &bytes, &len, NULL));
	g_assert_true(g_file_set_contents(path, bytes, len, NULL));
	error = probe_error(CP_MODEM_BACKEND_QMI, dir);
	g_assert_error(error, CP_ERROR, CP_ERR_MODEM);
	g_assert_nonnull(strstr(error->message, "is not a cellprov qmi backend module"));
	g_unlink(path);
	g_rmdir(dir);
	test_idle_maps_none();
}

/* A fake sysfs under top with the port name of class on a USB interface
 * bound to driver (NULL: none), and its node under top/dev. */
static char *
fake_port(const char *top, const char *class, const char *name, const char *driver)
{
	g_autofree char *intf = g_strdup_printf("%s/sys/devices/usb1/1-1/1-1:1.%u", top, class[0] == 't' ? 2 : 12);
	g_autofree char *port = g_build_filename(intf, class, name, NULL);
	g_autofree char *num = g_build_filename(intf, "bInterfaceNumber", NULL);
	g_autofree char *dev = g_build_filename(port, "device", NULL);
	g_autofree char *entry = g_strdup_printf("%s/sys/class/%s/%s", top, class, name);
	g_autofree char *entry_dir = g_path_get_dirname(entry);
	g_autofree char *node = g_strdup_printf("%s/dev/%s", top, name);
	g_autofree char *node_dir = g_path_get_dirname(node);

	g_assert_cmpint(g_mkdir_with_parents(port, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(entry_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(node_dir, 0755), ==, 0);
	g_assert_true(g_file_set_contents(num, class[0] == 't' ? "02\n" : "0c\n", -1, NULL));
	g_assert_cmpint(symlink(intf, dev), ==, 0);
	g_assert_cmpint(symlink(port, entry), ==, 0);
	if (driver) {
		g_autofree char *drv = g_strdup_printf("%s/sys/bus/usb/drivers/%s", top, driver);
		g_autofree char *link = g_build_filename(intf, "driver", NULL);

		g_assert_cmpint(g_mkdir_with_parents(drv, 0755), ==, 0);
		g_assert_cmpint(symlink(drv, link), ==, 0);
	}
	g_assert_true(g_file_set_contents(node, "", -1, NULL));
	return g_steal_pointer(&node);
}

/* backend=auto with no ModemManager (no system bus here): the backend the
 * port's kernel view names, QMI when it names none; each module asked for
 * is missing, so the error names the backend chosen and nothing loads. */
static void
test_auto_by_kernel_view(void)
{
	static const struct {
		const char *class, *name, *driver, *chosen;
	} cases[] = {
		{ "usbmisc", "cdc-wdm7", "cdc_mbim", "mbim" },
		{ "usbmisc", "cdc-wdm8", "qmi_wwan", "qmi" },
		{ "tty", "ttyUSB9", "option", "at" },
		{ "usbmisc", "cdc-wdm9", NULL, "qmi" },
	};
	g_autofree char *empty = g_dir_make_tmp("cp-modules-XXXXXX", NULL);

	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/cellprov-test-bus", TRUE);
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *top = g_dir_make_tmp("cp-auto-XXXXXX", NULL);
		g_autofree char *node = fake_port(top, cases[i].class, cases[i].name, cases[i].driver);
		g_autofree char *sysfs = g_build_filename(top, "sys", NULL);
		g_autofree char *want = g_strdup_printf("the %s backend is not installed", cases[i].chosen);
		CpModemConfig cfg = { .backend = CP_MODEM_BACKEND_AUTO, .device = node, .sysfs = sysfs,
				      .request_timeout = 1 };
		g_autoptr(GError) error = probe_error_of(&cfg, empty);
		g_autofree char *rm = g_strdup_printf("rm -rf '%s'", top);

		g_assert_error(error, CP_ERROR, CP_ERR_MODEM);
		if (!strstr(error->message, want))
			g_error("%s bound to %s: %s, not %s", cases[i].name, cases[i].driver ? cases[i].driver : "nothing",
				error->message, want);
		g_assert_cmpint(system(rm), ==, 0);
	}
	g_rmdir(empty);
	g_unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
	test_idle_maps_none();
}

static void
test_qmi_maps_libqmi_only(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *libqmi = NULL;
	const CpModemModule *m;

	g_setenv("CELLPROV_MODULE_DIR", g_getenv("CP_MODULE_BUILD_DIR"), TRUE);
	m = cp_modem_module_get("qmi", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(m->driver->name, ==, "qmi");
	g_assert_cmpstr(m->version, ==, CP_VERSION);
	libqmi = mapped("libqmi-glib");
	g_assert_nonnull(libqmi);
	if (maps("libmm-glib"))
		g_error("the QMI module maps libmm-glib");
	/* Debian's libqmi speaks QMI over MBIM and QRTR itself: those come
	 * with it, never with the module */
	for (guint i = 2; modem_libs[i]; i++)
		if (maps(modem_libs[i]) && !needs(libqmi, modem_libs[i]))
			g_error("the QMI module maps %s, which libqmi-glib does not need", modem_libs[i]);
	{
		g_autofree char *file = g_build_filename(g_getenv("CP_MODULE_BUILD_DIR"),
							 "cellprov-modem-qmi.so", NULL);

		g_assert_true(needs(file, "libqmi-glib"));
		g_assert_false(needs(file, "libmm-glib"));
		g_assert_false(needs(file, "libmbim-glib"));
	}
	/* loaded once, kept */
	g_assert_true(cp_modem_module_get("qmi", &error) == m);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	if (!g_getenv("CP_MODULE_BUILD_DIR"))
		g_error("CP_MODULE_BUILD_DIR: the build tree's modules");
	/* in this order: the failures before the one load that stays */
	g_test_add_func("/modules/idle-maps-none", test_idle_maps_none);
	g_test_add_func("/modules/missing", test_missing);
	g_test_add_func("/modules/broken", test_broken);
	g_test_add_func("/modules/auto-by-kernel-view", test_auto_by_kernel_view);
	g_test_add_func("/modules/qmi-maps-libqmi-only", test_qmi_maps_libqmi_only);
	return g_test_run();
}
