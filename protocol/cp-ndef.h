/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * NDEF messages and records (NFC Forum NDEF 1.0, RTD URI 1.0) and the Type 4
 * Tag capability container (T4T 2.0). Parsed records point into the input
 * buffer; nothing is copied.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp-buf.h"
#include "cp-error.h"

typedef enum {
	CP_TNF_EMPTY = 0x00,
	CP_TNF_WELL_KNOWN = 0x01,
	CP_TNF_MIME = 0x02,
	CP_TNF_ABSOLUTE_URI = 0x03,
	CP_TNF_EXTERNAL = 0x04,
	CP_TNF_UNKNOWN = 0x05,
	CP_TNF_UNCHANGED = 0x06,
} CpNdefTnf;

#define CP_NDEF_MAX_RECORDS 8

typedef struct {
	uint8_t tnf;
	const uint8_t *type;
	size_t type_len;
	const uint8_t *id;
	size_t id_len;
	const uint8_t *payload;
	size_t payload_len;
} CpNdefRecord;

typedef struct {
	CpNdefRecord records[CP_NDEF_MAX_RECORDS];
	size_t n_records;
} CpNdefMessage;

#define CP_MIME_DEVICE "application/vnd.cellprov.device"
#define CP_MIME_PROFILE "application/vnd.cellprov.profile"
#define CP_MIME_RECEIPT "application/vnd.cellprov.receipt"
#define CP_MIME_COMMAND "application/vnd.cellprov.command"

/*
 * Strict parse: MB on the first record only (CP_ERR_NDEF_HEADER), ME on the
 * last: bytes after it are CP_ERR_NDEF_TRAILING, a message ending without
 * it CP_ERR_NDEF_TRUNCATED, like a record that ends past the message. No
 * chunks (CF: CP_ERR_NDEF_CHUNKED). CP_ERR_NDEF_HEADER for TNF 0x07, for
 * Unchanged (it belongs to chunks), an Empty record with a type, ID or
 * payload, an Unknown record with a type, or a typed TNF without one.
 * CP_ERR_NDEF_EMPTY for no byte at all, CP_ERR_NDEF_TOO_LARGE above
 * CP_T4T_NDEF_MAX, CP_ERR_NDEF_TOO_MANY above CP_NDEF_MAX_RECORDS. msg is
 * untouched on failure.
 */
CpError cp_ndef_parse(const uint8_t *buf, size_t len, CpNdefMessage *msg);
/* Encode with MB/ME set, short records where the payload fits and IL
 * where there is an ID; appends to out, which is unchanged on failure. The
 * parser's rules apply (the message at most CP_T4T_NDEF_MAX bytes). */
CpError cp_ndef_encode(const CpNdefMessage *msg, CpBuf *out);

void cp_ndef_record_mime(CpNdefRecord *r, const char *mime, const uint8_t *payload, size_t len);
/* First MIME record of that type, or NULL. */
const CpNdefRecord *cp_ndef_find_mime(const CpNdefMessage *msg, const char *mime);

/* URI record payload: the longest matching prefix of the RTD URI table
 * (codes 0x00-0x23, compared exactly) that leaves text after it, and the
 * rest; what it encodes, cp_ndef_uri_decode() accepts. CP_ERR_NDEF_URI for an
 * empty URI, control characters or invalid UTF-8. */
CpError cp_ndef_uri_encode(const char *uri, CpBuf *payload);
/* Full URI as a malloc'd string; CP_ERR_NDEF_URI for a reserved code,
 * control characters or NUL. */
CpError cp_ndef_uri_decode(const uint8_t *payload, size_t len, char **uri);
/* The URI of the first well-known "U" record. */
CpError cp_ndef_find_uri(const CpNdefMessage *msg, char **uri);

/* ---- Type 4 Tag ---- */

#define CP_T4T_AID_LEN 7
extern const uint8_t cp_t4t_aid[CP_T4T_AID_LEN];   /* D2760000850101 */
#define CP_T4T_CC_FILE 0xE103
#define CP_T4T_NDEF_FILE 0xE104
#define CP_T4T_CC_LEN 15
#define CP_T4T_NDEF_MAX 4096          /* bytes of NDEF message; file = NLEN (2) + this */
#define CP_T4T_MLE 246
#define CP_T4T_MLC 246

typedef struct {
	uint16_t cc_len;
	uint8_t version;               /* 0x20 */
	uint16_t mle;
	uint16_t mlc;
	uint16_t ndef_file_id;
	uint16_t ndef_file_max;        /* file size including the 2-byte NLEN */
	uint8_t read_access;           /* 0x00 = free */
	uint8_t write_access;          /* 0x00 = free, 0xFF = none */
} CpT4tCc;

/* Version 2.0, MLe = MLc = 246, NDEF file E104 of 2 + CP_T4T_NDEF_MAX
 * bytes, free read and write. */
void cp_t4t_cc_default(CpT4tCc *cc);
void cp_t4t_cc_encode(const CpT4tCc *cc, uint8_t out[CP_T4T_CC_LEN]);
/*
 * CP_ERR_T4T_CC unless: at least 15 bytes, CCLEN 000F-FFFE, major version
 * 2, MLe >= 000F, MLc >= 0001, the NDEF file control TLV (04 06) first,
 * file id not reserved (0000, E102, E103, 3F00, 3FFF, FFFF), max size
 * 0005-FFFE, access bytes not RFU (read 00 or 80-FE, write also FF).
 * Bytes after the first TLV are further TLVs and not looked at.
 */
CpError cp_t4t_cc_decode(const uint8_t *buf, size_t len, CpT4tCc *cc);

/* ---- the tag content of docs/protocol.md ---- */

/* URI record (certificate URL), device record, and the receipt if any
 * (receipt NULL or receipt_len 0: none). Appends to ndef. */
CpError cp_tag_build(const char *cert_url,
		     const uint8_t *device_record, size_t dr_len,
		     const uint8_t *receipt, size_t receipt_len,
		     CpBuf *ndef);
