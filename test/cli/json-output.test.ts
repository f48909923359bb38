// Every `--json` output names its keys in snake_case (docs/json-output.md), the run's event lines included.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { writeSlowPipeline } from '../helpers/slow-pipeline.js';
import { tmpDir } from '../helpers/tmp.js';

// Values under these keys are not dbflow's to name: `with`, `outputs` (a plugin's data and schemas), `matrix` (the user's).
const FOREIGN = new Set(['with', 'outputs', 'matrix']);

/** Every key of `value` that is not snake_case, as a JSON path. */
function notSnakeCase(value: unknown, at = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => notSnakeCase(v, `${at}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => [
    ...(/^[a-z][a-z0-9_]*$/.test(k) ? [] : [`${at}.${k}`]),
    ...(FOREIGN.has(k) ? [] : notSnakeCase(v, `${at}.${k}`)),
  ]);
}

describe('--json outputs', () => {
  it('use snake_case keys in every command', async (t) => {
    const dir = tmpDir(t);
    const stateDir = path.join(dir, 'state');
    const repo = `file://${dir}/repo`;
    const file = writeSlowPipeline(dir, {
      name: 'small',
      size: 100_000,
      marker: path.join(dir, 'marker'),
      to: `${repo}/{{ run.id }}/artifact.bin`,
    });
    const run = await dbflow(['run', '--json', file, '--state-dir', stateDir]);
    assert.equal(run.exitCode, 0, run.stderr);
    const events = run.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    assert.deepEqual([events[0]?.type, events.at(-1)?.type], ['run:start', 'run:end']);
    assert.ok(
      events.some((e) => e.type === 'step:end' && 'duration_ms' in e),
      run.stdout,
    );

    const outputs: [string, string[]][] = [['run --json', events.flatMap((e, i) => notSnakeCase(e, `$line${i + 1}`))]];
    for (const args of [
      ['validate', '--json', file],
      ['plan', '--json', file],
      ['plugins', '--json', '--pipeline', file],
      ['runs', '--json', '--state-dir', stateDir],
      ['status', '--json', file, '--state-dir', stateDir],
      ['backups', 'list', '--json', repo],
      ['prune', '--json', '--dry-run', '--keep-last', '1', repo, '--state-dir', stateDir],
    ]) {
      const r = await dbflow(args);
      assert.equal(r.exitCode, 0, `${args.join(' ')}: ${r.stderr}`);
      outputs.push([args.join(' '), notSnakeCase(JSON.parse(r.stdout))]);
    }
    assert.deepEqual(
      outputs.filter(([, bad]) => bad.length),
      [],
      'keys that are not snake_case',
    );

    const [listed] = JSON.parse((await dbflow(['runs', '--json', '--state-dir', stateDir])).stdout) as Record<string, unknown>[];
    assert.deepEqual(Object.keys(listed ?? {}), ['run_id', 'pipeline', 'status', 'started_at', 'duration_ms', 'dir']);
  });
});
