/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fixed inputs and the derivation of cellprov's published vectors: the
 * device side of the flow (identity, device record), the AUSF's and SM's
 * side (K', K_usim, OPc, K_SM, enc_cred, K'', K_prof, profile), and the
 * device's receipt. Every value printed is also recomputed by the test
 * that checks the published file.
 */
#include "cp-tool-vectors.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cellprov.h"

/* Fixed inputs. Arbitrary, but never to be changed: others check against them. */
#define V_DEVICE_PRIVKEY "5e2b6f1c9a3d48e07c11b2a94f6d3e58c0a7b19f2e4d6c8a1b3f5e7092d4c6a8"
#define V_EPH_PRIVKEY    "7a0f3c5e9b1d2f4a6c8e0b2d4f6a8c0e1f3b5d7a9c2e4f6b8d0a1c3e5f7b9d2a"
#define V_K_C            "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
#define V_OP             "cdc202d5123e20f62b6d676ac72cb318"
#define V_NONCE          "a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define V_ATT_RANDOM     "00112233445566778899aabbccddeeff"
#define V_SUPI           "001010000000001"
#define V_PLMN           "00101"
#define V_NETWORK_NAME   "cellprov test network"
#define V_APN            "iot.cellprov.test"
#define V_MSISDN         "1234567890"
#define V_URL_BASE       "https://certs.example.net/devices/"
#define V_MANUFACTURER   "Example Devices Ltd"
#define V_MODEL          "GW-1"
#define V_SERIAL         "SN-000001"
#define V_ATT_COUNTER    1
#define V_PROFILE_SEQ    1
#define V_NOT_AFTER      1893456000      /* 2030-01-01T00:00:00Z */
#define V_OP_ROOT_PRIVKEY "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe"
#define V_OP_SM_PRIVKEY   "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
#define V_OP_NAME        "Example Operator"
#define V_OP_NOT_BEFORE  1700000000      /* 2023-11-14T22:13:20Z */
#define V_BINDING_VERSION 1

static FILE *say;

static void __attribute__((format(printf, 1, 2)))
step(const char *fmt, ...)
{
	va_list ap;

	if (!say)
		return;
	va_start(ap, fmt);
	vfprintf(say, fmt, ap);
	va_end(ap);
	fputc('\n', say);
}

static void
hex_line(FILE *out, const char *name, const uint8_t *data, size_t len)
{
	fprintf(out, "%s = ", name);
	for (size_t i = 0; i < len; i++)
		fprintf(out, "%02x", data[i]);
	fputc('\n', out);
}

static CpSecret *
fixed(const char *hex)
{
	return cp_secret_new_from_hex(hex, 0);
}

/* The operator's root and the SM's signing certificate, made afresh or
 * taken from the published file after checking that each certifies the
 * fixed key it should, issued as it should. */
static CpError
operator_chain(CpKey *root_key, CpKey *sm_key, const CpToolVectorsPublished *pub,
	       uint8_t *root, size_t *root_len, uint8_t *chain, size_t *chain_len)
{
	uint8_t sm[CP_CHAIN_MAX];
	size_t sm_len = 0;
	CpOperatorId id;
	CpAnchors *anchors = NULL;
	CpKey *signer = NULL;
	char *pem;
	CpError err;

	if (pub && pub->op_root_cert && pub->op_sm_cert) {
		if (pub->op_root_cert_len > CP_CHAIN_MAX || pub->op_sm_cert_len > CP_CHAIN_MAX)
			return CP_ERR_LENGTH;
		memcpy(root, pub->op_root_cert, pub->op_root_cert_len);
		*root_len = pub->op_root_cert_len;
		memcpy(sm, pub->op_sm_cert, pub->op_sm_cert_len);
		sm_len = pub->op_sm_cert_len;
	} else if ((err = cp_cert_make(root_key, V_OP_NAME, "operator root", true, root_key, NULL, 0,
				       1, V_OP_NOT_BEFORE, 3650, root, root_len)) ||
		   (err = cp_cert_make(sm_key, V_OP_NAME, "subscription manager", false, root_key,
				       root, *root_len, 2, V_OP_NOT_BEFORE, 3650, sm, &sm_len))) {
		return err;
	}
	if (sm_len + *root_len > CP_CHAIN_MAX)
		return CP_ERR_LENGTH;
	memcpy(chain, sm, sm_len);
	memcpy(chain + sm_len, root, *root_len);
	*chain_len = sm_len + *root_len;
	/* The root is the anchor, the SM's certificate holds the SM's key,
	 * and the root's certificate the root's key. */
	pem = cp_cert_to_pem(root, *root_len);
	err = pem ? cp_anchors_from_pem(pem, strlen(pem), &anchors) : CP_ERR_KEY;
	if (!err)
		err = cp_operator_chain_verify(anchors, NULL, chain, *chain_len, &signer, &id);
	if (!err)
		err = cp_operator_chain_signer(chain, *chain_len, sm_key);
	if (!err)
		err = cp_operator_chain_signer(root, *root_len, root_key) == CP_OK ? CP_OK : CP_ERR_KEY;
	cp_key_free(signer);
	cp_anchors_free(anchors);
	free(pem);
	return err;
}

/* Put a published signature (tag 0x7E) in place of the fresh one of a
 * structure made by key, and MAC again with mac_key if there is one. */
static CpError
with_signature(CpBuf *prof, CpKey *sm_key, const CpSecret *k_prof,
	       const uint8_t *sig, size_t sig_len)
{
	uint8_t mac[CP_MAC_LEN];
	size_t at = 0;
	CpError err;

	/* The signed bytes end where tag 0x7E begins: walk the TLVs. */
	while (at + CP_TLV_HDR <= prof->len && prof->data[at] != 0x7E)
		at += CP_TLV_HDR + cp_be16(prof->data + at + 1);
	if (at + CP_TLV_HDR > prof->len)
		return CP_ERR_MISSING_FIELD;
	if ((err = cp_ecdsa_verify(sm_key, prof->data, at, sig, sig_len)))
		return err;
	prof->len = at;
	cp_tlv_put(prof, 0x7E, sig, sig_len);
	if (prof->failed)
		return CP_ERR_CRYPTO;
	if (!k_prof)
		return CP_OK;
	if ((err = cp_hmac_sha256(k_prof->data, k_prof->len, prof->data, prof->len, mac)))
		return err;
	cp_tlv_put(prof, CP_TLV_MAC, mac, sizeof mac);
	return prof->failed ? CP_ERR_CRYPTO : CP_OK;
}

CpError
cp_tool_vectors(FILE *out, FILE *explain, const CpToolVectorsPublished *published)
{
	const uint8_t *sig = published ? published->att_signature : NULL;
	size_t sig_len = published ? published->att_signature_len : 0;
	cp_auto_secret *op_root_raw = fixed(V_OP_ROOT_PRIVKEY), *op_sm_raw = fixed(V_OP_SM_PRIVKEY);
	uint8_t op_root[CP_CHAIN_MAX], op_chain[CP_CHAIN_MAX], op_pin[CP_SHA256_LEN];
	size_t op_root_len = 0, op_chain_len = 0;
	CpKey *op_root_key = NULL, *op_sm_key = NULL;
	cp_auto_secret *dev_priv = fixed(V_DEVICE_PRIVKEY), *eph_priv_raw = fixed(V_EPH_PRIVKEY),
		*k_c = fixed(V_K_C), *op = fixed(V_OP), *kp = NULL, *k_usim = NULL, *opc = NULL,
		*k_sm = NULL, *k2 = NULL, *k_prof = NULL;
	cp_auto_buf dr_buf = CP_BUF_INIT, info = CP_BUF_INIT, prof_buf = CP_BUF_INIT,
		rc_buf = CP_BUF_INIT, tag = CP_BUF_INIT, prof_ndef = CP_BUF_INIT, cmd_buf = CP_BUF_INIT;
	uint8_t nonce[CP_NONCE_LEN], pub[33], info_hash[32], cc[CP_T4T_CC_LEN];
	CpKey *dev = NULL, *eph = NULL;
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	char url[128];
	CpDeviceRecord dr = { 0 };
	CpProfile p = { 0 };
	CpReceipt r = { 0 };
	CpNdefMessage msg = { 0 };
	CpT4tCc t4t;
	CpError err = CP_ERR_CRYPTO;

	say = explain;
	if (!dev_priv || !eph_priv_raw || !k_c || !op || !op_root_raw || !op_sm_raw)
		goto out;
	cp_hex_decode(V_NONCE, nonce, sizeof nonce);

	/* Manufacturing: the device key, its DeviceID and certificate URL. */
	dev = cp_p256_from_private(dev_priv->data);
	eph = cp_p256_from_private(eph_priv_raw->data);
	if (!dev || !eph || cp_p256_public_compressed(dev, pub) ||
	    !(spki = cp_pubkey_spki(dev, &spki_len)))
		goto out;
	dr.version = CP_DEVICE_RECORD_VERSION;
	if ((err = cp_device_id(dev, dr.device_id)))
		goto out;
	{
		char id_hex[2 * CP_DEVICE_ID_LEN + 1];

		cp_hex_encode(dr.device_id, CP_DEVICE_ID_LEN, id_hex);
		snprintf(url, sizeof url, "%s%s", V_URL_BASE, id_hex);
	}
	step("manufacturing: device key made; DeviceID = SHA-256(SPKI)[0..15]; certificate URL %s", url);

	/* Step 1: the device record the companion reads from the tag. */
	snprintf(dr.manufacturer, sizeof dr.manufacturer, "%s", V_MANUFACTURER);
	snprintf(dr.model, sizeof dr.model, "%s", V_MODEL);
	snprintf(dr.serial, sizeof dr.serial, "%s", V_SERIAL);
	dr.suites[0] = CP_SUITE_B;
	dr.n_suites = 1;
	dr.state = CP_DEVICE_UNPROVISIONED;
	dr.att_counter = V_ATT_COUNTER;
	cp_hex_decode(V_ATT_RANDOM, dr.att_random, sizeof dr.att_random);
	if ((err = cp_device_record_encode(&dr, dev, &dr_buf)))
		goto out;
	if (sig) {
		/* Reuse a published signature: it must sign exactly these bytes. */
		CpDeviceRecord chk;
		size_t signed_len;

		if ((err = cp_device_record_decode(dr_buf.data, dr_buf.len, &chk)))
			goto out;
		signed_len = chk.signed_len;
		if ((err = cp_ecdsa_verify(dev, dr_buf.data, signed_len, sig, sig_len)))
			goto out;
		dr_buf.len = signed_len;
		cp_tlv_put(&dr_buf, 0x0A, sig, sig_len);
		if (dr_buf.failed) {
			err = CP_ERR_CRYPTO;
			goto out;
		}
	}
	if ((err = cp_device_record_verify(dr_buf.data, dr_buf.len, dev, &dr)))
		goto out;
	if ((err = cp_device_record_info(&dr, &info)))
		goto out;
	cp_sha256(info.data, info.len, info_hash);
	step("step 1: device record of %zu bytes, attestation counter %d, signed by the device key",
	     dr_buf.len, V_ATT_COUNTER);
	if ((err = cp_tag_build(url, dr_buf.data, dr_buf.len, NULL, 0, &tag)))
		goto out;
	step("step 1: NDEF message on the tag: URI record + device record, %zu bytes", tag.len);
	step("steps 2-4: the SM fetches the chain at the URL, verifies it, checks the DeviceID and the signature");

	/* Steps 5-6: the AUSF/UDM. */
	kp = cp_keys_k_prime(k_c, dr.device_id, V_SUPI);
	k_usim = kp ? cp_keys_k_usim(kp) : NULL;
	opc = k_usim ? cp_keys_opc(k_usim, op) : NULL;
	k_sm = kp ? cp_keys_k_sm(kp, dr.device_id) : NULL;
	if (!kp || !k_usim || !opc || !k_sm) {
		err = CP_ERR_CRYPTO;
		goto out;
	}
	step("steps 5-6: AUSF assigns SUPI %s, derives K', K_usim, OPc, K_SM", V_SUPI);
	p.enc_cred_len = sizeof p.enc_cred;
	if ((err = cp_enc_cred_seal(CP_SUITE_B, dev, eph, kp, opc, p.enc_cred, &p.enc_cred_len)))
		goto out;
	step("step 6: K' || OPc encrypted to the device key with ECIES profile B (%zu bytes)", p.enc_cred_len);

	/* The operator: its root and the SM's signing certificate. */
	op_root_key = cp_p256_from_private(op_root_raw->data);
	op_sm_key = cp_p256_from_private(op_sm_raw->data);
	if (!op_root_key || !op_sm_key) {
		err = CP_ERR_CRYPTO;
		goto out;
	}
	if ((err = operator_chain(op_root_key, op_sm_key, published, op_root, &op_root_len,
				  op_chain, &op_chain_len)))
		goto out;
	{
		uint8_t *root_spki;
		size_t root_spki_len = 0;

		if (!(root_spki = cp_pubkey_spki(op_root_key, &root_spki_len))) {
			err = CP_ERR_CRYPTO;
			goto out;
		}
		cp_sha256(root_spki, root_spki_len, op_pin);
		free(root_spki);
	}
	step("operator: root certificate (%zu bytes) and the SM's signing certificate; op_chain %zu bytes",
	     op_root_len, op_chain_len);

	/* Step 7-8: the SM. */
	k2 = cp_keys_k2(k_sm, nonce, info.data, info.len);
	k_prof = cp_keys_k_prof(k_sm, nonce);
	if (!k2 || !k_prof) {
		err = CP_ERR_CRYPTO;
		goto out;
	}
	p.version = CP_PROFILE_VERSION;
	memcpy(p.device_id, dr.device_id, CP_DEVICE_ID_LEN);
	p.profile_seq = V_PROFILE_SEQ;
	p.operation = CP_OP_CLAIM;
	p.binding_version = V_BINDING_VERSION;
	memcpy(p.op_chain, op_chain, op_chain_len);
	p.op_chain_len = op_chain_len;
	memcpy(p.nonce, nonce, sizeof nonce);
	p.has_not_after = true;
	p.not_after = V_NOT_AFTER;
	snprintf(p.plmn, sizeof p.plmn, "%s", V_PLMN);
	snprintf(p.network_name, sizeof p.network_name, "%s", V_NETWORK_NAME);
	snprintf(p.supi, sizeof p.supi, "%s", V_SUPI);
	snprintf(p.apn, sizeof p.apn, "%s", V_APN);
	p.has_msisdn = true;
	snprintf(p.msisdn, sizeof p.msisdn, "%s", V_MSISDN);
	if ((err = cp_profile_encode(&p, op_sm_key, k_prof, &prof_buf)))
		goto out;
	if (published && published->op_signature &&
	    (err = with_signature(&prof_buf, op_sm_key, k_prof, published->op_signature,
					  published->op_signature_len)))
		goto out;
	step("steps 7-8: SM picks the nonce, derives K'' and K_prof, builds a %zu-byte profile "
	     "(operation claim, binding version %d), signs it with its key and MACs it with K_prof",
	     prof_buf.len, V_BINDING_VERSION);
	cp_ndef_record_mime(&msg.records[0], CP_MIME_PROFILE, prof_buf.data, prof_buf.len);
	msg.n_records = 1;
	if ((err = cp_ndef_encode(&msg, &prof_ndef)))
		goto out;
	step("step 9: the companion writes the profile NDEF message (%zu bytes) and keeps K''", prof_ndef.len);

	/* Step 10: the device verifies as it would on a real write. */
	{
		uint8_t suites[] = { CP_SUITE_B };
		CpVerifyContext ctx = {
			.device_id = dr.device_id, .device_key = dev, .suites = suites, .n_suites = 1,
			.last_seq = 0, .now = V_NOT_AFTER - 1,
			.device_info = info.data, .device_info_len = info.len,
			.anchors = NULL,        /* trust on first use: the chain ends in its root */
		};
		CpProfileKeys keys = { 0 };
		CpProfile got;

		err = cp_profile_verify(prof_buf.data, prof_buf.len, &ctx, &got, &keys);
		if (!err && (!cp_secret_equal(keys.k2, k2) || !cp_secret_equal(keys.k_usim, k_usim) ||
			     !cp_secret_equal(keys.opc, opc) ||
			     memcmp(got.op.root, op_pin, sizeof op_pin) != 0))
			err = CP_ERR_MAC;
		if (!err)
			memcpy(p.op_signature, got.op_signature, got.op_signature_len);
		p.op_signature_len = err ? 0 : got.op_signature_len;
		cp_profile_keys_clear(&keys);
		if (err)
			goto out;
		step("step 10: device verified the profile (version, device_id, the operator's chain and signature, "
		     "ECIES MAC, mac, profile_seq, not_after, binding), decrypted K' and OPc, derived K_usim and K''; "
		     "it pins the operator's root");
	}
	r.version = CP_RECEIPT_VERSION;
	memcpy(r.device_id, dr.device_id, CP_DEVICE_ID_LEN);
	r.profile_seq = V_PROFILE_SEQ;
	r.status = CP_RECEIPT_PROVISIONED;
	r.reason = CP_OK;
	r.has_registration = true;
	snprintf(r.registration, sizeof r.registration, "%s", V_PLMN);
	r.binding_version = V_BINDING_VERSION;
	if ((err = cp_receipt_encode(&r, dev, k2, &rc_buf)))
		goto out;
	if (published && published->receipt_signature &&
	    (err = with_signature(&rc_buf, dev, k2, published->receipt_signature,
				  published->receipt_signature_len)))
		goto out;
	if ((err = cp_receipt_verify(rc_buf.data, rc_buf.len, k2, &r)) ||
	    (err = cp_receipt_verify_device(rc_buf.data, rc_buf.len, dev, &r)))
		goto out;
	step("step 10: receipt 'provisioned and registered on %s', signed by the device key and MAC'd with K''; "
	     "the companion verifies the mac, the SM the signature", V_PLMN);

	/* Later: the owner has the device decommissioned; the SM signs the
	 * command with the next sequence number. */
	{
		CpCommand *c = calloc(1, sizeof *c);
		uint8_t pin_dev[CP_SHA256_LEN];
		uint8_t suites[] = { CP_SUITE_B };
		CpVerifyContext ctx = {
			.device_id = dr.device_id, .device_key = dev, .suites = suites, .n_suites = 1,
			.last_seq = V_PROFILE_SEQ, .now = V_NOT_AFTER - 1,
			.device_info = info.data, .device_info_len = info.len,
			.operator_pin = pin_dev, .bound = true, .binding_version = V_BINDING_VERSION,
		};

		if (!c) {
			err = CP_ERR_CRYPTO;
			goto out;
		}
		memcpy(pin_dev, op_pin, sizeof pin_dev);
		memcpy(c->device_id, dr.device_id, CP_DEVICE_ID_LEN);
		c->seq = V_PROFILE_SEQ + 1;
		c->has_not_after = true;
		c->not_after = V_NOT_AFTER;
		c->command = CP_COMMAND_DECOMMISSION;
		c->binding_version = V_BINDING_VERSION;
		memcpy(c->op_chain, op_chain, op_chain_len);
		c->op_chain_len = op_chain_len;
		err = cp_command_encode(c, op_sm_key, &cmd_buf);
		if (!err && published && published->command_signature)
			err = with_signature(&cmd_buf, op_sm_key, NULL, published->command_signature,
					     published->command_signature_len);
		if (!err)
			err = cp_command_verify(cmd_buf.data, cmd_buf.len, &ctx, c);
		free(c);
		if (err)
			goto out;
		step("lifecycle: a decommission command (%zu bytes), seq %d, binding version %d, signed by the SM; "
		     "the device verifies it as it verifies a profile", cmd_buf.len, V_PROFILE_SEQ + 1,
		     V_BINDING_VERSION);
	}
	cp_t4t_cc_default(&t4t);
	cp_t4t_cc_encode(&t4t, cc);

	fprintf(out,
		"# cellprov protocol version 2: published test vectors.\n"
		"# Made by `cellprov-tool vectors`; checked by tests/tools/test-vectors.\n"
		"# Format as in the 3GPP vector files: 'name = value', hex unless the name\n"
		"# ends in _text (ASCII) or is a decimal number (_dec). Inputs first, then\n"
		"# every key of the schedule and the exact bytes of each structure.\n"
		"# ECDSA signatures are randomised: an implementation reproduces every byte\n"
		"# except att_signature, op_signature, receipt_signature, command_signature\n"
		"# and the two certificates' signatures, which it verifies instead.\n\n");
	fprintf(out, "# inputs\n");
	hex_line(out, "device_privkey", dev_priv->data, dev_priv->len);
	hex_line(out, "device_pubkey", pub, sizeof pub);
	hex_line(out, "device_spki", spki, spki_len);
	hex_line(out, "device_id", dr.device_id, CP_DEVICE_ID_LEN);
	fprintf(out, "certificate_url_text = %s\n", url);
	hex_line(out, "k_c", k_c->data, k_c->len);
	fprintf(out, "supi_text = %s\n", V_SUPI);
	hex_line(out, "op", op->data, op->len);
	hex_line(out, "nonce", nonce, sizeof nonce);
	hex_line(out, "eph_privkey", eph_priv_raw->data, eph_priv_raw->len);
	hex_line(out, "att_random", dr.att_random, sizeof dr.att_random);
	fprintf(out, "att_counter_dec = %d\nprofile_seq_dec = %d\nnot_after_dec = %d\n",
		V_ATT_COUNTER, V_PROFILE_SEQ, V_NOT_AFTER);
	fprintf(out, "operation_dec = %d\nbinding_version_dec = %d\n", CP_OP_CLAIM, V_BINDING_VERSION);
	hex_line(out, "op_root_privkey", op_root_raw->data, op_root_raw->len);
	hex_line(out, "op_sm_privkey", op_sm_raw->data, op_sm_raw->len);
	fprintf(out, "op_name_text = %s\n", V_OP_NAME);
	fprintf(out, "\n# key schedule\n");
	hex_line(out, "k_prime", kp->data, kp->len);
	hex_line(out, "k_usim", k_usim->data, k_usim->len);
	hex_line(out, "opc", opc->data, opc->len);
	hex_line(out, "k_sm", k_sm->data, k_sm->len);
	hex_line(out, "device_info", info.data, info.len);
	hex_line(out, "device_info_sha256", info_hash, sizeof info_hash);
	hex_line(out, "k2", k2->data, k2->len);
	hex_line(out, "k_prof", k_prof->data, k_prof->len);
	fprintf(out, "\n# the operator\n");
	hex_line(out, "op_root_cert", op_root, op_root_len);
	hex_line(out, "op_sm_cert", op_chain, op_chain_len - op_root_len);
	hex_line(out, "op_chain", op_chain, op_chain_len);
	hex_line(out, "op_root_spki_sha256", op_pin, sizeof op_pin);
	fprintf(out, "\n# structures\n");
	hex_line(out, "att_signature", dr.att_signature, dr.att_signature_len);
	hex_line(out, "device_record", dr_buf.data, dr_buf.len);
	hex_line(out, "enc_cred", p.enc_cred, p.enc_cred_len);
	hex_line(out, "op_signature", p.op_signature, p.op_signature_len);
	hex_line(out, "profile", prof_buf.data, prof_buf.len);
	{
		CpReceipt rr;
		CpCommand *cm = malloc(sizeof *cm);

		cp_receipt_decode(rc_buf.data, rc_buf.len, &rr);
		hex_line(out, "receipt_signature", rr.device_signature, rr.device_signature_len);
		hex_line(out, "receipt", rc_buf.data, rc_buf.len);
		if (cm && cp_command_decode(cmd_buf.data, cmd_buf.len, cm) == CP_OK)
			hex_line(out, "command_signature", cm->op_signature, cm->op_signature_len);
		free(cm);
		hex_line(out, "command", cmd_buf.data, cmd_buf.len);
	}
	hex_line(out, "ndef_tag", tag.data, tag.len);
	hex_line(out, "ndef_profile", prof_ndef.data, prof_ndef.len);
	hex_line(out, "t4t_cc", cc, sizeof cc);
	err = CP_OK;
out:
	if (spki)
		free(spki);
	cp_key_free(dev);
	cp_key_free(eph);
	cp_key_free(op_root_key);
	cp_key_free(op_sm_key);
	return err;
}
