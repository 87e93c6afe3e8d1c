/*
 * delta.h -- byte-range deltas between two versions of a page: what an
 * LR_DELTA log record carries (logrec.h), encoded by commit and applied by
 * redo.  Pure functions over buffers: no I/O, no locks.
 *
 * Encoding (little-endian), after the record's fixed fields:
 *   u16 nranges, u16 reserved (0), then nranges times:
 *     u16 off, u16 len, len bytes (the new contents of [off, off + len))
 * Ranges are in increasing offset order, do not overlap, lie inside
 * [DELTA_FIRST_BYTE, page_size), and never touch the page's stamp
 * (bytes [16, 24), set by redo from the record's own position) -- the
 * checksum bytes [0, 8) are not part of a page version either: pages are
 * sealed when written.  Unchanged runs shorter than DELTA_MERGE_GAP between
 * two changes are carried inside one range, as a range header costs 4.
 */
#ifndef JET_DELTA_H
#define JET_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "jet.h"

#define DELTA_FIRST_BYTE 8u
#define DELTA_STAMP_OFF 16u
#define DELTA_STAMP_END 24u
#define DELTA_MERGE_GAP 8u
#define DELTA_RANGES_HDR 4u
#define DELTA_RANGE_HDR 4u

/* The most bytes delta_encode can write for one page of page_size bytes. */
size_t delta_max_size(uint32_t page_size);

/*
 * Writes into out (room for delta_max_size bytes) the ranges that turn
 * before (NULL: a page of zeroes) into after; returns the bytes written.
 * When every byte changed the delta is one range per side of the stamp.
 */
size_t delta_encode(const uint8_t *before, const uint8_t *after, uint32_t page_size, uint8_t *out);

/*
 * Checks that d[0, n) is a well-formed delta for pages of page_size bytes
 * (ranges in order, inside the page, clear of the stamp, nothing left
 * over) and, when page is not NULL, applies it.  JET_errLogFileCorrupt on
 * a malformed delta, applying nothing; *pnranges (may be NULL) gets the
 * number of ranges and *pbytes (may be NULL) the bytes they carry.
 */
JET_ERR delta_apply(uint8_t *page, uint32_t page_size, const uint8_t *d, size_t n, unsigned *pnranges,
                    size_t *pbytes);

#endif /* JET_DELTA_H */
