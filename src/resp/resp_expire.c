/*
 * resp_expire.c -- key expiry: where deadlines are kept, how commands see
 * them, and the background sweep that reclaims expired keys.
 *
 * Format.  A key's deadline lives in a second table of the database,
 * RESP_EXPIRES_TABLE ("redis_expires"), next to RESP_TABLE:
 *
 *     key (1..255 bytes, the same bytes as in RESP_TABLE)
 *         -> 8 bytes: the absolute deadline, milliseconds since the Unix
 *            epoch (UTC), unsigned, big-endian
 *
 * A key without a row there has no expiry.  The row is written in the same
 * engine transaction as the value it belongs to, so it is exactly as
 * durable as the value, is in every backup, restores and browses with it.
 * The table is created the first time a command sets an expiry (outside
 * any transaction, before the command's own), never before: a database in
 * which nothing ever expired has exactly the tables it had before expiry
 * existed, and `jetutil export` prints it byte for byte as it used to.
 * Where it exists, export prints it as one more table section.
 *
 * Invariants:
 *   1. A row of RESP_EXPIRES_TABLE without its key in RESP_TABLE never
 *      survives a committed command: every command that deletes or renames
 *      a key deletes or moves its row in the same transaction.
 *   2. A key whose deadline is <= now (read when the command runs) is
 *      absent to every command: reads skip it (GET, EXISTS, SCAN, KEYS,
 *      RANDOMKEY, TTL...), writes first reclaim it (resp_exp_reap) so that
 *      they act on an absent key (INCR starts from 0, SET KEEPTTL keeps no
 *      deadline).  DBSIZE alone counts the keys not yet reclaimed, as
 *      Redis's does.
 *   3. Reclaiming needs no durability of its own: a reclaimed key was
 *      already invisible; if the deletion is lost in a crash, the key is
 *      still expired when next read.
 *
 * The sweep (resp_expire_sweep) runs on the loop thread between turns,
 * when no client has a transaction open: it walks RESP_EXPIRES_TABLE from
 * where it stopped last time, SWEEP_LOOK rows per round, deleting the due
 * keys in one small lazily-committed transaction; it does another round
 * while more than a quarter of the rows it looked at were due, within
 * SWEEP_BUDGET_US, as Redis's active expire cycle does.  So a client waits
 * at most about one budget behind it.
 *
 * Context: every function runs on the serving thread; the shared flag
 * sh->exp_table is that thread's alone.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "resp.h"
#include "resp_commands.h"

#define SWEEP_LOOK 64
#define SWEEP_BUDGET_US 1000

long long resp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void put_be64(unsigned char *p, unsigned long long v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

static unsigned long long get_be64(const unsigned char *p)
{
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

JET_ERR resp_exp_open(struct resp_client *c)
{
    if (c->exp_open) return JET_errSuccess;
    if (!c->sh->exp_table || !c->db_open) return JET_errSuccess;
    JET_ERR err = JetOpenTable(c->ses, c->dbid, RESP_EXPIRES_TABLE, NULL, 0, 0, &c->exp);
    if (err == JET_errObjectNotFound) return JET_errSuccess;
    if (err < 0) return err;
    c->exp_open = true;
    return JET_errSuccess;
}

JET_ERR resp_exp_client_open(struct resp_client *c)
{
    JET_ERR err = JetOpenTable(c->ses, c->dbid, RESP_EXPIRES_TABLE, NULL, 0, 0, &c->exp);
    if (err == JET_errObjectNotFound) return JET_errSuccess;
    if (err < 0) return err;
    c->exp_open = true;
    c->sh->exp_table = true;
    return JET_errSuccess;
}

JET_ERR resp_exp_create(struct resp_client *c)
{
    if (c->exp_open) return JET_errSuccess;
    if (c->sh->exp_table) return resp_exp_open(c);
    JET_ERR err = JetCreateTable(c->ses, c->dbid, RESP_EXPIRES_TABLE, 0, 0, &c->exp);
    if (err == JET_errTableDuplicate) err = JetOpenTable(c->ses, c->dbid, RESP_EXPIRES_TABLE, NULL, 0, 0, &c->exp);
    if (err < 0) return err;
    c->exp_open = true;
    c->sh->exp_table = true;
    return JET_errSuccess;
}

JET_ERR resp_exp_get(struct resp_client *c, const char *key, size_t klen, long long *deadline)
{
    unsigned char b[8];
    unsigned long actual = 0;
    *deadline = 0;
    JET_ERR err = resp_exp_open(c);
    if (err < 0 || !c->exp_open) return err;
    err = JetRetrieveKV(c->ses, c->exp, key, (unsigned long)klen, b, sizeof b, &actual, 0);
    if (err == JET_errRecordNotFound) return JET_errSuccess;
    if (err < 0) return err;
    if (actual != 8) return JET_errSuccess; /* not ours: treated as no expiry */
    unsigned long long v = get_be64(b);
    *deadline = v > (unsigned long long)INT64_MAX ? INT64_MAX : v ? (long long)v : 1;
    return JET_errSuccess;
}

JET_ERR resp_exp_set(struct resp_client *c, const char *key, size_t klen, long long deadline)
{
    unsigned char b[8];
    JET_ERR err = resp_exp_open(c);
    if (err < 0) return err;
    if (!c->exp_open) return JET_errObjectNotFound; /* resp_exp_create was not called first */
    put_be64(b, (unsigned long long)(deadline > 0 ? deadline : 1));
    return JetPutKV(c->ses, c->exp, key, (unsigned long)klen, b, sizeof b, 0);
}

JET_ERR resp_exp_clear(struct resp_client *c, const char *key, size_t klen)
{
    JET_ERR err = resp_exp_open(c);
    if (err < 0 || !c->exp_open) return err;
    err = JetDeleteKV(c->ses, c->exp, key, (unsigned long)klen);
    return err == JET_errRecordNotFound ? JET_errSuccess : err;
}

bool resp_exp_due(long long deadline)
{
    return deadline && deadline <= resp_now_ms();
}

JET_ERR resp_exp_reap(struct resp_client *c, const char *key, size_t klen, long long *deadline)
{
    JET_ERR err = resp_exp_get(c, key, klen, deadline);
    if (err < 0 || !resp_exp_due(*deadline)) return err;
    *deadline = 0;
    err = JetDeleteKV(c->ses, c->table, key, (unsigned long)klen);
    if (err < 0 && err != JET_errRecordNotFound) return err;
    return resp_exp_clear(c, key, klen);
}

JET_ERR resp_exp_live(struct resp_client *c, const char *key, size_t klen, bool *live)
{
    long long dl;
    JET_ERR err = resp_exp_get(c, key, klen, &dl);
    *live = err >= 0 && !resp_exp_due(dl);
    return err;
}

JET_ERR resp_exp_count(struct resp_client *c, long long *count)
{
    long long n = 0;
    *count = 0;
    JET_ERR err = resp_exp_open(c);
    if (err < 0 || !c->exp_open) return err;
    err = JetMove(c->ses, c->exp, JET_MoveFirst, 0);
    while (err >= 0) {
        n++;
        err = JetMove(c->ses, c->exp, JET_MoveNext, 0);
    }
    if (err != JET_errNoCurrentRecord) return err;
    *count = n;
    return JET_errSuccess;
}

/* One round: up to SWEEP_LOOK rows from the saved position; *looked and
 * *due say how many were looked at and reclaimed. */
static JET_ERR sweep_round(struct resp_client *c, struct resp_sweep *sw, int *looked, int *due)
{
    char key[JET_cbKeyMost];
    unsigned char b[8];
    unsigned long klen = 0, vlen = 0;
    long long now = resp_now_ms();
    JET_ERR err;

    *looked = *due = 0;
    if (sw->keylen) err = JetSeekKV(c->ses, c->exp, sw->key, sw->keylen, JET_bitSeekGT);
    else err = JetMove(c->ses, c->exp, JET_MoveFirst, 0);
    while (err >= 0 && *looked < SWEEP_LOOK) {
        err = JetRetrieveCurrentKV(c->ses, c->exp, key, sizeof key, &klen, b, sizeof b, &vlen);
        if (err < 0 && err != JET_wrnBufferTruncated) break;
        ++*looked;
        memcpy(sw->key, key, klen);
        sw->keylen = klen;
        unsigned long long dl = vlen == 8 ? get_be64(b) : 0;
        if (dl && dl <= (unsigned long long)now) {
            err = JetDeleteKV(c->ses, c->table, key, klen);
            if (err < 0 && err != JET_errRecordNotFound) return err;
            if ((err = JetDeleteKV(c->ses, c->exp, key, klen)) < 0) return err;
            ++*due;
            /* The cursor was on the deleted row: seek past it again. */
            err = JetSeekKV(c->ses, c->exp, key, klen, JET_bitSeekGT);
        } else {
            err = JetMove(c->ses, c->exp, JET_MoveNext, 0);
        }
    }
    if (err == JET_errNoCurrentRecord || err == JET_errRecordNotFound) {
        sw->keylen = 0; /* the end: start again from the first row next time */
        err = JET_errSuccess;
    }
    return err < 0 ? err : JET_errSuccess;
}

JET_ERR resp_expire_sweep(struct resp_client *c, struct resp_sweep *sw)
{
    long long start = mono_us();
    JET_ERR err = resp_exp_open(c);
    if (err < 0 || !c->exp_open || c->sh->read_only) return err;
    for (;;) {
        int looked = 0, due = 0;
        if ((err = JetBeginTransaction(c->ses)) < 0) return err;
        err = sweep_round(c, sw, &looked, &due);
        if (err < 0 || !due) {
            JET_ERR rb = JetRollback(c->ses, 0);
            (void)rb; /* nothing to keep, or a failure reported below */
        } else {
            /* Lazy: reclaiming needs no durability (invariant 3). */
            err = JetCommitTransaction(c->ses, JET_bitCommitLazyFlush);
            sw->reclaimed += (unsigned long long)due;
        }
        if (err < 0) return err;
        if (looked < SWEEP_LOOK || due * 4 <= looked || mono_us() - start >= SWEEP_BUDGET_US) break;
    }
    return JET_errSuccess;
}
