/*
 * test_ese_restore.c -- issue 12, the restore and directory-backup side:
 * code written for ESE's JetBackup / JetRestore / JetInit3 /
 * JetExternalRestore ports to jet.h with type changes only and gets ESE's
 * answers.  One test per point (5: directory backups, 6: restore
 * destinations, 7: JetInit3's restore map, 8: JetExternalRestore's ranges),
 * then public client code re-expressed in C: ManagedEsent's
 * TestBackupRestore and TestJetInit3 (each in an ASCII directory and in one
 * with a non-ASCII name, as ManagedEsent runs them under both path kinds),
 * and EsentSerialize's ExternalBackup / ExternalRestore.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jet.h"
#include "testutil.h"

/* ---- helpers ---- */

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    CU_ASSERT_FATAL(system(cmd) == 0);
}

static bool exists(const char *p) { return access(p, F_OK) == 0; }

/* An instance whose system and log paths are dir (created, not initialised). */
static JET_INSTANCE make_instance(const char *name, const char *sys, const char *logs)
{
    JET_INSTANCE inst = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&inst, name) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, sys) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, logs) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 64, NULL) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&inst, 0, JET_paramCheckpointPeriodMs, 600000, NULL) >= 0);
    return inst;
}

static JET_INSTANCE start_instance(const char *name, const char *sys, const char *logs)
{
    JET_INSTANCE inst = make_instance(name, sys, logs);
    JET_ERR err = JetInit(&inst);
    if (err < 0) fprintf(stderr, "JetInit %s: %ld %s\n", sys, err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    return inst;
}

/* Creates db with table "table" holding key "column" = "17" (ManagedEsent's
 * CreateDatabase), plus n more keys, durably; leaves inst running. */
static void create_database(JET_INSTANCE inst, const char *db, int n)
{
    JET_SESID s;
    JET_DBID dbid;
    JET_TABLEID t;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(s, db, NULL, &dbid, 0) >= 0);
    CU_ASSERT_FATAL(JetBeginTransaction(s) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(s, dbid, "table", 1, 100, &t) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, t, "column", 6, "17", 2, 0) >= 0);
    CU_ASSERT_FATAL(JetCommitTransaction(s, 0) >= 0);
    if (n) tu_load(s, t, 0, n, 'a');
    CU_ASSERT_FATAL(JetCloseTable(s, t) >= 0);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
}

/* Puts one more key into db's "table" on a running instance. */
static void put_key(JET_INSTANCE inst, const char *db, const char *k, const char *v)
{
    JET_SESID s;
    JET_DBID dbid;
    JET_TABLEID t;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    JET_ERR err = JetOpenDatabase(s, db, NULL, &dbid, 0);
    if (err == JET_errDatabaseNotFound) {
        CU_ASSERT_FATAL(JetAttachDatabase(s, db, 0) >= 0);
        err = JetOpenDatabase(s, db, NULL, &dbid, 0);
    }
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_FATAL(JetOpenTable(s, dbid, "table", NULL, 0, 0, &t) >= 0);
    CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), v, strlen(v), 0) >= 0);
    CU_ASSERT_FATAL(JetCloseTable(s, t) >= 0);
    CU_ASSERT_FATAL(JetEndSession(s, 0) >= 0);
}

/* ManagedEsent's CheckDatabase: an instance on (sys, logs) attaches db
 * read-only; "column" must be 17, and key k (if given) v (NULL: absent). */
static void check_database(const char *sys, const char *logs, const char *db, const char *k, const char *v)
{
    JET_INSTANCE inst = start_instance("check", sys, logs);
    JET_SESID s;
    JET_DBID dbid;
    JET_TABLEID t;
    char buf[64];
    unsigned long cb = 0;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    JET_ERR err = JetAttachDatabase(s, db, JET_bitDbReadOnly);
    if (err < 0) fprintf(stderr, "attach %s: %ld %s\n", db, err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(s, db, NULL, &dbid, JET_bitDbReadOnly) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(s, dbid, "table", NULL, 0, 0, &t) >= 0);
    CU_ASSERT_EQUAL(JetRetrieveKV(s, t, "column", 6, buf, sizeof buf, &cb, 0), JET_errSuccess);
    CU_ASSERT(cb == 2 && memcmp(buf, "17", 2) == 0);
    if (k) {
        err = JetRetrieveKV(s, t, k, strlen(k), buf, sizeof buf, &cb, 0);
        if (v) {
            CU_ASSERT_EQUAL(err, JET_errSuccess);
            CU_ASSERT(cb == strlen(v) && memcmp(buf, v, cb) == 0);
        } else {
            CU_ASSERT_EQUAL(err, JET_errRecordNotFound);
        }
    }
    CU_ASSERT(JetCloseTable(s, t) >= 0);
    CU_ASSERT(JetEndSession(s, 0) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* What a status callback saw. */
static struct {
    unsigned long snp;
    int begin, progress, complete, bad;
    unsigned long last_done;
    int fail_at;   /* the nth progress call returns an error (0: never) */
} st;

static JET_ERR status_cb(JET_SESID sesid, unsigned long snp, unsigned long snt, void *pv)
{
    const JET_SNPROG *p = pv;
    (void)sesid;
    st.snp = snp;
    if (!p || p->cbStruct != sizeof *p || p->cunitDone > p->cunitTotal) st.bad++;
    if (snt == JET_sntBegin) {
        if (st.begin || st.progress || st.complete) st.bad++;
        st.begin++;
    } else if (snt == JET_sntProgress) {
        if (!st.begin || st.complete || (p && p->cunitDone < st.last_done)) st.bad++;
        if (p) st.last_done = p->cunitDone;
        if (++st.progress == st.fail_at) return JET_errOutOfMemory;
    } else if (snt == JET_sntComplete) {
        if (!st.begin) st.bad++;
        st.complete++;
    }
    return JET_errSuccess;
}

static void status_reset(int fail_at)
{
    memset(&st, 0, sizeof st);
    st.fail_at = fail_at;
}

/* The log generations in dir, as a sorted list of numbers. */
static int list_gens(const char *dir, unsigned long *g, int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        unsigned long x;
        char tail[8];
        if (sscanf(e->d_name, "edb%8lX%7s", &x, tail) == 2 && !strcmp(tail, ".log") && n < max) g[n++] = x;
    }
    if (d) closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && g[j - 1] > g[j]; j--) {
            unsigned long t = g[j];
            g[j] = g[j - 1];
            g[j - 1] = t;
        }
    return n;
}

static int run_jetutil(const char *args)
{
    const char *bin = getenv("JET_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/jetutil' %s >/dev/null 2>&1", bin && *bin ? bin : ".", args);
    return system(cmd);
}

/* ---- point 5: directory backups ---- */

/*
 * Follows ESE's backup.cxx (ErrBKBackup, ErrBKIPrepareDirectory,
 * ErrBKIPromoteDirectory) and ManagedEsent's BackupDatabase: JetBackupInstance
 * copies the set into an empty directory, reporting JET_snpBackup progress;
 * an incremental adds to it; JET_bitBackupAtomic keeps new/old; what it
 * writes restores with JetRestoreInstance and passes `jetutil verify`; the
 * logs it held are truncated.
 */
static void test_directory_backup(void)
{
    char dir[1024], db[1100], bk[1100], at[1100], p[1300], args[4000], r[1100], rdb[1300];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_dirbackup"));
    snprintf(db, sizeof db, "%s/live/database.edb", dir);
    snprintf(bk, sizeof bk, "%s/bk", dir);
    snprintf(at, sizeof at, "%s/atomic", dir);
    sh("mkdir -p '%s/live'%s", dir, "");
    char live[1100];
    snprintf(live, sizeof live, "%s/live", dir);
    JET_INSTANCE inst = start_instance("dirbk", live, live);
    create_database(inst, db, 300);

    /* Full, with the status callback. */
    status_reset(0);
    JET_ERR err = JetBackupInstance(inst, bk, 0, status_cb);
    if (err < 0) fprintf(stderr, "JetBackupInstance: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT_EQUAL(st.snp, JET_snpBackup);
    if (!(st.begin == 1 && st.progress >= 2 && st.complete == 1 && st.bad == 0))
        fprintf(stderr, "status: begin %d progress %d complete %d bad %d\n", st.begin, st.progress, st.complete, st.bad);
    CU_ASSERT(st.begin == 1 && st.progress >= 2 && st.complete == 1 && st.bad == 0);
    CU_ASSERT_EQUAL(st.last_done, 100);
    snprintf(p, sizeof p, "%s/database.edb", bk);
    CU_ASSERT(exists(p));
    snprintf(p, sizeof p, "%s/backup.manifest", bk);
    CU_ASSERT(exists(p));
    char *m = tu_slurp(p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "\"type\": \"full\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, db)); /* the original path, for a restore without destination */
    free(m);
    unsigned long g[256];
    int nset = list_gens(bk, g, 256), nlive;
    CU_ASSERT(nset >= 1);
    /* As ESE's JetBackup: the logs the set holds were truncated, but for
     * those the checkpoint still needs. */
    unsigned long lg[256];
    nlive = list_gens(live, lg, 256);
    CU_ASSERT(nlive >= 1 && lg[nlive - 1] > g[nset - 1]);
    snprintf(args, sizeof args, "verify '%s'", bk);
    CU_ASSERT_EQUAL(run_jetutil(args), 0);

    /* Incremental: its own set beside the full one. */
    put_key(inst, db, "after-full", "inc");
    status_reset(0);
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, bk, JET_bitBackupIncremental, status_cb), JET_errSuccess);
    CU_ASSERT(st.begin == 1 && st.complete == 1 && st.bad == 0);
    char inc[1400] = "";
    DIR *d = opendir(bk);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "inc-", 4)) snprintf(inc, sizeof inc, "%s/%s", bk, e->d_name);
    if (d) closedir(d);
    CU_ASSERT_FATAL(inc[0] != '\0');
    snprintf(p, sizeof p, "%s/backup.manifest", inc);
    m = tu_slurp(p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "\"type\": \"incremental\""));
    free(m);
    /* The sets chain as jetutil expects. */
    snprintf(args, sizeof args, "verify '%s' '%s'", bk, inc);
    CU_ASSERT_EQUAL(run_jetutil(args), 0);

    /* Atomic: twice full (new replaces new, old gone), then incremental. */
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, at, JET_bitBackupAtomic, NULL), JET_errSuccess);
    snprintf(p, sizeof p, "%s/new/database.edb", at);
    CU_ASSERT(exists(p));
    put_key(inst, db, "atomic", "second");
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, at, JET_bitBackupAtomic, NULL), JET_errSuccess);
    CU_ASSERT(exists(p));
    snprintf(p, sizeof p, "%s/old", at);
    CU_ASSERT(!exists(p));
    snprintf(p, sizeof p, "%s/temp", at);
    CU_ASSERT(!exists(p));
    put_key(inst, db, "atomic-inc", "third");
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, at, JET_bitBackupAtomic | JET_bitBackupIncremental, NULL),
                          JET_errSuccess);
    snprintf(p, sizeof p, "%s/old/database.edb", at);
    CU_ASSERT(exists(p));
    snprintf(p, sizeof p, "%s/new", at);
    CU_ASSERT(!exists(p));
    CU_ASSERT(JetTerm(inst) >= 0);

    /* JetRestoreInstance reads each directory back, incrementals included. */
    snprintf(r, sizeof r, "%s/restored", dir);
    JET_INSTANCE ri = make_instance("dirbk-r", r, r);
    err = JetRestoreInstance(ri, bk, r, NULL);
    if (err < 0) fprintf(stderr, "restore %s: %ld %s\n", bk, err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(JetTerm(ri) >= 0);
    snprintf(rdb, sizeof rdb, "%s/database.edb", r);
    check_database(r, r, rdb, "after-full", "inc");

    snprintf(r, sizeof r, "%s/restored-atomic", dir);
    ri = make_instance("dirbk-ra", r, r);
    err = JetRestoreInstance(ri, at, r, NULL);
    if (err < 0) fprintf(stderr, "restore %s: %ld %s\n", at, err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(JetTerm(ri) >= 0);
    snprintf(rdb, sizeof rdb, "%s/database.edb", r);
    check_database(r, r, rdb, "atomic-inc", "third");
}

/*
 * ESE's ErrBKIPrepareDirectory / ErrLGCheckDir and ErrBKBackup's failure
 * path: a full backup into a non-empty directory is
 * JET_errBackupDirectoryNotEmpty, an incremental with no full set
 * JET_errMissingFullBackup, bad grbits JET_errInvalidGrbit, and each
 * changes nothing; a status callback's error stops the backup with that
 * error, removes what was written and truncates nothing (ManagedEsent's
 * BackupDatabaseWithCallbackException).
 */
static void test_directory_backup_refusals(void)
{
    char dir[1024], live[1100], db[1200], bk[1100], p[1300];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_dirbackup_no"));
    snprintf(live, sizeof live, "%s/live", dir);
    snprintf(db, sizeof db, "%s/database.edb", live);
    snprintf(bk, sizeof bk, "%s/bk", dir);
    sh("mkdir -p '%s' '%s'", live, bk);
    JET_INSTANCE inst = start_instance("dirbk-no", live, live);
    create_database(inst, db, 200);

    static struct tu_dir_snap before, logs_before;
    snprintf(p, sizeof p, "%s/somebody-elses-file", bk);
    sh("echo keep > '%s'%s", p, "");
    tu_snap_dir(bk, &before);
    TU_CHECK_ERR(JetBackupInstance(inst, bk, 0, NULL), JET_errBackupDirectoryNotEmpty);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), bk));
    tu_assert_dir_unchanged(bk, &before, NULL);
    TU_CHECK_ERR(JetBackupInstance(inst, bk, JET_bitBackupIncremental, NULL), JET_errMissingFullBackup);
    tu_assert_dir_unchanged(bk, &before, NULL);
    TU_CHECK_ERR(JetBackupInstance(inst, bk, 0x40, NULL), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBackupInstance(inst, NULL, 0, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetBackupInstance(inst, "", 0, NULL), JET_errInvalidParameter);
    /* The legacy forms belong to legacy mode. */
    TU_CHECK_ERR(JetBackup(bk, 0, NULL), JET_errRunningInMultiInstanceMode);
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetTruncateLogInfo(NULL, 0, &cb), JET_errRunningInMultiInstanceMode);

    /* The callback refuses at the second file: that error, nothing left. */
    char bk2[1200];
    snprintf(bk2, sizeof bk2, "%s/bk2", dir);
    unsigned long g0[256], g1[256];
    int n0 = list_gens(live, g0, 256);
    status_reset(1);
    TU_CHECK_ERR(JetBackupInstance(inst, bk2, 0, status_cb), JET_errOutOfMemory);
    CU_ASSERT(!exists(bk2));
    /* Nothing truncated: every generation there before is still there. */
    int n1 = list_gens(live, g1, 256);
    CU_ASSERT(n1 >= n0 && g1[0] == g0[0]);
    /* An empty directory given by the caller stays, emptied. */
    sh("mkdir -p '%s'%s", bk2, "");
    status_reset(1);
    TU_CHECK_ERR(JetBackupInstance(inst, bk2, 0, status_cb), JET_errOutOfMemory);
    tu_snap_dir(bk2, &logs_before);
    CU_ASSERT(exists(bk2) && logs_before.n == 0);
    /* And then the backup goes through. */
    CU_ASSERT_EQUAL(JetBackupInstance(inst, bk2, 0, NULL), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);

    /* Another full backup elsewhere truncates the logs bk2 would need
     * next (a restart first moves the checkpoint on): an incremental into
     * bk2 no longer continues it -- JET_errInvalidLogSequence (ESE's
     * JetBackup), bk2 unchanged. */
    char bk3[1200];
    snprintf(bk3, sizeof bk3, "%s/bk3", dir);
    inst = start_instance("dirbk-no2", live, live);
    put_key(inst, db, "x", "1");
    CU_ASSERT(JetTerm(inst) >= 0);
    inst = start_instance("dirbk-no3", live, live);
    put_key(inst, db, "y", "2");
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, bk3, 0, NULL), JET_errSuccess);
    put_key(inst, db, "z", "3");
    tu_snap_dir(bk2, &before);
    TU_CHECK_ERR(JetBackupInstance(inst, bk2, JET_bitBackupIncremental, NULL), JET_errInvalidLogSequence);
    tu_assert_dir_unchanged(bk2, &before, NULL);
    DIR *d = opendir(bk2);
    struct dirent *e;
    while (d && (e = readdir(d))) CU_ASSERT(strncmp(e->d_name, "inc-", 4) != 0);
    if (d) closedir(d);
    /* bk3 continues. */
    CU_ASSERT_EQUAL(JetBackupInstance(inst, bk3, JET_bitBackupIncremental, NULL), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* ---- point 6: restore destinations ---- */

/*
 * ESE's rstmap.cxx (ErrBuildRstmapForRestore) and JetRestoreInstance:
 * without a destination each database returns to its original path, the
 * logs to the instance's log path, the checkpoint to its system path; with
 * JET_instanceNil a temporary instance of the global parameters does it.
 * Anything already in the way is refused and nothing changes.
 */
static void test_restore_destinations(void)
{
    char dir[1024], live[1100], db[1200], bk[1100], sys[1200], logs[1200], p[1300];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_rst_dest"));
    snprintf(live, sizeof live, "%s/live", dir);
    snprintf(db, sizeof db, "%s/database.edb", live);
    snprintf(bk, sizeof bk, "%s/bk", dir);
    sh("mkdir -p '%s'%s", live, "");
    JET_INSTANCE inst = start_instance("dest", live, live);
    create_database(inst, db, 100);
    put_key(inst, db, "k", "v");
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, bk, 0, NULL), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);

    /* The database is still there: refused, naming it; nothing changes. */
    static struct tu_dir_snap before;
    tu_snap_dir(live, &before);
    JET_INSTANCE ri = make_instance("dest-r0", live, live);
    TU_CHECK_ERR(JetRestoreInstance(ri, bk, NULL, NULL), JET_errDatabaseDuplicate);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), db));
    tu_assert_dir_unchanged(live, &before, NULL);
    CU_ASSERT(JetTerm(ri) >= 0);

    /* The database gone, its logs still there: refused too. */
    CU_ASSERT_FATAL(unlink(db) == 0);
    tu_snap_dir(live, &before);
    ri = make_instance("dest-r1", live, live);
    TU_CHECK_ERR(JetRestoreInstance(ri, bk, NULL, NULL), JET_errInvalidPath);
    tu_assert_dir_unchanged(live, &before, NULL);
    CU_ASSERT(JetTerm(ri) >= 0);

    /* Separate system and log paths: each file where it belongs. */
    snprintf(sys, sizeof sys, "%s/new/sys", dir);
    snprintf(logs, sizeof logs, "%s/new/logs", dir);
    ri = make_instance("dest-r2", sys, logs);
    status_reset(0);
    JET_ERR err = JetRestoreInstance(ri, bk, NULL, status_cb);
    if (err < 0) fprintf(stderr, "restore: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(st.begin == 1 && st.complete == 1 && st.bad == 0 && st.snp == JET_snpRestore);
    CU_ASSERT(JetTerm(ri) >= 0);
    CU_ASSERT(exists(db));
    snprintf(p, sizeof p, "%s/edb.chk", sys);
    CU_ASSERT(exists(p));
    unsigned long g[256];
    CU_ASSERT(list_gens(logs, g, 256) >= 1);
    CU_ASSERT(list_gens(sys, g, 256) == 0);
    DIR *d = opendir(logs);
    struct dirent *e;
    while (d && (e = readdir(d))) CU_ASSERT(strncmp(e->d_name, ".jet-restore-", 13) != 0);
    if (d) closedir(d);
    check_database(sys, logs, db, "k", "v");

    /* JET_instanceNil: the global parameters' paths. */
    char glob[1200];
    snprintf(glob, sizeof glob, "%s/global", dir);
    CU_ASSERT_FATAL(unlink(db) == 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(NULL, 0, JET_paramSystemPath, 0, glob) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(NULL, 0, JET_paramLogFilePath, 0, glob) >= 0);
    err = JetRestoreInstance(JET_instanceNil, bk, NULL, NULL);
    if (err < 0) fprintf(stderr, "restore (nil): %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(exists(db));
    CU_ASSERT(list_gens(glob, g, 256) >= 1);
    check_database(glob, glob, db, "k", "v");
    /* The global defaults back to the engine's (relative) ones for the
     * tests that follow. */
    CU_ASSERT(JetSetSystemParameter(NULL, 0, JET_paramSystemPath, 0, ".") >= 0);
    CU_ASSERT(JetSetSystemParameter(NULL, 0, JET_paramLogFilePath, 0, ".") >= 0);
}

/* ---- point 7: JetInit3 with a restore map ---- */

/*
 * ManagedEsent's TestJetInit3 (RecoverAlternatePathWithJetInit3) and ESE's
 * rstmap.cxx: recovery with a JET_RSTINFO whose rgrstmap moves the
 * database replays its log into the new file and leaves the old path
 * alone.  When the replay starts after the database's creation (here at
 * the checkpoint), the file must be at the new path first: a missing one
 * is JET_errFileNotFound naming it, with nothing changed.
 * lgposStop/logtimeStop must be zero.
 */
static void test_jetinit3_restore_map(void)
{
    char dir[1024], db[1100], moved[1200];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_init3"));
    snprintf(db, sizeof db, "%s/database.edb", dir);
    snprintf(moved, sizeof moved, "%s.moved", db);
    JET_INSTANCE inst = start_instance("init3", dir, dir);
    create_database(inst, db, 200);
    put_key(inst, db, "k", "committed before the crash");
    /* A crash: the database file is behind its log. */
    CU_ASSERT(JetTerm2(inst, JET_bitTermAbrupt) >= 0);

    JET_RSTMAP map = {db, moved};
    JET_RSTINFO ri = {.cbStruct = sizeof ri, .rgrstmap = &map, .crstmap = 1, .pfnStatus = status_cb};
    static struct tu_dir_snap before;
    tu_snap_dir(dir, &before);
    /* The file is not at its new name yet. */
    JET_INSTANCE r = make_instance("init3-r0", dir, dir);
    TU_CHECK_ERR(JetInit3(&r, &ri, 0), JET_errFileNotFound);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), moved));
    tu_assert_dir_unchanged(dir, &before, NULL);
    /* A stop position is not offered. */
    JET_RSTINFO stop = ri;
    stop.lgposStop.lGeneration = 1;
    TU_CHECK_ERR(JetInit3(&r, &stop, 0), JET_errInvalidParameter);
    JET_RSTINFO nomap = {.cbStruct = sizeof nomap, .crstmap = 1};
    TU_CHECK_ERR(JetInit3(&r, &nomap, 0), JET_errInvalidParameter);
    tu_assert_dir_unchanged(dir, &before, NULL);

    CU_ASSERT_FATAL(rename(db, moved) == 0);
    status_reset(0);
    JET_ERR err = JetInit3(&r, &ri, 0);
    if (err < 0) fprintf(stderr, "JetInit3: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(st.begin == 1 && st.complete == 1 && st.bad == 0);
    CU_ASSERT(JetTerm(r) >= 0);
    CU_ASSERT(exists(moved));
    CU_ASSERT(!exists(db));
    check_database(dir, dir, moved, "k", "committed before the crash");
}

/* ---- point 8: JetExternalRestore's ranges ---- */

/*
 * ESE's logutil.cxx (ErrLGRSTExternalRestore, ErrLGIRSTCheckSignaturesLogSequence),
 * rstmap.cxx/ErrLGCheckDBFiles and jetapi.cxx (JetExternalRestoreEx): a
 * range starting after the set's first generation is -554, one ending
 * before its last -553, a generation not on disk -1811 naming the file,
 * JetExternalRestore2 without pLogInfo -1003, an unknown target instance
 * -577; each refusal changes nothing.
 */
static void test_external_restore_ranges(void)
{
    char dir[1024], live[1100], db[1200], bk[1100], work[1100], target[1100], copy[1300], p[1400];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_ranges"));
    snprintf(live, sizeof live, "%s/live", dir);
    snprintf(db, sizeof db, "%s/database.edb", live);
    snprintf(bk, sizeof bk, "%s/bk", dir);
    snprintf(work, sizeof work, "%s/work", dir);
    snprintf(target, sizeof target, "%s/target", dir);
    sh("mkdir -p '%s'%s", live, "");
    /* The checkpoint held back (period 10 min), so the set spans several
     * 64 KiB generations. */
    JET_INSTANCE inst = start_instance("ranges", live, live);
    create_database(inst, db, 600);
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, bk, 0, NULL), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
    sh("cp -r '%s' '%s'", bk, work);
    unsigned long g[256];
    int n = list_gens(work, g, 256);
    CU_ASSERT_FATAL(n >= 3);
    long lo = (long)g[0], hi = (long)g[n - 1];
    snprintf(copy, sizeof copy, "%s/database.edb", work);
    JET_RSTMAP map = {db, copy};

    static struct tu_dir_snap before;
    tu_snap_dir(work, &before);
    TU_CHECK_ERR(JetExternalRestore(target, target, &map, 1, work, lo + 1, hi, NULL), JET_errStartingRestoreLogTooHigh);
    TU_CHECK_ERR(JetExternalRestore(target, target, &map, 1, work, lo, hi - 1, NULL), JET_errEndingRestoreLogTooLow);
    JET_LOGINFO li = {sizeof li, (unsigned long)lo, (unsigned long)hi, "edb"};
    TU_CHECK_ERR(JetExternalRestore2(target, target, &map, 1, work, NULL, NULL, NULL, NULL, NULL),
                 JET_errInvalidParameter);
    TU_CHECK_ERR(JetExternalRestore2(target, target, &map, 1, work, &li, "no-such-instance", NULL, NULL, NULL),
                 JET_errBadRestoreTargetInstance);
    CU_ASSERT(!exists(target));
    tu_assert_dir_unchanged(work, &before, NULL);

    /* A generation of the range that is not on disk. */
    snprintf(p, sizeof p, "%s/edb%08lX.log", work, g[1]);
    char aside[1500];
    snprintf(aside, sizeof aside, "%s.aside", p);
    CU_ASSERT_FATAL(rename(p, aside) == 0);
    TU_CHECK_ERR(JetExternalRestore(target, target, &map, 1, work, lo, hi, NULL), JET_errFileNotFound);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), strrchr(p, '/') + 1));
    CU_ASSERT(!exists(target));
    CU_ASSERT_FATAL(rename(aside, p) == 0);
    tu_assert_dir_unchanged(work, &before, NULL);

    /* The right range restores. */
    JET_ERR err = JetExternalRestore2(target, target, &map, 1, work, &li, NULL, NULL, NULL, NULL);
    if (err < 0) fprintf(stderr, "JetExternalRestore2: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL(err, JET_errSuccess);
    check_database(target, target, copy, NULL, NULL);
}

/* ---- ManagedEsent's TestBackupRestore and TestJetInit3 ---- */

/*
 * DatabaseFileTestHelper.TestBackupRestore: CreateDatabase, BackupDatabase
 * (JetBackupInstance with a status callback), DeleteDatabaseFiles (the
 * whole directory), RestoreDatabase (JetRestoreInstance with no
 * destination, on a fresh instance of the same paths), CheckDatabase.
 */
static void managedesent_backup_restore(const char *sub)
{
    char dir[1024], dbdir[1200], db[1300], bk[1200];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_me_bkrst"));
    snprintf(dbdir, sizeof dbdir, "%s/%s", dir, sub);
    snprintf(db, sizeof db, "%s/database.edb", dbdir);
    snprintf(bk, sizeof bk, "%s/%s-backup", dir, sub);
    sh("mkdir -p '%s'%s", dbdir, "");
    JET_INSTANCE inst = start_instance("me-create", dbdir, dbdir);
    create_database(inst, db, 0);
    CU_ASSERT(JetTerm(inst) >= 0);

    inst = start_instance("me-backup", dbdir, dbdir);
    JET_SESID s;
    JET_DBID dbid;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetAttachDatabase(s, db, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(s, db, NULL, &dbid, 0) >= 0);
    status_reset(0);
    CU_ASSERT_EQUAL_FATAL(JetBackupInstance(inst, bk, 0, status_cb), JET_errSuccess);
    CU_ASSERT(st.begin + st.progress + st.complete > 0); /* "statusCallbackWasCalled" */
    CU_ASSERT(st.bad == 0);
    CU_ASSERT(JetEndSession(s, 0) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);

    sh("rm -rf '%s' && mkdir -p '%s'", dbdir, dbdir);

    JET_INSTANCE r = make_instance("me-restore", dbdir, dbdir);
    status_reset(0);
    JET_ERR err = JetRestoreInstance(r, bk, NULL, status_cb);
    if (err < 0) fprintf(stderr, "JetRestoreInstance: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(st.begin + st.progress + st.complete > 0 && st.bad == 0);
    CU_ASSERT(JetTerm(r) >= 0);

    check_database(dbdir, dbdir, db, NULL, NULL);
}

static void test_managedesent_backup_restore(void) { managedesent_backup_restore("database"); }
static void test_managedesent_backup_restore_non_ascii_path(void)
{
    managedesent_backup_restore("d\xc3\xa4tab\xc3\xa4se-\xe6\x95\xb0\xe6\x8d\xae");
}

/*
 * DatabaseFileTestHelper.TestJetInit3: CreateDatabase; attach and open it
 * in an instance that then terminates; the checkpoint deleted; JetInit3
 * with a JET_RSTINFO mapping database.edb to database.edb.moved and a
 * status callback, on a new instance of the same paths (log file size
 * 128); the new file exists and the old does not; it is moved back and
 * CheckDatabase passes.  The database is rebuilt from the log alone, at
 * its new name, from its creation on (LR_CREATE), as ESE replays createdb.
 */
static void managedesent_jetinit3(const char *sub)
{
    char dir[1024], dbdir[1200], db[1300], moved[1400], chk[1300];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_me_init3"));
    snprintf(dbdir, sizeof dbdir, "%s/%s", dir, sub);
    snprintf(db, sizeof db, "%s/database.edb", dbdir);
    snprintf(moved, sizeof moved, "%s.moved", db);
    snprintf(chk, sizeof chk, "%s/edb.chk", dbdir);
    sh("mkdir -p '%s'%s", dbdir, "");
    JET_INSTANCE inst = start_instance("me3-create", dbdir, dbdir);
    create_database(inst, db, 0);
    CU_ASSERT(JetTerm(inst) >= 0);
    inst = start_instance("me3-attach", dbdir, dbdir);
    JET_SESID s;
    JET_DBID dbid;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetAttachDatabase(s, db, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(s, db, NULL, &dbid, 0) >= 0);
    CU_ASSERT(JetEndSession(s, 0) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);

    /* Delete the database and checkpoint. */
    CU_ASSERT_FATAL(unlink(db) == 0);
    CU_ASSERT_FATAL(unlink(chk) == 0);

    JET_RSTMAP map = {db, moved};
    JET_RSTINFO ri = {.cbStruct = sizeof ri, .crstmap = 1, .pfnStatus = status_cb, .rgrstmap = &map};
    JET_INSTANCE r = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&r, "JetInit3") >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&r, 0, JET_paramLogFileSize, 128, NULL) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&r, 0, JET_paramLogFilePath, 0, dbdir) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&r, 0, JET_paramTempPath, 0, dbdir) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&r, 0, JET_paramSystemPath, 0, dbdir) >= 0);
    status_reset(0);
    JET_ERR err = JetInit3(&r, &ri, 0);
    if (err < 0) fprintf(stderr, "JetInit3: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(JetTerm(r) >= 0);
    CU_ASSERT(st.bad == 0);
    CU_ASSERT(exists(moved));
    CU_ASSERT(!exists(db));
    CU_ASSERT_FATAL(rename(moved, db) == 0);
    check_database(dbdir, dbdir, db, NULL, NULL);
}

static void test_managedesent_jetinit3(void) { managedesent_jetinit3("database"); }
static void test_managedesent_jetinit3_non_ascii_path(void)
{
    managedesent_jetinit3("d\xc3\xa4tab\xc3\xa4se-\xe6\x95\xb0\xe6\x8d\xae");
}

/* ---- EsentSerialize's ExternalBackup and ExternalRestore ---- */

/* Backup.BackupFile: open, read until the reported size, close. */
static void es_backup_file(JET_INSTANCE inst, const char *dest, const char *name)
{
    JET_HANDLE h;
    unsigned long lo, hi, got;
    CU_ASSERT_FATAL(JetOpenFileInstance(inst, name, &h, &lo, &hi) >= 0);
    unsigned long long remaining = (lo & 0xFFFFFFFFul) | ((unsigned long long)(hi & 0xFFFFFFFFul) << 32);
    char out[2400];
    snprintf(out, sizeof out, "%s/%s", dest, strrchr(name, '/') + 1);
    FILE *f = fopen(out, "wb");
    CU_ASSERT_FATAL(f != NULL);
    static char buf[256 * 1024];
    while (remaining > 0) {
        CU_ASSERT_FATAL(JetReadFileInstance(inst, h, buf, sizeof buf, &got) >= 0);
        CU_ASSERT_FATAL(got != 0); /* EndOfStreamException */
        CU_ASSERT_FATAL(fwrite(buf, 1, got, f) == got);
        remaining -= got;
    }
    fclose(f);
    CU_ASSERT(JetCloseFileInstance(inst, h) >= 0);
}

/* Backup.BackupFiles: list with a buffer grown x16 until it fits. */
static void es_backup_files(JET_INSTANCE inst, const char *dest, bool logs)
{
    unsigned long max = 1024, actual = 0;
    char *files = NULL;
    for (;;) {
        files = realloc(files, max);
        CU_ASSERT_FATAL(files != NULL);
        JET_ERR err = logs ? JetGetLogInfoInstance(inst, files, max, &actual)
                           : JetGetAttachInfoInstance(inst, files, max, &actual);
        CU_ASSERT_FATAL(err >= 0);
        if (actual < max) break;
        max *= 16;
    }
    int n = 0;
    for (const char *p = files; *p; p += strlen(p) + 1, n++) es_backup_file(inst, dest, p);
    CU_ASSERT(n >= 1);
    free(files);
}

/*
 * EsentSerialize Backup.ExternalBackup (BackupDatabaseImpl): begin; the
 * attached databases, then the logs, each read whole into the archive (a
 * directory here, where EsentSerialize writes a ZIP); an empty <db>.pat
 * entry; JetTruncateLogInstance; JetEndExternalBackupInstance.  Then
 * Backup.ExternalRestore: the archive extracted into a fresh directory and
 * StreamingRestore's JetRestoreInstance(instance, dir, databasePath,
 * progress) on an instance not yet initialised; the directory deleted.
 */
static void test_esentserialize_external_backup_restore(void)
{
    char dir[1024], live[1100], db[1200], archive[1100], extracted[1100], restored[1100], rdb[1200], p[1300];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_serialize"));
    snprintf(live, sizeof live, "%s/live", dir);
    snprintf(db, sizeof db, "%s/database.edb", live);
    snprintf(archive, sizeof archive, "%s/archive", dir);
    snprintf(extracted, sizeof extracted, "%s/extracted", dir);
    snprintf(restored, sizeof restored, "%s/restored", dir);
    sh("mkdir -p '%s' '%s'", live, archive);
    JET_INSTANCE inst = start_instance("es", live, live);
    create_database(inst, db, 300);
    put_key(inst, db, "serialized", "yes");

    CU_ASSERT_FATAL(JetBeginExternalBackupInstance(inst, 0) >= 0);
    es_backup_files(inst, archive, false);
    es_backup_files(inst, archive, true);
    snprintf(p, sizeof p, "%s/database.pat", archive);
    sh("touch '%s'%s", p, "");
    CU_ASSERT_EQUAL(JetTruncateLogInstance(inst), JET_errSuccess);
    CU_ASSERT_EQUAL(JetEndExternalBackupInstance(inst), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);

    sh("mkdir -p '%s'%s", extracted, "");
    sh("cp '%s'/* '%s'/", archive, extracted);
    JET_INSTANCE r = make_instance("es-restore", restored, restored);
    JET_ERR err = JetRestoreInstance(r, extracted, restored, status_cb);
    if (err < 0) fprintf(stderr, "JetRestoreInstance: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(JetTerm(r) >= 0);
    sh("rm -rf '%s'%s", extracted, "");
    snprintf(rdb, sizeof rdb, "%s/database.edb", restored);
    check_database(restored, restored, rdb, "serialized", "yes");
}

/*
 * The same streaming backup, copied by the client itself (no
 * backup.manifest), restored with no destination: as ESE's, each database
 * goes back to its original path, which its header recorded at attach,
 * and the status callback is called.
 */
static void test_streamed_set_restores_to_the_original_path(void)
{
    char dir[1024], live[1100], db[1200], archive[1100];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_streamed_orig"));
    snprintf(live, sizeof live, "%s/live", dir);
    snprintf(db, sizeof db, "%s/database.edb", live);
    snprintf(archive, sizeof archive, "%s/archive", dir);
    sh("mkdir -p '%s' '%s'", live, archive);
    JET_INSTANCE inst = start_instance("so", live, live);
    create_database(inst, db, 300);
    put_key(inst, db, "where", "back home");
    CU_ASSERT_FATAL(JetBeginExternalBackupInstance(inst, 0) >= 0);
    es_backup_files(inst, archive, false);
    es_backup_files(inst, archive, true);
    CU_ASSERT_EQUAL(JetTruncateLogInstance(inst), JET_errSuccess);
    CU_ASSERT_EQUAL(JetEndExternalBackupInstance(inst), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
    CU_ASSERT(!exists(strcat(strcpy((char[1200]){0}, archive), "/backup.manifest")));
    /* The machine is lost: the instance's whole directory goes. */
    sh("rm -rf '%s' && mkdir -p '%s'", live, live);
    JET_INSTANCE r = make_instance("so-restore", live, live);
    status_reset(0);
    JET_ERR err = JetRestoreInstance(r, archive, NULL, status_cb);
    if (err < 0) fprintf(stderr, "JetRestoreInstance: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT(st.begin + st.progress + st.complete > 0 && st.bad == 0);
    CU_ASSERT(JetTerm(r) >= 0);
    CU_ASSERT_FATAL(exists(db));
    check_database(live, live, db, "where", "back home");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("ese_restore", NULL, NULL);
    if (!su) return 2;
    CU_add_test(su, "test_directory_backup", test_directory_backup);
    CU_add_test(su, "test_directory_backup_refusals", test_directory_backup_refusals);
    CU_add_test(su, "test_restore_destinations", test_restore_destinations);
    CU_add_test(su, "test_jetinit3_restore_map", test_jetinit3_restore_map);
    CU_add_test(su, "test_external_restore_ranges", test_external_restore_ranges);
    CU_add_test(su, "test_managedesent_backup_restore", test_managedesent_backup_restore);
    CU_add_test(su, "test_managedesent_backup_restore_non_ascii_path", test_managedesent_backup_restore_non_ascii_path);
    CU_add_test(su, "test_managedesent_jetinit3", test_managedesent_jetinit3);
    CU_add_test(su, "test_managedesent_jetinit3_non_ascii_path", test_managedesent_jetinit3_non_ascii_path);
    CU_add_test(su, "test_esentserialize_external_backup_restore", test_esentserialize_external_backup_restore);
    CU_add_test(su, "test_streamed_set_restores_to_the_original_path", test_streamed_set_restores_to_the_original_path);
    return tu_run();
}
