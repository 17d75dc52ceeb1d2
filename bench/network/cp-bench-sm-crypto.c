/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-bench-sm-crypto: what the crypto of one provisioning costs on the
 * network side, op by op, with the same code the SM and the AUSF run:
 * chain verification (OpenSSL X509_verify_cert through cp_chain_check, of
 * the certificates parsed once, as the SM keeps a cached chain; the
 * parsing of the PEM apart, as cp_chain_parse),
 * the device record's ECDSA verification, the AUSF's key schedule
 * (K', K_usim, OPc, K_SM), the ECIES seal (ECDH + X9.63 KDF + AES-CTR +
 * HMAC), the SM's K'' and K_prof and the profile encode (the operator's
 * ECDSA signature and the HMAC), signed as the SM signs, by a test
 * operator made afresh (cp_cert_make).
 * With a TLS certificate and key, also one full TLS handshake (OpenSSL,
 * in memory, no session resumption), the server's and the client's CPU
 * apart.
 * Prints one JSON object: microseconds per operation and their sum (the
 * server's side of the handshake included, the client's not).
 *
 *   cp-bench-sm-crypto ROOT.pem CHAIN.pem DEVICE-RECORD.bin [ITERATIONS [TLS-CERT TLS-KEY]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cp-crypto-openssl.h"
#include "cellprov.h"
#include "cp-chain.h"
#include "cp-test-operator.h"

static double
now_us(void)
{
	struct timespec ts;

	/* the CPU this thread used, not the wall clock: on cores shared with
	 * other processes, their turns are not the crypto's cost */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

#define TIME(label, n, body) do {                                  \
		double _t0 = now_us();                                 \
		for (int _i = 0; _i < (n); _i++) { body; }             \
		label = (now_us() - _t0) / (n);                        \
	} while (0)

/* Full handshakes between an OpenSSL server and client over memory BIOs,
 * without tickets or a session cache: the CPU of each side apart. */
static gboolean
tls_handshakes(const char *cert, const char *key, int n, double *server_us, double *client_us)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	gboolean ok = FALSE;

	*server_us = *client_us = 0;
	if (!sctx || !cctx || SSL_CTX_use_certificate_chain_file(sctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1)
		goto out;
	SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(sctx, 0);
	SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
	for (int i = 0; i < n; i++) {
		SSL *srv = SSL_new(sctx), *cli = SSL_new(cctx);
		BIO *a, *b;
		int done = 0;

		BIO_new_bio_pair(&a, 0, &b, 0);
		SSL_set_bio(srv, a, a);
		SSL_set_bio(cli, b, b);
		SSL_set_accept_state(srv);
		SSL_set_connect_state(cli);
		for (int round = 0; round < 10 && done != 3; round++) {
			double t0 = now_us();

			if (!(done & 1) && SSL_do_handshake(cli) == 1)
				done |= 1;
			*client_us += now_us() - t0;
			t0 = now_us();
			if (!(done & 2) && SSL_do_handshake(srv) == 1)
				done |= 2;
			*server_us += now_us() - t0;
		}
		SSL_free(srv);
		SSL_free(cli);
		if (done != 3)
			goto out;
	}
	*server_us /= n;
	*client_us /= n;
	ok = TRUE;
out:
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	return ok;
}

int
main(int argc, char **argv)
{
	g_autofree char *chain = NULL, *rec = NULL;
	gsize chain_len, rec_len;
	X509_STORE *anchors;
	CpKey *pub;
	CpDeviceRecord dr;
	uint8_t k_c_raw[32], op_raw[16], nonce[CP_NONCE_LEN];
	uint8_t enc[CP_ENC_CRED_MAX];
	size_t enc_len;
	CpSecret *k_c, *op, *k_prime, *k_usim, *opc, *k_sm, *k2, *k_prof;
	CpProfile prof;
	CpTestOperator oper;
	double t_parse, t_chain, t_ecdsa, t_ausf_kdf, t_ecies, t_sm_kdf, t_profile, t_tls_server = 0, t_tls_client = 0;
	int n = argc > 4 ? atoi(argv[4]) : 500;
	gint64 t = g_get_real_time() / G_USEC_PER_SEC;

	if (argc < 4 || n < 1 || argc == 6) {
		fprintf(stderr, "usage: cp-bench-sm-crypto ROOT.pem CHAIN.pem DEVICE-RECORD.bin [ITERATIONS [TLS-CERT TLS-KEY]]\n");
		return 2;
	}
	if (!g_file_get_contents(argv[2], &chain, &chain_len, NULL) ||
	    !g_file_get_contents(argv[3], &rec, &rec_len, NULL) ||
	    !(anchors = cp_chain_anchors_load(argv[1], NULL))) {
		fprintf(stderr, "cp-bench-sm-crypto: cannot read the inputs\n");
		return 1;
	}
	pub = cp_chain_verify(anchors, chain, chain_len, t, NULL);
	if (!pub || cp_device_record_verify((uint8_t *)rec, rec_len, pub, &dr) != CP_OK) {
		fprintf(stderr, "cp-bench-sm-crypto: the chain or the record does not verify\n");
		return 1;
	}
	cp_random(k_c_raw, sizeof(k_c_raw));
	cp_random(op_raw, sizeof(op_raw));
	cp_random(nonce, sizeof(nonce));
	k_c = cp_secret_new_from(k_c_raw, sizeof(k_c_raw));
	op = cp_secret_new_from(op_raw, sizeof(op_raw));

	TIME(t_parse, n, {
		X509 *leaf = NULL;
		STACK_OF(X509) *others = NULL;

		if (!cp_chain_parse(chain, chain_len, &leaf, &others, NULL))
			abort();
		X509_free(leaf);
		sk_X509_pop_free(others, X509_free);
	});
	{
		X509 *leaf = NULL;
		STACK_OF(X509) *others = NULL;

		if (!cp_chain_parse(chain, chain_len, &leaf, &others, NULL))
			abort();
		TIME(t_chain, n, {
			CpKey *k = cp_chain_check(anchors, leaf, others, t, NULL);
			cp_key_free(k);
		});
		X509_free(leaf);
		sk_X509_pop_free(others, X509_free);
	}
	TIME(t_ecdsa, n, cp_device_record_verify((uint8_t *)rec, rec_len, pub, &dr));
	TIME(t_ausf_kdf, n, {
		k_prime = cp_keys_k_prime(k_c, dr.device_id, "001010000000001");
		k_usim = cp_keys_k_usim(k_prime);
		opc = cp_keys_opc(k_usim, op);
		k_sm = cp_keys_k_sm(k_prime, dr.device_id);
		if (_i + 1 < n) {
			cp_secret_free(k_prime);
			cp_secret_free(k_usim);
			cp_secret_free(opc);
			cp_secret_free(k_sm);
		}
	});
	TIME(t_ecies, n, cp_enc_cred_seal(CP_SUITE_B, pub, NULL, k_prime, opc, enc, &enc_len));
	TIME(t_sm_kdf, n, {
		k2 = cp_keys_k2(k_sm, nonce, (uint8_t *)rec, dr.info_len);
		k_prof = cp_keys_k_prof(k_sm, nonce);
		if (_i + 1 < n) {
			cp_secret_free(k2);
			cp_secret_free(k_prof);
		}
	});
	if (!cp_test_operator_make(&oper, "cellprov bench operator")) {
		fprintf(stderr, "cp-bench-sm-crypto: cannot make the test operator\n");
		return 1;
	}
	memset(&prof, 0, sizeof(prof));
	prof.version = CP_PROFILE_VERSION;
	prof.operation = CP_OP_CLAIM;
	prof.binding_version = 1;
	memcpy(prof.op_chain, oper.chain, oper.chain_len);
	prof.op_chain_len = oper.chain_len;
	memcpy(prof.device_id, dr.device_id, CP_DEVICE_ID_LEN);
	prof.profile_seq = 1;
	memcpy(prof.nonce, nonce, CP_NONCE_LEN);
	memcpy(prof.enc_cred, enc, enc_len);
	prof.enc_cred_len = enc_len;
	strcpy(prof.plmn, "00101");
	strcpy(prof.network_name, "cellprov test network");
	strcpy(prof.supi, "001010000000001");
	strcpy(prof.apn, "internet");
	TIME(t_profile, n, {
		CpBuf b = CP_BUF_INIT;
		if (cp_profile_encode(&prof, oper.sm_key, k_prof, &b) != CP_OK)
			abort();
		cp_buf_clear(&b);
	});

	if (argc > 6 && !tls_handshakes(argv[5], argv[6], n, &t_tls_server, &t_tls_client)) {
		fprintf(stderr, "cp-bench-sm-crypto: TLS handshakes with %s failed\n", argv[5]);
		return 1;
	}

	printf("{\"iterations\":%d,\"chain-parse-us\":%.1f,\"chain-verify-us\":%.1f,\"ecdsa-verify-us\":%.1f,"
	       "\"ausf-kdf-us\":%.1f,\"ecies-seal-us\":%.1f,\"sm-kdf-us\":%.1f,\"profile-sign-us\":%.1f,"
	       "\"tls-server-us\":%.1f,\"tls-client-us\":%.1f,\"total-us\":%.1f}\n",
	       n, t_parse, t_chain, t_ecdsa, t_ausf_kdf, t_ecies, t_sm_kdf, t_profile, t_tls_server, t_tls_client,
	       t_chain + t_ecdsa + t_ausf_kdf + t_ecies + t_sm_kdf + t_profile + t_tls_server);
	cp_secret_free(k_c);
	cp_secret_free(op);
	cp_secret_free(k_prime);
	cp_secret_free(k_usim);
	cp_secret_free(opc);
	cp_secret_free(k_sm);
	cp_secret_free(k2);
	cp_secret_free(k_prof);
	cp_key_free(pub);
	X509_STORE_free(anchors);
	cp_test_operator_clear(&oper);
	return 0;
}
