/*
 * test_backup.c -- the streaming backup API: misuse errors, the
 * point-in-time snapshot (the database image read through the backup is
 * byte-identical to the file as it stood at begin, however much the
 * engine writes meanwhile), coverage rules for truncation, and the backup
 * history kept in the database header.  Truncation is checked against the
 * actual list of generations in the log directory: an aborted or stopped
 * backup deletes nothing, a normal end deletes exactly what
 * JetGetTruncateLogInfo named, never a generation at or past the
 * checkpoint (held behind the set with a long checkpoint period).  Also:
 * the instance-less family, end to end in legacy mode and refused in
 * multi-instance mode; a corrupt page read through a backup; detach
 * refused while a backup runs.  Restores of saved sets, a kill -9 during
 * a backup and the chains under writers are in test_backup_chain.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backupfix.h"
#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"

/* The test database of this suite (ckpt_ms: see BF_CKPT_HELD_MS). */
static struct bf_db bk = {.ckpt_ms = 20};

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
    TU_CHECK_ERR(JetOpenFile(bk.dbpath, &h2, &lo, &hi), want);
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
    bf_scratch(&bk, "bk_misuse");
    /* Before JetInit: ESE's instance gate (issue 12 changed -523 to -1029). */
    JET_INSTANCE early = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&early, "early") >= 0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(early, 0), JET_errNotInitialized);
    JetTerm(early);
    bf_start(&bk, 0);
    char buf[4096];
    unsigned long cb;
    JET_HANDLE h;
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errNoBackup);
    TU_CHECK_ERR(JetGetAttachInfoInstance(bk.inst, buf, sizeof buf, &cb), JET_errNoBackup);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errNoBackup);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupAtomic), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupSnapshot), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0x8000), JET_errInvalidGrbit);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errMissingFullBackup);
    tu_load(bk.s, bk.t, 0, 500, 'a');
    /* The instance-less forms belong to legacy mode: refused with no backup
     * running, and with one running on the multi-instance instance, which
     * they leave alone: a file open in it is neither read (a sequential read
     * from 0 still gets it all) nor closed, the backup neither moved to its
     * log phase, stopped, ended nor set to truncate (its normal end records
     * a copy, no full). */
    instance_less_refused(0);
    JET_INSPECT_DBHEADER h0 = bf_live_hdr(&bk), h1;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    unsigned long lo = 0, hi = 0;
    TU_CHECK_ERR(JetOpenFileInstance(bk.inst, bk.dbpath, &h, &lo, &hi), JET_errSuccess);
    instance_less_refused(h);
    unsigned long long size = lo | (unsigned long long)hi << 32, pos = 0;
    while (JetReadFileInstance(bk.inst, h, buf, sizeof buf, &cb) == JET_errSuccess && cb) pos += cb;
    CU_ASSERT(size > 0 && pos == size);
    TU_CHECK_ERR(JetCloseFileInstance(bk.inst, h), JET_errSuccess);
    instance_less_refused(0); /* no file open: a JetGetLogInfo reaching it would count */
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errInvalidBackupSequence); /* still before GetLogInfo */
    uint64_t rng = 1;
    JET_LOGINFO li;
    read_whole_set(1, &li, &rng); /* every log read whole: a JetTruncateLog reaching it would count */
    instance_less_refused(0);
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    CU_ASSERT(JetGetBackupStatusInstance(bk.inst, &st) == JET_errSuccess && st.fInProgress && !st.fStopped);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    h1 = bf_live_hdr(&bk);
    CU_ASSERT(h1.backup[3].backup_id != 0 && h1.backup[3].backup_id != h0.backup[3].backup_id);
    CU_ASSERT(memcmp(h1.backup, h0.backup, 3 * sizeof h0.backup[0]) == 0);
    instance_less_refused(0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errBackupInProgress);
    /* Not an attached database, in the database phase: -1203 (issue 12). */
    TU_CHECK_ERR(JetOpenFileInstance(bk.inst, "/no/such/file", &h, NULL, NULL), JET_errDatabaseNotFound);
    TU_CHECK_ERR(JetGetAttachInfoInstance(bk.inst, buf, sizeof buf, &cb), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(buf, bk.dbpath);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errInvalidBackupSequence);
    li.cbSize = 3;
    TU_CHECK_ERR(JetGetLogInfoInstance2(bk.inst, buf, sizeof buf, &cb, &li), JET_errInvalidParameter);
    li.cbSize = sizeof li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(bk.inst, buf, sizeof buf, &cb, &li), JET_errSuccess);
    CU_ASSERT(li.ulGenLow >= 1 && li.ulGenHigh >= li.ulGenLow);
    CU_ASSERT_STRING_EQUAL(li.szBaseName, "edb");
    /* Not every log read: truncation refused, nothing deleted. */
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errLogFileNotCopied);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndNormal | JET_bitBackupEndAbort),
                 JET_errInvalidParameter);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, 0), JET_errInvalidParameter);
    /* Databases are opened in the database phase (issue 12: test_ese_backup.c). */
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndAbort), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    /* Stop: calls fail promptly, Close and End still work. */
    TU_CHECK_ERR(JetOpenFileInstance(bk.inst, bk.dbpath, &h, NULL, NULL), JET_errSuccess);
    TU_CHECK_ERR(JetStopBackupInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetReadFileInstance(bk.inst, h, buf, sizeof buf, &cb), JET_errBackupAbortByServer);
    TU_CHECK_ERR(JetGetAttachInfoInstance(bk.inst, buf, sizeof buf, &cb), JET_errBackupAbortByServer);
    TU_CHECK_ERR(JetCloseFileInstance(bk.inst, h), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    /* A stopped backup recorded nothing: incremental still refused. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errMissingFullBackup);
    JetTerm(bk.inst);
    /* Circular logging refuses incremental backups. */
    bf_scratch(&bk, "bk_circular");
    bf_start(&bk, 1);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errInvalidBackup);
    JetTerm(bk.inst);
}

static void test_snapshot_is_the_file_as_at_begin(void)
{
    bf_scratch(&bk, "bk_snapshot");
    uint64_t rng = tu_seed("test_snapshot_is_the_file_as_at_begin");
    bk.snap_kb = 64; /* 8 pages in memory, the rest spills to a file */
    bf_start(&bk, 0);
    bk.snap_kb = 0;
    tu_load(bk.s, bk.t, 0, 3000, 'a');
    bf_sleep_ms(300); /* let checkpoints write it all, so the file is still until begin */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    /* The reference: the file as it stands now.  No session writes until
     * the copy is taken; the checkpointer may, which is the point. */
    size_t refn = 0;
    unsigned char *ref = (unsigned char *)tu_slurp(bk.dbpath, &refn);
    CU_ASSERT_FATAL(ref != NULL);
    /* Rewrite everything and grow the file while the backup is open. */
    tu_load(bk.s, bk.t, 0, 6000, 'z');
    bf_sleep_ms(200);
    struct stat st;
    stat(bk.dbpath, &st);
    CU_ASSERT((size_t)st.st_size > refn);
    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    TU_CHECK_ERR(JetGetBackupStatusInstance(bk.inst, &bst), JET_errSuccess);
    fprintf(stderr, "snapshot: %llu bytes preserved in memory, %llu spilled\n", bst.cbPreservedMemory,
            bst.cbPreservedSpill);
    CU_ASSERT(bst.fInProgress && bst.cbPreservedMemory <= 64 * 1024 + 2 * 8192);
    CU_ASSERT(bst.cbPreservedSpill > 0);
    size_t n = 0;
    unsigned char *got = bf_read_through_backup(&bk, bk.dbpath, &n, &rng);
    CU_ASSERT_EQUAL(n, refn);
    /* Byte-identical past the two header pages; the headers served carry
     * the backup-copy marker that restore needs, so they differ there. */
    CU_ASSERT(n > 2 * 8192 && memcmp(got + 2 * 8192, ref + 2 * 8192, (refn < n ? refn : n) - 2 * 8192) == 0);
    CU_ASSERT(memcmp(got + 8, ref + 8, 232) == 0);        /* same header up to the marker... */
    CU_ASSERT(memcmp(got + 240, ref + 240, 8) != 0);      /* ...which is set in the copy only */
    /* Logs: read them all, then truncation is allowed. */
    char logs[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetLogInfoInstance(bk.inst, logs, sizeof logs, &cb), JET_errSuccess);
    int nlogs = 0;
    for (char *p = logs; *p; p += strlen(p) + 1) {
        size_t ln = 0;
        free(bf_read_through_backup(&bk, p, &ln, &rng));
        nlogs++;
    }
    CU_ASSERT(nlogs >= 1);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd = bf_live_hdr(&bk);
    CU_ASSERT(hd.backup[0].backup_id != 0 && hd.backup[0].gen_high >= hd.backup[0].gen_low);
    /* Now an incremental is possible; its logs start after the full's. */
    tu_load(bk.s, bk.t, 0, 500, 'q');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstance(bk.inst, logs, sizeof logs, &cb), JET_errInvalidBackupSequence);
    JET_HANDLE h;
    /* ESE's incremental is in its log phase from begin: -521 ends it (issue 12). */
    TU_CHECK_ERR(JetOpenFileInstance(bk.inst, bk.dbpath, &h, NULL, NULL), JET_errInvalidBackupSequence);
    TU_CHECK_ERR(JetGetAttachInfoInstance(bk.inst, logs, sizeof logs, &cb), JET_errNoBackup);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errSuccess);
    JET_LOGINFO li = {.cbSize = sizeof li};
    TU_CHECK_ERR(JetGetLogInfoInstance2(bk.inst, logs, sizeof logs, &cb, &li), JET_errSuccess);
    /* Every generation still present, which starts right after the full's
     * truncated ones (or earlier if the checkpoint held some back). */
    CU_ASSERT(li.ulGenLow >= 1 && li.ulGenLow <= hd.backup[0].gen_high + 1);
    /* Ended without truncation: recorded as differential, not incremental. */
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd2 = bf_live_hdr(&bk);
    CU_ASSERT(hd2.backup[2].backup_id != 0);
    CU_ASSERT_EQUAL(hd2.backup[2].predecessor_id, hd.backup[0].backup_id);
    CU_ASSERT_EQUAL(hd2.backup[1].backup_id, 0);
    /* An aborted full changes no history. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndAbort), JET_errSuccess);
    JET_INSPECT_DBHEADER hd3 = bf_live_hdr(&bk);
    CU_ASSERT(memcmp(&hd3.backup, &hd2.backup, sizeof hd3.backup) == 0);
    free(ref);
    free(got);
    JetTerm(bk.inst);
}

/* Reads every file of the running backup's set whole through the API
 * (the databases of a full backup, then, unless li is NULL, GetLogInfo
 * and every log). */
static void read_whole_set(int with_db, JET_LOGINFO *li, uint64_t *rng)
{
    static char names[65536];
    unsigned long cb = 0;
    if (with_db) {
        TU_CHECK_ERR(JetGetAttachInfoInstance(bk.inst, names, sizeof names, &cb), JET_errSuccess);
        CU_ASSERT_STRING_EQUAL(names, bk.dbpath);
        for (char *p = names; *p; p += strlen(p) + 1) {
            size_t n = 0;
            free(bf_read_through_backup(&bk, p, &n, rng));
        }
    }
    if (!li) return;
    li->cbSize = sizeof *li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(bk.inst, names, sizeof names, &cb, li), JET_errSuccess);
    int nlogs = 0;
    for (char *p = names; *p; p += strlen(p) + 1, nlogs++) {
        size_t n = 0;
        free(bf_read_through_backup(&bk, p, &n, rng));
    }
    CU_ASSERT_EQUAL(nlogs, (int)(li->ulGenHigh - li->ulGenLow + 1));
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
    bf_scratch(&bk, "bk_abort");
    uint64_t rng = tu_seed("test_aborted_backup_truncates_nothing");
    bf_start(&bk, 0);
    JET_LOGINFO li;
    /* History to keep: a completed full and a completed incremental. */
    tu_load(bk.s, bk.t, 0, 1500, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    tu_load(bk.s, bk.t, 1500, 2000, 'b');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errSuccess);
    read_whole_set(0, &li, &rng);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd0 = bf_live_hdr(&bk), hd1;
    CU_ASSERT(hd0.backup[0].backup_id != 0 && hd0.backup[1].backup_id != 0);
    /* Generations for a truncation to delete: the checkpoint passes them. */
    tu_load(bk.s, bk.t, 0, 2000, 'c');
    bf_sleep_ms(200);
    static struct bf_gens g0, g1, del;
    const char *what[] = {"full, End(Abort)", "full, Stop then End(Normal)", "incremental, End(Abort)",
                          "incremental, Stop then End(Normal)"};
    /* Without JetTruncateLog: since issue 12 it deletes at its call, as
     * ESE's ErrLGTruncateLog (test_ese_backup.c). */
    for (int v = 0; v < 4; v++) {
        int full = v < 2, stop = v & 1;
        TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, full ? 0 : JET_bitBackupIncremental), JET_errSuccess);
        read_whole_set(full, &li, &rng);
        bf_sleep_ms(60); /* the checkpoint settles after GetLogInfo's roll (nothing is written meanwhile) */
        bf_truncate_info(&bk, &del);
        bf_list_gens(bk.dir, &g0, 1);
        /* A normal end would delete these: the abort has something to keep. */
        CU_ASSERT(del.n >= 1);
        for (int i = 0; i < del.n; i++) CU_ASSERT(bf_gens_find(&g0, del.g[i]) >= 0);
        if (stop) {
            TU_CHECK_ERR(JetStopBackupInstance(bk.inst), JET_errSuccess);
            TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errBackupAbortByServer);
            /* ESE-NOTES: End returns JET_errSuccess past its two checks,
             * stopped or not; the backup is treated as failed. */
            TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndNormal), JET_errSuccess);
        } else {
            TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndAbort), JET_errSuccess);
        }
        TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errNoBackup);
        bf_list_gens(bk.dir, &g1, 1);
        if (!bf_gens_equal(&g0, &g1, 1)) {
            fprintf(stderr, "%s changed the log directory\n", what[v]);
            bf_print_gens("  before", &g0);
            bf_print_gens("  after", &g1);
        }
        CU_ASSERT(bf_gens_equal(&g0, &g1, 1));
        hd1 = bf_live_hdr(&bk);
        CU_ASSERT(memcmp(hd1.backup, hd0.backup, sizeof hd0.backup) == 0);
    }
    /* A normal End while still in the database phase (JetGetLogInfo never
     * called) is a failed backup too (ESE-NOTES): the database read whole,
     * yet no history, nothing deleted, even with TruncateDone. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    bf_list_gens(bk.dir, &g0, 1);
    read_whole_set(1, NULL, &rng);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndNormal | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    bf_list_gens(bk.dir, &g1, 1);
    CU_ASSERT(bf_gens_equal(&g0, &g1, 1));
    hd1 = bf_live_hdr(&bk);
    CU_ASSERT(memcmp(hd1.backup, hd0.backup, sizeof hd0.backup) == 0);
    /* The chain is intact: an incremental still follows the last one. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errSuccess);
    read_whole_set(0, &li, &rng);
    CU_ASSERT(li.ulGenLow <= hd0.backup[1].gen_high + 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndAbort), JET_errSuccess);
    /* Control: the same full ended normally does delete (so the
     * comparisons above could fail) and records a new full. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    bf_sleep_ms(60); /* the checkpoint passes what GetLogInfo's roll closed */
    bf_list_gens(bk.dir, &g0, 0);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    bf_list_gens(bk.dir, &g1, 0);
    CU_ASSERT(g1.n < g0.n);
    hd1 = bf_live_hdr(&bk);
    CU_ASSERT(hd1.backup[0].backup_id != hd0.backup[0].backup_id && hd1.backup[1].backup_id == 0);
    JetTerm(bk.inst);
}

/* ESE-NOTES 3.4: deletion only through JetTruncateLog, after every log
 * of the set was read; JET_bitBackupTruncateDone only marks the header. */
static void report_truncate_done(const char *kind, const struct bf_gens *before, const struct bf_gens *after,
                                 const JET_LOGINFO *li)
{
    int unread = 0;
    for (int i = 0; i < before->n; i++)
        if (bf_gens_find(after, before->g[i]) < 0 && before->g[i] >= li->ulGenLow && before->g[i] <= li->ulGenHigh)
            unread++;
    CU_ASSERT(bf_gens_equal(before, after, 1));
    if (!bf_gens_equal(before, after, 1)) {
        fprintf(stderr,
                "%s End(Normal|TruncateDone), no log read: %d generation(s) deleted, %d of them in the "
                "set %lu..%lu\n",
                kind, before->n - after->n, unread, li->ulGenLow, li->ulGenHigh);
        bf_print_gens("  before end", before);
        bf_print_gens("  after end", after);
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
    bf_scratch(&bk, "bk_trunc_info");
    uint64_t rng = tu_seed("test_truncate_log_info_lists_what_end_deletes");
    bk.ckpt_ms = BF_CKPT_HELD_MS;
    bf_start(&bk, 0);
    tu_load(bk.s, bk.t, 0, 1500, 'a');
    bf_reopen(&bk); /* the checkpoint moves past the generations just written */
    tu_load(bk.s, bk.t, 0, 100, 'b');
    uint32_t ck = bf_ckpt_gen(&bk);
    JET_LOGINFO li;
    static struct bf_gens before, after, listed, want;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    bf_truncate_info(&bk, &listed);
    CU_ASSERT_EQUAL(bf_ckpt_gen(&bk), ck);
    bf_list_gens(bk.dir, &before, 0);
    /* Expected: below the checkpoint and not past the set. */
    memset(&want, 0, sizeof want);
    for (int i = 0; i < before.n; i++)
        if (before.g[i] < ck && before.g[i] <= li.ulGenHigh) want.g[want.n++] = before.g[i];
    CU_ASSERT(want.n >= 2);          /* there is something to delete... */
    CU_ASSERT(ck <= li.ulGenHigh);   /* ...and the checkpoint is held inside the set */
    CU_ASSERT(li.ulGenLow == ck);    /* a full's set starts at the checkpoint */
    if (!bf_gens_equal(&listed, &want, 0)) {
        bf_print_gens("truncate info", &listed);
        bf_print_gens("expected", &want);
    }
    CU_ASSERT(bf_gens_equal(&listed, &want, 0));
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    bf_list_gens(bk.dir, &after, 0);
    /* after == before minus exactly the listed generations */
    int ok = after.n + listed.n == before.n;
    for (int i = 0; i < before.n; i++)
        ok &= (bf_gens_find(&listed, before.g[i]) >= 0) == (bf_gens_find(&after, before.g[i]) < 0);
    if (!ok) {
        bf_print_gens("before end", &before);
        bf_print_gens("after end", &after);
        bf_print_gens("listed", &listed);
    }
    CU_ASSERT(ok);
    for (uint32_t g = ck; g <= li.ulGenHigh; g++) CU_ASSERT(bf_gens_find(&after, g) >= 0);
    JET_INSPECT_DBHEADER h0 = bf_live_hdr(&bk), h1;
    CU_ASSERT(h0.backup[0].backup_id != 0);

    /* JET_bitBackupTruncateDone: a full whose logs the caller did not read
     * through the API (JetTruncateLog refuses), ended normally with it. */
    tu_load(bk.s, bk.t, 100, 1500, 'c');
    bf_reopen(&bk);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    static char names[65536];
    unsigned long cb = 0;
    read_whole_set(1, NULL, &rng);
    li.cbSize = sizeof li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(bk.inst, names, sizeof names, &cb, &li), JET_errSuccess);
    bf_truncate_info(&bk, &listed);
    CU_ASSERT(listed.n >= 1); /* a truncation would have something to delete */
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errLogFileNotCopied);
    bf_list_gens(bk.dir, &before, 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndNormal | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    h1 = bf_live_hdr(&bk);
    /* Recorded as a full (not a copy): the new full, its range, the
     * incremental and differential slots cleared, the copy slot untouched. */
    CU_ASSERT(h1.backup[0].backup_id != 0 && h1.backup[0].backup_id != h0.backup[0].backup_id);
    CU_ASSERT_EQUAL(h1.backup[0].gen_low, li.ulGenLow);
    CU_ASSERT_EQUAL(h1.backup[0].gen_high, li.ulGenHigh);
    CU_ASSERT_EQUAL(h1.backup[1].backup_id, 0);
    CU_ASSERT_EQUAL(h1.backup[2].backup_id, 0);
    CU_ASSERT(memcmp(&h1.backup[3], &h0.backup[3], sizeof h0.backup[3]) == 0);
    bf_list_gens(bk.dir, &after, 1);
    report_truncate_done("full", &before, &after, &li);
    /* The same with an incremental: its set is every generation present,
     * so what a truncation deletes is in the set, and none was read. */
    tu_load(bk.s, bk.t, 0, 1500, 'e');
    bf_reopen(&bk);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errSuccess);
    li.cbSize = sizeof li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(bk.inst, names, sizeof names, &cb, &li), JET_errSuccess);
    bf_truncate_info(&bk, &listed);
    CU_ASSERT(listed.n >= 1);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errLogFileNotCopied);
    bf_list_gens(bk.dir, &before, 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndNormal | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    h0 = bf_live_hdr(&bk);
    /* Recorded as an incremental (not a differential) following the full. */
    CU_ASSERT(h0.backup[1].backup_id != 0);
    CU_ASSERT_EQUAL(h0.backup[1].predecessor_id, h1.backup[0].backup_id);
    CU_ASSERT_EQUAL(h0.backup[1].gen_high, li.ulGenHigh);
    CU_ASSERT_EQUAL(h0.backup[2].backup_id, 0);
    bf_list_gens(bk.dir, &after, 1);
    report_truncate_done("incremental", &before, &after, &li);
    h1 = h0;
    /* With Abort, TruncateDone records and deletes nothing. */
    tu_load(bk.s, bk.t, 0, 1500, 'd');
    bf_reopen(&bk);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    read_whole_set(1, &li, &rng);
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    bf_list_gens(bk.dir, &before, 1);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndAbort | JET_bitBackupTruncateDone),
                 JET_errSuccess);
    bf_list_gens(bk.dir, &after, 1);
    CU_ASSERT(bf_gens_equal(&before, &after, 1));
    h0 = bf_live_hdr(&bk);
    CU_ASSERT(memcmp(h0.backup, h1.backup, sizeof h0.backup) == 0);
    JetTerm(bk.inst);
    bk.ckpt_ms = 20;
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
    bf_scratch(&bk, "bk_legacy");
    char setdir[1200], r[1200];
    snprintf(setdir, sizeof setdir, "%s/set", bk.dir);
    snprintf(r, sizeof r, "%s/restored", bk.dir);
    CU_ASSERT_FATAL(mkdir(setdir, 0700) == 0);
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramSystemPath, 0, bk.dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramLogFilePath, 0, bk.dir), JET_errSuccess);
    TU_CHECK_ERR(JetSetSystemParameter(NULL, 0, JET_paramLogFileSize, 256, NULL), JET_errSuccess);
    /* Before JetInit no mode is set: the instance-less forms refuse. */
    TU_CHECK_ERR(JetBeginExternalBackup(0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetInit(NULL), JET_errSuccess);
    JET_DBID db;
    CU_ASSERT_FATAL(JetBeginSession(0, &bk.s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(bk.s, bk.dbpath, NULL, &db, JET_bitDbOverwriteExisting) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(bk.s, db, "t", 0, 0, &bk.t) >= 0);
    tu_load(bk.s, bk.t, 0, 1500, 'a');
    TU_CHECK_ERR(JetEndExternalBackup(), JET_errNoBackup);
    TU_CHECK_ERR(JetBeginExternalBackup(0), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackup(0), JET_errBackupInProgress);
    /* After begin, before GetLogInfo: in the set, as ESE (issue 12). */
    tu_load(bk.s, bk.t, 0, 500, 'b');
    tu_load(bk.s, bk.t, 1500, 1600, 'b');
    static char dbs[65536], logs[65536], names[65536], buf[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetAttachInfo(dbs, sizeof dbs, &cb), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(dbs, bk.dbpath);
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
    JET_INSPECT_DBHEADER hd = bf_live_hdr(&bk);
    CU_ASSERT(hd.backup[0].backup_id != 0);   /* recorded as a full */
    /* JetStopBackup reaches the legacy instance too. */
    TU_CHECK_ERR(JetBeginExternalBackup(JET_bitBackupIncremental), JET_errSuccess);
    TU_CHECK_ERR(JetStopBackup(), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfo(names, sizeof names, &cb), JET_errBackupAbortByServer);
    TU_CHECK_ERR(JetEndExternalBackup(), JET_errSuccess);
    JetEndSession(bk.s, 0);
    TU_CHECK_ERR(JetTerm(0), JET_errSuccess);
    /* Back to the defaults for the tests that follow. */
    JetSetSystemParameter(NULL, 0, JET_paramSystemPath, 0, ".");
    JetSetSystemParameter(NULL, 0, JET_paramLogFilePath, 0, ".");
    JetSetSystemParameter(NULL, 0, JET_paramLogFileSize, 1024, NULL);

    const char *set[] = {setdir};
    int err = bf_restore_into(&bk, r, set, 1, 0);
    if (err < 0) fprintf(stderr, "legacy restore: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = bf_open_restored(r, &rs, &rt);
    int bad = 0;
    for (int k = 0; k < 2000; k++) bad += !bf_value_is(rs, rt, k, k < 500 || (k >= 1500 && k < 1600) ? 'b' : k < 1500 ? 'a' : 0);
    JetTerm(ri);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_corrupt_page_read_through_backup_is_named(void)
{
    bf_scratch(&bk, "bk_corrupt");
    bf_start(&bk, 0);
    tu_load(bk.s, bk.t, 0, 2000, 'a');
    bf_sleep_ms(300); /* checkpoints write every page */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "printf 'Q' | dd of='%s' bs=1 seek=$((8192 * 5 + 3000)) conv=notrunc 2>/dev/null", bk.dbpath);
    CU_ASSERT_FATAL(system(cmd) == 0);
    JET_HANDLE h;
    CU_ASSERT_FATAL(JetOpenFileInstance(bk.inst, bk.dbpath, &h, NULL, NULL) >= 0);
    char buf[8192];
    unsigned long got = 0;
    TU_CHECK_ERR(JetReadFileAtInstance(bk.inst, h, 8192 * 5 + 100, buf, 100, &got), JET_errReadVerifyFailure);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "page 5 "));
    /* Other pages still read; the bad one is refused every time. */
    TU_CHECK_ERR(JetReadFileAtInstance(bk.inst, h, 8192 * 4, buf, 8192, &got), JET_errSuccess);
    TU_CHECK_ERR(JetReadFileAtInstance(bk.inst, h, 8192 * 5, buf, 8192, &got), JET_errReadVerifyFailure);
    JetCloseFileInstance(bk.inst, h);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndAbort), JET_errSuccess);
    JetTerm(bk.inst);
}

/* ESE: "The database is being backed up, and cannot be detached." */
static void test_detach_during_backup_is_refused(void)
{
    bf_scratch(&bk, "bk_detach");
    bf_start(&bk, 0);
    tu_load(bk.s, bk.t, 0, 500, 'd');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetDetachDatabase(bk.s, bk.dbpath), JET_errBackupInProgress);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "backup is in progress"));
    TU_CHECK_ERR(JetDetachDatabase(bk.s, NULL), JET_errBackupInProgress);
    /* The backup still reads the whole database, verified. */
    size_t n = 0;
    uint64_t rng = 1;
    free(bf_read_through_backup(&bk, bk.dbpath, &n, &rng));
    CU_ASSERT(n > 0);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(bk.inst, JET_bitBackupEndAbort), JET_errSuccess);
    /* After the end, detach works (once the session has closed it). */
    JET_DBID db;
    CU_ASSERT_FATAL(JetOpenDatabase(bk.s, bk.dbpath, NULL, &db, 0) >= 0);
    JetCloseTable(bk.s, bk.t);
    JetCloseDatabase(bk.s, db, 0);
    JetCloseDatabase(bk.s, db, 0);
    TU_CHECK_ERR(JetDetachDatabase(bk.s, bk.dbpath), JET_errSuccess);
    CU_ASSERT(JetTerm(bk.inst) >= 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("backup", NULL, NULL);
#define ADD(fn) CU_add_test(su, #fn, fn)
    ADD(test_misuse_returns_documented_errors);
    ADD(test_snapshot_is_the_file_as_at_begin);
    ADD(test_aborted_backup_truncates_nothing);
    ADD(test_truncate_log_info_lists_what_end_deletes);
    ADD(test_legacy_mode_instance_less_full_backup);
    ADD(test_corrupt_page_read_through_backup_is_named);
    ADD(test_detach_during_backup_is_refused);
    return tu_run();
}
