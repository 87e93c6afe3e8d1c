/*
 * test_api.c -- the public API end to end in one process: instance modes,
 * sessions, transactions, databases, tables, key/value operations, cursors,
 * persistence across JetTerm/JetInit, and every call's answer to bad
 * arguments (null and stale handles, closed sessions, bad grbits).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void test_bad_arguments(void)
{
    setup_paths("api_badargs");
    JET_INSTANCE inst = new_instance("badargs");
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    TU_CHECK_ERR(JetBeginSession(inst, NULL, NULL, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetBeginSession((JET_INSTANCE)0xdead00000001ull, &s, NULL, NULL), JET_errInvalidInstance);
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0), JET_errDatabaseInUse);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0x40000000), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errTableDuplicate);
    TU_CHECK_ERR(JetCreateTable(s, db, "", 0, 0, &t), JET_errInvalidName);
    TU_CHECK_ERR(JetCreateTable(s, db + 5, "u", 0, 0, &t), JET_errInvalidDatabaseId);
    TU_CHECK_ERR(JetOpenTable(s, db, "missing", NULL, 0, 0, &t), JET_errObjectNotFound);
    TU_CHECK_ERR(JetOpenTable(s, db, "t", NULL, 0, 0, &t), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 0, "v", 1, 0), JET_errInvalidParameter);
    char big[300];
    memset(big, 'k', sizeof big);
    TU_CHECK_ERR(JetPutKV(s, t, big, JET_cbKeyMost + 1, "v", 1, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetPutKV(s, t, big, JET_cbKeyMost, "v", 1, 0), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, JET_bitPutInsert | JET_bitPutReplace), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, 0x80), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, JET_bitPutReplace), JET_errRecordNotFound);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, JET_bitPutInsert), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, JET_bitPutInsert), JET_errKeyDuplicate);
    TU_CHECK_ERR(JetDeleteKV(s, t, "zz", 2), JET_errRecordNotFound);
    TU_CHECK_ERR(JetSeekKV(s, t, "k", 1, 0x3), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetMove(s, t, JET_MoveNext, 0), JET_errNoCurrentRecord);
    TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errNotInTransaction);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errNotInTransaction);
    TU_CHECK_ERR(JetBeginTransaction2(s, 0x100), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errSuccess);
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errTransTooDeep);
    TU_CHECK_ERR(JetCommitTransaction(s, 0x400), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetRollback(s, 0), JET_errSuccess);
    /* A table id used from another session. */
    JET_SESID s2;
    TU_CHECK_ERR(JetBeginSession(inst, &s2, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s2, t, "k", 1, "v", 1, 0), JET_errSesidTableIdMismatch);
    TU_CHECK_ERR(JetDeleteTable(s2, db, "t"), JET_errTableInUse);
    TU_CHECK_ERR(JetEndSession(s2, 0), JET_errSuccess);
    /* A closed session and its tables are gone. */
    TU_CHECK_ERR(JetPutKV(s2, t, "k", 1, "v", 1, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetEndSession(s2, 0), JET_errInvalidSesid);
    TU_CHECK_ERR(JetCloseTable(s, t), JET_errSuccess);
    TU_CHECK_ERR(JetCloseTable(s, t), JET_errInvalidTableId);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    TU_CHECK_ERR(JetPutKV(s, (JET_TABLEID)0, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    TU_CHECK_ERR(JetDetachDatabase(s, dbpath), JET_errDatabaseInUse);
    TU_CHECK_ERR(JetCloseDatabase(s, db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCloseDatabase(s, db, 0), JET_errInvalidDatabaseId);
    TU_CHECK_ERR(JetOpenDatabase(s, "/nonexistent/dir/x.db", NULL, &db, 0), JET_errInvalidPath);
    TU_CHECK_ERR(JetEndSession(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(JetErrorString(JET_errReadVerifyFailure),
                           "page checksum or page number mismatch (read verify failure)");
    CU_ASSERT_STRING_EQUAL(JetErrorString(-123456), "unknown error");
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

static void test_transaction_too_big_for_cache(void)
{
    setup_paths("api_bigtxn");
    JET_INSTANCE inst = 0;
    TU_CHECK_ERR(JetCreateInstance(&inst, "bigtxn"), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(&inst, 0, JET_paramCacheSizeMax, 128, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetInit(&inst), JET_errSuccess);
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    TU_CHECK_ERR(JetBeginSession(inst, &s, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetCreateDatabase(s, dbpath, NULL, &db, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errSuccess);
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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("api", NULL, NULL);
    CU_add_test(su, "test_instance_modes", test_modes);
    CU_add_test(su, "test_bad_arguments_return_documented_errors", test_bad_arguments);
    CU_add_test(su, "test_crud_transactions_and_persistence", test_crud_transactions_persistence);
    CU_add_test(su, "test_transaction_too_big_for_cache_is_rolled_back", test_transaction_too_big_for_cache);
    CU_add_test(su, "test_several_databases_and_page_size", test_several_databases_and_page_size);
    return tu_run();
}
