/*
 * page.h -- the on-disk page format shared by every page of a database file.
 *
 * A database file is an array of fixed-size pages (page_size bytes, a power
 * of two from 4 KiB to 32 KiB).  Page numbers 0 and 1 hold the two copies
 * of the database header (dbfile.h); every other page starts with this
 * 32-byte header:
 *
 *   offset size  field
 *   0      8     checksum: XXH3_64bits of bytes [8, page_size)
 *   8      4     pgno: the page's own number (catches misdirected I/O)
 *   12     1     type (PAGE_T_*)
 *   13     1     flags (owner-defined)
 *   14     2     nslots (B+tree: number of entries)
 *   16     8     lsn: log position of the last change to this page
 *   24     4     aux1 (B+tree: right sibling; overflow/free: next page)
 *   28     4     aux2 (B+tree branch: leftmost child; overflow: bytes used)
 *   32     ...   body, owned by the page's user (btree.c, cache.c's meta page)
 *
 * All integers are little-endian.  A page that is all zeroes was never
 * written (JET_errPageNotInitialized); any other page whose checksum or pgno
 * does not match is JET_errReadVerifyFailure.  Neither is ever data.
 *
 * Only the pager (cache.c) seals pages (page_seal) and stamps lsn; page
 * users edit the body and the type/flags/nslots/aux fields.
 */
#ifndef JET_PAGE_H
#define JET_PAGE_H

#include <stdint.h>
#include <string.h>

#include "jet.h"

#define PAGE_HDR_SIZE 32u
#define PAGE_SIZE_MIN 4096u
#define PAGE_SIZE_MAX 32768u
#define PAGE_SIZE_DEFAULT 8192u

enum page_type {
    PAGE_T_NONE = 0,
    PAGE_T_META = 1,     /* pgno 2: allocation state and the catalog root */
    PAGE_T_BRANCH = 2,
    PAGE_T_LEAF = 3,
    PAGE_T_OVERFLOW = 4,
    PAGE_T_FREE = 5,
};

static inline uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p) { return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32; }
static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void put_le64(uint8_t *p, uint64_t v) { put_le32(p, (uint32_t)v); put_le32(p + 4, (uint32_t)(v >> 32)); }

static inline uint32_t page_pgno(const uint8_t *pg) { return get_le32(pg + 8); }
static inline uint8_t page_type(const uint8_t *pg) { return pg[12]; }
static inline uint8_t page_flags(const uint8_t *pg) { return pg[13]; }
static inline uint16_t page_nslots(const uint8_t *pg) { return get_le16(pg + 14); }
static inline uint64_t page_lsn(const uint8_t *pg) { return get_le64(pg + 16); }
static inline uint32_t page_aux1(const uint8_t *pg) { return get_le32(pg + 24); }
static inline uint32_t page_aux2(const uint8_t *pg) { return get_le32(pg + 28); }
static inline void page_set_type(uint8_t *pg, uint8_t t) { pg[12] = t; }
static inline void page_set_flags(uint8_t *pg, uint8_t f) { pg[13] = f; }
static inline void page_set_nslots(uint8_t *pg, uint16_t n) { put_le16(pg + 14, n); }
static inline void page_set_lsn(uint8_t *pg, uint64_t lsn) { put_le64(pg + 16, lsn); }
static inline void page_set_aux1(uint8_t *pg, uint32_t v) { put_le32(pg + 24, v); }
static inline void page_set_aux2(uint8_t *pg, uint32_t v) { put_le32(pg + 28, v); }

/* Zeroes the page and writes pgno and type. */
void page_init(uint8_t *pg, uint32_t page_size, uint32_t pgno, uint8_t type);
/* Computes and stores the checksum. */
void page_seal(uint8_t *pg, uint32_t page_size);
/* The checksum the page should carry. */
uint64_t page_checksum(const uint8_t *pg, uint32_t page_size);
/*
 * Verifies a page read from disk: JET_errPageNotInitialized when all zero,
 * JET_errReadVerifyFailure on a checksum or pgno mismatch (reported through
 * jet_report with the file name and page number), else success.
 */
JET_ERR page_verify(const uint8_t *pg, uint32_t page_size, uint32_t expected_pgno, const char *file);
int page_is_zero(const uint8_t *pg, uint32_t page_size);
int page_size_valid(uint32_t page_size);

#endif /* JET_PAGE_H */
