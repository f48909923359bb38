#!/usr/bin/env node
// The dbflow command line; the one place that catches errors and maps them to exit codes.
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { dbflowVersion } from '../engine/versions.js';
import { ExitCode, isUserError, userErrorText } from '../errors.js';
import { pipeWriter } from './closed-pipe.js';
import type { Io, RunCommandOptions } from './commands.js';
import { commandModule, registerCompletion } from './completion.js';
import type * as Init from './init-command.js';
import type { InitOptions } from './init-command.js';
import type * as Archive from './archive-command.js';
import type { ArchiveCommandOptions } from './archive-command.js';
import type * as Daemon from './daemon-command.js';
import type * as Mark from './mark-command.js';
import type * as MarkRestore from './mark-restore.js';
import type { MarkCommandOptions, MarksListOptions } from './mark-command.js';
import type { DaemonCommandOptions } from './daemon-command.js';
import type * as Repo from './repo-commands.js';
import type { PruneCommandOptions } from './repo-commands.js';
import type * as Restore from './restore-commands.js';
import type { RestoreCommandOptions, VerifyCommandOptions } from './restore-commands.js';
import type * as Status from './status-command.js';
import type * as Serve from './serve-command.js';
import type * as Fleet from './fleet-commands.js';
import type { WorkerCommandOptions } from './fleet-commands.js';
import type { ServeCommandOptions } from './serve-command.js';

// The commands' modules, and the engine and plugins behind them, load here; not for a Tab in the shell (see commandModule).
const { audited, auditRepositoryFromEnv, defaultStateDir, repositoryOfBackup } = await commandModule(() => import('./audited.js'));
const cmd = await commandModule(() => import('./commands.js'));
// Commands with modules of their own load them when they run: `validate` does not pay for the daemon's metrics.
const initCommand: typeof Init.initCommand = async (...a) => (await import('./init-command.js')).initCommand(...a);
const quickstartFiles = async (...a: Parameters<typeof Init.quickstartFiles>): Promise<string> =>
  (await import('./init-command.js')).quickstartFiles(...a);
const archiveCommand: typeof Archive.archiveCommand = async (...a) => (await import('./archive-command.js')).archiveCommand(...a);
const markRestoreCommand: typeof MarkRestore.markRestoreCommand = async (...a) =>
  (await import('./mark-restore.js')).markRestoreCommand(...a);
const markRestoreTest: typeof MarkRestore.markRestoreTest = async (...a) => (await import('./mark-restore.js')).markRestoreTest(...a);
const markCommand: typeof Mark.markCommand = async (...a) => (await import('./mark-command.js')).markCommand(...a);
const marksListCommand: typeof Mark.marksListCommand = async (...a) => (await import('./mark-command.js')).marksListCommand(...a);
const daemonCommand: typeof Daemon.daemonCommand = async (...a) => (await import('./daemon-command.js')).daemonCommand(...a);
const backupsListCommand: typeof Repo.backupsListCommand = async (...a) => (await import('./repo-commands.js')).backupsListCommand(...a);
const pruneCommand: typeof Repo.pruneCommand = async (...a) => (await import('./repo-commands.js')).pruneCommand(...a);
const restoreCommand: typeof Restore.restoreCommand = async (...a) => (await import('./restore-commands.js')).restoreCommand(...a);
const verifyCommand: typeof Restore.verifyCommand = async (...a) => (await import('./restore-commands.js')).verifyCommand(...a);
const serveCommand: typeof Serve.serveCommand = async (...a) => (await import('./serve-command.js')).serveCommand(...a);
const statusCommand: typeof Status.statusCommand = async (...a) => (await import('./status-command.js')).statusCommand(...a);

const fleet = (): Promise<typeof Fleet> => import('./fleet-commands.js');
// --queue, else DBFLOW_QUEUE: the fleet's view instead of this machine's (as queueUrl says, without loading it for a Tab).
const queueUrl = (flag: string | undefined): string | undefined => (flag ?? process.env.DBFLOW_QUEUE) || undefined;

const [stdout, stderr] = [pipeWriter(process.stdout), pipeWriter(process.stderr)];
let quiet = false; // --quiet: only errors reach the terminal (stderr); what a command prints on stdout is dropped
const io: Io = {
  out: (t) => void (quiet || stdout(`${t}\n`)),
  err: (t) => stderr(`${t}\n`),
  isTTY: Boolean(process.stdout.isTTY && process.stderr.isTTY),
};

function program(setCode: (code: number) => void): Command {
  const p = new Command('dbflow')
    .description('Database backups as declarative YAML pipelines: consistent snapshots, streamed, verified by a real restore.')
    .version(dbflowVersion())
    .showHelpAfterError('(run with --help for usage)')
    .option('-q, --quiet', 'print only errors, on stderr (for cron); `run` also drops its progress lines and, after a success, its summary')
    .exitOverride();
  p.hook('preAction', (_p, action) => {
    quiet = p.opts<{ quiet?: boolean }>().quiet === true || action.opts<{ quiet?: boolean }>().quiet === true;
  });
  const state = [
    '--state-dir <dir>',
    'where run records, metrics, the audit trail and run locks are kept (default: $DBFLOW_STATE_DIR, else $XDG_STATE_HOME/dbflow, else ~/.local/state/dbflow)',
  ] as const;
  const queue = ['--queue <redis-url>', "the fleet's Redis, e.g. redis://127.0.0.1:6379 (default: $DBFLOW_QUEUE); docs/fleet.md"] as const;
  const auditRepository = [
    '--audit-repository',
    'also store the audit record in the repository, under dbflow-audit/ (or set DBFLOW_AUDIT_REPOSITORY=1)',
  ] as const;
  const toRepository = (o: { auditRepository?: boolean }): boolean => o.auditRepository === true || auditRepositoryFromEnv();
  p.command('run')
    .description('run a pipeline: snapshot, dump, compress, encrypt, upload, restore-test, …')
    .argument('<pipeline>', 'pipeline file, e.g. pipelines/nightly.yaml')
    .option('-c, --concurrency <n>', 'most steps (or stream chains) running at once')
    .option('--json', "print the run's events as JSON lines on stdout instead of the view and summary (docs/json-output.md)")
    .option('-v, --verbose', 'also print debug lines')
    .option(
      '--lock-wait <duration>',
      "wait this long (e.g. 10m) for a running run of the same pipeline to finish; default: the pipeline's lock_wait, else exit at once with code 75",
    )
    .option(
      '--metrics-file <file>',
      'Prometheus textfile written after the run (default: <state-dir>/metrics.prom), e.g. for node_exporter',
    )
    .option('-q, --quiet', 'print only failures (for cron): no progress lines, no summary after a success')
    .option(
      '--dry-run',
      'validate, connect to each database and check the privileges a backup needs, check that each repository is writable; run nothing',
    )
    .option('--queue <redis-url>', "take the fleet's lease in this Redis instead of this machine's lock (default: $DBFLOW_QUEUE)")
    .option(...state)
    .option(...auditRepository)
    .action(async (file: string, o: RunCommandOptions & { auditRepository?: boolean; dryRun?: boolean }) =>
      setCode(
        o.dryRun
          ? await cmd.dryRunCommand(file, { quiet }, io)
          : await audited(io, { command: 'run', target: path.resolve(file), stateDir: o.stateDir, toRepository: toRepository(o) }, (note) =>
              cmd.runCommand(file, { ...o, quiet, stateDir: o.stateDir ?? defaultStateDir() }, io, note),
            ),
      ),
    );
  p.command('quickstart')
    .description(
      'back up a demo SQLite database end to end, from any folder: writes quickstart.yaml and its demo passphrase into <dir> (when not there), then runs it',
    )
    .argument('[dir]', 'where the quickstart pipeline, its demo database and its backups go', '.')
    .option('--json', "print the run's events as JSON lines on stdout")
    .option(...state)
    .action(async (dir: string, o: RunCommandOptions) => {
      const file = await quickstartFiles(dir, io);
      setCode(
        await audited(io, { command: 'run', target: path.resolve(file), stateDir: o.stateDir, toRepository: false }, (note) =>
          cmd.runCommand(file, { ...o, quiet, stateDir: o.stateDir ?? defaultStateDir() }, io, note),
        ),
      );
    });
  const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
  const plugin = [
    '--plugin <path or package>',
    'load a plugin (its storage, codecs, drivers): a path, or a package name resolved from the current folder; repeat for more (also: DBFLOW_PLUGINS, comma-separated, and plugins: in ~/.config/dbflow/config.yaml)',
    collect,
  ] as const;
  p.command('init')
    .description(
      'write a pipeline for the databases you name, then check the connections, the privileges a backup needs and the repository; asks at a terminal when no database is named',
    )
    .option(
      '--postgres <url>',
      'a PostgreSQL database, e.g. postgres://backup@db:5432/app (repeat for more; a password in the URL is moved to an environment variable)',
      collect,
    )
    .option('--mysql <url>', 'a MariaDB/MySQL database, e.g. mysql://backup@db:3306/app (repeat for more)', collect)
    .option('--sqlite <path>', 'an SQLite database file (repeat for more)', collect)
    .option(
      '--to <repository>',
      'where backups go: file:///backups/x, file://./backups/x (beside the pipeline), s3://bucket/prefix, sftp://user@host/path (default: file://./backups/<name>)',
    )
    .option('-n, --name <name>', 'the pipeline name (default: from the databases, e.g. app-nightly)')
    .option('--schedule <cron>', 'when `dbflow daemon` runs it, a cron expression in UTC (default: "0 2 * * *")')
    .option('--rpo <duration>', 'the oldest a verified backup may be before `dbflow status` fails (default: 26h)')
    .option(
      '--passphrase-file <file>',
      'encrypt with the passphrase in this file; created with a random passphrase and mode 0600 when it does not exist (default: $DBFLOW_PASSPHRASE)',
    )
    .option('-o, --output <file>', 'the pipeline file to write (default: <name>.yaml)')
    .option('--force', 'replace the output file if it exists')
    .option('--no-check', 'write the pipeline without connecting to the databases or the repository')
    .action(async (o: InitOptions) => setCode(await initCommand(o, io)));
  p.command('validate')
    .description('check pipelines without running them; errors point at file:line:col')
    .argument('<pipelines...>', 'pipeline files')
    .option('--json', 'print the result as JSON')
    .option('--no-env', 'do not check the environment (variables set, secret files readable): for CI without the runtime secrets')
    .action(async (files: string[], o: { json?: boolean; env?: boolean }) => setCode(await cmd.validateCommand(files, o, io)));
  p.command('plan')
    .description('show what a pipeline would run, in order, with matrix cells and stream chains')
    .argument('<pipeline>')
    .option('--json', 'print the plan as JSON')
    .action(async (file: string, o: { json?: boolean }) => setCode(await cmd.planCommand(file, o, io)));
  p.command('graph')
    .description("print a pipeline's DAG")
    .argument('<pipeline>')
    .option('-f, --format <format>', 'mermaid or dot', 'mermaid')
    .action(async (file: string, o: { format: string }) => setCode(await cmd.graphCommand(file, o, io)));
  p.command('schema')
    .description('print the JSON Schema of pipelines (with every built-in step\'s "with"), or of manifests')
    .option('--manifest', 'the backup manifest schema instead')
    .action(async (o: { manifest?: boolean }) => setCode(await cmd.schemaCommand(o, io)));
  p.command('plugins')
    .description('list plugins with their steps, drivers, storages and codecs')
    .option('-p, --pipeline <file>', 'also load the plugins a pipeline lists')
    .option('--json', "print as JSON, with each step's schemas")
    .option(...plugin)
    .action(async (o: { json?: boolean; pipeline?: string; plugin?: string[] }) => setCode(await cmd.pluginsCommand(o, io)));
  p.command('runs')
    .description('list recent runs with status and duration (with --queue: of every worker of the fleet)')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--json', 'print as JSON')
    .option(...queue)
    .option(...state)
    .action(async (o: { json?: boolean; stateDir?: string; limit?: string; queue?: string }) => {
      const url = queueUrl(o.queue);
      setCode(
        url !== undefined
          ? await (await fleet()).fleetRunsCommand({ ...o, queue: url }, io)
          : cmd.runsCommand({ ...o, stateDir: o.stateDir ?? defaultStateDir() }, io),
      );
    });
  p.command('worker')
    .description("take runs from the fleet's queue and run them here, where the databases are reachable; SIGTERM lets running runs end")
    .option(...queue)
    .option(
      '--labels <k=v,...>',
      'what this worker offers: it runs the pipelines whose runs_on labels it has all of, e.g. region=eu,network=billing',
    )
    .option('-c, --concurrency <n>', 'most runs at once', '1')
    .option('--lease <duration>', 'how long a worker that stops answering keeps its jobs and run leases before another takes them', '30s')
    .option('--id <name>', 'the name of this worker in `dbflow workers` and the run records (default: <host>-<pid>)')
    .option('-v, --verbose', 'also print debug lines')
    .option(...state)
    .action(async (o: WorkerCommandOptions) =>
      setCode(await (await fleet()).workerCommand({ ...o, stateDir: o.stateDir ?? defaultStateDir() }, io)),
    );
  p.command('workers')
    .description("list the fleet's live workers, their labels and what they run")
    .option(...queue)
    .option('--json', 'print as JSON')
    .action(async (o: { queue?: string; json?: boolean }) => setCode(await (await fleet()).workersCommand(o, io)));
  p.command('status')
    .description("how fresh each pipeline's last verified backup is against its rpo; exits 1 when one is stale (a monitoring check)")
    .argument('[pipelines...]', 'pipeline files or folders of them', ['pipelines'])
    .option('--json', 'print as JSON')
    .option(
      '--queue <redis-url>',
      "judge by the fleet's runs on every worker (default: $DBFLOW_QUEUE), and list each pipeline's last run; exits 1 when a last run failed too",
    )
    .option(...state)
    .action(async (targets: string[], o: { json?: boolean; stateDir?: string; queue?: string }) => {
      const url = queueUrl(o.queue);
      setCode(
        url !== undefined
          ? await (await fleet()).fleetStatusCommand({ ...o, queue: url, targets, stateDir: o.stateDir ?? defaultStateDir() }, io)
          : await statusCommand(targets, { ...o, stateDir: o.stateDir ?? defaultStateDir() }, io),
      );
    });
  p.command('archive')
    .description(
      "stream the log of the pipeline's archive: databases (PostgreSQL WAL) into its repository until SIGTERM/SIGINT, which stores what was received",
    )
    .argument('<pipeline>', 'pipeline file with an archive: section')
    .option('--database <name...>', 'only these databases of archive:')
    .option('-v, --verbose', "also print the log receiver's lines")
    .option(...state)
    .action(async (file: string, o: ArchiveCommandOptions) => setCode(await archiveCommand(file, o, io)));
  p.command('mark')
    .description(
      "record one recovery mark: the same point in the log of every database of the pipeline's marks: section, taken under their commit barriers held at once (for milliseconds), stored in its repository",
    )
    .argument('<pipeline>', 'pipeline file with a marks: section')
    .option('--json', 'print the mark as JSON')
    .option('-v, --verbose', 'also print what the drivers say')
    .action(async (file: string, o: MarkCommandOptions) => setCode(await markCommand(file, o, io)));
  p.command('marks')
    .description('list the recovery marks recorded in a repository, oldest first, with whether a restore can reach each')
    .argument('<repo>', 'repository: a URL or a path')
    .option('--json', 'print as JSON')
    .option(
      '--verify',
      'exit 1 when a mark cannot be restored to (a participant without a base before it, or its log not archived that far)',
    )
    .option('--wal <url>', "the log archive (the pipeline's archive: to:); default: wal/ beside the backups")
    .option(...plugin)
    .action(async (repo: string, o: MarksListOptions) => setCode(await marksListCommand(repo, o, io)));
  p.command('daemon')
    .description(
      'run every pipeline in a folder on its schedule (a due time missed while no daemon ran runs once at start: catch_up); reloads edited files; SIGTERM stops it cleanly',
    )
    .argument('<dir>', 'folder with pipeline files')
    .option('--listen <host:port>', 'serve Prometheus metrics on http://<host:port>/metrics', '127.0.0.1:9464')
    .option('--no-metrics', 'do not serve metrics')
    .option('-v, --verbose', 'also print debug lines')
    .option(...queue)
    .option(...state)
    .action(async (dir: string, o: DaemonCommandOptions) =>
      setCode(await daemonCommand(dir, { ...o, stateDir: o.stateDir ?? defaultStateDir() }, io)),
    );
  p.command('serve')
    .description(
      "a web dashboard: each pipeline's freshness against its rpo, runs (live), backups; actions (run now, verify) with --actions, behind a token",
    )
    .argument('[dir]', 'folder with pipeline files', 'pipelines')
    .option('--listen <host:port>', 'where to listen; loopback unless you say otherwise', '127.0.0.1:8080')
    .option('--actions', 'enable "run now" and "verify", for sessions opened with the token')
    .option('--token-env <name>', 'the environment variable holding the token', 'DBFLOW_DASHBOARD_TOKEN')
    .option('--token-file <file>', 'read the token from this file instead (e.g. /run/secrets/dbflow-dashboard)')
    .option('--auth-all', 'read-only pages need a session (or the token as a bearer) too')
    .option(...state)
    .action(async (dir: string, o: ServeCommandOptions) =>
      setCode(await serveCommand(dir, { ...o, stateDir: o.stateDir ?? defaultStateDir() }, io)),
    );
  const backups = p.command('backups').description('the backups in a repository (a storage URL prefix)');
  backups
    .command('list')
    .description(
      'list the backups under a repository, newest first, with size, databases and status (verified, unverified, DAMAGED); then runs in progress and orphaned objects',
    )
    .argument('<repo>', 'repository: a URL (file://./backups/nightly, s3://bucket/nightly) or a path (./backups/nightly)')
    .option('--json', 'print as JSON')
    .option(...plugin)
    .action(async (repo: string, o: { json?: boolean; plugin?: string[] }) => setCode(await backupsListCommand(repo, o, io)));
  const passphraseFile = [
    '--passphrase-file <file>',
    'file holding the passphrase (else $DBFLOW_PASSPHRASE; never on the command line)',
  ] as const;
  const privateKeyFile = ['--private-key-file <file>', 'armored OpenPGP private key, for backups encrypted to public keys'] as const;
  p.command('verify')
    .description(
      "check a stored backup: every object's size and sha256, every layer's integrity check, the decoded dump's sha256 (with --restore, also a recovery of each base backup)",
    )
    .argument('<backup>', 'backup: its folder (or its manifest.json) as a URL or a path, e.g. ./backups/nightly/20261124T020000Z-3fa2')
    .option(...passphraseFile)
    .option(...privateKeyFile)
    .option('--no-record', 'do not write the result to verify.json next to the manifest')
    .option(
      '--restore',
      "also recover each base backup in a throwaway instance (its own data directory and port, removed after) and compare its counts with the backup's",
    )
    .option(
      '--marks',
      'check the recovery marks of a repository instead: each reachable from a kept base through the archived log; with --restore, the newest (or --mark) restored in temporary data directories',
    )
    .option('--mark <name>', 'with --marks --restore: the mark to restore')
    .option('-v, --verbose', 'also print what the decoders say')
    .option(...plugin)
    .option(...state)
    .option(...auditRepository)
    .action(
      async (url: string, o: VerifyCommandOptions & { stateDir?: string; auditRepository?: boolean; marks?: boolean; mark?: string }) =>
        setCode(
          await audited(
            io,
            {
              command: 'verify',
              target: url,
              stateDir: o.stateDir,
              repository: repositoryOfBackup(url),
              toRepository: toRepository(o),
              plugins: o.plugin,
            },
            async () => {
              if (!o.marks) return verifyCommand(url, o, io);
              const listed = await marksListCommand(url, { verify: true, ...(o.plugin && { plugin: o.plugin }) }, io);
              return listed !== 0 || !o.restore ? listed : markRestoreTest(url, o, io);
            },
          ),
        ),
    );
  p.command('restore')
    .description("restore one database of a backup into a database, then compare its row counts with the backup's")
    .argument('<backup>', 'backup: its folder (or its manifest.json) as a URL or a path; with a recovery target, also a repository')
    .option('-d, --database <name>', 'which database of the backup (needed when it holds several)')
    .option(
      '--to <url>',
      'target database URL (password from $DBFLOW_TARGET_PASSWORD); it must exist (or pass --create) and be empty unless --force',
    )
    .option(
      '--to-datadir <dir>',
      "a base backup (pg-basebackup-tar, mariadb-backup-xbstream): write a data directory (new or empty) that starts, recovered to the backup's point",
    )
    .option(
      '--to-time <time>',
      'recover to this RFC 3339 time: a base backup with the archived WAL (--to-datadir), or a dump with the archived binary log (--to); the base is picked from the repository given',
    )
    .option('--to-lsn <lsn>', 'with --to-datadir: recover to this log position (e.g. 0/3000148)')
    .option(
      '--to-position <file:pos>',
      'with --to (MariaDB/MySQL): replay the archived binary log up to this position (e.g. binlog.000042:1234)',
    )
    .option('--to-gtid <gtid>', 'with --to (MariaDB): replay the archived binary log up to and including this transaction (e.g. 0-1-4242)')
    .option('--to-restore-point <name>', 'with --to-datadir: recover to this named restore point')
    .option('--latest', 'recover to the end of the archived log (WAL with --to-datadir, binary log with --to)')
    .option(
      '--to-mark <mark>',
      'restore every database of a recovery mark (its name, or an RFC 3339 time: the newest mark at or before it) to that one point, each into its --target',
    )
    .option('--target <db=where...>', 'with --to-mark: where each database goes, a folder (data directory) or a database URL')
    .option('--wal <url>', "the log archive, WAL or binary log (the pipeline's archive: to:); default: wal/ beside the backups")
    .option('--force', 'restore into a target that has tables (or cannot be checked)')
    .option('--create', 'create the target database first when it does not exist (PostgreSQL, MariaDB/MySQL, SQLite)')
    .option('--list', 'show what the backup holds: databases, tables with row counts, artifacts')
    .option(...passphraseFile)
    .option(...privateKeyFile)
    .option('-v, --verbose', 'also print what the restore programs say')
    .option(...plugin)
    .option(...state)
    .option(...auditRepository)
    .action(
      async (
        url: string,
        o: RestoreCommandOptions & { stateDir?: string; auditRepository?: boolean; toMark?: string; target?: string[] },
      ) =>
        o.list
          ? setCode(await restoreCommand(url, o, io))
          : setCode(
              await audited(
                io,
                {
                  command: 'restore',
                  target: o.to
                    ? `${url} -> ${o.to}`
                    : o.toDatadir
                      ? `${url} -> ${o.toDatadir}`
                      : o.toMark
                        ? `${url} -> mark ${o.toMark}`
                        : url,
                  stateDir: o.stateDir,
                  repository: repositoryOfBackup(url),
                  toRepository: toRepository(o),
                  plugins: o.plugin,
                },
                () => {
                  // --to-time with --target: every database of the newest mark at or before that time.
                  const toMark = o.toMark ?? (o.target?.length ? o.toTime : undefined);
                  if (toMark === undefined) return restoreCommand(url, o, io);
                  const { toTime: _, ...rest } = o;
                  return markRestoreCommand(url, { ...(o.toMark !== undefined ? o : rest), toMark }, io);
                },
              ),
            ),
    );
  p.command('prune')
    .description('delete the backups a retention policy does not keep (never the newest verified one), and old orphaned objects')
    .argument('<repo>', 'repository: a URL (file://./backups/nightly, s3://bucket/nightly) or a path (./backups/nightly)')
    .option('--keep-last <n>', 'keep the newest n backups')
    .option('--keep-daily <n>', 'keep the newest backup of each of the last n days with backups (UTC)')
    .option('--keep-weekly <n>', 'keep the newest backup of each of the last n ISO weeks with backups')
    .option('--keep-monthly <n>', 'keep the newest backup of each of the last n months with backups')
    .option(
      '--orphan-grace <duration>',
      'remove orphaned objects (no manifest, unfinished writes) only when their run started longer ago; never those of a live run',
      '24h',
    )
    .option('--dry-run', 'print what would be deleted, delete nothing')
    .option('--json', 'print the decisions as JSON')
    .option(...plugin)
    .option(...state)
    .option(...auditRepository)
    .action(async (repo: string, o: PruneCommandOptions & { stateDir?: string; auditRepository?: boolean }) =>
      setCode(
        await audited(
          io,
          {
            command: 'prune',
            target: repo,
            stateDir: o.stateDir,
            dryRun: o.dryRun === true,
            repository: repo,
            toRepository: toRepository(o),
            plugins: o.plugin,
          },
          () => pruneCommand(repo, o, io),
        ),
      ),
    );
  p.command('watch')
    .description('re-validate the pipelines in a folder on every save and print errors')
    .argument('<dir>', 'folder with pipeline files')
    .action(async (dir: string) => setCode(await cmd.watchCommand(dir, io)));
  registerCompletion(p, io, setCode);
  return p;
}

/** How long the process may outlive its command, for what plugins left running. */
const EXIT_GRACE_MS = 2000;

async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.ok;
  try {
    await program((c) => (code = c)).parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help'
        ? ExitCode.ok
        : ExitCode.usage;
    }
    if (isUserError(err)) {
      io.err(userErrorText(err));
      return err.exitCode;
    }
    io.err(
      `dbflow: internal error (a bug in dbflow; please report it with this output):\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    return ExitCode.internal;
  }
}

process.exitCode = await main(process.argv);
// The command is done. What a plugin left running (a step's last log line, a timer, a socket) gets a moment to end,
// and the process ends when it does; what is still running after that does not keep the process alive.
setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
