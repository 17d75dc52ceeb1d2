/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device configuration, /etc/cellprov/cellprov.conf (docs/config.md).
 * Every value is checked when the file is loaded, so that a mistake is a
 * clear error at start and never a surprise in the middle of a
 * provisioning. Unknown groups and keys are errors too: a misspelt key
 * silently falling back to its default is the worst kind of surprise.
 * (The module is named after the file: cp-config.h is the build's
 * compile-time configuration.)
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "cp-records.h"

typedef enum {
	CP_BACKEND_AUTO,        /* ModemManager when it runs, else QMI */
	CP_BACKEND_QMI,
	CP_BACKEND_MM,
	CP_BACKEND_AT,          /* the module's AT port, directly */
	CP_BACKEND_MBIM,        /* MBIM through mbim-proxy */
} CpBackendKind;

typedef enum {
	CP_RESET_AUTO,          /* the daemon resets the modem itself */
	CP_RESET_USER,          /* the owner power-cycles the device */
} CpResetMode;

#define CP_CONF_DEFAULT_STATE_DIR "/var/lib/cellprov"
#define CP_CONF_DEFAULT_REG_TIMEOUT 120
#define CP_CONF_MAX_REG_TIMEOUT 3600
/* A module's reboot takes 12 s or more (docs/modem.md): five times that. */
#define CP_CONF_DEFAULT_REENUMERATE_TIMEOUT 60
/* [nfc]: a reader holding the tag (CP_NFC_TAG_*_TIMEOUT_MS, seconds here) */
#define CP_CONF_DEFAULT_NFC_COMMAND_TIMEOUT 5
#define CP_CONF_MAX_NFC_COMMAND_TIMEOUT 60
#define CP_CONF_DEFAULT_NFC_SESSION_TIMEOUT 30
#define CP_CONF_MAX_NFC_SESSION_TIMEOUT 600
/* [daemon] linger, seconds */
#define CP_CONF_DEFAULT_LINGER 300
#define CP_CONF_MAX_LINGER 86400
/* [ble]: the provisioning window and a session's idle limit, seconds */
#define CP_CONF_DEFAULT_BLE_WINDOW 300
#define CP_CONF_MAX_BLE_WINDOW 86400
#define CP_CONF_DEFAULT_BLE_IDLE_TIMEOUT 30
#define CP_CONF_MAX_BLE_IDLE_TIMEOUT 30
/* [network] poll-interval, seconds */
#define CP_CONF_DEFAULT_POLL_INTERVAL 21600
#define CP_CONF_MIN_POLL_INTERVAL 60
#define CP_CONF_MAX_POLL_INTERVAL 604800

typedef struct _CpConf {
	char *path;                     /* the file it came from */

	/* [device] */
	char *key;                      /* absolute path or credential name */
	char *certificate;              /* optional */
	char *certificate_url;
	char *manufacturer;
	char *model;
	char *serial;
	uint8_t suites[CP_DR_SUITES_MAX];
	size_t n_suites;
	char *trusted_operators;        /* PEM file of operator roots; NULL: trust on first use */

	/* [nfc] */
	char *nfc_connstring;           /* NULL: no NFC transport */
	guint nfc_command_timeout;      /* seconds without a C-APDU that end a session */
	guint nfc_session_timeout;      /* seconds a session may last */

	/* [ble] */
	char *ble_adapter;              /* NULL: no BLE transport */
	guint ble_window;               /* seconds the provisioning window stays open */
	guint ble_idle_timeout;         /* seconds without a segment that end a session */

	/* [modem] */
	CpBackendKind backend;
	char *modem_device;
	gboolean proxy;
	char *card;
	char *adm1;                     /* absolute path or credential name */
	guint registration_timeout;     /* seconds */
	CpResetMode reset;
	guint reenumerate_timeout;      /* seconds for the port to come back after a reset */
	char *sysfs;                    /* NULL: /sys */

	/* [daemon] */
	char *state_directory;
	gboolean polkit;                /* ask polkit for callers other than root */
	gboolean exit_when_idle;        /* exit once bound, provisioned and done (docs/daemon.md) */
	guint linger;                   /* seconds after the last activity before that exit */

	/* [network] */
	char *sm_url;                   /* NULL: the device does not poll the SM */
	char *sm_ca;                    /* PEM CA file of the SM's TLS certificate; NULL: system's */
	guint poll_interval;            /* seconds */
} CpConf;

/* Parse and check; on error a G_KEY_FILE_ERROR naming the file, group,
 * key and what is wrong with the value. */
CpConf *cp_conf_load(const char *path, GError **error);
CpConf *cp_conf_load_data(const char *data, gsize len, const char *name, GError **error);
void cp_conf_free(CpConf *c);

const char *cp_backend_kind_name(CpBackendKind k);
const char *cp_reset_mode_name(CpResetMode m);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpConf, cp_conf_free)
