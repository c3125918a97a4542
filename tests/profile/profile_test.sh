#!/usr/bin/env bash
# tests/profile/profile_test.sh - weft under perf, one CTest case per run:
#
#   profile_test.sh CASE      (tests/profile/CMakeLists.txt sets the env)
#
#   flame_fold    weft-flame folds a fixed `perf script` text
#                 (sample.perf-script: kernel, inlined, [unknown] and C++
#                 frames, padded and pid/tid headers, a sample without a
#                 call graph) into exactly sample.folded; folded input
#                 round-trips; --merge-threads, --no-comm, --period.
#   flame_svg     its SVG is well-formed XML (weft-test-xmlcheck: no python
#                 or xmllint needed) and has a <title> for every frame,
#                 escaped; hostile names (markup, quotes, control bytes,
#                 broken UTF-8, "]]>") still give a well-formed document.
#   thread_names  weft-test-hot names: the workers, the poller and an
#                 offload thread carry their names (weft-w<N>, weft-poller,
#                 weft-blk-<N>), which perf shows as each sample's thread.
#   unwind_fp     weft-test-hot under `perf record -e cpu-clock -g`
#   unwind_dwarf  ... and under `--call-graph dwarf`: of the samples whose
#                 stack holds the coroutine (weft_test_hot_co), at least 90%
#                 must be clean: the outermost frame is weft__ctx_entry (the
#                 coroutine entry in sched/src/ctx_*.S, which ends the
#                 unwind with a zero frame pointer and an undefined return
#                 address: nothing may come after it), it appears once, and
#                 no frame's object is [unknown] (an address outside every
#                 mapping perf saw). Such samples must come from weft-w<N>
#                 threads. Two workloads: spin (time in a user function)
#                 and switch (time in yields and the context switch). The
#                 workers' samples taken inside weft__ctx_switch are judged
#                 on their own too (90% clean, when there are 20 or more:
#                 ending at weft__ctx_entry, or at the thread's start for
#                 the scheduler context), as its unwind information is
#                 hand-written and a fault there loses the coroutine from
#                 the stack altogether.
#                 The counts are printed either way.
#   profile_tool  tools/profile end to end: perf.data, stacks.folded and a
#                 well-formed flame.svg that names weft_test_hot_spin, with
#                 frame pointers and with --dwarf -m -d; and its errors.
#
# The perf cases skip (exit 77) where perf is missing or not permitted.
# Nothing here bounds wall-clock time: the workload runs for a fixed time,
# and a loaded machine gives fewer samples (at least 50 are required).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case=${1:?usage: profile_test.sh CASE}
flame=${WEFT_FLAME:?WEFT_FLAME must name weft-flame}
hot=${WEFT_TEST_HOT:?WEFT_TEST_HOT must name weft-test-hot}
xmlcheck=${WEFT_TEST_XMLCHECK:?WEFT_TEST_XMLCHECK must name weft-test-xmlcheck}
src=${WEFT_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
work=${WEFT_TEST_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" || exit 1

say() { printf '%s: %s\n' "$case" "$*"; }
fail() { printf '%s: FAIL: %s\n' "$case" "$*" >&2; exit 1; }
skip() { printf 'skipped: %s\n' "$*"; exit 77; }

# perf present, working, and allowed to sample a program of ours, with call
# graphs; skips the case otherwise.
need_perf() {
  command -v perf >/dev/null 2>&1 || skip "perf is not installed (Debian: apt-get install linux-perf)"
  perf version >/dev/null 2>&1 || skip "perf does not run here: $(perf version 2>&1 | head -n 1)"
  if ! perf record -e cpu-clock -g -o "$work/probe.data" -- true >"$work/probe.log" 2>&1; then
    local paranoid
    paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?')
    sed 's/^/  perf: /' "$work/probe.log" | head -n 5
    skip "perf may not record here (uid $EUID, kernel.perf_event_paranoid=$paranoid; as root: sysctl kernel.perf_event_paranoid=1)"
  fi
}

# XML-escapes stdin as weft-flame does for the five special characters.
xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' -e "s/'/\&apos;/g"; }

# judge LABEL FILE: reads `perf script` output, one sample per paragraph
# (the header, then frames innermost first, "addr sym+off (dso)"), and
# judges the samples whose stack holds the coroutine (weft_test_hot_co);
# prints the counts and fails as the header of this file says.
judge() {
  awk -v what="$1" '
    BEGIN { RS = ""; FS = "\n" }
    {
      comm = $1; sub(/^[ \t]+/, "", comm); sub(/ .*/, "", comm)
      hot = 0; unknown = 0; entries = 0; outer = ""; leaf = ""
      for (i = 2; i <= NF; i++) {
        line = $i; sub(/^[ \t]+/, "", line)
        if (line !~ /^[0-9a-f]+ /) continue
        rest = line; sub(/^[0-9a-f]+ /, "", rest)
        sym = rest; dso = ""
        if (match(rest, / \([^()]*\)$/)) {
          sym = substr(rest, 1, RSTART - 1)
          dso = substr(rest, RSTART + 2, RLENGTH - 3)
        }
        sub(/\+0x[0-9a-f]+$/, "", sym)
        if (leaf == "") leaf = sym
        if (sym == "weft_test_hot_co") hot = 1
        # perf names the object "[unknown]" for an address outside every
        # mapping it saw; an address in a mapping without a symbol (a
        # stripped library) is "[unknown] (/path/lib.so)" and is fine.
        if (dso == "[unknown]") unknown++
        if (sym == "weft__ctx_entry") entries++
        outer = sym
      }
      if (comm ~ /^weft-w[0-9]+$/) worker++
      # A sample inside the switch belongs to the coroutine going out or
      # the one coming in, either of which may be the scheduler context
      # of the worker (on the thread stack, which ends at its start).
      if (leaf == "weft__ctx_switch" && comm ~ /^weft-w[0-9]+$/) {
        nsw++
        if (!unknown && ((outer == "weft__ctx_entry" && entries == 1) || outer == "start_thread" || outer == "clone3"))
          swclean++
        else if (++swshown <= 3)
          printf "%s: not clean in weft__ctx_switch (ends at %s):\n%s\n\n", what, outer, $0
      }
      if (!hot) next
      nhot++
      if (comm !~ /^weft-w[0-9]+$/) badcomm++
      bad = ""
      if (outer != "weft__ctx_entry") { bad = "ends at " outer; ends[outer]++; nend++ }
      else if (entries != 1) { bad = "weft__ctx_entry " entries " times"; nend++ }
      if (unknown) { bad = bad (bad == "" ? "" : ", ") unknown " [unknown] frames"; nunknown++ }
      if (bad == "") { clean++; next }
      if (++shown <= 3) printf "%s: not clean (%s):\n%s\n\n", what, bad, $0
    }
    END {
      printf "%s: %d samples on workers, %d in weft_test_hot_co: %d clean (%.1f%%), %d not ending at weft__ctx_entry, %d with [unknown] frames, %d on other threads\n",
        what, worker, nhot, clean, nhot ? 100.0 * clean / nhot : 0, nend, nunknown, badcomm
      for (o in ends) printf "%s:   %d end at %s\n", what, ends[o], o
      printf "%s: %d samples on workers inside weft__ctx_switch: %d clean\n", what, nsw, swclean
      if (nhot < 50) { printf "%s: FAIL: too few samples in the coroutine to judge (%d < 50)\n", what, nhot; exit 1 }
      if (clean * 100 < nhot * 90) { printf "%s: FAIL: under 90%% of the coroutine samples unwind cleanly to weft__ctx_entry\n", what; exit 1 }
      if (nsw >= 20 && swclean * 100 < nsw * 90) { printf "%s: FAIL: under 90%% of the samples in weft__ctx_switch unwind cleanly (its CFI?)\n", what; exit 1 }
      if (badcomm) { printf "%s: FAIL: coroutine samples on threads not named weft-w<N>\n", what; exit 1 }
    }' "$2"
}

case $case in
flame_fold)
  "$flame" "$here/sample.perf-script" >"$work/out.folded" || fail "weft-flame failed"
  diff -u "$here/sample.folded" "$work/out.folded" || fail "folded stacks differ from sample.folded"
  "$flame" -f "$work/stdin.folded" <"$here/sample.perf-script" || fail "weft-flame on stdin failed"
  cmp -s "$here/sample.folded" "$work/stdin.folded" || fail "stdin input folds differently"
  "$flame" --folded "$here/sample.folded" >"$work/round.folded" || fail "--folded failed"
  diff -u "$here/sample.folded" "$work/round.folded" || fail "folded input does not round-trip"
  "$flame" --merge-threads "$here/sample.perf-script" >"$work/merged.folded" || fail "--merge-threads failed"
  for want in 'weft-w*;weft__ctx_entry;co_entry;handle_conn;weft__after_switch;weft__ring_push_tagged 2' \
    'weft-blk-*;blocking_read;weird:name 1' 'weft-poller;epoll_pwait2 1' 'my server;[unknown];[libc.so.6];_dl_runtime_resolve_xsavec 1'; do
    grep -qxF -- "$want" "$work/merged.folded" || { cat "$work/merged.folded"; fail "--merge-threads: no line '$want'"; }
  done
  "$flame" --no-comm "$here/sample.perf-script" >"$work/nocomm.folded" || fail "--no-comm failed"
  grep -qxF 'weft__ctx_entry;co_entry;handle_conn;weft__after_switch;weft__ring_push_tagged 2' "$work/nocomm.folded" ||
    { cat "$work/nocomm.folded"; fail "--no-comm: the thread is still there"; }
  # Seven samples of period 1001001 and one of 10101010.
  "$flame" --period "$here/sample.perf-script" >"$work/period.folded" || fail "--period failed"
  sum=$(awk '{ n += $NF } END { print n }' "$work/period.folded")
  [[ $sum == 17108017 ]] || fail "--period: the weights sum to $sum, not 17108017"
  # Errors: no samples, bad usage.
  "$flame" </dev/null >/dev/null 2>"$work/err" && fail "empty input was accepted"
  grep -q 'no samples' "$work/err" || fail "empty input: no 'no samples' message"
  "$flame" --no-such-option </dev/null >/dev/null 2>&1
  (($? == 2)) || fail "a bad option did not exit 2"
  say "folded output matches sample.folded ($(wc -l <"$work/out.folded") stacks)"
  ;;

flame_svg)
  # The checker must reject what is broken, or passing means nothing.
  printf '<svg><g></svg>\n' >"$work/bad.svg"
  "$xmlcheck" "$work/bad.svg" >/dev/null 2>&1 && fail "weft-test-xmlcheck accepted mismatched tags"
  "$flame" -t 'sample <title> & "quotes"' -o "$work/sample.svg" -f "$work/sample.folded" \
    "$here/sample.perf-script" || fail "weft-flame failed"
  "$xmlcheck" "$work/sample.svg" || fail "the SVG is not well-formed"
  cmp -s "$here/sample.folded" "$work/sample.folded" || fail "-f with -o folds differently"
  grep -qF '>sample &lt;title&gt; &amp; &quot;quotes&quot;</text>' "$work/sample.svg" || fail "the title is not escaped"
  grep -qF '<title>all (8 samples, 100.00%)</title>' "$work/sample.svg" || fail "no root frame with 8 samples"
  # A <title> for every frame name in the folded stacks, escaped.
  n=0
  while IFS= read -r name; do
    esc=$(printf '%s' "$name" | xml_escape)
    grep -qF "<title>$esc (" "$work/sample.svg" || fail "no frame titled '$esc'"
    n=$((n + 1))
  done < <(sed 's/ [0-9]*$//' "$here/sample.folded" | tr ';' '\n' | sort -u)
  grep -qF '<title>std::vector&lt;int, std::allocator&lt;int&gt; &gt;::push_back(int const&amp;) (1 samples, 12.50%)</title>' \
    "$work/sample.svg" || fail "the C++ frame's title is wrong"
  if grep -qE '(href|src)="(https?:)?//' "$work/sample.svg"; then
    fail "the SVG refers to something outside itself"
  fi
  # Hostile names: markup, quotes, a control byte, broken UTF-8, "]]>",
  # a long name (truncated), and good UTF-8.
  {
    printf 'main;<script>alert(1)</script>;a&b 3\n'
    printf 'main;"quoted" '"'"'name'"'"';x]]>y 2\n'
    printf 'main;ctl\001\033[0m;bad\377\300utf8 1\n'
    printf 'main;%s 5\n' "$(printf 'very_long_name_%.0s' $(seq 1 40))"
    printf 'main;caf\303\251;\342\202\254uro 1\n'
  } >"$work/hostile.folded"
  "$flame" --folded -o "$work/hostile.svg" "$work/hostile.folded" || fail "weft-flame failed on hostile names"
  "$xmlcheck" "$work/hostile.svg" || fail "hostile names broke the SVG"
  grep -qF '<title>&lt;script&gt;alert(1)&lt;/script&gt; (3 samples' "$work/hostile.svg" || fail "markup in a name is not escaped"
  grep -qF '<title>café (1 samples' "$work/hostile.svg" || fail "UTF-8 in a name was not kept"
  grep -qF '..</text>' "$work/hostile.svg" || fail "no frame text was truncated"
  say "well-formed; $n frame names titled and escaped"
  ;;

thread_names)
  "$hot" names || fail "weft-test-hot names: some thread is not named"
  ;;

unwind_fp | unwind_dwarf)
  need_perf
  if [[ $case == unwind_fp ]]; then
    callgraph=(-g)
  else
    callgraph=(--call-graph dwarf)
    perf version --build-options 2>/dev/null | grep -qE '(libunwind|libdw-dwarf-unwind): +\[ on' ||
      skip "this perf was built without DWARF unwinding (libunwind or libdw)"
  fi
  # spin: most samples in weft_test_hot_spin; switch: many in weft_yield
  # and the context switch itself, whose CFI is hand-written.
  rc=0
  for mode in spin switch; do
    perf record -e cpu-clock -F 999 "${callgraph[@]}" -o "$work/$mode.data" -- "$hot" "$mode" 2 \
      >"$work/$mode.record.log" 2>&1 || { cat "$work/$mode.record.log"; fail "perf record ${callgraph[*]} failed"; }
    grep -v '^\[ perf record' "$work/$mode.record.log"
    perf script -i "$work/$mode.data" >"$work/$mode.script" 2>"$work/$mode.script.log" ||
      { cat "$work/$mode.script.log"; fail "perf script failed"; }
    judge "$case.$mode" "$work/$mode.script" || rc=1
  done
  exit $rc
  ;;

profile_tool)
  need_perf
  tool=$src/tools/profile
  [[ -x $tool ]] || fail "$tool is not executable"
  # Frame pointers, the default.
  "$tool" -o "$work/fp" -- "$hot" spin 1.5 >"$work/fp.log" 2>&1 || { cat "$work/fp.log"; fail "tools/profile failed"; }
  cat "$work/fp.log"
  for f in perf.data stacks.folded flame.svg; do
    [[ -s $work/fp/$f ]] || fail "tools/profile wrote no $f"
    grep -qF "$work/fp/$f" "$work/fp.log" || fail "tools/profile did not print the path of $f"
  done
  "$xmlcheck" "$work/fp/flame.svg" || fail "flame.svg is not well-formed"
  grep -qF '<title>weft_test_hot_spin (' "$work/fp/flame.svg" || fail "flame.svg does not name weft_test_hot_spin"
  grep -qE '^weft-w[0-9]+;weft__ctx_entry;co_entry;weft_test_hot_co;weft_test_hot_spin [0-9]+$' "$work/fp/stacks.folded" ||
    fail "stacks.folded has no weft-wN;weft__ctx_entry;co_entry;weft_test_hot_co;weft_test_hot_spin stack"
  # DWARF, threads merged, stopped after 2 s of a 60 s run (perf then
  # stops the program).
  "$tool" --dwarf -m -d 2 -o "$work/dwarf" -- "$hot" spin 60 >"$work/dwarf.log" 2>&1 ||
    { cat "$work/dwarf.log"; fail "tools/profile --dwarf -m -d 2 failed"; }
  cat "$work/dwarf.log"
  grep -q 'stopped after 2 s' "$work/dwarf.log" || fail "-d 2 did not stop the recording"
  "$xmlcheck" "$work/dwarf/flame.svg" || fail "flame.svg (--dwarf) is not well-formed"
  grep -qF '<title>weft_test_hot_spin (' "$work/dwarf/flame.svg" || fail "flame.svg (--dwarf) does not name weft_test_hot_spin"
  grep -qE '^weft-w\*;weft__ctx_entry;co_entry;weft_test_hot_co;weft_test_hot_spin [0-9]+$' "$work/dwarf/stacks.folded" ||
    fail "stacks.folded (-m) has no weft-w*;...;weft_test_hot_spin stack"
  # Its errors: a missing program, a failing program, a missing perf.
  "$tool" -o "$work/e1" -- "$work/no-such-program" >"$work/e1.log" 2>&1 && fail "a missing program was accepted"
  grep -q 'program not found' "$work/e1.log" || { cat "$work/e1.log"; fail "no 'program not found' message"; }
  "$tool" -o "$work/e2" -- "$hot" spin -1 >"$work/e2.log" 2>&1
  (($? == 2)) || { cat "$work/e2.log"; fail "a failing program's exit status (2) was not passed on"; }
  grep -q 'exited with status 2' "$work/e2.log" || { cat "$work/e2.log"; fail "no 'exited with status' message"; }
  PERF=$work/no-perf "$tool" -o "$work/e3" -- "$hot" spin 1 >"$work/e3.log" 2>&1 && fail "a missing perf was accepted"
  grep -q 'perf not found' "$work/e3.log" || { cat "$work/e3.log"; fail "no 'perf not found' message"; }
  say "tools/profile wrote perf.data, stacks.folded and flame.svg, with frame pointers and DWARF"
  ;;

*)
  echo "unknown case $case" >&2
  exit 2
  ;;
esac
