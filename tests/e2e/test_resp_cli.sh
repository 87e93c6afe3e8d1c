#!/usr/bin/env bash
# tests/e2e/test_resp_cli.sh -- `jetfs serve --listen` driven by real Redis
# clients while real tools take backups through the mount:
#  - redis-cli commands and redis-benchmark against the live instance;
#  - a MULTI/EXEC transfer workload (4 clients moving money between 20
#    accounts) runs while a full backup is taken with tar and an incremental
#    with rsync; each set is restored with jetutil restore, served again,
#    and the sum of all balances read back with redis-cli is unchanged;
#  - malformed RESP (a huge announced length, binary garbage, a truncated
#    frame) gets an error or a closed connection, never a crash, while
#    other clients keep working and no acknowledged write is lost;
#  - pipelined writes share one fsync per batch (counted with strace), and
#    every acknowledged one survives kill -9.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_resp.$$
fail() { echo "FAIL: $*" >&2; for l in "$TMP"/serve*.log; do [ -f "$l" ] && sed "s|^|  $(basename "$l"): |" "$l" >&2; done; exit 1; }
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
command -v redis-cli > /dev/null || fail "redis-cli is missing (scripts/deps installs redis-tools)"
command -v strace > /dev/null || fail "strace is missing (scripts/deps installs it)"
rm -rf "$TMP"; mkdir -p "$TMP/mnt" "$TMP/mnt2"
M=$TMP/mnt
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  fusermount3 -uz "$M" 2>/dev/null || true
  fusermount3 -uz "$TMP/mnt2" 2>/dev/null || true
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

# A bad --listen is a usage error before anything is opened or created.
for bad in abc 127.0.0.1: 127.0.0.1:70000 ":"; do
  set +e
  "$F" serve "$TMP/never" "$M" --listen "$bad" > "$TMP/bad.log" 2>&1; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "--listen '$bad' exited $rc"
  grep -q "takes \[HOST:\]PORT" "$TMP/bad.log" || fail "--listen '$bad' not explained: $(cat "$TMP/bad.log")"
  [ ! -e "$TMP/never" ] || fail "--listen '$bad' created the instance directory"
done

"$F" serve "$TMP/db" "$M" --listen "127.0.0.1:$P" > "$TMP/serve.log" 2>&1 &
SERVE=$!; PIDS+=("$SERVE")
wait_for "jetfs serve" up "$P" "$M"

# --- commands ---
[ "$(R SET greeting hello)" = OK ] || fail "SET"
[ "$(R GET greeting)" = hello ] || fail "GET"
[ "$(R INCR counter)" = 1 ] && [ "$(R INCRBY counter 41)" = 42 ] || fail "INCR/INCRBY"
R MSET a 1 b 2 c 3 > /dev/null
[ "$(R MGET a b c nosuch | tr '\n' ,)" = "1,2,3,," ] || fail "MGET: $(R MGET a b c nosuch | tr '\n' ,)"
[ "$(R EXISTS a b nosuch)" = 2 ] || fail "EXISTS"
[ "$(R DEL c)" = 1 ] && [ "$(R EXISTS c)" = 0 ] || fail "DEL"
R INCR greeting 2>&1 | grep -q "not an integer" || fail "INCR on a string is not refused"
R NOSUCHCMD x 2>&1 | grep -qi "unknown command" || fail "unknown command"
R GET 2>&1 | grep -qi "wrong number of arguments" || fail "arity"
R DBSIZE | grep -qx 4 || fail "DBSIZE: $(R DBSIZE)"

# --- redis-benchmark against the live instance ---
redis-benchmark -p "$P" -t set,get,incr -n 3000 -c 20 -q > "$TMP/bench.out" 2>&1 || fail "redis-benchmark: $(cat "$TMP/bench.out")"
grep -q "SET:" "$TMP/bench.out" && grep -q "GET:" "$TMP/bench.out" || fail "redis-benchmark printed no rates: $(cat "$TMP/bench.out")"

# --- MULTI/EXEC transfers under backups ---
ACCOUNTS=20
for i in $(seq 0 $((ACCOUNTS - 1))); do echo "SET acct:$i 1000"; done | R > /dev/null
TOTAL=$((ACCOUNTS * 1000))
sum_balances() {  # port
  local keys; keys=$(for i in $(seq 0 $((ACCOUNTS - 1))); do printf 'acct:%d ' "$i"; done)
  # shellcheck disable=SC2086
  redis-cli -p "$1" MGET $keys | awk '{s += $1} END {print s}'
}
[ "$(sum_balances "$P")" = "$TOTAL" ] || fail "initial balances"
transfers() {  # seed: endless MULTI/EXEC transfers over one connection
  python3 - "$1" <<'EOF' | redis-cli -p "$P" > /dev/null 2>&1 || true
import random, sys
r = random.Random(int(sys.argv[1]))
out = sys.stdout
try:
    for _ in range(200000):
        a, b = r.sample(range(20), 2)
        x = r.randint(1, 50)
        out.write(f"MULTI\nINCRBY acct:{a} -{x}\nINCRBY acct:{b} {x}\nEXEC\n")
        out.flush()
except BrokenPipeError:
    pass
EOF
}
for s in 1 2 3 4; do setsid bash -c "$(declare -f transfers); P=$P; transfers $s" & PIDS+=("$!"); done
wait_for "transfers to run" sh -c "[ \"\$(redis-cli -p $P GET acct:0)\" != 1000 ]"

tar -cf "$TMP/full.tar" -C "$M/backup" full 2> "$TMP/tar.err" || fail "tar: $(cat "$TMP/tar.err")"
grep -q "changed as we read" "$TMP/tar.err" && fail "tar saw a file change"
fusermount3 -u "$M"
wait_for "the remount" up "$P" "$M"
grep -q "full backup ended normally" "$TMP/serve.log" || fail "the full backup did not end normally"
rsync -a "$M/backup/incremental/" "$TMP/inc/"
fusermount3 -u "$M"
wait_for "the remount" up "$P" "$M"
grep -q "incremental backup ended normally" "$TMP/serve.log" || fail "the incremental backup did not end normally"

# --- malformed input: errors or a closed connection, nobody else hurt ---
[ "$(R SET before-garbage kept)" = OK ] || fail "SET before garbage"
exec 3<> "/dev/tcp/127.0.0.1/$P"
printf '*1\r\n$99999999999999999999\r\n' >&3
timeout 5 head -c 200 <&3 > "$TMP/garbage1" || true
exec 3<&-
grep -q "ERR" "$TMP/garbage1" || [ ! -s "$TMP/garbage1" ] || fail "huge length: unexpected reply $(cat "$TMP/garbage1")"
exec 3<> "/dev/tcp/127.0.0.1/$P"
head -c 4096 /dev/urandom >&3 || true
exec 3<&-
exec 3<> "/dev/tcp/127.0.0.1/$P"
printf '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc' >&3   # truncated frame, then gone
exec 3<&-
[ "$(R PING)" = PONG ] || fail "the server stopped answering after malformed input"
[ "$(R GET before-garbage)" = kept ] || fail "an acknowledged write was lost"
kill -0 "$SERVE" || fail "jetfs serve died"

# Stop the load (each transfer client is its own process group) and shut
# down with SIGTERM (which also ends the remounted session).
for p in "${PIDS[@]:1}"; do kill -- "-$p" 2>/dev/null || true; done
no_transfers() { ! pgrep -f "redis-cli -p $P\$" > /dev/null; }
wait_for "the transfer clients to stop" no_transfers
LIVE_SUM=$(sum_balances "$P")
[ "$LIVE_SUM" = "$TOTAL" ] || fail "the live sum of balances is $LIVE_SUM, not $TOTAL"
kill -TERM "$SERVE"
wait "$SERVE" || fail "jetfs serve exited $? after SIGTERM"

# --- each restored backup holds the invariant ---
mkdir -p "$TMP/x" && tar -xf "$TMP/full.tar" -C "$TMP/x"
"$J" restore --to "$TMP/r_full" "$TMP/x/full" > /dev/null || fail "restore of the full set"
"$J" restore --to "$TMP/r_inc" "$TMP/x/full" "$TMP/inc" > /dev/null || fail "restore of full + incremental"
for r in r_full r_inc; do
  P2=$(free_port)
  "$F" serve "$TMP/$r" "$TMP/mnt2" --once --listen "127.0.0.1:$P2" > "$TMP/serve-$r.log" 2>&1 &
  S2=$!; PIDS+=("$S2")
  wait_for "serving $r" up "$P2" "$TMP/mnt2"
  got=$(sum_balances "$P2")
  [ "$got" = "$TOTAL" ] || fail "$r: the sum of balances is $got, not $TOTAL"
  moved=$(redis-cli -p "$P2" MGET $(for i in $(seq 0 $((ACCOUNTS - 1))); do printf 'acct:%d ' "$i"; done) | grep -cvx 1000 || true)
  [ "$moved" -gt 0 ] || fail "$r holds no transfer: the backup was not taken under load"
  [ "$(redis-cli -p "$P2" GET greeting)" = hello ] || fail "$r lost a key written before the backup"
  kill -TERM "$S2"; wait "$S2" || fail "serve of $r exited $?"
done

# --- pipelining: one fsync per pipelined batch; every reply is durable ---
# fdatasync calls of the whole server (every thread) while a command runs.
syncs_during() {
  strace -f -qq -e trace=fdatasync -o "$TMP/strace.out" -p "$S3" 2> /dev/null & local st=$!
  sleep 0.5
  "$@" > "$TMP/syncs-cmd.out" 2>&1 || fail "$*: $(cat "$TMP/syncs-cmd.out")"
  kill -INT "$st"; wait "$st" 2> /dev/null || true
  grep -c fdatasync "$TMP/strace.out" || true
}
P3=$(free_port)
"$F" serve "$TMP/db3" "$TMP/mnt2" --once --listen "127.0.0.1:$P3" > "$TMP/serve-pipe.log" 2>&1 &
S3=$!; PIDS+=("$S3")
wait_for "serving db3" up "$P3" "$TMP/mnt2"
N=3200
one=$(syncs_during redis-benchmark -p "$P3" -c 1 -n 400 -t set -r 100000 -q)
piped=$(syncs_during redis-benchmark -p "$P3" -c 1 -P 16 -n $N -t set -r 100000 -q)
# One durable flush per write without pipelining; one per batch of 16 with
# it (a few more for rolls and checkpoints).
[ "$one" -ge 360 ] || fail "400 unpipelined SETs made only $one fdatasync calls: were they durable?"
[ "$piped" -le $((N / 16 * 2)) ] || fail "$N SETs pipelined 16 deep took $piped fdatasync calls (at most $((N / 16 * 2)) expected)"
echo "pipelining: $one fdatasync calls for 400 SETs one at a time, $piped for $N SETs pipelined 16 deep"
# Acknowledged pipelined writes survive kill -9 the moment the replies are in.
python3 -c 'import sys
for i in range(5000): sys.stdout.write("SET pipe:%d v%d\r\n" % (i, i * 7))' | redis-cli -p "$P3" --pipe > "$TMP/pipe.out" 2>&1 ||
  fail "redis-cli --pipe: $(cat "$TMP/pipe.out")"
grep -q "errors: 0, replies: 5000" "$TMP/pipe.out" || fail "redis-cli --pipe: $(cat "$TMP/pipe.out")"
kill -9 "$S3"; wait "$S3" 2> /dev/null || true
fusermount3 -uz "$TMP/mnt2" 2> /dev/null || true
"$F" serve "$TMP/db3" "$TMP/mnt2" --once --listen "127.0.0.1:$P3" > "$TMP/serve-pipe2.log" 2>&1 &
S3=$!; PIDS+=("$S3")
wait_for "serving db3 after kill -9" up "$P3" "$TMP/mnt2"
for i in 0 1234 4999; do
  [ "$(redis-cli -p "$P3" GET "pipe:$i")" = "v$((i * 7))" ] || fail "acknowledged pipelined SET pipe:$i lost after kill -9"
done
got=$(python3 -c 'import sys
for i in range(5000): sys.stdout.write("EXISTS pipe:%d\n" % i)' | redis-cli -p "$P3" | grep -c '^1$' || true)
[ "$got" = 5000 ] || fail "$got of 5000 acknowledged pipelined SETs survived kill -9"
kill -TERM "$S3"; wait "$S3" || fail "serve of db3 exited $?"
echo "e2e resp: ok"
