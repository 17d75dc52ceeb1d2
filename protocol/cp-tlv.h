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
} CpTlvField;

typedef struct {
	const uint8_t *value;   /* NULL when absent */
	uint16_t len;
	size_t offset;          /* of the tag byte in the input */
	size_t end;             /* offset just past the value */
} CpTlvValue;

/*
 * Decode buf against fields[] (ascending tags). values[i] describes
 * fields[i]. On error, *err_offset (if not NULL) is the offset where the
 * decoder stopped and *err_tag the tag involved.
 */
CpError cp_tlv_decode(const uint8_t *buf, size_t len,
		      const CpTlvField *fields, size_t n_fields,
		      CpTlvValue *values,
		      size_t *err_offset, uint8_t *err_tag);

void cp_tlv_put(CpBuf *b, uint8_t tag, const void *value, size_t len);
void cp_tlv_put_u8(CpBuf *b, uint8_t tag, uint8_t v);
void cp_tlv_put_be16(CpBuf *b, uint8_t tag, uint16_t v);
void cp_tlv_put_be64(CpBuf *b, uint8_t tag, uint64_t v);
void cp_tlv_put_str(CpBuf *b, uint8_t tag, const char *s);

/* Value checks used by the structure decoders. */
bool cp_is_digits(const uint8_t *p, size_t len);
bool cp_is_printable_ascii(const uint8_t *p, size_t len);
bool cp_is_utf8(const uint8_t *p, size_t len);
