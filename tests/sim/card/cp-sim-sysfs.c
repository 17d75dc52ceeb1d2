/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A USB module in a fake sysfs (cp-sim-sysfs.h). */
#include "cp-sim-sysfs.h"

#include <errno.h>
#include <ftw.h>
#include <unistd.h>
#include <glib/gstdio.h>

static char *
device_dir(const char *root, const char *usb)
{
	return g_build_filename(root, "devices", "cp-sim", "usb1", usb, NULL);
}

static gboolean
put(const char *dir, const char *file, const char *text, GError **error)
{
	g_autofree char *path = g_build_filename(dir, file, NULL);

	return g_file_set_contents(path, text, -1, error);
}

static gboolean
link_to(const char *target, const char *path, GError **error)
{
	g_unlink(path);
	if (symlink(target, path) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "symlink %s: %s",
			    path, g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

gboolean
cp_sim_sysfs_add(const char *root, const char *usb, guint interface, const char *class,
		 const char *name, GError **error)
{
	g_autofree char *dev = device_dir(root, usb);
	g_autofree char *ifname = g_strdup_printf("%s:1.%u", usb, interface);
	g_autofree char *intf = g_build_filename(dev, ifname, NULL);
	g_autofree char *port = g_build_filename(intf, class, name, NULL);
	g_autofree char *classdir = g_build_filename(root, "class", class, NULL);
	g_autofree char *entry = g_build_filename(classdir, name, NULL);
	g_autofree char *number = g_strdup_printf("%02x\n", interface);
	g_autofree char *uevent = g_strdup_printf("DEVNAME=%s\n", name);
	g_autofree char *port_link = g_build_filename(port, "device", NULL);
	g_autofree char *target = g_build_filename("..", "..", "devices", "cp-sim", "usb1", usb, ifname,
						   class, name, NULL);

	if (g_mkdir_with_parents(port, 0755) < 0 || g_mkdir_with_parents(classdir, 0755) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", port,
			    g_strerror(errno));
		return FALSE;
	}
	/* a Quectel-like module; the interface as the kernel numbers it */
	return put(dev, "idVendor", "2c7c\n", error) && put(dev, "idProduct", "0125\n", error) &&
	       put(intf, "bInterfaceNumber", number, error) && put(port, "uevent", uevent, error) &&
	       link_to("../..", port_link, error) && link_to(target, entry, error);
}

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
cp_sim_sysfs_remove(const char *root, const char *usb, const char *class, const char *name)
{
	g_autofree char *dev = device_dir(root, usb);
	g_autofree char *entry = g_build_filename(root, "class", class, name, NULL);

	g_unlink(entry);
	nftw(dev, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}
