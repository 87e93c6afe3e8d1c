/*
 * fuzz_manifest.c -- libFuzzer target: the backup manifest reader
 * (engine/manifest.c through restore.c, behind jetutil restore and verify,
 * reached through JetInspectSetUnlisted) over arbitrary manifest text.  The
 * first byte picks the mode: bit 0, the text as given, or (when it is a
 * JSON object) with its manifest_checksum made correct for its canonical
 * form, so the schema checks and file entries behind the checksum test are
 * reached too; bits 1-2, how that object is then laid out (indented,
 * compact, keys sorted, ASCII-only), as tools rewrite manifests.  It must
 * refuse or accept, never crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "jet_inspect.h"
#include "manifest.h"

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
    unsigned mode = size ? data[0] : 0;
    if (size) data++, size--;
    char *text = malloc(size + 1), *fixed = NULL;
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    size_t n = size;
    uint64_t sum = 0;
    if ((mode & 1) && manifest_text_checksum(text, size, &sum) >= 0) {
        static const size_t layouts[] = {JSON_INDENT(2), JSON_COMPACT, JSON_INDENT(4) | JSON_SORT_KEYS,
                                         JSON_COMPACT | JSON_ENSURE_ASCII};
        json_t *root = json_loadb(text, size, 0, NULL);
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
        if (root && json_object_set_new(root, "manifest_checksum", json_string(hex)) == 0)
            fixed = json_dumps(root, layouts[(mode >> 1) & 3]);
        json_decref(root);
    }
    if (fixed) {
        free(text);
        text = fixed;
        n = strlen(text);
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
