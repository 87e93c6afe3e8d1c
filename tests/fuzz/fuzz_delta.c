/*
 * fuzz_delta.c -- libFuzzer target: page deltas (engine/delta.c), which
 * redo decodes from every LR_DELTA record.  Two properties:
 *   - arbitrary bytes as a delta are refused or applied, never crash, and
 *     a delta that validates changes only bytes inside the ranges it names
 *     (never the checksum or the stamp);
 *   - the input split into two page versions encodes into a delta that
 *     turns the first into the second everywhere but those two fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delta.h"
#include "page.h"

#define PS 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t a[PS], b[PS], c[PS], enc[PS + 64];
    /* As a delta applied to a page of 0xA5. */
    memset(a, 0xA5, PS);
    unsigned nr = 0;
    size_t bytes = 0;
    if (delta_apply(a, PS, data, size, &nr, &bytes) >= 0) {
        for (unsigned i = 0; i < DELTA_STAMP_END; i++)
            if ((i < DELTA_FIRST_BYTE || i >= DELTA_STAMP_OFF) && a[i] != 0xA5) abort();
        if (bytes > PS) abort();
    }
    /* As two versions: the first half over a page of zeroes, the second
     * half over the first (or from zeroes when the input is odd). */
    memset(a, 0, PS);
    memset(b, 0, PS);
    size_t h = size / 2;
    memcpy(a, data, h < PS ? h : PS);
    memcpy(b, data + h, size - h < PS ? size - h : PS);
    const uint8_t *before = (size & 1) ? NULL : a;
    size_t n = delta_encode(before, b, PS, enc);
    if (n > delta_max_size(PS)) abort();
    if (before) memcpy(c, a, PS);
    else memset(c, 0, PS);
    if (delta_apply(c, PS, enc, n, NULL, NULL) < 0) abort();
    for (unsigned i = DELTA_FIRST_BYTE; i < PS; i++)
        if ((i < DELTA_STAMP_OFF || i >= DELTA_STAMP_END) && c[i] != b[i]) abort();
    return 0;
}
