/*
 * backupbench.c -- what a backup costs the live instance, measured.
 *
 *   begin latency   JetBeginExternalBackupInstance at a small and a large
 *                   database (median of 7): must not grow with the size
 *   commits/s       durable single-row commits while a reader streams the
 *                   backup set at full speed, vs with no backup (same run):
 *                   a thread of the engine's API at normal priority, and
 *                   dd reading the set through a real mount of libjetfs in
 *                   this process (its loop at idle priority, as jetfs
 *                   serves by default, and at normal priority)
 *   replay MB/s     restoring a full set whose logs hold the whole load
 *
 *   backupbench DIR [--small-mb N] [--large-mb N] [--seconds S]
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jet.h"
#include "jetfs.h"

extern char **environ;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, JET_ERR e)
{
    fprintf(stderr, "backupbench: %s: %ld %s: %s\n", what, e, JetErrorString(e), JetGetLastErrorDetail());
    exit(1);
}

struct inst {
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    char dir[1024], db[1100];
};

static void open_inst(struct inst *in, const char *root, const char *name, long ckpt_ms)
{
    char cmd[2300];
    JET_ERR e;
    JET_DBID db;
    snprintf(in->dir, sizeof in->dir, "%s/%s", root, name);
    snprintf(in->db, sizeof in->db, "%s/bench.db", in->dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", in->dir, in->dir);
    if (system(cmd) != 0) exit(1);
    in->inst = 0;
    if ((e = JetCreateInstance(&in->inst, name)) < 0) die("create", e);
    JetSetSystemParameter(&in->inst, 0, JET_paramSystemPath, 0, in->dir);
    JetSetSystemParameter(&in->inst, 0, JET_paramLogFilePath, 0, in->dir);
    JetSetSystemParameter(&in->inst, 0, JET_paramLogFileSize, 16384, NULL);
    JetSetSystemParameter(&in->inst, 0, JET_paramCacheSizeMax, 8192, NULL);
    JetSetSystemParameter(&in->inst, 0, JET_paramCheckpointPeriodMs, (JET_API_PTR)ckpt_ms, NULL);
    if ((e = JetInit(&in->inst)) < 0) die("init", e);
    if ((e = JetBeginSession(in->inst, &in->s, NULL, NULL)) < 0) die("session", e);
    if ((e = JetCreateDatabase(in->s, in->db, NULL, &db, 0)) < 0) die("create db", e);
    if ((e = JetCreateTable(in->s, db, "t", 0, 0, &in->t)) < 0) die("table", e);
}

static void load_mb(struct inst *in, long mb)
{
    char v[1000];
    memset(v, 'v', sizeof v);
    long rows = mb * 1000;
    for (long i = 0; i < rows; i += 1000) {
        JET_ERR e = JetBeginTransaction(in->s);
        for (long j = i; j < i + 1000 && e >= 0; j++) {
            char k[32];
            snprintf(k, sizeof k, "%016lx", (unsigned long)j * 2654435761ul);
            e = JetPutKV(in->s, in->t, k, 16, v, sizeof v, 0);
        }
        if (e >= 0) e = JetCommitTransaction(in->s, JET_bitCommitLazyFlush);
        if (e < 0) die("load", e);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Begin's own cost, not the disk's backlog: the load leaves gigabytes of
 * dirty page cache whose writeback would slow the roll's fsync in
 * proportion to the load.  Make it durable first, at both sizes alike. */
static void settle(struct inst *in)
{
    char v = 's';
    JET_ERR e = JetPutKV(in->s, in->t, "settle", 6, &v, 1, 0);
    if (e < 0) die("settle", e);
    sync();
}

static double begin_latency_ms(struct inst *in)
{
    double t[7];
    settle(in);
    for (int i = 0; i < 7; i++) {
        double t0 = now();
        JET_ERR e = JetBeginExternalBackupInstance(in->inst, 0);
        t[i] = (now() - t0) * 1000;
        if (e < 0) die("begin", e);
        JetEndExternalBackupInstance2(in->inst, JET_bitBackupEndAbort);
        /* Backups begin minutes apart, not back to back: give the log's
         * preparer the time it has in life to build the next generation. */
        usleep(300 * 1000);
    }
    qsort(t, 7, sizeof t[0], cmp_d);
    return t[3];
}

static atomic_int reading;
static struct inst *rin;
static atomic_llong bytes_read;

static void *stream_backup(void *arg)
{
    (void)arg;
    char names[65536], *all = names;
    unsigned long cb;
    char *buf = malloc(1 << 20);
    JetGetAttachInfoInstance(rin->inst, names, sizeof names, &cb);
    while (atomic_load(&reading)) {
        for (char *p = all; *p && atomic_load(&reading); p += strlen(p) + 1) {
            JET_HANDLE h;
            unsigned long lo, hi, got;
            if (JetOpenFileInstance(rin->inst, p, &h, &lo, &hi) < 0) continue;
            unsigned long long size = lo | ((unsigned long long)hi << 32);
            for (unsigned long long off = 0; off < size && atomic_load(&reading); off += got) {
                if (JetReadFileAtInstance(rin->inst, h, off, buf, 1 << 20, &got) < 0 || !got) break;
                bytes_read += got;
            }
            JetCloseFileInstance(rin->inst, h);
        }
    }
    free(buf);
    return NULL;
}

/* The control: a thread that only burns CPU, no backup.  On a machine with
 * few cores any busy thread costs the committer something; this row says
 * how much of the backup's cost is just that. */
static void *spin(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (atomic_load(&reading))
        for (int i = 0; i < 100000; i++) x += (unsigned long)i;
    return NULL;
}

/* The machine's own floor: 200-byte pwrite + fdatasync, as a commit does
 * at the least, in a file of the instance's directory, for secs. */
static double fsyncs_per_s(const char *dir, double secs)
{
    char path[1200], b[200];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("fsync probe", -1);
    memset(b, 'f', sizeof b);
    long n = 0;
    double t0 = now();
    while (now() - t0 < secs) {
        if (pwrite(fd, b, sizeof b, (off_t)(n % 4096) * (off_t)sizeof b) != (ssize_t)sizeof b || fdatasync(fd) != 0)
            die("fsync probe write", -1);
        n++;
    }
    close(fd);
    unlink(path);
    return n / (now() - t0);
}

static double commits_per_s(struct inst *in, double secs)
{
    char v[100];
    memset(v, 'c', sizeof v);
    long n = 0;
    double t0 = now();
    while (now() - t0 < secs) {
        char k[32];
        snprintf(k, sizeof k, "commit%010ld", n++);
        JET_ERR e = JetPutKV(in->s, in->t, k, strlen(k), v, sizeof v, 0);
        if (e < 0) die("commit", e);
    }
    return n / (now() - t0);
}

/* "bytes_served" of MOUNT/status: what the mount has passed on so far. */
static unsigned long long bytes_served(const char *mnt)
{
    char path[1200], buf[65536];
    snprintf(path, sizeof path, "%s/status", mnt);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *p = strstr(buf, "\"bytes_served\": ");
    return p ? strtoull(p + 16, NULL, 10) : 0;
}

static void quiet(void *arg, const char *line) { (void)arg, (void)line; }

/*
 * Commits/s while dd reads the full set through a real mount, pass after
 * pass (iflag=nocache drops each file from the page cache behind it, so
 * every pass is served by the mount, as a backup's one pass is).  dd runs
 * at normal priority, as an operator's tar does, or niced as the README's
 * recipes run backup tools.  *mbps gets the rate the mount served meanwhile.
 */
static double commits_via_mount(struct inst *in, const char *mnt, bool normal_priority, bool niced, double secs,
                                double *mbps)
{
    struct jetfs_options fo = {.mountpoint = mnt, .instance_name = "bench", .log = quiet,
                               .normal_priority = normal_priority};
    struct jetfs *fs = NULL;
    char why[1024], set[1200], outcome[1024];
    if (jetfs_mount(in->inst, &fo, &fs, why, sizeof why) < 0) {
        fprintf(stderr, "backupbench: mount: %s\n", why);
        exit(1);
    }
    snprintf(set, sizeof set, "%s/backup/full", mnt);
    char *argv[] = {"sh", "-c",
                    "while :; do for f in \"$0\"/*; do "
                    "$1 dd if=\"$f\" of=/dev/null bs=1M iflag=nocache status=none || exit 1; done; done",
                    set, niced ? "nice -n 19" : "", NULL};
    pid_t pid;
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETPGROUP); /* its own group: the kill reaches dd too */
    posix_spawnattr_setpgroup(&sa, 0);
    int rc = posix_spawnp(&pid, "sh", NULL, &sa, argv, environ);
    posix_spawnattr_destroy(&sa);
    if (rc != 0) die("spawn dd", -1);
    while (bytes_served(mnt) == 0) usleep(1000);
    unsigned long long b0 = bytes_served(mnt);
    double t0 = now();
    double c = commits_per_s(in, secs);
    *mbps = (bytes_served(mnt) - b0) / (now() - t0) / 1e6;
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    jetfs_unmount(fs);
    jetfs_wait(fs, outcome, sizeof outcome);
    jetfs_free(fs);
    return c;
}

int main(int argc, char **argv)
{
    long small = 100, large = 2000;
    double secs = 3;
    if (argc < 2) {
        fprintf(stderr, "usage: backupbench DIR [--small-mb N] [--large-mb N] [--seconds S]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--small-mb")) small = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--large-mb")) large = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
        else return fprintf(stderr, "backupbench: unknown option %s\n", argv[i]), 2;
    }
    mkdir(argv[1], 0755);
    /* 1. begin latency, small vs large */
    struct inst a, b;
    open_inst(&a, argv[1], "small", 1000);
    load_mb(&a, small);
    double la = begin_latency_ms(&a);
    open_inst(&b, argv[1], "large", 1000);
    load_mb(&b, large);
    double lb = begin_latency_ms(&b);
    JetTerm(b.inst);
    /* 2. commits with and without a backup streaming at full speed,
     * interleaved over several rounds (the VM's fsync latency drifts), medians */
    enum { ROUNDS = 5 };
    double c0s[ROUNDS], c1s[ROUNDS], c2s[ROUNDS], f0s[ROUNDS], f1s[ROUNDS], rds[ROUNDS];
    double mis[ROUNDS], mns[ROUNDS], mirs[ROUNDS], mnrs[ROUNDS], mcs[ROUNDS], mcrs[ROUNDS];
    char mnt[1200];
    snprintf(mnt, sizeof mnt, "%s/mnt", argv[1]);
    mkdir(mnt, 0700);
    rin = &a;
    for (int r = 0; r < ROUNDS; r++) {
        c0s[r] = commits_per_s(&a, secs);
        mis[r] = commits_via_mount(&a, mnt, false, false, secs, &mirs[r]);
        mcs[r] = commits_via_mount(&a, mnt, false, true, secs, &mcrs[r]);
        mns[r] = commits_via_mount(&a, mnt, true, false, secs, &mnrs[r]);
        if (JetBeginExternalBackupInstance(a.inst, 0) < 0) die("begin", -1);
        atomic_store(&bytes_read, 0);
        atomic_store(&reading, 1);
        pthread_t th;
        pthread_create(&th, NULL, stream_backup, NULL);
        double t0 = now();
        c1s[r] = commits_per_s(&a, secs);
        rds[r] = atomic_load(&bytes_read) / (now() - t0) / 1e6;
        atomic_store(&reading, 0);
        pthread_join(th, NULL);
        JetEndExternalBackupInstance2(a.inst, JET_bitBackupEndAbort);
        atomic_store(&reading, 1);
        pthread_create(&th, NULL, spin, NULL);
        c2s[r] = commits_per_s(&a, secs);
        f1s[r] = fsyncs_per_s(a.dir, secs);
        atomic_store(&reading, 0);
        pthread_join(th, NULL);
        f0s[r] = fsyncs_per_s(a.dir, secs);
    }
    qsort(c2s, ROUNDS, sizeof c2s[0], cmp_d);
    qsort(f0s, ROUNDS, sizeof f0s[0], cmp_d);
    qsort(f1s, ROUNDS, sizeof f1s[0], cmp_d);
    double f0 = f0s[ROUNDS / 2], f1 = f1s[ROUNDS / 2];
    qsort(c0s, ROUNDS, sizeof c0s[0], cmp_d);
    qsort(c1s, ROUNDS, sizeof c1s[0], cmp_d);
    qsort(rds, ROUNDS, sizeof rds[0], cmp_d);
    double c0 = c0s[ROUNDS / 2], c1 = c1s[ROUNDS / 2], c2 = c2s[ROUNDS / 2], rd = rds[ROUNDS / 2];
    double *med[] = {mis, mns, mirs, mnrs, mcs, mcrs};
    for (int i = 0; i < 6; i++) qsort(med[i], ROUNDS, sizeof(double), cmp_d);
    double mi = mis[ROUNDS / 2], mn = mns[ROUNDS / 2], mir = mirs[ROUNDS / 2], mnr = mnrs[ROUNDS / 2];
    double mc = mcs[ROUNDS / 2], mcr = mcrs[ROUNDS / 2];
    JetTerm(a.inst);
    /* 3. replay speed: a full set whose logs hold the whole load */
    struct inst c;
    open_inst(&c, argv[1], "replay", 3600000);
    JET_ERR e = JetBeginExternalBackupInstance(c.inst, 0);
    if (e < 0) die("begin", e);
    JetEndExternalBackupInstance2(c.inst, JET_bitBackupEndAbort);
    load_mb(&c, small);
    if ((e = JetBeginExternalBackupInstance(c.inst, 0)) < 0) die("begin", e);
    char set[1200], cmd[4000], names[65536];
    unsigned long cb;
    snprintf(set, sizeof set, "%s/replayset", argv[1]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", set, set);
    if (system(cmd) != 0) return 1;
    unsigned long long logbytes = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) JetGetAttachInfoInstance(c.inst, names, sizeof names, &cb);
        else JetGetLogInfoInstance(c.inst, names, sizeof names, &cb);
        for (char *p = names; *p; p += strlen(p) + 1) {
            JET_HANDLE h;
            unsigned long lo, hi, got;
            JetOpenFileInstance(c.inst, p, &h, &lo, &hi);
            unsigned long long size = lo | ((unsigned long long)hi << 32);
            char out[1400];
            snprintf(out, sizeof out, "%s/%s", set, strrchr(p, '/') + 1);
            FILE *f = fopen(out, "wb");
            char *buf = malloc(1 << 20);
            for (unsigned long long off = 0; off < size; off += got) {
                if (JetReadFileAtInstance(c.inst, h, off, buf, 1 << 20, &got) < 0 || !got) break;
                fwrite(buf, 1, got, f);
            }
            fclose(f);
            free(buf);
            JetCloseFileInstance(c.inst, h);
            if (pass == 1) logbytes += size;
        }
    }
    JetEndExternalBackupInstance2(c.inst, JET_bitBackupEndAbort);
    JetTerm(c.inst);
    char rdir[1300];
    snprintf(rdir, sizeof rdir, "%s/restored", argv[1]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", rdir);
    if (system(cmd) != 0) return 1;
    const char *sets[] = {set};
    double t0 = now();
    if ((e = JetRestoreSets(sets, 1, rdir, 0, 0)) < 0) die("restore", e);
    double rt = now() - t0;
    printf("%-44s %12s %12s %8s\n", "measure", "value", "peer", "ratio");
    printf("%-44s %10.2fms %10.2fms %7.2fx\n", "begin latency, large vs small database", lb, la, lb / la);
    printf("%-44s %12.0f %12.0f %7.2fx\n", "durable commits/s, API reader thread", c1, c0, c1 / c0);
    printf("%-44s %10.1fMB %12s %8s\n", "  (backup read rate meanwhile, MB/s)", rd, "", "");
    printf("%-44s %12.0f %12.0f %7.2fx\n", "durable commits/s, dd reading the mount", mi, c0, mi / c0);
    printf("%-44s %10.1fMB %12s %8s\n", "  (served by the mount meanwhile, MB/s)", mir, "", "");
    printf("%-44s %12.0f %12.0f %7.2fx\n", "  the same, dd under nice -n 19", mc, c0, mc / c0);
    printf("%-44s %10.1fMB %12s %8s\n", "  (served by the mount meanwhile, MB/s)", mcr, "", "");
    printf("%-44s %12.0f %12.0f %7.2fx\n", "  dd (not niced), --backup-priority normal", mn, c0, mn / c0);
    printf("%-44s %10.1fMB %12s %8s\n", "  (served by the mount meanwhile, MB/s)", mnr, "", "");
    printf("%-44s %12.0f %12.0f %7.2fx\n", "  control: commits/s beside a CPU-bound thread", c2, c0, c2 / c0);
    printf("%-44s %12.0f %12.0f %7.2fx\n", "  control: raw fdatasyncs/s beside that thread", f1, f0, f1 / f0);
    printf("%-44s %10.1fMB %12s %8s\n", "restore: log replayed (incl. checks)", logbytes / 1e6, "", "");
    printf("%-44s %10.1f/s %12s %8s\n", "restore: MB of log per second", logbytes / 1e6 / rt, "", "");
    printf("(small %ld MB, large %ld MB; begin latency median of 7; commits medians of %d interleaved rounds of %.1f s)\n",
           small, large, ROUNDS, secs);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", argv[1]);
    return system(cmd) == 0 ? 0 : 1;
}
