/*
 * snapshot.c -- the copy-on-write snapshot a backup reads a database
 * through: the file as it stood at the backup's begin.
 *
 * Owns: each database's snapshot (db->snap), under the database's snap_lock
 * (LK_SNAP): a backup's readers take it shared, every page write exclusive
 * (db_write_page), so a reader never sees a page between its preservation
 * and its overwrite.  Invariant: a page below the snapshot's size is
 * preserved (in memory, or spilled to the snapshot's file past mem_max)
 * before the engine first overwrites it; a snapshot that could not
 * preserve one is marked failed, and the backup reading it refuses every
 * later read instead of passing on a changed page.  backup.c creates and
 * frees snapshots at begin and end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "database.h"
#include "diag.h"
#include "instance.h"
#include "lockrank.h"
#include "os.h"
#include "snapshot.h"

static size_t snap_slot(const struct snapshot *s, uint32_t pgno)
{
    return (size_t)(((uint64_t)pgno * 0x9E3779B97F4A7C15ull) >> 20) & (s->cap - 1);
}

/* Slot of pgno in the snapshot map, or -1. */
static long snap_slot_of(const struct snapshot *s, uint32_t pgno)
{
    if (!s->cap) return -1;
    for (size_t i = snap_slot(s, pgno);; i = (i + 1) & (s->cap - 1)) {
        if (!s->keys[i]) return -1;
        if (s->keys[i] == pgno + 1) return (long)i;
    }
}

/* The preserved in-memory image of pgno (NULL if none or spilled). */
uint8_t *snap_find(const struct snapshot *s, uint32_t pgno)
{
    long i = snap_slot_of(s, pgno);
    return i < 0 ? NULL : s->pages[i];
}

/* Copies the preserved image of pgno into out: 1 if there is one. */
JET_ERR snap_read(const struct snapshot *s, uint32_t pgno, uint8_t *out, uint32_t ps)
{
    long i = snap_slot_of(s, pgno);
    if (i < 0) return 0;
    if (s->pages[i]) {
        memcpy(out, s->pages[i], ps);
        return 1;
    }
    JET_ERR err = os_pread_full(s->spill_fd, out, ps, s->spill_off[i]);
    return err < 0 ? err : 1;
}

static JET_ERR snap_insert(struct snapshot *s, uint32_t pgno, uint8_t *page, uint32_t ps)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        uint32_t *nk = calloc(ncap, sizeof *nk);
        uint8_t **np = calloc(ncap, sizeof *np);
        uint64_t *no = calloc(ncap, sizeof *no);
        if (!nk || !np || !no) {
            free(nk);
            free(np);
            free(no);
            return JET_errOutOfMemory;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->keys[i]) continue;
            size_t j = (size_t)(((uint64_t)(s->keys[i] - 1) * 0x9E3779B97F4A7C15ull) >> 20) & (ncap - 1);
            while (nk[j]) j = (j + 1) & (ncap - 1);
            nk[j] = s->keys[i];
            np[j] = s->pages[i];
            no[j] = s->spill_off[i];
        }
        free(s->keys);
        free(s->pages);
        free(s->spill_off);
        s->keys = nk;
        s->pages = np;
        s->spill_off = no;
        s->cap = ncap;
    }
    size_t i = snap_slot(s, pgno);
    while (s->keys[i]) i = (i + 1) & (s->cap - 1);
    if (s->bytes + ps > s->mem_max && pgno >= 2) {
        /* Past the memory bound: the page goes to the spill file, so a
         * backup left open costs disk (reported), not the engine's RAM. */
        JET_ERR err = JET_errSuccess;
        if (s->spill_fd < 0)
            err = os_open(s->spill_path, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &s->spill_fd);
        if (err >= 0) err = os_pwrite(s->spill_fd, page, ps, s->spill_bytes);
        if (err < 0) return jet_report(err, "%s: spilling a preserved page failed: %s", s->spill_path, JetErrorString(err));
        s->spill_off[i] = s->spill_bytes;
        s->spill_bytes += ps;
        free(page);
        page = NULL;
    } else {
        s->bytes += ps;
    }
    s->keys[i] = pgno + 1;
    s->pages[i] = page;
    s->n++;
    return JET_errSuccess;
}

/* Drops every preserved page (memory and spill file), keeping the map
 * empty: what snap_free does, short of freeing s. */
static void snap_clear(struct snapshot *s)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->keys[i]) free(s->pages[i]);
    free(s->keys);
    free(s->pages);
    free(s->spill_off);
    s->keys = NULL;
    s->pages = NULL;
    s->spill_off = NULL;
    s->cap = s->n = 0;
    s->bytes = 0;
    if (s->spill_fd >= 0) {
        os_close(s->spill_fd);
        (void)os_unlink(s->spill_path); /* temporary: nothing else refers to it */
        s->spill_fd = -1;
    }
    s->spill_bytes = 0;
}

void snap_free(struct snapshot *s)
{
    if (!s) return;
    snap_clear(s);
    free(s);
}

/* Preserves page pgno as it is on disk.  Context: snap_lock exclusive. */
JET_ERR snap_preserve_locked(struct db *db, uint32_t pgno, uint32_t ps)
{
    struct snapshot *s = db->snap;
    if (!s || s->failed || pgno >= s->npages || snap_slot_of(s, pgno) >= 0) return JET_errSuccess;
    uint8_t *old = malloc(ps);
    if (!old) return JET_errOutOfMemory;
    JET_ERR err = os_pread_full(db->fd, old, ps, (uint64_t)pgno * ps);
    if (err >= 0) err = snap_insert(s, pgno, old, ps);
    if (err < 0) free(old);
    return err;
}

JET_ERR db_write_page(struct db *db, uint32_t pgno, const uint8_t *page, uint32_t ps)
{
    lk_wrlock(&db->snap_lock, LK_SNAP);
    JET_ERR err = snap_preserve_locked(db, pgno, ps);
    if (err < 0) {
        /* The instance comes first: the backup fails (its reads refuse
         * from now on, under this lock, so none can pass on the page
         * written next), and the write goes on. */
        struct snapshot *s = db->snap;
        snprintf(s->failure, sizeof s->failure, "%.200s: preserving page %u for the backup failed (%.180s), so the "
                                                "backup was aborted; the instance goes on",
                 db->path, pgno, JetGetLastErrorDetail());
        s->failed = true;
        snap_clear(s);
        fprintf(stderr, "jet: %s\n", s->failure);
    }
    err = os_pwrite(db->fd, page, ps, (uint64_t)pgno * ps);
    lk_rwunlock(&db->snap_lock, LK_SNAP);
    return err;
}
