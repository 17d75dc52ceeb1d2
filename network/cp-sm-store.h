/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SM's store: owner bindings, attestation counters, provisionings,
 * commands, transfer tokens (hashed) and the pending message of each
 * device, in SQLite or PostgreSQL (cp-store.h), its schema and its
 * migrations. The SM holds no key: the tokens are SHA-256 hashes and a
 * pending message is what the device itself receives (its credentials
 * sealed to the device key), so nothing here needs the key-encryption
 * key the AUSF's store has.
 */
#pragma once

#include <glib.h>

#include "cp-store.h"

/* A companion of the companions file: who the owners of bindings that
 * schema version 2 migrated from provisionings are. */
typedef struct {
	const char *name;
	const char *supi;
} CpSmOwner;

/*
 * Open (spec as cp_store_open()) and migrate. Claims under way
 * ('claiming') for longer than claim_timeout seconds are dropped: their
 * SM process is gone (a claim in another live SM process is younger).
 */
CpStore *cp_sm_store_open(const char *spec, const CpSmOwner *owners, gsize n_owners,
			  guint64 claim_timeout, GError **error);
