#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with the pinned stack.
# Works on a fresh Linux x86-64 machine with Python >= 3.10 and access to PyPI; no GPU needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.doppelnb-installed"
want=$(cat settings.ini constraints.txt setup.py | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0  # already set up with these exact requirements
fi
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip<27"
# The constraints file pins every package, torch==2.11.0 + torchaudio==2.11.0 included.
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
echo "$want" > "$stamp"
echo "doppelnb: environment ready in $VENV ($(( $(date +%s) - start )) s)"
