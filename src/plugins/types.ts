// The plugin contract: what a plugin author implements and what a step's run(ctx) receives.
import type { Duplex, Readable } from 'node:stream';
import type { Options as ExecaOptions, ResultPromise } from 'execa';

/** A JSON Schema, as plain data (draft 2020-12 subset that Ajv strict mode accepts). */
export type JsonSchema = Record<string, unknown>;

/**
 * What a step does with byte streams:
 * - `task`: no stream in or out (snapshot, restore-test, a notification);
 * - `source`: produces a stream (dump);
 * - `transform`: reads `input:` and produces a stream (compress, encrypt);
 * - `sink`: reads `input:` and consumes it (upload).
 */
export type StepKind = 'task' | 'source' | 'transform' | 'sink';

/** A step's log: lines go to the run's step log and to the live view; secrets are masked. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** The run a step belongs to. */
export interface RunInfo {
  /** Sortable, unique id, e.g. `20261124T020000Z-3fa2`. */
  id: string;
  startedAt: Date;
  pipeline: string;
  /** Folder of the run record (`<state-dir>/runs/<id>`). */
  dir: string;
  /** Folder of the pipeline file: what relative paths in a step's `with` are resolved against. */
  pipelineDir: string;
}

/** Bytes and sha256 of a finished stream edge. */
export interface EdgeStats {
  bytes: number;
  /**
   * Hex sha256 of the bytes. Computed for the first edge of a chain (what the source produced), for
   * the edge into the sink (what is stored), and for any edge whose `outputs.sha256` a template
   * reads; absent on other edges, whose hash nothing uses.
   */
  sha256?: string;
}

/** A program's stdout handed to this step's program as its stdin (see `StepContext.inputPipe`). */
export interface InputPipe {
  /** The file descriptor to give as the program's stdin. */
  readonly fd: number;
  /** The program has started (it holds its own copy of the pipe): dbflow closes its copy. */
  given(): void;
  /** The program read this many bytes: they are the edge's `bytes`. */
  counted(bytes: number): void;
}

/** A database entry of the pipeline (`databases.<name>`), with templates resolved. */
export interface DatabaseConfig {
  name: string;
  driver: string;
  url: string;
  /** The connection's password (`databases.<name>.password`, usually a secret); never log it. */
  password?: string;
  /** Driver-specific options (`databases.<name>.options`). */
  options: Record<string, unknown>;
  /** Data assertions (`databases.<name>.assert`): run inside the snapshot and again on the restored copy. */
  assertions?: DataAssertion[];
}

/** A read-only query whose result the backup must keep: the restored copy's must equal the snapshot's, or meet `expect`. */
export interface DataAssertion {
  /** How failures name it (default: the query). */
  name: string;
  query: string;
  /** `equal` (the default), or a condition on the restored copy's single value: `= 0`, `>= 1`, `!= 0` … */
  expect: string;
  timeoutMs: number;
}

/** Row count (and optional content checksum) of one table. */
export interface TableCount {
  rows: number;
  checksum?: string;
}

/** Row counts by table name (schema-qualified where the database has schemas). */
export type TableCounts = Record<string, TableCount>;

/** What a driver's snapshot describes: recorded in the manifest under `databases.<name>`. */
export interface SnapshotInfo {
  driver: string;
  serverVersion: string;
  /** Driver-specific position of the cut: LSN and snapshot id, binlog file/position, … */
  position: Record<string, unknown>;
  /** Row counts taken inside the snapshot. */
  tables: TableCounts;
  takenAt: string;
}

/** An open snapshot: the driver's handle that dumps read from, released by the engine. */
export interface DriverSnapshot {
  info: SnapshotInfo;
  /**
   * Optional: the driver goes on counting inside the snapshot while the dumps run; `info.tables` is
   * complete once this resolves. A rejection fails the dump of this snapshot (nothing is published).
   */
  counted?: Promise<void>;
  /** Ends the snapshot (close the transaction, delete the staged copy). dbflow calls it once; a second call must do nothing. */
  release(): Promise<void>;
  /**
   * Optional: runs a read-only query inside the snapshot (a data assertion), at most `timeoutMs`; its rows as JSON,
   * each an array of the server's text for each value (null for NULL), so that two servers' results compare as text.
   */
  query?(sql: string, timeoutMs: number): Promise<string>;
}

/**
 * One database's part in a coordinated snapshot. The snapshot step calls `block` on every
 * participant at once; only when all hold their barrier does it call `take` on each, then `release`
 * on each, then `open`. `abort` may come at any point and undoes everything.
 */
export interface SnapshotParticipant {
  /** What the barrier is, e.g. `LOCK TABLE … IN SHARE MODE`; recorded in the manifest. */
  readonly method: string;
  /** What the barrier does not hold still (sequences, non-transactional tables …), known after preparing. */
  readonly notCovered: readonly string[];
  /**
   * Blocks the commits of writes to what the backup covers, waiting at most `timeoutMs` for locks.
   * Resolves to `undefined` once held, or to a description of what is in the way (session id,
   * query, age; the step names the database) when the locks could not be had in time; then nothing is held. Other failures throw.
   */
  block(timeoutMs: number): Promise<string | undefined>;
  /** Under every participant's barrier: opens the snapshot and reads its position. `cut` names the cut (e.g. for a restore point). */
  take(cut: string): Promise<void>;
  /** Lets commits go on. After `take`, first starts whatever must begin inside the cut (a dump tool's own transaction). */
  release(): Promise<void>;
  /** After `take` and `release`: the open snapshot, as `DatabaseDriver.snapshot` returns it. */
  open(): Promise<DriverSnapshot>;
  /** Gives up: ends barrier, snapshot and connections. Safe at any point, and more than once. */
  abort(): Promise<void>;
}

/**
 * One database's part in a recovery mark: the same commit barrier as a coordinated snapshot, held only long
 * enough to record a point in the database's log (no snapshot, no dump). The mark operation calls `block` on every
 * participant at once; only when all hold their barrier does it call `mark` on each, then `release` on each.
 * `abort` may come at any point and ends everything.
 */
export interface MarkParticipant {
  /** What the barrier is, as for a snapshot; recorded with the mark. */
  readonly method: string;
  /**
   * Optional: what can be done before blocking commits without blocking them (MariaDB's backup stages before
   * BLOCK_COMMIT), called on every participant before any `block`; answers as `block` does.
   */
  ready?(timeoutMs: number): Promise<string | undefined>;
  /** As `SnapshotParticipant.block`. */
  block(timeoutMs: number): Promise<string | undefined>;
  /**
   * Under every participant's barrier: records the point named `name` in the database's log and returns where it
   * is (PostgreSQL: a named restore point, its LSN, timeline and WAL file; MariaDB: the binlog file, position and
   * GTID), with what names the server's log archive folder (`system`).
   */
  mark(name: string): Promise<MarkPosition>;
  /** Lets commits go on. */
  release(): Promise<void>;
  /** Ends barrier and connections. Safe at any point, and more than once. */
  abort(): Promise<void>;
}

/** Where a mark stands in one database's log. */
export interface MarkPosition {
  /** The server's log archive folder name (PostgreSQL: its system identifier; MariaDB: `<hostname>-<server_id>`). */
  system: string;
  /** The log file holding the point (PostgreSQL: the WAL segment of the LSN; MariaDB: the binlog file). */
  file: string;
  /** Driver-specific: what recovery to this point is given (restore point and LSN, binlog position and GTID). */
  [key: string]: unknown;
}

/** A table a backup leaves out: its name, why (`not in options.tables`), and whether an exclusion names it (deliberate). */
export interface LeftOut {
  table: string;
  why: string;
  excluded: boolean;
}

/** A dump as a byte stream, and what kind of artifact it is. */
export interface DumpStream {
  stream: Readable;
  /** Format name recorded in the manifest, e.g. `sqlite3`, `pg_dump-custom`. */
  format: string;
  /** File name extension of the raw dump, e.g. `.sqlite3`, `.dump`. */
  extension: string;
  /**
   * Settles after the stream has ended: a rejection (the dump turned out inconsistent, say) fails the dump
   * step before anything is published. The stream may be read by the next program directly, so a check
   * at its end belongs here rather than in the stream.
   */
  final?: Promise<void>;
}

/** A scratch database that a restore goes into; `drop()` removes it. */
export interface ScratchDatabase {
  /** A connection URL of the scratch database (same driver). */
  url: string;
  drop(): Promise<void>;
}

/** The context a driver method gets: any step's context (its `with` is not the driver's concern). */
export type DriverContext = StepContext<unknown>;

/** What `DatabaseDriver.snapshot` gets. */
export interface SnapshotOptions {
  /** The database to snapshot. */
  db: DatabaseConfig;
}

/** What `DatabaseDriver.participate` gets. */
export interface ParticipateOptions {
  /** The database that takes part in the coordinated snapshot. */
  db: DatabaseConfig;
}

/** What `DatabaseDriver.dump` gets. */
export interface DumpOptions {
  /** The database to dump. */
  db: DatabaseConfig;
  /** The open snapshot of `db` that the dump reads, as this driver's `snapshot` or participant returned it. */
  snapshot: DriverSnapshot;
}

/** What `DatabaseDriver.scratch` gets. */
export interface ScratchOptions {
  /** The database next to which the scratch database is made (same server, same credentials). */
  db: DatabaseConfig;
  /** What to name it after: a name the driver may shorten or make safe, starting with `scratchPrefix(runId)` for a run's. */
  name: string;
}

/** What `DatabaseDriver.create` gets. */
export interface CreateOptions {
  /** The database to create: the one `db.url` names, with `db`'s credentials and options. */
  db: DatabaseConfig;
}

/** What `DatabaseDriver.exists` gets. */
export interface ExistsOptions {
  /** The database to look for: the one `db.url` names, with `db`'s credentials and options. */
  db: DatabaseConfig;
}

/** What `DatabaseDriver.restore` gets. */
export interface RestoreOptions {
  /** The database to restore into (a scratch database's URL, or the target of `dbflow restore`). */
  url: string;
  /** The dump, as `dump` produced it; it may fail at its end (an integrity check), and the restore must then fail. */
  input: Readable;
  /** The dump's format, as `dump` reported it. */
  format: string;
  /** The entry the dump came from: its credentials and options are the ones to connect with. */
  db: DatabaseConfig;
  /**
   * The server's roles or users and their grants, as `dumpGlobals` produced them (decoded), for a throwaway target only:
   * the driver restores them, and the dump with its owners and privileges, in the order its server needs.
   */
  globals?: string;
}

/** What `DatabaseDriver.dumpGlobals` gets. */
export interface GlobalsOptions {
  /** The entry whose server's roles or users to dump. */
  db: DatabaseConfig;
  /** Whether password hashes go into the dump (PostgreSQL leaves them out by default). */
  passwords: boolean;
}

/** What `DatabaseDriver.restoreInstance` gets. */
export interface RestoreInstanceOptions {
  /** The artifact, decoded to what its source step produced; it may fail at its end (an integrity check), and the restore must then fail. */
  input: Readable;
  /** The artifact's format, one of the driver's `physicalFormats`. */
  format: string;
  /** Where the artifact's data stands, as its source recorded it (`ArtifactRecord.position`): what to recover to. */
  position: Record<string, unknown>;
  /** The entry the artifact came from: the user the counts connect as, and its options. */
  db: DatabaseConfig;
  /** Keep the server's files in this empty folder and leave them there, stopped, instead of removing them (`dbflow restore --to-datadir`). */
  keepIn?: string;
  /** Recover past the artifact's own point, with the archived log, to this target (`dbflow restore --to-time` …). */
  recovery?: RecoveryOptions;
}

/** A point-in-time recovery: the archived log it replays, and where it stops. */
export interface RecoveryOptions {
  /**
   * Writes the archived log files recovery may ask for into `dir` (a folder of the instance, made by the driver),
   * each under its own name, checked (and with no gap before the target): before a server that recovers by itself
   * starts (PostgreSQL, which then reads only that folder), or before the driver replays them (MariaDB's binlog).
   */
  fetch(dir: string): Promise<void>;
  /**
   * Where recovery stops; none of them: the end of the archived log. A time (RFC 3339); for PostgreSQL a log
   * position (`lsn`) or a named restore point (`name`); for a binlog, a position (`binlog.000042:1234`) or a GTID to
   * stop after. A driver refuses a target its log does not know.
   */
  time?: string;
  lsn?: string;
  name?: string;
  position?: string;
  gtid?: string;
}

/** What `DatabaseDriver.rowCounts` gets. */
export interface RowCountOptions {
  /** The database to count (a scratch database's URL, or the target of `dbflow restore`). */
  url: string;
  /** The entry whose credentials and options to connect and count with. */
  db: DatabaseConfig;
  /** The checksum scheme a snapshot recorded (its `position.checksum`); without it, the driver's own choice for the server. */
  checksum?: string;
}

/** What `DatabaseDriver.reap` gets. */
export interface ReapOptions {
  /** The database whose server holds the scratch databases. */
  db: DatabaseConfig;
  /** Names (as `scratch` received them) whose scratch databases to drop: `scratchPrefix(runId)` of runs that died. */
  prefixes: readonly string[];
  signal: AbortSignal;
  log: (message: string) => void;
}

/** What `DatabaseDriver.preflight` gets. */
export interface PreflightOptions {
  /** The database to check, connecting as the pipeline would. */
  db: DatabaseConfig;
  /** What the pipeline does with it, so that only the privileges it needs are asked for. */
  use: PreflightUse;
}

/** What `DatabaseDriver.stockRestore` gets. */
export interface StockRestoreOptions {
  /** The dump's format, as `dump` reported it. */
  format: string;
  /** A shell command that writes the raw dump to stdout, e.g. `gpg --decrypt x | zstd -d`. */
  decoded: string;
  /** The name of the database entry the dump came from. */
  database: string;
  /** A physical artifact's position, as its source recorded it (`ArtifactRecord.position`): what to recover to. */
  position?: Record<string, unknown>;
}

/**
 * A database driver: what the generic `snapshot`, `dump`, `restore-test` and `rowcount-check`
 * steps dispatch to, by the database's `driver:`. Each method takes one options object, so that the
 * contract can add to it without breaking a driver; methods that may take long get the calling step's
 * context, whose `signal` they honour.
 */
export interface DatabaseDriver {
  /** The value of `driver:` in `databases:`, e.g. `sqlite`. */
  name: string;
  /** JSON Schema of `databases.<name>.options`; `{}` accepts none. */
  options: JsonSchema;
  /** Optional: what is wrong with a URL, found without connecting (`dbflow validate` reports it at its line). */
  checkUrl?(url: string): string | undefined;
  /** Optional: the stock shell command that restores a dump of `format` from `decoded`; shown after a run. */
  stockRestore?(options: StockRestoreOptions): string | undefined;
  /** Opens a consistent snapshot and counts rows inside it. */
  snapshot(ctx: DriverContext, options: SnapshotOptions): Promise<DriverSnapshot>;
  /**
   * Optional: take part in a coordinated snapshot (one cut across several databases). Connects and
   * prepares without blocking anything; the snapshot step then drives the participant's barrier.
   */
  participate?(ctx: DriverContext, options: ParticipateOptions): Promise<SnapshotParticipant>;
  /** Optional: take part in a recovery mark (a point recorded in every participant's log at once). Connects and prepares without blocking. */
  markParticipant?(ctx: DriverContext, options: ParticipateOptions): Promise<MarkParticipant>;
  /** Streams a dump that reads exactly the given snapshot. */
  dump(ctx: DriverContext, options: DumpOptions): Promise<DumpStream>;
  /** Creates an empty scratch database next to `db`, named after `name`. */
  scratch(ctx: DriverContext, options: ScratchOptions): Promise<ScratchDatabase>;
  /**
   * Optional: an empty database `name` on a throwaway server started from the installed binaries (its own data
   * directory, port and socket; never the production server), for a restore-test with `target: throwaway`. `drop()`
   * stops the server and removes its files.
   */
  throwaway?(ctx: DriverContext, options: ScratchOptions): Promise<ScratchDatabase>;
  /**
   * Optional, with `throwaway`: what a throwaway server lacks on this machine (the server binaries), or undefined when it
   * can start one. A restore-test without `target` restores into a throwaway server when it can, else a scratch database.
   */
  throwawayMissing?(): Promise<string | undefined>;
  /** Optional: creates the empty database `db.url` names unless it exists; true when it created it (`restore --create`). */
  create?(ctx: DriverContext, options: CreateOptions): Promise<boolean>;
  /** Optional: whether the database `db.url` names exists (so that `restore` can say so). */
  exists?(ctx: DriverContext, options: ExistsOptions): Promise<boolean>;
  /**
   * Restores a dump stream (as produced by `dump`) into the database at `url`, connecting with the
   * credentials and options of `db` (the entry the dump came from). A stream that fails fails the restore.
   */
  restore(ctx: DriverContext, options: RestoreOptions): Promise<void>;
  /**
   * Counts rows (and checksums) of every table of the database at `url`, with the options of `db`.
   * A `checksum` scheme (as a snapshot recorded it) is the one to compute, so that the counts of an
   * older backup compare; a driver that cannot compute it throws, saying why.
   */
  rowCounts(ctx: DriverContext, options: RowCountOptions): Promise<TableCounts>;
  /** Optional: formats of physical artifacts (a whole server's files, e.g. a base backup) that `restoreInstance` restores. */
  physicalFormats?: readonly string[];
  /**
   * Optional: the tables of the database that the entry's scope (its options) leaves out of a backup: the snapshot
   * step reports them, so that a new table never goes unbacked-up silently.
   */
  coverage?(ctx: DriverContext, options: { db: DatabaseConfig }): Promise<LeftOut[]>;
  /**
   * Optional: the databases on the entry's server that hold users' data (neither the server's own, nor dbflow's
   * scratch databases): the snapshot step reports those no entry of the pipeline names, with `coverage` set.
   */
  serverDatabases?(ctx: DriverContext, options: { db: DatabaseConfig }): Promise<string[]>;
  /**
   * Optional: the server's roles or users, their memberships and grants, as the stock tool writes them
   * (`pg_dumpall --globals-only`, `mariadb-dump --system=users`): an artifact beside the data, restored before or
   * after it (see `RestoreOptions.globals`).
   */
  dumpGlobals?(ctx: DriverContext, options: GlobalsOptions): Promise<DumpStream>;
  /**
   * Optional, with `dumpGlobals`: a read-only query over the owners and privileges of the objects in the entry's scope
   * and the roles they name (memberships, default privileges), whose rows are compared like a data assertion's:
   * inside the snapshot, and on a copy restored with its globals. Rows must not depend on the connecting user.
   */
  privilegesQuery?(db: DatabaseConfig): string;
  /** Optional: runs a read-only query on a database (a data assertion on a restored copy), as `DriverSnapshot.query` does. */
  query?(ctx: DriverContext, options: { url: string; db: DatabaseConfig; sql: string; timeoutMs: number }): Promise<string>;
  /**
   * Optional: restores a physical artifact into a throwaway server instance that it starts from the installed
   * binaries (never the production server) and recovers as `position` says; `url` is `db`'s database on it,
   * for `rowCounts`. `drop()` stops it and removes its files (with `keepIn`: stops it and leaves them).
   */
  restoreInstance?(ctx: DriverContext, options: RestoreInstanceOptions): Promise<ScratchDatabase>;
  /** Optional, with `restoreInstance`: how a user starts a data directory it kept (`dbflow restore --to-datadir`), as a command line. */
  startDatadir?(dir: string): string;
  /**
   * Optional, for drivers whose scratch databases outlive the process (a server's databases): drops
   * every scratch database next to `db` whose name starts with one of `prefixes` (names as `scratch`
   * received them); resolves to the names dropped. dbflow calls it for runs that provably died. It first ends
   * the sessions those runs still have on the server (a statement the server is still running when its client
   * died can create a scratch database after the reaper looked): the built-in drivers name the session that
   * creates a scratch database after it, so it can be found.
   */
  reap?(options: ReapOptions): Promise<string[]>;
  /**
   * Optional: connects as the pipeline would and checks, without changing anything, that this
   * database can be backed up and restore-tested: `dbflow init` and `dbflow run --dry-run` call it. A
   * connection that fails throws (a DbflowError saying why); missing privileges are reported, not thrown.
   */
  preflight?(ctx: DriverContext, options: PreflightOptions): Promise<PreflightReport>;
  /** Optional: continuous archiving of the database's log (PostgreSQL's WAL), for `archive:` and `dbflow archive`. */
  logArchive?: LogArchive;
}

/** What `LogArchive.receive` gets. */
export interface LogReceiveOptions {
  db: DatabaseConfig;
  /** The folder the receiver writes log files into; it is kept across restarts and emptied by dbflow as files are stored. */
  spool: string;
  /** A name unique per pipeline and database (e.g. a replication slot's), made of [a-z0-9_]. */
  slot: string;
}

/** A running receiver of a database's log. */
export interface LogReceiver {
  /** The server's identity (PostgreSQL's system identifier): the folder of its logs in the repository. */
  system: string;
  /** Resolves when the receiver has stopped after `stop()`; rejects when it fails on its own. */
  done: Promise<void>;
  /** Stops receiving; what was received stays in the spool. */
  stop(): Promise<void>;
}

/** One file of a log, as a receiver writes it. */
export interface LogFile {
  /** `segment`: complete and final; `history`: a timeline's history; `partial`: the segment being written. */
  kind: 'segment' | 'history' | 'partial';
  timeline: number;
  /** The file's name without a partial suffix. */
  name: string;
}

/** A gap in a stored log: the first file missing on a timeline. */
export interface LogGap {
  timeline: number;
  /** The file that is missing. */
  missing: string;
  /** The stored file before it. */
  after: string;
}

/**
 * Continuous archiving of a database's log: a receiver that writes log files into a spool folder,
 * and the rules of the files' names (which are complete, how they chain). dbflow stores the files.
 */
export interface LogArchive {
  /** Checks the server's settings (errors say what to change), then starts receiving into `spool`. */
  receive(ctx: DriverContext, options: LogReceiveOptions): Promise<LogReceiver>;
  /**
   * What a spool or repository file is, by name; undefined for other files. In the spool, `spool` lists every name
   * there (a log whose open file carries no mark of its own, like MariaDB's binlog, tells it by the newer ones).
   */
  classify(name: string, spool?: readonly string[]): LogFile | undefined;
  /** Gaps in the stored files (names as `classify` takes them): per timeline, consecutive segments and history files for switches. */
  gaps(names: readonly string[]): LogGap[];
  /** The log position covered by `bytes` of a file's content, as text (e.g. `0/3000000`); for lag reports. */
  position?(file: LogFile, bytes: number): string;
  /** Whether recovery that starts in log file `first` reads the stored file `name` (without a partial suffix). */
  reads(first: string, name: string): boolean;
  /**
   * Optional: the open file only grows by appending (MariaDB's binlog), so each flush stores just the bytes added
   * since the last one, and an unchanged size means unchanged content. Without it the open file is written in place
   * (a preallocated WAL segment) and stored whole whenever its content changed.
   */
  appendOnly?: boolean;
  /**
   * Optional, for bases that record where they stand in a log the driver replays itself (a MariaDB dump or base
   * backup): the log file and position a database's `position` starts from; undefined when it recorded none (the
   * log was off).
   */
  startOf?(position: Record<string, unknown>): LogStart | undefined;
  /** Optional, with `startOf`: applies the fetched log files in `dir` to a restored dump, from its start to the target. */
  replay?(ctx: DriverContext, options: LogReplayOptions): Promise<void>;
}

/** Where a dump's database stands in its log. */
export interface LogStart {
  /** The log file the dump's snapshot was taken in. */
  file: string;
  /** The position in it (bytes). */
  position: number;
  /** The GTID state at the snapshot, when the server has one. */
  gtid?: string;
  /** The database's name on the server (its events in the log carry it). */
  database: string;
}

/** Where a replay of the log stops; none of them: at the end of the fetched files. */
export interface LogTarget {
  /** An RFC 3339 time. */
  time?: string;
  /** A log position, as the driver writes it (MariaDB: `binlog.000042:1234`). */
  position?: string;
  /** A transaction id to stop after (MariaDB: `0-1-42`). */
  gtid?: string;
}

/** What `LogArchive.replay` gets. */
export interface LogReplayOptions {
  /** The restored database (the target of `dbflow restore --to`). */
  url: string;
  /** The entry whose credentials and options connect to it. */
  db: DatabaseConfig;
  /** The folder holding the fetched log files, each checked, under their own names. */
  dir: string;
  start: LogStart;
  target: LogTarget;
}

/** What the pipeline does with a database, so that a preflight asks only for what it needs. */
export interface PreflightUse {
  /** It takes part in a coordinated snapshot (one cut with other databases): the barrier's privileges are needed. */
  coordinated: boolean;
  /** The pipeline restore-tests its backups: the scratch database's privileges are needed. */
  restoreTest: boolean;
  /** The pipeline takes physical base backups of its server (`basebackup`): replication and a restore point are needed. */
  baseBackup?: boolean;
}

/** What `DatabaseDriver.preflight` found. */
export interface PreflightReport {
  /** What the server is, e.g. `PostgreSQL 15.8`, `MariaDB 10.11.6`, `SQLite 3.45.1`. */
  server?: string;
  /** The user the checks ran as, e.g. `backup@%`. */
  user?: string;
  /** Each privilege the backup lacks: what needs it, and the statement that grants it. */
  missing: PreflightMissing[];
  /** Things worth saying that do not stop a backup (a restore point needs superuser, say). */
  notes: string[];
}

/** One missing privilege. */
export interface PreflightMissing {
  /** What needs it, in the user's terms: `the restore-test's scratch database`. */
  need: string;
  /** The statement an administrator runs, e.g. `GRANT RELOAD ON *.* TO 'backup'@'%';`. */
  grant: string;
}

/** What every storage call gets besides its own options. */
export interface StorageCallOptions {
  /**
   * The storage's settings: the pipeline's `storage.<scheme>:` (a command without a pipeline: the config file's),
   * checked against the storage's `configSchema` before any call. Absent when none are written: then the
   * storage's defaults and environment variables apply.
   */
  config?: Record<string, unknown>;
}

/** Options of a storage write. */
export interface PutOptions extends StorageCallOptions {
  signal: AbortSignal;
  /** Storage-specific settings of this write (the upload step's `with.storage`, e.g. server-side encryption). */
  settings?: Record<string, unknown>;
  /** The URL of an object this one goes with (a manifest names its backup's first artifact): a storage may give it the same permissions. */
  like?: string;
}

/** An object in a storage. */
export interface StoredObject {
  url: string;
  bytes: number;
  /** When it was last written (ISO 8601), when the storage knows. */
  modified?: string;
  /** A write that never finished (a temporary file, an unfinished multipart upload): listed only when asked for. */
  unfinished?: { upload?: string };
}

/** Options of `Storage.list`. */
export interface ListOptions extends StorageCallOptions {
  /** Also list writes that never finished, marked `unfinished`. */
  unfinished?: boolean;
  /** Give each object's `modified` time, where the storage knows it. */
  modified?: boolean;
  /** Aborting it makes the listing reject promptly (with the signal's reason). */
  signal?: AbortSignal;
}

/** Options of a storage read. */
export interface GetOptions extends StorageCallOptions {
  /** Aborting it rejects the get (with the signal's reason), or errors the stream it returned, promptly. */
  signal?: AbortSignal;
}

/** Options of a storage deletion. */
export interface DeleteOptions extends StorageCallOptions {
  /** Abort this unfinished upload of the object (as `list` with `unfinished` named it) instead of deleting the object. */
  upload?: string;
  /** Aborting it makes the deletion reject promptly (with the signal's reason), if it has not happened yet. */
  signal?: AbortSignal;
}

/**
 * A storage backend for one URL scheme. `put` is atomic: the object becomes visible only when
 * the whole stream was written, and a failed or aborted put leaves nothing behind.
 */
export interface Storage {
  /** URL scheme without `:`, e.g. `file`, `s3`. */
  scheme: string;
  /** The JSON Schema of its settings (the pipeline's `storage.<scheme>:`), passed to every call as `config`. */
  configSchema?: JsonSchema;
  put(url: string, body: Readable, options: PutOptions): Promise<StoredObject>;
  /** A stream of the object; one that does not exist rejects with a RepositoryError that quotes the URL. */
  get(url: string, options?: GetOptions): Promise<Readable>;
  /**
   * Every object whose URL starts with the string `prefix` (sub-folders included), its URL exactly as put;
   * a prefix that matches nothing lists nothing, without an error. Unfinished writes only with `unfinished`.
   */
  list(prefix: string, options?: ListOptions): Promise<StoredObject[]>;
  /** Removes an object (one that does not exist is not an error); with `upload`, aborts that unfinished upload of the object instead. */
  delete(url: string, options?: DeleteOptions): Promise<void>;
  /** Optional: a stock shell command that writes the object to stdout (shown in "restore without dbflow"). */
  stockRead?(url: string, options?: StorageCallOptions): string | undefined;
}

/** Keys a decoder may need: the restore step's secrets. */
export interface DecodeKeys {
  passphrase?: string;
  privateKey?: string;
}

/** One encoding applied to an artifact, in order; recorded in the manifest. */
export interface ArtifactLayer {
  /** Codec name that can decode this layer, e.g. `zstd`, `gzip`, `openpgp`. */
  codec: string;
  [detail: string]: unknown;
}

/** What `Codec.decode` gets. */
export interface DecodeOptions {
  /** The restore's secrets. */
  keys: DecodeKeys;
  /** The layer to undo, as the encoding step output it. */
  layer: ArtifactLayer;
  /** When given, the calling step's `ctx.exec`: a decoder that runs a program should use it (cancel, environment). */
  exec?: StepContext<unknown>['exec'];
}

/**
 * A reversible encoding (compression, encryption). `decode` returns the reverse transform;
 * a decoder that checks integrity must fail the stream at its end when the check fails.
 */
export interface Codec {
  name: string;
  decode(options: DecodeOptions): Duplex | Promise<Duplex>;
}

/** An artifact as recorded in the manifest. */
export interface ArtifactRecord {
  database: string;
  url: string;
  bytes: number;
  sha256: string;
  format: string;
  layers: ArtifactLayer[];
  /** The dump before any layer: a restore that decodes to other bytes is not this backup. */
  raw?: EdgeStats;
  /**
   * Where the artifact's data stands, for a physical artifact: its source step's `outputs.position`, an
   * object the source may go on filling until its stream ends (a base backup's LSNs, WAL range, recovery target).
   */
  position?: Record<string, unknown>;
  /** The server's roles or users and their grants (`dump` with `globals: true`), not a database's data: `restore` leaves it out. */
  globals?: boolean;
  /**
   * Every destination the artifact was written to at once (one stream, several copies), in the order the step
   * names them; absent for a single copy. `url` is the first copy that was stored. A copy with an `error` was not
   * stored (its step tolerated the failure): the manifest never lists it as a copy, only as failed, with the error.
   */
  copies?: ArtifactCopy[];
}

/** One destination of an artifact written to several (`ArtifactRecord.copies`). */
export interface ArtifactCopy {
  url: string;
  /** Why this copy was not stored (secrets masked); absent for a stored copy. */
  error?: string;
}

/** A verification result as recorded in the manifest. */
export interface VerificationRecord {
  database: string;
  step: string;
  check: string;
  ok: boolean;
  detail?: string;
  /** A restore: how long it took, from the first byte downloaded to the restored copy counted (the measured recovery time). */
  duration_ms?: number;
}

/** How the snapshots of one snapshot step relate: recorded in the manifest under `coordination`. */
export interface CoordinationRecord {
  /** The snapshot step. */
  step: string;
  /** True: every snapshot was taken while the barriers on all participants were held at once. */
  coordinated: boolean;
  participants: string[];
  /** The guarantee, in words (coordinated only). */
  guarantee?: string;
  /** The longest time commits were blocked on any participant (coordinated only). */
  blocked_ms?: number;
  /** How many tries it took to hold every barrier at once. */
  attempts?: number;
  barriers?: Record<string, { method: string; acquired_at: string; released_at: string; held_ms: number }>;
  /** Objects in scope that the barrier does not hold still. */
  not_covered?: string[];
}

/** What a step contributes to the backup's manifest. */
export interface ManifestReporter {
  database(name: string, info: SnapshotInfo): void;
  coordination(record: CoordinationRecord): void;
  artifact(record: ArtifactRecord): void;
  verification(record: VerificationRecord): void;
}

/** An upstream stage of a stream chain, as a transform or sink sees it. */
export interface ChainStage {
  id: string;
  uses: string;
  outputs: Record<string, unknown>;
  /** Bytes and sha256 of what this stage produced, once its stream has ended. */
  stats: Promise<EdgeStats>;
}

/** What `run(ctx)` receives. `W` is the type of the step's `with`. */
export interface StepContext<W = Record<string, unknown>> {
  /** Instance id: the step id, with its matrix cell if any, e.g. `dump[app]`. */
  readonly id: string;
  /** The step id as written. */
  readonly stepId: string;
  /** The step's `with`, templates resolved, validated against the step's schema. */
  readonly with: W;
  /** This cell's matrix values (`{}` without a matrix). */
  readonly matrix: Record<string, unknown>;
  readonly run: RunInfo;
  /** Aborted on cancel (SIGINT/SIGTERM), timeout, or when the step's chain failed. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** A private scratch folder, removed when the step has finished. */
  readonly tmpdir: string;
  /** The stream of the step named in `input:` (transform and sink steps). */
  readonly input: Readable;
  /**
   * When the step named in `input:` streams a program's stdout (made with `checkedStdout`) that
   * nothing has read yet, and nothing needs its sha256: that stdout, to give as stdin to a program
   * of this step (`exec(…, { stdin: pipe.fd })`). Its bytes then go from program to program without
   * passing through dbflow. Call `pipe.given()` right after the program started, and `pipe.counted(bytes)`
   * once the program has read it all (how many bytes it read, as the program reports it). Undefined
   * otherwise, and after `input` was read: then use `input`. After a pipe was handed out, `input` throws.
   */
  inputPipe(): InputPipe | undefined;
  /** Resolves with the bytes (and, where it is computed, the sha256) of `input` once it has ended. */
  inputStats(): Promise<EdgeStats>;
  /** The upstream stages of this stream chain, nearest last. */
  readonly chain: readonly ChainStage[];
  /**
   * The step's `continue_on_error`: a step that does several things at once (an upload to several destinations)
   * may then succeed with the part that succeeded, saying what failed. Absent means false.
   */
  readonly continueOnError?: boolean;
  /**
   * Runs a program (execa), never through a shell. It is killed when the step is cancelled; its
   * stderr goes to the step's log. Its environment is PATH, HOME, USER, LOGNAME, LANG, LANGUAGE,
   * LC_*, TZ and TMPDIR (none holding a secret) plus `options.env`. Give credentials in a
   * `credentialFile`, never in `args`.
   */
  exec(file: string, args: readonly string[], options?: ExecaOptions): ResultPromise;
  /**
   * Hands out a resource (an open snapshot, a lock) that the engine keeps until every step that
   * depends on this one has finished, then releases — also on failure and cancel.
   */
  lease<T>(resource: T, release: (resource: T) => Promise<void> | void): void;
  /** The resource leased by a step this one references (`with` key of format `step-id`). */
  resource<T = unknown>(stepRef: string): T;
  /** The outputs of a step this one references, matched to this matrix cell. */
  outputsOf(stepRef: string): Record<string, unknown>;
  /** A database of the pipeline and its driver. */
  database(name: string): { config: DatabaseConfig; driver: DatabaseDriver };
  /** The names of the pipeline's `databases:`. */
  databaseNames(): string[];
  /** The storage that serves a URL, by scheme. */
  storage(url: string): Storage;
  /** A codec by name. */
  codec(name: string): Codec;
  /** Reports streaming progress (bytes so far) to the live view. */
  progress(bytes: number): void;
  /** Adds to the backup's manifest. */
  readonly report: ManifestReporter;
}

/** What `run(ctx)` returns. */
export interface StepResult<O = Record<string, unknown>> {
  /** The produced stream (source and transform steps). */
  output?: Readable;
  /** Values later steps may reference as `steps.<id>.outputs.<name>`. */
  outputs?: O;
  /**
   * Outputs known only once the step's stream has ended (a count, a checksum): merged into
   * `outputs` after the chain finished. A rejection fails the step.
   */
  final?: Promise<Partial<O>>;
}

/** A step type, as a plugin declares it. */
export interface StepDefinition<W = Record<string, unknown>, O = Record<string, unknown>> {
  /** The name pipelines use in `uses:`. */
  uses: string;
  kind: StepKind;
  /** One line for `dbflow plugins`. */
  description: string;
  /** JSON Schema of `with`; required. A string property with `format: "step-id"` names another step. */
  with: JsonSchema;
  /** JSON Schema of the outputs; `steps.<id>.outputs.<name>` references are checked against it. */
  outputs?: JsonSchema;
  run(ctx: StepContext<W>): Promise<StepResult<O>>;
  /** Undoes partial work after a failure or cancel (abort an upload, drop a scratch database). */
  cleanup?(ctx: StepContext<W>): Promise<void>;
}

/** A plugin: a named bundle of steps, database drivers, storages and codecs. */
export interface Plugin {
  name: string;
  /**
   * The version of the plugin contract the plugin was written for, "MAJOR.MINOR" (e.g. "2.0"): dbflow
   * refuses a plugin of a newer version than its own `PLUGIN_CONTRACT`, and of an older major one it has
   * no adapter for (it calls the drivers and codecs of a 1.x plugin as 1.x declared them).
   * Write the literal version of the docs you followed, not `PLUGIN_CONTRACT`, which is the running dbflow's.
   */
  contract: string;
  /** The plugin's version (keep it equal to its package's): recorded in every manifest of a run that loaded it. */
  version?: string;
  steps?: StepDefinition<any, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  drivers?: DatabaseDriver[];
  storages?: Storage[];
  codecs?: Codec[];
}
