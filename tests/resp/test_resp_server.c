/*
 * test_resp_server.c -- the RESP server end to end over real sockets: an
 * instance in a scratch directory, the server on a free port, clients
 * that send raw bytes and compare the replies byte for byte.  Durability
 * is checked by stopping the server, terminating the instance, starting a
 * new one on the same directory and reading the keys through the engine.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jet.h"
#include "resp.h"
#include "rawclient.h"
#include "testutil.h"

static JET_INSTANCE inst;
static JET_SESID host_ses;
static char dir[1024], dbpath[1100];
static struct resp_server *srv;
static int port;
static int instance_seq;

/* ---- instance and server ---- */

static void inst_up(bool create)
{
    char name[32];
    JET_DBID db;
    snprintf(name, sizeof name, "resp%d", ++instance_seq);
    CU_ASSERT_FATAL(JetCreateInstance(&inst, name) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir) >= 0);
    CU_ASSERT_FATAL(JetInit(&inst) >= 0);
    CU_ASSERT_FATAL(JetBeginSession(inst, &host_ses, NULL, NULL) >= 0);
    if (create) {
        CU_ASSERT_FATAL(JetCreateDatabase(host_ses, dbpath, NULL, &db, 0) >= 0);
    } else {
        CU_ASSERT_FATAL(JetAttachDatabase(host_ses, dbpath, 0) >= 0);
    }
}

static void inst_down(void)
{
    CU_ASSERT(JetEndSession(host_ses, 0) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);
}

static void server_up_with(const struct resp_options *o)
{
    char why[256] = "";
    int rc = resp_server_start(inst, dbpath, o, &srv, why, sizeof why);
    if (rc < 0) fprintf(stderr, "resp_server_start: %d %s\n", rc, why);
    CU_ASSERT_FATAL(rc >= 0);
    port = resp_server_port(srv);
    CU_ASSERT_FATAL(port > 0);
}

static void server_up(void)
{
    struct resp_options o = {0};
    server_up_with(&o);
}

static void server_down(void)
{
    resp_server_stop(srv);
    srv = NULL;
}

/* A fresh instance and server for a test. */
static void fresh(const char *name)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    server_up();
}

static void teardown(void)
{
    server_down();
    inst_down();
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- a raw client ---- */

/* Connects to the server; -1 on failure (safe in any thread). */
static int try_connect(void) { return tu_tcp_connect(port); }

/* The main thread's connect: a failure ends the test. */
static int cconnect(void)
{
    int fd = try_connect();
    CU_ASSERT_FATAL(fd >= 0);
    return fd;
}

static void show(const char *label, const char *s, size_t n)
{
    fprintf(stderr, "%s: \"", label);
    for (size_t i = 0; i < n && i < 300; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r') fputs("\\r", stderr);
        else if (ch == '\n') fputs("\\n", stderr);
        else if (ch < 0x20 || ch >= 0x7f) fprintf(stderr, "\\x%02x", ch);
        else fputc(ch, stderr);
    }
    fprintf(stderr, "\"%s\n", n > 300 ? "..." : "");
}

/* Reads len(want) bytes and compares them. */
static bool expect(int fd, const char *want, size_t n)
{
    char *got = malloc(n + 1);
    if (!got) return false;
    bool ok = tu_recv_all(fd, got, n) && memcmp(got, want, n) == 0;
    if (!ok) {
        show("want", want, n);
        show("got ", got, n);
    }
    free(got);
    return ok;
}

/* The connection was closed by the server, with nothing more sent. */
static bool closed(int fd)
{
    char b;
    ssize_t r;
    do r = recv(fd, &b, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) return true;
    if (r > 0) {
        char more[200];
        ssize_t m = recv(fd, more, sizeof more - 1, MSG_DONTWAIT);
        more[m > 0 ? m : 0] = '\0';
        fprintf(stderr, "\n  expected a close, got '%c%s'\n", b, more);
    }
    else fprintf(stderr, "\n  expected a close, got %s\n", strerror(errno));
    return false;
}

/* Sends a command as a RESP array of its NULL-terminated arguments
 * (no CUnit calls: used from client threads too). */
static bool cmdv(int fd, const char *a0, va_list ap)
{
    const char *args[64];
    size_t n = 0, total = 16;
    for (const char *a = a0; a && n < 64; a = va_arg(ap, const char *)) {
        args[n++] = a;
        total += strlen(a) + 32;
    }
    /* One send per command: several small ones would meet Nagle and
     * delayed ACKs and measure 40 ms timers instead of the server. */
    char *req = malloc(total);
    if (!req) return false;
    size_t len = (size_t)sprintf(req, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++) {
        size_t an = strlen(args[i]);
        len += (size_t)sprintf(req + len, "$%zu\r\n", an);
        memcpy(req + len, args[i], an);
        memcpy(req + len + an, "\r\n", 2);
        len += an + 2;
    }
    bool ok = tu_send_all(fd, req, len);
    free(req);
    return ok;
}

static bool cmd(int fd, const char *a0, ...)
{
    va_list ap;
    va_start(ap, a0);
    bool ok = cmdv(fd, a0, ap);
    va_end(ap);
    return ok;
}

/* Sends a command and checks the reply, byte for byte. */
#define RT(fd, want, ...)                                                                                        \
    do {                                                                                                         \
        bool ok_ = cmd(fd, __VA_ARGS__, (const char *)NULL) && expect(fd, want, sizeof(want) - 1);                \
                                                           \
        if (!ok_) fprintf(stderr, "  at %s:%d\n", __FILE__, __LINE__);                                          \
        CU_ASSERT(ok_);                                                                                          \
    } while (0)

/* Sends raw bytes and checks the reply. */
#define RAW(fd, req, want)                                                                                       \
    do {                                                                                                         \
        bool ok_ = tu_send_all(fd, req, sizeof(req) - 1) && expect(fd, want, sizeof(want) - 1);                        \
                                                           \
        if (!ok_) fprintf(stderr, "  at %s:%d\n", __FILE__, __LINE__);                                          \
        CU_ASSERT(ok_);                                                                                          \
    } while (0)

/* Reads one integer reply ":n\r\n". */
static bool read_int(int fd, long long *v)
{
    char line[64];
    size_t n = 0;
    while (n < sizeof line - 1) {
        if (!tu_recv_all(fd, line + n, 1)) return false;
        if (line[n++] == '\n') break;
    }
    line[n] = '\0';
    return sscanf(line, ":%lld\r\n", v) == 1;
}

/* The value of key through the engine, after a restart (NULL: absent). */
static char *engine_get(const char *key)
{
    JET_DBID db;
    JET_TABLEID t;
    char buf[256];
    unsigned long actual = 0;
    char *out = NULL;
    CU_ASSERT_FATAL(JetOpenDatabase(host_ses, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(host_ses, db, RESP_TABLE, NULL, 0, 0, &t) >= 0);
    JET_ERR err = JetRetrieveKV(host_ses, t, key, (unsigned long)strlen(key), buf, sizeof buf - 1, &actual, 0);
    if (err >= 0) {
        buf[actual < sizeof buf - 1 ? actual : sizeof buf - 1] = '\0';
        out = strdup(buf);
    } else {
        CU_ASSERT_EQUAL(err, JET_errRecordNotFound);
    }
    CU_ASSERT(JetCloseTable(host_ses, t) >= 0);
    CU_ASSERT(JetCloseDatabase(host_ses, db, 0) >= 0);
    return out;
}

/* ---- tests ---- */

static void test_string_commands_byte_for_byte(void)
{
    fresh("resp_strings");
    int fd = cconnect();
    RT(fd, "+PONG\r\n", "PING");
    RT(fd, "$5\r\nhello\r\n", "PING", "hello");
    RT(fd, "$3\r\na b\r\n", "ECHO", "a b");
    RT(fd, "$-1\r\n", "GET", "k");
    RT(fd, "+OK\r\n", "SET", "k", "v1");
    RT(fd, "$2\r\nv1\r\n", "GET", "k");
    RT(fd, "+OK\r\n", "set", "k", "");
    RT(fd, "$0\r\n\r\n", "get", "k");
    RT(fd, "$-1\r\n", "SET", "k", "x", "NX");
    RT(fd, "+OK\r\n", "SET", "k2", "x", "NX");
    RT(fd, "$-1\r\n", "SET", "nokey", "x", "XX");
    RT(fd, "+OK\r\n", "SET", "k2", "y", "xx");
    RT(fd, "$1\r\ny\r\n", "SET", "k2", "z", "GET");
    RT(fd, "$-1\r\n", "SET", "k3", "w", "GET");
    RT(fd, "-ERR syntax error\r\n", "SET", "k", "v", "NX", "XX");
    RT(fd, "-ERR syntax error\r\n", "SET", "k", "v", "BOGUS");
    RT(fd, "+OK\r\n", "SET", "k", "v", "EX", "10");
    RT(fd, "+OK\r\n", "SET", "k", "v", "px", "100000");
    RT(fd, ":3\r\n", "EXISTS", "k", "k2", "k2", "none");
    RT(fd, ":2\r\n", "DEL", "k", "k2", "none", "k");
    RT(fd, ":0\r\n", "EXISTS", "k");
    RT(fd, ":1\r\n", "INCR", "n");
    RT(fd, ":42\r\n", "INCRBY", "n", "41");
    RT(fd, ":40\r\n", "DECRBY", "n", "2");
    RT(fd, ":39\r\n", "DECR", "n");
    RT(fd, "$2\r\n39\r\n", "GET", "n");
    RT(fd, ":-61\r\n", "INCRBY", "n", "-100");
    RT(fd, "-ERR value is not an integer or out of range\r\n", "INCR", "k3");
    RT(fd, "-ERR value is not an integer or out of range\r\n", "INCRBY", "n", "1.5");
    RT(fd, "-ERR value is not an integer or out of range\r\n", "INCRBY", "n", "99999999999999999999");
    RT(fd, "+OK\r\n", "SET", "big", "9223372036854775806");
    RT(fd, ":9223372036854775807\r\n", "INCR", "big");
    RT(fd, "-ERR increment or decrement would overflow\r\n", "INCR", "big");
    RT(fd, "$19\r\n9223372036854775807\r\n", "GET", "big");
    RT(fd, "+OK\r\n", "SET", "pad", " 1");
    RT(fd, "-ERR value is not an integer or out of range\r\n", "INCR", "pad");
    RT(fd, "+OK\r\n", "MSET", "a", "1", "b", "2", "c", "3");
    RT(fd, "*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n$1\r\n2\r\n", "MGET", "a", "zz", "c", "b");
    RT(fd, "*1\r\n$1\r\n1\r\n", "MGET", "a");
    RT(fd, "-ERR wrong number of arguments for 'mset' command\r\n", "MSET", "a", "1", "b");
    RT(fd, ":7\r\n", "DBSIZE"); /* k3 n big pad a b c */
    /* errors */
    RT(fd, "-ERR unknown command 'FOO', with args beginning with: 'bar' 'b z' \r\n", "FOO", "bar", "b z");
    RT(fd, "-ERR unknown command 'nope', with args beginning with: \r\n", "nope");
    RT(fd, "-ERR wrong number of arguments for 'get' command\r\n", "GET");
    RT(fd, "-ERR wrong number of arguments for 'get' command\r\n", "GET", "a", "b");
    RT(fd, "-ERR wrong number of arguments for 'incrby' command\r\n", "INCRBY", "a");
    RT(fd, "-ERR wrong number of arguments for 'ping' command\r\n", "PING", "a", "b");
    char longkey[300];
    memset(longkey, 'k', 256);
    longkey[256] = '\0';
    RT(fd, "-ERR key too long (max 255 bytes)\r\n", "SET", longkey, "v");
    RT(fd, "-ERR key too long (max 255 bytes)\r\n", "GET", longkey);
    RT(fd, "-ERR empty key not supported (keys are 1..255 bytes)\r\n", "SET", "", "v");
    longkey[255] = '\0';
    RT(fd, "+OK\r\n", "SET", longkey, "v");
    RT(fd, ":1\r\n", "DEL", longkey);
    /* what redis-cli and redis-benchmark send on connect */
    RT(fd, "*0\r\n", "COMMAND", "DOCS");
    RT(fd, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n", "CONFIG", "GET", "save");
    RT(fd, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n", "CONFIG", "GET", "appendonly");
    RT(fd, "*0\r\n", "CONFIG", "GET", "nosuchparam");
    RT(fd, "+OK\r\n", "CLIENT", "SETNAME", "tester");
    RT(fd, "$6\r\ntester\r\n", "CLIENT", "GETNAME");
    RT(fd, "-NOPROTO unsupported protocol version\r\n", "HELLO", "3");
    RT(fd, "+OK\r\n", "SELECT", "0");
    RT(fd, "-ERR DB index is out of range\r\n", "SELECT", "1");
    /* inline commands, pipelined */
    RAW(fd, "PING\r\nECHO \"x y\"\r\n\r\nGET a\n", "+PONG\r\n$3\r\nx y\r\n$1\r\n1\r\n");
    /* INFO has what redis-benchmark parses */
    CU_ASSERT(cmd(fd, "INFO", (const char *)NULL));
    char info[4096];
    ssize_t n = recv(fd, info, sizeof info - 1, 0);
    CU_ASSERT(n > 0);
    info[n > 0 ? n : 0] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(info, "# Server\r\nredis_version:7.0.0-jetfs\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(info, "# Keyspace\r\ndb0:keys=7,"));
    RT(fd, "+OK\r\n", "QUIT");
    CU_ASSERT(closed(fd));
    close(fd);
    teardown();
}

/* Reads one integer reply (":n\r\n"). */
static long long int_reply(int fd, const char *c0, const char *c1)
{
    char line[64];
    long long v = -999;
    CU_ASSERT_FATAL(cmd(fd, c0, c1, (const char *)NULL));
    size_t n = 0;
    while (n + 1 < sizeof line && tu_recv_all(fd, line + n, 1) && line[n] != '\n') n++;
    line[n] = '\0';
    CU_ASSERT(sscanf(line, ":%lld", &v) == 1);
    return v;
}

/* The rest of Redis's string family, byte for byte (Redis 7's texts). */
static void test_string_family(void)
{
    fresh("resp_string_family");
    int fd = cconnect();
    RT(fd, ":5\r\n", "APPEND", "s", "hello");
    RT(fd, ":11\r\n", "APPEND", "s", " world");
    RT(fd, ":11\r\n", "STRLEN", "s");
    RT(fd, ":0\r\n", "STRLEN", "none");
    RT(fd, "$5\r\nhello\r\n", "GETRANGE", "s", "0", "4");
    RT(fd, "$5\r\nworld\r\n", "GETRANGE", "s", "-5", "-1");
    RT(fd, "$11\r\nhello world\r\n", "GETRANGE", "s", "0", "100");
    RT(fd, "$0\r\n\r\n", "GETRANGE", "s", "5", "2");
    RT(fd, "$0\r\n\r\n", "GETRANGE", "s", "-1", "-5");
    RT(fd, "$0\r\n\r\n", "GETRANGE", "none", "0", "-1");
    RT(fd, "-ERR value is not an integer or out of range\r\n", "GETRANGE", "s", "a", "1");
    RT(fd, ":11\r\n", "SETRANGE", "s", "6", "WORLD");
    RT(fd, "$11\r\nhello WORLD\r\n", "GET", "s");
    RT(fd, ":5\r\n", "SETRANGE", "pad", "2", "abc");
    RT(fd, "$5\r\n\0\0abc\r\n", "GET", "pad");
    RT(fd, ":0\r\n", "SETRANGE", "none", "3", "");
    RT(fd, ":0\r\n", "EXISTS", "none");
    RT(fd, "-ERR offset is out of range\r\n", "SETRANGE", "s", "-1", "x");
    RT(fd, "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n", "SETRANGE", "s", "536870911", "x");
    RT(fd, "$11\r\nhello WORLD\r\n", "GETSET", "s", "new");
    RT(fd, "$-1\r\n", "GETSET", "g", "1");
    RT(fd, "$3\r\nnew\r\n", "GETDEL", "s");
    RT(fd, "$-1\r\n", "GETDEL", "s");
    RT(fd, ":1\r\n", "SETNX", "s", "a");
    RT(fd, ":0\r\n", "SETNX", "s", "b");
    RT(fd, "$1\r\na\r\n", "GET", "s");
    RT(fd, ":1\r\n", "MSETNX", "m1", "1", "m2", "2");
    RT(fd, ":0\r\n", "MSETNX", "m3", "3", "m1", "x");
    RT(fd, ":0\r\n", "EXISTS", "m3");
    RT(fd, "-ERR wrong number of arguments for 'msetnx' command\r\n", "MSETNX", "a", "1", "b");
    RT(fd, ":0\r\n", "DECR", "m1");
    RT(fd, ":-10\r\n", "DECRBY", "m1", "10");
    RT(fd, "$4\r\n10.5\r\n", "INCRBYFLOAT", "f", "10.5");
    RT(fd, "$4\r\n5.25\r\n", "INCRBYFLOAT", "f", "-5.25");
    RT(fd, "$4\r\n5000\r\n", "INCRBYFLOAT", "e", "5.0e3");
    RT(fd, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "f", "abc");
    RT(fd, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "s", "1");
    RT(fd, "-ERR increment would produce NaN or Infinity\r\n", "INCRBYFLOAT", "f", "inf");
    RT(fd, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "f", "1e5000");
    RT(fd, "+OK\r\n", "RENAME", "m2", "r");
    RT(fd, ":0\r\n", "EXISTS", "m2");
    RT(fd, "$1\r\n2\r\n", "GET", "r");
    RT(fd, "-ERR no such key\r\n", "RENAME", "m2", "x");
    RT(fd, "+OK\r\n", "RENAME", "r", "r");
    RT(fd, ":0\r\n", "RENAMENX", "r", "s");
    RT(fd, ":1\r\n", "RENAMENX", "r", "r2");
    RT(fd, "-ERR no such key\r\n", "RENAMENX", "r", "x");
    RT(fd, ":2\r\n", "UNLINK", "r2", "g", "none");
    RT(fd, "*2\r\n$2\r\nm1\r\n$3\r\npad\r\n", "KEYS", "[mp]*");
    RT(fd, "*0\r\n", "KEYS", "zz*");
    RT(fd, "$-1\r\n", "SET", "k", "v", "NX", "GET");
    RT(fd, "$1\r\nv\r\n", "SET", "k", "w", "NX", "GET");
    RT(fd, "$1\r\nv\r\n", "SET", "k", "w", "XX", "GET");
    RT(fd, "-ERR syntax error\r\n", "SET", "k", "v", "EX", "10", "PX", "10");
    RT(fd, "-ERR syntax error\r\n", "SET", "k", "v", "KEEPTTL", "EX", "10");
    RT(fd, "-ERR syntax error\r\n", "SET", "k", "v", "EX");
    RT(fd, "-ERR value is not an integer or out of range\r\n", "SET", "k", "v", "EX", "ten");
    RT(fd, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v", "EX", "0");
    RT(fd, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v", "PX", "-5");
    RT(fd, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v", "EX", "9223372036854775807");
    /* Other types' commands are unknown, as in a Redis without them. */
    RT(fd, "-ERR unknown command 'LPUSH', with args beginning with: 'l' 'a' \r\n", "LPUSH", "l", "a");
    RT(fd, "-ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' \r\n", "HSET", "h", "f", "v");
    RT(fd, "-ERR unknown command 'SADD', with args beginning with: 's' 'm' \r\n", "SADD", "s", "m");
    RT(fd, "-ERR unknown command 'ZADD', with args beginning with: 'z' '1' 'm' \r\n", "ZADD", "z", "1", "m");
    RT(fd, "-ERR unknown command 'XADD', with args beginning with: 'x' '*' 'f' 'v' \r\n", "XADD", "x", "*", "f", "v");
    close(fd);
    teardown();
}

/* Expiry as Redis defines it: replies, options, and keys that go on time. */
static void test_expiry(void)
{
    fresh("resp_expiry");
    int fd = cconnect();
    RT(fd, "+OK\r\n", "SET", "k", "v", "EX", "100");
    RT(fd, ":100\r\n", "TTL", "k");
    long long pttl = int_reply(fd, "PTTL", "k");
    CU_ASSERT(pttl > 99000 && pttl <= 100000);
    RT(fd, ":-2\r\n", "TTL", "none");
    RT(fd, ":-2\r\n", "EXPIRETIME", "none");
    RT(fd, "+OK\r\n", "SET", "p", "v");
    RT(fd, ":-1\r\n", "TTL", "p");
    RT(fd, ":-1\r\n", "PEXPIRETIME", "p");
    RT(fd, ":0\r\n", "PERSIST", "p");
    RT(fd, "+OK\r\n", "SETEX", "sx", "60", "v");
    RT(fd, ":60\r\n", "TTL", "sx");
    RT(fd, "+OK\r\n", "PSETEX", "sx", "70000", "v");
    RT(fd, ":70\r\n", "TTL", "sx");
    RT(fd, "-ERR invalid expire time in 'setex' command\r\n", "SETEX", "sx", "0", "v");
    RT(fd, "-ERR invalid expire time in 'psetex' command\r\n", "PSETEX", "sx", "-1", "v");
    RT(fd, ":1\r\n", "DEL", "sx");
    RT(fd, ":-2\r\n", "TTL", "sx");
    RT(fd, ":1\r\n", "PERSIST", "k");
    RT(fd, ":-1\r\n", "TTL", "k");
    /* The options. */
    RT(fd, ":0\r\n", "EXPIRE", "none", "10");
    RT(fd, ":0\r\n", "EXPIRE", "k", "10", "XX");
    RT(fd, ":0\r\n", "EXPIRE", "k", "10", "GT");
    RT(fd, ":1\r\n", "EXPIRE", "k", "10", "LT");
    RT(fd, ":0\r\n", "EXPIRE", "k", "20", "NX");
    RT(fd, ":1\r\n", "EXPIRE", "k", "20", "GT");
    RT(fd, ":0\r\n", "EXPIRE", "k", "30", "LT");
    RT(fd, ":1\r\n", "EXPIRE", "k", "30", "XX");
    RT(fd, ":30\r\n", "TTL", "k");
    RT(fd, ":1\r\n", "EXPIREAT", "k", "4102444800");
    RT(fd, ":4102444800\r\n", "EXPIRETIME", "k");
    RT(fd, ":1\r\n", "PEXPIREAT", "k", "4102444800123");
    RT(fd, ":4102444800123\r\n", "PEXPIRETIME", "k");
    RT(fd, "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n", "EXPIRE", "k", "1", "NX", "XX");
    RT(fd, "-ERR GT and LT options at the same time are not compatible\r\n", "EXPIRE", "k", "1", "GT", "LT");
    RT(fd, "-ERR Unsupported option FOO\r\n", "EXPIRE", "k", "1", "FOO");
    RT(fd, "-ERR value is not an integer or out of range\r\n", "EXPIRE", "k", "soon");
    RT(fd, "-ERR invalid expire time in 'expire' command\r\n", "EXPIRE", "k", "9223372036854775807");
    RT(fd, "-ERR invalid expire time in 'pexpire' command\r\n", "PEXPIRE", "k", "9223372036854775807");
    /* A time already past deletes the key. */
    RT(fd, ":1\r\n", "EXPIRE", "p", "-1");
    RT(fd, ":0\r\n", "EXISTS", "p");
    /* Which writes keep an expiry: SET drops it, KEEPTTL keeps it,
     * INCR/APPEND keep it, RENAME moves it, GETEX changes it. */
    RT(fd, "+OK\r\n", "SET", "k", "1", "EX", "50");
    RT(fd, ":2\r\n", "INCR", "k");
    RT(fd, ":2\r\n", "APPEND", "k", "0");
    RT(fd, ":50\r\n", "TTL", "k");
    RT(fd, "+OK\r\n", "SET", "k", "x", "KEEPTTL");
    RT(fd, ":50\r\n", "TTL", "k");
    RT(fd, "+OK\r\n", "RENAME", "k", "k2");
    RT(fd, ":-2\r\n", "TTL", "k");
    RT(fd, ":50\r\n", "TTL", "k2");
    RT(fd, "+OK\r\n", "SET", "k2", "y");
    RT(fd, ":-1\r\n", "TTL", "k2");
    RT(fd, "$1\r\ny\r\n", "GETEX", "k2", "EX", "40");
    RT(fd, ":40\r\n", "TTL", "k2");
    RT(fd, "$1\r\ny\r\n", "GETEX", "k2", "PERSIST");
    RT(fd, ":-1\r\n", "TTL", "k2");
    RT(fd, "$1\r\ny\r\n", "GETEX", "k2", "PXAT", "1");
    RT(fd, ":0\r\n", "EXISTS", "k2");
    RT(fd, "$-1\r\n", "GETEX", "none", "EX", "1");
    RT(fd, "-ERR syntax error\r\n", "GETEX", "k2", "EX", "1", "PERSIST");
    RT(fd, "-ERR invalid expire time in 'getex' command\r\n", "GETEX", "k2", "EX", "0");
    /* 100 ms keys expire on time, for every command. */
    RT(fd, "+OK\r\n", "SET", "t1", "1", "PX", "100");
    RT(fd, "+OK\r\n", "SET", "t2", "2", "PX", "100");
    RT(fd, "+OK\r\n", "SET", "t3", "3", "PX", "100");
    RT(fd, ":1\r\n", "PEXPIRE", "t3", "100");
    RT(fd, "+OK\r\n", "SET", "keep", "k");
    RT(fd, "$1\r\n1\r\n", "GET", "t1");
    RT(fd, ":4\r\n", "DBSIZE");
    usleep(150 * 1000);
    RT(fd, "$-1\r\n", "GET", "t1");
    RT(fd, ":0\r\n", "EXISTS", "t1", "t2", "t3");
    RT(fd, ":-2\r\n", "TTL", "t2");
    RT(fd, "+none\r\n", "TYPE", "t2");
    RT(fd, ":0\r\n", "STRLEN", "t2");
    RT(fd, "*2\r\n$-1\r\n$1\r\nk\r\n", "MGET", "t3", "keep");
    RT(fd, "*1\r\n$4\r\nkeep\r\n", "KEYS", "*");
    RT(fd, "*2\r\n$1\r\n0\r\n*1\r\n$4\r\nkeep\r\n", "SCAN", "0");
    RT(fd, "$4\r\nkeep\r\n", "RANDOMKEY");
    RT(fd, ":1\r\n", "INCR", "t1"); /* from nothing, and without the old expiry */
    RT(fd, ":-1\r\n", "TTL", "t1");
    RT(fd, "+OK\r\n", "SET", "t2", "new", "KEEPTTL");
    RT(fd, ":-1\r\n", "TTL", "t2");
    RT(fd, ":1\r\n", "SETNX", "t3", "x");
    /* The sweep reclaims what nobody reads: DBSIZE counts it until then. */
    RT(fd, "+OK\r\n", "FLUSHDB");
    RT(fd, "+OK\r\n", "MSET", "a", "1", "b", "2", "c", "3");
    RT(fd, ":1\r\n", "PEXPIRE", "a", "50");
    RT(fd, ":1\r\n", "PEXPIRE", "b", "50");
    RT(fd, ":3\r\n", "DBSIZE");
    double t0 = now_s();
    long long n = 3;
    while (n != 1 && now_s() - t0 < 5) {
        usleep(20 * 1000);
        n = int_reply(fd, "DBSIZE", NULL);
    }
    CU_ASSERT_EQUAL(n, 1);
    RT(fd, "*1\r\n$1\r\nc\r\n", "KEYS", "*");
    /* Inside MULTI too. */
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "SET", "m", "1", "EX", "10");
    RT(fd, "+QUEUED\r\n", "TTL", "m");
    RT(fd, "*2\r\n+OK\r\n:10\r\n", "EXEC");
    close(fd);
    teardown();
}

/* Deadlines are durable like the values: an acknowledged expiry survives
 * a restart, and a key whose deadline passed meanwhile is gone. */
static void test_expiry_survives_restart(void)
{
    fresh("resp_expiry_restart");
    int fd = cconnect();
    RT(fd, "+OK\r\n", "SET", "hour", "v", "EX", "3600");
    RT(fd, "+OK\r\n", "SET", "soon", "v", "PX", "200");
    RT(fd, "+OK\r\n", "SET", "plain", "v");
    close(fd);
    server_down();
    inst_down();
    usleep(300 * 1000);
    inst_up(false);
    server_up();
    fd = cconnect();
    long long ttl = int_reply(fd, "TTL", "hour");
    CU_ASSERT(ttl >= 3598 && ttl <= 3600);
    RT(fd, "$-1\r\n", "GET", "soon");
    RT(fd, ":-1\r\n", "TTL", "plain");
    close(fd);
    teardown();
}

static void test_pipelined_requests_answer_in_order(void)
{
    fresh("resp_pipeline");
    int fd = cconnect();
    char req[64 * 200], want[64 * 200];
    size_t rn = 0, wn = 0;
    for (int i = 0; i < 100; i++) {
        rn += (size_t)sprintf(req + rn, "*3\r\n$3\r\nSET\r\n$4\r\nk%03d\r\n$3\r\n%03d\r\n", i, i);
        wn += (size_t)sprintf(want + wn, "+OK\r\n");
        rn += (size_t)sprintf(req + rn, "*2\r\n$3\r\nGET\r\n$4\r\nk%03d\r\n", i);
        wn += (size_t)sprintf(want + wn, "$3\r\n%03d\r\n", i);
    }
    CU_ASSERT(tu_send_all(fd, req, rn));
    CU_ASSERT(expect(fd, want, wn));
    RT(fd, ":100\r\n", "DBSIZE");
    close(fd);
    teardown();
}

/* Collects every key SCAN returns for a pattern (NULL: all). */
static int scan_all(int fd, const char *match, const char *count, char seen[][8], int max)
{
    char cursor[32] = "0";
    int n = 0, calls = 0;
    do {
        bool sent = match ? cmd(fd, "SCAN", cursor, "MATCH", match, "COUNT", count, (const char *)NULL)
                          : cmd(fd, "SCAN", cursor, "COUNT", count, (const char *)NULL);
        CU_ASSERT_FATAL(sent);
        char line[64];
        size_t ln = 0;
        long long len, elems;
        /* *2\r\n$<len>\r\n<cursor>\r\n*<elems>\r\n then elements */
        CU_ASSERT_FATAL(expect(fd, "*2\r\n", 4));
        for (ln = 0; ln < sizeof line - 1 && tu_recv_all(fd, line + ln, 1) && line[ln] != '\n'; ln++) {
        }
        line[ln + 1] = '\0';
        CU_ASSERT_FATAL(sscanf(line, "$%lld", &len) == 1 && len > 0 && len < 30);
        CU_ASSERT_FATAL(tu_recv_all(fd, cursor, (size_t)len + 2));
        cursor[len] = '\0';
        for (ln = 0; ln < sizeof line - 1 && tu_recv_all(fd, line + ln, 1) && line[ln] != '\n'; ln++) {
        }
        line[ln + 1] = '\0';
        CU_ASSERT_FATAL(sscanf(line, "*%lld", &elems) == 1);
        for (long long e = 0; e < elems; e++) {
            for (ln = 0; ln < sizeof line - 1 && tu_recv_all(fd, line + ln, 1) && line[ln] != '\n'; ln++) {
            }
            line[ln + 1] = '\0';
            CU_ASSERT_FATAL(sscanf(line, "$%lld", &len) == 1 && len > 0 && len < 8);
            CU_ASSERT_FATAL(n < max);
            CU_ASSERT_FATAL(tu_recv_all(fd, seen[n], (size_t)len + 2));
            seen[n][len] = '\0';
            n++;
        }
        CU_ASSERT_FATAL(++calls < 1000);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

static void test_scan_dbsize_flushdb(void)
{
    fresh("resp_scan");
    int fd = cconnect();
    char key[16], val[16];
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        snprintf(val, sizeof val, "%d", i);
        RT(fd, "+OK\r\n", "SET", key, val);
    }
    RT(fd, "+OK\r\n", "SET", "other", "x");
    RT(fd, ":26\r\n", "DBSIZE");
    char seen[64][8];
    int n = scan_all(fd, NULL, "10", seen, 64);
    CU_ASSERT_EQUAL(n, 26);
    for (int i = 0; i < n && i < 25; i++) { /* key order, each once */
        snprintf(key, sizeof key, "k%02d", i);
        CU_ASSERT_STRING_EQUAL(seen[i], key);
    }
    CU_ASSERT_STRING_EQUAL(seen[25], "other");
    n = scan_all(fd, "k1*", "3", seen, 64);
    CU_ASSERT_EQUAL(n, 10);
    for (int i = 0; i < n; i++) CU_ASSERT(seen[i][0] == 'k' && seen[i][1] == '1');
    n = scan_all(fd, "*[3-4]", "7", seen, 64);
    CU_ASSERT_EQUAL(n, 6); /* k03 k04 k13 k14 k23 k24 */
    n = scan_all(fd, "?th?r", "1", seen, 64);
    CU_ASSERT_EQUAL(n, 1);
    RT(fd, "*2\r\n$1\r\n0\r\n*0\r\n", "SCAN", "0", "MATCH", "zzz*");
    RT(fd, "*2\r\n$1\r\n0\r\n*0\r\n", "SCAN", "0", "TYPE", "hash", "COUNT", "100");
    RT(fd, "-ERR invalid cursor\r\n", "SCAN", "abc");
    RT(fd, "-ERR invalid or expired cursor\r\n", "SCAN", "12345");
    RT(fd, "-ERR syntax error\r\n", "SCAN", "0", "COUNT", "0");
    RT(fd, "-ERR syntax error\r\n", "SCAN", "0", "MATCH");
    RT(fd, "+OK\r\n", "FLUSHDB");
    RT(fd, ":0\r\n", "DBSIZE");
    RT(fd, "*2\r\n$1\r\n0\r\n*0\r\n", "SCAN", "0");

    /* More keys than one FLUSHDB batch. */
    size_t cap = 2600 * 40, rn = 0;
    char *req = malloc(cap);
    CU_ASSERT_FATAL(req != NULL);
    rn += (size_t)sprintf(req, "*%d\r\n$4\r\nMSET\r\n", 1 + 2 * 2500);
    for (int i = 0; i < 2500; i++) rn += (size_t)sprintf(req + rn, "$6\r\nm%05d\r\n$1\r\nv\r\n", i);
    CU_ASSERT(tu_send_all(fd, req, rn));
    CU_ASSERT(expect(fd, "+OK\r\n", 5));
    free(req);
    RT(fd, ":2500\r\n", "DBSIZE");
    RT(fd, "+OK\r\n", "FLUSHDB", "SYNC");
    RT(fd, ":0\r\n", "DBSIZE");
    close(fd);
    teardown();
}

static void test_multi_exec_discard(void)
{
    fresh("resp_multi");
    int fd = cconnect();
    RT(fd, "+OK\r\n", "MSET", "a", "100", "b", "0");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "DECRBY", "a", "30");
    RT(fd, "+QUEUED\r\n", "INCRBY", "b", "30");
    RT(fd, "+QUEUED\r\n", "MGET", "a", "b");
    RT(fd, "*3\r\n:70\r\n:30\r\n*2\r\n$2\r\n70\r\n$2\r\n30\r\n", "EXEC");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "SET", "x", "1");
    RT(fd, "+OK\r\n", "DISCARD");
    RT(fd, "$-1\r\n", "GET", "x");
    RT(fd, "-ERR EXEC without MULTI\r\n", "EXEC");
    RT(fd, "-ERR DISCARD without MULTI\r\n", "DISCARD");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "-ERR MULTI calls can not be nested\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "SET", "x", "1");
    RT(fd, "-ERR unknown command 'BOGUS', with args beginning with: \r\n", "BOGUS");
    RT(fd, "-EXECABORT Transaction discarded because of previous errors.\r\n", "EXEC");
    RT(fd, "$-1\r\n", "GET", "x");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "-ERR wrong number of arguments for 'get' command\r\n", "GET");
    RT(fd, "-EXECABORT Transaction discarded because of previous errors.\r\n", "EXEC");
    /* A command error takes its slot; the others commit (as Redis). */
    RT(fd, "+OK\r\n", "SET", "s", "str");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "INCR", "s");
    RT(fd, "+QUEUED\r\n", "SET", "y", "1");
    RT(fd, "*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n", "EXEC");
    RT(fd, "$1\r\n1\r\n", "GET", "y");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "-ERR Command not allowed inside a transaction\r\n", "SHUTDOWN");
    RT(fd, "-EXECABORT Transaction discarded because of previous errors.\r\n", "EXEC");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "*0\r\n", "EXEC");
    /* FLUSHDB inside EXEC, with a write after it, is one transaction. */
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "FLUSHDB");
    RT(fd, "+QUEUED\r\n", "SET", "after", "1");
    RT(fd, "+QUEUED\r\n", "DBSIZE");
    RT(fd, "*3\r\n+OK\r\n+OK\r\n:1\r\n", "EXEC");
    close(fd);
    teardown();
}

/* Transfers between two keys under MULTI while readers check the sum. */
struct transfer_arg {
    int rounds;
    atomic_bool done;
    atomic_int bad_sums, reads, errors;
};

static void *transfer_thread(void *arg)
{
    struct transfer_arg *t = arg;
    int fd = try_connect();
    for (int i = 0; fd >= 0 && i < t->rounds; i++) {
        const char *from = i % 2 ? "acct:a" : "acct:b", *to = i % 2 ? "acct:b" : "acct:a";
        long long x, y;
        bool ok = tu_send_all(fd, "*1\r\n$5\r\nMULTI\r\n", 15) && expect(fd, "+OK\r\n", 5) &&
                  cmd(fd, "DECRBY", from, "7", (const char *)NULL) && cmd(fd, "INCRBY", to, "7", (const char *)NULL) &&
                  expect(fd, "+QUEUED\r\n+QUEUED\r\n", 18) && cmd(fd, "EXEC", (const char *)NULL) &&
                  expect(fd, "*2\r\n", 4) && read_int(fd, &x) && read_int(fd, &y);
        if (!ok) atomic_fetch_add(&t->errors, 1);
    }
    if (fd < 0) atomic_fetch_add(&t->errors, 1);
    else close(fd);
    atomic_store(&t->done, true);
    return NULL;
}

static void *sum_reader_thread(void *arg)
{
    struct transfer_arg *t = arg;
    int fd = try_connect();
    if (fd < 0) atomic_fetch_add(&t->errors, 1);
    while (fd >= 0 && !atomic_load(&t->done)) {
        char buf[128];
        if (!cmd(fd, "MGET", "acct:a", "acct:b", (const char *)NULL)) break;
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0) break;
        buf[n] = '\0';
        long long a, b;
        int la, lb;
        if (sscanf(buf, "*2\r\n$%d\r\n%lld\r\n$%d\r\n%lld\r\n", &la, &a, &lb, &b) != 4 || a + b != 1000)
            atomic_fetch_add(&t->bad_sums, 1);
        atomic_fetch_add(&t->reads, 1);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void test_multi_exec_is_atomic(void)
{
    fresh("resp_atomic");
    int fd = cconnect();
    RT(fd, "+OK\r\n", "MSET", "acct:a", "500", "acct:b", "500");
    struct transfer_arg t = {.rounds = 150};
    pthread_t w, r1, r2;
    CU_ASSERT_FATAL(pthread_create(&r1, NULL, sum_reader_thread, &t) == 0);
    CU_ASSERT_FATAL(pthread_create(&r2, NULL, sum_reader_thread, &t) == 0);
    CU_ASSERT_FATAL(pthread_create(&w, NULL, transfer_thread, &t) == 0);
    pthread_join(w, NULL);
    pthread_join(r1, NULL);
    pthread_join(r2, NULL);
    CU_ASSERT_EQUAL(atomic_load(&t.bad_sums), 0);
    CU_ASSERT_EQUAL(atomic_load(&t.errors), 0);
    CU_ASSERT(atomic_load(&t.reads) > 0);
    RT(fd, "*2\r\n$3\r\n500\r\n$3\r\n500\r\n", "MGET", "acct:a", "acct:b"); /* an even number of rounds */
    close(fd);
    teardown();
}

struct incr_arg {
    int n;
    atomic_int errors;
};

static void *incr_thread(void *arg)
{
    struct incr_arg *a = arg;
    int fd = try_connect();
    long long prev = 0;
    if (fd < 0) atomic_fetch_add(&a->errors, 1);
    for (int i = 0; fd >= 0 && i < a->n; i++) {
        long long v;
        if (!cmd(fd, "INCR", "counter", (const char *)NULL) || !read_int(fd, &v) || v <= prev)
            atomic_fetch_add(&a->errors, 1);
        prev = v;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void test_concurrent_incr_counts_exactly(void)
{
    fresh("resp_incr");
    enum { THREADS = 8, EACH = 200 };
    struct incr_arg a = {.n = EACH};
    pthread_t th[THREADS];
    double t0 = now_s();
    for (int i = 0; i < THREADS; i++) CU_ASSERT_FATAL(pthread_create(&th[i], NULL, incr_thread, &a) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    fprintf(stderr, "\n  %d durable INCRs from %d clients in %.2f s\n", THREADS * EACH, THREADS, now_s() - t0);
    CU_ASSERT_EQUAL(atomic_load(&a.errors), 0);
    int fd = cconnect();
    RT(fd, "$4\r\n1600\r\n", "GET", "counter");
    close(fd);
    /* Durable: still there after a restart of the instance. */
    teardown();
    inst_up(false);
    char *v = engine_get("counter");
    CU_ASSERT(v && strcmp(v, "1600") == 0);
    free(v);
    inst_down();
}

/* Writers add keys two at a time (MSET) while readers ask DBSIZE: every
 * count is even, never decreases, and the last one is exact. */
struct dbsize_arg {
    int id, rounds;
    atomic_int *writers_left, *errors, *odd, *decreasing, *reads;
};

static void *pair_writer_thread(void *arg)
{
    struct dbsize_arg *a = arg;
    int fd = try_connect();
    if (fd < 0) atomic_fetch_add(a->errors, 1);
    for (int i = 0; fd >= 0 && i < a->rounds; i++) {
        char k1[32], k2[32];
        snprintf(k1, sizeof k1, "a:w%d:%d", a->id, i); /* far apart in key order */
        snprintf(k2, sizeof k2, "z:w%d:%d", a->id, i);
        if (!cmd(fd, "MSET", k1, "1", k2, "2", (const char *)NULL) || !expect(fd, "+OK\r\n", 5))
            atomic_fetch_add(a->errors, 1);
    }
    if (fd >= 0) close(fd);
    atomic_fetch_sub(a->writers_left, 1);
    return NULL;
}

static void *dbsize_reader_thread(void *arg)
{
    struct dbsize_arg *a = arg;
    int fd = try_connect();
    long long prev = 0;
    if (fd < 0) atomic_fetch_add(a->errors, 1);
    while (fd >= 0 && atomic_load(a->writers_left) > 0) {
        long long v;
        if (!cmd(fd, "DBSIZE", (const char *)NULL) || !read_int(fd, &v)) {
            atomic_fetch_add(a->errors, 1);
            break;
        }
        if (v % 2) atomic_fetch_add(a->odd, 1);
        if (v < prev) atomic_fetch_add(a->decreasing, 1);
        prev = v;
        atomic_fetch_add(a->reads, 1);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void test_dbsize_is_exact_under_concurrent_writes(void)
{
    fresh("resp_dbsize");
    enum { WRITERS = 4, READERS = 2, ROUNDS = 100 };
    atomic_int left = WRITERS, errors = 0, odd = 0, decreasing = 0, reads = 0;
    struct dbsize_arg args[WRITERS + READERS];
    pthread_t th[WRITERS + READERS];
    for (int i = 0; i < WRITERS + READERS; i++) {
        args[i] = (struct dbsize_arg){i, ROUNDS, &left, &errors, &odd, &decreasing, &reads};
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, i < WRITERS ? pair_writer_thread : dbsize_reader_thread,
                                       &args[i]) == 0);
    }
    for (int i = 0; i < WRITERS + READERS; i++) pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&errors), 0);
    CU_ASSERT_EQUAL(atomic_load(&odd), 0);
    CU_ASSERT_EQUAL(atomic_load(&decreasing), 0);
    CU_ASSERT(atomic_load(&reads) > 0);
    int fd = cconnect();
    RT(fd, ":800\r\n", "DBSIZE");
    close(fd);
    teardown();
}

static void test_malformed_input_hurts_only_its_sender(void)
{
    fresh("resp_malformed");
    int good = cconnect();
    RT(good, "+OK\r\n", "SET", "before", "1");

    static const struct {
        const char *name, *req;
        size_t len;
        const char *reply; /* NULL: just a close */
    } bad[] = {
        {"negative bulk", "*1\r\n$-5\r\n", 9, "-ERR Protocol error: invalid bulk length\r\n"},
        {"garbage length", "*x\r\n", 4, "-ERR Protocol error: invalid multibulk length\r\n"},
        {"huge bulk", "*1\r\n$999999999999\r\n", 19, "-ERR Protocol error: invalid bulk length\r\n"},
        {"not a bulk", "*2\r\n$3\r\nGET\r\n+k\r\n", 17, "-ERR Protocol error: expected '$', got '+'\r\n"},
        {"binary", "\x00\xff\x01\r\n", 5, "-ERR unknown command '"}, /* an inline command named \0... */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int fd = cconnect();
        CU_ASSERT(tu_send_all(fd, bad[k].req, bad[k].len));
        bool ok = expect(fd, bad[k].reply, strlen(bad[k].reply));
        if (!ok) fprintf(stderr, "  bad input '%s'\n", bad[k].name);
        CU_ASSERT(ok);
        if (k < 4) CU_ASSERT(closed(fd));
        close(fd);
        RT(good, ":1\r\n", "EXISTS", "before");
    }

    /* An inline line that never ends: refused at 64 KiB. */
    int fd = cconnect();
    char *junk = malloc(70000);
    CU_ASSERT_FATAL(junk != NULL);
    for (size_t i = 0; i < 70000; i++) junk[i] = (char)('A' + i % 26);
    tu_send_all(fd, junk, 70000); /* may fail part way once the server closed */
    CU_ASSERT(expect(fd, "-ERR Protocol error: too big inline request\r\n", 45));
    close(fd);
    free(junk);

    /* A 512 MiB bulk announced and never sent, a truncated frame left
     * hanging, and one whose sender goes away: the good client goes on. */
    int hang = cconnect();
    CU_ASSERT(tu_send_all(hang, "*3\r\n$3\r\nSET\r\n$1\r\nh\r\n$536870000\r\nabc", 35));
    int trunc = cconnect();
    CU_ASSERT(tu_send_all(trunc, "*2\r\n$3\r\nGET\r\n$5\r\nab", 19));
    int gone = cconnect();
    CU_ASSERT(tu_send_all(gone, "*2\r\n$3\r\nSET\r\n", 13));
    close(gone);
    char key[16];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "ack%d", i);
        RT(good, "+OK\r\n", "SET", key, key);
    }
    RT(good, ":51\r\n", "DBSIZE");

    /* Stop with clients blocked mid-frame: prompt. */
    double t0 = now_s();
    teardown();
    CU_ASSERT(now_s() - t0 < 5.0);
    CU_ASSERT(closed(hang));
    CU_ASSERT(closed(trunc));
    CU_ASSERT(closed(good));
    close(hang);
    close(trunc);
    close(good);

    /* Every acknowledged write survived; the unfinished ones did not happen. */
    inst_up(false);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "ack%d", i);
        char *v = engine_get(key);
        CU_ASSERT(v && strcmp(v, key) == 0);
        free(v);
    }
    char *v = engine_get("h");
    CU_ASSERT_PTR_NULL(v);
    free(v);
    inst_down();
}

static void test_limits_values_and_requests(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_limits"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    struct resp_options o = {.max_clients = 2, .max_request_bytes = 4096};
    server_up_with(&o);
    int a = cconnect(), b = cconnect();
    RT(a, "+PONG\r\n", "PING");
    RT(b, "+PONG\r\n", "PING");
    int c = cconnect();
    CU_ASSERT(expect(c, "-ERR max number of clients reached\r\n", 36));
    CU_ASSERT(closed(c));
    close(c);
    /* A value over max_request_bytes is a protocol error: that client goes. */
    char big[5000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    RT(b, "+OK\r\n", "SET", "fits", "1234");
    CU_ASSERT(cmd(b, "SET", "k", big, (const char *)NULL));
    CU_ASSERT(expect(b, "-ERR Protocol error: invalid bulk length\r\n", 42));
    CU_ASSERT(closed(b));
    close(b);
    /* Its slot comes back once the server has seen it go. */
    double t0 = now_s();
    bool ok = false;
    while (!ok && now_s() - t0 < 5) {
        if ((c = try_connect()) < 0) break;
        char r[8] = "";
        ok = cmd(c, "PING", (const char *)NULL) && tu_recv_all(c, r, 7) && memcmp(r, "+PONG\r\n", 7) == 0;
        close(c);
        if (!ok) usleep(10000);
    }
    CU_ASSERT(ok);
    RT(a, "+PONG\r\n", "PING");
    close(a);
    teardown();

    /* The engine's value limit (64 MiB), with the default request limit. */
    inst_up(false);
    server_up();
    a = cconnect();
    size_t vn = (size_t)JET_cbValueMost + 1;
    char hdr[64];
    int hn = snprintf(hdr, sizeof hdr, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vn);
    char *v = malloc(vn + 2);
    CU_ASSERT_FATAL(v != NULL);
    memset(v, 'x', vn);
    memcpy(v + vn, "\r\n", 2);
    CU_ASSERT(tu_send_all(a, hdr, (size_t)hn) && tu_send_all(a, v, vn + 2));
    CU_ASSERT(expect(a, "-ERR value too large (max 67108864 bytes)\r\n", 43));
    /* 1 MiB round trip */
    size_t mn = 1u << 20;
    hn = snprintf(hdr, sizeof hdr, "*3\r\n$3\r\nSET\r\n$3\r\nmib\r\n$%zu\r\n", mn);
    memcpy(v + mn, "\r\n", 2);
    CU_ASSERT(tu_send_all(a, hdr, (size_t)hn) && tu_send_all(a, v, mn + 2));
    CU_ASSERT(expect(a, "+OK\r\n", 5));
    CU_ASSERT(cmd(a, "GET", "mib", (const char *)NULL));
    hn = snprintf(hdr, sizeof hdr, "$%zu\r\n", mn);
    CU_ASSERT(expect(a, hdr, (size_t)hn));
    CU_ASSERT(expect(a, v, mn + 2));
    free(v);
    close(a);
    teardown();
}

static atomic_int shutdown_calls;
static void on_shutdown_count(void *arg)
{
    (void)arg;
    atomic_fetch_add(&shutdown_calls, 1);
}

/* on_shutdown that stops the server itself, from the connection thread. */
static atomic_bool stopped_inside;
static void on_shutdown_stop(void *arg)
{
    resp_server_stop(*(struct resp_server **)arg);
    atomic_store(&stopped_inside, true);
}

static void test_shutdown(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_shutdown"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    struct resp_options o = {.on_shutdown = on_shutdown_count};
    server_up_with(&o);
    int other = cconnect();
    int fd = cconnect();
    RT(fd, "+OK\r\n", "SET", "k", "v");
    RT(fd, "-ERR syntax error\r\n", "SHUTDOWN", "LATER");
    CU_ASSERT(cmd(fd, "SHUTDOWN", "NOSAVE", (const char *)NULL));
    CU_ASSERT(closed(fd)); /* no reply, as Redis */
    close(fd);
    /* The close comes first, then on_shutdown: poll for it. */
    double t0 = now_s();
    while (atomic_load(&shutdown_calls) == 0 && now_s() - t0 < 5) usleep(1000);
    CU_ASSERT_EQUAL(atomic_load(&shutdown_calls), 1);
    RT(other, "$1\r\nv\r\n", "GET", "k"); /* the host decides when to stop */
    close(other);
    teardown();

    /* The host may stop the server from inside on_shutdown. */
    inst_up(false);
    static struct resp_server *self;
    struct resp_options o2 = {.on_shutdown = on_shutdown_stop, .on_shutdown_arg = &self};
    server_up_with(&o2);
    self = srv;
    other = cconnect();
    fd = cconnect();
    RT(other, "+PONG\r\n", "PING");
    CU_ASSERT(cmd(fd, "SHUTDOWN", (const char *)NULL));
    CU_ASSERT(closed(fd));
    CU_ASSERT(closed(other));
    close(fd);
    close(other);
    t0 = now_s();
    while (!atomic_load(&stopped_inside) && now_s() - t0 < 5) usleep(1000);
    CU_ASSERT(atomic_load(&stopped_inside));
    srv = NULL;
    inst_down();
}

static void test_start_failures_are_explained(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_startfail"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    server_up();
    struct resp_server *second = NULL;
    char why[256] = "";
    struct resp_options o = {.port = port};
    int rc = resp_server_start(inst, dbpath, &o, &second, why, sizeof why);
    CU_ASSERT(rc < 0);
    CU_ASSERT_PTR_NULL(second);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot listen"));
    why[0] = '\0';
    rc = resp_server_start(inst, "/nonexistent/x.db", NULL, &second, why, sizeof why);
    CU_ASSERT(rc < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "could not open database"));
    teardown();
}


/* ---- access: AUTH, disabled commands, protected mode ---- */

static void test_auth_gates_every_command(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_auth"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    struct resp_options o = {.password = "s3cret\0tail", .password_len = 6};
    server_up_with(&o);
    int fd = cconnect();
    RT(fd, "-NOAUTH Authentication required.\r\n", "SET", "k", "before");
    RT(fd, "-NOAUTH Authentication required.\r\n", "NOSUCH");
    RT(fd, "-NOAUTH Authentication required.\r\n", "MULTI");
    RT(fd, "-NOAUTH Authentication required.\r\n", "SHUTDOWN");
    RT(fd, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "s3cre");
    RT(fd, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "s3cret1");
    RT(fd, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "admin", "s3cret");
    RT(fd, "-ERR syntax error\r\n", "AUTH", "default", "s3cret", "x");
    RT(fd, "-ERR wrong number of arguments for 'auth' command\r\n", "AUTH");
    RT(fd, "-NOAUTH Authentication required.\r\n", "GET", "k");
    RT(fd, "+OK\r\n", "AUTH", "s3cret");
    RT(fd, "$-1\r\n", "GET", "k"); /* the SET before AUTH did not run */
    RT(fd, "+OK\r\n", "SET", "k", "after");
    /* A failed AUTH leaves an authenticated connection as it was (Redis). */
    RT(fd, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "nope");
    RT(fd, "$5\r\nafter\r\n", "GET", "k");
    int fd2 = cconnect();
    RT(fd2, "+OK\r\n", "AUTH", "default", "s3cret");
    RT(fd2, "$5\r\nafter\r\n", "GET", "k");
    /* QUIT is allowed before AUTH. */
    int fd3 = cconnect();
    RT(fd3, "+OK\r\n", "QUIT");
    CU_ASSERT(closed(fd3));
    close(fd3);
    close(fd2);
    close(fd);
    teardown();

    /* Without a password: AUTH says so, in Redis's words. */
    inst_up(false);
    server_up();
    fd = cconnect();
    RT(fd, "-ERR AUTH <password> called without any password configured for the default user. Are you sure your "
           "configuration is correct?\r\n",
       "AUTH", "x");
    RT(fd, "+OK\r\n", "AUTH", "default", "x");
    RT(fd, "+PONG\r\n", "PING");
    close(fd);
    teardown();
}

static void test_disabled_commands_are_unknown(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_disabled"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    const char *names[] = {"SHUTDOWN", "flushdb"};
    struct resp_options o = {.on_shutdown = on_shutdown_count, .disabled_commands = names, .ndisabled_commands = 2};
    int before = atomic_load(&shutdown_calls);
    server_up_with(&o);
    int fd = cconnect();
    RT(fd, "+OK\r\n", "SET", "k", "v");
    RT(fd, "-ERR unknown command 'SHUTDOWN', with args beginning with: 'NOSAVE' \r\n", "SHUTDOWN", "NOSAVE");
    RT(fd, "-ERR unknown command 'flushdb', with args beginning with: \r\n", "flushdb");
    RT(fd, "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n", "FLUSHALL");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "-ERR unknown command 'FLUSHDB', with args beginning with: \r\n", "FLUSHDB");
    RT(fd, "-EXECABORT Transaction discarded because of previous errors.\r\n", "EXEC");
    RT(fd, "$1\r\nv\r\n", "GET", "k");
    CU_ASSERT_EQUAL(atomic_load(&shutdown_calls), before);
    close(fd);
    teardown();

    /* A name the server does not have is refused at start. */
    inst_up(false);
    const char *bad[] = {"NOSUCH"};
    struct resp_options ob = {.disabled_commands = bad, .ndisabled_commands = 1};
    char why[256] = "";
    struct resp_server *s = NULL;
    CU_ASSERT(resp_server_start(inst, dbpath, &ob, &s, why, sizeof why) < 0);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no command 'NOSUCH'"));
    inst_down();
}

static void test_protected_mode(void)
{
    char why[600] = "";
    CU_ASSERT_EQUAL(resp_check_exposure("0.0.0.0", false, false, why, sizeof why), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "--requirepass-file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "--protected-mode no"));
    CU_ASSERT_EQUAL(resp_check_exposure("::", false, false, why, sizeof why), -EPERM);
    CU_ASSERT_EQUAL(resp_check_exposure("0.0.0.0", true, false, why, sizeof why), 0);
    CU_ASSERT_EQUAL(resp_check_exposure("0.0.0.0", false, true, why, sizeof why), 0);
    CU_ASSERT_EQUAL(resp_check_exposure("127.0.0.1", false, false, why, sizeof why), 0);
    CU_ASSERT_EQUAL(resp_check_exposure("127.0.0.2", false, false, why, sizeof why), 0);
    CU_ASSERT_EQUAL(resp_check_exposure("::1", false, false, why, sizeof why), 0);
    CU_ASSERT_EQUAL(resp_check_exposure("localhost", false, false, why, sizeof why), 0);
    CU_ASSERT_EQUAL(resp_check_exposure(NULL, false, false, why, sizeof why), 0);

    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_protected"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    struct resp_options o = {.host = "0.0.0.0"};
    struct resp_server *s = NULL;
    CU_ASSERT_EQUAL(resp_server_start(inst, dbpath, &o, &s, why, sizeof why), -EPERM);
    CU_ASSERT_PTR_NULL(s);
    inst_down();

    /* The password file: mode 0600 or stricter, first line, not empty. */
    char path[1200], *pw = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/pw", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("line one\r\nline two\n", f);
    fclose(f);
    CU_ASSERT_FATAL(chmod(path, 0640) == 0);
    CU_ASSERT_EQUAL(resp_password_read(path, &pw, &n, why, sizeof why), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "0640"));
    CU_ASSERT_FATAL(chmod(path, 0400) == 0);
    CU_ASSERT_EQUAL(resp_password_read(path, &pw, &n, why, sizeof why), 0);
    CU_ASSERT(n == 8 && pw && memcmp(pw, "line one", 8) == 0);
    resp_password_free(pw, n);
    CU_ASSERT_FATAL(chmod(path, 0600) == 0);
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("\n", f);
    fclose(f);
    CU_ASSERT(resp_password_read(path, &pw, &n, why, sizeof why) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "empty"));
}

/* ---- limits that protect the other clients ---- */

static void test_slow_reader_stalls_nobody(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_slowreader"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    server_up();
    int w = cconnect(), slow = cconnect();
    size_t vn = 256u << 10;
    char *v = malloc(vn + 2);
    CU_ASSERT_FATAL(v != NULL);
    memset(v, 'z', vn);
    v[vn] = '\0';
    RT(w, "+OK\r\n", "SET", "big", v);
    /* 400 GETs of 256 KiB = 100 MiB of replies, none read for now. */
    const char get[] = "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    size_t rn = 400 * (sizeof get - 1);
    char *req = malloc(rn);
    CU_ASSERT_FATAL(req != NULL);
    for (int i = 0; i < 400; i++) memcpy(req + i * (sizeof get - 1), get, sizeof get - 1);
    CU_ASSERT(tu_send_all(slow, req, rn));
    /* The others are answered at once, and keep being, for 2 s. */
    double t0 = now_s(), worst = 0;
    while (now_s() - t0 < 2.0) {
        double t = now_s();
        RT(w, "+PONG\r\n", "PING");
        if (now_s() - t > worst) worst = now_s() - t;
        RT(w, "+OK\r\n", "SET", "tick", "x"); /* durable writes: turns that wait for the syncer */
        usleep(20000);
    }
    CU_ASSERT(worst < 0.5);
    /* Once it reads, it gets every reply, in order. */
    char hdr[32];
    int hn = snprintf(hdr, sizeof hdr, "$%zu\r\n", vn);
    memcpy(v + vn, "\r\n", 2);
    char *got = malloc(vn + 2);
    CU_ASSERT_FATAL(got != NULL);
    int replies = 0;
    bool ok = true;
    for (; replies < 400 && ok; replies++) {
        char h[32];
        ok = tu_recv_all(slow, h, (size_t)hn) && memcmp(h, hdr, (size_t)hn) == 0 && tu_recv_all(slow, got, vn + 2) &&
             memcmp(got, v, vn + 2) == 0;
    }
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL(replies, 400);
    free(got);
    free(req);
    free(v);
    close(slow);
    close(w);
    teardown();
}

static void test_idle_timeout(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_idle"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    struct resp_options o = {.timeout_s = 1};
    server_up_with(&o);
    int idle = cconnect(), busy = cconnect();
    RT(idle, "+PONG\r\n", "PING");
    double t0 = now_s();
    while (now_s() - t0 < 3.0) {
        RT(busy, "+PONG\r\n", "PING");
        usleep(200000);
    }
    CU_ASSERT(closed(idle)); /* quiet for over 1 s */
    RT(busy, "+PONG\r\n", "PING"); /* never quiet that long */
    close(idle);
    close(busy);
    teardown();
}

static void test_query_buffer_limit(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_qbuf"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    inst_up(true);
    struct resp_options o = {.query_buffer_bytes = 100000, .max_bulk_bytes = 60000};
    server_up_with(&o);
    int other = cconnect(), fd = cconnect();
    /* One bulk over max_bulk: the protocol error, then the close. */
    RAW(fd, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$60001\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    CU_ASSERT(closed(fd));
    close(fd);
    /* Bulks under it, but more unexecuted input than the buffer limit:
     * disconnected without a reply. */
    fd = cconnect();
    char *req = malloc(200000);
    CU_ASSERT_FATAL(req != NULL);
    size_t n = (size_t)sprintf(req, "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$50000\r\n");
    memset(req + n, 'a', 50000);
    n += 50000;
    n += (size_t)sprintf(req + n, "\r\n$1\r\nb\r\n$50000\r\n");
    memset(req + n, 'b', 50000);
    n += 50000 - 1; /* unfinished */
    bool sent = tu_send_all(fd, req, n);
    (void)sent; /* the server may close before taking it all */
    CU_ASSERT(closed(fd));
    close(fd);
    RT(other, "$-1\r\n", "GET", "a");
    RT(other, "+PONG\r\n", "PING");
    free(req);
    close(other);
    teardown();
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("resp_server", NULL, NULL);
    CU_add_test(su, "test_string_commands_byte_for_byte", test_string_commands_byte_for_byte);
    CU_add_test(su, "test_string_family", test_string_family);
    CU_add_test(su, "test_expiry", test_expiry);
    CU_add_test(su, "test_expiry_survives_restart", test_expiry_survives_restart);
    CU_add_test(su, "test_pipelined_requests_answer_in_order", test_pipelined_requests_answer_in_order);
    CU_add_test(su, "test_scan_dbsize_flushdb", test_scan_dbsize_flushdb);
    CU_add_test(su, "test_multi_exec_discard", test_multi_exec_discard);
    CU_add_test(su, "test_multi_exec_is_atomic", test_multi_exec_is_atomic);
    CU_add_test(su, "test_concurrent_incr_counts_exactly", test_concurrent_incr_counts_exactly);
    CU_add_test(su, "test_dbsize_is_exact_under_concurrent_writes", test_dbsize_is_exact_under_concurrent_writes);
    CU_add_test(su, "test_malformed_input_hurts_only_its_sender", test_malformed_input_hurts_only_its_sender);
    CU_add_test(su, "test_limits_values_and_requests", test_limits_values_and_requests);
    CU_add_test(su, "test_shutdown", test_shutdown);
    CU_add_test(su, "test_start_failures_are_explained", test_start_failures_are_explained);
    CU_add_test(su, "test_auth_gates_every_command", test_auth_gates_every_command);
    CU_add_test(su, "test_disabled_commands_are_unknown", test_disabled_commands_are_unknown);
    CU_add_test(su, "test_protected_mode", test_protected_mode);
    CU_add_test(su, "test_slow_reader_stalls_nobody", test_slow_reader_stalls_nobody);
    CU_add_test(su, "test_idle_timeout", test_idle_timeout);
    CU_add_test(su, "test_query_buffer_limit", test_query_buffer_limit);
    return tu_run();
}
