/*
 * test_cache.c -- the buffer cache stays within its bound while serving a
 * database many times its size, and circular logging lets the checkpointer
 * delete generations once they are no longer needed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jet.h"
#include "testutil.h"

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
    JET_INSTANCE inst = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&inst, "cache") >= 0);
    JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 1024, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCacheSizeMax, (JET_API_PTR)cache_pages, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCircularLog, (JET_API_PTR)circular, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCheckpointPeriodMs, 50, NULL);
    CU_ASSERT_FATAL(JetInit(&inst) >= 0);
    return inst;
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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("cache", NULL, NULL);
    CU_add_test(su, "test_small_cache_serves_a_large_database", test_small_cache_serves_a_large_database);
    CU_add_test(su, "test_circular_logging_deletes_old_generations", test_circular_logging_deletes_old_generations);
    return tu_run();
}
