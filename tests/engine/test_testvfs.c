/*
 * test_testvfs.c -- the shared test wrapper of the I/O seam
 * (tests/support/testvfs.h) does what the suites that use it rely on: the
 * Nth call of a kind fails, only on the files its suffix names, with the
 * error asked for, and does nothing; a sticky rule keeps failing until
 * cleared; the observer sees each call before and after, with the path
 * of its descriptor, and can fail it; and stacked on the crash VFS, a
 * write it fails never happened while a power cut still drops what was
 * not fsynced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashvfs.h"
#include "jet.h"
#include "os.h"
#include "testutil.h"
#include "testvfs.h"

static char dir[1024];

static void in_dir(char *buf, size_t cb, const char *name) { snprintf(buf, cb, "%s/%s", dir, name); }

static JET_ERR open_rw(const char *name, int *pfd)
{
    char p[1100];
    in_dir(p, sizeof p, name);
    return os_open(p, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, pfd);
}

static char byte_at(int fd, uint64_t off)
{
    char c = 0;
    size_t got = 0;
    CU_ASSERT_FATAL(os_vfs_default()->pread(fd, &c, 1, off, &got) >= 0);
    return got == 1 ? c : 0;
}

static void test_the_nth_call_on_a_matching_file_fails_and_does_nothing(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("tvfs_nth"));
    testvfs_install(NULL, NULL);
    int db, log;
    CU_ASSERT_FATAL(open_rw("a.db", &db) >= 0 && open_rw("a.log", &log) >= 0);
    testvfs_fail(TV_PWRITE, 2, ".db", JET_errDiskFull);
    TU_CHECK_ERR(os_pwrite(log, "L", 1, 0), JET_errSuccess);
    TU_CHECK_ERR(os_pwrite(db, "1", 1, 0), JET_errSuccess);
    TU_CHECK_ERR(os_pwrite(log, "L", 1, 1), JET_errSuccess);
    TU_CHECK_ERR(os_pwrite(db, "2", 1, 1), JET_errDiskFull);
    TU_CHECK_ERR(os_pwrite(db, "3", 1, 2), JET_errSuccess); /* once: the next goes through */
    CU_ASSERT_EQUAL(byte_at(db, 0), '1');
    CU_ASSERT_EQUAL(byte_at(db, 1), 0); /* the failed write wrote nothing */
    CU_ASSERT_EQUAL(byte_at(db, 2), '3');
    CU_ASSERT_EQUAL(testvfs_count(TV_PWRITE), 5);
    CU_ASSERT_EQUAL(testvfs_injected(), 1);
    /* Other kinds, with the error asked for. */
    testvfs_fail(TV_FSYNC, 1, NULL, JET_errDiskIO);
    TU_CHECK_ERR(os_fsync(log), JET_errDiskIO);
    TU_CHECK_ERR(os_fsync(log), JET_errSuccess);
    char from[1100], to[1100];
    in_dir(from, sizeof from, "a.log");
    in_dir(to, sizeof to, "b.log");
    testvfs_fail(TV_RENAME, 1, "a.log", JET_errFileAccessDenied);
    TU_CHECK_ERR(os_rename(from, to), JET_errFileAccessDenied);
    CU_ASSERT(os_exists(from) && !os_exists(to));
    testvfs_fail(TV_UNLINK, 1, ".log", JET_errDiskIO);
    TU_CHECK_ERR(os_unlink(from), JET_errDiskIO);
    CU_ASSERT(os_exists(from));
    testvfs_fail(TV_SYNC_DIR, 1, NULL, JET_errDiskIO);
    TU_CHECK_ERR(os_sync_dir(dir), JET_errDiskIO);
    testvfs_fail(TV_FTRUNCATE, 1, ".db", JET_errDiskFull);
    TU_CHECK_ERR(os_ftruncate(db, 0), JET_errDiskFull);
    uint64_t size = 0;
    CU_ASSERT(os_fsize(db, &size) >= 0 && size == 3);
    int fd2;
    testvfs_fail(TV_OPEN, 1, "c.db", JET_errFileAccessDenied);
    TU_CHECK_ERR(open_rw("c.db", &fd2), JET_errFileAccessDenied);
    in_dir(to, sizeof to, "c.db");
    CU_ASSERT(!os_exists(to));
    CU_ASSERT_EQUAL(testvfs_injected(), 7);
    CU_ASSERT(os_close(db) >= 0 && os_close(log) >= 0);
    testvfs_uninstall();
    CU_ASSERT(os_vfs() == os_vfs_default());
}

static void test_a_sticky_rule_fails_until_cleared(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("tvfs_sticky"));
    testvfs_install(NULL, NULL);
    int fd;
    CU_ASSERT_FATAL(open_rw("x.spill", &fd) >= 0);
    testvfs_fail_from(TV_PWRITE, 2, ".spill", JET_errDiskFull);
    TU_CHECK_ERR(os_pwrite(fd, "a", 1, 0), JET_errSuccess);
    for (int i = 1; i < 5; i++) TU_CHECK_ERR(os_pwrite(fd, "b", 1, (uint64_t)i), JET_errDiskFull);
    testvfs_clear(TV_PWRITE);
    TU_CHECK_ERR(os_pwrite(fd, "c", 1, 5), JET_errSuccess);
    CU_ASSERT_EQUAL(testvfs_injected(), 4);
    CU_ASSERT(os_close(fd) >= 0);
    testvfs_uninstall();
}

/* What the observer saw. */
static int seen_before, seen_after, seen_path_ok, seen_got, refused;

static JET_ERR watch(void *arg, const struct testvfs_call *c)
{
    (void)arg;
    if (c->kind == TV_OPEN && !c->after && testvfs_ends_with(c->path, "refused.db")) {
        refused++;
        return JET_errFileAccessDenied;
    }
    if (c->kind != TV_PREAD) return JET_errSuccess;
    if (c->after) {
        seen_after++;
        if (c->result >= 0) seen_got = (int)c->got;
    } else {
        seen_before++;
    }
    if (testvfs_ends_with(c->path, "/w.db") && c->off == 1 && c->n == 4) seen_path_ok++;
    return JET_errSuccess;
}

static void test_the_observer_sees_each_call_twice_and_can_fail_it(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("tvfs_observe"));
    seen_before = seen_after = seen_path_ok = seen_got = refused = 0;
    testvfs_install(watch, NULL);
    int fd;
    CU_ASSERT_FATAL(open_rw("w.db", &fd) >= 0);
    CU_ASSERT(os_pwrite(fd, "abc", 3, 0) >= 0);
    char buf[4];
    size_t got = 0;
    CU_ASSERT(os_pread(fd, buf, 4, 1, &got) >= 0);
    CU_ASSERT_EQUAL(got, 2);
    CU_ASSERT_EQUAL(seen_before, 1);
    CU_ASSERT_EQUAL(seen_after, 1);
    CU_ASSERT_EQUAL(seen_path_ok, 2);
    CU_ASSERT_EQUAL(seen_got, 2);
    int fd2;
    TU_CHECK_ERR(open_rw("refused.db", &fd2), JET_errFileAccessDenied);
    CU_ASSERT_EQUAL(refused, 1);
    CU_ASSERT_EQUAL(testvfs_injected(), 1);
    CU_ASSERT(os_close(fd) >= 0);
    testvfs_uninstall();
}

static void test_stacked_on_the_crash_vfs(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("tvfs_crash"));
    crashvfs_install();
    testvfs_install(NULL, NULL);
    int fd;
    CU_ASSERT_FATAL(open_rw("s.db", &fd) >= 0);
    CU_ASSERT(os_pwrite(fd, "durable", 7, 0) >= 0);
    CU_ASSERT(os_fsync(fd) >= 0);
    /* A failed fsync never reached the disk: the write before it is still
     * unsynced, and the power cut takes it; a failed write never happened. */
    CU_ASSERT(os_pwrite(fd, "LOST", 4, 0) >= 0);
    testvfs_fail(TV_PWRITE, 1, NULL, JET_errDiskIO);
    TU_CHECK_ERR(os_pwrite(fd, "NEVER", 5, 100), JET_errDiskIO);
    testvfs_fail(TV_FSYNC, 1, "s.db", JET_errDiskIO);
    TU_CHECK_ERR(os_fsync(fd), JET_errDiskIO);
    CU_ASSERT(crashvfs_crash_now());
    struct crashvfs_report rep;
    crashvfs_report(&rep);
    CU_ASSERT_EQUAL(rep.lost, 1);
    /* After the crash, crashvfs below fails everything. */
    TU_CHECK_ERR(os_pwrite(fd, "x", 1, 0), JET_errDiskIO);
    os_close(fd);
    testvfs_uninstall();
    CU_ASSERT_EQUAL(crashvfs_open_fds(), 0);
    crashvfs_uninstall();
    char p[1100];
    in_dir(p, sizeof p, "s.db");
    size_t n = 0;
    char *text = tu_slurp(p, &n);
    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT(memcmp(text, "durable", 7) == 0);
    free(text);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("testvfs", NULL, NULL);
    CU_add_test(su, "test_the_nth_call_on_a_matching_file_fails_and_does_nothing",
                test_the_nth_call_on_a_matching_file_fails_and_does_nothing);
    CU_add_test(su, "test_a_sticky_rule_fails_until_cleared", test_a_sticky_rule_fails_until_cleared);
    CU_add_test(su, "test_the_observer_sees_each_call_twice_and_can_fail_it",
                test_the_observer_sees_each_call_twice_and_can_fail_it);
    CU_add_test(su, "test_stacked_on_the_crash_vfs", test_stacked_on_the_crash_vfs);
    return tu_run();
}
