/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov TLV: tag (1 byte), length (2 bytes big-endian), value. Tags
 * ascend, each at most once; a decoder rejects truncation, trailing bytes,
 * duplicate or out-of-order tags, lengths beyond the field's limits and
 * unknown tags below 0x40. Tags 0x40-0x5F are extensions and skipped.
 *
 * Decoding is driven by a table of the structure's fields.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp-buf.h"
#include "cp-error.h"

#define CP_TLV_HDR 3
#define CP_TLV_EXT_FIRST 0x40
#define CP_TLV_EXT_LAST 0x5F

typedef struct {
	uint8_t tag;
	uint16_t min_len;
	uint16_t max_len;
	bool required;
	/* Nothing may follow this field (a mac or a signature: bytes after it
	 * would not be covered). CP_ERR_MAC_NOT_LAST for tag CP_TLV_MAC,
	 * CP_ERR_TRAILING otherwise. */
	bool last;
} CpTlvField;

#define CP_TLV_MAC 0x7F

typedef struct {
	const uint8_t *value;   /* NULL when absent */
	uint16_t len;
	size_t offset;          /* of the tag byte in the input */
	size_t end;             /* offset just past the value */
} CpTlvValue;

/*
 * Decode buf against fields[] (ascending tags). values[i] describes
 * fields[i]. Tags neither in fields[] nor in the extension range are
 * rejected (CP_ERR_UNKNOWN_TAG), also those above 0x5F: only 0x40-0x5F are
 * reserved for extensions. Checks per TLV, in this order: nothing after a
 * last field; tag and length complete (CP_ERR_TRUNCATED); duplicate; order;
 * known tag; length within the field's limits; value complete
 * (CP_ERR_TRUNCATED). Then every required field present
 * (CP_ERR_MISSING_FIELD). On error, *err_offset (if not NULL) is the offset
 * where the decoder stopped and *err_tag the tag involved (0 when none).
 */
CpError cp_tlv_decode(const uint8_t *buf, size_t len,
		      const CpTlvField *fields, size_t n_fields,
		      CpTlvValue *values,
		      size_t *err_offset, uint8_t *err_tag);

/* A value longer than 0xffff marks the buffer failed. */
void cp_tlv_put(CpBuf *b, uint8_t tag, const void *value, size_t len);
void cp_tlv_put_u8(CpBuf *b, uint8_t tag, uint8_t v);
void cp_tlv_put_be16(CpBuf *b, uint8_t tag, uint16_t v);
void cp_tlv_put_be64(CpBuf *b, uint8_t tag, uint64_t v);
void cp_tlv_put_str(CpBuf *b, uint8_t tag, const char *s);

/* Value checks used by the structure decoders; each is false for len 0. */
bool cp_is_digits(const uint8_t *p, size_t len);             /* '0'-'9' */
bool cp_is_printable_ascii(const uint8_t *p, size_t len);    /* 0x20-0x7E */
/*
 * Well-formed UTF-8 text: no overlong forms, surrogates or code points
 * above U+10FFFF, and no control character (C0, DEL, C1: names are shown
 * on terminals and phones; NUL would cut the C string copies).
 */
bool cp_is_utf8(const uint8_t *p, size_t len);
