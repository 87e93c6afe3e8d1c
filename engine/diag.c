/*
 * diag.c -- per-thread error details (see diag.h).
 */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char detail[512];

JET_ERR jet_report(JET_ERR err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return err;
}

void jet_report_clear(void) { detail[0] = '\0'; }

const char *JetGetLastErrorDetail(void) { return detail; }
