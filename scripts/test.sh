#!/usr/bin/env bash
# Set up the environment (first run only) and run every test:
#   1. doppelnb/ and README.md are in sync with the notebooks (nbdev_export into a scratch copy, then diff)
#   2. every notebook, top to bottom in a Jupyter kernel as "Run All" runs it, `#| slow` cells in read-back mode
#      (they read back the committed results and skip minutes of work: doppelnb.readback)
#   3. pytest tests/ (command-line entry points, bad input, reproducibility, docs build, the docs site served over
#      HTTP and loaded in headless Chromium: scripts/setup_docs.sh installs Chromium from Debian on first use)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_docs.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg
start=$(date +%s)

echo "== 1/3 library and README in sync with nbs/"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r settings.ini pyproject.toml nbs doppelnb "$scratch"/
(cd "$scratch" && nbdev_export)
if ! diff -r -x __pycache__ doppelnb "$scratch/doppelnb"; then
  echo "FAIL: doppelnb/ is out of sync with nbs/: run nbdev_export and commit doppelnb/" >&2
  exit 1
fi
python scripts/docs.py readme --check

echo "== 2/3 notebooks, every cell top to bottom (#| slow cells in read-back mode)"
python scripts/run_notebooks.py --read-back --workers 2

echo "== 3/3 pytest tests/"
pytest -q tests

echo "all tests passed in $(( $(date +%s) - start )) s"
