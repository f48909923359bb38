// SIGINT during a streaming run: exit 130, cleanup ran, no artifact published, run recorded as cancelled.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { hasStackTrace, repoRoot, spawnDbflow } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

async function waitFor(file: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${file}`);
    await delay(25);
  }
}

describe('dbflow run, interrupted', () => {
  it('stops on SIGINT: exit 130, cleanup ran, no artifact, result.json says cancelled', async (t) => {
    const dir = tmpDir(t);
    const target = path.join(dir, 'target');
    const stateDir = path.join(dir, 'state');
    const marker = path.join(dir, 'marker');
    mkdirSync(target);
    const plugin = path.join(repoRoot, 'test/fixtures/plugins/slow-chain.ts');
    const file = path.join(dir, 'slow.yaml');
    writeFileSync(
      file,
      `version: 1
name: slow
plugins:
  - ${JSON.stringify(plugin)}
steps:
  - id: produce
    uses: slow-bytes
    with: { size: 100000000, chunk: 4096, delay_ms: 10, marker: ${JSON.stringify(marker)} }
  - id: store
    uses: upload
    input: produce
    with: { to: ${JSON.stringify(`file://${target}/artifact.bin`)} }
`,
    );

    const child = spawnDbflow(['run', file, '--state-dir', stateDir]);
    try {
      await waitFor(`${marker}.started`, 30_000);
      await delay(300); // mid-stream
      assert.equal(child.exitCode, null, 'still running when interrupted');
      child.kill('SIGINT');
      const r = await child;
      const stderr = String(r.stderr);
      assert.equal(r.exitCode, 130, `exit code 130; stderr:\n${stderr}`);
      assert.match(stderr, /dbflow: SIGINT: stopping/);
      assert.equal(hasStackTrace(stderr), false, stderr);

      assert.ok(existsSync(`${marker}.cleanup`), 'the cleanup of the source ran');
      assert.equal(readFileSync(`${marker}.cleanup`, 'utf8'), 'produce\n', 'exactly once');
      assert.deepEqual(readdirSync(target), [], 'nothing was published in the target folder');

      const runs = readdirSync(path.join(stateDir, 'runs'));
      assert.equal(runs.length, 1);
      const result = JSON.parse(readFileSync(path.join(stateDir, 'runs', runs[0]!, 'result.json'), 'utf8')) as {
        status: string;
        steps: Record<string, { status: string }>;
      };
      assert.equal(result.status, 'cancelled');
      assert.deepEqual(result.steps, {
        produce: { ...result.steps.produce, status: 'cancelled' },
        store: { ...result.steps.store, status: 'cancelled' },
      });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
