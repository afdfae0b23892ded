#!/usr/bin/env bash
# tests/test_cli_top.sh — the `qat` command's top level (cli/qat.c, docs/cli.md): `qat help
# COMMAND [SUB]` prints that command's help; --help, -h, help and --version take nothing after them
# (an extra argument was ignored with exit 0); an unknown command is exit 2; a closed stdout is
# exit 1 before any work; a training whose reader goes away stops with its checkpoint, and any
# other command whose reader is gone exits 1 with one line.
# Usage: test_cli_top.sh QAT
set -uo pipefail
qat=$(realpath "${1:?usage: test_cli_top.sh QAT}")
fails=0
expect() { # expect RC NEEDLE ARGS...: exit status RC and NEEDLE in stdout+stderr
  local want=$1 needle=$2 out rc
  shift 2
  out=$("$qat" "$@" 2>&1); rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qF -- "$needle" <<<"$out"; then
    echo "FAIL: qat $*: exit $rc (want $want), output:"; echo "$out" | head -5; fails=$((fails + 1))
  fi
}
expect 0 "usage: qat train CONFIG.yaml" help train
expect 0 "usage: qat capacity FORMAT" help capacity
expect 2 "qat: help: unknown command 'nope'" help nope
expect 0 "usage: qat data synth" help data synth
expect 0 "usage: qat COMMAND" help help
expect 0 "usage: qat COMMAND" help
expect 0 "usage: qat COMMAND" --help
expect 2 "qat: --version: unexpected argument '--bogus'" --version --bogus
expect 2 "qat: --help: unexpected argument 'train'" --help train
expect 2 "qat: -h: unexpected argument 'x'" -h x
expect 0 "qat " --version
expect 2 "qat: unknown command 'trian'" trian
# A closed stdout: refused before any work, one line, exit 1 (before: the first file the
# command opened became fd 1 and collected its output; a run's lock file held progress lines).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
err=$( (cd "$tmp" && "$qat" data synth --tokens 1000 --val 0 -o x.bin >&-) 2>&1); rc=$?
if [ $rc -ne 1 ] || [ "$err" != "qat: cannot write the output: stdout is closed; give it a destination (e.g. > /dev/null)" ] \
   || [ -e "$tmp/x.bin" ]; then
  echo "FAIL: closed stdout: exit $rc, stderr: $err, files: $(ls "$tmp")"; fails=$((fails + 1))
fi
# a closed stdin or stderr is only filled in: the command runs
out=$("$qat" capacity int4 <&- 2>&-); rc=$?
if [ $rc -ne 0 ] || ! grep -q "^int4 " <<<"$out"; then echo "FAIL: closed stdin/stderr: exit $rc"; fails=$((fails + 1)); fi
# A reader that goes away (`qat train cfg | head`): the run stops as on Ctrl-C, checkpoint
# written, exit 1 (before: killed by SIGPIPE, exit 141, the steps since its last checkpoint lost),
# and --resume completes it.
printf 'name: p\nseed: 0\nmodel: {preset: s1, seq_len: 64}\ndata: {source: synthetic}\n%s\nthreads: 1\n' \
  'train: {tokens: 1e5, batch_tokens: 1024, eval_tokens: 4096, log_every: 1, checkpoint_every: 1000}' > "$tmp/p.yaml"
err=$("$qat" train "$tmp/p.yaml" --out "$tmp/P" 2>&1 >/dev/stdout | head -1 >/dev/null; echo "rc=${PIPESTATUS[0]}")
if ! grep -q "rc=1$" <<<"$err" || [ ! -e "$tmp/P/p/ckpt.h5" ]; then
  echo "FAIL: train | head: $err; $(ls "$tmp/P/p" 2>&1)"; fails=$((fails + 1))
fi
out=$("$qat" train "$tmp/p.yaml" --out "$tmp/P" --resume 2>&1); rc=$?
if [ $rc -ne 0 ] || ! grep -q "validation loss" <<<"$out"; then echo "FAIL: resume after head: exit $rc"; echo "$out" | tail -3; fails=$((fails + 1)); fi
# qat train: a compress option the side's format and estimator ignore is exit 2 naming it (before:
# int4 with lsq and group 16 trained bit for bit as group 0 while run.h5 recorded group 16); the
# run's check and --print-config's are one
for pc in --print-config ""; do
  expect 2 "compress.weights.group: 16 has no effect with estimator lsq" train "$tmp/p.yaml" --out "$tmp/G" $pc \
    --set compress.weights.format=int4 --set compress.weights.estimator=lsq --set compress.weights.group=16
done
[ ! -e "$tmp/G" ] || { echo "FAIL: a refused config left $tmp/G"; fails=$((fails + 1)); }
expect 2 "compress.weights.trust: 0.5 has no effect with estimator ste" train "$tmp/p.yaml" --print-config \
  --set compress.weights.format=int4 --set compress.weights.estimator=ste --set compress.weights.trust=0.5
expect 0 'group: 16' train "$tmp/p.yaml" --print-config --set compress.weights.format=int4 --set compress.weights.group=16
# ...but a run already on disk is taken as it was made (a run made before the check could
# otherwise never be resumed, and a sweep over it would turn its completed runs into failures):
# with its checkpoint present, --resume passes the check and the stored config decides (here the
# key differs from the stored run's, so the config comparison answers, not the check)
expect 0 "" train "$tmp/p.yaml" --out "$tmp/S" --stop-after 1 --quiet
expect 2 "compress.weights.pv_tau: 0.01 -> 0.5" train "$tmp/p.yaml" --out "$tmp/S" --resume --quiet \
  --set compress.weights.format=int4 --set compress.weights.pv_tau=0.5 --set compress.weights.estimator=trust
expect 2 "compress.weights.pv_tau: 0.5 has no effect with estimator trust" train "$tmp/p.yaml" --out "$tmp/S2" --quiet \
  --set compress.weights.format=int4 --set compress.weights.pv_tau=0.5 --set compress.weights.estimator=trust
# the same for a sweep over a directory whose run has a checkpoint: its config is compared with
# the stored one (the run is kept, "completed under another config"), not refused as invalid
printf 'base: {model: {preset: s1, seq_len: 32}, data: {source: synthetic}, threads: 1, %s}\ngrid: {seed: [0]}\nout: %s\n' \
  'train: {tokens: 4096, batch_tokens: 1024, eval_tokens: 1024}' "$tmp/SW" > "$tmp/sw1.yaml"
sed 's/threads: 1,/threads: 1, compress: {weights: {group: 32}},/' "$tmp/sw1.yaml" > "$tmp/sw2.yaml"
expect 0 "1 completed" sweep "$tmp/sw1.yaml"
out=$("$qat" sweep "$tmp/sw2.yaml" --dry-run 2>&1)
if grep -q "has no effect" <<<"$out" || ! grep -q "another config" <<<"$out"; then
  echo "FAIL: a sweep over a completed run refused it as invalid:"; echo "$out" | tail -4; fails=$((fails + 1))
fi
# --print-config's text is the config with every key, automatic values as given (it said "fully
# resolved" while printing estimator "" and a preset's dim 0): printed, loaded back and printed
# again it is the same text, and a run from either resolves the same (its header lines)
w=(--set compress.weights.format=int4@g32 --set compress.activations.format=int4)
"$qat" train "$tmp/p.yaml" --print-config "${w[@]}" > "$tmp/pc1.yaml" 2>&1 || { echo "FAIL: print-config"; fails=$((fails + 1)); }
"$qat" train "$tmp/pc1.yaml" --print-config > "$tmp/pc2.yaml" 2>&1
cmp -s "$tmp/pc1.yaml" "$tmp/pc2.yaml" || { echo "FAIL: print-config of a printed config differs"; fails=$((fails + 1)); }
grep -q "fully resolved" "$tmp/pc1.yaml" && { echo "FAIL: print-config claims to be fully resolved"; fails=$((fails + 1)); }
grep -q "^# qat run config (docs/config.md): every key" "$tmp/pc1.yaml" || { echo "FAIL: print-config header"; fails=$((fails + 1)); }
h1=$("$qat" train "$tmp/p.yaml" "${w[@]}" --out "$tmp/R1" --stop-after 1 2>&1 | grep -E "^qat train p: N =|^  compress:")
h2=$("$qat" train "$tmp/pc1.yaml" --out "$tmp/R2" --stop-after 1 2>&1 | grep -E "^qat train p: N =|^  compress:")
if [ -z "$h1" ] || [ "$h1" != "$h2" ] || ! grep -q "weights int4@g32@h32 (estimator trust)" <<<"$h1"; then
  echo "FAIL: runs from a config and from its printed text resolve differently:"; echo "$h1"; echo "$h2"; fails=$((fails + 1))
fi

ckpt="$tmp/P/p/ckpt.h5"
"$qat" data synth --tokens 1000 --val 0 -o "$tmp/s.bin" >/dev/null
awk 'BEGIN { print "N,D,loss"; for (i = 0; i < 12; i++) { n = 1e6 * 2 ^ (i % 4); d = 2e7 * 2 ^ int(i / 4);
  printf "%g,%g,%g\n", n, d, 400 / n ^ 0.34 + 410 / d ^ 0.28 + 1.7 } }' > "$tmp/runs.csv"

# An option given twice is exit 2 naming it, for every command, before any work (before: the
# last one won without a word); --set, --fix, --exclude and --where add to a list and may repeat.
expect 2 "qat: data pack: -o given twice" data pack "$tmp/p.yaml" -o "$tmp/p8.bin" -o "$tmp/p9.bin"
[ -e "$tmp/p8.bin" ] || [ -e "$tmp/p9.bin" ] && { echo "FAIL: data pack -o -o wrote a file"; fails=$((fails + 1)); }
expect 2 "qat: data synth: --out given twice (as -o and --out)" data synth --tokens 100 -o "$tmp/q.bin" --out="$tmp/r.bin"
expect 2 "qat: data synth: --tokens given twice" data synth --tokens 100 --tokens=200 -o "$tmp/q.bin"
expect 2 "qat: sample: --tokens given twice" sample --checkpoint "$ckpt" --tokens 5 --tokens 6
expect 2 "qat: grads: --compare given twice" grads --checkpoint "$ckpt" --out "$tmp/g2.h5" --compare int4 --compare int2
expect 2 "qat: eval: --data given twice" eval --checkpoint "$ckpt" --data synthetic --data english
expect 2 "qat: eval: --json given twice" eval --checkpoint "$ckpt" --json --json
expect 2 "qat: train: --out given twice" train "$tmp/p.yaml" --out "$tmp/A" --out "$tmp/B" --print-config
expect 2 "qat: capacity: --seed given twice" capacity int4 --seed 1 --seed 2
expect 2 "qat: fit: --law given twice" fit "$tmp/runs.csv" --law unified --law chinchilla
expect 2 "qat: sweep: --jobs given twice" sweep "$tmp/none.yaml" --jobs 1 --jobs 2
expect 2 "qat: plot: --kind given twice" plot "$tmp/none.h5" --kind law --kind capacity -o "$tmp/x.svg"
expect 0 "seed: 3 " train "$tmp/p.yaml" --set train.lr=1e-3 --set=seed=3 --print-config
expect 0 "usage: qat sample" sample --tokens 5 --tokens 6 --help
for f in "$tmp/A" "$tmp/B" "$tmp/q.bin" "$tmp/r.bin" "$tmp/g2.h5"; do
  [ -e "$f" ] && { echo "FAIL: a refused command wrote $f"; fails=$((fails + 1)); }
done

# An empty input or output path is one line naming the command and its option or argument, exit 2
# (before: "qat: : cannot open: No such file or directory" for an input, naming nothing; "an output
# path is empty" for an output, not saying which; two lines from data inspect).
expect1() { # expect1 RC LINE ARGS...: exit status RC and stdout+stderr exactly the one line LINE
  local want=$1 line=$2 out rc
  shift 2
  out=$("$qat" "$@" 2>&1); rc=$?
  if [ "$rc" -ne "$want" ] || [ "$out" != "$line" ]; then
    echo "FAIL: qat $*: exit $rc (want $want), output:"; echo "$out" | head -5; fails=$((fails + 1))
  fi
}
ck="a checkpoint file (ckpt.h5)"
expect1 2 "qat: capacity: --fit '': expected a fit file (FIT.h5, written by qat fit --out)" capacity int4 --fit ''
expect1 2 "qat: fit: an input '': expected a run directory, a run.h5 or a CSV file" fit "$tmp/runs.csv" ''
expect1 2 "qat: plot: FIT.h5 '': expected a fit file (written by qat fit --out)" plot '' --kind law -o "$tmp/e.svg"
expect1 2 "qat: data inspect: a SHARD '': expected a token shard file" data inspect ''
expect1 2 "qat: data inspect: a SHARD '': expected a token shard file" data inspect "$tmp/none.bin" ''
expect1 2 "qat: sweep: SWEEP.yaml '': expected a sweep YAML file" sweep ''
expect1 2 "qat: train: CONFIG '': expected a YAML config file" train ''
expect1 2 "qat: train: --init '': expected $ck" train "$tmp/p.yaml" --init ''
expect1 2 "qat: eval: --checkpoint '': expected $ck" eval --checkpoint ''
expect1 2 "qat: eval: --data '': expected english, synthetic, a glob of llm.c shards or a text file" \
  eval --checkpoint "$tmp/none.h5" --data ''
expect1 2 "qat: sample: --checkpoint '': expected $ck" sample --checkpoint ''
expect1 2 "qat: grads: --checkpoint '': expected $ck" grads --checkpoint '' --out "$tmp/x.h5"
expect1 2 "qat: grads: CONFIG '': expected a YAML config file" grads '' --out "$tmp/x.h5"
expect1 2 "qat: data pack: a FILE '': expected a text file" data pack '' --out "$tmp/x.bin"
expect1 2 "qat: fit: --out '': expected a file name to write the fit to (FIT.h5)" fit "$tmp/c1.csv" --out ''
expect1 2 "qat: fit: --csv '': expected a file name to write the CSV to" fit "$tmp/c1.csv" --csv ''
expect1 2 "qat: fit: --json-out '': expected a file name to write the JSON to" fit "$tmp/c1.csv" --json-out ''
expect1 2 "qat: fit: --svg '': expected a file name to write the SVG figure to" fit "$tmp/c1.csv" --svg ''
expect1 2 "qat: plot: -o '': expected a file name to write the SVG figure to (e.g. -o law.svg)" \
  plot "$tmp/none.h5" --kind law -o ''
expect1 2 "qat: plot: --out '': expected a file name to write the SVG figure to (e.g. -o law.svg)" \
  plot "$tmp/none.h5" --kind law --out ''
expect1 2 "qat: grads: --out '': expected a file name to write the gradients to (GRADS.h5)" \
  grads --checkpoint "$tmp/none.h5" --out ''
expect1 2 "qat: data pack: -o '': expected a file name to write the token shard to (OUT.bin)" \
  data pack "$tmp/none.txt" -o ''
expect1 2 "qat: data pack: --out '': expected a file name to write the token shard to (OUT.bin)" \
  data pack "$tmp/none.txt" --out=
expect1 2 "qat: data synth: -o '': expected a file name to write the token shard to (OUT.bin)" \
  data synth --tokens 1000 -o ''
expect1 2 "qat: sweep: --emit-slurm '': expected a file name to write the Slurm script to" \
  sweep "$tmp/sw1.yaml" --emit-slurm ''
expect1 2 "qat: train: --out '': expected a directory (--out . for this one)" train "$tmp/p.yaml" --out ''

# A reader that is gone before the result is written (`qat sample ... | true`): every command
# that prints a result exits 1 with one line, as for a full disk (before: killed by SIGPIPE,
# exit 141, no message). The reader exits first: the command starts 0.3 s after it.
closed_reader() { # closed_reader ARGS...: qat ARGS with its stdout a pipe whose reader has exited
  local rc err
  (sleep 0.3; exec "$qat" "$@") 2>"$tmp/pipe.err" | true; rc=${PIPESTATUS[0]}
  err=$(cat "$tmp/pipe.err")
  if [ "$rc" -ne 1 ] || ! grep -qx "qat: cannot write the output: Broken pipe" <<<"$err"; then
    echo "FAIL: qat $* | (gone): exit $rc (want 1), stderr:"; echo "$err" | head -3; fails=$((fails + 1))
  fi
}
closed_reader sample --checkpoint "$ckpt" --tokens 5
closed_reader sample --checkpoint "$ckpt" --tokens 5 --ids
closed_reader eval --checkpoint "$ckpt" --json
closed_reader capacity int4
closed_reader fit "$tmp/runs.csv" --no-loo
closed_reader data inspect "$tmp/s.bin"
closed_reader grads --checkpoint "$ckpt" --out "$tmp/g.h5" --compare int4
closed_reader --version
# A full disk behind stdout (/dev/full): every command that prints a result says why, in the same
# one line (before: a command that flushed its own rows, as capacity's table and fit do, or a large
# output flushed part-way, as --print-config's, said only "write error on stdout").
full_disk() { # full_disk ARGS...: qat ARGS > /dev/full
  local rc err
  "$qat" "$@" >/dev/full 2>"$tmp/full.err"; rc=$?
  err=$(grep -v "^qat sample: " "$tmp/full.err")
  if [ "$rc" -ne 1 ] || [ "$err" != "qat: cannot write the output: No space left on device" ]; then
    echo "FAIL: qat $* > /dev/full: exit $rc (want 1), stderr:"; echo "$err" | head -3; fails=$((fails + 1))
  fi
}
if [ -w /dev/full ]; then
  full_disk capacity int4
  full_disk capacity int4 vq2x2 --samples 65536
  full_disk capacity int4 --json
  full_disk fit "$tmp/runs.csv" --no-loo
  full_disk fit "$tmp/runs.csv" --no-loo --json
  full_disk data inspect "$tmp/s.bin"
  full_disk train "$tmp/p.yaml" --print-config
  full_disk eval --checkpoint "$ckpt"
  full_disk sample --checkpoint "$ckpt" --tokens 5
  full_disk --version
else
  echo "note: no writable /dev/full; a full stdout is not checked"
fi
# sample stops at the first token it cannot write instead of computing all of them
SECONDS=0
(sleep 0.3; exec "$qat" sample --checkpoint "$ckpt" --tokens 1e7) 2>/dev/null | true
[ $SECONDS -lt 20 ] || { echo "FAIL: sample | (gone) ran ${SECONDS}s: it did not stop"; fails=$((fails + 1)); }

# A command killed while it writes (SIGTERM; SIGINT from a terminal alike) leaves no PATH.tmp
# behind (before: `data pack` of a large corpus cut short left its whole temporary). Three
# 24 MB text files make the pack last long enough to be caught writing; when it finishes first,
# nothing is asserted but that it succeeded.
for k in 1 2 3; do head -c 18000000 /dev/urandom | base64 -w 100 > "$tmp/big$k.txt"; done
seen=0
for attempt in 1 2 3; do
  rm -f "$tmp/big.bin" "$tmp/big.bin.tmp"
  "$qat" data pack "$tmp/big1.txt" "$tmp/big2.txt" "$tmp/big3.txt" -o "$tmp/big.bin" >/dev/null 2>&1 & p=$!
  for i in $(seq 500); do [ -e "$tmp/big.bin.tmp" ] && break; sleep 0.005; done
  if [ -e "$tmp/big.bin.tmp" ]; then
    kill -TERM $p; wait $p; rc=$?; seen=1
    if [ $rc -ne 143 ] && [ $rc -ne 0 ]; then echo "FAIL: data pack killed: exit $rc"; fails=$((fails + 1)); fi
    if [ -e "$tmp/big.bin.tmp" ]; then echo "FAIL: a killed data pack left big.bin.tmp"; fails=$((fails + 1)); fi
    break
  fi
  wait $p || { echo "FAIL: data pack of three files failed"; fails=$((fails + 1)); }
done
[ $seen = 1 ] || echo "note: data pack finished before it could be caught writing (3 tries); not checked"
rm -f "$tmp"/big*

[ $fails -eq 0 ] && echo "all top-level cases pass"
exit $((fails > 0))
