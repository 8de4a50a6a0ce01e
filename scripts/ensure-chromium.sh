#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never a browser build that Playwright downloads:
# machines here reach only the package registries), and write their test video with Debian's
# ffmpeg. Install them with apt-get when they are missing.
set -u
CHROMIUM=/usr/bin/chromium
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "${missing[*]} missing; installing Debian's packages..." >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
if $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2; then
  [ -x "$CHROMIUM" ] && command -v ffmpeg >/dev/null && exit 0
fi
echo "ERROR: the browser tests need $CHROMIUM and ffmpeg, which could not be installed (apt-get install chromium ffmpeg)." >&2
exit 1
