/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An operator for tests: a root CA and the SM's signing certificate made
 * afresh (cp_cert_make), the chain a profile carries (signing certificate,
 * then the root, as the trust-on-first-use mode needs), the root as a trust
 * anchor and its pin.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp-crypto.h"

typedef struct {
	CpKey *root_key;
	CpKey *sm_key;
	uint8_t root[CP_CHAIN_MAX];     /* the root certificate, DER */
	size_t root_len;
	uint8_t chain[CP_CHAIN_MAX];    /* SM certificate || root */
	size_t chain_len;
	char *root_pem;
	CpAnchors *anchors;             /* the root alone */
	uint8_t pin[CP_SHA256_LEN];     /* SHA-256 of the root's SubjectPublicKeyInfo */
} CpTestOperator;

/* A new operator named org; false (with a message) if OpenSSL fails. */
bool cp_test_operator_make(CpTestOperator *op, const char *org);
void cp_test_operator_clear(CpTestOperator *op);
