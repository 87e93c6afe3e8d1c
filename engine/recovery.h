/*
 * recovery.h -- redo at JetInit (recovery.c).
 */
#ifndef JET_RECOVERY_H
#define JET_RECOVERY_H

#include <stdint.h>

#include "instance.h"

/* JetInit3's restore map: a database logged (or checkpointed) at from[i]
 * is recovered in to[i]. */
struct init_rstmap {
    uint32_t n;
    struct {
        char from[JET_PATH_MAX];
        char to[JET_PATH_MAX];
    } m[JET_MAX_DBS];
};
/* What JetInit3 gives recovery (NULL for JetInit: neither). */
struct recovery_opts {
    JET_PFNSTATUS status;               /* progress (JET_snpRestore), may be NULL */
    const struct init_rstmap *rstmap;   /* may be NULL */
};
JET_ERR recovery_run(struct jet_instance *inst, uint32_t *pnext_gen, const struct recovery_opts *opts);

#endif /* JET_RECOVERY_H */
