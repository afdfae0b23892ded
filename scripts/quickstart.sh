#!/usr/bin/env bash
# make quickstart: the main job of qat on a fresh clone.
#   1. the quickstart sweep (configs/sweeps/quickstart.yaml): 4 sizes × 5 formats, W=A,
#      and its fp32 data-axis companion (quickstart-data.yaml), 2 workers
#   2. the unified law fitted to every run, with bootstrap intervals → runs/quickstart/fit.h5
#   3. law, capacity and frontier plots → runs/quickstart/*.svg
#   4. a summary: ρ per format, fitted against predicted from GMSE
# Idempotent: finished runs are skipped, so a second call only refits and redraws.
set -euo pipefail
build=${1:-build}
qat="$build/cli/qat"
out=runs/quickstart
t0=$(date +%s)

echo "== quickstart 1/4: training (finished runs are skipped)"
"$qat" sweep configs/sweeps/quickstart.yaml --jobs 2
"$qat" sweep configs/sweeps/quickstart-data.yaml --jobs 2

echo
echo "== quickstart 2/4: unified scaling law L = A·(N·ρ)^-α + B·D^-β + E"
"$qat" fit "$out" --law unified --bootstrap 200 --seed 0 --out "$out/fit.h5" --csv "$out/runs.csv" \
  | tee "$out/fit.txt"

echo
echo "== quickstart 3/4: plots"
for kind in law capacity frontier; do
  "$qat" plot "$out/fit.h5" --kind "$kind" -o "$out/$kind.svg"
  echo "  $out/$kind.svg"
done

echo
echo "== quickstart 4/4: capacity per format"
echo "GMSE and ρ from the published constants (Llama/C4: L = 1, F = 0.41, C = 1.39), one operand:"
"$qat" capacity int4 int2 sp50 sp50+int4
echo "ρ from the constants fitted here, one operand:"
"$qat" capacity int4 int2 sp50 sp50+int4 --fit "$out/fit.h5"
echo "Each run applies its format to weights and activations, so its ρ is the product of two"
echo "operands (ρ_w·ρ_a); the fit's pair table above shows fitted against predicted per run pair."
echo
echo "quickstart done in $(( $(date +%s) - t0 )) s: $out/{fit.txt,fit.h5,runs.csv,law.svg,capacity.svg,frontier.svg}"
