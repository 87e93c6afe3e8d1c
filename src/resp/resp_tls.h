/*
 * resp_tls.h -- TLS for the Redis-protocol listener (OpenSSL), as Redis 6
 * spells it: a certificate and key, optionally a CA whose certificates
 * clients must present; TLS 1.2 and later only.  Internal to src/resp.
 *
 * Every call is non-blocking: the socket is, and a call that cannot go on
 * says which way the socket must become ready (RESP_IO_WANT_READ or
 * RESP_IO_WANT_WRITE), so the server's one epoll thread never waits for a
 * slow peer.  A TLS connection may want to write while the server reads
 * (and the reverse); the server arms epoll as asked.
 */
#ifndef JETFS_RESP_TLS_H
#define JETFS_RESP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RESP_IO_WANT_READ (-1)
#define RESP_IO_WANT_WRITE (-2)
#define RESP_IO_CLOSED (-3) /* end of stream, or an error: close the connection */

struct resp_tls;      /* the server's context: certificate, key, CA */
struct resp_tls_conn; /* one connection */

/* Loads the certificate chain, the key (which must match it) and, when
 * ca_file is not NULL, the CA clients' certificates must chain to.  On
 * failure returns -EINVAL and writes a one-line reason naming the file. */
int resp_tls_new(const char *cert_file, const char *key_file, const char *ca_file, struct resp_tls **out,
                 char *why, size_t cbwhy);
void resp_tls_free(struct resp_tls *t);

/* A new server-side connection over the accepted socket fd (not owned). */
int resp_tls_conn_new(struct resp_tls *t, int fd, struct resp_tls_conn **out);
/* Sends close_notify if it can without waiting, and frees. */
void resp_tls_conn_free(struct resp_tls_conn *tc);
/* Drives the handshake: 1 done, RESP_IO_WANT_*, or RESP_IO_CLOSED with why
 * (a plain-text client, no client certificate, an old protocol...). */
int resp_tls_handshake(struct resp_tls_conn *tc, char *why, size_t cbwhy);
/* Bytes read (> 0), RESP_IO_WANT_*, or RESP_IO_CLOSED. */
ssize_t resp_tls_recv(struct resp_tls_conn *tc, void *buf, size_t n);
/* Bytes written (> 0, possibly fewer than n), RESP_IO_WANT_*, or RESP_IO_CLOSED. */
ssize_t resp_tls_send(struct resp_tls_conn *tc, const void *buf, size_t n);
/* Decrypted bytes held inside the connection: epoll will not announce them. */
bool resp_tls_pending(struct resp_tls_conn *tc);

#endif
