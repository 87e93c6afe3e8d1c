/*
 * lockrank.h -- the engine's locks, taken through wrappers that check their
 * order in checking builds (Debug, -DJET_CHECK_LOCKS=ON, the sanitizer builds),
 * as ESE's rank* constants do.
 *
 * Every engine lock has a rank: its row in the lock-order table of
 * engine/README.md.  A thread may take a lock only if every lock it already
 * holds has a lower rank.  Taking one of equal or lower rank is a latent
 * deadlock even when the test that runs it never meets the other thread, so
 * a checking build aborts at once, naming both locks and where each was
 * taken.  The check is per thread (a thread-local stack of held locks); it
 * costs nothing in a Release build, where every wrapper is the bare pthread
 * call (JET_LOCK_RANKS undefined).
 *
 * Try-locks never wait, so they cannot deadlock: they skip the order check
 * but are recorded as held.  A condition wait keeps its mutex recorded as
 * held: it is reacquired before the wait returns, and the thread takes
 * nothing while it sleeps.
 *
 * Locking: the held stack is thread-local; nothing here is shared.
 */
#ifndef JET_LOCKRANK_H
#define JET_LOCKRANK_H

#include <pthread.h>
#include <time.h>

/* engine/README.md "Lock order": keep the two in step. */
enum lk_rank {
    LK_BACKUP = 1,   /* jet_instance.backup_mu */
    LK_CKPT,         /* jet_instance.ckpt_mu */
    LK_WRITER,       /* jet_instance.writer_mu (the writer token's guard) */
    LK_COMMIT,       /* jet_instance.commit_lock (rwlock) */
    LK_INSTANCE,     /* jet_instance.mu */
    LK_CACHE,        /* cache.mu */
    LK_DWB,          /* the double-write file's mutex */
    LK_SNAP,         /* a database's snap_lock (rwlock) */
    LK_LOG,          /* the log's mu */
    LK_REGISTRY,     /* instance.c's global state (mode, instance list, handle
                      * table): a leaf, since every API call looks up its
                      * handles under it, whatever the caller holds */
    LK_FAILURE,      /* instance.c's failure record: a leaf */
    LK_OVERLAY,      /* a browse overlay's rwlock (overlay.c): taken inside the I/O
                      * seam, so below everything that does I/O */
    LK_OVERLAY_FDS,  /* overlay.c's table of overlays and descriptors: a leaf */
    LK_NRANKS
};

#if defined(JET_LOCK_RANKS)

void lk_acquired(const void *lock, enum lk_rank rank, const char *file, int line, int checked);
void lk_released(const void *lock, enum lk_rank rank, const char *file, int line);
/* How many locks this thread holds (tests). */
int lk_held_count(void);
/* Aborts if the thread holds any engine lock: before a wait that another
 * session ends, which may need any of them. */
void lk_assert_none_held_at(const char *what, const char *file, int line);
#define lk_assert_none_held(what) lk_assert_none_held_at((what), __FILE__, __LINE__)

static inline void lk_mutex_lock_at(pthread_mutex_t *m, enum lk_rank r, const char *f, int l)
{
    lk_acquired(m, r, f, l, 1);
    pthread_mutex_lock(m);
}
static inline int lk_mutex_timedlock_at(pthread_mutex_t *m, const struct timespec *ts, enum lk_rank r,
                                        const char *f, int l)
{
    lk_acquired(m, r, f, l, 1);
    int rc = pthread_mutex_timedlock(m, ts);
    if (rc != 0) lk_released(m, r, f, l);
    return rc;
}
static inline void lk_mutex_unlock_at(pthread_mutex_t *m, enum lk_rank r, const char *f, int l)
{
    lk_released(m, r, f, l);
    pthread_mutex_unlock(m);
}
static inline void lk_rdlock_at(pthread_rwlock_t *rw, enum lk_rank r, const char *f, int l)
{
    lk_acquired(rw, r, f, l, 1);
    pthread_rwlock_rdlock(rw);
}
static inline void lk_wrlock_at(pthread_rwlock_t *rw, enum lk_rank r, const char *f, int l)
{
    lk_acquired(rw, r, f, l, 1);
    pthread_rwlock_wrlock(rw);
}
static inline void lk_rwunlock_at(pthread_rwlock_t *rw, enum lk_rank r, const char *f, int l)
{
    lk_released(rw, r, f, l);
    pthread_rwlock_unlock(rw);
}

#define lk_mutex_lock(m, r) lk_mutex_lock_at((m), (r), __FILE__, __LINE__)
#define lk_mutex_timedlock(m, ts, r) lk_mutex_timedlock_at((m), (ts), (r), __FILE__, __LINE__)
#define lk_mutex_unlock(m, r) lk_mutex_unlock_at((m), (r), __FILE__, __LINE__)
#define lk_rdlock(rw, r) lk_rdlock_at((rw), (r), __FILE__, __LINE__)
#define lk_wrlock(rw, r) lk_wrlock_at((rw), (r), __FILE__, __LINE__)
#define lk_rwunlock(rw, r) lk_rwunlock_at((rw), (r), __FILE__, __LINE__)

#else /* a Release build: the bare calls */

#define lk_assert_none_held(what) ((void)0)
#define lk_mutex_lock(m, r) pthread_mutex_lock(m)
#define lk_mutex_timedlock(m, ts, r) pthread_mutex_timedlock((m), (ts))
#define lk_mutex_unlock(m, r) pthread_mutex_unlock(m)
#define lk_rdlock(rw, r) pthread_rwlock_rdlock(rw)
#define lk_wrlock(rw, r) pthread_rwlock_wrlock(rw)
#define lk_rwunlock(rw, r) pthread_rwlock_unlock(rw)

#endif

#endif
