/*
 * delta.c -- page deltas (format in delta.h).
 *
 * The encoder scans the two regions of a page version, [8, 16) and
 * [24, page_size), a block at a time while they agree, so the cost of a
 * one-cell change to an 8 KiB page is a few dozen vector compares.  A run of
 * fewer than DELTA_MERGE_GAP unchanged bytes does not end a range: it costs
 * less to carry them than to start another range.  The worst case (a
 * changed byte every DELTA_MERGE_GAP bytes) stays below page_size, so
 * delta_max_size is a bound the caller can allocate once.
 */
#include <string.h>

#include "delta.h"
#include "diag.h"
#include "page.h"

static const uint8_t zero_page[PAGE_SIZE_MAX];

size_t delta_max_size(uint32_t page_size) { return (size_t)page_size + 16u; }

/* First offset in [pos, end) where a and b differ, or end.  Most of a page
 * is unchanged: whole blocks go through libc's vectorised memcmp, and only
 * the block that differs is narrowed down. */
static uint32_t next_diff(const uint8_t *a, const uint8_t *b, uint32_t pos, uint32_t end)
{
    while (pos + 256 <= end && memcmp(a + pos, b + pos, 256) == 0) pos += 256;
    while (pos + 32 <= end && memcmp(a + pos, b + pos, 32) == 0) pos += 32;
    while (pos + 8 <= end) {
        uint64_t x, y;
        memcpy(&x, a + pos, 8);
        memcpy(&y, b + pos, 8);
        if (x != y) break;
        pos += 8;
    }
    while (pos < end && a[pos] == b[pos]) pos++;
    return pos;
}

static uint8_t *put_range(uint8_t *o, const uint8_t *after, uint32_t off, uint32_t len)
{
    put_le16(o, (uint16_t)off);
    put_le16(o + 2, (uint16_t)len);
    memcpy(o + DELTA_RANGE_HDR, after + off, len);
    return o + DELTA_RANGE_HDR + len;
}

static uint8_t *encode_region(const uint8_t *a, const uint8_t *b, uint32_t pos, uint32_t end, uint8_t *o,
                              unsigned *pn)
{
    for (;;) {
        uint32_t i = next_diff(a, b, pos, end);
        if (i == end) return o;
        uint32_t last = i, j = i + 1;
        while (j < end) {
            if (a[j] != b[j]) {
                last = j++;
                continue;
            }
            uint32_t g = next_diff(a, b, j, end);
            if (g == end || g - j >= DELTA_MERGE_GAP) break;
            j = g;
        }
        o = put_range(o, b, i, last + 1 - i);
        (*pn)++;
        pos = last + 1;
    }
}

size_t delta_encode(const uint8_t *before, const uint8_t *after, uint32_t page_size, uint8_t *out)
{
    const uint8_t *a = before ? before : zero_page;
    unsigned n = 0;
    uint8_t *o = out + DELTA_RANGES_HDR;
    o = encode_region(a, after, DELTA_FIRST_BYTE, DELTA_STAMP_OFF, o, &n);
    o = encode_region(a, after, DELTA_STAMP_END, page_size, o, &n);
    put_le16(out, (uint16_t)n);
    put_le16(out + 2, 0);
    return (size_t)(o - out);
}

JET_ERR delta_apply(uint8_t *page, uint32_t page_size, const uint8_t *d, size_t n, unsigned *pnranges,
                    size_t *pbytes)
{
    if (n < DELTA_RANGES_HDR || get_le16(d + 2) != 0)
        return jet_report(JET_errLogFileCorrupt, "delta: %zu bytes, no range header", n);
    unsigned nr = get_le16(d);
    size_t pos = DELTA_RANGES_HDR, bytes = 0;
    uint32_t prev_end = DELTA_FIRST_BYTE;
    /* Validate the whole delta before changing a byte. */
    for (unsigned i = 0; i < nr; i++) {
        if (pos + DELTA_RANGE_HDR > n) return jet_report(JET_errLogFileCorrupt, "delta: range %u cut short", i);
        uint32_t off = get_le16(d + pos), len = get_le16(d + pos + 2);
        if (len == 0 || off < prev_end || off + len > page_size ||
            (off < DELTA_STAMP_END && off + len > DELTA_STAMP_OFF) || pos + DELTA_RANGE_HDR + len > n)
            return jet_report(JET_errLogFileCorrupt, "delta: range %u [%u, +%u) is outside the page or out of order",
                              i, off, len);
        prev_end = off + len;
        pos += DELTA_RANGE_HDR + len;
        bytes += len;
    }
    if (pos != n) return jet_report(JET_errLogFileCorrupt, "delta: %zu bytes after the last range", n - pos);
    if (page) {
        pos = DELTA_RANGES_HDR;
        for (unsigned i = 0; i < nr; i++) {
            uint32_t off = get_le16(d + pos), len = get_le16(d + pos + 2);
            memcpy(page + off, d + pos + DELTA_RANGE_HDR, len);
            pos += DELTA_RANGE_HDR + len;
        }
    }
    if (pnranges) *pnranges = nr;
    if (pbytes) *pbytes = bytes;
    return JET_errSuccess;
}
