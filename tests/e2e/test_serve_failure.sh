#!/usr/bin/env bash
# tests/e2e/test_serve_failure.sh -- `jetfs serve` when the instance fails
# under it, driven by redis-cli: (1) the disk fills (a small tmpfs) until a
# log write fails: writes are refused from then on, INFO and status say the
# instance failed, SIGTERM exits non-zero saying it was not shut down
# cleanly, and once the tmpfs is grown a restart holds every acknowledged
# key; (2) the live log generation deleted under it: the next write is
# refused, SIGTERM exits non-zero, and the restart refuses to start without
# the generation, naming it, instead of serving without its keys.  Also:
# a cleanly shut-down instance on read-only media exports and checklogs,
# and what must write is refused naming the OS reason; and (3)
# acknowledged SETs, kill -9, a byte flipped in the middle of the newest
# generation: the restart is refused naming the damage, changing no file,
# never taken for a torn tail that silently drops acknowledged keys.
set -euo pipefail
BIN=${JET_BIN:?}
F=$BIN/jetfs
TMP=${JET_TEST_TMP:-/tmp}/e2e_failure.$$
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/serve.log" ] && sed 's/^/  serve: /' "$TMP/serve.log" | tail -20 >&2
  exit 1
}
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
command -v redis-cli > /dev/null || fail "redis-cli is not installed (scripts/deps installs it)"
rm -rf "$TMP"; mkdir -p "$TMP/mnt" "$TMP/small"
M=$TMP/mnt
PID=
SMALL=
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  fusermount3 -uz "$M" 2>/dev/null || true
  [ -n "$SMALL" ] && umount -l "$SMALL" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
serve() {
  P=$(free_port)
  "$F" serve "$1" "$M" --listen "127.0.0.1:$P" > "$TMP/serve.log" 2>&1 &
  PID=$!
  wait_for "the mount" mounted
  wait_for "the listener" port_up
}
# SIGTERM; the exit status goes to rc.
term() {
  rc=0
  kill -TERM "$PID"
  wait "$PID" || rc=$?
  PID=
}
# SETs keys [from, to) in one pipeline; appends the acknowledged ones to $TMP/acked.
set_batch() {
  for i in $(seq "$1" $(($2 - 1))); do printf 'SET key%06d value%06d-%0900d\n' "$i" "$i" 0; done |
    redis-cli -p "$P" > "$TMP/replies" 2>&1 || true
  local i=$1
  while IFS= read -r line; do
    [ "$line" = OK ] && printf 'key%06d\n' "$i" >> "$TMP/acked"
    i=$((i + 1))
  done < "$TMP/replies"
  ! grep -qv '^OK$' "$TMP/replies"
}
# Every acknowledged key holds its value.
all_acked_present() {
  local n=0 k want
  sed 's/^/GET /' "$TMP/acked" | redis-cli -p "$P" > "$TMP/got"
  paste -d' ' "$TMP/acked" "$TMP/got" | while read -r k got; do
    want="value${k#key}-$(printf '%0900d' 0)"
    [ "$got" = "$want" ] || { echo "$k: got '${got:0:40}'"; return 1; }
  done
}

# --- 1. the disk fills under the instance ---
SMALL=$TMP/small
if ! mount -t tmpfs -o size=8m tmpfs "$SMALL" 2> "$TMP/mount.err"; then
  echo "SKIP part 1: cannot mount a tmpfs here: $(cat "$TMP/mount.err")"
  SMALL=
else
  : > "$TMP/acked"
  serve "$SMALL/db"
  n=0
  while set_batch "$n" $((n + 200)); do
    n=$((n + 200))
    [ "$n" -lt 40000 ] || fail "8 MiB never filled"
  done
  acked=$(wc -l < "$TMP/acked")
  [ "$acked" -gt 0 ] || fail "nothing was acknowledged before the disk filled"
  first_refusal=$(grep -v '^OK$' "$TMP/replies" | sed -n 1p)
  # Refused mid-connection ("instance unavailable"); or, when the disk
  # filled between connections (a checkpoint's write), at the next one; or,
  # when a checkpoint's page write failed while this batch waited for its
  # fsync, by closing the connection with none of the batch's replies sent
  # (they were never durable, so none may say OK).
  grep -Eq "instance unavailable|the instance failed|Server closed the connection" <<< "$first_refusal" ||
    fail "the failed write's reply: $first_refusal"
  # Refused from then on, even with space.
  redis-cli -p "$P" SET after-failure x | grep -q OK && fail "a write was acknowledged after the log failed"
  redis-cli -p "$P" INFO persistence > "$TMP/info"
  grep -q "jetfs_instance_state:failed" "$TMP/info" || fail "INFO does not say the instance failed: $(cat "$TMP/info")"
  grep -q "aof_last_write_status:err" "$TMP/info" || fail "INFO's aof_last_write_status is not err"
  grep -q '"instance_state": "failed"' "$M/status" || fail "status does not say the instance failed: $(cat "$M/status")"
  grep -q "No space left" "$M/status" || fail "status does not say why: $(grep instance_failure "$M/status")"
  term
  [ "$rc" != 0 ] || fail "jetfs serve exited 0 after the instance failed"
  grep -q "not shut down cleanly" "$TMP/serve.log" || fail "jetfs serve does not say it did not shut down cleanly"
  grep -q "instance shut down cleanly" "$TMP/serve.log" && fail "jetfs serve claims a clean shutdown"
  # Space freed: the restart recovers every acknowledged key.
  mount -o remount,size=96m "$SMALL"
  serve "$SMALL/db"
  all_acked_present > "$TMP/missing" || fail "after recovery: $(head -3 "$TMP/missing") ($acked acknowledged)"
  term
  [ "$rc" = 0 ] || fail "jetfs serve exited $rc after a clean run"
  grep -q "instance shut down cleanly" "$TMP/serve.log" || fail "the recovered instance did not shut down cleanly"
  # On read-only media: a cleanly shut-down instance still exports (read
  # directly, the same text), and what must write names the OS reason.
  "$BIN/jetutil" export "$SMALL/db" > "$TMP/export.rw" || fail "export failed"
  mount -o remount,ro "$SMALL"
  "$BIN/jetutil" export "$SMALL/db" > "$TMP/export.ro" 2> "$TMP/ro.err" || fail "export on read-only media failed: $(cat "$TMP/ro.err")"
  cmp -s "$TMP/export.rw" "$TMP/export.ro" || fail "export on read-only media differs"
  [ "$(grep -c . "$TMP/export.ro")" -gt "$acked" ] || fail "export on read-only media lacks the keys"
  "$BIN/jetutil" checklog "$SMALL/db" > "$TMP/checklog.ro" || fail "checklog on read-only media: $(cat "$TMP/checklog.ro")"
  if "$BIN/jetutil" recover "$SMALL/db" > /dev/null 2> "$TMP/ro.err"; then fail "recover wrote on read-only media"; fi
  grep -q "Read-only file system" "$TMP/ro.err" || fail "a read-only directory is not named as such: $(cat "$TMP/ro.err")"
  umount "$SMALL"
  SMALL=
fi

# --- 2. the live log generation deleted under the instance ---
: > "$TMP/acked"
D=$TMP/db
serve "$D"
set_batch 0 100 || fail "writes failed on a healthy instance"
live=$(cd "$D" && ls edb[0-9A-F]*.log | sort | tail -1)
rm "$D/$live"
set_batch 100 120 && fail "writes were acknowledged after the live log $live was deleted"
grep -q "$live" "$M/status" || fail "status does not name the deleted log: $(grep instance_failure "$M/status")"
term
[ "$rc" != 0 ] || fail "jetfs serve exited 0 after its live log was deleted"
rc=0
"$F" serve "$D" "$M" --once > "$TMP/restart.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the instance started without its deleted live log"
grep -q "generation $((16#${live:3:8})) is missing\|${live}.*missing\|missing.*${live}" "$TMP/restart.log" ||
  fail "the refused restart does not name the missing generation: $(cat "$TMP/restart.log")"
# --- 3. acknowledged SETs, kill -9, a byte flipped mid newest generation ---
: > "$TMP/acked"
D=$TMP/db3
# The byte is flipped mid-way through what recovery reads of the newest
# generation: after the checkpoint's position (damage before it harms
# nothing, and the start rightly ignores it).  A checkpoint that caught up
# with the SETs leaves too little after it: more SETs, and crash again.
newest=
for attempt in 1 2 3 4 5; do
  serve "$D"
  set_batch $(((attempt - 1) * 200)) $((attempt * 200)) || fail "writes failed on a healthy instance"
  kill -9 "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  fusermount3 -uz "$M" 2>/dev/null || true
  ck=$("$BIN/jetutil" header "$D/edb.chk" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
  newest=$(cd "$D" && python3 - "$ck" <<'PY'
import os, re, sys
ckgen, ckoff = (int(x) for x in sys.argv[1].split(":"))
f = sorted(n for n in os.listdir(".") if re.fullmatch("edb[0-9A-F]{8}[.]log", n))[-1]
b = bytearray(open(f, "rb").read())
end = len(b.rstrip(b"\0"))
lo = ckoff if int(f[3:-4], 16) == ckgen else 4096
if end - lo > 8192:
    b[lo + (end - lo) // 2] ^= 0x5A
    open(f, "r+b").write(b)
    print(f)
PY
)
  [ -n "$newest" ] && break
done
[ -n "$newest" ] || fail "five crashes left no log after the checkpoint to damage"
sums_before=$(cd "$D" && sha256sum * | sort)
rc=0
# A start that wrongly succeeds would wait for an unmount: bounded.
timeout 120 "$F" serve "$D" "$M" --once > "$TMP/restart3.log" 2>&1 || rc=$?
fusermount3 -uz "$M" 2>/dev/null || true
[ "$rc" != 0 ] && [ "$rc" != 124 ] ||
  fail "an instance whose newest generation is damaged mid-way started (acknowledged keys would be gone)"
grep -q "$newest.*not the torn tail" "$TMP/restart3.log" || fail "the refusal does not name the damage: $(cat "$TMP/restart3.log")"
[ "$(cd "$D" && sha256sum * | sort)" = "$sums_before" ] || fail "the refused start changed files"
echo "PASS: test_serve_failure"
