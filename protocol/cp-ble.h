/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The BLE framing of docs/protocol.md section 18: messages cut into
 * segments that fit one ATT write or indication, acknowledged in windows,
 * reassembled into a bounded buffer; and the small command header that
 * carries the NFC's NDEF messages (tag content, profile, receipt).
 *
 * Pure code: no I/O, no clock. The caller passes the time (milliseconds,
 * any monotonic origin) and the ATT MTU BlueZ reports, moves segments
 * between the codec and GATT, and calls cp_ble_link_check() by
 * cp_ble_link_deadline(). The same link serves both ends: the device
 * receives writes and sends indications, the phone the other way round.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp-buf.h"
#include "cp-error.h"
#include "cp-ndef.h"

/* GATT (section 18.2): one service, a write and an indicate characteristic. */
#define CP_BLE_SERVICE_UUID "584971d3-8619-438a-8a65-74a2e1c8bb34"
#define CP_BLE_RX_UUID "928f6d43-6900-4a8e-87a0-2a7fda6c13dd"   /* phone -> device: write */
#define CP_BLE_TX_UUID "e0d26ddc-206e-4355-abf1-436c5043c43d"   /* device -> phone: indicate */
/* The advertisement (section 18.3): the service UUID, and manufacturer
 * data under this company identifier: version and state, DeviceID[0..4].
 * Flags (3) + the UUID (18) + the manufacturer data (10) fill the 31 bytes
 * of a legacy advertisement. */
#define CP_BLE_ADV_COMPANY 0xFFFF
#define CP_BLE_ADV_DATA_LEN 6

/* Segments (section 18.4). */
#define CP_BLE_FLAG_BEGIN 0x01
#define CP_BLE_FLAG_END 0x02
#define CP_BLE_FLAG_ACK 0x04
#define CP_BLE_FLAGS_KNOWN 0x07

#define CP_BLE_MTU_MIN 23
#define CP_BLE_MTU_MAX 517
#define CP_BLE_SEGMENT_MAX 512          /* ATT's largest attribute value (long writes) */
#define CP_BLE_WINDOW 4                 /* data segments in flight per direction */
#define CP_BLE_MSG_MAX (4 + CP_T4T_NDEF_MAX)

/* Times (section 18.5), milliseconds. */
#define CP_BLE_ACK_DELAY_MS 200         /* a receiver acknowledges within this */
#define CP_BLE_ACK_TIMEOUT_MS 5000      /* a sender waits this long for an ack */
#define CP_BLE_MSG_TIMEOUT_MS 10000     /* a message arrives whole within this */
#define CP_BLE_IDLE_TIMEOUT_MS 30000    /* a session without a segment ends */
#define CP_BLE_SESSION_TIMEOUT_MS 120000 /* a session ends whatever it does */
#define CP_BLE_SESSIONS_PER_MINUTE 6

typedef struct CpBleLink CpBleLink;

/* A session starting at now on a link of that ATT MTU (23-517, else
 * NULL). NULL also when out of memory. */
CpBleLink *cp_ble_link_new(uint16_t mtu, uint64_t now);
void cp_ble_link_free(CpBleLink *l);

/* The MTU BlueZ reports (the WriteValue option "mtu", the characteristic's
 * MTU property); it applies from the next segment. CP_ERR_BLE_MTU outside
 * 23-517, and the link is unchanged. */
CpError cp_ble_link_set_mtu(CpBleLink *l, uint16_t mtu);
uint16_t cp_ble_link_mtu(const CpBleLink *l);

/*
 * One ATT write or indication received: the value and the offset of the
 * write (0 but for the pieces of a long write, which continue the segment
 * at offset 0). Checks in the order of section 18.4.4; the first failure
 * is returned and ends the session: every later call returns it too.
 * *message_ready (may be NULL) says a whole message is now waiting in
 * cp_ble_link_message().
 */
CpError cp_ble_link_receive(CpBleLink *l, uint64_t now, size_t offset,
			    const uint8_t *seg, size_t len, bool *message_ready);

/* The message received, or NULL while none is complete; it stays until
 * cp_ble_link_take(), and the peer may not begin another before. */
const uint8_t *cp_ble_link_message(const CpBleLink *l, size_t *len);
void cp_ble_link_take(CpBleLink *l);

/* Queue a message (1 to CP_BLE_MSG_MAX bytes, copied) to send.
 * CP_ERR_STATE while the previous one is not acknowledged whole,
 * CP_ERR_BLE_TOO_LARGE above the maximum, CP_ERR_ARGUMENT for none. */
CpError cp_ble_link_send(CpBleLink *l, const uint8_t *msg, size_t len);
/* A segment this side sent by other means (a capture being decoded):
 * counted as cp_ble_link_next_segment() would have. CP_ERR_BLE_SEGMENT,
 * _FLAGS for its structure, CP_ERR_BLE_SEQUENCE for a seq not the next,
 * CP_ERR_BLE_WINDOW beyond the window. */
CpError cp_ble_link_sent(CpBleLink *l, uint64_t now, const uint8_t *seg, size_t len);

/* True while a queued message is not acknowledged whole. */
bool cp_ble_link_sending(const CpBleLink *l);
/* True while a message has begun arriving and is not whole yet (a capture
 * that ends here was cut inside it). */
bool cp_ble_link_receiving(const CpBleLink *l);

/*
 * The next segment to send now, appended to out (at most MTU - 3 bytes):
 * a data segment while the window allows, carrying an ack when one is
 * owed, else a standalone ack when one is due. Nothing appended: nothing to
 * send now (call again after the next receive or by the deadline). A
 * session that ended returns its error.
 */
CpError cp_ble_link_next_segment(CpBleLink *l, uint64_t now, CpBuf *out);

/* The timeouts of section 18.5 at now: CP_OK, or the one that expired
 * (CP_ERR_BLE_SESSION_TIMEOUT, _IDLE, _MESSAGE_TIMEOUT, _ACK_TIMEOUT, in
 * that order), which ends the session. */
CpError cp_ble_link_check(CpBleLink *l, uint64_t now);
/* When to call cp_ble_link_check() or cp_ble_link_next_segment() next. */
uint64_t cp_ble_link_deadline(const CpBleLink *l);
/* The error that ended the session, or CP_OK while it runs. */
CpError cp_ble_link_error(const CpBleLink *l);

/* ---- segment headers, for tools and tests ---- */

typedef struct {
	uint8_t flags;
	bool has_seq;                   /* false: a standalone ack */
	uint8_t seq;
	uint8_t ack;                    /* when flags has CP_BLE_FLAG_ACK */
	uint16_t msg_len;               /* when flags has CP_BLE_FLAG_BEGIN */
	const uint8_t *data;            /* into the segment */
	size_t data_len;
} CpBleSegment;

/* The structure of one segment at offset 0 alone (no state): CP_ERR_BLE_SEGMENT,
 * CP_ERR_BLE_FLAGS for a reserved bit. */
CpError cp_ble_segment_parse(const uint8_t *seg, size_t len, CpBleSegment *s);

/* ---- messages (section 18.6) ---- */

#define CP_BLE_VERSION 0x01
#define CP_BLE_RESPONSE 0x80

typedef enum {
	CP_BLE_OP_READ_TAG = 0x01,
	CP_BLE_OP_WRITE_PROFILE = 0x02,
	CP_BLE_OP_READ_RECEIPT = 0x03,
} CpBleOp;

typedef struct {
	uint8_t op;                     /* CpBleOp */
	bool response;
	uint16_t status;                /* responses: a CpError */
	const uint8_t *body;            /* NDEF message, or NULL */
	size_t body_len;
} CpBleMessage;

/* CP_ERR_BLE_MESSAGE, CP_ERR_BLE_VERSION, CP_ERR_BLE_OPCODE by the rules
 * of 18.6 (an error response may name any op 0x01-0x7F: it answers a
 * request the device did not know); the body is not parsed
 * (cp_ndef_parse()). m untouched on failure. */
CpError cp_ble_message_parse(const uint8_t *buf, size_t len, CpBleMessage *m);
/* Appends; the same rules. */
CpError cp_ble_message_encode(const CpBleMessage *m, CpBuf *out);
/* "read-tag", "write-profile", "read-receipt", or NULL. */
const char *cp_ble_op_name(uint8_t op);

/* ---- session admission (section 18.7) ---- */

typedef struct {
	uint64_t starts[CP_BLE_SESSIONS_PER_MINUTE];
	size_t n;
} CpBleRate;

/* A session may start at now: fewer than CP_BLE_SESSIONS_PER_MINUTE began
 * in the last 60 s (it is then counted); else CP_ERR_BLE_RATE. */
CpError cp_ble_rate_admit(CpBleRate *r, uint64_t now);

/* The advertisement's manufacturer data: 0x10 | the record's state (0-3),
 * then the first 5 bytes of the DeviceID. */
void cp_ble_adv_data(uint8_t state, const uint8_t device_id[16], uint8_t out[CP_BLE_ADV_DATA_LEN]);
