/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cp_command_decode() and _verify(): a decoded command re-encodes (signed
 * again by the fixture's SM when its chain is the fixture's) to the same
 * fields; verification on the fixture's bound device gives nothing back on
 * failure, and succeeds only for a command it can trust. */
#include <stdlib.h>
#include <string.h>

#include "cp-fuzz.h"
#include "cp-fuzz-fixture.h"
#include "cp-records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CpFuzzFixture *f = cp_fuzz_fixture();
	cp_auto_buf b = CP_BUF_INIT;
	CpCommand *c = malloc(sizeof *c), *again = malloc(sizeof *again);
	CpVerifyContext ctx = f->ctx;
	CpError err;

	CP_FUZZ_CHECK(c && again);
	ctx.bound = true;
	ctx.binding_version = 1;
	memset(c, 0xa5, sizeof *c);
	err = cp_command_verify(data, size, &ctx, c);
	if (err == CP_OK)
		CP_FUZZ_CHECK(c->seq > ctx.last_seq && c->binding_version == 1);
	else
		CP_FUZZ_CHECK(c->seq == 0xa5a5a5a5a5a5a5a5ull);

	if (cp_command_decode(data, size, c) == CP_OK) {
		CP_FUZZ_CHECK(c->command == CP_COMMAND_DECOMMISSION);
		err = cp_command_encode(c, f->op_sm_key, &b);
		if (cp_operator_chain_signer(c->op_chain, c->op_chain_len, f->op_sm_key) != CP_OK) {
			CP_FUZZ_CHECK(err == CP_ERR_KEY && b.len == 0);
		} else {
			CP_FUZZ_CHECK(err == CP_OK);
			CP_FUZZ_CHECK(cp_command_decode(b.data, b.len, again) == CP_OK);
			memcpy(again->op_signature, c->op_signature, sizeof c->op_signature);
			again->op_signature_len = c->op_signature_len;
			CP_FUZZ_CHECK(memcmp(c, again, sizeof *c) == 0);
		}
	}
	free(c);
	free(again);
	return 0;
}
