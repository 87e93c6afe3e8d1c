/*
 * backup.h -- what the rest of the engine asks of backup.c (the streaming
 * backup family is jet.h's).
 */
#ifndef JET_BACKUP_H
#define JET_BACKUP_H

#include "instance.h"

struct backup;
/* Ends a backup in progress as aborted (JetTerm). */
void backup_abort(struct jet_instance *inst);

#endif /* JET_BACKUP_H */
