/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Milenage against the TS 35.207 test sets (every output), then the AKA
 * exchange of TS 33.102 6.3 between the network and USIM helpers.
 */
#include <string.h>

#include "cp-milenage.h"
#include "cp-test.h"

static const char *
get(const CpTestBlock *b, const char *name)
{
	const char *v = cp_test_block_get(b, name);

	if (!v) {
		fprintf(stderr, "vector lacks '%s'\n", name);
		CP_CHECK(false);
		return "";
	}
	return v;
}

static void
check_set(const CpTestBlock *b)
{
	uint8_t k[16], rand[16], sqn[6], amf[2], op[16], opc[16];
	CpMilenage m;

	fprintf(stderr, "set %s\n", get(b, "set"));
	cp_test_unhex(get(b, "K"), k, 16);
	cp_test_unhex(get(b, "RAND"), rand, 16);
	cp_test_unhex(get(b, "SQN"), sqn, 6);
	cp_test_unhex(get(b, "AMF"), amf, 2);
	cp_test_unhex(get(b, "OP"), op, 16);

	CP_CHECK_INT(cp_milenage_opc(k, op, opc), CP_OK);
	CP_CHECK_HEX(opc, 16, get(b, "OPc"));

	memset(&m, 0, sizeof m);
	CP_CHECK_INT(cp_milenage(k, opc, rand, sqn, amf, &m), CP_OK);
	CP_CHECK_HEX(m.f1, 8, get(b, "f1"));
	CP_CHECK_HEX(m.f1star, 8, get(b, "f1star"));
	CP_CHECK_HEX(m.f2, 8, get(b, "f2"));
	CP_CHECK_HEX(m.f3, 16, get(b, "f3"));
	CP_CHECK_HEX(m.f4, 16, get(b, "f4"));
	CP_CHECK_HEX(m.f5, 6, get(b, "f5"));
	CP_CHECK_HEX(m.f5star, 6, get(b, "f5star"));

	/* AUTN of the same inputs is SQN xor AK || AMF || MAC-A. */
	{
		uint8_t autn[16], xres[8], ck[16], ik[16];

		CP_CHECK_INT(cp_aka_generate(k, opc, rand, sqn, amf, autn, xres, ck, ik), CP_OK);
		for (int i = 0; i < 6; i++)
			CP_CHECK(autn[i] == (sqn[i] ^ m.f5[i]));
		CP_CHECK(memcmp(autn + 6, amf, 2) == 0);
		CP_CHECK(memcmp(autn + 8, m.f1, 8) == 0);
		CP_CHECK(memcmp(xres, m.f2, 8) == 0);
		CP_CHECK(memcmp(ck, m.f3, 16) == 0);
		CP_CHECK(memcmp(ik, m.f4, 16) == 0);
	}
}

static void
test_aka(void)
{
	uint8_t k[16], opc[16], rand[16], amf[2] = { 0x80, 0x00 };
	uint8_t sqn_hn[6] = { 0, 0, 0, 0, 0, 0x21 }, sqn_ms[6] = { 0, 0, 0, 0, 0, 0x20 };
	uint8_t autn[16], xres[8], ck[16], ik[16];
	uint8_t res[8], ck2[16], ik2[16], auts[14], recovered[6];
	uint8_t before[6];

	cp_test_unhex("465b5ce8b199b49faa5f0a2ee238a6bc", k, 16);
	cp_test_unhex("cd63cb71954a9f4e48a5994e37a02baf", opc, 16);
	cp_test_unhex("23553cbe9637a89d218ae64dae47bf35", rand, 16);

	/* Fresh SQN: authenticated, RES = XRES, same CK/IK, SQN_MS advances. */
	CP_CHECK_INT(cp_aka_generate(k, opc, rand, sqn_hn, amf, autn, xres, ck, ik), CP_OK);
	CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts), CP_AKA_OK);
	CP_CHECK(memcmp(res, xres, 8) == 0);
	CP_CHECK(memcmp(ck, ck2, 16) == 0);
	CP_CHECK(memcmp(ik, ik2, 16) == 0);
	CP_CHECK(memcmp(sqn_ms, sqn_hn, 6) == 0);

	/* The same AUTN again: a replay, answered with AUTS. */
	CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts), CP_AKA_SYNC_FAIL);
	CP_CHECK(memcmp(sqn_ms, sqn_hn, 6) == 0);
	/* The network recovers SQN_MS from AUTS ... */
	memset(recovered, 0xaa, 6);
	CP_CHECK(cp_aka_resync(k, opc, rand, auts, recovered));
	CP_CHECK(memcmp(recovered, sqn_ms, 6) == 0);
	/* ... and a vector with SQN_MS + 1 goes through. */
	memcpy(sqn_hn, recovered, 6);
	sqn_hn[5]++;
	CP_CHECK_INT(cp_aka_generate(k, opc, rand, sqn_hn, amf, autn, xres, ck, ik), CP_OK);
	CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts), CP_AKA_OK);
	CP_CHECK(memcmp(res, xres, 8) == 0);
	CP_CHECK(memcmp(sqn_ms, sqn_hn, 6) == 0);

	/* A lower SQN is also stale, and a tampered AUTS does not resync. */
	sqn_hn[5] -= 2;
	CP_CHECK_INT(cp_aka_generate(k, opc, rand, sqn_hn, amf, autn, xres, ck, ik), CP_OK);
	CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts), CP_AKA_SYNC_FAIL);
	for (int bit = 0; bit < 14 * 8; bit++) {
		auts[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		memset(recovered, 0xaa, 6);
		CP_CHECK(!cp_aka_resync(k, opc, rand, auts, recovered));
		CP_CHECK(recovered[0] == 0xaa && recovered[5] == 0xaa);
		auts[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	CP_CHECK(cp_aka_resync(k, opc, rand, auts, recovered));

	/* Wrong K: MAC failure, nothing changes. */
	sqn_hn[5] += 10;
	CP_CHECK_INT(cp_aka_generate(k, opc, rand, sqn_hn, amf, autn, xres, ck, ik), CP_OK);
	k[0] ^= 1;
	memcpy(before, sqn_ms, 6);
	memset(res, 0x55, 8);
	CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts), CP_AKA_MAC_FAIL);
	CP_CHECK(memcmp(sqn_ms, before, 6) == 0);
	CP_CHECK(res[0] == 0x55 && res[7] == 0x55);
	k[0] ^= 1;

	/* A tampered AUTN (any bit of SQN^AK, AMF or MAC) fails the MAC. */
	for (int bit = 0; bit < 128; bit++) {
		autn[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts),
			     CP_AKA_MAC_FAIL);
		autn[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	CP_CHECK(memcmp(sqn_ms, before, 6) == 0);
	/* Wrong RAND too. */
	rand[3] ^= 0x10;
	CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts), CP_AKA_MAC_FAIL);
	rand[3] ^= 0x10;
	CP_CHECK_INT(cp_aka_usim(k, opc, rand, autn, sqn_ms, res, ck2, ik2, auts), CP_AKA_OK);

	CP_CHECK_INT(cp_milenage(NULL, opc, rand, sqn_hn, amf, &(CpMilenage){ 0 }), CP_ERR_ARGUMENT);
	CP_CHECK_INT(cp_milenage_opc(k, NULL, opc), CP_ERR_ARGUMENT);
}

int
main(void)
{
	CpTestVectors v;

	CP_CHECK(cp_test_vectors_load("milenage-ts35207.txt", &v));
	CP_CHECK(v.n >= 3);
	for (size_t i = 0; i < v.n; i++)
		check_set(&v.blocks[i]);
	cp_test_vectors_free(&v);
	test_aka();
	return cp_test_done("test-milenage");
}
