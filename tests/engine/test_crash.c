/*
 * test_crash.c -- power cuts in-process, through the crash VFS
 * (tests/support/crashvfs.h), and the guarantees of delta redo that only a
 * crash image can show.
 *
 *   - the crash VFS itself: what it keeps, what it tears;
 *   - random power cuts: each cycle runs random durable commits with the
 *     VFS armed at a random write or fsync (unsynced writes dropped, one
 *     torn at a sector, or a random subset kept), sometimes cuts the power
 *     again in the middle of the recovery, then recovers for real and
 *     checks that the database is the acknowledged commits plus at most a
 *     prefix of the unacknowledged ones (so a commit is there whole or not
 *     at all), and that the offline check finds the file sound.  Cycles go
 *     on over the same directory.  CRASH_CYCLES sets the count; SEED
 *     replays the choices (the checkpointer's timing still varies);
 *   - a checkpoint write torn in place is put back from the double-write
 *     file (and without that file the same image is refused); a refused
 *     recovery must keep those copies; a page write that fails (not
 *     fatal) followed by a power cut must lose nothing either;
 *   - redo is idempotent: a crash image recovered once, recovered with
 *     some pages already brought forward (a checkpoint that wrote them),
 *     and recovered twice from the same checkpoint gives the same bytes;
 *   - the page stamp guard: a page older than the log expects is
 *     JET_errDbTimeTooOld, a newer one JET_errDbTimeTooNew, naming the file
 *     and the page, and a refused recovery changes no file.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "crashvfs.h"
#include "dwb.h"
#include "jet.h"
#include "jet_inspect.h"
#include "os.h"
#include "page.h"
#include "testutil.h"

#define PS 8192u
#define NKEYS 256
#define MAXVAL 12000

static char dir[1024], dbpath[1100];
static JET_DBID dbid;
/* The last instance made, so a test that stopped at a fatal assertion
 * does not leave it (or the crash VFS) to the next one. */
static JET_INSTANCE last_inst;

struct params {
    long log_kb, cache_pages, ckpt_ms;
};

/* An instance on dir with table "t" of dbpath open (created when create);
 * *pinst is set as soon as it exists, so a failed start can be JetTerm'ed. */
static JET_ERR open_inst(JET_INSTANCE *pinst, JET_SESID *ps, JET_TABLEID *pt, int create, struct params p)
{
    JET_ERR err = tu_open("crash", dir, (struct tu_params){.log_kb = p.log_kb, .cache_pages = p.cache_pages, .ckpt_ms = p.ckpt_ms},
                          dbpath, create, pinst, ps, &dbid, pt);
    if (*pinst) last_inst = *pinst;
    return err;
}

/* A checkpoint on demand: a detach writes every dirty page out, fsyncs
 * and moves the checkpoint past them; the file is attached again.  Its
 * result is the detach's. */
static JET_ERR checkpoint(JET_SESID s, JET_TABLEID *pt)
{
    TU_CHECK_ERR(JetCloseTable(s, *pt), JET_errSuccess);
    TU_CHECK_ERR(JetCloseDatabase(s, dbid, 0), JET_errSuccess);
    JET_ERR err = JetDetachDatabase(s, dbpath);
    if (err < 0) {
        /* Refused at its checkpoint: still attached, opened again (unless
         * the instance stopped: then nothing opens). */
        if (!crashvfs_crashed() && err != JET_errInstanceUnavailable) {
            TU_CHECK_ERR(JetOpenDatabase(s, dbpath, NULL, &dbid, 0), JET_errSuccess);
            TU_CHECK_ERR(JetOpenTable(s, dbid, "t", NULL, 0, 0, pt), JET_errSuccess);
        }
        return err;
    }
    TU_CHECK_ERR(JetAttachDatabase(s, dbpath, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenDatabase(s, dbpath, NULL, &dbid, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenTable(s, dbid, "t", NULL, 0, 0, pt), JET_errSuccess);
    return JET_errSuccess;
}

/* JetInit alone on dir: what a restart does first. */
static JET_ERR init_only(JET_INSTANCE *pinst, struct params p)
{
    JET_ERR err = tu_open("crash_init", dir, (struct tu_params){.log_kb = p.log_kb}, NULL, 0, pinst, NULL, NULL, NULL);
    if (*pinst) last_inst = *pinst;
    return err;
}

/* Recovery must succeed; it is ended cleanly again at once. */
static void recover_only(struct params p, const char *what)
{
    JET_INSTANCE inst;
    JET_ERR err = init_only(&inst, p);
    if (err < 0) fprintf(stderr, "%s: recovery: %ld %s\n", what, (long)err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

/* ---- files ---- */

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *b = tu_slurp(from, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    FILE *f = fopen(to, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_FATAL(fwrite(b, 1, n, f) == n);
    CU_ASSERT_FATAL(fclose(f) == 0);
    free(b);
}

/* Makes directory `to` hold exactly the regular files of `from` (flat). */
static void mirror_dir(const char *from, const char *to)
{
    char p[2200], q[2200];
    DIR *d = opendir(to);
    struct dirent *e;
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((e = readdir(d))) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", to, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) CU_ASSERT_FATAL(unlink(p) == 0);
    }
    closedir(d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = opendir(from));
    while ((e = readdir(d))) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", from, e->d_name);
        snprintf(q, sizeof q, "%s/%s", to, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) copy_file(p, q);
    }
    closedir(d);
}

static void in_dir(char *buf, size_t cb, const char *d, const char *name) { snprintf(buf, cb, "%s/%s", d, name); }

static void page_read(const char *path, uint32_t pgno, uint8_t *buf)
{
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    memset(buf, 0, PS);
    CU_ASSERT_FATAL(pread(fd, buf, PS, (off_t)pgno * PS) >= 0);
    close(fd);
}

static void page_write(const char *path, uint32_t pgno, const uint8_t *buf)
{
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pwrite(fd, buf, PS, (off_t)pgno * PS) == (ssize_t)PS);
    close(fd);
}

static int page_sound(const uint8_t *pg, uint32_t pgno)
{
    return !page_is_zero(pg, PS) && page_pgno(pg) == pgno && get_le64(pg) == page_checksum(pg, PS);
}

static long long size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* A directory's files, for "changed nothing" (testutil.h). */
#define dir_snap tu_dir_snap
#define snap_dir(sn) tu_snap_dir(dir, (sn))
#define assert_dir_unchanged(before) tu_assert_dir_unchanged(dir, (before), NULL)

/* Delta records of the log in dir from lsn `from` on, in log order. */
struct delta_ref {
    uint32_t pgno;
    uint64_t lsn, before;
};
struct deltas {
    uint64_t from;
    int n, total;
    struct delta_ref d[4096];
};
static int note_delta(void *arg, const JET_INSPECT_LOGRECORD *rec)
{
    struct deltas *ds = arg;
    if (rec->type != 5 || rec->lsn < ds->from) return 0;
    ds->total++;
    if (ds->n < 4096) ds->d[ds->n++] = (struct delta_ref){rec->pgno, rec->lsn, rec->before};
    return 0;
}

/* The deltas recovery of dir would replay: from its checkpoint on. */
static void replay_deltas(struct deltas *ds)
{
    char ck[1200];
    JET_INSPECT_CHECKPOINT c;
    in_dir(ck, sizeof ck, dir, "edb.chk");
    TU_CHECK_ERR(JetInspectCheckpoint(ck, &c), JET_errSuccess);
    ds->from = c.lsn;
    ds->n = ds->total = 0;
    TU_CHECK_ERR(JetInspectLogRecords(dir, "edb", (uint32_t)(c.lsn >> 32), 0, note_delta, ds, NULL), JET_errSuccess);
}

/* ---- the model: keys "c%05d", values derived from (length, tag) ---- */

struct model {
    int len[NKEYS]; /* -1: absent */
    uint32_t tag[NKEYS];
};
struct kop {
    int key, len; /* len -1: delete */
    uint32_t tag;
};
#define MAX_TXN_OPS 5
struct commit {
    int n, acked;
    struct kop ops[MAX_TXN_OPS];
};

static void fill_value(uint8_t *buf, int len, uint32_t tag)
{
    uint64_t st = tag * 0x9E3779B97F4A7C15ull + (uint64_t)len;
    for (int i = 0; i < len; i++) buf[i] = (uint8_t)(tu_rand(&st) >> 56);
}

static void model_empty(struct model *m)
{
    for (int k = 0; k < NKEYS; k++) m->len[k] = -1, m->tag[k] = 0;
}

static void model_apply(struct model *m, const struct commit *c)
{
    for (int i = 0; i < c->n; i++) {
        m->len[c->ops[i].key] = c->ops[i].len;
        m->tag[c->ops[i].key] = c->ops[i].tag;
    }
}

static int model_count(const struct model *m)
{
    int n = 0;
    for (int k = 0; k < NKEYS; k++) n += m->len[k] >= 0;
    return n;
}

static void key_of(int k, char *buf) { snprintf(buf, 16, "c%05d", k); }

/* What the table holds, by key. */
struct scan {
    int len[NKEYS];
    uint64_t hash[NKEYS];
    int stray; /* entries that are no key of the model */
};

static JET_ERR scan_table(JET_SESID s, JET_TABLEID t, struct scan *sc)
{
    static uint8_t v[MAXVAL + 1];
    for (int k = 0; k < NKEYS; k++) sc->len[k] = -1;
    sc->stray = 0;
    JET_ERR err = JetMove(s, t, JET_MoveFirst, 0);
    while (err >= 0) {
        char key[JET_cbKeyMost + 1];
        unsigned long kl = 0, vl = 0;
        if ((err = JetRetrieveCurrentKV(s, t, key, JET_cbKeyMost, &kl, v, sizeof v, &vl)) < 0) return err;
        key[kl] = '\0';
        int k = -1;
        if (kl == 6 && key[0] == 'c') k = atoi(key + 1);
        if (k < 0 || k >= NKEYS || sc->len[k] >= 0 || vl > MAXVAL) sc->stray++;
        else {
            sc->len[k] = (int)vl;
            sc->hash[k] = XXH3_64bits(v, vl);
        }
        err = JetMove(s, t, JET_MoveNext, 0);
    }
    return err == JET_errNoCurrentRecord ? JET_errSuccess : err;
}

/* 0 when the scan is exactly m; else the first difference into why. */
static int scan_differs(const struct scan *sc, const struct model *m, char *why, size_t cb)
{
    static uint8_t want[MAXVAL];
    if (sc->stray) {
        snprintf(why, cb, "%d entries that are not keys of the model", sc->stray);
        return 1;
    }
    for (int k = 0; k < NKEYS; k++) {
        if (sc->len[k] != m->len[k]) {
            snprintf(why, cb, "c%05d: %d bytes, expected %d (-1: absent)", k, sc->len[k], m->len[k]);
            return 1;
        }
        if (m->len[k] < 0) continue;
        fill_value(want, m->len[k], m->tag[k]);
        if (XXH3_64bits(want, (size_t)m->len[k]) != sc->hash[k]) {
            snprintf(why, cb, "c%05d: %d bytes of other content", k, m->len[k]);
            return 1;
        }
    }
    return 0;
}

/* Puts keys [from, to) with values of len bytes and tags base + key, n per
 * durable transaction; the model follows. */
static void load(JET_SESID s, JET_TABLEID t, struct model *m, int from, int to, int len, uint32_t base, int per)
{
    static uint8_t v[MAXVAL];
    for (int i = from; i < to; i += per) {
        CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
        for (int k = i; k < i + per && k < to; k++) {
            char key[16];
            key_of(k, key);
            fill_value(v, len, base + (uint32_t)k);
            CU_ASSERT_FATAL(JetPutKV(s, t, key, strlen(key), v, (unsigned long)len, 0) >= 0);
            m->len[k] = len;
            m->tag[k] = base + (uint32_t)k;
        }
        TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    }
}

static void assert_model(JET_SESID s, JET_TABLEID t, const struct model *m, const char *what)
{
    static struct scan sc;
    char why[200];
    TU_CHECK_ERR(scan_table(s, t, &sc), JET_errSuccess);
    int d = scan_differs(&sc, m, why, sizeof why);
    if (d) fprintf(stderr, "%s: %s\n", what, why);
    CU_ASSERT(!d);
}

/* The offline check of the cleanly shut-down file: sound, holding n entries. */
static void report_problem(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "  check: %s\n", msg);
}
static void assert_db_sound(int entries, const char *what)
{
    JET_INSPECT_CHECK st;
    JET_ERR err = JetInspectCheckDatabase(dbpath, report_problem, NULL, &st);
    if (err < 0 || (long long)st.entries != entries)
        fprintf(stderr, "%s: check: %ld (%s), %llu entries, %d expected\n", what, (long)err,
                err < 0 ? JetGetLastErrorDetail() : "", (unsigned long long)st.entries, entries);
    TU_CHECK_ERR(err, JET_errSuccess);
    CU_ASSERT_EQUAL(st.problems, 0);
    CU_ASSERT_EQUAL((long long)st.entries, entries);
}

/* ---- the crash VFS itself ---- */

static void fill_file(const char *path, char c, size_t n)
{
    char *b = malloc(n);
    memset(b, c, n);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0 && pwrite(fd, b, n, 0) == (ssize_t)n);
    close(fd);
    free(b);
}

static void test_crashvfs_keeps_only_what_was_fsynced(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash_vfs"));
    char path[1200], a[4096], b[3000], c[4096];
    in_dir(path, sizeof path, dir, "f");
    memset(a, 'A', sizeof a);
    memset(b, 'B', sizeof b);
    memset(c, 'C', sizeof c);
    for (int m = CRASHVFS_DROP; m <= CRASHVFS_TEAR; m++) {
        int fd;
        fill_file(path, 'x', 100);
        crashvfs_install();
        /* The second write arms the crash (calls: write, fsync, write). */
        crashvfs_arm(m == CRASHVFS_TEAR ? 3 : 0, (enum crashvfs_mode)m, 7, NULL, NULL);
        TU_CHECK_ERR(os_open(path, OS_OPEN_READ | OS_OPEN_WRITE, &fd), JET_errSuccess);
        TU_CHECK_ERR(os_pwrite(fd, a, sizeof a, 0), JET_errSuccess);
        TU_CHECK_ERR(os_fsync(fd), JET_errSuccess);
        TU_CHECK_ERR(os_pwrite(fd, b, sizeof b, 100), JET_errSuccess);
        if (m == CRASHVFS_DROP) {
            TU_CHECK_ERR(os_pwrite(fd, c, sizeof c, 4096), JET_errSuccess); /* grows the file */
            TU_CHECK_ERR(os_ftruncate(fd, 6000), JET_errSuccess);
            CU_ASSERT(crashvfs_crash_now());
        }
        CU_ASSERT(crashvfs_crashed());
        TU_CHECK_ERR(os_pwrite(fd, a, 1, 0), JET_errDiskIO);
        TU_CHECK_ERR(os_fsync(fd), JET_errDiskIO);
        int fd2 = -1;
        TU_CHECK_ERR(os_open(path, OS_OPEN_READ, &fd2), JET_errDiskIO);
        os_close(fd); /* still closes: a JetTerm after the crash leaks nothing */
        CU_ASSERT_EQUAL(crashvfs_open_fds(), 0);
        struct crashvfs_report r;
        crashvfs_report(&r);
        crashvfs_uninstall();
        size_t n;
        char *got = tu_slurp(path, &n);
        CU_ASSERT_FATAL(got != NULL && n == sizeof a);
        size_t kept = m == CRASHVFS_TEAR ? r.torn_kept : 0;
        if (m == CRASHVFS_TEAR) {
            /* Cut at a sector boundary of the file, inside the write. */
            CU_ASSERT(r.torn && kept > 0 && kept < sizeof b && (100 + kept) % 512 == 0);
            CU_ASSERT_EQUAL(r.torn_off, 100);
        } else {
            CU_ASSERT(!r.torn && r.lost == 3 && r.kept == 0 && r.files == 1);
        }
        for (size_t i = 0; i < n; i++)
            if (got[i] != (i >= 100 && i < 100 + kept ? 'B' : 'A')) {
                fprintf(stderr, "mode %d: byte %zu is %c\n", m, i, got[i]);
                CU_FAIL("crash VFS kept the wrong bytes");
                break;
            }
        free(got);
    }
}

/* Two threads write their own page of one file and fsync it, as the
 * checkpointer and an evicting session both fsync the database file.  An
 * fsync that lands makes durable what was written to the file before it
 * was called, whatever another thread's fsync did meanwhile, and nothing
 * written after the last one returned; so after the power cut each page
 * holds the value its thread fsynced last, or the one write it made after
 * (the other thread's fsync may have covered that), never one older, and
 * never the writes made once both threads were done. */
#define SYNC_ROUNDS 3000
struct syncer {
    int fd;
    uint64_t off;
    int synced;             /* the last value made durable, -1: none */
};

static void *syncer_run(void *arg)
{
    struct syncer *y = arg;
    uint8_t b[PS];
    for (int i = 0; i < SYNC_ROUNDS; i++) {
        memset(b, i & 0xff, sizeof b);
        if (os_pwrite(y->fd, b, sizeof b, y->off) < 0) break;
        if (i % 2 == 0 && os_fsync(y->fd) >= 0) y->synced = i;
    }
    return NULL;
}

static void test_crashvfs_concurrent_fsyncs_of_one_file(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash_vfs_sync"));
    char path[1200];
    in_dir(path, sizeof path, dir, "f");
    fill_file(path, 'x', 2 * PS);
    crashvfs_install();
    struct syncer y[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        y[k] = (struct syncer){-1, (uint64_t)PS * (uint64_t)k, -1};
        /* Two descriptors on one file: the VFS keeps one list for it. */
        TU_CHECK_ERR(os_open(path, OS_OPEN_READ | OS_OPEN_WRITE, &y[k].fd), JET_errSuccess);
    }
    for (int k = 0; k < 2; k++) CU_ASSERT_FATAL(pthread_create(&th[k], NULL, syncer_run, &y[k]) == 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    uint8_t late[PS];
    memset(late, 0xee, sizeof late);
    for (int k = 0; k < 2; k++) TU_CHECK_ERR(os_pwrite(y[k].fd, late, sizeof late, y[k].off), JET_errSuccess);
    CU_ASSERT(crashvfs_crash_now());
    for (int k = 0; k < 2; k++) os_close(y[k].fd);
    CU_ASSERT_EQUAL(crashvfs_open_fds(), 0);
    crashvfs_uninstall();
    size_t n;
    uint8_t *got = (uint8_t *)tu_slurp(path, &n);
    CU_ASSERT_FATAL(got != NULL && n == 2 * PS);
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(y[k].synced, SYNC_ROUNDS - 2);
        uint8_t v = got[PS * k];
        if (v != (uint8_t)(SYNC_ROUNDS - 2) && v != (uint8_t)(SYNC_ROUNDS - 1)) {
            fprintf(stderr, "page %d holds %u, not the last value fsynced (%u) or the write after it\n", k, v,
                    (uint8_t)(SYNC_ROUNDS - 2));
            CU_FAIL("a concurrent fsync made the wrong writes durable");
        }
        for (size_t i = 1; i < PS; i++)
            if (got[PS * k + i] != v) {
                fprintf(stderr, "page %d byte %zu is %u, byte 0 %u\n", k, i, got[PS * k + i], v);
                CU_FAIL("a concurrent fsync made the wrong writes durable");
                break;
            }
    }
    free(got);
}

/* ---- random power cuts ---- */

struct cycle {
    uint64_t rng;
    struct model cur;       /* what every commit issued so far makes */
    struct commit *log;     /* the commits issued this cycle, in order */
    int n, cap;
    int failed;             /* a call failed other than by the crash */
};

static int rand_len(uint64_t *r)
{
    if (tu_rand(r) % 10 == 0) return (int)(PS + 800 + tu_rand(r) % (MAXVAL - PS - 800)); /* overflow pages */
    return 1 + (int)(tu_rand(r) % 3000);
}

static void push_commit(struct cycle *c, const struct kop *ops, int n, int acked)
{
    if (n == 0) return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->log = realloc(c->log, (size_t)c->cap * sizeof *c->log);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c->log);
    }
    struct commit *cm = &c->log[c->n++];
    cm->n = n;
    cm->acked = acked;
    memcpy(cm->ops, ops, (size_t)n * sizeof *ops);
}

/* A failure is expected only once the power is cut. */
static int unexpected(struct cycle *c, JET_ERR err, const char *call)
{
    if (crashvfs_crashed()) return 0;
    fprintf(stderr, "%s failed before any crash: %ld %s\n", call, (long)err, JetGetLastErrorDetail());
    c->failed = 1;
    return 1;
}

/*
 * One update: put (upsert), replace or delete of a random key, against the
 * state st the engine should have.  Returns 1 if it changed the key (op
 * filled in), 0 if it was a no-op the engine refused as it should, -1 on
 * any other failure (op->key -1 if it could not have changed anything).
 */
static int one_update(struct cycle *c, JET_SESID s, JET_TABLEID t, struct model *st, struct kop *op)
{
    static uint8_t v[MAXVAL];
    uint64_t *r = &c->rng;
    int k = (int)(tu_rand(r) % NKEYS), kind = (int)(tu_rand(r) % 100);
    char key[16];
    JET_ERR err;
    key_of(k, key);
    *op = (struct kop){k, -1, 0};
    if (kind < 18) {
        err = JetDeleteKV(s, t, key, strlen(key));
    } else {
        op->len = rand_len(r);
        op->tag = (uint32_t)(tu_rand(r) | 1);
        fill_value(v, op->len, op->tag);
        err = JetPutKV(s, t, key, strlen(key), v, (unsigned long)op->len, kind < 33 ? JET_bitPutReplace : 0);
    }
    if (st->len[k] < 0 && kind < 33) {
        /* A delete or replace of an absent key changes nothing. */
        op->key = -1;
        if (err == JET_errRecordNotFound) return 0;
        if (err >= 0) {
            fprintf(stderr, "%s is absent, yet its %s succeeded\n", key, kind < 18 ? "delete" : "replace");
            c->failed = 1;
        } else {
            (void)unexpected(c, err, "an update");
        }
        return -1;
    }
    if (err < 0) {
        (void)unexpected(c, err, "an update");
        return -1;
    }
    st->len[k] = op->len;
    st->tag[k] = op->tag;
    return 1;
}

/* Random commits until the count is done or a call fails (the crash);
 * returns the steps completed. */
static int workload(struct cycle *c, JET_SESID s, JET_TABLEID t, int steps)
{
    uint64_t *r = &c->rng;
    int i;
    for (i = 0; i < steps && !c->failed; i++) {
        struct kop ops[MAX_TXN_OPS];
        int n = 0;
        if (tu_rand(r) % 100 < 45) {
            /* A multi-key transaction; one in twenty commits lazily (it is
             * durable only once a later flush covers it). */
            struct model st = c->cur;
            JET_ERR err = JetBeginTransaction(s);
            if (err < 0) {
                (void)unexpected(c, err, "JetBeginTransaction");
                return i;
            }
            int want = 1 + (int)(tu_rand(r) % MAX_TXN_OPS), res = 0;
            for (int j = 0; j < want && res >= 0; j++)
                if ((res = one_update(c, s, t, &st, &ops[n])) > 0) n++;
            if (res < 0) {
                /* Never started committing: must not be there. */
                JetRollback(s, 0);
                return i;
            }
            int lazy = tu_rand(r) % 20 == 0;
            err = JetCommitTransaction(s, lazy ? JET_bitCommitLazyFlush : 0);
            c->cur = st;
            push_commit(c, ops, n, err >= 0 && !lazy);
            if (err < 0) {
                (void)unexpected(c, err, "JetCommitTransaction");
                return i;
            }
        } else {
            /* Outside a transaction each update is its own durable commit. */
            struct model st = c->cur;
            int res = one_update(c, s, t, &st, &ops[0]);
            if (res == 0) continue;
            if (res < 0) {
                /* It may have failed in its commit's flush: in flight. */
                if (crashvfs_crashed() && ops[0].key >= 0) push_commit(c, &ops[0], 1, 0);
                return i;
            }
            c->cur = st;
            push_commit(c, ops, 1, 1);
        }
    }
    return i;
}

/*
 * The recovered table must be base plus the first k commits of the cycle
 * for some k at least one past the last acknowledged one.  Returns k, or
 * -1 (with the first difference printed).
 */
static int recovered_prefix(JET_SESID s, JET_TABLEID t, const struct model *base, const struct cycle *c, struct model *out)
{
    static struct scan sc;
    char why[200] = "", first_why[200] = "";
    JET_ERR err = scan_table(s, t, &sc);
    if (err < 0) {
        fprintf(stderr, "scan of the recovered table: %ld %s\n", (long)err, JetGetLastErrorDetail());
        return -1;
    }
    int kmin = 0;
    for (int i = 0; i < c->n; i++)
        if (c->log[i].acked) kmin = i + 1;
    struct model m = *base;
    for (int i = 0; i < kmin; i++) model_apply(&m, &c->log[i]);
    for (int k = kmin; k <= c->n; k++) {
        if (!scan_differs(&sc, &m, why, sizeof why)) {
            *out = m;
            return k;
        }
        if (k == kmin) snprintf(first_why, sizeof first_why, "%s", why);
        if (k < c->n) model_apply(&m, &c->log[k]);
    }
    fprintf(stderr, "recovered table is no prefix of %d..%d of the %d commits: %s\n", kmin, c->n, c->n, first_why);
    return -1;
}

static const char *mode_name(int m) { return m == CRASHVFS_DROP ? "drop" : m == CRASHVFS_TEAR ? "tear" : "scramble"; }

/* Ends a crashed instance; the crash VFS must have every descriptor back. */
static void end_crashed(JET_INSTANCE inst, int cycle)
{
    if (!crashvfs_crashed()) crashvfs_crash_now();
    if (inst) JetTerm(inst);
    int fds = crashvfs_open_fds();
    if (fds) fprintf(stderr, "cycle %d: %d descriptors still open after JetTerm of the crashed instance\n", cycle, fds);
    CU_ASSERT_EQUAL(fds, 0);
    crashvfs_uninstall();
}

static void test_random_power_cuts(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash_random"));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
    uint64_t seed = tu_seed("test_random_power_cuts");
    long cycles = tu_count("CRASH_CYCLES", 200, 2000);
    /* 64 KiB generations, a 64-page cache and a 20 ms checkpoint period:
     * a cycle of a few dozen commits rolls the log, evicts and checkpoints. */
    const struct params p = {64, 64, 20};
    struct cycle c;
    memset(&c, 0, sizeof c);
    c.rng = seed;
    model_empty(&c.cur);
    struct model base = c.cur;

    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    unsigned failures = CU_get_number_of_failures();
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, p) >= 0);
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);

    /* The crash point is drawn over the calls a whole cycle would make,
     * as measured so far: the start's, and so many per step. */
    double start_calls = 0, step_calls = 0, starts = 0, steps_done = 0;
    long acked = 0, issued = 0, inflight_present = 0, unacked_lost = 0, in_init = 0, at_end = 0;
    long double_cuts = 0, torn = 0, torn_db = 0, torn_log = 0, torn_dwb = 0, by_mode[3] = {0};
    long ck_moved = 0, rolled = 0;
    char ckpath[1200];
    in_dir(ckpath, sizeof ckpath, dir, "edb.chk");
    for (int cycle = 1; cycle <= cycles; cycle++) {
        /* The start points the checkpoint at the generation after the
         * newest; a crash image with it further on, or in a later
         * generation, had the checkpointer or a roll move it. */
        JET_INSPECT_CHECKPOINT ck;
        TU_CHECK_ERR(JetInspectCheckpoint(ckpath, &ck), JET_errSuccess);
        uint32_t gen_start = (uint32_t)(ck.lsn >> 32) + 1;
        uint64_t cseed = tu_rand(&c.rng);
        int mode = (int)(tu_rand(&c.rng) % 3);
        int steps = 20 + (int)(tu_rand(&c.rng) % 100);
        double per_step = steps_done ? step_calls / steps_done : 10;
        long budget = (long)((starts ? start_calls / starts : 60) + steps * per_step);
        long at = 1 + (long)(tu_rand(&c.rng) % (uint64_t)(budget + budget / 10));
        c.n = 0;
        c.failed = 0;
        by_mode[mode]++;

        crashvfs_install();
        crashvfs_arm(at, (enum crashvfs_mode)mode, cseed, NULL, NULL);
        JET_ERR err = open_inst(&inst, &s, &t, 0, p);
        if (err < 0) {
            in_init++;
            if (!crashvfs_crashed())
                fprintf(stderr, "cycle %d: start failed before any crash: %ld %s\n", cycle, (long)err,
                        JetGetLastErrorDetail());
            CU_ASSERT_FATAL(crashvfs_crashed());
        } else {
            long c0 = crashvfs_calls();
            if (!crashvfs_crashed()) start_calls += (double)c0, starts++;
            int done = workload(&c, s, t, steps);
            if (c.failed) fprintf(stderr, "cycle %d (SEED=%llu)\n", cycle, (unsigned long long)seed);
            CU_ASSERT_FATAL(!c.failed);
            if (done > 0) step_calls += (double)(crashvfs_calls() - c0), steps_done += done;
            at_end += !crashvfs_crashed();
        }
        end_crashed(inst, cycle);
        struct crashvfs_report rep;
        crashvfs_report(&rep);
        if (JetInspectCheckpoint(ckpath, &ck) >= 0 && (ck.lsn >> 32) >= gen_start) {
            ck_moved += ck.lsn > (((uint64_t)gen_start << 32) | 4096u);
            rolled += (ck.lsn >> 32) > gen_start;
        }
        if (rep.torn) {
            size_t l = strlen(rep.torn_path);
            torn++;
            torn_db += l > 5 && strcmp(rep.torn_path + l - 5, "/c.db") == 0;
            torn_log += l > 4 && strcmp(rep.torn_path + l - 4, ".log") == 0;
            torn_dwb += l > 4 && strcmp(rep.torn_path + l - 4, ".dwb") == 0;
        }

        /* One cycle in four the power goes again, in the middle of the
         * recovery: what it leaves must be recoverable too. */
        if (tu_rand(&c.rng) % 4 == 0) {
            double_cuts++;
            crashvfs_install();
            crashvfs_arm(1 + (long)(tu_rand(&c.rng) % 40), (enum crashvfs_mode)(tu_rand(&c.rng) % 3),
                         tu_rand(&c.rng), NULL, NULL);
            (void)open_inst(&inst, &s, &t, 0, p);
            end_crashed(inst, cycle);
        }

        err = open_inst(&inst, &s, &t, 0, p);
        if (err < 0) {
            fprintf(stderr, "cycle %d (SEED=%llu, %s crash after call %ld): recovery failed: %ld %s\n", cycle,
                    (unsigned long long)seed, mode_name(mode), rep.at_call, (long)err, JetGetLastErrorDetail());
            CU_FAIL_FATAL("recovery after a power cut failed");
        }
        int k = recovered_prefix(s, t, &base, &c, &c.cur);
        if (k < 0) {
            fprintf(stderr, "cycle %d (SEED=%llu): %s crash after call %ld, torn %d (%s at %llu, %zu of %zu bytes)\n",
                    cycle, (unsigned long long)seed, mode_name(mode), rep.at_call, rep.torn, rep.torn_path,
                    (unsigned long long)rep.torn_off, rep.torn_kept, rep.torn_len);
            CU_FAIL_FATAL("the recovered database is not the acknowledged commits");
        }
        int kmin = 0;
        for (int i = 0; i < c.n; i++) {
            if (c.log[i].acked) kmin = i + 1;
            acked += c.log[i].acked;
        }
        issued += c.n;
        inflight_present += k > kmin;
        unacked_lost += c.n - k;
        base = c.cur;
        TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
        assert_db_sound(model_count(&base), "random power cuts");
        if (CU_get_number_of_failures() != failures) {
            fprintf(stderr, "cycle %d (SEED=%llu)\n", cycle, (unsigned long long)seed);
            CU_FAIL_FATAL("stopping at the first failing cycle");
        }
    }
    free(c.log);
    fprintf(stderr,
            "random power cuts: %ld cycles (drop %ld, tear %ld, scramble %ld), %ld commits issued, %ld acknowledged; "
            "crash in the start %ld, only after the last step %ld; power cut again in recovery %ld; a commit not "
            "acknowledged found recovered %ld times, %ld lost; torn writes %ld (database %ld, log %ld, "
            "double-write %ld); checkpoint moved in %ld cycles, past a roll in %ld; %d keys at the end\n",
            cycles, by_mode[0], by_mode[1], by_mode[2], issued, acked, in_init, at_end, double_cuts,
            inflight_present, unacked_lost, torn, torn_db, torn_log, torn_dwb, ck_moved, rolled, model_count(&base));
    /* Lower bounds far under what runs show, so the test cannot quietly
     * stop reaching the places it is for. */
    CU_ASSERT(acked >= 3 * cycles);
    CU_ASSERT(torn >= cycles / 10);
    CU_ASSERT(torn_db >= 1 || cycles < 100);
    CU_ASSERT(ck_moved >= cycles / 10);
    CU_ASSERT(rolled >= cycles / 20);
}

/* ---- a torn checkpoint write ---- */

/* Accepts in-place writes of whole pages (page 2 on) to the database file. */
static int db_page_write(void *arg, const char *path, uint64_t off, size_t n)
{
    (void)arg;
    size_t l = strlen(path);
    return n == PS && off >= 2 * PS && l > 5 && strcmp(path + l - 5, "/c.db") == 0;
}

/*
 * A crash image in a fresh dir whose database has a page torn by a
 * checkpoint's in-place write, its whole copy staged in the double-write
 * file; *m gets the acknowledged rows, the page number is returned.
 */
static uint32_t make_torn_image(const char *name, uint64_t *r, struct params p, struct model *m,
                                struct crashvfs_report *rep)
{
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    uint8_t pg[PS];
    char dwb[1200];
    for (int tries = 0;; tries++) {
        snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
        snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
        /* Rows on disk, then every one changed: the checkpoint rewrites
         * pages that have a version on disk (deltas with a "before"). */
        crashvfs_install();
        CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, p) >= 0);
        model_empty(m);
        load(s, t, m, 0, 200, 500, 1000, 50);
        TU_CHECK_ERR(checkpoint(s, &t), JET_errSuccess);
        load(s, t, m, 0, 200, 500, 2000, 50);
        /* The next checkpoint writes them: the power goes right after its
         * k-th page write, which is torn. */
        crashvfs_arm(1 + (long)(tu_rand(r) % 8), CRASHVFS_TEAR, tu_rand(r), db_page_write, NULL);
        CU_ASSERT(checkpoint(s, &t) < 0);
        CU_ASSERT(crashvfs_crashed());
        crashvfs_report(rep);
        end_crashed(inst, 0);
        if (rep->torn) break;
        /* A write whose changes all lie in its first sector cannot be torn
         * so that it shows: try another. */
        CU_ASSERT_FATAL(tries < 20);
    }
    uint32_t pgno = (uint32_t)(rep->torn_off / PS);
    CU_ASSERT_EQUAL(rep->torn_off % PS, 0);
    /* The tear is real: the page fails its checksum before recovery. */
    page_read(dbpath, pgno, pg);
    CU_ASSERT_FATAL(!page_sound(pg, pgno));
    in_dir(dwb, sizeof dwb, dir, "edb.dwb");
    CU_ASSERT_FATAL(size_of(dwb) > 0);
    return pgno;
}

static void test_torn_checkpoint_write_is_put_back(void)
{
    char img[1024], dwb[1200];
    snprintf(img, sizeof img, "%s", tu_scratch_dir("crash_torn_img"));
    /* The checkpointer held: the only checkpoints are the detaches'. */
    const struct params p = {128, 0, 3600000};
    uint64_t r = tu_seed("test_torn_checkpoint_write_is_put_back");
    struct model m;
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    uint8_t pg[PS];
    struct crashvfs_report rep;
    uint32_t pgno = make_torn_image("crash_torn", &r, p, &m, &rep);
    in_dir(dwb, sizeof dwb, dir, "edb.dwb");
    mirror_dir(dir, img);
    /* Without the double-write file the same image cannot be recovered:
     * the torn page is the base of a delta in the log. */
    struct deltas *ds = malloc(sizeof *ds);
    replay_deltas(ds);
    int needed = 0;
    for (int i = 0; i < ds->n; i++) needed |= ds->d[i].pgno == pgno && ds->d[i].before != 0;
    free(ds);
    CU_ASSERT(needed);
    CU_ASSERT_FATAL(unlink(dwb) == 0);
    JET_ERR err = open_inst(&inst, &s, &t, 0, p);
    char want[64];
    snprintf(want, sizeof want, "page %u ", pgno);
    if (err != JET_errReadVerifyFailure || !strstr(JetGetLastErrorDetail(), want))
        fprintf(stderr, "torn page %u without the double-write file: %ld %s\n", pgno, (long)err,
                JetGetLastErrorDetail());
    TU_CHECK_ERR(err, JET_errReadVerifyFailure);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), want) != NULL);
    JetTerm(inst);

    /* With it, every acknowledged row is back and the page is whole. */
    mirror_dir(img, dir);
    err = open_inst(&inst, &s, &t, 0, p);
    if (err < 0) fprintf(stderr, "torn page %u: recovery: %ld %s\n", pgno, (long)err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    assert_model(s, t, &m, "after a torn checkpoint write");
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
    page_read(dbpath, pgno, pg);
    CU_ASSERT(page_sound(pg, pgno));
    assert_db_sound(200, "after a torn checkpoint write");
    fprintf(stderr, "torn checkpoint write: page %u, %zu of %zu bytes kept\n", pgno, rep.torn_kept, rep.torn_len);
}

/*
 * A recovery refused before redo (here: the database file is not where the
 * log says, so it cannot be opened) must keep the double-write copies: the
 * torn page they would put back is still torn, and once the file is back
 * the next recovery needs them.
 */
static void test_a_refused_recovery_keeps_the_double_write_copies(void)
{
    const struct params p = {128, 0, 3600000};
    uint64_t r = tu_seed("test_a_refused_recovery_keeps_the_double_write_copies");
    struct model m;
    struct crashvfs_report rep;
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    uint8_t pg[PS];
    char away[1200], dwb[1200];
    uint32_t pgno = make_torn_image("crash_torn_away", &r, p, &m, &rep);
    in_dir(dwb, sizeof dwb, dir, "edb.dwb");
    long long dwb_size = size_of(dwb);
    snprintf(away, sizeof away, "%s.away", dbpath);
    CU_ASSERT_FATAL(rename(dbpath, away) == 0);
    JET_ERR err = init_only(&inst, p);
    const char *d = JetGetLastErrorDetail();
    CU_ASSERT(err < 0 && strstr(d, dbpath) != NULL);
    if (err >= 0 || !strstr(d, dbpath)) fprintf(stderr, "database moved away: JetInit %ld: %s\n", (long)err, d);
    JetTerm(inst);
    if (size_of(dwb) != dwb_size)
        fprintf(stderr, "the refused recovery left %s %lld bytes (it had %lld): the torn page %u has no copy any more\n",
                dwb, size_of(dwb), dwb_size, pgno);
    CU_ASSERT_EQUAL(size_of(dwb), dwb_size);
    /* The file is put back: everything acknowledged must recover. */
    CU_ASSERT_FATAL(rename(away, dbpath) == 0);
    err = open_inst(&inst, &s, &t, 0, p);
    if (err < 0) fprintf(stderr, "database put back: recovery: %ld %s\n", (long)err, JetGetLastErrorDetail());
    CU_ASSERT(err >= 0);
    if (err >= 0) {
        assert_model(s, t, &m, "database put back");
        TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
        page_read(dbpath, pgno, pg);
        CU_ASSERT(page_sound(pg, pgno));
    } else {
        JetTerm(inst);
    }
}

/* Rows "r%06d" for [from, to) of len bytes with tag base + i, per to a
 * durable transaction; and the check that they are all there. */
static void put_rows(JET_SESID s, JET_TABLEID t, int from, int to, int len, uint32_t base, int per)
{
    static uint8_t v[MAXVAL];
    for (int i = from; i < to; i += per) {
        CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
        for (int k = i; k < i + per && k < to; k++) {
            char key[16];
            snprintf(key, sizeof key, "r%06d", k);
            fill_value(v, len, base + (uint32_t)k);
            CU_ASSERT_FATAL(JetPutKV(s, t, key, strlen(key), v, (unsigned long)len, 0) >= 0);
        }
        TU_CHECK_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    }
}

static int rows_differ(JET_SESID s, JET_TABLEID t, int n, int len, uint32_t base)
{
    static uint8_t v[MAXVAL], want[MAXVAL];
    int bad = 0;
    for (int k = 0; k < n; k++) {
        char key[16];
        unsigned long got = 0;
        snprintf(key, sizeof key, "r%06d", k);
        fill_value(want, len, base + (uint32_t)k);
        JET_ERR err = JetRetrieveKV(s, t, key, strlen(key), v, sizeof v, &got, 0);
        if (err < 0 || got != (unsigned long)len || memcmp(v, want, (size_t)len) != 0) {
            if (!bad) fprintf(stderr, "  %s: %ld, %lu bytes (%d expected)\n", key, (long)err, got, len);
            bad++;
        }
    }
    return bad;
}

/* Counts in-place page writes of the database and notes their offsets. */
static uint64_t noted_off[4096];
static long noted;
static int note_db_page_write(void *arg, const char *path, uint64_t off, size_t n)
{
    if (!db_page_write(arg, path, off, n)) return 0;
    if (noted < 4096) noted_off[noted] = off;
    noted++;
    return 1;
}

/*
 * A page write of a checkpoint that fails (a transient ENOSPC or EIO, not
 * fatal: "the next cycle retries the page writes") leaves the writes of
 * its round made before it unsynced in the file.  The retry's first round
 * stages other pages over their double-write copies before the file is
 * fsynced again, so a power cut then that tears one of those earlier
 * writes leaves a page neither the file, the double-write file nor the log
 * (which holds only deltas) can give back.  Needs a checkpoint of more
 * than one round (DWB_MAX_PAGES pages), the failing round not the first.
 */
static void test_a_failed_page_write_then_a_power_cut(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash_failed_write"));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
    /* A cache that holds every dirty page (the throttle kicks the
     * checkpointer past a quarter of it), the checkpointer held. */
    const struct params p = {1024, 8192, 3600000};
    uint64_t r = tu_seed("test_a_failed_page_write_then_a_power_cut");
    /* Values inline in the leaves: an update changes a page that has a
     * version on disk (its delta has a "before"), and no page is new. */
    const int rows = 4500, len = 1000;
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    uint8_t pg[PS];
    crashvfs_install();
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, p) >= 0);
    put_rows(s, t, 0, rows, len, 1, 250);
    TU_CHECK_ERR(checkpoint(s, &t), JET_errSuccess);
    put_rows(s, t, 0, rows, len, 100000, 250);
    /* The checkpoint's second round: its first write lands, its second
     * fails with a full disk.  The page just written is not fsynced, and
     * only this round's double-write copy can put it back if it tears, so
     * the instance stops: nothing may stage over that copy. */
    noted = 0;
    crashvfs_fail_write((long)DWB_MAX_PAGES + 2, JET_errDiskFull, note_db_page_write, NULL);
    JET_ERR err = checkpoint(s, &t);
    if (noted != (long)DWB_MAX_PAGES + 2) fprintf(stderr, "%ld page writes, file %lld bytes\n", noted, size_of(dbpath));
    CU_ASSERT_FATAL(noted == (long)DWB_MAX_PAGES + 2);
    TU_CHECK_ERR(err, JET_errInstanceUnavailable);
    CU_ASSERT_FATAL(!crashvfs_crashed());
    char why[700];
    TU_CHECK_ERR(JetGetInstanceFailure(inst, why, sizeof why), JET_errInstanceUnavailable);
    CU_ASSERT(strstr(why, "c.db") != NULL);
    uint64_t x = noted_off[(long)DWB_MAX_PAGES];
    /* A retry writes no page (the count of page writes does not move),
     * then the power goes, tearing the unsynced write of page x. */
    crashvfs_arm(3, CRASHVFS_TEAR, tu_rand(&r), db_page_write, NULL);
    crashvfs_tear_at("/c.db", x);
    CU_ASSERT(JetDetachDatabase(s, dbpath) < 0); /* the checkpoint a detach runs */
    CU_ASSERT_EQUAL(crashvfs_calls(), 0);
    if (!crashvfs_crashed()) crashvfs_crash_now();
    struct crashvfs_report rep;
    crashvfs_report(&rep);
    end_crashed(inst, 0);
    CU_ASSERT_FATAL(rep.torn && rep.torn_off == x);
    uint32_t pgno = (uint32_t)(x / PS);
    page_read(dbpath, pgno, pg);
    CU_ASSERT_FATAL(!page_sound(pg, pgno));
    /* Every row was acknowledged. */
    err = open_inst(&inst, &s, &t, 0, p);
    if (err < 0)
        fprintf(stderr, "a page write failed, then a power cut tore page %u: recovery: %ld %s\n", pgno, (long)err,
                JetGetLastErrorDetail());
    CU_ASSERT(err >= 0);
    if (err >= 0) CU_ASSERT_EQUAL(rows_differ(s, t, rows, len, 100000), 0);
    JetTerm(inst);
}

/* ---- redo idempotence ---- */

/* The database file from page 2 on.  Pages 0 and 1 are the header copies:
 * they carry the time and log position of the recovery that made the file
 * consistent (consistent_us, lsn_consistent), so they differ between two
 * recoveries of the same image by design; no data lives there. */
static int same_data_pages(const char *a, const char *b, const char *what)
{
    size_t na, nb;
    char *x = tu_slurp(a, &na), *y = tu_slurp(b, &nb);
    int same = x && y && na == nb && na >= 2 * PS && memcmp(x + 2 * PS, y + 2 * PS, na - 2 * PS) == 0;
    if (!same && x && y) {
        size_t i = 2 * PS;
        while (i < na && i < nb && x[i] == y[i]) i++;
        fprintf(stderr, "%s: %zu and %zu bytes, first difference at page %zu byte %zu\n", what, na, nb, i / PS, i % PS);
    }
    free(x);
    free(y);
    return same;
}

static void test_redo_is_idempotent(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash_idem"));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
    char img[1024], keep[1024], a_db[1200], img_chk[1200], chk[1200];
    snprintf(img, sizeof img, "%s", tu_scratch_dir("crash_idem_img"));
    snprintf(keep, sizeof keep, "%s", tu_scratch_dir("crash_idem_a"));
    in_dir(a_db, sizeof a_db, keep, "c.db");
    in_dir(img_chk, sizeof img_chk, img, "edb.chk");
    in_dir(chk, sizeof chk, dir, "edb.chk");
    uint64_t seed = tu_seed("test_redo_is_idempotent"), r = seed;
    /* The checkpointer held and a cache the load does not fill: the log
     * from the checkpoint holds the whole load, over many generations. */
    const struct params p = {64, 1024, 3600000};
    struct model m;
    model_empty(&m);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, p) >= 0);
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    crashvfs_install();
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, p) >= 0);
    load(s, t, &m, 0, NKEYS, 700, 100, 8);
    for (int round = 0; round < 3; round++) {
        /* Updates, deletes and overflow values over the same keys. */
        struct cycle c;
        memset(&c, 0, sizeof c);
        c.rng = tu_rand(&r);
        c.cur = m;
        workload(&c, s, t, 150);
        CU_ASSERT_FATAL(!c.failed && !crashvfs_crashed());
        m = c.cur;
        free(c.log);
    }
    /* All of it acknowledged.  The power goes in the middle of a
     * checkpoint, after one of its page writes, with a random part of its
     * unsynced writes kept (one maybe torn): the image has pages newer than
     * its checkpoint, and staged copies in the double-write file. */
    crashvfs_arm(1 + (long)(tu_rand(&r) % 12), CRASHVFS_SCRAMBLE, tu_rand(&r), db_page_write, NULL);
    CU_ASSERT(checkpoint(s, &t) < 0);
    CU_ASSERT(crashvfs_crashed());
    end_crashed(inst, 0);
    struct deltas *ds = malloc(sizeof *ds);
    replay_deltas(ds);
    int to_replay = ds->total;
    free(ds);
    CU_ASSERT_FATAL(to_replay >= 500);
    mirror_dir(dir, img);
    long long img_size = size_of(dbpath);

    /* A: the image recovered once, the reference. */
    recover_only(p, "A");
    copy_file(dbpath, a_db);
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, p) >= 0);
    assert_model(s, t, &m, "idempotence: A");
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    long long a_size = size_of(a_db);
    uint32_t npages = (uint32_t)(a_size / PS);
    CU_ASSERT_FATAL(npages > 10);

    /* B: some of A's pages are already in the file (a checkpoint wrote
     * them before the crash), with the image's checkpoint, logs and
     * double-write file; three different sets, the last all of them. */
    uint8_t pg[PS];
    for (int variant = 0; variant < 3; variant++) {
        mirror_dir(img, dir);
        int copied = 0;
        for (uint32_t pgno = 2; pgno < npages; pgno++) {
            if (variant < 2 && tu_rand(&r) % 2) continue;
            page_read(a_db, pgno, pg);
            page_write(dbpath, pgno, pg);
            copied++;
        }
        recover_only(p, "B");
        char what[64];
        snprintf(what, sizeof what, "B (%d of %u pages from A)", copied, npages - 2);
        CU_ASSERT(same_data_pages(a_db, dbpath, what));
    }

    /* C: recovered, then the image's checkpoint put back and recovered
     * again: the same generations replayed twice over the same file. */
    mirror_dir(img, dir);
    recover_only(p, "C");
    copy_file(img_chk, chk);
    recover_only(p, "C again");
    CU_ASSERT(same_data_pages(a_db, dbpath, "C (replayed twice)"));
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, p) >= 0);
    assert_model(s, t, &m, "idempotence: C");
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    assert_db_sound(model_count(&m), "idempotence: C");
    fprintf(stderr, "redo idempotence: %d deltas replayed, image %lld bytes, recovered %lld bytes\n", to_replay,
            img_size, a_size);
}

/* ---- the page stamp guard ---- */

/* The first delta recovery of dir would replay on a page that has a
 * version on disk (before != 0). */
static struct delta_ref first_replayed_delta(void)
{
    struct deltas *ds = malloc(sizeof *ds);
    struct delta_ref d = {0, 0, 0};
    replay_deltas(ds);
    for (int i = 0; i < ds->n && !d.lsn; i++)
        if (ds->d[i].before) d = ds->d[i];
    free(ds);
    CU_ASSERT_FATAL(d.lsn != 0);
    return d;
}

/* Recovery of dir is refused with want, naming the file and the page, and
 * changes no file. */
static void assert_refused(JET_ERR want, uint32_t pgno, struct params p, const char *what)
{
    static struct dir_snap before;
    char page[32];
    const char *base = strrchr(dbpath, '/') + 1;
    snprintf(page, sizeof page, "page %u ", pgno);
    snap_dir(&before);
    for (int attempt = 0; attempt < 2; attempt++) {
        JET_INSTANCE inst;
        JET_ERR err = init_only(&inst, p);
        const char *d = JetGetLastErrorDetail();
        int named = strstr(d, base) && strstr(d, page);
        if (err != want || !named) fprintf(stderr, "%s: JetInit %ld: %s\n", what, (long)err, d);
        TU_CHECK_ERR(err, want);
        CU_ASSERT(named);
        JetTerm(inst);
        /* Nothing written, created or emptied: the next attempt (or an
         * operator with a backup) finds the image as the crash left it. */
        assert_dir_unchanged(&before);
    }
}

static void test_page_older_than_the_log_is_refused(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash_old"));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
    char old[1024], old_db[1200];
    snprintf(old, sizeof old, "%s", tu_scratch_dir("crash_old_copy"));
    in_dir(old_db, sizeof old_db, old, "c.db");
    const struct params p = {128, 0, 3600000};
    struct model m;
    model_empty(&m);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    crashvfs_install();
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, p) >= 0);
    /* Twelve rows: one leaf, the table's root. */
    load(s, t, &m, 0, 12, 300, 10, 12);
    TU_CHECK_ERR(checkpoint(s, &t), JET_errSuccess);
    copy_file(dbpath, old_db);
    load(s, t, &m, 0, 12, 300, 20, 12);
    TU_CHECK_ERR(checkpoint(s, &t), JET_errSuccess);
    load(s, t, &m, 0, 12, 300, 30, 12);
    end_crashed(inst, 0);

    /* The image replays deltas made against the page as the second
     * checkpoint wrote it; the old copy has it as the first one did. */
    struct delta_ref d = first_replayed_delta();
    uint8_t cur[PS], was[PS];
    page_read(dbpath, d.pgno, cur);
    page_read(old_db, d.pgno, was);
    CU_ASSERT_FATAL(page_sound(cur, d.pgno) && page_sound(was, d.pgno));
    CU_ASSERT_EQUAL_FATAL(page_lsn(cur), d.before);
    CU_ASSERT_FATAL(page_lsn(was) < d.before);
    page_write(dbpath, d.pgno, was);
    assert_refused(JET_errDbTimeTooOld, d.pgno, p, "a page older than the log");
    /* Put right, the same image recovers every row. */
    page_write(dbpath, d.pgno, cur);
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, p) >= 0);
    assert_model(s, t, &m, "too old, put right");
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
}

static void test_page_newer_than_the_log_is_refused(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash_new"));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", dir);
    char img[1024];
    snprintf(img, sizeof img, "%s", tu_scratch_dir("crash_new_img"));
    const struct params p = {128, 0, 3600000};
    struct model m, at_t1_model;
    model_empty(&m);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    /* T1: rows checkpointed, changed again, crash: the image replays
     * deltas on a page that is on disk. */
    crashvfs_install();
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, p) >= 0);
    load(s, t, &m, 0, 12, 300, 10, 12);
    TU_CHECK_ERR(checkpoint(s, &t), JET_errSuccess);
    load(s, t, &m, 0, 12, 300, 20, 12);
    end_crashed(inst, 0);
    at_t1_model = m;
    struct delta_ref d = first_replayed_delta();
    mirror_dir(dir, img);
    uint8_t at_t1[PS], later[PS], forged[PS];
    page_read(dbpath, d.pgno, at_t1);
    CU_ASSERT_FATAL(page_sound(at_t1, d.pgno) && page_lsn(at_t1) == d.before);

    /* Later: recovered, the same page changed over more generations and
     * checkpointed, then another crash. */
    crashvfs_install();
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, p) >= 0);
    for (int i = 0; i < 40; i++) load(s, t, &m, 0, 12, 300, 100 + 20 * (uint32_t)i, 1);
    TU_CHECK_ERR(checkpoint(s, &t), JET_errSuccess);
    end_crashed(inst, 0);
    page_read(dbpath, d.pgno, later);
    CU_ASSERT_FATAL(page_sound(later, d.pgno));
    CU_ASSERT_FATAL((page_lsn(later) >> 32) > (d.lsn >> 32) + 1);

    /* The later version in the T1 image: its stamp is past the image's
     * log, a version this log never wrote. */
    mirror_dir(img, dir);
    page_write(dbpath, d.pgno, later);
    assert_refused(JET_errDbTimeTooNew, d.pgno, p, "a page from a later database file");

    /* A stamp inside the log but between the delta's base and its own
     * position: no version this log wrote either (forged, resealed). */
    memcpy(forged, at_t1, PS);
    CU_ASSERT_FATAL(d.before + 8 < d.lsn);
    page_set_lsn(forged, d.before + 8);
    page_seal(forged, PS);
    page_write(dbpath, d.pgno, forged);
    assert_refused(JET_errDbTimeTooNew, d.pgno, p, "a stamp between a delta's base and its position");

    /* Put back, the T1 image recovers T1's rows. */
    page_write(dbpath, d.pgno, at_t1);
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, p) >= 0);
    assert_model(s, t, &at_t1_model, "too new, put right");
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
}

/* Each test says how long it took (wall clock: most of it is fsync). */
static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
#define TIMED(fn)                                                  \
    static void fn##_timed(void)                                   \
    {                                                              \
        if (last_inst) JetTerm(last_inst);                         \
        last_inst = 0;                                             \
        crashvfs_uninstall();                                      \
        double t0 = wall_s();                                      \
        fn();                                                      \
        fprintf(stderr, "%s: %.1f s\n", #fn, wall_s() - t0);       \
    }
TIMED(test_crashvfs_keeps_only_what_was_fsynced)
TIMED(test_crashvfs_concurrent_fsyncs_of_one_file)
TIMED(test_torn_checkpoint_write_is_put_back)
TIMED(test_a_refused_recovery_keeps_the_double_write_copies)
TIMED(test_a_failed_page_write_then_a_power_cut)
TIMED(test_redo_is_idempotent)
TIMED(test_page_older_than_the_log_is_refused)
TIMED(test_page_newer_than_the_log_is_refused)
TIMED(test_random_power_cuts)
#define ADD(su, fn) CU_add_test(su, #fn, fn##_timed)

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("crash", NULL, NULL);
    ADD(su, test_crashvfs_keeps_only_what_was_fsynced);
    ADD(su, test_crashvfs_concurrent_fsyncs_of_one_file);
    ADD(su, test_torn_checkpoint_write_is_put_back);
    ADD(su, test_a_refused_recovery_keeps_the_double_write_copies);
    ADD(su, test_a_failed_page_write_then_a_power_cut);
    ADD(su, test_redo_is_idempotent);
    ADD(su, test_page_older_than_the_log_is_refused);
    ADD(su, test_page_newer_than_the_log_is_refused);
    ADD(su, test_random_power_cuts);
    return tu_run();
}
