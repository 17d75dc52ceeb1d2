/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the NFC tests share: tag content like the daemon's (certificate URL
 * + device record, a receipt after a write), and the PN532 simulator as a
 * subprocess.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#define CP_TEST_URL "https://certs.example.net/devices/00112233445566778899aabbccddeeff"

/*
 * The NDEF message of one read session: URI record, a device record whose
 * att_counter is counter and att_random fresh, and a receipt record when
 * receipt is non-NULL. The device record's signature is a stand-in of the
 * right size: the transport does not look inside.
 */
GBytes *cp_test_tag_content(guint64 counter, GBytes *receipt);

/* An NDEF message with one application/vnd.cellprov.profile record whose
 * payload is n pseudo-random bytes (seeded). */
GBytes *cp_test_profile_ndef(gsize n, guint32 seed);

/* A well-formed message of one long MIME record with an n-byte payload,
 * built by hand: it may exceed what the codec encodes. */
GBytes *cp_test_long_ndef(gsize n);

typedef struct {
	GSubprocess *proc;
	GDataInputStream *out;
	char *dir;
	char *target_pty;
	char *initiator_pty;
	char *connstring;
	char *initiator_connstring;
	GPtrArray *lines;              /* everything read from its stdout */
} CpTestSim;

/* Start cp-pn532-sim (path from $CP_PN532_SIM) with extra args (NULL
 * terminated), in a fresh temp dir; returns once it printed "ready". */
CpTestSim *cp_test_sim_start(gboolean link, const char *first_arg, ...) G_GNUC_NULL_TERMINATED;
/* Read lines until one starts with prefix (NULL: until EOF); the line or NULL. */
const char *cp_test_sim_wait_line(CpTestSim *sim, const char *prefix);
/* Wait for exit (SIGTERM first if kill); its exit status. */
int cp_test_sim_finish(CpTestSim *sim, gboolean kill);
void cp_test_sim_free(CpTestSim *sim);
/* The hex after "ndef " of the n-th such line (0-based) read so far, decoded. */
GBytes *cp_test_sim_ndef(CpTestSim *sim, guint n);

/* Iterate a main context until cond becomes true or timeout_ms passes. */
gboolean cp_test_wait(gboolean (*cond)(gpointer), gpointer data, guint timeout_ms);
char *cp_test_hex(GBytes *b);
