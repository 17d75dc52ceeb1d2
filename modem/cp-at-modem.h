/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The AT commands cellprov needs from a module, each answer parsed
 * strictly (a malformed answer is CP_ERR_MODEM, never a guess):
 *
 *   card     +CSIM (TS 27.007 §8.17), +CCHO (§8.45), +CGLA (§8.43),
 *            +CCHC (§8.46); the ICCID through the vendor commands
 *            (+CCID u-blox SARA-R4/R5, Telit; +QCCID Quectel
 *            BG96/EC25; +CICCID SIMCom SIM7600, answering "+ICCID:"),
 *            then the standard +CRSM READ BINARY of EF.ICCID (§8.18);
 *            +CIMI (§7.1)
 *   APN      +CGDCONT (§10.1.1)
 *   reset    +CFUN (§8.2): 1,1 resets the module, which re-enumerates
 *   network  +CREG (§7.2), +CEREG (§10.1.22), +C5GREG (§10.1, Rel-15):
 *            set (n=3 for the reject cause, else 2), read and URCs
 *
 * The async calls follow GIO (GTask, GCancellable); errors are CP_ERROR
 * 0x05xx codes: CP_ERR_MODEM (an error result or a malformed answer),
 * CP_ERR_MODEM_TIMEOUT, CP_ERR_MODEM_GONE (from the port), CP_ERR_CARD_ABSENT
 * (+CME ERROR 10, 13: no SIM, SIM failure), CP_ERR_APN (an APN that
 * cannot be sent), CP_ERR_REG_DENIED and CP_ERR_REG_TIMEOUT.
 */
#pragma once

#include <gio/gio.h>

#include "cp-at-port.h"

/* ---- pure parsers (unit-tested) ---------------------------------------- */

typedef enum {
	CP_AT_REG_CREG,
	CP_AT_REG_CEREG,
	CP_AT_REG_C5GREG,
	CP_AT_REG_N,
} CpAtRegKind;

/* <stat> of TS 27.007 §7.2/§10.1.22 */
typedef enum {
	CP_AT_STAT_NOT_SEARCHING = 0,
	CP_AT_STAT_HOME = 1,
	CP_AT_STAT_SEARCHING = 2,
	CP_AT_STAT_DENIED = 3,
	CP_AT_STAT_UNKNOWN = 4,
	CP_AT_STAT_ROAMING = 5,
} CpAtStat;

typedef struct {
	CpAtRegKind kind;
	int n;               /* the read answer's <n>; -1 in a URC */
	int stat;            /* 0-11 */
	char area[7];        /* <lac>/<tac> hex, "" if absent */
	char ci[10];         /* <ci> hex, "" if absent */
	int act;             /* <AcT>, -1 if absent */
	int cause_type;      /* 0: EMM/5GMM/MM cause (TS 24.301/24.501/24.008), 1: vendor; -1 absent */
	int reject_cause;    /* -1 if absent */
} CpAtReg;

/* "+CEREG: ..." (read answer or URC) into reg; FALSE with CP_ERR_MODEM. */
gboolean cp_at_parse_registration(const char *line, CpAtReg *reg, GError **error);
/* Registered: home, roaming, or "CSFB not preferred" (9, 10). */
gboolean cp_at_stat_registered(int stat);
const char *cp_at_reg_name(CpAtRegKind kind);

/* "+CSIM: <length>,"<hex>"" (and +CGLA): the response APDU, at least SW1 SW2. */
GBytes *cp_at_parse_apdu_answer(const char *line, const char *prefix, GError **error);
/* "<sessionid>" or "+CCHO: <sessionid>": 1-19 (ETSI TS 102 221 §11.1.17: up to 19 channels). */
gboolean cp_at_parse_channel(const char *line, guint *channel, GError **error);
/* An ICCID answer of +CCID/+QCCID/+ICCID (prefix given): 18-20 digits, a
 * trailing F pad dropped. Newly allocated, or NULL with CP_ERR_MODEM. */
char *cp_at_parse_iccid(const char *line, const char *prefix, GError **error);
/* The ICCID from EF.ICCID's 10 bytes in hex, nibble-swapped (+CRSM). */
char *cp_at_iccid_from_ef(const char *hex, GError **error);
/* +CIMI: 6-15 digits. */
char *cp_at_parse_imsi(const char *line, GError **error);
/* "+CGDCONT: <cid>,"<PDP_type>","<APN>",...". */
gboolean cp_at_parse_cgdcont(const char *line, guint *cid, char **pdp_type, char **apn, GError **error);
/* An APN that can be quoted on an AT line: TS 23.003 §9.1 labels
 * (letters, digits, '-') joined by '.', at most 100 characters. */
gboolean cp_at_apn_valid(const char *apn);

/* ---- the module -------------------------------------------------------- */

#define CP_TYPE_AT_MODEM (cp_at_modem_get_type())
G_DECLARE_FINAL_TYPE(CpAtModem, cp_at_modem, CP, AT_MODEM, GObject)

/* Takes a reference on port and its URC callback. */
CpAtModem *cp_at_modem_new(CpAtPort *port);
CpAtPort *cp_at_modem_get_port(CpAtModem *m);
/* The latest registration of a kind seen (read answer or URC); NULL if none. */
const CpAtReg *cp_at_modem_get_registration(CpAtModem *m, CpAtRegKind kind);

/* AT until it answers (up to 3 tries: a module just back from a reset may
 * drop the first), ATV1 (verbose result codes), +CMEE=1 (numeric +CME
 * ERROR). The echo is left as the module has it. */
void cp_at_modem_setup(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_at_modem_setup_finish(CpAtModem *m, GAsyncResult *result, GError **error);

void cp_at_modem_get_iccid(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
char *cp_at_modem_get_iccid_finish(CpAtModem *m, GAsyncResult *result, GError **error);

void cp_at_modem_get_imsi(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
char *cp_at_modem_get_imsi_finish(CpAtModem *m, GAsyncResult *result, GError **error);

/* +CGMR (TS 27.007 §5.3): the firmware revision, printable, 1-128 bytes. */
void cp_at_modem_get_revision(CpAtModem *m, GCancellable *cancellable, GAsyncReadyCallback callback,
			      gpointer user_data);
char *cp_at_modem_get_revision_finish(CpAtModem *m, GAsyncResult *result, GError **error);
char *cp_at_parse_revision(const char *line, GError **error);

/* An APDU on the basic channel (+CSIM) or on a logical one (+CGLA,
 * channel > 0): the response, data || SW1 SW2. SW 61xx (GET RESPONSE)
 * and 6Cxx (Le again) are followed here, as a QMI modem does: the
 * caller sees the card's final answer. */
void cp_at_modem_apdu(CpAtModem *m, guint channel, GBytes *apdu, GCancellable *cancellable,
		      GAsyncReadyCallback callback, gpointer user_data);
GBytes *cp_at_modem_apdu_finish(CpAtModem *m, GAsyncResult *result, GError **error);

/* +CCHO: the channel (1-19), or 0 with an error. */
void cp_at_modem_open_channel(CpAtModem *m, GBytes *aid, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
guint cp_at_modem_open_channel_finish(CpAtModem *m, GAsyncResult *result, GError **error);

void cp_at_modem_close_channel(CpAtModem *m, guint channel, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_at_modem_close_channel_finish(CpAtModem *m, GAsyncResult *result, GError **error);

/* +CPIN? (TS 27.007 §8.3): the card's PIN state, "READY", "SIM PIN",
 * "SIM PUK"... (the <code> as the module gives it); +CME ERROR 10 or 13
 * is CP_ERR_CARD_ABSENT. */
void cp_at_modem_get_pin_state(CpAtModem *m, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
char *cp_at_modem_get_pin_state_finish(CpAtModem *m, GAsyncResult *result, GError **error);
/* "+CPIN: <code>": the code (upper-case letters, digits, spaces, '-'). */
char *cp_at_parse_pin_state(const char *line, GError **error);

/* +CGDCONT? : the APN of context cid ("" if it has none, NULL with an
 * error CP_ERR_APN if the context is not defined). */
void cp_at_modem_get_apn(CpAtModem *m, guint cid, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data);
char *cp_at_modem_get_apn_finish(CpAtModem *m, GAsyncResult *result, GError **error);

/* +CGDCONT=<cid>,"<pdp_type>","<apn>"; CP_ERR_APN for an APN that is
 * not valid or that the module refuses. */
void cp_at_modem_set_apn(CpAtModem *m, guint cid, const char *pdp_type, const char *apn,
			 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_at_modem_set_apn_finish(CpAtModem *m, GAsyncResult *result, GError **error);

/* +CFUN? */
void cp_at_modem_get_functionality(CpAtModem *m, GCancellable *cancellable,
				   GAsyncReadyCallback callback, gpointer user_data);
int cp_at_modem_get_functionality_finish(CpAtModem *m, GAsyncResult *result, GError **error);

/* +CFUN=<fun>[,1]: with reset the module restarts; its port vanishing
 * before the OK counts as done (the reset ran). */
void cp_at_modem_set_functionality(CpAtModem *m, guint fun, gboolean reset, GCancellable *cancellable,
				   GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_at_modem_set_functionality_finish(CpAtModem *m, GAsyncResult *result, GError **error);

/* Turns the registration URCs on (n=3 where the module has it, else 2;
 * +C5GREG and +CREG only where it has them), reads each, then waits up to
 * timeout_ms for a registered state. A denied state fails at once with
 * CP_ERR_REG_DENIED naming the reject cause when the module gives it. */
void cp_at_modem_wait_registered(CpAtModem *m, guint timeout_ms, GCancellable *cancellable,
				 GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_at_modem_wait_registered_finish(CpAtModem *m, GAsyncResult *result, GError **error);
