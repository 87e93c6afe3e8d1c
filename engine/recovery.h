/*
 * recovery.h -- redo at JetInit (recovery.c).
 */
#ifndef JET_RECOVERY_H
#define JET_RECOVERY_H

#include <stdint.h>

#include "instance.h"

/* JetInit3's status callback, for the recovery JetInit runs on this thread. */
extern _Thread_local JET_PFNSTATUS jet_init_status;
JET_ERR recovery_run(struct jet_instance *inst, uint32_t *pnext_gen);

#endif /* JET_RECOVERY_H */
