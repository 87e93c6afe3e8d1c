/*
 * crashvfs.h -- an I/O seam (os.h) that loses power on cue, for crash tests
 * that run in-process and say exactly which writes a crash took.
 *
 * Wraps os_vfs_default().  Every pwrite and ftruncate is remembered, with
 * the bytes it replaced and the file size before it, until an fsync of the
 * same file (any descriptor of the inode: fdatasync flushes the inode, not
 * the descriptor) makes it durable.  At the armed point the crash takes, at
 * once, what a power cut could take:
 *
 *   CRASHVFS_DROP      every write not yet fsynced is lost: each file is put
 *                      back to its bytes and size at its last fsync;
 *   CRASHVFS_TEAR      the same, but one of those writes keeps a prefix cut
 *                      at a 512-byte (sector) boundary of the file;
 *   CRASHVFS_SCRAMBLE  each unsynced write survives or not at random, in any
 *                      order (writeback has no order), and one may be torn.
 *
 * Tears are chosen so the kept prefix stops before the write's last changed
 * byte: a "tear" that keeps every changed byte would tear nothing.  After
 * the crash every call fails with JET_errDiskIO (close still closes, so a
 * JetTerm that follows leaks no descriptor), and the instance stops; the
 * test ends it with JetTerm, calls crashvfs_uninstall, and opens it again.
 *
 * What it does not model: directory entries.  Renames, unlinks and file
 * creations are done at once and survive the crash (a file created since
 * the last directory sync is left, empty of its lost writes; a renamed file
 * keeps its new name).  That is what the engine's rename-then-sync_dir
 * steps need to be correct anyway, and what ext4 does in practice.
 *
 * Thread-safe: one mutex around all state (the engine's checkpointer and
 * log preparer write from their own threads).  Writes are performed under
 * it, fsyncs outside it; fsyncs of one file may overlap (the checkpointer's
 * and an evicting session's of the database), and each makes durable what
 * was written before it was called.  Install only while no instance runs
 * (os.h).
 *
 * Other faults (the Nth open, fsync, rename, ... failing, on the files a
 * suffix names) and watching the calls: testvfs.h, installed on top of
 * this one (crashvfs_install, then testvfs_install; down in reverse).
 */
#ifndef JET_CRASHVFS_H
#define JET_CRASHVFS_H

#include <stddef.h>
#include <stdint.h>

#include "jet.h"

enum crashvfs_mode { CRASHVFS_DROP = 0, CRASHVFS_TEAR = 1, CRASHVFS_SCRAMBLE = 2 };

/*
 * Which writes count toward the crash point (see crashvfs_arm); path is the
 * name the file was opened by.  Non-zero: counts.
 */
typedef int (*crashvfs_filter)(void *arg, const char *path, uint64_t off, size_t n);

/* Installs the VFS, unarmed, with nothing remembered. */
void crashvfs_install(void);
/*
 * Crashes right after the at-th counted call completes (at >= 1; that call
 * still returns its own result).  Without a filter every pwrite, ftruncate,
 * fsync and directory sync counts; with one, only the pwrites it accepts,
 * and in TEAR mode the at-th one is the write torn.  seed chooses what a
 * tear keeps and what SCRAMBLE keeps.  Restarts the count.
 */
void crashvfs_arm(long at, enum crashvfs_mode mode, uint64_t seed, crashvfs_filter filter, void *arg);
/*
 * Not a crash: the nth pwrite that filter accepts (counted from this call)
 * fails with err and writes nothing; everything else goes on.  A transient
 * EIO or ENOSPC, so a test can crash later, elsewhere.
 */
void crashvfs_fail_write(long nth, JET_ERR err, crashvfs_filter filter, void *arg);
/*
 * In TEAR mode, the write torn is the unsynced one at off of the file
 * whose name ends with suffix, if there is one that can be torn (else the
 * rule of crashvfs_arm).  NULL suffix: no preference.
 */
void crashvfs_tear_at(const char *suffix, uint64_t off);
/* Crashes now with the armed mode (DROP if never armed); 0 if it already had. */
int crashvfs_crash_now(void);
int crashvfs_crashed(void);
/* Counted calls since crashvfs_arm (or install). */
long crashvfs_calls(void);
/* Descriptors opened through the VFS and not closed yet. */
int crashvfs_open_fds(void);

/* What the crash took, for messages and for tests that need a real tear. */
struct crashvfs_report {
    long at_call;           /* the counted call it came after */
    int mode;
    unsigned files;         /* files that had unsynced writes */
    unsigned lost, kept;    /* unsynced writes lost / kept whole */
    int torn;               /* one write was torn: */
    char torn_path[1024];
    uint64_t torn_off;
    size_t torn_len, torn_kept;  /* its length and the prefix kept */
};
void crashvfs_report(struct crashvfs_report *r);

/* os_set_vfs(NULL), and forgets everything. */
void crashvfs_uninstall(void);

#endif
