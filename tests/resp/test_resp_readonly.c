/*
 * test_resp_readonly.c -- the RESP server with read_only (what `jetfs
 * browse --listen` serves): over real sockets, against a live instance.
 * Reads answer; every command that changes data answers Redis's replica
 * error, byte for byte, and changes nothing (checked over the protocol and
 * then through the engine); a write queued in MULTI makes EXEC answer
 * EXECABORT; a database without the table serves an empty keyspace and is
 * left without it.  Every command the server lists must be classified
 * here as a read or a write, so a write added later without its flag
 * fails this test instead of writing to a browsed backup.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jet.h"
#include "resp.h"
#include "rawclient.h"
#include "testutil.h"

#define READONLY_ERR "-READONLY You can't write against a read only replica.\r\n"
#define EXECABORT_ERR "-EXECABORT Transaction discarded because of previous errors.\r\n"

static JET_INSTANCE inst;
static JET_SESID host_ses;
static char dir[1024], dbpath[1100];
static struct resp_server *srv;
static int port;
static int instance_seq;

/* ---- instance and server ---- */

static void inst_up(const char *name)
{
    char iname[32];
    JET_DBID db;
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    snprintf(iname, sizeof iname, "respro%d", ++instance_seq);
    CU_ASSERT_FATAL(JetCreateInstance(&inst, iname) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir) >= 0);
    CU_ASSERT_FATAL(JetInit(&inst) >= 0);
    CU_ASSERT_FATAL(JetBeginSession(inst, &host_ses, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(host_ses, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetCloseDatabase(host_ses, db, 0) >= 0);
}

static void inst_down(void)
{
    CU_ASSERT(JetEndSession(host_ses, 0) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);
}

static void server_up(const struct resp_options *o)
{
    char why[256] = "";
    int rc = resp_server_start(inst, dbpath, o, &srv, why, sizeof why);
    if (rc < 0) fprintf(stderr, "resp_server_start: %d %s\n", rc, why);
    CU_ASSERT_FATAL(rc >= 0);
    port = resp_server_port(srv);
    CU_ASSERT_FATAL(port > 0);
}

static void server_down(void)
{
    resp_server_stop(srv);
    srv = NULL;
}

/* ---- a raw client ---- */

static int cconnect(void)
{
    int fd = tu_tcp_connect(port);
    CU_ASSERT_FATAL(fd >= 0);
    return fd;
}

/* One reply line, "\r\n" included, NUL-terminated (false: none). */
static bool read_line(int fd, char *line, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        if (!tu_recv_all(fd, line + n, 1)) return false;
        if (line[n++] == '\n') {
            line[n] = '\0';
            return true;
        }
    }
    return false;
}

static bool expect(int fd, const char *want, size_t n)
{
    char *got = calloc(1, n + 1);
    if (!got) return false;
    bool ok = tu_recv_all(fd, got, n) && memcmp(got, want, n) == 0;
    if (!ok) fprintf(stderr, "\n  want \"%.*s\"\n  got  \"%s\"\n", (int)n, want, got);
    free(got);
    return ok;
}

static bool closed(int fd)
{
    char b;
    ssize_t r;
    do r = recv(fd, &b, 1, 0);
    while (r < 0 && errno == EINTR);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* Sends argv (argc arguments) as a RESP array. */
static bool sendv(int fd, size_t argc, const char *const *argv)
{
    size_t total = 16;
    for (size_t i = 0; i < argc; i++) total += strlen(argv[i]) + 32;
    char *req = malloc(total);
    if (!req) return false;
    size_t len = (size_t)sprintf(req, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++) len += (size_t)sprintf(req + len, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    bool ok = tu_send_all(fd, req, len);
    free(req);
    return ok;
}

static bool cmd(int fd, const char *a0, ...)
{
    const char *argv[32];
    size_t argc = 0;
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a && argc < 32; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    return sendv(fd, argc, argv);
}

#define RT(fd, want, ...)                                                                                        \
    do {                                                                                                         \
        bool ok_ = cmd(fd, __VA_ARGS__, (const char *)NULL) && expect(fd, want, sizeof(want) - 1);                \
        if (!ok_) fprintf(stderr, "  at %s:%d\n", __FILE__, __LINE__);                                          \
        CU_ASSERT(ok_);                                                                                          \
    } while (0)

/* INFO's text (the bulk's content), in buf. */
static void info(int fd, char *buf, size_t cap)
{
    char line[64];
    long long n = -1;
    buf[0] = '\0';
    CU_ASSERT_FATAL(cmd(fd, "INFO", (const char *)NULL));
    CU_ASSERT_FATAL(read_line(fd, line, sizeof line) && sscanf(line, "$%lld", &n) == 1);
    CU_ASSERT_FATAL(n >= 0 && (size_t)n + 2 < cap);
    CU_ASSERT_FATAL(tu_recv_all(fd, buf, (size_t)n + 2));
    buf[n] = '\0';
}

/* The value of key through the engine (NULL: absent). */
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

static void assert_engine_value(const char *key, const char *want)
{
    char *got = engine_get(key);
    if (!want) {
        CU_ASSERT_PTR_NULL(got);
    } else {
        CU_ASSERT(got && strcmp(got, want) == 0);
    }
    free(got);
}

/* ---- what the server implements, classified ---- */

/* One request for each command that changes data, well-formed, naming
 * the keys the data set has (or not), so that a write that slipped
 * through would change something visible. */
static const struct {
    const char *name;
    const char *argv[8];
} writes[] = {
    {"set", {"SET", "a", "changed"}},
    {"set", {"set", "new", "v", "NX"}},
    {"set", {"SET", "a", "changed", "XX", "GET"}},
    {"incr", {"INCR", "n"}},
    {"incrby", {"INCRBY", "n", "5"}},
    {"decr", {"DECR", "n"}},
    {"decrby", {"DECRBY", "n", "5"}},
    {"mset", {"MSET", "a", "x", "new", "y"}},
    {"del", {"DEL", "a", "b"}},
    {"flushdb", {"FLUSHDB"}},
    {"flushdb", {"FLUSHDB", "ASYNC"}},
    {"flushall", {"FLUSHALL"}},
    {"append", {"APPEND", "a", "x"}},
    {"setrange", {"SETRANGE", "a", "0", "x"}},
    {"getset", {"GETSET", "a", "x"}},
    {"getdel", {"GETDEL", "a"}},
    {"getex", {"GETEX", "a", "PERSIST"}},
    {"setnx", {"SETNX", "new", "x"}},
    {"msetnx", {"MSETNX", "new", "x"}},
    {"incrbyfloat", {"INCRBYFLOAT", "n", "1.5"}},
    {"unlink", {"UNLINK", "a"}},
    {"rename", {"RENAME", "a", "z"}},
    {"renamenx", {"RENAMENX", "a", "z"}},
    {"expire", {"EXPIRE", "a", "10"}},
    {"pexpire", {"PEXPIRE", "a", "10"}},
    {"expireat", {"EXPIREAT", "a", "10"}},
    {"pexpireat", {"PEXPIREAT", "a", "10"}},
    {"persist", {"PERSIST", "a"}},
    {"setex", {"SETEX", "a", "10", "x"}},
    {"psetex", {"PSETEX", "a", "10", "x"}},
};

/* The commands that change nothing (reads, connection and server ones). */
static const char *const reads[] = {
    "get",    "mget",   "exists", "type", "ttl",     "pttl",     "dbsize", "scan",  "info",  "ping",   "echo",
    "multi",  "exec",   "discard", "watch", "unwatch", "shutdown", "quit",  "auth",  "select", "command",
    "config", "client", "hello", "strlen", "getrange", "substr", "keys", "randomkey", "expiretime", "pexpiretime",
};

static bool classified(const char *name)
{
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (strcmp(writes[i].name, name) == 0) return true;
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        if (strcmp(reads[i], name) == 0) return true;
    return false;
}

/* The data set every test starts from, written by a writable server. */
static void load_data(void)
{
    struct resp_options o = {0};
    server_up(&o);
    int fd = cconnect();
    RT(fd, "+OK\r\n", "MSET", "a", "1", "b", "2", "n", "10");
    /* A writable server does not call itself read-only. */
    char text[4096];
    info(fd, text, sizeof text);
    CU_ASSERT_PTR_NULL(strstr(text, "slave_read_only"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\r\nrole:master\r\n"));
    close(fd);
    server_down();
}

/* ---- tests ---- */

static void test_reads_answer(void)
{
    inst_up("respro_reads");
    load_data();
    struct resp_options o = {.read_only = true};
    server_up(&o);
    int fd = cconnect();
    RT(fd, "+PONG\r\n", "PING");
    RT(fd, "$1\r\n1\r\n", "GET", "a");
    RT(fd, "$-1\r\n", "GET", "nokey");
    RT(fd, "*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n10\r\n", "MGET", "a", "nokey", "n");
    RT(fd, ":2\r\n", "EXISTS", "a", "b", "nokey");
    RT(fd, ":3\r\n", "DBSIZE");
    RT(fd, "+string\r\n", "TYPE", "a");
    RT(fd, ":-1\r\n", "TTL", "a");
    RT(fd, ":-2\r\n", "PTTL", "nokey");
    RT(fd, "*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nn\r\n", "SCAN", "0");
    RT(fd, "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nn\r\n", "SCAN", "0", "MATCH", "n*");
    /* WATCH and a MULTI of reads work as usual. */
    RT(fd, "+OK\r\n", "WATCH", "a");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "GET", "a");
    RT(fd, "+QUEUED\r\n", "DBSIZE");
    RT(fd, "*2\r\n$1\r\n1\r\n:3\r\n", "EXEC");
    char text[4096];
    info(fd, text, sizeof text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\r\nloading:0\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# Replication\r\nrole:master\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\r\nslave_read_only:1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# Keyspace\r\ndb0:keys=3,"));
    close(fd);
    server_down();
    inst_down();
}

/* Expiry is judged when a key is read, through the same code: a key
 * whose deadline passed is absent, a later one keeps its time left, and
 * nothing is reclaimed (nothing is written). */
static void test_expiry_is_judged_at_read_time(void)
{
    inst_up("respro_expiry");
    struct resp_options w = {0};
    server_up(&w);
    int fd = cconnect();
    RT(fd, "+OK\r\n", "SET", "gone", "x", "PX", "300");
    RT(fd, "+OK\r\n", "SET", "later", "y", "EX", "3600");
    RT(fd, "+OK\r\n", "SET", "plain", "z");
    close(fd);
    server_down();
    usleep(350 * 1000);
    struct resp_options o = {.read_only = true};
    server_up(&o);
    fd = cconnect();
    RT(fd, "$-1\r\n", "GET", "gone");
    RT(fd, ":0\r\n", "EXISTS", "gone");
    RT(fd, ":-2\r\n", "TTL", "gone");
    RT(fd, "$1\r\ny\r\n", "GET", "later");
    RT(fd, ":3600\r\n", "TTL", "later");
    RT(fd, ":-1\r\n", "TTL", "plain");
    RT(fd, "*2\r\n$5\r\nlater\r\n$5\r\nplain\r\n", "KEYS", "*");
    RT(fd, "*2\r\n$1\r\n0\r\n*2\r\n$5\r\nlater\r\n$5\r\nplain\r\n", "SCAN", "0");
    RT(fd, ":3\r\n", "DBSIZE"); /* not reclaimed: nothing is written here */
    RT(fd, READONLY_ERR, "PERSIST", "later");
    close(fd);
    server_down();
    inst_down();
}

static void test_every_write_is_refused_and_changes_nothing(void)
{
    inst_up("respro_writes");
    load_data();
    struct resp_options o = {.read_only = true};
    server_up(&o);
    int fd = cconnect();
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        size_t argc = 0;
        while (argc < 8 && writes[i].argv[argc]) argc++;
        bool ok = sendv(fd, argc, writes[i].argv) && expect(fd, READONLY_ERR, sizeof READONLY_ERR - 1);
        if (!ok) fprintf(stderr, "  %s was not refused\n", writes[i].argv[0]);
        CU_ASSERT(ok);
    }
    /* Arguments are checked first, as Redis does. */
    RT(fd, "-ERR wrong number of arguments for 'set' command\r\n", "SET", "a");
    RT(fd, "$1\r\n1\r\n", "GET", "a");
    RT(fd, "$-1\r\n", "GET", "new");
    RT(fd, "$2\r\n10\r\n", "GET", "n");
    RT(fd, ":3\r\n", "DBSIZE");

    /* Every command the server has is one the list above knows. */
    char line[128];
    long long n = 0;
    CU_ASSERT_FATAL(cmd(fd, "COMMAND", "LIST", (const char *)NULL));
    CU_ASSERT_FATAL(read_line(fd, line, sizeof line) && sscanf(line, "*%lld", &n) == 1 && n > 0);
    for (long long i = 0; i < n; i++) {
        long long len = 0;
        char name[64];
        CU_ASSERT_FATAL(read_line(fd, line, sizeof line) && sscanf(line, "$%lld", &len) == 1);
        CU_ASSERT_FATAL(len > 0 && (size_t)len + 2 < sizeof name);
        CU_ASSERT_FATAL(tu_recv_all(fd, name, (size_t)len + 2));
        name[len] = '\0';
        if (!classified(name)) fprintf(stderr, "\n  '%s' is neither a read nor a write in this test\n", name);
        CU_ASSERT(classified(name));
    }
    /* ... and COMMAND INFO calls each of them a write (the table's flag). */
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        long long nflags = 0;
        CU_ASSERT_FATAL(cmd(fd, "COMMAND", "INFO", writes[i].name, (const char *)NULL));
        /* *1, *10, $len, name, :arity, *nflags, then the flags */
        for (int k = 0; k < 6; k++) CU_ASSERT_FATAL(read_line(fd, line, sizeof line));
        CU_ASSERT_FATAL(sscanf(line, "*%lld", &nflags) == 1 && nflags >= 1);
        CU_ASSERT_FATAL(read_line(fd, line, sizeof line));
        if (strcmp(line, "+write\r\n") != 0) fprintf(stderr, "\n  COMMAND INFO %s: first flag %s", writes[i].name, line);
        CU_ASSERT_STRING_EQUAL(line, "+write\r\n");
        /* the other flags, first/last/step, four empty arrays */
        for (long long k = 0; k < nflags - 1 + 3 + 4; k++) CU_ASSERT_FATAL(read_line(fd, line, sizeof line));
    }
    RT(fd, "+PONG\r\n", "PING"); /* in step: every line of those replies was read */

    close(fd);
    server_down();
    /* Through the engine: the data set is as it was. */
    assert_engine_value("a", "1");
    assert_engine_value("b", "2");
    assert_engine_value("n", "10");
    assert_engine_value("new", NULL);
    inst_down();
}

static void test_multi_with_a_write_aborts(void)
{
    inst_up("respro_multi");
    load_data();
    struct resp_options o = {.read_only = true};
    server_up(&o);
    int fd = cconnect();
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "GET", "a");
    RT(fd, READONLY_ERR, "SET", "a", "changed");
    RT(fd, "+QUEUED\r\n", "DBSIZE");
    RT(fd, READONLY_ERR, "FLUSHDB");
    RT(fd, EXECABORT_ERR, "EXEC");
    /* The connection is out of MULTI and the data unchanged. */
    RT(fd, "-ERR EXEC without MULTI\r\n", "EXEC");
    RT(fd, "$1\r\n1\r\n", "GET", "a");
    RT(fd, ":3\r\n", "DBSIZE");
    close(fd);
    server_down();
    assert_engine_value("a", "1");
    inst_down();
}

static atomic_int shutdown_calls;
static void on_shutdown_count(void *arg)
{
    (void)arg;
    atomic_fetch_add(&shutdown_calls, 1);
}

static void test_shutdown_still_works(void)
{
    inst_up("respro_shutdown");
    load_data();
    struct resp_options o = {.read_only = true, .on_shutdown = on_shutdown_count};
    server_up(&o);
    int fd = cconnect();
    CU_ASSERT(cmd(fd, "SHUTDOWN", "NOSAVE", (const char *)NULL));
    CU_ASSERT(closed(fd)); /* no reply, as Redis */
    close(fd);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        usleep(1000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (atomic_load(&shutdown_calls) == 0 && t.tv_sec - t0.tv_sec < 5);
    CU_ASSERT_EQUAL(atomic_load(&shutdown_calls), 1);
    server_down();
    inst_down();
}

static void test_absent_table_is_an_empty_keyspace(void)
{
    inst_up("respro_empty"); /* a database without the table */
    struct resp_options o = {.read_only = true};
    server_up(&o);
    int fd = cconnect();
    RT(fd, "$-1\r\n", "GET", "a");
    RT(fd, "*2\r\n$-1\r\n$-1\r\n", "MGET", "a", "b");
    RT(fd, ":0\r\n", "EXISTS", "a", "b");
    RT(fd, ":0\r\n", "DBSIZE");
    RT(fd, "*2\r\n$1\r\n0\r\n*0\r\n", "SCAN", "0");
    RT(fd, "*2\r\n$1\r\n0\r\n*0\r\n", "SCAN", "0", "MATCH", "a*");
    RT(fd, "+none\r\n", "TYPE", "a");
    RT(fd, ":-2\r\n", "TTL", "a");
    RT(fd, READONLY_ERR, "SET", "a", "1");
    RT(fd, READONLY_ERR, "FLUSHALL");
    RT(fd, "+OK\r\n", "MULTI");
    RT(fd, "+QUEUED\r\n", "GET", "a");
    RT(fd, "*1\r\n$-1\r\n", "EXEC");
    char text[4096];
    info(fd, text, sizeof text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# Keyspace\r\ndb0:keys=0,"));
    close(fd);
    server_down();
    /* Opened, never created. */
    JET_DBID db;
    JET_TABLEID t;
    CU_ASSERT_FATAL(JetOpenDatabase(host_ses, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_EQUAL(JetOpenTable(host_ses, db, RESP_TABLE, NULL, 0, 0, &t), JET_errObjectNotFound);
    CU_ASSERT(JetCloseDatabase(host_ses, db, 0) >= 0);
    inst_down();
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("resp_readonly", NULL, NULL);
    CU_add_test(su, "test_reads_answer", test_reads_answer);
    CU_add_test(su, "test_expiry_is_judged_at_read_time", test_expiry_is_judged_at_read_time);
    CU_add_test(su, "test_every_write_is_refused_and_changes_nothing", test_every_write_is_refused_and_changes_nothing);
    CU_add_test(su, "test_multi_with_a_write_aborts", test_multi_with_a_write_aborts);
    CU_add_test(su, "test_shutdown_still_works", test_shutdown_still_works);
    CU_add_test(su, "test_absent_table_is_an_empty_keyspace", test_absent_table_is_an_empty_keyspace);
    return tu_run();
}
