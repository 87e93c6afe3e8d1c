/*
 * jetbench.c -- the engine against SQLite and LMDB, same workload, same run.
 *
 * Workloads (keys 16 bytes, values --value-size bytes, default 100):
 *   commit1   durable single-row commits per second, 1 thread
 *   commit8   the same with 8 threads, each its own session/connection
 *   load      bulk load, 1000 rows per transaction, MB/s of key+value
 *   lookup    random point lookups per second over the loaded rows
 * Peers: SQLite in WAL mode with synchronous=FULL (one table, primary key
 * blob, WITHOUT ROWID), LMDB with default (durable) commits.  Each figure is
 * printed with its ratio to the peer measured in the same run.
 *
 *   jetbench DIR [--seconds S] [--rows N] [--value-size B] [--runs R]
 * With --runs R each workload runs R times and the median is reported.
 */
#include <lmdb.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jet.h"

static double seconds = 2.0;
static long rows = 200000;
static int vsize = 100;
static const char *root;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void mkkey(uint8_t *k, uint64_t i)
{
    /* Spread keys so inserts land all over the tree. */
    uint64_t h = i * 0x9E3779B97F4A7C15ull;
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(h >> (56 - 8 * b));
    for (int b = 0; b < 8; b++) k[8 + b] = (uint8_t)(i >> (56 - 8 * b));
}

static void die(const char *what, long err)
{
    fprintf(stderr, "jetbench: %s failed: %ld %s\n", what, err, JetErrorString(err));
    exit(1);
}

static void fresh_dir(char *out, size_t cb, const char *name)
{
    snprintf(out, cb, "%s/%s", root, name);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
    if (system(cmd) != 0) exit(1);
}

/* ---------------- engines behind one small interface ---------------- */

struct eng {
    const char *name;
    void *(*open)(const char *dir);
    void *(*thread_ctx)(void *db);            /* per-thread handle */
    void (*thread_done)(void *ctx);
    void (*put1)(void *ctx, const uint8_t *k, const uint8_t *v);     /* one durable commit */
    void (*put_batch)(void *ctx, uint64_t first, int n, const uint8_t *v);
    int (*get)(void *ctx, const uint8_t *k);
    void (*close)(void *db);
};

/* jet */
struct jdb { JET_INSTANCE inst; char path[2100]; };
struct jctx { struct jdb *db; JET_SESID s; JET_TABLEID t; };
static void *j_open(const char *dir)
{
    struct jdb *d = calloc(1, sizeof *d);
    JET_ERR e;
    if ((e = JetCreateInstance(&d->inst, "bench")) < 0) die("JetCreateInstance", e);
    JetSetSystemParameter(&d->inst, 0, JET_paramSystemPath, 0, dir);
    JetSetSystemParameter(&d->inst, 0, JET_paramLogFilePath, 0, dir);
    JetSetSystemParameter(&d->inst, 0, JET_paramLogFileSize, 16384, NULL);
    JetSetSystemParameter(&d->inst, 0, JET_paramCacheSizeMax, 32768, NULL);
    if ((e = JetInit(&d->inst)) < 0) die("JetInit", e);
    snprintf(d->path, sizeof d->path, "%s/bench.db", dir);
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    if ((e = JetBeginSession(d->inst, &s, NULL, NULL)) < 0) die("JetBeginSession", e);
    if ((e = JetCreateDatabase(s, d->path, NULL, &db, 0)) < 0) die("JetCreateDatabase", e);
    if ((e = JetCreateTable(s, db, "t", 0, 0, &t)) < 0) die("JetCreateTable", e);
    JetEndSession(s, 0);
    return d;
}
static void *j_ctx(void *vdb)
{
    struct jctx *c = calloc(1, sizeof *c);
    c->db = vdb;
    JET_DBID db;
    JET_ERR e;
    if ((e = JetBeginSession(c->db->inst, &c->s, NULL, NULL)) < 0) die("JetBeginSession", e);
    if ((e = JetOpenDatabase(c->s, c->db->path, NULL, &db, 0)) < 0) die("JetOpenDatabase", e);
    if ((e = JetOpenTable(c->s, db, "t", NULL, 0, 0, &c->t)) < 0) die("JetOpenTable", e);
    return c;
}
static void j_done(void *vc) { struct jctx *c = vc; JetEndSession(c->s, 0); free(c); }
static void j_put1(void *vc, const uint8_t *k, const uint8_t *v)
{
    struct jctx *c = vc;
    JET_ERR e = JetPutKV(c->s, c->t, k, 16, v, (unsigned long)vsize, 0);
    if (e < 0) die("JetPutKV", e);
}
static void j_batch(void *vc, uint64_t first, int n, const uint8_t *v)
{
    struct jctx *c = vc;
    uint8_t k[16];
    JET_ERR e;
    if ((e = JetBeginTransaction(c->s)) < 0) die("JetBeginTransaction", e);
    for (int i = 0; i < n; i++) {
        mkkey(k, first + (uint64_t)i);
        if ((e = JetPutKV(c->s, c->t, k, 16, v, (unsigned long)vsize, 0)) < 0) die("JetPutKV", e);
    }
    if ((e = JetCommitTransaction(c->s, 0)) < 0) die("JetCommitTransaction", e);
}
static int j_get(void *vc, const uint8_t *k)
{
    struct jctx *c = vc;
    uint8_t buf[4096];
    unsigned long n;
    return JetRetrieveKV(c->s, c->t, k, 16, buf, sizeof buf, &n, 0) >= 0;
}
static void j_close(void *vdb) { struct jdb *d = vdb; JetTerm(d->inst); free(d); }

/* SQLite */
struct sdb { char path[2100]; };

/* Runs SQL and dies on failure: a peer silently out of WAL mode or
 * synchronous=FULL would make every ratio a lie. */
static void s_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "jetbench: sqlite: %s: %s\n", sql, msg ? msg : "?");
        exit(1);
    }
}

static int s_text_cb(void *out, int n, char **vals, char **names)
{
    (void)names;
    if (n > 0 && vals[0]) snprintf(out, 32, "%s", vals[0]);
    return 0;
}

/* Sets WAL and synchronous=FULL on this connection and checks both took. */
static void s_durable(sqlite3 *db)
{
    char mode[32] = "", sync[32] = "";
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", s_text_cb, mode, NULL) != SQLITE_OK || strcmp(mode, "wal") != 0) {
        fprintf(stderr, "jetbench: sqlite refused WAL mode (journal_mode=%s)\n", mode);
        exit(1);
    }
    s_exec(db, "PRAGMA synchronous=FULL");
    if (sqlite3_exec(db, "PRAGMA synchronous", s_text_cb, sync, NULL) != SQLITE_OK || strcmp(sync, "2") != 0) {
        fprintf(stderr, "jetbench: sqlite synchronous is %s, not FULL (2)\n", sync);
        exit(1);
    }
}
struct sctx { sqlite3 *db; sqlite3_stmt *put, *get; };
static void *s_open(const char *dir)
{
    struct sdb *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s/bench.sqlite", dir);
    sqlite3 *db;
    if (sqlite3_open(d->path, &db) != SQLITE_OK) die("sqlite3_open", -1);
    s_durable(db);
    s_exec(db, "CREATE TABLE t(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;");
    sqlite3_close(db);
    return d;
}
static void *s_ctx(void *vdb)
{
    struct sdb *d = vdb;
    struct sctx *c = calloc(1, sizeof *c);
    if (sqlite3_open(d->path, &c->db) != SQLITE_OK) die("sqlite3_open", -1);
    sqlite3_busy_timeout(c->db, 60000);
    s_durable(c->db);
    s_exec(c->db, "PRAGMA cache_size=-262144");
    if (sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO t VALUES(?,?)", -1, &c->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "SELECT v FROM t WHERE k=?", -1, &c->get, NULL) != SQLITE_OK)
        die("sqlite3_prepare_v2", -1);
    return c;
}
static void s_done(void *vc) { struct sctx *c = vc; sqlite3_finalize(c->put); sqlite3_finalize(c->get); sqlite3_close(c->db); free(c); }
static void s_put_one(struct sctx *c, const uint8_t *k, const uint8_t *v)
{
    sqlite3_bind_blob(c->put, 1, k, 16, SQLITE_STATIC);
    sqlite3_bind_blob(c->put, 2, v, vsize, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(c->put)) == SQLITE_BUSY) {}
    if (rc != SQLITE_DONE) die("sqlite3_step", rc);
    sqlite3_reset(c->put);
}
static void s_put1(void *vc, const uint8_t *k, const uint8_t *v) { s_put_one(vc, k, v); }
static void s_batch(void *vc, uint64_t first, int n, const uint8_t *v)
{
    struct sctx *c = vc;
    uint8_t k[16];
    s_exec(c->db, "BEGIN IMMEDIATE");
    for (int i = 0; i < n; i++) {
        mkkey(k, first + (uint64_t)i);
        s_put_one(c, k, v);
    }
    s_exec(c->db, "COMMIT");
}
static int s_get(void *vc, const uint8_t *k)
{
    struct sctx *c = vc;
    sqlite3_bind_blob(c->get, 1, k, 16, SQLITE_STATIC);
    int found = sqlite3_step(c->get) == SQLITE_ROW;
    sqlite3_reset(c->get);
    return found;
}
static void s_close(void *vdb) { free(vdb); }

/* LMDB */
struct ldb { MDB_env *env; MDB_dbi dbi; };
static void *l_open(const char *dir)
{
    struct ldb *d = calloc(1, sizeof *d);
    mdb_env_create(&d->env);
    mdb_env_set_mapsize(d->env, (size_t)8 << 30);
    mdb_env_set_maxreaders(d->env, 64);
    int rc = mdb_env_open(d->env, dir, 0, 0644);
    if (rc) die("mdb_env_open", rc);
    MDB_txn *txn;
    mdb_txn_begin(d->env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &d->dbi);
    mdb_txn_commit(txn);
    return d;
}
static void *l_ctx(void *vdb) { return vdb; }
static void l_done(void *c) { (void)c; }
static void l_put1(void *vd, const uint8_t *k, const uint8_t *v)
{
    struct ldb *d = vd;
    MDB_txn *txn;
    MDB_val key = {16, (void *)k}, val = {(size_t)vsize, (void *)v};
    if (mdb_txn_begin(d->env, NULL, 0, &txn)) die("mdb_txn_begin", -1);
    if (mdb_put(txn, d->dbi, &key, &val, 0)) die("mdb_put", -1);
    if (mdb_txn_commit(txn)) die("mdb_txn_commit", -1);
}
static void l_batch(void *vd, uint64_t first, int n, const uint8_t *v)
{
    struct ldb *d = vd;
    MDB_txn *txn;
    uint8_t k[16];
    if (mdb_txn_begin(d->env, NULL, 0, &txn)) die("mdb_txn_begin", -1);
    for (int i = 0; i < n; i++) {
        mkkey(k, first + (uint64_t)i);
        MDB_val key = {16, k}, val = {(size_t)vsize, (void *)v};
        if (mdb_put(txn, d->dbi, &key, &val, 0)) die("mdb_put", -1);
    }
    if (mdb_txn_commit(txn)) die("mdb_txn_commit", -1);
}
static int l_get(void *vd, const uint8_t *k)
{
    struct ldb *d = vd;
    MDB_txn *txn;
    MDB_val key = {16, (void *)k}, val;
    mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn);
    int found = mdb_get(txn, d->dbi, &key, &val) == 0;
    mdb_txn_abort(txn);
    return found;
}
static void l_close(void *vd) { struct ldb *d = vd; mdb_env_close(d->env); free(d); }

static const struct eng engines[] = {
    {"jet", j_open, j_ctx, j_done, j_put1, j_batch, j_get, j_close},
    {"sqlite", s_open, s_ctx, s_done, s_put1, s_batch, s_get, s_close},
    {"lmdb", l_open, l_ctx, l_done, l_put1, l_batch, l_get, l_close},
};

/* ---------------- workloads ---------------- */

struct worker {
    const struct eng *e;
    void *db;
    int id;
    long ops;
    double until;
};

static void *commit_worker(void *arg)
{
    struct worker *w = arg;
    void *c = w->e->thread_ctx(w->db);
    uint8_t k[16], v[4096];
    memset(v, 'v', sizeof v);
    uint64_t i = (uint64_t)w->id << 40;
    while (now() < w->until) {
        mkkey(k, i++);
        w->e->put1(c, k, v);
        w->ops++;
    }
    w->e->thread_done(c);
    return NULL;
}

static double run_commits(const struct eng *e, int threads)
{
    char dir[2100];
    fresh_dir(dir, sizeof dir, e->name);
    void *db = e->open(dir);
    struct worker w[16];
    pthread_t th[16];
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){e, db, i + 1, 0, t0 + seconds};
        pthread_create(&th[i], NULL, commit_worker, &w[i]);
    }
    long ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].ops;
    }
    double dt = now() - t0;
    e->close(db);
    return ops / dt;
}

static void run_load_lookup(const struct eng *e, double *mbps, double *lookups)
{
    char dir[2100];
    fresh_dir(dir, sizeof dir, e->name);
    void *db = e->open(dir);
    void *c = e->thread_ctx(db);
    uint8_t v[4096];
    for (int i = 0; i < (int)sizeof v; i++) v[i] = (uint8_t)(i * 7);
    double t0 = now();
    for (long i = 0; i < rows; i += 1000) e->put_batch(c, (uint64_t)i, (int)(rows - i < 1000 ? rows - i : 1000), v);
    double dt = now() - t0;
    *mbps = rows * (16.0 + vsize) / dt / 1e6;
    uint64_t st = 88172645463325252ull;
    long ops = 0, found = 0;
    t0 = now();
    double until = t0 + seconds;
    uint8_t k[16];
    while (now() < until) {
        for (int j = 0; j < 256; j++) {
            st ^= st << 13; st ^= st >> 7; st ^= st << 17;
            mkkey(k, st % (uint64_t)rows);
            found += e->get(c, k);
            ops++;
        }
    }
    dt = now() - t0;
    if (found != ops) fprintf(stderr, "jetbench: %s: %ld of %ld lookups missed\n", e->name, ops - found, ops);
    *lookups = ops / dt;
    e->thread_done(c);
    e->close(db);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int runs = 1;
    if (argc < 2) {
        fprintf(stderr, "usage: jetbench DIR [--seconds S] [--rows N] [--value-size B] [--runs R]\n");
        return 2;
    }
    root = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rows")) rows = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--value-size")) vsize = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "jetbench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (vsize < 1 || vsize > 4096 || rows < 1000 || runs < 1 || runs > 15) {
        fprintf(stderr, "jetbench: value size 1..4096, rows >= 1000, runs 1..15\n");
        return 2;
    }
    mkdir(root, 0755);
    const char *wl[4] = {"commit1 (commits/s)", "commit8 (commits/s)", "load (MB/s)", "lookup (lookups/s)"};
    double res[3][4];
    static double samples[3][4][15];
    /* Runs outermost, engines interleaved, so a slow spell of the disk
     * hits every engine alike rather than one. */
    for (int r = 0; r < runs; r++)
        for (int e = 0; e < 3; e++) {
            samples[e][0][r] = run_commits(&engines[e], 1);
            samples[e][1][r] = run_commits(&engines[e], 8);
            run_load_lookup(&engines[e], &samples[e][2][r], &samples[e][3][r]);
        }
    for (int e = 0; e < 3; e++)
        for (int w = 0; w < 4; w++) res[e][w] = median(samples[e][w], runs);
    printf("%-22s %12s %12s %12s %10s %10s\n", "workload", "jet", "sqlite", "lmdb", "jet/sqlite", "jet/lmdb");
    for (int w = 0; w < 4; w++)
        printf("%-22s %12.1f %12.1f %12.1f %9.2fx %9.2fx\n", wl[w], res[0][w], res[1][w], res[2][w],
               res[0][w] / res[1][w], res[0][w] / res[2][w]);
    printf("(medians of %d run(s); %ld rows of 16-byte keys and %d-byte values; %.1f s per timed phase)\n", runs,
           rows, vsize, seconds);
    return 0;
}
