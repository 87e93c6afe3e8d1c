#!/usr/bin/env bash
# tests/e2e/test_resp_limits.sh -- Redis's client limits, with redis-cli, then
# under load:
#  - --maxclients: the client past the limit gets "ERR max number of clients
#    reached"; --proto-max-bulk-len: a longer argument gets "ERR Protocol
#    error: invalid bulk length"; --timeout: an idle client is closed;
#    --client-query-buffer-limit: a client past it is disconnected and logged;
#  - under load (resp_limits_load.py): with 1,000 connections open, each limit
#    holds, a client that reads none of its replies stalls nobody, and a
#    well-behaved client on another connection is answered throughout.
set -euo pipefail
BIN=${JET_BIN:?}
F=$BIN/jetfs
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_limits.XXXXXX")
fail() { echo "FAIL: $*" >&2; for l in "$TMP"/*.log; do [ -f "$l" ] && tail -40 "$l" | sed "s|^|  $(basename "$l"): |" >&2; done; exit 1; }
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_fuse_and_redis_cli
mkdir -p "$TMP/mnt"
M=$TMP/mnt
PIDS=()
cleanup() {
  exec 3>&- 4>&- 5>&- 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  fusermount3 -uz "$M" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
P=$(free_port)
stop_serve() {
  kill "$1"; wait "$1" || fail "serve exited $? after SIGTERM"
  wait_for "the unmount" sh -c "! mountpoint -q '$M'"
}

# --- each limit with redis-cli ---
"$F" serve "$TMP/db" "$M" --listen "$P" --maxclients 2 --timeout 1 --proto-max-bulk-len 1M \
  > "$TMP/small.log" 2>&1 &
S=$!; PIDS+=("$S")
wait_for "serve" sh -c "redis-cli -p $P PING 2>/dev/null | grep -q PONG && [ -f '$M/status' ]"
[ "$(redis-cli -p "$P" INFO clients | tr -d '\r' | grep maxclients)" = "maxclients:2" ] || fail "INFO maxclients"
# The server sees earlier redis-cli runs go asynchronously: wait until only the asker is left.
wait_for "earlier clients to go" sh -c "redis-cli -p $P INFO clients | tr -d '\r' | grep -qx connected_clients:1"
exec 3<> "/dev/tcp/127.0.0.1/$P" 4<> "/dev/tcp/127.0.0.1/$P"
printf 'PING\r\n' >&3; printf 'PING\r\n' >&4
read -r -t 5 a <&3; read -r -t 5 b <&4
[ "${a%$'\r'}" = +PONG ] && [ "${b%$'\r'}" = +PONG ] || fail "the two allowed clients: '$a' '$b'"
out=$(redis-cli -p "$P" PING 2>&1 || true)
[ "$out" = "ERR max number of clients reached" ] || fail "the third client of --maxclients 2 got '$out'"
# --timeout 1: both held connections go quiet and are closed; a new client is served.
sleep 3
printf 'PING\r\n' >&3 2>/dev/null || true
if read -r -t 3 a <&3; then fail "an idle client was still served after --timeout 1: '$a'"; fi
exec 3>&- 4>&-
[ "$(redis-cli -p "$P" PING)" = PONG ] || fail "no client served after the idle ones were closed"
# --proto-max-bulk-len 1M
out=$(head -c 2000000 /dev/zero | tr '\0' x | redis-cli -p "$P" -x SET toolong 2>&1 || true)
case "$out" in *"ERR Protocol error: invalid bulk length"*) ;; *) fail "a 2 MB argument got '$out'" ;; esac
[ "$(redis-cli -p "$P" EXISTS toolong)" = 0 ] || fail "the refused argument was stored"
out=$(head -c 900000 /dev/zero | tr '\0' x | redis-cli -p "$P" -x SET fits 2>&1)
[ "$out" = OK ] || fail "a 900 kB argument under the 1M limit got '$out'"
stop_serve "$S"

# The defaults are Redis's.
"$F" serve "$TMP/db" "$M" --listen "$P" > "$TMP/default.log" 2>&1 &
S=$!; PIDS+=("$S")
wait_for "serve" sh -c "redis-cli -p $P PING 2>/dev/null | grep -q PONG && [ -f '$M/status' ]"
mc=$(redis-cli -p "$P" CONFIG GET maxclients | tail -1)
[ "$mc" = 10000 ] || grep -q "serving at most $mc clients" "$TMP/default.log" || fail "default maxclients $mc, not 10000 nor explained"
stop_serve "$S"

set +e
"$F" serve "$TMP/never" "$M" --listen "$P" --maxclients 0 > "$TMP/bad.out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && grep -q -- "--maxclients" "$TMP/bad.out" || fail "--maxclients 0: exit $rc $(cat "$TMP/bad.out")"

# --- under load: 1,000 connections ---
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 2200 ] || fail "ulimit -n is $(ulimit -n): 1,000 connections need 2,200"
printf 'load password\n' > "$TMP/pw"; chmod 600 "$TMP/pw"
"$F" serve "$TMP/db" "$M" --listen "$P" --requirepass-file "$TMP/pw" --maxclients 1005 --timeout 5 \
  --proto-max-bulk-len 1M --client-query-buffer-limit 2M > "$TMP/load.log" 2>&1 &
S=$!; PIDS+=("$S")
wait_for "serve" sh -c "redis-cli -p $P --no-auth-warning -a 'load password' PING 2>/dev/null | grep -q PONG && [ -f '$M/status' ]"
timeout 300 python3 "$(dirname "$0")/resp_limits_load.py" "$P" "load password" "$S" > "$TMP/driver.log" 2>&1 ||
  fail "under load: $(grep FAIL "$TMP/driver.log" || tail -5 "$TMP/driver.log")"
cat "$TMP/driver.log"
grep -q "closing client [0-9]* (127.0.0.1:[0-9]*): its query buffer holds [0-9]* unexecuted bytes" "$TMP/load.log" ||
  fail "the query-buffer disconnect was not logged"
# Everything written before and during the load is there and the server is whole.
[ "$(redis-cli -p "$P" --no-auth-warning -a 'load password' GET big | wc -c)" = 500001 ] || fail "the big value after the load"
[ "$(redis-cli -p "$P" --no-auth-warning -a 'load password' EXISTS q1)" = 0 ] || fail "the request cut by the query-buffer limit was executed"
stop_serve "$S"
grep -q "instance shut down cleanly" "$TMP/load.log" || fail "no clean shutdown"
echo "PASS: maxclients, idle timeout, bulk length, query-buffer limit; each held with 1,000 connections open"
