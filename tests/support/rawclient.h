/*
 * rawclient.h -- a raw TCP client for the RESP tests: connect to the
 * loopback port, send and receive exact byte counts.
 */
#ifndef JET_RAWCLIENT_H
#define JET_RAWCLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* Connects to 127.0.0.1:port with a 20 s receive timeout; -1 on failure
 * (safe in any thread). */
int tu_tcp_connect(int port);
/* Sends all n bytes (false on error or close). */
bool tu_send_all(int fd, const void *p, size_t n);
/* Reads exactly n bytes (false on close, error or timeout). */
bool tu_recv_all(int fd, char *buf, size_t n);

#endif
