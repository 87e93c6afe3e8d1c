/*
 * test_resp_glob.c -- the glob matcher behind SCAN MATCH and CONFIG GET,
 * from a table of {pattern, string, expected}, plus a pathological pattern
 * that a naive recursive matcher takes exponential time on.
 */
#include <string.h>
#include <time.h>

#include "resp_commands.h"
#include "testutil.h"

struct gcase {
    const char *pat, *s;
    bool nocase, want;
};

static const struct gcase cases[] = {
    {"*", "", false, true},
    {"*", "anything", false, true},
    {"", "", false, true},
    {"", "a", false, false},
    {"a", "a", false, true},
    {"a", "A", false, false},
    {"a", "A", true, true},
    {"k1*", "k1", false, true},
    {"k1*", "k19", false, true},
    {"k1*", "k2", false, false},
    {"*3", "k03", false, true},
    {"*3", "k30", false, false},
    {"?th?r", "other", false, true},
    {"?th?r", "others", false, false},
    {"h?llo", "hllo", false, false},
    {"h*llo", "hllo", false, true},
    {"h*llo", "heeeello", false, true},
    {"h[ae]llo", "hello", false, true},
    {"h[ae]llo", "hillo", false, false},
    {"h[^e]llo", "hallo", false, true},
    {"h[^e]llo", "hello", false, false},
    {"h[a-b]llo", "hbllo", false, true},
    {"h[b-a]llo", "hallo", false, true}, /* reversed range */
    {"h[a-b]llo", "hcllo", false, false},
    {"[\\]]", "]", false, true},
    {"\\*", "*", false, true},
    {"\\*", "a", false, false},
    {"a\\?c", "a?c", false, true},
    {"a\\?c", "abc", false, false},
    {"*a*b*c*", "xxaxxbxxcxx", false, true},
    {"*a*b*c*", "xxaxxcxxbxx", false, false},
    {"a*b", "ab", false, true},
    {"a*b", "abb", false, true},
    {"a*b", "aba", false, false},
    {"[abc", "b", false, true}, /* an unclosed class runs to the end */
    {"save", "SAVE", true, true},
    {"*only", "appendonly", true, true},
};

static void test_glob_table(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct gcase *c = &cases[k];
        bool got = resp_glob_match(c->pat, strlen(c->pat), c->s, strlen(c->s), c->nocase);
        CU_ASSERT_EQUAL(got, c->want);
        if (got != c->want) fprintf(stderr, "\nglob '%s' on '%s': %d, want %d\n", c->pat, c->s, got, c->want);
    }
}

static void test_glob_pathological_pattern_is_fast(void)
{
    char s[256], pat[256];
    memset(s, 'a', 200);
    s[200] = '\0';
    strcpy(pat, "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b");
    clock_t t0 = clock();
    CU_ASSERT_FALSE(resp_glob_match(pat, strlen(pat), s, strlen(s), false));
    CU_ASSERT((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("resp_glob", NULL, NULL);
    CU_add_test(su, "test_glob_table", test_glob_table);
    CU_add_test(su, "test_glob_pathological_pattern_is_fast", test_glob_pathological_pattern_is_fast);
    return tu_run();
}
