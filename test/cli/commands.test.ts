// The CLI commands: help, usage errors, validate, plan/graph goldens, schema drift, plugins, runs.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { dbflow, hasStackTrace, mapLimit, repoRoot } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const GOLDEN = path.join(repoRoot, 'test/fixtures/golden/cli');
const update = process.env.UPDATE_GOLDEN === '1';
const QUICKSTART = 'pipelines/quickstart.yaml';

/** Compare with (or, with UPDATE_GOLDEN=1, write) a golden file. */
function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (update) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `output differs from ${name} (UPDATE_GOLDEN=1 rewrites it)`);
}

describe('help', () => {
  const commands = ['run', 'validate', 'plan', 'graph', 'schema', 'plugins', 'runs', 'watch'];

  it('prints the command list with --help', async () => {
    const r = await dbflow(['--help']);
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /^Usage: dbflow /);
    for (const c of commands) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, 'm'), `--help lists ${c}`);
  });

  it('prints help for every command', async () => {
    const results = await mapLimit(commands, 4, (c) => dbflow([c, '--help']));
    results.forEach((r, i) => {
      const c = commands[i]!;
      assert.equal(r.exitCode, 0, `${c} --help exits 0`);
      assert.match(r.stdout, new RegExp(`^Usage: dbflow ${c}\\b`), `${c} --help shows its usage`);
      assert.equal(r.stderr, '');
    });
  });

  it('prints the version', async () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const r = await dbflow(['--version']);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, `${pkg.version}\n`);
  });
});

describe('usage errors exit 2', () => {
  it('on an unknown command', async () => {
    const r = await dbflow(['rnu', 'x.yaml']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /unknown command 'rnu'/);
    assert.equal(hasStackTrace(r.stderr), false);
  });

  it('on an unknown option', async () => {
    const r = await dbflow(['validate', '--frobnicate', QUICKSTART]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /unknown option '--frobnicate'/);
  });

  it('on a missing argument', async () => {
    const r = await dbflow(['plan']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /missing required argument 'pipeline'/);
  });

  it('on a pipeline file that does not exist', async () => {
    const r = await dbflow(['validate', 'pipelines/no-such-pipeline.yaml']);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stderr, 'dbflow: pipeline file "pipelines/no-such-pipeline.yaml" does not exist.\n');
  });

  it('on a bad graph format', async () => {
    const r = await dbflow(['graph', '--format', 'svg', QUICKSTART]);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stderr, 'dbflow: --format must be "mermaid" or "dot", not "svg".\n');
  });

  it('on a bad --limit', async (t) => {
    const r = await dbflow(['runs', '--limit', 'zero', '--state-dir', tmpDir(t)]);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stderr, 'dbflow: --limit must be a positive integer, not "zero".\n');
  });
});

describe('validate, plan and graph of the quickstart', () => {
  it('validates', async () => {
    const r = await dbflow(['validate', QUICKSTART]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^pipelines\/quickstart\.yaml: ok \(\d+ steps\)\n$/);
  });

  it('validates to JSON', async () => {
    const r = await dbflow(['validate', '--json', QUICKSTART]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { file: QUICKSTART, ok: true });
  });

  it('reports a bad file among good ones, and exits 2', async () => {
    const r = await dbflow(['validate', '--json', QUICKSTART, 'test/fixtures/invalid/21-unknown-uses.yaml']);
    assert.equal(r.exitCode, 2);
    const out = JSON.parse(r.stdout) as { file: string; ok: boolean; problems?: { line: number; message: string }[] }[];
    assert.deepEqual(
      out.map((o) => o.ok),
      [true, false],
    );
    assert.match(out[1]?.problems?.[0]?.message ?? '', /unknown step type "snapshto"\. Did you mean "snapshot"\?/);
  });

  it('plans', async () => {
    const r = await dbflow(['plan', QUICKSTART]);
    assert.equal(r.exitCode, 0, r.stderr);
    golden('quickstart.plan.txt', r.stdout);
  });

  it('plans to JSON', async () => {
    const r = await dbflow(['plan', '--json', QUICKSTART]);
    assert.equal(r.exitCode, 0, r.stderr);
    golden('quickstart.plan.json', r.stdout);
    const plan = JSON.parse(r.stdout) as { pipeline: string; units: { key: string; steps: { id: string }[] }[] };
    assert.equal(plan.pipeline, 'quickstart');
    assert.ok(
      plan.units.some((u) => u.steps.length > 1),
      'the dump → … → upload chain is one unit',
    );
  });

  it('draws a mermaid graph', async () => {
    const r = await dbflow(['graph', '--format', 'mermaid', QUICKSTART]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^flowchart LR\n/);
    golden('quickstart.graph.mermaid', r.stdout);
  });

  it('draws a dot graph', async () => {
    const r = await dbflow(['graph', '--format', 'dot', QUICKSTART]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^digraph "quickstart" \{\n/);
    golden('quickstart.graph.dot', r.stdout);
  });
});

describe('schema', () => {
  it('prints the pipeline schema, equal to schemas/pipeline.schema.json', async () => {
    const r = await dbflow(['schema']);
    assert.equal(r.exitCode, 0, r.stderr);
    const schema = JSON.parse(r.stdout) as { $id: string; $defs: { step: { allOf: unknown[] } } };
    assert.equal(schema.$id, 'https://dbflow.dev/schemas/pipeline.schema.json');
    assert.ok(schema.$defs.step.allOf.length > 0, 'with each step type\'s "with"');
    const committed = readFileSync(path.join(repoRoot, 'schemas/pipeline.schema.json'), 'utf8');
    assert.equal(r.stdout, committed, 'schemas/pipeline.schema.json is stale: run `npm run schemas`');
  });

  it('prints the manifest schema, equal to schemas/manifest.schema.json', async () => {
    const r = await dbflow(['schema', '--manifest']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { $id: string }).$id, 'https://dbflow.dev/schemas/manifest.schema.json');
    const committed = readFileSync(path.join(repoRoot, 'schemas/manifest.schema.json'), 'utf8');
    assert.equal(r.stdout, committed, 'schemas/manifest.schema.json is stale: run `npm run schemas`');
  });
});

describe('plugins', () => {
  it('lists the built-in plugins and their steps as JSON', async () => {
    const r = await dbflow(['plugins', '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const plugins = JSON.parse(r.stdout) as {
      name: string;
      from: string;
      steps: { uses: string; kind: string; with: unknown }[];
      drivers: string[];
      storages: string[];
    }[];
    const steps = new Map(plugins.flatMap((p) => p.steps.map((s) => [s.uses, s] as const)));
    for (const uses of ['snapshot', 'dump', 'compress', 'encrypt', 'upload', 'restore-test', 'rowcount-check']) {
      assert.ok(steps.has(uses), `the built-in step "${uses}" is listed`);
      assert.equal(typeof steps.get(uses)?.with, 'object', `"${uses}" comes with its with schema`);
    }
    assert.equal(steps.get('dump')?.kind, 'source');
    assert.equal(steps.get('upload')?.kind, 'sink');
    assert.ok(plugins.every((p) => p.from === 'dbflow'));
    assert.ok(plugins.some((p) => p.drivers.includes('sqlite')));
    assert.ok(plugins.some((p) => p.storages.includes('file')));
  });

  it('lists the plugins a pipeline adds', async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, 'with-plugin.yaml');
    writeFileSync(
      file,
      `version: 1\nname: with-plugin\nplugins:\n  - ${path.join(repoRoot, 'test/fixtures/plugins/slow-chain.ts')}\nsteps:\n  - id: src\n    uses: slow-bytes\n    with: { size: 1, chunk: 1, delay_ms: 0, marker: x }\n  - id: up\n    uses: upload\n    input: src\n    with: { to: "file://${dir}/out.bin" }\n`,
    );
    const r = await dbflow(['plugins', '--pipeline', file]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^slow-chain-fixture {2}\(.*slow-chain\.ts\)\n {2}step {4}slow-bytes {7}source /m);
  });
});

describe('runs', () => {
  it('says so when there are no runs yet', async (t) => {
    const dir = tmpDir(t);
    const r = await dbflow(['runs', '--state-dir', dir]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'no runs yet: start one with `dbflow run <pipeline.yaml>`\n');
    const json = await dbflow(['runs', '--json', '--state-dir', dir]);
    assert.deepEqual(JSON.parse(json.stdout), []);
  });
});
