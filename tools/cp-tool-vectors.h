/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cp-error.h"

/*
 * What the published vectors hold that cannot be made again byte for
 * byte: ECDSA signatures are randomised, and so are the operator's
 * certificates, which carry one. Each given value is checked (it must sign
 * exactly the bytes it signs here, or certify exactly the key) before it
 * replaces a fresh one: that is how the published file is reproduced.
 */
typedef struct {
	const uint8_t *att_signature;   /* the device record's */
	size_t att_signature_len;
	const uint8_t *op_root_cert;    /* DER */
	size_t op_root_cert_len;
	const uint8_t *op_sm_cert;      /* DER */
	size_t op_sm_cert_len;
	const uint8_t *op_signature;    /* the profile's */
	size_t op_signature_len;
	const uint8_t *receipt_signature;  /* the device's, on the receipt */
	size_t receipt_signature_len;
	const uint8_t *command_signature;  /* the SM's, on the decommission command */
	size_t command_signature_len;
} CpToolVectorsPublished;

/*
 * Write the published test vectors (docs/test-vectors/cellprov-v2.txt) to
 * out, and a step-by-step account of the flow to explain (NULL: quiet).
 * published NULL, or any field of it NULL: made fresh.
 */
CpError cp_tool_vectors(FILE *out, FILE *explain, const CpToolVectorsPublished *published);
