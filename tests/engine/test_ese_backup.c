/*
 * test_ese_backup.c -- issue 12, the streaming-backup side: code written
 * for ESE's backup API ports to jet.h with type changes only.  One test per
 * point of the issue, each naming the ESE function, source file or
 * ManagedEsent test it follows, then ManagedEsent's TestStreamingBackup and
 * TestStreamingBackup2 (with their ASCII-path variants) and EsentSerialize's
 * ExternalBackup re-expressed in C.  (EsentSerialize's StreamingBackup goes
 * through JetBackupInstance/JetRestoreInstance, the restore side's.)
 */
#include <errno.h>
#include <limits.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"

static char dir[1024], dbpath[1200];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;

/* Instance "ese" on d (system and log path), short checkpoint period. */
static JET_INSTANCE ese_instance(const char *name, const char *sys, const char *logs)
{
    /* A cache of 1024 pages: GenerateSomeLogs deletes its table in one transaction. */
    return tu_instance(name, sys, (struct tu_params){.log_kb = 256, .ckpt_ms = 20, .cache_pages = 1024, .log_dir = logs});
}

static void start(const char *name)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/e.db", dir);
    inst = ese_instance("ese", dir, dir);
    tu_table(inst, dbpath, 1, &s, &t);
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* The number of names in a multi-string. */
static int count_names(const char *szz)
{
    int n = 0;
    for (const char *p = szz; *p; p += strlen(p) + 1) n++;
    return n;
}

/* Reads a whole file of the set sequentially (JetReadFileInstance) into
 * out_dir/<its base name> (when out_dir), as backup software does. */
static void copy_file_out(JET_INSTANCE in, const char *name, const char *out_dir)
{
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0, got = 0;
    static char buf[65536];
    TU_CHECK_ERR(JetOpenFileInstance(in, name, &h, &lo, &hi), JET_errSuccess);
    FILE *f = NULL;
    if (out_dir) {
        char out[2600];
        const char *b = strrchr(name, '/');
        snprintf(out, sizeof out, "%s/%s", out_dir, b ? b + 1 : name);
        f = fopen(out, "wb");
        CU_ASSERT_FATAL(f != NULL);
    }
    unsigned long long size = lo | (unsigned long long)hi << 32, total = 0;
    JET_ERR err;
    while ((err = JetReadFileInstance(in, h, buf, sizeof buf, &got)) == JET_errSuccess && got) {
        if (f) CU_ASSERT_FATAL(fwrite(buf, 1, got, f) == got);
        total += got;
    }
    CU_ASSERT_EQUAL(err, JET_errSuccess);
    CU_ASSERT_EQUAL(total, size);
    if (f) fclose(f);
    TU_CHECK_ERR(JetCloseFileInstance(in, h), JET_errSuccess);
}

static int value_is(JET_SESID ss, JET_TABLEID tt, int k, char fill)
{
    char key[16], v[600];
    unsigned long n = 0;
    snprintf(key, sizeof key, "k%06d", k);
    if (JetRetrieveKV(ss, tt, key, strlen(key), v, sizeof v, &n, 0) < 0) return fill == 0;
    return n == 500 && v[0] == fill && v[499] == fill;
}

/* Restores set (database e.db + logs) in rdir with JetExternalRestore2 and
 * counts keys k0..k<n> whose value differs from want(k). */
static int restore_and_count_bad(const char *set, const char *rdir, JET_LOGINFO *li, int n, char (*want)(int))
{
    char cmd[8192], db[PATH_MAX];
    CU_ASSERT_FATAL(strlen(rdir) < 1300 && strlen(set) < 1300);
    snprintf(cmd, sizeof cmd, "rm -rf '%.1300s' && mkdir -p '%.1300s' && cp '%.1300s'/* '%.1300s/'", rdir, rdir, set,
             rdir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    snprintf(db, sizeof db, "%.1300s/e.db", rdir);
    JET_RSTMAP map = {dbpath, db};
    JET_ERR err = JetExternalRestore2((char *)rdir, (char *)rdir, &map, 1, (char *)rdir, li, NULL, NULL, NULL, NULL);
    if (err < 0) fprintf(stderr, "restore: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    JET_INSTANCE ri = ese_instance("eserestored", rdir, rdir);
    JET_SESID rs;
    JET_TABLEID rt;
    tu_table(ri, db, 0, &rs, &rt);
    int bad = 0;
    for (int k = 0; k < n; k++) bad += !value_is(rs, rt, k, want(k));
    JetTerm(ri);
    return bad;
}

/* ------------------------------------------------------------------ */
/* 1. Relative paths.  Follows ESE's ErrBKOpenFile (backup.cxx), which  */
/* completes the name with ErrPathComplete, and ManagedEsent's          */
/* streaming tests, which pass "database/database.edb".                 */
/* ------------------------------------------------------------------ */
static void test_relative_paths_are_completed(void)
{
    char cwd[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 64], names[8192];
    unsigned long cb = 0;
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("ese_relative"));
    CU_ASSERT_FATAL(chdir(dir) == 0);
    CU_ASSERT_FATAL(realpath(".", real) != NULL);
    CU_ASSERT_FATAL(mkdir("database", 0700) == 0);
    /* System and log paths relative too: the lists still name full paths. */
    inst = ese_instance("eserel", "sys", "logs");
    tu_table(inst, "database/database.edb", 1, &s, &t);
    tu_load(s, t, 0, 300, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    snprintf(want, sizeof want, "%s/database/database.edb", real);
    CU_ASSERT_STRING_EQUAL(names, want);
    CU_ASSERT_EQUAL(cb, strlen(want) + 2);
    /* Today's -1811 for the relative name is gone: it is the database. */
    copy_file_out(inst, "database/database.edb", NULL);
    copy_file_out(inst, "./database/../database//database.edb", NULL);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    CU_ASSERT(count_names(names) >= 1);
    snprintf(want, sizeof want, "%s/logs/", real);
    for (char *p = names; *p; p += strlen(p) + 1) {
        CU_ASSERT(strncmp(p, want, strlen(want)) == 0);
        /* and by the relative name the working directory gives */
        char rel[600];
        snprintf(rel, sizeof rel, "logs/%s", strrchr(p, '/') + 1);
        copy_file_out(inst, rel, NULL);
    }
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd;
    CU_ASSERT(JetInspectDatabaseHeader("database/database.edb", &hd) >= 0 && hd.backup[0].backup_id != 0);
    CU_ASSERT(JetTerm(inst) >= 0);
    CU_ASSERT_FATAL(chdir(cwd) == 0);
}

/* ------------------------------------------------------------------ */
/* 2. The log range is fixed at JetGetLogInfo, not at begin.  Follows   */
/* ESE's ErrBKIPrepareLogFiles (backup.cxx): the first GetLogInfo rolls */
/* the log and the set ends at the generation it closes.                */
/* ------------------------------------------------------------------ */
static char want_range(int k) { return k < 300 ? 'b' : k < 1000 ? 'a' : 0; }
static char want_mount(int k) { return k < 1000 ? 'a' : k < 1200 ? 'c' : 0; }

static void test_log_range_fixed_at_get_log_info(void)
{
    char set[1300], rdir[1300], names[65536];
    unsigned long cb = 0;
    start("ese_range");
    snprintf(set, sizeof set, "%s/set", dir);
    snprintf(rdir, sizeof rdir, "%s/restored", dir);
    CU_ASSERT_FATAL(mkdir(set, 0700) == 0);
    tu_load(s, t, 0, 1000, 'a');
    sleep_ms(100);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    /* The database image as served right after begin... */
    size_t n0 = 0;
    copy_file_out(inst, dbpath, set);
    char img[1400];
    snprintf(img, sizeof img, "%s/e.db", set);
    char *before = tu_slurp(img, &n0);
    CU_ASSERT_FATAL(before != NULL);
    /* ...commits after begin, written to the file by checkpoints... */
    tu_load(s, t, 0, 300, 'b');
    sleep_ms(200);
    size_t nl = 0;
    char *live = tu_slurp(dbpath, &nl);
    CU_ASSERT_FATAL(live != NULL);
    CU_ASSERT(nl != n0 || memcmp(live + 16384, before + 16384, n0 - 16384) != 0); /* the file did change */
    free(live);
    /* ...and still the begin-time image (copy-on-write), read again. */
    copy_file_out(inst, dbpath, set);
    size_t n1 = 0;
    char *after = tu_slurp(img, &n1);
    CU_ASSERT_FATAL(after != NULL);
    CU_ASSERT(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    /* GetLogInfo fixes the range now: the 'b' commits are in it. */
    JET_LOGINFO li = {.cbSize = sizeof li};
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    for (char *p = names; *p; p += strlen(p) + 1) copy_file_out(inst, p, set);
    tu_load(s, t, 1000, 1200, 'c'); /* after GetLogInfo: not in the set */
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    /* The restore replays the image forward through the 'b' commits. */
    CU_ASSERT_EQUAL(restore_and_count_bad(set, rdir, &li, 1200, want_range), 0);

    /* The mount's way: AnyOrder, GetLogInfo at once (when the set
     * directory is opened), databases read afterwards.  Its set is fixed
     * at that instant: the 'd' commits after it are not in it. */
    char set2[1300];
    snprintf(set2, sizeof set2, "%s/set2", dir);
    CU_ASSERT_FATAL(mkdir(set2, 0700) == 0);
    tu_load(s, t, 0, 1000, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupAnyOrder), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    tu_load(s, t, 0, 300, 'd');
    sleep_ms(100);
    copy_file_out(inst, dbpath, set2); /* a database after GetLogInfo: allowed with AnyOrder */
    for (char *p = names; *p; p += strlen(p) + 1) copy_file_out(inst, p, set2);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    CU_ASSERT_EQUAL(restore_and_count_bad(set2, rdir, &li, 1200, want_mount), 0);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* ------------------------------------------------------------------ */
/* 3. JetTruncateLog deletes at the call.  Follows ESE's                */
/* ErrBKTruncateLog (backup.cxx) -> ErrLGTruncateLog (logstream.cxx).   */
/* ------------------------------------------------------------------ */
static void test_truncate_log_deletes_at_the_call(void)
{
    char names[65536], del[65536];
    unsigned long cb = 0;
    start("ese_truncate");
    /* A completed full first, so that an incremental could follow it. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    copy_file_out(inst, names, NULL);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    for (char *p = names; *p; p += strlen(p) + 1) copy_file_out(inst, p, NULL);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    tu_load(s, t, 0, 1500, 'a'); /* several 256 KiB generations */
    sleep_ms(200);
    JET_INSPECT_DBHEADER h0 = {0}, h1 = {0};
    CU_ASSERT(JetInspectDatabaseHeader(dbpath, &h0) >= 0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    copy_file_out(inst, names, NULL);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    for (char *p = names; *p; p += strlen(p) + 1) copy_file_out(inst, p, NULL);
    sleep_ms(100); /* the checkpoint passes the closed generations */
    TU_CHECK_ERR(JetGetTruncateLogInfoInstance(inst, del, sizeof del, &cb), JET_errSuccess);
    CU_ASSERT_FATAL(count_names(del) >= 1);
    for (char *p = del; *p; p += strlen(p) + 1) CU_ASSERT(access(p, F_OK) == 0);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    /* Gone now, with the backup still running... */
    for (char *p = del; *p; p += strlen(p) + 1) CU_ASSERT(access(p, F_OK) != 0 && errno == ENOENT);
    /* ...and an abort brings nothing back and records nothing. */
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    for (char *p = del; *p; p += strlen(p) + 1) CU_ASSERT(access(p, F_OK) != 0);
    CU_ASSERT(JetInspectDatabaseHeader(dbpath, &h1) >= 0);
    CU_ASSERT(memcmp(h0.backup, h1.backup, sizeof h0.backup) == 0);
    /* The generations after the last recorded backup are gone, so the
     * chain is broken: as ESE, an incremental is refused until a full. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errMissingFileToBackup);
    CU_ASSERT(JetTerm(inst) >= 0);
    /* The instance still recovers: nothing it needed was deleted. */
    inst = ese_instance("ese2", dir, dir);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* ------------------------------------------------------------------ */
/* 4. Errors that end the backup.  Follows ESE's ErrBKOpenFile          */
/* (backup.cxx): its failure policy (a database-phase error fails that  */
/* file; a log-phase error ends the backup) and its -1203 for a name    */
/* that is no attached database in the database phase.                  */
/* ------------------------------------------------------------------ */
static void test_errors_that_end_the_backup(void)
{
    char names[65536], chk[1300], moved[1400];
    unsigned long cb = 0;
    JET_HANDLE h;
    start("ese_errors");
    tu_load(s, t, 0, 800, 'a');
    snprintf(chk, sizeof chk, "%s/edb.chk", dir);
    CU_ASSERT_FATAL(access(chk, F_OK) == 0);

    /* Database phase: not a database -> -1203, and the backup goes on. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(inst, "/no/such/file.edb", &h, NULL, NULL), JET_errDatabaseNotFound);
    TU_CHECK_ERR(JetOpenFileInstance(inst, chk, &h, NULL, NULL), JET_errDatabaseNotFound);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    copy_file_out(inst, dbpath, NULL);
    /* After GetLogInfo, a database open is -521 and ends the backup. */
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h, NULL, NULL), JET_errInvalidBackupSequence);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errNoBackup);
    TU_CHECK_ERR(JetOpenFileInstance(inst, names, &h, NULL, NULL), JET_errNoBackup);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errNoBackup);
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    CU_ASSERT(JetGetBackupStatusInstance(inst, &st) == JET_errSuccess && !st.fInProgress);

    /* Log phase: a log of the set missing from disk -> -569, ended. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    snprintf(moved, sizeof moved, "%.1200s.moved", names);
    CU_ASSERT_FATAL(rename(names, moved) == 0);
    TU_CHECK_ERR(JetOpenFileInstance(inst, names, &h, NULL, NULL), JET_errMissingFileToBackup);
    CU_ASSERT_FATAL(rename(moved, names) == 0);
    TU_CHECK_ERR(JetOpenFileInstance(inst, names, &h, NULL, NULL), JET_errNoBackup);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errNoBackup);

    /* Log phase: a name not on disk at all -> -569, ended too. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(inst, "/no/such/edbFFFFFFFF.log", &h, NULL, NULL), JET_errMissingFileToBackup);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errNoBackup);

    /* Log phase: a file that exists but is outside the set is refused
     * (the kept departure) and the backup goes on. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(inst, chk, &h, NULL, NULL), JET_errFileNotFound);
    copy_file_out(inst, names, NULL);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);

    /* An incremental is in its log phase from begin: a database open is
     * -521 and ends it. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    copy_file_out(inst, dbpath, NULL);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    for (char *p = names; *p; p += strlen(p) + 1) copy_file_out(inst, p, NULL);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h, NULL, NULL), JET_errInvalidBackupSequence);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errNoBackup);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* ------------------------------------------------------------------ */
/* 9. Begin before JetInit.  Follows ESE's JetBeginExternalBackupInstance */
/* (jetapi.cxx): APICALL_INST's gate answers JET_errNotInitialized      */
/* before the backup code is reached.                                   */
/* ------------------------------------------------------------------ */
static void test_begin_before_init_is_not_initialized(void)
{
    JET_INSTANCE early = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&early, "eseearly") >= 0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(early, 0), JET_errNotInitialized);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(early, JET_bitBackupIncremental), JET_errNotInitialized);
    JetTerm(early);
}

/* ------------------------------------------------------------------ */
/* 10. Short buffers.  Follows ESE's docs of JetGetAttachInfo and      */
/* JetGetLogInfo (no error, the actual size reported): min(cbMax, full) */
/* bytes of the list copied, the full size reported (jet.h departure 6). */
/* ------------------------------------------------------------------ */
typedef JET_ERR (*list_fn)(JET_INSTANCE, char *, unsigned long, unsigned long *);

static void check_short_buffers(const char *what, list_fn fn)
{
    char full[65536], buf[65536];
    unsigned long cbfull = 0, cb = 0;
    TU_CHECK_ERR(fn(inst, NULL, 0, &cbfull), JET_errSuccess); /* a probe gets the full size */
    TU_CHECK_ERR(fn(inst, full, sizeof full, &cb), JET_errSuccess);
    CU_ASSERT_EQUAL(cb, cbfull);
    CU_ASSERT_FATAL(cbfull >= 2 && cbfull < sizeof full);
    unsigned long cuts[] = {1, 2, 7, cbfull / 2, cbfull - 1, cbfull, cbfull + 10};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        unsigned long cbMax = cuts[i];
        memset(buf, 0x5A, sizeof buf);
        cb = 12345;
        TU_CHECK_ERR(fn(inst, buf, cbMax, &cb), JET_errSuccess);
        unsigned long n = cbMax < cbfull ? cbMax : cbfull;
        if (cb != cbfull) fprintf(stderr, "%s: cbMax %lu gave %lu, want %lu\n", what, cbMax, cb, cbfull);
        CU_ASSERT_EQUAL(cb, cbfull);
        CU_ASSERT(memcmp(buf, full, n) == 0);       /* the list's first bytes, cut anywhere */
        CU_ASSERT((unsigned char)buf[n] == 0x5A);  /* nothing written past them */
    }
}

static JET_ERR get_attach(JET_INSTANCE in, char *b, unsigned long cbMax, unsigned long *pcb)
{
    return JetGetAttachInfoInstance(in, b, cbMax, pcb);
}
static JET_ERR get_log(JET_INSTANCE in, char *b, unsigned long cbMax, unsigned long *pcb)
{
    return JetGetLogInfoInstance(in, b, cbMax, pcb);
}
static JET_ERR get_truncate(JET_INSTANCE in, char *b, unsigned long cbMax, unsigned long *pcb)
{
    return JetGetTruncateLogInfoInstance(in, b, cbMax, pcb);
}

static void test_short_buffers_get_the_first_bytes(void)
{
    start("ese_short");
    tu_load(s, t, 0, 1500, 'a');
    sleep_ms(100);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    check_short_buffers("GetAttachInfo", get_attach);
    check_short_buffers("GetLogInfo", get_log);
    sleep_ms(100);
    check_short_buffers("GetTruncateLogInfo", get_truncate);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* ------------------------------------------------------------------ */
/* 11. esent.h spellings (jethdr.w): these declarations are esent.h's,  */
/* and compile unchanged.                                               */
/* ------------------------------------------------------------------ */
static int status_calls;
static JET_ERR JET_API esent_status(JET_SESID sesid, JET_SNP snp, JET_SNT snt, void *pv)
{
    (void)sesid, (void)snp, (void)snt, (void)pv;
    status_calls++;
    return JET_errSuccess;
}
static JET_ERR JET_API esent_attach(JET_SESID sesid, JET_PCSTR szFilename)
{
    return JetAttachDatabaseA(sesid, szFilename, 0);
}

static void test_esent_spellings(void)
{
    JET_PFNSTATUS pfn = esent_status;
    CU_ASSERT_PTR_NOT_NULL(pfn);
    CU_ASSERT_EQUAL(JET_sntBeginUndo, 1005);
    CU_ASSERT_EQUAL(JET_snpBackup, 9);
    CU_ASSERT_EQUAL(JET_wrnDatabaseAttached, 1007);
    CU_ASSERT_EQUAL(JET_errBackupDirectoryNotEmpty, -504);
    CU_ASSERT_EQUAL(JET_errDatabasePatchFileMismatch, -552);
    CU_ASSERT_EQUAL(JET_errSurrogateBackupInProgress, -617);
    CU_ASSERT_EQUAL(JET_errClientRequestToStopJetService, -1329);
    CU_ASSERT_EQUAL(JET_errCallbackFailed, -2101);
    CU_ASSERT_EQUAL(JET_bitBackupFullWithAllLogs, 0x8);
    CU_ASSERT_EQUAL(JET_bitBackupSurrogate, 0x20);
    CU_ASSERT_EQUAL(JET_bitBackupNoDbHeaderUpdate, 0x200);
    JET_ERR codes[] = {-504, -552, -617, -1329, -2101, 1007};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        CU_ASSERT(strncmp(JetErrorString(codes[i]), "unknown", 7) != 0);

    start("ese_spellings");
    /* The warning the engine returns for a second attach is esent.h's 1007. */
    JET_PSTR name = dbpath;
    TU_CHECK_ERR(esent_attach(s, name), JET_wrnDatabaseAttached);
    /* The grbits: defined, and refused where not supported. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupSurrogate), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupFullWithAllLogs), JET_errInvalidGrbit);
    /* NoDbHeaderUpdate at End: a complete truncating full records no history. */
    tu_load(s, t, 0, 500, 'a');
    JET_INSPECT_DBHEADER h0 = {0}, h1 = {0};
    CU_ASSERT(JetInspectDatabaseHeader(dbpath, &h0) >= 0);
    char names[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstanceA(inst, names, sizeof names, &cb), JET_errSuccess);
    copy_file_out(inst, names, NULL);
    JET_LOGINFO_A li = {.cbSize = sizeof li};
    TU_CHECK_ERR(JetGetLogInfoInstance2A(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    for (char *p = names; *p; p += strlen(p) + 1) copy_file_out(inst, p, NULL);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal | JET_bitBackupNoDbHeaderUpdate),
                 JET_errSuccess);
    CU_ASSERT(JetInspectDatabaseHeader(dbpath, &h1) >= 0);
    CU_ASSERT(memcmp(h0.backup, h1.backup, sizeof h0.backup) == 0);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* ------------------------------------------------------------------ */
/* 12. The kept departures (jet.h lists them with their reasons).       */
/* ------------------------------------------------------------------ */
static void test_kept_departures(void)
{
    char names[65536], a[10000], b[10000];
    unsigned long cb = 0, lo = 0, hi = 0, got = 0;
    JET_HANDLE h1, h2;
    start("ese_departures");
    tu_load(s, t, 0, 500, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    /* 1: many handles at once (ESE: the second is -1011), reads of any
     * size at any offset (ESE: page multiples, sequentially). */
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h1, &lo, &hi), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h2, NULL, NULL), JET_errSuccess);
    CU_ASSERT_FATAL(lo > 20000);
    TU_CHECK_ERR(JetReadFileAtInstance(inst, h1, 12345, a, 9999, &got), JET_errSuccess);
    CU_ASSERT_EQUAL(got, 9999);
    TU_CHECK_ERR(JetReadFileAtInstance(inst, h2, 12345, b, 9999, &got), JET_errSuccess);
    CU_ASSERT(memcmp(a, b, 9999) == 0);
    TU_CHECK_ERR(JetCloseFileInstance(inst, h1), JET_errSuccess);
    TU_CHECK_ERR(JetCloseFileInstance(inst, h2), JET_errSuccess);
    /* 2: a file outside the set is refused, never opened. */
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    TU_CHECK_ERR(JetOpenFileInstance(inst, "/etc/hostname", &h1, NULL, NULL),
                 access("/etc/hostname", F_OK) == 0 ? JET_errFileNotFound : JET_errMissingFileToBackup);
    /* 4: unknown End bits are refused (the backup goes on). */
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal | 0x400), JET_errInvalidParameter);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    /* 3: surrogate backups are refused. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupSurrogate), JET_errInvalidGrbit);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* ------------------------------------------------------------------ */
/* ManagedEsent's DatabaseFileTestHelper (InteropApiTests), in C:       */
/* CreateDatabase, StreamingBackup / StreamingBackup2, CheckDatabase,   */
/* on the relative directory "database" those tests use.                */
/* ------------------------------------------------------------------ */
#define ME_DB "database/database.edb"

static void me_create_database(void)
{
    JET_INSTANCE in = ese_instance("mecreate", "database", "database");
    JET_SESID ss;
    JET_DBID db;
    JET_TABLEID tt;
    CU_ASSERT_FATAL(JetBeginSessionA(in, &ss, "", "") >= 0);
    CU_ASSERT_FATAL(JetCreateDatabaseA(ss, ME_DB, "", &db, 0) >= 0);
    CU_ASSERT_FATAL(JetBeginTransaction(ss) >= 0);
    CU_ASSERT_FATAL(JetCreateTableA(ss, db, "table", 1, 100, &tt) >= 0);
    int v = 17;
    CU_ASSERT_FATAL(JetPutKV(ss, tt, "column", 6, &v, sizeof v, 0) >= 0);
    CU_ASSERT_FATAL(JetCommitTransaction(ss, 0) >= 0);
    CU_ASSERT(JetTerm(in) >= 0);
}

static void me_check_database(void)
{
    JET_INSTANCE in = ese_instance("mecheck", "database", "database");
    JET_SESID ss;
    JET_DBID db;
    JET_TABLEID tt;
    int v = 0;
    unsigned long n = 0;
    CU_ASSERT_FATAL(JetBeginSession(in, &ss, "", "") >= 0);
    JET_ERR err = JetAttachDatabase(ss, ME_DB, 0);
    CU_ASSERT(err == JET_errSuccess || err == JET_wrnDatabaseAttached);
    CU_ASSERT_FATAL(JetOpenDatabase(ss, ME_DB, "", &db, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(ss, db, "table", NULL, 0, 0, &tt) >= 0);
    TU_CHECK_ERR(JetRetrieveKV(ss, tt, "column", 6, &v, sizeof v, &n, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(v, 17);
    CU_ASSERT(JetTerm(in) >= 0);
}

/* ManagedEsent's GenerateSomeLogs: enough commits to roll generations,
 * so the name lists carry embedded NULs. */
static void me_generate_some_logs(JET_SESID ss, JET_DBID db)
{
    JET_TABLEID junk;
    static char data[1023];
    CU_ASSERT_FATAL(JetCreateTable(ss, db, "junk", 1, 100, &junk) >= 0);
    for (int i = 0; i < 600; i++) {
        char key[16];
        snprintf(key, sizeof key, "%06d", i);
        CU_ASSERT_FATAL(JetBeginTransaction(ss) >= 0);
        CU_ASSERT_FATAL(JetPutKV(ss, junk, key, 6, data, sizeof data, 0) >= 0);
        CU_ASSERT_FATAL(JetCommitTransaction(ss, JET_bitCommitLazyFlush) >= 0);
    }
    CU_ASSERT(JetCloseTable(ss, junk) >= 0);
    JET_ERR err = JetDeleteTable(ss, db, "junk");
    if (err < 0) fprintf(stderr, "JetDeleteTable(junk): %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT(err >= 0);
}

/* ReadFile(instance, file) of the helper: open, read 64 KiB until 0, close. */
static void me_read_file(JET_INSTANCE in, const char *file, int ascii)
{
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0, got = 0;
    static char buffer[64 * 1024];
    JET_ERR err = ascii ? JetOpenFileInstanceA(in, file, &h, &lo, &hi) : JetOpenFileInstance(in, file, &h, &lo, &hi);
    TU_CHECK_ERR(err, JET_errSuccess);
    do TU_CHECK_ERR(JetReadFileInstance(in, h, buffer, sizeof buffer, &got), JET_errSuccess);
    while (got > 0);
    TU_CHECK_ERR(JetCloseFileInstance(in, h), JET_errSuccess);
}

/* "actualChars doesn't give the length of filelist": the size counts
 * every name's NUL and the final one. */
static void me_check_list(const char *list, unsigned long cb)
{
    size_t n = 0;
    for (const char *p = list; *p; p += strlen(p) + 1) n += strlen(p) + 1;
    CU_ASSERT_EQUAL(cb, n + 1);
}

static void me_streaming_backup(int ascii)
{
    JET_INSTANCE in = ese_instance("mebackup", "database", "database");
    JET_SESID ss;
    JET_DBID db;
    char filelist[4096];
    unsigned long cb = 0;
    CU_ASSERT_FATAL(JetBeginSession(in, &ss, "", "") >= 0);
    JET_ERR err = ascii ? JetAttachDatabaseA(ss, ME_DB, 0) : JetAttachDatabase(ss, ME_DB, 0);
    CU_ASSERT(err == JET_errSuccess || err == JET_wrnDatabaseAttached);
    CU_ASSERT_FATAL(JetOpenDatabase(ss, ME_DB, "", &db, 0) >= 0);
    me_generate_some_logs(ss, db);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    /* Get list of databases */
    err = ascii ? JetGetAttachInfoInstanceA(in, filelist, sizeof filelist, &cb)
                : JetGetAttachInfoInstance(in, filelist, sizeof filelist, &cb);
    TU_CHECK_ERR(err, JET_errSuccess);
    me_check_list(filelist, cb);
    CU_ASSERT_EQUAL(count_names(filelist), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(filelist, ME_DB));
    /* Backup the database, by the relative name */
    me_read_file(in, ME_DB, ascii);
    /* Get list of logs */
    err = ascii ? JetGetLogInfoInstanceA(in, filelist, sizeof filelist, &cb)
                : JetGetLogInfoInstance(in, filelist, sizeof filelist, &cb);
    TU_CHECK_ERR(err, JET_errSuccess);
    me_check_list(filelist, cb);
    CU_ASSERT(count_names(filelist) >= 1); /* "Expected at least one log" */
    for (char *p = filelist; *p; p += strlen(p) + 1) me_read_file(in, p, ascii);
    /* Get list of logs to truncate (may be empty) */
    err = ascii ? JetGetTruncateLogInfoInstanceA(in, filelist, sizeof filelist, &cb)
                : JetGetTruncateLogInfoInstance(in, filelist, sizeof filelist, &cb);
    TU_CHECK_ERR(err, JET_errSuccess);
    me_check_list(filelist, cb);
    TU_CHECK_ERR(JetTruncateLogInstance(in), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(in), JET_errSuccess);
    CU_ASSERT(JetTerm(in) >= 0);
}

static void me_streaming_backup2(int ascii)
{
    JET_INSTANCE in = ese_instance("mebackup2", "database", "database");
    JET_SESID ss;
    JET_DBID db;
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0, got = 0;
    static char buffer[64 * 1024];
    CU_ASSERT_FATAL(JetBeginSession(in, &ss, "", "") >= 0);
    JET_ERR err = JetAttachDatabase(ss, ME_DB, 0);
    CU_ASSERT(err == JET_errSuccess || err == JET_wrnDatabaseAttached);
    CU_ASSERT_FATAL(JetOpenDatabaseA(ss, ME_DB, "", &db, 0) >= 0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    err = ascii ? JetOpenFileInstanceA(in, ME_DB, &h, &lo, &hi) : JetOpenFileInstance(in, ME_DB, &h, &lo, &hi);
    TU_CHECK_ERR(err, JET_errSuccess);
    TU_CHECK_ERR(JetReadFileInstance(in, h, buffer, sizeof buffer, &got), JET_errSuccess);
    CU_ASSERT(got > 0);
    TU_CHECK_ERR(JetCloseFileInstance(in, h), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndNormal), JET_errSuccess);
    CU_ASSERT(JetTerm(in) >= 0);
}

static void managed_esent(const char *name, void (*backup)(int), int ascii)
{
    char cwd[PATH_MAX];
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    CU_ASSERT_FATAL(chdir(tu_scratch_dir(name)) == 0);
    me_create_database();
    backup(ascii);
    me_check_database();
    CU_ASSERT_FATAL(chdir(cwd) == 0);
}

static void test_managed_esent_streaming_backup(void) { managed_esent("me_sb", me_streaming_backup, 0); }
static void test_managed_esent_streaming_backup_ascii(void) { managed_esent("me_sba", me_streaming_backup, 1); }
static void test_managed_esent_streaming_backup2(void) { managed_esent("me_sb2", me_streaming_backup2, 0); }
static void test_managed_esent_streaming_backup2_ascii(void) { managed_esent("me_sb2a", me_streaming_backup2, 1); }

/* ------------------------------------------------------------------ */
/* EsentSerialize's Backup.ExternalBackup (BackupDatabaseImpl,          */
/* BackupFiles, BackupFile), in C, with a directory for its ZIP archive: */
/* the name lists are fetched with a buffer grown 16-fold while the     */
/* answer fills it (actual >= max: true of ESE's min(cbMax, full) and   */
/* of jetfs's full size alike), each                                    */
/* file read to its announced size in 256 KiB reads.                     */
/* ------------------------------------------------------------------ */
static char *es_list_files(JET_ERR (*list)(JET_INSTANCE, char *, unsigned long, unsigned long *), int *prounds)
{
    unsigned long maxChars = 16, actualChars = 0;
    char *files = NULL;
    for (*prounds = 1;; (*prounds)++) {
        free(files);
        files = malloc(maxChars + 1);
        CU_ASSERT_FATAL(files != NULL);
        files[maxChars] = '\0';
        TU_CHECK_ERR(list(inst, files, maxChars, &actualChars), JET_errSuccess);
        if (actualChars < maxChars) break;
        maxChars *= 16;
    }
    return files;
}

static void es_backup_file(const char *name, const char *archive)
{
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0;
    static char buff[256 * 1024];
    TU_CHECK_ERR(JetOpenFileInstance(inst, name, &h, &lo, &hi), JET_errSuccess);
    unsigned long long remaining = lo | (unsigned long long)hi << 32;
    char out[2600];
    snprintf(out, sizeof out, "%s/%s", archive, strrchr(name, '/') + 1);
    FILE *f = fopen(out, "wb");
    CU_ASSERT_FATAL(f != NULL);
    while (remaining > 0) {
        unsigned long cbRead = 0;
        TU_CHECK_ERR(JetReadFileInstance(inst, h, buff, sizeof buff, &cbRead), JET_errSuccess);
        CU_ASSERT_FATAL(cbRead != 0); /* EndOfStreamException */
        CU_ASSERT_FATAL(fwrite(buff, 1, cbRead, f) == cbRead);
        remaining -= cbRead;
    }
    fclose(f);
    TU_CHECK_ERR(JetCloseFileInstance(inst, h), JET_errSuccess);
}

static char want_es(int k) { return k < 1200 ? 'e' : 0; }

static void test_esent_serialize_external_backup(void)
{
    char archive[1300], rdir[1300];
    int rounds = 0;
    start("es_external");
    snprintf(archive, sizeof archive, "%s/archive", dir);
    snprintf(rdir, sizeof rdir, "%s/restored", dir);
    CU_ASSERT_FATAL(mkdir(archive, 0700) == 0);
    tu_load(s, t, 0, 1200, 'e');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    char *files = es_list_files(get_attach, &rounds);
    CU_ASSERT(rounds >= 2); /* 16 bytes never hold a full path */
    for (char *p = files; *p; p += strlen(p) + 1) es_backup_file(p, archive);
    free(files);
    files = es_list_files(get_log, &rounds);
    CU_ASSERT(rounds >= 2);
    for (char *p = files; *p; p += strlen(p) + 1) es_backup_file(p, archive);
    free(files);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
    /* ExternalRestore names the archive's log range (JetExternalRestore2
     * with no JET_LOGINFO is -1003, as ESE): the generations it copied. */
    JET_LOGINFO li = {.cbSize = sizeof li, .ulGenLow = 0xffffffffu, .szBaseName = "edb"};
    DIR *d = opendir(archive);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned long g;
        char tail[8];
        if (sscanf(e->d_name, "edb%8lx.%3s", &g, tail) == 2 && !strcmp(tail, "log")) {
            if (g < li.ulGenLow) li.ulGenLow = g;
            if (g > li.ulGenHigh) li.ulGenHigh = g;
        }
    }
    if (d) closedir(d);
    CU_ASSERT_FATAL(li.ulGenHigh >= li.ulGenLow);
    CU_ASSERT_EQUAL(restore_and_count_bad(archive, rdir, &li, 1300, want_es), 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("ese_backup", NULL, NULL);
#define ADD(fn) CU_add_test(su, #fn, fn)
    ADD(test_relative_paths_are_completed);
    ADD(test_log_range_fixed_at_get_log_info);
    ADD(test_truncate_log_deletes_at_the_call);
    ADD(test_errors_that_end_the_backup);
    ADD(test_begin_before_init_is_not_initialized);
    ADD(test_short_buffers_get_the_first_bytes);
    ADD(test_esent_spellings);
    ADD(test_kept_departures);
    ADD(test_managed_esent_streaming_backup);
    ADD(test_managed_esent_streaming_backup_ascii);
    ADD(test_managed_esent_streaming_backup2);
    ADD(test_managed_esent_streaming_backup2_ascii);
    ADD(test_esent_serialize_external_backup);
    return tu_run();
}
