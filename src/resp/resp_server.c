/*
 * resp_server.c -- the listeners and the connections, served by one thread.
 *
 * One thread (the loop) does everything, as Redis does: it polls (epoll)
 * the listening sockets (plain text and TLS), a self-pipe ("wake") and
 * every connection; for each connection with input it reads what has
 * arrived and executes every complete request (each connection has its own
 * engine session; writes commit lazily, resp_commands.h).  Once every
 * ready connection has been served, the turn's writes are made durable by
 * the syncer thread -- one fsync for all of them, since a log flush covers
 * everything appended before it -- while the loop goes on serving the next
 * turn; when the syncer's round is done (sync_pipe), the replies that
 * waited for it are sent.  So a turn costs one fsync however many clients
 * wrote in it, the CPU work of one turn overlaps the fsync of the one
 * before, and a reply never leaves before the writes it answers are
 * durable.  A turn that wrote nothing, with no round in flight, sends at
 * once.  The engine calls block (a page read), as Redis's do.
 *
 * Replies are sent only between requests, never while an engine
 * transaction is open (a connection's write batch is committed before the
 * loop moves on, so no session holds the engine's write lock while another
 * waits for it on this same thread), and only after the writes they answer
 * are durable.  A protocol error is replied to, then the connection is
 * closed; other connections are unaffected.
 *
 * Nothing waits for a client: every socket is non-blocking and each
 * connection keeps its own output buffer (c.out, out_sent of it gone).
 * What the socket does not take now goes when epoll says it is writable.
 * A connection with OUT_FLUSH bytes or more unsent is paused: it executes
 * nothing more and is not read (its input stays in the kernel, so TCP
 * pushes back on the client) until its output drains.  So a client that
 * stops reading its replies costs about OUT_FLUSH plus one reply of memory
 * and stalls nobody, as Redis's output-buffer limits intend.  TLS runs
 * over the same path (resp_tls.h): a TLS read may want the socket writable
 * and a write may want it readable; the connection arms epoll as asked, and
 * input OpenSSL already decrypted (which epoll cannot announce) is served
 * from the "again" list in the next turn, as is input left by a pause.
 *
 * Limits, as Redis's: max_clients (a connection past it gets "-ERR max
 * number of clients reached" and is closed); an idle timeout (no byte in
 * or out for timeout_s; checked once a second); the parser's bulk and
 * request limits (resp_parse.h); the query buffer (unexecuted input) past
 * which a client is disconnected and logged.  Log lines about clients are
 * rate-limited (server_log) so that a flood cannot fill the disk.
 *
 * Memory per connection: the input buffer holds at most one incomplete
 * request plus what one read brought while paused, and grows by at most
 * doubling what has arrived, so an announced length costs nothing until
 * its bytes come.
 *
 * SHUTDOWN calls opt->on_shutdown from the loop thread, after that
 * connection has ended its engine session.  If on_shutdown calls
 * resp_server_stop itself, stop sees it runs on the loop (tl_loop), marks
 * the server to be freed by the loop when the callback returns, and
 * detaches the loop thread instead of joining it.
 *
 * Locking: srv->mu protects stopping and self_stop (read by the loop,
 * written by resp_server_stop); srv->sync_mu the syncer's request and
 * progress.  Everything else belongs to the loop.  Never both at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "resp.h"
#include "resp_commands.h"
#include "resp_tls.h"

#define READ_CHUNK (16u << 10)
#define IN_KEEP (1u << 20)   /* an idle input buffer larger than this is freed */
#define OUT_FLUSH (64u << 10) /* unsent output that pauses a connection */
#define OUT_KEEP (1u << 20)
#define READ_TURN (1u << 20)   /* most bytes read from one connection per turn */
#define RESERVED_FDS 64        /* descriptors kept for the engine, the mount, the listeners */
#define LOG_BURST 10           /* client log lines per second before the rest are counted */
#define LINGER_S 2             /* how long input is discarded after a protocol error's reply */

struct inbuf {
    char *data;
    size_t start, len, cap; /* unconsumed bytes are data[start, len) */
};

struct resp_conn {
    struct resp_server *srv;
    int fd;
    struct resp_tls_conn *tls;  /* NULL: plain text */
    bool handshaking;           /* TLS handshake not done yet */
    struct resp_client c;
    struct resp_parser p;
    struct inbuf in;
    char **argv;
    size_t argv_cap;
    size_t out_sent;            /* bytes of c.out already sent */
    bool closing;               /* close once its output is sent */
    bool dead;                  /* close now, output or not (peer gone, limit tripped) */
    bool linger;                /* a protocol error: unread input may follow the reply */
    long long drain_until;      /* lingering: input discarded until EOF or then (0: not) */
    bool read_wants_write;      /* TLS: the last read needs the socket writable */
    bool write_wants_read;      /* TLS: the last write needs the socket readable */
    bool hs_wants_write;        /* TLS: the handshake needs the socket writable */
    uint32_t events;            /* armed in epoll */
    long long last_io;          /* monotonic second of the last byte in or out */
    uint64_t out_turn;          /* its output waits for the syncer's round (0: it does not) */
    bool in_ready, on_again;
    struct resp_conn *next, *prev;
    struct resp_conn *ready_next;  /* served in this turn */
    struct resp_conn *wait_next;   /* on srv->waiting */
    struct resp_conn *again_next;  /* on srv->again */
};

struct resp_server {
    struct resp_shared sh;
    int listen_fd, tls_listen_fd;
    int tls_port;
    struct resp_tls *tls;
    int wake[2];
    int ep;
    pthread_t loop;
    bool loop_started;
    pthread_mutex_t mu; /* protects stopping, self_stop */
    struct resp_conn *conns;
    bool stopping;
    bool self_stop;     /* resp_server_stop ran on the loop: it frees the server */
    size_t max_qbuf;
    unsigned timeout_s;
    long long last_sweep;
    unsigned ndraining; /* connections lingering (drain_until set) */
    long long log_sec;  /* server_log's rate limit */
    unsigned log_n;
    unsigned long long log_dropped;
    /* The syncer: makes each turn's writes durable while the loop serves
     * the next turn (see the header comment).  sync_mu protects the four
     * fields below it; the loop alone touches turn and waiting. */
    pthread_t syncer;
    bool syncer_started;
    JET_SESID sync_ses;
    int sync_pipe[2];   /* syncer -> loop: a round is done */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uint64_t sync_requested, sync_done;
    bool sync_failed, sync_stop;
    uint64_t turn;
    struct resp_conn *waiting;
    struct resp_conn *again; /* input to serve next turn without waiting for epoll */
    /* The expiry sweep (resp_expire.c): its own session, opened on the
     * loop once the expiry table exists; run every SWEEP_EVERY_MS. */
    struct resp_client sweeper;
    bool sweeper_open;
    struct resp_sweep sweep;
    long long last_expire_ms;
};

#define SWEEP_EVERY_MS 100

/* The server whose loop runs on the calling thread (NULL elsewhere). */
static _Thread_local struct resp_server *tl_loop;

static void wake_loop(struct resp_server *srv)
{
    ssize_t n;
    do n = write(srv->wake[1], "x", 1);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, so the loop will wake anyway. */
}

static long long mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* A line about a client, at most LOG_BURST a second; the next line that
 * gets through says how many did not. */
static void server_log(struct resp_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void server_log(struct resp_server *srv, const char *fmt, ...)
{
    long long now = mono_s();
    if (now != srv->log_sec) {
        srv->log_sec = now;
        srv->log_n = 0;
    }
    if (++srv->log_n > LOG_BURST) {
        srv->log_dropped++;
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (srv->log_dropped)
        fprintf(stderr, "jetfs: %s (%llu similar lines were not logged)\n", line, srv->log_dropped);
    else
        fprintf(stderr, "jetfs: %s\n", line);
    srv->log_dropped = 0;
}

/* ---- a connection's bytes ---- */

static ssize_t io_recv(struct resp_conn *cn, void *buf, size_t n)
{
    if (cn->tls) return resp_tls_recv(cn->tls, buf, n);
    for (;;) {
        ssize_t r = recv(cn->fd, buf, n, MSG_DONTWAIT);
        if (r > 0) return r;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RESP_IO_WANT_READ;
        return RESP_IO_CLOSED;
    }
}

static ssize_t io_send(struct resp_conn *cn, const void *buf, size_t n)
{
    if (cn->tls) return resp_tls_send(cn->tls, buf, n);
    for (;;) {
        ssize_t w = send(cn->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) return w;
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RESP_IO_WANT_WRITE;
        return RESP_IO_CLOSED;
    }
}

static size_t out_pending(const struct resp_conn *cn)
{
    return cn->c.out.len - cn->out_sent;
}

/* Too much unsent output: execute and read nothing more until it drains. */
static bool paused(const struct resp_conn *cn)
{
    return out_pending(cn) >= OUT_FLUSH;
}

static void again_add(struct resp_conn *cn)
{
    if (cn->on_again) return;
    cn->on_again = true;
    cn->again_next = cn->srv->again;
    cn->srv->again = cn;
}

/* Arms epoll for what the connection can use now. */
static void update_events(struct resp_conn *cn)
{
    uint32_t want = 0;
    if (cn->handshaking) {
        want = cn->hs_wants_write ? EPOLLOUT : EPOLLIN;
    } else if (cn->drain_until) {
        want = EPOLLIN;
    } else {
        if (!cn->closing && !paused(cn)) want |= cn->read_wants_write ? EPOLLOUT : EPOLLIN;
        if (out_pending(cn) && !cn->out_turn) want |= cn->write_wants_read ? EPOLLIN : EPOLLOUT;
    }
    if (want == cn->events) return;
    struct epoll_event ev = {.events = want, .data.ptr = cn};
    if (epoll_ctl(cn->srv->ep, EPOLL_CTL_MOD, cn->fd, &ev) != 0) {
        cn->dead = true; /* cannot be watched: close it rather than leave it unserved */
        return;
    }
    cn->events = want;
}

/* Sends what the socket takes of the connection's output, which must be
 * cleared to go (durable).  When it has all gone, a paused connection
 * with input left is served again next turn. */
static void send_some(struct resp_conn *cn)
{
    struct resp_client *c = &cn->c;
    bool was_paused = paused(cn);
    if (c->out.oom) {
        cn->dead = true;
        return;
    }
    cn->write_wants_read = false;
    while (out_pending(cn)) {
        ssize_t w = io_send(cn, c->out.data + cn->out_sent, out_pending(cn));
        if (w == RESP_IO_WANT_WRITE) break;
        if (w == RESP_IO_WANT_READ) {
            cn->write_wants_read = true;
            break;
        }
        if (w < 0) {
            cn->dead = true;
            return;
        }
        cn->out_sent += (size_t)w;
        cn->last_io = mono_s();
    }
    if (!out_pending(cn)) {
        c->out.len = cn->out_sent = 0;
        resp_buf_shrink(&c->out, OUT_KEEP);
    } else if (cn->out_sent >= OUT_FLUSH) {
        /* Keep the buffer from growing without end under a slow reader. */
        memmove(c->out.data, c->out.data + cn->out_sent, out_pending(cn));
        c->out.len -= cn->out_sent;
        cn->out_sent = 0;
    }
    if (was_paused && !paused(cn) && !cn->closing &&
        (cn->in.start < cn->in.len || (cn->tls && resp_tls_pending(cn->tls))))
        again_add(cn);
}

/*
 * Room for at least READ_CHUNK more bytes, or for the bulk in progress.
 * The buffer at least doubles when it grows, so a large request (a 40 MB
 * MSET of many small arguments) is copied a bounded number of times, not
 * once per READ_CHUNK; and it never grows by more than what has already
 * arrived, so a client that only announces a huge bulk gets no memory for
 * it.  The parser's limits bound the whole.
 */
static bool in_reserve(struct inbuf *in, size_t wanted)
{
    size_t need = READ_CHUNK;
    if (wanted > need) need = wanted < in->len ? wanted : (in->len > need ? in->len : need);
    if (in->cap - in->len >= need) return true;
    size_t ncap = in->len + need, doubled = in->cap * 2, bound = in->len * 2 + READ_CHUNK;
    if (doubled > bound) doubled = bound;
    if (doubled > ncap) ncap = doubled;
    char *nd = realloc(in->data, ncap);
    if (!nd) return false;
    in->data = nd;
    in->cap = ncap;
    return true;
}

static void in_compact(struct inbuf *in)
{
    if (in->start == 0) return;
    memmove(in->data, in->data + in->start, in->len - in->start);
    in->len -= in->start;
    in->start = 0;
    if (in->len == 0 && in->cap > IN_KEEP) {
        free(in->data);
        in->data = NULL;
        in->cap = 0;
    }
}

/* Executes the complete requests in the buffer until it is empty or the
 * connection is paused; false: close the connection (after its output).
 * Nothing is sent, and it does not return, while a write batch is open
 * (resp_commands.h): the batch is committed first. */
static bool execute_pending(struct resp_conn *cn)
{
    struct resp_client *c = &cn->c;
    struct resp_parser *p = &cn->p;
    struct inbuf *in = &cn->in;
    while (in->start < in->len && !paused(cn)) {
        char *base = in->data + in->start;
        enum resp_parse_result r = resp_parse(p, base, in->len - in->start);
        if (r == RESP_PARSE_MORE) break;
        if (r == RESP_PARSE_ERROR) {
            resp_batch_end(c);
            resp_reply_error(&c->out, "ERR %s", p->err);
            cn->linger = true;
            return false;
        }
        if (p->argc) {
            if (p->argc > cn->argv_cap) {
                char **na = realloc(cn->argv, p->argc * sizeof *na);
                if (!na) {
                    resp_batch_end(c);
                    cn->dead = true;
                    return false;
                }
                cn->argv = na;
                cn->argv_cap = p->argc;
            }
            for (size_t i = 0; i < p->argc; i++) cn->argv[i] = base + p->off[i];
            resp_execute(c, p->argc, cn->argv, p->len);
        }
        in->start += p->consumed;
        resp_parser_reset(p);
        if (c->shutdown || c->quit) return false; /* both end the batch before they run (resp_commands.c) */
        if (c->out.oom) {
            resp_batch_end(c);
            cn->dead = true;
            return false;
        }
        if (paused(cn)) resp_batch_end(c);
    }
    resp_batch_end(c);
    return true;
}

/* Executes what is buffered, then reads and executes what has arrived,
 * until the socket is drained, READ_TURN bytes came, or the connection
 * paused; sets closing (end of input, an error, QUIT, SHUTDOWN) or dead
 * (a limit). */
static void conn_input(struct resp_conn *cn)
{
    struct resp_client *c = &cn->c;
    struct inbuf *in = &cn->in;
    size_t got = 0;
    if (cn->closing || cn->dead) return;
    if (!execute_pending(cn)) {
        cn->closing = true;
        return;
    }
    cn->read_wants_write = false;
    while (got < READ_TURN && !paused(cn)) {
        in_compact(in);
        if (!in_reserve(in, resp_parse_wanted(&cn->p, in->len))) {
            resp_reply_error(&c->out, "ERR out of memory reading the request");
            cn->closing = true;
            return;
        }
        ssize_t n = io_recv(cn, in->data + in->len, in->cap - in->len);
        if (n == RESP_IO_WANT_READ) break;
        if (n == RESP_IO_WANT_WRITE) {
            cn->read_wants_write = true;
            break;
        }
        if (n < 0) {
            cn->closing = true; /* end of input: answer what came, then close */
            return;
        }
        in->len += (size_t)n;
        got += (size_t)n;
        cn->last_io = mono_s();
        if (!execute_pending(cn)) {
            cn->closing = true;
            return;
        }
        if (in->len - in->start > cn->srv->max_qbuf) {
            server_log(cn->srv, "closing client %llu (%s): its query buffer holds %zu unexecuted bytes, over the "
                                "limit of %zu (--client-query-buffer-limit)",
                       (unsigned long long)c->id, c->peer, in->len - in->start, cn->srv->max_qbuf);
            cn->dead = true;
            return;
        }
    }
    /* (What is still in the socket, epoll announces again next turn.) */
    if (cn->tls && !paused(cn) && resp_tls_pending(cn->tls)) again_add(cn);
}

static void conn_free(struct resp_conn *cn)
{
    resp_tls_conn_free(cn->tls);
    free(cn->argv);
    free(cn->in.data);
    resp_parser_free(&cn->p);
    close(cn->fd);
    free(cn);
}

/* Ends a connection: its session, its socket; SHUTDOWN's callback last.
 * False when the callback stopped the server (srv is gone). */
static bool conn_close(struct resp_conn *cn)
{
    struct resp_server *srv = cn->srv;
    bool shutdown_requested = cn->c.shutdown;
    for (struct resp_conn **pp = &srv->waiting; *pp; pp = &(*pp)->wait_next)
        if (*pp == cn) {
            *pp = cn->wait_next;
            break;
        }
    if (cn->drain_until) srv->ndraining--;
    if (cn->on_again)
        for (struct resp_conn **pp = &srv->again; *pp; pp = &(*pp)->again_next)
            if (*pp == cn) {
                *pp = cn->again_next;
                break;
            }
    epoll_ctl(srv->ep, EPOLL_CTL_DEL, cn->fd, NULL);
    resp_client_close(&cn->c);
    atomic_fetch_sub(&srv->sh.clients, 1);
    if (cn->prev) cn->prev->next = cn->next;
    else srv->conns = cn->next;
    if (cn->next) cn->next->prev = cn->prev;
    if (shutdown_requested) shutdown(cn->fd, SHUT_RDWR); /* the client sees the close at once */
    conn_free(cn);
    if (shutdown_requested && srv->sh.on_shutdown) {
        srv->sh.on_shutdown(srv->sh.on_shutdown_arg);
        pthread_mutex_lock(&srv->mu);
        bool gone = srv->self_stop;
        pthread_mutex_unlock(&srv->mu);
        if (gone) return false;
    }
    return true;
}

/*
 * After its output may go: sends what it can, then closes the connection
 * if it is dead, or closing with nothing left to send (SHUTDOWN waits for
 * nobody: one try).  After a protocol error the client may still be
 * sending the request that was refused (a bulk over the limit): closing
 * with unread input would reset the connection and lose the error reply
 * in transit, so the connection lingers instead -- its sending side shut,
 * its input discarded -- until the client closes or LINGER_S pass.  False
 * when a close stopped the server.
 */
static bool conn_send(struct resp_conn *cn)
{
    if (!cn->dead && !cn->handshaking && !cn->drain_until) send_some(cn);
    if (cn->dead) return conn_close(cn);
    if (cn->closing && (!out_pending(cn) || cn->c.shutdown)) {
        if (!cn->linger || cn->c.shutdown) return conn_close(cn);
        if (!cn->drain_until) {
            if (shutdown(cn->fd, SHUT_WR) != 0) return conn_close(cn);
            cn->drain_until = mono_s() + LINGER_S;
            cn->srv->ndraining++;
        }
    }
    update_events(cn);
    return true;
}

/* Lingering: discards what arrives; the end of input ends the connection. */
static void conn_drain(struct resp_conn *cn)
{
    char sink[16384];
    for (size_t got = 0; got < READ_TURN;) {
        ssize_t r = recv(cn->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (r <= 0) {
            cn->dead = true;
            return;
        }
        got += (size_t)r;
    }
}

/* Says why and closes, without waiting.  What the client already sent
 * is read first: closing on unread input would reset the connection,
 * and a reset can destroy the reply before the client reads it. */
static void refuse(int fd, const char *msg)
{
    char sink[4096];
    ssize_t n = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n; /* best effort: the connection is being closed */
    if (shutdown(fd, SHUT_WR) == 0)
        for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++) {
        }
    close(fd);
}

static void format_peer(const struct sockaddr_storage *ss, char *buf, size_t cb)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(buf, cb, "%s:%d", host, port);
}

/* Accepts one connection from listener lfd and opens its session; false
 * when none waits. */
static bool accept_one(struct resp_server *srv, int lfd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    bool tls = lfd == srv->tls_listen_fd;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: back off instead of spinning on poll. */
            struct pollfd w = {srv->wake[0], POLLIN, 0};
            int r = poll(&w, 1, 50);
            (void)r;
        }
        return false;
    }
    atomic_fetch_add(&srv->sh.connections, 1);
    if (atomic_load(&srv->sh.clients) >= srv->sh.max_clients) {
        atomic_fetch_add(&srv->sh.rejected, 1);
        /* A TLS client could not read plain text: it sees the close. */
        if (tls) close(fd);
        else refuse(fd, "-ERR max number of clients reached\r\n");
        return true;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        /* not TCP, or not supported: latency only */
    }
    struct resp_conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        refuse(fd, "-ERR out of memory\r\n");
        return true;
    }
    cn->srv = srv;
    cn->fd = fd;
    cn->last_io = mono_s();
    if (tls && resp_tls_conn_new(srv->tls, fd, &cn->tls) < 0) {
        free(cn);
        close(fd);
        return true;
    }
    cn->handshaking = tls;
    resp_parser_init(&cn->p, &srv->sh.lim);
    char why[200] = "";
    JET_ERR err = resp_client_open(&cn->c, &srv->sh, why, sizeof why);
    format_peer(&ss, cn->c.peer, sizeof cn->c.peer);
    if (err < 0 && err != JET_errInstanceUnavailable) {
        /* (Unavailable: served anyway, for what needs no session: INFO.) */
        char msg[300];
        snprintf(msg, sizeof msg, "-ERR jetfs cannot serve this connection: %s\r\n", why);
        resp_client_close(&cn->c);
        resp_parser_free(&cn->p);
        resp_tls_conn_free(cn->tls);
        free(cn);
        if (tls) close(fd);
        else refuse(fd, msg);
        return true;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = cn};
    if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        resp_client_close(&cn->c);
        resp_parser_free(&cn->p);
        resp_tls_conn_free(cn->tls);
        free(cn);
        if (tls) close(fd);
        else refuse(fd, "-ERR cannot watch this connection\r\n");
        return true;
    }
    cn->events = EPOLLIN;
    atomic_fetch_add(&srv->sh.clients, 1);
    cn->next = srv->conns;
    if (srv->conns) srv->conns->prev = cn;
    srv->conns = cn;
    return true;
}

/* The TLS handshake's next step; a failure (a plain-text client, no or a
 * bad client certificate, an old protocol) is logged and the connection
 * is dropped. */
static void conn_handshake(struct resp_conn *cn)
{
    char why[300] = "";
    int r = resp_tls_handshake(cn->tls, why, sizeof why);
    if (r == 1) {
        cn->handshaking = false;
        cn->hs_wants_write = false;
        cn->last_io = mono_s();
        return;
    }
    if (r == RESP_IO_WANT_READ || r == RESP_IO_WANT_WRITE) {
        cn->hs_wants_write = r == RESP_IO_WANT_WRITE;
        return;
    }
    /* OpenSSL's words for a plain-text request are obscure: say it. */
    bool plain = strstr(why, "wrong version number") || strstr(why, "http request") || strstr(why, "record layer");
    server_log(cn->srv, "TLS handshake with %s failed, connection dropped: %s%s", cn->c.peer, why,
               plain ? " (a plain-text client on the TLS port?)" : "");
    cn->dead = true;
}

/* One connection is ready (epoll said so, or it was on the again list). */
static void conn_ready(struct resp_conn *cn, uint32_t events, struct resp_conn **ready)
{
    if (!cn->in_ready) {
        cn->in_ready = true;
        cn->ready_next = *ready;
        *ready = cn;
    }
    if (events & EPOLLERR) {
        cn->dead = true; /* reset or unreachable: nothing more can be sent */
        return;
    }
    if (cn->drain_until) {
        conn_drain(cn);
        return;
    }
    if (cn->handshaking) {
        conn_handshake(cn);
        if (cn->handshaking || cn->dead) return;
    }
    /* Output from earlier turns that was cleared to go. */
    if (out_pending(cn) && !cn->out_turn) send_some(cn);
    if (cn->dead) return;
    if ((events & EPOLLHUP) && (paused(cn) || cn->closing)) {
        cn->dead = true; /* gone both ways, and nothing more will be read */
        return;
    }
    conn_input(cn);
}

static void *syncer_main(void *arg)
{
    struct resp_server *srv = arg;
    pthread_mutex_lock(&srv->sync_mu);
    while (!srv->sync_stop) {
        if (srv->sync_requested == srv->sync_done) {
            pthread_cond_wait(&srv->sync_cv, &srv->sync_mu);
            continue;
        }
        uint64_t t = srv->sync_requested;
        pthread_mutex_unlock(&srv->sync_mu);
        JET_ERR err = JetCommitTransaction(srv->sync_ses, JET_bitWaitAllLevel0Commit);
        pthread_mutex_lock(&srv->sync_mu);
        srv->sync_done = t;
        if (err < 0) srv->sync_failed = true;
        ssize_t n;
        do n = write(srv->sync_pipe[1], "x", 1);
        while (n < 0 && errno == EINTR);
        /* EAGAIN: the pipe is full, so the loop will look anyway. */
    }
    pthread_mutex_unlock(&srv->sync_mu);
    return NULL;
}

/* After a turn: each served connection's output goes out now if nothing
 * it may depend on awaits durability, else waits for the syncer's round.
 * False when a close stopped the server. */
static bool end_turn(struct resp_server *srv, struct resp_conn *ready)
{
    bool wrote = false;
    for (struct resp_conn *cn = ready; cn; cn = cn->ready_next) wrote |= cn->c.unflushed;
    pthread_mutex_lock(&srv->sync_mu);
    uint64_t target = srv->sync_requested != srv->sync_done ? srv->sync_requested : 0;
    if (wrote) {
        target = srv->sync_requested = ++srv->turn;
        pthread_cond_signal(&srv->sync_cv);
    }
    pthread_mutex_unlock(&srv->sync_mu);
    for (struct resp_conn *cn = ready, *next; cn; cn = next) {
        next = cn->ready_next;
        cn->in_ready = false;
        if (cn->dead) {
            /* Its writes still become durable with the round; nobody is
             * left to answer. */
            if (!conn_close(cn)) return false;
        } else if (!target && !cn->out_turn) {
            if (!conn_send(cn)) return false;
        } else if (out_pending(cn) || cn->out_turn) {
            if (!cn->out_turn) {
                cn->wait_next = srv->waiting;
                srv->waiting = cn;
            }
            if (target > cn->out_turn) cn->out_turn = target;
            update_events(cn);
        } else if (cn->closing) {
            if (!conn_send(cn)) return false; /* nothing to send: closes, or lingers */
        } else {
            update_events(cn);
        }
    }
    return true;
}

/* The syncer finished a round: what waited for it goes out (or, if the
 * writes could not be made durable, the connections that wrote are
 * closed without their replies).  False when a close stopped the server. */
static bool sync_finished(struct resp_server *srv)
{
    pthread_mutex_lock(&srv->sync_mu);
    uint64_t done = srv->sync_done;
    bool failed = srv->sync_failed;
    pthread_mutex_unlock(&srv->sync_mu);
    for (struct resp_conn **pp = &srv->waiting; *pp;) {
        struct resp_conn *cn = *pp;
        if (cn->out_turn > done) {
            pp = &cn->wait_next;
            continue;
        }
        *pp = cn->wait_next;
        cn->out_turn = 0;
        if (failed && cn->c.unflushed) {
            fprintf(stderr, "jetfs: client %llu: its writes could not be made durable; closing the connection "
                            "without sending their replies\n",
                    (unsigned long long)cn->c.id);
            cn->dead = true;
        }
        cn->c.unflushed = false;
        if (!conn_send(cn)) return false;
    }
    return true;
}

/* Once a second with a timeout set: closes the clients idle that long
 * (one whose output waits for the syncer is not idle), and those that
 * lingered long enough. */
static bool sweep_idle(struct resp_server *srv, long long now)
{
    if ((!srv->timeout_s && !srv->ndraining) || now == srv->last_sweep) return true;
    srv->last_sweep = now;
    for (struct resp_conn *cn = srv->conns, *next; cn; cn = next) {
        next = cn->next;
        bool expired = cn->drain_until ? now >= cn->drain_until
                                       : srv->timeout_s && !cn->out_turn && now - cn->last_io > (long long)srv->timeout_s;
        if (expired && !conn_close(cn)) return false;
    }
    return true;
}

/* Frees everything once the loop has ended. */
static void server_free(struct resp_server *srv)
{
    if (srv->syncer_started) {
        pthread_mutex_lock(&srv->sync_mu);
        srv->sync_stop = true;
        pthread_cond_signal(&srv->sync_cv);
        pthread_mutex_unlock(&srv->sync_mu);
        pthread_join(srv->syncer, NULL);
    }
    while (srv->conns) {
        struct resp_conn *cn = srv->conns;
        srv->conns = cn->next;
        resp_client_close(&cn->c);
        atomic_fetch_sub(&srv->sh.clients, 1);
        conn_free(cn);
    }
    if (srv->sweeper_open) resp_client_close(&srv->sweeper);
    if (srv->sync_ses) (void)JetEndSession(srv->sync_ses, 0); /* no transaction: nothing to lose */
    close(srv->ep);
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    if (srv->tls_listen_fd >= 0) close(srv->tls_listen_fd);
    resp_tls_free(srv->tls);
    close(srv->wake[0]);
    close(srv->wake[1]);
    close(srv->sync_pipe[0]);
    close(srv->sync_pipe[1]);
    pthread_mutex_destroy(&srv->sync_mu);
    pthread_cond_destroy(&srv->sync_cv);
    free(srv->sh.dbpath);
    pthread_mutex_destroy(&srv->mu);
    pthread_mutex_destroy(&srv->sh.cursor_mu);
    free(srv);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Between turns, no transaction open anywhere: reclaims some expired keys
 * (resp_expire.c), every SWEEP_EVERY_MS while the expiry table exists. */
static void sweep_expired(struct resp_server *srv)
{
    long long now = mono_ms();
    if (!srv->sh.exp_table || srv->sh.read_only || now - srv->last_expire_ms < SWEEP_EVERY_MS) return;
    srv->last_expire_ms = now;
    char why[256];
    JET_ERR err = JET_errSuccess;
    if (!srv->sweeper_open) {
        if ((err = resp_client_open(&srv->sweeper, &srv->sh, why, sizeof why)) < 0) {
            resp_client_close(&srv->sweeper);
            server_log(srv, "the expiry sweep cannot open its session: %s", why);
            return;
        }
        srv->sweeper_open = true;
    }
    if ((err = resp_expire_sweep(&srv->sweeper, &srv->sweep)) < 0)
        server_log(srv, "the expiry sweep failed: %s (%ld); it tries again", JetErrorString(err), (long)err);
}

static bool stopping(struct resp_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    bool st = srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    return st;
}

static void *loop_main(void *arg)
{
    struct resp_server *srv = arg;
    struct epoll_event evs[128];
    tl_loop = srv;
    while (!stopping(srv)) {
        int wait_ms = srv->again ? 0 : srv->timeout_s || srv->ndraining ? 1000 : -1;
        if (srv->sh.exp_table && !srv->sh.read_only && (wait_ms < 0 || wait_ms > SWEEP_EVERY_MS))
            wait_ms = SWEEP_EVERY_MS;
        int n = epoll_wait(srv->ep, evs, 128, wait_ms);
        if (n < 0 && errno != EINTR) break;
        struct resp_conn *ready = NULL;
        bool synced = false;
        /* What could not wait for epoll: input a pause left, or TLS
         * already decrypted.  Taken first; epoll's events join below. */
        struct resp_conn *again = srv->again;
        srv->again = NULL;
        for (struct resp_conn *cn = again, *next; cn; cn = next) {
            next = cn->again_next;
            cn->on_again = false;
            conn_ready(cn, 0, &ready);
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &srv->wake) {
                char drain[64];
                while (read(srv->wake[0], drain, sizeof drain) > 0) {
                }
            } else if (evs[i].data.ptr == &srv->sync_pipe) {
                char drain[64];
                while (read(srv->sync_pipe[0], drain, sizeof drain) > 0) {
                }
                synced = true;
            } else if (evs[i].data.ptr == &srv->listen_fd) {
                for (int k = 0; k < 64 && accept_one(srv, srv->listen_fd); k++) {
                }
            } else if (evs[i].data.ptr == &srv->tls_listen_fd) {
                for (int k = 0; k < 64 && accept_one(srv, srv->tls_listen_fd); k++) {
                }
            } else {
                conn_ready(evs[i].data.ptr, evs[i].events, &ready);
            }
        }
        /* Connections close only here, after every event of this batch:
         * a later event may name one. */
        if (!end_turn(srv, ready) || (synced && !sync_finished(srv)) || !sweep_idle(srv, mono_s())) {
            /* on_shutdown stopped the server from this thread. */
            server_free(srv);
            return NULL;
        }
        sweep_expired(srv);
    }
    pthread_mutex_lock(&srv->mu);
    bool self = srv->self_stop;
    pthread_mutex_unlock(&srv->mu);
    if (self) server_free(srv);
    return NULL;
}

/* ---- start / stop ---- */

static int listen_on(const char *host, int port, int *pport, char *why, size_t cbwhy)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int fd = -1, rc = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", port);
    if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        snprintf(why, cbwhy, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
            rc = -errno;
            close(fd);
            fd = -1;
            continue;
        }
        break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(why, cbwhy, "cannot listen on %s:%d: %s", host, port, strerror(-rc));
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "getsockname: %s", strerror(errno));
        close(fd);
        return rc;
    }
    *pport = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}
/*
 * Descriptors for max_clients connections plus RESERVED_FDS, raising the
 * soft limit if the hard one allows; else serves fewer clients, says so,
 * as Redis does ("maxclients has been reduced").
 */
static unsigned fit_max_clients(unsigned want)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)want + RESERVED_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return want;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit nrl = rl;
        nrl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nrl) == 0) rl = nrl;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return want;
    unsigned fit = rl.rlim_cur > RESERVED_FDS + 1 ? (unsigned)(rl.rlim_cur - RESERVED_FDS) : 1;
    fprintf(stderr, "jetfs: maxclients %u needs %llu file descriptors but the limit is %llu (ulimit -n); serving at "
                    "most %u clients\n",
            want, (unsigned long long)need, (unsigned long long)rl.rlim_cur, fit);
    return fit;
}

/* Everything the options ask for that can be checked before anything is
 * opened. */
static int check_options(const struct resp_options *opt, char *why, size_t cbwhy)
{
    int rc;
    if (opt->port < 0 || opt->port > 65535 || opt->tls_port < 0 || opt->tls_port > 65535) {
        snprintf(why, cbwhy, "invalid port");
        return JET_errInvalidParameter;
    }
    if (opt->no_plain && !opt->tls_cert_file) {
        snprintf(why, cbwhy, "no listener: plain text is off and no TLS certificate was given");
        return JET_errInvalidParameter;
    }
    if (!opt->tls_cert_file != !opt->tls_key_file || (opt->tls_ca_file && !opt->tls_cert_file)) {
        snprintf(why, cbwhy, "TLS needs both --tls-cert-file and --tls-key-file (and --tls-ca-cert-file only with them)");
        return JET_errInvalidParameter;
    }
    if (opt->password && !opt->password_len) {
        snprintf(why, cbwhy, "the password is empty");
        return JET_errInvalidParameter;
    }
    if (opt->ndisabled_commands > RESP_DISABLED_MAX) {
        snprintf(why, cbwhy, "at most %d commands can be disabled", RESP_DISABLED_MAX);
        return JET_errInvalidParameter;
    }
    for (size_t i = 0; i < opt->ndisabled_commands; i++)
        if (!resp_command_known(opt->disabled_commands[i])) {
            snprintf(why, cbwhy, "--disable-command: there is no command '%s'", opt->disabled_commands[i]);
            return JET_errInvalidParameter;
        }
    if (!opt->no_plain &&
        (rc = resp_check_exposure(opt->host, opt->password != NULL, opt->protected_mode_off, why, cbwhy)) < 0)
        return rc;
    if (opt->tls_cert_file &&
        (rc = resp_check_exposure(opt->tls_host, opt->password != NULL, opt->protected_mode_off, why, cbwhy)) < 0)
        return rc;
    return 0;
}

int resp_server_start(JET_INSTANCE inst, const char *dbpath, const struct resp_options *opt,
                      struct resp_server **out, char *why, size_t cbwhy)
{
    struct resp_options defaults = {0};
    struct resp_server *srv = NULL;
    int rc;

    *out = NULL;
    if (cbwhy) why[0] = '\0';
    if (!opt) opt = &defaults;
    if (!dbpath) {
        snprintf(why, cbwhy, "invalid database path");
        return JET_errInvalidParameter;
    }
    if ((rc = check_options(opt, why, cbwhy)) < 0) return rc;
    bool no_table = false;
    if ((rc = (int)resp_table_ensure(inst, dbpath, opt->read_only, &no_table, why, cbwhy)) < 0) return rc;
    if (no_table)
        fprintf(stderr, "jetfs: %s has no table '%s': serving an empty keyspace, read-only\n", dbpath, RESP_TABLE);
    if (!(srv = calloc(1, sizeof *srv))) {
        snprintf(why, cbwhy, "out of memory");
        return JET_errOutOfMemory;
    }
    srv->listen_fd = srv->tls_listen_fd = srv->wake[0] = srv->wake[1] = srv->ep = -1;
    srv->sync_pipe[0] = srv->sync_pipe[1] = -1;
    srv->tls_port = -1;
    struct resp_shared *sh = &srv->sh;
    sh->inst = inst;
    sh->port = -1;
    sh->max_clients = fit_max_clients(opt->max_clients ? opt->max_clients : RESP_MAX_CLIENTS_DEFAULT);
    sh->lim.max_request = opt->max_request_bytes;
    sh->lim.max_bulk = opt->max_bulk_bytes;
    resp_limits_default(&sh->lim);
    srv->max_qbuf = opt->query_buffer_bytes ? opt->query_buffer_bytes : RESP_QUERY_BUFFER_DEFAULT;
    srv->timeout_s = opt->timeout_s;
    for (size_t i = 0; i < opt->ndisabled_commands; i++)
        sh->disabled[sh->ndisabled++] = resp_command_by_name(opt->disabled_commands[i]);
    if (resp_auth_init(&sh->auth, opt->password, opt->password_len) < 0) {
        snprintf(why, cbwhy, "cannot hash the password (libcrypto)");
        free(srv);
        return -EINVAL;
    }
    sh->read_only = opt->read_only;
    sh->on_shutdown = opt->on_shutdown;
    sh->on_shutdown_arg = opt->on_shutdown_arg;
    sh->started = time(NULL);
    sh->next_cursor = (uint64_t)sh->started << 16; /* see resp_keyspace.c */
    if (pthread_mutex_init(&sh->cursor_mu, NULL) != 0) {
        free(srv);
        snprintf(why, cbwhy, "cannot create a mutex");
        return -ENOMEM;
    }
    if (pthread_mutex_init(&srv->mu, NULL) != 0) {
        rc = -ENOMEM;
        snprintf(why, cbwhy, "cannot create a mutex");
        goto out_cursor_mu;
    }
    if (!(sh->dbpath = strdup(dbpath))) {
        rc = JET_errOutOfMemory;
        snprintf(why, cbwhy, "out of memory");
        goto out_mu;
    }
    if (opt->tls_cert_file &&
        (rc = resp_tls_new(opt->tls_cert_file, opt->tls_key_file, opt->tls_ca_file, &srv->tls, why, cbwhy)) < 0)
        goto out_path;
    if (srv->tls) {
        /* OpenSSL writes to the socket with write(), which raises SIGPIPE
         * when a client has gone; as Redis, the process ignores it (a host
         * that handles it keeps its handler). */
        struct sigaction sa;
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL && signal(SIGPIPE, SIG_IGN) == SIG_ERR)
            fprintf(stderr, "jetfs: cannot ignore SIGPIPE: a TLS client that goes may end the process\n");
    }
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "pipe: %s", strerror(errno));
        goto out_tls;
    }
    if (!opt->no_plain &&
        (srv->listen_fd = listen_on(opt->host ? opt->host : "127.0.0.1", opt->port, &sh->port, why, cbwhy)) < 0) {
        rc = srv->listen_fd;
        goto out_pipe;
    }
    if (srv->tls && (srv->tls_listen_fd = listen_on(opt->tls_host ? opt->tls_host : "127.0.0.1", opt->tls_port,
                                                    &srv->tls_port, why, cbwhy)) < 0) {
        rc = srv->tls_listen_fd;
        goto out_listen;
    }
    if ((srv->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(why, cbwhy, "epoll_create1: %s", strerror(errno));
        goto out_listen;
    }
    if (pipe2(srv->sync_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "pipe: %s", strerror(errno));
        goto out_ep;
    }
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &srv->listen_fd};
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &srv->tls_listen_fd};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &srv->wake};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &srv->sync_pipe};
    if ((srv->listen_fd >= 0 && epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listen_fd, &lev) != 0) ||
        (srv->tls_listen_fd >= 0 && epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->tls_listen_fd, &tev) != 0) ||
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->wake[0], &wev) != 0 ||
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->sync_pipe[0], &sev) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "epoll_ctl: %s", strerror(errno));
        goto out_sync_pipe;
    }
    if ((rc = (int)JetBeginSession(inst, &srv->sync_ses, NULL, NULL)) < 0) {
        snprintf(why, cbwhy, "could not begin the syncer's session: %s", JetErrorString(rc));
        srv->sync_ses = 0;
        goto out_sync_pipe;
    }
    pthread_mutex_init(&srv->sync_mu, NULL);
    pthread_cond_init(&srv->sync_cv, NULL);
    if ((rc = pthread_create(&srv->syncer, NULL, syncer_main, srv)) != 0) {
        snprintf(why, cbwhy, "cannot start the syncer thread: %s", strerror(rc));
        rc = -rc;
        goto out_sync;
    }
    srv->syncer_started = true;
    if ((rc = pthread_create(&srv->loop, NULL, loop_main, srv)) != 0) {
        snprintf(why, cbwhy, "cannot start the server thread: %s", strerror(rc));
        rc = -rc;
        pthread_mutex_lock(&srv->sync_mu);
        srv->sync_stop = true;
        pthread_cond_signal(&srv->sync_cv);
        pthread_mutex_unlock(&srv->sync_mu);
        pthread_join(srv->syncer, NULL);
        goto out_sync;
    }
    srv->loop_started = true;
    *out = srv;
    return 0;

out_sync:
    pthread_mutex_destroy(&srv->sync_mu);
    pthread_cond_destroy(&srv->sync_cv);
    (void)JetEndSession(srv->sync_ses, 0);
out_sync_pipe:
    close(srv->sync_pipe[0]);
    close(srv->sync_pipe[1]);
out_ep:
    close(srv->ep);
out_listen:
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    if (srv->tls_listen_fd >= 0) close(srv->tls_listen_fd);
out_pipe:
    close(srv->wake[0]);
    close(srv->wake[1]);
out_tls:
    resp_tls_free(srv->tls);
out_path:
    free(sh->dbpath);
out_mu:
    pthread_mutex_destroy(&srv->mu);
out_cursor_mu:
    pthread_mutex_destroy(&sh->cursor_mu);
    free(srv);
    return rc;
}

int resp_server_port(const struct resp_server *srv)
{
    return srv->sh.port;
}

int resp_server_tls_port(const struct resp_server *srv)
{
    return srv->tls_port;
}

void resp_server_stop(struct resp_server *srv)
{
    if (!srv) return;
    bool inside = tl_loop == srv;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    srv->self_stop = inside;
    pthread_mutex_unlock(&srv->mu);
    if (inside) {
        /* From on_shutdown, on the loop: it frees the server when the
         * callback returns; nobody joins it. */
        pthread_detach(pthread_self());
        return;
    }
    wake_loop(srv);
    if (srv->loop_started) pthread_join(srv->loop, NULL);
    server_free(srv);
}
