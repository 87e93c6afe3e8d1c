/*
 * test_recovery.c -- crash recovery under kill -9.
 *
 * A child process runs random multi-key transactions (some with values large
 * enough for overflow pages) and reports each acknowledged durable commit to
 * the parent through a pipe.  The parent kills it with SIGKILL at a random
 * moment, recovers the instance in-process (JetInit), and checks that the
 * database equals the model of acknowledged commits, or that model plus the
 * one transaction in flight -- never anything in between.  The smallest log
 * files, values up to 20 KB, and a fast checkpointer make the cycles cross
 * many generations and checkpoints (both counted and asserted).
 * CRASH_CYCLES overrides the count; SEED reproduces a run.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"

#define NKEYS 160
#define MAXVAL 20000

static char dir[1024], dbpath[1100];
/* model: value per key, length -1 when absent */
struct model {
    int len[NKEYS];
    uint32_t tag[NKEYS];
};

static void fill_value(uint8_t *buf, int len, uint32_t tag)
{
    uint64_t st = tag * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < len; i++) buf[i] = (uint8_t)(tu_rand(&st) >> 56);
}

/* The i-th transaction of a cycle, deterministic from (seed, cycle, i). */
struct op {
    int key;
    int len; /* -1 delete */
    uint32_t tag;
};
static int txn_ops(uint64_t seed, int cycle, int i, struct op *ops)
{
    uint64_t st = seed ^ ((uint64_t)cycle << 40) ^ ((uint64_t)i * 0x100000001B3ull) ^ 0xABCDEF;
    tu_rand(&st);
    int n = 1 + (int)(tu_rand(&st) % 6);
    for (int j = 0; j < n; j++) {
        ops[j].key = (int)(tu_rand(&st) % NKEYS);
        uint64_t r = tu_rand(&st) % 100;
        if (r < 15) ops[j].len = -1;
        else if (r < 20) ops[j].len = 9000 + (int)(tu_rand(&st) % (MAXVAL - 9000));
        else ops[j].len = (int)(tu_rand(&st) % 1200);
        ops[j].tag = (uint32_t)(tu_rand(&st) | 1);
    }
    return n;
}

static void apply(struct model *m, const struct op *ops, int n)
{
    for (int j = 0; j < n; j++) {
        m->len[ops[j].key] = ops[j].len;
        m->tag[ops[j].key] = ops[j].tag;
    }
}

static JET_ERR open_instance(JET_INSTANCE *pinst, JET_SESID *ps, JET_TABLEID *pt, int create)
{
    return tu_open("crash", dir, (struct tu_params){.log_kb = 64, .ckpt_ms = 30, .cache_pages = 256}, dbpath, create, pinst,
                   ps, NULL, pt);
}

static void child_run(uint64_t seed, int cycle, int wfd)
{
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    static uint8_t val[MAXVAL];
    if (open_instance(&inst, &s, &t, 0) < 0) _exit(3);
    for (int i = 1;; i++) {
        struct op ops[8];
        int n = txn_ops(seed, cycle, i, ops);
        if (JetBeginTransaction(s) < 0) _exit(4);
        for (int j = 0; j < n; j++) {
            char key[16];
            snprintf(key, sizeof key, "key%04d", ops[j].key);
            JET_ERR err;
            if (ops[j].len < 0) {
                err = JetDeleteKV(s, t, key, strlen(key));
                if (err == JET_errRecordNotFound) err = 0;
            } else {
                fill_value(val, ops[j].len, ops[j].tag);
                err = JetPutKV(s, t, key, strlen(key), val, (unsigned long)ops[j].len, 0);
            }
            if (err < 0) _exit(5);
        }
        if (JetCommitTransaction(s, 0) < 0) _exit(6);
        uint32_t ack = (uint32_t)i;
        if (write(wfd, &ack, sizeof ack) != sizeof ack) _exit(7);
    }
}

/* 0 if the database equals m. */
static int compare(JET_SESID s, JET_TABLEID t, const struct model *m, char *why, size_t cb)
{
    static uint8_t want[MAXVAL], got[MAXVAL];
    for (int k = 0; k < NKEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "key%04d", k);
        unsigned long n = 0;
        JET_ERR err = JetRetrieveKV(s, t, key, strlen(key), got, sizeof got, &n, 0);
        if (m->len[k] < 0) {
            if (err != JET_errRecordNotFound) {
                snprintf(why, cb, "%s present (err %ld), expected absent", key, err);
                return 1;
            }
            continue;
        }
        if (err < 0) {
            snprintf(why, cb, "%s: error %ld, expected %d bytes", key, err, m->len[k]);
            return 1;
        }
        fill_value(want, m->len[k], m->tag[k]);
        if ((int)n != m->len[k] || memcmp(want, got, n) != 0) {
            snprintf(why, cb, "%s: %lu bytes, expected %d (or content differs)", key, n, m->len[k]);
            return 1;
        }
    }
    return 0;
}

static void test_kill9_recovery_cycles(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("crash"));
    snprintf(dbpath, sizeof dbpath, "%s/crash.db", dir);
    uint64_t seed = tu_seed("test_kill9_recovery_cycles");
    uint64_t rng = seed;
    long cycles = tu_count("CRASH_CYCLES", 100, 1000);
    struct model m;
    for (int k = 0; k < NKEYS; k++) m.len[k] = -1;

    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    CU_ASSERT_FATAL(open_instance(&inst, &s, &t, 1) >= 0);
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);

    long total_acked = 0, inflight_seen = 0;
    /* The checkpoint as each killed child left it, against where the
     * child started: the child's JetInit points it at the generation it
     * opens (one past the parent's last), so a checkpoint further on, or
     * one that lists the database, was moved by the child's checkpointer --
     * recovery then starts from a checkpoint a crash really left behind. */
    char ckpath[1200];
    snprintf(ckpath, sizeof ckpath, "%s/edb.chk", dir);
    uint32_t ck_gen = 0, ck_first = 0;
    long ck_moved = 0, ck_gens_moved = 0;
    for (int cycle = 1; cycle <= cycles; cycle++) {
        JET_INSPECT_CHECKPOINT ck;
        TU_CHECK_ERR(JetInspectCheckpoint(ckpath, &ck), JET_errSuccess);
        uint32_t gen_start = (uint32_t)(ck.lsn >> 32) + 1;
        int fds[2];
        CU_ASSERT_FATAL(pipe(fds) == 0);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_run(seed, cycle, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        /* Let it run 5..120 ms, so some kills land in recovery, some in the
         * middle of a commit, a checkpoint or a log roll. */
        struct timespec ts = {0, (long)(5 + tu_rand(&rng) % 115) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CU_ASSERT_FATAL(WIFSIGNALED(status));
        uint32_t ack = 0, a;
        while (read(fds[0], &a, sizeof a) == sizeof a) ack = a;
        close(fds[0]);
        JET_ERR err = JetInspectCheckpoint(ckpath, &ck);
        if (err < 0) fprintf(stderr, "cycle %d: checkpoint: %ld %s\n", cycle, err, JetGetLastErrorDetail());
        CU_ASSERT_FATAL(err >= 0);
        uint32_t gen = (uint32_t)(ck.lsn >> 32);
        CU_ASSERT(gen >= ck_gen); /* a checkpoint never moves back */
        if (cycle == 1) ck_first = gen;
        if (ck.ndbs > 0 || gen > gen_start) ck_moved++;
        if (gen > gen_start) ck_gens_moved += gen - gen_start;
        ck_gen = gen;

        err = open_instance(&inst, &s, &t, 0);
        if (err < 0) {
            fprintf(stderr, "cycle %d: recovery failed: %ld %s: %s\n", cycle, err, JetErrorString(err),
                    JetGetLastErrorDetail());
            CU_FAIL_FATAL("recovery failed");
        }
        struct model acked = m, plus = m;
        for (uint32_t i = 1; i <= ack; i++) {
            struct op ops[8];
            int n = txn_ops(seed, cycle, (int)i, ops);
            apply(&acked, ops, n);
        }
        plus = acked;
        struct op ops[8];
        int n = txn_ops(seed, cycle, (int)ack + 1, ops);
        apply(&plus, ops, n);
        char why[256], why2[256];
        if (compare(s, t, &acked, why, sizeof why) == 0) {
            m = acked;
        } else if (compare(s, t, &plus, why2, sizeof why2) == 0) {
            m = plus;
            inflight_seen++;
        } else {
            fprintf(stderr, "cycle %d (acked %u): database matches neither model: %s / %s\n", cycle, ack, why, why2);
            CU_FAIL_FATAL("database differs from the acknowledged commits");
        }
        total_acked += ack;
        CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    }
    int gens = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "edb0", 4)) gens++;
    if (d) closedir(d);
    fprintf(stderr,
            "crash test: %ld cycles, %ld acknowledged commits, in-flight commit present after %ld kills, "
            "%d log generations crossed; checkpoint generation %u -> %u, moved by the child in %ld cycles, "
            "by %ld generations in all\n",
            cycles, total_acked, inflight_seen, gens, ck_first, ck_gen, ck_moved, ck_gens_moved);
    /* Bounds well below what runs show.  Since the log became compact a
     * commit writes little, so the load is sized to roll generations
     * anyway: the smallest log file the engine takes (64 KiB) and small
     * values up to 1,200 bytes.  100 cycles, plain: 5,100-16,600 commits
     * and the child moving the checkpoint in 88-98 cycles by 225-821
     * generations; under ASan 1,250-6,700 and 77-93 by 29-298; ASan with
     * two more crash tests beside it 1,900-2,300 and 79-83 by 53-73; plain
     * on a machine at load 5-7 (2 cores), 835-1,470 and 76-78 by 14-39.
     * The generations moved are about 1.7-5% of the commits, so that bound
     * now fails only near where the commits' bound does (with 128 KiB and
     * values under 300 bytes: 0.7-1%, and 9 generations happened under
     * ASan). */
    CU_ASSERT(total_acked >= 5 * cycles);
    CU_ASSERT(ck_moved >= cycles / 10);
    CU_ASSERT(ck_gens_moved >= cycles / 10);
    CU_ASSERT(ck_gen > ck_first + cycles);
    /* Each cycle starts a generation; the load must also fill several. */
    CU_ASSERT(gens > cycles + 10);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("recovery", NULL, NULL);
    CU_add_test(su, "test_kill9_recovery_cycles", test_kill9_recovery_cycles);
    return tu_run();
}
