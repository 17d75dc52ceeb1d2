/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A programmable sysmoISIM card (SJA2 or SJA5 layout, see
 * docs/simulators.md), as the modem simulators' modems see it: MF with
 * EF.DIR and EF.ICCID, DF.SYSTEM with the 2G key file, ADF.USIM with
 * EF.IMSI, EF.AD, EF.SPN, EF.USIM_AUTH_KEY and EF.USIM_AUTH_KEY_2G (the
 * same file as DF.SYSTEM's), ADF.ISIM with its own auth key; access
 * conditions (updates and reading a key need ADM1; a wrong ADM1 counts
 * down and blocks), basic and logical channels, SELECT with or without
 * an FCP template, READ BINARY/RECORD answering a wrong Le as the card
 * does, and Milenage AUTHENTICATE with SQN checking.
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
#define CP_SIM_FID_AUTH_KEY_2G 0xAF22
#define CP_SIM_FID_DIR 0x2F00
#define CP_SIM_FID_SYSTEM 0xA515
#define CP_SIM_FID_SIM_AUTH_KEY 0x6F20

typedef struct _CpSimUsim CpSimUsim;

/* NULL on a malformed argument (with a message on stderr). The card is
 * CP_SIM_CARD_DEFAULT. */
CpSimUsim *cp_sim_usim_new(const char *iccid, const char *imsi, guint mnc_length,
			   const uint8_t k[16], const uint8_t opc[16],
			   const char *adm1, guint adm1_retries);

/* Card profiles (--card NAME): file sizes and identifiers of a real card. */
#define CP_SIM_CARD_DEFAULT "sysmoISIM-SJA5"
/* NULL-terminated names, the default first. */
const char *const *cp_sim_usim_cards(void);
/* As cp_sim_usim_new for the named card; NULL (with a message) if unknown. */
CpSimUsim *cp_sim_usim_new_card(const char *card, const char *iccid, const char *imsi,
				guint mnc_length, const uint8_t k[16], const uint8_t opc[16],
				const char *adm1, guint adm1_retries);
const char *cp_sim_usim_get_card(CpSimUsim *u);
/* The card's ATR (at most 33 bytes, ISO/IEC 7816-3 §8.2.1) into atr;
 * returns its length. */
gsize cp_sim_usim_get_atr(CpSimUsim *u, uint8_t atr[33]);

/*
 * How READ BINARY and READ RECORD answer an Le the file cannot fill
 * (Le '00' asks for 256 bytes, TS 102 221 10.1.3):
 * LENIENT: the bytes there are and 9000 (the model's historical default);
 * EXACT:   6Cxx, xx the length there is (a T=0 card, as the sysmoISIM;
 *          CP_SIM_LE_DEFAULT);
 * EOF:     the bytes there are and 6282 (end of file before Le bytes).
 * An offset past the end is 6B00 in every mode.
 */
typedef enum {
	CP_SIM_LE_LENIENT,
	CP_SIM_LE_EXACT,
	CP_SIM_LE_EOF,
} CpSimLe;

#define CP_SIM_LE_DEFAULT CP_SIM_LE_EXACT
/* A new card answers as CP_SIM_LE_DEFAULT. */
void cp_sim_usim_set_le(CpSimUsim *u, CpSimLe mode);
/* FALSE if name is none of lenient, exact, eof. */
gboolean cp_sim_le_from_string(const char *name, CpSimLe *mode);
void cp_sim_usim_free(CpSimUsim *u);
/* A card whose files have no short file identifier (TS 102 221 8.3: an
 * SFI is optional): FCPs without one, and READ or UPDATE BINARY naming
 * one answer 6A82 (file not found, 11.1.3.2 and 10.2.1.5). */
void cp_sim_usim_drop_sfi(CpSimUsim *u);
/* A card whose EF.DIR lists the USIM alone (its ISIM record empty, FF):
 * the modems list no ISIM, the engine finds none. */
void cp_sim_usim_dir_usim_only(CpSimUsim *u);

/* Card power cycle: security state cleared, logical channels closed. */
void cp_sim_usim_reset(CpSimUsim *u);

/* Opens a logical channel on the application whose AID is aid, or starts
 * with aid if only one does (USIM or ISIM, as listed in EF.DIR); returns
 * the channel (1-3) or 0 with *sw set. */
guint cp_sim_usim_open_channel(CpSimUsim *u, const uint8_t *aid, gsize aid_len, guint16 *sw);
gboolean cp_sim_usim_close_channel(CpSimUsim *u, guint channel);

/* One command APDU; the response (data || SW1 SW2) is appended to out. */
void cp_sim_usim_apdu(CpSimUsim *u, guint channel, const uint8_t *apdu, gsize len, GByteArray *out);

/* The modem's own file access (QMI UIM Read Transparent): the same access
 * conditions as READ BINARY, without a selected channel. Returns the SW. */
guint16 cp_sim_usim_read(CpSimUsim *u, guint16 fid, guint16 offset, guint16 len, GByteArray *out);

/* The same with the QMI file path (3F00, 3F00 7FFF for the USIM, 3F00
 * A515 for DF.SYSTEM); n_path 0 searches ADF.USIM then the MF. */
guint16 cp_sim_usim_read_path(CpSimUsim *u, const guint16 *path, gsize n_path, guint16 fid,
			      guint16 offset, guint16 len, GByteArray *out);
/* Record number (1-based) of a linear fixed EF; len 0: the record length. */
guint16 cp_sim_usim_read_record(CpSimUsim *u, const guint16 *path, gsize n_path, guint16 fid,
				guint record, guint16 len, GByteArray *out);

typedef struct {
	gsize size;          /* bytes, records included */
	gsize record_len;    /* 0: transparent */
	guint n_records;
	gboolean read_adm1;  /* reading needs ADM1 */
	gboolean update_adm1;
} CpSimFileInfo;

/* FALSE if there is no such file. The FCP the card would send goes to fcp
 * when not NULL. */
gboolean cp_sim_usim_file_info(CpSimUsim *u, const guint16 *path, gsize n_path, guint16 fid,
			       CpSimFileInfo *info, GByteArray *fcp);

/* The modem's own AUTHENTICATE (what it sends during attach). */
CpAkaResult cp_sim_usim_authenticate(CpSimUsim *u, const uint8_t rand[16], const uint8_t autn[16],
				     uint8_t res[8], uint8_t auts[14]);

/* Decoded EF.IMSI; NULL when it does not hold a valid IMSI. */
char *cp_sim_usim_get_imsi(CpSimUsim *u);
guint cp_sim_usim_get_mnc_length(CpSimUsim *u);
const char *cp_sim_usim_get_iccid(CpSimUsim *u);
guint cp_sim_usim_get_adm1_retries(CpSimUsim *u);

/* key=value lines: the card, every EF in hex (each copy of the key:
 * ef-usim-auth-key, ef-usim-auth-key-2g, ef-sim-auth-key,
 * ef-isim-auth-key), ADM1 retries, counters. */
void cp_sim_usim_dump(CpSimUsim *u, GString *out);

/* TS 31.102 4.2.2 encoding of an IMSI into 9 bytes; FALSE if not 6-15 digits. */
gboolean cp_sim_imsi_encode(const char *imsi, uint8_t out[9]);
char *cp_sim_imsi_decode(const uint8_t *ef, gsize len);
