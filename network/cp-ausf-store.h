/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AUSF/UDM's store: subscribers (SUPI, device, companion, last key
 * generation) and their key sets (K_usim, OPc, SQN, one a generation), in
 * SQLite or PostgreSQL (cp-store.h).
 *
 * Keys at rest: K_usim and OPc are sealed with AES-256-GCM under the
 * operator's key-encryption key (KEK), a fresh 96-bit nonce each, the
 * row's identity (column, SUPI, generation) as additional data, so that a
 * value copied to another row or column does not open. A check value
 * sealed under the same KEK tells a wrong KEK at start. Neither the KEK
 * nor a clear key goes to the database or the log.
 */
#pragma once

#include <glib.h>

#include "cellprov.h"
#include "cp-store.h"

typedef struct _CpAusfStore CpAusfStore;

/* Open (spec as cp_store_open()), migrate, check the KEK (32 bytes; a KEK
 * other than the store's is CP_ERR_KEY). Keeps a reference to nothing:
 * kek is copied to the secure heap. */
CpAusfStore *cp_ausf_store_open(const char *spec, const CpSecret *kek, GError **error);
void cp_ausf_store_free(CpAusfStore *st);
CpStore *cp_ausf_store_db(CpAusfStore *st);

/* The device's subscriber under this companion and its last generation;
 * *supi NULL when it has none. */
gboolean cp_ausf_store_find(CpAusfStore *st, const char *id_hex, const char *companion, char **supi,
			    guint64 *generation, GError **error);
/* A free SUPI of [first, last] (15 digits each), taken for the device
 * under this companion (its subscriber row inserted at generation 0,
 * gone with the transaction if it rolls back), with no lock beyond the
 * row's own: concurrent transactions of several processes each get
 * another. CP_ERR_STATE when the range is used up. */
char *cp_ausf_store_take_supi(CpAusfStore *st, const char *first, const char *last, const char *id_hex,
			      const char *companion, GError **error);
gboolean cp_ausf_store_put_subscriber(CpAusfStore *st, const char *supi, const char *id_hex,
				      const char *companion, guint64 generation, GError **error);
/* A generation's key set, sealed; kept as it is if the generation has one. */
gboolean cp_ausf_store_put_keyset(CpAusfStore *st, const char *supi, guint64 generation,
				  const CpSecret *k_usim, const CpSecret *opc, const char *sqn, GError **error);
/* The subscriber file, "<imsi> <K> <OPc> <SQN>" a line (cleanse it). */
char *cp_ausf_store_export(CpAusfStore *st, GError **error);
/* -1: error, else how many key sets / subscribers went. */
int cp_ausf_store_retire(CpAusfStore *st, const char *supi, guint64 below, GError **error);
int cp_ausf_store_remove(CpAusfStore *st, const char *supi, GError **error);
