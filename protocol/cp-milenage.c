/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Milenage, 3GPP TS 35.206 section 4, with the constants of 4.1 (r1..r5 =
 * 64, 0, 32, 64, 96 bits; c1..c5 = 0 with bit 127, 126, 125, 124 set for
 * c2..c5), and the AUTN/AUTS checks of TS 33.102 6.3.
 */
#include "cp-milenage.h"

#include <string.h>

#include "cp-crypto.h"
#include "cp-secret.h"

static void
xor16(uint8_t *out, const uint8_t *a, const uint8_t *b)
{
	for (int i = 0; i < 16; i++)
		out[i] = a[i] ^ b[i];
}

/* rot(x, r): cyclic rotation by r bits towards the most significant bit. */
static void
rot(uint8_t out[16], const uint8_t in[16], unsigned int r_bits)
{
	unsigned int r = r_bits / 8;

	for (unsigned int i = 0; i < 16; i++)
		out[i] = in[(i + r) % 16];
}

CpError
cp_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16])
{
	uint8_t e[16];
	CpError err;

	if (!k || !op || !opc)
		return CP_ERR_ARGUMENT;
	err = cp_aes128_ecb_block(k, op, e);
	if (err == CP_OK)
		xor16(opc, e, op);
	cp_cleanse(e, sizeof e);
	return err;
}

/* OUTn = E_K(rot(TEMP xor OPc, r) xor c) xor OPc, for n = 2..5 */
static CpError
out_n(CpAes128 *aes, const uint8_t opc[16], const uint8_t temp[16],
      unsigned int r, uint8_t c_last, uint8_t out[16])
{
	uint8_t x[16], y[16];
	CpError err;

	xor16(x, temp, opc);
	rot(y, x, r);
	y[15] ^= c_last;
	err = cp_aes128_block(aes, y, x);
	xor16(out, x, opc);
	cp_cleanse(x, sizeof x);
	cp_cleanse(y, sizeof y);
	return err;
}

CpError
cp_milenage(const uint8_t k[16], const uint8_t opc[16],
	    const uint8_t rand[16], const uint8_t sqn[6],
	    const uint8_t amf[2], CpMilenage *out)
{
	uint8_t temp[16], in1[16], x[16], y[16], o[16];
	CpMilenage m;
	CpAes128 *aes;
	CpError err;

	if (!k || !opc || !rand || !sqn || !amf || !out)
		return CP_ERR_ARGUMENT;
	aes = cp_aes128_new(k);
	if (!aes)
		return CP_ERR_CRYPTO;

	xor16(x, rand, opc);
	err = cp_aes128_block(aes, x, temp);
	if (err != CP_OK)
		goto out;

	/* OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc */
	memcpy(in1, sqn, 6);
	memcpy(in1 + 6, amf, 2);
	memcpy(in1 + 8, sqn, 6);
	memcpy(in1 + 14, amf, 2);
	xor16(x, in1, opc);
	rot(y, x, 64);
	xor16(x, y, temp);
	err = cp_aes128_block(aes, x, y);
	if (err != CP_OK)
		goto out;
	xor16(o, y, opc);
	memcpy(m.f1, o, 8);
	memcpy(m.f1star, o + 8, 8);

	if ((err = out_n(aes, opc, temp, 0, 0x01, o)) != CP_OK)
		goto out;
	memcpy(m.f5, o, 6);
	memcpy(m.f2, o + 8, 8);
	if ((err = out_n(aes, opc, temp, 32, 0x02, o)) != CP_OK)
		goto out;
	memcpy(m.f3, o, 16);
	if ((err = out_n(aes, opc, temp, 64, 0x04, o)) != CP_OK)
		goto out;
	memcpy(m.f4, o, 16);
	if ((err = out_n(aes, opc, temp, 96, 0x08, o)) != CP_OK)
		goto out;
	memcpy(m.f5star, o, 6);

	*out = m;
out:
	cp_aes128_free(aes);
	cp_cleanse(&m, sizeof m);
	cp_cleanse(temp, sizeof temp);
	cp_cleanse(x, sizeof x);
	cp_cleanse(y, sizeof y);
	cp_cleanse(o, sizeof o);
	return err;
}

CpError
cp_aka_generate(const uint8_t k[16], const uint8_t opc[16],
		const uint8_t rand[16], const uint8_t sqn[6],
		const uint8_t amf[2], uint8_t autn[16],
		uint8_t xres[8], uint8_t ck[16], uint8_t ik[16])
{
	CpMilenage m;
	CpError err;

	if (!autn || !xres || !ck || !ik)
		return CP_ERR_ARGUMENT;
	err = cp_milenage(k, opc, rand, sqn, amf, &m);
	if (err != CP_OK)
		return err;
	for (int i = 0; i < 6; i++)
		autn[i] = sqn[i] ^ m.f5[i];
	memcpy(autn + 6, amf, 2);
	memcpy(autn + 8, m.f1, 8);
	memcpy(xres, m.f2, 8);
	memcpy(ck, m.f3, 16);
	memcpy(ik, m.f4, 16);
	cp_cleanse(&m, sizeof m);
	return CP_OK;
}

static bool
sqn_greater(const uint8_t a[6], const uint8_t b[6])
{
	return memcmp(a, b, 6) > 0;   /* big-endian: byte order is numeric order */
}

/*
 * AK and AK* depend on RAND only, so one Milenage run with any SQN/AMF
 * gives them; f1 and f1* need the real SQN and AMF and a second run.
 */
CpAkaResult
cp_aka_usim(const uint8_t k[16], const uint8_t opc[16],
	    const uint8_t rand[16], const uint8_t autn[16],
	    uint8_t sqn_ms[6], uint8_t res[8],
	    uint8_t ck[16], uint8_t ik[16], uint8_t auts[14])
{
	static const uint8_t amf_resync[2] = { 0x00, 0x00 };
	CpMilenage m, s;
	uint8_t sqn[6];
	CpAkaResult r = CP_AKA_MAC_FAIL;

	/* Fail closed: a USIM that cannot compute does not authenticate. */
	if (!k || !opc || !rand || !autn || !sqn_ms || !res || !ck || !ik || !auts)
		return CP_AKA_MAC_FAIL;
	if (cp_milenage(k, opc, rand, autn, autn + 6, &m) != CP_OK)
		return CP_AKA_MAC_FAIL;
	for (int i = 0; i < 6; i++)
		sqn[i] = autn[i] ^ m.f5[i];
	if (cp_milenage(k, opc, rand, sqn, autn + 6, &m) != CP_OK)
		goto out;
	if (!cp_memeq_consttime(m.f1, autn + 8, 8))
		goto out;

	if (!sqn_greater(sqn, sqn_ms)) {
		/* AUTS = SQN_MS xor AK* || MAC-S, MAC-S over SQN_MS with AMF 0000 (6.3.3) */
		if (cp_milenage(k, opc, rand, sqn_ms, amf_resync, &s) != CP_OK)
			goto out;
		for (int i = 0; i < 6; i++)
			auts[i] = sqn_ms[i] ^ m.f5star[i];
		memcpy(auts + 6, s.f1star, 8);
		cp_cleanse(&s, sizeof s);
		r = CP_AKA_SYNC_FAIL;
		goto out;
	}

	memcpy(res, m.f2, 8);
	memcpy(ck, m.f3, 16);
	memcpy(ik, m.f4, 16);
	memcpy(sqn_ms, sqn, 6);
	r = CP_AKA_OK;
out:
	cp_cleanse(&m, sizeof m);
	cp_cleanse(sqn, sizeof sqn);
	return r;
}

bool
cp_aka_resync(const uint8_t k[16], const uint8_t opc[16],
	      const uint8_t rand[16], const uint8_t auts[14],
	      uint8_t sqn_ms[6])
{
	static const uint8_t amf_resync[2] = { 0x00, 0x00 };
	static const uint8_t zero_sqn[6];
	CpMilenage m;
	uint8_t sqn[6];
	bool ok = false;

	if (!k || !opc || !rand || !auts || !sqn_ms)
		return false;
	if (cp_milenage(k, opc, rand, zero_sqn, amf_resync, &m) != CP_OK)
		return false;
	for (int i = 0; i < 6; i++)
		sqn[i] = auts[i] ^ m.f5star[i];
	if (cp_milenage(k, opc, rand, sqn, amf_resync, &m) != CP_OK)
		goto out;
	if (cp_memeq_consttime(m.f1star, auts + 6, 8)) {
		memcpy(sqn_ms, sqn, 6);
		ok = true;
	}
out:
	cp_cleanse(&m, sizeof m);
	cp_cleanse(sqn, sizeof sqn);
	return ok;
}
