/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The BLE framing codec (protocol/cp-ble.c, docs/protocol.md section 18):
 * segment structure, each receive rule with its code, windows and acks
 * between two links, long writes, timeouts, the message header, session
 * admission, and the worked example of docs/test-vectors/ble-read-tag.txt
 * reproduced byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include "cellprov.h"
#include "cp-test.h"

static uint8_t big[CP_BLE_MSG_MAX + 16];

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static CpError
recv_hex(CpBleLink *l, uint64_t now, const char *hex, bool *ready)
{
	uint8_t seg[CP_BLE_SEGMENT_MAX + 8];
	size_t n = cp_test_unhex(hex, seg, sizeof seg);

	return cp_ble_link_receive(l, now, 0, seg, n, ready);
}

static void
test_segment_parse(void)
{
	CpBleSegment s;
	uint8_t longseg[CP_BLE_SEGMENT_MAX + 1];
	uint8_t b[8] = { 0 };

	CP_CHECK_INT(cp_ble_segment_parse(b, 0, &s), CP_ERR_BLE_SEGMENT);
	/* B|E, seq 0, length 2, "01 01" */
	cp_test_unhex("030000020101", b, sizeof b);
	CP_CHECK_INT(cp_ble_segment_parse(b, 6, &s), CP_OK);
	CP_CHECK_INT(s.flags, 0x03);
	CP_CHECK(s.has_seq);
	CP_CHECK_INT(s.msg_len, 2);
	CP_CHECK_INT(s.data_len, 2);
	CP_CHECK(s.data == b + 4);
	/* header cut short: no length, no data */
	CP_CHECK_INT(cp_ble_segment_parse(b, 3, &s), CP_ERR_BLE_SEGMENT);
	CP_CHECK_INT(cp_ble_segment_parse(b, 4, &s), CP_ERR_BLE_SEGMENT);
	CP_CHECK_INT(cp_ble_segment_parse(b, 1, &s), CP_ERR_BLE_SEGMENT);
	/* standalone ack */
	cp_test_unhex("0407", b, sizeof b);
	CP_CHECK_INT(cp_ble_segment_parse(b, 2, &s), CP_OK);
	CP_CHECK(!s.has_seq);
	CP_CHECK_INT(s.ack, 7);
	CP_CHECK_INT(cp_ble_segment_parse(b, 1, &s), CP_ERR_BLE_SEGMENT);
	/* ack and seq but no data */
	cp_test_unhex("040701", b, sizeof b);
	CP_CHECK_INT(cp_ble_segment_parse(b, 3, &s), CP_ERR_BLE_SEGMENT);
	/* middle segment with an ack */
	cp_test_unhex("04070155", b, sizeof b);
	CP_CHECK_INT(cp_ble_segment_parse(b, 4, &s), CP_OK);
	CP_CHECK(s.has_seq && s.seq == 1 && s.ack == 7 && s.data_len == 1);
	/* reserved flags */
	for (unsigned bit = 3; bit < 8; bit++) {
		b[0] = (uint8_t)(1u << bit);
		CP_CHECK_INT(cp_ble_segment_parse(b, 4, &s), CP_ERR_BLE_FLAGS);
	}
	memset(longseg, 0, sizeof longseg);
	CP_CHECK_INT(cp_ble_segment_parse(longseg, sizeof longseg, &s), CP_ERR_BLE_SEGMENT);
	CP_CHECK_INT(cp_ble_segment_parse(longseg, CP_BLE_SEGMENT_MAX, &s), CP_OK);
}

/* Moves every segment either side may send now to the other, until both
 * are quiet; returns the number of segments moved, or -1 on an error. */
typedef struct {
	size_t segments;
	size_t bytes;
	size_t largest;
} Traffic;

static int
pump(CpBleLink *from, CpBleLink *to, uint64_t now, Traffic *t)
{
	int moved = 0;

	for (;;) {
		cp_auto_buf seg = CP_BUF_INIT;
		CpError err = cp_ble_link_next_segment(from, now, &seg);

		if (err)
			return -1;
		if (seg.len == 0)
			return moved;
		if (seg.len > t->largest)
			t->largest = seg.len;
		t->segments++;
		t->bytes += seg.len;
		if (cp_ble_link_receive(to, now, 0, seg.data, seg.len, NULL))
			return -1;
		moved++;
	}
}

static bool
exchange(CpBleLink *a, CpBleLink *b, uint64_t now, Traffic *t)
{
	for (int i = 0; i < 10000; i++) {
		int x = pump(a, b, now, t), y = pump(b, a, now, t);

		if (x < 0 || y < 0)
			return false;
		if (x == 0 && y == 0)
			return true;
	}
	return false;
}

static void
test_roundtrip(void)
{
	static const uint16_t mtus[] = { 23, 24, 27, 100, 185, 247, 517 };
	static const size_t sizes[] = { 1, 2, 15, 16, 17, 100, 277, 1301, CP_BLE_MSG_MAX };

	for (size_t m = 0; m < sizeof mtus / sizeof mtus[0]; m++)
		for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
			CpBleLink *phone = cp_ble_link_new(mtus[m], 0);
			CpBleLink *dev = cp_ble_link_new(mtus[m], 0);
			Traffic t = { 0 };
			const uint8_t *got;
			size_t len;

			fill(big, sizes[z], (uint32_t)(m * 31 + z));
			/* phone -> device, then device -> phone: a request and its answer */
			CP_CHECK_INT(cp_ble_link_send(phone, big, sizes[z]), CP_OK);
			CP_CHECK_INT(cp_ble_link_send(phone, big, sizes[z]), CP_ERR_STATE);
			CP_CHECK(exchange(phone, dev, 1, &t));
			got = cp_ble_link_message(dev, &len);
			CP_CHECK(got && len == sizes[z] && memcmp(got, big, len) == 0);
			CP_CHECK(!cp_ble_link_sending(phone));
			CP_CHECK(t.largest <= (size_t)mtus[m] - 3 && t.largest <= CP_BLE_SEGMENT_MAX);
			cp_ble_link_take(dev);
			CP_CHECK(cp_ble_link_message(dev, &len) == NULL);

			fill(big, sizes[z], (uint32_t)(m * 17 + z + 5));
			CP_CHECK_INT(cp_ble_link_send(dev, big, sizes[z]), CP_OK);
			CP_CHECK(exchange(dev, phone, 2, &t));
			got = cp_ble_link_message(phone, &len);
			CP_CHECK(got && len == sizes[z] && memcmp(got, big, len) == 0);
			CP_CHECK(!cp_ble_link_sending(dev));
			CP_CHECK(t.largest <= (size_t)mtus[m] - 3 && t.largest <= CP_BLE_SEGMENT_MAX);
			CP_CHECK_INT(cp_ble_link_error(dev), CP_OK);
			CP_CHECK_INT(cp_ble_link_error(phone), CP_OK);
			cp_ble_link_free(phone);
			cp_ble_link_free(dev);
		}
}

/* The MTU changes mid-message: the next segments follow it. */
/* A message is "receiving" from its first segment until it is whole, and
 * not while one waits to be taken. */
static void
test_receiving(void)
{
	CpBleLink *phone = cp_ble_link_new(23, 0), *dev = cp_ble_link_new(23, 0);
	cp_auto_buf seg = CP_BUF_INIT;
	Traffic t = { 0 };
	bool ready = true;
	size_t len = 0;

	fill(big, 100, 3);
	CP_CHECK(!cp_ble_link_receiving(dev));
	CP_CHECK_INT(cp_ble_link_send(phone, big, 100), CP_OK);
	CP_CHECK_INT(cp_ble_link_next_segment(phone, 0, &seg), CP_OK);
	CP_CHECK_INT(cp_ble_link_receive(dev, 0, 0, seg.data, seg.len, &ready), CP_OK);
	CP_CHECK(!ready && cp_ble_link_receiving(dev));
	CP_CHECK(!cp_ble_link_receiving(phone));
	CP_CHECK(exchange(phone, dev, 1, &t));
	CP_CHECK(cp_ble_link_message(dev, &len) != NULL && len == 100);
	CP_CHECK(!cp_ble_link_receiving(dev));
	cp_ble_link_take(dev);
	CP_CHECK(!cp_ble_link_receiving(dev));
	cp_ble_link_free(phone);
	cp_ble_link_free(dev);
}

static void
test_mtu_change(void)
{
	CpBleLink *a = cp_ble_link_new(517, 0), *b = cp_ble_link_new(23, 0);
	cp_auto_buf seg = CP_BUF_INIT;
	Traffic t = { 0 };
	size_t len;

	CP_CHECK(cp_ble_link_new(22, 0) == NULL);
	CP_CHECK(cp_ble_link_new(518, 0) == NULL);
	fill(big, 3000, 9);
	CP_CHECK_INT(cp_ble_link_send(a, big, 3000), CP_OK);
	CP_CHECK_INT(cp_ble_link_next_segment(a, 0, &seg), CP_OK);
	CP_CHECK_INT(seg.len, CP_BLE_SEGMENT_MAX);
	CP_CHECK_INT(cp_ble_link_receive(b, 0, 0, seg.data, seg.len, NULL), CP_OK);
	CP_CHECK_INT(cp_ble_link_set_mtu(a, 22), CP_ERR_BLE_MTU);
	CP_CHECK_INT(cp_ble_link_set_mtu(a, 518), CP_ERR_BLE_MTU);
	CP_CHECK_INT(cp_ble_link_mtu(a), 517);
	CP_CHECK_INT(cp_ble_link_set_mtu(a, 23), CP_OK);
	CP_CHECK(exchange(a, b, 0, &t));
	CP_CHECK_INT(t.largest, 20);
	CP_CHECK(cp_ble_link_message(b, &len) && len == 3000);
	cp_ble_link_free(a);
	cp_ble_link_free(b);
}

/* A segment written in pieces (Prepare Write + Execute Write): offsets. */
static void
test_long_write(void)
{
	CpBleLink *d = cp_ble_link_new(23, 0);
	uint8_t seg[600];
	bool ready = false;
	size_t len;

	/* B|E, seq 0, length 300, then the data in four writes */
	seg[0] = 0x03;
	seg[1] = 0x00;
	cp_put_be16(seg + 2, 300);
	fill(seg + 4, 300, 3);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 0, seg, 18, &ready), CP_OK);
	CP_CHECK(!ready);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 18, seg + 18, 100, &ready), CP_OK);
	CP_CHECK(!ready);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 118, seg + 118, 100, &ready), CP_OK);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 218, seg + 218, 86, &ready), CP_OK);
	CP_CHECK(ready);
	CP_CHECK(cp_ble_link_message(d, &len) && len == 300 &&
		 memcmp(cp_ble_link_message(d, &len), seg + 4, 300) == 0);
	/* past the message */
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 304, seg, 1, NULL), CP_ERR_BLE_LENGTH);
	cp_ble_link_free(d);

	/* an offset that does not continue the segment */
	d = cp_ble_link_new(23, 0);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 0, seg, 18, NULL), CP_OK);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 19, seg + 19, 10, NULL), CP_ERR_BLE_OFFSET);
	/* sticky */
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 18, seg + 18, 10, NULL), CP_ERR_BLE_OFFSET);
	cp_ble_link_free(d);

	/* an offset with nothing written at 0 */
	d = cp_ble_link_new(23, 0);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 5, seg, 10, NULL), CP_ERR_BLE_OFFSET);
	cp_ble_link_free(d);

	/* the first part without END, the message complete by a long write: flags */
	d = cp_ble_link_new(23, 0);
	seg[0] = 0x01;
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 0, seg, 18, NULL), CP_OK);
	CP_CHECK_INT(cp_ble_link_receive(d, 0, 18, seg + 18, 286, NULL), CP_ERR_BLE_FLAGS);
	cp_ble_link_free(d);
}

typedef struct {
	const char *what;
	const char *segs[6];
	CpError want;
} RuleCase;

static void
test_rules(void)
{
	static const RuleCase cases[] = {
		{ "empty segment", { "" }, CP_ERR_BLE_SEGMENT },
		{ "reserved flag", { "0800000201" }, CP_ERR_BLE_FLAGS },
		{ "continuation first", { "000011" }, CP_ERR_BLE_FLAGS },
		{ "end first", { "020011" }, CP_ERR_BLE_FLAGS },
		{ "begin inside a message", { "0100000511", "01010005aa" }, CP_ERR_BLE_FLAGS },
		{ "begin before take", { "0300000101", "0301000101" }, CP_ERR_BLE_FLAGS },
		{ "end missing", { "0100000211", "000122" }, CP_ERR_BLE_FLAGS },
		{ "end before the length (a long write follows)", { "0300000311" }, CP_OK },
		{ "segment after an end", { "0300000311", "000122" }, CP_ERR_BLE_LENGTH },
		{ "zero length", { "010000000011" }, CP_ERR_BLE_LENGTH },
		{ "data past the length", { "03000001aabb" }, CP_ERR_BLE_LENGTH },
		{ "too large", { "0100100511" }, CP_ERR_BLE_TOO_LARGE },
		{ "largest", { "0100100411" }, CP_OK },
		{ "first seq not 0", { "0301000101" }, CP_ERR_BLE_SEQUENCE },
		{ "duplicate", { "0100000311", "000122", "000122" }, CP_ERR_BLE_SEQUENCE },
		{ "skipped", { "0100000311", "000222" }, CP_ERR_BLE_SEQUENCE },
		{ "reordered", { "0100000411", "000222", "000122" }, CP_ERR_BLE_SEQUENCE },
		{ "window", { "0100001011", "000122", "000233", "000344", "000455" }, CP_ERR_BLE_WINDOW },
		{ "ack of nothing sent", { "0400" }, CP_ERR_BLE_ACK },
		{ "ack of nothing, piggybacked", { "070000000101" }, CP_ERR_BLE_ACK },
		{ "repeat of no ack", { "04ff" }, CP_OK },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CpBleLink *l = cp_ble_link_new(23, 0);
		CpError err = CP_OK;

		for (size_t k = 0; k < 6 && cases[i].segs[k] && err == CP_OK; k++)
			err = recv_hex(l, 0, cases[i].segs[k], NULL);
		if (err != cases[i].want)
			fprintf(stderr, "case \"%s\": %s, want %s\n", cases[i].what,
				cp_error_name(err), cp_error_name(cases[i].want));
		CP_CHECK_INT(err, cases[i].want);
		CP_CHECK_INT(cp_ble_link_error(l), cases[i].want);
		cp_ble_link_free(l);
	}
}

/* Acks: a window of 4, acknowledged in time; an ack beyond what is in
 * flight is refused. */
static void
test_acks(void)
{
	CpBleLink *s = cp_ble_link_new(23, 0), *r = cp_ble_link_new(23, 0);
	cp_auto_buf seg = CP_BUF_INIT;
	size_t n = 0;

	fill(big, 200, 1);
	CP_CHECK_INT(cp_ble_link_send(s, big, 200), CP_OK);
	for (;;) {
		seg.len = 0;
		CP_CHECK_INT(cp_ble_link_next_segment(s, 0, &seg), CP_OK);
		if (seg.len == 0)
			break;
		CP_CHECK_INT(cp_ble_link_receive(r, 0, 0, seg.data, seg.len, NULL), CP_OK);
		n++;
	}
	CP_CHECK_INT(n, CP_BLE_WINDOW);
	/* the receiver owes an ack (4 >= 2): standalone 04 03 */
	seg.len = 0;
	CP_CHECK_INT(cp_ble_link_next_segment(r, 0, &seg), CP_OK);
	CP_CHECK_HEX(seg.data, seg.len, "0403");
	seg.len = 0;
	CP_CHECK_INT(cp_ble_link_next_segment(r, 0, &seg), CP_OK);
	CP_CHECK_INT(seg.len, 0);
	/* an ack of seq 4, never sent */
	CP_CHECK_INT(recv_hex(s, 0, "0404", NULL), CP_ERR_BLE_ACK);
	cp_ble_link_free(s);

	/* one segment alone is acknowledged after the delay, not before */
	s = cp_ble_link_new(23, 0);
	CP_CHECK_INT(recv_hex(s, 1000, "0100000511", NULL), CP_OK);
	seg.len = 0;
	CP_CHECK_INT(cp_ble_link_next_segment(s, 1000 + CP_BLE_ACK_DELAY_MS - 1, &seg), CP_OK);
	CP_CHECK_INT(seg.len, 0);
	CP_CHECK_INT(cp_ble_link_deadline(s), 1000 + CP_BLE_ACK_DELAY_MS);
	CP_CHECK_INT(cp_ble_link_next_segment(s, 1000 + CP_BLE_ACK_DELAY_MS, &seg), CP_OK);
	CP_CHECK_HEX(seg.data, seg.len, "0400");
	cp_ble_link_free(s);
	cp_ble_link_free(r);
}

static void
test_timeouts(void)
{
	CpBleLink *l;
	cp_auto_buf seg = CP_BUF_INIT;

	/* idle */
	l = cp_ble_link_new(23, 1000);
	CP_CHECK_INT(cp_ble_link_deadline(l), 1000 + CP_BLE_IDLE_TIMEOUT_MS);
	CP_CHECK_INT(cp_ble_link_check(l, 1000 + CP_BLE_IDLE_TIMEOUT_MS - 1), CP_OK);
	CP_CHECK_INT(cp_ble_link_check(l, 1000 + CP_BLE_IDLE_TIMEOUT_MS), CP_ERR_BLE_IDLE);
	CP_CHECK_INT(recv_hex(l, 1000 + CP_BLE_IDLE_TIMEOUT_MS, "0300000101", NULL), CP_ERR_BLE_IDLE);
	cp_ble_link_free(l);

	/* a message not whole in time */
	l = cp_ble_link_new(23, 0);
	CP_CHECK_INT(recv_hex(l, 5, "0100000511", NULL), CP_OK);
	CP_CHECK_INT(recv_hex(l, 6, "000122", NULL), CP_OK);
	CP_CHECK_INT(cp_ble_link_check(l, 5 + CP_BLE_MSG_TIMEOUT_MS - 1), CP_OK);
	CP_CHECK_INT(cp_ble_link_check(l, 5 + CP_BLE_MSG_TIMEOUT_MS), CP_ERR_BLE_MESSAGE_TIMEOUT);
	cp_ble_link_free(l);

	/* no ack */
	l = cp_ble_link_new(23, 0);
	CP_CHECK_INT(cp_ble_link_send(l, big, 50), CP_OK);
	CP_CHECK_INT(cp_ble_link_next_segment(l, 10, &seg), CP_OK);
	CP_CHECK_INT(cp_ble_link_deadline(l), 10 + CP_BLE_ACK_TIMEOUT_MS);
	CP_CHECK_INT(cp_ble_link_check(l, 10 + CP_BLE_ACK_TIMEOUT_MS - 1), CP_OK);
	CP_CHECK_INT(cp_ble_link_check(l, 10 + CP_BLE_ACK_TIMEOUT_MS), CP_ERR_BLE_ACK_TIMEOUT);
	seg.len = 0;
	CP_CHECK_INT(cp_ble_link_next_segment(l, 11, &seg), CP_ERR_BLE_ACK_TIMEOUT);
	cp_ble_link_free(l);

	/* the whole session, however busy */
	l = cp_ble_link_new(23, 0);
	for (uint64_t t = 0; t < CP_BLE_SESSION_TIMEOUT_MS; t += 1000) {
		CP_CHECK_INT(cp_ble_link_check(l, t), CP_OK);
		/* activity: a standalone ack that repeats "nothing yet" */
		CP_CHECK_INT(recv_hex(l, t, "04ff", NULL), CP_OK);
	}
	CP_CHECK_INT(cp_ble_link_check(l, CP_BLE_SESSION_TIMEOUT_MS), CP_ERR_BLE_SESSION_TIMEOUT);
	cp_ble_link_free(l);
}

static void
test_messages(void)
{
	static const struct {
		const char *hex;
		CpError want;
	} cases[] = {
		{ "0101", CP_OK },
		{ "0103", CP_OK },
		{ "0102d0", CP_OK },
		{ "01", CP_ERR_BLE_MESSAGE },
		{ "0201", CP_ERR_BLE_VERSION },
		{ "0104", CP_ERR_BLE_OPCODE },
		{ "0100", CP_ERR_BLE_OPCODE },
		{ "0184000000", CP_ERR_BLE_OPCODE },     /* success of an unknown request */
		{ "0184070f", CP_OK },                  /* ble-opcode answers it */
		{ "0180070f", CP_ERR_BLE_OPCODE },      /* op 0 is none */
		{ "0184070fd0", CP_ERR_BLE_MESSAGE },
		{ "010101", CP_ERR_BLE_MESSAGE },       /* read-tag with a body */
		{ "010301", CP_ERR_BLE_MESSAGE },       /* read-receipt with a body */
		{ "0102", CP_ERR_BLE_MESSAGE },         /* write-profile without one */
		{ "0181", CP_ERR_BLE_MESSAGE },         /* response without status */
		{ "018100", CP_ERR_BLE_MESSAGE },
		{ "01810000", CP_ERR_BLE_MESSAGE },     /* tag content missing */
		{ "01810000d0", CP_OK },
		{ "01810602", CP_OK },                  /* busy */
		{ "01810602d0", CP_ERR_BLE_MESSAGE },   /* an error with a body */
		{ "01820000", CP_OK },
		{ "01820000d0", CP_ERR_BLE_MESSAGE },
		{ "01820308", CP_OK },                  /* ndef-no-record */
		{ "01830000", CP_OK },                  /* no receipt */
		{ "01830000d0", CP_OK },
	};
	CpBleMessage m = { 0 };

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t b[16];
		size_t n = cp_test_unhex(cases[i].hex, b, sizeof b);
		CpError err = cp_ble_message_parse(b, n, &m);

		if (err != cases[i].want)
			fprintf(stderr, "message %s: %s\n", cases[i].hex, cp_error_name(err));
		CP_CHECK_INT(err, cases[i].want);
		if (err == CP_OK) {
			cp_auto_buf out = CP_BUF_INIT;

			CP_CHECK_INT(cp_ble_message_encode(&m, &out), CP_OK);
			CP_CHECK_HEX(out.data, out.len, cases[i].hex);
		}
	}
	/* the encoder keeps the same rules */
	{
		cp_auto_buf out = CP_BUF_INIT;
		CpBleMessage bad = { .op = CP_BLE_OP_READ_TAG, .response = true };

		CP_CHECK_INT(cp_ble_message_encode(&bad, &out), CP_ERR_BLE_MESSAGE);
		bad.op = 9;
		CP_CHECK_INT(cp_ble_message_encode(&bad, &out), CP_ERR_BLE_OPCODE);
		bad = (CpBleMessage){ .op = CP_BLE_OP_WRITE_PROFILE, .body = big,
				      .body_len = CP_BLE_MSG_MAX - 1 };
		CP_CHECK_INT(cp_ble_message_encode(&bad, &out), CP_ERR_BLE_TOO_LARGE);
		CP_CHECK_INT(out.len, 0);
	}
	CP_CHECK(strcmp(cp_ble_op_name(CP_BLE_OP_WRITE_PROFILE), "write-profile") == 0);
	CP_CHECK(cp_ble_op_name(0) == NULL);
}

static void
test_rate(void)
{
	CpBleRate r = { 0 };
	uint8_t id[16], adv[CP_BLE_ADV_DATA_LEN];

	for (int i = 0; i < CP_BLE_SESSIONS_PER_MINUTE; i++)
		CP_CHECK_INT(cp_ble_rate_admit(&r, 1000 + (uint64_t)i * 1000), CP_OK);
	CP_CHECK_INT(cp_ble_rate_admit(&r, 59999), CP_ERR_BLE_RATE);
	/* the first start leaves the minute at 61000 */
	CP_CHECK_INT(cp_ble_rate_admit(&r, 60999), CP_ERR_BLE_RATE);
	CP_CHECK_INT(cp_ble_rate_admit(&r, 61000), CP_OK);
	CP_CHECK_INT(cp_ble_rate_admit(&r, 61001), CP_ERR_BLE_RATE);

	cp_test_unhex("d727a449017a34c53dd88a22afa5736d", id, sizeof id);
	cp_ble_adv_data(2, id, adv);
	CP_CHECK_HEX(adv, sizeof adv, "12d727a44901");
}

/*
 * docs/test-vectors/ble-read-tag.txt: a read-tag session at MTU 23, the
 * sides taking turns (each sends all it may, the other then receives
 * everything), the device answering with the tag message of
 * cellprov-v2.txt. Set CP_BLE_VECTOR_OUT to write the stream made here.
 */
static void
test_worked_example(void)
{
	const char *src = getenv("CP_SOURCE_DIR"), *out_path = getenv("CP_BLE_VECTOR_OUT");
	static uint8_t ndef[CP_T4T_NDEF_MAX];
	CpBleLink *phone = cp_ble_link_new(23, 0), *dev = cp_ble_link_new(23, 0);
	CpTestVectors v;
	char path[4096], line[2048];
	size_t ndef_len, len;
	cp_auto_buf made = CP_BUF_INIT;
	cp_auto_buf req = CP_BUF_INIT, resp = CP_BUF_INIT;
	CpBleMessage m;
	FILE *f;

	if (!cp_test_vectors_load("../cellprov-v2.txt", &v) || v.n == 0) {
		CP_CHECK(!"cellprov-v2.txt");
		return;
	}
	ndef_len = 0;
	for (size_t i = 0; i < v.n; i++)
		if (cp_test_block_get(&v.blocks[i], "ndef_tag"))
			ndef_len = cp_test_unhex(cp_test_block_get(&v.blocks[i], "ndef_tag"),
						 ndef, sizeof ndef);
	cp_test_vectors_free(&v);
	CP_CHECK_INT(ndef_len, 273);

	m = (CpBleMessage){ .op = CP_BLE_OP_READ_TAG };
	CP_CHECK_INT(cp_ble_message_encode(&m, &req), CP_OK);
	CP_CHECK_INT(cp_ble_link_send(phone, req.data, req.len), CP_OK);
	for (int turn = 0; turn < 100; turn++) {
		CpBleLink *from = turn % 2 ? dev : phone, *to = turn % 2 ? phone : dev;
		bool any = false;
		const uint8_t *msg;

		for (;;) {
			cp_auto_buf seg = CP_BUF_INIT;
			char hex[2 * CP_BLE_SEGMENT_MAX + 1];

			CP_CHECK_INT(cp_ble_link_next_segment(from, 0, &seg), CP_OK);
			if (seg.len == 0)
				break;
			any = true;
			cp_hex_encode(seg.data, seg.len, hex);
			snprintf(line, sizeof line, "%c %s\n", turn % 2 ? '<' : '>', hex);
			cp_buf_append(&made, line, strlen(line));
			CP_CHECK_INT(cp_ble_link_receive(to, 0, 0, seg.data, seg.len, NULL), CP_OK);
		}
		if (to == dev && (msg = cp_ble_link_message(dev, &len))) {
			CP_CHECK_INT(cp_ble_message_parse(msg, len, &m), CP_OK);
			CP_CHECK_INT(m.op, CP_BLE_OP_READ_TAG);
			cp_ble_link_take(dev);
			m = (CpBleMessage){ .op = CP_BLE_OP_READ_TAG, .response = true,
					    .body = ndef, .body_len = ndef_len };
			CP_CHECK_INT(cp_ble_message_encode(&m, &resp), CP_OK);
			CP_CHECK_INT(cp_ble_link_send(dev, resp.data, resp.len), CP_OK);
		}
		if (!any && turn > 0 && !cp_ble_link_sending(dev) && !cp_ble_link_sending(phone))
			break;
	}
	{
		const uint8_t *msg = cp_ble_link_message(phone, &len);

		CP_CHECK(msg && len == resp.len && memcmp(msg, resp.data, len) == 0);
	}
	cp_ble_link_free(phone);
	cp_ble_link_free(dev);
	cp_buf_append_u8(&made, 0);

	if (out_path) {
		f = fopen(out_path, "w");
		if (f) {
			fputs((const char *)made.data, f);
			fclose(f);
		}
	}

	/* the published stream: its segment lines, comments aside */
	snprintf(path, sizeof path, "%s/docs/test-vectors/ble-read-tag.txt", src ? src : ".");
	f = fopen(path, "r");
	CP_CHECK(f != NULL);
	if (!f)
		return;
	{
		cp_auto_buf pub = CP_BUF_INIT;

		while (fgets(line, sizeof line, f))
			if (line[0] == '<' || line[0] == '>')
				cp_buf_append(&pub, line, strlen(line));
		fclose(f);
		cp_buf_append_u8(&pub, 0);
		CP_CHECK(pub.len == made.len && memcmp(pub.data, made.data, made.len) == 0);
	}
}

int
main(void)
{
	test_segment_parse();
	test_roundtrip();
	test_receiving();
	test_mtu_change();
	test_long_write();
	test_rules();
	test_acks();
	test_timeouts();
	test_messages();
	test_rate();
	test_worked_example();
	return cp_test_done("test-ble");
}
