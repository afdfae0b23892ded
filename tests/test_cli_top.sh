#!/usr/bin/env bash
# tests/test_cli_top.sh — the `qat` command's top level (cli/qat.c, docs/cli.md): `qat help
# COMMAND` prints that command's help; --help, -h, help and --version take nothing after them
# (an extra argument was ignored with exit 0); an unknown command is exit 2.
# Usage: test_cli_top.sh QAT
set -uo pipefail
qat=${1:?usage: test_cli_top.sh QAT}
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
expect 2 "qat: help: unexpected argument 'x' (qat help takes one command" help train x
expect 0 "usage: qat COMMAND" help
expect 0 "usage: qat COMMAND" --help
expect 2 "qat: --version: unexpected argument '--bogus'" --version --bogus
expect 2 "qat: --help: unexpected argument 'train'" --help train
expect 2 "qat: -h: unexpected argument 'x'" -h x
expect 0 "qat " --version
expect 2 "qat: unknown command 'trian'" trian
[ $fails -eq 0 ] && echo "all top-level cases pass"
exit $((fails > 0))
