/*
 * restore.h -- the map a restore gives recovery (restore.c sets it on a
 * temporary instance; recovery.c reads it).
 */
#ifndef JET_RESTORE_H
#define JET_RESTORE_H

#include <stdint.h>

#include "instance.h"
#include "log.h"

/* What a replay did (recovery.c fills it when restore_map.res is set). */
struct restore_result {
    uint32_t gen_first, gen_end;   /* the generations replayed */
    uint64_t last_commit_us;       /* the time of the last commit applied (0: none) */
    uint64_t consistent_us;        /* the copies' consistent point */
    char db_path[JET_PATH_MAX];    /* the first database, where the restore put it */
};

/* Set on a temporary instance by JetExternalRestore2 before JetInit:
 * recovery then starts at lsn_start, opens these files for these
 * databases, ignores every other database the log names, and stops at
 * stop_gen / stop_us when set. */
struct restore_map {
    uint64_t log_signature;
    lsn_t lsn_start;
    uint32_t gen_high;         /* every generation up to here is required */
    uint32_t stop_gen;         /* 0: to the end */
    uint64_t stop_us;          /* 0: no time limit */
    uint64_t consistent_us;    /* the copies' consistent point in time (0: unknown) */
    uint32_t n;
    struct {
        uint32_t dbidx;
        uint64_t db_signature;
        char path[JET_PATH_MAX];
    } dbs[JET_MAX_DBS];
    struct restore_result *res;   /* filled by the replay, may be NULL */
    bool scratch_target;          /* the target is a browse's overlay: no double-write staging */
};

/* How a restore places the sets' files at the target (JetRestoreSets2
 * copies them).  A browse maps them instead (put), and leaves the check of
 * every page to each read (verify_pages false): the time to a first answer
 * is then the replay's, not the database's size. */
struct restore_how {
    JET_ERR (*put)(void *arg, const char *from, const char *to);
    void *arg;
    bool verify_pages;
    bool scratch_target;   /* the target dies with the process (an overlay): no double-write staging */
    struct restore_result *res;
};
/* JetRestoreSets2, placing the files as how says. */
JET_ERR restore_sets(const char *const *sets, int nsets, const char *target_dir, unsigned long stop_gen,
                     unsigned long long stop_us, JET_PFNSTATUS pfn, const struct restore_how *how);

#endif /* JET_RESTORE_H */
