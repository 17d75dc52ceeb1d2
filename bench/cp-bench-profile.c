/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-bench-profile.h"

#include "cp-ndef.h"

gboolean
cp_bench_profile_ndef(const char *size, CpBuf *out, GError **error)
{
	g_autofree guint8 *payload = NULL;
	CpNdefMessage m = { 0 };
	guint64 n;

	if (!g_ascii_string_to_unsigned(size, 10, 1, CP_T4T_NDEF_MAX, &n, error)) {
		g_prefix_error(error, "PROFILE-BYTES: ");
		return FALSE;
	}
	payload = g_malloc(n);
	for (guint64 i = 0; i < n; i++)
		payload[i] = g_random_int() & 0xFF;
	cp_ndef_record_mime(&m.records[0], CP_MIME_PROFILE, payload, n);
	m.n_records = 1;
	if (cp_ndef_encode(&m, out) != CP_OK) {
		g_set_error(error, G_NUMBER_PARSER_ERROR, G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS,
			    "PROFILE-BYTES: a profile of %" G_GUINT64_FORMAT " bytes does not fit an NDEF message of %d",
			    n, CP_T4T_NDEF_MAX);
		return FALSE;
	}
	return TRUE;
}
