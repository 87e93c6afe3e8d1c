/*
 * cache.h -- the bounded buffer cache of committed page versions (cache.c).
 *
 * Owns: frames, their hash and LRU list, and dirty state, under cache.mu
 * (LK_CACHE, engine/README.md "Lock order"), which is released for every
 * disk read and write.  A frame holds one committed version of a page
 * (refcounted, so readers keep the version they pinned while a commit
 * installs the next); transactions hold their own private copies (txn.h).
 * Invariant: a dirty page reaches its file only after the log is durable
 * past the commit that made it, and only through the double-write file.
 */
#ifndef JET_CACHE_H
#define JET_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jet.h"
#include "log.h"

struct pgbuf {
    atomic_int refs;
    uint8_t data[];
};

struct frame {
    uint32_t dbidx, pgno;
    struct pgbuf *buf;
    int pins;
    bool loading;
    bool dirty;
    lsn_t rec_lsn;  /* first change not yet on disk (valid when dirty) */
    lsn_t lsn;      /* end of the commit that installed the current version */
    bool fresh;     /* (valid when dirty) the first change since the last write started it from zeroes */
    struct frame *hnext;
    struct frame *prev, *next;  /* LRU, most recent at head */
};

struct jet_instance;
struct dwb;

struct cache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t page_size;
    size_t capacity;
    size_t nframes;
    size_t ndirty;
    struct frame **hash;
    size_t nbuckets;
    struct frame *head, *tail;
    struct jet_instance *inst;
    uint64_t hits, misses, evictions;
};

struct pgbuf *pgbuf_new(uint32_t page_size);
void pgbuf_ref(struct pgbuf *b);
void pgbuf_unref(struct pgbuf *b);

JET_ERR cache_init(struct cache *c, struct jet_instance *inst, uint32_t page_size, size_t capacity);
void cache_destroy(struct cache *c);
/* Pins the committed version of a page, reading it from disk if needed. */
JET_ERR cache_get(struct cache *c, uint32_t dbidx, uint32_t pgno, struct pgbuf **pbuf);
void cache_put(struct cache *c, uint32_t dbidx, uint32_t pgno);
/* Installs a committed version (takes over the reference). Context: commit_lock exclusive. */
JET_ERR cache_install(struct cache *c, uint32_t dbidx, uint32_t pgno, struct pgbuf *buf, lsn_t first_lsn,
                      lsn_t lsn, bool fresh);
/* Drops every frame of a database (after it was flushed), for detach. */
void cache_forget_db(struct cache *c, uint32_t dbidx);

/*
 * Writes every dirty page (WAL rule respected), fsyncs the database files,
 * and returns the checkpoint position: every change before it is on disk.
 * Context: takes commit_lock exclusive briefly to capture a consistent set.
 */
JET_ERR cache_flush_all(struct cache *c, lsn_t *pckpt);
/* How many pages are dirty now, and *pcapacity how many the cache holds. */
size_t cache_dirty_pages(struct cache *c, size_t *pcapacity);

#endif /* JET_CACHE_H */
