#!/usr/bin/env bash
# tests/e2e/test_copy_layouts.sh -- any copy layout of incrementals restores
# (issue 29, point 3).  A live `jetfs serve` takes a full (cp -a) and four
# incrementals with writes between them; the third session is aborted
# (`jetfs end --abort`), so the fourth holds generations again.  Every
# incremental session is copied, by each tool, the way README's recipes say:
#   rsync -a  into one directory          rclone copy  into one directory
#   cp -a     into one directory          tar -cf, archives extracted in order into one
#   tar --listed-incremental, archives extracted in order into one, and each
#     archive extracted into its own directory (holding only what tar put in
#     that archive: the fourth lacks what the aborted third held)
# Each restores with `jetutil restore --to R FULL DIR...` to the live data
# (jetutil export compare); `jetutil verify` accepts it, and so does a browse
# (`jetutil export FULL DIR...` reads through one; and a `jetfs browse`
# mount of the rsync directory).  The aborted session's
# manifest is named and ignored.  Refused, each naming the piece: one byte
# flipped in a generation of a merged directory (the file), the separate
# --listed-incremental directories without the aborted one's (a generation
# only it holds) and without the fourth (the missing set, between which
# generations).
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_layouts.$$
M=$TMP/mnt
D=$TMP/db
PID= BPID=
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" | tail -40 >&2
  exit 1
}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_fuse_and_redis_cli
for tool in rsync rclone tar; do
  command -v "$tool" > /dev/null || fail "$tool is not installed (scripts/deps installs it)"
done
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2> /dev/null || true
  [ -n "${BPID:-}" ] && kill -9 "$BPID" 2> /dev/null || true
  fusermount3 -uz "$TMP/browse" 2> /dev/null || true
  fusermount3 -uz "$M" 2> /dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
rm -rf "$TMP"
mkdir -p "$M"
export RCLONE_CONFIG=$TMP/rclone.conf # none: local paths need no remote

unmounts() { grep -c "jetfs: unmounted" "$TMP/serve.log" || true; }
more_unmounts_than() { [ "$(unmounts)" -gt "$1" ]; }
end_session() {
  local before
  before=$(unmounts)
  fusermount3 -u "$M"
  wait_for "the end of the session" more_unmounts_than "$before"
  wait_for "the next mount" mounted
  grep "jetfs: unmounted" "$TMP/serve.log" | tail -1
}
write_keys() {
  for i in $(seq "$1" $(($2 - 1))); do printf 'SET k%06d v%06d-%s\n' "$i" "$i" "$(head -c 300 /dev/zero | tr '\0' x)"; done |
    redis-cli -p "$P" > "$TMP/set.out"
  [ "$(grep -c OK "$TMP/set.out")" = $(($2 - $1)) ] || fail "not every SET was acknowledged"
}

P=$(free_port)
"$F" serve "$D" "$M" --listen "127.0.0.1:$P" > "$TMP/serve.log" 2>&1 &
PID=$!
wait_for "the mount" mounted
wait_for "the listener" port_up

# ---- session 1: the full; sessions 2..5: incrementals, each copied by every tool ----
write_keys 0 300
FULL=$TMP/full
mkdir -p "$FULL"
cp -a "$M/backup/full/." "$FULL/"
out=$(end_session)
grep -q "backup ended normally" <<< "$out" || fail "the full did not end normally: $out"
mkdir -p "$TMP/rsync" "$TMP/rclone" "$TMP/cp" "$TMP/tar-merged" "$TMP/targ-merged"
I=$M/backup/incremental
for n in 2 3 4 5; do
  write_keys $((n * 300)) $((n * 300 + 300))
  ls "$I" > /dev/null # begins the incremental; every tool below reads the same set
  nice -n 19 rsync -a "$I/" "$TMP/rsync/" || fail "rsync, session $n"
  nice -n 19 rclone copy -q "$I" "$TMP/rclone" || fail "rclone copy, session $n"
  cp -a "$I/." "$TMP/cp/" || fail "cp -a, session $n"
  tar -cf "$TMP/plain-$n.tar" -C "$M/backup" incremental || fail "tar, session $n"
  tar --no-check-device -g "$TMP/jetfs.snar" -cf "$TMP/listed-$n.tar" -C "$M/backup" incremental ||
    fail "tar --listed-incremental, session $n"
  if [ "$n" = 3 ]; then
    # The backup server could not confirm the copy: an explicit abort.
    # It unmounts the ended session itself and returns once the next is mounted.
    "$F" end "$M" --abort | grep -q aborted || fail "jetfs end --abort does not say aborted"
    out=$(grep "jetfs: unmounted" "$TMP/serve.log" | tail -1)
    grep -q "aborted, nothing truncated" <<< "$out" || fail "session 3: not aborted: $out"
    mounted || fail "no session mounted after jetfs end --abort returned"
  else
    out=$(end_session)
    grep -q "backup ended normally" <<< "$out" || fail "session $n: did not end normally: $out"
  fi
done
kill -TERM "$PID"
wait "$PID" || fail "jetfs serve exited $? after SIGTERM"
PID=
"$J" export "$D" > "$TMP/expect"
[ "$(grep -c '^' "$TMP/expect")" -ge 1500 ] || fail "the live instance lacks the keys written"

# The archives, extracted in order into one directory each (plain tar -x:
# -g would delete what a later archive's directory listing no longer holds),
# and the --listed-incremental ones also each alone.
for n in 2 3 4 5; do
  tar -xf "$TMP/plain-$n.tar" -C "$TMP/tar-merged"
  tar -xf "$TMP/listed-$n.tar" -C "$TMP/targ-merged"
  mkdir -p "$TMP/targ-$n"
  tar -xf "$TMP/listed-$n.tar" -C "$TMP/targ-$n"
done
# tar --listed-incremental skipped, in session 4, what the aborted session's
# archive holds: alone, the fourth is not a whole set.
n3=$(ls "$TMP/targ-3/incremental" | grep -c '\.log$' || true)
n4=$(ls "$TMP/targ-4/incremental" | grep -c '\.log$' || true)
python3 - "$TMP/targ-4/incremental/backup.manifest" "$n4" << 'EOF' || fail "the fourth --listed-incremental archive holds every generation its manifest lists: the test shows nothing"
import json, sys
m = json.load(open(sys.argv[1]))
sys.exit(0 if sum(f["name"].endswith(".log") for f in m["files"]) > int(sys.argv[2]) else 1)
EOF
[ "$n3" -gt 0 ] || fail "the aborted session's archive holds no generation"

# A restore, a verify and an export (through a browse) of the sets given,
# each equal to the live data.
check_restores() {
  local name=$1 r=$TMP/restored-$1
  shift
  "$J" restore --to "$r" "$@" > /dev/null 2> "$TMP/$name.restore" ||
    fail "$name: does not restore: $(cat "$TMP/$name.restore")"
  "$J" export "$r" | cmp -s - "$TMP/expect" || fail "$name: the restore differs from the live data"
  "$J" verify "$@" > /dev/null 2> "$TMP/$name.verify" || fail "$name: verify refuses: $(cat "$TMP/$name.verify")"
  "$J" export "$@" 2> "$TMP/$name.export" | cmp -s - "$TMP/expect" ||
    fail "$name: the export (a browse) differs from the live data: $(cat "$TMP/$name.export")"
  rm -rf "$r"
}
check_restores rsync "$FULL" "$TMP/rsync"
check_restores rclone "$FULL" "$TMP/rclone"
check_restores cp "$FULL" "$TMP/cp"
check_restores tar-merged "$FULL" "$TMP/tar-merged/incremental"
check_restores targ-merged "$FULL" "$TMP/targ-merged/incremental"
check_restores targ-separate "$FULL" "$TMP"/targ-{2,3,4,5}/incremental
# Every session's manifest is there under its own name; the aborted one's
# is named and ignored.
[ "$(ls "$TMP/rsync" | grep -c '^backup\..*-[0-9a-f]\{16\}\.manifest$')" = 4 ] ||
  fail "the rsync destination does not hold four sessions' manifests: $(ls "$TMP/rsync")"
grep -q "not in the chain to the newest backup" "$TMP/rsync.restore" ||
  fail "restore does not name the aborted session's manifest: $(cat "$TMP/rsync.restore")"
[ "$(grep -c "not in the chain" "$TMP/rsync.restore")" = 1 ] ||
  fail "restore names other manifests than the aborted session's: $(cat "$TMP/rsync.restore")"
grep -q "not listed in any manifest" "$TMP/rsync.restore" &&
  fail "restore ignored a generation of the merged directory: $(cat "$TMP/rsync.restore")"

# jetfs browse of the merged rsync directory: the last key written, as written.
B=$TMP/browse
mkdir -p "$B" "$TMP/scratch"
TMPDIR=$TMP/scratch "$F" browse "$B" "$FULL" "$TMP/rsync" > "$TMP/browse.log" 2>&1 &
BPID=$!
browse_mounted() { [ -f "$B/status" ] || { kill -0 "$BPID" 2> /dev/null || fail "jetfs browse exited: $(cat "$TMP/browse.log")"; false; }; }
wait_for "the browse mount" browse_mounted
want=$(printf 'v%06d-%s' 1799 "$(head -c 300 /dev/zero | tr '\0' x)")
[ "$(cat "$B/tables/redis/k001799")" = "$want" ] || fail "browse of the merged directory lacks the last key written"
fusermount3 -u "$B"
wait "$BPID" || fail "jetfs browse exited $? after the unmount"
BPID=

# ---- refusals, each naming the piece ----
refused() { # name pattern sets...
  local name=$1 pat=$2 rc=0
  shift 2
  "$J" restore --to "$TMP/refused-$name" "$@" > /dev/null 2> "$TMP/$name.refused" || rc=$?
  [ $rc -ne 0 ] || fail "$name: restored"
  grep -q -- "$pat" "$TMP/$name.refused" || fail "$name: the refusal does not name '$pat': $(cat "$TMP/$name.refused")"
  [ ! -e "$TMP/refused-$name" ] || fail "$name: a refused restore left its target"
  rc=0
  "$J" verify "$@" > /dev/null 2>&1 || rc=$?
  [ $rc -ne 0 ] || fail "$name: verify accepted it"
}
# One byte of one generation of a merged directory.
cp -a "$TMP/rsync" "$TMP/rsync-bad"
victim=$(ls "$TMP/rsync-bad" | grep '\.log$' | sed -n 2p)
printf '\x5a' | dd of="$TMP/rsync-bad/$victim" bs=1 seek=5000 conv=notrunc 2> /dev/null
refused flipped "$TMP/rsync-bad/$victim.*damaged" "$FULL" "$TMP/rsync-bad"
# The separate --listed-incremental directories without the aborted
# session's: the fourth lists a generation only that one holds.
refused without-3 "listed in the manifest .* but missing from every set given" \
  "$FULL" "$TMP"/targ-{2,4,5}/incremental
# ... and without the fourth: the set missing between the second and the fifth.
refused without-4 "a set is missing from the chain: backup [0-9a-f]*, .*after incremental backup [0-9a-f]* (generations [0-9-]*, begun 20[0-9T:-]*Z) and before incremental backup" \
  "$FULL" "$TMP"/targ-{2,3,5}/incremental
echo "PASS: test_copy_layouts"
