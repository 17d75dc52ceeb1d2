/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The network side of the QMI simulator: the subscribers the AUSF/UDM
 * exported (IMSI, K_usim, OPc, SQN), and an attach that runs AKA against
 * the USIM model and registers only when RES matches XRES.
 */
#pragma once

#include <glib.h>

#include "cp-sim-usim.h"

typedef enum {
	CP_SIM_ATTACH_REGISTERED,
	CP_SIM_ATTACH_UNKNOWN_SUBSCRIBER,  /* IMSI not in the subscriber file */
	CP_SIM_ATTACH_AUTH_REJECT,         /* MAC failure on the card, or RES != XRES */
	CP_SIM_ATTACH_NO_IMSI,             /* EF.IMSI holds no IMSI */
} CpSimAttach;

typedef struct _CpSimNetwork CpSimNetwork;

CpSimNetwork *cp_sim_network_new(const char *plmn, const char *name);
void cp_sim_network_free(CpSimNetwork *n);

/* Subscriber file: '#' comments, "<imsi> <K hex> <OPc hex> <SQN hex>" lines.
 * An IMSI may have several lines: one key set each (the AUSF's valid key
 * generations, newest first); the attach tries each in that order. */
gboolean cp_sim_network_load(CpSimNetwork *n, const char *path, GError **error);
/* The file changed while the network runs: key sets of path not known yet
 * join, known ones keep their SQN, and those of the file's subscribers
 * that path no longer has leave (retired or removed at the AUSF);
 * subscribers added with cp_sim_network_add stay. *added, *removed: key
 * sets that joined and left. */
gboolean cp_sim_network_load_new(CpSimNetwork *n, const char *path, guint *added, guint *removed,
				 GError **error);
/* One subscriber given on the command line. */
gboolean cp_sim_network_add(CpSimNetwork *n, const char *imsi, const char *k_hex,
			    const char *opc_hex, const char *sqn_hex, GError **error);

/* Attach with the card: AKA (with one resynchronisation after an AUTS). */
CpSimAttach cp_sim_network_attach(CpSimNetwork *n, CpSimUsim *u);

const char *cp_sim_network_get_plmn(CpSimNetwork *n);
const char *cp_sim_network_get_name(CpSimNetwork *n);
const char *cp_sim_attach_name(CpSimAttach a);
void cp_sim_network_dump(CpSimNetwork *n, GString *out);
