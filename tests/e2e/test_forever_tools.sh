#!/usr/bin/env bash
# tests/e2e/test_forever_tools.sh -- incremental-forever backup software
# against a live `jetfs serve` (real mounts, real tools), session after
# session: restic, borg, rsync into one destination and tar
# --listed-incremental each take a full and four incrementals with writes between them; the third session is
# aborted (`jetfs end --abort`, which exits 0, says so and leaves the next
# session mounted), so the fourth is
# presented generations the tool already holds and skips: every other
# session must still end normally and truncate, and the chain (full, 2nd,
# 4th, 5th) restores to the state at the last begin.  rsync's destination
# keeps every session's files (no --delete): restore ignores the aborted
# session's manifest, naming it.
# Also: a database changed between two sessions of the same second is
# transferred again (nanosecond mtimes); getfattr and tar --xattrs see no
# extended attributes and no error; du, find and ls -R of the mount leave
# every kind usable; a watchdog abort unmounts and mounts again.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_forever.$$
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" | tail -40 >&2
  exit 1
}
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
for tool in restic borg rsync redis-cli getfattr; do
  command -v "$tool" > /dev/null || fail "$tool is not installed (scripts/deps installs it)"
done
rm -rf "$TMP"; mkdir -p "$TMP/mnt"
M=$TMP/mnt
PID=
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  fusermount3 -uz "$M" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

. "$(dirname "$0")/lib.sh"
unmounts() { grep -c "jetfs: unmounted" "$TMP/serve.log" || true; }
more_unmounts_than() { [ "$(unmounts)" -gt "$1" ]; }

# jetfs serve (mounting again after each unmount) with the Redis protocol.
serve() {
  D=$1; shift
  P=$(free_port)
  "$F" serve "$D" "$M" --listen "127.0.0.1:$P" "$@" > "$TMP/serve.log" 2>&1 &
  PID=$!
  wait_for "the mount" mounted
  wait_for "the listener" port_up
}
stop_serve() {
  kill -TERM "$PID"
  wait "$PID" || fail "jetfs serve exited $? after SIGTERM"
  PID=
}
# Ends the session by unmounting; waits for the remount; prints its outcome.
end_session() {
  local before
  before=$(unmounts)
  fusermount3 -u "$M"
  wait_for "the end of the session" more_unmounts_than "$before"
  wait_for "the next mount" mounted
  grep "jetfs: unmounted" "$TMP/serve.log" | tail -1
}
expect_normal() { grep -q "backup ended normally" <<< "$1" || fail "$2: the session did not end normally: $1"; }
# Keys k<from>..k<to-1>, acknowledged (durable) by the live instance.
write_keys() {
  for i in $(seq "$1" $(($2 - 1))); do printf 'SET k%06d v%06d-%s\n' "$i" "$i" "$(head -c 300 /dev/zero | tr '\0' x)"; done |
    redis-cli -p "$P" > "$TMP/set.out"
  [ "$(grep -c OK "$TMP/set.out")" = $(($2 - $1)) ] || fail "not every SET was acknowledged"
}
logs_in() { ls "$1" | grep -c '^edb[0-9A-F]*\.log$' || true; }

# One tool's five sessions.  $1 names the tool; backup_with KIND N backs up
# MOUNT/backup/KIND as session N; restore_set N DIR puts session N's set in DIR.
five_sessions() {
  local tool=$1 out status_text n_before n_after
  D=$TMP/db-$tool
  serve "$D"
  write_keys 0 400
  backup_with full 1
  expect_normal "$(end_session)" "$tool session 1 (full)"
  for n in 2 3 4 5; do
    write_keys $((n * 400)) $((n * 400 + 400))
    backup_with incremental "$n"
    if [ "$n" = 3 ]; then
      # The backup server could not confirm the copy: an explicit abort.
      out=$("$F" end "$M" --abort) || fail "jetfs end --abort exited $?"
      grep -q "aborted" <<< "$out" || fail "jetfs end --abort does not say aborted: $out"
    fi
    if [ "$n" = 4 ]; then
      # The aborted session's generations are presented again, and the
      # tool skipped the ones it already held.
      status_text=$(cat "$M/status")
      grep -q '"state": "delivered_before"' <<< "$status_text" ||
        fail "$tool session 4: no generation counts as delivered before: $status_text"
      grep -q '"state": "unread"' <<< "$status_text" && fail "$tool session 4: a file was left unread: $status_text"
      n_before=$(logs_in "$D")
    fi
    if [ "$n" = 3 ]; then
      # The explicit end unmounted the session, and jetfs end returned
      # once the next one was mounted: no unmount left to do.
      mounted || fail "$tool session 3: the next session is not mounted when jetfs end returns"
      out=$(grep "jetfs: unmounted" "$TMP/serve.log" | tail -1)
    else
      out=$(end_session)
    fi
    if [ "$n" = 3 ]; then
      grep -q "aborted, nothing truncated" <<< "$out" || fail "$tool session 3: not aborted: $out"
    else
      expect_normal "$out" "$tool session $n"
    fi
    if [ "$n" = 4 ]; then
      grep -q "by an earlier backup" <<< "$out" || fail "$tool session 4: the outcome does not say what was delivered before: $out"
      grep -q "truncated generations none" <<< "$out" && fail "$tool session 4 truncated nothing: $out"
      n_after=$(logs_in "$D")
      [ "$n_after" -lt "$n_before" ] || fail "$tool session 4: $n_before logs before, $n_after after"
    fi
  done
  stop_serve
  "$J" export "$D" > "$TMP/expect-$tool"
  [ "$(grep -c '^' "$TMP/expect-$tool")" -ge 2000 ] || fail "$tool: the live instance lacks the keys written"
  # The chain: the full, the second, the fourth and the fifth sessions.
  local sets=()
  for n in 1 2 4 5; do
    restore_set "$n" "$TMP/$tool-set$n"
    sets+=("$TMP/$tool-set$n")
  done
  "$J" restore --to "$TMP/restored-$tool" "${sets[@]}" > /dev/null 2> "$TMP/restore-$tool.err" ||
    fail "$tool: the chain does not restore: $(cat "$TMP/restore-$tool.err")"
  "$J" export "$TMP/restored-$tool" | cmp -s - "$TMP/expect-$tool" ||
    fail "$tool: the restored chain differs from the state at the last begin"
}

# --- restic: its parent snapshot makes it skip unchanged files ---
export RESTIC_PASSWORD=jetfs-test RESTIC_REPOSITORY=$TMP/restic XDG_CACHE_HOME=$TMP/cache
restic init -q > /dev/null
backup_with() { nice -n 19 restic backup -q --host jetfs-e2e --tag "s$2" "$M/backup/$1" > /dev/null || fail "restic backup $2 failed"; }
restore_set() {
  restic restore -q latest --tag "s$1" --target "$TMP/restic-r$1" > /dev/null || fail "restic restore $1 failed"
  mv "$TMP/restic-r$1/$M/backup/"* "$2"
}
five_sessions restic

# --- borg: its files cache makes it skip unchanged files ---
export BORG_REPO=$TMP/borg BORG_BASE_DIR=$TMP/borgbase BORG_PASSPHRASE= \
  BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
borg init -e none > /dev/null 2>&1
backup_with() { (cd "$M/backup/$1" && nice -n 19 borg create "::s$2" .) || fail "borg create $2 failed"; }
restore_set() { mkdir -p "$2" && (cd "$2" && borg extract "::s$1") || fail "borg extract $1 failed"; }
five_sessions borg

# --- rsync -a into one destination (no --delete), snapshotted after each run ---
backup_with() {
  mkdir -p "$TMP/rs/$1"
  nice -n 19 rsync -a "$M/backup/$1/" "$TMP/rs/$1/" || fail "rsync $2 failed"
  cp -a "$TMP/rs/$1" "$TMP/rs-snap$2"
}
restore_set() { mv "$TMP/rs-snap$1" "$2"; }
five_sessions rsync
# The destination kept every session's manifest, the aborted one's too:
# that one is off the chain, ignored, named.
grep -q "is not in the chain to the newest backup" "$TMP/restore-rsync.err" ||
  fail "restore of rsync's destination does not name the aborted session's manifest it ignored: $(cat "$TMP/restore-rsync.err")"

# --- tar --listed-incremental (--no-check-device: the mount's device changes) ---
backup_with() {
  (cd "$M/backup" && nice -n 19 tar --no-check-device -g "$TMP/tar-$1.snar" -cf "$TMP/tar-s$2.tar" "$1") ||
    fail "tar -g $2 failed"
}
restore_set() {
  # The set as of session N: the archives of its directory, extracted in
  # order (-g /dev/null also removes what a later dump no longer held).
  local k
  mkdir -p "$TMP/tar-x$1"
  if [ "$1" = 1 ]; then tar -x -g /dev/null -f "$TMP/tar-s1.tar" -C "$TMP/tar-x1"
  else for k in $(seq 2 "$1"); do tar -x -g /dev/null -f "$TMP/tar-s$k.tar" -C "$TMP/tar-x$1"; done; fi
  mv "$TMP/tar-x$1/"* "$2"
}
five_sessions tar

# --- two sessions in the same second: the database is transferred again ---
D=$TMP/db-times
serve "$D"
write_keys 0 50
cat "$M/backup/full/"* > /dev/null
expect_normal "$(end_session)" "a full before the copies"
mkdir -p "$TMP/times"
rsync -a "$M/backup/copy/" "$TMP/times/"
T1=$(stat -c %y "$M/backup/copy/jetfs.db")
expect_normal "$(end_session)" "copy session 1"
write_keys 0 1 # the same key, the same size: the database's size does not change
T2=$(stat -c %y "$M/backup/copy/jetfs.db")
[ "$T1" != "$T2" ] || fail "two sessions gave the database the same mtime $T1"
grep -q '\.[0-9]\{9\}' <<< "$T2" && ! grep -q '\.000000000' <<< "$T2" || fail "the database mtime lacks sub-second precision: $T2"
rsync -a --itemize-changes "$M/backup/copy/" "$TMP/times/" > "$TMP/itemized"
grep -q "jetfs.db" "$TMP/itemized" || fail "rsync skipped a database whose content changed: $(cat "$TMP/itemized")"
[ "$(stat -c %Z "$M/backup/copy/jetfs.db")" = "$(stat -c %Y "$M/backup/copy/jetfs.db")" ] || fail "ctime differs from mtime"
expect_normal "$(end_session)" "copy session 2"

# --- extended attributes: none, and no error ---
getfattr -d "$M/backup/copy/jetfs.db" > "$TMP/xattr.out" 2>&1 || fail "getfattr -d failed: $(cat "$TMP/xattr.out")"
[ ! -s "$TMP/xattr.out" ] || fail "getfattr found attributes: $(cat "$TMP/xattr.out")"
tar --xattrs -cf "$TMP/x.tar" -C "$M/backup" copy 2> "$TMP/tar.err" || fail "tar --xattrs failed: $(cat "$TMP/tar.err")"
[ ! -s "$TMP/tar.err" ] || fail "tar --xattrs warned: $(cat "$TMP/tar.err")"
expect_normal "$(end_session)" "tar --xattrs of a copy"

# --- tree walks: du, find and ls -R begin nothing that blocks a backup ---
du -s "$M" > /dev/null 2>&1 || true
find "$M" > "$TMP/find.out" 2>&1 || true
grep -q "backup/full/jetfs.db" "$TMP/find.out" || fail "find does not see the full set: $(cat "$TMP/find.out")"
grep -q "backup/copy/backup.manifest" "$TMP/find.out" || fail "find does not see the copy set (EBUSY?): $(cat "$TMP/find.out")"
ls -R "$M" > /dev/null 2>&1 || true
tar -cf "$TMP/inc.tar" -C "$M/backup" incremental 2> "$TMP/tar.err" || fail "tar of an incremental after the walks failed: $(cat "$TMP/tar.err")"
out=$(end_session)
grep -q "incremental backup ended normally" <<< "$out" || fail "the incremental after tree walks did not end normally: $out"
# A walk alone backs nothing up.
find "$M" > /dev/null 2>&1 || true
out=$(end_session)
grep -q "no file of the set was opened" <<< "$out" || fail "a walk alone did not end as a listing: $out"
stop_serve

# --- a watchdog abort unmounts, and the next mount takes the next backup ---
serve "$D" --idle-timeout 1
before=$(unmounts)
ls "$M/backup/full" > /dev/null
head -c 1 "$M/backup/full/backup.manifest" > /dev/null
wait_for "the idle abort" more_unmounts_than "$before"
grep "jetfs: unmounted" "$TMP/serve.log" | tail -1 | grep -q "no read for 1 seconds" ||
  fail "the idle abort's outcome: $(grep unmounted "$TMP/serve.log" | tail -1)"
wait_for "the mount after the abort" mounted
cat "$M/backup/copy/"* > /dev/null || fail "the mount after a watchdog abort refuses a backup"
expect_normal "$(end_session)" "the copy after a watchdog abort"
stop_serve
echo "PASS: test_forever_tools"
