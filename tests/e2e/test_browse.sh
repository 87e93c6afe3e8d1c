#!/usr/bin/env bash
# tests/e2e/test_browse.sh -- `jetfs browse` (issue 19) end to end, on real
# mounts, against `jetutil restore` of the same sets:
#  - under live RESP load (redis-py writing random values), a full and two
#    incrementals are taken with cp through the backup mount, with keys of
#    every awkward kind ('/', '%', NUL, newline, bytes over 0x7f, ".", "..",
#    encodings of 255 bytes and more) written and changed between them;
#  - each prefix of the chain, at its end and at each --stop-gen of its last
#    set (and one --stop-time), is browsed: every key's file equals what
#    `jetutil export` of a `jetutil restore` of the same sets and stop gives
#    (same tables, same names in key order, same bytes, exact sizes, every
#    mtime the point in time; browse_tree.py), and so does `jetutil export
#    SETS` with the same stop; a stop restore refuses, browse refuses too;
#  - a table of 50,000 keys (500,000 under JET_LONG) lists whole and in key
#    order with ls -f and find, its readdir offsets stable (seekdir to any
#    telldir reads that entry again, on the same handle or another);
#  - sets on a read-only bind mount, and inside a `restic mount`;
#  - a damaged set (a flipped byte in a log of an incremental, a missing
#    generation) is refused naming the piece, exit non-zero, nothing mounted;
#  - --listen: reads answer with the export's values, writes get -READONLY,
#    DBSIZE is the key count; SIGTERM ends it as an unmount does;
#  - item-level restore: a deleted key copied out of the mount and put back
#    with redis-cli -x SET into a live instance;
#  - every unmount removes the overlay (the $TMPDIR scratch is empty) and,
#    checked at the end, the sets are byte-identical (sha256sum) with no file
#    added or removed.
# JET_LONG=1: twice the load between the backups, so more generations
# (each one a stop point), a --stop-time in each incremental, a larger table.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
HERE=$(cd "$(dirname "$0")" && pwd)
TREE=$HERE/browse_tree.py
PYR=/usr/bin/python3 # Debian's, with python3-redis
TMP=${JET_TEST_TMP:-/tmp}/e2e_browse.$$
M=$TMP/mnt     # jetfs serve's backup mount
B=$TMP/browse  # the browse mount
D=$TMP/db
S=$TMP/sets
SC=$TMP/scratch # TMPDIR of every browse and export: the overlay lives there
RO=$TMP/ro
RM=$TMP/restic-mnt
SERVE= LOAD= BPID= RPID= BOUND=
fail() {
  echo "FAIL: $*" >&2
  for l in "$TMP"/serve.log "$TMP"/browse.log; do [ -f "$l" ] && sed "s|^|  $(basename "$l"): |" "$l" | tail -40 >&2; done
  exit 1
}
# shellcheck source=lib.sh
. "$HERE/lib.sh"
need_fuse_and_redis_cli
$PYR -c 'import redis' 2> /dev/null || fail "redis-py is missing (scripts/deps installs python3-redis)"
cleanup() {
  [ -n "$LOAD" ] && kill -- "-$LOAD" 2> /dev/null || true
  for p in $BPID $RPID $SERVE; do kill -9 "$p" 2> /dev/null || true; done
  fusermount3 -uz "$B" 2> /dev/null || true
  fusermount3 -uz "$RM" 2> /dev/null || true
  fusermount3 -uz "$M" 2> /dev/null || true
  [ -n "$BOUND" ] && umount -l "$RO" 2> /dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
rm -rf "$TMP"; mkdir -p "$M" "$B" "$S" "$SC" "$RO" "$RM"
LONG=${JET_LONG:-}
P=$(free_port)

# ---- the chain, under load ----
"$F" serve "$D" "$M" --listen "127.0.0.1:$P" > "$TMP/serve.log" 2>&1 &
SERVE=$!
wait_for "jetfs serve" sh -c "redis-cli -p $P PING 2>/dev/null | grep -q PONG && [ -f '$M/status' ]"
up() { redis-cli -p "$P" PING 2> /dev/null | grep -q PONG && [ -f "$M/status" ]; }
# The highest log generation of the instance (the one being written).
cur_gen() { local g; g=$(cd "$D" && ls edb[0-9A-F]*.log | sort | tail -1); printf '%d' "0x${g:3:8}"; }
gens_past() { [ "$(cur_gen)" -ge "$1" ]; }
$PYR "$TREE" write "$P" 0 > /dev/null || fail "writing the phase 0 keys"
# Random 300-byte values over 600 keys (load:NNNN) and some DELs, about
# 1 MB/s, for as long as the backups take (redis-benchmark's values are all
# alike: their page deltas are too small to fill generations); its own
# process group.
setsid $PYR "$TREE" load "$P" 1000 > "$TMP/load.log" 2>&1 &
LOAD=$!
wait_for "the load to write" sh -c "[ \"\$(redis-cli -p $P DBSIZE)\" -gt 300 ]"
STEP=2; [ -n "$LONG" ] && STEP=4
backup() {  # kind dest: one set with cp, ended by the unmount, normally
  local n0; n0=$(grep -c "$1 backup ended normally" "$TMP/serve.log" || true)
  cp -r "$M/backup/$1" "$2"
  fusermount3 -u "$M"
  wait_for "the remount after the $1 backup" up
  [ "$(grep -c "$1 backup ended normally" "$TMP/serve.log")" -gt "$n0" ] || fail "the $1 backup did not end normally"
}
backup full "$S/s0"
$PYR "$TREE" write "$P" 1 > /dev/null || fail "writing the phase 1 keys"
G=$(cur_gen); wait_for "$STEP more generations" gens_past $((G + STEP))
backup incremental "$S/s1"
sleep 1.1; T_MID=$(date +%s); sleep 1.1 # a --stop-time between the incrementals
$PYR "$TREE" write "$P" 2 > /dev/null || fail "writing the phase 2 keys"
G=$(cur_gen); wait_for "$STEP more generations" gens_past $((G + STEP / 2))
T_IN2=$(date +%s) # JET_LONG: a --stop-time inside the last incremental
wait_for "$STEP more generations" gens_past $((G + STEP))
backup incremental "$S/s2"
kill -- "-$LOAD"; wait "$LOAD" 2> /dev/null || true; LOAD=
kill -TERM "$SERVE"; wait "$SERVE" || fail "jetfs serve exited $? after SIGTERM"; SERVE=

# What the sets are before any browse: every file's bytes, and the list of files.
(cd "$S" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$TMP/sets.sums"
(cd "$S" && find . | sort) > "$TMP/sets.files"
gens() { python3 -c "import json; g=json.load(open('$1/backup.manifest'))['generations']; print(g['low'], g['high'])"; }

# ---- browse helpers ----
# Starts jetfs browse on $B with the given arguments, waits for the mount.
browse_up() {
  TMPDIR=$SC "$F" browse "$B" "$@" > "$TMP/browse.log" 2>&1 &
  BPID=$!
  for _ in $(seq 1 600); do
    [ -f "$B/status" ] && return 0
    kill -0 "$BPID" 2> /dev/null || { wait "$BPID" && rc=0 || rc=$?; BPID=; fail "jetfs browse $* exited $rc before mounting"; }
    sleep 0.05
  done
  fail "jetfs browse $* did not mount"
}
# Ends it (fusermount3 -u, or the signal given), checks it exited 0, that
# nothing is mounted and that the overlay is gone from the scratch space.
browse_down() {
  if [ -n "${1:-}" ]; then kill "-$1" "$BPID"; else fusermount3 -u "$B"; fi
  wait "$BPID" || { rc=$?; BPID=; fail "jetfs browse exited $rc after ${1:-the unmount}"; }
  BPID=
  wait_for "the browse mount to go" sh -c "! mountpoint -q '$B'"
  [ -z "$(ls -A "$SC")" ] || fail "the overlay outlived the browse: $(ls -AR "$SC" | head)"
}
status_field() { python3 -c "import json; d=json.load(open('$B/status')); print($1)"; }
# A refusal: restore's exit and message, then browse's and export's:
# non-zero, naming $pat, nothing mounted, no scratch left.
refused() {  # name pattern browse-args...
  local name=$1 pat=$2 rc; shift 2
  rc=0; timeout 60 env TMPDIR="$SC" "$F" browse "$B" "$@" > "$TMP/$name.browse" 2>&1 || rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "$name: jetfs browse exited $rc: $(cat "$TMP/$name.browse")"
  grep -q -- "$pat" "$TMP/$name.browse" || fail "$name: browse's message does not name '$pat': $(cat "$TMP/$name.browse")"
  ! mountpoint -q "$B" || fail "$name: a refused browse left a mount"
  [ -z "$(ls -A "$SC")" ] || fail "$name: a refused browse left scratch files: $(ls -A "$SC")"
  rc=0; TMPDIR=$SC "$J" export "$@" > /dev/null 2> "$TMP/$name.export" || rc=$?
  [ $rc -ne 0 ] || fail "$name: jetutil export of the same sets succeeded"
  grep -q -- "$pat" "$TMP/$name.export" || fail "$name: export's message does not name '$pat': $(cat "$TMP/$name.export")"
}

NCASES=0 NREFUSED=0
# One stop point of one prefix of the chain: restore + export is the truth.
check_point() {  # name "stop args" sets...
  local name=$1 stop=$2 rc; shift 2
  # shellcheck disable=SC2086
  rc=0; "$J" restore --to "$TMP/r_$name" "$@" $stop > "$TMP/r_$name.out" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    # restore refuses this stop: browse must too, with its message.
    # The engine's error and code ("invalid parameter (-1003)"): the paths
    # after it name restore's target, browse's scratch directory instead.
    local msg; msg=$(grep -o 'refused: .*' "$TMP/r_$name.out" | head -1 | sed 's/^refused: //; s/^\([^(]*([-0-9]*)\).*/\1/')
    [ -n "$msg" ] || fail "$name: restore exited $rc without a refusal: $(cat "$TMP/r_$name.out")"
    # shellcheck disable=SC2086
    refused "$name" "$msg" "$@" $stop
    NREFUSED=$((NREFUSED + 1))
    rm -rf "$TMP/r_$name"
    return 0
  fi
  "$J" export "$TMP/r_$name" > "$TMP/want_$name" || fail "$name: export of the restored copy"
  rm -rf "$TMP/r_$name"
  # shellcheck disable=SC2086
  TMPDIR=$SC "$J" export "$@" $stop > "$TMP/exp_$name" 2> "$TMP/exp_$name.err" || fail "$name: jetutil export SETS $stop: $(cat "$TMP/exp_$name.err")"
  cmp -s "$TMP/want_$name" "$TMP/exp_$name" || fail "$name: jetutil export SETS $stop differs from export of the restore"
  [ -z "$(ls -A "$SC")" ] || fail "$name: jetutil export left scratch files"
  # shellcheck disable=SC2086
  browse_up "$@" $stop
  python3 "$TREE" compare "$B" "$TMP/want_$name" > "$TMP/cmp_$name" 2>&1 || fail "$name ($* $stop): $(cat "$TMP/cmp_$name")"
  case $stop in
    --stop-gen*) [ "$(status_field 'd["stop_asked"]["generation"]')" = "${stop#--stop-gen }" ] || fail "$name: status's stop: $(cat "$B/status")"
      [ "$(status_field 'd["generations_replayed"]["high"]')" -le "${stop#--stop-gen }" ] || fail "$name: replayed past the stop: $(cat "$B/status")";;
    "") [ "$(status_field 'd["generations_replayed"]["high"]')" = "$(gens "${!#}" | cut -d' ' -f2)" ] || fail "$name: status's generations: $(cat "$B/status")";;
  esac
  [ "$(status_field 'len(d["sets"])')" = $# ] || fail "$name: status does not list the $# sets: $(cat "$B/status")"
  browse_down
  NCASES=$((NCASES + 1))
}
# The stop generations of a set: its first, and every one the set before it
# ($2) does not hold (an incremental holds again the generations its
# predecessor held above the checkpoint; stops there were browsed with the
# shorter prefix); under JET_LONG every one it holds.
stops_of() {
  local lo hi plo phi=0; read -r lo hi < <(gens "$1")
  [ -n "${2:-}" ] && [ -z "$LONG" ] && read -r plo phi < <(gens "$2")
  { echo "$lo"; seq $((phi + 1 > lo ? phi + 1 : lo)) "$hi"; } | sort -nu
}

# ---- each prefix of the chain, at its end and at each stop in its last set ----
chain=() prev=
for s in s0 s1 s2; do
  chain+=("$S/$s")
  check_point "$s" "" "${chain[@]}"
  for g in $(stops_of "$S/$s" "$prev"); do check_point "${s}_g$g" "--stop-gen $g" "${chain[@]}"; done
  prev=$S/$s
done
check_point "t_mid" "--stop-time $T_MID" "${chain[@]}"
if [ -n "$LONG" ]; then check_point "t_in2" "--stop-time $T_IN2" "${chain[@]}"; fi
# Stops restore refuses: past the chain's last generation, before the full's begin.
check_point "past_end" "--stop-gen $(($(gens "$S/s2" | cut -d' ' -f2) + 3))" "${chain[@]}"
check_point "too_early" "--stop-time 86400" "${chain[@]}"
[ "$NCASES" -ge 8 ] && [ "$NREFUSED" -ge 2 ] || fail "$NCASES stop points browsed, $NREFUSED refused: restore refused other stops than expected"
# The last point holds what phase 2 wrote, hashed names and all.
grep -q "^$(printf 'added/in phase 2\xff' | xxd -p | tr -d '\n') " "$TMP/want_s2" || fail "the chain's end lacks the phase 2 key"

# ---- the tools people use, on the chain's end ----
browse_up "$S/s0" "$S/s1" "$S/s2"
NKEYS=$(grep -vc '^table ' "$TMP/want_s2")
[ "$(find "$B/tables" -type f | wc -l)" = "$NKEYS" ] || fail "find lists $(find "$B/tables" -type f | wc -l) files, $NKEYS keys"
rsync -a "$B/tables/" "$TMP/copy/" || fail "rsync -a of the tables"
diff -r "$B/tables" "$TMP/copy" > /dev/null || fail "rsync's copy differs from the mount"
rsync -a --stats "$B/tables/" "$TMP/copy/" | grep -q "Number of regular files transferred: 0" || fail "a second rsync transferred files"
[ "$(cat "$B/tables/redis/100%25")" = "percent, changed" ] || fail "cat of 100%25"
grep -rlq "phase two" "$B/tables/redis" || fail "grep -r finds nothing"
[ "$(stat -c %s "$B/tables/redis/big value")" = 9 ] || fail "ls -l size of a value that shrank"
[ ! -e "$B/tables/redis/gone after the full" ] || fail "a deleted key has a file"
rm -rf "$TMP/copy"
browse_down

# ---- a large table: listed whole, in key order, by streaming readdir ----
NBIG=50000; [ -n "$LONG" ] && NBIG=500000
"$J" load "$TMP/big" --keys "$NBIG" --value-size 8 --batch 5000 > /dev/null
"$F" serve "$TMP/big" "$M" --once > "$TMP/serve.log" 2>&1 &
SERVE=$!
wait_for "jetfs serve of the large table" mounted
cp -r "$M/backup/full" "$TMP/bigset"
fusermount3 -u "$M"; wait "$SERVE" || fail "jetfs serve exited $?"; SERVE=
browse_up "$TMP/bigset"
ls -f "$B/tables/data" | grep -v '^\.\.\?$' > "$TMP/big.ls"
[ "$(wc -l < "$TMP/big.ls")" = "$NBIG" ] || fail "ls -f of a table of $NBIG keys lists $(wc -l < "$TMP/big.ls")"
LC_ALL=C sort -c "$TMP/big.ls" || fail "ls -f of the large table is not in key order"
[ "$(find "$B/tables/data" -name 'key:000001*' | wc -l)" = 10000 ] || fail "find -name over the large table"
python3 "$TREE" offsets "$B/tables/data" > "$TMP/offsets.out" 2>&1 || fail "readdir offsets: $(cat "$TMP/offsets.out")"
browse_down
rm -rf "$TMP/big" "$TMP/bigset" "$TMP/big.ls"

# ---- the sets on read-only media ----
if [ "$(id -u)" = 0 ]; then
  mount --bind "$S" "$RO" && BOUND=1 && mount -o remount,ro,bind "$RO" || fail "read-only bind mount of the sets"
  touch "$RO/s0/x" 2> /dev/null && fail "the bind mount is writable"
  browse_up "$RO/s0" "$RO/s1" "$RO/s2"
  python3 "$TREE" compare "$B" "$TMP/want_s2" > "$TMP/cmp_ro" 2>&1 || fail "read-only bind mount: $(cat "$TMP/cmp_ro")"
  browse_down
  umount "$RO"; BOUND=
else
  [ -n "${CI:-}" ] && fail "the read-only bind mount needs root under CI"
  echo "SKIP (read-only bind mount): needs root"
fi

# ---- the sets inside a restic mount ----
export RESTIC_PASSWORD_FILE=$TMP/restic.pass RESTIC_REPOSITORY=$TMP/restic RESTIC_CACHE_DIR=$TMP/restic-cache
echo "browse test" > "$RESTIC_PASSWORD_FILE"
if command -v restic > /dev/null; then
  restic init -q > "$TMP/restic.log" 2>&1 || fail "restic init: $(cat "$TMP/restic.log")"
  restic backup -q "$S" > "$TMP/restic.log" 2>&1 || fail "restic backup: $(cat "$TMP/restic.log")"
  restic mount "$RM" > "$TMP/restic-mount.log" 2>&1 &
  RPID=$!
  SNAP=$RM/snapshots/latest$S
  wait_for "restic mount" test -f "$SNAP/s2/backup.manifest"
  browse_up "$SNAP/s0" "$SNAP/s1" "$SNAP/s2"
  python3 "$TREE" compare "$B" "$TMP/want_s2" > "$TMP/cmp_restic" 2>&1 || fail "inside restic mount: $(cat "$TMP/cmp_restic")"
  browse_down
  fusermount3 -u "$RM"; wait "$RPID" 2> /dev/null || true; RPID=
else
  [ -n "${CI:-}" ] && fail "restic is missing (scripts/deps installs it)"
  echo "SKIP (restic mount): no restic"
fi

# ---- damaged sets: refused before mounting, naming the piece ----
read -r LO1 HI1 < <(gens "$S/s1")
cp -r "$S/s1" "$TMP/s1_flip"; chmod -R u+w "$TMP/s1_flip"
FLIP=$(printf 'edb%08X.log' "$HI1")
OFF=$(($(stat -c %s "$TMP/s1_flip/$FLIP") / 2))
python3 - "$TMP/s1_flip/$FLIP" "$OFF" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x5A]))
EOF
rc=0; "$J" restore --to "$TMP/r_flip" "$S/s0" "$TMP/s1_flip" > "$TMP/r_flip.out" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "$FLIP" "$TMP/r_flip.out" || fail "restore took a flipped byte in $FLIP: $(cat "$TMP/r_flip.out")"
refused flipped_log "$FLIP" "$S/s0" "$TMP/s1_flip"
read -r _ HI2 < <(gens "$S/s2")
# (the set's last generation: an earlier set may hold its first one, and a
# generation found identical in another set given is used from there)
cp -r "$S/s2" "$TMP/s2_gap"; GAP=$(printf 'edb%08X.log' "$HI2"); rm "$TMP/s2_gap/$GAP"
refused missing_gen "$GAP" "$S/s0" "$S/s1" "$TMP/s2_gap"
refused inc_alone "s1" "$S/s1"
refused gap_in_chain "s2" "$S/s0" "$S/s2"
# A mount point that cannot be used is said at once, before the checks and the replay.
rc=0; "$F" browse "$TMP/no/such/dir" "$S/s0" "$S/s1" > "$TMP/nomp.out" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "mount point $TMP/no/such/dir: No such file or directory" "$TMP/nomp.out" &&
  ! grep -q "replaying" "$TMP/nomp.out" || fail "a missing mount point: exit $rc: $(cat "$TMP/nomp.out")"

# ---- --listen: the read-only Redis protocol over the same state ----
P2=$(free_port)
browse_up "$S/s0" "$S/s1" "$S/s2" --listen "127.0.0.1:$P2"
wait_for "the browse listener" sh -c "redis-cli -p $P2 PING 2>/dev/null | grep -q PONG"
$PYR "$TREE" resp "$P2" "$TMP/want_s2" redis > "$TMP/resp.out" 2>&1 || fail "listener: $(cat "$TMP/resp.out")"
# The raw replies, as redis-cli shows them.
NREDIS=$(awk '/^table /{t=$2; next} t=="redis"{n++} END{print n+0}' "$TMP/want_s2")
[ "$(redis-cli -p "$P2" DBSIZE)" = "$NREDIS" ] || fail "DBSIZE $(redis-cli -p "$P2" DBSIZE), $NREDIS keys in the export"
[ "$(redis-cli -p "$P2" GET dir/with/slashes)" = "slash 2" ] || fail "GET dir/with/slashes: $(redis-cli -p "$P2" GET dir/with/slashes)"
for cmd in "SET a b" "DEL dir/with/slashes" "INCR n" "FLUSHALL"; do
  # shellcheck disable=SC2086
  out=$(redis-cli -p "$P2" $cmd 2>&1)
  [ "$out" = "READONLY You can't write against a read only replica." ] || fail "$cmd on the browse listener: $out"
done
browse_down TERM
redis-cli -p "$P2" PING > /dev/null 2>&1 && fail "the listener outlived the browse"

# ---- item-level restore: a key deleted after the full, put back ----
P3=$(free_port)
"$F" serve "$D" "$M" --once --listen "127.0.0.1:$P3" > "$TMP/serve.log" 2>&1 &
SERVE=$!
wait_for "jetfs serve again" sh -c "redis-cli -p $P3 PING 2>/dev/null | grep -q PONG"
[ "$(redis-cli -p "$P3" EXISTS 'gone after the full')" = 0 ] || fail "the deleted key is live"
browse_up "$S/s0"
rsync -a "$B/tables/redis/gone after the full" "$B/tables/redis/dir%2Fwith%2Fslashes" "$TMP/items/" || fail "rsync out of the mount"
browse_down
redis-cli -p "$P3" -x SET 'gone after the full' < "$TMP/items/gone after the full" > /dev/null
redis-cli -p "$P3" -x SET 'dir/with/slashes' < "$TMP/items/dir%2Fwith%2Fslashes" > /dev/null
[ "$(redis-cli -p "$P3" GET 'gone after the full')" = "deleted in phase 1" ] || fail "the put-back key: $(redis-cli -p "$P3" GET 'gone after the full')"
[ "$(redis-cli -p "$P3" GET 'dir/with/slashes')" = "slash 0" ] || fail "the put-back older value"
TMPDIR=$SC "$J" export "$S/s0" --table redis --prefix "gone" > "$TMP/item.export" 2> "$TMP/item.err" || fail "export --table --prefix: $(cat "$TMP/item.err")"
[ "$(grep -vc '^table ' "$TMP/item.export")" = 1 ] || fail "export --prefix gone: $(cat "$TMP/item.export")"
fusermount3 -u "$M"; wait "$SERVE" || fail "jetfs serve exited $?"; SERVE=

# ---- the sets are as they were ----
(cd "$S" && sha256sum -c --quiet "$TMP/sets.sums") || fail "a browse changed the sets"
(cd "$S" && find . | sort) | cmp -s - "$TMP/sets.files" || fail "files appeared in or left the sets: $(cd "$S" && find . | sort | diff - "$TMP/sets.files")"
echo "e2e browse: ok ($NCASES stop points browsed, $NREFUSED refused as restore refused them)"
