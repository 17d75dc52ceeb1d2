/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checks docs/test-vectors/cellprov-v1.txt: every key of the schedule is
 * recomputed here with OpenSSL directly (HMAC, AES, SHA-256), not through
 * the library's KDF, so a mistake in cp_kdf or cp_keys shows; the
 * structures are verified as the device and the companion verify them;
 * and `cellprov-tool vectors`, fed the published signature, must write the
 * file byte for byte.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cellprov.h"
#include "cp-test.h"
#include "cp-tool-vectors.h"

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
check_identity(EVP_PKEY *dev)
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
static void
check_tampered(uint8_t *prof, size_t prof_len, const CpVerifyContext *ctx)
{
	size_t mac_len, seq_len, cred_len;
	size_t mac_off = tlv_find(prof, prof_len, 0x7F, &mac_len);
	size_t seq_off = tlv_find(prof, prof_len, 0x03, &seq_len);
	size_t cred_off = tlv_find(prof, prof_len, 0x10, &cred_len);
	unsigned n_point = 0, n_decrypt = 0;

	CP_CHECK_INT(mac_len, 32);
	CP_CHECK_INT(seq_len, 8);
	CP_CHECK_INT(cred_len, 1 + 33 + 48 + 8);
	for (size_t bit = 0; bit < (mac_len + seq_len + cred_len) * 8; bit++) {
		size_t i = bit / 8;
		size_t off = i < mac_len ? mac_off + i :
			     i < mac_len + seq_len ? seq_off + i - mac_len :
			     cred_off + i - mac_len - seq_len;
		size_t in_cred = off - cred_off;
		CpProfileKeys keys = { 0 };
		CpProfile p;
		CpError err;

		prof[off] ^= (uint8_t)(1u << (bit % 8));
		err = cp_profile_verify(prof, prof_len, ctx, &p, &keys);
		prof[off] ^= (uint8_t)(1u << (bit % 8));
		CP_CHECK(keys.k_prime == NULL && keys.opc == NULL && keys.k2 == NULL);
		cp_profile_keys_clear(&keys);
		if (off < cred_off || off >= cred_off + cred_len) {
			CP_CHECK_INT(err, CP_ERR_MAC);
		} else if (in_cred == 0) {
			CP_CHECK_INT(err, CP_ERR_BAD_VALUE);
		} else if (in_cred < 1 + 33) {
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

static void
check_structures(EVP_PKEY *dev)
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

		/* The published profile is replayed once committed, expired after not_after. */
		ctx.last_seq = 1;
		CP_CHECK_INT(cp_profile_verify(prof, prof_len, &ctx, &p, &keys), CP_ERR_REPLAY);
		cp_profile_keys_clear(&keys);
		ctx.last_seq = 0;
		ctx.now = 1893456000 + 1;
		CP_CHECK_INT(cp_profile_verify(prof, prof_len, &ctx, &p, &keys), CP_ERR_EXPIRED);
		cp_profile_keys_clear(&keys);
		ctx.now = 1893456000 - 1;
		check_tampered(prof, prof_len, &ctx);
	}

	HMAC(EVP_sha256(), k2, 32, rc, rc_len - 35, mac, &ml);
	CP_CHECK(rc[rc_len - 35] == 0x7F && memcmp(rc + rc_len - 32, mac, 32) == 0);
	{
		CpSecret *s = cp_secret_new_from(k2, 32);

		CP_CHECK_INT(cp_receipt_verify(rc, rc_len, s, &r), CP_OK);
		CP_CHECK_INT(r.status, CP_RECEIPT_PROVISIONED);
		cp_secret_free(s);
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
check_enc_cred(EVP_PKEY *dev)
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

static void
check_reproduced(const char *path)
{
	uint8_t sig[80];
	size_t sig_len = get("att_signature", sig, sizeof sig);
	char *made = NULL, *file = NULL;
	size_t made_len = 0, file_len = 0;
	FILE *mem = open_memstream(&made, &made_len);
	FILE *f = fopen(path, "rb");

	CP_CHECK_INT(cp_tool_vectors(mem, NULL, sig, sig_len), CP_OK);
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

int
main(void)
{
	const char *src = getenv("CP_SOURCE_DIR");
	char path[4096];
	CpTestVectors all;
	uint8_t priv[32];
	EVP_PKEY *dev;

	/* cp_test_vectors_load reads from $CP_VECTORS_DIR. */
	snprintf(path, sizeof path, "%s/docs/test-vectors", src ? src : ".");
	setenv("CP_VECTORS_DIR", path, 1);
	if (!cp_test_vectors_load("cellprov-v1.txt", &all))
		return 1;
	/* One block: merge them all (sections are separated by blank lines). */
	vec.kv = NULL;
	vec.n = 0;
	for (size_t i = 0; i < all.n; i++) {
		vec.kv = realloc(vec.kv, (vec.n + all.blocks[i].n) * sizeof *vec.kv);
		memcpy(vec.kv + vec.n, all.blocks[i].kv, all.blocks[i].n * sizeof *vec.kv);
		vec.n += all.blocks[i].n;
	}

	get("device_privkey", priv, 32);
	dev = cp_p256_from_private(priv);
	CP_CHECK(dev != NULL);
	if (!dev)
		return cp_test_done("test-vectors");

	check_identity(dev);
	check_keys();
	check_enc_cred(dev);
	check_structures(dev);
	snprintf(path, sizeof path, "%s/docs/test-vectors/cellprov-v1.txt", src ? src : ".");
	check_reproduced(path);

	EVP_PKEY_free(dev);
	free(vec.kv);
	cp_test_vectors_free(&all);
	return cp_test_done("test-vectors");
}
