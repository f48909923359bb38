// Templates: what a template refers to (for validation), and how values are rendered.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasTemplate, renderString, renderValue, scanTemplate } from '../../src/spec/templates.js';
import { load, pipeline, problems } from './helpers.js';

describe('scanTemplate', () => {
  it('finds every path reference and helper', () => {
    const scan = scanTemplate('{{ vars.repo }}/{{ date run.started_at "%Y" }}/{{ matrix.db }}.{{ upper steps.dump.outputs.ext }}');
    assert.equal(scan.error, undefined);
    assert.deepEqual(
      scan.refs.map((r) => r.parts.join('.')),
      ['vars.repo', 'run.started_at', 'matrix.db', 'steps.dump.outputs.ext'],
    );
    assert.deepEqual(scan.helpers, ['date', 'upper']);
  });

  it('finds references inside sub-expressions', () => {
    const scan = scanTemplate('{{ lower (upper vars.name) }}');
    assert.deepEqual(
      scan.refs.map((r) => r.original),
      ['vars.name'],
    );
    assert.deepEqual(scan.helpers, ['lower', 'upper']);
  });

  it('reports a template that does not parse instead of throwing', () => {
    const scan = scanTemplate('{{ vars.repo ');
    assert.ok(scan.error, 'an unclosed template is an error');
    assert.deepEqual(scan.refs, []);
  });

  it('recognises text without templates', () => {
    assert.equal(hasTemplate('file://./backups/x'), false);
    assert.equal(hasTemplate('file://{{ vars.repo }}'), true);
    assert.deepEqual(scanTemplate('plain text').refs, []);
  });
});

describe('rendering', () => {
  const context = {
    vars: { repo: 'file://./b', n: 3, list: ['a', 'b'], nested: { k: true } },
    run: { id: 'R1', started_at: '2026-11-24T02:03:04.000Z' },
    steps: { dump: { outputs: { bytes: 42, tables: { t: { rows: 1 } } } } },
  };

  it('keeps the type of a value that is one whole reference', () => {
    assert.deepEqual(renderString('{{ vars.list }}', context), ['a', 'b'], 'a list stays a list');
    assert.equal(renderString('{{ vars.n }}', context), 3, 'a number stays a number');
    assert.deepEqual(renderString(' {{ steps.dump.outputs.tables }} ', context), { t: { rows: 1 } });
    assert.equal(renderString('{{ vars.nested.k }}', context), true);
  });

  it('renders text around references as a string', () => {
    assert.equal(renderString('{{ vars.repo }}/{{ run.id }}/x', context), 'file://./b/R1/x');
    assert.equal(renderString('n={{ vars.n }}', context), 'n=3');
    assert.equal(renderString('<{{ vars.repo }}&>', context), '<file://./b&>', 'no HTML escaping');
  });

  it('throws on a missing reference instead of rendering an empty string', () => {
    assert.throws(() => renderString('{{ vars.nope }}', context), /vars\.nope/);
    assert.throws(() => renderString('x/{{ vars.nope }}/y', context), /nope/);
    assert.throws(() => renderString('{{ steps.dump.outputs.missing }}', context), /missing/);
  });

  it('walks lists and mappings', () => {
    const out = renderValue({ a: ['{{ run.id }}', 1, { b: '{{ vars.n }}' }], c: null, d: false }, context);
    assert.deepEqual(out, { a: ['R1', 1, { b: 3 }], c: null, d: false });
  });

  it('formats dates in UTC with the date helper', () => {
    assert.equal(renderString('{{ date run.started_at "%Y-%m-%d" }}', context), '2026-11-24');
    assert.equal(renderString('{{ date run.started_at "%Y%m%dT%H%M%S" }}', context), '20261124T020304');
    assert.equal(renderString('{{ date run.started_at "%s" }}', context), String(Date.parse(context.run.started_at) / 1000));
    assert.equal(renderString('{{ date run.started_at "100%%" }}', context), '100%');
    assert.equal(renderString('{{ date run.started_at }}', context), '2026-11-24', 'the default format is %Y-%m-%d');
  });

  it('has lower, upper and json helpers', () => {
    assert.equal(renderString('{{ upper run.id }}-{{ lower "AbC" }}', context), 'R1-abc');
    assert.equal(renderString('{{ json vars.list }}', context), '["a","b"]');
  });
});

describe('template checks at validation time', () => {
  const head = 'vars:\n  repo: file://./b\n';
  const step = (value: string) => pipeline(`  - id: a\n    uses: noop\n    with: { log: "${value}" }\n`, head);

  it('accepts references that exist', async () => {
    const loaded = await load(step('{{ vars.repo }}/{{ run.id }}/{{ date run.started_at \\"%Y\\" }}/{{ pipeline.name }}'));
    assert.equal(loaded.plan.steps.size, 1);
  });

  it('refuses an unknown root with a suggestion', async () => {
    const [p] = await problems(step('{{ var.repo }}'));
    assert.equal(p?.message, 'template "{{ var.repo }}" refers to unknown "var". Did you mean "vars"?');
  });

  it('refuses an unknown variable, helper, run key and unparsable text', async () => {
    assert.match((await problems(step('{{ vars.rpo }}')))[0]?.message ?? '', /no variable "rpo" in vars\. Did you mean "repo"\?/);
    assert.match((await problems(step('{{ uper run.id }}')))[0]?.message ?? '', /unknown template helper "uper"\. Did you mean "upper"\?/);
    assert.match((await problems(step('{{ run.idd }}')))[0]?.message ?? '', /run has no "idd"\. Did you mean "id"\?/);
    assert.match((await problems(step('{{ vars.repo ')))[0]?.message ?? '', /^invalid template "\{\{ vars\.repo ": /);
  });

  it('refuses a reference to an unset environment variable, and accepts a set one', async () => {
    const text = step('{{ env.DBFLOW_UNIT_SOME_VAR }}');
    assert.match((await problems(text))[0]?.message ?? '', /environment variable "DBFLOW_UNIT_SOME_VAR" is not set/);
    const loaded = await load(text, { DBFLOW_UNIT_SOME_VAR: 'x' });
    assert.equal(loaded.pipeline.steps[0]?.with.log, '{{ env.DBFLOW_UNIT_SOME_VAR }}', 'templates are rendered at run time, not load time');
  });
});
