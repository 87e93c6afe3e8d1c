#!/usr/bin/env bash
# tests/e2e/test_man.sh -- the man pages cannot drift from the programs:
#  - every option that `jetfs --help`, `jetutil --help` or any
#    `jetutil COMMAND --help` prints is documented (as *--option*) in
#    man/jetfs.8.scd or man/jetutil.1.scd, and so is every command;
#  - each page has its EXIT STATUS (every code the usage names) and FILES;
#  - the built troff pages (scdoc, at build time) render with `man -l`
#    without a groff warning and show the options.
# An option added to a program without its man page entry fails here,
# naming the option and the page.
set -euo pipefail
BIN=${JET_BIN:?}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
missing=()

# The options a usage text names: --word tokens, and -h where it is one.
options_of() { grep -oE -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }
documented() { grep -qF -- "*$2*" "$1"; }
check_options() {
  local page=$1 what=$2 text=$3 opt
  while read -r opt; do
    [ -n "$opt" ] || continue
    documented "$page" "$opt" || missing+=("$opt (printed by $what) is not in $(basename "$page")")
  done <<< "$(options_of <<< "$text")"
}

# jetfs: the main usage holds every subcommand's options.
page=$SRC/man/jetfs.8.scd
help=$("$BIN/jetfs" --help)
serve_help=$("$BIN/jetfs" serve --help)
check_options "$page" "jetfs --help" "$help"
check_options "$page" "jetfs serve --help" "$serve_help"
for cmd in $(grep -oE '^ *(usage: )?jetfs [a-z]+' <<< "$help" | awk '{print $NF}' | sort -u); do
  documented "$page" "jetfs $cmd" || missing+=("command 'jetfs $cmd' is not in jetfs.8.scd")
done

# jetutil: the command list, then each command's own usage.
page=$SRC/man/jetutil.1.scd
help=$("$BIN/jetutil" --help)
check_options "$page" "jetutil --help" "$help"
cmds=$(sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' <<< "$help" | sort -u)
[ "$(wc -w <<< "$cmds")" -ge 9 ] || fail "could not read the command list from jetutil --help: $help"
for cmd in $cmds; do
  documented "$page" "$cmd" || missing+=("command 'jetutil $cmd' is not in jetutil.1.scd")
  sub=$("$BIN/jetutil" "$cmd" --help) || fail "jetutil $cmd --help exited $?"
  check_options "$page" "jetutil $cmd --help" "$sub"
done

# Exit codes and files: every code a usage names is listed.
for p in "$SRC/man/jetfs.8.scd:jetfs" "$SRC/man/jetutil.1.scd:jetutil"; do
  page=${p%%:*}; prog=${p##*:}
  for sec in "# EXIT STATUS" "# FILES" "# SYNOPSIS" "# OPTIONS"; do
    [ "$sec" = "# OPTIONS" ] && [ "$prog" = jetfs ] && sec="# SERVE OPTIONS"
    grep -q "^$sec\$" "$page" || missing+=("$(basename "$page") has no '$sec' section")
  done
  codes=$(sed -n '/^# EXIT STATUS/,/^# /p' "$page" | grep -oE '^\*[0-9]+\*$' | tr -d '*' | sort -n | tr '\n' ' ')
  [ "$codes" = "0 1 2 " ] || missing+=("$(basename "$page") lists exit codes '$codes', not 0 1 2")
done
grep -q "exit codes: 0 ok, 1 failure found, 2 usage error" <<< "$("$BIN/jetutil" --help)" ||
  missing+=("jetutil --help no longer says its exit codes as the page has them (0 ok, 1 failure found, 2 usage error)")
grep -q "Exit codes: 0 ok, 1 failure, 2 usage" "$SRC/src/jetfs.c" ||
  missing+=("src/jetfs.c no longer says its exit codes as jetfs.8 has them (0 ok, 1 failure, 2 usage)")

if ((${#missing[@]})); then
  printf '  %s\n' "${missing[@]}" >&2
  fail "${#missing[@]} thing(s) the programs print are missing from the man pages (man/*.scd)"
fi

# The built pages render, with no groff warning, and show what the sources say.
for p in man8/jetfs.8 man1/jetutil.1; do
  built=$BIN/man/$(basename "$p")
  [ -s "$built" ] || fail "$built was not built (scdoc)"
  out=$(MANWIDTH=100 man --warnings -l "$built" 2> "$BIN/man/$(basename "$p").warnings") || fail "man -l $built failed"
  [ ! -s "$BIN/man/$(basename "$p").warnings" ] || fail "man -l $built warns: $(cat "$BIN/man/$(basename "$p").warnings")"
  grep -q "EXIT STATUS" <<< "$out" || fail "man -l $built shows no EXIT STATUS"
done
grep -q -- "--space-limit SIZE" <<< "$(MANWIDTH=100 man -l "$BIN/man/jetfs.8")" || fail "man -l jetfs.8 does not show --space-limit"
grep -q -- "--discard-after-damage" <<< "$(MANWIDTH=100 man -l "$BIN/man/jetutil.1")" || fail "man -l jetutil.1 does not show --discard-after-damage"
echo "PASS: every option and command of jetfs and jetutil is in their man pages, which render"
