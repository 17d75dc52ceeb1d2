/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process's one libnfc context, shared by every CpNfcTag and
 * CpNfcReader.
 *
 * libnfc 1.8 keeps its driver list in a global that nfc_init() fills and
 * nfc_exit() frees, whichever context is passed: one owner's nfc_exit()
 * would leave every other context of the process unable to open a device,
 * and two threads in nfc_init()/nfc_exit() race on the list. So the
 * context is made on the first reference and given back on the last,
 * under one lock.
 */
#pragma once

#include <nfc/nfc.h>

/* The shared context, or NULL when libnfc cannot be initialised; each
 * non-NULL return is given back with cp_nfc_context_release(). */
nfc_context *cp_nfc_context_acquire(void);
void cp_nfc_context_release(void);
