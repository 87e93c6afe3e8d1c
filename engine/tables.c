/*
 * tables.c -- tables (named B+trees listed in a database's catalog) and the
 * key/value operations and cursors over them.
 *
 * The catalog is itself a B+tree (root in the meta page, created with the
 * first table) mapping a table name to its root page number, a u32.  Roots
 * never move (btree.h), so a cursor keeps its table's root for its life.
 *
 * Every operation runs in a transaction: the session's own, or an implicit
 * one that commits durably (or rolls back) around a single update.  Reads
 * outside a write transaction hold commit_lock shared for the length of
 * the one B+tree call, so they see one committed state across pages.
 *
 * An update that fails midway (I/O, corruption, the transaction outgrowing
 * the cache) may leave half-changed private pages: the transaction is
 * marked failed and can only be rolled back.  Errors found before anything
 * changed (duplicate key, missing key, bad argument) leave it usable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "database.h"
#include "diag.h"
#include "instance.h"
#include "lockrank.h"
#include "page.h"
#include "tables.h"
#include "txn.h"

struct op {
    struct session *s;
    bool write;
    bool implicit;
    bool read_locked;
    struct pager_ctx ctx;
    struct bt_pager pg;
};

static bool err_is_clean(JET_ERR err)
{
    return err >= 0 || err == JET_errKeyDuplicate || err == JET_errRecordNotFound || err == JET_errInvalidParameter ||
           err == JET_errRecordTooBig || err == JET_errTableDuplicate || err == JET_errObjectNotFound ||
           err == JET_errTableInUse || err == JET_errNoCurrentRecord;
}

static JET_ERR op_begin(struct op *op, struct session *s, uint32_t dbidx, bool write)
{
    memset(op, 0, sizeof *op);
    op->s = s;
    op->write = write;
    JET_ERR err = inst_check(s->inst);
    if (err < 0) return err;
    if (dbidx >= JET_MAX_DBS || !s->opened[dbidx] || !s->inst->dbs[dbidx]) return JET_errInvalidDatabaseId;
    if (write) {
        if (s->inst->dbs[dbidx]->read_only)
            return jet_report(JET_errPermissionDenied, "%s: attached read-only: no update", s->inst->dbs[dbidx]->path);
        if (s->level && s->readonly) return JET_errTransReadOnly;
        if (!s->level) {
            if ((err = txn_begin(s, false, true)) < 0) return err;
            op->implicit = true;
        } else if ((err = txn_writer_acquire(s)) < 0) {
            return err; /* (a no-op unless the session moved to this thread) */
        }
        if (s->txn.failed) return jet_report(JET_errInvalidParameter, "an update failed in this transaction: roll it back");
    } else if (!s->holds_writer) {
        lk_rdlock(&s->inst->commit_lock, LK_COMMIT);
        op->read_locked = true;
    }
    pager_make(&op->pg, &op->ctx, s, dbidx);
    return JET_errSuccess;
}

static JET_ERR op_end(struct op *op, JET_ERR err)
{
    struct session *s = op->s;
    if (op->read_locked) lk_rwunlock(&s->inst->commit_lock, LK_COMMIT);
    if (!op->write) return err;
    if (op->implicit) {
        if (err < 0) {
            txn_rollback(s);
            return err;
        }
        JET_ERR e = txn_commit(s, false);
        return e < 0 ? e : err;
    }
    if (!err_is_clean(err)) s->txn.failed = true;
    return err;
}

static JET_ERR check_name(const char *name)
{
    if (!name || !*name || strlen(name) > JET_cbNameMost) return JET_errInvalidName;
    return JET_errSuccess;
}

static JET_ERR catalog_lookup(const struct bt_pager *pg, const char *name, uint32_t *proot)
{
    uint32_t cat;
    JET_ERR err = meta_catalog_root(pg, &cat);
    if (err < 0) return err;
    if (!cat) return JET_errObjectNotFound;
    uint8_t v[4];
    size_t actual = 0;
    err = bt_get(pg, cat, name, strlen(name), v, sizeof v, &actual);
    if (err == JET_errRecordNotFound) return JET_errObjectNotFound;
    if (err < 0) return err;
    if (actual != 4) return jet_report(JET_errDatabaseCorrupted, "catalog: entry for table '%s' has %zu bytes", name, actual);
    *proot = get_le32(v);
    return JET_errSuccess;
}

static void open_table_adjust(struct jet_instance *inst, uint32_t dbidx, const char *name, int delta)
{
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    struct open_table **pp = &inst->open_tables, *t;
    while ((t = *pp) && !(t->dbidx == dbidx && strcmp(t->name, name) == 0)) pp = &t->next;
    if (!t && delta > 0 && (t = calloc(1, sizeof *t))) {
        t->dbidx = dbidx;
        snprintf(t->name, sizeof t->name, "%s", name);
        t->next = inst->open_tables;
        inst->open_tables = t;
        pp = &inst->open_tables;
    }
    if (t) {
        t->count += delta;
        if (t->count <= 0) {
            *pp = t->next;
            free(t);
        }
    }
    if (inst->dbs[dbidx]) inst->dbs[dbidx]->table_cursors += delta;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
}

static int open_table_count(struct jet_instance *inst, uint32_t dbidx, const char *name)
{
    int n = 0;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    for (struct open_table *t = inst->open_tables; t; t = t->next)
        if (t->dbidx == dbidx && strcmp(t->name, name) == 0) n = t->count;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    return n;
}

static JET_ERR cursor_new(struct session *s, uint32_t dbidx, const char *name, uint32_t root, JET_TABLEID *ptableid)
{
    struct cursor *c = calloc(1, sizeof *c);
    if (!c) return JET_errOutOfMemory;
    c->s = s;
    c->dbidx = dbidx;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->root = root;
    c->opened_in_txn = s->level && !s->implicit;
    c->handle = handle_new(HK_CURSOR, c);
    if (!c->handle) {
        free(c);
        return JET_errOutOfMemory;
    }
    open_table_adjust(s->inst, dbidx, name, +1);
    *ptableid = c->handle;
    return JET_errSuccess;
}

static void cursor_free(struct cursor *c)
{
    open_table_adjust(c->s->inst, c->dbidx, c->name, -1);
    handle_free(c->handle);
    free(c);
}

/* Cursors of a session are found through the handle table. */
struct cursor_list {
    struct cursor **v;
    size_t n;
};

JET_ERR JetCreateTable(JET_SESID sesid, JET_DBID dbid, const char *szTableName, unsigned long lPages,
                       unsigned long lDensity, JET_TABLEID *ptableid)
{
    (void)lPages;
    (void)lDensity;
    struct session *s;
    struct op op;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if (!ptableid) return JET_errInvalidParameter;
    if ((err = check_name(szTableName)) < 0) return err;
    if ((err = op_begin(&op, s, (uint32_t)dbid, true)) < 0) return err;
    uint32_t cat, root = 0, existing;
    err = meta_catalog_root(&op.pg, &cat);
    if (err >= 0 && !cat) {
        uint8_t *meta;
        err = bt_create(&op.pg, &cat);
        if (err >= 0) err = op.pg.get_mut(op.pg.ctx, DB_PGNO_META, &meta);
        if (err >= 0) put_le32(meta + META_OFF_CATALOG, cat);
    }
    if (err >= 0) {
        err = catalog_lookup(&op.pg, szTableName, &existing);
        if (err >= 0) err = JET_errTableDuplicate;
        else if (err == JET_errObjectNotFound) err = JET_errSuccess;
    }
    if (err >= 0) err = bt_create(&op.pg, &root);
    if (err >= 0) {
        uint8_t v[4];
        put_le32(v, root);
        err = bt_put(&op.pg, cat, szTableName, strlen(szTableName), v, sizeof v, BT_INSERT);
        if (err == JET_errKeyDuplicate) err = JET_errTableDuplicate;
    }
    err = op_end(&op, err);
    if (err < 0) return err;
    return cursor_new(s, (uint32_t)dbid, szTableName, root, ptableid);
}

JET_ERR JetOpenTable(JET_SESID sesid, JET_DBID dbid, const char *szTableName, const void *pvParameters,
                     unsigned long cbParameters, JET_GRBIT grbit, JET_TABLEID *ptableid)
{
    (void)pvParameters;
    (void)cbParameters;
    (void)grbit;
    struct session *s;
    struct op op;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if (!ptableid) return JET_errInvalidParameter;
    if ((err = check_name(szTableName)) < 0) return err;
    if ((err = op_begin(&op, s, (uint32_t)dbid, false)) < 0) return err;
    uint32_t root = 0;
    err = op_end(&op, catalog_lookup(&op.pg, szTableName, &root));
    if (err < 0) return err;
    return cursor_new(s, (uint32_t)dbid, szTableName, root, ptableid);
}

JET_ERR JetCloseTable(JET_SESID sesid, JET_TABLEID tableid)
{
    struct session *s;
    struct cursor *c;
    JET_ERR err = cursor_get(sesid, tableid, &s, &c);
    if (err < 0) return err;
    cursor_free(c);
    return JET_errSuccess;
}

JET_ERR JetDeleteTable(JET_SESID sesid, JET_DBID dbid, const char *szTableName)
{
    struct session *s;
    struct op op;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if ((err = check_name(szTableName)) < 0) return err;
    if (dbid < JET_MAX_DBS && open_table_count(s->inst, (uint32_t)dbid, szTableName) > 0) return JET_errTableInUse;
    if ((err = op_begin(&op, s, (uint32_t)dbid, true)) < 0) return err;
    uint32_t root = 0, cat = 0;
    err = catalog_lookup(&op.pg, szTableName, &root);
    if (err >= 0) err = meta_catalog_root(&op.pg, &cat);
    if (err >= 0) err = bt_drop(&op.pg, root);
    if (err >= 0) err = bt_delete(&op.pg, cat, szTableName, strlen(szTableName));
    return op_end(&op, err);
}

JET_ERR JetGetTableNames(JET_SESID sesid, JET_DBID dbid, char *szz, unsigned long cbMax, unsigned long *pcbActual)
{
    struct session *s;
    struct op op;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if ((err = op_begin(&op, s, (uint32_t)dbid, false)) < 0) return err;
    uint32_t cat = 0;
    unsigned long need = 1;
    uint8_t key[JET_cbKeyMost + 1];
    size_t klen = 0;
    err = meta_catalog_root(&op.pg, &cat);
    if (err >= 0 && cat) {
        enum bt_seek_op how = BT_FIRST;
        for (;;) {
            err = bt_seek(&op.pg, cat, key, klen, how, key, &klen);
            if (err == JET_errRecordNotFound) {
                err = JET_errSuccess;
                break;
            }
            if (err < 0) break;
            if (szz && need - 1 + klen + 1 < cbMax) {
                memcpy(szz + need - 1, key, klen);
                szz[need - 1 + klen] = '\0';
            }
            need += klen + 1;
            how = BT_GT;
        }
    }
    err = op_end(&op, err);
    if (err < 0) return err;
    if (szz && cbMax) szz[need - 1 < cbMax ? need - 1 : cbMax - 1] = '\0';
    if (pcbActual) *pcbActual = need;
    return JET_errSuccess;
}

static JET_ERR check_key(const void *key, unsigned long cb)
{
    if (!key) return jet_report(JET_errInvalidParameter, "the key is NULL");
    if (cb == 0 || cb > JET_cbKeyMost)
        return jet_report(JET_errInvalidParameter, "key of %lu bytes (must be 1..%u)", cb, JET_cbKeyMost);
    return JET_errSuccess;
}

/* The cursor a point operation names, and its key checked. */
static JET_ERR key_cursor(JET_SESID sesid, JET_TABLEID tableid, const void *key, unsigned long cb, struct session **ps,
                          struct cursor **pc)
{
    JET_ERR err = cursor_get(sesid, tableid, ps, pc);
    return err < 0 ? err : check_key(key, cb);
}

JET_ERR JetPutKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey, unsigned long cbKey, const void *pvData,
                 unsigned long cbData, JET_GRBIT grbit)
{
    struct session *s;
    struct cursor *c;
    struct op op;
    JET_ERR err = key_cursor(sesid, tableid, pvKey, cbKey, &s, &c);
    if (err < 0) return err;
    if (cbData > JET_cbValueMost) return JET_errRecordTooBig;
    if (cbData && !pvData) return JET_errInvalidParameter;
    if (grbit & ~(JET_GRBIT)(JET_bitPutInsert | JET_bitPutReplace) ||
        grbit == (JET_bitPutInsert | JET_bitPutReplace))
        return JET_errInvalidGrbit;
    enum bt_put_mode mode = grbit & JET_bitPutInsert ? BT_INSERT : grbit & JET_bitPutReplace ? BT_REPLACE : BT_UPSERT;
    if ((err = op_begin(&op, s, c->dbidx, true)) < 0) return err;
    err = op_end(&op, bt_put(&op.pg, c->root, pvKey, cbKey, pvData ? pvData : "", cbData, mode));
    if (err == JET_errKeyDuplicate) return jet_report(err, "table '%s': the key exists (JET_bitPutInsert)", c->name);
    if (err == JET_errRecordNotFound) return jet_report(err, "table '%s': no such key (JET_bitPutReplace)", c->name);
    return err;
}

struct update_kv {
    JET_PFNUPDATEKV fn;
    void *ctx;
};

static JET_ERR update_kv_fn(void *arg, const uint8_t *old, size_t oldlen, bool exists, const uint8_t **pnew,
                            size_t *pnewlen)
{
    struct update_kv *u = arg;
    const void *nv = NULL;
    unsigned long nlen = 0;
    JET_ERR err = u->fn(u->ctx, old, (unsigned long)oldlen, exists, &nv, &nlen);
    *pnew = nv;
    *pnewlen = nlen;
    return err;
}

JET_ERR JetUpdateKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey, unsigned long cbKey, JET_PFNUPDATEKV pfn,
                    void *pvContext)
{
    struct session *s;
    struct cursor *c;
    struct op op;
    JET_ERR err = key_cursor(sesid, tableid, pvKey, cbKey, &s, &c);
    if (err < 0) return err;
    if (!pfn) return JET_errInvalidParameter;
    struct update_kv u = {pfn, pvContext};
    if ((err = op_begin(&op, s, c->dbidx, true)) < 0) return err;
    err = bt_update(&op.pg, c->root, pvKey, cbKey, update_kv_fn, &u);
    return op_end(&op, err);
}

JET_ERR JetRetrieveKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey, unsigned long cbKey, void *pvData,
                      unsigned long cbMax, unsigned long *pcbActual, JET_GRBIT grbit)
{
    struct session *s;
    struct cursor *c;
    struct op op;
    JET_ERR err = key_cursor(sesid, tableid, pvKey, cbKey, &s, &c);
    if (err < 0) return err;
    if (grbit) return JET_errInvalidGrbit;
    if (cbMax && !pvData) return JET_errInvalidParameter;
    if ((err = op_begin(&op, s, c->dbidx, false)) < 0) return err;
    size_t actual = 0;
    err = op_end(&op, bt_get(&op.pg, c->root, pvKey, cbKey, pvData, cbMax, &actual));
    if (err == JET_errRecordNotFound) return jet_report(err, "table '%s': no such key", c->name);
    if (err >= 0 && pcbActual) *pcbActual = (unsigned long)actual;
    return err;
}

JET_ERR JetDeleteKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey, unsigned long cbKey)
{
    struct session *s;
    struct cursor *c;
    struct op op;
    JET_ERR err = key_cursor(sesid, tableid, pvKey, cbKey, &s, &c);
    if (err < 0) return err;
    if ((err = op_begin(&op, s, c->dbidx, true)) < 0) return err;
    err = op_end(&op, bt_delete(&op.pg, c->root, pvKey, cbKey));
    if (err == JET_errRecordNotFound) return jet_report(err, "table '%s': no such key", c->name);
    return err;
}

static JET_ERR cursor_seek(struct session *s, struct cursor *c, const void *key, size_t klen, enum bt_seek_op how)
{
    struct op op;
    JET_ERR err = op_begin(&op, s, c->dbidx, false);
    if (err < 0) return err;
    uint8_t out[JET_cbKeyMost];
    size_t olen = 0;
    err = op_end(&op, bt_seek(&op.pg, c->root, key, klen, how, out, &olen));
    if (err < 0) return err;
    memcpy(c->key, out, olen);
    c->klen = olen;
    c->has_current = true;
    return JET_errSuccess;
}

JET_ERR JetSeekKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey, unsigned long cbKey, JET_GRBIT grbit)
{
    struct session *s;
    struct cursor *c;
    JET_ERR err = key_cursor(sesid, tableid, pvKey, cbKey, &s, &c);
    if (err < 0) return err;
    enum bt_seek_op how;
    switch (grbit) {
    case JET_bitSeekEQ: how = BT_EQ; break;
    case JET_bitSeekLT: how = BT_LT; break;
    case JET_bitSeekLE: how = BT_LE; break;
    case JET_bitSeekGE: how = BT_GE; break;
    case JET_bitSeekGT: how = BT_GT; break;
    default: return JET_errInvalidGrbit;
    }
    err = cursor_seek(s, c, pvKey, cbKey, how);
    if (err < 0) c->has_current = false;
    return err;
}

JET_ERR JetMove(JET_SESID sesid, JET_TABLEID tableid, long cRow, JET_GRBIT grbit)
{
    struct session *s;
    struct cursor *c;
    JET_ERR err = cursor_get(sesid, tableid, &s, &c);
    if (err < 0) return err;
    if (grbit) return JET_errInvalidGrbit;
    if (cRow == JET_MoveFirst || cRow == JET_MoveLast) {
        err = cursor_seek(s, c, NULL, 0, cRow == JET_MoveFirst ? BT_FIRST : BT_LAST);
        if (err == JET_errRecordNotFound) err = JET_errNoCurrentRecord;
        if (err < 0) c->has_current = false;
        return err;
    }
    if (cRow == 0) return c->has_current ? JET_errSuccess : JET_errNoCurrentRecord;
    if (!c->has_current) return JET_errNoCurrentRecord;
    long steps = cRow > 0 ? cRow : -cRow;
    for (long i = 0; i < steps; i++) {
        uint8_t key[JET_cbKeyMost];
        size_t klen = c->klen;
        memcpy(key, c->key, klen);
        err = cursor_seek(s, c, key, klen, cRow > 0 ? BT_GT : BT_LT);
        if (err == JET_errRecordNotFound) {
            /* Past the end: ESE leaves the cursor after the last (before
             * the first) record, with no current record. */
            c->has_current = false;
            return JET_errNoCurrentRecord;
        }
        if (err < 0) return err;
    }
    return JET_errSuccess;
}

JET_ERR JetRetrieveCurrentKV(JET_SESID sesid, JET_TABLEID tableid, void *pvKey, unsigned long cbKeyMax,
                             unsigned long *pcbKey, void *pvData, unsigned long cbDataMax, unsigned long *pcbData)
{
    struct session *s;
    struct cursor *c;
    struct op op;
    JET_ERR err = cursor_get(sesid, tableid, &s, &c);
    if (err < 0) return err;
    if (!c->has_current) return JET_errNoCurrentRecord;
    if ((cbKeyMax && !pvKey) || (cbDataMax && !pvData)) return JET_errInvalidParameter;
    JET_ERR warn = JET_errSuccess;
    if (pvKey) {
        memcpy(pvKey, c->key, c->klen < cbKeyMax ? c->klen : cbKeyMax);
        if (c->klen > cbKeyMax) warn = JET_wrnBufferTruncated;
    }
    if (pcbKey) *pcbKey = (unsigned long)c->klen;
    /* Even for the key alone the record is looked up: a key deleted since
     * the cursor moved there is not a current record any more. */
    if ((err = op_begin(&op, s, c->dbidx, false)) < 0) return err;
    size_t actual = 0;
    err = op_end(&op, bt_get(&op.pg, c->root, c->key, c->klen, pvData, cbDataMax, &actual));
    if (err == JET_errRecordNotFound) {
        /* Deleted since the cursor moved there.  The cursor keeps the key
         * as its place, so the next move reaches the neighbour: ending the
         * scan here would look like the end of the table. */
        return jet_report(JET_errRecordDeleted, "table '%s': the current key was deleted since the cursor moved there",
                          c->name);
    }
    if (err < 0) return err;
    if (pcbData) *pcbData = (unsigned long)actual;
    if (!pvData && !pcbData) return warn; /* the value was not asked for: only the key can be truncated */
    return err > 0 ? err : warn;
}

void tables_close_session(struct session *s)
{
    /* Cursors live in the handle table, which instance.c owns. */
    handle_close_cursors(s, false);
}

void tables_end_txn(struct session *s, bool rolled_back)
{
    /* As ESE's JetRollback: a table opened (or created) in the transaction
     * is closed with it.  Its handle dies, so it can never reach the pages
     * the rollback freed, nor another table that reuses them. */
    if (rolled_back) handle_close_cursors(s, true);
    else handle_cursors_committed(s);
}

void cursor_close_for_session(struct cursor *c) { cursor_free(c); }
