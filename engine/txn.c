/*
 * txn.c -- transactions and the pager the B+trees use.
 *
 * Owns: a session's private page versions.  The first time a transaction
 * changes a page, the page is copied into the transaction (copy-on-write);
 * later reads in that transaction see the copy, other sessions keep seeing
 * the committed version in the cache.  Nothing private ever reaches the
 * database file before commit (no-steal), so rollback is just dropping the
 * copies and crash recovery never has anything to undo.
 *
 * Commit (see logrec.h for the protocol): encode one LR_DELTA per private
 * page (the bytes that differ from the committed version it was copied
 * from) and an LR_COMMIT; with commit_lock exclusive, append them in a single
 * log_append, stamp each page with its record's position, install the pages
 * in the cache; then release the writer token and wait for the log flush
 * (unless lazy).  Several committers waiting at once share one fsync.
 *
 * Space: the meta page (pgno 2) holds the next new page number and the head
 * of the free-page list; alloc and free change it through this same pager,
 * so space changes are logged and rolled back like any other change.
 *
 * The private page table is an open-addressing hash keyed by
 * dbidx << 32 | pgno; order[] keeps first-touch order for the log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "checkpoint.h"
#include "delta.h"
#include "diag.h"
#include "dbfile.h"
#include "instance.h"
#include "lockrank.h"
#include "logrec.h"
#include "os.h"
#include "page.h"
#include "txn.h"

#define WRITE_WAIT_S 30

static size_t slot_of(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1); }

static struct txn_page *txn_find(struct txn *t, uint64_t key)
{
    if (!t->cap) return NULL;
    for (size_t i = slot_of(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (!t->pages[i].buf) return NULL;
        if (t->pages[i].key == key) return &t->pages[i];
    }
}

static JET_ERR txn_grow(struct txn *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    struct txn_page *np = calloc(ncap, sizeof *np);
    uint64_t *no = realloc(t->order, ncap * sizeof *no);
    if (!np || !no) {
        free(np);
        if (no) t->order = no;
        return JET_errOutOfMemory;
    }
    t->order = no;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->pages[i].buf) continue;
        size_t j = slot_of(t->pages[i].key, ncap);
        while (np[j].buf) j = (j + 1) & (ncap - 1);
        np[j] = t->pages[i];
    }
    free(t->pages);
    t->pages = np;
    t->cap = ncap;
    return JET_errSuccess;
}

static JET_ERR txn_add(struct txn *t, uint64_t key, struct pgbuf *buf, struct pgbuf *base)
{
    if (t->n >= t->limit)
        return jet_report(JET_errVersionStoreOutOfMemory,
                          "transaction changed more than %zu pages (half the cache): roll it back", t->limit);
    if ((t->n + 1) * 2 > t->cap) {
        JET_ERR err = txn_grow(t);
        if (err < 0) return err;
    }
    size_t i = slot_of(key, t->cap);
    while (t->pages[i].buf) i = (i + 1) & (t->cap - 1);
    t->pages[i].key = key;
    t->pages[i].buf = buf;
    t->pages[i].base = base;
    t->order[t->n++] = key;
    return JET_errSuccess;
}

static void txn_clear(struct txn *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->pages[i].buf) pgbuf_unref(t->pages[i].buf);
        if (t->pages[i].base) pgbuf_unref(t->pages[i].base);
        t->pages[i].buf = NULL;
        t->pages[i].base = NULL;
    }
    t->n = 0;
    t->failed = false;
}

void txn_free(struct txn *t)
{
    txn_clear(t);
    free(t->pages);
    free(t->order);
    free(t->scratch);
    memset(t, 0, sizeof *t);
}

/* ---- pager ---- */

static JET_ERR pg_get(void *vctx, uint32_t pgno, const uint8_t **ppage)
{
    struct pager_ctx *ctx = vctx;
    struct session *s = ctx->s;
    if (s && s->holds_writer) {
        struct txn_page *tp = txn_find(&s->txn, (uint64_t)ctx->dbidx << 32 | pgno);
        if (tp) {
            *ppage = tp->buf->data;
            return JET_errSuccess;
        }
    }
    struct jet_instance *inst = s->inst;
    struct pgbuf *b;
    JET_ERR err = cache_get(&inst->cache, ctx->dbidx, pgno, &b);
    if (err < 0) return err;
    *ppage = b->data;
    return JET_errSuccess;
}

static void pg_put(void *vctx, uint32_t pgno)
{
    struct pager_ctx *ctx = vctx;
    struct session *s = ctx->s;
    if (s->holds_writer && txn_find(&s->txn, (uint64_t)ctx->dbidx << 32 | pgno)) return;
    cache_put(&s->inst->cache, ctx->dbidx, pgno);
}

static JET_ERR pg_get_mut(void *vctx, uint32_t pgno, uint8_t **ppage)
{
    struct pager_ctx *ctx = vctx;
    struct session *s = ctx->s;
    if (!s->holds_writer || s->readonly) return JET_errInvalidParameter;
    uint64_t key = (uint64_t)ctx->dbidx << 32 | pgno;
    struct txn_page *tp = txn_find(&s->txn, key);
    if (tp) {
        *ppage = tp->buf->data;
        return JET_errSuccess;
    }
    struct cache *c = &s->inst->cache;
    struct pgbuf *b, *copy = pgbuf_new(c->page_size);
    if (!copy) return JET_errOutOfMemory;
    JET_ERR err = cache_get(c, ctx->dbidx, pgno, &b);
    if (err < 0) {
        pgbuf_unref(copy);
        return err;
    }
    memcpy(copy->data, b->data, c->page_size);
    /* The version the delta is computed against at commit: writers are
     * serialised, so it is still the committed one then. */
    pgbuf_ref(b);
    cache_put(c, ctx->dbidx, pgno);
    err = txn_add(&s->txn, key, copy, b);
    if (err < 0) {
        pgbuf_unref(copy);
        pgbuf_unref(b);
        return err;
    }
    *ppage = copy->data;
    return JET_errSuccess;
}

/* A fresh private page that replaces whatever pgno held. */
static JET_ERR pg_fresh(struct pager_ctx *ctx, uint32_t pgno, uint8_t type, uint8_t **ppage)
{
    struct session *s = ctx->s;
    uint64_t key = (uint64_t)ctx->dbidx << 32 | pgno;
    struct txn_page *tp = txn_find(&s->txn, key);
    uint32_t ps = s->inst->cache.page_size;
    if (tp) {
        page_init(tp->buf->data, ps, pgno, type);
        *ppage = tp->buf->data;
        return JET_errSuccess;
    }
    struct pgbuf *b = pgbuf_new(ps);
    if (!b) return JET_errOutOfMemory;
    page_init(b->data, ps, pgno, type);
    JET_ERR err = txn_add(&s->txn, key, b, NULL);
    if (err < 0) {
        pgbuf_unref(b);
        return err;
    }
    *ppage = b->data;
    return JET_errSuccess;
}

static JET_ERR pg_alloc(void *vctx, uint8_t type, uint32_t *ppgno, uint8_t **ppage)
{
    struct pager_ctx *ctx = vctx;
    uint8_t *meta;
    JET_ERR err = pg_get_mut(vctx, DB_PGNO_META, &meta);
    if (err < 0) return err;
    uint32_t head = get_le32(meta + META_OFF_FREE_HEAD);
    uint32_t pgno;
    if (head) {
        const uint8_t *fp;
        err = pg_get(vctx, head, &fp);
        if (err < 0) return err;
        if (page_type(fp) != PAGE_T_FREE) {
            pg_put(vctx, head);
            return jet_report(JET_errDatabaseCorrupted, "free list: page %u is of type %u, not free", head,
                              page_type(fp));
        }
        uint32_t next = page_aux1(fp);
        pg_put(vctx, head);
        put_le32(meta + META_OFF_FREE_HEAD, next);
        put_le32(meta + META_OFF_FREE_COUNT, get_le32(meta + META_OFF_FREE_COUNT) - 1);
        pgno = head;
    } else {
        pgno = get_le32(meta + META_OFF_NPAGES);
        if (pgno >= 0xFFFFFFF0u) return jet_report(JET_errDiskFull, "database is at its page limit");
        put_le32(meta + META_OFF_NPAGES, pgno + 1);
    }
    err = pg_fresh(ctx, pgno, type, ppage);
    if (err < 0) return err;
    *ppgno = pgno;
    return JET_errSuccess;
}

static JET_ERR pg_free(void *vctx, uint32_t pgno)
{
    struct pager_ctx *ctx = vctx;
    if (pgno < DB_FIRST_DATA_PGNO) return jet_report(JET_errDatabaseCorrupted, "free of reserved page %u", pgno);
    uint8_t *meta, *fp;
    JET_ERR err = pg_get_mut(vctx, DB_PGNO_META, &meta);
    if (err < 0) return err;
    err = pg_fresh(ctx, pgno, PAGE_T_FREE, &fp);
    if (err < 0) return err;
    page_set_aux1(fp, get_le32(meta + META_OFF_FREE_HEAD));
    put_le32(meta + META_OFF_FREE_HEAD, pgno);
    put_le32(meta + META_OFF_FREE_COUNT, get_le32(meta + META_OFF_FREE_COUNT) + 1);
    return JET_errSuccess;
}

void pager_make(struct bt_pager *pg, struct pager_ctx *ctx, struct session *s, uint32_t dbidx)
{
    ctx->s = s;
    ctx->dbidx = dbidx;
    ctx->sticky = JET_errSuccess;
    pg->ctx = ctx;
    pg->page_size = s->inst->cache.page_size;
    pg->get = pg_get;
    pg->put = pg_put;
    pg->get_mut = pg_get_mut;
    pg->alloc = pg_alloc;
    pg->free = pg_free;
}

JET_ERR meta_catalog_root(const struct bt_pager *pg, uint32_t *proot)
{
    const uint8_t *meta;
    JET_ERR err = pg->get(pg->ctx, DB_PGNO_META, &meta);
    if (err < 0) return err;
    if (page_type(meta) != PAGE_T_META) {
        pg->put(pg->ctx, DB_PGNO_META);
        return jet_report(JET_errDatabaseCorrupted, "page %u is not the meta page (type %u)", DB_PGNO_META,
                          page_type(meta));
    }
    *proot = get_le32(meta + META_OFF_CATALOG);
    pg->put(pg->ctx, DB_PGNO_META);
    return JET_errSuccess;
}

/* ---- begin / commit / rollback ---- */

/*
 * The writer token.  A session, not a thread, owns it, so a transaction
 * may begin on one thread and commit on another (jet.h, Threading), which
 * a mutex held across calls could not allow.  writer_mu is held only to
 * look at or change the token, never across a call.
 */
JET_ERR txn_writer_acquire(struct session *s)
{
    struct jet_instance *inst = s->inst;
    JET_ERR err = JET_errSuccess;
    pthread_t self = pthread_self();
    /* Whoever holds the token may need any engine lock to finish: waiting
     * for it with one held could wait forever. */
    lk_assert_none_held("waiting for the writer token");
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WRITE_WAIT_S;
    lk_mutex_lock(&inst->writer_mu, LK_WRITER);
    if (inst->writer == s) {
        inst->writer_thread = self;
        goto out;
    }
    while (inst->writer) {
        if (pthread_equal(inst->writer_thread, self)) {
            err = jet_report(JET_errWriteConflict,
                             "another session of this thread is in a write transaction: commit or roll it back "
                             "first (a thread cannot wait for itself; jet.h, Threading)");
            goto out;
        }
        int rc = pthread_cond_timedwait(&inst->writer_cv, &inst->writer_mu, &until);
        if (rc == ETIMEDOUT && inst->writer) {
            err = jet_report(JET_errWriteConflict, "another session's write transaction lasted more than %d s",
                             WRITE_WAIT_S);
            goto out;
        }
    }
    inst->writer = s;
    inst->writer_thread = self;
    s->holds_writer = true;
out:
    lk_mutex_unlock(&inst->writer_mu, LK_WRITER);
    return err;
}

static void writer_release(struct session *s)
{
    struct jet_instance *inst = s->inst;
    if (!s->holds_writer) return;
    lk_mutex_lock(&inst->writer_mu, LK_WRITER);
    inst->writer = NULL;
    s->holds_writer = false;
    pthread_cond_broadcast(&inst->writer_cv);
    lk_mutex_unlock(&inst->writer_mu, LK_WRITER);
}

JET_ERR txn_begin(struct session *s, bool readonly, bool implicit)
{
    struct jet_instance *inst = s->inst;
    s->readonly = readonly;
    s->implicit = implicit;
    s->txn.limit = inst->cache.capacity / 2;
    /* One update outside a transaction may always store the largest value
     * jet.h allows, whatever the cache: its pages are private until the
     * commit, which may grow the cache past its bound for a moment (the
     * checkpointer shrinks it again).  Only a transaction the caller began
     * is held to half the cache. */
    size_t one_value = JET_cbValueMost / (inst->cache.page_size / 2) + 64;
    if (implicit && s->txn.limit < one_value) s->txn.limit = one_value;
    if (s->txn.limit < 16) s->txn.limit = 16;
    s->level = 1;
    if (!readonly) {
        JET_ERR err = txn_writer_acquire(s);
        if (err < 0) {
            s->level = 0;
            s->implicit = false;
            return err;
        }
    }
    return JET_errSuccess;
}

/* The end of every transaction, committed or not: drops the private page
 * copies and the writer token. */
void txn_release(struct session *s)
{
    txn_clear(&s->txn);
    writer_release(s);
    s->level = 0;
    s->implicit = false;
    s->readonly = false;
}

/* No-steal: nothing uncommitted ever reached the cache, the log or a file,
 * so dropping the private copies is the whole of a rollback. */
void txn_rollback(struct session *s) { txn_release(s); }

JET_ERR txn_commit(struct session *s, bool lazy)
{
    struct jet_instance *inst = s->inst;
    struct txn *t = &s->txn;
    JET_ERR err = JET_errSuccess;
    struct log_rec *recs = NULL;
    struct iovec *iov = NULL;
    lsn_t *lsns = NULL;
    struct txn_page **changed = NULL;
    lsn_t first = 0, end = 0;

    if (!s->holds_writer || t->n == 0) {
        txn_release(s); /* nothing to commit */
        return JET_errSuccess;
    }
    if (t->failed) {
        txn_rollback(s);
        return jet_report(JET_errInvalidParameter, "an update failed in this transaction: it was rolled back");
    }
    if (!inst->log) {
        /* Logging disabled (JET_paramRecovery "Off"): install only; the
         * checkpoint writes pages out and a crash loses what it loses. */
        lk_wrlock(&inst->commit_lock, LK_COMMIT);
        for (size_t i = 0; i < t->n; i++) {
            struct txn_page *tp = txn_find(t, t->order[i]);
            pgbuf_ref(tp->buf);
            err = cache_install(&inst->cache, (uint32_t)(tp->key >> 32), (uint32_t)tp->key, tp->buf, 0, 0, false);
            if (err < 0) pgbuf_unref(tp->buf);
            if (err < 0) break;
        }
        lk_rwunlock(&inst->commit_lock, LK_COMMIT);
        txn_release(s);
        return err;
    }

    /* One buffer, kept between commits, holds the record table and the
     * encoded records: no allocation on the commit path once it is big
     * enough. */
    size_t n = t->n;
    uint32_t ps = inst->cache.page_size;
    size_t table = (n + 1) * (sizeof *recs + sizeof *iov) + n * (sizeof *lsns + sizeof *changed);
    table = (table + 7) & ~(size_t)7;
    size_t need = table + n * (LR_DELTA_HDR + delta_max_size(ps)) + LR_COMMIT_SIZE;
    if (need > t->scratch_cap) {
        uint8_t *ns = realloc(t->scratch, need);
        if (!ns) {
            err = JET_errOutOfMemory;
            goto out_rollback;
        }
        t->scratch = ns;
        t->scratch_cap = need;
    }
    recs = (struct log_rec *)(void *)t->scratch;
    iov = (struct iovec *)(void *)(recs + n + 1);
    lsns = (lsn_t *)(void *)(iov + n + 1);
    changed = (struct txn_page **)(void *)(lsns + n);
    uint8_t *records = t->scratch + table;
    size_t pos = 0, nrec = 0;
    for (size_t i = 0; i < n; i++) {
        struct txn_page *tp = txn_find(t, t->order[i]);
        /* A base never stamped (written when the database was created)
         * has no version a delta could name: encode against zeroes. */
        const uint8_t *base = tp->base && page_lsn(tp->base->data) ? tp->base->data : NULL;
        uint8_t *h = records + pos;
        put_le32(h, (uint32_t)(tp->key >> 32));
        put_le32(h + 4, (uint32_t)tp->key);
        put_le64(h + 8, base ? page_lsn(base) : 0);
        size_t dn = delta_encode(base, tp->buf->data, ps, h + LR_DELTA_HDR);
        /* A page the transaction wrote back unchanged needs no record and
         * no new version: the committed one stays. */
        if (base && dn == DELTA_RANGES_HDR) continue;
        iov[nrec] = (struct iovec){h, LR_DELTA_HDR + dn};
        recs[nrec] = (struct log_rec){LR_DELTA, &iov[nrec], 1, &lsns[nrec]};
        changed[nrec++] = tp;
        pos += LR_DELTA_HDR + dn;
    }
    if (nrec == 0) { /* nothing changed: nothing to commit */
        txn_release(s);
        return JET_errSuccess;
    }
    uint8_t *ch = records + pos;
    uint64_t txid = atomic_fetch_add(&inst->txn_seq, 1) + 1;
    put_le64(ch, os_now_us());
    put_le64(ch + 8, txid);
    iov[nrec] = (struct iovec){ch, LR_COMMIT_SIZE};
    recs[nrec] = (struct log_rec){LR_COMMIT, &iov[nrec], 1, NULL};

    lk_wrlock(&inst->commit_lock, LK_COMMIT);
    err = log_append(inst->log, recs, (int)nrec + 1, &first, &end);
    if (err < 0) {
        lk_rwunlock(&inst->commit_lock, LK_COMMIT);
        err = inst_fatal(inst, err);
        goto out_rollback;
    }
    for (size_t i = 0; i < nrec; i++) {
        struct txn_page *tp = changed[i];
        page_set_lsn(tp->buf->data, lsns[i]);
        pgbuf_ref(tp->buf);
        /* A delta made against no version (before 0) lets redo rebuild
         * the page from zeroes: its next write needs no double-write copy. */
        bool fresh = get_le64((const uint8_t *)iov[i].iov_base + 8) == 0;
        JET_ERR e = cache_install(&inst->cache, (uint32_t)(tp->key >> 32), (uint32_t)tp->key, tp->buf, first, end,
                                  fresh);
        if (e < 0) {
            /* The commit is in the log already: the only safe course is to
             * stop the instance; recovery will replay it. */
            pgbuf_unref(tp->buf);
            lk_rwunlock(&inst->commit_lock, LK_COMMIT);
            err = inst_fatal(inst, e);
            goto out_rollback;
        }
    }
    s->last_commit_end = end;
    lk_rwunlock(&inst->commit_lock, LK_COMMIT);
    txn_release(s); /* committed: drops the private references and the writer token */
    if (!lazy) {
        err = log_flush(inst->log, end);
        if (err < 0) return inst_fatal(inst, err);
    }
    return ckpt_throttle(inst);

out_rollback:
    txn_rollback(s);
    return err;
}

JET_ERR txn_wait_durable(struct session *s)
{
    struct jet_instance *inst = s->inst;
    if (!inst->log || !s->last_commit_end) return JET_errSuccess;
    JET_ERR err = log_flush(inst->log, s->last_commit_end);
    return err < 0 ? inst_fatal(inst, err) : JET_errSuccess;
}

JET_ERR txn_wait_all_durable(struct session *s)
{
    struct jet_instance *inst = s->inst;
    if (!inst->log) return JET_errSuccess;
    JET_ERR err = log_flush_all(inst->log);
    return err < 0 ? inst_fatal(inst, err) : JET_errSuccess;
}
