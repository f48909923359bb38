// What a successful run ends with: RunOptions.finish (the backup layer's publishBackup by default).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { FinishedRun } from '../../src/index.js';
import { prepare, run, yaml } from './helpers.js';

describe('RunOptions.finish', () => {
  const steps = `  - { id: a, uses: noop }
  - { id: b, uses: fail, needs: [a], continue_on_error: true, with: { message: tolerated } }
`;

  it('is called once, after every step, with the run; what it returns is the summary’s manifest', async (t) => {
    const p = await prepare(t, yaml(steps));
    const calls: FinishedRun[] = [];
    const { result } = await run(p, {
      finish: (finished) => {
        calls.push(finished);
        return Promise.resolve('memory://backups/manifest.json');
      },
    });
    assert.equal(result.status, 'success', result.error);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.run.id, result.runId);
    assert.equal(calls[0]!.pipeline.name, p.loaded.pipeline.name);
    assert.ok(calls[0]!.run.finishedAt >= calls[0]!.run.startedAt);
    assert.equal(result.summary.manifest, 'memory://backups/manifest.json');
    const recorded = JSON.parse(readFileSync(path.join(result.dir, 'result.json'), 'utf8')) as { summary: { manifest?: string } };
    assert.equal(recorded.summary.manifest, 'memory://backups/manifest.json');
  });

  it('fails the run with what it throws, and is not called for a failed run', async (t) => {
    const thrown = await run(await prepare(t, yaml(steps)), {
      finish: () => Promise.reject(new Error('the repository went away')),
    });
    assert.equal(thrown.result.status, 'failed');
    assert.equal(thrown.result.error, 'writing the manifest failed: the repository went away');
    let called = false;
    const failing = await run(await prepare(t, yaml(`  - { id: a, uses: fail, with: { message: broken } }\n`)), {
      finish: () => {
        called = true;
        return Promise.resolve(undefined);
      },
    });
    assert.equal(failing.result.status, 'failed');
    assert.equal(called, false);
  });
});
