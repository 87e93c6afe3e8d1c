/*
 * jet.h -- the public API of libjet, an ESE-style ("JET") transactional
 * storage engine.
 *
 * This header is the manual.  Every call says what it does, the errors it
 * returns, and its threading rules.  Names, numeric error values and
 * parameter lists follow Microsoft's ESE (esent.h) wherever ESE has them.
 * Where jetfs departs from ESE (the data model, the positional backup read)
 * the call says so.
 *
 * Which ESE families are here.  Code that uses these ports with little more
 * than type changes: instances and parameters (JetCreateInstance,
 * JetSetSystemParameter, JetInit, JetTerm), sessions and transactions,
 * databases (create, attach, detach, open, close), tables (create, open,
 * close, delete, JetGetTableNames), the whole streaming backup and restore
 * family (JetBeginExternalBackup ... JetEndExternalBackup, JetBackup,
 * JetRestore, JetExternalRestore), JetErrorString.  Not here: ESE's column
 * model and everything built on it -- JetAddColumn, JetSetColumn(s),
 * JetRetrieveColumn(s), JetMakeKey, JetSeek, JetPrepareUpdate/JetUpdate,
 * indexes (JetCreateIndex, JetSetCurrentIndex), JetEscrowUpdate, temporary
 * tables, JetDefragment.  A table here is one ordered key/value map: code
 * that stores records in columns is rewritten onto JetPutKV, JetRetrieveKV,
 * JetSeekKV, JetMove and JetRetrieveCurrentKV (a record's key as the key,
 * its columns serialised into the value; an index as a second table).
 *
 * Log space.  The write-ahead log grows by one generation file
 * (JET_paramLogFileSize) every time it fills, and generations are deleted
 * only by a backup's JetTruncateLog (or jetfs's unmount), or at once past
 * the checkpoint with JET_paramCircularLog.  An instance written to and
 * never backed up keeps every generation: small writes can add a gigabyte
 * of log in a minute.  Take backups (or set circular logging, at the price
 * of incremental backups) before the disk fills, as with ESE.
 *
 * Threading: every call is thread-safe with respect to other sessions.  A
 * session (JET_SESID) and the tables opened in it must be used by one thread
 * at a time, as in ESE; between calls a session, its tables and its open
 * transaction may move to another thread (begin on one, commit on another).
 * Any call may be made while the calling thread's session is in a
 * transaction, including the backup calls, JetTerm and calls on other
 * sessions, except one: a thread cannot wait for itself.  While one of its
 * sessions is in a write transaction, a second write transaction (or an
 * update) begun by the same thread on another session would wait for a
 * commit only that thread can make: it fails at once with
 * JET_errWriteConflict instead.  JetTerm may run while other threads'
 * sessions are in transactions: it rolls them back and ends the sessions,
 * whose handles then answer JET_errInvalidSesid (a thread must not be
 * inside a call on one of them while JetTerm runs).  No call sequence
 * aborts the process: a build installed without a build type is Release,
 * and the lock-order check that aborts at an engine bug is compiled only
 * into test builds (engine/README.md, "Lock order").
 *
 * Data model: a deliberate simplification of ESE's column model.  A database
 * holds named tables; a table is an ordered map from a byte-string key
 * (1..JET_cbKeyMost bytes, compared with memcmp, shorter first on a tie) to a
 * byte-string value (0..JET_cbValueMost bytes).
 *
 * Transactions: one transaction level per session (a nested
 * JetBeginTransaction is JET_errTransTooDeep).  Updates made outside a
 * transaction commit durably on their own.  Writers are serialised:
 * JetBeginTransaction takes the instance's writer token and keeps it until
 * commit or rollback, so a transaction reads one state and transactions are
 * serialisable.  Another session's JetBeginTransaction, or update outside a
 * transaction, waits for that commit; after 30 s of waiting it fails with
 * JET_errWriteConflict (roll back and retry).  JetBeginTransaction2 with
 * JET_bitTransactionReadOnly takes no token and never waits, but each of its
 * reads sees the last committed state, which may change between two reads
 * (ESE's snapshot of the transaction's begin is not there yet).  Readers
 * outside a transaction never wait for a writer and read the last committed
 * state.  JetRollback closes every table opened or created in the
 * transaction, as ESE's does: their ids then answer JET_errInvalidTableId.
 */
#ifndef JET_H
#define JET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef long JET_ERR;
typedef uintptr_t JET_API_PTR;

/* esent.h spellings, so ported declarations compile unchanged: JET_API is
 * esent.h's calling convention (__stdcall there, nothing on this
 * platform); JET_PCSTR/JET_PSTR are its narrow strings; JET_SNP/JET_SNT
 * the status callback's process and type. */
#define JET_API
typedef const char *JET_PCSTR;
typedef char *JET_PSTR;
typedef unsigned long JET_SNP;
typedef unsigned long JET_SNT;
typedef JET_API_PTR JET_INSTANCE;
typedef JET_API_PTR JET_SESID;
typedef JET_API_PTR JET_TABLEID;
typedef JET_API_PTR JET_HANDLE;
typedef unsigned long JET_DBID;
typedef unsigned long JET_GRBIT;

#define JET_instanceNil ((JET_INSTANCE)~(JET_API_PTR)0)
#define JET_sesidNil ((JET_SESID)~(JET_API_PTR)0)
#define JET_tableidNil ((JET_TABLEID)~(JET_API_PTR)0)
#define JET_dbidNil ((JET_DBID)0xFFFFFFFF)

#define JET_cbKeyMost 255u              /* longest key, bytes (ESE's value) */
#define JET_cbValueMost (64u << 20)     /* longest value, bytes */
#define JET_cbNameMost 64u              /* longest table name, bytes */
#define JET_BASE_NAME_LENGTH 3

/* ------------------------------------------------------------------ */
/* Error codes: ESE's numeric values.  Success is 0, errors negative,   */
/* warnings positive.                                                   */
/* ------------------------------------------------------------------ */
#define JET_errSuccess 0
#define JET_wrnBufferTruncated 1006
#define JET_wrnDatabaseAttached 1007   /* esent.h's value */
#define JET_errLogFileCorrupt (-501)
#define JET_errBackupInProgress (-505)
#define JET_errRestoreInProgress (-506)
#define JET_errMissingPreviousLogFile (-509)
#define JET_errLogWriteFail (-510)
#define JET_errBadLogVersion (-514)
#define JET_errInvalidLogSequence (-515)
#define JET_errLoggingDisabled (-516)
#define JET_errNoBackup (-520)
#define JET_errInvalidBackupSequence (-521)
#define JET_errBackupNotAllowedYet (-523)
#define JET_errInvalidBackup (-526)
#define JET_errMissingLogFile (-528)
#define JET_errBadLogSignature (-530)
#define JET_errBadDbSignature (-531)
#define JET_errBadCheckpointSignature (-532)
#define JET_errCheckpointCorrupt (-533)
#define JET_errLogFileSizeMismatch (-541)
#define JET_errCheckpointFileNotFound (-542)
#define JET_errDatabaseDirtyShutdown (-550)
#define JET_errGivenLogFileHasBadSignature (-555)
#define JET_errGivenLogFileIsNotContiguous (-556)
#define JET_errMissingRestoreLogFiles (-557)
#define JET_errMissingFullBackup (-560)
#define JET_errBadBackupDatabaseSize (-561)
#define JET_errDbTimeTooOld (-566)
#define JET_errDbTimeTooNew (-567)
#define JET_errMissingFileToBackup (-569)
#define JET_errLogReadVerifyFailure (-612)
#define JET_errRestoreOfNonBackupDatabase (-615)
#define JET_errLogFileNotCopied (-616)
#define JET_errBackupAbortByServer (-801)
#define JET_errInvalidGrbit (-900)
#define JET_errTermInProgress (-1000)
#define JET_errFeatureNotAvailable (-1001)
#define JET_errInvalidName (-1002)
#define JET_errInvalidParameter (-1003)
#define JET_errInvalidDatabaseId (-1010)
#define JET_errOutOfMemory (-1011)
#define JET_errReadVerifyFailure (-1018)
#define JET_errPageNotInitialized (-1019)
#define JET_errDiskIO (-1022)
#define JET_errInvalidPath (-1023)
#define JET_errRecordTooBig (-1026)
#define JET_errInvalidDatabase (-1028)
#define JET_errNotInitialized (-1029)
#define JET_errAlreadyInitialized (-1030)
#define JET_errFileAccessDenied (-1032)
#define JET_errBufferTooSmall (-1038)
#define JET_errNotInTransaction (-1054)
#define JET_errVersionStoreOutOfMemory (-1069)
#define JET_errRunningInOneInstanceMode (-1080)
#define JET_errRunningInMultiInstanceMode (-1081)
#define JET_errSystemParamsAlreadySet (-1082)
#define JET_errInstanceNameInUse (-1086)
#define JET_errInstanceUnavailable (-1090)
#define JET_errOutOfSessions (-1101)
#define JET_errWriteConflict (-1102)
#define JET_errTransTooDeep (-1103)
#define JET_errInvalidSesid (-1104)
#define JET_errInTransaction (-1108)
#define JET_errTransReadOnly (-1110)
#define JET_errSesidTableIdMismatch (-1114)
#define JET_errInvalidInstance (-1115)
#define JET_errDatabaseDuplicate (-1201)
#define JET_errDatabaseInUse (-1202)
#define JET_errDatabaseNotFound (-1203)
#define JET_errDatabaseInvalidName (-1204)
#define JET_errDatabaseCorrupted (-1206)
#define JET_errDatabaseLocked (-1207)
#define JET_errPageSizeMismatch (-1213)
#define JET_errTableDuplicate (-1303)
#define JET_errTableInUse (-1304)
#define JET_errObjectNotFound (-1305)
#define JET_errInvalidTableId (-1310)
#define JET_errRecordNotFound (-1601)
#define JET_errNoCurrentRecord (-1603)
#define JET_errRecordDeleted (-1017)  /* the cursor's current record was deleted since it moved there */
#define JET_errKeyDuplicate (-1605)
#define JET_errTooManyAttachedDatabases (-1805)
#define JET_errDiskFull (-1808)
#define JET_errPermissionDenied (-1809)
#define JET_errFileNotFound (-1811)
#define JET_errFileInvalidType (-1812)

/* ---- issue 12, streaming-backup side: esent.h codes a port expects. ---- */
#define JET_errBackupDirectoryNotEmpty (-504)    /* JetBackupInstance: the target directory holds files */
#define JET_errDatabasePatchFileMismatch (-552)  /* jetfs never returns it (no patch files) */
#define JET_errSurrogateBackupInProgress (-617)  /* jetfs never returns it (no surrogate backups) */
#define JET_errClientRequestToStopJetService (-1329) /* jetfs never returns it */
#define JET_errCallbackFailed (-2101)            /* a status callback failed */
/* ---- end of the streaming-backup block ---- */

/* The message for any JET_ERR (never NULL; unknown codes say so). */
const char *JetErrorString(JET_ERR err);
/*
 * JetGetLastErrorDetail (jetfs): a one-line description of the last error
 * reported on the calling thread, naming the file, page or generation and
 * what was expected vs found ("" when none).  Valid until the thread's next
 * call into the engine.
 */
const char *JetGetLastErrorDetail(void);
/*
 * JetGetInstanceFailure (jetfs): JET_errSuccess while the instance is
 * healthy; JET_errInstanceUnavailable once a log or database write or
 * fsync failed (or the live log was removed), with the first failure's
 * reason in szReason.  Such an instance acknowledges nothing more, and its
 * JetTerm returns JET_errInstanceUnavailable: it was not shut down cleanly,
 * and the next JetInit recovers it.
 */
JET_ERR JetGetInstanceFailure(JET_INSTANCE instance, char *szReason, unsigned long cbMax);

/* ------------------------------------------------------------------ */
/* System parameters (ESE parameter ids).                               */
/* ------------------------------------------------------------------ */
#define JET_paramSystemPath 0        /* string: checkpoint file directory */
#define JET_paramTempPath 1          /* string: accepted, unused */
#define JET_paramLogFilePath 2       /* string: log generation directory */
#define JET_paramBaseName 3          /* string: exactly 3 chars, "edb" */
#define JET_paramLogFileSize 11      /* integer, KiB, 64..32768 (1024) */
#define JET_paramCircularLog 17      /* integer, 0/1 (0) */
#define JET_paramCacheSizeMax 23     /* integer, pages (8192 = 64 MiB) */
#define JET_paramRecovery 34         /* string "On"/"Off": "Off" disables logging */
#define JET_paramDatabasePageSize 64 /* integer, 4096/8192/16384/32768 (8192) */
#define JET_paramCreatePathIfNotExist 100 /* integer, 0/1 (0): JetInit creates a missing system or
                                             log directory; without it a missing one is
                                             JET_errInvalidPath, so a mistyped path never gives a
                                             fresh, empty instance (as ESE) */
#define JET_paramCheckpointPeriodMs 4001 /* jetfs: checkpoint period (1000) */
#define JET_paramSnapshotMemoryMax 4002  /* jetfs: KiB of preserved pages a backup keeps in
                                            memory before spilling to a file (65536) */

/*
 * JetSetSystemParameter: pinstance NULL (or *pinstance == 0) sets the
 * global default used by instances created afterwards and by legacy mode.
 * Setting an instance parameter after JetInit on that instance is
 * JET_errAlreadyInitialized (paths, sizes) -- as ESE.  Unknown paramid or a
 * value out of range is JET_errInvalidParameter.
 */
JET_ERR JetSetSystemParameter(JET_INSTANCE *pinstance, JET_SESID sesid,
                              unsigned long paramid, JET_API_PTR lParam,
                              const char *szParam);
JET_ERR JetGetSystemParameter(JET_INSTANCE instance, JET_SESID sesid,
                              unsigned long paramid, JET_API_PTR *plParam,
                              char *szParam, unsigned long cbMax);

/* ------------------------------------------------------------------ */
/* Instances.                                                           */
/* ------------------------------------------------------------------ */
#define JET_bitTermComplete 0x1
#define JET_bitTermAbrupt 0x2
#define JET_bitTermStopBackup 0x4

/*
 * JetCreateInstance enters multi-instance mode (JET_errRunningInOneInstanceMode
 * if legacy JetInit already ran); names must be unique
 * (JET_errInstanceNameInUse).  JetInit(NULL) or JetInit(&inst) with inst ==
 * 0 starts the legacy instance (JET_errRunningInMultiInstanceMode once any
 * instance was created).  JetInit runs crash recovery: it replays the log
 * from the checkpoint and leaves every committed transaction present and no
 * uncommitted change visible.  Errors from recovery: JET_errLogFileCorrupt,
 * JET_errMissingLogFile, JET_errBadLogSignature, JET_errCheckpointCorrupt,
 * JET_errReadVerifyFailure, JET_errDiskIO.  Nothing is deleted on failure.
 */
JET_ERR JetCreateInstance(JET_INSTANCE *pinstance, const char *szInstanceName);
JET_ERR JetInit(JET_INSTANCE *pinstance);
/* JetTerm: closes sessions, flushes, detaches databases cleanly. */
JET_ERR JetTerm(JET_INSTANCE instance);
JET_ERR JetTerm2(JET_INSTANCE instance, JET_GRBIT grbit);

/* ------------------------------------------------------------------ */
/* Sessions and transactions.                                           */
/* ------------------------------------------------------------------ */
#define JET_bitTransactionReadOnly 0x1
#define JET_bitCommitLazyFlush 0x1   /* do not wait for the log flush */
#define JET_bitWaitLastLevel0Commit 0x2
#define JET_bitWaitAllLevel0Commit 0x8
#define JET_bitRollbackAll 0x1

JET_ERR JetBeginSession(JET_INSTANCE instance, JET_SESID *psesid,
                        const char *szUserName, const char *szPassword);
JET_ERR JetEndSession(JET_SESID sesid, JET_GRBIT grbit);
JET_ERR JetBeginTransaction(JET_SESID sesid);
JET_ERR JetBeginTransaction2(JET_SESID sesid, JET_GRBIT grbit);
/*
 * JetCommitTransaction: durable by default -- returns once the commit record
 * is on disk (concurrent committers share one fsync).  JET_bitCommitLazyFlush
 * returns at once; the commit becomes durable with the next flush.
 * JET_bitWaitLastLevel0Commit waits until the session's last commit is
 * durable, JET_bitWaitAllLevel0Commit until every commit of every session
 * is (both alone, in a transaction or not, committing nothing).
 * JET_errNotInTransaction outside a transaction.  A transaction whose
 * changed pages outgrow the cache fails its update with
 * JET_errVersionStoreOutOfMemory and must be rolled back.
 */
JET_ERR JetCommitTransaction(JET_SESID sesid, JET_GRBIT grbit);
JET_ERR JetRollback(JET_SESID sesid, JET_GRBIT grbit);

/* ------------------------------------------------------------------ */
/* Databases.                                                           */
/* ------------------------------------------------------------------ */
#define JET_bitDbOverwriteExisting 0x200
#define JET_bitDbReadOnly 0x1

/*
 * JetCreateDatabase creates, attaches and opens a database file
 * (JET_errDatabaseDuplicate if it exists, attached or not, and
 * JET_bitDbOverwriteExisting is not given; JET_errDatabaseInUse if it is
 * attached and JET_bitDbOverwriteExisting is given).  JetAttachDatabase attaches an existing file to the instance
 * (JET_errFileNotFound, JET_errDatabaseCorrupted, JET_errDatabaseDirtyShutdown
 * if it needs recovery from another log stream).  JetOpenDatabase returns a
 * JET_DBID for an attached file (JET_errDatabaseNotFound if not attached).
 */
JET_ERR JetCreateDatabase(JET_SESID sesid, const char *szFilename,
                          const char *szConnect, JET_DBID *pdbid,
                          JET_GRBIT grbit);
JET_ERR JetAttachDatabase(JET_SESID sesid, const char *szFilename,
                          JET_GRBIT grbit);
/* JET_errBackupInProgress while a backup runs (it reads the file and
 * records its history in the header at the end), as ESE. */
JET_ERR JetDetachDatabase(JET_SESID sesid, const char *szFilename);
JET_ERR JetOpenDatabase(JET_SESID sesid, const char *szFilename,
                        const char *szConnect, JET_DBID *pdbid,
                        JET_GRBIT grbit);
JET_ERR JetCloseDatabase(JET_SESID sesid, JET_DBID dbid, JET_GRBIT grbit);

/* ------------------------------------------------------------------ */
/* Tables: ordered key/value maps.                                      */
/* ------------------------------------------------------------------ */
JET_ERR JetCreateTable(JET_SESID sesid, JET_DBID dbid, const char *szTableName,
                       unsigned long lPages, unsigned long lDensity,
                       JET_TABLEID *ptableid);
JET_ERR JetOpenTable(JET_SESID sesid, JET_DBID dbid, const char *szTableName,
                     const void *pvParameters, unsigned long cbParameters,
                     JET_GRBIT grbit, JET_TABLEID *ptableid);
JET_ERR JetCloseTable(JET_SESID sesid, JET_TABLEID tableid);
/* JET_errTableInUse if any cursor is open on it. */
JET_ERR JetDeleteTable(JET_SESID sesid, JET_DBID dbid, const char *szTableName);
/*
 * JetGetTableNames (jetfs): the table names of a database as a multi-string
 * (each NUL-terminated, then a final NUL), sorted; *pcbActual gets the size
 * needed.  Output is truncated, not failed, when cbMax is too small.
 */
JET_ERR JetGetTableNames(JET_SESID sesid, JET_DBID dbid, char *szz,
                         unsigned long cbMax, unsigned long *pcbActual);

/* JetPutKV grbits (jetfs).  0 inserts or replaces. */
#define JET_bitPutInsert 0x1  /* fail with JET_errKeyDuplicate if present */
#define JET_bitPutReplace 0x2 /* fail with JET_errRecordNotFound if absent */

/*
 * JetPutKV / JetRetrieveKV / JetDeleteKV (jetfs): point operations by key.
 * Retrieve copies min(cbMax, size) bytes and returns JET_wrnBufferTruncated
 * when the value did not fit; *pcbActual always gets the full size.
 * Missing keys are JET_errRecordNotFound.  An empty or over-long key is
 * JET_errInvalidParameter (JET_cbKeyMost), an over-long value
 * JET_errRecordTooBig.
 */
JET_ERR JetPutKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey,
                 unsigned long cbKey, const void *pvData, unsigned long cbData,
                 JET_GRBIT grbit);
JET_ERR JetRetrieveKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey,
                      unsigned long cbKey, void *pvData, unsigned long cbMax,
                      unsigned long *pcbActual, JET_GRBIT grbit);
JET_ERR JetDeleteKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey,
                    unsigned long cbKey);
/*
 * JetUpdateKV (jetfs): read-modify-write of one key in one B+tree descent
 * (what ESE's JetEscrowUpdate does for a counter column).  pfn gets the old
 * value (fExists 0: the key is absent) and sets *ppvNew and *pcbNew to the new
 * one (valid until JetUpdateKV returns).  It returns JET_errSuccess to write
 * it, a positive value to leave the key as it is (JetUpdateKV then returns
 * that value), or an error, returned with nothing written.
 */
typedef JET_ERR (*JET_PFNUPDATEKV)(void *pvContext, const void *pvOld, unsigned long cbOld, int fExists,
                                   const void **ppvNew, unsigned long *pcbNew);
JET_ERR JetUpdateKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey, unsigned long cbKey,
                    JET_PFNUPDATEKV pfn, void *pvContext);

/* Cursor positioning.  Seek grbits are ESE's values. */
#define JET_bitSeekEQ 0x1
#define JET_bitSeekLT 0x2
#define JET_bitSeekLE 0x4
#define JET_bitSeekGE 0x8
#define JET_bitSeekGT 0x10
#define JET_MoveFirst ((long)0x80000000)
#define JET_MovePrevious (-1L)
#define JET_MoveNext (1L)
#define JET_MoveLast ((long)0x7fffffff)

/*
 * JetSeekKV (jetfs): positions the table's cursor on the first key >= (GE),
 * > (GT), == (EQ) the given key, or the last key <= (LE), < (LT) it.
 * JET_errRecordNotFound when there is none (cursor then has no current
 * record).  JetMove moves by +-1 or to the first/last key;
 * JET_errNoCurrentRecord past either end, and only there.  The cursor
 * remembers its key, not a page, so it stays valid across concurrent
 * updates and commits.  When its current key is deleted (by any session),
 * the cursor keeps its place: JetRetrieveCurrentKV answers
 * JET_errRecordDeleted, and JetMove goes on to the deleted key's neighbour,
 * as ESE's cursors do.  A scan by JetMove therefore sees every key that
 * existed throughout it, once, in order.
 */
JET_ERR JetSeekKV(JET_SESID sesid, JET_TABLEID tableid, const void *pvKey,
                  unsigned long cbKey, JET_GRBIT grbit);
JET_ERR JetMove(JET_SESID sesid, JET_TABLEID tableid, long cRow,
                JET_GRBIT grbit);
/* The current record's key and value (either buffer may be NULL). */
JET_ERR JetRetrieveCurrentKV(JET_SESID sesid, JET_TABLEID tableid, void *pvKey,
                             unsigned long cbKeyMax, unsigned long *pcbKey,
                             void *pvData, unsigned long cbDataMax,
                             unsigned long *pcbData);


/* ------------------------------------------------------------------ */
/* Streaming backup (ESE's external backup family).                     */
/*                                                                      */
/* The calls follow ESE (backup.cxx): one backup per instance          */
/* (JET_errBackupInProgress); calls out of order are JET_errNoBackup /  */
/* JET_errInvalidBackupSequence; after JetStopBackupInstance every call */
/* but Close/End is JET_errBackupAbortByServer.                         */
/*                                                                      */
/* What a backup holds, and when it is fixed:                           */
/*  - the database image is fixed at begin: the file as it stood on    */
/*    disk then, kept by copy-on-write (pages the engine writes later  */
/*    are preserved first), so begin costs the same whatever the size; */
/*  - the log range is fixed at the first JetGetLogInfoInstance(2) (or */
/*    JetGetTruncateLogInfoInstance), which rolls the log, as ESE's    */
/*    ErrBKIPrepareLogFiles: from the checkpoint at begin (full) or    */
/*    the oldest generation present (incremental) through the one that */
/*    roll closes.  Commits made between begin and that call are in    */
/*    the set, and a restore brings them back: the replay carries the  */
/*    begin-time image forward through them.                            */
/*  - The mount (jetfs serve) begins and calls JetGetLogInfo together, */
/*    when a set directory is opened, with JET_bitBackupAnyOrder: its  */
/*    set is fixed at that instant, and its readers may then open the  */
/*    database files in any order (README: "When the set is fixed").    */
/*                                                                      */
/* Errors that end the backup, as in ESE (later calls: JET_errNoBackup):*/
/*  - opening a database after JetGetLogInfo (or during an incremental) */
/*    is JET_errInvalidBackupSequence;                                  */
/*  - in the log phase, a name that is not on disk is                  */
/*    JET_errMissingFileToBackup.                                       */
/* In the database phase, a name that is not an attached database (a   */
/* log before JetGetLogInfo, say) is JET_errDatabaseNotFound, and the  */
/* backup goes on.                                                      */
/*                                                                      */
/* Where jetfs departs from ESE, on purpose (the only places):          */
/*  1. A database file is served as its on-disk image (fixed at begin  */
/*     as above), not ESE's stream of header copies, pages and trailer, */
/*     and many handles may be open at once and read at any offset and */
/*     size, from many threads (JetReadFileAtInstance): the mount's     */
/*     readers (tar, rsync, cp in parallel) need both.  ESE allows one  */
/*     handle, read sequentially in page multiples.                     */
/*  2. A name outside the set is refused (JET_errFileNotFound), where   */
/*     ESE opens any path it is given: a backup serves its set, never  */
/*     another file of the machine.                                     */
/*  3. Surrogate backups (JET_bitBackupSurrogate) are refused           */
/*     (JET_errInvalidGrbit): jetfs has no passive copies to back up    */
/*     in place of the active one.                                      */
/*  4. Unknown JetEndExternalBackupInstance2 bits are refused           */
/*     (JET_errInvalidParameter), where ESE ignores them: an End that   */
/*     misread its flags must not truncate or record history.           */
/*  5. No VSS family (JetOSSnapshot*): the copy-on-write image serves   */
/*     the same purpose through the streaming calls, with no OS writer. */
/*  6. A name list with a short buffer (JetGetAttachInfo, JetGetLogInfo,*/
/*     JetGetLogInfoInstance2, JetGetTruncateLogInfo) answers          */
/*     JET_errSuccess, the list's first cbMax bytes and the whole size  */
/*     in *pcbActual, as ESE's documentation says of each ("use that   */
/*     information to determine if the list was truncated") and ESE's  */
/*     code does for JetGetAttachInfoW.  ESE's code departs from its   */
/*     docs elsewhere: GetLogInfoW/GetTruncateLogInfoW report           */
/*     min(cbMax, size), and the ANSI forms (this header's char *       */
/*     calls) answer JET_errBufferTooSmall with *pcbActual unset.  One  */
/*     rule for every list, the documented one, serves clients written  */
/*     against either: a buffer grown until *pcbActual <= cbMax, or    */
/*     while *pcbActual >= cbMax, ends with the whole list.             */
/*  7. JetExternalRestore's zero bound (genLow or genHigh 0) means     */
/*     "from the copy and szBackupLogPath", where ESE takes 0 as a      */
/*     generation number; a given bound is checked as ESE's             */
/*     ErrLGCheckDBFiles does (JetExternalRestore2 below).              */
/*                                                                      */
/* The kind of backup recorded at a normal end (database header):       */
/*   full + JetTruncateLog (or TruncateDone)  -> full                   */
/*   full without truncation                  -> copy                   */
/*   incremental + truncation                 -> incremental            */
/*   incremental without truncation           -> differential           */
/* A normal end before JetGetLogInfo, or after JetStopBackup, is a      */
/* failed backup: no history (End still returns success).               */
/* ------------------------------------------------------------------ */
#define JET_bitBackupIncremental 0x00000001
#define JET_bitBackupAtomic 0x00000004 /* deprecated: JET_errInvalidGrbit */
#define JET_bitBackupFullWithAllLogs 0x00000008 /* ESE-internal: JET_errInvalidGrbit */
#define JET_bitBackupSnapshot 0x00000010 /* reserved: JET_errInvalidGrbit */
#define JET_bitBackupSurrogate 0x00000020 /* refused: JET_errInvalidGrbit (departure 3) */
/* jetfs: the caller opens the set's files in any order, databases after
 * JetGetLogInfo included (the mount, which fixes its set when a set
 * directory is opened and reads afterwards). */
#define JET_bitBackupAnyOrder 0x00010000
#define JET_bitBackupEndNormal 0x0001
#define JET_bitBackupEndAbort 0x0002
#define JET_bitBackupTruncateDone 0x0100
#define JET_bitBackupNoDbHeaderUpdate 0x0200 /* End: record no history in the headers */

typedef struct {
    unsigned long cbSize;     /* must be sizeof(JET_LOGINFO) */
    unsigned long ulGenLow;
    unsigned long ulGenHigh;
    char szBaseName[JET_BASE_NAME_LENGTH + 1];
} JET_LOGINFO;

/*
 * JetBeginExternalBackupInstance: JET_errNotInitialized before JetInit;
 * JET_errBackupNotAllowedYet while JetInit runs or once JetTerm started;
 * JET_errLoggingDisabled; unknown, Atomic, FullWithAllLogs, Snapshot or
 * Surrogate grbits JET_errInvalidGrbit; incremental with circular logging
 * JET_errInvalidBackup; a backup running JET_errBackupInProgress;
 * incremental without an earlier full backup JET_errMissingFullBackup.
 * Fixes the database image; the log range is fixed later, at
 * JetGetLogInfo.  Nothing is flushed or copied.
 */
JET_ERR JetBeginExternalBackupInstance(JET_INSTANCE instance, JET_GRBIT grbit);
JET_ERR JetBeginExternalBackup(JET_GRBIT grbit);
/*
 * Name lists (JetGetAttachInfo, JetGetLogInfo, JetGetTruncateLogInfo):
 * canonical absolute names, as a multi-string (each name NUL-terminated,
 * then a final NUL): the directory's real path (no ".", "..", or symbolic
 * link; a relative or unset system or log path is taken from the working
 * directory, as ESE's ErrPathComplete) and the file's own name.  Each
 * opens with JetOpenFileInstance exactly as given.  The list's first
 * cbMax bytes are copied (a short buffer holds a cut list, no terminator
 * added) and *pcbActual always gets the whole size, with JET_errSuccess
 * (departure 6).  A second JetGetLogInfo in the same backup answers the
 * same list: the range is fixed by the first.
 */
JET_ERR JetGetAttachInfoInstance(JET_INSTANCE instance, char *szzDatabases, unsigned long cbMax,
                                 unsigned long *pcbActual);
JET_ERR JetGetAttachInfo(char *szzDatabases, unsigned long cbMax, unsigned long *pcbActual);
/*
 * JetOpenFileInstance opens a file of the set: a database of a full
 * backup in the database phase, a log generation of the set in the log
 * phase.  Names are compared canonically, as ESE's: a relative name is
 * completed against the working directory (ErrPathComplete), ".", ".."
 * and symbolic links (to a directory or to the file) are resolved, so any
 * name that denotes a file of the set opens it, the very name a list gave
 * included.  Several may be open at once.  Refusals: see the
 * errors that end the backup above; a name outside the set
 * JET_errFileNotFound (the backup goes on).
 */
JET_ERR JetOpenFileInstance(JET_INSTANCE instance, const char *szFileName, JET_HANDLE *phfFile,
                            unsigned long *pulFileSizeLow, unsigned long *pulFileSizeHigh);
JET_ERR JetOpenFile(const char *szFileName, JET_HANDLE *phfFile, unsigned long *pulFileSizeLow,
                    unsigned long *pulFileSizeHigh);
/* Sequential read; *pcbActual 0 at the end.  Pages are verified first:
 * a damaged page is JET_errReadVerifyFailure (database) or
 * JET_errLogReadVerifyFailure (log) naming the file and page. */
JET_ERR JetReadFileInstance(JET_INSTANCE instance, JET_HANDLE hfFile, void *pv, unsigned long cb,
                            unsigned long *pcbActual);
JET_ERR JetReadFile(JET_HANDLE hfFile, void *pv, unsigned long cb, unsigned long *pcbActual);
/*
 * JetReadFileAtInstance (jetfs): positional read at any offset and size,
 * safe from many threads at once on one handle.  A database's bytes are
 * those of the file as it stood at begin.
 */
JET_ERR JetReadFileAtInstance(JET_INSTANCE instance, JET_HANDLE hfFile, unsigned long long ibOffset, void *pv,
                              unsigned long cb, unsigned long *pcbActual);
JET_ERR JetCloseFileInstance(JET_INSTANCE instance, JET_HANDLE hfFile);
JET_ERR JetCloseFile(JET_HANDLE hfFile);
/* The log generations of the set; the first call (with no file open,
 * else JET_errInvalidBackupSequence) rolls the log and fixes the range.
 * A generation of the range missing from disk is
 * JET_errMissingFileToBackup, and the backup is over. */
JET_ERR JetGetLogInfoInstance(JET_INSTANCE instance, char *szzLogs, unsigned long cbMax, unsigned long *pcbActual);
JET_ERR JetGetLogInfo(char *szzLogs, unsigned long cbMax, unsigned long *pcbActual);
JET_ERR JetGetLogInfoInstance2(JET_INSTANCE instance, char *szzLogs, unsigned long cbMax, unsigned long *pcbActual,
                               JET_LOGINFO *pLogInfo);
/* The generations JetTruncateLog would delete (fixes the range too). */
JET_ERR JetGetTruncateLogInfoInstance(JET_INSTANCE instance, char *szzLogs, unsigned long cbMax,
                                      unsigned long *pcbActual);
/*
 * JetTruncateLogInstance deletes, at the call, as ESE's ErrLGTruncateLog,
 * the generations JetGetTruncateLogInfo names: those of the set below the
 * checkpoint (oldest first; a failure stops there, leaving the rest
 * contiguous).  JET_errInvalidBackupSequence before JetGetLogInfo or with
 * a file open; JET_errLogFileNotCopied, deleting nothing, unless every log
 * of the set was read whole, in this backup or in an earlier one (a closed
 * generation never changes, so backup software that skips a file it
 * already holds loses nothing; the record of what earlier backups read
 * whole is kept with the instance, in <system path>/<base>.delivered, and
 * survives restarts).  What it deleted stays deleted whatever End follows.
 */
JET_ERR JetTruncateLogInstance(JET_INSTANCE instance);
JET_ERR JetTruncateLog(void);
JET_ERR JetEndExternalBackupInstance2(JET_INSTANCE instance, JET_GRBIT grbit);
JET_ERR JetEndExternalBackupInstance(JET_INSTANCE instance);
JET_ERR JetEndExternalBackup(void);
JET_ERR JetStopBackupInstance(JET_INSTANCE instance);
JET_ERR JetStopBackup(void);

/* JetGetBackupStatusInstance (jetfs): what the running backup holds. */
typedef struct {
    unsigned long cbStruct;          /* sizeof(JET_BACKUPSTATUS) */
    int fInProgress;
    int fIncremental;
    int fStopped;
    unsigned long ulGenLow, ulGenHigh;
    unsigned long long begin_us;
    unsigned long long cbPreservedMemory;  /* copy-on-write pages held in memory */
    unsigned long long cbPreservedSpill;   /* ... and in the spill file */
    unsigned long cFiles, cFilesReadWhole;
    char szFailure[512];             /* why the backup can no longer be served ("" if it can):
                                        preserving a page failed, and the instance went on */
} JET_BACKUPSTATUS;
JET_ERR JetGetBackupStatusInstance(JET_INSTANCE instance, JET_BACKUPSTATUS *pstatus);

/*
 * JetBackupManifestName (jetfs): the second name a set's manifest
 * goes under, beside backup.manifest, so that sets copied one after another
 * into one directory keep every backup's manifest (restore reads them all):
 * backup.<UTC begin>-<backup id>.manifest, from the manifest text
 * szManifest (as JetGetBackupManifestInstance gave it).  szName takes at
 * least 65 bytes.  JET_errInvalidBackup if the text is not a manifest;
 * JET_errInvalidParameter.
 */
JET_ERR JetBackupManifestName(const char *szManifest, char *szName, unsigned long cbMax);

/*
 * JetGetBackupFileInfoInstance (jetfs): file iFile (0-based) of the running
 * backup's set: its full path, whether it is a database or which log
 * generation, its size and how many of its bytes reads have covered so far
 * (cbCovered == cbSize: read whole at least once), and, from
 * JetGetLogInfo on, whether a log generation was read whole by an earlier
 * backup (fDeliveredBefore: it needs no reading now).  JET_errNoBackup with no
 * backup; JET_errInvalidParameter past the last file or for a bad cbStruct.
 */
typedef struct {
    unsigned long cbStruct;          /* sizeof(JET_BACKUPFILEINFO) */
    char szPath[4096];
    int fDatabase;
    unsigned long ulGeneration;      /* log files */
    unsigned long long cbSize, cbCovered;
    int fDeliveredBefore;            /* log: read whole by an earlier backup of this instance */
} JET_BACKUPFILEINFO;
JET_ERR JetGetBackupFileInfoInstance(JET_INSTANCE instance, unsigned long iFile, JET_BACKUPFILEINFO *pinfo);

/*
 * JetGetBackupManifestInstance (jetfs): the manifest of the running backup
 * as JSON text (backup.manifest of a backup set): format version, backup
 * id, predecessor id, type (szType: "full", "incremental", "differential"
 * or "copy", as the caller intends to end it), begin time, log signature,
 * database signatures, generation range, and for every file its name,
 * size and xxHash (XXH3-64) -- omitted for database files, whose pages each
 * carry a checksum -- and last the manifest's own checksum, XXH3-64 of its
 * canonical form (engine/manifest.c: the text written here, members in a
 * fixed order), so a manifest re-indented or with its members reordered
 * by a tool still verifies and one with a value changed does not.
 * Computing the log hashes reads each generation once.  Before
 * JetGetLogInfo (the log range is not fixed yet) JET_errInvalidBackupSequence.
 */
JET_ERR JetGetBackupManifestInstance(JET_INSTANCE instance, const char *szType, char *szManifest,
                                     unsigned long cbMax, unsigned long *pcbActual);

/* ------------------------------------------------------------------ */
/* Restore.                                                             */
/* ------------------------------------------------------------------ */
typedef struct {
    char *szDatabaseName;     /* original path (informational) */
    char *szNewDatabaseName;  /* the restored database file, already in place */
} JET_RSTMAP;

typedef JET_ERR (*JET_PFNSTATUS)(JET_SESID sesid, unsigned long snp, unsigned long snt, void *pv);
/* Status notifications (ESE's values).  Restore and recovery call the
 * callback with JET_snpRestore: JET_sntBegin, then JET_sntProgress as each
 * log generation is reached, then JET_sntComplete; pv is a JET_SNPROG
 * counting generations.  A callback returning an error at Begin or
 * Progress stops the replay with that error (at Complete it is done). */
#define JET_snpRestore 8
#define JET_sntProgress 0
#define JET_sntFail 3
#define JET_sntBegin 5
#define JET_sntComplete 6
typedef struct {
    unsigned long cbStruct;   /* sizeof(JET_SNPROG) */
    unsigned long cunitDone;
    unsigned long cunitTotal;
} JET_SNPROG;

/*
 * JetExternalRestore2: brings restored database files forward with the
 * backup's logs, in a temporary instance, and leaves them consistent
 * (clean shutdown) in an instance whose checkpoint and logs are in
 * szCheckpointFilePath and szLogPath.  The generations pLogInfo names
 * (or, with ulGenLow 0, all in szBackupLogPath) are copied from
 * szBackupLogPath to szLogPath when the two differ.  Refusals, each naming
 * the piece: a file that is not a backup copy JET_errRestoreOfNonBackupDatabase;
 * a generation missing JET_errFileNotFound, as ESE; a log of another
 * instance JET_errGivenLogFileHasBadSignature; a broken hash chain
 * JET_errGivenLogFileIsNotContiguous; a damaged record JET_errLogFileCorrupt.
 * After the replay every page of each database is verified and its trees
 * checked: a damaged one is JET_errReadVerifyFailure naming the file and
 * the page (the file stays where it is, replayed; do not attach it).
 * The range (ESE's ErrLGCheckDBFiles): pLogInfo NULL is
 * JET_errInvalidParameter here; a zero ulGenLow or ulGenHigh (and
 * JetExternalRestore's zero genLow or genHigh) means "from the copy and
 * what szBackupLogPath holds" (departure 7).  Starting after the set's
 * first generation (the copy's) JET_errStartingRestoreLogTooHigh, and so
 * is a range that ends before it starts (genLow > genHigh); ending before
 * the set's last JET_errEndingRestoreLogTooLow: the set's last is where
 * the backup's first JetGetLogInfo ended it (a log record there says so,
 * found when szBackupLogPath holds generations past the range; ESE keeps
 * it as the trailer page's genHigh), and at least the generation current
 * at the backup's begin (the copy's header); a generation of it not on
 * disk JET_errFileNotFound naming the file.  A szTargetInstanceName that names
 * no instance is JET_errBadRestoreTargetInstance; otherwise the target
 * parameters must be NULL (roll-forward onto a running instance is not
 * offered).  In legacy mode JET_errRunningInOneInstanceMode.
 * JetExternalRestore3 (jetfs) adds a stop point: replay no generation
 * past stop_gen and no commit later than stop_us (0 = no limit).
 */
JET_ERR JetExternalRestore2(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                            char *szBackupLogPath, JET_LOGINFO *pLogInfo, char *szTargetInstanceName,
                            char *szTargetInstanceLogPath, char *szTargetInstanceCheckpointPath, JET_PFNSTATUS pfn);
/*
 * JetRestoreSets (jetfs): restore from backup set directories, as
 * `jetutil restore` does.  sets[0] is a full (or copy) backup set: its
 * database file(s) and log generations; the following sets add log
 * generations (incremental or differential sets).  Creates target_dir
 * (which must not exist or be empty), copies the databases and logs in,
 * refusing a generation that two sets hold with different contents and any
 * gap in the chain, then runs JetExternalRestore3 there.  A set with a
 * backup.manifest must match it: each listed file present with its size
 * and hash (JET_errLogFileCorrupt, JET_errBadBackupDatabaseSize for a
 * database), no file it does not list, its own checksum intact (over its
 * values: layout and member order do not count), every member of its
 * format present, of its type, and no other, and its
 * predecessor the set before it (JET_errInvalidBackup,
 * JET_errInvalidBackupSequence).  On failure the target directory is
 * emptied, and removed again if this call created it.
 */
JET_ERR JetRestoreSets(const char *const *sets, int nsets, const char *target_dir, unsigned long stop_gen,
                       unsigned long long stop_us);
/*
 * ESE's other restore entry points, over the two above.
 * JetExternalRestore: JetExternalRestore2 with the generation range as
 * genLow/genHigh (either 0: every generation in szBackupLogPath).
 * JetRestoreInstance (directory form): restores the backup directory sz
 * (a set, or what JetBackupInstance wrote: the full set -- sz itself, else
 * its atomic new, else old -- then its inc-* sets in order) for instance,
 * which must be created and not yet initialised (JET_errAlreadyInitialized).
 * Into szDest if given (new or empty, JET_errInvalidPath otherwise).  With
 * szDest NULL, as ESE's restore map: each database back to its original
 * path (recorded in the set's manifest; a set without it is
 * JET_errInvalidBackup), the logs to the instance's log path, the
 * checkpoint to its system path, where JetInit finds them; a file at an
 * original path (JET_errDatabaseDuplicate), a log generation of the
 * instance's base in its log path or a checkpoint in its system path
 * (JET_errInvalidPath) is refused, naming it, before anything is written.
 * instance JET_instanceNil: a temporary instance of the global parameters.
 * No sz: JET_errInvalidParameter; no set in it: JET_errFileNotFound.
 * JetRestore / JetRestore2 do the same for the legacy instance
 * (JET_errRunningInMultiInstanceMode otherwise).
 */
JET_ERR JetExternalRestore(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                           char *szBackupLogPath, long genLow, long genHigh, JET_PFNSTATUS pfn);
JET_ERR JetRestoreInstance(JET_INSTANCE instance, const char *sz, const char *szDest, JET_PFNSTATUS pfn);
JET_ERR JetRestore(const char *szSource, JET_PFNSTATUS pfn);
JET_ERR JetRestore2(const char *sz, const char *szDest, JET_PFNSTATUS pfn);
/* JetRestoreSets with a status callback for the replay (may be NULL). */
JET_ERR JetRestoreSets2(const char *const *sets, int nsets, const char *target_dir, unsigned long stop_gen,
                        unsigned long long stop_us, JET_PFNSTATUS pfn);
/*
 * JetInit3: JetInit with ESE's restore information.  prstInfo NULL is
 * JetInit.  cbStruct must be sizeof(JET_RSTINFO), grbit 0
 * (JET_errInvalidParameter / JET_errInvalidGrbit otherwise).  pfnStatus
 * gets the replay's progress, as for a restore.  rgrstmap (crstmap
 * entries, at most JET_MAX_DBS) relocates databases during this recovery,
 * as ESE's restore map does (ManagedEsent's TestJetInit3): a database the
 * log or the checkpoint names by szDatabaseName (relative names are taken
 * from the working directory) is recovered in the file szNewDatabaseName,
 * and the original path is left alone.  When no file is at
 * szNewDatabaseName and the replay holds the database's creation (the
 * checkpoint deleted, every log since the creation kept), the file is
 * created again there from the log, as ESE replays its createdb record;
 * otherwise the file must be put there first, and a missing one is
 * JET_errFileNotFound naming it.  Without a map, a missing database is
 * never created again.  lgposStop and logtimeStop (ESE's stop point) must
 * be zero: a point-in-time stop is JetExternalRestore3's (stop_gen,
 * stop_us); non-zero is JET_errInvalidParameter.
 */
typedef struct {
    unsigned short ib;        /* byte offset in the sector (ESE) */
    unsigned short isec;      /* sector in the generation (ESE) */
    long lGeneration;         /* log generation */
} JET_LGPOS;
typedef struct {
    char bSeconds, bMinutes, bHours, bDay, bMonth, bYear; /* bYear: years since 1900 */
    union {
        char bFiller1;
        struct {
            unsigned char fTimeIsUTC : 1;
            unsigned char bMillisecondsLow : 7;
        };
    };
    union {
        char bFiller2;
        struct {
            unsigned char fReserved : 1;
            unsigned char bMillisecondsHigh : 3;
            unsigned char fUnused : 4;
        };
    };
} JET_LOGTIME;
typedef struct {
    unsigned long cbStruct;
    JET_RSTMAP *rgrstmap;
    long crstmap;
    JET_LGPOS lgposStop;      /* must be zero (see above) */
    JET_LOGTIME logtimeStop;  /* must be zero (see above) */
    JET_PFNSTATUS pfnStatus;
} JET_RSTINFO;
JET_ERR JetInit3(JET_INSTANCE *pinstance, JET_RSTINFO *prstInfo, JET_GRBIT grbit);
JET_ERR JetExternalRestore3(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                            char *szBackupLogPath, JET_LOGINFO *pLogInfo, unsigned long stop_gen,
                            unsigned long long stop_us, JET_PFNSTATUS pfn);

/* ---- issue 12, streaming-backup side: more esent.h spellings. ---- */
#define JET_snpBackup 9
#define JET_sntBeginUndo 1005 /* recovery is about to undo (esent.h's value; jetfs does not send it) */
/* The narrow ("A") names of the entry points that take strings: jetfs is
 * narrow only, so each is the call itself. */
typedef JET_LOGINFO JET_LOGINFO_A;
typedef JET_RSTMAP JET_RSTMAP_A;
#define JetCreateInstanceA JetCreateInstance
#define JetSetSystemParameterA JetSetSystemParameter
#define JetGetSystemParameterA JetGetSystemParameter
#define JetBeginSessionA JetBeginSession
#define JetCreateDatabaseA JetCreateDatabase
#define JetAttachDatabaseA JetAttachDatabase
#define JetDetachDatabaseA JetDetachDatabase
#define JetOpenDatabaseA JetOpenDatabase
#define JetCreateTableA JetCreateTable
#define JetOpenTableA JetOpenTable
#define JetDeleteTableA JetDeleteTable
#define JetGetAttachInfoA JetGetAttachInfo
#define JetGetAttachInfoInstanceA JetGetAttachInfoInstance
#define JetOpenFileA JetOpenFile
#define JetOpenFileInstanceA JetOpenFileInstance
#define JetGetLogInfoA JetGetLogInfo
#define JetGetLogInfoInstanceA JetGetLogInfoInstance
#define JetGetLogInfoInstance2A JetGetLogInfoInstance2
#define JetGetTruncateLogInfoInstanceA JetGetTruncateLogInfoInstance
#define JetExternalRestoreA JetExternalRestore
#define JetExternalRestore2A JetExternalRestore2
#define JetRestoreA JetRestore
#define JetRestore2A JetRestore2
#define JetRestoreInstanceA JetRestoreInstance
/* ---- end of the streaming-backup block ---- */

/* ------------------------------------------------------------------ */
/* Directory backups and restore destinations (issue 12, points 5-8:   */
/* dirbackup.c, restore.c).                                             */
/* ------------------------------------------------------------------ */
#define JET_errEndingRestoreLogTooLow (-553)
#define JET_errStartingRestoreLogTooHigh (-554)
#define JET_errBadRestoreTargetInstance (-577)

/*
 * JetBackupInstance: ESE's directory backup, made of the streaming calls
 * above (begin, GetAttachInfo, OpenFile/ReadFile/CloseFile, GetLogInfo,
 * TruncateLog, End).  It writes a backup set that JetRestoreInstance,
 * `jetutil restore` and `jetutil verify` read back: the database files and
 * log generations under their own names, and the set's backup.manifest
 * (JetGetBackupManifestInstance).  As ESE's JetBackup it truncates the log
 * at the end (the set was read whole), so a full one is recorded as a full
 * backup and an incremental one as an incremental.
 *
 *   0 (full): szBackupPath must be missing or empty
 *     (JET_errBackupDirectoryNotEmpty); the set is written there.
 *   JET_bitBackupIncremental: szBackupPath must hold a full set written
 *     by an earlier JetBackupInstance (JET_errMissingFullBackup); the
 *     incremental set is written beside it in szBackupPath/inc-GGGGGGGG
 *     (GGGGGGGG: its first generation in hex, so names sort in order);
 *     logs truncated since the directory's newest generation (by another
 *     backup) are JET_errInvalidLogSequence, as ESE.
 *   JET_bitBackupAtomic: as ESE, the directory keeps a complete set at
 *     every moment: a full backup is written into szBackupPath/temp, then
 *     becomes szBackupPath/new, the previous new having moved to old and
 *     old being deleted last; an atomic incremental moves new to old and
 *     adds its set to old.
 *
 * pfnStatus (may be NULL) gets JET_snpBackup with JET_sntBegin, then
 * JET_sntProgress after each file (cunitDone of cunitTotal 100, by bytes),
 * then JET_sntComplete; an error returned at Begin or Progress stops the
 * backup with that error.  Any failure ends the backup as aborted (nothing
 * truncated or recorded) and removes what this call wrote.  Errors are the
 * streaming calls' plus: szBackupPath NULL or empty JET_errInvalidParameter
 * (departure: ESE then only truncates the log); unknown grbits
 * JET_errInvalidGrbit; a path too long JET_errInvalidPath; two attached
 * databases of the same file name JET_errDatabaseDuplicate.
 * JetBackup: the same for the legacy instance.
 */
JET_ERR JetBackupInstance(JET_INSTANCE instance, const char *szBackupPath, JET_GRBIT grbit, JET_PFNSTATUS pfnStatus);
JET_ERR JetBackup(const char *szBackupPath, JET_GRBIT grbit, JET_PFNSTATUS pfnStatus);
/* JetGetTruncateLogInfoInstance for the legacy instance (ESE's legacy name). */
JET_ERR JetGetTruncateLogInfo(char *szzLogs, unsigned long cbMax, unsigned long *pcbActual);

/* ------------------------------------------------------------------ */
/* Browsing backup sets (jetfs).                                        */
/* ------------------------------------------------------------------ */
/*
 * JetBrowseSets (jetfs): the state that JetRestoreSets2 of the same sets
 * and stop point would produce, opened read-only, without writing to the
 * sets and without copying the database file.  The same checks run first
 * (manifest, chain, signatures: the same errors and messages as restore);
 * then the logs are replayed with the sets' files underneath and every
 * page the replay writes kept in a private overlay (memory up to
 * cbOverlayMemory, then an unlinked temporary file).  Every page read
 * afterwards is checksum-verified as it is read, so a damaged page is an
 * error naming the file and page, never data.  The sets may be read-only.
 *
 * JetBrowseInstance gives an initialised instance over that state:
 * JetBeginSession, JetOpenDatabase(info.szDatabase, JET_bitDbReadOnly),
 * then tables, point reads and cursors as usual.  It is the caller's to
 * read, not to write: every update is refused with JET_errPermissionDenied.
 * JetBrowseClose ends it: the instance is terminated, the overlay and the
 * scratch directory are deleted, and the sets are as they were.
 */
typedef struct jet_browse JET_BROWSE;
typedef struct {
    unsigned long cbStruct;              /* sizeof(JET_BROWSEOPTS) */
    unsigned long long cbOverlayMemory;  /* overlay bytes kept in memory (0: 256 MiB) */
    const char *szTempPath;              /* scratch directory's parent (NULL: $TMPDIR, else /tmp) */
    JET_PFNSTATUS pfnStatus;             /* the replay's progress (JET_snpRestore), may be NULL */
} JET_BROWSEOPTS;
typedef struct {
    unsigned long cbStruct;              /* sizeof(JET_BROWSEINFO) */
    int csets;                           /* sets given */
    unsigned long genLow, genHigh;       /* generations replayed */
    unsigned long genStop;               /* the stop asked (0: none) */
    unsigned long long usStop;           /* the stop time asked (0: none) */
    unsigned long long usPoint;          /* the state's point in time: its last replayed commit, else the backup's consistent point */
    unsigned long long cbOverlay;        /* bytes the replay wrote over the sets (pages changed) */
    unsigned long long cbOverlaySpilled; /* of those, in the temporary file */
    const char *szDatabase;              /* the database to open (valid until JetBrowseClose) */
} JET_BROWSEINFO;
JET_ERR JetBrowseSets(const char *const *sets, int nsets, unsigned long stop_gen, unsigned long long stop_us,
                      const JET_BROWSEOPTS *opts, JET_BROWSE **pbrowse);
JET_INSTANCE JetBrowseInstance(JET_BROWSE *browse);
JET_ERR JetBrowseGetInfo(JET_BROWSE *browse, JET_BROWSEINFO *info);
JET_ERR JetBrowseClose(JET_BROWSE *browse);

#ifdef __cplusplus
}
#endif
#endif /* JET_H */
