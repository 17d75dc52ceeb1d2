/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-conf.h"

#include <string.h>

#include "cp-glib.h"

char *
cp_conf_string(GKeyFile *kf, const char *group, const char *key, const char *def)
{
	char *v = g_key_file_get_string(kf, group, key, NULL);

	if (v)
		g_strstrip(v);
	if (v && !*v) {
		g_free(v);
		v = NULL;
	}
	return v ? v : g_strdup(def);
}

gboolean
cp_conf_uint(GKeyFile *kf, const char *group, const char *key, guint64 def,
	     guint64 min, guint64 max, guint64 *out, GError **error)
{
	g_autofree char *v = cp_conf_string(kf, group, key, NULL);
	guint64 n;

	if (!v) {
		*out = def;
		return TRUE;
	}
	/* g_ascii_string_to_unsigned refuses signs, spaces and overflow,
	 * which strtoull would turn into huge numbers */
	if (!g_ascii_string_to_unsigned(v, 10, min, max, &n, NULL)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s: '%s' is not a number from %" G_GUINT64_FORMAT
			     " to %" G_GUINT64_FORMAT, key, v, min, max);
		return FALSE;
	}
	*out = n;
	return TRUE;
}
