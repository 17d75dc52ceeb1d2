/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The modem shell every modem simulator (QMI, MBIM, AT) stands in: the
 * card and the network, the subscriber file that changes while it runs,
 * the port (a pty symlinked at a path, which vanishes on a reset and
 * comes back, maybe under another name), the fault table, the options
 * they share, the state dump and the main loop. A front end keeps its
 * protocol and nothing else; docs/simulators.md lists the shared options.
 */
#pragma once

#include <glib.h>

#include "cp-sim-network.h"
#include "cp-sim-usim.h"

typedef enum {
	CP_SIM_FAULT_FAIL,          /* the protocol's error answer (--fail) */
	CP_SIM_FAULT_NO_RESPONSE,   /* no answer at all */
	CP_SIM_FAULT_VANISH,        /* the module drops off the bus */
	CP_SIM_FAULT_GARBAGE,       /* a line no answer has (AT) */
} CpSimFaultKind;

/* One --fail/--no-response/--vanish: the request it matches is a service
 * and a message (QMI, MBIM) or a command name (AT). */
typedef struct {
	CpSimFaultKind kind;
	guint service;
	guint message;
	char *command;
	guint nth;          /* 1-based occurrence; 0: every one */
	guint seen;
} CpSimFault;

/* How a front end names requests in its fault options. */
typedef struct {
	const char *fail_option;    /* "fail" */
	const char *fail_answer;    /* the help's "Answer the N-th <what> with <fail_answer>" */
	const char *what;           /* "SERVICE:CID" */
	const char *arg;            /* "SVC:CID[:N]" */
	const char *usage;          /* the error's "want ..." */
	guint n_key;                /* ':'-separated fields before the optional N */
	gboolean garbage;           /* offers --garbage */
	/* fills the key of f from the n_key fields; FALSE if they name nothing */
	gboolean (*parse_key)(char **key, CpSimFault *f);
} CpSimFaultSyntax;

/* A data context (an AT PDP context, an MBIM provisioned context, a QMI
 * profile): a front end's context structure begins with one. */
typedef struct {
	guint id;
	char *apn;
} CpSimContext;

/* Shared options a front end may have besides the ones all have. */
typedef enum {
	CP_SIM_MODEM_PTY_OPTIONAL = 1 << 0,   /* --pty may be missing (another transport) */
	CP_SIM_MODEM_NETWORK_NAME = 1 << 1,   /* --network-name */
	CP_SIM_MODEM_REENUMERATE = 1 << 2,    /* --reenumerate PATH */
} CpSimModemFlags;

/* What a front end tells the shell about itself. */
typedef struct {
	const char *name;                     /* "cp-mbim-sim", in errors */
	const char *summary;                  /* the --help line */
	guint flags;                          /* CpSimModemFlags */
	CpSimFaultSyntax faults;
	void (*input)(const guint8 *d, gsize len);   /* bytes from the port */
	void (*attach)(void);                 /* the registration delay is over */
	void (*dump)(GString *s);             /* the front end's keys */
	void (*context_clear)(CpSimContext *c);   /* frees the front end's own fields */
} CpSimFrontEnd;

typedef struct {
	const CpSimFrontEnd *fe;

	/* the shared options */
	char *pty_path;
	char *reenumerate_path;               /* --reenumerate */
	char *dump_path;
	char *apn;                            /* context 1's (internet) */
	guint reset_delay_ms;
	guint reg_delay_ms;

	/* state */
	CpSimUsim *usim;
	CpSimNetwork *net;
	char *modem_imsi;        /* what the modem read from the card at its last start */
	GPtrArray *contexts;     /* CpSimContext, by id */
	GArray *fault_table;     /* CpSimFault */
	char *port_path;         /* where the port is; NULL while it is gone */
	guint n_enumerations;    /* times the port appeared */
	GMainLoop *loop;

	/* private */
	char *subscribers_path;
	gint64 subscribers_mtime;
	int master;
	int slave;
	guint watch;
	guint reg_timer;
	GPtrArray *strings;
	char *opt_subscribers, *opt_imsi, *opt_k, *opt_opc, *opt_adm1, *opt_iccid;
	char *opt_plmn, *opt_network_name;
	int opt_adm1_retries, opt_mnc_length, opt_reset_delay, opt_reg_delay;
	gboolean opt_no_sfi;
	gboolean opt_dir_usim_only;
} CpSimModem;

/* Parses the command line: the shared options and the front end's
 * entries. FALSE (the error printed) is exit status 2. */
gboolean cp_sim_modem_parse(CpSimModem *m, const CpSimFrontEnd *fe, const GOptionEntry *entries,
			    int *argc, char ***argv);
/* The card (card NULL: CP_SIM_CARD_DEFAULT) and the network, its
 * subscribers loaded. FALSE (the error printed) is exit status 2. */
gboolean cp_sim_modem_setup(CpSimModem *m, const char *card, CpSimLe le);
/* Opens the port at --pty. FALSE (the error printed) is exit status 1. */
gboolean cp_sim_modem_port_start(CpSimModem *m);
/* Prints "ready NAME", runs until SIGTERM or SIGINT, dumps a last time. */
void cp_sim_modem_run(CpSimModem *m, const char *ready);
void cp_sim_modem_clear(CpSimModem *m);

/* The modem (re)starts its use of the card: a card reset, and it reads
 * the IMSI once and keeps it, as real modems do until the next start. */
void cp_sim_modem_card_start(CpSimModem *m);

/* The registration: attach() after the registration delay; an earlier
 * timer is dropped. */
void cp_sim_modem_attach_later(CpSimModem *m);
void cp_sim_modem_attach_cancel(CpSimModem *m);
/* The attach itself: the subscriber file's changes first, then AKA. */
CpSimAttach cp_sim_modem_attach(CpSimModem *m);

/* The modem's data contexts; the front end adds context 1, with --apn, at
 * its start. */
CpSimContext *cp_sim_modem_context_find(CpSimModem *m, guint id);
/* A new context of the front end's size, its own fields zero. */
CpSimContext *cp_sim_modem_context_add(CpSimModem *m, gsize size, guint id, const char *apn);
void cp_sim_modem_context_remove(CpSimModem *m, CpSimContext *c);

/* The port: a pty whose slave is symlinked at path; input() gets what
 * the host writes. */
gboolean cp_sim_modem_port_open(CpSimModem *m, const char *path, GError **error);
/* The module drops off the bus: the name goes first, as udev removes the
 * node of a device that left, then every open file of it hangs up. */
void cp_sim_modem_port_close(CpSimModem *m);
/* Back after a reset at path; a port that cannot come back ends the loop. */
gboolean cp_sim_modem_port_return(CpSimModem *m, const char *path);
/* Where the port comes back after a reset: --reenumerate, else --pty. */
const char *cp_sim_modem_reset_path(CpSimModem *m);
int cp_sim_modem_port_fd(CpSimModem *m);
void cp_sim_modem_port_write(CpSimModem *m, const guint8 *d, gsize len);

/* The fault for this request, if its turn has come (counts the request). */
CpSimFault *cp_sim_modem_fault(CpSimModem *m, guint service, guint message, const char *command);
/* The module drops off USB: its node goes, the state is dumped, the
 * process exits and everything closes with it. */
G_NORETURN void cp_sim_modem_vanish(CpSimModem *m, const char *what);

/* Writes the state to --dump (mode 0600, atomically): the card's, the
 * network's, modem-imsi, apn (context 1's), then the front end's keys. */
void cp_sim_modem_dump(CpSimModem *m);
