#!/usr/bin/env bash
# tests/e2e/test_cli_mistakes.sh -- the mistakes people make with jetfs's
# command line: each is refused with its exit code, says what is wrong on
# the first line of its message (then at most that subcommand's synopsis,
# not every option of every subcommand), and creates or changes nothing on
# disk: a mistyped option, a missing value, a cache size out of range, a
# mount point that is missing, a file, or holds files.  (jetutil's table is
# in test_jetutil.sh.)
set -euo pipefail
BIN=${JET_BIN:?}
F=$BIN/jetfs
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_mistakes.XXXXXX" 2>/dev/null || mktemp -d)
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT

[ "$("$F" --version)" = "jetfs 1.0.0" ] || fail "--version printed '$("$F" --version)'"
W=$TMP/watched # what a refused command must leave as it was
mkdir -p "$W/empty" "$W/full"
touch "$W/afile" "$W/full/keep.txt"
before=$(find "$W" -printf '%p %s %T@\n' | sort)
mistake() { # CODE FRAGMENT ARGS...
  local want=$1 frag=$2 rc=0; shift 2
  timeout 20 "$F" "$@" > "$TMP/out" 2> "$TMP/err" || rc=$?
  [ $rc -eq "$want" ] || fail "jetfs $*: exit $rc, expected $want: $(cat "$TMP/err")"
  head -1 "$TMP/err" | grep -qF -- "$frag" || fail "jetfs $*: the first line does not say '$frag': $(cat "$TMP/err")"
  [ "$(wc -l < "$TMP/err")" -le 3 ] || fail "jetfs $*: $(wc -l < "$TMP/err") lines of message, the useful one scrolls away"
}
mistake 2 "unknown option --lisen" serve "$W/db" "$W/empty" --lisen 127.0.0.1:1
mistake 2 "--listen needs a value" serve "$W/db" "$W/empty" --listen
mistake 2 "--cache-size: '1K' is outside" serve "$W/db" "$W/empty" --cache-size 1K
mistake 2 "expected DBDIR and MOUNT" serve "$W/db"
mistake 2 "no such directory" serve "$W/db" "$W/nomount"
mistake 2 "not a directory" serve "$W/db" "$W/afile"
mistake 2 "holds 1 file ('keep.txt')" serve "$W/db" "$W/full"
mistake 2 "unknown option --abrot" end "$W/empty" --abrot
mistake 2 "no MOUNT given" end
mistake 2 "unknown option --stop-tiem" browse "$W/empty" "$W/full" --stop-tiem 1
mistake 2 "--stop-time: 'noon' is not a time" browse "$W/empty" "$W/full" --stop-time noon
# A live jetfs serve on the mount point: said before anything is created,
# without the advice to unmount it (it would only remount).
. "$(dirname "$0")/lib.sh"
need_fuse_and_redis_cli
M=$TMP/live
mkdir -p "$M"
"$F" serve "$TMP/livedb" "$M" > "$TMP/live.log" 2>&1 &
LIVE=$!
stop_live() {
  kill -TERM "$LIVE" 2> /dev/null || true
  wait "$LIVE" 2> /dev/null || true
  fusermount3 -uz "$M" 2> /dev/null || true
  cleanup
}
trap stop_live EXIT
wait_for "the live mount" mounted
mistake 2 "a jetfs is serving there already" serve "$W/db" "$M"
grep -q "fusermount3 -u would only end" "$TMP/err" || fail "the busy message does not say what an unmount would do"
[ ! -e "$W/db" ] || fail "a refused serve created DBDIR"
after=$(find "$W" -printf '%p %s %T@\n' | sort)
[ "$before" = "$after" ] || fail "a refused command changed the disk: $(diff <(echo "$before") <(echo "$after"))"
kill -TERM "$LIVE"
wait "$LIVE" || fail "the live jetfs serve exited $? at SIGTERM: $(cat "$TMP/live.log")"
echo "PASS: every mistake refused, named on its first line, nothing changed"
