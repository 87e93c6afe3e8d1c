/*
 * log.h -- the write-ahead log: generations, records, group commit, reading.
 *
 * The log is a sequence of generations, each one file of exactly file_size
 * bytes named <dir>/<base><generation as 8 uppercase hex digits>.log
 * (edb00000001.log, ...).  A log position (lsn_t) is
 * (generation << 32) | byte offset within that generation's file.
 *
 * Generation file layout:
 *   [0, 4096)        header (struct log_header, encoded little-endian):
 *      0  u64 checksum      XXH3_64bits of bytes [8, 4096)
 *      8  u32 magic         LOG_MAGIC
 *      12 u32 version       LOG_VERSION
 *      16 u32 generation
 *      20 u32 file_size
 *      24 u64 signature     the instance's random log signature
 *      32 u64 create_us     creation time, microseconds since the epoch
 *      40 u64 prev_create_us  create_us of generation-1 (0 for the first)
 *      48 u64 prev_hash     XXH3_64bits of generation-1's whole file (0 first)
 *      56 u32 page_size     database page size of the instance
 *      60 char base[4]      base name, NUL-terminated
 *   [4096, file_size) records, 8-byte aligned, then zeroes:
 *      0  u32 len           payload length
 *      4  u8  type          record type (owned by the caller)
 *      5  u24 durable       the offset durable in this generation when the
 *                           record was appended, / LOG_DURABLE_UNIT (0 in
 *                           older files): proves a bad record below it is
 *                           damage, not a torn tail (log.c)
 *      8  u64 lsn           the record's own position (rejects stale bytes)
 *      16 u64 checksum      XXH3_64bits_withSeed(header[0,16) || payload, signature)
 *      24 payload, zero-padded to a multiple of 8
 * A record never spans two generations: one that does not fit in the rest
 * of the current file rolls the log first.
 *
 * Invariants:
 *  1. Generation files are created whole (header written to a temporary
 *     name, fsynced, renamed, directory fsynced): a generation file that
 *     exists has a valid header.
 *  2. durable_lsn only grows; every record below it is on disk (fdatasync).
 *  3. A generation is closed (fsynced, hashed) before the next one is
 *     created, so prev_hash always covers final contents.
 *  4. After any write or fsync failure the log is dead: every later call
 *     returns JET_errLogWriteFail and nothing is retried (the kernel may have
 *     dropped the dirty pages).
 *
 * Locking: one mutex protects the append buffer and positions; the fsync
 * runs outside it so appenders are not blocked by a flush in progress.
 * Concurrent log_flush() callers share one fsync (group commit).
 */
#ifndef JET_LOG_H
#define JET_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "jet.h"

typedef uint64_t lsn_t;
#define LSN_MAKE(gen, off) (((uint64_t)(gen) << 32) | (uint32_t)(off))
#define LSN_GEN(lsn) ((uint32_t)((lsn) >> 32))
#define LSN_OFF(lsn) ((uint32_t)(lsn))

#define LOG_MAGIC 0x474F4C4Au   /* "JLOG" */
#define LOG_VERSION 2u   /* 2: page deltas (logrec.h); 1: page images */
#define LOG_VERSION_NAME "page deltas"
#define LOG_HEADER_SIZE 4096u
#define LOG_REC_HDR_SIZE 24u
/* The unit of a record's durable field (header bytes [5, 8), log.c). */
#define LOG_DURABLE_UNIT 64u
#define LOG_FILE_SIZE_MIN (64u * 1024u)
#define LOG_FILE_SIZE_MAX (1024u * 1024u * 1024u)

struct log_header {
    uint32_t generation;
    uint32_t file_size;
    uint64_t signature;
    uint64_t create_us;
    uint64_t prev_create_us;
    uint64_t prev_hash;
    uint32_t page_size;
    char base[4];
};

struct log_config {
    const char *dir;        /* directory of the generation files */
    const char *base;       /* exactly 3 characters */
    uint32_t file_size;     /* bytes, multiple of 4096, LOG_FILE_SIZE_MIN.. */
    uint32_t page_size;     /* recorded in headers */
    uint64_t signature;     /* the instance's log signature (non-zero) */
    /* Called (without the log's lock held) each time a generation is
     * closed, with its final hash and close time.  May be NULL.  It may run
     * inside log_append, so it must not call log_append or log_roll. */
    void (*on_close)(void *arg, uint32_t generation, uint64_t hash, uint64_t close_us);
    void *on_close_arg;
    /* Build each next generation's zero-filled body in a background thread
     * (as ESE prepares edbtmp.log), so a roll only writes a header. */
    bool prepare_ahead;
};

struct jet_log;

/* "<dir>/<base><gen %08X>.log" into buf. */
JET_ERR log_file_name(char *buf, size_t cb, const char *dir, const char *base, uint32_t gen);

/*
 * Starts writing at a new generation first_gen (its file must not exist:
 * JET_errFileAccessDenied otherwise, never overwrite).  If first_gen > 1 and
 * generation first_gen-1 exists, the new header chains to it (its create
 * time and whole-file hash); if it does not exist the chain starts afresh
 * (prev fields 0).  Nothing is appended yet; the first record goes to
 * LSN_MAKE(first_gen, LOG_HEADER_SIZE).
 */
JET_ERR log_open(const struct log_config *cfg, uint32_t first_gen, struct jet_log **plog);
/* Flushes and fsyncs what was appended, closes the files.  Does not roll. */
JET_ERR log_close(struct jet_log *log);

/* The largest payload one record may carry with this file size. */
size_t log_max_payload(uint32_t file_size);

/*
 * Appends records atomically with respect to other appenders (they are
 * contiguous in the log, in array order).  *pfirst (may be NULL) gets the
 * first record's lsn, *pend the lsn just past the last record: pass it to
 * log_flush to make them durable.  JET_errInvalidParameter for a payload
 * over log_max_payload().  Does not wait for disk.
 */
struct log_rec {
    uint8_t type;
    const struct iovec *iov;  /* payload pieces, concatenated */
    int iovcnt;
    lsn_t *at;                /* if not NULL, gets the record's own lsn */
};
JET_ERR log_append(struct jet_log *log, const struct log_rec *recs, int nrecs,
                   lsn_t *pfirst, lsn_t *pend);
/* Waits until every record below lsn is durable (group commit). */
JET_ERR log_flush(struct jet_log *log, lsn_t lsn);
/* Flushes everything appended so far. */
JET_ERR log_flush_all(struct jet_log *log);
/*
 * Closes the current generation (flushed, fsynced, hashed, on_close called)
 * and creates the next one.  *pclosed gets the closed generation.  A roll of
 * a generation holding no record still closes it.
 */
JET_ERR log_roll(struct jet_log *log, uint32_t *pclosed);
lsn_t log_durable_lsn(struct jet_log *log);
lsn_t log_end_lsn(struct jet_log *log);         /* next append position */
uint32_t log_current_generation(struct jet_log *log);
uint64_t log_signature(struct jet_log *log);

/* ---- reading (recovery, restore, jetutil logs) ---- */

JET_ERR log_read_header(const char *path, struct log_header *hdr);
/* XXH3_64bits of the whole file. */
JET_ERR log_hash_file(const char *path, uint64_t *phash);
/*
 * The generations present in dir for base, sorted ascending (*pgens
 * malloc'ed, caller frees; *pn may be 0).  Gaps are not errors here.
 */
JET_ERR log_list(const char *dir, const char *base, uint32_t **pgens, size_t *pn);
JET_ERR log_delete_generation(const char *dir, const char *base, uint32_t gen);

struct log_record {
    lsn_t lsn;           /* position of the record */
    lsn_t end;           /* position just past it */
    uint8_t type;
    const uint8_t *payload;  /* valid until the next log_reader_next */
    uint32_t len;
};

struct log_reader;
/*
 * Reads forward from start (a record position, or LSN_MAKE(gen,
 * LOG_HEADER_SIZE)).  Generation LSN_GEN(start) must exist
 * (JET_errMissingLogFile).  If signature is non-zero every header must carry
 * it (JET_errBadLogSignature).  last_gen bounds the read (0 = up to the last
 * generation present).
 */
JET_ERR log_reader_open(const char *dir, const char *base, lsn_t start, uint64_t signature,
                        uint32_t last_gen, struct log_reader **prd);
/*
 * Next record: JET_errSuccess with *rec filled, or 1 at the end of the log.
 * Moving to the next generation checks its header: same signature
 * (JET_errBadLogSignature), generation+1, prev_create_us and prev_hash equal
 * to the previous file's (JET_errInvalidLogSequence).  A record that fails
 * its checksum or lsn:
 *   - in the last generation present (or last_gen): the torn tail of a
 *     crash; the read ends (return 1) and log_reader_tail_torn() says so --
 *     unless a valid record later in the file says the position was
 *     durable when it was written: then it is damage, JET_errLogFileCorrupt;
 *   - in an earlier generation: JET_errLogFileCorrupt naming the file and
 *     offset (recovery must stop; nothing may be deleted) -- unless the next
 *     generation's header chains to this file exactly as it is (prev_hash
 *     equals its whole-file hash): then it is the torn tail of an earlier
 *     crash that recovery ended the log at, and the read moves on.
 * Errors are reported through jet_report with file, generation, offset.
 */
JET_ERR log_reader_next(struct log_reader *rd, struct log_record *rec);
int log_reader_tail_torn(const struct log_reader *rd);
/* Position just past the last good record read (where a writer would go). */
lsn_t log_reader_end(const struct log_reader *rd);
/* Header of the generation the reader is in. */
const struct log_header *log_reader_header(const struct log_reader *rd);
void log_reader_close(struct log_reader *rd);

#endif /* JET_LOG_H */
