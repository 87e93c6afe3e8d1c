/*
 * resp_keyspace.c -- the commands that walk the whole table: DBSIZE, SCAN,
 * KEYS, RANDOMKEY, FLUSHDB; the glob matcher SCAN MATCH, KEYS and CONFIG
 * GET use; the SCAN cursor table.  SCAN, KEYS and RANDOMKEY skip expired
 * keys (resp_expire.c); DBSIZE counts them until they are reclaimed, as
 * Redis's does; FLUSHDB deletes the deadlines too.
 *
 * DBSIZE counts the keys with a cursor inside a transaction (the caller,
 * resp_execute, opens it: RESP_CMD_READ_TXN).  A transaction holds the
 * engine's write lock, so no writer commits while the count runs and the
 * count is exact; it costs O(keys) and holds writers back meanwhile.
 *
 * SCAN cursors.  The table is ordered, so a SCAN position is naturally "the
 * last key returned", but Redis clients (redis-cli --scan, client
 * libraries) parse the cursor as an unsigned integer.  So a position is
 * kept server-side, in a ring of RESP_SCAN_CURSORS slots under cursor_mu:
 * the cursor is an id, its slot is id % RESP_SCAN_CURSORS, and the slot is
 * valid while it still holds that id.  Ids increase, starting from a value
 * derived from the start time so that a cursor from an earlier run is
 * almost never mistaken for one of this run.  An evicted or unknown cursor
 * is "-ERR invalid or expired cursor" (Redis never fails a cursor; this is
 * the price of keys longer than 8 bytes).  The guarantee is Redis's: a key
 * present for the whole iteration is returned; it is returned once, since
 * the walk is in key order.  MATCH with a literal prefix seeks to it and
 * stops after it.  COUNT is the number of keys looked at per call.
 *
 * FLUSHDB outside MULTI deletes in batches of FLUSH_BATCH keys, one durable
 * transaction per batch (a single transaction could outgrow the engine's
 * cache): it is not atomic against concurrent writers, and a failure midway
 * leaves the batches already committed deleted.  Inside EXEC it deletes
 * everything in the EXEC's transaction (which then fails with the engine's
 * "version store out of memory" if the table is too large for the cache).
 *
 * Locking: cursor_mu protects the cursor ring; everything else is the
 * calling connection's own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "resp_commands.h"

#define FLUSH_BATCH 1000
#define SCAN_COUNT_DEFAULT 10

/* ---- glob ---- */

static unsigned char fold(unsigned char ch, bool nocase)
{
    return nocase && ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

/*
 * Does the one-character pattern element at pat[p] match ch?  *adv gets
 * its length in the pattern.
 */
static bool element_match(const char *pat, size_t plen, size_t p, unsigned char ch, bool nocase, size_t *adv)
{
    unsigned char c = fold(ch, nocase);
    size_t q = p;

    if (pat[q] == '?') {
        *adv = 1;
        return true;
    }
    if (pat[q] == '\\' && q + 1 < plen) {
        *adv = 2;
        return fold((unsigned char)pat[q + 1], nocase) == c;
    }
    if (pat[q] != '[') {
        *adv = 1;
        return fold((unsigned char)pat[q], nocase) == c;
    }
    q++;
    bool negate = q < plen && pat[q] == '^';
    if (negate) q++;
    bool hit = false;
    while (q < plen && pat[q] != ']') {
        unsigned char lo;
        if (pat[q] == '\\' && q + 1 < plen) q++;
        lo = fold((unsigned char)pat[q], nocase);
        if (q + 2 < plen && pat[q + 1] == '-' && pat[q + 2] != ']') {
            unsigned char hi = fold((unsigned char)pat[q + 2], nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            if (c >= lo && c <= hi) hit = true;
            q += 3;
        } else {
            if (c == lo) hit = true;
            q++;
        }
    }
    if (q < plen) q++; /* the ']'; an unclosed class runs to the end */
    *adv = q - p;
    return hit != negate;
}

bool resp_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase)
{
    size_t p = 0, i = 0;
    size_t star_p = 0, star_i = 0;
    bool star = false;

    while (i < slen) {
        if (p < plen && pat[p] == '*') {
            while (p < plen && pat[p] == '*') p++;
            star = true;
            star_p = p;
            star_i = i;
            continue;
        }
        size_t adv = 0;
        if (p < plen && element_match(pat, plen, p, (unsigned char)s[i], nocase, &adv)) {
            p += adv;
            i++;
            continue;
        }
        if (!star) return false;
        /* Let the last star swallow one more character and retry. */
        p = star_p;
        i = ++star_i;
    }
    while (p < plen && pat[p] == '*') p++;
    return p == plen;
}

/* The literal text every match starts with. */
static size_t literal_prefix(const char *pat, size_t plen)
{
    size_t n = 0;
    while (n < plen && !strchr("*?[\\", pat[n])) n++;
    return n;
}

/* ---- DBSIZE ---- */

JET_ERR resp_count_keys(struct resp_client *c, long long *count)
{
    long long n = 0;
    if (c->no_table) {
        *count = 0; /* read-only, and the database has no table */
        return JET_errSuccess;
    }
    JET_ERR err = JetMove(c->ses, c->table, JET_MoveFirst, 0);
    while (err >= 0) {
        n++;
        err = JetMove(c->ses, c->table, JET_MoveNext, 0);
    }
    if (err != JET_errNoCurrentRecord) return err;
    *count = n;
    return JET_errSuccess;
}

JET_ERR resp_cmd_dbsize(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc, (void)argv, (void)len;
    long long n = 0;
    JET_ERR err = resp_count_keys(c, &n);
    if (err < 0) return err;
    resp_reply_int(&c->out, n);
    return JET_errSuccess;
}

/* ---- SCAN ---- */

static uint64_t cursor_save(struct resp_shared *sh, const char *key, size_t klen)
{
    pthread_mutex_lock(&sh->cursor_mu);
    uint64_t id = ++sh->next_cursor;
    struct resp_scan_cursor *slot = &sh->cursors[id % RESP_SCAN_CURSORS];
    slot->id = id;
    slot->keylen = (unsigned char)klen;
    memcpy(slot->key, key, klen);
    pthread_mutex_unlock(&sh->cursor_mu);
    return id;
}

static bool cursor_load(struct resp_shared *sh, uint64_t id, char *key, size_t *klen)
{
    pthread_mutex_lock(&sh->cursor_mu);
    struct resp_scan_cursor *slot = &sh->cursors[id % RESP_SCAN_CURSORS];
    bool ok = slot->id == id;
    if (ok) {
        *klen = slot->keylen;
        memcpy(key, slot->key, slot->keylen);
    }
    pthread_mutex_unlock(&sh->cursor_mu);
    return ok;
}

/* memcmp order, shorter first on a tie: the engine's key order. */
static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    if (r) return r;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

struct scan_args {
    uint64_t cursor;
    const char *pat;
    size_t patlen;
    long long count;
    bool type_none; /* TYPE other than string: nothing matches */
};

/* Parses SCAN's arguments; false after replying the error. */
static bool scan_parse(struct resp_client *c, size_t argc, char **argv, size_t *len, struct scan_args *a)
{
    long long v;
    memset(a, 0, sizeof *a);
    a->count = SCAN_COUNT_DEFAULT;
    if (!resp_parse_int64(argv[1], len[1], &v) || v < 0) {
        resp_reply_error(&c->out, "ERR invalid cursor");
        return false;
    }
    a->cursor = (uint64_t)v;
    for (size_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            resp_reply_error(&c->out, "ERR syntax error");
            return false;
        }
        if (resp_arg_is(argv[i], "match")) {
            a->pat = argv[i + 1];
            a->patlen = len[i + 1];
        } else if (resp_arg_is(argv[i], "count")) {
            if (!resp_parse_int64(argv[i + 1], len[i + 1], &a->count)) {
                resp_reply_error(&c->out, "ERR value is not an integer or out of range");
                return false;
            }
            if (a->count < 1) {
                resp_reply_error(&c->out, "ERR syntax error");
                return false;
            }
        } else if (resp_arg_is(argv[i], "type")) {
            a->type_none = !resp_arg_is(argv[i + 1], "string");
        } else {
            resp_reply_error(&c->out, "ERR syntax error");
            return false;
        }
    }
    return true;
}

JET_ERR resp_cmd_scan(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    struct scan_args a;
    char start[JET_cbKeyMost], key[JET_cbKeyMost];
    size_t startlen = 0;
    unsigned long klen = 0, vlen = 0;
    struct resp_buf found = {0}; /* matched keys, each as a length byte then the key */
    long long nfound = 0, examined = 0;
    bool done = false;
    JET_ERR err = JET_errSuccess;

    if (!scan_parse(c, argc, argv, len, &a)) return JET_errSuccess;
    if (a.cursor && !cursor_load(c->sh, a.cursor, start, &startlen)) {
        resp_reply_error(&c->out, "ERR invalid or expired cursor");
        return JET_errSuccess;
    }
    size_t plen = a.pat ? literal_prefix(a.pat, a.patlen) : 0;
    if (plen > JET_cbKeyMost || c->no_table) {
        done = true; /* no key is that long; no table (read-only): no key at all */
    } else if (a.cursor && key_cmp(start, startlen, a.pat ? a.pat : "", plen) >= 0) {
        err = JetSeekKV(c->ses, c->table, start, (unsigned long)startlen, JET_bitSeekGT);
    } else if (plen) {
        err = JetSeekKV(c->ses, c->table, a.pat, (unsigned long)plen, JET_bitSeekGE);
    } else {
        err = JetMove(c->ses, c->table, JET_MoveFirst, 0);
    }
    while (!done && err >= 0 && examined < a.count) {
        err = JetRetrieveCurrentKV(c->ses, c->table, key, sizeof key, &klen, NULL, 0, &vlen);
        if (err == JET_errRecordDeleted) { /* another client deleted it: go on past it */
            err = JetMove(c->ses, c->table, JET_MoveNext, 0);
            continue;
        }
        if (err < 0) break;
        if (klen > sizeof key) klen = sizeof key; /* cannot happen: keys are at most JET_cbKeyMost */
        if (plen && (klen < plen || memcmp(key, a.pat, plen) != 0)) {
            done = true; /* past every key with the prefix */
            break;
        }
        examined++;
        memcpy(start, key, klen);
        startlen = klen;
        bool live = true;
        if (!a.type_none && (!a.pat || resp_glob_match(a.pat, a.patlen, key, klen, false)) &&
            (err = resp_exp_live(c, key, klen, &live)) >= 0 && live) {
            unsigned char kb = (unsigned char)klen;
            resp_buf_append(&found, &kb, 1);
            resp_buf_append(&found, key, klen);
            nfound++;
        }
        err = JetMove(c->ses, c->table, JET_MoveNext, 0);
    }
    if (err == JET_errNoCurrentRecord || err == JET_errRecordNotFound) {
        done = true;
        err = JET_errSuccess;
    }
    if (err < 0) goto out;
    if (found.oom) {
        err = JET_errOutOfMemory;
        goto out;
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%llu", done ? 0ull : (unsigned long long)cursor_save(c->sh, start, startlen));
    resp_reply_array(&c->out, 2);
    resp_reply_bulk_str(&c->out, cur);
    resp_reply_array(&c->out, (size_t)nfound);
    for (size_t off = 0; off < found.len; off += 1 + (unsigned char)found.data[off])
        resp_reply_bulk(&c->out, found.data + off + 1, (unsigned char)found.data[off]);
out:
    resp_buf_free(&found);
    return err;
}

/* ---- KEYS, RANDOMKEY ---- */

/* KEYS pattern: every live key that matches, in key order, in one reply
 * (inside the transaction resp_execute opened: RESP_CMD_READ_TXN). */
JET_ERR resp_cmd_keys(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    char key[JET_cbKeyMost];
    unsigned long klen = 0, vlen = 0;
    struct resp_buf found = {0};
    size_t nfound = 0;
    JET_ERR err = JET_errSuccess;
    const char *pat = argv[1];
    size_t patlen = len[1], plen = literal_prefix(pat, patlen);
    (void)argc;

    if (plen > JET_cbKeyMost || c->no_table) err = JET_errNoCurrentRecord;
    else if (plen) err = JetSeekKV(c->ses, c->table, pat, (unsigned long)plen, JET_bitSeekGE);
    else err = JetMove(c->ses, c->table, JET_MoveFirst, 0);
    while (err >= 0) {
        err = JetRetrieveCurrentKV(c->ses, c->table, key, sizeof key, &klen, NULL, 0, &vlen);
        if (err < 0) break;
        if (plen && (klen < plen || memcmp(key, pat, plen) != 0)) break; /* past the prefix */
        bool live = true;
        if (resp_glob_match(pat, patlen, key, klen, false) && (err = resp_exp_live(c, key, klen, &live)) >= 0 && live) {
            unsigned char kb = (unsigned char)klen;
            resp_buf_append(&found, &kb, 1);
            resp_buf_append(&found, key, klen);
            nfound++;
        }
        if (err >= 0) err = JetMove(c->ses, c->table, JET_MoveNext, 0);
    }
    if (err == JET_errNoCurrentRecord || err == JET_errRecordNotFound || err >= 0) err = JET_errSuccess;
    if (err >= 0 && found.oom) err = JET_errOutOfMemory;
    if (err >= 0) {
        resp_reply_array(&c->out, nfound);
        for (size_t off = 0; off < found.len; off += 1 + (unsigned char)found.data[off])
            resp_reply_bulk(&c->out, found.data + off + 1, (unsigned char)found.data[off]);
    }
    resp_buf_free(&found);
    return err;
}

/* RANDOMKEY: the first live key at or after a random point of the key
 * space (wrapping around), so a key after a wide gap is likelier; nil when
 * there is none. */
JET_ERR resp_cmd_randomkey(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    char key[JET_cbKeyMost];
    unsigned long klen = 0, vlen = 0;
    unsigned char probe[8];
    JET_ERR err = JET_errNoCurrentRecord;
    (void)argc, (void)argv, (void)len;

    for (size_t i = 0; i < sizeof probe; i++) probe[i] = (unsigned char)(random() & 0xff);
    if (!c->no_table) err = JetSeekKV(c->ses, c->table, probe, sizeof probe, JET_bitSeekGE);
    bool wrapped = false;
    for (;;) {
        if ((err == JET_errNoCurrentRecord || err == JET_errRecordNotFound) && !wrapped && !c->no_table) {
            wrapped = true;
            err = JetMove(c->ses, c->table, JET_MoveFirst, 0);
            continue;
        }
        if (err < 0) break;
        err = JetRetrieveCurrentKV(c->ses, c->table, key, sizeof key, &klen, NULL, 0, &vlen);
        if (err < 0) break;
        bool live = true;
        if ((err = resp_exp_live(c, key, klen, &live)) < 0) return err;
        if (live) {
            resp_reply_bulk(&c->out, key, klen);
            return JET_errSuccess;
        }
        if (wrapped && key_cmp(key, klen, (const char *)probe, sizeof probe) >= 0)
            break; /* round the whole key space: every key has expired */
        err = JetMove(c->ses, c->table, JET_MoveNext, 0);
    }
    if (err == JET_errNoCurrentRecord || err == JET_errRecordNotFound || err >= 0) {
        resp_reply_nil(&c->out);
        return JET_errSuccess;
    }
    return err;
}

/* ---- FLUSHDB ---- */

/* Deletes up to limit keys of table t, first to last; *deleted says how many. */
static JET_ERR delete_some(struct resp_client *c, JET_TABLEID t, size_t limit, size_t *deleted)
{
    char key[JET_cbKeyMost];
    unsigned long klen = 0;
    *deleted = 0;
    while (*deleted < limit) {
        JET_ERR err = JetMove(c->ses, t, JET_MoveFirst, 0);
        if (err == JET_errNoCurrentRecord) return JET_errSuccess;
        if (err < 0) return err;
        err = JetRetrieveCurrentKV(c->ses, t, key, sizeof key, &klen, NULL, 0, NULL);
        if (err == JET_errRecordDeleted) continue; /* another client's delete: the first key moved on */
        if (err < 0) return err;
        err = JetDeleteKV(c->ses, t, key, klen);
        if (err == JET_errRecordNotFound) continue;
        if (err < 0) return err;
        ++*deleted;
    }
    return JET_errSuccess;
}

JET_ERR resp_cmd_flushdb(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    size_t n = 0;
    JET_ERR err;
    (void)len;

    if (argc > 2 || (argc == 2 && !resp_arg_is(argv[1], "async") && !resp_arg_is(argv[1], "sync"))) {
        resp_reply_error(&c->out, "ERR syntax error");
        return JET_errSuccess;
    }
    if ((err = resp_exp_open(c)) < 0) return err;
    if (c->in_txn) {
        if ((err = delete_some(c, c->table, (size_t)-1, &n)) < 0) return err;
        if (c->exp_open && (err = delete_some(c, c->exp, (size_t)-1, &n)) < 0) return err;
        resp_reply_status(&c->out, "OK");
        return JET_errSuccess;
    }
    /* Deadlines first, so that none outlives its key (a key made later
     * under that name would inherit it); a failure midway may leave keys
     * without their deadline, for the next FLUSHDB. */
    for (int pass = c->exp_open ? 0 : 1; pass < 2; pass++) do {
        if ((err = JetBeginTransaction(c->ses)) < 0) return err;
        c->in_txn = true;
        err = delete_some(c, pass ? c->table : c->exp, FLUSH_BATCH, &n);
        if (err < 0) {
            JET_ERR rb = JetRollback(c->ses, 0);
            (void)rb; /* the transaction ends either way */
        } else {
            err = resp_commit(c);
        }
        c->in_txn = false;
        if (err < 0) return err;
    } while (n == FLUSH_BATCH);
    resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}
