#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every man page renders without a single groff or man warning, and every
# docs/man/*.md is built (docs/meson.build lists them).
#   test-man-pages.sh SOURCE_DIR PAGE...
set -u
src=$1; shift
status=0

for md in "$src"/docs/man/*.md; do
	name=$(basename "$md" .md)
	found=0
	for page in "$@"; do
		[ "$(basename "$page")" = "$name" ] && found=1
	done
	if [ "$found" -eq 0 ]; then
		echo "FAIL: $md is not built (add it to docs/meson.build)"
		status=1
	fi
done

for page in "$@"; do
	warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
	if [ -n "$warnings" ]; then
		echo "FAIL: $(basename "$page"):"
		echo "$warnings" | sed 's/^/    /'
		status=1
	elif ! LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q '^NAME$'; then
		echo "FAIL: $(basename "$page") has no NAME section"
		status=1
	else
		echo "ok: $(basename "$page")"
	fi
done
exit "$status"
