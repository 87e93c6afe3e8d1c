#!/usr/bin/env bash
# bench/browsebench.sh -- `jetfs browse` of a backup chain vs a full
# `jetutil restore` of the same sets, in one run (scripts/bench calls it).
#
#   browsebench.sh BUILD_DIR WORK_DIR [DB_MB] [LOG_MB] [RUNS]
#
# A database of about DB_MB (default 2048) is loaded and its full set copied
# through `jetfs serve`'s mount; then about LOG_MB (default 100) of updates
# (new values for existing keys) and the incremental set that holds their
# log.  Then, RUNS times (default 3), interleaved, warm cache:
#   - time to a first answer: `jetfs browse` started, until `cat` of one
#     updated key through the mount answers; vs `jetutil restore` of the same
#     sets (the restore alone: its answer would still need the copy opened);
#   - scratch space: the browse's overlay at its peak (in memory, from
#     status, plus du of its $TMPDIR scratch) vs du of the restored copy;
#   - every key of the table read with cat through the mount (find | xargs
#     cat) vs `jetutil export --table` of the restored copy;
#   - `jetutil export SETS --table` vs restore + export of the copy.
# Figures are medians (date +%s%N); each ratio is the peer over browse, so
# above 1 means browse is faster or smaller.  Goals (issue 19): first answer
# >= 10x, scratch < 1/10 (ratio > 10), the cat of every key >= 0.5x.
set -euo pipefail
BUILD=${1:?usage: browsebench.sh BUILD_DIR WORK_DIR [DB_MB] [LOG_MB] [RUNS]}
WORK=${2:?}
DB_MB=${3:-2048}
LOG_MB=${4:-100}
RUNS=${5:-3}
J=$BUILD/jetutil
F=$BUILD/jetfs
M=$WORK/mnt
B=$WORK/browse
D=$WORK/db
SC=$WORK/scratch
R=$WORK/restored
T=data
mkdir -p "$WORK" "$M" "$B" "$SC"
PID= BPID=
cleanup() {
  [ -n "$BPID" ] && kill -TERM "$BPID" 2> /dev/null && wait "$BPID" 2> /dev/null || true
  [ -n "$PID" ] && kill -TERM "$PID" 2> /dev/null && wait "$PID" 2> /dev/null || true
  fusermount3 -uz "$B" 2> /dev/null || true
  fusermount3 -uz "$M" 2> /dev/null || true
}
trap cleanup EXIT
now() { date +%s%N; }
die() { echo "browsebench: $*" >&2; exit 1; }

# ---- the chain: a full set of about DB_MB, an incremental of about LOG_MB ----
backup() {  # kind dest
  "$F" serve "$D" "$M" --once > "$WORK/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 400); do [ -f "$M/status" ] && break; sleep 0.05; done
  [ -f "$M/status" ] || { cat "$WORK/serve.log" >&2; die "the mount did not come up"; }
  rm -rf "$2"; cp -r "$M/backup/$1" "$2"
  fusermount3 -u "$M"; wait "$PID" || die "jetfs serve exited $?"; PID=
}
if [ ! -f "$WORK/inc/backup.manifest" ]; then
  rm -rf "$D"
  # 4000-byte values fill pages about half: keys ~ DB_MB * 1 MiB / 8000 (as fsbench).
  "$J" load "$D" --keys $((DB_MB * 131)) --value-size 4000 --batch 2000 > /dev/null
  backup full "$WORK/full"
  # New values for the first keys: about 4.1 KB of log each.
  "$J" load "$D" --keys $((LOG_MB * 190)) --value-size 4000 --batch 500 --seed 2 > /dev/null
  backup incremental "$WORK/inc"
fi
SETS=("$WORK/full" "$WORK/inc")
KEY=key:$(printf "%010d" $((LOG_MB * 190 / 2)))
set_mb() { du -sb "$1" | awk '{printf "%.0f", $1 / 1048576}'; }
LOGS=$(find "$WORK/inc" -name 'edb*.log' | wc -l)
printf "sets: full %s MB (database %s MB), incremental %s MB (%s log generations); key %s; %s runs, medians\n" \
  "$(set_mb "$WORK/full")" "$(( $(stat -c %s "$WORK/full/jetfs.db") / 1048576 ))" "$(set_mb "$WORK/inc")" "$LOGS" "$KEY" "$RUNS"

# The overlay's bytes in memory (status's overlay_bytes less those spilled
# to its temporary file) + the scratch directory's bytes on disk (the spill
# file among them).
overlay_now() {
  local mem disk
  mem=$(python3 -c "import json; d=json.load(open('$B/status')); print(d['overlay_bytes'] - d['overlay_spilled_bytes'])")
  disk=$(du -sb "$SC" | cut -f1)
  echo $((mem + disk))
}
first=() restore=() scratch=() rscratch=() cat=() rexport=() sexport=()
for run in $(seq 1 "$RUNS"); do
  # browse: start, first answer, overlay, every key with cat, unmount.
  t0=$(now)
  TMPDIR=$SC "$F" browse "$B" "${SETS[@]}" > "$WORK/browse.log" 2>&1 &
  BPID=$!
  until cat "$B/tables/$T/$KEY" > "$WORK/answer" 2> /dev/null; do
    kill -0 "$BPID" 2> /dev/null || { cat "$WORK/browse.log" >&2; die "jetfs browse exited"; }
    sleep 0.002
  done
  t1=$(now)
  [ "$(stat -c %s "$WORK/answer")" = 4000 ] || die "the first answer is $(stat -c %s "$WORK/answer") bytes, not 4000"
  first+=($((t1 - t0)))
  peak=$(overlay_now)
  t0=$(now)
  (cd "$B/tables/$T" && find . -type f -print0 | xargs -0 cat) > /dev/null
  t1=$(now)
  cat+=($((t1 - t0)))
  o=$(overlay_now); [ "$o" -gt "$peak" ] && peak=$o
  scratch+=("$peak")
  fusermount3 -u "$B"; wait "$BPID" || die "jetfs browse exited $? after the unmount"; BPID=
  [ -z "$(ls -A "$SC")" ] || die "the overlay outlived the browse"

  # restore: the whole copy, its size, then export of it.
  rm -rf "$R"
  t0=$(now)
  "$J" restore --to "$R" "${SETS[@]}" > "$WORK/restore.log" 2>&1 || { cat "$WORK/restore.log" >&2; die "restore failed"; }
  t1=$(now)
  restore+=($((t1 - t0)))
  rscratch+=("$(du -sb "$R" | cut -f1)")
  t0=$(now)
  "$J" export "$R" --table "$T" > /dev/null
  t1=$(now)
  rexport+=($((t1 - t0)))
  rm -rf "$R"

  # export straight from the sets.
  t0=$(now)
  TMPDIR=$SC "$J" export "${SETS[@]}" --table "$T" > /dev/null 2> "$WORK/export.log" || { cat "$WORK/export.log" >&2; die "export SETS failed"; }
  t1=$(now)
  sexport+=($((t1 - t0)))
  echo "  run $run: first answer $((first[-1] / 1000000)) ms, restore $((restore[-1] / 1000000)) ms" >&2
done

python3 - "${first[*]}" "${restore[*]}" "${scratch[*]}" "${rscratch[*]}" "${cat[*]}" "${rexport[*]}" "${sexport[*]}" <<'EOF'
import statistics, sys
med = [statistics.median(int(x) for x in a.split()) for a in sys.argv[1:]]
first, restore, scratch, rscratch, cat, rexport, sexport = med
s, mb = 1e9, 1048576
print(f"{'figure':<44} {'browse':>12} {'peer':>12}   {'peer/browse':>11}  goal")
print(f"{'time to a first answer (cat one key)':<44} {first / s:10.3f} s {restore / s:10.3f} s   {restore / first:10.1f}x  >= 10x  (peer: jetutil restore)")
print(f"{'scratch space (overlay peak vs restored)':<44} {scratch / mb:9.1f} MB {rscratch / mb:9.1f} MB   {rscratch / max(scratch, 1):10.1f}x  >= 10x  (i.e. < 1/10)")
print(f"{'every key of the table: cat vs export':<44} {cat / s:10.3f} s {rexport / s:10.3f} s   {rexport / cat:10.2f}x  >= 0.5x (peer: export of the restored copy)")
print(f"{'jetutil export SETS vs restore + export':<44} {sexport / s:10.3f} s {(restore + rexport) / s:10.3f} s   {(restore + rexport) / sexport:10.1f}x")
EOF
