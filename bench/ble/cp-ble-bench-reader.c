/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The companion's half of the BLE benchmark, on the companion's own BLE
 * reader (tools/cp-ble-reader.c): session 1 reads the tag (read-tag),
 * session 2 writes a profile of the given size (write-profile). Prints per
 * session: segments written and their bytes, indications and their bytes,
 * request/response round trips, the ATT MTU, the wall-clock time of the
 * connection (scan, connect, discovery, subscription) and of the request.
 */
#include <stdio.h>

#include "cellprov.h"
#include "cp-bench-profile.h"
#include "cp-ble-reader.h"

static void
report(const char *what, CpBleReader *r, const CpBleReaderStats *before, gint64 t0, gint64 t1, gsize ndef)
{
	CpBleReaderStats s;

	cp_ble_reader_get_stats(r, &s);
	printf("reader %s writes=%u write-bytes=%" G_GSIZE_FORMAT " indications=%u indication-bytes=%" G_GSIZE_FORMAT
	       " requests=%u mtu=%u ndef-bytes=%" G_GSIZE_FORMAT " connect-ms=%.1f wall-ms=%.1f\n",
	       what, s.writes - before->writes, s.write_bytes - before->write_bytes,
	       s.indications - before->indications, s.indication_bytes - before->indication_bytes,
	       s.requests - before->requests, s.mtu, ndef, (t1 - t0) / 1000.0, (g_get_monotonic_time() - t1) / 1000.0);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpBleReader) r = NULL;
	g_autoptr(GBytes) tag = NULL;
	g_autoptr(GBytes) answer = NULL;
	cp_auto_buf msg = CP_BUF_INIT;
	CpBleReaderStats before;
	gint64 t0, t1;

	if (argc != 3) {
		fprintf(stderr, "usage: %s ADAPTER PROFILE-BYTES\n", argv[0]);
		return 2;
	}
	if (!cp_bench_profile_ndef(argv[2], &msg, &error)) {
		fprintf(stderr, "cp-ble-bench-reader: %s\n", error->message);
		return 2;
	}
	r = cp_ble_reader_open(argv[1], &error);
	if (!r)
		goto fail;

	cp_ble_reader_get_stats(r, &before);
	t0 = g_get_monotonic_time();
	if (!cp_ble_reader_connect(r, NULL, 0, 10000, NULL, &error))
		goto fail;
	t1 = g_get_monotonic_time();
	if (!(tag = cp_ble_reader_request(r, CP_BLE_OP_READ_TAG, NULL, 0, 10000, &error)))
		goto fail;
	report("read", r, &before, t0, t1, g_bytes_get_size(tag));
	cp_ble_reader_disconnect(r);

	cp_ble_reader_get_stats(r, &before);
	t0 = g_get_monotonic_time();
	if (!cp_ble_reader_connect(r, NULL, 0, 10000, NULL, &error))
		goto fail;
	t1 = g_get_monotonic_time();
	if (!(answer = cp_ble_reader_request(r, CP_BLE_OP_WRITE_PROFILE, msg.data, msg.len, 10000, &error)))
		goto fail;
	report("write", r, &before, t0, t1, msg.len);
	cp_ble_reader_disconnect(r);
	return 0;
fail:
	fprintf(stderr, "cp-ble-bench-reader: %s\n", error->message);
	return 1;
}
