/*
 * path.h -- canonical file names: what the backup API hands out, and how it
 * decides that a name it is given denotes one of those files (path.c).
 */
#ifndef JET_PATH_H
#define JET_PATH_H

#include <stddef.h>

#include "jet.h"

/*
 * The canonical name of what name denotes: absolute (a relative name is
 * taken from the working directory, ESE's ErrPathComplete), with no ".",
 * "..", repeated or trailing "/", and no symbolic link anywhere in it, a
 * final one included (realpath).  The part of name that does not exist is
 * resolved lexically below its deepest existing ancestor, so a file about
 * to be created has a canonical name too.  "" is the working directory.
 * Two names denote the same file exactly when their canonical names are
 * equal (hard links aside).  JET_errInvalidPath when the result does not
 * fit in cb or the working directory cannot be read.
 *
 * The backup API hands out path_canonical(directory) + "/" + file name
 * (the file's own name kept, even when it is a link), and compares the
 * path_canonical of what it is given with that of what it handed out.
 */
JET_ERR path_canonical(const char *name, char *out, size_t cb);

#endif /* JET_PATH_H */
