/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writes the seed corpora of the fuzz targets: cp-fuzz-corpus DIR makes
 * DIR/<target>/<seed> for each target. The seeds are valid structures
 * built with the fixed fixture (so fuzz-profile-verify starts from
 * profiles that pass the mac) and a few near misses. Run once; the output
 * is committed under tests/fuzz/corpus/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cp-ble.h"
#include "cp-fuzz-fixture.h"
#include "cp-fuzz-p256.h"
#include "cp-ndef.h"
#include "cp-records.h"

static const char *top;
static int failures;

static void
write_seed(const char *target, const char *name, const uint8_t *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", top, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		failures++;
		return;
	}
	snprintf(path, sizeof path, "%s/%s/%s", top, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		failures++;
	}
}

static void
check(CpError err, const char *what)
{
	if (err != CP_OK) {
		fprintf(stderr, "%s: %s\n", what, cp_error_name(err));
		exit(1);
	}
}

static void
profile_seed(const char *name, const CpProfile *p, const CpSecret *k_prof, CpBuf *out)
{
	cp_buf_init(out);
	check(cp_profile_encode(p, cp_fuzz_fixture()->op_sm_key, k_prof, out), name);
	write_seed("profile", name, out->data, out->len);
	write_seed("profile-verify", name, out->data, out->len);
}

/* fuzz-ble: what a phone receives when it reads this tag at this MTU,
 * in the target's records (ctl 0, offset 0, len, segment). */
static void
ble_seed(const char *name, uint16_t mtu, const CpBuf *tag)
{
	CpBleLink *phone = cp_ble_link_new(mtu, 0), *dev = cp_ble_link_new(mtu, 0);
	CpBleMessage m = { .op = CP_BLE_OP_READ_TAG };
	CpBuf req = CP_BUF_INIT, resp = CP_BUF_INIT, seed = CP_BUF_INIT;
	const uint8_t *got;
	size_t len;

	cp_buf_append_u8(&seed, (uint8_t)((mtu - 23) / 2));
	check(cp_ble_message_encode(&m, &req), "ble request");
	m = (CpBleMessage){ .op = CP_BLE_OP_READ_TAG, .response = true,
			    .body = tag->data, .body_len = tag->len };
	check(cp_ble_message_encode(&m, &resp), "ble response");
	check(cp_ble_link_send(phone, req.data, req.len), "ble send");
	for (int round = 0; round < 1000; round++) {
		bool moved = false;

		for (int side = 0; side < 2; side++) {
			CpBleLink *from = side ? dev : phone, *to = side ? phone : dev;

			for (;;) {
				CpBuf seg = CP_BUF_INIT;

				check(cp_ble_link_next_segment(from, 0, &seg), "ble segment");
				if (seg.len == 0)
					break;
				check(cp_ble_link_receive(to, 0, 0, seg.data, seg.len, NULL), "ble receive");
				if (side) {
					cp_buf_append_u8(&seed, 0);
					cp_buf_append_be16(&seed, 0);
					cp_buf_append_u8(&seed, (uint8_t)seg.len);
					cp_buf_append(&seed, seg.data, seg.len);
				}
				cp_buf_clear(&seg);
				moved = true;
			}
		}
		if ((got = cp_ble_link_message(dev, &len))) {
			cp_ble_link_take(dev);
			check(cp_ble_link_send(dev, resp.data, resp.len), "ble answer");
		}
		if (!moved)
			break;
	}
	got = cp_ble_link_message(phone, &len);
	if (!got || len != resp.len) {
		fprintf(stderr, "ble seed %s: the answer did not arrive\n", name);
		failures++;
	}
	write_seed("ble", name, seed.data, seed.len);
	cp_buf_clear(&req);
	cp_buf_clear(&resp);
	cp_buf_clear(&seed);
	cp_ble_link_free(phone);
	cp_ble_link_free(dev);
}

/* fuzz-p256-mbedtls: a point in each form and a signature by the fixed
 * signer over the fixed message, each after its mode byte. */
static void
p256_seeds(void)
{
	CpKey *signer = cp_p256_from_private(cp_fuzz_op_sm_priv), *eph = cp_p256_generate();
	uint8_t buf[1 + CP_ECDSA_MAX], *spki;
	size_t n = 0;

	if (!signer || !eph)
		check(CP_ERR_CRYPTO, "fuzz-p256 keys");
	buf[0] = 0;
	check(cp_p256_public_compressed(eph, buf + 1), "a compressed point");
	write_seed("p256-mbedtls", "point-compressed", buf, 34);
	spki = cp_pubkey_spki(eph, &n);
	if (!spki || n != 91)
		check(CP_ERR_CRYPTO, "an uncompressed point");
	memcpy(buf + 1, spki + 26, 65);
	free(spki);
	write_seed("p256-mbedtls", "point-uncompressed", buf, 66);
	buf[0] = 1;
	check(cp_ecdsa_sign(signer, (const uint8_t *)cp_fuzz_p256_message, sizeof cp_fuzz_p256_message - 1,
			    buf + 1, &n), "a signature");
	write_seed("p256-mbedtls", "signature", buf, 1 + n);
	cp_key_free(signer);
	cp_key_free(eph);
}

int
main(int argc, char **argv)
{
	const CpFuzzFixture *f;
	cp_auto_buf dr = CP_BUF_INIT, dr2 = CP_BUF_INIT, pr = CP_BUF_INIT, pr2 = CP_BUF_INIT;
	cp_auto_buf pr3 = CP_BUF_INIT, rc = CP_BUF_INIT, rc2 = CP_BUF_INIT;
	cp_auto_buf tag = CP_BUF_INIT, tag2 = CP_BUF_INIT, msg = CP_BUF_INIT, msg2 = CP_BUF_INIT;
	CpDeviceRecord d;
	CpProfile p;
	CpReceipt r = { 0 };
	CpNdefMessage m;
	CpT4tCc cc;
	uint8_t ccb[CP_T4T_CC_LEN + 4];
	char url[128];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	top = argv[1];
	f = cp_fuzz_fixture();

	/* Device records. */
	check(cp_device_record_encode(&f->dr, f->device_key, &dr), "device record");
	write_seed("device-record", "valid", dr.data, dr.len);
	d = f->dr;
	d.suites[0] = CP_SUITE_A;
	d.suites[1] = CP_SUITE_B;
	d.n_suites = 2;
	d.state = CP_DEVICE_PROVISIONED;
	d.att_counter = 0x0102030405060708ull;
	strcpy(d.manufacturer, "Caf\xc3\xa9 \xe2\x82\xac Ltd");
	check(cp_device_record_encode(&d, f->device_key, &dr2), "device record 2");
	write_seed("device-record", "two-suites", dr2.data, dr2.len);

	/* Profiles: valid, without the optional fields, replayed. */
	profile_seed("valid", &f->profile, f->k_prof, &pr);
	p = f->profile;
	p.has_not_after = false;
	p.has_msisdn = false;
	profile_seed("no-optional", &p, f->k_prof, &pr2);
	p = f->profile;
	p.profile_seq = 2;
	profile_seed("replay", &p, f->k_prof, &pr3);
	/* the chain alone, for fuzz-op-chain; and without its root */
	write_seed("op-chain", "sm-root", f->profile.op_chain, f->profile.op_chain_len);
	{
		size_t sm_len = (size_t)(((f->profile.op_chain[2] << 8) | f->profile.op_chain[3]) + 4);

		if (f->profile.op_chain[1] == 0x82 && sm_len < f->profile.op_chain_len)
			write_seed("op-chain", "sm-only", f->profile.op_chain, sm_len);
	}

	/* Receipts: with and without mac. */
	memcpy(r.device_id, f->device_id, CP_DEVICE_ID_LEN);
	r.profile_seq = 5;
	r.status = CP_RECEIPT_PROVISIONED;
	r.has_registration = true;
	strcpy(r.registration, "00101");
	r.binding_version = 1;
	check(cp_receipt_encode(&r, f->device_key, f->k2, &rc), "receipt");
	write_seed("receipt", "provisioned", rc.data, rc.len);
	r.status = CP_RECEIPT_REJECTED;
	r.reason = CP_ERR_DECRYPT;
	r.has_registration = false;
	check(cp_receipt_encode(&r, f->device_key, NULL, &rc2), "receipt 2");
	write_seed("receipt", "rejected-no-mac", rc2.data, rc2.len);

	/* A decommission of the fixture's device at binding version 1. */
	{
		cp_auto_buf cm = CP_BUF_INIT;
		CpCommand *c = calloc(1, sizeof *c);

		check(c ? CP_OK : CP_ERR_CRYPTO, "command");
		memcpy(c->device_id, f->device_id, CP_DEVICE_ID_LEN);
		c->seq = 6;
		c->command = CP_COMMAND_DECOMMISSION;
		c->binding_version = 1;
		memcpy(c->op_chain, f->profile.op_chain, f->profile.op_chain_len);
		c->op_chain_len = f->profile.op_chain_len;
		check(cp_command_encode(c, f->op_sm_key, &cm), "command");
		write_seed("command", "decommission", cm.data, cm.len);
		free(c);
	}

	/* NDEF: the tag before and after an attempt, the profile write, and
	 * the empty message. */
	snprintf(url, sizeof url, "https://certs.example.net/devices/");
	for (int i = 0; i < CP_DEVICE_ID_LEN; i++)
		snprintf(url + strlen(url), 3, "%02x", f->device_id[i]);
	check(cp_tag_build(url, dr.data, dr.len, NULL, 0, &tag), "tag");
	write_seed("ndef", "tag", tag.data, tag.len);
	check(cp_tag_build(url, dr.data, dr.len, rc.data, rc.len, &tag2), "tag 2");
	write_seed("ndef", "tag-receipt", tag2.data, tag2.len);
	memset(&m, 0, sizeof m);
	cp_ndef_record_mime(&m.records[0], CP_MIME_PROFILE, pr.data, pr.len);
	m.n_records = 1;
	check(cp_ndef_encode(&m, &msg), "profile message");
	write_seed("ndef", "profile", msg.data, msg.len);
	memset(&m, 0, sizeof m);
	m.records[0].tnf = CP_TNF_EMPTY;
	m.n_records = 1;
	check(cp_ndef_encode(&m, &msg2), "empty message");
	write_seed("ndef", "empty", msg2.data, msg2.len);

	/* Capability containers: ours, read-only with a further TLV. */
	cp_t4t_cc_default(&cc);
	cp_t4t_cc_encode(&cc, ccb);
	write_seed("t4t-cc", "default", ccb, CP_T4T_CC_LEN);
	cc.cc_len = 19;
	cc.write_access = 0xff;
	cc.mle = 0xffff;
	cp_t4t_cc_encode(&cc, ccb);
	memcpy(ccb + CP_T4T_CC_LEN, "\x05\x02\xe1\x05", 4);
	write_seed("t4t-cc", "read-only-extra-tlv", ccb, sizeof ccb);

	p256_seeds();

	/* AT traffic: byte 0 picks the pending command (+CSIM, +CEREG, +CCHO,
	 * none; 4: bare digits), byte 1 the piece size, then the module's bytes. */
	{
		static const char *const at[][2] = {
			{ "csim-echo-urcs", "\x00\x02" "AT+CSIM=10,\"00A4000C00\"\r\r\n+CEREG: 2\r\n\r\n+CSIM: 4,\"9000\"\r\n"
			  "\r\n+QIND: \"csq\",20,99\r\nRING\r\n\r\nOK\r\n\r\n+CEREG: 1\r\n" },
			{ "cereg-read-and-urc", "\x01\x04" "\r\n+CEREG: 1,\"00C3\",\"0000001A\",7\r\n\r\n+CEREG: 3,3,,,,0,8\r\n\r\nOK\r\n" },
			{ "ccho-bare", "\x06\x01" "\r\nRDY\r\n\r\n1\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n" },
			{ "cme-error", "\x02\x05" "\n+CME ERROR: 3\n\nOK\n" },
			{ "v0-cr-only", "\x00\x00" "+CSIM: 4,\"6A82\"\r0\r" },
			{ "overlong", "\x00\x10" "\r\n+CSIM: 80,\"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F2021222324259000\"\r\n\r\nOK\r\n" },
		};

		for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
			write_seed("at-parser", at[i][0], (const uint8_t *)at[i][1], strlen(at[i][1] + 2) + 2);
	}
	/* BLE: the tag read at three MTUs; a request in a long write. */
	ble_seed("read-tag-23", 23, &tag2);
	ble_seed("read-tag-185", 185, &tag2);
	ble_seed("read-tag-517", 517, &tag2);
	{
		static const uint8_t lw[] = {
			0x00,                                   /* MTU 23 */
			0x00, 0x00, 0x00, 0x05, 0x03, 0x00, 0x00, 0x02, 0x01,
			0x00, 0x00, 0x05, 0x01, 0x01,           /* offset 5 */
			0x01, 0x00, 0x00, 0x02, 0x04, 0x00,     /* an ack, timeouts checked */
		};

		write_seed("ble", "long-write", lw, sizeof lw);
	}

	if (failures)
		return 1;
	printf("corpus written to %s\n", top);
	return 0;
}
