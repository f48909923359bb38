// The plugin contract version, and dbflow's errors recognised across copies of dbflow (a plugin's bundled one).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  DbflowError,
  IntegrityError,
  isErrorKind,
  loadPipelineText,
  PLUGIN_CONTRACT,
  PluginError,
  runPipeline,
  UsageError,
} from '../../src/index.js';
import { isUserError } from '../../src/errors.js';
import type * as Errors from '../../src/errors.js';
import { checkContract } from '../../src/plugins/contract.js';
import { hasStackTrace } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

// A second copy of the errors module, as a plugin with its own dbflow would have: other classes, same brand.
const other = (await import(`${new URL('../../src/errors.ts', import.meta.url).href}?second-copy`)) as typeof Errors;

describe('the plugin contract version', () => {
  it('dbflow implements 1.1', () => assert.equal(PLUGIN_CONTRACT, '1.1'));

  it('accepts the same version and older minor versions of the same major', () => {
    for (const c of ['1.0', '1.2', '1.3']) assert.doesNotThrow(() => checkContract(c, 'plugin "p" (x)', '1.3'));
  });

  it('refuses another major, a newer minor, a malformed or a missing version, naming both versions and what to do', () => {
    const refused: [unknown, RegExp][] = [
      [
        '2.0',
        /plugin "p" \(x\) was written for plugin contract 2\.0, but this dbflow implements contract 1\.3: upgrade dbflow to one that implements contract 2\.0, or use a version of the plugin written for contract 1\.3 or older\./,
      ],
      ['1.4', /written for plugin contract 1\.4, but this dbflow implements contract 1\.3: upgrade dbflow/],
      [
        '0.9',
        /written for plugin contract 0\.9, but this dbflow implements contract 1\.3: use a version of the plugin written for contract 1\.x \(this dbflow accepts 1\.0 to 1\.3\)\./,
      ],
      ['1', /declares contract "1", which is not "MAJOR\.MINOR"; declare the contract version/],
      [1.0, /declares contract 1, which is not "MAJOR\.MINOR"/],
      [
        undefined,
        /plugin "p" \(x\) declares no plugin contract; declare the contract version the plugin was written for, e\.g\. contract: "1\.3"/,
      ],
    ];
    for (const [c, message] of refused)
      assert.throws(
        () => checkContract(c, 'plugin "p" (x)', '1.3'),
        (err) => err instanceof PluginError && message.test(err.message),
      );
  });
});

describe('error kinds across copies of dbflow', () => {
  it('knows an error of another copy by its brand, with its kind and exit code', () => {
    assert.notEqual(other.DbflowError, DbflowError, 'a second copy');
    const integrity = new other.IntegrityError('bad bytes');
    assert.ok(!(integrity instanceof DbflowError));
    assert.ok(isUserError(integrity));
    assert.ok(isErrorKind(integrity, IntegrityError));
    assert.ok(isErrorKind(integrity, DbflowError));
    assert.ok(!isErrorKind(integrity, UsageError));
    assert.equal(new other.UsageError('x').exitCode, 2);
    assert.ok(isUserError(new other.UsageError('x')));
    for (const e of [new Error('x'), 'x', undefined, null, { name: 'DbflowError' }]) assert.ok(!isUserError(e));
  });

  it("a step that throws another copy's DbflowError fails as a user error: no stack in the step's log", async (t) => {
    const stateDir = tmpDir(t);
    const plugin = {
      name: 'copy',
      contract: '1.0',
      steps: [
        {
          uses: 'refuse',
          kind: 'task' as const,
          description: 'Throws a DbflowError of another copy of dbflow.',
          with: { type: 'object', additionalProperties: false },
          run: () => Promise.reject(new other.DbflowError('refuse: nothing to do here')),
        },
      ],
    };
    const loaded = await loadPipelineText('copy.yaml', 'version: 1\nname: copy\nsteps:\n  - { id: r, uses: refuse }\n', stateDir, {
      plugins: [plugin],
    });
    const result = await runPipeline(loaded, { stateDir });
    assert.equal(result.status, 'failed');
    assert.equal(result.steps.get('r')?.error, 'refuse: nothing to do here');
    const logs = path.join(stateDir, 'runs', result.runId, 'logs');
    const text = readdirSync(logs)
      .map((f) => readFileSync(path.join(logs, f), 'utf8'))
      .join('\n');
    assert.match(text, /refuse: nothing to do here/);
    assert.ok(!hasStackTrace(text), text);
  });
});
