#!/usr/bin/env bash
# Run the paper reproductions: experiments/run.sh [a b c c3 d e e4 f g g4 h i long]..., from the
# repository root after `make`. No argument: a-g's first stages (make experiments); `long` stands for
# c3 e4 g4 h i, c's stage 3, e's and g's s4 runs, h and i (make experiments-long), and may be given
# among other names. Every name is checked before anything runs. Finished runs are skipped, so a
# second call only reprints.
# Each experiment's README.md states the question, what the papers found, and what this
# script measured on this machine.
set -euo pipefail
# The names, checked before anything runs: a typo after `a` used to be found only once a's
# sweeps (hours) had run. `long` expands in place, wherever it is given.
valid="a b c c3 d e e4 f g g4 h i long"
which=()
for e in "$@"; do
  known=0
  for v in $valid; do if [ "$e" = "$v" ]; then known=1; fi; done
  [ $known = 1 ] || { echo "experiments/run.sh: unknown experiment '$e', expected one of: $valid (nothing was run)" >&2; exit 2; }
  if [ "$e" = long ]; then which+=(c3 e4 g4 h i); else which+=("$e"); fi
done
# The default set (make experiments) is a-g's first stages; the long parts are make experiments-long
# (experiments/README.md, "Cost").
[ ${#which[@]} -gt 0 ] || which=(a b c d e f g)
qat=${QAT:-build/cli/qat}
[ -x "$qat" ] || { echo "experiments/run.sh: $qat not found; run make first (or set QAT=...)" >&2; exit 2; }
table() { sed -n '/^name  /,/^$/p'; }   # the sweep's closing table
sweep() { echo "-- $1"; "$qat" sweep "$1" | table; }   # --jobs auto: one run per core

exp_a() {
  exp_b_runs   # fp32 reference from b
  sweep experiments/a-estimators/sweep.yaml
  sweep experiments/a-estimators/seeds.yaml
  sweep experiments/a-estimators/no-hadamard.yaml
}
exp_b_runs() {
  sweep experiments/b-capacity/sweep.yaml
  sweep experiments/b-capacity/data.yaml
  sweep experiments/b-capacity/seeds.yaml
}
exp_b() {
  exp_b_runs
  local d=runs/experiments/b-capacity
  "$qat" fit "$d" --law decoupled --out "$d/decoupled.h5"
  "$qat" fit "$d" --law unified --bootstrap 200 --seed 0 --out "$d/unified.h5"
  "$qat" plot "$d/unified.h5" --kind capacity -o "$d/capacity.svg"
  "$qat" plot "$d/unified.h5" --kind law -o "$d/law.svg"
}
exp_c() {
  sweep experiments/c-factorisation/weights-int2.yaml
  sweep experiments/c-factorisation/acts-int2.yaml   # own folder (same run names as weights-int2)
  sweep experiments/c-factorisation/sparse-int.yaml
  sweep experiments/c-factorisation/control.yaml
  # fp32 (12 and 4 tokens/param) and int2 on both come from experiment b: same seed, same config
  exp_b_runs
  local b=runs/experiments/b-capacity
  "$qat" fit runs/experiments/c-factorisation "$b"/s[123]-fp32-tokens_per_param12 "$b"/s[123]-int2-tokens_per_param12 \
    "$b"/s[123]-tokens_per_param4 "$b"/seeds --law decoupled --bootstrap 200 --seed 0 \
    --out runs/experiments/c-factorisation/decoupled.h5
  # the paired design (README.md): seeds 0-15 of every cell; sp75 on the weights is d's masked arm
  sweep experiments/d-rbbm/paired.yaml
  sweep experiments/c-factorisation/paired-sp75.yaml
  sweep experiments/c-factorisation/paired-wa.yaml
  sweep experiments/c-factorisation/paired-w.yaml
  sweep experiments/c-factorisation/paired-a.yaml
}
exp_d() {   # fp32 reference from b (single seeds) and from c's paired-wa.yaml (the paired design)
  exp_b_runs; sweep experiments/d-rbbm/sweep.yaml; sweep experiments/d-rbbm/seeds.yaml
  sweep experiments/d-rbbm/paired.yaml; sweep experiments/c-factorisation/paired-wa.yaml
}
exp_e() {
  exp_b_runs; sweep experiments/e-pv/sweep.yaml; sweep experiments/e-pv/sweep-ste.yaml   # from scratch (the contrast); fp32 reference from b
  # the paper's setting: an fp32 source, then int2 fine-tunes from its checkpoint (train.init), paired seeds
  sweep experiments/e-pv/source.yaml
  sweep experiments/e-pv/ft-ste.yaml
  sweep experiments/e-pv/ft-pv.yaml
  sweep experiments/e-pv/ft-fp32.yaml   # control: the dense model on the same budget
  sweep experiments/e-pv/ft-pv-diag.yaml   # diagnosis of the first stage (seed 0)
  sweep experiments/e-pv/ft-pv-lr.yaml     # second stage: pv_lr = train.lr
  # learned codebooks (aq1x4g4, aq2x4g4): STE vs PV fine-tunes paired by seed, s3 then s4
  sweep experiments/e-pv/ft-aq-ste.yaml
  sweep experiments/e-pv/ft-aq-pv.yaml
  sweep experiments/e-pv/ft-aq1x6g4-ste.yaml   # the third arm (1.5 bits of codes)
  sweep experiments/e-pv/ft-aq1x6g4-pv.yaml
  sweep experiments/e-pv/ft-aq-rep.yaml        # exploratory: seeds 4-7 of s3's one "PV better" cell
  sweep experiments/e-pv/ft-aq-rep-ste.yaml    # its STE arm
}
exp_e4() {   # e's learned-codebook arms at s4 (long: about 12 minutes)
  sweep experiments/e-pv/source-s4.yaml
  sweep experiments/e-pv/ft-aq-s4-ste.yaml
  sweep experiments/e-pv/ft-aq-s4-pv.yaml
}
exp_c3() {   # c's stage 3 (README.md there): seeds 16-35 of the sparse x quantized cells (long: 80 runs)
  sweep experiments/c-factorisation/stage3-fp32.yaml
  sweep experiments/c-factorisation/stage3-sp75.yaml
  sweep experiments/c-factorisation/stage3.yaml
}
exp_g4() {   # g's s4 runs (long: ten runs of 2-4 minutes each); rerun exp_g afterwards to refit with them
  sweep experiments/g-hardware/quest-s4.yaml
  sweep experiments/g-hardware/rtn-s4.yaml
}
exp_h() {   # the backward pass (README.md there): runs, then the quartet law (effN per forward, effD per backward)
  local d=runs/experiments/h-backward
  sweep experiments/h-backward/bwd32.yaml
  sweep experiments/h-backward/bwd4.yaml
  sweep experiments/h-backward/bwd8.yaml
  # s1 at 8 tokens per parameter stops at the unigram plateau, and a free gamma leaves the rest
  # unidentified with two D per size (README.md): those runs are left out and gamma held at 1
  "$qat" fit $(ls -d "$d"/s*/ | grep -v '/s1-tokens_per_param8-') --law quartet --fix gamma=1 --bootstrap 200 --seed 0 \
    --out "$d/quartet.h5" --csv "$d/quartet.csv" | tee "$d/quartet.txt"
}
exp_f() { exp_b_runs; sweep experiments/f-noise/sweep.yaml; }   # quantized runs from b
exp_g() {   # the hardware formats (README.md there): runs, then the unified and decoupled fits
  sweep experiments/g-hardware/quest.yaml
  sweep experiments/g-hardware/rtn.yaml
  local d=runs/experiments/g-hardware
  "$qat" fit "$d" --law unified --bootstrap 200 --seed 0 --out "$d/unified.h5"
  "$qat" fit "$d" --law decoupled --bootstrap 200 --seed 0 --out "$d/decoupled.h5"
}
exp_i() {   # the data axis at fixed N (README.md there): runs in the design's order, PTQ of the fp32 checkpoints, fits
  local s d=runs/experiments/i-data-axis
  for s in stage1 stage2 group stage3 stage4 rest; do sweep experiments/i-data-axis/$s.yaml; done
  i_ptq "$d" > "$d/ptq.csv.tmp" && mv "$d/ptq.csv.tmp" "$d/ptq.csv"
  "$qat" fit "$d" --law chen --bootstrap 200 --seed 0 --csv "$d/chen.csv" --svg "$d/chen.svg"
  "$qat" fit "$d/ptq.csv" --law chen --bootstrap 200 --seed 0 --csv "$d/ptq-fit.csv" --svg "$d/ptq.svg"
}
# CSV N,D,loss,format,act_format of post-training quantization: every fp32 run's own loss, and its
# checkpoint read through int4 and int2 weights and through int4 weights and activations. N and D
# come from the run logs through qat fit --csv of the fp32 runs, every constant held (no fit is wanted,
# and none can be refused).
i_ptq() {
  local d=$1 N D loss f a g rho effd pred resid origin fa l j
  "$qat" fit "$d"/*-fp32 --law chinchilla --no-loo --fix A=1 --fix alpha=0.3 --fix B=1 --fix beta=0.3 --fix E=1 \
    --csv "$d/fp32-runs.csv" > /dev/null
  echo "N,D,loss,format,act_format"
  tail -n +2 "$d/fp32-runs.csv" | while IFS=, read -r N D loss f a g rho effd pred resid origin; do
    echo "$N,$D,$loss,fp32,fp32"
    for fa in int4:fp32 int2:fp32 int4:int4; do
      j="$(dirname "$origin")/ptq-${fa%:*}-${fa#*:}.json"   # kept beside the run: a second call only reprints
      if ! { [ -s "$j" ] && [ "$j" -nt "$(dirname "$origin")/ckpt.h5" ]; }; then
        "$qat" eval --checkpoint "$(dirname "$origin")/ckpt.h5" --set threads=1 --set "compress.weights.format=${fa%:*}" \
          --set "compress.activations.format=${fa#*:}" --json > "$j.tmp"
        mv "$j.tmp" "$j"
      fi
      l=$(sed 's/.*"loss": *\([-0-9.eE+]*\).*/\1/' "$j")
      echo "$N,$D,$l,${fa%:*},${fa#*:}"
    done
  done
}

for e in "${which[@]}"; do
  echo "== experiment $e"; "exp_$e"
done
