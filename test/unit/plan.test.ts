// The plan: matrix cells, edges, stream chains fused into units, cycles, topological order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadedPipeline } from '../../src/index.js';
import { FILE, load, locate, pipeline, problems } from './helpers.js';

type Plan = LoadedPipeline['plan'];

const step = (plan: Plan, key: string) => {
  const s = plan.steps.get(key);
  assert.ok(s, `the plan has a step "${key}" (it has ${[...plan.steps.keys()].join(', ')})`);
  return s;
};
const unitKeys = (plan: Plan) => plan.units.map((u) => u.key);

describe('matrix expansion', () => {
  it('makes one instance per combination, keyed by its values', async () => {
    const { plan } = await load(
      pipeline(
        '  - id: s\n    uses: noop\n    matrix: { db: [app, billing], level: [1, 9] }\n    with: { log: "{{ matrix.db }}-{{ matrix.level }}" }\n',
      ),
    );
    assert.deepEqual([...plan.steps.keys()], ['s[app,1]', 's[app,9]', 's[billing,1]', 's[billing,9]']);
    assert.deepEqual(step(plan, 's[billing,9]').cell, { db: 'billing', level: 9 });
    assert.equal(plan.units.length, 4);
  });

  it('reads a matrix list from vars', async () => {
    const { plan } = await load(pipeline('  - id: s\n    uses: noop\n    matrix: { db: "{{ vars.dbs }}" }\n', 'vars:\n  dbs: [a, b, c]\n'));
    assert.deepEqual([...plan.steps.keys()], ['s[a]', 's[b]', 's[c]']);
  });

  it('refuses a matrix template that is not a list', async () => {
    const found = await problems(pipeline('  - id: s\n    uses: noop\n    matrix: { db: "{{ vars.one }}" }\n', 'vars:\n  one: app\n'));
    assert.deepEqual(
      found.map((p) => p.message),
      ['matrix "db" of step "s" must be a non-empty list.'],
    );
  });
});

describe('edges', () => {
  const chain = `  - id: src
    uses: bytes
    matrix: { db: [a, b] }
    with: { size: 10 }
  - id: up
    uses: upper
    matrix: { db: [a, b] }
    input: src
  - id: sink
    uses: collect
    matrix: { db: [a, b] }
    input: up
`;

  it('wires a matrix step to the matching cell of its input', async () => {
    const { plan } = await load(pipeline(chain));
    assert.equal(step(plan, 'up[a]').input, 'src[a]');
    assert.equal(step(plan, 'up[b]').input, 'src[b]');
    assert.equal(step(plan, 'sink[b]').input, 'up[b]');
    assert.deepEqual(step(plan, 'sink[a]').deps, ['up[a]']);
  });

  it('fuses each stream chain into one unit, source first', async () => {
    const { plan } = await load(pipeline(chain));
    assert.deepEqual(unitKeys(plan), ['src[a]→sink[a]', 'src[b]→sink[b]']);
    assert.deepEqual(
      plan.units[0]?.members.map((m) => m.key),
      ['src[a]', 'up[a]', 'sink[a]'],
    );
    assert.deepEqual(plan.units[0]?.deps, []);
  });

  it('fans in: a step without a matrix waits for every cell it references', async () => {
    const text = pipeline(`${chain}  - id: report
    uses: noop
    with: { value: "{{ steps.sink.outputs.received }}" }
`);
    const { plan } = await load(text);
    const report = step(plan, 'report');
    assert.deepEqual(report.deps.sort(), ['sink[a]', 'sink[b]']);
    assert.deepEqual(report.refs, { sink: ['sink[a]', 'sink[b]'] });
    assert.deepEqual(plan.dependents.get('sink[a]'), ['report']);
    assert.deepEqual(plan.units.at(-1)?.deps.sort(), ['sink[a]', 'sink[b]']);
  });

  it('matches cells on shared keys only', async () => {
    const text = pipeline(`  - id: wide
    uses: noop
    matrix: { db: [a, b], n: [1, 2] }
  - id: narrow
    uses: noop
    matrix: { db: [a, b] }
    needs: wide
`);
    const { plan } = await load(text);
    assert.deepEqual(step(plan, 'narrow[a]').deps.sort(), ['wide[a,1]', 'wide[a,2]']);
    assert.deepEqual(step(plan, 'narrow[b]').deps.sort(), ['wide[b,1]', 'wide[b,2]']);
  });

  it('adds an edge for needs, for step-id keys of with, and for steps.X templates', async () => {
    const text = pipeline(`  - { id: a, uses: lease }
  - { id: b, uses: use-lease, with: { lease: a, ms: 1 } }
  - { id: c, uses: emit, with: { outputs: { x: 1 } } }
  - { id: d, uses: noop, needs: b, with: { log: "{{ steps.c.outputs.x }}" } }
`);
    const { plan } = await load(text);
    assert.deepEqual(step(plan, 'b').deps, ['a']);
    assert.deepEqual(step(plan, 'd').deps.sort(), ['b', 'c']);
    assert.deepEqual(step(plan, 'd').refs, { b: ['b'], c: ['c'] });
    assert.deepEqual(plan.dependents.get('a'), ['b']);
  });

  it('makes finally steps wait for every main step', async () => {
    const text = `${pipeline('  - { id: a, uses: noop }\n  - { id: b, uses: noop, matrix: { n: [1, 2] } }\n')}finally:\n  - { id: z, uses: noop }\n`;
    const { plan } = await load(text);
    assert.deepEqual(step(plan, 'z').deps.sort(), ['a', 'b[1]', 'b[2]']);
    assert.equal(unitKeys(plan).at(-1), 'z');
  });

  it('refuses a main step that depends on a finally step', async () => {
    const text = `${pipeline('  - { id: a, uses: noop, needs: z }\n')}finally:\n  - { id: z, uses: noop }\n`;
    const found = await problems(text);
    assert.deepEqual(
      found.map((p) => p.message),
      ['step "a" depends on "z", which is a finally step; finally steps run last.'],
    );
  });

  it('refuses an input whose matrix does not pair cell to cell', async () => {
    const text = pipeline(`  - { id: src, uses: bytes, matrix: { db: [a, b] }, with: { size: 1 } }
  - { id: sink, uses: collect, input: src }
`);
    const found = await problems(text);
    assert.equal(found.length, 1);
    assert.match(
      found[0]!.message,
      /^step "sink" reads input from "src", but their matrices do not pair cell to cell \(2 matching cells for sink\)/,
    );
    assert.deepEqual(found[0]!.pos, { file: FILE, ...locate(text, 'src', 1) });
  });
});

describe('cycles', () => {
  it('reports the path of a cycle through needs', async () => {
    const text = pipeline(
      '  - { id: a, uses: noop, needs: c }\n  - { id: b, uses: noop, needs: a }\n  - { id: c, uses: noop, needs: b }\n',
    );
    const found = await problems(text);
    assert.deepEqual(
      found.map((p) => p.message),
      ['dependency cycle: "a" → "c" → "b" → "a" (each step needs the next).'],
    );
    assert.deepEqual(found[0]!.pos, { file: FILE, ...locate(text, '{ id: a') }, 'at the first step of the cycle');
  });

  it('finds a cycle made by a template reference and a step-id key', async () => {
    const text = pipeline(`  - { id: l, uses: lease, needs: u }
  - { id: u, uses: use-lease, with: { lease: l, ms: 1 } }
`);
    const found = await problems(text);
    assert.match(found[0]?.message ?? '', /^dependency cycle: "l" → "u" → "l"/);
    const viaTemplate = pipeline(`  - { id: a, uses: emit, with: { outputs: { x: "{{ steps.b.outputs.y }}" } } }
  - { id: b, uses: emit, with: { outputs: { y: "{{ steps.a.outputs.x }}" } } }
`);
    assert.match((await problems(viaTemplate))[0]?.message ?? '', /^dependency cycle: "a" → "b" → "a"/);
  });

  it('refuses a step that needs itself', async () => {
    const found = await problems(pipeline('  - { id: a, uses: noop, needs: a }\n'));
    assert.deepEqual(
      found.map((p) => p.message),
      ['step "a" needs itself.'],
    );
  });
});

describe('order', () => {
  it('orders units so that every unit comes after what it waits for', async () => {
    const text = pipeline(`  - { id: last, uses: noop, needs: [middle, other] }
  - { id: middle, uses: noop, needs: first }
  - { id: other, uses: noop, matrix: { n: [1, 2] }, needs: first }
  - { id: first, uses: noop }
`);
    const { plan } = await load(text);
    const order = unitKeys(plan);
    assert.equal(order.length, 5);
    const index = new Map(order.map((k, i) => [k, i]));
    for (const u of plan.units) {
      for (const d of u.deps) assert.ok(index.get(d)! < index.get(u.key)!, `${d} comes before ${u.key} in ${order.join(', ')}`);
    }
    assert.equal(order[0], 'first');
    assert.equal(order.at(-1), 'last');
  });

  it('keeps independent steps in file order', async () => {
    const { plan } = await load(pipeline('  - { id: c, uses: noop }\n  - { id: a, uses: noop }\n  - { id: b, uses: noop }\n'));
    assert.deepEqual(unitKeys(plan), ['c', 'a', 'b']);
  });
});
