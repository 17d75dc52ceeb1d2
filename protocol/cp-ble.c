/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * BLE framing: docs/protocol.md section 18. The numbers of the checks
 * below are those of 18.4.4.
 */
#include <stdlib.h>
#include <string.h>

#include "cp-ble.h"
#include "cp-secret.h"

struct CpBleLink {
	uint16_t mtu;
	CpError error;                  /* sticky: the session ended */
	uint64_t start;
	uint64_t last_activity;

	/* receiving */
	uint8_t rx_next;                /* seq expected */
	uint8_t rx_last;                /* seq of the last data segment received */
	unsigned rx_unacked;            /* data segments received, not acknowledged */
	uint64_t rx_unacked_since;
	bool rx_ack_now;                /* the last segment of a message is unacknowledged */
	bool rx_in_message;
	bool rx_end_seen;               /* END seen, the rest comes as a long write */
	bool rx_ready;                  /* a whole message waits for cp_ble_link_take() */
	uint64_t rx_msg_start;
	size_t rx_msg_len;
	size_t rx_have;
	bool seg_open;                  /* the last data segment may be continued */
	size_t seg_have;                /* its bytes so far */

	/* sending */
	uint8_t tx_next;                /* seq of the next data segment */
	unsigned tx_in_flight;
	uint64_t tx_wait_since;
	bool tx_pending;
	size_t tx_len;
	size_t tx_off;

	uint8_t rx_buf[CP_BLE_MSG_MAX];
	uint8_t tx_buf[CP_BLE_MSG_MAX];
};

CpBleLink *
cp_ble_link_new(uint16_t mtu, uint64_t now)
{
	CpBleLink *l;

	if (mtu < CP_BLE_MTU_MIN || mtu > CP_BLE_MTU_MAX)
		return NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->mtu = mtu;
	l->start = now;
	l->last_activity = now;
	l->rx_last = 0xFF;
	return l;
}

void
cp_ble_link_free(CpBleLink *l)
{
	if (!l)
		return;
	/* The buffers held a profile: not a secret, but no reason to leave it. */
	cp_cleanse(l, sizeof *l);
	free(l);
}

CpError
cp_ble_link_set_mtu(CpBleLink *l, uint16_t mtu)
{
	if (mtu < CP_BLE_MTU_MIN || mtu > CP_BLE_MTU_MAX)
		return CP_ERR_BLE_MTU;
	l->mtu = mtu;
	return CP_OK;
}

uint16_t
cp_ble_link_mtu(const CpBleLink *l)
{
	return l->mtu;
}

CpError
cp_ble_link_error(const CpBleLink *l)
{
	return l->error;
}

static CpError
fail(CpBleLink *l, CpError err)
{
	if (l->error == CP_OK)
		l->error = err;
	return l->error;
}

CpError
cp_ble_segment_parse(const uint8_t *seg, size_t len, CpBleSegment *s)
{
	CpBleSegment out = { 0 };
	size_t p = 1;

	/* 2: size */
	if (!seg || len == 0 || len > CP_BLE_SEGMENT_MAX)
		return CP_ERR_BLE_SEGMENT;
	out.flags = seg[0];
	/* 3: reserved flags; 4: the header */
	if (out.flags & ~CP_BLE_FLAGS_KNOWN)
		return CP_ERR_BLE_FLAGS;
	if (out.flags & CP_BLE_FLAG_ACK) {
		if (len < 2)
			return CP_ERR_BLE_SEGMENT;
		out.ack = seg[1];
		p = 2;
		if (out.flags == CP_BLE_FLAG_ACK && len == 2) {
			*s = out;
			return CP_OK;
		}
	}
	if (len < p + 1)
		return CP_ERR_BLE_SEGMENT;
	out.has_seq = true;
	out.seq = seg[p++];
	if (out.flags & CP_BLE_FLAG_BEGIN) {
		if (len < p + 2)
			return CP_ERR_BLE_SEGMENT;
		out.msg_len = cp_be16(seg + p);
		p += 2;
	}
	if (len == p)
		return CP_ERR_BLE_SEGMENT;
	out.data = seg + p;
	out.data_len = len - p;
	*s = out;
	return CP_OK;
}

/* Message data, at offset 0 or continuing a long write: 10-11. */
static CpError
take_data(CpBleLink *l, const uint8_t *data, size_t n, bool end)
{
	if (n > l->rx_msg_len - l->rx_have)
		return fail(l, CP_ERR_BLE_LENGTH);
	memcpy(l->rx_buf + l->rx_have, data, n);
	l->rx_have += n;
	if (end)
		l->rx_end_seen = true;
	if (l->rx_have < l->rx_msg_len)
		return CP_OK;
	if (!l->rx_end_seen)
		return fail(l, CP_ERR_BLE_FLAGS);
	l->rx_in_message = false;
	l->rx_end_seen = false;
	l->rx_ready = true;
	l->rx_ack_now = true;
	return CP_OK;
}

CpError
cp_ble_link_receive(CpBleLink *l, uint64_t now, size_t offset,
		    const uint8_t *seg, size_t len, bool *message_ready)
{
	CpBleSegment s;
	CpError err;

	if (message_ready)
		*message_ready = false;
	if (l->error)
		return l->error;
	l->last_activity = now;

	if (offset != 0) {
		/* 1: a piece of a long write: more data of the open segment. */
		if (!seg || len == 0 || !l->seg_open || offset != l->seg_have ||
		    len > CP_BLE_SEGMENT_MAX - l->seg_have)
			return fail(l, CP_ERR_BLE_OFFSET);
		l->seg_have += len;
		if ((err = take_data(l, seg, len, false)))
			return err;
		if (message_ready)
			*message_ready = l->rx_ready;
		return CP_OK;
	}

	/* 2-4 */
	if ((err = cp_ble_segment_parse(seg, len, &s)))
		return fail(l, err);
	/* 5: the ack names segments in flight, or repeats the last one */
	if (s.flags & CP_BLE_FLAG_ACK) {
		uint8_t first = (uint8_t)(l->tx_next - l->tx_in_flight);
		unsigned acked = (uint8_t)(s.ack + 1 - first);

		if (acked > l->tx_in_flight)
			return fail(l, CP_ERR_BLE_ACK);
		if (acked > 0) {
			l->tx_in_flight -= acked;
			l->tx_wait_since = now;
			if (l->tx_in_flight == 0 && l->tx_off == l->tx_len)
				l->tx_pending = false;
		}
	}
	if (!s.has_seq) {
		l->seg_open = false;
		return CP_OK;
	}
	/* 6: sequence */
	if (s.seq != l->rx_next)
		return fail(l, CP_ERR_BLE_SEQUENCE);
	/* 7: window */
	if (l->rx_unacked >= CP_BLE_WINDOW)
		return fail(l, CP_ERR_BLE_WINDOW);
	if (s.flags & CP_BLE_FLAG_BEGIN) {
		/* 8: a begin outside a message, and the previous one taken */
		if (l->rx_in_message || l->rx_ready)
			return fail(l, CP_ERR_BLE_FLAGS);
		/* 9: the length */
		if (s.msg_len == 0)
			return fail(l, CP_ERR_BLE_LENGTH);
		if (s.msg_len > CP_BLE_MSG_MAX)
			return fail(l, CP_ERR_BLE_TOO_LARGE);
		l->rx_in_message = true;
		l->rx_end_seen = false;
		l->rx_msg_len = s.msg_len;
		l->rx_have = 0;
		l->rx_msg_start = now;
	} else {
		/* 8: a continuation inside a message; 10: after an end, only a long write */
		if (!l->rx_in_message)
			return fail(l, CP_ERR_BLE_FLAGS);
		if (l->rx_end_seen)
			return fail(l, CP_ERR_BLE_LENGTH);
	}
	l->rx_next++;
	l->rx_last = s.seq;
	if (l->rx_unacked++ == 0)
		l->rx_unacked_since = now;
	l->seg_open = true;
	l->seg_have = len;
	if ((err = take_data(l, s.data, s.data_len, s.flags & CP_BLE_FLAG_END)))
		return err;
	if (message_ready)
		*message_ready = l->rx_ready;
	return CP_OK;
}

const uint8_t *
cp_ble_link_message(const CpBleLink *l, size_t *len)
{
	if (!l->rx_ready) {
		*len = 0;
		return NULL;
	}
	*len = l->rx_msg_len;
	return l->rx_buf;
}

void
cp_ble_link_take(CpBleLink *l)
{
	l->rx_ready = false;
	l->seg_open = false;
}

CpError
cp_ble_link_send(CpBleLink *l, const uint8_t *msg, size_t len)
{
	if (l->error)
		return l->error;
	if (!msg || len == 0)
		return CP_ERR_ARGUMENT;
	if (len > CP_BLE_MSG_MAX)
		return CP_ERR_BLE_TOO_LARGE;
	if (l->tx_pending)
		return CP_ERR_STATE;
	memcpy(l->tx_buf, msg, len);
	l->tx_len = len;
	l->tx_off = 0;
	l->tx_pending = true;
	return CP_OK;
}

bool
cp_ble_link_sending(const CpBleLink *l)
{
	return l->tx_pending;
}

bool
cp_ble_link_receiving(const CpBleLink *l)
{
	return l->rx_in_message;
}

CpError
cp_ble_link_sent(CpBleLink *l, uint64_t now, const uint8_t *seg, size_t len)
{
	CpBleSegment s;
	CpError err;

	if (l->error)
		return l->error;
	if ((err = cp_ble_segment_parse(seg, len, &s)))
		return fail(l, err);
	if (s.has_seq) {
		if (s.seq != l->tx_next)
			return fail(l, CP_ERR_BLE_SEQUENCE);
		if (l->tx_in_flight >= CP_BLE_WINDOW)
			return fail(l, CP_ERR_BLE_WINDOW);
		l->tx_next++;
		if (l->tx_in_flight++ == 0)
			l->tx_wait_since = now;
	}
	if (s.flags & CP_BLE_FLAG_ACK) {
		l->rx_unacked = 0;
		l->rx_ack_now = false;
	}
	l->last_activity = now;
	return CP_OK;
}

static bool
ack_due(const CpBleLink *l, uint64_t now)
{
	return l->rx_unacked > 0 &&
	       (l->rx_ack_now || l->rx_unacked >= CP_BLE_WINDOW / 2 ||
		now - l->rx_unacked_since >= CP_BLE_ACK_DELAY_MS);
}

CpError
cp_ble_link_next_segment(CpBleLink *l, uint64_t now, CpBuf *out)
{
	bool data = l->tx_pending && l->tx_off < l->tx_len && l->tx_in_flight < CP_BLE_WINDOW;
	bool ack = l->rx_unacked > 0;
	size_t room, n;
	uint8_t flags = 0;

	if (l->error)
		return l->error;
	if (!data && !ack_due(l, now))
		return CP_OK;
	if (!data) {
		cp_buf_append_u8(out, CP_BLE_FLAG_ACK);
		cp_buf_append_u8(out, l->rx_last);
	} else {
		/* MTU - 3, at most ATT's largest value; less flags and seq */
		room = (size_t)l->mtu - 3;
		if (room > CP_BLE_SEGMENT_MAX)
			room = CP_BLE_SEGMENT_MAX;
		room -= 2;
		if (ack) {
			flags |= CP_BLE_FLAG_ACK;
			room--;
		}
		if (l->tx_off == 0) {
			flags |= CP_BLE_FLAG_BEGIN;
			room -= 2;
		}
		n = l->tx_len - l->tx_off;
		if (n > room)
			n = room;
		if (l->tx_off + n == l->tx_len)
			flags |= CP_BLE_FLAG_END;
		cp_buf_append_u8(out, flags);
		if (ack)
			cp_buf_append_u8(out, l->rx_last);
		cp_buf_append_u8(out, l->tx_next);
		if (flags & CP_BLE_FLAG_BEGIN)
			cp_buf_append_be16(out, (uint16_t)l->tx_len);
		cp_buf_append(out, l->tx_buf + l->tx_off, n);
		l->tx_off += n;
		l->tx_next++;
		if (l->tx_in_flight++ == 0)
			l->tx_wait_since = now;
	}
	if (out->failed)
		return CP_ERR_CRYPTO;
	l->rx_unacked = 0;
	l->rx_ack_now = false;
	l->last_activity = now;
	return CP_OK;
}

CpError
cp_ble_link_check(CpBleLink *l, uint64_t now)
{
	if (l->error)
		return l->error;
	if (now - l->start >= CP_BLE_SESSION_TIMEOUT_MS)
		return fail(l, CP_ERR_BLE_SESSION_TIMEOUT);
	if (now - l->last_activity >= CP_BLE_IDLE_TIMEOUT_MS)
		return fail(l, CP_ERR_BLE_IDLE);
	if (l->rx_in_message && now - l->rx_msg_start >= CP_BLE_MSG_TIMEOUT_MS)
		return fail(l, CP_ERR_BLE_MESSAGE_TIMEOUT);
	if (l->tx_in_flight > 0 && now - l->tx_wait_since >= CP_BLE_ACK_TIMEOUT_MS)
		return fail(l, CP_ERR_BLE_ACK_TIMEOUT);
	return CP_OK;
}

static uint64_t
earlier(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t
cp_ble_link_deadline(const CpBleLink *l)
{
	uint64_t d = l->start + CP_BLE_SESSION_TIMEOUT_MS;

	d = earlier(d, l->last_activity + CP_BLE_IDLE_TIMEOUT_MS);
	if (l->rx_in_message)
		d = earlier(d, l->rx_msg_start + CP_BLE_MSG_TIMEOUT_MS);
	if (l->tx_in_flight > 0)
		d = earlier(d, l->tx_wait_since + CP_BLE_ACK_TIMEOUT_MS);
	if (l->rx_unacked > 0)
		d = earlier(d, l->rx_unacked_since + CP_BLE_ACK_DELAY_MS);
	return d;
}

/* ---- messages ---- */

const char *
cp_ble_op_name(uint8_t op)
{
	switch (op) {
	case CP_BLE_OP_READ_TAG:
		return "read-tag";
	case CP_BLE_OP_WRITE_PROFILE:
		return "write-profile";
	case CP_BLE_OP_READ_RECEIPT:
		return "read-receipt";
	}
	return NULL;
}

/* Whether a body belongs: 1 must, 0 must not, -1 may. */
static int
body_rule(uint8_t op, bool response, uint16_t status)
{
	if (response && status != CP_OK)
		return 0;
	switch (op) {
	case CP_BLE_OP_READ_TAG:
		return response ? 1 : 0;
	case CP_BLE_OP_WRITE_PROFILE:
		return response ? 0 : 1;
	default:
		return response ? -1 : 0;
	}
}

static CpError
check_message(uint8_t op, bool response, uint16_t status, size_t body_len)
{
	int rule;

	/* An error answers any request, also one this side does not know
	 * (ble-opcode to a newer phone's request). */
	if (response && status != CP_OK && op != 0 && op < CP_BLE_RESPONSE)
		return body_len > 0 ? CP_ERR_BLE_MESSAGE : CP_OK;
	if (!cp_ble_op_name(op))
		return CP_ERR_BLE_OPCODE;
	rule = body_rule(op, response, status);
	if ((rule == 1 && body_len == 0) || (rule == 0 && body_len > 0))
		return CP_ERR_BLE_MESSAGE;
	return CP_OK;
}

CpError
cp_ble_message_parse(const uint8_t *buf, size_t len, CpBleMessage *m)
{
	CpBleMessage out = { 0 };
	size_t hdr = 2;
	CpError err;

	if (!buf || len < 2)
		return CP_ERR_BLE_MESSAGE;
	if (buf[0] != CP_BLE_VERSION)
		return CP_ERR_BLE_VERSION;
	out.response = buf[1] & CP_BLE_RESPONSE;
	out.op = buf[1] & ~CP_BLE_RESPONSE;
	if (!out.response && !cp_ble_op_name(out.op))
		return CP_ERR_BLE_OPCODE;
	if (out.response) {
		if (len < 4)
			return CP_ERR_BLE_MESSAGE;
		out.status = cp_be16(buf + 2);
		hdr = 4;
	}
	if ((err = check_message(out.op, out.response, out.status, len - hdr)))
		return err;
	if (len > hdr) {
		out.body = buf + hdr;
		out.body_len = len - hdr;
	}
	*m = out;
	return CP_OK;
}

CpError
cp_ble_message_encode(const CpBleMessage *m, CpBuf *out)
{
	size_t len = m->response ? 4 : 2;
	CpError err;

	if (m->body_len > 0 && !m->body)
		return CP_ERR_ARGUMENT;
	if ((err = check_message(m->op, m->response, m->status, m->body_len)))
		return err;
	if (len + m->body_len > CP_BLE_MSG_MAX)
		return CP_ERR_BLE_TOO_LARGE;
	if (!cp_buf_reserve(out, len + m->body_len))
		return CP_ERR_CRYPTO;
	cp_buf_append_u8(out, CP_BLE_VERSION);
	cp_buf_append_u8(out, (uint8_t)(m->op | (m->response ? CP_BLE_RESPONSE : 0)));
	if (m->response)
		cp_buf_append_be16(out, m->status);
	if (m->body_len > 0)
		cp_buf_append(out, m->body, m->body_len);
	return CP_OK;
}

/* ---- sessions ---- */

CpError
cp_ble_rate_admit(CpBleRate *r, uint64_t now)
{
	size_t keep = 0;

	for (size_t i = 0; i < r->n && i < CP_BLE_SESSIONS_PER_MINUTE; i++)
		if (now - r->starts[i] < 60000 && r->starts[i] <= now)
			r->starts[keep++] = r->starts[i];
	r->n = keep;
	if (r->n >= CP_BLE_SESSIONS_PER_MINUTE)
		return CP_ERR_BLE_RATE;
	r->starts[r->n++] = now;
	return CP_OK;
}

void
cp_ble_adv_data(uint8_t state, const uint8_t device_id[16], uint8_t out[CP_BLE_ADV_DATA_LEN])
{
	out[0] = (uint8_t)(CP_BLE_VERSION << 4 | (state & 0x0F));
	memcpy(out + 1, device_id, CP_BLE_ADV_DATA_LEN - 1);
}
