/*
 * keyname.h -- file names for arbitrary key bytes, and back (the browse
 * mount's MOUNT/tables/<table>/<key>; table names use it too).
 *
 * The encoding, byte by byte, left to right:
 *
 *   - a complete, valid UTF-8 sequence (no overlong form, no surrogate,
 *     nothing above U+10FFFF) of a character >= U+0020 other than U+007F,
 *     '/' and '%' is copied as it is: text keys stay readable;
 *   - every other byte -- '/', '%', NUL, 0x01..0x1f, 0x7f, and each byte
 *     that is not part of valid UTF-8 -- becomes %XX (upper-case hex);
 *   - a key that is exactly "." or ".." has its first byte written %2E
 *     ("%2E", "%2E."), since those names mean something else.
 *
 * So '%' is always followed by two upper-case hex digits in an encoded
 * name, and every key has exactly one encoding: decode accepts a name only
 * if encoding what it decodes to gives the same name back (lower-case hex,
 * "%41" for 'A', a raw byte that should be escaped: rejected).
 *
 * Too long: a key is at most JET_cbKeyMost (255) bytes, but its encoding
 * may be up to three times that, past NAME_MAX (255).  An encoding longer
 * than JK_NAME_MAX becomes
 *
 *     <prefix>%~<16 upper-case hex digits>
 *
 * where <prefix> is the longest start of the full encoding of at most
 * JK_PREFIX_MAX (200) bytes that ends on a boundary between units (a %XX
 * or one whole UTF-8 character), and the digits are XXH64 (seed 0) of the
 * whole key.  "%~" never occurs in a short name, so the two forms cannot
 * be confused.  Such a name decodes to the prefix's bytes and the hash;
 * the reader finds the key by seeking to the prefix and comparing the
 * names of the keys that start with it (jk_encode of each) with the name:
 * two keys share a long name only if they share the prefix and the 64-bit
 * hash.
 *
 * Pure functions, no state, no locks.
 */
#ifndef JETFS_KEYNAME_H
#define JETFS_KEYNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jet.h"

#define JK_NAME_MAX 255                 /* longest name (NAME_MAX) */
#define JK_PREFIX_MAX 200               /* longest prefix of a hashed name */
#define JK_HASH_MARK "%~"
#define JK_FULL_MAX (3 * JET_cbKeyMost) /* longest full encoding of a key */

/*
 * Encodes the key (1..JET_cbKeyMost bytes) as a file name into name
 * (JK_NAME_MAX + 1 bytes, NUL-terminated); returns its length, or 0 for
 * an empty or over-long key.
 */
size_t jk_encode(const void *key, size_t cbkey, char name[JK_NAME_MAX + 1]);

enum jk_decoded {
    JK_INVALID = -1, /* not a name jk_encode makes: no key has it */
    JK_EXACT = 0,    /* *pcb bytes of key are the key */
    JK_HASHED = 1,   /* the key starts with the *pcb bytes of key; *phash is its XXH64 */
};
/* Decodes a name; key must hold JET_cbKeyMost bytes. */
enum jk_decoded jk_decode(const char *name, uint8_t key[JET_cbKeyMost], size_t *pcb, uint64_t *phash);

/* Whether name is the key's name (jk_encode's, compared). */
bool jk_name_is(const char *name, const void *key, size_t cbkey);

#endif
