/*
 * jet_inspect.h -- offline inspection of jetfs files, for tools (jetutil).
 *
 * These calls read files directly, without an instance: database headers,
 * log generation headers and records, the checkpoint file, and a full
 * offline check of a database file.  They never write.  Errors carry
 * details through JetGetLastErrorDetail().
 */
#ifndef JET_INSPECT_H
#define JET_INSPECT_H

#include <stdint.h>

#include "jet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t gen_low, gen_high;
    uint64_t time_us, backup_id, predecessor_id;
    uint64_t lsn_mark;
} JET_INSPECT_BACKUP;

typedef struct {
    int copy_valid[2];        /* which of the two header copies verified */
    uint32_t page_size;
    uint32_t state;           /* 1 just created, 2 dirty, 3 clean */
    const char *state_name;
    uint64_t db_signature, log_signature;
    uint64_t lsn_consistent, lsn_attach;  /* generation << 32 | offset */
    uint64_t create_us, consistent_us, update_seq;
    uint64_t file_size;
    uint32_t npages;          /* from the meta page, 0 if unreadable */
    JET_INSPECT_BACKUP backup[4];  /* full, incremental, differential, copy */
    uint32_t format_version;  /* the database format (a file of another version is refused) */
    uint64_t discard_us, discard_cut, discard_commits;  /* the last discard after damage (0: none) */
} JET_INSPECT_DBHEADER;

typedef struct {
    uint32_t generation, file_size, page_size;
    uint64_t signature, create_us, prev_create_us, prev_hash;
    char base[4];
    uint32_t format_version;  /* the log format (a file of another version is refused) */
} JET_INSPECT_LOGHEADER;

typedef struct {
    uint64_t log_signature;
    uint64_t lsn;
    uint32_t ndbs;
    char db_paths[8][1024];
} JET_INSPECT_CHECKPOINT;

typedef struct {
    uint64_t lsn;
    uint32_t length;
    uint8_t type;
    const char *type_name;    /* "delta", "commit", "create", "attach", "detach", "discard", "backup", "?" */
    uint32_t dbidx, pgno;     /* delta, attach, detach */
    uint64_t before;          /* delta: the page stamp it applies to (0: starts from zeroes);
                                 discard: where the log was cut (commit_us: when; txn_id: commits lost) */
    uint32_t nranges;         /* delta: byte ranges */
    uint32_t delta_bytes;     /* delta: page bytes they carry */
    int malformed;            /* delta: the ranges do not decode */
    uint64_t commit_us, txn_id;  /* commit; backup: txn_id is the backup's id (where its set ends) */
    char path[1024];          /* attach */
} JET_INSPECT_LOGRECORD;

typedef struct {
    uint32_t pages, free_pages, tables;
    uint64_t entries, leaf_pages, branch_pages, overflow_pages;
    uint32_t problems;
} JET_INSPECT_CHECK;

/* What kind of file: 1 database, 2 log, 3 checkpoint, 0 unknown. */
int JetInspectFileKind(const char *path);
JET_ERR JetInspectDatabaseHeader(const char *path, JET_INSPECT_DBHEADER *info);
JET_ERR JetInspectLogHeader(const char *path, JET_INSPECT_LOGHEADER *info);
JET_ERR JetInspectCheckpoint(const char *path, JET_INSPECT_CHECKPOINT *info);
/*
 * Calls fn for every record from generation gen_first (0 = the oldest
 * present) to the end of the log in dir.  *ptorn (may be NULL) tells
 * whether the log ends in a torn write.  fn returning non-zero stops.
 */
JET_ERR JetInspectLogRecords(const char *dir, const char *base, uint32_t gen_first, uint32_t gen_last,
                             int (*fn)(void *arg, const JET_INSPECT_LOGRECORD *rec), void *arg, int *ptorn);
/*
 * Checks a database file offline: every page up to the meta page's count
 * is read and verified (checksum, page number), the free list walked, the
 * catalog and every table checked for B+tree invariants.  report is called
 * once per problem found (every one, not only the first) with a one-line
 * message naming the page.  Returns JET_errSuccess when the file is sound,
 * JET_errDatabaseCorrupted when problems were found, or an I/O error.
 */
JET_ERR JetInspectCheckDatabase(const char *path, void (*report)(void *arg, const char *msg), void *arg,
                                JET_INSPECT_CHECK *stats);

/* One table as JetInspectCheckDatabase2 found it. */
typedef struct {
    const char *name;
    uint32_t root, depth;
    uint64_t entries, leaf_pages, branch_pages, overflow_pages;
    /* Percent of the leaf (branch) pages' room that their slots and cells
     * take, rounded down; 100 for a table without such pages. */
    unsigned leaf_fill, branch_fill;
} JET_INSPECT_TABLE;
/*
 * JetInspectCheckDatabase that also calls table(arg, ...) once per table
 * whose B+tree checked sound, in name order (a damaged one goes to report
 * as a problem instead).  table may be NULL.
 */
JET_ERR JetInspectCheckDatabase2(const char *path, void (*report)(void *arg, const char *msg), void *arg,
                                 void (*table)(void *arg, const JET_INSPECT_TABLE *t), JET_INSPECT_CHECK *stats);

/*
 * Reads a cleanly shut-down database file without an instance, writing
 * nothing (read-only media): fn is called once per table with key NULL as
 * the table begins, then once per entry in key order; tables in name
 * order.  fn returning non-zero stops.  JET_errDatabaseDirtyShutdown for a
 * file that needs recovery; every page read is verified.
 */
JET_ERR JetInspectReadDatabase(const char *path,
                               int (*fn)(void *arg, const char *table, const uint8_t *key, size_t klen,
                                         const uint8_t *val, size_t vlen),
                               void *arg);

/*
 * Calls report with the path of every file in backup set directory setdir
 * that its backup.manifest does not list.  Restore and verify ignore such
 * files (an older generation left by rsync into the same destination
 * without --delete, say): they are never copied or replayed; tools warn
 * with their names.  A set without a manifest has none.  The manifest is
 * checked first (its checksum, every listed file): its error if it fails.
 */
/*
 * Ends a damaged log at the last commit before the damage, for an operator
 * who accepts losing what follows (jetutil recover --discard-after-damage;
 * discard.c).  Nothing is deleted: the damaged generation is copied to
 * <file>.discarded and every later one renamed so; the next recovery
 * records the discard in the log.  Refused, changing nothing, when a
 * database page already holds a change the cut would drop
 * (JET_errDbTimeTooNew).  found = 0: the log has no damage.
 */
typedef struct {
    int found;
    uint32_t generation, damage_offset;  /* where the damage starts */
    uint64_t cut;                        /* the log now ends here (gen << 32 | offset) */
    uint32_t first_moved, last_moved;    /* generations moved aside (0: none) */
    uint64_t commits_discarded;          /* commit records readable after the cut */
    char saved[1200];                    /* the cut generation's original bytes */
    char reason[600];                    /* recovery's refusal */
} JET_INSPECT_DISCARD;
JET_ERR JetInspectDiscardAfterDamage(const char *system_path, const char *log_path, const char *base,
                                     JET_INSPECT_DISCARD *out);

JET_ERR JetInspectSetUnlisted(const char *setdir, void (*report)(void *arg, const char *path), void *arg);

/*
 * The files of the sets sets[0, nsets) that a restore of them does not use,
 * each with why (report): a file no manifest of the chain lists, the
 * manifest of a backup off the chain (an aborted session).  The sets are
 * read as restore reads them (chain.c), sizes checked but not hashes: a
 * refusal is the restore's to give, with its reason; this returns it too.
 */
JET_ERR JetInspectSetsUnused(const char *const *sets, int nsets,
                             void (*report)(void *arg, const char *path, const char *why), void *arg);

#ifdef __cplusplus
}
#endif
#endif
