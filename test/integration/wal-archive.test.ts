// Continuous WAL archiving against a throwaway cluster: every segment stored, decodable to the server's bytes, through
// a SIGKILL of dbflow archive and an immediate stop of the server; verify finds a deleted segment; clear settings errors.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { dbflow, spawnDbflow } from '../helpers/cli.js';
import { requireTools, withClient, withPassword } from '../helpers/postgres.js';
import { decodeStored, readJson, serverWal, sha256, systemFolder, walSetup } from '../helpers/wal-archive.js';

interface Record {
  file: string;
  kind: string;
  object: string;
  bytes: number;
  sha256: string;
  raw: { bytes: number; sha256: string };
  layers: { codec: string }[];
  timeline: number;
  archived_at: string;
}

const SEGMENT = /^[0-9A-F]{24}$/;

// Whether the archive at `root` holds the record of `file` (false while it has no system folder yet).
function stored(root: string, file: string): boolean {
  try {
    return existsSync(path.join(systemFolder(root), `${file}.json`));
  } catch {
    return false;
  }
}

// Polls until `check` holds (events the test cannot subscribe to: files appearing in a folder).
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('dbflow archive stores every WAL segment through a SIGKILL of itself and a crash of the server', { timeout: 240_000 }, async (t) => {
  if (!(await requireTools(t, 'pg_receivewal', 'gpg', 'zstd'))) return;
  const s = await walSetup(t);
  if (!s) return;
  // A fresh connection per statement, whose "terminated" error (the server's immediate stop) is the query's, not the process's.
  const q = async <T>(sql: string): Promise<T[]> => {
    const client = new pg.Client({ connectionString: withPassword(s.pg.url, s.pg.password), connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.query(sql)).rows as T[];
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const outputs: string[] = [];
  const start = () => spawnDbflow(['archive', s.pipeline], { env: s.env, cwd: s.dir });
  let archiver = start();
  const first = (await q<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0]!.f;
  await until('the slot', async () => (await q('SELECT 1 FROM pg_replication_slots WHERE active')).length === 1);
  await q('CREATE TABLE writes (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), pad text)');

  // A writer commits for ~20 s; meanwhile dbflow archive is SIGKILLed and restarted, and the server stops immediately and restarts.
  let writing = true;
  let commits = 0;
  const writer = (async () => {
    while (writing) {
      try {
        await q("INSERT INTO writes (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)");
        commits++;
      } catch {
        await sleep(200); // the server is restarting
      }
    }
  })();
  let last = '';
  const switchWal = async (): Promise<void> => {
    last = (await q<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
  };
  for (let second = 1; second <= 20; second++) {
    await sleep(1000);
    if (second % 3 === 0) await switchWal().catch(() => undefined);
    if (second === 7) {
      archiver.kill('SIGKILL');
      outputs.push(String((await archiver).stderr));
      archiver = start();
    }
    if (second === 12) await s.pg.restart('immediate');
  }
  writing = false;
  await writer;
  await switchWal();
  const folder = (): string => systemFolder(s.root);
  await until(`segment ${last} stored`, () => stored(s.root, last));
  archiver.kill('SIGTERM');
  const stopped = await archiver;
  outputs.push(String(stopped.stderr));
  assert.equal(stopped.exitCode, 0, outputs.join('\n'));
  assert.ok(commits > 10, `the writer committed ${commits} times`);

  const names = readdirSync(folder());
  const segments = names
    .filter((n) => n.endsWith('.json') && SEGMENT.test(n.slice(0, -5)))
    .map((n) => n.slice(0, -5))
    .sort();
  assert.ok(segments[0]! <= first, `the archive starts at ${segments[0]}, at or before ${first} (where the slot began)`);
  assert.ok(segments.includes(last));
  // Consecutive names from the first to the last switched one (timeline 1; 256 segments per log id).
  const number = (n: string): number => parseInt(n.slice(8, 16), 16) * 256 + parseInt(n.slice(16), 16);
  for (let i = 1; i < segments.length; i++)
    assert.equal(number(segments[i]!), number(segments[i - 1]!) + 1, `no gap after ${segments[i - 1]}`);
  assert.ok(segments.length >= 6, `${segments.length} segments`);

  // Not stored twice: each segment was stored by exactly one of the archiver's runs.
  const storedLines = outputs.join('\n').match(/stored [0-9A-F]{24} /g) ?? [];
  const counts = new Map<string, number>();
  for (const l of storedLines) counts.set(l, (counts.get(l) ?? 0) + 1);
  assert.deepEqual(
    [...counts].filter(([, n]) => n > 1),
    [],
    'no segment stored twice',
  );

  // Every segment decodes (stock gpg | zstd -d) to the bytes of its record and, where the server still has it, of pg_wal.
  const inPgWal = new Set((await q<{ name: string }>('SELECT name FROM pg_ls_waldir()')).map((r) => r.name));
  let compared = 0;
  for (const name of segments) {
    const record = readJson<Record>(path.join(folder(), `${name}.json`));
    assert.equal(record.file, name);
    assert.equal(record.kind, 'segment');
    assert.equal(record.timeline, 1);
    assert.deepEqual(
      record.layers.map((l) => l.codec),
      ['zstd', 'openpgp'],
    );
    assert.equal(record.object, `${name}.zst.pgp`);
    const decoded = await decodeStored(path.join(folder(), record.object), s.passphraseFile);
    assert.equal(decoded.length, 16 * 1024 * 1024);
    assert.equal(sha256(decoded), record.raw.sha256, `${name} decodes to its record's sha256`);
    if (inPgWal.has(name) && name !== segments.at(-1)) {
      assert.equal(sha256(await serverWal(s.pg, name)), record.raw.sha256, `${name} is the server's pg_wal file`);
      compared++;
    }
  }
  assert.ok(compared >= 3, `compared ${compared} segments with the server's pg_wal`);
  // Nothing left behind: the spool holds at most the open segment.
  const spool = path.join(s.stateDir, 'archive', 'waltest', 'main', 'spool');
  assert.deepEqual(
    readdirSync(spool).filter((n) => SEGMENT.test(n)),
    [],
  );

  // verify: complete; then a deleted object is named, and a deleted segment (object and record) is the first missing one.
  const ok = await dbflow(['verify', s.root], { env: s.env, cwd: s.dir });
  assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /the chain is complete/);
  const gone = segments[4]!;
  rmSync(path.join(folder(), `${gone}.zst.pgp`));
  rmSync(path.join(folder(), `${gone}.json`));
  const gap = await dbflow(['verify', s.root], { env: s.env, cwd: s.dir });
  assert.equal(gap.exitCode, 1);
  assert.match(gap.stdout, new RegExp(`timeline 1: ${gone} is missing`));
  assert.match(gap.stderr, new RegExp(`first missing file is ${gone}`));
  const victim = segments[2]!;
  rmSync(path.join(folder(), `${victim}.zst.pgp`));
  const damaged = await dbflow(['verify', `file://${s.root}`], { env: s.env, cwd: s.dir });
  assert.equal(damaged.exitCode, 1);
  assert.match(damaged.stdout, new RegExp(`✗ ${victim}: its object .* is missing`));
  assert.match(damaged.stderr, new RegExp(`first missing file is ${victim}`));

  // status reports the lag.
  const status = await dbflow(['status', '--json', s.pipeline], { env: s.env, cwd: s.dir });
  const archive = (JSON.parse(status.stdout) as { archive: { database: string; lag_ms: number }[] }[])[0]!.archive;
  assert.equal(archive[0]!.database, 'main');
  assert.ok(typeof archive[0]!.lag_ms === 'number');
});

test(
  'dbflow archive refuses wal_level = minimal and a user without REPLICATION, saying what to change',
  { timeout: 120_000 },
  async (t) => {
    if (!(await requireTools(t, 'pg_receivewal'))) return;
    const minimal = await walSetup(t, ['wal_level=minimal', 'max_wal_senders=0']);
    if (!minimal) return;
    const r = await dbflow(['archive', minimal.pipeline], { env: minimal.env, cwd: minimal.dir });
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, /wal_level is "minimal".*set "wal_level = replica"/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);

    const s = await walSetup(t);
    if (!s) return;
    await withClient(s.pg.url, (c) => c.query(`CREATE ROLE plain LOGIN PASSWORD '${s.pg.password}'`), s.pg.password);
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(s.pipeline, readFileSync(s.pipeline, 'utf8').replace('postgres://postgres@', 'postgres://plain@'));
    const r2 = await dbflow(['archive', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(r2.exitCode, 1, r2.stderr);
    assert.match(r2.stderr, /user "plain" may not stream WAL; grant it with: ALTER ROLE plain REPLICATION;/);
  },
);

test('dbflow daemon keeps dbflow archive running for a pipeline with archive:', { timeout: 120_000 }, async (t) => {
  if (!(await requireTools(t, 'pg_receivewal', 'zstd'))) return;
  const s = await walSetup(t);
  if (!s) return;
  const daemon = spawnDbflow(['daemon', s.dir, '--no-metrics'], { env: s.env, cwd: s.dir });
  await until('the slot', async () =>
    withClient(s.pg.url, async (c) => (await c.query('SELECT 1 FROM pg_replication_slots WHERE active')).rowCount === 1, s.pg.password),
  );
  const last = await withClient(
    s.pg.url,
    async (c) => {
      await c.query('CREATE TABLE t AS SELECT generate_series(1, 10000) AS x');
      return (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).rows[0]!.f;
    },
    s.pg.password,
  );
  await until(`segment ${last} stored by the daemon's archiver`, () => stored(s.root, last));
  daemon.kill('SIGTERM');
  const r = await daemon;
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stderr), /\[archive .*archive\.yaml\] started/);
});
