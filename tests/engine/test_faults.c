/*
 * test_faults.c -- damage and failures: a flipped byte in a data page, a
 * torn log tail, a corrupt log generation in the middle, a damaged
 * database header copy (or both), a damaged checkpoint file, and a failing
 * fsync injected through the I/O seam (tests/support/testvfs.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"
#include "testvfs.h"

static char dir[1024], dbpath[1100];

static JET_ERR open_inst(JET_INSTANCE *pinst, JET_SESID *ps, JET_TABLEID *pt, int create, long ckpt_ms)
{
    return tu_open("faults", dir, (struct tu_params){.log_kb = 128, .ckpt_ms = ckpt_ms}, dbpath, create, pinst, ps, NULL, pt);
}

static void put_n(JET_SESID s, JET_TABLEID t, int from, int to)
{
    char v[200];
    memset(v, 'q', sizeof v);
    for (int i = from; i < to; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%06d", i);
        TU_CHECK_ERR(JetPutKV(s, t, k, strlen(k), v, sizeof v, 0), JET_errSuccess);
    }
}

static int count_present(JET_SESID s, JET_TABLEID t, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++) {
        char k[16], v[256];
        unsigned long got;
        snprintf(k, sizeof k, "k%06d", i);
        if (JetRetrieveKV(s, t, k, strlen(k), v, sizeof v, &got, 0) >= 0) c++;
    }
    return c;
}

/* JetInit of an instance on dir as the tests' instances are made (no
 * table opened): what a restart after the damage would do. */
static JET_ERR init_on_dir(JET_INSTANCE *pinst, const char *name)
{
    return tu_open(name, dir, (struct tu_params){.log_kb = 128}, NULL, 0, pinst, NULL, NULL, NULL);
}

/* Puts keys [from, to) in a child, each its own durable commit, waits
 * linger_ms (for the checkpointer's notes), and ends with _exit: a crash,
 * no JetTerm.  The checkpoint period is held: only rolls move what the
 * checkpoint records. */
static void crash_after_linger(int create, int from, int to, long linger_ms)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        JET_INSTANCE inst;
        JET_SESID s;
        JET_TABLEID t;
        if (open_inst(&inst, &s, &t, create, 3600000) < 0) _exit(3);
        char v[200];
        memset(v, 'q', sizeof v);
        for (int i = from; i < to; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%06d", i);
            if (JetPutKV(s, t, k, strlen(k), v, sizeof v, 0) < 0) _exit(4);
        }
        struct timespec ts = {linger_ms / 1000, (linger_ms % 1000) * 1000000L};
        if (linger_ms) nanosleep(&ts, NULL);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT_FATAL(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void crash_after(int create, int from, int to) { crash_after_linger(create, from, to, 0); }

#define MAX_LOGS 4096
static char (*logs_a)[64], (*logs_b)[64];

static int list_logs(char names[][64], int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "edb", 3) == 0 && l == 15 && strcmp(e->d_name + 11, ".log") == 0)
            snprintf(names[n++], 64, "%.63s", e->d_name);
    }
    closedir(d);
    /* sort */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char tmp[64];
                memcpy(tmp, names[i], 64);
                memcpy(names[i], names[j], 64);
                memcpy(names[j], tmp, 64);
            }
    return n;
}

/* A directory's files, for "changed nothing" (testutil.h). */
#define dir_snap tu_dir_snap
#define snap_dir(sn) tu_snap_dir(dir, (sn))
#define assert_dir_unchanged(before, except) tu_assert_dir_unchanged(dir, (before), (except))

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    unsigned char b;
    CU_ASSERT_FATAL(pread(fd, &b, 1, off) == 1);
    b ^= 0x5A;
    CU_ASSERT_FATAL(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

static void test_flipped_data_page_byte_is_read_verify_failure(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_page"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, 1000) >= 0);
    put_n(s, t, 0, 2000);
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    /* Page 4 is the table's root (page 3 the catalog's): every lookup
     * goes through it. */
    flip_byte(dbpath, 4 * 8192 + 3000);
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, 1000) >= 0);
    char v[256];
    unsigned long got;
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k000010", 7, v, sizeof v, &got, 0), JET_errReadVerifyFailure);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "page 4 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "f.db"));
    /* Served again: still refused, never data. */
    TU_CHECK_ERR(JetRetrieveKV(s, t, "k000011", 7, v, sizeof v, &got, 0), JET_errReadVerifyFailure);
    JetTerm(inst);
}

static void test_torn_log_tail_is_recovered_around(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_torn"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    crash_after(1, 0, 300);
    char(*names)[64] = logs_a, path[1200];
    int n = list_logs(names, MAX_LOGS);
    CU_ASSERT_FATAL(n >= 1 && n < MAX_LOGS);
    snprintf(path, sizeof path, "%s/%s", dir, names[n - 1]);
    /* Garbage right after the last record: a torn, never acknowledged write. */
    int fd = open(path, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    unsigned char *buf = malloc((size_t)st.st_size);
    CU_ASSERT_FATAL(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
    off_t last = st.st_size - 1;
    while (last > 4096 && buf[last] == 0) last--;
    unsigned char junk[700];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37 + 11);
    off_t at = ((last + 8) / 8) * 8;
    /* The junk must land inside the file, or there is no torn tail to test. */
    CU_ASSERT_FATAL(at + (off_t)sizeof junk <= st.st_size);
    CU_ASSERT_FATAL(pwrite(fd, junk, sizeof junk, at) == (ssize_t)sizeof junk);
    close(fd);
    free(buf);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    JET_ERR err = open_inst(&inst, &s, &t, 0, 1000);
    if (err < 0) fprintf(stderr, "torn tail: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(count_present(s, t, 300), 300);
    /* And the instance keeps working on top. */
    put_n(s, t, 300, 310);
    CU_ASSERT_EQUAL(count_present(s, t, 310), 310);
    JetTerm(inst);
}

static void test_corrupt_middle_log_stops_recovery_and_deletes_nothing(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_mid"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    /* Enough commits for three 128 KiB generations of deltas. */
    crash_after(1, 0, 2000);
    char(*names)[64] = logs_a, path[1200];
    int n = list_logs(names, MAX_LOGS);
    CU_ASSERT_FATAL(n >= 3 && n < MAX_LOGS);
    snprintf(path, sizeof path, "%s/%s", dir, names[n - 2]);
    flip_byte(path, 4096 + 5000);
    /* Database, edb.chk and every log, before and after each attempt. */
    static struct dir_snap before, after_first;
    snap_dir(&before);
    CU_ASSERT(before.n >= n + 2);
    JET_INSTANCE inst = 0;
    TU_CHECK_ERR(init_on_dir(&inst, "mid"), JET_errLogFileCorrupt);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), names[n - 2]));
    JetTerm(inst);
    CU_ASSERT_EQUAL(list_logs(logs_b, MAX_LOGS), n);
    /* The logs, the checkpoint and the database are exactly as they were:
     * recovery reads the whole log before it writes a page. */
    assert_dir_unchanged(&before, NULL);
    JET_INSPECT_DBHEADER h;
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &h), JET_errSuccess);
    CU_ASSERT_STRING_NOT_EQUAL(h.state_name, "clean shutdown");
    CU_ASSERT_NOT_EQUAL(h.state, 3);
    snap_dir(&after_first);
    /* A second attempt fails the same way: nothing was consumed. */
    inst = 0;
    TU_CHECK_ERR(init_on_dir(&inst, "mid2"), JET_errLogFileCorrupt);
    JetTerm(inst);
    /* Redo is idempotent: the second attempt changes no byte anywhere. */
    assert_dir_unchanged(&after_first, NULL);
    assert_dir_unchanged(&before, "f.db");
}

static void test_damaged_header_copy_falls_back(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_hdr"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    JET_INSPECT_DBHEADER h;
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, 1000) >= 0);
    put_n(s, t, 0, 500);
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    /* Offset 30 is inside the checksummed header (the database signature),
     * past the magic, so the copy is found and rejected. */
    const off_t copy0 = 30, copy1 = 8192 + 30;
    flip_byte(dbpath, copy0);
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &h), JET_errSuccess);
    CU_ASSERT(!h.copy_valid[0] && h.copy_valid[1]);
    JET_ERR err = open_inst(&inst, &s, &t, 0, 1000);
    if (err < 0) fprintf(stderr, "copy 0 damaged: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(count_present(s, t, 500), 500);
    put_n(s, t, 500, 510);
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    /* The header writes since then restored copy 0. */
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &h), JET_errSuccess);
    CU_ASSERT(h.copy_valid[0] && h.copy_valid[1]);
    CU_ASSERT_EQUAL(h.state, 3);
    /* Copy 1 alone damaged: the same. */
    flip_byte(dbpath, copy1);
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &h), JET_errSuccess);
    CU_ASSERT(h.copy_valid[0] && !h.copy_valid[1]);
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, 1000) >= 0);
    CU_ASSERT_EQUAL(count_present(s, t, 510), 510);
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    /* Both damaged: refused, naming the file, and the file left alone. */
    flip_byte(dbpath, copy0);
    flip_byte(dbpath, copy1);
    long long size_before, size_after;
    uint64_t hash_before = tu_file_hash(dbpath, 0, &size_before);
    CU_ASSERT_FATAL(size_before >= 0);
    TU_CHECK_ERR(open_inst(&inst, &s, &t, 0, 1000), JET_errDatabaseCorrupted);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "f.db"));
    JetTerm(inst);
    TU_CHECK_ERR(JetInspectDatabaseHeader(dbpath, &h), JET_errDatabaseCorrupted);
    CU_ASSERT_EQUAL(tu_file_hash(dbpath, 0, &size_after), hash_before);
    CU_ASSERT_EQUAL(size_after, size_before);
}

static void test_corrupt_checkpoint_is_reported(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_chk"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    /* A crash, so recovery has work the logs must still hold afterwards. */
    crash_after(1, 0, 300);
    char ckpath[1200];
    snprintf(ckpath, sizeof ckpath, "%s/edb.chk", dir);
    flip_byte(ckpath, 20); /* the log signature: inside the checksum */
    static struct dir_snap before;
    snap_dir(&before);
    JET_INSTANCE inst;
    for (int attempt = 0; attempt < 2; attempt++) {
        TU_CHECK_ERR(init_on_dir(&inst, attempt ? "chk2" : "chk"), JET_errCheckpointCorrupt);
        CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "edb.chk"));
        JetTerm(inst);
        /* No file deleted, added or changed, the checkpoint included. */
        assert_dir_unchanged(&before, NULL);
    }
    /* Repaired, the same files recover everything: nothing was lost. */
    flip_byte(ckpath, 20);
    JET_SESID s;
    JET_TABLEID t;
    JET_ERR err = open_inst(&inst, &s, &t, 0, 1000);
    if (err < 0) fprintf(stderr, "after repair: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(count_present(s, t, 300), 300);
    JetTerm(inst);
}

/* The newest generation deleted while the instance was down (or under it,
 * then a crash): the checkpoint saw the log reach it, so the restart is
 * refused, naming it, and changes no file -- never a start that silently
 * lacks the commits it held. */
static void test_a_missing_newest_generation_is_refused(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_newest"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    /* Rolls are noted at most once a second: the child lingers past it.
     * 600 puts of 200 bytes log about 200 KiB, two generations of 128 KiB
     * (sequential inserts no longer log half a page at each split). */
    crash_after_linger(1, 0, 600, 1500);
    char(*names)[64] = logs_a, path[1200];
    int n = list_logs(names, MAX_LOGS);
    CU_ASSERT_FATAL(n >= 2);
    snprintf(path, sizeof path, "%s/%s", dir, names[n - 1]);
    CU_ASSERT_FATAL(unlink(path) == 0);
    static struct dir_snap before;
    snap_dir(&before);
    JET_INSTANCE inst = 0;
    JET_ERR err = init_on_dir(&inst, "newest");
    if (err != JET_errMissingLogFile) fprintf(stderr, "newest missing: JetInit %ld: %s\n", (long)err, JetGetLastErrorDetail());
    TU_CHECK_ERR(err, JET_errMissingLogFile);
    char gen[16];
    snprintf(gen, sizeof gen, "generation %u", (unsigned)strtoul(names[n - 1] + 3, NULL, 16));
    CU_ASSERT(strstr(JetGetLastErrorDetail(), gen) != NULL);
    if (!strstr(JetGetLastErrorDetail(), gen)) fprintf(stderr, "newest missing: %s\n", JetGetLastErrorDetail());
    JetTerm(inst);
    assert_dir_unchanged(&before, NULL);
}

/* The commit records of the newest generation, by position. */
static uint64_t commits_in_last[512];
static int ncommits_in_last;
static uint32_t last_gen_seen;
static int note_commit(void *arg, const JET_INSPECT_LOGRECORD *rec)
{
    (void)arg;
    if ((uint32_t)(rec->lsn >> 32) != last_gen_seen) {
        last_gen_seen = (uint32_t)(rec->lsn >> 32);
        ncommits_in_last = 0;
    }
    if (rec->type == 2 && ncommits_in_last < 512) commits_in_last[ncommits_in_last++] = rec->lsn;
    return 0;
}

/*
 * Acknowledged commits, a crash, then damage in the middle of the newest
 * generation: before the crash it was taken for the torn tail and every
 * later commit dropped.  Now the records after it prove the spot was
 * durable: the start is refused with JET_errLogFileCorrupt naming the file
 * and offset, and no file changes, the database included.
 */
static void test_damage_in_the_newest_generation_is_refused_not_dropped(void)
{
    static const struct { const char *what; int zero; } table[] = {{"a flipped byte", 0}, {"a zeroed sector", 1}};
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_newest_dmg"));
        snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
        crash_after(1, 0, 200);
        last_gen_seen = 0;
        ncommits_in_last = 0;
        int torn = 0;
        TU_CHECK_ERR(JetInspectLogRecords(dir, "edb", 0, 0, note_commit, NULL, &torn), JET_errSuccess);
        CU_ASSERT_FATAL(ncommits_in_last >= 3);
        char(*names)[64] = logs_a, path[1200];
        int n = list_logs(names, MAX_LOGS);
        snprintf(path, sizeof path, "%s/%s", dir, names[n - 1]);
        CU_ASSERT_FATAL(strtoul(names[n - 1] + 3, NULL, 16) == last_gen_seen);
        /* Inside the transaction before the middle commit of the generation. */
        uint32_t off = (uint32_t)commits_in_last[ncommits_in_last / 2] - 2048;
        if (table[t].zero) {
            static const unsigned char zeros[512];
            int fd = open(path, O_RDWR);
            CU_ASSERT_FATAL(fd >= 0 && pwrite(fd, zeros, sizeof zeros, off & ~511u) == (ssize_t)sizeof zeros);
            close(fd);
        } else {
            flip_byte(path, off);
        }
        static struct dir_snap before;
        snap_dir(&before);
        JET_INSTANCE inst = 0;
        JET_ERR err = init_on_dir(&inst, "newestdmg");
        const char *d = JetGetLastErrorDetail();
        if (err != JET_errLogFileCorrupt || !strstr(d, names[n - 1]))
            fprintf(stderr, "%s in the newest generation: %ld %s\n", table[t].what, (long)err, d);
        CU_ASSERT_EQUAL(err, JET_errLogFileCorrupt);
        CU_ASSERT(strstr(d, names[n - 1]) && strstr(d, "offset") && strstr(d, "not the torn tail"));
        JetTerm(inst);
        assert_dir_unchanged(&before, NULL);
    }
}

/* A replacement a crash or a full disk interrupted leaves its temporary;
 * the next start removes it (the checkpoint itself is intact). */
/* Rewrites a version field and the checksum that covers it, as a file
 * written by another format version would have them. */
static void set_version(const char *path, uint64_t at, uint32_t hdr_len, uint32_t version)
{
    uint8_t *b = malloc(hdr_len);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0 && pread(fd, b, hdr_len, (off_t)at) == (ssize_t)hdr_len);
    b[12] = (uint8_t)version, b[13] = b[14] = b[15] = 0;
    uint64_t sum = XXH3_64bits(b + 8, hdr_len - 8);
    memcpy(b, &sum, 8);
    CU_ASSERT_FATAL(pwrite(fd, b, hdr_len, (off_t)at) == (ssize_t)hdr_len);
    close(fd);
    free(b);
}

static void test_files_of_another_format_version_are_refused(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_version"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    crash_after(1, 0, 50);
    char(*names)[64] = logs_a, path[1200];
    int n = list_logs(names, MAX_LOGS);
    CU_ASSERT_FATAL(n >= 1);
    /* A log of version 1 (page images): refused by name, never misread,
     * and nothing changes. */
    snprintf(path, sizeof path, "%s/%s", dir, names[0]);
    set_version(path, 0, 4096, 1);
    static struct dir_snap before;
    snap_dir(&before);
    JET_INSTANCE inst = 0;
    TU_CHECK_ERR(init_on_dir(&inst, "v1log"), JET_errBadLogVersion);
    const char *why = JetGetLastErrorDetail();
    CU_ASSERT(strstr(why, names[0]) != NULL && strstr(why, "version 1") != NULL && strstr(why, "version 2") != NULL);
    if (!strstr(why, "version 1")) fprintf(stderr, "refusal: %s\n", why);
    JetTerm(inst);
    assert_dir_unchanged(&before, NULL);
    JET_INSPECT_LOGHEADER lh;
    TU_CHECK_ERR(JetInspectLogHeader(path, &lh), JET_errBadLogVersion);
    set_version(path, 0, 4096, 2);
    /* A database of version 1: both header copies say so. */
    set_version(dbpath, 0, 1024, 1);
    set_version(dbpath, 8192, 1024, 1);
    JET_INSPECT_DBHEADER dh;
    JET_ERR e = JetInspectDatabaseHeader(dbpath, &dh);
    why = JetGetLastErrorDetail();
    if (e != JET_errInvalidDatabase) fprintf(stderr, "database refusal: %ld %s\n", (long)e, why);
    TU_CHECK_ERR(e, JET_errInvalidDatabase);
    CU_ASSERT(strstr(why, "f.db") != NULL && strstr(why, "format version 1") != NULL);
    inst = 0;
    CU_ASSERT(init_on_dir(&inst, "v1db") < 0);
    JetTerm(inst);
}

static void test_stale_temporaries_are_removed_at_start(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_tmp"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    crash_after(1, 0, 50);
    char tmp1[1200], tmp2[1200];
    snprintf(tmp1, sizeof tmp1, "%s/edb.chk.tmp", dir);
    snprintf(tmp2, sizeof tmp2, "%s/edb.delivered.tmp", dir);
    FILE *f = fopen(tmp1, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("half a checkpoint", f);
    fclose(f);
    f = fopen(tmp2, "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, 1000) >= 0);
    CU_ASSERT(access(tmp1, F_OK) != 0 && access(tmp2, F_OK) != 0);
    CU_ASSERT_EQUAL(count_present(s, t, 50), 50);
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

static void test_failed_fsync_makes_instance_unavailable_and_loses_nothing(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("fault_fsync"));
    snprintf(dbpath, sizeof dbpath, "%s/f.db", dir);
    testvfs_install(NULL, NULL);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 1, 3600000) >= 0);
    put_n(s, t, 0, 100);
    /* Every fsync fails from here on. */
    testvfs_fail_from(TV_FSYNC, 1, NULL, JET_errDiskIO);
    char val[10] = "x";
    TU_CHECK_ERR(JetPutKV(s, t, "k000100", 7, val, 1, 0), JET_errInstanceUnavailable);
    /* Sticky: no retry, every later call refused. */
    testvfs_clear(TV_FSYNC);
    TU_CHECK_ERR(JetPutKV(s, t, "k000101", 7, val, 1, 0), JET_errInstanceUnavailable);
    TU_CHECK_ERR(JetBeginTransaction(s), JET_errInstanceUnavailable);
    /* The failure is told, first cause first, and the termination is not
     * a clean shutdown. */
    char why[700];
    TU_CHECK_ERR(JetGetInstanceFailure(inst, why, sizeof why), JET_errInstanceUnavailable);
    CU_ASSERT(strstr(why, "fsync") != NULL && strstr(why, dir) != NULL);
    if (!strstr(why, "fsync")) fprintf(stderr, "failure reason: %s\n", why);
    TU_CHECK_ERR(JetTerm(inst), JET_errInstanceUnavailable);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "not shut down cleanly") != NULL);
    testvfs_uninstall();
    CU_ASSERT_FATAL(open_inst(&inst, &s, &t, 0, 1000) >= 0);
    CU_ASSERT_EQUAL(count_present(s, t, 100), 100);
    TU_CHECK_ERR(JetGetInstanceFailure(inst, why, sizeof why), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(why, "");
    TU_CHECK_ERR(JetTerm(inst), JET_errSuccess);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    logs_a = calloc(MAX_LOGS, 64);
    logs_b = calloc(MAX_LOGS, 64);
    CU_pSuite su = CU_add_suite("faults", NULL, NULL);
    CU_add_test(su, "test_flipped_data_page_byte_is_read_verify_failure", test_flipped_data_page_byte_is_read_verify_failure);
    CU_add_test(su, "test_torn_log_tail_is_recovered_around", test_torn_log_tail_is_recovered_around);
    CU_add_test(su, "test_corrupt_middle_log_stops_recovery_and_deletes_nothing",
                test_corrupt_middle_log_stops_recovery_and_deletes_nothing);
    CU_add_test(su, "test_damaged_header_copy_falls_back", test_damaged_header_copy_falls_back);
    CU_add_test(su, "test_corrupt_checkpoint_is_reported", test_corrupt_checkpoint_is_reported);
    CU_add_test(su, "test_a_missing_newest_generation_is_refused", test_a_missing_newest_generation_is_refused);
    CU_add_test(su, "test_files_of_another_format_version_are_refused",
                test_files_of_another_format_version_are_refused);
    CU_add_test(su, "test_stale_temporaries_are_removed_at_start", test_stale_temporaries_are_removed_at_start);
    CU_add_test(su, "test_damage_in_the_newest_generation_is_refused_not_dropped",
                test_damage_in_the_newest_generation_is_refused_not_dropped);
    CU_add_test(su, "test_failed_fsync_makes_instance_unavailable_and_loses_nothing",
                test_failed_fsync_makes_instance_unavailable_and_loses_nothing);
    return tu_run();
}
