#!/usr/bin/env bash
# tests/e2e/test_resp_libs.sh -- `jetfs serve --listen` driven by the Redis
# client libraries applications use: redis-py (Debian's python3-redis, run
# by /usr/bin/python3) and ioredis (pinned in tests/e2e/clients/package.json,
# installed by scripts/deps).  Each goes through connecting (with what the
# library sends on connect, and HELLO 3 / CLIENT SETINFO as newer versions
# send them), pipelines, MULTI/EXEC through its transaction API, SCAN over
# 10,000 keys, binary keys and values, and unsupported calls (Redis's
# unknown-command error): tests/e2e/clients/*_check.*.  Then the server
# is stopped and started again and the keys both libraries wrote are read
# back with redis-cli: what they were told was written is on disk.
set -euo pipefail
BIN=${JET_BIN:?}
F=$BIN/jetfs
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENTS=$HERE/clients
TMP=${JET_TEST_TMP:-/tmp}/e2e_libs.$$
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/serve.log" ] && sed 's|^|  serve.log: |' "$TMP/serve.log" >&2; exit 1; }
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77 # ctest's SKIP_RETURN_CODE
fi
command -v redis-cli > /dev/null || fail "redis-cli is missing (scripts/deps installs redis-tools)"
/usr/bin/python3 -c 'import redis' 2> /dev/null || fail "redis-py is missing (scripts/deps installs python3-redis)"
command -v node > /dev/null || fail "node is missing (scripts/deps installs nodejs)"
[ -f "$CLIENTS/node_modules/ioredis/package.json" ] || fail "ioredis is missing from $CLIENTS/node_modules (scripts/deps installs it: npm ci)"
want=$(node -p 'require(process.argv[1]).packages["node_modules/ioredis"].version' "$CLIENTS/package-lock.json")
have=$(node -p 'require(process.argv[1]).version' "$CLIENTS/node_modules/ioredis/package.json")
[ "$want" = "$have" ] || fail "ioredis $have is installed, package-lock.json pins $want (run scripts/deps)"

rm -rf "$TMP"; mkdir -p "$TMP/mnt"
M=$TMP/mnt
SERVE=""
cleanup() {
  [ -n "$SERVE" ] && kill -9 "$SERVE" 2>/dev/null || true
  fusermount3 -uz "$M" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
. "$HERE/lib.sh"
P=$(free_port)
up() { port_up && mounted; }
start() {
  "$F" serve "$TMP/db" "$M" --listen "127.0.0.1:$P" >> "$TMP/serve.log" 2>&1 &
  SERVE=$!
  wait_for "jetfs serve" up
}
start

/usr/bin/python3 "$CLIENTS/redis_py_check.py" "$P" || fail "redis-py against jetfs serve"
node "$CLIENTS/ioredis_check.js" "$P" || fail "ioredis against jetfs serve"

# What the libraries were told was written survives a restart.
kill -TERM "$SERVE"
wait "$SERVE" || fail "jetfs serve exited $? on SIGTERM"
SERVE=""
wait_for "the mount to go" bash -c "! mountpoint -q '$M'"
start
[ "$(redis-cli -p "$P" GET acct:b)" = 35 ] || fail "acct:b after a restart: $(redis-cli -p "$P" GET acct:b)"
[ "$(redis-cli -p "$P" GET p:999)" = 1000 ] || fail "p:999 after a restart"
[ "$(redis-cli -p "$P" --scan --pattern 'scan:*' | wc -l)" = 10000 ] || fail "the 10,000 scan keys after a restart"
[ "$(redis-cli -p "$P" GET scan:09999)" = 9999 ] || fail "scan:09999 after a restart"
kill -TERM "$SERVE"
wait "$SERVE" || fail "jetfs serve exited $? on SIGTERM"
SERVE=""
echo "PASS: test_resp_libs"
