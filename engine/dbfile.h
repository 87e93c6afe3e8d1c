/*
 * dbfile.h -- the database file header, kept twice (pages 0 and 1).
 *
 * The header is not logged: it changes rarely (attach, clean shutdown,
 * backup history) and is written in place, copy 0 then copy 1, each
 * followed by an fsync, so a torn write can destroy at most one copy.  A
 * reader takes the valid copy with the higher update_seq.  Layout (bytes of
 * the first 1 KiB of each header page, little-endian):
 *
 *   0    u64 checksum      XXH3_64bits of bytes [8, 1024)
 *   8    u32 magic         DB_MAGIC
 *   12   u32 version
 *   16   u32 page_size
 *   20   u32 state         DB_STATE_* (ESE's JET_dbstate values)
 *   24   u64 db_signature  random, fixed at creation
 *   32   u64 log_signature the log stream the file was last attached to
 *   40   u64 lsn_consistent position at which it was made consistent (0 dirty)
 *   48   u64 lsn_attach    position of the current attachment
 *   56   u64 create_us
 *   64   u64 update_seq    incremented by every header write
 *   72   u64 consistent_us time it was last made consistent
 *   80   4 x backup record (full, incremental, differential, copy), 40 bytes:
 *          u32 gen_low, u32 gen_high, u64 time_us, u64 backup_id,
 *          u64 lsn_mark, u64 predecessor_id
 *   240  backup copy marker (zero in a live file; set only in the header
 *        images a full backup serves, so a restored file says how to
 *        bring it forward): u64 backup_id, u64 lsn_start (replay from),
 *        u32 gen_low, u32 gen_high, u32 dbidx, u32 reserved
 *   272  u64 consistent_us: the time of the roll that closed gen_high; a
 *        point-in-time restore of the copy cannot stop before it (0 in
 *        copies made before it existed)
 *   280  the last discard after damage (jetutil recover --discard-after-damage)
 *        this file went through, 0s if none: u64 time_us, u64 cut (where the
 *        log was made to end), u64 commits (dropped after the cut)
 *   304  u16 length, then that many bytes: the canonical path the file was
 *        last attached at (0: not recorded -- too long, or a file from
 *        before the field): what a restore without a destination or a
 *        manifest puts it back at, as ESE's restore map does from its log
 *   1024 end
 *
 * Data pages start at pgno 2: pgno 2 is the meta page (next free pgno,
 * free-list head, catalog root), logged like every data page.
 */
#ifndef JET_DBFILE_H
#define JET_DBFILE_H

#include <stdint.h>

#include "jet.h"

#define DB_MAGIC 0x4454454Au /* "JETD" */
#define DB_VERSION 2u   /* 2: page stamps are log positions of deltas (logrec.h) */
#define DB_HEADER_BYTES 1024u
#define DB_ATTACH_PATH_OFF 304u
#define DB_ATTACH_PATH_MAX (DB_HEADER_BYTES - DB_ATTACH_PATH_OFF - 2u)
#define DB_STATE_JUST_CREATED 1
#define DB_STATE_DIRTY 2
#define DB_STATE_CLEAN 3

#define DB_PGNO_META 2u
#define DB_FIRST_DATA_PGNO 3u

enum db_backup_kind { DB_BK_FULL = 0, DB_BK_INCREMENTAL = 1, DB_BK_DIFFERENTIAL = 2, DB_BK_COPY = 3, DB_BK_COUNT = 4 };

struct db_backup_info {
    uint32_t gen_low;
    uint32_t gen_high;
    uint64_t time_us;
    uint64_t backup_id;
    uint64_t lsn_mark;
    uint64_t predecessor_id;
};

struct db_header {
    uint32_t page_size;
    uint32_t state;
    uint64_t db_signature;
    uint64_t log_signature;
    uint64_t lsn_consistent;
    uint64_t lsn_attach;
    uint64_t create_us;
    uint64_t update_seq;
    uint64_t consistent_us;
    struct db_backup_info backup[DB_BK_COUNT];
    struct {
        uint64_t backup_id;    /* 0: not a backup copy */
        uint64_t lsn_start;
        uint32_t gen_low, gen_high;
        uint32_t dbidx;
        uint64_t consistent_us;
    } copy;
    struct {
        uint64_t time_us, cut, commits;
    } discard;
    char attach_path[DB_ATTACH_PATH_MAX + 1]; /* "" when not recorded */
};

/* Meta page body (offsets from the start of the page). */
#define META_OFF_NPAGES 32      /* u32: pages in use, i.e. next new pgno */
#define META_OFF_FREE_HEAD 36   /* u32: first free page, 0 if none */
#define META_OFF_FREE_COUNT 40  /* u32 */
#define META_OFF_CATALOG 44     /* u32: root of the catalog B+tree */

void db_header_encode(const struct db_header *h, uint8_t *buf /* DB_HEADER_BYTES */);
/* JET_errDatabaseCorrupted (with detail) if the copy is not valid. */
JET_ERR db_header_decode(const uint8_t *buf, struct db_header *h, const char *path, int copy);
/* Reads both copies, returns the newest valid one. */
JET_ERR db_header_read(int fd, const char *path, struct db_header *h);
/* Bumps update_seq and writes copy 0, fsync, copy 1, fsync. */
JET_ERR db_header_write(int fd, struct db_header *h);

const char *db_state_name(uint32_t state);
const char *db_backup_kind_name(enum db_backup_kind k);

#endif /* JET_DBFILE_H */
