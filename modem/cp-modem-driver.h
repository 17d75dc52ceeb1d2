/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a modem driver fills in: two function tables the one flow runner
 * (cp-modem-flow.c) calls. A driver is one file of adapters between a
 * protocol (QMI, ModemManager, MBIM, AT) and these tables; the flow, the
 * card's APDU plan (cp-card.c), the rollback and the crash restore are
 * written once, in the runner.
 *
 * The layers, one name each (docs/modem.md):
 *   CpBackend       daemon/: what the daemon provisions through
 *   CpModem         modem/: the public API (cp-modem.h)
 *   CpModemDriver   modem/: a protocol's tables, below:
 *     CpCardTransport  the card: port, logical channels, APDUs (lpac's
 *                      APDU driver interface, made async)
 *     CpModemOps       the modem: APN, reset, registration, IMSI
 *   CpUsimDriver    modem/: a card model's layout (cp-usim.h)
 *
 * Every entry is asynchronous and ends, exactly once, with
 * cp_modem_run_done() (cp_modem_run_apdu_done() for transmit); an entry
 * that needs more than one request keeps its own state in run->port or
 * run->manager. An entry a driver leaves NULL is a step the flow skips
 * (as ModemManager's base SIM does with its class vfuncs). Entries use
 * run->cancellable for their requests and report errors as CP_ERROR
 * (cancellation stays G_IO_ERROR_CANCELLED).
 */
#pragma once

#include "cp-config.h"
#include "cp-at-modem.h"
#include "cp-mbim.h"
#include "cp-modem-private.h"

typedef struct _CpModemRun CpModemRun;

typedef struct {
	const char *name;
	/* Open the port (run->port); close frees it, synchronously, best
	 * effort: it is also called on every way out, opened or not. */
	void (*open)(CpModemRun *run);
	void (*close)(CpModemRun *run);
	/* Done with NULL when the card and its USIM application are ready;
	 * CP_ERR_CARD_ABSENT when not (yet): the runner asks again for the
	 * request timeout (a modem that has just started needs a while). */
	void (*card_status)(CpModemRun *run);
	/* EF.ICCID's bytes through cp_modem_run_set_iccid(). NULL: the
	 * runner reads EF.ICCID with APDUs on the basic channel. */
	void (*read_iccid)(CpModemRun *run);
	/* A logical channel to the application aid (cp_modem_run_set_channel).
	 * NULL: the transport has only the basic channel (AT+CSIM); the
	 * runner then selects the application itself. */
	void (*open_channel)(CpModemRun *run, const guint8 *aid, gsize aid_len);
	/* The card's applications as the modem lists them, through
	 * cp_modem_run_set_applications(); done with NULL whether or not it
	 * could (the runner then reads EF.DIR). Asked before a channel is
	 * opened. NULL: the modem has no such list, or card_status gave it. */
	void (*list_applications)(CpModemRun *run);
	void (*close_channel)(CpModemRun *run, guint channel);
	/* One command APDU on channel (0: basic); the response (data, SW1,
	 * SW2) through cp_modem_run_apdu_done(). Never logs the APDU. */
	void (*transmit)(CpModemRun *run, guint channel, const guint8 *apdu, gsize len);
	/* The card's ATR through cp_modem_run_set_atr(); asked by a probe
	 * only. NULL: the modem has no request for it. */
	void (*read_atr)(CpModemRun *run);
} CpCardTransport;

typedef struct {
	const char *name;
	/* Reach the modem's manager (run->manager); close frees it,
	 * synchronously, best effort. */
	void (*open)(CpModemRun *run);
	void (*close)(CpModemRun *run);
	/* The APN the modem attaches with: cp_modem_run_set_old_apn(). */
	void (*read_apn)(CpModemRun *run);
	/* A modem lent by a manager (ModemManager): take it for the card
	 * and the reset, give it back after them. With take, the transport
	 * opens after it and closes before give_back, and the APN is set
	 * after give_back. */
	void (*take)(CpModemRun *run);
	void (*give_back)(CpModemRun *run);
	/* Profile index (0: create one) gets apn. CP_ERR_APN when refused. */
	void (*set_apn)(CpModemRun *run, guint index, const char *apn);
	/* Make the modem read the card again: offline, then reset. Skipped
	 * when the configuration says someone else resets (reset=user). */
	void (*offline)(CpModemRun *run);
	void (*reset)(CpModemRun *run);
	/* Report what the modem sees with cp_modem_run_registration(), as
	 * events or by polling, until registration_stop(); the runner owns
	 * the deadline and decides. An error through cp_modem_run_done()
	 * ends the wait. */
	void (*registration_start)(CpModemRun *run);
	void (*registration_stop)(CpModemRun *run);
	/* cp_modem_run_set_imsi(). A modem without such a request (newer QMI
	 * firmware answers NotSupported) sets none and is done without an
	 * error: the runner then reads EF.IMSI through the card. */
	void (*read_imsi)(CpModemRun *run);
	/* The modem's firmware revision through cp_modem_run_set_firmware();
	 * asked by a probe only. NULL: the modem has no request for it. */
	void (*read_firmware)(CpModemRun *run);
} CpModemOps;

struct _CpModemDriver {
	const char *name;                /* "qmi", "mm", "at", "mbim" */
	const CpCardTransport *transport;
	const CpModemOps *ops;
	/* The transport shares the port with a manager (qmi-proxy). */
	gboolean proxy;
};

/*
 * A driver as cellprovd loads it: each driver is a module of its own
 * (cellprov-modem-NAME.so in CP_MODULE_DIR, CELLPROV_MODULE_DIR for the
 * build tree), loaded when an operation first needs it, so that an idle
 * daemon maps no modem library. A module exports one CpModemModule named
 * cp_modem_module and resolves the engine's symbols (cp-modem-engine.sym)
 * against the daemon. Programs that link every driver (cellprov-probe,
 * the tests of the drivers) get the same answers from a table
 * (cp-modem-builtin.c).
 */
typedef struct {
	const char *version;             /* CP_VERSION: the engine's own */
	const CpModemDriver *driver;
	/* the ModemManager module: does ModemManager manage the device?
	 * (cp-modem-mm.h; what AUTO asks) */
	void (*find_modem_async)(const char *device, guint timeout, GCancellable *cancellable,
				 GAsyncReadyCallback callback, gpointer user_data);
	gboolean (*find_modem_finish)(GAsyncResult *res, char **uid, GError **error);
} CpModemModule;

/* The driver name ("qmi", "mm", "at", "mbim") from its module, loaded
 * once and kept. CP_ERR_MODEM saying why not: not in this build, not
 * installed, not loadable, not a module of this cellprov. */
const CpModemModule *cp_modem_module_get(const char *name, GError **error);

extern const CpModemDriver cp_modem_driver_qmi;
extern const CpModemDriver cp_modem_driver_at;
#if CP_HAVE_MBIM
extern const CpModemDriver cp_modem_driver_mbim;
#endif
#if CP_HAVE_MM
extern const CpModemDriver cp_modem_driver_mm;
#endif

typedef enum {
	CP_MODEM_REG_SEARCHING,          /* or anything but the two below */
	CP_MODEM_REG_REGISTERED,         /* home or roaming */
	CP_MODEM_REG_DENIED,
} CpModemRegState;

/* The run of one operation, as the drivers see it. */
struct _CpModemRun {
	CpModem *modem;
	const CpModemDriver *driver;
	CpModemTargetCopy *target;       /* NULL when restoring */
	/* Cancelled by the caller's cancellable (while the flow may stop)
	 * and by cp_modem_run_gone(); replaced when a rollback begins. */
	GCancellable *cancellable;
	/* The port to open: the configured one, or where the module came
	 * back after a reset under another name (cp-modem-port.h). A
	 * transport opens this, never modem->device, and calls
	 * cp_modem_run_gone() when the port goes away: the runner then
	 * follows the module (after a reset) or rolls back. */
	char *device;
	gpointer port;                   /* the transport's state */
	gpointer manager;                /* the modem operations' state */
	gboolean proxy;                  /* open the port through the proxy */
	gboolean gone;
};

/* Step results. */
void cp_modem_run_done(CpModemRun *run, GError *error);
void cp_modem_run_apdu_done(CpModemRun *run, GBytes *response, GError *error);
void cp_modem_run_set_iccid(CpModemRun *run, const guint8 *ef, gsize len);
/* The ICCID as a modem reports it, in digits (18-20, else an error and
 * nothing set). */
gboolean cp_modem_run_set_iccid_digits(CpModemRun *run, const char *digits, GError **error);
/* The AIDs of the card's USIM and ISIM as the modem lists them (from
 * EF.DIR, which it reads at start: QMI UIM Get Card Status); len 0 for
 * one it does not list. A card_status that can tell calls it; with both
 * known, the runner does not read EF.DIR itself. */
void cp_modem_run_set_applications(CpModemRun *run, const guint8 *usim, gsize usim_len,
				   const guint8 *isim, gsize isim_len);
void cp_modem_run_set_channel(CpModemRun *run, guint channel);
/* have FALSE: the modem has no profile (one will be created). */
void cp_modem_run_set_old_apn(CpModemRun *run, gboolean have, guint index, const char *apn);
void cp_modem_run_set_imsi(CpModemRun *run, const char *imsi);
void cp_modem_run_set_firmware(CpModemRun *run, const char *revision);
void cp_modem_run_set_atr(CpModemRun *run, const guint8 *atr, gsize len);
void cp_modem_run_registration(CpModemRun *run, CpModemRegState state, const char *plmn,
			       const char *operator_name);
/* A driver's registration request (a wait, a poll), one at a time: it
 * outlives registration_stop() and the port's close, which abandon it (and
 * cancel its cancellable), so its answer may come after them. NULL while
 * another is in flight. The answer's callback calls ..._end(), which frees
 * it and gives the run, or NULL when abandoned: drop the answer then.
 * ..._run() peeks at the same between the steps of a request. */
typedef struct _CpModemRegRequest CpModemRegRequest;
CpModemRegRequest *cp_modem_run_reg_request(CpModemRun *run);
GCancellable *cp_modem_reg_request_cancellable(CpModemRegRequest *req);
CpModemRun *cp_modem_reg_request_run(CpModemRegRequest *req);
CpModemRun *cp_modem_reg_request_end(CpModemRegRequest *req);
/* The AT and MBIM drivers' transports serve the ModemManager driver too
 * (cp-mm-ports.c), whose own offline and reset use the port they opened:
 * the AT module, the MBIM device. While the MBIM device resets on
 * purpose, its leaving the bus is not the port gone. */
CpAtModem *cp_modem_at_of(CpModemRun *run);
#if CP_HAVE_MBIM
CpMbim *cp_modem_mbim_of(CpModemRun *run);
void cp_modem_mbim_set_resetting(CpModemRun *run, gboolean resetting);
#endif
/* The port went away: what runs fails with CP_ERR_MODEM_GONE. */
void cp_modem_run_gone(CpModemRun *run);
/* While restoring or rolling back: the backup being put back. */
const CpModemBackup *cp_modem_run_values(CpModemRun *run);
gboolean cp_modem_run_restoring(CpModemRun *run);
