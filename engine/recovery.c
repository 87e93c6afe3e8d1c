/*
 * recovery.c -- crash recovery, run by JetInit before the instance serves.
 *
 * Redo only (see logrec.h): from the checkpoint position to the end of the
 * log, the page images of every committed transaction are written over
 * their pages in log order; images not followed by their LR_COMMIT (the
 * transaction in flight at the crash, or a torn tail) are dropped.  The
 * last image of a page wins, so replay is idempotent and also repairs a
 * page torn by a crash in the middle of a checkpoint write.
 *
 * Afterwards every database that was attached is made consistent: its
 * header says clean shutdown at the end of the log, and the instance starts
 * a new log generation.  Before replaying, the whole log from the
 * checkpoint is read once without applying anything: damage in it (a bad
 * record the log proves was durable -- log.c, PROVING THE TORN TAIL -- or a
 * broken chain) is refused then, and a refusal changes no file: not the
 * logs, not the checkpoint, not a database page.  An error during the
 * replay itself (an I/O error) also deletes nothing; the pages replayed
 * before it are harmless, as replay is idempotent and starts again from the
 * same checkpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "instance.h"
#include "logrec.h"
#include "os.h"
#include "page.h"

struct redo_db {
    int fd;
    char path[JET_PATH_MAX];
    struct db_header hdr;
};

struct redo_page {
    uint32_t dbidx, pgno;
    uint8_t *image;
};

struct redo {
    struct jet_instance *inst;
    const struct restore_map *rm;  /* restore mode, or NULL */
    bool stopped;                  /* reached the requested stop point */
    struct redo_db dbs[JET_MAX_DBS];
    struct redo_page *pending;
    size_t npending, cap;
    uint64_t txns, pages;
};

static void redo_drop_pending(struct redo *r)
{
    for (size_t i = 0; i < r->npending; i++) free(r->pending[i].image);
    r->npending = 0;
}

static JET_ERR redo_open_db(struct redo *r, uint32_t dbidx, const char *path, uint64_t signature)
{
    struct redo_db *d = &r->dbs[dbidx];
    JET_ERR err;
    if (d->fd >= 0) {
        os_close(d->fd);
        d->fd = -1;
    }
    err = os_open(path, OS_OPEN_READ | OS_OPEN_WRITE, &d->fd);
    if (err < 0) {
        d->fd = -1;
        return jet_report(err, "recovery: database %s (attached in the log) cannot be opened: %s", path,
                          JetErrorString(err));
    }
    err = db_header_read(d->fd, path, &d->hdr);
    if (err < 0) goto fail;
    if (d->hdr.db_signature != signature) {
        err = jet_report(JET_errBadDbSignature,
                         "recovery: %s has database signature %016llx, the log expects %016llx", path,
                         (unsigned long long)d->hdr.db_signature, (unsigned long long)signature);
        goto fail;
    }
    if (d->hdr.page_size != r->inst->p.page_size) {
        err = jet_report(JET_errPageSizeMismatch, "recovery: %s has %u-byte pages, the instance %u", path,
                         d->hdr.page_size, r->inst->p.page_size);
        goto fail;
    }
    snprintf(d->path, sizeof d->path, "%s", path);
    return JET_errSuccess;
fail:
    os_close(d->fd);
    d->fd = -1;
    return err;
}

static JET_ERR redo_commit(struct redo *r, lsn_t end)
{
    uint32_t ps = r->inst->p.page_size;
    for (size_t i = 0; i < r->npending; i++) {
        struct redo_page *p = &r->pending[i];
        struct redo_db *d = &r->dbs[p->dbidx];
        /* A restore brings forward only the databases it was given. */
        if (r->rm && d->fd < 0) continue;
        if (p->dbidx >= JET_MAX_DBS || d->fd < 0)
            return jet_report(JET_errLogFileCorrupt,
                              "recovery: log changes page %u of database %u, which is not attached at %u:%u",
                              p->pgno, p->dbidx, LSN_GEN(end), LSN_OFF(end));
        page_set_lsn(p->image, end);
        page_seal(p->image, ps);
        JET_ERR err = os_pwrite(d->fd, p->image, ps, (uint64_t)p->pgno * ps);
        if (err < 0) return jet_report(err, "recovery: %s: writing page %u failed", d->path, p->pgno);
        r->pages++;
    }
    r->txns++;
    redo_drop_pending(r);
    return JET_errSuccess;
}

/*
 * Reads the whole log from start, applying nothing: damage anywhere in it
 * (a bad record the log proves was durable, a broken chain) is refused
 * before recovery writes a single page, so a refusal changes no file.
 */
static JET_ERR verify_to_end(struct jet_instance *inst, lsn_t start)
{
    struct log_reader *rd = NULL;
    struct log_record rec;
    JET_ERR err = log_reader_open(inst->p.log_path, inst->p.base, start, inst->log_signature, 0, &rd);
    while (err >= 0 && (err = log_reader_next(rd, &rec)) == JET_errSuccess) {}
    if (rd) log_reader_close(rd);
    return err < 0 ? err : JET_errSuccess;
}

static JET_ERR redo_record(struct redo *r, const struct log_record *rec)
{
    uint32_t ps = r->inst->p.page_size;
    switch (rec->type) {
    case LR_PAGE: {
        if (rec->len != LR_PAGE_HDR + ps)
            return jet_report(JET_errLogFileCorrupt, "recovery: page record at %u:%u has %u bytes (expected %u)",
                              LSN_GEN(rec->lsn), LSN_OFF(rec->lsn), rec->len, LR_PAGE_HDR + ps);
        if (r->npending == r->cap) {
            size_t ncap = r->cap ? r->cap * 2 : 64;
            struct redo_page *np = realloc(r->pending, ncap * sizeof *np);
            if (!np) return JET_errOutOfMemory;
            r->pending = np;
            r->cap = ncap;
        }
        uint8_t *img = malloc(ps);
        if (!img) return JET_errOutOfMemory;
        memcpy(img, rec->payload + LR_PAGE_HDR, ps);
        r->pending[r->npending++] = (struct redo_page){get_le32(rec->payload), get_le32(rec->payload + 4), img};
        if (r->pending[r->npending - 1].dbidx >= JET_MAX_DBS)
            return jet_report(JET_errLogFileCorrupt, "recovery: page record at %u:%u names database %u",
                              LSN_GEN(rec->lsn), LSN_OFF(rec->lsn), r->pending[r->npending - 1].dbidx);
        return JET_errSuccess;
    }
    case LR_COMMIT:
        if (r->rm && r->rm->stop_us && rec->len >= 8 && get_le64(rec->payload) > r->rm->stop_us) {
            /* Generations up to gen_high bring the copied image to its
             * consistent point: a database stopped inside them would be
             * neither the state at stop_us nor consistent. */
            if (LSN_GEN(rec->lsn) <= r->rm->gen_high) {
                char at[40], commit[40];
                return jet_report(JET_errInvalidParameter,
                                  "restore: cannot stop at %s: the backup is consistent only from generation %u's "
                                  "end, and generation %u holds a commit of %s",
                                  os_utc(r->rm->stop_us, 1, at, sizeof at), r->rm->gen_high, LSN_GEN(rec->lsn),
                                  os_utc(get_le64(rec->payload), 1, commit, sizeof commit));
            }
            r->stopped = true;
            return JET_errSuccess;
        }
        return redo_commit(r, rec->end);
    case LR_ATTACH: {
        if (rec->len < LR_ATTACH_HDR || rec->len - LR_ATTACH_HDR >= JET_PATH_MAX)
            return jet_report(JET_errLogFileCorrupt, "recovery: attach record at %u:%u is malformed",
                              LSN_GEN(rec->lsn), LSN_OFF(rec->lsn));
        uint32_t dbidx = get_le32(rec->payload);
        char path[JET_PATH_MAX];
        memcpy(path, rec->payload + LR_ATTACH_HDR, rec->len - LR_ATTACH_HDR);
        path[rec->len - LR_ATTACH_HDR] = '\0';
        if (dbidx >= JET_MAX_DBS)
            return jet_report(JET_errLogFileCorrupt, "recovery: attach record names database %u", dbidx);
        if (r->rm) {
            /* The log names the original file: restore uses its own copy,
             * and leaves alone every database it was not given. */
            uint64_t sig = get_le64(rec->payload + 8);
            for (uint32_t i = 0; i < r->rm->n; i++)
                if (r->rm->dbs[i].db_signature == sig) {
                    if (r->dbs[dbidx].fd >= 0 && strcmp(r->dbs[dbidx].path, r->rm->dbs[i].path) == 0)
                        return JET_errSuccess;
                    return redo_open_db(r, dbidx, r->rm->dbs[i].path, sig);
                }
            if (r->dbs[dbidx].fd >= 0) {
                os_close(r->dbs[dbidx].fd);
                r->dbs[dbidx].fd = -1;
            }
            return JET_errSuccess;
        }
        return redo_open_db(r, dbidx, path, get_le64(rec->payload + 8));
    }
    case LR_DETACH: {
        uint32_t dbidx = rec->len >= 4 ? get_le32(rec->payload) : JET_MAX_DBS;
        if (dbidx >= JET_MAX_DBS) return jet_report(JET_errLogFileCorrupt, "recovery: bad detach record");
        struct redo_db *d = &r->dbs[dbidx];
        if (d->fd >= 0) {
            JET_ERR err = os_fsync(d->fd);
            os_close(d->fd);
            d->fd = -1;
            if (err < 0) return err;
        }
        return JET_errSuccess;
    }
    default:
        /* Record types this version does not redo (backup markers) carry
         * no page changes. */
        return JET_errSuccess;
    }
}

JET_ERR recovery_run(struct jet_instance *inst, uint32_t *pnext_gen)
{
    struct redo r;
    struct ckpt_file ck;
    struct log_reader *rd = NULL;
    uint32_t *gens = NULL;
    size_t ngens = 0;
    char path[JET_PATH_MAX];
    bool have_ckpt;
    lsn_t start;
    JET_ERR err;

    memset(&r, 0, sizeof r);
    r.inst = inst;
    for (int i = 0; i < JET_MAX_DBS; i++) r.dbs[i].fd = -1;

    r.rm = inst->restore;
    if ((err = ckpt_path(inst, path, sizeof path)) < 0) return err;
    have_ckpt = !r.rm && os_exists(path);
    if (have_ckpt && (err = ckpt_read(path, &ck)) < 0) return err;
    if ((err = log_list(inst->p.log_path, inst->p.base, &gens, &ngens)) < 0) return err;

    if (ngens == 0) {
        if (have_ckpt && ck.ndbs > 0) {
            err = jet_report(JET_errMissingLogFile,
                             "recovery: the checkpoint needs generation %u but no log file of base '%s' is in %s",
                             LSN_GEN(ck.lsn), inst->p.base, inst->p.log_path);
            goto out;
        }
        inst->log_signature = have_ckpt ? ck.log_signature : os_random64();
        *pnext_gen = have_ckpt && LSN_GEN(ck.lsn) ? LSN_GEN(ck.lsn) + 1 : 1;
        goto out;
    }
    if (r.rm) {
        start = r.rm->lsn_start;
        inst->log_signature = r.rm->log_signature;
        for (uint32_t i = 0; i < r.rm->n; i++) {
            err = redo_open_db(&r, r.rm->dbs[i].dbidx, r.rm->dbs[i].path, r.rm->dbs[i].db_signature);
            if (err < 0) goto out;
        }
    } else if (have_ckpt) {
        start = ck.lsn;
        inst->log_signature = ck.log_signature;
        bool found = false;
        for (size_t i = 0; i < ngens; i++) found |= gens[i] == LSN_GEN(start);
        if (!found) {
            err = jet_report(JET_errMissingPreviousLogFile,
                             "recovery: the checkpoint names generation %u, which is missing from %s", LSN_GEN(start),
                             inst->p.log_path);
            goto out;
        }
        /* Generations are never deleted past the checkpoint: the log
         * reached gen_seen, so one missing at the end was taken away, and
         * with it commits that were acknowledged. */
        if (ck.gen_seen > gens[ngens - 1]) {
            err = jet_report(JET_errMissingLogFile,
                             "recovery: generation %u is missing from %s: the log reached it (the checkpoint saw it) "
                             "but the newest generation present is %u; it may hold acknowledged commits: put it back, "
                             "or restore from a backup",
                             ck.gen_seen, inst->p.log_path, gens[ngens - 1]);
            goto out;
        }
        if ((err = verify_to_end(inst, start)) < 0) goto out;
        for (uint32_t i = 0; i < ck.ndbs; i++) {
            err = redo_open_db(&r, ck.dbs[i].dbidx, ck.dbs[i].path, ck.dbs[i].db_signature);
            if (err < 0) goto out;
        }
    } else {
        struct log_header lh;
        char lp[JET_PATH_MAX];
        if ((err = log_file_name(lp, sizeof lp, inst->p.log_path, inst->p.base, gens[0])) < 0) goto out;
        if ((err = log_read_header(lp, &lh)) < 0) goto out;
        inst->log_signature = lh.signature;
        start = LSN_MAKE(gens[0], LOG_HEADER_SIZE);
        if ((err = verify_to_end(inst, start)) < 0) goto out;
    }

    uint32_t last = r.rm && r.rm->stop_gen ? r.rm->stop_gen : 0;
    err = log_reader_open(inst->p.log_path, inst->p.base, start, inst->log_signature, last, &rd);
    if (err < 0) goto out;
    /* Progress in generations, from the start to the last one present. */
    JET_PFNSTATUS status = jet_init_status;
    uint32_t first_gen = LSN_GEN(start), seen_gen = 0;
    uint32_t last_gen = last ? last : gens[ngens - 1];
    JET_SNPROG prog = {sizeof prog, 0, last_gen >= first_gen ? last_gen - first_gen + 1 : 1};
    if (status && (err = status(0, JET_snpRestore, JET_sntBegin, &prog)) < 0) goto stopped_by_callback;
    for (;;) {
        struct log_record rec;
        err = log_reader_next(rd, &rec);
        if (err < 0) goto out;
        if (err == 1) break;
        if (status && LSN_GEN(rec.lsn) != seen_gen) {
            seen_gen = LSN_GEN(rec.lsn);
            prog.cunitDone = seen_gen > first_gen ? seen_gen - first_gen : 0;
            if (prog.cunitDone > prog.cunitTotal) prog.cunitDone = prog.cunitTotal;
            if ((err = status(0, JET_snpRestore, JET_sntProgress, &prog)) < 0) goto stopped_by_callback;
        }
        if ((err = redo_record(&r, &rec)) < 0) goto out;
        if (r.stopped) break;
    }
    if (r.rm && !r.stopped && LSN_GEN(log_reader_end(rd)) < r.rm->gen_high) {
        err = jet_report(JET_errMissingRestoreLogFiles, "restore: the log ends in generation %u, the backup needs %u",
                         LSN_GEN(log_reader_end(rd)), r.rm->gen_high);
        goto out;
    }
    err = JET_errSuccess;
    redo_drop_pending(&r);
    lsn_t end = log_reader_end(rd);
    for (int i = 0; i < JET_MAX_DBS; i++) {
        struct redo_db *d = &r.dbs[i];
        if (d->fd < 0) continue;
        if ((err = os_fsync(d->fd)) < 0) goto out;
        d->hdr.state = DB_STATE_CLEAN;
        d->hdr.lsn_consistent = end;
        d->hdr.consistent_us = os_now_us();
        d->hdr.log_signature = inst->log_signature;
        memset(&d->hdr.copy, 0, sizeof d->hdr.copy); /* a restored copy is a live file now */
        if ((err = db_header_write(d->fd, &d->hdr)) < 0) goto out;
    }
    if (status) {
        /* The replay is done and the headers say so: there is nothing left
         * for the callback to stop, so its answer cannot change anything. */
        prog.cunitDone = prog.cunitTotal;
        (void)status(0, JET_snpRestore, JET_sntComplete, &prog);
    }
    *pnext_gen = gens[ngens - 1] + 1;
    if (r.rm && (r.rm->stop_gen || r.stopped)) {
        /* A point-in-time restore must not leave later generations for a
         * later recovery to replay: they move aside, never deleted. */
        for (size_t i = 0; i < ngens; i++) {
            if (gens[i] <= LSN_GEN(end)) continue;
            char from[JET_PATH_MAX], to[JET_PATH_MAX + 32];
            if (log_file_name(from, sizeof from, inst->p.log_path, inst->p.base, gens[i]) < 0) continue;
            snprintf(to, sizeof to, "%s.after-restore-point", from);
            if ((err = os_rename(from, to)) < 0) goto out;
        }
        *pnext_gen = LSN_GEN(end) + 1;
    }
    goto out;
stopped_by_callback:
    err = jet_report(err, "recovery: stopped by the status callback (%s)", JetErrorString(err));
out:
    if (rd) log_reader_close(rd);
    redo_drop_pending(&r);
    free(r.pending);
    for (int i = 0; i < JET_MAX_DBS; i++)
        if (r.dbs[i].fd >= 0) os_close(r.dbs[i].fd);
    free(gens);
    return err;
}
