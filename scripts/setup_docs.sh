#!/usr/bin/env bash
# Install headless Chromium from Debian for the docs site's browser test (tests/test_docs.py loads every page of the
# built site in it). Nothing to do when a Chromium is on PATH already or $DOPPELNB_CHROMIUM names one.
# Debian 12 packages the headless browser alone as chromium-headless-shell (98 MB download, 302 MB installed, about
# 30 s with apt-get update here); where that package does not exist, the full chromium (123 MB, 410 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
for browser in chromium-headless-shell chromium chromium-browser google-chrome google-chrome-stable; do
  command -v "$browser" >/dev/null && exit 0
done
if [ -n "${DOPPELNB_CHROMIUM:-}" ] && command -v "$DOPPELNB_CHROMIUM" >/dev/null; then exit 0; fi
hint="the docs browser test will fail until a headless Chromium is installed (Debian: apt-get install chromium-headless-shell)"
if ! command -v apt-get >/dev/null; then
  echo "doppelnb: no apt-get here: $hint, or set DOPPELNB_CHROMIUM to a Chromium or Chrome binary" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "doppelnb: cannot install Chromium (not root, no sudo): $hint" >&2
  exit 0
fi
$sudo apt-get update -qq || true
package=chromium-headless-shell
apt-cache show "$package" >/dev/null 2>&1 || package=chromium
echo "doppelnb: installing $package (Debian) for the docs site's browser test"
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null; then
  echo "doppelnb: apt-get install $package failed: $hint" >&2
fi
