/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UIM messages libqmi 1.32 does not generate (they arrived in 1.36): Open
 * Logical Channel (0x0042), Send APDU (0x003B) and Logical Channel (0x003F,
 * here only to close one). Built and parsed by hand with the TLV calls and
 * sent with qmi_device_command_full(); everything else in the backend uses
 * libqmi's generated API. On libqmi >= 1.36 only this file has to change.
 *
 * Errors: CP_ERR_MODEM (QMI error), CP_ERR_MODEM_TIMEOUT, CP_ERR_APDU
 * (channel refused by the card, the SW in the message), G_IO_ERROR_CANCELLED.
 * APDUs are never logged here (a VERIFY carries ADM1), and libqmi's
 * message traces must stay off in production for the same reason.
 */
#pragma once

#include <libqmi-glib.h>

void cp_qmi_uim_open_channel(QmiClientUim *uim, const guint8 *aid, gsize aid_len,
			     guint timeout, GCancellable *cancellable,
			     GAsyncReadyCallback callback, gpointer user_data);
/* The channel (1-19); 0 on error. */
guint cp_qmi_uim_open_channel_finish(QmiClientUim *uim, GAsyncResult *res, GError **error);

void cp_qmi_uim_close_channel(QmiClientUim *uim, guint channel, guint timeout,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
gboolean cp_qmi_uim_close_channel_finish(QmiClientUim *uim, GAsyncResult *res, GError **error);

/* The response APDU (data || SW1 SW2, at least 2 bytes). */
void cp_qmi_uim_send_apdu(QmiClientUim *uim, guint channel, const guint8 *apdu, gsize len,
			  guint timeout, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data);
GBytes *cp_qmi_uim_send_apdu_finish(QmiClientUim *uim, GAsyncResult *res, GError **error);

/* Counters for the benchmark: raw UIM messages sent by this module. */
guint cp_qmi_uim_raw_count(void);
