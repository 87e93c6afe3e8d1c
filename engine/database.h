/*
 * database.h -- an attached database file and its backup snapshot.
 *
 * database.c creates, attaches, detaches, opens and closes database files
 * (the instance's dbs[], under instance.mu).  A database's snap_lock
 * (LK_SNAP) guards its backup snapshot: readers of the snapshot take it
 * shared, every page write exclusive (snapshot.h).
 */
#ifndef JET_DATABASE_H
#define JET_DATABASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbfile.h"
#include "instance.h"

struct snapshot;

struct db {
    uint32_t dbidx;
    pthread_rwlock_t snap_lock;
    struct snapshot *snap;
    char path[JET_PATH_MAX];
    int fd;
    struct db_header hdr;
    int opens;               /* JetOpenDatabase count over all sessions */
    int table_cursors;       /* open cursors, for JetDetach / TableInUse */
    bool attached;
    bool read_only;          /* attached with JET_bitDbReadOnly: updates are JET_errPermissionDenied */
};


struct db *db_alloc(void);
void db_release(struct db *db);
JET_ERR db_open_file(struct jet_instance *inst, const char *path, uint32_t dbidx, struct db **pdb);
JET_ERR db_close_file(struct jet_instance *inst, struct db *db, bool clean);
JET_ERR db_detach_all(struct jet_instance *inst, bool clean);
void db_close_session(struct session *s);

#endif /* JET_DATABASE_H */
