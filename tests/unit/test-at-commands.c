/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The strict parsers of the AT commands (modem/cp-at-modem.c): each
 * answer form of TS 27.007 and of the modules' manuals accepted, and
 * malformed ones refused with CP_ERR_MODEM.
 */
#include <string.h>

#include "cp-at-modem.h"
#include "cp-glib.h"
#include "cp-test.h"

static void
test_registration(void)
{
	static const struct {
		const char *line;
		gboolean ok;
		int kind, n, stat, act, cause_type, cause;
		const char *area;
	} cases[] = {
		/* read answers: <n>,<stat>... */
		{ "+CEREG: 2,1,\"00C3\",\"0000001A\",7", TRUE, CP_AT_REG_CEREG, 2, 1, 7, -1, -1, "00C3" },
		{ "+CEREG: 3,3,,,,0,8", TRUE, CP_AT_REG_CEREG, 3, 3, -1, 0, 8, "" },
		{ "+CREG: 0,5", TRUE, CP_AT_REG_CREG, 0, 5, -1, -1, -1, "" },
		{ "+C5GREG: 3,3,,,,,,0,7", TRUE, CP_AT_REG_C5GREG, 3, 3, -1, 0, 7, "" },
		/* +CEREG n=4: <Active-Time>,<Periodic-TAU> after the cause */
		{ "+CEREG: 4,1,\"00C3\",\"0000001A\",7,,,\"00100100\",\"01000111\"", TRUE, CP_AT_REG_CEREG, 4, 1, 7, -1, -1, "00C3" },
		/* URCs: <stat>... */
		{ "+CEREG: 1", TRUE, CP_AT_REG_CEREG, -1, 1, -1, -1, -1, "" },
		{ "+CEREG: 5,\"00C3\",\"0000001A\",9", TRUE, CP_AT_REG_CEREG, -1, 5, 9, -1, -1, "00C3" },
		{ "+CREG: 3,,,,0,15", TRUE, CP_AT_REG_CREG, -1, 3, -1, 0, 15, "" },
		/* malformed */
		{ "+CEREG: 12", FALSE, 0, 0, 0, 0, 0, 0, NULL },
		{ "+CEREG: 2,1,00C3,\"0000001A\",7", FALSE, 0, 0, 0, 0, 0, 0, NULL },        /* unquoted <tac> */
		{ "+CEREG: 2,1,\"00G3\",\"0000001A\",7", FALSE, 0, 0, 0, 0, 0, 0, NULL },    /* not hex */
		{ "+CEREG: 2,1,\"00C3\",\"0000001A\",7,0", FALSE, 0, 0, 0, 0, 0, 0, NULL },  /* cause_type without cause */
		{ "+CEREG: 2,1,\"00C3", FALSE, 0, 0, 0, 0, 0, 0, NULL },                     /* open quote */
		{ "+CEREG: 9,1", FALSE, 0, 0, 0, 0, 0, 0, NULL },                            /* <n> out of range */
		{ "+CGREG: 1", FALSE, 0, 0, 0, 0, 0, 0, NULL },
		{ "+CEREG: ", FALSE, 0, 0, 0, 0, 0, 0, NULL },
		{ "+CREG: 1,\"00C3\",\"0000001A\",7,0,15,1", FALSE, 0, 0, 0, 0, 0, 0, NULL }, /* extra field */
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		CpAtReg r;
		gboolean ok = cp_at_parse_registration(cases[i].line, &r, &error);

		CP_CHECK_INT(ok, cases[i].ok);
		if (!ok) {
			CP_CHECK(g_error_matches(error, CP_ERROR, CP_ERR_MODEM));
			/* the message never repeats the line (it may carry a cell id) */
			CP_CHECK(error && !strstr(error->message, cases[i].line));
			continue;
		}
		CP_CHECK_INT(r.kind, cases[i].kind);
		CP_CHECK_INT(r.n, cases[i].n);
		CP_CHECK_INT(r.stat, cases[i].stat);
		CP_CHECK_INT(r.act, cases[i].act);
		CP_CHECK_INT(r.cause_type, cases[i].cause_type);
		CP_CHECK_INT(r.reject_cause, cases[i].cause);
		CP_CHECK(strcmp(r.area, cases[i].area) == 0);
	}
	CP_CHECK(cp_at_stat_registered(1) && cp_at_stat_registered(5) && !cp_at_stat_registered(3) &&
		 !cp_at_stat_registered(2) && !cp_at_stat_registered(0));
}

static void
test_apdu(void)
{
	static const struct {
		const char *line;
		const char *hex;   /* NULL: refused */
	} cases[] = {
		{ "+CSIM: 4,\"9000\"", "9000" },
		{ "+CSIM: 8,\"0102903F\"", "0102903f" },
		{ "+CSIM:4,\"6A82\"", "6a82" },
		{ "+CSIM: 6,\"9000\"", NULL },       /* length mismatch */
		{ "+CSIM: 3,\"900\"", NULL },        /* odd */
		{ "+CSIM: 2,\"90\"", NULL },         /* no SW */
		{ "+CSIM: 4,\"90G0\"", NULL },
		{ "+CSIM: 4,\"9000\",1", NULL },
		{ "+CSIM: -4,\"9000\"", NULL },
		{ "+CGLA: 4,\"9000\"", NULL },       /* another command's */
		{ "+CSIM: 4,9000\"", NULL },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) b = cp_at_parse_apdu_answer(cases[i].line, "+CSIM:", &error);

		CP_CHECK_INT(b != NULL, cases[i].hex != NULL);
		if (b) {
			gsize n;
			const guint8 *d = g_bytes_get_data(b, &n);

			CP_CHECK_HEX(d, n, cases[i].hex);
		} else {
			CP_CHECK(g_error_matches(error, CP_ERROR, CP_ERR_MODEM));
		}
	}
}

static void
test_small(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *f = NULL;
	g_autofree char *type = NULL, *apn = NULL;
	guint ch = 0, cid = 0;

	CP_CHECK(cp_at_parse_channel("1", &ch, NULL) && ch == 1);
	CP_CHECK(cp_at_parse_channel("+CCHO: 3", &ch, NULL) && ch == 3);
	CP_CHECK(!cp_at_parse_channel("0", &ch, NULL));
	CP_CHECK(!cp_at_parse_channel("20", &ch, NULL));
	CP_CHECK(!cp_at_parse_channel("+CCHO: 1,2", &ch, NULL));

	a = cp_at_parse_iccid("+QCCID: 8988211000000000017", "+QCCID:", NULL);
	CP_CHECK(a && strcmp(a, "8988211000000000017") == 0);
	b = cp_at_parse_iccid("+ICCID: 8988211000000000017F", "+ICCID:", NULL);
	CP_CHECK(b && strcmp(b, "8988211000000000017") == 0);
	c = cp_at_parse_iccid("+CCID: \"89882110000000000178\"", "+CCID:", NULL);
	CP_CHECK(c && strcmp(c, "89882110000000000178") == 0);
	CP_CHECK(!cp_at_parse_iccid("+CCID: 89882110000", "+CCID:", NULL));
	CP_CHECK(!cp_at_parse_iccid("+CCID: 89882110000000000A7", "+CCID:", NULL));
	CP_CHECK(!cp_at_parse_iccid("+QCCID: 8988211000000000017", "+CCID:", NULL));
	/* EF.ICCID as +CRSM reads it: nibble-swapped, F-padded */
	d = cp_at_iccid_from_ef("988812010000000010F7", NULL);
	CP_CHECK(d && strcmp(d, "8988211000000000017") == 0);
	CP_CHECK(!cp_at_iccid_from_ef("988812010000000010", NULL));

	e = cp_at_parse_imsi("001010123456789", NULL);
	CP_CHECK(e && strcmp(e, "001010123456789") == 0);
	CP_CHECK(!cp_at_parse_imsi("0010101234567890", NULL));
	CP_CHECK(!cp_at_parse_imsi("00101012345678a", NULL));
	CP_CHECK(!cp_at_parse_imsi("+CIMI: 001010123456789", NULL));

	f = cp_at_parse_revision("+CGMR: LE20B04SIM7600M22", NULL);
	CP_CHECK(f && strcmp(f, "LE20B04SIM7600M22") == 0);
	g_free(f);
	f = cp_at_parse_revision("L0.0.00.00.05.06 [Feb 03 2018 13:00:41]", NULL);
	CP_CHECK(f && strcmp(f, "L0.0.00.00.05.06 [Feb 03 2018 13:00:41]") == 0);
	g_free(f);
	f = NULL;
	CP_CHECK(!cp_at_parse_revision("+CGMR: ", NULL));
	CP_CHECK(!cp_at_parse_revision("BG96\tMAR02", NULL));

	CP_CHECK(cp_at_parse_cgdcont("+CGDCONT: 1,\"IPV4V6\",\"iot.example\",\"0.0.0.0\",0,0", &cid, &type, &apn, &error));
	CP_CHECK(cid == 1 && strcmp(type, "IPV4V6") == 0 && strcmp(apn, "iot.example") == 0);
	g_clear_pointer(&type, g_free);
	g_clear_pointer(&apn, g_free);
	CP_CHECK(cp_at_parse_cgdcont("+CGDCONT: 2,\"IP\",\"\"", &cid, &type, &apn, NULL));
	CP_CHECK(cid == 2 && strcmp(apn, "") == 0);
	g_clear_pointer(&type, g_free);
	g_clear_pointer(&apn, g_free);
	CP_CHECK(!cp_at_parse_cgdcont("+CGDCONT: 1,IP,\"internet\"", &cid, &type, &apn, NULL));
	CP_CHECK(!cp_at_parse_cgdcont("+CGDCONT: x,\"IP\",\"internet\"", &cid, &type, &apn, NULL));
	CP_CHECK(!cp_at_parse_cgdcont("+CGDCONT: 1,\"IP\"", &cid, &type, &apn, NULL));

	{
		g_autofree char *p1 = cp_at_parse_pin_state("+CPIN: READY", NULL);
		g_autofree char *p2 = cp_at_parse_pin_state("+CPIN: SIM PIN", NULL);

		CP_CHECK(p1 && strcmp(p1, "READY") == 0);
		CP_CHECK(p2 && strcmp(p2, "SIM PIN") == 0);
		CP_CHECK(!cp_at_parse_pin_state("+CPIN: ", NULL));
		CP_CHECK(!cp_at_parse_pin_state("+CPIN: ready", NULL));
		CP_CHECK(!cp_at_parse_pin_state("+CPIN: READY,1", NULL));
	}

	CP_CHECK(cp_at_apn_valid("internet"));
	CP_CHECK(cp_at_apn_valid("iot.cellprov-test.mnc001.mcc001.gprs"));
	CP_CHECK(!cp_at_apn_valid(""));
	CP_CHECK(!cp_at_apn_valid("bad\",\"apn"));
	CP_CHECK(!cp_at_apn_valid("a..b"));
	CP_CHECK(!cp_at_apn_valid(".a"));
	CP_CHECK(!cp_at_apn_valid("a."));
	CP_CHECK(!cp_at_apn_valid("a b"));
	f = g_strnfill(101, 'a');
	CP_CHECK(!cp_at_apn_valid(f));
}

int
main(void)
{
	test_registration();
	test_apdu();
	test_small();
	return cp_test_done("test-at-commands");
}
