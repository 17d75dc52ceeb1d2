/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov-mfg: the factory step. Makes a development manufacturer CA
 * (root + intermediate), then for each device a P-256 key, its certificate,
 * the DeviceID and certificate URL, the device config and the chain file
 * the certificate server publishes at that URL.
 *
 * Every run is idempotent: what exists and still fits is kept, so running
 * the same command twice gives the same device. A device key is never
 * replaced without --force, because the certificate, the DeviceID and any
 * subscription made for the device all hang on it.
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cp-crypto-openssl.h"
#include "cp-config.h"
#include "cellprov.h"
#include "cp-glib.h"

#define ROOT_KEY "root-key.pem"
#define ROOT_CERT "root-cert.pem"
#define INT_KEY "intermediate-key.pem"
#define INT_CERT "intermediate-cert.pem"

static gboolean opt_json;

/* A JSON string literal (quotes included) for any UTF-8 text. */
static char *
jstr(const char *s)
{
	GString *o = g_string_new("\"");

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(o, "\\%c", *p);
		else if (*p < 0x20)
			g_string_append_printf(o, "\\u%04x", *p);
		else
			g_string_append_c(o, (char)*p);
	}
	g_string_append_c(o, '"');
	return g_string_free(o, FALSE);
}

/* ---- small OpenSSL helpers ---- */

static void
set_openssl_error(GError **error, const char *what)
{
	char buf[256] = "";
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	cp_set_error(error, CP_ERR_CRYPTO, "%s failed%s%s", what, *buf ? ": " : "", buf);
}

static CpKey *
load_key(const char *path, GError **error)
{
	g_autofree char *pem = NULL;
	gsize len;
	struct stat st;
	CpKey *key;

	if (stat(path, &st) == 0 && (st.st_mode & 077)) {
		cp_set_error(error, CP_ERR_KEY, "%s is readable by others (mode %04o); make it 0600",
			     path, (unsigned)(st.st_mode & 07777));
		return NULL;
	}
	if (!g_file_get_contents(path, &pem, &len, error))
		return NULL;
	key = cp_pkey_from_pem(pem, len);
	cp_cleanse(pem, len);
	if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
		cp_key_free(key);
		cp_set_error(error, CP_ERR_KEY, "%s is not a P-256 private key in PKCS#8 PEM", path);
		return NULL;
	}
	return key;
}

static gboolean
save_key(const char *path, CpKey *key, GError **error)
{
	char *pem = cp_pkey_to_pem(key);
	gboolean ok;

	if (!pem) {
		cp_set_error(error, CP_ERR_CRYPTO, "cannot encode the key");
		return FALSE;
	}
	ok = cp_file_replace(path, pem, strlen(pem), 0600, error);
	cp_cleanse(pem, strlen(pem));
	free(pem);
	return ok;
}

static X509 *
load_cert(const char *path, GError **error)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = NULL;

	if (bio)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!x) {
		ERR_clear_error();
		cp_set_error(error, CP_ERR_KEY, "%s is not a PEM certificate", path);
	}
	return x;
}

static char *
cert_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (bio && PEM_write_bio_X509(bio, x)) {
		n = BIO_get_mem_data(bio, &data);
		out = g_strndup(data, (gsize)n);
	}
	BIO_free(bio);
	return out;
}

static gboolean
save_cert(const char *path, X509 *x, GError **error)
{
	g_autofree char *pem = cert_pem(x);

	if (!pem) {
		set_openssl_error(error, "PEM encoding");
		return FALSE;
	}
	return cp_file_replace(path, pem, strlen(pem), 0644, error);
}

static gboolean
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	gboolean ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return FALSE;
	ok = X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

typedef struct {
	const char *cn;
	const char *org;
	const char *serial_number;     /* subject serialNumber, NULL for none */
	gint64 not_before;             /* Unix seconds */
	gint64 days;
	gboolean ca;
	int pathlen;                   /* for a CA: -1 = unlimited */
} CertSpec;

/* Issue a certificate for key, signed by issuer_key (self-signed when
 * issuer is NULL). */
static X509 *
issue(const CertSpec *spec, CpKey *key, X509 *issuer, CpKey *issuer_key, GError **error)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	char bc[64];

	if (!x || !name)
		goto fail;
	/* 127-bit random serial: unique without a counter, positive in DER */
	if (cp_random(serial, sizeof(serial)) != CP_OK)
		goto fail;
	serial[0] &= 0x7f;
	serial[0] |= 0x01;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;
	if (!X509_set_version(x, 2))
		goto fail;
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)spec->org, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)spec->cn, -1, -1, 0))
		goto fail;
	if (spec->serial_number &&
	    !X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_UTF8,
					(const unsigned char *)spec->serial_number, -1, -1, 0))
		goto fail;
	if (!X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
		goto fail;
	if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)spec->not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(spec->not_before + spec->days * 86400)))
		goto fail;
	if (!X509_set_pubkey(x, key))
		goto fail;

	if (spec->ca) {
		if (spec->pathlen >= 0)
			g_snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", spec->pathlen);
		else
			g_strlcpy(bc, "critical,CA:TRUE", sizeof(bc));
		if (!add_ext(x, issuer ? issuer : x, NID_basic_constraints, bc) ||
		    !add_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign"))
			goto fail;
	} else {
		/* The device key signs attestations and is the ECIES recipient */
		if (!add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
		    !add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyAgreement"))
			goto fail;
	}
	if (!add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash"))
		goto fail;
	if (issuer && !add_ext(x, issuer, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	if (!X509_sign(x, issuer_key, EVP_sha256()))
		goto fail;
	BN_free(bn);
	X509_NAME_free(name);
	return x;

fail:
	set_openssl_error(error, "issuing a certificate");
	BN_free(bn);
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

/* The key in cert is key's public half. */
static gboolean
cert_matches_key(X509 *cert, CpKey *key)
{
	CpKey *pub = X509_get0_pubkey(cert);

	return pub && EVP_PKEY_eq(pub, key) == 1;
}

static gboolean
cert_issued_by(X509 *cert, X509 *issuer)
{
	CpKey *ipub = X509_get0_pubkey(issuer);

	return ipub && X509_check_issued(issuer, cert) == X509_V_OK && X509_verify(cert, ipub) == 1;
}

static gboolean
ensure_dir(const char *dir, int mode, GError **error)
{
	if (g_mkdir_with_parents(dir, mode) < 0) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot create %s: %s", dir, g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* 9999-12-31T23:59:59Z, the last time an X.509 GeneralizedTime holds */
#define MAX_CERT_TIME G_GINT64_CONSTANT(253402300799)

static gboolean
parse_time(const char *s, gint64 *out, GError **error)
{
	g_autoptr(GDateTime) dt = NULL;
	char *end;
	gint64 v;

	if (!s) {
		*out = g_get_real_time() / G_USEC_PER_SEC - 60;
		return TRUE;
	}
	errno = 0;
	v = g_ascii_strtoll(s, &end, 10);
	if (*s && *end == '\0') {
		if (errno || v < 0 || v > MAX_CERT_TIME) {
			cp_set_error(error, CP_ERR_BAD_VALUE, "--valid-from %s is out of range (1970 to 9999)", s);
			return FALSE;
		}
		*out = v;
		return TRUE;
	}
	dt = g_date_time_new_from_iso8601(s, NULL);
	if (!dt || g_date_time_to_unix(dt) < 0) {
		cp_set_error(error, CP_ERR_BAD_VALUE,
			     "--valid-from '%s' is neither Unix seconds nor ISO 8601 with a zone, from 1970", s);
		return FALSE;
	}
	*out = g_date_time_to_unix(dt);
	return TRUE;
}

/* ---- the CA ---- */

typedef struct {
	CpKey *root_key;
	X509 *root;
	CpKey *int_key;
	X509 *intermediate;
} Ca;

static void
ca_clear(Ca *ca)
{
	cp_key_free(ca->root_key);
	X509_free(ca->root);
	cp_key_free(ca->int_key);
	X509_free(ca->intermediate);
	memset(ca, 0, sizeof(*ca));
}

/* Load the CA from dir, making whatever part is missing. */
static gboolean
ca_ensure(const char *dir, const char *org, gboolean create, Ca *ca, gboolean *created, GError **error)
{
	g_autofree char *rk = g_build_filename(dir, ROOT_KEY, NULL);
	g_autofree char *rc = g_build_filename(dir, ROOT_CERT, NULL);
	g_autofree char *ik = g_build_filename(dir, INT_KEY, NULL);
	g_autofree char *ic = g_build_filename(dir, INT_CERT, NULL);
	g_autofree char *root_cn = g_strdup_printf("%s cellprov development root", org);
	g_autofree char *int_cn = g_strdup_printf("%s cellprov development device CA", org);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC - 60;
	CertSpec root_spec = { root_cn, org, NULL, now, 20 * 365, TRUE, 1 };
	CertSpec int_spec = { int_cn, org, NULL, now, 10 * 365, TRUE, 0 };

	*created = FALSE;
	if (!g_file_test(rk, G_FILE_TEST_EXISTS)) {
		if (!create) {
			cp_set_error(error, CP_ERR_KEY, "no CA in %s: run 'cellprov-mfg ca --dir %s' first", dir, dir);
			return FALSE;
		}
		if (!ensure_dir(dir, 0700, error))
			return FALSE;
		ca->root_key = cp_p256_generate();
		if (!ca->root_key || !save_key(rk, ca->root_key, error))
			goto fail;
		*created = TRUE;
	} else if (!(ca->root_key = load_key(rk, error))) {
		goto fail;
	}

	if (g_file_test(rc, G_FILE_TEST_EXISTS)) {
		if (!(ca->root = load_cert(rc, error)))
			goto fail;
		if (!cert_matches_key(ca->root, ca->root_key)) {
			cp_set_error(error, CP_ERR_KEY, "%s does not belong to %s", rc, rk);
			goto fail;
		}
	} else {
		if (!(ca->root = issue(&root_spec, ca->root_key, NULL, ca->root_key, error)) ||
		    !save_cert(rc, ca->root, error))
			goto fail;
		*created = TRUE;
	}

	if (g_file_test(ik, G_FILE_TEST_EXISTS)) {
		if (!(ca->int_key = load_key(ik, error)))
			goto fail;
	} else {
		ca->int_key = cp_p256_generate();
		if (!ca->int_key || !save_key(ik, ca->int_key, error))
			goto fail;
		*created = TRUE;
	}

	if (g_file_test(ic, G_FILE_TEST_EXISTS)) {
		if (!(ca->intermediate = load_cert(ic, error)))
			goto fail;
		if (!cert_matches_key(ca->intermediate, ca->int_key) ||
		    !cert_issued_by(ca->intermediate, ca->root)) {
			cp_set_error(error, CP_ERR_KEY, "%s does not fit %s and %s", ic, ik, rc);
			goto fail;
		}
	} else {
		if (!(ca->intermediate = issue(&int_spec, ca->int_key, ca->root, ca->root_key, error)) ||
		    !save_cert(ic, ca->intermediate, error))
			goto fail;
		*created = TRUE;
	}
	return TRUE;

fail:
	if (error && !*error)
		cp_set_error(error, CP_ERR_CRYPTO, "key generation failed");
	ca_clear(ca);
	return FALSE;
}

static int
cmd_ca(int argc, char **argv)
{
	g_autofree char *dir = NULL;
	g_autofree char *org = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) oc = g_option_context_new("- make or check the development manufacturer CA");
	GOptionEntry entries[] = {
		{ "dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "CA directory (created 0700)", "DIR" },
		{ "organization", 0, 0, G_OPTION_ARG_STRING, &org, "Organization in the CA names (default: Example Ltd)", "NAME" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &opt_json, "JSON output", NULL },
		CP_OPTION_VERSION,
		G_OPTION_ENTRY_NULL
	};
	Ca ca = { 0 };
	gboolean created;
	g_autofree char *root = NULL;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cellprov-mfg ca: %s\n", error->message);
		return 2;
	}
	if (!dir) {
		g_printerr("cellprov-mfg ca: --dir is required\n");
		return 2;
	}
	if (!ca_ensure(dir, org ? org : "Example Ltd", TRUE, &ca, &created, &error)) {
		g_printerr("cellprov-mfg ca: %s\n", error->message);
		return 1;
	}
	ca_clear(&ca);
	root = g_build_filename(dir, ROOT_CERT, NULL);
	if (opt_json) {
		g_autofree char *jd = jstr(dir), *jr = jstr(root);

		printf("{\"ca\":%s,\"created\":%s,\"root\":%s}\n", jd, created ? "true" : "false", jr);
	}
	else
		g_print("%s CA in %s\ntrust anchor: %s\n", created ? "made" : "kept", dir, root);
	return 0;
}

/* ---- a device ---- */

static gboolean
valid_text(const char *what, const char *s, GError **error)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > CP_DR_STR_MAX || !g_utf8_validate(s, -1, NULL)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "%s must be 1-%d bytes of UTF-8", what, CP_DR_STR_MAX);
		return FALSE;
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			cp_set_error(error, CP_ERR_BAD_VALUE, "%s must not hold control characters", what);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
valid_suites(const char *s, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(s, ";", -1);
	gboolean seen_a = FALSE, seen_b = FALSE;

	for (char **p = parts; *p; p++) {
		if (strcmp(*p, "A") == 0 && !seen_a)
			seen_a = TRUE;
		else if (strcmp(*p, "B") == 0 && !seen_b)
			seen_b = TRUE;
		else
			goto bad;
	}
	if (seen_b)
		return TRUE;
	if (seen_a) {
		/* suite A seals to an X25519 key; a device only offering it
		 * could never be provisioned */
		cp_set_error(error, CP_ERR_SUITE, "--suites must include B: the device key is P-256, "
			     "and suite A needs an X25519 key");
		return FALSE;
	}
bad:
	cp_set_error(error, CP_ERR_SUITE, "--suites must be a ';'-separated list of A and B, each once");
	return FALSE;
}

static gboolean
valid_adm1(const char *s, GError **error)
{
	if (strlen(s) != 8 || !cp_is_digits((const uint8_t *)s, 8)) {
		cp_set_error(error, CP_ERR_BAD_VALUE, "the ADM1 must be 8 ASCII digits");
		return FALSE;
	}
	return TRUE;
}

static int
cmd_device(int argc, char **argv)
{
	g_autofree char *ca_dir = NULL, *out = NULL, *chains = NULL, *etc = NULL;
	g_autofree char *url_base = NULL, *manufacturer = NULL, *model = NULL, *serial = NULL;
	g_autofree char *suites = NULL, *connstring = NULL, *modem_device = NULL, *card = NULL;
	g_autofree char *adm1 = NULL, *adm1_file = NULL, *valid_from = NULL, *state_dir = NULL;
	g_autofree char *trusted = NULL, *trusted_pem = NULL, *trusted_path = NULL, *cfg_trusted = NULL;
	gsize trusted_len = 0;
	gint valid_days = 3650;
	gboolean force = FALSE;
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) oc = g_option_context_new("- make a device identity, config and chain file");
	GOptionEntry entries[] = {
		{ "ca", 0, 0, G_OPTION_ARG_FILENAME, &ca_dir, "CA directory (from 'cellprov-mfg ca')", "DIR" },
		{ "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "Where to write the device's files", "DIR" },
		{ "chains", 0, 0, G_OPTION_ARG_FILENAME, &chains, "Directory the certificate server publishes", "DIR" },
		{ "url-base", 0, 0, G_OPTION_ARG_STRING, &url_base, "Certificate URL base; the URL is <base>/<DeviceID>", "URL" },
		{ "etc-dir", 0, 0, G_OPTION_ARG_FILENAME, &etc, "Where the files will live on the device (default: --out)", "DIR" },
		{ "manufacturer", 0, 0, G_OPTION_ARG_STRING, &manufacturer, "Manufacturer (default: Example Ltd)", "TEXT" },
		{ "model", 0, 0, G_OPTION_ARG_STRING, &model, "Model (default: GW-1)", "TEXT" },
		{ "serial", 0, 0, G_OPTION_ARG_STRING, &serial, "Serial number (default: SN0001)", "TEXT" },
		{ "suites", 0, 0, G_OPTION_ARG_STRING, &suites, "ECIES suites the device offers, ';'-separated (default: B)", "A;B" },
		{ "connstring", 0, 0, G_OPTION_ARG_STRING, &connstring, "libnfc connstring of the device's NFC controller", "CONN" },
		{ "modem-device", 0, 0, G_OPTION_ARG_FILENAME, &modem_device, "QMI control device (default: /dev/cdc-wdm0)", "PATH" },
		{ "card", 0, 0, G_OPTION_ARG_STRING, &card, "USIM driver (default: sysmo-isim-sja2)", "NAME" },
		{ "adm1", 0, 0, G_OPTION_ARG_STRING, &adm1, "Also write the USIM's ADM1 file (8 digits; visible to other processes: prefer --adm1-file)", "DIGITS" },
		{ "adm1-file", 0, 0, G_OPTION_ARG_FILENAME, &adm1_file, "Take the ADM1 from this file (0600) or systemd credential", "FILE" },
		{ "trusted-operators", 0, 0, G_OPTION_ARG_FILENAME, &trusted, "PEM file of the operator roots that may claim the device (default: trust on first use)", "FILE" },
		{ "state-directory", 0, 0, G_OPTION_ARG_FILENAME, &state_dir, "Daemon state directory (default: /var/lib/cellprov)", "DIR" },
		{ "valid-from", 0, 0, G_OPTION_ARG_STRING, &valid_from, "Certificate notBefore (Unix seconds or ISO 8601; default: now)", "TIME" },
		{ "valid-days", 0, 0, G_OPTION_ARG_INT, &valid_days, "Certificate lifetime in days (default: 3650)", "N" },
		{ "force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace an existing device key (new DeviceID)", NULL },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &opt_json, "JSON output", NULL },
		CP_OPTION_VERSION,
		G_OPTION_ENTRY_NULL
	};
	g_autofree char *key_path = NULL, *cert_path = NULL, *conf_path = NULL, *adm1_path = NULL;
	g_autofree char *chain_path = NULL, *url = NULL, *conf_data = NULL;
	g_autofree char *cfg_key = NULL, *cfg_cert = NULL, *cfg_adm1 = NULL;
	g_autofree char *leaf_pem = NULL, *int_pem = NULL, *chain = NULL;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	Ca ca = { 0 };
	gboolean ca_created, new_key = FALSE, new_cert = FALSE;
	CpKey *key = NULL;
	X509 *cert = NULL;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	char id_hex[2 * CP_DEVICE_ID_LEN + 1];
	gint64 not_before;
	int ret = 1;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		g_printerr("cellprov-mfg device: %s\n", error->message);
		return 2;
	}
	if (!ca_dir || !out || !chains || !url_base) {
		g_printerr("cellprov-mfg device: --ca, --out, --chains and --url-base are required\n");
		return 2;
	}
	if (adm1 && adm1_file) {
		g_printerr("cellprov-mfg device: --adm1 and --adm1-file exclude each other\n");
		return 2;
	}
	if (adm1_file) {
		g_autoptr(CpSecret) secret = cp_secret_load(adm1_file, FALSE, 0, &error);

		if (!secret)
			goto out;
		adm1 = g_strndup((const char *)secret->data, secret->len);
	}
	if (!manufacturer)
		manufacturer = g_strdup("Example Ltd");
	if (!model)
		model = g_strdup("GW-1");
	if (!serial)
		serial = g_strdup("SN0001");
	if (!suites)
		suites = g_strdup("B");
	if (!etc)
		etc = g_canonicalize_filename(out, NULL);
	if (!valid_text("--manufacturer", manufacturer, &error) ||
	    !valid_text("--model", model, &error) ||
	    !valid_text("--serial", serial, &error) ||
	    !valid_suites(suites, &error) ||
	    (adm1 && !valid_adm1(adm1, &error)) ||
	    !parse_time(valid_from, &not_before, &error))
		goto out;
	if (trusted) {
		g_autoptr(GError) local = NULL;
		CpAnchors *anchors = NULL;

		if (!g_file_get_contents(trusted, &trusted_pem, &trusted_len, &local)) {
			cp_set_error(&error, CP_ERR_KEY, "--trusted-operators: %s", local->message);
			goto out;
		}
		if (cp_anchors_from_pem(trusted_pem, trusted_len, &anchors) != CP_OK || !anchors ||
		    cp_anchors_count(anchors) == 0) {
			cp_anchors_free(anchors);
			cp_set_error(&error, CP_ERR_KEY, "--trusted-operators: %s is not a PEM file of "
				     "operator root (CA) certificates", trusted);
			goto out;
		}
		cp_anchors_free(anchors);
	}
	if (valid_days < 1 || (MAX_CERT_TIME - not_before) / 86400 < valid_days) {
		cp_set_error(&error, CP_ERR_BAD_VALUE, "--valid-days must be at least 1 and end before the year 10000");
		goto out;
	}
	if (!g_str_has_prefix(url_base, "https://") && !g_str_has_prefix(url_base, "http://")) {
		cp_set_error(&error, CP_ERR_BAD_VALUE, "--url-base must be an http(s):// URL");
		goto out;
	}
	while (g_str_has_suffix(url_base, "/"))
		url_base[strlen(url_base) - 1] = '\0';

	if (!ca_ensure(ca_dir, manufacturer, FALSE, &ca, &ca_created, &error))
		goto out;
	if (!ensure_dir(out, 0700, &error) || !ensure_dir(chains, 0755, &error))
		goto out;

	key_path = g_build_filename(out, "device-key.pem", NULL);
	cert_path = g_build_filename(out, "device-cert.pem", NULL);
	conf_path = g_build_filename(out, "cellprov.conf", NULL);

	if (g_file_test(key_path, G_FILE_TEST_EXISTS) && !force) {
		key = load_key(key_path, &error);
		if (!key) {
			g_prefix_error(&error, "keeping the existing device key (use --force to replace it): ");
			goto out;
		}
	} else {
		key = cp_p256_generate();
		if (!key) {
			cp_set_error(&error, CP_ERR_CRYPTO, "key generation failed");
			goto out;
		}
		if (!save_key(key_path, key, &error))
			goto out;
		new_key = TRUE;
	}
	if (cp_device_id(key, device_id) != CP_OK) {
		cp_set_error(&error, CP_ERR_KEY, "cannot compute the DeviceID");
		goto out;
	}
	cp_hex_encode(device_id, sizeof(device_id), id_hex);
	url = g_strdup_printf("%s/%s", url_base, id_hex);

	/* Keep a certificate that still fits (same key, this CA, same
	 * validity asked for); otherwise issue a new one. */
	if (!new_key && g_file_test(cert_path, G_FILE_TEST_EXISTS)) {
		g_autoptr(GError) ignored = NULL;

		cert = load_cert(cert_path, &ignored);
		if (cert && (!cert_matches_key(cert, key) || !cert_issued_by(cert, ca.intermediate) ||
			     (valid_from && ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert), (time_t)not_before) != 0))) {
			X509_free(cert);
			cert = NULL;
		}
	}
	if (!cert) {
		CertSpec spec = { id_hex, manufacturer, serial, not_before, valid_days, FALSE, -1 };

		if (!(cert = issue(&spec, key, ca.intermediate, ca.int_key, &error)) ||
		    !save_cert(cert_path, cert, &error))
			goto out;
		new_cert = TRUE;
	}

	/* The chain the CA serves: device certificate, then intermediates */
	leaf_pem = cert_pem(cert);
	int_pem = cert_pem(ca.intermediate);
	if (!leaf_pem || !int_pem) {
		set_openssl_error(&error, "PEM encoding");
		goto out;
	}
	chain = g_strconcat(leaf_pem, int_pem, NULL);
	chain_path = g_build_filename(chains, id_hex, NULL);
	if (!cp_file_replace(chain_path, chain, strlen(chain), 0644, &error))
		goto out;

	if (adm1) {
		adm1_path = g_build_filename(out, "adm1", NULL);
		if (!cp_file_replace(adm1_path, adm1, strlen(adm1), 0600, &error))
			goto out;
	}

	if (trusted_pem) {
		/* public: the roots, no key */
		trusted_path = g_build_filename(out, "trusted-operators.pem", NULL);
		if (!cp_file_replace(trusted_path, trusted_pem, trusted_len, 0644, &error))
			goto out;
	}

	cfg_key = g_build_filename(etc, "device-key.pem", NULL);
	cfg_cert = g_build_filename(etc, "device-cert.pem", NULL);
	g_key_file_set_string(kf, "device", "key", cfg_key);
	g_key_file_set_string(kf, "device", "certificate", cfg_cert);
	g_key_file_set_string(kf, "device", "certificate-url", url);
	g_key_file_set_string(kf, "device", "manufacturer", manufacturer);
	g_key_file_set_string(kf, "device", "model", model);
	g_key_file_set_string(kf, "device", "serial", serial);
	g_key_file_set_string(kf, "device", "suites", suites);
	if (trusted_path) {
		cfg_trusted = g_build_filename(etc, "trusted-operators.pem", NULL);
		g_key_file_set_string(kf, "device", "trusted-operators", cfg_trusted);
	}
	g_key_file_set_string(kf, "nfc", "connstring", connstring ? connstring : "pn532_uart:/dev/ttyS1");
	g_key_file_set_string(kf, "modem", "backend", "auto");
	g_key_file_set_string(kf, "modem", "device", modem_device ? modem_device : "/dev/cdc-wdm0");
	g_key_file_set_string(kf, "modem", "proxy", "true");
	g_key_file_set_string(kf, "modem", "card", card ? card : "sysmo-isim-sja2");
	if (adm1) {
		cfg_adm1 = g_build_filename(etc, "adm1", NULL);
		g_key_file_set_string(kf, "modem", "adm1", cfg_adm1);
	}
	g_key_file_set_string(kf, "modem", "registration-timeout", "120");
	g_key_file_set_string(kf, "modem", "reset", "auto");
	g_key_file_set_string(kf, "daemon", "state-directory", state_dir ? state_dir : "/var/lib/cellprov");
	conf_data = g_key_file_to_data(kf, NULL, NULL);
	if (!cp_file_replace(conf_path, conf_data, strlen(conf_data), 0644, &error))
		goto out;

	if (opt_json) {
		g_autofree char *ju = jstr(url), *jc = jstr(conf_path), *jk = jstr(key_path);
		g_autofree char *jce = jstr(cert_path), *jch = jstr(chain_path);

		/* JSON is UTF-8 whatever the locale: printf, not g_print */
		printf("{\"device-id\":\"%s\",\"certificate-url\":%s,\"config\":%s,"
			"\"key\":%s,\"certificate\":%s,\"chain\":%s,"
			"\"new-key\":%s,\"new-certificate\":%s}\n",
			id_hex, ju, jc, jk, jce, jch,
			new_key ? "true" : "false", new_cert ? "true" : "false");
	} else {
		g_print("DeviceID:        %s\n", id_hex);
		g_print("certificate URL: %s\n", url);
		g_print("config:          %s\n", conf_path);
		g_print("key:             %s (%s)\n", key_path, new_key ? "new" : "kept");
		g_print("certificate:     %s (%s)\n", cert_path, new_cert ? "new" : "kept");
		g_print("chain:           %s\n", chain_path);
		if (adm1_path)
			g_print("ADM1:            %s\n", adm1_path);
		if (trusted_path)
			g_print("operator roots:  %s\n", trusted_path);
	}
	ret = 0;
out:
	if (error)
		g_printerr("cellprov-mfg device: %s\n", error->message);
	X509_free(cert);
	cp_key_free(key);
	ca_clear(&ca);
	if (adm1)
		cp_cleanse(adm1, strlen(adm1));
	return ret;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: cellprov-mfg COMMAND [OPTION...]\n"
		"\n"
		"  ca      make (or check) the development manufacturer CA\n"
		"  device  make a device key, certificate, config and chain file\n"
		"\n"
		"  -V, --version  print the version and exit\n"
		"\n"
		"'cellprov-mfg COMMAND --help' lists each command's options.\n");
}

int
main(int argc, char **argv)
{
	/* the subcommands parse from argv[1]: keep the program's own name */
	g_set_prgname("cellprov-mfg");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	/* option values arrive in the locale's charset; GLib wants to know it */
	setlocale(LC_ALL, "");
	umask(022);
	if (strcmp(argv[1], "ca") == 0)
		return cmd_ca(argc - 1, argv + 1);
	if (strcmp(argv[1], "device") == 0)
		return cmd_device(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		cp_option_version(argv[1], NULL, NULL, NULL);
	fprintf(stderr, "cellprov-mfg: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
