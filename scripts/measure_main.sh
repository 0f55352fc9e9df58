#!/usr/bin/env bash
# Time the main job (what scripts/main.sh runs, with its defaults, on tasks already built under data/) and record how
# busy the machine was: the load average before and after. Writes results/install/main_job.json (read by the README).
# Run it on an otherwise idle machine; extra arguments go to doppelnb_main.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)/main}
load=$(cut -d' ' -f1 /proc/loadavg)
.venv/bin/doppelnb_main --out "$OUT" --no-build "$@"
mkdir -p results/install
.venv/bin/python - "$OUT" "$load" <<'PY'
import json, os, sys
from pathlib import Path
out, load = sys.argv[1], float(sys.argv[2])
run = json.loads((Path(out) / "run.json").read_text())
cfg = run["config"]
record = dict(command=run["command"], finished=run["finished"], seconds=run["seconds"], timings_s=run["timings_s"],
              tasks=cfg["tasks"], folds=cfg["folds"], steps=cfg["pretrain"]["steps"],
              batch_size=cfg["pretrain"]["batch_size"], precision=cfg["pretrain"]["precision"],
              cores=os.cpu_count(), load_before=load,
              load_after=round(os.getloadavg()[0], 2))
Path("results/install/main_job.json").write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps(record, indent=2))
PY
