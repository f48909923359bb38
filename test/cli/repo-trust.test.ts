// What the repository promises, through the CLI: prune never touches a live run's objects, a run publishes only
// what is stored as it wrote it, a damaged backup never counts as verified, and unfinished writes are orphans.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { execa } from 'execa';
import { runIdOf } from '../helpers/backup-run.js';
import { dbflow, hasStackTrace, repoRoot, spawnDbflow } from '../helpers/cli.js';
import { waitFor } from '../helpers/processes.js';
import { flipByte, ok, truncateBy } from '../helpers/repo.js';
import { tmpDir } from '../helpers/tmp.js';

const OPS_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'ops-steps.ts');
const SLOW_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'slow-chain.ts');
const ARTIFACT = 'demo.sqlite3.zst.pgp';
const LEASE = '.dbflow-run.json';

interface Listed {
  backups: { url: string; run_id: string; status: string; manifest_status: string; missing: string[] }[];
  orphans: { objects: number; folders: { folder: string; age_seconds: number | null; objects: string[]; unfinished: { url: string }[] }[] };
  in_progress: { folder: string; run_id: string; why: string }[];
}

interface PruneJson {
  kept: { run_id: string; status: string; reasons: string[] }[];
  removed: { run_id: string }[];
  orphans: { folder: string; remove: boolean; why: string }[];
}

/**
 * A quickstart-like pipeline in `dir` whose step `gate` waits for the file `release` after `after`
 * (upload: before the restore-test; rowcount_check: after it; no restore-test with `restoreTest: false`).
 */
function gatedPipeline(
  dir: string,
  after: 'upload' | 'rowcount_check',
  restoreTest = true,
): { file: string; release: string; gateLog: string } {
  copyFileSync(path.join(repoRoot, 'pipelines', 'quickstart.passphrase'), path.join(dir, 'quickstart.passphrase'));
  const release = path.join(dir, 'release');
  const gateLog = path.join(dir, 'gate.log');
  const gate = `  - { id: gate, uses: sleep, needs: ${after}, with: { ms: 300000, until_file: ${JSON.stringify(release)}, log: ${JSON.stringify(gateLog)} } }\n`;
  const verify = `  - id: restore_test
    uses: restore-test
${after === 'upload' ? '    needs: gate\n' : ''}    with: { from: upload, passphrase: "{{ secrets.passphrase }}" }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
  const file = path.join(dir, 'trust.yaml');
  writeFileSync(
    file,
    `version: 1
name: trust
plugins: [${JSON.stringify(OPS_PLUGIN)}]
secrets: { passphrase: { file: quickstart.passphrase } }
databases:
  demo: { driver: sqlite, url: "sqlite:./demo.sqlite3" }
steps:
  - { id: seed, uses: sqlite-seed, with: { database: demo, rows: 2000 } }
  - { id: snapshot, uses: snapshot, needs: seed, with: { databases: [demo] } }
  - { id: dump, uses: dump, with: { database: demo, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/trust/{{ run.id }}/${ARTIFACT}" } }
${restoreTest ? verify : ''}${gate}`,
  );
  return { file, release, gateLog };
}

/** Starts `dbflow run` of a gated pipeline and waits until it reaches its gate; the run is killed when the test ends. */
async function runToGate(t: TestContext, dir: string, file: string, gateLog: string, env: Record<string, string | undefined>) {
  const run = spawnDbflow(['run', file], { cwd: dir, env });
  let ended = false;
  void run.then(() => (ended = true));
  t.after(() => void run.kill('SIGKILL'));
  await waitFor(
    'the run to reach its gate',
    () => existsSync(gateLog),
    120_000,
    () => ended,
  );
  return { run }; // wrapped: the subprocess is a promise of its end
}

/** The one run folder below the repository (the run's id). */
function onlyRun(dir: string): string {
  const runs = readdirSync(path.join(dir, 'backups', 'trust'));
  assert.equal(runs.length, 1, `one run folder: ${runs.join(', ')}`);
  return runs[0]!;
}

describe('the repository keeps its promises', { timeout: 600_000 }, () => {
  it('prune --orphan-grace 0s while a run waits before its restore-test: the run is in progress, its objects survive, it publishes a backup that verifies and restores', async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks'), DBFLOW_PASSPHRASE: undefined };
    const { file, release, gateLog } = gatedPipeline(dir, 'upload');
    const { run } = await runToGate(t, dir, file, gateLog, env);
    const runId = onlyRun(dir);
    const folder = path.join(dir, 'backups', 'trust', runId);
    assert.ok(existsSync(path.join(folder, LEASE)), 'the run keeps a lease in its folder');

    const listed = JSON.parse(
      ok(await dbflow(['backups', 'list', './backups/trust', '--json'], { cwd: dir, env }), 'backups list'),
    ) as Listed;
    assert.deepEqual(
      listed.in_progress.map((p) => [p.folder, p.run_id]),
      [[`file://./backups/trust/${runId}`, runId]],
    );
    assert.equal(listed.orphans.objects, 0, 'a live run is not orphaned garbage');
    const text = ok(await dbflow(['backups', 'list', './backups/trust'], { cwd: dir, env }), 'backups list');
    assert.match(
      text,
      new RegExp(
        `^in progress: file://\\./backups/trust/${runId}/ \\(2 objects\\): run ${runId} of "trust" \\(pid ${run.pid} on .+\\) is running, last heartbeat \\d+s ago$`,
        'm',
      ),
    );
    assert.match(text, /0 backups; no orphaned objects; 1 run in progress\n$/);

    const pruned = await dbflow(['prune', './backups/trust', '--keep-last', '1', '--orphan-grace', '0s'], { cwd: dir, env });
    assert.equal(pruned.exitCode, 0, pruned.stderr);
    assert.match(pruned.stdout, /^keep orphaned .*\(2 objects\): in progress: run .* is running/m);
    assert.ok(existsSync(path.join(folder, ARTIFACT)), "the live run's artifact survived prune");

    writeFileSync(release, '');
    const done = await run;
    assert.equal(done.exitCode, 0, `${String(done.stdout)}\n${String(done.stderr)}`);
    assert.equal(runIdOf(String(done.stdout)), runId);
    assert.equal(existsSync(path.join(folder, LEASE)), false, 'the lease is removed when the run ends');
    const after = JSON.parse(
      ok(await dbflow(['backups', 'list', './backups/trust', '--json'], { cwd: dir, env }), 'backups list'),
    ) as Listed;
    assert.deepEqual(
      after.backups.map((b) => [b.run_id, b.status]),
      [[runId, 'verified']],
    );
    assert.deepEqual([after.orphans.objects, after.in_progress.length], [0, 0]);
    const passphrase = ['--passphrase-file', path.join(dir, 'quickstart.passphrase')];
    ok(await dbflow(['verify', `./backups/trust/${runId}`, ...passphrase], { cwd: dir, env }), 'verify');
    writeFileSync(path.join(dir, 'restored.sqlite3'), '');
    ok(
      await dbflow(['restore', `./backups/trust/${runId}`, '--database', 'demo', '--to', 'sqlite:./restored.sqlite3', ...passphrase], {
        cwd: dir,
        env,
      }),
      'restore',
    );
  });

  it('an artifact cut short after the restore-test: the run fails, naming it, and publishes no manifest', async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
    const { file, release, gateLog } = gatedPipeline(dir, 'rowcount_check');
    const { run } = await runToGate(t, dir, file, gateLog, env);
    const folder = path.join(dir, 'backups', 'trust', onlyRun(dir));
    truncateBy(path.join(folder, ARTIFACT), 100);
    writeFileSync(release, '');
    const done = await run;
    assert.equal(done.exitCode, 1, String(done.stdout));
    const out = `${String(done.stdout)}\n${String(done.stderr)}`;
    assert.match(out, /the stored artifacts are not what this run wrote, so no manifest was published/);
    assert.match(out, new RegExp(`${ARTIFACT.replace(/\./g, '\\.')} is \\d+ bytes, \\d+ were written`));
    assert.equal(existsSync(path.join(folder, 'manifest.json')), false);
    assert.equal(hasStackTrace(out), false, out);
  });

  it('without a restore-test, a flipped byte is found by reading the artifact back before publishing', async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
    const { file, release, gateLog } = gatedPipeline(dir, 'upload', false);
    const { run } = await runToGate(t, dir, file, gateLog, env);
    const folder = path.join(dir, 'backups', 'trust', onlyRun(dir));
    flipByte(path.join(folder, ARTIFACT));
    writeFileSync(release, '');
    const done = await run;
    assert.equal(done.exitCode, 1, String(done.stdout));
    assert.match(
      `${String(done.stdout)}\n${String(done.stderr)}`,
      /reads back as \d+ bytes with sha256 [0-9a-f]{64}, but \d+ bytes with sha256 [0-9a-f]{64} were written/,
    );
    assert.equal(existsSync(path.join(folder, 'manifest.json')), false);
  });

  it('a published backup with an artifact cut short is damaged in list, and prune keeps an older intact one as the newest verified', async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
    const { file, release } = gatedPipeline(dir, 'upload');
    writeFileSync(release, '');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push(runIdOf(ok(await dbflow(['run', file], { cwd: dir, env }), 'run')));
    const [older, newer] = ids as [string, string];
    truncateBy(path.join(dir, 'backups', 'trust', newer, ARTIFACT), 10);

    const listed = JSON.parse(
      ok(await dbflow(['backups', 'list', './backups/trust', '--json'], { cwd: dir, env }), 'backups list'),
    ) as Listed;
    assert.deepEqual(
      listed.backups.map((b) => [b.run_id, b.status, b.manifest_status, b.missing]),
      [
        [newer, 'damaged', 'verified', [ARTIFACT]],
        [older, 'verified', 'verified', []],
      ],
    );
    const text = ok(await dbflow(['backups', 'list', './backups/trust'], { cwd: dir, env }), 'backups list');
    assert.match(text, new RegExp(`${newer} .* DAMAGED; MISSING or wrong size: ${ARTIFACT.replace(/\./g, '\\.')} `));
    assert.match(text, /^2 backups \(1 DAMAGED\); no orphaned objects$/m);

    const plan = JSON.parse(
      ok(await dbflow(['prune', './backups/trust', '--keep-last', '1', '--dry-run', '--json'], { cwd: dir, env }), 'prune'),
    ) as PruneJson;
    assert.deepEqual(
      plan.kept.map((k) => [k.run_id, k.status, k.reasons]),
      [
        [newer, 'damaged', ['last 1/1']],
        [older, 'verified', ['newest verified']],
      ],
    );
    assert.deepEqual(plan.removed, []);
  });

  it('a run killed while uploading leaves a partial file and a dead lease: list shows them as orphans with their age, prune --orphan-grace 0s removes them', async (t) => {
    const dir = tmpDir(t);
    const marker = path.join(dir, 'slow');
    const file = path.join(dir, 'slow.yaml');
    writeFileSync(
      file,
      `version: 1
name: slow
plugins: [${JSON.stringify(SLOW_PLUGIN)}]
steps:
  - { id: source, uses: slow-bytes, with: { size: 100000000, chunk: 65536, delay_ms: 20, marker: ${JSON.stringify(marker)} } }
  - { id: upload, uses: upload, input: source, with: { to: "file://./backups/slow/{{ run.id }}/data.bin" } }
`,
    );
    const run = spawnDbflow(['run', file], { cwd: dir, env: { DBFLOW_LOCK_DIR: path.join(dir, 'locks') } });
    let ended = false;
    void run.then(() => (ended = true));
    t.after(() => void run.kill('SIGKILL'));
    const runDir = await waitFor(
      'a partial file of the upload',
      () => {
        const base = path.join(dir, 'backups', 'slow');
        if (!existsSync(base)) return undefined;
        const d = readdirSync(base).map((r) => path.join(base, r))[0];
        return d && readdirSync(d).some((f) => f.startsWith('.data.bin.partial-') && statSync(path.join(d, f)).size > 0) ? d : undefined;
      },
      120_000,
      () => ended,
    );
    run.kill('SIGKILL');
    await run;
    const partial = readdirSync(runDir).find((f) => f.startsWith('.data.bin.partial-'))!;
    assert.ok(existsSync(path.join(runDir, LEASE)), 'the killed run left its lease');

    const listed = JSON.parse(ok(await dbflow(['backups', 'list', './backups/slow', '--json'], { cwd: dir }), 'backups list')) as Listed;
    const runUrl = `file://./backups/slow/${path.basename(runDir)}`;
    assert.deepEqual(listed.in_progress, [], 'the killed run is not in progress');
    assert.deepEqual(
      listed.orphans.folders.map((f) => [f.folder, f.objects.sort(), f.unfinished.map((u) => u.url), typeof f.age_seconds]),
      [[runUrl, [`${runUrl}/${LEASE}`, `${runUrl}/${partial}`].sort(), [`${runUrl}/${partial}`], 'number']],
    );
    const text = ok(await dbflow(['backups', 'list', './backups/slow'], { cwd: dir }), 'backups list');
    assert.match(text, new RegExp(`^orphaned: ${runUrl.replace(/\./g, '\\.')}/ \\(2 objects, 1 unfinished write, \\d+s old\\)$`, 'm'));

    const pruned = await dbflow(['prune', './backups/slow', '--keep-last', '1', '--orphan-grace', '0s'], { cwd: dir });
    assert.equal(pruned.exitCode, 0, pruned.stderr);
    assert.match(pruned.stdout, /has ended \(no such process\)/);
    assert.deepEqual(readdirSync(runDir), [], 'the partial file and the lease are gone');
  });

  it('a partial file in a published backup folder is an orphan: kept within the grace, removed after it; the backup stays', async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
    const { file, release } = gatedPipeline(dir, 'upload');
    writeFileSync(release, '');
    const runId = runIdOf(ok(await dbflow(['run', file], { cwd: dir, env }), 'run'));
    const folder = path.join(dir, 'backups', 'trust', runId);
    const partial = path.join(folder, `.verify.json.partial-0123456789ab`);
    writeFileSync(partial, 'half');
    const old = new Date(Date.now() - 3 * 86_400_000);
    utimesSync(partial, old, old);
    const text = ok(await dbflow(['backups', 'list', './backups/trust'], { cwd: dir, env }), 'backups list');
    assert.match(text, new RegExp(`^orphaned: file://\\./backups/trust/${runId}/ \\(1 object, 1 unfinished write, `, 'm'));
    assert.match(text, /^1 backup; 1 orphaned object \(4 B\) in 1 folder/m);
    const pruned = await dbflow(['prune', './backups/trust', '--keep-last', '1', '--orphan-grace', '0s'], { cwd: dir, env });
    assert.equal(pruned.exitCode, 0, pruned.stderr);
    assert.equal(existsSync(partial), false, 'the partial file was pruned');
    assert.ok(existsSync(path.join(folder, ARTIFACT)) && existsSync(path.join(folder, 'manifest.json')), 'the backup stays');
    rmSync(path.join(dir, 'demo.sqlite3'), { force: true });
  });

  it('prune on a read-only repository: a clear error naming the storage and the object, exit 1', async (t) => {
    const dir = tmpDir();
    const mount = path.join(dir, 'ro');
    mkdirSync(mount);
    // A tmpfs remounted read-only: chmod does not stop root, a read-only mount does. Unmounted before the folder goes.
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
    t.after(async () => {
      await execa('umount', [mount]);
      rmSync(dir, { recursive: true, force: true });
    });
    const object = path.join(mount, 'backups', '20200101T000000Z-dead', 'app.dump');
    mkdirSync(path.dirname(object), { recursive: true });
    writeFileSync(object, 'x');
    await execa('mount', ['-o', 'remount,ro', mount]);
    const r = await dbflow(['prune', path.join(mount, 'backups'), '--keep-last', '1', '--orphan-grace', '1h'], { cwd: dir });
    assert.equal(r.exitCode, 1, `${r.stdout}\n${r.stderr}`);
    assert.equal(
      r.stderr,
      `dbflow: the file storage cannot delete "file://${object}" (${object}): the file system is read-only (EROFS); make the repository writable, or run this where it is.\n`,
    );
    assert.ok(existsSync(object));
  });

  it('a lease from another host: alive while its heartbeat is young, taken for dead after three intervals', async (t) => {
    const dir = tmpDir(t);
    const lease = (runId: string, beatAgoMs: number) => {
      const folder = path.join(dir, 'backups', runId);
      mkdirSync(folder, { recursive: true });
      writeFileSync(path.join(folder, 'app.dump'), 'x');
      const beat = new Date(Date.now() - beatAgoMs).toISOString();
      const record = {
        format: 'dbflow-run-lease',
        version: 1,
        run_id: runId,
        pipeline: 'nightly',
        host: `not-${hostname()}`,
        pid: 1,
        started_at: beat,
        heartbeat_at: beat,
        heartbeat_ms: 30000,
      };
      writeFileSync(path.join(folder, LEASE), JSON.stringify(record));
      return folder;
    };
    const young = lease('20200101T000000Z-aaaa', 10_000);
    const stale = lease('20200101T000000Z-bbbb', 100_000);
    const r = await dbflow(['prune', './backups', '--keep-last', '1', '--orphan-grace', '0s'], { cwd: dir });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(
      r.stdout,
      /^keep orphaned .*-aaaa\/ \(2 objects\): in progress: run 20200101T000000Z-aaaa of "nightly" \(pid 1 on not-.*\) is running, last heartbeat 1\ds ago;/m,
    );
    assert.match(
      r.stdout,
      /^remove orphaned .*-bbbb\/ \(2 objects\): no manifest; .*; run 20200101T000000Z-bbbb .*: last heartbeat 10\ds ago, taken for dead$/m,
    );
    assert.deepEqual([existsSync(path.join(young, 'app.dump')), existsSync(stale)], [true, true]);
    assert.deepEqual(readdirSync(stale), []);
  });
});
