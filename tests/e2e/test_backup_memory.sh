#!/usr/bin/env bash
# tests/e2e/test_backup_memory.sh -- a full read of a set keeps one copy of
# it in memory at most, not two: the daemon reads the database past the page
# cache, and the mount drops what a sequential reader passed.  A database of
# a few hundred MiB is served; tar reads its full set inside a memory cgroup
# of its own (v2, else v1), from a dropped page cache: the pages the mount
# caches for the reader are charged to that cgroup, and its file cache must
# grow by at most 10% of the set plus a constant; the daemon's own reads are
# charged to the daemon, which runs in a memory cgroup of its own too, held
# to the same bound; and the machine's page cache (Cached in /proc/meminfo)
# must grow by less than 1.1 times the set plus a constant (it grew by
# twice the set when both copies were kept; the test runs alone: RUN_SERIAL).  Then dd
# bs=1M, cat and a random reader read the database file again and get the
# same bytes as tar, and the backup ends normally at the unmount.  Without a
# memory cgroup controller the memory figures are skipped (77), except under
# CI where a controller that is present but unusable fails; in a sanitizer
# build they are skipped too (the sanitizer's shadow memory is not the
# point), and the reads are still compared.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_backup_memory.$$
CG=
CGD=
PID=
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  skip "no /dev/fuse"
fi
[ "$(id -u)" = 0 ] || skip "needs root (a memory cgroup, drop_caches)"
M=$TMP/mnt
D=$TMP/db
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  fusermount3 -uz "$M" 2>/dev/null || true
  [ -n "$PID" ] && wait "$PID" 2>/dev/null || true
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null || true
  [ -n "$CGD" ] && rmdir "$CGD" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
rm -rf "$TMP"; mkdir -p "$M"
source "$(dirname "$0")/lib.sh"

# --- the memory cgroup the reader runs in: FILE_KEY is memory.stat's page
# cache line, PEAK the high-water mark of the cgroup's memory ---
MEMORY=1
[ -n "${JET_SANITIZED:-}" ] && MEMORY=
if [ -n "$MEMORY" ]; then
  if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || echo +memory > /sys/fs/cgroup/cgroup.subtree_control ||
      true
    CG=/sys/fs/cgroup/jetfs-test-memory.$$; FILE_KEY=file; PEAK=memory.peak
  elif [ -d /sys/fs/cgroup/memory ]; then
    own=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
    CG=/sys/fs/cgroup/memory${own%/}/jetfs-test-memory.$$; FILE_KEY=cache; PEAK=memory.max_usage_in_bytes
  else
    echo "no memory cgroup controller: memory figures skipped"; MEMORY=; NOCG=1
  fi
  if [ -n "$CG" ] && ! mkdir "$CG" 2>/dev/null; then
    [ -n "${CI:-}" ] && fail "cannot create the memory cgroup $CG"
    echo "cannot create the memory cgroup $CG: memory figures skipped"; CG=; MEMORY=; NOCG=1
  fi
  if [ -n "$CG" ]; then CGD=$CG-daemon; mkdir "$CGD" || fail "cannot create the memory cgroup $CGD"; fi
  if [ -n "$CG" ] && ! grep -q "^$FILE_KEY " "$CG/memory.stat"; then
    [ -n "${CI:-}" ] && fail "$CG/memory.stat has no '$FILE_KEY' line"
    echo "$CG/memory.stat has no '$FILE_KEY': memory figures skipped"; MEMORY=; NOCG=1
  fi
fi
cg_file() { awk -v k="$FILE_KEY" '$1 == k {print $2}' "$1/memory.stat"; }
cached() { awk '/^Cached:/ {print $2 * 1024}' /proc/meminfo; }

"$J" load "$D" --keys 40000 --value-size 3000 --seed 7 > /dev/null
(
  [ -n "$CGD" ] && echo "$BASHPID" > "$CGD/cgroup.procs"
  exec "$F" serve "$D" "$M" --once > "$TMP/serve.log" 2>&1
) &
PID=$!
wait_for "the mount" mounted
SET=$(stat -c %s "$M"/backup/full/* | awk '{s += $1} END {print s}')
[ "$SET" -ge $((200 << 20)) ] || fail "the set is only $SET bytes"

# --- a full read of the set with tar, from a dropped page cache ---
sync; echo 3 > /proc/sys/vm/drop_caches
C0=$(cached)
[ -n "$MEMORY" ] && D0=$(cg_file "$CGD")
(
  [ -n "$CG" ] && echo "$BASHPID" > "$CG/cgroup.procs"
  tar -cf - -C "$M/backup" full | tar -xOf - full/jetfs.db | md5sum > "$TMP/tar.md5"
)
C1=$(cached)
if [ -n "$MEMORY" ]; then
  FILE=$(cg_file "$CG"); PEAKB=$(cat "$CG/$PEAK")
  DAEMON=$(($(cg_file "$CGD") - D0))
  GROWTH=$((C1 - C0))
  echo "set $((SET >> 20)) MiB: the reader's cgroup holds $((FILE >> 20)) MiB of file pages (peak memory" \
       "$((PEAKB >> 20)) MiB), the daemon's grew by $((DAEMON >> 20)) MiB, the page cache by $((GROWTH >> 20)) MiB"
  [ "$DAEMON" -le $((SET / 10 + (16 << 20))) ] ||
    fail "the daemon's cgroup cached $((DAEMON >> 20)) MiB more reading a $((SET >> 20)) MiB set (bound: 10% + 16 MiB)"
  [ "$FILE" -le $((SET / 10 + (16 << 20))) ] ||
    fail "the reader's cgroup kept $((FILE >> 20)) MiB of file pages for a $((SET >> 20)) MiB set (bound: 10% + 16 MiB)"
  [ "$PEAKB" -le $((SET / 10 + (48 << 20))) ] ||
    fail "the reader's cgroup peaked at $((PEAKB >> 20)) MiB for a $((SET >> 20)) MiB set (bound: 10% + 48 MiB)"
  [ "$GROWTH" -le $((SET * 11 / 10 + (64 << 20))) ] ||
    fail "the page cache grew by $((GROWTH >> 20)) MiB during a read of a $((SET >> 20)) MiB set (bound: 1.1x + 64 MiB)"
fi

# --- the same bytes read again, by other readers, after the drops ---
DB=$M/backup/full/jetfs.db
want=$(cut -d' ' -f1 "$TMP/tar.md5")
[ "$(dd if="$DB" bs=1M status=none | md5sum | cut -d' ' -f1)" = "$want" ] || fail "dd bs=1M read other bytes than tar"
[ "$(cat "$DB" | md5sum | cut -d' ' -f1)" = "$want" ] || fail "cat read other bytes than tar"
# A random reader: 64 KiB blocks at scattered offsets, compared with dd's.
python3 - "$DB" <<'PY' || fail "a random reader read other bytes than a sequential one"
import os, random, sys
path = sys.argv[1]
size = os.path.getsize(path)
rnd = random.Random(26)
offs = [rnd.randrange(0, size // 65536) * 65536 for _ in range(200)]
fd = os.open(path, os.O_RDONLY)
for off in offs:
    a = os.pread(fd, 65536, off)
    with open(path, "rb") as f:
        f.seek(off)
        b = f.read(65536)
    assert a == b and len(a) == 65536, off
os.close(fd)
PY

fusermount3 -u "$M"
wait "$PID" || fail "jetfs serve exited $?"
PID=
grep -q "full backup ended normally" "$TMP/serve.log" || fail "the backup did not end normally: $(tail -3 "$TMP/serve.log")"
[ -n "${NOCG:-}" ] && skip "no usable memory cgroup: the reads were checked, the memory figures not"
echo "e2e backup memory: ok"
