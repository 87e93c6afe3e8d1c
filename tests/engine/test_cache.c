/*
 * test_cache.c -- the buffer cache stays within its bound while serving a
 * database many times its size, and circular logging lets the checkpointer
 * delete generations once they are no longer needed.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jet.h"
#include "os.h"
#include "testutil.h"
#include "testvfs.h"

static char dir[1024], dbpath[1100];

static long rss_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field))) v = atol(line + strlen(field) + 1);
    if (f) fclose(f);
    return v;
}

static int count_logs(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "edb0", 4)) n++;
    closedir(d);
    return n;
}

static JET_INSTANCE start(long cache_pages, int circular)
{
    return tu_instance("cache", dir, (struct tu_params){.log_kb = 1024, .cache_pages = cache_pages, .ckpt_ms = 50, .circular = circular});
}

static void test_small_cache_serves_a_large_database(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("cache_bound"));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
    JET_INSTANCE inst = start(256, 0); /* 2 MiB of cache */
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(s, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "t", 0, 0, &t) >= 0);
    long mb = tu_count("CACHE_MB", 48, 512);
    long rows = mb * 1024 * 1024 / 1000;
    char val[1000];
    memset(val, 'v', sizeof val);
    long before = rss_kb("VmRSS:");
    for (long i = 0; i < rows; i += 50) {
        CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
        for (long j = i; j < i + 50 && j < rows; j++) {
            char k[32];
            snprintf(k, sizeof k, "%08lx", (unsigned long)(j * 2654435761u));
            CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), val, sizeof val, 0) >= 0);
        }
        CU_ASSERT_FATAL(JetCommitTransaction(s, JET_bitCommitLazyFlush) >= 0);
    }
    long found = 0;
    for (long j = 0; j < rows; j += 7) {
        char k[32], out[1000];
        unsigned long n;
        snprintf(k, sizeof k, "%08lx", (unsigned long)(j * 2654435761u));
        found += JetRetrieveKV(s, t, k, strlen(k), out, sizeof out, &n, 0) >= 0;
    }
    CU_ASSERT_EQUAL(found, (rows + 6) / 7);
    long after = rss_kb("VmRSS:");
    fprintf(stderr, "cache: %ld MB of data through a 2 MiB cache: RSS %ld -> %ld KiB\n", mb, before, after);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* Cache (2 MiB), log buffers (2 x 1 MiB) and bookkeeping: far below the data. */
    CU_ASSERT(after - before < mb * 1024 / 3);
#endif
    JetTerm(inst);
}

static void test_circular_logging_deletes_old_generations(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("cache_circular"));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
    JET_INSTANCE inst = start(1024, 1);
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(s, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "t", 0, 0, &t) >= 0);
    char val[3000];
    memset(val, 'c', sizeof val);
    for (int i = 0; i < 3000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%05d", i % 500);
        CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), val, sizeof val, 0) >= 0);
    }
    /* Wait (bounded) for a checkpoint to pass the old generations. */
    int n = count_logs();
    for (int tries = 0; tries < 100 && n > 4; tries++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        n = count_logs();
    }
    fprintf(stderr, "circular logging: %d generation(s) left after 3000 commits\n", n);
    CU_ASSERT(n <= 4);
    JetTerm(inst);
    /* And what is left recovers. */
    inst = start(1024, 1);
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetAttachDatabase(s, dbpath, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(s, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(s, db, "t", NULL, 0, 0, &t) >= 0);
    char out[3000];
    unsigned long got;
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k00499", 6, out, sizeof out, &got, 0), JET_errSuccess);
    JetTerm(inst);
}

/* ---- the WAL rule, watched at the I/O seam ---- */

/* What the seam saw: per descriptor, the log generation it holds (learnt
 * from the header written at offset 0) and how far it was written; the
 * log position made durable by the fsyncs; the worst page written ahead. */
#define WAL_FDS 4096
static pthread_mutex_t wal_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { char kind; uint32_t gen; uint64_t written; } wal_fd[WAL_FDS];
static uint64_t wal_durable;
static long wal_pages, wal_violations;

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void wal_open(const char *path, int fd)
{
    if (fd >= 0 && fd < WAL_FDS) {
        size_t n = strlen(path);
        pthread_mutex_lock(&wal_mu);
        wal_fd[fd].kind = n > 4 && !strcmp(path + n - 4, ".log") ? 'l' : n > 3 && !strcmp(path + n - 3, ".db") ? 'd' : 0;
        wal_fd[fd].gen = 0;
        wal_fd[fd].written = 0;
        pthread_mutex_unlock(&wal_mu);
    }
}

static void wal_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *b = buf;
    if (fd >= 0 && fd < WAL_FDS) {
        pthread_mutex_lock(&wal_mu);
        if (wal_fd[fd].kind == 'l') {
            /* A generation's body is zero-filled before its header is
             * written; only what follows the header is log. */
            if (off == 0 && n >= 4096) {
                wal_fd[fd].gen = (uint32_t)le64(b + 16) & 0xffffffffu;
                wal_fd[fd].written = n;
            } else if (wal_fd[fd].gen && off + n > wal_fd[fd].written) {
                wal_fd[fd].written = off + n;
            }
        } else if (wal_fd[fd].kind == 'd' && n % 8192 == 0 && off % 8192 == 0) {
            for (size_t p = 0; p < n; p += 8192) {
                if (off / 8192 + p / 8192 < 2) continue; /* the headers carry no lsn */
                uint64_t lsn = le64(b + p + 16);
                wal_pages++;
                if (lsn > wal_durable) wal_violations++;
            }
        }
        pthread_mutex_unlock(&wal_mu);
    }
}

/* How far the log an fsync on this thread is flushing reaches. */
static _Thread_local uint64_t wal_reach;

static void wal_fsync_before(int fd)
{
    wal_reach = 0;
    if (fd >= 0 && fd < WAL_FDS) {
        pthread_mutex_lock(&wal_mu);
        if (wal_fd[fd].kind == 'l' && wal_fd[fd].gen) wal_reach = (uint64_t)wal_fd[fd].gen << 32 | wal_fd[fd].written;
        pthread_mutex_unlock(&wal_mu);
    }
}

static void wal_fsync_after(JET_ERR err)
{
    /* Durable only once the fsync returned. */
    pthread_mutex_lock(&wal_mu);
    if (err >= 0 && wal_reach > wal_durable) wal_durable = wal_reach;
    pthread_mutex_unlock(&wal_mu);
}

/* The seam's calls, watched (testvfs): opens name the descriptors, page
 * writes are checked before they are made, fsyncs move the durable log. */
static JET_ERR wal_observer(void *arg, const struct testvfs_call *c)
{
    (void)arg;
    if (c->kind == TV_OPEN && c->after && c->result >= 0) wal_open(c->path, c->fd);
    else if (c->kind == TV_PWRITE && !c->after) wal_pwrite(c->fd, c->buf, c->n, c->off);
    else if (c->kind == TV_FSYNC && !c->after) wal_fsync_before(c->fd);
    else if (c->kind == TV_FSYNC && c->after) wal_fsync_after(c->result);
    return JET_errSuccess;
}

/*
 * No database page reaches its file before the log records that made it
 * are durable: a 1 MiB cache forced to evict under a writer, with lazy
 * commits (so the log lags on purpose), every page write checked at the
 * seam against the log the seam saw made durable.
 */
static void test_pages_never_reach_the_file_before_their_log(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("cache_wal"));
    snprintf(dbpath, sizeof dbpath, "%s/w.db", dir);
    memset(wal_fd, 0, sizeof wal_fd);
    wal_pages = wal_violations = 0;
    wal_durable = 0;
    /* From JetInit on: the log it opens is the first the seam learns of.
     * Generations of 16 MiB, so rolls (which fsync) are rare and the
     * checkpointer (every 50 ms) meets pages whose log is not yet durable. */
    testvfs_install(wal_observer, NULL);
    JET_INSTANCE inst = tu_instance("wal", dir, (struct tu_params){.log_kb = 16384, .cache_pages = 128, .ckpt_ms = 50});
    JET_SESID s;
    JET_TABLEID t;
    tu_table(inst, dbpath, 1, &s, &t);
    char val[700];
    memset(val, 'w', sizeof val);
    for (long i = 0; i < 12000; i += 20) {
        CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
        for (long j = i; j < i + 20; j++) {
            char k[32];
            snprintf(k, sizeof k, "%08lx", (unsigned long)(j * 2654435761u));
            CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), val, sizeof val, 0) >= 0);
        }
        CU_ASSERT_FATAL(JetCommitTransaction(s, JET_bitCommitLazyFlush) >= 0);
    }
    CU_ASSERT(JetTerm(inst) >= 0);
    testvfs_uninstall();
    fprintf(stderr, "wal: %ld page writes checked, %ld ahead of the durable log\n", wal_pages, wal_violations);
    CU_ASSERT(wal_pages > 1000); /* evictions and checkpoints did write pages */
    CU_ASSERT_EQUAL(wal_violations, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("cache", NULL, NULL);
    CU_add_test(su, "test_small_cache_serves_a_large_database", test_small_cache_serves_a_large_database);
    CU_add_test(su, "test_circular_logging_deletes_old_generations", test_circular_logging_deletes_old_generations);
    CU_add_test(su, "test_pages_never_reach_the_file_before_their_log", test_pages_never_reach_the_file_before_their_log);
    return tu_run();
}
