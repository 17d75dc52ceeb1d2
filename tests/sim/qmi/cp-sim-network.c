/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-sim-network.h"

#include <string.h>

#include <gio/gio.h>

#include "cp-buf.h"
#include "cp-milenage.h"
#include "cp-secret.h"

typedef struct {
	char *imsi;
	uint8_t k[16];
	uint8_t opc[16];
	uint8_t sqn[6];
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
	cp_cleanse(s, sizeof(*s));
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

gboolean
cp_sim_network_add(CpSimNetwork *n, const char *imsi, const char *k_hex,
		   const char *opc_hex, const char *sqn_hex, GError **error)
{
	Subscriber *s = g_new0(Subscriber, 1);
	gsize len = strlen(imsi);

	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isdigit(imsi[i]))
			len = 0;
	if (len < 6 || len > 15 ||
	    cp_hex_decode(k_hex, s->k, 16) != 16 ||
	    cp_hex_decode(opc_hex, s->opc, 16) != 16 ||
	    cp_hex_decode(sqn_hex, s->sqn, 6) != 6) {
		subscriber_free(s);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "subscriber %s: want <imsi 6-15 digits> <K 32 hex> <OPc 32 hex> <SQN 12 hex>", imsi);
		return FALSE;
	}
	s->imsi = g_strdup(imsi);
	g_hash_table_replace(n->subs, s->imsi, s);
	return TRUE;
}

gboolean
cp_sim_network_load(CpSimNetwork *n, const char *path, GError **error)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, error))
		return FALSE;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		g_auto(GStrv) f = NULL;
		char *l = g_strstrip(lines[i]);

		if (!*l || *l == '#')
			continue;
		f = g_strsplit(l, " ", -1);
		if (g_strv_length(f) != 4) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "%s:%u: want 4 fields separated by single spaces", path, i + 1);
			return FALSE;
		}
		if (!cp_sim_network_add(n, f[0], f[1], f[2], f[3], error)) {
			g_prefix_error(error, "%s:%u: ", path, i + 1);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
cp_sim_network_load_new(CpSimNetwork *n, const char *path, guint *added, GError **error)
{
	g_autoptr(GHashTable) had = g_hash_table_new(g_str_hash, g_str_equal);
	CpSimNetwork *fresh = cp_sim_network_new(n->plmn, n->name);
	GHashTableIter it;
	gpointer key, value;
	gboolean ok;

	*added = 0;
	ok = cp_sim_network_load(fresh, path, error);
	g_hash_table_iter_init(&it, fresh->subs);
	while (ok && g_hash_table_iter_next(&it, &key, &value)) {
		if (g_hash_table_contains(n->subs, key))
			continue;
		g_hash_table_add(had, key);
	}
	/* move the new ones over; the known keep their SQN */
	g_hash_table_iter_init(&it, had);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		Subscriber *s = NULL;

		g_hash_table_steal_extended(fresh->subs, key, NULL, (gpointer *)&s);
		g_hash_table_replace(n->subs, s->imsi, s);
		(*added)++;
	}
	cp_sim_network_free(fresh);
	return ok;
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

CpSimAttach
cp_sim_network_attach(CpSimNetwork *n, CpSimUsim *u)
{
	static const uint8_t amf[2] = { 0x80, 0x00 };
	g_autofree char *imsi = cp_sim_usim_get_imsi(u);
	Subscriber *s;

	n->n_attach++;
	if (!imsi)
		return result(n, CP_SIM_ATTACH_NO_IMSI);
	s = g_hash_table_lookup(n->subs, imsi);
	if (!s)
		return result(n, CP_SIM_ATTACH_UNKNOWN_SUBSCRIBER);

	for (int round = 0; round < 2; round++) {
		uint8_t rand[16], autn[16], xres[8], ck[16], ik[16], res[8], auts[14];
		CpAkaResult r;

		for (gsize i = 0; i < sizeof(rand); i++)
			rand[i] = (uint8_t)g_random_int_range(0, 256);
		sqn_next(s->sqn);
		if (cp_aka_generate(s->k, s->opc, rand, s->sqn, amf, autn, xres, ck, ik) != CP_OK)
			return result(n, CP_SIM_ATTACH_AUTH_REJECT);
		r = cp_sim_usim_authenticate(u, rand, autn, res, auts);
		if (r == CP_AKA_OK)
			return result(n, cp_memeq_consttime(res, xres, 8) ?
				      CP_SIM_ATTACH_REGISTERED : CP_SIM_ATTACH_AUTH_REJECT);
		if (r != CP_AKA_SYNC_FAIL || round > 0 ||
		    !cp_aka_resync(s->k, s->opc, rand, auts, s->sqn))
			break;
		n->n_resync++;
	}
	return result(n, CP_SIM_ATTACH_AUTH_REJECT);
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
