#!/usr/bin/env bash
# bench/respbench.sh -- redis-benchmark SET/GET/INCR against `jetfs serve`,
# without and with a full backup being read through the mount, and against a
# local redis-server with appendonly yes + appendfsync always (every write
# durable before its reply, as jetfs), all in one run (scripts/bench calls it).
# Each test runs without pipelining and with -P 16 (16 requests in flight per
# connection, so a durable flush can cover many more commands).
#
#   respbench.sh BUILD_DIR WORK_DIR [REQUESTS] [CLIENTS] [RUNS] [PIPELINES]
#
# PIPELINES is a list of -P depths (default "1 16").  Each figure is the
# median requests/s of RUNS runs of `redis-benchmark -n REQUESTS*depth
# -c CLIENTS -d 100 -r 100000 -P depth` (REQUESTS times the depth, so that a
# pipelined run lasts about as long as an unpipelined one instead of a few
# tens of milliseconds); jetfs/redis = jetfs / redis-server at the same
# depth, backup/none = jetfs while a backup is read / jetfs without.
set -euo pipefail
BUILD=${1:?usage: respbench.sh BUILD_DIR WORK_DIR [REQUESTS] [CLIENTS] [RUNS] [PIPELINES]}
WORK=${2:?}
N=${3:-20000}
C=${4:-50}
RUNS=${5:-3}
PIPELINES=${6:-1 16}
F=$BUILD/jetfs
J=$BUILD/jetutil
command -v redis-server > /dev/null || { echo "respbench: redis-server is missing (apt-get install redis-server)" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK/mnt" "$WORK/redis"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PJ=$(port); PR=$(port)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  fusermount3 -uz "$WORK/mnt" 2>/dev/null || true
}
trap cleanup EXIT
up() { for _ in $(seq 1 400); do [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done; exit 1; }

# A database large enough that reading the backup takes the whole run.
"$J" load "$WORK/db" --keys 100000 --value-size 4000 --batch 2000 > /dev/null
"$F" serve "$WORK/db" "$WORK/mnt" --listen "127.0.0.1:$PJ" > "$WORK/serve.log" 2>&1 &
PIDS+=("$!")
redis-server --port "$PR" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes --appendfsync always \
  --save '' --daemonize no > "$WORK/redis.log" 2>&1 &
PIDS+=("$!")
up "$PJ"; up "$PR"

rate() {  # port test pipeline -> median requests/s
  local p=$1 t=$2 pl=$3 out=()
  for _ in $(seq 1 "$RUNS"); do
    out+=("$(redis-benchmark -p "$p" -t "$t" -n "$((N * pl))" -c "$C" -r 100000 -d 100 -P "$pl" -q --csv |
      tail -1 | cut -d, -f2 | tr -d '"')")
  done
  printf '%s\n' "${out[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
# Keeps reading the full backup set while the benchmark runs.
backup_reader() {
  while :; do cat "$WORK/mnt/backup/full/"* > /dev/null 2>&1 || true
    fusermount3 -u "$WORK/mnt" 2>/dev/null || true
    for _ in $(seq 1 200); do [ -f "$WORK/mnt/status" ] && break; sleep 0.05; done
  done
}
printf "redis-benchmark -n %s*depth -c %s -d 100 -r 100000 -P depth, median of %s runs (requests/s)\n" "$N" "$C" "$RUNS"
printf "%-6s %3s %12s %12s %12s %11s %12s\n" test -P redis-always jetfs jetfs+backup "jetfs/redis" "backup/none"
for pl in $PIPELINES; do
  for t in set get incr; do
    r=$(rate "$PR" "$t" "$pl"); j=$(rate "$PJ" "$t" "$pl")
    backup_reader & BR=$!
    b=$(rate "$PJ" "$t" "$pl")
    kill "$BR" 2>/dev/null; wait "$BR" 2>/dev/null || true
    awk -v t="$t" -v pl="$pl" -v r="$r" -v j="$j" -v b="$b" \
      'BEGIN {printf "%-6s %3s %12.0f %12.0f %12.0f %10.2fx %11.2fx\n", t, pl, r, j, b, j / r, b / j}'
  done
done
