#!/usr/bin/env bash
# tests/e2e/test_install.sh -- `cmake --install` into a scratch DESTDIR puts
# every file where a user expects it (programs, libjet static and shared
# with its soname, the two headers, jet.pc, the man pages, the systemd
# unit, each naming the configured prefix); a program built only from
# `pkg-config --cflags --libs jet` against that tree links the installed
# libjet.so, creates an instance, writes and reads a key and takes a full
# backup through the API; the installed jetutil restores that backup and
# shows the key.  The same program links libjet.a statically too.
set -euo pipefail
BIN=${JET_BIN:?}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_install.XXXXXX" 2>/dev/null || mktemp -d)
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT

PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BIN/CMakeCache.txt")
LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$BIN/CMakeCache.txt")
[ -n "$PREFIX" ] && [ -n "$LIBDIR" ] || fail "no install prefix or libdir in $BIN/CMakeCache.txt"
case $LIBDIR in /*) ;; *) LIBDIR=$PREFIX/$LIBDIR ;; esac
D=$TMP/dest
DESTDIR=$D cmake --install "$BIN" > "$TMP/install.log" 2>&1 || fail "cmake --install: $(cat "$TMP/install.log")"
R=$D$PREFIX
L=$D$LIBDIR

# The installed tree.  Nothing lands outside DESTDIR (the unit included).
for f in "$R/bin/jetfs" "$R/bin/jetutil"; do [ -x "$f" ] || fail "$f missing or not executable"; done
for f in "$R/include/jet.h" "$R/include/jet_inspect.h" "$L/libjet.a" "$L/pkgconfig/jet.pc" \
         "$R/share/man/man8/jetfs.8" "$R/share/man/man1/jetutil.1" "$R/lib/systemd/system/jetfs.service"; do
  [ -f "$f" ] || fail "$f was not installed (install log: $(cat "$TMP/install.log"))"
done
real=$(readlink -f "$L/libjet.so")
case $real in "$L"/libjet.so.1.*) ;; *) fail "libjet.so points at $real, not a versioned libjet.so.1.x" ;; esac
[ "$(readlink -f "$L/libjet.so.1")" = "$real" ] || fail "libjet.so.1 does not point at $real"
grep -q 'SONAME *libjet\.so\.1$' <<< "$(objdump -p "$real")" || fail "libjet.so has no soname libjet.so.1: $(objdump -p "$real" | grep SONAME)"
grep -q ' T JetInit$' <<< "$(nm -D --defined-only "$real")" || fail "libjet.so does not export JetInit"
grep -q ' T JetInit$' <<< "$(nm "$L/libjet.a" 2>/dev/null)" || fail "libjet.a does not define JetInit"
grep -q "^prefix=$PREFIX\$" "$L/pkgconfig/jet.pc" || fail "jet.pc does not name the prefix $PREFIX: $(cat "$L/pkgconfig/jet.pc")"
grep -q "^ExecStart=$PREFIX/bin/jetfs serve " "$R/lib/systemd/system/jetfs.service" ||
  fail "the unit does not run the installed $PREFIX/bin/jetfs: $(grep ExecStart "$R/lib/systemd/system/jetfs.service")"
grep -q '^Type=notify$' "$R/lib/systemd/system/jetfs.service" || fail "the unit is not Type=notify"
# systemd's own parser accepts the unit, every key known (the staged jetfs
# stands in for the installed one, which is not on this host).
if command -v systemd-analyze > /dev/null; then
  sed "s|^ExecStart=$PREFIX/bin/jetfs |ExecStart=$R/bin/jetfs |" "$R/lib/systemd/system/jetfs.service" > "$TMP/jetfs.service"
  out=$(systemd-analyze verify --man=no "$TMP/jetfs.service" 2>&1) || fail "systemd-analyze verify refused the unit: $out"
  [ -z "$out" ] || fail "systemd-analyze verify warns about the unit: $out"
else
  echo "note: no systemd-analyze here; the unit's syntax is not checked"
fi
bad=$(find "$D" -mindepth 1 -maxdepth 1 ! -name "$(echo "$PREFIX" | cut -d/ -f2)")
[ -z "$bad" ] || fail "installed outside the prefix: $bad"
grep -q 'jetfs serve' <<< "$(man -l "$R/share/man/man8/jetfs.8" 2>/dev/null)" || fail "man -l jetfs.8 does not show the page"
grep -q 'usage: jetutil' <<< "$("$R/bin/jetutil" --help)" || fail "the installed jetutil does not run"

# pkg-config, as a user points it at a staged tree: the flags name the DESTDIR.
export PKG_CONFIG_PATH=$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D
pkg-config --exists jet || fail "pkg-config does not find jet: $(pkg-config --print-errors --exists jet 2>&1)"
[ "$(pkg-config --modversion jet)" = "1.0.0" ] || fail "jet.pc version is $(pkg-config --modversion jet)"
flags=$(pkg-config --cflags --libs jet)
case $flags in *"-I$R/include"*"-L$L"*"-ljet"*) ;; *) fail "pkg-config --cflags --libs jet gave '$flags'" ;; esac

# A sanitized build's library needs its runtime in the program too.
san=()
dynsyms=$(nm -D "$real")
if grep -q ' U __asan_' <<< "$dynsyms"; then san=(-fsanitize=address,undefined); fi
if grep -q ' U __tsan_' <<< "$dynsyms"; then san=(-fsanitize=thread); fi
# shellcheck disable=SC2086  # pkg-config's output is a word list by design
cc -std=c11 -Wall -Wextra -Werror "${san[@]}" -o "$TMP/client" "$SRC/tests/e2e/installed_client.c" $flags \
  > "$TMP/cc.log" 2>&1 || fail "compiling against jet.pc failed: $(cat "$TMP/cc.log")"
grep -q "libjet.so.1 => not found" <<< "$(ldd "$TMP/client")" || fail "the client does not need the shared libjet.so.1: $(ldd "$TMP/client")"
grep -q "libjet.so.1 => $L/libjet.so.1" <<< "$(LD_LIBRARY_PATH=$L ldd "$TMP/client")" || fail "the client does not load $L/libjet.so.1"
mkdir -p "$TMP/db" "$TMP/set"
LD_LIBRARY_PATH=$L "$TMP/client" "$TMP/db" "$TMP/set" > "$TMP/client.out" 2>&1 || fail "the client failed: $(cat "$TMP/client.out")"
grep -q "read back: hello from pkg-config" "$TMP/client.out" || fail "the client did not read its key back: $(cat "$TMP/client.out")"
for f in jetfs.db backup.manifest; do [ -s "$TMP/set/$f" ] || fail "the client's backup has no $f"; done
ls "$TMP/set"/edb*.log > /dev/null 2>&1 || fail "the client's backup has no log generation"

# The installed jetutil restores the client's backup: the key is there.
"$R/bin/jetutil" restore --to "$TMP/restored" "$TMP/set" > "$TMP/restore.out" 2>&1 || fail "restore: $(cat "$TMP/restore.out")"
"$R/bin/jetutil" export "$TMP/restored" > "$TMP/export.out" 2>&1 || fail "export: $(cat "$TMP/export.out")"
keyhex=$(printf greeting | od -An -tx1 | tr -d ' \n')
valhex=$(printf 'hello from pkg-config' | od -An -tx1 | tr -d ' \n')
grep -qi "$keyhex $valhex" "$TMP/export.out" || fail "the restored backup lacks the key: $(cat "$TMP/export.out")"

# Static: the same program from libjet.a, with the private flags jet.pc lists.
static_libs=$(pkg-config --static --libs-only-l --libs-only-other jet | sed 's/-ljet//')
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror "${san[@]}" -o "$TMP/client_static" "$SRC/tests/e2e/installed_client.c" \
  $(pkg-config --cflags jet) "$L/libjet.a" $static_libs > "$TMP/cc.log" 2>&1 || fail "linking libjet.a failed: $(cat "$TMP/cc.log")"
if grep -q libjet <<< "$(ldd "$TMP/client_static")"; then fail "the static client still needs libjet.so"; fi
mkdir -p "$TMP/db2" "$TMP/set2"
"$TMP/client_static" "$TMP/db2" "$TMP/set2" > "$TMP/client2.out" 2>&1 || fail "the static client failed: $(cat "$TMP/client2.out")"
echo "PASS: install into DESTDIR, pkg-config client (shared and static), restore with the installed jetutil"
