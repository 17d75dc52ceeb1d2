/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-sim-network.h"

#include <string.h>

#include <gio/gio.h>

#include "cp-buf.h"
#include "cp-milenage.h"
#include "cp-secret.h"

/*
 * A subscriber is an IMSI with one or more key sets: the AUSF keeps the
 * keys of a device's previous key generation valid until the new ones are
 * confirmed, so the network must accept either. Each key set has its own
 * SQN (a new set starts from the export's).
 */
typedef struct {
	uint8_t k[16];
	uint8_t opc[16];
	uint8_t sqn[6];
} KeySet;

typedef struct {
	char *imsi;
	GArray *sets;            /* KeySet, newest first (the file's order) */
	gboolean from_file;
} Subscriber;

struct _CpSimNetwork {
	char *plmn;
	char *name;
	GHashTable *subs;        /* imsi -> Subscriber */
	guint n_attach;
	guint n_resync;
	guint n_reject;
	char *last_result;
};

static void
subscriber_free(gpointer p)
{
	Subscriber *s = p;

	g_free(s->imsi);
	if (s->sets) {
		cp_cleanse(s->sets->data, s->sets->len * sizeof(KeySet));
		g_array_unref(s->sets);
	}
	g_free(s);
}

CpSimNetwork *
cp_sim_network_new(const char *plmn, const char *name)
{
	CpSimNetwork *n = g_new0(CpSimNetwork, 1);

	n->plmn = g_strdup(plmn);
	n->name = g_strdup(name);
	n->subs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, subscriber_free);
	n->last_result = g_strdup("none");
	return n;
}

void
cp_sim_network_free(CpSimNetwork *n)
{
	if (!n)
		return;
	g_hash_table_unref(n->subs);
	g_free(n->plmn);
	g_free(n->name);
	g_free(n->last_result);
	g_free(n);
}

static gboolean
parse_set(const char *imsi, const char *k_hex, const char *opc_hex, const char *sqn_hex,
	  KeySet *ks, GError **error)
{
	gsize len = strlen(imsi);

	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isdigit(imsi[i]))
			len = 0;
	if (len < 6 || len > 15 ||
	    strlen(k_hex) != 32 || cp_hex_decode(k_hex, ks->k, 16) != 16 ||
	    strlen(opc_hex) != 32 || cp_hex_decode(opc_hex, ks->opc, 16) != 16 ||
	    strlen(sqn_hex) != 12 || cp_hex_decode(sqn_hex, ks->sqn, 6) != 6) {
		cp_cleanse(ks, sizeof(*ks));
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "subscriber %s: want <imsi 6-15 digits> <K 32 hex> <OPc 32 hex> <SQN 12 hex>", imsi);
		return FALSE;
	}
	return TRUE;
}

/* Append a key set to imsi's (a new subscriber if unknown). */
static void
add_set(CpSimNetwork *n, const char *imsi, const KeySet *ks, gboolean from_file)
{
	Subscriber *s = g_hash_table_lookup(n->subs, imsi);

	if (!s) {
		s = g_new0(Subscriber, 1);
		s->imsi = g_strdup(imsi);
		s->sets = g_array_new(FALSE, TRUE, sizeof(KeySet));
		s->from_file = from_file;
		g_hash_table_replace(n->subs, s->imsi, s);
	}
	g_array_append_val(s->sets, *ks);
}

gboolean
cp_sim_network_add(CpSimNetwork *n, const char *imsi, const char *k_hex,
		   const char *opc_hex, const char *sqn_hex, GError **error)
{
	KeySet ks;

	if (!parse_set(imsi, k_hex, opc_hex, sqn_hex, &ks, error))
		return FALSE;
	add_set(n, imsi, &ks, FALSE);
	cp_cleanse(&ks, sizeof(ks));
	return TRUE;
}

static gboolean
load_file(CpSimNetwork *n, const char *path, GError **error)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	gboolean ok = TRUE;

	if (!g_file_get_contents(path, &text, NULL, error))
		return FALSE;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; ok && lines[i]; i++) {
		g_auto(GStrv) f = NULL;
		char *l = g_strstrip(lines[i]);
		KeySet ks;

		if (!*l || *l == '#')
			continue;
		f = g_strsplit(l, " ", -1);
		if (g_strv_length(f) != 4) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "%s:%u: want 4 fields separated by single spaces", path, i + 1);
			ok = FALSE;
		} else if (!parse_set(f[0], f[1], f[2], f[3], &ks, error)) {
			g_prefix_error(error, "%s:%u: ", path, i + 1);
			ok = FALSE;
		} else {
			add_set(n, f[0], &ks, TRUE);
			cp_cleanse(&ks, sizeof(ks));
		}
		for (char **p = f; p && *p; p++)
			cp_cleanse(*p, strlen(*p));
	}
	cp_cleanse(text, strlen(text));
	return ok;
}

gboolean
cp_sim_network_load(CpSimNetwork *n, const char *path, GError **error)
{
	return load_file(n, path, error);
}

static const KeySet *
find_set(const Subscriber *s, const KeySet *ks)
{
	for (guint i = 0; s && i < s->sets->len; i++) {
		const KeySet *o = &g_array_index(s->sets, KeySet, i);

		if (memcmp(o->k, ks->k, 16) == 0 && memcmp(o->opc, ks->opc, 16) == 0)
			return o;
	}
	return NULL;
}

gboolean
cp_sim_network_load_new(CpSimNetwork *n, const char *path, guint *added, guint *removed,
			GError **error)
{
	CpSimNetwork *fresh = cp_sim_network_new(n->plmn, n->name);
	GHashTableIter it;
	gpointer key, value;

	*added = *removed = 0;
	if (!load_file(fresh, path, error)) {
		cp_sim_network_free(fresh);
		return FALSE;
	}
	/* the file's key sets, in its order; the known keep their SQN */
	g_hash_table_iter_init(&it, fresh->subs);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		Subscriber *now = value, *old = g_hash_table_lookup(n->subs, key);

		for (guint i = 0; i < now->sets->len; i++) {
			KeySet *ks = &g_array_index(now->sets, KeySet, i);
			const KeySet *known = find_set(old, ks);

			if (known)
				memcpy(ks->sqn, known->sqn, sizeof(ks->sqn));
			else
				(*added)++;
		}
		for (guint i = 0; old && i < old->sets->len; i++)
			if (!find_set(now, &g_array_index(old->sets, KeySet, i)))
				(*removed)++;
	}
	/* subscribers the file no longer has (removed at the AUSF) leave;
	 * the ones given on the command line stay */
	g_hash_table_iter_init(&it, n->subs);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		Subscriber *old = value;

		if (old->from_file && !g_hash_table_contains(fresh->subs, key)) {
			*removed += old->sets->len;
			g_hash_table_iter_remove(&it);
		}
	}
	g_hash_table_iter_init(&it, fresh->subs);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		Subscriber *s = NULL;

		g_hash_table_iter_steal(&it);
		s = value;
		g_hash_table_replace(n->subs, s->imsi, s);
	}
	cp_sim_network_free(fresh);
	return TRUE;
}

static void
sqn_next(uint8_t sqn[6])
{
	/* TS 33.102 C.1.1: SEQ in the upper 43 bits, IND (5 bits) below;
	 * step SEQ by one. */
	guint64 v = 0;

	for (int i = 0; i < 6; i++)
		v = (v << 8) | sqn[i];
	v += 32;
	for (int i = 5; i >= 0; i--) {
		sqn[i] = (uint8_t)v;
		v >>= 8;
	}
}

static CpSimAttach
result(CpSimNetwork *n, CpSimAttach a)
{
	g_free(n->last_result);
	n->last_result = g_strdup(cp_sim_attach_name(a));
	if (a != CP_SIM_ATTACH_REGISTERED)
		n->n_reject++;
	return a;
}

/*
 * AKA with one key set: RES against XRES, with one resynchronisation after
 * an AUTS. *mac_fail: the card refused the AUTN (not its keys).
 */
static CpSimAttach
attach_set(CpSimNetwork *n, CpSimUsim *u, KeySet *ks, gboolean *mac_fail)
{
	static const uint8_t amf[2] = { 0x80, 0x00 };

	*mac_fail = FALSE;
	for (int round = 0; round < 2; round++) {
		uint8_t rand[16], autn[16], xres[8], ck[16], ik[16], res[8], auts[14];
		CpAkaResult r;

		for (gsize i = 0; i < sizeof(rand); i++)
			rand[i] = (uint8_t)g_random_int_range(0, 256);
		sqn_next(ks->sqn);
		if (cp_aka_generate(ks->k, ks->opc, rand, ks->sqn, amf, autn, xres, ck, ik) != CP_OK)
			return CP_SIM_ATTACH_AUTH_REJECT;
		r = cp_sim_usim_authenticate(u, rand, autn, res, auts);
		if (r == CP_AKA_OK)
			return cp_memeq_consttime(res, xres, 8) ? CP_SIM_ATTACH_REGISTERED : CP_SIM_ATTACH_AUTH_REJECT;
		if (r == CP_AKA_MAC_FAIL) {
			*mac_fail = TRUE;
			break;
		}
		if (round > 0 || !cp_aka_resync(ks->k, ks->opc, rand, auts, ks->sqn))
			break;
		n->n_resync++;
	}
	return CP_SIM_ATTACH_AUTH_REJECT;
}

/*
 * A subscriber with several key sets (a key rotation under way): like an
 * HSS that holds both the old and the new subscription data, the network
 * tries the newest first, and the next one after the card reports a MAC
 * failure (the AUTN was not made with its keys).
 */
CpSimAttach
cp_sim_network_attach(CpSimNetwork *n, CpSimUsim *u)
{
	g_autofree char *imsi = cp_sim_usim_get_imsi(u);
	Subscriber *s;
	CpSimAttach a = CP_SIM_ATTACH_AUTH_REJECT;

	n->n_attach++;
	if (!imsi)
		return result(n, CP_SIM_ATTACH_NO_IMSI);
	s = g_hash_table_lookup(n->subs, imsi);
	if (!s || !s->sets->len)
		return result(n, CP_SIM_ATTACH_UNKNOWN_SUBSCRIBER);
	for (guint i = 0; i < s->sets->len; i++) {
		gboolean mac_fail;

		a = attach_set(n, u, &g_array_index(s->sets, KeySet, i), &mac_fail);
		if (!mac_fail)
			break;
	}
	return result(n, a);
}

const char *
cp_sim_network_get_plmn(CpSimNetwork *n)
{
	return n->plmn;
}

const char *
cp_sim_network_get_name(CpSimNetwork *n)
{
	return n->name;
}

const char *
cp_sim_attach_name(CpSimAttach a)
{
	switch (a) {
	case CP_SIM_ATTACH_REGISTERED:
		return "registered";
	case CP_SIM_ATTACH_UNKNOWN_SUBSCRIBER:
		return "unknown-subscriber";
	case CP_SIM_ATTACH_AUTH_REJECT:
		return "auth-reject";
	case CP_SIM_ATTACH_NO_IMSI:
		return "no-imsi";
	}
	return "?";
}

void
cp_sim_network_dump(CpSimNetwork *n, GString *out)
{
	g_string_append_printf(out, "network-attaches=%u\n", n->n_attach);
	g_string_append_printf(out, "network-resyncs=%u\n", n->n_resync);
	g_string_append_printf(out, "network-rejects=%u\n", n->n_reject);
	g_string_append_printf(out, "network-last=%s\n", n->last_result);
}
