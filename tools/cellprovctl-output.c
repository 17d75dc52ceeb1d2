/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cellprovctl-output.h"

#include <stdio.h>
#include <string.h>

#include "cp-json.h"

typedef enum {
	FIELD_STR,
	FIELD_UINT,
	FIELD_LIST,
	FIELD_BOOL,
} FieldType;

typedef struct {
	char *section;
	char *title;
	char *key;
	char *label;
	FieldType type;
	char *str;
	guint64 uint;
	GStrv list;
} Field;

static gboolean json;
static GPtrArray *fields;
static char *cur_section;
static char *cur_title;

static void
field_free(gpointer p)
{
	Field *f = p;

	g_free(f->section);
	g_free(f->title);
	g_free(f->key);
	g_free(f->label);
	g_free(f->str);
	g_strfreev(f->list);
	g_free(f);
}

void
cp_out_init(gboolean as_json)
{
	json = as_json;
	if (!fields)
		fields = g_ptr_array_new_with_free_func(field_free);
}

void
cp_out_section(const char *key, const char *title)
{
	g_free(cur_section);
	g_free(cur_title);
	cur_section = g_strdup(key);
	cur_title = g_strdup(title);
}

static Field *
add(const char *key, const char *label, FieldType type)
{
	Field *f = g_new0(Field, 1);

	f->section = g_strdup(cur_section);
	f->title = g_strdup(cur_title);
	f->key = g_strdup(key);
	f->label = g_strdup(label);
	f->type = type;
	g_ptr_array_add(fields, f);
	return f;
}

void
cp_out_str(const char *key, const char *label, const char *value)
{
	add(key, label, FIELD_STR)->str = g_strdup(value ? value : "");
}

void
cp_out_uint(const char *key, const char *label, guint64 value)
{
	add(key, label, FIELD_UINT)->uint = value;
}

void
cp_out_bool(const char *key, const char *label, gboolean value)
{
	add(key, label, FIELD_BOOL)->uint = value ? 1 : 0;
}

void
cp_out_list(const char *key, const char *label, const char *const *values)
{
	add(key, label, FIELD_LIST)->list = g_strdupv((char **)(values ? values : (const char *const[]){ NULL }));
}

static void
flush_json(void)
{
	CpJson j;
	const char *open = NULL;

	cp_json_init(&j, stdout, true);
	cp_json_begin_object(&j, NULL);
	for (guint i = 0; i < fields->len; i++) {
		Field *f = fields->pdata[i];

		if (g_strcmp0(open, f->section) != 0) {
			if (open)
				cp_json_end_object(&j);
			cp_json_begin_object(&j, f->section);
			open = f->section;
		}
		switch (f->type) {
		case FIELD_STR:
			cp_json_string(&j, f->key, f->str);
			break;
		case FIELD_UINT:
			cp_json_uint(&j, f->key, f->uint);
			break;
		case FIELD_BOOL:
			cp_json_bool(&j, f->key, f->uint != 0);
			break;
		case FIELD_LIST:
			cp_json_begin_array(&j, f->key);
			for (char **l = f->list; *l; l++)
				cp_json_string(&j, NULL, *l);
			cp_json_end_array(&j);
			break;
		}
	}
	if (open)
		cp_json_end_object(&j);
	cp_json_end_object(&j);
	cp_json_finish(&j);
}

/* mmcli's layout: a title column, then "label: value" aligned on the colon. */
static void
flush_text(void)
{
	gsize title_w = 0, label_w = 0;
	const char *open = NULL;

	for (guint i = 0; i < fields->len; i++) {
		Field *f = fields->pdata[i];

		title_w = MAX(title_w, strlen(f->title));
		label_w = MAX(label_w, strlen(f->label));
	}
	for (guint i = 0; i < fields->len; i++) {
		Field *f = fields->pdata[i];
		const char *title = "";

		if (g_strcmp0(open, f->section) != 0) {
			printf("  ");
			for (gsize k = 0; k < title_w + label_w + 24; k++)
				putchar('-');
			putchar('\n');
			title = f->title;
			open = f->section;
		}
		switch (f->type) {
		case FIELD_STR:
			printf("  %-*s | %*s: %s\n", (int)title_w, title, (int)label_w, f->label, f->str);
			break;
		case FIELD_UINT:
			printf("  %-*s | %*s: %" G_GUINT64_FORMAT "\n", (int)title_w, title, (int)label_w,
			       f->label, f->uint);
			break;
		case FIELD_BOOL:
			printf("  %-*s | %*s: %s\n", (int)title_w, title, (int)label_w, f->label,
			       f->uint ? "yes" : "no");
			break;
		case FIELD_LIST:
			if (!f->list[0])
				printf("  %-*s | %*s: none\n", (int)title_w, title, (int)label_w, f->label);
			for (char **l = f->list; *l; l++) {
				printf("  %-*s | %*s: %s\n", (int)title_w, title, (int)label_w,
				       l == f->list ? f->label : "", *l);
				title = "";
			}
			break;
		}
	}
}

void
cp_out_flush(void)
{
	if (json)
		flush_json();
	else
		flush_text();
	g_ptr_array_set_size(fields, 0);
	fflush(stdout);
}
