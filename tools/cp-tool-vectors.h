/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cp-error.h"

/*
 * Write the published test vectors (docs/test-vectors/cellprov-v1.txt) to
 * out, and a step-by-step account of the flow to explain (NULL: quiet).
 * ECDSA signatures are randomised, so the device record's signature is
 * made fresh unless sig (a signature of the same bytes, checked here) is
 * given: that is how the published file is reproduced byte for byte.
 */
CpError cp_tool_vectors(FILE *out, FILE *explain, const uint8_t *sig, size_t sig_len);
