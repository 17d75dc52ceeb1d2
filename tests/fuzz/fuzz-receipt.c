/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cp_receipt_decode() and _verify(): a decoded receipt re-encodes and
 * decodes back to the same fields. */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-fuzz-fixture.h"
#include "cp-records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CpFuzzFixture *f = cp_fuzz_fixture();
	cp_auto_buf b = CP_BUF_INIT;
	CpReceipt r, again, v;
	CpError err;

	if (cp_receipt_decode(data, size, &r) != CP_OK)
		return 0;
	CP_FUZZ_CHECK(r.status <= CP_RECEIPT_FAILED);

	CP_FUZZ_CHECK(cp_receipt_encode(&r, r.has_mac ? f->k2 : NULL, &b) == CP_OK);
	CP_FUZZ_CHECK(b.len <= size);
	CP_FUZZ_CHECK(cp_receipt_decode(b.data, b.len, &again) == CP_OK);
	memcpy(again.mac, r.mac, CP_MAC_LEN);
	CP_FUZZ_CHECK(memcmp(&r, &again, sizeof r) == 0);

	err = cp_receipt_verify(data, size, f->k2, &v);
	CP_FUZZ_CHECK(r.has_mac ? (err == CP_OK || err == CP_ERR_RECEIPT_MAC) : err == CP_ERR_NO_MAC);
	return 0;
}
