/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Milenage (3GPP TS 35.206) with OPc, and the AKA checks built on it that
 * the USIM model and the network model share (TS 33.102 6.3).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cp-error.h"

typedef struct {
	uint8_t f1[8];       /* MAC-A */
	uint8_t f1star[8];   /* MAC-S */
	uint8_t f2[8];       /* RES */
	uint8_t f3[16];      /* CK */
	uint8_t f4[16];      /* IK */
	uint8_t f5[6];       /* AK */
	uint8_t f5star[6];   /* AK* */
} CpMilenage;

CpError cp_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16]);

CpError cp_milenage(const uint8_t k[16], const uint8_t opc[16],
		    const uint8_t rand[16], const uint8_t sqn[6],
		    const uint8_t amf[2], CpMilenage *out);

/* Network side: AUTN = SQN xor AK || AMF || MAC-A, and XRES, CK, IK. */
CpError cp_aka_generate(const uint8_t k[16], const uint8_t opc[16],
			const uint8_t rand[16], const uint8_t sqn[6],
			const uint8_t amf[2], uint8_t autn[16],
			uint8_t xres[8], uint8_t ck[16], uint8_t ik[16]);

typedef enum {
	CP_AKA_OK,          /* res, ck, ik set; *sqn_ms updated */
	CP_AKA_MAC_FAIL,    /* MAC-A wrong: not our network (or wrong K) */
	CP_AKA_SYNC_FAIL,   /* SQN not fresh: auts set */
} CpAkaResult;

/*
 * USIM side: check AUTN against K/OPc and the highest SQN accepted so far
 * (*sqn_ms, 6 bytes; updated on success). A SQN not above *sqn_ms gives a
 * sync failure with AUTS = SQN_MS xor AK* || MAC-S (AMF 0000).
 */
CpAkaResult cp_aka_usim(const uint8_t k[16], const uint8_t opc[16],
			const uint8_t rand[16], const uint8_t autn[16],
			uint8_t sqn_ms[6], uint8_t res[8],
			uint8_t ck[16], uint8_t ik[16], uint8_t auts[14]);

/* Network side of a resync: recover SQN_MS from AUTS; false if MAC-S is wrong. */
bool cp_aka_resync(const uint8_t k[16], const uint8_t opc[16],
		   const uint8_t rand[16], const uint8_t auts[14],
		   uint8_t sqn_ms[6]);
