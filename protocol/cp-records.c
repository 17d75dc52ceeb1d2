/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-records.h"

#include <stdlib.h>
#include <string.h>

#include "cp-kdf.h"
#include "cp-tlv.h"

/*
 * Every structure starts with its version (tag 0x01, the lowest tag). A
 * later version may lay out everything after it differently, so the
 * version is looked at before anything else is judged: a version 2
 * structure gets CP_ERR_VERSION, not whatever a version 1 decoder would
 * make of its fields.
 */
static CpError
check_envelope(const uint8_t *buf, size_t len, uint8_t version)
{
	if (!buf && len)
		return CP_ERR_ARGUMENT;
	if (len > CP_RECORD_MAX)
		return CP_ERR_TOO_LARGE;
	if (len >= CP_TLV_HDR + 1 && buf[0] == 0x01 && cp_be16(buf + 1) == 1 &&
	    buf[3] != version)
		return CP_ERR_VERSION;
	return CP_OK;
}

static void
copy_str(char *dst, const CpTlvValue *v)
{
	memcpy(dst, v->value, v->len);
	dst[v->len] = '\0';
}

/* Length of a NUL-terminated string held in a fixed array; size when it
 * has no terminator, which the self-check then rejects as too long. */
#define FIELD_STRLEN(s) strnlen((s), sizeof(s))

static bool
suite_known(uint8_t id)
{
	return cp_ecies_eph_len((CpSuite)id) != 0;
}

/* Encoders finish by decoding what they wrote: the canonical encoding is
 * by construction one the decoders accept, and a caller's bad field gets
 * the same code a receiver would report. */
static CpError
finish(CpBuf *out, size_t start, CpError (*decode)(const uint8_t *, size_t, void *),
       void *scratch)
{
	CpError err;

	if (out->failed)
		return CP_ERR_CRYPTO;   /* no memory */
	err = decode(out->data + start, out->len - start, scratch);
	return err;
}

static void
rollback(CpBuf *out, size_t start)
{
	if (out->data && out->len > start)
		cp_cleanse(out->data + start, out->len - start);
	out->len = start;
	out->failed = false;
}

/* Sign out[start..] with key and append the signature as tag; on failure
 * out is as it was at start. */
static CpError
append_signature(CpBuf *out, size_t start, CpKey *key, uint8_t tag)
{
	uint8_t sig[CP_ECDSA_MAX];
	size_t sig_len = 0;
	CpError err = out->failed ? CP_ERR_CRYPTO : CP_OK;

	if (!err)
		err = cp_ecdsa_sign(key, out->data + start, out->len - start, sig, &sig_len);
	if (!err) {
		cp_tlv_put(out, tag, sig, sig_len);
		if (out->failed)
			err = CP_ERR_CRYPTO;
	}
	if (err)
		rollback(out, start);
	return err;
}

/* Append the mac (tag 0x7F) = HMAC(key, out[start..]); on failure out is
 * as it was at start. */
static CpError
append_mac(CpBuf *out, size_t start, const CpSecret *key)
{
	uint8_t mac[CP_MAC_LEN];
	CpError err = out->failed ? CP_ERR_CRYPTO : CP_OK;

	if (!err)
		err = cp_hmac_sha256(key->data, key->len, out->data + start, out->len - start, mac);
	if (!err)
		cp_tlv_put(out, CP_TLV_MAC, mac, sizeof mac);
	cp_cleanse(mac, sizeof mac);
	if (!err && out->failed)
		err = CP_ERR_CRYPTO;
	if (err)
		rollback(out, start);
	return err;
}

/* ---- device record ---- */

enum {
	DR_VERSION,
	DR_DEVICE_ID,
	DR_MANUFACTURER,
	DR_MODEL,
	DR_SERIAL,
	DR_SUITES,
	DR_STATE,
	DR_ATT_COUNTER,
	DR_ATT_RANDOM,
	DR_ATT_SIGNATURE,
	DR_N
};

/* The shortest DER ECDSA signature: 30 06 02 01 r 02 01 s. */
#define ECDSA_DER_MIN 8

static const CpTlvField dr_fields[DR_N] = {
	[DR_VERSION] = { 0x01, 1, 1, true, false },
	[DR_DEVICE_ID] = { 0x02, CP_DEVICE_ID_LEN, CP_DEVICE_ID_LEN, true, false },
	[DR_MANUFACTURER] = { 0x03, 1, CP_DR_STR_MAX, true, false },
	[DR_MODEL] = { 0x04, 1, CP_DR_STR_MAX, true, false },
	[DR_SERIAL] = { 0x05, 1, CP_DR_STR_MAX, true, false },
	[DR_SUITES] = { 0x06, 1, CP_DR_SUITES_MAX, true, false },
	[DR_STATE] = { 0x07, 1, 1, true, false },
	[DR_ATT_COUNTER] = { 0x08, 8, 8, true, false },
	[DR_ATT_RANDOM] = { 0x09, 16, 16, true, false },
	/* The signature covers every byte before it: nothing may follow. */
	[DR_ATT_SIGNATURE] = { 0x0A, ECDSA_DER_MIN, CP_ECDSA_MAX, true, true },
};

/* Field forms of the device record; n_fields = DR_SUITES + 1 for the
 * device info alone. */
static CpError
dr_check_values(const CpTlvValue *v, size_t n_fields)
{
	if (v[DR_VERSION].value[0] != CP_DEVICE_RECORD_VERSION)
		return CP_ERR_VERSION;
	if (!cp_is_utf8(v[DR_MANUFACTURER].value, v[DR_MANUFACTURER].len) ||
	    !cp_is_utf8(v[DR_MODEL].value, v[DR_MODEL].len) ||
	    !cp_is_utf8(v[DR_SERIAL].value, v[DR_SERIAL].len))
		return CP_ERR_BAD_VALUE;
	for (size_t i = 0; i < v[DR_SUITES].len; i++) {
		uint8_t id = v[DR_SUITES].value[i];

		if (!suite_known(id))
			return CP_ERR_BAD_VALUE;
		/* A repeated suite says the encoder is broken. */
		for (size_t k = 0; k < i; k++)
			if (v[DR_SUITES].value[k] == id)
				return CP_ERR_BAD_VALUE;
	}
	if (n_fields > DR_STATE && v[DR_STATE].value[0] > CP_DEVICE_FAILED)
		return CP_ERR_BAD_VALUE;
	return CP_OK;
}

CpError
cp_device_record_decode(const uint8_t *buf, size_t len, CpDeviceRecord *dr)
{
	CpTlvValue v[DR_N];
	CpDeviceRecord tmp;
	CpError err;

	if (!dr)
		return CP_ERR_ARGUMENT;
	err = check_envelope(buf, len, CP_DEVICE_RECORD_VERSION);
	if (err)
		return err;
	err = cp_tlv_decode(buf, len, dr_fields, DR_N, v, NULL, NULL);
	if (err)
		return err;

	err = dr_check_values(v, DR_N);
	if (err)
		return err;

	memset(&tmp, 0, sizeof tmp);
	tmp.version = v[DR_VERSION].value[0];
	memcpy(tmp.device_id, v[DR_DEVICE_ID].value, CP_DEVICE_ID_LEN);
	copy_str(tmp.manufacturer, &v[DR_MANUFACTURER]);
	copy_str(tmp.model, &v[DR_MODEL]);
	copy_str(tmp.serial, &v[DR_SERIAL]);
	memcpy(tmp.suites, v[DR_SUITES].value, v[DR_SUITES].len);
	tmp.n_suites = v[DR_SUITES].len;
	tmp.state = v[DR_STATE].value[0];
	tmp.att_counter = cp_be64(v[DR_ATT_COUNTER].value);
	memcpy(tmp.att_random, v[DR_ATT_RANDOM].value, sizeof tmp.att_random);
	memcpy(tmp.att_signature, v[DR_ATT_SIGNATURE].value, v[DR_ATT_SIGNATURE].len);
	tmp.att_signature_len = v[DR_ATT_SIGNATURE].len;
	/* Tags are contiguous up to the signature: extensions (0x40-0x5F)
	 * could only come after it, and nothing may. */
	tmp.info_len = v[DR_SUITES].end;
	tmp.signed_len = v[DR_ATT_SIGNATURE].offset;
	*dr = tmp;
	return CP_OK;
}

static void
put_device_info(const CpDeviceRecord *dr, CpBuf *b)
{
	cp_tlv_put_u8(b, 0x01, CP_DEVICE_RECORD_VERSION);
	cp_tlv_put(b, 0x02, dr->device_id, CP_DEVICE_ID_LEN);
	cp_tlv_put(b, 0x03, dr->manufacturer, FIELD_STRLEN(dr->manufacturer));
	cp_tlv_put(b, 0x04, dr->model, FIELD_STRLEN(dr->model));
	cp_tlv_put(b, 0x05, dr->serial, FIELD_STRLEN(dr->serial));
	cp_tlv_put(b, 0x06, dr->suites, dr->n_suites);
}

static CpError
decode_dr_scratch(const uint8_t *buf, size_t len, void *scratch)
{
	return cp_device_record_decode(buf, len, scratch);
}

CpError
cp_device_record_encode(const CpDeviceRecord *dr, CpKey *device_key, CpBuf *out)
{
	size_t start;
	CpDeviceRecord check;
	CpError err;

	if (!dr || !device_key || !out || out->failed)
		return CP_ERR_ARGUMENT;
	if (dr->n_suites > CP_DR_SUITES_MAX)
		return CP_ERR_LENGTH;

	start = out->len;
	put_device_info(dr, out);
	cp_tlv_put_u8(out, 0x07, dr->state);
	cp_tlv_put_be64(out, 0x08, dr->att_counter);
	cp_tlv_put(out, 0x09, dr->att_random, sizeof dr->att_random);
	err = append_signature(out, start, device_key, 0x0A);
	if (err)
		return err;
	err = finish(out, start, decode_dr_scratch, &check);
	if (err)
		rollback(out, start);
	return err;
}

CpError
cp_device_record_info(const CpDeviceRecord *dr, CpBuf *out)
{
	CpTlvValue v[DR_SUITES + 1];
	size_t start;
	CpError err;

	if (!dr || !out || out->failed)
		return CP_ERR_ARGUMENT;
	if (dr->n_suites > CP_DR_SUITES_MAX)
		return CP_ERR_LENGTH;

	start = out->len;
	put_device_info(dr, out);
	if (out->failed) {
		rollback(out, start);
		return CP_ERR_CRYPTO;
	}
	/* The same rules as the full record, checked on the bytes. */
	err = cp_tlv_decode(out->data + start, out->len - start,
			    dr_fields, DR_SUITES + 1, v, NULL, NULL);
	if (!err)
		err = dr_check_values(v, DR_SUITES + 1);
	if (err)
		rollback(out, start);
	return err;
}

CpError
cp_device_record_verify(const uint8_t *buf, size_t len, CpKey *pub, CpDeviceRecord *dr)
{
	CpDeviceRecord tmp;
	CpError err;

	if (!pub || !dr)
		return CP_ERR_ARGUMENT;
	err = cp_device_record_decode(buf, len, &tmp);
	if (err)
		return err;
	err = cp_ecdsa_verify(pub, buf, tmp.signed_len, tmp.att_signature, tmp.att_signature_len);
	if (err)
		return err;
	*dr = tmp;
	return CP_OK;
}

/* ---- enc_cred ---- */

static size_t
enc_cred_len(uint8_t suite)
{
	size_t eph = cp_ecies_eph_len((CpSuite)suite);

	return eph ? 1 + eph + CP_ENC_CRED_PLAIN_LEN + CP_ECIES_MAC_LEN : 0;
}

CpError
cp_enc_cred_seal(CpSuite suite, CpKey *device_pub, CpKey *eph_priv,
		 const CpSecret *k_prime, const CpSecret *opc,
		 uint8_t out[CP_ENC_CRED_MAX], size_t *out_len)
{
	uint8_t plain[CP_ENC_CRED_PLAIN_LEN];
	uint8_t eph_pub[CP_ECIES_EPH_MAX];
	uint8_t cipher[CP_ENC_CRED_PLAIN_LEN];
	uint8_t mac[CP_ECIES_MAC_LEN];
	size_t eph_len = cp_ecies_eph_len(suite);
	CpError err;

	if (!device_pub || !k_prime || !opc || !out || !out_len)
		return CP_ERR_ARGUMENT;
	if (!eph_len)
		return CP_ERR_SUITE;
	if (k_prime->len != 32 || opc->len != 16)
		return CP_ERR_ARGUMENT;

	memcpy(plain, k_prime->data, 32);
	memcpy(plain + 32, opc->data, 16);
	err = cp_ecies_encrypt(suite, device_pub, eph_priv, plain, sizeof plain,
			       eph_pub, cipher, mac, NULL);
	cp_cleanse(plain, sizeof plain);
	if (err)
		return err;

	out[0] = (uint8_t)suite;
	memcpy(out + 1, eph_pub, eph_len);
	memcpy(out + 1 + eph_len, cipher, sizeof cipher);
	memcpy(out + 1 + eph_len + sizeof cipher, mac, sizeof mac);
	*out_len = 1 + eph_len + sizeof cipher + sizeof mac;
	return CP_OK;
}

CpError
cp_enc_cred_open(const uint8_t *enc, size_t len, CpKey *device_key,
		 CpSecret **k_prime, CpSecret **opc)
{
	uint8_t plain[CP_ENC_CRED_PLAIN_LEN];
	CpSecret *kp, *o;
	size_t eph_len;
	CpError err;

	if (!enc || !device_key || !k_prime || !opc)
		return CP_ERR_ARGUMENT;
	if (len < 1)
		return CP_ERR_LENGTH;
	eph_len = cp_ecies_eph_len((CpSuite)enc[0]);
	if (!eph_len)
		return CP_ERR_SUITE;
	if (len != enc_cred_len(enc[0]))
		return CP_ERR_LENGTH;

	err = cp_ecies_decrypt((CpSuite)enc[0], device_key, enc + 1, eph_len,
			       enc + 1 + eph_len, CP_ENC_CRED_PLAIN_LEN,
			       enc + 1 + eph_len + CP_ENC_CRED_PLAIN_LEN, plain, NULL);
	if (err) {
		cp_cleanse(plain, sizeof plain);
		return err;
	}
	kp = cp_secret_new_from(plain, 32);
	o = cp_secret_new_from(plain + 32, 16);
	cp_cleanse(plain, sizeof plain);
	if (!kp || !o) {
		cp_secret_free(kp);
		cp_secret_free(o);
		return CP_ERR_CRYPTO;
	}
	*k_prime = kp;
	*opc = o;
	return CP_OK;
}

/* ---- profile ---- */

enum {
	PR_VERSION,
	PR_DEVICE_ID,
	PR_PROFILE_SEQ,
	PR_NONCE,
	PR_NOT_AFTER,
	PR_OPERATION,
	PR_BINDING_VERSION,
	PR_REPLACES,
	PR_ENC_CRED,
	PR_PLMN,
	PR_NETWORK_NAME,
	PR_SUPI,
	PR_APN,
	PR_MSISDN,
	PR_OP_CHAIN,
	PR_OP_SIGNATURE,
	PR_MAC,
	PR_N
};

#define ENC_CRED_MIN (1 + 32 + CP_ENC_CRED_PLAIN_LEN + CP_ECIES_MAC_LEN)

static const CpTlvField pr_fields[PR_N] = {
	[PR_VERSION] = { 0x01, 1, 1, true, false },
	[PR_DEVICE_ID] = { 0x02, CP_DEVICE_ID_LEN, CP_DEVICE_ID_LEN, true, false },
	[PR_PROFILE_SEQ] = { 0x03, 8, 8, true, false },
	[PR_NONCE] = { 0x04, CP_NONCE_LEN, CP_NONCE_LEN, true, false },
	[PR_NOT_AFTER] = { 0x05, 8, 8, false, false },
	[PR_OPERATION] = { 0x06, 1, 1, true, false },
	[PR_BINDING_VERSION] = { 0x07, 8, 8, true, false },
	[PR_REPLACES] = { 0x08, 8, 8, false, false },
	/* Bounds of both suites; the exact length is checked against the
	 * suite byte. */
	[PR_ENC_CRED] = { 0x10, ENC_CRED_MIN, CP_ENC_CRED_MAX, true, false },
	[PR_PLMN] = { 0x20, 5, 6, true, false },
	[PR_NETWORK_NAME] = { 0x21, 1, CP_NETWORK_NAME_MAX, true, false },
	[PR_SUPI] = { 0x22, 6, 15, true, false },
	[PR_APN] = { 0x23, 1, CP_APN_MAX, true, false },
	[PR_MSISDN] = { 0x24, 1, 15, false, false },
	[PR_OP_CHAIN] = { 0x70, 1, CP_CHAIN_MAX, true, false },
	[PR_OP_SIGNATURE] = { 0x7E, 8, CP_ECDSA_MAX, true, false },
	[PR_MAC] = { CP_TLV_MAC, CP_MAC_LEN, CP_MAC_LEN, true, true },
};

static CpError
profile_decode(const uint8_t *buf, size_t len, CpProfile *p, size_t *sig_offset,
	       size_t *mac_offset)
{
	CpTlvValue v[PR_N];
	CpProfile tmp;
	CpError err;

	err = check_envelope(buf, len, CP_PROFILE_VERSION);
	if (err)
		return err;
	err = cp_tlv_decode(buf, len, pr_fields, PR_N, v, NULL, NULL);
	if (err)
		return err;

	if (v[PR_VERSION].value[0] != CP_PROFILE_VERSION)
		return CP_ERR_VERSION;
	if (v[PR_OPERATION].value[0] < CP_OP_CLAIM || v[PR_OPERATION].value[0] > CP_OP_TRANSFER)
		return CP_ERR_BAD_VALUE;
	/* A transfer names the binding it replaces, and only a transfer. */
	if ((v[PR_OPERATION].value[0] == CP_OP_TRANSFER) != (v[PR_REPLACES].value != NULL))
		return v[PR_REPLACES].value ? CP_ERR_BAD_VALUE : CP_ERR_MISSING_FIELD;
	if (v[PR_REPLACES].value &&
	    cp_be64(v[PR_REPLACES].value) >= cp_be64(v[PR_BINDING_VERSION].value))
		return CP_ERR_BAD_VALUE;
	if (!suite_known(v[PR_ENC_CRED].value[0]))
		return CP_ERR_BAD_VALUE;
	if (v[PR_ENC_CRED].len != enc_cred_len(v[PR_ENC_CRED].value[0]))
		return CP_ERR_LENGTH;
	if (!cp_is_digits(v[PR_PLMN].value, v[PR_PLMN].len) ||
	    !cp_is_utf8(v[PR_NETWORK_NAME].value, v[PR_NETWORK_NAME].len) ||
	    !cp_is_digits(v[PR_SUPI].value, v[PR_SUPI].len) ||
	    !cp_is_printable_ascii(v[PR_APN].value, v[PR_APN].len))
		return CP_ERR_BAD_VALUE;
	if (v[PR_MSISDN].value && !cp_is_digits(v[PR_MSISDN].value, v[PR_MSISDN].len))
		return CP_ERR_BAD_VALUE;

	memset(&tmp, 0, sizeof tmp);
	tmp.version = v[PR_VERSION].value[0];
	memcpy(tmp.device_id, v[PR_DEVICE_ID].value, CP_DEVICE_ID_LEN);
	tmp.profile_seq = cp_be64(v[PR_PROFILE_SEQ].value);
	memcpy(tmp.nonce, v[PR_NONCE].value, CP_NONCE_LEN);
	if (v[PR_NOT_AFTER].value) {
		tmp.has_not_after = true;
		tmp.not_after = cp_be64(v[PR_NOT_AFTER].value);
	}
	tmp.operation = v[PR_OPERATION].value[0];
	tmp.binding_version = cp_be64(v[PR_BINDING_VERSION].value);
	if (v[PR_REPLACES].value) {
		tmp.has_replaces = true;
		tmp.replaces = cp_be64(v[PR_REPLACES].value);
	}
	memcpy(tmp.enc_cred, v[PR_ENC_CRED].value, v[PR_ENC_CRED].len);
	tmp.enc_cred_len = v[PR_ENC_CRED].len;
	copy_str(tmp.plmn, &v[PR_PLMN]);
	copy_str(tmp.network_name, &v[PR_NETWORK_NAME]);
	copy_str(tmp.supi, &v[PR_SUPI]);
	copy_str(tmp.apn, &v[PR_APN]);
	if (v[PR_MSISDN].value) {
		tmp.has_msisdn = true;
		copy_str(tmp.msisdn, &v[PR_MSISDN]);
	}
	memcpy(tmp.op_chain, v[PR_OP_CHAIN].value, v[PR_OP_CHAIN].len);
	tmp.op_chain_len = v[PR_OP_CHAIN].len;
	memcpy(tmp.op_signature, v[PR_OP_SIGNATURE].value, v[PR_OP_SIGNATURE].len);
	tmp.op_signature_len = v[PR_OP_SIGNATURE].len;
	memcpy(tmp.mac, v[PR_MAC].value, CP_MAC_LEN);
	if (sig_offset)
		*sig_offset = v[PR_OP_SIGNATURE].offset;
	if (mac_offset)
		*mac_offset = v[PR_MAC].offset;
	*p = tmp;
	return CP_OK;
}

CpError
cp_profile_decode(const uint8_t *buf, size_t len, CpProfile *p)
{
	if (!p)
		return CP_ERR_ARGUMENT;
	return profile_decode(buf, len, p, NULL, NULL);
}

static bool
supi_in_plmn(const CpProfile *p)
{
	return strncmp(p->supi, p->plmn, strlen(p->plmn)) == 0;
}

static CpError
decode_profile_scratch(const uint8_t *buf, size_t len, void *scratch)
{
	CpError err = cp_profile_decode(buf, len, scratch);

	if (!err && !supi_in_plmn(scratch))
		err = CP_ERR_SUPI_PLMN;
	return err;
}

CpError
cp_profile_encode(const CpProfile *p, CpKey *op_key, const CpSecret *k_prof, CpBuf *out)
{
	size_t start;
	CpProfile *check;
	CpError err;

	if (!p || !op_key || !k_prof || !out || out->failed || k_prof->len != CP_KDF_LEN)
		return CP_ERR_ARGUMENT;
	if (p->enc_cred_len > CP_ENC_CRED_MAX || p->op_chain_len > CP_CHAIN_MAX)
		return CP_ERR_LENGTH;
	/* A key that is not the chain's signing certificate's would make
	 * profiles that every device rejects. */
	err = cp_operator_chain_signer(p->op_chain, p->op_chain_len, op_key);
	if (err)
		return err;

	start = out->len;
	cp_tlv_put_u8(out, 0x01, CP_PROFILE_VERSION);
	cp_tlv_put(out, 0x02, p->device_id, CP_DEVICE_ID_LEN);
	cp_tlv_put_be64(out, 0x03, p->profile_seq);
	cp_tlv_put(out, 0x04, p->nonce, CP_NONCE_LEN);
	if (p->has_not_after)
		cp_tlv_put_be64(out, 0x05, p->not_after);
	cp_tlv_put_u8(out, 0x06, p->operation);
	cp_tlv_put_be64(out, 0x07, p->binding_version);
	if (p->has_replaces)
		cp_tlv_put_be64(out, 0x08, p->replaces);
	cp_tlv_put(out, 0x10, p->enc_cred, p->enc_cred_len);
	cp_tlv_put(out, 0x20, p->plmn, FIELD_STRLEN(p->plmn));
	cp_tlv_put(out, 0x21, p->network_name, FIELD_STRLEN(p->network_name));
	cp_tlv_put(out, 0x22, p->supi, FIELD_STRLEN(p->supi));
	cp_tlv_put(out, 0x23, p->apn, FIELD_STRLEN(p->apn));
	if (p->has_msisdn)
		cp_tlv_put(out, 0x24, p->msisdn, FIELD_STRLEN(p->msisdn));
	cp_tlv_put(out, 0x70, p->op_chain, p->op_chain_len);
	err = append_signature(out, start, op_key, 0x7E);
	if (!err)
		err = append_mac(out, start, k_prof);
	if (err)
		return err;
	check = malloc(sizeof *check);
	if (!check) {
		rollback(out, start);
		return CP_ERR_CRYPTO;
	}
	err = finish(out, start, decode_profile_scratch, check);
	cp_cleanse(check, sizeof *check);
	free(check);
	if (err)
		rollback(out, start);
	return err;
}

void
cp_profile_keys_clear(CpProfileKeys *keys)
{
	if (!keys)
		return;
	cp_secret_freep(&keys->k_prime);
	cp_secret_freep(&keys->opc);
	cp_secret_freep(&keys->k_usim);
	cp_secret_freep(&keys->k_sm);
	cp_secret_freep(&keys->k_prof);
	cp_secret_freep(&keys->k2);
}

static bool
suite_offered(const CpVerifyContext *ctx, uint8_t suite)
{
	for (size_t i = 0; i < ctx->n_suites; i++)
		if (ctx->suites[i] == suite)
			return true;
	return false;
}

typedef enum {
	VERIFY_STEP_DECODE,
	VERIFY_STEP_VERSION,
	VERIFY_STEP_DEVICE_ID,
	VERIFY_STEP_OPERATOR,
	VERIFY_STEP_OPERATOR_SIGNATURE,
	VERIFY_STEP_DECRYPT,
	VERIFY_STEP_DERIVE,
	VERIFY_STEP_MAC,
	VERIFY_STEP_SEQ,
	VERIFY_STEP_NOT_AFTER,
	VERIFY_STEP_SUPI_PLMN,
	VERIFY_STEP_BINDING,
	VERIFY_STEP_LAST,
} VerifyStep;

/* Whether the profile's operation fits the device's owner binding. */
static bool
binding_fits(const CpProfile *p, const CpVerifyContext *ctx)
{
	switch ((CpOperation)p->operation) {
	case CP_OP_CLAIM:
		/* Also the owner's own claim again, at the device's binding
		 * version: its SM cannot tell whether the device completed
		 * the binding (a failed attempt leaves none, a forgotten
		 * device keeps it). Another owner's binding has another
		 * version. */
		return !ctx->bound || p->binding_version == ctx->binding_version;
	case CP_OP_REPROVISION:
		return ctx->bound && p->binding_version == ctx->binding_version;
	case CP_OP_TRANSFER:
		/* Higher, not "the next": a device that missed a transfer while
		 * it was off still follows the operator to its current owner. */
		return ctx->bound && p->binding_version > ctx->binding_version;
	}
	return false;
}

/*
 * Keys stay in local variables until every check passed: on failure the
 * caller gets no credential at all, only K'' once the mac proved that the
 * SM made the profile (the rejection receipt needs it).
 */
CpError
cp_profile_verify(const uint8_t *buf, size_t len, const CpVerifyContext *ctx,
		  CpProfile *p, CpProfileKeys *keys)
{
	CpProfileKeys k = { 0 };
	bool mac_ok = false;
	uint8_t mac[CP_MAC_LEN];
	size_t mac_offset = 0, sig_offset = 0;
	CpKey *signer = NULL;
	CpProfile *tmp;
	CpError err = CP_OK;

	if (!ctx || !p || !keys || !ctx->device_id || !ctx->device_key ||
	    !ctx->device_info || !ctx->device_info_len || (!ctx->suites && ctx->n_suites))
		return CP_ERR_ARGUMENT;
	memset(keys, 0, sizeof *keys);
	tmp = calloc(1, sizeof *tmp);
	if (!tmp)
		return CP_ERR_CRYPTO;

	for (VerifyStep step = VERIFY_STEP_DECODE; step < VERIFY_STEP_LAST && !err; step++) {
		switch (step) {
		case VERIFY_STEP_DECODE:
			err = profile_decode(buf, len, tmp, &sig_offset, &mac_offset);
			break;
		case VERIFY_STEP_VERSION:
			if (tmp->version != CP_PROFILE_VERSION)
				err = CP_ERR_VERSION;
			break;
		case VERIFY_STEP_DEVICE_ID:
			if (memcmp(tmp->device_id, ctx->device_id, CP_DEVICE_ID_LEN) != 0)
				err = CP_ERR_WRONG_DEVICE;
			break;
		case VERIFY_STEP_OPERATOR:
			/* Before any work with the device key: a profile nobody
			 * trusted signed costs the device one chain check. */
			err = cp_operator_chain_verify(ctx->anchors, ctx->operator_pin,
					      tmp->op_chain, tmp->op_chain_len, &signer, &tmp->op);
			break;
		case VERIFY_STEP_OPERATOR_SIGNATURE:
			err = cp_ecdsa_verify(signer, buf, sig_offset, tmp->op_signature,
					      tmp->op_signature_len);
			if (err == CP_ERR_SIGNATURE)
				err = CP_ERR_OPERATOR_SIGNATURE;
			break;
		case VERIFY_STEP_DECRYPT:
			if (!suite_offered(ctx, tmp->enc_cred[0]))
				err = CP_ERR_SUITE;
			else
				err = cp_enc_cred_open(tmp->enc_cred, tmp->enc_cred_len,
						       ctx->device_key, &k.k_prime, &k.opc);
			break;
		case VERIFY_STEP_DERIVE:
			k.k_usim = cp_keys_k_usim(k.k_prime);
			k.k_sm = cp_keys_k_sm(k.k_prime, tmp->device_id);
			if (k.k_sm) {
				k.k_prof = cp_keys_k_prof(k.k_sm, tmp->nonce);
				k.k2 = cp_keys_k2(k.k_sm, tmp->nonce, ctx->device_info,
						  ctx->device_info_len);
			}
			if (!k.k_usim || !k.k_sm || !k.k_prof || !k.k2)
				err = CP_ERR_CRYPTO;
			break;
		case VERIFY_STEP_MAC:
			err = cp_hmac_sha256(k.k_prof->data, k.k_prof->len, buf, mac_offset, mac);
			if (!err && !cp_memeq_consttime(mac, tmp->mac, CP_MAC_LEN))
				err = CP_ERR_MAC;
			cp_cleanse(mac, sizeof mac);
			mac_ok = !err;
			break;
		case VERIFY_STEP_SEQ:
			if (tmp->profile_seq <= ctx->last_seq)
				err = CP_ERR_REPLAY;
			break;
		case VERIFY_STEP_NOT_AFTER:
			/* not_after is the last second the profile is valid. */
			if (tmp->has_not_after && ctx->now > tmp->not_after)
				err = CP_ERR_EXPIRED;
			break;
		case VERIFY_STEP_SUPI_PLMN:
			/* With the codes' numbering: the content of an authentic,
			 * fresh profile is checked for consistency. */
			if (!supi_in_plmn(tmp))
				err = CP_ERR_SUPI_PLMN;
			break;
		case VERIFY_STEP_BINDING:
			/* Behind the mac, so that the owner whose profile does not
			 * fit learns why from a receipt it can trust. */
			if (!binding_fits(tmp, ctx))
				err = CP_ERR_BINDING;
			break;
		case VERIFY_STEP_LAST:
			break;
		}
	}

	cp_key_free(signer);
	if (err) {
		if (mac_ok) {
			keys->k2 = k.k2;
			k.k2 = NULL;
		}
		cp_profile_keys_clear(&k);
	} else {
		*p = *tmp;
		*keys = k;
	}
	cp_cleanse(tmp, sizeof *tmp);
	free(tmp);
	return err;
}

/* ---- receipt ---- */

enum {
	RC_VERSION,
	RC_DEVICE_ID,
	RC_PROFILE_SEQ,
	RC_STATUS,
	RC_REASON,
	RC_REGISTRATION,
	RC_BINDING_VERSION,
	RC_DEVICE_SIGNATURE,
	RC_MAC,
	RC_N
};

static const CpTlvField rc_fields[RC_N] = {
	[RC_VERSION] = { 0x01, 1, 1, true, false },
	[RC_DEVICE_ID] = { 0x02, CP_DEVICE_ID_LEN, CP_DEVICE_ID_LEN, true, false },
	[RC_PROFILE_SEQ] = { 0x03, 8, 8, true, false },
	[RC_STATUS] = { 0x04, 1, 1, true, false },
	[RC_REASON] = { 0x05, 2, 2, true, false },
	[RC_REGISTRATION] = { 0x06, 5, 6, false, false },
	[RC_BINDING_VERSION] = { 0x07, 8, 8, true, false },
	[RC_DEVICE_SIGNATURE] = { 0x7E, 8, CP_ECDSA_MAX, true, false },
	[RC_MAC] = { CP_TLV_MAC, CP_MAC_LEN, CP_MAC_LEN, false, true },
};

static CpError
receipt_decode(const uint8_t *buf, size_t len, CpReceipt *r, size_t *mac_offset)
{
	CpTlvValue v[RC_N];
	CpReceipt tmp;
	CpError err;

	err = check_envelope(buf, len, CP_RECEIPT_VERSION);
	if (err)
		return err;
	err = cp_tlv_decode(buf, len, rc_fields, RC_N, v, NULL, NULL);
	if (err)
		return err;

	if (v[RC_VERSION].value[0] != CP_RECEIPT_VERSION)
		return CP_ERR_VERSION;
	if (v[RC_STATUS].value[0] > CP_RECEIPT_DECOMMISSIONED)
		return CP_ERR_BAD_VALUE;
	if (v[RC_REGISTRATION].value &&
	    !cp_is_digits(v[RC_REGISTRATION].value, v[RC_REGISTRATION].len))
		return CP_ERR_BAD_VALUE;

	memset(&tmp, 0, sizeof tmp);
	tmp.version = v[RC_VERSION].value[0];
	memcpy(tmp.device_id, v[RC_DEVICE_ID].value, CP_DEVICE_ID_LEN);
	tmp.profile_seq = cp_be64(v[RC_PROFILE_SEQ].value);
	tmp.status = v[RC_STATUS].value[0];
	tmp.reason = cp_be16(v[RC_REASON].value);
	if (v[RC_REGISTRATION].value) {
		tmp.has_registration = true;
		copy_str(tmp.registration, &v[RC_REGISTRATION]);
	}
	tmp.binding_version = cp_be64(v[RC_BINDING_VERSION].value);
	memcpy(tmp.device_signature, v[RC_DEVICE_SIGNATURE].value, v[RC_DEVICE_SIGNATURE].len);
	tmp.device_signature_len = v[RC_DEVICE_SIGNATURE].len;
	tmp.signed_len = v[RC_DEVICE_SIGNATURE].offset;
	if (v[RC_MAC].value) {
		tmp.has_mac = true;
		memcpy(tmp.mac, v[RC_MAC].value, CP_MAC_LEN);
		if (mac_offset)
			*mac_offset = v[RC_MAC].offset;
	}
	*r = tmp;
	return CP_OK;
}

CpError
cp_receipt_decode(const uint8_t *buf, size_t len, CpReceipt *r)
{
	if (!r)
		return CP_ERR_ARGUMENT;
	return receipt_decode(buf, len, r, NULL);
}

static CpError
decode_receipt_scratch(const uint8_t *buf, size_t len, void *scratch)
{
	return cp_receipt_decode(buf, len, scratch);
}

CpError
cp_receipt_encode(const CpReceipt *r, CpKey *device_key, const CpSecret *k2, CpBuf *out)
{
	size_t start;
	CpReceipt check;
	CpError err;

	if (!r || !device_key || !out || out->failed || (k2 && k2->len != CP_KDF_LEN))
		return CP_ERR_ARGUMENT;

	start = out->len;
	cp_tlv_put_u8(out, 0x01, CP_RECEIPT_VERSION);
	cp_tlv_put(out, 0x02, r->device_id, CP_DEVICE_ID_LEN);
	cp_tlv_put_be64(out, 0x03, r->profile_seq);
	cp_tlv_put_u8(out, 0x04, r->status);
	cp_tlv_put_be16(out, 0x05, r->reason);
	if (r->has_registration)
		cp_tlv_put(out, 0x06, r->registration, FIELD_STRLEN(r->registration));
	cp_tlv_put_be64(out, 0x07, r->binding_version);
	err = append_signature(out, start, device_key, 0x7E);
	if (!err && k2)
		err = append_mac(out, start, k2);
	if (err)
		return err;
	err = finish(out, start, decode_receipt_scratch, &check);
	if (err)
		rollback(out, start);
	return err;
}

CpError
cp_receipt_verify(const uint8_t *buf, size_t len, const CpSecret *k2, CpReceipt *r)
{
	uint8_t mac[CP_MAC_LEN];
	size_t mac_offset = 0;
	CpReceipt tmp;
	CpError err;

	/* As for encoding: an empty or short key would verify a mac anyone
	 * can compute. */
	if (!k2 || !r || k2->len != CP_KDF_LEN)
		return CP_ERR_ARGUMENT;
	err = receipt_decode(buf, len, &tmp, &mac_offset);
	if (err)
		return err;
	if (!tmp.has_mac)
		return CP_ERR_NO_MAC;
	err = cp_hmac_sha256(k2->data, k2->len, buf, mac_offset, mac);
	if (err)
		return err;
	if (!cp_memeq_consttime(mac, tmp.mac, CP_MAC_LEN))
		return CP_ERR_RECEIPT_MAC;
	*r = tmp;
	return CP_OK;
}

CpError
cp_receipt_verify_device(const uint8_t *buf, size_t len, CpKey *device_pub, CpReceipt *r)
{
	CpReceipt tmp;
	CpError err;

	if (!device_pub || !r)
		return CP_ERR_ARGUMENT;
	err = receipt_decode(buf, len, &tmp, NULL);
	if (err)
		return err;
	err = cp_ecdsa_verify(device_pub, buf, tmp.signed_len, tmp.device_signature,
			      tmp.device_signature_len);
	if (err)
		return err == CP_ERR_KEY ? CP_ERR_KEY : CP_ERR_SIGNATURE;
	*r = tmp;
	return CP_OK;
}

/* ---- command ---- */

enum {
	CM_VERSION,
	CM_DEVICE_ID,
	CM_SEQ,
	CM_NOT_AFTER,
	CM_COMMAND,
	CM_BINDING_VERSION,
	CM_OP_CHAIN,
	CM_OP_SIGNATURE,
	CM_N
};

static const CpTlvField cm_fields[CM_N] = {
	[CM_VERSION] = { 0x01, 1, 1, true, false },
	[CM_DEVICE_ID] = { 0x02, CP_DEVICE_ID_LEN, CP_DEVICE_ID_LEN, true, false },
	[CM_SEQ] = { 0x03, 8, 8, true, false },
	[CM_NOT_AFTER] = { 0x05, 8, 8, false, false },
	[CM_COMMAND] = { 0x06, 1, 1, true, false },
	[CM_BINDING_VERSION] = { 0x07, 8, 8, true, false },
	[CM_OP_CHAIN] = { 0x70, 1, CP_CHAIN_MAX, true, false },
	[CM_OP_SIGNATURE] = { 0x7E, 8, CP_ECDSA_MAX, true, true },
};

static CpError
command_decode(const uint8_t *buf, size_t len, CpCommand *c, size_t *sig_offset)
{
	CpTlvValue v[CM_N];
	CpCommand *tmp;
	CpError err;

	err = check_envelope(buf, len, CP_COMMAND_VERSION);
	if (err)
		return err;
	err = cp_tlv_decode(buf, len, cm_fields, CM_N, v, NULL, NULL);
	if (err)
		return err;
	if (v[CM_VERSION].value[0] != CP_COMMAND_VERSION)
		return CP_ERR_VERSION;
	if (v[CM_COMMAND].value[0] != CP_COMMAND_DECOMMISSION)
		return CP_ERR_BAD_VALUE;

	tmp = calloc(1, sizeof *tmp);
	if (!tmp)
		return CP_ERR_CRYPTO;
	tmp->version = v[CM_VERSION].value[0];
	memcpy(tmp->device_id, v[CM_DEVICE_ID].value, CP_DEVICE_ID_LEN);
	tmp->seq = cp_be64(v[CM_SEQ].value);
	if (v[CM_NOT_AFTER].value) {
		tmp->has_not_after = true;
		tmp->not_after = cp_be64(v[CM_NOT_AFTER].value);
	}
	tmp->command = v[CM_COMMAND].value[0];
	tmp->binding_version = cp_be64(v[CM_BINDING_VERSION].value);
	memcpy(tmp->op_chain, v[CM_OP_CHAIN].value, v[CM_OP_CHAIN].len);
	tmp->op_chain_len = v[CM_OP_CHAIN].len;
	memcpy(tmp->op_signature, v[CM_OP_SIGNATURE].value, v[CM_OP_SIGNATURE].len);
	tmp->op_signature_len = v[CM_OP_SIGNATURE].len;
	if (sig_offset)
		*sig_offset = v[CM_OP_SIGNATURE].offset;
	*c = *tmp;
	free(tmp);
	return CP_OK;
}

CpError
cp_command_decode(const uint8_t *buf, size_t len, CpCommand *c)
{
	if (!c)
		return CP_ERR_ARGUMENT;
	return command_decode(buf, len, c, NULL);
}

static CpError
decode_command_scratch(const uint8_t *buf, size_t len, void *scratch)
{
	return cp_command_decode(buf, len, scratch);
}

CpError
cp_command_encode(const CpCommand *c, CpKey *op_key, CpBuf *out)
{
	size_t start;
	CpCommand *check;
	CpError err;

	if (!c || !op_key || !out || out->failed)
		return CP_ERR_ARGUMENT;
	if (c->op_chain_len > CP_CHAIN_MAX)
		return CP_ERR_LENGTH;
	err = cp_operator_chain_signer(c->op_chain, c->op_chain_len, op_key);
	if (err)
		return err;

	start = out->len;
	cp_tlv_put_u8(out, 0x01, CP_COMMAND_VERSION);
	cp_tlv_put(out, 0x02, c->device_id, CP_DEVICE_ID_LEN);
	cp_tlv_put_be64(out, 0x03, c->seq);
	if (c->has_not_after)
		cp_tlv_put_be64(out, 0x05, c->not_after);
	cp_tlv_put_u8(out, 0x06, c->command);
	cp_tlv_put_be64(out, 0x07, c->binding_version);
	cp_tlv_put(out, 0x70, c->op_chain, c->op_chain_len);
	err = append_signature(out, start, op_key, 0x7E);
	if (err)
		return err;
	check = malloc(sizeof *check);
	if (!check) {
		rollback(out, start);
		return CP_ERR_CRYPTO;
	}
	err = finish(out, start, decode_command_scratch, check);
	free(check);
	if (err)
		rollback(out, start);
	return err;
}

CpError
cp_command_verify(const uint8_t *buf, size_t len, const CpVerifyContext *ctx, CpCommand *c)
{
	CpKey *signer = NULL;
	size_t sig_offset = 0;
	CpCommand *cm;
	CpError err;

	if (!ctx || !c || !ctx->device_id)
		return CP_ERR_ARGUMENT;
	cm = calloc(1, sizeof *cm);
	if (!cm)
		return CP_ERR_CRYPTO;
	/* The profile's order, without the work with the device key. */
	err = command_decode(buf, len, cm, &sig_offset);
	if (!err && cm->version != CP_COMMAND_VERSION)
		err = CP_ERR_VERSION;
	if (!err && memcmp(cm->device_id, ctx->device_id, CP_DEVICE_ID_LEN) != 0)
		err = CP_ERR_WRONG_DEVICE;
	if (!err)
		err = cp_operator_chain_verify(ctx->anchors, ctx->operator_pin, cm->op_chain,
					       cm->op_chain_len, &signer, &cm->op);
	if (!err) {
		err = cp_ecdsa_verify(signer, buf, sig_offset, cm->op_signature, cm->op_signature_len);
		if (err == CP_ERR_SIGNATURE)
			err = CP_ERR_OPERATOR_SIGNATURE;
	}
	if (!err && cm->seq <= ctx->last_seq)
		err = CP_ERR_REPLAY;
	if (!err && cm->has_not_after && ctx->now > cm->not_after)
		err = CP_ERR_EXPIRED;
	/* A command acts on the device's binding: the operator names it. */
	if (!err && (!ctx->bound || cm->binding_version != ctx->binding_version))
		err = CP_ERR_BINDING;
	cp_key_free(signer);
	if (!err)
		*c = *cm;
	free(cm);
	return err;
}
