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
#include "testvfs.h"

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
    char names[65536], all[70000];
    unsigned long cb = 0;
    size_t used = 0;
    /* The set fixed at once, as the mount does (issue 12: GetLogInfo fixes
     * the log range; AnyOrder lets the databases be opened after it). */
    pthread_mutex_lock(&model_mu);
    JET_ERR err = JetBeginExternalBackupInstance(inst, JET_bitBackupAnyOrder);
    if (err >= 0) err = JetGetLogInfoInstance(inst, NULL, 0, &cb);
    memcpy(at_begin, model, sizeof model);
    pthread_mutex_unlock(&model_mu);
    if (err < 0) return fprintf(stderr, "begin: %ld\n", err), 1;
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

/* ------------------------------------------------------------------ */
/* Shared by the tests below.                                           */
/* ------------------------------------------------------------------ */

/*
 * The I/O seam, watched (a testvfs observer): per file (by the path each
 * descriptor was opened with), the reads, writes and fsyncs and their
 * bytes while io_counting is set; the same totals for the calls made on
 * threads that set tl_io_mine.  And a gate: while armed, the first fsync
 * of a file whose path ends in gate_suffix on a thread that set tl_gate
 * waits until gate_open (gate_blocked tells that it is waiting).
 */
#define IO_PATHS 64

struct io_stat {
    char path[1100];
    long reads, writes, fsyncs;
    unsigned long long rbytes, wbytes;
};

static pthread_mutex_t io_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t io_cv = PTHREAD_COND_INITIALIZER;
static struct io_stat io_stats[IO_PATHS];
static int io_nstats;
static struct io_stat io_mine;
static atomic_int io_counting;
static _Thread_local int tl_io_mine;
static int gate_armed, gate_blocked, gate_open;
static char gate_suffix[64];
static _Thread_local int tl_gate;

enum { IO_READ, IO_WRITE, IO_FSYNC };

static int ends_with(const char *s, const char *suffix) { return testvfs_ends_with(s, suffix); }

static struct io_stat *io_stat_locked(const char *path)
{
    for (int i = 0; i < io_nstats; i++)
        if (strcmp(io_stats[i].path, path) == 0) return &io_stats[i];
    if (io_nstats == IO_PATHS) return &io_stats[IO_PATHS - 1]; /* overflow: lumped with the last */
    snprintf(io_stats[io_nstats].path, sizeof io_stats[0].path, "%s", path);
    return &io_stats[io_nstats++];
}

static void io_add(struct io_stat *st, int kind, size_t n)
{
    if (kind == IO_READ) st->reads++, st->rbytes += n;
    else if (kind == IO_WRITE) st->writes++, st->wbytes += n;
    else st->fsyncs++;
}

static void io_note(const char *path, int kind, size_t n)
{
    if (!atomic_load(&io_counting)) return;
    pthread_mutex_lock(&io_mu);
    io_add(io_stat_locked(path), kind, n);
    if (tl_io_mine) io_add(&io_mine, kind, n);
    pthread_mutex_unlock(&io_mu);
}

static JET_ERR io_observer(void *arg, const struct testvfs_call *c)
{
    (void)arg;
    if (c->kind == TV_PREAD && c->after && c->result >= 0) io_note(c->path, IO_READ, c->got);
    if (c->kind == TV_PWRITE && !c->after) io_note(c->path, IO_WRITE, c->n);
    if (c->kind == TV_FSYNC && !c->after) {
        if (tl_gate) {
            pthread_mutex_lock(&io_mu);
            if (gate_armed && ends_with(c->path, gate_suffix)) {
                gate_armed = 0;
                gate_blocked = 1;
                pthread_cond_broadcast(&io_cv);
                while (!gate_open) pthread_cond_wait(&io_cv, &io_mu);
            }
            pthread_mutex_unlock(&io_mu);
        }
        io_note(c->path, IO_FSYNC, 0);
    }
    return JET_errSuccess;
}

/* Installed before JetInit, so every descriptor the engine opens is named. */
static void io_install(void)
{
    pthread_mutex_lock(&io_mu);
    io_nstats = 0;
    memset(io_stats, 0, sizeof io_stats);
    memset(&io_mine, 0, sizeof io_mine);
    gate_armed = gate_blocked = gate_open = 0;
    pthread_mutex_unlock(&io_mu);
    atomic_store(&io_counting, 0);
    testvfs_install(io_observer, NULL);
}

/* After the instances using the seam have terminated. */
static void io_remove(void)
{
    testvfs_uninstall();
    atomic_store(&io_counting, 0);
    pthread_mutex_lock(&io_mu);
    gate_armed = 0;
    gate_open = 1;
    pthread_cond_broadcast(&io_cv);
    pthread_mutex_unlock(&io_mu);
}

static void io_reset(void)
{
    pthread_mutex_lock(&io_mu);
    io_nstats = 0;
    memset(io_stats, 0, sizeof io_stats);
    memset(&io_mine, 0, sizeof io_mine);
    pthread_mutex_unlock(&io_mu);
}

/* The sum over every file whose path ends in suffix. */
static struct io_stat io_sum(const char *suffix)
{
    struct io_stat sum;
    memset(&sum, 0, sizeof sum);
    snprintf(sum.path, sizeof sum.path, "*%s", suffix);
    pthread_mutex_lock(&io_mu);
    for (int i = 0; i < io_nstats; i++) {
        const struct io_stat *st = &io_stats[i];
        if (!ends_with(st->path, suffix)) continue;
        sum.reads += st->reads;
        sum.writes += st->writes;
        sum.fsyncs += st->fsyncs;
        sum.rbytes += st->rbytes;
        sum.wbytes += st->wbytes;
    }
    pthread_mutex_unlock(&io_mu);
    return sum;
}

static void io_print(const char *what, const struct io_stat *st)
{
    fprintf(stderr, "  %-28s %3ld reads %10llu B, %3ld writes %10llu B, %3ld fsyncs\n", what, st->reads, st->rbytes,
            st->writes, st->wbytes, st->fsyncs);
}

/* An instance with its own system and log paths. */
static JET_INSTANCE snap_instance(const char *name, const char *sys, const char *logs, long log_kb, long cache_pages,
                                  long ckpt_ms, long snap_kb)
{
    return tu_instance(name, sys, (struct tu_params){.log_kb = log_kb, .cache_pages = cache_pages, .ckpt_ms = ckpt_ms,
                                                     .snap_kb = snap_kb, .log_dir = logs});
}

static uint32_t page_size_of(JET_INSTANCE in)
{
    JET_API_PTR ps = 0;
    CU_ASSERT_FATAL(JetGetSystemParameter(in, 0, JET_paramDatabasePageSize, &ps, NULL, 0) >= 0);
    return (uint32_t)ps;
}

/*
 * Puts rows "r%07d" for i in [from, to) by step, vlen bytes of fill,
 * per_txn to a transaction, every commit lazy but the last, which is
 * durable: the log is on disk up to its end when this returns.
 */
static void put_rows(JET_SESID s, JET_TABLEID t, int from, int to, int step, char fill, int vlen, int per_txn)
{
    char *v = malloc((size_t)vlen);
    CU_ASSERT_FATAL(v != NULL);
    memset(v, fill, (size_t)vlen);
    int in_txn = 0;
    for (int i = from; i < to; i += step) {
        if (!in_txn) CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
        char k[16];
        snprintf(k, sizeof k, "r%07d", i);
        CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), v, (unsigned long)vlen, 0) >= 0);
        int last = i + step >= to;
        if (++in_txn == per_txn || last) {
            CU_ASSERT_FATAL(JetCommitTransaction(s, last ? 0 : JET_bitCommitLazyFlush) >= 0);
            in_txn = 0;
        }
    }
    free(v);
}

/* Waits until the log's next generation body is built (the background
 * preparer owns it): a roll then does only the header half. */
static void wait_log_prepared(const char *logs, long log_kb)
{
    char tmp[1200];
    struct stat st;
    snprintf(tmp, sizeof tmp, "%s/edbtmp.log", logs);
    for (int i = 0; i < 2000 && !(stat(tmp, &st) == 0 && st.st_size == log_kb * 1024); i++) usleep(5000);
    CU_ASSERT_FATAL(stat(tmp, &st) == 0 && st.st_size == log_kb * 1024);
}

/* The highest generation "edbXXXXXXXX.log" in logs (edbtmp.log is not one), 0 if none. */
static uint32_t highest_gen(const char *logs)
{
    uint32_t high = 0;
    DIR *dd = opendir(logs);
    CU_ASSERT_FATAL(dd != NULL);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL) {
        const char *b = e->d_name;
        if (strlen(b) != 15 || strncmp(b, "edb", 3) != 0 || strcmp(b + 11, ".log") != 0) continue;
        uint32_t g = 0;
        int ok = 1;
        for (int i = 3; i < 11 && ok; i++) {
            char c = b[i];
            if (c >= '0' && c <= '9') g = g << 4 | (uint32_t)(c - '0');
            else if (c >= 'A' && c <= 'F') g = g << 4 | (uint32_t)(c - 'A' + 10);
            else ok = 0;
        }
        if (ok && g > high) high = g;
    }
    closedir(dd);
    return high;
}

static void gen_path(char *buf, size_t cb, const char *logs, uint32_t g) { snprintf(buf, cb, "%s/edb%08X.log", logs, g); }

static int file_contains(const char *path, const char *needle)
{
    size_t n = 0;
    unsigned char *b = (unsigned char *)tu_slurp(path, &n);
    if (!b) return -1;
    int found = memmem(b, n, needle, strlen(needle)) != NULL;
    free(b);
    return found;
}

/* Copies every file of the running full backup's set into setdir (made
 * here) through JetReadFileAtInstance; returns how many files. */
static int copy_set_out(JET_INSTANCE in, const char *setdir)
{
    char names[65536], all[140000];
    unsigned long cb = 0;
    size_t used = 0;
    CU_ASSERT_FATAL(mkdir(setdir, 0700) == 0);
    CU_ASSERT_FATAL(JetGetAttachInfoInstance(in, names, sizeof names, &cb) >= 0);
    memcpy(all, names, cb - 1);
    used = cb - 1;
    CU_ASSERT_FATAL(JetGetLogInfoInstance(in, names, sizeof names, &cb) >= 0);
    memcpy(all + used, names, cb);
    int n = 0;
    unsigned char *buf = malloc(1 << 20);
    CU_ASSERT_FATAL(buf != NULL);
    for (char *p = all; *p; p += strlen(p) + 1) {
        JET_HANDLE h;
        unsigned long lo = 0, hi = 0, got = 0;
        CU_ASSERT_FATAL(JetOpenFileInstance(in, p, &h, &lo, &hi) >= 0);
        unsigned long long size = (unsigned long long)lo | (unsigned long long)hi << 32;
        char out[1400];
        snprintf(out, sizeof out, "%s/%s", setdir, strrchr(p, '/') + 1);
        FILE *f = fopen(out, "wb");
        CU_ASSERT_FATAL(f != NULL);
        for (unsigned long long off = 0; off < size; off += got) {
            JET_ERR err = JetReadFileAtInstance(in, h, off, buf, 1 << 20, &got);
            CU_ASSERT_FATAL(err >= 0 && got > 0);
            CU_ASSERT_FATAL(fwrite(buf, 1, got, f) == got);
        }
        fclose(f);
        CU_ASSERT(JetCloseFileInstance(in, h) >= 0);
        n++;
    }
    free(buf);
    return n;
}

static void rm_rf(const char *path)
{
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

/* ------------------------------------------------------------------ */
/* 1. Begin's cost does not grow with the database.                     */
/* ------------------------------------------------------------------ */

#define COST_LOG_KB 8192L

struct begin_cost {
    long long db_size;
    struct io_stat db, chk, mine;
    unsigned long long preserved_mem, preserved_spill;
    uint32_t page_size;
    int dirty_at_begin;   /* pages that reached the file only after begin */
    double ms;
};

/*
 * A database of `rows` rows of 4000 bytes, all in the file (loaded, then
 * a clean JetTerm), reopened with a checkpoint an hour away; a quarter of
 * the rows rewritten with lazy commits, so those pages are dirty in the
 * cache (in the log, not in the file) at begin.  The log is flushed and
 * its next body built before begin, so the roll does the same at any
 * size.  Then Begin, with the seam counting.
 */
static void measure_begin(const char *tag, int rows, struct begin_cost *out)
{
    char d[1024], db[1100];
    snprintf(d, sizeof d, "%s", tu_scratch_dir(tag));
    snprintf(db, sizeof db, "%s/cost.db", d);
    memset(out, 0, sizeof *out);
    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE in = snap_instance("costload", d, d, COST_LOG_KB, 65536, 200, 0);
    tu_table(in, db, 1, &s, &t);
    put_rows(s, t, 0, rows, 1, 'a', 4000, 200);
    CU_ASSERT_FATAL(JetTerm(in) >= 0);
    in = snap_instance("cost", d, d, COST_LOG_KB, 65536, 3600000, 0);
    out->page_size = page_size_of(in);
    tu_table(in, db, 0, &s, &t);
    put_rows(s, t, 0, rows, 4, 'b', 4000, 200);
    wait_log_prepared(d, COST_LOG_KB);
    struct stat st;
    CU_ASSERT_FATAL(stat(db, &st) == 0);
    out->db_size = (long long)st.st_size;
    uint64_t h_before = tu_file_hash(db, 2ull * out->page_size, NULL);

    io_reset();
    tl_io_mine = 1;
    atomic_store(&io_counting, 1);
    uint64_t t0 = os_mono_us();
    JET_ERR err = JetBeginExternalBackupInstance(in, 0);
    uint64_t t1 = os_mono_us();
    atomic_store(&io_counting, 0);
    tl_io_mine = 0;
    TU_CHECK_ERR(err, JET_errSuccess);
    out->ms = (double)(t1 - t0) / 1000.0;
    out->db = io_sum("/cost.db");
    struct io_stat chk = io_sum(".chk"), chktmp = io_sum(".chk.tmp");
    out->chk = chk;
    out->chk.reads += chktmp.reads;
    out->chk.writes += chktmp.writes;
    out->chk.fsyncs += chktmp.fsyncs;
    out->chk.wbytes += chktmp.wbytes;
    pthread_mutex_lock(&io_mu);
    out->mine = io_mine;
    fprintf(stderr, "%s: %lld-byte database, Begin took %.1f ms; I/O during Begin:\n", tag, out->db_size, out->ms);
    for (int i = 0; i < io_nstats; i++) io_print(strrchr(io_stats[i].path, '/') ? strrchr(io_stats[i].path, '/') + 1 : io_stats[i].path, &io_stats[i]);
    pthread_mutex_unlock(&io_mu);
    io_print("(on Begin's thread)", &out->mine);

    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    TU_CHECK_ERR(JetGetBackupStatusInstance(in, &bst), JET_errSuccess);
    out->preserved_mem = bst.cbPreservedMemory;
    out->preserved_spill = bst.cbPreservedSpill;
    /* The premise: the rewritten pages were dirty at begin -- the file is
     * as before begin until the clean JetTerm writes them. */
    CU_ASSERT_EQUAL(tu_file_hash(db, 2ull * out->page_size, NULL), h_before);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort), JET_errSuccess);
    CU_ASSERT_FATAL(JetTerm(in) >= 0);
    out->dirty_at_begin = tu_file_hash(db, 2ull * out->page_size, NULL) != h_before;
    rm_rf(d);
}

static void test_begin_cost_does_not_grow_with_the_database(void)
{
    struct begin_cost small, big;
    io_install();
    measure_begin("snap_cost_small", 250, &small);  /* ~2 MB: a 4000-byte row fills a page */
    measure_begin("snap_cost_big", 5000, &big);     /* ~40 MB */
    io_remove();
    struct begin_cost *c[2] = {&small, &big};
    CU_ASSERT_FATAL(small.page_size > 0);
    /* The premises: two sizes far apart, dirty pages in the cache at begin. */
    CU_ASSERT(small.db_size >= 1000000 && small.db_size <= 4500000);
    CU_ASSERT(big.db_size >= 15 * small.db_size);
    for (int i = 0; i < 2; i++) {
        uint64_t ps = c[i]->page_size;
        CU_ASSERT(c[i]->dirty_at_begin);
        /* The database: at most its two header pages read; nothing written,
         * nothing fsynced (no page copied, no cache flushed). */
        CU_ASSERT(c[i]->db.reads <= 2);
        CU_ASSERT(c[i]->db.rbytes <= 2 * ps);
        CU_ASSERT_EQUAL(c[i]->db.writes, 0);
        CU_ASSERT_EQUAL(c[i]->db.wbytes, 0);
        CU_ASSERT_EQUAL(c[i]->db.fsyncs, 0);
        /* No checkpoint either (a cycle would have written the dirty
         * pages, above): at most the checkpointer's note, at the same
         * position, of the generation the roll opened. */
        CU_ASSERT(c[i]->chk.writes <= 1);
        CU_ASSERT(c[i]->chk.fsyncs <= 1);
        /* Right after begin the snapshot holds the header pages, nothing more. */
        CU_ASSERT_EQUAL(c[i]->preserved_mem, 2 * ps);
        CU_ASSERT_EQUAL(c[i]->preserved_spill, 0);
    }
    /* What Begin itself does (its thread: the header pages and the roll)
     * is the same at both sizes, call for call and byte for byte. */
    CU_ASSERT_EQUAL(small.mine.reads, big.mine.reads);
    CU_ASSERT_EQUAL(small.mine.rbytes, big.mine.rbytes);
    CU_ASSERT_EQUAL(small.mine.writes, big.mine.writes);
    CU_ASSERT_EQUAL(small.mine.wbytes, big.mine.wbytes);
    CU_ASSERT_EQUAL(small.mine.fsyncs, big.mine.fsyncs);
    CU_ASSERT_EQUAL(small.db.rbytes, big.db.rbytes);
}

/* ------------------------------------------------------------------ */
/* 2. Begin rolls the log; the set ends at the generation it closed.    */
/* ------------------------------------------------------------------ */

static void marker_value(char *v, size_t n, const char *marker)
{
    size_t m = strlen(marker);
    for (size_t i = 0; i < n; i++) v[i] = marker[i % m];
}

static void test_begin_rolls_the_log_and_the_set_ends_at_the_closed_generation(void)
{
    char d[1024], sys[1100], logs[1100], db[1100], set[1100], rdir[1100], rdb[1200], p[1300];
    snprintf(d, sizeof d, "%s", tu_scratch_dir("snap_roll"));
    snprintf(sys, sizeof sys, "%s/sys", d);
    snprintf(logs, sizeof logs, "%s/logs", d);
    snprintf(db, sizeof db, "%s/roll.db", d);
    snprintf(set, sizeof set, "%s/set", d);
    snprintf(rdir, sizeof rdir, "%s/restored", d);
    snprintf(rdb, sizeof rdb, "%s/roll.db", rdir);
    CU_ASSERT_FATAL(mkdir(sys, 0700) == 0 && mkdir(logs, 0700) == 0);
    char before_marker[64], after_marker[64], vb[600], va[600];
    snprintf(before_marker, sizeof before_marker, "<committed-before-begin-%d>", (int)getpid());
    snprintf(after_marker, sizeof after_marker, "<committed-after-begin-%d>", (int)getpid());
    marker_value(vb, sizeof vb, before_marker);
    marker_value(va, sizeof va, after_marker);

    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE in = snap_instance("roll", sys, logs, 256, 1024, 3600000, 0);
    tu_table(in, db, 1, &s, &t);
    tu_load(s, t, 0, 1500, 'a'); /* a few generations of 256 KiB */
    /* Committed lazily: only the roll at begin makes it durable. */
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, t, "before", 6, vb, sizeof vb, 0) >= 0);
    CU_ASSERT_FATAL(JetCommitTransaction(s, JET_bitCommitLazyFlush) >= 0);
    uint32_t g = highest_gen(logs);
    CU_ASSERT_FATAL(g >= 2);
    gen_path(p, sizeof p, logs, g + 1);
    struct stat st;
    CU_ASSERT_FATAL(stat(p, &st) != 0); /* g is the current generation */

    /* AnyOrder: the databases are copied out after GetLogInfo (issue 12). */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, JET_bitBackupAnyOrder), JET_errSuccess);
    JET_LOGINFO li;
    memset(&li, 0, sizeof li);
    li.cbSize = sizeof li;
    char names[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetLogInfoInstance2(in, names, sizeof names, &cb, &li), JET_errSuccess);
    fprintf(stderr, "roll: generation %u current before begin; the set holds %lu..%lu\n", g, li.ulGenLow, li.ulGenHigh);
    CU_ASSERT_EQUAL(li.ulGenHigh, g);
    CU_ASSERT(li.ulGenLow >= 1 && li.ulGenLow <= g);
    CU_ASSERT_STRING_EQUAL(li.szBaseName, "edb");
    /* The list names exactly the generations low..g, in order. */
    unsigned long want = li.ulGenLow;
    for (char *q = names; *q; q += strlen(q) + 1, want++) {
        gen_path(p, sizeof p, logs, (uint32_t)want);
        CU_ASSERT_STRING_EQUAL(q, p);
    }
    CU_ASSERT_EQUAL(want, (unsigned long)g + 1);
    /* The roll opened generation g + 1. */
    gen_path(p, sizeof p, logs, g + 1);
    CU_ASSERT(stat(p, &st) == 0);
    CU_ASSERT_EQUAL(highest_gen(logs), g + 1);

    /* A commit after begin goes to g + 1, never into a generation of the set. */
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, t, "after", 5, va, sizeof va, 0) >= 0);
    CU_ASSERT_FATAL(JetCommitTransaction(s, 0) >= 0);
    CU_ASSERT_EQUAL(file_contains(p, after_marker), 1);
    int before_in_set = 0;
    for (uint32_t x = (uint32_t)li.ulGenLow; x <= g; x++) {
        char gp[1300];
        gen_path(gp, sizeof gp, logs, x);
        CU_ASSERT_EQUAL(file_contains(gp, after_marker), 0);
        if (file_contains(gp, before_marker) == 1) before_in_set++;
    }
    /* (g + 1 may hold the "before" row too: a page image logged after
     * begin carries every row of its page.) */
    CU_ASSERT(before_in_set >= 1);

    /* Restored, the set has the row committed before begin and not the one after. */
    int nfiles_set = copy_set_out(in, set);
    CU_ASSERT_EQUAL(nfiles_set, 1 + (int)(g - li.ulGenLow + 1));
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort), JET_errSuccess);
    CU_ASSERT(JetTerm(in) >= 0);
    const char *sets[] = {set};
    JET_ERR err = JetRestoreSets(sets, 1, rdir, 0, 0);
    if (err < 0) fprintf(stderr, "roll: restore %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    JET_INSTANCE ri = tu_instance("rollr", rdir, (struct tu_params){0});
    JET_SESID rs;
    JET_TABLEID rt;
    tu_table(ri, rdb, 0, &rs, &rt);
    char got[700];
    unsigned long n = 0;
    TU_CHECK_ERR(JetRetrieveKV(rs, rt, "before", 6, got, sizeof got, &n, 0), JET_errSuccess);
    CU_ASSERT(n == sizeof vb && memcmp(got, vb, sizeof vb) == 0);
    TU_CHECK_ERR(JetRetrieveKV(rs, rt, "after", 5, got, sizeof got, &n, 0), JET_errRecordNotFound);
    TU_CHECK_ERR(JetRetrieveKV(rs, rt, "k001499", 7, got, sizeof got, &n, 0), JET_errSuccess);
    CU_ASSERT(JetTerm(ri) >= 0);
    rm_rf(d);
}

/* ------------------------------------------------------------------ */
/* 3. JET_errBackupNotAllowedYet once JetTerm has started.              */
/* ------------------------------------------------------------------ */

struct term_arg {
    JET_INSTANCE inst;
    JET_ERR err;
};

static void *term_thread(void *arg)
{
    struct term_arg *a = arg;
    tl_gate = 1;
    a->err = JetTerm(a->inst);
    return NULL;
}

static void test_begin_once_term_started_is_not_allowed_yet(void)
{
    char d[1024], db[1100];
    snprintf(d, sizeof d, "%s", tu_scratch_dir("snap_term"));
    snprintf(db, sizeof db, "%s/term.db", d);
    io_install();
    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE in = snap_instance("snapterm", d, d, 1024, 1024, 3600000, 0);
    tu_table(in, db, 1, &s, &t);
    tu_load(s, t, 0, 300, 'a'); /* dirty pages: Term's flush writes and fsyncs the file */
    /* The control: on the running instance a begin is allowed. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort), JET_errSuccess);
    JetEndSession(s, 0);

    /* JetTerm on another thread, held in the seam at its flush's fsync of
     * the database (after it marked the instance terminating). */
    pthread_mutex_lock(&io_mu);
    snprintf(gate_suffix, sizeof gate_suffix, "/term.db");
    gate_blocked = gate_open = 0;
    gate_armed = 1;
    pthread_mutex_unlock(&io_mu);
    struct term_arg a = {in, 0};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, term_thread, &a) == 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&io_mu);
    int rc = 0;
    while (!gate_blocked && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&io_cv, &io_mu, &until);
    int blocked = gate_blocked;
    pthread_mutex_unlock(&io_mu);
    CU_ASSERT(blocked);
    if (blocked) {
        JET_ERR err = JetBeginExternalBackupInstance(in, 0);
        fprintf(stderr, "term: JetBeginExternalBackupInstance while JetTerm runs: %ld (%s)\n", err, JetErrorString(err));
        TU_CHECK_ERR(err, JET_errBackupNotAllowedYet);
        if (err >= 0) JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort);
    }
    pthread_mutex_lock(&io_mu);
    gate_armed = 0;
    gate_open = 1;
    pthread_cond_broadcast(&io_cv);
    pthread_mutex_unlock(&io_mu);
    pthread_join(th, NULL);
    TU_CHECK_ERR(a.err, JET_errSuccess);
    io_remove();
    rm_rf(d);
}

/* ------------------------------------------------------------------ */
/* 4. Preserved pages spill to a file under the system path.            */
/* ------------------------------------------------------------------ */

/* The spill files this process has open, as /proc/self/fd names them
 * (" (deleted)" removed): the count, and the last into out. */
static int find_spill_fds(char *out, size_t cb)
{
    int found = 0;
    DIR *dd = opendir("/proc/self/fd");
    CU_ASSERT_FATAL(dd != NULL);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char link[300], target[PATH_MAX + 32];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (ends_with(target, " (deleted)")) target[n - strlen(" (deleted)")] = '\0';
        const char *base = strrchr(target, '/');
        base = base ? base + 1 : target;
        if (strstr(base, "-backup-") && ends_with(base, ".spill")) {
            found++;
            if (out) snprintf(out, cb, "%s", target);
        }
    }
    closedir(dd);
    return found;
}

static void test_preserved_pages_spill_under_the_system_path(void)
{
    char d[1024], sys[1100], logs[1100], db[1100];
    snprintf(d, sizeof d, "%s", tu_scratch_dir("snap_spill"));
    snprintf(sys, sizeof sys, "%s/sys", d);
    snprintf(logs, sizeof logs, "%s/logs", d);
    snprintf(db, sizeof db, "%s/spill.db", d);
    CU_ASSERT_FATAL(mkdir(sys, 0700) == 0 && mkdir(logs, 0700) == 0);
    const long mem_kb = 64; /* 8 pages of 8 KiB in memory */
    JET_SESID s;
    JET_TABLEID t;
    /* A small cache and a checkpoint every 20 ms: pages rewritten after
     * begin reach the file soon, each preserved first. */
    JET_INSTANCE in = snap_instance("spill", sys, logs, 1024, 256, 20, mem_kb);
    tu_table(in, db, 1, &s, &t);
    tu_load(s, t, 0, 3000, 'a');
    CU_ASSERT_FATAL(JetTerm(in) >= 0);
    /* Reopened clean: nothing dirty, so nothing writes the file until the
     * next commit, and a copy taken now is the file at begin. */
    in = snap_instance("spill", sys, logs, 1024, 256, 20, mem_kb);
    uint32_t ps = page_size_of(in);
    tu_table(in, db, 0, &s, &t);
    usleep(100 * 1000);
    size_t refn = 0, nown = 0;
    unsigned char *ref = (unsigned char *)tu_slurp(db, &refn);
    CU_ASSERT_FATAL(ref != NULL && refn > 100 * (size_t)ps && refn % ps == 0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    unsigned char *now = (unsigned char *)tu_slurp(db, &nown);
    CU_ASSERT_FATAL(now != NULL);
    CU_ASSERT_FATAL(nown == refn && memcmp(now + 2 * ps, ref + 2 * ps, refn - 2 * ps) == 0);
    free(now);
    CU_ASSERT_EQUAL(find_spill_fds(NULL, 0), 0); /* nothing preserved past the headers yet */

    /* Rewrite every row and grow the table while the backup is open. */
    tu_load(s, t, 0, 6000, 'z');
    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    int overwritten = 0;
    for (int i = 0; i < 500; i++) {
        TU_CHECK_ERR(JetGetBackupStatusInstance(in, &bst), JET_errSuccess);
        now = (unsigned char *)tu_slurp(db, &nown);
        CU_ASSERT_FATAL(now != NULL);
        overwritten = 0;
        for (size_t pg = 2; pg < refn / ps; pg++) overwritten += memcmp(now + pg * ps, ref + pg * ps, ps) != 0;
        free(now);
        if (bst.cbPreservedSpill > 0 && overwritten > 2 * mem_kb * 1024 / (long)ps) break;
        usleep(10 * 1000);
    }
    fprintf(stderr, "spill: %d of %zu pages overwritten since begin; %llu bytes preserved in memory, %llu spilled\n",
            overwritten, refn / ps, bst.cbPreservedMemory, bst.cbPreservedSpill);
    CU_ASSERT(bst.fInProgress);
    CU_ASSERT(bst.cbPreservedSpill > 0);
    CU_ASSERT(bst.cbPreservedMemory <= (unsigned long long)mem_kb * 1024);
    /* More pages overwritten than the memory bound holds: some are served from the spill. */
    CU_ASSERT(overwritten > 2 * mem_kb * 1024 / (long)ps);

    /* The spill file: open, named <base>-backup-<dbidx>.spill, in the
     * system path (not the log path, not the database's directory). */
    char spill[PATH_MAX + 32], spill_dir[PATH_MAX + 32], real_sys[PATH_MAX], real_logs[PATH_MAX];
    CU_ASSERT_FATAL(realpath(sys, real_sys) != NULL && realpath(logs, real_logs) != NULL);
    spill[0] = '\0';
    int nspill = find_spill_fds(spill, sizeof spill);
    fprintf(stderr, "spill: open spill file %s (system path %s)\n", nspill ? spill : "(none)", real_sys);
    CU_ASSERT_EQUAL(nspill, 1);
    snprintf(spill_dir, sizeof spill_dir, "%s", spill);
    char *slash = strrchr(spill_dir, '/');
    if (slash) *slash = '\0';
    CU_ASSERT_STRING_EQUAL(spill_dir, real_sys);
    CU_ASSERT_STRING_EQUAL(slash ? slash + 1 : "", "edb-backup-0.spill");
    CU_ASSERT(strcmp(spill_dir, real_logs) != 0);

    /* The backup still reads back, page for page, the file as at begin. */
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0;
    char names[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetAttachInfoInstance(in, names, sizeof names, &cb), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(in, names, &h, &lo, &hi), JET_errSuccess);
    unsigned long long size = (unsigned long long)lo | (unsigned long long)hi << 32;
    CU_ASSERT_EQUAL(size, refn);
    unsigned char *buf = malloc(64 * 1024);
    CU_ASSERT_FATAL(buf != NULL);
    long bad_pages = 0, read_errs = 0;
    for (unsigned long long off = 0; off < size && off < refn;) {
        unsigned long got = 0;
        JET_ERR err = JetReadFileAtInstance(in, h, off, buf, 64 * 1024, &got);
        if (err < 0 || got == 0) {
            fprintf(stderr, "spill: read at %llu: %ld %s\n", off, err, JetGetLastErrorDetail());
            read_errs++;
            break;
        }
        for (unsigned long k = 0; k + ps <= got; k += ps) {
            unsigned long long pg = (off + k) / ps;
            if (pg >= 2 && pg < refn / ps && memcmp(buf + k, ref + pg * ps, ps) != 0) bad_pages++;
        }
        off += got;
    }
    free(buf);
    CU_ASSERT_EQUAL(read_errs, 0);
    CU_ASSERT_EQUAL(bad_pages, 0);
    CU_ASSERT(JetCloseFileInstance(in, h) >= 0);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort), JET_errSuccess);
    /* The end of the backup releases its spill file. */
    CU_ASSERT_EQUAL(find_spill_fds(NULL, 0), 0);
    struct stat st;
    CU_ASSERT(stat(spill, &st) != 0);
    CU_ASSERT(JetTerm(in) >= 0);
    free(ref);
    rm_rf(d);
}

/*
 * The copy-on-write spill fails (ENOSPC): the instance comes first -- its
 * page writes go on, commits and checkpoints never stall, it stays healthy
 * -- while the backup fails visibly: its status says why and a read of
 * the database through it is refused, never served from a file the engine
 * has been writing unpreserved.
 */
static void test_a_spill_failure_aborts_the_backup_and_writes_go_on(void)
{
    char d[1024], sys[1100], logs[1100], db[1100];
    snprintf(d, sizeof d, "%s", tu_scratch_dir("snap_spillfail"));
    snprintf(sys, sizeof sys, "%s/sys", d);
    snprintf(logs, sizeof logs, "%s/logs", d);
    snprintf(db, sizeof db, "%s/spill.db", d);
    CU_ASSERT_FATAL(mkdir(sys, 0700) == 0 && mkdir(logs, 0700) == 0);
    testvfs_install(NULL, NULL);
    JET_SESID s;
    JET_TABLEID t;
    JET_INSTANCE in = snap_instance("spillfail", sys, logs, 1024, 256, 20, 64);
    tu_table(in, db, 1, &s, &t);
    tu_load(s, t, 0, 3000, 'a');
    CU_ASSERT_FATAL(JetTerm(in) >= 0);
    in = snap_instance("spillfail", sys, logs, 1024, 256, 20, 64);
    tu_table(in, db, 0, &s, &t);
    /* From here on the spill file's disk is full. */
    testvfs_fail_from(TV_PWRITE, 1, ".spill", JET_errDiskFull);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    long long size0 = 0;
    uint64_t h0 = tu_file_hash(db, 0, &size0);
    /* Rewrite every row: the checkpointer must write pages past the
     * memory bound, and the spill refuses them. */
    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    for (int round = 0; round < 200; round++) {
        tu_load(s, t, 0, 3000, (char)('b' + round % 20));
        TU_CHECK_ERR(JetGetBackupStatusInstance(in, &bst), JET_errSuccess);
        if (bst.szFailure[0] && tu_file_hash(db, 0, NULL) != h0) break;
        usleep(20 * 1000);
    }
    fprintf(stderr, "spill failure: %s\n", bst.szFailure);
    CU_ASSERT(strstr(bst.szFailure, "preserving page") && strstr(bst.szFailure, "aborted"));
    CU_ASSERT(tu_file_hash(db, 0, NULL) != h0); /* the engine's writes went on */
    char why[700];
    TU_CHECK_ERR(JetGetInstanceFailure(in, why, sizeof why), JET_errSuccess);
    tu_load(s, t, 3000, 3100, 'y'); /* commits go on */
    /* The backup is refused, whatever was read of it before. */
    char names[65536];
    unsigned long cb = 0, lo = 0, hi = 0, got = 0;
    JET_HANDLE h;
    TU_CHECK_ERR(JetGetAttachInfoInstance(in, names, sizeof names, &cb), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(in, names, &h, &lo, &hi), JET_errSuccess);
    static unsigned char buf[65536];
    TU_CHECK_ERR(JetReadFileAtInstance(in, h, 65536, buf, sizeof buf, &got), JET_errBackupAbortByServer);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "preserving page") != NULL);
    CU_ASSERT(JetCloseFileInstance(in, h) >= 0);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort), JET_errSuccess);
    /* The next backup starts afresh. */
    testvfs_clear(TV_PWRITE);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetBackupStatusInstance(in, &bst), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(bst.szFailure, "");
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort), JET_errSuccess);
    CU_ASSERT(JetTerm(in) >= 0);
    testvfs_uninstall();
    rm_rf(d);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("snapshot", NULL, NULL);
    CU_add_test(su, "test_begin_does_not_flush_the_database", test_begin_does_not_flush_the_database);
    CU_add_test(su, "test_restored_backup_equals_the_model_at_begin", test_restored_backup_equals_the_model_at_begin);
    CU_add_test(su, "test_begin_cost_does_not_grow_with_the_database", test_begin_cost_does_not_grow_with_the_database);
    CU_add_test(su, "test_begin_rolls_the_log_and_the_set_ends_at_the_closed_generation",
                test_begin_rolls_the_log_and_the_set_ends_at_the_closed_generation);
    CU_add_test(su, "test_begin_once_term_started_is_not_allowed_yet", test_begin_once_term_started_is_not_allowed_yet);
    CU_add_test(su, "test_preserved_pages_spill_under_the_system_path", test_preserved_pages_spill_under_the_system_path);
    CU_add_test(su, "test_a_spill_failure_aborts_the_backup_and_writes_go_on",
                test_a_spill_failure_aborts_the_backup_and_writes_go_on);
    return tu_run();
}
