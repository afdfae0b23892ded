#!/usr/bin/env bash
# make bench: the speed figures of bench/README.md, printed as Markdown tables.
# Run on an otherwise idle machine; numbers from a loaded machine are meaningless.
set -euo pipefail
build=${1:-build}
b="$build/bench/bench_train"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%Y-%m-%d)"
echo
echo "## fp32 training step (4096 tokens per step)"
declare -A qat_tok
for th in 1 2; do
  out=$("$b" --threads "$th" --steps 10 d256/l6/h8/t256 d128/l4/h4/t256)
  if [ "$th" = 1 ]; then echo "$out"; else echo "$out" | tail -n +3; fi
  while IFS='|' read -r _ model _ _ tok _; do
    qat_tok["$(echo $model)/$th"]=$(echo $tok)
  done < <(echo "$out" | tail -n +3)
done
echo
echo "## every format on weights and activations, d256/l6/h8/t256, 2 threads"
echo "(each format timed right after an fp32 step of the same model; ratio = compressed / fp32)"
"$b" --threads 2 --steps 10 --ratio 5 --format int4 --act-format int4 --estimator trust d256/l6/h8/t256
for f in int8 int4 int2 int1 ternary fp4 sp50 2:4 sp50+int4 2:4+int4 vq2x2 vq4x2 "noise(int4)"; do
  "$b" --threads 2 --steps 10 --ratio 1 --format "$f" --act-format "$f" d256/l6/h8/t256 | tail -1
done
echo
echo "## scaling fit: 216 runs, 1000 bootstrap resamples"
"$build/scaling/bench_fit" 2>&1 | tail -3
echo
echo "## PyTorch reference (optional: Debian's python3-torch; it uses the libblas.so.3 alternative,"
echo "## so install libopenblas0-openmp too, or it runs on the reference BLAS, ~15x slower)"
for th in 1 2; do
  for m in d256/l6/h8/t256 d128/l4/h4/t256; do
    line=$(/usr/bin/python3 bench/torch_ref.py "$th" "$m" 4096 5 2>&1 || true)
    echo "$line"
    tt=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) tok\/s.*/\1/p')
    [ -n "$tt" ] && echo "  qat/torch: $(awk -v a="${qat_tok[$m/$th]}" -v b="$tt" 'BEGIN{printf "%.2f", a/b}')x (qat ${qat_tok[$m/$th]} tok/s)"
  done
done
