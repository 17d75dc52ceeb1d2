/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cp_device_record_decode() and _verify(): the device info of a decoded
 * record re-encodes to the very bytes it came from (the input of K''). */
#include <string.h>

#include "cp-fuzz.h"
#include "cp-fuzz-fixture.h"
#include "cp-records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CpFuzzFixture *f = cp_fuzz_fixture();
	cp_auto_buf info = CP_BUF_INIT;
	CpDeviceRecord dr, v;

	if (cp_device_record_decode(data, size, &dr) != CP_OK)
		return 0;
	CP_FUZZ_CHECK(dr.version == CP_DEVICE_RECORD_VERSION);
	CP_FUZZ_CHECK(dr.info_len < dr.signed_len && dr.signed_len < size);
	CP_FUZZ_CHECK(dr.signed_len + 3 + dr.att_signature_len == size);
	CP_FUZZ_CHECK(dr.n_suites >= 1 && dr.n_suites <= CP_DR_SUITES_MAX);
	CP_FUZZ_CHECK(strlen(dr.manufacturer) >= 1 && strlen(dr.serial) <= CP_DR_STR_MAX);

	CP_FUZZ_CHECK(cp_device_record_info(&dr, &info) == CP_OK);
	CP_FUZZ_CHECK(info.len == dr.info_len && memcmp(info.data, data, info.len) == 0);

	/* Any signature bytes reach the ECDSA verifier. */
	if (cp_device_record_verify(data, size, f->device_key, &v) == CP_OK)
		CP_FUZZ_CHECK(v.att_counter == dr.att_counter);
	return 0;
}
