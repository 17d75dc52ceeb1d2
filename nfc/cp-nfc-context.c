/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-nfc-context.h"

#include <glib.h>

G_LOCK_DEFINE_STATIC(shared);
static nfc_context *shared_context;
static guint shared_refs;

nfc_context *cp_nfc_context_acquire(void)
{
	nfc_context *ctx;

	G_LOCK(shared);
	if (!shared_context)
		nfc_init(&shared_context);
	if (shared_context)
		shared_refs++;
	ctx = shared_context;
	G_UNLOCK(shared);
	return ctx;
}

void cp_nfc_context_release(void)
{
	G_LOCK(shared);
	g_assert(shared_refs > 0);
	if (--shared_refs == 0) {
		nfc_exit(shared_context);
		shared_context = NULL;
	}
	G_UNLOCK(shared);
}
