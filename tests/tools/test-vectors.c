/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checks docs/test-vectors/cellprov-v2.txt: every key of the schedule is
 * recomputed here with OpenSSL directly (HMAC, AES, SHA-256), not through
 * the library's KDF, so a mistake in cp_kdf or cp_keys shows; the
 * operator's chain and signature are checked; the structures are verified
 * as the device and the companion verify them, and refused when any bit
 * of what protects them changes; and `cellprov-tool vectors`, fed the
 * published signatures and certificates, must write the file byte for
 * byte.
 *
 * Built a second time on cellprovd's library when that is on Mbed TLS
 * (CP_TEST_DEVICE_CRYPTO): the same checks of the device's side, OpenSSL
 * then only the reference; the tool's part is the OpenSSL build's.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#ifndef CP_TEST_DEVICE_CRYPTO
#include "cp-tool-vectors.h"
#endif
#include "cellprov.h"
#include "cp-test.h"

static CpTestBlock vec;

static size_t
get(const char *name, uint8_t *out, size_t cap)
{
	const char *hex = cp_test_block_get(&vec, name);

	if (!hex) {
		fprintf(stderr, "vector file lacks %s\n", name);
		exit(1);
	}
	return cp_test_unhex(hex, out, cap);
}

static const char *
text(const char *name)
{
	const char *v = cp_test_block_get(&vec, name);

	if (!v) {
		fprintf(stderr, "vector file lacks %s\n", name);
		exit(1);
	}
	return v;
}

/* TS 33.220 B.2, spelled out: FC || P0 || L0 || P1 || L1 ... */
static void
kdf_direct(const uint8_t *key, size_t klen, uint8_t fc,
	   const uint8_t *p0, size_t l0, const uint8_t *p1, size_t l1, uint8_t out[32])
{
	uint8_t s[1024];
	size_t n = 0;
	unsigned int olen = 32;

	s[n++] = fc;
	memcpy(s + n, p0, l0);
	n += l0;
	s[n++] = (uint8_t)(l0 >> 8);
	s[n++] = (uint8_t)l0;
	if (p1) {
		memcpy(s + n, p1, l1);
		n += l1;
		s[n++] = (uint8_t)(l1 >> 8);
		s[n++] = (uint8_t)l1;
	}
	HMAC(EVP_sha256(), key, (int)klen, s, n, out, &olen);
}

/* The key as OpenSSL reads it from the library's SubjectPublicKeyInfo:
 * the signatures are checked by another implementation than the one
 * that made them. */
static EVP_PKEY *
reference_key(CpKey *key)
{
	size_t len = 0;
	uint8_t *spki = cp_pubkey_spki(key, &len);
	const unsigned char *p = spki;
	EVP_PKEY *k = spki ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;

	free(spki);
	return k;
}

static bool
reference_verify(CpKey *key, const uint8_t *sig, size_t sig_len, const uint8_t *msg, size_t len)
{
	EVP_PKEY *k = reference_key(key);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = k && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
		  EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;

	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return ok;
}

static void
check_keys(void)
{
	uint8_t kc[32], id[16], op[16], nonce[16], info[512], out[32], want[32], tmp[32];
	uint8_t kp[32], ksm[32], block[16], opc[16], h[32];
	const char *supi = text("supi_text");
	size_t info_len = get("device_info", info, sizeof info);
	unsigned int hl = 32;
	int outl = 0;
	EVP_CIPHER_CTX *c;

	get("k_c", kc, 32);
	get("device_id", id, 16);
	get("op", op, 16);
	get("nonce", nonce, 16);

	kdf_direct(kc, 32, 0xF0, id, 16, (const uint8_t *)supi, strlen(supi), kp);
	get("k_prime", want, 32);
	CP_CHECK(memcmp(kp, want, 32) == 0);

	kdf_direct(kp, 32, 0xF4, (const uint8_t *)"usim-k", 6, NULL, 0, tmp);
	get("k_usim", want, 16);
	CP_CHECK(memcmp(tmp, want, 16) == 0);

	/* OPc = AES_K(OP) xor OP */
	c = EVP_CIPHER_CTX_new();
	EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, tmp, NULL);
	EVP_CIPHER_CTX_set_padding(c, 0);
	EVP_EncryptUpdate(c, block, &outl, op, 16);
	EVP_CIPHER_CTX_free(c);
	for (int i = 0; i < 16; i++)
		opc[i] = block[i] ^ op[i];
	get("opc", want, 16);
	CP_CHECK(memcmp(opc, want, 16) == 0);

	kdf_direct(kp, 32, 0xF1, id, 16, NULL, 0, ksm);
	get("k_sm", want, 32);
	CP_CHECK(memcmp(ksm, want, 32) == 0);

	EVP_Digest(info, info_len, h, &hl, EVP_sha256(), NULL);
	get("device_info_sha256", want, 32);
	CP_CHECK(memcmp(h, want, 32) == 0);
	kdf_direct(ksm, 32, 0xF2, nonce, 16, h, 32, out);
	get("k2", want, 32);
	CP_CHECK(memcmp(out, want, 32) == 0);

	kdf_direct(ksm, 32, 0xF3, nonce, 16, NULL, 0, out);
	get("k_prof", want, 32);
	CP_CHECK(memcmp(out, want, 32) == 0);
}

static void
check_identity(CpKey *dev)
{
	uint8_t pub[33], want[128], h[32];
	uint8_t *spki;
	size_t spki_len, n;
	unsigned int hl = 32;

	CP_CHECK(cp_p256_public_compressed(dev, pub) == CP_OK);
	get("device_pubkey", want, sizeof want);
	CP_CHECK(memcmp(pub, want, 33) == 0);

	spki = cp_pubkey_spki(dev, &spki_len);
	n = get("device_spki", want, sizeof want);
	CP_CHECK(spki && n == spki_len && memcmp(spki, want, n) == 0);
	EVP_Digest(want, n, h, &hl, EVP_sha256(), NULL);
	get("device_id", want, 16);
	CP_CHECK(memcmp(h, want, 16) == 0);
	free(spki);
}

/* Offset and length of the value of tag t in a profile (tag, 2-byte length, value). */
static size_t
tlv_find(const uint8_t *b, size_t len, uint8_t t, size_t *vlen)
{
	size_t off = 0;

	while (off + 3 <= len) {
		size_t l = (size_t)b[off + 1] << 8 | b[off + 2];

		if (b[off] == t) {
			*vlen = l;
			return off + 3;
		}
		off += 3 + l;
	}
	fprintf(stderr, "profile lacks tag 0x%02x\n", t);
	exit(1);
}

/*
 * The published profile with one bit flipped, every bit of each region in
 * turn, is refused with the error the device's order of checks gives
 * (docs/protocol.md): in the mac, CP_ERR_MAC; in profile_seq, CP_ERR_MAC
 * (the mac covers it, and is checked after decryption but before the
 * sequence); in enc_cred, CP_ERR_BAD_VALUE for the suite byte (one bit
 * off suite B names no suite, or none whose enc_cred has this length: the
 * decoder refuses it), CP_ERR_POINT or CP_ERR_DECRYPT for the ephemeral
 * key, CP_ERR_DECRYPT for the ciphertext and its ECIES MAC. No key comes
 * out of any of them.
 */
/* Sign the profile again with the SM's key (tag 0x7E over what precedes
 * it) and MAC it again with K_prof: a change then reaches the checks after
 * the operator's. The signature keeps its length (re-made until it does). */
static void
reseal(uint8_t *prof, size_t prof_len, CpKey *sm_key, const uint8_t kprof[32])
{
	size_t sig_len, mac_len;
	size_t sig_off = tlv_find(prof, prof_len, 0x7E, &sig_len);
	size_t mac_off = tlv_find(prof, prof_len, 0x7F, &mac_len);
	uint8_t sig[CP_ECDSA_MAX];
	size_t n = 0;
	unsigned int ml = 32;

	do
		CP_CHECK_INT(cp_ecdsa_sign(sm_key, prof, sig_off - 3, sig, &n), CP_OK);
	while (n != sig_len);
	memcpy(prof + sig_off, sig, n);
	HMAC(EVP_sha256(), kprof, 32, prof, mac_off - 3, prof + mac_off, &ml);
}

/* Flip every bit of the mac, profile_seq, enc_cred, op_chain and
 * op_signature: each flip is refused with the code of the check it meets
 * first, and no key comes out. Then the same for enc_cred behind a valid
 * signature and mac, so that the decryption's own checks are reached. */
static void
check_tampered(uint8_t *prof, size_t prof_len, const CpVerifyContext *ctx,
	       CpKey *sm_key, const uint8_t kprof[32])
{
	static const uint8_t tags[] = { 0x7F, 0x03, 0x10, 0x70, 0x7E };
	static uint8_t copy[4096];
	unsigned n_point = 0, n_decrypt = 0;
	size_t cred_len, cred_off = tlv_find(prof, prof_len, 0x10, &cred_len);

	CP_CHECK_INT(cred_len, 1 + 33 + 48 + 8);
	for (size_t t = 0; t < sizeof tags; t++) {
		size_t len, off = tlv_find(prof, prof_len, tags[t], &len);

		for (size_t bit = 0; bit < len * 8; bit++) {
			size_t at = off + bit / 8;
			CpProfileKeys keys = { 0 };
			CpProfile p;
			CpError err, want;

			prof[at] ^= (uint8_t)(1u << (bit % 8));
			err = cp_profile_verify(prof, prof_len, ctx, &p, &keys);
			prof[at] ^= (uint8_t)(1u << (bit % 8));
			CP_CHECK(keys.k_prime == NULL && keys.opc == NULL && keys.k2 == NULL);
			cp_profile_keys_clear(&keys);
			switch (tags[t]) {
			case 0x7F:
				want = CP_ERR_MAC;
				break;
			case 0x10:
				want = at == cred_off ? CP_ERR_BAD_VALUE : CP_ERR_OPERATOR_SIGNATURE;
				break;
			case 0x70:
				want = CP_ERR_OPERATOR;
				break;
			default:
				want = CP_ERR_OPERATOR_SIGNATURE;
				break;
			}
			/* A flip inside the SM certificate's signature or a
			 * non-critical field may leave the certificate valid but
			 * unverifiable: still "operator". Flips of the signature's
			 * DER may make it unparsable: "operator-signature" too. */
			if (err != want)
				fprintf(stderr, "tag 0x%02x bit %zu: %s, want %s\n", tags[t], bit,
					cp_error_name(err), cp_error_name(want));
			CP_CHECK_INT(err, want);
		}
	}

	/* enc_cred behind a valid signature and mac. */
	memcpy(copy, prof, prof_len);
	for (size_t bit = 8; bit < cred_len * 8; bit++) {
		size_t at = cred_off + bit / 8, in_cred = bit / 8;
		CpProfileKeys keys = { 0 };
		CpProfile p;
		CpError err;

		copy[at] ^= (uint8_t)(1u << (bit % 8));
		reseal(copy, prof_len, sm_key, kprof);
		err = cp_profile_verify(copy, prof_len, ctx, &p, &keys);
		copy[at] ^= (uint8_t)(1u << (bit % 8));
		CP_CHECK(keys.k_prime == NULL && keys.opc == NULL && keys.k2 == NULL);
		cp_profile_keys_clear(&keys);
		if (in_cred < 1 + 33) {
			CP_CHECK(err == CP_ERR_POINT || err == CP_ERR_DECRYPT);
			n_point += err == CP_ERR_POINT;
			n_decrypt += err == CP_ERR_DECRYPT;
		} else {
			CP_CHECK_INT(err, CP_ERR_DECRYPT);
		}
	}
	/* both outcomes of a changed ephemeral key were seen */
	CP_CHECK(n_point > 0 && n_decrypt > 0);
	{
		CpProfileKeys keys = { 0 };
		CpProfile p;

		CP_CHECK_INT(cp_profile_verify(prof, prof_len, ctx, &p, &keys), CP_OK);
		cp_profile_keys_clear(&keys);
	}
}

/* The operator: the root certifies itself and the SM's certificate, which
 * holds the SM's key; the chain in the profile is the two; the pin is the
 * SHA-256 of the root's SubjectPublicKeyInfo; a forged profile (the same
 * bytes signed by another key) is refused. */
static void
check_operator(CpKey *root_key, CpKey *sm_key)
{
	static uint8_t root[CP_CHAIN_MAX], sm[CP_CHAIN_MAX], chain[CP_CHAIN_MAX];
	size_t root_len = get("op_root_cert", root, sizeof root);
	size_t sm_len = get("op_sm_cert", sm, sizeof sm);
	size_t chain_len = get("op_chain", chain, sizeof chain);
	uint8_t pin[32], spki_hash[32];
	uint8_t *spki;
	size_t spki_len = 0;
	CpAnchors *anchors = NULL;
	CpKey *signer = NULL;
	CpOperatorId id;
	char *pem;

	get("op_root_spki_sha256", pin, sizeof pin);
	spki = cp_pubkey_spki(root_key, &spki_len);
	CP_CHECK(spki != NULL);
	SHA256(spki, spki_len, spki_hash);
	free(spki);
	CP_CHECK(memcmp(pin, spki_hash, 32) == 0);
	CP_CHECK(chain_len == sm_len + root_len && memcmp(chain, sm, sm_len) == 0 &&
		 memcmp(chain + sm_len, root, root_len) == 0);
	CP_CHECK_INT(cp_operator_chain_signer(sm, sm_len, sm_key), CP_OK);
	CP_CHECK_INT(cp_operator_chain_signer(root, root_len, root_key), CP_OK);
	/* a match remembered does not answer for another key or chain */
	CP_CHECK_INT(cp_operator_chain_signer(root, root_len, root_key), CP_OK);
	CP_CHECK_INT(cp_operator_chain_signer(root, root_len, sm_key), CP_ERR_KEY);
	CP_CHECK_INT(cp_operator_chain_signer(sm, sm_len, root_key), CP_ERR_KEY);
	pem = cp_test_cert_pem(root, root_len);
	CP_CHECK_INT(cp_anchors_from_pem(pem, strlen(pem), &anchors), CP_OK);
	CP_CHECK_INT(cp_operator_chain_verify(anchors, pin, chain, chain_len, &signer, &id), CP_OK);
	CP_CHECK(strcmp(id.name, text("op_name_text")) == 0);
	CP_CHECK(memcmp(id.root, pin, 32) == 0);
	cp_key_free(signer);
	/* trust on first use reaches the same root */
	CP_CHECK_INT(cp_operator_chain_verify(NULL, pin, chain, chain_len, &signer, &id), CP_OK);
	cp_key_free(signer);
	cp_anchors_free(anchors);
	free(pem);
}

static void
check_structures(CpKey *dev, CpKey *sm_key)
{
	static uint8_t dr[4096], prof[4096], rc[4096], tag[8192], info[512];
	uint8_t id[16], k2[32], kprof[32], kp[32], opc[16], mac[32], sig[80];
	size_t dr_len = get("device_record", dr, sizeof dr);
	size_t prof_len = get("profile", prof, sizeof prof);
	size_t rc_len = get("receipt", rc, sizeof rc);
	size_t tag_len = get("ndef_tag", tag, sizeof tag);
	size_t info_len = get("device_info", info, sizeof info);
	size_t sig_len = get("att_signature", sig, sizeof sig);
	unsigned int ml = 32;
	CpDeviceRecord d;
	CpNdefMessage msg;
	CpReceipt r;
	CpProfile p;
	char *uri = NULL;

	get("device_id", id, 16);
	get("k2", k2, 32);
	get("k_prof", kprof, 32);
	get("k_prime", kp, 32);
	get("opc", opc, 16);

	/* Device record: signed prefix ends where tag 0x0A starts. */
	CP_CHECK_INT(cp_device_record_verify(dr, dr_len, dev, &d), CP_OK);
	CP_CHECK(memcmp(d.device_id, id, 16) == 0);
	CP_CHECK_INT(d.att_counter, 1);
	CP_CHECK(d.info_len == info_len && memcmp(dr, info, info_len) == 0);
	CP_CHECK(dr_len == d.signed_len + 3 + sig_len);
	CP_CHECK(dr[d.signed_len] == 0x0A && memcmp(dr + d.signed_len + 3, sig, sig_len) == 0);

	/* Profile mac is HMAC(K_prof, every byte before tag 0x7F). */
	HMAC(EVP_sha256(), kprof, 32, prof, prof_len - 35, mac, &ml);
	CP_CHECK(prof[prof_len - 35] == 0x7F && memcmp(prof + prof_len - 32, mac, 32) == 0);
	{
		uint8_t suites[] = { CP_SUITE_B };
		uint8_t pin[32];
		CpVerifyContext ctx = {
			.device_id = id, .device_key = dev, .suites = suites, .n_suites = 1,
			.last_seq = 0, .now = 1893456000 - 1, .device_info = info, .device_info_len = info_len,
		};
		CpProfileKeys keys = { 0 };

		CP_CHECK_INT(cp_profile_verify(prof, prof_len, &ctx, &p, &keys), CP_OK);
		CP_CHECK(keys.k_prime && memcmp(keys.k_prime->data, kp, 32) == 0);
		CP_CHECK(keys.opc && memcmp(keys.opc->data, opc, 16) == 0);
		CP_CHECK(keys.k2 && memcmp(keys.k2->data, k2, 32) == 0);
		cp_profile_keys_clear(&keys);
		CP_CHECK(strcmp(p.supi, text("supi_text")) == 0);
		CP_CHECK_INT(p.operation, CP_OP_CLAIM);
		get("op_root_spki_sha256", pin, sizeof pin);
		CP_CHECK(memcmp(p.op.root, pin, 32) == 0);
		/* A device bound at another binding version (another owner's,
		 * after a transfer) takes no claim, even from its operator. */
		ctx.bound = true;
		ctx.operator_pin = pin;
		ctx.binding_version = 2;
		CP_CHECK_INT(cp_profile_verify(prof, prof_len, &ctx, &p, &keys), CP_ERR_BINDING);
		cp_profile_keys_clear(&keys);
		ctx.bound = false;
		ctx.operator_pin = NULL;

		/* The published profile is replayed once committed, expired after not_after. */
		ctx.last_seq = 1;
		CP_CHECK_INT(cp_profile_verify(prof, prof_len, &ctx, &p, &keys), CP_ERR_REPLAY);
		cp_profile_keys_clear(&keys);
		ctx.last_seq = 0;
		ctx.now = 1893456000 + 1;
		CP_CHECK_INT(cp_profile_verify(prof, prof_len, &ctx, &p, &keys), CP_ERR_EXPIRED);
		cp_profile_keys_clear(&keys);
		ctx.now = 1893456000 - 1;
		check_tampered(prof, prof_len, &ctx, sm_key, kprof);
	}

	HMAC(EVP_sha256(), k2, 32, rc, rc_len - 35, mac, &ml);
	CP_CHECK(rc[rc_len - 35] == 0x7F && memcmp(rc + rc_len - 32, mac, 32) == 0);
	{
		CpSecret *s = cp_secret_new_from(k2, 32);

		CP_CHECK_INT(cp_receipt_verify(rc, rc_len, s, &r), CP_OK);
		CP_CHECK_INT(r.status, CP_RECEIPT_PROVISIONED);
		CP_CHECK_INT(r.binding_version, 1);
		cp_secret_free(s);
		/* The device's signature over every byte before tag 0x7E, as the
		 * SM checks it: with OpenSSL directly. */
		{
			uint8_t rsig[80];
			size_t rsig_len = get("receipt_signature", rsig, sizeof rsig);

			CP_CHECK(rc[r.signed_len] == 0x7E && r.device_signature_len == rsig_len &&
				 memcmp(rc + r.signed_len + 3, rsig, rsig_len) == 0);
			CP_CHECK(reference_verify(dev, rsig, rsig_len, rc, r.signed_len));
			CP_CHECK_INT(cp_receipt_verify_device(rc, rc_len, dev, &r), CP_OK);
		}
	}

	/* The tag: URI record with the URL, then the device record. */
	CP_CHECK_INT(cp_ndef_parse(tag, tag_len, &msg), CP_OK);
	CP_CHECK_INT(msg.n_records, 2);
	CP_CHECK_INT(cp_ndef_find_uri(&msg, &uri), CP_OK);
	CP_CHECK(uri && strcmp(uri, text("certificate_url_text")) == 0);
	free(uri);
	{
		const CpNdefRecord *rec = cp_ndef_find_mime(&msg, CP_MIME_DEVICE);

		CP_CHECK(rec && rec->payload_len == dr_len && memcmp(rec->payload, dr, dr_len) == 0);
	}
}

static void
check_enc_cred(CpKey *dev)
{
	uint8_t enc[128], kp[32], opc[16];
	size_t n = get("enc_cred", enc, sizeof enc);
	CpSecret *k = NULL, *o = NULL;

	get("k_prime", kp, 32);
	get("opc", opc, 16);
	CP_CHECK_INT(n, 1 + 33 + 48 + 8);
	CP_CHECK_INT(enc[0], CP_SUITE_B);
	CP_CHECK_INT(cp_enc_cred_open(enc, n, dev, &k, &o), CP_OK);
	CP_CHECK(k && memcmp(k->data, kp, 32) == 0);
	CP_CHECK(o && memcmp(o->data, opc, 16) == 0);
	cp_secret_free(k);
	cp_secret_free(o);
}

/* The decommission command: signed by the SM over every byte before tag
 * 0x7E, taken by the device the profile bound, refused once it moved on. */
static void
check_command(CpKey *sm_key)
{
	static uint8_t cmd[4096], id[16], pin[32];
	size_t len = get("command", cmd, sizeof cmd);
	uint8_t csig[80];
	size_t csig_len = get("command_signature", csig, sizeof csig);
	CpVerifyContext ctx = { 0 };
	CpCommand *c = malloc(sizeof *c);

	get("device_id", id, sizeof id);
	get("op_root_spki_sha256", pin, sizeof pin);
	CP_CHECK(c != NULL);
	CP_CHECK(len > csig_len + 3 && cmd[len - csig_len - 3] == 0x7E &&
		 memcmp(cmd + len - csig_len, csig, csig_len) == 0);
	CP_CHECK(reference_verify(sm_key, csig, csig_len, cmd, len - csig_len - 3));
	ctx.device_id = id;
	ctx.operator_pin = pin;
	ctx.bound = true;
	ctx.binding_version = 1;
	ctx.last_seq = 1;
	ctx.now = 1893456000 - 1;
	CP_CHECK_INT(cp_command_verify(cmd, len, &ctx, c), CP_OK);
	CP_CHECK_INT(c->command, CP_COMMAND_DECOMMISSION);
	CP_CHECK_INT(c->seq, 2);
	ctx.last_seq = 2;
	CP_CHECK_INT(cp_command_verify(cmd, len, &ctx, c), CP_ERR_REPLAY);
	ctx.last_seq = 1;
	ctx.binding_version = 2;
	CP_CHECK_INT(cp_command_verify(cmd, len, &ctx, c), CP_ERR_BINDING);
	free(c);
}

#ifndef CP_TEST_DEVICE_CRYPTO
static void
check_reproduced(const char *path)
{
	static uint8_t sig[80], op_sig[80], root[CP_CHAIN_MAX], sm[CP_CHAIN_MAX];
	static uint8_t rc_sig[80], cmd_sig[80];
	CpToolVectorsPublished pub = {
		.att_signature = sig, .att_signature_len = get("att_signature", sig, sizeof sig),
		.op_signature = op_sig, .op_signature_len = get("op_signature", op_sig, sizeof op_sig),
		.op_root_cert = root, .op_root_cert_len = get("op_root_cert", root, sizeof root),
		.op_sm_cert = sm, .op_sm_cert_len = get("op_sm_cert", sm, sizeof sm),
		.receipt_signature = rc_sig,
		.receipt_signature_len = get("receipt_signature", rc_sig, sizeof rc_sig),
		.command_signature = cmd_sig,
		.command_signature_len = get("command_signature", cmd_sig, sizeof cmd_sig),
	};
	char *made = NULL, *file = NULL;
	size_t made_len = 0, file_len = 0;
	FILE *mem = open_memstream(&made, &made_len);
	FILE *f = fopen(path, "rb");

	CP_CHECK_INT(cp_tool_vectors(mem, NULL, &pub), CP_OK);
	fclose(mem);
	if (f) {
		file = malloc(65536);
		file_len = fread(file, 1, 65536, f);
		fclose(f);
	}
	CP_CHECK(file && made_len == file_len && memcmp(made, file, file_len) == 0);
	if (!(file && made_len == file_len && memcmp(made, file, file_len) == 0))
		fprintf(stderr, "cellprov-tool vectors no longer reproduces %s: wire bytes changed?\n%s", path, made);
	free(made);
	free(file);
}
#endif

int
main(void)
{
	const char *src = getenv("CP_SOURCE_DIR");
	char path[4096];
	CpTestVectors all;
	uint8_t priv[32];
	CpKey *dev, *op_root, *op_sm;

	/* cp_test_vectors_load reads from $CP_VECTORS_DIR. */
	snprintf(path, sizeof path, "%s/docs/test-vectors", src ? src : ".");
	setenv("CP_VECTORS_DIR", path, 1);
	if (!cp_test_vectors_load("cellprov-v2.txt", &all))
		return 1;
	/* One block: merge them all (sections are separated by blank lines). */
	cp_test_vectors_merge(&all, &vec);

	get("device_privkey", priv, 32);
	dev = cp_p256_from_private(priv);
	CP_CHECK(dev != NULL);
	if (!dev)
		return cp_test_done("test-vectors");

	get("op_root_privkey", priv, 32);
	op_root = cp_p256_from_private(priv);
	get("op_sm_privkey", priv, 32);
	op_sm = cp_p256_from_private(priv);
	CP_CHECK(op_root && op_sm);
	check_identity(dev);
	check_keys();
	check_enc_cred(dev);
	check_operator(op_root, op_sm);
	check_structures(dev, op_sm);
	check_command(op_sm);
#ifndef CP_TEST_DEVICE_CRYPTO
	snprintf(path, sizeof path, "%s/docs/test-vectors/cellprov-v2.txt", src ? src : ".");
	check_reproduced(path);
#endif

	cp_key_free(dev);
	cp_key_free(op_root);
	cp_key_free(op_sm);
	free(vec.kv);
	cp_test_vectors_free(&all);
	return cp_test_done("test-vectors");
}
