/*
 * recovery.c -- crash recovery, run by JetInit before the instance serves.
 *
 * Redo only (see logrec.h): from the checkpoint position to the end of the
 * log, the page deltas of every committed transaction are applied in log
 * order, each guarded by the page's stamp (logrec.h: skipped when the page
 * has it already, refused with JET_errDbTimeTooOld or JET_errDbTimeTooNew
 * when the page is not the version it was computed against); deltas not
 * followed by their LR_COMMIT (the transaction in flight at the crash, or a
 * torn tail) are dropped.  A page torn by a crash in the middle of a
 * checkpoint write is taken from the double-write file instead (dwb.h).
 *
 * Pages are read once into a private map, changed there, and written back
 * through the double-write file when the map reaches its bound and at the
 * end, so a crash during recovery leaves pages the next recovery can use.
 * Until that first write no file is touched: a refusal found in the
 * replay (a page too old or too new) changes nothing.
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

#include "checkpoint.h"
#include "database.h"
#include "delta.h"
#include "diag.h"
#include "dwb.h"
#include "instance.h"
#include "logrec.h"
#include "os.h"
#include "page.h"
#include "recovery.h"
#include "restore.h"

struct redo_db {
    int fd;
    char path[JET_PATH_MAX];
    struct db_header hdr;
};

/* A delta of the transaction being read, applied at its LR_COMMIT. */
struct redo_delta {
    uint32_t dbidx, pgno;
    lsn_t lsn, before;
    uint8_t *delta;
    size_t n;
};

enum redo_pg_state { PG_OK, PG_ZERO, PG_BAD };

/* A page in the private map (open addressing on dbidx << 32 | pgno). */
struct redo_pg {
    uint64_t key;       /* + 1; 0 = empty slot */
    uint8_t *img;
    uint8_t state;      /* enum redo_pg_state, as read from the file */
    bool dirty;
};

struct redo {
    struct jet_instance *inst;
    const struct restore_map *rm;  /* restore mode, or NULL */
    const struct init_rstmap *rstmap; /* JetInit3's, or NULL */
    bool stopped;                  /* reached the requested stop point */
    lsn_t bound;                   /* end of the log: no page stamp can reach it */
    struct redo_db dbs[JET_MAX_DBS];
    struct redo_delta *pending;
    size_t npending, cap;
    struct redo_pg *map;
    size_t map_cap, map_n, map_max;
    struct dwb *dwb;               /* opened (emptied) at redo's first write */
    char dwb_path[JET_PATH_MAX];
    struct dwb_copy *copies;       /* its staged copies, read before anything is written */
    size_t ncopies;
    struct discard_note discard;   /* the last LR_DISCARD replayed */
    bool saw_discard;
    lsn_t max_skipped;             /* highest stamp of a page that needed no redo */
    uint32_t max_skipped_db, max_skipped_pgno;
    uint64_t txns, pages, applied, skipped;
};

static void redo_drop_pending(struct redo *r)
{
    for (size_t i = 0; i < r->npending; i++) free(r->pending[i].delta);
    r->npending = 0;
}

static JET_ERR map_flush(struct redo *r);
static JET_ERR redo_first_write(struct redo *r);

/* Closes a database of the replay, writing back its changed pages first
 * (a later attach may reuse the index for another file). */
static JET_ERR redo_close_db(struct redo *r, uint32_t dbidx)
{
    struct redo_db *d = &r->dbs[dbidx];
    if (d->fd < 0) return JET_errSuccess;
    JET_ERR err = map_flush(r);
    if (err >= 0 && (err = os_fsync(d->fd)) < 0) jet_report(err, "recovery: %s: fsync failed", d->path);
    os_close(d->fd);
    d->fd = -1;
    return err;
}

/* JetInit3's restore map: the file in which the database the log names by
 * path is recovered (path itself when the map does not name it). */
static const char *mapped_path(const struct redo *r, const char *path, const char **pfrom)
{
    const struct init_rstmap *map = r->rm ? NULL : r->rstmap;
    for (uint32_t i = 0; map && i < map->n; i++)
        if (!strcmp(path, map->m[i].from)) {
            if (pfrom) *pfrom = map->m[i].from;
            return map->m[i].to;
        }
    if (pfrom) *pfrom = NULL;
    return path;
}

static JET_ERR redo_open_db(struct redo *r, uint32_t dbidx, const char *path, uint64_t signature)
{
    struct redo_db *d = &r->dbs[dbidx];
    const char *from;
    path = mapped_path(r, path, &from);
    JET_ERR err = redo_close_db(r, dbidx);
    if (err < 0) return err;
    err = os_open(path, OS_OPEN_READ | OS_OPEN_WRITE, &d->fd);
    if (err < 0) {
        d->fd = -1;
        if (from)
            return jet_report(err,
                              "recovery: database %s (the restore map's new name for %s) cannot be opened: %s; the "
                              "log replayed does not hold the database's creation, so put the file there first",
                              path, from, JetErrorString(err));
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

/*
 * LR_CREATE under JetInit3's restore map: the database is wanted at a new
 * path where no file is, and the log holds its creation, so the file is
 * made again as JetCreateDatabase made it (header and meta page, neither
 * logged); the replay that follows rebuilds every page.  Only on request:
 * without a map a missing database stays an error, never a silent new file.
 */
static JET_ERR redo_create(struct redo *r, const struct log_record *rec)
{
    if (rec->len < LR_CREATE_HDR || rec->len - LR_CREATE_HDR >= JET_PATH_MAX)
        return jet_report(JET_errLogFileCorrupt, "recovery: create record at %u:%u is malformed", LSN_GEN(rec->lsn),
                          LSN_OFF(rec->lsn));
    char logged[JET_PATH_MAX];
    memcpy(logged, rec->payload + LR_CREATE_HDR, rec->len - LR_CREATE_HDR);
    logged[rec->len - LR_CREATE_HDR] = '\0';
    const char *from, *path = mapped_path(r, logged, &from);
    if (!from || os_exists(path)) return JET_errSuccess;
    uint32_t ps = get_le32(rec->payload + 4);
    if (ps != r->inst->p.page_size)
        return jet_report(JET_errPageSizeMismatch, "recovery: %s was created with %u-byte pages, the instance has %u",
                          logged, ps, r->inst->p.page_size);
    struct db_header h;
    memset(&h, 0, sizeof h);
    h.page_size = ps;
    h.db_signature = get_le64(rec->payload + 8);
    h.create_us = get_le64(rec->payload + 16);
    h.state = DB_STATE_JUST_CREATED;
    h.log_signature = r->inst->log_signature;
    uint8_t *page = calloc(1, ps);
    int fd = -1;
    JET_ERR err = page ? os_open(path, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE | OS_OPEN_EXCL, &fd)
                       : JET_errOutOfMemory;
    if (err >= 0) {
        page_init(page, ps, DB_PGNO_META, PAGE_T_META);
        put_le32(page + META_OFF_NPAGES, DB_FIRST_DATA_PGNO);
        page_seal(page, ps);
        err = os_pwrite(fd, page, ps, (uint64_t)DB_PGNO_META * ps);
    }
    if (err >= 0) err = db_header_write(fd, &h);
    if (fd >= 0) os_close(fd);
    free(page);
    if (err >= 0) {
        char dir[JET_PATH_MAX];
        os_dirname(dir, sizeof dir, path);
        err = os_sync_dir(dir);
    }
    if (err < 0) {
        char eb[128];
        return jet_report(err, "recovery: cannot create %s (the restore map's new name for %s): %s", path, from,
                          os_reason(err, eb, sizeof eb));
    }
    fprintf(stderr, "jet: recovery: %s created again from the log, in %s (JetInit3 restore map)\n", logged, path);
    return JET_errSuccess;
}

static size_t map_slot(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 21) & (cap - 1); }

static JET_ERR map_grow(struct redo *r)
{
    size_t ncap = r->map_cap ? r->map_cap * 2 : 1024;
    struct redo_pg *nm = calloc(ncap, sizeof *nm);
    if (!nm) return JET_errOutOfMemory;
    for (size_t i = 0; i < r->map_cap; i++) {
        if (!r->map[i].key) continue;
        size_t j = map_slot(r->map[i].key, ncap);
        while (nm[j].key) j = (j + 1) & (ncap - 1);
        nm[j] = r->map[i];
    }
    free(r->map);
    r->map = nm;
    r->map_cap = ncap;
    return JET_errSuccess;
}

/* Writes every changed page of the map back, through the double-write
 * file, and fsyncs the files; then empties the map. */
static JET_ERR map_flush(struct redo *r)
{
    uint32_t ps = r->inst->p.page_size;
    struct dwb_page pages[DWB_MAX_PAGES];
    uint32_t dbx[DWB_MAX_PAGES];
    bool touched[JET_MAX_DBS] = {0};
    size_t k = 0, i = 0;
    JET_ERR err = JET_errSuccess;
    if (!r->map_n) return JET_errSuccess;
    for (;;) {
        bool last = i == r->map_cap;
        if (!last) {
            struct redo_pg *p = &r->map[i++];
            if (!p->key || !p->dirty) continue;
            uint32_t dbidx = (uint32_t)((p->key - 1) >> 32), pgno = (uint32_t)(p->key - 1);
            page_seal(p->img, ps);
            pages[k] = (struct dwb_page){r->dbs[dbidx].hdr.db_signature, r->dbs[dbidx].path, pgno, p->img};
            dbx[k++] = dbidx;
            p->dirty = false;
        }
        if (k == 0 || (k < DWB_MAX_PAGES && !last)) {
            if (last) break;
            continue;
        }
        /* A browse replays into an overlay that dies with the process: a
         * torn write there cannot outlive a crash, so no staging. */
        bool scratch = r->rm && r->rm->scratch_target;
        if (!scratch && !r->dwb && (err = redo_first_write(r)) < 0) return err;
        if (!scratch && (err = dwb_stage(r->dwb, pages, k)) < 0) return err;
        for (size_t j = 0; j < k; j++) {
            struct redo_db *d = &r->dbs[dbx[j]];
            err = os_pwrite(d->fd, scratch ? pages[j].image : dwb_image(r->dwb, j), ps, (uint64_t)pages[j].pgno * ps);
            if (err < 0) return jet_report(err, "recovery: %s: writing page %u failed", d->path, pages[j].pgno);
            touched[dbx[j]] = true;
            r->pages++;
        }
        for (uint32_t d = 0; d < JET_MAX_DBS && !scratch; d++)
            if (touched[d] && (err = os_fsync(r->dbs[d].fd)) < 0)
                return jet_report(err, "recovery: %s: fsync failed", r->dbs[d].path);
        memset(touched, 0, sizeof touched);
        k = 0;
        if (last) break;
    }
    for (size_t j = 0; j < r->map_cap; j++) {
        free(r->map[j].img);
        r->map[j] = (struct redo_pg){0};
    }
    r->map_n = 0;
    return err;
}

/* The map's copy of a page, read (and checked) from its file if needed. */
static JET_ERR map_get(struct redo *r, uint32_t dbidx, uint32_t pgno, struct redo_pg **pp)
{
    uint32_t ps = r->inst->p.page_size;
    uint64_t key = ((uint64_t)dbidx << 32 | pgno) + 1;
    JET_ERR err;
    if (r->map_cap) {
        for (size_t i = map_slot(key, r->map_cap); r->map[i].key; i = (i + 1) & (r->map_cap - 1))
            if (r->map[i].key == key) {
                *pp = &r->map[i];
                return JET_errSuccess;
            }
    }
    if (r->map_n >= r->map_max && (err = map_flush(r)) < 0) return err;
    if ((r->map_n + 1) * 2 > r->map_cap && (err = map_grow(r)) < 0) return err;
    uint8_t *img = malloc(ps);
    if (!img) return JET_errOutOfMemory;
    if ((err = os_pread_full(r->dbs[dbidx].fd, img, ps, (uint64_t)pgno * ps)) < 0) {
        free(img);
        return jet_report(err, "recovery: %s: reading page %u failed", r->dbs[dbidx].path, pgno);
    }
    uint8_t state = PG_OK;
    bool dirty = false;
    if (page_is_zero(img, ps)) state = PG_ZERO;
    else if (page_pgno(img) != pgno || get_le64(img) != page_checksum(img, ps)) state = PG_BAD;
    if (state != PG_OK) {
        /* Torn (or never landed) in the middle of a write: the version that
         * was being written is whole in the double-write file. */
        for (size_t c = 0; c < r->ncopies; c++)
            if (r->copies[c].pgno == pgno && r->copies[c].db_signature == r->dbs[dbidx].hdr.db_signature) {
                memcpy(img, r->copies[c].image, ps);
                state = PG_OK;
                dirty = true;
                break;
            }
    }
    size_t i = map_slot(key, r->map_cap);
    while (r->map[i].key) i = (i + 1) & (r->map_cap - 1);
    r->map[i] = (struct redo_pg){key, img, state, dirty};
    r->map_n++;
    *pp = &r->map[i];
    return JET_errSuccess;
}

static void at_str(lsn_t l, char *buf, size_t cb) { snprintf(buf, cb, "%u:%u", LSN_GEN(l), LSN_OFF(l)); }

/* A page stamped at or past the end of the log: no record of it wrote that. */
static JET_ERR past_the_end(const char *path, uint32_t pgno, lsn_t stamp, lsn_t end)
{
    return jet_report(JET_errDbTimeTooNew,
                      "recovery: %s page %u has stamp %u:%u, past the end of the log (%u:%u): the page is newer than "
                      "this log, so the database and the log do not belong together",
                      path, pgno, LSN_GEN(stamp), LSN_OFF(stamp), LSN_GEN(end), LSN_OFF(end));
}

/* Applies one committed delta if the page needs it (logrec.h's rules). */
static JET_ERR redo_delta(struct redo *r, const struct redo_delta *dl)
{
    uint32_t ps = r->inst->p.page_size;
    struct redo_db *d = &r->dbs[dl->dbidx];
    struct redo_pg *p = NULL;
    char at[32], want[32], has[32];
    JET_ERR err = map_get(r, dl->dbidx, dl->pgno, &p);
    if (err < 0) return err;
    lsn_t stamp = p->state == PG_OK ? page_lsn(p->img) : 0;
    /* Positions as text, for the messages only: formatting them for every
     * delta showed in replay profiles. */
#define POSITIONS() (at_str(dl->lsn, at, sizeof at), at_str(dl->before, want, sizeof want), at_str(stamp, has, sizeof has))
    if (p->state == PG_OK && stamp >= r->bound) return past_the_end(d->path, dl->pgno, stamp, r->bound);
    if (p->state == PG_OK && stamp >= dl->lsn) {
        if (stamp > r->max_skipped) {
            r->max_skipped = stamp;
            r->max_skipped_db = dl->dbidx;
            r->max_skipped_pgno = dl->pgno;
        }
        r->skipped++;
        return JET_errSuccess;
    }
    if (dl->before) {
        if (p->state == PG_BAD || p->state == PG_ZERO || stamp != dl->before) POSITIONS();
        if (p->state == PG_BAD)
            return jet_report(JET_errReadVerifyFailure,
                              "recovery: %s page %u does not verify (checksum or page number) and the double-write "
                              "file has no copy of it; the log record at %s changes it, so it cannot be brought "
                              "forward: restore from a backup",
                              d->path, dl->pgno, at);
        if (p->state == PG_ZERO || stamp < dl->before)
            return jet_report(JET_errDbTimeTooOld,
                              "recovery: %s page %u is older than the log expects: its stamp is %s%s, the log record at "
                              "%s was made against %s (a change between them is missing)",
                              d->path, dl->pgno, has, p->state == PG_ZERO ? " (never written)" : "", at, want);
        if (stamp != dl->before)
            return jet_report(JET_errDbTimeTooNew,
                              "recovery: %s page %u is newer than the log expects: its stamp is %s, the log record at "
                              "%s was made against %s and stamps %s (a version this log never wrote)",
                              d->path, dl->pgno, has, at, want, at);
    } else {
        memset(p->img, 0, ps);
    }
    if ((err = delta_apply(p->img, ps, dl->delta, dl->n, NULL, NULL)) < 0) {
        POSITIONS();
        return jet_report(err, "recovery: the log record at %s for %s page %u: %s", at, d->path, dl->pgno,
                          JetGetLastErrorDetail());
    }
#undef POSITIONS
    page_set_lsn(p->img, dl->lsn);
    p->state = PG_OK;
    p->dirty = true;
    r->applied++;
    return JET_errSuccess;
}

static JET_ERR redo_commit(struct redo *r, lsn_t end)
{
    for (size_t i = 0; i < r->npending; i++) {
        struct redo_delta *dl = &r->pending[i];
        struct redo_db *d = &r->dbs[dl->dbidx];
        /* A restore brings forward only the databases it was given. */
        if (r->rm && d->fd < 0) continue;
        if (d->fd < 0)
            return jet_report(JET_errLogFileCorrupt,
                              "recovery: log changes page %u of database %u, which is not attached at %u:%u",
                              dl->pgno, dl->dbidx, LSN_GEN(end), LSN_OFF(end));
        JET_ERR err = redo_delta(r, dl);
        if (err < 0) return err;
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
static JET_ERR verify_to_end(struct jet_instance *inst, lsn_t start, lsn_t *pend)
{
    struct log_reader *rd = NULL;
    struct log_record rec;
    JET_ERR err = log_reader_open(inst->p.log_path, inst->p.base, start, inst->log_signature, 0, &rd);
    while (err >= 0 && (err = log_reader_next(rd, &rec)) == JET_errSuccess) {}
    if (err >= 0) *pend = log_reader_end(rd);
    if (rd) log_reader_close(rd);
    return err < 0 ? err : JET_errSuccess;
}

/* After the log is known good and before redo: the double-write file's
 * copies, for pages torn by the crash (dwb.h).  Nothing is written yet. */
static JET_ERR redo_prepare_writes(struct redo *r)
{
    struct jet_instance *inst = r->inst;
    r->map_max = inst->p.cache_pages > 1024 ? inst->p.cache_pages : 1024;
    JET_ERR err = dwb_path(r->dwb_path, sizeof r->dwb_path, inst->p.system_path, inst->p.base);
    if (err < 0 || r->rm) return err; /* a restore's copies come from the set: nothing was torn */
    return dwb_load(r->dwb_path, inst->p.page_size, &r->copies, &r->ncopies);
}

/* Before redo's first write overwrites the double-write file: every page
 * it would put back goes back on disk now, so a crash during recovery
 * still finds each torn page whole or its copy. */
static JET_ERR redo_first_write(struct redo *r)
{
    struct jet_instance *inst = r->inst;
    unsigned repaired = 0;
    JET_ERR err;
    if (!r->rm && (err = dwb_repair(r->dwb_path, inst->p.page_size, &repaired)) < 0) return err;
    if (repaired)
        fprintf(stderr, "jet: recovery: %u torn page%s put back from %s\n", repaired, repaired == 1 ? "" : "s",
                r->dwb_path);
    return dwb_open(r->dwb_path, inst->p.page_size, &r->dwb);
}

static JET_ERR redo_record(struct redo *r, const struct log_record *rec)
{
    uint32_t ps = r->inst->p.page_size;
    switch (rec->type) {
    case LR_DELTA: {
        if (rec->len < LR_DELTA_HDR || delta_apply(NULL, ps, rec->payload + LR_DELTA_HDR, rec->len - LR_DELTA_HDR,
                                                   NULL, NULL) < 0)
            return jet_report(JET_errLogFileCorrupt, "recovery: delta record at %u:%u is malformed (%u bytes)",
                              LSN_GEN(rec->lsn), LSN_OFF(rec->lsn), rec->len);
        uint32_t dbidx = get_le32(rec->payload);
        if (dbidx >= JET_MAX_DBS)
            return jet_report(JET_errLogFileCorrupt, "recovery: delta record at %u:%u names database %u",
                              LSN_GEN(rec->lsn), LSN_OFF(rec->lsn), dbidx);
        if (r->npending == r->cap) {
            size_t ncap = r->cap ? r->cap * 2 : 64;
            struct redo_delta *np = realloc(r->pending, ncap * sizeof *np);
            if (!np) return JET_errOutOfMemory;
            r->pending = np;
            r->cap = ncap;
        }
        size_t n = rec->len - LR_DELTA_HDR;
        uint8_t *copy = malloc(n ? n : 1);
        if (!copy) return JET_errOutOfMemory;
        memcpy(copy, rec->payload + LR_DELTA_HDR, n);
        r->pending[r->npending++] = (struct redo_delta){dbidx, get_le32(rec->payload + 4), rec->lsn,
                                                        get_le64(rec->payload + 8), copy, n};
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
        if (r->rm && r->rm->res && rec->len >= 8) r->rm->res->last_commit_us = get_le64(rec->payload);
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
            return redo_close_db(r, dbidx);
        }
        return redo_open_db(r, dbidx, path, get_le64(rec->payload + 8));
    }
    case LR_CREATE:
        return redo_create(r, rec);
    case LR_DETACH: {
        uint32_t dbidx = rec->len >= 4 ? get_le32(rec->payload) : JET_MAX_DBS;
        if (dbidx >= JET_MAX_DBS) return jet_report(JET_errLogFileCorrupt, "recovery: bad detach record");
        return redo_close_db(r, dbidx);
    }
    case LR_DISCARD:
        if (rec->len >= DISCARD_PAYLOAD) {
            struct discard_note n;
            char when[40];
            discard_decode(rec->payload, &n);
            r->discard = n;
            r->saw_discard = true;
            fprintf(stderr,
                    "jet: note: the log was cut at %u:%u on %s after damage in generation %u at offset %u "
                    "(jetutil recover --discard-after-damage); %llu commit(s) after the cut were discarded\n",
                    LSN_GEN(n.cut), LSN_OFF(n.cut), os_utc(n.time_us, 0, when, sizeof when), n.gen, n.damage_off,
                    (unsigned long long)n.commits);
        }
        return JET_errSuccess;
    default:
        /* Record types this version does not redo (backup markers) carry
         * no page changes. */
        return JET_errSuccess;
    }
}

JET_ERR recovery_run(struct jet_instance *inst, uint32_t *pnext_gen, const struct recovery_opts *opts)
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
    r.rstmap = opts ? opts->rstmap : NULL;
    if ((err = ckpt_path(inst, path, sizeof path)) < 0) return err;
    have_ckpt = !r.rm && os_exists(path);
    if (have_ckpt && (err = ckpt_read(path, &ck)) < 0) return err;
    if ((err = log_list(inst->p.log_path, inst->p.base, &gens, &ngens)) < 0) return err;

    if (ngens == 0) {
        if (have_ckpt && ck.ndbs > 0) {
            err = jet_report(JET_errMissingLogFile,
                             "recovery: generation %u is missing from %s (the checkpoint needs it for %s, and no log "
                             "file of base '%s' is there); it may hold acknowledged commits: put it back, or restore "
                             "from a backup",
                             LSN_GEN(ck.lsn), inst->p.log_path, ck.dbs[0].path, inst->p.base);
            goto out;
        }
        inst->log_signature = have_ckpt ? ck.log_signature : os_random64();
        *pnext_gen = have_ckpt && LSN_GEN(ck.lsn) ? LSN_GEN(ck.lsn) + 1 : 1;
        goto out;
    }
    if (r.rm) {
        start = r.rm->lsn_start;
        inst->log_signature = r.rm->log_signature;
        /* A restore may stop before damage later in the set, so it does not
         * read ahead: a page newer than the log is caught after the replay
         * (max_skipped), before the copy is declared consistent. */
        r.bound = UINT64_MAX;
        if ((err = redo_prepare_writes(&r)) < 0) goto out;
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
        /* A discard after damage (discard.c) moved the later generations
         * aside on purpose, and left a note saying where it cut. */
        char note[JET_PATH_MAX];
        if ((err = discard_note_path(note, sizeof note, inst->p.system_path, inst->p.base)) < 0) goto out;
        if (os_exists(note)) {
            if ((err = discard_note_read(note, &inst->discard)) < 0) goto out;
            inst->discard_pending = true;
        }
        if (ck.gen_seen > gens[ngens - 1] &&
            !(inst->discard_pending && LSN_GEN(inst->discard.cut) == gens[ngens - 1])) {
            err = jet_report(JET_errMissingLogFile,
                             "recovery: generation %u is missing from %s: the log reached it (the checkpoint saw it) "
                             "but the newest generation present is %u; it may hold acknowledged commits: put it back, "
                             "or restore from a backup",
                             ck.gen_seen, inst->p.log_path, gens[ngens - 1]);
            goto out;
        }
        if ((err = verify_to_end(inst, start, &r.bound)) < 0) goto out;
        if ((err = redo_prepare_writes(&r)) < 0) goto out;
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
        if ((err = verify_to_end(inst, start, &r.bound)) < 0) goto out;
        if ((err = redo_prepare_writes(&r)) < 0) goto out;
    }

    uint32_t last = r.rm && r.rm->stop_gen ? r.rm->stop_gen : 0;
    err = log_reader_open(inst->p.log_path, inst->p.base, start, inst->log_signature, last, &rd);
    if (err < 0) goto out;
    /* Progress in generations, from the start to the last one present. */
    JET_PFNSTATUS status = opts ? opts->status : NULL;
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
    if (r.max_skipped >= end) {
        err = past_the_end(r.dbs[r.max_skipped_db].path, r.max_skipped_pgno, r.max_skipped, end);
        goto out;
    }
    if ((err = map_flush(&r)) < 0) goto out;
    if (r.rm && r.rm->res) {
        r.rm->res->gen_first = LSN_GEN(start);
        r.rm->res->gen_end = LSN_GEN(end);
    }
    for (int i = 0; i < JET_MAX_DBS; i++) {
        struct redo_db *d = &r.dbs[i];
        if (d->fd < 0) continue;
        if ((err = os_fsync(d->fd)) < 0) goto out;
        d->hdr.state = DB_STATE_CLEAN;
        d->hdr.lsn_consistent = end;
        d->hdr.consistent_us = os_now_us();
        d->hdr.log_signature = inst->log_signature;
        memset(&d->hdr.copy, 0, sizeof d->hdr.copy); /* a restored copy is a live file now */
        /* A discard after damage stays visible in the file, for every
         * later backup and restore of it (logrec.h LR_DISCARD). */
        const struct discard_note *dn = inst->discard_pending ? &inst->discard : r.saw_discard ? &r.discard : NULL;
        if (dn) {
            d->hdr.discard.time_us = dn->time_us;
            d->hdr.discard.cut = dn->cut;
            d->hdr.discard.commits = dn->commits;
        }
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
    for (size_t i = 0; i < r.map_cap; i++) free(r.map[i].img);
    free(r.map);
    dwb_free_copies(r.copies, r.ncopies);
    if (r.dwb) {
        /* Kept after a failure: a batch may have been cut short. */
        JET_ERR e2 = dwb_close(r.dwb, err >= 0);
        if (err >= 0 && e2 < 0) err = e2;
    }
    for (int i = 0; i < JET_MAX_DBS; i++)
        if (r.dbs[i].fd >= 0) os_close(r.dbs[i].fd);
    free(gens);
    return err;
}
