// `dbflow serve` over its indexes: the backups page follows the repository (new, pruned, re-verified backups) while reading
// only the manifests that changed; a damaged run index is built again; wrong tokens are refused with 429 after a few.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { dbflow, spawnDbflow } from '../helpers/cli.js';
import { OPS_PASSPHRASE, sqlitePipeline } from '../helpers/ops.js';
import { endOf, waitFor } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

const TOKEN = 'dashboard-index-test-token-0123';

interface Serve {
  base: string;
  log: () => string;
  stop: () => Promise<void>;
}

async function serve(t: TestContext, dir: string, env: Record<string, string>, extra: string[] = []): Promise<Serve> {
  const child = spawnDbflow(['serve', path.join(dir, 'pipelines'), '--listen', '127.0.0.1:0', ...extra], {
    cwd: dir,
    env: { ...env, DBFLOW_DASHBOARD_TOKEN: TOKEN },
  });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
    assert.equal((await child).exitCode, 0, log);
  };
  t.after(stop);
  const base = await waitFor('the dashboard to listen', () => /dashboard on (http:\/\/[\d.]+:\d+)\//.exec(log)?.[1], 60_000, endOf(child));
  return { base, log: () => log, stop };
}

/** The rows of the Backups page: run id ('' when the manifest cannot be read), status, last verify. */
async function backupRows(base: string): Promise<{ runId: string; status: string; verify: string }[]> {
  const res = await fetch(`${base}/backups`);
  assert.equal(res.status, 200);
  const html = await res.text();
  const row =
    /<tr><td>[^<]*<\/td><td>[^<]*(?:<a href="\/runs\/([^"]+)">[^<]*<\/a>)?<\/td><td>[^<]*<\/td><td>[^<]*<\/td><td><span class="state s-(\w+)">\w+<\/span><\/td><td>([^<]*)<\/td>/g;
  return [...html.matchAll(row)].map((m) => ({ runId: m[1] ?? '', status: m[2]!, verify: m[3]! }));
}

void test('dbflow serve: the backups page follows the repository (new, pruned, verified, changed), reading only what changed, across a restart', async (t) => {
  const dir = tmpDir(t);
  mkdirSync(path.join(dir, 'pipelines'));
  const file = path.join(dir, 'pipelines', 'lite.yaml');
  writeFileSync(file, sqlitePipeline('lite', 'rpo: 26h'));
  const env = { TEST_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_STATE_DIR: path.join(dir, 'state') };
  const repo = path.join(dir, 'pipelines', 'backups', 'lite');
  const backups = (): string[] =>
    (existsSync(repo) ? readdirSync(repo) : []).filter((f) => existsSync(path.join(repo, f, 'manifest.json')));
  const run = async (): Promise<string> => {
    const before = new Set(backups());
    const r = await dbflow(['run', file, '--quiet'], { cwd: dir, env });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const [made] = backups().filter((b) => !before.has(b));
    assert.ok(made, 'the run published a backup');
    return made;
  };
  const a = await run();
  const b = await run();

  let server = await serve(t, dir, env);
  // The run page draws the plan's edges, as the run recorded them.
  const start = JSON.parse(readFileSync(path.join(dir, 'state', 'runs', a, 'events.jsonl'), 'utf8').split('\n')[0]!) as {
    steps: { id: string; deps: string[] }[];
  };
  assert.deepEqual(start.steps.find((s) => s.id === 'rowcount_check')?.deps.sort(), ['restore_test', 'snapshot']);
  const runPage = await (await fetch(`${server.base}/runs/${a}`)).text();
  assert.match(
    runPage,
    /data-step="rowcount_check"[^>]*><strong>rowcount_check<\/strong><small>rowcount-check · after (restore_test, snapshot|snapshot, restore_test)</,
  );
  assert.deepEqual(await backupRows(server.base), [
    { runId: b, status: 'verified', verify: 'never' },
    { runId: a, status: 'verified', verify: 'never' },
  ]);

  // A new verify record changes the row: an ok one, then a failed one (an artifact's bytes changed, not its size).
  const verifyA = await dbflow(['verify', path.join(repo, a)], { cwd: dir, env });
  assert.equal(verifyA.exitCode, 0, verifyA.stdout + verifyA.stderr);
  const rowsVerified = await backupRows(server.base);
  assert.match(rowsVerified[1]!.verify, /^ok \d{4}-\d\d-\d\dT/);
  assert.equal(rowsVerified[0]!.verify, 'never');
  const artifact = readdirSync(path.join(repo, b)).find((f) => f.endsWith('.pgp'))!;
  const bytes = readFileSync(path.join(repo, b, artifact));
  const middle = bytes.length >> 1;
  bytes[middle] = bytes[middle]! ^ 0xff;
  writeFileSync(path.join(repo, b, artifact), bytes);
  const verifyB = await dbflow(['verify', path.join(repo, b)], { cwd: dir, env });
  assert.notEqual(verifyB.exitCode, 0, 'the changed artifact fails its verify');
  const rowsFailed = await backupRows(server.base);
  assert.equal(rowsFailed[0]!.runId, b);
  assert.equal(rowsFailed[0]!.status, 'damaged');
  assert.match(rowsFailed[0]!.verify, /^FAILED /);

  // A new backup appears; a pruned one goes.
  const c = await run();
  assert.deepEqual(
    (await backupRows(server.base)).map((r) => r.runId),
    [c, b, a],
  );
  const prune = await dbflow(['prune', repo, '--keep-last', '1'], { cwd: dir, env });
  assert.equal(prune.exitCode, 0, prune.stdout + prune.stderr);
  const kept = backups().sort().reverse();
  assert.ok(kept.length < 3 && kept.includes(c), `prune kept ${kept.join(', ')}`);
  assert.deepEqual(
    (await backupRows(server.base)).map((r) => r.runId),
    kept,
  );

  // An unchanged listing entry (same size, same time) is not read again: a manifest's bytes swapped behind the index's
  // back go unseen, and are read as soon as the listing shows a change.
  const manifest = path.join(repo, c, 'manifest.json');
  const original = readFileSync(manifest);
  const { atime, mtime } = statSync(manifest);
  writeFileSync(manifest, ' '.repeat(original.length));
  utimesSync(manifest, atime, mtime);
  assert.equal((await backupRows(server.base))[0]!.runId, c, 'the unchanged entry was answered from the index');
  utimesSync(manifest, atime, new Date(mtime.getTime() + 2000));
  const damaged = await backupRows(server.base);
  assert.equal(damaged[0]!.runId, '', 'the changed manifest was read: it is not one');
  assert.equal(damaged[0]!.status, 'damaged');
  writeFileSync(manifest, original);
  const rows = await backupRows(server.base);
  assert.equal(rows[0]!.runId, c);

  // After a restart, the same page from the index kept in the state folder.
  await server.stop();
  server = await serve(t, dir, env);
  assert.deepEqual(await backupRows(server.base), rows);
  assert.doesNotMatch(server.log(), /damaged/);
});

/** A finished run record (result.json and pipeline.json), as a run leaves it. */
function runRecord(stateDir: string, id: string, pipeline: string, status: string): void {
  const runDir = path.join(stateDir, 'runs', id);
  mkdirSync(runDir, { recursive: true });
  const at = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`;
  writeFileSync(path.join(runDir, 'pipeline.json'), JSON.stringify({ name: pipeline, started_at: at }));
  writeFileSync(
    path.join(runDir, 'result.json'),
    JSON.stringify({ run_id: id, pipeline, status, started_at: at, finished_at: at, duration_ms: 5, steps: {}, summary: {} }),
  );
}

void test('dbflow serve: a damaged run index (not a database, or cut short) is built again from the run records', async (t) => {
  const dir = tmpDir(t);
  mkdirSync(path.join(dir, 'pipelines'));
  const stateDir = path.join(dir, 'state');
  const ids = ['20260101T000000Z-0001', '20260102T000000Z-0002', '20260103T000000Z-0003'];
  ids.forEach((id, i) => runRecord(stateDir, id, i === 1 ? 'b' : 'a', i === 1 ? 'failed' : 'success'));
  const env = { DBFLOW_STATE_DIR: stateDir };
  const listed = async (base: string, query = ''): Promise<string[]> => {
    const res = await fetch(`${base}/runs${query}`);
    assert.equal(res.status, 200);
    return [...(await res.text()).matchAll(/<tr><td><a href="\/runs\/([^"]+)">/g)].map((m) => m[1]!);
  };
  const index = path.join(stateDir, 'runs-index.sqlite');

  let server = await serve(t, dir, env);
  assert.deepEqual(await listed(server.base), [...ids].reverse());
  await server.stop();
  assert.ok(statSync(index).size > 4096);

  // Not a database at all.
  writeFileSync(index, Buffer.alloc(statSync(index).size, 0x5a));
  server = await serve(t, dir, env);
  assert.match(server.log(), /the run index was damaged \(file is not a database\): built again from the run records/);
  assert.deepEqual(await listed(server.base), [...ids].reverse());
  assert.deepEqual(await listed(server.base, '?status=failed'), [ids[1]]);
  await server.stop();

  // Cut short: the header is there, the tables are not.
  truncateSync(index, 4096 * 2);
  server = await serve(t, dir, env);
  assert.match(server.log(), /the run index was damaged \(database disk image is malformed\): built again/);
  assert.deepEqual(await listed(server.base), [...ids].reverse());
  assert.deepEqual(await listed(server.base, '?pipeline=b'), [ids[1]]);
  await server.stop();
});

void test('dbflow serve: wrong tokens from one address are refused with 429 after 5, the right one too, until the window ends', async (t) => {
  const dir = tmpDir(t);
  mkdirSync(path.join(dir, 'pipelines'));
  writeFileSync(path.join(dir, 'pipelines', 'lite.yaml'), sqlitePipeline('lite', 'rpo: 26h'));
  const stateDir = path.join(dir, 'state');
  const server = await serve(t, dir, { DBFLOW_STATE_DIR: stateDir, TEST_PASSPHRASE: OPS_PASSPHRASE }, ['--actions']);
  const signIn = (token: string): Promise<Response> =>
    fetch(`${server.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, next: '/' }).toString(),
    });
  const runNow = (token: string): Promise<Response> =>
    fetch(`${server.base}/actions/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'pipeline=lite',
    });
  // The right token works, and does not count.
  assert.equal((await signIn(TOKEN)).status, 303);
  for (let i = 0; i < 3; i++) assert.equal((await signIn(`wrong-token-number-${i}`)).status, 401);
  for (let i = 0; i < 2; i++) assert.equal((await runNow(`wrong-bearer-number-${i}`)).status, 401);
  // Five wrong ones: now every token from this address is refused before it is compared, the right one too.
  const refused = await signIn(TOKEN);
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.match(await refused.text(), /too many wrong tokens from this address; try again in \d+ s/);
  assert.equal((await runNow(TOKEN)).status, 429);
  assert.equal(existsSync(path.join(stateDir, 'runs')), false, 'nothing ran');
  // Pages that need no token still answer.
  assert.equal((await fetch(`${server.base}/`)).status, 200);
  assert.doesNotMatch(server.log(), new RegExp(TOKEN));
});
