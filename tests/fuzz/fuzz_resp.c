/*
 * fuzz_resp.c -- libFuzzer target: the RESP request parser
 * (src/resp/resp_parse.c) over arbitrary client bytes, fed whole and then
 * in pieces as a socket would deliver them.  Every request it accepts must
 * lie inside the input, its arguments NUL-terminated where it says.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp_parse.h"

static void parse_all(const uint8_t *data, size_t size, size_t piece)
{
    struct resp_limits lim;
    resp_limits_default(&lim);
    lim.max_bulk = 1 << 16;
    lim.max_inline = 1 << 12;
    lim.max_request = 1 << 18;
    struct resp_parser p;
    resp_parser_init(&p, &lim);
    char *buf = malloc(size + 1);
    size_t have = 0, start = 0;
    while (have < size || start < have) {
        size_t add = size - have < piece ? size - have : piece;
        memcpy(buf + have, data + have, add);
        have += add;
        enum resp_parse_result r = resp_parse(&p, buf + start, have - start);
        if (r == RESP_PARSE_ERROR) break;
        if (r == RESP_PARSE_MORE) {
            if (have == size) break;
            continue;
        }
        assert(p.consumed > 0 && p.consumed <= have - start);
        for (size_t i = 0; i < p.argc; i++) {
            assert(p.off[i] + p.len[i] <= p.consumed);
            assert(buf[start + p.off[i] + p.len[i]] == '\0' || p.off[i] + p.len[i] == p.consumed);
        }
        start += p.consumed;
        resp_parser_reset(&p);
    }
    resp_parser_free(&p);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_all(data, size, size ? size : 1);
    parse_all(data, size, 7);
    return 0;
}
