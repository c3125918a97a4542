#!/usr/bin/env bash
# test_probes.sh PROBE_WORK [WORKERS] - every USDT probe fires as often as
# the work done says.
#
# probe_work (probe_work.c) does a known amount of work and prints the
# counts that are fixed by it (timer parks, DNS and HTTP starts and
# finishes); with WEFT_STATS=1 it also prints the runtime's own counters at
# stop, after the workers have stopped, so the scheduling-dependent probes
# (run, steal, worker sleeps, yields, spawns, exits) are compared with
# those exactly. perf stat counts in the kernel, so no event is lost.
#
# Needs perf and uprobes (root, tracefs): exits 77 (skipped) saying which
# is missing. The probe definitions are global to the machine, so CTest
# runs these tests one at a time (RESOURCE_LOCK uprobes).
set -u
bin=$(readlink -f "$1")
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v perf >/dev/null || skip "perf is not installed"
readelf -n "$bin" 2>/dev/null | grep -q 'Provider: weft' ||
	skip "$bin has no weft probes (WEFT_PROBES=OFF, or no sys/sdt.h)"
if [[ ! -d /sys/kernel/tracing/events ]]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
		skip "tracefs is not mounted and cannot be (mount -t tracefs nodev /sys/kernel/tracing, as root)"
fi
[[ -w /sys/kernel/tracing/uprobe_events ]] || skip "no write access to uprobe_events (run as root)"

tmp=$(mktemp -d)
cleanup() { perf probe -q -d 'sdt_weft:*' >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
perf probe -q -d 'sdt_weft:*' >/dev/null 2>&1
perf buildid-cache --add "$bin" >/dev/null 2>&1 || fail "perf buildid-cache --add $bin"
events=(spawn run yield park unpark steal worker_sleep worker_wake poller_wake
	dns_start dns_done http_start http_done exit)
args=()
for e in "${events[@]}"; do
	perf probe -q -x "$bin" "sdt_weft:$e" >"$tmp/probe.log" 2>&1 ||
		fail "perf probe -x $bin sdt_weft:$e: $(cat "$tmp/probe.log")"
	args+=(-e "sdt_weft:$e")
done
# Park reasons through the kernel's event filter (arg2 is the reason).
args+=(-e sdt_weft:park --filter 'arg2 == 4' -e sdt_weft:park --filter 'arg2 == 5')

# Lookups ask a loopback port where nothing listens: one query each, failed.
WEFT_STATS=1 WEFT_DNS_SERVERS=127.0.0.1:1 \
	perf stat -x, -o "$tmp/stat" "${args[@]}" -- "$bin" 2000 150 25 30 >"$tmp/out" 2>"$tmp/err" ||
	{ cat "$tmp/err"; fail "perf stat $bin failed"; }
cat "$tmp/out" "$tmp/err"
grep -v '^#' "$tmp/stat" | grep -v '^$' >"$tmp/counts"
cat "$tmp/counts"

# count N: the Nth counter line's value (in the order of args).
count() { sed -n "${1}p" "$tmp/counts" | cut -d, -f1; }
declare -A got
i=1
for e in "${events[@]}"; do
	got[$e]=$(count $i)
	i=$((i + 1))
done
park_timer=$(count $i)
park_dns=$(count $((i + 1)))
for e in "${events[@]}"; do
	[[ ${got[$e]} =~ ^[0-9]+$ ]] || fail "no count for sdt_weft:$e (perf said: ${got[$e]})"
done

# expect park_timer=.. dns_start=.. ...
expect() { grep -o "$1=[0-9]*" "$tmp/out" | cut -d= -f2; }
# stat FIELD: from the WEFT_STATS total lines.
total=$(grep -A2 '^  total' "$tmp/err")
stat() { grep -o "$1 [0-9]*" <<<"$total" | head -n1 | awk '{print $NF}'; }
foreign=$(grep -o '(+[0-9]*' <<<"$total" | tr -d '(+')
timer_stat=$(grep -o 'timer [0-9]*' <<<"$total" | awk '{print $2}')
dns_stat=$(grep -o 'dns [0-9]*' <<<"$total" | awk '{print $2}')

status=0
check() { # name got want
	if [[ $2 == "$3" ]]; then
		echo "ok   $1: $2"
	else
		echo "FAIL $1: probe fired $2 times, expected $3"
		status=1
	fi
}
check spawn "${got[spawn]}" $(($(stat spawned) + foreign))
check exit "${got[exit]}" "$(stat exited)"
check run "${got[run]}" "$(stat runs)"
check yield "${got[yield]}" "$(stat yields)"
check steal "${got[steal]}" "$(stat steals)"
check worker_sleep "${got[worker_sleep]}" "$(stat sleeps)"
check worker_wake "${got[worker_wake]}" "$(stat sleeps)"
check "park (timer)" "$park_timer" "$(expect park_timer)"
check "park (timer) vs stats" "$park_timer" "$timer_stat"
check "park (dns)" "$park_dns" "$dns_stat"
check dns_start "${got[dns_start]}" "$(expect dns_start)"
check dns_done "${got[dns_done]}" "$(expect dns_done)"
check http_start "${got[http_start]}" "$(expect http_start)"
check http_done "${got[http_done]}" "$(expect http_done)"
# At least the work's own spawns; every park is matched by an unpark (the
# runtime stops with nothing parked); the poller wakes at least once per
# timer batch and once more to stop.
((got[spawn] >= 2000 + 150 + 3)) || { echo "FAIL spawn: ${got[spawn]} < 2153"; status=1; }
check unpark "${got[unpark]}" "${got[park]}"
wakes=$(grep -o 'wakes [0-9]*' "$tmp/err" | awk '{print $2}')
((got[poller_wake] >= wakes && got[poller_wake] <= wakes + 2)) ||
	{ echo "FAIL poller_wake: ${got[poller_wake]}, stats say $wakes"; status=1; }
exit $status
