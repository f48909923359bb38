// Every broken pipeline under test/fixtures/invalid/ through `dbflow validate`: exit 2 and the exact
// error text pinned in test/fixtures/golden/invalid/. Regenerate the goldens with UPDATE_GOLDEN=1.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { dbflow, hasStackTrace, mapLimit, repoRoot, type CliResult } from '../helpers/cli.js';

const FIXTURES = 'test/fixtures/invalid';
const GOLDEN = path.join(repoRoot, 'test/fixtures/golden/invalid');
const update = process.env.UPDATE_GOLDEN === '1';

// Variables that fixtures expect to be unset, whatever the environment of the test run.
const UNSET = ['DBFLOW_TEST_UNSET_DB_PATH_3c9e', 'DBFLOW_TEST_UNSET_PASSPHRASE_8b1d', 'DBFLOW_TEST_PASSPHRASE'];

const fixtures = readdirSync(path.join(repoRoot, FIXTURES))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('the invalid-pipeline corpus', () => {
  const results = new Map<string, CliResult>();

  before(async () => {
    const env = Object.fromEntries(UNSET.map((v) => [v, undefined]));
    const ran = await mapLimit(fixtures, 4, (f) => dbflow(['validate', `${FIXTURES}/${f}`], { env }));
    fixtures.forEach((f, i) => results.set(f, ran[i]!));
    if (update) {
      mkdirSync(GOLDEN, { recursive: true });
      for (const [f, r] of results) writeFileSync(path.join(GOLDEN, f.replace(/\.yaml$/, '.txt')), r.stderr);
    }
  });

  it('has at least 45 fixtures, each named NN-short-name.yaml with a golden file', () => {
    assert.ok(fixtures.length >= 45, `only ${fixtures.length} fixtures`);
    for (const f of fixtures) {
      assert.match(f, /^\d{2}-[a-z0-9-]+\.yaml$/);
      assert.ok(existsSync(path.join(GOLDEN, f.replace(/\.yaml$/, '.txt'))), `${f} has no golden file; run with UPDATE_GOLDEN=1`);
    }
    const goldens = readdirSync(GOLDEN).map((g) => g.replace(/\.txt$/, '.yaml'));
    assert.deepEqual(
      goldens.filter((g) => !fixtures.includes(g)),
      [],
      'every golden file has its fixture',
    );
  });

  for (const f of fixtures) {
    it(f, () => {
      const r = results.get(f);
      assert.ok(r, 'the fixture was validated');
      const file = `${FIXTURES}/${f}`;
      assert.equal(r.exitCode, 2, `exit code 2 for ${file}; stderr:\n${r.stderr}`);
      assert.equal(r.stdout, '', 'nothing on stdout');
      assert.ok(r.stderr.startsWith(`${file}:`), `the first line points into the fixture:\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: `, 'm'));
      assert.match(r.stderr, /\n\ndbflow: \d+ problems? in the pipeline; nothing was run\.\n$/);
      assert.equal(hasStackTrace(r.stderr), false, `no stack trace:\n${r.stderr}`);
      const golden = readFileSync(path.join(GOLDEN, f.replace(/\.yaml$/, '.txt')), 'utf8');
      assert.equal(r.stderr, golden, `stderr of ${file} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)`);
    });
  }

  it('reports every problem of a file in one pass', () => {
    const r = results.get('50-many-problems.yaml');
    assert.ok(r);
    const heads = r.stderr.match(/^test\/fixtures\/invalid\/50-many-problems\.yaml:\d+:\d+: /gm) ?? [];
    assert.ok(heads.length >= 4, `four problems reported at once, got:\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`dbflow: ${heads.length} problems in the pipeline; nothing was run\\.\\n$`));
  });

  it('shows the offending line with a caret under the column', () => {
    const r = results.get('21-unknown-uses.yaml');
    assert.ok(r);
    const [head, line, caret] = r.stderr.split('\n');
    const [, lineNo, col] = /:(\d+):(\d+): /.exec(head ?? '') ?? [];
    const source = readFileSync(path.join(repoRoot, FIXTURES, '21-unknown-uses.yaml'), 'utf8').split('\n');
    assert.equal(line, `${lineNo} | ${source[Number(lineNo) - 1]}`);
    assert.equal(caret?.indexOf('^'), `${lineNo} | `.length + Number(col) - 1);
  });
});
