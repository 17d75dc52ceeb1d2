/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel's side of a USB module coming and going, in a fake sysfs
 * below a directory: a USB device (its port path on the bus, e.g. 1-1),
 * one interface with its bInterfaceNumber, and the port's class entry
 * (class/usbmisc/cdc-wdm0, class/tty/ttyUSB2) linked to it, as
 * cellprovd's port lookup (modem/cp-modem-port.c) reads them. A module
 * that reboots leaves the bus (the whole USB device goes) and enumerates
 * again, its port perhaps under another name.
 */
#pragma once

#include <glib.h>

/* The USB device usb with interface (port name under class) appears. */
gboolean cp_sim_sysfs_add(const char *root, const char *usb, guint interface, const char *class,
			  const char *name, GError **error);
/* The USB device and its port (name under class) go. */
void cp_sim_sysfs_remove(const char *root, const char *usb, const char *class, const char *name);
