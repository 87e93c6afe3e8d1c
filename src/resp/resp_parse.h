/*
 * resp_parse.h -- the bounded, incremental RESP2 request parser (no I/O).
 *
 * A request is either a RESP2 array of bulk strings ("*2\r\n$3\r\nGET\r\n
 * $1\r\nk\r\n", what client libraries send) or an inline command, one line
 * of space-separated words ("PING\r\n", what `nc` or telnet sends; words may
 * be quoted "..." with C escapes or '...').
 *
 * The caller owns the bytes: it keeps the unconsumed input of a connection
 * in one buffer whose first byte is the start of the current request, and
 * calls resp_parse() each time more bytes arrive.  The parser remembers how
 * far it got (it never rescans what it has already accepted), records each
 * argument as an offset and length into that buffer, and says how many
 * bytes the request took once it is complete.  An inline request is
 * unquoted in place, so the buffer must be writable.
 *
 * Limits (struct resp_limits), all checked before any memory is committed:
 * the announced length of a bulk string, the announced number of arguments,
 * the sum of argument lengths of one request, the length of an inline line.
 * Lengths are parsed strictly (ASCII digits, optional '-', no overflow).
 * Memory grows with what has arrived, never with what was announced: the
 * argument table grows by doubling as arguments complete.
 *
 * States of one request (p->state):
 *
 *   START --'*'--> ARRAY_HDR --"*N\r\n"--> ARG_HDR <--------+
 *     |                                      | "$L\r\n"       |
 *     +--other--> INLINE                     v                |
 *                   | "...\n"             ARG_DATA --L+2-----+ (argc < N)
 *                   v                        | (argc == N)
 *                  DONE <--------------------+
 *
 * Any violation moves to ERROR with a message in p->err; the caller replies
 * "-ERR <p->err>" and closes the connection (the stream cannot be resynced).
 */
#ifndef JETFS_RESP_PARSE_H
#define JETFS_RESP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define RESP_MAX_BULK_DEFAULT ((size_t)512 << 20) /* as Redis's proto-max-bulk-len */
#define RESP_MAX_ARGS_DEFAULT ((size_t)1 << 20)
#define RESP_MAX_INLINE_DEFAULT ((size_t)64 << 10)
#define RESP_MAX_REQUEST_DEFAULT ((size_t)512 << 20)

struct resp_limits {
    size_t max_bulk;    /* longest bulk string */
    size_t max_args;    /* most arguments in one array request */
    size_t max_inline;  /* longest inline line, terminator included */
    size_t max_request; /* sum of argument lengths of one request */
};

enum resp_parse_result {
    RESP_PARSE_ERROR = -1, /* p->err says why; close the connection */
    RESP_PARSE_MORE = 0,   /* incomplete: call again with more bytes */
    RESP_PARSE_DONE = 1,   /* p->argc arguments, p->consumed bytes */
};

struct resp_parser {
    struct resp_limits lim;
    int state;          /* internal: where in the request the parser is */
    size_t pos;         /* offset of the first byte not yet accepted */
    size_t scan;        /* offset where the search for a line end resumes */
    size_t expected;    /* arguments announced by the array header */
    size_t bulk_len;    /* length announced for the argument in progress */
    size_t payload;     /* sum of argument lengths so far */
    /* Output, valid after RESP_PARSE_DONE until the next call or reset: */
    size_t argc;        /* 0 for an empty request (blank line, "*0"): skip it */
    size_t *off;        /* argument i is buf[off[i] .. off[i]+len[i]), then a NUL */
    size_t *len;
    size_t cap;         /* allocated entries of off/len */
    size_t consumed;    /* bytes of the request, terminator included */
    char err[96];
};

/* Fills in the defaults for any limit that is 0. */
void resp_limits_default(struct resp_limits *lim);
void resp_parser_init(struct resp_parser *p, const struct resp_limits *lim);
/* Frees the argument table. */
void resp_parser_free(struct resp_parser *p);
/* Ready for the next request (after the caller dropped p->consumed bytes). */
void resp_parser_reset(struct resp_parser *p);
/*
 * Parses the request that starts at buf[0]; n bytes are available.  The
 * same buffer contents (possibly moved, possibly extended) must be passed
 * on every call until DONE or ERROR.  An out-of-memory condition is
 * reported as ERROR ("Protocol error: out of memory").
 */
enum resp_parse_result resp_parse(struct resp_parser *p, char *buf, size_t n);
/* The number of bytes the parser needs at least before it can progress
 * (a hint for sizing reads; 1 when unknown). */
size_t resp_parse_wanted(const struct resp_parser *p, size_t n);

/*
 * Strict decimal integer: optional '-', digits, no leading zeros (except
 * "0"), no spaces, within int64.  Used for request lengths and for command
 * arguments (INCRBY, SCAN cursors...).
 */
bool resp_parse_int64(const char *s, size_t n, long long *out);

#endif
