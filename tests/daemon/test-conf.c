/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cellprov.conf: a full file, defaults, and every kind of bad value with
 * the error it must give. */
#include <glib.h>
#include <string.h>

#include "cp-conf.h"

#define URL "https://certs.example.net/devices/0123456789abcdef0123456789abcdef"

static const char *const good =
	"[device]\n"
	"key=/etc/cellprov/device-key.pem      # PKCS#8 PEM path (0600) or a credential\n"
	"certificate=/etc/cellprov/device-cert.pem\n"
	"certificate-url=" URL "\n"
	"manufacturer=Example Ltd\n"
	"model=GW-1\n"
	"serial=SN0001\n"
	"suites=A;B\n"
	"trusted-operators=/etc/cellprov/trusted-operators.pem\n"
	"[nfc]\n"
	"connstring=pn532_uart:/dev/ttyS1\n"
	"command-timeout=3\n"
	"session-timeout=20\n"
	"[ble]\n"
	"adapter=hci1\n"
	"window=120\n"
	"idle-timeout=10\n"
	"[modem]\n"
	"backend=qmi\n"
	"device=/dev/cdc-wdm0\n"
	"proxy=false\n"
	"card=sysmo-isim-sja2\n"
	"adm1=adm1\n"
	"registration-timeout=30\n"
	"reset=user\n"
	"reenumerate-timeout=90\n"
	"sysfs=/run/fake-sys\n"
	"[daemon]\n"
	"state-directory=/var/lib/cellprov\n"
	"polkit=false\n"
	"exit-when-idle=false\n"
	"linger=45\n"
	"[network]\n"
	"sm-url=https://sm.example.net:8443/cellprov\n"
	"sm-ca=/etc/cellprov/sm-ca.pem\n"
	"poll-interval=3600\n";

static const char *const minimal =
	"[device]\n"
	"key=device-key\n"
	"certificate-url=" URL "\n"
	"manufacturer=Example Ltd\n"
	"model=GW-1\n"
	"serial=SN0001\n"
	"[modem]\n"
	"device=/dev/cdc-wdm0\n"
	"card=sysmo-isim-sja2\n"
	"adm1=/etc/cellprov/adm1\n";

static void
test_good(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpConf) c = cp_conf_load_data(good, strlen(good), "good.conf", &error);

	g_assert_no_error(error);
	g_assert_cmpstr(c->key, ==, "/etc/cellprov/device-key.pem");
	g_assert_cmpstr(c->certificate, ==, "/etc/cellprov/device-cert.pem");
	g_assert_cmpstr(c->certificate_url, ==, URL);
	g_assert_cmpstr(c->manufacturer, ==, "Example Ltd");
	g_assert_cmpuint(c->n_suites, ==, 2);
	g_assert_cmpuint(c->suites[0], ==, CP_SUITE_A);
	g_assert_cmpuint(c->suites[1], ==, CP_SUITE_B);
	g_assert_cmpstr(c->trusted_operators, ==, "/etc/cellprov/trusted-operators.pem");
	g_assert_cmpstr(c->nfc_connstring, ==, "pn532_uart:/dev/ttyS1");
	g_assert_cmpuint(c->nfc_command_timeout, ==, 3);
	g_assert_cmpuint(c->nfc_session_timeout, ==, 20);
	g_assert_cmpstr(c->ble_adapter, ==, "hci1");
	g_assert_cmpuint(c->ble_window, ==, 120);
	g_assert_cmpuint(c->ble_idle_timeout, ==, 10);
	g_assert_cmpint(c->backend, ==, CP_BACKEND_QMI);
	g_assert_false(c->proxy);
	g_assert_cmpstr(c->card, ==, "sysmo-isim-sja2");
	g_assert_cmpstr(c->adm1, ==, "adm1");
	g_assert_cmpuint(c->registration_timeout, ==, 30);
	g_assert_cmpint(c->reset, ==, CP_RESET_USER);
	g_assert_cmpuint(c->reenumerate_timeout, ==, 90);
	g_assert_cmpstr(c->sysfs, ==, "/run/fake-sys");
	g_assert_cmpstr(c->state_directory, ==, "/var/lib/cellprov");
	g_assert_false(c->polkit);
	g_assert_false(c->exit_when_idle);
	g_assert_cmpuint(c->linger, ==, 45);
	g_assert_cmpstr(c->sm_url, ==, "https://sm.example.net:8443/cellprov");
	g_assert_cmpstr(c->sm_ca, ==, "/etc/cellprov/sm-ca.pem");
	g_assert_cmpuint(c->poll_interval, ==, 3600);
}

static void
test_defaults(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpConf) c = cp_conf_load_data(minimal, strlen(minimal), "min.conf", &error);

	g_assert_no_error(error);
	g_assert_null(c->certificate);
	g_assert_null(c->trusted_operators);
	g_assert_null(c->nfc_connstring);
	g_assert_cmpuint(c->nfc_command_timeout, ==, 5);
	g_assert_cmpuint(c->nfc_session_timeout, ==, 30);
	g_assert_null(c->ble_adapter);
	g_assert_cmpuint(c->ble_window, ==, CP_CONF_DEFAULT_BLE_WINDOW);
	g_assert_cmpuint(c->ble_idle_timeout, ==, 30);
	g_assert_cmpuint(c->n_suites, ==, 1);
	g_assert_cmpuint(c->suites[0], ==, CP_SUITE_B);
	g_assert_cmpint(c->backend, ==, CP_BACKEND_AUTO);
	g_assert_true(c->proxy);
	g_assert_cmpuint(c->registration_timeout, ==, CP_CONF_DEFAULT_REG_TIMEOUT);
	g_assert_cmpint(c->reset, ==, CP_RESET_AUTO);
	g_assert_cmpuint(c->reenumerate_timeout, ==, CP_CONF_DEFAULT_REENUMERATE_TIMEOUT);
	g_assert_cmpuint(c->reenumerate_timeout, ==, 60);
	g_assert_null(c->sysfs);
	g_assert_cmpstr(c->state_directory, ==, CP_CONF_DEFAULT_STATE_DIR);
	g_assert_true(c->polkit);
	g_assert_true(c->exit_when_idle);
	g_assert_cmpuint(c->linger, ==, CP_CONF_DEFAULT_LINGER);
	g_assert_cmpuint(c->linger, ==, 300);
	g_assert_null(c->sm_url);
	g_assert_null(c->sm_ca);
	g_assert_cmpuint(c->poll_interval, ==, CP_CONF_DEFAULT_POLL_INTERVAL);
	g_assert_cmpstr(cp_backend_kind_name(c->backend), ==, "auto");
	g_assert_cmpstr(cp_reset_mode_name(c->reset), ==, "auto");
}

/* Every backend by its name; an AT module's control port is its tty. */
static void
test_backends(void)
{
	static const struct {
		const char *name;
		CpBackendKind kind;
		const char *device;
	} cases[] = {
		{ "auto", CP_BACKEND_AUTO, "/dev/cdc-wdm0" },
		{ "qmi", CP_BACKEND_QMI, "/dev/cdc-wdm0" },
		{ "mm", CP_BACKEND_MM, "/dev/cdc-wdm0" },
		{ "at", CP_BACKEND_AT, "/dev/ttyUSB2" },
		{ "mbim", CP_BACKEND_MBIM, "/dev/cdc-wdm1" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *data = g_strdup_printf("%s[modem]\nbackend=%s\ndevice=%s\n"
							"card=sysmo-isim-sja2\nadm1=/etc/cellprov/adm1\n",
							"[device]\nkey=device-key\ncertificate-url=" URL "\n"
							"manufacturer=Example Ltd\nmodel=GW-1\nserial=SN0001\n",
							cases[i].name, cases[i].device);
		g_autoptr(CpConf) c = cp_conf_load_data(data, strlen(data), "b.conf", &error);

		g_assert_no_error(error);
		g_assert_cmpint(c->backend, ==, cases[i].kind);
		g_assert_cmpstr(cp_backend_kind_name(c->backend), ==, cases[i].name);
		g_assert_cmpstr(c->modem_device, ==, cases[i].device);
	}
}

/* The installed example parses, and says what the defaults are. */
static void
test_example(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpConf) c = NULL;
	const char *path = g_getenv("CP_EXAMPLE_CONF");

	if (!path) {
		g_test_skip("CP_EXAMPLE_CONF is not set");
		return;
	}
	c = cp_conf_load(path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(c->key, ==, "/etc/cellprov/device-key.pem");
	g_assert_nonnull(c->nfc_connstring);
	g_assert_true(c->polkit);
	g_assert_cmpstr(c->state_directory, ==, CP_CONF_DEFAULT_STATE_DIR);
}

/* Replace "key=..." of group in the minimal file, or add it. */
static char *
with(const char *group, const char *key, const char *value)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();

	g_assert_true(g_key_file_load_from_data(kf, minimal, -1, G_KEY_FILE_NONE, NULL));
	if (value)
		g_key_file_set_value(kf, group, key, value);
	else
		g_key_file_remove_key(kf, group, key, NULL);
	return g_key_file_to_data(kf, NULL, NULL);
}

static void
test_bad(void)
{
	static const struct {
		const char *group, *key, *value;   /* value NULL: remove the key */
		const char *expect;                 /* in the message */
	} cases[] = {
		{ "device", "key", NULL, "[device] key: missing" },
		{ "device", "key", "", "[device] key: missing" },
		{ "device", "key", "relative/key.pem", "neither an absolute path nor a credential name" },
		{ "device", "key", "..", "not a credential name" },
		{ "device", "certificate", "cert.pem", "[device] certificate: 'cert.pem' is not an absolute path" },
		{ "device", "trusted-operators", "roots.pem", "[device] trusted-operators: 'roots.pem' is not an absolute path" },
		{ "device", "certificate-url", NULL, "[device] certificate-url: missing" },
		{ "device", "certificate-url", "http://certs.example.net/devices/x", "does not start with https://" },
		{ "device", "certificate-url", "https://certs.example.net", "not of the form" },
		{ "device", "certificate-url", "https://certs.example.net/devices/", "not of the form" },
		{ "device", "certificate-url", "https://certs.example.net/a b/x", "not of the form" },
		{ "device", "manufacturer", NULL, "[device] manufacturer: missing" },
		{ "device", "model", "0123456789012345678901234567890123456789012345678901234567890123456789",
		  "[device] model: must be 1-64 bytes" },
		{ "device", "serial", "SN\\t1", "[device] serial: contains a control character" },
		{ "device", "suites", "C", "'C' is not an ECIES profile" },
		{ "device", "suites", "B;B", "B is listed twice" },
		{ "device", "suites", ";", "not an ECIES profile" },
		{ "device", "colour", "blue", "[device] colour: unknown key" },
		{ "modem", "backend", "AT", "[modem] backend: 'AT' is not one of auto, qmi, mm, at, mbim" },
		{ "modem", "backend", "ncm", "[modem] backend: 'ncm' is not one of auto, qmi, mm, at, mbim" },
		{ "modem", "device", NULL, "[modem] device: missing" },
		{ "modem", "device", "cdc-wdm0", "not an absolute device path" },
		{ "modem", "proxy", "yes", "[modem] proxy: 'yes' is not true or false" },
		{ "daemon", "polkit", "no", "[daemon] polkit: 'no' is not true or false" },
		{ "modem", "card", NULL, "[modem] card: missing" },
		{ "modem", "card", "../x", "is not a USIM driver name" },
		{ "modem", "adm1", NULL, "[modem] adm1: missing" },
		{ "modem", "adm1", "etc/adm1", "neither an absolute path" },
		{ "modem", "registration-timeout", "0", "is not a number of seconds from 1 to 3600" },
		{ "modem", "registration-timeout", "3601", "from 1 to 3600" },
		{ "modem", "registration-timeout", "12s", "'12s' is not a number" },
		{ "modem", "registration-timeout", "-5", "'-5' is not a number" },
		{ "modem", "reset", "later", "[modem] reset: 'later' is not one of auto, user" },
		{ "modem", "reenumerate-timeout", "0", "is not a number of seconds from 1 to 3600" },
		{ "modem", "reenumerate-timeout", "1m", "'1m' is not a number" },
		{ "modem", "sysfs", "sys", "'sys' is not an absolute path" },
		{ "nfc", "reader", "x", "[nfc] reader: unknown key" },
		{ "nfc", "command-timeout", "0", "[nfc] command-timeout: '0' is not a number of seconds from 1 to 60" },
		{ "nfc", "command-timeout", "61", "from 1 to 60" },
		{ "nfc", "session-timeout", "601", "[nfc] session-timeout: '601' is not a number of seconds from 1 to 600" },
		{ "nfc", "session-timeout", "30s", "'30s' is not a number" },
		{ "daemon", "exit-when-idle", "1", "[daemon] exit-when-idle: '1' is not true or false" },
		{ "daemon", "exit-when-idle", "yes", "'yes' is not true or false" },
		{ "daemon", "linger", "0", "[daemon] linger: '0' is not a number of seconds from 1 to 86400" },
		{ "daemon", "linger", "86401", "from 1 to 86400" },
		{ "daemon", "linger", "5m", "'5m' is not a number" },
		{ "daemon", "lingering", "5", "[daemon] lingering: unknown key" },
		{ "ble", "adapter", "/org/bluez/hci0", "[ble] adapter: '/org/bluez/hci0' is not an adapter name such as hci0" },
		{ "ble", "adapter", "hci 0", "is not an adapter name" },
		{ "ble", "window", "0", "[ble] window: '0' is not a number of seconds from 1 to 86400" },
		{ "ble", "window", "86401", "from 1 to 86400" },
		{ "ble", "window", "5m", "'5m' is not a number" },
		{ "ble", "idle-timeout", "31", "[ble] idle-timeout: '31' is not a number of seconds from 1 to 30" },
		{ "ble", "pairable", "true", "[ble] pairable: unknown key" },
		{ "daemon", "state-directory", "var/lib", "[daemon] state-directory: 'var/lib' is not an absolute path" },
		{ "network", "sm-url", "http://sm.example.net", "[network] sm-url: 'http://sm.example.net' is not an https://" },
		{ "network", "sm-url", "https://sm.example.net/?a=b", "is not an https://" },
		{ "network", "sm-url", "sm.example.net", "is not an https://" },
		{ "network", "sm-ca", "ca.pem", "[network] sm-ca: 'ca.pem' is not an absolute path" },
		{ "network", "poll-interval", "59", "[network] poll-interval: '59' is not a number of seconds from 60 to 604800" },
		{ "network", "poll-interval", "604801", "from 60 to 604800" },
		{ "network", "poll-interval", "6h", "'6h' is not a number" },
		{ "network", "url", "x", "[network] url: unknown key" },
		{ "mdoem", "device", "/dev/x", "[mdoem]: unknown group" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *data = with(cases[i].group, cases[i].key, cases[i].value);
		g_autoptr(GError) error = NULL;
		g_autoptr(CpConf) c = cp_conf_load_data(data, strlen(data), "t.conf", &error);

		if (c || !error || !strstr(error->message, cases[i].expect) ||
		    !g_str_has_prefix(error->message, "t.conf: "))
			g_error("[%s] %s=%s: got '%s', want '%s'", cases[i].group, cases[i].key,
				cases[i].value ? cases[i].value : "(removed)",
				error ? error->message : "success", cases[i].expect);
		g_assert_true(error->domain == G_KEY_FILE_ERROR);
	}
}

static void
test_missing_groups_and_files(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(CpConf) c = NULL;
	const char *no_modem = "[device]\nkey=k\ncertificate-url=" URL "\nmanufacturer=a\nmodel=b\nserial=c\n";

	c = cp_conf_load_data("", 0, "empty.conf", &error);
	g_assert_null(c);
	g_assert_nonnull(strstr(error->message, "empty.conf: [device]: missing"));
	g_clear_error(&error);

	c = cp_conf_load_data(no_modem, strlen(no_modem), "x.conf", &error);
	g_assert_null(c);
	g_assert_nonnull(strstr(error->message, "[modem]: missing"));
	g_clear_error(&error);

	c = cp_conf_load_data("key=v\n", 6, "nogroup.conf", &error);
	g_assert_null(c);
	g_assert_nonnull(strstr(error->message, "nogroup.conf: "));
	g_clear_error(&error);

	c = cp_conf_load("/nonexistent/cellprov.conf", &error);
	g_assert_null(c);
	g_assert_nonnull(strstr(error->message, "/nonexistent/cellprov.conf"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/daemon/conf/good", test_good);
	g_test_add_func("/daemon/conf/defaults", test_defaults);
	g_test_add_func("/daemon/conf/bad", test_bad);
	g_test_add_func("/daemon/conf/backends", test_backends);
	g_test_add_func("/daemon/conf/example", test_example);
	g_test_add_func("/daemon/conf/missing", test_missing_groups_and_files);
	return g_test_run();
}
