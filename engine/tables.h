/*
 * tables.h -- cursors over tables (tables.c).
 *
 * A cursor remembers its position by key, not by page, so a commit that
 * splits or merges pages under it never leaves it pointing at stale bytes.
 */
#ifndef JET_TABLES_H
#define JET_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance.h"

struct cursor {
    JET_TABLEID handle;
    struct session *s;
    uint32_t dbidx;
    char name[JET_cbNameMost + 1];
    uint32_t root;
    uint8_t key[JET_cbKeyMost];
    size_t klen;
    bool has_current;
    bool opened_in_txn;  /* opened in the session's current transaction: closed if it rolls back */
};

void tables_close_session(struct session *s);
/* After a transaction ends: a rollback closes the tables opened in it. */
void tables_end_txn(struct session *s, bool rolled_back);
void cursor_close_for_session(struct cursor *c);

#endif /* JET_TABLES_H */
