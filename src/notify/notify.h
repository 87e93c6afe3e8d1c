/*
 * notify.h -- what `jetfs serve` tells its service manager (systemd's
 * sd_notify protocol, through libsystemd).
 *
 * READY=1 once clients and backup software can use the server (the
 * instance open or recovered, the backup tree mounted, the listener
 * accepting), STATUS= lines as backups begin and end, STOPPING=1 when the
 * shutdown starts.  With no NOTIFY_SOCKET in the environment (not started
 * by systemd with Type=notify) each call does nothing.
 *
 * The calls cannot fail the server: a manager that cannot be told is no
 * reason to stop serving clients, so a failed send is said once on stderr
 * and the server goes on.  Thread-safe: each call is one datagram.
 */
#ifndef JETFS_NOTIFY_H
#define JETFS_NOTIFY_H

/* READY=1 with a STATUS= line; sent once, later calls only set STATUS;
 * nothing once notify_stopping ran. */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STATUS=, one line (a newline in it is sent as a space). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1; sent once. */
void notify_stopping(void);

#endif
