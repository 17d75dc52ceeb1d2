/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cellprov-probe: what the modem and its card are, read-only
 * (docs/hardware.md, cellprov-probe(1)). It runs the card engine's probe
 * plan on the modem driver's table: no write, no reset, no ADM1 attempt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#ifdef CP_PROBE_NFC
#include <nfc/nfc.h>
#endif

#include "cp-json.h"
#include "cp-modem.h"

typedef struct {
	GMainLoop *loop;
	CpModemProbe *probe;
	GError *error;
} Run;

static void
probe_cb(GObject *src, GAsyncResult *res, gpointer data)
{
	Run *r = data;

	r->probe = cp_modem_probe_finish(NULL, res, &r->error);
	g_main_loop_quit(r->loop);
}

/* The NFC controller: what libnfc says of it. */
typedef struct {
	gboolean asked;
	char *connstring;
	char *name;
	char *information;     /* libnfc's description: chip, firmware, modes */
	gboolean target_iso14443a;
	char *error;
} Nfc;

#ifdef CP_PROBE_NFC
/*
 * Opens the controller (the connstring, or the first libnfc finds), asks
 * nothing but what libnfc asks at open (GetFirmwareVersion and the like)
 * and its description, and closes it. ISO 14443-A in target mode is what
 * the device's tag needs.
 */
static void
nfc_probe(Nfc *n, const char *connstring)
{
	nfc_context *ctx = NULL;
	nfc_device *dev;
	const nfc_modulation_type *types = NULL;
	char *info = NULL;

	n->asked = TRUE;
	nfc_init(&ctx);
	if (!ctx) {
		n->error = g_strdup("libnfc could not start");
		return;
	}
	dev = nfc_open(ctx, connstring && *connstring ? connstring : NULL);
	if (!dev) {
		n->error = g_strdup_printf("no NFC controller at %s", connstring && *connstring ? connstring : "any connstring");
		nfc_exit(ctx);
		return;
	}
	n->connstring = g_strdup(nfc_device_get_connstring(dev));
	n->name = g_strdup(nfc_device_get_name(dev));
	if (nfc_device_get_information_about(dev, &info) >= 0 && info) {
		n->information = g_strstrip(g_strdup(info));
		nfc_free(info);
	}
	if (nfc_device_get_supported_modulation(dev, N_TARGET, &types) == 0)
		for (gsize i = 0; types && types[i]; i++)
			if (types[i] == NMT_ISO14443A)
				n->target_iso14443a = TRUE;
	nfc_close(dev);
	nfc_exit(ctx);
}
#endif

/* The first line of libnfc's description names the chip and firmware. */
static char *
nfc_chip(const Nfc *n)
{
	const char *s = n->information ? strstr(n->information, "chip: ") : NULL;

	if (!s)
		return g_strdup("unknown");
	s += strlen("chip: ");
	return g_strndup(s, strcspn(s, "\n"));
}

static const char *
nfc_verdict(const Nfc *n)
{
	g_autofree char *chip = nfc_chip(n);

	if (n->error)
		return "unusable: no controller";
	if (!n->target_iso14443a)
		return "unsupported: no ISO 14443-A target mode (the device's tag needs it)";
	if (!strstr(chip, "PN532"))
		return "unsupported: only the PN532's target mode is known to work (docs/hardware.md)";
	/* a PN532 behind the ACR122's own firmware (libnfc issue 691) */
	if ((n->connstring && strstr(n->connstring, "acr122")) || (n->name && strstr(n->name, "ACR122")))
		return "unsupported: target mode through the ACR122's firmware fails in reports (docs/hardware.md)";
	return "ok";
}

/* The verdicts, one a part: "ok", or what stands in the way. */
static const char *
modem_verdict(const CpModemProbe *p)
{
	if (p->error && !p->iccid)
		return "unusable: the card could not be reached";
	if (!p->logical_channel && p->channel_error)
		return "works with the basic channel (the modem refuses logical channels)";
	return "ok";
}

static const char *
card_verdict(const CpModemProbe *p)
{
	if (!p->iccid)
		return "unknown: not reached";
	if (!p->card)
		return "unsupported: no card driver knows it";
	if (p->error)
		return "unusable: the probe stopped (see error)";
	if (p->adm1_verified)
		return "ok (ADM1 verified already)";
	if (p->adm1_left < 0)
		return "refused: the card gives no ADM1 counter, so no try is known to be safe";
	if (p->adm1_left == 0)
		return "unusable: ADM1 is blocked";
	if (p->adm1_left == 1)
		return "refused: one ADM1 attempt left (cellprov never spends it; verify by hand)";
	return "ok";
}

static void
print_nfc_text(const Nfc *n)
{
	g_autofree char *chip = nfc_chip(n);

	if (n->error) {
		printf("nfc: %s\n", n->error);
	} else {
		if (g_strcmp0(n->name, n->connstring) == 0)
			printf("nfc: %s\n", n->connstring);
		else
			printf("nfc: %s (%s)\n", n->name, n->connstring);
		printf("nfc: chip %s\n", chip);
		printf("nfc: ISO 14443-A target mode: %s\n", n->target_iso14443a ? "yes" : "no");
		/* UM0701-02 7.3.14: the PN532 sends its own ATS, FSCI 5 */
		if (strstr(chip, "PN532"))
			printf("nfc: frame size in target mode: 64 bytes (the PN532's own ATS); longer commands are chained\n");
	}
	printf("verdict nfc: %s\n", nfc_verdict(n));
}

static void
print_text(const CpModemProbe *p, const char *device)
{
	printf("modem: %s on %s\n", p->backend, device);
	if (p->firmware)
		printf("modem: firmware %s\n", p->firmware);
	else
		printf("modem: firmware: %s\n", p->firmware_error ? p->firmware_error : "not asked");
	if (p->logical_channel)
		printf("modem: logical channels: yes\n");
	else if (p->channel_error)
		printf("modem: logical channels: refused (%s); the basic channel is used\n", p->channel_error);
	else
		printf("modem: logical channels: not tried\n");
	if (p->imsi_by_modem)
		printf("modem: IMSI request: answered\n");
	else
		printf("modem: IMSI request: %s; cellprov reads EF.IMSI through the card\n",
		       p->imsi_error ? p->imsi_error : "not tried");
	printf("modem: reset: %s\n", p->can_reset ? "the driver resets the modem (not tried)" : "none");
	if (p->atr)
		printf("card: ATR %s\n", p->atr);
	else
		printf("card: ATR: %s\n", p->atr_error ? p->atr_error : "not asked");
	printf("card: ICCID %s\n", p->iccid ? p->iccid : "unknown");
	printf("card: EF.DIR USIM %s\n", p->usim_aid ? p->usim_aid : "none");
	printf("card: EF.DIR ISIM %s\n", p->isim_aid ? p->isim_aid : "none");
	printf("card: driver %s%s%s%s\n", p->card ? p->card : "none", p->card ? " (" : "",
	       p->card ? p->card_description : "", p->card ? ")" : "");
	for (guint i = 0; i < p->n_files; i++)
		printf("card: %s %" G_GSIZE_FORMAT " bytes (cellprov writes %" G_GSIZE_FORMAT ")\n",
		       p->files[i].name, p->files[i].size, p->files[i].written);
	if (p->adm1_verified)
		printf("card: ADM1 verified already\n");
	else if (p->adm1_left >= 0)
		printf("card: ADM1 attempts left %d\n", p->adm1_left);
	else if (p->card)
		printf("card: ADM1 attempts left unknown\n");
	if (p->error)
		printf("error: %s\n", p->error);
	printf("verdict modem: %s\n", modem_verdict(p));
	printf("verdict card: %s\n", card_verdict(p));
}

static void
print_json(const CpModemProbe *p, const char *device, const Nfc *nfc)
{
	CpJson j;

	cp_json_init(&j, stdout, true);
	cp_json_begin_object(&j, NULL);
	cp_json_begin_object(&j, "modem");
	cp_json_string(&j, "backend", p->backend);
	cp_json_string(&j, "device", device);
	if (p->firmware)
		cp_json_string(&j, "firmware", p->firmware);
	if (p->firmware_error)
		cp_json_string(&j, "firmware-error", p->firmware_error);
	cp_json_bool(&j, "logical-channels", p->logical_channel);
	if (p->channel_error)
		cp_json_string(&j, "channel-error", p->channel_error);
	cp_json_bool(&j, "imsi-request", p->imsi_by_modem);
	if (p->imsi_error)
		cp_json_string(&j, "imsi-error", p->imsi_error);
	cp_json_bool(&j, "reset", p->can_reset);
	cp_json_string(&j, "verdict", modem_verdict(p));
	cp_json_end_object(&j);
	cp_json_begin_object(&j, "card");
	if (p->atr)
		cp_json_string(&j, "atr", p->atr);
	if (p->atr_error)
		cp_json_string(&j, "atr-error", p->atr_error);
	if (p->iccid)
		cp_json_string(&j, "iccid", p->iccid);
	if (p->usim_aid)
		cp_json_string(&j, "usim-aid", p->usim_aid);
	if (p->isim_aid)
		cp_json_string(&j, "isim-aid", p->isim_aid);
	if (p->card)
		cp_json_string(&j, "driver", p->card);
	cp_json_begin_array(&j, "files");
	for (guint i = 0; i < p->n_files; i++) {
		cp_json_begin_object(&j, NULL);
		cp_json_string(&j, "name", p->files[i].name);
		cp_json_uint(&j, "size", p->files[i].size);
		cp_json_uint(&j, "written", p->files[i].written);
		cp_json_end_object(&j);
	}
	cp_json_end_array(&j);
	if (p->adm1_left >= 0)
		cp_json_uint(&j, "adm1-attempts-left", (uint64_t)p->adm1_left);
	cp_json_bool(&j, "adm1-verified", p->adm1_verified);
	cp_json_string(&j, "verdict", card_verdict(p));
	cp_json_end_object(&j);
	if (nfc->asked) {
		g_autofree char *chip = nfc_chip(nfc);

		cp_json_begin_object(&j, "nfc");
		if (nfc->error)
			cp_json_string(&j, "error", nfc->error);
		if (nfc->name)
			cp_json_string(&j, "name", nfc->name);
		if (nfc->connstring)
			cp_json_string(&j, "connstring", nfc->connstring);
		cp_json_string(&j, "chip", chip);
		cp_json_bool(&j, "target-iso14443a", nfc->target_iso14443a);
		if (strstr(chip, "PN532"))
			cp_json_uint(&j, "target-frame-size", 64);
		cp_json_string(&j, "verdict", nfc_verdict(nfc));
		cp_json_end_object(&j);
	}
	if (p->error)
		cp_json_string(&j, "error", p->error);
	cp_json_end_object(&j);
	cp_json_finish(&j);
}

int
main(int argc, char **argv)
{
	g_autofree char *device = NULL, *backend = NULL, *card = NULL, *nfc_connstring = NULL;
	gboolean proxy = FALSE, json = FALSE;
	int timeout = 10;
	GOptionEntry entries[] = {
		{ "device", 'd', 0, G_OPTION_ARG_FILENAME, &device, "The modem's control port (/dev/cdc-wdm0)", "PATH" },
		{ "backend", 'b', 0, G_OPTION_ARG_STRING, &backend, "qmi, mbim, at or mm (auto)", "NAME" },
		{ "proxy", 'p', 0, G_OPTION_ARG_NONE, &proxy, "Open QMI through qmi-proxy (MBIM always goes through mbim-proxy)", NULL },
		{ "card", 'c', 0, G_OPTION_ARG_STRING, &card, "The card driver to check for (auto)", "NAME" },
		{ "timeout", 't', 0, G_OPTION_ARG_INT, &timeout, "Seconds per modem request (10)", "S" },
		{ "json", 'J', 0, G_OPTION_ARG_NONE, &json, "JSON output", NULL },
		{ "nfc", 'n', 0, G_OPTION_ARG_STRING, &nfc_connstring,
		  "Probe the NFC controller too (a libnfc connstring; \"\": the first found)", "CONNSTRING" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- what the modem and its card are, read-only");
	g_autoptr(GError) error = NULL;
	g_autoptr(CpModem) modem = NULL;
	CpModemConfig cfg = { 0 };
	Run r = { 0 };
	Nfc nfc = { 0 };

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		fprintf(stderr, "cellprov-probe: %s\n", error->message);
		return 2;
	}
#ifndef CP_PROBE_NFC
	if (nfc_connstring) {
		fprintf(stderr, "cellprov-probe: --nfc: this build has no libnfc\n");
		return 2;
	}
#endif
	if (timeout < 1 || timeout > 600) {
		fprintf(stderr, "cellprov-probe: --timeout: 1 to 600 seconds\n");
		return 2;
	}
	cfg.device = device ? device : "/dev/cdc-wdm0";
	cfg.proxy = proxy;
	cfg.card = card;
	cfg.request_timeout = (guint)timeout;
	/* no ADM1: the modem can only be probed */
	if (!backend || g_str_equal(backend, "auto"))
		cfg.backend = CP_MODEM_BACKEND_AUTO;
	else if (g_str_equal(backend, "qmi"))
		cfg.backend = CP_MODEM_BACKEND_QMI;
	else if (g_str_equal(backend, "mm"))
		cfg.backend = CP_MODEM_BACKEND_MM;
	else if (g_str_equal(backend, "at"))
		cfg.backend = CP_MODEM_BACKEND_AT;
	else if (g_str_equal(backend, "mbim"))
		cfg.backend = CP_MODEM_BACKEND_MBIM;
	else {
		fprintf(stderr, "cellprov-probe: --backend: auto, qmi, mbim, at or mm\n");
		return 2;
	}
	modem = cp_modem_new(&cfg, &error);
	if (!modem) {
		fprintf(stderr, "cellprov-probe: %s\n", error->message);
		return 2;
	}
	r.loop = g_main_loop_new(NULL, FALSE);
	cp_modem_probe_async(modem, NULL, NULL, NULL, probe_cb, &r);
	g_main_loop_run(r.loop);
	g_main_loop_unref(r.loop);
	if (!r.probe) {
		fprintf(stderr, "cellprov-probe: %s\n", r.error->message);
		g_error_free(r.error);
		return 1;
	}
#ifdef CP_PROBE_NFC
	if (nfc_connstring)
		nfc_probe(&nfc, nfc_connstring);
#endif
	if (json) {
		print_json(r.probe, cfg.device, &nfc);
	} else {
		print_text(r.probe, cfg.device);
		if (nfc.asked)
			print_nfc_text(&nfc);
	}
	/* 0: every part usable as it is */
	{
		int rc = g_str_has_prefix(modem_verdict(r.probe), "unusable") ||
			 !g_str_has_prefix(card_verdict(r.probe), "ok") ||
			 (nfc.asked && !g_str_has_prefix(nfc_verdict(&nfc), "ok")) ? 3 : 0;

		cp_modem_probe_free(r.probe);
		g_free(nfc.connstring);
		g_free(nfc.name);
		g_free(nfc.information);
		g_free(nfc.error);
		return rc;
	}
}
