/*
 * stop_point.h -- the stop point of a restore or a browse, as the programs
 * take it (`jetutil restore`, `jetutil export`, `jetfs browse`): one
 * parser, so the three accept the same words.
 *
 *   --stop-gen G         a log generation (decimal, or 0x... hex)
 *   --stop-time T        a commit time: whole seconds since the Unix epoch
 *                        (`date +%s`), or a UTC time as ISO 8601 writes it
 *                        (2026-12-08T01:57:20Z, the form status and the logs
 *                        print); in microseconds for the engine
 *                        (JetRestoreSets2, JetBrowseSets)
 *
 * Header-only: each program is one source file over the libraries.
 */
#ifndef JETFS_STOP_POINT_H
#define JETFS_STOP_POINT_H

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* 0 and *pgen, or -1 for text that is not a generation. */
static inline int stop_point_gen(const char *s, unsigned long *pgen)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || *s == '-') return -1;
    *pgen = v;
    return 0;
}

/* 0 and *pus (microseconds), or -1 for text that is not a time. */
static inline int stop_point_time(const char *s, unsigned long long *pus)
{
    char *end;
    struct tm tm = {0};
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end && !*end) {
        time_t t = timegm(&tm);
        if (t < 0) return -1;
        *pus = (unsigned long long)t * 1000000ull;
        return 0;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > 18446744073709ull) return -1;
    *pus = v * 1000000ull;
    return 0;
}

#endif
