#!/usr/bin/env bash
# tests/e2e/test_offhost.sh -- backups off the host, by the README's recipe
# (scripts/offhost-backup, run here as it is documented): restic stores sets
# read through a live mount in a repository served over loopback HTTP by
# `rclone serve restic` (with a user and password), while clients write.
#  - a full set, then two incrementals, each ending normally (logs
#    truncated on the live instance);
#  - a failed restic run (wrong repository password; or exit 3 after
#    storing, injected) fails the recipe (exit 1, said): the backup is
#    aborted, nothing truncated, no snapshot left, and the next
#    incremental still chains;
#  - `offhost-backup restore` fetches the newest full and every incremental
#    after it from the repository and `jetutil restore`s them: its
#    `jetutil export` equals the live instance's after a clean shutdown;
#  - the full set alone restores to the data as of its begin (the keys
#    written later are absent).
set -euo pipefail
BIN=${JET_BIN:?}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OFF=$SRC/scripts/offhost-backup
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_offhost.XXXXXX" 2>/dev/null || mktemp -d)
M=$TMP/mnt
PIDS=()
fail() {
  echo "FAIL: $*" >&2
  for l in "$TMP"/*.log; do [ -f "$l" ] && sed "s|^|  $(basename "$l"): |" "$l" | tail -40 >&2; done
  exit 1
}
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
for tool in restic rclone jq redis-cli; do command -v "$tool" > /dev/null || fail "$tool is missing (scripts/deps installs it)"; done
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  fusermount3 -uz "$M" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
# shellcheck source=tests/e2e/lib.sh
. "$SRC/tests/e2e/lib.sh"
mkdir -p "$M" "$TMP/remote"
export PATH=$BIN:$PATH       # the recipe runs jetfs and jetutil from PATH
export RESTIC_CACHE_DIR=$TMP/restic-cache JETFS_BACKUP_HOST=e2e-offhost

# The "backup host": a REST server for restic over loopback, with a user.
RP=$(free_port)
rclone serve restic --addr "127.0.0.1:$RP" --user jetfs --pass s3cret "$TMP/remote" > "$TMP/rclone.log" 2>&1 &
PIDS+=($!)
rest_up() { (exec 3<>"/dev/tcp/127.0.0.1/$RP") 2>/dev/null; }
wait_for "rclone serve restic" rest_up
export RESTIC_REPOSITORY=rest:http://jetfs:s3cret@127.0.0.1:$RP/jetfs/
echo "repository password" > "$TMP/restic.pass"
export RESTIC_PASSWORD_FILE=$TMP/restic.pass
restic init > "$TMP/init.log" 2>&1 || fail "restic init: $(cat "$TMP/init.log")"

# The live instance, with clients writing.
P=$(free_port)
jetfs serve "$TMP/db" "$M" --listen "$P" > "$TMP/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
wait_for "the mount" mounted
wait_for "the port" port_up
R() { redis-cli -p "$P" "$@" > /dev/null; }
write_batch() {  # write_batch TAG N: N keys TAG:i, and a counter
  local tag=$1 n=$2 i j pad
  for ((i = 0; i < n; i += 100)); do
    local args=()
    for ((j = i; j < i + 100 && j < n; j++)); do printf -v pad '%0300d' "$j"; args+=("$tag:$j" "value-$tag-$j-$pad"); done
    R MSET "${args[@]}"
  done
  R INCRBY counter "$n"
}
truncated_since() { grep -c "truncated generations" "$TMP/serve.log" || true; }

write_batch full 3000
"$OFF" backup "$M" full > "$TMP/off.log" 2>&1 || fail "offhost-backup backup full: $(cat "$TMP/off.log")"
grep -q "full set stored as snapshot" "$TMP/off.log" || fail "no snapshot said: $(cat "$TMP/off.log")"
wait_for "the remount" mounted
[ "$(truncated_since)" -ge 1 ] || fail "the full backup did not truncate the logs"

write_batch inc1 2000
"$OFF" backup "$M" incremental > "$TMP/off.log" 2>&1 || fail "offhost-backup backup incremental: $(cat "$TMP/off.log")"
wait_for "the remount" mounted

# A failed store (the repository refuses the password): aborted, nothing truncated.
write_batch inc2 1500
before=$(truncated_since)
echo "wrong password" > "$TMP/wrong.pass"
rc=0; RESTIC_PASSWORD_FILE=$TMP/wrong.pass "$OFF" backup "$M" incremental > "$TMP/off.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "a failed restic run exited $rc: $(cat "$TMP/off.log")"
grep -q "backup was aborted, nothing truncated" "$TMP/off.log" || fail "the failure was not said: $(cat "$TMP/off.log")"
wait_for "the remount" mounted
[ "$(truncated_since)" = "$before" ] || fail "the failed store truncated logs"
[ "$(restic snapshots --json | jq length)" = 2 ] || fail "the failed run left a snapshot: $(restic snapshots)"

# restic read every file but failed at the end with exit 3 ("some files
# could not be read", a snapshot saved anyway), injected by a wrapper: the
# partial snapshot is forgotten and the backup aborted.
mkdir -p "$TMP/fakebin"
real_restic=$(command -v restic)
printf '#!/usr/bin/env bash\nif [ "$1" = backup ]; then "%s" "$@"; exit 3; fi\nexec "%s" "$@"\n' \
  "$real_restic" "$real_restic" > "$TMP/fakebin/restic"
chmod +x "$TMP/fakebin/restic"
write_batch inc2b 500
rc=0; PATH=$TMP/fakebin:$PATH "$OFF" backup "$M" incremental > "$TMP/off.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "a restic exit 3 made the recipe exit $rc: $(cat "$TMP/off.log")"
grep -q "(exit 3): the backup was aborted, nothing truncated" "$TMP/off.log" || fail "exit 3 was not said: $(cat "$TMP/off.log")"
wait_for "the remount" mounted
[ "$(truncated_since)" = "$before" ] || fail "the backup restic half-stored truncated logs"
grep -q "incremental backup aborted" "$TMP/serve.log" || fail "serve did not log the abort of the half-stored backup"
[ "$(restic snapshots --json | jq length)" = 2 ] || fail "the partial snapshot was not forgotten: $(restic snapshots)"

# The next incremental chains on (it holds what the failed ones did).
write_batch inc3 1000
"$OFF" backup "$M" incremental > "$TMP/off.log" 2>&1 || fail "offhost-backup backup incremental (after the failure): $(cat "$TMP/off.log")"
wait_for "the remount" mounted
[ "$(restic snapshots --json | jq length)" = 3 ] || fail "expected 3 snapshots: $(restic snapshots)"

# Stop the clients and the instance cleanly: the live data to compare with.
kill -TERM "$SERVE"
rc=0; wait "$SERVE" || rc=$?
[ $rc -eq 0 ] || fail "serve exited $rc at SIGTERM"
jetutil export "$TMP/db" > "$TMP/live.export" || fail "export of the live instance"

# Off the host and back: the full and both incrementals.
"$OFF" restore "$TMP/restored" > "$TMP/restore.log" 2>&1 || fail "offhost-backup restore: $(cat "$TMP/restore.log")"
[ ! -e "$TMP/restored.sets" ] || fail "the fetched sets were left behind after a good restore"
jetutil export "$TMP/restored" > "$TMP/restored.export" || fail "export of the restored instance"
cmp -s "$TMP/live.export" "$TMP/restored.export" ||
  fail "the restored data differs from the live data: $(diff "$TMP/live.export" "$TMP/restored.export" | head -5)"
lines=$(wc -l < "$TMP/live.export")
[ "$lines" -ge 7500 ] || fail "the live export has only $lines lines"

# The full set alone: the data as of its begin.
"$OFF" fetch "$TMP/sets" > "$TMP/fetch.out" 2> "$TMP/fetch.log" || fail "offhost-backup fetch: $(cat "$TMP/fetch.log")"
[ "$(sed 's|.*/||' "$TMP/fetch.out" | tr '\n' ' ')" = "00-full 01-incremental 02-incremental " ] ||
  fail "fetch gave $(cat "$TMP/fetch.out")"
jetutil restore --to "$TMP/fullonly" "$TMP/sets/00-full" > "$TMP/fullonly.log" 2>&1 || fail "restore of the full set: $(cat "$TMP/fullonly.log")"
jetutil export "$TMP/fullonly" > "$TMP/fullonly.export"
hexkey() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
grep -qi "^$(hexkey full:2999) " "$TMP/fullonly.export" || fail "the full set lacks full:2999"
if grep -qi "^$(hexkey inc1:0) " "$TMP/fullonly.export"; then fail "the full set holds inc1:0, written after its begin"; fi
grep -qi "^$(hexkey inc3:999) " "$TMP/restored.export" || fail "the restored chain lacks inc3:999"
echo "PASS: full + incrementals through restic to rclone serve restic and back: restored == live"
