/*
 * cache.c -- the bounded buffer cache of committed page versions.
 *
 * Owns: frames (one per cached (database, page)), their LRU order and dirty
 * state.  A frame holds a reference-counted page version (struct pgbuf).
 * Readers pin the frame for the length of one B+tree operation; commit
 * swaps in a new version (cache_install) under the exclusive commit_lock, so
 * no reader ever sees a version change mid-operation, and a flusher that
 * took a reference to the old version can still write it out safely.
 *
 * Invariants:
 *  1. A dirty version is written to its database file only after the log is
 *     durable past its lsn (the WAL rule: write_versions calls log_flush
 *     first), and, with logging on, only through the double-write file
 *     (dwb.h), so a crash mid-write never leaves a page recovery cannot use.
 *  2. A frame is evicted only when unpinned and clean.
 *  3. rec_lsn of a dirty frame is <= the first log record of every committed
 *     change not yet on disk, so min(rec_lsn) is a safe checkpoint.
 *  4. capacity is a soft bound: when every frame is pinned the cache grows
 *     rather than deadlock, and shrinks back as frames are released.
 *
 * Locking: cache.mu protects everything here; disk reads and writes run with
 * it released (a frame being read is marked loading; others wait on cv).
 */
#include <stdlib.h>
#include <string.h>

#include "database.h"
#include "diag.h"
#include "dwb.h"
#include "instance.h"
#include "lockrank.h"
#include "os.h"
#include "page.h"
#include "snapshot.h"

struct pgbuf *pgbuf_new(uint32_t page_size)
{
    struct pgbuf *b = malloc(sizeof *b + page_size);
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    return b;
}

void pgbuf_ref(struct pgbuf *b) { atomic_fetch_add(&b->refs, 1); }

void pgbuf_unref(struct pgbuf *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) free(b);
}

static size_t bucket_of(const struct cache *c, uint32_t dbidx, uint32_t pgno)
{
    uint64_t k = ((uint64_t)dbidx << 32 | pgno) * 0x9E3779B97F4A7C15ull;
    return (size_t)(k >> 20) % c->nbuckets;
}

static struct frame *lookup(struct cache *c, uint32_t dbidx, uint32_t pgno)
{
    for (struct frame *f = c->hash[bucket_of(c, dbidx, pgno)]; f; f = f->hnext)
        if (f->pgno == pgno && f->dbidx == dbidx) return f;
    return NULL;
}

static void lru_unlink(struct cache *c, struct frame *f)
{
    if (f->prev) f->prev->next = f->next;
    else c->head = f->next;
    if (f->next) f->next->prev = f->prev;
    else c->tail = f->prev;
    f->prev = f->next = NULL;
}

static void lru_push_head(struct cache *c, struct frame *f)
{
    f->prev = NULL;
    f->next = c->head;
    if (c->head) c->head->prev = f;
    c->head = f;
    if (!c->tail) c->tail = f;
}

static void hash_remove(struct cache *c, struct frame *f)
{
    struct frame **pp = &c->hash[bucket_of(c, f->dbidx, f->pgno)];
    while (*pp && *pp != f) pp = &(*pp)->hnext;
    if (*pp) *pp = f->hnext;
    f->hnext = NULL;
}

static void hash_insert(struct cache *c, struct frame *f)
{
    size_t b = bucket_of(c, f->dbidx, f->pgno);
    f->hnext = c->hash[b];
    c->hash[b] = f;
}

JET_ERR cache_init(struct cache *c, struct jet_instance *inst, uint32_t page_size, size_t capacity)
{
    memset(c, 0, sizeof *c);
    c->inst = inst;
    c->page_size = page_size;
    c->capacity = capacity < 64 ? 64 : capacity;
    c->nbuckets = c->capacity * 2 + 1;
    c->hash = calloc(c->nbuckets, sizeof *c->hash);
    if (!c->hash) return JET_errOutOfMemory;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return JET_errSuccess;
}

void cache_destroy(struct cache *c)
{
    struct frame *f = c->head;
    while (f) {
        struct frame *n = f->next;
        pgbuf_unref(f->buf);
        free(f);
        f = n;
    }
    free(c->hash);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    memset(c, 0, sizeof *c);
}

struct flush_item {
    struct frame *f;
    struct pgbuf *buf;
    uint32_t dbidx, pgno;
    lsn_t lsn;
    bool fresh;  /* its first change since it was last written starts it from zeroes */
};

/* Writes without the double-write file: logging is off, so no recovery
 * could use the copies. */
static JET_ERR write_direct(struct cache *c, const struct flush_item *it)
{
    struct db *db = c->inst->dbs[it->dbidx];
    uint8_t *tmp = malloc(c->page_size);
    if (!tmp) return JET_errOutOfMemory;
    memcpy(tmp, it->buf->data, c->page_size);
    page_seal(tmp, c->page_size);
    JET_ERR err = db_write_page(db, it->pgno, tmp, c->page_size);
    free(tmp);
    char eb[128];
    if (err < 0)
        return jet_report(err, "%s: writing page %u failed: %s", db->path, it->pgno, os_reason(err, eb, sizeof eb));
    return JET_errSuccess;
}

/*
 * One round of the double-write protocol (dwb.h) for n <= DWB_MAX_PAGES
 * versions: stage them, write them in place, fsync the files written, so
 * the next stage may overwrite the copies.
 */
static JET_ERR write_round(struct cache *c, const struct flush_item *items, size_t n)
{
    struct jet_instance *inst = c->inst;
    struct dwb_page pages[DWB_MAX_PAGES];
    bool touched[JET_MAX_DBS] = {0};
    JET_ERR err = JET_errSuccess;
    for (size_t i = 0; i < n; i++) {
        struct db *db = inst->dbs[items[i].dbidx];
        pages[i] = (struct dwb_page){db->hdr.db_signature, db->path, items[i].pgno, items[i].buf->data};
    }
    dwb_lock(inst->dwb);
    if ((err = dwb_stage(inst->dwb, pages, n)) < 0) {
        err = inst_fatal(inst, err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct db *db = inst->dbs[items[i].dbidx];
        if ((err = db_write_page(db, items[i].pgno, dwb_image(inst->dwb, i), c->page_size)) < 0) {
            /* The page may now be half written, and only this stage's copy
             * can put it back: stop the instance, so nothing overwrites
             * the copy before recovery uses it. */
            char eb[128];
            jet_report(err, "%s: writing page %u failed: %s", db->path, items[i].pgno, os_reason(err, eb, sizeof eb));
            err = inst_fatal(inst, err);
            goto out;
        }
        touched[items[i].dbidx] = true;
    }
    for (uint32_t d = 0; d < JET_MAX_DBS; d++) {
        if (!touched[d]) continue;
        if ((err = os_fsync(inst->dbs[d]->fd)) < 0) {
            /* Never retried: see cache_flush_all. */
            char eb[128];
            jet_report(err, "%s: fsync failed: %s", inst->dbs[d]->path, os_reason(err, eb, sizeof eb));
            err = inst_fatal(inst, err);
            goto out;
        }
    }
out:
    dwb_unlock(inst->dwb);
    return err;
}

/* Writes versions of pages to their database files: the log first (the
 * WAL rule), then through the double-write file when logging is on. */
static JET_ERR write_versions(struct cache *c, const struct flush_item *items, size_t n)
{
    struct jet_instance *inst = c->inst;
    JET_ERR err;
    lsn_t upto = 0;
    /* A failed instance writes no page: a stage would overwrite the
     * double-write copies its failure may need. */
    if (atomic_load(&inst->unavailable)) return JET_errInstanceUnavailable;
    for (size_t i = 0; i < n; i++) {
        if (!inst->dbs[items[i].dbidx])
            return jet_report(JET_errInvalidDatabaseId, "cache: dirty page %u of unattached database %u",
                              items[i].pgno, items[i].dbidx);
        if (items[i].lsn > upto) upto = items[i].lsn;
    }
    if (inst->log && upto > log_durable_lsn(inst->log)) {
        err = log_flush(inst->log, upto);
        if (err < 0) return inst_fatal(inst, err);
    }
    /* A page whose first change since it was last written starts it from
     * zeroes (a new page) needs no copy: redo rebuilds it from that record,
     * which lies after the checkpoint, whatever a torn write left. */
    struct flush_item *staged = malloc((n ? n : 1) * sizeof *staged);
    size_t ns = 0;
    if (!staged) return JET_errOutOfMemory;
    for (size_t i = 0; i < n; i++) {
        if (inst->dwb && !items[i].fresh) {
            staged[ns++] = items[i];
            continue;
        }
        if ((err = write_direct(c, &items[i])) < 0) {
            free(staged);
            return inst->dwb ? inst_fatal(inst, err) : err;
        }
    }
    err = JET_errSuccess;
    for (size_t at = 0; at < ns && err >= 0; at += DWB_MAX_PAGES)
        err = write_round(c, staged + at, ns - at < DWB_MAX_PAGES ? ns - at : DWB_MAX_PAGES);
    free(staged);
    return err;
}

/*
 * Finds a frame to reuse, or makes a new one.  Called with mu held; may
 * release it to write a dirty victim, so the caller must re-check its
 * lookup afterwards (*pretry set).
 */
static JET_ERR frame_obtain(struct cache *c, struct frame **pf, bool *pretry)
{
    *pretry = false;
    if (c->nframes < c->capacity) goto fresh;
    for (struct frame *f = c->tail; f; f = f->prev) {
        if (f->pins || f->loading || f->dirty) continue;
        hash_remove(c, f);
        lru_unlink(c, f);
        pgbuf_unref(f->buf);
        f->buf = NULL;
        c->evictions++;
        *pf = f;
        return JET_errSuccess;
    }
    /* Only dirty frames are free to go: write the oldest out first. */
    for (struct frame *f = c->tail; f; f = f->prev) {
        if (f->pins || f->loading || !f->dirty) continue;
        struct pgbuf *b = f->buf;
        uint32_t dbidx = f->dbidx, pgno = f->pgno;
        lsn_t lsn = f->lsn;
        bool fresh = f->fresh;
        pgbuf_ref(b);
        f->pins++;
        lk_mutex_unlock(&c->mu, LK_CACHE);
        struct flush_item it = {f, b, dbidx, pgno, lsn, fresh};
        JET_ERR err = write_versions(c, &it, 1);
        lk_mutex_lock(&c->mu, LK_CACHE);
        f->pins--;
        if (err >= 0 && f->buf == b && f->dirty) {
            /* Written and fsynced, but the checkpoint position only moves
             * past this page at the next cache_flush_all. */
            f->dirty = false;
            c->ndirty--;
        } else if (err >= 0 && f->dirty) {
            /* A newer version came meanwhile: it changes the one now on
             * disk, which redo needs whole. */
            f->fresh = false;
        }
        pgbuf_unref(b);
        if (err < 0) return err;
        *pretry = true;
        return JET_errSuccess;
    }
fresh:;
    struct frame *f = calloc(1, sizeof *f);
    if (!f) return JET_errOutOfMemory;
    c->nframes++;
    *pf = f;
    return JET_errSuccess;
}

JET_ERR cache_get(struct cache *c, uint32_t dbidx, uint32_t pgno, struct pgbuf **pbuf)
{
    JET_ERR err = JET_errSuccess;
    struct frame *f;
    lk_mutex_lock(&c->mu, LK_CACHE);
again:
    f = lookup(c, dbidx, pgno);
    if (f) {
        if (f->loading) {
            pthread_cond_wait(&c->cv, &c->mu);
            goto again;
        }
        f->pins++;
        lru_unlink(c, f);
        lru_push_head(c, f);
        c->hits++;
        *pbuf = f->buf;
        lk_mutex_unlock(&c->mu, LK_CACHE);
        return JET_errSuccess;
    }
    bool retry;
    err = frame_obtain(c, &f, &retry);
    if (err < 0) goto out;
    if (retry) goto again;
    struct db *db = c->inst->dbs[dbidx];
    if (!db) {
        free(f);
        c->nframes--;
        err = jet_report(JET_errInvalidDatabaseId, "cache: read of page %u of unattached database %u", pgno, dbidx);
        goto out;
    }
    struct pgbuf *b = pgbuf_new(c->page_size);
    if (!b) {
        free(f);
        c->nframes--;
        err = JET_errOutOfMemory;
        goto out;
    }
    memset(f, 0, sizeof *f);
    f->dbidx = dbidx;
    f->pgno = pgno;
    f->buf = b;
    f->loading = true;
    f->pins = 1;
    hash_insert(c, f);
    lru_push_head(c, f);
    c->misses++;
    int fd = db->fd;
    lk_mutex_unlock(&c->mu, LK_CACHE);

    err = os_pread_full(fd, b->data, c->page_size, (uint64_t)pgno * c->page_size);
    if (err >= 0) err = page_verify(b->data, c->page_size, pgno, db->path);

    lk_mutex_lock(&c->mu, LK_CACHE);
    f->loading = false;
    pthread_cond_broadcast(&c->cv);
    if (err < 0) {
        /* Never keep (or serve) a page that failed verification. */
        hash_remove(c, f);
        lru_unlink(c, f);
        pgbuf_unref(f->buf);
        free(f);
        c->nframes--;
        goto out;
    }
    f->lsn = page_lsn(b->data);
    *pbuf = b;
out:
    lk_mutex_unlock(&c->mu, LK_CACHE);
    return err;
}

/* Back under the soft bound once frames are released and clean.  Context: mu. */
static void shrink_locked(struct cache *c)
{
    while (c->nframes > c->capacity && c->tail && !c->tail->pins && !c->tail->dirty && !c->tail->loading) {
        struct frame *v = c->tail;
        hash_remove(c, v);
        lru_unlink(c, v);
        pgbuf_unref(v->buf);
        free(v);
        c->nframes--;
    }
}

void cache_put(struct cache *c, uint32_t dbidx, uint32_t pgno)
{
    lk_mutex_lock(&c->mu, LK_CACHE);
    struct frame *f = lookup(c, dbidx, pgno);
    if (f && f->pins > 0) f->pins--;
    shrink_locked(c);
    lk_mutex_unlock(&c->mu, LK_CACHE);
}

JET_ERR cache_install(struct cache *c, uint32_t dbidx, uint32_t pgno, struct pgbuf *buf, lsn_t first_lsn, lsn_t lsn,
                      bool fresh)
{
    JET_ERR err = JET_errSuccess;
    lk_mutex_lock(&c->mu, LK_CACHE);
    struct frame *f;
again:
    f = lookup(c, dbidx, pgno);
    if (f && f->loading) {
        pthread_cond_wait(&c->cv, &c->mu);
        goto again;
    }
    if (!f) {
        /* Never write back from here: commit holds commit_lock and must
         * not wait on the disk.  Grow past the bound instead; flushers and
         * cache_put shrink the cache again. */
        f = calloc(1, sizeof *f);
        if (!f) {
            err = JET_errOutOfMemory;
            goto out;
        }
        c->nframes++;
        f->dbidx = dbidx;
        f->pgno = pgno;
        hash_insert(c, f);
        lru_push_head(c, f);
    } else {
        lru_unlink(c, f);
        lru_push_head(c, f);
        pgbuf_unref(f->buf);
    }
    f->buf = buf;
    f->lsn = lsn;
    if (!f->dirty) {
        f->dirty = true;
        f->rec_lsn = first_lsn;
        f->fresh = fresh;
        c->ndirty++;
    }
out:
    lk_mutex_unlock(&c->mu, LK_CACHE);
    return err;
}

void cache_forget_db(struct cache *c, uint32_t dbidx)
{
    lk_mutex_lock(&c->mu, LK_CACHE);
    struct frame *f = c->head;
    while (f) {
        struct frame *n = f->next;
        if (f->dbidx == dbidx && !f->pins && !f->loading) {
            if (f->dirty) c->ndirty--;
            hash_remove(c, f);
            lru_unlink(c, f);
            pgbuf_unref(f->buf);
            free(f);
            c->nframes--;
        }
        f = n;
    }
    lk_mutex_unlock(&c->mu, LK_CACHE);
}

static int flush_item_cmp(const void *a, const void *b)
{
    const struct flush_item *x = a, *y = b;
    if (x->dbidx != y->dbidx) return x->dbidx < y->dbidx ? -1 : 1;
    return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

JET_ERR cache_flush_all(struct cache *c, lsn_t *pckpt)
{
    struct jet_instance *inst = c->inst;
    JET_ERR err = JET_errSuccess;
    struct flush_item *items = NULL;
    size_t n = 0;
    bool touched[JET_MAX_DBS] = {0};

    /* Capture a set no commit is half-way through. */
    lk_wrlock(&inst->commit_lock, LK_COMMIT);
    lsn_t l0 = inst->log ? log_end_lsn(inst->log) : 0;
    lk_mutex_lock(&c->mu, LK_CACHE);
    items = malloc((c->ndirty + 1) * sizeof *items);
    if (!items) {
        lk_mutex_unlock(&c->mu, LK_CACHE);
        lk_rwunlock(&inst->commit_lock, LK_COMMIT);
        return JET_errOutOfMemory;
    }
    for (struct frame *f = c->head; f; f = f->next) {
        if (!f->dirty) continue;
        pgbuf_ref(f->buf);
        f->pins++;
        items[n++] = (struct flush_item){f, f->buf, f->dbidx, f->pgno, f->lsn, f->fresh};
    }
    lk_mutex_unlock(&c->mu, LK_CACHE);
    lk_rwunlock(&inst->commit_lock, LK_COMMIT);

    qsort(items, n, sizeof *items, flush_item_cmp);
    if (inst->log && n) {
        err = log_flush(inst->log, l0);
        if (err < 0) {
            err = inst_fatal(inst, err);
            goto release;
        }
    }
    if (err >= 0 && n) err = write_versions(c, items, n);
    for (size_t i = 0; i < n; i++) touched[items[i].dbidx] = true;
    /* Every page of a database written by eviction since the last
     * checkpoint must be durable too: fsync all attached files. */
    for (uint32_t d = 0; d < JET_MAX_DBS && err >= 0; d++) {
        struct db *db = inst->dbs[d];
        if (!db || (!touched[d] && !db->attached)) continue;
        err = os_fsync(db->fd);
        if (err < 0) {
            /* Never retried: the kernel may have dropped pages written by
             * eviction, and a later successful fsync would let the
             * checkpoint move past changes that are not on disk. */
            jet_report(err, "%s: fsync failed: %s", db->path, JetErrorString(err));
            err = inst_fatal(inst, err);
        }
    }
release:
    lk_mutex_lock(&c->mu, LK_CACHE);
    for (size_t i = 0; i < n; i++) {
        struct frame *f = items[i].f;
        f->pins--;
        if (err >= 0 && f->dirty) {
            if (f->buf == items[i].buf) {
                f->dirty = false;
                c->ndirty--;
            } else {
                /* A newer version was installed after the capture, so its
                 * first record is at or after l0; and it changes the version
                 * now on disk, which redo needs whole: not fresh. */
                if (f->rec_lsn < l0) f->rec_lsn = l0;
                f->fresh = false;
            }
        }
        pgbuf_unref(items[i].buf);
    }
    lsn_t ckpt = l0;
    for (struct frame *f = c->head; f; f = f->next)
        if (f->dirty && f->rec_lsn < ckpt) ckpt = f->rec_lsn;
    shrink_locked(c);
    lk_mutex_unlock(&c->mu, LK_CACHE);
    free(items);
    if (err >= 0 && pckpt) *pckpt = ckpt;
    return err;
}

size_t cache_dirty_pages(struct cache *c, size_t *pcapacity)
{
    lk_mutex_lock(&c->mu, LK_CACHE);
    size_t dirty = c->ndirty;
    *pcapacity = c->capacity;
    lk_mutex_unlock(&c->mu, LK_CACHE);
    return dirty;
}
