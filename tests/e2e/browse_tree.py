#!/usr/bin/env python3
"""browse_tree.py -- the checks test_browse.sh makes on a `jetfs browse` mount
and its listener, written from the contract, not from the C code:

  compare MOUNT EXPORT   the mount's tables and key files are exactly what
                         EXPORT (`jetutil export` text: "table NAME", then
                         "HEXKEY HEXVALUE" lines in key order) holds: the same
                         tables, the same names in the same (key) order, each
                         name the key's encoding (fs/keyname.h, a hashed long
                         name matched by its prefix and XXH64), each file's
                         bytes the value, sizes exact, 0444, every mtime the
                         point in time of MOUNT/status; names that are not a
                         key's canonical encoding are ENOENT
  offsets DIR            readdir offsets are stable: seekdir to the telldir
                         of any entry, on the same handle or a new one, reads
                         that entry again (libc's, through ctypes)
  names                  prints the encodings of fixed keys (self-check)
  write PORT PHASE       writes the special keys of PHASE (0, 1, 2) through
                         redis-py: '/', '%', NUL, newline, bytes over 0x7f,
                         ".", "..", keys whose encoding is 255 bytes or more
  load PORT RATE         live load until killed: SETs of random 300-byte
                         values over 600 keys (load:NNNN), and a DEL in every
                         50, pipelined by 20, about RATE KB of values a second
  resp PORT EXPORT TABLE the read-only listener of a browse mount answers every
                         key of TABLE with its value (GET, MGET, EXISTS), SCAN
                         walks exactly the key set, DBSIZE is the count, INFO
                         answers; SET/DEL/INCR/FLUSHALL... get READONLY and
                         change nothing

Exits 1 with a message at the first difference.  `write` and `resp` need
redis-py (Debian's python3-redis: run them with /usr/bin/python3).
"""
import json
import os
import stat
import sys

# ---- XXH64 (seed 0 by default), from the algorithm's published description ----
M64 = (1 << 64) - 1
P1, P2, P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
P4, P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    acc = (acc + lane * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def _merge(acc, v):
    acc ^= _round(0, v)
    return (acc * P1 + P4) & M64


def xxh64(data, seed=0):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed & M64, (seed - P1) & M64]
        while i + 32 <= n:
            for j in range(4):
                v[j] = _round(v[j], int.from_bytes(data[i + 8 * j:i + 8 * j + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for x in v:
            h = _merge(h, x)
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i:i + 8], "little"))
        h = (_rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i:i + 4], "little") * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


# ---- the name encoding of fs/keyname.h ----
NAME_MAX, PREFIX_MAX, MARK = 255, 200, b"%~"


def _utf8_char(key, i):
    """Length of the one complete, valid UTF-8 character at key[i] (Python's
    decoder refuses overlong forms, surrogates and values past U+10FFFF), or 0."""
    for ln in (2, 3, 4):
        try:
            if i + ln <= len(key) and len(key[i:i + ln].decode("utf-8")) == 1:
                return ln
        except UnicodeDecodeError:
            pass
    return 0


def _units(key):
    """The key as encoding units, in order: a character copied, or %XX."""
    dots = key in (b".", b"..")
    i = 0
    while i < len(key):
        b = key[i]
        ln = _utf8_char(key, i) if b >= 0x80 else 1
        plain = ln > 0 if b >= 0x80 else (b >= 0x20 and b not in (0x7F, 0x2F, 0x25) and not (i == 0 and dots))
        if plain:
            yield key[i:i + ln]
            i += ln
        else:
            yield b"%%%02X" % b
            i += 1


def encode(key):
    assert 1 <= len(key) <= 255, key
    full, cut = b"", 0
    for u in _units(key):
        full += u
        if len(full) <= PREFIX_MAX:
            cut = len(full)
    if len(full) <= NAME_MAX:
        return full
    return full[:cut] + MARK + b"%016X" % xxh64(key)


def _unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        if s[i:i + 1] == b"%":
            h = s[i + 1:i + 3]
            if len(h) != 2 or any(c not in b"0123456789ABCDEF" for c in h):
                return None
            out.append(int(h, 16))
            i += 3
        else:
            out.append(s[i])
            i += 1
    return bytes(out)


def decode(name):
    """('exact', key) or ('hashed', prefix bytes, hash), or None if no key has it."""
    if MARK in name:
        p, _, h = name.partition(MARK)
        if len(h) != 16 or any(c not in b"0123456789ABCDEF" for c in h) or len(p) > PREFIX_MAX:
            return None
        pre = _unescape(p)
        return ("hashed", pre, int(h, 16)) if pre and b"".join(_units(pre)) == p else None
    key = _unescape(name)
    return ("exact", key) if key and len(key) <= 255 and encode(key) == name else None


def matches(name, key):
    d = decode(name)
    if d is None:
        return False
    if d[0] == "exact":
        return d[1] == key
    return key.startswith(d[1]) and xxh64(key) == d[2]


# ---- jetutil export text ----
def parse_export(path):
    tables, cur = {}, None
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if line.startswith(b"table "):
                cur = tables.setdefault(line[6:], [])
            elif line:
                k, _, v = line.partition(b" ")
                cur.append((bytes.fromhex(k.decode()), bytes.fromhex(v.decode())))
    return tables


def die(msg):
    print("browse_tree: " + msg, file=sys.stderr)
    sys.exit(1)


def cmd_compare(mount, export):
    want = parse_export(export)
    st = json.load(open(os.path.join(mount, "status")))
    point_s = st["point_in_time_us"] // 1000000
    troot = os.path.join(mount, "tables").encode()
    got_tables = os.listdir(troot)
    for t in got_tables:
        if not decode(t) or decode(t)[0] != "exact":
            die(f"table directory {t!r} is not a table name's encoding")
    if sorted(decode(t)[1] for t in got_tables) != sorted(want):
        die(f"tables {sorted(got_tables)} != the export's {sorted(want)}")
    nkeys = 0
    for table, rows in want.items():
        tdir = os.path.join(troot, encode(table))
        names = os.listdir(tdir)  # getdents order: the mount's listing order
        expect = [encode(k) for k, _ in rows]
        if names != expect:
            extra = sorted(set(names) - set(expect))[:5]
            missing = sorted(set(expect) - set(names))[:5]
            if not extra and not missing:
                die(f"table {table!r}: the listing is not in key order")
            die(f"table {table!r}: {len(names)} files vs {len(expect)} keys; "
                f"not keys: {extra}; keys without a file: {missing}")
        for (k, v), n in zip(rows, names):
            if not matches(n, k):
                die(f"name {n!r} does not decode to key {k!r} (by the prefix+hash rule when hashed)")
            p = os.path.join(tdir, n)
            s = os.stat(p)
            if not stat.S_ISREG(s.st_mode) or stat.S_IMODE(s.st_mode) != 0o444:
                die(f"{p!r}: mode {oct(s.st_mode)}, not a 0444 file")
            if s.st_size != len(v):
                die(f"{p!r}: ls -l size {s.st_size}, value {len(v)} bytes")
            if int(s.st_mtime) != point_s:
                die(f"{p!r}: mtime {s.st_mtime}, not the point in time {st['point_in_time']}")
            with open(p, "rb") as f:
                data = f.read()
            if data != v:
                die(f"{p!r}: {len(data)} bytes differ from the value ({len(v)} bytes) of key {k!r}")
            nkeys += 1
        # Names no key has (not canonical; a hashed name with another
        # hash) are never found.
        bad = [b"%2f", b"%4", b"%2E%2E", b"A%~0123456789ABCDEF"]
        for n in names[:200]:
            if MARK in n:
                bad.append(n[:-1] + (b"0" if n[-1:] != b"0" else b"1"))
            elif n.lower() != n and b"%" in n:
                bad.append(n.lower())
        for n in bad:
            if not any(matches(n, k) for k, _ in rows) and os.path.exists(os.path.join(tdir, n)):
                die(f"{n!r} is no key's name, yet it exists in table {table!r}")
    print(f"browse_tree: {nkeys} keys in {len(want)} tables match the export")


def cmd_offsets(path):
    import ctypes
    import random

    class Dirent(ctypes.Structure):  # glibc's struct dirent on 64-bit Linux
        _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64), ("d_reclen", ctypes.c_ushort),
                    ("d_type", ctypes.c_ubyte), ("d_name", ctypes.c_char * 256)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.closedir.argtypes = [ctypes.c_void_p]

    def opendir():
        d = libc.opendir(path.encode())
        if not d:
            die(f"opendir {path}: errno {ctypes.get_errno()}")
        return d

    def next_name(d):
        e = libc.readdir(d)
        return e.contents.d_name if e else None

    d = opendir()
    entries = []
    while True:
        pos = libc.telldir(d)
        n = next_name(d)
        if n is None:
            break
        entries.append((pos, n))
    rnd = random.Random(7)
    picks = rnd.sample(range(len(entries)), min(40, len(entries)))
    other = opendir()
    for i in picks + sorted(picks, reverse=True):  # forwards and backwards
        for h in (d, other):
            libc.seekdir(h, entries[i][0])
            got = next_name(h)
            if got != entries[i][1]:
                die(f"seekdir to entry {i}'s offset read {got!r}, not {entries[i][1]!r}")
    libc.closedir(d)
    libc.closedir(other)
    print(f"browse_tree: {len(entries)} entries, {len(picks)} offsets revisited on two handles")


# ---- the special keys ----
def special(phase):
    """Keys and values written in each phase (None: delete)."""
    long1 = b"\x01" * 99  # 297 encoded bytes: hashed, two keys share the prefix
    keys = {
        b"dir/with/slashes": b"slash %d" % phase,
        b"100%": b"percent",
        b"nul\x00inside": b"\x00\x01\x02 nul value %d" % phase,
        b"new\nline": b"line1\nline2\n",
        b"high\xff\xfe\x80bytes": bytes(range(256)) * 3,
        "caf\u00e9 \u65e5\u672c \U0001F600".encode(): b"utf-8 kept as is",
        b".": b"dot",
        b"..": b"dotdot",
        b"%2F": b"looks encoded",
        b"\x01" * 85: b"255 encoded bytes: the longest plain name",
        b"\x01" * 86: b"258 encoded bytes: hashed",
        long1 + b"A": b"long A %d" % phase,
        long1 + b"B": b"long B",
        "\u00e9".encode() * 127 + b"x": b"255 bytes of UTF-8",
        b"k" * 255: b"the longest key",
        b"\xc3\x28 invalid utf-8 \xed\xa0\x80": b"surrogate and bad sequence escaped",
        b"big value": bytes((i * 7 + phase) & 0xFF for i in range(300000)),
        b"empty value": b"",
        b"gone after the full": b"deleted in phase 1",
    }
    if phase >= 1:
        keys[b"gone after the full"] = None
        keys[b"added/in phase 1"] = b"\x7f\x00 new"
        keys[b"100%"] = b"percent, changed"
    if phase >= 2:
        keys[b"added/in phase 2\xff"] = b"phase two"
        keys[b"\x01" * 86] = None
        keys[b"big value"] = b"small now"
    return keys


def cmd_write(port, phase):
    import redis
    r = redis.Redis(port=port)
    for k, v in special(phase).items():
        if v is None:
            r.delete(k)
        else:
            r.set(k, v)
    print(f"browse_tree: phase {phase} written")


def cmd_load(port, kb_per_s):
    import random
    import time
    import redis
    r = redis.Redis(port=port)
    rnd = random.Random(19)
    t0, sent = time.monotonic(), 0
    while True:
        pipe = r.pipeline(transaction=False)
        for i in range(20):
            k = b"load:%04d" % rnd.randrange(600)
            if i == 0 and rnd.randrange(50) == 0:
                pipe.delete(k)
            else:
                pipe.set(k, rnd.randbytes(300))
        pipe.execute()
        sent += 20 * 300
        ahead = sent / (kb_per_s * 1024) - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)


def cmd_names():
    for k in sorted(special(2)):
        print(k, encode(k).decode("utf-8", "backslashreplace"))


def cmd_resp(port, export, table):
    import redis
    rows = parse_export(export).get(table.encode(), [])
    r = redis.Redis(port=port)
    pipe = r.pipeline(transaction=False)
    for k, _ in rows:
        pipe.get(k)
    got = pipe.execute()
    for (k, v), g in zip(rows, got):
        if g != v:
            die(f"GET {k!r}: {None if g is None else len(g)} bytes, not the value ({len(v)} bytes)")
    keys = [k for k, _ in rows]
    if keys:
        sample = keys[:: max(1, len(keys) // 50)] + [b"no such key \xff"]
        if r.mget(sample) != [dict(rows).get(k) for k in sample]:
            die("MGET differs")
        if r.exists(*sample) != len(sample) - 1:
            die(f"EXISTS counted {r.exists(*sample)} of {len(sample) - 1}")
    if r.dbsize() != len(rows):
        die(f"DBSIZE {r.dbsize()}, the export holds {len(rows)} keys")
    scanned = list(r.scan_iter(count=100))
    if sorted(scanned) != sorted(keys) or len(scanned) != len(keys):
        die(f"SCAN walked {len(scanned)} keys ({len(set(scanned))} distinct), not the {len(keys)} of the export")
    if "redis_version" not in r.info():
        die("INFO lacks redis_version")
    some = keys[0] if keys else b"k"
    for cmd in (("SET", some, b"x"), ("SET", b"new key", b"x"), ("DEL", some), ("INCR", b"counter"),
                ("MSET", b"a", b"1"), ("FLUSHDB",), ("FLUSHALL",)):
        try:
            r.execute_command(*cmd)
            die(f"{cmd[0]} was accepted on a read-only listener")
        except redis.exceptions.ReadOnlyError as e:
            if str(e) != "You can't write against a read only replica.":
                die(f"{cmd[0]}: READONLY with another text: {e}")
        except redis.exceptions.ResponseError as e:
            die(f"{cmd[0]}: {e}, not READONLY")
    if r.dbsize() != len(rows) or (keys and r.get(keys[0]) != rows[0][1]):
        die("a refused write changed what the listener answers")
    print(f"browse_tree: the listener answers the {len(rows)} keys of {table}, refuses writes")


def main(argv):
    if len(argv) >= 3 and argv[0] == "compare":
        cmd_compare(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "offsets":
        cmd_offsets(argv[1])
    elif argv[:1] == ["names"]:
        cmd_names()
    elif len(argv) == 3 and argv[0] == "write":
        cmd_write(int(argv[1]), int(argv[2]))
    elif len(argv) == 3 and argv[0] == "load":
        cmd_load(int(argv[1]), int(argv[2]))
    elif len(argv) == 4 and argv[0] == "resp":
        cmd_resp(int(argv[1]), argv[2], argv[3])
    else:
        die("usage: compare MOUNT EXPORT | offsets DIR | names | write PORT PHASE | load PORT KB/S | resp PORT EXPORT TABLE")


if __name__ == "__main__":
    main(sys.argv[1:])
