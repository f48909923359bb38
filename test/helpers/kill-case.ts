// Kill points: a backup pipeline per driver and storage, a run killed at an event of its own stream, and what must hold afterwards.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { scratchPrefix, type EngineEvent, type Manifest } from '../../src/index.js';
import { PASSPHRASE, writePipeline } from './backup-run.js';
import { dbflow, spawnDbflow } from './cli.js';
import * as pgServer from './postgres.js';
import { countRows as pgCountRows } from './postgres-data.js';
import { stockRestore as pgStockRestore } from './postgres-run.js';
import * as myServer from './mysql.js';
import { countRows as myCountRows } from './mysql-data.js';
import { stockRestore as myStockRestore } from './mysql-run.js';
import { descendants } from './processes.js';
import type { S3Server } from './s3.js';

export type Driver = 'postgres' | 'mysql' | 'sqlite';
/** Where the backup goes: a file:// repository, S3, or both at once (`copies`: one upload, a manifest in each). */
export type Store = 'file' | 's3' | 'copies';

/** The source databases, one per driver, shared by every case (runs only read them). */
export interface Sources {
  postgres: string;
  mysql: string;
  sqlite: string;
  s3: S3Server;
}

/** Rows in the big table of each source: enough that a restore lasts well beyond a poll. */
export const ROWS = 5_000;
// The mariadb client loads 5,000 rows in about 20 ms, which a 5 ms poll of the process tree missed under
// load; 100,000 rows take about 250 ms.
const MY_ROWS = 100_000;
// SQLite restores in-process, with no program to wait for: a case signals it 5 ms after its restore-test starts, which
// under load came after a run of 5,000 rows had ended. 200,000 rows (8 MB) take about 150 ms to restore.
const SQLITE_ROWS = 200_000;

/** Creates and fills the three sources: `items` (ROWS rows; MY_ROWS in MariaDB, SQLITE_ROWS in SQLite) and `notes` (300 rows). */
export async function makeSources(t: Pick<TestContext, 'after'>, dir: string, s3: S3Server): Promise<Sources> {
  const pg = await pgServer.scratchDatabase(t);
  await pg.pool.query(`CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
    INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g;
    CREATE TABLE notes (id serial PRIMARY KEY, body text);
    INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 300) g;`);
  const my = await myServer.scratchDatabase(t);
  await my.pool.query(`CREATE TABLE items (id int PRIMARY KEY, v varchar(40) NOT NULL) ENGINE=InnoDB;
    INSERT INTO items SELECT seq, MD5(seq) FROM seq_1_to_${MY_ROWS};
    CREATE TABLE notes (id int AUTO_INCREMENT PRIMARY KEY, body text) ENGINE=InnoDB;
    INSERT INTO notes (body) SELECT CONCAT('note ', seq) FROM seq_1_to_300;`);
  const file = path.join(dir, 'source.sqlite3');
  const db = new Database(file);
  db.exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${SQLITE_ROWS}) INSERT INTO items SELECT n, hex(randomblob(16)) FROM g;
    CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 300) INSERT INTO notes (body) SELECT 'note ' || n FROM g;`);
  db.close();
  return { postgres: pg.url, mysql: my.url, sqlite: `sqlite:${file}`, s3 };
}

/** One case's own folder, repository and pipeline. */
export interface CaseSetup {
  driver: Driver;
  cwd: string;
  /** The (first) repository. */
  repo: string;
  /** Every repository the backup is published in (one, or two for copies). */
  repos: string[];
  file: string;
  env: Record<string, string>;
  /** The S3 server of an s3:// repository. */
  s3?: S3Server;
}

/** A case's pipeline: snapshot → dump → zstd → OpenPGP → upload → restore-test (target: scratch, the scratch database these tests follow; the throwaway default has its own tests) → rowcount-check, into its own repository. */
export async function setupCase(cwd: string, driver: Driver, store: Store, sources: Sources): Promise<CaseSetup> {
  const fileRepo = `file://${path.join(cwd, 'backups')}`;
  const repos =
    store === 'file'
      ? [fileRepo]
      : store === 's3'
        ? [`s3://${await sources.s3.bucket()}/backups`]
        : [fileRepo, `s3://${await sources.s3.bucket()}/backups`];
  const to = repos.map((r) => `${r}/{{ run.id }}/app.dump.zst.pgp`);
  // A password makes the PostgreSQL tools' passfiles (the trusting test server ignores it): secrets in the step tmpdirs.
  const db = { driver, url: sources[driver], ...(driver === 'postgres' && { password: '{{ secrets.db_password }}' }) };
  const yaml = `version: 1
name: killpoint
timeout: 3m
secrets:
  passphrase: { env: TEST_PASSPHRASE }
  db_password: { env: TEST_DB_PASSWORD }
databases:
  app: ${JSON.stringify(db)}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: ${JSON.stringify(to.length === 1 ? to[0] : to)} } }
  - { id: restore_test, uses: restore-test, with: { from: upload, target: scratch, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
  const s3 = store !== 'file';
  const env = { TEST_PASSPHRASE: PASSPHRASE, TEST_DB_PASSWORD: 'unused-by-a-trusting-server', ...(s3 ? sources.s3.env : {}) };
  return { driver, cwd, repo: repos[0]!, repos, file: writePipeline(cwd, yaml), env, ...(s3 && { s3: sources.s3 }) };
}

/** When to signal the process, read from its `--json` event stream (or its plain output, for prune). */
export interface Trigger {
  /** The first event (or output line) for which this holds arms the trigger. */
  at: (e: EngineEvent | { type: 'line'; text: string }) => boolean;
  /** Then wait this long (a delay within the step) … */
  delayMs?: number;
  /** … or until the process runs a child program of this name (the restore tool: the scratch database exists then). */
  child?: string;
  signal: 'SIGKILL' | 'SIGINT';
}

/** What a signalled process did. */
export interface Signalled {
  exitCode: number | undefined;
  signalled: boolean;
  runId?: string;
  /** A run:end was printed before the signal. */
  ended: boolean;
  /** The programs it ran when it was signalled (pid and name). */
  children: { pid: number; comm: string }[];
  stdout: string;
  stderr: string;
}

/** Runs `dbflow <args>`, signals it at `trigger` and waits for it to end. */
export async function signalAt(args: string[], c: Pick<CaseSetup, 'cwd' | 'env'>, trigger: Trigger, json: boolean): Promise<Signalled> {
  const sub = spawnDbflow(args, { cwd: c.cwd, env: c.env });
  let runId: string | undefined;
  let ended = false;
  let armed = false;
  let fired = false;
  let buffer = '';
  let children: Signalled['children'] = [];
  const fire = (): void => {
    if (fired) return;
    fired = true;
    children = descendants(sub.pid!).map((p) => ({ pid: p.pid, comm: p.comm }));
    sub.kill(trigger.signal);
  };
  const arm = (): void => {
    if (armed) return;
    armed = true;
    if (trigger.child) {
      const poll = setInterval(() => {
        if (fired || sub.exitCode !== null) return clearInterval(poll);
        if (descendants(sub.pid!).some((p) => p.comm === trigger.child)) {
          clearInterval(poll);
          fire();
        }
      }, 5);
    } else if (trigger.delayMs) setTimeout(fire, trigger.delayMs);
    else fire();
  };
  sub.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let e: EngineEvent | { type: 'line'; text: string } = { type: 'line', text: line };
      if (json && line.startsWith('{')) e = JSON.parse(line) as EngineEvent;
      if (e.type === 'run:start') runId = (e as unknown as { run_id: string }).run_id; // `run --json` prints snake_case keys
      if (e.type === 'run:end' && !fired) ended = true;
      if (!armed && trigger.at(e)) arm();
    }
  });
  const r = await sub;
  return {
    exitCode: r.exitCode,
    signalled: fired,
    ...(runId && { runId }),
    ended,
    children,
    stdout: String(r.stdout),
    stderr: String(r.stderr),
  };
}

/** What a dead run may have left on this machine and on the database server. */
export async function leftovers(c: CaseSetup, runId: string): Promise<{ tmpdirs: string[]; scratch: string[] }> {
  const tmpdirs = readdirSync(os.tmpdir()).filter((n) => n.startsWith(`dbflow-${runId}-`));
  const prefix = scratchPrefix(runId);
  const scratch =
    c.driver === 'postgres'
      ? await pgServer.databasesStartingWith(prefix)
      : c.driver === 'mysql'
        ? await myServer.databasesStartingWith(prefix)
        : [];
  return { tmpdirs, scratch };
}

/** A listed backup, as `dbflow backups list --json` prints it. */
interface ListedJson {
  url: string;
  status?: string;
  problem?: string;
  missing?: string[];
}

/**
 * Violations of "a backup marked verified restores" in the case's repositories (checks every verified backup with
 * `dbflow verify` and stock tools), and, with several, of "no repository lists a backup another one lacks".
 */
export async function checkRepository(t: Pick<TestContext, 'after'>, c: CaseSetup): Promise<{ verified: number; violations: string[] }> {
  const violations: string[] = [];
  let verified = 0;
  const listed = new Map<string, string[]>();
  for (const repo of c.repos) {
    const list = await dbflow(['backups', 'list', repo, '--json'], { cwd: c.cwd, env: c.env });
    assert.equal(list.exitCode, 0, `backups list failed: ${list.stderr}`);
    const backups = (JSON.parse(list.stdout) as { backups: ListedJson[] }).backups;
    listed.set(repo, backups.map((b) => b.url.slice(repo.length + 1)).sort());
    const checked = await checkBackups(t, c, backups);
    verified += checked.verified;
    violations.push(...checked.violations);
  }
  const [first, ...others] = [...listed];
  for (const [repo, runs] of others)
    if (JSON.stringify(runs) !== JSON.stringify(first![1]))
      violations.push(`${first![0]} lists ${first![1].join(', ') || 'nothing'} but ${repo} lists ${runs.join(', ') || 'nothing'}`);
  return { verified, violations };
}

async function checkBackups(
  t: Pick<TestContext, 'after'>,
  c: CaseSetup,
  backups: ListedJson[],
): Promise<{ verified: number; violations: string[] }> {
  const violations: string[] = [];
  let verified = 0;
  for (const b of backups) {
    if (b.problem !== undefined) violations.push(`${b.url} is listed with an unreadable manifest: ${b.problem}`);
    if (b.status !== 'verified') continue;
    verified++;
    if (b.missing?.length) violations.push(`${b.url} is verified but misses ${b.missing.join(', ')}`);
    const v = await dbflow(['verify', b.url, '--no-record'], { cwd: c.cwd, env: { ...c.env, DBFLOW_PASSPHRASE: PASSPHRASE } });
    if (v.exitCode !== 0) violations.push(`${b.url} is verified but dbflow verify exits ${v.exitCode}: ${v.stderr.trim()}`);
    const why = await stockRestoreMismatch(t, c, b.url);
    if (why) violations.push(`${b.url} is verified but ${why}`);
  }
  return { verified, violations };
}

// Restores a backup's artifact with gpg, zstd and the database's own client into a new database; what differs from the manifest's counts, if anything.
async function stockRestoreMismatch(t: Pick<TestContext, 'after'>, c: CaseSetup, url: string): Promise<string | undefined> {
  const work = path.join(c.cwd, `stock-${Math.random().toString(36).slice(2)}`);
  mkdirSync(work);
  const manifest = JSON.parse((await readObject(c, `${url}/manifest.json`)).toString('utf8')) as Manifest;
  const artifact = manifest.artifacts[0]!;
  const local = path.join(work, 'artifact');
  writeFileSync(local, await readObject(c, artifact.url));
  const expected = Object.fromEntries(Object.entries(manifest.databases.app!.tables).map(([k, v]) => [k, v.rows]));
  let got: Record<string, number>;
  try {
    if (c.driver === 'postgres') {
      const target = await pgServer.scratchDatabase(t);
      await pgStockRestore(local, target.url, work);
      got = await pgCountRows(target.pool, Object.keys(expected));
    } else if (c.driver === 'mysql') {
      const target = await myServer.scratchDatabase(t);
      await myStockRestore(local, target.url, work);
      got = await myCountRows(target.pool, Object.keys(expected));
    } else {
      const home = path.join(work, 'gnupg');
      mkdirSync(home, { mode: 0o700 });
      writeFileSync(path.join(work, 'passphrase'), PASSPHRASE, { mode: 0o600 });
      const db = path.join(work, 'restored.sqlite3');
      await execa(
        'bash',
        [
          '-o',
          'pipefail',
          '-c',
          'gpg --batch --quiet --homedir "$GH" --pinentry-mode loopback --passphrase-file "$PF" --decrypt "$A" | zstd -d -q > "$OUT"',
        ],
        {
          env: { GH: home, PF: path.join(work, 'passphrase'), A: local, OUT: db },
        },
      );
      const sqlite = new Database(db, { readonly: true });
      got = Object.fromEntries(
        Object.keys(expected).map((k) => [
          k,
          (sqlite.prepare(`SELECT count(*) AS n FROM "${k.replace(/"/g, '""')}"`).get() as { n: number }).n,
        ]),
      );
      sqlite.close();
    }
  } catch (err) {
    return `stock tools cannot restore it: ${(err as Error).message.split('\n')[0]}`;
  }
  try {
    assert.deepEqual(got, expected);
    return undefined;
  } catch {
    return `stock tools restore other counts: ${JSON.stringify(got)}, manifest ${JSON.stringify(expected)}`;
  }
}

// The bytes of an object of the case's repository, read around dbflow (the file itself, or the S3 API).
async function readObject(c: CaseSetup, url: string): Promise<Buffer> {
  if (url.startsWith('file://')) return readFileSync(new URL(url).pathname);
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  assert.ok(m, `an s3:// URL: ${url}`);
  const client = c.s3!.client();
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } finally {
    client.destroy();
  }
}
