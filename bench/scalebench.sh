#!/usr/bin/env bash
# bench/scalebench.sh BUILD WORK MB RUNS -- a full backup at scale, each
# read from a dropped page cache (root: drop_caches): tar of the mount's
# full set | cat vs tar of the same database file natively, MB/s and their
# ratio, and how much the page cache grew during each read (Cached in
# /proc/meminfo: the native read caches the file once; the mount should
# too, not twice).  Figures from a machine others use are noisy: the median
# of RUNS is printed.
set -euo pipefail
BUILD=$1; WORK=$2; MB=$3; RUNS=$4
if [ "$(id -u)" != 0 ]; then echo "scale: skipped (dropping the page cache needs root)"; exit 0; fi
rm -rf "$WORK"; mkdir -p "$WORK/mnt"
D=$WORK/db; M=$WORK/mnt; PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; fusermount3 -uz "$M" 2>/dev/null; rm -rf "$WORK"' EXIT
# 3000-byte values take 8.25 KB of database file each (one page and a bit).
KEYS=$((MB * 1000000 / 8250))
"$BUILD/jetutil" load "$D" --keys "$KEYS" --value-size 3000 --seed 3 > /dev/null
cached() { awk '/^Cached:/ {print $2 * 1024}' /proc/meminfo; }
now() { date +%s.%N; }
# One cold read: prints "MB/s growth_MiB" for `tar -cf - -C DIR NAME | cat`.
cold_tar() {
  local dir=$1 name=$2 bytes=$3 c0 t0 t1 c1
  sync; echo 3 > /proc/sys/vm/drop_caches
  c0=$(cached); t0=$(now)
  tar -cf - -C "$dir" "$name" | cat > /dev/null
  t1=$(now); c1=$(cached)
  awk -v b="$bytes" -v a="$t0" -v z="$t1" -v g=$((c1 - c0)) 'BEGIN {printf "%.0f %.0f\n", b / 1e6 / (z - a), g / 1048576}'
}
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
DBB=$(stat -c %s "$D/jetfs.db")
: > "$WORK/native"; : > "$WORK/mount"
for _ in $(seq "$RUNS"); do
  cold_tar "$D" jetfs.db "$DBB" >> "$WORK/native"
  "$BUILD/jetfs" serve "$D" "$M" --once > "$WORK/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 400); do [ -f "$M/status" ] && break; sleep 0.05; done
  SET=$(stat -c %s "$M"/backup/full/* | awk '{s += $1} END {print s}')
  cold_tar "$M/backup" full "$SET" >> "$WORK/mount"
  fusermount3 -u "$M"; wait "$PID"; PID=
done
NAT=$(cut -d' ' -f1 "$WORK/native" | median); NATG=$(cut -d' ' -f2 "$WORK/native" | median)
MNT=$(cut -d' ' -f1 "$WORK/mount" | median); MNTG=$(cut -d' ' -f2 "$WORK/mount" | median)
printf "%-44s %10s %12s\n" "cold full read, tar | cat ($((DBB >> 20)) MiB db)" "MB/s" "cache growth"
printf "%-44s %10s %9s MiB\n" "native (the database file)" "$NAT" "$NATG"
printf "%-44s %10s %9s MiB\n" "mount (the full set)" "$MNT" "$MNTG"
awk -v m="$MNT" -v n="$NAT" -v mg="$MNTG" -v s="$SET" 'BEGIN {printf "mount/native: %.2fx speed; the mount cached %.2f of the set\n", m / n, mg * 1048576 / s}'
