/*
 * path.c -- canonical file names for the backup API (path.h).
 *
 * Owns nothing between calls and takes no lock.
 *
 * Why it exists: a backup client in a process that sets no system or log
 * path (ESE's default, the working directory) was handed
 * "/the/cwd/./edb00000001.log" by JetGetLogInfo, and JetOpenFile, which
 * resolved names differently, did not recognise that very name.  ESE
 * completes every name against the working directory and compares the
 * results; so here every name the backup API hands out is its directory's
 * path_canonical and the file's own name, and a name JetOpenFile is given
 * matches a file of the set when both have the same path_canonical:
 * however it is spelt (relative, with "." or "..", through a symbolic link
 * to the directory or to the file itself).
 *
 * A canonical name: absolute; components separated by exactly one "/",
 * none "." or "..", none a symbolic link; no trailing "/" (but "/" itself).
 * realpath(3) gives exactly that for a name that exists.  For one that does
 * not, the deepest existing ancestor is resolved by realpath and the rest
 * applied lexically ("." dropped, ".." removes the last component), which
 * is all that can be said of components that are not there.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "os.h"
#include "path.h"

/* name made absolute against the working directory, into out. */
static JET_ERR absolute(const char *name, char *out, size_t cb)
{
    char cwd[PATH_MAX];
    if (name[0] == '/') {
        if (strlen(name) >= cb) return jet_report(JET_errInvalidPath, "%.200s...: name too long", name);
        memcpy(out, name, strlen(name) + 1);
        return JET_errSuccess;
    }
    if (!getcwd(cwd, sizeof cwd)) return jet_report(JET_errInvalidPath, "%s: the working directory cannot be read", name);
    if (os_join(out, cb, cwd, *name ? name : ".") < 0)
        return jet_report(JET_errInvalidPath, "%s: name too long once completed with %s", name, cwd);
    return JET_errSuccess;
}

/* Appends component c (of n bytes) to canonical name out, lexically. */
static JET_ERR push(char *out, size_t cb, const char *c, size_t n)
{
    size_t len = strlen(out);
    if (n == 0 || (n == 1 && c[0] == '.')) return JET_errSuccess;
    if (n == 2 && c[0] == '.' && c[1] == '.') {
        char *s = strrchr(out, '/');
        if (s == out) out[1] = '\0'; /* ".." of "/" is "/" */
        else if (s) *s = '\0';
        return JET_errSuccess;
    }
    size_t sep = len > 1 ? 1 : 0; /* "/" already ends in one */
    if (len + sep + n + 1 > cb) return JET_errInvalidPath;
    if (sep) out[len++] = '/';
    memcpy(out + len, c, n);
    out[len + n] = '\0';
    return JET_errSuccess;
}

JET_ERR path_canonical(const char *name, char *out, size_t cb)
{
    char abs[PATH_MAX], real[PATH_MAX];
    JET_ERR err;
    if (!name) return JET_errInvalidParameter;
    if ((err = absolute(name, abs, sizeof abs)) < 0) return err;
    /* The longest prefix ending before a "/" (or the whole name) that
     * realpath resolves; "/" always does. */
    size_t cut = strlen(abs);
    for (;;) {
        char saved = abs[cut];
        abs[cut] = '\0';
        bool ok = realpath(cut ? abs : "/", real) != NULL;
        abs[cut] = saved;
        if (ok) break;
        if (cut == 0) return jet_report(JET_errInvalidPath, "%s: \"/\" does not resolve", name);
        while (cut > 0 && abs[cut - 1] != '/') cut--;
        if (cut > 0) cut--; /* onto the "/" before that component */
    }
    if (strlen(real) >= cb) return jet_report(JET_errInvalidPath, "%s: canonical name too long", name);
    memcpy(out, real, strlen(real) + 1);
    /* The components that do not exist, lexically. */
    for (const char *c = abs + cut; *c;) {
        while (*c == '/') c++;
        size_t n = strcspn(c, "/");
        if ((err = push(out, cb, c, n)) < 0) return jet_report(err, "%s: canonical name too long", name);
        c += n;
    }
    return JET_errSuccess;
}
