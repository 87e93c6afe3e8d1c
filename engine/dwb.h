/*
 * dwb.h -- the double-write file: whole copies of the database pages about
 * to be written in place, made durable first, so that a page torn by a
 * crash in the middle of its in-place write can be put back whole.  The log
 * holds only deltas (logrec.h), and a delta cannot be applied to half a
 * page.  This is InnoDB's doublewrite buffer; it keeps the cost of torn-page
 * protection in the checkpoint, off the commit path and out of the log (and
 * so out of every incremental backup).
 *
 * Protocol, for every batch of in-place page writes (dwb_lock held from the
 * stage to the end of the batch):
 *   1. dwb_stage: the pages, sealed, go to <system path>/<base>.dwb with the
 *      database files' paths and signatures, then fdatasync;
 *   2. the caller writes each dwb_image in place;
 *   3. the caller fsyncs those database files -- before the next stage
 *      overwrites the copies.
 * So at any instant a page being written in place has an intact copy
 * either in its database file (the old version: step 2 not begun) or in
 * the double-write file (step 1 finished).  A crash during step 1 leaves a
 * file that fails its checksums: it is ignored, and no page was touched.
 *
 * After a crash, recovery reads the staged copies (dwb_load) and takes one
 * in place of a page that does not verify when redo first reads that page:
 * every page being written in place had a change after the checkpoint, so
 * redo reads it.  Before recovery's own first write (which overwrites the
 * file) it puts back every such page on disk (dwb_repair), so a crash in
 * the middle of recovery loses no copy; a recovery refused before it
 * writes anything changes no file.  A page that verifies is never
 * replaced, so a repair can only turn a torn page into the version being
 * written.  The file is emptied at a clean shutdown and after a successful
 * recovery.
 *
 * Layout (little-endian):
 *   0   u64 checksum   XXH3_64bits of bytes [8, hdr_len)
 *   8   u32 magic      DWB_MAGIC, 12 u32 version, 16 u32 page_size,
 *   20  u32 npages,    24 u32 ndbs, 28 u32 hdr_len (a multiple of page_size)
 *   32  ndbs x { u64 db_signature, u16 path length, path }
 *   ..  npages x { u32 db (index in the list above), u32 pgno }
 *   hdr_len  npages page images, each sealed (page.h)
 */
#ifndef JET_DWB_H
#define JET_DWB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jet.h"

/* Most pages one stage holds; larger batches are written in rounds. */
#define DWB_MAX_PAGES 512u

struct dwb;

struct dwb_page {
    uint64_t db_signature;
    const char *db_path;
    uint32_t pgno;
    const uint8_t *image;   /* the version to write (sealed by dwb_stage) */
};

/* "<system path>/<base>.dwb" into buf. */
JET_ERR dwb_path(char *buf, size_t cb, const char *system_path, const char *base);
/* Creates (or empties) the file at path for pages of page_size bytes. */
JET_ERR dwb_open(const char *path, uint32_t page_size, struct dwb **pd);
/* Closes; with remove, deletes the file too (every batch finished). */
JET_ERR dwb_close(struct dwb *d, bool remove);
void dwb_lock(struct dwb *d);
void dwb_unlock(struct dwb *d);
/* Step 1 for n <= DWB_MAX_PAGES pages.  Context: dwb_lock. */
JET_ERR dwb_stage(struct dwb *d, const struct dwb_page *pages, size_t n);
/* The sealed copy of staged page i, to write in place. */
const uint8_t *dwb_image(const struct dwb *d, size_t i);
/*
 * Puts back from the double-write file at path every staged page whose
 * database copy does not verify.  A missing or torn double-write file is
 * not an error (nothing was being written in place).  *prepaired gets the
 * number of pages put back.
 */
JET_ERR dwb_repair(const char *path, uint32_t page_size, unsigned *prepaired);

/* A staged copy that verifies, for a recovery that uses them in memory. */
struct dwb_copy {
    uint64_t db_signature;
    uint32_t pgno;
    uint8_t *image;
};
/* The verifying staged copies of the file at path (none if it is missing,
 * empty or torn); free with dwb_free_copies. */
JET_ERR dwb_load(const char *path, uint32_t page_size, struct dwb_copy **pv, size_t *pn);
void dwb_free_copies(struct dwb_copy *v, size_t n);

#endif /* JET_DWB_H */
