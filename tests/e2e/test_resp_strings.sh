#!/usr/bin/env bash
# tests/e2e/test_resp_strings.sh -- Redis's string family and key expiry
# through redis-cli against `jetfs serve`:
#  - a differential run: one command sequence (tests/e2e/resp_strings.cmds)
#    sent to redis-server and to jetfs serve, replies compared line by line
#    (skipped, and said so, when redis-server is not installed);
#  - keys with 100 ms TTLs expire on time, for every command;
#  - kill -9 of serve keeps deadlines: a one-hour key still has ~1 h after
#    the restart, keys whose deadline passed meanwhile are gone;
#  - jetutil export shows the deadlines as a table of their own
#    (redis_expires), and a database in which nothing expired exports
#    without it.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=${JET_TEST_TMP:-/tmp}/e2e_resp_strings.$$
fail() { echo "FAIL: $*" >&2; for l in "$TMP"/*.log; do [ -f "$l" ] && sed "s|^|  $(basename "$l"): |" "$l" >&2; done; exit 1; }
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
command -v redis-cli > /dev/null || fail "redis-cli is missing (scripts/deps installs redis-tools)"
rm -rf "$TMP"; mkdir -p "$TMP/mnt" "$TMP/redis"
M=$TMP/mnt
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  fusermount3 -uz "$M" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 300); do "$@" && return 0; sleep 0.05; done
  fail "timed out waiting for $what"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(free_port)
R() { redis-cli -p "$P" "$@"; }
up() { [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ] && [ -f "$2/status" ]; }
serve() {
  "$F" serve "$TMP/db" "$M" --listen "127.0.0.1:$P" >> "$TMP/serve.log" 2>&1 &
  SERVE=$!; PIDS+=("$SERVE")
  wait_for "jetfs serve" up "$P" "$M"
}
serve

# --- the differential run: the same commands to redis-server and to jetfs ---
CMDS=$HERE/resp_strings.cmds
if command -v redis-server > /dev/null; then
  RP=$(free_port)
  # The other types' commands renamed away: Redis then answers them with
  # its own unknown-command error, which is what jetfs must answer.
  OTHERS=()
  for c in LPUSH RPUSH LRANGE HSET HGET SADD SMEMBERS ZADD ZRANGE XADD PFADD SETBIT GEOADD; do
    OTHERS+=(--rename-command "$c" "")
  done
  redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" "${OTHERS[@]}" \
    > "$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  redis_up() { [ "$(redis-cli -p "$RP" PING 2>/dev/null)" = PONG ]; }
  wait_for "redis-server" redis_up
  redis-cli -p "$RP" FLUSHALL > /dev/null
  # One redis-cli per line, so a reply is never split across lines by
  # another's; each reply is prefixed with its command.
  run_all() (
    set -f # a line's words are not file patterns
    while IFS= read -r line; do
      case $line in ''|'#'*) continue ;; esac
      # shellcheck disable=SC2086 # the words of the line are the arguments
      # KEYS's order is Redis's hash order: compared sorted.  A positive
      # TTL depends on when it is asked (a loaded host takes seconds for
      # the run): compared as "positive" (test_resp_server checks values).
      case $line in KEYS*) order=(sort) ;; TTL*) order=(sed 's/^[1-9][0-9]*$/positive/') ;; *) order=(cat) ;; esac
      printf '%s => %s\n' "$line" "$(redis-cli -p "$1" $line 2>&1 | "${order[@]}" | tr '\n' '|')"
    done < "$CMDS"
  )
  run_all "$RP" > "$TMP/redis.out"
  run_all "$P" > "$TMP/jetfs.out"
  diff -u "$TMP/redis.out" "$TMP/jetfs.out" > "$TMP/diff.out" || fail "jetfs answers differently from redis-server: $(cat "$TMP/diff.out")"
  echo "differential: $(wc -l < "$TMP/redis.out") commands, replies identical to redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  R FLUSHDB > /dev/null
else
  echo "SKIP (part): redis-server is not installed: no differential run (scripts/deps installs it)"
fi

# --- commands through redis-cli ---
[ "$(R SET s hello)" = OK ] && [ "$(R APPEND s ' world')" = 11 ] || fail "APPEND"
[ "$(R GETRANGE s 0 4)" = hello ] && [ "$(R STRLEN s)" = 11 ] || fail "GETRANGE/STRLEN"
[ "$(R SETRANGE s 6 WORLD)" = 11 ] && [ "$(R GET s)" = "hello WORLD" ] || fail "SETRANGE"
[ "$(R GETDEL s)" = "hello WORLD" ] && [ "$(R EXISTS s)" = 0 ] || fail "GETDEL"
[ "$(R INCRBYFLOAT f 2.5)" = 2.5 ] && [ "$(R INCRBYFLOAT f 0.5)" = 3 ] || fail "INCRBYFLOAT"
R LPUSH l a 2>&1 | grep -q "unknown command 'LPUSH'" || fail "LPUSH is not unknown: $(R LPUSH l a 2>&1)"
R FLUSHDB > /dev/null

# --- 100 ms keys expire on time ---
# (one redis-cli for both: starting one can take tens of ms here)
[ "$(printf 'SET one v PX 100\nGET one\n' | R | tr '\n' ' ')" = "OK v " ] || fail "a 100 ms key is gone at once"
sleep 0.15
[ -z "$(R GET one)" ] && [ "$(R EXISTS one)" = 0 ] || fail "a 100 ms key is still there after 150 ms"
for i in $(seq 1 50); do echo "SET t:$i v PX 1000"; done | R > /dev/null
R SET keep v > /dev/null
[ "$(R GET t:1)" = v ] || fail "a 1 s key is gone at once"
sleep 1.1
[ -z "$(R GET t:1)" ] || fail "GET of an expired key: $(R GET t:1)"
[ "$(R EXISTS t:1 t:2 t:50 keep)" = 1 ] || fail "EXISTS counts expired keys"
[ "$(R KEYS '*')" = keep ] || fail "KEYS lists expired keys: $(R KEYS '*' | tr '\n' ' ')"
[ "$(R --scan)" = keep ] || fail "SCAN lists expired keys: $(R --scan | tr '\n' ' ')"
[ "$(R TTL t:7)" = -2 ] || fail "TTL of an expired key: $(R TTL t:7)"
# The sweep reclaims them in the background (DBSIZE counts them until then).
swept() { [ "$(R DBSIZE)" = 1 ]; }
wait_for "the sweep to reclaim 50 expired keys" swept

# --- kill -9 keeps deadlines ---
R SET hour v EX 3600 > /dev/null
R SET soon v PX 300 > /dev/null
R SET forever v > /dev/null
kill -9 "$SERVE"; wait "$SERVE" 2> /dev/null || true
fusermount3 -uz "$M" 2> /dev/null || true
sleep 0.4
serve
ttl=$(R TTL hour)
[ "$ttl" -ge 3595 ] && [ "$ttl" -le 3600 ] || fail "a one-hour key has $ttl s left after kill -9 and restart"
[ -z "$(R GET soon)" ] && [ "$(R EXISTS soon)" = 0 ] || fail "a key whose deadline passed during the restart is back"
[ "$(R TTL forever)" = -1 ] || fail "a key without expiry has TTL $(R TTL forever)"
R SHUTDOWN > /dev/null 2>&1 || true
wait "$SERVE" 2> /dev/null || true
fusermount3 -uz "$M" 2> /dev/null || true

# --- export: the deadlines are a table of their own ---
"$J" export "$TMP/db" > "$TMP/export" 2> "$TMP/export.log" || fail "export: $(cat "$TMP/export.log")"
grep -qx "table redis_expires" "$TMP/export" || fail "export has no redis_expires table: $(cat "$TMP/export")"
hourhex=$(printf hour | od -An -tx1 | tr -d ' \n')
grep -A5 "^table redis_expires" "$TMP/export" | grep -q "^$hourhex " || fail "export has no deadline for 'hour'"
echo "e2e resp strings: ok"
