/*
 * test_mount.c -- libjetfs on a real mount, embedded in a process whose
 * writer threads keep committing while real tools read the backups.
 *
 * A full backup is taken with tar and rsync, then an incremental one, each
 * while 4 writers commit.  Every writer owns a counter: a transaction sets
 * all its keys to the counter's next value (and a few random keys too), so
 * a restored database shows, per writer, one value v with
 *   acked-before-begin <= v <= started-when-begin-returned
 * -- exactly the state at begin, up to the transactions in flight then.
 * tar must not report a file changed as it read it; a second rsync of the
 * same set transfers nothing; 8 threads reading the mount at random
 * offsets see the bytes rsync copied; the archives restore with jetutil.
 *
 * The priority test: the loop threads that served backup reads run at
 * SCHED_IDLE, those that only began the backup do not, and
 * normal_priority leaves them all as they were.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jetfs.h"
#include "testutil.h"

#define WRITERS 4
#define OWN_KEYS 6
#define RANDOM_KEYS 400
#define VALUE_SIZE 1500

static const char *bin_dir(void)
{
    const char *b = getenv("JET_BIN");
    return b ? b : ".";
}

struct writer {
    int id;
    JET_INSTANCE inst;
    const char *dbpath;
    atomic_ulong started, acked;
    uint64_t seed;
};

static atomic_bool stop_writers;

static void value_of(char *buf, unsigned long v)
{
    memset(buf, 'a' + (int)(v % 26), VALUE_SIZE);
    snprintf(buf, 24, "%020lu", v);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    char key[64], val[VALUE_SIZE];
    if (JetBeginSession(w->inst, &s, NULL, NULL) < 0 || JetOpenDatabase(s, w->dbpath, NULL, &db, 0) < 0 ||
        JetOpenTable(s, db, "t", NULL, 0, 0, &t) < 0) {
        fprintf(stderr, "writer %d: cannot open the table\n", w->id);
        return NULL;
    }
    for (unsigned long v = 1; !atomic_load(&stop_writers); v++) {
        atomic_store(&w->started, v);
        value_of(val, v);
        JET_ERR err = JetBeginTransaction(s);
        for (int k = 0; k < OWN_KEYS && err >= 0; k++) {
            snprintf(key, sizeof key, "w%d:own%d", w->id, k);
            err = JetPutKV(s, t, key, (unsigned long)strlen(key), val, VALUE_SIZE, 0);
        }
        for (int k = 0; k < 3 && err >= 0; k++) {
            snprintf(key, sizeof key, "w%d:r%03u", w->id, (unsigned)(tu_rand(&w->seed) % RANDOM_KEYS));
            err = JetPutKV(s, t, key, (unsigned long)strlen(key), val, VALUE_SIZE, 0);
        }
        if (err >= 0) err = JetCommitTransaction(s, 0);
        else JetRollback(s, 0);
        if (err < 0) {
            fprintf(stderr, "writer %d: commit %lu failed: %ld\n", w->id, v, err);
            break;
        }
        atomic_store(&w->acked, v);
    }
    JetEndSession(s, 0);
    return NULL;
}

struct bounds {
    unsigned long low[WRITERS], high[WRITERS];
};

static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Begins the backup of kind by listing its directory; records the bounds. */
static void begin_backup(const char *mnt, const char *kind, struct writer *w, struct bounds *b)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/backup/%s", mnt, kind);
    for (int i = 0; i < WRITERS; i++) b->low[i] = atomic_load(&w[i].acked);
    DIR *d = opendir(dir);
    for (int i = 0; i < WRITERS; i++) b->high[i] = atomic_load(&w[i].started);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    closedir(d);
}

/* A restored database holds, per writer, one value within its bounds. */
static void check_restored(const char *dir, const struct bounds *b)
{
    JET_INSTANCE inst;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    char path[4096], key[64], val[VALUE_SIZE + 1], want[VALUE_SIZE];
    snprintf(path, sizeof path, "%s/jetfs.db", dir);
    CU_ASSERT_EQUAL_FATAL(JetCreateInstance(&inst, "restored"), 0);
    JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir);
    CU_ASSERT_EQUAL_FATAL(JetInit(&inst), 0);
    CU_ASSERT_EQUAL_FATAL(JetBeginSession(inst, &s, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(JetAttachDatabase(s, path, 0), 0);
    CU_ASSERT_EQUAL_FATAL(JetOpenDatabase(s, path, NULL, &db, 0), 0);
    CU_ASSERT_EQUAL_FATAL(JetOpenTable(s, db, "t", NULL, 0, 0, &t), 0);
    for (int w = 0; w < WRITERS; w++) {
        unsigned long v = 0;
        for (int k = 0; k < OWN_KEYS; k++) {
            unsigned long n = 0;
            snprintf(key, sizeof key, "w%d:own%d", w, k);
            JET_ERR err = JetRetrieveKV(s, t, key, (unsigned long)strlen(key), val, VALUE_SIZE, &n, 0);
            unsigned long got = err == JET_errRecordNotFound ? 0 : strtoul(val, NULL, 10);
            if (err >= 0) {
                CU_ASSERT_EQUAL(n, VALUE_SIZE);
                value_of(want, got);
                CU_ASSERT(memcmp(val, want, VALUE_SIZE) == 0);
            }
            if (k == 0) v = got;
            else if (got != v) {
                fprintf(stderr, "%s: writer %d: key own%d holds %lu, own0 holds %lu: a torn transaction\n", dir, w, k,
                        got, v);
                CU_FAIL("a transaction restored in part");
            }
        }
        if (v < b->low[w] || v > b->high[w]) {
            fprintf(stderr, "%s: writer %d restored at %lu, outside [%lu, %lu] (acked before begin, started by its end)\n",
                    dir, w, v, b->low[w], b->high[w]);
            CU_FAIL("restored state is not the state at begin");
        }
        for (unsigned r = 0; r < RANDOM_KEYS; r++) {
            unsigned long n = 0;
            snprintf(key, sizeof key, "w%d:r%03u", w, r);
            if (JetRetrieveKV(s, t, key, (unsigned long)strlen(key), val, VALUE_SIZE, &n, 0) >= 0 &&
                strtoul(val, NULL, 10) > v)
                CU_FAIL("a random key is newer than the writer's counter");
        }
    }
    JetEndSession(s, 0);
    JetTerm(inst);
}

struct reader_arg {
    char mnt_set[20000], copy[4400];
    uint64_t seed;
    int failures;
};

/* 8 threads at random offsets through the mount vs the rsync'd copy. */
static void *reader_main(void *arg)
{
    struct reader_arg *r = arg;
    DIR *d = opendir(r->copy);
    struct dirent *e;
    char *a = malloc(300000), *b = malloc(300000);
    while (d && a && b && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p1[20400], p2[20400];
        snprintf(p1, sizeof p1, "%s/%s", r->mnt_set, e->d_name);
        snprintf(p2, sizeof p2, "%s/%s", r->copy, e->d_name);
        int f1 = open(p1, O_RDONLY), f2 = open(p2, O_RDONLY);
        struct stat st;
        if (f1 < 0 || f2 < 0 || fstat(f2, &st) != 0) {
            r->failures++;
        } else {
            for (int i = 0; i < 40 && st.st_size > 0; i++) {
                off_t off = (off_t)(tu_rand(&r->seed) % (uint64_t)st.st_size);
                size_t n = 1 + tu_rand(&r->seed) % 300000;
                ssize_t n1 = pread(f1, a, n, off), n2 = pread(f2, b, n, off);
                if (n1 != n2 || n1 < 0 || memcmp(a, b, (size_t)n1) != 0) r->failures++;
            }
        }
        if (f1 >= 0) close(f1);
        if (f2 >= 0) close(f2);
    }
    if (d) closedir(d);
    free(a);
    free(b);
    return NULL;
}

static void random_reads(const char *mnt_set, const char *copy, uint64_t seed)
{
    pthread_t th[8];
    struct reader_arg ra[8];
    for (int i = 0; i < 8; i++) {
        snprintf(ra[i].mnt_set, sizeof ra[i].mnt_set, "%s", mnt_set);
        snprintf(ra[i].copy, sizeof ra[i].copy, "%s", copy);
        ra[i].seed = seed + (uint64_t)i * 7919;
        ra[i].failures = 0;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(ra[i].failures, 0);
    }
}

static void session_end(struct jetfs *fs, const char *expect)
{
    char outcome[1024];
    jetfs_unmount(fs);
    jetfs_wait(fs, outcome, sizeof outcome);
    jetfs_free(fs);
    if (!strstr(outcome, expect)) {
        fprintf(stderr, "outcome: %s\n", outcome);
        CU_FAIL("the session did not end as expected");
    }
}

static void quiet_log(void *arg, const char *line) { (void)arg, (void)line; }

static void test_mount_tar_rsync_under_writers_restore_to_begin(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        if (getenv("CI")) CU_FAIL_FATAL("/dev/fuse is missing under CI");
        fprintf(stderr, "SKIP: no /dev/fuse\n");
        return;
    }
    uint64_t seed = tu_seed("mount");
    char root[4096], dbdir[4200], dbpath[4300], mnt[4200], cmd[20000];
    snprintf(root, sizeof root, "%s", tu_scratch_dir("mount"));
    snprintf(dbdir, sizeof dbdir, "%s/db", root);
    snprintf(mnt, sizeof mnt, "%s/mnt", root);
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", dbdir);
    mkdir(dbdir, 0700);
    mkdir(mnt, 0700);

    JET_INSTANCE inst;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CU_ASSERT_EQUAL_FATAL(JetCreateInstance(&inst, "mounted"), 0);
    JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dbdir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dbdir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 256, NULL);
    CU_ASSERT_EQUAL_FATAL(JetInit(&inst), 0);
    CU_ASSERT_EQUAL_FATAL(JetBeginSession(inst, &s, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(JetCreateDatabase(s, dbpath, NULL, &db, 0), 0);
    CU_ASSERT_EQUAL_FATAL(JetCreateTable(s, db, "t", 0, 0, &t), 0);
    /* Some bulk so that reading the set takes a while. */
    char val[VALUE_SIZE], key[64];
    memset(val, 'z', sizeof val);
    for (int i = 0; i < 12000; i += 500) {
        JetBeginTransaction(s);
        for (int j = i; j < i + 500; j++) {
            snprintf(key, sizeof key, "bulk%06d", j);
            JetPutKV(s, t, key, (unsigned long)strlen(key), val, sizeof val, 0);
        }
        CU_ASSERT_EQUAL_FATAL(JetCommitTransaction(s, 0), 0);
    }

    static struct writer w[WRITERS];
    pthread_t th[WRITERS];
    atomic_store(&stop_writers, false);
    for (int i = 0; i < WRITERS; i++) {
        w[i].id = i;
        w[i].inst = inst;
        w[i].dbpath = dbpath;
        atomic_store(&w[i].started, 0);
        atomic_store(&w[i].acked, 0);
        w[i].seed = seed + (uint64_t)i + 1;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    while (atomic_load(&w[WRITERS - 1].acked) < 20) usleep(1000);

    const char *dbs[] = {dbpath};
    struct jetfs_options fo = {.mountpoint = mnt, .instance_name = "test", .db_paths = dbs, .ndb_paths = 1,
                               .log = quiet_log};
    char why[1024];
    struct jetfs *fs = NULL;
    struct bounds full, inc;

    /* Session 1: a full backup with tar, rsync and random readers. */
    CU_ASSERT_EQUAL_FATAL(jetfs_mount(inst, &fo, &fs, why, sizeof why), 0);
    begin_backup(mnt, "full", w, &full);
    snprintf(cmd, sizeof cmd, "tar -cf %s/full.tar -C %s/backup full 2> %s/tar1.err", root, mnt, root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "! grep -q 'changed as we read' %s/tar1.err", root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "rsync -a %s/backup/full/ %s/rs_full/", mnt, root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "rsync -a --stats %s/backup/full/ %s/rs_full/ | grep -q 'Number of regular files transferred: 0'", mnt,
             root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/backup/full", mnt);
    char copy[4300];
    snprintf(copy, sizeof copy, "%s/rs_full", root);
    random_reads(cmd, copy, seed);
    session_end(fs, "full backup ended normally");

    /* Session 2: an incremental, the same way. */
    while (atomic_load(&w[0].acked) < full.high[0] + 20) usleep(1000);
    CU_ASSERT_EQUAL_FATAL(jetfs_mount(inst, &fo, &fs, why, sizeof why), 0);
    begin_backup(mnt, "incremental", w, &inc);
    snprintf(cmd, sizeof cmd, "tar -cf %s/inc.tar -C %s/backup incremental 2> %s/tar2.err", root, mnt, root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "! grep -q 'changed as we read' %s/tar2.err", root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "rsync -a %s/backup/incremental/ %s/rs_inc/", mnt, root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "rsync -a --stats %s/backup/incremental/ %s/rs_inc/ | grep -q 'Number of regular files transferred: 0'",
             mnt, root);
    CU_ASSERT_EQUAL(run(cmd), 0);
    session_end(fs, "incremental backup ended normally");

    atomic_store(&stop_writers, true);
    for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < WRITERS; i++)
        fprintf(stderr, "writer %d: full in [%lu, %lu], incremental in [%lu, %lu], %lu commits\n", i, full.low[i],
                full.high[i], inc.low[i], inc.high[i], atomic_load(&w[i].acked));
    JetEndSession(s, 0);
    CU_ASSERT_EQUAL(JetTerm(inst), 0);

    /* Restore each archive with jetutil and check it against the bounds. */
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p x && tar -xf full.tar -C x && tar -xf inc.tar -C x && "
             "%s/jetutil restore --to %s/r_tar_full x/full > /dev/null && "
             "%s/jetutil restore --to %s/r_tar_inc x/full x/incremental > /dev/null && "
             "%s/jetutil restore --to %s/r_rs_inc rs_full rs_inc > /dev/null",
             root, bin_dir(), root, bin_dir(), root, bin_dir(), root);
    CU_ASSERT_EQUAL_FATAL(run(cmd), 0);
    char r[4300];
    snprintf(r, sizeof r, "%s/r_tar_full", root);
    check_restored(r, &full);
    snprintf(r, sizeof r, "%s/r_tar_inc", root);
    check_restored(r, &inc);
    snprintf(r, sizeof r, "%s/r_rs_inc", root);
    check_restored(r, &inc);
}

/* How many of this process's loop threads ("jetfs-fuse") run under
 * policy, and how many there are. */
static int fuse_threads_with(int policy, int *total)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    *total = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* a thread that just exited */
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
        if (strncmp(comm, "jetfs-fuse", 10) != 0) continue;
        int p = sched_getscheduler((pid_t)atoi(e->d_name));
        if (p < 0) continue;
        (*total)++;
        if ((p & ~SCHED_RESET_ON_FORK) == policy) n++;
    }
    if (d) closedir(d);
    return n;
}

/* Reads every file of the set whole, through the mount. */
static void read_set(const char *set)
{
    DIR *d = opendir(set);
    struct dirent *e;
    char *buf = malloc(1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while (buf && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", set, e->d_name);
        int fd = open(path, O_RDONLY);
        CU_ASSERT(fd >= 0);
        ssize_t n;
        while (fd >= 0 && (n = read(fd, buf, 1 << 20)) > 0) {}
        if (fd >= 0) close(fd);
    }
    closedir(d);
    free(buf);
}

/* The policy and name of the thread that logged a backup's end. */
static atomic_int end_policy = -1;
static char end_thread[32];
static void policy_log(void *arg, const char *line)
{
    (void)arg;
    if (!strstr(line, "backup ended") && !strstr(line, "backup aborted")) return;
    pthread_getname_np(pthread_self(), end_thread, sizeof end_thread);
    atomic_store(&end_policy, sched_getscheduler(0));
}

static void test_backup_reads_yield_to_the_instance(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        if (getenv("CI")) CU_FAIL_FATAL("/dev/fuse is missing under CI");
        fprintf(stderr, "SKIP: no /dev/fuse\n");
        return;
    }
    char root[4096], dbpath[4300], mnt[4200], set[4300];
    snprintf(root, sizeof root, "%s", tu_scratch_dir("mount_priority"));
    snprintf(mnt, sizeof mnt, "%s/mnt", root);
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", root);
    snprintf(set, sizeof set, "%s/backup/copy", mnt);
    mkdir(mnt, 0700);
    JET_INSTANCE inst = tu_instance("priority", root, (struct tu_params){.log_kb = 256});
    JET_SESID s;
    JET_TABLEID t;
    tu_table(inst, dbpath, 1, &s, &t);
    tu_load(s, t, 0, 2000, 'p');
    const char *dbs[] = {dbpath};
    struct jetfs_options fo = {.mountpoint = mnt, .instance_name = "priority", .db_paths = dbs, .ndb_paths = 1,
                               .log = policy_log};
    char why[1024];
    struct jetfs *fs = NULL;
    int total = 0;

    for (int normal = 0; normal < 2; normal++) {
        fo.normal_priority = normal;
        CU_ASSERT_EQUAL_FATAL(jetfs_mount(inst, &fo, &fs, why, sizeof why), 0);
        DIR *d = opendir(set); /* begins the backup */
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        closedir(d);
        /* The begin holds the log's roll, which commits wait for: it ran
         * on a thread at normal priority. */
        CU_ASSERT_EQUAL(fuse_threads_with(SCHED_IDLE, &total), 0);
        CU_ASSERT(total >= 1);
        read_set(set);
        int idle = fuse_threads_with(SCHED_IDLE, &total);
        fprintf(stderr, "normal_priority=%d: %d of %d loop threads at SCHED_IDLE after the reads\n", normal, idle,
                total);
        if (normal) {
            CU_ASSERT_EQUAL(idle, 0);
        } else {
            CU_ASSERT(idle >= 1);
        }
        /* The caller's own threads (the instance's clients) are untouched. */
        CU_ASSERT_EQUAL(sched_getscheduler(0), SCHED_OTHER);
        if (normal) {
            session_end(fs, "copy backup ended normally");
            continue;
        }
        /* An explicit end (jetfs end) takes locks clients wait for: it runs
         * at normal priority even when a loop thread that served reads gets
         * the ioctl, and it is the session's outcome at unmount. */
        char status[4400];
        snprintf(status, sizeof status, "%s/status", mnt);
        atomic_store(&end_policy, -1);
        int fd = open(status, O_RDONLY);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_EQUAL(ioctl(fd, JETFS_IOC_END_NORMAL), 0);
        close(fd);
        /* Whichever loop thread got the ioctl, the watchdog ended it. */
        CU_ASSERT_EQUAL(atomic_load(&end_policy), SCHED_OTHER);
        CU_ASSERT_STRING_EQUAL(end_thread, "jetfs-watchdog");
        session_end(fs, "copy backup ended normally");
    }
    JetEndSession(s, 0);
    CU_ASSERT_EQUAL(JetTerm(inst), 0);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("mount", NULL, NULL);
    CU_add_test(s, "tar and rsync under writers restore to the state at begin",
                test_mount_tar_rsync_under_writers_restore_to_begin);
    CU_add_test(s, "backup reads are served at idle priority, begin is not", test_backup_reads_yield_to_the_instance);
    return tu_run();
}
