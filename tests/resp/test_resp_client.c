/*
 * test_resp_client.c -- the connection commands (resp_client.c) as client
 * libraries meet them on connect: HELLO with its AUTH and SETNAME options,
 * CLIENT's subcommands, SELECT, PING, ECHO, QUIT, the AUTH decision and
 * the unknown-command error, each reply compared byte for byte with what
 * Redis 7 sends; COMMAND INFO; WATCH between two clients.  Each request
 * goes straight through resp_execute on a client opened as the server
 * opens one (no socket), and its reply is read from the client's buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "resp_auth.h"
#include "resp_commands.h"
#include "testutil.h"

static struct resp_shared sh;
static struct resp_client cl;
static JET_INSTANCE inst;
static JET_SESID host_ses;
static char dir[1024], dbpath[1100];

/* One instance for the suite, with the server's table. */
static int suite_init(void)
{
    char why[256] = "";
    JET_DBID db;
    bool absent;
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("resp_client"));
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dir);
    if (JetCreateInstance(&inst, "respclient") < 0 || JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir) < 0 ||
        JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir) < 0 || JetInit(&inst) < 0 ||
        JetBeginSession(inst, &host_ses, NULL, NULL) < 0 || JetCreateDatabase(host_ses, dbpath, NULL, &db, 0) < 0 ||
        JetCloseDatabase(host_ses, db, 0) < 0 || resp_table_ensure(inst, dbpath, false, &absent, why, sizeof why) < 0) {
        fprintf(stderr, "resp_client suite: cannot set up an instance in %s: %s\n", dir, why);
        return 1;
    }
    return 0;
}

static int suite_clean(void)
{
    return JetEndSession(host_ses, 0) < 0 || JetTerm(inst) < 0;
}

/* Fresh shared state and a client opened as the server opens one (so it
 * is whatever a new connection is), with id 42. */
static void fresh(void)
{
    char why[256] = "";
    memset(&sh, 0, sizeof sh);
    resp_limits_default(&sh.lim);
    sh.max_clients = 10;
    sh.inst = inst;
    sh.dbpath = dbpath;
    CU_ASSERT_FATAL(resp_client_open(&cl, &sh, why, sizeof why) >= 0);
    cl.id = 42;
}

static void done(void)
{
    resp_client_close(&cl);
}

static void show(const char *label, const char *s, size_t n)
{
    fprintf(stderr, "%s: \"", label);
    for (size_t i = 0; i < n && i < 400; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r') fputs("\\r", stderr);
        else if (ch == '\n') fputs("\\n", stderr);
        else if (ch < 0x20 || ch >= 0x7f) fprintf(stderr, "\\x%02x", ch);
        else fputc(ch, stderr);
    }
    fprintf(stderr, "\"\n");
}

/* Runs one request (NULL-terminated arguments) and returns whether its
 * reply is exactly want; the reply is consumed either way. */
static bool run_expect(struct resp_client *c, int line, const char *want, size_t wantn, const char *a0, ...)
{
    char *argv[32];
    size_t len[32], argc = 0;
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a && argc < 32; a = va_arg(ap, const char *)) {
        argv[argc] = (char *)a;
        len[argc++] = strlen(a);
    }
    va_end(ap);
    c->out.len = 0;
    resp_execute(c, argc, argv, len);
    resp_batch_end(c); /* as the server does before it sends */
    bool ok = c->out.len == wantn && memcmp(c->out.data, want, wantn) == 0;
    if (!ok) {
        fprintf(stderr, "\n  at line %d\n", line);
        show("  want", want, wantn);
        show("  got ", c->out.data ? c->out.data : "", c->out.len);
    }
    c->out.len = 0;
    return ok;
}

#define RT(want, ...) CU_ASSERT(run_expect(&cl, __LINE__, want, sizeof(want) - 1, __VA_ARGS__, (const char *)NULL))
/* The same on client c. */
#define RTC(c, want, ...) CU_ASSERT(run_expect(c, __LINE__, want, sizeof(want) - 1, __VA_ARGS__, (const char *)NULL))

/* HELLO's reply for protocol 2, client id 42. */
#define HELLO2                                                                                                   \
    "*14\r\n$6\r\nserver\r\n$5\r\njetfs\r\n$7\r\nversion\r\n$" "11" "\r\n" RESP_VERSION "\r\n$5\r\nproto\r\n:2\r\n" \
    "$2\r\nid\r\n:42\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"

static void test_hello(void)
{
    fresh();
    CU_ASSERT_EQUAL_FATAL(strlen(RESP_VERSION), 11);
    RT(HELLO2, "HELLO");
    RT(HELLO2, "hello", "2");
    /* RESP3 and unknown versions: Redis's refusal, which libraries handle. */
    RT("-NOPROTO unsupported protocol version\r\n", "HELLO", "3");
    RT("-NOPROTO unsupported protocol version\r\n", "HELLO", "1");
    RT("-ERR Protocol version is not an integer or out of range\r\n", "HELLO", "two");
    RT("$-1\r\n", "CLIENT", "GETNAME");
    RT(HELLO2, "HELLO", "2", "SETNAME", "lib");
    RT("$3\r\nlib\r\n", "CLIENT", "GETNAME");
    /* AUTH with no password configured: the default user takes any. */
    RT(HELLO2, "HELLO", "2", "AUTH", "default", "whatever", "setname", "n2");
    RT("$2\r\nn2\r\n", "CLIENT", "GETNAME");
    /* A refused HELLO changes nothing, the name included. */
    RT("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "HELLO", "2", "SETNAME", "n3", "AUTH",
       "bob", "pw");
    RT("-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "HELLO", "2", "SETNAME",
       "a b", "AUTH", "default", "x");
    RT("$2\r\nn2\r\n", "CLIENT", "GETNAME");
    RT("-ERR Syntax error in HELLO option 'AUTH'\r\n", "HELLO", "2", "AUTH", "default");
    RT("-ERR Syntax error in HELLO option 'SETNAME'\r\n", "HELLO", "2", "SETNAME");
    RT("-ERR Syntax error in HELLO option 'FOO'\r\n", "HELLO", "2", "FOO", "bar");
    RT("$2\r\nn2\r\n", "CLIENT", "GETNAME");
    /* Not inside MULTI (it would change the connection mid-transaction). */
    RT("+OK\r\n", "MULTI");
    RT("-ERR Command not allowed inside a transaction\r\n", "HELLO", "2");
    RT("-EXECABORT Transaction discarded because of previous errors.\r\n", "EXEC");
    done();
}

static void test_client_subcommands(void)
{
    fresh();
    RT(":42\r\n", "CLIENT", "ID");
    RT("+OK\r\n", "client", "setname", "app-1");
    RT("$5\r\napp-1\r\n", "CLIENT", "GETNAME");
    RT("-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "CLIENT", "SETNAME", "a\nb");
    RT("-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "CLIENT", "SETNAME", "a b");
    RT("$5\r\napp-1\r\n", "CLIENT", "GETNAME");
    RT("+OK\r\n", "CLIENT", "SETNAME", ""); /* clears it, as in Redis */
    RT("$-1\r\n", "CLIENT", "GETNAME");
    char longname[200];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    RT("-ERR Client names are limited to 63 bytes by jetfs\r\n", "CLIENT", "SETNAME", longname);

    /* What redis-py 5 and ioredis send on connect. */
    RT("+OK\r\n", "CLIENT", "SETINFO", "LIB-NAME", "redis-py");
    RT("+OK\r\n", "CLIENT", "SETINFO", "lib-ver", "5.0.1");
    RT("-ERR Unrecognized option 'LIB-COLOUR'\r\n", "CLIENT", "SETINFO", "LIB-COLOUR", "red");
    RT("-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n", "CLIENT", "SETINFO", "LIB-NAME",
       "two words");
    RT("+OK\r\n", "CLIENT", "SETNAME", "app");
    cl.out.len = 0;
    char *info[] = {"CLIENT", "INFO"};
    size_t ilen[] = {6, 4};
    resp_execute(&cl, 2, info, ilen);
    resp_buf_append(&cl.out, "", 1);
    /* Every numeric field redis-py's parser converts, in Redis's order. */
    const char *want = " idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 "
                       "obl=0 oll=0 omem=0 tot-mem=";
    const char *body = strstr(cl.out.data, "\r\n");
    CU_ASSERT_FATAL(body != NULL);
    bool info_ok = cl.out.data[0] == '$' && strncmp(body + 2, "id=42 name=app age=", 19) == 0 &&
                   strstr(body, want) != NULL &&
                   strstr(body, " user=default redir=-1 resp=2 lib-name=redis-py lib-ver=5.0.1\n\r\n") != NULL;
    CU_ASSERT(info_ok);
    if (!info_ok) show("  CLIENT INFO", cl.out.data, cl.out.len);
    cl.out.len = 0;

    RT("+OK\r\n", "CLIENT", "NO-EVICT", "on");
    RT("+OK\r\n", "CLIENT", "NO-TOUCH", "OFF");
    RT("-ERR syntax error\r\n", "CLIENT", "NO-EVICT", "maybe");
    RT("-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n", "CLIENT", "KILL", "ID", "7");
    RT("-ERR wrong number of arguments for 'client|setname' command\r\n", "CLIENT", "SETNAME");
    RT("-ERR wrong number of arguments for 'client|id' command\r\n", "CLIENT", "ID", "x");
    RT("-ERR wrong number of arguments for 'client' command\r\n", "CLIENT");
    cl.out.len = 0;
    char *help[] = {"CLIENT", "HELP"};
    size_t hlen[] = {6, 4};
    resp_execute(&cl, 2, help, hlen);
    CU_ASSERT(cl.out.len > 4 && memcmp(cl.out.data, "*19\r\n+CLIENT <subcommand>", 25) == 0);
    cl.out.len = 0;
    done();
}

static void test_select_ping_echo_quit(void)
{
    fresh();
    RT("+OK\r\n", "SELECT", "0");
    RT("-ERR DB index is out of range\r\n", "SELECT", "1");
    RT("-ERR DB index is out of range\r\n", "SELECT", "-1");
    RT("-ERR value is not an integer or out of range\r\n", "SELECT", "zero");
    RT("+PONG\r\n", "PING");
    RT("$2\r\nhi\r\n", "PING", "hi");
    RT("-ERR wrong number of arguments for 'ping' command\r\n", "PING", "a", "b");
    RT("$4\r\na\r\nb\r\n", "ECHO", "a\r\nb");
    CU_ASSERT_FALSE(cl.quit);
    RT("+OK\r\n", "QUIT");
    CU_ASSERT(cl.quit);
    done();
}

/* COMMAND INFO as Redis 7 shapes it: name, arity, flags, key positions,
 * then four lists jetfs leaves empty; nil for a command it lacks. */
static void test_command_info(void)
{
    fresh();
    RT("*3\r\n"
       "*10\r\n$3\r\nget\r\n:2\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n"
       "*10\r\n$4\r\nmset\r\n:-3\r\n*1\r\n+write\r\n:1\r\n:-1\r\n:2\r\n*0\r\n*0\r\n*0\r\n*0\r\n"
       "$-1\r\n",
       "COMMAND", "INFO", "get", "MSET", "hset");
    RT("-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n", "COMMAND", "FOO");
    RT("-ERR wrong number of arguments for 'command|count' command\r\n", "COMMAND", "COUNT", "x");
    RT("*0\r\n", "COMMAND", "DOCS", "get");
    cl.out.len = 0;
    char *list[] = {"COMMAND", "LIST"}, *count[] = {"COMMAND", "COUNT"};
    size_t llen[] = {7, 4}, clen[] = {7, 5};
    resp_execute(&cl, 2, count, clen);
    long long n = 0;
    CU_ASSERT(sscanf(cl.out.data, ":%lld\r\n", &n) == 1 && n > 30);
    cl.out.len = 0;
    resp_execute(&cl, 2, list, llen);
    char head[16];
    snprintf(head, sizeof head, "*%lld\r\n", n);
    CU_ASSERT(cl.out.len > strlen(head) && memcmp(cl.out.data, head, strlen(head)) == 0);
    resp_buf_append(&cl.out, "", 1);
    CU_ASSERT(strstr(cl.out.data, "$5\r\nhello\r\n") && strstr(cl.out.data, "$5\r\nwatch\r\n"));
    cl.out.len = 0;
    done();
}

static void test_auth_decision(void)
{
    fresh();
    CU_ASSERT_FALSE(resp_client_auth(&cl, NULL, 0, "pw", 2));
    const char *want = "-ERR AUTH <password> called without any password configured for the default user. Are you "
                       "sure your configuration is correct?\r\n";
    CU_ASSERT(cl.out.len == strlen(want) && memcmp(cl.out.data, want, cl.out.len) == 0);
    cl.out.len = 0;
    CU_ASSERT(resp_client_auth(&cl, "default", 7, "anything", 8));
    CU_ASSERT_EQUAL(cl.out.len, 0);
    CU_ASSERT_FALSE(resp_client_auth(&cl, "defaults", 8, "x", 1));
    want = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    CU_ASSERT(cl.out.len == strlen(want) && memcmp(cl.out.data, want, cl.out.len) == 0);
    cl.out.len = 0;
    done();
}

/* With a password: HELLO needs its AUTH option (or an earlier AUTH), which
 * takes the same check as AUTH, with Redis's texts. */
static void test_hello_with_a_password(void)
{
    char why[256] = "";
    fresh();
    resp_client_close(&cl);
    CU_ASSERT_FATAL(resp_auth_init(&sh.auth, "s3cret", 6) == 0);
    CU_ASSERT_FATAL(resp_client_open(&cl, &sh, why, sizeof why) >= 0);
    cl.id = 42;
    RT("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> "
       "<pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n",
       "HELLO", "2");
    RT("-NOAUTH Authentication required.\r\n", "CLIENT", "GETNAME");
    RT("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "HELLO", "2", "AUTH", "default", "nope");
    RT("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "HELLO", "2", "AUTH", "admin", "s3cret");
    RT("-NOAUTH Authentication required.\r\n", "PING");
    RT(HELLO2, "HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "app");
    RT("$3\r\napp\r\n", "CLIENT", "GETNAME");
    RT("+PONG\r\n", "PING");
    done();
}

static void test_unknown_command_is_redis_text(void)
{
    fresh();
    RT("-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n", "NOSUCH", "a", "b");
    RT("-ERR unknown command 'lpush', with args beginning with: 'k' '10' \r\n", "lpush", "k", "10");
    RT("-ERR unknown command 'x', with args beginning with: \r\n", "x");
    /* CR and LF in an argument become spaces: an error is one line. */
    RT("-ERR unknown command 'hset', with args beginning with: 'a  b' \r\n", "hset", "a\r\nb");
    done();
}

/*
 * WATCH, with an engine this time: two clients on one instance, as the
 * server's one thread runs them.  A change to a watched key by anyone
 * (the watcher included) makes EXEC answer a null array and run nothing;
 * EXEC, DISCARD and UNWATCH forget the watched keys.
 */
static void test_watch(void)
{
    char why[256] = "";
    struct resp_client a, b;
    fresh();
    CU_ASSERT_FATAL(resp_client_open(&a, &sh, why, sizeof why) >= 0);
    CU_ASSERT_FATAL(resp_client_open(&b, &sh, why, sizeof why) >= 0);

    RTC(&a, "+OK\r\n", "SET", "k", "1");
    RTC(&a, "+OK\r\n", "WATCH", "k", "other");
    RTC(&b, "+OK\r\n", "SET", "k", "2");
    RTC(&a, "+OK\r\n", "MULTI");
    RTC(&a, "+QUEUED\r\n", "SET", "k", "3");
    RTC(&a, "*-1\r\n", "EXEC");
    RTC(&a, "$1\r\n2\r\n", "GET", "k");
    /* EXEC unwatched: the next transaction runs. */
    RTC(&b, "+OK\r\n", "SET", "k", "4");
    RTC(&a, "+OK\r\n", "MULTI");
    RTC(&a, "+QUEUED\r\n", "INCR", "k");
    RTC(&a, "*1\r\n:5\r\n", "EXEC");
    /* Untouched watched keys: EXEC runs. */
    RTC(&a, "+OK\r\n", "WATCH", "k");
    RTC(&b, ":1\r\n", "INCR", "unrelated");
    RTC(&a, "+OK\r\n", "MULTI");
    RTC(&a, "+QUEUED\r\n", "INCR", "k");
    RTC(&a, "*1\r\n:6\r\n", "EXEC");
    /* The watcher's own change counts, and inside b's EXEC, and DEL,
     * MSET and FLUSHDB. */
    const char *writers[][6] = {
        {"a", "SET", "k", "x"}, {"b", "DEL", "zz", "k"}, {"b", "MSET", "q", "1", "k", "2"},
        {"b", "FLUSHDB"},       {"bm", "INCR", "k"},
    };
    for (size_t w = 0; w < sizeof writers / sizeof writers[0]; w++) {
        RTC(&a, "+OK\r\n", "SET", "k", "7");
        RTC(&a, "+OK\r\n", "WATCH", "k");
        struct resp_client *wc = writers[w][0][0] == 'a' ? &a : &b;
        char *argv[5];
        size_t len[5], argc = 0;
        for (size_t i = 1; i < 6 && writers[w][i]; i++) {
            argv[argc] = (char *)writers[w][i];
            len[argc++] = strlen(writers[w][i]);
        }
        if (writers[w][0][1] == 'm') {
            RTC(wc, "+OK\r\n", "MULTI");
            resp_execute(wc, argc, argv, len);
            wc->out.len = 0;
            RTC(wc, "*1\r\n:8\r\n", "EXEC");
        } else {
            resp_execute(wc, argc, argv, len);
            resp_batch_end(wc);
            wc->out.len = 0;
        }
        RTC(&a, "+OK\r\n", "MULTI");
        RTC(&a, "+QUEUED\r\n", "SET", "k", "mine");
        bool aborted = run_expect(&a, __LINE__, "*-1\r\n", 5, "EXEC", (const char *)NULL);
        CU_ASSERT(aborted);
        if (!aborted) fprintf(stderr, "  after %s\n", writers[w][1]);
    }
    /* UNWATCH and DISCARD forget. */
    RTC(&a, "+OK\r\n", "WATCH", "k");
    RTC(&a, "+OK\r\n", "UNWATCH");
    RTC(&b, "+OK\r\n", "SET", "k", "9");
    RTC(&a, "+OK\r\n", "MULTI");
    RTC(&a, "+QUEUED\r\n", "INCR", "k");
    RTC(&a, "*1\r\n:10\r\n", "EXEC");
    RTC(&a, "+OK\r\n", "WATCH", "k");
    RTC(&a, "+OK\r\n", "MULTI");
    RTC(&a, "-ERR Command not allowed inside a transaction\r\n", "WATCH", "k");
    RTC(&a, "+OK\r\n", "DISCARD");
    RTC(&b, "+OK\r\n", "SET", "k", "11");
    RTC(&a, "+OK\r\n", "MULTI");
    RTC(&a, "+QUEUED\r\n", "INCR", "k");
    RTC(&a, "*1\r\n:12\r\n", "EXEC");

    resp_client_close(&a);
    resp_client_close(&b);
    done();
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("resp_client", suite_init, suite_clean);
    CU_add_test(su, "test_hello", test_hello);
    CU_add_test(su, "test_client_subcommands", test_client_subcommands);
    CU_add_test(su, "test_select_ping_echo_quit", test_select_ping_echo_quit);
    CU_add_test(su, "test_command_info", test_command_info);
    CU_add_test(su, "test_auth_decision", test_auth_decision);
    CU_add_test(su, "test_hello_with_a_password", test_hello_with_a_password);
    CU_add_test(su, "test_unknown_command_is_redis_text", test_unknown_command_is_redis_text);
    CU_add_test(su, "test_watch", test_watch);
    return tu_run();
}
