/*
 * test_delivered.c -- the record of log generations delivered whole to a
 * backup (engine/delivered.c) and what the backup API makes of it: a
 * generation an earlier backup read whole (even one that was aborted, even
 * before a restart) counts as copied, so JetTruncateLog accepts a set whose
 * reader skipped it; one it did not read, or whose bytes differ, does not;
 * a damaged or foreign record costs one more full read, never a log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivered.h"
#include "jet.h"
#include "testutil.h"

static char dir[1024], dbpath[1100], rec_path[1100];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;

/* The checkpoint stays where it is until a clean restart moves it, so the
 * generations of a set outlive a normal end (as when a backup is quicker
 * than the checkpointer). */
static const struct tu_params params = {.log_kb = 256, .ckpt_ms = 3600000};

static void open_instance(int create)
{
    inst = tu_instance("dlv", dir, params);
    tu_table(inst, dbpath, create, &s, &t);
}

static void restart(void)
{
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    open_instance(0);
}

static void read_whole(const char *path)
{
    JET_HANDLE h;
    static char buf[65536];
    unsigned long lo = 0, hi = 0, got = 0;
    TU_CHECK_ERR(JetOpenFileInstance(inst, path, &h, &lo, &hi), JET_errSuccess);
    do TU_CHECK_ERR(JetReadFileInstance(inst, h, buf, sizeof buf, &got), JET_errSuccess);
    while (got);
    TU_CHECK_ERR(JetCloseFileInstance(inst, h), JET_errSuccess);
}

/* The running backup's files: which are logs, their generations, whether
 * delivered before. */
struct setinfo {
    unsigned long n;
    JET_BACKUPFILEINFO f[64];
};

static void set_info(struct setinfo *si)
{
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    TU_CHECK_ERR(JetGetBackupStatusInstance(inst, &st), JET_errSuccess);
    CU_ASSERT_FATAL(st.cFiles <= 64);
    si->n = st.cFiles;
    for (unsigned long i = 0; i < st.cFiles; i++) {
        si->f[i].cbStruct = sizeof si->f[i];
        TU_CHECK_ERR(JetGetBackupFileInfoInstance(inst, i, &si->f[i]), JET_errSuccess);
    }
}

/* Enters the log phase of the running backup (so delivery is known). */
static void log_phase(JET_LOGINFO *li)
{
    static char names[65536];
    unsigned long cb = 0;
    li->cbSize = sizeof *li;
    TU_CHECK_ERR(JetGetLogInfoInstance2(inst, names, sizeof names, &cb, li), JET_errSuccess);
}

/* A completed full backup: every file read, truncated. */
static void full_backup(void)
{
    JET_LOGINFO li;
    struct setinfo si;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    read_whole(dbpath);
    log_phase(&li);
    set_info(&si);
    for (unsigned long i = 0; i < si.n; i++)
        if (!si.f[i].fDatabase) read_whole(si.f[i].szPath);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
}

static void start(const char *name)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/d.db", dir);
    snprintf(rec_path, sizeof rec_path, "%s/edb.delivered", dir);
    open_instance(1);
    tu_load(s, t, 0, 600, 'a');
    full_backup();
}

static void stop(void) { CU_ASSERT(JetTerm(inst) >= 0); }

/* An incremental read whole and then aborted; returns its generations. */
static void aborted_incremental(unsigned long *plow, unsigned long *phigh)
{
    JET_LOGINFO li;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    log_phase(&li);
    struct setinfo si;
    set_info(&si);
    for (unsigned long i = 0; i < si.n; i++) read_whole(si.f[i].szPath);
    TU_CHECK_ERR(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    *plow = li.ulGenLow;
    *phigh = li.ulGenHigh;
}

static void test_a_generation_read_whole_before_counts_as_copied_after_a_restart(void)
{
    start("dlv_restart");
    tu_load(s, t, 600, 1400, 'b');
    unsigned long low = 0, high = 0;
    aborted_incremental(&low, &high);
    CU_ASSERT_FATAL(high >= low);
    CU_ASSERT(access(rec_path, F_OK) == 0);
    restart();
    tu_load(s, t, 1400, 1600, 'c');

    /* The next incremental holds the aborted one's generations again (an
     * abort truncates nothing) and newer ones. */
    JET_LOGINFO li;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    log_phase(&li);
    CU_ASSERT_EQUAL(li.ulGenLow, low);
    CU_ASSERT(li.ulGenHigh > high);
    struct setinfo si;
    set_info(&si);
    int delivered = 0, fresh = 0;
    for (unsigned long i = 0; i < si.n; i++) {
        unsigned long g = si.f[i].ulGeneration;
        CU_ASSERT_EQUAL(si.f[i].fDeliveredBefore, g >= low && g <= high);
        if (si.f[i].fDeliveredBefore) delivered++;
        else fresh++;
    }
    CU_ASSERT_EQUAL(delivered, (int)(high - low + 1));
    CU_ASSERT(fresh > 0);
    /* Skipping a generation nobody read is refused... */
    for (unsigned long i = 0; i + 1 < si.n; i++)
        if (!si.f[i].fDeliveredBefore) read_whole(si.f[i].szPath);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errLogFileNotCopied);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "not read whole") != NULL);
    /* ...reading it makes the set whole without the delivered ones. */
    read_whole(si.f[si.n - 1].szPath);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    stop();
}

static void test_a_damaged_record_costs_one_more_read_never_a_log(void)
{
    start("dlv_damaged");
    tu_load(s, t, 600, 1400, 'b');
    unsigned long low = 0, high = 0;
    aborted_incremental(&low, &high);
    /* One byte of the record changed: its checksum no longer matches. */
    char *text = tu_slurp(rec_path, NULL);
    CU_ASSERT_FATAL(text != NULL && strchr(text, '\n'));
    char *body = strchr(text, '\n') + 1;
    body[0] = body[0] == '9' ? '8' : '9';
    FILE *f = fopen(rec_path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    free(text);

    JET_LOGINFO li;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(inst, JET_bitBackupIncremental), JET_errSuccess);
    log_phase(&li);
    struct setinfo si;
    set_info(&si);
    for (unsigned long i = 0; i < si.n; i++) CU_ASSERT_EQUAL(si.f[i].fDeliveredBefore, 0);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errLogFileNotCopied);
    for (unsigned long i = 0; i < si.n; i++) read_whole(si.f[i].szPath);
    TU_CHECK_ERR(JetTruncateLogInstance(inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(inst), JET_errSuccess);
    /* The end wrote a sound record again. */
    struct dlv_record rec;
    TU_CHECK_ERR(dlv_load(rec_path, 0, &rec), JET_wrnDeliveredRecordIgnored); /* another signature */
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "log signature") != NULL);
    dlv_free(&rec);
    stop();
}

static void test_the_record_round_trips_and_refuses_what_is_not_it(void)
{
    const char *d = tu_scratch_dir("dlv_unit");
    char path[1100];
    snprintf(path, sizeof path, "%s/edb.delivered", d);
    struct dlv_record rec = {.log_signature = 0x1234abcd5678ef01ull};
    /* Missing: empty, no warning. */
    struct dlv_record got;
    TU_CHECK_ERR(dlv_load(path, rec.log_signature, &got), JET_errSuccess);
    CU_ASSERT_EQUAL(got.n, 0);
    for (uint32_t g = 40; g >= 30; g--) TU_CHECK_ERR(dlv_add(&rec, g, 0x1000u + g), JET_errSuccess);
    TU_CHECK_ERR(dlv_add(&rec, 35, 0x77), JET_errSuccess); /* replaces */
    CU_ASSERT_EQUAL(rec.n, 11);
    TU_CHECK_ERR(dlv_save(path, &rec), JET_errSuccess);
    CU_ASSERT(access(path, F_OK) == 0);
    TU_CHECK_ERR(dlv_load(path, rec.log_signature, &got), JET_errSuccess);
    CU_ASSERT_EQUAL(got.n, 11);
    CU_ASSERT(dlv_has(&got, 30, 0x1000u + 30));
    CU_ASSERT(dlv_has(&got, 35, 0x77));
    CU_ASSERT(!dlv_has(&got, 35, 0x1000u + 35)); /* same number, other bytes */
    CU_ASSERT(!dlv_has(&got, 41, 0x1000u + 41));
    for (size_t i = 1; i < got.n; i++) CU_ASSERT(got.e[i - 1].gen < got.e[i].gen);
    dlv_prune(&got, 38);
    CU_ASSERT_EQUAL(got.n, 3);
    CU_ASSERT(!dlv_has(&got, 37, 0x1000u + 37) && dlv_has(&got, 38, 0x1000u + 38));
    dlv_free(&got);
    /* Another instance's record is not this one's. */
    TU_CHECK_ERR(dlv_load(path, rec.log_signature + 1, &got), JET_wrnDeliveredRecordIgnored);
    CU_ASSERT_EQUAL(got.n, 0);
    /* Cut short, or a byte changed: ignored, saying why and naming it. */
    long long size = 0;
    tu_file_hash(path, 0, &size);
    CU_ASSERT_FATAL(truncate(path, size - 3) == 0);
    TU_CHECK_ERR(dlv_load(path, rec.log_signature, &got), JET_wrnDeliveredRecordIgnored);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), path) && strstr(JetGetLastErrorDetail(), "checksum line"));
    CU_ASSERT_EQUAL(got.n, 0);
    TU_CHECK_ERR(dlv_save(path, &rec), JET_errSuccess);
    FILE *f = fopen(path, "r+");
    CU_ASSERT_FATAL(f && fseek(f, 40, SEEK_SET) == 0);
    int c = fgetc(f);
    CU_ASSERT_FATAL(fseek(f, 40, SEEK_SET) == 0);
    fputc(c == '1' ? '2' : '1', f);
    fclose(f);
    TU_CHECK_ERR(dlv_load(path, rec.log_signature, &got), JET_wrnDeliveredRecordIgnored);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "does not match") != NULL);
    CU_ASSERT_EQUAL(got.n, 0);
    dlv_free(&rec);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite suite = CU_add_suite("delivered", NULL, NULL);
    CU_add_test(suite, "the record round-trips and refuses what is not it",
                test_the_record_round_trips_and_refuses_what_is_not_it);
    CU_add_test(suite, "a generation read whole before counts as copied after a restart",
                test_a_generation_read_whole_before_counts_as_copied_after_a_restart);
    CU_add_test(suite, "a damaged record costs one more read, never a log",
                test_a_damaged_record_costs_one_more_read_never_a_log);
    return tu_run();
}
