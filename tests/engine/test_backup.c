/*
 * test_backup.c -- the streaming backup API: misuse errors, the
 * point-in-time snapshot (the database image read through the backup is
 * byte-identical to the file as it stood at begin, however much the
 * engine writes meanwhile), coverage rules for truncation, and the backup
 * history kept in the database header.
 */
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
    if (snap_mem_kb) JetSetSystemParameter(&inst, 0, JET_paramSnapshotMemoryMax, snap_mem_kb, NULL);
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
    snap_mem_kb = 64; /* 8 pages in memory, the rest spills to a file */
    start(0);
    snap_mem_kb = 0;
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
    /* Every generation still present, which starts right after the full's
     * truncated ones (or earlier if the checkpoint held some back). */
    CU_ASSERT(li.ulGenLow >= 1 && li.ulGenLow <= hd.backup[0].gen_high + 1);
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

/* Writes every file of the running backup set into dir (logs always;
 * the database too for a full backup), read through the API. */
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
        char out[2200];
        snprintf(out, sizeof out, "%s/%s", setdir, strrchr(p, '/') + 1);
        FILE *f = fopen(out, "wb");
        CU_ASSERT_FATAL(f && fwrite(b, 1, n, f) == n);
        fclose(f);
        free(b);
    }
    if (type) {
        unsigned long need = 0;
        CU_ASSERT_FATAL(JetGetBackupManifestInstance(inst, type, NULL, 0, &need) >= 0);
        char *m = malloc(need);
        CU_ASSERT_FATAL(JetGetBackupManifestInstance(inst, type, m, need, &need) == JET_errSuccess);
        char out[2200];
        snprintf(out, sizeof out, "%s/backup.manifest", setdir);
        FILE *f = fopen(out, "w");
        CU_ASSERT_FATAL(f && fputs(m, f) >= 0);
        fclose(f);
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
    JET_INSTANCE ri = 0;
    char db[1200];
    JET_DBID d;
    snprintf(db, sizeof db, "%s/b.db", rdir);
    CU_ASSERT_FATAL(JetCreateInstance(&ri, "restored") >= 0);
    JetSetSystemParameter(&ri, 0, JET_paramSystemPath, 0, rdir);
    JetSetSystemParameter(&ri, 0, JET_paramLogFilePath, 0, rdir);
    JetSetSystemParameter(&ri, 0, JET_paramLogFileSize, 256, NULL);
    CU_ASSERT_FATAL(JetInit(&ri) >= 0);
    CU_ASSERT_FATAL(JetBeginSession(ri, ps, NULL, NULL) >= 0);
    JET_ERR err = JetAttachDatabase(*ps, db, 0);
    if (err < 0) fprintf(stderr, "attach restored: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(*ps, db, NULL, &d, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(*ps, d, "t", NULL, 0, 0, pt) >= 0);
    return ri;
}

static void test_full_and_incremental_restore(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("bk_restore"));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
    uint64_t rng = tu_seed("test_full_and_incremental_restore");
    char s1[1100], s2[1100], r[1100];
    snprintf(s1, sizeof s1, "%s/set1", dir);
    snprintf(s2, sizeof s2, "%s/set2", dir);
    snprintf(r, sizeof r, "%s/restored", dir);
    start(0);
    load(0, 2000, 'a');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    load(0, 1000, 'b'); /* after begin: not in the full backup */
    save_set(s1, 1, &rng, "full");
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    load(2000, 2500, 'c');
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    load(2500, 2600, 'd'); /* after the incremental's begin */
    save_set(s2, 0, &rng, "incremental");
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    JetTerm(inst);

    /* Full alone: the state at the full's begin. */
    const char *only_full[] = {s1};
    int err = restore_into(r, only_full, 1, 0);
    if (err < 0) fprintf(stderr, "restore full: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = open_restored(r, &rs, &rt);
    int bad = 0;
    for (int k = 0; k < 2600; k++) bad += !value_is(rs, rt, k, k < 2000 ? 'a' : 0);
    CU_ASSERT_EQUAL(bad, 0);
    JetTerm(ri);
    /* Full + incremental: the state at the incremental's begin. */
    const char *both[] = {s1, s2};
    err = restore_into(r, both, 2, 0);
    if (err < 0) fprintf(stderr, "restore chain: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    ri = open_restored(r, &rs, &rt);
    bad = 0;
    for (int k = 0; k < 2600; k++) bad += !value_is(rs, rt, k, k < 1000 ? 'b' : k < 2000 ? 'a' : k < 2500 ? 'c' : 0);
    CU_ASSERT_EQUAL(bad, 0);
    JetTerm(ri);

    /* The same through JetRestoreSets (what jetutil restore runs). */
    char r2[1200];
    snprintf(r2, sizeof r2, "%s/restored2", dir);
    const char *chain[] = {s1, s2};
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r2, 0, 0), JET_errSuccess);
    ri = open_restored(r2, &rs, &rt);
    bad = 0;
    for (int k = 0; k < 2600; k++) bad += !value_is(rs, rt, k, k < 1000 ? 'b' : k < 2000 ? 'a' : k < 2500 ? 'c' : 0);
    CU_ASSERT_EQUAL(bad, 0);
    JetTerm(ri);
    /* A target that is not empty is refused and left alone. */
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r2, 0, 0), JET_errInvalidPath);
    /* Point in time: stop at the full backup's last generation. */
    char r3[1200], fdb[1200];
    JET_INSPECT_DBHEADER fh;
    snprintf(r3, sizeof r3, "%s/restored3", dir);
    snprintf(fdb, sizeof fdb, "%s/b.db", s1);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(fdb, &fh) >= 0);
    JET_INSPECT_DBHEADER livehdr;
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(dbpath, &livehdr) >= 0);
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r3, livehdr.backup[0].gen_high, 0), JET_errSuccess);
    ri = open_restored(r3, &rs, &rt);
    bad = 0;
    for (int k = 0; k < 2600; k++) bad += !value_is(rs, rt, k, k < 2000 ? 'a' : 0);
    CU_ASSERT_EQUAL(bad, 0);
    JetTerm(ri);
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
    TU_CHECK_ERR(JetExternalRestore2(r, r, &live, 1, r, NULL, NULL, NULL, NULL, NULL), JET_errRestoreOfNonBackupDatabase);
    /* A generation missing from the middle of the chain. */
    JET_INSPECT_DBHEADER hd;
    snprintf(db, sizeof db, "%s/b.db", s1);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(db, &hd) >= 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/b.db' %s/edb*.log %s/edb*.log '%s/'", r, r, s1, s1,
             s2, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    /* The caller names the range it holds (as the manifest will): a hole
     * in it is refused, naming the generation. */
    unsigned lo_gen = 0, hi_gen = 0;
    snprintf(cmd, sizeof cmd, "ls %s/edb0*.log | sort | sed -n '1p;$p' | sed 's/.*edb\\([0-9A-F]*\\).log/\\1/'", r);
    FILE *ls = popen(cmd, "r");
    CU_ASSERT_FATAL(ls && fscanf(ls, "%x %x", &lo_gen, &hi_gen) == 2);
    pclose(ls);
    CU_ASSERT_FATAL(hi_gen >= lo_gen + 1);
    snprintf(cmd, sizeof cmd, "rm -f %s/edb%08X.log", r, hi_gen - 1 > lo_gen ? hi_gen - 1 : hi_gen);
    CU_ASSERT_FATAL(system(cmd) == 0);
    snprintf(db, sizeof db, "%s/b.db", r);
    JET_RSTMAP m = {dbpath, db};
    JET_LOGINFO range = {sizeof range, lo_gen, hi_gen, "edb"};
    err = (int)JetExternalRestore2(r, r, &m, 1, r, &range, NULL, NULL, NULL, NULL);
    CU_ASSERT(err == JET_errMissingRestoreLogFiles);
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
    load(0, 300, 'x');
    JetTerm(inst);
    JET_INSPECT_LOGHEADER lh;
    char last[1200];
    snprintf(cmd, sizeof cmd, "ls %s/edb0*.log | sort | tail -1 > %s/last", r, other);
    CU_ASSERT_FATAL(system(cmd) == 0);
    FILE *f = fopen(strcat(strcpy(last, other), "/last"), "r");
    char victim[1200] = {0};
    CU_ASSERT_FATAL(f && fgets(victim, sizeof victim, f));
    fclose(f);
    victim[strcspn(victim, "\n")] = '\0';
    CU_ASSERT_FATAL(JetInspectLogHeader(victim, &lh) >= 0);
    char foreign[1300];
    snprintf(foreign, sizeof foreign, "%s/edb%08X.log", other, lh.generation);
    if (access(foreign, F_OK) != 0) snprintf(foreign, sizeof foreign, "%s/edb00000001.log", other);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", foreign, victim);
    CU_ASSERT_FATAL(system(cmd) == 0);
    err = (int)JetExternalRestore2(r, r, &m, 1, r, NULL, NULL, NULL, NULL, NULL);
    CU_ASSERT(err == JET_errGivenLogFileHasBadSignature || err == JET_errGivenLogFileIsNotContiguous);
}

static int count_gens(void)
{
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '^edb0.*\\.log$'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static void test_kill9_during_backup_loses_nothing(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("bk_kill"));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        start(0);
        load(0, 1000, 'a');
        if (JetBeginExternalBackupInstance(inst, 0) < 0) _exit(3);
        JET_HANDLE h;
        char buf[65536];
        unsigned long got;
        if (JetOpenFileInstance(inst, dbpath, &h, NULL, NULL) < 0) _exit(4);
        if (JetReadFileInstance(inst, h, buf, sizeof buf, &got) < 0) _exit(5);
        load(1000, 2000, 'b'); /* durable commits while the snapshot lives */
        sleep_ms(100);         /* and checkpoints preserving pages */
        if (write(fds[1], "x", 1) != 1) _exit(6);
        for (;;) sleep_ms(1000);
    }
    close(fds[1]);
    char c;
    CU_ASSERT_FATAL(read(fds[0], &c, 1) == 1);
    close(fds[0]);
    int before = count_gens();
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    /* Recovery after the kill: every acknowledged commit, no log lost. */
    inst = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&inst, "bkkill") >= 0);
    JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, 256, NULL);
    CU_ASSERT_FATAL(JetInit(&inst) >= 0);
    CU_ASSERT(count_gens() >= before);
    JET_DBID db;
    CU_ASSERT_FATAL(JetBeginSession(inst, &s, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetAttachDatabase(s, dbpath, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(s, dbpath, NULL, &db, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(s, db, "t", NULL, 0, 0, &t) >= 0);
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

static int chain_matches(const char *rdir, const uint32_t *want)
{
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = open_restored(rdir, &rs, &rt);
    int bad = 0;
    for (int k = 0; k < 400; k++) {
        char key[16], v[300], w[300];
        unsigned long n = 0;
        snprintf(key, sizeof key, "c%05d", k);
        JET_ERR e = JetRetrieveKV(rs, rt, key, strlen(key), v, sizeof v - 1, &n, 0);
        if (!want[k]) bad += e != JET_errRecordNotFound;
        else {
            snprintf(w, sizeof w, "%u-%0*u", want[k], (int)(want[k] % 250), 0u);
            bad += e < 0 || n != strlen(w) || memcmp(v, w, n) != 0;
        }
    }
    JetTerm(ri);
    return bad;
}

/* After every end: no generation a recovery from the checkpoint needs is
 * gone, and every one deleted was held by the completed backups. */
static void check_truncation_safe(uint32_t held_high)
{
    char ck[1200];
    JET_INSPECT_CHECKPOINT c;
    snprintf(ck, sizeof ck, "%s/edb.chk", dir);
    CU_ASSERT_FATAL(JetInspectCheckpoint(ck, &c) >= 0);
    uint32_t ckgen = (uint32_t)(c.lsn >> 32);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "ls %s | grep '^edb0.*\\.log$' | sort | sed -n '1p' | sed 's/edb\\([0-9A-F]*\\).log/\\1/'", dir);
    FILE *p = popen(cmd, "r");
    unsigned oldest = 0;
    CU_ASSERT_FATAL(p && fscanf(p, "%x", &oldest) == 1);
    pclose(p);
    CU_ASSERT(oldest <= ckgen);            /* recovery's start is still there */
    CU_ASSERT(oldest <= held_high + 1);    /* nothing deleted beyond what backups hold */
    for (unsigned g = oldest; g <= ckgen; g++) {
        char lp[1300];
        snprintf(lp, sizeof lp, "%s/edb%08X.log", dir, g);
        CU_ASSERT(access(lp, F_OK) == 0);  /* contiguous from the oldest */
    }
}

static void test_chains_full_copy_incrementals_differential(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("bk_chain"));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
    uint64_t rng = tu_seed("test_chains_full_copy_incrementals_differential");
    memset(cmodel, 0, sizeof cmodel);
    start(0);
    char sets[8][1200];
    uint32_t at_begin[400];
    JET_LOGINFO li = {.cbSize = sizeof li};
    char names[65536];
    unsigned long cb;
    chain_update(&rng, 300);
    /* full, truncated */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    chain_update(&rng, 100);
    snprintf(sets[0], sizeof sets[0], "%s/full", dir);
    save_set(sets[0], 1, &rng, "full");
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    check_truncation_safe(li.ulGenHigh);
    /* a copy backup in between: no truncation, no history change */
    chain_update(&rng, 100);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    char cset[1200];
    snprintf(cset, sizeof cset, "%s/copy", dir);
    save_set(cset, 1, &rng, "copy");
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    check_truncation_safe(li.ulGenHigh);
    /* five incrementals under load, each truncated */
    for (int i = 1; i <= 5; i++) {
        chain_update(&rng, 150);
        TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
        if (i == 5) memcpy(at_begin, cmodel, sizeof cmodel);
        chain_update(&rng, 50); /* after begin: not in this set */
        snprintf(sets[i], sizeof sets[i], "%s/inc%d", dir, i);
        save_set(sets[i], 0, &rng, "incremental");
        TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
        TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
        TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
        check_truncation_safe(li.ulGenHigh);
    }
    char r[1200];
    snprintf(r, sizeof r, "%s/r_chain", dir);
    const char *chain[6] = {sets[0], sets[1], sets[2], sets[3], sets[4], sets[5]};
    JET_ERR err = JetRestoreSets(chain, 6, r, 0, 0);
    if (err < 0) fprintf(stderr, "chain restore: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(chain_matches(r, at_begin), 0);
    /* Skipping a link is refused by the chain of ids. */
    const char *gap[3] = {sets[0], sets[1], sets[3]};
    snprintf(r, sizeof r, "%s/r_gap", dir);
    TU_CHECK_ERR(JetRestoreSets(gap, 3, r, 0, 0), JET_errInvalidBackupSequence);
    /* The copy backup restores on its own to its own begin, and broke nothing above. */
    /* full + differential: a new full, then two differentials (not truncated). */
    chain_update(&rng, 100);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    snprintf(sets[6], sizeof sets[6], "%s/full2", dir);
    save_set(sets[6], 1, &rng, "full");
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, &li), JET_errSuccess);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    for (int i = 0; i < 2; i++) {
        chain_update(&rng, 150);
        TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
        memcpy(at_begin, cmodel, sizeof cmodel);
        chain_update(&rng, 30);
        snprintf(sets[7], sizeof sets[7], "%s/diff%d", dir, i);
        save_set(sets[7], 0, &rng, "differential");
        TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess); /* no truncation: differential */
        check_truncation_safe(li.ulGenHigh);
    }
    const char *fd[2] = {sets[6], sets[7]};
    snprintf(r, sizeof r, "%s/r_diff", dir);
    err = JetRestoreSets(fd, 2, r, 0, 0);
    if (err < 0) fprintf(stderr, "differential restore: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(chain_matches(r, at_begin), 0);
    JetTerm(inst);
}

static void test_corrupt_page_read_through_backup_is_named(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("bk_corrupt"));
    snprintf(dbpath, sizeof dbpath, "%s/b.db", dir);
    start(0);
    load(0, 2000, 'a');
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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("backup", NULL, NULL);
    CU_add_test(su, "test_misuse_returns_documented_errors", test_misuse_returns_documented_errors);
    CU_add_test(su, "test_snapshot_is_the_file_as_at_begin", test_snapshot_is_the_file_as_at_begin);
    CU_add_test(su, "test_full_and_incremental_restore", test_full_and_incremental_restore);
    CU_add_test(su, "test_kill9_during_backup_loses_nothing", test_kill9_during_backup_loses_nothing);
    CU_add_test(su, "test_corrupt_page_read_through_backup_is_named", test_corrupt_page_read_through_backup_is_named);
    CU_add_test(su, "test_chains_full_copy_incrementals_differential", test_chains_full_copy_incrementals_differential);
    return tu_run();
}
