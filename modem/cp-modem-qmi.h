/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal helpers of the QMI backend. */
#pragma once

#include <libqmi-glib.h>

#include "cp-glib.h"

/* A libqmi error as CP_ERROR (timeouts, a removed device, QMI errors);
 * cancellation stays G_IO_ERROR_CANCELLED. Takes error. */
GError *cp_qmi_error_convert(GError *error);
