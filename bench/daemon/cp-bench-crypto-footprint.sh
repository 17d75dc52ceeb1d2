#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the crypto-footprint programs given (none, OpenSSL, Mbed TLS), each
# three times, after writing the page cache back (a just-linked program is
# dirty page cache that smaps counts as private dirty memory).
set -eu
sync
for _ in 1 2 3; do
	for prog in "$@"; do
		"$prog"
	done
done
