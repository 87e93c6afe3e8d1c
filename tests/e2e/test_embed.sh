#!/usr/bin/env bash
# tests/e2e/test_embed.sh -- libjet as an embedding program gets it: built
# with no build type given (what `cmake -B build && cmake --build build`
# gives a user), installed with `cmake --install` into a scratch DESTDIR,
# and linked by a program written from jet.h alone (embed_client.c): a
# transaction handed between threads, backup calls and DDL with a
# transaction open, a table created in a rolled-back transaction, a scan
# while another session deletes, JetTerm while another thread's session is
# in a transaction.  Each gets an answer jet.h documents; none aborts the
# process.  (The test builds' lock-order check, which aborts by design,
# must not be in this library.)
set -euo pipefail
# The library built here is the same whichever suite runs this script.
if [ -n "${JET_SANITIZED:-}" ]; then echo "SKIP: sanitizer suite (this test builds its own Release library)"; exit 77; fi
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_embed.XXXXXX" 2>/dev/null || mktemp -d)
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT

B=$TMP/build
cmake -S "$SRC" -B "$B" -DCMAKE_INSTALL_PREFIX=/usr/local > "$TMP/configure.log" 2>&1 ||
  fail "configure with no build type: $(tail -20 "$TMP/configure.log")"
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$B/CMakeCache.txt" ||
  fail "a build with no build type is not Release: $(grep CMAKE_BUILD_TYPE "$B/CMakeCache.txt")"
cmake --build "$B" -j "$(nproc)" > "$TMP/build.log" 2>&1 || fail "build: $(tail -20 "$TMP/build.log")"
if grep -q 'JET_LOCK_RANKS' "$B/CMakeFiles/jet.dir/flags.make"; then
  fail "the default build compiles in the lock-order check, which aborts its host process"
fi
D=$TMP/dest
DESTDIR=$D cmake --install "$B" > "$TMP/install.log" 2>&1 || fail "cmake --install: $(cat "$TMP/install.log")"
LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$B/CMakeCache.txt")
case $LIBDIR in /*) ;; *) LIBDIR=/usr/local/$LIBDIR ;; esac
L=$D$LIBDIR
export PKG_CONFIG_PATH=$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D
# shellcheck disable=SC2046  # pkg-config's output is a word list by design
cc -std=c11 -Wall -Wextra -Werror -pthread -o "$TMP/embed_client" "$SRC/tests/e2e/embed_client.c" \
  $(pkg-config --cflags --libs jet) > "$TMP/cc.log" 2>&1 || fail "compile against jet.pc: $(cat "$TMP/cc.log")"
mkdir -p "$TMP/db"
set +e
LD_LIBRARY_PATH=$L timeout 300 "$TMP/embed_client" "$TMP/db" > "$TMP/out" 2>&1
rc=$?
set -e
cat "$TMP/out"
[ $rc -ne 134 ] || fail "the embedding program was aborted (SIGABRT)"
[ $rc -eq 0 ] || fail "the embedding program failed (exit $rc)"
[ "$(grep -c '^ok: ' "$TMP/out")" -eq 6 ] || fail "not every scenario ran"
echo "PASS: libjet as installed by default answers every embedding scenario without aborting"
