#!/usr/bin/env bash
# tests/e2e/test_jetutil.sh -- jetutil end to end: load, export (stable),
# check (clean, each table's fill after a sequential and a random load, as
# text and --json, then a flipped byte in a data page found and named),
# header (human and JSON), logs, usage errors, a directory with no instance
# refused and left untouched, and kill -9 during a load leaving whole
# transactions only.
set -euo pipefail
J=${JET_BIN:?}/jetutil
TMP=${JET_TEST_TMP:-/tmp}/e2e_jetutil.$$
rm -rf "$TMP"; mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
D=$TMP/inst

"$J" load "$D" --keys 20000 --value-size 100 --seed 3 > "$TMP/load.out"
grep -q "loaded 20000 keys" "$TMP/load.out" || fail "load did not report"
"$J" export "$D" > "$TMP/e1"
"$J" export "$D" > "$TMP/e2"
cmp -s "$TMP/e1" "$TMP/e2" || fail "export is not stable"
[ "$(grep -vc '^table ' "$TMP/e1")" -eq 20000 ] || fail "export has the wrong row count"
# Same data loaded into a second instance exports byte-identical text.
"$J" load "$TMP/inst2" --keys 20000 --value-size 100 --seed 3 --batch 777 > /dev/null
"$J" export "$TMP/inst2" > "$TMP/e3"
cmp -s "$TMP/e1" "$TMP/e3" || fail "same data, different export"

"$J" check "$D" > "$TMP/check.out" || fail "check of a sound database failed: $(cat "$TMP/check.out")"
grep -q "20000 entries" "$TMP/check.out" || fail "check did not count entries"
# A load in key order fills its pages (100-byte values: 66 to a page, 99%);
# one in random order leaves them about 70% full.  --json says the same.
grep -Eq "^table data: 20000 entries, .*fill (9[5-9]|100)%" "$TMP/check.out" ||
    fail "check did not report a full sequential load: $(cat "$TMP/check.out")"
"$J" check "$D" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
t = d["tables"][0]
assert d["ok"] and not d["problems"] and t["name"] == "data" and t["entries"] == 20000 and t["fill"] >= 95, d'
"$J" load "$TMP/rnd" --keys 20000 --value-size 100 --seed 3 --order random > /dev/null
"$J" check "$TMP/rnd" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
t = d["tables"][0]
assert t["entries"] == 20000 and 60 <= t["fill"] < 90, d'
"$J" export "$TMP/rnd" | cmp -s - "$TMP/e1" || fail "a random-order load exports other rows than a sequential one"

"$J" header "$D/jetfs.db" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["state"]=="clean shutdown", d'
LOG=$(ls "$D"/edb0*.log | head -1)
"$J" header "$LOG" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["type"]=="log" and d["generation"]>=1, d'
"$J" header "$D/edb.chk" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["type"]=="checkpoint", d'
# A path with a quote, a backslash and a tab is still one valid JSON string.
Q=$TMP/$'odd "name" \\ tab\t'; mkdir -p "$Q"; cp "$D/jetfs.db" "$Q/"
"$J" header "$Q/jetfs.db" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["file"]==sys.argv[1], d' "$Q/jetfs.db" ||
  fail "header --json of an oddly named file is not JSON naming it"
"$J" header "$D/jetfs.db" | grep -q "clean shutdown" || fail "human header"
# The JSON's "created" is the text's (not the last backup's time, nor "-").
created=$("$J" header "$D/jetfs.db" | sed -n 's/^  created *//p')
"$J" header "$D/jetfs.db" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["created"]==sys.argv[1], (d["created"], sys.argv[1])' "$created" ||
  fail "header --json gives another creation time than the text ($created)"
"$J" logs "$D" > "$TMP/logs.out"
grep -q " commit " "$TMP/logs.out" || fail "logs lists no commit"
grep -q " attach " "$TMP/logs.out" || fail "logs lists no attach"

# Usage errors exit 2; --help exits 0.
set +e
"$J" > /dev/null 2>&1; [ $? -eq 2 ] || fail "no command: expected exit 2"
"$J" bogus > /dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command: expected exit 2"
"$J" load "$D" --keys x --value-size 1 > /dev/null 2>&1; [ $? -eq 2 ] || fail "bad number: expected exit 2"
"$J" check > /dev/null 2>&1; [ $? -eq 2 ] || fail "check without args: expected exit 2"
"$J" header "$TMP/e1" > /dev/null 2>&1; [ $? -eq 1 ] || fail "header of a non-jetfs file: expected exit 1"
set -e
"$J" check --help > /dev/null || fail "--help"
[ "$("$J" --version)" = "jetutil 1.0.0" ] || fail "--version printed '$("$J" --version)'"

# An export reads: no generation added, no file or mtime changed.
exp_before=$(find "$D" -printf '%p %s %T@\n' | sort)
"$J" export "$D" > "$TMP/ro1.out"
"$J" export "$D" --table nope > /dev/null 2>&1 && fail "export of a missing table succeeded"
[ "$exp_before" = "$(find "$D" -printf '%p %s %T@\n' | sort)" ] ||
  fail "export wrote to the instance directory: $(diff <(echo "$exp_before") <(find "$D" -printf '%p %s %T@\n' | sort))"

# A table of mistakes: each exits with its code, names what is wrong on the
# first line of its message, and changes nothing on disk.
mkdir -p "$TMP/m/x"
touch "$TMP/m/afile"
before=$(cd "$TMP" && find m "$D" -printf '%p %s %T@\n' | sort)
mistake() { # CODE FRAGMENT ARGS...
  local want=$1 frag=$2 rc=0; shift 2
  "$J" "$@" > /dev/null 2> "$TMP/m.err" || rc=$?
  [ $rc -eq "$want" ] || fail "jetutil $*: exit $rc, expected $want: $(cat "$TMP/m.err")"
  head -1 "$TMP/m.err" | grep -qF -- "$frag" || fail "jetutil $*: the first line does not say '$frag': $(cat "$TMP/m.err")"
}
mistake 2 "unknown option --too" restore --too "$TMP/m/r" "$TMP/m/x"
mistake 2 "unknown option --prefx" export "$D" --prefx k
mistake 2 "--stop-gen 'abc': not a generation number" restore --to "$TMP/m/r" --stop-gen abc "$TMP/m/x"
mistake 2 "--stop-time 'yesterday': not a time" restore --to "$TMP/m/r" --stop-time yesterday "$TMP/m/x"
mistake 2 "give one stop point, not both" restore --to "$TMP/m/r" --stop-gen 3 --stop-time 1 "$TMP/m/x"
mistake 2 "--to DIR is required" restore "$TMP/m/x"
mistake 2 "--keys needs a value" load "$TMP/m/new" --keys
mistake 2 "--keys 'x': not a whole number" load "$TMP/m/new" --keys x --value-size 1
mistake 2 "unexpected argument" check "$D" "$D"
mistake 1 "no such backup set directory" restore --to "$TMP/m/r" "$TMP/m/missing"
mistake 1 "not a directory" verify "$TMP/m/afile"
after=$(cd "$TMP" && find m "$D" -printf '%p %s %T@\n' | sort)
[ "$before" = "$after" ] || fail "a refused command changed the disk: $(diff <(echo "$before") <(echo "$after"))"

# A directory that holds no instance is refused, named, and left as it was:
# only load creates an instance (and the directories to it, as mkdir -p).
mkdir "$TMP/empty"
for cmd in export recover; do
  rc=0; "$J" $cmd "$TMP/empty" > /dev/null 2> "$TMP/empty.err" || rc=$?
  [ $rc -eq 1 ] || fail "$cmd of an empty directory exited $rc"
  grep -q "$TMP/empty: no jetfs.db in it" "$TMP/empty.err" || fail "$cmd of an empty directory: $(cat "$TMP/empty.err")"
  [ -z "$(ls -A "$TMP/empty")" ] || fail "$cmd of an empty directory created $(ls -A "$TMP/empty")"
done
rc=0; "$J" export "$TMP/nowhere" > /dev/null 2> "$TMP/nowhere.err" || rc=$?
[ $rc -eq 1 ] && grep -q "$TMP/nowhere: no such directory" "$TMP/nowhere.err" || fail "missing directory: rc $rc, $(cat "$TMP/nowhere.err")"
[ ! -e "$TMP/nowhere" ] || fail "export of a missing directory created it"
"$J" load "$TMP/new/a/b" --keys 10 --value-size 10 > /dev/null || fail "load into a new nested directory"
[ "$("$J" export "$TMP/new/a/b" | grep -vc '^table ')" -eq 10 ] || fail "load into a new nested directory lost rows"

# A flipped byte in a data page: check exits 1 and names the page.
PS=8192
PAGE=200
python3 - "$D/jetfs.db" $((PAGE * PS + 4000)) <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x41]))
PY
set +e
"$J" check "$D" > "$TMP/check2.out"
rc=$?
set -e
[ $rc -eq 1 ] || fail "check of a damaged database exited $rc"
grep -q "page $PAGE " "$TMP/check2.out" || fail "check did not name page $PAGE: $(cat "$TMP/check2.out")"

# kill -9 in the middle of a load: recovery leaves whole transactions only.
"$J" load "$TMP/k" --keys 300000 --value-size 200 --batch 1000 > /dev/null &
PID=$!
for _ in $(seq 1 100); do
  [ -f "$TMP/k/jetfs.db" ] && [ "$(ls "$TMP/k" | grep -c '^edb0')" -ge 3 ] && break
  sleep 0.05
done
kill -9 $PID 2>/dev/null || true
wait $PID 2>/dev/null || true
ROWS=$("$J" export "$TMP/k" | grep -vc '^table ' || true)
[ $((ROWS % 1000)) -eq 0 ] || fail "after kill -9: $ROWS rows is not whole transactions"
# The kill came once three log generations existed, i.e. after megabytes
# of durable commits: recovery must keep them (runs keep 8000-18000 rows).
[ "$ROWS" -gt 0 ] || fail "after kill -9: no committed row survived recovery"
"$J" check "$TMP/k" > /dev/null || fail "check after kill -9 and recovery"
# checklog: every generation's state and the chain; damage is named, exit 1.
"$J" load "$TMP/cl" --keys 8000 --value-size 500 > /dev/null
"$J" checklog "$TMP/cl" > "$TMP/cl.out" || fail "checklog of a sound log exited $?: $(cat "$TMP/cl.out")"
grep -q "^chain: ok" "$TMP/cl.out" || fail "checklog does not report the chain: $(cat "$TMP/cl.out")"
[ "$(grep -c '\.log .*ok$' "$TMP/cl.out")" -ge 3 ] || fail "checklog does not list each generation ok: $(cat "$TMP/cl.out")"
python3 -c "
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read()); b[4096 + 50000] ^= 0x33; open(p, 'wb').write(b)" "$TMP/cl/edb00000002.log"
rc=0; "$J" checklog "$TMP/cl" > "$TMP/cl2.out" || rc=$?
[ $rc -eq 1 ] || fail "checklog of a damaged log exited $rc"
grep -q "edb00000002.log.*DAMAGED.*offset" "$TMP/cl2.out" || fail "checklog does not name the damage: $(cat "$TMP/cl2.out")"
# recover --discard-after-damage: damage in a generation of a crashed
# instance (after the checkpoint, before the newest generation)
# is refused, then, on request, the log ends at the last commit before it;
# what is lost is said, the originals are kept and later generations moved
# aside, the log records the discard, and whole transactions survive.
# The damage must lie where recovery reads: from the checkpoint's position
# on (damage before it harms nothing, and recover rightly ignores it), and
# not in the newest generation, whose last flush a crash may tear, and
# after which discard has no later generation to move aside.  The byte
# flipped is the middle of that span; when a crash leaves no such span (the
# checkpoint caught up with the newest generation), the load goes on and
# crashes again.
damage_after_checkpoint() {
  local ck
  ck=$("$J" header "$TMP/dm/edb.chk" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
  (cd "$TMP/dm" && python3 -c "
import os, re, sys
ckgen, ckoff = (int(x) for x in sys.argv[1].split(':'))
gens = sorted(f for f in os.listdir('.') if re.fullmatch('edb[0-9A-F]{8}[.]log', f))
spans = []
for f in gens[:-1]:
    g = int(f[3:-4], 16)
    if g < ckgen: continue
    used = len(open(f, 'rb').read().rstrip(b'\\0'))
    lo = ckoff if g == ckgen else 4096
    if used > lo: spans.append((f, lo, used))
total = sum(hi - lo for _, lo, hi in spans)
if total < 8192: sys.exit(0)
at = total // 2
for f, lo, hi in spans:
    if at < hi - lo:
        b = bytearray(open(f, 'rb').read()); b[lo + at] ^= 0x5a; open(f, 'wb').write(b)
        print(f); break
    at -= hi - lo
" "$ck")
}
newest=
for attempt in 1 2 3 4 5 6; do
  "$J" load "$TMP/dm" --keys 400000 --value-size 200 --batch 10 > /dev/null 2>&1 &
  LOADER=$!
  if [ "$attempt" = 1 ]; then
    for _ in $(seq 1 600); do [ -e "$TMP/dm/edb00000003.log" ] && break; sleep 0.05; done
    sleep 0.3
  else
    sleep 1.5
  fi
  kill -9 $LOADER 2>/dev/null || true
  wait $LOADER 2>/dev/null || true
  newest=$(damage_after_checkpoint)
  [ -n "$newest" ] && break
done
[ -n "$newest" ] || fail "no generation was damaged"
cp "$TMP/dm/$newest" "$TMP/damaged.copy"
before=$(cd "$TMP/dm" && sha256sum * | sort)
rc=0; "$J" recover "$TMP/dm" > "$TMP/dm1.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "recover of a damaged log exited $rc: $(cat "$TMP/dm1.out")"
grep -q "$newest" "$TMP/dm1.out" || fail "the refusal does not name $newest: $(cat "$TMP/dm1.out")"
[ "$(cd "$TMP/dm" && sha256sum * | sort)" = "$before" ] || fail "a refused recovery changed a file"
"$J" recover "$TMP/dm" --discard-after-damage > "$TMP/dm2.out" 2>&1 || fail "discard: $(cat "$TMP/dm2.out")"
grep -q "the log now ends at" "$TMP/dm2.out" || fail "discard does not say where the log ends: $(cat "$TMP/dm2.out")"
grep -q "moved aside as \*.discarded" "$TMP/dm2.out" || fail "discard does not say which generations it moved aside: $(cat "$TMP/dm2.out")"
lost=$(sed -n 's/.*discarded: \([0-9]*\) commit.*/\1/p' "$TMP/dm2.out")
[ -n "$lost" ] && [ "$lost" -gt 0 ] || fail "discard does not count the commits it drops: $(cat "$TMP/dm2.out")"
cmp -s "$TMP/dm/$newest.discarded" "$TMP/damaged.copy" || fail "the damaged generation's original was not kept"
"$J" logs "$TMP/dm" > "$TMP/dm.logs" || fail "jetutil logs after the discard"
grep -q "discard .*log cut at" "$TMP/dm.logs" || fail "the log does not record the discard"
"$J" checklog "$TMP/dm" > "$TMP/dm3.out" || fail "checklog after the discard: $(cat "$TMP/dm3.out")"
# The database file says so too, for every later backup and restore of it.
"$J" header "$TMP/dm/jetfs.db" > "$TMP/dm.hdr" || fail "header after the discard"
grep -q "log discarded .*after damage.*$lost commit" "$TMP/dm.hdr" || fail "the database header does not record the discard: $(cat "$TMP/dm.hdr")"
DROWS=$("$J" export "$TMP/dm" | grep -vc '^table ' || true)
[ "$DROWS" -gt 0 ] && [ $((DROWS % 10)) -eq 0 ] || fail "after the discard: $DROWS rows is not whole transactions"
"$J" check "$TMP/dm" > /dev/null || fail "check after the discard"
# Nothing more to discard now; the instance opens again as it is.
"$J" recover "$TMP/dm" --discard-after-damage > "$TMP/dm4.out" 2>&1 || fail "second discard: $(cat "$TMP/dm4.out")"
grep -q "no damage" "$TMP/dm4.out" || fail "a sound log was not left alone: $(cat "$TMP/dm4.out")"
[ "$("$J" export "$TMP/dm" | grep -vc '^table ' || true)" = "$DROWS" ] || fail "rows changed after the discard"
echo "jetutil e2e: ok ($ROWS rows survived kill -9 as whole transactions; a discard after damage kept $DROWS and dropped $lost commits)"
