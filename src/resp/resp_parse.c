/*
 * resp_parse.c -- the bounded, incremental RESP2 request parser; see
 * resp_parse.h for the request grammar, the state diagram and the limits.
 *
 * Owns: struct resp_parser (one per connection; no locking, the owning
 * connection thread is the only user).
 *
 * Invariants, true between calls:
 *   1. pos <= n of the last call: the parser never records an offset past
 *      the bytes it was given, so a moved or extended buffer stays valid.
 *   2. Every recorded argument lies inside [0, pos) and was checked against
 *      max_bulk; payload (their sum plus the one in progress) <= max_request.
 *   3. argc <= expected <= max_args, and cap grows only as arguments
 *      complete (never to the announced count up front).
 *   4. scan >= pos and no '\n' (inline) or '\r' (header) lies in [pos, scan):
 *      a slow sender costs linear, not quadratic, scanning.
 */
#include "resp_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_START,
    ST_INLINE,
    ST_ARRAY_HDR,
    ST_ARG_HDR,
    ST_ARG_DATA,
    ST_DONE,
    ST_ERROR,
};

/* "*" or "$", at most 20 characters of number, "\r\n". */
#define HDR_LINE_MAX 24

void resp_limits_default(struct resp_limits *lim)
{
    if (!lim->max_bulk) lim->max_bulk = RESP_MAX_BULK_DEFAULT;
    if (!lim->max_args) lim->max_args = RESP_MAX_ARGS_DEFAULT;
    if (!lim->max_inline) lim->max_inline = RESP_MAX_INLINE_DEFAULT;
    if (!lim->max_request) lim->max_request = RESP_MAX_REQUEST_DEFAULT;
    if (lim->max_bulk > lim->max_request) lim->max_bulk = lim->max_request;
}

void resp_parser_init(struct resp_parser *p, const struct resp_limits *lim)
{
    memset(p, 0, sizeof *p);
    if (lim) p->lim = *lim;
    resp_limits_default(&p->lim);
    p->state = ST_START;
}

void resp_parser_free(struct resp_parser *p)
{
    free(p->off);
    free(p->len);
    p->off = p->len = NULL;
    p->cap = 0;
}

void resp_parser_reset(struct resp_parser *p)
{
    p->state = ST_START;
    p->pos = p->scan = 0;
    p->expected = p->bulk_len = p->payload = 0;
    p->argc = 0;
    p->consumed = 0;
    p->err[0] = '\0';
}

bool resp_parse_int64(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;

    if (n == 0 || n > 20) return false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (n == 1) return false;
    }
    if (s[i] == '0' && (n - i > 1 || neg)) return false; /* "01", "-0" */
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (long long)v;
    }
    return true;
}

static enum resp_parse_result fail(struct resp_parser *p, const char *msg)
{
    snprintf(p->err, sizeof p->err, "Protocol error: %s", msg);
    p->state = ST_ERROR;
    return RESP_PARSE_ERROR;
}

static bool push_arg(struct resp_parser *p, size_t off, size_t len)
{
    if (p->argc == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 8;
        size_t *noff = realloc(p->off, ncap * sizeof *noff);
        if (!noff) return false;
        p->off = noff;
        size_t *nlen = realloc(p->len, ncap * sizeof *nlen);
        if (!nlen) return false;
        p->len = nlen;
        p->cap = ncap;
    }
    p->off[p->argc] = off;
    p->len[p->argc] = len;
    p->argc++;
    return true;
}

/*
 * A header line "<c><digits>\r\n" at pos.  Returns 1 with *val set, 0 when
 * more bytes are needed, -1 on a malformed line (message in p->err).
 */
static int header_line(struct resp_parser *p, const char *buf, size_t n, const char *what, long long *val)
{
    size_t limit = p->pos + HDR_LINE_MAX;
    size_t end = n < limit ? n : limit;
    size_t i = p->scan > p->pos + 1 ? p->scan : p->pos + 1;
    const char *cr = i < end ? memchr(buf + i, '\r', end - i) : NULL;

    if (!cr) {
        if (n >= limit) {
            char m[64];
            snprintf(m, sizeof m, "too big %s count string", what);
            fail(p, m);
            return -1;
        }
        p->scan = end;
        return 0;
    }
    size_t at = (size_t)(cr - buf);
    if (at + 1 >= n) {
        p->scan = at;
        return 0;
    }
    if (buf[at + 1] != '\n' || !resp_parse_int64(buf + p->pos + 1, at - p->pos - 1, val)) {
        char m[64];
        snprintf(m, sizeof m, "invalid %s length", what);
        fail(p, m);
        return -1;
    }
    p->pos = at + 2;
    p->scan = p->pos;
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * Splits the line buf[0..end) into words, unquoting in place (the output
 * of a word never overtakes its input).  Double quotes take \n \r \t \b \a
 * \\ \" \xHH; single quotes take \'.  A closing quote must be followed by
 * a space or the end of the line.
 */
static enum resp_parse_result split_inline(struct resp_parser *p, char *buf, size_t end)
{
    size_t i = 0;
    for (;;) {
        while (i < end && (buf[i] == ' ' || buf[i] == '\t')) i++;
        if (i == end) return RESP_PARSE_DONE;
        size_t start = i, w = i;
        char quote = 0;
        while (i < end) {
            char c = buf[i];
            if (!quote) {
                if (c == ' ' || c == '\t') break;
                if (c == '"' || c == '\'') {
                    quote = c;
                    i++;
                    continue;
                }
                buf[w++] = c;
                i++;
            } else if (quote == '"' && c == '\\' && i + 1 < end) {
                char e = buf[i + 1];
                int h1, h2;
                if (e == 'x' && i + 3 < end && (h1 = hexval(buf[i + 2])) >= 0 && (h2 = hexval(buf[i + 3])) >= 0) {
                    buf[w++] = (char)(h1 * 16 + h2);
                    i += 4;
                    continue;
                }
                buf[w++] = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == 'b' ? '\b' : e == 'a' ? '\a' : e;
                i += 2;
            } else if (quote == '\'' && c == '\\' && i + 1 < end && buf[i + 1] == '\'') {
                buf[w++] = '\'';
                i += 2;
            } else if (c == quote) {
                i++;
                if (i < end && buf[i] != ' ' && buf[i] != '\t') return fail(p, "unbalanced quotes in request");
                quote = 0;
                break;
            } else {
                buf[w++] = c;
                i++;
            }
        }
        if (quote) return fail(p, "unbalanced quotes in request");
        if (p->argc >= p->lim.max_args) return fail(p, "too many arguments in inline request");
        if (!push_arg(p, start, w - start)) return fail(p, "out of memory");
    }
}

/*
 * Writes a NUL after every argument, for callers that like C strings (the
 * arguments stay binary: use len[]).  The byte after an argument is always
 * one the request already consumed: the '\r' of a bulk's CRLF, or for an
 * inline word the separator, the line end or a byte the unquoting freed.
 */
static void terminate_args(struct resp_parser *p, char *buf)
{
    for (size_t k = 0; k < p->argc; k++) buf[p->off[k] + p->len[k]] = '\0';
}

static enum resp_parse_result parse_inline(struct resp_parser *p, char *buf, size_t n)
{
    size_t from = p->scan;
    size_t end = n < p->lim.max_inline ? n : p->lim.max_inline;
    const char *nl = from < end ? memchr(buf + from, '\n', end - from) : NULL;
    if (!nl) {
        if (n >= p->lim.max_inline) return fail(p, "too big inline request");
        p->scan = end;
        return RESP_PARSE_MORE;
    }
    size_t at = (size_t)(nl - buf);
    size_t line_end = at > 0 && buf[at - 1] == '\r' ? at - 1 : at;
    enum resp_parse_result r = split_inline(p, buf, line_end);
    if (r != RESP_PARSE_DONE) return r;
    for (size_t k = 0; k < p->argc; k++) p->payload += p->len[k];
    p->consumed = at + 1;
    p->pos = p->consumed;
    p->state = ST_DONE;
    terminate_args(p, buf);
    return RESP_PARSE_DONE;
}

enum resp_parse_result resp_parse(struct resp_parser *p, char *buf, size_t n)
{
    long long v;
    int r;

    for (;;) {
        switch (p->state) {
        case ST_START:
            if (n == 0) return RESP_PARSE_MORE;
            p->state = buf[0] == '*' ? ST_ARRAY_HDR : ST_INLINE;
            p->pos = p->scan = 0;
            break;
        case ST_INLINE:
            return parse_inline(p, buf, n);
        case ST_ARRAY_HDR:
            if ((r = header_line(p, buf, n, "multibulk", &v)) <= 0) return r < 0 ? RESP_PARSE_ERROR : RESP_PARSE_MORE;
            if (v < 0 || (unsigned long long)v > p->lim.max_args) return fail(p, "invalid multibulk length");
            p->expected = (size_t)v;
            p->state = p->expected ? ST_ARG_HDR : ST_DONE;
            if (!p->expected) p->consumed = p->pos;
            break;
        case ST_ARG_HDR:
            if (p->pos >= n) return RESP_PARSE_MORE;
            if (buf[p->pos] != '$') {
                char m[48];
                unsigned char c = (unsigned char)buf[p->pos];
                if (c >= 0x20 && c < 0x7f) snprintf(m, sizeof m, "expected '$', got '%c'", c);
                else snprintf(m, sizeof m, "expected '$', got byte 0x%02x", c);
                return fail(p, m);
            }
            if ((r = header_line(p, buf, n, "bulk", &v)) <= 0) return r < 0 ? RESP_PARSE_ERROR : RESP_PARSE_MORE;
            if (v < 0 || (unsigned long long)v > p->lim.max_bulk) return fail(p, "invalid bulk length");
            if ((size_t)v > p->lim.max_request - p->payload) return fail(p, "request too large");
            p->bulk_len = (size_t)v;
            p->payload += p->bulk_len;
            p->state = ST_ARG_DATA;
            break;
        case ST_ARG_DATA:
            if (n - p->pos < p->bulk_len + 2) return RESP_PARSE_MORE;
            if (buf[p->pos + p->bulk_len] != '\r' || buf[p->pos + p->bulk_len + 1] != '\n')
                return fail(p, "expected CRLF after bulk data");
            if (!push_arg(p, p->pos, p->bulk_len)) return fail(p, "out of memory");
            p->pos += p->bulk_len + 2;
            p->scan = p->pos;
            if (p->argc < p->expected) {
                p->state = ST_ARG_HDR;
                break;
            }
            p->consumed = p->pos;
            p->state = ST_DONE;
            terminate_args(p, buf);
            break;
        case ST_DONE:
            return RESP_PARSE_DONE;
        default:
            return RESP_PARSE_ERROR;
        }
    }
}

size_t resp_parse_wanted(const struct resp_parser *p, size_t n)
{
    if (p->state == ST_ARG_DATA && n < p->pos + p->bulk_len + 2) return p->pos + p->bulk_len + 2 - n;
    return 1;
}
