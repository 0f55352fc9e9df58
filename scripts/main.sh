#!/usr/bin/env bash
# Set up the environment (first run only) and run the main job; results go to results/ (pass --out DIR to change).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/doppelnb_main "$@"
