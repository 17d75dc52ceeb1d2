/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The profile the NFC and BLE benchmarks write (bench/nfc, bench/ble): one
 * NDEF record of the profile's media type around PROFILE-BYTES random
 * bytes, the same message over both, so that their figures compare.
 */
#pragma once

#include <glib.h>

#include "cp-buf.h"

/* Parses size (the command line's PROFILE-BYTES: 1 to CP_T4T_NDEF_MAX) and
 * encodes the message into out. */
gboolean cp_bench_profile_ndef(const char *size, CpBuf *out, GError **error);
