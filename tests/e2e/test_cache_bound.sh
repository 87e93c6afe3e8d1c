#!/usr/bin/env bash
# tests/e2e/test_cache_bound.sh -- the cache-size parameter is honoured: a
# 2 GiB database is loaded through the default 64 MiB buffer cache (every
# B+tree insert reads and dirties pages that must be evicted, obeying the WAL
# rule) with the process's peak memory far below the database's size, and
# the result checks clean page by page.  Skipped in sanitizer builds, where
# the peak memory is the sanitizer's.
set -euo pipefail
J=${JET_BIN:?}/jetutil
TMP=${JET_TEST_TMP:-/tmp}/e2e_cache_bound.$$
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -n "${JET_SANITIZED:-}" ]; then echo "SKIP: sanitizer build (peak memory is the sanitizer's)"; exit 77; fi
rm -rf "$TMP"; mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# Peak resident memory (MiB) of a command run to completion; its exit status.
peak_mib() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, rc)
PY
}
KEYS=$((2048 * 131))   # 4000-byte values: one overflow page each, 2 GiB in all
read -r PEAK RC < <(peak_mib "$J" load "$TMP/db" --keys $KEYS --value-size 4000 --batch 2000)
[ "$RC" = 0 ] || fail "load exited $RC"
SIZE=$(stat -c %s "$TMP/db/jetfs.db")
[ "$SIZE" -ge $((2048 * 1048576)) ] || fail "the database is only $SIZE bytes"
# The cache is 64 MiB; log buffers, the B+tree's cursors and the program
# itself fit in another 48 MiB.  An unbounded cache would hold gigabytes.
[ "$PEAK" -le 112 ] || fail "peak memory $PEAK MiB loading a $((SIZE >> 20)) MiB database with a 64 MiB cache"
"$J" check "$TMP/db" > "$TMP/check.out" || fail "check: $(cat "$TMP/check.out")"
grep -q "$KEYS entries" "$TMP/check.out" || fail "check did not find $KEYS entries: $(cat "$TMP/check.out")"
echo "e2e cache bound: ok ($((SIZE >> 20)) MiB database, peak $PEAK MiB with a 64 MiB cache)"
