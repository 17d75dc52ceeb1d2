/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The card under ModemManager for modems whose primary port is not QMI:
 * the ModemManager driver (cp-modem-mm.c) reaches the card, while the
 * modem is inhibited, through the MBIM and AT drivers' transports
 * (cp-modem-mbim.c through mbim-proxy, cp-modem-at.c on the tty
 * ModemManager let go); this file has what it does otherwise: the modem's
 * own offline and reset in each protocol, and the AT ICCID (+CCID).
 *
 * The port the transports open is cp_mm_port_path(run): the modem's port
 * of that protocol, as ModemManager lists it.
 */
#pragma once

#include "cp-config.h"
#include "cp-modem-driver.h"

/* The port the transports open (set by cp-modem-mm.c). */
const char *cp_mm_port_path(CpModemRun *run);

/* The wait for the port's node after a reset, which cp-modem-mm.c keeps
 * (cp_mm_node_wait) and stops before the transport closes. */
typedef struct _CpMmNodeWait CpMmNodeWait;
CpMmNodeWait **cp_mm_node_wait(CpModemRun *run);
void cp_mm_node_wait_stop(CpModemRun *run);

#if CP_HAVE_MBIM
/* Radio off; the MBIM reset (DEVICE_RESET, or the radio off and on). A
 * module that re-enumerates is waited for until its node is back. */
void cp_mm_mbim_offline(CpModemRun *run);
void cp_mm_mbim_reset(CpModemRun *run);
#endif

/* +CCID; +CFUN=4; +CFUN=1,1 and the tty back. */
void cp_mm_at_read_iccid(CpModemRun *run);
void cp_mm_at_offline(CpModemRun *run);
void cp_mm_at_reset(CpModemRun *run);
