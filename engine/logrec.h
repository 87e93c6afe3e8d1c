/*
 * logrec.h -- the record types the engine writes into the log (log.c only
 * frames them) and their payloads, little-endian.
 *
 *   LR_PAGE    u32 dbidx, u32 pgno, page image (page_size bytes)
 *              after-image of a page changed by the transaction that the
 *              next LR_COMMIT closes; redo writes it over the page
 *   LR_COMMIT  u64 commit time (us since the epoch), u64 transaction id
 *   LR_ATTACH  u32 dbidx, u32 page_size, u64 db_signature, path bytes
 *   LR_DETACH  u32 dbidx
 *
 * Write-ahead protocol (no-steal, no-force): a transaction's changed pages
 * stay private to it until commit.  Commit appends one LR_PAGE per changed
 * page followed by LR_COMMIT, contiguously (one log_append call), installs
 * the pages in the cache as dirty, and then waits for the flush.  A dirty
 * page is written to the database file only once the log is durable past
 * its lsn.  Redo therefore replays whole committed transactions only, by
 * blind overwrite in log order: the last image wins, which also repairs a
 * page torn by a crash during a checkpoint write.
 */
#ifndef JET_LOGREC_H
#define JET_LOGREC_H

enum log_rec_type {
    LR_PAGE = 1,
    LR_COMMIT = 2,
    LR_ATTACH = 3,
    LR_DETACH = 4,
};

#define LR_PAGE_HDR 8u
#define LR_COMMIT_SIZE 16u
#define LR_ATTACH_HDR 16u

#endif
