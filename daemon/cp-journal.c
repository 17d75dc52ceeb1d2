/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-journal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cp-crypto.h"
#include "cp-glib.h"
#include "cp-tlv.h"

static const uint8_t magic[3] = { 'C', 'P', 'J' };
#define HDR_LEN 4

enum {
	J_STATE = 0x01,
	J_ATT_COUNTER = 0x02,
	J_COMMITTED_SEQ = 0x03,
	J_LAST_ERROR = 0x04,
	J_ATTEMPT_SEQ = 0x05,
	J_IMSI = 0x06,
	J_PLMN = 0x07,
	J_NETWORK_NAME = 0x08,
	J_APN = 0x09,
	J_BOUND = 0x0A,
	J_BINDING_VERSION = 0x0B,
	J_OPERATOR_PIN = 0x0C,
	J_OPERATOR_NAME = 0x0D,
	J_KEPT = 0x0E,
	J_K2 = 0x10,
	J_BACKUP = 0x11,
	J_RECEIPT = 0x12,
	J_KEPT_IMSI = 0x13,
	J_KEPT_PLMN = 0x14,
	J_KEPT_NETWORK_NAME = 0x15,
	J_KEPT_APN = 0x16,
	J_OWNER_K2 = 0x17,
	J_ORIGINAL = 0x18,
	J_ORIGINAL_INEXACT = 0x19,
	J_CHECKSUM = 0x7F,
};

static const CpTlvField fields[] = {
	{ J_STATE, 1, 1, true, false },
	{ J_ATT_COUNTER, 8, 8, true, false },
	{ J_COMMITTED_SEQ, 8, 8, true, false },
	{ J_LAST_ERROR, 2, 2, true, false },
	{ J_ATTEMPT_SEQ, 8, 8, false, false },
	{ J_IMSI, 6, 15, false, false },
	{ J_PLMN, 5, 6, false, false },
	{ J_NETWORK_NAME, 1, 64, false, false },
	{ J_APN, 1, 100, false, false },
	{ J_BOUND, 1, 1, false, false },
	{ J_BINDING_VERSION, 8, 8, false, false },
	{ J_OPERATOR_PIN, CP_SHA256_LEN, CP_SHA256_LEN, false, false },
	{ J_OPERATOR_NAME, 1, CP_JOURNAL_OPERATOR_NAME_MAX, false, false },
	{ J_KEPT, 1, 1, false, false },
	{ J_K2, 32, 32, false, false },
	{ J_BACKUP, 1, CP_JOURNAL_BACKUP_MAX, false, false },
	{ J_RECEIPT, 1, CP_JOURNAL_RECEIPT_MAX, false, false },
	{ J_KEPT_IMSI, 6, 15, false, false },
	{ J_KEPT_PLMN, 5, 6, false, false },
	{ J_KEPT_NETWORK_NAME, 1, 64, false, false },
	{ J_KEPT_APN, 1, 100, false, false },
	{ J_OWNER_K2, 32, 32, false, false },
	{ J_ORIGINAL, 1, CP_JOURNAL_BACKUP_MAX, false, false },
	{ J_ORIGINAL_INEXACT, 1, 1, false, false },
	{ J_CHECKSUM, CP_SHA256_LEN, CP_SHA256_LEN, true, true },
};
enum {
	F_STATE, F_ATT_COUNTER, F_COMMITTED_SEQ, F_LAST_ERROR, F_ATTEMPT_SEQ,
	F_IMSI, F_PLMN, F_NETWORK_NAME, F_APN, F_BOUND, F_BINDING_VERSION,
	F_OPERATOR_PIN, F_OPERATOR_NAME, F_KEPT, F_K2, F_BACKUP, F_RECEIPT,
	F_KEPT_IMSI, F_KEPT_PLMN, F_KEPT_NETWORK_NAME, F_KEPT_APN, F_OWNER_K2, F_ORIGINAL,
	F_ORIGINAL_INEXACT, F_CHECKSUM, F_N,
};
G_STATIC_ASSERT(G_N_ELEMENTS(fields) == F_N);
G_STATIC_ASSERT(sizeof(((CpJournal *)0)->operator_pin) == CP_SHA256_LEN);

/* Format 1 had no owner binding, format 2 no lifecycle (see
 * cp_journal_decode). */
#define FORMAT_NO_BINDING 1
#define FORMAT_NO_LIFECYCLE 2

void
cp_journal_init(CpJournal *j)
{
	memset(j, 0, sizeof(*j));
	j->state = CP_STATE_IDLE;
}

void
cp_journal_end_attempt(CpJournal *j)
{
	cp_secret_free(j->k2);
	j->k2 = NULL;
	cp_secret_free(j->backup);
	j->backup = NULL;
	j->kept = false;
	j->kept_imsi[0] = j->kept_plmn[0] = j->kept_network_name[0] = j->kept_apn[0] = '\0';
}

void
cp_journal_clear(CpJournal *j)
{
	cp_journal_end_attempt(j);
	cp_secret_free(j->owner_k2);
	cp_secret_free(j->original);
	g_free(j->receipt);
	cp_journal_init(j);
}

void
cp_journal_set_receipt(CpJournal *j, const uint8_t *buf, size_t len)
{
	g_free(j->receipt);
	j->receipt = buf && len ? g_memdup2(buf, len) : NULL;
	j->receipt_len = j->receipt ? len : 0;
}

void
cp_journal_copy(CpJournal *dst, const CpJournal *src)
{
	*dst = *src;
	dst->k2 = src->k2 ? cp_secret_dup(src->k2) : NULL;
	dst->backup = src->backup ? cp_secret_dup(src->backup) : NULL;
	dst->owner_k2 = src->owner_k2 ? cp_secret_dup(src->owner_k2) : NULL;
	dst->original = src->original ? cp_secret_dup(src->original) : NULL;
	dst->receipt = NULL;
	dst->receipt_len = 0;
	cp_journal_set_receipt(dst, src->receipt, src->receipt_len);
}

static void
put_opt_str(CpBuf *b, uint8_t tag, const char *s)
{
	if (s[0])
		cp_tlv_put_str(b, tag, s);
}

CpError
cp_journal_encode(const CpJournal *j, CpBuf *out)
{
	uint8_t sum[CP_SHA256_LEN];
	size_t start = out->len;

	if (!cp_state_is_journaled(j->state))
		return CP_ERR_ARGUMENT;
	if (cp_state_is_busy(j->state) && (!j->k2 || !j->backup || !j->imsi[0] || !j->plmn[0]))
		return CP_ERR_ARGUMENT;
	if (j->backup && (j->backup->len == 0 || j->backup->len > CP_JOURNAL_BACKUP_MAX))
		return CP_ERR_ARGUMENT;
	if (j->receipt_len > CP_JOURNAL_RECEIPT_MAX)
		return CP_ERR_ARGUMENT;
	if (j->original && (j->original->len == 0 || j->original->len > CP_JOURNAL_BACKUP_MAX))
		return CP_ERR_ARGUMENT;
	if ((j->owner_k2 && (!j->bound || j->owner_k2->len != 32)) ||
	    (j->kept && (!cp_state_is_busy(j->state) || !j->kept_imsi[0] || !j->kept_plmn[0])) ||
	    (cp_state_is_command(j->state) && !j->attempt_seq))
		return CP_ERR_ARGUMENT;
	if ((!j->bound && j->binding_version) || (j->operator_name[0] && !j->has_pin) ||
	    !g_utf8_validate(j->operator_name, -1, NULL))
		return CP_ERR_ARGUMENT;

	cp_buf_append(out, magic, sizeof(magic));
	cp_buf_append_u8(out, CP_JOURNAL_FORMAT);
	cp_tlv_put_u8(out, J_STATE, (uint8_t)j->state);
	cp_tlv_put_be64(out, J_ATT_COUNTER, j->att_counter);
	cp_tlv_put_be64(out, J_COMMITTED_SEQ, j->committed_seq);
	cp_tlv_put_be16(out, J_LAST_ERROR, j->last_error);
	if (j->attempt_seq)
		cp_tlv_put_be64(out, J_ATTEMPT_SEQ, j->attempt_seq);
	put_opt_str(out, J_IMSI, j->imsi);
	put_opt_str(out, J_PLMN, j->plmn);
	put_opt_str(out, J_NETWORK_NAME, j->network_name);
	put_opt_str(out, J_APN, j->apn);
	if (j->bound) {
		cp_tlv_put_u8(out, J_BOUND, 1);
		cp_tlv_put_be64(out, J_BINDING_VERSION, j->binding_version);
	}
	if (j->has_pin)
		cp_tlv_put(out, J_OPERATOR_PIN, j->operator_pin, sizeof(j->operator_pin));
	put_opt_str(out, J_OPERATOR_NAME, j->operator_name);
	if (j->kept)
		cp_tlv_put_u8(out, J_KEPT, 1);
	if (j->k2)
		cp_tlv_put(out, J_K2, j->k2->data, j->k2->len);
	if (j->backup)
		cp_tlv_put(out, J_BACKUP, j->backup->data, j->backup->len);
	if (j->receipt_len)
		cp_tlv_put(out, J_RECEIPT, j->receipt, j->receipt_len);
	if (j->kept) {
		put_opt_str(out, J_KEPT_IMSI, j->kept_imsi);
		put_opt_str(out, J_KEPT_PLMN, j->kept_plmn);
		put_opt_str(out, J_KEPT_NETWORK_NAME, j->kept_network_name);
		put_opt_str(out, J_KEPT_APN, j->kept_apn);
	}
	if (j->owner_k2)
		cp_tlv_put(out, J_OWNER_K2, j->owner_k2->data, j->owner_k2->len);
	if (j->original)
		cp_tlv_put(out, J_ORIGINAL, j->original->data, j->original->len);
	if (j->original_inexact)
		cp_tlv_put_u8(out, J_ORIGINAL_INEXACT, 1);
	if (out->failed)
		return CP_ERR_CRYPTO;
	cp_sha256(out->data + start, out->len - start, sum);
	cp_tlv_put(out, J_CHECKSUM, sum, sizeof(sum));
	return out->failed ? CP_ERR_CRYPTO : CP_OK;
}

static void
copy_str(char *dst, size_t cap, const CpTlvValue *v)
{
	dst[0] = '\0';
	if (!v->value)
		return;
	g_assert(v->len < cap);
	memcpy(dst, v->value, v->len);
	dst[v->len] = '\0';
}

#define FAIL(code, text) do { if (why) *why = (text); cp_journal_clear(j); return (code); } while (0)

CpError
cp_journal_decode(const uint8_t *buf, size_t len, CpJournal *j, const char **why)
{
	CpTlvValue v[F_N];
	uint8_t sum[CP_SHA256_LEN];
	CpError err;

	cp_journal_init(j);
	if (len < HDR_LEN)
		FAIL(CP_ERR_TRUNCATED, "is shorter than its header (torn write?)");
	if (memcmp(buf, magic, sizeof(magic)) != 0)
		FAIL(CP_ERR_BAD_VALUE, "is not a cellprov journal (bad magic)");
	if (buf[3] != CP_JOURNAL_FORMAT && buf[3] != FORMAT_NO_BINDING &&
	    buf[3] != FORMAT_NO_LIFECYCLE)
		FAIL(CP_ERR_VERSION, "was written in a format this version does not know");

	err = cp_tlv_decode(buf + HDR_LEN, len - HDR_LEN, fields, F_N, v, NULL, NULL);
	if (err != CP_OK)
		FAIL(err, "has malformed records (torn or altered)");

	/* The checksum covers the header and every TLV before it. */
	cp_sha256(buf, HDR_LEN + v[F_CHECKSUM].offset, sum);
	if (!cp_memeq_consttime(sum, v[F_CHECKSUM].value, sizeof(sum)))
		FAIL(CP_ERR_MAC, "fails its checksum (torn or altered)");

	j->state = (CpState)v[F_STATE].value[0];
	if (!cp_state_is_journaled(j->state))
		FAIL(CP_ERR_BAD_VALUE, "names a state that is never journaled");
	j->att_counter = cp_be64(v[F_ATT_COUNTER].value);
	j->committed_seq = cp_be64(v[F_COMMITTED_SEQ].value);
	j->last_error = cp_be16(v[F_LAST_ERROR].value);
	if (v[F_ATTEMPT_SEQ].value)
		j->attempt_seq = cp_be64(v[F_ATTEMPT_SEQ].value);
	if ((v[F_IMSI].value && !cp_is_digits(v[F_IMSI].value, v[F_IMSI].len)) ||
	    (v[F_PLMN].value && !cp_is_digits(v[F_PLMN].value, v[F_PLMN].len)) ||
	    (v[F_NETWORK_NAME].value && !cp_is_utf8(v[F_NETWORK_NAME].value, v[F_NETWORK_NAME].len)) ||
	    (v[F_APN].value && !cp_is_printable_ascii(v[F_APN].value, v[F_APN].len)))
		FAIL(CP_ERR_BAD_VALUE, "holds a field of the wrong form");
	copy_str(j->imsi, sizeof(j->imsi), &v[F_IMSI]);
	copy_str(j->plmn, sizeof(j->plmn), &v[F_PLMN]);
	copy_str(j->network_name, sizeof(j->network_name), &v[F_NETWORK_NAME]);
	copy_str(j->apn, sizeof(j->apn), &v[F_APN]);

	if (buf[3] == FORMAT_NO_BINDING) {
		if (v[F_BOUND].value || v[F_BINDING_VERSION].value || v[F_OPERATOR_PIN].value ||
		    v[F_OPERATOR_NAME].value)
			FAIL(CP_ERR_BAD_VALUE, "holds an owner binding in a format that has none");
		/* provisioned before owners were bound: bound at version 0 to
		 * an operator it never pinned */
		j->bound = j->state == CP_STATE_PROVISIONED;
	} else {
		if (v[F_BOUND].value && v[F_BOUND].value[0] != 1)
			FAIL(CP_ERR_BAD_VALUE, "holds a field of the wrong form");
		j->bound = v[F_BOUND].value != NULL;
		if (!j->bound != !v[F_BINDING_VERSION].value)
			FAIL(CP_ERR_BAD_VALUE, "records an owner binding without its version");
		if (v[F_BINDING_VERSION].value)
			j->binding_version = cp_be64(v[F_BINDING_VERSION].value);
		if (v[F_OPERATOR_NAME].value && !v[F_OPERATOR_PIN].value)
			FAIL(CP_ERR_BAD_VALUE, "names an operator it did not pin");
		if (v[F_OPERATOR_NAME].value &&
		    !cp_is_utf8(v[F_OPERATOR_NAME].value, v[F_OPERATOR_NAME].len))
			FAIL(CP_ERR_BAD_VALUE, "holds a field of the wrong form");
		if (v[F_OPERATOR_PIN].value) {
			j->has_pin = true;
			memcpy(j->operator_pin, v[F_OPERATOR_PIN].value, CP_SHA256_LEN);
		}
		copy_str(j->operator_name, sizeof(j->operator_name), &v[F_OPERATOR_NAME]);
	}

	if (buf[3] < CP_JOURNAL_FORMAT) {
		if (v[F_KEPT].value || v[F_KEPT_IMSI].value || v[F_KEPT_PLMN].value ||
		    v[F_KEPT_NETWORK_NAME].value || v[F_KEPT_APN].value || v[F_OWNER_K2].value ||
		    v[F_ORIGINAL].value || v[F_ORIGINAL_INEXACT].value)
			FAIL(CP_ERR_BAD_VALUE, "holds lifecycle records in a format that has none");
		if (cp_state_is_command(j->state))
			FAIL(CP_ERR_BAD_VALUE, "names a state its format does not have");
		/* it never kept the values from before the first provisioning:
		 * once a profile was taken, the card's are not the original */
		j->original_inexact = j->committed_seq > 0;
	} else {
		if ((v[F_KEPT].value && v[F_KEPT].value[0] != 1) ||
		    (v[F_ORIGINAL_INEXACT].value && v[F_ORIGINAL_INEXACT].value[0] != 1) ||
		    (v[F_KEPT_IMSI].value && !cp_is_digits(v[F_KEPT_IMSI].value, v[F_KEPT_IMSI].len)) ||
		    (v[F_KEPT_PLMN].value && !cp_is_digits(v[F_KEPT_PLMN].value, v[F_KEPT_PLMN].len)) ||
		    (v[F_KEPT_NETWORK_NAME].value &&
		     !cp_is_utf8(v[F_KEPT_NETWORK_NAME].value, v[F_KEPT_NETWORK_NAME].len)) ||
		    (v[F_KEPT_APN].value && !cp_is_printable_ascii(v[F_KEPT_APN].value, v[F_KEPT_APN].len)))
			FAIL(CP_ERR_BAD_VALUE, "holds a field of the wrong form");
		j->kept = v[F_KEPT].value != NULL;
		if (j->kept != (v[F_KEPT_IMSI].value && v[F_KEPT_PLMN].value) ||
		    (!j->kept && (v[F_KEPT_NETWORK_NAME].value || v[F_KEPT_APN].value)))
			FAIL(CP_ERR_BAD_VALUE, "records a kept subscription by halves");
		if (j->kept && !cp_state_is_busy(j->state))
			FAIL(CP_ERR_BAD_VALUE, "keeps a subscription to return to in a resting state");
		if (v[F_OWNER_K2].value && !j->bound)
			FAIL(CP_ERR_BAD_VALUE, "keeps an owner's K'' with no owner");
		if (cp_state_is_command(j->state) && !j->attempt_seq)
			FAIL(CP_ERR_MISSING_FIELD, "records a command without its seq");
		copy_str(j->kept_imsi, sizeof(j->kept_imsi), &v[F_KEPT_IMSI]);
		copy_str(j->kept_plmn, sizeof(j->kept_plmn), &v[F_KEPT_PLMN]);
		copy_str(j->kept_network_name, sizeof(j->kept_network_name), &v[F_KEPT_NETWORK_NAME]);
		copy_str(j->kept_apn, sizeof(j->kept_apn), &v[F_KEPT_APN]);
		j->original_inexact = v[F_ORIGINAL_INEXACT].value != NULL;
		if (v[F_OWNER_K2].value &&
		    !(j->owner_k2 = cp_secret_new_from(v[F_OWNER_K2].value, v[F_OWNER_K2].len)))
			FAIL(CP_ERR_CRYPTO, "could not be loaded (out of memory)");
		if (v[F_ORIGINAL].value &&
		    !(j->original = cp_secret_new_from(v[F_ORIGINAL].value, v[F_ORIGINAL].len)))
			FAIL(CP_ERR_CRYPTO, "could not be loaded (out of memory)");
	}

	if (cp_state_is_busy(j->state)) {
		if (!v[F_K2].value || !v[F_BACKUP].value || !j->imsi[0] || !j->plmn[0] ||
		    !j->attempt_seq)
			FAIL(CP_ERR_MISSING_FIELD, "records an attempt without what recovery needs");
	} else if (v[F_K2].value || v[F_BACKUP].value) {
		FAIL(CP_ERR_BAD_VALUE, "keeps attempt secrets in a resting state");
	}
	if (j->attempt_seq > j->committed_seq)
		FAIL(CP_ERR_BAD_VALUE, "records an attempt above the committed profile_seq");

	if (v[F_K2].value) {
		j->k2 = cp_secret_new_from(v[F_K2].value, v[F_K2].len);
		j->backup = cp_secret_new_from(v[F_BACKUP].value, v[F_BACKUP].len);
		if (!j->k2 || !j->backup)
			FAIL(CP_ERR_CRYPTO, "could not be loaded (out of memory)");
	}
	if (v[F_RECEIPT].value)
		cp_journal_set_receipt(j, v[F_RECEIPT].value, v[F_RECEIPT].len);
	if (why)
		*why = NULL;
	return CP_OK;
}

gboolean
cp_journal_check_dir(const char *dir, GError **error)
{
	struct stat st;

	if (g_mkdir_with_parents(dir, 0700) < 0) {
		cp_set_error(error, CP_ERR_STORAGE, "cannot create the state directory %s: %s",
			     dir, g_strerror(errno));
		return FALSE;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cp_set_error(error, CP_ERR_STORAGE, "state directory %s is not a directory", dir);
		return FALSE;
	}
	if (st.st_mode & 077) {
		cp_set_error(error, CP_ERR_STORAGE,
			     "state directory %s is open to others (mode %04o); make it 0700",
			     dir, (unsigned)(st.st_mode & 07777));
		return FALSE;
	}
	if (st.st_uid != geteuid()) {
		cp_set_error(error, CP_ERR_STORAGE,
			     "state directory %s belongs to another user (uid %u)",
			     dir, (unsigned)st.st_uid);
		return FALSE;
	}
	return TRUE;
}

gboolean
cp_journal_load(const char *dir, CpJournal *j, gboolean *found, GError **error)
{
	g_autofree char *path = g_build_filename(dir, CP_JOURNAL_NAME, NULL);
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	g_autoptr(GError) local = NULL;
	char *data = NULL;
	gsize len = 0;
	const char *why = NULL;
	CpError err;

	cp_journal_init(j);
	*found = FALSE;
	/* a leftover of a write cut short: the rename never happened, so
	 * the journal itself is the previous, whole record */
	unlink(tmp);

	if (!g_file_get_contents(path, &data, &len, &local)) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		cp_set_error(error, CP_ERR_STORAGE, "cannot read the journal: %s", local->message);
		return FALSE;
	}
	err = cp_journal_decode((const uint8_t *)data, len, j, &why);
	cp_cleanse(data, len);
	g_free(data);
	if (err != CP_OK) {
		cp_set_error(error, CP_ERR_STORAGE,
			     "journal %s is unusable: it %s (%s). It was left in place; "
			     "see cellprovd(8) on recovering from a damaged journal",
			     path, why, cp_error_name(err));
		return FALSE;
	}
	*found = TRUE;
	return TRUE;
}

gboolean
cp_journal_save(const char *dir, const CpJournal *j, GError **error)
{
	g_autofree char *path = g_build_filename(dir, CP_JOURNAL_NAME, NULL);
	cp_auto_buf buf = CP_BUF_INIT;
	CpError err;

	err = cp_journal_encode(j, &buf);
	if (err != CP_OK) {
		cp_set_error(error, err == CP_ERR_ARGUMENT ? CP_ERR_ARGUMENT : CP_ERR_STORAGE,
			     "cannot encode the journal (%s)", cp_error_name(err));
		return FALSE;
	}
	return cp_file_replace(path, buf.data, buf.len, 0600, error);
}
