/*
 * restore.h -- the map a restore gives recovery (restore.c sets it on a
 * temporary instance; recovery.c reads it).
 */
#ifndef JET_RESTORE_H
#define JET_RESTORE_H

#include <stdint.h>

#include "instance.h"
#include "log.h"

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
};

#endif /* JET_RESTORE_H */
