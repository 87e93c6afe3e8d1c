"""redis_py_check.py PORT -- drives `jetfs serve` with redis-py (Debian's
python3-redis, run by /usr/bin/python3) through what applications do with
it: connect (with the commands the library and its newer versions send
then), pipelines, MULTI/EXEC through pipeline(transaction=True), WATCH
through transaction() and watch(), SCAN over 10,000 keys with scan_iter,
binary keys and values, calls jetfs does not support, and the asyncio
client.  Exits non-zero, naming the check, at the first surprise.  Run by
tests/e2e/test_resp_libs.sh."""
import asyncio
import sys

import redis
import redis.asyncio

PORT = int(sys.argv[1])
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAIL (redis-py %s): %s" % (redis.__version__, what), file=sys.stderr)
        sys.exit(1)
    checks += 1


def error_of(fn, *args, **kw):
    """The exception fn raises (a check fails if it raises none)."""
    try:
        got = fn(*args, **kw)
    except redis.RedisError as e:
        return e
    check(False, "%s%r should have failed, returned %r" % (getattr(fn, "__name__", fn), args, got))


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, socket_timeout=30, **kw)


# --- connecting, and what libraries send on connect ---
r = client(client_name="e2e-py", decode_responses=True)
check(r.ping() is True, "PING")
check(r.client_getname() == "e2e-py", "CLIENT SETNAME on connect: name is %r" % r.client_getname())
check(isinstance(r.client_id(), int) and r.client_id() > 0, "CLIENT ID")
check(r.execute_command("SELECT", 0) in (True, "OK"), "SELECT 0")
# redis-py 5 sends these two on connect, ignoring errors; they must succeed.
check(r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == "OK", "CLIENT SETINFO LIB-NAME")
check(r.execute_command("CLIENT", "SETINFO", "LIB-VER", redis.__version__) == "OK", "CLIENT SETINFO LIB-VER")
info = r.client_info()
check(info["lib-name"] == "redis-py" and info["lib-ver"].strip() == redis.__version__ and info["name"] == "e2e-py"
      and info["id"] == r.client_id() and info["db"] == 0, "CLIENT INFO: %r" % info)
e = error_of(r.execute_command, "CLIENT", "SETINFO", "LIB-NAME", "has space")
check("cannot contain spaces" in str(e), "SETINFO with a space: %s" % e)
e = error_of(r.execute_command, "CLIENT", "NOSUCH")
check(str(e) == "unknown subcommand 'NOSUCH'. Try CLIENT HELP.", "CLIENT NOSUCH: %s" % e)
# RESP3 is asked for with HELLO 3: refused as Redis refuses a protocol it lacks.
e = error_of(r.execute_command, "HELLO", 3)
check(str(e) == "NOPROTO unsupported protocol version", "HELLO 3: %s" % e)
hello = r.execute_command("HELLO", 2)
h = dict(zip(hello[::2], hello[1::2]))
check(h["proto"] == 2 and h["id"] == r.client_id() and h["mode"] == "standalone" and h["role"] == "master"
      and h["modules"] == [], "HELLO 2: %r" % h)
hello = r.execute_command("HELLO", 2, "AUTH", "default", "anything", "SETNAME", "renamed")
check(dict(zip(hello[::2], hello[1::2]))["proto"] == 2, "HELLO 2 AUTH default SETNAME")
check(r.client_getname() == "renamed", "HELLO SETNAME: name is %r" % r.client_getname())
e = error_of(r.execute_command, "HELLO", 2, "AUTH", "bob", "pw")
check(isinstance(e, redis.AuthenticationError) or "WRONGPASS" in str(e), "HELLO AUTH bob: %r" % e)
check(r.client_getname() == "renamed", "a refused HELLO changed the name")
check(r.info("server")["redis_version"].startswith("7."), "INFO server")
# A database other than 0: the connection is refused with Redis's error.
e = error_of(client(db=1).ping)
check("DB index is out of range" in str(e), "db=1: %r" % e)

# --- the small commands ---
r.set("t:str", "v")
check(r.type("t:str") == "string" and r.type("t:none") == "none", "TYPE")
check(r.ttl("t:str") == -1 and r.ttl("t:none") == -2, "TTL")
check(r.pttl("t:str") == -1 and r.pttl("t:none") == -2, "PTTL")
check(r.echo("e\r\nx") == "e\r\nx", "ECHO")
# --- expiry and the string family, through redis-py's own calls ---
check(r.set("t:ex", "v", ex=100) is True and r.ttl("t:ex") == 100 and r.persist("t:ex") is True and r.ttl("t:ex") == -1,
      "SET ex=, TTL, PERSIST")
check(r.expire("t:ex", 50, gt=True) is False and r.expire("t:ex", 50) is True and r.expiretime("t:ex") > 0, "EXPIRE")
check(r.getex("t:ex", persist=True) == "v" and r.ttl("t:ex") == -1, "GETEX")
check(r.append("t:ex", "w") == 2 and r.getrange("t:ex", 1, 1) == "w" and r.strlen("t:ex") == 2, "APPEND, GETRANGE")
check(r.incrbyfloat("t:f", 1.5) == 1.5 and r.getdel("t:f") == "1.5", "INCRBYFLOAT, GETDEL")
check(r.rename("t:ex", "t:ex2") is True and r.keys("t:ex*") == ["t:ex2"] and r.unlink("t:ex2") == 1, "RENAME, KEYS")
cmds = r.command()
check(cmds["get"]["arity"] == 2 and cmds["get"]["flags"] == ["readonly"] and cmds["mset"]["step_count"] == 2
      and cmds["set"]["flags"] == ["write"] and len(cmds) == r.command_count(), "COMMAND: %r" % cmds.get("get"))

# --- unsupported calls: Redis's own unknown-command error ---
for call, want in [
    (lambda: r.sadd("s", "m"), "unknown command 'SADD', with args beginning with: 's' 'm' "),
    (lambda: r.hset("h", "f", "v"), "unknown command 'HSET', with args beginning with: 'h' 'f' 'v' "),
    (lambda: r.lpush("l", "a"), "unknown command 'LPUSH', with args beginning with: 'l' 'a' "),
    (lambda: r.execute_command("NOSUCH", "a", "b"), "unknown command 'NOSUCH', with args beginning with: 'a' 'b' "),
]:
    try:
        call()
        check(False, "%r succeeded" % want)
    except redis.ResponseError as e:
        check(str(e) == want, "unknown command: got %r want %r" % (str(e), want))
check(r.get("t:str") == "v", "the connection is usable after errors")

# --- pipelines ---
p = r.pipeline(transaction=False)
for i in range(1000):
    p.set("p:%d" % i, i)
for i in range(1000):
    p.incr("p:%d" % i)
for i in range(1000):
    p.get("p:%d" % i)
res = p.execute()
check(res[:1000] == [True] * 1000, "pipelined SETs")
check(res[1000:2000] == list(range(1, 1001)), "pipelined INCRs")
check(res[2000:] == [str(i + 1) for i in range(1000)], "pipelined GETs")
p = r.pipeline(transaction=False)
p.set("p:s", "text").incr("p:s").get("p:s")
res = p.execute(raise_on_error=False)
check(res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] == "text",
      "an error inside a pipeline: %r" % res)

# --- MULTI/EXEC through the transaction API ---
r.set("acct:a", 100)
r.set("acct:b", 0)
p = r.pipeline(transaction=True)
p.decrby("acct:a", 30).incrby("acct:b", 30).mget("acct:a", "acct:b")
res = p.execute()
check(res == [70, 30, ["70", "30"]], "MULTI/EXEC: %r" % res)
# A command refused while queued discards the whole transaction.
p = r.pipeline(transaction=True)
p.incrby("acct:a", 1).execute_command("NOSUCH", "x")
e = error_of(p.execute)
check("unknown command 'NOSUCH'" in str(e), "EXECABORT: %r" % e)
check(r.get("acct:a") == "70", "an aborted transaction changed a key")
# A command failing inside EXEC fails alone; the others apply, as in Redis.
p = r.pipeline(transaction=True)
p.incr("t:str").incrby("acct:b", 5)
res = p.execute(raise_on_error=False)
check(isinstance(res[0], redis.ResponseError) and res[1] == 35, "an error inside EXEC: %r" % res)
# WATCH: optimistic transactions through transaction(), which retries when
# a watched key changed between WATCH and EXEC.
other = client(decode_responses=True)
r.set("w:1", 10)
tries = []


def double(pipe):
    tries.append(1)
    v = int(pipe.get("w:1"))
    if len(tries) == 1:
        other.incrby("w:1", 5)  # a concurrent change: this try must abort
    pipe.multi()
    pipe.set("w:1", v * 2)


r.transaction(double, "w:1")
check(len(tries) == 2 and r.get("w:1") == "30", "transaction() retried after a concurrent change: %d tries, w:1=%s"
      % (len(tries), r.get("w:1")))
with r.pipeline() as pipe:
    pipe.watch("w:1")
    other.set("w:1", "changed")
    pipe.multi()
    pipe.set("w:1", "mine")
    e = error_of(pipe.execute)
    check(isinstance(e, redis.WatchError), "EXEC after a watched key changed: %r" % e)
check(r.get("w:1") == "changed", "an EXEC aborted by WATCH wrote")
with r.pipeline() as pipe:
    pipe.watch("w:1")
    other.set("w:2", "unrelated")
    pipe.multi()
    pipe.set("w:1", "mine")
    check(pipe.execute() == [True], "a change to another key aborted the transaction")
check(r.get("w:1") == "mine", "WATCH transaction's write")
with r.pipeline() as pipe:
    pipe.watch("w:1")
    pipe.unwatch()
    other.set("w:1", "again")
    pipe.multi()
    pipe.set("w:1", "after-unwatch")
    check(pipe.execute() == [True], "UNWATCH")

# --- SCAN over 10,000 keys ---
p = r.pipeline(transaction=False)
for i in range(10000):
    p.set("scan:%05d" % i, i)
p.execute()
seen = list(r.scan_iter(match="scan:*"))
check(len(seen) == 10000 and len(set(seen)) == 10000, "scan_iter: %d keys, %d distinct" % (len(seen), len(set(seen))))
check(set(seen) == {"scan:%05d" % i for i in range(10000)}, "scan_iter returned other keys")
seen = list(r.scan_iter(count=1000))
check(len(seen) == len(set(seen)) == r.dbsize(), "scan_iter over everything: %d keys, dbsize %d" % (len(seen), r.dbsize()))

# --- binary keys and values ---
b = client()  # bytes in, bytes out
every = bytes(range(256))
keys = [b"bin:" + bytes([i]) + b"\r\n\x00" for i in range(256)]
p = b.pipeline(transaction=False)
for i, k in enumerate(keys):
    p.set(k, bytes([i]) + every + b"\x00\r\n")
p.execute()
for i, k in enumerate(keys):
    check(b.get(k) == bytes([i]) + every + b"\x00\r\n", "binary value of key %d" % i)
check(b.mget(keys) == [bytes([i]) + every + b"\x00\r\n" for i in range(256)], "MGET of binary keys")
long_keys = [every[:255], every[1:]]  # a key holds at most 255 bytes
for k in long_keys:
    check(b.set(k, every) is True and b.get(k) == every, "a 255-byte key of every byte value")
check(set(b.scan_iter(match=b"bin:*")) == set(keys), "SCAN returns the binary keys exactly")
check(b.exists(*keys) == 256 and b.delete(*keys) == 256 and b.exists(*keys) == 0, "DEL of binary keys")
e = error_of(b.set, every, b"x")
check("key too long" in str(e), "a 256-byte key: %r" % e)

q = client()
check(q.quit() in (True, b"OK"), "QUIT")
# --- the asyncio client (redis.asyncio): its own connection and parser ---
async def async_checks():
    a = redis.asyncio.Redis(host="127.0.0.1", port=PORT, client_name="e2e-aio", decode_responses=True)
    check(await a.ping() is True, "asyncio PING")
    check(await a.client_getname() == "e2e-aio", "asyncio CLIENT SETNAME on connect")
    async with a.pipeline(transaction=True) as p:
        p.set("aio:1", "x").incr("aio:n").get("aio:1")
        res = await p.execute()
    check(res == [True, 1, "x"], "asyncio MULTI/EXEC: %r" % res)
    keys = [k async for k in a.scan_iter(match="scan:00*")]
    check(len(keys) == len(set(keys)) == 1000, "asyncio scan_iter: %d keys" % len(keys))
    try:
        await a.execute_command("NOSUCH", "a")
        check(False, "asyncio unknown command succeeded")
    except redis.ResponseError as e:
        check(str(e) == "unknown command 'NOSUCH', with args beginning with: 'a' ", "asyncio unknown: %s" % e)
    await a.close()


asyncio.run(async_checks())

print("redis-py %s: %d checks passed" % (redis.__version__, checks))
