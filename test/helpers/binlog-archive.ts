// A throwaway MariaDB whose pipeline dumps database `app` and archives the server's binary log: for binlog tests.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RowDataPacket } from 'mysql2/promise';
import { dbflow } from './cli.js';
import { binlogTimes, createMyWriterTables, startMyWriter } from './my-writer.js';
import { stateAfter, type Commit, type WriterState } from './pg-writer.js';
import { archiveSection, archiving, pipelineFolder } from './wal-archive.js';
import { requireMyBackupTools, throwawayMariadb, withConnection, withDatabase, type ThrowawayMariadb } from './mysql.js';
import { requireTools } from './postgres.js';

/** A throwaway MariaDB with database `app` and a pipeline that dumps it and archives its binary log to <dir>/repo/wal. */
export interface BinlogSetup {
  my: ThrowawayMariadb;
  dir: string;
  pipeline: string;
  root: string;
  passphraseFile: string;
  env: Record<string, string>;
}

// The steps that take the base: a dump of `main` in its snapshot, or a base backup of its server.
const BASES = {
  dump: `  - { id: snapshot, uses: snapshot, with: { databases: [main] } }
  - { id: dump, uses: dump, with: { database: main, snapshot: snapshot } }
  - { id: upload, uses: upload, input: dump, with: { to: "{{ vars.repo }}/{{ run.id }}/main.sql" } }
`,
  mariabackup: `  - { id: base, uses: mariabackup, with: { database: main } }
  - { id: upload, uses: upload, input: base, with: { to: "{{ vars.repo }}/{{ run.id }}/main.xbstream" } }
`,
};

// A throwaway MariaDB (with `args`) holding database `app`, and `archive.yaml` archiving its binary log to
// <dir>/repo/wal and taking a base (`base`) of it into <dir>/repo.
export async function binlogSetup(
  t: Pick<TestContext, 'skip' | 'after'>,
  args: string[] = ['--binlog-format=ROW'],
  user = 'root',
  base: keyof typeof BASES = 'dump',
): Promise<BinlogSetup | undefined> {
  if (!(await requireMyBackupTools(t, ...(base === 'mariabackup' ? ['mariadb-backup'] : [])))) return undefined;
  if (!(await requireTools(t, 'mariadb-binlog', 'zstd'))) return undefined;
  const my = await throwawayMariadb(t, { args });
  if (!my) return undefined;
  await withConnection(my.url, (c) => c.query('CREATE DATABASE app'));
  const { dir, passphraseFile } = pipelineFolder(t, 'dbflow-binlog-');
  const pipeline = path.join(dir, 'archive.yaml');
  writeFileSync(
    pipeline,
    `version: 1
name: binlogtest
secrets:
  passphrase: { file: ./passphrase }
${user === 'root' ? '' : '  db_password: { env: BINLOG_DB_PASSWORD }\n'}vars:
  repo: "file://./repo"
databases:
  main: { driver: mysql, url: "mysql://${user}@127.0.0.1:${my.port}/app"${user === 'root' ? '' : ', password: "{{ secrets.db_password }}"'} }
${archiveSection(['main'])}steps:
${BASES[base]}`,
  );
  return { my, dir, pipeline, root: path.join(dir, 'repo', 'wal'), passphraseFile, env: { DBFLOW_STATE_DIR: path.join(dir, 'state') } };
}

/**
 * A writer commits on `app` for `writeMs` while the binary log is archived and the pipeline takes two bases (one
 * after 1.5 s, one two thirds of the way, in a later binlog file); a third of the way, a binlog position between two
 * commits is read. Resolves with the commits, their binlog times and that position.
 */
export async function writeWhileArchiving(
  t: Pick<TestContext, 'after'>,
  s: BinlogSetup,
  writeMs: number,
): Promise<{ commits: Commit[]; times: Map<string, number>; position: { result: string; committedBefore: number } }> {
  const app = withDatabase(s.my.url, 'app');
  await createMyWriterTables(app);
  const archiver = archiving(t, s);
  const writer = await startMyWriter(app, { pauseMs: 5 });
  const base = async (): Promise<void> => {
    const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  };
  let position: { result: string; committedBefore: number };
  try {
    await sleep(1500);
    await base();
    await sleep(writeMs / 3);
    // A binlog position between two of the writer's commits: a replay to it keeps exactly those before.
    position = await writer.between(async (c) => {
      const [rows] = await c.query<RowDataPacket[]>('SHOW MASTER STATUS');
      return `${String(rows[0]!.File)}:${String(rows[0]!.Position)}`;
    });
    await withConnection(s.my.url, (c) => c.query('FLUSH BINARY LOGS'));
    await sleep(writeMs / 3);
    // A second base, in a later binlog file: targets after it replay from it, and prune may drop the files before it.
    await base();
    await sleep(writeMs / 3);
  } finally {
    await writer.stop();
  }
  await sleep(2500);
  await archiver.stop();
  const commits = writer.commits().slice();
  assert.ok(commits.length > 200, `${commits.length} commits`);
  return { commits, times: await binlogTimes(s.my.data), position };
}

/**
 * `backups list` gives each of the two bases a restorable range without a gap; `prune --keep-last 1` keeps the newer
 * base and removes the binlog files before its own; then `latest()` (a restore to the end of the archive, from the
 * kept base) must still hold every commit.
 */
export async function assertRangesAndPrune(s: BinlogSetup, latest: () => Promise<WriterState>, commits: readonly Commit[]): Promise<void> {
  const listed = await dbflow(['backups', 'list', 'file://./repo', '--json'], { env: s.env, cwd: s.dir });
  assert.equal(listed.exitCode, 0, listed.stderr);
  const ranges = (JSON.parse(listed.stdout) as { backups: { restorable?: { to: string; from: string; gap?: string } }[] }).backups.map(
    (b) => b.restorable,
  );
  assert.equal(ranges.length, 2);
  for (const r of ranges) assert.ok(r && !r.gap && Date.parse(r.to) > Date.parse(r.from), JSON.stringify(ranges));
  const pruned = await dbflow(['prune', 'file://./repo', '--keep-last', '1', '--json'], { env: s.env, cwd: s.dir });
  assert.equal(pruned.exitCode, 0, pruned.stdout + pruned.stderr);
  const wal = (JSON.parse(pruned.stdout) as { wal: { keep_from: string; files: string[] }[] }).wal;
  assert.equal(wal.length, 1, pruned.stdout);
  assert.ok(wal[0]!.files.length > 0 && wal[0]!.files.every((f) => /binlog\.\d{6}/.exec(f)![0] < wal[0]!.keep_from), pruned.stdout);
  const verify = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
  assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
  assert.deepEqual(await latest(), stateAfter(commits, commits.length), 'to the end of the archive, from the kept base');
}
