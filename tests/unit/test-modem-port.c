/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The port by its physical place (modem/cp-modem-port.c) over fake sysfs
 * trees laid out as the kernel lays them out: a qmi_wwan cdc-wdm, an
 * option ttyUSB (the port device below the interface), a ttyACM, a
 * by-id symlink, a pty that sysfs does not know, and a module that
 * comes back under another name, on another interface or another port.
 */
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "cp-modem-port.h"

typedef struct {
	char *root;   /* the fake sysfs */
	char *dev;    /* the fake /dev */
} Tree;

static void
put(const char *path, const char *text)
{
	g_autofree char *dir = g_path_get_dirname(path);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
ln(const char *target, const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_cmpint(symlink(target, path), ==, 0);
}

/* A port name under class on USB device usb (below a hub), interface
 * ifnum; serial: a usb-serial port device between interface and tty. */
static void
add_port(Tree *t, const char *usb, guint ifnum, const char *class, const char *name, gboolean serial)
{
	g_autofree char *intf = g_strdup_printf("%s/devices/pci0000:00/0000:00:14.0/usb3/%s/%s:1.%u",
						t->root, usb, usb, ifnum);
	g_autofree char *num = g_strdup_printf("%02x\n", ifnum);
	g_autofree char *parent = serial ? g_build_filename(intf, name, NULL) : g_strdup(intf);
	g_autofree char *port = g_build_filename(parent, class, name, NULL);
	g_autofree char *entry = g_build_filename(t->root, "class", class, name, NULL);
	g_autofree char *f = g_build_filename(intf, "bInterfaceNumber", NULL);
	g_autofree char *dev = g_build_filename(port, "device", NULL);
	g_autofree char *node = g_build_filename(t->dev, name, NULL);

	put(f, num);
	g_free(f);
	f = g_build_filename(port, "uevent", NULL);
	put(f, "DEVNAME=x\n");
	ln(parent, dev);
	ln(port, entry);
	put(node, "");
}

/* The driver bound to interface ifnum of usb (a link into the bus's
 * drivers, as the kernel makes it). */
static void
bind_driver(Tree *t, const char *usb, guint ifnum, const char *driver)
{
	g_autofree char *link = g_strdup_printf("%s/devices/pci0000:00/0000:00:14.0/usb3/%s/%s:1.%u/driver",
						t->root, usb, usb, ifnum);
	g_autofree char *target = g_build_filename(t->root, "bus", "usb", "drivers", driver, NULL);

	g_assert_cmpint(g_mkdir_with_parents(target, 0755), ==, 0);
	ln(target, link);
}

static void
del_port(Tree *t, const char *class, const char *name)
{
	g_autofree char *entry = g_build_filename(t->root, "class", class, name, NULL);
	g_autofree char *node = g_build_filename(t->dev, name, NULL);

	g_assert_cmpint(g_unlink(entry), ==, 0);
	g_unlink(node);
}

static void
tree_new(Tree *t)
{
	g_autofree char *top = g_dir_make_tmp("cp-port-XXXXXX", NULL);

	g_assert_nonnull(top);
	t->root = g_build_filename(top, "sys", NULL);
	t->dev = g_build_filename(top, "dev", NULL);
	g_assert_cmpint(g_mkdir_with_parents(t->dev, 0755), ==, 0);
	add_port(t, "3-1", 4, "usbmisc", "cdc-wdm0", FALSE);
	add_port(t, "3-1", 2, "tty", "ttyUSB2", TRUE);
	add_port(t, "3-1", 3, "tty", "ttyUSB3", TRUE);
	add_port(t, "3-2", 0, "tty", "ttyACM0", FALSE);
}

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
tree_free(Tree *t)
{
	g_autofree char *top = g_path_get_dirname(t->root);

	nftw(top, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
	g_free(t->root);
	g_free(t->dev);
}

static char *
node(Tree *t, const char *name)
{
	return g_build_filename(t->dev, name, NULL);
}

static void
test_resolve(void)
{
	Tree t;
	g_autofree char *wdm = NULL, *usb2 = NULL, *acm = NULL, *byid = NULL, *pty = NULL;
	g_autoptr(CpPortId) a = NULL, b = NULL, c = NULL, d = NULL;

	tree_new(&t);
	wdm = node(&t, "cdc-wdm0");
	usb2 = node(&t, "ttyUSB2");
	acm = node(&t, "ttyACM0");
	a = cp_port_id_resolve(t.root, wdm);
	g_assert_nonnull(a);
	g_assert_cmpstr(cp_port_id_describe(a), ==, "usb 3-1 interface 4 (usbmisc)");
	b = cp_port_id_resolve(t.root, usb2);
	g_assert_nonnull(b);
	g_assert_cmpstr(cp_port_id_describe(b), ==, "usb 3-1 interface 2 (tty)");
	c = cp_port_id_resolve(t.root, acm);
	g_assert_nonnull(c);
	g_assert_cmpstr(cp_port_id_describe(c), ==, "usb 3-2 interface 0 (tty)");

	/* a by-id symlink resolves to its node, and finds it again there */
	byid = node(&t, "serial-by-id-if02-port0");
	ln(usb2, byid);
	d = cp_port_id_resolve(t.root, byid);
	g_assert_nonnull(d);
	g_assert_cmpstr(cp_port_id_describe(d), ==, "usb 3-1 interface 2 (tty)");
	{
		g_autofree char *found = cp_port_id_find(d, t.root);

		g_assert_cmpstr(found, ==, usb2);
	}

	/* unknown to sysfs: a pty, a path that is not there */
	pty = node(&t, "pty");
	put(pty, "");
	g_assert_null(cp_port_id_resolve(t.root, pty));
	g_assert_null(cp_port_id_resolve(t.root, "/nonexistent/cdc-wdm7"));
	tree_free(&t);
}

static void
test_find(void)
{
	Tree t;
	g_autofree char *wdm = NULL, *usb2 = NULL;
	g_autoptr(CpPortId) a = NULL, b = NULL;
	char *found;

	tree_new(&t);
	wdm = node(&t, "cdc-wdm0");
	usb2 = node(&t, "ttyUSB2");
	a = cp_port_id_resolve(t.root, wdm);
	b = cp_port_id_resolve(t.root, usb2);
	found = cp_port_id_find(a, t.root);
	g_assert_cmpstr(found, ==, wdm);
	g_free(found);

	/* the module reboots: gone */
	del_port(&t, "usbmisc", "cdc-wdm0");
	del_port(&t, "tty", "ttyUSB2");
	g_assert_null(cp_port_id_find(a, t.root));
	g_assert_null(cp_port_id_find(b, t.root));

	/* another module's port on another USB port is not it, nor a port
	 * of the same class on another interface */
	add_port(&t, "3-3", 4, "usbmisc", "cdc-wdm1", FALSE);
	g_assert_null(cp_port_id_find(a, t.root));
	add_port(&t, "3-1", 5, "usbmisc", "cdc-wdm2", FALSE);
	g_assert_null(cp_port_id_find(a, t.root));

	/* back under new names, on the same device and interfaces */
	add_port(&t, "3-1", 4, "usbmisc", "cdc-wdm3", FALSE);
	add_port(&t, "3-1", 2, "tty", "ttyUSB5", TRUE);
	found = cp_port_id_find(a, t.root);
	g_assert_true(g_str_has_suffix(found, "/dev/cdc-wdm3"));
	g_free(found);
	found = cp_port_id_find(b, t.root);
	g_assert_true(g_str_has_suffix(found, "/dev/ttyUSB5"));
	g_free(found);
	tree_free(&t);
}

static const char *
protocol(Tree *t, const char *name)
{
	g_autofree char *path = node(t, name);
	const char *p = cp_port_protocol(t->root, path);

	return p ? p : "unknown";
}

/* backend=auto without ModemManager goes by what the kernel presents */
static void
test_protocol(void)
{
	Tree t;
	g_autofree char *type = NULL;

	tree_new(&t);
	/* cdc-wdm: by the interface's driver; none bound says nothing */
	g_assert_cmpstr(protocol(&t, "cdc-wdm0"), ==, "unknown");
	bind_driver(&t, "3-1", 4, "qmi_wwan");
	g_assert_cmpstr(protocol(&t, "cdc-wdm0"), ==, "qmi");
	add_port(&t, "3-4", 12, "usbmisc", "cdc-wdm1", FALSE);
	bind_driver(&t, "3-4", 12, "cdc_mbim");
	g_assert_cmpstr(protocol(&t, "cdc-wdm1"), ==, "mbim");
	add_port(&t, "3-5", 0, "usbmisc", "cdc-wdm2", FALSE);
	bind_driver(&t, "3-5", 0, "huawei_cdc_ncm");
	g_assert_cmpstr(protocol(&t, "cdc-wdm2"), ==, "unknown");
	/* ttys: an option ttyUSB, a CDC ACM port */
	bind_driver(&t, "3-1", 2, "option");
	g_assert_cmpstr(protocol(&t, "ttyUSB2"), ==, "at");
	g_assert_cmpstr(protocol(&t, "ttyACM0"), ==, "at");
	/* wwan ports say their type */
	add_port(&t, "3-6", 3, "wwan", "wwan0at0", FALSE);
	add_port(&t, "3-6", 4, "wwan", "wwan0mbim0", FALSE);
	add_port(&t, "3-6", 5, "wwan", "wwan0qcdm0", FALSE);
	g_assert_cmpstr(protocol(&t, "wwan0at0"), ==, "unknown");
	type = g_build_filename(t.root, "class", "wwan", "wwan0at0", "type", NULL);
	put(type, "AT\n");
	g_free(type);
	type = g_build_filename(t.root, "class", "wwan", "wwan0mbim0", "type", NULL);
	put(type, "MBIM\n");
	g_free(type);
	type = g_build_filename(t.root, "class", "wwan", "wwan0qcdm0", "type", NULL);
	put(type, "QCDM\n");
	g_assert_cmpstr(protocol(&t, "wwan0at0"), ==, "at");
	g_assert_cmpstr(protocol(&t, "wwan0mbim0"), ==, "mbim");
	g_assert_cmpstr(protocol(&t, "wwan0qcdm0"), ==, "unknown");
	/* a wwan port of a PCIe module (MHI): on no USB interface */
	{
		g_autofree char *port = g_build_filename(t.root, "devices", "pci0000:00", "0000:00:1c.0",
							 "0000:01:00.0", "wwan0", "wwan0mbim1", NULL);
		g_autofree char *entry = g_build_filename(t.root, "class", "wwan", "wwan0mbim1", NULL);
		g_autofree char *f = g_build_filename(port, "type", NULL);
		g_autofree char *n = node(&t, "wwan0mbim1");

		put(f, "MBIM\n");
		ln(port, entry);
		put(n, "");
		g_assert_null(cp_port_id_resolve(t.root, n));
		g_assert_cmpstr(protocol(&t, "wwan0mbim1"), ==, "mbim");
	}
	/* sysfs does not know a pty */
	{
		g_autofree char *pty = node(&t, "pts-7");

		put(pty, "");
		g_assert_cmpstr(protocol(&t, "pts-7"), ==, "unknown");
	}
	tree_free(&t);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/modem/port/protocol", test_protocol);
	g_test_add_func("/modem/port/resolve", test_resolve);
	g_test_add_func("/modem/port/find", test_find);
	return g_test_run();
}
