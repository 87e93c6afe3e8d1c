/*
 * resp_auth.c -- the password file, AUTH, and protected mode.
 *
 * The password comes from a file the operator alone can read (mode 0600 or
 * stricter), never from the command line, where ps shows it to every user.
 * Its first line is the password.  Only its SHA-256 is kept (resp_auth.h).
 *
 * AUTH follows Redis 6: AUTH password, or AUTH default password (the only
 * user jetfs has); the replies and error texts are Redis's, so clients and
 * scripts that look for WRONGPASS or NOAUTH behave as they do with Redis.
 * Failed attempts are logged with the peer's address, at most one line per
 * RESP_AUTH_LOG_INTERVAL_S; the line says how many were not logged since
 * the one before, so a password-guessing flood neither fills the disk nor
 * goes unnoticed.  AUTH and the log run on the server's loop thread only.
 *
 * Protected mode is Redis's: a server with no password that listens on an
 * address other than loopback would let anyone who reaches it read, change
 * or flush every key, so it does not start unless told so.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "resp.h"
#include "resp_auth.h"
#include "resp_commands.h"

#define PASSWORD_FILE_MAX 4096

int resp_password_read(const char *path, char **pw, size_t *len, char *why, size_t cbwhy)
{
    char buf[PASSWORD_FILE_MAX + 1];
    struct stat st;
    int rc = -EINVAL;
    size_t got = 0;

    *pw = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, cbwhy, "--requirepass-file %s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "--requirepass-file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, cbwhy, "--requirepass-file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        snprintf(why, cbwhy,
                 "--requirepass-file %s has mode %04o: other users can read the password; it must be 0600 or "
                 "stricter (chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
        rc = -EPERM;
        goto out;
    }
    while (got < PASSWORD_FILE_MAX) {
        ssize_t n = read(fd, buf + got, PASSWORD_FILE_MAX - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            snprintf(why, cbwhy, "--requirepass-file %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    char *nl = memchr(buf, '\n', got);
    if (!nl && got == PASSWORD_FILE_MAX) {
        snprintf(why, cbwhy, "--requirepass-file %s: the password (its first line) is longer than %d bytes", path,
                 PASSWORD_FILE_MAX - 1);
        goto out;
    }
    size_t n = nl ? (size_t)(nl - buf) : got;
    if (n && buf[n - 1] == '\r') n--;
    if (n == 0) {
        snprintf(why, cbwhy, "--requirepass-file %s: the password (its first line) is empty", path);
        goto out;
    }
    if (!(*pw = malloc(n + 1))) {
        rc = -ENOMEM;
        snprintf(why, cbwhy, "out of memory");
        goto out;
    }
    memcpy(*pw, buf, n);
    (*pw)[n] = '\0';
    *len = n;
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return rc;
}

void resp_password_free(char *pw, size_t len)
{
    if (!pw) return;
    OPENSSL_cleanse(pw, len);
    free(pw);
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

int resp_check_exposure(const char *host, bool have_password, bool protected_mode_off, char *why, size_t cbwhy)
{
    struct addrinfo hints, *res = NULL;
    if (!host) host = "127.0.0.1";
    if (have_password || protected_mode_off) return 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0) {
        snprintf(why, cbwhy, "cannot resolve %s: %s", host, gai_strerror(g));
        return -EINVAL;
    }
    bool loopback = res != NULL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) loopback &= addr_is_loopback(ai->ai_addr);
    freeaddrinfo(res);
    if (loopback) return 0;
    snprintf(why, cbwhy,
             "protected mode: refusing to listen on %s, which is not a loopback address, without a password: "
             "anyone who can reach it could read, change or flush every key and stop the server. Either set a "
             "password (--requirepass-file PATH, a file of mode 0600 holding it), or, if a firewall or a private "
             "network already keeps everyone else out, turn protected mode off (--protected-mode no)",
             host);
    return -EPERM;
}

static void sha256(const void *p, size_t n, unsigned char out[RESP_AUTH_DIGEST])
{
    unsigned int dl = 0;
    if (EVP_Digest(p, n, out, &dl, EVP_sha256(), NULL) != 1 || dl != RESP_AUTH_DIGEST) {
        /* Cannot happen with a working libcrypto; a zero digest matches no
         * stored one unless hashing failed for both, and init checks that. */
        memset(out, 0, RESP_AUTH_DIGEST);
    }
}

int resp_auth_init(struct resp_auth *a, const char *pw, size_t len)
{
    memset(a, 0, sizeof *a);
    if (!pw) return 0;
    unsigned int dl = 0;
    if (len == 0 || EVP_Digest(pw, len, a->digest, &dl, EVP_sha256(), NULL) != 1 || dl != RESP_AUTH_DIGEST)
        return -EINVAL;
    a->required = true;
    a->last_log = -RESP_AUTH_LOG_INTERVAL_S - 1;
    return 0;
}

static long long now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

static void log_failure(struct resp_client *c, const char *why)
{
    struct resp_auth *a = &c->sh->auth;
    a->failures++;
    long long now = now_s();
    if (now - a->last_log < RESP_AUTH_LOG_INTERVAL_S) {
        a->suppressed++;
        return;
    }
    if (a->suppressed)
        fprintf(stderr, "jetfs: AUTH failed from %s (client %llu): %s; %llu more failed attempts since the last "
                        "line were not logged\n",
                c->peer, (unsigned long long)c->id, why, a->suppressed);
    else
        fprintf(stderr, "jetfs: AUTH failed from %s (client %llu): %s\n", c->peer, (unsigned long long)c->id, why);
    a->last_log = now;
    a->suppressed = 0;
}

bool resp_auth_try(struct resp_client *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    unsigned char d[RESP_AUTH_DIGEST];
    struct resp_auth *a = &c->sh->auth;
    sha256(pass, plen, d);
    /* Always compare, whatever the user name, so the time taken says nothing. */
    bool match = CRYPTO_memcmp(d, a->digest, sizeof d) == 0;
    bool user_ok = !user || (ulen == 7 && memcmp(user, "default", 7) == 0);
    OPENSSL_cleanse(d, sizeof d);
    if (match && user_ok) {
        c->authenticated = true;
        return true;
    }
    /* As Redis: a failed AUTH leaves an authenticated connection as it was. */
    log_failure(c, user_ok ? "wrong password" : "unknown user");
    resp_reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
    return false;
}

JET_ERR resp_cmd_auth(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    if (argc > 3) {
        resp_reply_error(&c->out, "ERR syntax error");
        return JET_errSuccess;
    }
    /* One decision for AUTH and HELLO's AUTH option (resp_client_auth). */
    if (argc == 2 ? resp_client_auth(c, NULL, 0, argv[1], len[1]) : resp_client_auth(c, argv[1], len[1], argv[2], len[2]))
        resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}
