#!/usr/bin/env bash
# Set up (first run only: .venv, then the Debian packages of the downstream tasks) and run the main job:
# build the tasks, pretrain on doppelgängers, evaluate, write results/ (pass --help for the options).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_data.sh
exec .venv/bin/doppelnb_main "$@"
