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

/* Strict parse: MB on the first record only, ME on the last, no chunks
 * (CP_ERR_NDEF_CHUNKED), nothing after ME. */
CpError cp_ndef_parse(const uint8_t *buf, size_t len, CpNdefMessage *msg);
/* Encode with MB/ME set and short records where the payload fits. */
CpError cp_ndef_encode(const CpNdefMessage *msg, CpBuf *out);

void cp_ndef_record_mime(CpNdefRecord *r, const char *mime, const uint8_t *payload, size_t len);
/* First MIME record of that type, or NULL. */
const CpNdefRecord *cp_ndef_find_mime(const CpNdefMessage *msg, const char *mime);

/* URI record payload: the longest matching prefix of the RTD URI table
 * (codes 0x00-0x23) and the rest. */
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

void cp_t4t_cc_default(CpT4tCc *cc);
void cp_t4t_cc_encode(const CpT4tCc *cc, uint8_t out[CP_T4T_CC_LEN]);
CpError cp_t4t_cc_decode(const uint8_t *buf, size_t len, CpT4tCc *cc);

/* ---- the tag content of PROTOCOL.md ---- */

/* URI record (certificate URL), device record, and the receipt if any. */
CpError cp_tag_build(const char *cert_url,
		     const uint8_t *device_record, size_t dr_len,
		     const uint8_t *receipt, size_t receipt_len,
		     CpBuf *ndef);
