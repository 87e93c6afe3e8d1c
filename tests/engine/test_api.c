/*
 * test_api.c -- the public API end to end in one process: instance modes,
 * sessions, transactions, databases, tables, key/value operations, cursors,
 * persistence across JetTerm/JetInit, every call's answer to bad
 * arguments (null and stale handles, closed sessions, handles of another
 * instance, bad grbits, an over-long value) and that those calls change
 * nothing, and a message for every error code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jet.h"
#include "testutil.h"

static char dir[1024], dbpath[1100];

static void setup_paths(const char *name)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/test.db", dir);
}

static JET_INSTANCE new_instance(const char *name)
{
    JET_INSTANCE inst = 0;
    TU_CHECK_ERR(JetCreateInstance(&inst, name), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 256, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetInit(&inst), JET_errSuccess);
    return inst;
}

static void test_modes(void)
{
    setup_paths("api_modes");
    JET_INSTANCE inst = 0;
    /* Legacy mode first: JetCreateInstance is then refused. */
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramSystemPath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramLogFilePath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetInit(NULL), JET_errSuccess);
    TU_CHECK_ERR(JetInit(NULL), JET_errAlreadyInitialized);
    TU_CHECK_ERR(JetCreateInstance(&inst, "x"), JET_errRunningInOneInstanceMode);
    JET_SESID s;
    TU_CHECK_ERR(JetBeginSession(0, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetEndSession(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetTerm(0), JET_errSuccess);
    /* Then multi-instance mode: legacy JetInit is refused. */
    inst = new_instance("one");
    JET_INSTANCE other = 0;
    TU_CHECK_ERR(JetCreateInstance(&other, "one"), JET_errInstanceNameInUse);
    TU_CHECK_ERR(JetInit(NULL), JET_errRunningInMultiInstanceMode);
    TU_CHECK_ERR(JetBeginSession(0, &s, NULL, NULL), JET_errRunningInMultiInstanceMode);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 512, NULL), JET_errAlreadyInitialized);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
    /* A terminated instance's handle is stale. */
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errInvalidInstance);
    TU_CHECK_ERR(JetTerm(inst), JET_errInvalidInstance);
}

/*
 * Everything a database holds, as one byte string: every table name (from
 * JetGetTableNames) and every key and value in key order, read through a
 * session of its own.  *pcb gets the length; the caller frees.
 */
static char *export_all(JET_INSTANCE inst, const char *path, size_t *pcb)
{
    static char names[4096], key[JET_cbKeyMost], val[1 << 16];
    char *out = NULL;
    FILE *f = open_memstream(&out, pcb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    JET_SESID es;
    JET_DBID edb;
    unsigned long cb = 0;
    TU_CHECK_ERR(JetBeginSession(inst, &es, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetOpenDatabase(es, path, NULL, &edb, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetTableNames(es, edb, names, sizeof names, &cb), JET_errSuccess);
    CU_ASSERT_FATAL(cb <= sizeof names);
    for (const char *n = names; *n; n += strlen(n) + 1) {
        JET_TABLEID et;
        fprintf(f, "table %s\n", n);
        TU_CHECK_ERR(JetOpenTable(es, edb, n, NULL, 0, 0, &et), JET_errSuccess);
        JET_ERR err = JetMove(es, et, JET_MoveFirst, 0);
        for (; err == JET_errSuccess; err = JetMove(es, et, JET_MoveNext, 0)) {
            unsigned long kl = 0, vl = 0;
            TU_CHECK_ERR(JetRetrieveCurrentKV(es, et, key, sizeof key, &kl, val, sizeof val, &vl), JET_errSuccess);
            CU_ASSERT_FATAL(kl <= sizeof key && vl <= sizeof val);
            fprintf(f, "%lu %lu\n", kl, vl);
            fwrite(key, 1, kl, f);
            fwrite(val, 1, vl, f);
        }
        TU_CHECK_ERR(err, JET_errNoCurrentRecord);
        TU_CHECK_ERR(JetCloseTable(es, et), JET_errSuccess);
    }
    TU_CHECK_ERR(JetEndSession(es, 0), JET_errSuccess);
    fclose(f);
    return out;
}

static void assert_same_export(const char *before, size_t cb_before, const char *after, size_t cb_after)
{
    CU_ASSERT_EQUAL(cb_after, cb_before);
    CU_ASSERT(cb_after == cb_before && memcmp(before, after, cb_before) == 0);
}

/* Every session-taking call with a session handle that is not one: each
 * must answer JET_errInvalidSesid and touch nothing. */
static void calls_with_bad_session(JET_SESID bad, JET_DBID db, JET_TABLEID t, const char *newdb)
{
    JET_DBID d = 77;
    JET_TABLEID nt = 77;
    char buf[64];
    unsigned long n = 0;
    TU_CHECK_ERR(JetBeginTransaction(bad), JET_errInvalidSesid);
    TU_CHECK_ERR(JetBeginTransaction2(bad, JET_bitTransactionReadOnly), JET_errInvalidSesid);
    TU_CHECK_ERR(JetCommitTransaction(bad, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetRollback(bad, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetCreateDatabase(bad, newdb, NULL, &d, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetAttachDatabase(bad, dbpath, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetDetachDatabase(bad, dbpath), JET_errInvalidSesid);
    TU_CHECK_ERR(JetOpenDatabase(bad, dbpath, NULL, &d, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetCloseDatabase(bad, db, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetCreateTable(bad, db, "new", 0, 0, &nt), JET_errInvalidSesid);
    TU_CHECK_ERR(JetOpenTable(bad, db, "t", NULL, 0, 0, &nt), JET_errInvalidSesid);
    TU_CHECK_ERR(JetDeleteTable(bad, db, "u"), JET_errInvalidSesid);
    TU_CHECK_ERR(JetGetTableNames(bad, db, buf, sizeof buf, &n), JET_errInvalidSesid);
    TU_CHECK_ERR(JetPutKV(bad, t, "k", 1, "w", 1, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetRetrieveKV(bad, t, "k", 1, buf, sizeof buf, &n, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetDeleteKV(bad, t, "k", 1), JET_errInvalidSesid);
    TU_CHECK_ERR(JetSeekKV(bad, t, "k", 1, JET_bitSeekGE), JET_errInvalidSesid);
    TU_CHECK_ERR(JetMove(bad, t, JET_MoveFirst, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetRetrieveCurrentKV(bad, t, buf, sizeof buf, &n, NULL, 0, NULL), JET_errInvalidSesid);
    TU_CHECK_ERR(JetCloseTable(bad, t), JET_errInvalidSesid);
    TU_CHECK_ERR(JetEndSession(bad, 0), JET_errInvalidSesid);
    /* Nothing was handed out. */
    CU_ASSERT_EQUAL(d, 77);
    CU_ASSERT_EQUAL(nt, 77);
}

static void test_bad_arguments(void)
{
    setup_paths("api_badargs");
    char newdb[1200], dir1[sizeof dir], dbpath1[sizeof dbpath];
    snprintf(newdb, sizeof newdb, "%s/never.db", dir);
    JET_INSTANCE inst = new_instance("badargs");
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t, u;
    TU_CHECK_ERR(JetBeginSession(inst, NULL, NULL, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetBeginSession((JET_INSTANCE)0xdead00000001ull, &s, NULL, NULL), JET_errInvalidInstance);
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s, db, "u", 0, 0, &u), JET_errSuccess);
    char big[300];
    memset(big, 'k', sizeof big);
    TU_CHECK_ERR(JetPutKV(s, t, big, JET_cbKeyMost, "v", 1, 0), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, JET_bitPutInsert), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "a", 1, "", 0, 0), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, u, "x", 1, "y", 1, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCloseTable(s, u), JET_errSuccess);
    /* A second instance, with a table of its own. */
    memcpy(dir1, dir, sizeof dir);
    memcpy(dbpath1, dbpath, sizeof dbpath);
    setup_paths("api_badargs_other");
    JET_INSTANCE inst2 = new_instance("badargs_other");
    JET_SESID s2;
    JET_DBID db2;
    JET_TABLEID t2;
    TU_CHECK_ERR(JetBeginSession(inst2, &s2, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s2, dbpath, NULL, &db2, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s2, db2, "t", 0, 0, &t2), JET_errSuccess);
    char dbpath2[sizeof dbpath];
    memcpy(dbpath2, dbpath, sizeof dbpath);
    memcpy(dir, dir1, sizeof dir);
    memcpy(dbpath, dbpath1, sizeof dbpath);

    size_t cb_before = 0, cb_before2 = 0;
    char *before = export_all(inst, dbpath, &cb_before);
    char *before2 = export_all(inst2, dbpath2, &cb_before2);
    CU_ASSERT_PTR_NOT_NULL(memmem(before, cb_before, "table u\n", 8));

    /* From here on nothing succeeds that changes the databases. */
    /* jet.h: an existing file is a duplicate, attached or not; overwriting
     * an attached one is refused as in use. */
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0), JET_errDatabaseDuplicate);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, JET_bitDbOverwriteExisting), JET_errDatabaseInUse);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0x40000000), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errTableDuplicate);
    TU_CHECK_ERR(JetCreateTable(s, db, "", 0, 0, &t), JET_errInvalidName);
    TU_CHECK_ERR(JetCreateTable(s, db, NULL, 0, 0, &t), JET_errInvalidName);
    TU_CHECK_ERR(JetCreateTable(s, db + 5, "u", 0, 0, &t), JET_errInvalidDatabaseId);
    TU_CHECK_ERR(JetOpenTable(s, db, "missing", NULL, 0, 0, &t), JET_errObjectNotFound);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 0, "v", 1, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetPutKV(s, t, big, JET_cbKeyMost + 1, "v", 1, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, JET_bitPutInsert | JET_bitPutReplace), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, 0x80), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetPutKV(s, t, "zz", 2, "v", 1, JET_bitPutReplace), JET_errRecordNotFound);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "w", 1, JET_bitPutInsert), JET_errKeyDuplicate);
    TU_CHECK_ERR(JetDeleteKV(s, t, "zz", 2), JET_errRecordNotFound);
    TU_CHECK_ERR(JetSeekKV(s, t, "k", 1, 0x3), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetSeekKV(s, t, "k", 1, 0), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetMove(s, t, JET_MoveNext, 0), JET_errNoCurrentRecord);
    TU_CHECK_ERR(JetMove(s, t, JET_MoveFirst, 0x1), JET_errInvalidGrbit);
    char buf[64];
    unsigned long n = 0;
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k", 1, buf, sizeof buf, &n, 0x1), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errNotInTransaction);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errNotInTransaction);
    TU_CHECK_ERR(JetBeginTransaction2(s, 0x100), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errTransTooDeep);
    TU_CHECK_ERR(JetCommitTransaction(s, 0x400), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "changed", 7, 0), JET_errSuccess);
    /* A bad grbit leaves the transaction open: the rollback still undoes it. */
    TU_CHECK_ERR(JetRollback(s, 0x2), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errNotInTransaction);

    /* A value one byte over JET_cbValueMost: refused before anything
     * changes, alone or inside a transaction that stays usable.  calloc
     * leaves the 64 MiB untouched unless the engine reads it. */
    unsigned char *huge = calloc(1, (size_t)JET_cbValueMost + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, huge, JET_cbValueMost + 1, 0), JET_errRecordTooBig);
    TU_CHECK_ERR(JetPutKV(s, t, "new", 3, huge, JET_cbValueMost + 1, 0), JET_errRecordTooBig);
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "new", 3, huge, JET_cbValueMost + 1, JET_bitPutInsert), JET_errRecordTooBig);
    TU_CHECK_ERR(JetPutKV(s, t, "new", 3, "n", 1, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetDeleteKV(s, t, "new", 3), JET_errSuccess);
    free(huge);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k", 1, buf, sizeof buf, &n, 0), JET_errSuccess);
    CU_ASSERT(n == 1 && buf[0] == 'v');

    /* NULL where the call writes its answer, or reads its input. */
    TU_CHECK_ERR(JetCreateInstance(NULL, "nul"), JET_errInvalidParameter);
    TU_CHECK_ERR(JetGetSystemParameter(inst, 0, JET_paramLogFileSize, NULL, NULL, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetCreateDatabase(s, newdb, NULL, NULL, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetCreateDatabase(s, NULL, NULL, &db, 0), JET_errDatabaseInvalidName);
    TU_CHECK_ERR(JetOpenDatabase(s, dbpath, NULL, NULL, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetAttachDatabase(s, NULL, 0), JET_errDatabaseInvalidName);
    TU_CHECK_ERR(JetCreateTable(s, db, "new", 0, 0, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetOpenTable(s, db, "t", NULL, 0, 0, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetOpenTable(s, db, NULL, NULL, 0, 0, &u), JET_errInvalidName);
    TU_CHECK_ERR(JetDeleteTable(s, db, NULL), JET_errInvalidName);
    TU_CHECK_ERR(JetPutKV(s, t, NULL, 1, "v", 1, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, NULL, 5, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetRetrieveKV(s, t, NULL, 1, buf, sizeof buf, &n, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k", 1, NULL, 10, &n, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetDeleteKV(s, t, NULL, 1), JET_errInvalidParameter);
    TU_CHECK_ERR(JetSeekKV(s, t, NULL, 1, JET_bitSeekGE), JET_errInvalidParameter);
    TU_CHECK_ERR(JetMove(s, t, JET_MoveFirst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetRetrieveCurrentKV(s, t, NULL, 10, &n, NULL, 0, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetRetrieveCurrentKV(s, t, NULL, 0, NULL, NULL, 10, &n), JET_errInvalidParameter);
    CU_ASSERT_EQUAL(access(newdb, F_OK), -1);

    /* Bad grbits on the database calls, the end of a session and JetTerm2:
     * refused, and the thing stays as it was. */
    JET_DBID db_again = 77;
    TU_CHECK_ERR(JetAttachDatabase(s, dbpath, JET_bitDbOverwriteExisting), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetAttachDatabase(s, dbpath, 0x4), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetOpenDatabase(s, dbpath, NULL, &db_again, JET_bitDbOverwriteExisting), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetOpenDatabase(s, dbpath, NULL, &db_again, 0x8), JET_errInvalidGrbit);
    CU_ASSERT_EQUAL(db_again, 77);
    TU_CHECK_ERR(JetCloseDatabase(s, db, 0x1), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetGetTableNames(s, db, buf, sizeof buf, &n), JET_errSuccess); /* still open */
    JET_SESID s3;
    TU_CHECK_ERR(JetBeginSession(inst, &s3, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetEndSession(s3, 0x1), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginTransaction(s3), JET_errSuccess); /* still alive */
    TU_CHECK_ERR(JetRollback(s3, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndSession(s3, 0), JET_errSuccess);
    TU_CHECK_ERR(JetTerm2(inst, 0x8), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetTerm2(inst, 0x80000000), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k", 1, buf, sizeof buf, &n, 0), JET_errSuccess); /* still running */

    /* Handles of the wrong kind, of the wrong session, of another instance. */
    TU_CHECK_ERR(JetPutKV(s, (JET_TABLEID)s, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    TU_CHECK_ERR(JetPutKV((JET_SESID)t, t, "k", 1, "v", 1, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetBeginTransaction((JET_SESID)inst), JET_errInvalidSesid);
    TU_CHECK_ERR(JetBeginSession((JET_INSTANCE)s, &s3, NULL, NULL), JET_errInvalidInstance);
    TU_CHECK_ERR(JetPutKV(s, t2, "k", 1, "v", 1, 0), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetDeleteKV(s, t2, "k", 1), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetRetrieveKV(s, t2, "k", 1, buf, sizeof buf, &n, 0), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetSeekKV(s, t2, "k", 1, JET_bitSeekGE), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetMove(s, t2, JET_MoveFirst, 0), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetCloseTable(s, t2), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetPutKV(s2, t, "k", 1, "v", 1, 0), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetCloseTable(s2, t), JET_errSesidTableIdMismatch);
    /* A table id used from another session of the same instance. */
    JET_SESID s4;
    TU_CHECK_ERR(JetBeginSession(inst, &s4, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s4, t, "k", 1, "v", 1, 0), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetDeleteTable(s4, db, "t"), JET_errTableInUse);
    TU_CHECK_ERR(JetEndSession(s4, 0), JET_errSuccess);

    /* Session 0, JET_sesidNil and a closed session, on every call. */
    calls_with_bad_session(0, db, t, newdb);
    calls_with_bad_session(JET_sesidNil, db, t, newdb);
    calls_with_bad_session(s4, db, t, newdb);
    CU_ASSERT_EQUAL(access(newdb, F_OK), -1);

    /* A closed table id is gone. */
    TU_CHECK_ERR(JetOpenTable(s, db, "u", NULL, 0, 0, &u), JET_errSuccess);
    TU_CHECK_ERR(JetCloseTable(s, u), JET_errSuccess);
    TU_CHECK_ERR(JetCloseTable(s, u), JET_errInvalidTableId);
    TU_CHECK_ERR(JetPutKV(s, u, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    TU_CHECK_ERR(JetPutKV(s, (JET_TABLEID)0, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    TU_CHECK_ERR(JetPutKV(s, JET_tableidNil, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    TU_CHECK_ERR(JetDetachDatabase(s, dbpath), JET_errDatabaseInUse);

    /* Every table, key and value is as it was, in both instances. */
    size_t cb_after = 0, cb_after2 = 0;
    char *after = export_all(inst, dbpath, &cb_after);
    char *after2 = export_all(inst2, dbpath2, &cb_after2);
    assert_same_export(before, cb_before, after, cb_after);
    assert_same_export(before2, cb_before2, after2, cb_after2);
    free(after);

    TU_CHECK_ERR(JetCloseTable(s, t), JET_errSuccess);
    TU_CHECK_ERR(JetCloseDatabase(s, db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCloseDatabase(s, db, 0), JET_errInvalidDatabaseId);
    TU_CHECK_ERR(JetOpenDatabase(s, "/nonexistent/dir/x.db", NULL, &db, 0), JET_errInvalidPath);
    TU_CHECK_ERR(JetEndSession(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
    TU_CHECK_ERR(JetTerm(inst2), JET_errSuccess);
    /* ...and so it stays across a restart (the refused calls logged nothing
     * that recovery could replay). */
    inst = new_instance("badargs2");
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetAttachDatabase(s, dbpath, 0), JET_errSuccess);
    after = export_all(inst, dbpath, &cb_after);
    assert_same_export(before, cb_before, after, cb_after);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
    free(before);
    free(after);
    free(before2);
    free(after2);
    CU_ASSERT_STRING_EQUAL(JetErrorString(JET_errReadVerifyFailure),
                           "page checksum or page number mismatch (read verify failure)");
    CU_ASSERT_STRING_EQUAL(JetErrorString(-123456), "unknown error");
}

/*
 * Every code jet.h defines, written out by hand (reading jet.h at test time
 * would tie the test to the source tree).  The test also scans every value
 * in ESE's range for messages err.c has beyond this list, so a code added
 * to jet.h and err.c but not here is caught too.
 */
#define E(code) {code, #code}
static const struct {
    JET_ERR err;
    const char *name;
} all_codes[] = {
    E(JET_errSuccess), E(JET_wrnBufferTruncated), E(JET_wrnDatabaseAttached), E(JET_errLogFileCorrupt),
    E(JET_errBackupInProgress), E(JET_errRestoreInProgress), E(JET_errMissingPreviousLogFile),
    E(JET_errLogWriteFail), E(JET_errBadLogVersion), E(JET_errInvalidLogSequence), E(JET_errLoggingDisabled),
    E(JET_errNoBackup), E(JET_errInvalidBackupSequence), E(JET_errBackupNotAllowedYet), E(JET_errInvalidBackup),
    E(JET_errMissingLogFile), E(JET_errBadLogSignature), E(JET_errBadDbSignature), E(JET_errBadCheckpointSignature),
    E(JET_errCheckpointCorrupt), E(JET_errLogFileSizeMismatch), E(JET_errCheckpointFileNotFound),
    E(JET_errDatabaseDirtyShutdown), E(JET_errGivenLogFileHasBadSignature), E(JET_errGivenLogFileIsNotContiguous),
    E(JET_errMissingRestoreLogFiles), E(JET_errMissingFullBackup), E(JET_errBadBackupDatabaseSize),
    E(JET_errMissingFileToBackup), E(JET_errDbTimeTooOld), E(JET_errDbTimeTooNew), E(JET_errLogReadVerifyFailure), E(JET_errRestoreOfNonBackupDatabase),
    E(JET_errLogFileNotCopied), E(JET_errBackupAbortByServer), E(JET_errInvalidGrbit), E(JET_errTermInProgress),
    E(JET_errFeatureNotAvailable), E(JET_errInvalidName), E(JET_errInvalidParameter), E(JET_errInvalidDatabaseId),
    E(JET_errOutOfMemory), E(JET_errReadVerifyFailure), E(JET_errPageNotInitialized), E(JET_errDiskIO),
    E(JET_errInvalidPath), E(JET_errRecordTooBig), E(JET_errInvalidDatabase), E(JET_errNotInitialized),
    E(JET_errAlreadyInitialized), E(JET_errFileAccessDenied), E(JET_errBufferTooSmall), E(JET_errNotInTransaction),
    E(JET_errVersionStoreOutOfMemory), E(JET_errRunningInOneInstanceMode), E(JET_errRunningInMultiInstanceMode),
    E(JET_errSystemParamsAlreadySet), E(JET_errInstanceNameInUse), E(JET_errInstanceUnavailable),
    E(JET_errOutOfSessions), E(JET_errWriteConflict), E(JET_errTransTooDeep), E(JET_errInvalidSesid),
    E(JET_errInTransaction), E(JET_errTransReadOnly), E(JET_errSesidTableIdMismatch), E(JET_errInvalidInstance),
    E(JET_errDatabaseDuplicate), E(JET_errDatabaseInUse), E(JET_errDatabaseNotFound), E(JET_errDatabaseInvalidName),
    E(JET_errDatabaseCorrupted), E(JET_errDatabaseLocked), E(JET_errPageSizeMismatch), E(JET_errTableDuplicate),
    E(JET_errTableInUse), E(JET_errObjectNotFound), E(JET_errInvalidTableId), E(JET_errRecordNotFound),
    E(JET_errNoCurrentRecord), E(JET_errRecordDeleted), E(JET_errKeyDuplicate), E(JET_errTooManyAttachedDatabases), E(JET_errDiskFull), E(JET_errPermissionDenied),
    E(JET_errFileNotFound), E(JET_errFileInvalidType),
    /* issue 12, streaming-backup side */
    E(JET_errBackupDirectoryNotEmpty), E(JET_errDatabasePatchFileMismatch), E(JET_errSurrogateBackupInProgress),
    E(JET_errClientRequestToStopJetService), E(JET_errCallbackFailed),
    /* directory backups and restore ranges (issue 12, points 5-8) */
    E(JET_errEndingRestoreLogTooLow), E(JET_errStartingRestoreLogTooHigh),
    E(JET_errBadRestoreTargetInstance)
};
#undef E

static void test_every_error_has_a_message(void)
{
    size_t n = sizeof all_codes / sizeof all_codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *msg = JetErrorString(all_codes[i].err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
        if (msg[0] == '\0' || strncmp(msg, "unknown", 7) == 0) {
            fprintf(stderr, "%s (%ld) has no message: \"%s\"\n", all_codes[i].name, all_codes[i].err, msg);
            CU_FAIL("error code without a message");
        }
        /* Two codes sharing a value would make one of them unreachable. */
        for (size_t j = 0; j < i; j++)
            if (all_codes[j].err == all_codes[i].err) {
                fprintf(stderr, "%s and %s share %ld\n", all_codes[j].name, all_codes[i].name, all_codes[i].err);
                CU_FAIL("two error codes share a value");
            }
    }
    for (JET_ERR e = -9999; e <= 9999; e++) {
        if (strncmp(JetErrorString(e), "unknown", 7) == 0) continue;
        size_t i = 0;
        while (i < n && all_codes[i].err != e) i++;
        if (i == n) {
            fprintf(stderr, "err.c knows %ld (\"%s\") but the test's list does not\n", e, JetErrorString(e));
            CU_FAIL("error code missing from all_codes");
        }
    }
    /* The two codes the engine returned without jet.h naming them: ESE's
     * values, and the engine really returns them. */
    CU_ASSERT_EQUAL(JET_errTransReadOnly, -1110);
    CU_ASSERT_EQUAL(JET_wrnDatabaseAttached, 1007); /* esent.h's value (issue 12) */
    setup_paths("api_errmsg");
    JET_INSTANCE inst = new_instance("errmsg");
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errSuccess);
    TU_CHECK_ERR(JetAttachDatabase(s, dbpath, 0), JET_wrnDatabaseAttached);
    TU_CHECK_ERR(JetBeginTransaction2(s, JET_bitTransactionReadOnly), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, 0), JET_errTransReadOnly);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

static void put_str(JET_SESID s, JET_TABLEID t, const char *k, const char *v)
{
    TU_CHECK_ERR(JetPutKV(s, t, k, strlen(k), v, strlen(v), 0), JET_errSuccess);
}

static int get_str(JET_SESID s, JET_TABLEID t, const char *k, char *out, size_t cb)
{
    unsigned long n = 0;
    JET_ERR err = JetRetrieveKV(s, t, k, strlen(k), out, (unsigned long)cb - 1, &n, 0);
    if (err < 0) return (int)err;
    out[n < cb ? n : cb - 1] = '\0';
    return 0;
}

static void test_crud_transactions_persistence(void)
{
    setup_paths("api_crud");
    JET_INSTANCE inst = new_instance("crud");
    JET_SESID s, r;
    JET_DBID db;
    JET_TABLEID t, rt;
    char buf[64];
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetBeginSession(inst, &r, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s, db, "kv", 0, 0, &t), JET_errSuccess);
    put_str(s, t, "b", "2");
    put_str(s, t, "a", "1");
    put_str(s, t, "c", "3");
    /* Rolled back changes vanish; committed ones stay. */
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    put_str(s, t, "d", "4");
    TU_CHECK_ERR(JetDeleteKV(s, t, "a", 1), JET_errSuccess);
    /* Another session does not see uncommitted changes. */
    JET_DBID rdb;
    TU_CHECK_ERR(JetOpenDatabase(r, dbpath, NULL, &rdb, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenTable(r, rdb, "kv", NULL, 0, 0, &rt), JET_errSuccess);
    CU_ASSERT_EQUAL(get_str(r, rt, "d", buf, sizeof buf), JET_errRecordNotFound);
    CU_ASSERT_EQUAL(get_str(r, rt, "a", buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(get_str(s, t, "d", buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(get_str(s, t, "a", buf, sizeof buf), JET_errRecordNotFound);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(get_str(s, t, "d", buf, sizeof buf), JET_errRecordNotFound);
    CU_ASSERT_EQUAL(get_str(s, t, "a", buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "1");
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    put_str(s, t, "e", "5");
    put_str(s, t, "b", "22");
    TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(get_str(r, rt, "b", buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "22");
    /* Truncated retrieval. */
    unsigned long n = 0;
    TU_CHECK_ERR(JetRetrieveKV(s, t, "b", 1, buf, 1, &n, 0), JET_wrnBufferTruncated);
    CU_ASSERT_EQUAL(n, 2);
    /* Cursor walk forward and back. */
    const char *order = "abce";
    TU_CHECK_ERR(JetMove(s, t, JET_MoveFirst, 0), JET_errSuccess);
    for (int i = 0; i < 4; i++) {
        char k[8];
        unsigned long kl = 0;
        TU_CHECK_ERR(JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, NULL, 0, NULL), JET_errSuccess);
        CU_ASSERT_EQUAL(kl, 1);
        CU_ASSERT_EQUAL(k[0], order[i]);
        JET_ERR e = JetMove(s, t, JET_MoveNext, 0);
        TU_CHECK_ERR(e, i < 3 ? JET_errSuccess : JET_errNoCurrentRecord);
    }
    TU_CHECK_ERR(JetMove(s, t, JET_MoveLast, 0), JET_errSuccess);
    TU_CHECK_ERR(JetMove(s, t, JET_MovePrevious, 0), JET_errSuccess);
    char k[8];
    unsigned long kl = 0, vl = 0;
    char v[8];
    TU_CHECK_ERR(JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, v, sizeof v, &vl), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'c' && vl == 1 && v[0] == '3');
    TU_CHECK_ERR(JetSeekKV(s, t, "bb", 2, JET_bitSeekGE), JET_errSuccess);
    TU_CHECK_ERR(JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, NULL, 0, NULL), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'c');
    TU_CHECK_ERR(JetSeekKV(s, t, "bb", 2, JET_bitSeekLE), JET_errSuccess);
    TU_CHECK_ERR(JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, NULL, 0, NULL), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'b');
    TU_CHECK_ERR(JetSeekKV(s, t, "z", 1, JET_bitSeekGE), JET_errRecordNotFound);
    TU_CHECK_ERR(JetSeekKV(s, t, "bb", 2, JET_bitSeekEQ), JET_errRecordNotFound);
    /* A 1 MiB value round-trips. */
    size_t bigsz = 1u << 20;
    unsigned char *bigv = malloc(bigsz), *back = malloc(bigsz);
    for (size_t i = 0; i < bigsz; i++) bigv[i] = (unsigned char)(i * 131 + 7);
    TU_CHECK_ERR(JetPutKV(s, t, "big", 3, bigv, (unsigned long)bigsz, 0), JET_errSuccess);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "big", 3, back, (unsigned long)bigsz, &n, 0), JET_errSuccess);
    CU_ASSERT(n == bigsz && memcmp(bigv, back, bigsz) == 0);
    /* Table names. */
    JET_TABLEID t2;
    TU_CHECK_ERR(JetCreateTable(s, db, "another", 0, 0, &t2), JET_errSuccess);
    char names[64];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetTableNames(s, db, names, sizeof names, &cb), JET_errSuccess);
    CU_ASSERT_EQUAL(cb, sizeof "another" + sizeof "kv" + 1);
    CU_ASSERT_STRING_EQUAL(names, "another");
    CU_ASSERT_STRING_EQUAL(names + 8, "kv");
    TU_CHECK_ERR(JetCloseTable(s, t2), JET_errSuccess);
    TU_CHECK_ERR(JetDeleteTable(s, db, "another"), JET_errSuccess);
    TU_CHECK_ERR(JetOpenTable(s, db, "another", NULL, 0, 0, &t2), JET_errObjectNotFound);
    TU_CHECK_ERR(JetEndSession(r, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndSession(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);

    /* Everything persists across a clean restart. */
    inst = new_instance("crud2");
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetAttachDatabase(s, dbpath, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenDatabase(s, dbpath, NULL, &db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenTable(s, db, "kv", NULL, 0, 0, &t), JET_errSuccess);
    CU_ASSERT_EQUAL(get_str(s, t, "e", buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "5");
    CU_ASSERT_EQUAL(get_str(s, t, "d", buf, sizeof buf), JET_errRecordNotFound);
    memset(back, 0, bigsz);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "big", 3, back, (unsigned long)bigsz, &n, 0), JET_errSuccess);
    CU_ASSERT(n == bigsz && memcmp(bigv, back, bigsz) == 0);
    TU_CHECK_ERR(JetOpenTable(s, db, "another", NULL, 0, 0, &t2), JET_errObjectNotFound);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
    free(bigv);
    free(back);
}

/* A new instance in a fresh directory with one parameter set, a session,
 * and table "t" of a new database. */
static JET_INSTANCE start_table(const char *name, unsigned long param, JET_API_PTR value, JET_SESID *ps,
                                JET_TABLEID *pt)
{
    setup_paths(name);
    JET_INSTANCE inst = 0;
    JET_DBID db;
    TU_CHECK_ERR(JetCreateInstance(&inst, name), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, param, value, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetInit(&inst), JET_errSuccess);
    TU_CHECK_ERR(JetBeginSession(inst, ps, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(*ps, dbpath, NULL, &db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(*ps, db, "t", 0, 0, pt), JET_errSuccess);
    return inst;
}

static void test_transaction_too_big_for_cache(void)
{
    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE inst = start_table("api_bigtxn", JET_paramCacheSizeMax, 128, &s, &t);
    put_str(s, t, "keep", "me");
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    char val[2000];
    memset(val, 'x', sizeof val);
    JET_ERR err = JET_errSuccess;
    for (int i = 0; i < 5000 && err >= 0; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%06d", i);
        err = JetPutKV(s, t, key, strlen(key), val, sizeof val, 0);
    }
    TU_CHECK_ERR(err, JET_errVersionStoreOutOfMemory);
    TU_CHECK_ERR(JetCommitTransaction(s, 0) < 0, 1);
    char buf[16];
    CU_ASSERT_EQUAL(get_str(s, t, "k000001", buf, sizeof buf), JET_errRecordNotFound);
    CU_ASSERT_EQUAL(get_str(s, t, "keep", buf, sizeof buf), 0);
    /* The instance carries on. */
    put_str(s, t, "after", "ok");
    CU_ASSERT_EQUAL(get_str(s, t, "after", buf, sizeof buf), 0);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

static void test_a_missing_directory_is_refused_unless_asked_for(void)
{
    setup_paths("api_paths");
    char missing[1200], logs[1300];
    snprintf(missing, sizeof missing, "%s/typo", dir);
    snprintf(logs, sizeof logs, "%s/logs", missing);
    JET_INSTANCE inst = 0;
    TU_CHECK_ERR(JetCreateInstance(&inst, "paths"), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, missing), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, logs), JET_errSuccess);
    TU_CHECK_ERR(JetInit(&inst), JET_errInvalidPath);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "JET_paramCreatePathIfNotExist") != NULL);
    struct stat st;
    CU_ASSERT(stat(missing, &st) != 0); /* nothing created */
    JetTerm(inst);
    inst = 0;
    TU_CHECK_ERR(JetCreateInstance(&inst, "paths"), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, missing), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, logs), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramCreatePathIfNotExist, 1, NULL), JET_errSuccess);
    JET_API_PTR v = 0;
    TU_CHECK_ERR(JetGetSystemParameter(inst, 0, JET_paramCreatePathIfNotExist, &v, NULL, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(v, 1);
    TU_CHECK_ERR(JetInit(&inst), JET_errSuccess);
    CU_ASSERT(stat(logs, &st) == 0 && S_ISDIR(st.st_mode));
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

/* The largest value jet.h allows goes in with the default cache, outside a
 * transaction. */
static void test_a_value_of_the_documented_maximum_fits_the_default_cache(void)
{
    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE inst = start_table("api_bigvalue", JET_paramLogFileSize, 16384, &s, &t);
    unsigned long n = JET_cbValueMost;
    char *val = malloc(n), *back = malloc(n);
    CU_ASSERT_FATAL(val && back);
    for (unsigned long i = 0; i < n; i++) val[i] = (char)(i * 131 >> 7);
    TU_CHECK_ERR(JetPutKV(s, t, "big", 3, val, n, 0), JET_errSuccess);
    if (JetGetLastErrorDetail()[0]) fprintf(stderr, "big value: %s\n", JetGetLastErrorDetail());
    unsigned long got = 0;
    TU_CHECK_ERR(JetRetrieveKV(s, t, "big", 3, back, n, &got, 0), JET_errSuccess);
    CU_ASSERT(got == n && memcmp(val, back, n) == 0);
    TU_CHECK_ERR(JetPutKV(s, t, "big", 3, val, n + 1, 0), JET_errRecordTooBig);
    free(val);
    free(back);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

static void test_several_databases_and_page_size(void)
{
    setup_paths("api_multidb");
    JET_INSTANCE inst = 0;
    TU_CHECK_ERR(JetCreateInstance(&inst, "multidb"), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramDatabasePageSize, 5000, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramDatabasePageSize, 16384, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramBaseName, 0, "abcd"), JET_errInvalidParameter);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramBaseName, 0, "xyz"), JET_errSuccess);
    TU_CHECK_ERR(JetInit(&inst), JET_errSuccess);
    JET_API_PTR v = 0;
    TU_CHECK_ERR(JetGetSystemParameter(inst, 0, JET_paramDatabasePageSize, &v, NULL, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(v, 16384);
    JET_SESID s;
    JET_DBID d1, d2;
    JET_TABLEID t1, t2;
    char p2[1200], buf[16];
    snprintf(p2, sizeof p2, "%s/second.db", dir);
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &d1, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, p2, NULL, &d2, 0), JET_errSuccess);
    CU_ASSERT(d1 != d2);
    TU_CHECK_ERR(JetCreateTable(s, d1, "t", 0, 0, &t1), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s, d2, "t", 0, 0, &t2), JET_errSuccess);
    /* One transaction spanning both databases commits atomically. */
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    put_str(s, t1, "k", "one");
    put_str(s, t2, "k", "two");
    TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(get_str(s, t1, "k", buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "one");
    CU_ASSERT_EQUAL(get_str(s, t2, "k", buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "two");
    TU_CHECK_ERR(JetCloseTable(s, t2), JET_errSuccess);
    TU_CHECK_ERR(JetCloseDatabase(s, d2, 0), JET_errSuccess);
    TU_CHECK_ERR(JetDetachDatabase(s, p2), JET_errSuccess);
    TU_CHECK_ERR(JetOpenDatabase(s, p2, NULL, &d2, 0), JET_errDatabaseNotFound);
    TU_CHECK_ERR(JetAttachDatabase(s, p2, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenDatabase(s, p2, NULL, &d2, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenTable(s, d2, "t", NULL, 0, 0, &t2), JET_errSuccess);
    CU_ASSERT_EQUAL(get_str(s, t2, "k", buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "two");
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
    /* A database of another page size is refused, naming both sizes. */
    inst = new_instance("multidb2");
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetAttachDatabase(s, p2, 0), JET_errPageSizeMismatch);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "16384"));
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

/* A counter in text, as RESP's INCR keeps it: +1, or 7 for "leave it". */
static JET_ERR bump(void *ctx, const void *old, unsigned long cbOld, int fExists, const void **ppvNew,
                    unsigned long *pcbNew)
{
    static char out[32];
    long v = 0;
    if (fExists) {
        if (cbOld >= sizeof out) return 7;
        memcpy(out, old, cbOld);
        out[cbOld] = '\0';
        v = atol(out);
    }
    int *calls = ctx;
    (*calls)++;
    snprintf(out, sizeof out, "%ld", v + 1);
    *ppvNew = out;
    *pcbNew = (unsigned long)strlen(out);
    return JET_errSuccess;
}

static JET_ERR refuse_update(void *ctx, const void *old, unsigned long cbOld, int fExists, const void **ppvNew,
                             unsigned long *pcbNew)
{
    (void)ctx, (void)old, (void)cbOld, (void)fExists, (void)ppvNew, (void)pcbNew;
    return JET_errWriteConflict;
}

static void test_update_kv_reads_and_writes_in_one_call(void)
{
    const char *dir = tu_scratch_dir("api_update");
    char db[1100], buf[64];
    snprintf(db, sizeof db, "%s/u.db", dir);
    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE inst = tu_instance("upd", dir, (struct tu_params){0});
    tu_table(inst, db, 1, &s, &t);
    int calls = 0;
    unsigned long n = 0;
    /* Absent: created; present: read and replaced. */
    TU_CHECK_ERR(JetUpdateKV(s, t, "c", 1, bump, &calls), JET_errSuccess);
    TU_CHECK_ERR(JetUpdateKV(s, t, "c", 1, bump, &calls), JET_errSuccess);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "c", 1, buf, sizeof buf, &n, 0), JET_errSuccess);
    CU_ASSERT(n == 1 && buf[0] == '2');
    CU_ASSERT_EQUAL(calls, 2);
    /* A value too long for the callback: its positive answer comes back and
     * the key is left alone; an error is returned, nothing written.  An old
     * value on overflow pages is read whole. */
    char big[20000];
    memset(big, '9', sizeof big);
    TU_CHECK_ERR(JetPutKV(s, t, "b", 1, big, sizeof big, 0), JET_errSuccess);
    TU_CHECK_ERR(JetUpdateKV(s, t, "b", 1, bump, &calls), 7);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "b", 1, NULL, 0, &n, 0), JET_wrnBufferTruncated);
    CU_ASSERT_EQUAL(n, sizeof big);
    TU_CHECK_ERR(JetUpdateKV(s, t, "c", 1, refuse_update, NULL), JET_errWriteConflict);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "c", 1, buf, sizeof buf, &n, 0), JET_errSuccess);
    CU_ASSERT(n == 1 && buf[0] == '2');
    TU_CHECK_ERR(JetUpdateKV(s, t, "c", 1, NULL, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetUpdateKV(s, t, "", 0, bump, &calls), JET_errInvalidParameter);
    /* In a transaction, rolled back with it. */
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    TU_CHECK_ERR(JetUpdateKV(s, t, "c", 1, bump, &calls), JET_errSuccess);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "c", 1, buf, sizeof buf, &n, 0), JET_errSuccess);
    CU_ASSERT(n == 1 && buf[0] == '2');
    CU_ASSERT(JetTerm(inst) >= 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("api", NULL, NULL);
    CU_add_test(su, "test_instance_modes", test_modes);
    CU_add_test(su, "test_bad_arguments_return_documented_errors", test_bad_arguments);
    CU_add_test(su, "test_crud_transactions_and_persistence", test_crud_transactions_persistence);
    CU_add_test(su, "test_transaction_too_big_for_cache_is_rolled_back", test_transaction_too_big_for_cache);
    CU_add_test(su, "test_several_databases_and_page_size", test_several_databases_and_page_size);
    CU_add_test(su, "test_every_error_has_a_message", test_every_error_has_a_message);
    CU_add_test(su, "test_update_kv_reads_and_writes_in_one_call", test_update_kv_reads_and_writes_in_one_call);
    CU_add_test(su, "test_a_missing_directory_is_refused_unless_asked_for",
                test_a_missing_directory_is_refused_unless_asked_for);
    CU_add_test(su, "test_a_value_of_the_documented_maximum_fits_the_default_cache",
                test_a_value_of_the_documented_maximum_fits_the_default_cache);
    return tu_run();
}
