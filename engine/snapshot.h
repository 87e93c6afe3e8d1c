/*
 * snapshot.h -- a database's copy-on-write snapshot for a backup, and the
 * one write path of data pages that keeps it true (snapshot.c).
 */
#ifndef JET_SNAPSHOT_H
#define JET_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "database.h"
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

/* Writes one page of a database file, preserving it first for a backup's
 * snapshot.  Every engine write of a data page goes through here; the header
 * pages (dbfile.c, not part of the snapshot's page copies) and the pages a
 * new file is created with (database.c, before any backup can see it) are
 * written directly. */
JET_ERR db_write_page(struct db *db, uint32_t pgno, const uint8_t *page, uint32_t page_size);

/* The preserved in-memory image of pgno (NULL if none, or spilled).
 * Context: snap_lock held. */
uint8_t *snap_find(const struct snapshot *s, uint32_t pgno);
/* Copies the preserved image of pgno into out: 1 if there is one, 0 if
 * none (the file's page is the snapshot's), or an error reading the spill
 * file.  Context: snap_lock held. */
JET_ERR snap_read(const struct snapshot *s, uint32_t pgno, uint8_t *out, uint32_t ps);
/* Preserves page pgno as it is on disk.  Context: snap_lock exclusive. */
JET_ERR snap_preserve_locked(struct db *db, uint32_t pgno, uint32_t ps);
/* Frees a snapshot, its preserved pages and its spill file. */
void snap_free(struct snapshot *s);

#endif /* JET_SNAPSHOT_H */
