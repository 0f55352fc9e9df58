#!/usr/bin/env bash
# Measure `pip install` of doppelnb's wheel into a venv that already pins other versions of its dependencies (as a
# user's environment for another tool would): wheel size, install time, venv size, the versions pip kept, `pip check`,
# and a smoke run (HEAR embeddings of the shipped encoder, doppelnb_pairs, 2 pretraining steps).
# Writes results/install/install.json (read by the README). Needs PyPI; takes a few minutes and ~6 GB of disk in $WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${WORK:-$(mktemp -d)}; mkdir -p "$WORK"
PY=${PYTHON:-python3}
OTHERS="numpy==1.26.4 pandas==2.2.3 scipy==1.13.1 scikit-learn==1.5.2 matplotlib==3.8.4 pytorch-lightning==2.4.0"
printf '%s\n' $OTHERS > "$WORK/others.txt"
rm -rf "$WORK/wheel" "$WORK/venv"
"$ROOT/.venv/bin/python" -m pip wheel --quiet --no-deps -w "$WORK/wheel" "$ROOT"
rm -rf "$ROOT/build/lib" "$ROOT/build/bdist."*
wheel=$(ls "$WORK"/wheel/doppelnb-*.whl)
"$PY" -m venv "$WORK/venv"
t0=$(date +%s)
"$WORK/venv/bin/pip" install --quiet $OTHERS
t1=$(date +%s)
before=$(du -sm "$WORK/venv" | cut -f1)
"$WORK/venv/bin/pip" install --quiet -c "$WORK/others.txt" "$wheel"
t2=$(date +%s)
after=$(du -sm "$WORK/venv" | cut -f1)
check=$("$WORK/venv/bin/pip" check 2>&1 || true)
cd "$WORK"
smoke=$("$WORK/venv/bin/python" -c "
import torch; from doppelnb.hear import load_model, get_scene_embeddings
e = get_scene_embeddings(torch.randn(2, 16000) * 0.1, load_model(''))
print(tuple(e.shape) == (2, 512) and bool(torch.isfinite(e).all()))" 2>&1 | tail -1)
"$WORK/venv/bin/doppelnb_pairs" --out "$WORK/pairs" --n 2 >/dev/null
"$WORK/venv/bin/doppelnb_pretrain" --preset cpu --steps 2 --batch-size 8 --out "$WORK/run" --no-progress >/dev/null 2>&1
cd "$ROOT"
mkdir -p results/install
"$ROOT/.venv/bin/python" - "$WORK" "$wheel" "$t0" "$t1" "$t2" "$before" "$after" "$check" "$smoke" "$OTHERS" <<'PY'
import json, subprocess, sys, time
from pathlib import Path
work, wheel, t0, t1, t2, before, after, check, smoke, others = sys.argv[1:]
pip = subprocess.run([f"{work}/venv/bin/pip", "list", "--format", "json"], capture_output=True, text=True).stdout
versions = {p["name"].lower(): p["version"] for p in json.loads(pip)}
keep = ["doppelnb", "torch", "torchaudio", "torchsynth", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib",
        "pytorch-lightning", "seaborn", "soundfile", "setuptools"]
record = dict(date=time.strftime("%Y-%m-%d"), wheel=Path(wheel).name, wheel_mb=round(Path(wheel).stat().st_size / 2**20, 2),
              others=others.split(), others_install_s=int(t1) - int(t0), wheel_install_s=int(t2) - int(t1),
              venv_mb_before=int(before), venv_mb_after=int(after), pip_check=check.strip(), smoke_ok=smoke == "True",
              pretrain_ok=(Path(work) / "run" / "last.pt").is_file(), pairs_ok=(Path(work) / "pairs" / "params.csv").is_file(),
              kept_pins=all(versions.get(p.split("==")[0].lower()) == p.split("==")[1] for p in others.split()),
              versions={k: versions.get(k) for k in keep})
Path("results/install/install.json").write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps(record, indent=2))
PY
