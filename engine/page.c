/*
 * page.c -- page checksums and verification (format in page.h).
 */
#include <string.h>

#include "page.h"

#include <xxhash.h>

#include "diag.h"

void page_init(uint8_t *pg, uint32_t page_size, uint32_t pgno, uint8_t type)
{
    memset(pg, 0, page_size);
    put_le32(pg + 8, pgno);
    pg[12] = type;
}

uint64_t page_checksum(const uint8_t *pg, uint32_t page_size)
{
    return XXH3_64bits(pg + 8, page_size - 8);
}

void page_seal(uint8_t *pg, uint32_t page_size)
{
    put_le64(pg, page_checksum(pg, page_size));
}

int page_is_zero(const uint8_t *pg, uint32_t page_size)
{
    /* Every byte equals the one after it and the first is zero: memcmp's
     * vector loop, where a byte loop showed in replay profiles (a replay
     * meets every page an insert allocated as zeros). */
    return page_size && pg[0] == 0 && memcmp(pg, pg + 1, page_size - 1) == 0;
}

int page_size_valid(uint32_t page_size)
{
    return page_size == 4096 || page_size == 8192 || page_size == 16384 || page_size == 32768;
}

JET_ERR page_verify(const uint8_t *pg, uint32_t page_size, uint32_t expected_pgno, const char *file)
{
    uint64_t stored = get_le64(pg);
    uint64_t computed = page_checksum(pg, page_size);
    if (stored != computed) {
        if (page_is_zero(pg, page_size))
            return jet_report(JET_errPageNotInitialized, "%s: page %u was never written (all zero)",
                              file ? file : "database", expected_pgno);
        return jet_report(JET_errReadVerifyFailure,
                          "%s: page %u checksum mismatch: stored %016llx, computed %016llx",
                          file ? file : "database", expected_pgno, (unsigned long long)stored,
                          (unsigned long long)computed);
    }
    if (page_pgno(pg) != expected_pgno)
        return jet_report(JET_errReadVerifyFailure, "%s: page %u carries page number %u (misdirected write)",
                          file ? file : "database", expected_pgno, page_pgno(pg));
    return JET_errSuccess;
}
