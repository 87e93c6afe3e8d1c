/*
 * resp_tls.c -- TLS for the Redis-protocol listener over OpenSSL (resp_tls.h).
 *
 * The context is made once at start and is read-only afterwards; every
 * connection is driven by the server's loop thread only.  Protocols older
 * than TLS 1.2 are refused by the context's minimum version, so a client
 * that offers only those fails its handshake.  With a CA file, a client
 * without a certificate that chains to it fails its handshake too
 * (SSL_VERIFY_FAIL_IF_NO_PEER_CERT), as Redis's tls-auth-clients yes.
 *
 * Writes use partial-write mode with a moving buffer: the server's output
 * buffer may be reallocated (more replies appended) between a write that
 * wanted the socket and its retry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "resp.h"
#include "resp_tls.h"

struct resp_tls {
    SSL_CTX *ctx;
};

struct resp_tls_conn {
    SSL *ssl;
};

/* The newest OpenSSL error as text, emptying the thread's error queue. */
static void last_error(char *buf, size_t cb)
{
    unsigned long e = ERR_get_error(), next;
    if (!e) {
        snprintf(buf, cb, "%s", errno ? strerror(errno) : "connection closed");
    } else {
        /* The first error queued is the root cause; later ones only wrap it. */
        ERR_error_string_n(e, buf, cb);
    }
    while ((next = ERR_get_error()) != 0) {
    }
}

int resp_tls_new(const char *cert_file, const char *key_file, const char *ca_file, struct resp_tls **out,
                 char *why, size_t cbwhy)
{
    char err[256];
    int rc = -EINVAL;
    struct resp_tls *t = NULL;

    *out = NULL;
    if (!cert_file || !key_file) {
        snprintf(why, cbwhy, "TLS needs both a certificate file and a key file");
        return -EINVAL;
    }
    if (!(t = calloc(1, sizeof *t))) {
        snprintf(why, cbwhy, "out of memory");
        return -ENOMEM;
    }
    if (!(t->ctx = SSL_CTX_new(TLS_server_method()))) {
        last_error(err, sizeof err);
        snprintf(why, cbwhy, "cannot create a TLS context: %s", err);
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
        last_error(err, sizeof err);
        snprintf(why, cbwhy, "cannot require TLS 1.2: %s", err);
        goto out;
    }
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
    /* No session cache: resumption would skip the client-certificate check
     * this server's operator may have just tightened. */
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
        last_error(err, sizeof err);
        snprintf(why, cbwhy, "--tls-cert-file %s: %s", cert_file, err);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        last_error(err, sizeof err);
        snprintf(why, cbwhy, "--tls-key-file %s: %s", key_file, err);
        goto out;
    }
    if (SSL_CTX_check_private_key(t->ctx) != 1) {
        last_error(err, sizeof err);
        snprintf(why, cbwhy, "--tls-key-file %s does not match --tls-cert-file %s: %s", key_file, cert_file, err);
        goto out;
    }
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
            last_error(err, sizeof err);
            snprintf(why, cbwhy, "--tls-ca-cert-file %s: %s", ca_file, err);
            goto out;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
        if (names) SSL_CTX_set_client_CA_list(t->ctx, names); /* only the hint sent to clients */
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    ERR_clear_error();
    *out = t;
    t = NULL;
    rc = 0;
out:
    resp_tls_free(t);
    return rc;
}

int resp_tls_check(const char *cert_file, const char *key_file, const char *ca_file, char *why, size_t cbwhy)
{
    struct resp_tls *t;
    int rc = resp_tls_new(cert_file, key_file, ca_file, &t, why, cbwhy);
    resp_tls_free(t);
    return rc;
}

void resp_tls_free(struct resp_tls *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

int resp_tls_conn_new(struct resp_tls *t, int fd, struct resp_tls_conn **out)
{
    struct resp_tls_conn *tc = calloc(1, sizeof *tc);
    *out = NULL;
    if (!tc) return -ENOMEM;
    if (!(tc->ssl = SSL_new(t->ctx)) || SSL_set_fd(tc->ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(tc->ssl);
        free(tc);
        return -ENOMEM;
    }
    SSL_set_accept_state(tc->ssl);
    *out = tc;
    return 0;
}

void resp_tls_conn_free(struct resp_tls_conn *tc)
{
    if (!tc) return;
    if (SSL_is_init_finished(tc->ssl)) {
        int r = SSL_shutdown(tc->ssl); /* one try: the socket is non-blocking and about to close */
        (void)r;
    }
    ERR_clear_error();
    SSL_free(tc->ssl);
    free(tc);
}

/* What an SSL call's result r means for the caller. */
static int io_result(struct resp_tls_conn *tc, int r)
{
    switch (SSL_get_error(tc->ssl, r)) {
    case SSL_ERROR_WANT_READ: return RESP_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return RESP_IO_WANT_WRITE;
    default: ERR_clear_error(); return RESP_IO_CLOSED;
    }
}

int resp_tls_handshake(struct resp_tls_conn *tc, char *why, size_t cbwhy)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(tc->ssl);
    if (r == 1) return 1;
    int e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return RESP_IO_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE) return RESP_IO_WANT_WRITE;
    char err[256];
    if (e == SSL_ERROR_SYSCALL && !ERR_peek_error()) snprintf(err, sizeof err, "%s", errno ? strerror(errno) : "closed by the client");
    else last_error(err, sizeof err);
    long v = SSL_get_verify_result(tc->ssl);
    if (v != X509_V_OK) snprintf(why, cbwhy, "%s (certificate: %s)", err, X509_verify_cert_error_string(v));
    else snprintf(why, cbwhy, "%s", err);
    ERR_clear_error();
    return RESP_IO_CLOSED;
}

ssize_t resp_tls_recv(struct resp_tls_conn *tc, void *buf, size_t n)
{
    ERR_clear_error();
    int len = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
    int r = SSL_read(tc->ssl, buf, len);
    return r > 0 ? r : io_result(tc, r);
}

ssize_t resp_tls_send(struct resp_tls_conn *tc, const void *buf, size_t n)
{
    ERR_clear_error();
    int len = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
    int r = SSL_write(tc->ssl, buf, len);
    return r > 0 ? r : io_result(tc, r);
}

bool resp_tls_pending(struct resp_tls_conn *tc)
{
    return SSL_pending(tc->ssl) > 0;
}
