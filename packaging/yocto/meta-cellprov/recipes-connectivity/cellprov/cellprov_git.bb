# SPDX-License-Identifier: LGPL-2.1-or-later
# cellprov from git, pinned to the commit of the last release (written by
# scripts/release); for building a later commit, set SRCREV in local.conf
# and PREFERRED_VERSION_cellprov = "%+git%". Never chosen by default.
require cellprov.inc

DEFAULT_PREFERENCE = "-1"
CELLPROV_GIT_VERSION = "0.1.0"
PV = "${CELLPROV_GIT_VERSION}+git"
SRC_URI = "${CELLPROV_GIT_URL};branch=main"
SRCREV = "545481563dc1441820465209567a63a381c93a06"
S = "${WORKDIR}/git"
