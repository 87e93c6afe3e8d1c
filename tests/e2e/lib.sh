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
