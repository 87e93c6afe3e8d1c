/*
 * test_lockrank.c -- engine/lockrank.c: the run-time lock-order check.
 *
 * A lock taken above every held one passes; one taken at or below a held
 * one aborts the process, naming both locks and where each was taken
 * (run in a child, whose stderr and signal the parent reads).  Every other
 * test of the engine runs with the check on (checking builds), so the
 * engine's real nestings are checked there; these tests show the check
 * itself can fail.
 */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lockrank.h"
#include "testutil.h"

#if defined(JET_LOCK_RANKS)

static pthread_mutex_t m_backup = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_instance = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_log = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw_commit = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t rw_snap_a = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t rw_snap_b = PTHREAD_RWLOCK_INITIALIZER;

/* Runs fn in a child; returns its terminating signal (0 if it exited) and
 * its stderr in out. */
static int in_child(void (*fn)(void), char *out, size_t cbout)
{
    int pfd[2];
    CU_ASSERT_FATAL(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        fn();
        _exit(0);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cbout && (r = read(pfd[0], out + n, cbout - 1 - n)) > 0) n += (size_t)r;
    out[n] = 0;
    close(pfd[0]);
    int status = 0;
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void test_locks_taken_in_rank_order_pass(void)
{
    lk_mutex_lock(&m_backup, LK_BACKUP);
    lk_wrlock(&rw_commit, LK_COMMIT);
    lk_mutex_lock(&m_instance, LK_INSTANCE);
    lk_rdlock(&rw_snap_a, LK_SNAP);
    lk_mutex_lock(&m_log, LK_LOG);
    CU_ASSERT_EQUAL(lk_held_count(), 5);
    /* Released out of order: an outer lock dropped first is allowed. */
    lk_mutex_unlock(&m_backup, LK_BACKUP);
    lk_mutex_unlock(&m_log, LK_LOG);
    lk_rwunlock(&rw_snap_a, LK_SNAP);
    lk_mutex_unlock(&m_instance, LK_INSTANCE);
    lk_rwunlock(&rw_commit, LK_COMMIT);
    CU_ASSERT_EQUAL(lk_held_count(), 0);
    /* After a release the order starts again from what is still held. */
    lk_mutex_lock(&m_log, LK_LOG);
    lk_mutex_unlock(&m_log, LK_LOG);
    lk_mutex_lock(&m_backup, LK_BACKUP);
    lk_mutex_unlock(&m_backup, LK_BACKUP);
    CU_ASSERT_EQUAL(lk_held_count(), 0);
}

static void take_instance_under_log(void)
{
    lk_mutex_lock(&m_log, LK_LOG);
    lk_mutex_lock(&m_instance, LK_INSTANCE);
}

static void test_a_lower_rank_under_a_higher_one_aborts_naming_both(void)
{
    char out[2048];
    int sig = in_child(take_instance_under_log, out, sizeof out);
    CU_ASSERT_EQUAL(sig, SIGABRT);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lock order violated"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "taking instance.mu"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "while holding the log's mu"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "test_lockrank.c:"));
}

static void take_two_snapshot_locks(void)
{
    lk_rdlock(&rw_snap_a, LK_SNAP);
    lk_wrlock(&rw_snap_b, LK_SNAP);
}

/* Two locks of one rank (two databases' snapshot locks) have no order
 * between them: holding both is refused too. */
static void test_two_locks_of_one_rank_abort(void)
{
    char out[2048];
    CU_ASSERT_EQUAL(in_child(take_two_snapshot_locks, out, sizeof out), SIGABRT);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "taking a database's snap_lock"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "while holding a database's snap_lock"));
}

static void release_unheld(void)
{
    pthread_mutex_lock(&m_instance); /* bare: not recorded */
    lk_mutex_unlock(&m_instance, LK_INSTANCE);
}

static void test_releasing_a_lock_not_held_aborts(void)
{
    char out[2048];
    CU_ASSERT_EQUAL(in_child(release_unheld, out, sizeof out), SIGABRT);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "which this thread does not hold"));
}

static void *hold_instance(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m_instance);
    return NULL;
}

/* A timed lock that times out leaves nothing recorded. */
static void test_a_timed_out_lock_is_not_held(void)
{
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, hold_instance, NULL) == 0);
    pthread_join(t, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 1000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    CU_ASSERT_NOT_EQUAL(lk_mutex_timedlock(&m_instance, &ts, LK_INSTANCE), 0);
    CU_ASSERT_EQUAL(lk_held_count(), 0);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("lockrank", NULL, NULL);
    CU_add_test(s, "locks taken in rank order pass", test_locks_taken_in_rank_order_pass);
    CU_add_test(s, "a lower rank under a higher one aborts, naming both",
                test_a_lower_rank_under_a_higher_one_aborts_naming_both);
    CU_add_test(s, "two locks of one rank abort", test_two_locks_of_one_rank_abort);
    CU_add_test(s, "releasing a lock not held aborts", test_releasing_a_lock_not_held_aborts);
    CU_add_test(s, "a timed-out lock is not held", test_a_timed_out_lock_is_not_held);
    return tu_run();
}

#else

int main(void)
{
    /* A Release build has no lock-order check to test. */
    printf("test_lockrank: skipped (built without JET_LOCK_RANKS)\n");
    return 77; /* ctest's SKIP_RETURN_CODE */
}

#endif
