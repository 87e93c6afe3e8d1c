#!/usr/bin/env bash
# tests/e2e/test_fs_mount.sh -- `jetfs serve` on a real mount, driven by real
# tools: listing begins nothing; read-only everywhere (EROFS); incremental
# with no full refused and explained in status; a second type is EBUSY; an
# unmount after a partial read aborts (nothing truncated, history unchanged);
# cp/tar of a full set ends normally and truncates; the set restores with
# jetutil restore; SIGTERM ends a read set normally and shuts down cleanly;
# --truncate manual with `jetfs end`, which unmounts the ended session
# (reads of a file still open fail); kill -9 mid-backup then restart (stale
# mount cleaned, recovery, nothing lost); busy mount point, locked instance
# and missing /dev/fuse refused with clear errors; private to the mounting
# user by default, --group opens it (read-only) to one group's members;
# the loop threads that serve reads run at SCHED_IDLE unless
# --backup-priority normal.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_fs_mount.$$
fail() { echo "FAIL: $*" >&2; grep fuse /proc/mounts >&2; [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" >&2; exit 1; }
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
rm -rf "$TMP"; mkdir -p "$TMP/mnt"
M=$TMP/mnt
D=$TMP/db
PID=
ACCESS_USERS=
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  fusermount3 -uz "$M" 2>/dev/null || true
  case $M in /tmp/jetfs-e2e-access.*) rmdir "$M" 2>/dev/null || true;; esac
  rm -rf "$TMP"
  if [ -n "$ACCESS_USERS" ]; then
    userdel "$MEMBER" 2>/dev/null || true
    userdel "$OUTSIDER" 2>/dev/null || true
    groupdel "$GRP" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# Polls a condition with a deadline instead of sleeping.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 200); do "$@" && return 0; sleep 0.05; done
  fail "timed out waiting for $what"
}
mounted() { [ -f "$M/status" ]; }
unmounted() { ! mountpoint -q "$M"; }
serve() {
  "$F" serve "$D" "$M" "$@" > "$TMP/serve.log" 2>&1 &
  PID=$!
  wait_for "the mount" mounted
}
# Unmounts and waits for `jetfs serve --once` to exit 0.
unmount_wait() {
  fusermount3 -u "$M"
  wait "$PID" || fail "jetfs serve exited $?"
  PID=
}
status_field() { python3 -c "import json,sys; d=json.load(open('$M/status')); print($1)"; }
logs_of() { (cd "$D" && ls edb[0-9A-F]*.log | sort); }
# Every generation listed in $1 is still in the log directory.
all_present() { for l in $1; do [ -f "$D/$l" ] || return 1; done; }

"$J" load "$D" --keys 3000 --value-size 700 --seed 1 > /dev/null
"$J" export "$D" > "$TMP/export0"

# --- session 1: listing, EROFS, refusals, EBUSY, partial read aborts ---
serve --once
ls "$M" "$M/backup" > /dev/null
stat "$M/backup/full" "$M/backup/incremental" > /dev/null
[ "$(status_field 'd["backup"]["state"]')" = none ] || fail "listing began a backup"
[ "$(stat -c %a "$M/status")" = 400 ] || fail "status is not private to the mounting user (0400)"

expect_erofs() {
  local out
  if out=$("$@" 2>&1); then fail "'$*' succeeded on a read-only tree"; fi
  grep -q "Read-only file system" <<< "$out" || fail "'$*': expected EROFS, got: $out"
}
expect_erofs touch "$M/newfile"
expect_erofs mkdir "$M/newdir"
expect_erofs rm -f "$M/status"
expect_erofs chmod 644 "$M/status"
expect_erofs sh -c ": > '$M/status'"
expect_erofs mv "$M/status" "$M/status2"

if out=$(ls "$M/backup/incremental" 2>&1); then fail "incremental with no full backup was allowed"; fi
grep -q "not permitted" <<< "$out" || fail "missing full: expected EPERM, got: $out"
status_field 'd["last_error"]' | grep -q "JET error -560" || fail "status does not explain the missing full backup"

LOGS_BEFORE=$(logs_of)
ls -l "$M/backup/full" > "$TMP/ls1"
grep -q "jetfs.db" "$TMP/ls1" && grep -q "backup.manifest" "$TMP/ls1" || fail "full set lacks its files: $(cat "$TMP/ls1")"
[ "$(status_field 'd["backup"]["state"]')" = running ] || fail "opening backup/full began nothing"
INO1=$(stat -c '%i %s %Y' "$M/backup/full/jetfs.db")
# A partial read (readahead may fetch somewhat more than asked); opening a
# file commits the session to the full backup.
dd if="$M/backup/full/jetfs.db" of=/dev/null bs=64k count=4 status=none
if out=$(ls "$M/backup/copy" 2>&1); then fail "a second type in the same session was allowed"; fi
grep -q "busy" <<< "$out" || fail "second type: expected EBUSY, got: $out"
status_field 'd["last_error"]' | grep -q "already" || fail "status does not say why the copy was refused"
[ "$(stat -c '%i %s %Y' "$M/backup/full/jetfs.db")" = "$INO1" ] || fail "attributes changed within a session"
expect_erofs touch "$M/backup/full/jetfs.db"
unmount_wait
grep -q "aborted, nothing truncated" "$TMP/serve.log" || fail "a partial read did not abort"
grep -q "jetfs.db read" "$TMP/serve.log" || fail "the abort does not say which file was not read whole"
all_present "$LOGS_BEFORE" || fail "an aborted backup deleted logs"
"$J" header "$D/jetfs.db" --json > "$TMP/h1"
python3 - "$TMP/h1" <<'EOF' || fail "an aborted backup changed the history"
import json, sys
h = json.load(open(sys.argv[1]))
assert all(not b.get("backup_id") or b["backup_id"] in ("0", "0000000000000000") for b in h["backups"].values()), h["backups"]
EOF

# --- session 2: a full backup with cp, normal end, truncation, restore ---
serve --once
[ "$(status_field 'd["backup"]["state"]')" = none ] || fail "a new session started with a backup"
cp -r "$M/backup/full" "$TMP/full1"
tar -cf "$TMP/full1.tar" -C "$M/backup" full 2> "$TMP/tar.err" || fail "tar failed: $(cat "$TMP/tar.err")"
grep -q "changed as we read" "$TMP/tar.err" && fail "tar saw a file change"
[ "$(stat -c %a "$M/backup/full/jetfs.db")" = 400 ] || fail "set files are not 0400"
# The threads that served those reads yield the CPU to clients (SCHED_IDLE).
idle_fuse_threads() {
  local n=0 t
  for t in /proc/"$PID"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = jetfs-fuse ] || continue
    chrt -p "${t##*/}" 2>/dev/null | grep -q SCHED_IDLE && n=$((n + 1))
  done
  echo "$n"
}
[ "$(idle_fuse_threads)" -ge 1 ] || fail "no loop thread of jetfs serve reads at idle priority"
unmount_wait
grep -q "full backup ended normally" "$TMP/serve.log" || fail "a complete read did not end normally"
grep -q "truncated generations" "$TMP/serve.log" || fail "a full backup did not report truncation"
all_present "$LOGS_BEFORE" && fail "a full backup truncated nothing"
"$J" header "$D/jetfs.db" --json | python3 -c 'import json,sys; h=json.load(sys.stdin); b=h["backups"]["full"]; assert b["backup_id"] not in ("0","0000000000000000"), b' \
  || fail "the full backup is not in the header"
"$J" restore --to "$TMP/r1" "$TMP/full1" > /dev/null || fail "restore of the cp'd full set failed"
"$J" export "$TMP/r1" | cmp -s - "$TMP/export0" || fail "restored cp'd set differs from the database"
mkdir -p "$TMP/x" && tar -xf "$TMP/full1.tar" -C "$TMP/x"
"$J" restore --to "$TMP/r2" "$TMP/x/full" > /dev/null || fail "restore of the tar'd full set failed"
"$J" export "$TMP/r2" | cmp -s - "$TMP/export0" || fail "restored tar'd set differs"

# --backup-priority: a bad value is a usage error before anything is opened;
# normal keeps every loop thread at normal priority.
rc=0; "$F" serve "$TMP/never" "$M" --backup-priority low > "$TMP/bad.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--backup-priority low exited $rc, not 2 (usage)"
grep -q "takes idle or normal" "$TMP/bad.log" || fail "--backup-priority low not explained: $(cat "$TMP/bad.log")"
[ ! -e "$TMP/never" ] || fail "--backup-priority low created the instance directory"
serve --once --backup-priority normal
cat "$M/backup/copy/"* > /dev/null
[ "$(idle_fuse_threads)" = 0 ] || fail "--backup-priority normal still read at idle priority"
unmount_wait
grep -q "copy backup ended normally" "$TMP/serve.log" || fail "the copy backup did not end normally"

# --- session 3: incremental after more data, SIGTERM ends it normally ---
"$J" load "$D" --keys 500 --value-size 300 --seed 2 --table more > /dev/null
"$J" export "$D" > "$TMP/export1"
serve
rsync -a "$M/backup/incremental/" "$TMP/inc1/"
rsync -a --stats "$M/backup/incremental/" "$TMP/inc1/" | grep -q "Number of regular files transferred: 0" \
  || fail "a second rsync of the same set transferred files"
kill -TERM "$PID"
wait "$PID" || fail "jetfs serve exited $? after SIGTERM"
PID=
wait_for "the unmount after SIGTERM" unmounted
grep -q "incremental backup ended normally" "$TMP/serve.log" || fail "SIGTERM did not end the read set normally"
grep -q "instance shut down cleanly" "$TMP/serve.log" || fail "SIGTERM did not shut the instance down"
"$J" restore --to "$TMP/r3" "$TMP/full1" "$TMP/inc1" > /dev/null || fail "restore of full + incremental failed"
"$J" export "$TMP/r3" | cmp -s - "$TMP/export1" || fail "full + incremental restores a different state"

# --- session 4/5: --truncate manual: unmount never truncates; jetfs end does ---
serve --once --truncate manual
L4=$(logs_of)
cat "$M/backup/full/"* > /dev/null
unmount_wait
grep -q "truncation is manual" "$TMP/serve.log" || fail "manual truncation: unmount did not abort"
all_present "$L4" || fail "manual truncation: unmount deleted logs"
serve --once --truncate manual
if "$F" end "$M" > /dev/null 2>&1; then fail "jetfs end succeeded with no backup running"; fi
cat "$M/backup/full/jetfs.db" > /dev/null
if "$F" end "$M" 2> "$TMP/end.err" > /dev/null; then fail "jetfs end succeeded before the set was read whole"; fi
grep -q "not every byte" "$TMP/end.err" || fail "jetfs end refusal unclear: $(cat "$TMP/end.err")"
cat "$M/backup/full/"* > /dev/null
exec 7< "$M/backup/full/jetfs.db" # a reader still holding a file of the set at the end
"$F" end "$M" > "$TMP/end.out" || fail "jetfs end failed after a complete read"
grep -q "ended normally" "$TMP/end.out" || fail "jetfs end does not report the outcome"
grep -q '"remount": false' "$TMP/end.out" || fail "the ended session's status does not say --once mounts no other"
# The explicit end unmounts the session (--once: and serve exits); the
# file still open fails its reads, past the pages the kernel cached.
mounted && fail "the session is still mounted after jetfs end returned"
python3 -c 'import os
os.posix_fadvise(7, 0, 0, os.POSIX_FADV_DONTNEED)
try:
    os.pread(7, 4096, 4096)
except OSError:
    raise SystemExit(1)' && fail "reads still succeed after the backup ended"
exec 7<&-
wait "$PID" || fail "jetfs serve --once exited $? after jetfs end"
PID=
all_present "$L4" && fail "jetfs end did not truncate"
grep "unmounted" "$TMP/serve.log" | tail -1 | grep -q "full backup ended normally" ||
  fail "after jetfs end, the session's outcome is not the end: $(grep unmounted "$TMP/serve.log" | tail -1)"

# --- kill -9 mid-backup, then restart: stale mount cleaned, nothing lost ---
"$J" export "$D" > "$TMP/export2"
serve --once
L5=$(logs_of)
head -c 100000 "$M/backup/full/jetfs.db" > /dev/null
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
if stat "$M/status" > /dev/null 2>&1; then fail "the mount still answers after kill -9"; fi
serve --once
grep -q "stale mount" "$TMP/serve.log" || fail "the stale mount was not reported"
[ "$(status_field 'd["backup"]["state"]')" = none ] || fail "restart began a backup"
cat "$M/backup/full/"* > /dev/null
unmount_wait
"$J" export "$D" | cmp -s - "$TMP/export2" || fail "kill -9 during a backup lost data"

# --- access: private to the mounting user by default; --group opens it ---
# Needs root to create a group and two users; CI runs as root.
# Names of this run only: two runs at once (two checkouts) must not delete
# each other's users.
GRP=jfe$$g MEMBER=jfe$$m OUTSIDER=jfe$$o
if [ "$(id -u)" = 0 ] && command -v useradd > /dev/null && command -v runuser > /dev/null; then
  getent group "$GRP" > /dev/null || groupadd "$GRP"
  id "$MEMBER" > /dev/null 2>&1 || useradd -M -N -g "$GRP" -s /usr/sbin/nologin "$MEMBER"
  id "$OUTSIDER" > /dev/null 2>&1 || useradd -M -N -s /usr/sbin/nologin "$OUTSIDER"
  ACCESS_USERS=1
  # A mount point every user can reach (the test's own directory may not be).
  M_SAVED=$M
  M=$(mktemp -d /tmp/jetfs-e2e-access.XXXXXX)
  chmod 755 "$M"
  as() { local u=$1; shift; runuser -u "$u" -- "$@"; }
  serve --once
  as "$OUTSIDER" ls "$M" > /dev/null 2> "$TMP/acc.err" && fail "another user listed a private mount"
  grep -q "Permission denied" "$TMP/acc.err" || fail "private mount: expected EACCES, got: $(cat "$TMP/acc.err")"
  as "$MEMBER" ls "$M" > /dev/null 2>&1 && fail "a private mount let a group member in before --group"
  [ "$(stat -c %a "$M/backup/full/jetfs.db")" = 400 ] || fail "default mode is not 0400"
  unmount_wait
  serve --once --group "$GRP"
  [ "$(stat -c '%a %G' "$M/backup/full/jetfs.db")" = "440 $GRP" ] ||
    fail "--group: expected 440 $GRP, got $(stat -c '%a %G' "$M/backup/full/jetfs.db")"
  as "$MEMBER" cat "$M/backup/full/"* > "$TMP/member.bytes" || fail "a member of --group could not read the set"
  cat "$M/backup/full/"* | cmp -s - "$TMP/member.bytes" || fail "the member read other bytes than the owner"
  as "$MEMBER" sh -c ": > '$M/backup/full/jetfs.db'" 2> "$TMP/acc.err" && fail "a member wrote to the set"
  as "$OUTSIDER" ls "$M/backup/full" > /dev/null 2> "$TMP/acc.err" && fail "a user outside --group listed the set"
  grep -q "Permission denied" "$TMP/acc.err" || fail "outsider: expected EACCES, got: $(cat "$TMP/acc.err")"
  as "$OUTSIDER" cat "$M/backup/full/jetfs.db" > /dev/null 2>&1 && fail "a user outside --group read the database"
  unmount_wait
  rmdir "$M"
  M=$M_SAVED
  "$F" serve "$D" "$M" --once --group no-such-group-here > "$TMP/grp.log" 2>&1 && fail "--group with an unknown group"
  grep -q "no group named" "$TMP/grp.log" || fail "unknown group not explained: $(cat "$TMP/grp.log")"
else
  echo "SKIP (access): needs root, useradd and runuser"
  [ -n "${CI:-}" ] && fail "the access test cannot run under CI"
fi

# --- clear refusals: busy mount point, locked instance, no /dev/fuse ---
serve --once
set +e
"$F" serve "$TMP/db2" "$M" --once > "$TMP/busy.log" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "serve on a busy mount point exited $rc"
grep -q "busy" "$TMP/busy.log" || fail "busy mount point not explained: $(cat "$TMP/busy.log")"
mkdir -p "$TMP/mnt2"
set +e
timeout 20 "$F" serve "$D" "$TMP/mnt2" --once > "$TMP/locked.log" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "serve on an instance in use exited $rc"
grep -q "in use by another process" "$TMP/locked.log" || fail "locked instance not explained: $(cat "$TMP/locked.log")"
unmount_wait
if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
  set +e
  unshare -m sh -c "mount -t tmpfs none /dev && '$F' serve '$TMP/db3' '$TMP/mnt2' --once" > "$TMP/nofuse.log" 2>&1; rc=$?
  set -e
  [ $rc -eq 1 ] || fail "serve without /dev/fuse exited $rc: $(cat "$TMP/nofuse.log")"
  grep -q "/dev/fuse" "$TMP/nofuse.log" || fail "missing /dev/fuse not explained: $(cat "$TMP/nofuse.log")"
fi
"$F" serve > /dev/null 2>&1 && fail "serve without arguments succeeded"
"$F" --help | grep -q "jetfs serve DBDIR MOUNT" || fail "--help"
echo "e2e fs mount: ok"
