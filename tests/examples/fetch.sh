#!/usr/bin/env bash
# tests/examples/fetch.sh - examples/fetch and tools/weft-fetch against
# weft-test-httpd on a loopback port: every URL's status and size is
# reported, errors are named, and weft-fetch's summary counts what it did.
#
# usage: fetch.sh FETCH WEFT_FETCH WEFT_TEST_HTTPD
set -euo pipefail

if (($# != 3)); then
  echo "usage: $0 FETCH WEFT_FETCH WEFT_TEST_HTTPD" >&2
  exit 2
fi
fetch=$1 weft_fetch=$2 httpd=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-fetch.XXXXXX")
exec 3> >(exec "$httpd" >"$work/httpd.out" 2>"$work/httpd.err") # stdin: EOF stops it
cleanup() {
  exec 3>&- || true
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  printf 'fetch-test: FAIL: %s\n' "$*"
  for f in "$work"/*; do printf '%s:\n' "$f"; cat "$f"; done
  exit 1
}

for _ in $(seq 100); do
  [[ -s $work/httpd.out ]] && break
  sleep 0.1
done
port=$(awk '/^port / {print $2; exit}' "$work/httpd.out")
[[ -n $port ]] || fail "weft-test-httpd did not say its port"
base=http://127.0.0.1:$port

# The example: one line per URL as each completes, exit 1 if any failed.
"$fetch" "$base/bytes/1234" "$base/status/404" "$base/delay/300" >"$work/ex.out" 2>&1 ||
  fail "fetch exited $?"
grep -qx "$base/bytes/1234: 200, 1234 bytes" "$work/ex.out" || fail "bytes line"
grep -qx "$base/status/404: 404, 10 bytes" "$work/ex.out" || fail "404 line"
grep -qx "$base/delay/300: 200, 2 bytes" "$work/ex.out" || fail "delay line"
[[ $(tail -n1 "$work/ex.out") == "$base/delay/300: 200, 2 bytes" ]] ||
  fail "the 300 ms one should complete last"
if "$fetch" "http://127.0.0.1:1/" >"$work/ex2.out" 2>&1; then fail "a refused URL exited 0"; fi
grep -q "connection refused" "$work/ex2.out" || fail "refused is named"

# weft-fetch: 200 URLs from a file, 20 at a time, one of them failing.
for i in $(seq 199); do echo "$base/bytes/$i"; done >"$work/urls"
echo "$base/garbage" >>"$work/urls"
if "$weft_fetch" -c 20 -f "$work/urls" >"$work/wf.out" 2>"$work/wf.err"; then
  fail "weft-fetch exited 0 with a failed URL"
fi
(($(grep -c '^200 ' "$work/wf.out") == 199)) || fail "199 lines of 200"
grep -q "^ERR HTTP: the server's answer is not valid HTTP $base/garbage\$" "$work/wf.out" ||
  fail "the garbage URL's error"
grep -q "^200 URLs in .* 2xx 199, 3xx 0, 4xx 0, 5xx 0, errors 1; 19900 body bytes" "$work/wf.err" ||
  fail "the summary"
echo "fetch-test: ok"
