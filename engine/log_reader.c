/*
 * log_reader.c -- the verifying reader of log generations (log.h: the
 * contract, log_reader_*; log.c's header comment, READING and PROVING THE
 * TORN TAIL: the rules).  Recovery, restore, backup verification and the
 * inspection tools read the log through it; it never writes.
 *
 * Owns: one reader's window over the current generation, its running hash
 * for the chain check, and where it ended.  A reader is used by one thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "logfmt.h"
#include "os.h"
#include "page.h"

/* ------------------------------------------------------------------ */
/* Reader                                                               */
/* ------------------------------------------------------------------ */

struct log_reader {
    char dir[LOG_PATH_MAX];
    char base[4];
    uint64_t want_signature;  /* 0: any, but the same in every generation */
    uint32_t last_gen;        /* a bad record here is a torn tail */

    /* The generation being read. */
    char path[LOG_PATH_MAX];
    int fd;
    struct log_header hdr;
    uint64_t fsize;           /* actual size of the file */
    uint32_t off;             /* next record position */

    /* The window: file bytes [win_off, win_off + win_len) in win. */
    uint8_t *win;
    size_t win_cap;
    uint64_t win_off;
    size_t win_len;

    /* Hash of the file's bytes [0, hashed), for the chain check. */
    XXH3_state_t *hash;
    uint64_t hashed;

    lsn_t end;                /* just past the last good record */
    bool torn;
    bool done;
    JET_ERR err;              /* sticky: a failed reader stays failed */
};

/*
 * Makes file bytes [off, off + n) of the current generation available at
 * *pp (n <= file_size - off).  Feeds newly read bytes to the hash when
 * they continue it.
 */
static JET_ERR reader_window(struct log_reader *rd, uint64_t off, size_t n, const uint8_t **pp)
{
    char eb[128];
    JET_ERR err;
    assert(off + n <= rd->hdr.file_size);
    if (off >= rd->win_off && off + n <= rd->win_off + rd->win_len) {
        *pp = rd->win + (off - rd->win_off);
        return JET_errSuccess;
    }
    size_t want = n > LOG_READ_CHUNK ? n : LOG_READ_CHUNK;
    if (want > rd->hdr.file_size - off) want = (size_t)(rd->hdr.file_size - off);
    if (want > rd->win_cap) {
        uint8_t *w = realloc(rd->win, want);
        if (!w) return jet_report(JET_errOutOfMemory, "%s: no memory for a %zu-byte log record", rd->path, n);
        rd->win = w;
        rd->win_cap = want;
    }
    rd->win_len = 0; /* in case the read fails half way */
    /* Past the end of a short file reads as zeroes: an end of log. */
    if ((err = os_pread_full(rd->fd, rd->win, want, off)) < 0)
        return jet_report(err, "%s: read of %zu bytes at offset %llu failed: %s", rd->path, want,
                          (unsigned long long)off, os_reason(err, eb, sizeof eb));
    rd->win_off = off;
    rd->win_len = want;
    uint64_t hend = off + want < rd->fsize ? off + want : rd->fsize;
    if (off <= rd->hashed && rd->hashed < hend) {
        xxh_ok(XXH3_64bits_update(rd->hash, rd->win + (rd->hashed - off), (size_t)(hend - rd->hashed)));
        rd->hashed = hend;
    }
    *pp = rd->win + (off - rd->win_off);
    return JET_errSuccess;
}

/* The whole-file hash of the current generation, reading what was skipped. */
static JET_ERR reader_file_hash(struct log_reader *rd, uint64_t *phash)
{
    char eb[128];
    JET_ERR err;
    if (rd->win_cap == 0) {
        /* Nothing was read through the window yet (a start at the very end). */
        if (!(rd->win = malloc(LOG_READ_CHUNK)))
            return jet_report(JET_errOutOfMemory, "%s: no memory to hash the log file", rd->path);
        rd->win_cap = LOG_READ_CHUNK;
    }
    while (rd->hashed < rd->fsize) {
        uint64_t left = rd->fsize - rd->hashed;
        size_t n = left < LOG_READ_CHUNK ? (size_t)left : LOG_READ_CHUNK;
        if (n > rd->win_cap) n = rd->win_cap;
        rd->win_len = 0; /* the window is scratch space here */
        if ((err = os_pread_full(rd->fd, rd->win, n, rd->hashed)) < 0)
            return jet_report(err, "%s: read at offset %llu failed: %s", rd->path, (unsigned long long)rd->hashed,
                              os_reason(err, eb, sizeof eb));
        xxh_ok(XXH3_64bits_update(rd->hash, rd->win, n));
        rd->hashed += n;
    }
    *phash = XXH3_64bits_digest(rd->hash);
    return JET_errSuccess;
}

/* Is everything from off to the end of the generation zero? */
static JET_ERR reader_rest_is_zero(struct log_reader *rd, uint64_t off, bool *pzero)
{
    JET_ERR err;
    *pzero = true;
    while (off < rd->hdr.file_size) {
        uint64_t left = rd->hdr.file_size - off;
        size_t n = left < LOG_READ_CHUNK ? (size_t)left : LOG_READ_CHUNK;
        const uint8_t *p = NULL;
        if ((err = reader_window(rd, off, n, &p)) < 0) return err;
        if (!all_zero(p, n)) {
            *pzero = false;
            break;
        }
        off += n;
    }
    return JET_errSuccess;
}

/*
 * Looks past a bad record at off for a valid record whose durable field
 * says off was durable: *psaid gets that offset (0 if none), *pat where the
 * record is.  Only the last generation needs it.
 */
static JET_ERR reader_find_proof(struct log_reader *rd, uint32_t off, uint32_t *pat, uint32_t *psaid)
{
    uint32_t fs = rd->hdr.file_size, gen = rd->hdr.generation;
    *psaid = 0;
    for (uint64_t q = (uint64_t)off + 8; q + LOG_REC_HDR_SIZE <= fs; q += 8) {
        const uint8_t *p;
        JET_ERR err = reader_window(rd, q, LOG_REC_HDR_SIZE, &p);
        if (err < 0) return err;
        uint32_t len = get_le32(p);
        uint32_t said = ((uint32_t)p[5] | (uint32_t)p[6] << 8 | (uint32_t)p[7] << 16) * LOG_DURABLE_UNIT;
        if (get_le64(p + 8) != LSN_MAKE(gen, q) || said <= off || len > fs - q - LOG_REC_HDR_SIZE) continue;
        if ((err = reader_window(rd, q, LOG_REC_HDR_SIZE + (size_t)len, &p)) < 0) return err;
        struct iovec iov = {(void *)(p + LOG_REC_HDR_SIZE), len};
        if (rec_checksum(rd->hdr.signature, p, &iov, 1) != get_le64(p + 16)) continue;
        *pat = (uint32_t)q;
        *psaid = said;
        return JET_errSuccess;
    }
    return JET_errSuccess;
}

/* What the next generation's header must match. */
struct chain_link {
    uint32_t gen;
    uint64_t signature;
    uint64_t create_us;
    uint64_t hash;
};

/*
 * Opens generation gen, checks its header (against prev when moving on
 * from prev->gen) and makes it the current generation.  Nothing of the
 * reader changes on failure.
 */
static JET_ERR reader_enter(struct log_reader *rd, uint32_t gen, const struct chain_link *prev)
{
    char path[LOG_PATH_MAX], eb[128];
    uint8_t hb[LOG_HEADER_SIZE];
    struct log_header h;
    uint64_t fsize = 0;
    int fd = -1;
    JET_ERR err;

    if ((err = log_file_name(path, sizeof path, rd->dir, rd->base, gen)) < 0) return err;
    if ((err = os_open(path, OS_OPEN_READ, &fd)) < 0) {
        if (err == JET_errFileNotFound) {
            if (prev)
                return jet_report(JET_errMissingLogFile, "%s: log generation %u is missing (generation %u exists)",
                                  path, gen, rd->last_gen);
            return jet_report(JET_errMissingLogFile, "%s: log generation %u is missing", path, gen);
        }
        return jet_report(err, "%s: cannot open log file: %s", path, os_reason(err, eb, sizeof eb));
    }
    if ((err = os_pread_full(fd, hb, sizeof hb, 0)) < 0) {
        err = jet_report(err, "%s: cannot read the log header: %s", path, os_reason(err, eb, sizeof eb));
        goto out;
    }
    if ((err = os_fsize(fd, &fsize)) < 0) {
        err = jet_report(err, "%s: cannot get the file size: %s", path, os_reason(err, eb, sizeof eb));
        goto out;
    }
    if ((err = log_header_decode(hb, path, &h)) < 0) goto out;
    if (h.generation != gen) {
        err = jet_report(JET_errInvalidLogSequence, "%s: header says generation %u, expected %u", path, h.generation,
                         gen);
        goto out;
    }
    if (rd->want_signature && h.signature != rd->want_signature) {
        err = jet_report(JET_errBadLogSignature, "%s: log signature %016llx, expected %016llx", path,
                         (unsigned long long)h.signature, (unsigned long long)rd->want_signature);
        goto out;
    }
    if (prev && h.signature != prev->signature) {
        err = jet_report(JET_errBadLogSignature, "%s: log signature %016llx differs from generation %u's %016llx",
                         path, (unsigned long long)h.signature, prev->gen, (unsigned long long)prev->signature);
        goto out;
    }
    if (prev && (h.prev_create_us != prev->create_us || h.prev_hash != prev->hash)) {
        /* Name both files: when only the hash differs, the earlier one is
         * the likelier culprit (changed after it was closed), and an
         * operator must look at both. */
        char prev_path[LOG_PATH_MAX];
        if ((err = log_file_name(prev_path, sizeof prev_path, rd->dir, rd->base, prev->gen)) < 0) goto out;
        err = jet_report(JET_errInvalidLogSequence,
                         "%s: does not follow generation %u (%s): %s; prev_hash %016llx, expected %016llx; "
                         "prev_create_us %llu, expected %llu",
                         path, prev->gen, prev_path,
                         h.prev_create_us == prev->create_us
                             ? "the earlier file's content differs from the hash recorded when this one began "
                               "(damaged or changed after it was closed)"
                             : "the two files are from different chains",
                         (unsigned long long)h.prev_hash, (unsigned long long)prev->hash,
                         (unsigned long long)h.prev_create_us, (unsigned long long)prev->create_us);
        goto out;
    }
    /* The writer builds every file whole, file_size bytes, before it has
     * its name (invariant 1), so a crash never leaves one short: a file of
     * another size, the last one too, was cut or grown since, and what it
     * lost may have been acknowledged.  Damage, not a torn tail. */
    if (fsize != h.file_size) {
        err = jet_report(JET_errLogFileCorrupt,
                         "%s: file is %llu bytes, its header says %u: cut or grown after it was written (a crash "
                         "never leaves a generation short)",
                         path, (unsigned long long)fsize, h.file_size);
        goto out;
    }

    if (rd->fd >= 0) (void)os_close(rd->fd); /* read-only */
    rd->fd = fd;
    fd = -1;
    memcpy(rd->path, path, sizeof path);
    rd->hdr = h;
    rd->fsize = fsize;
    rd->off = LOG_HEADER_SIZE;
    rd->win_off = 0;
    rd->win_len = 0;
    xxh_ok(XXH3_64bits_reset(rd->hash));
    rd->hashed = fsize < LOG_HEADER_SIZE ? fsize : LOG_HEADER_SIZE;
    xxh_ok(XXH3_64bits_update(rd->hash, hb, (size_t)rd->hashed));
out:
    if (fd >= 0) (void)os_close(fd); /* read-only */
    return err;
}

/*
 * Moves on from a generation that ended before the last one.  damaged_at
 * is 0 for a clean end, or the offset of a bad record, which only the next
 * generation's hash chain can vouch for (see READING).
 */
static JET_ERR reader_advance(struct log_reader *rd, uint32_t damaged_at)
{
    struct chain_link link = {rd->hdr.generation, rd->hdr.signature, rd->hdr.create_us, 0};
    char path[LOG_PATH_MAX];
    JET_ERR err;

    if ((err = reader_file_hash(rd, &link.hash)) < 0) return err;
    memcpy(path, rd->path, sizeof path);
    err = reader_enter(rd, link.gen + 1, &link);
    if (err < 0 && damaged_at &&
        (err == JET_errLogFileCorrupt || err == JET_errInvalidLogSequence || err == JET_errBadLogSignature ||
         err == JET_errMissingLogFile || err == JET_errBadLogVersion))
        return jet_report(JET_errLogFileCorrupt,
                          "%s: generation %u: record at offset %u fails its checksum or position check, and "
                          "later generations exist",
                          path, link.gen, damaged_at);
    return err;
}

JET_ERR log_reader_open(const char *dir, const char *base, lsn_t start, uint64_t signature, uint32_t last_gen,
                        struct log_reader **prd)
{
    struct log_reader *rd = NULL;
    uint32_t *gens = NULL;
    size_t n = 0;
    JET_ERR err;

    if (!dir || !base || strlen(base) != 3 || !prd || LSN_GEN(start) == 0)
        return jet_report(JET_errInvalidParameter, "log_reader_open: bad arguments");
    *prd = NULL;
    if (!(rd = calloc(1, sizeof *rd))) return jet_report(JET_errOutOfMemory, "log_reader_open: no memory");
    rd->fd = -1;
    if (snprintf(rd->dir, sizeof rd->dir, "%s", dir) >= (int)sizeof rd->dir) {
        err = jet_report(JET_errInvalidPath, "%s: log directory path too long", dir);
        goto fail;
    }
    memcpy(rd->base, base, 4);
    rd->want_signature = signature;
    rd->last_gen = last_gen;
    if (!last_gen) {
        if ((err = log_list(dir, base, &gens, &n)) < 0) goto fail;
        rd->last_gen = n ? gens[n - 1] : LSN_GEN(start);
        free(gens);
    }
    if (!(rd->hash = XXH3_createState())) {
        err = jet_report(JET_errOutOfMemory, "log_reader_open: no memory");
        goto fail;
    }
    if ((err = reader_enter(rd, LSN_GEN(start), NULL)) < 0) goto fail;
    if (LSN_OFF(start) < LOG_HEADER_SIZE || LSN_OFF(start) > rd->hdr.file_size || LSN_OFF(start) % 8u) {
        err = jet_report(JET_errInvalidParameter, "%s: log position %u:%u is not a record position", rd->path,
                         LSN_GEN(start), LSN_OFF(start));
        goto fail;
    }
    rd->off = LSN_OFF(start);
    rd->end = start;
    *prd = rd;
    return JET_errSuccess;
fail:
    log_reader_close(rd);
    return err;
}

JET_ERR log_reader_next(struct log_reader *rd, struct log_record *rec)
{
    JET_ERR err;
    if (rd->err < 0) return rd->err;
    if (rd->done) return 1;
    for (;;) {
        uint32_t fs = rd->hdr.file_size, off = rd->off, gen = rd->hdr.generation;
        const uint8_t *p;
        if ((uint64_t)off + LOG_REC_HDR_SIZE <= fs) {
            if ((err = reader_window(rd, off, LOG_REC_HDR_SIZE, &p)) < 0) goto fail;
            uint32_t len = get_le32(p);
            /* The lsn check comes before trusting len for a bigger read. */
            if (len <= fs - off - LOG_REC_HDR_SIZE && get_le64(p + 8) == LSN_MAKE(gen, off)) {
                if ((err = reader_window(rd, off, LOG_REC_HDR_SIZE + (size_t)len, &p)) < 0) goto fail;
                struct iovec iov = {(void *)(p + LOG_REC_HDR_SIZE), len};
                if (rec_checksum(rd->hdr.signature, p, &iov, 1) == get_le64(p + 16)) {
                    rec->lsn = LSN_MAKE(gen, off);
                    rec->type = p[4];
                    rec->payload = p + LOG_REC_HDR_SIZE;
                    rec->len = len;
                    rd->off = off + rec_total(len);
                    rec->end = LSN_MAKE(gen, rd->off);
                    rd->end = rec->end;
                    return JET_errSuccess;
                }
            }
        }
        /* No record at off: the end of this generation. */
        bool zero;
        if ((err = reader_rest_is_zero(rd, off, &zero)) < 0) goto fail;
        if (gen >= rd->last_gen) {
            uint32_t at = 0, said = 0;
            if (!zero && (err = reader_find_proof(rd, off, &at, &said)) < 0) goto fail;
            if (said) {
                err = jet_report(JET_errLogFileCorrupt,
                                 "%s: generation %u is damaged at offset %u: the record at offset %u says offsets "
                                 "below %u were durable when it was written, so this is not the torn tail of a crash; "
                                 "the last good position is %u:%u",
                                 rd->path, gen, off, at, said, gen, off);
                goto fail;
            }
            rd->torn = !zero;
            rd->done = true;
            return 1;
        }
        if ((err = reader_advance(rd, zero ? 0 : off)) < 0) goto fail;
        rd->end = LSN_MAKE(rd->hdr.generation, LOG_HEADER_SIZE);
    }
fail:
    rd->err = err;
    return err;
}

int log_reader_tail_torn(const struct log_reader *rd) { return rd->torn; }

lsn_t log_reader_end(const struct log_reader *rd) { return rd->end; }

const struct log_header *log_reader_header(const struct log_reader *rd) { return &rd->hdr; }

void log_reader_close(struct log_reader *rd)
{
    if (!rd) return;
    if (rd->fd >= 0) (void)os_close(rd->fd); /* read-only */
    if (rd->hash) xxh_ok(XXH3_freeState(rd->hash));
    free(rd->win);
    free(rd);
}
