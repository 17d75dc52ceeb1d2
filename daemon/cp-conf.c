/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-conf.h"

#include <errno.h>
#include <string.h>

/* The keys each group may hold; anything else is a typo. */
static const char *const device_keys[] = {
	"key", "certificate", "certificate-url", "manufacturer", "model",
	"serial", "suites", "trusted-operators", NULL,
};
static const char *const nfc_keys[] = { "connstring", "command-timeout", "session-timeout", NULL };
static const char *const ble_keys[] = { "adapter", "window", "idle-timeout", NULL };
static const char *const modem_keys[] = {
	"backend", "device", "proxy", "card", "adm1", "registration-timeout",
	"reset", "reenumerate-timeout", "sysfs", NULL,
};
static const char *const daemon_keys[] = { "state-directory", "polkit", "exit-when-idle", "linger",
					    NULL };
static const char *const network_keys[] = { "sm-url", "sm-ca", "poll-interval", NULL };

static const struct {
	const char *name;
	const char *const *keys;
} groups[] = {
	{ "device", device_keys },
	{ "nfc", nfc_keys },
	{ "ble", ble_keys },
	{ "modem", modem_keys },
	{ "daemon", daemon_keys },
	{ "network", network_keys },
};

static void
set_error(GError **error, const CpConf *c, GKeyFileError code,
	  const char *group, const char *key, const char *fmt, ...) G_GNUC_PRINTF(6, 7);

static void
set_error(GError **error, const CpConf *c, GKeyFileError code,
	  const char *group, const char *key, const char *fmt, ...)
{
	g_autofree char *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (key)
		g_set_error(error, G_KEY_FILE_ERROR, code, "%s: [%s] %s: %s",
			    c->path, group, key, what);
	else
		g_set_error(error, G_KEY_FILE_ERROR, code, "%s: [%s]: %s",
			    c->path, group, what);
}

static gboolean
check_known(GKeyFile *kf, CpConf *c, GError **error)
{
	g_auto(GStrv) names = g_key_file_get_groups(kf, NULL);

	for (size_t i = 0; names[i]; i++) {
		const char *const *keys = NULL;
		g_auto(GStrv) present = NULL;

		for (size_t g = 0; g < G_N_ELEMENTS(groups); g++)
			if (strcmp(names[i], groups[g].name) == 0)
				keys = groups[g].keys;
		if (!keys) {
			set_error(error, c, G_KEY_FILE_ERROR_GROUP_NOT_FOUND, names[i], NULL,
				  "unknown group (known: device, nfc, ble, modem, daemon, network)");
			return FALSE;
		}
		present = g_key_file_get_keys(kf, names[i], NULL, NULL);
		for (size_t k = 0; present && present[k]; k++) {
			if (!g_strv_contains(keys, present[k])) {
				set_error(error, c, G_KEY_FILE_ERROR_KEY_NOT_FOUND, names[i],
					  present[k], "unknown key");
				return FALSE;
			}
		}
	}
	return TRUE;
}

/*
 * A string value, stripped of surrounding blanks; NULL when absent and not
 * required. An empty value counts as absent: "key=" is never meant as a
 * value.
 */
static gboolean
get_string(GKeyFile *kf, CpConf *c, const char *group, const char *key,
	   gboolean required, char **out, GError **error)
{
	g_autofree char *v = g_key_file_get_string(kf, group, key, NULL);

	if (v) {
		/* GKeyFile has no trailing comments; accept the documented
		 * "value   # note" form rather than take the note as value. */
		for (char *p = v; *p; p++) {
			if (*p == '#' && p > v && (p[-1] == ' ' || p[-1] == '\t')) {
				*p = '\0';
				break;
			}
		}
		g_strstrip(v);
	}
	if (!v || !*v) {
		if (required) {
			set_error(error, c, G_KEY_FILE_ERROR_KEY_NOT_FOUND, group, key,
				  "missing (see cellprov.conf(5))");
			return FALSE;
		}
		*out = NULL;
		return TRUE;
	}
	*out = g_steal_pointer(&v);
	return TRUE;
}

static gboolean
check_label(CpConf *c, const char *key, const char *v, GError **error)
{
	size_t len = strlen(v);

	if (len > CP_DR_STR_MAX || !g_utf8_validate(v, -1, NULL)) {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", key,
			  "must be 1-%d bytes of UTF-8 (it goes on the tag)", CP_DR_STR_MAX);
		return FALSE;
	}
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", key,
				  "contains a control character");
			return FALSE;
		}
	}
	return TRUE;
}

/* A secret source: an absolute path, or a systemd credential name. */
static gboolean
check_secret_source(CpConf *c, const char *group, const char *key, const char *v,
		    GError **error)
{
	if (strchr(v, '/')) {
		if (v[0] != '/') {
			set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, group, key,
				  "'%s' is neither an absolute path nor a credential name", v);
			return FALSE;
		}
		return TRUE;
	}
	if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, group, key,
			  "'%s' is not a credential name", v);
		return FALSE;
	}
	return TRUE;
}

static gboolean
parse_suites(CpConf *c, const char *v, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(v, ";", -1);

	c->n_suites = 0;
	for (size_t i = 0; parts[i]; i++) {
		char *s = g_strstrip(parts[i]);
		uint8_t id;

		if (!*s && !parts[i + 1] && i > 0)
			break;  /* GKeyFile lists may end with ';' */
		if (strcmp(s, "A") == 0)
			id = CP_SUITE_A;
		else if (strcmp(s, "B") == 0)
			id = CP_SUITE_B;
		else {
			set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", "suites",
				  "'%s' is not an ECIES profile (A or B)", s);
			return FALSE;
		}
		for (size_t j = 0; j < c->n_suites; j++) {
			if (c->suites[j] == id) {
				set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device",
					  "suites", "%s is listed twice", s);
				return FALSE;
			}
		}
		c->suites[c->n_suites++] = id;
	}
	if (c->n_suites == 0) {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", "suites",
			  "lists no ECIES profile");
		return FALSE;
	}
	return TRUE;
}

static gboolean
parse_device(GKeyFile *kf, CpConf *c, GError **error)
{
	g_autofree char *suites = NULL;
	const char *url_rest;

	if (!g_key_file_has_group(kf, "device")) {
		set_error(error, c, G_KEY_FILE_ERROR_GROUP_NOT_FOUND, "device", NULL,
			  "missing: the device identity is required");
		return FALSE;
	}
	if (!get_string(kf, c, "device", "key", TRUE, &c->key, error) ||
	    !check_secret_source(c, "device", "key", c->key, error) ||
	    !get_string(kf, c, "device", "certificate", FALSE, &c->certificate, error) ||
	    !get_string(kf, c, "device", "certificate-url", TRUE, &c->certificate_url, error) ||
	    !get_string(kf, c, "device", "manufacturer", TRUE, &c->manufacturer, error) ||
	    !check_label(c, "manufacturer", c->manufacturer, error) ||
	    !get_string(kf, c, "device", "model", TRUE, &c->model, error) ||
	    !check_label(c, "model", c->model, error) ||
	    !get_string(kf, c, "device", "serial", TRUE, &c->serial, error) ||
	    !check_label(c, "serial", c->serial, error) ||
	    !get_string(kf, c, "device", "suites", FALSE, &suites, error) ||
	    !get_string(kf, c, "device", "trusted-operators", FALSE, &c->trusted_operators, error))
		return FALSE;

	if (c->certificate && c->certificate[0] != '/') {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", "certificate",
			  "'%s' is not an absolute path", c->certificate);
		return FALSE;
	}
	if (c->trusted_operators && c->trusted_operators[0] != '/') {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", "trusted-operators",
			  "'%s' is not an absolute path", c->trusted_operators);
		return FALSE;
	}

	/* The phone opens the URL straight from the tag: only https, and the
	 * DeviceID must be its last segment (checked against the key at start). */
	if (!g_str_has_prefix(c->certificate_url, "https://")) {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", "certificate-url",
			  "'%s' does not start with https://", c->certificate_url);
		return FALSE;
	}
	url_rest = c->certificate_url + strlen("https://");
	if (!strchr(url_rest, '/') || g_str_has_suffix(url_rest, "/") ||
	    strpbrk(url_rest, " \t\"<>\\^`{|}")) {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "device", "certificate-url",
			  "'%s' is not of the form https://<host>/<path>/<DeviceID>",
			  c->certificate_url);
		return FALSE;
	}
	return parse_suites(c, suites ? suites : "B", error);
}

static gboolean
parse_enum(CpConf *c, const char *group, const char *key, const char *v,
	   const char *const *names, int *out, GError **error)
{
	g_autofree char *list = g_strjoinv(", ", (char **)names);

	for (int i = 0; names[i]; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return TRUE;
		}
	}
	set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, group, key,
		  "'%s' is not one of %s", v, list);
	return FALSE;
}

static const char *const backend_names[] = { "auto", "qmi", "mm", "at", "mbim", NULL };
static const char *const reset_names[] = { "auto", "user", NULL };

const char *
cp_backend_kind_name(CpBackendKind k)
{
	return (unsigned)k < G_N_ELEMENTS(backend_names) - 1 ? backend_names[k] : "?";
}

const char *
cp_reset_mode_name(CpResetMode m)
{
	return (unsigned)m < G_N_ELEMENTS(reset_names) - 1 ? reset_names[m] : "?";
}

static gboolean
parse_bool(CpConf *c, const char *group, const char *key, const char *value, gboolean dflt,
	   gboolean *out, GError **error)
{
	if (!value)
		*out = dflt;
	else if (strcmp(value, "true") == 0)
		*out = TRUE;
	else if (strcmp(value, "false") == 0)
		*out = FALSE;
	else {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, group, key,
			  "'%s' is not true or false", value);
		return FALSE;
	}
	return TRUE;
}

static gboolean get_seconds(GKeyFile *kf, CpConf *c, const char *group, const char *key, guint def,
			    guint max, guint *out, GError **error);

static gboolean
parse_modem(GKeyFile *kf, CpConf *c, GError **error)
{
	g_autofree char *backend = NULL;
	g_autofree char *proxy = NULL;
	g_autofree char *timeout = NULL;
	g_autofree char *reset = NULL;
	int v;

	if (!g_key_file_has_group(kf, "modem")) {
		set_error(error, c, G_KEY_FILE_ERROR_GROUP_NOT_FOUND, "modem", NULL,
			  "missing: the modem and its USIM are required");
		return FALSE;
	}
	if (!get_string(kf, c, "modem", "backend", FALSE, &backend, error) ||
	    !get_string(kf, c, "modem", "device", TRUE, &c->modem_device, error) ||
	    !get_string(kf, c, "modem", "proxy", FALSE, &proxy, error) ||
	    !get_string(kf, c, "modem", "card", TRUE, &c->card, error) ||
	    !get_string(kf, c, "modem", "adm1", TRUE, &c->adm1, error) ||
	    !check_secret_source(c, "modem", "adm1", c->adm1, error) ||
	    !get_string(kf, c, "modem", "registration-timeout", FALSE, &timeout, error) ||
	    !get_string(kf, c, "modem", "reset", FALSE, &reset, error) ||
	    !get_string(kf, c, "modem", "sysfs", FALSE, &c->sysfs, error) ||
	    !get_seconds(kf, c, "modem", "reenumerate-timeout", CP_CONF_DEFAULT_REENUMERATE_TIMEOUT,
			 CP_CONF_MAX_REG_TIMEOUT, &c->reenumerate_timeout, error))
		return FALSE;
	if (c->sysfs && c->sysfs[0] != '/') {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "modem", "sysfs",
			  "'%s' is not an absolute path", c->sysfs);
		return FALSE;
	}

	if (!parse_enum(c, "modem", "backend", backend ? backend : "auto", backend_names, &v, error))
		return FALSE;
	c->backend = v;
	if (!parse_enum(c, "modem", "reset", reset ? reset : "auto", reset_names, &v, error))
		return FALSE;
	c->reset = v;

	if (c->modem_device[0] != '/') {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "modem", "device",
			  "'%s' is not an absolute device path", c->modem_device);
		return FALSE;
	}

	if (!parse_bool(c, "modem", "proxy", proxy, TRUE, &c->proxy, error))
		return FALSE;

	for (const char *p = c->card; *p; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_') {
			set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "modem", "card",
				  "'%s' is not a USIM driver name", c->card);
			return FALSE;
		}
	}

	c->registration_timeout = CP_CONF_DEFAULT_REG_TIMEOUT;
	if (timeout) {
		guint64 n;

		if (!g_ascii_string_to_unsigned(timeout, 10, 1, CP_CONF_MAX_REG_TIMEOUT, &n, NULL)) {
			set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "modem",
				  "registration-timeout",
				  "'%s' is not a number of seconds from 1 to %d",
				  timeout, CP_CONF_MAX_REG_TIMEOUT);
			return FALSE;
		}
		c->registration_timeout = (guint)n;
	}
	return TRUE;
}

/* A whole number of seconds from 1 to max; def when absent. */
static gboolean
get_seconds(GKeyFile *kf, CpConf *c, const char *group, const char *key, guint def,
	    guint max, guint *out, GError **error)
{
	g_autofree char *v = NULL;
	guint64 n;

	if (!get_string(kf, c, group, key, FALSE, &v, error))
		return FALSE;
	*out = def;
	if (!v)
		return TRUE;
	if (!g_ascii_string_to_unsigned(v, 10, 1, max, &n, NULL)) {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, group, key,
			  "'%s' is not a number of seconds from 1 to %u", v, max);
		return FALSE;
	}
	*out = (guint)n;
	return TRUE;
}

/* [ble]: the BLE transport (docs/ble.md); on when an adapter is named. */
static gboolean
parse_ble(GKeyFile *kf, CpConf *c, GError **error)
{
	if (!get_string(kf, c, "ble", "adapter", FALSE, &c->ble_adapter, error) ||
	    !get_seconds(kf, c, "ble", "window", CP_CONF_DEFAULT_BLE_WINDOW, CP_CONF_MAX_BLE_WINDOW,
			 &c->ble_window, error) ||
	    !get_seconds(kf, c, "ble", "idle-timeout", CP_CONF_DEFAULT_BLE_IDLE_TIMEOUT,
			 CP_CONF_MAX_BLE_IDLE_TIMEOUT, &c->ble_idle_timeout, error))
		return FALSE;
	if (c->ble_adapter) {
		for (const char *p = c->ble_adapter; *p; p++) {
			if (!g_ascii_isalnum(*p) && *p != '_') {
				set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "ble", "adapter",
					  "'%s' is not an adapter name such as hci0", c->ble_adapter);
				return FALSE;
			}
		}
	}
	return TRUE;
}

/* [network]: the SM the device polls itself (docs/daemon.md). */
static gboolean
parse_network(GKeyFile *kf, CpConf *c, GError **error)
{
	g_autofree char *interval = NULL;
	g_autoptr(GUri) uri = NULL;
	guint64 n;

	if (!get_string(kf, c, "network", "sm-url", FALSE, &c->sm_url, error) ||
	    !get_string(kf, c, "network", "sm-ca", FALSE, &c->sm_ca, error) ||
	    !get_string(kf, c, "network", "poll-interval", FALSE, &interval, error))
		return FALSE;
	if (c->sm_url) {
		uri = g_uri_parse(c->sm_url, G_URI_FLAGS_NONE, NULL);
		if (!uri || g_strcmp0(g_uri_get_scheme(uri), "https") != 0 ||
		    !g_uri_get_host(uri) || !*g_uri_get_host(uri) || g_uri_get_query(uri) ||
		    g_uri_get_fragment(uri) || g_uri_get_userinfo(uri)) {
			set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "network", "sm-url",
				  "'%s' is not an https://host[:port][/path] URL", c->sm_url);
			return FALSE;
		}
	}
	if (c->sm_ca && c->sm_ca[0] != '/') {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "network", "sm-ca",
			  "'%s' is not an absolute path", c->sm_ca);
		return FALSE;
	}
	c->poll_interval = CP_CONF_DEFAULT_POLL_INTERVAL;
	if (interval) {
		if (!g_ascii_string_to_unsigned(interval, 10, CP_CONF_MIN_POLL_INTERVAL,
						CP_CONF_MAX_POLL_INTERVAL, &n, NULL)) {
			set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "network",
				  "poll-interval", "'%s' is not a number of seconds from %d to %d",
				  interval, CP_CONF_MIN_POLL_INTERVAL, CP_CONF_MAX_POLL_INTERVAL);
			return FALSE;
		}
		c->poll_interval = (guint)n;
	}
	return TRUE;
}

static CpConf *
parse(GKeyFile *kf, const char *name, GError **error)
{
	g_autoptr(CpConf) c = g_new0(CpConf, 1);
	g_autofree char *polkit = NULL;
	g_autofree char *exit_idle = NULL;

	c->path = g_strdup(name);
	if (!check_known(kf, c, error) || !parse_device(kf, c, error) ||
	    !get_string(kf, c, "nfc", "connstring", FALSE, &c->nfc_connstring, error) ||
	    !get_seconds(kf, c, "nfc", "command-timeout", CP_CONF_DEFAULT_NFC_COMMAND_TIMEOUT,
			 CP_CONF_MAX_NFC_COMMAND_TIMEOUT, &c->nfc_command_timeout, error) ||
	    !get_seconds(kf, c, "nfc", "session-timeout", CP_CONF_DEFAULT_NFC_SESSION_TIMEOUT,
			 CP_CONF_MAX_NFC_SESSION_TIMEOUT, &c->nfc_session_timeout, error) ||
	    !parse_ble(kf, c, error) ||
	    !parse_modem(kf, c, error) ||
	    !get_string(kf, c, "daemon", "state-directory", FALSE, &c->state_directory, error) ||
	    !get_string(kf, c, "daemon", "polkit", FALSE, &polkit, error) ||
	    !parse_bool(c, "daemon", "polkit", polkit, TRUE, &c->polkit, error) ||
	    !get_string(kf, c, "daemon", "exit-when-idle", FALSE, &exit_idle, error) ||
	    !parse_bool(c, "daemon", "exit-when-idle", exit_idle, TRUE, &c->exit_when_idle, error) ||
	    !get_seconds(kf, c, "daemon", "linger", CP_CONF_DEFAULT_LINGER, CP_CONF_MAX_LINGER,
			 &c->linger, error) ||
	    !parse_network(kf, c, error))
		return NULL;

	if (!c->state_directory)
		c->state_directory = g_strdup(CP_CONF_DEFAULT_STATE_DIR);
	if (c->state_directory[0] != '/') {
		set_error(error, c, G_KEY_FILE_ERROR_INVALID_VALUE, "daemon", "state-directory",
			  "'%s' is not an absolute path", c->state_directory);
		return NULL;
	}
	return g_steal_pointer(&c);
}

CpConf *
cp_conf_load_data(const char *data, gsize len, const char *name, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;

	if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &local)) {
		g_set_error(error, G_KEY_FILE_ERROR, local->code, "%s: %s", name, local->message);
		return NULL;
	}
	return parse(kf, name, error);
}

CpConf *
cp_conf_load(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	g_autoptr(GError) local = NULL;
	gsize len;

	if (!g_file_get_contents(path, &data, &len, &local)) {
		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_NOT_FOUND,
			    "cannot read the configuration: %s", local->message);
		return NULL;
	}
	return cp_conf_load_data(data, len, path, error);
}

void
cp_conf_free(CpConf *c)
{
	if (!c)
		return;
	g_free(c->path);
	g_free(c->sysfs);
	g_free(c->key);
	g_free(c->certificate);
	g_free(c->certificate_url);
	g_free(c->trusted_operators);
	g_free(c->manufacturer);
	g_free(c->model);
	g_free(c->serial);
	g_free(c->nfc_connstring);
	g_free(c->ble_adapter);
	g_free(c->modem_device);
	g_free(c->card);
	g_free(c->adm1);
	g_free(c->state_directory);
	g_free(c->sm_url);
	g_free(c->sm_ca);
	g_free(c);
}
