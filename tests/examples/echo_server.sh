#!/usr/bin/env bash
# tests/examples/echo_server.sh - examples/echo_server really echoes: start
# it on a free loopback port, have several clients at once send data of
# their own (text lines and binary) and check each gets exactly its own
# bytes back, check a client that hangs up at once does not stop the
# server, then kill it.
#
# usage: echo_server.sh PATH_TO_ECHO_SERVER
# echo_server takes a port but cannot pick a free one, so this picks a
# random high port and tries another when that one is taken. Clients use
# bash's /dev/tcp.
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 ECHO_SERVER" >&2
  exit 2
fi
server=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-echo.XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf 'echo-test: %s\n' "$*"; }
fail() {
  say "FAIL: $*"
  if [[ -f $work/server.err ]]; then
    say "server stderr:"
    cat "$work/server.err"
  fi
  exit 1
}

# Start the server; 0 when it says it listens, 1 when its port was taken.
start() {
  local port=$1
  : >"$work/server.out"
  "$server" "$port" >"$work/server.out" 2>"$work/server.err" &
  pid=$!
  for _ in $(seq 200); do # up to 20 s on a loaded machine
    if grep -q "listening on 127.0.0.1:$port" "$work/server.out"; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0
      wait "$pid" || rc=$?
      pid=
      grep -qi "address already in use" "$work/server.err" && return 1
      fail "echo_server exited ($rc) before listening"
    fi
    sleep 0.1
  done
  fail "echo_server did not say it listens"
}

port=
for _ in $(seq 20); do
  p=$((20000 + RANDOM % 40000))
  if start "$p"; then
    port=$p
    break
  fi
done
[[ -n $port ]] || fail "no free port after 20 tries"
say "echo_server (pid $pid) on 127.0.0.1:$port"

# One client: send file $1 and read back as many bytes into $2, the
# sending in the background so neither side waits on a full buffer.
client() {
  local in=$1 out=$2 size fd
  size=$(stat -c %s "$in")
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"
  cat "$in" >&"$fd" &
  local writer=$!
  timeout 30 head -c "$size" <&"$fd" >"$out" || true
  wait "$writer" || true
  exec {fd}>&-
}

# Data of its own for each client: numbered lines, then random bytes.
clients=8
for i in $(seq "$clients"); do
  {
    for j in $(seq 200); do printf 'client %d line %d\n' "$i" "$j"; done
    head -c $((16384 * i)) /dev/urandom
  } >"$work/in.$i"
done

# A client that connects and hangs up before sending anything.
exec {quick}<>"/dev/tcp/127.0.0.1/$port"
exec {quick}>&-

pids=()
for i in $(seq "$clients"); do
  client "$work/in.$i" "$work/out.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a client failed"; done
for i in $(seq "$clients"); do
  got=$(stat -c %s "$work/out.$i")
  sent=$(stat -c %s "$work/in.$i")
  cmp "$work/in.$i" "$work/out.$i" || fail "client $i: sent $sent bytes, got back $got, not the same"
done
say "$clients clients got their $(cat "$work"/in.* | wc -c) bytes back"

# Still serving after all of that.
client "$work/in.1" "$work/again"
cmp "$work/in.1" "$work/again" || fail "a client after the others got something else back"
kill -0 "$pid" 2>/dev/null || fail "echo_server died"
say "ok"
