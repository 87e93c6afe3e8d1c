/*
 * recovery.h -- redo at JetInit (recovery.c).
 */
#ifndef JET_RECOVERY_H
#define JET_RECOVERY_H

#include <stdint.h>

#include "instance.h"

/* JetInit3's status callback, for the recovery JetInit runs on this thread. */
extern _Thread_local JET_PFNSTATUS jet_init_status;
/* JetInit3's restore map, for the recovery JetInit runs on this thread:
 * a database logged (or checkpointed) at from[i] is recovered in to[i]. */
struct init_rstmap {
    uint32_t n;
    struct {
        char from[JET_PATH_MAX];
        char to[JET_PATH_MAX];
    } m[JET_MAX_DBS];
};
extern _Thread_local const struct init_rstmap *jet_init_rstmap;
JET_ERR recovery_run(struct jet_instance *inst, uint32_t *pnext_gen);

#endif /* JET_RECOVERY_H */
