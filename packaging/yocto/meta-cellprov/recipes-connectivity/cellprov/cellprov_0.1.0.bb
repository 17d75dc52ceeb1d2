# SPDX-License-Identifier: LGPL-2.1-or-later
# cellprov from its release tarball (`meson dist`); scripts/release names
# this file after the version and writes the sha256.
require cellprov.inc

SRC_URI = "${CELLPROV_RELEASE_URL}/v${PV}/cellprov-${PV}.tar.xz"
SRC_URI[sha256sum] = "0000000000000000000000000000000000000000000000000000000000000000"
S = "${WORKDIR}/cellprov-${PV}"
