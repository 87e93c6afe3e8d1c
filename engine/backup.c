/*
 * backup.c -- ESE's streaming backup family over a point-in-time snapshot.
 *
 * Owns: the instance's backup in progress (inst->backup, under
 * inst->backup_mu) and the copy-on-write snapshots of its database files
 * (db->snap, under db->snap_lock).
 *
 * States of a backup (one per instance):
 *
 *   none --Begin--> DATABASES --GetLogInfo--> LOGS --End(normal|abort)--> none
 *                     |  StopBackup sets "stopped": every call but
 *                     |  Close/End then fails with BackupAbortByServer;
 *                     |  the errors ESE ends a backup with end it at once
 *                     |  (bk_end_now): later calls are NoBackup
 *
 * Begin fixes the database image: each attached database of a full
 * backup as it stands on disk (its size, and from then on every page the
 * engine overwrites is preserved first: db_write_page).  The first
 * GetLogInfo fixes the log range, as ESE's ErrBKIPrepareLogFiles: from the
 * checkpoint's generation at begin (full) or the oldest present
 * (incremental) up to the generation it closes by rolling the log.
 * Replaying those generations over the begin-time image gives the
 * databases exactly as committed at that roll.  Begin neither flushes nor
 * copies: its cost does not depend on the database size.
 *
 * Coverage: each file of the set keeps a bitmap of 4 KiB chunks that reads
 * covered; JetTruncateLog needs every log chunk read, and the history of a
 * full backup is only recorded for a database read whole.  A closed
 * generation never changes, so one read whole by an earlier backup (of any
 * kind, ended either way) counts as copied too: backup software that skips
 * files it already holds still ends normally.  The record of those lives
 * with the instance (delivered.c); it is read when the log phase begins and
 * rewritten at every End.
 *
 * Verification: a database page is verified (checksum, page number) before
 * any byte of it is returned; a log generation is verified whole when
 * opened, against the hash its successor's header carries.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "backup.h"
#include "checkpoint.h"
#include "database.h"
#include "delivered.h"
#include "diag.h"
#include "instance.h"
#include "lockrank.h"
#include "logrec.h"
#include "manifest.h"
#include "os.h"
#include "page.h"
#include "path.h"
#include "snapshot.h"

#define CHUNK 4096u
#define MAX_HANDLES 256

struct bk_file {
    bool is_db;
    uint32_t dbidx;            /* is_db */
    uint32_t gen;              /* log */
    char path[JET_PATH_MAX];   /* as handed out: canonical directory, own file name */
    char canon[JET_PATH_MAX];  /* path_canonical(path): what JetOpenFile's name must resolve to */
    uint64_t size;
    uint8_t *covered;          /* one byte per CHUNK */
    uint64_t nchunks, ncovered;
    bool verified;             /* log: hash checked */
    uint64_t hash;
    bool delivered;            /* log: read whole by an earlier session (delivered.c) */
    int direct_fd;             /* database: its own descriptor opened OS_OPEN_DIRECT, or -1 */
};

struct bk_handle {
    bool used;
    uint32_t file;
    uint64_t pos;
};

struct backup {
    bool incremental;
    bool stopped;
    bool log_phase;
    bool truncate;            /* JetTruncateLog accepted: End(normal) deletes */
    bool truncate_done;       /* End's JET_bitBackupTruncateDone: record as truncating, delete nothing */
    uint64_t begin_us, backup_id, lsn_mark;
    bool any_order;           /* JET_bitBackupAnyOrder: databases may be opened in the log phase */
    uint64_t consistent_us;    /* after the image was fixed: every commit in it is older */
    lsn_t lsn_start;          /* the checkpoint at begin: replay starts here */
    uint32_t gen_low, gen_high; /* gen_high 0 until the log phase fixes it */
    uint32_t gen_need;         /* the generation current at begin: the image needs replay through it */
    struct bk_file *files;
    uint32_t nfiles;
    struct bk_handle handles[MAX_HANDLES];
    uint32_t nopen;
    uint32_t readers;         /* reads in flight outside backup_mu: End waits for 0 */
    bool ending;              /* End (or abort) is waiting for readers: no new calls */
    struct dlv_record dlv;    /* generations delivered before this backup (from the log phase on) */
};

/* ---- helpers ---- */

static JET_ERR backup_instance(JET_INSTANCE h, struct jet_instance **pinst);

/* A name list being built (a multi-string), handed out by list_out. */
struct namelist {
    char *p;
    size_t n, cap;
};

static JET_ERR nl_add(struct namelist *l, const char *name)
{
    size_t len = strlen(name) + 1;
    if (l->n + len + 1 > l->cap) {
        size_t ncap = (l->n + len + 1) * 2;
        char *np = realloc(l->p, ncap);
        if (!np) return JET_errOutOfMemory;
        l->p = np;
        l->cap = ncap;
    }
    memcpy(l->p + l->n, name, len);
    l->n += len;
    return JET_errSuccess;
}

/* Hands the list out as ESE's documentation says of every list
 * (JetGetAttachInfo, JetGetLogInfo: "does not return an error or warning
 * if the output buffer is too small ... use [the actual size] to determine
 * if the list was truncated"): the first cbMax bytes of the whole
 * multi-string (cut anywhere when short), JET_errSuccess, and the whole
 * size in *pcbActual, buffer or not.  ESE's own GetLogInfo reports
 * min(cbMax, size) when given a buffer: jet.h lists the departure. */
static void list_out(struct namelist *l, char *szz, unsigned long cbMax, unsigned long *pcbActual)
{
    unsigned long full = (unsigned long)l->n + 1;
    unsigned long n = cbMax < full ? cbMax : full;
    if (szz && n) {
        if (l->n) memcpy(szz, l->p, n < l->n ? n : l->n);
        if (n == full) szz[l->n] = '\0';
    }
    if (pcbActual) *pcbActual = full;
    free(l->p);
    l->p = NULL;
    l->n = l->cap = 0;
}

/* Locks the backup of an instance for a call; checks the common preconditions. */
static JET_ERR bk_enter(JET_INSTANCE h, struct jet_instance **pinst, struct backup **pbk, bool allow_stopped)
{
    struct jet_instance *inst;
    JET_ERR err = backup_instance(h, &inst);
    if (err < 0) return err;
    lk_mutex_lock(&inst->backup_mu, LK_BACKUP);
    struct backup *bk = inst->backup;
    if (!bk || bk->ending) err = JET_errNoBackup;
    else if (bk->stopped && !allow_stopped) err = JET_errBackupAbortByServer;
    if (err < 0) {
        lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
        return err;
    }
    *pinst = inst;
    *pbk = bk;
    return JET_errSuccess;
}

static void bk_leave(struct jet_instance *inst) { lk_mutex_unlock(&inst->backup_mu, LK_BACKUP); }

static void bk_free(struct jet_instance *inst, struct backup *bk)
{
    /* Drop the snapshots: from now on pages are overwritten in place. */
    for (uint32_t i = 0; i < bk->nfiles; i++) {
        struct bk_file *f = &bk->files[i];
        if (f->is_db && inst->dbs[f->dbidx]) {
            struct db *db = inst->dbs[f->dbidx];
            lk_wrlock(&db->snap_lock, LK_SNAP);
            snap_free(db->snap);
            db->snap = NULL;
            lk_rwunlock(&db->snap_lock, LK_SNAP);
        }
        if (f->direct_fd >= 0) os_close(f->direct_fd);
        free(f->covered);
    }
    dlv_free(&bk->dlv);
    free(bk->files);
    free(bk);
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    inst->backup_pin_gen = 0;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
}

/* Waits until no read uses bk any more, then takes it out of the
 * instance.  Until then it stays installed, so a Begin meanwhile is
 * JET_errBackupInProgress, and it refuses every new call (ending).
 * Context: inst->backup_mu held (released while waiting). */
static void bk_detach(struct jet_instance *inst, struct backup *bk)
{
    bk->ending = true;
    while (bk->readers) pthread_cond_wait(&inst->backup_cv, &inst->backup_mu);
    inst->backup = NULL;
    pthread_cond_broadcast(&inst->backup_cv);
}

static void record_delivered(struct jet_instance *inst, struct backup *bk);

/* Ends the backup at once, as ESE does on the errors that end one (the
 * open of a database in the log phase, a missing log): nothing recorded,
 * nothing truncated; later calls get JET_errNoBackup.  Returns err.
 * Context: inst->backup_mu held (released while readers finish). */
static JET_ERR bk_end_now(struct jet_instance *inst, struct backup *bk, JET_ERR err)
{
    bk_detach(inst, bk);
    record_delivered(inst, bk);
    bk_free(inst, bk);
    return err;
}

static JET_ERR bk_add_file(struct backup *bk, bool is_db, uint32_t dbidx, uint32_t gen, const char *path,
                           uint64_t size)
{
    struct bk_file *nf = realloc(bk->files, (bk->nfiles + 1) * sizeof *nf);
    if (!nf) return JET_errOutOfMemory;
    bk->files = nf;
    struct bk_file *f = &bk->files[bk->nfiles];
    memset(f, 0, sizeof *f);
    f->is_db = is_db;
    f->dbidx = dbidx;
    f->gen = gen;
    snprintf(f->path, sizeof f->path, "%s", path);
    /* Resolved now, while the file is there (a final link included). */
    if (path_canonical(path, f->canon, sizeof f->canon) < 0) snprintf(f->canon, sizeof f->canon, "%s", path);
    f->size = size;
    /* The database's own descriptor serves the instance through the page
     * cache; the backup reads through one of its own that bypasses it
     * (see read_db), or through the instance's where the filesystem
     * refuses direct reads (tmpfs). */
    f->direct_fd = -1;
    if (is_db && os_open(path, OS_OPEN_READ | OS_OPEN_DIRECT, &f->direct_fd) < 0) f->direct_fd = -1;
    f->nchunks = (size + CHUNK - 1) / CHUNK;
    f->covered = calloc(f->nchunks ? f->nchunks : 1, 1);
    if (!f->covered) return JET_errOutOfMemory;
    bk->nfiles++;
    return JET_errSuccess;
}

/* ---- begin ---- */

/* Marks the preserved header copies of db as a backup copy of bk. */
static JET_ERR stamp_copy_header(struct db *db, struct backup *bk)
{
    JET_ERR err = JET_errSuccess;
    lk_wrlock(&db->snap_lock, LK_SNAP);
    for (uint32_t p = 0; p < 2 && err >= 0; p++) {
        uint8_t *img = snap_find(db->snap, p);
        struct db_header h;
        if (!img) {
            err = jet_report(JET_errDatabaseCorrupted, "%s: header page %u was not preserved", db->path, p);
            break;
        }
        if (db_header_decode(img, &h, db->path, (int)p) < 0) continue; /* a damaged copy stays damaged */
        h.copy.backup_id = bk->backup_id;
        h.copy.lsn_start = bk->lsn_start;
        h.copy.gen_low = bk->gen_low;
        h.copy.gen_high = bk->gen_need;
        h.copy.dbidx = db->dbidx;
        h.copy.consistent_us = bk->consistent_us;
        db_header_encode(&h, img);
    }
    lk_rwunlock(&db->snap_lock, LK_SNAP);
    return err;
}

JET_ERR JetBeginExternalBackupInstance(JET_INSTANCE instance, JET_GRBIT grbit)
{
    struct jet_instance *inst;
    JET_ERR err = backup_instance(instance, &inst);
    if (err < 0) return err;
    /* As ESE's instance gate: an instance JetInit never ran on is not
     * initialised; one between JetInit's start and end, or terminating,
     * does not allow a backup yet. */
    if (inst->state == INST_CREATED && !inst->init_done) return JET_errNotInitialized;
    if (!inst->init_done || inst->state != INST_RUNNING) return JET_errBackupNotAllowedYet;
    if (atomic_load(&inst->unavailable)) return JET_errInstanceUnavailable;
    if (!inst->log) return JET_errLoggingDisabled;
    /* Surrogate is ESE's, refused here (jet.h, departure 3); Atomic,
     * FullWithAllLogs and Snapshot ESE refuses too. */
    if (grbit & ~(JET_GRBIT)(JET_bitBackupIncremental | JET_bitBackupAnyOrder)) return JET_errInvalidGrbit;
    bool incremental = grbit & JET_bitBackupIncremental;
    if (incremental && inst->p.circular)
        return jet_report(JET_errInvalidBackup, "incremental backup refused: circular logging is on");

    struct backup *bk = calloc(1, sizeof *bk);
    if (!bk) return JET_errOutOfMemory;
    bk->incremental = incremental;
    bk->any_order = grbit & JET_bitBackupAnyOrder;
    bk->begin_us = os_now_us();
    bk->backup_id = os_random64();

    lk_mutex_lock(&inst->backup_mu, LK_BACKUP);
    if (inst->backup) {
        lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
        free(bk);
        return JET_errBackupInProgress;
    }
    /* The set is chosen under inst->mu: the checkpoint position is read and
     * the generations pinned against circular deletion in one step (the
     * checkpointer moves the position and reads the pin under the same
     * lock), without waiting for a checkpoint cycle in flight, so begin's
     * cost does not depend on how much is dirty. */
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    bk->lsn_start = inst->checkpoint_lsn;
    uint32_t prev_high = 0;
    bool any_db = false, missing_full = false;
    for (uint32_t d = 0; d < JET_MAX_DBS; d++) {
        struct db *db = inst->dbs[d];
        if (!db || !db->attached) continue;
        any_db = true;
        const struct db_backup_info *full = &db->hdr.backup[DB_BK_FULL], *inc = &db->hdr.backup[DB_BK_INCREMENTAL];
        if (!full->backup_id) missing_full = true;
        uint32_t high = full->gen_high > inc->gen_high ? full->gen_high : inc->gen_high;
        if (!prev_high || high < prev_high) prev_high = high;
    }
    if (incremental && (missing_full || !any_db)) {
        err = jet_report(JET_errMissingFullBackup, "incremental backup refused: no full backup of %s precedes it",
                         any_db ? "every attached database" : "any database (none attached)");
        goto fail_locked;
    }
    if (!incremental) {
        for (uint32_t d = 0; d < JET_MAX_DBS && err >= 0; d++) {
            struct db *db = inst->dbs[d];
            if (!db || !db->attached) continue;
            uint64_t size = 0;
            struct snapshot *s = calloc(1, sizeof *s);
            if (!s) {
                err = JET_errOutOfMemory;
                break;
            }
            lk_wrlock(&db->snap_lock, LK_SNAP);
            err = os_fsize(db->fd, &size);
            s->size = size;
            s->npages = (uint32_t)((size + inst->p.page_size - 1) / inst->p.page_size);
            s->mem_max = inst->p.snapshot_mem_max;
            s->spill_fd = -1;
            char spill[64];
            snprintf(spill, sizeof spill, "%s-backup-%u.spill", inst->p.base, d);
            if (os_join(s->spill_path, sizeof s->spill_path, inst->p.system_path, spill) < 0) err = JET_errInvalidPath;
            db->snap = s;
            /* The header is rewritten in place by attach, detach and the
             * backup history: keep both copies as they are now. */
            for (uint32_t p = 0; p < 2 && err >= 0; p++) err = snap_preserve_locked(db, p, inst->p.page_size);
            lk_rwunlock(&db->snap_lock, LK_SNAP);
            if (err >= 0) err = bk_add_file(bk, true, d, 0, db->path, size);
        }
        if (err < 0) goto fail_locked;
        bk->gen_low = LSN_GEN(bk->lsn_start);
    } else {
        /* As ESE: a log-only backup takes every generation still present,
         * so a differential (never truncated) holds all logs since the
         * full, and an incremental those since the last truncation.  A gap
         * after the last backup means a needed log was deleted. */
        uint32_t *gens = NULL;
        size_t ng = 0;
        if ((err = log_list(inst->p.log_path, inst->p.base, &gens, &ng)) < 0) goto fail_locked;
        bk->gen_low = ng ? gens[0] : prev_high + 1;
        free(gens);
        if (bk->gen_low > prev_high + 1) {
            err = jet_report(JET_errMissingFileToBackup,
                             "incremental backup refused: generation %u (after the last backup's %u) was deleted",
                             prev_high + 1, prev_high);
            goto fail_locked;
        }
    }
    inst->backup_pin_gen = bk->gen_low;
    /* Taken after the snapshots: every change the image holds was logged
     * before this position, so replay through its generation makes the
     * image consistent (the roll at GetLogInfo closes that generation). */
    bk->lsn_mark = log_end_lsn(inst->log);
    bk->gen_need = LSN_GEN(bk->lsn_mark);
    bk->consistent_us = os_now_us();
    /* The header images the backup serves say what they are: a copy that
     * recovery brings forward from the checkpoint through gen_need at
     * least (through the whole set when the set's logs are given). */
    for (uint32_t i = 0; i < bk->nfiles && !incremental; i++) {
        struct bk_file *f = &bk->files[i];
        if (f->is_db && (err = stamp_copy_header(inst->dbs[f->dbidx], bk)) < 0) goto fail_locked;
    }
    inst->backup = bk;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
    return JET_errSuccess;

fail_locked:
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    bk_free(inst, bk);
    lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
    return err;
}

/*
 * Fixes the log range, once, as ESE's ErrBKIPrepareLogFiles: rolls the log
 * so that every commit made up to now is in a closed generation of the
 * set, and lists the set's generations by full path.  A generation of the
 * range missing from disk ends the backup (JET_errMissingFileToBackup).
 * Any failure here ends the backup (the docs of JetGetLogInfo say so):
 * half a range must not be served.  Context: inst->backup_mu held; on an
 * error bk is freed.
 */
static void mark_delivered(struct jet_instance *inst, struct backup *bk);

static JET_ERR prepare_logs(struct jet_instance *inst, struct backup *bk)
{
    char logdir[JET_PATH_MAX];
    uint32_t closed = 0;
    JET_ERR err;
    if (bk->log_phase) return JET_errSuccess;
    /* The mark first, so the generation the roll closes holds it: restore
     * finds there where this backup's set ends (logrec.h LR_BACKUP). */
    uint8_t mark[LR_BACKUP_SIZE];
    put_le64(mark, bk->backup_id);
    struct iovec iov = {mark, sizeof mark};
    struct log_rec rec = {LR_BACKUP, &iov, 1, NULL};
    if ((err = log_append(inst->log, &rec, 1, NULL, NULL)) < 0) return bk_end_now(inst, bk, inst_fatal(inst, err));
    if ((err = log_roll(inst->log, &closed)) < 0) return bk_end_now(inst, bk, inst_fatal(inst, err));
    /* Names in the log directory's canonical name: "." (no path set) is
     * the working directory resolved, never "<cwd>/.". */
    if ((err = path_canonical(inst->p.log_path, logdir, sizeof logdir)) < 0) return bk_end_now(inst, bk, err);
    bk->gen_high = closed;
    if (bk->gen_low == 0 || bk->gen_low > bk->gen_high) bk->gen_low = bk->gen_high;
    for (uint32_t g = bk->gen_low; g <= bk->gen_high; g++) {
        char path[JET_PATH_MAX];
        if ((err = log_file_name(path, sizeof path, logdir, inst->p.base, g)) < 0) return bk_end_now(inst, bk, err);
        if (!os_exists(path))
            return bk_end_now(inst, bk,
                              jet_report(JET_errMissingFileToBackup,
                                         "%s: generation %u of the backup set is missing; the backup was ended", path,
                                         g));
        if ((err = bk_add_file(bk, false, 0, g, path, inst->p.log_file_size)) < 0) return bk_end_now(inst, bk, err);
    }
    mark_delivered(inst, bk);
    bk->log_phase = true;
    return JET_errSuccess;
}

/* ---- the set ---- */

JET_ERR JetGetAttachInfoInstance(JET_INSTANCE instance, char *szz, unsigned long cbMax, unsigned long *pcbActual)
{
    struct jet_instance *inst;
    struct backup *bk;
    JET_ERR err = bk_enter(instance, &inst, &bk, false);
    if (err < 0) return err;
    if (bk->incremental) {
        bk_leave(inst);
        return JET_errInvalidBackupSequence;
    }
    struct namelist l = {0};
    for (uint32_t i = 0; i < bk->nfiles && err >= 0; i++)
        if (bk->files[i].is_db) err = nl_add(&l, bk->files[i].path);
    if (err >= 0) list_out(&l, szz, cbMax, pcbActual);
    free(l.p);
    bk_leave(inst);
    return err;
}

/* The XXH3 of closed generation f, from its successor's header (the hash
 * chain) unless the file was already hashed whole. */
static JET_ERR closed_hash(struct jet_instance *inst, const struct bk_file *f, uint64_t *phash)
{
    char next[JET_PATH_MAX];
    struct log_header h;
    if (f->verified) {
        *phash = f->hash;
        return JET_errSuccess;
    }
    JET_ERR err = log_file_name(next, sizeof next, inst->p.log_path, inst->p.base, f->gen + 1);
    if (err >= 0) err = log_read_header(next, &h);
    if (err >= 0) *phash = h.prev_hash;
    return err;
}

/* Which generations of the set an earlier backup delivered whole.  A record
 * that cannot be used costs one more full read, never a log: it is
 * reported and the backup goes on as if nothing had been delivered.
 * Context: inst->backup_mu held. */
static void mark_delivered(struct jet_instance *inst, struct backup *bk)
{
    char path[JET_PATH_MAX];
    if (dlv_path(path, sizeof path, inst->p.system_path, inst->p.base) < 0) return;
    if (dlv_load(path, inst->log_signature, &bk->dlv) != JET_errSuccess)
        fprintf(stderr, "jet: %s\n", JetGetLastErrorDetail());
    for (uint32_t i = 0; i < bk->nfiles && bk->dlv.n; i++) {
        struct bk_file *f = &bk->files[i];
        uint64_t hash;
        if (!f->is_db && closed_hash(inst, f, &hash) >= 0) f->delivered = dlv_has(&bk->dlv, f->gen, hash);
    }
}

/* Rewrites the record: what it held, plus every generation this backup
 * read whole, minus generations no longer present.  Context: backup_mu. */
static void record_delivered(struct jet_instance *inst, struct backup *bk)
{
    char path[JET_PATH_MAX];
    uint32_t *gens = NULL;
    size_t ng = 0;
    bool changed = false;
    if (!bk->log_phase || dlv_path(path, sizeof path, inst->p.system_path, inst->p.base) < 0) return;
    bk->dlv.log_signature = inst->log_signature;
    for (uint32_t i = 0; i < bk->nfiles; i++) {
        struct bk_file *f = &bk->files[i];
        if (f->is_db || !f->verified || f->ncovered < f->nchunks || dlv_has(&bk->dlv, f->gen, f->hash)) continue;
        if (dlv_add(&bk->dlv, f->gen, f->hash) < 0) return;
        changed = true;
    }
    if (log_list(inst->p.log_path, inst->p.base, &gens, &ng) >= 0) {
        size_t before = bk->dlv.n;
        dlv_prune(&bk->dlv, ng ? gens[0] : UINT32_MAX);
        changed |= bk->dlv.n != before;
        free(gens);
    }
    if (changed && dlv_save(path, &bk->dlv) < 0)
        fprintf(stderr, "jet: %s (the next backup reads every log again)\n", JetGetLastErrorDetail());
}

/* The generations a truncation deletes, ascending: those present, of the
 * set (not past gen_high) and below the checkpoint (ESE's delete range).
 * Context: inst->backup_mu held. */
static JET_ERR truncatable(struct jet_instance *inst, struct backup *bk, uint32_t **pgens, size_t *pn)
{
    uint32_t *gens = NULL;
    size_t n = 0, k = 0;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    uint32_t limit = LSN_GEN(inst->checkpoint_lsn);
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    JET_ERR err = log_list(inst->p.log_path, inst->p.base, &gens, &n);
    if (err < 0) return err;
    for (size_t i = 0; i < n; i++)
        if (gens[i] <= bk->gen_high && gens[i] < limit) gens[k++] = gens[i];
    *pgens = gens;
    *pn = k;
    return JET_errSuccess;
}

static JET_ERR log_info(JET_INSTANCE instance, char *szz, unsigned long cbMax, unsigned long *pcbActual,
                        JET_LOGINFO *li, bool truncate_list)
{
    struct jet_instance *inst;
    struct backup *bk;
    struct namelist l = {0};
    if (li && li->cbSize != sizeof *li) return JET_errInvalidParameter;
    JET_ERR err = bk_enter(instance, &inst, &bk, false);
    if (err < 0) return err;
    if (bk->nopen) {
        bk_leave(inst);
        return JET_errInvalidBackupSequence;
    }
    if ((err = prepare_logs(inst, bk)) < 0) {
        bk_leave(inst);
        return err;
    }
    if (!truncate_list) {
        for (uint32_t i = 0; i < bk->nfiles && err >= 0; i++)
            if (!bk->files[i].is_db) err = nl_add(&l, bk->files[i].path);
    } else {
        uint32_t *gens = NULL;
        size_t n = 0;
        char logdir[JET_PATH_MAX];
        if ((err = path_canonical(inst->p.log_path, logdir, sizeof logdir)) >= 0 &&
            (err = truncatable(inst, bk, &gens, &n)) >= 0) {
            for (size_t i = 0; i < n && err >= 0; i++) {
                char path[JET_PATH_MAX];
                if ((err = log_file_name(path, sizeof path, logdir, inst->p.base, gens[i])) >= 0) err = nl_add(&l, path);
            }
            free(gens);
        }
    }
    if (err >= 0) list_out(&l, szz, cbMax, pcbActual);
    if (err >= 0 && li) {
        li->ulGenLow = bk->gen_low;
        li->ulGenHigh = bk->gen_high;
        snprintf(li->szBaseName, sizeof li->szBaseName, "%s", inst->p.base);
    }
    free(l.p);
    bk_leave(inst);
    return err;
}

JET_ERR JetGetLogInfoInstance2(JET_INSTANCE instance, char *szz, unsigned long cbMax, unsigned long *pcbActual,
                               JET_LOGINFO *pLogInfo)
{
    return log_info(instance, szz, cbMax, pcbActual, pLogInfo, false);
}

JET_ERR JetGetLogInfoInstance(JET_INSTANCE instance, char *szz, unsigned long cbMax, unsigned long *pcbActual)
{
    return log_info(instance, szz, cbMax, pcbActual, NULL, false);
}

JET_ERR JetGetTruncateLogInfoInstance(JET_INSTANCE instance, char *szz, unsigned long cbMax, unsigned long *pcbActual)
{
    return log_info(instance, szz, cbMax, pcbActual, NULL, true);
}

/* ---- files ---- */

static JET_ERR verify_log(struct jet_instance *inst, struct bk_file *f)
{
    char next[JET_PATH_MAX];
    struct log_header h;
    JET_ERR err = log_hash_file(f->path, &f->hash);
    if (err < 0) return err;
    if ((err = log_file_name(next, sizeof next, inst->p.log_path, inst->p.base, f->gen + 1)) < 0) return err;
    if ((err = log_read_header(next, &h)) < 0)
        return jet_report(JET_errLogReadVerifyFailure, "%s: cannot verify generation %u: %s", f->path, f->gen,
                          JetGetLastErrorDetail());
    if (h.prev_hash != f->hash)
        return jet_report(JET_errLogReadVerifyFailure,
                          "%s: generation %u hashes to %016llx, generation %u says %016llx: the file was damaged",
                          f->path, f->gen, (unsigned long long)f->hash, f->gen + 1, (unsigned long long)h.prev_hash);
    f->verified = true;
    return JET_errSuccess;
}

JET_ERR JetOpenFileInstance(JET_INSTANCE instance, const char *szFileName, JET_HANDLE *phfFile,
                            unsigned long *pulFileSizeLow, unsigned long *pulFileSizeHigh)
{
    struct jet_instance *inst;
    struct backup *bk;
    if (!szFileName || !*szFileName || !phfFile) return JET_errInvalidParameter;
    char name[JET_PATH_MAX];
    /* As ESE, the name is compared completed and resolved: any spelling
     * of a file of the set opens it (path.c). */
    JET_ERR err = path_canonical(szFileName, name, sizeof name);
    if (err < 0) return err;
    if ((err = bk_enter(instance, &inst, &bk, false)) < 0) return err;
    uint32_t i;
    for (i = 0; i < bk->nfiles; i++)
        if (strcmp(bk->files[i].canon, name) == 0) break;
    bool is_db = i < bk->nfiles && bk->files[i].is_db;
    /* A database attached after begin is not of the set, but is still a
     * database (ESE's phases below).  Its name is resolved here, under
     * inst->mu: at most JET_MAX_DBS lookups, and no lock taken. */
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    for (uint32_t d = 0; d < JET_MAX_DBS && !is_db; d++) {
        char dbc[JET_PATH_MAX];
        if (inst->dbs[d] && inst->dbs[d]->attached && path_canonical(inst->dbs[d]->path, dbc, sizeof dbc) >= 0 &&
            strcmp(dbc, name) == 0)
            is_db = true;
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    /* ESE's phases (ErrBKOpenFile): an incremental is in the log phase from
     * its begin; a full one from its first GetLogInfo. */
    bool log_phase = bk->incremental || bk->log_phase;
    if (is_db && log_phase && !(bk->any_order && !bk->incremental)) {
        err = bk_end_now(inst, bk,
                         jet_report(JET_errInvalidBackupSequence,
                                    "%s: a database cannot be opened %s; the backup was ended", name,
                                    bk->incremental ? "during an incremental backup" : "after JetGetLogInfo"));
        goto out;
    }
    if (!is_db && !log_phase) {
        err = jet_report(JET_errDatabaseNotFound, "%s: not an attached database (logs are opened after JetGetLogInfo)",
                         name);
        goto out;
    }
    if (!is_db && !os_exists(name)) {
        err = bk_end_now(inst, bk,
                         jet_report(JET_errMissingFileToBackup, "%s: no such file to back up; the backup was ended",
                                    name));
        goto out;
    }
    if (i == bk->nfiles) {
        err = jet_report(JET_errFileNotFound, "%s: not a file of this backup set%s", name,
                         is_db ? " (attached after the backup began)" : "");
        goto out;
    }
    struct bk_file *f = &bk->files[i];
    if (!f->is_db && !f->verified && (err = verify_log(inst, f)) < 0) goto out;
    uint32_t h;
    for (h = 0; h < MAX_HANDLES; h++)
        if (!bk->handles[h].used) break;
    if (h == MAX_HANDLES) {
        err = JET_errOutOfMemory;
        goto out;
    }
    bk->handles[h] = (struct bk_handle){true, i, 0};
    bk->nopen++;
    *phfFile = (JET_HANDLE)(h + 1);
    if (pulFileSizeLow) *pulFileSizeLow = (unsigned long)(f->size & 0xFFFFFFFFu);
    if (pulFileSizeHigh) *pulFileSizeHigh = (unsigned long)(f->size >> 32);
out:
    bk_leave(inst);
    return err;
}

static JET_ERR handle_of(struct backup *bk, JET_HANDLE hf, struct bk_handle **ph)
{
    if (hf < 1 || hf > MAX_HANDLES || !bk->handles[hf - 1].used) return JET_errInvalidParameter;
    *ph = &bk->handles[hf - 1];
    return JET_errSuccess;
}

/*
 * Bytes [off, off + n) of a database file as it stood at begin.  The pages
 * the range touches are read with one pread (straight into `out` when the
 * range is page-aligned, the common case of FUSE and tar), then the
 * preserved images are laid over the pages the engine has overwritten since
 * begin, under snap_lock; then each page is verified before any byte of it
 * is returned.
 *
 * The pread needs no lock: db_write_page preserves a page's begin-time
 * image, under the exclusive lock, before its first write after begin, and
 * images are never dropped while the backup lives.  So any page the pread
 * may have seen changed (even torn, mid-write) already has its image in
 * the snapshot when the overlay looks, and the overlay replaces it whole.
 * Keeping the pread outside the lock means a page writer never waits for a
 * backup reader's I/O -- nor for a reader the scheduler has set aside
 * (jetfs serves backups at idle priority).
 *
 * The pread bypasses the page cache (the backup's own O_DIRECT descriptor,
 * f->direct_fd): a backup reads the whole file once, and through the page
 * cache it would push the instance's hot pages out and leave a second copy
 * of the database in memory beside the one a FUSE mount keeps.  A direct
 * read first writes back the dirty cached pages it covers, so it sees what
 * a buffered read would; whatever it sees of a page written since begin,
 * the overlay replaces, as above.  Pages the instance has cached stay
 * cached.
 */
static JET_ERR read_db(struct jet_instance *inst, struct bk_file *f, uint64_t off, uint8_t *out, size_t n)
{
    struct db *db = inst->dbs[f->dbidx];
    uint32_t ps = inst->p.page_size;
    uint64_t p0 = off / ps, p1 = (off + n + ps - 1) / ps; /* pages [p0, p1) */
    size_t span_len = (size_t)((p1 - p0) * ps);
    bool aligned = off % ps == 0 && n % ps == 0;
    int fd = f->direct_fd >= 0 ? f->direct_fd : db ? db->fd : -1;
    /* A direct read needs an aligned buffer: a span of its own then. */
    if (f->direct_fd >= 0 && (uintptr_t)out % OS_DIRECT_ALIGN) aligned = false;
    uint8_t *span = aligned ? out : aligned_alloc(OS_DIRECT_ALIGN, (span_len + OS_DIRECT_ALIGN - 1) / OS_DIRECT_ALIGN * OS_DIRECT_ALIGN);
    JET_ERR err = JET_errSuccess;

    if (!span) return JET_errOutOfMemory;
    if (!db) {
        err = jet_report(JET_errDatabaseNotFound, "%s: detached during the backup", f->path);
        goto out;
    }
    err = f->direct_fd >= 0 ? os_pread_direct(fd, span, span_len, p0 * ps) : os_pread_full(fd, span, span_len, p0 * ps);
    lk_rdlock(&db->snap_lock, LK_SNAP);
    /* Checked after the pread: a page written since it may have been
     * written unpreserved. */
    if (err >= 0 && db->snap && db->snap->failed) err = jet_report(JET_errBackupAbortByServer, "%s", db->snap->failure);
    for (uint64_t pg = p0; pg < p1 && err >= 0 && db->snap && db->snap->n; pg++) {
        JET_ERR kept = snap_read(db->snap, (uint32_t)pg, span + (pg - p0) * ps, ps);
        if (kept < 0) err = kept;
    }
    lk_rwunlock(&db->snap_lock, LK_SNAP);
    if (err < 0) goto out;
    for (uint64_t pg = p0; pg < p1 && err >= 0; pg++) {
        uint8_t *page = span + (pg - p0) * ps;
        if (pg >= 2 && !page_is_zero(page, ps)) err = page_verify(page, ps, (uint32_t)pg, f->path);
        else if (pg < 2) {
            struct db_header h;
            err = db_header_decode(page, &h, f->path, (int)pg);
            if (err < 0)
                err = jet_report(JET_errReadVerifyFailure, "%s: header page %u: %s", f->path, (unsigned)pg,
                                 JetGetLastErrorDetail());
        }
    }
    if (err >= 0 && !aligned) memcpy(out, span + (off - p0 * ps), n);
out:
    if (!aligned) free(span);
    return err;
}

static void cover(struct bk_file *f, uint64_t off, uint64_t n)
{
    uint64_t end = off + n;
    uint64_t c0 = (off + CHUNK - 1) / CHUNK, c1 = end == f->size ? f->nchunks : end / CHUNK;
    for (uint64_t c = c0; c < c1; c++)
        if (!f->covered[c]) {
            f->covered[c] = 1;
            f->ncovered++;
        }
}

static JET_ERR read_at(JET_INSTANCE instance, JET_HANDLE hf, uint64_t off, void *pv, unsigned long cb,
                       unsigned long *pcbActual, bool sequential)
{
    struct jet_instance *inst;
    struct backup *bk;
    struct bk_handle *h;
    if (!pv && cb) return JET_errInvalidParameter;
    JET_ERR err = bk_enter(instance, &inst, &bk, false);
    if (err < 0) return err;
    if ((err = handle_of(bk, hf, &h)) < 0) {
        bk_leave(inst);
        return err;
    }
    struct bk_file *f = &bk->files[h->file];
    if (sequential) off = h->pos;
    uint64_t n = off >= f->size ? 0 : (f->size - off < cb ? f->size - off : cb);
    /* Reads run without the backup lock so many can proceed at once; the
     * set cannot change until End, and End waits for the readers it counts
     * (bk_detach) before freeing anything a read uses. */
    bk->readers++;
    bk_leave(inst);
    if (n) {
        if (f->is_db) err = read_db(inst, f, off, pv, (size_t)n);
        else {
            /* A closed generation is read once: past the page cache, as
             * a database (read_db), where the filesystem allows it. */
            int fd;
            bool direct = f->size % OS_DIRECT_ALIGN == 0 && os_open(f->path, OS_OPEN_READ | OS_OPEN_DIRECT, &fd) >= 0;
            err = direct ? JET_errSuccess : os_open(f->path, OS_OPEN_READ, &fd);
            if (err >= 0) {
                err = direct ? os_pread_direct(fd, pv, (size_t)n, off) : os_pread_full(fd, pv, (size_t)n, off);
                os_close(fd);
            }
        }
    }
    lk_mutex_lock(&inst->backup_mu, LK_BACKUP);
    if (inst->backup != bk) err = JET_errBackupAbortByServer;
    else if (err >= 0) {
        cover(f, off, n);
        if (sequential) h->pos = off + n;
    }
    if (--bk->readers == 0) pthread_cond_broadcast(&inst->backup_cv);
    lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
    if (err >= 0 && pcbActual) *pcbActual = (unsigned long)n;
    return err;
}

JET_ERR JetReadFileInstance(JET_INSTANCE instance, JET_HANDLE hfFile, void *pv, unsigned long cb,
                            unsigned long *pcbActual)
{
    return read_at(instance, hfFile, 0, pv, cb, pcbActual, true);
}

JET_ERR JetReadFileAtInstance(JET_INSTANCE instance, JET_HANDLE hfFile, unsigned long long ibOffset, void *pv,
                              unsigned long cb, unsigned long *pcbActual)
{
    return read_at(instance, hfFile, ibOffset, pv, cb, pcbActual, false);
}

JET_ERR JetCloseFileInstance(JET_INSTANCE instance, JET_HANDLE hfFile)
{
    struct jet_instance *inst;
    struct backup *bk;
    struct bk_handle *h;
    JET_ERR err = bk_enter(instance, &inst, &bk, true);
    if (err < 0) return err;
    if ((err = handle_of(bk, hfFile, &h)) >= 0) {
        h->used = false;
        bk->nopen--;
    }
    bk_leave(inst);
    return err;
}

/* ---- truncate, end, stop ---- */

/* Deletes what JetGetTruncateLogInfo names, at the call, as ESE's
 * ErrLGTruncateLog: oldest first, so a failure stops there and leaves the
 * rest contiguous; a generation already gone is skipped.  Context:
 * inst->backup_mu held. */
static JET_ERR truncate_logs(struct jet_instance *inst, struct backup *bk)
{
    uint32_t *gens = NULL;
    size_t n = 0;
    JET_ERR err = truncatable(inst, bk, &gens, &n);
    if (err < 0) return err;
    lk_mutex_lock(&inst->ckpt_mu, LK_CKPT);
    for (size_t i = 0; i < n && err >= 0; i++) {
        char path[JET_PATH_MAX];
        if (log_file_name(path, sizeof path, inst->p.log_path, inst->p.base, gens[i]) >= 0 && !os_exists(path))
            continue;
        if ((err = log_delete_generation(inst->p.log_path, inst->p.base, gens[i])) < 0)
            err = jet_report(err, "truncation stopped at generation %u: %s", gens[i], JetGetLastErrorDetail());
    }
    lk_mutex_unlock(&inst->ckpt_mu, LK_CKPT);
    free(gens);
    return err;
}

JET_ERR JetTruncateLogInstance(JET_INSTANCE instance)
{
    struct jet_instance *inst;
    struct backup *bk;
    JET_ERR err = bk_enter(instance, &inst, &bk, false);
    if (err < 0) return err;
    if (bk->nopen || !bk->log_phase) err = JET_errInvalidBackupSequence;
    for (uint32_t i = 0; i < bk->nfiles && err >= 0; i++) {
        struct bk_file *f = &bk->files[i];
        if (!f->is_db && f->ncovered < f->nchunks && !f->delivered)
            err = jet_report(JET_errLogFileNotCopied,
                             "%s: generation %u was not read whole (%llu of %llu KiB), nor by an earlier backup",
                             f->path, f->gen, (unsigned long long)f->ncovered * CHUNK / 1024,
                             (unsigned long long)f->nchunks * CHUNK / 1024);
    }
    if (err >= 0) {
        bk->truncate = true;
        err = truncate_logs(inst, bk);
    }
    bk_leave(inst);
    return err;
}

static void record_history(struct jet_instance *inst, struct backup *bk)
{
    bool truncating = bk->truncate || bk->truncate_done;
    enum db_backup_kind kind = bk->incremental ? (truncating ? DB_BK_INCREMENTAL : DB_BK_DIFFERENTIAL)
                                               : (truncating ? DB_BK_FULL : DB_BK_COPY);
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    for (uint32_t d = 0; d < JET_MAX_DBS; d++) {
        struct db *db = inst->dbs[d];
        if (!db || !db->attached) continue;
        if (!bk->incremental) {
            /* A full backup counts for a database only if it was read whole. */
            bool whole = false;
            for (uint32_t i = 0; i < bk->nfiles; i++)
                if (bk->files[i].is_db && bk->files[i].dbidx == d) whole = bk->files[i].ncovered == bk->files[i].nchunks;
            if (!whole) continue;
        }
        struct db_header *hd = &db->hdr;
        uint64_t pred = kind == DB_BK_DIFFERENTIAL ? hd->backup[DB_BK_FULL].backup_id
                        : kind == DB_BK_INCREMENTAL
                            ? (hd->backup[DB_BK_INCREMENTAL].lsn_mark > hd->backup[DB_BK_FULL].lsn_mark
                                   ? hd->backup[DB_BK_INCREMENTAL].backup_id
                                   : hd->backup[DB_BK_FULL].backup_id)
                            : 0;
        hd->backup[kind] = (struct db_backup_info){bk->gen_low, bk->gen_high, bk->begin_us, bk->backup_id,
                                                   bk->lsn_mark, pred};
        if (kind == DB_BK_FULL) {
            memset(&hd->backup[DB_BK_INCREMENTAL], 0, sizeof hd->backup[0]);
            memset(&hd->backup[DB_BK_DIFFERENTIAL], 0, sizeof hd->backup[0]);
        }
        JET_ERR err = db_header_write(db->fd, hd);
        if (err < 0)
            fprintf(stderr, "jet: %s: recording the %s backup in the header failed: %s\n", db->path,
                    db_backup_kind_name(kind), JetErrorString(err));
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
}

JET_ERR JetEndExternalBackupInstance2(JET_INSTANCE instance, JET_GRBIT grbit)
{
    struct jet_instance *inst;
    struct backup *bk;
    bool normal = grbit & JET_bitBackupEndNormal, abort_ = grbit & JET_bitBackupEndAbort;
    if (normal == abort_ || (grbit & ~(JET_GRBIT)(JET_bitBackupEndNormal | JET_bitBackupEndAbort |
                                                  JET_bitBackupTruncateDone | JET_bitBackupNoDbHeaderUpdate)))
        return JET_errInvalidParameter;
    JET_ERR err = bk_enter(instance, &inst, &bk, true);
    if (err < 0) return err;
    /* As ESE: TruncateDone says the caller truncated by other means, so the
     * backup is recorded as a truncating one (only JetTruncateLog, which
     * checks that every log was read whole, deletes generations, at its
     * call).  A normal End before JetGetLogInfo is a failed backup. */
    if (grbit & JET_bitBackupTruncateDone) bk->truncate_done = true;
    bool ok = normal && !bk->stopped && bk->log_phase;
    bk_detach(inst, bk);
    if (ok && !(grbit & JET_bitBackupNoDbHeaderUpdate)) record_history(inst, bk);
    record_delivered(inst, bk);
    bk_free(inst, bk);
    bk_leave(inst);
    return JET_errSuccess;
}

JET_ERR JetEndExternalBackupInstance(JET_INSTANCE instance)
{
    return JetEndExternalBackupInstance2(instance, JET_bitBackupEndNormal);
}

JET_ERR JetStopBackupInstance(JET_INSTANCE instance)
{
    struct jet_instance *inst;
    JET_ERR err = backup_instance(instance, &inst);
    if (err < 0) return err;
    lk_mutex_lock(&inst->backup_mu, LK_BACKUP);
    if (inst->backup) inst->backup->stopped = true;
    lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
    return JET_errSuccess;
}

void backup_abort(struct jet_instance *inst)
{
    lk_mutex_lock(&inst->backup_mu, LK_BACKUP);
    /* An End already finishing it owns it: wait for that instead. */
    while (inst->backup && inst->backup->ending) pthread_cond_wait(&inst->backup_cv, &inst->backup_mu);
    struct backup *bk = inst->backup;
    if (bk) {
        bk_detach(inst, bk);
        record_delivered(inst, bk);
        bk_free(inst, bk);
    }
    lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
}

/* ---- instance-less variants: legacy mode only ---- */

JET_ERR JetBeginExternalBackup(JET_GRBIT grbit) { return JetBeginExternalBackupInstance(0, grbit); }
JET_ERR JetGetAttachInfo(char *szz, unsigned long cbMax, unsigned long *pcbActual)
{
    return JetGetAttachInfoInstance(0, szz, cbMax, pcbActual);
}
JET_ERR JetOpenFile(const char *szFileName, JET_HANDLE *phfFile, unsigned long *pulFileSizeLow,
                    unsigned long *pulFileSizeHigh)
{
    return JetOpenFileInstance(0, szFileName, phfFile, pulFileSizeLow, pulFileSizeHigh);
}
JET_ERR JetReadFile(JET_HANDLE hfFile, void *pv, unsigned long cb, unsigned long *pcbActual)
{
    return JetReadFileInstance(0, hfFile, pv, cb, pcbActual);
}
JET_ERR JetCloseFile(JET_HANDLE hfFile) { return JetCloseFileInstance(0, hfFile); }
JET_ERR JetGetLogInfo(char *szz, unsigned long cbMax, unsigned long *pcbActual)
{
    return JetGetLogInfoInstance(0, szz, cbMax, pcbActual);
}
JET_ERR JetTruncateLog(void) { return JetTruncateLogInstance(0); }
JET_ERR JetEndExternalBackup(void) { return JetEndExternalBackupInstance(0); }
JET_ERR JetStopBackup(void) { return JetStopBackupInstance(0); }

static JET_ERR backup_instance(JET_INSTANCE h, struct jet_instance **pinst) { return inst_lookup_for_backup(h, pinst); }

/* ---- manifest ---- */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

JET_ERR JetGetBackupManifestInstance(JET_INSTANCE instance, const char *szType, char *szManifest, unsigned long cbMax,
                                     unsigned long *pcbActual)
{
    struct jet_instance *inst;
    struct backup *bk;
    static const char *types[] = {"full", "incremental", "differential", "copy"};
    int type = -1;
    for (int i = 0; szType && i < 4; i++)
        if (!strcmp(szType, types[i])) type = i;
    if (type < 0) return JET_errInvalidParameter;
    JET_ERR err = bk_enter(instance, &inst, &bk, false);
    if (err < 0) return err;
    if ((type == 1 || type == 2) != bk->incremental || !bk->log_phase) {
        bk_leave(inst);
        return JET_errInvalidBackupSequence;
    }
    struct manifest mf = {.format = MANIFEST_FORMAT, .begin_us = bk->begin_us, .log_signature = inst->log_signature,
                          .gen_low = bk->gen_low, .gen_high = bk->gen_high};
    char *text = NULL;
    size_t len = 0;
    snprintf(mf.type, sizeof mf.type, "%s", types[type]);
    snprintf(mf.log_base, sizeof mf.log_base, "%s", inst->p.base);
    os_utc(bk->begin_us, 0, mf.begin_time, sizeof mf.begin_time);
    mf.backup_id = bk->backup_id;
    mf.dbs = calloc(bk->nfiles ? bk->nfiles : 1, sizeof *mf.dbs);
    mf.files = calloc(bk->nfiles ? bk->nfiles : 1, sizeof *mf.files);
    if (!mf.dbs || !mf.files) {
        err = JET_errOutOfMemory;
        goto out;
    }
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    for (uint32_t d = 0; d < JET_MAX_DBS; d++) {
        struct db *db = inst->dbs[d];
        if (!db || !db->attached) continue;
        const struct db_backup_info *full = &db->hdr.backup[DB_BK_FULL], *inc = &db->hdr.backup[DB_BK_INCREMENTAL];
        if (type == 1) mf.predecessor_id = inc->lsn_mark > full->lsn_mark ? inc->backup_id : full->backup_id;
        else if (type == 2) mf.predecessor_id = full->backup_id;
    }
    for (uint32_t i = 0; i < bk->nfiles; i++) {
        struct bk_file *f = &bk->files[i];
        if (!f->is_db || !inst->dbs[f->dbidx]) continue;
        /* The original path too: JetRestoreInstance without a destination
         * puts the database back there, as ESE's restore map does. */
        mf.dbs[mf.ndbs++] =
            (struct manifest_db){base_name(f->path), f->dbidx, inst->dbs[f->dbidx]->hdr.db_signature, f->path};
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    for (uint32_t i = 0; i < bk->nfiles && err >= 0; i++) {
        struct bk_file *f = &bk->files[i];
        if (!f->is_db && !f->verified && (err = verify_log(inst, f)) < 0) break;
        mf.files[mf.nfiles++] = (struct manifest_file){base_name(f->path), f->size, !f->is_db, f->is_db ? 0 : f->hash};
    }
    if (err >= 0) err = manifest_write(&mf, &text, &len);
out:
    bk_leave(inst);
    if (err >= 0) {
        if (szManifest && cbMax) {
            size_t n = len < cbMax - 1 ? len : cbMax - 1;
            memcpy(szManifest, text, n);
            szManifest[n] = '\0';
        }
        if (pcbActual) *pcbActual = (unsigned long)len + 1;
        if (szManifest && len + 1 > cbMax) err = JET_wrnBufferTruncated;
    }
    free(text);
    free(mf.dbs);
    free(mf.files);
    return err;
}

JET_ERR JetGetBackupStatusInstance(JET_INSTANCE instance, JET_BACKUPSTATUS *st)
{
    struct jet_instance *inst;
    if (!st || st->cbStruct != sizeof *st) return JET_errInvalidParameter;
    JET_ERR err = backup_instance(instance, &inst);
    if (err < 0) return err;
    unsigned long cb = st->cbStruct;
    memset(st, 0, sizeof *st);
    st->cbStruct = cb;
    lk_mutex_lock(&inst->backup_mu, LK_BACKUP);
    struct backup *bk = inst->backup;
    if (bk) {
        st->fInProgress = 1;
        st->fIncremental = bk->incremental;
        st->fStopped = bk->stopped;
        st->ulGenLow = bk->gen_low;
        st->ulGenHigh = bk->gen_high;
        st->begin_us = bk->begin_us;
        st->cFiles = bk->nfiles;
        for (uint32_t i = 0; i < bk->nfiles; i++) {
            struct bk_file *f = &bk->files[i];
            if (f->ncovered == f->nchunks) st->cFilesReadWhole++;
            if (f->is_db && inst->dbs[f->dbidx]) {
                struct db *db = inst->dbs[f->dbidx];
                lk_rdlock(&db->snap_lock, LK_SNAP);
                if (db->snap) {
                    st->cbPreservedMemory += db->snap->bytes;
                    st->cbPreservedSpill += db->snap->spill_bytes;
                    if (db->snap->failed && !st->szFailure[0])
                        snprintf(st->szFailure, sizeof st->szFailure, "%s", db->snap->failure);
                }
                lk_rwunlock(&db->snap_lock, LK_SNAP);
            }
        }
    }
    lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
    return JET_errSuccess;
}

JET_ERR JetGetBackupFileInfoInstance(JET_INSTANCE instance, unsigned long iFile, JET_BACKUPFILEINFO *info)
{
    struct jet_instance *inst;
    struct backup *bk;
    if (!info || info->cbStruct != sizeof *info) return JET_errInvalidParameter;
    JET_ERR err = bk_enter(instance, &inst, &bk, true);
    if (err < 0) return err;
    if (iFile >= bk->nfiles) {
        err = JET_errInvalidParameter;
        goto out;
    }
    const struct bk_file *f = &bk->files[iFile];
    snprintf(info->szPath, sizeof info->szPath, "%s", f->path);
    info->fDatabase = f->is_db;
    info->ulGeneration = f->gen;
    info->cbSize = f->size;
    info->fDeliveredBefore = f->delivered;
    /* Chunks are whole but the last, which may be short. */
    uint64_t covered = f->ncovered * (uint64_t)CHUNK;
    info->cbCovered = f->ncovered == f->nchunks ? f->size : (covered < f->size ? covered : f->size);
out:
    bk_leave(inst);
    return err;
}
