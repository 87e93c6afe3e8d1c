/*
 * resp.h -- the Redis-protocol (RESP2) front end of `jetfs serve`.
 *
 * A small server that lets redis-cli, redis-benchmark and any Redis client
 * library read and write a live jetfs instance.  It owns one table of the
 * database it is given (RESP_TABLE) and maps string keys to values there,
 * and a second one, created the first time a key is given an expiry:
 *
 *     RESP_TABLE            "redis"          key -> value (the string's bytes)
 *     RESP_EXPIRES_TABLE    "redis_expires"  key -> 8 bytes: its deadline, ms
 *                                            since the Unix epoch, big-endian
 *
 * A deadline row is written in the transaction of the value it belongs to
 * (so it is as durable, and travels in backups); a key whose deadline has
 * passed when it is read is absent to every command, and a sweep on the
 * serving thread deletes such keys in the background (resp_expire.c has
 * the rules).  Served commands: Redis's string family, the generic key
 * commands, expiry, MULTI/EXEC, connection and server commands (the list
 * is the table in resp_commands.c and README's "Redis commands served");
 * other types' commands answer Redis's unknown-command error.
 * Every reply to a write is sent only after the engine commit is durable;
 * MULTI/EXEC runs as one engine transaction.  The connection commands
 * (HELLO, CLIENT, SELECT, PING, ECHO, QUIT) and the AUTH decision are in
 * resp_client.c; the other files follow.
 *
 * Layout: resp_parse.c (bounded request parser, no I/O), resp_commands.c
 * (command table and execution over the engine API; the NOAUTH gate and
 * disabled commands are in its dispatch), resp_server.c (listeners and
 * connections: one serving thread and a syncer; non-blocking I/O with
 * per-connection output buffers; client limits), resp_tls.c (TLS over
 * OpenSSL), resp_auth.c (the password file, AUTH, protected mode),
 * resp_reply.c (reply encoding), resp_keyspace.c (SCAN, KEYS, RANDOMKEY,
 * FLUSHDB), resp_strings.c (the string, key and expiry commands),
 * resp_expire.c (deadlines and the sweep).  Only
 * jet.h is used from the engine.
 *
 * Exposure (README, "Exposing the Redis port"): loopback by default; a
 * non-loopback address needs a password (or protected mode turned off,
 * resp_check_exposure); TLS on its own port; limits on every client
 * (max_clients, idle timeout, bulk and query-buffer sizes) so one client
 * never starves the others.
 */
#ifndef JETFS_RESP_H
#define JETFS_RESP_H

#include <stdbool.h>
#include <stddef.h>

#include "jet.h"

#define RESP_TABLE "redis"

#define RESP_MAX_CLIENTS_DEFAULT 10000u           /* as Redis's maxclients */
#define RESP_QUERY_BUFFER_DEFAULT ((size_t)1 << 30) /* as Redis's client-query-buffer-limit */

struct resp_options {
    const char *host;          /* listen address; "127.0.0.1" when NULL */
    int port;                  /* TCP port (0: pick a free one, see resp_server_port) */
    bool no_plain;             /* no plain-text listener (TLS only) */
    unsigned max_clients;      /* connections served at once; 0 = default (10000, as Redis; lowered,
                                  with a log line, to what the descriptor limit allows) */
    size_t max_request_bytes;  /* one request (all its arguments); 0 = default (512 MiB, as Redis) */
    size_t max_bulk_bytes;     /* one argument (proto-max-bulk-len); 0 = default (512 MiB) */
    size_t query_buffer_bytes; /* unexecuted input a client may have buffered before it is disconnected
                                  (and logged); 0 = default (1 GiB, as Redis) */
    unsigned timeout_s;        /* close a client idle this long (neither sent nor read anything); 0 = never */
    /* AUTH: with password set (password_len bytes, not NUL-terminated
     * necessarily), every command but AUTH and QUIT answers NOAUTH until
     * the client authenticates.  Copied (as a digest) at start. */
    const char *password;
    size_t password_len;
    bool protected_mode_off;   /* allow a non-loopback address without a password */
    /* TLS: a second listener (tls_host, "127.0.0.1" when NULL; tls_port, 0
     * picks a free one) when tls_cert_file is set.  With tls_ca_file,
     * clients must present a certificate that chains to it.  SIGPIPE is
     * then ignored if its disposition was the default (OpenSSL writes with
     * write()). */
    const char *tls_host;
    int tls_port;
    const char *tls_cert_file, *tls_key_file, *tls_ca_file;
    /* Commands that answer as unknown (SHUTDOWN, FLUSHDB...). */
    const char *const *disabled_commands;
    size_t ndisabled_commands;
    /* Called (from the server's thread) when a client sends SHUTDOWN;
     * the host then stops the server and the instance.  May be NULL.
     * Best: signal the main thread, which calls resp_server_stop.  Calling
     * resp_server_stop from inside on_shutdown works too (the server's
     * thread is then detached, not joined, and frees the server itself).  Several clients may send SHUTDOWN, so
     * it may be called more than once; resp_server_stop must be called
     * once only. */
    void (*on_shutdown)(void *arg);
    void *on_shutdown_arg;
    /* Serve reads only (a browsed backup, `jetfs browse --listen`): every
     * command that would write answers Redis's read-only replica error
     * (-READONLY ...), and the table is opened, never created (a database
     * without it serves an empty keyspace). */
    bool read_only;
};

struct resp_server;

/*
 * resp_server_start: opens the table in the database dbpath (attached to
 * inst), creating it if needed (never with read_only: see there), binds
 * and listens, and starts serving in background threads.  On failure returns a negative JET_ERR or -errno and
 * writes a one-line reason into why.
 */
int resp_server_start(JET_INSTANCE inst, const char *dbpath, const struct resp_options *opt,
                      struct resp_server **out, char *why, size_t cbwhy);
/* The port actually bound (plain text; -1 when none), and the TLS one (-1: none). */
int resp_server_port(const struct resp_server *srv);
int resp_server_tls_port(const struct resp_server *srv);
/* Stops accepting, closes every connection, waits for every thread, frees.
 * A command already executing completes first (its commit stays valid). */
void resp_server_stop(struct resp_server *srv);

/*
 * resp_check_exposure: 0 when a server may listen on host: it is a
 * loopback address, or there is a password, or protected mode is off.
 * Else -EPERM (-EINVAL: host does not resolve) and why names the two ways
 * out.  resp_server_start checks it too; a host calls it first to refuse
 * before opening anything.
 */
int resp_check_exposure(const char *host, bool have_password, bool protected_mode_off, char *why, size_t cbwhy);
/* Reads the password file: a regular file of mode 0600 or stricter (else
 * -EPERM); its first line, without the line end, is the password (not
 * empty).  *pw is NUL-terminated; free it with resp_password_free. */
int resp_password_read(const char *path, char **pw, size_t *len, char *why, size_t cbwhy);
/* Wipes and frees. */
void resp_password_free(char *pw, size_t len);
/* Loads the TLS files as resp_server_start would, to refuse bad ones
 * before anything is opened; frees what it loaded. */
int resp_tls_check(const char *cert_file, const char *key_file, const char *ca_file, char *why, size_t cbwhy);
/* Whether the server has a command of that name (for --disable-command). */
bool resp_command_known(const char *name);

#endif
