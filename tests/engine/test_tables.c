/*
 * test_tables.c -- tables and cursors (engine/tables.c) as an embedding
 * program uses them: a handle dies with what it names, a cursor keeps its
 * place when its key is deleted under it, and an error's detail belongs to
 * that error.
 *
 *   - a table created or opened in a rolled-back transaction is closed with
 *     it: its id answers JET_errInvalidTableId to every call, even once
 *     another table reuses its pages (randomized over every invalidation);
 *   - a scan by JetMove while other sessions insert and delete sees every
 *     key that existed throughout, once, in order (randomized);
 *   - JetGetLastErrorDetail is "" after a call that succeeded, and names
 *     the error of the call that failed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jet.h"
#include "testutil.h"

static char dir[1024], dbpath[1100];
static JET_INSTANCE inst;

/* The suite's instance and database, made by the first test that runs. */
static void ensure_started(void)
{
    if (inst) return;
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("tables"));
    snprintf(dbpath, sizeof dbpath, "%s/t.db", dir);
    inst = tu_instance("tables", dir, (struct tu_params){.log_kb = 1024});
    JET_SESID s;
    JET_DBID db;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(s, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
}

static void open_session(JET_SESID *ps, JET_DBID *pdb)
{
    ensure_started();
    CU_ASSERT_FATAL(JetBeginSession(inst, ps, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(*ps, dbpath, NULL, pdb, 0) >= 0);
}

static long count_keys(JET_SESID s, JET_TABLEID t)
{
    long n = 0;
    JET_ERR err = JetMove(s, t, JET_MoveFirst, 0);
    while (err >= 0) {
        n++;
        err = JetMove(s, t, JET_MoveNext, 0);
    }
    CU_ASSERT_EQUAL(err, JET_errNoCurrentRecord);
    return n;
}

/* Every call a dead table id can be given answers JET_errInvalidTableId. */
static void assert_dead(JET_SESID s, JET_TABLEID t, const char *how)
{
    char v[16];
    unsigned long n = 0;
    JET_ERR e[7] = {
        JetPutKV(s, t, "k", 1, "v", 1, 0),
        JetRetrieveKV(s, t, "k", 1, v, sizeof v, &n, 0),
        JetDeleteKV(s, t, "k", 1),
        JetSeekKV(s, t, "k", 1, JET_bitSeekGE),
        JetMove(s, t, JET_MoveFirst, 0),
        JetRetrieveCurrentKV(s, t, v, sizeof v, &n, v, sizeof v, &n),
        JetCloseTable(s, t),
    };
    for (int i = 0; i < 7; i++) {
        if (e[i] != JET_errInvalidTableId) fprintf(stderr, "tables: after %s, call %d answered %ld\n", how, i, e[i]);
        CU_ASSERT_EQUAL(e[i], JET_errInvalidTableId);
    }
}

static void test_a_rolled_back_table_id_never_reaches_another_table(void)
{
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID u, w;
    open_session(&s, &db);
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "u", 0, 0, &u) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, u, "k", 1, "in u", 4, 0) >= 0);
    CU_ASSERT_FATAL(JetRollback(s, 0) >= 0);
    assert_dead(s, u, "rollback of the create");
    /* w takes the pages u had: u's id still reaches nothing. */
    CU_ASSERT_FATAL(JetCreateTable(s, db, "w", 0, 0, &w) >= 0);
    assert_dead(s, u, "rollback, then another table created");
    CU_ASSERT_EQUAL(count_keys(s, w), 0);
    /* Opened before the transaction: survives its rollback.  Opened in a
     * committed one: survives too. */
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    JET_TABLEID w2;
    CU_ASSERT_FATAL(JetOpenTable(s, db, "w", NULL, 0, 0, &w2) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, w, "a", 1, "1", 1, 0) >= 0);
    CU_ASSERT_FATAL(JetRollback(s, 0) >= 0);
    assert_dead(s, w2, "rollback of an open");
    CU_ASSERT_EQUAL(count_keys(s, w), 0);
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(s, db, "w", NULL, 0, 0, &w2) >= 0);
    CU_ASSERT_FATAL(JetCommitTransaction(s, 0) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, w2, "b", 1, "2", 1, 0) >= 0);
    CU_ASSERT_EQUAL(count_keys(s, w), 1);
    CU_ASSERT_FATAL(JetCloseTable(s, w2) >= 0);
    CU_ASSERT_FATAL(JetCloseTable(s, w) >= 0);
    CU_ASSERT_FATAL(JetDeleteTable(s, db, "w") >= 0);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
}

/* Random invalidations, each followed by other tables reusing space and
 * handle slots; every dead id stays dead and the live tables keep exactly
 * their keys. */
static void test_handles_die_with_what_they_name_randomized(void)
{
    uint64_t st = tu_seed("tables_handles");
    JET_SESID s;
    JET_DBID db;
    open_session(&s, &db);
    enum { LIVE = 4 };
    JET_TABLEID live[LIVE];
    long nkeys[LIVE] = {0};
    for (int i = 0; i < LIVE; i++) {
        char name[16];
        snprintf(name, sizeof name, "live%d", i);
        CU_ASSERT_FATAL(JetCreateTable(s, db, name, 0, 0, &live[i]) >= 0);
    }
    long trials = tu_count("TABLES_TRIALS", 60, 600);
    for (long trial = 0; trial < trials; trial++) {
        char name[32];
        snprintf(name, sizeof name, "tmp%ld", trial);
        JET_TABLEID dead = 0;
        JET_SESID other = 0;
        const char *how = "";
        switch (tu_rand(&st) % 4) {
        case 0: /* created in a transaction rolled back */
            how = "create rolled back";
            CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
            CU_ASSERT_FATAL(JetCreateTable(s, db, name, 0, 0, &dead) >= 0);
            for (int k = 0; k < (int)(tu_rand(&st) % 50); k++) {
                char key[16];
                snprintf(key, sizeof key, "x%d", k);
                CU_ASSERT_FATAL(JetPutKV(s, dead, key, strlen(key), "junk", 4, 0) >= 0);
            }
            CU_ASSERT_FATAL(JetRollback(s, 0) >= 0);
            break;
        case 1: /* a live table opened in a transaction rolled back */
            how = "open rolled back";
            CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
            snprintf(name, sizeof name, "live%d", (int)(tu_rand(&st) % LIVE));
            CU_ASSERT_FATAL(JetOpenTable(s, db, name, NULL, 0, 0, &dead) >= 0);
            CU_ASSERT_FATAL(JetRollback(s, 0) >= 0);
            break;
        case 2: /* closed */
            how = "close";
            CU_ASSERT_FATAL(JetCreateTable(s, db, name, 0, 0, &dead) >= 0);
            CU_ASSERT_FATAL(JetCloseTable(s, dead) >= 0);
            CU_ASSERT_FATAL(JetDeleteTable(s, db, name) >= 0);
            break;
        default: /* its session ended */
            how = "session ended";
            CU_ASSERT_FATAL(JetBeginSession(inst, &other, NULL, NULL) >= 0);
            JET_DBID odb;
            CU_ASSERT_FATAL(JetOpenDatabase(other, dbpath, NULL, &odb, 0) >= 0);
            CU_ASSERT_FATAL(JetOpenTable(other, odb, "live0", NULL, 0, 0, &dead) >= 0);
            CU_ASSERT_FATAL(JetEndSession(other, 0) >= 0);
            CU_ASSERT_EQUAL(JetPutKV(other, dead, "k", 1, "v", 1, 0), JET_errInvalidSesid);
            break;
        }
        /* Space and handle slots get reused. */
        JET_TABLEID reuse;
        char rname[32];
        snprintf(rname, sizeof rname, "reuse%ld", trial);
        CU_ASSERT_FATAL(JetCreateTable(s, db, rname, 0, 0, &reuse) >= 0);
        int i = (int)(tu_rand(&st) % LIVE);
        char key[24];
        snprintf(key, sizeof key, "k%ld", trial);
        CU_ASSERT_FATAL(JetPutKV(s, live[i], key, strlen(key), "v", 1, 0) >= 0);
        nkeys[i]++;
        assert_dead(s, dead, how);
        CU_ASSERT_FATAL(JetCloseTable(s, reuse) >= 0);
        CU_ASSERT_FATAL(JetDeleteTable(s, db, rname) >= 0);
    }
    for (int i = 0; i < LIVE; i++) CU_ASSERT_EQUAL(count_keys(s, live[i]), nkeys[i]);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
}

static void test_a_cursor_whose_key_is_deleted_moves_to_its_neighbours(void)
{
    JET_SESID s, d;
    JET_DBID db, ddb;
    JET_TABLEID t, td;
    open_session(&s, &db);
    open_session(&d, &ddb);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "nb", 0, 0, &t) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(d, ddb, "nb", NULL, 0, 0, &td) >= 0);
    for (char c = 'a'; c <= 'e'; c++) CU_ASSERT_FATAL(JetPutKV(s, t, &c, 1, "v", 1, 0) >= 0);
    char k[4];
    unsigned long kl = 0;
    CU_ASSERT_FATAL(JetSeekKV(s, t, "c", 1, JET_bitSeekEQ) >= 0);
    CU_ASSERT_FATAL(JetDeleteKV(d, td, "c", 1) >= 0);
    CU_ASSERT_EQUAL(JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, k, sizeof k, &kl), JET_errRecordDeleted);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "deleted") != NULL);
    CU_ASSERT_EQUAL(JetMove(s, t, JET_MoveNext, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, NULL, 0, NULL), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'd');
    /* And backwards: from a deleted key to the one before it. */
    CU_ASSERT_FATAL(JetDeleteKV(d, td, "d", 1) >= 0);
    CU_ASSERT_EQUAL(JetMove(s, t, JET_MovePrevious, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, NULL, 0, NULL), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'b');
    CU_ASSERT_FATAL(JetEndSession(d, 0) >= 0);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
}

/* ---- scans under concurrent inserts and deletes ---- */

#define STABLE 400
static atomic_int churn_stop;

static void *churn(void *arg)
{
    uint64_t st = *(uint64_t *)arg;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    if (JetBeginSession(inst, &s, NULL, NULL) < 0 || JetOpenDatabase(s, dbpath, NULL, &db, 0) < 0 ||
        JetOpenTable(s, db, "scan", NULL, 0, 0, &t) < 0) {
        atomic_store(&churn_stop, 2);
        return NULL;
    }
    while (atomic_load(&churn_stop) == 0) {
        /* Odd keys come and go; even keys stay throughout. */
        char key[16];
        snprintf(key, sizeof key, "k%05d", 2 * (int)(tu_rand(&st) % STABLE) + 1);
        JET_ERR err = tu_rand(&st) % 2 ? JetPutKV(s, t, key, strlen(key), "odd", 3, 0) : JetDeleteKV(s, t, key, strlen(key));
        if (err < 0 && err != JET_errRecordNotFound) {
            fprintf(stderr, "churn: %ld (%s)\n", err, JetGetLastErrorDetail());
            atomic_store(&churn_stop, 2);
        }
    }
    JetEndSession(s, 0);
    return NULL;
}

static void test_scans_see_every_key_that_existed_throughout(void)
{
    uint64_t seed = tu_seed("tables_scan");
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    open_session(&s, &db);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "scan", 0, 0, &t) >= 0);
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    for (int i = 0; i < 2 * STABLE; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%05d", i);
        CU_ASSERT_FATAL(JetPutKV(s, t, key, strlen(key), "v", 1, 0) >= 0);
    }
    CU_ASSERT_FATAL(JetCommitTransaction(s, 0) >= 0);
    JET_SESID d;
    JET_DBID ddb;
    JET_TABLEID td;
    open_session(&d, &ddb);
    CU_ASSERT_FATAL(JetOpenTable(d, ddb, "scan", NULL, 0, 0, &td) >= 0);
    atomic_store(&churn_stop, 0);
    pthread_t th[2];
    uint64_t seeds[2] = {seed, seed * 31 + 7};
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, churn, &seeds[i]);
    long scans = tu_count("TABLES_SCANS", 30, 300), deleted_under = 0;
    for (long n = 0; n < scans && atomic_load(&churn_stop) == 0; n++) {
        int stable_seen = 0, last = -1;
        JET_ERR err = JetMove(s, t, JET_MoveFirst, 0);
        while (err >= 0) {
            char key[16] = {0};
            unsigned long kl = 0;
            /* Between the move and the retrieve, another session deletes
             * the key the cursor is on (when it is one that comes and
             * goes), or inserts one just after it. */
            char cur[16] = {0};
            unsigned long cl = 0;
            uint64_t r = tu_rand(&seed) % 4;
            if (r < 2 && JetRetrieveCurrentKV(s, t, cur, sizeof cur - 1, &cl, NULL, 0, NULL) >= 0) {
                int k = atoi(cur + 1);
                char other[16];
                snprintf(other, sizeof other, "k%05d", r == 0 ? k : k + 1 + k % 2);
                /* The churn threads delete odd keys too: this one may be gone. */
                if (r == 0 && k % 2) {
                    JET_ERR derr = JetDeleteKV(d, td, cur, cl);
                    CU_ASSERT_FATAL(derr >= 0 || derr == JET_errRecordNotFound);
                }
                if (r == 1 && k + 1 + k % 2 < 2 * STABLE) CU_ASSERT_FATAL(JetPutKV(d, td, other, strlen(other), "odd", 3, 0) >= 0);
            }
            err = JetRetrieveCurrentKV(s, t, key, sizeof key - 1, &kl, NULL, 0, NULL);
            if (err == JET_errRecordDeleted) {
                deleted_under++;
            } else {
                CU_ASSERT_FATAL(err >= 0);
                int k = atoi(key + 1);
                CU_ASSERT_FATAL(k > last); /* in order, none twice */
                last = k;
                if (k % 2 == 0) {
                    CU_ASSERT_EQUAL(k, 2 * stable_seen); /* no stable key skipped */
                    stable_seen++;
                }
            }
            err = JetMove(s, t, JET_MoveNext, 0);
        }
        CU_ASSERT_EQUAL(err, JET_errNoCurrentRecord);
        CU_ASSERT_EQUAL(stable_seen, STABLE);
    }
    atomic_store(&churn_stop, atomic_load(&churn_stop) ? 2 : 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&churn_stop), 1);
    fprintf(stderr, "tables: %ld scans, %ld keys deleted under the cursor\n", scans, deleted_under);
    CU_ASSERT(deleted_under > 0);
    CU_ASSERT_FATAL(JetEndSession(d, 0) >= 0);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
}

/* ---- error details ---- */

static void test_error_details_belong_to_their_error(void)
{
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    open_session(&s, &db);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "det", 0, 0, &t) >= 0);
    CU_ASSERT_EQUAL(JetPutKV(s, t, "", 0, "v", 1, 0), JET_errInvalidParameter);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "0 bytes") != NULL);
    /* A success next: no detail. */
    CU_ASSERT_FATAL(JetPutKV(s, t, "k", 1, "v", 1, 0) >= 0);
    CU_ASSERT_STRING_EQUAL(JetGetLastErrorDetail(), "");
    CU_ASSERT_EQUAL(JetPutKV(s, t, "k", 1, "v", 1, JET_bitPutInsert), JET_errKeyDuplicate);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "exists") != NULL);
    CU_ASSERT_EQUAL(JetPutKV(s, t, NULL, 1, "v", 1, 0), JET_errInvalidParameter);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "NULL") != NULL);
    JET_ERR missing = JetAttachDatabase(s, "/nonexistent/x.db", 0);
    CU_ASSERT(missing < 0);
    if (missing >= 0) fprintf(stderr, "attach of a missing file: %ld\n", missing);
    fprintf(stderr, "attach of a missing file: %ld \"%s\"\n", missing, JetGetLastErrorDetail());
    JET_ERR err = JetAttachDatabase(s, dbpath, 0);
    CU_ASSERT(err >= 0);
    CU_ASSERT_STRING_EQUAL(JetGetLastErrorDetail(), "");
    char v[4];
    unsigned long n = 0;
    CU_ASSERT_EQUAL(JetRetrieveKV(s, t, "zz", 2, v, sizeof v, &n, 0), JET_errRecordNotFound);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "no such key") != NULL);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
    CU_ASSERT_STRING_EQUAL(JetGetLastErrorDetail(), "");
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite su = CU_add_suite("tables", NULL, NULL);
    CU_add_test(su, "test_a_rolled_back_table_id_never_reaches_another_table",
                test_a_rolled_back_table_id_never_reaches_another_table);
    CU_add_test(su, "test_handles_die_with_what_they_name_randomized", test_handles_die_with_what_they_name_randomized);
    CU_add_test(su, "test_a_cursor_whose_key_is_deleted_moves_to_its_neighbours",
                test_a_cursor_whose_key_is_deleted_moves_to_its_neighbours);
    CU_add_test(su, "test_scans_see_every_key_that_existed_throughout", test_scans_see_every_key_that_existed_throughout);
    CU_add_test(su, "test_error_details_belong_to_their_error", test_error_details_belong_to_their_error);
    int rc = tu_run();
    if (inst && JetTerm(inst) < 0) rc = 1;
    return rc;
}
