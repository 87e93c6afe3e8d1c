/*
 * log.c -- the write-ahead log: generation files, record framing, group
 * commit and rolling.  The verifying reader is log_reader.c; the rules it
 * follows are below (READING, PROVING THE TORN TAIL), with the format.
 *
 * log.h is the contract (format, naming, error codes); this comment is the
 * design.  A newcomer should be able to read it instead of the code.
 *
 * FILES
 *
 * Generation g is the file <dir>/<base><g as %08X>.log, exactly file_size
 * bytes.  A position is lsn = (g << 32) | offset.
 *
 *   offset       size  contents
 *   0            4096  header (log.h: checksum, magic, version, generation,
 *                      file_size, signature, create_us, prev_create_us,
 *                      prev_hash, page_size, base)
 *   4096         24+n  record: len u32, type u8, durable u24 (see below),
 *                      lsn u64 (its own position), checksum u64 =
 *                      XXH3_64bits_withSeed(bytes [0,16) || payload,
 *                      signature), payload padded with zeroes to 8 bytes
 *   ...                more records, back to back
 *   end of records     zeroes up to file_size
 *
 * RECORDS (format version 2; payloads little-endian, defined in logrec.h)
 *
 * The log frames records without looking inside; the engine writes four
 * types.  A transaction is its LR_DELTA records followed by its LR_COMMIT,
 * contiguous (one append).
 *
 *   type 5 LR_DELTA   one changed page
 *     0   u32  dbidx       database index (an LR_ATTACH names it)
 *     4   u32  pgno        page number
 *     8   u64  before      the page's stamp the delta was made against
 *                          (page header bytes [16, 24)); 0: the page
 *                          starts from zeroes (new or freed)
 *     16  u16  nranges     then nranges byte ranges (delta.h):
 *     18  u16  0
 *     20  nranges x { u16 off, u16 len, len bytes }  in increasing off,
 *                          inside [8, page_size), clear of [16, 24)
 *     The page's stamp after the change is the record's own lsn (framing
 *     bytes [8, 16)), which redo writes into the page: so every record
 *     carries the stamp before (payload) and after (framing), and redo
 *     applies it only to the exact version it was computed against
 *     (logrec.h: skip, apply, JET_errDbTimeTooOld, JET_errDbTimeTooNew).
 *   type 2 LR_COMMIT  u64 commit time (us since the epoch), u64 txn id
 *   type 3 LR_ATTACH  u32 dbidx, u32 page_size, u64 db_signature, path
 *   type 4 LR_DETACH  u32 dbidx
 *   type 7 LR_CREATE  u32 dbidx, u32 page_size, u64 db_signature, u64 create_us, path
 *
 * Version 1 logged a page's whole image (type 1); its files are refused by
 * the header's version field (JET_errBadLogVersion), never read.  A
 * single-key update of a 200-byte value costs one LR_DELTA of about 270
 * bytes and one LR_COMMIT: 24 + 272 + 24 + 16 bytes framed.
 *
 * A new generation is built under the temporary name <base>tmp.log in two
 * halves: the body (file_size bytes of zeroes, fdatasync), then the header
 * (written over the first block, fdatasync, rename to the final name, fsync
 * of the directory).  With prepare_ahead a background thread builds the
 * body of generation g+1 while g fills, so a roll only does the header
 * half: the cost of writing file_size bytes, which grows with however much
 * dirty memory the kernel is writing back, stays out of commits that roll
 * and out of JetBeginExternalBackup.  Writing the zeroes (rather than
 * a sparse ftruncate) allocates every block up front, so the fdatasync of
 * a commit later only writes data: on a sparse file the first write into
 * each block is a block allocation, a metadata change that drags a journal
 * commit into the commit's fdatasync.  It also means a crash never leaves a
 * half-built generation under a real name, and the final name is checked
 * not to exist first, so no generation is ever overwritten.
 *
 * WRITING
 *
 * log_append() copies records into the in-memory append buffer (buf),
 * which holds the bytes [buf_off, buf_off + buf_len) of the current
 * generation that no one has written yet.  When it fills, the appender
 * writes it out itself (no fsync) and carries on.  A record that does not
 * fit in the rest of the generation rolls the log first; records never
 * span generations.
 *
 * log_flush(lsn) is group commit.  If durable_lsn >= lsn there is nothing
 * to do.  If another thread is flushing, wait for it and look again: its
 * fsync may have covered us.  Otherwise become the flusher: take the
 * pending bytes by swapping buf with the spare buffer, note end_lsn as the
 * target, drop the mutex, pwrite and fdatasync, retake the mutex, advance
 * durable_lsn to the target and wake everyone.  Appenders keep filling the
 * other buffer meanwhile; whoever is waiting when the fsync lands is carried
 * by the next one.  Bytes below the taken buffer were written earlier by a
 * buffer-full appender (under the mutex, so before the take), and one
 * fdatasync covers them too.
 *
 * Rolling (log_roll, or a record that does not fit) closes generation g:
 * wait until no flusher is doing I/O, claim the I/O (io_busy) so none
 * starts, drop the mutex, write what is buffered, fdatasync, finish g's
 * whole-file hash, create generation g+1 chained to it (prev_hash,
 * prev_create_us), then retake the mutex and switch to g+1.  The hash is
 * kept running as bytes enter the append buffer (they reach the file in
 * the same order, each exactly once), so finishing it only adds the zeroes
 * after the last record: a roll never reads the file back.  Debug builds
 * still read it back and assert the two agree.  on_close runs afterwards without the mutex.
 *
 * Durability assumes, as SQLite does by default (powersafe overwrite), that
 * writing bytes [a, b) cannot damage bytes outside [a, b) that share a
 * sector with them: each flush starts where the last one ended, mid-sector.
 *
 * READING
 *
 * The reader walks records through a window of the file (a record larger
 * than the window grows it), checking for each record that its length fits,
 * its lsn is its own position and its checksum matches.  The first position
 * that is not such a record ends the generation:
 *   - if everything from there to file_size is zero, it is the clean end;
 *   - in the last generation (or last_gen) anything else is the torn tail of
 *     a crash: the read ends and log_reader_tail_torn() says so;
 *   - in an earlier generation it is JET_errLogFileCorrupt naming the file
 *     and offset, with one exception: if generation g+1's header chains to
 *     the file exactly as it is now (prev_hash equals its whole-file hash),
 *     the writer that created g+1 saw these same bytes, so they are the
 *     torn tail of a crash that recovery already ended the log at, not later
 *     damage; the reader moves on to g+1.  Without this a second crash, or a
 *     restore of a backed-up log set, would find every historical torn tail
 *     "corrupt".  Damage after the fact changes the hash and is still caught.
 * PROVING THE TORN TAIL.  A torn tail can only lie after the last
 * completed fdatasync: everything before it was acknowledged.  So every
 * record carries, in header bytes [5, 8), the offset that was durable in
 * its generation when it was appended (durable_lsn, in 64-byte units,
 * rounded down).  A record that verifies was written by the writer, and
 * what it says was durable had been fdatasynced before it was appended.
 * A bad record at X in the last generation is therefore damage, not a
 * tear, when any valid record later in the file says an offset above X was
 * durable: the reader answers JET_errLogFileCorrupt naming the file, the
 * offset, the record that proves it and the last good position, and
 * recovery refuses.  Without such a record X may be the tail of the last
 * flush, which nobody was told had landed: the read ends there (a torn
 * tail).  What a crash can lose is thus at most the final, unacknowledged
 * flush (invariant 7).  Files written before the field was kept hold 0
 * there: they prove nothing, and read as they always did.
 *
 * A file that is not file_size bytes, the last one too, is
 * JET_errLogFileCorrupt: every generation is built whole before it has its
 * name, so only a hand (or a failing disk) makes one short.
 * Moving from g to g+1 checks g+1's header against g: same signature
 * (JET_errBadLogSignature), generation g+1, prev_create_us and prev_hash
 * equal to g's create time and whole-file hash (JET_errInvalidLogSequence).
 * The hash is accumulated as the window slides; whatever the window skipped
 * (a start in the middle of a file) is read when it is needed.
 *
 * INVARIANTS (numbers as in log.h)
 *
 *  1. A generation file that exists under its final name has a valid header
 *     and is file_size bytes: it was built whole under the temporary name.
 *  2. durable_lsn only grows, and every byte below it is on disk; it is
 *     always <= end_lsn.  After a roll it is LSN_MAKE(new gen, 4096).
 *  3. The old generation is written and fdatasynced before it is hashed,
 *     and hashed before the new header (which carries the hash) exists.
 *  4. Once dead is set no call does I/O on a generation again (no write,
 *     no fsync, no roll), and every call returns JET_errLogWriteFail.  (A
 *     body the preparer is building when the log dies is finished; it is a
 *     temporary file no generation depends on.)
 *  5. buf_off + buf_len == LSN_OFF(end_lsn).  A flusher's bytes are the
 *     range just below buf_off that it took; all bytes below that range
 *     were written before it took them.
 *  6. Each byte of a generation file is written at most once after the
 *     file is created.
 *  7. A record's durable field never exceeds durable_lsn when it was
 *     appended, so a valid record proves every offset below its field was
 *     fdatasynced: a bad record there is damage, never a torn tail.
 *
 * LOCKING
 *
 * One mutex (mu) protects everything below the immutable configuration.
 * Three tokens, all flags under mu, let a thread drop mu while it works:
 *   io_busy      held by the one thread doing log I/O outside mu (a flusher,
 *                or a roller).  It owns the taken buffer and keeps fd open;
 *                io_cv is broadcast when it is released.
 *   prep_busy    held by the thread that owns the temporary file name: the
 *                preparer while it builds a body, or a roller from taking
 *                prep_fd to publishing it.  prep_cv is broadcast when it
 *                is released.
 *   append_busy  held by the thread that owns the append position: an
 *                appender for the whole of its batch (so the batch stays
 *                contiguous even if a roll in the middle of it waits), or
 *                log_roll.  append_cv is broadcast when it is released.
 * Appenders never wait for an fsync except when they must roll.
 * durable_lsn and dead are atomics written under mu so that the fast path
 * of log_flush and log_durable_lsn need not take it.  The lock order is
 * engine/README.md's table (mu is taken last); on_close is called with
 * no lock of the log held, but while the append token may be held, so it
 * must not append or roll.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "lockrank.h"
#include "log.h"
#include "logfmt.h"
#include "os.h"
#include "page.h"

/* Size of each of the writer's two buffers (at most the record area). */
#define LOG_BUF_CAP (1u << 20)
/* Source of the zeroes that fill new generations and pad records. */
#define LOG_ZERO_BLOCK (256u << 10)

/* Never written: in .bss, so it costs no file space and no private memory. */
static uint8_t zero_block[LOG_ZERO_BLOCK];

struct jet_log {
    /* Immutable after log_open: read without mu. */
    char dir[LOG_PATH_MAX];
    char base[4];
    uint32_t file_size;
    uint32_t page_size;
    uint64_t signature;
    void (*on_close)(void *arg, uint32_t generation, uint64_t hash, uint64_t close_us);
    void *on_close_arg;
    size_t buf_cap;

    pthread_mutex_t mu;
    pthread_cond_t io_cv;     /* io_busy released */
    pthread_cond_t append_cv; /* append_busy released */

    /* Protected by mu. */
    int fd;                   /* current generation, open read/write */
    uint32_t gen;             /* current generation */
    uint64_t create_us;       /* its header's create_us */
    uint8_t *buf;             /* append buffer */
    size_t buf_len;
    uint32_t buf_off;         /* file offset of buf[0] */
    uint8_t *spare;           /* the other buffer; NULL while a flusher has it */
    XXH3_state_t *hst;        /* hash of the current generation's bytes so far
                               * (header, then each byte as buf_put takes it);
                               * owned by the append token holder */
    lsn_t end_lsn;            /* next append position */
    bool io_busy;
    bool append_busy;
    unsigned append_waiters;

    /* The next generation's body, built ahead (PREPARING); under mu. */
    int prep_fd;              /* a built temporary file, or -1 */
    bool prep_busy;           /* a thread owns the temporary name */
    bool prep_failed;         /* the preparer failed since the last roll */
    bool prep_stop;
    bool prep_thread_on;
    pthread_cond_t prep_cv;   /* prep_busy released, a roll, or stop */
    pthread_t prep_thread;

    /* Written under mu, read anywhere. */
    _Atomic uint64_t durable_lsn;
    atomic_bool dead;

    /* The watch on the live generation (watch_live); used by the holder
     * of the I/O token.  -1 without inotify: then check_live runs on a
     * timer instead of on notice. */
    int notify_fd, notify_wd;
    uint64_t last_check_us;
};

/* ------------------------------------------------------------------ */
/* Helpers shared by the writer and the reader                          */
/* ------------------------------------------------------------------ */

static void header_encode(const struct log_header *h, uint8_t *b)
{
    memset(b, 0, LOG_HEADER_SIZE);
    put_le32(b + 8, LOG_MAGIC);
    put_le32(b + 12, LOG_VERSION);
    put_le32(b + 16, h->generation);
    put_le32(b + 20, h->file_size);
    put_le64(b + 24, h->signature);
    put_le64(b + 32, h->create_us);
    put_le64(b + 40, h->prev_create_us);
    put_le64(b + 48, h->prev_hash);
    put_le32(b + 56, h->page_size);
    memcpy(b + 60, h->base, 3);
    put_le64(b, XXH3_64bits(b + 8, LOG_HEADER_SIZE - 8));
}

JET_ERR log_header_decode(const uint8_t *b, const char *path, struct log_header *h)
{
    uint32_t magic = get_le32(b + 8);
    if (magic != LOG_MAGIC)
        return jet_report(JET_errLogFileCorrupt, "%s: not a log file: magic %08x, expected %08x", path, magic,
                          LOG_MAGIC);
    uint64_t stored = get_le64(b), computed = XXH3_64bits(b + 8, LOG_HEADER_SIZE - 8);
    if (stored != computed)
        return jet_report(JET_errLogFileCorrupt, "%s: header checksum %016llx, computed %016llx", path,
                          (unsigned long long)stored, (unsigned long long)computed);
    uint32_t version = get_le32(b + 12);
    if (version != LOG_VERSION)
        return jet_report(JET_errBadLogVersion,
                          "%s: log format version %u; this build reads only version %u (%s), so it will not read "
                          "this file",
                          path, version, LOG_VERSION, LOG_VERSION_NAME);
    memset(h, 0, sizeof *h);
    h->generation = get_le32(b + 16);
    h->file_size = get_le32(b + 20);
    h->signature = get_le64(b + 24);
    h->create_us = get_le64(b + 32);
    h->prev_create_us = get_le64(b + 40);
    h->prev_hash = get_le64(b + 48);
    h->page_size = get_le32(b + 56);
    memcpy(h->base, b + 60, 3);
    h->base[3] = '\0';
    /* A valid checksum over impossible values is a writer bug or a forgery;
     * either way the reader's arithmetic must not trust them. */
    if (h->generation == 0)
        return jet_report(JET_errLogFileCorrupt, "%s: header gives generation 0", path);
    if (h->file_size < LOG_FILE_SIZE_MIN || h->file_size > LOG_FILE_SIZE_MAX || h->file_size % 4096u)
        return jet_report(JET_errLogFileCorrupt, "%s: header gives file size %u", path, h->file_size);
    return JET_errSuccess;
}

JET_ERR log_file_name(char *buf, size_t cb, const char *dir, const char *base, uint32_t gen)
{
    char name[64];
    int n = snprintf(name, sizeof name, "%s%08X.log", base, gen);
    if (n < 0 || (size_t)n >= sizeof name) return jet_report(JET_errInvalidPath, "log base name '%s' is too long", base);
    JET_ERR err = os_join(buf, cb, dir, name);
    if (err < 0) return jet_report(err, "%s: log file path too long", dir);
    return JET_errSuccess;
}

size_t log_max_payload(uint32_t file_size)
{
    if (file_size < LOG_HEADER_SIZE + LOG_REC_HDR_SIZE) return 0;
    /* file_size is a multiple of 4096, so this is a multiple of 8 and a
     * payload of this size needs no padding. */
    return file_size - LOG_HEADER_SIZE - LOG_REC_HDR_SIZE;
}

JET_ERR log_read_header(const char *path, struct log_header *hdr)
{
    uint8_t b[LOG_HEADER_SIZE];
    int fd = -1;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) {
        char eb[128];
        return jet_report(err, "%s: cannot open log file: %s", path, os_reason(err, eb, sizeof eb));
    }
    if ((err = os_pread_full(fd, b, sizeof b, 0)) < 0) {
        char eb[128];
        err = jet_report(err, "%s: cannot read the log header: %s", path, os_reason(err, eb, sizeof eb));
        goto out;
    }
    err = log_header_decode(b, path, hdr);
out:
    /* A read-only descriptor: close has nothing to report about the data. */
    (void)os_close(fd);
    return err;
}

JET_ERR log_hash_file(const char *path, uint64_t *phash)
{
    XXH3_state_t *st = NULL;
    uint8_t *chunk = NULL;
    char eb[128];
    int fd = -1;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) return jet_report(err, "%s: cannot open log file: %s", path, os_reason(err, eb, sizeof eb));
    st = XXH3_createState();
    chunk = malloc(LOG_READ_CHUNK);
    if (!st || !chunk) {
        err = jet_report(JET_errOutOfMemory, "%s: no memory to hash the log file", path);
        goto out;
    }
    xxh_ok(XXH3_64bits_reset(st));
    for (uint64_t off = 0;;) {
        size_t got = 0;
        if ((err = os_pread(fd, chunk, LOG_READ_CHUNK, off, &got)) < 0) {
            err = jet_report(err, "%s: read at offset %llu failed: %s", path, (unsigned long long)off,
                             os_reason(err, eb, sizeof eb));
            goto out;
        }
        if (got == 0) break;
        xxh_ok(XXH3_64bits_update(st, chunk, got));
        off += got;
    }
    *phash = XXH3_64bits_digest(st);
out:
    free(chunk);
    if (st) xxh_ok(XXH3_freeState(st));
    (void)os_close(fd); /* read-only: nothing to learn from close */
    return err;
}

static int gen_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The generation named by nm for base, or 0 if nm is not one of its files. */
static uint32_t parse_gen_name(const char *nm, const char *base)
{
    size_t blen = strlen(base);
    if (strlen(nm) != blen + 12 || strncmp(nm, base, blen) != 0 || strcmp(nm + blen + 8, ".log") != 0) return 0;
    uint32_t g = 0;
    for (size_t i = 0; i < 8; i++) {
        char c = nm[blen + i];
        uint32_t d;
        /* Only what log_file_name produces: upper-case hex. */
        if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
        else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
        else return 0;
        g = g << 4 | d;
    }
    return g;
}

JET_ERR log_list(const char *dir, const char *base, uint32_t **pgens, size_t *pn)
{
    uint32_t *v = NULL;
    size_t n = 0, cap = 0;
    JET_ERR err = JET_errSuccess;
    struct dirent *e;

    *pgens = NULL;
    *pn = 0;
    DIR *d = opendir(dir);
    if (!d) {
        /* No directory yet is no log yet (a first JetInit). */
        if (errno == ENOENT) return JET_errSuccess;
        char eb[128];
        err = os_errno_to_jet(errno);
        return jet_report(err, "%s: cannot list the log directory: %s", dir, os_reason(err, eb, sizeof eb));
    }
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        uint32_t g = parse_gen_name(e->d_name, base);
        if (g == 0) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            uint32_t *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                err = jet_report(JET_errOutOfMemory, "%s: no memory to list log generations", dir);
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        v[n++] = g;
        errno = 0;
    }
    if (errno != 0) {
        char eb[128];
        err = os_errno_to_jet(errno);
        err = jet_report(err, "%s: cannot list the log directory: %s", dir, os_reason(err, eb, sizeof eb));
        goto out;
    }
    if (n) qsort(v, n, sizeof *v, gen_cmp);
    *pgens = v;
    *pn = n;
    v = NULL;
out:
    free(v);
    if (closedir(d) != 0 && err >= 0) {
        char eb[128];
        err = os_errno_to_jet(errno);
        err = jet_report(err, "%s: closing the directory failed: %s", dir, os_reason(err, eb, sizeof eb));
        free(*pgens);
        *pgens = NULL;
        *pn = 0;
    }
    return err;
}

JET_ERR log_delete_generation(const char *dir, const char *base, uint32_t gen)
{
    char path[LOG_PATH_MAX], eb[128];
    JET_ERR err = log_file_name(path, sizeof path, dir, base, gen);
    if (err < 0) return err;
    if ((err = os_unlink(path)) < 0) return jet_report(err, "%s: cannot delete: %s", path, os_reason(err, eb, sizeof eb));
    if ((err = os_sync_dir(dir)) < 0)
        return jet_report(err, "%s: directory fsync after deleting generation %u failed: %s", dir, gen,
                          os_reason(err, eb, sizeof eb));
    return JET_errSuccess;
}

/* ------------------------------------------------------------------ */
/* Writer                                                               */
/* ------------------------------------------------------------------ */

/*
 * Builds generation gen whole (invariant 1) and returns it open read/write.
 * Context: no lock needed; reads only the immutable configuration.
 */
/* "<dir>/<base>tmp.log": where generations are built before their rename. */
static JET_ERR tmp_name(const struct jet_log *log, char *tmp, size_t cb)
{
    char name[32];
    snprintf(name, sizeof name, "%stmp.log", log->base);
    if (os_join(tmp, cb, log->dir, name) < 0) return jet_report(JET_errInvalidPath, "%s: log file path too long", log->dir);
    return JET_errSuccess;
}

/*
 * The slow half of a new generation: the temporary file, file_size bytes of
 * zeroes, fdatasynced.  It names no generation yet, so it can be built
 * ahead of time (the preparer) while the current generation fills.  `gen`
 * is only for the message.  Callers own the temporary name (prep_busy).
 */
static JET_ERR gen_build_tmp(const struct jet_log *log, uint32_t gen, int *pfd)
{
    char tmp[LOG_PATH_MAX], eb[128];
    const char *step = NULL;
    int fd = -1;
    JET_ERR err;

    if ((err = tmp_name(log, tmp, sizeof tmp)) < 0) return err;
    step = "create";
    if ((err = os_open(tmp, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &fd)) < 0) goto out;
    /* A temporary file left by a crash holds nothing anyone needs. */
    step = "truncate";
    if ((err = os_ftruncate(fd, 0)) < 0) goto out;
    step = "write zeroes";
    for (uint64_t off = 0; off < log->file_size;) {
        size_t n = log->file_size - off < LOG_ZERO_BLOCK ? (size_t)(log->file_size - off) : LOG_ZERO_BLOCK;
        if ((err = os_pwrite(fd, zero_block, n, off)) < 0) goto out;
        off += n;
    }
    step = "fsync";
    if ((err = os_fsync(fd)) < 0) goto out;
    *pfd = fd;
    fd = -1;
out:
    if (err < 0)
        err = jet_report(err, "%s: creating log generation %u: %s failed: %s", tmp, gen, step,
                         os_reason(err, eb, sizeof eb));
    /* Only on failure: the file is abandoned, its close has nothing to add. */
    if (fd >= 0) (void)os_close(fd);
    return err;
}

/*
 * The fast half: writes generation gen's header into the built temporary
 * file fd, makes it durable and renames it to its final name (invariant 1).
 * Takes fd: on success it is the generation's, on failure it is closed.
 */
static JET_ERR gen_publish(const struct jet_log *log, int fd, uint32_t gen, uint64_t prev_create_us,
                           uint64_t prev_hash, XXH3_state_t *st, int *pfd, uint64_t *pcreate_us)
{
    char path[LOG_PATH_MAX], tmp[LOG_PATH_MAX], eb[128];
    uint8_t hb[LOG_HEADER_SIZE];
    struct log_header h;
    const char *step = NULL;
    JET_ERR err;

    if ((err = log_file_name(path, sizeof path, log->dir, log->base, gen)) < 0) goto out;
    if ((err = tmp_name(log, tmp, sizeof tmp)) < 0) goto out;
    /* rename() would silently replace it; the instance lock keeps anyone
     * else from creating it between this check and the rename. */
    if (os_exists(path)) {
        err = jet_report(JET_errFileAccessDenied, "%s: log generation %u already exists and is never overwritten",
                         path, gen);
        goto out;
    }
    memset(&h, 0, sizeof h);
    h.generation = gen;
    h.file_size = log->file_size;
    h.signature = log->signature;
    /* The chain check compares create times, so they must differ even if
     * the wall clock stepped back. */
    h.create_us = os_now_us();
    if (h.create_us <= prev_create_us) h.create_us = prev_create_us + 1;
    h.prev_create_us = prev_create_us;
    h.prev_hash = prev_hash;
    h.page_size = log->page_size;
    memcpy(h.base, log->base, 4);
    header_encode(&h, hb);

    step = "write header";
    if ((err = os_pwrite(fd, hb, sizeof hb, 0)) < 0) goto fail;
    step = "fsync";
    if ((err = os_fsync(fd)) < 0) goto fail;
    step = "rename";
    if ((err = os_rename(tmp, path)) < 0) goto fail;
    step = "directory fsync";
    if ((err = os_sync_dir(log->dir)) < 0) goto fail;
    xxh_ok(XXH3_64bits_reset(st));
    xxh_ok(XXH3_64bits_update(st, hb, sizeof hb));
    *pfd = fd;
    *pcreate_us = h.create_us;
    return JET_errSuccess;
fail:
    err = jet_report(err, "%s: creating log generation %u: %s failed: %s", tmp, gen, step, os_reason(err, eb, sizeof eb));
out:
    /* The file is abandoned, its close has nothing to add. */
    (void)os_close(fd);
    return err;
}

/*
 * Watches the live generation's file for what only someone else does to
 * it: a change of its links (unlinked, or another file renamed over it),
 * of its attributes, a move.  Our own writes and fdatasyncs raise none of
 * these, so a flush that finds no event needs no stat (an fstat or stat
 * next to an fdatasync costs ~45-60 us on ext4 here, a third of the flush;
 * reading an empty inotify queue costs nothing).  A truncation raises only
 * the IN_MODIFY our writes raise too: check_size catches it, by lseek.
 * Without inotify, check_live runs at most every LIVE_CHECK_US instead.
 * Context: the I/O token held, or the log not yet shared.
 */
#define LIVE_CHECK_US 10000u
static void watch_live(struct jet_log *log, uint32_t gen)
{
    char path[LOG_PATH_MAX];
    if (log->notify_fd < 0) return;
    if (log->notify_wd >= 0) (void)inotify_rm_watch(log->notify_fd, log->notify_wd);
    log->notify_wd = -1;
    if (log_file_name(path, sizeof path, log->dir, log->base, gen) >= 0)
        log->notify_wd = inotify_add_watch(log->notify_fd, path, IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF);
    if (log->notify_wd < 0) {
        (void)close(log->notify_fd); /* fall back to the timer */
        log->notify_fd = -1;
    }
}

/* Whether something may have happened to the live file since the last
 * look (drains the notices).  Context: the I/O token held. */
static bool live_may_have_changed(struct jet_log *log)
{
    if (log->notify_fd < 0) {
        uint64_t now = os_mono_us();
        if (now - log->last_check_us < LIVE_CHECK_US) return false;
        log->last_check_us = now;
        return true;
    }
    bool any = false;
    char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(log->notify_fd, ev, sizeof ev) > 0) any = true;
    return any;
}

/* The live file is still file_size bytes (inotify does not tell a
 * truncation from our own writes).  Reported as check_live does. */
static JET_ERR check_size(const struct jet_log *log, int fd, uint32_t gen)
{
    char path[LOG_PATH_MAX];
    uint64_t size = 0;
    JET_ERR err = os_fsize(fd, &size);
    if (err >= 0 && size == log->file_size) return JET_errSuccess;
    if (log_file_name(path, sizeof path, log->dir, log->base, gen) < 0) snprintf(path, sizeof path, "%s", log->dir);
    if (err < 0) return jet_report(JET_errLogWriteFail, "%s: cannot check the live log file: %s", path, JetErrorString(err));
    return jet_report(JET_errLogWriteFail, "%s: the live log file was cut to %llu bytes (it is %u) under the running "
                                           "instance",
                      path, (unsigned long long)size, log->file_size);
}

/*
 * Whether generation gen's file, open as fd, is still the live log: the
 * same file under its name, and file_size bytes.  An operator who deletes,
 * replaces or truncates it would otherwise have every later commit
 * acknowledged into a file recovery never sees.  Reported (naming the
 * file) as JET_errLogWriteFail.  Context: the I/O token held, mu not.
 */
static JET_ERR check_live(const struct jet_log *log, int fd, uint32_t gen)
{
    char path[LOG_PATH_MAX];
    struct os_identity id;
    JET_ERR err = log_file_name(path, sizeof path, log->dir, log->base, gen);
    if (err >= 0) err = os_identity(fd, path, &id);
    if (err < 0) return jet_report(JET_errLogWriteFail, "%s: cannot check the live log file: %s", path, JetErrorString(err));
    if (id.path_other)
        return jet_report(JET_errLogWriteFail, "%s: the live log file was replaced under the running instance", path);
    if (id.nlink == 0 || id.path_missing)
        return jet_report(JET_errLogWriteFail, "%s: the live log file was deleted under the running instance", path);
    if (id.size != log->file_size)
        return jet_report(JET_errLogWriteFail, "%s: the live log file was cut to %llu bytes (it is %u) under the running "
                                               "instance",
                          path, (unsigned long long)id.size, log->file_size);
    return JET_errSuccess;
}

/*
 * Marks the log dead (invariant 4) after a failure in step `what` and
 * reports it.  Context: mu held.
 */
static JET_ERR log_die(struct jet_log *log, JET_ERR cause, const char *what, uint32_t gen, uint64_t off)
{
    char path[LOG_PATH_MAX], eb[128];
    atomic_store(&log->dead, true);
    if (log_file_name(path, sizeof path, log->dir, log->base, gen) < 0) snprintf(path, sizeof path, "%s", log->dir);
    return jet_report(JET_errLogWriteFail,
                      "%s: generation %u: %s at offset %llu failed: %s; the log is unavailable", path, gen, what,
                      (unsigned long long)off, os_reason(cause, eb, sizeof eb));
}

/* The answer of every call once the log is dead. */
static JET_ERR log_dead_error(const struct jet_log *log)
{
    return jet_report(JET_errLogWriteFail, "%s: the log is unavailable since a write or fsync failed", log->dir);
}

/* Takes the append token (see LOCKING).  Context: mu held. */
static JET_ERR append_enter(struct jet_log *log)
{
    while (log->append_busy && !atomic_load(&log->dead)) {
        log->append_waiters++;
        pthread_cond_wait(&log->append_cv, &log->mu);
        log->append_waiters--;
    }
    if (atomic_load(&log->dead)) return log_dead_error(log);
    log->append_busy = true;
    return JET_errSuccess;
}

/* Context: mu held, append token held. */
static void append_leave(struct jet_log *log)
{
    log->append_busy = false;
    if (log->append_waiters) pthread_cond_broadcast(&log->append_cv);
}

/*
 * Writes the full append buffer out without fsync, so the append can go on.
 * The flusher, if any, is writing lower offsets from the other buffer.
 * Context: mu held, append token held.
 */
static JET_ERR buf_write_out(struct jet_log *log)
{
    /* A batch that rolled dropped mu for on_close; a flusher may have died
     * meanwhile, and a dead log writes nothing more (invariant 4). */
    if (atomic_load(&log->dead)) return log_dead_error(log);
    JET_ERR err = os_pwrite(log->fd, log->buf, log->buf_len, log->buf_off);
    if (err < 0) return log_die(log, err, "write", log->gen, log->buf_off);
    log->buf_off += (uint32_t)log->buf_len;
    log->buf_len = 0;
    return JET_errSuccess;
}

/* Copies n bytes to the append buffer.  Context: as buf_write_out. */
static JET_ERR buf_put(struct jet_log *log, const void *src, size_t n)
{
    const uint8_t *p = src;
    while (n) {
        JET_ERR err;
        if (log->buf_len == log->buf_cap && (err = buf_write_out(log)) < 0) return err;
        size_t k = log->buf_cap - log->buf_len;
        if (k > n) k = n;
        memcpy(log->buf + log->buf_len, p, k);
        xxh_ok(XXH3_64bits_update(log->hst, p, k));
        log->buf_len += k;
        p += k;
        n -= k;
    }
    return JET_errSuccess;
}

/*
 * Closes the current generation (invariant 3) and makes the next one
 * current.  *pclosed (may be NULL) gets the closed generation.
 * Context: mu held and the append token held; both still held on return,
 * but mu is dropped in between (for the I/O, and for on_close).
 */
static JET_ERR roll_locked(struct jet_log *log, uint32_t *pclosed)
{
    const char *step;
    bool reported = false; /* the failing step reported its own cause */
    uint64_t hash = 0, close_us = 0, new_create_us = 0;
    int new_fd = -1;
    JET_ERR err = JET_errSuccess;

    /* Both the I/O token and the temporary name, in one step. */
    while (!atomic_load(&log->dead) && (log->io_busy || log->prep_busy))
        pthread_cond_wait(log->io_busy ? &log->io_cv : &log->prep_cv, &log->mu);
    if (atomic_load(&log->dead)) return log_dead_error(log);
    if (log->gen == UINT32_MAX) {
        atomic_store(&log->dead, true);
        return jet_report(JET_errLogWriteFail, "%s: log generation numbers are exhausted", log->dir);
    }

    /* With both tokens no one else touches buf, fd or the positions, so
     * they can be used without mu. */
    log->io_busy = true;
    log->prep_busy = true;
    int prep_fd = log->prep_fd;
    log->prep_fd = -1;
    uint32_t gen = log->gen;
    int fd = log->fd;
    uint64_t create_us = log->create_us;
    uint32_t off = log->buf_off;
    size_t n = log->buf_len;
    lk_mutex_unlock(&log->mu, LK_LOG);

    step = "write";
    if (n && (err = os_pwrite(fd, log->buf, n, off)) < 0) goto relock;
    step = "fsync";
    if ((err = os_fsync(fd)) < 0) goto relock;
    close_us = os_now_us();
    reported = true;
    if ((err = check_live(log, fd, gen)) < 0) goto relock;
    /* The rest of the file is the zeroes it was built with (invariant 6). */
    for (uint64_t z = (uint64_t)off + n; z < log->file_size;) {
        size_t k = log->file_size - z < LOG_ZERO_BLOCK ? (size_t)(log->file_size - z) : LOG_ZERO_BLOCK;
        xxh_ok(XXH3_64bits_update(log->hst, zero_block, k));
        z += k;
    }
    hash = XXH3_64bits_digest(log->hst);
#ifndef NDEBUG
    /* Debug builds check the running hash against the file it describes. */
    {
        char path[LOG_PATH_MAX];
        uint64_t disk = 0;
        if ((err = log_file_name(path, sizeof path, log->dir, log->base, gen)) < 0) goto relock;
        if ((err = log_hash_file(path, &disk)) < 0) goto relock;
        assert(disk == hash);
    }
#endif
    if (prep_fd < 0 && (err = gen_build_tmp(log, gen + 1, &prep_fd)) < 0) goto relock;
    err = gen_publish(log, prep_fd, gen + 1, create_us, hash, log->hst, &new_fd, &new_create_us);
    prep_fd = -1;
    if (err < 0) goto relock;
    watch_live(log, gen + 1);
    /* Everything in it is durable and hashed: close cannot lose data. */
    (void)os_close(fd);

relock:
    lk_mutex_lock(&log->mu, LK_LOG);
    log->io_busy = false;
    /* Flush waiters wake to a dead log, or to all of gen durable. */
    pthread_cond_broadcast(&log->io_cv);
    /* The preparer wakes to build the body of gen + 2. */
    log->prep_busy = false;
    log->prep_failed = false;
    pthread_cond_broadcast(&log->prep_cv);
    /* Only when an earlier step failed: the log dies, the body is unused. */
    if (prep_fd >= 0) (void)os_close(prep_fd);
    if (err < 0) {
        if (!reported) return log_die(log, err, step, gen, off);
        /* Keep the cause the hash or create step reported in the message. */
        char cause[384];
        snprintf(cause, sizeof cause, "%s", JetGetLastErrorDetail());
        atomic_store(&log->dead, true);
        return jet_report(JET_errLogWriteFail, "rolling log generation %u: %s; the log is unavailable", gen, cause);
    }
    log->fd = new_fd;
    log->gen = gen + 1;
    log->create_us = new_create_us;
    log->buf_len = 0;
    log->buf_off = LOG_HEADER_SIZE;
    log->end_lsn = LSN_MAKE(gen + 1, LOG_HEADER_SIZE);
    atomic_store(&log->durable_lsn, log->end_lsn);
    if (log->on_close) {
        lk_mutex_unlock(&log->mu, LK_LOG);
        log->on_close(log->on_close_arg, gen, hash, close_us);
        lk_mutex_lock(&log->mu, LK_LOG);
    }
    if (pclosed) *pclosed = gen;
    return JET_errSuccess;
}

/*
 * The preparer thread (cfg->prepare_ahead): after each roll it builds the
 * body of the next generation, so the roll that follows (a full generation,
 * or a backup beginning) only writes a header, instead of file_size bytes
 * whose cost grows with the dirty memory the kernel is writing back.  A
 * failure (a full disk) is left for that roll, which builds the body itself
 * and reports it; the preparer does not retry until then.
 */
static void *prep_main(void *arg)
{
    struct jet_log *log = arg;
    lk_mutex_lock(&log->mu, LK_LOG);
    while (!log->prep_stop) {
        if (atomic_load(&log->dead) || log->prep_fd >= 0 || log->prep_busy || log->prep_failed) {
            pthread_cond_wait(&log->prep_cv, &log->mu);
            continue;
        }
        log->prep_busy = true;
        uint32_t next = log->gen + 1;
        lk_mutex_unlock(&log->mu, LK_LOG);
        int fd = -1;
        JET_ERR err = gen_build_tmp(log, next, &fd);
        lk_mutex_lock(&log->mu, LK_LOG);
        log->prep_busy = false;
        if (err < 0) log->prep_failed = true;
        else log->prep_fd = fd;
        pthread_cond_broadcast(&log->prep_cv);
    }
    lk_mutex_unlock(&log->mu, LK_LOG);
    return NULL;
}

JET_ERR log_open(const struct log_config *cfg, uint32_t first_gen, struct jet_log **plog)
{
    struct jet_log *log = NULL;
    uint64_t prev_create_us = 0, prev_hash = 0;
    bool mu_init = false, io_cv_init = false, append_cv_init = false, prep_cv_init = false;
    JET_ERR err;

    if (!cfg || !plog || !cfg->dir || !cfg->base || strlen(cfg->base) != 3 || first_gen == 0 ||
        cfg->signature == 0 || cfg->file_size < LOG_FILE_SIZE_MIN || cfg->file_size > LOG_FILE_SIZE_MAX ||
        cfg->file_size % 4096u)
        return jet_report(JET_errInvalidParameter,
                          "log_open: bad configuration (base of 3 characters, generation >= 1, non-zero "
                          "signature and a file size that is a multiple of 4096 in [%u, %u] are required)",
                          LOG_FILE_SIZE_MIN, LOG_FILE_SIZE_MAX);
    *plog = NULL;
    if (!(log = calloc(1, sizeof *log))) return jet_report(JET_errOutOfMemory, "log_open: no memory");
    log->notify_fd = -1; /* before any failure: fail closes it */
    if (snprintf(log->dir, sizeof log->dir, "%s", cfg->dir) >= (int)sizeof log->dir) {
        err = jet_report(JET_errInvalidPath, "%s: log directory path too long", cfg->dir);
        goto fail;
    }
    memcpy(log->base, cfg->base, 4);
    log->file_size = cfg->file_size;
    log->page_size = cfg->page_size;
    log->signature = cfg->signature;
    log->on_close = cfg->on_close;
    log->on_close_arg = cfg->on_close_arg;
    log->fd = -1;
    log->prep_fd = -1;
    log->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC); /* -1: the timer instead */
    log->notify_wd = -1;
    log->buf_cap = cfg->file_size - LOG_HEADER_SIZE < LOG_BUF_CAP ? cfg->file_size - LOG_HEADER_SIZE : LOG_BUF_CAP;
    log->buf = malloc(log->buf_cap);
    log->spare = malloc(log->buf_cap);
    log->hst = XXH3_createState();
    if (!log->buf || !log->spare || !log->hst) {
        err = jet_report(JET_errOutOfMemory, "log_open: no memory for the %zu-byte log buffers", log->buf_cap);
        goto fail;
    }
    if (pthread_mutex_init(&log->mu, NULL) != 0) goto fail_sync;
    mu_init = true;
    if (pthread_cond_init(&log->io_cv, NULL) != 0) goto fail_sync;
    io_cv_init = true;
    if (pthread_cond_init(&log->append_cv, NULL) != 0) goto fail_sync;
    append_cv_init = true;
    if (pthread_cond_init(&log->prep_cv, NULL) != 0) goto fail_sync;
    prep_cv_init = true;

    if (first_gen > 1) {
        char prev[LOG_PATH_MAX];
        if ((err = log_file_name(prev, sizeof prev, log->dir, log->base, first_gen - 1)) < 0) goto fail;
        if (os_exists(prev)) {
            struct log_header ph;
            if ((err = log_read_header(prev, &ph)) < 0) goto fail;
            if (ph.generation != first_gen - 1) {
                err = jet_report(JET_errInvalidLogSequence, "%s: header says generation %u, expected %u", prev,
                                 ph.generation, first_gen - 1);
                goto fail;
            }
            if ((err = log_hash_file(prev, &prev_hash)) < 0) goto fail;
            prev_create_us = ph.create_us;
        }
    }
    int fd0 = -1;
    if ((err = gen_build_tmp(log, first_gen, &fd0)) < 0) goto fail;
    if ((err = gen_publish(log, fd0, first_gen, prev_create_us, prev_hash, log->hst, &log->fd, &log->create_us)) < 0)
        goto fail;
    log->gen = first_gen;
    watch_live(log, first_gen);
    log->buf_off = LOG_HEADER_SIZE;
    log->end_lsn = LSN_MAKE(first_gen, LOG_HEADER_SIZE);
    atomic_init(&log->durable_lsn, log->end_lsn);
    atomic_init(&log->dead, false);
    if (cfg->prepare_ahead) {
        if (pthread_create(&log->prep_thread, NULL, prep_main, log) != 0) {
            err = jet_report(JET_errOutOfMemory, "%s: cannot start the log preparer thread", log->dir);
            (void)os_close(log->fd);
            goto fail;
        }
        log->prep_thread_on = true;
    }
    *plog = log;
    return JET_errSuccess;

fail_sync:
    err = jet_report(JET_errOutOfMemory, "log_open: cannot initialise the log's mutex or condition variables");
fail:
    if (prep_cv_init) pthread_cond_destroy(&log->prep_cv);
    if (append_cv_init) pthread_cond_destroy(&log->append_cv);
    if (io_cv_init) pthread_cond_destroy(&log->io_cv);
    if (mu_init) pthread_mutex_destroy(&log->mu);
    free(log->buf);
    free(log->spare);
    if (log->hst) xxh_ok(XXH3_freeState(log->hst));
    if (log->notify_fd >= 0) (void)close(log->notify_fd);
    free(log);
    return err;
}

/* Sums the payload pieces, rejecting a record over maxp. */
static JET_ERR rec_payload_len(const struct log_rec *r, size_t maxp, uint32_t *plen)
{
    size_t len = 0;
    if (r->iovcnt < 0 || (r->iovcnt > 0 && !r->iov))
        return jet_report(JET_errInvalidParameter, "log record with %d payload pieces", r->iovcnt);
    for (int j = 0; j < r->iovcnt; j++) {
        if (r->iov[j].iov_len > maxp - len)
            return jet_report(JET_errInvalidParameter,
                              "log record payload over %zu bytes, the most a generation of this size holds", maxp);
        len += r->iov[j].iov_len;
    }
    *plen = (uint32_t)len;
    return JET_errSuccess;
}

/*
 * Header bytes [5, 8): what was durable in this generation when the record
 * was appended, in 64-byte units rounded down (see PROVING THE TORN TAIL).
 * Context: mu held.
 */
static void put_durable(uint8_t *rh, const struct jet_log *log)
{
    lsn_t d = atomic_load(&log->durable_lsn);
    uint32_t units = LSN_GEN(d) == log->gen ? LSN_OFF(d) / LOG_DURABLE_UNIT : 0;
    rh[5] = (uint8_t)units;
    rh[6] = (uint8_t)(units >> 8);
    rh[7] = (uint8_t)(units >> 16);
}

JET_ERR log_append(struct jet_log *log, const struct log_rec *recs, int nrecs, lsn_t *pfirst, lsn_t *pend)
{
    size_t maxp = log_max_payload(log->file_size);
    lsn_t first = 0;
    uint32_t len = 0;
    JET_ERR err;

    if (nrecs < 0 || (nrecs > 0 && !recs))
        return jet_report(JET_errInvalidParameter, "log_append: %d records", nrecs);
    /* Validate everything first: a batch is appended whole or not at all. */
    for (int i = 0; i < nrecs; i++)
        if ((err = rec_payload_len(&recs[i], maxp, &len)) < 0) return err;

    lk_mutex_lock(&log->mu, LK_LOG);
    if ((err = append_enter(log)) < 0) goto out_unlock;
    first = log->end_lsn;
    for (int i = 0; i < nrecs; i++) {
        uint8_t rh[LOG_REC_HDR_SIZE];
        if ((err = rec_payload_len(&recs[i], maxp, &len)) < 0) goto out_leave;
        uint32_t total = rec_total(len);
        if ((uint64_t)LSN_OFF(log->end_lsn) + total > log->file_size) {
            if ((err = roll_locked(log, NULL)) < 0) goto out_leave;
            assert((uint64_t)LSN_OFF(log->end_lsn) + total <= log->file_size);
        }
        lsn_t at = log->end_lsn;
        if (i == 0) first = at;
        if (recs[i].at) *recs[i].at = at;
        put_le32(rh, len);
        rh[4] = recs[i].type;
        put_durable(rh, log);
        put_le64(rh + 8, at);
        put_le64(rh + 16, rec_checksum(log->signature, rh, recs[i].iov, recs[i].iovcnt));
        if ((err = buf_put(log, rh, sizeof rh)) < 0) goto out_leave;
        for (int j = 0; j < recs[i].iovcnt; j++)
            if ((err = buf_put(log, recs[i].iov[j].iov_base, recs[i].iov[j].iov_len)) < 0) goto out_leave;
        if ((err = buf_put(log, zero_block, total - LOG_REC_HDR_SIZE - len)) < 0) goto out_leave;
        log->end_lsn = at + total;
        assert(log->buf_off + log->buf_len == LSN_OFF(log->end_lsn));
    }
    if (pfirst) *pfirst = first;
    if (pend) *pend = log->end_lsn;
out_leave:
    append_leave(log);
out_unlock:
    lk_mutex_unlock(&log->mu, LK_LOG);
    return err;
}

/*
 * Becomes the flusher: writes and fdatasyncs everything appended so far
 * and advances durable_lsn over it.  Context: mu held, io_busy clear, log
 * not dead; mu is dropped for the I/O and held again on return.
 */
static JET_ERR flush_locked(struct jet_log *log)
{
    uint8_t *b = log->buf;
    size_t n = log->buf_len;
    uint32_t off = log->buf_off, gen = log->gen;
    int fd = log->fd;
    lsn_t target = log->end_lsn;
    const char *what = "write";
    JET_ERR err = JET_errSuccess;

    assert(log->spare != NULL && !log->io_busy);
    log->buf = log->spare;
    log->spare = NULL;
    log->buf_len = 0;
    log->buf_off = off + (uint32_t)n;
    log->io_busy = true;
    lk_mutex_unlock(&log->mu, LK_LOG);

    if (n) err = os_pwrite(fd, b, n, off);
    /* Bytes that reached a file cut short, or no longer at its name, are
     * not durable: nothing they hold is acknowledged.  The size is checked
     * on every flush (cheap); the name when the watch says it may have
     * changed. */
    bool gone = err >= 0 && (err = check_size(log, fd, gen)) < 0;
    if (err >= 0) {
        what = "fsync";
        err = os_fsync(fd);
    }
    if (err >= 0 && live_may_have_changed(log)) gone = (err = check_live(log, fd, gen)) < 0;

    lk_mutex_lock(&log->mu, LK_LOG);
    log->spare = b;
    log->io_busy = false;
    if (gone) {
        atomic_store(&log->dead, true);
    } else if (err < 0) {
        err = log_die(log, err, what, gen, off);
    } else if (target > atomic_load(&log->durable_lsn)) {
        atomic_store(&log->durable_lsn, target);
    }
    pthread_cond_broadcast(&log->io_cv);
    return err;
}

JET_ERR log_flush(struct jet_log *log, lsn_t lsn)
{
    JET_ERR err = JET_errSuccess;

    /* Fast path without the mutex: durable_lsn only grows. */
    if (atomic_load(&log->dead)) return log_dead_error(log);
    if (atomic_load(&log->durable_lsn) >= lsn) return JET_errSuccess;

    lk_mutex_lock(&log->mu, LK_LOG);
    if (lsn > log->end_lsn) {
        /* Nothing could ever make it durable: a caller bug, not a wait. */
        err = jet_report(JET_errInvalidParameter, "log_flush: position %u:%u is past the end of the log %u:%u",
                         LSN_GEN(lsn), LSN_OFF(lsn), LSN_GEN(log->end_lsn), LSN_OFF(log->end_lsn));
        goto out;
    }
    for (;;) {
        if (atomic_load(&log->dead)) {
            err = log_dead_error(log);
            break;
        }
        if (atomic_load(&log->durable_lsn) >= lsn) break;
        if (log->io_busy) {
            /* Its fsync may cover lsn; if not, whoever wakes first flushes
             * for everyone still waiting. */
            pthread_cond_wait(&log->io_cv, &log->mu);
            continue;
        }
        if ((err = flush_locked(log)) < 0) break;
    }
out:
    lk_mutex_unlock(&log->mu, LK_LOG);
    return err;
}

JET_ERR log_flush_all(struct jet_log *log)
{
    lk_mutex_lock(&log->mu, LK_LOG);
    lsn_t end = log->end_lsn;
    lk_mutex_unlock(&log->mu, LK_LOG);
    return log_flush(log, end);
}

JET_ERR log_roll(struct jet_log *log, uint32_t *pclosed)
{
    uint32_t closed = 0;
    JET_ERR err;
    lk_mutex_lock(&log->mu, LK_LOG);
    if ((err = append_enter(log)) < 0) goto out;
    err = roll_locked(log, &closed);
    append_leave(log);
out:
    lk_mutex_unlock(&log->mu, LK_LOG);
    if (err >= 0 && pclosed) *pclosed = closed;
    return err;
}

lsn_t log_durable_lsn(struct jet_log *log) { return atomic_load(&log->durable_lsn); }

lsn_t log_end_lsn(struct jet_log *log)
{
    lk_mutex_lock(&log->mu, LK_LOG);
    lsn_t end = log->end_lsn;
    lk_mutex_unlock(&log->mu, LK_LOG);
    return end;
}

uint32_t log_current_generation(struct jet_log *log)
{
    lk_mutex_lock(&log->mu, LK_LOG);
    uint32_t gen = log->gen;
    lk_mutex_unlock(&log->mu, LK_LOG);
    return gen;
}

uint64_t log_signature(struct jet_log *log) { return log->signature; }

JET_ERR log_close(struct jet_log *log)
{
    if (!log) return JET_errSuccess;
    if (log->prep_thread_on) {
        lk_mutex_lock(&log->mu, LK_LOG);
        log->prep_stop = true;
        pthread_cond_broadcast(&log->prep_cv);
        lk_mutex_unlock(&log->mu, LK_LOG);
        pthread_join(log->prep_thread, NULL);
    }
    /* A body built for a generation that will not come: remove it, so a
     * clean shutdown leaves only generations behind (best effort: the next
     * build truncates a leftover anyway). */
    if (log->prep_fd >= 0) {
        char tmp[LOG_PATH_MAX];
        (void)os_close(log->prep_fd);
        if (!atomic_load(&log->dead) && tmp_name(log, tmp, sizeof tmp) >= 0) (void)os_unlink(tmp);
    }
    /* A dead log does no more I/O (invariant 4); the failure is its answer. */
    JET_ERR err = atomic_load(&log->dead) ? log_dead_error(log) : log_flush_all(log);
    assert(!log->io_busy && !log->append_busy);
    /* After the fdatasync (or after a failure that already made the log
     * unavailable) close has nothing to tell about durability. */
    if (log->fd >= 0) (void)os_close(log->fd);
    if (log->notify_fd >= 0) (void)close(log->notify_fd);
    pthread_cond_destroy(&log->prep_cv);
    pthread_cond_destroy(&log->append_cv);
    pthread_cond_destroy(&log->io_cv);
    pthread_mutex_destroy(&log->mu);
    free(log->buf);
    free(log->spare);
    xxh_ok(XXH3_freeState(log->hst));
    free(log);
    return err;
}
