// Continuous binlog archiving of MariaDB (throwaway servers): every binlog file stored once, whole, through rotations,
// a SIGKILL of dbflow archive and a crash of the server; a gap named by verify; wrong settings refused with what to change.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RowDataPacket } from 'mysql2/promise';
import { dbflow, spawnDbflow } from '../helpers/cli.js';
import { binlogSetup } from '../helpers/binlog-archive.js';
import { withConnection, withDatabase } from '../helpers/mysql.js';
import { decodeLog, readJson } from '../helpers/wal-archive.js';

const MINUTE = 60_000;

// The one server folder under the archive root.
function serverFolder(root: string): string {
  const folders = readdirSync(root).filter((n) => !n.endsWith('.json'));
  assert.equal(folders.length, 1, `one server folder in ${root}: ${folders.join(', ')}`);
  return path.join(root, folders[0]!);
}

// The objects of a server folder that no record lists (as its object or one of its pieces).
function unreferenced(folder: string): string[] {
  const names = readdirSync(folder);
  const listed = new Set(
    names
      .filter((n) => n.endsWith('.json'))
      .flatMap((n) => {
        const r = readJson<{ object: string; pieces?: { object: string }[] }>(path.join(folder, n));
        return [n, ...(r.pieces ?? [r]).map((p) => p.object)];
      }),
  );
  return names.filter((n) => !listed.has(n));
}

// A binlog file's bytes with the header flag that says "in use" (set while the server writes it, or after a crash) cleared.
function settled(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  if (copy.length > 22) copy[21]! &= ~0x01;
  return copy;
}

void test(
  'dbflow archive stores every binlog file once, whole, through rotations, a SIGKILL of itself and a crash of the server',
  { timeout: 4 * MINUTE },
  async (t) => {
    const s = await binlogSetup(t);
    if (!s) return;
    const sql = (text: string): Promise<unknown> => withConnection(s.my.url, (c) => c.query(text));
    await sql('CREATE TABLE app.events (id INT PRIMARY KEY, note VARCHAR(200))');
    let next = 1;
    const write = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++, next++) await sql(`INSERT INTO app.events VALUES (${next}, REPEAT('x', 150))`);
    };
    const start = () => {
      const p = spawnDbflow(['archive', s.pipeline], { env: s.env, cwd: s.dir });
      t.after(() => {
        if (p.exitCode === null) p.kill('SIGKILL');
      });
      let said = '';
      p.stderr.on('data', (d: Buffer) => (said += d.toString()));
      // Archiving once its settings are checked and the receiver runs (what the server's crash is meant to interrupt).
      const archiving = async (): Promise<void> => {
        for (let i = 0; i < 600 && !/archiving the log of database "main"/.test(said); i++) {
          assert.equal(p.exitCode, null, said);
          await sleep(50);
        }
      };
      return Object.assign(p, { archiving });
    };
    let archiver = start();
    // A dump to replay onto at the end: what it holds and every event after it, once.
    const dump = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(dump.exitCode, 0, dump.stdout + dump.stderr);
    await write(50);
    await sql('FLUSH BINARY LOGS');
    await write(50);
    await sleep(2500);
    archiver.kill('SIGKILL');
    await archiver;
    await write(50); // while nothing archives
    archiver = start();
    await archiver.archiving();
    await sleep(1000);
    await s.my.restart('crash');
    await write(50);
    await sql('FLUSH BINARY LOGS');
    await write(20);
    await sleep(8000); // the receiver is started again after a failure (1 s, then 2 s …)
    archiver.kill('SIGTERM');
    const ended = await archiver;
    assert.equal(ended.exitCode, 0, String(ended.stderr));

    const folder = serverFolder(s.root);
    const serverFiles = readdirSync(s.my.data)
      .filter((f) => /^binlog\.\d{6}$/.test(f))
      .sort();
    const open = serverFiles.at(-1)!;
    assert.ok(serverFiles.length >= 4, `rotations and restarts made several binlog files: ${serverFiles.join(' ')}`);
    // Every closed binlog file is stored once, whole, equal to the server's; the open one as far as it was received.
    for (const f of serverFiles) {
      const name = f === open ? `${f}.partial` : f;
      const record = readJson<{ file: string; position: string; raw: { bytes: number; sha256: string } }>(
        path.join(folder, `${name}.json`),
      );
      const stored = await decodeLog(folder, name, s.passphraseFile);
      const onServer: Buffer = readFileSync(path.join(s.my.data, f));
      assert.equal(record.raw.bytes, stored.length);
      if (f === open)
        assert.deepEqual(settled(stored), settled(onServer.subarray(0, stored.length)), `${name}: a prefix of the server's file`);
      else assert.deepEqual(settled(stored), settled(onServer), `${f}: equal to the server's file`);
      assert.equal(record.position, `${f}:${stored.length}`);
    }
    const storedNames = readdirSync(folder).filter((n) => n.endsWith('.json'));
    assert.deepEqual(
      storedNames.sort(),
      serverFiles.map((f) => (f === open ? `${f}.partial.json` : `${f}.json`)).sort(),
      'nothing else is stored, and a closed file has no partial left',
    );
    assert.deepEqual(unreferenced(folder), [], 'every object is one a record lists: no piece of a closed or restarted chain is left');
    assert.equal(existsSync(path.join(s.root, 'dbflow-archive.json')), true);

    const verify = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
    // No event lost or applied twice: the dump and the archived log restore to exactly the server's rows.
    const target = withDatabase(s.my.url, 'replayed');
    const restored = await dbflow(
      ['restore', 'file://./repo', '--to', target, '--create', '--latest', '--passphrase-file', s.passphraseFile],
      {
        env: s.env,
        cwd: s.dir,
      },
    );
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
    const rows = async (url: string): Promise<unknown> =>
      withConnection(url, async (c) => (await c.query<RowDataPacket[]>('SELECT count(*) AS n, sum(id) AS s FROM events'))[0][0]);
    assert.deepEqual(await rows(target), await rows(withDatabase(s.my.url, 'app')));
    assert.deepEqual(await rows(target), { n: String(next - 1), s: String(((next - 1) * next) / 2) });
    // status reports the archive lag of the binary log.
    const status = await dbflow(['status', '--json', s.pipeline], { env: s.env, cwd: s.dir });
    const lag = (JSON.parse(status.stdout) as { archive: { database: string; lag_ms: number }[] }[])[0]!.archive;
    assert.equal(lag[0]!.database, 'main');
    assert.ok(typeof lag[0]!.lag_ms === 'number' && lag[0]!.lag_ms >= 0, status.stdout);
    // A binlog file deleted from the repository is a gap that verify names.
    const gone = serverFiles[1]!;
    rmSync(path.join(folder, `${gone}.json`));
    rmSync(path.join(folder, `${gone}.zst.pgp`));
    const gap = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(gap.exitCode, 1, gap.stdout + gap.stderr);
    assert.match(gap.stdout + gap.stderr, new RegExp(gone.replace('.', '\\.')));
  },
);

void test(
  'dbflow archive refuses a server without the binary log, with binlog_format = STATEMENT, and a user without REPLICATION SLAVE',
  { timeout: 3 * MINUTE },
  async (t) => {
    const off = await binlogSetup(t, ['--skip-log-bin']);
    if (!off) return;
    const r1 = await dbflow(['archive', off.pipeline], { env: off.env, cwd: off.dir });
    assert.equal(r1.exitCode, 1, r1.stderr);
    assert.match(r1.stderr, /the binary log is off: start the server with log_bin/);
    assert.doesNotMatch(r1.stderr, /^\s+at /m);

    const statement = await binlogSetup(t, ['--binlog-format=STATEMENT']);
    if (!statement) return;
    const r2 = await dbflow(['archive', statement.pipeline], { env: statement.env, cwd: statement.dir });
    assert.equal(r2.exitCode, 1, r2.stderr);
    assert.match(r2.stderr, /binlog_format is STATEMENT.*SET GLOBAL binlog_format = ROW/);

    const plain = await binlogSetup(t, ['--binlog-format=ROW'], 'plain');
    if (!plain) return;
    await withConnection(plain.my.url, async (c) => {
      await c.query("CREATE USER 'plain'@'%' IDENTIFIED BY 'pw-plain'");
      await c.query("GRANT SELECT ON app.* TO 'plain'@'%'");
    });
    const r3 = await dbflow(['archive', plain.pipeline], { env: { ...plain.env, BINLOG_DB_PASSWORD: 'pw-plain' }, cwd: plain.dir });
    assert.equal(r3.exitCode, 1, r3.stderr);
    assert.match(r3.stderr, /needs BINLOG MONITOR: GRANT BINLOG MONITOR ON \*\.\* TO 'plain'/);
    assert.match(r3.stderr, /needs REPLICATION SLAVE: GRANT REPLICATION SLAVE ON \*\.\* TO 'plain'/);
    assert.doesNotMatch(r3.stderr, /pw-plain/);
  },
);

void test(
  'a binlog file the server purged before it was archived is a gap: dbflow archive says so and goes on, verify names it',
  { timeout: 3 * MINUTE },
  async (t) => {
    const s = await binlogSetup(t);
    if (!s) return;
    const sql = (text: string): Promise<unknown> => withConnection(s.my.url, (c) => c.query(text));
    await sql('CREATE TABLE app.t (id INT PRIMARY KEY)');
    const run = (ms: number): Promise<{ stderr: string; exitCode?: number }> => {
      const p = spawnDbflow(['archive', s.pipeline], { env: s.env, cwd: s.dir });
      t.after(() => {
        if (p.exitCode === null) p.kill('SIGKILL');
      });
      setTimeout(() => p.kill('SIGTERM'), ms);
      return p.then((r) => ({ stderr: String(r.stderr), ...(r.exitCode !== undefined && { exitCode: r.exitCode }) }));
    };
    await sql('INSERT INTO app.t VALUES (1)');
    const dump = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(dump.exitCode, 0, dump.stdout + dump.stderr);
    const first = await run(3000);
    assert.equal(first.exitCode, 0, first.stderr);
    // While nothing archives, the server writes on, moves on twice and purges what was not archived yet.
    await sql('INSERT INTO app.t VALUES (2)');
    await sql('FLUSH BINARY LOGS');
    await sql('INSERT INTO app.t VALUES (3)');
    await sql('FLUSH BINARY LOGS');
    await sql('INSERT INTO app.t VALUES (4)');
    // The server purges a file only once its transactions are checkpointed: ask until it has.
    for (let i = 0; i < 100; i++) {
      await sql("PURGE BINARY LOGS TO 'binlog.000003'");
      const [logs] = await withConnection(s.my.url, (c) => c.query<RowDataPacket[]>('SHOW BINARY LOGS'));
      if (String(logs[0]!.Log_name) === 'binlog.000003') break;
      await sleep(200);
    }
    const second = await run(4000);
    assert.equal(second.exitCode, 0, second.stderr);
    assert.match(
      second.stderr,
      /binlog\.000001 is no longer on the server \(purged before it was archived whole\): the archive has a gap there; reading on from binlog\.00000[23]/,
    );
    const verify = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(verify.exitCode, 1, verify.stdout + verify.stderr);
    assert.match(verify.stdout + verify.stderr, /the end of binlog\.000001/);
    // A replay past the gap would skip the second insert: refused, nothing replayed.
    const target = withDatabase(s.my.url, 'after_gap');
    const restored = await dbflow(
      ['restore', 'file://./repo', '--to', target, '--create', '--latest', '--passphrase-file', s.passphraseFile],
      {
        env: s.env,
        cwd: s.dir,
      },
    );
    assert.equal(restored.exitCode, 1, restored.stdout + restored.stderr);
    assert.match(restored.stderr, /lacks the end of binlog\.000001 .*a replay past it would skip transactions/);
  },
);

void test(
  'the open binlog file is stored by the bytes it grew by: pieces that add up to the file, checked by verify, whole again after a restart',
  { timeout: 3 * MINUTE },
  async (t) => {
    const s = await binlogSetup(t);
    if (!s) return;
    const sql = (text: string): Promise<unknown> => withConnection(s.my.url, (c) => c.query(text));
    await sql('CREATE TABLE app.events (id INT PRIMARY KEY, note VARCHAR(200))');
    const dump = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(dump.exitCode, 0, dump.stdout + dump.stderr);
    let next = 1;
    // Rows a few at a time across several flushes (1 s apart), under one archiver.
    const archive = async (seconds: number): Promise<void> => {
      const p = spawnDbflow(['archive', s.pipeline], { env: s.env, cwd: s.dir });
      t.after(() => {
        if (p.exitCode === null) p.kill('SIGKILL');
      });
      await sleep(1500);
      for (let i = 0; i < seconds * 2; i++, next++) {
        await sql(`INSERT INTO app.events VALUES (${next}, REPEAT('x', 150))`);
        await sleep(500);
      }
      await sleep(1500);
      p.kill('SIGTERM');
      assert.equal((await p).exitCode, 0);
    };
    await archive(6);
    const folder = serverFolder(s.root);
    const open = readdirSync(s.my.data)
      .filter((f) => /^binlog\.\d{6}$/.test(f))
      .sort()
      .at(-1)!;
    type Piece = { object: string; offset: number; raw: { bytes: number } };
    const record = () => readJson<{ raw: { bytes: number }; pieces?: Piece[] }>(path.join(folder, `${open}.partial.json`));
    const first = record();
    const pieces = first.pieces ?? [];
    assert.ok(pieces.length >= 4, `the open file was stored in pieces: ${pieces.length}`);
    // Each byte stored once: every piece starts where the one before ended, and together they are the file.
    for (let i = 1; i < pieces.length; i++) assert.equal(pieces[i]!.offset, pieces[i - 1]!.offset + pieces[i - 1]!.raw.bytes);
    assert.equal(
      pieces.reduce((n, p) => n + p.raw.bytes, 0),
      first.raw.bytes,
    );
    const stored = await decodeLog(folder, `${open}.partial`, s.passphraseFile);
    assert.equal(stored.length, first.raw.bytes);
    assert.deepEqual(settled(stored), settled(readFileSync(path.join(s.my.data, open)).subarray(0, stored.length)));
    const verify = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
    const latest = async (name: string) =>
      dbflow(
        ['restore', 'file://./repo', '--to', withDatabase(s.my.url, name), '--create', '--latest', '--passphrase-file', s.passphraseFile],
        { env: s.env, cwd: s.dir },
      );
    const restored = await latest('from_pieces');
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
    const count = (db: string) =>
      withConnection(withDatabase(s.my.url, db), async (c) =>
        Number((await c.query<RowDataPacket[]>('SELECT count(*) AS n FROM events'))[0][0]!.n),
      );
    assert.equal(await count('from_pieces'), next - 1);

    // A restarted archiver stores the open file whole, then pieces again; the earlier chain's pieces go.
    await archive(3);
    const again = record();
    assert.ok((again.pieces?.length ?? 0) >= 2 && again.pieces![0]!.raw.bytes > pieces[0]!.raw.bytes, JSON.stringify(again.pieces));
    assert.deepEqual(unreferenced(folder), []);

    // A damaged piece is found by verify and named, and a restore that needs it refuses.
    const damaged = path.join(folder, again.pieces!.at(-1)!.object);
    const bytes = readFileSync(damaged);
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(damaged, bytes);
    const bad = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(bad.exitCode, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout + bad.stderr, new RegExp(again.pieces!.at(-1)!.object.replace(/\./g, '\\.')));
    const refused = await latest('from_damaged');
    assert.notEqual(refused.exitCode, 0, refused.stdout + refused.stderr);
  },
);
