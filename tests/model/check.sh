#!/usr/bin/env bash
# tests/model/check.sh - run one Spin verification (tests/model/CMakeLists.txt).
#
# usage: check.sh MODEL.pml WORKDIR MODE EXPECT [SPIN_DEFINE...]
#   MODE    safety: pan -DSAFETY (assertions, invalid end states)
#           np:     pan -DNP -l -f (non-progress cycles, weak fairness)
#   EXPECT  ok: pass only if pan completes the full search with no error;
#           anything else (e.g. "invalid end state"): a mutant; pass only
#           if pan reports that error (so a mutant that stops compiling,
#           or fails for another reason, fails the test instead of passing
#           vacuously as WILL_FAIL would let it)
#   SPIN_DEFINE  -DNAME[=VALUE] for the model's preprocessor
# Exits 77 (skipped) when spin or a C compiler is missing.
set -euo pipefail

(($# >= 4)) || { sed -n '3,14p' "$0" >&2; exit 2; }
model=$1 work=$2 mode=$3 expect=$4
shift 4

if ! command -v spin >/dev/null 2>&1; then
  echo "skipped: spin is not installed (Debian package spin; tools/deps installs it)"
  exit 77
fi
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || cc=gcc
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "skipped: no C compiler to build spin's verifier"
  exit 77
fi

rm -rf "$work"
mkdir -p "$work"
cd "$work"
cp "$model" .
pml=$(basename "$model")

case $mode in
safety) ccflags=(-DSAFETY) panflags=() ;;
np) ccflags=(-DNP -DNFAIR=8) panflags=(-l -f) ;;
*) echo "check.sh: unknown mode $mode" >&2; exit 2 ;;
esac

echo "+ spin $* -a $pml"
spin "$@" -a "$pml"
# -w: pan.c is generated code; its warnings are not ours. COLLAPSE halves
# the memory; MEMLIM (MB) stops a search that would exhaust the machine:
# it then reports an incomplete search, which fails the test.
echo "+ $cc -O2 -w ${ccflags[*]} -DCOLLAPSE -DMEMLIM=2048 -o pan pan.c"
"$cc" -O2 -w "${ccflags[@]}" -DCOLLAPSE -DMEMLIM=2048 -o pan pan.c
echo "+ ./pan -m1000000 ${panflags[*]}"
rc=0
./pan -m1000000 "${panflags[@]}" >pan.out 2>&1 || rc=$?
cat pan.out

errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | tail -1)
if [[ -z $errors ]]; then
  echo "FAIL: pan did not report a result (exit $rc)"
  exit 1
fi
repro="(cd $work && spin $* -t -p -g $pml) replays the trail"

if [[ $expect == ok ]]; then
  if ((errors != 0)); then
    echo "FAIL: pan found $errors error(s); $repro"
    exit 1
  fi
  if grep -qE 'max search depth too small|reached -DMEMLIM bound|Search not completed' pan.out; then
    echo "FAIL: the search was not complete (depth or memory bound): no verdict"
    exit 1
  fi
  echo "PASS: full search, no errors"
  exit 0
fi

if ((errors == 0)); then
  echo "FAIL: the mutant was not caught: pan found no error, expected \"$expect\""
  exit 1
fi
if ! grep -q "^pan:1: $expect" pan.out; then
  echo "FAIL: pan found an error, but not the expected \"$expect\": $(grep -m1 '^pan:1:' pan.out || true)"
  exit 1
fi
echo "PASS: the mutant was caught: $expect; $repro"
exit 0
