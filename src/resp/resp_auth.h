/*
 * resp_auth.h -- who may talk to the Redis-protocol listener: the password
 * (AUTH), and the protected-mode rule that refuses to expose a server that
 * has none.  Internal to src/resp (what jetfs.c needs is in resp.h).
 *
 * The password is kept only as its SHA-256; AUTH hashes what it is given
 * and compares the two digests in constant time, so neither the content
 * nor the length of the password leaks through timing.
 */
#ifndef JETFS_RESP_AUTH_H
#define JETFS_RESP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "jet.h"

struct resp_client;
struct resp_shared;

#define RESP_AUTH_DIGEST 32
#define RESP_AUTH_LOG_INTERVAL_S 1 /* at most one failed-AUTH log line per interval */

/* The state struct resp_shared keeps (the loop thread alone touches it). */
struct resp_auth {
    bool required;
    unsigned char digest[RESP_AUTH_DIGEST];
    long long last_log;            /* CLOCK_MONOTONIC second of the last line logged */
    unsigned long long suppressed; /* failures not logged since that line */
    unsigned long long failures;   /* every failed attempt (INFO) */
};

/* Sets the password (len > 0) or, with pw NULL, none. */
int resp_auth_init(struct resp_auth *a, const char *pw, size_t len);
/* AUTH [user] password, as Redis 6: replies +OK or the Redis error. */
JET_ERR resp_cmd_auth(struct resp_client *c, size_t argc, char **argv, size_t *len);
/* The check AUTH makes, for other commands that carry credentials
 * (HELLO ... AUTH user pass): true and the client authenticated, or false
 * with -WRONGPASS replied and the failure logged. */
bool resp_auth_try(struct resp_client *c, const char *user, size_t ulen, const char *pass, size_t plen);

#endif
