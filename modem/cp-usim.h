/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * USIM card drivers: where a programmable card keeps the subscription and
 * how it is encoded. A driver is a description (application, files, ADM1
 * reference, encoders), not code that talks to the card: the backend runs
 * the same APDU sequence for every driver, so adding a card is adding a
 * table. Pure code, unit-tested.
 */
#pragma once

#include <glib.h>

#include "cp-secret.h"

typedef enum {
	CP_USIM_EF_IMSI,
	CP_USIM_EF_AD,
	CP_USIM_EF_SPN,
	CP_USIM_EF_AUTH_KEY,
	/* the other copies of the key (a driver whose card has none leaves
	 * their size 0) */
	CP_USIM_EF_AUTH_KEY_2G,       /* the 2G key file */
	CP_USIM_EF_ISIM_AUTH_KEY,     /* ADF.ISIM's key file */
	CP_USIM_N_EF,
} CpUsimEf;

/* Where a file is: the DF the channel is taken to before its SELECT. */
typedef enum {
	CP_USIM_DF_USIM,              /* ADF.USIM, the channel's application */
	CP_USIM_DF_SYSTEM,            /* MF/A515, a proprietary DF (sysmoISIM) */
	CP_USIM_DF_ISIM,              /* ADF.ISIM, by its AID (EF.DIR's) */
	CP_USIM_N_DF,
} CpUsimDf;

/* What the subscription puts on the card. */
typedef struct {
	const char *imsi;
	guint mnc_length;
	const char *spn;
	const CpSecret *k;
	const CpSecret *opc;
} CpUsimValues;

#define CP_USIM_EF_MAX 64

typedef struct {
	const char *name;              /* config name, e.g. "sysmo-isim-sja2" */
	const char *description;
	const guint8 *aid;             /* the USIM application (prefix is enough to select) */
	gsize aid_len;
	guint8 adm1_p2;                /* VERIFY reference of ADM1 */
	guint16 fid[CP_USIM_N_EF];     /* in df[] */
	CpUsimDf df[CP_USIM_N_EF];
	/* bytes written (and read for the backup; the file may be larger);
	 * 0: the card has no such file */
	gsize size[CP_USIM_N_EF];
	/* The short file identifier (TS 102 221 8.3) a file has in its DF,
	 * for READ and UPDATE BINARY without a SELECT (11.1.3, 11.1.4);
	 * 0: none. The engine falls back to SELECT where the card refuses. */
	guint8 sfi[CP_USIM_N_EF];
	/* The order the files are written in: each of the CP_USIM_N_EF
	 * files once; those of size 0 are skipped. The backup reads them in
	 * the reverse order, so that the file read last is the one written
	 * first, still selected, and the files of one DF come together. */
	CpUsimEf order[CP_USIM_N_EF];
	/* ADF.ISIM's AID, when EF.DIR lists none (a prefix is enough to
	 * select it); NULL: the card has no ISIM */
	const guint8 *isim_aid;
	gsize isim_aid_len;
	/* A file only this card has: a successful SELECT identifies it. */
	guint16 probe_fid;
	/* Encode ef for v into out (size[ef] bytes); old is the current
	 * content (size[ef] bytes), for bytes the subscription does not own. */
	gboolean (*encode)(CpUsimEf ef, const CpUsimValues *v, const guint8 *old,
			   guint8 *out, GError **error);
} CpUsimDriver;

/* NULL-terminated list of the drivers of this build. */
const CpUsimDriver *const *cp_usim_drivers(void);
/* NULL if name is unknown. */
const CpUsimDriver *cp_usim_driver_find(const char *name);

const char *cp_usim_ef_name(CpUsimEf ef);

/* TS 31.102 4.2.2 EF.IMSI (9 bytes); FALSE unless 6-15 digits. */
gboolean cp_usim_imsi_encode(const char *imsi, guint8 out[9]);
/* NULL unless the bytes hold a valid IMSI. */
char *cp_usim_imsi_decode(const guint8 *ef, gsize len);
/* TS 31.102 4.2.12 EF.SPN (17 bytes): display condition from old[0], the
 * name in the GSM 7-bit default alphabet, unpacked, padded with FF, cut at
 * 16 characters; UCS2 (0x80) for a name outside it (cut at 7 characters).
 * FALSE if the name is empty or not UTF-8. */
gboolean cp_usim_spn_encode(const char *name, guint8 display_condition, guint8 out[17]);
/* ICCID from EF.ICCID (BCD, nibbles swapped); NULL if not BCD. */
char *cp_usim_iccid_decode(const guint8 *ef, gsize len);

/* Status word helpers. */
static inline guint16
cp_usim_sw(const guint8 *resp, gsize len)
{
	return len >= 2 ? (guint16)(resp[len - 2] << 8 | resp[len - 1]) : 0;
}
