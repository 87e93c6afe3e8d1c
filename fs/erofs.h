/*
 * erofs.h -- what the two read-only trees share, the backup view's
 * request table (fuse_glue.c) and the browse mount's (browse.c): every
 * request that would change the tree answers EROFS, whatever it names, and
 * the connection is set up the same way for one.  Pure: no state, no locks.
 */
#ifndef JETFS_EROFS_H
#define JETFS_EROFS_H
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

void erofs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);
void erofs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void erofs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void erofs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void erofs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void erofs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                  unsigned int flags);
void erofs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void erofs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi);
void erofs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi);
void erofs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags);
void erofs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void erofs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi);

/* The init settings of a tree whose attributes and data never change
 * while mounted: requests of up to max_request bytes (max_write also sets
 * the largest read), as much readahead, asynchronous reads, and no
 * revalidation of cached data. */
void erofs_conn_init(struct fuse_conn_info *conn, unsigned max_request);

/* The members of a struct fuse_lowlevel_ops that refuse. */
#define JETFS_EROFS_OPS                                                                                          \
    .setattr = erofs_setattr, .mknod = erofs_mknod, .mkdir = erofs_mkdir, .unlink = erofs_unlink,              \
    .rmdir = erofs_unlink, .symlink = erofs_symlink, .rename = erofs_rename, .link = erofs_link,               \
    .create = erofs_create, .write = erofs_write, .setxattr = erofs_setxattr,                                  \
    .removexattr = erofs_removexattr, .fallocate = erofs_fallocate

#endif
