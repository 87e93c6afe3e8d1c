/*
 * discard.h -- the note a discard after damage leaves for the next
 * recovery (discard.c has the protocol), and the LR_DISCARD payload it
 * becomes in the log: both encode struct discard_note, 40 bytes
 * little-endian:
 *   0 u32 gen         the damaged generation
 *   4 u32 damage_off  the offset of the first record that did not verify
 *   8 u64 cut         where the log was made to end (end of the last commit)
 *   16 u32 first_moved, 20 u32 last_moved  generations moved aside (0: none)
 *   24 u64 commits    commit records readable in what was cut away
 *   32 u64 time_us    when the discard was made
 * The note file (<system path>/<base>.discard) is 64 bytes: u64 XXH3 of
 * bytes [8, 64), u32 magic, u32 0, then the 40 bytes, then zeroes.
 */
#ifndef JET_DISCARD_H
#define JET_DISCARD_H

#include <stddef.h>
#include <stdint.h>

#include "jet.h"

#define DISCARD_PAYLOAD 40u

struct discard_note {
    uint32_t gen, damage_off;
    uint64_t cut;
    uint32_t first_moved, last_moved;
    uint64_t commits;
    uint64_t time_us;
};

JET_ERR discard_note_path(char *buf, size_t cb, const char *system_path, const char *base);
JET_ERR discard_note_read(const char *path, struct discard_note *n);
void discard_encode(const struct discard_note *n, uint8_t *p);
void discard_decode(const uint8_t *p, struct discard_note *n);

#endif
