/*
 * keyname.c -- key bytes to file names and back: the rules and the format
 * are keyname.h's.
 *
 * Owns nothing: pure functions.  Decoding never trusts a name: it parses
 * it, then encodes what it parsed and compares, so only the one canonical
 * name of each key is accepted.
 */
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "keyname.h"

static const char HEX[] = "0123456789ABCDEF";

/* Length of the valid UTF-8 sequence at p (n bytes left): 1..4, or 0. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    if (b < 0x80) return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0) lo = 0xa0;      /* overlong */
        else if (b == 0xed) hi = 0x9f; /* surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0) lo = 0x90;      /* overlong */
        else if (b == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return len;
}

/*
 * The full encoding of the key into out (JK_FULL_MAX + 1 bytes); returns
 * its length and, in *pcut, the end of the last unit that ends at or
 * before JK_PREFIX_MAX (the prefix of a hashed name).
 */
static size_t encode_full(const uint8_t *k, size_t cb, char *out, size_t *pcut)
{
    size_t o = 0, cut = 0;
    bool dots = (cb == 1 && k[0] == '.') || (cb == 2 && k[0] == '.' && k[1] == '.');
    for (size_t i = 0; i < cb;) {
        uint8_t b = k[i];
        size_t l = b >= 0x80 ? utf8_len(k + i, cb - i) : 1;
        bool plain = b >= 0x80 ? l > 0 : (b >= 0x20 && b != 0x7f && b != '/' && b != '%' && !(i == 0 && dots));
        if (plain) {
            memcpy(out + o, k + i, l);
            o += l;
            i += l;
        } else {
            out[o++] = '%';
            out[o++] = HEX[b >> 4];
            out[o++] = HEX[b & 15];
            i++;
        }
        if (o <= JK_PREFIX_MAX) cut = o;
    }
    out[o] = '\0';
    if (pcut) *pcut = cut;
    return o;
}

size_t jk_encode(const void *key, size_t cbkey, char name[JK_NAME_MAX + 1])
{
    char full[JK_FULL_MAX + 1];
    size_t cut;
    if (cbkey == 0 || cbkey > JET_cbKeyMost) {
        name[0] = '\0';
        return 0;
    }
    size_t n = encode_full(key, cbkey, full, &cut);
    if (n <= JK_NAME_MAX) {
        memcpy(name, full, n + 1);
        return n;
    }
    unsigned long long h = XXH64(key, cbkey, 0);
    memcpy(name, full, cut);
    return cut + (size_t)snprintf(name + cut, JK_NAME_MAX + 1 - cut, "%s%016llX", JK_HASH_MARK, h);
}

bool jk_name_is(const char *name, const void *key, size_t cbkey)
{
    char mine[JK_NAME_MAX + 1];
    return jk_encode(key, cbkey, mine) > 0 && strcmp(mine, name) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1; /* lower case is not canonical */
}

/* Parses %XX and raw bytes of s[0..n) into key; -1 if malformed or too long. */
static int unescape(const char *s, size_t n, uint8_t *key, size_t *pcb)
{
    size_t cb = 0;
    for (size_t i = 0; i < n;) {
        if (cb == JET_cbKeyMost) return -1;
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= n) return -1;
            if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0) return -1;
            key[cb++] = (uint8_t)(hi << 4 | lo);
            i += 3;
        } else {
            key[cb++] = (uint8_t)s[i++];
        }
    }
    *pcb = cb;
    return 0;
}

enum jk_decoded jk_decode(const char *name, uint8_t key[JET_cbKeyMost], size_t *pcb, uint64_t *phash)
{
    size_t n = strnlen(name, JK_NAME_MAX + 1);
    if (n == 0 || n > JK_NAME_MAX) return JK_INVALID;
    const char *mark = strstr(name, JK_HASH_MARK);
    if (!mark) {
        if (unescape(name, n, key, pcb) < 0 || *pcb == 0) return JK_INVALID;
        /* Canonical, and short: a name whose key encodes longer is hashed. */
        return jk_name_is(name, key, *pcb) ? JK_EXACT : JK_INVALID;
    }
    size_t plen = (size_t)(mark - name);
    const char *hex = mark + 2;
    if (plen > JK_PREFIX_MAX || n != plen + 2 + 16) return JK_INVALID;
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) {
        int v = hexval(hex[i]);
        if (v < 0) return JK_INVALID;
        h = h << 4 | (uint64_t)v;
    }
    if (unescape(name, plen, key, pcb) < 0) return JK_INVALID;
    /* The prefix must be how its bytes encode, cut on a unit boundary: a
     * prefix is never "." or "..", and a unit within it encodes the same
     * whatever follows it (keyname.h), so encoding the prefix alone must
     * give it back. */
    char full[JK_FULL_MAX + 1];
    size_t cut;
    if (*pcb == 0 || encode_full(key, *pcb, full, &cut) != plen || memcmp(full, name, plen) != 0) return JK_INVALID;
    *phash = h;
    return JK_HASHED;
}
