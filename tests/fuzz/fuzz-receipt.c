/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cp_receipt_decode(), _verify() and _verify_device(): a decoded receipt
 * re-encodes (signed again by the fixture's device) and decodes back to
 * the same fields; a receipt that verifies under the device's key is one
 * whose signed bytes the device signed. */
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
	CP_FUZZ_CHECK(r.status <= CP_RECEIPT_DECOMMISSIONED);
	CP_FUZZ_CHECK(r.signed_len < size && data[r.signed_len] == 0x7E);

	CP_FUZZ_CHECK(cp_receipt_encode(&r, f->device_key, r.has_mac ? f->k2 : NULL, &b) == CP_OK);
	/* Extensions are dropped, the signature made anew (70 to 72 bytes). */
	CP_FUZZ_CHECK(b.len <= size + CP_ECDSA_MAX);
	CP_FUZZ_CHECK(cp_receipt_decode(b.data, b.len, &again) == CP_OK);
	CP_FUZZ_CHECK(cp_receipt_verify_device(b.data, b.len, f->device_key, &v) == CP_OK);
	memcpy(again.mac, r.mac, CP_MAC_LEN);
	memcpy(again.device_signature, r.device_signature, sizeof r.device_signature);
	again.device_signature_len = r.device_signature_len;
	again.signed_len = r.signed_len;
	CP_FUZZ_CHECK(memcmp(&r, &again, sizeof r) == 0);

	err = cp_receipt_verify(data, size, f->k2, &v);
	CP_FUZZ_CHECK(r.has_mac ? (err == CP_OK || err == CP_ERR_RECEIPT_MAC) : err == CP_ERR_NO_MAC);
	err = cp_receipt_verify_device(data, size, f->device_key, &v);
	CP_FUZZ_CHECK(err == CP_OK || err == CP_ERR_SIGNATURE);
	return 0;
}
