/*
 * test_resp_parse.c -- the RESP2 request parser alone, from tables of
 * {input bytes, limits, expected result}.  Every case is run three ways:
 * all bytes at once; fed one byte at a time, each prefix copied into a
 * fresh buffer of exactly that size (so offsets, not pointers, must carry
 * the state, and ASan sees any read past the bytes given); and pipelined
 * behind a complete PING, to check that consumed is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "resp_parse.h"
#include "testutil.h"

#define MAXA 6

struct pcase {
    const char *name;
    const char *in;
    size_t inlen;                /* 0: strlen(in) */
    struct resp_limits lim;      /* zeros: defaults */
    enum resp_parse_result want; /* DONE, MORE, or ERROR */
    size_t argc;
    const char *argv[MAXA];
    size_t argl[MAXA];           /* 0: strlen(argv[i]) (use for binary args) */
    size_t consumed;             /* DONE: 0 means the whole input */
    const char *err;             /* ERROR: a substring of p.err */
};

#define L(s) s, sizeof(s) - 1

static const struct pcase cases[] = {
    /* complete arrays */
    {"array get", L("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), {0}, RESP_PARSE_DONE, 2, {"GET", "k"}, {0}, 0, NULL},
    {"array empty bulk", L("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"), {0}, RESP_PARSE_DONE, 2, {"ECHO", ""}, {0}, 0, NULL},
    {"array binary bulk with CRLF and NUL inside", L("*1\r\n$5\r\na\r\n\0b\r\n"), {0}, RESP_PARSE_DONE, 1, {"a\r\n\0b"},
     {5}, 0, NULL},
    {"array of zero is an empty request", L("*0\r\n"), {0}, RESP_PARSE_DONE, 0, {NULL}, {0}, 0, NULL},
    {"array max args exactly", L("*2\r\n$1\r\na\r\n$1\r\nb\r\n"), {0, 2, 0, 0}, RESP_PARSE_DONE, 2, {"a", "b"}, {0}, 0,
     NULL},
    {"bulk at max_bulk exactly", L("*1\r\n$4\r\nabcd\r\n"), {4, 0, 0, 0}, RESP_PARSE_DONE, 1, {"abcd"}, {0}, 0, NULL},
    /* inline commands */
    {"inline ping", L("PING\r\n"), {0}, RESP_PARSE_DONE, 1, {"PING"}, {0}, 0, NULL},
    {"inline bare LF", L("PING\n"), {0}, RESP_PARSE_DONE, 1, {"PING"}, {0}, 0, NULL},
    {"inline several spaces and tabs", L("  SET \t k   v \r\n"), {0}, RESP_PARSE_DONE, 3, {"SET", "k", "v"}, {0}, 0, NULL},
    {"inline quotes", L("SET \"a b\" 'c d'\r\n"), {0}, RESP_PARSE_DONE, 3, {"SET", "a b", "c d"}, {0}, 0, NULL},
    {"inline escapes", L("ECHO \"\\x41\\n\\\"q\" 'it\\'s'\r\n"), {0}, RESP_PARSE_DONE, 3, {"ECHO", "A\n\"q", "it's"},
     {0}, 0, NULL},
    {"inline empty quoted arg", L("ECHO \"\"\r\n"), {0}, RESP_PARSE_DONE, 2, {"ECHO", ""}, {0}, 0, NULL},
    {"inline binary garbage is a (strange) command", L("\x01\xff\xfe\r\n"), {0}, RESP_PARSE_DONE, 1, {"\x01\xff\xfe"},
     {0}, 0, NULL},
    {"inline line at max_inline exactly", L("ab\r\n"), {0, 0, 4, 0}, RESP_PARSE_DONE, 1, {"ab"}, {0}, 0, NULL},
    /* empty lines */
    {"empty line CRLF", L("\r\n"), {0}, RESP_PARSE_DONE, 0, {NULL}, {0}, 0, NULL},
    {"empty line LF", L("\n"), {0}, RESP_PARSE_DONE, 0, {NULL}, {0}, 0, NULL},
    {"blank line", L("   \t \r\n"), {0}, RESP_PARSE_DONE, 0, {NULL}, {0}, 0, NULL},
    /* partial frames */
    {"partial header", L("*2\r"), {0}, RESP_PARSE_MORE, 0, {NULL}, {0}, 0, NULL},
    {"partial bulk data", L("*1\r\n$10\r\nabc"), {0}, RESP_PARSE_MORE, 0, {NULL}, {0}, 0, NULL},
    {"partial bulk CRLF", L("*1\r\n$3\r\nabc\r"), {0}, RESP_PARSE_MORE, 0, {NULL}, {0}, 0, NULL},
    {"partial inline", L("PIN"), {0}, RESP_PARSE_MORE, 0, {NULL}, {0}, 0, NULL},
    /* huge announced lengths: accepted up to the limit, costing nothing */
    {"announced 512 MiB bulk waits", L("*1\r\n$536870912\r\n"), {0}, RESP_PARSE_MORE, 0, {NULL}, {0}, 0, NULL},
    {"announced 1M args waits", L("*1048576\r\n"), {0}, RESP_PARSE_MORE, 0, {NULL}, {0}, 0, NULL},
    {"bulk over 512 MiB", L("*1\r\n$536870913\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid bulk length"},
    {"args over 1M", L("*1048577\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    {"bulk over max_bulk", L("*1\r\n$5\r\n"), {4, 0, 0, 0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid bulk length"},
    {"args over max_args", L("*3\r\n"), {0, 2, 0, 0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    {"request over max_request", L("*2\r\n$6\r\nabcdef\r\n$5\r\n"), {0, 0, 0, 10}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "request too large"},
    {"max_request caps max_bulk", L("*1\r\n$11\r\n"), {0, 0, 0, 10}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "invalid bulk length"},
    {"inline over max_inline", L("PING PING"), {0, 0, 8, 0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "too big inline request"},
    {"binary garbage without newline", L("\x00\x01\x02\x03\x04\x05\x06\x07\x08"), {0, 0, 8, 0}, RESP_PARSE_ERROR, 0,
     {NULL}, {0}, 0, "too big inline request"},
    /* negative lengths */
    {"negative array", L("*-1\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    {"negative bulk", L("*1\r\n$-1\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid bulk length"},
    {"negative huge bulk", L("*1\r\n$-9223372036854775808\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "invalid bulk length"},
    /* non-numeric lengths */
    {"letters for array", L("*abc\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    {"empty array length", L("*\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    {"plus sign", L("*+1\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    {"leading zero", L("*01\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    {"space in bulk length", L("*1\r\n$ 3\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid bulk length"},
    {"letters for bulk", L("*1\r\n$x\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid bulk length"},
    {"CR without LF", L("*1\rX"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "invalid multibulk length"},
    /* overflow */
    {"array length past int64", L("*9223372036854775808\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "invalid multibulk length"},
    {"bulk length past uint64", L("*1\r\n$18446744073709551617\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "bulk"},
    {"endless digits", L("*1234567890123456789012345678901234567890"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "too big multibulk count string"},
    {"endless bulk digits", L("*1\r\n$1234567890123456789012345678901234567890"), {0}, RESP_PARSE_ERROR, 0, {NULL},
     {0}, 0, "too big bulk count string"},
    /* framing */
    {"not a bulk", L("*1\r\n:3\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "expected '$', got ':'"},
    {"binary where a bulk belongs", L("*1\r\n\x01"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "got byte 0x01"},
    {"bulk longer than announced", L("*1\r\n$3\r\nGETX\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "expected CRLF after bulk data"},
    {"unbalanced double quote", L("SET \"a b\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0, "unbalanced quotes"},
    {"text glued to a closing quote", L("SET \"a\"b\r\n"), {0}, RESP_PARSE_ERROR, 0, {NULL}, {0}, 0,
     "unbalanced quotes"},
};

static size_t inlen(const struct pcase *c)
{
    return c->inlen;
}

/* Checks a DONE or ERROR result against the case. */
static void check_result(const struct pcase *c, const struct resp_parser *p, const char *buf,
                         enum resp_parse_result r, size_t base)
{
    CU_ASSERT_EQUAL(r, c->want);
    if (r != c->want) {
        fprintf(stderr, "\ncase '%s': result %d, want %d (err '%s')\n", c->name, r, c->want, p->err);
        return;
    }
    if (r == RESP_PARSE_ERROR) {
        CU_ASSERT_PTR_NOT_NULL(strstr(p->err, c->err));
        CU_ASSERT_PTR_NOT_NULL(strstr(p->err, "Protocol error: "));
        if (!strstr(p->err, c->err)) fprintf(stderr, "\ncase '%s': err '%s', want '%s'\n", c->name, p->err, c->err);
        return;
    }
    if (r != RESP_PARSE_DONE) return;
    CU_ASSERT_EQUAL(p->argc, c->argc);
    CU_ASSERT_EQUAL(p->consumed, c->consumed ? c->consumed : inlen(c) - base);
    if (p->argc != c->argc) {
        fprintf(stderr, "\ncase '%s': argc %zu, want %zu\n", c->name, p->argc, c->argc);
        return;
    }
    for (size_t i = 0; i < c->argc; i++) {
        size_t want = c->argl[i] ? c->argl[i] : strlen(c->argv[i]);
        CU_ASSERT_EQUAL(p->len[i], want);
        if (p->len[i] != want) continue;
        CU_ASSERT(memcmp(buf + p->off[i], c->argv[i], want) == 0);
        CU_ASSERT_EQUAL(buf[p->off[i] + want], '\0'); /* every argument is NUL-terminated */
        if (memcmp(buf + p->off[i], c->argv[i], want) != 0) fprintf(stderr, "\ncase '%s': arg %zu differs\n", c->name, i);
    }
}

static void test_cases_whole(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct pcase *c = &cases[k];
        struct resp_parser p;
        char *buf = malloc(inlen(c) + 1);
        CU_ASSERT_FATAL(buf != NULL);
        memcpy(buf, c->in, inlen(c));
        resp_parser_init(&p, &c->lim);
        enum resp_parse_result r = resp_parse(&p, buf, inlen(c));
        check_result(c, &p, buf, r, 0);
        resp_parser_free(&p);
        free(buf);
    }
}

/* One byte at a time, each prefix in a fresh exact-size buffer. */
static void test_cases_byte_by_byte(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct pcase *c = &cases[k];
        struct resp_parser p;
        enum resp_parse_result r = RESP_PARSE_MORE;
        char *buf = NULL;
        size_t n;
        resp_parser_init(&p, &c->lim);
        for (n = 1; n <= inlen(c) && r == RESP_PARSE_MORE; n++) {
            free(buf);
            buf = malloc(n);
            CU_ASSERT_FATAL(buf != NULL);
            memcpy(buf, c->in, n);
            r = resp_parse(&p, buf, n);
        }
        /* DONE exactly when the last byte arrived, never before. */
        if (c->want == RESP_PARSE_DONE) CU_ASSERT_EQUAL(n - 1, inlen(c));
        check_result(c, &p, buf, r, 0);
        resp_parser_free(&p);
        free(buf);
    }
}

/* Behind a complete PING: the first request consumes exactly its bytes. */
static void test_cases_pipelined(void)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct pcase *c = &cases[k];
        struct resp_parser p;
        size_t total = sizeof ping - 1 + inlen(c);
        char *buf = malloc(total);
        CU_ASSERT_FATAL(buf != NULL);
        memcpy(buf, ping, sizeof ping - 1);
        memcpy(buf + sizeof ping - 1, c->in, inlen(c));
        resp_parser_init(&p, &c->lim);
        CU_ASSERT_EQUAL(resp_parse(&p, buf, total), RESP_PARSE_DONE);
        CU_ASSERT_EQUAL(p.argc, 1);
        CU_ASSERT_EQUAL(p.consumed, sizeof ping - 1);
        size_t used = p.consumed;
        resp_parser_reset(&p);
        enum resp_parse_result r = resp_parse(&p, buf + used, total - used);
        check_result(c, &p, buf + used, r, 0);
        resp_parser_free(&p);
        free(buf);
    }
}

/* Many requests of both kinds back to back, parsed one after another. */
static void test_pipeline_stream(void)
{
    static const char in[] = "*1\r\n$4\r\nPING\r\nECHO x\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\nQUIT\n*1\r\n$3\r\nDBS";
    static const size_t want_argc[] = {1, 2, 0, 2, 0, 1};
    char buf[sizeof in];
    struct resp_parser p;
    size_t at = 0, nreq = 0;
    memcpy(buf, in, sizeof in);
    resp_parser_init(&p, NULL);
    for (;;) {
        enum resp_parse_result r = resp_parse(&p, buf + at, sizeof in - 1 - at);
        if (r != RESP_PARSE_DONE) {
            CU_ASSERT_EQUAL(r, RESP_PARSE_MORE); /* the trailing partial request */
            break;
        }
        CU_ASSERT_FATAL(nreq < sizeof want_argc / sizeof want_argc[0]);
        CU_ASSERT_EQUAL(p.argc, want_argc[nreq]);
        nreq++;
        at += p.consumed;
        resp_parser_reset(&p);
    }
    CU_ASSERT_EQUAL(nreq, 6);
    CU_ASSERT_EQUAL(at, sizeof in - 1 - strlen("*1\r\n$3\r\nDBS"));
    resp_parser_free(&p);
}

/* An announced length costs no memory until its bytes arrive. */
static void test_announced_lengths_allocate_nothing(void)
{
    struct resp_parser p;
    char hdr[] = "*1048576\r\n$536870912\r\n";
    resp_parser_init(&p, NULL);
    CU_ASSERT_EQUAL(resp_parse(&p, hdr, sizeof hdr - 1), RESP_PARSE_MORE);
    CU_ASSERT_EQUAL(p.cap, 0);
    CU_ASSERT_EQUAL(p.argc, 0);
    CU_ASSERT_EQUAL(resp_parse_wanted(&p, sizeof hdr - 1), (size_t)536870912 + 2);
    resp_parser_free(&p);

    /* 100000 one-byte arguments: the table grows with them, not before. */
    size_t n = 100000, len = 0;
    char *buf = malloc(16 + n * 7);
    CU_ASSERT_FATAL(buf != NULL);
    len += (size_t)sprintf(buf, "*%zu\r\n", n);
    resp_parser_init(&p, NULL);
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + len, "$1\r\nx\r\n", 7);
        len += 7;
        if (i == n / 2) {
            CU_ASSERT_EQUAL(resp_parse(&p, buf, len), RESP_PARSE_MORE);
            CU_ASSERT(p.cap >= n / 2 && p.cap < n);
        }
    }
    CU_ASSERT_EQUAL(resp_parse(&p, buf, len), RESP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.argc, n);
    CU_ASSERT_EQUAL(p.consumed, len);
    resp_parser_free(&p);
    free(buf);
}

/* A slow sender of a long line costs linear scanning (invariant 4). */
static void test_slow_inline_line_is_not_rescanned(void)
{
    struct resp_parser p;
    size_t n = RESP_MAX_INLINE_DEFAULT - 2;
    char *buf = malloc(n + 2);
    CU_ASSERT_FATAL(buf != NULL);
    memset(buf, 'a', n);
    memcpy(buf + n, "\r\n", 2);
    resp_parser_init(&p, NULL);
    for (size_t i = 1; i <= n; i++) {
        CU_ASSERT_EQUAL_FATAL(resp_parse(&p, buf, i), RESP_PARSE_MORE);
        CU_ASSERT_EQUAL_FATAL(p.scan, i);
    }
    CU_ASSERT_EQUAL(resp_parse(&p, buf, n + 2), RESP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.argc, 1);
    CU_ASSERT_EQUAL(p.len[0], n);
    resp_parser_free(&p);
    free(buf);
}

struct icase {
    const char *s;
    bool ok;
    long long v;
};

static void test_int64_strict(void)
{
    static const struct icase ic[] = {
        {"0", true, 0},
        {"1", true, 1},
        {"-1", true, -1},
        {"9223372036854775807", true, 9223372036854775807LL},
        {"-9223372036854775808", true, -9223372036854775807LL - 1},
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
        {"18446744073709551616", false, 0},
        {"99999999999999999999", false, 0},
        {"", false, 0},
        {"-", false, 0},
        {"-0", false, 0},
        {"01", false, 0},
        {"+1", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1a", false, 0},
        {"0x10", false, 0},
        {"123456789012345678901", false, 0},
    };
    for (size_t k = 0; k < sizeof ic / sizeof ic[0]; k++) {
        long long v = 12345;
        bool ok = resp_parse_int64(ic[k].s, strlen(ic[k].s), &v);
        CU_ASSERT_EQUAL(ok, ic[k].ok);
        if (ok != ic[k].ok) fprintf(stderr, "\nint64 '%s': %d\n", ic[k].s, ok);
        if (ok && ic[k].ok) CU_ASSERT_EQUAL(v, ic[k].v);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("resp_parse", NULL, NULL);
    CU_add_test(su, "test_cases_whole", test_cases_whole);
    CU_add_test(su, "test_cases_byte_by_byte", test_cases_byte_by_byte);
    CU_add_test(su, "test_cases_pipelined", test_cases_pipelined);
    CU_add_test(su, "test_pipeline_stream", test_pipeline_stream);
    CU_add_test(su, "test_announced_lengths_allocate_nothing", test_announced_lengths_allocate_nothing);
    CU_add_test(su, "test_slow_inline_line_is_not_rescanned", test_slow_inline_line_is_not_rescanned);
    CU_add_test(su, "test_int64_strict", test_int64_strict);
    return tu_run();
}
