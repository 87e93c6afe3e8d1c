/*
 * manifest.h -- a backup set's backup.manifest: its writer (backup.c,
 * JetGetBackupManifestInstance) and its reader (restore.c, restore and
 * verify).  Nothing else knows the manifest's text; the format, the
 * canonical form its checksum covers and the choice of JSON library are
 * described at the top of manifest.c.  Pure functions over memory: no I/O,
 * no locks.
 */
#ifndef JET_MANIFEST_H
#define JET_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jet.h"

/* The only "format" this build writes and reads. */
#define MANIFEST_FORMAT 1
/* A listed name is a file name inside the set (NAME_MAX). */
#define MANIFEST_NAME_MAX 255

struct manifest_db {
    const char *name;
    uint32_t dbidx;
    uint64_t signature;
    /* Where the database was when backed up, for a restore to its original
     * path (JetRestoreInstance with no destination).  NULL: not recorded
     * (a set from a build before it was, or a path that is not UTF-8). */
    const char *path;
};

struct manifest_file {
    const char *name;
    uint64_t size;
    bool has_xxh3; /* logs carry one; a database's pages carry their own checksums */
    uint64_t xxh3;
};

struct manifest {
    uint32_t format;
    uint64_t backup_id, predecessor_id; /* predecessor 0: none (a full or copy) */
    char type[16];                      /* "full", "incremental", "differential" or "copy" */
    char begin_time[40];                /* UTC, as os_utc writes it */
    uint64_t begin_us;
    uint64_t log_signature;
    char log_base[JET_BASE_NAME_LENGTH + 1];
    uint32_t gen_low, gen_high;
    uint32_t ndbs, nfiles;
    struct manifest_db *dbs;     /* malloc'd (manifest_free) */
    struct manifest_file *files; /* malloc'd (manifest_free) */
    void *json;                  /* parsed: the tree the names point into */
};

/*
 * The text of m, checksum included, NUL-terminated, in *ptext (malloc'd,
 * the caller frees it); *plen is its length without the NUL.  m->json is
 * not used.  JET_errInvalidParameter, reported naming the value, if one
 * cannot be written (a name empty, too long, holding '/' or not UTF-8, an
 * unknown type, a number past 2^63); JET_errOutOfMemory.
 */
JET_ERR manifest_write(const struct manifest *m, char **ptext, size_t *plen);

/*
 * Parses and checks the manifest text[0, len) read from path (path only
 * names it in messages): JSON, its checksum over the canonical form, then
 * every member of the format present, of its type and nothing else.  On
 * success m holds its values (manifest_free); on failure m holds nothing
 * and JET_errInvalidBackup is reported naming path and what is wrong.
 */
JET_ERR manifest_parse(const char *text, size_t len, const char *path, struct manifest *m);
/* manifest_parse of the file at path (at most 16 MiB), a file that cannot
 * be read said as such. */
JET_ERR manifest_read(const char *path, struct manifest *m);

/*
 * The checksum the manifest text[0, len) should carry: XXH3-64 of the
 * canonical form of its JSON object, whatever its own manifest_checksum
 * member says.  JET_errInvalidBackup if the text is not a JSON object.
 * For tests and tools that edit a manifest on purpose.
 */
JET_ERR manifest_text_checksum(const char *text, size_t len, uint64_t *psum);

/*
 * The set's manifest also goes under a name of its own backup, so that
 * successive sets copied into one directory (rsync, rclone, cp, tar
 * extracted in order) keep every session's manifest beside the last one's
 * backup.manifest:
 *     backup.<UTC begin, YYYYMMDDTHHMMSS.uuuuuuZ>-<backup id, 16 hex>.manifest
 * Stable for a backup (its begin and id never change), unique across
 * backups, and sorted by name in begin order.  Writes it into buf (at least
 * MANIFEST_SESSION_NAME_MAX + 1 bytes).
 */
#define MANIFEST_SESSION_NAME_MAX 64
void manifest_session_name(char *buf, size_t n, uint64_t begin_us, uint64_t backup_id);
/* Whether name is a manifest's: backup.manifest or backup.<anything>.manifest. */
bool manifest_is_name(const char *name);

/* The entry of "files" named name, or NULL. */
const struct manifest_file *manifest_find(const struct manifest *m, const char *name);

/* Frees what manifest_parse allocated; m may be zeroed or already freed. */
void manifest_free(struct manifest *m);

#endif
