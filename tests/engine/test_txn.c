/*
 * test_txn.c -- commit durability (engine/txn.c): a default commit returns
 * only after a log fsync; JET_bitCommitLazyFlush returns without one, and
 * the next durable commit's fsync covers it; JET_bitWaitLastLevel0Commit
 * and JET_bitWaitAllLevel0Commit make lazy commits durable with one fsync.
 * Watched at the I/O seam.
 *
 * The writer token belongs to a session, not a thread: a transaction may
 * commit on another thread than the one that began it; a thread whose own
 * other session holds the token is refused at once (JET_errWriteConflict),
 * never left waiting for itself; another thread's writer waits for the
 * commit; backup calls and JetTerm inside a transaction answer (no abort:
 * this suite runs with the lock-order check).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jet.h"
#include "testutil.h"
#include "testvfs.h"

static void put(JET_SESID s, JET_TABLEID t, int k, JET_GRBIT commit)
{
    char key[16], val[64];
    snprintf(key, sizeof key, "k%05d", k);
    memset(val, 'v', sizeof val);
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, t, key, strlen(key), val, sizeof val, 0) >= 0);
    CU_ASSERT_FATAL(JetCommitTransaction(s, commit) >= 0);
}

static void test_lazy_commits_skip_the_fsync_a_durable_commit_pays(void)
{
    char dir[1024], db[1100];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("txn_lazy"));
    snprintf(db, sizeof db, "%s/t.db", dir);
    JET_SESID s;
    JET_TABLEID t;
    /* No roll and no checkpoint during the test: only commits fsync. */
    JET_INSTANCE inst = tu_instance("txn", dir, (struct tu_params){.log_kb = 16384, .ckpt_ms = 3600000});
    tu_table(inst, db, 1, &s, &t);
    put(s, t, 0, 0); /* settle: the first commit may carry creation's log */
    /* The log builds its next generation's body in the background (one
     * fsync of its own): let it finish first. */
    char tmp[1200];
    struct stat st;
    snprintf(tmp, sizeof tmp, "%s/edbtmp.log", dir);
    for (int i = 0; i < 1000 && !(stat(tmp, &st) == 0 && st.st_size == 16384 * 1024); i++) usleep(10000);
    CU_ASSERT_FATAL(stat(tmp, &st) == 0 && st.st_size == 16384 * 1024);

    testvfs_install(NULL, NULL);
    testvfs_reset_counts();
    for (int k = 1; k <= 50; k++) put(s, t, k, JET_bitCommitLazyFlush);
    int lazy = (int)testvfs_count(TV_FSYNC);
    for (int k = 51; k <= 60; k++) put(s, t, k, 0);
    int durable = (int)testvfs_count(TV_FSYNC) - lazy;
    testvfs_uninstall();
    fprintf(stderr, "txn: 50 lazy commits, %d fsyncs; 10 durable commits, %d fsyncs\n", lazy, durable);
    /* (The preparer's own fsync may still land in the window: at most one.) */
    CU_ASSERT(lazy <= 1);
    /* One thread, so no group to share with: each durable commit fsyncs. */
    CU_ASSERT(durable >= 10 && durable <= 11);
    CU_ASSERT(JetTerm(inst) >= 0);
}

static void test_wait_commits_flush_the_lazy_ones_once(void)
{
    char dir[1024], db[1100];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("txn_wait"));
    snprintf(db, sizeof db, "%s/t.db", dir);
    JET_SESID s, s2;
    JET_TABLEID t;
    JET_INSTANCE inst = tu_instance("txnw", dir, (struct tu_params){.log_kb = 16384, .ckpt_ms = 3600000});
    tu_table(inst, db, 1, &s, &t);
    CU_ASSERT_FATAL(JetBeginSession(inst, &s2, NULL, NULL) >= 0);
    put(s, t, 0, 0);
    char tmp[1200];
    struct stat st;
    snprintf(tmp, sizeof tmp, "%s/edbtmp.log", dir);
    for (int i = 0; i < 1000 && !(stat(tmp, &st) == 0 && st.st_size == 16384 * 1024); i++) usleep(10000);
    testvfs_install(NULL, NULL);
    /* Twenty lazy commits, then one wait: one fsync makes them durable. */
    testvfs_reset_counts();
    for (int k = 1; k <= 20; k++) put(s, t, k, JET_bitCommitLazyFlush);
    TU_CHECK_ERR(JetCommitTransaction(s, JET_bitWaitLastLevel0Commit), JET_errSuccess);
    int one = (int)testvfs_count(TV_FSYNC);
    /* Nothing left to flush: waiting again costs nothing, from any session. */
    TU_CHECK_ERR(JetCommitTransaction(s, JET_bitWaitLastLevel0Commit), JET_errSuccess);
    TU_CHECK_ERR(JetCommitTransaction(s2, JET_bitWaitAllLevel0Commit), JET_errSuccess);
    int again = (int)testvfs_count(TV_FSYNC) - one;
    /* Another session's wait-all covers this session's lazy commits. */
    for (int k = 21; k <= 30; k++) put(s, t, k, JET_bitCommitLazyFlush);
    TU_CHECK_ERR(JetCommitTransaction(s2, JET_bitWaitAllLevel0Commit), JET_errSuccess);
    TU_CHECK_ERR(JetCommitTransaction(s, JET_bitWaitLastLevel0Commit), JET_errSuccess);
    int all = (int)testvfs_count(TV_FSYNC) - one - again;
    testvfs_uninstall();
    fprintf(stderr, "txn: 20 lazy commits and a wait: %d fsync(s); again: %d; wait-all: %d\n", one, again, all);
    CU_ASSERT(one >= 1 && one <= 2); /* (the preparer's own may land in the window) */
    CU_ASSERT_EQUAL(again, 0);
    CU_ASSERT(all >= 1 && all <= 2);
    /* Alone only, as ESE. */
    TU_CHECK_ERR(JetCommitTransaction(s, JET_bitWaitLastLevel0Commit | JET_bitCommitLazyFlush), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetCommitTransaction(s, JET_bitWaitLastLevel0Commit | JET_bitWaitAllLevel0Commit),
                 JET_errInvalidGrbit);
    CU_ASSERT(JetEndSession(s2, 0) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);
}


/* ---- the writer token: a session's, not a thread's ---- */

struct handed {
    JET_SESID s;
    JET_TABLEID t;
    JET_ERR put, commit;
};

static void *finish_elsewhere(void *arg)
{
    struct handed *h = arg;
    h->put = JetPutKV(h->s, h->t, "second", 6, "2", 1, 0);
    h->commit = JetCommitTransaction(h->s, 0);
    return NULL;
}

static void test_a_transaction_may_change_threads(void)
{
    char dir[1024], db[1100];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("txn_handoff"));
    snprintf(db, sizeof db, "%s/t.db", dir);
    struct handed h = {0};
    JET_INSTANCE inst = tu_instance("txnh", dir, (struct tu_params){0});
    tu_table(inst, db, 1, &h.s, &h.t);
    CU_ASSERT_FATAL(JetBeginTransaction(h.s) >= 0);
    CU_ASSERT_FATAL(JetPutKV(h.s, h.t, "first", 5, "1", 1, 0) >= 0);
    pthread_t th;
    pthread_create(&th, NULL, finish_elsewhere, &h);
    pthread_join(th, NULL);
    TU_CHECK_ERR(h.put, JET_errSuccess);
    TU_CHECK_ERR(h.commit, JET_errSuccess);
    /* Another session can write at once: the token went with the commit. */
    JET_SESID s2;
    JET_TABLEID t2;
    tu_table(inst, db, 0, &s2, &t2);
    TU_CHECK_ERR(JetPutKV(s2, t2, "third", 5, "3", 1, 0), JET_errSuccess);
    char v[4];
    unsigned long n = 0;
    TU_CHECK_ERR(JetRetrieveKV(s2, t2, "second", 6, v, sizeof v, &n, 0), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
}

static void test_a_thread_waiting_for_its_own_transaction_is_told_at_once(void)
{
    char dir[1024], db[1100];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("txn_self"));
    snprintf(db, sizeof db, "%s/t.db", dir);
    JET_SESID s, s2;
    JET_TABLEID t, t2;
    JET_INSTANCE inst = tu_instance("txns", dir, (struct tu_params){0});
    tu_table(inst, db, 1, &s, &t);
    tu_table(inst, db, 0, &s2, &t2);
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    TU_CHECK_ERR(JetBeginTransaction(s2), JET_errWriteConflict);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "this thread") != NULL);
    TU_CHECK_ERR(JetPutKV(s2, t2, "k", 1, "v", 1, 0), JET_errWriteConflict);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CU_ASSERT(b.tv_sec - a.tv_sec < 5);
    /* A read-only transaction and reads never wait for the writer. */
    TU_CHECK_ERR(JetBeginTransaction2(s2, JET_bitTransactionReadOnly), JET_errSuccess);
    char v[4];
    unsigned long n = 0;
    TU_CHECK_ERR(JetRetrieveKV(s2, t2, "k", 1, v, sizeof v, &n, 0), JET_errRecordNotFound);
    TU_CHECK_ERR(JetRollback(s2, 0), JET_errSuccess);
    /* Calls that take the engine's locks, made inside the transaction. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    JET_BACKUPSTATUS bs = {.cbStruct = sizeof bs};
    TU_CHECK_ERR(JetGetBackupStatusInstance(inst, &bs), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s, t, "k", 1, "v", 1, 0), JET_errSuccess);
    TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    TU_CHECK_ERR(JetPutKV(s2, t2, "k2", 2, "v", 1, 0), JET_errSuccess);
    /* JetTerm with the transaction still open ends it, uncommitted. */
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    TU_CHECK_ERR(JetPutKV(s, t, "lost", 4, "v", 1, 0), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
    inst = tu_instance("txns", dir, (struct tu_params){0});
    tu_table(inst, db, 0, &s, &t);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k2", 2, v, sizeof v, &n, 0), JET_errSuccess);
    TU_CHECK_ERR(JetRetrieveKV(s, t, "lost", 4, v, sizeof v, &n, 0), JET_errRecordNotFound);
    CU_ASSERT(JetTerm(inst) >= 0);
}

struct waiter {
    JET_INSTANCE inst;
    const char *db;
    JET_ERR err;
};

static void *write_after_wait(void *arg)
{
    struct waiter *w = arg;
    JET_SESID s;
    JET_TABLEID t;
    tu_table(w->inst, w->db, 0, &s, &t);
    w->err = JetPutKV(s, t, "waited", 6, "v", 1, 0);
    JetEndSession(s, 0);
    return NULL;
}

static void test_a_writer_on_another_thread_waits_for_the_commit(void)
{
    char dir[1024], db[1100];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("txn_wait_writer"));
    snprintf(db, sizeof db, "%s/t.db", dir);
    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE inst = tu_instance("txnww", dir, (struct tu_params){0});
    tu_table(inst, db, 1, &s, &t);
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    struct waiter w = {inst, db, 1};
    pthread_t th;
    pthread_create(&th, NULL, write_after_wait, &w);
    usleep(200000);
    CU_ASSERT_EQUAL(w.err, 1); /* still waiting */
    TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    pthread_join(th, NULL);
    TU_CHECK_ERR(w.err, JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("txn", NULL, NULL);
    if (!su) return 2;
    CU_add_test(su, "test_lazy_commits_skip_the_fsync_a_durable_commit_pays",
                test_lazy_commits_skip_the_fsync_a_durable_commit_pays);
    CU_add_test(su, "test_wait_commits_flush_the_lazy_ones_once", test_wait_commits_flush_the_lazy_ones_once);
    CU_add_test(su, "test_a_transaction_may_change_threads", test_a_transaction_may_change_threads);
    CU_add_test(su, "test_a_thread_waiting_for_its_own_transaction_is_told_at_once",
                test_a_thread_waiting_for_its_own_transaction_is_told_at_once);
    CU_add_test(su, "test_a_writer_on_another_thread_waits_for_the_commit",
                test_a_writer_on_another_thread_waits_for_the_commit);
    return tu_run();
}
