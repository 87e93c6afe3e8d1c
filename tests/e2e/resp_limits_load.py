#!/usr/bin/env python3
"""resp_limits_load.py PORT PASSWORD SERVER_PID -- driven by test_resp_limits.sh.

Holds 1,000 connections open to a `jetfs serve` started with
--maxclients 1005 --timeout 5 --proto-max-bulk-len 1M
--client-query-buffer-limit 2M and a password, while a well-behaved client
on its own connection sends PING every 20 ms and times every answer.  With
the 1,000 open it trips each limit from other connections and checks that
the limit held and that nobody else was hurt:

  AUTH         the unauthenticated half of the 1,000 get NOAUTH, the rest PONG
  maxclients   connections past 1005 get "-ERR max number of clients reached"
  bulk length  a 2 MB bulk gets "-ERR Protocol error: invalid bulk length", closed
  query buffer 2.7 MB of one unfinished request: disconnected without a reply
  output       a client that pipelines 100 MB of replies and reads none is paused:
               the server's memory barely grows, and it is served once it reads
  idle timeout a connection that sends nothing is closed after about 5-6 s,
               while the 1,000 that keep talking stay open

Prints one line per check; exits 1 at the first failure.
"""
import socket
import sys
import threading
import time

PORT, PASSWORD, SERVER_PID = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
HOLD = 1000
MAXCLIENTS = 1005


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def connect(timeout=10):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_line(s):
    buf = b""
    while not buf.endswith(b"\r\n"):
        b = s.recv(1)
        if not b:
            return buf if buf else None
        buf += b
    return buf


def read_reply(s):
    """One RESP2 reply, bulk data included (arrays not needed here)."""
    line = read_line(s)
    if line is None or not line.startswith(b"$"):
        return line
    n = int(line[1:-2])
    if n < 0:
        return line
    data = b""
    while len(data) < n + 2:
        b = s.recv(min(1 << 20, n + 2 - len(data)))
        if not b:
            return None
        data += b
    return data[:-2]


def closed_by_server(s, wait):
    """True if the server closes s within wait seconds (what arrives first is returned too)."""
    s.settimeout(wait)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return True, got
            got += b
    except socket.timeout:
        return False, got
    except (ConnectionResetError, BrokenPipeError):
        return True, got


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Monitor(threading.Thread):
    """The well-behaved client: PING every 20 ms, each answer timed."""

    def __init__(self):
        super().__init__(daemon=True)
        self.s = connect()
        self.s.sendall(cmd("AUTH", PASSWORD))
        if read_reply(self.s) != b"+OK\r\n":
            fail("the monitor could not authenticate")
        self.lock = threading.Lock()
        self.worst = 0.0
        self.count = 0
        self.errors = []
        self.stop = False

    def run(self):
        while not self.stop:
            t = time.monotonic()
            try:
                with self.lock:
                    self.s.sendall(cmd("PING"))
                    r = read_reply(self.s)
            except OSError as e:
                r = repr(e).encode()
            dt = time.monotonic() - t
            if r != b"+PONG\r\n":
                self.errors.append(r)
            self.worst = max(self.worst, dt)
            self.count += 1
            time.sleep(0.02)

    def ask(self, *args):
        with self.lock:
            self.s.sendall(cmd(*args))
            return read_reply(self.s)

    def connected_clients(self):
        info = self.ask("INFO", "clients").decode()
        for line in info.splitlines():
            if line.startswith("connected_clients:"):
                return int(line.split(":")[1])
        fail("INFO clients has no connected_clients: %r" % info)


def main():
    mon = Monitor()
    mon.start()

    # --- 1,000 connections; the even ones authenticate ---
    held = []
    for i in range(HOLD):
        s = connect()
        if i % 2 == 0:
            s.sendall(cmd("AUTH", PASSWORD))
            if read_reply(s) != b"+OK\r\n":
                fail("connection %d could not authenticate" % i)
        held.append(s)
    n = mon.connected_clients()
    if n != HOLD + 1:
        fail("connected_clients is %d with %d open" % (n, HOLD + 1))
    print("ok: %d connections open" % n, flush=True)

    def keepalive():
        """Every held connection talks at least once a second (the idle timeout is 5 s)."""
        noauth = pong = 0
        for i, s in enumerate(held):
            s.sendall(cmd("PING"))
        for i, s in enumerate(held):
            r = read_reply(s)
            if i % 2 == 0 and r == b"+PONG\r\n":
                pong += 1
            elif i % 2 == 1 and r == b"-NOAUTH Authentication required.\r\n":
                noauth += 1
            else:
                fail("held connection %d answered %r" % (i, r))
        return pong, noauth

    pong, noauth = keepalive()
    print("ok: AUTH held under load: %d PONG, %d NOAUTH" % (pong, noauth), flush=True)

    # --- idle timeout: starts now, checked at the end ---
    idle = connect()
    idle_since = time.monotonic()

    # --- maxclients ---
    extra, refused = [], None
    for _ in range(20):
        s = connect()
        s.sendall(cmd("PING"))
        r = read_reply(s)
        if r == b"-ERR max number of clients reached\r\n":
            refused = s
            break
        if r != b"-NOAUTH Authentication required.\r\n":
            fail("an extra connection answered %r" % r)
        extra.append(s)
    if refused is None:
        fail("20 connections past %d open clients were all accepted" % (HOLD + 2))
    closed, _ = closed_by_server(refused, 5)
    if not closed:
        fail("the refused connection was left open")
    n = mon.connected_clients()
    if n != MAXCLIENTS:
        fail("connected_clients is %d when the limit %d refused one" % (n, MAXCLIENTS))
    print("ok: maxclients %d held (%d extra accepted, the next refused)" % (MAXCLIENTS, len(extra)), flush=True)
    for s in extra:
        s.close()
    keepalive()

    # --- the bulk length limit (1 MB here) ---
    s = connect()
    s.sendall(cmd("AUTH", PASSWORD))
    read_reply(s)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
    closed, got = closed_by_server(s, 5)
    if got != b"-ERR Protocol error: invalid bulk length\r\n" or not closed:
        fail("a 2 MB bulk: closed=%s, got %r" % (closed, got[:200]))
    s.close()
    print("ok: bulk length limit", flush=True)

    # --- the query-buffer limit (2 MB here): one unfinished 2.7 MB request ---
    s = connect()
    s.sendall(cmd("AUTH", PASSWORD))
    read_reply(s)
    value = b"v" * 900000
    req = cmd("MSET", "q1", value, "q2", value, "q3", value)
    try:
        s.sendall(req[:-10])  # never finished: only the buffer limit can end it
    except (BrokenPipeError, ConnectionResetError):
        pass
    closed, got = closed_by_server(s, 10)
    if not closed or got:
        fail("the query-buffer limit: closed=%s, got %r" % (closed, got[:200]))
    s.close()
    print("ok: query-buffer limit", flush=True)
    keepalive()

    # --- a client that reads none of its replies ---
    big = b"x" * 500000
    if mon.ask("SET", "big", big) != b"+OK\r\n":
        fail("SET big")
    before = rss_kb(SERVER_PID)
    slow = connect()
    slow.sendall(cmd("AUTH", PASSWORD) + cmd("GET", "big") * 200)  # 100 MB of replies, none read
    time.sleep(2)
    keepalive()
    grown = rss_kb(SERVER_PID) - before
    if grown > 40 * 1024:
        fail("the server grew by %d kB holding replies nobody reads" % grown)
    print("ok: a client that reads nothing is paused (server grew %d kB, 100 MB of replies asked)" % grown,
          flush=True)
    slow.settimeout(30)
    if read_reply(slow) != b"+OK\r\n":
        fail("the slow reader's AUTH")
    for i in range(200):
        if read_reply(slow) != big:
            fail("the slow reader's reply %d is wrong once it reads" % i)
    slow.close()
    print("ok: the slow reader got all 200 replies, in order, once it read", flush=True)

    # --- the idle timeout (5 s) ---
    while time.monotonic() - idle_since < 4.5:
        keepalive()
        time.sleep(0.5)
    keepalive()
    closed, _ = closed_by_server(idle, 4)
    if not closed:
        fail("an idle connection was still open %.1f s after it went quiet" % (time.monotonic() - idle_since))
    print("ok: the idle connection was closed after %.1f s" % (time.monotonic() - idle_since), flush=True)
    pong, noauth = keepalive()
    if pong + noauth != HOLD:
        fail("held connections lost")
    n = mon.connected_clients()
    if n != HOLD + 1:
        fail("connected_clients is %d at the end, not %d" % (n, HOLD + 1))

    mon.stop = True
    mon.join()
    if mon.errors:
        fail("the well-behaved client got %d bad answers, first %r" % (len(mon.errors), mon.errors[0]))
    if mon.worst > 2.0:
        fail("the well-behaved client waited up to %.2f s for a PING" % mon.worst)
    print("ok: the well-behaved client got %d PONGs, slowest %.0f ms" % (mon.count, mon.worst * 1000), flush=True)
    for s in held:
        s.close()


main()
