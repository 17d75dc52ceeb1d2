/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cellprovd's modem drivers as modules (cp-modem-driver.h): each loaded
 * the first time an operation needs it, then kept (its libraries register
 * GTypes, which cannot be unloaded). */
#define G_LOG_DOMAIN "cellprov-modem"

#include "cp-config.h"
#include "cp-modem-driver.h"

#include <gmodule.h>
#include <string.h>

static const char *const names[] = { "qmi", "mm", "at", "mbim" };
static const CpModemModule *loaded[G_N_ELEMENTS(names)];

static const CpModemModule *
load(const char *name, GError **error)
{
	const char *dir = g_getenv("CELLPROV_MODULE_DIR");
	g_autofree char *file = g_strdup_printf("cellprov-modem-%s.so", name);
	g_autofree char *path = g_build_filename(dir && *dir ? dir : CP_MODULE_DIR, file, NULL);
	const CpModemModule *m = NULL;
	GModule *module;

	if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
		cp_set_error(error, CP_ERR_MODEM, "modem: the %s backend is not installed (no %s)",
			     name, path);
		return NULL;
	}
	/* every symbol now, local: a module the engine cannot serve fails
	 * here rather than in the middle of a provisioning */
	module = g_module_open(path, G_MODULE_BIND_LOCAL);
	if (!module) {
		cp_set_error(error, CP_ERR_MODEM, "modem: the %s backend's module does not load: %s",
			     name, g_module_error());
		return NULL;
	}
	if (!g_module_symbol(module, "cp_modem_module", (gpointer *)&m) || !m || !m->version ||
	    !m->driver || !m->driver->name || strcmp(m->driver->name, name) != 0) {
		cp_set_error(error, CP_ERR_MODEM, "modem: %s is not a cellprov %s backend module",
			     path, name);
		g_module_close(module);
		return NULL;
	}
	if (strcmp(m->version, CP_VERSION) != 0) {
		cp_set_error(error, CP_ERR_MODEM, "modem: %s is of cellprov %s, this is %s",
			     path, m->version, CP_VERSION);
		g_module_close(module);
		return NULL;
	}
	g_module_make_resident(module);
	g_debug("modem: loaded %s", path);
	return m;
}

const CpModemModule *
cp_modem_module_get(const char *name, GError **error)
{
	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		if (strcmp(names[i], name) != 0)
			continue;
		if (!loaded[i])
			loaded[i] = load(name, error);
		return loaded[i];
	}
	cp_set_error(error, CP_ERR_MODEM, "modem: no backend %s", name);
	return NULL;
}
