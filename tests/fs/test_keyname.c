/*
 * test_keyname.c -- fs/keyname.c: every rule of the encoding at its edge,
 * canonical decoding (every other spelling refused), the long-name rule,
 * and round trips over random keys (SEED=... repeats a run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "keyname.h"
#include "testutil.h"

static void check_name(const void *key, size_t cb, const char *want)
{
    char name[JK_NAME_MAX + 1];
    size_t n = jk_encode(key, cb, name);
    if (strcmp(name, want) != 0) fprintf(stderr, "encoded '%s', want '%s'\n", name, want);
    CU_ASSERT_STRING_EQUAL(name, want);
    CU_ASSERT_EQUAL(n, strlen(want));
    uint8_t back[JET_cbKeyMost];
    size_t cbback = 0;
    uint64_t h;
    CU_ASSERT_EQUAL(jk_decode(name, back, &cbback, &h), JK_EXACT);
    CU_ASSERT_EQUAL(cbback, cb);
    CU_ASSERT(cbback == cb && memcmp(back, key, cb) == 0);
}

static void test_keyname_escapes_what_a_name_cannot_hold(void)
{
    check_name("/", 1, "%2F");
    check_name("a/b", 3, "a%2Fb");
    check_name("%", 1, "%25");
    check_name("100%", 4, "100%25");
    check_name("\0", 1, "%00");
    check_name("a\0b", 3, "a%00b");
    check_name("line\n", 5, "line%0A");
    check_name("\x01\x1f\x20", 3, "%01%1F ");
    check_name("\x7f", 1, "%7F");
    check_name("~!$&'()*+,;=:@[]{}<>?\"\\|^`#", 27, "~!$&'()*+,;=:@[]{}<>?\"\\|^`#");
    check_name(".", 1, "%2E");
    check_name("..", 2, "%2E.");
    check_name("...", 3, "...");
    check_name(".hidden", 7, ".hidden");
    check_name("a.", 2, "a.");
}

static void test_keyname_keeps_valid_utf8_and_escapes_the_rest(void)
{
    check_name("caf\xc3\xa9", 5, "caf\xc3\xa9");                   /* é */
    check_name("\xe2\x82\xac", 3, "\xe2\x82\xac");                 /* € */
    check_name("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");         /* an emoji */
    check_name("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf");         /* U+10FFFF */
    check_name("\xc2\x80", 2, "\xc2\x80");                         /* U+0080 */
    check_name("\xc3", 1, "%C3");                                  /* cut short */
    check_name("\xe2\x82", 2, "%E2%82");
    check_name("x\xe2\x82y", 4, "x%E2%82y");
    check_name("\xc0\x80", 2, "%C0%80");                           /* overlong NUL */
    check_name("\xc1\xbf", 2, "%C1%BF");
    check_name("\xe0\x80\xaf", 3, "%E0%80%AF");                    /* overlong '/' */
    check_name("\xed\xa0\x80", 3, "%ED%A0%80");                    /* a surrogate */
    check_name("\xf0\x80\x80\xaf", 4, "%F0%80%80%AF");
    check_name("\xf4\x90\x80\x80", 4, "%F4%90%80%80");             /* above U+10FFFF */
    check_name("\xf5\x80\x80\x80", 4, "%F5%80%80%80");
    check_name("\xff\xfe", 2, "%FF%FE");
    check_name("\x80", 1, "%80");                                  /* a lone continuation */
    check_name("\xc3\xc3\xa9", 3, "%C3\xc3\xa9");                  /* a bad start, then é */
}

static void expect_invalid(const char *name)
{
    uint8_t key[JET_cbKeyMost];
    size_t cb;
    uint64_t h;
    enum jk_decoded d = jk_decode(name, key, &cb, &h);
    if (d != JK_INVALID) fprintf(stderr, "'%s' decoded (%d), should be refused\n", name, (int)d);
    CU_ASSERT_EQUAL(d, JK_INVALID);
}

static void test_keyname_decode_refuses_every_other_spelling(void)
{
    expect_invalid("");
    expect_invalid("%");
    expect_invalid("%4");
    expect_invalid("a%");
    expect_invalid("%zz");
    expect_invalid("%2f");          /* lower-case hex */
    expect_invalid("%41");          /* 'A' is written A */
    expect_invalid("%C3%A9");       /* é is written as it is */
    expect_invalid("%2E%2E");       /* ".." is %2E. */
    expect_invalid(".");
    expect_invalid("..");
    expect_invalid("a\x01");         /* a raw control byte */
    expect_invalid("\x7f");
    expect_invalid("\xff");          /* raw invalid UTF-8 */
    expect_invalid("\xc3");
    expect_invalid("abc%~");
    expect_invalid("abc%~0123456789ABCDE");   /* 15 digits */
    expect_invalid("abc%~0123456789ABCDEF0"); /* 17 */
    expect_invalid("abc%~0123456789abcdef");  /* lower case */
    expect_invalid("%~0123456789ABCDEF");     /* no prefix */
    /* A hashed name for a key that is short enough to be named exactly is
     * still parsed (the lookup then finds no key named so); one whose
     * prefix is not canonical is refused outright. */
    expect_invalid("%41%~0123456789ABCDEF");
    char big[400];
    memset(big, 'a', 256);
    big[256] = '\0';
    expect_invalid(big);            /* longer than a name */
}

/* A key whose encoding is longer than a name gets the hashed form. */
static void check_long(const uint8_t *key, size_t cb)
{
    char name[JK_NAME_MAX + 1];
    size_t n = jk_encode(key, cb, name);
    CU_ASSERT(n > 0 && n <= JK_NAME_MAX);
    CU_ASSERT_EQUAL(strlen(name), n);
    const char *mark = strstr(name, JK_HASH_MARK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mark);
    size_t plen = (size_t)(mark - name);
    CU_ASSERT(plen <= JK_PREFIX_MAX && plen >= JK_PREFIX_MAX - 3); /* units are at most 4 bytes */
    CU_ASSERT_EQUAL(n, plen + 2 + 16);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llX", (unsigned long long)XXH64(key, cb, 0));
    CU_ASSERT_STRING_EQUAL(mark + 2, hex);
    uint8_t back[JET_cbKeyMost];
    size_t cbback = 0;
    uint64_t h = 0;
    CU_ASSERT_EQUAL_FATAL(jk_decode(name, back, &cbback, &h), JK_HASHED);
    CU_ASSERT(cbback > 0 && cbback < cb && memcmp(back, key, cbback) == 0);
    CU_ASSERT_EQUAL(h, XXH64(key, cb, 0));
    CU_ASSERT(jk_name_is(name, key, cb));
}

static void test_keyname_long_keys_get_a_prefix_and_a_hash(void)
{
    uint8_t key[JET_cbKeyMost];
    char name[JK_NAME_MAX + 1];
    /* 255 plain bytes: exactly a name, not hashed. */
    memset(key, 'a', sizeof key);
    CU_ASSERT_EQUAL(jk_encode(key, 255, name), 255);
    CU_ASSERT_PTR_NULL(strstr(name, JK_HASH_MARK));
    /* 253 + one escape = 256: hashed. */
    key[0] = '/';
    check_long(key, 254);
    /* 252 + one escape = 255: exact. */
    CU_ASSERT_EQUAL(jk_encode(key, 253, name), 255);
    CU_ASSERT_PTR_NULL(strstr(name, JK_HASH_MARK));
    /* Every byte escaped: the longest encoding. */
    memset(key, 1, sizeof key);
    check_long(key, 255);
    memset(key, 0, sizeof key);
    check_long(key, 255);
    /* The cut never splits a UTF-8 character or an escape: units of an
     * escape (3 bytes) and an emoji (4), shifted by 0..4 plain bytes. */
    for (int shift = 0; shift < 5; shift++) {
        size_t cb = 0;
        for (int i = 0; i < shift; i++) key[cb++] = 'a';
        while (cb + 5 <= sizeof key) {
            memcpy(key + cb, "\x01\xf0\x9f\x98\x80", 5);
            cb += 5;
        }
        check_long(key, cb);
        uint8_t back[JET_cbKeyMost];
        size_t cbback;
        uint64_t h;
        jk_encode(key, cb, name);
        CU_ASSERT_EQUAL(jk_decode(name, back, &cbback, &h), JK_HASHED);
        CU_ASSERT((cbback - (size_t)shift) % 5 == 0 || (cbback - (size_t)shift) % 5 == 1);
    }
    /* Keys that differ only past the prefix get different names. */
    memset(key, 0x05, sizeof key);
    char other[JK_NAME_MAX + 1];
    jk_encode(key, 255, name);
    key[254] = 0x06;
    jk_encode(key, 255, other);
    CU_ASSERT_STRING_NOT_EQUAL(name, other);
    CU_ASSERT(!jk_name_is(name, key, 255));
    /* Empty and over-long keys have no name. */
    CU_ASSERT_EQUAL(jk_encode(key, 0, name), 0);
    CU_ASSERT_EQUAL(jk_encode(key, JET_cbKeyMost + 1, name), 0);
}

static void random_key(uint64_t *seed, uint8_t *key, size_t *pcb)
{
    size_t cb = 1 + tu_rand(seed) % JET_cbKeyMost;
    if (tu_rand(seed) % 3 == 0) cb = 1 + tu_rand(seed) % 4;
    int style = (int)(tu_rand(seed) % 4);
    for (size_t i = 0; i < cb; i++) {
        uint64_t r = tu_rand(seed);
        switch (style) {
        case 0: key[i] = (uint8_t)r; break;                                    /* anything */
        case 1: key[i] = (uint8_t)(0x20 + r % 95); break;                      /* printable ASCII */
        case 2: key[i] = "./%\0\n\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xffz"[r % 18]; break; /* edges */
        default: key[i] = r % 4 ? (uint8_t)(0x80 + r % 0x40) : (uint8_t)(0xc2 + r % 0x33); break; /* UTF-8-ish */
        }
    }
    *pcb = cb;
}

static void test_keyname_random_keys_round_trip(void)
{
    uint64_t seed = tu_seed("keyname_round_trip");
    long rounds = tu_count("KEYNAME_ROUNDS", 200000, 2000000);
    long hashed = 0;
    for (long r = 0; r < rounds; r++) {
        uint8_t key[JET_cbKeyMost], back[JET_cbKeyMost];
        size_t cb, cbback = 0;
        uint64_t h = 0;
        char name[JK_NAME_MAX + 1];
        random_key(&seed, key, &cb);
        size_t n = jk_encode(key, cb, name);
        /* A name the kernel accepts: no '/', no NUL, not . or .., short. */
        if (n == 0 || n > JK_NAME_MAX || strlen(name) != n || strchr(name, '/') || !strcmp(name, ".") ||
            !strcmp(name, "..")) {
            CU_FAIL("a key got a name no directory can hold");
            break;
        }
        enum jk_decoded d = jk_decode(name, back, &cbback, &h);
        if (d == JK_EXACT) {
            if (cbback != cb || memcmp(back, key, cb) != 0) {
                CU_FAIL("a name decoded to another key");
                break;
            }
        } else if (d == JK_HASHED) {
            hashed++;
            if (cbback >= cb || memcmp(back, key, cbback) != 0 || h != XXH64(key, cb, 0)) {
                CU_FAIL("a hashed name does not name its key");
                break;
            }
        } else {
            CU_FAIL("a key's own name was refused");
            break;
        }
        /* A name with one byte changed is either refused or canonical. */
        size_t at = tu_rand(&seed) % n;
        name[at] = (char)(1 + tu_rand(&seed) % 255);
        d = jk_decode(name, back, &cbback, &h);
        if (d == JK_EXACT && !jk_name_is(name, back, cbback)) {
            CU_FAIL("a damaged name decoded to a key whose name it is not");
            break;
        }
    }
    fprintf(stderr, "%ld keys, %ld of them with hashed names\n", rounds, hashed);
    CU_ASSERT(hashed > 0);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("keyname", NULL, NULL);
    CU_add_test(s, "escapes what a name cannot hold", test_keyname_escapes_what_a_name_cannot_hold);
    CU_add_test(s, "keeps valid UTF-8, escapes the rest", test_keyname_keeps_valid_utf8_and_escapes_the_rest);
    CU_add_test(s, "decode refuses every other spelling", test_keyname_decode_refuses_every_other_spelling);
    CU_add_test(s, "long keys get a prefix and a hash", test_keyname_long_keys_get_a_prefix_and_a_hash);
    CU_add_test(s, "random keys round trip", test_keyname_random_keys_round_trip);
    return tu_run();
}
