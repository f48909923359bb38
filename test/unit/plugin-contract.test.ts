// The plugin contract version, the adapter of 1.x plugins, and dbflow's errors recognised across copies of dbflow (a plugin's bundled one).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  DbflowError,
  IntegrityError,
  isErrorKind,
  loadPipelineText,
  PLUGIN_CONTRACT,
  PluginError,
  Registry,
  runPipeline,
  UsageError,
  type DatabaseConfig,
  type DatabaseDriver,
  type DriverContext,
  type DriverSnapshot,
  type Plugin,
} from '../../src/index.js';
import { isUserError } from '../../src/errors.js';
import type * as Errors from '../../src/errors.js';
import { checkContract } from '../../src/plugins/contract.js';
import { hasStackTrace } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

// A second copy of the errors module, as a plugin with its own dbflow would have: other classes, same brand.
const other = (await import(`${new URL('../../src/errors.ts', import.meta.url).href}?second-copy`)) as typeof Errors;

describe('the plugin contract version', () => {
  it('dbflow implements 2.0', () => assert.equal(PLUGIN_CONTRACT, '2.0'));

  it('accepts 2.0, and 1.0 and 1.1 (through the adapter), returning the major version', () => {
    for (const [c, major] of [
      ['2.0', 2],
      ['1.1', 1],
      ['1.0', 1],
    ] as const)
      assert.equal(checkContract(c, 'plugin "p" (x)'), major);
    for (const c of ['2.0', '2.2', '2.3', '1.0']) assert.doesNotThrow(() => checkContract(c, 'plugin "p" (x)', ['2.3', '1.1']));
  });

  it('refuses a newer version, an older one without an adapter, a malformed or a missing one, naming both versions and what to do', () => {
    const older =
      /use a version of the plugin written for contract 2\.x \(this dbflow accepts 2\.0, and 1\.0 to 1\.1 through an adapter\)\./;
    const refused: [unknown, RegExp][] = [
      [
        '3.0',
        /plugin "p" \(x\) was written for plugin contract 3\.0, but this dbflow implements contract 2\.0: upgrade dbflow to one that implements contract 3\.0, or use a version of the plugin written for contract 2\.0 or older\./,
      ],
      ['2.1', /written for plugin contract 2\.1, but this dbflow implements contract 2\.0: upgrade dbflow/],
      ['1.2', new RegExp(`written for plugin contract 1\\.2, but this dbflow implements contract 2\\.0: ${older.source}`)],
      ['0.9', new RegExp(`written for plugin contract 0\\.9, but this dbflow implements contract 2\\.0: ${older.source}`)],
      ['2', /declares contract "2", which is not "MAJOR\.MINOR"; declare the contract version/],
      [2.0, /declares contract 2, which is not "MAJOR\.MINOR"/],
      [
        undefined,
        /plugin "p" \(x\) declares no plugin contract; declare the contract version the plugin was written for, e\.g\. contract: "2\.0"/,
      ],
    ];
    for (const [c, message] of refused)
      assert.throws(
        () => checkContract(c, 'plugin "p" (x)'),
        (err) => err instanceof PluginError && message.test(err.message),
        String(c),
      );
  });
});

describe('a plugin written for contract 1.x', () => {
  const ctx = { id: 'step' } as DriverContext;
  const db: DatabaseConfig = { name: 'app', driver: 'old', url: 'old://app', options: {} };
  const snapshot = { info: { driver: 'old' } } as DriverSnapshot;
  const input = Readable.from([]);
  const METHODS = ['snapshot', 'participate', 'dump', 'scratch', 'create', 'exists', 'restore', 'rowCounts', 'reap', 'preflight'];

  // A 1.x driver and codec whose methods record their positional arguments (through `this`, as a 1.x method may).
  function oldPlugin(methods: readonly string[]): { plugin: Plugin; calls: unknown[][] } {
    const calls: unknown[][] = [];
    const driver: Record<string, unknown> = { name: 'old', options: {}, calls };
    for (const m of methods)
      driver[m] = function (this: { calls: unknown[][] }, ...args: unknown[]) {
        this.calls.push([m, ...args]);
        return m === 'stockRestore' ? 'restore it' : Promise.resolve(m);
      };
    const codec = {
      name: 'old',
      decode: (...args: unknown[]) => (calls.push(['decode', ...args]), new Readable()),
    };
    return { plugin: { name: 'old', contract: '1.1', drivers: [driver], codecs: [codec] } as unknown as Plugin, calls };
  }

  it('has its driver and codec called with the 1.x positional parameters', async () => {
    const { plugin, calls } = oldPlugin([...METHODS, 'stockRestore']);
    const registry = new Registry();
    registry.add(plugin, 'test');
    const d = registry.drivers.get('old')!;
    const signal = AbortSignal.abort();
    const log = (): void => undefined;
    const exec = (() => undefined) as unknown as DriverContext['exec'];
    await d.snapshot(ctx, { db });
    await d.participate!(ctx, { db });
    await d.dump(ctx, { db, snapshot });
    await d.scratch(ctx, { db, name: 'scratch' });
    await d.create!(ctx, { db });
    await d.exists!(ctx, { db });
    await d.restore(ctx, { url: 'old://scratch', input, format: 'old-sql', db });
    await d.rowCounts(ctx, { url: 'old://scratch', db });
    await d.rowCounts(ctx, { url: 'old://scratch', db, checksum: 'crc' });
    await d.reap!({ db, prefixes: ['dbflow_x'], signal, log });
    await d.preflight!(ctx, { db, use: { coordinated: true, restoreTest: false } });
    assert.equal(d.stockRestore!({ format: 'old-sql', decoded: 'gpg -d x', database: 'app' }), 'restore it');
    await registry.codecs.get('old')!.decode({ keys: { passphrase: 'p' }, layer: { codec: 'old' }, exec });
    assert.deepEqual(calls, [
      ['snapshot', ctx, db],
      ['participate', ctx, db],
      ['dump', ctx, db, snapshot],
      ['scratch', ctx, db, 'scratch'],
      ['create', ctx, db],
      ['exists', ctx, db],
      ['restore', ctx, 'old://scratch', input, 'old-sql', db],
      ['rowCounts', ctx, 'old://scratch', db, {}],
      ['rowCounts', ctx, 'old://scratch', db, { checksum: 'crc' }],
      ['reap', db, { prefixes: ['dbflow_x'], signal, log }],
      ['preflight', ctx, db, { coordinated: true, restoreTest: false }],
      ['stockRestore', 'old-sql', 'gpg -d x', 'app'],
      ['decode', { passphrase: 'p' }, { codec: 'old' }, exec],
    ]);
  });

  it('keeps the optional methods its driver lacks absent, so that dbflow still knows what the driver can do', () => {
    const registry = new Registry();
    registry.add(oldPlugin(['snapshot', 'dump', 'scratch', 'restore', 'rowCounts']).plugin, 'test');
    const d = registry.drivers.get('old')!;
    for (const m of ['checkUrl', 'stockRestore', 'participate', 'create', 'exists', 'reap', 'preflight']) assert.ok(!(m in d), m);
  });

  it('is refused as before when its driver lacks a required method', () => {
    assert.throws(
      () => new Registry().add(oldPlugin(['snapshot', 'dump', 'scratch', 'restore']).plugin, 'test'),
      /driver "old" of plugin "old" \(test\) has no rowCounts\(\) function\./,
    );
  });

  it('a 2.0 plugin registers its driver as it is', () => {
    const driver = { name: 'new', options: {} } as DatabaseDriver;
    for (const m of METHODS) Object.assign(driver, { [m]: () => Promise.resolve() });
    const registry = new Registry();
    registry.add({ name: 'new', contract: '2.0', drivers: [driver] }, 'test');
    assert.equal(registry.drivers.get('new'), driver);
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
      contract: '2.0',
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
