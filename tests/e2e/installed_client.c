/*
 * installed_client.c -- a program outside the tree, built by
 * tests/e2e/test_install.sh against an installed libjet only (headers and
 * flags from `pkg-config --cflags --libs jet`): what a user of the library
 * writes first.
 *
 *   installed_client DBDIR SETDIR
 *
 * Creates an instance in DBDIR with database jetfs.db, writes key
 * "greeting" = "hello from pkg-config" in table "kv" and reads it back,
 * then takes a full backup through the API into SETDIR (database, log
 * generations, backup.manifest), truncating the logs, so that the installed
 * `jetutil restore` can restore it.  Exit 0 on success, 1 naming the failed
 * call otherwise.
 */
#include <jet.h>
#include <jet_inspect.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(const char *what, JET_ERR err)
{
    fprintf(stderr, "installed_client: %s: %s (%ld) %s\n", what, JetErrorString(err), err, JetGetLastErrorDetail());
    return 1;
}

/* Copies one file of the running backup into setdir under its base name. */
static JET_ERR save_file(JET_INSTANCE inst, const char *path, const char *setdir)
{
    JET_HANDLE h;
    unsigned long lo, hi, got = 0;
    char out[8192];
    static char buf[1 << 16];
    JET_ERR err = JetOpenFileInstance(inst, path, &h, &lo, &hi);
    if (err < 0) return err;
    const char *slash = strrchr(path, '/');
    snprintf(out, sizeof out, "%s/%s", setdir, slash ? slash + 1 : path);
    FILE *f = fopen(out, "wb");
    if (!f) {
        err = JET_errDiskIO;
        goto out;
    }
    unsigned long long size = lo | ((unsigned long long)hi << 32);
    for (unsigned long long off = 0; off < size; off += got) {
        if ((err = JetReadFileAtInstance(inst, h, off, buf, sizeof buf, &got)) < 0) goto out_close;
        if (got == 0 || fwrite(buf, 1, got, f) != got) {
            err = JET_errDiskIO;
            goto out_close;
        }
    }
out_close:
    if (fclose(f) != 0 && err >= 0) err = JET_errDiskIO;
out:
    JetCloseFileInstance(inst, h);
    return err;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: installed_client DBDIR SETDIR\n");
        return 2;
    }
    const char *dir = argv[1], *setdir = argv[2];
    char db[4096], names[65536], value[64];
    unsigned long cb = 0;
    JET_INSTANCE inst = 0;
    JET_SESID ses;
    JET_DBID dbid;
    JET_TABLEID tab;
    JET_ERR err;
    static const char key[] = "greeting", val[] = "hello from pkg-config";

    snprintf(db, sizeof db, "%s/jetfs.db", dir);
    if ((err = JetCreateInstance(&inst, "installed")) < 0) return failed("JetCreateInstance", err);
    if ((err = JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir)) < 0 ||
        (err = JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir)) < 0)
        return failed("JetSetSystemParameter", err);
    if ((err = JetInit(&inst)) < 0) return failed("JetInit", err);
    if ((err = JetBeginSession(inst, &ses, NULL, NULL)) < 0) return failed("JetBeginSession", err);
    if ((err = JetCreateDatabase(ses, db, NULL, &dbid, 0)) < 0) return failed("JetCreateDatabase", err);
    if ((err = JetCreateTable(ses, dbid, "kv", 0, 0, &tab)) < 0) return failed("JetCreateTable", err);
    if ((err = JetPutKV(ses, tab, key, strlen(key), val, strlen(val), 0)) < 0) return failed("JetPutKV", err);
    if ((err = JetRetrieveKV(ses, tab, key, strlen(key), value, sizeof value - 1, &cb, 0)) < 0)
        return failed("JetRetrieveKV", err);
    value[cb < sizeof value ? cb : sizeof value - 1] = '\0';
    if (strcmp(value, val) != 0) {
        fprintf(stderr, "installed_client: read back '%s', wrote '%s'\n", value, val);
        return 1;
    }
    printf("read back: %s\n", value);

    /* A full backup, as jetfs's mount takes it: the set's files, then the
     * manifest, then truncation and a normal end. */
    if ((err = JetBeginExternalBackupInstance(inst, 0)) < 0) return failed("JetBeginExternalBackupInstance", err);
    if ((err = JetGetAttachInfoInstance(inst, names, sizeof names, &cb)) < 0)
        return failed("JetGetAttachInfoInstance", err);
    for (const char *p = names; *p; p += strlen(p) + 1)
        if ((err = save_file(inst, p, setdir)) < 0) return failed(p, err);
    if ((err = JetGetLogInfoInstance(inst, names, sizeof names, &cb)) < 0) return failed("JetGetLogInfoInstance", err);
    for (const char *p = names; *p; p += strlen(p) + 1)
        if ((err = save_file(inst, p, setdir)) < 0) return failed(p, err);
    unsigned long need = 0;
    if ((err = JetGetBackupManifestInstance(inst, "full", NULL, 0, &need)) < 0)
        return failed("JetGetBackupManifestInstance", err);
    char *manifest = malloc(need);
    if (!manifest) return failed("malloc", JET_errOutOfMemory);
    if ((err = JetGetBackupManifestInstance(inst, "full", manifest, need, &need)) < 0)
        return failed("JetGetBackupManifestInstance", err);
    char mpath[8192];
    snprintf(mpath, sizeof mpath, "%s/backup.manifest", setdir);
    FILE *f = fopen(mpath, "w");
    if (!f || fputs(manifest, f) < 0 || fclose(f) != 0) return failed(mpath, JET_errDiskIO);
    free(manifest);
    if ((err = JetTruncateLogInstance(inst)) < 0) return failed("JetTruncateLogInstance", err);
    if ((err = JetEndExternalBackupInstance2(inst, JET_bitBackupEndNormal)) < 0)
        return failed("JetEndExternalBackupInstance2", err);
    printf("full backup in %s\n", setdir);

    if ((err = JetCloseTable(ses, tab)) < 0) return failed("JetCloseTable", err);
    if ((err = JetTerm(inst)) < 0) return failed("JetTerm", err);
    return 0;
}
