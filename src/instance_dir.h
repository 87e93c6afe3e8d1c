/*
 * instance_dir.h -- the layout of an instance directory, as the programs
 * (jetfs serve, jetutil) keep one: the database file and the log's base
 * name.  A convention of the programs, not of the engine: an application
 * embedding libjet names its files as it likes.
 */
#ifndef JETFS_INSTANCE_DIR_H
#define JETFS_INSTANCE_DIR_H

#define JETFS_DB_NAME "jetfs.db"
#define JETFS_BASE_NAME "edb"

#endif
