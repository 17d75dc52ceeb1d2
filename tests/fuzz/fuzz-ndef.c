/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cp_ndef_parse(): what parses re-encodes and parses to the same records;
 * a URI record's text survives its own encoding. */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-ndef.h"

static bool
inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
	return n == 0 || (p >= data && n <= size && p - data <= (ptrdiff_t)(size - n));
}

static bool
same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cp_auto_buf b = CP_BUF_INIT;
	CpNdefMessage msg, again;
	char *uri = NULL;

	if (cp_ndef_parse(data, size, &msg) != CP_OK)
		return 0;
	CP_FUZZ_CHECK(msg.n_records >= 1 && msg.n_records <= CP_NDEF_MAX_RECORDS);
	for (size_t i = 0; i < msg.n_records; i++) {
		const CpNdefRecord *r = &msg.records[i];

		CP_FUZZ_CHECK(inside(r->type, r->type_len, data, size));
		CP_FUZZ_CHECK(inside(r->id, r->id_len, data, size));
		CP_FUZZ_CHECK(inside(r->payload, r->payload_len, data, size));
	}

	CP_FUZZ_CHECK(cp_ndef_encode(&msg, &b) == CP_OK);
	CP_FUZZ_CHECK(b.len <= size);
	CP_FUZZ_CHECK(cp_ndef_parse(b.data, b.len, &again) == CP_OK);
	CP_FUZZ_CHECK(again.n_records == msg.n_records);
	for (size_t i = 0; i < msg.n_records; i++) {
		const CpNdefRecord *r = &msg.records[i], *s = &again.records[i];

		CP_FUZZ_CHECK(r->tnf == s->tnf);
		CP_FUZZ_CHECK(same(r->type, r->type_len, s->type, s->type_len));
		CP_FUZZ_CHECK(same(r->id, r->id_len, s->id, s->id_len));
		CP_FUZZ_CHECK(same(r->payload, r->payload_len, s->payload, s->payload_len));
	}

	if (cp_ndef_find_uri(&msg, &uri) == CP_OK) {
		cp_auto_buf p = CP_BUF_INIT;
		char *back = NULL;

		CP_FUZZ_CHECK(cp_ndef_uri_encode(uri, &p) == CP_OK);
		CP_FUZZ_CHECK(cp_ndef_uri_decode(p.data, p.len, &back) == CP_OK);
		CP_FUZZ_CHECK(strcmp(uri, back) == 0);
		free(back);
		free(uri);
	}
	(void)cp_ndef_find_mime(&msg, CP_MIME_PROFILE);
	return 0;
}
