/*
 * resp_reply.c -- RESP2 reply encoding; see resp_reply.h.
 *
 * Owns: struct resp_buf (growth, the sticky out-of-memory flag).
 * Invariant: len <= cap; after oom nothing is appended any more.
 */
#include "resp_reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void resp_buf_free(struct resp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

bool resp_buf_reserve(struct resp_buf *b, size_t n)
{
    if (b->oom) return false;
    if (b->cap - b->len >= n) return true;
    if (n > (size_t)-1 / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap - b->len < n) ncap *= 2;
    char *nd = realloc(b->data, ncap);
    if (!nd) {
        b->oom = true;
        return false;
    }
    b->data = nd;
    b->cap = ncap;
    return true;
}

void resp_buf_append(struct resp_buf *b, const void *p, size_t n)
{
    if (!n || !resp_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void resp_buf_truncate(struct resp_buf *b, size_t len)
{
    if (len < b->len) b->len = len;
}

void resp_buf_shrink(struct resp_buf *b, size_t keep)
{
    if (b->len || b->cap <= keep) return;
    free(b->data);
    b->data = NULL;
    b->cap = 0;
}

static void append_line(struct resp_buf *b, char type, const char *s, size_t n)
{
    if (!resp_buf_reserve(b, n + 3)) return;
    b->data[b->len++] = type;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void resp_reply_status(struct resp_buf *b, const char *s)
{
    append_line(b, '+', s, strlen(s));
}

void resp_reply_error(struct resp_buf *b, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
    for (int i = 0; i < n; i++)
        if (msg[i] == '\r' || msg[i] == '\n') msg[i] = ' ';
    append_line(b, '-', msg, (size_t)n);
}

void resp_reply_int(struct resp_buf *b, long long v)
{
    char s[24];
    int n = snprintf(s, sizeof s, "%lld", v);
    append_line(b, ':', s, (size_t)n);
}

void resp_reply_bulk(struct resp_buf *b, const void *p, size_t n)
{
    char h[24];
    int hn = snprintf(h, sizeof h, "%zu", n);
    if (!resp_buf_reserve(b, (size_t)hn + n + 5)) return;
    append_line(b, '$', h, (size_t)hn);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void resp_reply_bulk_str(struct resp_buf *b, const char *s)
{
    resp_reply_bulk(b, s, strlen(s));
}

void resp_reply_nil(struct resp_buf *b)
{
    resp_buf_append(b, "$-1\r\n", 5);
}

void resp_reply_array(struct resp_buf *b, size_t n)
{
    char h[24];
    int hn = snprintf(h, sizeof h, "%zu", n);
    append_line(b, '*', h, (size_t)hn);
}
