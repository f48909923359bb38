// Masking is for text shown to people: a secret that collides with a database name, a count or a path
// must never change a manifest, an object key or a count — and is still masked in every line people read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { requireTool } from '../helpers/step-context.js';
import { filesUnder } from '../helpers/repo.js';
import { tmpDir } from '../helpers/tmp.js';

const ROWS = 12345;
const HIDDEN = 'hidden-folder-7f3q';

/** A pipeline backing up the SQLite database `app` with secrets whose values are a name, a count and a path. */
function pipeline(dir: string): string {
  const db = path.join(dir, 'app.sqlite3');
  const sqlite = new Database(db);
  sqlite.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const insert = sqlite.prepare('INSERT INTO t (v) VALUES (?)');
  sqlite.transaction(() => {
    for (let i = 0; i < ROWS; i++) insert.run(`row ${i}`);
  })();
  sqlite.close();
  const file = path.join(dir, 'collide.yaml');
  writeFileSync(
    file,
    `version: 1
name: collide
secrets:
  passphrase: { env: COLLIDE_PASSPHRASE }
  number: { env: COLLIDE_NUMBER }
  folder: { env: COLLIDE_FOLDER }
databases:
  app: { driver: sqlite, url: ${JSON.stringify(`sqlite://${db}`)} }
  other: { driver: postgres, url: "postgres://someone:Pw-in-url-9d2@127.0.0.1:1/x" }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - id: upload
    uses: upload
    input: encrypt
    with: { to: ${JSON.stringify(`file://${dir}/repo/{{ run.id }}/{{ secrets.folder }}/app.sqlite3.zst.pgp`)} }
  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`,
  );
  return file;
}

describe('secrets that collide with data', { timeout: 300_000 }, () => {
  it('leave the manifest, object keys and counts intact, and stay masked in every human-facing line', async (t) => {
    if (!(await requireTool(t, 'zstd', 'zstd'))) return;
    const dir = tmpDir(t, 'dbflow-masking-');
    const file = pipeline(dir);
    const state = path.join(dir, 'state');
    const env = { COLLIDE_PASSPHRASE: 'app', COLLIDE_NUMBER: String(ROWS), COLLIDE_FOLDER: HIDDEN };

    const r = await dbflow(['run', file, '--state-dir', state], { env });
    assert.equal(r.exitCode, 0, `run failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(hasStackTrace(r.stderr), false);

    // The backup, where the templates put it, with a manifest that names what is really there.
    const runId = readdirSync(path.join(state, 'runs'))[0]!;
    const folder = path.join(dir, 'repo', runId, HIDDEN);
    const manifestText = readFileSync(path.join(folder, 'manifest.json'), 'utf8');
    assert.doesNotMatch(manifestText, /\*\*\*/, 'nothing in the manifest is masked');
    const manifest = JSON.parse(manifestText) as {
      status: string;
      databases: Record<string, { tables: Record<string, { rows: number }> }>;
      artifacts: { database: string; url: string; path: string }[];
    };
    assert.equal(manifest.status, 'verified');
    assert.deepEqual(Object.keys(manifest.databases), ['app']);
    assert.equal(manifest.databases.app!.tables.t!.rows, ROWS);
    assert.equal(manifest.artifacts[0]!.database, 'app');
    assert.equal(manifest.artifacts[0]!.path, 'app.sqlite3.zst.pgp');
    assert.ok(manifest.artifacts[0]!.url.includes(`/${HIDDEN}/`));

    // The repository commands find it, verify it and restore it.
    const passphraseFile = path.join(dir, 'passphrase');
    writeFileSync(passphraseFile, 'app\n', { mode: 0o600 });
    const listed = await dbflow(['backups', 'list', `file://${dir}/repo`, '--json'], { env });
    assert.equal(listed.exitCode, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as { backups: { status: string }[] }).backups[0]!.status, 'verified');
    const verified = await dbflow(['verify', `file://${folder}`, '--passphrase-file', passphraseFile], { env });
    assert.equal(verified.exitCode, 0, `verify: ${verified.stdout}\n${verified.stderr}`);
    const target = path.join(dir, 'restored.sqlite3');
    writeFileSync(target, '');
    const restored = await dbflow(
      ['restore', `file://${folder}`, '--database', 'app', '--to', `sqlite://${target}`, '--passphrase-file', passphraseFile],
      { env },
    );
    assert.equal(restored.exitCode, 0, `restore: ${restored.stdout}\n${restored.stderr}`);
    const back = new Database(target, { readonly: true });
    assert.equal(back.prepare('SELECT count(*) FROM t').pluck().get(), ROWS);
    back.close();
    // … and so do stock tools, with the same passphrase.
    const decoded = execFileSync('bash', [
      '-c',
      `gpg --batch --quiet --pinentry-mode loopback --passphrase app --decrypt '${folder}/app.sqlite3.zst.pgp' | zstd -d > '${dir}/stock.sqlite3'`,
    ]);
    assert.equal(decoded.length, 0);
    assert.equal(
      execFileSync('sqlite3', [path.join(dir, 'stock.sqlite3'), 'SELECT count(*) FROM t'])
        .toString()
        .trim(),
      String(ROWS),
    );

    // Every line people read shows the folder secret masked: the summary, result.json, events, logs; and nothing
    // under the state folder (the run record, the audit trail, the metrics) holds it or the password of a URL.
    const record = path.join(state, 'runs', runId);
    assert.ok(!r.stdout.includes(HIDDEN) && !r.stderr.includes(HIDDEN), `the output shows the secret:\n${r.stdout}`);
    assert.match(r.stdout, /\/\*\*\*\/\*\*\*\.sqlite3\.zst\.pgp/, 'the summary shows the path with the secret masked');
    const stateFiles = filesUnder(state);
    for (const f of ['audit.jsonl', 'metrics.prom', `runs/${runId}/pipeline.json`, `runs/${runId}/events.jsonl`])
      assert.ok(stateFiles.includes(f), `${f} is in the state folder: ${stateFiles.join(', ')}`);
    for (const f of stateFiles) {
      const text = readFileSync(path.join(state, f), 'utf8');
      assert.ok(!text.includes(HIDDEN), `${f} shows the folder secret`);
      assert.ok(!text.includes('Pw-in-url-9d2'), `${f} holds the password written in a URL`);
    }
    // result.json keeps its data: the database's name and the counts' numbers are not masked.
    const result = JSON.parse(readFileSync(path.join(record, 'result.json'), 'utf8')) as {
      status: string;
      summary: { artifacts: { database: string; url: string }[] };
    };
    assert.equal(result.status, 'success');
    assert.equal(result.summary.artifacts[0]!.database, 'app');
    assert.match(result.summary.artifacts[0]!.url, /\/\*\*\*\/\*\*\*\.sqlite3\.zst\.pgp$/);

    // Run records are private: 0600 files in 0700 folders.
    for (const f of [record, path.join(record, 'logs'), ...filesUnder(record).map((f) => path.join(record, f))]) {
      const mode = statSync(f).mode & 0o777;
      assert.equal(mode, statSync(f).isDirectory() ? 0o700 : 0o600, `${f} has mode ${mode.toString(8)}`);
    }
  });
});
