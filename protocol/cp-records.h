/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The three cellprov structures of docs/protocol.md: the device record (on the
 * tag), the profile (written by the companion) and the receipt (on the tag
 * after an attempt). Decoders are strict (cp-tlv.h rules plus each field's
 * form); encoders produce the canonical encoding the decoders accept.
 * Strings are NUL-terminated copies, so fixed buffers are one byte longer
 * than the field's limit.
 *
 * Common rules: a structure above CP_RECORD_MAX is CP_ERR_TOO_LARGE; a
 * version other than the structure's own (CP_*_VERSION) is CP_ERR_VERSION,
 * judged before the rest (another version may lay out its fields
 * differently). Decoders leave their output untouched on failure. Encoders
 * write the structure's version whatever the struct's version field says,
 * append to out, check what they wrote
 * with the decoder (a bad field gets the code a receiver would report) and
 * leave out as it was on failure; CP_ERR_CRYPTO means no memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp-buf.h"
#include "cp-crypto.h"
#include "cp-ecies.h"
#include "cp-error.h"
#include "cp-keys.h"
#include "cp-secret.h"

/* The protocol's version (docs/protocol.md), and each structure's: a
 * structure's version changes when its bytes do. */
#define CP_PROTOCOL_VERSION 2
#define CP_DEVICE_RECORD_VERSION 1
#define CP_PROFILE_VERSION 2
#define CP_RECEIPT_VERSION 2
#define CP_COMMAND_VERSION 1
#define CP_MAC_LEN 32
#define CP_RECORD_MAX 4096      /* no cellprov structure is larger */

/* ---- device record ---- */

typedef enum {
	CP_DEVICE_UNPROVISIONED = 0,
	CP_DEVICE_PROVISIONING = 1,
	CP_DEVICE_PROVISIONED = 2,
	CP_DEVICE_FAILED = 3,
} CpDeviceState;

#define CP_DR_STR_MAX 64
#define CP_DR_SUITES_MAX 8

typedef struct {
	uint8_t version;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	char manufacturer[CP_DR_STR_MAX + 1];
	char model[CP_DR_STR_MAX + 1];
	char serial[CP_DR_STR_MAX + 1];
	uint8_t suites[CP_DR_SUITES_MAX];
	size_t n_suites;
	uint8_t state;                 /* CpDeviceState */
	uint64_t att_counter;
	uint8_t att_random[16];
	uint8_t att_signature[CP_ECDSA_MAX];
	size_t att_signature_len;
	/* Set by the decoder: byte counts of the encoded prefix holding tags
	 * 0x01-0x06 (device info, input of K'') and 0x01-0x09 (signed part). */
	size_t info_len;
	size_t signed_len;
} CpDeviceRecord;

/* Encode tags 0x01-0x09, sign them with the device key, append 0x0A. */
CpError cp_device_record_encode(const CpDeviceRecord *dr, CpKey *device_key, CpBuf *out);
/* Encode tags 0x01-0x06 only: the device info hashed into K''. */
CpError cp_device_record_info(const CpDeviceRecord *dr, CpBuf *out);
CpError cp_device_record_decode(const uint8_t *buf, size_t len, CpDeviceRecord *dr);
/* Decode, then check the signature under the certificate's public key
 * (CP_ERR_SIGNATURE). */
CpError cp_device_record_verify(const uint8_t *buf, size_t len, CpKey *pub, CpDeviceRecord *dr);

/* ---- profile ---- */

#define CP_ENC_CRED_PLAIN_LEN 48          /* K' (32) || OPc (16) */
#define CP_ENC_CRED_MAX (1 + CP_ECIES_EPH_MAX + CP_ENC_CRED_PLAIN_LEN + CP_ECIES_MAC_LEN)
#define CP_APN_MAX 100
#define CP_NETWORK_NAME_MAX 64

/* What a profile does to the device's owner binding. */
typedef enum {
	CP_OP_CLAIM = 1,                /* a device with no owner gets one */
	CP_OP_REPROVISION = 2,          /* the same owner: new keys, APN or network */
	CP_OP_TRANSFER = 3,             /* a new owner replaces the current one */
} CpOperation;

typedef struct {
	uint8_t version;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint64_t profile_seq;
	uint8_t nonce[CP_NONCE_LEN];
	bool has_not_after;
	uint64_t not_after;
	uint8_t operation;              /* CpOperation */
	uint64_t binding_version;       /* the SM's version of the owner binding */
	bool has_replaces;              /* transfer only: the binding it replaces */
	uint64_t replaces;
	uint8_t enc_cred[CP_ENC_CRED_MAX];
	size_t enc_cred_len;
	char plmn[7];
	char network_name[CP_NETWORK_NAME_MAX + 1];
	char supi[16];
	char apn[CP_APN_MAX + 1];
	bool has_msisdn;
	char msisdn[16];
	uint8_t op_chain[CP_CHAIN_MAX];  /* the SM's signing chain, DER, signer first */
	size_t op_chain_len;
	uint8_t op_signature[CP_ECDSA_MAX];
	size_t op_signature_len;
	uint8_t mac[CP_MAC_LEN];
	CpOperatorId op;                /* set by cp_profile_verify: who signed it */
} CpProfile;

/*
 * Build enc_cred: suite || eph pub || ECIES(K' || OPc) || MAC, to the
 * device's public key. eph_priv NULL = fresh ephemeral key.
 */
CpError cp_enc_cred_seal(CpSuite suite, CpKey *device_pub, CpKey *eph_priv,
			 const CpSecret *k_prime, const CpSecret *opc,
			 uint8_t out[CP_ENC_CRED_MAX], size_t *out_len);
/* Open enc_cred with the device key: new K' and OPc secrets. CP_ERR_SUITE
 * for an unknown suite, CP_ERR_LENGTH for a length not of its suite,
 * CP_ERR_DECRYPT (or CP_ERR_POINT) from ECIES; nothing is returned then. */
CpError cp_enc_cred_open(const uint8_t *enc, size_t len, CpKey *device_key,
			 CpSecret **k_prime, CpSecret **opc);

/* Encode every field up to op_chain (p->op_chain: the SM's chain, signer
 * first), append op_signature = ECDSA(op_key, those bytes) and mac =
 * HMAC(K_prof, every preceding byte). k_prof is 32 bytes. An op_key that is
 * not the chain's signing certificate's is CP_ERR_KEY; a supi outside plmn
 * is CP_ERR_SUPI_PLMN: the device would reject either. */
CpError cp_profile_encode(const CpProfile *p, CpKey *op_key, const CpSecret *k_prof,
			  CpBuf *out);
/* Structure only: no key needed, no MAC checked, supi/plmn not compared.
 * An enc_cred of an unknown suite is CP_ERR_BAD_VALUE, one whose length is
 * not its suite's CP_ERR_LENGTH. */
CpError cp_profile_decode(const uint8_t *buf, size_t len, CpProfile *p);

typedef struct {
	const uint8_t *device_id;       /* this device's, 16 bytes */
	CpKey *device_key;           /* private */
	const uint8_t *suites;          /* suites the device offers */
	size_t n_suites;
	uint64_t last_seq;              /* last committed profile_seq */
	uint64_t now;                   /* Unix seconds, for not_after */
	const uint8_t *device_info;     /* device record tags 0x01-0x06 */
	size_t device_info_len;
	/* The device's trust in operators: the roots the manufacturer set
	 * (NULL or empty: trust on first use), and the root it pinned when it
	 * was first bound (NULL: none; kept across a local reset, dropped by
	 * a decommission). */
	const CpAnchors *anchors;
	const uint8_t *operator_pin;    /* CP_SHA256_LEN bytes; NULL: none */
	/* The device's owner binding: none, or bound at binding_version. */
	bool bound;
	uint64_t binding_version;
} CpVerifyContext;

typedef struct {
	CpSecret *k_prime;
	CpSecret *opc;
	CpSecret *k_usim;
	CpSecret *k_sm;
	CpSecret *k_prof;
	CpSecret *k2;                   /* K'', to MAC the receipt */
} CpProfileKeys;

/*
 * The device's checks, in docs/protocol.md order: decode (cp_profile_decode's
 * codes); version (CP_ERR_VERSION); device_id (CP_ERR_WRONG_DEVICE);
 * op_chain to a trusted operator, and to the pinned one when the device has
 * a pin (CP_ERR_OPERATOR); op_signature under the chain's signing key
 * (CP_ERR_OPERATOR_SIGNATURE); suite offered (CP_ERR_SUITE) and decrypt
 * enc_cred (CP_ERR_DECRYPT, CP_ERR_POINT); derive K_usim, K_SM, K_prof,
 * K''; mac, constant time (CP_ERR_MAC); profile_seq above ctx->last_seq
 * (CP_ERR_REPLAY); not_after not before ctx->now (CP_ERR_EXPIRED;
 * not_after is the last valid second); supi starts with plmn
 * (CP_ERR_SUPI_PLMN); the operation fits the binding (CP_ERR_BINDING: a
 * claim needs a device with no owner or the device's binding version, a
 * reprovision the device's binding version, a transfer a higher one). The
 * first failing check decides the code.
 *
 * keys is output only (overwritten). On success p and every key are set.
 * On failure p is untouched and no key is returned, except keys->k2 after
 * a failure behind the mac (replay, expired, supi/plmn, binding): the mac proved
 * the SM made the profile, so the rejection receipt can carry a mac.
 */
CpError cp_profile_verify(const uint8_t *buf, size_t len, const CpVerifyContext *ctx,
			  CpProfile *p, CpProfileKeys *keys);
void cp_profile_keys_clear(CpProfileKeys *keys);

/* ---- receipt ---- */

typedef enum {
	CP_RECEIPT_ACCEPTED = 0,
	CP_RECEIPT_PROVISIONED = 1,
	CP_RECEIPT_REJECTED = 2,
	CP_RECEIPT_FAILED = 3,
	CP_RECEIPT_DECOMMISSIONED = 4, /* the device executed a decommission */
} CpReceiptStatus;

typedef struct {
	uint8_t version;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint64_t profile_seq;          /* of the profile, or of the command */
	uint8_t status;                /* CpReceiptStatus */
	uint16_t reason;               /* CpError, 0 = none */
	bool has_registration;
	char registration[7];          /* PLMN */
	uint64_t binding_version;      /* the device's after the event; 0: no owner */
	uint8_t device_signature[CP_ECDSA_MAX];
	size_t device_signature_len;
	bool has_mac;
	uint8_t mac[CP_MAC_LEN];
	/* Set by the decoder: bytes covered by the device's signature. */
	size_t signed_len;
} CpReceipt;

/* Sign with the device key (every receipt: the SM checks it with the
 * certified key, whoever carries it), then mac with k2; k2 NULL: no mac (a
 * rejected message whose mac could not be verified, or none to verify). */
CpError cp_receipt_encode(const CpReceipt *r, CpKey *device_key, const CpSecret *k2,
			  CpBuf *out);
CpError cp_receipt_decode(const uint8_t *buf, size_t len, CpReceipt *r);
/* Decode and check the mac with K'' (32 bytes, else CP_ERR_ARGUMENT);
 * CP_ERR_NO_MAC when it has none. What the companion checks. */
CpError cp_receipt_verify(const uint8_t *buf, size_t len, const CpSecret *k2, CpReceipt *r);
/* Decode and check the device's signature under its public key
 * (CP_ERR_SIGNATURE). What the SM checks. */
CpError cp_receipt_verify_device(const uint8_t *buf, size_t len, CpKey *device_pub,
				 CpReceipt *r);

/* ---- command: an operator-signed lifecycle message ---- */

typedef enum {
	CP_COMMAND_DECOMMISSION = 1,    /* release: restore the USIM, forget owner and pin, re-arm */
} CpCommandKind;

typedef struct {
	uint8_t version;
	uint8_t device_id[CP_DEVICE_ID_LEN];
	uint64_t seq;                   /* the device's profile_seq counter: a replay is refused */
	bool has_not_after;
	uint64_t not_after;
	uint8_t command;                /* CpCommandKind */
	uint64_t binding_version;       /* the binding it acts on: the device's */
	uint8_t op_chain[CP_CHAIN_MAX];
	size_t op_chain_len;
	uint8_t op_signature[CP_ECDSA_MAX];
	size_t op_signature_len;
	CpOperatorId op;                /* set by cp_command_verify */
} CpCommand;

/* Encode up to op_chain and append op_signature = ECDSA(op_key, those
 * bytes); op_key must be op_chain's signing key (CP_ERR_KEY). */
CpError cp_command_encode(const CpCommand *c, CpKey *op_key, CpBuf *out);
CpError cp_command_decode(const uint8_t *buf, size_t len, CpCommand *c);
/*
 * The device's checks: decode; version (CP_ERR_VERSION); device_id
 * (CP_ERR_WRONG_DEVICE); op_chain to a trusted operator and to the pin
 * (CP_ERR_OPERATOR); op_signature (CP_ERR_OPERATOR_SIGNATURE); seq above
 * ctx->last_seq (CP_ERR_REPLAY); not_after (CP_ERR_EXPIRED); the device is
 * bound at binding_version (CP_ERR_BINDING). Only the context's device_id,
 * anchors, operator_pin, bound, binding_version, last_seq and now are used.
 * c is set on success only.
 */
CpError cp_command_verify(const uint8_t *buf, size_t len, const CpVerifyContext *ctx,
			  CpCommand *c);
