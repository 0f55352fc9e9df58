#!/usr/bin/env bash
# Install the Debian packages the downstream-task builders read (SoundFonts, TTS voices, game sound effects; see
# the registrations in doppelnb.build_data.TASKS). The builders themselves install nothing: they name what is missing and stop.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=$(.venv/bin/python -c "from doppelnb.build_data import task_packages; print(' '.join(task_packages()))")
missing=$(for p in $packages; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
[ -z "$missing" ] && exit 0
echo "doppelnb: installing Debian packages for the downstream tasks: $missing"
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "doppelnb: cannot install them (not root, no sudo); tasks that need them are skipped. Install with: apt-get install $missing" >&2
  exit 0
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
