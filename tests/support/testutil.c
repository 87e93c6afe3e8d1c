/*
 * testutil.c -- see testutil.h.
 */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

const char *tu_scratch_dir(const char *name)
{
    static char path[1024];
    const char *base = getenv("JET_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0700);
    snprintf(path, sizeof path, "%s/%s.%d", base, name, (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not clear %s\n", path);
    if (mkdir(path, 0700) != 0) {
        perror(path);
        abort();
    }
    return path;
}

uint64_t tu_seed(const char *test)
{
    const char *s = getenv("SEED");
    uint64_t seed;
    if (s && *s) seed = strtoull(s, NULL, 0);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    if (seed == 0) seed = 1;
    fprintf(stderr, "%s: SEED=%llu\n", test, (unsigned long long)seed);
    return seed;
}

uint64_t tu_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

long tu_count(const char *name, long ci, long lng)
{
    const char *v = getenv(name);
    if (v && *v) return atol(v);
    const char *l = getenv("JET_LONG");
    if (l && *l == '1') return lng;
    return ci;
}

int tu_run(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

JET_ERR tu_open(const char *name, const char *dir, struct tu_params p, const char *dbpath, int create,
                JET_INSTANCE *pinst, JET_SESID *ps, JET_DBID *pdb, JET_TABLEID *pt)
{
    JET_DBID db = 0;
    JET_ERR err;
    *pinst = 0;
    if ((err = JetCreateInstance(pinst, name)) < 0) goto out;
    if ((err = JetSetSystemParameter(pinst, 0, JET_paramSystemPath, 0, dir)) < 0) goto out;
    if ((err = JetSetSystemParameter(pinst, 0, JET_paramLogFilePath, 0, p.log_dir ? p.log_dir : dir)) < 0) goto out;
    /* A test's log directory may be one it has not made yet. */
    if ((err = JetSetSystemParameter(pinst, 0, JET_paramCreatePathIfNotExist, 1, NULL)) < 0) goto out;
    if (p.log_kb && (err = JetSetSystemParameter(pinst, 0, JET_paramLogFileSize, (JET_API_PTR)p.log_kb, NULL)) < 0)
        goto out;
    if (p.cache_pages &&
        (err = JetSetSystemParameter(pinst, 0, JET_paramCacheSizeMax, (JET_API_PTR)p.cache_pages, NULL)) < 0)
        goto out;
    if (p.ckpt_ms &&
        (err = JetSetSystemParameter(pinst, 0, JET_paramCheckpointPeriodMs, (JET_API_PTR)p.ckpt_ms, NULL)) < 0)
        goto out;
    if (p.circular && (err = JetSetSystemParameter(pinst, 0, JET_paramCircularLog, (JET_API_PTR)p.circular, NULL)) < 0)
        goto out;
    if (p.snap_kb &&
        (err = JetSetSystemParameter(pinst, 0, JET_paramSnapshotMemoryMax, (JET_API_PTR)p.snap_kb, NULL)) < 0)
        goto out;
    if ((err = JetInit(pinst)) < 0 || !dbpath) goto out;
    if ((err = JetBeginSession(*pinst, ps, NULL, NULL)) < 0) goto out;
    if (create) {
        if ((err = JetCreateDatabase(*ps, dbpath, NULL, &db, JET_bitDbOverwriteExisting)) < 0) goto out;
        if (pdb) *pdb = db;
        err = JetCreateTable(*ps, db, "t", 0, 0, pt);
    } else {
        if ((err = JetAttachDatabase(*ps, dbpath, 0)) < 0) goto out;
        if ((err = JetOpenDatabase(*ps, dbpath, NULL, &db, 0)) < 0) goto out;
        if (pdb) *pdb = db;
        err = JetOpenTable(*ps, db, "t", NULL, 0, 0, pt);
    }
out:
    return err;
}

JET_INSTANCE tu_instance(const char *name, const char *dir, struct tu_params p)
{
    JET_INSTANCE inst = 0;
    JET_ERR err = tu_open(name, dir, p, NULL, 0, &inst, NULL, NULL, NULL);
    if (err < 0) fprintf(stderr, "tu_instance %s: %ld %s\n", dir, err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    return inst;
}

void tu_table(JET_INSTANCE inst, const char *path, int create, JET_SESID *ps, JET_TABLEID *pt)
{
    JET_DBID db;
    CU_ASSERT_FATAL(JetBeginSession(inst, ps, NULL, NULL) >= 0);
    if (create) {
        CU_ASSERT_FATAL(JetCreateDatabase(*ps, path, NULL, &db, JET_bitDbOverwriteExisting) >= 0);
        CU_ASSERT_FATAL(JetCreateTable(*ps, db, "t", 0, 0, pt) >= 0);
        return;
    }
    JET_ERR err = JetAttachDatabase(*ps, path, 0);
    if (err < 0) fprintf(stderr, "tu_table %s: %ld %s\n", path, err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(*ps, path, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(*ps, db, "t", NULL, 0, 0, pt) >= 0);
}

uint64_t tu_file_hash(const char *path, uint64_t skip, long long *psize)
{
    FILE *f = fopen(path, "rb");
    long long size = 0;
    uint64_t h = 0;
    XXH3_state_t *st = XXH3_createState();
    unsigned char *buf = malloc(1 << 16);
    size_t n;
    if (psize) *psize = -1;
    if (!f || !st || !buf) goto out;
    XXH3_64bits_reset(st);
    while ((n = fread(buf, 1, 1 << 16, f)) > 0) {
        uint64_t from = (uint64_t)size, to = from + n;
        if (to > skip) {
            size_t at = from >= skip ? 0 : (size_t)(skip - from);
            XXH3_64bits_update(st, buf + at, n - at);
        }
        size += (long long)n;
    }
    h = XXH3_64bits_digest(st);
    if (psize) *psize = size;
out:
    free(buf);
    if (st) XXH3_freeState(st);
    if (f) fclose(f);
    return h;
}

void tu_load(JET_SESID s, JET_TABLEID t, int from, int to, char fill)
{
    char v[500];
    memset(v, fill, sizeof v);
    for (int i = from; i < to; i += 100) {
        CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
        for (int j = i; j < i + 100 && j < to; j++) {
            char k[16];
            snprintf(k, sizeof k, "k%06d", j);
            CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), v, sizeof v, 0) >= 0);
        }
        CU_ASSERT_FATAL(JetCommitTransaction(s, 0) >= 0);
    }
}

char *tu_slurp(const char *path, size_t *pn)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long n = -1;
    if (pn) *pn = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) != NULL) {
        if (fread(b, 1, (size_t)n, f) != (size_t)n) {
            free(b);
            b = NULL;
        } else {
            b[n] = '\0';
            if (pn) *pn = (size_t)n;
        }
    }
    fclose(f);
    return b;
}

void tu_snap_dir(const char *dir, struct tu_dir_snap *sn)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    sn->n = 0;
    while ((e = readdir(d))) {
        char p[2200];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        CU_ASSERT_FATAL(sn->n < TU_SNAP_MAX && strlen(e->d_name) < 64);
        snprintf(sn->f[sn->n].name, sizeof sn->f[0].name, "%.63s", e->d_name);
        sn->f[sn->n].hash = tu_file_hash(p, 0, &sn->f[sn->n].size);
        sn->n++;
    }
    closedir(d);
}

void tu_assert_dir_unchanged(const char *dir, const struct tu_dir_snap *before, const char *except)
{
    static struct tu_dir_snap now;
    tu_snap_dir(dir, &now);
    int same = now.n == before->n;
    for (int i = 0; i < before->n; i++) {
        int j = 0;
        while (j < now.n && strcmp(now.f[j].name, before->f[i].name) != 0) j++;
        if (j == now.n) {
            fprintf(stderr, "  %s: deleted\n", before->f[i].name);
            same = 0;
        } else if ((!except || strcmp(except, before->f[i].name) != 0) &&
                   (now.f[j].size != before->f[i].size || now.f[j].hash != before->f[i].hash)) {
            fprintf(stderr, "  %s: changed (%lld -> %lld bytes)\n", before->f[i].name, before->f[i].size,
                    now.f[j].size);
            same = 0;
        }
    }
    for (int j = 0; j < now.n; j++) {
        int i = 0;
        while (i < before->n && strcmp(now.f[j].name, before->f[i].name) != 0) i++;
        if (i == before->n) fprintf(stderr, "  %s: created (%lld bytes)\n", now.f[j].name, now.f[j].size);
    }
    CU_ASSERT(same);
}

/* Reads one file of the running backup whole into setdir. */
void tu_backup_file(JET_INSTANCE inst, const char *path, const char *setdir)
{
    JET_HANDLE h;
    unsigned long lo, hi, got;
    CU_ASSERT_FATAL(JetOpenFileInstance(inst, path, &h, &lo, &hi) >= 0);
    unsigned long long size = lo | ((unsigned long long)hi << 32);
    char out[2200];
    snprintf(out, sizeof out, "%s/%s", setdir, strrchr(path, '/') + 1);
    FILE *f = fopen(out, "wb");
    CU_ASSERT_FATAL(f != NULL);
    char *buf = malloc(1 << 16);
    for (unsigned long long off = 0; off < size; off += got) {
        CU_ASSERT_FATAL(JetReadFileAtInstance(inst, h, off, buf, 1 << 16, &got) >= 0 && got > 0);
        CU_ASSERT_FATAL(fwrite(buf, 1, got, f) == got);
    }
    free(buf);
    fclose(f);
    CU_ASSERT_FATAL(JetCloseFileInstance(inst, h) >= 0);
}

/* Takes a whole backup of kind type ("full", "incremental", "copy" or
 * "differential") into setdir and ends it normally, asking for truncation
 * for a full or incremental one; *li (may be NULL) gets the set's range
 * from JetGetLogInfoInstance2. */
void tu_backup(JET_INSTANCE inst, const char *setdir, const char *type, JET_LOGINFO *li)
{
    char cmd[2200], names[65536];
    unsigned long cb = 0;
    int incremental = !strcmp(type, "incremental") || !strcmp(type, "differential");
    int truncate = !strcmp(type, "incremental") || !strcmp(type, "full");
    JET_LOGINFO info = {sizeof info, 0, 0, ""};
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", setdir, setdir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    CU_ASSERT_FATAL(JetBeginExternalBackupInstance(inst, incremental ? JET_bitBackupIncremental : 0) >= 0);
    if (!incremental) {
        CU_ASSERT_FATAL(JetGetAttachInfoInstance(inst, names, sizeof names, &cb) >= 0);
        for (char *p = names; *p; p += strlen(p) + 1) tu_backup_file(inst, p, setdir);
    }
    CU_ASSERT_FATAL(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &info) >= 0);
    if (li) *li = info;
    for (char *p = names; *p; p += strlen(p) + 1) tu_backup_file(inst, p, setdir);
    unsigned long need = 0;
    CU_ASSERT_FATAL(JetGetBackupManifestInstance(inst, type, NULL, 0, &need) >= 0);
    char *m = malloc(need);
    CU_ASSERT_FATAL(JetGetBackupManifestInstance(inst, type, m, need, &need) == JET_errSuccess);
    snprintf(cmd, sizeof cmd, "%s/backup.manifest", setdir);
    FILE *f = fopen(cmd, "w");
    CU_ASSERT_FATAL(f && fputs(m, f) >= 0);
    fclose(f);
    free(m);
    if (truncate) CU_ASSERT_FATAL(JetTruncateLogInstance(inst) >= 0);
    CU_ASSERT_FATAL(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal) >= 0);
}
