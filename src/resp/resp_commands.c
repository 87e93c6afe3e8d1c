/*
 * resp_commands.c -- the command table, dispatch (arity, MULTI queueing,
 * the transaction around each command, the expiry table created before the
 * first command that sets an expiry) and the server commands (INFO,
 * CONFIG, COMMAND, SHUTDOWN).  The string, key and expiry commands are in
 * resp_strings.c, whole-table commands in resp_keyspace.c, connection
 * commands (HELLO, CLIENT...) in resp_client.c.
 *
 * Owns: struct resp_client's engine handles and MULTI queue.  A client is
 * used by its connection thread only; the shared server state is reached
 * through c->sh (atomics, and cursor_mu in resp_keyspace.c).
 *
 * Invariants:
 *   1. c->in_txn is true exactly while an engine transaction is open on
 *      c->ses; it is opened and closed within one resp_execute call, so a
 *      transaction never outlives a request and replies are never sent
 *      while one is open (the server flushes only between requests).
 *   2. A handler returning < 0 has written nothing it needs kept: the
 *      dispatcher cuts the reply back to where the command started and
 *      writes the engine error instead (for EXEC: for the whole EXEC).
 *   3. A handler that rejects its arguments does so before changing
 *      anything, so a command error inside EXEC leaves the other commands'
 *      effects intact, as in Redis; an engine failure rolls back them all.
 *   4. On a read-only server (resp_options.read_only) no RESP_CMD_WRITES
 *      handler ever runs: resp_execute refuses them before they run or
 *      queue, so neither a batch, nor its replay, nor EXEC meets one.  The
 *      table may then be absent (c->no_table): the read handlers answer
 *      from an empty keyspace without touching c->table.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "resp.h"
#include "resp_commands.h"

#define SCRATCH_INITIAL 4096
#define SCRATCH_KEEP (1u << 20)
#define QUEUE_MAX_COMMANDS (1u << 20)

static const struct resp_command *command_lookup(const char *name, size_t n);

/* Whether cmd changes data.  RESP_CMD_WRITE implies it, so a write added
 * to the table without RESP_CMD_WRITES is still refused when read-only. */
static bool command_writes(const struct resp_command *cmd)
{
    return (cmd->flags & (RESP_CMD_WRITE | RESP_CMD_WRITES)) != 0;
}

/* ---- helpers ---- */

bool resp_arg_is(const char *arg, const char *word)
{
    return strcasecmp(arg, word) == 0;
}

void resp_reply_engine_error(struct resp_client *c, const char *what, JET_ERR err)
{
    const char *detail = JetGetLastErrorDetail();
    resp_reply_error(&c->out, "ERR %s: %s (%ld)%s%s", what, JetErrorString(err), err, detail && *detail ? ": " : "",
                     detail ? detail : "");
}

bool resp_key_ok(struct resp_client *c, const char *key, size_t n)
{
    (void)key;
    if (n == 0) {
        resp_reply_error(&c->out, "ERR empty key not supported (keys are 1..%u bytes)", JET_cbKeyMost);
        return false;
    }
    if (n > JET_cbKeyMost) {
        resp_reply_error(&c->out, "ERR key too long (max %u bytes)", JET_cbKeyMost);
        return false;
    }
    return true;
}

static void scratch_shrink(struct resp_client *c)
{
    if (c->scratch_cap <= SCRATCH_KEEP) return;
    char *ns = realloc(c->scratch, SCRATCH_INITIAL);
    if (!ns) return; /* keep the big one */
    c->scratch = ns;
    c->scratch_cap = SCRATCH_INITIAL;
}

/* ---- server commands (the connection ones are in resp_client.c) ---- */

static JET_ERR cmd_shutdown(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)len;
    for (size_t i = 1; i < argc; i++) {
        if (!resp_arg_is(argv[i], "nosave") && !resp_arg_is(argv[i], "save") && !resp_arg_is(argv[i], "now") &&
            !resp_arg_is(argv[i], "force")) {
            resp_reply_error(&c->out, "ERR syntax error");
            return JET_errSuccess;
        }
    }
    c->shutdown = true; /* no reply: the server closes the connection, as Redis does */
    return JET_errSuccess;
}

static void info_line(struct resp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info_line(struct resp_buf *b, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    resp_buf_append(b, line, (size_t)n);
    resp_buf_append(b, "\r\n", 2);
}

static bool info_wants(size_t argc, char **argv, const char *section)
{
    if (argc < 2) return true;
    for (size_t i = 1; i < argc; i++)
        if (resp_arg_is(argv[i], section) || resp_arg_is(argv[i], "all") || resp_arg_is(argv[i], "everything") ||
            resp_arg_is(argv[i], "default"))
            return true;
    return false;
}

static JET_ERR cmd_info(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    struct resp_shared *sh = c->sh;
    struct resp_buf b = {0};
    JET_ERR err = JET_errSuccess;
    (void)len;

    if (info_wants(argc, argv, "server")) {
        info_line(&b, "# Server");
        info_line(&b, "redis_version:%s", RESP_VERSION);
        info_line(&b, "redis_mode:standalone");
        info_line(&b, "server_name:jetfs");
        info_line(&b, "process_id:%ld", (long)getpid());
        info_line(&b, "tcp_port:%d", sh->port);
        info_line(&b, "uptime_in_seconds:%lld", (long long)(time(NULL) - sh->started));
        info_line(&b, "database:%s", sh->dbpath);
        info_line(&b, "%s", "");
    }
    char failure[700];
    bool failed = JetGetInstanceFailure(sh->inst, failure, sizeof failure) < 0;
    if (info_wants(argc, argv, "persistence")) {
        /* Redis's own field says whether the last write reached the disk. */
        info_line(&b, "# Persistence");
        info_line(&b, "loading:0"); /* what ioredis's ready check waits for */
        info_line(&b, "aof_enabled:1");
        info_line(&b, "aof_last_write_status:%s", failed ? "err" : "ok");
        info_line(&b, "jetfs_instance_state:%s", failed ? "failed" : "running");
        if (failed) info_line(&b, "jetfs_instance_failure:%s", failure);
        info_line(&b, "%s", "");
    }
    if (info_wants(argc, argv, "clients")) {
        info_line(&b, "# Clients");
        info_line(&b, "connected_clients:%u", atomic_load(&sh->clients));
        info_line(&b, "maxclients:%u", sh->max_clients);
        info_line(&b, "%s", "");
    }
    if (info_wants(argc, argv, "stats")) {
        info_line(&b, "# Stats");
        info_line(&b, "total_connections_received:%llu", (unsigned long long)atomic_load(&sh->connections));
        info_line(&b, "total_commands_processed:%llu", (unsigned long long)atomic_load(&sh->commands));
        info_line(&b, "rejected_connections:%llu", (unsigned long long)atomic_load(&sh->rejected));
        info_line(&b, "%s", "");
    }
    if (info_wants(argc, argv, "replication")) {
        /* role stays master, as HELLO says: a replica's role makes
         * clients (Sentinel-aware ones) look for the master it follows,
         * and there is none.  Redis's replica field says read-only. */
        info_line(&b, "# Replication");
        info_line(&b, "role:master");
        info_line(&b, "connected_slaves:0");
        if (sh->read_only) info_line(&b, "slave_read_only:1");
        info_line(&b, "%s", "");
    }
    if (info_wants(argc, argv, "keyspace") && !failed) {
        long long keys = 0, expires = 0;
        bool own = !c->in_txn;
        /* An exact count needs the write lock (see resp_keyspace.c), but
         * not on a read-only server, where nothing writes. */
        if (own && (err = resp_read_txn_begin(c)) < 0) goto out;
        err = resp_count_keys(c, &keys);
        if (err >= 0) err = resp_exp_count(c, &expires);
        if (own) {
            JET_ERR rb = JetRollback(c->ses, 0);
            (void)rb; /* nothing was changed */
        }
        if (err < 0) goto out;
        info_line(&b, "# Keyspace");
        info_line(&b, "db0:keys=%lld,expires=%lld,avg_ttl=0", keys, expires);
    }
    if (b.oom) {
        err = JET_errOutOfMemory;
        goto out;
    }
    resp_reply_bulk(&c->out, b.data ? b.data : "", b.len);
out:
    resp_buf_free(&b);
    return err;
}

/*
 * One command's entry as Redis 7 lists it in COMMAND and COMMAND INFO:
 * name, arity, flags, first key, last key, key step, then ACL categories,
 * tips, key specs and subcommands, which jetfs leaves empty.
 */
static void command_entry(struct resp_client *c, const struct resp_command *cmd)
{
    static const struct {
        const char *name;
        int first, last, step;
    } keys[] = {
        {"get", 1, 1, 1},   {"set", 1, 1, 1},    {"incr", 1, 1, 1},   {"incrby", 1, 1, 1},
        {"decr", 1, 1, 1},  {"decrby", 1, 1, 1}, {"type", 1, 1, 1},   {"ttl", 1, 1, 1},
        {"pttl", 1, 1, 1},  {"mset", 1, -1, 2},  {"mget", 1, -1, 1},  {"del", 1, -1, 1},
        {"exists", 1, -1, 1}, {"watch", 1, -1, 1}, {"unlink", 1, -1, 1}, {"msetnx", 1, -1, 2},
        {"rename", 1, 2, 1}, {"renamenx", 1, 2, 1}, {"strlen", 1, 1, 1}, {"append", 1, 1, 1},
        {"getrange", 1, 1, 1}, {"setrange", 1, 1, 1}, {"getset", 1, 1, 1}, {"getdel", 1, 1, 1},
        {"getex", 1, 1, 1}, {"setnx", 1, 1, 1}, {"incrbyfloat", 1, 1, 1}, {"expire", 1, 1, 1},
        {"pexpire", 1, 1, 1}, {"expireat", 1, 1, 1}, {"pexpireat", 1, 1, 1}, {"persist", 1, 1, 1},
        {"expiretime", 1, 1, 1}, {"pexpiretime", 1, 1, 1}, {"setex", 1, 1, 1}, {"psetex", 1, 1, 1},
        {"substr", 1, 1, 1},
    };
    int first = 0, last = 0, step = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, cmd->name) == 0) {
            first = keys[i].first;
            last = keys[i].last;
            step = keys[i].step;
        }
    resp_reply_array(&c->out, 10);
    resp_reply_bulk_str(&c->out, cmd->name);
    resp_reply_int(&c->out, cmd->arity);
    /* Redis's flag words for what the table says of the command. */
    bool write = command_writes(cmd);
    bool readonly = !write && (first || (cmd->flags & RESP_CMD_READ_TXN) || cmd->fn == resp_cmd_scan);
    bool no_multi = cmd->flags & RESP_CMD_NO_MULTI, noscript = cmd->flags & RESP_CMD_NOW;
    bool loading = cmd->flags & RESP_CMD_NO_DATA; /* answered whatever state the data is in */
    resp_reply_array(&c->out, (size_t)write + readonly + no_multi + noscript + loading);
    if (write) resp_reply_status(&c->out, "write");
    if (readonly) resp_reply_status(&c->out, "readonly");
    if (no_multi) resp_reply_status(&c->out, "no_multi");
    if (noscript) resp_reply_status(&c->out, "noscript");
    if (loading) resp_reply_status(&c->out, "loading");
    resp_reply_int(&c->out, first);
    resp_reply_int(&c->out, last);
    resp_reply_int(&c->out, step);
    for (int k = 0; k < 4; k++) resp_reply_array(&c->out, 0);
}

/* COMMAND [COUNT|LIST|INFO name...|DOCS ...]: what clients ask of it.
 * DOCS is an empty map: redis-cli then gives no hints, nothing worse. */
static JET_ERR cmd_command(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    size_t n = 0;
    while (command_lookup(NULL, n)) n++;
    if (argc == 1) {
        resp_reply_array(&c->out, n);
        for (size_t i = 0; i < n; i++) command_entry(c, command_lookup(NULL, i));
    } else if ((resp_arg_is(argv[1], "count") || resp_arg_is(argv[1], "list")) && argc != 2) {
        resp_reply_error(&c->out, "ERR wrong number of arguments for 'command|%s' command",
                         resp_arg_is(argv[1], "count") ? "count" : "list");
    } else if (resp_arg_is(argv[1], "count")) {
        resp_reply_int(&c->out, (long long)n);
    } else if (resp_arg_is(argv[1], "list")) {
        resp_reply_array(&c->out, n);
        for (size_t i = 0; i < n; i++) resp_reply_bulk_str(&c->out, command_lookup(NULL, i)->name);
    } else if (resp_arg_is(argv[1], "info") && argc == 2) {
        resp_reply_array(&c->out, n); /* no names: every command, as Redis 7 */
        for (size_t i = 0; i < n; i++) command_entry(c, command_lookup(NULL, i));
    } else if (resp_arg_is(argv[1], "info")) {
        resp_reply_array(&c->out, argc - 2);
        for (size_t i = 2; i < argc; i++) {
            const struct resp_command *cmd = command_lookup(argv[i], len[i]);
            if (cmd) command_entry(c, cmd);
            else resp_reply_nil(&c->out);
        }
    } else if (resp_arg_is(argv[1], "docs")) {
        resp_reply_array(&c->out, 0);
    } else {
        resp_reply_error(&c->out, "ERR unknown subcommand '%.128s'. Try COMMAND HELP.", argv[1]);
    }
    return JET_errSuccess;
}

/* CONFIG GET answers a few parameters truthfully so tools do not warn. */
static JET_ERR cmd_config(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    if (resp_arg_is(argv[1], "get") && argc >= 3) {
        char maxclients[16], port[16];
        snprintf(maxclients, sizeof maxclients, "%u", c->sh->max_clients);
        snprintf(port, sizeof port, "%d", c->sh->port);
        const char *params[][2] = {
            {"appendonly", "no"}, {"databases", "1"}, {"maxclients", maxclients}, {"port", port}, {"save", ""},
        };
        size_t np = sizeof params / sizeof params[0], hits = 0;
        bool hit[sizeof params / sizeof params[0]] = {false};
        for (size_t k = 0; k < np; k++)
            for (size_t i = 2; i < argc && !hit[k]; i++)
                if (resp_glob_match(argv[i], len[i], params[k][0], strlen(params[k][0]), true)) hit[k] = true;
        for (size_t k = 0; k < np; k++) hits += hit[k];
        resp_reply_array(&c->out, 2 * hits);
        for (size_t k = 0; k < np; k++) {
            if (!hit[k]) continue;
            resp_reply_bulk_str(&c->out, params[k][0]);
            resp_reply_bulk_str(&c->out, params[k][1]);
        }
    } else if (resp_arg_is(argv[1], "resetstat") && argc == 2) {
        resp_reply_status(&c->out, "OK");
    } else if (resp_arg_is(argv[1], "set")) {
        resp_reply_error(&c->out, "ERR CONFIG SET is not supported by jetfs");
    } else {
        resp_reply_error(&c->out, "ERR unknown subcommand or wrong number of arguments for 'config|%.32s'", argv[1]);
    }
    return JET_errSuccess;
}

/* ---- MULTI / EXEC / DISCARD, WATCH ---- */

/*
 * WATCH.  Every key hashes to one of RESP_WATCH_SLOTS version counters in
 * the shared state; a write command bumps the counters of all its
 * arguments (keys, and values too, which only costs a needless abort)
 * before it runs, FLUSHDB bumps them all.  WATCH records the counters of
 * its keys; EXEC first checks that none moved, else it answers a null
 * array and runs nothing, as Redis does when a watched key was modified.
 * So a change to a watched key always aborts -- by anyone, this client
 * included, as in Redis -- and a change to another key of the same slot
 * aborts too, which an optimistic client's retry loop absorbs.  Check and
 * execution happen in one resp_execute call on the one thread that runs
 * every command (resp_server.c), so nothing can change in between.
 */
static uint32_t watch_slot(const char *key, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
    return (uint32_t)(h % RESP_WATCH_SLOTS);
}

/* Before cmd runs: the watchers of what it may change must see a change. */
static void watch_touch(struct resp_shared *sh, const struct resp_command *cmd, size_t argc, char **argv, size_t *len)
{
    if (cmd->fn == resp_cmd_flushdb) {
        for (size_t i = 0; i < RESP_WATCH_SLOTS; i++) sh->watch_ver[i]++;
        return;
    }
    if (!(cmd->flags & RESP_CMD_WRITE)) return;
    for (size_t i = 1; i < argc; i++) sh->watch_ver[watch_slot(argv[i], len[i])]++;
}

static bool watch_intact(const struct resp_client *c)
{
    for (size_t i = 0; i < c->nwatched; i++)
        if (c->sh->watch_ver[c->watched[i].slot] != c->watched[i].ver) return false;
    return true;
}

static JET_ERR cmd_watch(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    if (c->nwatched + argc - 1 > c->watched_cap) {
        size_t ncap = c->watched_cap ? c->watched_cap : 16;
        while (ncap < c->nwatched + argc - 1) ncap *= 2;
        struct resp_watched *nw = realloc(c->watched, ncap * sizeof *nw);
        if (!nw) return JET_errOutOfMemory;
        c->watched = nw;
        c->watched_cap = ncap;
    }
    for (size_t i = 1; i < argc; i++) {
        uint32_t slot = watch_slot(argv[i], len[i]);
        c->watched[c->nwatched++] = (struct resp_watched){slot, c->sh->watch_ver[slot]};
    }
    resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

static JET_ERR cmd_unwatch(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc, (void)argv, (void)len;
    c->nwatched = 0;
    resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

static void queue_clear(struct resp_client *c)
{
    for (size_t i = 0; i < c->nqueue; i++) free(c->queue[i]);
    free(c->queue);
    c->queue = NULL;
    c->nqueue = c->queue_cap = c->queue_bytes = 0;
    c->in_multi = c->multi_dirty = false;
}

/* Copies a request into the MULTI queue; false on memory or size limits. */
static bool queue_push(struct resp_client *c, const struct resp_command *cmd, size_t argc, char **argv, size_t *len)
{
    size_t bytes = 0;
    for (size_t i = 0; i < argc; i++) bytes += len[i] + 1;
    if (c->nqueue >= QUEUE_MAX_COMMANDS || bytes > c->sh->lim.max_request - c->queue_bytes) return false;
    if (c->nqueue == c->queue_cap) {
        size_t ncap = c->queue_cap ? 2 * c->queue_cap : 16;
        struct resp_queued **nq = realloc(c->queue, ncap * sizeof *nq);
        if (!nq) return false;
        c->queue = nq;
        c->queue_cap = ncap;
    }
    struct resp_queued *q = malloc(sizeof *q + argc * (sizeof(char *) + sizeof(size_t)) + bytes);
    if (!q) return false;
    q->cmd = cmd;
    q->argc = argc;
    q->argv = (char **)(q + 1);
    q->len = (size_t *)(q->argv + argc);
    char *p = (char *)(q->len + argc);
    for (size_t i = 0; i < argc; i++) {
        q->argv[i] = p;
        q->len[i] = len[i];
        memcpy(p, argv[i], len[i] + 1);
        p += len[i] + 1;
    }
    c->queue[c->nqueue++] = q;
    c->queue_bytes += bytes;
    return true;
}

static JET_ERR cmd_multi(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc, (void)argv, (void)len;
    if (c->in_multi) {
        resp_reply_error(&c->out, "ERR MULTI calls can not be nested");
        return JET_errSuccess;
    }
    c->in_multi = true;
    resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

static JET_ERR cmd_discard(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc, (void)argv, (void)len;
    if (!c->in_multi) {
        resp_reply_error(&c->out, "ERR DISCARD without MULTI");
        return JET_errSuccess;
    }
    queue_clear(c);
    c->nwatched = 0;
    resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

/*
 * EXEC: every queued command in one engine transaction, committed durably
 * before the reply array is released.  Command errors (a non-integer for
 * INCR...) take their place in the array and the rest still commits, as in
 * Redis; an engine failure rolls everything back and EXEC replies one error.
 */
static JET_ERR cmd_exec(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    JET_ERR err = JET_errSuccess;
    (void)argc, (void)argv, (void)len;

    if (!c->in_multi) {
        resp_reply_error(&c->out, "ERR EXEC without MULTI");
        return JET_errSuccess;
    }
    bool watched_ok = watch_intact(c);
    c->nwatched = 0; /* EXEC unwatches, whatever happens */
    if (c->multi_dirty) {
        queue_clear(c);
        resp_reply_error(&c->out, "EXECABORT Transaction discarded because of previous errors.");
        return JET_errSuccess;
    }
    if (!watched_ok) {
        queue_clear(c);
        resp_buf_append(&c->out, "*-1\r\n", 5); /* Redis's null array: aborted by WATCH */
        return JET_errSuccess;
    }
    for (size_t i = 0; i < c->nqueue && !c->sh->read_only; i++)
        if (resp_wants_ttl(c->queue[i]->cmd, c->queue[i]->argc, c->queue[i]->argv) &&
            (err = resp_exp_create(c)) < 0) {
            resp_reply_engine_error(c, "EXEC could not create the expiry table", err);
            goto out;
        }
    size_t mark = c->out.len;
    /* Read-only: only reads were queued (invariant 4); they need no write
     * lock, and there is nothing to commit. */
    if ((err = c->sh->read_only ? resp_read_txn_begin(c) : JetBeginTransaction(c->ses)) < 0) {
        resp_reply_engine_error(c, "EXEC could not begin a transaction", err);
        goto out;
    }
    c->in_txn = true;
    resp_reply_array(&c->out, c->nqueue);
    for (size_t i = 0; i < c->nqueue && err >= 0; i++) {
        struct resp_queued *q = c->queue[i];
        watch_touch(c->sh, q->cmd, q->argc, q->argv, q->len);
        err = q->cmd->fn(c, q->argc, q->argv, q->len);
    }
    if (err < 0 || c->sh->read_only) {
        JET_ERR rb = JetRollback(c->ses, 0);
        (void)rb; /* the transaction ends either way */
        if (err < 0) {
            resp_buf_truncate(&c->out, mark);
            resp_reply_engine_error(c, "EXEC rolled back", err);
        }
    } else if ((err = resp_commit(c)) < 0) {
        resp_buf_truncate(&c->out, mark);
        resp_reply_engine_error(c, "EXEC commit failed, rolled back", err);
    }
    c->in_txn = false;
out:
    queue_clear(c);
    return JET_errSuccess;
}

JET_ERR resp_commit(struct resp_client *c)
{
    JET_ERR err = JetCommitTransaction(c->ses, JET_bitCommitLazyFlush);
    if (err >= 0) c->unflushed = true;
    return err;
}

bool resp_client_durable(struct resp_client *c)
{
    if (!c->unflushed) return true;
    JET_ERR err = JetCommitTransaction(c->ses, JET_bitWaitLastLevel0Commit);
    if (err < 0) {
        fprintf(stderr, "jetfs: client %llu: its writes could not be made durable (%s); closing the connection "
                        "without sending their replies\n",
                (unsigned long long)c->id, JetErrorString(err));
        return false;
    }
    c->unflushed = false;
    return true;
}

/* ---- the table ---- */

static const struct resp_command commands[] = {
    {"get", 2, 0, resp_cmd_get},
    {"set", -3, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_set},
    {"incr", 2, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_incr},
    {"ping", -1, RESP_CMD_NO_DATA, cmd_ping},
    {"mset", -3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_mset},
    {"mget", -2, RESP_CMD_READ_TXN | RESP_CMD_READ_MANY, resp_cmd_mget},
    {"del", -2, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_del},
    {"exists", -2, RESP_CMD_READ_TXN | RESP_CMD_READ_MANY, resp_cmd_exists},
    {"incrby", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_incrby},
    {"decr", 2, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_decr},
    {"decrby", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_decrby},
    {"type", 2, 0, resp_cmd_type},
    {"ttl", 2, 0, resp_cmd_ttl},
    {"pttl", 2, 0, resp_cmd_ttl},
    {"expiretime", 2, 0, resp_cmd_ttl},
    {"pexpiretime", 2, 0, resp_cmd_ttl},
    {"strlen", 2, 0, resp_cmd_strlen},
    {"append", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_append},
    {"getrange", 4, 0, resp_cmd_getrange},
    {"substr", 4, 0, resp_cmd_getrange},
    {"setrange", 4, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_setrange},
    {"getset", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_getset},
    {"getdel", 2, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_getdel},
    {"getex", -2, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_getex},
    {"setnx", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_setnx},
    {"setex", 4, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_setex},
    {"psetex", 4, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_setex},
    {"msetnx", -3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_mset},
    {"incrbyfloat", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_incrbyfloat},
    {"unlink", -2, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_del},
    {"rename", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_rename},
    {"renamenx", 3, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_rename},
    {"keys", 2, RESP_CMD_READ_TXN, resp_cmd_keys},
    {"randomkey", 1, RESP_CMD_READ_TXN, resp_cmd_randomkey},
    {"expire", -3, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_expire},
    {"pexpire", -3, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_expire},
    {"expireat", -3, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_expire},
    {"pexpireat", -3, RESP_CMD_WRITE | RESP_CMD_WRITES | RESP_CMD_TTL, resp_cmd_expire},
    {"persist", 2, RESP_CMD_WRITE | RESP_CMD_WRITES, resp_cmd_persist},
    {"echo", 2, RESP_CMD_NO_DATA, cmd_echo},
    {"dbsize", 1, RESP_CMD_READ_TXN, resp_cmd_dbsize},
    {"scan", -2, 0, resp_cmd_scan},
    {"flushdb", -1, RESP_CMD_WRITES, resp_cmd_flushdb},
    {"flushall", -1, RESP_CMD_WRITES, resp_cmd_flushdb},
    {"multi", 1, RESP_CMD_NOW, cmd_multi},
    {"exec", 1, RESP_CMD_NOW, cmd_exec},
    {"discard", 1, RESP_CMD_NOW, cmd_discard},
    {"watch", -2, RESP_CMD_NO_MULTI, cmd_watch},
    {"unwatch", 1, 0, cmd_unwatch},
    {"info", -1, RESP_CMD_NO_DATA, cmd_info},
    {"shutdown", -1, RESP_CMD_NO_MULTI | RESP_CMD_NO_DATA, cmd_shutdown},
    {"quit", -1, RESP_CMD_NOW | RESP_CMD_NO_DATA | RESP_CMD_NO_AUTH, cmd_quit},
    {"auth", -2, RESP_CMD_NO_DATA | RESP_CMD_NO_AUTH, resp_cmd_auth},
    {"select", 2, RESP_CMD_NO_DATA, cmd_select},
    {"command", -1, RESP_CMD_NO_DATA, cmd_command},
    {"config", -2, RESP_CMD_NO_DATA, cmd_config},
    {"client", -2, RESP_CMD_NO_DATA, cmd_client},
    {"hello", -1, RESP_CMD_NO_MULTI | RESP_CMD_NO_DATA | RESP_CMD_NO_AUTH, cmd_hello},
};

/* By name (case-insensitive); with name NULL, the n-th entry (for COUNT). */
static const struct resp_command *command_lookup(const char *name, size_t n)
{
    size_t count = sizeof commands / sizeof commands[0];
    if (!name) return n < count ? &commands[n] : NULL;
    for (size_t i = 0; i < count; i++)
        if (strlen(commands[i].name) == n && strncasecmp(commands[i].name, name, n) == 0) return &commands[i];
    return NULL;
}

const struct resp_command *resp_command_by_name(const char *name)
{
    return command_lookup(name, strlen(name));
}

bool resp_command_known(const char *name)
{
    return resp_command_by_name(name) != NULL;
}

/* Disabled by --disable-command.  By handler, so FLUSHALL goes with
 * FLUSHDB: here they are one command under two names. */
static bool disabled(const struct resp_client *c, const struct resp_command *cmd)
{
    for (size_t i = 0; i < c->sh->ndisabled; i++)
        if (c->sh->disabled[i]->fn == cmd->fn) return true;
    return false;
}

static void reply_unknown(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    char args[160];
    size_t used = 0;
    args[0] = '\0';
    for (size_t i = 1; i < argc && used < 128; i++) {
        int n = snprintf(args + used, sizeof args - used, "'%.*s' ", (int)(len[i] < 128 - used ? len[i] : 128 - used),
                         argv[i]);
        if (n < 0 || (size_t)n >= sizeof args - used) break;
        used += (size_t)n;
    }
    resp_reply_error(&c->out, "ERR unknown command '%.128s', with args beginning with: %s", argv[0], args);
}

static bool arity_ok(const struct resp_command *cmd, size_t argc)
{
    if (cmd->arity >= 0) return argc == (size_t)cmd->arity;
    return argc >= (size_t)-cmd->arity;
}

#define RESP_BATCH_MAX 64
#define RESP_BATCH_BYTES (64u << 10)

static void run(struct resp_client *c, const struct resp_command *cmd, size_t argc, char **argv, size_t *len);

/* Copies a request into the batch's replay record: argc, the lengths, then
 * each argument NUL-terminated (commands may rely on it). */
static bool batch_save(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    size_t need = (argc + 1) * sizeof(size_t);
    for (size_t i = 0; i < argc; i++) need += len[i] + 1;
    if (c->saved_len + need > c->saved_cap) {
        size_t ncap = c->saved_cap ? c->saved_cap * 2 : 4096;
        while (ncap < c->saved_len + need) ncap *= 2;
        char *n = realloc(c->batch_saved, ncap);
        if (!n) return false;
        c->batch_saved = n;
        c->saved_cap = ncap;
    }
    char *o = c->batch_saved + c->saved_len;
    memcpy(o, &argc, sizeof argc);
    memcpy(o + sizeof argc, len, argc * sizeof *len);
    o += (argc + 1) * sizeof(size_t);
    for (size_t i = 0; i < argc; i++) {
        memcpy(o, argv[i], len[i]);
        o[len[i]] = '\0';
        o += len[i] + 1;
    }
    c->saved_len += need;
    return true;
}

/* After a batch rolled back: its requests again, one transaction each. */
static void batch_replay(struct resp_client *c)
{
    size_t pos = 0;
    char **argv = NULL;
    size_t *len = NULL, cap = 0;
    c->no_batch = true;
    while (pos < c->saved_len) {
        size_t argc;
        memcpy(&argc, c->batch_saved + pos, sizeof argc);
        if (argc > cap) {
            char **na = realloc(argv, argc * sizeof *na);
            size_t *nl = realloc(len, argc * sizeof *nl);
            if (na) argv = na;
            if (nl) len = nl;
            if (!na || !nl) {
                /* Out of memory: the client gets fewer replies than
                 * requests, which it sees as an error; nothing is lost. */
                c->out.oom = true;
                break;
            }
            cap = argc;
        }
        memcpy(len, c->batch_saved + pos + sizeof argc, argc * sizeof *len);
        char *a = c->batch_saved + pos + (argc + 1) * sizeof(size_t);
        for (size_t i = 0; i < argc; i++) {
            argv[i] = a;
            a += len[i] + 1;
        }
        pos = (size_t)(a - c->batch_saved);
        const struct resp_command *cmd = command_lookup(argv[0], len[0]);
        if (cmd) run(c, cmd, argc, argv, len);
    }
    c->no_batch = false;
    c->saved_len = 0;
    free(argv);
    free(len);
}

/* The batch is over, committed or rolled back (then replayed). */
static void batch_done(struct resp_client *c, bool failed)
{
    c->batch = c->in_txn = false;
    if (failed) {
        resp_buf_truncate(&c->out, c->batch_mark);
        batch_replay(c);
    }
    c->saved_len = 0;
}

void resp_batch_end(struct resp_client *c)
{
    if (!c->batch) return;
    batch_done(c, resp_commit(c) < 0);
}

/* A plain write joins (or opens) the batch transaction (resp_commands.h). */
static void run_batched(struct resp_client *c, const struct resp_command *cmd, size_t argc, char **argv, size_t *len)
{
    size_t mark = c->out.len;
    JET_ERR err;
    if (!c->batch) {
        if ((err = JetBeginTransaction(c->ses)) < 0) {
            resp_reply_engine_error(c, "could not begin a transaction", err);
            return;
        }
        c->batch = c->in_txn = true;
        c->batch_n = 0;
        c->batch_mark = mark;
        c->saved_len = 0;
    }
    if (!batch_save(c, argc, argv, len)) {
        c->out.oom = true;
        return;
    }
    err = cmd->fn(c, argc, argv, len);
    if (err < 0) {
        JET_ERR rb = JetRollback(c->ses, 0);
        (void)rb; /* the transaction ends either way */
        if (c->batch_n) {
            batch_done(c, true); /* earlier writes went with it: all again, one by one */
        } else {
            c->batch = c->in_txn = false;
            c->saved_len = 0;
            resp_buf_truncate(&c->out, mark);
            resp_reply_engine_error(c, "transaction rolled back", err);
        }
        scratch_shrink(c);
        return;
    }
    if (++c->batch_n >= RESP_BATCH_MAX) resp_batch_end(c);
    scratch_shrink(c);
}

static bool batchable(const struct resp_client *c, const struct resp_command *cmd, size_t argc, const size_t *len)
{
    if (!(cmd->flags & RESP_CMD_WRITE) || c->no_batch || !c->table_open || (c->in_txn && !c->batch)) return false;
    size_t bytes = 0;
    for (size_t i = 0; i < argc; i++) bytes += len[i];
    return bytes <= RESP_BATCH_BYTES;
}

/* Runs one command, opening and ending a transaction around it if needed. */
static void run(struct resp_client *c, const struct resp_command *cmd, size_t argc, char **argv, size_t *len)
{
    if (batchable(c, cmd, argc, len)) {
        run_batched(c, cmd, argc, argv, len);
        return;
    }
    resp_batch_end(c);
    bool txn = !c->in_txn && ((cmd->flags & RESP_CMD_WRITE) ||
                              ((cmd->flags & RESP_CMD_READ_TXN) && (!(cmd->flags & RESP_CMD_READ_MANY) || argc > 2)));
    size_t mark = c->out.len;
    JET_ERR err;

    if (!c->table_open && !c->no_table && !(cmd->flags & RESP_CMD_NO_DATA)) {
        /* A connection made after the instance failed has no session:
         * it may still ask what happened (INFO), nothing else. */
        char why[700] = "";
        (void)JetGetInstanceFailure(c->sh->inst, why, sizeof why);
        resp_reply_error(&c->out, "ERR jetfs: the instance failed and writes nothing more (%s); restart jetfs serve to "
                                  "recover it", why);
        return;
    }
    if (txn) {
        err = (cmd->flags & RESP_CMD_WRITE) ? JetBeginTransaction(c->ses) : resp_read_txn_begin(c);
        if (err < 0) {
            resp_reply_engine_error(c, "could not begin a transaction", err);
            return;
        }
        c->in_txn = true;
    }
    err = cmd->fn(c, argc, argv, len);
    if (txn) {
        if (err >= 0 && (cmd->flags & RESP_CMD_WRITE)) {
            err = resp_commit(c);
        } else {
            JET_ERR rb = JetRollback(c->ses, 0);
            (void)rb; /* nothing to keep, or a failure being reported */
        }
        c->in_txn = false;
    }
    if (err < 0) {
        resp_buf_truncate(&c->out, mark);
        resp_reply_engine_error(c, txn ? "transaction rolled back" : "engine", err);
    }
    scratch_shrink(c);
}

void resp_execute(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    atomic_fetch_add(&c->sh->commands, 1);
    const struct resp_command *cmd = command_lookup(argv[0], len[0]);
    if (cmd && disabled(c, cmd)) cmd = NULL;
    if (!c->authenticated && (!cmd || !(cmd->flags & RESP_CMD_NO_AUTH))) {
        /* Before anything else, unknown commands too: an unauthenticated
         * client learns nothing, not even which commands exist. */
        resp_reply_error(&c->out, "NOAUTH Authentication required.");
        if (c->in_multi) c->multi_dirty = true;
        return;
    }
    if (!cmd) {
        reply_unknown(c, argc, argv, len);
        if (c->in_multi) c->multi_dirty = true;
        return;
    }
    if (!arity_ok(cmd, argc)) {
        resp_reply_error(&c->out, "ERR wrong number of arguments for '%s' command", cmd->name);
        if (c->in_multi) c->multi_dirty = true;
        return;
    }
    if (c->sh->read_only && command_writes(cmd)) {
        /* Redis's replica reply, checked where Redis checks it: after
         * arity, before MULTI queues it (EXEC then answers EXECABORT). */
        resp_reply_error(&c->out, "READONLY You can't write against a read only replica.");
        if (c->in_multi) c->multi_dirty = true;
        return;
    }
    if (c->in_multi && !(cmd->flags & RESP_CMD_NOW)) {
        if (cmd->flags & RESP_CMD_NO_MULTI) {
            resp_reply_error(&c->out, "ERR Command not allowed inside a transaction");
            c->multi_dirty = true;
        } else if (!queue_push(c, cmd, argc, argv, len)) {
            resp_reply_error(&c->out, "ERR MULTI queue too large or out of memory");
            c->multi_dirty = true;
        } else {
            resp_reply_status(&c->out, "QUEUED");
        }
        return;
    }
    watch_touch(c->sh, cmd, argc, argv, len);
    if (!c->sh->exp_table && c->table_open && resp_wants_ttl(cmd, argc, argv)) {
        /* The first expiry ever: its table, before the command's transaction. */
        resp_batch_end(c);
        JET_ERR err = c->in_txn ? JET_errSuccess : resp_exp_create(c);
        if (err < 0) {
            resp_reply_engine_error(c, "could not create the expiry table", err);
            return;
        }
    }
    run(c, cmd, argc, argv, len);
}

/* ---- client lifetime ---- */

JET_ERR resp_read_txn_begin(struct resp_client *c)
{
    return c->sh->read_only ? JetBeginTransaction2(c->ses, JET_bitTransactionReadOnly) : JetBeginTransaction(c->ses);
}

JET_ERR resp_table_ensure(JET_INSTANCE inst, const char *dbpath, bool read_only, bool *absent, char *why,
                          size_t cbwhy)
{
    JET_SESID ses;
    JET_DBID db;
    JET_TABLEID t;
    JET_ERR err, e2;

    *absent = false;
    if ((err = JetBeginSession(inst, &ses, NULL, NULL)) < 0) {
        snprintf(why, cbwhy, "could not begin a session: %s", JetErrorString(err));
        return err;
    }
    if ((err = JetOpenDatabase(ses, dbpath, NULL, &db, read_only ? JET_bitDbReadOnly : 0)) < 0) {
        snprintf(why, cbwhy, "could not open database %s: %s", dbpath, JetErrorString(err));
        goto out_session;
    }
    err = JetOpenTable(ses, db, RESP_TABLE, NULL, 0, 0, &t);
    if (err == JET_errObjectNotFound && read_only) {
        *absent = true;
        err = JET_errSuccess;
        goto out_db;
    }
    if (err == JET_errObjectNotFound) err = JetCreateTable(ses, db, RESP_TABLE, 0, 0, &t);
    if (err == JET_errTableDuplicate) err = JetOpenTable(ses, db, RESP_TABLE, NULL, 0, 0, &t);
    if (err < 0) {
        snprintf(why, cbwhy, "could not open or create table '%s' in %s: %s", RESP_TABLE, dbpath, JetErrorString(err));
        goto out_db;
    }
    if ((e2 = JetCloseTable(ses, t)) < 0) err = e2;
out_db:
    if ((e2 = JetCloseDatabase(ses, db, 0)) < 0 && err >= 0) err = e2;
out_session:
    if ((e2 = JetEndSession(ses, 0)) < 0 && err >= 0) err = e2;
    if (err < 0 && !why[0]) snprintf(why, cbwhy, "closing the setup session: %s", JetErrorString(err));
    return err;
}

JET_ERR resp_client_open(struct resp_client *c, struct resp_shared *sh, char *why, size_t cbwhy)
{
    JET_ERR err;
    memset(c, 0, sizeof *c);
    c->sh = sh;
    c->id = atomic_fetch_add(&sh->next_client_id, 1) + 1;
    c->authenticated = !sh->auth.required;
    if (!(c->scratch = malloc(SCRATCH_INITIAL))) {
        snprintf(why, cbwhy, "out of memory");
        return JET_errOutOfMemory;
    }
    c->scratch_cap = SCRATCH_INITIAL;
    c->since = time(NULL);
    if ((err = JetBeginSession(sh->inst, &c->ses, NULL, NULL)) < 0) {
        snprintf(why, cbwhy, "could not begin a session: %s", JetErrorString(err));
        return err;
    }
    c->ses_open = true;
    if ((err = JetOpenDatabase(c->ses, sh->dbpath, NULL, &c->dbid, sh->read_only ? JET_bitDbReadOnly : 0)) < 0) {
        snprintf(why, cbwhy, "could not open the database: %s", JetErrorString(err));
        return err;
    }
    c->db_open = true;
    err = JetOpenTable(c->ses, c->dbid, RESP_TABLE, NULL, 0, 0, &c->table);
    if (err == JET_errObjectNotFound && sh->read_only) {
        c->no_table = true; /* a database without the table: an empty keyspace */
        return JET_errSuccess;
    }
    if (err < 0) {
        snprintf(why, cbwhy, "could not open table '%s': %s", RESP_TABLE, JetErrorString(err));
        return err;
    }
    c->table_open = true;
    if ((err = resp_exp_client_open(c)) < 0) {
        snprintf(why, cbwhy, "could not open table '%s': %s", RESP_EXPIRES_TABLE, JetErrorString(err));
        return err;
    }
    return JET_errSuccess;
}

void resp_client_close(struct resp_client *c)
{
    /*
     * Errors here are not acted on: the connection is gone, and ending the
     * session rolls back and releases whatever an earlier step left.
     */
    JET_ERR ignored = JET_errSuccess;
    if (c->in_txn) ignored = JetRollback(c->ses, 0);
    if (c->table_open) ignored = JetCloseTable(c->ses, c->table);
    if (c->exp_open) ignored = JetCloseTable(c->ses, c->exp);
    if (c->db_open) ignored = JetCloseDatabase(c->ses, c->dbid, 0);
    if (c->ses_open) ignored = JetEndSession(c->ses, 0);
    (void)ignored;
    c->in_txn = c->table_open = c->exp_open = c->db_open = c->ses_open = c->no_table = false;
    c->batch = false;
    queue_clear(c);
    resp_buf_free(&c->out);
    free(c->scratch);
    c->scratch = NULL;
    c->scratch_cap = 0;
    free(c->batch_saved);
    free(c->watched);
    c->watched = NULL;
    c->nwatched = c->watched_cap = 0;
    c->batch_saved = NULL;
    c->saved_len = c->saved_cap = 0;
}
