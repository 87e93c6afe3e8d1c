/*
 * resp_commands.h -- command execution over the engine API: the state of
 * one client connection, the state all connections share, and the entry
 * points the server calls.  Internal to src/resp.
 *
 * Mapping onto the engine: the table RESP_TABLE of the database maps a key
 * (1..JET_cbKeyMost bytes) to its value (0..JET_cbValueMost bytes); an
 * integer (INCR) is stored as its decimal text, as Redis does.  A key's
 * expiry is a row of RESP_EXPIRES_TABLE (resp_expire.c).  Each client has
 * its own engine session, database and table handles.
 *
 * Transactions: a write outside MULTI runs in its own engine transaction.
 * Its reply is appended first and removed if the commit fails; the commit is
 * lazy (JET_bitCommitLazyFlush) and marks the client unflushed, and the
 * server makes the client's last commit durable (resp_client_durable:
 * JET_bitWaitLastLevel0Commit) before it sends any byte of output.  So a
 * pipelined batch of writes shares one fsync, as Redis shares one per event
 * loop turn, and no reply ever leaves before the write it answers is on
 * disk.  A reply is never sent while a transaction is open.
 *
 * Write batching: the plain writes (SET, INCR, DEL, ...) of one pipelined
 * batch, one after another outside MULTI, run in one engine transaction,
 * committed when another kind of command comes, after RESP_BATCH_MAX
 * writes, and before any reply is sent or more input is read.  Other
 * clients see the batch's writes at once, when it commits, which is one of
 * the orders Redis allows (each write is still atomic, and this client's
 * own reads see them in order).  If the batch fails in the engine (a full
 * disk, a transaction outgrowing the cache), it rolls back whole, its
 * replies are removed, and its requests (copied as they joined; a request
 * larger than RESP_BATCH_BYTES runs on its own) run again one transaction
 * each, so every reply is exactly what it would have been.  Reads of
 * several keys (MGET, EXISTS with several keys, DBSIZE) also run inside a
 * transaction, which takes the engine's write lock, so they see one state;
 * they then roll back.  On a read-only server (a browsed backup) nothing
 * writes, so those transactions are the engine's read-only ones, without
 * the lock, and EXEC rolls back too.  MULTI queues commands; EXEC runs
 * them all in one engine transaction, unless a key WATCHed since changed
 * (resp_commands.c: version counters by key hash, bumped before every
 * write).
 */
#ifndef JETFS_RESP_COMMANDS_H
#define JETFS_RESP_COMMANDS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "jet.h"
#include "resp_auth.h"
#include "resp_parse.h"
#include "resp_reply.h"

#define RESP_VERSION "7.0.0-jetfs"
#define RESP_SCAN_CURSORS 1024 /* SCAN positions remembered server-wide */
#define RESP_DISABLED_MAX 16   /* --disable-command names */

/* A SCAN position: the last key a SCAN call looked at. */
struct resp_scan_cursor {
    uint64_t id; /* 0: free slot */
    unsigned char keylen;
    char key[JET_cbKeyMost];
};

#define RESP_WATCH_SLOTS 65536 /* WATCH's key version counters (resp_commands.c) */

/* A WATCHed key: its slot's version when WATCH ran. */
struct resp_watched {
    uint32_t slot;
    uint64_t ver;
};

/*
 * What every connection of one server shares.  Set once before the first
 * connection and read-only afterwards, except the atomics and what
 * cursor_mu protects.
 */
struct resp_shared {
    JET_INSTANCE inst;
    char *dbpath;
    struct resp_limits lim;
    int port;
    unsigned max_clients;
    void (*on_shutdown)(void *arg);
    void *on_shutdown_arg;
    time_t started;
    atomic_ullong commands;       /* requests executed */
    atomic_ullong connections;    /* connections accepted */
    atomic_ullong rejected;       /* refused: max_clients */
    atomic_uint clients;          /* connected now */
    atomic_ullong next_client_id;
    uint64_t watch_ver[RESP_WATCH_SLOTS]; /* WATCH: the serving thread's alone */
    pthread_mutex_t cursor_mu;    /* protects cursors[], next_cursor */
    uint64_t next_cursor;
    struct resp_scan_cursor cursors[RESP_SCAN_CURSORS];
    /* Access (resp_auth.c): the loop thread alone changes auth's log state. */
    struct resp_auth auth;
    const struct resp_command *disabled[RESP_DISABLED_MAX]; /* answer as unknown commands */
    size_t ndisabled;
    bool read_only;               /* resp_options.read_only: RESP_CMD_WRITES commands answer -READONLY */
    bool exp_table;               /* RESP_EXPIRES_TABLE exists (resp_expire.c): the serving thread's alone */
};

/* The expiry sweep's position (resp_expire.c): the last key it looked at. */
struct resp_sweep {
    unsigned long keylen; /* 0: from the first */
    char key[JET_cbKeyMost];
    unsigned long long reclaimed;
};

/* A command queued by MULTI: one allocation holding argv, len and bytes. */
struct resp_queued {
    const struct resp_command *cmd;
    size_t argc;
    char **argv;
    size_t *len;
};

/* One connection.  Used by its connection thread only. */
struct resp_client {
    struct resp_shared *sh;
    uint64_t id;
    JET_SESID ses;
    JET_DBID dbid;
    JET_TABLEID table;
    JET_TABLEID exp;              /* RESP_EXPIRES_TABLE, once it exists (resp_expire.c) */
    bool ses_open, db_open, table_open, exp_open;
    bool no_table;                /* read_only and the database has no RESP_TABLE: an empty keyspace */
    bool in_txn;                  /* an engine transaction is open */
    struct resp_buf out;          /* replies not yet sent */
    char *scratch;                /* values read from the table */
    size_t scratch_cap;
    bool in_multi, multi_dirty;   /* MULTI seen; a queued command was refused */
    struct resp_queued **queue;
    size_t nqueue, queue_cap, queue_bytes;
    bool quit;                    /* QUIT: close once the reply is sent */
    bool shutdown;                /* SHUTDOWN: close, no reply, then on_shutdown */
    char name[64];                /* CLIENT SETNAME */
    bool authenticated;           /* AUTH passed, or no password is set */
    char peer[64];                /* the client's address, for the log ("ip:port") */
    bool unflushed;               /* a lazy commit whose durability no reply has waited for yet */
    /* Write batching (resp_commands.c): consecutive writes of one pipelined
     * batch share one engine transaction. */
    bool batch;                   /* a batch transaction is open (in_txn too) */
    size_t batch_n;               /* writes in it */
    size_t batch_mark;            /* out.len when it began */
    bool no_batch;                /* replaying: each write in its own transaction */
    char *batch_saved;            /* the batch's requests, copied, for a replay */
    size_t saved_len, saved_cap;
    char lib_name[64], lib_ver[32]; /* CLIENT SETINFO */
    time_t since;                 /* connected at (CLIENT INFO's age) */
    struct resp_watched *watched; /* WATCH, until EXEC, DISCARD or UNWATCH */
    size_t nwatched, watched_cap;
};

/* Commits the open write batch (lazily, as every write).  If it cannot, it
 * rolls back, its replies are removed and its requests run again one by
 * one, each answering for itself. */
void resp_batch_end(struct resp_client *c);

/* Commits the open transaction lazily (see above). */
JET_ERR resp_commit(struct resp_client *c);
/* Waits until the client's commits are durable; false if they cannot be
 * (the instance failed): its pending replies must then never be sent. */
bool resp_client_durable(struct resp_client *c);

typedef JET_ERR (*resp_command_fn)(struct resp_client *c, size_t argc, char **argv, size_t *len);

struct resp_command {
    const char *name;   /* lower case */
    int arity;          /* n: exactly n arguments (name included); -n: at least n */
    unsigned flags;     /* RESP_CMD_* */
    resp_command_fn fn; /* < 0: engine failure (reply not yet written) */
};

#define RESP_CMD_WRITE 0x1      /* runs in a transaction that commits */
#define RESP_CMD_READ_TXN 0x2   /* runs in a transaction that rolls back */
#define RESP_CMD_READ_MANY 0x4  /* ... when it names more than one key */
#define RESP_CMD_NO_MULTI 0x8   /* refused between MULTI and EXEC */
#define RESP_CMD_NOW 0x10       /* executed at once even between MULTI and EXEC */
#define RESP_CMD_NO_DATA 0x20   /* needs no session: answered even once the instance failed */
#define RESP_CMD_NO_AUTH 0x40   /* allowed before AUTH (AUTH, QUIT); every other command answers NOAUTH */
#define RESP_CMD_TTL 0x100      /* may set an expiry: RESP_EXPIRES_TABLE is created before it runs */
#define RESP_CMD_WRITES 0x80    /* changes data: answers -READONLY on a read-only server (FLUSHDB has it
                                   without RESP_CMD_WRITE: it commits its own transactions) */

/* Makes sure RESP_TABLE exists in dbpath (attached to inst).  With
 * read_only it is only looked for, never created: its absence is no error
 * (the server then serves an empty keyspace) and *absent says so. */
JET_ERR resp_table_ensure(JET_INSTANCE inst, const char *dbpath, bool read_only, bool *absent, char *why,
                          size_t cbwhy);
/* Begins the transaction a command reads in: read-only (no write lock) on
 * a read-only server, where nothing writes. */
JET_ERR resp_read_txn_begin(struct resp_client *c);
/* Opens the client's session and handles; on failure *why says why. */
JET_ERR resp_client_open(struct resp_client *c, struct resp_shared *sh, char *why, size_t cbwhy);
/* Rolls back what is open, closes the handles, frees the buffers. */
void resp_client_close(struct resp_client *c);
/* The command named name (case-insensitive), or NULL. */
const struct resp_command *resp_command_by_name(const char *name);
/* Executes one request (argc >= 1; every argv[i] is followed by a NUL).
 * Before AUTH only RESP_CMD_NO_AUTH commands run; a disabled command
 * (--disable-command) answers as an unknown one, as Redis's renamed-away
 * commands do. */
void resp_execute(struct resp_client *c, size_t argc, char **argv, size_t *len);

/* ---- shared between resp_commands.c and resp_keyspace.c ---- */

/* Appends "-ERR ..." for an engine error (with the engine's detail). */
void resp_reply_engine_error(struct resp_client *c, const char *what, JET_ERR err);
/* A usable key, else replies the error and returns false. */
bool resp_key_ok(struct resp_client *c, const char *key, size_t n);
bool resp_arg_is(const char *arg, const char *word);
/* Glob match (*, ?, [a-z], [^x], \x), linear in practice: one backtrack point. */
bool resp_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase);
/* Keys in the table, counted inside the client's transaction. */
JET_ERR resp_count_keys(struct resp_client *c, long long *count);

/* ---- resp_strings.c: the string family, key and expiry commands ---- */

/* A value of an acceptable size, else replies the error and returns false. */
bool resp_value_ok(struct resp_client *c, size_t n);
/* Whether the request may set an expiry (RESP_CMD_TTL and an EX... word). */
bool resp_wants_ttl(const struct resp_command *cmd, size_t argc, char **argv);
JET_ERR resp_cmd_get(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_set(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_setex(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_setnx(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_getset(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_getdel(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_getex(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_strlen(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_getrange(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_setrange(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_append(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_incr(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_decr(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_incrby(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_decrby(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_incrbyfloat(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_mset(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_mget(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_del(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_exists(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_type(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_rename(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_expire(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_persist(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_ttl(struct resp_client *c, size_t argc, char **argv, size_t *len);

JET_ERR resp_cmd_keys(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_randomkey(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_dbsize(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_scan(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR resp_cmd_flushdb(struct resp_client *c, size_t argc, char **argv, size_t *len);

/* ---- resp_expire.c: key expiry (format and rules in its header comment) ---- */

#define RESP_EXPIRES_TABLE "redis_expires"

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long resp_now_ms(void);
/* At connection open: the handle on RESP_EXPIRES_TABLE, if it exists. */
JET_ERR resp_exp_client_open(struct resp_client *c);
/* Opens the client's handle on RESP_EXPIRES_TABLE (c->exp_open) if the
 * table exists; none is no error. */
JET_ERR resp_exp_open(struct resp_client *c);
/* Creates RESP_EXPIRES_TABLE if needed (outside any transaction). */
JET_ERR resp_exp_create(struct resp_client *c);
/* key's deadline (ms since the epoch), 0 when it has none. */
JET_ERR resp_exp_get(struct resp_client *c, const char *key, size_t klen, long long *deadline);
/* Sets it (the table must exist: resp_exp_create). */
JET_ERR resp_exp_set(struct resp_client *c, const char *key, size_t klen, long long deadline);
/* Removes it (none is no error). */
JET_ERR resp_exp_clear(struct resp_client *c, const char *key, size_t klen);
/* Whether a deadline (0: none) has passed. */
bool resp_exp_due(long long deadline);
/* For a write: if key's deadline has passed, deletes the key and its
 * deadline (*deadline then 0); else *deadline is its deadline or 0. */
JET_ERR resp_exp_reap(struct resp_client *c, const char *key, size_t klen, long long *deadline);
/* For a read: false when key has expired (whether it exists is not looked at). */
JET_ERR resp_exp_live(struct resp_client *c, const char *key, size_t klen, bool *live);
/* Rows of RESP_EXPIRES_TABLE (INFO's expires=). */
JET_ERR resp_exp_count(struct resp_client *c, long long *count);
/* Reclaims some expired keys (c: the server's own sweeping client). */
JET_ERR resp_expire_sweep(struct resp_client *c, struct resp_sweep *sw);

/* ---- resp_client.c: the connection commands (the table's names) ---- */

/*
 * Decides a login (HELLO's AUTH option; user NULL: AUTH's one-argument
 * form).  True if it succeeds; else the error (Redis's text) is replied
 * and nothing about the connection changes.  With no password configured
 * it answers as Redis does then: the one-argument form is refused, user
 * "default" is accepted with any password, any other user is WRONGPASS.
 */
bool resp_client_auth(struct resp_client *c, const char *user, size_t ulen, const char *pass, size_t plen);
JET_ERR cmd_ping(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR cmd_echo(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR cmd_select(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR cmd_quit(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR cmd_client(struct resp_client *c, size_t argc, char **argv, size_t *len);
JET_ERR cmd_hello(struct resp_client *c, size_t argc, char **argv, size_t *len);

#endif
