/*
 * checkpoint.h -- the checkpoint file and the checkpointer (checkpoint.c).
 *
 * One cycle at a time (ckpt_mu, LK_CKPT): capture the dirty set and the log
 * end under commit_lock, write the pages, fsync, then record the oldest log
 * position recovery still needs.  Also the write-back throttle commits run.
 */
#ifndef JET_CHECKPOINT_H
#define JET_CHECKPOINT_H

#include <stdint.h>

#include "instance.h"

struct ckpt_file {
    uint64_t log_signature;
    lsn_t lsn;
    uint32_t gen_seen;        /* the log's current generation when written (0: not recorded) */
    uint32_t ndbs;
    struct {
        uint32_t dbidx;
        uint64_t db_signature;
        char path[JET_PATH_MAX];
    } dbs[JET_MAX_DBS];
};
JET_ERR ckpt_path(const struct jet_instance *inst, char *buf, size_t cb);
JET_ERR ckpt_read(const char *path, struct ckpt_file *ck);
JET_ERR ckpt_write(const char *path, const struct ckpt_file *ck);
/* Rewrites the checkpoint file at its position with the databases attached
 * now, so a recovery that finds no log still knows which files need one.
 * Context: no instance lock held (takes ckpt_mu, then inst.mu). */
JET_ERR ckpt_note_attached(struct jet_instance *inst);
/* One checkpoint cycle: flush, write the checkpoint file, circular cleanup. */
JET_ERR ckpt_run(struct jet_instance *inst);
JET_ERR ckpt_start_thread(struct jet_instance *inst);
void ckpt_stop_thread(struct jet_instance *inst);
/* Wakes the checkpointer before its period ends. */
void ckpt_kick(struct jet_instance *inst);
/* After a commit: wakes or runs write-back when too much of the cache is
 * dirty (the policy that keeps a fast writer from outrunning checkpoints). */
JET_ERR ckpt_throttle(struct jet_instance *inst);
/* The log's on_close: has the checkpointer record the new generation.
 * Takes no lock (it may run inside an append made under inst->mu). */
void ckpt_generation_closed(void *inst, uint32_t generation, uint64_t hash, uint64_t close_us);

#endif /* JET_CHECKPOINT_H */
