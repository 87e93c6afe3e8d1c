/*
 * test_snapshot.c -- the point-in-time guarantee under load.
 *
 * Writer threads commit random transactions against a model while, in each
 * trial, a full backup begins and reader threads read its files at random
 * offsets and sizes (re-reading ranges) as the writers go on.  The set is
 * then restored with JetRestoreSets and must equal the model exactly as it
 * was committed at begin.  SNAPSHOT_TRIALS overrides the count (50 in CI);
 * SEED reproduces a run.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jet.h"
#include "os.h"
#include "testutil.h"

#define NKEYS 300
#define MAXV 3000

static char dir[1024], dbpath[1100];
static JET_INSTANCE inst;
static pthread_mutex_t model_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t model[NKEYS];  /* version per key, 0 = absent */
static atomic_int stop, failures;
static uint64_t seed;

static int vlen_of(int k, uint32_t ver) { return (int)((k * 131u + ver * 7919u) % MAXV); }
static void fill(uint8_t *b, int k, uint32_t ver, int n)
{
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(k * 31 + ver * 17 + i);
}

static JET_ERR open_table(JET_INSTANCE in, const char *path, JET_SESID *ps, JET_TABLEID *pt)
{
    JET_DBID db;
    JET_ERR err = JetBeginSession(in, ps, NULL, NULL);
    if (err >= 0) err = JetOpenDatabase(*ps, path, NULL, &db, 0);
    if (err >= 0) err = JetOpenTable(*ps, db, "t", NULL, 0, 0, pt);
    return err;
}

static void *writer(void *arg)
{
    uint64_t rng = seed ^ (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull;
    JET_SESID s;
    JET_TABLEID t;
    uint8_t v[MAXV];
    if (open_table(inst, dbpath, &s, &t) < 0) {
        failures++;
        return NULL;
    }
    while (!atomic_load(&stop)) {
        int n = 1 + (int)(tu_rand(&rng) % 4);
        int keys[4];
        uint32_t vers[4];
        /* The model and the commit order agree because both happen under
         * model_mu; begin takes it too, so the model copy is exact. */
        pthread_mutex_lock(&model_mu);
        JET_ERR err = JetBeginTransaction(s);
        for (int i = 0; i < n && err >= 0; i++) {
            keys[i] = (int)(tu_rand(&rng) % NKEYS);
            char k[16];
            snprintf(k, sizeof k, "key%04d", keys[i]);
            if (tu_rand(&rng) % 8 == 0) {
                vers[i] = 0;
                err = JetDeleteKV(s, t, k, strlen(k));
                if (err == JET_errRecordNotFound) err = 0;
            } else {
                vers[i] = (uint32_t)(tu_rand(&rng) >> 40) | 1;
                int len = vlen_of(keys[i], vers[i]);
                fill(v, keys[i], vers[i], len);
                err = JetPutKV(s, t, k, strlen(k), v, (unsigned long)len, 0);
            }
        }
        if (err >= 0) err = JetCommitTransaction(s, JET_bitCommitLazyFlush);
        else JetRollback(s, 0);
        if (err >= 0)
            for (int i = 0; i < n; i++) model[keys[i]] = vers[i];
        pthread_mutex_unlock(&model_mu);
        if (err < 0) {
            fprintf(stderr, "writer: %ld %s\n", err, JetGetLastErrorDetail());
            failures++;
            break;
        }
    }
    JetEndSession(s, 0);
    return NULL;
}

struct rfile {
    char path[1100];
    JET_HANDLE h;
    size_t n;
};
static struct rfile files[64];
static int nfiles;

static void *reader(void *arg)
{
    uint64_t rng = seed ^ ((uint64_t)(uintptr_t)arg << 32);
    for (int i = 0; i < 200; i++) {
        struct rfile *f = &files[tu_rand(&rng) % (uint64_t)nfiles];
        if (!f->n) continue;
        uint64_t off = tu_rand(&rng) % f->n, len = 1 + tu_rand(&rng) % 100000;
        if (len > f->n - off) len = f->n - off;
        unsigned long got = 0, got2 = 0;
        /* Read the range twice: a re-read must return the same bytes,
         * whatever the writers did in between. */
        unsigned char *a = malloc(len), *b = malloc(len);
        if (JetReadFileAtInstance(inst, f->h, off, a, (unsigned long)len, &got) < 0 || got != len ||
            JetReadFileAtInstance(inst, f->h, off, b, (unsigned long)len, &got2) < 0 || got2 != len ||
            memcmp(a, b, len) != 0)
            failures++;
        free(a);
        free(b);
    }
    return NULL;
}

static int one_trial(int trial)
{
    uint32_t at_begin[NKEYS];
    pthread_mutex_lock(&model_mu);
    JET_ERR err = JetBeginExternalBackupInstance(inst, 0);
    memcpy(at_begin, model, sizeof model);
    pthread_mutex_unlock(&model_mu);
    if (err < 0) return fprintf(stderr, "begin: %ld\n", err), 1;
    char names[65536], all[70000];
    unsigned long cb = 0;
    size_t used = 0;
    JetGetAttachInfoInstance(inst, names, sizeof names, &cb);
    memcpy(all, names, cb - 1);
    used = cb - 1;
    JetGetLogInfoInstance(inst, names, sizeof names, &cb);
    memcpy(all + used, names, cb);
    nfiles = 0;
    for (char *p = all; *p && nfiles < 64; p += strlen(p) + 1) {
        struct rfile *f = &files[nfiles++];
        unsigned long lo = 0, hi = 0;
        snprintf(f->path, sizeof f->path, "%.1000s", p);
        if (JetOpenFileInstance(inst, p, &f->h, &lo, &hi) < 0) return 1;
        f->n = (size_t)lo | ((size_t)hi << 32);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, reader, (void *)(uintptr_t)(trial * 2 + i + 1));
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    /* Fill everything in (also re-reads what the random readers saw). */
    char setdir[1200];
    snprintf(setdir, sizeof setdir, "%s/set%d", dir, trial);
    mkdir(setdir, 0700);
    int bad = 0;
    for (int i = 0; i < nfiles; i++) {
        struct rfile *f = &files[i];
        unsigned char *whole = malloc(f->n + 1);
        unsigned long got = 0;
        if (JetReadFileAtInstance(inst, f->h, 0, whole, (unsigned long)f->n, &got) < 0 || got != f->n) bad++;
        char out[1400];
        snprintf(out, sizeof out, "%s/%s", setdir, strrchr(f->path, '/') + 1);
        FILE *o = fopen(out, "wb");
        if (!o || fwrite(whole, 1, f->n, o) != f->n) bad++;
        if (o) fclose(o);
        JetCloseFileInstance(inst, f->h);
        free(whole);
    }
    if (JetTruncateLogInstance(inst) < 0) bad++;
    if (JetEndExternalBackupInstance(inst) < 0) bad++;
    if (bad) return fprintf(stderr, "trial %d: %d read failures\n", trial, bad), 1;
    /* Restore and compare with the model at begin. */
    char rdir[1300];
    snprintf(rdir, sizeof rdir, "%s/restored%d", dir, trial);
    const char *sets[] = {setdir};
    err = JetRestoreSets(sets, 1, rdir, 0, 0);
    if (err < 0) return fprintf(stderr, "trial %d: restore %ld %s\n", trial, err, JetGetLastErrorDetail()), 1;
    JET_INSTANCE ri = 0;
    char rdb[1400];
    snprintf(rdb, sizeof rdb, "%s/%s", rdir, strrchr(dbpath, '/') + 1);
    JetCreateInstance(&ri, "snaprestored");
    JetSetSystemParameter(&ri, 0, JET_paramSystemPath, 0, rdir);
    JetSetSystemParameter(&ri, 0, JET_paramLogFilePath, 0, rdir);
    JetSetSystemParameter(&ri, 0, JET_paramLogFileSize, 256, NULL);
    JET_SESID s;
    JET_TABLEID t;
    if ((err = JetInit(&ri)) < 0 || (err = JetBeginSession(ri, &s, NULL, NULL)) < 0 ||
        (err = JetAttachDatabase(s, rdb, 0)) < 0) {
        fprintf(stderr, "trial %d: open restored: %ld %s\n", trial, err, JetGetLastErrorDetail());
        JetTerm(ri);
        return 1;
    }
    JetEndSession(s, 0);
    if (open_table(ri, rdb, &s, &t) < 0) return JetTerm(ri), 1;
    uint8_t want[MAXV], got[MAXV];
    for (int k = 0; k < NKEYS && !bad; k++) {
        char key[16];
        unsigned long n = 0;
        snprintf(key, sizeof key, "key%04d", k);
        err = JetRetrieveKV(s, t, key, strlen(key), got, sizeof got, &n, 0);
        if (!at_begin[k]) bad += err != JET_errRecordNotFound;
        else {
            int len = vlen_of(k, at_begin[k]);
            fill(want, k, at_begin[k], len);
            bad += err < 0 || (int)n != len || memcmp(want, got, n) != 0;
        }
        if (bad) fprintf(stderr, "trial %d: key %d differs from the model at begin (err %ld)\n", trial, k, err);
    }
    JetTerm(ri);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", rdir, setdir);
    if (system(cmd) != 0) bad++;
    return bad;
}

static void test_restored_backup_equals_the_model_at_begin(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("snapshot"));
    snprintf(dbpath, sizeof dbpath, "%s/s.db", dir);
    seed = tu_seed("test_restored_backup_equals_the_model_at_begin");
    inst = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&inst, "snap") >= 0);
    JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 256, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCheckpointPeriodMs, 10, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCacheSizeMax, 96, NULL);
    CU_ASSERT_FATAL(JetInit(&inst) >= 0);
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(s, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "t", 0, 0, &t) >= 0);
    pthread_t w[2];
    for (int i = 0; i < 2; i++) pthread_create(&w[i], NULL, writer, (void *)(uintptr_t)(i + 1));
    long trials = tu_count("SNAPSHOT_TRIALS", 50, 500);
    int failed = 0;
    for (int i = 0; i < trials && !failed; i++) failed = one_trial(i);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    fprintf(stderr, "snapshot: %ld trials, %s\n", trials, failed ? "FAILED" : "every restore equal to the model at begin");
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(failures, 0);
    JetEndSession(s, 0);
    JetTerm(inst);
}

/*
 * Begin neither flushes nor copies the database: with 5000 dirty
 * pages in the cache (no checkpoint due), the file's bytes are the same
 * after Begin as before, and Begin is fast; yet the set read afterwards
 * restores to everything committed before Begin (from the logs).
 */
static void test_begin_does_not_flush_the_database(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("snap_begin_cost"));
    snprintf(dbpath, sizeof dbpath, "%s/s.db", dir);
    /* A spill file left by a process killed during a backup is reclaimed. */
    char stale[1200];
    snprintf(stale, sizeof stale, "%s/edb-backup-0.spill", dir);
    FILE *sf = fopen(stale, "w");
    CU_ASSERT_FATAL(sf && fputs("left by a crash", sf) >= 0);
    fclose(sf);
    /* The cache big enough that the 5000 pages stay under the quarter of
     * it at which it kicks the checkpointer: nothing writes the file. */
    inst = tu_instance("bc", dir, (struct tu_params){.cache_pages = 65536, .ckpt_ms = 3600000});
    struct stat sst;
    CU_ASSERT(stat(stale, &sst) != 0);
    JET_SESID s;
    JET_TABLEID t;
    tu_table(inst, dbpath, 1, &s, &t);
    uint8_t v[2000];
    memset(v, 'd', sizeof v);
    for (int i = 0; i < 5000; i += 500) {
        CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
        for (int j = i; j < i + 500; j++) {
            char k[16];
            snprintf(k, sizeof k, "d%07d", j);
            CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), v, sizeof v, 0) >= 0);
        }
        CU_ASSERT_FATAL(JetCommitTransaction(s, 0) >= 0);
    }
    struct stat st0, st1;
    CU_ASSERT_FATAL(stat(dbpath, &st0) == 0);
    /* The premise: the rows are in the cache and the log, not the file. */
    /* The premise: the rows are in the cache and the log, not the file. */
    CU_ASSERT_FATAL(st0.st_size < 1024 * 1024);
    uint64_t h0 = tu_file_hash(dbpath, 2 * 8192, NULL);
    CU_ASSERT_FATAL(JetBeginExternalBackupInstance(inst, 0) >= 0);
    CU_ASSERT_FATAL(stat(dbpath, &st1) == 0);
    CU_ASSERT_EQUAL(st1.st_size, st0.st_size);
    CU_ASSERT_EQUAL(tu_file_hash(dbpath, 2 * 8192, NULL), h0);
    /* The set holds the 5000 rows through its logs. */
    char names[65536], set[1200], cmd[2600];
    unsigned long cb;
    snprintf(set, sizeof set, "%s/set", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", set, set);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char *buf = malloc(1 << 20);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) CU_ASSERT_FATAL(JetGetAttachInfoInstance(inst, names, sizeof names, &cb) >= 0);
        if (pass == 1) CU_ASSERT_FATAL(JetGetLogInfoInstance(inst, names, sizeof names, &cb) >= 0);
        for (char *p = names; *p; p += strlen(p) + 1) {
            JET_HANDLE h;
            unsigned long lo, hi, got;
            CU_ASSERT_FATAL(JetOpenFileInstance(inst, p, &h, &lo, &hi) >= 0);
            snprintf(cmd, sizeof cmd, "%s/%s", set, strrchr(p, '/') + 1);
            FILE *f = fopen(cmd, "wb");
            CU_ASSERT_FATAL(f != NULL);
            while (JetReadFileInstance(inst, h, buf, 1 << 20, &got) >= 0 && got) CU_ASSERT_FATAL(fwrite(buf, 1, got, f) == got);
            fclose(f);
            CU_ASSERT(JetCloseFileInstance(inst, h) >= 0);
        }
    }
    free(buf);
    CU_ASSERT(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);
    char rdir[1300], rdb[1400];
    snprintf(rdir, sizeof rdir, "%s/restored", dir);
    const char *sets[] = {set};
    CU_ASSERT_EQUAL_FATAL(JetRestoreSets(sets, 1, rdir, 0, 0), JET_errSuccess);
    snprintf(rdb, sizeof rdb, "%s/s.db", rdir);
    JET_SESID rs;
    JET_INSTANCE ri = tu_instance("bcr", rdir, (struct tu_params){0});
    tu_table(ri, rdb, 0, &rs, &t);
    int present = 0;
    for (int j = 0; j < 5000; j += 97) {
        char k[16], got[2100];
        unsigned long n = 0;
        snprintf(k, sizeof k, "d%07d", j);
        if (JetRetrieveKV(rs, t, k, strlen(k), got, sizeof got, &n, 0) >= 0 && n == sizeof v && got[0] == 'd') present++;
    }
    CU_ASSERT_EQUAL(present, (5000 + 96) / 97);
    CU_ASSERT(JetTerm(ri) >= 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("snapshot", NULL, NULL);
    CU_add_test(su, "test_begin_does_not_flush_the_database", test_begin_does_not_flush_the_database);
    CU_add_test(su, "test_restored_backup_equals_the_model_at_begin", test_restored_backup_equals_the_model_at_begin);
    return tu_run();
}
