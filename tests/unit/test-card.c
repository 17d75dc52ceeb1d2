/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The card engine's decisions (modem/cp-card.h): the plans every modem
 * driver runs, the ADM1 rule that never spends the last attempt, and the
 * status words.
 */
#include <string.h>

#include <glib.h>

#include "cp-card.h"
#include "cp-usim.h"
#include "cp-glib.h"

/* ---- plans ------------------------------------------------------------- */

/* What the QMI driver has: all but the manager's steps. */
static const guint32 have_owned =
	CP_STEP_BIT(CP_STEP_OPEN_PORT) | CP_STEP_BIT(CP_STEP_READ_APN) | CP_STEP_BIT(CP_STEP_APN) |
	CP_STEP_BIT(CP_STEP_OFFLINE) | CP_STEP_BIT(CP_STEP_RESET) | CP_STEP_BIT(CP_STEP_REGISTRATION);

/* What the ModemManager driver has. */
static const guint32 have_lent =
	CP_STEP_BIT(CP_STEP_OPEN_MODEM) | CP_STEP_BIT(CP_STEP_OPEN_PORT) | CP_STEP_BIT(CP_STEP_READ_APN) |
	CP_STEP_BIT(CP_STEP_TAKE) | CP_STEP_BIT(CP_STEP_GIVE_BACK) | CP_STEP_BIT(CP_STEP_APN) |
	CP_STEP_BIT(CP_STEP_OFFLINE) | CP_STEP_BIT(CP_STEP_RESET) | CP_STEP_BIT(CP_STEP_REGISTRATION);

static void
assert_plan(CpPlanKind kind, guint32 have, const CpModemStep *want, guint n_want)
{
	CpModemStep plan[CP_N_STEPS];
	guint n = cp_card_plan_build(kind, have, plan);

	for (guint i = 0; i < MIN(n, n_want); i++)
		if (plan[i] != want[i])
			g_error("step %u is %s, not %s", i, cp_card_step_name(plan[i], FALSE),
				cp_card_step_name(want[i], FALSE));
	g_assert_cmpuint(n, ==, n_want);
}

static void
test_plan_owned(void)
{
	static const CpModemStep provision[] = {
		CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL,
		CP_STEP_IDENTIFY, CP_STEP_VERIFY_ADM1, CP_STEP_READ_OLD, CP_STEP_READ_APN, CP_STEP_BACKUP,
		CP_STEP_WRITE, CP_STEP_CLOSE_CHANNEL, CP_STEP_APN, CP_STEP_OFFLINE, CP_STEP_RESET,
		CP_STEP_REGISTRATION, CP_STEP_CHECK_IMSI,
	};
	static const CpModemStep back[] = {
		CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL,
		CP_STEP_IDENTIFY, CP_STEP_VERIFY_ADM1, CP_STEP_WRITE, CP_STEP_CLOSE_CHANNEL, CP_STEP_APN,
		CP_STEP_OFFLINE, CP_STEP_RESET,
	};

	assert_plan(CP_PLAN_PROVISION, have_owned, provision, G_N_ELEMENTS(provision));
	assert_plan(CP_PLAN_ROLLBACK, have_owned, back, G_N_ELEMENTS(back));
	assert_plan(CP_PLAN_RESTORE, have_owned, back, G_N_ELEMENTS(back));
}

static void
test_plan_lent(void)
{
	/* the APN read before the take and set after the give-back; the port
	 * only while the modem is taken */
	static const CpModemStep provision[] = {
		CP_STEP_OPEN_MODEM, CP_STEP_READ_APN, CP_STEP_TAKE, CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS,
		CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL, CP_STEP_IDENTIFY, CP_STEP_VERIFY_ADM1, CP_STEP_READ_OLD,
		CP_STEP_BACKUP, CP_STEP_WRITE, CP_STEP_CLOSE_CHANNEL, CP_STEP_OFFLINE, CP_STEP_RESET,
		CP_STEP_CLOSE_PORT, CP_STEP_GIVE_BACK, CP_STEP_APN, CP_STEP_REGISTRATION, CP_STEP_CHECK_IMSI,
	};
	static const CpModemStep rollback[] = {
		CP_STEP_TAKE, CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL,
		CP_STEP_IDENTIFY, CP_STEP_VERIFY_ADM1, CP_STEP_WRITE, CP_STEP_CLOSE_CHANNEL, CP_STEP_OFFLINE,
		CP_STEP_RESET, CP_STEP_CLOSE_PORT, CP_STEP_GIVE_BACK, CP_STEP_APN,
	};
	CpModemStep restore[G_N_ELEMENTS(rollback) + 1] = { CP_STEP_OPEN_MODEM };

	memcpy(restore + 1, rollback, sizeof(rollback));
	assert_plan(CP_PLAN_PROVISION, have_lent, provision, G_N_ELEMENTS(provision));
	assert_plan(CP_PLAN_ROLLBACK, have_lent, rollback, G_N_ELEMENTS(rollback));
	assert_plan(CP_PLAN_RESTORE, have_lent, restore, G_N_ELEMENTS(restore));
}

/* A probe: the card reached and identified, its files probed, the IMSI
 * asked; nothing that writes, resets, verifies ADM1 or reads the APN. */
static void
test_plan_probe(void)
{
	static const CpModemStep owned[] = {
		CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_MODEM_INFO, CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL,
		CP_STEP_IDENTIFY, CP_STEP_PROBE, CP_STEP_CLOSE_CHANNEL, CP_STEP_CHECK_IMSI,
	};
	static const CpModemStep lent[] = {
		CP_STEP_OPEN_MODEM, CP_STEP_TAKE, CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_MODEM_INFO,
		CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL, CP_STEP_IDENTIFY, CP_STEP_PROBE, CP_STEP_CLOSE_CHANNEL,
		CP_STEP_CLOSE_PORT, CP_STEP_GIVE_BACK, CP_STEP_CHECK_IMSI,
	};

	assert_plan(CP_PLAN_PROBE, have_owned, owned, G_N_ELEMENTS(owned));
	assert_plan(CP_PLAN_PROBE, have_lent, lent, G_N_ELEMENTS(lent));
}

static void
test_plan_minimal(void)
{
	/* a driver with a port and nothing else: the card alone, and the
	 * IMSI read through it */
	static const CpModemStep provision[] = {
		CP_STEP_OPEN_PORT, CP_STEP_CARD_STATUS, CP_STEP_ICCID, CP_STEP_OPEN_CHANNEL,
		CP_STEP_IDENTIFY, CP_STEP_VERIFY_ADM1, CP_STEP_READ_OLD, CP_STEP_BACKUP, CP_STEP_WRITE,
		CP_STEP_CLOSE_CHANNEL, CP_STEP_CHECK_IMSI,
	};
	CpModemStep plan[CP_N_STEPS];

	assert_plan(CP_PLAN_PROVISION, CP_STEP_BIT(CP_STEP_OPEN_PORT), provision, G_N_ELEMENTS(provision));
	/* a give-back without a take is not a lent modem */
	assert_plan(CP_PLAN_PROVISION, CP_STEP_BIT(CP_STEP_OPEN_PORT) | CP_STEP_BIT(CP_STEP_GIVE_BACK),
		    provision, G_N_ELEMENTS(provision));
	/* the way back never reads the old values again: that would back up
	 * the new ones */
	for (CpPlanKind k = CP_PLAN_ROLLBACK; k <= CP_PLAN_RESTORE; k++) {
		guint n = cp_card_plan_build(k, have_lent, plan);

		for (guint i = 0; i < n; i++) {
			g_assert_cmpint(plan[i], !=, CP_STEP_READ_OLD);
			g_assert_cmpint(plan[i], !=, CP_STEP_BACKUP);
			g_assert_cmpint(plan[i], !=, CP_STEP_REGISTRATION);
		}
	}
}

static void
test_step_names(void)
{
	for (CpModemStep s = 0; s < CP_N_STEPS; s++)
		g_assert_cmpstr(cp_card_step_name(s, FALSE), !=, "?");
	g_assert_cmpstr(cp_card_step_name(CP_STEP_WRITE, TRUE), ==, "writing the old subscription back");
	g_assert_cmpstr(cp_card_step_name(CP_STEP_APN, TRUE), ==, "putting the old APN back");
}

/* ---- ADM1 -------------------------------------------------------------- */

static void
test_adm1_decide(void)
{
	guint left = 99;

	g_assert_cmpint(cp_card_adm1_decide(0x9000, &left), ==, CP_CARD_ADM1_VERIFIED);
	g_assert_cmpint(cp_card_adm1_decide(0x63C3, &left), ==, CP_CARD_ADM1_PRESENT);
	g_assert_cmpuint(left, ==, 3);
	g_assert_cmpint(cp_card_adm1_decide(0x63CA, &left), ==, CP_CARD_ADM1_PRESENT);
	g_assert_cmpuint(left, ==, 10);
	/* a wrong ADM1 with two left still leaves one */
	g_assert_cmpint(cp_card_adm1_decide(0x63C2, &left), ==, CP_CARD_ADM1_PRESENT);
	g_assert_cmpuint(left, ==, 2);
	/* the last attempt is never spent */
	g_assert_cmpint(cp_card_adm1_decide(0x63C1, &left), ==, CP_CARD_ADM1_LAST);
	g_assert_cmpuint(left, ==, 1);
	g_assert_cmpint(cp_card_adm1_decide(0x63C0, &left), ==, CP_CARD_ADM1_BLOCKED);
	g_assert_cmpint(cp_card_adm1_decide(0x6983, &left), ==, CP_CARD_ADM1_BLOCKED);
	/* without a counter, no try */
	for (guint sw = 0x6000; sw <= 0x9FFF; sw++) {
		if (sw == 0x9000 || sw == 0x6983 || (sw & 0xFFF0) == 0x63C0)
			continue;
		g_assert_cmpint(cp_card_adm1_decide((guint16)sw, &left), ==, CP_CARD_ADM1_NO_COUNTER);
	}
	g_assert_cmpint(cp_card_adm1_decide(0x63C5, NULL), ==, CP_CARD_ADM1_PRESENT);
}

static void
test_adm1_error(void)
{
	g_autoptr(GError) wrong = cp_card_adm1_error(0x63C2, TRUE);
	g_autoptr(GError) last = cp_card_adm1_error(0x63C1, FALSE);
	g_autoptr(GError) blocked = cp_card_adm1_error(0x6983, TRUE);
	g_autoptr(GError) other = cp_card_adm1_error(0x6A82, FALSE);

	g_assert_null(cp_card_adm1_error(0x9000, TRUE));
	g_assert_error(wrong, CP_ERROR, CP_ERR_ADM1);
	g_assert_nonnull(strstr(wrong->message, "2 attempts left"));
	g_assert_error(last, CP_ERROR, CP_ERR_ADM1);
	g_assert_nonnull(strstr(last->message, "one ADM1 attempt left"));
	g_assert_error(blocked, CP_ERROR, CP_ERR_ADM1_BLOCKED);
	g_assert_error(other, CP_ERROR, CP_ERR_APDU);
	g_assert_nonnull(strstr(other->message, "6A82"));
}

/* ---- status words ------------------------------------------------------ */

static void
test_sw(void)
{
	g_assert_cmpint(cp_card_sw_class(0x9000), ==, CP_CARD_SW_OK);
	g_assert_cmpint(cp_card_sw_class(0x9001), ==, CP_CARD_SW_ERROR);
	g_assert_cmpint(cp_card_sw_class(0x6120), ==, CP_CARD_SW_MORE);
	g_assert_cmpint(cp_card_sw_class(0x9110), ==, CP_CARD_SW_MORE);
	g_assert_cmpint(cp_card_sw_class(0x6282), ==, CP_CARD_SW_WARNING);
	g_assert_cmpint(cp_card_sw_class(0x63C1), ==, CP_CARD_SW_WARNING);
	g_assert_cmpint(cp_card_sw_class(0x6C21), ==, CP_CARD_SW_WRONG_LE);
	g_assert_cmpint(cp_card_sw_class(0x6A82), ==, CP_CARD_SW_ERROR);
	g_assert_cmpint(cp_card_sw_class(0x6982), ==, CP_CARD_SW_ERROR);
	g_assert_cmpint(cp_card_sw_class(0x0000), ==, CP_CARD_SW_ERROR);

	g_assert_true(cp_card_sw_selected(0x9000));
	g_assert_true(cp_card_sw_selected(0x6120));
	g_assert_true(cp_card_sw_selected(0x9110));
	g_assert_false(cp_card_sw_selected(0x6A82));
	g_assert_false(cp_card_sw_selected(0x6282));
}

static void
test_fcp(void)
{
	/* TS 102 221 11.1.1.3: a transparent EF of 33 bytes, and of 40 (TUAK) */
	static const guint8 ef33[] = {
		0x62, 0x19, 0x82, 0x02, 0x41, 0x21, 0x83, 0x02, 0xAF, 0x20, 0xA5, 0x03, 0x80, 0x01, 0x71,
		0x8A, 0x01, 0x05, 0x8B, 0x03, 0x6F, 0x06, 0x02, 0x80, 0x02, 0x00, 0x21,
	};
	static const guint8 ef40_total[] = {
		0x62, 0x0A, 0x82, 0x02, 0x41, 0x21, 0x81, 0x02, 0x00, 0x28, 0x8A, 0x00,
	};
	/* the length byte says one more than follows */
	static const guint8 short_template[] = {
		0x62, 0x0B, 0x82, 0x02, 0x41, 0x21, 0x80, 0x02, 0x01, 0x00, 0x8A, 0x01,
	};
	static const guint8 no_size[] = { 0x62, 0x04, 0x82, 0x02, 0x41, 0x21 };
	static const guint8 not_fcp[] = { 0x6F, 0x04, 0x80, 0x02, 0x00, 0x21 };
	static const guint8 past_end[] = { 0x62, 0x06, 0x82, 0x02, 0x41, 0x21, 0x80, 0x05, 0x00 };
	gsize size = 0;

	g_assert_true(cp_card_fcp_size(ef33, sizeof(ef33), &size));
	/* the A5 proprietary template is skipped whole: its 80 is not the size */
	g_assert_cmpuint(size, ==, 33);
	g_assert_true(cp_card_fcp_size(ef40_total, sizeof(ef40_total), &size));
	g_assert_cmpuint(size, ==, 40);
	g_assert_true(cp_card_fcp_size(short_template, sizeof(short_template), &size));
	g_assert_cmpuint(size, ==, 256);
	g_assert_false(cp_card_fcp_size(no_size, sizeof(no_size), &size));
	g_assert_false(cp_card_fcp_size(not_fcp, sizeof(not_fcp), &size));
	g_assert_false(cp_card_fcp_size(past_end, sizeof(past_end), &size));
	g_assert_false(cp_card_fcp_size(ef33, 1, &size));
	g_assert_false(cp_card_fcp_size(NULL, 0, &size));
}

static void
test_dir(void)
{
	/* EF.DIR's FCP: linear fixed, 4 records of 38 bytes */
	static const guint8 dir_fcp[] = {
		0x62, 0x1C, 0x82, 0x05, 0x42, 0x21, 0x00, 0x26, 0x04, 0x83, 0x02, 0x2F, 0x00, 0xA5, 0x03,
		0x80, 0x01, 0x71, 0x8A, 0x01, 0x05, 0x8B, 0x03, 0x2F, 0x06, 0x01, 0x80, 0x02, 0x00, 0x98,
	};
	/* a transparent EF has no records */
	static const guint8 transparent[] = { 0x62, 0x07, 0x82, 0x02, 0x41, 0x21, 0x80, 0x01, 0x09 };
	/* TS 102 221 13.1, records as on a sysmoISIM-SJA2: USIM, ISIM, empty */
	static const guint8 usim[38] = {
		0x61, 0x19, 0x4F, 0x10, 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF, 0xFF, 0xFF, 0xFF,
		0x89, 0x07, 0x09, 0x00, 0x00, 0x50, 0x05, 0x55, 0x53, 0x69, 0x6D, 0x31,
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	};
	static const guint8 isim[38] = {
		0x61, 0x19, 0x4F, 0x10, 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04, 0xFF, 0xFF, 0xFF, 0xFF,
		0x89, 0x07, 0x09, 0x00, 0x00, 0x50, 0x05, 0x49, 0x53, 0x69, 0x6D, 0x31,
	};
	static const guint8 empty[38] = {
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	};
	/* an AID longer than 16 bytes is not an AID */
	static const guint8 too_long[] = {
		0x61, 0x13, 0x4F, 0x11, 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF, 0xFF, 0xFF, 0xFF,
		0x89, 0x07, 0x09, 0x00, 0x00, 0x01, 0x02,
	};
	gsize rec_len = 0, aid_len = 0;
	guint n = 0;
	guint8 aid[16];

	g_assert_true(cp_card_fcp_records(dir_fcp, sizeof(dir_fcp), &rec_len, &n));
	g_assert_cmpuint(rec_len, ==, 38);
	g_assert_cmpuint(n, ==, 4);
	g_assert_false(cp_card_fcp_records(transparent, sizeof(transparent), &rec_len, &n));

	g_assert_true(cp_card_dir_usim_aid(usim, sizeof(usim), aid, &aid_len));
	g_assert_cmpuint(aid_len, ==, 16);
	g_assert_cmphex(aid[6], ==, 0x02);
	g_assert_cmphex(aid[15], ==, 0x00);
	g_assert_false(cp_card_dir_usim_aid(isim, sizeof(isim), aid, &aid_len));
	g_assert_true(cp_card_dir_isim_aid(isim, sizeof(isim), aid, &aid_len));
	g_assert_cmpuint(aid_len, ==, 16);
	g_assert_cmphex(aid[6], ==, 0x04);
	g_assert_false(cp_card_dir_isim_aid(usim, sizeof(usim), aid, &aid_len));
	g_assert_false(cp_card_dir_isim_aid(empty, sizeof(empty), aid, &aid_len));
	g_assert_false(cp_card_dir_usim_aid(empty, sizeof(empty), aid, &aid_len));
	g_assert_false(cp_card_dir_usim_aid(too_long, sizeof(too_long), aid, &aid_len));
	g_assert_false(cp_card_dir_usim_aid(usim, 3, aid, &aid_len));
}

/* Every driver lists each file once in its order, within the backup's
 * room, and the sysmoISIM drivers every copy of the key. */
static void
test_driver_files(void)
{
	const CpUsimDriver *const *d = cp_usim_drivers();

	g_assert_nonnull(d[0]);
	for (; *d; d++) {
		guint seen = 0;

		for (guint i = 0; i < CP_USIM_N_EF; i++) {
			CpUsimEf ef = (*d)->order[i];

			g_assert_cmpuint(ef, <, CP_USIM_N_EF);
			g_assert_false(seen & (1u << ef));
			seen |= 1u << ef;
			g_assert_cmpuint((*d)->size[ef], <=, CP_USIM_EF_MAX);
			g_assert_cmpuint((*d)->df[ef], <, CP_USIM_N_DF);
		}
		/* pySim's order: ADF.USIM's key last */
		g_assert_cmpuint((*d)->order[CP_USIM_N_EF - 1], ==, CP_USIM_EF_AUTH_KEY);
		/* an SFI is 1-30 (TS 102 221 8.3) and names one file of its
		 * DF: two files sharing one would send a write to the other */
		for (guint i = 0; i < CP_USIM_N_EF; i++) {
			g_assert_cmpuint((*d)->sfi[i], <=, 30);
			for (guint j = i + 1; j < CP_USIM_N_EF; j++)
				g_assert_false((*d)->sfi[i] && (*d)->sfi[i] == (*d)->sfi[j] &&
					       (*d)->df[i] == (*d)->df[j]);
		}
	}
	d = (const CpUsimDriver *const[]){ cp_usim_driver_find("sysmo-isim-sja2"), NULL };
	g_assert_cmphex(d[0]->fid[CP_USIM_EF_AUTH_KEY_2G], ==, 0x6F20);
	g_assert_cmpuint(d[0]->df[CP_USIM_EF_AUTH_KEY_2G], ==, CP_USIM_DF_SYSTEM);
	g_assert_cmpuint(d[0]->size[CP_USIM_EF_AUTH_KEY_2G], ==, 33);
	g_assert_cmphex(d[0]->fid[CP_USIM_EF_ISIM_AUTH_KEY], ==, 0xAF20);
	g_assert_cmpuint(d[0]->df[CP_USIM_EF_ISIM_AUTH_KEY], ==, CP_USIM_DF_ISIM);
	g_assert_cmpuint(d[0]->size[CP_USIM_EF_ISIM_AUTH_KEY], ==, 33);
	/* TS 31.102 4.2.2 and 4.2.18; the sysmoISIM's FCPs say the same */
	g_assert_cmphex(d[0]->sfi[CP_USIM_EF_IMSI], ==, 0x07);
	g_assert_cmphex(d[0]->sfi[CP_USIM_EF_AD], ==, 0x03);
	g_assert_cmphex(d[0]->sfi[CP_USIM_EF_SPN], ==, 0);
	g_assert_cmphex(d[0]->sfi[CP_USIM_EF_AUTH_KEY], ==, 0);
}

/* The key copies as pySim writes them: K at 1, OPc at 17; the 2G file
 * keeps its algorithm and gets the OPc flag, the ISIM's is the USIM's. */
static void
test_key_copies_encode(void)
{
	const CpUsimDriver *d = cp_usim_driver_find("sysmo-isim-sja5");
	guint8 k[16], opc[16], old[33], out[33];
	g_autoptr(CpSecret) ks = NULL, opcs = NULL;
	g_autoptr(GError) error = NULL;
	CpUsimValues v = { 0 };

	for (guint i = 0; i < 16; i++) {
		k[i] = (guint8)i;
		opc[i] = (guint8)(0xF0 | i);
	}
	ks = cp_secret_new_from(k, 16);
	opcs = cp_secret_new_from(opc, 16);
	v.k = ks;
	v.opc = opcs;
	memset(old, 0xAA, sizeof(old));
	old[0] = 0x01;   /* COMP128v1, OP */
	g_assert_true(d->encode(CP_USIM_EF_AUTH_KEY_2G, &v, old, out, &error));
	g_assert_no_error(error);
	g_assert_cmphex(out[0], ==, 0x11);
	g_assert_cmpmem(out + 1, 16, k, 16);
	g_assert_cmpmem(out + 17, 16, opc, 16);
	old[0] = 0xE1;   /* card bits above the OPc flag stay */
	g_assert_true(d->encode(CP_USIM_EF_ISIM_AUTH_KEY, &v, old, out, &error));
	g_assert_cmphex(out[0], ==, 0xF4);
	g_assert_cmpmem(out + 1, 16, k, 16);
	g_assert_cmpmem(out + 17, 16, opc, 16);
	v.opc = NULL;
	g_assert_false(d->encode(CP_USIM_EF_AUTH_KEY_2G, &v, old, out, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_ARGUMENT);
}

/* Which failures to open a logical channel fall back to the basic one. */
static void
test_channel_refused(void)
{
	g_autoptr(GError) denied = g_error_new(CP_ERROR, CP_ERR_MODEM,
					       "opening a logical channel failed: AccessDenied");
	g_autoptr(GError) card = g_error_new(CP_ERROR, CP_ERR_APDU, "the card refused (SW 6881)");
	g_autoptr(GError) slow = g_error_new(CP_ERROR, CP_ERR_MODEM_TIMEOUT, "no answer");
	g_autoptr(GError) gone = g_error_new(CP_ERROR, CP_ERR_MODEM_GONE, "gone");
	g_autoptr(GError) cancel = g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");

	g_assert_true(cp_card_channel_refused(denied));
	g_assert_true(cp_card_channel_refused(card));
	g_assert_false(cp_card_channel_refused(slow));
	g_assert_false(cp_card_channel_refused(gone));
	g_assert_false(cp_card_channel_refused(cancel));
	g_assert_false(cp_card_channel_refused(NULL));
}

static void
test_cla(void)
{
	/* TS 102 221 10.1.1: channels 0-3 in b1-b2, 4-19 as 0x40 + n - 4 */
	g_assert_cmphex(cp_card_cla(0), ==, 0x00);
	g_assert_cmphex(cp_card_cla(3), ==, 0x03);
	g_assert_cmphex(cp_card_cla(4), ==, 0x40);
	g_assert_cmphex(cp_card_cla(19), ==, 0x4F);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/card/plan/owned", test_plan_owned);
	g_test_add_func("/card/plan/lent", test_plan_lent);
	g_test_add_func("/card/plan/minimal", test_plan_minimal);
	g_test_add_func("/card/plan/probe", test_plan_probe);
	g_test_add_func("/card/plan/names", test_step_names);
	g_test_add_func("/card/adm1/decide", test_adm1_decide);
	g_test_add_func("/card/adm1/error", test_adm1_error);
	g_test_add_func("/card/sw", test_sw);
	g_test_add_func("/card/fcp", test_fcp);
	g_test_add_func("/card/dir", test_dir);
	g_test_add_func("/card/cla", test_cla);
	g_test_add_func("/card/channel-refused", test_channel_refused);
	g_test_add_func("/card/driver-files", test_driver_files);
	g_test_add_func("/card/key-copies-encode", test_key_copies_encode);
	return g_test_run();
}
