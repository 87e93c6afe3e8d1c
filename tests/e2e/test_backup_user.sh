#!/usr/bin/env bash
# tests/e2e/test_backup_user.sh -- a backup user without root backs up
# forever (issue 30): root runs `jetfs serve DBDIR MOUNT --group GRP` as the
# shipped unit does; a member of GRP who may not unmount root's mount
# (fusermount3 -u fails for it) runs five backups in a row with tar and
# cp -a -- a full, then incrementals, with writes between them -- each
# ended by `jetfs end MOUNT`, the third by `jetfs end --abort MOUNT`.  Each
# end returns with the tree ready for the next backup; every session but
# the aborted one ends normally and truncates; the chain (1st, 2nd, 4th,
# 5th) restores with jetutil restore to what the live instance exports.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_backup_user.$$
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" | tail -40 >&2
  exit 1
}
. "$(dirname "$0")/lib.sh"
need_fuse_and_redis_cli
if [ "$(id -u)" != 0 ] || ! command -v useradd > /dev/null || ! command -v runuser > /dev/null; then
  [ -n "${CI:-}" ] && fail "needs root, useradd and runuser under CI"
  echo "SKIP: needs root, useradd and runuser (to create the backup user)"; exit 77
fi

# Names of this run only: two runs at once must not delete each other's.
GRP=jbu$$g BUSER=jbu$$u
PID= M= OUT= USERS=
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  if [ -n "$M" ]; then
    fusermount3 -uz "$M" 2>/dev/null || true
    rmdir "$M" 2>/dev/null || true
  fi
  [ -n "$OUT" ] && rm -rf "$OUT"
  rm -rf "$TMP"
  if [ -n "$USERS" ]; then
    userdel "$BUSER" 2>/dev/null || true
    groupdel "$GRP" 2>/dev/null || true
  fi
}
trap cleanup EXIT
rm -rf "$TMP"; mkdir -p "$TMP"
D=$TMP/db

groupadd "$GRP"
USERS=1
useradd -M -N -g "$GRP" -s /usr/sbin/nologin "$BUSER"
# A mount point, the programs and a destination the user can reach (the
# build tree may not be).
M=$(mktemp -d /tmp/jetfs-e2e-bu-mnt.XXXXXX)
chmod 755 "$M"
OUT=$(mktemp -d /tmp/jetfs-e2e-bu-out.XXXXXX)
cp "$F" "$OUT/jetfs"
chmod 755 "$OUT" "$OUT/jetfs"
mkdir "$OUT/sets"
chown "$BUSER:$GRP" "$OUT/sets"
UF=$OUT/jetfs
as_user() { runuser -u "$BUSER" -- "$@"; }

P=$(free_port)
"$F" serve "$D" "$M" --listen "127.0.0.1:$P" --group "$GRP" > "$TMP/serve.log" 2>&1 &
PID=$!
wait_for "the mount" mounted
wait_for "the listener" port_up

# Keys k<from>..k<to-1>, acknowledged (durable) by the live instance: one
# MSET (one commit) per hundred keys.
VALUE=$(head -c 300 /dev/zero | tr '\0' y)
write_keys() {
  for ((i = $1; i < $2; i++)); do
    [ $(((i - $1) % 100)) = 0 ] && { [ "$i" = "$1" ] || echo; printf 'MSET'; }
    printf ' k%06d v%06d-%s' "$i" "$i" "$VALUE"
  done > "$TMP/set.in"
  echo >> "$TMP/set.in"
  redis-cli -p "$P" < "$TMP/set.in" > "$TMP/set.out"
  [ "$(grep -c OK "$TMP/set.out")" = $(((($2 - $1) + 99) / 100)) ] || fail "not every MSET was acknowledged: $(head -c 300 "$TMP/set.out")"
}
outcomes() { grep -c "jetfs: unmounted $M: .*backup \(ended normally\|aborted\)" "$TMP/serve.log" || true; }
logs_in() { ls "$D" | grep -c '^edb[0-9A-F]*\.log$' || true; }

write_keys 0 500
# What this test is about: the member cannot unmount root's mount.
if as_user fusermount3 -u "$M" > /dev/null 2>&1; then
  fail "the backup user could unmount root's mount: this test would not show what it means to"
fi
mounted || fail "the backup user's failed fusermount3 -u unmounted the tree"

for n in 1 2 3 4 5; do
  [ "$n" -gt 1 ] && write_keys $((n * 500)) $((n * 500 + 500))
  kind=incremental
  [ "$n" = 1 ] && kind=full
  before=$(outcomes)
  logs_before=$(logs_in)
  # The backup and its end, all as the backup user, nothing waited for in
  # between: when jetfs end returns, the tree is ready for the next backup.
  case $n in
    1|4) as_user sh -c "tar -cf '$OUT/sets/s$n.tar' -C '$M/backup' $kind" 2> "$TMP/copy.err" ||
           fail "session $n: tar of $kind as the backup user failed: $(cat "$TMP/copy.err")";;
    *)   as_user cp -a "$M/backup/$kind" "$OUT/sets/s$n" 2> "$TMP/copy.err" ||
           fail "session $n: cp -a of $kind as the backup user failed: $(cat "$TMP/copy.err")";;
  esac
  if [ "$n" = 3 ]; then
    # The backup server could not confirm the copy: an explicit abort.
    as_user "$UF" end "$M" --abort > "$TMP/end.out" 2> "$TMP/end.err" ||
      fail "session 3: jetfs end --abort as the backup user exited $?: $(cat "$TMP/end.err")"
    grep -q "aborted" "$TMP/end.out" || fail "session 3: jetfs end --abort does not say aborted: $(cat "$TMP/end.out")"
  else
    as_user "$UF" end "$M" > "$TMP/end.out" 2> "$TMP/end.err" ||
      fail "session $n: jetfs end as the backup user exited $?: $(cat "$TMP/end.err") $(cat "$TMP/end.out")"
    grep -q "ended normally" "$TMP/end.out" || fail "session $n: jetfs end does not say ended normally: $(cat "$TMP/end.out")"
  fi
  grep -q '"outcome"' "$TMP/end.out" || fail "session $n: jetfs end does not show the ended session's status: $(cat "$TMP/end.out")"
  grep -q "mounted again for the next backup" "$TMP/end.err" ||
    fail "session $n: jetfs end returned before the next session was mounted: $(cat "$TMP/end.err")"
  # Ready at once, for the member: a new session with no backup in it.
  as_user cat "$M/status" > "$TMP/status.json" 2> "$TMP/status.err" ||
    fail "session $n: the backup user cannot read status after jetfs end: $(cat "$TMP/status.err")"
  python3 - "$TMP/status.json" <<'EOF' || fail "session $n: after jetfs end, the tree is not a new session: $(cat "$TMP/status.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["backup"]["state"] == "none", d["backup"]
assert d["remount"] is True, d
EOF
  wait_for "session $n's outcome in the log" test "$(outcomes)" -gt "$before"
  last=$(grep "jetfs: unmounted $M: " "$TMP/serve.log" | tail -1)
  if [ "$n" = 3 ]; then
    grep -q "$kind backup aborted" <<< "$last" || fail "session 3: not aborted: $last"
    [ "$(logs_in)" -ge "$logs_before" ] || fail "session 3: the aborted backup truncated logs"
  else
    grep -q "$kind backup ended normally" <<< "$last" || fail "session $n: did not end normally: $last"
  fi
done
[ "$(outcomes)" = 5 ] || fail "expected five sessions with a backup, the log has $(outcomes)"
grep -c "unmounting $M after the explicit end" "$TMP/serve.log" | grep -qx 5 ||
  fail "not every explicit end unmounted its session"

# The live state at the last begin is the state now (no writes since).
kill -TERM "$PID"
wait "$PID" || fail "jetfs serve exited $? after SIGTERM"
PID=
"$J" export "$D" > "$TMP/expect"
[ "$(grep -c '^' "$TMP/expect")" -ge 2500 ] || fail "the live instance lacks the keys written"

for n in 1 4; do
  mkdir "$TMP/x$n"
  tar -xf "$OUT/sets/s$n.tar" -C "$TMP/x$n"
done
"$J" restore --to "$TMP/restored" "$TMP/x1/full" "$OUT/sets/s2" "$TMP/x4/incremental" "$OUT/sets/s5" \
  > /dev/null 2> "$TMP/restore.err" || fail "the chain does not restore: $(cat "$TMP/restore.err")"
"$J" export "$TMP/restored" | cmp -s - "$TMP/expect" || fail "the restored chain differs from the live instance"
echo "e2e backup user: ok"
