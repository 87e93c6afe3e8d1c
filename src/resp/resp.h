/*
 * resp.h -- the Redis-protocol (RESP2) front end of `jetfs serve`.
 *
 * A small server that lets redis-cli, redis-benchmark and any Redis client
 * library read and write a live jetfs instance.  It owns one table of the
 * database it is given (RESP_TABLE) and maps string keys to values there.
 * Every reply to a write is sent only after the engine commit is durable;
 * MULTI/EXEC runs as one engine transaction.  The connection commands
 * (HELLO, CLIENT, SELECT, PING, ECHO, QUIT) and the AUTH decision are in
 * resp_client.c; the other files follow.
 *
 * Layout: resp_parse.c (bounded request parser, no I/O), resp_commands.c
 * (command table and execution over the engine API), resp_server.c
 * (listener and connections: one serving thread and a syncer),
 * resp_reply.c (reply encoding), resp_keyspace.c (SCAN, FLUSHDB).  Only jet.h is used from the engine.
 */
#ifndef JETFS_RESP_H
#define JETFS_RESP_H

#include <stddef.h>

#include "jet.h"

#define RESP_TABLE "redis"

struct resp_options {
    const char *host;          /* listen address; "127.0.0.1" when NULL */
    int port;                  /* TCP port (0: pick a free one, see resp_server_port) */
    unsigned max_clients;      /* connections served at once; 0 = default (1024) */
    size_t max_request_bytes;  /* one request (all its arguments); 0 = default (512 MiB, as Redis) */
    /* Called (from the server's thread) when a client sends SHUTDOWN;
     * the host then stops the server and the instance.  May be NULL.
     * Best: signal the main thread, which calls resp_server_stop.  Calling
     * resp_server_stop from inside on_shutdown works too (the server's
     * thread is then detached, not joined, and frees the server itself).  Several clients may send SHUTDOWN, so
     * it may be called more than once; resp_server_stop must be called
     * once only. */
    void (*on_shutdown)(void *arg);
    void *on_shutdown_arg;
};

struct resp_server;

/*
 * resp_server_start: opens the table in the database dbpath (attached to
 * inst), creating it if needed, binds and listens, and starts serving in
 * background threads.  On failure returns a negative JET_ERR or -errno and
 * writes a one-line reason into why.
 */
int resp_server_start(JET_INSTANCE inst, const char *dbpath, const struct resp_options *opt,
                      struct resp_server **out, char *why, size_t cbwhy);
/* The port actually bound. */
int resp_server_port(const struct resp_server *srv);
/* Stops accepting, closes every connection, waits for every thread, frees.
 * A command already executing completes first (its commit stays valid). */
void resp_server_stop(struct resp_server *srv);

#endif
