/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The crash-safe journal: one small file in the state directory (0700),
 * replaced atomically and durably (cp_file_replace: write, fsync, rename,
 * fsync the directory) at every durable step, mode 0600. After a kill -9
 * or a power cut it holds either the previous or the next record, never a
 * mix; a file that is torn or altered anyway (storage failure, an editor)
 * fails its checksum and is refused with a clear error rather than
 * guessed at.
 *
 * Format (docs/daemon.md): "CPJ" + format version (1 byte), then cellprov
 * TLVs in ascending tag order, last a SHA-256 over every preceding byte.
 *
 * It carries what must survive a restart: the attestation counter (saved
 * before a device record with that value is shown), the last committed
 * profile_seq, the state, the owner binding (bound, its version, the
 * pinned operator root and that operator's name), and while an attempt is under way what recovery
 * needs to finish or undo it: the modem's backup of the old USIM values
 * and K'' (so that the receipt of a recovered attempt is still MAC'd).
 * Format 3 adds the lifecycle: the original backup (the USIM values from
 * before the device's first provisioning, kept across re-provisionings
 * for a decommission), the owner's K'' (of the last provisioning that
 * bound the device, to MAC a decommission's or a rejected command's
 * receipt), and while a re-provisioning is under way the working
 * subscription a rollback returns to. The backups and K'' are secrets: the file is 0600 in a 0700 directory and its
 * content is never logged.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "cp-buf.h"
#include "cp-error.h"
#include "cp-secret.h"
#include "cp-state.h"

#define CP_JOURNAL_NAME "journal"
#define CP_JOURNAL_FORMAT 3
#define CP_JOURNAL_OPERATOR_NAME_MAX 64
#define CP_JOURNAL_BACKUP_MAX 2048
#define CP_JOURNAL_RECEIPT_MAX 1024

typedef struct {
	CpState state;                  /* always a journaled state */
	uint64_t att_counter;           /* highest value ever shown (or about to be) */
	uint64_t committed_seq;         /* highest profile_seq an attempt consumed */
	uint16_t last_error;            /* CpError of the last attempt, 0 = none */

	/* the attempt under way, or the last one (for status) */
	uint64_t attempt_seq;
	char imsi[16];                  /* "" when none */
	char plmn[7];
	char network_name[65];
	char apn[101];

	/*
	 * The owner binding: changed only by a provisioning that succeeded.
	 * A journal of format 1 (before the binding existed) in state
	 * provisioned reads as bound at version 0 with no pin.
	 */
	bool bound;
	uint64_t binding_version;
	bool has_pin;
	uint8_t operator_pin[32];       /* SHA-256 of the operator root's SPKI */
	char operator_name[CP_JOURNAL_OPERATOR_NAME_MAX + 1];  /* "" when unknown */

	/* only while busy (cp_state_is_busy) */
	CpSecret *k2;
	CpSecret *backup;               /* opaque, from the modem backend */
	/* a re-provisioning: the device was provisioned when the attempt
	 * began, and a rollback returns to this working subscription */
	bool kept;
	char kept_imsi[16];
	char kept_plmn[7];
	char kept_network_name[65];
	char kept_apn[101];

	/* K'' of the provisioning that bound the device (only while bound;
	 * NULL when bound under a journal of format 1 or 2) */
	CpSecret *owner_k2;
	/* The modem backup taken before the device's first provisioning,
	 * kept until a decommission puts it back. original_inexact: the
	 * device was provisioned under a journal of format 1 or 2, so the
	 * values before its first provisioning are lost; the first backup
	 * taken since (or none yet) stands in for them. */
	CpSecret *original;
	bool original_inexact;

	/* the last attempt's receipt, as shown on the tag */
	uint8_t *receipt;
	size_t receipt_len;
} CpJournal;

void cp_journal_init(CpJournal *j);
/* Frees and cleanses the secrets; j can be reused after cp_journal_init. */
void cp_journal_clear(CpJournal *j);
/* Drop K'', the backup and the kept subscription (the attempt is over). */
void cp_journal_end_attempt(CpJournal *j);
/* Deep copy (secrets too). */
void cp_journal_copy(CpJournal *dst, const CpJournal *src);
/* Replace the receipt with a copy of buf (NULL: none). */
void cp_journal_set_receipt(CpJournal *j, const uint8_t *buf, size_t len);

/* Pure codec. decode: on error *why (if not NULL) is a static sentence
 * and j is left cleared. A record that decodes but does not hang together
 * (a busy state without its backup, a secret in a resting state, a
 * non-journaled state) is CP_ERR_BAD_VALUE. */
CpError cp_journal_encode(const CpJournal *j, CpBuf *out);
CpError cp_journal_decode(const uint8_t *buf, size_t len, CpJournal *j, const char **why);

/*
 * The state directory: created 0700 when missing; refused when it is not
 * a directory or group/others may enter it (the journal holds secrets).
 */
gboolean cp_journal_check_dir(const char *dir, GError **error);

/* Load dir/journal. No file: *found = FALSE and j is a fresh journal
 * (idle, counters 0). Unreadable or corrupt: CP_ERR_STORAGE naming the
 * file and the reason; the file is left as it is, for inspection. */
gboolean cp_journal_load(const char *dir, CpJournal *j, gboolean *found, GError **error);
gboolean cp_journal_save(const char *dir, const CpJournal *j, GError **error);
