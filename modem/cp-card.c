/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The card engine: the plan, the decisions (cp-card.h) and the USIM steps
 * over the transport's APDU channel, written once for every modem driver.
 * The layout of the card comes from its driver (cp-usim.h).
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <string.h>

#include "cp-buf.h"
#include "cp-card.h"
#include "cp-modem-flow.h"

/* ---- the plan ---------------------------------------------------------- */

/* The order of the steps for a modem the driver owns throughout... */
static const CpModemStep order_owned[] = {
	CP_STEP_OPEN_MODEM, CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_MODEM_INFO, CP_STEP_ICCID,
	CP_STEP_OPEN_CHANNEL,
	CP_STEP_IDENTIFY, CP_STEP_PROBE, CP_STEP_VERIFY_ADM1, CP_STEP_READ_OLD, CP_STEP_READ_APN, CP_STEP_BACKUP,
	CP_STEP_WRITE, CP_STEP_CLOSE_CHANNEL, CP_STEP_APN, CP_STEP_OFFLINE, CP_STEP_RESET,
	CP_STEP_REGISTRATION, CP_STEP_CHECK_IMSI,
};

/* ... and for one a manager lends: the APN read before the take and set
 * after the give-back, the port open only in between */
static const CpModemStep order_lent[] = {
	CP_STEP_OPEN_MODEM, CP_STEP_READ_APN, CP_STEP_TAKE, CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS,
	CP_STEP_MODEM_INFO, CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL, CP_STEP_IDENTIFY, CP_STEP_PROBE, CP_STEP_VERIFY_ADM1, CP_STEP_READ_OLD,
	CP_STEP_BACKUP, CP_STEP_WRITE, CP_STEP_CLOSE_CHANNEL, CP_STEP_OFFLINE, CP_STEP_RESET,
	CP_STEP_CLOSE_PORT, CP_STEP_GIVE_BACK, CP_STEP_APN, CP_STEP_REGISTRATION, CP_STEP_CHECK_IMSI,
};

guint
cp_card_plan_build(CpPlanKind kind, guint32 have, CpModemStep out[CP_N_STEPS])
{
	/* what every card and every flow has */
	const guint32 card = CP_STEP_BIT(CP_STEP_CARD_STATUS) | CP_STEP_BIT(CP_STEP_ICCID) |
			     CP_STEP_BIT(CP_STEP_OPEN_CHANNEL) | CP_STEP_BIT(CP_STEP_IDENTIFY) |
			     CP_STEP_BIT(CP_STEP_VERIFY_ADM1) | CP_STEP_BIT(CP_STEP_READ_OLD) |
			     CP_STEP_BIT(CP_STEP_BACKUP) | CP_STEP_BIT(CP_STEP_WRITE) |
			     CP_STEP_BIT(CP_STEP_CLOSE_CHANNEL) | CP_STEP_BIT(CP_STEP_CHECK_IMSI) |
			     CP_STEP_BIT(CP_STEP_CLOSE_PORT);
	gboolean lent = (have & CP_STEP_BIT(CP_STEP_TAKE)) != 0;
	const CpModemStep *order = lent ? order_lent : order_owned;
	gsize n_order = lent ? G_N_ELEMENTS(order_lent) : G_N_ELEMENTS(order_owned);
	guint n = 0;

	have |= card;
	if (kind == CP_PLAN_PROBE) {
		/* nothing that writes, resets or spends an ADM1 attempt */
		have &= CP_STEP_BIT(CP_STEP_OPEN_MODEM) | CP_STEP_BIT(CP_STEP_TAKE) |
			CP_STEP_BIT(CP_STEP_OPEN_PORT) | CP_STEP_BIT(CP_STEP_CARD_STATUS) |
			CP_STEP_BIT(CP_STEP_ICCID) | CP_STEP_BIT(CP_STEP_OPEN_CHANNEL) |
			CP_STEP_BIT(CP_STEP_IDENTIFY) | CP_STEP_BIT(CP_STEP_CLOSE_CHANNEL) |
			CP_STEP_BIT(CP_STEP_CHECK_IMSI) | CP_STEP_BIT(CP_STEP_CLOSE_PORT) |
			CP_STEP_BIT(CP_STEP_GIVE_BACK);
		have |= CP_STEP_BIT(CP_STEP_MODEM_INFO) | CP_STEP_BIT(CP_STEP_PROBE);
	}
	if (kind != CP_PLAN_PROVISION && kind != CP_PLAN_PROBE) {
		/* the way back reads nothing and waits for no registration */
		have &= ~(CP_STEP_BIT(CP_STEP_READ_APN) | CP_STEP_BIT(CP_STEP_READ_OLD) |
			  CP_STEP_BIT(CP_STEP_BACKUP) | CP_STEP_BIT(CP_STEP_REGISTRATION) |
			  CP_STEP_BIT(CP_STEP_CHECK_IMSI));
		/* a rollback runs on the manager the provisioning reached */
		if (kind == CP_PLAN_ROLLBACK)
			have &= ~CP_STEP_BIT(CP_STEP_OPEN_MODEM);
	}
	for (gsize i = 0; i < n_order; i++)
		if (have & CP_STEP_BIT(order[i]))
			out[n++] = order[i];
	return n;
}

const char *
cp_card_step_name(CpModemStep s, gboolean restoring)
{
	switch (s) {
	case CP_STEP_OPEN_MODEM: return "reaching the modem";
	case CP_STEP_READ_APN: return "reading the current APN";
	case CP_STEP_TAKE: return "taking the modem from its manager";
	case CP_STEP_OPEN_PORT: return "opening the modem's port";
	case CP_STEP_CARD_STATUS: return "checking the card";
	case CP_STEP_ICCID: return "reading the ICCID";
	case CP_STEP_OPEN_CHANNEL: return "opening a logical channel to the USIM application";
	case CP_STEP_IDENTIFY: return "identifying the card";
	case CP_STEP_VERIFY_ADM1: return "verifying ADM1";
	case CP_STEP_READ_OLD: return "reading the current subscription";
	case CP_STEP_BACKUP: return "saving the backup";
	case CP_STEP_WRITE: return restoring ? "writing the old subscription back" : "writing the subscription";
	case CP_STEP_CLOSE_CHANNEL: return "closing the logical channel";
	case CP_STEP_APN: return restoring ? "putting the old APN back" : "setting the APN";
	case CP_STEP_OFFLINE: return "taking the modem offline";
	case CP_STEP_RESET: return "resetting the modem";
	case CP_STEP_CLOSE_PORT: return "closing the modem's port";
	case CP_STEP_GIVE_BACK: return "giving the modem back to its manager";
	case CP_STEP_REGISTRATION: return "waiting for registration";
	case CP_STEP_CHECK_IMSI: return "checking the IMSI the modem reports";
	case CP_STEP_PROBE: return "probing the card's files and ADM1's counter";
	case CP_STEP_MODEM_INFO: return "asking the modem's firmware and the card's ATR";
	case CP_N_STEPS: break;
	}
	return "?";
}

/* ---- decisions --------------------------------------------------------- */

/*
 * VERIFY without data spends nothing and tells how many attempts are left
 * (63Cx), or that ADM1 is verified already (9000). A wrong ADM1 never gets
 * the last attempt: a misconfigured device, or a journaled retry after a
 * crash, must not block the card, which only its issuer could unblock.
 */
CpCardAdm1
cp_card_adm1_decide(guint16 sw, guint *left_out)
{
	guint left;

	if (left_out)
		*left_out = 0;
	if (sw == 0x9000)
		return CP_CARD_ADM1_VERIFIED;
	if (sw == 0x6983 || sw == 0x63C0)
		return CP_CARD_ADM1_BLOCKED;
	if ((sw & 0xFFF0) != 0x63C0)
		return CP_CARD_ADM1_NO_COUNTER;
	left = sw & 0x0F;
	if (left_out)
		*left_out = left;
	if (left < 2)
		return CP_CARD_ADM1_LAST;
	return CP_CARD_ADM1_PRESENT;
}

GError *
cp_card_adm1_error(guint16 sw, gboolean presented)
{
	if (sw == 0x9000)
		return NULL;
	if (sw == 0x6983 || sw == 0x63C0)
		return g_error_new(CP_ERROR, CP_ERR_ADM1_BLOCKED, "ADM1 is blocked on this card");
	if ((sw & 0xFFF0) == 0x63C0 && presented)
		return g_error_new(CP_ERROR, CP_ERR_ADM1,
				   "the card rejected ADM1; %u attempts left before it blocks", sw & 0x0F);
	if ((sw & 0xFFF0) == 0x63C0)
		return g_error_new(CP_ERROR, CP_ERR_ADM1,
				   "the card has one ADM1 attempt left: not trying, as a wrong ADM1 "
				   "would block the card; check the configured ADM1");
	/* without the counter there is no way to know the try is safe */
	return cp_card_apdu_error(presented ? "VERIFY ADM1" : "VERIFY ADM1 (attempts left)", sw);
}

CpCardSw
cp_card_sw_class(guint16 sw)
{
	switch (sw >> 8) {
	case 0x90:
		return sw == 0x9000 ? CP_CARD_SW_OK : CP_CARD_SW_ERROR;
	case 0x61:
	case 0x91:
		return CP_CARD_SW_MORE;
	case 0x62:
	case 0x63:
		return CP_CARD_SW_WARNING;
	case 0x6C:
		return CP_CARD_SW_WRONG_LE;
	default:
		return CP_CARD_SW_ERROR;
	}
}

gboolean
cp_card_sw_selected(guint16 sw)
{
	CpCardSw c = cp_card_sw_class(sw);

	return c == CP_CARD_SW_OK || c == CP_CARD_SW_MORE;
}

GError *
cp_card_apdu_error(const char *what, guint16 sw)
{
	return g_error_new(CP_ERROR, CP_ERR_APDU, "%s: the card answered %04X", what, sw);
}

/* The value of tag in the BER-TLV template at t[0] (one-byte tags and
 * lengths, as in the FCP and EF.DIR); a template that says it is longer
 * than what came is read as far as it goes. */
static const guint8 *
template_find(const guint8 *t, gsize len, guint8 template_tag, guint8 tag, gsize *vlen)
{
	gsize end;

	if (!t || len < 2 || t[0] != template_tag || t[1] >= 0x80)
		return NULL;
	end = MIN(2 + (gsize)t[1], len);
	for (gsize i = 2; i + 2 <= end;) {
		guint8 l = t[i + 1];

		if (l > end - i - 2)
			return NULL;
		if (t[i] == tag) {
			*vlen = l;
			return t + i + 2;
		}
		i += 2 + l;
	}
	return NULL;
}

gboolean
cp_card_fcp_records(const guint8 *fcp, gsize len, gsize *record_len, guint *n_records)
{
	gsize l = 0;
	const guint8 *v = template_find(fcp, len, 0x62, 0x82, &l);

	/* descriptor byte, data coding, record length (2), records (1) */
	if (!v || l < 5 || (v[0] & 0x07) != 0x02)
		return FALSE;
	*record_len = (gsize)(v[2] << 8 | v[3]);
	*n_records = v[4];
	return *record_len > 0 && *n_records > 0;
}

static gboolean
dir_app_aid(const guint8 *record, gsize len, guint8 app, guint8 aid[16], gsize *aid_len)
{
	/* RID A000000087 (3GPP), application code 10 xx (TS 101 220 annex E) */
	const guint8 want[] = { 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, app };
	gsize l = 0;
	const guint8 *v = template_find(record, len, 0x61, 0x4F, &l);

	if (!v || l < sizeof(want) || l > 16 || memcmp(v, want, sizeof(want)) != 0)
		return FALSE;
	memcpy(aid, v, l);
	*aid_len = l;
	return TRUE;
}

gboolean
cp_card_dir_usim_aid(const guint8 *record, gsize len, guint8 aid[16], gsize *aid_len)
{
	return dir_app_aid(record, len, 0x02, aid, aid_len);
}

gboolean
cp_card_dir_isim_aid(const guint8 *record, gsize len, guint8 aid[16], gsize *aid_len)
{
	return dir_app_aid(record, len, 0x04, aid, aid_len);
}

gboolean
cp_card_channel_refused(const GError *error)
{
	return error && error->domain == CP_ERROR &&
	       (error->code == CP_ERR_MODEM || error->code == CP_ERR_APDU);
}

gboolean
cp_card_fcp_size(const guint8 *fcp, gsize len, gsize *size)
{
	static const guint8 tags[] = { 0x80, 0x81 };   /* file size, else total size */

	for (guint t = 0; t < G_N_ELEMENTS(tags); t++) {
		gsize l = 0, v = 0;
		const guint8 *p = template_find(fcp, len, 0x62, tags[t], &l);

		if (!p || l < 1 || l > 4)
			continue;
		for (gsize k = 0; k < l; k++)
			v = v << 8 | p[k];
		*size = v;
		return TRUE;
	}
	return FALSE;
}

guint8
cp_card_cla(guint channel)
{
	return channel < 4 ? (guint8)channel : (guint8)(0x40 | ((channel - 4) & 0x0F));
}

/* ---- the steps --------------------------------------------------------- */

static void
apdu(CpModemFlow *f, guint8 ins, guint8 p1, guint8 p2, const guint8 *data, gsize lc, gboolean le)
{
	guint8 buf[5 + 255 + 1];
	gsize n = 0;

	buf[n++] = cp_card_cla(f->channel);
	buf[n++] = ins;
	buf[n++] = p1;
	buf[n++] = p2;
	if (lc) {
		buf[n++] = (guint8)lc;
		memcpy(buf + n, data, lc);
		n += lc;
	}
	if (le)
		buf[n++] = 0x00;
	cp_modem_flow_transmit(f, buf, n);
	/* a VERIFY carries ADM1, an UPDATE the keys */
	cp_cleanse(buf, sizeof(buf));
}

static void
select_fid(CpModemFlow *f, guint16 fid)
{
	guint8 b[2] = { (guint8)(fid >> 8), (guint8)fid };

	apdu(f, 0xA4, 0x00, 0x0C, b, 2, FALSE);
}

/* The answer to a SELECT: TRUE if it worked, else the flow fails. */
static gboolean
selected(CpModemFlow *f, const char *what)
{
	guint16 sw = cp_modem_flow_sw(f);

	if (cp_card_sw_selected(sw))
		return TRUE;
	cp_modem_flow_fail(f, cp_card_apdu_error(what, sw));
	return FALSE;
}

enum {
	RD_FCP,        /* the SELECT (or its GET RESPONSE) answered */
	RD_DATA,       /* the READ BINARY answered */
};

static void
read_binary(CpModemFlow *f, gsize le)
{
	guint8 cmd[] = { cp_card_cla(f->channel), 0xB0, 0x00, 0x00, (guint8)le };

	cp_modem_flow_transmit(f, cmd, sizeof(cmd));
}

/*
 * A transparent EF, from sub == first on: SELECT with its FCP, then READ
 * BINARY of want bytes (0: the whole file), as the FCP sizes it (pySim's
 * way): a file larger than what the card driver writes (EF.USIM_AUTH_KEY
 * sized for TUAK) is read in its first want bytes; a smaller one is
 * CP_ERR_CARD_UNKNOWN. 61xx gets its GET RESPONSE, 6Cxx its READ again
 * with the length the card asks for, 6282 (end of file) is data. TRUE
 * once the content is in *data, *len (without the SW); FALSE while a
 * command is out or when the flow failed.
 */
static gboolean
read_ef(CpModemFlow *f, guint first, guint16 fid, gsize want, const char *what,
	const guint8 **data, gsize *len)
{
	guint8 b[2] = { (guint8)(fid >> 8), (guint8)fid };
	gsize size;
	guint16 sw;

	if (f->sub == first) {
		f->rd = RD_FCP;
		f->rd_again = FALSE;
		apdu(f, 0xA4, 0x00, 0x04, b, 2, TRUE);
		return FALSE;
	}
	*data = g_bytes_get_data(f->resp, len);
	sw = cp_usim_sw(*data, *len);
	*len -= 2;
	if (f->rd == RD_FCP) {
		if ((sw >> 8) == 0x61 && *len == 0 && !f->rd_again) {
			guint8 get[] = { cp_card_cla(f->channel), 0xC0, 0x00, 0x00, (guint8)sw };

			f->rd_again = TRUE;
			cp_modem_flow_transmit(f, get, sizeof(get));
			return FALSE;
		}
		if (!selected(f, what))
			return FALSE;
		if (!cp_card_fcp_size(*data, *len, &size)) {
			cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_APDU, "%s: no file size in the FCP", what));
			return FALSE;
		}
		if (size < want || size == 0) {
			cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_CARD_UNKNOWN,
							  "%s is %" G_GSIZE_FORMAT " bytes on this card, not %" G_GSIZE_FORMAT,
							  what, size, want));
			return FALSE;
		}
		f->rd = RD_DATA;
		f->rd_again = FALSE;
		f->rd_want = want ? want : MIN(size, 256);
		read_binary(f, f->rd_want);
		return FALSE;
	}
	if (cp_card_sw_class(sw) == CP_CARD_SW_WRONG_LE && !f->rd_again) {
		f->rd_again = TRUE;
		f->rd_want = sw & 0xFF;
		read_binary(f, f->rd_want);
		return FALSE;
	}
	if ((sw != 0x9000 && sw != 0x6282) || *len != f->rd_want) {
		cp_modem_flow_fail(f, *len != f->rd_want && sw == 0x9000
				      ? g_error_new(CP_ERROR, CP_ERR_APDU, "%s: %" G_GSIZE_FORMAT " bytes read, not %"
						    G_GSIZE_FORMAT, what, *len, f->rd_want)
				      : cp_card_apdu_error(what, sw));
		return FALSE;
	}
	return TRUE;
}

/* What a card answers to a READ or UPDATE BINARY naming a file by an SFI
 * it does not give that file (TS 102 221 10.2.1.5, ISO/IEC 7816-4 5.6):
 * no such file, P1-P2 not understood, or an offset (a card reading b8
 * as part of it) outside the file. The file is then SELECTed. */
static gboolean
sfi_refused(guint16 sw)
{
	return sw == 0x6A82 || sw == 0x6A86 || sw == 0x6B00 || sw == 0x6981 || sw == 0x6A81;
}

/* ef's SFI where the driver names one the card has not refused; 0: none. */
static guint8
sfi_of(CpModemFlow *f, const CpUsimDriver *d, CpUsimEf ef)
{
	return (f->sfi_refused & (1u << ef)) ? 0 : d->sfi[ef];
}

enum {
	RD_SFI = RD_DATA + 1,   /* READ BINARY by the SFI answered */
	RD_CURRENT,             /* READ BINARY of the file still selected answered */
};

/*
 * One of the driver's files, in the DF the channel is at, from sub ==
 * f->file_sub on: READ BINARY by its SFI (P1 b8 = 1, TS 102 221 11.1.3.2)
 * where it has one, or of the current EF where it is still selected;
 * else, and where the card refuses the SFI, read_ef's SELECT and READ.
 * Read without the FCP, a file shorter than the driver writes answers
 * 6Cxx (T=0), 6282 or fewer bytes: CP_ERR_CARD_UNKNOWN as from the FCP.
 * The SFI leaves f->cur_ef unknown: only a SELECT sets it.
 */
static gboolean
read_file(CpModemFlow *f, const CpUsimDriver *d, CpUsimEf ef, const guint8 **data, gsize *len)
{
	const char *what = cp_usim_ef_name(ef);
	gsize want = d->size[ef];
	guint8 sfi = sfi_of(f, d, ef);
	guint16 sw;

	if (f->sub == f->file_sub && (sfi || f->cur_ef == (gint)ef)) {
		guint8 cmd[] = { cp_card_cla(f->channel), 0xB0, sfi ? (guint8)(0x80 | sfi) : 0x00, 0x00,
				 (guint8)want };

		f->rd = sfi ? RD_SFI : RD_CURRENT;
		f->rd_want = want;
		if (sfi)
			f->cur_ef = -1;
		cp_modem_flow_transmit(f, cmd, sizeof(cmd));
		return FALSE;
	}
	if (f->sub == f->file_sub || (f->rd != RD_SFI && f->rd != RD_CURRENT)) {
		if (f->sub == f->file_sub)
			f->cur_ef = -1;
		if (!read_ef(f, f->file_sub, d->fid[ef], want, what, data, len))
			return FALSE;
		f->cur_ef = (gint)ef;
		return TRUE;
	}
	*data = g_bytes_get_data(f->resp, len);
	sw = cp_usim_sw(*data, *len);
	*len -= 2;
	if (f->rd == RD_SFI && sfi_refused(sw)) {
		g_info("%s: the card refused its SFI %02X (%04X): selecting it", what, d->sfi[ef], sw);
		f->sfi_refused |= 1u << ef;
		f->file_sub = f->sub;
		return read_ef(f, f->file_sub, d->fid[ef], want, what, data, len);
	}
	if ((sw == 0x9000 || sw == 0x6282) && *len == want)
		return TRUE;
	if (sw == 0x6282 || sw == 0x9000 || (cp_card_sw_class(sw) == CP_CARD_SW_WRONG_LE && (sw & 0xFF) < want)) {
		gsize size = cp_card_sw_class(sw) == CP_CARD_SW_WRONG_LE ? (gsize)(sw & 0xFF) : *len;

		cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_CARD_UNKNOWN,
						  "%s is %" G_GSIZE_FORMAT " bytes on this card, not %" G_GSIZE_FORMAT,
						  what, size, want));
		return FALSE;
	}
	cp_modem_flow_fail(f, cp_card_apdu_error(what, sw));
	return FALSE;
}

static const CpUsimDriver *
usim_driver(CpModemFlow *f)
{
	const CpUsimDriver *want = f->run.modem->card;

	if (!want && f->card)
		want = f->card;
	if (!want && cp_modem_run_restoring(&f->run))
		want = cp_usim_driver_find(cp_modem_run_values(&f->run)->card);
	return want ? want : cp_usim_drivers()[0];
}

/* The AID to open: EF.DIR's, else the card driver's (a prefix is
 * enough for the cards it knows). */
static void
usim_aid(CpModemFlow *f, const guint8 **aid, gsize *len)
{
	const CpUsimDriver *d = f->run.modem->card ? f->run.modem->card : cp_usim_drivers()[0];

	if (f->aid_len) {
		*aid = f->aid;
		*len = f->aid_len;
	} else {
		*aid = d->aid;
		*len = d->aid_len;
	}
}

static void usim_reach(CpModemFlow *f, void (*opened)(CpModemFlow *f, GError *error));

/*
 * A modem that refuses UIM Open Logical Channel (Telit LE910C4 in QMI mode
 * answers AccessDenied: lpac issue 221) still passes APDUs on the basic
 * channel (UIM Send APDU without a channel): the USIM is selected there
 * instead, by its AID, as a terminal without logical channels does (TS
 * 102 221 11.1.1). The error says so when that fails too.
 */
static gboolean
channel_fallback(CpModemFlow *f, GError *error)
{
	if (f->basic_channel || !cp_card_channel_refused(error))
		return FALSE;
	g_message("the modem refused a logical channel (%s): selecting the USIM on the basic channel",
		  error->message);
	if (f->probe && !f->probe->channel_error)
		f->probe->channel_error = g_strdup(error->message);
	g_error_free(error);
	f->basic_channel = TRUE;
	f->channel = 0;
	f->channel_open = FALSE;
	return TRUE;
}

static void
usim_opened(CpModemFlow *f, GError *error)
{
	if (!error && !f->channel_open)
		error = g_error_new(CP_ERROR, CP_ERR_MODEM, "the modem opened no logical channel");
	if (error && channel_fallback(f, error)) {
		usim_reach(f, usim_opened);
		return;
	}
	if (error) {
		cp_modem_flow_fail(f, error);
		return;
	}
	f->at_df = CP_USIM_DF_USIM;
	f->cur_ef = -1;
	if (f->probe)
		f->probe->logical_channel = TRUE;
	cp_modem_flow_next(f);
}

enum {
	DIR_MF,        /* SELECT MF answered */
	DIR_LISTED,    /* the modem was asked for the card's applications */
	DIR_SELECT,    /* SELECT EF.DIR (with its FCP) answered */
	DIR_RECORD,    /* READ RECORD f->ef answered */
	DIR_OPEN,      /* the USIM selected on the basic channel */
};

/* A logical channel to the USIM (then opened), or its SELECT on the basic
 * channel for a transport without channels (answered as the next APDU). */
static void
usim_reach(CpModemFlow *f, void (*opened)(CpModemFlow *f, GError *error))
{
	const CpCardTransport *t = f->run.driver->transport;
	const guint8 *aid;
	gsize len;

	usim_aid(f, &aid, &len);
	if (t->open_channel && !f->basic_channel) {
		f->on_done = opened;
		t->open_channel(&f->run, aid, len);
		return;
	}
	f->channel = 0;
	apdu(f, 0xA4, 0x04, 0x0C, aid, len, FALSE);
}

/*
 * The USIM application: its full AID as the modem lists it (QMI's card
 * status, MBIM's application list: the modem read EF.DIR at its start),
 * else from EF.DIR (MF/2F00, read on the basic channel, as pySim and lpac
 * select it), then a logical channel to it, or a SELECT on the basic
 * channel. EF.DIR is read where the modem lists no ISIM beside the USIM
 * (a list that may leave applications out). A card without EF.DIR, or a
 * modem that refuses commands on the basic channel, gets the card
 * driver's AID.
 */
static void
applications_listed(CpModemFlow *f, GError *error)
{
	if (error) {
		cp_modem_flow_fail(f, error);
		return;
	}
	f->sub = 0;
	cp_modem_flow_again(f);
}

void
cp_card_open_usim(CpModemFlow *f)
{
	static const guint8 ef_dir[] = { 0x2F, 0x00 };
	const CpCardTransport *t = f->run.driver->transport;
	const guint8 *d;
	gsize len;
	guint16 sw;

	if (f->sub == 0 && !f->modem_aid_len && t->list_applications && f->dir != DIR_LISTED) {
		f->dir = DIR_LISTED;
		f->on_done = applications_listed;
		t->list_applications(&f->run);
		return;
	}
	if (f->sub == 0) {
		f->aid_len = 0;
		f->isim_aid_len = 0;
		f->dir_read = FALSE;
		f->at_df = -1;
		f->cur_ef = -1;
		f->path_pos = 0;
		f->channel = 0;
		if (f->modem_aid_len && f->modem_isim_aid_len) {
			/* the modem read EF.DIR at its start and lists what
			 * it found: the same records, no APDU */
			memcpy(f->aid, f->modem_aid, f->modem_aid_len);
			f->aid_len = f->modem_aid_len;
			memcpy(f->isim_aid, f->modem_isim_aid, f->modem_isim_aid_len);
			f->isim_aid_len = f->modem_isim_aid_len;
			f->dir_read = TRUE;
			f->dir = DIR_OPEN;
			f->apdu_soft = FALSE;
			g_info("the modem lists the USIM and the ISIM: EF.DIR is not read");
			usim_reach(f, usim_opened);
			return;
		}
		f->apdu_soft = TRUE;
		f->dir = DIR_MF;
		select_fid(f, 0x3F00);
		return;
	}
	sw = cp_modem_flow_sw(f);
	d = g_bytes_get_data(f->resp, &len);
	len = len >= 2 ? len - 2 : 0;
	switch (f->dir) {
	case DIR_MF:
		if (!cp_card_sw_selected(sw))
			break;
		f->dir = DIR_SELECT;
		apdu(f, 0xA4, 0x00, 0x04, ef_dir, 2, TRUE);
		return;
	case DIR_SELECT:
		if (!cp_card_sw_selected(sw) ||
		    !cp_card_fcp_records(d, len, &f->dir_record_len, &f->dir_records) ||
		    f->dir_record_len > 255)
			break;
		f->dir = DIR_RECORD;
		f->dir_read = TRUE;
		f->ef = 1;
		{
			guint8 cmd[] = { 0x00, 0xB2, 0x01, 0x04, (guint8)f->dir_record_len };

			cp_modem_flow_transmit(f, cmd, sizeof(cmd));
		}
		return;
	case DIR_RECORD:
		if (sw == 0x9000 && !f->aid_len)
			cp_card_dir_usim_aid(d, len, f->aid, &f->aid_len);
		if (sw == 0x9000 && !f->isim_aid_len)
			cp_card_dir_isim_aid(d, len, f->isim_aid, &f->isim_aid_len);
		/* until both applications are known, or the records end */
		if (sw != 0x9000 || (f->aid_len && f->isim_aid_len) || f->ef >= f->dir_records)
			break;
		f->ef++;
		{
			guint8 cmd[] = { 0x00, 0xB2, (guint8)f->ef, 0x04, (guint8)f->dir_record_len };

			cp_modem_flow_transmit(f, cmd, sizeof(cmd));
		}
		return;
	default:
		if (selected(f, f->basic_channel ? "SELECT ADF.USIM on the basic channel, after the modem "
				  "refused a logical channel" : "SELECT ADF.USIM")) {
			f->at_df = CP_USIM_DF_USIM;
			f->cur_ef = -1;
			cp_modem_flow_next(f);
		}
		return;
	}
	if (f->aid_len) {
		g_autofree char *hex = cp_hex_strdup(f->aid, f->aid_len);

		g_info("EF.DIR: the USIM is %s", hex);
	} else {
		g_info("no USIM in EF.DIR (%04X): the card driver's AID", sw);
	}
	f->apdu_soft = FALSE;
	f->dir = DIR_OPEN;
	usim_reach(f, usim_opened);
}

/* EF.ICCID (MF/2FE2) by APDUs on the basic channel, for a transport
 * without a request of its own: from the MF, READ BINARY by its SFI 02
 * of its 10 bytes (TS 102 221 13.2); where that does not answer them,
 * SELECT and READ BINARY as the FCP sizes it. */
void
cp_card_read_iccid(CpModemFlow *f)
{
	const guint8 *d;
	gsize len;

	f->channel = 0;
	if (f->sub == 0) {
		select_fid(f, 0x3F00);
		return;
	}
	if (f->sub == 1) {
		guint8 cmd[] = { 0x00, 0xB0, 0x80 | 0x02, 0x00, 10 };

		if (!selected(f, "MF"))
			return;
		cp_modem_flow_transmit(f, cmd, sizeof(cmd));
		return;
	}
	if (f->sub == 2) {
		d = g_bytes_get_data(f->resp, &len);
		if (len == 10 + 2 && cp_usim_sw(d, len) == 0x9000) {
			cp_modem_run_set_iccid(&f->run, d, 10);
			cp_modem_flow_check_iccid(f);
			return;
		}
		g_info("EF.ICCID by its SFI: the card answered %04X; selecting it", cp_usim_sw(d, len));
	}
	if (!read_ef(f, 2, 0x2FE2, 0, "EF.ICCID", &d, &len))
		return;
	cp_modem_run_set_iccid(&f->run, d, len);
	cp_modem_flow_check_iccid(f);
}

void
cp_card_identify(CpModemFlow *f)
{
	const CpUsimDriver *const *drivers = cp_usim_drivers();
	const CpUsimDriver *want = f->run.modem->card;

	/* sub counts APDUs answered; ef walks the driver list when detecting */
	if (!want && cp_modem_run_restoring(&f->run))
		want = cp_usim_driver_find(cp_modem_run_values(&f->run)->card);
	if (f->sub == 0) {
		f->card = want ? want : drivers[f->ef];
		f->cur_ef = -1;
		select_fid(f, f->card->probe_fid);
		return;
	}
	if (cp_card_sw_selected(cp_modem_flow_sw(f))) {
		g_info("card: %s", f->card->description);
		/* the file stays selected (a VERIFY leaves it): the backup
		 * reads it without a SELECT of its own */
		f->cur_ef = -1;
		for (guint i = 0; i < CP_USIM_N_EF && f->at_df == CP_USIM_DF_USIM; i++)
			if (f->card->size[i] && f->card->df[i] == CP_USIM_DF_USIM &&
			    f->card->fid[i] == f->card->probe_fid)
				f->cur_ef = (gint)i;
		cp_modem_flow_next(f);
		return;
	}
	if (!want && drivers[f->ef + 1]) {
		f->ef++;
		f->sub = 0;
		cp_modem_flow_again(f);
		return;
	}
	cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_CARD_UNKNOWN,
					  want ? "the card is not a %s (no file %04X in its USIM application)"
					       : "no USIM driver knows this card%s",
					  want ? want->description : "", want ? want->probe_fid : 0));
}

void
cp_card_verify_adm1(CpModemFlow *f)
{
	CpModem *m = f->run.modem;
	guint16 sw;
	guint left;

	switch (f->sub) {
	case 0:
		apdu(f, 0x20, 0x00, f->card->adm1_p2, NULL, 0, FALSE);
		return;
	case 1:
		sw = cp_modem_flow_sw(f);
		switch (cp_card_adm1_decide(sw, &left)) {
		case CP_CARD_ADM1_VERIFIED:
			g_info("ADM1 is verified already");
			cp_modem_flow_next(f);
			return;
		case CP_CARD_ADM1_PRESENT:
			g_info("ADM1: %u attempts left", left);
			apdu(f, 0x20, 0x00, f->card->adm1_p2, m->adm1->data, 8, FALSE);
			return;
		case CP_CARD_ADM1_LAST:
		case CP_CARD_ADM1_BLOCKED:
		case CP_CARD_ADM1_NO_COUNTER:
			break;
		}
		cp_modem_flow_fail(f, cp_card_adm1_error(sw, FALSE));
		return;
	default:
		sw = cp_modem_flow_sw(f);
		if (sw == 0x9000)
			cp_modem_flow_next(f);
		else
			cp_modem_flow_fail(f, cp_card_adm1_error(sw, TRUE));
	}
}

static const char *
df_name(CpUsimDf df)
{
	switch (df) {
	case CP_USIM_DF_USIM: return "ADF.USIM";
	case CP_USIM_DF_SYSTEM: return "DF.SYSTEM";
	case CP_USIM_DF_ISIM: return "ADF.ISIM";
	case CP_USIM_N_DF: break;
	}
	return "?";
}

/*
 * Takes the channel to df, one SELECT per call: ADF.USIM and ADF.ISIM by
 * their AIDs (EF.DIR's, else the driver's), DF.SYSTEM by the path MF,
 * A515 (as pySim reaches the 2G key). TRUE once there, with f->file_sub
 * the sub the file's own commands count from; FALSE while a SELECT is
 * out or when the flow failed.
 */
static gboolean
goto_df(CpModemFlow *f, CpUsimDf df)
{
	const guint8 *aid;
	gsize len;

	if (f->sub == 0)
		f->file_sub = 0;
	if (f->path_pos > 0 && !selected(f, df_name(df)))
		return FALSE;
	if (f->at_df == (gint)df && f->path_pos == 0)
		return TRUE;
	f->at_df = -1;
	f->cur_ef = -1;
	switch (df) {
	case CP_USIM_DF_USIM:
	case CP_USIM_DF_ISIM:
		if (f->path_pos == 1)
			break;
		if (df == CP_USIM_DF_USIM)
			usim_aid(f, &aid, &len);
		else if (f->isim_aid_len)
			aid = f->isim_aid, len = f->isim_aid_len;
		else
			aid = f->card->isim_aid, len = f->card->isim_aid_len;
		f->path_pos++;
		apdu(f, 0xA4, 0x04, 0x0C, aid, len, FALSE);
		return FALSE;
	case CP_USIM_DF_SYSTEM:
		if (f->path_pos == 2)
			break;
		f->path_pos++;
		select_fid(f, f->path_pos == 1 ? 0x3F00 : 0xA515);
		return FALSE;
	case CP_USIM_N_DF:
		break;
	}
	f->path_pos = 0;
	f->at_df = df;
	f->file_sub = f->sub;
	return TRUE;
}

/* The file at position pos of the card's order (counted from its end when
 * reverse), or CP_USIM_N_EF past the last; files the card does not have
 * are skipped: size 0, or ADF.ISIM's when EF.DIR was read and lists none
 * (or, EF.DIR unread, the driver names no ISIM). */
static CpUsimEf
file_at(CpModemFlow *f, guint *pos, gboolean reverse)
{
	for (; *pos < CP_USIM_N_EF; (*pos)++) {
		CpUsimEf ef = f->card->order[reverse ? CP_USIM_N_EF - 1 - *pos : *pos];

		if (!f->card->size[ef])
			continue;
		if (f->card->df[ef] == CP_USIM_DF_ISIM && !f->isim_aid_len &&
		    (f->dir_read || !f->card->isim_aid))
			continue;
		return ef;
	}
	return CP_USIM_N_EF;
}

void
cp_card_read_old(CpModemFlow *f)
{
	CpModemBackup *b = f->backup;
	CpUsimEf ef = file_at(f, &f->ef, TRUE);
	gsize len;
	const guint8 *d;

	if (ef == CP_USIM_N_EF) {
		g_autofree char *imsi = NULL;

		b->card = g_strdup(f->card->name);
		b->iccid = g_strdup(f->iccid);
		b->imsi = cp_usim_imsi_decode(b->ef[CP_USIM_EF_IMSI], b->ef_len[CP_USIM_EF_IMSI]);
		imsi = cp_redact(b->imsi);
		g_info("current IMSI %s", imsi);
		cp_modem_flow_next(f);
		return;
	}
	if (!goto_df(f, f->card->df[ef]))
		return;
	if (!read_file(f, f->card, ef, &d, &len))
		return;
	memcpy(b->ef[ef], d, len);
	b->ef_len[ef] = len;
	f->ef++;
	f->sub = 0;
	cp_modem_flow_again(f);
}

enum {
	WR_SELECT,     /* the SELECT answered */
	WR_UPDATE,     /* UPDATE BINARY of the current EF answered */
	WR_SFI,        /* UPDATE BINARY by the SFI answered */
};

static void
write_select(CpModemFlow *f, CpUsimEf ef)
{
	f->wr = WR_SELECT;
	f->cur_ef = -1;
	select_fid(f, f->card->fid[ef]);
}

/*
 * UPDATE BINARY of ef: by its SFI (P1 b8 = 1, TS 102 221 11.1.4.2) where
 * the card has not refused it, else of the current EF, which the caller
 * made ef. The content is the target's encoding, or the backup's bytes
 * when restoring.
 */
static void
update(CpModemFlow *f, CpUsimEf ef)
{
	const CpModemBackup *b = cp_modem_run_values(&f->run);
	CpModemTargetCopy *t = f->run.target;
	guint8 sfi = sfi_of(f, f->card, ef);
	guint8 out[CP_USIM_EF_MAX];
	GError *error = NULL;

	if (!cp_modem_run_restoring(&f->run)) {
		CpUsimValues v = {
			.imsi = t->imsi,
			.mnc_length = t->mnc_length,
			.spn = t->network_name,
			.k = t->k,
			.opc = t->opc,
		};

		if (!f->card->encode(ef, &v, b->ef[ef], out, &error)) {
			cp_modem_flow_fail(f, error);
			return;
		}
	} else {
		if (b->ef_len[ef] != f->card->size[ef]) {
			cp_modem_flow_fail(f, g_error_new(CP_ERROR, CP_ERR_ROLLBACK,
							  "the backup's %s has the wrong size",
							  cp_usim_ef_name(ef)));
			return;
		}
		memcpy(out, b->ef[ef], b->ef_len[ef]);
	}
	g_info("writing %s", cp_usim_ef_name(ef));
	f->written = TRUE;
	f->wr = sfi ? WR_SFI : WR_UPDATE;
	if (sfi)
		f->cur_ef = -1;
	apdu(f, 0xD6, sfi ? (guint8)(0x80 | sfi) : 0x00, 0x00, out, f->card->size[ef], FALSE);
	cp_cleanse(out, sizeof(out));
}

void
cp_card_write(CpModemFlow *f)
{
	const CpModemBackup *b = cp_modem_run_values(&f->run);
	CpUsimEf ef;
	guint16 sw;

	/* a backup without a copy (one of the previous format, or of a card
	 * whose ISIM was not found) has nothing to write there */
	for (ef = file_at(f, &f->ef, FALSE); ef != CP_USIM_N_EF && !b->ef_len[ef]; ef = file_at(f, &f->ef, FALSE)) {
		g_info("%s: not in the backup, left as it is", cp_usim_ef_name(ef));
		f->ef++;
	}
	if (ef == CP_USIM_N_EF) {
		cp_modem_flow_next(f);
		return;
	}
	if (!goto_df(f, f->card->df[ef]))
		return;
	if (f->sub == f->file_sub) {
		/* by its SFI, or the file still selected (the backup's last
		 * read is the first write), else SELECTed */
		if (sfi_of(f, f->card, ef) || f->cur_ef == (gint)ef)
			update(f, ef);
		else
			write_select(f, ef);
		return;
	}
	sw = cp_modem_flow_sw(f);
	switch (f->wr) {
	case WR_SELECT:
		if (!selected(f, cp_usim_ef_name(ef)))
			return;
		f->cur_ef = (gint)ef;
		update(f, ef);
		return;
	case WR_SFI:
		if (sfi_refused(sw)) {
			g_info("%s: the card refused its SFI %02X (%04X): selecting it",
			       cp_usim_ef_name(ef), f->card->sfi[ef], sw);
			f->sfi_refused |= 1u << ef;
			write_select(f, ef);
			return;
		}
		break;
	default:
		break;
	}
	if (sw != 0x9000) {
		cp_modem_flow_fail(f, cp_card_apdu_error(cp_usim_ef_name(ef), sw));
		return;
	}
	f->ef++;
	f->sub = 0;
	cp_modem_flow_again(f);
}

/*
 * A probe: for each file the driver writes, in its order, the DF reached
 * as for a write and the file SELECTed with its FCP, whose size is
 * recorded (a SELECT that fails stops the probe, with the error saying
 * which file); then VERIFY ADM1 without data, which spends nothing (TS
 * 102 221 11.1.9), for the counter. Nothing is read past the FCP.
 */
void
cp_card_probe(CpModemFlow *f)
{
	CpModemProbe *p = f->probe;
	CpUsimEf ef = file_at(f, &f->ef, FALSE);
	const guint8 *d;
	gsize len, size = 0;
	guint left;
	guint16 sw;

	if (f->sub == 0 && f->ef == 0) {
		p->card = g_strdup(f->card->name);
		p->card_description = g_strdup(f->card->description);
	}
	if (ef == CP_USIM_N_EF) {
		/* past the last file (sub back at 0): the VERIFY */
		if (f->sub == 0) {
			apdu(f, 0x20, 0x00, f->card->adm1_p2, NULL, 0, FALSE);
			return;
		}
		sw = cp_modem_flow_sw(f);
		switch (cp_card_adm1_decide(sw, &left)) {
		case CP_CARD_ADM1_VERIFIED:
			p->adm1_verified = TRUE;
			break;
		case CP_CARD_ADM1_PRESENT:
		case CP_CARD_ADM1_LAST:
		case CP_CARD_ADM1_BLOCKED:
			p->adm1_left = (gint)left;
			break;
		case CP_CARD_ADM1_NO_COUNTER:
			break;
		}
		cp_modem_flow_next(f);
		return;
	}
	if (!goto_df(f, f->card->df[ef]))
		return;
	if (f->sub == f->file_sub) {
		guint8 b[2] = { (guint8)(f->card->fid[ef] >> 8), (guint8)f->card->fid[ef] };

		f->cur_ef = -1;
		apdu(f, 0xA4, 0x00, 0x04, b, 2, TRUE);
		return;
	}
	if (!selected(f, cp_usim_ef_name(ef)))
		return;
	d = g_bytes_get_data(f->resp, &len);
	cp_card_fcp_size(d, len - 2, &size);
	if (p->n_files < CP_MODEM_PROBE_MAX_FILES) {
		p->files[p->n_files].name = cp_usim_ef_name(ef);
		p->files[p->n_files].size = size;
		p->files[p->n_files].written = f->card->size[ef];
		p->n_files++;
	}
	f->ef++;
	f->sub = 0;
	cp_modem_flow_again(f);
}

static void
imsi_channel_closed(CpModemFlow *f, GError *error)
{
	if (error)
		g_debug("closing the logical channel: %s", error->message);
	g_clear_error(&error);
	f->channel = 0;
	f->channel_open = FALSE;
	cp_modem_flow_check_imsi(f);
}

static void
imsi_channel_opened(CpModemFlow *f, GError *error)
{
	if (error && channel_fallback(f, error)) {
		usim_reach(f, imsi_channel_opened);
		return;
	}
	if (error) {
		cp_modem_flow_fail(f, error);
		return;
	}
	f->sub = 2;
	cp_modem_flow_again(f);
}

/*
 * The IMSI the card holds now, for a modem that cannot say (newer QMI
 * firmware answers DMS UIM Get IMSI with NotSupported; ModemManager then
 * reads EF.IMSI through the UIM service too). Ends in the runner's
 * check of the IMSI.
 */
void
cp_card_read_imsi(CpModemFlow *f)
{
	const CpCardTransport *t = f->run.driver->transport;
	const CpUsimDriver *d = usim_driver(f);
	const guint8 *data;
	gsize len;

	switch (f->sub) {
	case 0:
		f->file_sub = 2;
		f->cur_ef = -1;
		usim_reach(f, imsi_channel_opened);
		return;
	case 1:
		/* the SELECT of the USIM on the basic channel */
		if (!selected(f, "SELECT ADF.USIM"))
			return;
		f->sub = 2;
		G_GNUC_FALLTHROUGH;
	default:
		if (!read_file(f, d, CP_USIM_EF_IMSI, &data, &len))
			return;
		g_free(f->modem_imsi);
		f->modem_imsi = cp_usim_imsi_decode(data, len);
		f->imsi_read = TRUE;
		if (f->channel_open && t->close_channel) {
			f->on_done = imsi_channel_closed;
			t->close_channel(&f->run, f->channel);
			return;
		}
		cp_modem_flow_check_imsi(f);
	}
}
