/*
 * fuzz_log.c -- libFuzzer target: the log reader (engine/log.c) and the
 * record decoder behind jetutil logs (engine/inspect.c) over a damaged
 * generation file.  The first byte picks the mode: the input as the whole
 * file, or as the records of a generation with a valid header whose every
 * well-framed record gets a valid checksum (so the reader's framing,
 * length and position checks and the decoders of each record type are
 * reached, not only the checksum test).  Whatever the bytes, the reader
 * ends, errs or reports a torn tail; it never crashes or reads past them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "jet_inspect.h"
#include "log.h"
#include "page.h"

#define FILE_SIZE (64u * 1024u)
#define SIG 0x5eed5eed5eed5eedull

static char dir[4096];
static uint8_t header[LOG_HEADER_SIZE];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz_log.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) abort();
    struct log_config cfg = {.dir = dir, .base = "edb", .file_size = FILE_SIZE, .page_size = 8192, .signature = SIG};
    struct jet_log *log;
    if (log_open(&cfg, 1, &log) < 0 || log_close(log) < 0) abort();
    char path[128];
    snprintf(path, sizeof path, "%s/edb00000001.log", dir);
    FILE *f = fopen(path, "rb");
    if (!f || fread(header, 1, sizeof header, f) != sizeof header) abort();
    fclose(f);
}

static int count(void *arg, const JET_INSPECT_LOGRECORD *rec)
{
    (void)rec;
    ++*(long *)arg;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) setup();
    static uint8_t file[FILE_SIZE];
    memset(file, 0, sizeof file);
    bool framed = size && (data[0] & 1);
    if (size) data++, size--;
    if (!framed) {
        memcpy(file, data, size < FILE_SIZE ? size : FILE_SIZE);
    } else {
        memcpy(file, header, LOG_HEADER_SIZE);
        size_t n = size < FILE_SIZE - LOG_HEADER_SIZE ? size : FILE_SIZE - LOG_HEADER_SIZE;
        memcpy(file + LOG_HEADER_SIZE, data, n);
        /* Frame what can be framed: the record's own position, and the
         * checksum of its header's first 16 bytes and its payload. */
        for (uint32_t off = LOG_HEADER_SIZE; off + LOG_REC_HDR_SIZE <= FILE_SIZE;) {
            uint8_t *p = file + off;
            uint32_t len = get_le32(p);
            if (len > FILE_SIZE - off - LOG_REC_HDR_SIZE) break;
            put_le64(p + 8, LSN_MAKE(1, off));
            XXH3_state_t st;
            XXH3_INITSTATE(&st);
            XXH3_64bits_reset_withSeed(&st, SIG);
            XXH3_64bits_update(&st, p, 16);
            XXH3_64bits_update(&st, p + LOG_REC_HDR_SIZE, len);
            put_le64(p + 16, XXH3_64bits_digest(&st));
            off += LOG_REC_HDR_SIZE + ((len + 7u) & ~7u);
        }
    }
    char path[128];
    snprintf(path, sizeof path, "%s/edb00000001.log", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(file, 1, sizeof file, f) != sizeof file) abort();
    fclose(f);
    long n = 0;
    int torn = 0;
    (void)JetInspectLogRecords(dir, "edb", 0, 0, count, &n, &torn);
    struct log_reader *rd;
    if (log_reader_open(dir, "edb", LSN_MAKE(1, LOG_HEADER_SIZE), SIG, 0, &rd) >= 0) {
        struct log_record rec;
        while (log_reader_next(rd, &rec) == JET_errSuccess) {
            if (LSN_OFF(rec.lsn) < LOG_HEADER_SIZE || LSN_OFF(rec.end) > FILE_SIZE) abort();
        }
        log_reader_close(rd);
    }
    return 0;
}
