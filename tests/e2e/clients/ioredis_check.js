// ioredis_check.js PORT -- drives `jetfs serve` with ioredis (pinned in
// package.json beside this file) through what applications do with it:
// connect (ioredis sends CLIENT SETINFO, CLIENT SETNAME, SELECT and INFO as
// its ready check; HELLO 3 is sent explicitly, as RESP3 clients do),
// pipeline(), multi() and watch(), SCAN over 10,000 keys with scanStream, binary keys
// and values, and calls jetfs does not support.  Exits non-zero, naming the
// check, at the first surprise.  Run by tests/e2e/test_resp_libs.sh.
"use strict";
const assert = require("node:assert/strict");
const Redis = require("ioredis");
const version = require("ioredis/package.json").version;

const PORT = Number(process.argv[2]);
let checks = 0;
let step = "start";

function client(opts) {
  // No retries: a refused connection must surface, not be retried forever.
  return new Redis({ host: "127.0.0.1", port: PORT, maxRetriesPerRequest: 0, retryStrategy: () => null, ...opts });
}

function ok(cond, what) {
  assert.ok(cond, what);
  checks++;
}

async function rejects(promise, what) {
  try {
    const got = await promise;
    assert.fail(`${what} should have failed, returned ${JSON.stringify(got)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    checks++;
    return e;
  }
}

function readyOrError(r) {
  return new Promise((resolve) => {
    r.once("ready", () => resolve(null));
    r.once("error", (e) => resolve(e));
  });
}

function scanAll(r, opts) {
  return new Promise((resolve, reject) => {
    const keys = [];
    const s = r.scanStream(opts);
    s.on("data", (batch) => keys.push(...batch));
    s.on("end", () => resolve(keys));
    s.on("error", reject);
  });
}

async function main() {
  // --- connecting, and what the library sends on connect ---
  step = "connect";
  const r = client({ connectionName: "e2e-io" });
  const err = await readyOrError(r);
  ok(err === null, `ready check (INFO) after CLIENT SETINFO/SETNAME: ${err}`);
  ok((await r.ping()) === "PONG", "PING");
  ok((await r.client("GETNAME")) === "e2e-io", "CLIENT SETNAME on connect");
  const info = await r.client("INFO");
  ok(/ lib-name=ioredis /.test(info) && info.includes(` lib-ver=${version}\n`) && / name=e2e-io /.test(info),
     `CLIENT SETINFO sent on connect is kept: ${info}`);
  ok((await r.select(0)) === "OK", "SELECT 0");
  ok((await r.client("SETINFO", "LIB-NAME", "ioredis")) === "OK", "CLIENT SETINFO LIB-NAME");
  let e = await rejects(r.call("HELLO", "3"), "HELLO 3");
  ok(e.message === "NOPROTO unsupported protocol version", `HELLO 3: ${e.message}`);
  const hello = await r.call("HELLO", "2", "SETNAME", "io-renamed");
  const h = {};
  for (let i = 0; i < hello.length; i += 2) h[hello[i]] = hello[i + 1];
  ok(h.proto === 2 && h.id === (await r.client("ID")) && h.role === "master", `HELLO 2: ${JSON.stringify(h)}`);
  ok((await r.client("GETNAME")) === "io-renamed", "HELLO SETNAME");
  e = await rejects(r.call("HELLO", "2", "AUTH", "bob", "pw"), "HELLO AUTH bob");
  ok(e.message.startsWith("WRONGPASS"), `HELLO AUTH bob: ${e.message}`);
  // Another database: the SELECT ioredis sends on connect is refused.
  step = "db 1";
  const r1 = client({ db: 1, lazyConnect: true });
  const selectErr = new Promise((resolve) => r1.once("error", resolve));
  await r1.connect();
  e = await selectErr;
  ok(e.message === "ERR DB index is out of range", `db: 1: ${e.message}`);
  r1.disconnect();

  step = "small commands";
  await r.set("t:str", "v");
  ok((await r.type("t:str")) === "string" && (await r.type("t:none")) === "none", "TYPE");
  ok((await r.ttl("t:str")) === -1 && (await r.ttl("t:none")) === -2, "TTL");
  ok((await r.pttl("t:str")) === -1 && (await r.pttl("t:none")) === -2, "PTTL");
  await r.set("t:ex", "v", "EX", 100);
  ok((await r.ttl("t:ex")) === 100 && (await r.persist("t:ex")) === 1 && (await r.ttl("t:ex")) === -1, "SET EX, TTL");
  ok((await r.pexpire("t:ex", 50000)) === 1 && (await r.getex("t:ex", "PERSIST")) === "v", "PEXPIRE, GETEX");
  ok((await r.incrbyfloat("t:f", 1.5)) === "1.5" && (await r.getdel("t:f")) === "1.5", "INCRBYFLOAT, GETDEL");
  const ci = await r.command("INFO", "get", "nosuch");
  ok(JSON.stringify(ci) === JSON.stringify([["get", 2, ["readonly"], 1, 1, 1, [], [], [], []], null]),
     `COMMAND INFO: ${JSON.stringify(ci)}`);

  // --- unsupported calls: Redis's own unknown-command error ---
  step = "unknown commands";
  for (const [p, want] of [
    [r.sadd("s", "m"), "ERR unknown command 'sadd', with args beginning with: 's' 'm' "],
    [r.hset("h", "f", "v"), "ERR unknown command 'hset', with args beginning with: 'h' 'f' 'v' "],
    [r.call("NOSUCH", "a", "b"), "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "],
  ]) {
    e = await rejects(p, want);
    ok(e.message === want, `unknown command: got ${JSON.stringify(e.message)} want ${JSON.stringify(want)}`);
  }
  ok((await r.get("t:str")) === "v", "usable after errors");

  // --- pipelines ---
  step = "pipeline";
  let p = r.pipeline();
  for (let i = 0; i < 1000; i++) p.set(`p:${i}`, i);
  for (let i = 0; i < 1000; i++) p.incr(`p:${i}`);
  for (let i = 0; i < 1000; i++) p.get(`p:${i}`);
  let res = await p.exec();
  ok(res.every(([er]) => er === null), "no errors in the pipeline");
  ok(res.slice(0, 1000).every(([, v]) => v === "OK"), "pipelined SETs");
  ok(res.slice(1000, 2000).every(([, v], i) => v === i + 1), "pipelined INCRs");
  ok(res.slice(2000).every(([, v], i) => v === String(i + 1)), "pipelined GETs");
  res = await r.pipeline().set("p:s", "text").incr("p:s").get("p:s").exec();
  ok(res[0][1] === "OK" && res[1][0] && /not an integer/.test(res[1][0].message) && res[2][1] === "text",
     "an error inside a pipeline");

  // --- MULTI/EXEC through multi() ---
  step = "multi";
  await r.mset("acct:a", 100, "acct:b", 0);
  res = await r.multi().decrby("acct:a", 30).incrby("acct:b", 30).mget("acct:a", "acct:b").exec();
  ok(JSON.stringify(res) === JSON.stringify([[null, 70], [null, 30], [null, ["70", "30"]]]), `multi: ${JSON.stringify(res)}`);
  e = await rejects(r.multi().incrby("acct:a", 1).call("NOSUCH", "x").exec(), "EXECABORT");
  ok(/EXECABORT/.test(e.message), `EXECABORT: ${e.message}`);
  ok((await r.get("acct:a")) === "70", "an aborted transaction changed a key");
  res = await r.multi().incr("t:str").incrby("acct:b", 5).exec();
  ok(res[0][0] && /not an integer/.test(res[0][0].message) && res[1][1] === 35, "an error inside EXEC fails alone");
  // WATCH: a change to a watched key by another client aborts EXEC (null).
  step = "watch";
  const other = client({});
  await r.set("w:1", 1);
  ok((await r.watch("w:1")) === "OK", "WATCH");
  await other.set("w:1", 2);
  res = await r.multi().set("w:1", 3).exec();
  ok(res === null, `EXEC after a watched key changed: ${JSON.stringify(res)}`);
  ok((await r.get("w:1")) === "2", "an EXEC aborted by WATCH wrote");
  await r.watch("w:1");
  await other.set("w:2", "unrelated");
  res = await r.multi().incr("w:1").exec();
  ok(JSON.stringify(res) === JSON.stringify([[null, 3]]), `a change to another key aborted: ${JSON.stringify(res)}`);
  await r.watch("w:1");
  await r.unwatch();
  await other.set("w:1", 7);
  res = await r.multi().incr("w:1").exec();
  ok(JSON.stringify(res) === JSON.stringify([[null, 8]]), `UNWATCH: ${JSON.stringify(res)}`);
  other.disconnect();

  // --- SCAN over 10,000 keys ---
  step = "scan";
  p = r.pipeline();
  for (let i = 0; i < 10000; i++) p.set(`scan:${String(i).padStart(5, "0")}`, i);
  await p.exec();
  let seen = await scanAll(r, { match: "scan:*" });
  ok(seen.length === 10000 && new Set(seen).size === 10000, `scanStream: ${seen.length} keys, ${new Set(seen).size} distinct`);
  ok(seen.every((k) => /^scan:\d{5}$/.test(k)), "scanStream returned other keys");
  seen = await scanAll(r, { count: 1000 });
  ok(seen.length === new Set(seen).size && seen.length === (await r.dbsize()), "scanStream over everything");

  // --- binary keys and values ---
  step = "binary";
  const every = Buffer.from([...Array(256).keys()]);
  const keys = [...Array(256).keys()].map((i) => Buffer.concat([Buffer.from("bin:"), Buffer.from([i, 13, 10, 0])]));
  const val = (i) => Buffer.concat([Buffer.from([i]), every, Buffer.from([0, 13, 10])]);
  p = r.pipeline();
  keys.forEach((k, i) => p.set(k, val(i)));
  await p.exec();
  for (let i = 0; i < 256; i++) ok((await r.getBuffer(keys[i])).equals(val(i)), `binary value of key ${i}`);
  const got = await r.mgetBuffer(keys);
  ok(got.every((v, i) => v.equals(val(i))), "MGET of binary keys");
  for (const k of [every.subarray(0, 255), every.subarray(1)]) {
    ok((await r.set(k, every)) === "OK" && (await r.getBuffer(k)).equals(every), "a 255-byte key of every byte value");
  }
  const found = await new Promise((resolve, reject) => {
    const out = [];
    const s = r.scanBufferStream({ match: "bin:*" });
    s.on("data", (b) => out.push(...b));
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
  ok(found.length === 256 && new Set(found.map((b) => b.toString("hex"))).size === 256 &&
     found.every((b) => keys.some((k) => k.equals(b))), "SCAN returns the binary keys exactly");
  ok((await r.del(...keys)) === 256 && (await r.exists(...keys)) === 0, "DEL of binary keys");

  step = "quit";
  ok((await r.quit()) === "OK", "QUIT");
  console.log(`ioredis ${version}: ${checks} checks passed`);
}

main().catch((e) => {
  console.error(`FAIL (ioredis ${version}, ${step}): ${e.message}`);
  process.exit(1);
});
