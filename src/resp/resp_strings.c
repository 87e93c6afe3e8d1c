/*
 * resp_strings.c -- the commands of Redis's string family and the generic
 * key commands (DEL, EXISTS, TYPE, RENAME...), and the expiry commands
 * (EXPIRE..., TTL..., PERSIST), with Redis 7's replies and error texts.
 *
 * Every value is a string: a key of RESP_TABLE maps to its bytes; an
 * integer is its decimal text, a float its shortest text (INCRBYFLOAT), as
 * Redis stores them.  A key's expiry is a row of RESP_EXPIRES_TABLE
 * (resp_expire.c).  Each handler runs inside the transaction resp_execute
 * opened for it (a write's commits; a read of several keys rolls back), so
 * a write of several keys (MSETNX, RENAME, DEL k1 k2) is atomic.
 *
 * The expiry rule (resp_expire.c, invariant 2): a read treats an expired
 * key as absent (value_get, key_live); a write first calls resp_exp_reap on
 * each key it touches, which deletes an expired one, and then works on the
 * key as Redis would on an absent one.  Which writes keep a key's expiry
 * is Redis's: SET (without KEEPTTL), GETSET, MSET, MSETNX and SETNX drop it;
 * INCR..., APPEND, SETRANGE keep it; RENAME moves it.
 *
 * Invariant: a handler replies its argument errors before it changes
 * anything (resp_commands.c, invariant 3).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "resp_commands.h"

#define NOT_INTEGER "ERR value is not an integer or out of range"
#define SYNTAX "ERR syntax error"

/* ---- values ---- */

bool resp_value_ok(struct resp_client *c, size_t n)
{
    if (n <= JET_cbValueMost) return true;
    resp_reply_error(&c->out, "ERR value too large (max %u bytes)", JET_cbValueMost);
    return false;
}

/* Reads key's value into c->scratch, expired or not; *pn gets its length.
 * JET_errRecordNotFound when the key is absent. */
static JET_ERR value_read(struct resp_client *c, const char *key, size_t klen, size_t *pn)
{
    if (c->no_table) return JET_errRecordNotFound;
    for (;;) {
        unsigned long actual = 0;
        JET_ERR err = JetRetrieveKV(c->ses, c->table, key, (unsigned long)klen, c->scratch,
                                    (unsigned long)c->scratch_cap, &actual, 0);
        if (err < 0) return err;
        if (err != JET_wrnBufferTruncated && actual <= c->scratch_cap) {
            *pn = actual;
            return JET_errSuccess;
        }
        /* Larger than the buffer: make room, retry. */
        char *ns = realloc(c->scratch, actual);
        if (!ns) return JET_errOutOfMemory;
        c->scratch = ns;
        c->scratch_cap = actual;
    }
}

/* As value_read, for a read: an expired key is absent. */
static JET_ERR value_get(struct resp_client *c, const char *key, size_t klen, size_t *pn)
{
    bool live = true;
    JET_ERR err = resp_exp_live(c, key, klen, &live);
    if (err < 0) return err;
    if (!live) return JET_errRecordNotFound;
    return value_read(c, key, klen, pn);
}

/* Is key there (and, if expiry is checked, not expired)?  A zero-byte
 * read: the value is not copied. */
static JET_ERR key_exists(struct resp_client *c, const char *key, size_t n, bool check_expiry, bool *present)
{
    unsigned long actual = 0;
    char b;
    *present = false;
    if (c->no_table) return JET_errSuccess;
    if (check_expiry) {
        bool live = true;
        JET_ERR err = resp_exp_live(c, key, n, &live);
        if (err < 0 || !live) return err;
    }
    JET_ERR err = JetRetrieveKV(c->ses, c->table, key, (unsigned long)n, &b, 0, &actual, 0);
    if (err == JET_errRecordNotFound) return JET_errSuccess;
    if (err < 0) return err;
    *present = true;
    return JET_errSuccess;
}

static bool keys_ok(struct resp_client *c, size_t from, size_t argc, char **argv, size_t *len, size_t step)
{
    for (size_t i = from; i < argc; i += step)
        if (!resp_key_ok(c, argv[i], len[i])) return false;
    return true;
}

/* ---- expiry arguments ---- */

enum ttl_opt { TTL_NONE, TTL_EX, TTL_PX, TTL_EXAT, TTL_PXAT, TTL_KEEP, TTL_PERSIST };

static enum ttl_opt ttl_word(const char *a)
{
    if (resp_arg_is(a, "ex")) return TTL_EX;
    if (resp_arg_is(a, "px")) return TTL_PX;
    if (resp_arg_is(a, "exat")) return TTL_EXAT;
    if (resp_arg_is(a, "pxat")) return TTL_PXAT;
    return TTL_NONE;
}

/*
 * The absolute deadline (ms) an EX/PX/EXAT/PXAT argument names, as SET and
 * GETEX read it; false after replying the error.
 */
static bool ttl_deadline(struct resp_client *c, enum ttl_opt opt, const char *arg, size_t n, const char *cmd,
                         long long *deadline)
{
    long long v;
    bool seconds = opt == TTL_EX || opt == TTL_EXAT;
    if (!resp_parse_int64(arg, n, &v)) {
        resp_reply_error(&c->out, NOT_INTEGER);
        return false;
    }
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) goto invalid;
    if (seconds) v *= 1000;
    if (opt == TTL_EX || opt == TTL_PX) {
        long long now = resp_now_ms();
        if (v > LLONG_MAX - now) goto invalid;
        v += now;
    }
    *deadline = v;
    return true;
invalid:
    resp_reply_error(&c->out, "ERR invalid expire time in '%s' command", cmd);
    return false;
}

/* Whether the request may set an expiry (resp_execute then creates the
 * expiry table first, outside any transaction). */
bool resp_wants_ttl(const struct resp_command *cmd, size_t argc, char **argv)
{
    if (!(cmd->flags & RESP_CMD_TTL)) return false;
    size_t from = strcmp(cmd->name, "set") == 0 ? 3 : strcmp(cmd->name, "getex") == 0 ? 2 : argc;
    if (from == argc && strcmp(cmd->name, "set") != 0 && strcmp(cmd->name, "getex") != 0) return true;
    for (size_t i = from; i < argc; i++)
        if (ttl_word(argv[i]) != TTL_NONE) return true;
    return false;
}

/* ---- GET, SET and their kin ---- */

JET_ERR resp_cmd_get(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    size_t n = 0;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = value_get(c, argv[1], len[1], &n);
    if (err == JET_errRecordNotFound) {
        resp_reply_nil(&c->out);
        return JET_errSuccess;
    }
    if (err < 0) return err;
    resp_reply_bulk(&c->out, c->scratch, n);
    return JET_errSuccess;
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL] */
JET_ERR resp_cmd_set(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    bool nx = false, xx = false, get = false;
    enum ttl_opt ttl = TTL_NONE;
    size_t ttl_arg = 0;
    long long deadline = 0, old_deadline = 0;
    JET_ERR err;
    size_t oldn = 0;
    bool had_old = false;

    for (size_t i = 3; i < argc; i++) {
        enum ttl_opt w = ttl_word(argv[i]);
        if (resp_arg_is(argv[i], "nx") && !xx) {
            nx = true;
        } else if (resp_arg_is(argv[i], "xx") && !nx) {
            xx = true;
        } else if (resp_arg_is(argv[i], "get")) {
            get = true;
        } else if (resp_arg_is(argv[i], "keepttl") && ttl == TTL_NONE) {
            ttl = TTL_KEEP;
        } else if (w != TTL_NONE && ttl == TTL_NONE && i + 1 < argc) {
            ttl = w;
            ttl_arg = ++i;
        } else {
            resp_reply_error(&c->out, SYNTAX);
            return JET_errSuccess;
        }
    }
    if (ttl_arg && !ttl_deadline(c, ttl, argv[ttl_arg], len[ttl_arg], "set", &deadline)) return JET_errSuccess;
    if (!resp_key_ok(c, argv[1], len[1]) || !resp_value_ok(c, len[2])) return JET_errSuccess;
    /* A new deadline replaces whatever was there, expired or not: a plain
     * SET EX need not look at the old one (one B+tree descent fewer). */
    bool blind = ttl_arg && !nx && !xx && !get;
    if (!blind && (err = resp_exp_reap(c, argv[1], len[1], &old_deadline)) < 0) return err;
    if (get) {
        err = value_read(c, argv[1], len[1], &oldn);
        if (err < 0 && err != JET_errRecordNotFound) return err;
        had_old = err >= 0;
    }
    JET_GRBIT grbit = nx ? JET_bitPutInsert : xx ? JET_bitPutReplace : 0;
    err = JetPutKV(c->ses, c->table, argv[1], (unsigned long)len[1], argv[2], (unsigned long)len[2], grbit);
    bool skipped = (nx && err == JET_errKeyDuplicate) || (xx && err == JET_errRecordNotFound);
    if (err < 0 && !skipped) return err;
    if (!skipped) {
        if (ttl_arg) err = resp_exp_set(c, argv[1], len[1], deadline);
        else if (ttl != TTL_KEEP && old_deadline) err = resp_exp_clear(c, argv[1], len[1]);
        if (err < 0) return err;
    }
    if (get) {
        if (had_old) resp_reply_bulk(&c->out, c->scratch, oldn);
        else resp_reply_nil(&c->out);
    } else if (skipped) {
        resp_reply_nil(&c->out);
    } else {
        resp_reply_status(&c->out, "OK");
    }
    return JET_errSuccess;
}

/* SETEX key seconds value, PSETEX key milliseconds value: SET ... EX|PX. */
JET_ERR resp_cmd_setex(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    bool ms = argv[0][0] == 'p' || argv[0][0] == 'P';
    long long deadline;
    (void)argc;
    if (!ttl_deadline(c, ms ? TTL_PX : TTL_EX, argv[2], len[2], ms ? "psetex" : "setex", &deadline))
        return JET_errSuccess;
    if (!resp_key_ok(c, argv[1], len[1]) || !resp_value_ok(c, len[3])) return JET_errSuccess;
    JET_ERR err = JetPutKV(c->ses, c->table, argv[1], (unsigned long)len[1], argv[3], (unsigned long)len[3], 0);
    if (err >= 0) err = resp_exp_set(c, argv[1], len[1], deadline);
    if (err < 0) return err;
    resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

JET_ERR resp_cmd_setnx(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long dl;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1]) || !resp_value_ok(c, len[2])) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    if (err < 0) return err;
    err = JetPutKV(c->ses, c->table, argv[1], (unsigned long)len[1], argv[2], (unsigned long)len[2], JET_bitPutInsert);
    if (err < 0 && err != JET_errKeyDuplicate) return err;
    resp_reply_int(&c->out, err == JET_errKeyDuplicate ? 0 : 1);
    return JET_errSuccess;
}

/* GETSET key value: SET key value GET. */
JET_ERR resp_cmd_getset(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long dl;
    size_t oldn = 0;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1]) || !resp_value_ok(c, len[2])) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    if (err < 0) return err;
    err = value_read(c, argv[1], len[1], &oldn);
    if (err < 0 && err != JET_errRecordNotFound) return err;
    bool had_old = err >= 0;
    if ((err = JetPutKV(c->ses, c->table, argv[1], (unsigned long)len[1], argv[2], (unsigned long)len[2], 0)) < 0)
        return err;
    if (dl && (err = resp_exp_clear(c, argv[1], len[1])) < 0) return err;
    if (had_old) resp_reply_bulk(&c->out, c->scratch, oldn);
    else resp_reply_nil(&c->out);
    return JET_errSuccess;
}

JET_ERR resp_cmd_getdel(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long dl;
    size_t n = 0;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    if (err < 0) return err;
    err = value_read(c, argv[1], len[1], &n);
    if (err == JET_errRecordNotFound) {
        resp_reply_nil(&c->out);
        return JET_errSuccess;
    }
    if (err < 0) return err;
    if ((err = JetDeleteKV(c->ses, c->table, argv[1], (unsigned long)len[1])) < 0) return err;
    if (dl && (err = resp_exp_clear(c, argv[1], len[1])) < 0) return err;
    resp_reply_bulk(&c->out, c->scratch, n);
    return JET_errSuccess;
}

/* GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST] */
JET_ERR resp_cmd_getex(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    enum ttl_opt ttl = TTL_NONE;
    size_t ttl_arg = 0;
    long long deadline = 0, dl;
    size_t n = 0;

    for (size_t i = 2; i < argc; i++) {
        enum ttl_opt w = ttl_word(argv[i]);
        if (resp_arg_is(argv[i], "persist") && ttl == TTL_NONE) {
            ttl = TTL_PERSIST;
        } else if (w != TTL_NONE && ttl == TTL_NONE && i + 1 < argc) {
            ttl = w;
            ttl_arg = ++i;
        } else {
            resp_reply_error(&c->out, SYNTAX);
            return JET_errSuccess;
        }
    }
    if (ttl_arg && !ttl_deadline(c, ttl, argv[ttl_arg], len[ttl_arg], "getex", &deadline)) return JET_errSuccess;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    if (err < 0) return err;
    err = value_read(c, argv[1], len[1], &n);
    if (err == JET_errRecordNotFound) {
        resp_reply_nil(&c->out);
        return JET_errSuccess;
    }
    if (err < 0) return err;
    if (ttl_arg && deadline <= resp_now_ms()) {
        /* A deadline already past deletes the key, as Redis does. */
        if ((err = JetDeleteKV(c->ses, c->table, argv[1], (unsigned long)len[1])) < 0) return err;
        err = resp_exp_clear(c, argv[1], len[1]);
    } else if (ttl_arg) {
        err = resp_exp_set(c, argv[1], len[1], deadline);
    } else if (ttl == TTL_PERSIST && dl) {
        err = resp_exp_clear(c, argv[1], len[1]);
    }
    if (err < 0) return err;
    resp_reply_bulk(&c->out, c->scratch, n);
    return JET_errSuccess;
}

JET_ERR resp_cmd_strlen(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    unsigned long actual = 0;
    char b;
    bool live = true;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = resp_exp_live(c, argv[1], len[1], &live);
    if (err < 0) return err;
    if (live && !c->no_table) {
        err = JetRetrieveKV(c->ses, c->table, argv[1], (unsigned long)len[1], &b, 0, &actual, 0);
        if (err == JET_errRecordNotFound) actual = 0;
        else if (err < 0) return err;
    }
    resp_reply_int(&c->out, live ? (long long)actual : 0);
    return JET_errSuccess;
}

/* GETRANGE key start end: Redis's index rules (negative from the end,
 * clamped; an empty string when the range is empty). */
JET_ERR resp_cmd_getrange(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long start, end;
    size_t n = 0;
    (void)argc;
    if (!resp_parse_int64(argv[2], len[2], &start) || !resp_parse_int64(argv[3], len[3], &end)) {
        resp_reply_error(&c->out, NOT_INTEGER);
        return JET_errSuccess;
    }
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = value_get(c, argv[1], len[1], &n);
    if (err == JET_errRecordNotFound) n = 0;
    else if (err < 0) return err;
    long long sl = (long long)n;
    if (start < 0 && end < 0 && start > end) {
        resp_reply_bulk(&c->out, "", 0);
        return JET_errSuccess;
    }
    if (start < 0) start += sl;
    if (end < 0) end += sl;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= sl) end = sl - 1;
    if (sl == 0 || start > end) resp_reply_bulk(&c->out, "", 0);
    else resp_reply_bulk(&c->out, c->scratch + start, (size_t)(end - start + 1));
    return JET_errSuccess;
}

/* The new value of APPEND or SETRANGE, built in the B+tree's one descent. */
struct splice {
    long long offset; /* -1: append */
    const char *data;
    size_t n;
    char *buf;        /* the new value (freed by the caller) */
    size_t newlen;
};

#define SPLICE_TOO_BIG 1

static JET_ERR splice_fn(void *arg, const void *old, unsigned long oldlen, int exists, const void **pnew,
                         unsigned long *pnewlen)
{
    struct splice *x = arg;
    size_t olen = exists ? oldlen : 0;
    size_t at = x->offset < 0 ? olen : (size_t)x->offset;
    size_t nl = at + x->n > olen ? at + x->n : olen;
    if (nl > JET_cbValueMost) return SPLICE_TOO_BIG;
    free(x->buf);
    if (!(x->buf = malloc(nl ? nl : 1))) return JET_errOutOfMemory;
    if (olen) memcpy(x->buf, old, olen);
    if (at > olen) memset(x->buf + olen, 0, at - olen);
    memcpy(x->buf + at, x->data, x->n);
    x->newlen = nl;
    *pnew = x->buf;
    *pnewlen = (unsigned long)nl;
    return JET_errSuccess;
}

static JET_ERR splice_run(struct resp_client *c, const char *key, size_t klen, struct splice *x)
{
    long long dl;
    JET_ERR err = resp_exp_reap(c, key, klen, &dl);
    if (err < 0) return err;
    err = JetUpdateKV(c->ses, c->table, key, (unsigned long)klen, splice_fn, x);
    free(x->buf);
    x->buf = NULL;
    if (err < 0) return err;
    if (err == SPLICE_TOO_BIG)
        resp_reply_error(&c->out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    else resp_reply_int(&c->out, (long long)x->newlen);
    return JET_errSuccess;
}

JET_ERR resp_cmd_append(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    struct splice x = {-1, argv[2], len[2], NULL, 0};
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    return splice_run(c, argv[1], len[1], &x);
}

JET_ERR resp_cmd_setrange(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long off, dl;
    size_t n = 0;
    (void)argc;
    if (!resp_parse_int64(argv[2], len[2], &off)) {
        resp_reply_error(&c->out, NOT_INTEGER);
        return JET_errSuccess;
    }
    if (off < 0) {
        resp_reply_error(&c->out, "ERR offset is out of range");
        return JET_errSuccess;
    }
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    if (len[3] == 0) {
        /* Nothing to write: the length as it is; no key is created. */
        JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
        if (err < 0) return err;
        err = value_read(c, argv[1], len[1], &n);
        if (err < 0 && err != JET_errRecordNotFound) return err;
        resp_reply_int(&c->out, err >= 0 ? (long long)n : 0);
        return JET_errSuccess;
    }
    if ((unsigned long long)off + len[3] > JET_cbValueMost) {
        resp_reply_error(&c->out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return JET_errSuccess;
    }
    struct splice x = {off, argv[3], len[3], NULL, 0};
    return splice_run(c, argv[1], len[1], &x);
}

/* ---- counters ---- */

struct incr {
    long long delta, v;
    char buf[24];
};

#define INCR_NOT_INTEGER 1
#define INCR_OVERFLOW 2

/* The new value from the old one, in the B+tree's one descent (JetUpdateKV). */
static JET_ERR incr_fn(void *arg, const void *old, unsigned long oldlen, int exists, const void **pnew,
                       unsigned long *pnewlen)
{
    struct incr *x = arg;
    long long v = 0;
    if (exists && (oldlen > 20 || !resp_parse_int64(old, oldlen, &v))) return INCR_NOT_INTEGER;
    if ((x->delta > 0 && v > INT64_MAX - x->delta) || (x->delta < 0 && v < INT64_MIN - x->delta))
        return INCR_OVERFLOW;
    x->v = v + x->delta;
    int n = snprintf(x->buf, sizeof x->buf, "%lld", x->v);
    *pnew = x->buf;
    *pnewlen = (unsigned long)n;
    return JET_errSuccess;
}

static JET_ERR incr_by(struct resp_client *c, const char *key, size_t klen, long long delta)
{
    struct incr x = {delta, 0, ""};
    long long dl;
    if (!resp_key_ok(c, key, klen)) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, key, klen, &dl);
    if (err < 0) return err;
    err = JetUpdateKV(c->ses, c->table, key, (unsigned long)klen, incr_fn, &x);
    if (err < 0) return err;
    if (err == INCR_NOT_INTEGER) resp_reply_error(&c->out, NOT_INTEGER);
    else if (err == INCR_OVERFLOW) resp_reply_error(&c->out, "ERR increment or decrement would overflow");
    else resp_reply_int(&c->out, x.v);
    return JET_errSuccess;
}

JET_ERR resp_cmd_incr(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc;
    return incr_by(c, argv[1], len[1], 1);
}

JET_ERR resp_cmd_decr(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc;
    return incr_by(c, argv[1], len[1], -1);
}

JET_ERR resp_cmd_incrby(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long d;
    (void)argc;
    if (!resp_parse_int64(argv[2], len[2], &d)) {
        resp_reply_error(&c->out, NOT_INTEGER);
        return JET_errSuccess;
    }
    return incr_by(c, argv[1], len[1], d);
}

JET_ERR resp_cmd_decrby(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long d;
    (void)argc;
    if (!resp_parse_int64(argv[2], len[2], &d)) {
        resp_reply_error(&c->out, NOT_INTEGER);
        return JET_errSuccess;
    }
    if (d == INT64_MIN) {
        resp_reply_error(&c->out, "ERR decrement would overflow");
        return JET_errSuccess;
    }
    return incr_by(c, argv[1], len[1], -d);
}

/* A long double from exactly n bytes of text, as Redis reads one: no
 * spaces, no NaN; false when it is not one. */
static bool parse_ldouble(const char *s, size_t n, long double *out)
{
    char buf[5120];
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n' || buf[0] == '\r' || buf[0] == '\v' || buf[0] == '\f')
        return false;
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if (*end || isnan(v) || (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)))
        return false;
    *out = v;
    return true;
}

struct incrf {
    long double delta;
    char buf[5200];
    int n;
};

#define INCRF_NOT_FLOAT 1
#define INCRF_NAN 2

static JET_ERR incrf_fn(void *arg, const void *old, unsigned long oldlen, int exists, const void **pnew,
                        unsigned long *pnewlen)
{
    struct incrf *x = arg;
    long double v = 0;
    if (exists && !parse_ldouble(old, oldlen, &v)) return INCRF_NOT_FLOAT;
    v += x->delta;
    if (isnan(v) || isinf(v)) return INCRF_NAN;
    /* Redis's "human" form: 17 decimals, trailing zeros (and point) cut. */
    int n = snprintf(x->buf, sizeof x->buf, "%.17Lf", v);
    if (n <= 0 || (size_t)n >= sizeof x->buf) return INCRF_NAN;
    if (strchr(x->buf, '.')) {
        while (x->buf[n - 1] == '0') n--;
        if (x->buf[n - 1] == '.') n--;
    }
    if (n == 2 && memcmp(x->buf, "-0", 2) == 0) {
        x->buf[0] = '0';
        n = 1;
    }
    x->buf[n] = '\0';
    x->n = n;
    *pnew = x->buf;
    *pnewlen = (unsigned long)n;
    return JET_errSuccess;
}

JET_ERR resp_cmd_incrbyfloat(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    struct incrf x;
    long long dl;
    (void)argc;
    if (!parse_ldouble(argv[2], len[2], &x.delta)) {
        resp_reply_error(&c->out, "ERR value is not a valid float");
        return JET_errSuccess;
    }
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    if (err < 0) return err;
    err = JetUpdateKV(c->ses, c->table, argv[1], (unsigned long)len[1], incrf_fn, &x);
    if (err < 0) return err;
    if (err == INCRF_NOT_FLOAT) resp_reply_error(&c->out, "ERR value is not a valid float");
    else if (err == INCRF_NAN) resp_reply_error(&c->out, "ERR increment would produce NaN or Infinity");
    else resp_reply_bulk(&c->out, x.buf, (size_t)x.n);
    return JET_errSuccess;
}

/* ---- several keys ---- */

JET_ERR resp_cmd_mset(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    if (argc % 2 != 1) {
        resp_reply_error(&c->out, "ERR wrong number of arguments for '%s' command", len[0] == 6 ? "msetnx" : "mset");
        return JET_errSuccess;
    }
    for (size_t i = 1; i < argc; i += 2)
        if (!resp_key_ok(c, argv[i], len[i]) || !resp_value_ok(c, len[i + 1])) return JET_errSuccess;
    bool nx = len[0] == 6;
    if (nx) {
        /* MSETNX: nothing at all if any key is there. */
        for (size_t i = 1; i < argc; i += 2) {
            long long dl;
            bool present;
            JET_ERR err = resp_exp_reap(c, argv[i], len[i], &dl);
            if (err >= 0) err = key_exists(c, argv[i], len[i], false, &present);
            if (err < 0) return err;
            if (present) {
                resp_reply_int(&c->out, 0);
                return JET_errSuccess;
            }
        }
    }
    for (size_t i = 1; i < argc; i += 2) {
        JET_ERR err = JetPutKV(c->ses, c->table, argv[i], (unsigned long)len[i], argv[i + 1],
                               (unsigned long)len[i + 1], 0);
        if (err >= 0 && !nx) err = resp_exp_clear(c, argv[i], len[i]);
        if (err < 0) return err;
    }
    if (nx) resp_reply_int(&c->out, 1);
    else resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

JET_ERR resp_cmd_mget(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    if (!keys_ok(c, 1, argc, argv, len, 1)) return JET_errSuccess;
    resp_reply_array(&c->out, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        size_t n = 0;
        JET_ERR err = value_get(c, argv[i], len[i], &n);
        if (err == JET_errRecordNotFound) {
            resp_reply_nil(&c->out);
            continue;
        }
        if (err < 0) return err;
        resp_reply_bulk(&c->out, c->scratch, n);
    }
    return JET_errSuccess;
}

/* DEL and UNLINK (one command: every delete here is immediate). */
JET_ERR resp_cmd_del(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long n = 0;
    if (!keys_ok(c, 1, argc, argv, len, 1)) return JET_errSuccess;
    for (size_t i = 1; i < argc; i++) {
        long long dl;
        JET_ERR err = resp_exp_reap(c, argv[i], len[i], &dl);
        if (err < 0) return err;
        err = JetDeleteKV(c->ses, c->table, argv[i], (unsigned long)len[i]);
        if (err == JET_errRecordNotFound) continue;
        if (err < 0) return err;
        if (dl && (err = resp_exp_clear(c, argv[i], len[i])) < 0) return err;
        n++;
    }
    resp_reply_int(&c->out, n);
    return JET_errSuccess;
}

JET_ERR resp_cmd_exists(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long n = 0;
    if (!keys_ok(c, 1, argc, argv, len, 1)) return JET_errSuccess;
    for (size_t i = 1; i < argc; i++) {
        bool present = false;
        JET_ERR err = key_exists(c, argv[i], len[i], true, &present);
        if (err < 0) return err;
        n += present;
    }
    resp_reply_int(&c->out, n);
    return JET_errSuccess;
}

/* TYPE: every value is a string. */
JET_ERR resp_cmd_type(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    bool present = false;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = key_exists(c, argv[1], len[1], true, &present);
    if (err < 0) return err;
    resp_reply_status(&c->out, present ? "string" : "none");
    return JET_errSuccess;
}

/* RENAME and RENAMENX: the value and its expiry move together. */
JET_ERR resp_cmd_rename(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    bool nx = len[0] == 8;
    long long dl, dst_dl;
    size_t n = 0;
    bool present;
    (void)argc;
    if (!keys_ok(c, 1, 3, argv, len, 1)) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    if (err < 0) return err;
    err = value_read(c, argv[1], len[1], &n);
    if (err == JET_errRecordNotFound) {
        resp_reply_error(&c->out, "ERR no such key");
        return JET_errSuccess;
    }
    if (err < 0) return err;
    if (len[1] == len[2] && memcmp(argv[1], argv[2], len[1]) == 0) {
        if (nx) resp_reply_int(&c->out, 0);
        else resp_reply_status(&c->out, "OK");
        return JET_errSuccess;
    }
    if ((err = resp_exp_reap(c, argv[2], len[2], &dst_dl)) < 0) return err;
    if (nx) {
        if ((err = key_exists(c, argv[2], len[2], false, &present)) < 0) return err;
        if (present) {
            resp_reply_int(&c->out, 0);
            return JET_errSuccess;
        }
    }
    if ((err = JetPutKV(c->ses, c->table, argv[2], (unsigned long)len[2], c->scratch, (unsigned long)n, 0)) < 0 ||
        (err = JetDeleteKV(c->ses, c->table, argv[1], (unsigned long)len[1])) < 0)
        return err;
    if (dl) {
        if ((err = resp_exp_clear(c, argv[1], len[1])) < 0 || (err = resp_exp_set(c, argv[2], len[2], dl)) < 0)
            return err;
    } else if (dst_dl && (err = resp_exp_clear(c, argv[2], len[2])) < 0) {
        return err;
    }
    if (nx) resp_reply_int(&c->out, 1);
    else resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

/* ---- expiry ---- */

/*
 * EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX|XX|GT|LT]: 1 when the
 * expiry was set (or the key deleted, for a time already past), 0 when the
 * key is absent or the condition does not hold.  No expiry counts as an
 * infinite one for GT and LT, as in Redis.
 */
JET_ERR resp_cmd_expire(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    const char *name = argv[0];
    bool ms = name[0] == 'p' || name[0] == 'P';
    bool at = len[0] >= 8; /* expireat, pexpireat */
    bool nx = false, xx = false, gt = false, lt = false;
    long long when, dl;
    char cname[16];

    snprintf(cname, sizeof cname, "%s", ms ? (at ? "pexpireat" : "pexpire") : (at ? "expireat" : "expire"));
    for (size_t i = 3; i < argc; i++) {
        if (resp_arg_is(argv[i], "nx")) nx = true;
        else if (resp_arg_is(argv[i], "xx")) xx = true;
        else if (resp_arg_is(argv[i], "gt")) gt = true;
        else if (resp_arg_is(argv[i], "lt")) lt = true;
        else {
            resp_reply_error(&c->out, "ERR Unsupported option %.128s", argv[i]);
            return JET_errSuccess;
        }
    }
    if (nx && (xx || gt || lt)) {
        resp_reply_error(&c->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return JET_errSuccess;
    }
    if (gt && lt) {
        resp_reply_error(&c->out, "ERR GT and LT options at the same time are not compatible");
        return JET_errSuccess;
    }
    if (!resp_parse_int64(argv[2], len[2], &when)) {
        resp_reply_error(&c->out, NOT_INTEGER);
        return JET_errSuccess;
    }
    if (!ms) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) goto invalid;
        when *= 1000;
    }
    if (!at) {
        long long now = resp_now_ms();
        if ((now > 0 && when > LLONG_MAX - now) || (now < 0 && when < LLONG_MIN - now)) goto invalid;
        when += now;
    }
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    bool present = false;
    if (err >= 0) err = key_exists(c, argv[1], len[1], false, &present);
    if (err < 0) return err;
    if (!present || (nx && dl) || (xx && !dl) || (gt && (!dl || when <= dl)) || (lt && dl && when >= dl)) {
        resp_reply_int(&c->out, 0);
        return JET_errSuccess;
    }
    if (when <= resp_now_ms()) {
        /* Already past: the key goes now. */
        if ((err = JetDeleteKV(c->ses, c->table, argv[1], (unsigned long)len[1])) < 0) return err;
        if (dl && (err = resp_exp_clear(c, argv[1], len[1])) < 0) return err;
    } else if ((err = resp_exp_set(c, argv[1], len[1], when)) < 0) {
        return err;
    }
    resp_reply_int(&c->out, 1);
    return JET_errSuccess;
invalid:
    resp_reply_error(&c->out, "ERR invalid expire time in '%s' command", cname);
    return JET_errSuccess;
}

JET_ERR resp_cmd_persist(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long dl;
    bool present = false;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = resp_exp_reap(c, argv[1], len[1], &dl);
    if (err >= 0 && dl) err = key_exists(c, argv[1], len[1], false, &present);
    if (err >= 0 && present) err = resp_exp_clear(c, argv[1], len[1]);
    if (err < 0) return err;
    resp_reply_int(&c->out, present ? 1 : 0);
    return JET_errSuccess;
}

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 no key, -1 no expiry; else the
 * time left (or the deadline), rounded to seconds as Redis rounds. */
JET_ERR resp_cmd_ttl(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    bool ms = argv[0][0] == 'p' || argv[0][0] == 'P';
    bool abs = len[0] >= 10; /* expiretime, pexpiretime */
    bool present = false;
    long long dl;
    (void)argc;
    if (!resp_key_ok(c, argv[1], len[1])) return JET_errSuccess;
    JET_ERR err = resp_exp_get(c, argv[1], len[1], &dl);
    long long now = resp_now_ms();
    if (err >= 0 && !(dl && dl <= now)) err = key_exists(c, argv[1], len[1], false, &present);
    if (err < 0) return err;
    if (!present) {
        resp_reply_int(&c->out, -2);
    } else if (!dl) {
        resp_reply_int(&c->out, -1);
    } else {
        long long v = abs ? dl : dl - now;
        resp_reply_int(&c->out, ms ? v : (v + 500) / 1000);
    }
    return JET_errSuccess;
}
