/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-ndef.h"

#include <stdlib.h>
#include <string.h>

#include "cp-tlv.h"

#define NDEF_MB 0x80
#define NDEF_ME 0x40
#define NDEF_CF 0x20
#define NDEF_SR 0x10
#define NDEF_IL 0x08
#define NDEF_TNF 0x07
#define NDEF_TNF_RESERVED 0x07

const uint8_t cp_t4t_aid[CP_T4T_AID_LEN] = { 0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01 };

/* Header rules of NDEF 1.0 section 3.2.6 for an unchunked record. */
static CpError
check_record(uint8_t tnf, size_t type_len, size_t id_len, size_t payload_len)
{
	switch (tnf) {
	case CP_TNF_EMPTY:
		if (type_len || id_len || payload_len)
			return CP_ERR_NDEF_HEADER;
		return CP_OK;
	case CP_TNF_WELL_KNOWN:
	case CP_TNF_MIME:
	case CP_TNF_ABSOLUTE_URI:
	case CP_TNF_EXTERNAL:
		return type_len ? CP_OK : CP_ERR_NDEF_HEADER;
	case CP_TNF_UNKNOWN:
		return type_len ? CP_ERR_NDEF_HEADER : CP_OK;
	default:
		/* Unchanged belongs to the middle and last chunks of a
		 * chunked record only; 0x07 is reserved. */
		return CP_ERR_NDEF_HEADER;
	}
}

CpError
cp_ndef_parse(const uint8_t *buf, size_t len, CpNdefMessage *msg)
{
	CpNdefMessage tmp;
	size_t pos = 0;
	bool ended = false;

	if (!msg || (!buf && len))
		return CP_ERR_ARGUMENT;
	if (len == 0)
		return CP_ERR_NDEF_EMPTY;
	if (len > CP_T4T_NDEF_MAX)
		return CP_ERR_NDEF_TOO_LARGE;

	memset(&tmp, 0, sizeof tmp);
	while (pos < len) {
		CpNdefRecord *r;
		uint8_t hdr = buf[pos];
		size_t type_len, id_len = 0, payload_len, need;
		CpError err;

		if (ended)
			return CP_ERR_NDEF_TRAILING;
		if (tmp.n_records == CP_NDEF_MAX_RECORDS)
			return CP_ERR_NDEF_TOO_MANY;
		if (!!(hdr & NDEF_MB) != (tmp.n_records == 0))
			return CP_ERR_NDEF_HEADER;
		if (hdr & NDEF_CF)
			return CP_ERR_NDEF_CHUNKED;
		if ((hdr & NDEF_TNF) == NDEF_TNF_RESERVED)
			return CP_ERR_NDEF_HEADER;

		need = 1 + 1 + ((hdr & NDEF_SR) ? 1 : 4) + ((hdr & NDEF_IL) ? 1 : 0);
		if (len - pos < need)
			return CP_ERR_NDEF_TRUNCATED;
		type_len = buf[pos + 1];
		if (hdr & NDEF_SR) {
			payload_len = buf[pos + 2];
		} else {
			payload_len = (size_t)buf[pos + 2] << 24 | (size_t)buf[pos + 3] << 16 |
				      (size_t)buf[pos + 4] << 8 | buf[pos + 5];
		}
		if (hdr & NDEF_IL)
			id_len = buf[pos + need - 1];

		err = check_record(hdr & NDEF_TNF, type_len, id_len, payload_len);
		if (err)
			return err;
		/* Each term is bounded by the rest, so the sum cannot wrap. */
		if (type_len > len - pos - need || id_len > len - pos - need - type_len ||
		    payload_len > len - pos - need - type_len - id_len)
			return CP_ERR_NDEF_TRUNCATED;

		r = &tmp.records[tmp.n_records++];
		r->tnf = hdr & NDEF_TNF;
		pos += need;
		r->type = type_len ? buf + pos : NULL;
		r->type_len = type_len;
		pos += type_len;
		r->id = id_len ? buf + pos : NULL;
		r->id_len = id_len;
		pos += id_len;
		r->payload = payload_len ? buf + pos : NULL;
		r->payload_len = payload_len;
		pos += payload_len;
		ended = hdr & NDEF_ME;
	}
	/* The last record did not say it was the last: the message was cut
	 * at a record boundary. */
	if (!ended)
		return CP_ERR_NDEF_TRUNCATED;
	*msg = tmp;
	return CP_OK;
}

CpError
cp_ndef_encode(const CpNdefMessage *msg, CpBuf *out)
{
	size_t start;

	if (!msg || !out || out->failed)
		return CP_ERR_ARGUMENT;
	if (msg->n_records == 0)
		return CP_ERR_NDEF_EMPTY;
	if (msg->n_records > CP_NDEF_MAX_RECORDS)
		return CP_ERR_NDEF_TOO_MANY;
	for (size_t i = 0; i < msg->n_records; i++) {
		const CpNdefRecord *r = &msg->records[i];
		CpError err = check_record(r->tnf, r->type_len, r->id_len, r->payload_len);

		if (err)
			return err;
		if (r->type_len > 255 || r->id_len > 255 || r->payload_len > CP_T4T_NDEF_MAX)
			return r->payload_len > CP_T4T_NDEF_MAX ? CP_ERR_NDEF_TOO_LARGE
								: CP_ERR_NDEF_HEADER;
		if ((r->type_len && !r->type) || (r->id_len && !r->id) ||
		    (r->payload_len && !r->payload))
			return CP_ERR_ARGUMENT;
	}

	start = out->len;
	for (size_t i = 0; i < msg->n_records; i++) {
		const CpNdefRecord *r = &msg->records[i];
		uint8_t hdr = r->tnf;

		if (i == 0)
			hdr |= NDEF_MB;
		if (i == msg->n_records - 1)
			hdr |= NDEF_ME;
		if (r->payload_len < 256)
			hdr |= NDEF_SR;
		if (r->id_len)
			hdr |= NDEF_IL;
		cp_buf_append_u8(out, hdr);
		cp_buf_append_u8(out, (uint8_t)r->type_len);
		if (hdr & NDEF_SR) {
			cp_buf_append_u8(out, (uint8_t)r->payload_len);
		} else {
			cp_buf_append_be16(out, (uint16_t)(r->payload_len >> 16));
			cp_buf_append_be16(out, (uint16_t)r->payload_len);
		}
		if (r->id_len)
			cp_buf_append_u8(out, (uint8_t)r->id_len);
		cp_buf_append(out, r->type, r->type_len);
		cp_buf_append(out, r->id, r->id_len);
		cp_buf_append(out, r->payload, r->payload_len);
	}
	if (out->failed || out->len - start > CP_T4T_NDEF_MAX) {
		CpError err = out->failed ? CP_ERR_CRYPTO : CP_ERR_NDEF_TOO_LARGE;

		out->len = start;
		out->failed = false;
		return err;
	}
	return CP_OK;
}

void
cp_ndef_record_mime(CpNdefRecord *r, const char *mime, const uint8_t *payload, size_t len)
{
	memset(r, 0, sizeof *r);
	r->tnf = CP_TNF_MIME;
	r->type = (const uint8_t *)mime;
	r->type_len = strlen(mime);
	r->payload = payload;
	r->payload_len = len;
}

static bool
ascii_caseeq(const uint8_t *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t x = a[i], y = (uint8_t)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (uint8_t)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (uint8_t)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

const CpNdefRecord *
cp_ndef_find_mime(const CpNdefMessage *msg, const char *mime)
{
	size_t n;

	if (!msg || !mime)
		return NULL;
	n = strlen(mime);
	for (size_t i = 0; i < msg->n_records; i++) {
		const CpNdefRecord *r = &msg->records[i];

		/* Media types compare case-insensitively (RFC 2045). */
		if (r->tnf == CP_TNF_MIME && r->type_len == n && ascii_caseeq(r->type, mime, n))
			return r;
	}
	return NULL;
}

/* NFC Forum RTD URI 1.0, table 3; 0x24-0xFF are reserved. */
static const char *const uri_prefixes[] = {
	[0x00] = "",
	[0x01] = "http://www.",
	[0x02] = "https://www.",
	[0x03] = "http://",
	[0x04] = "https://",
	[0x05] = "tel:",
	[0x06] = "mailto:",
	[0x07] = "ftp://anonymous:anonymous@",
	[0x08] = "ftp://ftp.",
	[0x09] = "ftps://",
	[0x0A] = "sftp://",
	[0x0B] = "smb://",
	[0x0C] = "nfs://",
	[0x0D] = "ftp://",
	[0x0E] = "dav://",
	[0x0F] = "news:",
	[0x10] = "telnet://",
	[0x11] = "imap:",
	[0x12] = "rtsp://",
	[0x13] = "urn:",
	[0x14] = "pop:",
	[0x15] = "sip:",
	[0x16] = "sips:",
	[0x17] = "tftp:",
	[0x18] = "btspp://",
	[0x19] = "btl2cap://",
	[0x1A] = "btgoep://",
	[0x1B] = "tcpobex://",
	[0x1C] = "irdaobex://",
	[0x1D] = "file://",
	[0x1E] = "urn:epc:id:",
	[0x1F] = "urn:epc:tag:",
	[0x20] = "urn:epc:pat:",
	[0x21] = "urn:epc:raw:",
	[0x22] = "urn:epc:",
	[0x23] = "urn:nfc:",
};

#define N_URI_PREFIXES (sizeof uri_prefixes / sizeof uri_prefixes[0])

CpError
cp_ndef_uri_encode(const char *uri, CpBuf *payload)
{
	size_t best = 0, best_len = 0, n;

	if (!uri || !payload || payload->failed)
		return CP_ERR_ARGUMENT;
	n = strlen(uri);
	if (n == 0 || !cp_is_utf8((const uint8_t *)uri, n))
		return CP_ERR_NDEF_URI;
	/* A prefix that would leave no text is not taken: the decoder
	 * rejects a bare code ("https://" goes as code 0 and its text). */
	for (size_t code = 1; code < N_URI_PREFIXES; code++) {
		size_t plen = strlen(uri_prefixes[code]);

		if (plen > best_len && plen < n && strncmp(uri, uri_prefixes[code], plen) == 0) {
			best = code;
			best_len = plen;
		}
	}
	cp_buf_append_u8(payload, (uint8_t)best);
	cp_buf_append(payload, uri + best_len, n - best_len);
	return payload->failed ? CP_ERR_CRYPTO : CP_OK;
}

CpError
cp_ndef_uri_decode(const uint8_t *payload, size_t len, char **uri)
{
	const char *prefix;
	size_t plen;
	char *s;

	if (!uri || (!payload && len))
		return CP_ERR_ARGUMENT;
	if (len < 1 || payload[0] >= N_URI_PREFIXES)
		return CP_ERR_NDEF_URI;
	prefix = uri_prefixes[payload[0]];
	plen = strlen(prefix);
	/* Nothing after the prefix is an empty URI for code 0; for the
	 * others it names only a scheme: useless either way. */
	if (len == 1 || !cp_is_utf8(payload + 1, len - 1))
		return CP_ERR_NDEF_URI;
	s = malloc(plen + len);
	if (!s)
		return CP_ERR_CRYPTO;
	memcpy(s, prefix, plen);
	memcpy(s + plen, payload + 1, len - 1);
	s[plen + len - 1] = '\0';
	*uri = s;
	return CP_OK;
}

CpError
cp_ndef_find_uri(const CpNdefMessage *msg, char **uri)
{
	if (!msg || !uri)
		return CP_ERR_ARGUMENT;
	for (size_t i = 0; i < msg->n_records; i++) {
		const CpNdefRecord *r = &msg->records[i];

		if (r->tnf == CP_TNF_WELL_KNOWN && r->type_len == 1 && r->type[0] == 'U')
			return cp_ndef_uri_decode(r->payload, r->payload_len, uri);
	}
	return CP_ERR_NDEF_NO_RECORD;
}

/* ---- Type 4 Tag ---- */

#define CC_NDEF_FILE_CTRL_TLV 0x04
#define CC_NDEF_FILE_CTRL_LEN 0x06

void
cp_t4t_cc_default(CpT4tCc *cc)
{
	cc->cc_len = CP_T4T_CC_LEN;
	cc->version = 0x20;
	cc->mle = CP_T4T_MLE;
	cc->mlc = CP_T4T_MLC;
	cc->ndef_file_id = CP_T4T_NDEF_FILE;
	cc->ndef_file_max = 2 + CP_T4T_NDEF_MAX;
	cc->read_access = 0x00;
	cc->write_access = 0x00;
}

void
cp_t4t_cc_encode(const CpT4tCc *cc, uint8_t out[CP_T4T_CC_LEN])
{
	cp_put_be16(out, cc->cc_len);
	out[2] = cc->version;
	cp_put_be16(out + 3, cc->mle);
	cp_put_be16(out + 5, cc->mlc);
	out[7] = CC_NDEF_FILE_CTRL_TLV;
	out[8] = CC_NDEF_FILE_CTRL_LEN;
	cp_put_be16(out + 9, cc->ndef_file_id);
	cp_put_be16(out + 11, cc->ndef_file_max);
	out[13] = cc->read_access;
	out[14] = cc->write_access;
}

/* T4T 2.0 table 5: identifiers an NDEF file may not have. */
static bool
file_id_valid(uint16_t id)
{
	return id != 0x0000 && id != 0xE102 && id != CP_T4T_CC_FILE &&
	       id != 0x3F00 && id != 0x3FFF && id != 0xFFFF;
}

/* 0x00 granted; 0x80-0xFE proprietary (and 0xFF "no access" for
 * writing); the rest is reserved. */
static bool
access_valid(uint8_t a, bool write)
{
	return a == 0x00 || (a >= 0x80 && a <= 0xFE) || (write && a == 0xFF);
}

CpError
cp_t4t_cc_decode(const uint8_t *buf, size_t len, CpT4tCc *cc)
{
	CpT4tCc tmp;

	if (!cc || (!buf && len))
		return CP_ERR_ARGUMENT;
	/* A CC file may carry further TLVs after the NDEF file control TLV
	 * (proprietary files): they are not ours to judge. */
	if (len < CP_T4T_CC_LEN)
		return CP_ERR_T4T_CC;
	tmp.cc_len = cp_be16(buf);
	tmp.version = buf[2];
	tmp.mle = cp_be16(buf + 3);
	tmp.mlc = cp_be16(buf + 5);
	tmp.ndef_file_id = cp_be16(buf + 9);
	tmp.ndef_file_max = cp_be16(buf + 11);
	tmp.read_access = buf[13];
	tmp.write_access = buf[14];

	if (tmp.cc_len < CP_T4T_CC_LEN || tmp.cc_len == 0xFFFF)
		return CP_ERR_T4T_CC;
	/* Major version 2; a higher minor version stays readable. */
	if ((tmp.version >> 4) != 2)
		return CP_ERR_T4T_CC;
	if (tmp.mle < 0x000F || tmp.mlc < 0x0001)
		return CP_ERR_T4T_CC;
	if (buf[7] != CC_NDEF_FILE_CTRL_TLV || buf[8] != CC_NDEF_FILE_CTRL_LEN)
		return CP_ERR_T4T_CC;
	if (!file_id_valid(tmp.ndef_file_id))
		return CP_ERR_T4T_CC;
	if (tmp.ndef_file_max < 0x0005 || tmp.ndef_file_max == 0xFFFF)
		return CP_ERR_T4T_CC;
	if (!access_valid(tmp.read_access, false) || !access_valid(tmp.write_access, true))
		return CP_ERR_T4T_CC;
	*cc = tmp;
	return CP_OK;
}

/* ---- the tag content ---- */

CpError
cp_tag_build(const char *cert_url,
	     const uint8_t *device_record, size_t dr_len,
	     const uint8_t *receipt, size_t receipt_len,
	     CpBuf *ndef)
{
	cp_auto_buf uri = CP_BUF_INIT;
	CpNdefMessage msg;
	CpError err;

	if (!cert_url || !device_record || !dr_len || !ndef || (receipt_len && !receipt))
		return CP_ERR_ARGUMENT;
	err = cp_ndef_uri_encode(cert_url, &uri);
	if (err)
		return err;

	memset(&msg, 0, sizeof msg);
	msg.records[0].tnf = CP_TNF_WELL_KNOWN;
	msg.records[0].type = (const uint8_t *)"U";
	msg.records[0].type_len = 1;
	msg.records[0].payload = uri.data;
	msg.records[0].payload_len = uri.len;
	cp_ndef_record_mime(&msg.records[1], CP_MIME_DEVICE, device_record, dr_len);
	msg.n_records = 2;
	if (receipt && receipt_len)
		cp_ndef_record_mime(&msg.records[msg.n_records++], CP_MIME_RECEIPT,
				    receipt, receipt_len);
	return cp_ndef_encode(&msg, ndef);
}
