/*
 * test_ese_paths.c -- issue 25, points 1 and 3: a backup client written
 * against ESE's streaming API completes a backup and a restore however its
 * paths are spelt (none set, relative, with "." and "..", through symbolic
 * links), and the name lists and the restore's range answer as ESE's.
 *
 * Tests that depend on the working directory run in a forked child, which
 * chdirs into a directory reached through a symbolic link and reports by
 * its exit status (CHILD_* below print what failed); the parent's working
 * directory is never changed.  Legacy mode (JetInit(NULL), the
 * instance-less calls) is a process-wide state, so the child is also the
 * place for a whole backup by a process that sets no path at all.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jet.h"
#include "path.h"
#include "testutil.h"

/* ---- a child's checks: print, then exit 1 (no CUnit in the child) ---- */

#define CHILD_CHECK(cond)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "child %s:%d: %s failed\n", __FILE__, __LINE__, #cond);        \
            _exit(1);                                                                      \
        }                                                                                  \
    } while (0)
#define CHILD_ERR(call, want)                                                              \
    do {                                                                                   \
        JET_ERR e_ = (call);                                                               \
        if (e_ != (want)) {                                                                \
            fprintf(stderr, "child %s:%d: %s = %ld, want %ld (%s)\n", __FILE__, __LINE__, \
                    #call, (long)e_, (long)(want), JetGetLastErrorDetail());               \
            _exit(1);                                                                      \
        }                                                                                  \
    } while (0)

/* Runs fn(arg) in a child process; the test fails unless it exits 0. */
static void in_child(void (*fn)(const char *), const char *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    int st = 0;
    CU_ASSERT_FATAL(waitpid(pid, &st, 0) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fprintf(stderr, "child status %d\n", st);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* <scratch>/real and <scratch>/link -> real; the child's cwd is the link. */
static void enter_linked_dir(const char *scratch, char *real, size_t cb)
{
    char link[PATH_MAX];
    snprintf(real, cb, "%s/real", scratch);
    snprintf(link, sizeof link, "%s/link", scratch);
    CHILD_CHECK(mkdir(real, 0700) == 0);
    CHILD_CHECK(symlink("real", link) == 0);
    CHILD_CHECK(chdir(link) == 0);
    char rp[PATH_MAX];
    CHILD_CHECK(realpath(real, rp) != NULL);
    snprintf(real, cb, "%s", rp);
}

/* A canonical name: absolute, no "." or ".." component, no "//". */
static int canonical(const char *p)
{
    return p[0] == '/' && !strstr(p, "/./") && !strstr(p, "/../") && !strstr(p, "//") &&
           strcmp(p + strlen(p) - 2, "/.") != 0;
}

/* The directory part of p equals dir. */
static int in_dir(const char *p, const char *dir)
{
    const char *s = strrchr(p, '/');
    return s && (size_t)(s - p) == strlen(dir) && strncmp(p, dir, strlen(dir)) == 0;
}

/* ---- the database the tests back up ---- */

static void put_keys(JET_SESID s, JET_TABLEID t, int from, int to, char fill)
{
    char k[32], v[500];
    memset(v, fill, sizeof v);
    for (int i = from; i < to; i += 50) {
        CHILD_ERR(JetBeginTransaction(s), JET_errSuccess);
        for (int j = i; j < i + 50 && j < to; j++) {
            int n = snprintf(k, sizeof k, "k%06d", j);
            CHILD_ERR(JetPutKV(s, t, k, (unsigned long)n, v, sizeof v, 0), JET_errSuccess);
        }
        CHILD_ERR(JetCommitTransaction(s, 0), JET_errSuccess);
    }
}

/* Key k%06d of table t holds 500 bytes of fill, or is absent when fill
 * is 0. */
static void check_key(JET_SESID s, JET_TABLEID t, int i, char fill)
{
    char k[32], v[600];
    unsigned long cb = 0;
    int n = snprintf(k, sizeof k, "k%06d", i);
    JET_ERR err = JetRetrieveKV(s, t, k, (unsigned long)n, v, sizeof v, &cb, 0);
    if (!fill) {
        CHILD_ERR(err, JET_errRecordNotFound);
        return;
    }
    CHILD_ERR(err, JET_errSuccess);
    CHILD_CHECK(cb == 500 && v[0] == fill && v[499] == fill);
}

/* ---- a backup client, as one is written against ESE's API ---- */

typedef JET_ERR (*list_fn)(JET_INSTANCE, char *, unsigned long, unsigned long *);

static JET_ERR attach_list(JET_INSTANCE in, char *b, unsigned long cbMax, unsigned long *pcb)
{
    return in ? JetGetAttachInfoInstance(in, b, cbMax, pcb) : JetGetAttachInfo(b, cbMax, pcb);
}
static JET_ERR loginfo_list(JET_INSTANCE in, char *b, unsigned long cbMax, unsigned long *pcb)
{
    return in ? JetGetLogInfoInstance(in, b, cbMax, pcb) : JetGetLogInfo(b, cbMax, pcb);
}
static JET_ERR truncate_list(JET_INSTANCE in, char *b, unsigned long cbMax, unsigned long *pcb)
{
    return JetGetTruncateLogInfoInstance(in, b, cbMax, pcb);
}

/* A list fetched as ESE's docs advise: probe its size, then fetch it. */
static char *fetch_list(JET_INSTANCE in, list_fn fn)
{
    unsigned long cb = 0, cb2 = 0;
    CHILD_ERR(fn(in, NULL, 0, &cb), JET_errSuccess);
    CHILD_CHECK(cb >= 1);
    char *szz = malloc(cb);
    CHILD_CHECK(szz != NULL);
    CHILD_ERR(fn(in, szz, cb, &cb2), JET_errSuccess);
    CHILD_CHECK(cb2 == cb && szz[cb - 1] == '\0');
    return szz;
}

/* Opens name exactly as given and copies it whole to dest/<base name>
 * (dest NULL: read and drop). */
static void copy_out(JET_INSTANCE in, const char *name, const char *dest)
{
    static char buf[65536];
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0, got = 0;
    CHILD_ERR(in ? JetOpenFileInstance(in, name, &h, &lo, &hi) : JetOpenFile(name, &h, &lo, &hi), JET_errSuccess);
    FILE *f = NULL;
    if (dest) {
        char out[PATH_MAX + 64];
        snprintf(out, sizeof out, "%s/%s", dest, strrchr(name, '/') + 1);
        CHILD_CHECK((f = fopen(out, "wb")) != NULL);
    }
    unsigned long long total = 0;
    JET_ERR err;
    while ((err = in ? JetReadFileInstance(in, h, buf, sizeof buf, &got) : JetReadFile(h, buf, sizeof buf, &got)) ==
               JET_errSuccess &&
           got) {
        if (f) CHILD_CHECK(fwrite(buf, 1, got, f) == got);
        total += got;
    }
    CHILD_ERR(err, JET_errSuccess);
    CHILD_CHECK(total == ((unsigned long long)hi << 32 | lo));
    if (f) CHILD_CHECK(fclose(f) == 0);
    CHILD_ERR(in ? JetCloseFileInstance(in, h) : JetCloseFile(h), JET_errSuccess);
}

/* Copies every name of a multi-string out, checking each is canonical and
 * in dir; returns how many. */
static int copy_all(JET_INSTANCE in, const char *szz, const char *dir, const char *dest)
{
    int n = 0;
    for (const char *p = szz; *p; p += strlen(p) + 1, n++) {
        copy_out(in, p, dest); /* the very name given opens (before: -1811) */
        if (!canonical(p) || !in_dir(p, dir)) fprintf(stderr, "child: name %s, directory expected %s\n", p, dir);
        CHILD_CHECK(canonical(p) && in_dir(p, dir));
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Point 1, end to end: a process that sets no system or log path       */
/* (legacy mode, the instance-less calls, ESE's defaults: the working   */
/* directory, reached here through a symbolic link) takes a full backup */
/* that truncates and is recorded, then an incremental, then restores   */
/* both with JetExternalRestore2 into another directory and reads the   */
/* data back, still setting no path.  Before issue 25 the logs were     */
/* listed as "<cwd>/./edb....log", which JetOpenFile refused (-1811), so */
/* JetTruncateLog was -616 and the incremental -560.                   */
/* ------------------------------------------------------------------ */
static void no_path_child(const char *scratch)
{
    char real[PATH_MAX], set[PATH_MAX + 16], rdir[PATH_MAX + 16];
    enter_linked_dir(scratch, real, sizeof real);
    snprintf(set, sizeof set, "%s/set", scratch);
    snprintf(rdir, sizeof rdir, "%s/restored", scratch);
    CHILD_CHECK(mkdir(set, 0700) == 0 && mkdir(rdir, 0700) == 0);
    /* Small generations, so the set spans several; no path parameter. */
    CHILD_ERR(JetSetSystemParameter(NULL, 0, JET_paramLogFileSize, 64, NULL), JET_errSuccess);
    CHILD_ERR(JetInit(NULL), JET_errSuccess);
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CHILD_ERR(JetBeginSession(0, &s, NULL, NULL), JET_errSuccess);
    CHILD_ERR(JetCreateDatabase(s, "database.edb", NULL, &db, 0), JET_errSuccess);
    CHILD_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errSuccess);
    put_keys(s, t, 0, 600, 'a');

    /* The full backup, by the instance-less calls. */
    CHILD_ERR(JetBeginExternalBackup(0), JET_errSuccess);
    char *dbs = fetch_list(0, attach_list);
    CHILD_CHECK(copy_all(0, dbs, real, set) == 1);
    free(dbs);
    put_keys(s, t, 600, 700, 'b'); /* after begin: in the set (issue 12) */
    char *logs = fetch_list(0, loginfo_list);
    CHILD_CHECK(copy_all(0, logs, real, set) >= 2);
    free(logs);
    CHILD_ERR(JetTruncateLog(), JET_errSuccess);
    CHILD_ERR(JetEndExternalBackup(), JET_errSuccess);

    /* The next incremental: the full was recorded. */
    put_keys(s, t, 700, 800, 'c');
    CHILD_ERR(JetBeginExternalBackup(JET_bitBackupIncremental), JET_errSuccess);
    logs = fetch_list(0, loginfo_list);
    CHILD_CHECK(copy_all(0, logs, real, set) >= 1);
    free(logs);
    CHILD_ERR(JetTruncateLog(), JET_errSuccess);
    CHILD_ERR(JetEndExternalBackup(), JET_errSuccess);
    CHILD_ERR(JetCloseTable(s, t), JET_errSuccess);
    CHILD_ERR(JetEndSession(s, 0), JET_errSuccess);
    CHILD_ERR(JetTerm(0), JET_errSuccess);

    /* The restore, from the restored directory, by relative names: the
     * set's files copied in, their whole range given. */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s'/* '%s'/", set, rdir);
    CHILD_CHECK(system(cmd) == 0);
    CHILD_CHECK(chdir(rdir) == 0);
    JET_LOGINFO li = {.cbSize = sizeof li, .szBaseName = "edb"};
    for (unsigned long g = 1; g < 4096; g++) {
        char p[64];
        snprintf(p, sizeof p, "edb%08lX.log", g);
        if (access(p, F_OK) != 0) continue;
        if (!li.ulGenLow) li.ulGenLow = g;
        li.ulGenHigh = g;
    }
    CHILD_CHECK(li.ulGenLow && li.ulGenHigh > li.ulGenLow);
    char orig[PATH_MAX + 16], copy[] = "database.edb", here[] = ".";
    snprintf(orig, sizeof orig, "%s/database.edb", real);
    JET_RSTMAP map = {orig, copy};
    CHILD_ERR(JetExternalRestore2(here, here, &map, 1, here, &li, NULL, NULL, NULL, NULL), JET_errSuccess);

    /* A fresh process state, still no path: the restored data. */
    CHILD_ERR(JetInit(NULL), JET_errSuccess);
    CHILD_ERR(JetBeginSession(0, &s, NULL, NULL), JET_errSuccess);
    CHILD_ERR(JetAttachDatabase(s, "database.edb", 0), JET_errSuccess);
    CHILD_ERR(JetOpenDatabase(s, "database.edb", NULL, &db, 0), JET_errSuccess);
    CHILD_ERR(JetOpenTable(s, db, "t", NULL, 0, 0, &t), JET_errSuccess);
    check_key(s, t, 0, 'a');
    check_key(s, t, 650, 'b');
    check_key(s, t, 750, 'c');
    check_key(s, t, 800, 0);
    CHILD_ERR(JetCloseTable(s, t), JET_errSuccess);
    CHILD_ERR(JetEndSession(s, 0), JET_errSuccess);
    CHILD_ERR(JetTerm(0), JET_errSuccess);
}

static void test_no_path_streaming_backup_and_restore_through_symlinked_cwd(void)
{
    in_child(no_path_child, tu_scratch_dir("paths_nopath"));
}

/* ------------------------------------------------------------------ */
/* Point 1, every spelling: whatever the parameters say (relative,     */
/* with "." and "..", through a link to the log directory), the lists  */
/* give canonical names, and every name of the same file opens it:    */
/* relative, "./", "../link/", through a directory link, through a     */
/* link to the file itself, with "sub/..".                              */
/* A name of another file is still refused.                             */
/* ------------------------------------------------------------------ */
static void spellings_child(const char *scratch)
{
    char real[PATH_MAX], logdir[PATH_MAX + 16];
    enter_linked_dir(scratch, real, sizeof real);
    snprintf(logdir, sizeof logdir, "%s/logs", real);
    CHILD_CHECK(mkdir("sub", 0700) == 0 && mkdir("logs", 0700) == 0 && symlink("logs", "loglink") == 0);
    JET_INSTANCE in = 0;
    CHILD_ERR(JetCreateInstance(&in, "spellings"), JET_errSuccess);
    CHILD_ERR(JetSetSystemParameter(&in, 0, JET_paramSystemPath, 0, "./sys/"), JET_errSuccess);
    CHILD_ERR(JetSetSystemParameter(&in, 0, JET_paramLogFilePath, 0, "sub/../loglink/."), JET_errSuccess);
    CHILD_ERR(JetSetSystemParameter(&in, 0, JET_paramLogFileSize, 64, NULL), JET_errSuccess);
    CHILD_ERR(JetSetSystemParameter(&in, 0, JET_paramCreatePathIfNotExist, 1, NULL), JET_errSuccess); /* ./sys/ */
    CHILD_ERR(JetInit(&in), JET_errSuccess);
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CHILD_ERR(JetBeginSession(in, &s, NULL, NULL), JET_errSuccess);
    CHILD_ERR(JetCreateDatabase(s, "./sub/../d.edb", NULL, &db, 0), JET_errSuccess);
    CHILD_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errSuccess);
    put_keys(s, t, 0, 400, 'a');
    CHILD_CHECK(symlink("d.edb", "dlink.edb") == 0);

    CHILD_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    char *dbs = fetch_list(in, attach_list);
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/d.edb", real);
    CHILD_CHECK(strcmp(dbs, want) == 0 && dbs[strlen(dbs) + 1] == '\0');
    char name[PATH_MAX + 64];
    const char *db_spellings[] = {"%s", "d.edb", "./d.edb", "../link/d.edb", "%s/../link/./d.edb", "sub/../d.edb",
                                  "dlink.edb", "./sub//../dlink.edb"};
    for (size_t i = 0; i < sizeof db_spellings / sizeof db_spellings[0]; i++) {
        JET_HANDLE h;
        snprintf(name, sizeof name, db_spellings[i], i == 0 ? dbs : real);
        JET_ERR err = JetOpenFileInstance(in, name, &h, NULL, NULL);
        if (err != JET_errSuccess) fprintf(stderr, "child: %s: %ld\n", name, (long)err);
        CHILD_ERR(err, JET_errSuccess);
        CHILD_ERR(JetCloseFileInstance(in, h), JET_errSuccess);
    }
    /* Another file is not the database, however it is named. */
    JET_HANDLE h;
    CHILD_CHECK(system("touch other.edb") == 0);
    CHILD_ERR(JetOpenFileInstance(in, "./other.edb", &h, NULL, NULL), JET_errDatabaseNotFound);
    copy_out(in, dbs, NULL);
    free(dbs);

    char *logs = fetch_list(in, loginfo_list);
    int n = 0;
    for (const char *p = logs; *p; p += strlen(p) + 1, n++) {
        CHILD_CHECK(canonical(p) && in_dir(p, logdir));
        const char *base = strrchr(p, '/') + 1;
        const char *log_spellings[] = {"logs/%s", "./logs/./%s", "../link/logs/%s", "sub/../logs/%s", "loglink/%s",
                                       "../link/loglink/../logs/%s"};
        for (size_t i = 0; i < sizeof log_spellings / sizeof log_spellings[0]; i++) {
            snprintf(name, sizeof name, log_spellings[i], base);
            JET_ERR err = JetOpenFileInstance(in, name, &h, NULL, NULL);
            if (err != JET_errSuccess) fprintf(stderr, "child: %s: %ld\n", name, (long)err);
            CHILD_ERR(err, JET_errSuccess);
            CHILD_ERR(JetCloseFileInstance(in, h), JET_errSuccess);
        }
        copy_out(in, p, NULL);
    }
    CHILD_CHECK(n >= 2);
    free(logs);
    /* The truncation list: canonical too. */
    char *gone = fetch_list(in, truncate_list);
    for (const char *p = gone; *p; p += strlen(p) + 1) CHILD_CHECK(canonical(p) && in_dir(p, logdir));
    free(gone);
    /* A file of the log directory that is not of the set. */
    CHILD_CHECK(system("touch logs/notes.txt") == 0);
    CHILD_ERR(JetOpenFileInstance(in, "./logs/notes.txt", &h, NULL, NULL), JET_errFileNotFound);
    CHILD_ERR(JetTruncateLogInstance(in), JET_errSuccess);
    CHILD_ERR(JetEndExternalBackupInstance(in), JET_errSuccess);
    CHILD_ERR(JetEndSession(s, 0), JET_errSuccess);
    CHILD_ERR(JetTerm(in), JET_errSuccess);
}

static void test_every_spelling_of_a_file_of_the_set_opens(void)
{
    in_child(spellings_child, tu_scratch_dir("paths_spellings"));
}

/* ------------------------------------------------------------------ */
/* Point 3, short buffers: JetGetAttachInfo[Instance] and               */
/* JetGetLogInfo[Instance] (the instance-less ones in legacy mode, in a */
/* child) answer JET_errSuccess, the list's first cbMax bytes and the   */
/* whole size (ESE's docs: "use that information to determine if the    */
/* list was truncated"); a second JetGetLogInfo, after the log rolled   */
/* on, gives the same list.                                             */
/* ------------------------------------------------------------------ */
static void check_cuts(JET_INSTANCE in, list_fn fn, const char *what)
{
    char *full = fetch_list(in, fn);
    unsigned long cbfull = 0;
    for (const char *p = full; *p; p += strlen(p) + 1) cbfull += (unsigned long)strlen(p) + 1;
    cbfull++;
    char *buf = malloc(cbfull + 16);
    CHILD_CHECK(buf != NULL);
    unsigned long cuts[] = {1, 2, 5, cbfull / 2, cbfull - 1, cbfull, cbfull + 16};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        unsigned long cb = 7, n = cuts[i] < cbfull ? cuts[i] : cbfull;
        memset(buf, 0x5A, cbfull + 16);
        JET_ERR err = fn(in, buf, cuts[i], &cb);
        if (err != JET_errSuccess || cb != cbfull)
            fprintf(stderr, "child: %s with cbMax %lu: %ld, size %lu, want %lu\n", what, cuts[i], (long)err, cb,
                    cbfull);
        CHILD_ERR(err, JET_errSuccess);
        CHILD_CHECK(cb == cbfull);
        CHILD_CHECK(memcmp(buf, full, n) == 0);
        if (n < cbfull + 16) CHILD_CHECK((unsigned char)buf[n] == 0x5A);
    }
    free(buf);
    free(full);
}

static void buffers_child(const char *scratch)
{
    char real[PATH_MAX];
    enter_linked_dir(scratch, real, sizeof real);
    CHILD_ERR(JetSetSystemParameter(NULL, 0, JET_paramLogFileSize, 64, NULL), JET_errSuccess);
    CHILD_ERR(JetInit(NULL), JET_errSuccess);
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CHILD_ERR(JetBeginSession(0, &s, NULL, NULL), JET_errSuccess);
    CHILD_ERR(JetCreateDatabase(s, "one.edb", NULL, &db, 0), JET_errSuccess);
    CHILD_ERR(JetCreateDatabase(s, "two.edb", NULL, &db, 0), JET_errSuccess);
    CHILD_ERR(JetCreateTable(s, db, "t", 0, 0, &t), JET_errSuccess);
    put_keys(s, t, 0, 400, 'a');
    CHILD_ERR(JetBeginExternalBackup(0), JET_errSuccess);
    check_cuts(0, attach_list, "JetGetAttachInfo");
    check_cuts(0, loginfo_list, "JetGetLogInfo");
    char *first = fetch_list(0, loginfo_list);
    put_keys(s, t, 400, 800, 'b'); /* several generations more */
    char *second = fetch_list(0, loginfo_list);
    CHILD_CHECK(strcmp(first, second) == 0);
    size_t n1 = 0;
    for (const char *p = first; *p; p += strlen(p) + 1) n1 += strlen(p) + 1;
    CHILD_CHECK(memcmp(first, second, n1 + 1) == 0);
    free(first);
    free(second);
    CHILD_ERR(JetEndExternalBackupInstance2(0, JET_bitBackupEndAbort), JET_errSuccess);
    CHILD_ERR(JetEndSession(s, 0), JET_errSuccess);
    CHILD_ERR(JetTerm(0), JET_errSuccess);
}

static void test_short_buffers_get_the_whole_size_legacy(void)
{
    in_child(buffers_child, tu_scratch_dir("paths_buffers"));
}

static void test_short_buffers_get_the_whole_size_instance(void)
{
    char dir[1024], dbp[1200];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("paths_buffers_inst"));
    snprintf(dbp, sizeof dbp, "%s/e.db", dir);
    JET_INSTANCE in = tu_instance("bufs", dir, (struct tu_params){.log_kb = 64, .ckpt_ms = 600000});
    JET_SESID s;
    JET_TABLEID t;
    tu_table(in, dbp, 1, &s, &t);
    tu_load(s, t, 0, 400, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    list_fn fns[] = {attach_list, loginfo_list, truncate_list};
    for (int f = 0; f < 3; f++) {
        static char full[65536], buf[65536];
        unsigned long cbfull = 0, cb = 0;
        TU_CHECK_ERR(fns[f](in, NULL, 0, &cbfull), JET_errSuccess);
        TU_CHECK_ERR(fns[f](in, full, sizeof full, &cb), JET_errSuccess);
        CU_ASSERT_EQUAL(cb, cbfull);
        for (unsigned long cut = 1; cut < cbfull; cut += cbfull / 3 + 1) {
            memset(buf, 0x5A, sizeof buf);
            cb = 0;
            TU_CHECK_ERR(fns[f](in, buf, cut, &cb), JET_errSuccess);
            CU_ASSERT_EQUAL(cb, cbfull);
            CU_ASSERT(memcmp(buf, full, cut) == 0);
            CU_ASSERT((unsigned char)buf[cut] == 0x5A);
        }
    }
    /* JetGetLogInfoInstance2's list, after the log rolled on, is the first. */
    static char first[65536], again[65536];
    unsigned long cb1 = 0, cb2 = 0;
    JET_LOGINFO li1 = {.cbSize = sizeof li1}, li2 = {.cbSize = sizeof li2};
    TU_CHECK_ERR(JetGetLogInfoInstance2(in, first, sizeof first, &cb1, &li1), JET_errSuccess);
    tu_load(s, t, 400, 800, 'b');
    TU_CHECK_ERR(JetGetLogInfoInstance2(in, again, sizeof again, &cb2, &li2), JET_errSuccess);
    CU_ASSERT_EQUAL(cb1, cb2);
    CU_ASSERT(cb1 == cb2 && memcmp(first, again, cb1) == 0);
    CU_ASSERT(li1.ulGenLow == li2.ulGenLow && li1.ulGenHigh == li2.ulGenHigh);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(in, JET_bitBackupEndAbort), JET_errSuccess);
    JetEndSession(s, 0);
    CU_ASSERT(JetTerm(in) >= 0);
}

/* ------------------------------------------------------------------ */
/* Point 3, the restore's range (ESE's ErrLGCheckDBFiles): a set whose  */
/* log rolled between begin and JetGetLogInfo, so its last generation   */
/* is past the one current at begin.  genLow above the set's first      */
/* -554; genHigh below its last -553 (before: accepted, as it covered   */
/* the copy's own need); genLow > genHigh -554 (before: -1003); a      */
/* single bound is checked too (before: ignored).  Each refusal changes */
/* nothing; the set's own range restores.                               */
/* ------------------------------------------------------------------ */
static void test_restore_range_is_the_sets(void)
{
    char dir[1024], dbp[1200], set[1200], target[1200], copy[1300];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("paths_ranges"));
    snprintf(dbp, sizeof dbp, "%s/e.db", dir);
    snprintf(set, sizeof set, "%s/set", dir);
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(copy, sizeof copy, "%s/e.db", set);
    CU_ASSERT_FATAL(mkdir(set, 0700) == 0);
    JET_INSTANCE in = tu_instance("ranges", dir, (struct tu_params){.log_kb = 64, .ckpt_ms = 600000});
    JET_SESID s;
    JET_TABLEID t;
    tu_table(in, dbp, 1, &s, &t);
    tu_load(s, t, 0, 300, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(in, 0), JET_errSuccess);
    static char names[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetAttachInfoInstance(in, names, sizeof names, &cb), JET_errSuccess);
    for (char *p = names; *p; p += strlen(p) + 1) tu_backup_file(in, p, set);
    tu_load(s, t, 300, 700, 'b'); /* the log rolls on: the set ends later */
    JET_LOGINFO li = {.cbSize = sizeof li};
    TU_CHECK_ERR(JetGetLogInfoInstance2(in, names, sizeof names, &cb, &li), JET_errSuccess);
    for (char *p = names; *p; p += strlen(p) + 1) tu_backup_file(in, p, set);
    TU_CHECK_ERR(JetEndExternalBackupInstance(in), JET_errSuccess);
    JetEndSession(s, 0);
    CU_ASSERT(JetTerm(in) >= 0);
    long lo = (long)li.ulGenLow, hi = (long)li.ulGenHigh;
    CU_ASSERT_FATAL(hi >= lo + 2);

    JET_RSTMAP map = {dbp, copy};
    static struct tu_dir_snap before;
    tu_snap_dir(set, &before);
    struct {
        long low, high;
        JET_ERR want;
    } cases[] = {
        {lo + 1, hi, JET_errStartingRestoreLogTooHigh}, {lo, hi - 1, JET_errEndingRestoreLogTooLow},
        {hi, lo, JET_errStartingRestoreLogTooHigh},     {lo + 1, 0, JET_errStartingRestoreLogTooHigh},
        {0, hi - 1, JET_errEndingRestoreLogTooLow},     {hi - 1, hi - 2, JET_errStartingRestoreLogTooHigh},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        JET_ERR err = JetExternalRestore(target, target, &map, 1, set, cases[i].low, cases[i].high, NULL);
        if (err != cases[i].want)
            fprintf(stderr, "JetExternalRestore %ld..%ld (set %ld..%ld): %ld, want %ld (%s)\n", cases[i].low,
                    cases[i].high, lo, hi, (long)err, (long)cases[i].want, JetGetLastErrorDetail());
        CU_ASSERT_EQUAL(err, cases[i].want);
        JET_LOGINFO l2 = {sizeof l2, (unsigned long)cases[i].low, (unsigned long)cases[i].high, "edb"};
        err = JetExternalRestore2(target, target, &map, 1, set, &l2, NULL, NULL, NULL, NULL);
        if (err != cases[i].want)
            fprintf(stderr, "JetExternalRestore2 %ld..%ld: %ld, want %ld (%s)\n", cases[i].low, cases[i].high,
                    (long)err, (long)cases[i].want, JetGetLastErrorDetail());
        CU_ASSERT_EQUAL(err, cases[i].want);
    }
    struct stat st;
    CU_ASSERT(stat(target, &st) != 0 && errno == ENOENT);
    tu_assert_dir_unchanged(set, &before, NULL);
    /* The set's own range restores. */
    JET_ERR err = JetExternalRestore2(target, target, &map, 1, set, &li, NULL, NULL, NULL, NULL);
    if (err < 0) fprintf(stderr, "JetExternalRestore2: %ld %s\n", (long)err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL(err, JET_errSuccess);
}

/* ------------------------------------------------------------------ */
/* path.c itself, from a table: what each spelling resolves to, below   */
/* a scratch directory with a directory link, a file link, a dangling  */
/* link and names that do not exist (resolved lexically below the       */
/* deepest existing ancestor).                                           */
/* ------------------------------------------------------------------ */
static void test_path_canonical_table(void)
{
    char d[PATH_MAX], rd[PATH_MAX], p[PATH_MAX + 64], got[PATH_MAX], want[PATH_MAX + 64];
    snprintf(d, sizeof d, "%s", tu_scratch_dir("paths_table"));
    CU_ASSERT_FATAL(realpath(d, rd) != NULL);
    snprintf(p, sizeof p, "%s/real", d);
    CU_ASSERT_FATAL(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/real/f", d);
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    snprintf(p, sizeof p, "%s/link", d);
    CU_ASSERT_FATAL(symlink("real", p) == 0);
    snprintf(p, sizeof p, "%s/real/flink", d);
    CU_ASSERT_FATAL(symlink("f", p) == 0);
    snprintf(p, sizeof p, "%s/real/dangling", d);
    CU_ASSERT_FATAL(symlink("nowhere", p) == 0);
    static const struct {
        const char *in, *out; /* below the scratch directory */
    } cases[] = {
        {"/real/f", "/real/f"},
        {"/real/./f", "/real/f"},
        {"//real//f", "/real/f"},
        {"/link/f", "/real/f"},
        {"/link/../real/f", "/real/f"},
        {"/real/flink", "/real/f"},
        {"/link/flink", "/real/f"},
        {"/real/", "/real"},
        {"/real/.", "/real"},
        {"/link/new.log", "/real/new.log"},
        {"/link/no/such/../dir/./x", "/real/no/dir/x"},
        {"/link/no/../../real/x", "/real/x"},
        {"/real/dangling", "/real/dangling"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s%s", d, cases[i].in);
        snprintf(want, sizeof want, "%s%s", rd, cases[i].out);
        memset(got, 0, sizeof got);
        TU_CHECK_ERR(path_canonical(p, got, sizeof got), JET_errSuccess);
        if (strcmp(got, want)) fprintf(stderr, "path_canonical(%s) = %s, want %s\n", p, got, want);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
    TU_CHECK_ERR(path_canonical("/..", got, sizeof got), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(got, "/");
    snprintf(p, sizeof p, "%s/real/f", d);
    TU_CHECK_ERR(path_canonical(p, got, 8), JET_errInvalidPath); /* does not fit */
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("ese_paths", NULL, NULL);
    if (!su) return 2;
#define ADD(fn) CU_add_test(su, #fn, fn)
    ADD(test_no_path_streaming_backup_and_restore_through_symlinked_cwd);
    ADD(test_every_spelling_of_a_file_of_the_set_opens);
    ADD(test_short_buffers_get_the_whole_size_legacy);
    ADD(test_short_buffers_get_the_whole_size_instance);
    ADD(test_restore_range_is_the_sets);
    ADD(test_path_canonical_table);
    return tu_run();
}
