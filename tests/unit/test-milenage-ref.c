/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An independent check of protocol/'s Milenage and AKA, which the
 * simulated USIM and the simulated network both use (so "registered"
 * there proves nothing about them). Milenage (TS 35.206), AKA on the USIM
 * (TS 33.102 6.3.3) and resynchronisation (6.3.5) are written out again
 * here from OpenSSL's AES alone, checked against every test set of
 * TS 35.207 and TS 35.208, and then compared with cp_milenage_opc,
 * cp_milenage, cp_aka_generate, cp_aka_usim and cp_aka_resync on the
 * conformance sets and on many random inputs.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cp-milenage.h"
#include "cp-test.h"

#define N_RANDOM 2000

/* ---- the reference, from AES-128 alone ---- */

static void
aes(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0;

	if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 || EVP_EncryptUpdate(c, out, &n, in, 16) != 1 ||
	    n != 16) {
		fprintf(stderr, "AES-128 failed\n");
		exit(1);
	}
	EVP_CIPHER_CTX_free(c);
}

typedef struct {
	uint8_t mac_a[8], mac_s[8], res[8], ck[16], ik[16], ak[6], ak_star[6];
} Ref;

static void
ref_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16])
{
	aes(k, op, opc);
	for (int i = 0; i < 16; i++)
		opc[i] ^= op[i];
}

/* OUT_n = E_K(rot(x xor OPc, r) xor c) xor OPc, r in bytes, c's last byte */
static void
ref_out(const uint8_t k[16], const uint8_t opc[16], const uint8_t x[16], int r, uint8_t c,
	uint8_t out[16])
{
	uint8_t in[16];

	for (int i = 0; i < 16; i++)
		in[i] = x[(i + r) % 16] ^ opc[(i + r) % 16];
	in[15] ^= c;
	aes(k, in, out);
	for (int i = 0; i < 16; i++)
		out[i] ^= opc[i];
}

static void
ref_milenage(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
	     const uint8_t sqn[6], const uint8_t amf[2], Ref *o)
{
	uint8_t temp[16], in1[16], in[16], out[16];

	for (int i = 0; i < 16; i++)
		temp[i] = rand[i] ^ opc[i];
	aes(k, temp, temp);
	/* f1, f1*: OUT1 = E_K(TEMP xor rot(IN1 xor OPc, 64) xor c1) xor OPc,
	 * IN1 = SQN || AMF || SQN || AMF, c1 = 0 */
	memcpy(in1, sqn, 6);
	memcpy(in1 + 6, amf, 2);
	memcpy(in1 + 8, in1, 8);
	for (int i = 0; i < 16; i++)
		in[i] = temp[i] ^ in1[(i + 8) % 16] ^ opc[(i + 8) % 16];
	aes(k, in, out);
	for (int i = 0; i < 16; i++)
		out[i] ^= opc[i];
	memcpy(o->mac_a, out, 8);
	memcpy(o->mac_s, out + 8, 8);
	/* f2, f5: r2 = 0, c2 = 1 */
	ref_out(k, opc, temp, 0, 1, out);
	memcpy(o->ak, out, 6);
	memcpy(o->res, out + 8, 8);
	/* f3: r3 = 32, c3 = 2; f4: r4 = 64, c4 = 4; f5*: r5 = 96, c5 = 8 */
	ref_out(k, opc, temp, 4, 2, o->ck);
	ref_out(k, opc, temp, 8, 4, o->ik);
	ref_out(k, opc, temp, 12, 8, out);
	memcpy(o->ak_star, out, 6);
}

/* SQN as the 48-bit number it is. */
static uint64_t
sqn_value(const uint8_t s[6])
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = v << 8 | s[i];
	return v;
}

/*
 * The USIM's side, TS 33.102 6.3.3: AK = f5(RAND); SQN = AUTN[0..5] xor
 * AK; MAC-A checked over that SQN and AUTN's AMF; SQN fresh when above
 * SQN_MS (the plain rule of Annex C.2.1, without a window); otherwise
 * AUTS = (SQN_MS xor AK*) || MAC-S, MAC-S = f1*(SQN_MS, RAND, AMF 0000)
 * with AK* = f5*(RAND) (6.3.5).
 */
static CpAkaResult
ref_usim(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
	 const uint8_t autn[16], uint8_t sqn_ms[6], uint8_t res[8], uint8_t ck[16],
	 uint8_t ik[16], uint8_t auts[14])
{
	static const uint8_t amf0[2];
	uint8_t sqn[6];
	Ref r, s;

	ref_milenage(k, opc, rand, autn, autn + 6, &r);     /* AK does not depend on SQN */
	for (int i = 0; i < 6; i++)
		sqn[i] = autn[i] ^ r.ak[i];
	ref_milenage(k, opc, rand, sqn, autn + 6, &r);
	if (memcmp(r.mac_a, autn + 8, 8) != 0)
		return CP_AKA_MAC_FAIL;
	if (sqn_value(sqn) <= sqn_value(sqn_ms)) {
		ref_milenage(k, opc, rand, sqn_ms, amf0, &s);
		for (int i = 0; i < 6; i++)
			auts[i] = sqn_ms[i] ^ s.ak_star[i];
		memcpy(auts + 6, s.mac_s, 8);
		return CP_AKA_SYNC_FAIL;
	}
	memcpy(res, r.res, 8);
	memcpy(ck, r.ck, 16);
	memcpy(ik, r.ik, 16);
	memcpy(sqn_ms, sqn, 6);
	return CP_AKA_OK;
}

/* The network's AUTN: (SQN xor AK) || AMF || MAC-A. */
static void
ref_autn(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
	 const uint8_t sqn[6], const uint8_t amf[2], uint8_t autn[16])
{
	Ref r;

	ref_milenage(k, opc, rand, sqn, amf, &r);
	for (int i = 0; i < 6; i++)
		autn[i] = sqn[i] ^ r.ak[i];
	memcpy(autn + 6, amf, 2);
	memcpy(autn + 8, r.mac_a, 8);
}

/* ---- the reference against the published sets ---- */

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
check_set(const char *file, const CpTestBlock *b)
{
	uint8_t k[16], rand[16], sqn[6], amf[2], op[16], opc[16], opc2[16];
	CpMilenage m;
	Ref r;

	fprintf(stderr, "%s set %s\n", file, get(b, "set"));
	cp_test_unhex(get(b, "K"), k, 16);
	cp_test_unhex(get(b, "RAND"), rand, 16);
	cp_test_unhex(get(b, "SQN"), sqn, 6);
	cp_test_unhex(get(b, "AMF"), amf, 2);
	cp_test_unhex(get(b, "OP"), op, 16);

	/* the reference reproduces the published numbers ... */
	ref_opc(k, op, opc);
	CP_CHECK_HEX(opc, 16, get(b, "OPc"));
	ref_milenage(k, opc, rand, sqn, amf, &r);
	CP_CHECK_HEX(r.mac_a, 8, get(b, "f1"));
	CP_CHECK_HEX(r.mac_s, 8, get(b, "f1star"));
	CP_CHECK_HEX(r.res, 8, get(b, "f2"));
	CP_CHECK_HEX(r.ck, 16, get(b, "f3"));
	CP_CHECK_HEX(r.ik, 16, get(b, "f4"));
	CP_CHECK_HEX(r.ak, 6, get(b, "f5"));
	CP_CHECK_HEX(r.ak_star, 6, get(b, "f5star"));

	/* ... and so does protocol/'s */
	CP_CHECK_INT(cp_milenage_opc(k, op, opc2), CP_OK);
	CP_CHECK(memcmp(opc, opc2, 16) == 0);
	CP_CHECK_INT(cp_milenage(k, opc, rand, sqn, amf, &m), CP_OK);
	CP_CHECK(memcmp(m.f1, r.mac_a, 8) == 0);
	CP_CHECK(memcmp(m.f1star, r.mac_s, 8) == 0);
	CP_CHECK(memcmp(m.f2, r.res, 8) == 0);
	CP_CHECK(memcmp(m.f3, r.ck, 16) == 0);
	CP_CHECK(memcmp(m.f4, r.ik, 16) == 0);
	CP_CHECK(memcmp(m.f5, r.ak, 6) == 0);
	CP_CHECK(memcmp(m.f5star, r.ak_star, 6) == 0);
}

/* ---- protocol/ against the reference ---- */

static void
random_bytes(uint8_t *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1) {
		fprintf(stderr, "RAND_bytes failed\n");
		exit(1);
	}
}

/* One AKA run from the network's AUTN (maybe tampered) to the USIM, both
 * ways; then, on a sync failure, the network's resynchronisation. */
static void
compare_aka(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
	    const uint8_t sqn[6], const uint8_t amf[2], const uint8_t sqn_ms_in[6], int tamper_bit,
	    unsigned *seen)
{
	uint8_t autn[16], autn2[16], xres[8], ck[16], ik[16];
	uint8_t sqn_ms_ref[6], sqn_ms_cp[6];
	uint8_t res_r[8] = { 0 }, ck_r[16] = { 0 }, ik_r[16] = { 0 }, auts_r[14] = { 0 };
	uint8_t res_c[8] = { 0 }, ck_c[16] = { 0 }, ik_c[16] = { 0 }, auts_c[14] = { 0 };
	CpAkaResult want, got;
	Ref r;

	ref_autn(k, opc, rand, sqn, amf, autn);
	ref_milenage(k, opc, rand, sqn, amf, &r);
	CP_CHECK_INT(cp_aka_generate(k, opc, rand, sqn, amf, autn2, xres, ck, ik), CP_OK);
	CP_CHECK(memcmp(autn, autn2, 16) == 0);
	CP_CHECK(memcmp(xres, r.res, 8) == 0);
	CP_CHECK(memcmp(ck, r.ck, 16) == 0);
	CP_CHECK(memcmp(ik, r.ik, 16) == 0);

	if (tamper_bit >= 0)
		autn[tamper_bit / 8] ^= (uint8_t)(1u << (tamper_bit % 8));
	memcpy(sqn_ms_ref, sqn_ms_in, 6);
	memcpy(sqn_ms_cp, sqn_ms_in, 6);
	want = ref_usim(k, opc, rand, autn, sqn_ms_ref, res_r, ck_r, ik_r, auts_r);
	got = cp_aka_usim(k, opc, rand, autn, sqn_ms_cp, res_c, ck_c, ik_c, auts_c);
	CP_CHECK_INT(got, want);
	CP_CHECK(memcmp(sqn_ms_cp, sqn_ms_ref, 6) == 0);
	seen[want]++;
	if (want == CP_AKA_OK) {
		CP_CHECK(memcmp(res_c, res_r, 8) == 0);
		CP_CHECK(memcmp(ck_c, ck_r, 16) == 0);
		CP_CHECK(memcmp(ik_c, ik_r, 16) == 0);
	} else if (want == CP_AKA_SYNC_FAIL) {
		uint8_t recovered[6];

		CP_CHECK(memcmp(auts_c, auts_r, 14) == 0);
		/* the network gets SQN_MS back from the reference's AUTS */
		memset(recovered, 0xaa, sizeof(recovered));
		CP_CHECK(cp_aka_resync(k, opc, rand, auts_r, recovered));
		CP_CHECK(memcmp(recovered, sqn_ms_in, 6) == 0);
		/* and refuses it with any bit changed */
		for (int bit = 0; bit < 14 * 8; bit += 7) {
			auts_r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			memset(recovered, 0xaa, sizeof(recovered));
			CP_CHECK(!cp_aka_resync(k, opc, rand, auts_r, recovered));
			CP_CHECK(recovered[0] == 0xaa && recovered[5] == 0xaa);
			auts_r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
}

static void
compare_random(void)
{
	unsigned seen[3] = { 0 };

	for (int n = 0; n < N_RANDOM; n++) {
		uint8_t k[16], op[16], opc[16], opc2[16], rand[16], sqn[6], amf[2], sqn_ms[6];
		CpMilenage m;
		Ref r;
		uint8_t pick;

		random_bytes(k, 16);
		random_bytes(op, 16);
		random_bytes(rand, 16);
		random_bytes(sqn, 6);
		random_bytes(amf, 2);
		random_bytes(&pick, 1);
		ref_opc(k, op, opc);
		CP_CHECK_INT(cp_milenage_opc(k, op, opc2), CP_OK);
		CP_CHECK(memcmp(opc, opc2, 16) == 0);
		ref_milenage(k, opc, rand, sqn, amf, &r);
		CP_CHECK_INT(cp_milenage(k, opc, rand, sqn, amf, &m), CP_OK);
		CP_CHECK(memcmp(m.f1, r.mac_a, 8) == 0 && memcmp(m.f1star, r.mac_s, 8) == 0);
		CP_CHECK(memcmp(m.f2, r.res, 8) == 0 && memcmp(m.f5, r.ak, 6) == 0);
		CP_CHECK(memcmp(m.f3, r.ck, 16) == 0 && memcmp(m.f4, r.ik, 16) == 0);
		CP_CHECK(memcmp(m.f5star, r.ak_star, 6) == 0);

		/* SQN_MS below, equal to, just below, or above SQN; a quarter
		 * with one bit of AUTN flipped */
		memcpy(sqn_ms, sqn, 6);
		switch (pick & 3) {
		case 0:
			random_bytes(sqn_ms, 6);
			break;
		case 1:
			break;
		case 2:
			{
				uint64_t v = sqn_value(sqn);

				v = v ? v - 1 : 0;
				for (int i = 5; i >= 0; i--, v >>= 8)
					sqn_ms[i] = (uint8_t)v;
			}
			break;
		default:
			sqn_ms[0] = (uint8_t)(sqn[0] | 0x80);
			sqn_ms[5] = 0xff;
			break;
		}
		compare_aka(k, opc, rand, sqn, amf, sqn_ms,
			    (pick & 0xc0) == 0xc0 ? ((pick >> 2) & 0x0f) * 8 + (n % 8) : -1, seen);
	}
	fprintf(stderr, "random: %u accepted, %u MAC failures, %u sync failures\n",
		seen[CP_AKA_OK], seen[CP_AKA_MAC_FAIL], seen[CP_AKA_SYNC_FAIL]);
	/* every branch was taken, many times */
	CP_CHECK(seen[CP_AKA_OK] > N_RANDOM / 20);
	CP_CHECK(seen[CP_AKA_MAC_FAIL] > N_RANDOM / 20);
	CP_CHECK(seen[CP_AKA_SYNC_FAIL] > N_RANDOM / 20);
}

/* The conformance sets through AKA too: SQN_MS one below, equal to, and
 * zero. */
static void
compare_sets(const CpTestBlock *b)
{
	uint8_t k[16], rand[16], sqn[6], amf[2], op[16], opc[16], below[6];
	static const uint8_t zero[6];
	unsigned seen[3] = { 0 };
	uint64_t v;

	cp_test_unhex(get(b, "K"), k, 16);
	cp_test_unhex(get(b, "RAND"), rand, 16);
	cp_test_unhex(get(b, "SQN"), sqn, 6);
	cp_test_unhex(get(b, "AMF"), amf, 2);
	cp_test_unhex(get(b, "OP"), op, 16);
	ref_opc(k, op, opc);
	v = sqn_value(sqn) - 1;
	for (int i = 5; i >= 0; i--, v >>= 8)
		below[i] = (uint8_t)v;
	compare_aka(k, opc, rand, sqn, amf, below, -1, seen);
	compare_aka(k, opc, rand, sqn, amf, sqn, -1, seen);
	compare_aka(k, opc, rand, sqn, amf, zero, -1, seen);
	compare_aka(k, opc, rand, sqn, amf, zero, 77, seen);
	CP_CHECK(seen[CP_AKA_OK] == 2 && seen[CP_AKA_SYNC_FAIL] == 1 && seen[CP_AKA_MAC_FAIL] == 1);
}

int
main(void)
{
	static const char *const files[] = { "milenage-ts35207.txt", "milenage-ts35208.txt" };
	size_t total = 0;

	for (size_t f = 0; f < 2; f++) {
		CpTestVectors v;

		CP_CHECK(cp_test_vectors_load(files[f], &v));
		for (size_t i = 0; i < v.n; i++) {
			check_set(files[f], &v.blocks[i]);
			compare_sets(&v.blocks[i]);
		}
		total += v.n;
		cp_test_vectors_free(&v);
	}
	CP_CHECK_INT(total, 3 + 20);
	compare_random();
	return cp_test_done("test-milenage-ref");
}
