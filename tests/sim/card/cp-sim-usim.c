/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-sim-usim.h"

#include <stdio.h>
#include <string.h>

#include "cp-buf.h"
#include "cp-secret.h"

#define N_CHANNELS 4

/* sysmoISIM-SJA2's USIM application (RID A000000087, 1002 = USIM). */
static const uint8_t usim_aid[] = {
	0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF,
	0x33, 0xFF, 0x01, 0x89, 0x00, 0x00, 0x01, 0x00,
};

typedef enum {
	ACC_ALWAYS,
	ACC_ADM1,
} Access;

typedef struct {
	guint16 fid;
	gboolean in_adf;      /* FALSE: in the MF */
	Access read;
	Access update;
	gsize size;
	uint8_t data[64];
} SimFile;

typedef struct {
	gboolean open;
	gboolean in_adf;      /* current DF: ADF.USIM or the MF */
	SimFile *ef;          /* current EF, NULL if none */
} Channel;

struct _CpSimUsim {
	char *iccid;
	char *adm1;
	guint adm1_max;
	guint adm1_left;
	gboolean adm1_ok;
	uint8_t sqn_ms[6];
	SimFile files[6];
	gsize n_files;
	Channel ch[N_CHANNELS];
	guint n_auth;
	guint n_updates;
};

static SimFile *
file_add(CpSimUsim *u, guint16 fid, gboolean in_adf, Access rd, Access upd, gsize size)
{
	SimFile *f = &u->files[u->n_files++];

	f->fid = fid;
	f->in_adf = in_adf;
	f->read = rd;
	f->update = upd;
	f->size = size;
	memset(f->data, 0xFF, sizeof(f->data));
	return f;
}

static SimFile *
file_find(CpSimUsim *u, guint16 fid)
{
	for (gsize i = 0; i < u->n_files; i++)
		if (u->files[i].fid == fid)
			return &u->files[i];
	return NULL;
}

/*
 * EF.IMSI (TS 31.102 4.2.2) seen as a nibble string, low nibble of each
 * byte first: the type and parity nibble (1001 odd, 0001 even number of
 * digits), the digits, F padding. Written this way, not as the backend's
 * byte arithmetic, so that a mistake there cannot be mirrored here.
 */
gboolean
cp_sim_imsi_encode(const char *imsi, uint8_t out[9])
{
	uint8_t nib[16];
	gsize n = imsi ? strlen(imsi) : 0;

	if (n < 6 || n > 15 || strspn(imsi, "0123456789") != n)
		return FALSE;
	memset(nib, 0xF, sizeof(nib));
	nib[0] = (n % 2) ? 0x9 : 0x1;
	for (gsize i = 0; i < n; i++)
		nib[1 + i] = (uint8_t)(imsi[i] - '0');
	out[0] = (uint8_t)((n + 1 + 1) / 2);
	for (gsize k = 0; k < 8; k++)
		out[1 + k] = (uint8_t)(nib[2 * k] | nib[2 * k + 1] << 4);
	return TRUE;
}

char *
cp_sim_imsi_decode(const uint8_t *ef, gsize len)
{
	char digits[16];
	gsize n = 0, nibbles;
	gboolean padding = FALSE;

	if (len < 2 || ef[0] < 1 || ef[0] > 8 || (gsize)ef[0] + 1 > len)
		return NULL;
	nibbles = 2u * ef[0];
	for (gsize i = 1; i < nibbles; i++) {
		uint8_t v = (i % 2) ? ef[1 + i / 2] >> 4 : ef[1 + i / 2] & 0x0F;

		if (v == 0xF) {
			padding = TRUE;
			continue;
		}
		if (v > 9 || padding)
			return NULL;
		digits[n++] = (char)('0' + v);
	}
	/* the first nibble says IMSI and the parity of the digit count */
	if (n < 6 || n > 15 || (ef[1] & 0x0F) != ((n % 2) ? 0x9 : 0x1))
		return NULL;
	digits[n] = '\0';
	return g_strdup(digits);
}

static gboolean
iccid_encode(const char *iccid, uint8_t out[10])
{
	gsize n = strlen(iccid);

	if (n < 18 || n > 20)
		return FALSE;
	memset(out, 0xFF, 10);
	for (gsize i = 0; i < n; i++) {
		if (!g_ascii_isdigit(iccid[i]))
			return FALSE;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)((out[i / 2] & 0xF0) | (iccid[i] - '0'));
		else
			out[i / 2] = (uint8_t)((out[i / 2] & 0x0F) | ((iccid[i] - '0') << 4));
	}
	return TRUE;
}

CpSimUsim *
cp_sim_usim_new(const char *iccid, const char *imsi, guint mnc_length,
		const uint8_t k[16], const uint8_t opc[16],
		const char *adm1, guint adm1_retries)
{
	CpSimUsim *u = g_new0(CpSimUsim, 1);
	SimFile *f;

	if (strlen(adm1) != 8) {
		fprintf(stderr, "cp-qmi-sim: ADM1 must be 8 characters\n");
		goto fail;
	}
	u->iccid = g_strdup(iccid);
	u->adm1 = g_strdup(adm1);
	u->adm1_max = u->adm1_left = adm1_retries;

	f = file_add(u, CP_SIM_FID_ICCID, FALSE, ACC_ALWAYS, ACC_ADM1, 10);
	if (!iccid_encode(iccid, f->data)) {
		fprintf(stderr, "cp-qmi-sim: ICCID must be 18-20 digits\n");
		goto fail;
	}
	f = file_add(u, CP_SIM_FID_IMSI, TRUE, ACC_ALWAYS, ACC_ADM1, 9);
	if (!cp_sim_imsi_encode(imsi, f->data)) {
		fprintf(stderr, "cp-qmi-sim: IMSI must be 6-15 digits\n");
		goto fail;
	}
	f = file_add(u, CP_SIM_FID_AD, TRUE, ACC_ALWAYS, ACC_ADM1, 4);
	f->data[0] = 0x00;
	f->data[1] = 0x00;
	f->data[2] = 0x00;
	f->data[3] = (uint8_t)mnc_length;
	f = file_add(u, CP_SIM_FID_SPN, TRUE, ACC_ALWAYS, ACC_ADM1, 17);
	f->data[0] = 0x01;
	memcpy(f->data + 1, "sysmocom", 8);
	f = file_add(u, CP_SIM_FID_AUTH_KEY, TRUE, ACC_ADM1, ACC_ADM1, 33);
	f->data[0] = 0x14;   /* Milenage, OPc given */
	memcpy(f->data + 1, k, 16);
	memcpy(f->data + 17, opc, 16);
	u->ch[0].open = TRUE;
	return u;
fail:
	cp_sim_usim_free(u);
	return NULL;
}

void
cp_sim_usim_free(CpSimUsim *u)
{
	if (!u)
		return;
	cp_cleanse(u->files, sizeof(u->files));
	if (u->adm1)
		cp_cleanse(u->adm1, strlen(u->adm1));
	g_free(u->adm1);
	g_free(u->iccid);
	g_free(u);
}

void
cp_sim_usim_reset(CpSimUsim *u)
{
	u->adm1_ok = FALSE;
	memset(u->ch, 0, sizeof(u->ch));
	u->ch[0].open = TRUE;
}

guint
cp_sim_usim_open_channel(CpSimUsim *u, const uint8_t *aid, gsize aid_len, guint16 *sw)
{
	if (aid_len < 5 || aid_len > sizeof(usim_aid) || memcmp(aid, usim_aid, aid_len) != 0) {
		*sw = 0x6A82;
		return 0;
	}
	for (guint i = 1; i < N_CHANNELS; i++) {
		if (!u->ch[i].open) {
			u->ch[i].open = TRUE;
			u->ch[i].in_adf = TRUE;
			u->ch[i].ef = NULL;
			*sw = 0x9000;
			return i;
		}
	}
	*sw = 0x6A81;
	return 0;
}

gboolean
cp_sim_usim_close_channel(CpSimUsim *u, guint channel)
{
	if (channel == 0 || channel >= N_CHANNELS || !u->ch[channel].open)
		return FALSE;
	u->ch[channel].open = FALSE;
	return TRUE;
}

static void
put_sw(GByteArray *out, guint16 sw)
{
	uint8_t b[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };

	g_byte_array_append(out, b, 2);
}

static gboolean
allowed(CpSimUsim *u, Access a)
{
	return a == ACC_ALWAYS || u->adm1_ok;
}

static void
fcp(GByteArray *out, SimFile *f)
{
	uint8_t t[] = {
		0x62, 0x13,
		0x82, 0x02, 0x41, 0x21,                                    /* transparent EF */
		0x83, 0x02, (uint8_t)(f->fid >> 8), (uint8_t)f->fid,
		0x80, 0x02, (uint8_t)(f->size >> 8), (uint8_t)f->size,
		0x8A, 0x01, 0x05,                                          /* activated */
		0x88, 0x01, (uint8_t)((f->fid & 0x1F) << 3),
	};

	g_byte_array_append(out, t, sizeof(t));
}

static void
do_select(CpSimUsim *u, Channel *c, const uint8_t *apdu, gsize lc, gboolean want_fcp, GByteArray *out)
{
	const uint8_t *d = apdu + 5;
	uint8_t p1 = apdu[2];

	if (p1 == 0x04) {
		if (lc < 5 || lc > sizeof(usim_aid) || memcmp(d, usim_aid, lc) != 0) {
			put_sw(out, 0x6A82);
			return;
		}
		c->in_adf = TRUE;
		c->ef = NULL;
		put_sw(out, 0x9000);
		return;
	}
	if (p1 != 0x00 || lc != 2) {
		put_sw(out, 0x6A86);
		return;
	}
	guint16 fid = (guint16)((d[0] << 8) | d[1]);

	if (fid == 0x3F00) {
		c->in_adf = FALSE;
		c->ef = NULL;
		put_sw(out, 0x9000);
		return;
	}
	if (fid == 0x7FFF) {
		c->in_adf = TRUE;
		c->ef = NULL;
		put_sw(out, 0x9000);
		return;
	}
	SimFile *f = file_find(u, fid);

	if (!f || f->in_adf != c->in_adf) {
		put_sw(out, 0x6A82);
		return;
	}
	c->ef = f;
	if (want_fcp)
		fcp(out, f);
	put_sw(out, 0x9000);
}

static void
do_verify(CpSimUsim *u, const uint8_t *apdu, gsize len, gsize lc, GByteArray *out)
{
	if (apdu[2] != 0x00 || apdu[3] != 0x0A) {
		put_sw(out, 0x6A88);   /* only ADM1 is modelled */
		return;
	}
	if (u->adm1_left == 0) {
		put_sw(out, 0x6983);
		return;
	}
	if (len == 4 || lc == 0) {
		put_sw(out, u->adm1_ok ? 0x9000 : (guint16)(0x63C0 | u->adm1_left));
		return;
	}
	if (lc != 8) {
		put_sw(out, 0x6700);
		return;
	}
	if (cp_memeq_consttime(apdu + 5, u->adm1, 8)) {
		u->adm1_left = u->adm1_max;
		u->adm1_ok = TRUE;
		put_sw(out, 0x9000);
		return;
	}
	u->adm1_ok = FALSE;
	u->adm1_left--;
	put_sw(out, u->adm1_left ? (guint16)(0x63C0 | u->adm1_left) : 0x6983);
}

CpAkaResult
cp_sim_usim_authenticate(CpSimUsim *u, const uint8_t rand[16], const uint8_t autn[16],
			 uint8_t res[8], uint8_t auts[14])
{
	SimFile *key = file_find(u, CP_SIM_FID_AUTH_KEY);
	uint8_t opc[16], ck[16], ik[16];
	CpAkaResult r;

	u->n_auth++;
	if ((key->data[0] & 0x0F) != 0x04)
		return CP_AKA_MAC_FAIL;   /* no Milenage configured: nothing can match */
	if (key->data[0] & 0x10)
		memcpy(opc, key->data + 17, 16);
	else if (cp_milenage_opc(key->data + 1, key->data + 17, opc) != CP_OK)
		return CP_AKA_MAC_FAIL;
	r = cp_aka_usim(key->data + 1, opc, rand, autn, u->sqn_ms, res, ck, ik, auts);
	cp_cleanse(opc, sizeof(opc));
	cp_cleanse(ck, sizeof(ck));
	cp_cleanse(ik, sizeof(ik));
	return r;
}

static void
do_authenticate(CpSimUsim *u, Channel *c, const uint8_t *apdu, gsize lc, GByteArray *out)
{
	const uint8_t *d = apdu + 5;
	uint8_t res[8], auts[14];

	if (!c->in_adf) {
		put_sw(out, 0x6985);
		return;
	}
	if (apdu[2] != 0x00 || apdu[3] != 0x81) {
		put_sw(out, 0x6A86);
		return;
	}
	if (lc != 34 || d[0] != 16 || d[17] != 16) {
		put_sw(out, 0x6700);
		return;
	}
	switch (cp_sim_usim_authenticate(u, d + 1, d + 18, res, auts)) {
	case CP_AKA_OK: {
		/* CK and IK are not needed by anyone in the bench; zeros keep
		 * the response's TS 31.102 shape. */
		uint8_t r[2 + 8 + 1 + 16 + 1 + 16] = { 0xDB, 8 };

		memcpy(r + 2, res, 8);
		r[10] = 16;
		r[27] = 16;
		g_byte_array_append(out, r, sizeof(r));
		put_sw(out, 0x9000);
		break;
	}
	case CP_AKA_SYNC_FAIL: {
		uint8_t r[2 + 14] = { 0xDC, 14 };

		memcpy(r + 2, auts, 14);
		g_byte_array_append(out, r, sizeof(r));
		put_sw(out, 0x9000);
		break;
	}
	default:
		put_sw(out, 0x9862);
	}
}

void
cp_sim_usim_apdu(CpSimUsim *u, guint channel, const uint8_t *apdu, gsize len, GByteArray *out)
{
	Channel *c;
	gsize lc = 0;
	guint off;

	if (len < 4) {
		put_sw(out, 0x6700);
		return;
	}
	if ((apdu[0] & 0xF0) != 0x00 && (apdu[0] & 0xF0) != 0x80) {
		put_sw(out, 0x6E00);
		return;
	}
	/* The CLA's channel bits must name the channel the command went to. */
	if ((apdu[0] & 0x03) != channel || channel >= N_CHANNELS || !u->ch[channel].open) {
		put_sw(out, 0x6881);
		return;
	}
	c = &u->ch[channel];
	if (len > 5) {
		lc = apdu[4];
		if (len != 5 + lc && len != 6 + lc) {
			put_sw(out, 0x6700);
			return;
		}
	}
	off = (guint)((apdu[2] << 8) | apdu[3]);

	switch (apdu[1]) {
	case 0xA4:
		do_select(u, c, apdu, lc, apdu[3] == 0x04, out);
		return;
	case 0x20:
		do_verify(u, apdu, len, lc, out);
		return;
	case 0x88:
		do_authenticate(u, c, apdu, lc, out);
		return;
	case 0xB0: {
		/* case 2: CLA INS P1 P2 [Le]; a READ with data is malformed */
		guint le = len == 5 ? apdu[4] : 0;

		if (len > 5) {
			put_sw(out, 0x6700);
			return;
		}
		if (!c->ef) {
			put_sw(out, 0x6986);
			return;
		}
		if (!allowed(u, c->ef->read)) {
			put_sw(out, 0x6982);
			return;
		}
		if (off >= c->ef->size) {
			put_sw(out, 0x6B00);
			return;
		}
		if (le == 0 || off + le > c->ef->size)
			le = (guint)(c->ef->size - off);
		g_byte_array_append(out, c->ef->data + off, le);
		put_sw(out, 0x9000);
		return;
	}
	case 0xD6:
		if (!c->ef) {
			put_sw(out, 0x6986);
			return;
		}
		if (!allowed(u, c->ef->update)) {
			put_sw(out, 0x6982);
			return;
		}
		if (lc == 0 || off + lc > c->ef->size) {
			put_sw(out, 0x6700);
			return;
		}
		memcpy(c->ef->data + off, apdu + 5, lc);
		u->n_updates++;
		put_sw(out, 0x9000);
		return;
	default:
		put_sw(out, 0x6D00);
	}
}

guint16
cp_sim_usim_read(CpSimUsim *u, guint16 fid, guint16 offset, guint16 len, GByteArray *out)
{
	SimFile *f = file_find(u, fid);

	if (!f)
		return 0x6A82;
	if (!allowed(u, f->read))
		return 0x6982;
	if (offset >= f->size)
		return 0x6B00;
	if (len == 0 || offset + len > f->size)
		len = (guint16)(f->size - offset);
	g_byte_array_append(out, f->data + offset, len);
	return 0x9000;
}

char *
cp_sim_usim_get_imsi(CpSimUsim *u)
{
	SimFile *f = file_find(u, CP_SIM_FID_IMSI);

	return cp_sim_imsi_decode(f->data, f->size);
}

guint
cp_sim_usim_get_mnc_length(CpSimUsim *u)
{
	return file_find(u, CP_SIM_FID_AD)->data[3] & 0x0F;
}

const char *
cp_sim_usim_get_iccid(CpSimUsim *u)
{
	return u->iccid;
}

guint
cp_sim_usim_get_adm1_retries(CpSimUsim *u)
{
	return u->adm1_left;
}

void
cp_sim_usim_dump(CpSimUsim *u, GString *out)
{
	static const struct {
		guint16 fid;
		const char *name;
	} names[] = {
		{ CP_SIM_FID_ICCID, "ef-iccid" },
		{ CP_SIM_FID_IMSI, "ef-imsi" },
		{ CP_SIM_FID_AD, "ef-ad" },
		{ CP_SIM_FID_SPN, "ef-spn" },
		{ CP_SIM_FID_AUTH_KEY, "ef-usim-auth-key" },
	};
	g_autofree char *imsi = cp_sim_usim_get_imsi(u);

	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		SimFile *f = file_find(u, names[i].fid);
		char hex[2 * sizeof(f->data) + 1];

		cp_hex_encode(f->data, f->size, hex);
		g_string_append_printf(out, "%s=%s\n", names[i].name, hex);
	}
	g_string_append_printf(out, "imsi=%s\n", imsi ? imsi : "");
	g_string_append_printf(out, "iccid=%s\n", u->iccid);
	g_string_append_printf(out, "adm1-retries=%u\n", u->adm1_left);
	g_string_append_printf(out, "card-updates=%u\n", u->n_updates);
	g_string_append_printf(out, "card-authentications=%u\n", u->n_auth);
}
