#!/usr/bin/env bash
# make bench: the speed figures of bench/README.md, printed as Markdown tables.
# Run on an otherwise idle machine; numbers from a loaded machine are meaningless.
set -euo pipefail
build=${1:-build}
b="$build/bench/bench_train"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%Y-%m-%d)"
echo
echo "## fp32 training step (4096 tokens per step)"
for th in 1 2; do "$b" --threads "$th" --steps 10 d256/l6/h8/t256 d128/l4/h4/t256 | { [ "$th" = 1 ] && cat || tail -n +3; }; done
echo
echo "## every format on weights and activations, d256/l6/h8/t256, 2 threads (ratio to fp32 in the last column)"
fp32_ms=$("$b" --threads 2 --steps 10 d256/l6/h8/t256 | tail -1 | awk -F'|' '{gsub(/ /,"",$9); print $9}')
echo "| formats | step ms | ratio to fp32 (${fp32_ms} ms) |"
echo "|---|---|---|"
for f in int8 int4 int2 int1 ternary fp4 sp50 2:4 sp50+int4 2:4+int4 vq2x2 vq4x2 "noise(int4)"; do
  ms=$("$b" --threads 2 --steps 10 --format "$f" --act-format "$f" d256/l6/h8/t256 | tail -1 | awk -F'|' '{gsub(/ /,"",$9); print $9}')
  echo "| $f/$f (default estimator) | $ms | $(awk -v a="$ms" -v b="$fp32_ms" 'BEGIN{printf "%.3f", a/b}') |"
done
ms=$("$b" --threads 2 --steps 10 --format int4 --act-format int4 --estimator trust d256/l6/h8/t256 | tail -1 | awk -F'|' '{gsub(/ /,"",$9); print $9}')
echo "| int4/int4 trust (QuEST W4A4) | $ms | $(awk -v a="$ms" -v b="$fp32_ms" 'BEGIN{printf "%.3f", a/b}') |"
echo
echo "## scaling fit: 216 runs, 1000 bootstrap resamples"
"$build/scaling/bench_fit" 2>&1 | tail -3
echo
echo "## PyTorch reference (optional)"
for th in 1 2; do /usr/bin/python3 bench/torch_ref.py "$th" d256/l6/h8/t256 4096 5 || true; done
