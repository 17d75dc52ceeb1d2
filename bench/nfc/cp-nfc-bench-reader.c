/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The companion's half of the NFC benchmark: tap 1 reads the tag (select,
 * CC, NDEF), tap 2 writes a profile of the given size with the T4T write
 * procedure. Prints per tap: APDUs, bytes each way, UPDATE BINARY
 * commands beside the T4T minimum for the tag's MLc, wall-clock time.
 */
#include <stdio.h>

#include "cp-bench-profile.h"
#include "cp-nfc-reader.h"

static void report(const char *what, CpNfcReader *r, gint64 t0, guint min_updates)
{
	CpNfcReaderStats s;

	cp_nfc_reader_get_stats(r, &s);
	printf("reader %s apdus=%u c-apdu-bytes=%" G_GSIZE_FORMAT " r-apdu-bytes=%" G_GSIZE_FORMAT
	       " updates=%u min-updates=%u wall-ms=%.1f\n",
	       what, s.apdus, s.bytes_out, s.bytes_in, s.updates, min_updates,
	       (g_get_monotonic_time() - t0) / 1000.0);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpNfcReader) r = NULL;
	g_autoptr(GBytes) read = NULL;
	cp_auto_buf msg = CP_BUF_INIT;
	gint64 t0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s CONNSTRING PROFILE-BYTES\n", argv[0]);
		return 2;
	}
	if (!cp_bench_profile_ndef(argv[2], &msg, &error)) {
		fprintf(stderr, "cp-nfc-bench-reader: %s\n", error->message);
		return 2;
	}

	r = cp_nfc_reader_open(argv[1], &error);
	if (!r)
		goto fail;

	t0 = g_get_monotonic_time();
	if (!cp_nfc_reader_wait_target(r, 5000, &error) || !cp_nfc_reader_select(r, &error) ||
	    !(read = cp_nfc_reader_read_ndef(r, &error)))
		goto fail;
	report("read", r, t0, 0);
	cp_nfc_reader_release(r);

	t0 = g_get_monotonic_time();
	if (!cp_nfc_reader_wait_target(r, 5000, &error) || !cp_nfc_reader_select(r, &error) ||
	    !cp_nfc_reader_write_ndef(r, msg.data, msg.len, &error))
		goto fail;
	report("write", r, t0,
	       cp_nfc_reader_write_min_updates(msg.len, cp_nfc_reader_get_cc(r)->mlc));
	cp_nfc_reader_release(r);
	printf("reader profile-ndef-bytes=%zu tag-ndef-bytes=%" G_GSIZE_FORMAT "\n", msg.len, g_bytes_get_size(read));
	return 0;
fail:
	fprintf(stderr, "cp-nfc-bench-reader: %s\n", error->message);
	return 1;
}
