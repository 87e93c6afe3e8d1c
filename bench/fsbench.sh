#!/usr/bin/env bash
# bench/fsbench.sh -- reading a backup set through the jetfs mount vs the same
# files on the native filesystem, in one run (scripts/bench calls it).
#
#   fsbench.sh BUILD_DIR WORK_DIR [DB_MB] [RUNS]
#
# A database of about DB_MB (default 2048) is loaded, `jetfs serve` mounts
# it, and the full set is copied once to WORK_DIR/native (the peer: the same
# bytes in ordinary files).  Then each reader runs RUNS times against each,
# interleaved by hyperfine, warm cache (one warmup run each): dd bs=1M, cat,
# tar -cf - | cat, rsync -a to a fresh directory.  Figures are medians; the
# ratio is native time / mount time (1.0 = native speed).  A last row times
# the first read of a new session (the mount's page cache empty, so every
# byte goes through the daemon) against a warm native read.
set -euo pipefail
BUILD=${1:?usage: fsbench.sh BUILD_DIR WORK_DIR [DB_MB] [RUNS]}
WORK=${2:?}
DB_MB=${3:-2048}
RUNS=${4:-5}
J=$BUILD/jetutil
F=$BUILD/jetfs
M=$WORK/mnt
D=$WORK/db
N=$WORK/native
mkdir -p "$WORK" "$M"
PID=
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  fusermount3 -uz "$M" 2>/dev/null || true
}
trap cleanup EXIT

if [ ! -f "$D/jetfs.db" ]; then
  # 4000-byte values fill pages about half: keys ~ DB_MB * 1 MiB / 8000.
  "$J" load "$D" --keys $((DB_MB * 131)) --value-size 4000 --batch 2000 > /dev/null
fi
serve() {
  "$F" serve "$D" "$M" --once > "$WORK/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 400); do [ -f "$M/status" ] && return 0; sleep 0.05; done
  echo "fsbench: the mount did not come up" >&2; cat "$WORK/serve.log" >&2; exit 1
}
unserve() { fusermount3 -u "$M"; wait "$PID" || true; PID=; }

S=$M/backup/full
serve
rm -rf "$N"; cp -r "$S" "$N"
SIZE=$(du -sb "$N" | cut -f1)
DBF=jetfs.db
printf "set: %s files, %s MB (database %s MB); %s runs each, medians\n" "$(ls "$N" | wc -l)" \
  "$((SIZE / 1048576))" "$(( $(stat -c %s "$N/$DBF") / 1048576 ))" "$RUNS"

row() {  # name, native command, mount command (with {} for the directory)
  local name=$1 native=${2//\{\}/$N} mount=${3//\{\}/$S}
  hyperfine -N -w 1 -r "$RUNS" --export-json "$WORK/h.json" -p "rm -rf $WORK/rs" \
    -n native "$native" -n mount "$mount" > /dev/null 2>&1 ||
    hyperfine -w 1 -r "$RUNS" --export-json "$WORK/h.json" -p "rm -rf $WORK/rs" \
      -n native "$native" -n mount "$mount" > /dev/null
  python3 - "$WORK/h.json" "$name" "$SIZE" <<'EOF'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
size = int(sys.argv[3]) / 1e6
n, m = r["native"], r["mount"]
print(f"{sys.argv[2]:<22} {size / n:9.0f} MB/s {size / m:9.0f} MB/s   {n / m:5.2f}x")
EOF
}
printf "%-22s %14s %14s   %s\n" "reader" "native" "mount" "mount/native"
row "dd bs=1M (database)" "dd if={}/$DBF of=/dev/null bs=1M" "dd if={}/$DBF of=/dev/null bs=1M"
row "cat" "sh -c 'cat {}/* > /dev/null'" "sh -c 'cat {}/* > /dev/null'"
row "tar -cf - | cat" "sh -c 'tar -cf - -C {} . | cat > /dev/null'" "sh -c 'tar -cf - -C {} . | cat > /dev/null'"
row "rsync -a (fresh dir)" "rsync -a {}/ $WORK/rs/" "rsync -a {}/ $WORK/rs/"
unserve

# First read of a session: nothing of the set is in the mount's page cache.
first=()
for _ in $(seq 1 "$RUNS"); do
  serve
  t0=$(date +%s%N); cat "$S"/* > /dev/null; t1=$(date +%s%N)
  first+=("$(( (t1 - t0) / 1000 ))")
  unserve
done
native=()
for _ in $(seq 1 "$RUNS"); do
  t0=$(date +%s%N); cat "$N"/* > /dev/null; t1=$(date +%s%N)
  native+=("$(( (t1 - t0) / 1000 ))")
done
python3 - "$SIZE" "${native[*]}" "${first[*]}" <<'EOF'
import statistics, sys
size = int(sys.argv[1]) / 1e6
n = statistics.median(float(x) / 1e6 for x in sys.argv[2].split())
m = statistics.median(float(x) / 1e6 for x in sys.argv[3].split())
print(f"{'cat, first read':<22} {size / n:9.0f} MB/s {size / m:9.0f} MB/s   {n / m:5.2f}x  (new session: every byte through the daemon)")
EOF
rm -rf "$N" "$WORK/rs"
