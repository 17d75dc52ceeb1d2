/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a driver module exports (cp-modem-driver.h); built into each
 * module with CP_MODEM_ENTRY naming its driver. */
#include "cp-config.h"
#include "cp-modem-driver.h"
#if CP_MODEM_ENTRY_MM
#include "cp-modem-mm.h"
#endif

#include <gmodule.h>

G_MODULE_EXPORT extern const CpModemModule cp_modem_module;

G_MODULE_EXPORT const CpModemModule cp_modem_module = {
	.version = CP_VERSION,
	.driver = &CP_MODEM_ENTRY,
#if CP_MODEM_ENTRY_MM
	.find_modem_async = cp_mm_find_modem_async,
	.find_modem_finish = cp_mm_find_modem_finish,
#endif
};
