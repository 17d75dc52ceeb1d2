/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the QMI driver shares: its transport and its reset (for the
 * ModemManager driver, which reaches the card through qmi-proxy), and the
 * error conversion (for cp-qmi-uim-raw). */
#pragma once

#include <libqmi-glib.h>

#include "cp-glib.h"
#include "cp-modem-driver.h"

extern const CpCardTransport cp_qmi_transport;

/* DMS Set Operating Mode: offline, then reset (the modem reads the card
 * again). Need the transport's port open. */
void cp_qmi_offline(CpModemRun *run);
void cp_qmi_reset(CpModemRun *run);

/* A libqmi error as CP_ERROR (timeouts, a removed device, QMI errors);
 * cancellation stays G_IO_ERROR_CANCELLED. Takes error. */
GError *cp_qmi_error_convert(GError *error);
