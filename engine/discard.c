/*
 * discard.c -- ending a damaged log at its last good commit, on an
 * operator's request (jetutil recover --discard-after-damage), never on
 * the engine's own initiative.
 *
 * Recovery refuses damage (log.c, PROVING THE TORN TAIL): a bad record the
 * log proves was durable, a broken chain.  When the operator has no backup
 * to restore and accepts losing what follows the damage, this module makes
 * the log end just after the last commit record before it, so recovery can
 * run, and says exactly what is lost.  Nothing is deleted:
 *   1. the log is read from the checkpoint to the damage (read only);
 *   2. the cut is the end of the last LR_COMMIT before the damage: a
 *      transaction whose commit lies past it is dropped whole;
 *   3. every database page is checked: one whose stamp is at or past the
 *      cut already holds a change the cut drops, so the database cannot be
 *      made consistent from the shortened log -- refused, nothing changed;
 *   4. the damaged generation is copied to <file>.discarded and every later
 *      generation renamed to <file>.discarded; the original is zeroed from
 *      the cut to its end;
 *   5. a note (<system path>/<base>.discard) tells the next recovery that
 *      the missing generations were taken away on purpose, and makes it
 *      append an LR_DISCARD record (logrec.h) to the new generation, so the
 *      discard stays visible in the log, to backups and restores.
 * A crash between steps leaves either nothing changed or a note the next
 * start completes; the .discarded files always hold the original bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "checkpoint.h"
#include "diag.h"
#include "discard.h"
#include "dbfile.h"
#include "instance.h"
#include "jet_inspect.h"
#include "logfmt.h"
#include "logrec.h"
#include "os.h"
#include "page.h"

#define DISCARD_MAGIC 0x43534944u /* "DISC" */
#define DISCARD_NOTE_SIZE 64u

JET_ERR discard_note_path(char *buf, size_t cb, const char *system_path, const char *base)
{
    char name[16];
    snprintf(name, sizeof name, "%s.discard", base);
    return os_join(buf, cb, system_path, name);
}

void discard_encode(const struct discard_note *n, uint8_t *p)
{
    put_le32(p, n->gen);
    put_le32(p + 4, n->damage_off);
    put_le64(p + 8, n->cut);
    put_le32(p + 16, n->first_moved);
    put_le32(p + 20, n->last_moved);
    put_le64(p + 24, n->commits);
    put_le64(p + 32, n->time_us);
}

void discard_decode(const uint8_t *p, struct discard_note *n)
{
    n->gen = get_le32(p);
    n->damage_off = get_le32(p + 4);
    n->cut = get_le64(p + 8);
    n->first_moved = get_le32(p + 16);
    n->last_moved = get_le32(p + 20);
    n->commits = get_le64(p + 24);
    n->time_us = get_le64(p + 32);
}

JET_ERR discard_note_read(const char *path, struct discard_note *n)
{
    uint8_t b[DISCARD_NOTE_SIZE];
    int fd;
    uint64_t size = 0;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) return err;
    if ((err = os_fsize(fd, &size)) >= 0) err = os_pread_full(fd, b, sizeof b, 0);
    os_close(fd);
    if (err < 0) return err;
    if (size != DISCARD_NOTE_SIZE || get_le32(b + 8) != DISCARD_MAGIC || get_le64(b) != XXH3_64bits(b + 8, 56))
        return jet_report(JET_errCheckpointCorrupt, "%s: not a discard note (or damaged)", path);
    discard_decode(b + 16, n);
    return JET_errSuccess;
}

static JET_ERR note_write(const char *path, const struct discard_note *n)
{
    uint8_t b[DISCARD_NOTE_SIZE] = {0};
    put_le32(b + 8, DISCARD_MAGIC);
    discard_encode(n, b + 16);
    put_le64(b, XXH3_64bits(b + 8, 56));
    return os_replace_file(path, b, sizeof b);
}

/* Commit records readable in [from, end of file) of generation gen, found by
 * trying every aligned position (the damage broke the chain of lengths). */
static uint64_t count_commits_from(const char *path, uint32_t gen, uint32_t from, uint64_t signature)
{
    int fd;
    uint64_t size = 0, commits = 0;
    if (os_open(path, OS_OPEN_READ, &fd) < 0) return 0;
    uint8_t *b = NULL;
    if (os_fsize(fd, &size) < 0 || size > LOG_FILE_SIZE_MAX || !(b = malloc(size ? size : 1)) ||
        os_pread_full(fd, b, size, 0) < 0) {
        free(b);
        os_close(fd);
        return 0;
    }
    os_close(fd);
    for (uint64_t off = from; off + LOG_REC_HDR_SIZE <= size;) {
        const uint8_t *p = b + off;
        uint32_t len = get_le32(p);
        if (get_le64(p + 8) == LSN_MAKE(gen, off) && len <= size - off - LOG_REC_HDR_SIZE) {
            struct iovec iov = {(void *)(p + LOG_REC_HDR_SIZE), len};
            if (rec_checksum(signature, p, &iov, 1) == get_le64(p + 16)) {
                if (p[4] == LR_COMMIT) commits++;
                off += rec_total(len);
                continue;
            }
        }
        off += 8;
    }
    free(b);
    return commits;
}

/* Commits in a whole later generation, as far as it reads. */
static uint64_t count_commits_gen(const char *dir, const char *base, uint32_t gen, uint64_t signature)
{
    char path[LOG_PATH_MAX];
    if (log_file_name(path, sizeof path, dir, base, gen) < 0) return 0;
    return count_commits_from(path, gen, LOG_HEADER_SIZE, signature);
}

/* Step 3: no page of the database holds a change from at or past the cut. */
static JET_ERR check_pages(const char *path, uint32_t ps, lsn_t cut)
{
    int fd;
    uint64_t size = 0;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) return jet_report(err, "discard: %s cannot be opened: %s", path, JetErrorString(err));
    uint8_t *pg = malloc(ps);
    if (!pg) {
        os_close(fd);
        return JET_errOutOfMemory;
    }
    if ((err = os_fsize(fd, &size)) < 0) goto out;
    for (uint64_t pgno = DB_PGNO_META; (pgno + 1) * ps <= size; pgno++) {
        if ((err = os_pread_full(fd, pg, ps, pgno * ps)) < 0) goto out;
        if (page_is_zero(pg, ps) || page_pgno(pg) != pgno || get_le64(pg) != page_checksum(pg, ps)) continue;
        if (page_lsn(pg) >= cut) {
            err = jet_report(JET_errDbTimeTooNew,
                             "discard: %s page %llu holds a change from log position %u:%u, at or after the cut at "
                             "%u:%u: the database already has commits the discard would drop, so the shortened log "
                             "cannot make it consistent; nothing was changed: restore from a backup",
                             path, (unsigned long long)pgno, LSN_GEN(page_lsn(pg)), LSN_OFF(page_lsn(pg)),
                             LSN_GEN(cut), LSN_OFF(cut));
            goto out;
        }
    }
out:
    free(pg);
    os_close(fd);
    return err;
}

static JET_ERR copy_file(const char *from, const char *to)
{
    size_t n = 0;
    int fd;
    uint64_t size = 0;
    JET_ERR err = os_open(from, OS_OPEN_READ, &fd);
    if (err < 0) return err;
    uint8_t *b = NULL;
    if ((err = os_fsize(fd, &size)) >= 0) {
        n = (size_t)size;
        if (!(b = malloc(n ? n : 1))) err = JET_errOutOfMemory;
        else err = os_pread_full(fd, b, n, 0);
    }
    os_close(fd);
    if (err >= 0) err = os_replace_file(to, b, n);
    free(b);
    return err;
}

JET_ERR JetInspectDiscardAfterDamage(const char *system_path, const char *log_path, const char *base,
                                     JET_INSPECT_DISCARD *out)
{
    jet_report_clear();
    struct ckpt_file ck;
    struct log_reader *rd = NULL;
    struct log_record rec;
    uint32_t *gens = NULL;
    size_t ngens = 0;
    char path[LOG_PATH_MAX], note[JET_PATH_MAX];
    uint64_t signature;
    lsn_t start, last_commit, damage;
    JET_ERR err, why;

    memset(out, 0, sizeof *out);
    if (!system_path || !log_path || !base || strlen(base) != 3)
        return jet_report(JET_errInvalidParameter, "discard: bad arguments");
    if ((err = discard_note_path(note, sizeof note, system_path, base)) < 0) return err;
    if (os_exists(note))
        return jet_report(JET_errInvalidParameter, "discard: %s exists: an earlier discard is not finished; run "
                                                   "recovery (jetutil recover) to complete it first", note);
    {
        char cp[JET_PATH_MAX], name[16];
        snprintf(name, sizeof name, "%s.chk", base);
        if ((err = os_join(cp, sizeof cp, system_path, name)) < 0) return err;
        if ((err = ckpt_read(cp, &ck)) < 0) return jet_report(err, "discard: %s: %s", cp, JetGetLastErrorDetail());
    }
    if ((err = log_list(log_path, base, &gens, &ngens)) < 0) return err;
    if (ngens == 0) {
        err = jet_report(JET_errMissingLogFile, "discard: no log generation of base '%s' in %s", base, log_path);
        goto out;
    }
    start = ck.lsn;
    signature = ck.log_signature;
    last_commit = start;
    if ((err = log_reader_open(log_path, base, start, signature, 0, &rd)) < 0) goto out;
    while ((err = log_reader_next(rd, &rec)) == JET_errSuccess)
        if (rec.type == LR_COMMIT) last_commit = rec.end;
    why = err;
    damage = log_reader_end(rd);
    log_reader_close(rd);
    rd = NULL;
    if (why >= 0) {
        out->found = 0; /* the log reads to its end: nothing to discard */
        err = JET_errSuccess;
        goto out;
    }
    if (why != JET_errLogFileCorrupt && why != JET_errInvalidLogSequence && why != JET_errBadLogSignature &&
        why != JET_errBadLogVersion) {
        err = why; /* not damage (an I/O error, a missing file): nothing to cut */
        goto out;
    }
    snprintf(out->reason, sizeof out->reason, "%s", JetGetLastErrorDetail());
    uint32_t gen = LSN_GEN(damage);
    lsn_t cut = last_commit;
    /* The pages must not already hold what the cut drops (step 3). */
    for (uint32_t i = 0; i < ck.ndbs; i++) {
        struct db_header h;
        int fd;
        if ((err = os_open(ck.dbs[i].path, OS_OPEN_READ, &fd)) < 0) {
            err = jet_report(err, "discard: %s cannot be opened: %s", ck.dbs[i].path, JetErrorString(err));
            goto out;
        }
        err = db_header_read(fd, ck.dbs[i].path, &h);
        os_close(fd);
        if (err < 0 || (err = check_pages(ck.dbs[i].path, h.page_size, cut)) < 0) goto out;
    }
    out->found = 1;
    out->generation = gen;
    out->damage_offset = LSN_OFF(damage);
    out->cut = cut;
    /* What is lost: commits readable after the cut in its generation (and
     * in the damaged one, if the cut is earlier), and in every later one. */
    for (size_t i = 0; i < ngens; i++) {
        if (gens[i] < LSN_GEN(cut)) continue;
        if (log_file_name(path, sizeof path, log_path, base, gens[i]) < 0) continue;
        uint32_t from = gens[i] == LSN_GEN(cut) ? LSN_OFF(cut) : LOG_HEADER_SIZE;
        out->commits_discarded += gens[i] == LSN_GEN(cut) ? count_commits_from(path, gens[i], from, signature)
                                                          : count_commits_gen(log_path, base, gens[i], signature);
        if (gens[i] > LSN_GEN(cut)) {
            if (!out->first_moved) out->first_moved = gens[i];
            out->last_moved = gens[i];
        }
    }
    /* Step 4: keep the original bytes, then cut. */
    for (size_t i = 0; i < ngens; i++) {
        char to[LOG_PATH_MAX + 16];
        if (gens[i] < LSN_GEN(cut)) continue;
        if ((err = log_file_name(path, sizeof path, log_path, base, gens[i])) < 0) goto out;
        snprintf(to, sizeof to, "%s.discarded", path);
        if (os_exists(to)) {
            err = jet_report(JET_errInvalidParameter, "discard: %s exists (an earlier discard's): move it away first",
                             to);
            goto out;
        }
    }
    if ((err = log_file_name(path, sizeof path, log_path, base, LSN_GEN(cut))) < 0) goto out;
    snprintf(out->saved, sizeof out->saved, "%s.discarded", path);
    if ((err = copy_file(path, out->saved)) < 0) {
        err = jet_report(err, "discard: copying %s to %s failed: %s", path, out->saved, JetErrorString(err));
        goto out;
    }
    for (size_t i = 0; i < ngens; i++) {
        char from[LOG_PATH_MAX], to[LOG_PATH_MAX + 16];
        if (gens[i] <= LSN_GEN(cut)) continue;
        if ((err = log_file_name(from, sizeof from, log_path, base, gens[i])) < 0) goto out;
        snprintf(to, sizeof to, "%s.discarded", from);
        if ((err = os_rename(from, to)) < 0) goto out;
    }
    if ((err = os_sync_dir(log_path)) < 0) goto out;
    {
        struct discard_note n = {gen, LSN_OFF(damage), cut, out->first_moved, out->last_moved,
                                 out->commits_discarded, os_now_us()};
        if ((err = note_write(note, &n)) < 0) goto out;
    }
    {
        int fd;
        uint64_t size = 0;
        if ((err = os_open(path, OS_OPEN_READ | OS_OPEN_WRITE, &fd)) < 0) goto out;
        if ((err = os_fsize(fd, &size)) >= 0) {
            uint8_t *z = calloc(1, 1u << 16);
            if (!z) err = JET_errOutOfMemory;
            for (uint64_t off = LSN_OFF(cut); err >= 0 && off < size;) {
                size_t k = size - off < (1u << 16) ? (size_t)(size - off) : (1u << 16);
                err = os_pwrite(fd, z, k, off);
                off += k;
            }
            free(z);
        }
        if (err >= 0) err = os_fsync(fd);
        os_close(fd);
        if (err < 0) {
            err = jet_report(err, "discard: cutting %s failed (its original is %s): %s", path, out->saved,
                             JetErrorString(err));
            goto out;
        }
    }
out:
    if (rd) log_reader_close(rd);
    free(gens);
    return err;
}
