# SPDX-License-Identifier: LGPL-2.1-or-later
# cellprov from its release tarball (`meson dist`); scripts/release names
# this file after the version and writes the sha256.
require cellprov.inc

SRC_URI = "${CELLPROV_RELEASE_URL}/v${PV}/cellprov-${PV}.tar.xz"
SRC_URI[sha256sum] = "109851791a328d24bf1407162a166798ccdb7a7a955f4b092b4ac3283ac60084"
S = "${WORKDIR}/cellprov-${PV}"
