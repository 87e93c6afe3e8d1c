/*
 * chain.h -- the chain of backups that the directories given to a restore
 * hold, read from every manifest in them (chain.c; restore.c and browse use
 * it through restore_sets, jetutil's warnings through
 * JetInspectSetsUnused).
 */
#ifndef JET_CHAIN_H
#define JET_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance.h"
#include "manifest.h"

/* One backup's manifest, read from one of the directories given. */
struct chain_manifest {
    struct manifest mf; /* checked (manifest_parse); manifest_free */
    int set;            /* the directory it was read from (index into the sets given) */
    char *path;         /* its file (malloc'd) */
    bool on_chain;      /* chain_order: a link of the chain to restore */
};

/* A file the chain uses, where it is taken from. */
struct chain_file {
    char *from;         /* malloc'd */
    const char *name;   /* the name the manifest lists (into the manifest) */
    int set;            /* 0 for the full's files, else the directory it is taken from */
    bool is_db;
    uint64_t size, xxh3;
    bool has_xxh3;
    size_t link;        /* the manifest listing it (index into ms) */
};

struct chain_plan {
    bool legacy;                  /* a directory holds no manifest: restore takes the sets as given */
    struct chain_manifest *ms;    /* every backup read, once each (by id) */
    size_t nms;
    char **mpaths;                /* every manifest file read ... */
    size_t *mof, nmpaths;         /* ... and the backup in ms it holds */
    size_t *order, norder;        /* the chain: the full (or copy) first, then each link */
    struct chain_file *files;     /* what the chain uses, in chain order */
    size_t nfiles;
};

/*
 * Orders ms[0, n) into the chain to restore: the newest backup that is not
 * a full or copy (or, when there is none, the newest full or copy of the
 * first set), then its predecessor, and so on back to a full or copy read
 * from the first set (set 0).  order receives the indices from the full to
 * that newest one (n entries at most), *norder their count, and each link
 * is marked on_chain; any other backup (an aborted session, one of another
 * chain) is left off.  Refused, saying which backups the missing set falls
 * between (their generations and begin times and ids):
 * JET_errMissingFullBackup when the first set holds no full or copy,
 * JET_errInvalidBackupSequence when the newest backup's predecessors do
 * not lead to one.  Pure: no I/O.
 */
JET_ERR chain_order(struct chain_manifest *ms, size_t n, size_t *order, size_t *norder);

/*
 * Reads every manifest (backup.manifest, backup.<begin>-<id>.manifest) in
 * the directories sets[0, nsets), orders them (chain_order), and finds each
 * file the chain's manifests list in whichever directory holds it (the
 * manifest's own first), checked against the listing: its size, and with
 * verify its xxh3.  p->legacy (and nothing else) when a directory holds no
 * manifest.  Refused naming the file and the manifest that lists it: a
 * file in no directory (JET_errMissingRestoreLogFiles), or no copy that
 * matches (JET_errLogFileCorrupt, JET_errBadBackupDatabaseSize).
 */
JET_ERR chain_plan(const char *const *sets, int nsets, bool verify, struct chain_plan *p);
void chain_plan_free(struct chain_plan *p);

/* Each regular file in the sets that the plan does not use, with why. */
void chain_each_unused(const struct chain_plan *p, const char *const *sets, int nsets,
                       void (*report)(void *arg, const char *path, const char *why), void *arg);

#endif /* JET_CHAIN_H */
