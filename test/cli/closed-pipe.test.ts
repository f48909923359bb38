// Output into a pipe whose reader has gone (`dbflow runs | head -3`): no EPIPE stack, the command ends as it would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { dbflowNodeArgs, hasStackTrace, repoRoot } from '../helpers/cli.js';
import { writeSlowPipeline } from '../helpers/slow-pipeline.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * `dbflow <args>` with its stdout a pipe whose read end is closed before dbflow writes anything; its stderr and exit
 * code. `tmp`: its temporary folder, so that a run does not find (and report reaping) what other tests' killed
 * processes left in the shared one.
 */
function intoClosedPipe(args: string[], tmp?: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, dbflowNodeArgs(args), {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', CI: 'true', ...(tmp && { TMPDIR: tmp }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.destroy(); // the reader goes away, like `head` after its lines
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('a closed pipe on stdout', () => {
  it('ends `runs` quietly', async (t) => {
    const stateDir = tmpDir(t);
    for (let i = 0; i < 50; i++)
      mkdirSync(path.join(stateDir, 'runs', `20261124T0200${String(i).padStart(2, '0')}Z-abcd`), { recursive: true });
    const r = await intoClosedPipe(['runs', '--limit', '50', '--state-dir', stateDir]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  it('ends `schema` and `plan --json` quietly', async () => {
    for (const args of [['schema'], ['plan', '--json', 'pipelines/quickstart.yaml']]) {
      const r = await intoClosedPipe(args);
      assert.equal(r.stderr, '', args.join(' '));
      assert.equal(r.code, 0, args.join(' '));
    }
  });

  it('lets `run --json` finish its run: the backup is stored and recorded, nothing on stderr', async (t) => {
    const dir = tmpDir(t);
    const target = path.join(dir, 'target');
    const stateDir = path.join(dir, 'state');
    const file = writeSlowPipeline(dir, {
      name: 'small',
      size: 200_000,
      marker: path.join(dir, 'marker'),
      to: `file://${target}/artifact.bin`,
    });
    const tmp = path.join(dir, 'tmp');
    mkdirSync(tmp);
    const r = await intoClosedPipe(['run', '--json', file, '--state-dir', stateDir], tmp);
    assert.equal(hasStackTrace(r.stderr), false, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.ok(existsSync(path.join(target, 'artifact.bin')), 'the artifact was stored');
    const [run] = readdirSync(path.join(stateDir, 'runs'));
    assert.equal(
      (JSON.parse(readFileSync(path.join(stateDir, 'runs', run!, 'result.json'), 'utf8')) as { status: string }).status,
      'success',
    );
    assert.match(readFileSync(path.join(stateDir, 'audit.jsonl'), 'utf8'), /"outcome":"success"/);
  });
});
