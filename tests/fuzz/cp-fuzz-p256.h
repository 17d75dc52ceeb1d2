/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What fuzz-p256-mbedtls signs and checks with: the shared fixed keys and
 * a message of its own; cp-fuzz-corpus signs its seed the same way. */
#pragma once

#include "cp-fuzz-keys.h"

static const char cp_fuzz_p256_message[] = "cellprov fuzz-p256-mbedtls";
