/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An MBIM modem as the card engine needs it, on libmbim through
 * mbim-proxy (so ModemManager keeps the port): the Microsoft UICC
 * low-level access service for the card (ATR, logical channels, APDUs,
 * card reset), the subscriber ready status for the ICCID and the IMSI,
 * the basic-connect provisioned contexts for the APN, a reset through
 * MBIM's own messages and the registration from the register state and
 * its indications. docs/mbim.md says which message does what.
 *
 * Every operation is GIO-style: a GCancellable, a callback, a _finish.
 * One operation at a time per CpMbim is not required; libmbim matches
 * the answers by transaction. Errors are CP_ERROR:
 *   CP_ERR_MODEM          the modem answered with an MBIM status error,
 *                         or lacks a service this needs
 *   CP_ERR_MODEM_TIMEOUT  no answer within the request timeout
 *   CP_ERR_MODEM_GONE     the device went away (or was never there)
 *   CP_ERR_CARD_ABSENT    no card, or the card is not usable
 *   CP_ERR_APDU           opening a channel got an error status word
 *   CP_ERR_APN            an APN that is not one, or the modem refused it
 *   CP_ERR_REG_DENIED     the network rejected the registration
 *   CP_ERR_REG_TIMEOUT    no registration within the timeout
 * and G_IO_ERROR_CANCELLED on cancellation. Messages say what failed and
 * the MBIM status or reject cause; they carry no APDU data, no IMSI and no
 * ICCID.
 */
#pragma once

#include <glib-object.h>
#include <gio/gio.h>

#include "cp-glib.h"

G_BEGIN_DECLS

#define CP_TYPE_MBIM (cp_mbim_get_type())
G_DECLARE_FINAL_TYPE(CpMbim, cp_mbim, CP, MBIM, GObject)

/* What the registration wait ends with. */
typedef struct {
	char *plmn;          /* MCC MNC the modem registered on */
	gboolean roaming;
} CpMbimRegistration;

void cp_mbim_registration_free(CpMbimRegistration *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpMbimRegistration, cp_mbim_registration_free)

/*
 * Opens path (/dev/cdc-wdmN) through mbim-proxy, which libmbim starts if
 * none runs, and asks the device for its services. request_timeout:
 * seconds per MBIM request (0: 10). Fails with CP_ERR_MODEM when the
 * modem has no Microsoft UICC low-level access service.
 * The "removed" signal says the device went away (USB unplug, reset).
 */
void cp_mbim_open_async(const char *path, guint request_timeout, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data);
CpMbim *cp_mbim_open_finish(GAsyncResult *res, GError **error);

/* Closes the proxy's client (never the device under ModemManager's feet). */
void cp_mbim_close_async(CpMbim *self, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_close_finish(CpMbim *self, GAsyncResult *res, GError **error);

const char *cp_mbim_get_path(CpMbim *self);
/* FALSE once the device went away. */
gboolean cp_mbim_is_present(CpMbim *self);
/* Whether the device offers the MS basic connect extensions device reset. */
gboolean cp_mbim_has_device_reset(CpMbim *self);

/* Subscriber ready status (MBIM 1.0 10.5.2): ICCID, and the IMSI the modem
 * read from the card (NULL if it has none). CP_ERR_CARD_ABSENT when no card
 * or a bad one. */
void cp_mbim_subscriber_async(CpMbim *self, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_subscriber_finish(CpMbim *self, GAsyncResult *res, char **iccid, char **imsi,
				   GError **error);

/* Device caps (MBIM 1.0 10.5.1): the firmware revision (FirmwareInfo). */
void cp_mbim_firmware_async(CpMbim *self, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
char *cp_mbim_firmware_finish(CpMbim *self, GAsyncResult *res, GError **error);

/* The card's ATR. */
void cp_mbim_atr_async(CpMbim *self, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data);
GBytes *cp_mbim_atr_finish(CpMbim *self, GAsyncResult *res, GError **error);

/* The card's applications as the modem lists them (MS UICC low-level
 * access Application List, from EF.DIR): the AIDs of the USIM and the
 * ISIM, len 0 for one not listed. */
typedef struct {
	guint8 usim[16];
	gsize usim_len;
	guint8 isim[16];
	gsize isim_len;
} CpMbimApplications;

void cp_mbim_applications_async(CpMbim *self, GCancellable *cancellable,
				GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_applications_finish(CpMbim *self, GAsyncResult *res, CpMbimApplications *apps,
				     GError **error);

/* Opens a logical channel and selects the application (aid, 1-16 bytes).
 * The channel number is the result; an error status word gives CP_ERR_APDU
 * with the SW in the message (6A82: no such application). */
void cp_mbim_open_channel_async(CpMbim *self, const guint8 *aid, gsize aid_len,
				GCancellable *cancellable, GAsyncReadyCallback callback,
				gpointer user_data);
guint cp_mbim_open_channel_finish(CpMbim *self, GAsyncResult *res, GError **error);

/* One command APDU on channel (its CLA's channel bits are the modem's to
 * set). The result is the response data followed by SW1 SW2, whatever the
 * status word: judging it is the card engine's job. */
void cp_mbim_apdu_async(CpMbim *self, guint channel, GBytes *apdu, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data);
GBytes *cp_mbim_apdu_finish(CpMbim *self, GAsyncResult *res, GError **error);

void cp_mbim_close_channel_async(CpMbim *self, guint channel, GCancellable *cancellable,
				 GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_close_channel_finish(CpMbim *self, GAsyncResult *res, GError **error);

/* A card power cycle through the UICC service (pass-through off): the
 * modem reads the card again; every logical channel closes. */
void cp_mbim_card_reset_async(CpMbim *self, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_card_reset_finish(CpMbim *self, GAsyncResult *res, GError **error);

/* The APN of the internet context the modem attaches with (the first
 * provisioned context of type internet); "" when it has none. */
void cp_mbim_get_apn_async(CpMbim *self, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data);
char *cp_mbim_get_apn_finish(CpMbim *self, GAsyncResult *res, GError **error);

/* Sets that context's APN (kept: its ID, user, password, compression,
 * authentication), or provisions context 1 when there is none. The APN is
 * checked first (TS 23.003 9.1: labels of letters, digits and hyphens, at
 * most 100 characters): CP_ERR_APN. The modem's answer is checked to hold
 * the new APN. */
void cp_mbim_set_apn_async(CpMbim *self, const char *apn, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_set_apn_finish(CpMbim *self, GAsyncResult *res, GError **error);
gboolean cp_mbim_apn_valid(const char *apn);

/*
 * Makes the modem start over with the card, as ModemManager resets MBIM
 * modems: the MS basic connect extensions DEVICE_RESET when the device
 * lists it (the module reboots and leaves the bus: *reenumerates is TRUE,
 * this CpMbim is gone and the caller opens the device again once it is
 * back, perhaps under another name); otherwise the radio off and on again
 * (*reenumerates FALSE, the same CpMbim goes on).
 */
void cp_mbim_reset_async(CpMbim *self, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_reset_finish(CpMbim *self, GAsyncResult *res, gboolean *reenumerates,
			      GError **error);

/* Radio (software switch) on or off. */
void cp_mbim_set_radio_async(CpMbim *self, gboolean on, GCancellable *cancellable,
			     GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_mbim_set_radio_finish(CpMbim *self, GAsyncResult *res, GError **error);

/*
 * Waits until the modem is registered (home, roaming or partner), from the
 * register state query and its indications, for at most timeout_ms.
 * A DENIED state gives CP_ERR_REG_DENIED with the reject cause (NwError);
 * the time running out CP_ERR_REG_TIMEOUT with the last state seen.
 */
void cp_mbim_wait_registered_async(CpMbim *self, guint timeout_ms, GCancellable *cancellable,
				   GAsyncReadyCallback callback, gpointer user_data);
CpMbimRegistration *cp_mbim_wait_registered_finish(CpMbim *self, GAsyncResult *res, GError **error);

G_END_DECLS
