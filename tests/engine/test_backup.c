/*
 * test_backup.c -- the streaming backup API: misuse errors, the
 * point-in-time snapshot (the database image read through the backup is
 * byte-identical to the file as it stood at begin, however much the
 * engine writes meanwhile), coverage rules for truncation, and the backup
 * history kept in the database header.  Truncation is checked against the
 * actual list of generations in the log directory: an aborted or stopped
 * backup deletes nothing, a normal end deletes exactly what
 * JetGetTruncateLogInfo named, never a generation at or past the
 * checkpoint (held behind the set with a long checkpoint period), and the
 * instance recovers from a crash after the truncations.  A chain of
 * full, copy, incremental and differential backups is taken under
 * writers and each restored to its begin.  Also: the instance-less family,
 * end to end in legacy mode and refused in multi-instance mode.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"

static char dir[1024], dbpath[1100];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;

static unsigned long snap_mem_kb; /* 0: the default */
/* Checkpoint period of start()/reopen(): HELD keeps the checkpoint where
 * it is (the cache is far from a quarter dirty in the tests that use it),
 * so it stays behind the generations a backup holds until reopen() moves
 * it (a clean JetTerm flushes and writes the checkpoint at the log end). */
#define CKPT_HELD_MS 3600000ul
static unsigned long ckpt_ms = 20;

/* A fresh database in dir (dbpath) for the tests. */
static void scratch(const char *name)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
}

/* Instance "bk" on dir with table t of dbpath in session s (created if create). */
static void open_bk(int create, int circular)
{
    inst = tu_instance("bk", dir, (struct tu_params){.log_kb = 256, .ckpt_ms = (long)ckpt_ms, .cache_pages = 128,
                                                    .circular = circular, .snap_kb = (long)snap_mem_kb});
    tu_table(inst, dbpath, create, &s, &t);
}

static void start(int circular) { open_bk(1, circular); }

/* Clean JetTerm and JetInit again on the same directory: the checkpoint
 * moves to the end of the log (the only way to move it on demand with a
 * held checkpoint period). */
static void reopen(void)
{
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    open_bk(0, 0);
}

/* ---- the log directory as a user sees it ---- */

#define MAX_GENS 1024
struct gens {
    int n;
    uint32_t g[MAX_GENS];  /* ascending */
    uint64_t h[MAX_GENS];  /* XXH3 of the file's bytes (with_hash) */
};

/* The generation a name "edbXXXXXXXX.log" (upper-case hex) stands for, 0 if none. */
static uint32_t gen_of_name(const char *name)
{
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    if (strlen(b) != 15 || strncmp(b, "edb", 3) != 0 || strcmp(b + 11, ".log") != 0 ||
        strspn(b + 3, "0123456789ABCDEF") != 8)
        return 0;
    return (uint32_t)strtoul(b + 3, NULL, 16);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Every log generation file in d (not edbtmp.log), ascending. */
static void list_gens(const char *d, struct gens *out, int with_hash)
{
    memset(out, 0, sizeof *out);
    DIR *dd = opendir(d);
    CU_ASSERT_FATAL(dd != NULL);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL) {
        uint32_t g = gen_of_name(e->d_name);
        if (g && out->n < MAX_GENS) out->g[out->n++] = g;
    }
    closedir(dd);
    qsort(out->g, (size_t)out->n, sizeof out->g[0], cmp_u32);
    for (int i = 0; with_hash && i < out->n; i++) {
        char p[1300];
        snprintf(p, sizeof p, "%s/edb%08X.log", d, out->g[i]);
        out->h[i] = tu_file_hash(p, 0, NULL);
    }
}

static int gens_find(const struct gens *l, uint32_t g)
{
    for (int i = 0; i < l->n; i++)
        if (l->g[i] == g) return i;
    return -1;
}

static void print_gens(const char *what, const struct gens *l)
{
    fprintf(stderr, "%s:", what);
    for (int i = 0; i < l->n; i++) fprintf(stderr, " %u", l->g[i]);
    fprintf(stderr, "\n");
}

/* Same generations, and (with hashes) the same bytes in each. */
static int gens_equal(const struct gens *a, const struct gens *b, int with_hash)
{
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (a->g[i] != b->g[i] || (with_hash && a->h[i] != b->h[i])) return 0;
    return 1;
}

/* The checkpoint's generation, from the file (what recovery starts from). */
static uint32_t ckpt_gen(void)
{
    char ck[1200];
    JET_INSPECT_CHECKPOINT c;
    snprintf(ck, sizeof ck, "%s/edb.chk", dir);
    CU_ASSERT_FATAL(JetInspectCheckpoint(ck, &c) >= 0);
    return (uint32_t)(c.lsn >> 32);
}

/* The live database's header (its backup history). */
static JET_INSPECT_DBHEADER live_hdr(void)
{
    JET_INSPECT_DBHEADER h = {0};
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &h), JET_errSuccess);
    return h;
}

/* The generations a multi-string of log paths names. */
static void gens_of_multistring(const char *szz, struct gens *out)
{
    memset(out, 0, sizeof *out);
    for (const char *p = szz; *p && out->n < MAX_GENS; p += strlen(p) + 1) {
        uint32_t g = gen_of_name(p);
        CU_ASSERT(g != 0);
        out->g[out->n++] = g;
    }
    qsort(out->g, (size_t)out->n, sizeof out->g[0], cmp_u32);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void read_whole_set(int with_db, JET_LOGINFO *li, uint64_t *rng);

/* Every instance-less form jet.h declares (the backup family and the
 * restore forms) with a multi-instance instance running: refused, nothing
 * written to the caller's buffer; h: a handle open in its backup (or 0). */
static void instance_less_refused(JET_HANDLE h)
{
    static char buf[65536];
    unsigned long cb = 0, lo = 0, hi = 0;
    JET_HANDLE h2;
    const long want = JET_errRunningInMultiInstanceMode;
    strcpy(buf, "x");
    TU_CHECK_ERR(JetBeginExternalBackup(0), want);
    TU_CHECK_ERR(JetBeginExternalBackup(JET_bitBackupIncremental), want);
    TU_CHECK_ERR(JetGetAttachInfo(buf, sizeof buf, &cb), want);
    TU_CHECK_ERR(JetOpenFile(dbpath, &h2, &lo, &hi), want);
    TU_CHECK_ERR(JetReadFile(h, buf, sizeof buf, &cb), want);
    TU_CHECK_ERR(JetCloseFile(h), want);
    TU_CHECK_ERR(JetGetLogInfo(buf, sizeof buf, &cb), want);
    CU_ASSERT_STRING_EQUAL(buf, "x");
    TU_CHECK_ERR(JetTruncateLog(), want);
    TU_CHECK_ERR(JetEndExternalBackup(), want);
    TU_CHECK_ERR(JetStopBackup(), want);
    TU_CHECK_ERR(JetRestore("/nonexistent/set", NULL), want);
    TU_CHECK_ERR(JetRestore2("/nonexistent/set", "/nonexistent/dest", NULL), want);
}

static void test_misuse_returns_documented_errors(void)
{
    scratch("bk_misuse");
    /* Before JetInit: ESE's instance gate (issue 12 changed -523 to -1029). */
    JET_INSTANCE early = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&early, "early") >= 0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(early, 0), JET_errNotInitialized);
    JetTerm(early);
    start(0);
    char buf[4096];
    unsigned long cb;
    JET_HANDLE h;
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errNoBackup);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, buf, sizeof buf, &cb), JET_errNoBackup);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errNoBackup);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupAtomic), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupSnapshot), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0x8000), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errMissingFullBackup);
    tu_load(s, t, 0, 500, 'a');
    /* The instance-less forms belong to legacy mode: refused with no backup
     * running, and with one running on the multi-instance instance, which
     * they leave alone: a file open in it is neither read (a sequential read
     * from 0 still gets it all) nor closed, the backup neither moved to its
     * log phase, stopped, ended nor set to truncate (its normal end records
     * a copy, no full). */
    instance_less_refused(0);
    JET_INSPECT_DBHEADER h0 = live_hdr(), h1;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    unsigned long lo = 0, hi = 0;
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h, &lo, &hi), JET_errSuccess);
    instance_less_refused(h);
    unsigned long long size = lo | (unsigned long long)hi << 32, pos = 0;
    while (JetReadFileInstance(inst, h, buf, sizeof buf, &cb) == JET_errSuccess && cb) pos += cb;
    CU_ASSERT(size > 0 && pos == size);
    TU_CHECK_ERR(JetCloseFileInstance(inst, h), JET_errSuccess);
    instance_less_refused(0); /* no file open: a JetGetLogInfo reaching it would count */
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errInvalidBackupSequence); /* still before GetLogInfo */
    uint64_t rng = 1;
    JET_LOGINFO li;
    read_whole_set(1, &li, &rng); /* every log read whole: a JetTruncateLog reaching it would count */
    instance_less_refused(0);
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    CU_ASSERT(JetGetBackupStatusInstance(inst, &st) == JET_errSuccess && st.fInProgress && !st.fStopped);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    h1 = live_hdr();
    CU_ASSERT(h1.backup[3].backup_id != 0 && h1.backup[3].backup_id != h0.backup[3].backup_id);
    CU_ASSERT(memcmp(h1.backup, h0.backup, 3 * sizeof h0.backup[0]) == 0);
    instance_less_refused(0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errBackupInProgress);
    /* Not an attached database, in the database phase: -1203 (issue 12). */
    TU_CHECK_ERR(JetOpenFileInstance(inst, "/no/such/file", &h, NULL, NULL), JET_errDatabaseNotFound);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, buf, sizeof buf, &cb), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(buf, dbpath);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errInvalidBackupSequence);
    li.cbSize = 3;
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, buf, sizeof buf, &cb, &li), JET_errInvalidParameter);
    li.cbSize = sizeof li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, buf, sizeof buf, &cb, &li), JET_errSuccess);
    CU_ASSERT(li.ulGenLow >= 1 && li.ulGenHigh >= li.ulGenLow);
    CU_ASSERT_STRING_EQUAL(li.szBaseName, "edb");
    /* Not every log read: truncation refused, nothing deleted. */
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errLogFileNotCopied);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal | JET_bitBackupEndAbort),
                 JET_errInvalidParameter);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, 0), JET_errInvalidParameter);
    /* Databases are opened in the database phase (issue 12: test_ese_backup.c). */
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    /* Stop: calls fail promptly, Close and End still work. */
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetStopBackupInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetReadFileInstance(inst, h, buf, sizeof buf, &cb), JET_errBackupAbortByServer);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, buf, sizeof buf, &cb), JET_errBackupAbortByServer);
    TU_CHECK_ERR(JetCloseFileInstance(inst, h), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    /* A stopped backup recorded nothing: incremental still refused. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errMissingFullBackup);
    JetTerm(inst);
    /* Circular logging refuses incremental backups. */
    scratch("bk_circular");
    start(1);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errInvalidBackup);
    JetTerm(inst);
}

/* Reads a whole file of the set through the API, in random-sized pieces
 * at random offsets, then fills any gap sequentially. */
static unsigned char *read_through_backup(const char *path, size_t *pn, uint64_t *rng)
{
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0, got = 0;
    CU_ASSERT_FATAL(JetOpenFileInstance(inst, path, &h, &lo, &hi) >= 0);
    size_t n = (size_t)lo | ((size_t)hi << 32);
    unsigned char *b = calloc(1, n + 1);
    for (int i = 0; i < 50 && n; i++) {
        uint64_t off = tu_rand(rng) % n, len = 1 + tu_rand(rng) % 70000;
        JET_ERR err = JetReadFileAtInstance(inst, h, off, b + off, (unsigned long)(len < n - off ? len : n - off), &got);
        CU_ASSERT_EQUAL(err, JET_errSuccess);
    }
    size_t pos = 0;
    while (pos < n) {
        JET_ERR err = JetReadFileInstance(inst, h, b + pos, 65536, &got);
        CU_ASSERT_FATAL(err == JET_errSuccess);
        if (!got) break;
        pos += got;
    }
    CU_ASSERT_EQUAL(pos, n);
    CU_ASSERT(JetReadFileInstance(inst, h, b, 4096, &got) == JET_errSuccess && got == 0);
    JetCloseFileInstance(inst, h);
    *pn = n;
    return b;
}

static void test_snapshot_is_the_file_as_at_begin(void)
{
    scratch("bk_snapshot");
    uint64_t rng = tu_seed("test_snapshot_is_the_file_as_at_begin");
    snap_mem_kb = 64; /* 8 pages in memory, the rest spills to a file */
    start(0);
    snap_mem_kb = 0;
    tu_load(s, t, 0, 3000, 'a');
    sleep_ms(300); /* let checkpoints write it all, so the file is still until begin */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    /* The reference: the file as it stands now.  No session writes until
     * the copy is taken; the checkpointer may, which is the point. */
    size_t refn = 0;
    unsigned char *ref = (unsigned char *)tu_slurp(dbpath, &refn);
    CU_ASSERT_FATAL(ref != NULL);
    /* Rewrite everything and grow the file while the backup is open. */
    tu_load(s, t, 0, 6000, 'z');
    sleep_ms(200);
    struct stat st;
    stat(dbpath, &st);
    CU_ASSERT((size_t)st.st_size > refn);
    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    TU_CHECK_ERR(JetGetBackupStatusInstance(inst, &bst), JET_errSuccess);
    fprintf(stderr, "snapshot: %llu bytes preserved in memory, %llu spilled\n", bst.cbPreservedMemory,
            bst.cbPreservedSpill);
    CU_ASSERT(bst.fInProgress && bst.cbPreservedMemory <= 64 * 1024 + 2 * 8192);
    CU_ASSERT(bst.cbPreservedSpill > 0);
    size_t n = 0;
    unsigned char *got = read_through_backup(dbpath, &n, &rng);
    CU_ASSERT_EQUAL(n, refn);
    /* Byte-identical past the two header pages; the headers served carry
     * the backup-copy marker that restore needs, so they differ there. */
    CU_ASSERT(n > 2 * 8192 && memcmp(got + 2 * 8192, ref + 2 * 8192, (refn < n ? refn : n) - 2 * 8192) == 0);
    CU_ASSERT(memcmp(got + 8, ref + 8, 232) == 0);        /* same header up to the marker... */
    CU_ASSERT(memcmp(got + 240, ref + 240, 8) != 0);      /* ...which is set in the copy only */
    /* Logs: read them all, then truncation is allowed. */
    char logs[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, logs, sizeof logs, &cb), JET_errSuccess);
    int nlogs = 0;
    for (char *p = logs; *p; p += strlen(p) + 1) {
        size_t ln = 0;
        free(read_through_backup(p, &ln, &rng));
        nlogs++;
    }
    CU_ASSERT(nlogs >= 1);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd = live_hdr();
    CU_ASSERT(hd.backup[0].backup_id != 0 && hd.backup[0].gen_high >= hd.backup[0].gen_low);
    /* Now an incremental is possible; its logs start after the full's. */
    tu_load(s, t, 0, 500, 'q');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, logs, sizeof logs, &cb), JET_errInvalidBackupSequence);
    JET_HANDLE h;
    /* ESE's incremental is in its log phase from begin: -521 ends it (issue 12). */
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h, NULL, NULL), JET_errInvalidBackupSequence);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, logs, sizeof logs, &cb), JET_errNoBackup);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    JET_LOGINFO li = {.cbSize = sizeof li};
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, logs, sizeof logs, &cb, &li), JET_errSuccess);
    /* Every generation still present, which starts right after the full's
     * truncated ones (or earlier if the checkpoint held some back). */
    CU_ASSERT(li.ulGenLow >= 1 && li.ulGenLow <= hd.backup[0].gen_high + 1);
    /* Ended without truncation: recorded as differential, not incremental. */
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd2 = live_hdr();
    CU_ASSERT(hd2.backup[2].backup_id != 0);
    CU_ASSERT_EQUAL(hd2.backup[2].predecessor_id, hd.backup[0].backup_id);
    CU_ASSERT_EQUAL(hd2.backup[1].backup_id, 0);
    /* An aborted full changes no history. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    JET_INSPECT_DBHEADER hd3 = live_hdr();
    CU_ASSERT(memcmp(&hd3.backup, &hd2.backup, sizeof hd3.backup) == 0);
    free(ref);
    free(got);
    JetTerm(inst);
}

/* Reads every file of the running backup's set whole through the API
 * (the databases of a full backup, then, unless li is NULL, GetLogInfo
 * and every log). */
static void read_whole_set(int with_db, JET_LOGINFO *li, uint64_t *rng)
{
    static char names[65536];
    unsigned long cb = 0;
    if (with_db) {
        TU_CHECK_ERR(JetGetAttachInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
        CU_ASSERT_STRING_EQUAL(names, dbpath);
        for (char *p = names; *p; p += strlen(p) + 1) {
            size_t n = 0;
            free(read_through_backup(p, &n, rng));
        }
    }
    if (!li) return;
    li->cbSize = sizeof *li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, li), JET_errSuccess);
    int nlogs = 0;
    for (char *p = names; *p; p += strlen(p) + 1, nlogs++) {
        size_t n = 0;
        free(read_through_backup(p, &n, rng));
    }
    CU_ASSERT_EQUAL(nlogs, (int)(li->ulGenHigh - li->ulGenLow + 1));
}

/* The generations JetGetTruncateLogInfoInstance names now. */
static void truncate_info(struct gens *out)
{
    static char names[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetTruncateLogInfoInstance(inst, names, sizeof names, &cb), JET_errSuccess);
    gens_of_multistring(names, out);
}

/*
 * An aborted backup (End with JET_bitBackupEndAbort, or JetStopBackup then
 * End) truncates nothing and changes no history: the log directory holds
 * exactly the same generations, byte for byte, and the header's backup
 * history is unchanged.  The generations are chosen so that a truncation
 * would delete some (JetGetTruncateLogInfo lists them).
 */
static void test_aborted_backup_truncates_nothing(void)
{
    scratch("bk_abort");
    uint64_t rng = tu_seed("test_aborted_backup_truncates_nothing");
    start(0);
    JET_LOGINFO li;
    /* History to keep: a completed full and a completed incremental. */
    tu_load(s, t, 0, 1500, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    tu_load(s, t, 1500, 2000, 'b');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    read_whole_set(0, &li, &rng);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd0 = live_hdr(), hd1;
    CU_ASSERT(hd0.backup[0].backup_id != 0 && hd0.backup[1].backup_id != 0);
    /* Generations for a truncation to delete: the checkpoint passes them. */
    tu_load(s, t, 0, 2000, 'c');
    sleep_ms(200);
    static struct gens g0, g1, del;
    const char *what[] = {"full, End(Abort)", "full, Stop then End(Normal)", "incremental, End(Abort)",
                          "incremental, Stop then End(Normal)"};
    /* Without JetTruncateLog: since issue 12 it deletes at its call, as
     * ESE's ErrLGTruncateLog (test_ese_backup.c). */
    for (int v = 0; v < 4; v++) {
        int full = v < 2, stop = v & 1;
        TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, full ? 0 : JET_bitBackupIncremental), JET_errSuccess);
        read_whole_set(full, &li, &rng);
        sleep_ms(60); /* the checkpoint settles after GetLogInfo's roll (nothing is written meanwhile) */
        truncate_info(&del);
        list_gens(dir, &g0, 1);
        /* A normal end would delete these: the abort has something to keep. */
        CU_ASSERT(del.n >= 1);
        for (int i = 0; i < del.n; i++) CU_ASSERT(gens_find(&g0, del.g[i]) >= 0);
        if (stop) {
            TU_CHECK_ERR(JetStopBackupInstance(inst), JET_errSuccess);
            TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errBackupAbortByServer);
            /* ESE-NOTES: End returns JET_errSuccess past its two checks,
             * stopped or not; the backup is treated as failed. */
            TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal), JET_errSuccess);
        } else {
            TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
        }
        TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errNoBackup);
        list_gens(dir, &g1, 1);
        if (!gens_equal(&g0, &g1, 1)) {
            fprintf(stderr, "%s changed the log directory\n", what[v]);
            print_gens("  before", &g0);
            print_gens("  after", &g1);
        }
        CU_ASSERT(gens_equal(&g0, &g1, 1));
        hd1 = live_hdr();
        CU_ASSERT(memcmp(hd1.backup, hd0.backup, sizeof hd0.backup) == 0);
    }
    /* A normal End while still in the database phase (JetGetLogInfo never
     * called) is a failed backup too (ESE-NOTES): the database read whole,
     * yet no history, nothing deleted, even with TruncateDone. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    list_gens(dir, &g0, 1);
    read_whole_set(1, NULL, &rng);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    list_gens(dir, &g1, 1);
    CU_ASSERT(gens_equal(&g0, &g1, 1));
    hd1 = live_hdr();
    CU_ASSERT(memcmp(hd1.backup, hd0.backup, sizeof hd0.backup) == 0);
    /* The chain is intact: an incremental still follows the last one. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    read_whole_set(0, &li, &rng);
    CU_ASSERT(li.ulGenLow <= hd0.backup[1].gen_high + 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    /* Control: the same full ended normally does delete (so the
     * comparisons above could fail) and records a new full. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    sleep_ms(60); /* the checkpoint passes what GetLogInfo's roll closed */
    list_gens(dir, &g0, 0);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    list_gens(dir, &g1, 0);
    CU_ASSERT(g1.n < g0.n);
    hd1 = live_hdr();
    CU_ASSERT(hd1.backup[0].backup_id != hd0.backup[0].backup_id && hd1.backup[1].backup_id == 0);
    JetTerm(inst);
}

/* ESE-NOTES 3.4: deletion only through JetTruncateLog, after every log
 * of the set was read; JET_bitBackupTruncateDone only marks the header. */
static void report_truncate_done(const char *kind, const struct gens *before, const struct gens *after,
                                 const JET_LOGINFO *li)
{
    int unread = 0;
    for (int i = 0; i < before->n; i++)
        if (gens_find(after, before->g[i]) < 0 && before->g[i] >= li->ulGenLow && before->g[i] <= li->ulGenHigh)
            unread++;
    CU_ASSERT(gens_equal(before, after, 1));
    if (!gens_equal(before, after, 1)) {
        fprintf(stderr,
                "%s End(Normal|TruncateDone), no log read: %d generation(s) deleted, %d of them in the "
                "set %lu..%lu\n",
                kind, before->n - after->n, unread, li->ulGenLow, li->ulGenHigh);
        print_gens("  before end", before);
        print_gens("  after end", after);
    }
}

/*
 * JetGetTruncateLogInfoInstance, asked after GetLogInfo, names exactly the
 * generations a normal end after JetTruncateLog deletes: those below the
 * checkpoint (held here, so it cannot move in between) and within the set;
 * the set's generations from the checkpoint on stay, since recovery needs
 * them.  Then JET_bitBackupTruncateDone (ESE-NOTES 1.4 and 3.5): the normal
 * end records the backup as truncating (a full, not a copy) although
 * JetTruncateLog was not called; deletion happens only through
 * JetTruncateLog after every log was read (3.4), so nothing is deleted.
 */
static void test_truncate_log_info_lists_what_end_deletes(void)
{
    scratch("bk_trunc_info");
    uint64_t rng = tu_seed("test_truncate_log_info_lists_what_end_deletes");
    ckpt_ms = CKPT_HELD_MS;
    start(0);
    tu_load(s, t, 0, 1500, 'a');
    reopen(); /* the checkpoint moves past the generations just written */
    tu_load(s, t, 0, 100, 'b');
    uint32_t ck = ckpt_gen();
    JET_LOGINFO li;
    static struct gens before, after, listed, want;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    truncate_info(&listed);
    CU_ASSERT_EQUAL(ckpt_gen(), ck);
    list_gens(dir, &before, 0);
    /* Expected: below the checkpoint and not past the set. */
    memset(&want, 0, sizeof want);
    for (int i = 0; i < before.n; i++)
        if (before.g[i] < ck && before.g[i] <= li.ulGenHigh) want.g[want.n++] = before.g[i];
    CU_ASSERT(want.n >= 2);          /* there is something to delete... */
    CU_ASSERT(ck <= li.ulGenHigh);   /* ...and the checkpoint is held inside the set */
    CU_ASSERT(li.ulGenLow == ck);    /* a full's set starts at the checkpoint */
    if (!gens_equal(&listed, &want, 0)) {
        print_gens("truncate info", &listed);
        print_gens("expected", &want);
    }
    CU_ASSERT(gens_equal(&listed, &want, 0));
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    list_gens(dir, &after, 0);
    /* after == before minus exactly the listed generations */
    int ok = after.n + listed.n == before.n;
    for (int i = 0; i < before.n; i++)
        ok &= (gens_find(&listed, before.g[i]) >= 0) == (gens_find(&after, before.g[i]) < 0);
    if (!ok) {
        print_gens("before end", &before);
        print_gens("after end", &after);
        print_gens("listed", &listed);
    }
    CU_ASSERT(ok);
    for (uint32_t g = ck; g <= li.ulGenHigh; g++) CU_ASSERT(gens_find(&after, g) >= 0);
    JET_INSPECT_DBHEADER h0 = live_hdr(), h1;
    CU_ASSERT(h0.backup[0].backup_id != 0);

    /* JET_bitBackupTruncateDone: a full whose logs the caller did not read
     * through the API (JetTruncateLog refuses), ended normally with it. */
    tu_load(s, t, 100, 1500, 'c');
    reopen();
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    static char names[65536];
    unsigned long cb = 0;
    read_whole_set(1, NULL, &rng);
    li.cbSize = sizeof li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    truncate_info(&listed);
    CU_ASSERT(listed.n >= 1); /* a truncation would have something to delete */
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errLogFileNotCopied);
    list_gens(dir, &before, 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    h1 = live_hdr();
    /* Recorded as a full (not a copy): the new full, its range, the
     * incremental and differential slots cleared, the copy slot untouched. */
    CU_ASSERT(h1.backup[0].backup_id != 0 && h1.backup[0].backup_id != h0.backup[0].backup_id);
    CU_ASSERT_EQUAL(h1.backup[0].gen_low, li.ulGenLow);
    CU_ASSERT_EQUAL(h1.backup[0].gen_high, li.ulGenHigh);
    CU_ASSERT_EQUAL(h1.backup[1].backup_id, 0);
    CU_ASSERT_EQUAL(h1.backup[2].backup_id, 0);
    CU_ASSERT(memcmp(&h1.backup[3], &h0.backup[3], sizeof h0.backup[3]) == 0);
    list_gens(dir, &after, 1);
    report_truncate_done("full", &before, &after, &li);
    /* The same with an incremental: its set is every generation present,
     * so what a truncation deletes is in the set, and none was read. */
    tu_load(s, t, 0, 1500, 'e');
    reopen();
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    li.cbSize = sizeof li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    truncate_info(&listed);
    CU_ASSERT(listed.n >= 1);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errLogFileNotCopied);
    list_gens(dir, &before, 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    h0 = live_hdr();
    /* Recorded as an incremental (not a differential) following the full. */
    CU_ASSERT(h0.backup[1].backup_id != 0);
    CU_ASSERT_EQUAL(h0.backup[1].predecessor_id, h1.backup[0].backup_id);
    CU_ASSERT_EQUAL(h0.backup[1].gen_high, li.ulGenHigh);
    CU_ASSERT_EQUAL(h0.backup[2].backup_id, 0);
    list_gens(dir, &after, 1);
    report_truncate_done("incremental", &before, &after, &li);
    h1 = h0;
    /* With Abort, TruncateDone records and deletes nothing. */
    tu_load(s, t, 0, 1500, 'd');
    reopen();
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    list_gens(dir, &before, 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    list_gens(dir, &after, 1);
    CU_ASSERT(gens_equal(&before, &after, 1));
    h0 = live_hdr();
    CU_ASSERT(memcmp(h0.backup, h1.backup, sizeof h0.backup) == 0);
    JetTerm(inst);
    ckpt_ms = 20;
}

static void write_file(const char *d, const char *name, const void *b, size_t n)
{
    char out[2200];
    snprintf(out, sizeof out, "%s/%s", d, name);
    FILE *f = fopen(out, "wb");
    CU_ASSERT_FATAL(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* Writes every file of the running backup set into dir (logs always;
 * the database too for a full backup), read through the API. */
/* Begins a backup whose set is fixed at once, as the mount's: AnyOrder, then
 * GetLogInfo before any read, so a restore gives "the state at begin". */
static void begin_fixed(JET_GRBIT grbit)
{
    unsigned long cb = 0;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, grbit | JET_bitBackupAnyOrder), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfoInstance(inst, NULL, 0, &cb), JET_errSuccess);
}

static void save_set(const char *setdir, int with_db, uint64_t *rng, const char *type)
{
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", setdir, setdir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char names[65536];
    unsigned long cb = 0;
    char all[70000];
    size_t used = 0;
    if (with_db) {
        CU_ASSERT_FATAL(JetGetAttachInfoInstance(inst, names, sizeof names, &cb) >= 0);
        memcpy(all, names, cb - 1);
        used = cb - 1;
    }
    CU_ASSERT_FATAL(JetGetLogInfoInstance(inst, names, sizeof names, &cb) >= 0);
    memcpy(all + used, names, cb);
    for (char *p = all; *p; p += strlen(p) + 1) {
        size_t n = 0;
        unsigned char *b = read_through_backup(p, &n, rng);
        write_file(setdir, strrchr(p, '/') + 1, b, n);
        free(b);
    }
    if (type) {
        unsigned long need = 0;
        CU_ASSERT_FATAL(JetGetBackupManifestInstance(inst, type, NULL, 0, &need) >= 0);
        char *m = malloc(need);
        CU_ASSERT_FATAL(JetGetBackupManifestInstance(inst, type, m, need, &need) == JET_errSuccess);
        write_file(setdir, "backup.manifest", m, strlen(m));
        free(m);
    }
}

static int value_is(JET_SESID ss, JET_TABLEID tt, int k, char fill)
{
    char key[16], v[600];
    unsigned long n = 0;
    snprintf(key, sizeof key, "k%06d", k);
    if (JetRetrieveKV(ss, tt, key, strlen(key), v, sizeof v, &n, 0) < 0) return fill == 0;
    return n == 500 && v[0] == fill && v[499] == fill;
}

static int restore_into(const char *rdir, const char *const *sets, int nsets, unsigned long stop_gen)
{
    char cmd[8000];
    int off = snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/b.db' '%s/'", rdir, rdir, sets[0], rdir);
    for (int i = 0; i < nsets; i++) off += snprintf(cmd + off, sizeof cmd - (size_t)off, " && cp %s/edb*.log '%s/'", sets[i], rdir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char db[1200];
    snprintf(db, sizeof db, "%s/b.db", rdir);
    JET_RSTMAP map = {dbpath, db};
    return (int)JetExternalRestore3((char *)rdir, (char *)rdir, &map, 1, (char *)rdir, NULL, stop_gen, 0, NULL);
}

static JET_INSTANCE open_restored(const char *rdir, JET_SESID *ps, JET_TABLEID *pt)
{
    char db[1400];
    snprintf(db, sizeof db, "%s/b.db", rdir);
    JET_INSTANCE ri = tu_instance("restored", rdir, (struct tu_params){.log_kb = 256});
    tu_table(ri, db, 0, ps, pt);
    return ri;
}

/* Mismatches in the restored rdir with k000000..k<na> 'a' (a full's
 * begin), and with inc, test_full_and_incremental_restore's incremental. */
static int restored_bad(const char *rdir, int na, int inc)
{
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = open_restored(rdir, &rs, &rt);
    int bad = 0;
    for (int k = 0; k < 2600; k++)
        bad += !value_is(rs, rt, k, inc && k < 1000 ? 'b' : k < na ? 'a' : inc && k < 2500 ? 'c' : 0);
    JetTerm(ri);
    return bad;
}

static void test_full_and_incremental_restore(void)
{
    scratch("bk_restore");
    uint64_t rng = tu_seed("test_full_and_incremental_restore");
    char s1[1100], s2[1100], r[1100];
    snprintf(s1, sizeof s1, "%s/set1", dir);
    snprintf(s2, sizeof s2, "%s/set2", dir);
    snprintf(r, sizeof r, "%s/restored", dir);
    start(0);
    tu_load(s, t, 0, 2000, 'a');
    begin_fixed(0);
    tu_load(s, t, 0, 1000, 'b'); /* after the set was fixed: not in the full backup */
    save_set(s1, 1, &rng, "full");
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    tu_load(s, t, 2000, 2500, 'c');
    begin_fixed(JET_bitBackupIncremental);
    tu_load(s, t, 2500, 2600, 'd'); /* after the incremental's set was fixed */
    save_set(s2, 0, &rng, "incremental");
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JetTerm(inst);

    /* Full alone: the state at the full's begin. */
    const char *only_full[] = {s1};
    int err = restore_into(r, only_full, 1, 0);
    if (err < 0) fprintf(stderr, "restore full: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(restored_bad(r, 2000, 0), 0);
    /* Full + incremental: the state at the incremental's begin. */
    const char *both[] = {s1, s2};
    err = restore_into(r, both, 2, 0);
    if (err < 0) fprintf(stderr, "restore chain: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(restored_bad(r, 2000, 1), 0);

    /* The same through JetRestoreSets (what jetutil restore runs). */
    char r2[1200];
    snprintf(r2, sizeof r2, "%s/restored2", dir);
    const char *chain[] = {s1, s2};
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r2, 0, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(restored_bad(r2, 2000, 1), 0);
    /* A target that is not empty is refused and left alone. */
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r2, 0, 0), JET_errInvalidPath);
    /* Point in time: stop at the full backup's last generation. */
    char r3[1200], fdb[1200];
    JET_INSPECT_DBHEADER fh;
    snprintf(r3, sizeof r3, "%s/restored3", dir);
    snprintf(fdb, sizeof fdb, "%s/b.db", s1);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(fdb, &fh) >= 0);
    JET_INSPECT_DBHEADER livehdr = live_hdr();
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r3, livehdr.backup[0].gen_high, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(restored_bad(r3, 2000, 0), 0);
    /* Manifests: an edited one, a broken chain of ids, a damaged log. */
    char r5[1200], cmd5[8000];
    snprintf(r5, sizeof r5, "%s/restored5", dir);
    const char *twice[] = {s1, s2, s2};
    TU_CHECK_ERR(JetRestoreSets(twice, 3, r5, 0, 0), JET_errInvalidBackupSequence);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "predecessor"));
    char s2b[1200];
    snprintf(s2b, sizeof s2b, "%s/set2b", dir);
    snprintf(cmd5, sizeof cmd5, "rm -rf '%s' && cp -r '%s' '%s' && sed -i 's/\"size\": /\"size\": 1/' '%s/backup.manifest'", s2b,
             s2, s2b, s2b);
    CU_ASSERT_FATAL(system(cmd5) == 0);
    const char *edited[] = {s1, s2b};
    TU_CHECK_ERR(JetRestoreSets(edited, 2, r5, 0, 0), JET_errInvalidBackup);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "edited"));
    snprintf(cmd5, sizeof cmd5,
             "rm -rf '%s' && cp -r '%s' '%s' && f=$(ls %s/edb*.log | head -1) && printf 'Z' | dd of=$f bs=1 seek=70000 conv=notrunc 2>/dev/null",
             s2b, s2, s2b, s2b);
    CU_ASSERT_FATAL(system(cmd5) == 0);
    TU_CHECK_ERR(JetRestoreSets(edited, 2, r5, 0, 0), JET_errLogFileCorrupt);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "damaged"));
    CU_ASSERT(access(r5, F_OK) != 0);
    /* A corrupt page in the full set's database that replay does not
     * rewrite: restore refuses, naming the page, and leaves nothing. */
    char s1c[1200];
    snprintf(s1c, sizeof s1c, "%s/set1c", dir);
    snprintf(cmd5, sizeof cmd5, "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/backup.manifest' && "
             "printf 'Q' | dd of='%s/b.db' bs=1 seek=$((8192 * 3 + 5000)) conv=notrunc 2>/dev/null",
             s1c, s1, s1c, s1c, s1c);
    CU_ASSERT_FATAL(system(cmd5) == 0);
    const char *corrupt[] = {s1c};
    err = (int)JetRestoreSets(corrupt, 1, r5, 0, 0);
    if (err != JET_errReadVerifyFailure) fprintf(stderr, "corrupt page restore: %d %s\n", err, JetGetLastErrorDetail());
    /* Page 3 is the catalog root, written once when the table was made,
     * long before the checkpoint the full backup starts from. */
    CU_ASSERT_EQUAL(err, JET_errReadVerifyFailure);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "page 3"));
    CU_ASSERT(access(r5, F_OK) != 0);
    /* An incremental set holding a database file is not a valid chain. */
    const char *wrong[] = {s1, s1};
    char r4[1200];
    snprintf(r4, sizeof r4, "%s/restored4", dir);
    TU_CHECK_ERR(JetRestoreSets(wrong, 2, r4, 0, 0), JET_errInvalidBackupSequence);
    CU_ASSERT(access(r4, F_OK) != 0);

    /* Refusals, each naming the piece. */
    char cmd[16000], db[1200];
    JET_RSTMAP live = {dbpath, dbpath};
    TU_CHECK_ERR(JetExternalRestore(r, r, &live, 1, r, 0, 0, NULL), JET_errRestoreOfNonBackupDatabase);
    /* A generation missing from the middle of the chain. */
    JET_INSPECT_DBHEADER hd;
    snprintf(db, sizeof db, "%s/b.db", s1);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(db, &hd) >= 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/b.db' %s/edb*.log %s/edb*.log '%s/'", r, r, s1, s1,
             s2, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    /* The caller names the range it holds (as the manifest will): a hole
     * in it is refused, naming the generation. */
    static struct gens rg;
    list_gens(r, &rg, 0);
    unsigned lo_gen = rg.g[0], hi_gen = rg.n ? rg.g[rg.n - 1] : 0;
    CU_ASSERT_FATAL(hi_gen >= lo_gen + 1);
    snprintf(cmd, sizeof cmd, "rm -f %s/edb%08X.log", r, hi_gen - 1 > lo_gen ? hi_gen - 1 : hi_gen);
    CU_ASSERT_FATAL(system(cmd) == 0);
    snprintf(db, sizeof db, "%s/b.db", r);
    JET_RSTMAP m = {dbpath, db};
    JET_LOGINFO range = {sizeof range, lo_gen, hi_gen, "edb"};
    err = (int)JetExternalRestore2(r, r, &m, 1, r, &range, NULL, NULL, NULL, NULL);
    CU_ASSERT(err == JET_errFileNotFound); /* ESE: a generation of the given range not on disk */
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "missing"));
    /* A log of another instance in the chain. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/b.db' %s/edb*.log '%s/'", r, r, s1, s1, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char other[900];
    snprintf(other, sizeof other, "%.800s/other", dir);
    snprintf(dir, sizeof dir, "%s", other);
    snprintf(dbpath, sizeof dbpath, "%.900s/b.db", other);
    mkdir(other, 0700);
    start(0);
    tu_load(s, t, 0, 300, 'x');
    JetTerm(inst);
    JET_INSPECT_LOGHEADER lh;
    char victim[1300];
    list_gens(r, &rg, 0);
    CU_ASSERT_FATAL(rg.n >= 1);
    snprintf(victim, sizeof victim, "%s/edb%08X.log", r, rg.g[rg.n - 1]);
    CU_ASSERT_FATAL(JetInspectLogHeader(victim, &lh) >= 0);
    char foreign[1300];
    snprintf(foreign, sizeof foreign, "%s/edb%08X.log", other, lh.generation);
    if (access(foreign, F_OK) != 0) snprintf(foreign, sizeof foreign, "%s/edb00000001.log", other);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", foreign, victim);
    CU_ASSERT_FATAL(system(cmd) == 0);
    err = (int)JetExternalRestore(r, r, &m, 1, r, 0, 0, NULL);
    CU_ASSERT(err == JET_errGivenLogFileHasBadSignature || err == JET_errGivenLogFileIsNotContiguous);
}

static void test_kill9_during_backup_loses_nothing(void)
{
    scratch("bk_kill");
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        start(0);
        tu_load(s, t, 0, 1000, 'a');
        if (JetBeginExternalBackupInstance(inst, 0) < 0) _exit(3);
        JET_HANDLE h;
        char buf[65536];
        unsigned long got;
        if (JetOpenFileInstance(inst, dbpath, &h, NULL, NULL) < 0) _exit(4);
        if (JetReadFileInstance(inst, h, buf, sizeof buf, &got) < 0) _exit(5);
        tu_load(s, t, 1000, 2000, 'b'); /* durable commits while the snapshot lives */
        sleep_ms(100);         /* and checkpoints preserving pages */
        if (write(fds[1], "x", 1) != 1) _exit(6);
        for (;;) sleep_ms(1000);
    }
    close(fds[1]);
    char c;
    CU_ASSERT_FATAL(read(fds[0], &c, 1) == 1);
    close(fds[0]);
    /* The child is idle now (its checkpointer deletes nothing: circular
     * logging is off), so this is the log directory at the kill. */
    static struct gens before, after;
    list_gens(dir, &before, 1);
    CU_ASSERT(before.n >= 2);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    /* Recovery after the kill: every acknowledged commit, no log lost. */
    inst = tu_instance("bkkill", dir, (struct tu_params){.log_kb = 256});
    /* Every generation there at the kill is still there, and every closed
     * one (all but the last, which recovery may complete) byte for byte. */
    list_gens(dir, &after, 1);
    int lost = 0, changed = 0;
    for (int i = 0; i < before.n; i++) {
        int j = gens_find(&after, before.g[i]);
        if (j < 0) lost++;
        else if (i < before.n - 1 && after.h[j] != before.h[i]) changed++;
    }
    if (lost || changed) {
        print_gens("kill: before", &before);
        print_gens("kill: after recovery", &after);
    }
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(changed, 0);
    for (int i = 1; i < after.n; i++) CU_ASSERT_EQUAL(after.g[i], after.g[i - 1] + 1);
    tu_table(inst, dbpath, 0, &s, &t);
    int bad = 0;
    for (int k = 0; k < 2000; k++) bad += !value_is(s, t, k, k < 1000 ? 'a' : 'b');
    CU_ASSERT_EQUAL(bad, 0);
    /* The killed backup recorded nothing; a new one runs to completion. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errMissingFullBackup);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JetTerm(inst);
}

/* Model of the chain test: version per key, 0 = absent. */
static uint32_t cmodel[400];

static void chain_update(uint64_t *rng, int n)
{
    char v[300];
    for (int i = 0; i < n; i++) {
        int k = (int)(tu_rand(rng) % 400);
        uint32_t ver = (uint32_t)(tu_rand(rng) % 1000000) + 1;
        char key[16];
        snprintf(key, sizeof key, "c%05d", k);
        if (ver % 7 == 0) {
            JET_ERR e = JetDeleteKV(s, t, key, strlen(key));
            CU_ASSERT(e == JET_errSuccess || e == JET_errRecordNotFound);
            cmodel[k] = 0;
        } else {
            snprintf(v, sizeof v, "%u-%0*u", ver, (int)(ver % 250), 0u);
            CU_ASSERT_FATAL(JetPutKV(s, t, key, strlen(key), v, strlen(v), 0) >= 0);
            cmodel[k] = ver;
        }
    }
}

/* The writers of the chain test (the bounds of tests/fs/test_mount.c):
 * writer w's transaction v sets its keys w<w>:o0..o2 and one of
 * w<w>:r00..r49 (its pick kept in touched[v]) to v, committed durably.
 * With every writer's acked counter read just before a backup's Begin
 * (low) and its started counter just after Begin returned (high), the
 * backup restores, per writer, one v with low <= v <= high on all its own
 * keys (no transaction in part) and on the others exactly what
 * transactions 1..v left: nothing started after Begin returned. */
#define WRITERS 2
#define WOWN 3
#define WRAND 50
#define WHIST 200000
static struct cwriter {
    pthread_t th;
    unsigned long started, acked;
    uint64_t rng;
    uint8_t touched[WHIST];
} cw[WRITERS];
static int wstop, wfailures;

static void wvalue(char *v, size_t cb, int w, unsigned long ver)
{
    snprintf(v, cb, "w%d-%lu-%0*u", w, ver, (int)(ver % 200), 0u);
}

/* Writer w's key k: its own keys first, then the random ones. */
static void wkey(char *key, size_t cb, int w, int k)
{
    if (k < WOWN) snprintf(key, cb, "w%d:o%d", w, k);
    else snprintf(key, cb, "w%d:r%02d", w, k - WOWN);
}

static void *chain_writer(void *arg)
{
    struct cwriter *w = arg;
    int id = (int)(w - cw);
    JET_SESID ws = 0;
    JET_DBID wd;
    JET_TABLEID wt;
    JET_ERR err = JetBeginSession(inst, &ws, NULL, NULL);
    if (err >= 0) err = JetOpenDatabase(ws, dbpath, NULL, &wd, 0);
    if (err >= 0) err = JetOpenTable(ws, wd, "t", NULL, 0, 0, &wt);
    while (err >= 0 && !__atomic_load_n(&wstop, __ATOMIC_SEQ_CST)) {
        unsigned long ver = w->acked + 1;
        char key[16], v[300];
        if (ver >= WHIST) err = JET_errOutOfMemory; /* history full: never in a run of seconds */
        if (err < 0) break;
        int r = (int)(tu_rand(&w->rng) % WRAND);
        w->touched[ver] = (uint8_t)r;
        __atomic_store_n(&w->started, ver, __ATOMIC_SEQ_CST);
        wvalue(v, sizeof v, id, ver);
        err = JetBeginTransaction(ws);
        for (int k = 0; k <= WOWN && err >= 0; k++) {
            wkey(key, sizeof key, id, k < WOWN ? k : WOWN + r);
            err = JetPutKV(ws, wt, key, strlen(key), v, strlen(v), 0);
        }
        if (err >= 0) err = JetCommitTransaction(ws, 0);
        else JetRollback(ws, 0);
        if (err >= 0) __atomic_store_n(&w->acked, ver, __ATOMIC_SEQ_CST);
        sleep_ms(1);
    }
    if (err < 0) fprintf(stderr, "chain writer %d: %ld %s\n", id, err, JetGetLastErrorDetail());
    if (err < 0) __atomic_add_fetch(&wfailures, 1, __ATOMIC_SEQ_CST);
    JetEndSession(ws, 0);
    return NULL;
}

/* Starts the writers and returns once each has committed a few more. */
static void writers_start(void)
{
    unsigned long base[WRITERS];
    __atomic_store_n(&wstop, 0, __ATOMIC_SEQ_CST);
    for (int w = 0; w < WRITERS; w++) {
        base[w] = cw[w].acked;
        CU_ASSERT_FATAL(pthread_create(&cw[w].th, NULL, chain_writer, &cw[w]) == 0);
    }
    for (int w = 0; w < WRITERS; w++)
        while (__atomic_load_n(&cw[w].acked, __ATOMIC_SEQ_CST) < base[w] + 5 &&
               !__atomic_load_n(&wfailures, __ATOMIC_SEQ_CST))
            sleep_ms(1);
}

static void writers_stop(void)
{
    __atomic_store_n(&wstop, 1, __ATOMIC_SEQ_CST);
    for (int w = 0; w < WRITERS; w++) pthread_join(cw[w].th, NULL);
    CU_ASSERT_EQUAL(wfailures, 0);
}

/* The state at a backup's begin: the main thread's model, the writers' bounds. */
struct at_begin {
    uint32_t c[400];
    unsigned long low[WRITERS], high[WRITERS];
};

/* key holds exactly want (NULL: absent). */
static int key_is(JET_SESID rs, JET_TABLEID rt, const char *key, const char *want)
{
    char v[300];
    unsigned long n = 0;
    JET_ERR e = JetRetrieveKV(rs, rt, key, strlen(key), v, sizeof v - 1, &n, 0);
    if (!want) return e == JET_errRecordNotFound;
    return e >= 0 && n == strlen(want) && memcmp(v, want, n) == 0;
}

/* Mismatches between the table in (rs, rt) and the state ab. */
static int models_mismatch(JET_SESID rs, JET_TABLEID rt, const struct at_begin *ab)
{
    char key[16], want[300];
    int bad = 0;
    for (int k = 0; k < 400; k++) {
        snprintf(key, sizeof key, "c%05d", k);
        snprintf(want, sizeof want, "%u-%0*u", ab->c[k], (int)(ab->c[k] % 250), 0u);
        bad += !key_is(rs, rt, key, ab->c[k] ? want : NULL);
    }
    for (int w = 0; w < WRITERS; w++) {
        char v[300] = {0};
        unsigned long n = 0, ver = 0, last[WRAND] = {0};
        wkey(key, sizeof key, w, 0);
        if (JetRetrieveKV(rs, rt, key, strlen(key), v, sizeof v - 1, &n, 0) >= 0) sscanf(v, "w%*d-%lu", &ver);
        if (ver < ab->low[w] || ver > ab->high[w]) {
            fprintf(stderr, "writer %d restored at %lu, outside [%lu, %lu] (acked before Begin, started by its return)\n",
                    w, ver, ab->low[w], ab->high[w]);
            bad++;
            continue;
        }
        for (unsigned long i = 1; i <= ver; i++) last[cw[w].touched[i]] = i;
        for (int k = 0; k < WOWN + WRAND; k++) {
            unsigned long x = k < WOWN ? ver : last[k - WOWN];
            wkey(key, sizeof key, w, k);
            wvalue(want, sizeof want, w, x);
            if (!key_is(rs, rt, key, x ? want : NULL)) {
                fprintf(stderr, "writer %d at %lu: %s is not %.16s\n", w, ver, key, x ? want : "absent");
                bad++;
            }
        }
    }
    return bad;
}

/* The database in rdir (recovered when opened) holds the state ab. */
static void check_state(const char *rdir, const struct at_begin *ab)
{
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = open_restored(rdir, &rs, &rt);
    int bad = models_mismatch(rs, rt, ab);
    if (bad) fprintf(stderr, "%s: %d mismatches with the state expected\n", rdir, bad);
    CU_ASSERT_EQUAL(bad, 0);
    JetTerm(ri);
}

/* Restores sets[0..n) (into <last set>.r) and checks it against ab. */
static void restore_and_check(const char *const *sets, int n, const struct at_begin *ab)
{
    char r[1300];
    snprintf(r, sizeof r, "%.1200s.r", sets[n - 1]);
    JET_ERR err = JetRestoreSets(sets, n, r, 0, 0);
    if (err < 0) fprintf(stderr, "restore up to %s: %ld %s\n", sets[n - 1], err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    check_state(r, ab);
}

/* The backup id and predecessor id a saved set's manifest names. */
static void manifest_ids(const char *setdir, uint64_t ids[2])
{
    char p[1300];
    size_t n = 0;
    snprintf(p, sizeof p, "%.1200s/backup.manifest", setdir);
    char *m = tu_slurp(p, &n), *a, *b;
    CU_ASSERT_FATAL(m != NULL);
    m[n] = '\0';
    CU_ASSERT_FATAL((a = strstr(m, "\"backup_id\": \"")) && (b = strstr(m, "\"predecessor_id\": \"")));
    ids[0] = strtoull(a + 14, NULL, 16);
    ids[1] = strtoull(b + 19, NULL, 16);
    free(m);
}

/* How often a truncating end ran with the checkpoint held inside its set. */
static int held_ends;

/*
 * After every end, against the log directory just before it (before) and
 * the checkpoint generation then (ck_before): a generation is gone only if
 * the end truncated, it is within the set (<= held_high) and below the
 * checkpoint; every generation the truncation was allowed to delete before
 * the end is gone; what is left is contiguous and holds the checkpoint's
 * generation, where recovery starts.
 */
static void check_truncation_safe(const struct gens *before, uint32_t ck_before, uint32_t held_high, int truncated)
{
    static struct gens after;
    list_gens(dir, &after, 0);
    uint32_t ck = ckpt_gen();
    CU_ASSERT(ck >= ck_before);
    int wrong = 0, kept = 0;
    for (int i = 0; i < before->n; i++) {
        uint32_t g = before->g[i];
        int gone = gens_find(&after, g) < 0;
        if (gone && (!truncated || g > held_high || g >= ck)) wrong++;
        if (!gone && truncated && g <= held_high && g < ck_before) kept++;
    }
    CU_ASSERT(after.n >= 1);
    for (int i = 1; i < after.n; i++) CU_ASSERT_EQUAL(after.g[i], after.g[i - 1] + 1);
    CU_ASSERT(gens_find(&after, ck) >= 0);
    if (wrong || kept || gens_find(&after, ck) < 0) {
        fprintf(stderr, "truncation (%s, set to %u, checkpoint %u..%u): %d wrongly deleted, %d not deleted\n",
                truncated ? "truncated" : "not truncated", held_high, ck_before, ck, wrong, kept);
        print_gens("  before end", before);
        print_gens("  after end", &after);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(kept, 0);
    /* The checkpoint held inside the set: a truncation that ignored it
     * would have deleted ck_before..held_high, which recovery needs. */
    if (truncated && ck_before <= held_high) {
        held_ends++;
        for (uint32_t g = ck_before; g <= held_high; g++) CU_ASSERT(gens_find(&after, g) >= 0);
    }
}

/* Asks for truncation (if truncate) and ends the running backup normally,
 * checking what the end deleted; li is this backup's range. */
static void end_and_check(int truncate, const JET_LOGINFO *li)
{
    static struct gens before;
    if (truncate) TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    list_gens(dir, &before, 0);
    uint32_t ck = ckpt_gen();
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    check_truncation_safe(&before, ck, li->ulGenHigh, truncate);
}

/*
 * One backup of the chain, under load: the writers run from before its
 * Begin to after its End, ab gets the state at Begin.  type is the
 * manifest's ("full" and "copy" begin full, "incremental" and
 * "differential" incremental; full and incremental end truncated).  The
 * set is saved to setdir; ids (from its manifest) are the ones the end
 * recorded in the header slot of its kind; del gets what a truncating end
 * would delete (JetGetTruncateLogInfo after GetLogInfo).
 */
static void chain_backup(const char *setdir, const char *type, struct at_begin *ab, uint64_t *rng, uint64_t ids[2],
                         struct gens *del)
{
    static const char *kinds[] = {"full", "incremental", "differential", "copy"};
    static char names[65536];
    int kind = 0;
    while (strcmp(kinds[kind], type)) kind++;
    JET_LOGINFO li = {.cbSize = sizeof li};
    unsigned long cb = 0;
    writers_start();
    for (int w = 0; w < WRITERS; w++) ab->low[w] = __atomic_load_n(&cw[w].acked, __ATOMIC_SEQ_CST);
    begin_fixed(kind == 1 || kind == 2 ? JET_bitBackupIncremental : 0);
    for (int w = 0; w < WRITERS; w++) ab->high[w] = __atomic_load_n(&cw[w].started, __ATOMIC_SEQ_CST);
    memcpy(ab->c, cmodel, sizeof cmodel);
    chain_update(rng, 50); /* after begin: not in this set */
    save_set(setdir, kind == 0 || kind == 3, rng, type);
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    truncate_info(del);
    end_and_check(kind < 2, &li);
    writers_stop();
    manifest_ids(setdir, ids);
    JET_INSPECT_DBHEADER hd = live_hdr();
    CU_ASSERT(ids[0] != 0);
    CU_ASSERT_EQUAL(hd.backup[kind].backup_id, ids[0]);
    CU_ASSERT_EQUAL(hd.backup[kind].predecessor_id, ids[1]);
    CU_ASSERT_EQUAL(hd.backup[kind].gen_high, li.ulGenHigh);
}

/*
 * full, incremental, copy, four more incrementals; full, two
 * differentials: each taken while two writers commit (and the main
 * session changes its own keys after Begin), each restored (with the sets
 * before it in its chain) to the state at its Begin.  Every end keeps what
 * recovery needs (check_truncation_safe).  The copy changes no history:
 * the full/incremental/differential slots of the header are the same
 * before its Begin and after its End, no generation is deleted although a
 * truncation would have had some to delete, and the next incremental
 * chains to the incremental before the copy.
 */
static void test_chains_full_copy_incrementals_differential(void)
{
    scratch("bk_chain");
    uint64_t rng = tu_seed("test_chains_full_copy_incrementals_differential");
    memset(cmodel, 0, sizeof cmodel);
    memset(cw, 0, sizeof cw);
    for (int w = 0; w < WRITERS; w++) cw[w].rng = tu_rand(&rng) | 1;
    wfailures = held_ends = 0;
    /* The checkpoint stays where it is unless reopen() moves it: every
     * truncating end below runs with it behind the set's last generation,
     * so an end that ignored it would delete generations recovery needs. */
    ckpt_ms = CKPT_HELD_MS;
    start(0);
    /* 0 full, 1..5 incrementals, 6 copy, 7 second full, 8 and 9 differentials */
    static char sets[10][1200];
    static struct at_begin ab[10];
    static struct gens del, g0, g1;
    const char *names[10] = {"full", "inc1", "inc2", "inc3", "inc4", "inc5", "copy", "full2", "diff0", "diff1"};
    uint64_t ids[10][2];
    for (int i = 0; i < 10; i++) snprintf(sets[i], sizeof sets[i], "%.1000s/%s", dir, names[i]);
    chain_update(&rng, 300);
    reopen(); /* the checkpoint moves: the full's truncation deletes the older generations */
    chain_backup(sets[0], "full", &ab[0], &rng, ids[0], &del);
    CU_ASSERT_EQUAL(ids[0][1], 0);
    for (int i = 1; i <= 5; i++) {
        /* The checkpoint moves to here and is held while this round's
         * generations are written: the end truncates below it and keeps
         * the set's generations from it on. */
        reopen();
        chain_update(&rng, 150);
        if (i == 2) {
            JET_INSPECT_DBHEADER h0 = live_hdr(), h1;
            CU_ASSERT(h0.backup[0].backup_id != 0 && h0.backup[1].backup_id != 0);
            list_gens(dir, &g0, 0);
            chain_backup(sets[6], "copy", &ab[6], &rng, ids[6], &del);
            list_gens(dir, &g1, 0);
            h1 = live_hdr();
            CU_ASSERT(memcmp(h1.backup, h0.backup, 3 * sizeof h0.backup[0]) == 0);
            CU_ASSERT(ids[6][1] == 0 && ids[6][0] != ids[0][0] && ids[6][0] != ids[1][0]);
            CU_ASSERT(del.n >= 1); /* a truncation would have deleted these; nothing is gone */
            for (int j = 0; j < g0.n; j++) CU_ASSERT(gens_find(&g1, g0.g[j]) >= 0);
            chain_update(&rng, 50);
        }
        chain_backup(sets[i], "incremental", &ab[i], &rng, ids[i], &del);
        CU_ASSERT_EQUAL(ids[i][1], ids[i - 1][0]); /* inc2: to inc1, past the copy */
    }
    const char *chain[6] = {sets[0], sets[1], sets[2], sets[3], sets[4], sets[5]};
    for (int i = 0; i <= 5; i++) restore_and_check(chain, i + 1, &ab[i]);
    /* Skipping a link is refused by the chain of ids. */
    char r[1200];
    const char *gap[3] = {sets[0], sets[1], sets[3]};
    snprintf(r, sizeof r, "%.1000s/r_gap", dir);
    TU_CHECK_ERR(JetRestoreSets(gap, 3, r, 0, 0), JET_errInvalidBackupSequence);
    /* The copy backup restores on its own to its own begin. */
    const char *copy_only[1] = {sets[6]};
    restore_and_check(copy_only, 1, &ab[6]);
    /* full + differential: a new full, then two differentials (not truncated). */
    reopen();
    chain_update(&rng, 100);
    chain_backup(sets[7], "full", &ab[7], &rng, ids[7], &del);
    for (int i = 8; i <= 9; i++) {
        chain_update(&rng, 150);
        chain_backup(sets[i], "differential", &ab[i], &rng, ids[i], &del);
        CU_ASSERT_EQUAL(ids[i][1], ids[7][0]);
    }
    for (int i = 7; i <= 9; i++) {
        const char *fd[2] = {sets[7], sets[i]};
        restore_and_check(fd, i == 7 ? 1 : 2, &ab[i]);
    }
    /* The checkpoint was held inside the set at the truncating ends (the
     * incrementals and the second full, at least). */
    CU_ASSERT(held_ends >= 6);
    fprintf(stderr, "chain: the writers committed %lu and %lu transactions through 10 backups\n", cw[0].acked, cw[1].acked);
    /* Crash now (nothing flushed since the checkpoint, which is still
     * behind the truncated sets): recovery replays from the checkpoint
     * through every generation the truncations kept, to the live model. */
    JET_INSPECT_DBHEADER hd = live_hdr();
    CU_ASSERT(ckpt_gen() < hd.backup[2].gen_high);
    TU_CHECK_ERR(JetTerm2(inst, JET_bitTermAbrupt), JET_errSuccess);
    struct at_begin now;
    memcpy(now.c, cmodel, sizeof cmodel);
    for (int w = 0; w < WRITERS; w++) now.low[w] = now.high[w] = cw[w].acked;
    check_state(dir, &now);
    ckpt_ms = 20;
}

/*
 * Legacy single-instance mode (JetInit(NULL), instance-less parameters):
 * a complete full backup through the instance-less family only, saved to
 * a directory as a backup client would, restores to the data at begin.
 * The mode is process-wide but returns to "none" when the last instance
 * terminates, so this runs in-process between multi-instance tests; the
 * instance-less parameters are the process defaults, reset at the end.
 */
static void test_legacy_mode_instance_less_full_backup(void)
{
    scratch("bk_legacy");
    char setdir[1200], r[1200];
    snprintf(setdir, sizeof setdir, "%s/set", dir);
    snprintf(r, sizeof r, "%s/restored", dir);
    CU_ASSERT_FATAL(mkdir(setdir, 0700) == 0);
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramSystemPath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramLogFilePath, 0, dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramLogFileSize, 256, NULL), JET_errSuccess);
    /* Before JetInit no mode is set: the instance-less forms refuse. */
    TU_CHECK_ERR(JetBeginExternalBackup(0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetInit(NULL), JET_errSuccess);
    JET_DBID db;
    CU_ASSERT_FATAL(JetBeginSession(0, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(s, dbpath, NULL, &db, JET_bitDbOverwriteExisting) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "t", 0, 0, &t) >= 0);
    tu_load(s, t, 0, 1500, 'a');
    TU_CHECK_ERR(JetEndExternalBackup(), JET_errNoBackup);
    TU_CHECK_ERR(JetBeginExternalBackup(0), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackup(0), JET_errBackupInProgress);
    /* After begin, before GetLogInfo: in the set, as ESE (issue 12). */
    tu_load(s, t, 0, 500, 'b');
    tu_load(s, t, 1500, 1600, 'b');
    static char dbs[65536], logs[65536], names[65536], buf[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetAttachInfo(dbs, sizeof dbs, &cb), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(dbs, dbpath);
    /* The databases (sequential reads), then the log phase. */
    int files = 0;
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) TU_CHECK_ERR(JetGetLogInfo(logs, sizeof logs, &cb), JET_errSuccess);
        for (char *p = phase ? logs : dbs; *p; p += strlen(p) + 1) {
            JET_HANDLE h;
            unsigned long lo = 0, hi = 0, got = 0;
            TU_CHECK_ERR(JetOpenFile(p, &h, &lo, &hi), JET_errSuccess);
            uint64_t size = (uint64_t)lo | ((uint64_t)hi << 32), total = 0;
            char out[2600];
            snprintf(out, sizeof out, "%s/%s", setdir, strrchr(p, '/') + 1);
            FILE *f = fopen(out, "wb");
            CU_ASSERT_FATAL(f != NULL);
            JET_ERR err;
            while ((err = JetReadFile(h, buf, sizeof buf, &got)) == JET_errSuccess && got) {
                CU_ASSERT_FATAL(fwrite(buf, 1, got, f) == got);
                total += got;
            }
            CU_ASSERT_EQUAL(err, JET_errSuccess);
            fclose(f);
            CU_ASSERT_EQUAL(total, size);
            TU_CHECK_ERR(JetCloseFile(h), JET_errSuccess);
            files++;
        }
    }
    CU_ASSERT(files >= 2);
    TU_CHECK_ERR(JetTruncateLog(), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackup(), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackup(), JET_errNoBackup);
    JET_INSPECT_DBHEADER hd = live_hdr();
    CU_ASSERT(hd.backup[0].backup_id != 0);   /* recorded as a full */
    /* JetStopBackup reaches the legacy instance too. */
    TU_CHECK_ERR(JetBeginExternalBackup(JET_bitBackupIncremental), JET_errSuccess);
    TU_CHECK_ERR(JetStopBackup(), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfo(names, sizeof names, &cb), JET_errBackupAbortByServer);
    TU_CHECK_ERR(JetEndExternalBackup(), JET_errSuccess);
    JetEndSession(s, 0);
    TU_CHECK_ERR(JetTerm(0), JET_errSuccess);
    /* Back to the defaults for the tests that follow. */
    JetSetSystemParameter(NULL, 0, JET_paramSystemPath, 0, ".");
    JetSetSystemParameter(NULL, 0, JET_paramLogFilePath, 0, ".");
    JetSetSystemParameter(NULL, 0, JET_paramLogFileSize, 1024, NULL);

    const char *set[] = {setdir};
    int err = restore_into(r, set, 1, 0);
    if (err < 0) fprintf(stderr, "legacy restore: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = open_restored(r, &rs, &rt);
    int bad = 0;
    for (int k = 0; k < 2000; k++) bad += !value_is(rs, rt, k, k < 500 || (k >= 1500 && k < 1600) ? 'b' : k < 1500 ? 'a' : 0);
    JetTerm(ri);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_corrupt_page_read_through_backup_is_named(void)
{
    scratch("bk_corrupt");
    start(0);
    tu_load(s, t, 0, 2000, 'a');
    sleep_ms(300); /* checkpoints write every page */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "printf 'Q' | dd of='%s' bs=1 seek=$((8192 * 5 + 3000)) conv=notrunc 2>/dev/null", dbpath);
    CU_ASSERT_FATAL(system(cmd) == 0);
    JET_HANDLE h;
    CU_ASSERT_FATAL(JetOpenFileInstance(inst, dbpath, &h, NULL, NULL) >= 0);
    char buf[8192];
    unsigned long got = 0;
    TU_CHECK_ERR(JetReadFileAtInstance(inst, h, 8192 * 5 + 100, buf, 100, &got), JET_errReadVerifyFailure);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "page 5 "));
    /* Other pages still read; the bad one is refused every time. */
    TU_CHECK_ERR(JetReadFileAtInstance(inst, h, 8192 * 4, buf, 8192, &got), JET_errSuccess);
    TU_CHECK_ERR(JetReadFileAtInstance(inst, h, 8192 * 5, buf, 8192, &got), JET_errReadVerifyFailure);
    JetCloseFileInstance(inst, h);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    JetTerm(inst);
}

/* ESE: "The database is being backed up, and cannot be detached." */
static void test_detach_during_backup_is_refused(void)
{
    scratch("bk_detach");
    start(0);
    tu_load(s, t, 0, 500, 'd');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetDetachDatabase(s, dbpath), JET_errBackupInProgress);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "backup is in progress"));
    TU_CHECK_ERR(JetDetachDatabase(s, NULL), JET_errBackupInProgress);
    /* The backup still reads the whole database, verified. */
    size_t n = 0;
    uint64_t rng = 1;
    free(read_through_backup(dbpath, &n, &rng));
    CU_ASSERT(n > 0);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    /* After the end, detach works (once the session has closed it). */
    JET_DBID db;
    CU_ASSERT_FATAL(JetOpenDatabase(s, dbpath, NULL, &db, 0) >= 0);
    JetCloseTable(s, t);
    JetCloseDatabase(s, db, 0);
    JetCloseDatabase(s, db, 0);
    TU_CHECK_ERR(JetDetachDatabase(s, dbpath), JET_errSuccess);
    CU_ASSERT(JetTerm(inst) >= 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("backup", NULL, NULL);
#define ADD(fn) CU_add_test(su, #fn, fn)
    ADD(test_misuse_returns_documented_errors);
    ADD(test_snapshot_is_the_file_as_at_begin);
    ADD(test_full_and_incremental_restore);
    ADD(test_aborted_backup_truncates_nothing);
    ADD(test_truncate_log_info_lists_what_end_deletes);
    ADD(test_legacy_mode_instance_less_full_backup);
    ADD(test_kill9_during_backup_loses_nothing);
    ADD(test_corrupt_page_read_through_backup_is_named);
    ADD(test_chains_full_copy_incrementals_differential);
    ADD(test_detach_during_backup_is_refused);
    return tu_run();
}
