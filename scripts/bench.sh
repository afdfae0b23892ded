#!/usr/bin/env bash
# make bench: the speed figures of bench/README.md, printed as Markdown tables.
# Run on an otherwise idle machine; numbers from a loaded machine are meaningless.
# QAT_BENCH_PAIRS (default 3): interleaved qat/PyTorch repetitions per row; medians are printed.
# QAT_BENCH_QUICK=1: only the side-by-side table and the W4A4/dense ratios.
set -euo pipefail
build=${1:-build}
b="$build/bench/bench_train"
pairs=${QAT_BENCH_PAIRS:-3}
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%Y-%m-%d)"
# The CPU kind decides which figures of bench/README.md compare (AMX / AVX512-BF16 only /
# AVX2): the family and model tell Zen 3, 4 and 5 apart, the flags the kind, and oneDNN's own
# ISA line what its products run on (on an AMX CPU, run build/bench/bench_attention first).
echo "cpu: family $(sed -n 's/^cpu family\t*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model\t*: //p' /proc/cpuinfo | head -1);" \
  "flags: $(grep -o -w -E 'avx2|avx512f|avx512_bf16|amx_tile|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "oneDNN: $(ONEDNN_VERBOSE=1 "$b" --threads 1 --steps 1 --no-peak d64/l2/h2/t128 2>&1 |
  sed -n 's/^onednn_verbose,info,cpu,isa://p' | head -1)"
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

# PyTorch runs on the libblas.so.3 alternative; on AVX-512 CPUs OpenBLAS must be told the core
# type (its Zen detection falls back to Haswell kernels), as the issue measured.
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
# PyTorch's CPU allocator hands every tensor to glibc malloc, which returns blocks of 128 KiB and
# more to the kernel on free; on VMs where a page fault is expensive that alone halved PyTorch's
# fp32 d256 rate (1,500 against 3,560 tok/s, 2026-11-30). Keeping freed memory mapped is
# PyTorch's best case, so it runs with these (qat allocates nothing after its first step).
torch_env=(MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736)
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
have_torch=0
# bf16 training needs native bf16 products (qat refuses train.precision: bf16 elsewhere, exit 2):
# on other CPUs the bf16 rows say so instead of stopping the script
have_bf16=0
grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && have_bf16=1
/usr/bin/python3 -c 'import torch' 2>/dev/null && have_torch=1

echo
echo "## qat and PyTorch side by side (4096 tokens per step, 2 threads, median of $pairs interleaved runs)"
echo "PyTorch BLAS: $blas, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, ${torch_env[*]}$([ $have_torch = 1 ] || echo ' (python3-torch absent: PyTorch columns skipped)')"
echo
echo "| model | precision | qat tok/s | qat GFLOP/s | % of GEMM peak | PyTorch tok/s | qat / PyTorch |"
echo "|---|---|---|---|---|---|---|"
for m in d256/l6/h8/t256 d64/l2/h2/t128; do
  # 15 steps at d256 (5 moved ±10% between runs of one binary), 80 at d64
  steps=15; [ "$m" = d64/l2/h2/t128 ] && steps=80
  for prec in fp32 bf16; do
    if [ $prec = bf16 ] && [ $have_bf16 = 0 ]; then
      echo "| $m | bf16 | — | — | — | — | no native bf16 products on this CPU (AVX512-BF16 or AMX) |"
      continue
    fi
    qt=(); qg=(); qp=(); tt=()
    for ((i = 0; i < pairs; i++)); do
      row=$("$b" --threads 2 --steps $steps --precision $prec "$m" | tail -1)
      IFS='|' read -r _ _ _ _ _ tok gf _ pct _ <<<"$row"
      pct=${pct//[ %]/}
      qt+=("$tok"); qg+=("$gf"); qp+=("$pct")
      if [ $have_torch = 1 ]; then
        line=$(env "${torch_env[@]}" /usr/bin/python3 bench/torch_ref.py 2 "$m" 4096 $steps $prec 2>&1 || true)
        t=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) tok\/s.*/\1/p')
        [ -n "$t" ] && tt+=("$t")
      fi
    done
    mq=$(printf '%s\n' "${qt[@]}" | median); mg=$(printf '%s\n' "${qg[@]}" | median); mp=$(printf '%s\n' "${qp[@]}" | median)
    if [ ${#tt[@]} -gt 0 ]; then
      mt=$(printf '%s\n' "${tt[@]}" | median)
      ratio=$(awk -v a="$mq" -v b="$mt" 'BEGIN{printf "%.2f", a/b}')
    else mt="—"; ratio="—"; fi
    echo "| $m | $prec | $mq | $mg | $mp% | $mt | $ratio |"
  done
done

echo
echo "## W4A4 trust step / dense step, d256/l6/h8/t256, 2 threads, fp32 and, on a CPU with native bf16, bf16 (30 paired steps)"
precs=fp32; [ $have_bf16 = 1 ] && precs="fp32 bf16"
for prec in $precs; do
  "$b" --threads 2 --ratio 30 --precision $prec --format int4 --act-format int4 --estimator trust \
    d256/l6/h8/t256 | { [ $prec = fp32 ] && cat || tail -1; }
done
[ "${QAT_BENCH_QUICK:-0}" = 1 ] && exit 0
echo
echo "## fp32 training step, 1 and 2 threads (4096 tokens per step)"
for th in 1 2; do
  out=$("$b" --threads "$th" --steps 10 d256/l6/h8/t256 d128/l4/h4/t256)
  if [ "$th" = 1 ]; then echo "$out"; else echo "$out" | tail -n +3; fi
done
echo
echo "## every format on weights and activations, d256/l6/h8/t256, 2 threads"
echo "(each compressed step timed right after an fp32 step of its own dense twin, 5 pairs; ratio = median of the pairs)"
for f in int8 int4 int2 int1 ternary fp4 sp50 2:4 sp50+int4 2:4+int4 vq2x2 vq4x2 "noise(int4)"; do
  "$b" --threads 2 --ratio 5 --format "$f" --act-format "$f" d256/l6/h8/t256 | tail -1
done
echo
echo "## scaling fit: 216 runs, 1000 bootstrap resamples"
"$build/scaling/bench_fit" 2>&1 | tail -3
