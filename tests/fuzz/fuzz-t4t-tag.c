/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the T4T command set (nfc/cp-t4t-tag.c): the input is
 * a sequence of C-APDUs, each preceded by its length byte (FF: 255 plus the
 * next byte, up to the 263 bytes libnfc can hand over after reassembling
 * chained I-blocks), run through one session. Checks the invariants the tag promises: every R-APDU is 2 to
 * CP_T4T_RAPDU_MAX bytes, a WRITTEN message parses and fits and gets
 * 9000, a refused write gets an error status word and ends the write.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp-t4t-tag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t msg[] = { 0xD1, 0x01, 0x04, 'T', 0x02, 'e', 'n', 'A' };
	static CpT4tTag t;
	uint8_t rapdu[CP_T4T_RAPDU_MAX];
	size_t off = 0;

	cp_t4t_tag_init(&t);
	cp_t4t_tag_load(&t, msg, sizeof(msg));
	while (off < size) {
		size_t n = data[off++], rlen = 0, mlen;
		const uint8_t *m;
		CpError err = CP_OK;
		CpT4tEvent ev;
		CpNdefMessage parsed;

		if (n == 0xFF && off < size)
			n = 255 + data[off++];
		if (n > 263)
			n = 263;
		if (n > size - off)
			n = size - off;
		ev = cp_t4t_tag_process(&t, data + off, n, rapdu, &rlen, &err);
		off += n;
		assert(rlen >= 2 && rlen <= CP_T4T_RAPDU_MAX);
		m = cp_t4t_tag_message(&t, &mlen);
		if (ev == CP_T4T_EVENT_WRITTEN) {
			assert(mlen <= CP_T4T_NDEF_MAX);
			assert(cp_ndef_parse(m, mlen, &parsed) == CP_OK);
			assert(cp_t4t_sw(rapdu, rlen) == CP_SW_OK);
		}
		if (ev == CP_T4T_EVENT_REJECTED) {
			assert(err != CP_OK);
			assert(cp_t4t_sw(rapdu, rlen) != CP_SW_OK);
			assert(!cp_t4t_tag_write_pending(&t));
		}
	}
	return 0;
}
