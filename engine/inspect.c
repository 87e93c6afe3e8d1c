/*
 * inspect.c -- offline, read-only inspection of database, log and
 * checkpoint files (jet_inspect.h).  Owns nothing beyond each call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "checkpoint.h"
#include "dbfile.h"
#include "delta.h"
#include "diag.h"
#include "instance.h"
#include "jet_inspect.h"
#include "log.h"
#include "logrec.h"
#include "os.h"
#include "page.h"
#include "txn.h"

int JetInspectFileKind(const char *path)
{
    uint8_t b[16];
    int fd;
    if (os_open(path, OS_OPEN_READ, &fd) < 0) return 0;
    JET_ERR err = os_pread_full(fd, b, sizeof b, 0);
    os_close(fd);
    if (err < 0) return 0;
    uint32_t magic = get_le32(b + 8);
    if (magic == DB_MAGIC) return 1;
    if (magic == LOG_MAGIC) return 2;
    if (magic == 0x54504B43u) return 3;
    return 0;
}

JET_ERR JetInspectDatabaseHeader(const char *path, JET_INSPECT_DBHEADER *info)
{
    jet_report_clear();
    int fd;
    struct db_header h;
    uint8_t b0[DB_HEADER_BYTES];
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) {
        char eb[128];
        return jet_report(err, "%s: cannot open: %s", path, os_reason(err, eb, sizeof eb));
    }
    memset(info, 0, sizeof *info);
    if ((err = db_header_read(fd, path, &h)) < 0) goto out;
    for (int c = 0; c < 2; c++) {
        struct db_header t;
        if (os_pread_full(fd, b0, sizeof b0, (uint64_t)c * h.page_size) >= 0)
            info->copy_valid[c] = db_header_decode(b0, &t, path, c) >= 0;
    }
    jet_report_clear();
    info->page_size = h.page_size;
    info->format_version = DB_VERSION;
    info->state = h.state;
    info->state_name = db_state_name(h.state);
    info->db_signature = h.db_signature;
    info->log_signature = h.log_signature;
    info->lsn_consistent = h.lsn_consistent;
    info->lsn_attach = h.lsn_attach;
    info->create_us = h.create_us;
    info->consistent_us = h.consistent_us;
    info->discard_us = h.discard.time_us;
    info->discard_cut = h.discard.cut;
    info->discard_commits = h.discard.commits;
    info->update_seq = h.update_seq;
    for (int i = 0; i < DB_BK_COUNT; i++) {
        info->backup[i].gen_low = h.backup[i].gen_low;
        info->backup[i].gen_high = h.backup[i].gen_high;
        info->backup[i].time_us = h.backup[i].time_us;
        info->backup[i].backup_id = h.backup[i].backup_id;
        info->backup[i].predecessor_id = h.backup[i].predecessor_id;
        info->backup[i].lsn_mark = h.backup[i].lsn_mark;
    }
    os_fsize(fd, &info->file_size);
    uint8_t *meta = malloc(h.page_size);
    if (meta && os_pread_full(fd, meta, h.page_size, (uint64_t)DB_PGNO_META * h.page_size) >= 0 &&
        page_verify(meta, h.page_size, DB_PGNO_META, path) >= 0)
        info->npages = get_le32(meta + META_OFF_NPAGES);
    free(meta);
out:
    os_close(fd);
    return err;
}

JET_ERR JetInspectLogHeader(const char *path, JET_INSPECT_LOGHEADER *info)
{
    jet_report_clear();
    struct log_header h;
    JET_ERR err = log_read_header(path, &h);
    if (err < 0) return err;
    memset(info, 0, sizeof *info);
    info->generation = h.generation;
    info->format_version = LOG_VERSION;
    info->file_size = h.file_size;
    info->page_size = h.page_size;
    info->signature = h.signature;
    info->create_us = h.create_us;
    info->prev_create_us = h.prev_create_us;
    info->prev_hash = h.prev_hash;
    memcpy(info->base, h.base, 4);
    return JET_errSuccess;
}

JET_ERR JetInspectCheckpoint(const char *path, JET_INSPECT_CHECKPOINT *info)
{
    jet_report_clear();
    struct ckpt_file ck;
    JET_ERR err = ckpt_read(path, &ck);
    if (err < 0) return err;
    memset(info, 0, sizeof *info);
    info->log_signature = ck.log_signature;
    info->lsn = ck.lsn;
    info->ndbs = ck.ndbs;
    for (uint32_t i = 0; i < ck.ndbs && i < 8; i++) snprintf(info->db_paths[i], sizeof info->db_paths[i], "%s", ck.dbs[i].path);
    return JET_errSuccess;
}

JET_ERR JetInspectLogRecords(const char *dir, const char *base, uint32_t gen_first, uint32_t gen_last,
                             int (*fn)(void *arg, const JET_INSPECT_LOGRECORD *rec), void *arg, int *ptorn)
{
    uint32_t *gens = NULL;
    size_t n = 0;
    struct log_reader *rd = NULL;
    JET_ERR err = log_list(dir, base, &gens, &n);
    if (err < 0) return err;
    if (n == 0) {
        free(gens);
        return jet_report(JET_errFileNotFound, "%s: no log generation of base '%s'", dir, base);
    }
    if (!gen_first) gen_first = gens[0];
    free(gens);
    err = log_reader_open(dir, base, LSN_MAKE(gen_first, LOG_HEADER_SIZE), 0, gen_last, &rd);
    if (err < 0) return err;
    JET_INSPECT_LOGRECORD *r = malloc(sizeof *r);
    if (!r) {
        log_reader_close(rd);
        return JET_errOutOfMemory;
    }
    for (;;) {
        struct log_record rec;
        err = log_reader_next(rd, &rec);
        if (err < 0) break;
        if (err == 1) {
            err = JET_errSuccess;
            break;
        }
        memset(r, 0, sizeof *r);
        r->lsn = rec.lsn;
        r->length = rec.len;
        r->type = rec.type;
        switch (rec.type) {
        case LR_DELTA:
            r->type_name = "delta";
            r->malformed = 1;
            if (rec.len >= LR_DELTA_HDR) {
                unsigned nr = 0;
                size_t bytes = 0;
                r->dbidx = get_le32(rec.payload);
                r->pgno = get_le32(rec.payload + 4);
                r->before = get_le64(rec.payload + 8);
                if (delta_apply(NULL, PAGE_SIZE_MAX, rec.payload + LR_DELTA_HDR, rec.len - LR_DELTA_HDR, &nr, &bytes) >=
                    0) {
                    r->malformed = 0;
                    r->nranges = nr;
                    r->delta_bytes = (uint32_t)bytes;
                }
            }
            break;
        case LR_COMMIT:
            r->type_name = "commit";
            if (rec.len >= 16) {
                r->commit_us = get_le64(rec.payload);
                r->txn_id = get_le64(rec.payload + 8);
            }
            break;
        case LR_ATTACH:
        case LR_CREATE: {
            /* Both: u32 dbidx first, the path after a fixed header. */
            size_t hdr = rec.type == LR_ATTACH ? LR_ATTACH_HDR : LR_CREATE_HDR;
            r->type_name = rec.type == LR_ATTACH ? "attach" : "create";
            if (rec.len >= hdr) {
                r->dbidx = get_le32(rec.payload);
                size_t pl = rec.len - hdr;
                if (pl >= sizeof r->path) pl = sizeof r->path - 1;
                memcpy(r->path, rec.payload + hdr, pl);
            }
            break;
        }
        case LR_DISCARD:
            r->type_name = "discard";
            if (rec.len >= DISCARD_PAYLOAD) {
                struct discard_note dn;
                discard_decode(rec.payload, &dn);
                r->before = dn.cut;
                r->commit_us = dn.time_us;
                r->txn_id = dn.commits;
            }
            break;
        case LR_DETACH:
            r->type_name = "detach";
            if (rec.len >= 4) r->dbidx = get_le32(rec.payload);
            break;
        case LR_BACKUP:
            r->type_name = "backup";
            if (rec.len >= LR_BACKUP_SIZE) r->txn_id = get_le64(rec.payload);
            break;
        default: r->type_name = "?"; break;
        }
        if (fn(arg, r)) break;
    }
    if (ptorn) *ptorn = log_reader_tail_torn(rd);
    free(r);
    log_reader_close(rd);
    return err;
}

/* ---- offline check ---- */

struct ro_pager {
    int fd;
    uint32_t ps;
    const char *path;
    uint8_t **held;   /* one buffer per outstanding get, by depth */
    size_t nheld, cap;
};

static JET_ERR ro_get(void *ctx, uint32_t pgno, const uint8_t **pp)
{
    struct ro_pager *r = ctx;
    if (r->nheld == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        uint8_t **nh = realloc(r->held, nc * sizeof *nh);
        if (!nh) return JET_errOutOfMemory;
        for (size_t i = r->cap; i < nc; i++) nh[i] = NULL;
        r->held = nh;
        r->cap = nc;
    }
    if (!r->held[r->nheld] && !(r->held[r->nheld] = malloc(r->ps))) return JET_errOutOfMemory;
    uint8_t *b = r->held[r->nheld];
    JET_ERR err = os_pread_full(r->fd, b, r->ps, (uint64_t)pgno * r->ps);
    if (err >= 0) err = page_verify(b, r->ps, pgno, r->path);
    if (err < 0) return err;
    r->nheld++;
    *pp = b;
    return JET_errSuccess;
}

static void ro_put(void *ctx, uint32_t pgno)
{
    struct ro_pager *r = ctx;
    (void)pgno;
    if (r->nheld) r->nheld--;
}

static JET_ERR ro_mut(void *ctx, uint32_t pgno, uint8_t **pp)
{
    (void)ctx, (void)pgno, (void)pp;
    return JET_errInvalidParameter;
}

static JET_ERR ro_alloc(void *ctx, uint8_t t, uint32_t *p, uint8_t **pp)
{
    (void)ctx, (void)t, (void)p, (void)pp;
    return JET_errInvalidParameter;
}

static JET_ERR ro_free(void *ctx, uint32_t pgno)
{
    (void)ctx, (void)pgno;
    return JET_errInvalidParameter;
}

static void problem(JET_INSPECT_CHECK *st, void (*report)(void *, const char *), void *arg, const char *msg)
{
    st->problems++;
    if (report) report(arg, msg);
}

JET_ERR JetInspectCheckDatabase(const char *path, void (*report)(void *arg, const char *msg), void *arg,
                                JET_INSPECT_CHECK *stats)
{
    return JetInspectCheckDatabase2(path, report, arg, NULL, stats);
}

static unsigned fill_pct(uint64_t used, uint64_t pages, uint32_t ps)
{
    return pages ? (unsigned)(used * 100 / (pages * bt_page_room(ps))) : 100;
}

JET_ERR JetInspectCheckDatabase2(const char *path, void (*report)(void *arg, const char *msg), void *arg,
                                 void (*table)(void *arg, const JET_INSPECT_TABLE *t), JET_INSPECT_CHECK *stats)
{
    JET_INSPECT_CHECK st;
    struct db_header h;
    struct ro_pager r = {.fd = -1, .path = path};
    uint8_t *pg = NULL, *free_seen = NULL;
    char msg[600];
    JET_ERR err = os_open(path, OS_OPEN_READ, &r.fd);
    memset(&st, 0, sizeof st);
    if (err < 0) {
        char eb[128];
        return jet_report(err, "%s: cannot open: %s", path, os_reason(err, eb, sizeof eb));
    }
    if ((err = db_header_read(r.fd, path, &h)) < 0) goto out;
    r.ps = h.page_size;
    pg = malloc(r.ps);
    if (!pg) {
        err = JET_errOutOfMemory;
        goto out;
    }
    if ((err = os_pread_full(r.fd, pg, r.ps, (uint64_t)DB_PGNO_META * r.ps)) < 0) goto out;
    if (page_verify(pg, r.ps, DB_PGNO_META, path) < 0 || page_type(pg) != PAGE_T_META) {
        snprintf(msg, sizeof msg, "%s: meta page %u is damaged: %s", path, DB_PGNO_META, JetGetLastErrorDetail());
        problem(&st, report, arg, msg);
        err = JET_errDatabaseCorrupted;
        goto out;
    }
    uint32_t npages = get_le32(pg + META_OFF_NPAGES), free_head = get_le32(pg + META_OFF_FREE_HEAD);
    uint32_t free_count = get_le32(pg + META_OFF_FREE_COUNT), cat = get_le32(pg + META_OFF_CATALOG);
    st.pages = npages;
    /* 1. Every page verifies. */
    for (uint32_t p = DB_PGNO_META; p < npages; p++) {
        if ((err = os_pread_full(r.fd, pg, r.ps, (uint64_t)p * r.ps)) < 0) goto out;
        if (page_verify(pg, r.ps, p, path) < 0) problem(&st, report, arg, JetGetLastErrorDetail());
    }
    err = JET_errSuccess;
    /* 2. The free list is a chain of free pages of the recorded length. */
    free_seen = calloc(npages ? npages : 1, 1);
    uint32_t p = free_head, count = 0;
    while (p && free_seen) {
        if (p >= npages || free_seen[p]) {
            snprintf(msg, sizeof msg, "%s: free list reaches page %u %s", path, p,
                     p >= npages ? "beyond the file's page count" : "twice (a cycle)");
            problem(&st, report, arg, msg);
            break;
        }
        free_seen[p] = 1;
        const uint8_t *fp;
        if (ro_get(&r, p, &fp) < 0) {
            problem(&st, report, arg, JetGetLastErrorDetail());
            break;
        }
        if (page_type(fp) != PAGE_T_FREE) {
            snprintf(msg, sizeof msg, "%s: free list page %u has type %u", path, p, page_type(fp));
            problem(&st, report, arg, msg);
        }
        uint32_t next = page_aux1(fp);
        ro_put(&r, p);
        count++;
        p = next;
    }
    st.free_pages = count;
    if (count != free_count) {
        snprintf(msg, sizeof msg, "%s: free list holds %u pages, the meta page says %u", path, count, free_count);
        problem(&st, report, arg, msg);
    }
    /* 3. The catalog and every table hold their B+tree invariants. */
    struct bt_pager btp = {&r, r.ps, ro_get, ro_put, ro_mut, ro_alloc, ro_free};
    if (cat) {
        struct bt_stats bs;
        if (bt_check(&btp, cat, &bs) < 0) {
            snprintf(msg, sizeof msg, "catalog (root page %u): %s", cat, JetGetLastErrorDetail());
            problem(&st, report, arg, msg);
        } else {
            uint8_t key[JET_cbKeyMost + 1];
            size_t kl = 0;
            enum bt_seek_op how = BT_FIRST;
            while (bt_seek(&btp, cat, key, kl, how, key, &kl) == JET_errSuccess) {
                uint8_t v[4];
                size_t vl = 0;
                how = BT_GT;
                key[kl] = '\0';
                st.tables++;
                if (bt_get(&btp, cat, key, kl, v, sizeof v, &vl) < 0 || vl != 4) {
                    snprintf(msg, sizeof msg, "catalog entry for table '%s' is unreadable", (char *)key);
                    problem(&st, report, arg, msg);
                    continue;
                }
                uint32_t root = get_le32(v);
                if (bt_check(&btp, root, &bs) < 0) {
                    snprintf(msg, sizeof msg, "table '%s' (root page %u): %s", (char *)key, root,
                             JetGetLastErrorDetail());
                    problem(&st, report, arg, msg);
                    continue;
                }
                st.entries += bs.entries;
                st.leaf_pages += bs.leaf_pages;
                st.branch_pages += bs.branch_pages;
                st.overflow_pages += bs.overflow_pages;
                JET_INSPECT_TABLE ti = {(const char *)key, root, bs.depth, bs.entries, bs.leaf_pages,
                                        bs.branch_pages, bs.overflow_pages, fill_pct(bs.leaf_used, bs.leaf_pages, r.ps),
                                        fill_pct(bs.branch_used, bs.branch_pages, r.ps)};
                if (table) table(arg, &ti);
            }
        }
    }
    if (st.problems) err = jet_report(JET_errDatabaseCorrupted, "%s: %u problem(s) found", path, st.problems);
out:
    if (stats) *stats = st;
    for (size_t i = 0; i < r.cap; i++) free(r.held[i]);
    free(r.held);
    free(pg);
    free(free_seen);
    os_close(r.fd);
    return err;
}

/* ---- offline read of a cleanly shut-down database ---- */

JET_ERR JetInspectReadDatabase(const char *path,
                               int (*fn)(void *arg, const char *table, const uint8_t *key, size_t klen,
                                         const uint8_t *val, size_t vlen),
                               void *arg)
{
    struct db_header h;
    struct ro_pager r = {.fd = -1, .path = path};
    uint8_t *meta = NULL, *val = NULL;
    size_t vcap = 1u << 16;
    bool stopped = false;
    JET_ERR err = os_open(path, OS_OPEN_READ, &r.fd);
    if (err < 0) {
        char eb[128];
        return jet_report(err, "%s: cannot open: %s", path, os_reason(err, eb, sizeof eb));
    }
    if ((err = db_header_read(r.fd, path, &h)) < 0) goto out;
    /* Only a clean file holds everything committed: a dirty one needs the
     * log replayed, which writes. */
    if (h.state != DB_STATE_CLEAN) {
        err = jet_report(JET_errDatabaseDirtyShutdown,
                         "%s: the database is in %s state: it needs recovery, which writes; copy the directory to "
                         "writable storage and run jetutil recover there",
                         path, db_state_name(h.state));
        goto out;
    }
    r.ps = h.page_size;
    if (!(meta = malloc(r.ps)) || !(val = malloc(vcap))) {
        err = JET_errOutOfMemory;
        goto out;
    }
    if ((err = os_pread_full(r.fd, meta, r.ps, (uint64_t)DB_PGNO_META * r.ps)) < 0) goto out;
    if ((err = page_verify(meta, r.ps, DB_PGNO_META, path)) < 0) goto out;
    uint32_t cat = get_le32(meta + META_OFF_CATALOG);
    struct bt_pager btp = {&r, r.ps, ro_get, ro_put, ro_mut, ro_alloc, ro_free};
    uint8_t name[JET_cbKeyMost + 1];
    size_t nl = 0;
    for (enum bt_seek_op how = BT_FIRST; cat && err >= 0 && !stopped; how = BT_GT) {
        if ((err = bt_seek(&btp, cat, name, nl, how, name, &nl)) == JET_errRecordNotFound) {
            err = JET_errSuccess;
            break;
        }
        uint8_t rv[4];
        size_t rl = 0;
        if (err >= 0 && (err = bt_get(&btp, cat, name, nl, rv, sizeof rv, &rl)) >= 0 && rl != 4)
            err = jet_report(JET_errDatabaseCorrupted, "%s: catalog entry of table %.*s is %zu bytes", path, (int)nl,
                             (const char *)name, rl);
        if (err < 0) break;
        name[nl] = '\0';
        uint32_t root = get_le32(rv);
        if ((stopped = fn(arg, (const char *)name, NULL, 0, NULL, 0))) break; /* the table begins */
        uint8_t key[JET_cbKeyMost];
        size_t kl = 0;
        for (enum bt_seek_op kh = BT_FIRST;; kh = BT_GT) {
            if ((err = bt_seek(&btp, root, key, kl, kh, key, &kl)) == JET_errRecordNotFound) {
                err = JET_errSuccess;
                break;
            }
            size_t vl = 0;
            if (err >= 0) err = bt_get(&btp, root, key, kl, val, vcap, &vl);
            if (err == JET_wrnBufferTruncated) {
                uint8_t *nv = realloc(val, vl);
                if (!nv) {
                    err = JET_errOutOfMemory;
                    break;
                }
                val = nv;
                vcap = vl;
                err = bt_get(&btp, root, key, kl, val, vcap, &vl);
            }
            if (err < 0) break;
            if ((stopped = fn(arg, (const char *)name, key, kl, val, vl))) break;
        }
    }
out:
    for (size_t i = 0; i < r.cap; i++) free(r.held[i]);
    free(r.held);
    free(meta);
    free(val);
    if (r.fd >= 0) os_close(r.fd);
    return err;
}
