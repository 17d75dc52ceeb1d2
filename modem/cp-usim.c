/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-usim.h"

#include <string.h>

#include "cp-glib.h"

gboolean
cp_usim_imsi_encode(const char *imsi, guint8 out[9])
{
	gsize n = imsi ? strlen(imsi) : 0;

	if (n < 6 || n > 15)
		return FALSE;
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isdigit(imsi[i]))
			return FALSE;
	memset(out, 0xFF, 9);
	out[0] = (guint8)((n + 2) / 2);
	/* the first digit shares its byte with the parity nibble */
	out[1] = (guint8)(((imsi[0] - '0') << 4) | ((n & 1) ? 0x9 : 0x1));
	for (gsize i = 1; i < n; i++) {
		gsize b = 2 + (i - 1) / 2;
		int d = imsi[i] - '0';

		if ((i - 1) % 2 == 0)
			out[b] = (guint8)((out[b] & 0xF0) | d);
		else
			out[b] = (guint8)((out[b] & 0x0F) | (d << 4));
	}
	return TRUE;
}

char *
cp_usim_imsi_decode(const guint8 *ef, gsize len)
{
	g_autoptr(GString) s = NULL;
	guint n;

	if (len < 2 || ef[0] < 1 || ef[0] > 8 || (gsize)ef[0] + 1 > len)
		return NULL;
	n = ef[0];
	s = g_string_new(NULL);
	for (guint i = 1; i <= n; i++) {
		guint lo = ef[i] & 0x0F, hi = ef[i] >> 4;

		if (i > 1) {
			if (lo > 9)
				return NULL;
			g_string_append_c(s, (char)('0' + lo));
		}
		if (hi == 0xF && i == n)
			break;
		if (hi > 9)
			return NULL;
		g_string_append_c(s, (char)('0' + hi));
	}
	if (s->len < 6 || s->len > 15)
		return NULL;
	return g_string_free(g_steal_pointer(&s), FALSE);
}

char *
cp_usim_iccid_decode(const guint8 *ef, gsize len)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (gsize i = 0; i < len; i++) {
		guint lo = ef[i] & 0x0F, hi = ef[i] >> 4;

		if (lo == 0xF)
			break;
		if (lo > 9)
			return NULL;
		g_string_append_c(s, (char)('0' + lo));
		if (hi == 0xF)
			break;
		if (hi > 9)
			return NULL;
		g_string_append_c(s, (char)('0' + hi));
	}
	if (s->len == 0)
		return NULL;
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Characters whose GSM 7-bit default alphabet code equals ASCII. */
static gboolean
gsm7_same_as_ascii(gunichar c)
{
	if (c >= 'A' && c <= 'Z')
		return TRUE;
	if (c >= 'a' && c <= 'z')
		return TRUE;
	if (c >= '0' && c <= '9')
		return TRUE;
	return c && strchr(" !\"#%&'()*+,-./:;<=>?", (int)c) != NULL;
}

gboolean
cp_usim_spn_encode(const char *name, guint8 display_condition, guint8 out[17])
{
	gboolean gsm = TRUE;
	glong n;
	g_autofree gunichar2 *u16 = NULL;

	if (!name || !*name || !g_utf8_validate(name, -1, NULL))
		return FALSE;
	memset(out, 0xFF, 17);
	out[0] = display_condition;
	for (const char *p = name; *p; p = g_utf8_next_char(p))
		if (!gsm7_same_as_ascii(g_utf8_get_char(p)))
			gsm = FALSE;
	if (gsm) {
		gsize len = MIN(strlen(name), 16);

		memcpy(out + 1, name, len);
		return TRUE;
	}
	u16 = g_utf8_to_utf16(name, -1, NULL, &n, NULL);
	if (!u16)
		return FALSE;
	out[1] = 0x80;
	for (glong i = 0; i < n && i < 7; i++) {
		out[2 + 2 * i] = (guint8)(u16[i] >> 8);
		out[3 + 2 * i] = (guint8)u16[i];
	}
	return TRUE;
}

const char *
cp_usim_ef_name(CpUsimEf ef)
{
	switch (ef) {
	case CP_USIM_EF_IMSI:
		return "EF.IMSI";
	case CP_USIM_EF_AD:
		return "EF.AD";
	case CP_USIM_EF_SPN:
		return "EF.SPN";
	case CP_USIM_EF_AUTH_KEY:
		return "EF.USIM_AUTH_KEY";
	case CP_USIM_EF_AUTH_KEY_2G:
		return "EF.SIM_AUTH_KEY (2G)";
	case CP_USIM_EF_ISIM_AUTH_KEY:
		return "EF.ISIM_AUTH_KEY";
	case CP_USIM_N_EF:
		break;
	}
	return "?";
}

/* ---- sysmoISIM-SJA2 / SJA5 --------------------------------------------- */

static const guint8 sysmo_usim_aid[] = { 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02 };
static const guint8 sysmo_isim_aid[] = { 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04 };

#define SYSMO_AUTH_MILENAGE 0x04
#define SYSMO_AUTH_USE_OPC 0x10

static gboolean
sysmo_encode(CpUsimEf ef, const CpUsimValues *v, const guint8 *old, guint8 *out, GError **error)
{
	switch (ef) {
	case CP_USIM_EF_IMSI:
		if (!cp_usim_imsi_encode(v->imsi, out)) {
			cp_set_error(error, CP_ERR_ARGUMENT, "the IMSI must be 6-15 digits");
			return FALSE;
		}
		return TRUE;
	case CP_USIM_EF_AD:
		/* keep the UE operation mode and additional information */
		memcpy(out, old, 4);
		out[3] = (guint8)((old[3] & 0xF0) | (v->mnc_length & 0x0F));
		return TRUE;
	case CP_USIM_EF_SPN:
		if (!cp_usim_spn_encode(v->spn, old[0] == 0xFF ? 0x01 : old[0], out)) {
			cp_set_error(error, CP_ERR_ARGUMENT, "the network name must be non-empty UTF-8");
			return FALSE;
		}
		return TRUE;
	case CP_USIM_EF_AUTH_KEY:
		if (!v->k || v->k->len != 16 || !v->opc || v->opc->len != 16) {
			cp_set_error(error, CP_ERR_ARGUMENT, "K and OPc must be 16 bytes each");
			return FALSE;
		}
		/* the card's own bits above the algorithm and OPc flag stay */
		out[0] = (guint8)((old[0] & 0xE0) | SYSMO_AUTH_USE_OPC | SYSMO_AUTH_MILENAGE);
		memcpy(out + 1, v->k->data, 16);
		memcpy(out + 17, v->opc->data, 16);
		return TRUE;
	case CP_USIM_EF_ISIM_AUTH_KEY:
		/* the USIM's layout; IMS AKA is Milenage as in the USIM */
		return sysmo_encode(CP_USIM_EF_AUTH_KEY, v, old, out, error);
	case CP_USIM_EF_AUTH_KEY_2G:
		/* K at 1 and OPc at 17, as pySim writes them; the 2G algorithm
		 * (COMP128 or Milenage, bits 0-3) stays, bit 4 says the second
		 * field is OPc (pySim/sysmocom_sja2.py, EF_SIM_AUTH_KEY) */
		if (!v->k || v->k->len != 16 || !v->opc || v->opc->len != 16) {
			cp_set_error(error, CP_ERR_ARGUMENT, "K and OPc must be 16 bytes each");
			return FALSE;
		}
		out[0] = (guint8)(old[0] | SYSMO_AUTH_USE_OPC);
		memcpy(out + 1, v->k->data, 16);
		memcpy(out + 17, v->opc->data, 16);
		return TRUE;
	case CP_USIM_N_EF:
		break;
	}
	cp_set_error(error, CP_ERR_ARGUMENT, "no such file");
	return FALSE;
}

/*
 * Every copy of the key a sysmoISIM keeps, in the order pySim writes them
 * (pySim/legacy/cards.py, SysmoISIMSJA2.program): DF.SYSTEM's 2G key
 * (6F20, the same file as ADF.USIM's EF.USIM_AUTH_KEY_2G AF22), ADF.ISIM's
 * EF.ISIM_AUTH_KEY (AF20), and ADF.USIM's EF.USIM_AUTH_KEY last; ADF.USIM's
 * other files just before its key, so that the channel goes to each DF
 * once. Only the first 33 bytes (config, K, OPc) are written and backed
 * up; an SJA5's 67-byte TUAK-sized files keep the rest. EF.IMSI has SFI
 * 07 and EF.AD SFI 03 (TS 31.102 4.2.2, 4.2.18; both cards' FCPs say so,
 * docs/simulators.md); EF.SPN and the key files have none.
 */
#define SYSMO_FILES \
	.aid = sysmo_usim_aid, \
	.aid_len = sizeof(sysmo_usim_aid), \
	.adm1_p2 = 0x0A, \
	.fid = { 0x6F07, 0x6FAD, 0x6F46, 0xAF20, 0x6F20, 0xAF20 }, \
	.df = { CP_USIM_DF_USIM, CP_USIM_DF_USIM, CP_USIM_DF_USIM, CP_USIM_DF_USIM, \
		CP_USIM_DF_SYSTEM, CP_USIM_DF_ISIM }, \
	.size = { 9, 4, 17, 33, 33, 33 }, \
	.sfi = { [CP_USIM_EF_IMSI] = 0x07, [CP_USIM_EF_AD] = 0x03 }, \
	.order = { CP_USIM_EF_AUTH_KEY_2G, CP_USIM_EF_ISIM_AUTH_KEY, CP_USIM_EF_IMSI, CP_USIM_EF_AD, \
		   CP_USIM_EF_SPN, CP_USIM_EF_AUTH_KEY }, \
	.isim_aid = sysmo_isim_aid, \
	.isim_aid_len = sizeof(sysmo_isim_aid), \
	.probe_fid = 0xAF20, \
	.encode = sysmo_encode

static const CpUsimDriver sysmo_sja2 = {
	.name = "sysmo-isim-sja2",
	.description = "sysmocom sysmoISIM-SJA2 / SJA5",
	SYSMO_FILES,
};

/* SJA5 keeps the SJA2 layout for everything written here. */
static const CpUsimDriver sysmo_sja5 = {
	.name = "sysmo-isim-sja5",
	.description = "sysmocom sysmoISIM-SJA5",
	SYSMO_FILES,
};

static const CpUsimDriver *const drivers[] = { &sysmo_sja2, &sysmo_sja5, NULL };

const CpUsimDriver *const *
cp_usim_drivers(void)
{
	return drivers;
}

const CpUsimDriver *
cp_usim_driver_find(const char *name)
{
	for (gsize i = 0; drivers[i]; i++)
		if (g_strcmp0(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}
