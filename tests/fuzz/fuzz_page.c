/*
 * fuzz_page.c -- libFuzzer target: the checks every page read from disk
 * goes through (engine/page.c page_verify, engine/dbfile.c's header
 * decoder).  Arbitrary bytes must be refused or accepted, never crash, and
 * a page that verifies must carry the checksum it claims.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dbfile.h"
#include "page.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The page size follows the input's: a real page seeds its own size. */
    uint32_t ps = size >= 32768 ? 32768 : size >= 16384 ? 16384 : size >= 8192 ? 8192 : 4096;
    uint8_t *pg = calloc(1, ps);
    memcpy(pg, data, size < ps ? size : ps);
    if (page_verify(pg, ps, page_pgno(pg), "fuzz") >= 0 && !page_is_zero(pg, ps) &&
        page_checksum(pg, ps) != get_le64(pg))
        abort();
    struct db_header h;
    (void)db_header_decode(pg, &h, "fuzz", 0);
    /* The same bytes with a valid checksum: past it, into the fields. */
    page_seal(pg, ps);
    (void)page_verify(pg, ps, page_pgno(pg), "fuzz");
    (void)db_header_decode(pg, &h, "fuzz", 1);
    free(pg);
    return 0;
}
