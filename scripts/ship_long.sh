#!/usr/bin/env bash
# The shipped encoder: the main job's recipe (the 'speedrun' preset) trained for 16,000 steps (≈ 1 M doppelgänger pairs) beside its
# δ = 1 control, evaluated like the main job into results/long/, then copied into checkpoints/ (encoder, model card, run.json, scores)
# and doppelnb/weights/ (the encoder, package data). The learning curve `doppelnb_speedrun --curve ntxent-head-adamw-d0.05-wave-body-fast`
# trains exactly these two runs: when it has run they are reused (linked, not copied); otherwise they train here, resumably (rerun
# after a kill). Extra arguments go to doppelnb_main.
set -euo pipefail
cd "$(dirname "$0")/.."
entry=ntxent-head-adamw-d0.05-wave-body-fast
curve=results/speedrun/curves/$entry
out=results/long
steps=16000
mkdir -p "$out"
for link in "pretrain:$curve" "pretrain_control:$curve ~ctrl"; do
    name=${link%%:*}; run=${link#*:}
    [ -e "$out/$name" ] || [ ! -f "$run/last.pt" ] && continue
    # a curve run stopped half-way resumes with its own command, which scores its remaining points
    if ! grep -q "^$steps," "$run/curve.csv" 2>/dev/null; then
        echo "ship_long: $run has not reached step $steps; finish it first: .venv/bin/doppelnb_speedrun --curve $entry" >&2
        exit 2
    fi
    ln -s "$(realpath "$run")" "$out/$name"
done
.venv/bin/doppelnb_main --steps "$steps" --out "$out" --no-build "$@"
cp "$out"/{small_cnn_doppelgangers.pt,model_card.md,run.json,scores.csv,paired.csv} checkpoints/
cp "$out/small_cnn_doppelgangers.pt" doppelnb/weights/
echo "shipped: checkpoints/ and doppelnb/weights/ now hold the encoder of $out (card: checkpoints/model_card.md)"
