/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A programmable USIM of the sysmoISIM-SJA2 class, as the QMI simulator's
 * modem sees it: MF with EF.ICCID, ADF.USIM with EF.IMSI, EF.AD, EF.SPN
 * and the proprietary EF.USIM_AUTH_KEY, access conditions (updates and
 * reading the key need ADM1; a wrong ADM1 counts down and blocks), basic
 * and logical channels, and Milenage AUTHENTICATE with SQN checking.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "cp-milenage.h"

#define CP_SIM_FID_ICCID 0x2FE2
#define CP_SIM_FID_IMSI 0x6F07
#define CP_SIM_FID_AD 0x6FAD
#define CP_SIM_FID_SPN 0x6F46
#define CP_SIM_FID_AUTH_KEY 0xAF20

typedef struct _CpSimUsim CpSimUsim;

/* NULL on a malformed argument (with a message on stderr). */
CpSimUsim *cp_sim_usim_new(const char *iccid, const char *imsi, guint mnc_length,
			   const uint8_t k[16], const uint8_t opc[16],
			   const char *adm1, guint adm1_retries);
void cp_sim_usim_free(CpSimUsim *u);

/* Card power cycle: security state cleared, logical channels closed. */
void cp_sim_usim_reset(CpSimUsim *u);

/* Opens a logical channel on the application whose AID starts with aid;
 * returns the channel (1-3) or 0 with *sw set. */
guint cp_sim_usim_open_channel(CpSimUsim *u, const uint8_t *aid, gsize aid_len, guint16 *sw);
gboolean cp_sim_usim_close_channel(CpSimUsim *u, guint channel);

/* One command APDU; the response (data || SW1 SW2) is appended to out. */
void cp_sim_usim_apdu(CpSimUsim *u, guint channel, const uint8_t *apdu, gsize len, GByteArray *out);

/* The modem's own file access (QMI UIM Read Transparent): the same access
 * conditions as READ BINARY, without a selected channel. Returns the SW. */
guint16 cp_sim_usim_read(CpSimUsim *u, guint16 fid, guint16 offset, guint16 len, GByteArray *out);

/* The modem's own AUTHENTICATE (what it sends during attach). */
CpAkaResult cp_sim_usim_authenticate(CpSimUsim *u, const uint8_t rand[16], const uint8_t autn[16],
				     uint8_t res[8], uint8_t auts[14]);

/* Decoded EF.IMSI; NULL when it does not hold a valid IMSI. */
char *cp_sim_usim_get_imsi(CpSimUsim *u);
guint cp_sim_usim_get_mnc_length(CpSimUsim *u);
const char *cp_sim_usim_get_iccid(CpSimUsim *u);
guint cp_sim_usim_get_adm1_retries(CpSimUsim *u);

/* key=value lines: every EF in hex, ADM1 retries, counters. */
void cp_sim_usim_dump(CpSimUsim *u, GString *out);

/* TS 31.102 4.2.2 encoding of an IMSI into 9 bytes; FALSE if not 6-15 digits. */
gboolean cp_sim_imsi_encode(const char *imsi, uint8_t out[9]);
char *cp_sim_imsi_decode(const uint8_t *ef, gsize len);
