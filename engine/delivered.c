/*
 * delivered.c -- which closed log generations a backup reader has already
 * read whole (see delivered.h for why).
 *
 * Owns: the file <system path>/<base>.delivered, kept with the instance
 * (never with a mount), so it survives restarts and remounts.  It is text,
 * small enough to read whole:
 *
 *   jetfs-delivered 1 <log signature, 16 hex digits>\n
 *   <generation, decimal> <XXH3-64 of the whole file, 16 hex digits>\n
 *   ...                                 (ascending generations)
 *   end <XXH3-64 of every byte above, 16 hex digits>\n
 *
 * Invariants:
 *  - An entry names a generation by signature, number and content hash, so
 *    a restored or re-created instance whose generation N holds other bytes
 *    never inherits N's delivery.
 *  - The file is replaced atomically; a crash leaves the old or the new
 *    record.  A record that cannot be read is treated as empty: the cost is
 *    one more backup that must read everything, never a log deleted that
 *    no backup holds (truncation still needs a completed backup).
 *
 * Locking: none; backup.c calls it under inst->backup_mu.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "delivered.h"
#include "diag.h"
#include "instance.h"
#include "os.h"

#define DLV_MAGIC "jetfs-delivered"
#define DLV_VERSION 1
#define DLV_MAX_BYTES (4u << 20)

JET_ERR dlv_path(char *buf, size_t cb, const char *system_path, const char *base)
{
    char name[32];
    snprintf(name, sizeof name, "%s.delivered", base);
    return os_join(buf, cb, system_path, name);
}

void dlv_free(struct dlv_record *rec)
{
    free(rec->e);
    rec->e = NULL;
    rec->n = 0;
}

static long find(const struct dlv_record *rec, uint32_t gen)
{
    size_t lo = 0, hi = rec->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rec->e[mid].gen < gen) lo = mid + 1;
        else hi = mid;
    }
    return lo < rec->n && rec->e[lo].gen == gen ? (long)lo : -(long)lo - 1;
}

int dlv_has(const struct dlv_record *rec, uint32_t gen, uint64_t hash)
{
    long i = find(rec, gen);
    return i >= 0 && rec->e[i].hash == hash;
}

JET_ERR dlv_add(struct dlv_record *rec, uint32_t gen, uint64_t hash)
{
    long i = find(rec, gen);
    if (i >= 0) {
        rec->e[i].hash = hash;
        return JET_errSuccess;
    }
    size_t at = (size_t)(-i - 1);
    struct dlv_entry *ne = realloc(rec->e, (rec->n + 1) * sizeof *ne);
    if (!ne) return JET_errOutOfMemory;
    rec->e = ne;
    memmove(&ne[at + 1], &ne[at], (rec->n - at) * sizeof *ne);
    ne[at] = (struct dlv_entry){gen, hash};
    rec->n++;
    return JET_errSuccess;
}

void dlv_prune(struct dlv_record *rec, uint32_t keep_from)
{
    size_t k = 0;
    while (k < rec->n && rec->e[k].gen < keep_from) k++;
    if (!k) return;
    memmove(rec->e, rec->e + k, (rec->n - k) * sizeof *rec->e);
    rec->n -= k;
}

/* Parses text (NUL-terminated) into rec; a reason into why on failure. */
static int parse(char *text, size_t len, uint64_t log_signature, struct dlv_record *rec, char *why, size_t cbwhy)
{
    /* The last line is "end <hash>\n". */
    char *nl = len > 1 ? memrchr(text, '\n', len - 1) : NULL;
    char *end = nl ? nl + 1 : text;
    unsigned long long stored = 0, sig = 0;
    int version = 0, used = 0;
    if (!len || text[len - 1] != '\n' || sscanf(end, "end %16llx\n%n", &stored, &used) != 1 ||
        (size_t)(end - text) + (size_t)used != len) {
        snprintf(why, cbwhy, "it does not end with its checksum line");
        return -1;
    }
    if (XXH3_64bits(text, (size_t)(end - text)) != stored) {
        snprintf(why, cbwhy, "its checksum does not match its contents");
        return -1;
    }
    used = 0;
    if (sscanf(text, DLV_MAGIC " %d %16llx\n%n", &version, &sig, &used) != 2 || !used) {
        snprintf(why, cbwhy, "it does not begin with \"" DLV_MAGIC "\"");
        return -1;
    }
    if (version != DLV_VERSION) {
        snprintf(why, cbwhy, "it is format version %d, this engine reads %d", version, DLV_VERSION);
        return -1;
    }
    if (sig != log_signature) {
        snprintf(why, cbwhy, "it belongs to log signature %016llx, the instance's is %016" PRIx64, sig, log_signature);
        return -1;
    }
    for (char *p = text + used; p < end;) {
        unsigned long gen = 0;
        unsigned long long hash = 0;
        int n = 0;
        if (sscanf(p, "%lu %16llx\n%n", &gen, &hash, &n) != 2 || !n || !gen || gen > UINT32_MAX) {
            snprintf(why, cbwhy, "line %.20s is not \"<generation> <hash>\"", p);
            return -1;
        }
        if (dlv_add(rec, (uint32_t)gen, hash) < 0) {
            snprintf(why, cbwhy, "out of memory");
            return -1;
        }
        p += n;
    }
    return 0;
}

JET_ERR dlv_load(const char *path, uint64_t log_signature, struct dlv_record *rec)
{
    int fd = -1;
    char *text = NULL;
    char why[256] = "";
    uint64_t size = 0;
    memset(rec, 0, sizeof *rec);
    rec->log_signature = log_signature;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err == JET_errFileNotFound) return JET_errSuccess;
    if (err >= 0) err = os_fsize(fd, &size);
    if (err >= 0 && size > DLV_MAX_BYTES) {
        snprintf(why, sizeof why, "it is %" PRIu64 " bytes, more than a record can be", size);
        goto ignored;
    }
    if (err >= 0 && !(text = malloc((size_t)size + 1))) err = JET_errOutOfMemory;
    if (err >= 0) err = os_pread_full(fd, text, (size_t)size, 0);
    if (err < 0) {
        snprintf(why, sizeof why, "it cannot be read: %s", JetErrorString(err));
        goto ignored;
    }
    text[size] = '\0';
    if (strlen(text) != size) {
        snprintf(why, sizeof why, "it holds a NUL byte");
        goto ignored;
    }
    if (parse(text, (size_t)size, log_signature, rec, why, sizeof why) < 0) goto ignored;
    err = JET_errSuccess;
    goto out;
ignored:
    dlv_free(rec);
    err = jet_report(JET_wrnDeliveredRecordIgnored,
                     "%s: the record of delivered log generations is ignored (%s); the next backup reads them all",
                     path, why);
out:
    if (fd >= 0) os_close(fd);
    free(text);
    return err;
}

JET_ERR dlv_save(const char *path, const struct dlv_record *rec)
{
    size_t cap = 64 + rec->n * 32, n = 0;
    char *text = malloc(cap);
    JET_ERR err;
    if (!text) return JET_errOutOfMemory;
    n += (size_t)snprintf(text + n, cap - n, DLV_MAGIC " %d %016" PRIx64 "\n", DLV_VERSION, rec->log_signature);
    for (size_t i = 0; i < rec->n; i++)
        n += (size_t)snprintf(text + n, cap - n, "%" PRIu32 " %016" PRIx64 "\n", rec->e[i].gen, rec->e[i].hash);
    n += (size_t)snprintf(text + n, cap - n, "end %016" PRIx64 "\n", (uint64_t)XXH3_64bits(text, n));
    err = os_replace_file(path, text, n);
    free(text);
    if (err < 0) return jet_report(err, "%s: recording the delivered log generations failed: %s", path, JetErrorString(err));
    return err;
}
