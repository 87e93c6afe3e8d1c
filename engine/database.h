/*
 * database.h -- an attached database file and its backup snapshot.
 *
 * database.c creates, attaches, detaches, opens and closes database files
 * (the instance's dbs[], under instance.mu).  A database's snap_lock
 * (LK_SNAP) guards its backup snapshot: readers of the snapshot take it
 * shared, every page write exclusive.  db_write_page, db_alloc and
 * db_release are defined in backup.c, which owns the snapshots.
 */
#ifndef JET_DATABASE_H
#define JET_DATABASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbfile.h"
#include "instance.h"

/*
 * A copy-on-write snapshot of a database file, for a backup: the file as it
 * stood at begin.  Before the engine overwrites a page below npages, the
 * old contents are preserved here (snap_preserve_locked); readers take the
 * preserved copy if there is one, else the file.  Protected by the
 * database's snap_lock (readers shared, page writers exclusive).
 */
struct snapshot {
    uint64_t size;            /* file size at begin */
    uint32_t npages;
    uint32_t *keys;           /* open addressing: pgno + 1, 0 = empty */
    uint8_t **pages;          /* in memory, or NULL when spilled */
    uint64_t *spill_off;      /* where a spilled page lives in the spill file */
    size_t cap, n;
    uint64_t bytes;           /* memory held by preserved pages */
    uint64_t mem_max;         /* past this, pages spill to the file */
    int spill_fd;             /* -1 until the first spill */
    char spill_path[JET_PATH_MAX];
    uint64_t spill_bytes;
    /* Preserving a page failed (the spill file's disk is full, say): the
     * engine's writes go on unpreserved, the backup can no longer be
     * served and fails with this reason. */
    bool failed;
    char failure[512];
};

struct db {
    uint32_t dbidx;
    pthread_rwlock_t snap_lock;
    struct snapshot *snap;
    char path[JET_PATH_MAX];
    int fd;
    struct db_header hdr;
    int opens;               /* JetOpenDatabase count over all sessions */
    int table_cursors;       /* open cursors, for JetDetach / TableInUse */
    bool attached;
};

/* Writes one page of a database file, preserving it first for a backup's
 * snapshot.  Every engine write of a data page goes through here; the header
 * pages (dbfile.c, not part of the snapshot's page copies) and the pages a
 * new file is created with (database.c, before any backup can see it) are
 * written directly. */
JET_ERR db_write_page(struct db *db, uint32_t pgno, const uint8_t *page, uint32_t page_size);

struct db *db_alloc(void);
void db_release(struct db *db);
JET_ERR db_open_file(struct jet_instance *inst, const char *path, uint32_t dbidx, struct db **pdb);
JET_ERR db_close_file(struct jet_instance *inst, struct db *db, bool clean);
JET_ERR db_detach_all(struct jet_instance *inst, bool clean);
void db_close_session(struct session *s);

#endif /* JET_DATABASE_H */
