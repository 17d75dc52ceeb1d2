/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The port by its physical place (cp-modem-port.h). In sysfs a class
 * entry (class/usbmisc/cdc-wdm0) links to the port's device directory,
 * whose "device" link leads to the USB interface (usb-serial ports: to
 * the port device below the interface). The interface directory holds
 * bInterfaceNumber; its parent is the USB device, named by its port path
 * on the bus (1-1.2), which is what stays when the module enumerates
 * again.
 */
#define G_LOG_DOMAIN "cellprov-modem"

#include <stdlib.h>
#include <string.h>

#include "cp-modem-port.h"

static const char *const classes[] = { "usbmisc", "tty", "wwan" };

struct _CpPortId {
	char *class;
	char *usb;                        /* the USB device, relative to sysfs */
	guint interface;
	char *dir;                        /* where the port's node is */
	char *text;
};

void
cp_port_id_free(CpPortId *id)
{
	if (!id)
		return;
	g_free(id->class);
	g_free(id->usb);
	g_free(id->dir);
	g_free(id->text);
	g_free(id);
}

const char *
cp_port_id_describe(const CpPortId *id)
{
	return id->text;
}


static gboolean
read_interface(const char *dir, guint *out)
{
	g_autofree char *file = g_build_filename(dir, "bInterfaceNumber", NULL);
	g_autofree char *s = NULL;
	guint64 n;

	if (!g_file_get_contents(file, &s, NULL, NULL))
		return FALSE;
	g_strstrip(s);
	if (!g_ascii_string_to_unsigned(s, 16, 0, 255, &n, NULL))
		return FALSE;
	*out = (guint)n;
	return TRUE;
}

/* The kernel driver bound to a device directory, or NULL. */
static char *
driver_of(const char *dir)
{
	g_autofree char *link = g_build_filename(dir, "driver", NULL);
	g_autofree char *target = g_file_read_link(link, NULL);

	return target ? g_path_get_basename(target) : NULL;
}

/* class/<class>/<name>: the USB device and interface it sits on, and
 * (driver not NULL) the interface's driver. */
static gboolean
locate(const char *sysfs, const char *class, const char *name, char **usb, guint *interface,
       char **driver)
{
	g_autofree char *link = g_build_filename(sysfs, "class", class, name, "device", NULL);
	g_autofree char *root = realpath(sysfs, NULL);
	g_autofree char *dir = root ? realpath(link, NULL) : NULL;
	gsize n = root ? strlen(root) : 0;

	/* up from the port's device to the interface, within sysfs */
	while (dir && strncmp(dir, root, n) == 0 && dir[n] == '/') {
		char *slash;

		if (read_interface(dir, interface)) {
			if (driver)
				*driver = driver_of(dir);
			slash = strrchr(dir, '/');
			*slash = '\0';
			if (strlen(dir) <= n)
				return FALSE;
			*usb = g_strdup(dir + n + 1);
			return TRUE;
		}
		slash = strrchr(dir, '/');
		*slash = '\0';
	}
	return FALSE;
}

/*
 * The control protocol the kernel's view gives a port, as ModemManager
 * tells QMI from MBIM on a cdc-wdm port before probing it (by the driver
 * of its USB interface: qmi_wwan or cdc_mbim): a wwan port says its type
 * in its "type" attribute (drivers/net/wwan/wwan_core.c, type_show: AT,
 * MBIM, QMI, ...); a tty speaks AT. NULL: nothing says.
 */
static const char *
protocol_of(const char *sysfs, const char *class, const char *name, const char *driver)
{
	if (strcmp(class, "tty") == 0)
		return "at";
	if (strcmp(class, "wwan") == 0) {
		g_autofree char *file = g_build_filename(sysfs, "class", class, name, "type", NULL);
		g_autofree char *type = NULL;

		if (!g_file_get_contents(file, &type, NULL, NULL))
			return NULL;
		g_strstrip(type);
		if (strcmp(type, "AT") == 0)
			return "at";
		if (strcmp(type, "MBIM") == 0)
			return "mbim";
		if (strcmp(type, "QMI") == 0)
			return "qmi";
		return NULL;
	}
	if (g_strcmp0(driver, "cdc_mbim") == 0)
		return "mbim";
	if (g_strcmp0(driver, "qmi_wwan") == 0)
		return "qmi";
	return NULL;
}

static const char *
class_of(const char *sysfs, const char *name)
{
	for (gsize i = 0; i < G_N_ELEMENTS(classes); i++) {
		g_autofree char *entry = g_build_filename(sysfs, "class", classes[i], name, NULL);

		if (g_file_test(entry, G_FILE_TEST_EXISTS))
			return classes[i];
	}
	return NULL;
}

/* The port's class and node name at path, following a symlink to the
 * node (/dev/serial/by-id/...); *dir: the directory of the node. */
static const char *
port_class(const char *sysfs, const char *path, char **name, char **dir)
{
	g_autofree char *real = NULL;
	const char *class;

	*name = g_path_get_basename(path);
	*dir = g_path_get_dirname(path);
	class = class_of(sysfs, *name);
	if (class)
		return class;
	real = realpath(path, NULL);
	if (!real)
		return NULL;
	g_free(*name);
	g_free(*dir);
	*name = g_path_get_basename(real);
	*dir = g_path_get_dirname(real);
	return class_of(sysfs, *name);
}

CpPortId *
cp_port_id_resolve(const char *sysfs, const char *path)
{
	g_autofree char *name = NULL, *dir = NULL;
	const char *class = port_class(sysfs, path, &name, &dir);
	CpPortId *id;
	char *usb = NULL;
	guint interface = 0;

	if (!class || !locate(sysfs, class, name, &usb, &interface, NULL))
		return NULL;
	id = g_new0(CpPortId, 1);
	id->class = g_strdup(class);
	id->usb = usb;
	id->interface = interface;
	id->dir = g_steal_pointer(&dir);
	id->text = g_strdup_printf("usb %s interface %u (%s)", strrchr(usb, '/') ? strrchr(usb, '/') + 1 : usb,
				   interface, class);
	return id;
}

const char *
cp_port_protocol(const char *sysfs, const char *path)
{
	g_autofree char *name = NULL, *dir = NULL, *usb = NULL, *driver = NULL;
	const char *class = port_class(sysfs, path, &name, &dir);
	guint interface;

	if (!class)
		return NULL;
	/* a wwan port need not be on USB (MHI over PCIe): its type says */
	if (strcmp(class, "usbmisc") == 0)
		locate(sysfs, class, name, &usb, &interface, &driver);
	return protocol_of(sysfs, class, name, driver);
}

char *
cp_port_id_find(const CpPortId *id, const char *sysfs)
{
	g_autofree char *path = g_build_filename(sysfs, "class", id->class, NULL);
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *usb = NULL;
		guint interface;

		if (locate(sysfs, id->class, name, &usb, &interface, NULL) && interface == id->interface &&
		    strcmp(usb, id->usb) == 0)
			return g_build_filename(id->dir, name, NULL);
	}
	return NULL;
}
