/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The journal: round trips, every torn or altered file refused with a
 * clear error, records that do not hang together refused, the files and
 * directory modes it insists on, and saves made to fail for real (a file
 * size limit, a full filesystem, a crash between write and rename) that
 * leave the previous journal loadable and byte for byte as it was. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cp-fault.h"
#include "cp-glib.h"
#include "cp-crypto.h"
#include "cp-journal.h"
#include "cp-tlv.h"

static void
fill_busy(CpJournal *j, CpState state)
{
	static const uint8_t backup[] = { 0x01, 0x00, 0x03, 'o', 'l', 'd' };
	static const uint8_t receipt[] = { 0x01, 0x00, 0x01, 0x01 };
	uint8_t k2[32];

	for (gsize i = 0; i < sizeof(k2); i++)
		k2[i] = (uint8_t)(0xa0 + i);
	cp_journal_init(j);
	j->state = state;
	j->att_counter = 41;
	j->committed_seq = 7;
	j->attempt_seq = 7;
	j->last_error = 0;
	g_strlcpy(j->imsi, "001010000000001", sizeof(j->imsi));
	g_strlcpy(j->plmn, "00101", sizeof(j->plmn));
	g_strlcpy(j->network_name, "cellprov test network", sizeof(j->network_name));
	g_strlcpy(j->apn, "internet", sizeof(j->apn));
	j->bound = true;
	j->binding_version = 0x0102030405060708;
	j->has_pin = true;
	for (gsize i = 0; i < sizeof(j->operator_pin); i++)
		j->operator_pin[i] = (uint8_t)(0x30 + i);
	g_strlcpy(j->operator_name, "Example Opérateur", sizeof(j->operator_name));
	j->k2 = cp_secret_new_from(k2, sizeof(k2));
	j->backup = cp_secret_new_from(backup, sizeof(backup));
	cp_journal_set_receipt(j, receipt, sizeof(receipt));
	/* format 3: a re-provisioning of a provisioned device */
	j->kept = true;
	g_strlcpy(j->kept_imsi, "001010000000009", sizeof(j->kept_imsi));
	g_strlcpy(j->kept_plmn, "001001", sizeof(j->kept_plmn));
	g_strlcpy(j->kept_network_name, "working network", sizeof(j->kept_network_name));
	g_strlcpy(j->kept_apn, "iot", sizeof(j->kept_apn));
	k2[0] ^= 0xff;
	j->owner_k2 = cp_secret_new_from(k2, sizeof(k2));
	j->original = cp_secret_new_from((const uint8_t *)"original", 8);
	j->original_inexact = true;
}

static void
assert_same(const CpJournal *a, const CpJournal *b)
{
	g_assert_cmpint(a->state, ==, b->state);
	g_assert_cmpuint(a->att_counter, ==, b->att_counter);
	g_assert_cmpuint(a->committed_seq, ==, b->committed_seq);
	g_assert_cmpuint(a->attempt_seq, ==, b->attempt_seq);
	g_assert_cmpuint(a->last_error, ==, b->last_error);
	g_assert_cmpstr(a->imsi, ==, b->imsi);
	g_assert_cmpstr(a->plmn, ==, b->plmn);
	g_assert_cmpstr(a->network_name, ==, b->network_name);
	g_assert_cmpstr(a->apn, ==, b->apn);
	g_assert_cmpint(a->bound, ==, b->bound);
	g_assert_cmpuint(a->binding_version, ==, b->binding_version);
	g_assert_cmpint(a->has_pin, ==, b->has_pin);
	g_assert_cmpmem(a->operator_pin, sizeof(a->operator_pin), b->operator_pin, sizeof(b->operator_pin));
	g_assert_cmpstr(a->operator_name, ==, b->operator_name);
	g_assert_cmpint(!!a->k2, ==, !!b->k2);
	if (a->k2)
		g_assert_true(cp_secret_equal(a->k2, b->k2));
	g_assert_cmpint(!!a->backup, ==, !!b->backup);
	if (a->backup)
		g_assert_true(cp_secret_equal(a->backup, b->backup));
	g_assert_cmpmem(a->receipt, a->receipt_len, b->receipt, b->receipt_len);
	g_assert_cmpint(a->kept, ==, b->kept);
	g_assert_cmpstr(a->kept_imsi, ==, b->kept_imsi);
	g_assert_cmpstr(a->kept_plmn, ==, b->kept_plmn);
	g_assert_cmpstr(a->kept_network_name, ==, b->kept_network_name);
	g_assert_cmpstr(a->kept_apn, ==, b->kept_apn);
	g_assert_cmpint(!!a->owner_k2, ==, !!b->owner_k2);
	if (a->owner_k2)
		g_assert_true(cp_secret_equal(a->owner_k2, b->owner_k2));
	g_assert_cmpint(!!a->original, ==, !!b->original);
	if (a->original)
		g_assert_true(cp_secret_equal(a->original, b->original));
	g_assert_cmpint(a->original_inexact, ==, b->original_inexact);
}

static void
test_round_trip(void)
{
	static const CpState states[] = {
		CP_STATE_IDLE, CP_STATE_PROVISIONING, CP_STATE_RESETTING, CP_STATE_REGISTERING,
		CP_STATE_ROLLING_BACK, CP_STATE_PROVISIONED, CP_STATE_FAILED,
		CP_STATE_DECOMMISSIONING,
	};

	for (gsize i = 0; i < G_N_ELEMENTS(states); i++) {
		CpJournal j, back;
		cp_auto_buf buf = CP_BUF_INIT;
		const char *why = "unset";

		fill_busy(&j, states[i]);
		if (!cp_state_is_busy(states[i]))
			cp_journal_end_attempt(&j);
		/* the original backup and the owner's K'' stay in every state */
		g_assert_nonnull(j.original);
		g_assert_nonnull(j.owner_k2);
		g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_OK);
		g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &back, &why), ==, CP_OK);
		g_assert_null(why);
		assert_same(&j, &back);
		cp_journal_clear(&j);
		cp_journal_clear(&back);
	}
}

/* A fresh journal (a new device) encodes and decodes too. */
static void
test_fresh(void)
{
	CpJournal j, back;
	cp_auto_buf buf = CP_BUF_INIT;

	cp_journal_init(&j);
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_OK);
	g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &back, NULL), ==, CP_OK);
	assert_same(&j, &back);
	g_assert_cmpint(back.state, ==, CP_STATE_IDLE);
	g_assert_null(back.receipt);
}

/* A torn write: every prefix is refused, none decodes as something else. */
static void
test_every_truncation(void)
{
	CpJournal j, back;
	cp_auto_buf buf = CP_BUF_INIT;

	fill_busy(&j, CP_STATE_PROVISIONING);
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_OK);
	for (gsize len = 0; len < buf.len; len++) {
		const char *why = NULL;

		g_assert_cmpint(cp_journal_decode(buf.data, len, &back, &why), !=, CP_OK);
		g_assert_nonnull(why);
		g_assert_null(back.k2);
		g_assert_cmpint(back.state, ==, CP_STATE_IDLE);
	}
	cp_journal_clear(&j);
}

/* Any single bit flipped anywhere is refused. */
static void
test_every_bit_flip(void)
{
	CpJournal j, back;
	cp_auto_buf buf = CP_BUF_INIT;

	fill_busy(&j, CP_STATE_REGISTERING);
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_OK);
	for (gsize i = 0; i < buf.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf.data[i] ^= (uint8_t)(1u << bit);
			g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &back, NULL), !=, CP_OK);
			buf.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &back, NULL), ==, CP_OK);
	cp_journal_clear(&back);
	cp_journal_clear(&j);
}

/* Appending anything after the checksum is refused. */
static void
test_trailing(void)
{
	CpJournal j, back;
	cp_auto_buf buf = CP_BUF_INIT;
	const char *why = NULL;

	cp_journal_init(&j);
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_OK);
	cp_buf_append_u8(&buf, 0);
	g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &back, &why), !=, CP_OK);
	g_assert_nonnull(why);
}

/*
 * Records with a valid checksum that still make no sense: written by a
 * buggy or foreign program. Built by hand with the checksum recomputed.
 */
static void
encode_raw(CpBuf *b, uint8_t state, gboolean with_k2, gboolean with_backup, uint64_t attempt,
	   uint64_t committed, uint8_t version)
{
	uint8_t sum[CP_SHA256_LEN];
	uint8_t k2[32] = { 0 };

	cp_buf_append(b, "CPJ", 3);
	cp_buf_append_u8(b, version);
	cp_tlv_put_u8(b, 0x01, state);
	cp_tlv_put_be64(b, 0x02, 1);
	cp_tlv_put_be64(b, 0x03, committed);
	cp_tlv_put_be16(b, 0x04, 0);
	if (attempt)
		cp_tlv_put_be64(b, 0x05, attempt);
	cp_tlv_put_str(b, 0x06, "001010000000001");
	cp_tlv_put_str(b, 0x07, "00101");
	if (with_k2)
		cp_tlv_put(b, 0x10, k2, sizeof(k2));
	if (with_backup)
		cp_tlv_put(b, 0x11, "x", 1);
	cp_sha256(b->data, b->len, sum);
	cp_tlv_put(b, 0x7F, sum, sizeof(sum));
}

static void
test_inconsistent(void)
{
	static const struct {
		const char *name;
		uint8_t state;
		gboolean k2, backup;
		uint64_t attempt, committed;
		uint8_t version;
		CpError want;
	} cases[] = {
		{ "valid busy", CP_STATE_PROVISIONING, TRUE, TRUE, 3, 3, 1, CP_OK },
		{ "valid rest", CP_STATE_FAILED, FALSE, FALSE, 3, 3, 1, CP_OK },
		{ "format 4", CP_STATE_IDLE, FALSE, FALSE, 0, 0, 4, CP_ERR_VERSION },
		{ "valid busy, format 2", CP_STATE_PROVISIONING, TRUE, TRUE, 3, 3, 2, CP_OK },
		{ "valid busy, format 3", CP_STATE_PROVISIONING, TRUE, TRUE, 3, 3, 3, CP_OK },
		{ "decommissioning", CP_STATE_DECOMMISSIONING, FALSE, FALSE, 3, 3, 3, CP_OK },
		{ "decommissioning without its seq", CP_STATE_DECOMMISSIONING, FALSE, FALSE, 0, 3, 3,
		  CP_ERR_MISSING_FIELD },
		{ "decommissioning in format 2", CP_STATE_DECOMMISSIONING, FALSE, FALSE, 3, 3, 2,
		  CP_ERR_BAD_VALUE },
		{ "decommissioning with attempt secrets", CP_STATE_DECOMMISSIONING, TRUE, TRUE, 3, 3, 3,
		  CP_ERR_BAD_VALUE },
		{ "format 0", CP_STATE_IDLE, FALSE, FALSE, 0, 0, 0, CP_ERR_VERSION },
		{ "received is never journaled", CP_STATE_RECEIVED, FALSE, FALSE, 0, 0, 1, CP_ERR_BAD_VALUE },
		{ "verified is never journaled", CP_STATE_VERIFIED, FALSE, FALSE, 0, 0, 1, CP_ERR_BAD_VALUE },
		{ "state out of range", 0x40, FALSE, FALSE, 0, 0, 1, CP_ERR_BAD_VALUE },
		{ "busy without backup", CP_STATE_PROVISIONING, TRUE, FALSE, 3, 3, 1, CP_ERR_MISSING_FIELD },
		{ "busy without K''", CP_STATE_REGISTERING, FALSE, TRUE, 3, 3, 1, CP_ERR_MISSING_FIELD },
		{ "busy without attempt", CP_STATE_ROLLING_BACK, TRUE, TRUE, 0, 3, 1, CP_ERR_MISSING_FIELD },
		{ "secrets at rest", CP_STATE_PROVISIONED, TRUE, TRUE, 3, 3, 1, CP_ERR_BAD_VALUE },
		{ "attempt above committed", CP_STATE_FAILED, FALSE, FALSE, 4, 3, 1, CP_ERR_BAD_VALUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		cp_auto_buf buf = CP_BUF_INIT;
		CpJournal back;
		const char *why = NULL;
		CpError err;

		encode_raw(&buf, cases[i].state, cases[i].k2, cases[i].backup, cases[i].attempt,
			   cases[i].committed, cases[i].version);
		err = cp_journal_decode(buf.data, buf.len, &back, &why);
		if (err != cases[i].want)
			g_error("%s: got %s, want %s", cases[i].name, cp_error_name(err),
				cp_error_name(cases[i].want));
		g_assert_true((err == CP_OK) == (why == NULL));
		cp_journal_clear(&back);
	}
}

/* The owner binding on its own (format 2), every combination of present
 * and absent fields; the pin and name are whatever they were. */
static void
test_binding_round_trip(void)
{
	for (int mask = 0; mask < 8; mask++) {
		CpJournal j, back;
		cp_auto_buf buf = CP_BUF_INIT;

		cp_journal_init(&j);
		j.state = CP_STATE_PROVISIONED;
		j.bound = mask & 1;
		j.binding_version = (mask & 1) ? (uint64_t)mask << 40 : 0;
		j.has_pin = mask & 2;
		memset(j.operator_pin, 0xa5, sizeof(j.operator_pin));
		if (!j.has_pin)
			memset(j.operator_pin, 0, sizeof(j.operator_pin));
		if ((mask & 4) && j.has_pin)
			g_strlcpy(j.operator_name, "Test Operator", sizeof(j.operator_name));
		g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_OK);
		g_assert_cmpuint(buf.data[3], ==, CP_JOURNAL_FORMAT);
		g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &back, NULL), ==, CP_OK);
		assert_same(&j, &back);
		cp_journal_clear(&back);
	}
}

/* A binding field with a raw TLV, after the common ones (tags ascend). */
static void
encode_binding_raw(CpBuf *b, uint8_t state, uint8_t version, int bound, gboolean with_version,
		   gboolean with_pin, const char *name)
{
	uint8_t sum[CP_SHA256_LEN];
	uint8_t pin[CP_SHA256_LEN];

	memset(pin, 0x5c, sizeof(pin));
	cp_buf_append(b, "CPJ", 3);
	cp_buf_append_u8(b, version);
	cp_tlv_put_u8(b, 0x01, state);
	cp_tlv_put_be64(b, 0x02, 1);
	cp_tlv_put_be64(b, 0x03, 3);
	cp_tlv_put_be16(b, 0x04, 0);
	if (bound >= 0)
		cp_tlv_put_u8(b, 0x0A, (uint8_t)bound);
	if (with_version)
		cp_tlv_put_be64(b, 0x0B, 9);
	if (with_pin)
		cp_tlv_put(b, 0x0C, pin, sizeof(pin));
	if (name)
		cp_tlv_put_str(b, 0x0D, name);
	cp_sha256(b->data, b->len, sum);
	cp_tlv_put(b, 0x7F, sum, sizeof(sum));
}

/*
 * A journal written before the owner binding existed (format 1, the
 * records it had): provisioned reads as bound at version 0 with no pin,
 * any other state as unbound; saved again, it is format 2 and keeps that.
 */
static void
test_old_format(void)
{
	static const struct {
		uint8_t state;
		gboolean k2;
		gboolean bound;
	} cases[] = {
		{ CP_STATE_PROVISIONED, FALSE, TRUE },
		{ CP_STATE_IDLE, FALSE, FALSE },
		{ CP_STATE_FAILED, FALSE, FALSE },
		{ CP_STATE_REGISTERING, TRUE, FALSE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		cp_auto_buf buf = CP_BUF_INIT;
		cp_auto_buf again = CP_BUF_INIT;
		CpJournal j, back;

		encode_raw(&buf, cases[i].state, cases[i].k2, cases[i].k2, 3, 3, 1);
		g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &j, NULL), ==, CP_OK);
		g_assert_cmpint(j.state, ==, cases[i].state);
		g_assert_cmpint(j.bound, ==, cases[i].bound);
		g_assert_cmpuint(j.binding_version, ==, 0);
		g_assert_false(j.has_pin);
		g_assert_cmpstr(j.operator_name, ==, "");
		g_assert_cmpuint(j.committed_seq, ==, 3);

		/* a profile was taken: the card's values are not the original */
		g_assert_true(j.original_inexact);
		g_assert_null(j.original);
		g_assert_null(j.owner_k2);

		g_assert_cmpint(cp_journal_encode(&j, &again), ==, CP_OK);
		g_assert_cmpuint(again.data[3], ==, CP_JOURNAL_FORMAT);
		g_assert_cmpint(cp_journal_decode(again.data, again.len, &back, NULL), ==, CP_OK);
		assert_same(&j, &back);
		cp_journal_clear(&j);
		cp_journal_clear(&back);
	}
}

/* The lifecycle records (format 3) raw: each alone in a journal of format
 * 2 is refused; in format 3, what does not hang together is too. */
static void
encode_lifecycle_raw(CpBuf *b, uint8_t version, uint8_t state, gboolean bound, gboolean kept,
		     gboolean kept_imsi, gboolean owner_k2, gboolean original)
{
	uint8_t sum[CP_SHA256_LEN];
	uint8_t k2[32] = { 0 };

	cp_buf_append(b, "CPJ", 3);
	cp_buf_append_u8(b, version);
	cp_tlv_put_u8(b, 0x01, state);
	cp_tlv_put_be64(b, 0x02, 1);
	cp_tlv_put_be64(b, 0x03, 3);
	cp_tlv_put_be16(b, 0x04, 0);
	cp_tlv_put_be64(b, 0x05, 3);
	cp_tlv_put_str(b, 0x06, "001010000000001");
	cp_tlv_put_str(b, 0x07, "00101");
	if (bound) {
		cp_tlv_put_u8(b, 0x0A, 1);
		cp_tlv_put_be64(b, 0x0B, 1);
	}
	if (kept)
		cp_tlv_put_u8(b, 0x0E, 1);
	if (cp_state_is_busy(state)) {
		cp_tlv_put(b, 0x10, k2, sizeof(k2));
		cp_tlv_put(b, 0x11, "x", 1);
	}
	if (kept_imsi) {
		cp_tlv_put_str(b, 0x13, "001010000000002");
		cp_tlv_put_str(b, 0x14, "00101");
	}
	if (owner_k2)
		cp_tlv_put(b, 0x17, k2, sizeof(k2));
	if (original)
		cp_tlv_put(b, 0x18, "o", 1);
	cp_sha256(b->data, b->len, sum);
	cp_tlv_put(b, 0x7F, sum, sizeof(sum));
}

static void
test_lifecycle_inconsistent(void)
{
	static const struct {
		const char *name;
		uint8_t version, state;
		gboolean bound, kept, kept_imsi, owner_k2, original;
		CpError want;
	} cases[] = {
		{ "all of it", 3, CP_STATE_REGISTERING, TRUE, TRUE, TRUE, TRUE, TRUE, CP_OK },
		{ "at rest", 3, CP_STATE_PROVISIONED, TRUE, FALSE, FALSE, TRUE, TRUE, CP_OK },
		{ "original only", 3, CP_STATE_IDLE, FALSE, FALSE, FALSE, FALSE, TRUE, CP_OK },
		{ "original in format 2", 2, CP_STATE_IDLE, FALSE, FALSE, FALSE, FALSE, TRUE,
		  CP_ERR_BAD_VALUE },
		{ "owner K'' in format 2", 2, CP_STATE_PROVISIONED, TRUE, FALSE, FALSE, TRUE, FALSE,
		  CP_ERR_BAD_VALUE },
		{ "kept in format 2", 2, CP_STATE_REGISTERING, TRUE, TRUE, TRUE, FALSE, FALSE,
		  CP_ERR_BAD_VALUE },
		{ "owner K'' with no owner", 3, CP_STATE_IDLE, FALSE, FALSE, FALSE, TRUE, FALSE,
		  CP_ERR_BAD_VALUE },
		{ "kept without its subscription", 3, CP_STATE_REGISTERING, TRUE, TRUE, FALSE, FALSE,
		  FALSE, CP_ERR_BAD_VALUE },
		{ "a subscription not kept", 3, CP_STATE_REGISTERING, TRUE, FALSE, TRUE, FALSE, FALSE,
		  CP_ERR_BAD_VALUE },
		{ "kept at rest", 3, CP_STATE_PROVISIONED, TRUE, TRUE, TRUE, FALSE, FALSE,
		  CP_ERR_BAD_VALUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		cp_auto_buf buf = CP_BUF_INIT;
		CpJournal back;
		const char *why = NULL;
		CpError err;

		encode_lifecycle_raw(&buf, cases[i].version, cases[i].state, cases[i].bound,
				     cases[i].kept, cases[i].kept_imsi, cases[i].owner_k2,
				     cases[i].original);
		err = cp_journal_decode(buf.data, buf.len, &back, &why);
		if (err != cases[i].want)
			g_error("%s: got %s, want %s", cases[i].name, cp_error_name(err),
				cp_error_name(cases[i].want));
		g_assert_true((err == CP_OK) == (why == NULL));
		if (err == CP_OK)
			g_assert_false(back.original_inexact);
		cp_journal_clear(&back);
	}
}

/* A format 2 journal of a provisioned device loads bound, with no
 * original backup and no owner's K'': marked inexact, saved as format 3. */
static void
test_format2(void)
{
	cp_auto_buf buf = CP_BUF_INIT;
	cp_auto_buf again = CP_BUF_INIT;
	CpJournal j, back;

	encode_binding_raw(&buf, CP_STATE_PROVISIONED, 2, 1, TRUE, TRUE, "Test Operator");
	g_assert_cmpint(cp_journal_decode(buf.data, buf.len, &j, NULL), ==, CP_OK);
	g_assert_true(j.bound);
	g_assert_cmpuint(j.binding_version, ==, 9);
	g_assert_true(j.original_inexact);
	g_assert_null(j.original);
	g_assert_null(j.owner_k2);
	g_assert_cmpint(cp_journal_encode(&j, &again), ==, CP_OK);
	g_assert_cmpuint(again.data[3], ==, 3);
	g_assert_cmpint(cp_journal_decode(again.data, again.len, &back, NULL), ==, CP_OK);
	assert_same(&j, &back);
	cp_journal_clear(&j);
	cp_journal_clear(&back);
}

/* Binding records that do not hang together, or in format 1. */
static void
test_binding_inconsistent(void)
{
	static const struct {
		const char *name;
		uint8_t version;
		int bound;              /* -1: absent */
		gboolean with_version, with_pin;
		const char *op_name;
		CpError want;
	} cases[] = {
		{ "bound, pinned, named", 2, 1, TRUE, TRUE, "Test Operator", CP_OK },
		{ "bound, no pin (migrated)", 2, 1, TRUE, FALSE, NULL, CP_OK },
		{ "a pin kept while unbound", 2, -1, FALSE, TRUE, "Test Operator", CP_OK },
		{ "bound is not 1", 2, 0, TRUE, TRUE, NULL, CP_ERR_BAD_VALUE },
		{ "bound without version", 2, 1, FALSE, TRUE, NULL, CP_ERR_BAD_VALUE },
		{ "version without bound", 2, -1, TRUE, TRUE, NULL, CP_ERR_BAD_VALUE },
		{ "a name without a pin", 2, 1, TRUE, FALSE, "Test Operator", CP_ERR_BAD_VALUE },
		{ "a name not UTF-8", 2, 1, TRUE, TRUE, "Op\xff", CP_ERR_BAD_VALUE },
		{ "binding in format 1", 1, 1, TRUE, TRUE, NULL, CP_ERR_BAD_VALUE },
		{ "a pin in format 1", 1, -1, FALSE, TRUE, NULL, CP_ERR_BAD_VALUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		cp_auto_buf buf = CP_BUF_INIT;
		CpJournal back;
		const char *why = NULL;
		CpError err;

		encode_binding_raw(&buf, CP_STATE_PROVISIONED, cases[i].version, cases[i].bound,
				   cases[i].with_version, cases[i].with_pin, cases[i].op_name);
		err = cp_journal_decode(buf.data, buf.len, &back, &why);
		if (err != cases[i].want)
			g_error("%s: got %s, want %s", cases[i].name, cp_error_name(err),
				cp_error_name(cases[i].want));
		g_assert_true((err == CP_OK) == (why == NULL));
		cp_journal_clear(&back);
	}
}

/* The encoder refuses to write what the decoder would refuse. */
static void
test_encode_refuses(void)
{
	CpJournal j;
	cp_auto_buf buf = CP_BUF_INIT;

	fill_busy(&j, CP_STATE_PROVISIONING);
	cp_secret_free(j.backup);
	j.backup = NULL;
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_ERR_ARGUMENT);
	cp_journal_clear(&j);

	cp_journal_init(&j);
	j.state = CP_STATE_VERIFIED;
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_ERR_ARGUMENT);

	/* a binding version while unbound; a name without a pin */
	cp_journal_init(&j);
	j.binding_version = 2;
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_ERR_ARGUMENT);
	cp_journal_init(&j);
	j.bound = true;
	g_strlcpy(j.operator_name, "Test Operator", sizeof(j.operator_name));
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_ERR_ARGUMENT);

	/* an owner's K'' with no owner; a kept subscription at rest */
	fill_busy(&j, CP_STATE_PROVISIONED);
	j.bound = false;
	j.binding_version = 0;
	cp_secret_free(j.k2);
	j.k2 = NULL;
	cp_secret_free(j.backup);
	j.backup = NULL;
	j.kept = false;
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_ERR_ARGUMENT);
	cp_journal_clear(&j);
	fill_busy(&j, CP_STATE_PROVISIONED);
	cp_secret_free(j.k2);
	j.k2 = NULL;
	cp_secret_free(j.backup);
	j.backup = NULL;
	g_assert_cmpint(cp_journal_encode(&j, &buf), ==, CP_ERR_ARGUMENT);
	cp_journal_clear(&j);
}

static char *
make_state_dir(void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp("cp-journal-XXXXXX", &error);

	g_assert_no_error(error);
	return dir;
}

static void
rm_rf(const char *dir)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

	g_assert_cmpint(system(cmd), ==, 0);
}

static void
test_files(void)
{
	g_autofree char *dir = make_state_dir();
	g_autofree char *path = g_build_filename(dir, CP_JOURNAL_NAME, NULL);
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	g_autoptr(GError) error = NULL;
	CpJournal j, back;
	gboolean found = TRUE;
	struct stat st;

	g_assert_true(cp_journal_check_dir(dir, &error));
	g_assert_true(cp_journal_load(dir, &back, &found, &error));
	g_assert_no_error(error);
	g_assert_false(found);
	g_assert_cmpint(back.state, ==, CP_STATE_IDLE);

	fill_busy(&j, CP_STATE_PROVISIONING);
	g_assert_true(cp_journal_save(dir, &j, &error));
	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);

	/* a write cut short leaves a .tmp beside the whole journal */
	g_assert_true(g_file_set_contents(tmp, "CPJ", 3, NULL));
	g_assert_true(cp_journal_load(dir, &back, &found, &error));
	g_assert_true(found);
	assert_same(&j, &back);
	g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
	cp_journal_clear(&back);

	/* a damaged journal is refused, named, and left in place */
	{
		g_autofree char *data = NULL;
		gsize len;

		g_assert_true(g_file_get_contents(path, &data, &len, NULL));
		g_assert_true(g_file_set_contents(path, data, (gssize)len / 2, NULL));
	}
	g_assert_false(cp_journal_load(dir, &back, &found, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_STORAGE);
	g_assert_nonnull(strstr(error->message, path));
	g_assert_nonnull(strstr(error->message, "torn"));
	g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
	g_clear_error(&error);

	/* a state directory others can enter is refused */
	g_assert_cmpint(chmod(dir, 0755), ==, 0);
	g_assert_false(cp_journal_check_dir(dir, &error));
	g_assert_error(error, CP_ERROR, CP_ERR_STORAGE);
	g_assert_nonnull(strstr(error->message, "0700"));
	g_clear_error(&error);

	/* a missing one is made 0700 */
	{
		g_autofree char *sub = g_build_filename(dir, "sub", NULL);

		g_assert_true(cp_journal_check_dir(sub, &error));
		g_assert_cmpint(stat(sub, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 07777, ==, 0700);
	}
	cp_journal_clear(&j);
	rm_rf(dir);
}

/* ---- saves that fail part-way ---- */

/* The journal before (small: a device at rest) and the one a failed save
 * tried to write (large: mid-attempt, backup and receipt at their most). */
static void
fill_small(CpJournal *j)
{
	cp_journal_init(j);
	j->state = CP_STATE_PROVISIONED;
	j->att_counter = 12;
	j->committed_seq = 4;
	j->attempt_seq = 4;
	g_strlcpy(j->imsi, "001010000000001", sizeof(j->imsi));
}

static void
fill_large(CpJournal *j)
{
	uint8_t backup[CP_JOURNAL_BACKUP_MAX];
	uint8_t receipt[CP_JOURNAL_RECEIPT_MAX];

	fill_busy(j, CP_STATE_REGISTERING);
	j->att_counter = 13;
	j->committed_seq = 5;
	j->attempt_seq = 5;
	for (gsize i = 0; i < sizeof(backup); i++)
		backup[i] = (uint8_t)(i * 7);
	for (gsize i = 0; i < sizeof(receipt); i++)
		receipt[i] = (uint8_t)(i * 13);
	cp_secret_free(j->backup);
	j->backup = cp_secret_new_from(backup, sizeof(backup));
	cp_journal_set_receipt(j, receipt, sizeof(receipt));
}

static GBytes *
file_bytes(const char *path)
{
	char *data = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	return g_bytes_new_take(data, len);
}

/* The old journal is on disk byte for byte, loads as itself, and the
 * load took away any .tmp a failed save left. */
static void
assert_old_journal(const char *dir, GBytes *old_bytes, const CpJournal *old)
{
	g_autofree char *path = g_build_filename(dir, CP_JOURNAL_NAME, NULL);
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	g_autoptr(GBytes) now = file_bytes(path);
	g_autoptr(GError) error = NULL;
	CpJournal back;
	gboolean found = FALSE;

	g_assert_true(g_bytes_equal(now, old_bytes));
	g_assert_true(cp_journal_load(dir, &back, &found, &error));
	g_assert_no_error(error);
	g_assert_true(found);
	assert_same(old, &back);
	cp_journal_clear(&back);
	g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
}

/* Save old in dir; return its bytes. */
static GBytes *
save_old(const char *dir, CpJournal *old)
{
	g_autofree char *path = g_build_filename(dir, CP_JOURNAL_NAME, NULL);
	g_autoptr(GError) error = NULL;

	fill_small(old);
	g_assert_true(cp_journal_save(dir, old, &error));
	g_assert_no_error(error);
	return file_bytes(path);
}

/* In a child: save the large journal; exit 0 when the save said it
 * failed with CP_ERR_STORAGE, 1 when it said it succeeded. */
static G_GNUC_NORETURN void
child_save_large(const char *dir)
{
	g_autoptr(GError) error = NULL;
	CpJournal j;
	gboolean ok;

	fill_large(&j);
	ok = cp_journal_save(dir, &j, &error);
	if (!ok && !g_error_matches(error, CP_ERROR, CP_ERR_STORAGE))
		g_error("the save failed with another error: %s", error->message);
	_exit(ok ? 1 : 0);
}

/* A successful save puts a new file in place (a new inode, never the old
 * one written over) that holds the whole journal. */
static void
test_save_replaces(void)
{
	g_autofree char *dir = make_state_dir();
	g_autofree char *path = g_build_filename(dir, CP_JOURNAL_NAME, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) old_bytes = NULL;
	g_autoptr(GBytes) now = NULL;
	cp_auto_buf want = CP_BUF_INIT;
	CpJournal old, large, back;
	gboolean found;
	struct stat before, after;

	old_bytes = save_old(dir, &old);
	g_assert_cmpint(stat(path, &before), ==, 0);
	fill_large(&large);
	g_assert_true(cp_journal_save(dir, &large, &error));
	g_assert_no_error(error);
	g_assert_cmpint(stat(path, &after), ==, 0);
	g_assert_cmpuint(after.st_ino, !=, before.st_ino);
	g_assert_cmpint(after.st_mode & 07777, ==, 0600);

	g_assert_cmpint(cp_journal_encode(&large, &want), ==, CP_OK);
	now = file_bytes(path);
	g_assert_cmpmem(g_bytes_get_data(now, NULL), g_bytes_get_size(now), want.data, want.len);
	g_assert_cmpuint(after.st_size, ==, want.len);
	g_assert_true(cp_journal_load(dir, &back, &found, &error));
	assert_same(&large, &back);
	cp_journal_clear(&back);
	cp_journal_clear(&large);
	cp_journal_clear(&old);
	rm_rf(dir);
}

/* A file size limit: the write of the new journal stops part-way (EFBIG
 * after a few hundred bytes); the save fails and the old one stays. */
static void
test_save_file_size_limit(void)
{
	g_autofree char *dir = make_state_dir();
	g_autoptr(GBytes) old_bytes = NULL;
	CpJournal old;
	pid_t pid;
	int status;

	old_bytes = save_old(dir, &old);
	/* more than the old journal, less than the new one */
	g_assert_cmpuint(g_bytes_get_size(old_bytes), <, 600);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		cp_fault_file_size_limit(600);
		child_save_large(dir);
	}
	status = cp_fault_wait(pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	assert_old_journal(dir, old_bytes, &old);
	cp_journal_clear(&old);
	rm_rf(dir);
}

/* A full filesystem: a tmpfs of a few KB in a private mount namespace,
 * the old journal on it and the rest filled. Checked in the child, whose
 * namespace (and tmpfs) go with it. */
static void
test_save_full_filesystem(void)
{
	const char *why = cp_fault_cannot_tmpfs();
	g_autofree char *dir = NULL;
	pid_t pid;
	int status;

	if (why) {
		g_test_skip(why);
		return;
	}
	dir = make_state_dir();
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) old_bytes = NULL;
		CpJournal old, large;

		if (!cp_fault_private_tmpfs(dir, 16384, &error))
			g_error("%s", error->message);
		old_bytes = save_old(dir, &old);
		if (!cp_fault_fill(dir, "filler", &error))
			g_error("%s", error->message);
		fill_large(&large);
		g_assert_false(cp_journal_save(dir, &large, &error));
		g_assert_error(error, CP_ERROR, CP_ERR_STORAGE);
		g_assert_nonnull(strstr(error->message, g_strerror(ENOSPC)));
		assert_old_journal(dir, old_bytes, &old);
		_exit(0);
	}
	status = cp_fault_wait(pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	rm_rf(dir);
}

/* A crash between write and rename: the child is killed (SIGSYS) by a
 * seccomp filter at its rename, the new journal written and synced
 * beside the old. The old one is what a restart finds. */
static void
test_save_crash_before_rename(void)
{
	const char *why = cp_fault_cannot_seccomp();
	g_autofree char *dir = NULL;
	g_autofree char *tmp = NULL;
	g_autoptr(GBytes) old_bytes = NULL;
	CpJournal old;
	pid_t pid;
	int status;

	if (why) {
		g_test_skip(why);
		return;
	}
	dir = make_state_dir();
	tmp = g_build_filename(dir, CP_JOURNAL_NAME ".tmp", NULL);
	old_bytes = save_old(dir, &old);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		if (!cp_fault_kill_on_rename())
			g_error("seccomp: %s", g_strerror(errno));
		child_save_large(dir);
	}
	status = cp_fault_wait(pid);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGSYS);
	/* the crash was exactly there: the new journal is whole beside it */
	{
		g_autoptr(GBytes) left = file_bytes(tmp);
		cp_auto_buf want = CP_BUF_INIT;
		CpJournal large;

		fill_large(&large);
		g_assert_cmpint(cp_journal_encode(&large, &want), ==, CP_OK);
		g_assert_cmpmem(g_bytes_get_data(left, NULL), g_bytes_get_size(left), want.data, want.len);
		cp_journal_clear(&large);
	}
	assert_old_journal(dir, old_bytes, &old);
	cp_journal_clear(&old);
	rm_rf(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/daemon/journal/round-trip", test_round_trip);
	g_test_add_func("/daemon/journal/fresh", test_fresh);
	g_test_add_func("/daemon/journal/every-truncation", test_every_truncation);
	g_test_add_func("/daemon/journal/every-bit-flip", test_every_bit_flip);
	g_test_add_func("/daemon/journal/trailing", test_trailing);
	g_test_add_func("/daemon/journal/inconsistent", test_inconsistent);
	g_test_add_func("/daemon/journal/encode-refuses", test_encode_refuses);
	g_test_add_func("/daemon/journal/binding-round-trip", test_binding_round_trip);
	g_test_add_func("/daemon/journal/old-format", test_old_format);
	g_test_add_func("/daemon/journal/binding-inconsistent", test_binding_inconsistent);
	g_test_add_func("/daemon/journal/lifecycle-inconsistent", test_lifecycle_inconsistent);
	g_test_add_func("/daemon/journal/format-2", test_format2);
	g_test_add_func("/daemon/journal/files", test_files);
	g_test_add_func("/daemon/journal/save-replaces", test_save_replaces);
	g_test_add_func("/daemon/journal/save-file-size-limit", test_save_file_size_limit);
	g_test_add_func("/daemon/journal/save-full-filesystem", test_save_full_filesystem);
	g_test_add_func("/daemon/journal/save-crash-before-rename", test_save_crash_before_rename);
	return g_test_run();
}
