// The consistency check of the marks test: what any instant of the causal writer leaves in db1, mq and db2.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { causalViolations } from '../helpers/mark-items.js';

const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('causalViolations', () => {
  it('accepts every state the writer passes through', () => {
    for (const [a, m, b] of [
      [0, 0, 0],
      [1, 0, 0],
      [7, 7, 6],
      [7, 6, 6],
      [7, 7, 7],
    ] as const)
      assert.deepEqual(causalViolations(upTo(a), upTo(m), upTo(b)), [], `${a}, ${m}, ${b}`);
  });

  it('accepts ids in any order', () => {
    assert.deepEqual(causalViolations([3, 1, 2], [2, 1, 3], [1, 2]), []);
  });

  it('names a later database that is ahead', () => {
    const v = causalViolations(upTo(5), upTo(6), upTo(5));
    assert.equal(v.length, 2, v.join('\n'));
    assert.match(v[0]!, /^mq holds 1 items db1 lacks \(6\)$/);
    assert.match(v[1]!, /^db1 holds 5 items and mq 6: -1 apart, not 0 or 1$/);
  });

  it('names neighbours more than one item apart, and db1 two ahead of db2', () => {
    assert.deepEqual(causalViolations(upTo(9), upTo(7), upTo(7)), [
      'db1 holds 9 items and mq 7: 2 apart, not 0 or 1',
      'db1 holds 9 items and db2 7: 2 apart, more than 1',
    ]);
    assert.deepEqual(causalViolations(upTo(9), upTo(8), upTo(7)), ['db1 holds 9 items and db2 7: 2 apart, more than 1']);
  });

  it('names a gap or a stray id', () => {
    const v = causalViolations([1, 2, 4], [1, 2], [1, 2]);
    assert.match(v[0]!, /^db1: its 3 ids are not 1\.\.3: position 3 holds 4/);
    assert.match(causalViolations(upTo(3), upTo(3), [1, 2, 1_000_000])[0]!, /^db2: its 3 ids are not 1\.\.3: position 3 holds 1000000/);
  });
});
