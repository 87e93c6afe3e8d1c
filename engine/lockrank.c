/*
 * lockrank.c -- the lock-order check behind lockrank.h (checking builds).
 *
 * Owns one thread-local stack of the locks the thread holds, with where
 * each was taken.  Invariant checked: the ranks on the stack are strictly
 * increasing from bottom to top at every acquisition, i.e. a thread takes a
 * lock only above every lock it holds.  A violation aborts with both locks
 * named: it is a bug in the engine, never a condition to recover from.
 */
#include "lockrank.h"

#if defined(JET_LOCK_RANKS)

#include <stdio.h>
#include <stdlib.h>

#define LK_MAX_HELD 32

struct lk_held {
    const void *lock;
    enum lk_rank rank;
    const char *file;
    int line;
};

static _Thread_local struct lk_held held[LK_MAX_HELD];
static _Thread_local int nheld;

static const char *const rank_names[LK_NRANKS] = {
    [LK_REGISTRY] = "the instance registry (instance.c g.lock)",
    [LK_BACKUP] = "backup_mu",
    [LK_CKPT] = "ckpt_mu",
    [LK_WRITER] = "writer_mu (the writer token)",
    [LK_COMMIT] = "commit_lock",
    [LK_INSTANCE] = "instance.mu",
    [LK_CACHE] = "cache.mu",
    [LK_DWB] = "the double-write file's mutex",
    [LK_SNAP] = "a database's snap_lock",
    [LK_LOG] = "the log's mu",
    [LK_FAILURE] = "the failure record (instance.c failure_mu)",
    [LK_OVERLAY] = "a browse overlay's lock (overlay.c)",
    [LK_OVERLAY_FDS] = "the browse overlays' descriptor table (overlay.c)",
};

static const char *rank_name(enum lk_rank r)
{
    return (r > 0 && r < LK_NRANKS && rank_names[r]) ? rank_names[r] : "an unknown lock";
}

void lk_acquired(const void *lock, enum lk_rank rank, const char *file, int line, int checked)
{
    if (checked) {
        for (int i = 0; i < nheld; i++) {
            if (held[i].rank < rank) continue;
            fprintf(stderr,
                    "jet: lock order violated: taking %s (rank %d) at %s:%d while holding %s (rank %d), "
                    "taken at %s:%d (engine/README.md, \"Lock order\")\n",
                    rank_name(rank), (int)rank, file, line, rank_name(held[i].rank), (int)held[i].rank,
                    held[i].file, held[i].line);
            abort();
        }
    }
    if (nheld == LK_MAX_HELD) {
        fprintf(stderr, "jet: %d locks held at once at %s:%d: a lock is not being released\n", nheld, file, line);
        abort();
    }
    held[nheld++] = (struct lk_held){lock, rank, file, line};
}

void lk_released(const void *lock, enum lk_rank rank, const char *file, int line)
{
    /* Locks are usually released in reverse order, but not always (a
     * function may drop an outer lock early): search from the top. */
    for (int i = nheld - 1; i >= 0; i--) {
        if (held[i].lock != lock) continue;
        for (int j = i; j + 1 < nheld; j++) held[j] = held[j + 1];
        nheld--;
        return;
    }
    fprintf(stderr, "jet: releasing %s (rank %d) at %s:%d, which this thread does not hold\n", rank_name(rank),
            (int)rank, file, line);
    abort();
}

int lk_held_count(void) { return nheld; }

void lk_assert_none_held_at(const char *what, const char *file, int line)
{
    if (nheld == 0) return;
    fprintf(stderr, "jet: %s at %s:%d while holding %s (rank %d), taken at %s:%d: it may wait forever\n", what, file,
            line, rank_name(held[nheld - 1].rank), (int)held[nheld - 1].rank, held[nheld - 1].file,
            held[nheld - 1].line);
    abort();
}

#endif
