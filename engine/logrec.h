/*
 * logrec.h -- the record types the engine writes into the log (log.c only
 * frames them) and their payloads, little-endian.
 *
 *   LR_DELTA   u32 dbidx, u32 pgno, u64 before, then a page delta
 *              (delta.h: u16 nranges, u16 0, ranges of u16 off, u16 len,
 *              bytes).  One page changed by the transaction that the next
 *              LR_COMMIT closes.  before is the page's stamp (page header
 *              bytes [16, 24)) the delta was computed against; the stamp
 *              after is the record's own position (its lsn), which redo
 *              writes into the page.  before == 0 marks a page that starts
 *              over from zeroes (newly allocated or freed): its delta is
 *              against a page of zeroes and needs no earlier version.
 *   LR_COMMIT  u64 commit time (us since the epoch), u64 transaction id
 *   LR_ATTACH  u32 dbidx, u32 page_size, u64 db_signature, path bytes
 *   LR_DETACH  u32 dbidx
 *   LR_CREATE  u32 dbidx, u32 page_size, u64 db_signature, u64 create_us,
 *              path bytes: JetCreateDatabase made this file (logged just
 *              before its LR_ATTACH).  The file's first pages are written
 *              directly, not logged; this record lets recovery rebuild
 *              them when JetInit3's restore map asks for the database at
 *              a new path where no file is (ESE replays its createdb
 *              record the same way).  Readers that predate it skip it.
 *   LR_DISCARD struct discard_note (discard.h): the log was cut short after
 *              damage, on request; recovery and restore say so, nothing
 *              is redone
 *   LR_BACKUP  u64 backup_id: the first JetGetLogInfo (or
 *              JetGetTruncateLogInfo) of that backup fixed its log range
 *              here; the roll that follows closes this generation, the
 *              set's last (ESE's "prepare logs" backup record).  Restore
 *              requires a range given for a copy of that backup to reach
 *              it (JET_errEndingRestoreLogTooLow), as ESE's does the
 *              trailer's genHigh.  Nothing is redone; readers that predate
 *              it skip it.
 *   (type 1, LR_PAGE, a whole page image, was format version 1's; a log
 *   of version 1 is refused by its header before any record is read.)
 *
 * Write-ahead protocol (no-steal, no-force): a transaction's changed pages
 * stay private to it until commit.  Commit appends one LR_DELTA per changed
 * page followed by LR_COMMIT, contiguously (one log_append call), stamps
 * each page with its record's position, installs the pages in the cache as
 * dirty, and then waits for the flush.  A dirty page is written to the
 * database file only once the log is durable past its commit, and only
 * through the double-write file (dwb.c), so a page torn by a crash in the
 * middle of a write is put back whole before redo.
 *
 * Guarded redo (recovery.c): a committed transaction's deltas are applied
 * in log order, each only when the page needs it:
 *   page stamp >= record lsn            already applied: skipped
 *   page stamp == before                applied; stamp := record lsn
 *   page stamp < before                 JET_errDbTimeTooOld (the page is
 *                                       older than the change expects)
 *   before < page stamp < record lsn,   JET_errDbTimeTooNew (a version this
 *   or page stamp past the log's end    log never wrote)
 * Replay is therefore idempotent: replaying the same generations twice, or
 * after a checkpoint that wrote some of the pages, gives the same bytes.
 */
#ifndef JET_LOGREC_H
#define JET_LOGREC_H

enum log_rec_type {
    LR_COMMIT = 2,
    LR_ATTACH = 3,
    LR_DETACH = 4,
    LR_DELTA = 5,
    LR_DISCARD = 6,
    LR_CREATE = 7,
    LR_BACKUP = 8,
};

#define LR_DELTA_HDR 16u
#define LR_COMMIT_SIZE 16u
#define LR_ATTACH_HDR 16u
#define LR_CREATE_HDR 24u
#define LR_BACKUP_SIZE 8u

#endif
