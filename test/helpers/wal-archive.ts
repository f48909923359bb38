// A throwaway cluster with a pipeline that archives its WAL to a file repository, and what the tests read back.
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import { asServerUser, instanceDir, startInstance } from '../../plugins/postgres/instance.js';
import { spawnDbflow } from './cli.js';
import { createWriterTables } from './pg-writer.js';
import { requireTools, throwawayPostgres, withClient, type ThrowawayPostgres } from './postgres.js';

export interface WalSetup {
  pg: ThrowawayPostgres;
  dir: string;
  pipeline: string;
  /** The archive root (`archive.main.to`) as a path (with a file repository). */
  root: string;
  stateDir: string;
  passphraseFile: string;
  env: Record<string, string>;
}

/** Steps that dump the archived database (the default of walSetup). */
const DUMP_STEPS = `  - { id: snapshot, uses: snapshot, with: { databases: [main] } }
  - { id: dump, uses: dump, with: { database: main, snapshot: snapshot } }
  - { id: upload, uses: upload, input: dump, with: { to: "{{ vars.repo }}/{{ run.id }}/main.dump" } }
`;
/**
 * Steps that take a base backup of `database` (`uses`: basebackup, or mariabackup with `artifact` "xbstream") through zstd
 * and openpgp into the repository as `<database>.<artifact>.zst.pgp`; `suffix` keeps the step ids of several apart.
 */
export function baseBackupSteps(database: string, uses = 'basebackup', artifact = 'base.tar', suffix = ''): string {
  const [base, compress, encrypt] = ['base', 'compress', 'encrypt'].map((id) => `${id}${suffix}`);
  return `  - { id: ${base}, uses: ${uses}, with: { database: ${database} } }
  - { id: ${compress}, uses: compress, input: ${base}, with: { algorithm: zstd, level: 3 } }
  - { id: ${encrypt}, uses: encrypt, input: ${compress}, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload${suffix}, uses: upload, input: ${encrypt}, with: { to: "{{ vars.repo }}/{{ run.id }}/${database}.${artifact}.zst.pgp" } }
`;
}

/** Steps that take a base backup of the archived database. */
export const BASE_BACKUP_STEPS = baseBackupSteps('main');

/** The `archive:` section of a test pipeline: each of `databases` to `{{ vars.repo }}/wal` with zstd and openpgp, stored every `flush`. */
export function archiveSection(databases: readonly string[], flush = '1s'): string {
  const entry = (name: string): string => `  ${name}:
    to: "{{ vars.repo }}/wal"
    compress: { algorithm: zstd, level: 3 }
    encrypt: { passphrase: "{{ secrets.passphrase }}" }
    flush: ${flush}
`;
  return `archive:\n${databases.map(entry).join('')}`;
}

/**
 * A fresh folder for a test pipeline, with its passphrase file; removed after the test. Mode 0755: servers restored
 * there run as their own user.
 */
export function pipelineFolder(t: Pick<TestContext, 'after'>, prefix: string): { dir: string; passphraseFile: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const passphraseFile = path.join(dir, 'passphrase');
  writeFileSync(passphraseFile, 'correct horse battery staple\n');
  return { dir, passphraseFile };
}

/**
 * A cluster (with `settings`) and `archive.yaml` archiving it to `<dir>/repo/wal` with zstd and openpgp, with `steps`;
 * `<dir>` can be entered by the server's user (restored servers run there).
 */
export async function walSetup(
  t: Pick<TestContext, 'skip' | 'after'>,
  settings: string[] = [],
  flush = '1s',
  steps = DUMP_STEPS,
  repo = 'file://./repo',
): Promise<WalSetup | undefined> {
  const pg = await throwawayPostgres(t, { settings });
  if (!pg) return undefined;
  const { dir, passphraseFile } = pipelineFolder(t, 'dbflow-wal-');
  const pipeline = path.join(dir, 'archive.yaml');
  writeFileSync(
    pipeline,
    `version: 1
name: waltest
secrets:
  passphrase: { file: ./passphrase }
  db_password: { env: WAL_DB_PASSWORD }
vars:
  repo: "${repo}"
databases:
  main: { driver: postgres, url: "${pg.url}", password: "{{ secrets.db_password }}" }
${archiveSection(['main'], flush)}steps:
${steps}`,
  );
  const stateDir = path.join(dir, 'state');
  return {
    pg,
    dir,
    pipeline,
    root: path.join(dir, 'repo', 'wal'),
    stateDir,
    passphraseFile,
    env: { WAL_DB_PASSWORD: pg.password, DBFLOW_STATE_DIR: stateDir },
  };
}

/** The system folder under the archive root (the one there is). */
export function systemFolder(root: string): string {
  const systems = readdirSync(root).filter((n) => /^\d+$/.test(n));
  if (systems.length !== 1) throw new Error(`expected one system folder in ${root}, found ${systems.join(', ') || 'none'}`);
  return path.join(root, systems[0]!);
}

/** Decodes a stored object with stock gpg and zstd: its bytes. */
export async function decodeStored(file: string, passphraseFile: string): Promise<Buffer> {
  const r = await execa({
    encoding: 'buffer',
    stripFinalNewline: false,
  })`sh -c ${`gpg --batch --quiet --pinentry-mode loopback --passphrase-file '${passphraseFile}' --decrypt '${file}' | zstd -d -c`}`;
  return Buffer.from(r.stdout);
}

/** A stored log file decoded with stock gpg and zstd: its object, or each of its pieces in order (an open file stored in parts). */
export async function decodeLog(folder: string, name: string, passphraseFile: string): Promise<Buffer> {
  const record = readJson<{ object: string; pieces?: { object: string }[] }>(path.join(folder, `${name}.json`));
  const parts = await Promise.all((record.pieces ?? [record]).map((p) => decodeStored(path.join(folder, p.object), passphraseFile)));
  return Buffer.concat(parts);
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The server's copy of a WAL file (pg_read_binary_file: what the server has in pg_wal). */
export async function serverWal(pg: ThrowawayPostgres, name: string): Promise<Buffer> {
  return withClient(
    pg.url,
    async (c) => (await c.query<{ b: Buffer }>('SELECT pg_read_binary_file($1) AS b', [`pg_wal/${name}`])).rows[0]!.b,
    pg.password,
  );
}

/** Reads a JSON file. */
export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** For point-in-time tests: the tools, a cluster whose pipeline takes base backups (walSetup), and the writer's tables. */
export async function baseBackupSetup(
  t: Pick<TestContext, 'skip' | 'after'>,
  settings: string[] = [],
  repo?: string,
): Promise<WalSetup | undefined> {
  if (!(await requireTools(t, 'pg_basebackup', 'pg_receivewal', 'zstd'))) return undefined;
  const s = await walSetup(t, settings, '1s', BASE_BACKUP_STEPS, repo);
  if (s) await withClient(s.pg.url, createWriterTables, s.pg.password);
  return s;
}

/** `dbflow archive` for the setup's pipeline; stop() ends it with SIGTERM (it stores what it received) and wants exit 0. */
export function archiving(t: Pick<TestContext, 'after'>, s: Pick<WalSetup, 'pipeline' | 'env' | 'dir'>): { stop: () => Promise<void> } {
  const archiver = spawnDbflow(['archive', s.pipeline], { env: s.env, cwd: s.dir });
  t.after(() => {
    if (archiver.exitCode === null) archiver.kill('SIGKILL');
  });
  return {
    stop: async () => {
      archiver.kill('SIGTERM');
      const ended = await archiver;
      assert.equal(ended.exitCode, 0, String(ended.stderr));
    },
  };
}

/** Starts the restored data directory `datadir` on its own, runs `fn` with a URL to its postgres database, and stops it. */
export async function inRestored<T>(datadir: string, bin: string, fn: (url: string) => Promise<T>): Promise<T> {
  const inst = await instanceDir();
  const started = await startInstance({ bin, dir: { ...inst, data: datadir }, timeoutS: 60 });
  try {
    return await fn(started.url('postgres', 'postgres'));
  } finally {
    await asServerUser(path.join(bin, 'pg_ctl'), ['stop', '-D', datadir, '-m', 'fast', '-w']).catch(() => undefined);
    inst.remove();
  }
}

/** How many rows of `table` each `phase` holds, in the database at `url` (the point-in-time tests write in phases). */
export async function rowsByPhase(url: string, password: string, table: string): Promise<Record<string, number>> {
  return withClient(
    url,
    async (c) =>
      Object.fromEntries(
        (await c.query<{ phase: string; n: number }>(`SELECT phase, count(*)::int AS n FROM ${table} GROUP BY phase`)).rows.map((r) => [
          r.phase,
          r.n,
        ]),
      ),
    password,
  );
}
