/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ModemManager driver. On most gateways ModemManager owns the modem;
 * this driver works with it instead of around it: it takes the modem from
 * ModemManager only while the USIM is written and the modem reset
 * (InhibitDevice; the QMI transport over qmi-proxy reaches the card), gives
 * it back, and does everything else through ModemManager (APN in the 3GPP
 * profile manager, enabling, registration, the IMSI check), so that
 * `mmcli -m any` ends up showing what the user expects.
 *
 * ModemManager drops an inhibition when the bus name that asked for it
 * goes away: a daemon that dies mid-way leaves the modem to ModemManager.
 */
#pragma once

#include "cp-modem-driver.h"

/*
 * Whether ModemManager runs on the system bus and manages device (a
 * control port path such as /dev/cdc-wdm0, matched against the modem's
 * ports; or an equipment identifier, the IMEI). TRUE with *uid (the
 * device UID ModemManager inhibits by) when it does; FALSE without an
 * error when it does not (no bus, no ModemManager, not its modem); FALSE
 * with an error only when the question could not be asked.
 *
 * ModemManager shows a modem only once it has probed it: while it shows
 * none, or one still initialising, the answer waits (up to timeout
 * seconds) for the modem to appear and settle (disabled or further,
 * locked, failed). A port ModemManager does not take is answered at once
 * when it shows other modems, all settled; else after the timeout.
 */
void cp_mm_find_modem_async(const char *device, guint timeout, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mm_find_modem_finish(GAsyncResult *res, char **uid, GError **error);
