#!/usr/bin/env bash
# tests/e2e/test_notify.sh -- `jetfs serve` under a service manager's
# NOTIFY_SOCKET (systemd's Type=notify protocol), served here by a small
# Unix datagram listener:
#  - READY=1 arrives once, and at that instant (checked by the listener as
#    the datagram arrives) the mount answers and the port accepts;
#  - a full backup read through the mount sends STATUS= lines for its
#    begin and its normal end, then the remount's STATUS=;
#  - an aborted backup (jetfs end --abort) sends a STATUS= saying so;
#  - SIGTERM sends STOPPING=1, after which nothing says READY again, and
#    serve exits 0;
#  - a NOTIFY_SOCKET nobody listens on changes nothing but one line on
#    stderr: clients and backups are served as without systemd.
set -euo pipefail
BIN=${JET_BIN:?}
F=$BIN/jetfs
SRC=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${JET_TEST_TMP:-/tmp}/e2e_notify.XXXXXX" 2>/dev/null || mktemp -d)
M=$TMP/mnt
PIDS=()
fail() {
  echo "FAIL: $*" >&2
  for l in "$TMP"/*.log; do [ -f "$l" ] && sed "s|^|  $(basename "$l"): |" "$l" >&2; done
  exit 1
}
if [ ! -c /dev/fuse ]; then
  if [ -n "${CI:-}" ]; then fail "/dev/fuse is missing under CI"; fi
  echo "SKIP: no /dev/fuse"; exit 77
fi
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  fusermount3 -uz "$M" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
# shellcheck source=tests/e2e/lib.sh
. "$SRC/lib.sh"
command -v redis-cli > /dev/null || fail "redis-cli is missing (scripts/deps installs redis-tools)"
mkdir -p "$M"
P=$(free_port)

# The listener: one line per datagram in notify.log, each state on its
# own line; on READY=1 it first checks, then and there, that the mount
# answers (MOUNT/status exists) and the port accepts a connection.
cat > "$TMP/listen.py" <<'EOF'
import os, socket, sys
path, mount, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as log:
    log.write("listening\n")
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        for line in msg.split("\n"):
            if not line:
                continue
            if line == "READY=1":
                mount_ok = os.path.isfile(os.path.join(mount, "status"))
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    port_ok = True
                except OSError:
                    port_ok = False
                line += " mount=%s port=%s" % ("up" if mount_ok else "DOWN", "up" if port_ok else "DOWN")
            log.write(line + "\n")
EOF
/usr/bin/python3 "$TMP/listen.py" "$TMP/notify.sock" "$M" "$P" "$TMP/notify.log" 2> "$TMP/listener.log" &
PIDS+=($!)
wait_for "the notify listener" grep -qs listening "$TMP/notify.log"

# Recovery work before readiness: an instance with data in its log.
"$BIN/jetutil" load "$TMP/db" --keys 3000 --value-size 200 > /dev/null
NOTIFY_SOCKET=$TMP/notify.sock "$F" serve "$TMP/db" "$M" --listen "$P" > "$TMP/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
wait_for "READY=1" grep -q '^READY=1' "$TMP/notify.log"
grep -q '^READY=1 mount=up port=up$' "$TMP/notify.log" || fail "READY=1 came before the mount and the port worked: $(grep READY "$TMP/notify.log")"
mounted || fail "not mounted after READY=1"
port_up || fail "the port does not answer after READY=1"

# A full backup read whole, then unmounted: begin and normal end, then the
# remount's status.
cp -r "$M/backup/full" "$TMP/set"
wait_for "the begin's STATUS" grep -q '^STATUS=full backup begun' "$TMP/notify.log"
fusermount3 -u "$M"
wait_for "the end's STATUS" grep -q '^STATUS=full backup ended normally' "$TMP/notify.log"
wait_for "the remount" mounted
wait_for "the remount's STATUS" grep -q "^STATUS=$M mounted, waiting for a backup" <(sed -n '/^STATUS=full backup ended normally/,$p' "$TMP/notify.log")

# An aborted backup says so.
ls "$M/backup/incremental" > /dev/null
"$F" end "$M" --abort > /dev/null
wait_for "the abort's STATUS" grep -q '^STATUS=incremental backup aborted' "$TMP/notify.log"
wait_for "the remount after the abort" mounted

# SIGTERM: STOPPING=1, a clean exit, READY only ever once.
kill -TERM "$SERVE"
rc=0; wait "$SERVE" || rc=$?
[ $rc -eq 0 ] || fail "serve exited $rc after SIGTERM"
wait_for "STOPPING=1" grep -q '^STOPPING=1$' "$TMP/notify.log"
[ "$(grep -c '^READY=1' "$TMP/notify.log")" = 1 ] || fail "READY=1 was sent more than once"
if sed -n '/^STOPPING=1$/,$p' "$TMP/notify.log" | grep -q '^READY=1'; then fail "READY=1 after STOPPING=1"; fi
grep -q "cannot notify" "$TMP/serve.log" && fail "serve could not notify a listening socket"

# A NOTIFY_SOCKET nobody listens on: serving goes on, said once.
rm -rf "$TMP/set"
NOTIFY_SOCKET=$TMP/nobody.sock "$F" serve "$TMP/db" "$M" --listen "$P" > "$TMP/serve2.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
wait_for "the server without a listener" mounted
wait_for "its port" port_up
cp -r "$M/backup/full" "$TMP/set"
fusermount3 -u "$M"
wait_for "the remount" mounted
[ "$(grep -c 'cannot notify the service manager' "$TMP/serve2.log")" = 1 ] ||
  fail "an unreachable NOTIFY_SOCKET was not said exactly once: $(grep -c 'cannot notify' "$TMP/serve2.log")"
kill -TERM "$SERVE"
rc=0; wait "$SERVE" || rc=$?
[ $rc -eq 0 ] || fail "serve exited $rc after SIGTERM (unreachable NOTIFY_SOCKET)"
echo "PASS: READY=1 after the mount and the port, STATUS= per backup, STOPPING=1 at SIGTERM"
