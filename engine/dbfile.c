/*
 * dbfile.c -- encoding, reading and writing the duplicated database header
 * (format in dbfile.h).
 */
#include "dbfile.h"

#include <string.h>
#include <xxhash.h>

#include "diag.h"
#include "os.h"
#include "page.h"

void db_header_encode(const struct db_header *h, uint8_t *b)
{
    memset(b, 0, DB_HEADER_BYTES);
    put_le32(b + 8, DB_MAGIC);
    put_le32(b + 12, DB_VERSION);
    put_le32(b + 16, h->page_size);
    put_le32(b + 20, h->state);
    put_le64(b + 24, h->db_signature);
    put_le64(b + 32, h->log_signature);
    put_le64(b + 40, h->lsn_consistent);
    put_le64(b + 48, h->lsn_attach);
    put_le64(b + 56, h->create_us);
    put_le64(b + 64, h->update_seq);
    put_le64(b + 72, h->consistent_us);
    for (int i = 0; i < DB_BK_COUNT; i++) {
        uint8_t *p = b + 80 + 40 * i;
        const struct db_backup_info *bi = &h->backup[i];
        put_le32(p, bi->gen_low);
        put_le32(p + 4, bi->gen_high);
        put_le64(p + 8, bi->time_us);
        put_le64(p + 16, bi->backup_id);
        put_le64(p + 24, bi->lsn_mark);
        put_le64(p + 32, bi->predecessor_id);
    }
    put_le64(b + 240, h->copy.backup_id);
    put_le64(b + 248, h->copy.lsn_start);
    put_le32(b + 256, h->copy.gen_low);
    put_le32(b + 260, h->copy.gen_high);
    put_le32(b + 264, h->copy.dbidx);
    put_le64(b + 272, h->copy.consistent_us);
    put_le64(b + 280, h->discard.time_us);
    put_le64(b + 288, h->discard.cut);
    put_le64(b + 296, h->discard.commits);
    size_t plen = strnlen(h->attach_path, DB_ATTACH_PATH_MAX);
    put_le16(b + DB_ATTACH_PATH_OFF, (uint16_t)plen);
    memcpy(b + DB_ATTACH_PATH_OFF + 2, h->attach_path, plen);
    put_le64(b, XXH3_64bits(b + 8, DB_HEADER_BYTES - 8));
}

JET_ERR db_header_decode(const uint8_t *b, struct db_header *h, const char *path, int copy)
{
    if (get_le32(b + 8) != DB_MAGIC)
        return jet_report(JET_errDatabaseCorrupted, "%s: header copy %d: bad magic %08x (expected %08x)",
                          path, copy, get_le32(b + 8), DB_MAGIC);
    uint64_t stored = get_le64(b), computed = XXH3_64bits(b + 8, DB_HEADER_BYTES - 8);
    if (stored != computed)
        return jet_report(JET_errDatabaseCorrupted,
                          "%s: header copy %d: checksum mismatch: stored %016llx, computed %016llx", path, copy,
                          (unsigned long long)stored, (unsigned long long)computed);
    if (get_le32(b + 12) != DB_VERSION)
        return jet_report(JET_errInvalidDatabase,
                          "%s: header copy %d: database format version %u; this build reads only version %u, so it "
                          "will not read this file",
                          path, copy, get_le32(b + 12), DB_VERSION);
    memset(h, 0, sizeof *h);
    h->page_size = get_le32(b + 16);
    h->state = get_le32(b + 20);
    h->db_signature = get_le64(b + 24);
    h->log_signature = get_le64(b + 32);
    h->lsn_consistent = get_le64(b + 40);
    h->lsn_attach = get_le64(b + 48);
    h->create_us = get_le64(b + 56);
    h->update_seq = get_le64(b + 64);
    h->consistent_us = get_le64(b + 72);
    for (int i = 0; i < DB_BK_COUNT; i++) {
        const uint8_t *p = b + 80 + 40 * i;
        struct db_backup_info *bi = &h->backup[i];
        bi->gen_low = get_le32(p);
        bi->gen_high = get_le32(p + 4);
        bi->time_us = get_le64(p + 8);
        bi->backup_id = get_le64(p + 16);
        bi->lsn_mark = get_le64(p + 24);
        bi->predecessor_id = get_le64(p + 32);
    }
    h->copy.backup_id = get_le64(b + 240);
    h->copy.lsn_start = get_le64(b + 248);
    h->copy.gen_low = get_le32(b + 256);
    h->copy.gen_high = get_le32(b + 260);
    h->copy.dbidx = get_le32(b + 264);
    h->copy.consistent_us = get_le64(b + 272);
    h->discard.time_us = get_le64(b + 280);
    h->discard.cut = get_le64(b + 288);
    h->discard.commits = get_le64(b + 296);
    uint16_t plen = get_le16(b + DB_ATTACH_PATH_OFF);
    if (plen > DB_ATTACH_PATH_MAX)
        return jet_report(JET_errDatabaseCorrupted, "%s: header copy %d: attach path of %u bytes (at most %u)", path,
                          copy, plen, DB_ATTACH_PATH_MAX);
    memcpy(h->attach_path, b + DB_ATTACH_PATH_OFF + 2, plen);
    h->attach_path[plen] = '\0';
    if (!page_size_valid(h->page_size))
        return jet_report(JET_errDatabaseCorrupted, "%s: header copy %d: invalid page size %u", path, copy,
                          h->page_size);
    return JET_errSuccess;
}

JET_ERR db_header_read(int fd, const char *path, struct db_header *h)
{
    uint8_t b0[DB_HEADER_BYTES], b1[DB_HEADER_BYTES];
    struct db_header h0, h1;
    JET_ERR err = os_pread_full(fd, b0, sizeof b0, 0);
    if (err < 0) return err;
    JET_ERR e0 = db_header_decode(b0, &h0, path, 0);
    /* Copy 1 lives at the start of page 1; its offset needs the page size,
     * which copy 0 gives when valid; else try each legal size. */
    JET_ERR e1 = JET_errDatabaseCorrupted;
    uint32_t sizes[4] = {4096, 8192, 16384, 32768};
    for (int i = 0; i < 4 && e1 < 0; i++) {
        if (e0 >= 0 && sizes[i] != h0.page_size) continue;
        err = os_pread_full(fd, b1, sizeof b1, sizes[i]);
        if (err < 0) return err;
        if (get_le32(b1 + 8) != DB_MAGIC) continue;
        e1 = db_header_decode(b1, &h1, path, 1);
        if (e1 >= 0 && h1.page_size != sizes[i]) e1 = JET_errDatabaseCorrupted;
    }
    if (e0 < 0 && e1 < 0) {
        if (get_le32(b0 + 8) != DB_MAGIC)
            return jet_report(JET_errInvalidDatabase, "%s: not a jetfs database (no valid header)", path);
        /* A file of another format version is not damaged: say which. */
        if (e0 == JET_errInvalidDatabase && get_le32(b0 + 12) != DB_VERSION)
            return jet_report(JET_errInvalidDatabase,
                              "%s: database format version %u; this build reads only version %u, so it will not "
                              "read this file",
                              path, get_le32(b0 + 12), DB_VERSION);
        return jet_report(JET_errDatabaseCorrupted, "%s: both header copies are damaged", path);
    }
    if (e0 >= 0 && (e1 < 0 || h0.update_seq >= h1.update_seq)) *h = h0;
    else *h = h1;
    return JET_errSuccess;
}

JET_ERR db_header_write(int fd, struct db_header *h)
{
    uint8_t b[DB_HEADER_BYTES];
    h->update_seq++;
    db_header_encode(h, b);
    JET_ERR err = os_pwrite(fd, b, sizeof b, 0);
    if (err < 0) return err;
    if ((err = os_fsync(fd)) < 0) return err;
    if ((err = os_pwrite(fd, b, sizeof b, h->page_size)) < 0) return err;
    return os_fsync(fd);
}

const char *db_state_name(uint32_t state)
{
    switch (state) {
    case DB_STATE_JUST_CREATED: return "just created";
    case DB_STATE_DIRTY: return "dirty shutdown";
    case DB_STATE_CLEAN: return "clean shutdown";
    default: return "unknown";
    }
}

const char *db_backup_kind_name(enum db_backup_kind k)
{
    static const char *names[] = {"full", "incremental", "differential", "copy"};
    return (unsigned)k < DB_BK_COUNT ? names[k] : "unknown";
}
