/*
 * test_backup.c -- the streaming backup API: misuse errors, the
 * point-in-time snapshot (the database image read through the backup is
 * byte-identical to the file as it stood at begin, however much the
 * engine writes meanwhile), coverage rules for truncation, and the backup
 * history kept in the database header.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"

static char dir[1024], dbpath[1100];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;

static void start(int circular)
{
    inst = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&inst, "bk") >= 0);
    JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 256, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCircularLog, (JET_API_PTR)circular, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCheckpointPeriodMs, 20, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCacheSizeMax, 128, NULL);
    CU_ASSERT_FATAL(JetInit(&inst) >= 0);
    JET_DBID db;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetCreateDatabase(s, dbpath, NULL, &db, JET_bitDbOverwriteExisting) >= 0);
    CU_ASSERT_FATAL(JetCreateTable(s, db, "t", 0, 0, &t) >= 0);
}

static void load(int from, int to, char fill)
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

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_misuse_returns_documented_errors(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("bk_misuse"));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
    /* Before JetInit. */
    JET_INSTANCE early = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&early, "early") >= 0);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(early, 0), JET_errBackupNotAllowedYet);
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
    /* The instance-less forms belong to legacy mode. */
    TU_CHECK_ERR(JetBeginExternalBackup(0), JET_errRunningInMultiInstanceMode);
    TU_CHECK_ERR(JetStopBackup(), JET_errRunningInMultiInstanceMode);
    load(0, 500, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errBackupInProgress);
    TU_CHECK_ERR(JetOpenFileInstance(inst, "/no/such/file", &h, NULL, NULL), JET_errFileNotFound);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, buf, sizeof buf, &cb), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(buf, dbpath);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errInvalidBackupSequence);
    JET_LOGINFO li = {.cbSize = 3};
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
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("bk_circular"));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
    start(1);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errInvalidBackup);
    JetTerm(inst);
}

static unsigned char *slurp(const char *path, size_t *pn)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *pn = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
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
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("bk_snapshot"));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
    uint64_t rng = tu_seed("test_snapshot_is_the_file_as_at_begin");
    start(0);
    load(0, 3000, 'a');
    sleep_ms(300); /* let checkpoints write it all, so the file is still until begin */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    /* The reference: the file as it stands now.  No session writes until
     * the copy is taken; the checkpointer may, which is the point. */
    size_t refn = 0;
    unsigned char *ref = slurp(dbpath, &refn);
    CU_ASSERT_FATAL(ref != NULL);
    /* Rewrite everything and grow the file while the backup is open. */
    load(0, 6000, 'z');
    sleep_ms(200);
    struct stat st;
    stat(dbpath, &st);
    CU_ASSERT((size_t)st.st_size > refn);
    size_t n = 0;
    unsigned char *got = read_through_backup(dbpath, &n, &rng);
    CU_ASSERT_EQUAL(n, refn);
    CU_ASSERT(memcmp(got, ref, refn < n ? refn : n) == 0);
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
    JET_INSPECT_DBHEADER hd;
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &hd), JET_errSuccess);
    CU_ASSERT(hd.backup[0].backup_id != 0 && hd.backup[0].gen_high >= hd.backup[0].gen_low);
    /* Now an incremental is possible; its logs start after the full's. */
    load(0, 500, 'q');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    TU_CHECK_ERR(JetGetAttachInfoInstance(inst, logs, sizeof logs, &cb), JET_errInvalidBackupSequence);
    JET_HANDLE h;
    TU_CHECK_ERR(JetOpenFileInstance(inst, dbpath, &h, NULL, NULL), JET_errInvalidBackupSequence);
    JET_LOGINFO li = {.cbSize = sizeof li};
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, logs, sizeof logs, &cb, &li), JET_errSuccess);
    CU_ASSERT_EQUAL(li.ulGenLow, hd.backup[0].gen_high + 1);
    /* Ended without truncation: recorded as differential, not incremental. */
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JET_INSPECT_DBHEADER hd2;
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &hd2), JET_errSuccess);
    CU_ASSERT(hd2.backup[2].backup_id != 0);
    CU_ASSERT_EQUAL(hd2.backup[2].predecessor_id, hd.backup[0].backup_id);
    CU_ASSERT_EQUAL(hd2.backup[1].backup_id, 0);
    /* An aborted full changes no history. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    JET_INSPECT_DBHEADER hd3;
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &hd3), JET_errSuccess);
    CU_ASSERT(memcmp(&hd3.backup, &hd2.backup, sizeof hd3.backup) == 0);
    free(ref);
    free(got);
    JetTerm(inst);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("backup", NULL, NULL);
    CU_add_test(su, "test_misuse_returns_documented_errors", test_misuse_returns_documented_errors);
    CU_add_test(su, "test_snapshot_is_the_file_as_at_begin", test_snapshot_is_the_file_as_at_begin);
    return tu_run();
}
