/*
 * test_log.c -- engine/log.c: framing and read-back, size limits, rolling
 * and the hash chain, torn tails, damage in earlier generations, missing
 * files, group commit, concurrent batches, and injected write and fsync
 * failures (through the I/O seam, with tests/support/testvfs.h).
 *
 * Randomized tests print their seed; SEED=... replays one.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "log.h"
#include "os.h"
#include "page.h"
#include "testutil.h"
#include "testvfs.h"

#define KB 1024u
#define SMALL_FILE (64u * KB)

static char dir[1024];

static void use_dir(const char *name) { snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name)); }

/* ---- on_close recorder ---- */

#define MAX_CLOSES 4096
static pthread_mutex_t closes_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { uint32_t gen; uint64_t hash; uint64_t us; } closes[MAX_CLOSES];
static int nclosed;

static void on_close(void *arg, uint32_t gen, uint64_t hash, uint64_t us)
{
    (void)arg;
    pthread_mutex_lock(&closes_mu);
    if (nclosed < MAX_CLOSES) {
        closes[nclosed].gen = gen;
        closes[nclosed].hash = hash;
        closes[nclosed].us = us;
    }
    nclosed++;
    pthread_mutex_unlock(&closes_mu);
}

static struct log_config cfg_for(uint64_t sig, uint32_t file_size)
{
    nclosed = 0;
    struct log_config c = {.dir = dir, .base = "edb", .file_size = file_size, .page_size = 8192,
                           .signature = sig, .on_close = on_close, .on_close_arg = NULL};
    return c;
}

static JET_ERR append1(struct jet_log *log, uint8_t type, const void *p, size_t n, lsn_t *pfirst, lsn_t *pend)
{
    struct iovec iov = {(void *)p, n};
    struct log_rec r = {type, &iov, 1, NULL};
    return log_append(log, &r, 1, pfirst, pend);
}

/* Payload bytes of record i of a stream: reproducible from (seed, i). */
static void fill_payload(uint64_t seed, uint64_t i, uint8_t *p, size_t n)
{
    uint64_t st = seed ^ (i * 0x9E3779B97F4A7C15ull) ^ 0x5bd1e995ull;
    if (!st) st = 1;
    for (size_t k = 0; k < n; k++) p[k] = (uint8_t)(tu_rand(&st) >> 56);
}

static void gen_path(char *buf, size_t cb, uint32_t gen) { CU_ASSERT_EQUAL_FATAL(log_file_name(buf, cb, dir, "edb", gen), 0); }

/* Reads everything from start; returns the number of records. */
static int read_all(lsn_t start, uint64_t sig, uint32_t last_gen, JET_ERR *perr, int *ptorn, lsn_t *pend)
{
    struct log_reader *rd;
    struct log_record rec;
    int n = 0;
    *perr = log_reader_open(dir, "edb", start, sig, last_gen, &rd);
    *ptorn = 0;
    if (*perr < 0) return -1;
    while ((*perr = log_reader_next(rd, &rec)) == JET_errSuccess) n++;
    *ptorn = log_reader_tail_torn(rd);
    if (pend) *pend = log_reader_end(rd);
    log_reader_close(rd);
    return n;
}

static void write_at(const char *path, off_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(pwrite(fd, bytes, n, off) == (ssize_t)n);
    close(fd);
}

static void read_at(const char *path, off_t off, void *bytes, size_t n)
{
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(pread(fd, bytes, n, off) == (ssize_t)n);
    close(fd);
}

static off_t file_len(const char *path)
{
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    return st.st_size;
}

/* Rewrites header field at off (8 bytes) of generation gen, with a valid checksum. */
static void forge_header_u64(uint32_t gen, size_t off, uint64_t value)
{
    char path[1100];
    uint8_t hb[LOG_HEADER_SIZE];
    gen_path(path, sizeof path, gen);
    read_at(path, 0, hb, sizeof hb);
    put_le64(hb + off, value);
    put_le64(hb, XXH3_64bits(hb + 8, LOG_HEADER_SIZE - 8));
    write_at(path, 0, hb, sizeof hb);
}

static int detail_has(const char *s) { return strstr(JetGetLastErrorDetail(), s) != NULL; }

/* A log of fixed-size records over several 64 KiB generations. */
#define STD_REC 3000u
static uint32_t write_std_log(uint64_t sig, int records, lsn_t *lsns)
{
    struct log_config cfg = cfg_for(sig, SMALL_FILE);
    struct jet_log *log;
    uint8_t buf[STD_REC];
    lsn_t end = 0;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    for (int i = 0; i < records; i++) {
        fill_payload(sig, (uint64_t)i, buf, sizeof buf);
        lsn_t first;
        CU_ASSERT_EQUAL(append1(log, 1, buf, sizeof buf, &first, &end), JET_errSuccess);
        if (lsns) lsns[i] = first;
    }
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    uint32_t g = log_current_generation(log);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    return g;
}

/* ------------------------------------------------------------------ */

static void test_log_append_flush_reopen_read_back_byte_exact(void)
{
    use_dir("log_readback");
    uint64_t seed = tu_seed("test_log_append_flush_reopen_read_back_byte_exact");
    uint64_t st = seed;
    enum { N = 600 };
    static lsn_t lsns[N], ends[N];
    static uint32_t lens[N];
    static uint8_t types[N];
    uint8_t buf[5000];
    struct log_config cfg = cfg_for(0x1234, 4096 * KB);
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    CU_ASSERT_EQUAL(log_end_lsn(log), LSN_MAKE(1, LOG_HEADER_SIZE));
    CU_ASSERT_EQUAL(log_durable_lsn(log), LSN_MAKE(1, LOG_HEADER_SIZE));
    CU_ASSERT_EQUAL(log_signature(log), 0x1234u);
    int i = 0;
    while (i < N) {
        /* Batches of 1..4 records, each payload split in up to 3 pieces. */
        int nb = 1 + (int)(tu_rand(&st) % 4);
        if (nb > N - i) nb = N - i;
        struct log_rec recs[4];
        struct iovec iovs[4][3];
        static uint8_t payloads[4][5000];
        for (int b = 0; b < nb; b++) {
            lens[i + b] = (uint32_t)(tu_rand(&st) % sizeof buf);
            types[i + b] = (uint8_t)tu_rand(&st);
            fill_payload(seed, (uint64_t)(i + b), payloads[b], lens[i + b]);
            size_t cut1 = lens[i + b] ? tu_rand(&st) % lens[i + b] : 0, cut2 = cut1 + (lens[i + b] - cut1) / 2;
            iovs[b][0] = (struct iovec){payloads[b], cut1};
            iovs[b][1] = (struct iovec){payloads[b] + cut1, cut2 - cut1};
            iovs[b][2] = (struct iovec){payloads[b] + cut2, lens[i + b] - cut2};
            recs[b] = (struct log_rec){types[i + b], iovs[b], 3, NULL};
        }
        lsn_t first = 0, end = 0, before = log_end_lsn(log);
        CU_ASSERT_EQUAL_FATAL(log_append(log, recs, nb, &first, &end), JET_errSuccess);
        CU_ASSERT_EQUAL(first, before);
        lsn_t at = first;
        for (int b = 0; b < nb; b++) {
            lsns[i + b] = at;
            at += LOG_REC_HDR_SIZE + ((lens[i + b] + 7u) & ~7u);
            ends[i + b] = at;
        }
        CU_ASSERT_EQUAL(end, at);
        CU_ASSERT_EQUAL(log_end_lsn(log), end);
        i += nb;
        if (tu_rand(&st) % 8 == 0) {
            CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
            CU_ASSERT(log_durable_lsn(log) >= end);
        }
    }
    CU_ASSERT_EQUAL(log_flush_all(log), JET_errSuccess);
    lsn_t log_end = log_end_lsn(log);
    CU_ASSERT(log_durable_lsn(log) >= log_end);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);

    struct log_reader *rd;
    struct log_record rec;
    CU_ASSERT_EQUAL_FATAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 0x1234, 0, &rd), JET_errSuccess);
    int n = 0, bad = 0;
    JET_ERR err;
    while ((err = log_reader_next(rd, &rec)) == JET_errSuccess) {
        if (n >= N) {
            bad++;
            break;
        }
        fill_payload(seed, (uint64_t)n, buf, lens[n]);
        if (rec.lsn != lsns[n] || rec.end != ends[n] || rec.type != types[n] || rec.len != lens[n] ||
            memcmp(rec.payload, buf, lens[n]) != 0)
            bad++;
        n++;
    }
    CU_ASSERT_EQUAL(err, 1);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(n, N);
    CU_ASSERT(!log_reader_tail_torn(rd));
    CU_ASSERT_EQUAL(log_reader_end(rd), log_end);
    CU_ASSERT_EQUAL(log_reader_header(rd)->generation, LSN_GEN(log_end));
    CU_ASSERT_EQUAL(log_reader_next(rd, &rec), 1); /* stays at the end */
    log_reader_close(rd);
    CU_ASSERT_EQUAL(nclosed, 0); /* close does not roll */
}

static void test_log_record_size_limits(void)
{
    use_dir("log_sizes");
    struct log_config cfg = cfg_for(0x55, SMALL_FILE);
    struct jet_log *log;
    size_t maxp = log_max_payload(SMALL_FILE);
    CU_ASSERT_EQUAL(maxp, SMALL_FILE - LOG_HEADER_SIZE - LOG_REC_HDR_SIZE);
    uint8_t *big = malloc(maxp + 16);
    CU_ASSERT_FATAL(big != NULL);
    fill_payload(7, 7, big, maxp + 16);
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t first, end, e0;
    CU_ASSERT_EQUAL(append1(log, 3, NULL, 0, &first, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(first, LSN_MAKE(1, LOG_HEADER_SIZE));
    CU_ASSERT_EQUAL(end, LSN_MAKE(1, LOG_HEADER_SIZE + LOG_REC_HDR_SIZE));
    e0 = log_end_lsn(log);
    /* Over the limit, alone, in pieces, or inside a batch: nothing appended. */
    CU_ASSERT_EQUAL(append1(log, 4, big, maxp + 1, &first, &end), JET_errInvalidParameter);
    struct iovec two[2] = {{big, maxp}, {big, 8}};
    struct log_rec r2 = {4, two, 2, NULL};
    CU_ASSERT_EQUAL(log_append(log, &r2, 1, NULL, NULL), JET_errInvalidParameter);
    struct iovec ok = {big, 10};
    struct log_rec batch[2] = {{5, &ok, 1, NULL}, {4, two, 2, NULL}};
    CU_ASSERT_EQUAL(log_append(log, batch, 2, NULL, NULL), JET_errInvalidParameter);
    CU_ASSERT_EQUAL(log_end_lsn(log), e0);
    /* Exactly the limit: does not fit after the first record, so it rolls
     * and fills generation 2 to the last byte. */
    CU_ASSERT_EQUAL(append1(log, 4, big, maxp, &first, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(first, LSN_MAKE(2, LOG_HEADER_SIZE));
    CU_ASSERT_EQUAL(end, LSN_MAKE(2, SMALL_FILE));
    CU_ASSERT_EQUAL(nclosed, 1);
    CU_ASSERT_EQUAL(append1(log, 6, NULL, 0, &first, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(first, LSN_MAKE(3, LOG_HEADER_SIZE));
    CU_ASSERT_EQUAL(log_append(log, NULL, 0, &first, &end), JET_errSuccess); /* empty batch */
    CU_ASSERT_EQUAL(first, end);
    CU_ASSERT_EQUAL(end, log_end_lsn(log));
    CU_ASSERT_EQUAL(log_flush(log, end + 8), JET_errInvalidParameter); /* past the end */
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);

    struct log_reader *rd;
    struct log_record rec;
    CU_ASSERT_EQUAL_FATAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 0x55, 0, &rd), JET_errSuccess);
    CU_ASSERT_EQUAL(log_reader_next(rd, &rec), 0);
    CU_ASSERT(rec.len == 0 && rec.type == 3);
    CU_ASSERT_EQUAL(log_reader_next(rd, &rec), 0);
    CU_ASSERT(rec.len == maxp && rec.type == 4 && rec.lsn == LSN_MAKE(2, LOG_HEADER_SIZE));
    CU_ASSERT(rec.len == maxp && memcmp(rec.payload, big, maxp) == 0);
    CU_ASSERT_EQUAL(log_reader_next(rd, &rec), 0);
    CU_ASSERT(rec.len == 0 && rec.type == 6);
    CU_ASSERT_EQUAL(log_reader_next(rd, &rec), 1);
    CU_ASSERT(!log_reader_tail_torn(rd));
    log_reader_close(rd);
    free(big);
}

/* A record much larger than the writer's buffer streams through it. */
static void test_log_record_larger_than_the_append_buffer(void)
{
    use_dir("log_huge");
    struct log_config cfg = cfg_for(0x77, 4096 * KB);
    struct jet_log *log;
    size_t n = 3 * 1024 * KB + 5;
    uint8_t *big = malloc(n);
    CU_ASSERT_FATAL(big != NULL);
    fill_payload(3, 3, big, n);
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end;
    CU_ASSERT_EQUAL(append1(log, 1, "abc", 3, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(append1(log, 2, big, n, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(append1(log, 3, "xyz", 3, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    struct log_reader *rd;
    struct log_record rec;
    CU_ASSERT_EQUAL_FATAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 0x77, 0, &rd), JET_errSuccess);
    CU_ASSERT(log_reader_next(rd, &rec) == 0 && rec.len == 3 && memcmp(rec.payload, "abc", 3) == 0);
    CU_ASSERT(log_reader_next(rd, &rec) == 0 && rec.len == n && memcmp(rec.payload, big, n) == 0);
    CU_ASSERT(log_reader_next(rd, &rec) == 0 && rec.len == 3 && memcmp(rec.payload, "xyz", 3) == 0);
    CU_ASSERT_EQUAL(log_reader_next(rd, &rec), 1);
    CU_ASSERT_EQUAL(log_reader_end(rd), end);
    log_reader_close(rd);
    free(big);
}

static void test_log_rolls_when_a_generation_fills(void)
{
    use_dir("log_autoroll");
    uint64_t seed = tu_seed("test_log_rolls_when_a_generation_fills");
    uint64_t st = seed;
    enum { N = 1500 };
    static uint32_t lens[N];
    static lsn_t lsns[N];
    uint8_t buf[2500];
    struct log_config cfg = cfg_for(0xABCDEF, SMALL_FILE);
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end = 0;
    for (int i = 0; i < N; i++) {
        lens[i] = 50 + (uint32_t)(tu_rand(&st) % (sizeof buf - 50));
        fill_payload(seed, (uint64_t)i, buf, lens[i]);
        CU_ASSERT_EQUAL(append1(log, (uint8_t)(i % 7), buf, lens[i], &lsns[i], &end), JET_errSuccess);
        CU_ASSERT(LSN_OFF(lsns[i]) + LOG_REC_HDR_SIZE + lens[i] <= SMALL_FILE); /* never spans */
        if (i % 100 == 0) CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    }
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    uint32_t last = log_current_generation(log);
    CU_ASSERT(last > 10);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);

    /* One on_close per closed generation, in order, with the file's hash,
     * and each header chains to its predecessor. */
    CU_ASSERT_EQUAL(nclosed, (int)last - 1);
    uint64_t prev_create = 0, prev_hash = 0;
    for (uint32_t g = 1; g <= last; g++) {
        char path[1100];
        struct log_header h;
        gen_path(path, sizeof path, g);
        CU_ASSERT_EQUAL(file_len(path), (off_t)SMALL_FILE);
        CU_ASSERT_EQUAL_FATAL(log_read_header(path, &h), JET_errSuccess);
        CU_ASSERT(h.generation == g && h.file_size == SMALL_FILE && h.signature == 0xABCDEF &&
                  h.page_size == 8192 && strcmp(h.base, "edb") == 0);
        CU_ASSERT_EQUAL(h.prev_create_us, prev_create);
        CU_ASSERT_EQUAL(h.prev_hash, prev_hash);
        CU_ASSERT(h.create_us > prev_create);
        uint64_t hash;
        CU_ASSERT_EQUAL(log_hash_file(path, &hash), JET_errSuccess);
        if (g < last && (int)g <= nclosed) {
            CU_ASSERT_EQUAL(closes[g - 1].gen, g);
            CU_ASSERT_EQUAL(closes[g - 1].hash, hash);
            CU_ASSERT(closes[g - 1].us >= h.create_us);
        }
        prev_create = h.create_us;
        prev_hash = hash;
    }
    uint32_t *gens;
    size_t ng;
    CU_ASSERT_EQUAL(log_list(dir, "edb", &gens, &ng), JET_errSuccess);
    CU_ASSERT_EQUAL(ng, last);
    for (size_t k = 0; k < ng; k++) CU_ASSERT_EQUAL(gens[k], k + 1);
    free(gens);

    struct log_reader *rd;
    struct log_record rec;
    CU_ASSERT_EQUAL_FATAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 0xABCDEF, 0, &rd), 0);
    int n = 0, bad = 0;
    JET_ERR err;
    while ((err = log_reader_next(rd, &rec)) == 0 && n < N) {
        fill_payload(seed, (uint64_t)n, buf, lens[n]);
        if (rec.lsn != lsns[n] || rec.len != lens[n] || rec.type != n % 7 || memcmp(rec.payload, buf, lens[n]))
            bad++;
        n++;
    }
    CU_ASSERT_EQUAL(err, 1);
    CU_ASSERT_EQUAL(n, N);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(log_reader_end(rd), end);
    log_reader_close(rd);
}

static void test_log_roll_explicit_and_empty_generation(void)
{
    use_dir("log_roll");
    struct log_config cfg = cfg_for(0x99, SMALL_FILE);
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end;
    CU_ASSERT_EQUAL(append1(log, 1, "hello", 5, NULL, &end), JET_errSuccess);
    uint32_t closed = 0;
    CU_ASSERT_EQUAL(log_roll(log, &closed), JET_errSuccess);
    CU_ASSERT_EQUAL(closed, 1);
    CU_ASSERT_EQUAL(log_current_generation(log), 2);
    CU_ASSERT_EQUAL(log_end_lsn(log), LSN_MAKE(2, LOG_HEADER_SIZE));
    CU_ASSERT(log_durable_lsn(log) >= end); /* the roll made it durable */
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    /* A generation holding no record still closes. */
    CU_ASSERT_EQUAL(log_roll(log, &closed), JET_errSuccess);
    CU_ASSERT_EQUAL(closed, 2);
    CU_ASSERT_EQUAL(log_roll(log, NULL), JET_errSuccess);
    CU_ASSERT_EQUAL(append1(log, 2, "world", 5, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(end, LSN_MAKE(4, LOG_HEADER_SIZE + 32));
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    CU_ASSERT_EQUAL_FATAL(nclosed, 3);
    for (int k = 0; k < 3; k++) {
        char path[1100];
        uint64_t h = 0;
        gen_path(path, sizeof path, (uint32_t)k + 1);
        CU_ASSERT_EQUAL(closes[k].gen, (uint32_t)k + 1);
        CU_ASSERT_EQUAL(log_hash_file(path, &h), JET_errSuccess);
        CU_ASSERT_EQUAL(closes[k].hash, h);
    }
    JET_ERR err;
    int torn;
    lsn_t rend;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 0x99, 0, &err, &torn, &rend), 2);
    CU_ASSERT(err == 1 && !torn && rend == end);
    /* From the empty generation: crosses it and finds the last record. */
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(2, LOG_HEADER_SIZE), 0x99, 0, &err, &torn, &rend), 1);
    CU_ASSERT_EQUAL(err, 1);
    /* Bounded to generations 2..3: no record, a clean end. */
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(2, LOG_HEADER_SIZE), 0x99, 3, &err, &torn, &rend), 0);
    CU_ASSERT(err == 1 && !torn && rend == LSN_MAKE(3, LOG_HEADER_SIZE));
}

static void test_log_reader_starts_mid_generation_and_respects_last_gen(void)
{
    use_dir("log_midstart");
    enum { N = 60 };
    lsn_t lsns[N];
    uint32_t last = write_std_log(42, N, lsns);
    CU_ASSERT_FATAL(last >= 3);
    JET_ERR err;
    int torn;
    /* Start at record 5 (mid generation 1): the chain check on leaving
     * generation 1 must still hash all of it. */
    CU_ASSERT_EQUAL(read_all(lsns[5], 42, 0, &err, &torn, NULL), N - 5);
    CU_ASSERT(err == 1 && !torn);
    int in12 = 0;
    for (int i = 0; i < N; i++) in12 += LSN_GEN(lsns[i]) <= 2;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 42, 2, &err, &torn, NULL), in12);
    CU_ASSERT(err == 1 && !torn);
    /* Positions that are not record positions. */
    struct log_reader *rd;
    CU_ASSERT_EQUAL(log_reader_open(dir, "edb", LSN_MAKE(1, 100), 42, 0, &rd), JET_errInvalidParameter);
    CU_ASSERT_EQUAL(log_reader_open(dir, "edb", lsns[1] + 4, 42, 0, &rd), JET_errInvalidParameter);
    CU_ASSERT_EQUAL(log_reader_open(dir, "edb", LSN_MAKE(1, SMALL_FILE + 8), 42, 0, &rd), JET_errInvalidParameter);
    /* A wrong signature at the start. */
    CU_ASSERT_EQUAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 43, 0, &rd), JET_errBadLogSignature);
}

/* ---- damage ---- */

struct damage {
    const char *what;
    int kind;        /* see damage_last_generation */
    int expect_n;    /* records read, relative to all (0) or all but one (-1) */
};

/*
 * kind 0: none; 1: garbage inside the last record; 2: garbage after the last
 * record; 3: file truncated by 300 bytes; 4: file truncated inside the last
 * record; 5: zero the last record's header (a write that never landed).
 */
static void damage_last_generation(int kind, uint32_t last, lsn_t lastrec)
{
    char path[1100];
    gen_path(path, sizeof path, last);
    uint32_t off = LSN_OFF(lastrec);
    uint8_t zeros[LOG_REC_HDR_SIZE] = {0};
    switch (kind) {
    case 1: write_at(path, off + 100, "garbage!", 8); break;
    case 2: write_at(path, off + LOG_REC_HDR_SIZE + STD_REC + 200, "garbage!", 8); break;
    case 3: CU_ASSERT(truncate(path, SMALL_FILE - 300) == 0); break;
    case 4: CU_ASSERT(truncate(path, off + 500) == 0); break;
    case 5: write_at(path, off, zeros, sizeof zeros); break;
    default: break;
    }
}

static void test_log_torn_tail_ends_the_read_cleanly(void)
{
    static const struct damage table[] = {
        {"intact", 0, 0},
        {"garbage inside the last record", 1, -1},
        {"garbage after the last record", 2, 0},
        {"last record header zeroed, payload left", 5, -1},
    };
    enum { N = 50 };
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        lsn_t lsns[N];
        use_dir("log_torn");
        uint32_t last = write_std_log(77, N, lsns);
        CU_ASSERT_FATAL(LSN_GEN(lsns[N - 1]) == last && LSN_GEN(lsns[N - 2]) == last);
        damage_last_generation(table[t].kind, last, lsns[N - 1]);
        JET_ERR err;
        int torn;
        lsn_t end;
        int n = read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, &end);
        int want = N + table[t].expect_n;
        if (err != 1 || n != want || torn != (table[t].kind != 0))
            fprintf(stderr, "torn tail case '%s': err %d, %d records (want %d), torn %d\n", table[t].what, (int)err,
                    n, want, torn);
        CU_ASSERT_EQUAL(err, 1);
        CU_ASSERT_EQUAL(n, want);
        CU_ASSERT_EQUAL(torn, table[t].kind != 0);
        /* The end is just past the last good record: where a writer would go. */
        lsn_t want_end = want == N ? lsns[N - 1] + LOG_REC_HDR_SIZE + STD_REC : lsns[N - 1];
        CU_ASSERT_EQUAL(end, want_end);
    }
}

/* Writes N records of STD_REC bytes into one generation, each flushed on
 * its own except the last `last_batch`, which share one final flush (the
 * flush a crash could tear); returns the generation. */
static uint32_t write_flushed_log(uint64_t sig, int n, int last_batch, lsn_t *lsns)
{
    struct log_config cfg = cfg_for(sig, 4096 * KB);
    struct jet_log *log;
    uint8_t buf[STD_REC];
    lsn_t end = 0;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    for (int i = 0; i < n; i++) {
        fill_payload(sig, (uint64_t)i, buf, sizeof buf);
        CU_ASSERT_EQUAL(append1(log, 1, buf, sizeof buf, &lsns[i], &end), JET_errSuccess);
        if (i < n - last_batch) CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    }
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    uint32_t g = log_current_generation(log);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    CU_ASSERT_FATAL(LSN_GEN(lsns[0]) == g && LSN_GEN(lsns[n - 1]) == g);
    return g;
}

/* Damage before the last completed flush of the newest generation is
 * refused, naming the file and the offset: later records say that offset
 * was durable, so it cannot be the torn tail of a crash. */
static void test_log_damage_the_log_proves_durable_is_refused(void)
{
    enum { N = 40 };
    lsn_t lsns[N];
    static const struct { const char *what; int rec; int zero_sector; } table[] = {
        {"a byte flipped in an early record", 3, 0},
        {"a byte flipped in the middle", N / 2, 0},
        {"a sector zeroed in the middle", N / 2, 1},
        {"a byte flipped two flushes before the end", N - 3, 0},
    };
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        use_dir("log_proof");
        uint32_t g = write_flushed_log(55, N, 1, lsns);
        char path[1100];
        gen_path(path, sizeof path, g);
        uint32_t off = LSN_OFF(lsns[table[t].rec]);
        if (table[t].zero_sector) {
            static const uint8_t zeros[512];
            write_at(path, off & ~511u, zeros, sizeof zeros);
        } else {
            uint8_t b;
            read_at(path, off + 40, &b, 1);
            b ^= 0x20;
            write_at(path, off + 40, &b, 1);
        }
        JET_ERR err;
        int torn;
        read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 55, 0, &err, &torn, NULL);
        const char *d = JetGetLastErrorDetail();
        if (err != JET_errLogFileCorrupt) fprintf(stderr, "proof case '%s': %ld %s\n", table[t].what, (long)err, d);
        CU_ASSERT_EQUAL(err, JET_errLogFileCorrupt);
        CU_ASSERT(strstr(d, path) && strstr(d, "not the torn tail") && strstr(d, "last good position"));
    }
}

/* The other direction: damage inside the final flush (cut at every
 * 512-byte boundary of it: garbage, or zeroes, from there to the end of
 * the flush) and garbage past the end are a torn tail, recovered around:
 * every record of the earlier flushes is read, and the read ends cleanly. */
static void test_log_a_torn_final_flush_is_still_a_torn_tail(void)
{
    enum { N = 30, LAST = 6 };
    lsn_t lsns[N];
    use_dir("log_tornflush");
    uint32_t g = write_flushed_log(66, N, LAST, lsns);
    uint32_t from = LSN_OFF(lsns[N - LAST]), to = LSN_OFF(lsns[N - 1]) + LOG_REC_HDR_SIZE + STD_REC;
    char path[1100], saved[1200], cmd[2500];
    gen_path(path, sizeof path, g);
    snprintf(saved, sizeof saved, "%s.orig", path);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, saved);
    CU_ASSERT_FATAL(system(cmd) == 0);
    int cases = 0;
    for (uint32_t cut = (from + 511) & ~511u; cut < to; cut += 512) {
        for (int garbage = 0; garbage < 2; garbage++) {
            snprintf(cmd, sizeof cmd, "cp '%s' '%s'", saved, path);
            CU_ASSERT_FATAL(system(cmd) == 0);
            uint8_t *fill = malloc(to - cut);
            CU_ASSERT_FATAL(fill != NULL);
            memset(fill, garbage ? 0xA5 : 0, to - cut);
            write_at(path, cut, fill, to - cut);
            free(fill);
            JET_ERR err;
            int torn;
            int n = read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 66, 0, &err, &torn, NULL);
            int whole = 0;
            for (int i = 0; i < N; i++) whole += LSN_OFF(lsns[i]) + LOG_REC_HDR_SIZE + STD_REC <= cut;
            if (err != 1 || n != whole) fprintf(stderr, "torn flush at %u: %ld, %d records (want %d): %s\n", cut, (long)err, n, whole, JetGetLastErrorDetail());
            CU_ASSERT_EQUAL(err, 1);
            CU_ASSERT_EQUAL(n, whole);
            CU_ASSERT(n >= N - LAST);
            cases++;
        }
    }
    CU_ASSERT(cases >= 4);
    /* Garbage past the last record. */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", saved, path);
    CU_ASSERT_FATAL(system(cmd) == 0);
    write_at(path, to + 512, "garbage!", 8);
    JET_ERR err;
    int torn;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 66, 0, &err, &torn, NULL), N);
    CU_ASSERT(err == 1 && torn);
}

/* A generation is built whole before it has its name, so a crash never
 * leaves one short: a last generation cut (by hand, after acknowledged
 * commits reached it) is damage naming the file, never a torn tail. */
static void test_log_a_cut_last_generation_is_damage(void)
{
    enum { N = 50 };
    for (int kind = 3; kind <= 4; kind++) {
        lsn_t lsns[N];
        use_dir("log_cut");
        uint32_t last = write_std_log(77, N, lsns);
        damage_last_generation(kind, last, lsns[N - 1]);
        char path[1100];
        gen_path(path, sizeof path, last);
        JET_ERR err;
        int torn;
        read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
        CU_ASSERT_EQUAL(err, JET_errLogFileCorrupt);
        CU_ASSERT(strstr(JetGetLastErrorDetail(), path) && strstr(JetGetLastErrorDetail(), "cut or grown"));
        if (err != JET_errLogFileCorrupt) fprintf(stderr, "cut case %d: %ld %s\n", kind, (long)err, JetGetLastErrorDetail());
    }
}

/* The live generation deleted, replaced or cut under a writer: the next
 * flush fails naming the file, nothing after it is acknowledged, and the
 * log stays dead (no later call succeeds). */
static void test_log_a_live_generation_removed_fails_the_next_flush(void)
{
    static const char *const how[] = {"deleted", "replaced", "cut"};
    for (int k = 0; k < 3; k++) {
        use_dir("log_live");
        struct log_config cfg = cfg_for(9, SMALL_FILE);
        struct jet_log *log;
        uint8_t buf[STD_REC];
        lsn_t first, end;
        memset(buf, 'a' + k, sizeof buf);
        CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
        CU_ASSERT_EQUAL(append1(log, 1, buf, sizeof buf, &first, &end), JET_errSuccess);
        CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
        char path[1100], other[1200];
        gen_path(path, sizeof path, log_current_generation(log));
        if (k == 0) CU_ASSERT_FATAL(unlink(path) == 0);
        if (k == 1) {
            snprintf(other, sizeof other, "%s.copy", path);
            char cmd[5000];
            snprintf(cmd, sizeof cmd, "cp '%s' '%s' && mv '%s' '%s'", path, other, other, path);
            CU_ASSERT_FATAL(system(cmd) == 0);
        }
        if (k == 2) CU_ASSERT_FATAL(truncate(path, SMALL_FILE / 2) == 0);
        lsn_t durable = log_durable_lsn(log);
        CU_ASSERT_EQUAL(append1(log, 1, buf, sizeof buf, &first, &end), JET_errSuccess);
        CU_ASSERT_EQUAL(log_flush(log, end), JET_errLogWriteFail);
        CU_ASSERT(strstr(JetGetLastErrorDetail(), path) && strstr(JetGetLastErrorDetail(), how[k]));
        if (!strstr(JetGetLastErrorDetail(), how[k])) fprintf(stderr, "live %s: %s\n", how[k], JetGetLastErrorDetail());
        CU_ASSERT_EQUAL(log_durable_lsn(log), durable);
        CU_ASSERT_EQUAL(log_flush(log, end), JET_errLogWriteFail);
        CU_ASSERT_EQUAL(log_roll(log, NULL), JET_errLogWriteFail);
        log_close(log);
    }
}

static void test_log_damage_in_an_earlier_generation_is_corruption(void)
{
    enum { N = 60 };
    static const struct { const char *what; uint32_t off; const char *bytes; size_t n; int at_record; } table[] = {
        {"payload byte of the first record", LOG_HEADER_SIZE + 40, "\x5a", 1, 1},
        {"length of the first record", LOG_HEADER_SIZE + 1, "\x7f", 1, 1},
        {"lsn of the first record", LOG_HEADER_SIZE + 9, "\x01", 1, 1},
        {"checksum of the second record", LOG_HEADER_SIZE + STD_REC + 24 + 16, "\x01", 1, 0},
        {"garbage in the zeroes after the last record", SMALL_FILE - 64, "junk", 4, 0},
        {"header checksum", 100, "\x01", 1, -1},
    };
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        lsn_t lsns[N];
        use_dir("log_damage");
        uint32_t last = write_std_log(77, N, lsns);
        CU_ASSERT_FATAL(last >= 3);
        char path[1100];
        gen_path(path, sizeof path, 2);
        uint8_t orig[8];
        read_at(path, table[t].off, orig, table[t].n);
        uint8_t patch[8];
        for (size_t k = 0; k < table[t].n; k++) patch[k] = orig[k] ^ (uint8_t)table[t].bytes[k];
        if (table[t].off >= SMALL_FILE - 64) memcpy(patch, table[t].bytes, table[t].n);
        write_at(path, table[t].off, patch, table[t].n);
        JET_ERR err;
        int torn;
        read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
        CU_ASSERT_EQUAL(err, JET_errLogFileCorrupt);
        int named = detail_has("edb00000002.log");
        char off_text[32];
        if (table[t].at_record == 1) snprintf(off_text, sizeof off_text, "offset %u", LOG_HEADER_SIZE);
        else if (table[t].at_record == 0 && table[t].off < SMALL_FILE - 64)
            snprintf(off_text, sizeof off_text, "offset %u", LOG_HEADER_SIZE + STD_REC + 24);
        else if (table[t].at_record == 0) {
            /* The first position after the generation's last record. */
            uint32_t endoff = 0;
            for (int i = 0; i < N; i++)
                if (LSN_GEN(lsns[i]) == 2) endoff = LSN_OFF(lsns[i]) + LOG_REC_HDR_SIZE + STD_REC;
            snprintf(off_text, sizeof off_text, "offset %u", endoff);
        } else
            snprintf(off_text, sizeof off_text, "checksum");
        int located = detail_has(off_text);
        if (err != JET_errLogFileCorrupt || !named || !located)
            fprintf(stderr, "damage case '%s': err %d, detail '%s' (want '%s')\n", table[t].what, (int)err,
                    JetGetLastErrorDetail(), off_text);
        CU_ASSERT(named);
        CU_ASSERT(located);
    }
    /* A middle generation cut short. */
    use_dir("log_damage");
    CU_ASSERT_FATAL(write_std_log(77, N, NULL) >= 3);
    char path[1100];
    gen_path(path, sizeof path, 2);
    CU_ASSERT(truncate(path, SMALL_FILE - 4096) == 0);
    JET_ERR err;
    int torn;
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errLogFileCorrupt);
    CU_ASSERT(detail_has("edb00000002.log"));
}

/*
 * A crash tears the tail of generation 2; recovery reads up to the tear and
 * starts generation 3, chained to generation 2 as it is.  Later readers
 * (a second recovery, a restore) cross the old tear: generation 3's hash
 * vouches that it is the crash's, not later damage.
 */
static void test_log_torn_tail_vouched_for_by_the_next_generation(void)
{
    enum { N = 40 };
    lsn_t lsns[N];
    use_dir("log_vouched");
    uint32_t last = write_std_log(88, N, lsns);
    char path[1100];
    gen_path(path, sizeof path, last);
    uint32_t tail = LSN_OFF(lsns[N - 1]) + LOG_REC_HDR_SIZE + STD_REC;
    write_at(path, tail + 8, "torn write", 10);
    JET_ERR err;
    int torn;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 88, 0, &err, &torn, NULL), N);
    CU_ASSERT(err == 1 && torn);

    struct log_config cfg = cfg_for(88, SMALL_FILE);
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, last + 1, &log), JET_errSuccess);
    lsn_t end;
    CU_ASSERT_EQUAL(append1(log, 9, "after the crash", 15, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 88, 0, &err, &torn, NULL), N + 1);
    CU_ASSERT(err == 1 && !torn);

    /* Damage after the fact is not vouched for. */
    write_at(path, tail + 30, "later", 5);
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 88, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errLogFileCorrupt);
    char off_text[32];
    snprintf(off_text, sizeof off_text, "offset %u", tail);
    CU_ASSERT(detail_has(off_text));
}

static void test_log_reader_checks_the_hash_chain(void)
{
    enum { N = 60 };
    JET_ERR err;
    int torn;
    char path[1100], other_dir[1024];

    /* prev_hash of generation 3 altered, header checksum made valid. */
    use_dir("log_chain");
    CU_ASSERT_FATAL(write_std_log(77, N, NULL) >= 3);
    gen_path(path, sizeof path, 3);
    struct log_header h;
    CU_ASSERT_EQUAL_FATAL(log_read_header(path, &h), JET_errSuccess);
    forge_header_u64(3, 48, h.prev_hash ^ 1);
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errInvalidLogSequence);
    CU_ASSERT(detail_has("edb00000003.log"));
    /* Reading from generation 3 on has nothing to check it against. */
    CU_ASSERT(read_all(LSN_MAKE(3, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL) > 0);
    CU_ASSERT_EQUAL(err, 1);

    /* prev_create_us altered. */
    use_dir("log_chain");
    CU_ASSERT_FATAL(write_std_log(77, N, NULL) >= 3);
    gen_path(path, sizeof path, 3);
    CU_ASSERT_EQUAL_FATAL(log_read_header(path, &h), JET_errSuccess);
    forge_header_u64(3, 40, h.prev_create_us + 1);
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errInvalidLogSequence);

    /* Generation 2 replaced by generation 2 of another stream. */
    use_dir("log_other");
    snprintf(other_dir, sizeof other_dir, "%s", dir);
    CU_ASSERT_FATAL(write_std_log(78, N, NULL) >= 3);
    use_dir("log_chain");
    CU_ASSERT_FATAL(write_std_log(77, N, NULL) >= 3);
    char from[1100];
    CU_ASSERT_EQUAL(log_file_name(from, sizeof from, other_dir, "edb", 2), 0);
    gen_path(path, sizeof path, 2);
    CU_ASSERT_FATAL(rename(from, path) == 0);
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errBadLogSignature);
    CU_ASSERT(detail_has("edb00000002.log"));
    /* Without an expected signature the change of stream is still seen. */
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 0, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errBadLogSignature);

    /* Generation 3's file under generation 2's name. */
    use_dir("log_chain");
    CU_ASSERT_FATAL(write_std_log(77, N + 20, NULL) >= 4);
    gen_path(from, sizeof from, 3);
    gen_path(path, sizeof path, 2);
    CU_ASSERT_FATAL(rename(from, path) == 0);
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errInvalidLogSequence);
}

static void test_log_missing_generations(void)
{
    enum { N = 90 };
    JET_ERR err;
    int torn;
    use_dir("log_missing");
    uint32_t last = write_std_log(77, N, NULL);
    CU_ASSERT_FATAL(last >= 5);
    char path[1100];
    gen_path(path, sizeof path, 1);
    CU_ASSERT(unlink(path) == 0);
    read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errMissingLogFile);
    CU_ASSERT(detail_has("edb00000001.log"));
    read_all(LSN_MAKE(last + 1, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errMissingLogFile);
    /* A gap in the middle. */
    CU_ASSERT_EQUAL(log_delete_generation(dir, "edb", 3), JET_errSuccess);
    gen_path(path, sizeof path, 3);
    CU_ASSERT(!os_exists(path));
    read_all(LSN_MAKE(2, LOG_HEADER_SIZE), 77, 0, &err, &torn, NULL);
    CU_ASSERT_EQUAL(err, JET_errMissingLogFile);
    CU_ASSERT(detail_has("edb00000003.log"));
    CU_ASSERT_EQUAL(log_delete_generation(dir, "edb", 3), JET_errFileNotFound);
    /* An empty or absent directory has no generations. */
    uint32_t *gens;
    size_t n;
    use_dir("log_missing");
    CU_ASSERT_EQUAL(log_list(dir, "edb", &gens, &n), JET_errSuccess);
    CU_ASSERT_EQUAL(n, 0);
    free(gens);
    snprintf(path, sizeof path, "%s/nonexistent", dir);
    CU_ASSERT_EQUAL(log_list(path, "edb", &gens, &n), JET_errSuccess);
    CU_ASSERT_EQUAL(n, 0);
    free(gens);
    struct log_reader *rd;
    CU_ASSERT_EQUAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 0, 0, &rd), JET_errMissingLogFile);
}

static void test_log_list_ignores_other_names(void)
{
    use_dir("log_list");
    static const char *names[] = {"edb00000003.log", "edb0000000A.log", "edb00000001.log", "edbtmp.log",
                                  "edb0000000a.log", "abc00000002.log", "edb00000002.lo", "edb000000002.log",
                                  "edb00000000.log", "xedb00000004.log"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        int fd = open(p, O_CREAT | O_WRONLY, 0600);
        CU_ASSERT(fd >= 0);
        if (fd >= 0) close(fd);
    }
    uint32_t *gens;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(log_list(dir, "edb", &gens, &n), JET_errSuccess);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT(gens[0] == 1 && gens[1] == 3 && gens[2] == 10);
    free(gens);
    char buf[64];
    CU_ASSERT_EQUAL(log_file_name(buf, sizeof buf, "/d", "edb", 0xABCDEF12u), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(buf, "/d/edbABCDEF12.log");
    CU_ASSERT_EQUAL(log_file_name(buf, 8, "/d", "edb", 1), JET_errInvalidPath);
}

static void test_log_open_refuses_an_existing_generation_and_chains_to_the_previous(void)
{
    use_dir("log_reopen");
    struct log_config cfg = cfg_for(0x31, SMALL_FILE);
    struct jet_log *log, *log2;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end;
    CU_ASSERT_EQUAL(append1(log, 1, "one", 3, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    char path[1100];
    uint64_t before, after;
    gen_path(path, sizeof path, 1);
    CU_ASSERT_EQUAL(log_hash_file(path, &before), JET_errSuccess);
    CU_ASSERT_EQUAL(log_open(&cfg, 1, &log2), JET_errFileAccessDenied);
    CU_ASSERT(detail_has("edb00000001.log"));
    CU_ASSERT_EQUAL(log_hash_file(path, &after), JET_errSuccess);
    CU_ASSERT_EQUAL(before, after);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    CU_ASSERT_EQUAL(log_open(&cfg, 1, &log2), JET_errFileAccessDenied);

    /* A new writer after generation 1 chains to it (as after recovery). */
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 2, &log), JET_errSuccess);
    CU_ASSERT_EQUAL(log_end_lsn(log), LSN_MAKE(2, LOG_HEADER_SIZE));
    CU_ASSERT_EQUAL(append1(log, 2, "two", 3, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    JET_ERR err;
    int torn;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 0x31, 0, &err, &torn, NULL), 2);
    CU_ASSERT_EQUAL(err, 1);
    struct log_header h;
    gen_path(path, sizeof path, 2);
    CU_ASSERT_EQUAL(log_read_header(path, &h), JET_errSuccess);
    CU_ASSERT_EQUAL(h.prev_hash, after);

    /* With no predecessor the chain starts afresh. */
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 9, &log), JET_errSuccess);
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    gen_path(path, sizeof path, 9);
    CU_ASSERT_EQUAL(log_read_header(path, &h), JET_errSuccess);
    CU_ASSERT(h.generation == 9 && h.prev_hash == 0 && h.prev_create_us == 0);
    /* No temporary file is left behind. */
    snprintf(path, sizeof path, "%s/edbtmp.log", dir);
    CU_ASSERT(!os_exists(path));

    /* Bad configurations. */
    struct log_config bad = cfg;
    bad.file_size = SMALL_FILE + 100;
    CU_ASSERT_EQUAL(log_open(&bad, 20, &log2), JET_errInvalidParameter);
    bad = cfg;
    bad.file_size = 32 * KB;
    CU_ASSERT_EQUAL(log_open(&bad, 20, &log2), JET_errInvalidParameter);
    bad = cfg;
    bad.signature = 0;
    CU_ASSERT_EQUAL(log_open(&bad, 20, &log2), JET_errInvalidParameter);
    bad = cfg;
    bad.base = "edbx";
    CU_ASSERT_EQUAL(log_open(&bad, 20, &log2), JET_errInvalidParameter);
    CU_ASSERT_EQUAL(log_open(&cfg, 0, &log2), JET_errInvalidParameter);
    /* A corrupt predecessor is not chained to. */
    gen_path(path, sizeof path, 9);
    write_at(path, 200, "x", 1);
    CU_ASSERT_EQUAL(log_open(&cfg, 10, &log2), JET_errLogFileCorrupt);
    CU_ASSERT_EQUAL(log_read_header(path, &h), JET_errLogFileCorrupt);
}

/* ---- the test VFS (testvfs): counts calls, fails the Nth pwrite or fsync ---- */

/* I/O attempted after the injected failure: a dead log must make none. */
static atomic_int v_io_after_failure;
/* Simulated device latency added to each fsync: on a RAM-backed scratch
 * directory fsync is nearly free and group commit would have nothing to
 * share, so the test would measure the CPU scheduler instead. */
static atomic_int v_fsync_delay_us;

static JET_ERR log_observer(void *arg, const struct testvfs_call *c)
{
    (void)arg;
    if (c->after) return JET_errSuccess;
    if ((c->kind == TV_PWRITE || c->kind == TV_FSYNC || c->kind == TV_SYNC_DIR) && testvfs_injected() > 0)
        atomic_fetch_add(&v_io_after_failure, 1);
    int delay = atomic_load(&v_fsync_delay_us);
    if (c->kind == TV_FSYNC && delay) usleep((useconds_t)delay);
    return JET_errSuccess;
}

/* Installs the test VFS with fresh counters; the fail_pwrite_at-th pwrite
 * or the fail_fsync_at-th fsync from now fails with EIO (0 = never). */
static void vfs_install(int fail_pwrite_at, int fail_fsync_at)
{
    atomic_store(&v_io_after_failure, 0);
    atomic_store(&v_fsync_delay_us, 0);
    testvfs_install(log_observer, NULL);
    if (fail_pwrite_at) testvfs_fail(TV_PWRITE, fail_pwrite_at, NULL, JET_errDiskIO);
    if (fail_fsync_at) testvfs_fail(TV_FSYNC, fail_fsync_at, NULL, JET_errDiskIO);
}

static void vfs_remove(void) { testvfs_uninstall(); }

/* ---- group commit ---- */

#define GC_THREADS 8
#define GC_PER_THREAD 500

static struct jet_log *glog;
static atomic_int gc_errors, gc_flushes;

static void *committer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    uint8_t buf[100];
    memset(buf, 0, sizeof buf);
    for (uint32_t i = 0; i < GC_PER_THREAD; i++) {
        lsn_t end;
        put_le32(buf, id);
        put_le32(buf + 4, i);
        if (append1(glog, 2, buf, sizeof buf, NULL, &end) < 0) {
            atomic_fetch_add(&gc_errors, 1);
            continue;
        }
        JET_ERR err = log_flush(glog, end);
        atomic_fetch_add(&gc_flushes, 1);
        if (err < 0 || log_durable_lsn(glog) < end) atomic_fetch_add(&gc_errors, 1);
    }
    return NULL;
}

static void test_log_group_commit_shares_fsyncs(void)
{
    use_dir("log_group");
    struct log_config cfg = cfg_for(5, 4096 * KB);
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &glog), JET_errSuccess);
    vfs_install(0, 0);
    atomic_store(&v_fsync_delay_us, 300);
    atomic_store(&gc_errors, 0);
    atomic_store(&gc_flushes, 0);
    uint64_t t0 = os_mono_us();
    pthread_t th[GC_THREADS];
    for (uintptr_t i = 0; i < GC_THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, committer, (void *)i), 0);
    for (int i = 0; i < GC_THREADS; i++) pthread_join(th[i], NULL);
    uint64_t us = os_mono_us() - t0;
    int fs = (int)testvfs_count(TV_FSYNC), fl = atomic_load(&gc_flushes);
    fprintf(stderr, "\ngroup commit: %d durable flushes from %d threads took %d fsyncs (%.2f flushes/fsync), "
                    "%.0f commits/s\n",
            fl, GC_THREADS, fs, fs ? (double)fl / fs : 0.0, us ? fl * 1e6 / (double)us : 0.0);
    CU_ASSERT_EQUAL(atomic_load(&gc_errors), 0);
    CU_ASSERT_EQUAL(fl, GC_THREADS * GC_PER_THREAD);
    CU_ASSERT(fs > 0);
    CU_ASSERT(fs <= fl / 2);
    /* A flush of what is already durable costs no fsync. */
    lsn_t d = log_durable_lsn(glog);
    CU_ASSERT_EQUAL(log_flush(glog, d), JET_errSuccess);
    CU_ASSERT_EQUAL(log_flush_all(glog), JET_errSuccess);
    CU_ASSERT_EQUAL((int)testvfs_count(TV_FSYNC), fs);
    vfs_remove();
    CU_ASSERT_EQUAL(log_close(glog), JET_errSuccess);

    /* Every record is there, each thread's in its order. */
    struct log_reader *rd;
    struct log_record rec;
    uint32_t next[GC_THREADS] = {0};
    int n = 0, bad = 0;
    CU_ASSERT_EQUAL_FATAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 5, 0, &rd), 0);
    while (log_reader_next(rd, &rec) == 0) {
        uint32_t id = get_le32(rec.payload), i = get_le32(rec.payload + 4);
        if (rec.len != 100 || id >= GC_THREADS || i != next[id]) bad++;
        else next[id]++;
        n++;
    }
    log_reader_close(rd);
    CU_ASSERT_EQUAL(n, GC_THREADS * GC_PER_THREAD);
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- concurrent batches across rolls ---- */

#define CB_THREADS 4
#define CB_BATCHES 300
static atomic_int cb_errors;
static atomic_int cb_stop;

static void *batcher(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    uint64_t st = 0x1234567ull * (id + 1);
    static _Thread_local uint8_t bufs[5][1500];
    for (uint32_t b = 0; b < CB_BATCHES; b++) {
        int nr = 1 + (int)(tu_rand(&st) % 5);
        struct log_rec recs[5];
        struct iovec iov[5];
        for (int k = 0; k < nr; k++) {
            size_t len = 16 + tu_rand(&st) % (sizeof bufs[k] - 16);
            put_le32(bufs[k], id);
            put_le32(bufs[k] + 4, b);
            put_le32(bufs[k] + 8, (uint32_t)k);
            put_le32(bufs[k] + 12, (uint32_t)nr);
            iov[k] = (struct iovec){bufs[k], len};
            recs[k] = (struct log_rec){(uint8_t)k, &iov[k], 1, NULL};
        }
        lsn_t first, end;
        if (log_append(glog, recs, nr, &first, &end) < 0) atomic_fetch_add(&cb_errors, 1);
        else if (b % 3 == 0 && log_flush(glog, end) < 0) atomic_fetch_add(&cb_errors, 1);
    }
    return NULL;
}

static void *roller(void *arg)
{
    (void)arg;
    while (!atomic_load(&cb_stop)) {
        if (log_roll(glog, NULL) < 0 || log_flush_all(glog) < 0) atomic_fetch_add(&cb_errors, 1);
        usleep(2000);
    }
    return NULL;
}

static void test_log_concurrent_batches_stay_contiguous_across_rolls(void)
{
    use_dir("log_batches");
    struct log_config cfg = cfg_for(6, SMALL_FILE);
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &glog), JET_errSuccess);
    atomic_store(&cb_errors, 0);
    atomic_store(&cb_stop, 0);
    pthread_t th[CB_THREADS], rt;
    for (uintptr_t i = 0; i < CB_THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, batcher, (void *)i), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&rt, NULL, roller, NULL), 0);
    for (int i = 0; i < CB_THREADS; i++) pthread_join(th[i], NULL);
    atomic_store(&cb_stop, 1);
    pthread_join(rt, NULL);
    CU_ASSERT_EQUAL(atomic_load(&cb_errors), 0);
    uint32_t last = log_current_generation(glog);
    CU_ASSERT_EQUAL(log_close(glog), JET_errSuccess);
    pthread_mutex_lock(&closes_mu);
    CU_ASSERT_EQUAL(nclosed, (int)last - 1);
    for (int k = 0; k < nclosed && k < MAX_CLOSES; k++) CU_ASSERT_EQUAL(closes[k].gen, (uint32_t)k + 1);
    pthread_mutex_unlock(&closes_mu);

    struct log_reader *rd;
    struct log_record rec;
    uint32_t next_batch[CB_THREADS] = {0};
    uint32_t cur_id = 0, cur_batch = 0, cur_k = 0, cur_n = 0;
    int in_batch = 0, bad = 0, batches = 0;
    CU_ASSERT_EQUAL_FATAL(log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), 6, 0, &rd), 0);
    JET_ERR err;
    while ((err = log_reader_next(rd, &rec)) == 0) {
        uint32_t id = get_le32(rec.payload), b = get_le32(rec.payload + 4), k = get_le32(rec.payload + 8),
                 n = get_le32(rec.payload + 12);
        if (in_batch) {
            /* The next record must continue the open batch. */
            if (id != cur_id || b != cur_batch || k != cur_k + 1 || n != cur_n) bad++;
        } else {
            if (id >= CB_THREADS || k != 0 || b != next_batch[id]) bad++;
            else next_batch[id]++;
            cur_id = id;
            cur_batch = b;
            cur_n = n;
            batches++;
        }
        cur_k = k;
        in_batch = k + 1 < n;
        if (rec.type != k) bad++;
    }
    log_reader_close(rd);
    CU_ASSERT_EQUAL(err, 1);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(batches, CB_THREADS * CB_BATCHES);
    CU_ASSERT(!in_batch);
}

/* ---- injected failures ---- */

/* After a failure: everything is JET_errLogWriteFail and no I/O happens. */
static void check_dead(struct jet_log *log)
{
    lsn_t end;
    CU_ASSERT_EQUAL(append1(log, 1, "x", 1, NULL, &end), JET_errLogWriteFail);
    CU_ASSERT_EQUAL(log_flush(log, LSN_MAKE(1, LOG_HEADER_SIZE)), JET_errLogWriteFail);
    CU_ASSERT_EQUAL(log_flush_all(log), JET_errLogWriteFail);
    CU_ASSERT_EQUAL(log_roll(log, NULL), JET_errLogWriteFail);
    CU_ASSERT_EQUAL(log_close(log), JET_errLogWriteFail);
    CU_ASSERT_EQUAL(atomic_load(&v_io_after_failure), 0);
}

static void test_log_failed_write_is_sticky(void)
{
    use_dir("log_fail_write");
    struct log_config cfg = cfg_for(7, SMALL_FILE);
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end, d0 = log_durable_lsn(log);
    vfs_install(1, 0);
    CU_ASSERT_EQUAL(append1(log, 1, "abc", 3, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errLogWriteFail);
    CU_ASSERT(detail_has("edb00000001.log") && detail_has("write"));
    CU_ASSERT_EQUAL((int)testvfs_count(TV_FSYNC), 0); /* no fsync after the failed write */
    CU_ASSERT_EQUAL(log_durable_lsn(log), d0);
    check_dead(log);
    vfs_remove();
}

static void test_log_failed_fsync_is_sticky_and_never_retried(void)
{
    use_dir("log_fail_fsync");
    struct log_config cfg = cfg_for(8, SMALL_FILE);
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end;
    vfs_install(0, 2);
    CU_ASSERT_EQUAL(append1(log, 1, "abc", 3, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errSuccess);
    lsn_t d1 = log_durable_lsn(log);
    CU_ASSERT_EQUAL(append1(log, 1, "def", 3, NULL, &end), JET_errSuccess);
    CU_ASSERT_EQUAL(log_flush(log, end), JET_errLogWriteFail);
    CU_ASSERT(detail_has("fsync"));
    CU_ASSERT_EQUAL(log_durable_lsn(log), d1);
    check_dead(log);
    CU_ASSERT_EQUAL((int)testvfs_count(TV_FSYNC), 2);
    vfs_remove();
}

/* Every waiting committer learns of the failure; none fsyncs again. */
static void test_log_failed_fsync_fails_every_waiting_committer(void)
{
    use_dir("log_fail_group");
    struct log_config cfg = cfg_for(9, 4096 * KB);
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &glog), JET_errSuccess);
    vfs_install(0, 20);
    atomic_store(&gc_errors, 0);
    atomic_store(&gc_flushes, 0);
    pthread_t th[GC_THREADS];
    for (uintptr_t i = 0; i < GC_THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, committer, (void *)i), 0);
    for (int i = 0; i < GC_THREADS; i++) pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL((int)testvfs_count(TV_FSYNC), 20);
    CU_ASSERT(testvfs_injected() > 0);
    /* Each thread fails from then on: at least all of its remaining commits. */
    CU_ASSERT(atomic_load(&gc_errors) >= GC_THREADS * GC_PER_THREAD - 20 * GC_THREADS);
    check_dead(glog);
    vfs_remove();
}

/* A failure while rolling (here: the new generation's fsync) is a dead log. */
static void test_log_failure_while_rolling_kills_the_log(void)
{
    use_dir("log_fail_roll");
    struct log_config cfg = cfg_for(10, SMALL_FILE);
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end;
    CU_ASSERT_EQUAL(append1(log, 1, "abc", 3, NULL, &end), JET_errSuccess);
    /* fsync 1 closes generation 1, fsync 2 is generation 2's header. */
    vfs_install(0, 2);
    nclosed = 0;
    CU_ASSERT_EQUAL(log_roll(log, NULL), JET_errLogWriteFail);
    CU_ASSERT(detail_has("generation 2") || detail_has("edb00000002.log"));
    CU_ASSERT_EQUAL(nclosed, 0);
    check_dead(log);
    vfs_remove();
    /* Generation 1 is whole and readable; no generation 2 under its name. */
    JET_ERR err;
    int torn;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 10, 0, &err, &torn, NULL), 1);
    CU_ASSERT(err == 1 && !torn);
    char path[1100];
    gen_path(path, sizeof path, 2);
    CU_ASSERT(!os_exists(path));
}

/* The buffer filling up writes it out from log_append; a failure there too. */
static void test_log_failed_buffer_write_in_append(void)
{
    use_dir("log_fail_append");
    struct log_config cfg = cfg_for(11, 2048 * KB);
    struct jet_log *log;
    uint8_t buf[1000] = {0};
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    vfs_install(1, 0);
    JET_ERR err = JET_errSuccess;
    int i;
    for (i = 0; i < 2000 && err == JET_errSuccess; i++) err = append1(log, 1, buf, sizeof buf, NULL, NULL);
    CU_ASSERT_EQUAL(err, JET_errLogWriteFail);
    /* When the 1 MiB buffer fills, long before the 2 MiB generation does. */
    CU_ASSERT(i > 1000 && i < 1100);
    CU_ASSERT_EQUAL((int)testvfs_count(TV_FSYNC), 0);
    check_dead(log);
    vfs_remove();
}

/* ---- prepare_ahead: the next generation's body built in the background ---- */

static pthread_t prep_test_thread;
static atomic_int prep_open_refused;

/* Refuses the temporary name to every thread but the test's own: the
 * preparer fails, the roll (on the test's thread) must build the body. */
static JET_ERR no_prep_observer(void *arg, const struct testvfs_call *c)
{
    (void)arg;
    if (!c->after && c->kind == TV_OPEN && testvfs_ends_with(c->path, "tmp.log") &&
        !pthread_equal(pthread_self(), prep_test_thread)) {
        atomic_fetch_add(&prep_open_refused, 1);
        return JET_errDiskFull;
    }
    return JET_errSuccess;
}

/* Waits (up to 5 s) for the preparer to leave a built body behind. */
static bool tmp_body_ready(void)
{
    char path[1100];
    struct stat st;
    snprintf(path, sizeof path, "%s/edbtmp.log", dir);
    for (int i = 0; i < 500; i++) {
        if (stat(path, &st) == 0 && st.st_size == SMALL_FILE) return true;
        usleep(10000);
    }
    return false;
}

static void test_log_prepared_generations_chain_and_leave_no_temporary(void)
{
    use_dir("log_prep");
    struct log_config cfg = cfg_for(0x77, SMALL_FILE);
    cfg.prepare_ahead = true;
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    /* The body of generation 2 is built before anyone asks for it. */
    CU_ASSERT(tmp_body_ready());
    lsn_t end = 0;
    for (int g = 0; g < 6; g++) {
        char v[40];
        snprintf(v, sizeof v, "record in generation %d", g + 1);
        CU_ASSERT_EQUAL(append1(log, 1, v, strlen(v), NULL, &end), JET_errSuccess);
        /* Rolling at once after some, before the preparer is done, at others. */
        if (g % 2) CU_ASSERT(tmp_body_ready());
        CU_ASSERT_EQUAL(log_roll(log, NULL), JET_errSuccess);
    }
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    CU_ASSERT_EQUAL(nclosed, 6);
    /* Every generation is whole and chained to its predecessor. */
    JET_ERR err;
    int torn;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 0x77, 0, &err, &torn, NULL), 6);
    CU_ASSERT(err == 1 && !torn);
    char path[1100];
    snprintf(path, sizeof path, "%s/edbtmp.log", dir);
    CU_ASSERT(!os_exists(path));
}

static void test_log_failed_preparer_leaves_the_roll_to_build(void)
{
    use_dir("log_prep_fail");
    prep_test_thread = pthread_self();
    atomic_store(&prep_open_refused, 0);
    testvfs_install(no_prep_observer, NULL);
    struct log_config cfg = cfg_for(0x78, SMALL_FILE);
    cfg.prepare_ahead = true;
    struct jet_log *log;
    CU_ASSERT_EQUAL_FATAL(log_open(&cfg, 1, &log), JET_errSuccess);
    lsn_t end;
    for (int g = 0; g < 3; g++) {
        CU_ASSERT_EQUAL(append1(log, 1, "x", 1, NULL, &end), JET_errSuccess);
        usleep(20000);
        CU_ASSERT_EQUAL(log_roll(log, NULL), JET_errSuccess);
    }
    CU_ASSERT_EQUAL(log_close(log), JET_errSuccess);
    testvfs_uninstall();
    /* The preparer tried, and gave up until the next roll each time. */
    CU_ASSERT(atomic_load(&prep_open_refused) >= 1 && atomic_load(&prep_open_refused) <= 4);
    JET_ERR err;
    int torn;
    CU_ASSERT_EQUAL(read_all(LSN_MAKE(1, LOG_HEADER_SIZE), 0x78, 0, &err, &torn, NULL), 3);
    CU_ASSERT(err == 1 && !torn);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("log", NULL, NULL);
    if (!su) return 2;
#define ADD(t) CU_add_test(su, #t, t)
    ADD(test_log_append_flush_reopen_read_back_byte_exact);
    ADD(test_log_record_size_limits);
    ADD(test_log_record_larger_than_the_append_buffer);
    ADD(test_log_rolls_when_a_generation_fills);
    ADD(test_log_roll_explicit_and_empty_generation);
    ADD(test_log_reader_starts_mid_generation_and_respects_last_gen);
    ADD(test_log_torn_tail_ends_the_read_cleanly);
    ADD(test_log_a_cut_last_generation_is_damage);
    ADD(test_log_damage_the_log_proves_durable_is_refused);
    ADD(test_log_a_torn_final_flush_is_still_a_torn_tail);
    ADD(test_log_a_live_generation_removed_fails_the_next_flush);
    ADD(test_log_damage_in_an_earlier_generation_is_corruption);
    ADD(test_log_torn_tail_vouched_for_by_the_next_generation);
    ADD(test_log_reader_checks_the_hash_chain);
    ADD(test_log_missing_generations);
    ADD(test_log_list_ignores_other_names);
    ADD(test_log_open_refuses_an_existing_generation_and_chains_to_the_previous);
    ADD(test_log_group_commit_shares_fsyncs);
    ADD(test_log_concurrent_batches_stay_contiguous_across_rolls);
    ADD(test_log_failed_write_is_sticky);
    ADD(test_log_failed_fsync_is_sticky_and_never_retried);
    ADD(test_log_failed_fsync_fails_every_waiting_committer);
    ADD(test_log_failure_while_rolling_kills_the_log);
    ADD(test_log_failed_buffer_write_in_append);
    ADD(test_log_prepared_generations_chain_and_leave_no_temporary);
    ADD(test_log_failed_preparer_leaves_the_roll_to_build);
#undef ADD
    return tu_run();
}
