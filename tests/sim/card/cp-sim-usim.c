/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-sim-usim.h"

#include <stdio.h>
#include <string.h>

#include "cp-buf.h"
#include "cp-secret.h"

#define N_CHANNELS 4

/*
 * The applications EF.DIR lists on sysmoISIM-SJA2 and SJA5 cards, with
 * their records as the cards hold them (docs/simulators.md): the USIM
 * (label "USim1") and the ISIM (label "ISim1").
 */
static const uint8_t usim_aid[] = {
	0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF,
	0xFF, 0xFF, 0xFF, 0x89, 0x07, 0x09, 0x00, 0x00,
};
static const uint8_t isim_aid[] = {
	0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04, 0xFF,
	0xFF, 0xFF, 0xFF, 0x89, 0x07, 0x09, 0x00, 0x00,
};
static const char dir_usim[] =
	"61294f10a0000000871002ffffffff890709000050055553696d31730ea00c80011781025f608203454150";
static const char dir_isim[] =
	"61194f10a0000000871004ffffffff890709000050054953696d31";

#define DIR_RECORD_LEN 0x2B
#define DIR_RECORDS 8

typedef enum {
	DF_MF,
	DF_SYSTEM,
	DF_USIM,
	DF_ISIM,
} SimDf;

typedef enum {
	ACC_ALWAYS,
	ACC_ADM1,
} Access;

typedef struct _SimFile SimFile;
struct _SimFile {
	guint16 fid;
	SimDf df;
	const char *name;     /* dump key; NULL: not dumped */
	Access read;
	Access update;
	gsize size;
	gsize record_len;     /* 0: transparent */
	guint8 sfi;           /* 0: none */
	uint8_t *data;
	SimFile *link;        /* the same file under another name: its data */
};

typedef struct {
	const char *name;
	const char *atr;
	gsize ad_size;
	gsize auth_key_size;  /* EF.USIM_AUTH_KEY and EF.ISIM_AUTH_KEY */
	guint16 isim_fid;     /* ADF.ISIM's file id in its FCP */
} CardProfile;

/* Sizes and ATRs as read from the cards by pySim (docs/simulators.md). */
static const CardProfile cards[] = {
	{ "sysmoISIM-SJA2", "3b9f96801f878031e073fe211b674a4c753034054ba9", 4, 33, 0xFF01 },
	{ "sysmoISIM-SJA5", "3b9f96801f878031e073fe211b674a357530350265f8", 5, 67, 0xFF02 },
};

#define N_FILES 9

typedef struct {
	gboolean open;
	SimDf app;            /* the channel's application (7FFF) */
	SimDf df;             /* current DF */
	SimFile *ef;          /* current EF, NULL if none */
} Channel;

struct _CpSimUsim {
	const CardProfile *card;
	char *iccid;
	char *adm1;
	guint adm1_max;
	guint adm1_left;
	gboolean adm1_ok;
	CpSimLe le;
	uint8_t sqn_ms[6];
	SimFile files[N_FILES];
	gsize n_files;
	Channel ch[N_CHANNELS];
	guint n_auth;
	guint n_updates;
	/* every command: channel, INS P1 P2, a SELECT's file id or AID; no
	 * other data (a VERIFY carries ADM1, an UPDATE the keys) */
	GString *log;
};

static SimFile *
file_add(CpSimUsim *u, guint16 fid, SimDf df, const char *name, Access rd, Access upd, gsize size, guint8 sfi)
{
	SimFile *f = &u->files[u->n_files++];

	g_assert(u->n_files <= N_FILES);
	f->fid = fid;
	f->df = df;
	f->name = name;
	f->read = rd;
	f->update = upd;
	f->size = size;
	f->sfi = sfi;
	f->data = g_malloc(size);
	memset(f->data, 0xFF, size);
	return f;
}

static uint8_t *
fdata(SimFile *f)
{
	return f->link ? f->link->data : f->data;
}

static SimFile *
file_in(CpSimUsim *u, SimDf df, guint16 fid)
{
	for (gsize i = 0; i < u->n_files; i++)
		if (u->files[i].fid == fid && u->files[i].df == df)
			return &u->files[i];
	return NULL;
}

static SimFile *
file_find(CpSimUsim *u, guint16 fid)
{
	SimFile *f = file_in(u, DF_USIM, fid);

	return f ? f : file_in(u, DF_MF, fid);
}

static const uint8_t *
app_aid(SimDf app, gsize *len)
{
	*len = app == DF_ISIM ? sizeof(isim_aid) : sizeof(usim_aid);
	return app == DF_ISIM ? isim_aid : usim_aid;
}

/* The application named by a full AID or by a prefix only one AID has
 * (SELECT by DF name with a partial AID, TS 102 221 11.1.1); 6A82 if
 * none or several. */
static guint16
aid_find(const uint8_t *aid, gsize len, SimDf *app)
{
	static const SimDf apps[] = { DF_USIM, DF_ISIM };
	guint n = 0;

	if (len < 5 || len > 16)
		return 0x6A82;
	for (gsize i = 0; i < G_N_ELEMENTS(apps); i++) {
		gsize alen;
		const uint8_t *a = app_aid(apps[i], &alen);

		if (len <= alen && memcmp(a, aid, len) == 0) {
			*app = apps[i];
			n++;
		}
	}
	return n == 1 ? 0x9000 : 0x6A82;
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

const char *const *
cp_sim_usim_cards(void)
{
	static const char *names[G_N_ELEMENTS(cards) + 1];

	for (gsize i = 0; i < G_N_ELEMENTS(cards); i++)
		names[i] = cards[i].name;
	return names;
}

static void
auth_key_init(uint8_t *d, const uint8_t k[16], const uint8_t opc[16])
{
	d[0] = 0x14;   /* Milenage, OPc given */
	memcpy(d + 1, k, 16);
	memcpy(d + 17, opc, 16);
}

CpSimUsim *
cp_sim_usim_new_card(const char *card, const char *iccid, const char *imsi, guint mnc_length,
		     const uint8_t k[16], const uint8_t opc[16],
		     const char *adm1, guint adm1_retries)
{
	CpSimUsim *u = g_new0(CpSimUsim, 1);
	SimFile *f, *sys_key;

	for (gsize i = 0; i < G_N_ELEMENTS(cards); i++)
		if (g_ascii_strcasecmp(card, cards[i].name) == 0)
			u->card = &cards[i];
	if (!u->card) {
		fprintf(stderr, "cp-sim: unknown card '%s'\n", card);
		goto fail;
	}
	if (strlen(adm1) != 8) {
		fprintf(stderr, "cp-sim: ADM1 must be 8 characters\n");
		goto fail;
	}
	u->iccid = g_strdup(iccid);
	u->adm1 = g_strdup(adm1);
	u->adm1_max = u->adm1_left = adm1_retries;
	u->le = CP_SIM_LE_DEFAULT;
	u->log = g_string_new(NULL);

	/* MF: EF.DIR (SFI 30) and EF.ICCID (SFI 2) */
	f = file_add(u, CP_SIM_FID_DIR, DF_MF, "ef-dir", ACC_ALWAYS, ACC_ADM1,
		     DIR_RECORD_LEN * DIR_RECORDS, 30);
	f->record_len = DIR_RECORD_LEN;
	cp_hex_decode(dir_usim, f->data, DIR_RECORD_LEN);
	cp_hex_decode(dir_isim, f->data + DIR_RECORD_LEN, DIR_RECORD_LEN);
	f = file_add(u, CP_SIM_FID_ICCID, DF_MF, "ef-iccid", ACC_ALWAYS, ACC_ADM1, 10, 2);
	if (!iccid_encode(iccid, f->data)) {
		fprintf(stderr, "cp-sim: ICCID must be 18-20 digits\n");
		goto fail;
	}
	/* DF.SYSTEM: the 2G key, the same file as ADF.USIM's EF.USIM_AUTH_KEY_2G */
	sys_key = file_add(u, CP_SIM_FID_SIM_AUTH_KEY, DF_SYSTEM, "ef-sim-auth-key", ACC_ADM1, ACC_ADM1, 33, 0);
	auth_key_init(sys_key->data, k, opc);
	/* ADF.USIM */
	f = file_add(u, CP_SIM_FID_IMSI, DF_USIM, "ef-imsi", ACC_ALWAYS, ACC_ADM1, 9, 7);
	if (!cp_sim_imsi_encode(imsi, f->data)) {
		fprintf(stderr, "cp-sim: IMSI must be 6-15 digits\n");
		goto fail;
	}
	f = file_add(u, CP_SIM_FID_AD, DF_USIM, "ef-ad", ACC_ALWAYS, ACC_ADM1, u->card->ad_size, 3);
	memset(f->data, 0x00, 4);   /* an SJA5's fifth byte stays FF */
	f->data[3] = (uint8_t)mnc_length;
	f = file_add(u, CP_SIM_FID_SPN, DF_USIM, "ef-spn", ACC_ALWAYS, ACC_ADM1, 17, 0);
	f->data[0] = 0x01;
	memcpy(f->data + 1, "sysmocom", 8);
	f = file_add(u, CP_SIM_FID_AUTH_KEY, DF_USIM, "ef-usim-auth-key", ACC_ADM1, ACC_ADM1,
		     u->card->auth_key_size, 0);
	auth_key_init(f->data, k, opc);
	f = file_add(u, CP_SIM_FID_AUTH_KEY_2G, DF_USIM, "ef-usim-auth-key-2g", ACC_ADM1, ACC_ADM1, 33, 0);
	f->link = sys_key;
	/* ADF.ISIM */
	f = file_add(u, CP_SIM_FID_AUTH_KEY, DF_ISIM, "ef-isim-auth-key", ACC_ADM1, ACC_ADM1,
		     u->card->auth_key_size, 0);
	auth_key_init(f->data, k, opc);
	cp_sim_usim_reset(u);
	return u;
fail:
	cp_sim_usim_free(u);
	return NULL;
}

CpSimUsim *
cp_sim_usim_new(const char *iccid, const char *imsi, guint mnc_length,
		const uint8_t k[16], const uint8_t opc[16],
		const char *adm1, guint adm1_retries)
{
	return cp_sim_usim_new_card(CP_SIM_CARD_DEFAULT, iccid, imsi, mnc_length, k, opc, adm1, adm1_retries);
}

gsize
cp_sim_usim_get_atr(CpSimUsim *u, uint8_t atr[33])
{
	long n = cp_hex_decode(u->card->atr, atr, 33);

	return n > 0 ? (gsize)n : 0;
}

const char *
cp_sim_usim_get_card(CpSimUsim *u)
{
	return u->card->name;
}

void
cp_sim_usim_set_le(CpSimUsim *u, CpSimLe mode)
{
	u->le = mode;
}

gboolean
cp_sim_le_from_string(const char *name, CpSimLe *mode)
{
	if (g_strcmp0(name, "lenient") == 0)
		*mode = CP_SIM_LE_LENIENT;
	else if (g_strcmp0(name, "exact") == 0)
		*mode = CP_SIM_LE_EXACT;
	else if (g_strcmp0(name, "eof") == 0)
		*mode = CP_SIM_LE_EOF;
	else
		return FALSE;
	return TRUE;
}

void
cp_sim_usim_free(CpSimUsim *u)
{
	if (!u)
		return;
	for (gsize i = 0; i < u->n_files; i++) {
		cp_cleanse(u->files[i].data, u->files[i].size);
		g_free(u->files[i].data);
	}
	if (u->adm1)
		cp_cleanse(u->adm1, strlen(u->adm1));
	g_free(u->adm1);
	g_free(u->iccid);
	if (u->log)
		g_string_free(u->log, TRUE);
	g_free(u);
}

void
cp_sim_usim_drop_sfi(CpSimUsim *u)
{
	for (gsize i = 0; i < u->n_files; i++)
		u->files[i].sfi = 0;
}

void
cp_sim_usim_dir_usim_only(CpSimUsim *u)
{
	SimFile *f = file_in(u, DF_MF, CP_SIM_FID_DIR);

	memset(f->data + DIR_RECORD_LEN, 0xFF, DIR_RECORD_LEN);
}

void
cp_sim_usim_reset(CpSimUsim *u)
{
	u->adm1_ok = FALSE;
	memset(u->ch, 0, sizeof(u->ch));
	/* the modem activates the USIM on the basic channel at start */
	u->ch[0].open = TRUE;
	u->ch[0].app = DF_USIM;
	u->ch[0].df = DF_MF;
}

guint
cp_sim_usim_open_channel(CpSimUsim *u, const uint8_t *aid, gsize aid_len, guint16 *sw)
{
	SimDf app;

	if ((*sw = aid_find(aid, aid_len, &app)) != 0x9000)
		return 0;
	for (guint i = 1; i < N_CHANNELS; i++) {
		if (!u->ch[i].open) {
			u->ch[i].open = TRUE;
			u->ch[i].app = app;
			u->ch[i].df = app;
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
put_tlv(GByteArray *out, uint8_t tag, const uint8_t *v, gsize len)
{
	uint8_t h[2] = { tag, (uint8_t)len };

	g_byte_array_append(out, h, 2);
	g_byte_array_append(out, v, (guint)len);
}

/* TS 102 221 11.1.1.3: the FCP template of an EF (11.1.1.3.1) or of a
 * DF/ADF (11.1.1.3.2), with the data objects the sysmoISIM sends. */
static void
fcp_ef(GByteArray *out, SimFile *f)
{
	g_autoptr(GByteArray) t = g_byte_array_new();
	uint8_t fid[2] = { (uint8_t)(f->fid >> 8), (uint8_t)f->fid };
	uint8_t size[2] = { (uint8_t)(f->size >> 8), (uint8_t)f->size };
	uint8_t lcsi = 0x05;   /* operational, activated */
	uint8_t sfi = (uint8_t)(f->sfi << 3);

	if (f->record_len) {
		uint8_t d[5] = { 0x42, 0x21, 0x00, (uint8_t)f->record_len, (uint8_t)(f->size / f->record_len) };

		put_tlv(t, 0x82, d, 5);   /* linear fixed, shareable */
	} else {
		uint8_t d[2] = { 0x41, 0x21 };

		put_tlv(t, 0x82, d, 2);   /* transparent, shareable */
	}
	put_tlv(t, 0x83, fid, 2);
	put_tlv(t, 0x8A, &lcsi, 1);
	put_tlv(t, 0x80, size, 2);
	put_tlv(t, 0x88, &sfi, f->sfi ? 1 : 0);   /* empty: no SFI */
	put_tlv(out, 0x62, t->data, t->len);
}

static void
fcp_df(CpSimUsim *u, GByteArray *out, SimDf df)
{
	static const uint8_t desc[2] = { 0x78, 0x21 };   /* DF, shareable */
	/* PIN status template: PS_DO, PIN1, PIN2, ADM1, ADM2 */
	static const uint8_t pins[] = {
		0x90, 0x01, 0x70, 0x83, 0x01, 0x01, 0x83, 0x01, 0x81,
		0x83, 0x01, 0x0A, 0x83, 0x01, 0x0B,
	};
	g_autoptr(GByteArray) t = g_byte_array_new();
	uint8_t lcsi = 0x05;
	guint16 id = df == DF_MF ? 0x3F00 : df == DF_SYSTEM ? CP_SIM_FID_SYSTEM :
		     df == DF_ISIM ? u->card->isim_fid : 0;
	uint8_t fid[2] = { (uint8_t)(id >> 8), (uint8_t)id };

	put_tlv(t, 0x82, desc, 2);
	if (id)
		put_tlv(t, 0x83, fid, 2);   /* the USIM ADF of these cards has none */
	if (df == DF_USIM || df == DF_ISIM) {
		gsize alen;
		const uint8_t *aid = app_aid(df, &alen);

		put_tlv(t, 0x84, aid, alen);
	}
	put_tlv(t, 0x8A, &lcsi, 1);
	put_tlv(t, 0xC6, pins, sizeof(pins));
	put_tlv(out, 0x62, t->data, t->len);
}

/*
 * SELECT (TS 102 221 11.1.1): P1 00 by file id (MF, DF.SYSTEM, the
 * application 7FFF, an EF of the current DF or of the MF), P1 04 by DF
 * name (AID). P2 (Table 11.2): 04 returns the FCP template, 0C nothing;
 * any other P2 is 6A86.
 */
static void
do_select(CpSimUsim *u, Channel *c, const uint8_t *apdu, gsize len, gsize lc, GByteArray *out)
{
	const uint8_t *d = apdu + 5;
	uint8_t p1 = apdu[2], p2 = apdu[3];
	gboolean want_fcp = p2 == 0x04;
	SimFile *f;
	SimDf df;

	if ((p2 != 0x04 && p2 != 0x0C) || (p1 != 0x00 && p1 != 0x04)) {
		put_sw(out, 0x6A86);
		return;
	}
	if (len < 5 || lc == 0) {
		put_sw(out, 0x6700);
		return;
	}
	if (p1 == 0x04) {
		guint16 sw = aid_find(d, lc, &df);

		if (sw != 0x9000) {
			put_sw(out, sw);
			return;
		}
		c->app = df;
		goto select_df;
	}
	if (lc != 2) {
		put_sw(out, 0x6700);
		return;
	}
	guint16 fid = (guint16)((d[0] << 8) | d[1]);

	if (fid == 0x3F00) {
		df = DF_MF;
		goto select_df;
	}
	if (fid == CP_SIM_FID_SYSTEM && (c->df == DF_MF || c->df == DF_SYSTEM)) {
		df = DF_SYSTEM;
		goto select_df;
	}
	if (fid == 0x7FFF && (c->app == DF_USIM || c->app == DF_ISIM)) {
		df = c->app;
		goto select_df;
	}
	f = file_in(u, c->df, fid);
	if (!f && c->df != DF_MF)
		f = file_in(u, DF_MF, fid);
	if (!f) {
		put_sw(out, 0x6A82);
		return;
	}
	c->df = f->df;
	c->ef = f;
	if (want_fcp)
		fcp_ef(out, f);
	put_sw(out, 0x9000);
	return;
select_df:
	c->df = df;
	c->ef = NULL;
	if (want_fcp)
		fcp_df(u, out, df);
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

/* AKA with the key file of an application (EF.USIM_AUTH_KEY or
 * EF.ISIM_AUTH_KEY): Milenage in the layout pySim writes. */
static CpAkaResult
authenticate_with(CpSimUsim *u, SimFile *key, const uint8_t rand[16], const uint8_t autn[16],
		  uint8_t res[8], uint8_t auts[14])
{
	const uint8_t *kd = fdata(key);
	uint8_t opc[16], ck[16], ik[16];
	CpAkaResult r;

	u->n_auth++;
	if ((kd[0] & 0x0F) != 0x04)
		return CP_AKA_MAC_FAIL;   /* no Milenage configured: nothing can match */
	if (kd[0] & 0x10)
		memcpy(opc, kd + 17, 16);
	else if (cp_milenage_opc(kd + 1, kd + 17, opc) != CP_OK)
		return CP_AKA_MAC_FAIL;
	r = cp_aka_usim(kd + 1, opc, rand, autn, u->sqn_ms, res, ck, ik, auts);
	cp_cleanse(opc, sizeof(opc));
	cp_cleanse(ck, sizeof(ck));
	cp_cleanse(ik, sizeof(ik));
	return r;
}

CpAkaResult
cp_sim_usim_authenticate(CpSimUsim *u, const uint8_t rand[16], const uint8_t autn[16],
			 uint8_t res[8], uint8_t auts[14])
{
	return authenticate_with(u, file_in(u, DF_USIM, CP_SIM_FID_AUTH_KEY), rand, autn, res, auts);
}

static void
do_authenticate(CpSimUsim *u, Channel *c, const uint8_t *apdu, gsize lc, GByteArray *out)
{
	const uint8_t *d = apdu + 5;
	uint8_t res[8], auts[14];

	if (c->df != DF_USIM && c->df != DF_ISIM) {
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
	switch (authenticate_with(u, file_in(u, c->df, CP_SIM_FID_AUTH_KEY), d + 1, d + 18, res, auts)) {
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

/* Le '00' asks for 256 bytes (TS 102 221 10.1.3); what a read of ne bytes
 * from avail answers (see CpSimLe). */
static void
answer_read(CpSimUsim *u, const uint8_t *d, gsize avail, guint ne, GByteArray *out)
{
	if (ne <= avail) {
		g_byte_array_append(out, d, ne);
		put_sw(out, 0x9000);
		return;
	}
	switch (u->le) {
	case CP_SIM_LE_EXACT:
		put_sw(out, (guint16)(0x6C00 | (avail & 0xFF)));
		return;
	case CP_SIM_LE_EOF:
		g_byte_array_append(out, d, (guint)avail);
		put_sw(out, 0x6282);
		return;
	case CP_SIM_LE_LENIENT:
		break;
	}
	g_byte_array_append(out, d, (guint)avail);
	put_sw(out, 0x9000);
}

/* P1 b8 set: b5-b1 name an EF of the current DF by its SFI (11.1.3.2). */
static SimFile *
ef_by_p1(CpSimUsim *u, Channel *c, uint8_t p1, guint16 *sw)
{
	if (p1 & 0x80) {
		for (gsize i = 0; i < u->n_files; i++) {
			SimFile *f = &u->files[i];

			if (f->df == c->df && f->sfi && f->sfi == (p1 & 0x1F)) {
				c->ef = f;
				return f;
			}
		}
		*sw = 0x6A82;
		return NULL;
	}
	if (!c->ef)
		*sw = 0x6986;
	return c->ef;
}

static void
log_apdu(CpSimUsim *u, guint channel, const uint8_t *apdu, gsize lc)
{
	char hex[2 * 16 + 1] = "";

	if (apdu[1] == 0xA4 && lc <= 16)
		cp_hex_encode(apdu + 5, lc, hex);
	g_string_append_printf(u->log, "%s%u:%02X%02X%02X%s%s", u->log->len ? "," : "", channel,
			       apdu[1], apdu[2], apdu[3], *hex ? ":" : "", hex);
}

void
cp_sim_usim_apdu(CpSimUsim *u, guint channel, const uint8_t *apdu, gsize len, GByteArray *out)
{
	Channel *c;
	SimFile *f;
	gsize lc = 0;
	guint off;
	guint16 sw;

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
	log_apdu(u, channel, apdu, lc);

	switch (apdu[1]) {
	case 0xA4:
		do_select(u, c, apdu, len, lc, out);
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
		if (!(f = ef_by_p1(u, c, apdu[2], &sw))) {
			put_sw(out, sw);
			return;
		}
		off = apdu[2] & 0x80 ? apdu[3] : (guint)((apdu[2] << 8) | apdu[3]);
		if (f->record_len) {
			put_sw(out, 0x6981);   /* command incompatible with file structure */
			return;
		}
		if (!allowed(u, f->read)) {
			put_sw(out, 0x6982);
			return;
		}
		if (off >= f->size) {
			put_sw(out, 0x6B00);
			return;
		}
		answer_read(u, fdata(f) + off, f->size - off, le ? le : 256, out);
		return;
	}
	case 0xB2: {
		/* READ RECORD, absolute mode (P2 04) on the current EF */
		guint le = len == 5 ? apdu[4] : 0;
		guint rec = apdu[2];

		if (len > 5) {
			put_sw(out, 0x6700);
			return;
		}
		if (apdu[3] != 0x04) {
			put_sw(out, 0x6A86);
			return;
		}
		if (!(f = ef_by_p1(u, c, 0, &sw))) {
			put_sw(out, sw);
			return;
		}
		if (!f->record_len) {
			put_sw(out, 0x6981);
			return;
		}
		if (!allowed(u, f->read)) {
			put_sw(out, 0x6982);
			return;
		}
		if (rec == 0 || rec > f->size / f->record_len) {
			put_sw(out, 0x6A83);
			return;
		}
		answer_read(u, fdata(f) + (rec - 1) * f->record_len, f->record_len, le ? le : 256, out);
		return;
	}
	case 0xD6:
		if (!(f = ef_by_p1(u, c, apdu[2], &sw))) {
			put_sw(out, sw);
			return;
		}
		off = apdu[2] & 0x80 ? apdu[3] : (guint)((apdu[2] << 8) | apdu[3]);
		if (f->record_len) {
			put_sw(out, 0x6981);
			return;
		}
		if (!allowed(u, f->update)) {
			put_sw(out, 0x6982);
			return;
		}
		if (lc == 0 || off + lc > f->size) {
			put_sw(out, 0x6700);
			return;
		}
		memcpy(fdata(f) + off, apdu + 5, lc);
		u->n_updates++;
		put_sw(out, 0x9000);
		return;
	default:
		put_sw(out, 0x6D00);
	}
}

/* The file at a QMI path: the last DF of the path, then the file id. */
static SimFile *
file_at(CpSimUsim *u, const guint16 *path, gsize n_path, guint16 fid)
{
	SimDf df;

	if (n_path == 0)
		return file_find(u, fid);
	switch (path[n_path - 1]) {
	case 0x3F00:
		df = DF_MF;
		break;
	case 0x7FFF:
		df = DF_USIM;   /* the modem's provisioning application */
		break;
	case CP_SIM_FID_SYSTEM:
		df = DF_SYSTEM;
		break;
	default:
		return NULL;
	}
	if (path[0] != 0x3F00)
		return NULL;
	return file_in(u, df, fid);
}

guint16
cp_sim_usim_read_path(CpSimUsim *u, const guint16 *path, gsize n_path, guint16 fid,
		      guint16 offset, guint16 len, GByteArray *out)
{
	SimFile *f = file_at(u, path, n_path, fid);

	if (!f)
		return 0x6A82;
	if (f->record_len)
		return 0x6981;
	if (!allowed(u, f->read))
		return 0x6982;
	if (offset >= f->size)
		return 0x6B00;
	if (len == 0 || offset + len > f->size)
		len = (guint16)(f->size - offset);
	g_byte_array_append(out, fdata(f) + offset, len);
	return 0x9000;
}

guint16
cp_sim_usim_read(CpSimUsim *u, guint16 fid, guint16 offset, guint16 len, GByteArray *out)
{
	return cp_sim_usim_read_path(u, NULL, 0, fid, offset, len, out);
}

guint16
cp_sim_usim_read_record(CpSimUsim *u, const guint16 *path, gsize n_path, guint16 fid,
			guint record, guint16 len, GByteArray *out)
{
	SimFile *f = file_at(u, path, n_path, fid);

	if (!f)
		return 0x6A82;
	if (!f->record_len)
		return 0x6981;
	if (!allowed(u, f->read))
		return 0x6982;
	if (record == 0 || record > f->size / f->record_len)
		return 0x6A83;
	if (len != 0 && len != f->record_len)
		return (guint16)(0x6C00 | f->record_len);
	g_byte_array_append(out, fdata(f) + (record - 1) * f->record_len, (guint)f->record_len);
	return 0x9000;
}

gboolean
cp_sim_usim_file_info(CpSimUsim *u, const guint16 *path, gsize n_path, guint16 fid,
		      CpSimFileInfo *info, GByteArray *fcp)
{
	SimFile *f = file_at(u, path, n_path, fid);

	if (!f)
		return FALSE;
	info->size = f->size;
	info->record_len = f->record_len;
	info->n_records = f->record_len ? (guint)(f->size / f->record_len) : 0;
	info->read_adm1 = f->read == ACC_ADM1;
	info->update_adm1 = f->update == ACC_ADM1;
	if (fcp)
		fcp_ef(fcp, f);
	return TRUE;
}

char *
cp_sim_usim_get_imsi(CpSimUsim *u)
{
	SimFile *f = file_in(u, DF_USIM, CP_SIM_FID_IMSI);

	return cp_sim_imsi_decode(f->data, f->size);
}

guint
cp_sim_usim_get_mnc_length(CpSimUsim *u)
{
	return file_in(u, DF_USIM, CP_SIM_FID_AD)->data[3] & 0x0F;
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
	g_autofree char *imsi = cp_sim_usim_get_imsi(u);

	g_string_append_printf(out, "card=%s\n", u->card->name);
	g_string_append_printf(out, "atr=%s\n", u->card->atr);
	for (gsize i = 0; i < u->n_files; i++) {
		SimFile *f = &u->files[i];
		g_autofree char *hex = g_malloc(2 * f->size + 1);

		cp_hex_encode(fdata(f), f->size, hex);
		g_string_append_printf(out, "%s=%s\n", f->name, hex);
	}
	g_string_append_printf(out, "imsi=%s\n", imsi ? imsi : "");
	g_string_append_printf(out, "iccid=%s\n", u->iccid);
	g_string_append_printf(out, "adm1-retries=%u\n", u->adm1_left);
	g_string_append_printf(out, "card-updates=%u\n", u->n_updates);
	g_string_append_printf(out, "card-authentications=%u\n", u->n_auth);
	g_string_append_printf(out, "card-apdu-log=%s\n", u->log->str);
}
