/*
 * overlay.h -- files that read through to a read-only original and keep
 * every write privately (overlay.c), so a backup set can be replayed and
 * read without being written or copied (browse.c).
 *
 * An overlay owns a scratch directory.  ovl_map(o, path, original) makes
 * `path` (a name inside the scratch directory) a file whose bytes are the
 * original's, except where something wrote through the I/O seam: those
 * bytes live in the overlay, in memory up to a limit, then in an unlinked
 * spill file in the scratch directory.  The original is only ever opened
 * read-only.  An empty placeholder file stands at `path` so that whatever
 * lists the directory or tests for existence (log_list, os_exists) sees the
 * mapped file; every open, read, write, size, truncate, rename and unlink of
 * a mapped path goes to the overlay instead.  Files the engine creates in
 * the scratch directory without a mapping (the checkpoint, new log
 * generations) are ordinary files there.
 *
 * While any overlay exists, the overlay's table is the VFS in force
 * (os_set_vfs), over the one that was in force when the first was created;
 * paths outside every scratch directory pass through to it untouched.
 *
 * Locking: each overlay has one rwlock (LK_OVERLAY): reads of mapped files
 * share it, writes, opens and renames take it exclusively; the table of
 * open overlay descriptors has a mutex of its own (LK_OVERLAY_FDS), taken
 * under it or alone.  Neither is held across a call into the engine, so
 * both are leaves of the engine's lock order (engine/README.md).
 */
#ifndef JET_OVERLAY_H
#define JET_OVERLAY_H

#include <stdint.h>

#include "jet.h"

struct ovl;

/* Creates the scratch directory under parent (NULL: $TMPDIR, else /tmp),
 * "jetfs-browse.<pid>.XXXXXX", and an overlay of at most mem_limit bytes in
 * memory (0: 256 MiB).  Scratch directories there of processes that no
 * longer exist (a browse killed) are removed first. */
JET_ERR ovl_create(const char *parent, uint64_t mem_limit, struct ovl **po);
/* The scratch directory (absolute, resolved). */
const char *ovl_dir(const struct ovl *o);
/* Maps path (inside the scratch directory) onto original. */
JET_ERR ovl_map(struct ovl *o, const char *path, const char *original);
/* Bytes the overlay holds (what was written over the originals), and of
 * those how many are in the spill file. */
void ovl_usage(struct ovl *o, uint64_t *pbytes, uint64_t *pspilled);
/* Closes everything and deletes the scratch directory and all in it.  No
 * file of the overlay may be open any more. */
void ovl_destroy(struct ovl *o);

#endif /* JET_OVERLAY_H */
