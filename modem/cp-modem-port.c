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

/* class/<class>/<name>: the USB device and interface it sits on. */
static gboolean
locate(const char *sysfs, const char *class, const char *name, char **usb, guint *interface)
{
	g_autofree char *link = g_build_filename(sysfs, "class", class, name, "device", NULL);
	g_autofree char *root = realpath(sysfs, NULL);
	g_autofree char *dir = root ? realpath(link, NULL) : NULL;
	gsize n = root ? strlen(root) : 0;

	/* up from the port's device to the interface, within sysfs */
	while (dir && strncmp(dir, root, n) == 0 && dir[n] == '/') {
		char *slash;

		if (read_interface(dir, interface)) {
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

CpPortId *
cp_port_id_resolve(const char *sysfs, const char *path)
{
	g_autofree char *name = g_path_get_basename(path);
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *real = NULL;
	const char *class = class_of(sysfs, name);
	CpPortId *id;
	char *usb = NULL;
	guint interface = 0;

	if (!class) {
		/* a symlink to the node (/dev/serial/by-id/...) */
		real = realpath(path, NULL);
		if (!real)
			return NULL;
		g_free(name);
		g_free(dir);
		name = g_path_get_basename(real);
		dir = g_path_get_dirname(real);
		class = class_of(sysfs, name);
	}
	if (!class || !locate(sysfs, class, name, &usb, &interface))
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

char *
cp_port_id_find(const CpPortId *id, const char *sysfs)
{
	g_autofree char *path = g_build_filename(sysfs, "class", id->class, NULL);
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *usb = NULL;
		guint interface;

		if (locate(sysfs, id->class, name, &usb, &interface) && interface == id->interface &&
		    strcmp(usb, id->usb) == 0)
			return g_build_filename(id->dir, name, NULL);
	}
	return NULL;
}
