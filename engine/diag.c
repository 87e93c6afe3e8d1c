/*
 * diag.c -- per-thread error details (see diag.h).
 */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[512];

JET_ERR jet_report(JET_ERR err, const char *fmt, ...)
{
    /* Callers often wrap the detail already here (an argument pointing
     * into `detail`): format aside first, as vsnprintf must not write over
     * its own input. */
    char next[sizeof detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(next, sizeof next, fmt, ap);
    va_end(ap);
    memcpy(detail, next, sizeof detail);
    return err;
}

void jet_report_clear(void) { detail[0] = '\0'; }

const char *JetGetLastErrorDetail(void) { return detail; }
