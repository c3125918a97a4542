#!/usr/bin/env bash
# test_stats_env.sh PROBE_WORK - WEFT_STATS=1 prints the runtime's summary
# to stderr when it stops, with the program's figures; without it (or with
# 0) nothing is printed.
set -u
bin=$1
w=${WEFT_WORKERS:-2}
fail() { echo "FAIL: $*"; exit 1; }
# 300 spawns and 20 sleeps, no lookups, 3 GETs.
out=$(WEFT_STATS=1 "$bin" 300 20 0 3 2>&1 >/dev/null) || fail "probe_work failed: $out"
echo "$out"
grep -q "^weft stats: $w workers" <<<"$out" || fail "no summary for $w workers"
[[ $(grep -c '^  worker ' <<<"$out") == "$w" ]] || fail "not one line per worker"
grep -q 'timer 20' <<<"$out" || fail "20 timer parks not reported"
grep -q 'armed now 0' <<<"$out" || fail "poller timers not reported"
grep -q 'http      started 3, done 3, failed 0, in flight 0' <<<"$out" || fail "HTTP figures"
spawned=$(grep -o 'spawned [0-9]* (+[0-9]*' <<<"$out" | tr -dc '0-9 +' | awk '{sub(/\(/,""); print $1 + $2}')
exited=$(grep -o 'exited [0-9]*' <<<"$out" | awk '{print $2}')
((spawned >= 300 + 20 + 2 + 1)) || fail "spawned $spawned < 323"
[[ $spawned == "$exited" ]] || fail "spawned $spawned != exited $exited at stop"
for v in 0 ""; do
	quiet=$(WEFT_STATS=$v "$bin" 10 1 0 1 2>&1 >/dev/null)
	[[ -z $quiet ]] || fail "WEFT_STATS='$v' printed: $quiet"
done
echo "ok"
