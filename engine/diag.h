/*
 * diag.h -- the one place errors are reported with their details.
 *
 * jet_report() records a one-line message ("what, where, expected vs found",
 * lower-case, no trailing period) for the calling thread and returns the
 * error it was given, so corruption paths read
 *     return jet_report(JET_errReadVerifyFailure, "%s: page %u ...", ...);
 * JetGetLastErrorDetail() hands the message to tools.  Set a breakpoint in
 * jet_report to catch every reported failure.
 */
#ifndef JET_DIAG_H
#define JET_DIAG_H

#include "jet.h"

JET_ERR jet_report(JET_ERR err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jet_report_clear(void);

#endif
