/*
 * test_dwb.c -- engine/dwb.c: the double-write file puts back a page torn
 * mid-write, and nothing else: a page that verifies is never replaced, a
 * torn double-write file (a crash while staging) repairs nothing, and a
 * file that is not the database it names (another signature) is left
 * alone.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dwb.h"
#include "jet_inspect.h"
#include "page.h"
#include "testutil.h"

#define PS 8192u

static char dir[1024], dbpath[1100], dwbpath[1100];
static uint64_t dbsig;

/* A real database file (so its header names its signature), 4 rows. */
static void make_db(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("dwb"));
    snprintf(dbpath, sizeof dbpath, "%s/d.db", dir);
    snprintf(dwbpath, sizeof dwbpath, "%s/t.dwb", dir);
    JET_INSTANCE inst = tu_instance("dwb", dir, (struct tu_params){0});
    JET_SESID s;
    JET_TABLEID t;
    tu_table(inst, dbpath, 1, &s, &t);
    tu_load(s, t, 0, 40, 'a');
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    JET_INSPECT_DBHEADER h;
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(dbpath, &h) >= 0);
    dbsig = h.db_signature;
}

static void read_page(uint32_t pgno, uint8_t *pg)
{
    int fd = open(dbpath, O_RDONLY);
    CU_ASSERT_FATAL(pread(fd, pg, PS, (off_t)pgno * PS) == (ssize_t)PS);
    close(fd);
}

static void write_bytes(uint32_t pgno, const uint8_t *pg, size_t n)
{
    int fd = open(dbpath, O_WRONLY);
    CU_ASSERT_FATAL(pwrite(fd, pg, n, (off_t)pgno * PS) == (ssize_t)n);
    close(fd);
}

/* Stages new versions of pages 3 and 4 (changed in their bodies). */
static void stage_two(uint8_t *v3, uint8_t *v4)
{
    read_page(3, v3);
    read_page(4, v4);
    memset(v3 + 4000, 0x33, 100);
    memset(v4 + 4000, 0x44, 100);
    struct dwb *d;
    CU_ASSERT_FATAL(dwb_open(dwbpath, PS, &d) == JET_errSuccess);
    dwb_lock(d);
    struct dwb_page pages[2] = {{dbsig, dbpath, 3, v3}, {dbsig, dbpath, 4, v4}};
    CU_ASSERT_FATAL(dwb_stage(d, pages, 2) == JET_errSuccess);
    /* The images come back sealed, ready to write in place. */
    CU_ASSERT(page_verify(dwb_image(d, 0), PS, 3, "dwb") == JET_errSuccess);
    memcpy(v3, dwb_image(d, 0), PS);
    memcpy(v4, dwb_image(d, 1), PS);
    dwb_unlock(d);
    /* Closed without emptying: as a crash leaves it. */
    CU_ASSERT_FATAL(dwb_close(d, false) == JET_errSuccess);
}

static void test_a_torn_page_is_put_back_whole(void)
{
    uint8_t v3[PS], v4[PS], old4[PS], now[PS];
    make_db();
    read_page(4, old4);
    stage_two(v3, v4);
    /* The crash: page 3 half written (torn), page 4 not written at all. */
    write_bytes(3, v3, PS / 2);
    read_page(3, now);
    CU_ASSERT_FATAL(page_verify(now, PS, 3, "test") == JET_errReadVerifyFailure);
    unsigned repaired = 99;
    TU_CHECK_ERR(dwb_repair(dwbpath, PS, &repaired), JET_errSuccess);
    CU_ASSERT_EQUAL(repaired, 1);
    read_page(3, now);
    CU_ASSERT(memcmp(now, v3, PS) == 0);
    /* Page 4 verified, so it keeps its old version: redo brings it on. */
    read_page(4, now);
    CU_ASSERT(memcmp(now, old4, PS) == 0);
    /* Repair is idempotent. */
    TU_CHECK_ERR(dwb_repair(dwbpath, PS, &repaired), JET_errSuccess);
    CU_ASSERT_EQUAL(repaired, 0);
}

static void test_a_torn_stage_repairs_nothing(void)
{
    uint8_t v3[PS], v4[PS], torn[PS], now[PS];
    make_db();
    stage_two(v3, v4);
    /* The crash came while staging: the double-write file's header does
     * not verify, so no in-place write had begun... */
    int fd = open(dwbpath, O_RDWR);
    uint8_t byte;
    CU_ASSERT_FATAL(pread(fd, &byte, 1, 40) == 1);
    byte ^= 0xFF;
    CU_ASSERT_FATAL(pwrite(fd, &byte, 1, 40) == 1);
    close(fd);
    /* ...and a damaged page is not "repaired" from it. */
    read_page(3, torn);
    torn[5000] ^= 1;
    write_bytes(3, torn, PS);
    unsigned repaired = 99;
    TU_CHECK_ERR(dwb_repair(dwbpath, PS, &repaired), JET_errSuccess);
    CU_ASSERT_EQUAL(repaired, 0);
    read_page(3, now);
    CU_ASSERT(memcmp(now, torn, PS) == 0);
}

static void test_another_database_is_left_alone(void)
{
    uint8_t v3[PS], v4[PS], now[PS];
    make_db();
    dbsig ^= 1; /* the double-write file names another database */
    stage_two(v3, v4);
    write_bytes(3, v3, PS / 2);
    read_page(3, v4);
    unsigned repaired = 99;
    TU_CHECK_ERR(dwb_repair(dwbpath, PS, &repaired), JET_errSuccess);
    CU_ASSERT_EQUAL(repaired, 0);
    read_page(3, now);
    CU_ASSERT(memcmp(now, v4, PS) == 0);
    /* A missing or empty double-write file means nothing was in flight. */
    unlink(dwbpath);
    TU_CHECK_ERR(dwb_repair(dwbpath, PS, &repaired), JET_errSuccess);
    CU_ASSERT_EQUAL(repaired, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("dwb", NULL, NULL);
    CU_add_test(su, "test_a_torn_page_is_put_back_whole", test_a_torn_page_is_put_back_whole);
    CU_add_test(su, "test_a_torn_stage_repairs_nothing", test_a_torn_stage_repairs_nothing);
    CU_add_test(su, "test_another_database_is_left_alone", test_another_database_is_left_alone);
    return tu_run();
}
