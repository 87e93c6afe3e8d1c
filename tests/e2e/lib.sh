# tests/e2e/lib.sh -- helpers the end-to-end scripts share (sourced, not a
# test).  The sourcing script defines fail() and sets M (the mount point)
# and P (the Redis-protocol port) before using them.

# Polls a condition with a deadline instead of sleeping.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 400); do "$@" && return 0; sleep 0.05; done
  fail "timed out waiting for $what"
}
mounted() { [ -f "$M/status" ]; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_up() { redis-cli -p "$P" PING 2>/dev/null | grep -q PONG; }

# The mount and redis-cli these tests need: a skip (77) without /dev/fuse,
# except under CI, where its absence is a failure.  Call after fail().
need_fuse_and_redis_cli() {
  if [ ! -c /dev/fuse ]; then
    if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
    echo "SKIP: no /dev/fuse"; exit 77
  fi
  command -v redis-cli > /dev/null || fail "redis-cli is missing (scripts/deps installs redis-tools)"
}
