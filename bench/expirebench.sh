#!/usr/bin/env bash
# bench/expirebench.sh -- the cost of key expiry: redis-benchmark SET then
# GET of keys without expiry vs SET ... EX 3600 then GET of expiring keys,
# against one `jetfs serve`, alternated in one run (plain, expiring, plain,
# expiring...) so that both see the same machine.  The first plain round
# runs before any key has an expiry (no expiry table yet); the next ones
# after (every SET then also looks its key up there).
#
#   expirebench.sh BUILD_DIR WORK_DIR [REQUESTS] [CLIENTS] [RUNS]
#
# Each figure is the median of RUNS rounds of `redis-benchmark -n REQUESTS
# -c CLIENTS -r 100000` with 100-byte values: requests/s, and serve's CPU
# time per request (/proc/PID/stat), steadier on a shared host.
set -euo pipefail
BUILD=${1:?usage: expirebench.sh BUILD_DIR WORK_DIR [REQUESTS] [CLIENTS] [RUNS]}
WORK=${2:?}
N=${3:-20000}
C=${4:-50}
RUNS=${5:-5}
F=$BUILD/jetfs
rm -rf "$WORK"; mkdir -p "$WORK/mnt"
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  fusermount3 -uz "$WORK/mnt" 2>/dev/null || true
}
trap cleanup EXIT
"$F" serve "$WORK/db" "$WORK/mnt" --listen "127.0.0.1:$P" > "$WORK/serve.log" 2>&1 &
SERVE=$!; PIDS+=("$SERVE")
for _ in $(seq 1 400); do [ "$(redis-cli -p "$P" PING 2>/dev/null)" = PONG ] && break; sleep 0.05; done
V=$(head -c 100 /dev/zero | tr '\0' x)
# serve's CPU time (user + system, clock ticks): on a shared host the
# CPU each request costs the server is steadier than requests/s.
ticks() { awk '{print $14 + $15}' "/proc/$SERVE/stat"; }
HZ=$(getconf CLK_TCK)
# rate FILE ARGS...: appends requests/s to FILE and serve's CPU us per request to FILE.cpu
rate() {
  local f=$1; shift
  local t0; t0=$(ticks)
  redis-benchmark -p "$P" -n "$N" -c "$C" -r 100000 -q "$@" 2>/dev/null | tr '\r' '\n' |
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1 >> "$f"
  echo "($(ticks) - $t0) * 1000000 / $HZ / $N" | bc -l >> "$f.cpu"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$WORK/set"; : > "$WORK/get"; : > "$WORK/setex"; : > "$WORK/getex"
for r in $(seq 1 "$RUNS"); do
  rate "$WORK/set" SET "plain:__rand_int__" "$V"
  rate "$WORK/get" GET "plain:__rand_int__"
  rate "$WORK/setex" SET "exp:__rand_int__" "$V" EX 3600
  rate "$WORK/getex" GET "exp:__rand_int__"
  echo "round $r: SET $(tail -1 "$WORK/set") GET $(tail -1 "$WORK/get") SET EX $(tail -1 "$WORK/setex") GET(expiring) $(tail -1 "$WORK/getex")"
done
s=$(median < "$WORK/set"); g=$(median < "$WORK/get"); se=$(median < "$WORK/setex"); ge=$(median < "$WORK/getex")
cs=$(median < "$WORK/set.cpu"); cg=$(median < "$WORK/get.cpu"); cse=$(median < "$WORK/setex.cpu"); cge=$(median < "$WORK/getex.cpu")
printf '| %s | %s | %s | %s |\n' "figure" "no expiry" "expiring" "expiring / no expiry"
printf '|---|---|---|---|\n'
printf '| SET vs SET EX 3600, req/s | %s | %s | %.3f |\n' "$s" "$se" "$(echo "$se / $s" | bc -l)"
printf '| GET, req/s | %s | %s | %.3f |\n' "$g" "$ge" "$(echo "$ge / $g" | bc -l)"
printf '| SET vs SET EX 3600, serve CPU us/request | %.1f | %.1f | %.3f |\n' "$cs" "$cse" "$(echo "$cse / $cs" | bc -l)"
printf '| GET, serve CPU us/request | %.1f | %.1f | %.3f |\n' "$cg" "$cge" "$(echo "$cge / $cg" | bc -l)"
