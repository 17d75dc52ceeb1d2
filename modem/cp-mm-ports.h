/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The card under ModemManager for modems whose primary port is not QMI:
 * the transports the ModemManager driver (cp-modem-mm.c) uses while the
 * modem is inhibited, on the MBIM module (cp-mbim.h, through mbim-proxy)
 * and on the AT module (cp-at-modem.h, the tty ModemManager let go), and
 * the modem's own offline and reset in each protocol.
 *
 * The port they open is cp_mm_port_path(run): the modem's port of that
 * protocol, as ModemManager lists it.
 */
#pragma once

#include "cp-config.h"
#include "cp-modem-driver.h"

/* The port the transports of this file open (set by cp-modem-mm.c). */
const char *cp_mm_port_path(CpModemRun *run);

#if CP_HAVE_MBIM
extern const CpCardTransport cp_mm_mbim_transport;
/* Radio off; the MBIM reset (DEVICE_RESET, or the radio off and on). A
 * module that re-enumerates is waited for until its node is back. */
void cp_mm_mbim_offline(CpModemRun *run);
void cp_mm_mbim_reset(CpModemRun *run);
#endif

extern const CpCardTransport cp_mm_at_transport;
/* +CFUN=4; +CFUN=1,1 and the tty back. */
void cp_mm_at_offline(CpModemRun *run);
void cp_mm_at_reset(CpModemRun *run);
