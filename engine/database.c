/*
 * database.c -- creating, attaching, detaching, opening and closing
 * database files.
 *
 * Owns: inst->dbs[] (the attached databases, indexed by dbidx, the number
 * the log records name) under inst->mu.  A JET_DBID is the dbidx; a session
 * may use it after JetOpenDatabase/JetCreateDatabase.
 *
 * Attach protocol: an LR_ATTACH record is made durable, then the header is
 * marked dirty (attached to this log stream at that position) and fsynced,
 * and only then may any page of the database be logged.  So a dirty header
 * always has its LR_ATTACH in the log, and recovery always finds it (after
 * the checkpoint, or in the checkpoint's list of attached files).  Detach: every
 * dirty page is flushed, the header is marked clean at the log end, then
 * an LR_DETACH record is logged, so recovery never writes a page of a
 * database after it was detached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "checkpoint.h"
#include "database.h"
#include "diag.h"
#include "instance.h"
#include "lockrank.h"
#include "logrec.h"
#include "os.h"
#include "page.h"
#include "path.h"
#include "txn.h"

static struct db *db_by_path(struct jet_instance *inst, const char *path)
{
    for (int i = 0; i < JET_MAX_DBS; i++)
        if (inst->dbs[i] && strcmp(inst->dbs[i]->path, path) == 0) return inst->dbs[i];
    return NULL;
}

static int db_free_slot(struct jet_instance *inst)
{
    for (int i = 0; i < JET_MAX_DBS; i++)
        if (!inst->dbs[i]) return i;
    return -1;
}

static JET_ERR log_attach_record(struct jet_instance *inst, struct db *db, int type)
{
    if (!inst->log) return JET_errSuccess;
    uint8_t hdr[LR_ATTACH_HDR];
    struct iovec iov[2];
    struct log_rec rec;
    put_le32(hdr, db->dbidx);
    put_le32(hdr + 4, db->hdr.page_size);
    put_le64(hdr + 8, db->hdr.db_signature);
    iov[0] = (struct iovec){hdr, type == LR_ATTACH ? LR_ATTACH_HDR : 4};
    iov[1] = (struct iovec){db->path, strlen(db->path)};
    rec = (struct log_rec){(uint8_t)type, iov, type == LR_ATTACH ? 2 : 1, NULL};
    lsn_t end;
    JET_ERR err = log_append(inst->log, &rec, 1, NULL, &end);
    if (err >= 0) err = log_flush(inst->log, end);
    if (err < 0) return inst_fatal(inst, err);
    return JET_errSuccess;
}

/* The database's creation, for a recovery that must rebuild the file at a
 * new path (logrec.h LR_CREATE). */
static JET_ERR log_create_record(struct jet_instance *inst, struct db *db)
{
    if (!inst->log) return JET_errSuccess;
    uint8_t hdr[LR_CREATE_HDR];
    put_le32(hdr, db->dbidx);
    put_le32(hdr + 4, db->hdr.page_size);
    put_le64(hdr + 8, db->hdr.db_signature);
    put_le64(hdr + 16, db->hdr.create_us);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {db->path, strlen(db->path)}};
    struct log_rec rec = {LR_CREATE, iov, 2, NULL};
    lsn_t end;
    /* Made durable with the LR_ATTACH that follows. */
    JET_ERR err = log_append(inst->log, &rec, 1, NULL, &end);
    if (err < 0) return inst_fatal(inst, err);
    return JET_errSuccess;
}

/* Canonical absolute path so the same file is recognised however named. */
static JET_ERR db_canonical(const char *name, char *out, size_t cb)
{
    if (!name || !*name) return JET_errDatabaseInvalidName;
    char dir[JET_PATH_MAX], rdir[PATH_MAX];
    os_dirname(dir, sizeof dir, name);
    if (!realpath(dir, rdir)) return jet_report(JET_errInvalidPath, "%s: directory does not exist", dir);
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (!*base) return JET_errDatabaseInvalidName;
    return os_join(out, cb, rdir, base);
}

JET_ERR db_open_file(struct jet_instance *inst, const char *path, uint32_t dbidx, struct db **pdb)
{
    struct db *db = db_alloc();
    JET_ERR err;
    if (!db) return JET_errOutOfMemory;
    db->dbidx = dbidx;
    db->fd = -1;
    snprintf(db->path, sizeof db->path, "%s", path);
    if ((err = os_open(path, OS_OPEN_READ | OS_OPEN_WRITE, &db->fd)) < 0) {
        char eb[128];
        err = jet_report(err, "%s: cannot open database: %s", path, os_reason(err, eb, sizeof eb));
        goto fail;
    }
    if ((err = os_lock(db->fd)) < 0) {
        err = jet_report(err, "%s: database is in use by another process", path);
        goto fail;
    }
    if ((err = db_header_read(db->fd, path, &db->hdr)) < 0) goto fail;
    if (db->hdr.page_size != inst->p.page_size) {
        err = jet_report(JET_errPageSizeMismatch, "%s: database has %u-byte pages, the instance uses %u", path,
                         db->hdr.page_size, inst->p.page_size);
        goto fail;
    }
    *pdb = db;
    return JET_errSuccess;
fail:
    if (db->fd >= 0) os_close(db->fd);
    db_release(db);
    return err;
}

/* Marks the header attached to this log stream. */
static JET_ERR db_mark_attached(struct jet_instance *inst, struct db *db)
{
    db->hdr.state = DB_STATE_DIRTY;
    db->hdr.log_signature = inst->log_signature;
    db->hdr.lsn_consistent = 0;
    db->hdr.lsn_attach = inst->log ? log_end_lsn(inst->log) : 0;
    /* Where it is attached, canonical: a restore of a set that carries no
     * manifest puts the file back there (too long a path: not recorded). */
    char canon[JET_PATH_MAX];
    if (path_canonical(db->path, canon, sizeof canon) < 0 || strlen(canon) > DB_ATTACH_PATH_MAX) canon[0] = '\0';
    snprintf(db->hdr.attach_path, sizeof db->hdr.attach_path, "%s", canon);
    JET_ERR err = db_header_write(db->fd, &db->hdr);
    if (err < 0) return jet_report(err, "%s: writing the header failed", db->path);
    return JET_errSuccess;
}

JET_ERR db_close_file(struct jet_instance *inst, struct db *db, bool clean)
{
    JET_ERR err = JET_errSuccess;
    if (clean) {
        db->hdr.state = DB_STATE_CLEAN;
        db->hdr.lsn_consistent = inst->log ? log_end_lsn(inst->log) : 1;
        db->hdr.consistent_us = os_now_us();
        err = db_header_write(db->fd, &db->hdr);
        if (err >= 0) err = log_attach_record(inst, db, LR_DETACH);
    }
    cache_forget_db(&inst->cache, db->dbidx);
    os_close(db->fd);
    db_release(db);
    return err;
}

static JET_ERR session_ready(JET_SESID sesid, struct session **ps)
{
    JET_ERR err = session_get(sesid, ps);
    if (err < 0) return err;
    return inst_check((*ps)->inst);
}

JET_ERR JetCreateDatabase(JET_SESID sesid, const char *szFilename, const char *szConnect, JET_DBID *pdbid,
                          JET_GRBIT grbit)
{
    (void)szConnect;
    struct session *s;
    char path[JET_PATH_MAX];
    JET_ERR err = session_ready(sesid, &s);
    if (err < 0) return err;
    if (!pdbid) return JET_errInvalidParameter;
    if (grbit & ~(JET_GRBIT)JET_bitDbOverwriteExisting) return JET_errInvalidGrbit;
    if (s->level) return JET_errInTransaction;
    if ((err = db_canonical(szFilename, path, sizeof path)) < 0) return err;
    struct jet_instance *inst = s->inst;
    uint32_t ps = inst->p.page_size;
    uint8_t *page = NULL;
    struct db *db = NULL;
    int fd = -1;

    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    if (db_by_path(inst, path)) {
        /* It exists, as jet.h says of any existing file; overwriting it is
         * refused only because it is attached. */
        err = grbit & JET_bitDbOverwriteExisting
                  ? jet_report(JET_errDatabaseInUse, "%s: attached to the instance: detach it before overwriting it", path)
                  : jet_report(JET_errDatabaseDuplicate, "%s: exists and is attached to the instance", path);
        goto out_unlock;
    }
    int slot = db_free_slot(inst);
    if (slot < 0) {
        err = JET_errTooManyAttachedDatabases;
        goto out_unlock;
    }
    if (os_exists(path) && !(grbit & JET_bitDbOverwriteExisting)) {
        err = jet_report(JET_errDatabaseDuplicate, "%s: database file already exists", path);
        goto out_unlock;
    }
    if ((err = os_open(path, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &fd)) < 0) {
        char eb[128];
        err = jet_report(err, "%s: cannot create database: %s", path, os_reason(err, eb, sizeof eb));
        goto out_unlock;
    }
    if ((err = os_lock(fd)) < 0) goto out_unlock;
    if ((err = os_ftruncate(fd, 0)) < 0) goto out_unlock;
    /* The meta page is written directly (not logged): the file does not
     * exist for recovery until its LR_ATTACH is durable, which follows. */
    page = calloc(1, ps);
    if (!page) {
        err = JET_errOutOfMemory;
        goto out_unlock;
    }
    page_init(page, ps, DB_PGNO_META, PAGE_T_META);
    put_le32(page + META_OFF_NPAGES, DB_FIRST_DATA_PGNO);
    page_seal(page, ps);
    if ((err = os_pwrite(fd, page, ps, (uint64_t)DB_PGNO_META * ps)) < 0) goto out_unlock;
    db = db_alloc();
    if (!db) {
        err = JET_errOutOfMemory;
        goto out_unlock;
    }
    db->dbidx = (uint32_t)slot;
    db->fd = fd;
    snprintf(db->path, sizeof db->path, "%s", path);
    db->hdr.page_size = ps;
    db->hdr.db_signature = os_random64();
    db->hdr.create_us = os_now_us();
    db->hdr.state = DB_STATE_JUST_CREATED;
    db->hdr.log_signature = inst->log_signature;
    /* The file exists whole before the log names it... */
    if ((err = db_header_write(fd, &db->hdr)) < 0) goto out_unlock;
    char dir[JET_PATH_MAX];
    os_dirname(dir, sizeof dir, path);
    if ((err = os_sync_dir(dir)) < 0) goto out_unlock;
    /* ...and the log names it before its header says "attached": a crash
     * in between leaves a just-created file no log depends on. */
    if ((err = log_create_record(inst, db)) < 0) goto out_unlock;
    if ((err = log_attach_record(inst, db, LR_ATTACH)) < 0) goto out_unlock;
    if ((err = db_mark_attached(inst, db)) < 0) goto out_unlock;
    db->attached = true;
    db->opens = 1;
    inst->dbs[slot] = db;
    s->opened[slot]++;
    *pdbid = (JET_DBID)slot;
    db = NULL;
    fd = -1;
out_unlock:
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    free(page);
    db_release(db);
    if (fd >= 0) os_close(fd);
    if (err >= 0) err = ckpt_note_attached(inst);
    return err;
}

JET_ERR JetAttachDatabase(JET_SESID sesid, const char *szFilename, JET_GRBIT grbit)
{
    struct session *s;
    char path[JET_PATH_MAX];
    JET_ERR err = session_ready(sesid, &s);
    if (err < 0) return err;
    if (grbit & ~(JET_GRBIT)JET_bitDbReadOnly) return JET_errInvalidGrbit;
    if (s->level) return JET_errInTransaction;
    if ((err = db_canonical(szFilename, path, sizeof path)) < 0) return err;
    struct jet_instance *inst = s->inst;
    struct db *db = NULL;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    if (db_by_path(inst, path)) {
        err = JET_wrnDatabaseAttached;
        goto out;
    }
    int slot = db_free_slot(inst);
    if (slot < 0) {
        err = JET_errTooManyAttachedDatabases;
        goto out;
    }
    if ((err = db_open_file(inst, path, (uint32_t)slot, &db)) < 0) goto out;
    /* A just-created file never had a page logged, so it is consistent. */
    if (db->hdr.state != DB_STATE_CLEAN && db->hdr.state != DB_STATE_JUST_CREATED) {
        err = jet_report(JET_errDatabaseDirtyShutdown,
                         "%s: database is in %s state and these logs cannot recover it (log signature %016llx, "
                         "instance %016llx)",
                         path, db_state_name(db->hdr.state), (unsigned long long)db->hdr.log_signature,
                         (unsigned long long)inst->log_signature);
        goto out;
    }
    /* Log first: a header that says "attached" always has its LR_ATTACH
     * durable before it, so recovery always knows the file. */
    if ((err = log_attach_record(inst, db, LR_ATTACH)) < 0) goto out;
    if ((err = db_mark_attached(inst, db)) < 0) goto out;
    db->attached = true;
    db->read_only = (grbit & JET_bitDbReadOnly) != 0;
    inst->dbs[slot] = db;
    db = NULL;
out:
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    if (db) {
        os_close(db->fd);
        db_release(db);
    }
    if (err == JET_errSuccess) err = ckpt_note_attached(inst);
    return err;
}

JET_ERR JetDetachDatabase(JET_SESID sesid, const char *szFilename)
{
    struct session *s;
    char path[JET_PATH_MAX];
    JET_ERR err = session_ready(sesid, &s);
    if (err < 0) return err;
    if (s->level) return JET_errInTransaction;
    struct jet_instance *inst = s->inst;
    if (szFilename && (err = db_canonical(szFilename, path, sizeof path)) < 0) return err;
    /* A backup reads the file and records its history in the header at
     * the end, as ESE refuses: end it first.  backup_mu is held to the
     * end, so no backup begins with the database half detached. */
    lk_mutex_lock(&inst->backup_mu, LK_BACKUP);
    if (inst->backup) {
        lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
        return jet_report(JET_errBackupInProgress, "%s: a backup is in progress; end it before detaching",
                          szFilename ? path : "the instance's databases");
    }
    /* Flush first so the file is complete without the log. */
    if ((err = ckpt_run(inst)) < 0) goto out_backup;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    bool any = false;
    for (int i = 0; i < JET_MAX_DBS; i++) {
        struct db *db = inst->dbs[i];
        if (!db || (szFilename && strcmp(db->path, path) != 0)) continue;
        any = true;
        if (db->opens > 0 || db->table_cursors > 0) {
            err = jet_report(JET_errDatabaseInUse, "%s: database is open (%d opens, %d cursors)", db->path, db->opens,
                             db->table_cursors);
            break;
        }
        inst->dbs[i] = NULL;
        JET_ERR e = db_close_file(inst, db, true);
        if (e < 0 && err >= 0) err = e;
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    if (szFilename && !any) err = jet_report(JET_errDatabaseNotFound, "%s: not attached", path);
out_backup:
    lk_mutex_unlock(&inst->backup_mu, LK_BACKUP);
    return err;
}

JET_ERR db_detach_all(struct jet_instance *inst, bool clean)
{
    JET_ERR err = JET_errSuccess;
    if (clean) err = ckpt_run(inst);
    if (err < 0) clean = false;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    for (int i = 0; i < JET_MAX_DBS; i++) {
        struct db *db = inst->dbs[i];
        if (!db) continue;
        inst->dbs[i] = NULL;
        JET_ERR e = db_close_file(inst, db, clean);
        if (e < 0 && err >= 0) err = e;
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    if (clean && inst->log && err >= 0) {
        struct ckpt_file ck;
        char path[JET_PATH_MAX];
        memset(&ck, 0, sizeof ck);
        ck.log_signature = inst->log_signature;
        JET_ERR e = log_flush_all(inst->log);
        ck.lsn = log_end_lsn(inst->log);
        ck.gen_seen = log_current_generation(inst->log);
        if (e >= 0) e = ckpt_path(inst, path, sizeof path);
        if (e >= 0) e = ckpt_write(path, &ck);
        if (e < 0) err = e;
    }
    return err;
}

JET_ERR JetOpenDatabase(JET_SESID sesid, const char *szFilename, const char *szConnect, JET_DBID *pdbid,
                        JET_GRBIT grbit)
{
    (void)szConnect;
    struct session *s;
    char path[JET_PATH_MAX];
    JET_ERR err = session_ready(sesid, &s);
    if (err < 0) return err;
    if (!pdbid) return JET_errInvalidParameter;
    if (grbit & ~(JET_GRBIT)JET_bitDbReadOnly) return JET_errInvalidGrbit;
    if ((err = db_canonical(szFilename, path, sizeof path)) < 0) return err;
    struct jet_instance *inst = s->inst;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    struct db *db = db_by_path(inst, path);
    if (!db) {
        err = jet_report(JET_errDatabaseNotFound, "%s: database is not attached", path);
    } else {
        db->opens++;
        s->opened[db->dbidx]++;
        *pdbid = db->dbidx;
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    return err;
}

JET_ERR JetCloseDatabase(JET_SESID sesid, JET_DBID dbid, JET_GRBIT grbit)
{
    struct session *s;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if (grbit) return JET_errInvalidGrbit;
    if (dbid >= JET_MAX_DBS || !s->opened[dbid]) return JET_errInvalidDatabaseId;
    struct jet_instance *inst = s->inst;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    s->opened[dbid]--;
    if (inst->dbs[dbid]) inst->dbs[dbid]->opens--;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    return JET_errSuccess;
}

void db_close_session(struct session *s)
{
    struct jet_instance *inst = s->inst;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    for (int i = 0; i < JET_MAX_DBS; i++) {
        if (s->opened[i] && inst->dbs[i]) inst->dbs[i]->opens -= s->opened[i];
        s->opened[i] = 0;
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
}

/* ---- allocation (the snapshot lock lives with the db) ---- */

struct db *db_alloc(void)
{
    struct db *db = calloc(1, sizeof *db);
    if (db) {
        db->fd = -1;
        pthread_rwlock_init(&db->snap_lock, NULL);
    }
    return db;
}

void db_release(struct db *db)
{
    if (!db) return;
    pthread_rwlock_destroy(&db->snap_lock);
    free(db);
}
