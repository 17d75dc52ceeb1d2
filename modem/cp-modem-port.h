/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where a modem's control port is: the port named by its physical place,
 * not by the number the kernel gave it. A USB module that resets (QMI DMS
 * Set Operating Mode RESET, MBIM's device reset, AT+CFUN=1,1) drops off
 * the bus and enumerates again, often as another cdc-wdm or ttyUSB; the
 * USB device's path (its DEVPATH, what udev's ID_PATH is made of) and
 * the interface number stay. The runner (cp-modem-flow.c) resolves the
 * configured port once and looks it up again by that identity.
 *
 * Pure sysfs reads below a root (/sys, or a test's fake tree), no udev.
 */
#pragma once

#include <glib.h>

typedef struct _CpPortId CpPortId;

/*
 * The identity of the port at path (a node, or a symlink to one such as
 * /dev/serial/by-id/...) below sysfs: its class (usbmisc: cdc-wdm of QMI
 * and MBIM; tty: ttyUSB, ttyACM; wwan), the USB device it is on and the
 * interface number. NULL when sysfs knows no such port (a pty, a port
 * that is gone) or it is on no USB interface.
 */
CpPortId *cp_port_id_resolve(const char *sysfs, const char *path);
void cp_port_id_free(CpPortId *id);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CpPortId, cp_port_id_free)

/* "usb 1-1 interface 4 (usbmisc)", for logs. */
const char *cp_port_id_describe(const CpPortId *id);

/*
 * The port of the same class on the same USB device and interface now:
 * the node's path (in the directory the port was resolved in), or NULL
 * while there is none.
 */
char *cp_port_id_find(const CpPortId *id, const char *sysfs);

/*
 * The control protocol the kernel's view gives the port at path (below
 * sysfs): "qmi" (a cdc-wdm of qmi_wwan, a wwan QMI port), "mbim" (a
 * cdc-wdm of cdc_mbim, a wwan MBIM port), "at" (a tty, a wwan AT port), or
 * NULL when nothing says (another driver, a pty, a port sysfs does not
 * know). A static string.
 */
const char *cp_port_protocol(const char *sysfs, const char *path);
