/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One output layer for cellprovctl: every command adds fields (a section,
 * a JSON key, a human label, a value), and the layer prints them either
 * as aligned text or as one JSON object, so the two can never disagree.
 */
#pragma once

#include <glib.h>

void cp_out_init(gboolean json);
/* Fields that follow belong to this section ({"key": {...}} in JSON). */
void cp_out_section(const char *key, const char *title);
void cp_out_str(const char *key, const char *label, const char *value);
void cp_out_uint(const char *key, const char *label, guint64 value);
/* "yes"/"no" as text, true/false in JSON */
void cp_out_bool(const char *key, const char *label, gboolean value);
void cp_out_list(const char *key, const char *label, const char *const *values);
/* Print everything added, and forget it. */
void cp_out_flush(void);
