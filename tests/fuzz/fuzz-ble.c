/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The BLE framing codec (cp-ble.c), receiving. The input: one byte for the
 * MTU (23 + 2 x byte, at most 517), then writes of
 *   ctl (1) | offset (2) | len (1) | len bytes
 * ctl bit 0: check the timeouts first, at ctl x 256 ms. The link has one
 * segment of its own request in flight (so acks of seq 0 are valid), and
 * after every write sends what it owes (acks). Invariants: an error ends
 * the session for good; a message is 1 to CP_BLE_MSG_MAX bytes and
 * crosses a fresh pair of links unchanged; a parsed message re-encodes to
 * its bytes.
 */
#include <string.h>

#include "cp-ble.h"
#include "cp-fuzz.h"

static void
check_segment(const uint8_t *seg, size_t len)
{
	CpBleSegment s;

	if (cp_ble_segment_parse(seg, len, &s) != CP_OK)
		return;
	CP_FUZZ_CHECK(len >= 1 && len <= CP_BLE_SEGMENT_MAX);
	if (!s.has_seq) {
		CP_FUZZ_CHECK(len == 2 && s.flags == CP_BLE_FLAG_ACK);
		return;
	}
	CP_FUZZ_CHECK(s.data_len >= 1 && s.data + s.data_len == seg + len);
}

/* The message crosses two fresh links at this MTU unchanged. */
static void
echo(uint16_t mtu, const uint8_t *msg, size_t len)
{
	CpBleLink *a = cp_ble_link_new(mtu, 0), *b = cp_ble_link_new(mtu, 0);
	const uint8_t *got;
	size_t got_len = 0;
	int rounds = 0;

	CP_FUZZ_CHECK(a && b);
	CP_FUZZ_CHECK(cp_ble_link_send(a, msg, len) == CP_OK);
	for (bool moved = true; moved; rounds++) {
		moved = false;
		for (int side = 0; side < 2; side++) {
			CpBleLink *from = side ? b : a, *to = side ? a : b;

			for (;;) {
				CpBuf seg = CP_BUF_INIT;

				CP_FUZZ_CHECK(cp_ble_link_next_segment(from, 0, &seg) == CP_OK);
				if (seg.len == 0) {
					cp_buf_clear(&seg);
					break;
				}
				CP_FUZZ_CHECK(seg.len <= (size_t)mtu - 3);
				CP_FUZZ_CHECK(cp_ble_link_receive(to, 0, 0, seg.data, seg.len, NULL) == CP_OK);
				cp_buf_clear(&seg);
				moved = true;
			}
		}
		CP_FUZZ_CHECK(rounds < 5000);
	}
	got = cp_ble_link_message(b, &got_len);
	CP_FUZZ_CHECK(got && got_len == len && memcmp(got, msg, len) == 0);
	CP_FUZZ_CHECK(!cp_ble_link_sending(a));
	cp_ble_link_free(a);
	cp_ble_link_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t request[] = { 0x01, 0x01 };
	CpBleLink *l;
	CpBuf out = CP_BUF_INIT;
	CpError ended = CP_OK;
	uint16_t mtu;
	size_t p = 1;

	if (size < 1)
		return 0;
	mtu = (uint16_t)(23 + 2 * data[0]);
	if (mtu > CP_BLE_MTU_MAX)
		mtu = CP_BLE_MTU_MAX;
	l = cp_ble_link_new(mtu, 0);
	CP_FUZZ_CHECK(l);
	CP_FUZZ_CHECK(cp_ble_link_send(l, request, sizeof request) == CP_OK);
	CP_FUZZ_CHECK(cp_ble_link_next_segment(l, 0, &out) == CP_OK && out.len == 6);

	while (p + 4 <= size) {
		uint8_t ctl = data[p];
		size_t offset = cp_be16(data + p + 1), len = data[p + 3];
		uint64_t now = (uint64_t)ctl * 256;
		bool ready = false;
		CpError err;

		p += 4;
		if (len > size - p)
			len = size - p;
		check_segment(data + p, len);
		if ((ctl & 1) && (err = cp_ble_link_check(l, now))) {
			CP_FUZZ_CHECK(ended == CP_OK || err == ended);
			ended = err;
		}
		err = cp_ble_link_receive(l, now, offset, data + p, len, &ready);
		p += len;
		if (ended) {
			CP_FUZZ_CHECK(err == ended);
			continue;
		}
		if (err) {
			CP_FUZZ_CHECK(cp_ble_link_error(l) == err);
			ended = err;
			continue;
		}
		if (ready) {
			size_t mlen = 0;
			const uint8_t *msg = cp_ble_link_message(l, &mlen);
			CpBleMessage m;

			CP_FUZZ_CHECK(msg && mlen >= 1 && mlen <= CP_BLE_MSG_MAX);
			echo(mtu, msg, mlen);
			if (cp_ble_message_parse(msg, mlen, &m) == CP_OK) {
				CpBuf again = CP_BUF_INIT;

				CP_FUZZ_CHECK(cp_ble_message_encode(&m, &again) == CP_OK);
				CP_FUZZ_CHECK(again.len == mlen && memcmp(again.data, msg, mlen) == 0);
				cp_buf_clear(&again);
			}
			cp_ble_link_take(l);
		}
		/* what the link owes: acks */
		out.len = 0;
		CP_FUZZ_CHECK(cp_ble_link_next_segment(l, now, &out) == CP_OK);
		CP_FUZZ_CHECK(out.len <= (size_t)mtu - 3);
	}
	cp_buf_clear(&out);
	cp_ble_link_free(l);
	return 0;
}
