#!/usr/bin/env bash
# tests/e2e/test_resp_auth.sh -- who may use the Redis port, with real clients:
#  - protected mode: a non-loopback --listen without a password is refused at
#    start (exit 2, both ways out named, nothing created); --protected-mode no
#    or a password lets it start;
#  - the password file: refused unless mode 0600 or stricter, or empty;
#  - AUTH: no command runs before it (NOAUTH, and the key is not written), a
#    wrong password gets WRONGPASS and is logged with the client's address,
#    rate-limited; AUTH pw and AUTH default pw, redis-cli -a, REDISCLI_AUTH
#    and redis-benchmark -a work;
#  - --disable-command SHUTDOWN / FLUSHDB: Redis's unknown-command error, the
#    data and the server untouched.
set -euo pipefail
BIN=${JET_BIN:?}
F=$BIN/jetfs
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_auth.XXXXXX")
fail() { echo "FAIL: $*" >&2; for l in "$TMP"/*.log; do [ -f "$l" ] && sed "s|^|  $(basename "$l"): |" "$l" >&2; done; exit 1; }
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_fuse_and_redis_cli
mkdir -p "$TMP/mnt"
M=$TMP/mnt
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  fusermount3 -uz "$M" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
P=$(free_port)

# --- protected mode ---
set +e
"$F" serve "$TMP/never" "$M" --listen "0.0.0.0:$P" > "$TMP/protected.out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || fail "a non-loopback --listen without a password exited $rc, not 2"
grep -q "protected mode" "$TMP/protected.out" || fail "the refusal does not say protected mode: $(cat "$TMP/protected.out")"
grep -q -- "--requirepass-file" "$TMP/protected.out" && grep -q -- "--protected-mode no" "$TMP/protected.out" ||
  fail "the refusal does not name both ways out: $(cat "$TMP/protected.out")"
[ ! -e "$TMP/never" ] || fail "the refused start created the instance directory"
# A TLS port on a public address is held to the same rule.
set +e
"$F" serve "$TMP/never" "$M" --tls-port "0.0.0.0:$P" --tls-cert-file /nonexistent --tls-key-file /nonexistent \
  > "$TMP/protected2.out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "protected mode" "$TMP/protected2.out" || fail "TLS on 0.0.0.0 without a password: $rc $(cat "$TMP/protected2.out")"

# --protected-mode no: the operator says a firewall keeps others out.
"$F" serve "$TMP/open" "$M" --listen "0.0.0.0:$P" --protected-mode no > "$TMP/open.log" 2>&1 &
S=$!; PIDS+=("$S")
wait_for "serve with --protected-mode no" port_up
[ "$(redis-cli -p "$P" SET k v)" = OK ] || fail "SET with --protected-mode no"
redis-cli -p "$P" AUTH whatever 2>&1 | grep -q "without any password configured" || fail "AUTH on a server without a password"
kill "$S"; wait "$S" || true
wait_for "the unmount" sh -c "! mountpoint -q '$M'"

# --- the password file ---
PW=$TMP/password
printf 'correct horse battery staple\n' > "$PW"
chmod 644 "$PW"
set +e
"$F" serve "$TMP/never" "$M" --listen "$P" --requirepass-file "$PW" > "$TMP/mode.out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "mode 0644" "$TMP/mode.out" && grep -q "0600" "$TMP/mode.out" ||
  fail "a password file of mode 0644: exit $rc, $(cat "$TMP/mode.out")"
[ ! -e "$TMP/never" ] || fail "the refused start created the instance directory"
: > "$TMP/empty"; chmod 600 "$TMP/empty"
set +e
"$F" serve "$TMP/never" "$M" --listen "$P" --requirepass-file "$TMP/empty" > "$TMP/empty.out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "empty" "$TMP/empty.out" || fail "an empty password file: exit $rc, $(cat "$TMP/empty.out")"
chmod 600 "$PW"
# The password is never on the command line: ps must not show it.
"$F" serve "$TMP/db" "$M" --listen "0.0.0.0:$P" --requirepass-file "$PW" \
  --disable-command SHUTDOWN --disable-command flushdb > "$TMP/serve.log" 2>&1 &
S=$!; PIDS+=("$S")
A() { redis-cli -p "$P" --no-auth-warning -a 'correct horse battery staple' "$@"; }
up() { [ "$(A PING 2>/dev/null)" = PONG ] && mounted; }
wait_for "serve with a password" up
ps -o args= -p "$S" | grep -q "correct horse" && fail "the password shows in ps"

# --- no command before AUTH ---
out=$(redis-cli -p "$P" SET before-auth x 2>&1)
[ "$out" = "NOAUTH Authentication required." ] || fail "SET before AUTH answered '$out'"
out=$(redis-cli -p "$P" NOSUCHCOMMAND 2>&1)
[ "$out" = "NOAUTH Authentication required." ] || fail "an unknown command before AUTH answered '$out'"
# (redis-cli follows an error with an empty line when it reads stdin: lines() drops those.)
lines() { grep -v '^$' | tr '\n' '|'; }
out=$(printf 'GET x\r\nMULTI\r\nFLUSHALL\r\n' | redis-cli -p "$P" 2>&1 | lines)
[ "$out" = "NOAUTH Authentication required.|NOAUTH Authentication required.|NOAUTH Authentication required.|" ] ||
  fail "pipelined commands before AUTH: '$out'"
[ "$(A EXISTS before-auth)" = 0 ] || fail "a SET sent before AUTH was executed"

# --- AUTH forms and clients ---
[ "$(A SET k1 v1)" = OK ] || fail "redis-cli -a"
[ "$(REDISCLI_AUTH='correct horse battery staple' redis-cli -p "$P" GET k1)" = v1 ] || fail "REDISCLI_AUTH"
out=$(printf 'AUTH "correct horse battery staple"\r\nGET k1\r\n' | redis-cli -p "$P" 2>&1 | lines)
[ "$out" = "OK|v1|" ] || fail "AUTH password: '$out'"
out=$(printf 'AUTH default "correct horse battery staple"\r\nGET k1\r\n' | redis-cli -p "$P" 2>&1 | lines)
[ "$out" = "OK|v1|" ] || fail "AUTH default password: '$out'"
redis-benchmark -p "$P" -a 'correct horse battery staple' -t set,get -n 2000 -c 10 -q > "$TMP/bench.out" 2>&1 ||
  fail "redis-benchmark -a: $(cat "$TMP/bench.out")"
grep -q "GET:" "$TMP/bench.out" || fail "redis-benchmark -a printed no rates: $(cat "$TMP/bench.out")"
grep -qi "NOAUTH" "$TMP/bench.out" && fail "redis-benchmark -a was refused: $(cat "$TMP/bench.out")"

# --- a wrong password: refused, logged with the address, rate-limited ---
out=$(redis-cli -p "$P" --no-auth-warning -a wrong GET k1 2>&1 | tr '\n' '|')
case "$out" in *"WRONGPASS invalid username-password pair or user is disabled."*) ;;
  *) fail "redis-cli -a wrong: '$out'" ;; esac
case "$out" in *v1*) fail "a wrong password read the key: '$out'" ;; esac
out=$(printf 'AUTH nosuchuser "correct horse battery staple"\r\nGET k1\r\n' | redis-cli -p "$P" 2>&1 | lines)
[ "$out" = "WRONGPASS invalid username-password pair or user is disabled.|NOAUTH Authentication required.|" ] ||
  fail "AUTH with another user: '$out'"
wait_for "the failure in the log" grep -q "AUTH failed from 127.0.0.1:[0-9]* .*wrong password" "$TMP/serve.log"
sleep 1.1  # the next failures start a new log interval
# A flood of wrong passwords: every one refused, a handful of lines logged.
before=$(grep -c "AUTH failed" "$TMP/serve.log")
for _ in $(seq 1 300); do printf 'AUTH guess\r\n'; done | redis-cli -p "$P" > "$TMP/flood.out" 2>&1
[ "$(grep -c WRONGPASS "$TMP/flood.out")" = 300 ] || fail "not every guess was refused: $(sort "$TMP/flood.out" | uniq -c)"
sleep 1.1
redis-cli -p "$P" --no-auth-warning -a wrong-again PING > /dev/null 2>&1 || true
wait_for "the summary line" grep -q "failed attempts since the last line were not logged" "$TMP/serve.log"
after=$(grep -c "AUTH failed" "$TMP/serve.log")
[ $((after - before)) -le 4 ] || fail "301 failures made $((after - before)) log lines (not rate-limited)"

# --- disabled commands ---
out=$(A SHUTDOWN 2>&1)
case "$out" in "ERR unknown command 'SHUTDOWN', with args beginning with: "*) ;; *) fail "disabled SHUTDOWN: '$out'" ;; esac
for cmd in FLUSHDB FLUSHALL; do
  out=$(A $cmd 2>&1)
  case "$out" in "ERR unknown command '$cmd', with args beginning with: "*) ;; *) fail "disabled $cmd: '$out'" ;; esac
done
kill -0 "$S" || fail "the server stopped after a disabled SHUTDOWN"
[ "$(A GET k1)" = v1 ] || fail "a disabled FLUSHDB flushed"
set +e
"$F" serve "$TMP/never" "$M" --listen "$P" --disable-command NOSUCH > "$TMP/dis.out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "no command 'NOSUCH'" "$TMP/dis.out" || fail "--disable-command NOSUCH: $rc $(cat "$TMP/dis.out")"

kill "$S"; wait "$S" || fail "serve exited $? after SIGTERM"
grep -q "instance shut down cleanly" "$TMP/serve.log" || fail "no clean shutdown"
echo "PASS: protected mode, the password file, AUTH (NOAUTH, WRONGPASS logged and rate-limited, -a, REDISCLI_AUTH, redis-benchmark -a), disabled commands"
