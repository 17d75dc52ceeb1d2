/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading the SM's and the AUSF's GKeyFile configuration: a value that is
 * set but malformed or out of range stops the program at start, naming the
 * key, rather than silently becoming the default.
 */
#pragma once

#include <glib.h>

/* The stripped string of group/key; def (copied, may be NULL) when the key
 * is absent or empty. */
char *cp_conf_string(GKeyFile *kf, const char *group, const char *key, const char *def);

/* An unsigned decimal in [min, max]; def when absent. */
gboolean cp_conf_uint(GKeyFile *kf, const char *group, const char *key, guint64 def,
		      guint64 min, guint64 max, guint64 *out, GError **error);
