// `dbflow serve` in a real browser (Debian's chromium through playwright-core): freshness, a live run, guarded actions.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { repoRoot, dbflow, spawnDbflow } from '../helpers/cli.js';
import { OPS_PASSPHRASE, OPS_STEPS_PLUGIN, sqlitePipeline } from '../helpers/ops.js';
import { requirePostgres, scratchDatabase } from '../helpers/postgres.js';
import { endOf, waitFor } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

const CHROMIUM = process.env.DBFLOW_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.DBFLOW_TEST_SCREENSHOTS ?? path.join(repoRoot, 'test-results', 'dashboard');
const TOKEN = 'dashboard-test-token-0123456789';

/** A SQLite pipeline whose first step waits until the file `gate` exists, so a test sees its steps change state. */
function gatedPipeline(name: string, gate: string, extra: string): string {
  return sqlitePipeline(name, `plugins: [${JSON.stringify(OPS_STEPS_PLUGIN)}]\n${extra}`).replace(
    '  - id: seed\n    uses: sqlite-seed\n',
    `  - id: gate\n    uses: sleep\n    with: { ms: 600000, until_file: ${JSON.stringify(gate)} }\n  - id: seed\n    uses: sqlite-seed\n    needs: gate\n`,
  );
}

function pgPipeline(name: string, url: string): string {
  return `version: 1
name: ${name}
schedule: "0 2 * * *"
rpo: 26h
secrets:
  passphrase: { env: TEST_PASSPHRASE }
vars:
  repo: file://./backups/{{ pipeline.name }}
databases:
  app: { driver: postgres, url: ${JSON.stringify(url)} }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "{{ vars.repo }}/{{ run.id }}/app.dump.zst.pgp" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

void test('dbflow serve: freshness (stale first), a run started with the token updates live and ends verified; actions refused without it', async (t) => {
  if (!(await requirePostgres(t))) return;
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
    t.skip(`no browser at ${CHROMIUM}`);
    return;
  }
  const db = await scratchDatabase(t);
  await db.pool.query(
    'CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g',
  );
  const dir = tmpDir(t);
  const pipelines = path.join(dir, 'pipelines');
  mkdirSync(pipelines);
  const gate = path.join(dir, 'gate');
  writeFileSync(gate, '');
  writeFileSync(path.join(pipelines, 'lite.yaml'), gatedPipeline('lite', gate, 'schedule: "0 3 * * *"\nrpo: 26h'));
  writeFileSync(path.join(pipelines, 'old.yaml'), sqlitePipeline('old', 'rpo: 1s'));
  writeFileSync(path.join(pipelines, 'pg.yaml'), pgPipeline('pg', db.url));
  const env = { TEST_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_STATE_DIR: path.join(dir, 'state') };
  const runs = (): string[] => (existsSync(path.join(dir, 'state', 'runs')) ? readdirSync(path.join(dir, 'state', 'runs')) : []);
  for (const p of ['old', 'lite', 'pg']) {
    const r = await dbflow(['run', path.join(pipelines, `${p}.yaml`)], { cwd: dir, env });
    assert.equal(r.exitCode, 0, `${p}: ${r.stdout}${r.stderr}`);
  }
  await new Promise((r) => setTimeout(r, 1500)); // "old" is now past its rpo of 1s

  const serve = spawnDbflow(['serve', pipelines, '--listen', '127.0.0.1:0', '--actions'], {
    cwd: dir,
    env: { ...env, DBFLOW_DASHBOARD_TOKEN: TOKEN, DBFLOW_PASSPHRASE: OPS_PASSPHRASE },
  });
  t.after(() => serve.kill('SIGTERM'));
  let log = '';
  serve.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const base = await waitFor('the dashboard to listen', () => /dashboard on (http:\/\/[\d.]+:\d+)\//.exec(log)?.[1], 60_000, endOf(serve));
  assert.doesNotMatch(log, new RegExp(TOKEN), 'the token is never logged');

  mkdirSync(SHOTS, { recursive: true });
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);

  // Overview: every pipeline's freshness, the stale one first; no actions before signing in.
  await page.goto(`${base}/`);
  const order = await page
    .locator('tr[data-pipeline]')
    .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { pipeline?: string } }).dataset.pipeline));
  assert.equal(order[0], 'old');
  assert.deepEqual([...order].sort(), ['lite', 'old', 'pg']);
  assert.equal((await page.locator('tr[data-pipeline="old"] .state').first().textContent())?.trim(), 'STALE');
  assert.equal((await page.locator('tr[data-pipeline="lite"] .state').first().textContent())?.trim(), 'fresh');
  assert.equal((await page.locator('tr[data-pipeline="pg"] .state').first().textContent())?.trim(), 'fresh');
  assert.equal(await page.getByRole('button', { name: /run .* now/i }).count(), 0);
  await page.screenshot({ path: path.join(SHOTS, 'overview.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(SHOTS, 'overview-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1200, height: 900 });

  // Without the token: refused, and nothing runs.
  const before = runs().length;
  const anonymous = await fetch(`${base}/actions/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'pipeline=lite',
  });
  assert.equal(anonymous.status, 401);
  const wrong = await fetch(`${base}/actions/run`, { method: 'POST', headers: { authorization: 'Bearer not-the-token-at-all' }, body: '' });
  assert.equal(wrong.status, 401);

  // Sign in with the token, through the form.
  await page.goto(`${base}/login`);
  await page.screenshot({ path: path.join(SHOTS, 'login.png'), fullPage: true });
  await page.getByLabel('Access token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'dbflow_session');
  assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Strict', JSON.stringify(cookies));

  // A forged cross-site POST, with the session cookie: refused.
  const cookieHeader = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const forged = await fetch(`${base}/actions/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader, origin: 'http://evil.example' },
    body: 'pipeline=lite',
  });
  assert.equal(forged.status, 403);
  const noCsrf = await fetch(`${base}/actions/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader },
    body: 'pipeline=lite',
  });
  assert.equal(noCsrf.status, 403);
  assert.equal(runs().length, before, 'no run was started');

  // Run now: the run's page opens and its steps change state live, without a reload, until it ends verified.
  rmSync(gate);
  await page.getByRole('button', { name: 'Run lite now' }).click();
  await page.waitForURL(/\/runs\/\d{8}T\d{6}Z-[0-9a-f]{4}$/);
  await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true));
  await page.locator('[data-step="gate"][data-status="running"]').waitFor();
  assert.equal(await page.locator('[data-step="rowcount_check"]').getAttribute('data-status'), 'pending');
  await page.screenshot({ path: path.join(SHOTS, 'run-live.png'), fullPage: true });
  writeFileSync(gate, '');
  await page.locator('[data-step="upload"][data-status="success"]').waitFor({ timeout: 120_000 });
  await page.locator('#run-status', { hasText: 'success · verified' }).waitFor({ timeout: 120_000 });
  assert.equal(await page.locator('[data-step="rowcount_check"]').getAttribute('data-status'), 'success');
  assert.equal(
    await page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce),
    true,
    'the page was not reloaded',
  );
  assert.equal(runs().length, before + 1);
  await page.reload();
  await page.getByRole('heading', { name: 'Restore without dbflow' }).waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'run.png'), fullPage: true });

  // Runs, filtered; backups; restore instructions.
  await page.goto(`${base}/runs`);
  await page.getByLabel('Pipeline').selectOption('pg');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/pipeline=pg/);
  assert.equal(await page.locator('tbody tr').count(), 1);
  await page.screenshot({ path: path.join(SHOTS, 'runs.png'), fullPage: true });
  await page.goto(`${base}/backups`);
  await page.getByLabel('Repository').selectOption({ index: 0 });
  assert.ok((await page.locator('tbody tr').count()) >= 1);
  await page.screenshot({ path: path.join(SHOTS, 'backups.png'), fullPage: true });
  await page.getByRole('button', { name: 'Restore…' }).first().click();
  await page.getByRole('heading', { name: 'Without dbflow' }).waitFor();
  assert.match(await page.locator('pre').first().innerText(), /^dbflow restore /);
  await page.screenshot({ path: path.join(SHOTS, 'restore.png'), fullPage: true });

  // Verify now: `dbflow verify` runs, and its result shows on the backups page.
  await page.goto(`${base}/backups`);
  const firstRow = page.locator('tbody tr').first();
  assert.equal((await firstRow.locator('td').nth(5).innerText()).trim(), 'never');
  await firstRow.getByRole('button', { name: /verify .* now/i }).click();
  await page.getByText(/dbflow verify .* started/).waitFor();
  await waitFor(
    'the verify result on the backups page',
    async () => {
      await page.goto(`${base}/backups`);
      return /^ok /.test((await page.locator('tbody tr').first().locator('td').nth(5).innerText()).trim());
    },
    120_000,
  );
  await page.screenshot({ path: path.join(SHOTS, 'backups-verified.png'), fullPage: true });

  // Signing out ends the session: the actions are gone, and the old cookie opens nothing.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/`);
  assert.equal(await page.getByRole('button', { name: /run .* now/i }).count(), 0);
  const stale = await fetch(`${base}/actions/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader },
    body: 'pipeline=lite',
  });
  assert.equal(stale.status, 401);
  assert.doesNotMatch(log, new RegExp(TOKEN), 'the token is never logged');
});

void test('dbflow serve: a bad --listen, and actions without a token, are usage errors (exit 2)', async () => {
  const dir = tmpDir();
  mkdirSync(path.join(dir, 'pipelines'));
  const bad = await dbflow(['serve', 'pipelines', '--listen', 'localhost'], { cwd: dir });
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /--listen must be host:port .* not "localhost"/);
  const noToken = await dbflow(['serve', 'pipelines', '--actions'], { cwd: dir, env: { DBFLOW_DASHBOARD_TOKEN: undefined } });
  assert.equal(noToken.exitCode, 2);
  assert.match(noToken.stderr, /--actions needs a token: set DBFLOW_DASHBOARD_TOKEN or pass --token-file/);
  const short = await dbflow(['serve', 'pipelines', '--actions'], { cwd: dir, env: { DBFLOW_DASHBOARD_TOKEN: 'short' } });
  assert.equal(short.exitCode, 2);
  assert.match(short.stderr, /the token in \$DBFLOW_DASHBOARD_TOKEN is too short/);

  // --auth-all: the pages need a session or the token too.
  const guarded = spawnDbflow(['serve', 'pipelines', '--listen', '127.0.0.1:0', '--auth-all'], {
    cwd: dir,
    env: { DBFLOW_DASHBOARD_TOKEN: TOKEN },
  });
  let guardedLog = '';
  guarded.stderr.on('data', (c: Buffer) => (guardedLog += c.toString()));
  try {
    const base = await waitFor('the dashboard', () => /dashboard on (http:\/\/[\d.]+:\d+)\//.exec(guardedLog)?.[1], 60_000, endOf(guarded));
    const anonymous = await fetch(`${base}/runs`, { redirect: 'manual' });
    assert.equal(anonymous.status, 302);
    assert.equal(anonymous.headers.get('location'), '/login?next=%2Fruns');
    assert.equal((await fetch(`${base}/runs`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    const actions = await fetch(`${base}/actions/run`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(actions.status, 403, 'actions stay off without --actions');
  } finally {
    guarded.kill('SIGTERM');
  }

  // Not on loopback: it says so, loudly.
  const open = spawnDbflow(['serve', 'pipelines', '--listen', '0.0.0.0:0'], { cwd: dir });
  let said = '';
  open.stderr.on('data', (c: Buffer) => (said += c.toString()));
  try {
    await waitFor('the warning', () => /WARNING: the dashboard listens on 0\.0\.0\.0, not on loopback/.test(said), 60_000, endOf(open));
  } finally {
    open.kill('SIGTERM');
  }
  assert.equal((await open).exitCode, 0, said);
});
