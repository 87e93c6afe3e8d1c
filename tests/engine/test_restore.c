/*
 * test_restore.c -- restore (engine/restore.c with recovery.c): a
 * point-in-time restore by commit time gives exactly the commits up to that
 * time, stays so when the restored instance is opened again, and refuses a
 * time before the backup's consistent point instead of returning a database
 * from some other moment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "jet.h"
#include "testutil.h"

static char dir[1024], dbpath[1100];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;

static uint64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start(const char *name)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/r.db", dir);
    inst = tu_instance("rs", dir, (struct tu_params){.log_kb = 256});
    tu_table(inst, dbpath, 1, &s, &t);
}

static void put(const char *k, const char *v)
{
    CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), v, strlen(v), 0) >= 0);
}

/* Reads one file of the running backup whole into setdir. */
static void save_file(const char *path, const char *setdir)
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
static void take_backup_kind(const char *setdir, const char *type, JET_LOGINFO *li)
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
        for (char *p = names; *p; p += strlen(p) + 1) save_file(p, setdir);
    }
    CU_ASSERT_FATAL(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &info) >= 0);
    if (li) *li = info;
    for (char *p = names; *p; p += strlen(p) + 1) save_file(p, setdir);
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

/* Takes a whole backup (incremental or full) into setdir and ends it normally. */
static void take_backup(const char *setdir, int incremental)
{
    take_backup_kind(setdir, incremental ? "incremental" : "full", NULL);
}

/* The keys of table t in the restored instance at rdir, "k=v;" each, in order. */
static void restored_contents(const char *rdir, char *out, size_t cb)
{
    JET_SESID rs;
    JET_TABLEID rt;
    char db[1200];
    snprintf(db, sizeof db, "%s/r.db", rdir);
    JET_INSTANCE ri = tu_instance("restored", rdir, (struct tu_params){.log_kb = 256});
    tu_table(ri, db, 0, &rs, &rt);
    size_t used = 0;
    out[0] = '\0';
    static const char *keys[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[64];
        unsigned long n = 0;
        if (JetRetrieveKV(rs, rt, keys[i], 1, v, sizeof v - 1, &n, 0) < 0) continue;
        v[n] = '\0';
        used += (size_t)snprintf(out + used, cb - used, "%s=%s;", keys[i], v);
    }
    CU_ASSERT(JetTerm(ri) >= 0);
}

static void test_restore_stops_at_a_commit_time(void)
{
    char full[1200], inc[1200], r[1200], got[256], again[256], cmd[2600];
    start("rs_time");
    put("a", "1");
    snprintf(full, sizeof full, "%s/set-full", dir);
    snprintf(inc, sizeof inc, "%s/set-inc", dir);
    take_backup(full, 0);
    uint64_t before_full_end = now_us();
    sleep_ms(30);
    put("b", "2");
    sleep_ms(30);
    uint64_t between = now_us();
    sleep_ms(30);
    put("c", "3");
    /* Enough to fill the generation: the ones after the stop point must be
     * set aside by the restore, not left for a later recovery to replay. */
    char *big = malloc(100001);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    for (int i = 0; i < 4; i++) put(i % 2 ? "x1" : "x0", big);
    free(big);
    put("a", "changed");
    take_backup(inc, 1);
    CU_ASSERT(JetTerm(inst) >= 0);
    const char *chain[] = {full, inc};

    /* Up to `between`: b, not c nor the later change of a. */
    snprintf(r, sizeof r, "%s/restored-between", dir);
    JET_ERR err = JetRestoreSets(chain, 2, r, 0, between);
    if (err < 0) fprintf(stderr, "restore: %s\n", JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    restored_contents(r, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");
    /* Opening it again (recovery runs again) must not bring the later
     * commits back from the generations that held them. */
    restored_contents(r, again, sizeof again);
    CU_ASSERT_STRING_EQUAL(again, "a=1;b=2;");
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q after-restore-point", r);
    CU_ASSERT(system(cmd) == 0);

    /* No stop: everything. */
    snprintf(r, sizeof r, "%s/restored-all", dir);
    CU_ASSERT_EQUAL_FATAL(JetRestoreSets(chain, 2, r, 0, 0), JET_errSuccess);
    restored_contents(r, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=changed;b=2;c=3;");

    /* A time before the full backup's consistent point is refused, naming
     * both times; nothing is left that looks like a restored database. */
    snprintf(r, sizeof r, "%s/restored-early", dir);
    err = JetRestoreSets(chain, 2, r, 0, before_full_end - 60u * 1000000u);
    CU_ASSERT_EQUAL(err, JET_errInvalidParameter);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "consistent point") != NULL);
    snprintf(cmd, sizeof cmd, "test -e '%s/r.db'", r);
    CU_ASSERT(system(cmd) != 0);
}

/* ESE's directory form: a set restored for a created, not yet initialised
 * instance, which then finds it at JetInit. */
static void test_restore_instance_directory_form(void)
{
    char full[1200], target[1200], got[256];
    start("rs_instance");
    put("a", "1");
    put("b", "2");
    snprintf(full, sizeof full, "%s/set-full", dir);
    take_backup(full, 0);
    put("c", "after the backup");
    /* Refused once initialised: restore comes before JetInit. */
    TU_CHECK_ERR(JetRestoreInstance(inst, full, NULL, NULL), JET_errAlreadyInitialized);
    CU_ASSERT(JetTerm(inst) >= 0);

    snprintf(target, sizeof target, "%s/instance2", dir);
    JET_INSTANCE ri = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&ri, "dirform") >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&ri, 0, JET_paramSystemPath, 0, target) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&ri, 0, JET_paramLogFilePath, 0, target) >= 0);
    TU_CHECK_ERR(JetRestoreInstance(ri, NULL, NULL, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetRestoreInstance(ri, full, NULL, NULL), JET_errSuccess);
    /* The target is not empty any more: a second restore over it is refused. */
    TU_CHECK_ERR(JetRestoreInstance(ri, full, NULL, NULL), JET_errInvalidPath);
    CU_ASSERT(JetTerm(ri) >= 0);
    restored_contents(target, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");
    TU_CHECK_ERR(JetExternalRestore(target, target, NULL, 0, target, 5, 3, NULL), JET_errInvalidParameter);

    /* ESE's external form: the files already in place, the range found in
     * the directory (bounds 0) or given. */
    char ext[1300], cmd[6000], db[1400];
    for (int given = 0; given < 2; given++) {
        snprintf(ext, sizeof ext, "%s/external%d", dir, given);
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && rm '%s/backup.manifest'", ext, full, ext, ext);
        CU_ASSERT_FATAL(system(cmd) == 0);
        snprintf(db, sizeof db, "%s/r.db", ext);
        JET_RSTMAP map = {dbpath, db};
        long lo = 0, hi = 0;
        if (given) {
            FILE *p;
            snprintf(cmd, sizeof cmd, "ls '%s' | grep '^edb[0-9A-F]*\\.log$' | sort | sed -n '1p;$p' | cut -c4-11", ext);
            CU_ASSERT_FATAL((p = popen(cmd, "r")) != NULL);
            char a[16] = "", b[16] = "";
            CU_ASSERT_FATAL(fscanf(p, "%15s %15s", a, b) >= 1);
            pclose(p);
            lo = strtol(a, NULL, 16);
            hi = b[0] ? strtol(b, NULL, 16) : lo;
        }
        JET_ERR err = JetExternalRestore(ext, ext, &map, 1, ext, lo, hi, NULL);
        if (err < 0) fprintf(stderr, "external restore: %s\n", JetGetLastErrorDetail());
        CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
        restored_contents(ext, got, sizeof got);
        CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");
    }
}

/* What the status callback saw, and when to refuse. */
static int st_begin, st_progress, st_complete, st_order_ok = 1, st_fail_at = -1;
static unsigned long st_last_done, st_total;

static JET_ERR record_status(JET_SESID sesid, unsigned long snp, unsigned long snt, void *pv)
{
    const JET_SNPROG *p = pv;
    (void)sesid;
    if (snp != JET_snpRestore || !p || p->cbStruct != sizeof *p) st_order_ok = 0;
    else if (snt == JET_sntBegin) {
        st_begin++;
        st_total = p->cunitTotal;
        if (p->cunitDone != 0 || st_progress || st_complete) st_order_ok = 0;
    } else if (snt == JET_sntProgress) {
        if (!st_begin || st_complete || p->cunitDone < st_last_done || p->cunitDone > p->cunitTotal) st_order_ok = 0;
        st_last_done = p->cunitDone;
        if (st_progress++ == st_fail_at) return JET_errOutOfMemory;
    } else if (snt == JET_sntComplete) {
        st_complete++;
        if (p->cunitDone != p->cunitTotal) st_order_ok = 0;
    } else st_order_ok = 0;
    return JET_errSuccess;
}

static void test_restore_reports_progress_and_can_be_stopped(void)
{
    char full[1200], inc[1200], r[1200], got[256], cmd[1400];
    start("rs_progress");
    put("a", "1");
    snprintf(full, sizeof full, "%s/set-full", dir);
    snprintf(inc, sizeof inc, "%s/set-inc", dir);
    take_backup(full, 0);
    char *big = malloc(100001);
    memset(big, 'y', 100000);
    big[100000] = '\0';
    for (int i = 0; i < 8; i++) put("x", big); /* several generations */
    free(big);
    put("b", "2");
    take_backup(inc, 1);
    CU_ASSERT(JetTerm(inst) >= 0);
    const char *chain[] = {full, inc};

    snprintf(r, sizeof r, "%s/restored", dir);
    CU_ASSERT_EQUAL_FATAL(JetRestoreSets2(chain, 2, r, 0, 0, record_status), JET_errSuccess);
    CU_ASSERT(st_order_ok);
    CU_ASSERT_EQUAL(st_begin, 1);
    CU_ASSERT_EQUAL(st_complete, 1);
    CU_ASSERT(st_total >= 3);            /* the generations the 800 KB crossed */
    CU_ASSERT(st_progress >= 3);
    restored_contents(r, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");

    /* A callback that refuses stops the restore with its error, and the
     * target this call created is removed. */
    st_begin = st_progress = st_complete = 0;
    st_last_done = 0;
    st_fail_at = 1;
    snprintf(r, sizeof r, "%s/restored-stopped", dir);
    CU_ASSERT_EQUAL(JetRestoreSets2(chain, 2, r, 0, 0, record_status), JET_errOutOfMemory);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "status callback") != NULL);
    snprintf(cmd, sizeof cmd, "test -e '%s'", r);
    CU_ASSERT(system(cmd) != 0);
    st_fail_at = -1;
}

/* ---- refusals: each names the piece, and leaves no target behind ---- */

static char rf_full[1200], rf_inc[1200];

/* A full set and an incremental one holding at least three generations. */
static void make_chain(const char *name)
{
    start(name);
    put("a", "1");
    snprintf(rf_full, sizeof rf_full, "%s/set-full", dir);
    snprintf(rf_inc, sizeof rf_inc, "%s/set-inc", dir);
    take_backup(rf_full, 0);
    char *big = malloc(100001);
    memset(big, 'z', 100000);
    big[100000] = '\0';
    for (int i = 0; i < 8; i++) put("x", big);
    free(big);
    take_backup(rf_inc, 1);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* The n-th (0-based) generation file of a set, by name order. */
static void nth_log(const char *set, int n, char *out, size_t cb)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep '^edb[0-9A-F]*\\.log$' | sort | sed -n '%dp'", set, n + 1);
    FILE *p = popen(cmd, "r");
    char name[64] = "";
    CU_ASSERT_FATAL(p && fgets(name, sizeof name, p));
    pclose(p);
    name[strcspn(name, "\n")] = '\0';
    snprintf(out, cb, "%s/%s", set, name);
}

/* Expects the chain to be refused with err and a detail holding `names`. */
static void expect_refused(JET_ERR want, const char *names, const char *what)
{
    char r[1200], cmd[1300];
    snprintf(r, sizeof r, "%s/restored-%s", dir, what);
    const char *chain[] = {rf_full, rf_inc};
    JET_ERR err = JetRestoreSets(chain, 2, r, 0, 0);
    if (err != want || !strstr(JetGetLastErrorDetail(), names))
        fprintf(stderr, "%s: got %ld: %s\n", what, err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL(err, want);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), names) != NULL);
    snprintf(cmd, sizeof cmd, "test -e '%s'", r);
    CU_ASSERT(system(cmd) != 0);
}

static void drop_manifest(const char *set)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/backup.manifest", set);
    CU_ASSERT_FATAL(unlink(p) == 0);
}

static void test_restore_refuses_a_broken_hash_chain(void)
{
    char log[1300];
    make_chain("rs_chain");
    /* Rewrite the second generation's link to its predecessor, with a valid
     * header checksum: only the chain check can see it.  (No manifest, or
     * the manifest's hash of the file would refuse it first.) */
    drop_manifest(rf_inc);
    nth_log(rf_inc, 1, log, sizeof log);
    FILE *f = fopen(log, "r+b");
    unsigned char h[4096];
    CU_ASSERT_FATAL(f && fread(h, 1, sizeof h, f) == sizeof h);
    h[48] ^= 0x5a;
    uint64_t sum = XXH3_64bits(h + 8, sizeof h - 8);
    for (int i = 0; i < 8; i++) h[i] = (unsigned char)(sum >> (8 * i));
    CU_ASSERT_FATAL(fseek(f, 0, SEEK_SET) == 0 && fwrite(h, 1, sizeof h, f) == sizeof h);
    fclose(f);
    expect_refused(JET_errGivenLogFileIsNotContiguous, strrchr(log, '/') + 1, "chain");
}

static void test_restore_refuses_a_log_of_another_instance(void)
{
    char log[1300], other[1300], cmd[2700];
    /* Another instance with as many generations, its own log signature. */
    make_chain("rs_other");
    char other_inc[1200];
    snprintf(other_inc, sizeof other_inc, "%s", rf_inc);
    make_chain("rs_sig");
    drop_manifest(rf_inc);
    nth_log(rf_inc, 1, log, sizeof log);
    snprintf(other, sizeof other, "%s/%s", other_inc, strrchr(log, '/') + 1);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", other, log);
    CU_ASSERT_FATAL(system(cmd) == 0);
    expect_refused(JET_errGivenLogFileHasBadSignature, strrchr(log, '/') + 1, "signature");
}

static void test_restore_refuses_a_missing_generation(void)
{
    char log[1300];
    make_chain("rs_missing");
    nth_log(rf_inc, 1, log, sizeof log);
    CU_ASSERT_FATAL(unlink(log) == 0);
    /* The manifest lists it: refused naming it. */
    expect_refused(JET_errMissingRestoreLogFiles, strrchr(log, '/') + 1, "missing");
    /* Without the manifest, the gap in the generations is refused too. */
    drop_manifest(rf_inc);
    expect_refused(JET_errMissingRestoreLogFiles, "generation", "gap");
}

static void test_restore_refuses_a_database_of_the_wrong_size(void)
{
    char db[1300];
    make_chain("rs_size");
    snprintf(db, sizeof db, "%s/r.db", rf_full);
    struct stat st;
    CU_ASSERT_FATAL(stat(db, &st) == 0);
    CU_ASSERT_FATAL(truncate(db, st.st_size - 8192) == 0);
    expect_refused(JET_errBadBackupDatabaseSize, "r.db", "size");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("restore", NULL, NULL);
    if (!su) return 2;
    CU_add_test(su, "test_restore_stops_at_a_commit_time", test_restore_stops_at_a_commit_time);
    CU_add_test(su, "test_restore_instance_directory_form", test_restore_instance_directory_form);
    CU_add_test(su, "test_restore_reports_progress_and_can_be_stopped", test_restore_reports_progress_and_can_be_stopped);
    CU_add_test(su, "test_restore_refuses_a_broken_hash_chain", test_restore_refuses_a_broken_hash_chain);
    CU_add_test(su, "test_restore_refuses_a_log_of_another_instance", test_restore_refuses_a_log_of_another_instance);
    CU_add_test(su, "test_restore_refuses_a_missing_generation", test_restore_refuses_a_missing_generation);
    CU_add_test(su, "test_restore_refuses_a_database_of_the_wrong_size", test_restore_refuses_a_database_of_the_wrong_size);
    return tu_run();
}
