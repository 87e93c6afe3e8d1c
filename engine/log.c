/*
 * log.c -- the write-ahead log (format, invariants and locking in log.h).
 *
 * Writer: appends are copied into an in-memory buffer under log->mu.  The
 * buffer holds bytes [buf_lsn, end_lsn) of the current generation not yet
 * handed to the disk.  log_flush() makes one thread the flusher: it takes
 * the buffered bytes (swapping in the spare buffer), drops the mutex,
 * pwrites and fdatasyncs them, and publishes the new durable_lsn; other
 * callers that need a position at or below what the flusher carries simply
 * wait for it, which is group commit.  A record that does not fit in the
 * current generation rolls the log: the buffer is written and synced, the
 * file is hashed and closed, and the next generation is created whole
 * before the append continues.
 *
 * Reader: verifies each header against the previous one (signature,
 * generation, create time, whole-file hash) and each record's checksum and
 * self-position; see log.h for how a bad record is judged.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "diag.h"
#include "log.h"
#include "os.h"
#include "page.h"

#define LOG_BUF_MAX (4u << 20)

struct jet_log {
    struct log_config cfg;
    char dir[1024];
    char base[4];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;                   /* current generation */
    uint32_t gen;
    uint64_t create_us;
    uint8_t *buf, *spare;     /* pending bytes of the current generation */
    size_t buf_cap;
    size_t buf_len;
    uint32_t buf_off;         /* file offset of buf[0] */
    lsn_t end_lsn;            /* next append position */
    lsn_t durable_lsn;
    bool flushing;
    JET_ERR dead;             /* sticky failure */
};

JET_ERR log_file_name(char *buf, size_t cb, const char *dir, const char *base, uint32_t gen)
{
    char name[32];
    snprintf(name, sizeof name, "%s%08X.log", base, gen);
    return os_join(buf, cb, dir, name);
}

size_t log_max_payload(uint32_t file_size) { return file_size - LOG_HEADER_SIZE - LOG_REC_HDR_SIZE; }

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
    memcpy(b + 60, h->base, 4);
    put_le64(b, XXH3_64bits(b + 8, LOG_HEADER_SIZE - 8));
}

static JET_ERR header_decode(const uint8_t *b, struct log_header *h, const char *path)
{
    if (get_le32(b + 8) != LOG_MAGIC)
        return jet_report(JET_errLogFileCorrupt, "%s: not a log file (magic %08x, expected %08x)", path,
                          get_le32(b + 8), LOG_MAGIC);
    uint64_t stored = get_le64(b), computed = XXH3_64bits(b + 8, LOG_HEADER_SIZE - 8);
    if (stored != computed)
        return jet_report(JET_errLogFileCorrupt, "%s: header checksum mismatch: stored %016llx, computed %016llx",
                          path, (unsigned long long)stored, (unsigned long long)computed);
    if (get_le32(b + 12) != LOG_VERSION)
        return jet_report(JET_errBadLogVersion, "%s: log version %u (expected %u)", path, get_le32(b + 12),
                          LOG_VERSION);
    h->generation = get_le32(b + 16);
    h->file_size = get_le32(b + 20);
    h->signature = get_le64(b + 24);
    h->create_us = get_le64(b + 32);
    h->prev_create_us = get_le64(b + 40);
    h->prev_hash = get_le64(b + 48);
    h->page_size = get_le32(b + 56);
    memcpy(h->base, b + 60, 4);
    h->base[3] = '\0';
    if (h->file_size < LOG_FILE_SIZE_MIN || h->file_size > LOG_FILE_SIZE_MAX || h->file_size % 4096)
        return jet_report(JET_errLogFileCorrupt, "%s: header gives file size %u", path, h->file_size);
    return JET_errSuccess;
}

JET_ERR log_read_header(const char *path, struct log_header *hdr)
{
    uint8_t b[LOG_HEADER_SIZE];
    int fd;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) return jet_report(err, "%s: cannot open log file: %s", path, JetErrorString(err));
    err = os_pread_full(fd, b, sizeof b, 0);
    os_close(fd);
    if (err < 0) return err;
    return header_decode(b, hdr, path);
}

JET_ERR log_hash_file(const char *path, uint64_t *phash)
{
    int fd;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) return jet_report(err, "%s: cannot open log file: %s", path, JetErrorString(err));
    XXH3_state_t *st = XXH3_createState();
    uint8_t *chunk = malloc(1u << 20);
    if (!st || !chunk) {
        err = JET_errOutOfMemory;
        goto out;
    }
    XXH3_64bits_reset(st);
    for (uint64_t off = 0;;) {
        size_t got = 0;
        if ((err = os_pread(fd, chunk, 1u << 20, off, &got)) < 0) goto out;
        if (!got) break;
        XXH3_64bits_update(st, chunk, got);
        off += got;
    }
    *phash = XXH3_64bits_digest(st);
out:
    free(chunk);
    if (st) XXH3_freeState(st);
    os_close(fd);
    return err;
}

JET_ERR log_list(const char *dir, const char *base, uint32_t **pgens, size_t *pn)
{
    DIR *d = opendir(dir);
    *pgens = NULL;
    *pn = 0;
    if (!d) return errno == ENOENT ? JET_errSuccess : os_errno_to_jet(errno);
    size_t blen = strlen(base), n = 0, cap = 0;
    uint32_t *v = NULL;
    struct dirent *e;
    JET_ERR err = JET_errSuccess;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strlen(nm) != blen + 12 || strncmp(nm, base, blen) != 0 || strcmp(nm + blen + 8, ".log") != 0) continue;
        uint32_t g = 0;
        bool ok = true;
        for (size_t i = 0; i < 8; i++) {
            char c = nm[blen + i];
            int dv = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (dv < 0) ok = false;
            g = g << 4 | (uint32_t)(dv & 15);
        }
        if (!ok || g == 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint32_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                err = JET_errOutOfMemory;
                break;
            }
            v = nv;
        }
        v[n++] = g;
    }
    closedir(d);
    if (err < 0) {
        free(v);
        return err;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint32_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *pgens = v;
    *pn = n;
    return JET_errSuccess;
}

JET_ERR log_delete_generation(const char *dir, const char *base, uint32_t gen)
{
    char path[1100];
    JET_ERR err = log_file_name(path, sizeof path, dir, base, gen);
    if (err < 0) return err;
    err = os_unlink(path);
    if (err < 0) return jet_report(err, "%s: cannot delete: %s", path, JetErrorString(err));
    return os_sync_dir(dir);
}

/* ---- writer ---- */

/* Creates generation gen whole: temporary file, fsync, rename, dir fsync. */
static JET_ERR gen_create(struct jet_log *log, uint32_t gen, uint64_t prev_create, uint64_t prev_hash)
{
    char path[1100], tmp[1100];
    uint8_t *hb = NULL;
    int fd = -1;
    JET_ERR err;
    if ((err = log_file_name(path, sizeof path, log->dir, log->base, gen)) < 0) return err;
    if (os_exists(path)) return jet_report(JET_errFileAccessDenied, "%s: log generation already exists", path);
    snprintf(tmp, sizeof tmp, "%s/%stmp.log", log->dir, log->base);
    struct log_header h = {
        .generation = gen, .file_size = log->cfg.file_size, .signature = log->cfg.signature,
        .create_us = os_now_us(), .prev_create_us = prev_create, .prev_hash = prev_hash,
        .page_size = log->cfg.page_size,
    };
    /* Creation times must differ between generations for the chain check. */
    if (h.create_us <= prev_create) h.create_us = prev_create + 1;
    memcpy(h.base, log->base, 4);
    hb = malloc(LOG_HEADER_SIZE);
    if (!hb) return JET_errOutOfMemory;
    header_encode(&h, hb);
    if ((err = os_open(tmp, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &fd)) < 0) goto out;
    if ((err = os_ftruncate(fd, 0)) < 0) goto out;
    if ((err = os_preallocate(fd, log->cfg.file_size)) < 0) goto out;
    if ((err = os_pwrite(fd, hb, LOG_HEADER_SIZE, 0)) < 0) goto out;
    if ((err = os_fsync(fd)) < 0) goto out;
    if ((err = os_rename(tmp, path)) < 0) goto out;
    if ((err = os_sync_dir(log->dir)) < 0) goto out;
    log->fd = fd;
    fd = -1;
    log->gen = gen;
    log->create_us = h.create_us;
    log->buf_len = 0;
    log->buf_off = LOG_HEADER_SIZE;
    log->end_lsn = LSN_MAKE(gen, LOG_HEADER_SIZE);
    log->durable_lsn = log->end_lsn;
out:
    if (fd >= 0) os_close(fd);
    free(hb);
    if (err < 0) return jet_report(err, "%s: creating log generation %u failed: %s", path, gen, JetErrorString(err));
    return JET_errSuccess;
}

JET_ERR log_open(const struct log_config *cfg, uint32_t first_gen, struct jet_log **plog)
{
    if (!cfg || !cfg->dir || !cfg->base || strlen(cfg->base) != 3 || first_gen == 0 || cfg->signature == 0 ||
        cfg->file_size < LOG_FILE_SIZE_MIN || cfg->file_size > LOG_FILE_SIZE_MAX || cfg->file_size % 4096)
        return JET_errInvalidParameter;
    struct jet_log *log = calloc(1, sizeof *log);
    JET_ERR err;
    if (!log) return JET_errOutOfMemory;
    log->cfg = *cfg;
    snprintf(log->dir, sizeof log->dir, "%s", cfg->dir);
    memcpy(log->base, cfg->base, 3);
    log->cfg.dir = log->dir;
    log->cfg.base = log->base;
    log->fd = -1;
    log->buf_cap = cfg->file_size < LOG_BUF_MAX ? cfg->file_size : LOG_BUF_MAX;
    log->buf = malloc(log->buf_cap);
    log->spare = malloc(log->buf_cap);
    if (!log->buf || !log->spare) {
        err = JET_errOutOfMemory;
        goto fail;
    }
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    uint64_t prev_create = 0, prev_hash = 0;
    char prev[1100];
    if (first_gen > 1 && (err = log_file_name(prev, sizeof prev, log->dir, log->base, first_gen - 1)) >= 0 &&
        os_exists(prev)) {
        struct log_header ph;
        if ((err = log_read_header(prev, &ph)) < 0) goto fail_sync;
        if ((err = log_hash_file(prev, &prev_hash)) < 0) goto fail_sync;
        prev_create = ph.create_us;
    }
    if ((err = gen_create(log, first_gen, prev_create, prev_hash)) < 0) goto fail_sync;
    *plog = log;
    return JET_errSuccess;
fail_sync:
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
fail:
    free(log->buf);
    free(log->spare);
    free(log);
    return err;
}

/* Writes out the buffered bytes (no fsync).  Context: mu held, not flushing. */
static JET_ERR buf_write_locked(struct jet_log *log)
{
    if (!log->buf_len) return JET_errSuccess;
    JET_ERR err = os_pwrite(log->fd, log->buf, log->buf_len, log->buf_off);
    if (err < 0) {
        log->dead = JET_errLogWriteFail;
        return jet_report(JET_errLogWriteFail, "log generation %u: write at offset %u failed: %s", log->gen,
                          log->buf_off, JetErrorString(err));
    }
    log->buf_off += (uint32_t)log->buf_len;
    log->buf_len = 0;
    return JET_errSuccess;
}

/* Waits out a flush in progress.  Context: mu held. */
static void wait_not_flushing(struct jet_log *log)
{
    while (log->flushing) pthread_cond_wait(&log->cv, &log->mu);
}

/* Closes the current generation and opens the next.  Context: mu held. */
static JET_ERR roll_locked(struct jet_log *log, uint32_t *pclosed, uint64_t *phash, uint64_t *pclose_us)
{
    JET_ERR err;
    char path[1100];
    wait_not_flushing(log);
    if (log->dead) return log->dead;
    if ((err = buf_write_locked(log)) < 0) return err;
    if ((err = os_fsync(log->fd)) < 0) {
        log->dead = JET_errLogWriteFail;
        return jet_report(JET_errLogWriteFail, "log generation %u: fsync failed: %s", log->gen, JetErrorString(err));
    }
    log->durable_lsn = log->end_lsn;
    os_close(log->fd);
    log->fd = -1;
    uint64_t hash = 0;
    if ((err = log_file_name(path, sizeof path, log->dir, log->base, log->gen)) < 0 ||
        (err = log_hash_file(path, &hash)) < 0) {
        log->dead = JET_errLogWriteFail;
        return err;
    }
    uint32_t closed = log->gen;
    if ((err = gen_create(log, closed + 1, log->create_us, hash)) < 0) {
        log->dead = JET_errLogWriteFail;
        return err;
    }
    pthread_cond_broadcast(&log->cv);
    *pclosed = closed;
    *phash = hash;
    *pclose_us = os_now_us();
    return JET_errSuccess;
}

static void notify_close(struct jet_log *log, uint32_t gen, uint64_t hash, uint64_t us)
{
    if (log->cfg.on_close) log->cfg.on_close(log->cfg.on_close_arg, gen, hash, us);
}

JET_ERR log_append(struct jet_log *log, const struct log_rec *recs, int nrecs, lsn_t *pfirst, lsn_t *pend)
{
    JET_ERR err = JET_errSuccess;
    size_t maxp = log_max_payload(log->cfg.file_size);
    struct closed_gen { uint32_t gen; uint64_t hash, us; } closed[8];
    int nclosed = 0;
    for (int i = 0; i < nrecs; i++) {
        size_t len = 0;
        for (int j = 0; j < recs[i].iovcnt; j++) len += recs[i].iov[j].iov_len;
        if (len > maxp) return jet_report(JET_errInvalidParameter, "log record of %zu bytes (at most %zu)", len, maxp);
    }
    pthread_mutex_lock(&log->mu);
    if (log->dead) {
        err = log->dead;
        goto out;
    }
    for (int i = 0; i < nrecs; i++) {
        size_t len = 0;
        for (int j = 0; j < recs[i].iovcnt; j++) len += recs[i].iov[j].iov_len;
        size_t total = LOG_REC_HDR_SIZE + ((len + 7) & ~(size_t)7);
        if (LSN_OFF(log->end_lsn) + total > log->cfg.file_size) {
            uint32_t g;
            uint64_t h, us;
            if ((err = roll_locked(log, &g, &h, &us)) < 0) goto out;
            if (nclosed < 8) closed[nclosed++] = (struct closed_gen){g, h, us};
        }
        /* Room in the buffer: it only shrinks when no flush is running. */
        if (log->buf_len + total > log->buf_cap) {
            wait_not_flushing(log);
            if (log->dead) {
                err = log->dead;
                goto out;
            }
            if ((err = buf_write_locked(log)) < 0) goto out;
        }
        lsn_t at = log->end_lsn;
        uint8_t *p = log->buf + log->buf_len;
        memset(p, 0, total);
        put_le32(p, (uint32_t)len);
        p[4] = recs[i].type;
        put_le64(p + 8, at);
        uint8_t *q = p + LOG_REC_HDR_SIZE;
        for (int j = 0; j < recs[i].iovcnt; j++) {
            memcpy(q, recs[i].iov[j].iov_base, recs[i].iov[j].iov_len);
            q += recs[i].iov[j].iov_len;
        }
        XXH3_state_t st;
        /* A stack state must be initialised before a seeded reset. */
        XXH3_INITSTATE(&st);
        XXH3_64bits_reset_withSeed(&st, log->cfg.signature);
        XXH3_64bits_update(&st, p, 16);
        XXH3_64bits_update(&st, p + LOG_REC_HDR_SIZE, len);
        put_le64(p + 16, XXH3_64bits_digest(&st));
        log->buf_len += total;
        log->end_lsn += total;
        if (i == 0 && pfirst) *pfirst = at;
    }
    if (pend) *pend = log->end_lsn;
out:
    pthread_mutex_unlock(&log->mu);
    for (int i = 0; i < nclosed; i++) notify_close(log, closed[i].gen, closed[i].hash, closed[i].us);
    return err;
}

JET_ERR log_flush(struct jet_log *log, lsn_t lsn)
{
    JET_ERR err = JET_errSuccess;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        if (log->dead) {
            err = log->dead;
            break;
        }
        if (log->durable_lsn >= lsn) break;
        if (log->flushing) {
            pthread_cond_wait(&log->cv, &log->mu);
            continue;
        }
        /* Become the flusher for everything appended so far. */
        uint8_t *b = log->buf;
        size_t n = log->buf_len;
        uint32_t off = log->buf_off;
        int fd = log->fd;
        lsn_t target = log->end_lsn;
        log->buf = log->spare;
        log->spare = b;
        log->buf_len = 0;
        log->buf_off = off + (uint32_t)n;
        log->flushing = true;
        pthread_mutex_unlock(&log->mu);
        JET_ERR werr = n ? os_pwrite(fd, b, n, off) : JET_errSuccess;
        JET_ERR serr = werr >= 0 ? os_fsync(fd) : werr;
        pthread_mutex_lock(&log->mu);
        log->flushing = false;
        if (werr < 0 || serr < 0) {
            log->dead = JET_errLogWriteFail;
            jet_report(JET_errLogWriteFail, "log generation %u: %s at offset %u failed: %s", log->gen,
                       werr < 0 ? "write" : "fsync", off, JetErrorString(werr < 0 ? werr : serr));
        } else if (target > log->durable_lsn) {
            log->durable_lsn = target;
        }
        pthread_cond_broadcast(&log->cv);
    }
    pthread_mutex_unlock(&log->mu);
    return err;
}

JET_ERR log_flush_all(struct jet_log *log)
{
    pthread_mutex_lock(&log->mu);
    lsn_t end = log->end_lsn;
    pthread_mutex_unlock(&log->mu);
    return log_flush(log, end);
}

JET_ERR log_roll(struct jet_log *log, uint32_t *pclosed)
{
    uint32_t g = 0;
    uint64_t h = 0, us = 0;
    pthread_mutex_lock(&log->mu);
    JET_ERR err = roll_locked(log, &g, &h, &us);
    pthread_mutex_unlock(&log->mu);
    if (err < 0) return err;
    notify_close(log, g, h, us);
    if (pclosed) *pclosed = g;
    return JET_errSuccess;
}

lsn_t log_durable_lsn(struct jet_log *log)
{
    pthread_mutex_lock(&log->mu);
    lsn_t l = log->durable_lsn;
    pthread_mutex_unlock(&log->mu);
    return l;
}

lsn_t log_end_lsn(struct jet_log *log)
{
    pthread_mutex_lock(&log->mu);
    lsn_t l = log->end_lsn;
    pthread_mutex_unlock(&log->mu);
    return l;
}

uint32_t log_current_generation(struct jet_log *log)
{
    pthread_mutex_lock(&log->mu);
    uint32_t g = log->gen;
    pthread_mutex_unlock(&log->mu);
    return g;
}

uint64_t log_signature(struct jet_log *log) { return log->cfg.signature; }

JET_ERR log_close(struct jet_log *log)
{
    JET_ERR err = log->dead ? log->dead : log_flush_all(log);
    if (log->fd >= 0) os_close(log->fd);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    free(log->buf);
    free(log->spare);
    free(log);
    return err;
}

/* ---- reader ---- */

struct log_reader {
    char dir[1024];
    char base[4];
    uint64_t signature;
    uint32_t last_gen;       /* last generation to read */
    uint32_t gen;
    char path[1100];
    uint8_t *file;           /* whole current generation */
    struct log_header hdr;
    uint32_t off;
    lsn_t end;               /* just past the last good record */
    bool torn;
    bool done;
};

static JET_ERR reader_load(struct log_reader *rd, uint32_t gen)
{
    int fd;
    JET_ERR err;
    struct log_header h;
    if ((err = log_file_name(rd->path, sizeof rd->path, rd->dir, rd->base, gen)) < 0) return err;
    if ((err = log_read_header(rd->path, &h)) < 0) return err;
    if (h.generation != gen)
        return jet_report(JET_errLogFileCorrupt, "%s: header says generation %u", rd->path, h.generation);
    if (rd->signature && h.signature != rd->signature)
        return jet_report(JET_errBadLogSignature, "%s: log signature %016llx, expected %016llx", rd->path,
                          (unsigned long long)h.signature, (unsigned long long)rd->signature);
    uint8_t *file = malloc(h.file_size);
    if (!file) return JET_errOutOfMemory;
    if ((err = os_open(rd->path, OS_OPEN_READ, &fd)) < 0) {
        free(file);
        return err;
    }
    err = os_pread_full(fd, file, h.file_size, 0);
    os_close(fd);
    if (err < 0) {
        free(file);
        return err;
    }
    if (rd->file && gen == rd->gen + 1) {
        uint64_t prev_hash = XXH3_64bits(rd->file, rd->hdr.file_size);
        if (h.prev_hash != prev_hash || h.prev_create_us != rd->hdr.create_us) {
            free(file);
            return jet_report(JET_errInvalidLogSequence,
                              "%s: does not follow generation %u (hash chain %016llx vs %016llx, time %llu vs %llu)",
                              rd->path, rd->gen, (unsigned long long)h.prev_hash, (unsigned long long)prev_hash,
                              (unsigned long long)h.prev_create_us, (unsigned long long)rd->hdr.create_us);
        }
    }
    free(rd->file);
    rd->file = file;
    rd->hdr = h;
    rd->gen = gen;
    rd->off = LOG_HEADER_SIZE;
    return JET_errSuccess;
}

JET_ERR log_reader_open(const char *dir, const char *base, lsn_t start, uint64_t signature, uint32_t last_gen,
                        struct log_reader **prd)
{
    struct log_reader *rd = calloc(1, sizeof *rd);
    JET_ERR err;
    uint32_t *gens = NULL;
    size_t n = 0;
    if (!rd) return JET_errOutOfMemory;
    snprintf(rd->dir, sizeof rd->dir, "%s", dir);
    snprintf(rd->base, sizeof rd->base, "%s", base);
    rd->signature = signature;
    if ((err = log_list(dir, base, &gens, &n)) < 0) goto fail;
    rd->last_gen = last_gen ? last_gen : (n ? gens[n - 1] : 0);
    free(gens);
    char path[1100];
    if ((err = log_file_name(path, sizeof path, dir, base, LSN_GEN(start))) < 0) goto fail;
    if (!os_exists(path)) {
        err = jet_report(JET_errMissingLogFile, "%s: log generation %u is missing", path, LSN_GEN(start));
        goto fail;
    }
    if ((err = reader_load(rd, LSN_GEN(start))) < 0) goto fail;
    if (LSN_OFF(start) < LOG_HEADER_SIZE || LSN_OFF(start) > rd->hdr.file_size || LSN_OFF(start) % 8) {
        err = jet_report(JET_errInvalidParameter, "log position %u:%u is not a record position", LSN_GEN(start),
                         LSN_OFF(start));
        goto fail;
    }
    rd->off = LSN_OFF(start);
    rd->end = start;
    *prd = rd;
    return JET_errSuccess;
fail:
    free(rd->file);
    free(rd);
    return err;
}

/* Is the record at off valid? */
static bool record_valid(const struct log_reader *rd, uint32_t off, uint32_t *plen)
{
    uint32_t fs = rd->hdr.file_size;
    if (off + LOG_REC_HDR_SIZE > fs) return false;
    const uint8_t *p = rd->file + off;
    uint32_t len = get_le32(p);
    if ((uint64_t)off + LOG_REC_HDR_SIZE + len > fs) return false;
    if (get_le64(p + 8) != LSN_MAKE(rd->gen, off)) return false;
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset_withSeed(&st, rd->hdr.signature);
    XXH3_64bits_update(&st, p, 16);
    XXH3_64bits_update(&st, p + LOG_REC_HDR_SIZE, len);
    if (XXH3_64bits_digest(&st) != get_le64(p + 16)) return false;
    *plen = len;
    return true;
}

static bool region_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

JET_ERR log_reader_next(struct log_reader *rd, struct log_record *rec)
{
    JET_ERR err;
    for (;;) {
        if (rd->done) return 1;
        uint32_t fs = rd->hdr.file_size, len;
        if (rd->off + LOG_REC_HDR_SIZE <= fs && record_valid(rd, rd->off, &len)) {
            const uint8_t *p = rd->file + rd->off;
            rec->lsn = LSN_MAKE(rd->gen, rd->off);
            rec->type = p[4];
            rec->payload = p + LOG_REC_HDR_SIZE;
            rec->len = len;
            rd->off += LOG_REC_HDR_SIZE + ((len + 7) & ~7u);
            rec->end = LSN_MAKE(rd->gen, rd->off);
            rd->end = rec->end;
            return JET_errSuccess;
        }
        /* No valid record here.  The rest of the file being zero is the
         * normal end of a generation (a record that did not fit rolled the
         * log); anything else is damage or a torn write. */
        bool clean_end = rd->off >= fs || region_zero(rd->file + rd->off, fs - rd->off);
        if (rd->gen >= rd->last_gen) {
            rd->torn = !clean_end;
            rd->done = true;
            return 1;
        }
        if (!clean_end)
            return jet_report(JET_errLogFileCorrupt,
                              "%s: generation %u: record at offset %u is damaged and later generations exist",
                              rd->path, rd->gen, rd->off);
        char next[1100];
        if ((err = log_file_name(next, sizeof next, rd->dir, rd->base, rd->gen + 1)) < 0) return err;
        if (!os_exists(next))
            return jet_report(JET_errMissingLogFile, "%s: log generation %u is missing (generation %u exists)", next,
                              rd->gen + 1, rd->last_gen);
        if ((err = reader_load(rd, rd->gen + 1)) < 0) return err;
        rd->end = LSN_MAKE(rd->gen, LOG_HEADER_SIZE);
    }
}

int log_reader_tail_torn(const struct log_reader *rd) { return rd->torn; }
lsn_t log_reader_end(const struct log_reader *rd) { return rd->end; }
const struct log_header *log_reader_header(const struct log_reader *rd) { return &rd->hdr; }

void log_reader_close(struct log_reader *rd)
{
    if (!rd) return;
    free(rd->file);
    free(rd);
}
