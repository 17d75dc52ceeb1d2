/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov-tool: the protocol library from the command line, offline, for
 * developers and integrators checking their own implementation. Bytes in
 * and out are hex; output is JSON on stdout.
 *
 * Exit status: 0 success, 1 the input failed a check (decode error, wrong
 * MAC), 2 bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cellprov.h"
#include "cp-config.h"
#include "cp-json.h"
#include "cp-tool-vectors.h"

#define MAX_OPTS 16
#define MAX_PARAMS CP_KDF_MAX_PARAMS

typedef struct {
	const char *name;
	bool repeat;
	bool flag;          /* takes no value */
} OptSpec;

typedef struct {
	const char *cmd;
	const OptSpec *spec;
	const char *values[MAX_OPTS];
	const char *params[MAX_PARAMS];
	size_t n_params;
	bool flags[MAX_OPTS];
	const char *positional;
} Args;

static const char *cmd_name = "cellprov-tool";

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	exit(2);
}

static int
spec_index(const OptSpec *spec, const char *name)
{
	for (int i = 0; spec[i].name; i++)
		if (strcmp(spec[i].name, name) == 0)
			return i;
	return -1;
}

static void
parse_args(Args *a, const char *cmd, const OptSpec *spec, int argc, char **argv, bool want_positional)
{
	memset(a, 0, sizeof *a);
	a->cmd = cmd;
	a->spec = spec;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		int idx;

		if (strncmp(arg, "--", 2) != 0) {
			if (!want_positional || a->positional)
				usage_error("%s: unexpected argument '%s'", cmd, arg);
			a->positional = arg;
			continue;
		}
		idx = spec_index(spec, arg + 2);
		if (idx < 0)
			usage_error("%s: unknown option '%s'", cmd, arg);
		if (spec[idx].flag) {
			a->flags[idx] = true;
			continue;
		}
		if (i + 1 >= argc)
			usage_error("%s: option '%s' needs a value", cmd, arg);
		if (spec[idx].repeat) {
			if (a->n_params >= MAX_PARAMS)
				usage_error("%s: at most %d %s options", cmd, MAX_PARAMS, arg);
			a->params[a->n_params++] = argv[++i];
			continue;
		}
		if (a->values[idx])
			usage_error("%s: option '%s' given twice", cmd, arg);
		a->values[idx] = argv[++i];
	}
	if (want_positional && !a->positional)
		usage_error("%s: missing FILE", cmd);
}

static const char *
opt(const Args *a, const char *name)
{
	int idx = spec_index(a->spec, name);

	return idx < 0 ? NULL : a->values[idx];
}

static bool
flag(const Args *a, const char *name)
{
	int idx = spec_index(a->spec, name);

	return idx >= 0 && a->flags[idx];
}

static const char *
need(const Args *a, const char *name)
{
	const char *v = opt(a, name);

	if (!v)
		usage_error("%s: missing --%s", a->cmd, name);
	return v;
}

/* Hex of exactly want bytes (want 0: any length up to cap). */
static size_t
hex_arg(const Args *a, const char *name, const char *hex, uint8_t *out, size_t cap, size_t want)
{
	long n;

	if (strncmp(hex, "0x", 2) == 0 || strncmp(hex, "0X", 2) == 0)
		hex += 2;
	n = cp_hex_decode(hex, out, cap);
	if (n < 0)
		usage_error("%s: --%s: not hex, or longer than %zu bytes", a->cmd, name, cap);
	if (want && (size_t)n != want)
		usage_error("%s: --%s: want %zu bytes of hex, got %ld", a->cmd, name, want, n);
	return (size_t)n;
}

static CpSecret *
secret_arg(const Args *a, const char *name, size_t want)
{
	const char *hex = need(a, name);
	uint8_t buf[256];
	size_t n = hex_arg(a, name, hex, buf, sizeof buf, want);
	CpSecret *s = cp_secret_new_from(buf, n);

	cp_cleanse(buf, sizeof buf);
	if (!s) {
		fprintf(stderr, "%s: out of memory\n", cmd_name);
		exit(1);
	}
	return s;
}

static int
fail(CpError err, const char *what)
{
	CpJson j;

	cp_json_init(&j, stdout, false);
	cp_json_begin_object(&j, NULL);
	cp_json_begin_object(&j, "error");
	cp_json_uint(&j, "code", err);
	cp_json_string(&j, "name", cp_error_name(err));
	cp_json_string(&j, "message", cp_error_message(err));
	if (what)
		cp_json_string(&j, "where", what);
	cp_json_end_object(&j);
	cp_json_end_object(&j);
	cp_json_finish(&j);
	fprintf(stderr, "%s: %s%s%s: 0x%04x %s\n", cmd_name, what ? what : "", what ? ": " : "",
		cp_error_name(err), err, cp_error_message(err));
	return 1;
}

/* ---- milenage ---- */

static const OptSpec milenage_opts[] = {
	{ .name = "k" }, { .name = "op" }, { .name = "opc" }, { .name = "rand" }, { .name = "sqn" }, { .name = "amf" }, { .name = NULL }
};

static int
cmd_milenage(int argc, char **argv)
{
	Args a;
	cp_auto_secret *k = NULL, *opc = NULL;
	uint8_t rand[16], sqn[6], amf[2];
	CpMilenage m;
	CpError err;
	CpJson j;

	parse_args(&a, "milenage", milenage_opts, argc, argv, false);
	k = secret_arg(&a, "k", 16);
	if (!!opt(&a, "op") == !!opt(&a, "opc"))
		usage_error("milenage: give exactly one of --op and --opc");
	hex_arg(&a, "rand", need(&a, "rand"), rand, sizeof rand, 16);
	hex_arg(&a, "sqn", need(&a, "sqn"), sqn, sizeof sqn, 6);
	hex_arg(&a, "amf", need(&a, "amf"), amf, sizeof amf, 2);
	if (opt(&a, "op")) {
		cp_auto_secret *op = secret_arg(&a, "op", 16);

		opc = cp_secret_new(16);
		if (!opc || (err = cp_milenage_opc(k->data, op->data, opc->data)))
			return fail(opc ? err : CP_ERR_CRYPTO, "opc");
	} else {
		opc = secret_arg(&a, "opc", 16);
	}
	if ((err = cp_milenage(k->data, opc->data, rand, sqn, amf, &m)))
		return fail(err, "milenage");

	cp_json_init(&j, stdout, false);
	cp_json_begin_object(&j, NULL);
	cp_json_hex(&j, "opc", opc->data, 16);
	cp_json_hex(&j, "f1", m.f1, sizeof m.f1);
	cp_json_hex(&j, "f1star", m.f1star, sizeof m.f1star);
	cp_json_hex(&j, "f2", m.f2, sizeof m.f2);
	cp_json_hex(&j, "f3", m.f3, sizeof m.f3);
	cp_json_hex(&j, "f4", m.f4, sizeof m.f4);
	cp_json_hex(&j, "f5", m.f5, sizeof m.f5);
	cp_json_hex(&j, "f5star", m.f5star, sizeof m.f5star);
	cp_json_end_object(&j);
	cp_json_finish(&j);
	cp_cleanse(&m, sizeof m);
	return 0;
}

/* ---- kdf ---- */

static const OptSpec kdf_opts[] = {
	{ .name = "key" }, { .name = "fc" }, { .name = "param", .repeat = true }, { .name = NULL }
};

static int
cmd_kdf(int argc, char **argv)
{
	static uint8_t pbuf[MAX_PARAMS][1024];
	CpKdfParam params[MAX_PARAMS];
	uint8_t fc, out[CP_KDF_LEN];
	cp_auto_secret *key = NULL;
	CpError err;
	Args a;
	CpJson j;

	parse_args(&a, "kdf", kdf_opts, argc, argv, false);
	key = secret_arg(&a, "key", 0);
	if (key->len == 0)
		usage_error("kdf: --key: empty key");
	hex_arg(&a, "fc", need(&a, "fc"), &fc, 1, 1);
	for (size_t i = 0; i < a.n_params; i++) {
		params[i].data = pbuf[i];
		params[i].len = hex_arg(&a, "param", a.params[i], pbuf[i], sizeof pbuf[i], 0);
	}
	if ((err = cp_kdf(key->data, key->len, fc, params, a.n_params, out)))
		return fail(err, "kdf");

	cp_json_init(&j, stdout, false);
	cp_json_begin_object(&j, NULL);
	cp_json_hex(&j, "out", out, sizeof out);
	cp_json_end_object(&j);
	cp_json_finish(&j);
	cp_cleanse(out, sizeof out);
	return 0;
}

/* ---- ecies ---- */

static CpSuite
suite_arg(const Args *a)
{
	const char *p = need(a, "profile");

	if (strcmp(p, "A") == 0 || strcmp(p, "a") == 0)
		return CP_SUITE_A;
	if (strcmp(p, "B") == 0 || strcmp(p, "b") == 0)
		return CP_SUITE_B;
	usage_error("%s: --profile: want A or B, got '%s'", a->cmd, p);
}

static CpKey *
public_key_arg(const Args *a, CpSuite suite, const char *name)
{
	uint8_t buf[65];
	size_t n = hex_arg(a, name, need(a, name), buf, sizeof buf, 0);
	CpKey *key = NULL;

	if (suite == CP_SUITE_A && n == 32)
		key = cp_x25519_from_public(buf);
	else if (suite == CP_SUITE_B && (n == 33 || n == 65))
		key = cp_p256_from_public(buf, n);
	else
		usage_error("%s: --%s: want %s", a->cmd, name,
			    suite == CP_SUITE_A ? "32 bytes (X25519)" : "33 or 65 bytes (P-256 point)");
	if (!key)
		usage_error("%s: --%s: not a valid public key", a->cmd, name);
	return key;
}

static CpKey *
private_key_arg(const Args *a, CpSuite suite, const char *name)
{
	uint8_t buf[32];
	CpKey *key;

	hex_arg(a, name, need(a, name), buf, sizeof buf, 32);
	key = suite == CP_SUITE_A ? cp_x25519_from_private(buf) : cp_p256_from_private(buf);
	cp_cleanse(buf, sizeof buf);
	if (!key)
		usage_error("%s: --%s: not a valid private key", a->cmd, name);
	return key;
}

static const OptSpec ecies_enc_opts[] = {
	{ .name = "profile" }, { .name = "pubkey" }, { .name = "eph-privkey" }, { .name = "plaintext" }, { .name = NULL }
};

static int
cmd_ecies_encrypt(int argc, char **argv)
{
	static uint8_t plain[4096], cipher[4096];
	uint8_t eph_pub[CP_ECIES_EPH_MAX], mac[CP_ECIES_MAC_LEN];
	CpKey *pub, *eph = NULL;
	CpSuite suite;
	CpError err;
	size_t n;
	Args a;
	CpJson j;

	parse_args(&a, "ecies-encrypt", ecies_enc_opts, argc, argv, false);
	suite = suite_arg(&a);
	pub = public_key_arg(&a, suite, "pubkey");
	if (opt(&a, "eph-privkey"))
		eph = private_key_arg(&a, suite, "eph-privkey");
	n = hex_arg(&a, "plaintext", need(&a, "plaintext"), plain, sizeof plain, 0);

	err = cp_ecies_encrypt(suite, pub, eph, plain, n, eph_pub, cipher, mac, NULL);
	cp_key_free(pub);
	cp_key_free(eph);
	if (err)
		return fail(err, "ecies-encrypt");

	cp_json_init(&j, stdout, false);
	cp_json_begin_object(&j, NULL);
	cp_json_hex(&j, "eph-pubkey", eph_pub, cp_ecies_eph_len(suite));
	cp_json_hex(&j, "ciphertext", cipher, n);
	cp_json_hex(&j, "mac", mac, sizeof mac);
	cp_json_end_object(&j);
	cp_json_finish(&j);
	cp_cleanse(plain, n);
	return 0;
}

static const OptSpec ecies_dec_opts[] = {
	{ .name = "profile" }, { .name = "privkey" }, { .name = "eph-pubkey" }, { .name = "ciphertext" }, { .name = "mac" }, { .name = NULL }
};

static int
cmd_ecies_decrypt(int argc, char **argv)
{
	static uint8_t plain[4096], cipher[4096];
	uint8_t eph_pub[65], mac[CP_ECIES_MAC_LEN];
	size_t n, eph_len;
	CpKey *priv;
	CpSuite suite;
	CpError err;
	Args a;
	CpJson j;

	parse_args(&a, "ecies-decrypt", ecies_dec_opts, argc, argv, false);
	suite = suite_arg(&a);
	priv = private_key_arg(&a, suite, "privkey");
	eph_len = hex_arg(&a, "eph-pubkey", need(&a, "eph-pubkey"), eph_pub, sizeof eph_pub, 0);
	n = hex_arg(&a, "ciphertext", need(&a, "ciphertext"), cipher, sizeof cipher, 0);
	hex_arg(&a, "mac", need(&a, "mac"), mac, sizeof mac, CP_ECIES_MAC_LEN);

	err = cp_ecies_decrypt(suite, priv, eph_pub, eph_len, cipher, n, mac, plain, NULL);
	cp_key_free(priv);
	if (err)
		return fail(err, "ecies-decrypt");

	cp_json_init(&j, stdout, false);
	cp_json_begin_object(&j, NULL);
	cp_json_hex(&j, "plaintext", plain, n);
	cp_json_end_object(&j);
	cp_json_finish(&j);
	cp_cleanse(plain, n);
	return 0;
}

/* ---- keys ---- */

static uint64_t uint_arg(const Args *a, const char *name, uint64_t dflt);

static const OptSpec keys_opts[] = {
	{ .name = "kc" }, { .name = "device-id" }, { .name = "supi" }, { .name = "op" }, { .name = "nonce" },
	{ .name = "device-info" }, { .name = "generation" }, { .name = NULL }
};

static int
cmd_keys(int argc, char **argv)
{
	static uint8_t info[CP_RECORD_MAX];
	uint8_t device_id[CP_DEVICE_ID_LEN], nonce[CP_NONCE_LEN];
	cp_auto_secret *kc = NULL, *op = NULL, *kp = NULL, *k_usim = NULL, *opc = NULL,
		*k_sm = NULL, *k2 = NULL, *k_prof = NULL;
	const char *supi;
	size_t info_len;
	Args a;
	CpJson j;

	parse_args(&a, "keys", keys_opts, argc, argv, false);
	kc = secret_arg(&a, "kc", CP_K_AUSF_LEN);
	hex_arg(&a, "device-id", need(&a, "device-id"), device_id, sizeof device_id, CP_DEVICE_ID_LEN);
	supi = need(&a, "supi");
	if (!cp_supi_valid(supi))
		usage_error("keys: --supi: want 6-15 decimal digits");
	op = secret_arg(&a, "op", 16);
	hex_arg(&a, "nonce", need(&a, "nonce"), nonce, sizeof nonce, CP_NONCE_LEN);
	info_len = hex_arg(&a, "device-info", need(&a, "device-info"), info, sizeof info, 0);

	/* the AUSF's key generation of the device's subscription (1: the first) */
	kp = cp_keys_k_prime_gen(kc, device_id, supi, uint_arg(&a, "generation", 1));
	k_usim = kp ? cp_keys_k_usim(kp) : NULL;
	opc = k_usim ? cp_keys_opc(k_usim, op) : NULL;
	k_sm = kp ? cp_keys_k_sm(kp, device_id) : NULL;
	k2 = k_sm ? cp_keys_k2(k_sm, nonce, info, info_len) : NULL;
	k_prof = k_sm ? cp_keys_k_prof(k_sm, nonce) : NULL;
	if (!kp || !k_usim || !opc || !k_sm || !k2 || !k_prof)
		return fail(CP_ERR_CRYPTO, "keys");

	cp_json_init(&j, stdout, false);
	cp_json_begin_object(&j, NULL);
	cp_json_hex(&j, "k-prime", kp->data, kp->len);
	cp_json_hex(&j, "k-usim", k_usim->data, k_usim->len);
	cp_json_hex(&j, "opc", opc->data, opc->len);
	cp_json_hex(&j, "k-sm", k_sm->data, k_sm->len);
	cp_json_hex(&j, "k2", k2->data, k2->len);
	cp_json_hex(&j, "k-prof", k_prof->data, k_prof->len);
	cp_json_end_object(&j);
	cp_json_finish(&j);
	return 0;
}

/* ---- decode ---- */

static const OptSpec decode_opts[] = {
	{ .name = "k-prof" }, { .name = "k2" }, { .name = "pubkey" }, { .name = "device-key" }, { .name = "device-info" },
	{ .name = "last-seq" }, { .name = "now" }, { .name = "operator-roots" }, { .name = "pin" },
	{ .name = "binding" }, { .name = "ble", .flag = true }, { .name = NULL }
};

static uint8_t *
read_file(const char *path, size_t *len)
{
	static uint8_t buf[65536];
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t n;

	if (!f)
		usage_error("decode: cannot open %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof buf, f);
	if (!feof(f))
		usage_error("decode: %s: larger than %zu bytes", path, sizeof buf);
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
}

/* A PEM key file: a private key, or for public a certificate's public key too. */
static CpKey *
pem_file_arg(const Args *a, const char *name, bool public)
{
	const char *path = opt(a, name);
	size_t len;
	uint8_t *pem;
	CpKey *key;

	if (!path)
		return NULL;
	pem = read_file(path, &len);
	key = cp_pkey_from_pem((const char *)pem, len);
	if (!key && public)
		key = cp_pubkey_from_pem((const char *)pem, len);
	cp_cleanse(pem, len);
	if (!key)
		usage_error("decode: --%s: %s holds no PEM key", name, path);
	return key;
}

static uint64_t
uint_arg(const Args *a, const char *name, uint64_t dflt)
{
	const char *v = opt(a, name);
	char *end;
	unsigned long long n;

	if (!v)
		return dflt;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *v == '\0' || *end || *v == '-')
		usage_error("%s: --%s: not a decimal number: '%s'", a->cmd, name, v);
	return n;
}

static void
json_device_record(CpJson *j, const CpDeviceRecord *dr)
{
	static const char *states[] = { "unprovisioned", "provisioning", "provisioned", "failed" };

	cp_json_uint(j, "version", dr->version);
	cp_json_hex(j, "device-id", dr->device_id, sizeof dr->device_id);
	cp_json_string(j, "manufacturer", dr->manufacturer);
	cp_json_string(j, "model", dr->model);
	cp_json_string(j, "serial", dr->serial);
	cp_json_begin_array(j, "suites");
	for (size_t i = 0; i < dr->n_suites; i++)
		cp_json_string(j, NULL, dr->suites[i] == CP_SUITE_A ? "A" : "B");
	cp_json_end_array(j);
	cp_json_string(j, "state", dr->state < 4 ? states[dr->state] : "?");
	cp_json_uint(j, "att-counter", dr->att_counter);
	cp_json_hex(j, "att-random", dr->att_random, sizeof dr->att_random);
	cp_json_hex(j, "att-signature", dr->att_signature, dr->att_signature_len);
}

static void
json_profile(CpJson *j, const CpProfile *p)
{
	cp_json_uint(j, "version", p->version);
	cp_json_hex(j, "device-id", p->device_id, sizeof p->device_id);
	cp_json_uint(j, "profile-seq", p->profile_seq);
	cp_json_hex(j, "nonce", p->nonce, sizeof p->nonce);
	if (p->has_not_after)
		cp_json_uint(j, "not-after", p->not_after);
	cp_json_string(j, "operation", p->operation == CP_OP_CLAIM ? "claim" :
		       p->operation == CP_OP_REPROVISION ? "reprovision" : "transfer");
	cp_json_uint(j, "binding-version", p->binding_version);
	if (p->has_replaces)
		cp_json_uint(j, "replaces", p->replaces);
	cp_json_hex(j, "enc-cred", p->enc_cred, p->enc_cred_len);
	cp_json_string(j, "plmn", p->plmn);
	cp_json_string(j, "network-name", p->network_name);
	cp_json_string(j, "supi", p->supi);
	cp_json_string(j, "apn", p->apn);
	if (p->has_msisdn)
		cp_json_string(j, "msisdn", p->msisdn);
	cp_json_hex(j, "op-chain", p->op_chain, p->op_chain_len);
	cp_json_hex(j, "op-signature", p->op_signature, p->op_signature_len);
	cp_json_hex(j, "mac", p->mac, sizeof p->mac);
}

static void
json_receipt(CpJson *j, const CpReceipt *r)
{
	static const char *status[] = { "accepted", "provisioned", "rejected", "failed",
					"decommissioned" };

	cp_json_uint(j, "version", r->version);
	cp_json_hex(j, "device-id", r->device_id, sizeof r->device_id);
	cp_json_uint(j, "profile-seq", r->profile_seq);
	cp_json_string(j, "status", r->status < 5 ? status[r->status] : "?");
	cp_json_uint(j, "reason", r->reason);
	cp_json_string(j, "reason-name", r->reason ? cp_error_name(r->reason) : "none");
	if (r->has_registration)
		cp_json_string(j, "registration", r->registration);
	cp_json_uint(j, "binding-version", r->binding_version);
	cp_json_hex(j, "device-signature", r->device_signature, r->device_signature_len);
	if (r->has_mac)
		cp_json_hex(j, "mac", r->mac, sizeof r->mac);
}

static void
json_command(CpJson *j, const CpCommand *c)
{
	cp_json_uint(j, "version", c->version);
	cp_json_hex(j, "device-id", c->device_id, sizeof c->device_id);
	cp_json_uint(j, "seq", c->seq);
	if (c->has_not_after)
		cp_json_uint(j, "not-after", c->not_after);
	cp_json_string(j, "command", c->command == CP_COMMAND_DECOMMISSION ? "decommission" : "?");
	cp_json_uint(j, "binding-version", c->binding_version);
	cp_json_hex(j, "op-chain", c->op_chain, c->op_chain_len);
	cp_json_hex(j, "op-signature", c->op_signature, c->op_signature_len);
}

typedef enum { KIND_UNKNOWN, KIND_DEVICE, KIND_PROFILE, KIND_RECEIPT, KIND_COMMAND } Kind;

/*
 * Which structure this is: the strict decoders accept at most one of
 * them. When none does, guess from the tags for the error report: a
 * device record has tag 0x0A, a profile 0x10, a receipt a 1-byte 0x04.
 */
static Kind
classify(const uint8_t *buf, size_t len, CpError *err)
{
	CpDeviceRecord dr;
	CpProfile p;
	CpReceipt r;
	CpError e_dr, e_p, e_r;
	bool has10 = false, has0a = false, status1 = false;

	if ((e_dr = cp_device_record_decode(buf, len, &dr)) == CP_OK)
		return KIND_DEVICE;
	if ((e_p = cp_profile_decode(buf, len, &p)) == CP_OK)
		return KIND_PROFILE;
	if ((e_r = cp_receipt_decode(buf, len, &r)) == CP_OK)
		return KIND_RECEIPT;
	{
		CpCommand *c = malloc(sizeof *c);
		bool is_command = c && cp_command_decode(buf, len, c) == CP_OK;

		free(c);
		if (is_command)
			return KIND_COMMAND;
	}

	for (size_t off = 0; off + 3 <= len;) {
		size_t l = cp_be16(buf + off + 1);

		if (buf[off] == 0x0A)
			has0a = true;
		if (buf[off] == 0x10)
			has10 = true;
		if (buf[off] == 0x04 && l == 1)
			status1 = true;
		off += 3 + l;
	}
	if (has10) {
		*err = e_p;
		return KIND_PROFILE;
	}
	if (has0a) {
		*err = e_dr;
		return KIND_DEVICE;
	}
	if (status1) {
		*err = e_r;
		return KIND_RECEIPT;
	}
	*err = e_p;
	return KIND_UNKNOWN;
}

static const char *const kind_names[] = { "structure", "device record", "profile", "receipt",
					   "command" };

/* Strictly as the kind said (an NDEF record's MIME type), no guessing. */
static CpError
decode_as(Kind kind, const uint8_t *buf, size_t len)
{
	CpDeviceRecord dr;
	CpProfile p;
	CpReceipt r;

	switch (kind) {
	case KIND_DEVICE:
		return cp_device_record_decode(buf, len, &dr);
	case KIND_PROFILE:
		return cp_profile_decode(buf, len, &p);
	case KIND_RECEIPT:
		return cp_receipt_decode(buf, len, &r);
	case KIND_COMMAND: {
		CpCommand *c = malloc(sizeof *c);
		CpError err = c ? cp_command_decode(buf, len, c) : CP_ERR_CRYPTO;

		free(c);
		return err;
	}
	case KIND_UNKNOWN:
		break;
	}
	return CP_ERR_ARGUMENT;
}

/*
 * expect KIND_UNKNOWN: recognise the structure; otherwise it must be of
 * that kind, and another structure in its place is a type mismatch.
 */
static int
decode_structure(CpJson *j, const Args *a, const uint8_t *buf, size_t len, const char *where,
		 Kind expect)
{
	CpError err = CP_OK;
	Kind kind;
	char what[160];

	if (expect != KIND_UNKNOWN) {
		err = decode_as(expect, buf, len);
		if (err) {
			CpError other_err = CP_OK;
			Kind found = classify(buf, len, &other_err);

			if (!other_err && found != expect) {
				snprintf(what, sizeof what, "%s: type mismatch: a %s where a %s belongs",
					 where, kind_names[found], kind_names[expect]);
				return fail(CP_ERR_BAD_VALUE, what);
			}
		}
		kind = expect;
	} else {
		kind = classify(buf, len, &err);
	}
	if (err) {
		snprintf(what, sizeof what, "%s%s%s", where ? where : "", where ? ": " : "", kind_names[kind]);
		return fail(err, what);
	}

	switch (kind) {
	case KIND_DEVICE: {
		CpDeviceRecord dr;
		CpKey *pub = pem_file_arg(a, "pubkey", true);

		cp_device_record_decode(buf, len, &dr);
		cp_json_string(j, "type", "device-record");
		cp_json_begin_object(j, "fields");
		json_device_record(j, &dr);
		cp_json_end_object(j);
		cp_json_hex(j, "device-info", buf, dr.info_len);
		if (pub) {
			err = cp_device_record_verify(buf, len, pub, &dr);
			cp_key_free(pub);
			if (err)
				return fail(err, "device record signature");
			cp_json_bool(j, "signature-verified", true);
		}
		break;
	}
	case KIND_PROFILE: {
		CpProfile p;
		CpKey *key;

		cp_profile_decode(buf, len, &p);
		cp_json_string(j, "type", "profile");
		cp_json_begin_object(j, "fields");
		json_profile(j, &p);
		cp_json_end_object(j);
		if (opt(a, "k-prof")) {
			cp_auto_secret *k_prof = secret_arg(a, "k-prof", 32);
			uint8_t mac[CP_MAC_LEN];

			if (len < CP_TLV_HDR + CP_MAC_LEN ||
			    cp_hmac_sha256(k_prof->data, k_prof->len, buf, len - CP_TLV_HDR - CP_MAC_LEN, mac) ||
			    !cp_memeq_consttime(mac, p.mac, CP_MAC_LEN))
				return fail(CP_ERR_MAC, "profile mac");
			cp_json_bool(j, "mac-verified", true);
		}
		/* Loaded only now: a failed mac check above returns. */
		key = pem_file_arg(a, "device-key", false);
		if (key) {
			static uint8_t info[CP_RECORD_MAX];
			uint8_t device_id[CP_DEVICE_ID_LEN];
			CpProfileKeys keys = { 0 };
			CpVerifyContext ctx = { 0 };
			uint8_t suites[] = { CP_SUITE_A, CP_SUITE_B };
			uint8_t pin[CP_SHA256_LEN];
			CpAnchors *anchors = NULL;

			if (!opt(a, "device-info"))
				usage_error("decode: --device-key needs --device-info (the device record tags 0x01-0x06, hex)");
			ctx.device_info_len = hex_arg(a, "device-info", opt(a, "device-info"), info, sizeof info, 0);
			ctx.device_info = info;
			if (cp_device_id(key, device_id))
				usage_error("decode: --device-key: not a P-256 key");
			ctx.device_id = device_id;
			ctx.device_key = key;
			ctx.suites = suites;
			ctx.n_suites = 2;
			ctx.last_seq = uint_arg(a, "last-seq", 0);
			ctx.now = uint_arg(a, "now", (uint64_t)time(NULL));
			/* The device's trust: its anchors (none: trust on first
			 * use), and once bound its pin and binding version. */
			if (opt(a, "operator-roots")) {
				const char *path = opt(a, "operator-roots");
				char pem[16384];
				size_t n = 0;
				FILE *f = fopen(path, "rb");

				/* Not read_file(): its buffer holds the structure. */
				if (!f)
					usage_error("decode: cannot open %s: %s", path, strerror(errno));
				n = fread(pem, 1, sizeof pem, f);
				fclose(f);
				if (n == sizeof pem || cp_anchors_from_pem(pem, n, &anchors))
					usage_error("decode: --operator-roots: %s holds no CA certificate", path);
				ctx.anchors = anchors;
			}
			if (opt(a, "pin") || opt(a, "binding")) {
				if (!opt(a, "pin") || !opt(a, "binding"))
					usage_error("decode: --pin and --binding go together (a bound device)");
				hex_arg(a, "pin", opt(a, "pin"), pin, sizeof pin, sizeof pin);
				ctx.operator_pin = pin;
				ctx.bound = true;
				ctx.binding_version = uint_arg(a, "binding", 0);
			}
			err = cp_profile_verify(buf, len, &ctx, &p, &keys);
			cp_key_free(key);
			cp_anchors_free(anchors);
			if (err) {
				cp_profile_keys_clear(&keys);
				return fail(err, "profile verification");
			}
			cp_json_bool(j, "verified", true);
			cp_json_begin_object(j, "operator");
			cp_json_string(j, "name", p.op.name);
			cp_json_hex(j, "root-spki-sha256", p.op.root, sizeof p.op.root);
			cp_json_end_object(j);
			cp_json_begin_object(j, "keys");
			cp_json_hex(j, "k-prime", keys.k_prime->data, keys.k_prime->len);
			cp_json_hex(j, "opc", keys.opc->data, keys.opc->len);
			cp_json_hex(j, "k-usim", keys.k_usim->data, keys.k_usim->len);
			cp_json_hex(j, "k-sm", keys.k_sm->data, keys.k_sm->len);
			cp_json_hex(j, "k-prof", keys.k_prof->data, keys.k_prof->len);
			cp_json_hex(j, "k2", keys.k2->data, keys.k2->len);
			cp_json_end_object(j);
			cp_profile_keys_clear(&keys);
		}
		break;
	}
	case KIND_RECEIPT: {
		CpReceipt r;

		cp_receipt_decode(buf, len, &r);
		cp_json_string(j, "type", "receipt");
		cp_json_begin_object(j, "fields");
		json_receipt(j, &r);
		cp_json_end_object(j);
		if (opt(a, "k2")) {
			cp_auto_secret *k2 = secret_arg(a, "k2", 32);

			if ((err = cp_receipt_verify(buf, len, k2, &r)))
				return fail(err, "receipt mac");
			cp_json_bool(j, "mac-verified", true);
		}
		if (opt(a, "pubkey")) {
			CpKey *pub = pem_file_arg(a, "pubkey", true);

			err = cp_receipt_verify_device(buf, len, pub, &r);
			cp_key_free(pub);
			if (err)
				return fail(err, "receipt signature");
			cp_json_bool(j, "signature-verified", true);
		}
		break;
	}
	case KIND_COMMAND: {
		CpCommand *c = malloc(sizeof *c);

		if (!c || cp_command_decode(buf, len, c) != CP_OK) {
			free(c);
			return fail(CP_ERR_CRYPTO, "command");
		}
		cp_json_string(j, "type", "command");
		cp_json_begin_object(j, "fields");
		json_command(j, c);
		cp_json_end_object(j);
		free(c);
		break;
	}
	case KIND_UNKNOWN:
		break;
	}
	return 0;
}

static bool
mime_is(const CpNdefRecord *r, const char *mime)
{
	return r->tnf == CP_TNF_MIME && r->type_len == strlen(mime) &&
	       memcmp(r->type, mime, r->type_len) == 0;
}

static int
decode_ndef(CpJson *j, const Args *a, const uint8_t *buf, size_t len)
{
	CpNdefMessage msg;
	CpError err;

	if ((err = cp_ndef_parse(buf, len, &msg)))
		return fail(err, "ndef");
	cp_json_string(j, "type", "ndef");
	cp_json_begin_array(j, "records");
	for (size_t i = 0; i < msg.n_records; i++) {
		const CpNdefRecord *r = &msg.records[i];

		cp_json_begin_object(j, NULL);
		cp_json_uint(j, "tnf", r->tnf);
		cp_json_string_len(j, "record-type", r->type, r->type_len);
		if (r->id_len)
			cp_json_hex(j, "id", r->id, r->id_len);
		if (r->tnf == CP_TNF_WELL_KNOWN && r->type_len == 1 && r->type[0] == 'U') {
			char *uri = NULL;

			if ((err = cp_ndef_uri_decode(r->payload, r->payload_len, &uri)))
				return fail(err, "ndef uri record");
			cp_json_string(j, "uri", uri);
			free(uri);
		} else if (mime_is(r, CP_MIME_DEVICE) || mime_is(r, CP_MIME_PROFILE) ||
			   mime_is(r, CP_MIME_RECEIPT) || mime_is(r, CP_MIME_COMMAND)) {
			Kind kind = mime_is(r, CP_MIME_DEVICE) ? KIND_DEVICE :
				    mime_is(r, CP_MIME_PROFILE) ? KIND_PROFILE :
				    mime_is(r, CP_MIME_RECEIPT) ? KIND_RECEIPT : KIND_COMMAND;
			char where[96];
			int rc;

			snprintf(where, sizeof where, "ndef record %zu (%.*s)", i, (int)r->type_len,
				 (const char *)r->type);
			cp_json_begin_object(j, "payload");
			rc = decode_structure(j, a, r->payload, r->payload_len, where, kind);
			if (rc)
				return rc;
			cp_json_end_object(j);
		} else {
			cp_json_hex(j, "payload", r->payload, r->payload_len);
		}
		cp_json_end_object(j);
	}
	cp_json_end_array(j);
	return 0;
}

/*
 * --ble: a captured segment stream, one segment a line: "> HEX" written by
 * the phone, "< HEX" indicated by the device, "> @OFFSET HEX" a piece of
 * a long write; '#' comments and blank lines aside. Each side's link
 * receives what the other sent and counts what it sent itself, so every
 * rule of docs/protocol.md 18.4 is checked on both directions.
 */
static int
decode_ble_message(CpJson *j, const Args *a, const uint8_t *msg, size_t len, bool to_device,
		   size_t segments)
{
	CpBleMessage m;
	CpError err;

	cp_json_begin_object(j, NULL);
	cp_json_string(j, "direction", to_device ? "phone-to-device" : "device-to-phone");
	cp_json_uint(j, "segments", segments);
	cp_json_uint(j, "length", len);
	if ((err = cp_ble_message_parse(msg, len, &m)))
		return fail(err, "ble message");
	cp_json_uint(j, "version", msg[0]);
	if (cp_ble_op_name(m.op))
		cp_json_string(j, "op", cp_ble_op_name(m.op));
	else
		cp_json_uint(j, "op-code", m.op);
	cp_json_bool(j, "response", m.response);
	if (m.response) {
		cp_json_uint(j, "status", m.status);
		cp_json_string(j, "status-name", cp_error_name(m.status));
	}
	if (m.body_len > 0) {
		int rc;

		cp_json_begin_object(j, "body");
		if ((rc = decode_ndef(j, a, m.body, m.body_len)))
			return rc;
		cp_json_end_object(j);
	}
	cp_json_end_object(j);
	return 0;
}

static int
decode_ble(CpJson *j, const Args *a, uint8_t *text, size_t len)
{
	CpBleLink *dev = cp_ble_link_new(CP_BLE_MTU_MAX, 0), *phone = cp_ble_link_new(CP_BLE_MTU_MAX, 0);
	size_t counts[2] = { 0, 0 }, total = 0, lineno = 0;
	char *save = NULL, *line;
	int rc = 0;

	if (!dev || !phone)
		return fail(CP_ERR_CRYPTO, "ble");
	if (memchr(text, '\0', len)) {
		rc = fail(CP_ERR_BLE_SEGMENT, "ble: the stream is not text");
		goto out;
	}
	text[len] = '\0';
	cp_json_string(j, "type", "ble-stream");
	cp_json_begin_array(j, "messages");
	for (line = strtok_r((char *)text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		static uint8_t seg[CP_BLE_SEGMENT_MAX];
		char where[64], *p = line, *end;
		unsigned long offset = 0;
		bool to_device, ready = false;
		CpBleLink *rx, *tx;
		CpError err;
		long n;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strlen(p);
		while (end > p && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*p == '\0' || *p == '#')
			continue;
		snprintf(where, sizeof where, "ble line %zu", lineno);
		if ((*p != '>' && *p != '<') || (p[1] != ' ' && p[1] != '\t')) {
			rc = fail(CP_ERR_BLE_SEGMENT, where);
			goto out;
		}
		to_device = *p == '>';
		p += 2;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '@') {
			offset = strtoul(p + 1, &end, 10);
			if (end == p + 1 || (*end != ' ' && *end != '\t') || offset > 0xFFFF) {
				rc = fail(CP_ERR_BLE_OFFSET, where);
				goto out;
			}
			p = end;
			while (*p == ' ' || *p == '\t')
				p++;
		}
		n = cp_hex_decode(p, seg, sizeof seg);
		if (n <= 0) {
			rc = fail(CP_ERR_BLE_SEGMENT, where);
			goto out;
		}
		rx = to_device ? dev : phone;
		tx = to_device ? phone : dev;
		total++;
		if (offset == 0)
			counts[to_device]++;
		if ((err = cp_ble_link_receive(rx, 0, offset, seg, (size_t)n, &ready)) ||
		    (offset == 0 && (err = cp_ble_link_sent(tx, 0, seg, (size_t)n)))) {
			rc = fail(err, where);
			goto out;
		}
		if (ready) {
			size_t mlen;
			const uint8_t *msg = cp_ble_link_message(rx, &mlen);

			if ((rc = decode_ble_message(j, a, msg, mlen, to_device, counts[to_device])))
				goto out;
			counts[to_device] = 0;
			cp_ble_link_take(rx);
		}
	}
	if (total == 0) {
		/* nothing but blank lines and comments: not a capture */
		rc = fail(CP_ERR_BLE_SEGMENT, "ble: no segment in the stream");
		goto out;
	}
	if (cp_ble_link_receiving(dev) || cp_ble_link_receiving(phone)) {
		/* the messages before it were fine; this one never ended */
		rc = fail(CP_ERR_BLE_LENGTH, cp_ble_link_receiving(dev) ?
			  "ble: the stream ends inside a message to the device" :
			  "ble: the stream ends inside a message to the phone");
		goto out;
	}
	cp_json_end_array(j);
	cp_json_uint(j, "segments", total);
out:
	cp_ble_link_free(dev);
	cp_ble_link_free(phone);
	return rc;
}

static int
cmd_decode(int argc, char **argv)
{
	static uint8_t copy[65536];
	size_t len;
	uint8_t *buf;
	CpJson j;
	Args a;
	int rc;

	parse_args(&a, "decode", decode_opts, argc, argv, true);
	buf = read_file(a.positional, &len);

	/* Write JSON into memory first: a failure prints only the error. */
	char *out = NULL;
	size_t out_len = 0;
	FILE *mem = open_memstream(&out, &out_len);

	if (!mem)
		return fail(CP_ERR_CRYPTO, "decode");
	cp_json_init(&j, mem, true);
	cp_json_begin_object(&j, NULL);

	memcpy(copy, buf, len);
	if (flag(&a, "ble")) {
		if (len >= sizeof copy)
			usage_error("decode: %s: larger than %zu bytes", a.positional, sizeof copy - 1);
		rc = decode_ble(&j, &a, copy, len);
	} else if (len >= 2 && cp_be16(copy) == len - 2 && len > 2 && copy[2] != 0x01) {
		/* A T4T NDEF file starts with NLEN: accept it as the tag holds it. */
		cp_json_uint(&j, "nlen", len - 2);
		rc = decode_ndef(&j, &a, copy + 2, len - 2);
	} else if (len > 0 && copy[0] != 0x01) {
		rc = decode_ndef(&j, &a, copy, len);
	} else {
		rc = decode_structure(&j, &a, copy, len, NULL, KIND_UNKNOWN);
	}
	cp_json_end_object(&j);
	cp_json_finish(&j);
	fclose(mem);
	if (rc == 0)
		fwrite(out, 1, out_len, stdout);
	cp_cleanse(out, out_len);
	free(out);
	return rc;
}

/* ---- vectors ---- */

static const OptSpec vectors_opts[] = {
	{ .name = "signature" }, { .name = "op-root-cert" }, { .name = "op-sm-cert" },
	{ .name = "op-signature" }, { .name = "receipt-signature" }, { .name = "command-signature" },
	{ .name = "output" }, { .name = "explain", .flag = true },
	{ .name = NULL }
};

static int
cmd_vectors(int argc, char **argv)
{
	static uint8_t sig[CP_ECDSA_MAX], op_sig[CP_ECDSA_MAX], root[CP_CHAIN_MAX], sm[CP_CHAIN_MAX];
	static uint8_t rc_sig[CP_ECDSA_MAX], cmd_sig[CP_ECDSA_MAX];
	CpToolVectorsPublished pub = { 0 };
	FILE *out = stdout;
	CpError err;
	Args a;

	parse_args(&a, "vectors", vectors_opts, argc, argv, false);
	/* The randomised parts of a published file, to reproduce it. */
	if (opt(&a, "signature")) {
		pub.att_signature_len = hex_arg(&a, "signature", opt(&a, "signature"), sig, sizeof sig, 0);
		pub.att_signature = sig;
	}
	if (opt(&a, "op-signature")) {
		pub.op_signature_len = hex_arg(&a, "op-signature", opt(&a, "op-signature"), op_sig,
					       sizeof op_sig, 0);
		pub.op_signature = op_sig;
	}
	if (opt(&a, "receipt-signature")) {
		pub.receipt_signature_len = hex_arg(&a, "receipt-signature", opt(&a, "receipt-signature"),
						    rc_sig, sizeof rc_sig, 0);
		pub.receipt_signature = rc_sig;
	}
	if (opt(&a, "command-signature")) {
		pub.command_signature_len = hex_arg(&a, "command-signature", opt(&a, "command-signature"),
						    cmd_sig, sizeof cmd_sig, 0);
		pub.command_signature = cmd_sig;
	}
	if (!opt(&a, "op-root-cert") != !opt(&a, "op-sm-cert"))
		usage_error("vectors: --op-root-cert and --op-sm-cert go together");
	if (opt(&a, "op-root-cert")) {
		pub.op_root_cert_len = hex_arg(&a, "op-root-cert", opt(&a, "op-root-cert"), root,
					       sizeof root, 0);
		pub.op_root_cert = root;
		pub.op_sm_cert_len = hex_arg(&a, "op-sm-cert", opt(&a, "op-sm-cert"), sm, sizeof sm, 0);
		pub.op_sm_cert = sm;
	}
	if (opt(&a, "output") && !(out = fopen(opt(&a, "output"), "w")))
		usage_error("vectors: cannot write %s: %s", opt(&a, "output"), strerror(errno));
	err = cp_tool_vectors(out, flag(&a, "explain") ? stderr : NULL, &pub);
	if (out != stdout && fclose(out) != 0)
		usage_error("vectors: cannot write %s: %s", opt(&a, "output"), strerror(errno));
	return err ? fail(err, "vectors") : 0;
}

static void
help(FILE *f)
{
	fputs("Usage: cellprov-tool COMMAND [OPTIONS]\n"
	      "\n"
	      "The cellprov protocol library, offline. Bytes are hex; output is JSON.\n"
	      "\n"
	      "Commands:\n"
	      "  milenage --k HEX (--op HEX | --opc HEX) --rand HEX --sqn HEX --amf HEX\n"
	      "      OPc and Milenage f1, f1*, f2, f3, f4, f5, f5* (TS 35.206)\n"
	      "  kdf --key HEX --fc HEX [--param HEX ...]\n"
	      "      TS 33.220 Annex B.2 generic KDF\n"
	      "  ecies-encrypt --profile A|B --pubkey HEX [--eph-privkey HEX] --plaintext HEX\n"
	      "  ecies-decrypt --profile A|B --privkey HEX --eph-pubkey HEX --ciphertext HEX --mac HEX\n"
	      "      TS 33.501 Annex C ECIES (A: X25519, B: P-256)\n"
	      "  keys --kc HEX --device-id HEX --supi DIGITS --op HEX --nonce HEX --device-info HEX\n"
	      "         [--generation N]\n"
	      "      the cellprov key schedule: K', K_usim, OPc, K_SM, K'', K_prof\n"
	      "  decode FILE [--k-prof HEX] [--k2 HEX] [--pubkey PEM] [--device-key PEM\n"
	      "         --device-info HEX [--last-seq N] [--now UNIX] [--operator-roots PEM]\n"
	      "         [--pin HEX --binding N]] [--ble]\n"
	      "      decode an NDEF message (optionally with its T4T NLEN), a device record,\n"
	      "      a profile or a receipt; the key options verify MACs, the signature, or\n"
	      "      the whole profile as the device does (FILE - reads stdin); --ble: FILE\n"
	      "      is a BLE segment stream (\"> HEX\" phone to device, \"< HEX\" device to\n"
	      "      phone), decoded into its messages and the NDEF inside\n"
	      "  vectors [--signature HEX] [--op-root-cert HEX --op-sm-cert HEX] [--op-signature HEX]\n"
	      "         [--receipt-signature HEX] [--command-signature HEX] [--output FILE] [--explain]\n"
	      "      the published test vectors of docs/test-vectors/, from fixed inputs\n"
	      "\n"
	      "Options:\n"
	      "  -h, --help      this text\n"
	      "  -V, --version   print the version and exit\n"
	      "\n"
	      "Exit status: 0 success, 1 the input failed a check, 2 bad arguments.\n", f);
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ .name = "milenage", cmd_milenage },
		{ .name = "kdf", cmd_kdf },
		{ .name = "ecies-encrypt", cmd_ecies_encrypt },
		{ .name = "ecies-decrypt", cmd_ecies_decrypt },
		{ .name = "keys", cmd_keys },
		{ .name = "decode", cmd_decode },
		{ .name = "vectors", cmd_vectors },
	};

	if (argc < 2)
		usage_error("missing command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		help(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("cellprov-tool %s\n", CP_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			for (int k = 2; k < argc; k++)
				if (strcmp(argv[k], "--help") == 0) {
					help(stdout);
					return 0;
				}
			return cmds[i].fn(argc - 2, argv + 2);
		}
	}
	usage_error("unknown command '%s'", argv[1]);
}
