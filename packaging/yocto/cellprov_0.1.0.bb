# SPDX-License-Identifier: LGPL-2.1-or-later
SUMMARY = "cellprov: operator credentials for a headless cellular device from one tap of a phone"
DESCRIPTION = "The device side of cellprov: cellprovd (NFC tag, profile \
verification, USIM provisioning over QMI or ModemManager, crash-safe journal, \
D-Bus API) and cellprovctl."
HOMEPAGE = "https://cellprov.example.org"
SECTION = "net"
LICENSE = "LGPL-2.1-or-later"
LIC_FILES_CHKSUM = "file://README.md;beginline=1;endline=1;md5=${CELLPROV_README_MD5}"
CELLPROV_README_MD5 ?= "0"

SRC_URI = "${CELLPROV_SRC_URI}"
CELLPROV_SRC_URI ?= "git://github.com/cellprov/cellprov.git;protocol=https;branch=main"
SRCREV ?= "${AUTOREV}"
S = "${WORKDIR}/git"

DEPENDS = "glib-2.0 glib-2.0-native openssl"

inherit meson pkgconfig systemd

PACKAGECONFIG ??= "nfc qmi ${@bb.utils.filter('DISTRO_FEATURES', 'systemd', d)} udev"
PACKAGECONFIG[nfc] = "-Dnfc=enabled,-Dnfc=disabled,libnfc"
PACKAGECONFIG[qmi] = "-Dqmi=enabled,-Dqmi=disabled,libqmi"
PACKAGECONFIG[mm] = "-Dmm=enabled,-Dmm=disabled,modemmanager"
PACKAGECONFIG[systemd] = "-Dsystemd=enabled,-Dsystemd=disabled,systemd"
PACKAGECONFIG[udev] = "-Dudev=enabled,-Dudev=disabled"

# The device needs neither the network side nor the fuzzers.
EXTRA_OEMESON += "-Dnetwork=disabled -Dble=disabled -Dfuzz=disabled"

SYSTEMD_SERVICE:${PN} = "cellprovd.service"
# udev starts it when the modem or the reader appears
SYSTEMD_AUTO_ENABLE:${PN} = "disable"

FILES:${PN} += " \
    ${datadir}/dbus-1/system.d/org.cellprov.Daemon1.conf \
    ${datadir}/dbus-1/interfaces/org.cellprov.Daemon1.xml \
    ${nonarch_base_libdir}/udev/rules.d/80-cellprov.rules \
    ${systemd_system_unitdir}/cellprovd.service \
"
RDEPENDS:${PN} += "dbus"
RRECOMMENDS:${PN} += "${@bb.utils.contains('PACKAGECONFIG', 'qmi', 'libqmi-utils', '', d)}"

# The identity (key, certificate, cellprov.conf, ADM1) is made per device
# at the factory by cellprov-mfg and written to /etc/cellprov by the
# production line, not by this recipe.
do_install:append() {
    install -d -m 0700 ${D}${sysconfdir}/cellprov
}
