/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * For programs that use OpenSSL beside libcellprov-protocol (the network
 * side, the tools, the tests), and for the OpenSSL backend itself: a CpKey
 * of the installed library is an EVP_PKEY, and with this header first
 * the compiler knows it, so one pointer serves both APIs. Mbed TLS builds
 * (cellprovd's) have no such header.
 */
#pragma once

#ifdef CP_CRYPTO_KEY_OPAQUE
#error "include cp-crypto-openssl.h before the other cellprov headers"
#endif
#define CP_CRYPTO_OPENSSL 1

#include "cp-crypto.h"
