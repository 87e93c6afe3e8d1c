#!/usr/bin/env bash
# bench/logbench.sh -- how much log jetfs writes, and how fast a restore
# replays it, each figure beside its peer from the same run (scripts/bench
# calls it in "== log volume and replay").
#
#   logbench.sh BUILD_DIR WORK_DIR [RUNS] [PEER_BUILD_DIR]
#
# BUILD_DIR holds jetfs and jetutil.  PEER_BUILD_DIR (optional; also taken
# from $LOG_PEER_BUILD) is a build of another commit -- e.g. the last one
# with log format 1, which logged 8 KiB page images -- measured the same way
# in the same run as extra columns, named $LOG_PEER_NAME (default peer).
# $LOG_UPDATES sets the updates of 1a (default 2000).  Every figure is the
# median of RUNS runs (default 3), each on a fresh instance; a ratio is the
# median of the per-run ratios.
#
# How log bytes are counted (1a, 1b, 3): `jetutil logs DIR` prints every
# record as GGGGGGGG:OOOOOOOO (generation:offset) TYPE LENGTH.  A record
# occupies 24 header bytes + LENGTH rounded up to 8 (engine/log.h: records
# are contiguous and 8-byte aligned after the 4096-byte generation header,
# then zeroes).  So "records" = the sum of the records' occupied sizes, and a
# generation's "used" part = the end of its last record (4096 if it holds
# none): the zero tail after it is unfilled file, not log.
#
#   1a  log bytes per durable single-key update of a 200-byte value: one
#       client (each SET acknowledged, hence durable, before the next) updates
#       one key LOG_UPDATES times; bytes = the occupied size of the records
#       appended (those at or past the log's end position before the run),
#       divided by the updates.  Two workloads: a new random 200-character
#       value each time (redis-cli reading SETs from stdin -- it sends one and
#       waits for the reply), and redis-benchmark -c 1 -t set -d 200, which
#       rewrites its constant value (the page does not change, so the log
#       need not either).  Peer: the client's bytes per update, key + value
#       = 16 + 200 = 216.
#   1b  the incremental backup of the issue: `jetfs serve --listen`, a full
#       backup copied with cp -r from MOUNT/backup/full and ended by
#       `fusermount3 -u MOUNT` (with the default --truncate auto, unmount
#       after a complete read ends the backup normally and truncates the
#       logs; jetfs mounts again by itself), then
#       `redis-benchmark -t set -n 20000 -d 200 -r 10000` (-c 50 by default),
#       then an incremental copied with cp -r from MOUNT/backup/incremental
#       and ended the same way.  Peer: the client's bytes, 20000 x (16-byte
#       key "key:" + 12 digits, + 200-byte value) = 4,320,000.  Figures: the
#       set's total bytes (every file, manifest included), its used bytes
#       (each generation's used part + the manifest), its record bytes (and
#       how many of them belong to commits changing more than one page: page
#       splits), and used / client (target <= 2x; 44.7x with log format 1).
#       A second column runs the same scenario with a new random value in
#       every SET (50 redis-cli processes, 400 SETs each, same keys and
#       sizes), since redis-benchmark's constant value makes every SET of an
#       existing key a change of nothing.
#    3  restore replay: `jetutil restore --to NEWDIR FULLSET INCSET` of 1b's
#       two sets (it checks the manifests and chain, copies, replays, checks
#       every page), timed with date +%s.%N, 3 restores per run.  Figures:
#       transactions replayed (commit records in both sets, a generation in
#       both counted once) per second, and the client's SETs per second of
#       restore (a SET that changes nothing may log no transaction), MB of
#       log records (and of log files) per second, and restore time / the
#       time the workload took to write it live (20000 / redis-benchmark's
#       requests/s; for the redis-cli column, the wall time of the 50
#       clients) -- target <= 0.2.  A restore is checked: its key count
#       (jetutil export) must equal DBSIZE at the incremental's begin.
set -euo pipefail
BUILD=${1:?usage: logbench.sh BUILD_DIR WORK_DIR [RUNS] [PEER_BUILD_DIR]}
WORK=${2:?usage: logbench.sh BUILD_DIR WORK_DIR [RUNS] [PEER_BUILD_DIR]}
RUNS=${3:-3}
PEER=${4:-${LOG_PEER_BUILD:-}}
UPDATES=${LOG_UPDATES:-2000}
N=20000 D=200 KEYS=10000 KEYLEN=16 CLIENTS=50 RESTORES=3   # 1b, exactly the issue's
for t in redis-benchmark redis-cli python3 fusermount3; do
  command -v "$t" > /dev/null || { echo "logbench: $t is missing" >&2; exit 1; }
done
BUILDS=("$BUILD"); NAMES=(jetfs)
[ -n "$PEER" ] && { BUILDS+=("$PEER"); NAMES+=("${LOG_PEER_NAME:-peer}"); }
rm -rf "$WORK"; mkdir -p "$WORK"
RES=$WORK/results.tsv   # scenario <tab> figure <tab> value, one line per run
: > "$RES"

SPID= M=
cleanup() {
  [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null || true
  [ -n "$M" ] && fusermount3 -uz "$M" 2>/dev/null || true
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mounted() { for _ in $(seq 1 400); do [ -f "$M/status" ] && return 0; sleep 0.05; done
  echo "logbench: the mount did not come up" >&2; cat "$W/serve.log" >&2; exit 1; }
serve() {  # build dir -> $SPID, $P, $M, a fresh instance in $W/db
  M=$W/mnt; P=$(port); mkdir -p "$M"
  "$1/jetfs" serve "$W/db" "$M" --listen "127.0.0.1:$P" > "$W/serve.log" 2>&1 &
  SPID=$!
  mounted
  for _ in $(seq 1 400); do [ "$(redis-cli -p "$P" PING 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done
  echo "logbench: no reply on port $P" >&2; exit 1
}
unserve() { kill -TERM "$SPID"; wait "$SPID" || true; SPID=; M=; }
backup() {  # type -> copies MOUNT/backup/TYPE to $W/TYPE, unmounts, checks it ended normally
  cp -r "$M/backup/$1" "$W/$1"
  fusermount3 -u "$M"
  mounted
  grep -q "$1 backup ended normally" "$W/serve.log" ||
    { echo "logbench: the $1 backup did not end normally" >&2; cat "$W/serve.log" >&2; exit 1; }
}
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RES"; }
now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
# randvals K: K lines of D random base64 characters (D*3/4 random bytes each).
randvals() { head -c $(( $1 * D * 3 / 4 )) /dev/urandom | base64 -w "$D"; }

# logstat JETUTIL FROM DIR...: the log generations of the DIRs as key=value
# lines (see the header): gens, files (bytes of the generation files), used,
# records, commits, deltas, empty (deltas of 0 ranges), multi and
# multi_bytes (commits changing more than one page -- page splits -- and the
# bytes of their records, from the delta records before each commit record),
# end (hex position after the last record).  A generation in several DIRs (an incremental set
# repeats those of the full that the checkpoint still needed) counts once.
# records/commits/deltas/empty count only the records at or past FROM (hex
# log position; 0 for all).
logstat() {
  local j=$1 from=$2 d; shift 2
  for d in "$@"; do echo "dir $d"; "$j" logs "$d"; done > "$WORK/logs.txt"
  python3 - "$from" "$WORK/logs.txt" <<'EOF'
import os, re, sys
frm = int(sys.argv[1], 16)
gens, size = {}, {}   # generation -> {offset: (type, occupied bytes, rest)}, file size
for line in open(sys.argv[2]):
    if line.startswith("dir "):
        d = line[4:].rstrip("\n")
        for f in os.listdir(d):
            if re.fullmatch(r"edb[0-9A-F]{8}\.log", f):
                g = int(f[3:11], 16)
                gens[g], size[g] = {}, os.path.getsize(os.path.join(d, f))
        continue
    m = re.match(r"([0-9A-F]{8}):([0-9A-F]{8}) (\S+)\s+(\d+)(.*)", line)
    if m:
        gens[int(m[1], 16)][int(m[2], 16)] = (m[3], 24 + ((int(m[4]) + 7) & ~7), m[5])
c = dict(records=0, commits=0, deltas=0, empty=0, multi=0, multi_bytes=0)
used = last = 0
tx_bytes = tx_pages = 0   # the transaction being read: its records' bytes, its deltas
for g in sorted(gens):
    recs = gens[g]
    end = max([off + r[1] for off, r in recs.items()], default=4096)
    used += end
    last = max(last, (g << 32) | end)
    for off in sorted(recs):
        typ, occ, rest = recs[off]
        if (g << 32) | off < frm:
            continue
        c["records"] += occ
        c["commits"] += typ == "commit"
        c["deltas"] += typ == "delta"
        c["empty"] += typ == "delta" and " 0 ranges" in rest
        tx_bytes += occ
        tx_pages += typ in ("delta", "page")   # "page": a format-1 image
        if typ == "commit":
            if tx_pages > 1:   # a page split (or more): several pages in one commit
                c["multi"] += 1
                c["multi_bytes"] += tx_bytes
            tx_bytes = tx_pages = 0
print(f"gens={len(gens)} files={sum(size.values())} used={used} end={last:016X}")
print(" ".join(f"{k}={v}" for k, v in c.items()))
EOF
}
get() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p"; }   # key=value list, key -> value

# 1a: one client, one key, UPDATES durable updates.
one_key() {  # build, name
  W=$WORK/1a; rm -rf "$W"; mkdir -p "$W"
  serve "$1"
  randvals $((UPDATES + 1)) | sed 's/^/SET key:000000000001 /' > "$W/sets"
  head -1 "$W/sets" | redis-cli -p "$P" > /dev/null          # the key exists before
  local s e bad
  s=$(logstat "$1/jetutil" 0 "$W/db")
  bad=$(tail -n +2 "$W/sets" | redis-cli -p "$P" | grep -vc '^OK$' || true)
  [ "$bad" = 0 ] || { echo "logbench: $bad SETs failed" >&2; exit 1; }
  e=$(logstat "$1/jetutil" "$(get "$s" end)" "$W/db")
  [ "$(get "$e" commits)" = "$UPDATES" ] || { echo "logbench: $(get "$e" commits) commits for $UPDATES SETs" >&2; exit 1; }
  put "$2" new "$(calc "$(get "$e" records) / $UPDATES")"
  redis-benchmark -p "$P" -c 1 -n 1 -t set -d "$D" -q > /dev/null  # creates "key:__rand_int__"
  s=$(logstat "$1/jetutil" 0 "$W/db")
  redis-benchmark -p "$P" -c 1 -n "$UPDATES" -t set -d "$D" -q > /dev/null
  e=$(logstat "$1/jetutil" "$(get "$s" end)" "$W/db")
  put "$2" same "$(calc "$(get "$e" records) / $UPDATES")"   # a change of nothing may log nothing
  unserve
}

# 1b and 3: full backup, workload, incremental backup, restores.
incremental() {  # build, name, workload (bench | fresh)
  W=$WORK/1b; rm -rf "$W"; mkdir -p "$W"
  local sc=$2-$3 t0 t1 live dbsize
  serve "$1"
  backup full
  if [ "$3" = bench ]; then
    t0=$(now)
    rps=$(redis-benchmark -p "$P" -t set -n "$N" -d "$D" -r "$KEYS" -q --csv | tail -1 | cut -d, -f2 | tr -d '"')
    t1=$(now)
    live=$(calc "$N / $rps")
  else
    # The same keys and sizes, every value new: key:<12 digits> below KEYS.
    randvals "$N" |
      awk -v k="$KEYS" -v c="$CLIENTS" -v dir="$W" 'BEGIN {srand()}
        {printf "SET key:%012d %s\n", int(rand() * k), $0 > (dir "/sets." (NR % c))}'
    local f pids=()
    t0=$(now)
    for f in "$W"/sets.*; do redis-cli -p "$P" < "$f" > "$f.out" & pids+=("$!"); done
    wait "${pids[@]}"
    t1=$(now)
    [ "$(cat "$W"/sets.*.out | grep -c '^OK$')" = "$N" ] || { echo "logbench: a SET failed" >&2; exit 1; }
    live=$(calc "$t1 - $t0")
  fi
  dbsize=$(redis-cli -p "$P" DBSIZE)
  backup incremental
  unserve
  local both inc total manifest
  inc=$(logstat "$1/jetutil" 0 "$W/incremental")
  both=$(logstat "$1/jetutil" 0 "$W/full" "$W/incremental")   # what the restore replays
  total=$(find "$W/incremental" -type f -printf '%s\n' | awk '{t += $1} END {print t}')
  manifest=$(stat -c %s "$W/incremental/backup.manifest")
  put "$sc" gens "$(get "$inc" gens)"
  put "$sc" total "$total"
  put "$sc" used "$(( $(get "$inc" used) + manifest ))"
  put "$sc" records "$(get "$inc" records)"
  put "$sc" used_ratio "$(calc "($(get "$inc" used) + $manifest) / ($N * ($KEYLEN + $D))")"
  put "$sc" total_ratio "$(calc "$total / ($N * ($KEYLEN + $D))")"
  put "$sc" empty "$(get "$inc" empty)"
  put "$sc" multi "$(get "$inc" multi)"
  put "$sc" multi_bytes "$(get "$inc" multi_bytes)"
  put "$sc" deltas "$(get "$inc" deltas)"
  put "$sc" live "$live"
  put "$sc" live_rate "$(calc "$N / $live")"
  local txns recs files
  txns=$(get "$both" commits) recs=$(get "$both" records) files=$(get "$both" files)
  local r times=()
  for r in $(seq 1 "$RESTORES"); do
    rm -rf "$W/restored"
    t0=$(now)
    "$1/jetutil" restore --to "$W/restored" "$W/full" "$W/incremental" > "$W/restore.log" 2>&1 ||
      { echo "logbench: restore failed" >&2; cat "$W/restore.log" >&2; exit 1; }
    t1=$(now)
    times+=("$(calc "$t1 - $t0")")
  done
  local keys
  keys=$("$1/jetutil" export "$W/restored" | grep -vc '^table ')
  [ "$keys" = "$dbsize" ] || { echo "logbench: restored $keys keys, the instance had $dbsize" >&2; exit 1; }
  local rt
  rt=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (RESTORES + 1) / 2 ))p")
  put "$sc" restore "$rt"
  put "$sc" txns "$txns"
  put "$sc" txn_rate "$(calc "$txns / $rt")"
  put "$sc" set_rate "$(calc "$N / $rt")"
  put "$sc" rec_mbs "$(calc "$recs / 1e6 / $rt")"
  put "$sc" file_mbs "$(calc "$files / 1e6 / $rt")"
  put "$sc" replay_ratio "$(calc "$rt / $live")"
  rm -rf "$W"
}

for run in $(seq 1 "$RUNS"); do
  for i in "${!BUILDS[@]}"; do
    one_key "${BUILDS[$i]}" "${NAMES[$i]}"
    incremental "${BUILDS[$i]}" "${NAMES[$i]}" bench
    incremental "${BUILDS[$i]}" "${NAMES[$i]}" fresh
  done
done

python3 - "$RES" "$RUNS" "$UPDATES" "$N" "$D" "$KEYS" "$KEYLEN" "$CLIENTS" "$RESTORES" "$PEER" "${NAMES[*]}" <<'EOF'
import statistics, sys
from collections import defaultdict
runs, updates, n, d, keys, keylen, clients, restores = map(int, sys.argv[2:10])
peer, names = sys.argv[10], sys.argv[11].split()
v = defaultdict(list)
for line in open(sys.argv[1]):
    s, f, x = line.rstrip("\n").split("\t")
    v[s, f].append(float(x))
med = lambda s, f: statistics.median(v[s, f])
client = keylen + d
print(f"medians of {runs} runs, each on a fresh instance" + (f"; {names[1]} = the build in {peer}" if peer else ""))
print(f"\n1a. log bytes per durable single-key update of a {d}-byte value ({updates} updates, one client)")
print(f"{'workload':<46}" + "".join(f"{x + ' B/upd':>14}{'/client':>9}" for x in names))
for f, what in (("new", "new random value each SET (redis-cli)"),
                ("same", "constant value rewritten (redis-benchmark -c 1)")):
    print(f"{what:<46}" + "".join(f"{med(x, f):14.0f}{med(x, f) / client:8.2f}x" for x in names))
print(f"{'client bytes per update (key + value)':<46}{client:14d}")

cols = [(x, w) for x in names for w in ("bench", "fresh")]
label = {"bench": "benchmark", "fresh": "new values"}
head = "".join(f"{(x + ': ' + label[w]):>24}" for x, w in cols)
cb = n * client
print(f"\n1b. incremental backup through the mount after redis-benchmark -t set -n {n} -d {d} -r {keys} (-c 50);")
print(f"    columns 'benchmark': exactly that; 'new values': the same keys and sizes, every value new ({clients} redis-cli x {n // clients} SETs)")
print(f"    client bytes written: {n} x ({keylen}-byte key + {d}-byte value) = {cb} ({cb / 1e6:.2f} MB)")
print(f"{'figure':<44}{head}")
rows = [("gens", "generations in the incremental set", "{:.0f}"),
        ("total", "incremental set, total bytes", "{:,.0f}"),
        ("used", "  used (zero tails excluded, + manifest)", "{:,.0f}"),
        ("records", "  log records only", "{:,.0f}"),
        ("multi_bytes", "    of which commits of >1 page (splits)", "{:,.0f}"),
        ("multi", "    number of such commits", "{:,.0f}"),
        ("used_ratio", "used / client bytes (target <= 2x)", "{:.2f}x"),
        ("total_ratio", "total / client bytes", "{:.2f}x"),
        ("empty", "deltas changing nothing (of all deltas)", None),
        ("live_rate", "SETs/s while writing it", "{:,.0f}")]
for f, what, fmt in rows:
    cells = []
    for x, w in cols:
        s = f"{x}-{w}"
        if fmt is None:
            dl = med(s, 'deltas')   # none: a format that logs no deltas
            cells.append(f"{med(s, 'empty'):.0f} of {dl:.0f}" if dl else "-")
        else:
            cells.append(fmt.format(med(s, f)))
    print(f"{what:<44}" + "".join(f"{c:>24}" for c in cells))

print(f"\n3. restore replay: jetutil restore --to NEWDIR FULLSET INCSET of 1b's sets"
      f" (median of {restores} restores per run)")
print(f"{'figure':<44}{head}")
rows = [("live", "live: time the workload took to write, s", "{:.3f}"),
        ("restore", "restore time (checks, copy, replay), s", "{:.3f}"),
        ("replay_ratio", "restore / live time (target <= 0.2)", "{:.3f}x"),
        ("txns", "transactions replayed", "{:,.0f}"),
        ("txn_rate", "transactions/s", "{:,.0f}"),
        ("set_rate", f"client SETs restored/s ({n} / restore time)", "{:,.0f}"),
        ("rec_mbs", "MB of log records/s", "{:.1f}"),
        ("file_mbs", "MB of log files/s", "{:.1f}")]
for f, what, fmt in rows:
    print(f"{what:<44}" + "".join(f"{fmt.format(med(f'{x}-{w}', f)):>24}" for x, w in cols))
EOF
