#!/usr/bin/env bash
# tests/e2e/test_resp_tls.sh -- the Redis port over TLS, with redis-cli --tls
# against certificates this test makes with openssl req:
#  - a server certificate: redis-cli --tls (verifying it) reads and writes,
#    redis-benchmark --tls loads it, AUTH works over it;
#  - a plain-text client on the TLS port is dropped (and logged), and the
#    plain port keeps serving;
#  - TLS 1.1 is refused, TLS 1.2 and 1.3 accepted (openssl s_client);
#  - with --tls-ca-cert-file, a client without a certificate, or with one
#    from another CA, is refused; one with a certificate the CA signed works;
#  - a missing or mismatched key is refused at start (exit 2, nothing created).
set -euo pipefail
BIN=${JET_BIN:?}
F=$BIN/jetfs
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_tls.XXXXXX")
fail() { echo "FAIL: $*" >&2; for l in "$TMP"/*.log; do [ -f "$l" ] && sed "s|^|  $(basename "$l"): |" "$l" >&2; done; exit 1; }
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_fuse_and_redis_cli
command -v openssl > /dev/null || fail "openssl is missing (scripts/deps installs it)"
mkdir -p "$TMP/mnt" "$TMP/pki"
M=$TMP/mnt
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  fusermount3 -uz "$M" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# --- certificates: a CA, a server certificate it signs, client certificates ---
K=$TMP/pki
ossl() { openssl "$@" 2> "$K/openssl.err" || fail "openssl $1: $(cat "$K/openssl.err")"; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$K/ca.key" -out "$K/ca.crt" -days 2 -subj "/CN=jetfs test CA"
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$K/other-ca.key" -out "$K/other-ca.crt" -days 2 -subj "/CN=another CA"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$K/san"
ossl req -newkey rsa:2048 -nodes -keyout "$K/server.key" -out "$K/server.csr" -subj "/CN=localhost"
ossl x509 -req -in "$K/server.csr" -CA "$K/ca.crt" -CAkey "$K/ca.key" -CAcreateserial -out "$K/server.crt" -days 2 \
  -extfile "$K/san"
ossl req -newkey rsa:2048 -nodes -keyout "$K/client.key" -out "$K/client.csr" -subj "/CN=client"
ossl x509 -req -in "$K/client.csr" -CA "$K/ca.crt" -CAkey "$K/ca.key" -CAcreateserial -out "$K/client.crt" -days 2
ossl req -newkey rsa:2048 -nodes -keyout "$K/stranger.key" -out "$K/stranger.csr" -subj "/CN=stranger"
ossl x509 -req -in "$K/stranger.csr" -CA "$K/other-ca.crt" -CAkey "$K/other-ca.key" -CAcreateserial \
  -out "$K/stranger.crt" -days 2
ossl req -newkey rsa:2048 -nodes -keyout "$K/wrong.key" -out "$K/wrong.csr" -subj "/CN=wrong"

# --- bad TLS files are refused before anything is opened ---
P=$(free_port); T=$(free_port)
for args in "--tls-cert-file $K/server.crt --tls-key-file $K/nosuch.key" \
            "--tls-cert-file $K/server.crt --tls-key-file $K/wrong.key" \
            "--tls-cert-file $K/server.crt"; do
  set +e
  # shellcheck disable=SC2086
  "$F" serve "$TMP/never" "$M" --tls-port "$T" $args > "$TMP/bad.out" 2>&1; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "TLS options '$args' exited $rc: $(cat "$TMP/bad.out")"
  grep -q -- "--tls-" "$TMP/bad.out" || fail "TLS options '$args' not explained: $(cat "$TMP/bad.out")"
  [ ! -e "$TMP/never" ] || fail "TLS options '$args' created the instance directory"
done

# --- a TLS port beside the plain one ---
printf 'tls password\n' > "$TMP/pw"; chmod 600 "$TMP/pw"
"$F" serve "$TMP/db" "$M" --listen "127.0.0.1:$P" --tls-port "$T" --tls-cert-file "$K/server.crt" \
  --tls-key-file "$K/server.key" --requirepass-file "$TMP/pw" > "$TMP/serve.log" 2>&1 &
S=$!; PIDS+=("$S")
TLS() { redis-cli --tls --cacert "$K/ca.crt" -h 127.0.0.1 -p "$T" --no-auth-warning -a 'tls password' "$@"; }
up() { [ "$(TLS PING 2>/dev/null)" = PONG ] && mounted; }
wait_for "serve with TLS" up
grep -q "serving the Redis protocol over TLS on 127.0.0.1:$T" "$TMP/serve.log" || fail "the TLS port is not announced"
[ "$(TLS SET over-tls yes)" = OK ] || fail "SET over TLS"
[ "$(redis-cli -p "$P" --no-auth-warning -a 'tls password' GET over-tls)" = yes ] || fail "the TLS write is not seen on the plain port"
[ "$(redis-cli --tls --cacert "$K/ca.crt" -p "$T" GET over-tls 2>&1)" = "NOAUTH Authentication required." ] ||
  fail "TLS skipped AUTH"
# A big value both ways exercises partial TLS writes and reads.
head -c 3000000 /dev/urandom | base64 -w0 > "$TMP/big"
TLS -x SET big < "$TMP/big" > /dev/null
[ "$(TLS GET big | md5sum)" = "$(printf '%s\n' "$(cat "$TMP/big")" | md5sum)" ] || fail "a 4 MB value over TLS came back different"
redis-benchmark --tls --cacert "$K/ca.crt" -p "$T" -a 'tls password' -t set,get -n 2000 -c 20 -q > "$TMP/bench.out" 2>&1 ||
  fail "redis-benchmark --tls: $(cat "$TMP/bench.out")"
grep -q "GET:" "$TMP/bench.out" || fail "redis-benchmark --tls printed no rates: $(cat "$TMP/bench.out")"

# A plain-text client on the TLS port is dropped, quickly, with nothing said.
python3 - "$T" > "$TMP/plain.out" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
t = time.time()
s.sendall(b"AUTH x\r\nPING\r\n")
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except ConnectionResetError:
    pass
print("closed after %.2fs, got %r" % (time.time() - t, data))
EOF
grep -q "closed after" "$TMP/plain.out" || fail "a plain-text client on the TLS port was not dropped: $(cat "$TMP/plain.out")"
grep -q "PONG\|NOAUTH" "$TMP/plain.out" && fail "a plain-text client on the TLS port was answered: $(cat "$TMP/plain.out")"
wait_for "the drop in the log" grep -q "TLS handshake with 127.0.0.1:[0-9]* failed.*plain-text client" "$TMP/serve.log"
redis-cli -p "$T" PING > /dev/null 2>&1 && fail "redis-cli without --tls got an answer on the TLS port"
[ "$(TLS PING)" = PONG ] || fail "the TLS port after a plain-text client"

# TLS 1.2 and later only.
echo | openssl s_client -connect "127.0.0.1:$T" -tls1_1 > "$TMP/tls11.out" 2>&1 && fail "TLS 1.1 was accepted"
grep -q "Cipher is (NONE)" "$TMP/tls11.out" || fail "TLS 1.1 was negotiated: $(grep -i cipher "$TMP/tls11.out")"
wait_for "the TLS 1.1 refusal in the log" grep -q "unsupported protocol" "$TMP/serve.log"
for v in tls1_2 tls1_3; do
  echo | openssl s_client -connect "127.0.0.1:$T" -"$v" -CAfile "$K/ca.crt" > "$TMP/$v.out" 2>&1 ||
    fail "$v refused: $(tail -5 "$TMP/$v.out")"
  grep -q "Verify return code: 0 (ok)" "$TMP/$v.out" || fail "$v: the certificate did not verify"
done
kill "$S"; wait "$S" || fail "serve exited $? after SIGTERM"
wait_for "the unmount" sh -c "! mountpoint -q '$M'"

# --- client certificates required: TLS only, no plain port ---
"$F" serve "$TMP/db" "$M" --tls-port "$T" --tls-cert-file "$K/server.crt" --tls-key-file "$K/server.key" \
  --tls-ca-cert-file "$K/ca.crt" > "$TMP/serve2.log" 2>&1 &
S=$!; PIDS+=("$S")
CERT=(--tls --cacert "$K/ca.crt" --cert "$K/client.crt" --key "$K/client.key" -p "$T")
up2() { [ "$(redis-cli "${CERT[@]}" PING 2>/dev/null)" = PONG ] && mounted; }
wait_for "serve with client certificates" up2
[ "$(redis-cli "${CERT[@]}" GET over-tls)" = yes ] || fail "GET with a client certificate"
out=$(redis-cli --tls --cacert "$K/ca.crt" -p "$T" GET over-tls 2>&1 || true)
case "$out" in *yes*) fail "a client without a certificate read a key" ;; esac
wait_for "the refusal in the log" grep -q "did not return a certificate" "$TMP/serve2.log"
out=$(redis-cli --tls --cacert "$K/ca.crt" --cert "$K/stranger.crt" --key "$K/stranger.key" -p "$T" GET over-tls 2>&1 || true)
case "$out" in *yes*) fail "a client whose certificate another CA signed read a key" ;; esac
wait_for "the second refusal in the log" grep -q "certificate: " "$TMP/serve2.log"
redis-cli -p "$P" PING > /dev/null 2>&1 && fail "the plain port is open although only --tls-port was given"
[ "$(redis-cli "${CERT[@]}" PING)" = PONG ] || fail "the server after refused clients"
kill "$S"; wait "$S" || fail "serve exited $? after SIGTERM"
grep -q "instance shut down cleanly" "$TMP/serve2.log" || fail "no clean shutdown"
echo "PASS: TLS (redis-cli --tls, redis-benchmark --tls, AUTH over TLS, plain text dropped, TLS 1.2+ only, client certificates)"
