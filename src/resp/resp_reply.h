/*
 * resp_reply.h -- RESP2 reply encoding into a connection's output buffer.
 *
 * The buffer grows as replies are appended.  Running out of memory is
 * sticky (b->oom): later appends are dropped and the connection must be
 * closed, since a reply stream with a hole in it cannot be resynced.
 * No locking: a buffer belongs to one connection thread.
 */
#ifndef JETFS_RESP_REPLY_H
#define JETFS_RESP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct resp_buf {
    char *data;
    size_t len, cap;
    bool oom;
};

void resp_buf_free(struct resp_buf *b);
/* Room for n more bytes; false (and oom) when it cannot be had. */
bool resp_buf_reserve(struct resp_buf *b, size_t n);
void resp_buf_append(struct resp_buf *b, const void *p, size_t n);
/* Drops everything after the first len bytes (undoing a partial reply). */
void resp_buf_truncate(struct resp_buf *b, size_t len);
/* Gives memory back after a large reply was sent and the buffer is empty. */
void resp_buf_shrink(struct resp_buf *b, size_t keep);

void resp_reply_status(struct resp_buf *b, const char *s);      /* +s */
/* -<formatted text>; \r and \n in the text become spaces.  The text
 * starts with the error code word ("ERR ...", "EXECABORT ..."). */
void resp_reply_error(struct resp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_reply_int(struct resp_buf *b, long long v);           /* :v */
void resp_reply_bulk(struct resp_buf *b, const void *p, size_t n); /* $n data */
void resp_reply_bulk_str(struct resp_buf *b, const char *s);
void resp_reply_nil(struct resp_buf *b);                        /* $-1 */
void resp_reply_array(struct resp_buf *b, size_t n);            /* *n, then n replies */

#endif
