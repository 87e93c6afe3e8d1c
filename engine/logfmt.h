/*
 * logfmt.h -- what log.c (the writer) and log_reader.c (the reader) both
 * need of the generation file format (log.h has the contract, log.c's
 * header comment the design): path room, the read chunk, record framing
 * and checksums, and the header decoder.  Internal to the two.
 */
#ifndef JET_LOGFMT_H
#define JET_LOGFMT_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "log.h"

/* Room for a directory of JET_PATH_MAX plus a file name. */
#define LOG_PATH_MAX 1100
/* The reader's window, and the chunk size for hashing and zero checks. */
#define LOG_READ_CHUNK (1u << 20)

/* XXH3's streaming calls fail only for a NULL state. */
static inline void xxh_ok(XXH_errorcode rc)
{
    assert(rc == XXH_OK);
    (void)rc;
}

/* Bytes a record with an n-byte payload occupies in the file. */
static inline uint32_t rec_total(uint32_t n) { return LOG_REC_HDR_SIZE + ((n + 7u) & ~7u); }

/*
 * The record checksum: bytes [0, 16) of its header, then the payload given
 * as pieces, seeded with the log signature so that records of another
 * stream never verify.
 */
static inline uint64_t rec_checksum(uint64_t signature, const uint8_t *hdr, const struct iovec *iov, int iovcnt)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    xxh_ok(XXH3_64bits_reset_withSeed(&st, signature));
    xxh_ok(XXH3_64bits_update(&st, hdr, 16));
    for (int i = 0; i < iovcnt; i++) xxh_ok(XXH3_64bits_update(&st, iov[i].iov_base, iov[i].iov_len));
    return XXH3_64bits_digest(&st);
}

static inline bool all_zero(const uint8_t *p, size_t n)
{
    /* p[i] == p[i+1] for all i and p[0] == 0: one memcmp instead of a loop. */
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Decodes and checks a generation header read from path (magic, checksum,
 * version, sane values); reported through jet_report. */
JET_ERR log_header_decode(const uint8_t *b, const char *path, struct log_header *h);

#endif /* JET_LOGFMT_H */
