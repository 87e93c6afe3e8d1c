/*
 * delivered.h -- the record of log generations already delivered whole to
 * a backup reader (delivered.c).
 *
 * A closed generation never changes, so a backup tool that skips a file it
 * already holds (restic's parent snapshot, borg's files cache, rsync into
 * one destination) has the same bytes an earlier session served.  The
 * record lets a later backup count such a generation as copied even though
 * this session never read it.
 */
#ifndef JET_DELIVERED_H
#define JET_DELIVERED_H

#include <stddef.h>
#include <stdint.h>

#include "jet.h"

struct dlv_entry {
    uint32_t gen;
    uint64_t hash;   /* XXH3-64 of the whole generation file */
};

struct dlv_record {
    uint64_t log_signature;
    struct dlv_entry *e;   /* sorted by gen, unique */
    size_t n;
};

/* "<system path>/<base>.delivered" into buf. */
JET_ERR dlv_path(char *buf, size_t cb, const char *system_path, const char *base);

/*
 * Reads the record at path into *rec (caller frees with dlv_free).  A
 * missing file is an empty record; so is a damaged one or one of another
 * log signature, since losing the record costs at most one more aborted
 * backup: JET_wrnDeliveredRecordIgnored (> 0) says so, with the reason in
 * JetGetLastErrorDetail().
 */
#define JET_wrnDeliveredRecordIgnored 1
JET_ERR dlv_load(const char *path, uint64_t log_signature, struct dlv_record *rec);
/* Whether generation gen with this hash was delivered. */
int dlv_has(const struct dlv_record *rec, uint32_t gen, uint64_t hash);
/* Adds (or replaces) an entry. */
JET_ERR dlv_add(struct dlv_record *rec, uint32_t gen, uint64_t hash);
/* Drops the entries below generation keep_from (deleted generations). */
void dlv_prune(struct dlv_record *rec, uint32_t keep_from);
/* Replaces the file atomically (temporary, fsync, rename, directory fsync). */
JET_ERR dlv_save(const char *path, const struct dlv_record *rec);
void dlv_free(struct dlv_record *rec);

#endif
