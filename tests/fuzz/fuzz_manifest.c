/*
 * fuzz_manifest.c -- libFuzzer target: the backup manifest reader
 * (engine/restore.c, behind jetutil restore and verify, reached through
 * JetInspectSetUnlisted) over arbitrary manifest text.  The first byte
 * picks the mode: the text as given, or with its checksum line made
 * correct, so the parser of ids, types and file entries behind the
 * checksum test is reached too.  It must refuse or accept, never crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "jet_inspect.h"

static char dir[4096];

static void note(void *arg, const char *path)
{
    (void)arg;
    (void)path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fuzz_manifest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) abort();
        /* A file for the manifest to list, or not. */
        char p[128];
        snprintf(p, sizeof p, "%s/edb00000001.log", dir);
        FILE *f = fopen(p, "wb");
        if (!f) abort();
        fputs("not a log", f);
        fclose(f);
    }
    bool fix = size && (data[0] & 1);
    if (size) data++, size--;
    char *text = malloc(size + 64);
    memcpy(text, data, size);
    size_t n = size;
    static const char key[] = "  \"manifest_checksum\": ";
    text[n] = '\0';
    char *ck = fix && memchr(text, '\0', n) == NULL ? strstr(text, key) : NULL;
    if (ck) {
        n = (size_t)(ck - text);
        n += (size_t)snprintf(ck, 64, "%s\"%016llx\"\n}\n", key, (unsigned long long)XXH3_64bits(text, n));
    }
    char path[128];
    snprintf(path, sizeof path, "%s/backup.manifest", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n) abort();
    fclose(f);
    (void)JetInspectSetUnlisted(dir, note, NULL);
    free(text);
    return 0;
}
