/*
 * test_log.c -- engine/log.c: appending, flushing, rolling, the hash chain,
 * torn tails, corruption in the middle, group commit and injected faults.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "log.h"
#include "os.h"
#include "page.h"
#include "testutil.h"

static char dir[1024];
static uint32_t closed_gen;
static uint64_t closed_hash;
static int closes;

static void on_close(void *arg, uint32_t gen, uint64_t hash, uint64_t us)
{
    (void)arg;
    (void)us;
    closed_gen = gen;
    closed_hash = hash;
    closes++;
}

static struct log_config cfg_for(uint64_t sig)
{
    struct log_config c = {.dir = dir, .base = "edb", .file_size = 64 * 1024, .page_size = 8192,
                           .signature = sig, .on_close = on_close};
    return c;
}

static JET_ERR append1(struct jet_log *log, uint8_t type, const void *p, size_t n, lsn_t *pend)
{
    struct iovec iov = {(void *)p, n};
    struct log_rec r = {type, &iov, 1};
    return log_append(log, &r, 1, NULL, pend);
}

static void test_append_roll_and_read_back(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("log_basic"));
    struct log_config cfg = cfg_for(0x1234);
    struct jet_log *log;
    TU_CHECK_ERR(log_open(&cfg, 1, &log), JET_errSuccess);
    TU_CHECK_ERR(log_open(&cfg, 1, &log) == JET_errFileAccessDenied ? 0 : -1, 0);
    uint8_t buf[5000];
    lsn_t end = 0;
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)(i * 37) % sizeof buf;
        memset(buf, i & 0xFF, n);
        TU_CHECK_ERR(append1(log, (uint8_t)(1 + i % 5), buf, n, &end), JET_errSuccess);
    }
    TU_CHECK_ERR(append1(log, 9, buf, log_max_payload(cfg.file_size) + 1, &end), JET_errInvalidParameter);
    TU_CHECK_ERR(append1(log, 9, buf, 0, &end), JET_errSuccess);
    TU_CHECK_ERR(log_flush(log, end), JET_errSuccess);
    CU_ASSERT(log_durable_lsn(log) >= end);
    uint32_t gens = log_current_generation(log);
    CU_ASSERT(gens > 3);
    CU_ASSERT(closes >= 3);
    char path[1100];
    uint64_t h = 0;
    log_file_name(path, sizeof path, dir, "edb", closed_gen);
    TU_CHECK_ERR(log_hash_file(path, &h), JET_errSuccess);
    CU_ASSERT_EQUAL(h, closed_hash);
    uint32_t rolled = 0;
    TU_CHECK_ERR(log_roll(log, &rolled), JET_errSuccess);
    CU_ASSERT_EQUAL(rolled, gens);
    TU_CHECK_ERR(log_roll(log, &rolled), JET_errSuccess); /* an empty generation still closes */
    CU_ASSERT_EQUAL(rolled, gens + 1);
    TU_CHECK_ERR(log_close(log), JET_errSuccess);

    struct log_reader *rd;
    TU_CHECK_ERR(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 0x1234, 0, &rd), JET_errSuccess);
    struct log_record rec;
    int i = 0;
    JET_ERR err;
    while ((err = log_reader_next(rd, &rec)) == JET_errSuccess) {
        if (i < 300) {
            size_t n = (size_t)(i * 37) % sizeof buf;
            CU_ASSERT_EQUAL(rec.type, 1 + i % 5);
            CU_ASSERT_EQUAL(rec.len, n);
            CU_ASSERT(n == 0 || (rec.payload[0] == (uint8_t)(i & 0xFF) && rec.payload[n - 1] == (uint8_t)(i & 0xFF)));
        }
        i++;
    }
    TU_CHECK_ERR(err, 1);
    CU_ASSERT_EQUAL(i, 301);
    CU_ASSERT(!log_reader_tail_torn(rd));
    log_reader_close(rd);
    TU_CHECK_ERR(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 0x9999, 0, &rd), JET_errBadLogSignature);
    TU_CHECK_ERR(log_reader_open(dir, "edb", LSN_MAKE(gens + 5, LOG_HEADER_SIZE), 0, 0, &rd), JET_errMissingLogFile);
}

static void corrupt_at(const char *path, off_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(pwrite(fd, bytes, n, off) == (ssize_t)n);
    close(fd);
}

static int read_all(lsn_t start, JET_ERR *perr, int *torn)
{
    struct log_reader *rd;
    *perr = log_reader_open(dir, "edb", start, 0, 0, &rd);
    if (*perr < 0) return -1;
    struct log_record rec;
    int n = 0;
    while ((*perr = log_reader_next(rd, &rec)) == JET_errSuccess) n++;
    *torn = log_reader_tail_torn(rd);
    log_reader_close(rd);
    return n;
}

static uint32_t write_gens(int records)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("log_damage"));
    struct log_config cfg = cfg_for(77);
    struct jet_log *log;
    CU_ASSERT_FATAL(log_open(&cfg, 1, &log) == JET_errSuccess);
    uint8_t buf[3000];
    memset(buf, 0xAB, sizeof buf);
    lsn_t end;
    for (int i = 0; i < records; i++) append1(log, 1, buf, sizeof buf, &end);
    log_flush(log, end);
    uint32_t g = log_current_generation(log);
    log_close(log);
    return g;
}

static void test_torn_tail_ends_reading_cleanly(void)
{
    uint32_t last = write_gens(50);
    char path[1100];
    log_file_name(path, sizeof path, dir, "edb", last);
    JET_ERR err;
    int torn;
    int full = read_all(LSN_MAKE(1, LOG_HEADER_SIZE), &err, &torn);
    CU_ASSERT_EQUAL(full, 50);
    /* Damage the last record of the last generation: it is dropped. */
    struct log_reader *rd;
    log_reader_open(dir, "edb", LSN_MAKE(last, LOG_HEADER_SIZE), 0, 0, &rd);
    struct log_record rec;
    lsn_t lastrec = 0;
    while (log_reader_next(rd, &rec) == 0) lastrec = rec.lsn;
    log_reader_close(rd);
    corrupt_at(path, LSN_OFF(lastrec) + 100, "garbage!", 8);
    int n = read_all(LSN_MAKE(1, LOG_HEADER_SIZE), &err, &torn);
    TU_CHECK_ERR(err, 1);
    CU_ASSERT_EQUAL(n, 49);
    CU_ASSERT(torn);
}

static void test_damage_in_an_earlier_generation_is_corruption(void)
{
    uint32_t last = write_gens(60);
    CU_ASSERT_FATAL(last >= 3);
    char path[1100];
    log_file_name(path, sizeof path, dir, "edb", 2);
    corrupt_at(path, LOG_HEADER_SIZE + 40, "XX", 2);
    JET_ERR err;
    int torn;
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), &err, &torn);
    TU_CHECK_ERR(err, JET_errLogFileCorrupt);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "edb00000002.log"));
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "offset 4096"));
}

static void test_broken_hash_chain_is_detected(void)
{
    uint32_t last = write_gens(60);
    CU_ASSERT_FATAL(last >= 3);
    /* Rewrite generation 3's header to chain to a different predecessor,
     * with a valid header checksum: only the chain check can notice. */
    char path[1100];
    uint8_t hb[LOG_HEADER_SIZE];
    log_file_name(path, sizeof path, dir, "edb", 3);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pread(fd, hb, sizeof hb, 0) == (ssize_t)sizeof hb);
    put_le64(hb + 48, get_le64(hb + 48) ^ 1);
    put_le64(hb, XXH3_64bits(hb + 8, LOG_HEADER_SIZE - 8));
    CU_ASSERT_FATAL(pwrite(fd, hb, sizeof hb, 0) == (ssize_t)sizeof hb);
    close(fd);
    JET_ERR err;
    int torn;
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), &err, &torn);
    TU_CHECK_ERR(err, JET_errInvalidLogSequence);
    /* A generation from another stream in the middle. */
    write_gens(60);
    char other[1024];
    snprintf(other, sizeof other, "%s", dir);
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("log_other"));
    struct log_config cfg = cfg_for(78);
    struct jet_log *log;
    log_open(&cfg, 1, &log);
    uint8_t buf[3000] = {0};
    lsn_t end;
    for (int i = 0; i < 60; i++) append1(log, 1, buf, sizeof buf, &end);
    log_close(log);
    char from[1100], to[1100];
    log_file_name(from, sizeof from, dir, "edb", 2);
    log_file_name(to, sizeof to, other, "edb", 2);
    CU_ASSERT(rename(from, to) == 0);
    snprintf(dir, sizeof dir, "%s", other);
    struct log_reader *rd;
    TU_CHECK_ERR(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &rd), JET_errSuccess);
    struct log_record rec;
    while ((err = log_reader_next(rd, &rec)) == 0) {}
    TU_CHECK_ERR(err, JET_errBadLogSignature);
    log_reader_close(rd);
}

/* ---- group commit and faults ---- */

static atomic_int fsyncs;
static atomic_int fail_fsync_after = -1;
static atomic_int fsyncs_after_failure;
static atomic_int failed;

static JET_ERR counting_fsync(int fd)
{
    int n = atomic_fetch_add(&fsyncs, 1) + 1;
    if (atomic_load(&failed)) atomic_fetch_add(&fsyncs_after_failure, 1);
    int lim = atomic_load(&fail_fsync_after);
    if (lim >= 0 && n > lim) {
        atomic_store(&failed, 1);
        return JET_errDiskIO;
    }
    return os_vfs_default()->fsync(fd);
}

static struct jet_log *glog;
static atomic_int flush_errors;
static void *committer(void *arg)
{
    (void)arg;
    uint8_t buf[100] = {1};
    for (int i = 0; i < 500; i++) {
        lsn_t end;
        if (append1(glog, 2, buf, sizeof buf, &end) < 0 || log_flush(glog, end) < 0 || log_durable_lsn(glog) < end)
            atomic_fetch_add(&flush_errors, 1);
    }
    return NULL;
}

static void test_group_commit_shares_fsyncs(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("log_group"));
    static struct os_vfs v;
    v = *os_vfs_default();
    v.fsync = counting_fsync;
    os_set_vfs(&v);
    struct log_config cfg = cfg_for(5);
    cfg.file_size = 4 << 20;
    CU_ASSERT_FATAL(log_open(&cfg, 1, &glog) == JET_errSuccess);
    atomic_store(&fsyncs, 0);
    pthread_t th[8];
    for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, committer, NULL);
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    int n = atomic_load(&fsyncs);
    fprintf(stderr, "group commit: 4000 durable flushes from 8 threads took %d fsyncs\n", n);
    CU_ASSERT_EQUAL(flush_errors, 0);
    CU_ASSERT(n < 4000);
    log_close(glog);
    os_set_vfs(NULL);
}

static void test_failed_fsync_is_sticky_and_never_retried(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("log_fault"));
    static struct os_vfs v;
    v = *os_vfs_default();
    v.fsync = counting_fsync;
    struct log_config cfg = cfg_for(6);
    struct jet_log *log;
    CU_ASSERT_FATAL(log_open(&cfg, 1, &log) == JET_errSuccess);
    os_set_vfs(&v);
    atomic_store(&fsyncs, 0);
    atomic_store(&fail_fsync_after, 0);
    uint8_t buf[10] = {0};
    lsn_t end;
    TU_CHECK_ERR(append1(log, 1, buf, sizeof buf, &end), JET_errSuccess);
    TU_CHECK_ERR(log_flush(log, end), JET_errLogWriteFail);
    TU_CHECK_ERR(append1(log, 1, buf, sizeof buf, &end), JET_errLogWriteFail);
    TU_CHECK_ERR(log_flush(log, end), JET_errLogWriteFail);
    TU_CHECK_ERR(log_roll(log, NULL), JET_errLogWriteFail);
    CU_ASSERT_EQUAL(atomic_load(&fsyncs_after_failure), 0);
    log_close(log);
    os_set_vfs(NULL);
    atomic_store(&fail_fsync_after, -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("log", NULL, NULL);
    CU_add_test(su, "test_append_roll_and_read_back", test_append_roll_and_read_back);
    CU_add_test(su, "test_torn_tail_ends_reading_cleanly", test_torn_tail_ends_reading_cleanly);
    CU_add_test(su, "test_damage_in_an_earlier_generation_is_corruption", test_damage_in_an_earlier_generation_is_corruption);
    CU_add_test(su, "test_broken_hash_chain_is_detected", test_broken_hash_chain_is_detected);
    CU_add_test(su, "test_group_commit_shares_fsyncs", test_group_commit_shares_fsyncs);
    CU_add_test(su, "test_failed_fsync_is_sticky_and_never_retried", test_failed_fsync_is_sticky_and_never_retried);
    return tu_run();
}
