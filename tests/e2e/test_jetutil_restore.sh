#!/usr/bin/env bash
# tests/e2e/test_jetutil_restore.sh -- jetutil restore, verify and recover
# end to end, on sets taken with cp through a real jetfs mount: verify
# passes a sound set and fails a damaged one naming the page (exit 1,
# nothing changed); restore on a terminal shows its progress bar and gives
# the state at begin; restore refuses a non-empty target; full +
# incremental restores, --stop-gen stops between them, --stop-time before
# the backup is refused; an incremental alone, a missing generation and an
# edited manifest are refused, named, while manifests re-indented and
# reordered by jq restore; recover after a kill -9 leaves a
# clean, checkable instance.
set -euo pipefail
BIN=${JET_BIN:?}
J=$BIN/jetutil
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_jetutil_restore.$$
M=$TMP/mnt
D=$TMP/db
PID=
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" >&2; exit 1; }
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  fusermount3 -uz "$M" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
rm -rf "$TMP"; mkdir -p "$M"
# Runs a command under a pseudo-terminal, so it sees one on stderr.
on_tty() { script -qec "$*" /dev/null; }

# Several log generations of data (1 MiB generations), then a full set with cp.
"$J" load "$D" --keys 6000 --value-size 700 --seed 5 > /dev/null
"$J" export "$D" > "$TMP/export.begin"
"$F" serve "$D" "$M" --once > "$TMP/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do [ -f "$M/status" ] && break; sleep 0.05; done
[ -f "$M/status" ] || fail "the mount did not come up"
cp -r "$M/backup/full" "$TMP/set"
fusermount3 -u "$M"
wait "$PID" || fail "jetfs serve exited $?"
PID=

# verify: a sound set passes and is left as it was.
(cd "$TMP/set" && sha256sum ./* > "$TMP/set.sums")
"$J" verify "$TMP/set" > "$TMP/verify.out" 2>&1 || fail "verify of a sound set failed: $(cat "$TMP/verify.out")"
grep -q "verified 1 set" "$TMP/verify.out" || fail "verify did not say so: $(cat "$TMP/verify.out")"
(cd "$TMP/set" && sha256sum -c --quiet "$TMP/set.sums") || fail "verify changed the set"

# verify: a flipped byte in a data page fails, naming the page, exit 1.
cp -r "$TMP/set" "$TMP/bad"
printf 'Z' | dd of="$TMP/bad/jetfs.db" bs=1 seek=$((8192 * 5 + 700)) conv=notrunc status=none
set +e
"$J" verify "$TMP/bad" > "$TMP/bad.out" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "verify of a damaged set exited $rc: $(cat "$TMP/bad.out")"
grep -q "$TMP/bad/jetfs.db: .*page 5" "$TMP/bad.out" || fail "verify did not name the set's file and the damaged page: $(cat "$TMP/bad.out")"
# (not the scratch copy, which is gone by then)
if grep -q "jetutil-verify\." "$TMP/bad.out"; then fail "verify named its removed scratch copy: $(cat "$TMP/bad.out")"; fi

# restore on a terminal: a progress bar, then exactly the state at begin.
on_tty "'$J' restore --to '$TMP/restored' '$TMP/set'" > "$TMP/restore.tty" 2>&1 ||
  fail "restore failed: $(cat "$TMP/restore.tty")"
grep -q "replaying log generations \[#*\] 100%" "$TMP/restore.tty" ||
  fail "no progress bar on a terminal: $(cat -v "$TMP/restore.tty")"
"$J" export "$TMP/restored" | cmp -s - "$TMP/export.begin" || fail "the restored state is not the state at begin"
# Without a terminal: no bar, nothing but the messages.
"$J" restore --to "$TMP/restored2" "$TMP/set" > "$TMP/restore.out" 2>&1 || fail "restore (no tty) failed"
grep -q "replaying" "$TMP/restore.out" && fail "a progress bar without a terminal"
# A set without its manifest restores, with a warning saying what cannot be checked.
cp -r "$TMP/set" "$TMP/nomanifest"; rm "$TMP/nomanifest/"backup*.manifest
"$J" restore --to "$TMP/restored3" "$TMP/nomanifest" > "$TMP/nom.out" 2>&1 || fail "restore without a manifest failed"
grep -q "warning: .*nomanifest has no backup.manifest" "$TMP/nom.out" || fail "no warning for a set without manifest"
grep -q "warning" "$TMP/restore.out" && fail "a warning for a set with its manifest"
# A target that is not empty is refused and left alone.
set +e
"$J" restore --to "$TMP/restored" "$TMP/set" > "$TMP/again.out" 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "restore over a non-empty target exited $rc"
grep -q "not empty" "$TMP/again.out" || fail "non-empty target not explained: $(cat "$TMP/again.out")"
"$J" export "$TMP/restored" | cmp -s - "$TMP/export.begin" || fail "a refused restore changed the target"

# verify on a terminal draws its bar too.
on_tty "'$J' verify '$TMP/set'" > "$TMP/verify.tty" 2>&1 || fail "verify (tty) failed: $(cat "$TMP/verify.tty")"
grep -q "replaying log generations \[#*\] 100%" "$TMP/verify.tty" || fail "verify showed no progress: $(cat -v "$TMP/verify.tty")"

# An incremental set after more data (several generations), through the mount.
"$J" load "$D" --keys 4000 --value-size 700 --seed 6 --table more > /dev/null
"$J" export "$D" > "$TMP/export.inc"
"$F" serve "$D" "$M" --once > "$TMP/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do [ -f "$M/status" ] && break; sleep 0.05; done
cp -r "$M/backup/incremental" "$TMP/inc"
fusermount3 -u "$M"
wait "$PID" || fail "jetfs serve exited $?"
PID=
"$J" restore --to "$TMP/r_inc" "$TMP/set" "$TMP/inc" > /dev/null 2>&1 || fail "restore of full + incremental failed"
"$J" export "$TMP/r_inc" | cmp -s - "$TMP/export.inc" || fail "full + incremental is not the state at the incremental's begin"
gens() { python3 -c "import json; g=json.load(open('$1/backup.manifest'))['generations']; print(g['low'], g['high'])"; }
read -r ILOW IHIGH < <(gens "$TMP/inc")
[ "$IHIGH" -gt "$ILOW" ] || fail "the incremental holds one generation ($ILOW): the load was too small for a stop inside it"
rows() { "$J" export "$1" | grep -vc '^table '; }

# --stop-gen inside the incremental: a state between the two backups; the
# later generations set aside, never deleted.
"$J" restore --to "$TMP/r_gen" "$TMP/set" "$TMP/inc" --stop-gen "$ILOW" > "$TMP/gen.out" 2>&1 ||
  fail "restore --stop-gen $ILOW failed: $(cat "$TMP/gen.out")"
N0=$(grep -vc '^table ' "$TMP/export.begin"); N1=$(grep -vc '^table ' "$TMP/export.inc"); NG=$(rows "$TMP/r_gen")
[ "$NG" -ge "$N0" ] && [ "$NG" -lt "$N1" ] || fail "--stop-gen $ILOW restored $NG rows, not in [$N0, $N1)"
ls "$TMP/r_gen"/*.after-restore-point > /dev/null 2>&1 || fail "--stop-gen set no later generation aside"
"$J" check "$TMP/r_gen" > /dev/null || fail "the database stopped at generation $ILOW does not check"

# --stop-time before the full backup's begin is refused, naming both times,
# and leaves the target alone.
rc=0; "$J" restore --to "$TMP/r_early" "$TMP/set" "$TMP/inc" --stop-time 86400 > "$TMP/early.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "a stop time before the backup exited $rc"
grep -q "1970-01-02" "$TMP/early.out" || fail "the refused stop time is not named: $(cat "$TMP/early.out")"
[ -z "$(ls -A "$TMP/r_early" 2>/dev/null)" ] || fail "a refused stop time wrote into the target"
# --stop-time after the last commit (the option is whole seconds): everything.
"$J" restore --to "$TMP/r_now" "$TMP/set" "$TMP/inc" --stop-time "$(($(date +%s) + 2))" > /dev/null 2>&1 ||
  fail "restore --stop-time after the last commit failed"
"$J" export "$TMP/r_now" | cmp -s - "$TMP/export.inc" || fail "--stop-time now is not the last state"
rc=0; "$J" restore --to "$TMP/r_bad" "$TMP/set" --stop-gen soon > /dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--stop-gen soon exited $rc, not 2 (usage)"

# Refusals through the CLI: exit 1, the piece named, nothing restored.
refused() {  # name pattern sets...
  local name=$1 pat=$2; shift 2
  rc=0; "$J" restore --to "$TMP/r_$name" "$@" > "$TMP/$name.out" 2>&1 || rc=$?
  [ $rc -eq 1 ] || fail "$name: restore exited $rc: $(cat "$TMP/$name.out")"
  grep -q -- "$pat" "$TMP/$name.out" || fail "$name: the message does not name '$pat': $(cat "$TMP/$name.out")"
  [ ! -e "$TMP/r_$name/jetfs.db" ] || fail "$name: a refused restore left a database"
}
refused inc_alone "inc" "$TMP/inc"
# (a generation the full set also holds, the same, would be taken from there)
cp -r "$TMP/inc" "$TMP/inc_gap"; GAP=$(printf 'edb%08X.log' $((ILOW + 1))); rm "$TMP/inc_gap/$GAP"
refused missing_gen "$GAP" "$TMP/set" "$TMP/inc_gap"
cp -r "$TMP/inc" "$TMP/inc_edit"; sed -i 's/"type": "incremental"/"type": "differential"/' "$TMP/inc_edit/backup.manifest"
refused edited_manifest "backup.manifest" "$TMP/set" "$TMP/inc_edit"
# The checksum covers the manifest's values, not its layout: re-indented,
# and with its keys sorted, by jq, both sets still verify and restore.
cp -r "$TMP/set" "$TMP/set_jq"; cp -r "$TMP/inc" "$TMP/inc_jq"; chmod -R u+w "$TMP/set_jq" "$TMP/inc_jq"
m=$TMP/set_jq/backup.manifest; jq . "$m" > "$m.2" && mv "$m.2" "$m"
m=$TMP/inc_jq/backup.manifest; jq -S . "$m" > "$m.2" && mv "$m.2" "$m"
cmp -s "$TMP/set/backup.manifest" "$TMP/set_jq/backup.manifest" && fail "jq . left the manifest byte for byte"
cmp -s "$TMP/inc/backup.manifest" "$TMP/inc_jq/backup.manifest" && fail "jq -S . left the manifest byte for byte"
"$J" verify "$TMP/set_jq" "$TMP/inc_jq" > "$TMP/jq.out" 2>&1 || fail "verify of jq'd manifests failed: $(cat "$TMP/jq.out")"
"$J" restore --to "$TMP/r_jq" "$TMP/set_jq" "$TMP/inc_jq" > "$TMP/jq.out" 2>&1 || fail "restore of jq'd manifests failed: $(cat "$TMP/jq.out")"
"$J" export "$TMP/r_jq" | cmp -s - "$TMP/export.inc" || fail "restore of jq'd manifests is not the incremental's state"
# ... and a value changed as well is still refused, naming the manifest.
m=$TMP/inc_jq/backup.manifest; jq '.files[0].size += 1' "$m" > "$m.2" && mv "$m.2" "$m"
refused jq_edited "inc_jq/backup.manifest: manifest checksum" "$TMP/set_jq" "$TMP/inc_jq"

# recover: a load killed with -9 is brought to a clean, checkable state.
"$J" load "$TMP/crash" --keys 400000 --value-size 100 --batch 500 > /dev/null 2>&1 &
LPID=$!
for _ in $(seq 1 200); do [ "$(ls "$TMP/crash"/edb0*.log 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.05; done
kill -9 "$LPID"; wait "$LPID" 2>/dev/null || true
on_tty "'$J' recover '$TMP/crash'" > "$TMP/recover.tty" 2>&1 || fail "recover failed: $(cat "$TMP/recover.tty")"
grep -q "recovered" "$TMP/recover.tty" || fail "recover did not report: $(cat "$TMP/recover.tty")"
grep -q "replaying log generations" "$TMP/recover.tty" || fail "recover showed no progress: $(cat -v "$TMP/recover.tty")"
"$J" header "$TMP/crash/jetfs.db" | grep -q "clean shutdown" || fail "recover left the database dirty"
"$J" check "$TMP/crash" > /dev/null || fail "the recovered database does not check"
echo "e2e jetutil restore/verify/recover: ok"
