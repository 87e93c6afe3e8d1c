/*
 * checkpoint.c -- the checkpoint file and the background checkpointer.
 *
 * The checkpoint file (<system path>/<base>.chk) names the oldest log
 * position crash recovery needs and the databases attached at that moment.
 * It is replaced atomically (temporary file, fsync, rename, directory
 * fsync), so it is always either the old or the new checkpoint.  Layout
 * (little-endian, 4096 bytes):
 *
 *   0   u64 checksum       XXH3_64bits of bytes [8, 4096)
 *   8   u32 magic          CKPT_MAGIC
 *   12  u32 version
 *   16  u64 log_signature
 *   24  u64 lsn            recovery starts here
 *   32  u32 ndbs
 *   36  u32 gen_seen       the log's current generation when it was written
 *                          (0 in files written before it was kept): a
 *                          restart that finds fewer generations was robbed
 *                          of the newest one
 *   40  ndbs x { u32 dbidx, u32 path length, u64 db_signature, path }
 *
 * A checkpoint cycle (ckpt_run) writes every dirty page out (log first),
 * fsyncs the database files, then moves the checkpoint.  With circular
 * logging it then deletes generations wholly below the checkpoint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "checkpoint.h"
#include "database.h"
#include "diag.h"
#include "instance.h"
#include "lockrank.h"
#include "os.h"
#include "page.h"

#define CKPT_MAGIC 0x54504B43u /* "CKPT" */
#define CKPT_VERSION 1u
#define CKPT_SIZE 4096u

JET_ERR ckpt_path(const struct jet_instance *inst, char *buf, size_t cb)
{
    char name[16];
    snprintf(name, sizeof name, "%s.chk", inst->p.base);
    return os_join(buf, cb, inst->p.system_path, name);
}

JET_ERR ckpt_read(const char *path, struct ckpt_file *ck)
{
    uint8_t b[CKPT_SIZE];
    int fd;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) return err;
    uint64_t size = 0;
    err = os_fsize(fd, &size);
    if (err >= 0) err = os_pread_full(fd, b, sizeof b, 0);
    os_close(fd);
    if (err < 0) return err;
    if (size != CKPT_SIZE || get_le32(b + 8) != CKPT_MAGIC)
        return jet_report(JET_errCheckpointCorrupt, "%s: not a checkpoint file (size %llu, magic %08x)", path,
                          (unsigned long long)size, get_le32(b + 8));
    uint64_t stored = get_le64(b), computed = XXH3_64bits(b + 8, CKPT_SIZE - 8);
    if (stored != computed)
        return jet_report(JET_errCheckpointCorrupt, "%s: checksum mismatch: stored %016llx, computed %016llx", path,
                          (unsigned long long)stored, (unsigned long long)computed);
    memset(ck, 0, sizeof *ck);
    ck->log_signature = get_le64(b + 16);
    ck->lsn = get_le64(b + 24);
    ck->ndbs = get_le32(b + 32);
    ck->gen_seen = get_le32(b + 36);
    if (ck->ndbs > JET_MAX_DBS)
        return jet_report(JET_errCheckpointCorrupt, "%s: %u databases listed (at most %d)", path, ck->ndbs,
                          JET_MAX_DBS);
    size_t off = 40;
    for (uint32_t i = 0; i < ck->ndbs; i++) {
        if (off + 16 > CKPT_SIZE) return jet_report(JET_errCheckpointCorrupt, "%s: database list overflows", path);
        uint32_t len = get_le32(b + off + 4);
        if (len >= JET_PATH_MAX || off + 16 + len > CKPT_SIZE)
            return jet_report(JET_errCheckpointCorrupt, "%s: database path %u too long", path, i);
        ck->dbs[i].dbidx = get_le32(b + off);
        ck->dbs[i].db_signature = get_le64(b + off + 8);
        memcpy(ck->dbs[i].path, b + off + 16, len);
        ck->dbs[i].path[len] = '\0';
        off += 16 + len;
    }
    return JET_errSuccess;
}

JET_ERR ckpt_write(const char *path, const struct ckpt_file *ck)
{
    uint8_t b[CKPT_SIZE];
    JET_ERR err;
    memset(b, 0, sizeof b);
    put_le32(b + 8, CKPT_MAGIC);
    put_le32(b + 12, CKPT_VERSION);
    put_le64(b + 16, ck->log_signature);
    put_le64(b + 24, ck->lsn);
    put_le32(b + 32, ck->ndbs);
    put_le32(b + 36, ck->gen_seen);
    size_t off = 40;
    for (uint32_t i = 0; i < ck->ndbs; i++) {
        size_t len = strlen(ck->dbs[i].path);
        if (off + 16 + len > CKPT_SIZE) return jet_report(JET_errInvalidPath, "checkpoint: database paths too long");
        put_le32(b + off, ck->dbs[i].dbidx);
        put_le32(b + off + 4, (uint32_t)len);
        put_le64(b + off + 8, ck->dbs[i].db_signature);
        memcpy(b + off + 16, ck->dbs[i].path, len);
        off += 16 + len;
    }
    put_le64(b, XXH3_64bits(b + 8, CKPT_SIZE - 8));
    if ((err = os_replace_file(path, b, sizeof b)) < 0)
        return jet_report(err, "%s: writing the checkpoint failed: %s", path, JetErrorString(err));
    return err;
}

/* Fills ck with the instance's attached databases.  Context: inst->mu. */
static void ckpt_fill(struct jet_instance *inst, struct ckpt_file *ck, lsn_t lsn)
{
    memset(ck, 0, sizeof *ck);
    ck->log_signature = inst->log_signature;
    ck->lsn = lsn;
    ck->gen_seen = inst->log ? log_current_generation(inst->log) : 0;
    for (uint32_t d = 0; d < JET_MAX_DBS; d++) {
        struct db *db = inst->dbs[d];
        if (!db || !db->attached) continue;
        ck->dbs[ck->ndbs].dbidx = d;
        ck->dbs[ck->ndbs].db_signature = db->hdr.db_signature;
        snprintf(ck->dbs[ck->ndbs].path, JET_PATH_MAX, "%s", db->path);
        ck->ndbs++;
    }
}

JET_ERR ckpt_note_attached(struct jet_instance *inst)
{
    struct ckpt_file ck;
    char path[JET_PATH_MAX];
    JET_ERR err;
    if (!inst->log) return JET_errSuccess;
    if ((err = ckpt_path(inst, path, sizeof path)) < 0) return err;
    lk_mutex_lock(&inst->ckpt_mu, LK_CKPT);
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    ckpt_fill(inst, &ck, inst->checkpoint_lsn);
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    err = ckpt_write(path, &ck);
    lk_mutex_unlock(&inst->ckpt_mu, LK_CKPT);
    return err;
}

JET_ERR ckpt_run(struct jet_instance *inst)
{
    JET_ERR err;
    lsn_t lsn = 0;
    struct ckpt_file ck;
    char path[JET_PATH_MAX];
    if (!inst->log) return cache_flush_all(&inst->cache, NULL);
    lk_mutex_lock(&inst->ckpt_mu, LK_CKPT);
    err = cache_flush_all(&inst->cache, &lsn);
    if (err < 0) goto out;
    if (lsn <= inst->checkpoint_lsn) goto out;
    if ((err = ckpt_path(inst, path, sizeof path)) < 0) goto out;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    ckpt_fill(inst, &ck, lsn);
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    if ((err = ckpt_write(path, &ck)) < 0) goto out;
    /* The position moves and the backup pin is read in one step (backup.c
     * chooses its set under the same lock). */
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    inst->checkpoint_lsn = lsn;
    uint32_t pin = inst->backup_pin_gen;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    if (inst->p.circular) {
        uint32_t *gens = NULL;
        size_t n = 0;
        if (log_list(inst->p.log_path, inst->p.base, &gens, &n) >= 0) {
            for (size_t i = 0; i < n; i++)
                /* Never a generation a running backup holds. */
                if (gens[i] < LSN_GEN(lsn) && (!pin || gens[i] < pin))
                    log_delete_generation(inst->p.log_path, inst->p.base, gens[i]);
            free(gens);
        }
    }
out:
    lk_mutex_unlock(&inst->ckpt_mu, LK_CKPT);
    return err;
}

/*
 * Rewrites the checkpoint at the position it already has, to record the
 * log's new current generation (gen_seen): a restart that finds the newest
 * generation gone then refuses instead of starting without its commits.
 */
static void ckpt_note_generation(struct jet_instance *inst)
{
    struct ckpt_file ck;
    char path[JET_PATH_MAX];
    lk_mutex_lock(&inst->ckpt_mu, LK_CKPT);
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    lsn_t lsn = inst->checkpoint_lsn;
    if (lsn) ckpt_fill(inst, &ck, lsn);
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    /* A failure leaves the older record: the next cycle writes it again. */
    if (lsn && ckpt_path(inst, path, sizeof path) >= 0 && ckpt_write(path, &ck) < 0)
        fprintf(stderr, "jet: %s\n", JetGetLastErrorDetail());
    lk_mutex_unlock(&inst->ckpt_mu, LK_CKPT);
}

void ckpt_generation_closed(void *arg, uint32_t generation, uint64_t hash, uint64_t close_us)
{
    struct jet_instance *inst = arg;
    (void)generation, (void)hash, (void)close_us;
    /* A wakeup lost to the race with the wait costs one period, no more. */
    atomic_store(&inst->ckpt_note_gen, true);
    pthread_cond_broadcast(&inst->ckpt_cv);
}

/* Generation notes are written at most this often: under a heavy load the
 * log rolls many times a second, and each note is two fsyncs that the
 * commits' fsyncs would queue behind. */
#define NOTE_MIN_INTERVAL_MS 1000u

static struct timespec realtime_after_ms(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return ts;
}

static bool ts_reached(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void *ckpt_main(void *arg)
{
    struct jet_instance *inst = arg;
    uint64_t last_note_us = 0;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    while (!inst->ckpt_stop) {
        struct timespec period = realtime_after_ms(inst->p.ckpt_period_ms);
        /* A closed generation is noted soon (within NOTE_MIN_INTERVAL_MS);
         * the cycle keeps its period, or runs early when kicked. */
        while (!inst->ckpt_stop && !inst->ckpt_kicked) {
            struct timespec until = period;
            if (atomic_load(&inst->ckpt_note_gen)) {
                uint64_t since = os_mono_us() - last_note_us;
                if (since >= NOTE_MIN_INTERVAL_MS * 1000u) {
                    atomic_store(&inst->ckpt_note_gen, false);
                    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
                    if (!atomic_load(&inst->unavailable)) ckpt_note_generation(inst);
                    lk_mutex_lock(&inst->mu, LK_INSTANCE);
                    last_note_us = os_mono_us();
                    continue;
                }
                struct timespec next = realtime_after_ms((NOTE_MIN_INTERVAL_MS * 1000u - since) / 1000u + 1);
                if (next.tv_sec < until.tv_sec || (next.tv_sec == until.tv_sec && next.tv_nsec < until.tv_nsec))
                    until = next;
            }
            if (pthread_cond_timedwait(&inst->ckpt_cv, &inst->mu, &until) == ETIMEDOUT && ts_reached(&period)) break;
        }
        inst->ckpt_kicked = false;
        if (inst->ckpt_stop) break;
        lk_mutex_unlock(&inst->mu, LK_INSTANCE);
        if (!atomic_load(&inst->unavailable)) {
            JET_ERR err = ckpt_run(inst);
            /* A failed checkpoint loses nothing (the log still holds every
             * change); the next cycle retries the page writes.  Only log
             * failures are fatal, and ckpt_run reports those itself. */
            (void)err;
        }
        lk_mutex_lock(&inst->mu, LK_INSTANCE);
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    return NULL;
}

JET_ERR ckpt_start_thread(struct jet_instance *inst)
{
    inst->ckpt_stop = false;
    if (pthread_create(&inst->ckpt_thread, NULL, ckpt_main, inst) != 0) return JET_errOutOfMemory;
    inst->ckpt_running = true;
    return JET_errSuccess;
}

void ckpt_stop_thread(struct jet_instance *inst)
{
    if (!inst->ckpt_running) return;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    inst->ckpt_stop = true;
    pthread_cond_broadcast(&inst->ckpt_cv);
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    pthread_join(inst->ckpt_thread, NULL);
    inst->ckpt_running = false;
}

void ckpt_kick(struct jet_instance *inst)
{
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    inst->ckpt_kicked = true;
    pthread_cond_broadcast(&inst->ckpt_cv);
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
}

JET_ERR ckpt_throttle(struct jet_instance *inst)
{
    /* Commits install dirty pages without writing anything back, so a
     * fast writer could outrun the periodic checkpointer and grow the
     * cache without bound.  Past a quarter of the cache dirty, wake the
     * checkpointer; past the whole cache, write back here, so the writer
     * is slowed to the disk's pace instead. */
    size_t cap = 0;
    size_t dirty = cache_dirty_pages(&inst->cache, &cap);
    if (dirty > cap / 4) ckpt_kick(inst);
    if (dirty > cap) return ckpt_run(inst);
    return JET_errSuccess;
}
