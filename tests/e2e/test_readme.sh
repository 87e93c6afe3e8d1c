#!/usr/bin/env bash
# tests/e2e/test_readme.sh -- the README's walk-through runs as written.
# The block under "## A walk-through" is taken from README.md itself and
# run by bash, with only its paths (/srv/jetfs, /srv/restored, /backups)
# moved under a scratch directory, its ports made free ones, and the
# benchmark made short; every command must succeed, and the restored
# server must answer with the value of the last backup.  So the README
# cannot drift from the product.
set -euo pipefail
BIN=${JET_BIN:?}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_readme.XXXXXX" 2>/dev/null || mktemp -d)
fail() { echo "FAIL: $*" >&2; exit 1; }
. "$SRC/tests/e2e/lib.sh"
cleanup() {
  pkill -f "$TMP/srv" 2> /dev/null || true
  for m in "$TMP/srv/jetfs/mnt" "$TMP/srv/jetfs/mnt2"; do fusermount3 -uz "$m" 2> /dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
need_fuse_and_redis_cli
command -v redis-benchmark > /dev/null || fail "redis-benchmark is missing (scripts/deps installs redis-tools)"

P1=$(free_port)
P2=$(free_port)
[ "$P1" != "$P2" ] || P2=$((P1 + 1))
awk '/^## A walk-through/{w=1} w&&/^```$/{n++; next} w&&n==1{print} n==2{exit}' "$SRC/README.md" > "$TMP/walk.txt"
[ "$(grep -c . "$TMP/walk.txt")" -ge 15 ] || fail "no walk-through block found in README.md: $(cat "$TMP/walk.txt")"
# Only paths, ports and the load's size change.
sed -e "s#/srv/#$TMP/srv/#g" -e "s#/backups#$TMP/backups#g" \
    -e "s#127.0.0.1:6379#127.0.0.1:$P1#g" -e "s#127.0.0.1:6380#127.0.0.1:$P2#g" \
    -e "s#redis-cli SET#redis-cli -p $P1 SET#g" -e "s#redis-cli -p 6380#redis-cli -p $P2#g" \
    -e "s#redis-benchmark #redis-benchmark -p $P1 #g" -e "s#-n 100000#-n 2000#g" \
    "$TMP/walk.txt" > "$TMP/walk.sh"
if grep -n "6379\|6380\|/srv/jetfs\| /backups" "$TMP/walk.sh" | grep -v "$TMP"; then fail "a path or port was not moved"; fi
mkdir -p "$TMP/srv"
cd "$TMP"
set +e
PATH=$BIN:$PATH timeout 300 bash -e "$TMP/walk.sh" > "$TMP/walk.out" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || fail "the walk-through failed (exit $rc) at: $(tail -15 "$TMP/walk.out")"
grep -qx "hello again" "$TMP/walk.out" || fail "the restored server did not answer the last backup's value: $(cat "$TMP/walk.out")"
grep -q "verified 2 set" "$TMP/walk.out" || fail "jetutil verify did not verify the two sets: $(cat "$TMP/walk.out")"
echo "PASS: the README's walk-through runs as written"
