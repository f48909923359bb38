// The conformance suites catch what they claim to: plugins that break the contract on purpose fail exactly the cases
// about what they break (each suite runs in its own node --test process, as a plugin author runs it).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { repoRoot } from '../helpers/cli.js';

// The verdict of every case of a suite run with `node --test` on `fixture`: title → passed.
async function verdicts(fixture: string): Promise<Map<string, boolean>> {
  const file = path.join(repoRoot, 'test', 'fixtures', 'conformance', fixture);
  // A run of its own, not a subtest of this one: without the variable node:test marks its children with.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = await execa(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], {
    cwd: repoRoot,
    env,
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  });
  assert.equal(run.exitCode, 1, `the broken plugin fails its suite:\n${run.stdout}\n${run.stderr}`);
  const found = new Map<string, boolean>();
  // Cases are the subtests of the suite: indented once.
  for (const m of run.stdout.matchAll(/^ {4}(not ok|ok) \d+ - (.+?)(?: # SKIP.*)?$/gm)) found.set(m[2]!, m[1] === 'ok');
  return found;
}

// The titles of the cases that failed, by the start of their titles.
function failed(found: Map<string, boolean>): string[] {
  return [...found].filter(([, ok]) => !ok).map(([title]) => title.split(/[:;(]/)[0]!.trim());
}

void test('a storage that writes in place, ignores aborts, lists one level and reads missing objects as empty fails those cases', async () => {
  const found = await verdicts('broken-storage.ts');
  assert.equal(found.size, 11, [...found.keys()].join('\n'));
  assert.deepEqual(failed(found), [
    'an object is not visible while its put streams',
    "a body that fails mid-stream rejects the put with the body's error and leaves nothing",
    'an aborted put rejects promptly, destroys its body and leaves nothing',
    'overwriting replaces an object atomically',
    'list',
    'delete removes an object',
    'get of a missing object rejects with a RepositoryError that names the URL',
    'names with spaces and non-ASCII characters round-trip through put, get, list and delete',
    'a signal aborted before get, list or delete rejects it with its reason and changes nothing',
  ]);
});

void test('a codec whose decoder holds its input and checks nothing fails damage detection and memory', async () => {
  const found = await verdicts('broken-codec.ts');
  assert.deepEqual(failed(found), [
    'a flipped byte in the middle of the encoded data is detected',
    'a truncated tail is detected',
    'decoding streams',
  ]);
});

void test('a driver whose dump reads the live database, whose drop() keeps the database and whose release() throws the second time fails those cases', async () => {
  const found = await verdicts('broken-driver.ts');
  assert.deepEqual(failed(found), [
    'writes made after the snapshot, also while its dump runs, are neither in its counts nor in its dump',
    'a restore whose input fails at its end rejects, and its scratch database is dropped all the same',
    'scratch databases',
    'a snapshot released after its dump was abandoned, or released twice, lets go of everything',
  ]);
});
