/*
 * notify.c -- sd_notify for `jetfs serve` (see notify.h).
 */
#include "notify.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static atomic_bool ready_sent, stopping_sent, failure_said;

static void send_state(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0 && !atomic_exchange(&failure_said, true))
        fprintf(stderr, "jetfs: cannot notify the service manager (NOTIFY_SOCKET): %s; serving on\n", strerror(-rc));
}

/* "PREFIX" + "STATUS=" + the formatted line, newlines flattened (the
 * protocol is one assignment per line). */
static void send_with_status(const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%sSTATUS=", prefix);
    if (n < 0 || (size_t)n >= sizeof msg) return;
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    for (char *p = msg + n; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    send_state(msg);
}

void notify_ready(const char *fmt, ...)
{
    /* A shutdown that began while the tree was mounting: not ready. */
    if (atomic_load(&stopping_sent)) return;
    va_list ap;
    va_start(ap, fmt);
    send_with_status(atomic_exchange(&ready_sent, true) ? "" : "READY=1\n", fmt, ap);
    va_end(ap);
}

void notify_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_with_status("", fmt, ap);
    va_end(ap);
}

void notify_stopping(void)
{
    if (!atomic_exchange(&stopping_sent, true)) send_state("STOPPING=1\nSTATUS=shutting down");
}
