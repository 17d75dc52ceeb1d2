/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The drivers linked in (cellprov-probe, the drivers' tests): the same
 * answers as the modules of cellprovd (cp-modem-module.c), from a table. */
#include "cp-config.h"
#include "cp-modem-driver.h"
#if CP_HAVE_MM
#include "cp-modem-mm.h"
#endif

#include <string.h>

static const CpModemModule builtin[] = {
	{ CP_VERSION, &cp_modem_driver_qmi, NULL, NULL },
	{ CP_VERSION, &cp_modem_driver_at, NULL, NULL },
#if CP_HAVE_MBIM
	{ CP_VERSION, &cp_modem_driver_mbim, NULL, NULL },
#endif
#if CP_HAVE_MM
	{ CP_VERSION, &cp_modem_driver_mm, cp_mm_find_modem_async, cp_mm_find_modem_finish },
#endif
};

const CpModemModule *
cp_modem_module_get(const char *name, GError **error)
{
	for (gsize i = 0; i < G_N_ELEMENTS(builtin); i++)
		if (strcmp(builtin[i].driver->name, name) == 0)
			return &builtin[i];
	cp_set_error(error, CP_ERR_MODEM, "modem: the %s backend is not in this build", name);
	return NULL;
}
