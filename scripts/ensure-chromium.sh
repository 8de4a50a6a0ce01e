#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never a browser build that Playwright downloads:
# machines here reach only the package registries). Install it with apt-get when it is missing.
set -u
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
echo "chromium is missing; installing Debian's package..." >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
if $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2; then
  [ -x "$CHROMIUM" ] && exit 0
fi
echo "ERROR: the browser tests need $CHROMIUM and it could not be installed (apt-get install chromium)." >&2
exit 1
