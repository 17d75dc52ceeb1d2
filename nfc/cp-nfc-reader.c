/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The companion's side of a tap, on libnfc's initiator API. Each tap
 * starts with nfc_initiator_init() (field on) and ends with nfc_idle()
 * (InRelease, field off), so the tag sees every tap as one session.
 */
#define G_LOG_DOMAIN "cellprov-nfc"

#include "cp-nfc-reader.h"

#include <string.h>
#include <nfc/nfc.h>

#include "cp-glib.h"
#include "cp-nfc-context.h"
#include "cp-t4t-tag.h"

#define POLL_INTERVAL_MS 50
#define EXCHANGE_TIMEOUT_MS 3000
#define SHORT_APDU_MAX 255

struct _CpNfcReader {
	nfc_context *nfc;
	nfc_device *dev;
	gint aborted;                  /* atomic */
	gboolean in_field;             /* a target is selected */
	gboolean have_cc;
	CpT4tCc cc;
	guint16 selected_file;         /* 0: none */
	CpNfcReaderStats stats;
};

CpNfcReader *cp_nfc_reader_open(const char *connstring, GError **error)
{
	g_autofree CpNfcReader *r = g_new0(CpNfcReader, 1);

	r->nfc = cp_nfc_context_acquire();
	if (!r->nfc) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_OPEN, "libnfc could not be initialised");
		return NULL;
	}
	r->dev = nfc_open(r->nfc, connstring);
	if (!r->dev) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_OPEN,
			    "cannot open the NFC reader %s (missing, busy, or not a supported controller)",
			    connstring ? connstring : "(libnfc default)");
		cp_nfc_context_release();
		return NULL;
	}
	g_debug("nfc: reader %s open", nfc_device_get_name(r->dev));
	return g_steal_pointer(&r);
}

void cp_nfc_reader_free(CpNfcReader *r)
{
	if (!r)
		return;
	if (r->in_field)
		cp_nfc_reader_release(r);
	nfc_close(r->dev);
	cp_nfc_context_release();
	g_free(r);
}

void cp_nfc_reader_abort(CpNfcReader *r)
{
	g_atomic_int_set(&r->aborted, 1);
	nfc_abort_command(r->dev);
}

void cp_nfc_reader_get_stats(CpNfcReader *r, CpNfcReaderStats *stats)
{
	*stats = r->stats;
}

const CpT4tCc *cp_nfc_reader_get_cc(CpNfcReader *r)
{
	return r->have_cc ? &r->cc : NULL;
}

static gboolean check_aborted(CpNfcReader *r, GError **error)
{
	if (g_atomic_int_get(&r->aborted)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "NFC operation aborted");
		return TRUE;
	}
	return FALSE;
}

static void set_libnfc_error(CpNfcReader *r, int res, const char *what, GError **error)
{
	if (res == NFC_EOPABORTED || g_atomic_int_get(&r->aborted)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "NFC operation aborted");
	} else if (res == NFC_ERFTRANS || res == NFC_ETGRELEASED || res == NFC_ETIMEOUT) {
		r->in_field = FALSE;
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_TARGET_LOST,
			    "%s: the tag left the field (%s)", what, nfc_strerror(r->dev));
	} else if (res == NFC_EDEVNOTSUPP || res == NFC_ENOTIMPL) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_NOT_SUPPORTED,
			    "%s: not supported by %s", what, nfc_device_get_name(r->dev));
	} else {
		r->in_field = FALSE;
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_IO, "%s: NFC reader %s failed: %s (%d)",
			    what, nfc_device_get_connstring(r->dev), nfc_strerror(r->dev), res);
	}
}

gboolean cp_nfc_reader_wait_target(CpNfcReader *r, guint timeout_ms, GError **error)
{
	const nfc_modulation nm = { .nmt = NMT_ISO14443A, .nbr = NBR_106 };
	gint64 deadline = timeout_ms ? g_get_monotonic_time() + (gint64)timeout_ms * 1000 : G_MAXINT64;
	int res;

	memset(&r->stats, 0, sizeof(r->stats));
	r->have_cc = FALSE;
	r->selected_file = 0;
	if (r->in_field)
		cp_nfc_reader_release(r);
	if (check_aborted(r, error))
		return FALSE;

	res = nfc_initiator_init(r->dev);
	/* Poll in software: with infinite select the chip would block past
	 * libnfc's own timeout. */
	if (res >= 0)
		res = nfc_device_set_property_bool(r->dev, NP_INFINITE_SELECT, false);
	if (res < 0) {
		set_libnfc_error(r, res, "starting the reader", error);
		return FALSE;
	}

	for (;;) {
		nfc_target nt;

		if (check_aborted(r, error))
			return FALSE;
		res = nfc_initiator_select_passive_target(r->dev, nm, NULL, 0, &nt);
		if (res > 0) {
			if (!(nt.nti.nai.btSak & 0x20)) {
				nfc_idle(r->dev);
				g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_NOT_NDEF,
					    "the tag in the field is not an ISO 14443-4 (Type 4) tag (SAK %02x)",
					    nt.nti.nai.btSak);
				return FALSE;
			}
			r->in_field = TRUE;
			g_debug("nfc: target in the field (SAK %02x)", nt.nti.nai.btSak);
			return TRUE;
		}
		if (res < 0 && res != NFC_ETIMEOUT && res != NFC_ERFTRANS) {
			set_libnfc_error(r, res, "polling for a tag", error);
			return FALSE;
		}
		if (g_get_monotonic_time() >= deadline) {
			nfc_idle(r->dev);
			g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_NO_TARGET,
				    "no tag came into the field within %u ms", timeout_ms);
			return FALSE;
		}
		g_usleep(POLL_INTERVAL_MS * 1000);
	}
}

void cp_nfc_reader_release(CpNfcReader *r)
{
	r->in_field = FALSE;
	r->selected_file = 0;
	if (nfc_idle(r->dev) < 0)
		g_debug("nfc: release: %s", nfc_strerror(r->dev));
}

GBytes *cp_nfc_reader_transceive(CpNfcReader *r, const guint8 *capdu, gsize len,
				 guint16 *sw, GError **error)
{
	guint8 rx[SHORT_APDU_MAX + 3];
	int res;

	if (check_aborted(r, error))
		return NULL;
	if (!r->in_field) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_TARGET_LOST, "no tag in the field");
		return NULL;
	}
	res = nfc_initiator_transceive_bytes(r->dev, capdu, len, rx, sizeof(rx), EXCHANGE_TIMEOUT_MS);
	if (res < 0) {
		set_libnfc_error(r, res, "APDU exchange", error);
		return NULL;
	}
	if (res < 2) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_PROTOCOL,
			    "the tag answered with %d bytes, not an R-APDU", res);
		return NULL;
	}
	r->stats.apdus++;
	r->stats.bytes_out += len;
	r->stats.bytes_in += (gsize)res;
	*sw = cp_t4t_sw(rx, (size_t)res);
	return g_bytes_new(rx, (gsize)res - 2);
}

/* An APDU whose status word must be 9000; the data, or NULL. */
static GBytes *command(CpNfcReader *r, const guint8 *capdu, gsize len, CpNfcError code,
		       const char *what, GError **error)
{
	g_autoptr(GBytes) data = NULL;
	guint16 sw = 0;

	data = cp_nfc_reader_transceive(r, capdu, len, &sw, error);
	if (!data)
		return NULL;
	if (sw != CP_SW_OK) {
		g_set_error(error, CP_NFC_ERROR, code, "%s: the tag answered %04X", what, sw);
		return NULL;
	}
	return g_steal_pointer(&data);
}

static gboolean select_file(CpNfcReader *r, guint16 fid, GError **error)
{
	const guint8 c[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, fid >> 8, fid & 0xFF };
	g_autoptr(GBytes) data = NULL;
	g_autofree char *what = g_strdup_printf("SELECT file %04X", fid);

	if (r->selected_file == fid)
		return TRUE;
	data = command(r, c, sizeof(c), CP_NFC_ERROR_NOT_NDEF, what, error);
	if (!data)
		return FALSE;
	r->selected_file = fid;
	return TRUE;
}

/* READ BINARY of exactly n bytes at off. */
static gboolean read_binary(CpNfcReader *r, guint off, guint n, guint8 *out, GError **error)
{
	const guint8 c[] = { 0x00, 0xB0, off >> 8, off & 0xFF, n & 0xFF };
	g_autoptr(GBytes) data = NULL;
	g_autofree char *what = g_strdup_printf("READ BINARY at %u", off);

	data = command(r, c, sizeof(c), CP_NFC_ERROR_STATUS, what, error);
	if (!data)
		return FALSE;
	if (g_bytes_get_size(data) != n) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_PROTOCOL,
			    "READ BINARY at %u gave %" G_GSIZE_FORMAT " bytes, %u asked",
			    off, g_bytes_get_size(data), n);
		return FALSE;
	}
	memcpy(out, g_bytes_get_data(data, NULL), n);
	return TRUE;
}

static gboolean update_binary(CpNfcReader *r, guint off, const guint8 *d, guint n, GError **error)
{
	guint8 c[5 + SHORT_APDU_MAX];
	g_autoptr(GBytes) data = NULL;
	g_autofree char *what = NULL;

	c[0] = 0x00;
	c[1] = 0xD6;
	c[2] = off >> 8;
	c[3] = off & 0xFF;
	c[4] = n;
	memcpy(c + 5, d, n);
	what = off == 0 ? g_strdup("UPDATE BINARY of NLEN") : g_strdup_printf("UPDATE BINARY at %u", off);
	r->stats.updates++;
	data = command(r, c, 5 + n, CP_NFC_ERROR_STATUS, what, error);
	return data != NULL;
}

gboolean cp_nfc_reader_select(CpNfcReader *r, GError **error)
{
	guint8 sel[5 + CP_T4T_AID_LEN + 1] = { 0x00, 0xA4, 0x04, 0x00, CP_T4T_AID_LEN };
	g_autoptr(GBytes) data = NULL;
	guint8 cc[CP_T4T_CC_LEN];
	CpError err;

	memcpy(sel + 5, cp_t4t_aid, CP_T4T_AID_LEN);
	sel[sizeof(sel) - 1] = 0x00;
	g_debug("nfc: (1/3) selecting the NDEF application");
	data = command(r, sel, sizeof(sel), CP_NFC_ERROR_NOT_NDEF,
		       "SELECT of the NDEF application", error);
	if (!data)
		return FALSE;
	r->selected_file = 0;
	g_debug("nfc: (2/3) reading the capability container");
	if (!select_file(r, CP_T4T_CC_FILE, error) ||
	    !read_binary(r, 0, CP_T4T_CC_LEN, cc, error))
		return FALSE;
	err = cp_t4t_cc_decode(cc, sizeof(cc), &r->cc);
	if (err != CP_OK) {
		cp_set_error(error, err, "the tag's capability container is invalid: %s",
			     cp_error_message(err));
		return FALSE;
	}
	if (r->cc.read_access != 0x00) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_NOT_SUPPORTED,
			    "the NDEF file needs proprietary read access (%02x)", r->cc.read_access);
		return FALSE;
	}
	r->have_cc = TRUE;
	g_debug("nfc: (3/3) selecting the NDEF file %04X (MLe %u, MLc %u, %u bytes)",
		r->cc.ndef_file_id, r->cc.mle, r->cc.mlc, r->cc.ndef_file_max);
	return select_file(r, r->cc.ndef_file_id, error);
}

static gboolean need_cc(CpNfcReader *r, GError **error)
{
	if (!r->have_cc) {
		cp_set_error(error, CP_ERR_STATE, "the tag was not selected (cp_nfc_reader_select)");
		return FALSE;
	}
	return select_file(r, r->cc.ndef_file_id, error);
}

GBytes *cp_nfc_reader_read_ndef(CpNfcReader *r, GError **error)
{
	g_autofree guint8 *msg = NULL;
	guint8 nlen_b[2];
	guint nlen, off = 0, chunk;

	if (!need_cc(r, error) || !read_binary(r, 0, 2, nlen_b, error))
		return NULL;
	nlen = (nlen_b[0] << 8) | nlen_b[1];
	if (nlen + 2 > r->cc.ndef_file_max) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_PROTOCOL,
			    "NLEN %u is beyond the tag's NDEF file (%u bytes)", nlen, r->cc.ndef_file_max);
		return NULL;
	}
	chunk = MIN(r->cc.mle, SHORT_APDU_MAX);
	msg = g_malloc(MAX(nlen, 1));
	while (off < nlen) {
		guint n = MIN(chunk, nlen - off);

		if (2 + off > 0x7FFF) {
			g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_PROTOCOL,
				    "NLEN %u needs offsets beyond READ BINARY's range", nlen);
			return NULL;
		}
		if (!read_binary(r, 2 + off, n, msg + off, error))
			return NULL;
		off += n;
	}
	return g_bytes_new(msg, nlen);
}

gboolean cp_nfc_reader_write_ndef(CpNfcReader *r, const guint8 *ndef, gsize len, GError **error)
{
	guint8 first[SHORT_APDU_MAX];
	guint8 nlen[2];
	gsize off;
	guint chunk;

	if (!r->have_cc) {
		cp_set_error(error, CP_ERR_STATE, "the tag was not selected (cp_nfc_reader_select)");
		return FALSE;
	}
	if (r->cc.write_access != 0x00) {
		g_set_error(error, CP_NFC_ERROR, CP_NFC_ERROR_READ_ONLY,
			    "the tag's NDEF file is not writable (access %02x)", r->cc.write_access);
		return FALSE;
	}
	if (len == 0 || len + 2 > r->cc.ndef_file_max) {
		cp_set_error(error, len ? CP_ERR_NDEF_TOO_LARGE : CP_ERR_NDEF_EMPTY,
			     "a message of %" G_GSIZE_FORMAT " bytes does not fit the tag's NDEF file (%u bytes)",
			     len, r->cc.ndef_file_max);
		return FALSE;
	}
	if (!need_cc(r, error))
		return FALSE;

	chunk = MIN(r->cc.mlc, SHORT_APDU_MAX);
	first[0] = len >> 8;
	first[1] = len & 0xFF;
	if (len + 2 <= chunk) {
		/* NLEN and the whole message in one command: the tag sees the
		 * final NLEN with the message. */
		g_debug("nfc: (1/1) write: %" G_GSIZE_FORMAT " bytes with NLEN in one UPDATE", len);
		memcpy(first + 2, ndef, len);
		return update_binary(r, 0, first, 2 + len, error);
	}
	/* NLEN = 0 opens the write, and carries the message's first bytes. */
	off = chunk > 2 ? chunk - 2 : 0;
	first[0] = first[1] = 0;
	memcpy(first + 2, ndef, off);
	g_debug("nfc: (1/3) write: NLEN 0 and %" G_GSIZE_FORMAT " bytes", off);
	if (!update_binary(r, 0, first, 2 + off, error))
		return FALSE;
	g_debug("nfc: (2/3) write: %" G_GSIZE_FORMAT " bytes in chunks of %u", len - off, chunk);
	while (off < len) {
		guint n = MIN(chunk, len - off);

		if (!update_binary(r, 2 + off, ndef + off, n, error))
			return FALSE;
		off += n;
	}
	g_debug("nfc: (3/3) write: final NLEN %" G_GSIZE_FORMAT, len);
	nlen[0] = len >> 8;
	nlen[1] = len & 0xFF;
	return update_binary(r, 0, nlen, 2, error);
}

guint cp_nfc_reader_write_min_updates(gsize len, guint mlc)
{
	gsize chunk = MIN(mlc, SHORT_APDU_MAX);

	if (chunk == 0)
		return 0;
	if (len + 2 <= chunk)
		return 1;
	/* NLEN = 0 and the message fill ceil((2 + len) / chunk) commands
	 * (two when the chunk cannot hold more than NLEN), then the final
	 * NLEN. */
	if (chunk <= 2)
		return 1 + (guint)((len + chunk - 1) / chunk) + 1;
	return (guint)((2 + len + chunk - 1) / chunk) + 1;
}
